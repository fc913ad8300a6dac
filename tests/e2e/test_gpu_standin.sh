#!/usr/bin/env bash
# test_gpu_standin.sh — the GPU model's host code (kernels/host/gpu_model.c) on the CPU stand-in of
# the CUDA ops, under ASan + UBSan: tests/gpu/test_gpu_model.c linked by mk/gpustub.mk
# (make gpustub). Forwards its ok / not ok / skip lines; `skip` when it was not built.
set -u
top=${VET_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${VET_STANDIN:-$top/build/standin}/test_gpu_model
if [ ! -x "$bin" ]; then
    echo "skip gpu_standin: $bin not built (make gpustub)"
    exit 0
fi
out=$(mktemp "${TMPDIR:-/tmp}/vet-standin.XXXXXX")
trap 'rm -f "$out"' EXIT
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$bin" >"$out" 2>"$out.err"
rc=$?
grep -E '^(ok|not ok|skip) ' "$out" | sed 's/^\(ok\|not ok\|skip\) /\1 gpu_standin: /'
if [ "$rc" -ne 0 ]; then
    # a crash or a sanitizer report: say so, with the end of what it printed
    grep -q '^not ok ' "$out" || echo "not ok gpu_standin: exit status $rc"
    tail -n 30 "$out.err" >&2
fi
rm -f "$out.err"
exit 0
