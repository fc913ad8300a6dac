#!/usr/bin/env bash
# test_device_emu.sh — vet-train and vet-generate with --device cuda on the emulated device
# (mk/gpuemu.mk: vet's kernels as written, run by the SIMT emulator, with the CUDA runtime and
# cuBLAS on the host; ASan + UBSan): the trainer's device path and kernels/host/gpu_infer.c over
# the real kernels, where test_train_device.sh and test_generate_device.sh run them over the
# stand-in's CPU ops. The kernels sum in other orders than the CPU core, so the losses are
# compared to a tolerance, and bit-equality is asked only of the device against itself (a
# resumed run, a checkpointed one). `skip` when it was not built (make gpuemu) and in
# the sanitizer pass of the suite (the emulator build is sanitized already).
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
. "$VET_TOP/tests/e2e/emu_device.sh"
emu_ready device_emu vet-train vet-generate || exit 0
dir=$emu_dir
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-device-emu.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

. "$VET_TOP/tests/e2e/fault_fixture.sh"
make_fixture "$tmp" || { fail "device_emu_fixture"; exit 1; }
DUMP=$VET_BIN/vet-dump

# Rows of 128 tokens (the fixture packs 256): the emulator runs a step's every thread in turn.
mkdir -p "$tmp/p128"
"$VET_BIN/vet-pack" "$tmp/notes.tok" --out "$tmp/p128" --seq-len 128 2>/dev/null || { fail device_emu_pack; exit 0; }
common=(--threads 2 --base "$tmp/base" --train "$tmp/p128/train.msgpack.zst" --val "$tmp/p128/val.msgpack.zst"
        --epochs 100 --max-steps 4 --batch-size 2 --grad-accum 2 --lr 1e-3 --lora-r 4 --lora-alpha 8
        --lora-dropout 0.1 --save-every 2 --eval-every 2 --max-grad-norm 0.1)
# train BINARY OUT [FLAGS...], stderr into OUT.err
train() { local bin=$1 out=$2; shift 2; "$bin" "${common[@]}" --out "$out" "$@" 2>"$out.err"; }

train "$VET_BIN/vet-train" "$tmp/cpu" --device cpu || fail device_emu_cpu_run
train "$dir/vet-train" "$tmp/e32" --device cuda --fp32
st32=$?

# steps A B TOL: the same steps, and loss, val_loss, grad_norm within TOL of A's (relative)
steps_close() {
    /usr/bin/python3 - "$1/train.log.jsonl" "$2/train.log.jsonl" "$3" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
tol = float(sys.argv[3])
if len(a) != len(b) or len(a) != 4:
    sys.exit(f"{len(a)} vs {len(b)} log lines (4 steps)")
for x, y in zip(a, b):
    if x["step"] != y["step"] or x["lr"] != y["lr"] or x["loss_tokens"] != y["loss_tokens"]:
        sys.exit(f"step {x['step']}: step, lr or loss_tokens differ")
    for k in ("loss", "grad_norm", "val_loss"):
        if (k in x) != (k in y):
            sys.exit(f"step {x['step']}: {k} in one log only")
        if k in x and abs(x[k] - y[k]) > tol * max(1.0, abs(x[k])):
            sys.exit(f"step {x['step']}: {k} {x[k]} (cpu) vs {y[k]} (emulated device)")
PY
}

# 1. fp32 on the device: the CPU core's run (dropout's masks, clipping, AdamW, the validation
#    loss) to the summation order.
fp32_ok() {
    [ $st32 -eq 0 ] || { tail -5 "$tmp/e32.err" >&2; return 1; }
    grep -q '^vet-train: device cuda:0 vet SIMT emulator on the CPU .*, base weights fp32$' "$tmp/e32.err" || return 1
    steps_close "$tmp/cpu" "$tmp/e32" 1e-4
}
check device_emu_train_fp32_matches_cpu fp32_ok

# 2. bf16 base weights (the default for LoRA on cuda: bf16 GEMM inputs, the register attention
#    on mma.sync): the CPU's losses within bf16's rounding.
bf16_ok() {
    train "$dir/vet-train" "$tmp/e16" --device cuda --bf16 || { tail -5 "$tmp/e16.err" >&2; return 1; }
    grep -q '^vet-train: device cuda:0 .*, base weights bf16$' "$tmp/e16.err" || return 1
    steps_close "$tmp/cpu" "$tmp/e16" 3e-2
}
check device_emu_train_bf16_matches_cpu bf16_ok

# 2b. The same bf16 run with the element-wise passes one element a thread (VET_GPU_WIDE=0) where
#     the default takes 16 bytes a thread: the same adapter bytes (conversions, SwiGLU, the residual
#     add, RMSNorm and RoPE through both paths of the real kernels over a whole run).
narrow_ok() {
    [ -f "$tmp/e16/adapter_model.safetensors" ] || return 1
    VET_GPU_WIDE=0 train "$dir/vet-train" "$tmp/n16" --device cuda --bf16 -q || { tail -5 "$tmp/n16.err" >&2; return 1; }
    cmp "$tmp/e16/adapter_model.safetensors" "$tmp/n16/adapter_model.safetensors" >&2
}
check device_emu_train_bf16_narrow_same_bytes narrow_ok

# 2c. fp32 with the adapters' up product by vet's kernel (VET_GPU_LORA_UP=vet) instead of the
#     SGEMM: the default run's steps to fp32 rounding (the rank's sum in another order).
up_ok() {
    [ $st32 -eq 0 ] || return 1
    VET_GPU_LORA_UP=vet train "$dir/vet-train" "$tmp/u32" --device cuda --fp32 -q || { tail -5 "$tmp/u32.err" >&2; return 1; }
    steps_close "$tmp/e32" "$tmp/u32" 1e-5
}
check device_emu_train_lora_up_kernel up_ok

# 3. The device against itself: resumed from its step-2 checkpoint, the same adapter bytes.
resume_ok() {
    [ $st32 -eq 0 ] || return 1
    cp -r "$tmp/e32" "$tmp/res"
    rm -f "$tmp/res"/adapter_*
    train "$dir/vet-train" "$tmp/res" --device cuda --fp32 --resume "$tmp/res" -q ||
        { cat "$tmp/res.err" >&2; return 1; }
    cmp "$tmp/e32/adapter_model.safetensors" "$tmp/res/adapter_model.safetensors" >&2
}
check device_emu_train_resume_same_bytes resume_ok

# 4. --grad-checkpoint: the recomputed layers give the same bytes as the kept ones; with
#    =keep-attention in bf16 (the tensor-core attention's output and lse kept, its forward not
#    rerun) the same bytes as the bf16 run; so does =1 (the first layer recomputed, the rest kept).
ckpt_ok() {
    train "$dir/vet-train" "$tmp/ck" --device cuda --fp32 --grad-checkpoint -q || { cat "$tmp/ck.err" >&2; return 1; }
    cmp "$tmp/e32/adapter_model.safetensors" "$tmp/ck/adapter_model.safetensors" >&2 || return 1
    [ -f "$tmp/e16/adapter_model.safetensors" ] || return 1
    train "$dir/vet-train" "$tmp/ck16" --device cuda --bf16 --grad-checkpoint=keep-attention -q ||
        { cat "$tmp/ck16.err" >&2; return 1; }
    cmp "$tmp/e16/adapter_model.safetensors" "$tmp/ck16/adapter_model.safetensors" >&2 || return 1
    train "$dir/vet-train" "$tmp/ck1" --device cuda --bf16 --grad-checkpoint=1 -q || { cat "$tmp/ck1.err" >&2; return 1; }
    cmp "$tmp/e16/adapter_model.safetensors" "$tmp/ck1/adapter_model.safetensors" >&2
}
check device_emu_train_checkpointing_same_bytes ckpt_ok

# 5. The device's free memory comes from cudaMemGetInfo through kernels/context.cu (the stand-in
#    replaces that file): a plan over what the emulated device has (VET_EMU_MEM_MIB, 256 MiB
#    of it kept back) is refused with the numbers and exit 1, before anything is written.
memory_ok() {
    local status
    VET_EMU_MEM_MIB=257 train "$dir/vet-train" "$tmp/small" --device cuda --fp32 --max-steps 1
    status=$?
    [ "$status" -eq 1 ] || { echo "exit $status, want 1: $(cat "$tmp/small.err")" >&2; return 1; }
    grep -qE 'the model needs [0-9.]+ MiB on cuda:0 \(weights .*\) but only 1.0 MiB of its 257.0 MiB free can be planned' \
        "$tmp/small.err" || { cat "$tmp/small.err" >&2; return 1; }
    [ ! -e "$tmp/small/adapter_model.safetensors" ]
}
check device_emu_train_memory_refused memory_ok

# 5b. VET_GPU_ATTENTION=cudnn where cuDNN's attention cannot run (the emulator's build has no
#     cuDNN frontend: its kernels are NVIDIA's): the first step stops with the reason, exit 2 (a
#     setting to change), nothing written; the error crosses the trainer cleanly (ASan here).
cudnn_missing_ok() {
    local status
    VET_GPU_ATTENTION=cudnn train "$dir/vet-train" "$tmp/cudnn" --device cuda --bf16 --max-steps 1
    status=$?
    [ "$status" -eq 2 ] || { echo "exit $status, want 2: $(cat "$tmp/cudnn.err")" >&2; return 1; }
    grep -q 'cuDNN attention: this build has no cuDNN frontend' "$tmp/cudnn.err" || { cat "$tmp/cudnn.err" >&2; return 1; }
    [ ! -e "$tmp/cudnn/adapter_model.safetensors" ]
}
check device_emu_train_cudnn_unavailable cudnn_missing_ok

# 6. vet-generate: fp32 on the device decodes the CPU's tokens greedily, batched, with the
#    adapter (prefill, the KV cache, decode attention and the argmax on the device).
n_notes=$("$DUMP" -c "$tmp/rows.tok")
gen() {
    local bin=$1 out=$2
    shift 2
    "$bin" --threads 2 -m "$tmp/base" -a "$tmp/adapter" "$@" "$tmp/rows.tok" -o "$out" 2>"$out.err"
}
records() { "$DUMP" -r "$1" | sed 's/"ms":[0-9.e+-]*,//'; }
same() {
    [ -s "$1" ] && [ -s "$2" ] || { echo "missing output: $(cat "$1.err" "$2.err" 2>/dev/null)" >&2; return 1; }
    [ "$("$DUMP" -c "$1")" = "$n_notes" ] || { echo "$1: not $n_notes notes" >&2; return 1; }
    diff <(records "$1") <(records "$2") >&2
}
gen "$VET_BIN/vet-generate" "$tmp/cpu.pred" -q -n 4 -b 4 --device cpu
gen "$dir/vet-generate" "$tmp/e32.pred" -q -n 4 -b 32 --device cuda --fp32
check device_emu_generate_fp32_equals_cpu same "$tmp/cpu.pred" "$tmp/e32.pred"
exit 0
