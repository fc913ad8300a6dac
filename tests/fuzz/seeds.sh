#!/usr/bin/env bash
# seeds.sh OUT BIN HARNESS_DIR — assembles each harness's seed corpus in OUT/<harness>/ from
# the committed hand-made seeds (tests/fuzz/corpus), the test fixtures, files the vet programs
# in BIN make from them (token and packed streams), inputs the harnesses build themselves
# (FUZZ_WRITE_SEEDS), and, for local runs only, the DLO notes under $VET_SHARED (never committed).
# Harness input forms (see each tests/fuzz/fuzz_*.c): notes and stream inputs start with a
# mode byte, the others are the file as it is.
set -u
out=$1 bin=$2 harn=$3
top=$(cd "$(dirname "$0")/../.." && pwd)
fx=$top/tests/fixtures
mkdir -p "$out"
for h in csv notes stream safetensors config adapter spm bpe gguf gguf_tokenizer predictions; do
    rm -rf "${out:?}/$h"; mkdir -p "$out/$h"
    cp "$top/tests/fuzz/corpus/$h/"* "$out/$h/" 2>/dev/null
done
prefixed() {  # prefixed BYTE SRC DST: DST = one mode byte + SRC
    { printf "\\x$1"; cat "$2"; } >"$3"
}

# CSV: every CSV and TSV the tests read.
for f in "$fx"/tokenize/notes.csv "$fx"/eval/small.csv "$fx"/eval/codes.tsv "$top"/data/codes.tsv; do
    cp "$f" "$out/csv/$(basename "$(dirname "$f")")-$(basename "$f")"
done
# Notes: mode byte 0 .csv, 1 .json, 2 .jsonl, 3 sniffed (+4 note prefix, +8 other column names).
prefixed 00 "$fx/tokenize/notes.csv" "$out/notes/csv"
prefixed 01 "$fx/tokenize/notes.json" "$out/notes/json"
prefixed 02 "$fx/tokenize/notes.jsonl" "$out/notes/jsonl"
prefixed 03 "$fx/tokenize/notes.jsonl" "$out/notes/sniffed"
prefixed 02 "$fx/eval/small.jsonl" "$out/notes/eval-jsonl"
if [ -n "${VET_SHARED:-}" ] && [ -f "$VET_SHARED/data/dlo/dlo_notes.csv" ]; then
    head -c 20000 "$VET_SHARED/data/dlo/dlo_notes.csv" >"$out/csv/dlo-head.csv"
    { printf '\x00'; head -c 20000 "$VET_SHARED/data/dlo/dlo_notes.csv"; } >"$out/notes/dlo-head"
    { printf '\x01'; head -c 30000 "$VET_SHARED/data/dlo/dlo_alpaca.json" | sed '$d'; echo '}]'; } >"$out/notes/dlo-alpaca"
fi

# Predictions as vet-eval reads them: mode byte 0 CSV, 1 JSON lines, 2 a stream file, 3 a stream's
# msgpack (the harness compresses it); the ranked fixture (vet-generate --rank's lists) in each.
prefixed 00 "$fx/eval/small.csv" "$out/predictions/csv"
prefixed 01 "$fx/eval/small.jsonl" "$out/predictions/jsonl"
prefixed 01 "$fx/eval/ranked.jsonl" "$out/predictions/ranked-jsonl"
# --fit-temperature (bit 4 of the mode byte): whole lists with logp, three notes over a table of three.
w() { printf '{"gold": ["%s"], "pred": ["A"], "ranked": [{"label": "A", "p": %s, "logp": %s}, {"label": "B", "p": %s, "logp": %s}, {"label": "C", "p": %s, "logp": %s}]}\n' "$@"; }
{ printf '\x05'; w A 0.7 -0.36 0.2 -1.6 0.1 -2.3; w B 0.6 -0.51 0.3 -1.2 0.1 -2.3; w A 0.9 -0.1 0.06 -2.8 0.04 -3.2; } \
    >"$out/predictions/fit-jsonl"
# --temperature and --fit-threshold (bits 8 and 32) on the same; --refer-below (bit 16) on the fixture.
{ printf '\x29'; tail -c +2 "$out/predictions/fit-jsonl"; } >"$out/predictions/fit-threshold-jsonl"
prefixed 11 "$fx/eval/ranked.jsonl" "$out/predictions/refer-jsonl"
mkpreds=$top/build/rel/tests/helpers/vet-mkpreds
if [ -x "$mkpreds" ] && "$mkpreds" "$fx/eval/ranked.jsonl" "$out/predictions/ranked.tmp" 2>/dev/null; then
    prefixed 02 "$out/predictions/ranked.tmp" "$out/predictions/ranked-stream"
    { printf '\x03'; zstd -dc "$out/predictions/ranked.tmp"; } >"$out/predictions/ranked-msgpack" 2>/dev/null
    { printf '\x07'; zstd -dc "$out/predictions/ranked.tmp"; } >"$out/predictions/ranked-msgpack-fit" 2>/dev/null
    rm -f "$out/predictions/ranked.tmp"
fi

# A tokenizer (needs spm_train), then streams made by the programs from the fixture notes.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-seeds.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if bash "$fx/tokenize/make_model.sh" "$tmp/tok" >/dev/null 2>&1; then
    cp "$tmp/tok/tokenizer.model" "$out/spm/fixture.model"
    head -c 2000 "$tmp/tok/tokenizer.model" >"$out/spm/truncated.model"
    if [ -x "$bin/vet-tokenize" ] && [ -x "$bin/vet-pack" ]; then
        "$bin/vet-tokenize" --spm "$tmp/tok/tokenizer.model" "$fx/tokenize/notes.csv" -o "$tmp/notes.tok" 2>/dev/null &&
            "$bin/vet-pack" "$tmp/notes.tok" --out "$tmp/packed" --seq-len 128 >/dev/null 2>&1
        for f in "$tmp/notes.tok" "$tmp"/packed/*.msgpack.zst; do
            [ -s "$f" ] || continue
            n=$(basename "$f" | cut -d. -f1)
            prefixed 00 "$f" "$out/stream/raw-$n"
            { printf '\x01'; zstd -dc "$f"; } >"$out/stream/msgpack-$n" 2>/dev/null
        done
    fi
fi
# Inputs the harnesses make themselves (a valid adapter folder, a valid shard and index).
for h in adapter safetensors; do
    [ -x "$harn/fuzz_$h" ] && FUZZ_WRITE_SEEDS="$out/$h" "$harn/fuzz_$h" -runs=0 >/dev/null 2>&1
done
for h in csv notes stream safetensors config adapter spm bpe gguf gguf_tokenizer predictions; do
    echo "seeds: $h $(ls "$out/$h" | wc -l) files"
done
