#!/usr/bin/env bash
# test_gpu_emu.sh — the GPU tests on the emulated device (mk/gpuemu.mk: vet's kernels as written,
# compiled for the SIMT emulator, under ASan + UBSan): tests/gpu/test_gpu_model.c (the GPU
# model's loss and gradients against the CPU model core, every precision, checkpointing and
# quantized base) and tests/gpu/test_gpu_infer.c (prefill and batched decoding against the
# CPU). Where the stand-in (test_gpu_standin.sh) runs the host code over the CPU ops, this runs
# the kernels themselves. (test_gpu_emu_parity.sh runs op_parity there.) Forwards their ok /
# not ok lines; `skip` when they were not built (no CUDA toolkit headers: make gpuemu), and in
# the sanitizer pass of the suite (the one emulator build is ASan + UBSan already: it runs in
# the plain pass).
set -u
. "$(dirname "$0")/emu_device.sh"
emu_ready gpu_emu test_gpu_model test_gpu_infer || exit 0
dir=$emu_dir
out=$(mktemp "${TMPDIR:-/tmp}/vet-emu.XXXXXX")
trap 'rm -f "$out" "$out.err"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

# name binary [args]: its ok / not ok / skip lines under `name`, and a line for a crash
run() {
    local name=$1
    shift
    "$@" >"$out" 2>"$out.err"
    local rc=$?
    grep -E '^(ok|not ok|skip) ' "$out" | sed "s/^\(ok\|not ok\|skip\) /\1 $name: /"
    if [ "$rc" -ne 0 ]; then
        grep -q '^not ok ' "$out" || echo "not ok $name: exit status $rc"
        tail -n 30 "$out.err" >&2
    fi
}
run gpu_emu_model "$dir/test_gpu_model"
run gpu_emu_infer "$dir/test_gpu_infer"

exit 0
