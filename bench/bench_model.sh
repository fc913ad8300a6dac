#!/usr/bin/env bash
# bench_model.sh — forward+backward tokens/s of vet's model core next to PyTorch eager
# (transformers LlamaForCausalLM + peft LoRA), same shapes, same thread count.
#
#   bench/bench_model.sh [PRESET...]        (default: tiny small)
#
# Work: LoRA r=16 on q,k,v,o, a batch of 4 rows x 512 random tokens, 2 threads.
#   vet same work:  one sample per row (causal over all 512 positions), as PyTorch does.
#   vet packed:     rows packed with samples of 128 tokens (attention per sample).
# Env: VET_BUILD (build dir, default build/rel), VET_VENV (default .venv), THREADS (2),
# STEPS (5 per run), ROUNDS (3: vet and PyTorch runs alternate, each side keeps its best
# step over all rounds, so a burst of load on a shared machine hits both alike),
# OMP_WAIT_POLICY (default passive: on a shared machine spinning OpenMP workers steal the
# cores; applies to both sides).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
: "${VET_BUILD:=$top/build/rel}" "${VET_VENV:=$top/.venv}" "${THREADS:=2}" "${STEPS:=5}" "${ROUNDS:=3}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
bench="$VET_BUILD/tests/helpers/vet-bench-model"
[ -x "$bench" ] || { echo "bench_model: $bench missing (run: make helpers)" >&2; exit 1; }
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(tiny small)

field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p"; }
best() {  # best LINE_A LINE_B: the line with more tokens/s (either may be empty)
    local a b
    a=$(echo "$1" | field tokens_per_s) b=$(echo "$2" | field tokens_per_s)
    if [ -z "$a" ] || { [ -n "$b" ] && [ "$b" -gt "$a" ]; }; then echo "$2"; else echo "$1"; fi
}

printf '%-6s %-16s %12s %10s %10s %10s\n' preset run tokens/s step_s GFLOP/s vs_torch
for p in "${presets[@]}"; do
    shape=$("$bench" "$p" --shape)  # the preset's shape, from the C side (one source of truth)
    have_torch=0
    if [ -x "$VET_VENV/bin/python" ] && "$VET_VENV/bin/python" -c 'import torch, transformers, peft' 2>/dev/null; then
        have_torch=1
    fi
    same="" packed="" torch_line=""
    for _ in $(seq "$ROUNDS"); do
        l=$("$bench" "$p" --batch 4 --seq 512 --sample 512 --rank 16 --threads "$THREADS" --steps "$STEPS")
        same=$(best "$same" "$l")
        l=$("$bench" "$p" --batch 4 --seq 512 --sample 128 --rank 16 --threads "$THREADS" --steps "$STEPS")
        packed=$(best "$packed" "$l")
        if [ "$have_torch" = 1 ]; then
            # shellcheck disable=SC2086
            l=$("$VET_VENV/bin/python" "$top/bench/bench_model.py" $shape --batch 4 --seq 512 \
                --rank 16 --threads "$THREADS" --steps "$STEPS" 2>/dev/null) || l=""
            torch_line=$(best "$torch_line" "$l")
        fi
    done
    ttok=$(echo "$torch_line" | field tokens_per_s)
    for run in same packed; do
        line=${!run}
        tok=$(echo "$line" | field tokens_per_s)
        ratio="n/a"
        [ -n "$ttok" ] && ratio=$(awk -v a="$tok" -v b="$ttok" 'BEGIN { printf "%.2fx", a / b }')
        printf '%-6s %-16s %12s %10s %10s %10s\n' "$p" "vet $run" "$tok" "$(echo "$line" | field step_s)" \
            "$(echo "$line" | field gflops)" "$ratio"
    done
    if [ -n "$torch_line" ]; then
        printf '%-6s %-16s %12s %10s %10s %10s\n' "$p" "torch eager" "$ttok" "$(echo "$torch_line" | field step_s)" "-" "1.00x"
    else
        echo "$p: PyTorch reference skipped (no venv at $VET_VENV)"
    fi
    echo "$p: sgemm peak $(echo "$same" | field sgemm_peak_gflops) GFLOP/s on $THREADS threads (one 1024^3 GEMM)"
done
