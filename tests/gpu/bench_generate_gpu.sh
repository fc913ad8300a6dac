#!/usr/bin/env bash
# bench_generate_gpu.sh — the issue's inference target on one GPU: a LLaMA-7B-shaped model codes
# NOTES notes (random prompts of ~PROMPT tokens), batch BATCH, greedy, at most MAX_NEW new tokens,
# with vet-generate --device cuda (bf16 weights); then transformers `generate` on the same base,
# the same prompts, the same batch (left-padded), for a side-by-side figure. Prints one table
# (notes/s, generated tokens/s, seconds; target: 1,000 notes in under 30 s, issue 20) appended to
# $RESULTS (on a GPU by default docs/gpu-results-<date>.md), and its figures as JSON ($FIGURES).
# Then vet-generate --rank all on the first RANK_NOTES of the notes: every code of CODES scored
# as the answer (never run on a GPU before; its own line in the table, vet only).
# Ends with `ok bench_generate_gpu`, or `not ok bench_generate_gpu: <why>` and exit 1 — also when
# a program, the GPU or transformers is missing (a failed ranking: `not ok bench_generate_gpu
# rank: <why>`, the rest still judged).
#
#   tests/gpu/bench_generate_gpu.sh        (after make -j; builds the helpers it needs)
#
# Setup: a random-weight base in bf16 (made by torch on the GPU, as bench_7b.sh does, or
# vet-inspect init), a small SentencePiece model (TOKENIZER, else one made here) only to decode the text (the prompts are random
# ids: a random model writes no codes, the work per token is what counts). The time of
# vet-generate is its closing line's (prefill + decode, model loading excluded); the load and
# upload are reported apart. transformers: bf16, SDPA, the note's generated tokens counted up to
# its first EOS, load excluded.
#
# Env: VET_BIN (bin), VET_BUILD (build/rel), VET_VENV (.venv; else python3 with torch,
# transformers), PRESET (llama-7b), NOTES (1000), PROMPT (90), MAX_NEW (100), BATCH (64),
# MAX_LEN (256), RANK_NOTES (NOTES / 5; 0: no ranking), CODES (the bundle's data/codes.tsv, else
# the repository's), HF (1: also run transformers; 0: skip it), DEVICE (cuda; cpu with a small
# PRESET and few NOTES only checks this script), TOKENIZER, LABEL (generate), KEEP=1 keeps the
# work directory; bench_lib.sh's VET_HELPERS, VET_NO_BUILD, BASE, VOCAB, RESULTS, FIGURES.
# Budget: ~5 minutes on an H200.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/bench_lib.sh"
: "${PRESET:=llama-7b}" "${NOTES:=1000}" "${PROMPT:=90}" "${MAX_NEW:=100}" "${BATCH:=64}" "${MAX_LEN:=256}"
: "${HF:=1}" "${DEVICE:=cuda}" "${KEEP:=0}" "${TOKENIZER:=}" "${LABEL:=generate}" "${RANK_NOTES:=$((NOTES / 5))}"
[ -f "$here/../data/codes.tsv" ] && : "${CODES:=$here/../data/codes.tsv}"
: "${CODES:=$top/data/codes.tsv}"
say() { echo "bench_generate_gpu: $*" >&2; }

[ -x "$VET_BIN/vet-generate" ] || { echo "not ok bench_generate_gpu: $VET_BIN/vet-generate not built (make)"; exit 1; }
if [ "$DEVICE" = cuda ]; then
    # vet-generate's own check (exit 2 with the reason) before anything big is made
    msg=$("$VET_BIN/vet-generate" -q --device cuda -m /nonexistent /nonexistent 2>&1)
    if [ $? -eq 2 ] && grep -q -- "--device cuda" <<<"$msg"; then
        echo "not ok bench_generate_gpu: ${msg#vet-generate: }"
        exit 1
    fi
fi
need_helpers bench_generate_gpu
pick_python

bench_workdir benchgen

# --- the base, a tokenizer, the prompts ----------------------------------------------------
make_random_base bench_generate_gpu
# The tokenizer decodes the generated ids to text (ids beyond its vocabulary are left out).
mkdir -p "$work/tok"
if [ -n "$TOKENIZER" ]; then
    cp "$TOKENIZER" "$work/tok/tokenizer.model"
elif ! bash "$top/tests/fixtures/tokenize/make_model.sh" "$work/tok" >/dev/null 2>&1; then
    mkdir -p "$work/tok"
    "$py" - "$work/tok" <<'PY' || { echo "not ok bench_generate_gpu: no TOKENIZER, no spm_train and no python sentencepiece to make one"; exit 1; }
import random, sys, sentencepiece as spm
random.seed(3)
words = ["dog", "cat", "vomiting", "diarrhoea", "lethargy", "fever", "otitis", "dermatitis", "lame", "cough"]
text = "\n".join(" ".join(random.choice(words) for _ in range(12)) for _ in range(2000))
open(sys.argv[1] + "/text.txt", "w").write(text)
spm.SentencePieceTrainer.train(input=sys.argv[1] + "/text.txt", model_prefix=sys.argv[1] + "/tokenizer",
                               vocab_size=100, model_type="bpe", byte_fallback=True, bos_id=1, eos_id=2,
                               unk_id=0, pad_id=-1, minloglevel=2)
PY
fi
# the base may be run.sh's shared one: a model directory of our own, linking its weights
mkdir -p "$work/model"
for f in "$work"/base/*; do ln -s "$(readlink -f "$f")" "$work/model/"; done
rm -f "$work/model/tokenizer.model" "$work/model/tokenizer.json" "$work/model/tokenizer_config.json"
cp "$work/tok/tokenizer.model" "$work/model/" || { echo "not ok bench_generate_gpu: no tokenizer"; exit 1; }
sha=$(sha256sum "$work/tok/tokenizer.model" | cut -c1-64)
vocab=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$work/base/config.json")
python3 - "$NOTES" "$PROMPT" "$vocab" >"$work/prompts.jsonl" <<'PY'
import json, random, sys
n, plen, vocab = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(11)
for i in range(n):  # BOS, then ~plen random ids (+-10%) away from the special ids
    p = [1] + [rng.randrange(3, vocab) for _ in range(rng.randint(plen * 9 // 10, plen * 11 // 10) - 1)]
    print(json.dumps({"id": f"n{i}", "species": "dog", "codes": [], "note": "", "prompt": p, "response": [2]}))
PY
"$mktokens" --sha256 "$sha" --vocab "$vocab" -o "$work/prompts.tok" <"$work/prompts.jsonl" ||
    { echo "not ok bench_generate_gpu: vet-mktokens failed"; exit 1; }

# --- vet-generate ---------------------------------------------------------------------------
say "vet-generate --device $DEVICE: $NOTES notes, batch $BATCH, <= $MAX_NEW new tokens, greedy"
dev_args=(--device "$DEVICE")
[ "$DEVICE" = cuda ] && dev_args+=(--max-len "$MAX_LEN")
t0=$(date +%s.%N)
timeout 240 "$VET_BIN/vet-generate" "${dev_args[@]}" -m "$work/model" -b "$BATCH" -n "$MAX_NEW" \
    "$work/prompts.tok" -o "$work/vet.pred" 2>"$work/vet.err"
vet_status=$?
t1=$(date +%s.%N)
# vet's figures go to the log now: a transformers run cut short by a caller's cap keeps them
grep -E '^vet-generate: (device|[0-9]+ notes, )' "$work/vet.err" >&2
[ $vet_status -ne 0 ] && { tail -n 5 "$work/vet.err" >&2; echo "not ok bench_generate_gpu: vet-generate exit $vet_status"; }

# --- vet-generate --rank all: every code scored for the first RANK_NOTES notes ------------------
rank_status=0
if [ "$RANK_NOTES" -gt 0 ]; then
    say "vet-generate --rank all --device $DEVICE: $RANK_NOTES notes, the codes of $CODES, batch $BATCH"
    head -n "$RANK_NOTES" "$work/prompts.jsonl" |
        "$mktokens" --sha256 "$sha" --vocab "$vocab" -o "$work/rank.tok" || rank_status=1
    if [ $rank_status = 0 ]; then
        timeout 120 "$VET_BIN/vet-generate" "${dev_args[@]}" -m "$work/model" -b "$BATCH" \
            --constrain "$CODES" --rank all "$work/rank.tok" -o "$work/rank.pred" 2>"$work/rank.err"
        rank_status=$?
    fi
    grep -E '^vet-generate: [0-9]+ notes, ' "$work/rank.err" | sed 's/^vet-generate:/vet-generate --rank all:/' >&2
    [ $rank_status -ne 0 ] && { tail -n 5 "$work/rank.err" >&2; echo "not ok bench_generate_gpu rank: exit $rank_status"; }
fi

# --- transformers generate ------------------------------------------------------------------
hf_status=0
if [ "$HF" = 1 ]; then
    say "transformers generate: the same prompts, batch $BATCH"
    timeout 300 "$py" - "$work/base" "$work/prompts.jsonl" "$BATCH" "$MAX_NEW" "$DEVICE" >"$work/hf.out" 2>"$work/hf.err" <<'PY'
import json, sys, time
try:
    import torch
    from transformers import AutoModelForCausalLM
except ImportError as e:
    print(f"not ok bench_generate_gpu: transformers: {e} (python3 is {sys.executable})")
    sys.exit(1)
base, path, batch, max_new, device = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
dtype = torch.bfloat16 if device == "cuda" else torch.float32
model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=dtype, attn_implementation="sdpa").to(device).eval()
prompts = [json.loads(l)["prompt"] for l in open(path)]
eos, pad = 2, 0
if device == "cuda":
    torch.cuda.synchronize()
t0, tokens = time.time(), 0
with torch.no_grad():
    for s in range(0, len(prompts), batch):
        chunk = prompts[s:s + batch]
        T = max(len(p) for p in chunk)
        ids = torch.tensor([[pad] * (T - len(p)) + p for p in chunk], device=device)
        mask = torch.tensor([[0] * (T - len(p)) + [1] * len(p) for p in chunk], device=device)
        out = model.generate(ids, attention_mask=mask, max_new_tokens=max_new, do_sample=False,
                             eos_token_id=eos, pad_token_id=pad)[:, T:].tolist()
        for row in out:  # up to and including the first EOS, as vet counts
            tokens += row.index(eos) + 1 if eos in row else len(row)
if device == "cuda":
    torch.cuda.synchronize()
dt = time.time() - t0
print(f"notes={len(prompts)} tokens={tokens} seconds={dt:.3f}")
PY
    hf_status=$?
    if [ $hf_status -ne 0 ]; then
        tail -n 5 "$work/hf.err" >&2
        grep -m1 '^not ok' "$work/hf.out" || echo "not ok bench_generate_gpu: transformers exit $hf_status"
    fi
fi

# --- the table ------------------------------------------------------------------------------
table=$(python3 - "$work" "$t0" "$t1" "$NOTES" "$PROMPT" "$MAX_NEW" "$BATCH" "$PRESET" "$DEVICE" "$LABEL" "$CODES" <<'PY'
import json, re, sys
work, t0, t1, notes, plen, max_new, batch, preset, device, label, codes = sys.argv[1:]
def read(p):
    try: return open(p).read()
    except OSError: return ""
vet = {}
m = re.search(r"(\d+) notes, (\d+) tokens, [0-9.]+ tokens/s \(([0-9.]+) s; prompts (\d+) tokens at ([0-9.]+) "
              r"tokens/s, decode steps (\d+) tokens at ([0-9.]+) tokens/s\)", read(f"{work}/vet.err"))
if m:
    n, tok, s = int(m.group(1)), int(m.group(2)), max(float(m.group(3)), 0.05)  # printed to 0.1 s
    vet = {"notes": n, "tokens": tok, "s": s, "nps": n / s, "tps": tok / s, "prompt_tps": float(m.group(5)),
           "step_tps": float(m.group(7)), "wall": float(t1) - float(t0)}
rank = {}
m = re.search(r"(\d+) notes, \d+ tokens, [0-9.]+ tokens/s \(([0-9.]+) s; prompts (\d+) tokens at ([0-9.]+) "
              r"tokens/s, decode steps (\d+) tokens at ([0-9.]+) tokens/s\)", read(f"{work}/rank.err"))
if m:
    n, s = int(m.group(1)), max(float(m.group(2)), 0.05)
    rank = {"notes": n, "s": s, "nps": n / s, "labels": sum(1 for l in open(codes) if l.strip() and
                                                            not l.startswith("#") and not l.startswith("code\t")),
            "answer_rows": int(m.group(5)), "rows_per_s": float(m.group(6))}
hf = {}
m = re.search(r"notes=(\d+) tokens=(\d+) seconds=([0-9.]+)", read(f"{work}/hf.out"))
if m:
    n, tok, s = int(m.group(1)), int(m.group(2)), float(m.group(3))
    hf = {"notes": n, "tokens": tok, "s": s, "nps": n / s, "tps": tok / s}
def cell(d, k, fmt):
    return fmt.format(d[k]) if d.get(k) is not None else "-"
def ratio(k, inv=False):
    if not (vet.get(k) and hf.get(k)): return "-"
    return f"{(hf[k] / vet[k]) if inv else (vet[k] / hf[k]):.2f}x"
target = ""
if vet.get("s") and device == "cuda":
    target = f"; target 1,000 notes < 30 s: {'met' if vet['s'] * 1000 / vet['notes'] < 30 else 'NOT met'}"
print(f"{preset} (random weights, bf16), {notes} notes of ~{plen} prompt tokens, batch {batch}, greedy, "
      f"<= {max_new} new tokens{target}")
print()
print(f"| | vet-generate --device {device} | transformers generate | vet / transformers |")
print("| --- | ---: | ---: | ---: |")
for row, k, fmt in (("notes", "notes", "{}"), ("generated tokens", "tokens", "{}"),
                      ("seconds (model loaded)", "s", "{:.1f}"), ("notes/s", "nps", "{:.1f}"),
                      ("generated tokens/s", "tps", "{:.0f}")):
    print(f"| {row} | {cell(vet, k, fmt)} | {cell(hf, k, fmt)} | {ratio(k) if k in ('nps', 'tps') else '-'} |")
print(f"| prompt tokens/s (prefill) | {cell(vet, 'prompt_tps', '{:.0f}')} | - | - |")
print(f"| decode-step tokens/s | {cell(vet, 'step_tps', '{:.0f}')} | - | - |")
print(f"| wall s incl. load + upload | {cell(vet, 'wall', '{:.1f}')} | - | - |")
if rank:
    print(f"| --rank all ({rank['labels']} codes): notes/s, answer rows/s | {rank['nps']:.1f}, "
          f"{rank['rows_per_s']:.0f} ({rank['notes']} notes, {rank['s']:.1f} s) | - | - |")
json.dump({"part": label, "kind": "generate", "device": device, "preset": preset, "notes": int(notes),
           "prompt_tokens": int(plen), "max_new": int(max_new), "batch": int(batch), "vet": vet, "hf": hf, "rank": rank,
           "s_per_1000_notes": vet["s"] * 1000 / vet["notes"] if vet.get("s") else None},
          open(f"{work}/figures.json", "w"))
PY
)
echo "$table"
record_results "Inference, vet-generate vs transformers generate (bench_generate_gpu.sh)" "$table"
record_figures "$work/figures.json"
say "done in $((SECONDS - t_all)) s"
[ $vet_status -eq 0 ] && [ $hf_status -eq 0 ] && echo "ok bench_generate_gpu"
[ $vet_status -eq 0 ] && [ $hf_status -eq 0 ]
