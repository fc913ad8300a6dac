#!/usr/bin/env bash
# bench_pack.sh — how much compute packing saves: token utilization, rows, and positions against
# a pad-every-sample-to-512 recipe, on the DLO notes (when ../shared is there) and on the
# synthetic notes (when build/data/notes.csv exists). Target: utilization >= 0.95 on DLO.
#
# Tokenizer: $VET_SPM, else build/data/tokenizer.model, else a small BPE trained with spm_train.
# Utilization depends on it (sample lengths decide how many whole samples fit in a row); the
# line says which one was used.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
: "${VET_BIN:=$top/bin}"
VET_SHARED=${VET_SHARED:-}
if [ -z "$VET_SHARED" ] && [ -d "$top/../shared/data" ]; then VET_SHARED=$(cd "$top/../shared" && pwd); fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-bench-pack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export PATH="$VET_BIN:$PATH"
for p in vet-tokenize vet-pack; do
    command -v "$p" >/dev/null || { echo "bench_pack: skip: no $p in $VET_BIN"; exit 0; }
done
command -v jq >/dev/null || { echo "bench_pack: skip: no jq"; exit 0; }

spm=${VET_SPM:-}
if [ -z "$spm" ] && [ -f "$top/build/data/tokenizer.model" ]; then spm="$top/build/data/tokenizer.model"; fi
if [ -z "$spm" ] && command -v spm_train >/dev/null && [ -n "$VET_SHARED" ]; then
    cut -d, -f3 "$VET_SHARED/data/dlo/dlo_notes.csv" > "$tmp/text.txt"
    spm_train --input="$tmp/text.txt" --model_prefix="$tmp/spm" --vocab_size=600 --model_type=bpe \
        --bos_id=1 --eos_id=2 --unk_id=0 --pad_id=-1 --minloglevel=2 >/dev/null 2>&1 && spm="$tmp/spm.model"
fi
[ -n "$spm" ] || { echo "bench_pack: skip: no tokenizer (set VET_SPM)"; exit 0; }

bench() {  # bench NAME CSV SEQ_LEN
    local name=$1 csv=$2 seq=$3
    vet-tokenize --spm "$spm" "$csv" > "$tmp/$name.tok" 2>/dev/null || { echo "bench_pack: $name: vet-tokenize failed"; return; }
    local t0 t1
    t0=$(date +%s.%N)
    vet-pack --seq-len "$seq" --out "$tmp/$name" --summary "$tmp/$name.json" "$tmp/$name.tok" 2>/dev/null ||
        { echo "bench_pack: $name: vet-pack failed"; return; }
    t1=$(date +%s.%N)
    vet-pack --seq-len "$seq" --no-pack --out "$tmp/$name-np" --summary "$tmp/$name-np.json" "$tmp/$name.tok" 2>/dev/null
    jq -r --arg name "$name" --arg seq "$seq" --arg tok "$(basename "$spm")" --arg secs "$(awk -v a="$t0" -v b="$t1" "BEGIN { printf \"%.3f\", b - a }")" \
        --slurpfile np "$tmp/$name-np.json" '
        .total as $t |
        "\($name) (seq-len \($seq), tokenizer \($tok)): \($t.packed) samples (\(.samples_rejected) rejected), \(.note_groups) distinct notes",
        "  packed:    \($t.rows) rows, utilization \($t.utilization * 1000 | round / 1000), \($t.positions) positions",
        "  pad-to-\($seq): \($t.packed) rows, utilization \($t.pad_utilization * 1000 | round / 1000), \($t.pad_positions) positions",
        "  positions packed / pad-to-\($seq): \($t.positions_vs_pad * 1000 | round / 1000) (\(1 / $t.positions_vs_pad * 10 | round / 10)x fewer)",
        "  lower bound ceil(tokens/seq_len): \(($t.tokens / ($seq | tonumber)) | ceil) rows; --no-pack rows: \($np[0].total.rows); vet-pack took \($secs) s",
        (.splits | to_entries[] | "  \(.key): \(.value.packed) samples, \(.value.rows) rows, utilization \(.value.utilization * 1000 | round / 1000)")
        ' "$tmp/$name.json"
}

if [ -n "$VET_SHARED" ] && [ -f "$VET_SHARED/data/dlo/dlo_notes.csv" ]; then
    bench dlo "$VET_SHARED/data/dlo/dlo_notes.csv" 512
    # As the pipeline runs it: a tokenizer trained on the DLO notes themselves (pipelines/vet.mk).
    if [ -z "${VET_SPM:-}" ] && make -s -f "$top/pipelines/vet.mk" VET_BIN="$VET_BIN" OUT="$tmp/dlo-pipe" \
           NOTES="$VET_SHARED/data/dlo/dlo_notes.csv" tokenizer >/dev/null 2>&1; then
        spm_saved=$spm spm="$tmp/dlo-pipe/tokenizer.model"
        bench dlo-own-tokenizer "$VET_SHARED/data/dlo/dlo_notes.csv" 512
        spm=$spm_saved
    fi
else
    echo "bench_pack: skip DLO: no ../shared/data/dlo"
fi
if [ -f "$top/build/data/notes.csv" ]; then
    bench synthetic "$top/build/data/notes.csv" 512
else
    echo "bench_pack: skip synthetic: no build/data/notes.csv"
fi
