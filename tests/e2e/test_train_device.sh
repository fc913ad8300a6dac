#!/usr/bin/env bash
# test_train_device.sh — vet-train --device cuda, run without a GPU: build/standin/vet-train is
# vet-train linked against the CPU stand-in of the CUDA ops (mk/gpustub.mk, ASan + UBSan), so
# the trainer's device path (memory plan, device forward/backward, the gradient norm, clipping
# and AdamW on the device, state down for checkpoints, state up on resume) runs here. In fp32 the stand-in computes
# the CPU core's arithmetic, so the same binary's --device cpu and --device cuda --fp32 must
# write byte-identical adapters and logs. Against bin/vet-train (built -O3, the stand-in -O1)
# the losses agree to 1e-5. `skip` when the stand-in build is absent (make gpustub).
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-train-dev.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

# 1. The real binary on a machine without a usable GPU: exit 2 with the reason. (On a GPU
#    machine the device is accepted and the missing file fails later: not applicable.)
no_gpu() {
    local msg status
    msg=$("$VET_BIN/vet-train" --device cuda --base "$tmp/none" --train "$tmp/none.zst" --out "$tmp/none-out" 2>&1)
    status=$?
    if [ $status -ne 2 ] && ! grep -q -- "--device cuda" <<<"$msg"; then
        echo "skip train_device_unavailable_exit2: a CUDA device is usable here"
        return
    fi
    if [ $status -eq 2 ] && grep -q -- "--device cuda: .*; use --device cpu" <<<"$msg"; then
        ok train_device_unavailable_exit2
    else
        echo "exit $status: $msg" >&2
        fail train_device_unavailable_exit2
    fi
}
no_gpu

sbin=${VET_STANDIN:-$VET_TOP/build/standin}/vet-train
if [ ! -x "$sbin" ]; then
    echo "skip train_device: $sbin not built (make gpustub)"
    exit 0
fi

. "$VET_TOP/tests/e2e/fault_fixture.sh"
make_fixture "$tmp" || { fail "train_device_fixture"; exit 1; }

common=(--threads 2 --base "$tmp/base" --train "$tmp/train.msgpack.zst" --val "$tmp/val.msgpack.zst"
        --epochs 100 --max-steps 6 --batch-size 2 --grad-accum 2 --lr 1e-3 --lora-r 4 --lora-alpha 8
        --save-every 3 --eval-every 2 --max-grad-norm 0.1)  # clipping on: the norms are ~0.12
# runs BINARY OUT [FLAGS...], stderr into OUT.err
run() { local bin=$1 out=$2; shift 2; "$bin" "${common[@]}" --out "$out" "$@" 2>"$out.err"; }
# the log without its timings, which differ run to run
steps() { sed -E 's/,"tokens_per_s":[^,]*,"elapsed_s":[^,}]*//' "$1/train.log.jsonl"; }

run "$VET_BIN/vet-train" "$tmp/cpu" || fail train_device_cpu_run
run "$sbin" "$tmp/scpu" --device cpu || fail train_device_standin_cpu_run
run "$sbin" "$tmp/cuda" --device cuda --fp32
cuda_status=$?

# 2. fp32 on the device = the CPU core: adapter bytes, checkpoint, every log line.
fp32_ok() {
    [ $cuda_status -eq 0 ] || { cat "$tmp/cuda.err" >&2; return 1; }
    cmp "$tmp/scpu/adapter_model.safetensors" "$tmp/cuda/adapter_model.safetensors" >&2 || return 1
    cmp "$tmp/scpu/adapter_config.json" "$tmp/cuda/adapter_config.json" >&2 || return 1
    cmp "$tmp/scpu/checkpoints/step-00000003/train.safetensors" \
        "$tmp/cuda/checkpoints/step-00000003/train.safetensors" >&2 || return 1
    [ "$(steps "$tmp/scpu" | wc -l)" -eq 6 ] && diff <(steps "$tmp/scpu") <(steps "$tmp/cuda") >&2
}
check train_device_fp32_byte_identical fp32_ok

# 3. Against the optimized CPU binary: the same steps, losses and norms to 1e-5.
vs_cpu_ok() {
    [ $cuda_status -eq 0 ] || return 1
    /usr/bin/python3 - "$tmp/cpu/train.log.jsonl" "$tmp/cuda/train.log.jsonl" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
if len(a) != len(b) or not a:
    sys.exit(f"{len(a)} vs {len(b)} log lines")
for x, y in zip(a, b):
    for k in ("step", "loss", "lr", "grad_norm", "loss_tokens", "val_loss"):
        if (k in x) != (k in y):
            sys.exit(f"step {x['step']}: {k} in one log only")
        if k in x and abs(x[k] - y[k]) > 1e-5 * max(1.0, abs(x[k])):
            sys.exit(f"step {x['step']}: {k} {x[k]} (cpu) vs {y[k]} (cuda)")
PY
}
check train_device_matches_cpu_binary vs_cpu_ok

# 4. It says which device, and prints the memory plan before training.
plan_ok() {
    grep -q '^vet-train: device cuda:0 .*, base weights fp32$' "$tmp/cuda.err" &&
        grep -qE '^vet-train: device memory plan for batches of 2 x [0-9]+: weights [0-9.]+ [KMG]iB, training state [0-9.]+ [KMG]iB, activations [0-9.]+ [KMG]iB, scratch [0-9.]+ [KMG]iB; total [0-9.]+ [KMG]iB of 64.00 GiB free' "$tmp/cuda.err" &&
        grep -q '^vet-train: device cpu (2 threads)' "$tmp/cpu.err"
}
check train_device_plan_printed plan_ok

# 5. --resume on the device: from its own checkpoint at step 3, and from the CPU's (a checkpoint
#    resumes on either device): both end byte-identical to the uninterrupted run.
resume_ok() {
    [ $cuda_status -eq 0 ] || return 1
    local src
    for src in cuda scpu; do
        cp -r "$tmp/$src" "$tmp/res-$src"
        rm -f "$tmp/res-$src"/adapter_*
        run "$sbin" "$tmp/res-$src" --device cuda --fp32 --resume "$tmp/res-$src" -q || return 1
        cmp "$tmp/cuda/adapter_model.safetensors" "$tmp/res-$src/adapter_model.safetensors" >&2 || return 1
    done
}
check train_device_resume_byte_identical resume_ok

# 6. A plan larger than the free memory is refused with the numbers, before anything is written;
#    the same run with a little more memory goes ahead. (The stand-in reports VET_STANDIN_MEM
#    free; vet-train keeps 256 MiB of it back, and this plan is a few MiB.)
memory_ok() {
    local msg status
    VET_STANDIN_MEM=257M run "$sbin" "$tmp/small" --device cuda --max-steps 1
    status=$?
    msg=$(cat "$tmp/small.err")
    [ "$status" -eq 1 ] || { echo "exit $status, want 1: $msg" >&2; return 1; }
    grep -qE 'the model needs [0-9.]+ MiB on cuda:0 \(weights .*\) but only 1.0 MiB of its 257.0 MiB free can be planned' <<<"$msg" ||
        { echo "$msg" >&2; return 1; }
    [ ! -e "$tmp/small" ] || { echo "wrote output before refusing" >&2; return 1; }
    VET_STANDIN_MEM=300M run "$sbin" "$tmp/fits" --device cuda --max-steps 1 -q
}
check train_device_plan_refused_when_too_big memory_ok

# final_losses_within FRACTION DIR_A DIR_B LABEL_A LABEL_B: two runs logged as many steps and
# their final losses within FRACTION of B's (printed with the labels); final_losses_close: 1%.
final_losses_within() {
    /usr/bin/python3 - "$1" "$2/train.log.jsonl" "$3/train.log.jsonl" "$4" "$5" <<'PY'
import json, sys
tol = float(sys.argv[1])
a = [json.loads(l) for l in open(sys.argv[2])]
b = [json.loads(l) for l in open(sys.argv[3])]
print(f"final loss {sys.argv[4]} {a[-1]['loss']:.6f}, {sys.argv[5]} {b[-1]['loss']:.6f}", file=sys.stderr)
sys.exit(0 if len(a) == len(b) and abs(a[-1]["loss"] - b[-1]["loss"]) <= tol * b[-1]["loss"] else 1)
PY
}
final_losses_close() { final_losses_within 0.01 "$@"; }

# 7. bf16 base weights (the default on cuda): completes, says bf16, loss within 5% of the CPU's.
bf16_ok() {
    run "$sbin" "$tmp/bf16" --device cuda || { cat "$tmp/bf16.err" >&2; return 1; }
    grep -q '^vet-train: device cuda:0 .*, base weights bf16$' "$tmp/bf16.err" || return 1
    ! cmp -s "$tmp/cuda/adapter_model.safetensors" "$tmp/bf16/adapter_model.safetensors" || return 1
    final_losses_within 0.05 "$tmp/bf16" "$tmp/cpu" "cuda bf16" cpu
}
check train_device_bf16_close_to_cpu bf16_ok


# env_refused SETTING NAME PATTERN: vet-train with SETTING (VAR=VALUE) in its environment exits 2
# before training with a message matching PATTERN, and writes no adapter into $tmp/NAME.
env_refused() {
    local msg status
    msg=$(env "$1" "$sbin" "${common[@]}" --out "$tmp/$2" --device cuda 2>&1)
    status=$?
    [ $status -eq 2 ] && grep -q "$3" <<<"$msg" && [ ! -e "$tmp/$2/adapter_model.safetensors" ] ||
        { echo "$1: exit $status: $msg" >&2; return 1; }
}

# 7b. VET_GPU_ATTENTION: bf16 runs attention on tensor cores (the stand-in replays their
#     arithmetic); =tc says so (the same bytes), =tc-sync and =tc-transposed take other
#     tensor-core kernels (the same numbers: the same bytes here), =fp32 keeps the fp32 kernels (another adapter,
#     the final loss within 1%); any other value is refused before training (exit 2).
attention_env_ok() {
    [ -d "$tmp/bf16" ] || return 1
    VET_GPU_ATTENTION=tc run "$sbin" "$tmp/attn-tc" --device cuda || return 1
    cmp "$tmp/bf16/adapter_model.safetensors" "$tmp/attn-tc/adapter_model.safetensors" >&2 || return 1
    VET_GPU_ATTENTION=tc-transposed run "$sbin" "$tmp/attn-tr" --device cuda || return 1
    cmp "$tmp/bf16/adapter_model.safetensors" "$tmp/attn-tr/adapter_model.safetensors" >&2 || return 1
    VET_GPU_ATTENTION=tc-sync run "$sbin" "$tmp/attn-sync" --device cuda || return 1
    cmp "$tmp/bf16/adapter_model.safetensors" "$tmp/attn-sync/adapter_model.safetensors" >&2 || return 1
    VET_GPU_ATTENTION=fp32 run "$sbin" "$tmp/attn-32" --device cuda || { cat "$tmp/attn-32.err" >&2; return 1; }
    ! cmp -s "$tmp/bf16/adapter_model.safetensors" "$tmp/attn-32/adapter_model.safetensors" || return 1
    final_losses_close "$tmp/bf16" "$tmp/attn-32" "bf16: tensor-core attention" "fp32 attention" || return 1
    env_refused VET_GPU_ATTENTION=flash attn-bad "VET_GPU_ATTENTION=flash: use tc .* or fp32"
}
check train_device_attention_env attention_env_ok

# 7c. VET_GPU_LORA_FUSED: 0 runs the unfused LoRA dropout (a dropout pass, then the GEMMs), which
#     the stand-in's fused ops also run, so in fp32 the adapter's bytes are the same (on a GPU only
#     the order of the sums differs). In bf16 the fused products read the 16-bit copies of their
#     inputs and douts (PEFT's arithmetic in a 16-bit model) and the unfused ones the fp32 values:
#     another adapter, the final loss within 1%. Another value is refused before training (exit 2).
lora_fused_env_ok() {
    [ -d "$tmp/bf16" ] && [ -d "$tmp/cuda" ] || return 1
    VET_GPU_LORA_FUSED=0 run "$sbin" "$tmp/unfused32" --device cuda --fp32 || { cat "$tmp/unfused32.err" >&2; return 1; }
    cmp "$tmp/cuda/adapter_model.safetensors" "$tmp/unfused32/adapter_model.safetensors" >&2 || return 1
    VET_GPU_LORA_FUSED=0 run "$sbin" "$tmp/unfused" --device cuda || { cat "$tmp/unfused.err" >&2; return 1; }
    ! cmp -s "$tmp/bf16/adapter_model.safetensors" "$tmp/unfused/adapter_model.safetensors" || return 1
    final_losses_close "$tmp/bf16" "$tmp/unfused" "bf16: adapters on the 16-bit copies" "on fp32" || return 1
    env_refused VET_GPU_LORA_FUSED=yes unfused-bad "VET_GPU_LORA_FUSED=yes: use 1 (the default) or 0"
}
check train_device_lora_fused_env lora_fused_env_ok

# 7d. VET_GPU_LORA_MMA: in bf16 the adapters' long products run on tensor cores by default (every
#     operand rounded to bf16, a bf16-autocast PEFT's arithmetic); 0 keeps the CUDA-core kernels
#     (fp32 adapters on the bf16 values): another adapter, the final loss within 1%. fp32 has no
#     such products: the same bytes either way. Another value is refused before training (exit 2).
lora_mma_env_ok() {
    [ -d "$tmp/bf16" ] && [ -d "$tmp/cuda" ] || return 1
    VET_GPU_LORA_MMA=0 run "$sbin" "$tmp/cuda-cores" --device cuda || { cat "$tmp/cuda-cores.err" >&2; return 1; }
    ! cmp -s "$tmp/bf16/adapter_model.safetensors" "$tmp/cuda-cores/adapter_model.safetensors" || return 1
    final_losses_close "$tmp/bf16" "$tmp/cuda-cores" "bf16: adapters on tensor cores" "on CUDA cores" || return 1
    VET_GPU_LORA_MMA=0 run "$sbin" "$tmp/cuda-cores32" --device cuda --fp32 || { cat "$tmp/cuda-cores32.err" >&2; return 1; }
    cmp "$tmp/cuda/adapter_model.safetensors" "$tmp/cuda-cores32/adapter_model.safetensors" >&2 || return 1
    env_refused VET_GPU_LORA_MMA=on mma-bad "VET_GPU_LORA_MMA=on: use 1 (the default) or 0"
}
check train_device_lora_mma_env lora_mma_env_ok

# 7e. VET_GPU_WIDE=0: the element-wise passes one element a thread instead of 16 bytes: the same
#     bits by contract (the stand-in's CPU ops have one path: the same bytes here; the emulated
#     device's bf16 run checks the kernels, test_device_emu.sh). Another value is refused (exit 2).
wide_env_ok() {
    [ -d "$tmp/bf16" ] || return 1
    VET_GPU_WIDE=0 run "$sbin" "$tmp/narrow" --device cuda || { cat "$tmp/narrow.err" >&2; return 1; }
    cmp "$tmp/bf16/adapter_model.safetensors" "$tmp/narrow/adapter_model.safetensors" >&2 || return 1
    env_refused VET_GPU_WIDE=2 wide-bad "VET_GPU_WIDE=2: use 1 (the default) or 0"
}
check train_device_wide_env wide_env_ok

# 7f. VET_GPU_LORA_UP=vet: the adapters' up product by vet's kernel instead of cuBLAS's SGEMM: the
#     same numbers up to the order of the rank's sum (the stand-in's SGEMM is the CPU's BLAS, whose
#     order depends on the CPU: the final loss within 1%, not the bytes); the profile shows the
#     route: no cuBLAS adapter GEMM left (`gemm_lora`), where the default has them. Another value
#     is refused (exit 2).
lora_up_env_ok() {
    [ -d "$tmp/cuda" ] || return 1
    VET_GPU_LORA_UP=vet VET_GPU_PROFILE="$tmp/up.json" run "$sbin" "$tmp/up" --device cuda --fp32 ||
        { cat "$tmp/up.err" >&2; return 1; }
    final_losses_close "$tmp/cuda" "$tmp/up" "fp32: up product by cuBLAS" "by vet's kernel" || return 1
    VET_GPU_LORA_UP=cublas VET_GPU_PROFILE="$tmp/up0.json" run "$sbin" "$tmp/up0" --device cuda --fp32 || return 1
    /usr/bin/python3 - "$tmp/up.json" "$tmp/up0.json" <<'PY' || return 1
import json, sys
vet, blas = (json.load(open(p))["kinds"] for p in sys.argv[1:3])
print(f"gemm_lora segments: {vet['gemm_lora']['segments']} with VET_GPU_LORA_UP=vet, "
      f"{blas['gemm_lora']['segments']} with cublas", file=sys.stderr)
sys.exit(0 if vet["gemm_lora"]["segments"] == 0 and blas["gemm_lora"]["segments"] > 0 else 1)
PY
    env_refused VET_GPU_LORA_UP=mine up-bad "VET_GPU_LORA_UP=mine: use cublas (the default) or vet"
}
check train_device_lora_up_env lora_up_env_ok

# 7g. Rank over 32 (vet's adapter kernels take blocks of 32; the device keeps B's columns in
#     blocks, kernels/host/gpu_lora_layout.c) on a model wide enough for rank 40 (hidden 96):
#     fp32 on the device against the CPU (the blocks' products add in another order: losses and
#     norms to 1e-5), the adapter file in PEFT's layout (the same tensors and shapes as the CPU's);
#     resumed from its checkpoint at step 3, the same adapter bytes as the run without a stop;
#     bf16 completes, the final loss within 5% of the CPU's.
rank_blocks_ok() {
    local w=$tmp/wide
    mkdir -p "$w"
    sed 's/"hidden_size": 32/"hidden_size": 96/; s/"num_key_value_heads": 2/"num_key_value_heads": 4/' \
        "$tmp/micro.json" >"$w/wide.json"
    "$VET_BIN/vet-train" -q --threads 2 --init "$w/wide.json" --tokenizer "$tmp/tok.model" \
        --train "$tmp/train.msgpack.zst" --out "$w/base" --max-steps 1 --batch-size 4 --grad-accum 1 || return 1
    local wc=("${common[@]}" --base "$w/base" --lora-r 40 --lora-alpha 16 --lora-dropout 0.1)
    "$sbin" "${wc[@]}" --out "$w/cpu" --device cpu 2>"$w/cpu.err" || { cat "$w/cpu.err" >&2; return 1; }
    "$sbin" "${wc[@]}" --out "$w/cuda" --device cuda --fp32 2>"$w/cuda.err" || { cat "$w/cuda.err" >&2; return 1; }
    /usr/bin/python3 - "$w/cpu/train.log.jsonl" "$w/cuda/train.log.jsonl" <<'PY' || return 1
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
if len(a) != len(b) or len(a) != 6:
    sys.exit(f"{len(a)} vs {len(b)} log lines")
for x, y in zip(a, b):
    for k in ("loss", "grad_norm", "val_loss"):
        if k in x and abs(x[k] - y[k]) > 1e-5 * max(1.0, abs(x[k])):
            sys.exit(f"rank 40, step {x['step']}: {k} {x[k]} (cpu) vs {y[k]} (cuda)")
PY
    /usr/bin/python3 - "$w/cpu/adapter_model.safetensors" "$w/cuda/adapter_model.safetensors" <<'PY' || return 1
import array, json, struct, sys
def tensors(path):  # name -> (dtype, shape, values) from a safetensors file of F32 tensors
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h, data = json.loads(f.read(n)), f.read()
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        lo, hi = v["data_offsets"]
        out[k] = (v["dtype"], v["shape"], array.array("f", data[lo:hi]))
    return out
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
if sorted(a) != sorted(b) or any(a[k][:2] != b[k][:2] for k in a) or not any(a[k][1][-1] == 40 for k in a):
    sys.exit("rank 40: the adapters' tensors differ in names or shapes")
for k in a:  # the device's adapter in PEFT's layout: each value the CPU's, to fp32's reordering
    top = max(abs(x) for x in a[k][2])
    err = max(abs(x - y) for x, y in zip(a[k][2], b[k][2]))
    if err > 1e-4 * top:
        sys.exit(f"rank 40: {k}: max |cpu - cuda| {err:.3g} of {top:.3g}")
PY
    cp -r "$w/cuda" "$w/res"
    rm -f "$w/res"/adapter_*
    "$sbin" "${wc[@]}" --out "$w/res" --device cuda --fp32 --resume "$w/res" -q 2>"$w/res.err" ||
        { cat "$w/res.err" >&2; return 1; }
    cmp "$w/cuda/adapter_model.safetensors" "$w/res/adapter_model.safetensors" >&2 || return 1
    "$sbin" "${wc[@]}" --out "$w/bf16" --device cuda 2>"$w/bf16.err" || { cat "$w/bf16.err" >&2; return 1; }
    final_losses_within 0.05 "$w/bf16" "$w/cpu" "rank 40: cuda bf16" cpu
}
check train_device_rank_over_32 rank_blocks_ok

# 8. Full training (from scratch) on the device: fp32, byte-identical to the CPU path; bf16 refused.
full_ok() {
    local args=(--threads 2 -q --init "$tmp/micro.json" --tokenizer "$tmp/tok.model" --train "$tmp/train.msgpack.zst"
                --max-steps 3 --batch-size 4 --grad-accum 1 --lr 3e-3)
    "$sbin" "${args[@]}" --out "$tmp/full-cpu" --device cpu || return 1
    "$sbin" "${args[@]}" --out "$tmp/full-cuda" --device cuda || return 1
    cmp "$tmp/full-cpu/model.safetensors" "$tmp/full-cuda/model.safetensors" >&2 || return 1
    local msg
    msg=$("$sbin" "${args[@]}" --out "$tmp/full-bf16" --device cuda --bf16 2>&1)
    [ $? -eq 2 ] && grep -q "full training on CUDA keeps fp32 weights" <<<"$msg"
}
check train_device_full_fp32_identical full_ok

# 9. --grad-checkpoint on the device: the same adapter, checkpoint and log bytes as without it
#    (fp32 and bf16, dropout 0.1 as by default), a smaller activations figure in the plan, and a
#    note that says so. On the CPU it is accepted and changes nothing (the CPU keeps activations).
act_bytes() {  # the plan's activations in bytes, from an .err file
    sed -nE 's/.*device memory plan .* activations ([0-9.]+) ([KMG])iB.*/\1 \2/p' "$1" |
        awk '{ m = $2 == "K" ? 1024 : $2 == "M" ? 1048576 : 1073741824; printf "%.0f\n", $1 * m }'
}
ckpt_ok() {
    [ $cuda_status -eq 0 ] || return 1
    run "$sbin" "$tmp/ckpt" --device cuda --fp32 --grad-checkpoint || { cat "$tmp/ckpt.err" >&2; return 1; }
    cmp "$tmp/cuda/adapter_model.safetensors" "$tmp/ckpt/adapter_model.safetensors" >&2 || return 1
    cmp "$tmp/cuda/checkpoints/step-00000003/train.safetensors" \
        "$tmp/ckpt/checkpoints/step-00000003/train.safetensors" >&2 || return 1
    diff <(steps "$tmp/cuda") <(steps "$tmp/ckpt") >&2 || return 1
    grep -q 'gradient checkpointing: layer inputs kept, each layer recomputed in backward$' "$tmp/ckpt.err" || return 1
    local a0 a1
    a0=$(act_bytes "$tmp/cuda.err") a1=$(act_bytes "$tmp/ckpt.err")
    echo "activations: $a0 bytes without, $a1 with --grad-checkpoint" >&2
    [ -n "$a0" ] && [ -n "$a1" ] && [ "$a1" -lt "$a0" ] || return 1
    if [ -d "$tmp/bf16" ]; then
        run "$sbin" "$tmp/ckpt-bf16" --device cuda --grad-checkpoint || return 1
        cmp "$tmp/bf16/adapter_model.safetensors" "$tmp/ckpt-bf16/adapter_model.safetensors" >&2 || return 1
    fi
    run "$sbin" "$tmp/ckpt-cpu" --device cpu --grad-checkpoint || return 1
    cmp "$tmp/scpu/adapter_model.safetensors" "$tmp/ckpt-cpu/adapter_model.safetensors" >&2
}
check train_device_grad_checkpoint_identical ckpt_ok

# 9b. --grad-checkpoint=keep-attention: the same bytes again (the recompute reuses the kept
#     attention output instead of rerunning it), a plan between the two, a note that says so;
#     another value is a usage error naming the one there is.
keep_att_ok() {
    [ $cuda_status -eq 0 ] || return 1
    run "$sbin" "$tmp/ka" --device cuda --fp32 --grad-checkpoint=keep-attention || { cat "$tmp/ka.err" >&2; return 1; }
    cmp "$tmp/cuda/adapter_model.safetensors" "$tmp/ka/adapter_model.safetensors" >&2 || return 1
    cmp "$tmp/cuda/checkpoints/step-00000003/train.safetensors" \
        "$tmp/ka/checkpoints/step-00000003/train.safetensors" >&2 || return 1
    diff <(steps "$tmp/cuda") <(steps "$tmp/ka") >&2 || return 1
    grep -q 'layer inputs and attention outputs kept, each layer but its attention recomputed in backward$' \
        "$tmp/ka.err" || return 1
    local a0 a1 a2
    a0=$(act_bytes "$tmp/cuda.err") a1=$(act_bytes "$tmp/ckpt.err") a2=$(act_bytes "$tmp/ka.err")
    echo "activations: $a0 bytes without, $a1 checkpointed, $a2 keeping the attention" >&2
    [ -n "$a2" ] && [ "$a2" -gt "$a1" ] && [ "$a2" -lt "$a0" ] || return 1
    if [ -d "$tmp/bf16" ]; then
        run "$sbin" "$tmp/ka-bf16" --device cuda --grad-checkpoint=keep-attention || return 1
        cmp "$tmp/bf16/adapter_model.safetensors" "$tmp/ka-bf16/adapter_model.safetensors" >&2 || return 1
    fi
    local msg
    msg=$("$sbin" "${common[@]}" --out "$tmp/ka-bad" --device cuda --grad-checkpoint=attention 2>&1)
    [ $? -eq 2 ] && grep -q -- "--grad-checkpoint=attention: 'attention' is not N .*, auto .* or keep-attention" \
        <<<"$msg" && [ ! -e "$tmp/ka-bad" ]
}
check train_device_grad_checkpoint_keep_attention keep_att_ok

# 9c. --grad-checkpoint=N recomputes the first N layers only, the others keeping their
#     activations: the same bytes again, a plan between none and every layer, a note that says
#     which; =auto with room for every layer's activations recomputes nothing (and says so);
#     --device-memory too small for any plan is refused naming it (exit 1, nothing written); N
#     past the model's layers, a size in decimal units and a repeated value are usage errors.
some_layers_ok() {
    [ $cuda_status -eq 0 ] || return 1
    local L msg status
    L=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['num_hidden_layers'])" \
        "$tmp/base/config.json") || return 1
    run "$sbin" "$tmp/ck1" --device cuda --fp32 --grad-checkpoint=1 || { cat "$tmp/ck1.err" >&2; return 1; }
    cmp "$tmp/cuda/adapter_model.safetensors" "$tmp/ck1/adapter_model.safetensors" >&2 || return 1
    diff <(steps "$tmp/cuda") <(steps "$tmp/ck1") >&2 || return 1
    grep -q "layer inputs kept, the first 1 of $L layers recomputed in backward (the" "$tmp/ck1.err" || return 1
    local a0 a1 an
    a0=$(act_bytes "$tmp/cuda.err") a1=$(act_bytes "$tmp/ckpt.err") an=$(act_bytes "$tmp/ck1.err")
    echo "activations: $a0 bytes without, $a1 every layer recomputed, $an the first of $L" >&2
    [ -n "$an" ] && [ "$an" -ge "$a1" ] && [ "$an" -le "$a0" ] || return 1
    run "$sbin" "$tmp/cka" --device cuda --fp32 --grad-checkpoint=auto,keep-attention --device-memory 64G ||
        { cat "$tmp/cka.err" >&2; return 1; }
    cmp "$tmp/cuda/adapter_model.safetensors" "$tmp/cka/adapter_model.safetensors" >&2 || return 1
    grep -q 'gradient checkpointing: none needed (every layer.s activations fit)$' "$tmp/cka.err" || return 1
    [ "$(act_bytes "$tmp/cka.err")" = "$a0" ] || return 1
    run "$sbin" "$tmp/ck-cap" --device cuda --grad-checkpoint=auto --device-memory 256M
    status=$?
    msg=$(cat "$tmp/ck-cap.err")
    [ $status -eq 1 ] && grep -q 'but only 0.0 KiB of the 256.0 MiB --device-memory allows can be planned' <<<"$msg" &&
        [ ! -e "$tmp/ck-cap" ] || { echo "exit $status: $msg" >&2; return 1; }
    msg=$("$sbin" "${common[@]}" --out "$tmp/ck-many" --device cuda --grad-checkpoint=$((L + 1)) 2>&1)
    status=$?
    [ $status -eq 2 ] && grep -q -- "--grad-checkpoint=$((L + 1)): the model has $L layers; give 1 to $L, or auto" \
        <<<"$msg" && [ ! -e "$tmp/ck-many" ] || { echo "exit $status: $msg" >&2; return 1; }
    msg=$("$sbin" "${common[@]}" --out "$tmp/ck-gb" --device cuda --device-memory 18GB 2>&1)
    [ $? -eq 2 ] && grep -q -- "--device-memory: '18GB' is not a size" <<<"$msg" || { echo "$msg" >&2; return 1; }
    msg=$("$sbin" "${common[@]}" --out "$tmp/ck-two" --device cuda --grad-checkpoint=1,auto 2>&1)
    [ $? -eq 2 ] && grep -q -- "give each of N / auto and keep-attention once" <<<"$msg" || { echo "$msg" >&2; return 1; }
}
check train_device_grad_checkpoint_some_layers some_layers_ok

# 10. --fp16 (fp16 base weights, dynamic loss scaling): completes, says fp16, logs the scale,
#     final loss within 3% of fp32's; refused on the CPU, with --full and with --quant.
fp16_ok() {
    [ $cuda_status -eq 0 ] || return 1
    run "$sbin" "$tmp/fp16" --device cuda --fp16 || { cat "$tmp/fp16.err" >&2; return 1; }
    grep -q '^vet-train: device cuda:0 .*, base weights fp16 (dynamic loss scaling)$' "$tmp/fp16.err" || return 1
    ! cmp -s "$tmp/cuda/adapter_model.safetensors" "$tmp/fp16/adapter_model.safetensors" || return 1
    /usr/bin/python3 - "$tmp/cuda/train.log.jsonl" "$tmp/fp16/train.log.jsonl" <<'PY' || return 1
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
print(f"final loss cuda fp32 {a[-1]['loss']:.5f}, fp16 {b[-1]['loss']:.5f}", file=sys.stderr)
ok = len(a) == len(b) == 6 and all(x.get("loss_scale") == 65536 for x in b) and "loss_scale" not in a[-1]
sys.exit(0 if ok and abs(a[-1]["loss"] - b[-1]["loss"]) <= 0.03 * a[-1]["loss"] else 1)
PY
    local msg
    msg=$(run "$sbin" "$tmp/fp16-cpu" --device cpu --fp16 2>&1; cat "$tmp/fp16-cpu.err")
    grep -q -- "--fp16: the CPU backend computes in fp32" <<<"$msg" || return 1
    msg=$(run "$sbin" "$tmp/fp16-q" --device cuda --fp16 --quant int8; cat "$tmp/fp16-q.err")
    grep -q -- "--quant int8 with --fp16" <<<"$msg" || return 1
    msg=$("$sbin" --threads 2 -q --init "$tmp/micro.json" --tokenizer "$tmp/tok.model" --train "$tmp/train.msgpack.zst" \
          --out "$tmp/fp16-full" --device cuda --fp16 2>&1)
    [ $? -eq 2 ] && grep -q -- "--fp16 with --init: full training on CUDA keeps fp32 weights" <<<"$msg"
}
check train_device_fp16_close_to_fp32 fp16_ok

# 10b. --label-smoothing is CPU-only for now: on the device it is refused with a message, and
# nothing is written under the output name.
smooth_refused_ok() {
    [ $cuda_status -eq 0 ] || return 1
    run "$sbin" "$tmp/ls" --device cuda --fp32 --label-smoothing 0.1 && return 1
    grep -q -- "--label-smoothing is not implemented on CUDA yet" "$tmp/ls.err" || { cat "$tmp/ls.err" >&2; return 1; }
    [ ! -e "$tmp/ls/adapter_model.safetensors" ]
}
check train_device_label_smoothing_refused smooth_refused_ok

# 10c. --resid-dropout: the device draws the CPU's masks (kernels/dropout.cu), so in fp32 the
# adapter is byte-identical to the CPU's, with and without --grad-checkpoint (the recompute
# draws the same masks again); and the dropout changed the run (not a no-op flag).
rdrop_ok() {
    [ $cuda_status -eq 0 ] || return 1
    run "$sbin" "$tmp/rd-cpu" --device cpu --resid-dropout 0.1 || { cat "$tmp/rd-cpu.err" >&2; return 1; }
    run "$sbin" "$tmp/rd-cuda" --device cuda --fp32 --resid-dropout 0.1 || { cat "$tmp/rd-cuda.err" >&2; return 1; }
    run "$sbin" "$tmp/rd-ck" --device cuda --fp32 --grad-checkpoint --resid-dropout 0.1 ||
        { cat "$tmp/rd-ck.err" >&2; return 1; }
    cmp "$tmp/rd-cpu/adapter_model.safetensors" "$tmp/rd-cuda/adapter_model.safetensors" >&2 || return 1
    cmp "$tmp/rd-cpu/adapter_model.safetensors" "$tmp/rd-ck/adapter_model.safetensors" >&2 || return 1
    diff <(steps "$tmp/rd-cpu") <(steps "$tmp/rd-cuda") >&2 || return 1
    ! cmp -s "$tmp/rd-cpu/adapter_model.safetensors" "$tmp/scpu/adapter_model.safetensors"
}
check train_device_resid_dropout_equals_cpu rdrop_ok

# 10c'. VET_GPU_PROFILE=FILE (kernels/host/gpu_profile.h): the device time by kind of work as
# JSON, written at each pull of the state. Every kind this run does has time and segments
# (LoRA dropout's fused products and residual dropout among them), the shares add up to 1, nothing is
# left to "collective" on one rank, and the profile changes nothing: the adapter is the
# unprofiled run's, byte for byte. A file that cannot be written fails the run, named.
profile_ok() {
    [ $cuda_status -eq 0 ] || return 1
    VET_GPU_PROFILE="$tmp/prof.json" run "$sbin" "$tmp/prof" --device cuda --fp32 --resid-dropout 0.1 ||
        { cat "$tmp/prof.err" >&2; return 1; }
    cmp "$tmp/rd-cuda/adapter_model.safetensors" "$tmp/prof/adapter_model.safetensors" >&2 || return 1
    /usr/bin/python3 - "$tmp/prof.json" <<'PY' || return 1
import json, sys
p = json.load(open(sys.argv[1]))
k = p["kinds"]
want = ["gemm_base", "gemm_lora", "lora_fused", "dropout", "attention", "rope", "norm", "swiglu", "residual", "memset",
        "embedding", "loss", "transfer", "optimizer"]
bad = [n for n in want if not (k[n]["ms"] > 0 and k[n]["segments"] > 0)]
share = sum(v["share"] for v in k.values())
busy = sum(v["ms"] for v in k.values())
print(f"profile: busy {p['busy_ms']:.1f} ms, between calls {p['between_calls_ms']:.1f} ms; "
      + ", ".join(f"{n} {v['share']:.3f}" for n, v in k.items() if v["ms"] > 0), file=sys.stderr)
ok = not bad and abs(share - 1) < 2e-3 and abs(busy - p["busy_ms"]) < 0.01 * p["busy_ms"] + 0.01
ok &= k["collective"]["segments"] == 0 and k["convert"]["segments"] == 0  # one rank; fp32: no casts
ok &= p["between_calls_ms"] >= 0
if bad: print("no time for", bad, file=sys.stderr)
sys.exit(0 if ok else 1)
PY
    VET_GPU_PROFILE="$tmp/no/such/dir/p.json" run "$sbin" "$tmp/prof-bad" --device cuda --fp32
    [ $? -eq 3 ] || return 1  # an I/O error
    grep -q "$tmp/no/such/dir/p.json" "$tmp/prof-bad.err" || { cat "$tmp/prof-bad.err" >&2; return 1; }
}
check train_device_profile profile_ok

# 10d. --token-dropout rewrites the batch on the host before it goes anywhere, so the device
# trains on the CPU's tokens: a byte-identical adapter in fp32, different from no dropout.
tdrop_ok() {
    [ $cuda_status -eq 0 ] || return 1
    run "$sbin" "$tmp/td-cpu" --device cpu --token-dropout 0.3 || { cat "$tmp/td-cpu.err" >&2; return 1; }
    run "$sbin" "$tmp/td-cuda" --device cuda --fp32 --token-dropout 0.3 || { cat "$tmp/td-cuda.err" >&2; return 1; }
    cmp "$tmp/td-cpu/adapter_model.safetensors" "$tmp/td-cuda/adapter_model.safetensors" >&2 || return 1
    ! cmp -s "$tmp/td-cpu/adapter_model.safetensors" "$tmp/scpu/adapter_model.safetensors"
}
check train_device_token_dropout_equals_cpu tdrop_ok

# 11. A forced overflow (VET_FP16_INIT_SCALE, the test hook): the first steps are skipped with
#     the scale halving each time until the gradients fit, then the run trains (finite losses,
#     one log line per step taken); the scale is in the checkpoint, and --resume (without the
#     hook) restores it: adapter and log identical to the uninterrupted run.
fp16_overflow_ok() {
    [ $cuda_status -eq 0 ] || return 1
    VET_FP16_INIT_SCALE=4194304 run "$sbin" "$tmp/ovf" --device cuda --fp16 --max-steps 8 ||
        { cat "$tmp/ovf.err" >&2; return 1; }
    /usr/bin/python3 - "$tmp/ovf.err" "$tmp/ovf/train.log.jsonl" "$tmp/ovf/checkpoints/step-00000006/state.json" <<'PY' || return 1
import json, math, re, sys
notes = [re.search(r"step (\d+): gradients overflowed in fp16 at loss scale (\S+): step skipped, loss scale (\S+)$", l)
         for l in open(sys.argv[1])]
notes = [(int(m[1]), float(m[2]), float(m[3])) for m in notes if m]
log = [json.loads(l) for l in open(sys.argv[2])]
st = json.load(open(sys.argv[3]))
print(f"overflow skips {[n[0] for n in notes]}, scales {[n[1] for n in notes]}, then {log[-1]['loss_scale']}", file=sys.stderr)
ok = len(notes) >= 1 and notes[0] == (1, 4194304.0, 2097152.0)
ok &= [n[0] for n in notes[:2]] == list(range(1, min(len(notes), 2) + 1))
ok &= all(abs(b[1] - a[2]) <= 1e-6 * a[2] for a, b in zip(notes, notes[1:]) if b[0] == a[0] + 1)
ok &= len(log) + len(notes) == 8 and all(math.isfinite(x["loss"]) for x in log)
ok &= log[-1]["loss_scale"] < 4194304 and st.get("loss_scale", 0) > 0 and st["loss_scale_skipped_steps"] >= 1
sys.exit(0 if ok else 1)
PY
    cp -r "$tmp/ovf" "$tmp/ovf-res"
    rm -rf "$tmp/ovf-res"/adapter_* "$tmp/ovf-res/checkpoints/step-00000006"
    sed -i '/"step":[4-8],/d' "$tmp/ovf-res/train.log.jsonl"
    run "$sbin" "$tmp/ovf-res" --device cuda --fp16 --max-steps 8 --resume "$tmp/ovf-res" || return 1
    cmp "$tmp/ovf/adapter_model.safetensors" "$tmp/ovf-res/adapter_model.safetensors" >&2 || return 1
    diff <(steps "$tmp/ovf") <(steps "$tmp/ovf-res") >&2
}
check train_device_fp16_overflow_skips_and_resumes fp16_overflow_ok
