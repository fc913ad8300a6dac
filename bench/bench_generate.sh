#!/usr/bin/env bash
# bench_generate.sh — vet-generate tokens/s on the tiny and small presets (random weights),
# batch 1 and batch 16, side by side with transformers `generate` on the same models in the
# same run (bench/bench_generate.py does the timing and prints the table); then scoring every
# code of data/codes.tsv as each note's answer (vet-generate --rank all) against transformers.
#
#   bench/bench_generate.sh [PRESET...]        default: tiny small base
#
# Env: VET_BIN (programs, default bin/), VET_BUILD (default build/rel: vet-inspect and
# vet-mktokens from `make helpers`), VET_VENV (default .venv), THREADS (2), NOTES (32),
# PROMPT (prompt tokens, 32), MAX_NEW (64), CODES (the table --rank scores, data/codes.tsv).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
VET_BIN=${VET_BIN:-$top/bin} VET_BUILD=${VET_BUILD:-$top/build/rel} VET_VENV=${VET_VENV:-$top/.venv}
THREADS=${THREADS:-2} NOTES=${NOTES:-32} PROMPT=${PROMPT:-32} MAX_NEW=${MAX_NEW:-64}
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(tiny small base)
for t in "$VET_BUILD/tests/helpers/vet-inspect" "$VET_BUILD/tests/helpers/vet-mktokens" "$VET_BIN/vet-generate"; do
    [ -x "$t" ] || { echo "bench_generate: $t not built (make && make helpers)" >&2; exit 1; }
done
[ -x "$VET_VENV/bin/python" ] || { echo "bench_generate: no venv at $VET_VENV (tests/reference/setup)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-bench-gen.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# A tokenizer only for decoding text (the prompts are random ids): the fixtures' small one.
bash "$top/tests/fixtures/tokenize/make_model.sh" "$tmp/tok" >/dev/null ||
    { echo "bench_generate: cannot train the tokenizer (spm_train)" >&2; exit 1; }
sha=$(sha256sum "$tmp/tok/tokenizer.model" | cut -c1-64)

# Random prompts: BOS then ids in [3, 500) (inside every preset's vocabulary).
"$VET_VENV/bin/python" - "$NOTES" "$PROMPT" >"$tmp/prompts.jsonl" <<'EOF'
import json, random, sys
random.seed(1)
for i in range(int(sys.argv[1])):
    p = [1] + [random.randrange(3, 500) for _ in range(int(sys.argv[2]) - 1)]
    print(json.dumps({"id": str(i), "species": "", "codes": [], "note": "", "prompt": p, "response": [2]}))
EOF
"$VET_BUILD/tests/helpers/vet-mktokens" --sha256 "$sha" --vocab 512 -o "$tmp/prompts.tok" <"$tmp/prompts.jsonl"

models=() rank_models=()
vocab=$("$VET_VENV/bin/python" -c 'import sentencepiece as s, sys; print(s.SentencePieceProcessor(model_file=sys.argv[1]).get_piece_size())' "$tmp/tok/tokenizer.model")
for p in "${presets[@]}"; do
    "$VET_BUILD/tests/helpers/vet-inspect" init "$tmp/$p" "$p" 1 F32 >/dev/null
    cp "$tmp/tok/tokenizer.model" "$tmp/$p/"
    models+=("$tmp/$p")
    # For --rank the answers are real text ("Diagnosed conditions: CODE"), whose ids reach past
    # the presets' 512: the same preset with the tokenizer's vocabulary.
    "$VET_BUILD/tests/helpers/vet-inspect" saveconfig "$p" "$tmp/$p.json" >/dev/null
    "$VET_VENV/bin/python" - "$tmp/$p.json" "$vocab" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["vocab_size"] = int(sys.argv[2]); json.dump(c, open(sys.argv[1], "w"))
EOF
    "$VET_BUILD/tests/helpers/vet-inspect" init "$tmp/$p-rank" "$tmp/$p.json" 1 F32 >/dev/null
    cp "$tmp/tok/tokenizer.model" "$tmp/$p-rank/"
    rank_models+=("$tmp/$p-rank")
done
"$VET_VENV/bin/python" "$top/bench/bench_generate.py" --vet-bin "$VET_BIN" --tokens "$tmp/prompts.tok" \
    --max-new "$MAX_NEW" --threads "$THREADS" --codes "${CODES:-$top/data/codes.tsv}" \
    --spm "$tmp/tok/tokenizer.model" --rank-models "${rank_models[@]}" -- "${models[@]}"
