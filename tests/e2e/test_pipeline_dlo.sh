#!/usr/bin/env bash
# test_pipeline_dlo.sh — pipelines/vet.mk's default run on the real DLO notes (../shared/data/dlo:
# grouped, stratified split, trained from scratch), with a regression floor on accuracy; `skip`
# where ../shared is absent. (test_pipeline.sh runs the pipeline on synthetic notes.)
set -u
# Nested makes must not inherit a parent `make -jN test`'s jobserver.
unset MAKEFLAGS MFLAGS MAKELEVEL
: "${VET_BIN:?}" "${VET_TOP:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-pipeline-dlo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
check() {
    local name=$1 t0=$SECONDS; shift
    if "$@"; then echo "ok $name"; else echo "not ok $name"; fi
    echo "# $name: $((SECONDS - t0)) s"
}
pipe() { make --no-print-directory -s -f "$VET_TOP/pipelines/vet.mk" VET_BIN="$VET_BIN" "$@"; }

# The real DLO notes (grouped, stratified split), trained from scratch with the default
# settings as one model (ENSEMBLE=1: the defaults' three refits triple CI's longest test, and
# the ensemble path has its own tests: test_generate.sh, test_ensemble, test_pipeline.sh's
# pipeline_ensemble): accuracy must stay above a regression floor (measured 0.881 on 2026-12-03 with dropout's
# Philox masks, 0.831 with the xoshiro masks before; 0.825 on 2026-12-04 on an AMD EPYC with
# AVX-512, where that day's optimizer change was checked to leave a trained model's bytes as they
# were: OpenBLAS picks its kernels by CPU, their sums round differently, and 15 epochs later one
# model lands a few notes apart, as seeds do; the three-refit figure is in docs/results.md).
# The sanitized build (several times slower) trains 1 epoch instead of 15, without the floor:
# what it checks is memory and undefined behaviour on real data, every stage and code path of
# the default run.
if [ -n "${VET_SHARED:-}" ] && [ -f "$VET_SHARED/data/dlo/dlo_notes.csv" ]; then
    dlo_ok() {
        local budget=(ENSEMBLE=1 EVAL_ARGS="--bootstrap 200 --fail-under 0.80")
        [ "${VET_SANITIZE:-0}" = 1 ] && budget=(ENSEMBLE=1 EVAL_ARGS="--bootstrap 200"
            TRAIN_ARGS="--epochs 1 --lr 3e-3 --batch-size 4 --grad-accum 2 --warmup-ratio 0.05 --weight-decay 0.1 --resid-dropout 0.2")
        pipe OUT="$tmp/dlo" NOTES="$VET_SHARED/data/dlo/dlo_notes.csv" CODES="$VET_SHARED/data/dlo/codes.tsv" \
            "${budget[@]}" GEN_ARGS="--batch 16 -q" >"$tmp/dlo.log" 2>&1
        local status=$?
        grep -E '^(accuracy|baseline)' "$tmp/dlo.log" >&2
        [ $status -eq 0 ]
    }
    check pipeline_dlo_accuracy_floor dlo_ok
else
    echo "skip pipeline_dlo_accuracy_floor: no ../shared/data/dlo"
fi
