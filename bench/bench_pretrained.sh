#!/usr/bin/env bash
# bench_pretrained.sh — LoRA training speed on a real pretrained model (SmolLM2-135M-Instruct, the
# GGUF of `make pretrained-model`): vet-train reading the GGUF next to transformers + PEFT
# (bench_train.py) on the same weights (transformers' GGUF loader, dequantized to fp32 and saved
# as a model directory), the same packed rows of 512, LoRA r16 q,k,v,o, batch 4 x accum 4, the
# same thread count. Prints tokens/s and peak RSS of both and the ratios.
# Targets (issue #17): >= 2x transformers + peft tokens/s, <= 0.3x its memory.
#
#   bench/bench_pretrained.sh
# Data: the DLO notes when ../shared is there, else the synthetic notes (build/data/notes.csv).
# Env: VET_BIN, VET_VENV (.venv), THREADS (2), STEPS (2 optimizer steps = 32 rows),
#      GGUF (build/models/SmolLM2-135M-Instruct.Q4_1.gguf).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
: "${VET_BIN:=$top/bin}" "${VET_VENV:=$top/.venv}" "${THREADS:=2}" "${STEPS:=2}"
: "${GGUF:=$top/build/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
# libgomp spins 10,000 rounds before sleeping, as make demo does (docs/results.md: the wait-policy table)
export GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-10000}"
py="$VET_VENV/bin/python"
"$py" -c 'import torch, transformers, peft, gguf, msgpack, zstandard' 2>/dev/null ||
    { echo "bench_pretrained: skip: no reference venv with gguf at $VET_VENV (tests/reference/setup)"; exit 0; }
[ -f "$GGUF" ] || { echo "bench_pretrained: skip: no $GGUF (make pretrained-model)"; exit 0; }
notes="$top/build/data/notes.csv"
shared=${VET_SHARED:-$top/../shared}
[ -f "$shared/data/dlo/dlo_notes.csv" ] && notes="$shared/data/dlo/dlo_notes.csv"
[ -f "$notes" ] || { echo "bench_pretrained: skip: no notes (make data)"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-bench-pretrained.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The torch side's model directory: the GGUF as transformers loads it, saved in fp32.
"$py" - "$GGUF" "$tmp/hf" <<'PY' 2>/dev/null
import json, os, sys
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM
gguf, out = sys.argv[1:]
m = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf), dtype=torch.float32)
os.makedirs(out, exist_ok=True)
tied = m.config.tie_word_embeddings
save_file({k: v.contiguous() for k, v in m.state_dict().items() if not (tied and k == "lm_head.weight")},
          os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
cfg = m.config.to_dict()
cfg.pop("quantization_config", None)
cfg["architectures"] = ["LlamaForCausalLM"]
json.dump(cfg, open(os.path.join(out, "config.json"), "w"))
PY

"$VET_BIN/vet-tokenize" -q --tokenizer "$GGUF" "$notes" -o "$tmp/notes.tok"
"$VET_BIN/vet-pack" --split 100/0/0 --train "$tmp/train.zst" "$tmp/notes.tok"
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { case " $flags " in *" $1 "*) echo yes ;; *) echo no ;; esac; }
echo "model: $(basename "$GGUF"); data: $(basename "$notes"), packed rows of 512; LoRA r16 q,k,v,o; batch 4 x accum 4;" \
     "$STEPS steps; $THREADS threads; CPU avx2 $(has avx2) fma $(has fma) avx512f $(has avx512f)"
vet_line=$("$py" - "$VET_BIN/vet-train" "$GGUF" "$tmp/train.zst" "$tmp/out" "$STEPS" "$THREADS" <<'PY'
import re, resource, subprocess, sys
exe, base, data, out, steps, threads = sys.argv[1:]
p = subprocess.run([exe, "--base", base, "--train", data, "--out", out, "--max-steps", steps, "--epochs", "100",
                    "--threads", threads], capture_output=True, text=True)
m = re.search(r"\(([0-9]+) tokens/s\)", p.stderr)
if p.returncode or not m:
    sys.exit("vet-train failed: " + p.stderr[-500:])
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"tokens_per_s={m.group(1)} peak_rss_mb={rss:.0f}")
PY
)
torch_line=$("$py" "$top/bench/bench_train.py" "$tmp/hf" "$tmp/train.zst" "$STEPS" "$THREADS" 2>/dev/null)
f() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
vt=$(echo "$vet_line" | f tokens_per_s) vr=$(echo "$vet_line" | f peak_rss_mb)
tt=$(echo "$torch_line" | f tokens_per_s) tr=$(echo "$torch_line" | f peak_rss_mb)
printf '%-10s %12s %14s %8s %12s %12s %8s\n' model vet_tok/s torch_tok/s ratio vet_rss_MB torch_rss_MB ratio
printf '%-10s %12s %14s %8s %12s %12s %8s\n' smollm2 "$vt" "$tt" "$(awk -v a="$vt" -v b="$tt" 'BEGIN{printf "%.2fx", a/b}')" \
    "$vr" "$tr" "$(awk -v a="$vr" -v b="$tr" 'BEGIN{printf "%.2fx", a/b}')"
