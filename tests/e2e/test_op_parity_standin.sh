#!/usr/bin/env bash
# test_op_parity_standin.sh — the GPU parity harness (tests/gpu/op_parity.c, what a device lease
# runs first) linked against the CPU stand-in of the CUDA ops, under ASan + UBSan (mk/gpustub.mk).
# The stand-in computes each op with the CPU arithmetic the harness compares against, so this
# says nothing about the kernels: it checks the harness itself (its buffers, its comparisons,
# the refusals it expects, its table) so that a lease is not spent on a bug of the test.
# Forwards its ok / not ok lines; `skip` when it was not built.
set -u
top=${VET_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${VET_STANDIN:-$top/build/standin}/op_parity
if [ ! -x "$bin" ]; then
    echo "skip op_parity_standin: $bin not built (make gpustub)"
    exit 0
fi
out=$(mktemp "${TMPDIR:-/tmp}/vet-parity.XXXXXX")
trap 'rm -f "$out" "$out.err"' EXIT
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$bin" --size small --seed 1 --reps 0 >"$out" 2>"$out.err"
rc=$?
n_ok=$(grep -c '^ok ' "$out")
grep '^not ok ' "$out" | sed 's/^not ok /not ok op_parity_standin: /'
# the table the lease's summary is built from: one row per recorded comparison
rows=$(grep -c '^| [a-z]' "$out")
if [ "$rc" -eq 0 ] && [ "$n_ok" -gt 150 ] && [ "$rows" -gt 100 ] && grep -q '^# 0 failed$' "$out"; then
    echo "ok op_parity_standin: $n_ok comparisons, $rows table rows, exit 0"
else
    echo "not ok op_parity_standin: exit status $rc, $n_ok ok lines, $rows table rows"
    tail -n 30 "$out.err" >&2
fi

# --only attention,lora (the bundle's racecheck part): those sections' rows and no other; an
# unknown section is refused (exit 2), not a run that checks nothing.
"$bin" --size small --seed 1 --reps 0 --only attention,lora >"$out" 2>"$out.err"
rc=$?
att=$(grep -c '^ok attention_forward_bf16 ' "$out") lora=$(grep -c '^ok lora_down_dropout' "$out")
other=$(grep -c '^ok \(rope\|rmsnorm\|dequant\|adamw\|embedding\)' "$out")
"$bin" --size small --reps 0 --only attention,lroa >/dev/null 2>"$out.err"
bad=$?
if [ "$rc" -eq 0 ] && [ "$att" -gt 0 ] && [ "$lora" -gt 0 ] && [ "$other" -eq 0 ] && [ "$bad" -eq 2 ] &&
    grep -q "unknown --only section 'lroa'" "$out.err"; then
    echo "ok op_parity_standin_only: $att attention and $lora lora rows, none of the others; a misspelt section refused"
else
    echo "not ok op_parity_standin_only: exit $rc, attention $att, lora $lora, others $other, misspelt exit $bad"
fi
exit 0
