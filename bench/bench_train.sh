#!/usr/bin/env bash
# bench_train.sh — training speed. First vet-train from scratch (full training, the settings
# `make demo` trains with) on each preset: tokens/s, which with bench/run's CPU line places a
# demo time. Then LoRA training end to end: vet-train next to a PyTorch + PEFT loop with the
# same base model, packed rows and hyperparameters (bench_train.py), same thread count: tokens/s
# and peak RSS of both and the ratios. Target: >= 1.5x tokens/s, <= 0.5x memory. Without the
# reference venv the PyTorch columns are skipped and vet's figures still print.
#
#   bench/bench_train.sh [PRESET...]     (default: tiny small; random-weight bases)
# Data: the DLO notes when ../shared is there, else the synthetic notes (build/data/notes.csv).
# Env: VET_BIN, VET_VENV (.venv), THREADS (2), STEPS (6 optimizer steps = 96 rows).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
: "${VET_BIN:=$top/bin}" "${VET_VENV:=$top/.venv}" "${THREADS:=2}" "${STEPS:=6}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
py="$VET_VENV/bin/python"
torch=1
"$py" -c 'import torch, transformers, peft, msgpack, zstandard' 2>/dev/null ||
    { torch=0; echo "bench_train: no reference venv at $VET_VENV (tests/reference/setup): vet's figures only"; }
vpy=$py  # measures vet-train's peak RSS (the standard library only)
[ $torch = 1 ] || vpy=python3
spm="$top/build/data/tokenizer.model"
[ -f "$spm" ] || { echo "bench_train: skip: no $spm (make tokenizer)"; exit 0; }
notes="$top/build/data/notes.csv"
shared=${VET_SHARED:-$top/../shared}
[ -f "$shared/data/dlo/dlo_notes.csv" ] && notes="$shared/data/dlo/dlo_notes.csv"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-bench-train.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$VET_BIN/vet-tokenize" --spm "$spm" "$notes" -o "$tmp/notes.tok"
"$VET_BIN/vet-pack" --split 100/0/0 --train "$tmp/train.zst" "$tmp/notes.tok"
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(tiny small)
# vet-train's own rate: "N tokens in S s (R tokens/s)"
rate() { sed -n 's/.*(\([0-9]*\) tokens\/s).*/\1/p'; }
echo "data: $(basename "$notes"), packed rows of 512; $THREADS threads"
echo "from scratch, full training (make demo's settings: batch 4 x accum 2, residual dropout 0.2), $((STEPS * 2)) steps:"
printf '%-6s %14s\n' preset vet_tok/s
for p in "${presets[@]}"; do
    r=$("$VET_BIN/vet-train" --init "$p" --tokenizer "$spm" --train "$tmp/train.zst" --out "$tmp/scratch-$p" \
        --epochs 100 --max-steps $((STEPS * 2)) --lr 3e-3 --batch-size 4 --grad-accum 2 --warmup-ratio 0.05 \
        --weight-decay 0.1 --resid-dropout 0.2 --threads "$THREADS" 2>&1 | rate)
    printf '%-6s %14s\n' "$p" "${r:-failed}"
    rm -rf "$tmp/scratch-$p"
done
echo
echo "LoRA r16 q,k,v,o; batch 4 x accum 4; $STEPS steps:"
printf '%-6s %14s %14s %8s %12s %12s %8s\n' preset vet_tok/s torch_tok/s ratio vet_rss_MB torch_rss_MB ratio
for p in "${presets[@]}"; do
    "$VET_BIN/vet-train" -q --init "$p" --tokenizer "$spm" --train "$tmp/train.zst" --out "$tmp/base-$p" --max-steps 1
    rm -rf "$tmp/base-$p/checkpoints"
    # vet: peak RSS of the child as the kernel counts it (the same counter torch reports for itself)
    vet_line=$("$vpy" - "$VET_BIN/vet-train" "$tmp/base-$p" "$tmp/train.zst" "$tmp/out-$p" "$STEPS" "$THREADS" <<'PY'
import re, resource, subprocess, sys
exe, base, data, out, steps, threads = sys.argv[1:]
p = subprocess.run([exe, "--base", base, "--train", data, "--out", out, "--max-steps", steps, "--epochs", "100",
                    "--threads", threads], capture_output=True, text=True)
# vet-train's own rate: "N tokens in S s (R tokens/s)" (S is rounded to 0.1 s, R is not)
m = re.search(r"\(([0-9]+) tokens/s\)", p.stderr)
if p.returncode or not m:
    sys.exit("vet-train failed: " + p.stderr[-500:])
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"tokens_per_s={m.group(1)} peak_rss_mb={rss:.0f}")
PY
)
    torch_line=
    [ $torch = 1 ] && torch_line=$("$py" "$top/bench/bench_train.py" "$tmp/base-$p" "$tmp/train.zst" "$STEPS" "$THREADS" 2>/dev/null)
    f() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
    vt=$(echo "$vet_line" | f tokens_per_s) vr=$(echo "$vet_line" | f peak_rss_mb)
    tt=$(echo "$torch_line" | f tokens_per_s) tr=$(echo "$torch_line" | f peak_rss_mb)
    ratio() { [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}' || echo -; }
    printf '%-6s %14s %14s %8s %12s %12s %8s\n' "$p" "$vt" "${tt:--}" "$(ratio "$vt" "$tt")" \
        "$vr" "${tr:--}" "$(ratio "$vr" "$tr")"
done
