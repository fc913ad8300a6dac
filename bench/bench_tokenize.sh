#!/usr/bin/env bash
# bench_tokenize.sh — vet-tokenize throughput against Python sentencepiece, and its memory.
#
# Input: the DLO notes repeated to >= 100,000 rows (1x) and 10x that. vet-tokenize runs end to
# end (CSV in, tokens stream to /dev/null); Python (/usr/bin/python3, Debian's sentencepiece)
# reads the same CSV with the csv module, builds the same prompts and responses and encodes
# them, in the same run. Prints notes/s of each and the ratio (target >= 0.9), then vet's peak
# RSS at 1x and 10x (constant memory: they should be about equal).
# Tokenizer: $VET_SPM, else build/data/tokenizer.model, else a small one trained here.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
: "${VET_BIN:=$top/bin}"
VET_SHARED=${VET_SHARED:-}
if [ -z "$VET_SHARED" ] && [ -d "$top/../shared/data" ]; then VET_SHARED=$(cd "$top/../shared" && pwd); fi
csv=$VET_SHARED/data/dlo/dlo_notes.csv
[ -n "$VET_SHARED" ] && [ -f "$csv" ] || { echo "bench_tokenize: skip: no DLO notes (VET_SHARED)"; exit 0; }
[ -x "$VET_BIN/vet-tokenize" ] || { echo "bench_tokenize: skip: no vet-tokenize in $VET_BIN"; exit 0; }
py=/usr/bin/python3
"$py" -c 'import sentencepiece' 2>/dev/null || { echo "bench_tokenize: skip: $py lacks sentencepiece"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-bench-tokenize.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

spm=${VET_SPM:-}
if [ -z "$spm" ] && [ -f "$top/build/data/tokenizer.model" ]; then spm=$top/build/data/tokenizer.model; fi
if [ -z "$spm" ]; then
    VET_SHARED=$VET_SHARED "$top/tests/fixtures/tokenize/make_model.sh" "$tmp/model" ||
        { echo "bench_tokenize: skip: cannot train a tokenizer"; exit 0; }
    spm=$tmp/model/tokenizer.model
fi

rows=$(($(wc -l <"$csv") - 1))
reps=$(( (100000 + rows - 1) / rows ))
{ head -1 "$csv"; for _ in $(seq "$reps"); do tail -n +2 "$csv"; done; } >"$tmp/1x.csv"
{ head -1 "$csv"; for _ in $(seq 10); do tail -n +2 "$tmp/1x.csv"; done; } >"$tmp/10x.csv"
n=$((rows * reps))

# vet-tokenize, end to end; peak RSS from GNU time when present, else from /proc polling.
run_vet() {  # run_vet CSV -> "seconds maxrss_kb"
    local t0 t1 rss
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%e %M' -o "$tmp/time" "$VET_BIN/vet-tokenize" --spm "$spm" -o /dev/null "$1" || return 1
        cat "$tmp/time"
    else
        t0=$(date +%s.%N)
        "$VET_BIN/vet-tokenize" --spm "$spm" -o /dev/null "$1" & local pid=$! peak=0
        while kill -0 "$pid" 2>/dev/null; do
            rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null); [ -n "$rss" ] && peak=$rss; sleep 0.05
        done
        wait "$pid" || return 1
        t1=$(date +%s.%N)
        echo "$(echo "$t1 - $t0" | bc) $peak"
    fi
}

cat >"$tmp/ref.py" <<'PY'
import csv, sys, time
import sentencepiece as spm
t0 = time.perf_counter()
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
P = ("Below is an instruction that describes a task, paired with an input that provides further "
     "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
     "Analyze the following veterinary clinical note and predict the SNOMED-CT diagnosis codes."
     "\n\n### Input:\nClinical Note: {}\n\n### Response:\n")
bos, eos, n, ntok = sp.bos_id(), sp.eos_id(), 0, 0
with open(sys.argv[2], newline="", encoding="utf-8") as f:
    for r in csv.DictReader(f):
        codes = [c for c in r["codes"].split(";") if c]
        prompt = [bos] + sp.encode(P.format(r["note"]))
        response = sp.encode("Diagnosed conditions: " + (", ".join(codes) if codes else r["disease"])) + [eos]
        n += 1
        ntok += len(prompt) + len(response)
print(n, time.perf_counter() - t0, ntok)
PY

read -r vet_s vet_rss <<<"$(run_vet "$tmp/1x.csv")"
read -r py_n py_s py_tok <<<"$("$py" "$tmp/ref.py" "$spm" "$tmp/1x.csv")"
read -r vet10_s vet10_rss <<<"$(run_vet "$tmp/10x.csv")"
awk -v n="$n" -v vs="$vet_s" -v pn="$py_n" -v ps="$py_s" -v r1="$vet_rss" -v r10="$vet10_rss" \
    -v n10=$((n * 10)) -v v10="$vet10_s" -v tok="$py_tok" 'BEGIN {
    printf "bench_tokenize: %d notes (DLO x%d), %.0f tokens/note, tokenizer %s\n", n, n / 1602, tok / pn, "'"$(basename "$spm")"'"
    printf "  vet-tokenize (CSV -> tokens stream, end to end)  %8.0f notes/s  (%.2f s)\n", n / vs, vs
    printf "  python3 sentencepiece (csv + encode)              %8.0f notes/s  (%.2f s)\n", pn / ps, ps
    printf "  ratio vet/python: %.2fx (target >= 0.9x)\n", (n / vs) / (pn / ps)
    printf "  peak RSS: %.1f MiB at %d notes, %.1f MiB at %d notes (%.0f notes/s)\n", r1 / 1024, n, r10 / 1024, n10, n10 / v10
}'
