#!/usr/bin/env bash
# test_gpu_emu_parity.sh — the lease's parity harness (tests/gpu/op_parity.c) on the emulated
# device (mk/gpuemu.mk): every kernel, through the host function training calls, against the
# CPU op it must equal, at the harness's small size, under ASan + UBSan; on a device the same
# program says the same thing and times it. One ok line for all its comparisons, a not ok line
# for each failure; `skip` when it was not built (make gpuemu), and in the sanitizer pass of the
# suite (the emulator build is sanitized already: it runs in the plain pass).
set -u
. "$(dirname "$0")/emu_device.sh"
emu_ready gpu_emu_parity op_parity || exit 0
bin=$emu_dir/op_parity
out=$(mktemp "${TMPDIR:-/tmp}/vet-emu-parity.XXXXXX")
trap 'rm -f "$out" "$out.err"' EXIT
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$bin" --size small --seed 1 --reps 0 >"$out" 2>"$out.err"
rc=$?
n_ok=$(grep -c '^ok ' "$out")
grep '^not ok ' "$out" | sed 's/^not ok /not ok gpu_emu_parity: /'
# the attention's five variants and the LoRA products each reached their kernels; the 16-bit
# LoRA entries: 4 products x 2 formats x 3 ranks x 2 widths, each its fp32 twin's bits; the
# tensor-core LoRA entries: 4 products x (3 ranks x 2 widths x (bf16 with and without dropout,
# fp16 with) + one slice of 20 rows), each within 1e-4 of the CPU's product on the rounded operands
wmma=$(grep -c '^ok attention_forward_bf16_wmma ' "$out") lora=$(grep -c '^ok lora_grad_b' "$out")
lora16=$(grep -c '^ok lora_[a-z_]*16 == fp32 twin: 0 of ' "$out")
mma=$(grep -c '^ok lora_[a-z_]*_mma vs rounded operands: ' "$out")
# the packed-code decode kernel on tensor cores: 2 kinds x (4 row counts + the refusal of 65)
qmma=$(grep -c '^ok matmul_rows_q_mma ' "$out")
# the 16-byte element-wise passes against one element a thread: 8 ops, a wide and a narrow row each
wide=$(grep -c '^ok \(wide\|narrow\) [a-z_0-9 ]*: the same bits as ' "$out")
# the attention's output in bf16 (training's att16), each of the five variants: its fp32 output
# rounded, bit for bit, and dq, dk, dv from it
out16=$(grep -c '^ok attention_forward_bf16[a-z_]* out16: the same bits as ' "$out")
from16=$(grep -c '^ok attention_backward_bf16[a-z_]* d[qkv] from out16: ' "$out")
# the up product into a 16-bit output (gate and up with adapters): 2 formats x 2 widths, bit for bit
up16=$(grep -c '^ok lora_up16 b\{0,1\}f16 == fp32 twin: the same bits as ' "$out")
# RoPE in place on bf16 (q and k as their projections write them): the bits on the widened values
rope16=$(grep -c '^ok rope_forward_inplace_bf16: the same bits as ' "$out")
# the 16-bit linear layer with a bias (Qwen2's q, k, v in the 16-bit mode): bf16 and fp16
biased=$(grep -c '^ok matmul_forward_half_out b\{0,1\}f16 + bias vs rounded: ' "$out")
if [ "$rc" -eq 0 ] && [ "$n_ok" -gt 150 ] && [ "$wmma" -gt 0 ] && [ "$lora" -gt 0 ] && [ "$lora16" -eq 48 ] &&
    [ "$mma" -eq 76 ] && [ "$qmma" -eq 10 ] && [ "$wide" -eq 16 ] && [ "$out16" -eq 5 ] && [ "$from16" -eq 15 ] &&
    [ "$up16" -eq 4 ] && [ "$rope16" -eq 1 ] && [ "$biased" -eq 2 ] &&
    grep -q '^# 0 failed$' "$out"; then
    echo "ok gpu_emu_parity: every kernel against its CPU op, $n_ok comparisons"
else
    echo "not ok gpu_emu_parity: exit status $rc, $n_ok ok lines ($wmma WMMA attention, $lora lora_grad_b, $lora16 of 48 16-bit LoRA, $mma of 76 tensor-core LoRA, $qmma of 10 packed-code mma, $wide of 16 wide/narrow, $out16 of 5 bf16 attention outputs, $from16 of 15 gradients from them, $up16 of 4 16-bit up products, $rope16 of 1 in-place bf16 RoPE, $biased of 2 16-bit outputs with a bias)"
    tail -n 30 "$out.err" >&2
fi
exit 0
