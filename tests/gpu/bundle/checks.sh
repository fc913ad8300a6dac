#!/usr/bin/env bash
# checks.sh bundle|device|memcheck|racecheck|ncu — five of run.sh's parts, each a program so that run.sh can
# cap its time. Env from run.sh: VET_BUNDLE (the bundle), VET_TESTS (its test/ or cpu/),
# VET_RUN_MODE (gpu or cpu), VET_PYTHON.
#   bundle    every program finds its libraries and starts; the baseline's Python imports
#   device    nvidia-smi, or with --cpu the CPU and its vector flags
#   memcheck  op_parity --size small under compute-sanitizer --tool memcheck (the CPU rehearsal
#             runs the stand-in op_parity: there is no memory checker for it there)
#   racecheck op_parity --size small --only attention,lora (the kernels with shared-memory
#             pipelines and barriers) under compute-sanitizer --tool racecheck, then synccheck
#             (the CPU rehearsal runs that stand-in op_parity, no checker)
#   ncu       Nsight Compute on the first 30 launches of the register attention kernels and the
#             fused and tensor-core LoRA kernels in op_parity
#             --size mid (the 7B head width): throughput, occupancy, warp stalls, memory; the
#             CPU rehearsal has no profiler and prints one comment line
set -u
b=$VET_BUNDLE t=$VET_TESTS
case ${1:-} in
bundle)
    rc=0
    missing=$(for p in "$b"/bin/* "$t"/*; do ldd "$p" 2>&1 | grep 'not found'; done | sort -u)
    [ -z "$missing" ] || { echo "not ok bundle: libraries not found: $(echo "$missing" | awk '{print $1}' | tr '\n' ' ')"; exit 1; }
    # Every library a program loads is the bundle's, glibc's, or the driver's / CUDA toolkit's:
    # a copy found elsewhere (the build machine's, a -dev package's) would hide a missing one.
    outside=$(for p in "$b"/bin/* "$t"/*; do ldd "$p"; done | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u |
        while read -r name path; do
            case $name in
                ld-linux* | libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | libresolv.so.* | libmvec.so.*) ;;
                libcuda.so* | libcublas* | libcudart* | libnvidia* | libnvJitLink*) ;;
                *) [ "$(cd "$(dirname "$path")" && pwd -P)" = "$(cd "$b/lib" && pwd -P)" ] || echo "$path" ;;
            esac
        done)
    [ -z "$outside" ] || { echo "not ok bundle: libraries loaded from outside the bundle: $(echo $outside)"; exit 1; }
    echo "# every library from the bundle ($(ls "$b/lib" | wc -l) in $b/lib), glibc or CUDA"
    for p in "$b"/bin/vet-*; do
        case ${p##*/} in vet-inspect | vet-mktokens) continue ;; esac
        "$p" --version >/dev/null || { echo "not ok bundle: $p does not start"; rc=1; }
    done
    echo "# $("$b/bin/vet-train" --version)"
    echo "# vet-train loads: $(ldd "$b/bin/vet-train" | awk '$3 ~ /^\//{print $3}' | tr '\n' ' ')"
    for m in torch transformers peft; do
        "$VET_PYTHON" -c "import $m; print('# python: $m', $m.__version__)" 2>/dev/null ||
            { echo "not ok bundle: $VET_PYTHON cannot import $m (the baseline needs it)"; rc=1; }
    done
    exit $rc ;;
device)
    if [ "$VET_RUN_MODE" = cpu ]; then
        echo "# device: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
        echo "# flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512bw|avx512_bf16|amx_bf16)$' | tr '\n' ' ')"
    else
        nvidia-smi || { echo "not ok device: nvidia-smi failed"; exit 1; }
        echo "# device: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader -i 0)"
    fi ;;
memcheck)
    if [ "$VET_RUN_MODE" = cpu ]; then
        echo "# cpu rehearsal: the stand-in op_parity, no memory checker"
        exec "$t/op_parity" --size small --reps 0
    fi
    command -v compute-sanitizer >/dev/null || { echo "not ok memcheck: compute-sanitizer is not on PATH"; exit 1; }
    exec compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 "$t/op_parity" --size small --reps 0 ;;
racecheck)
    if [ "$VET_RUN_MODE" = cpu ]; then
        echo "# cpu rehearsal: the stand-in op_parity, no race checker"
        exec "$t/op_parity" --size small --reps 0 --only attention,lora
    fi
    command -v compute-sanitizer >/dev/null || { echo "not ok racecheck: compute-sanitizer is not on PATH"; exit 1; }
    compute-sanitizer --tool racecheck --error-exitcode 9 --print-limit 20 "$t/op_parity" --size small --reps 0 \
        --only attention,lora || exit
    exec compute-sanitizer --tool synccheck --error-exitcode 9 --print-limit 20 "$t/op_parity" --size small --reps 0 \
        --only attention,lora ;;
ncu)
    if [ "$VET_RUN_MODE" = cpu ]; then
        echo "# cpu rehearsal: no Nsight Compute"
        exit 0
    fi
    command -v ncu >/dev/null || { echo "not ok ncu: ncu is not on PATH"; exit 1; }
    # --clock-control none: the clocks as the benchmarks run them (the device notes' advice)
    exec ncu --clock-control none --kernel-name regex:"attention_pipe_|attention_mma_|lora_|adapter_" --launch-count 30 \
        --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
        --section MemoryWorkloadAnalysis "$t/op_parity" --size mid --reps 0 ;;
*) echo "usage: checks.sh bundle|device|memcheck|racecheck|ncu" >&2; exit 2 ;;
esac
