#!/usr/bin/env bash
# tests/gpu/run.sh — the GPU checks: every CUDA op against the CPU op (op_parity), at two sizes.
#
# Builds what it needs (make gpu-build), runs op_parity --size small then --size mid, prints a
# summary table, and when every check ran writes the results to docs/gpu-results-<date>.md.
# Exit 1 when any check fails or did not run (no GPU: `not ok`, never a skip). On a device lease
# run the GPU bundle instead (`make gpu-bundle`, dist/gpu/run.sh: docs/cuda.md).
# Budget: well under 8 minutes on an H200 (the "mid" CPU references dominate: ~1-2 min on 16
# cores); every op_parity run is bounded by `timeout`.
# Env: VET_GPU_NO_BUILD=1 skips the build (make gpu-test sets it), VET_BUILD the build dir,
#      VET_GPU_SEED a seed to repeat a run, VET_GPU_SIZES (default "small mid").
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top" || exit 1
: "${VET_BUILD:=$top/build/rel}"
if [ "${VET_GPU_NO_BUILD:-0}" != 1 ]; then
    make -s -j"$(nproc)" gpu-build >/dev/null || { echo "not ok gpu-build: make gpu-build failed"; exit 1; }
fi
bin="$VET_BUILD/tests/gpu/op_parity"
[ -x "$bin" ] || { echo "not ok op_parity: $bin missing (make gpu-build)"; exit 1; }

log=$(mktemp -d "${TMPDIR:-/tmp}/vet-gpu.XXXXXX")
trap 'rm -rf "$log"' EXIT
seed_args=()
[ -n "${VET_GPU_SEED:-}" ] && seed_args=(--seed "$VET_GPU_SEED")

status=0
for size in ${VET_GPU_SIZES:-small mid}; do
    t0=$SECONDS
    timeout 300 "$bin" --size "$size" "${seed_args[@]}" >"$log/$size.out" 2>"$log/$size.err"
    rc=$?
    cat "$log/$size.out"
    [ -s "$log/$size.err" ] && sed 's/^/    | /' "$log/$size.err" | tail -n 20
    if [ "$rc" -ne 0 ]; then
        status=1
        [ "$rc" -eq 124 ] && echo "not ok op_parity --size $size: timed out after 300 s"
    fi
    echo "# op_parity --size $size: exit $rc in $((SECONDS - t0)) s"
done

# A GPU test program with the ok/not ok protocol: its lines into the log as NAME.out.
run_program() {  # run_program NAME BINARY
    if [ ! -x "$2" ]; then
        echo "not ok $(basename "$2"): $2 missing (make gpu-build)"; status=1; return
    fi
    timeout 120 "$2" >"$log/$1.out" 2>"$log/$1.err"
    local rc=$?
    cat "$log/$1.out"
    [ -s "$log/$1.err" ] && sed 's/^/    | /' "$log/$1.err" | tail -n 40
    [ "$rc" -ne 0 ] && status=1 && echo "# $(basename "$2"): exit $rc"
}
# The GPU model (kernels/host/gpu_*.c) against the CPU model core, then the inference path (prefill,
# batched decode steps with slot caches) against the CPU's.
run_program model "$VET_BUILD/tests/gpu/test_gpu_model"
run_program infer "$VET_BUILD/tests/gpu/test_gpu_infer"

# Summary: one line per check over all sizes.
pass=$(cat "$log"/*.out | grep -c '^ok ')
fail=$(cat "$log"/*.out | grep -c '^not ok \|^skip ')
echo
printf '%-8s %5s %7s\n' size passed failed
for f in "$log"/*.out; do
    printf '%-8s %5d %7d\n' "$(basename "$f" .out)" "$(grep -c '^ok ' "$f")" "$(grep -c '^not ok \|^skip ' "$f")"
done
echo "gpu: $pass passed, $fail failed (a skip counts as failed: it did not run)"

if [ "$fail" -eq 0 ] && [ "$status" -eq 0 ]; then
    out="$top/docs/gpu-results-$(date +%Y-%m-%d).md"
    {
        echo "# GPU results, $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "Written by tests/gpu/run.sh (commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown))."
        echo "Errors are max |gpu - cpu| / max |cpu| per tensor; times are GPU ms per call."
        for f in "$log"/*.out; do
            echo
            echo "## --size $(basename "$f" .out)"
            echo
            grep '^# ' "$f" | sed 's/^# /- /'
            echo
            grep '^|' "$f"
            if grep -q '^not ok ' "$f"; then
                echo
                echo "Failures:"
                echo
                grep '^not ok ' "$f" | sed 's/^/    /'
            fi
        done
    } >"$out"
    echo "wrote $out"
fi
[ "$fail" -eq 0 ] && [ "$status" -eq 0 ]
