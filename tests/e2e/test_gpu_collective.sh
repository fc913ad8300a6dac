#!/usr/bin/env bash
# test_gpu_collective.sh — kernels/host/gpu_collective.c (the NCCL gradient sum) without GPUs:
# build/standin/test_collective compiles it against a stand-in NCCL whose ranks are threads
# (tests/gpu/standin/nccl_threads.c) and the stand-in CUDA ops, under ASan + UBSan (make gpustub).
# Every rank must end with lib/train/comm_mpi.c's rank-order sum, bit for bit. A schedule whose
# sends and receives do not match makes the ranks wait for each other for ever, as NCCL's would:
# bounded by a timeout, which is a failure. `skip` when it was not built.
set -u
top=${VET_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${VET_STANDIN:-$top/build/standin}/test_collective
if [ ! -x "$bin" ]; then
    echo "skip gpu_collective: $bin not built (make gpustub)"
    exit 0
fi
out=$(mktemp "${TMPDIR:-/tmp}/vet-collective.XXXXXX")
trap 'rm -f "$out" "$out.err"' EXIT
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} timeout 120 "$bin" >"$out" 2>"$out.err"
rc=$?
grep -E '^(ok|not ok|skip) ' "$out"
if [ "$rc" -eq 124 ]; then
    echo "not ok gpu_collective_timeout: the ranks waited for a send or receive that never came"
elif [ "$rc" -ne 0 ]; then
    grep -q '^not ok ' "$out" || echo "not ok gpu_collective: exit status $rc"
    grep '^#' "$out" | head -n 10 >&2
    tail -n 30 "$out.err" >&2
fi
exit 0
