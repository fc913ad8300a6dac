#!/bin/sh
# tests/fuzz/run.sh OUT SECONDS JOBS HARNESS... — make fuzz's runner: each harness
# build/fuzz/fuzz_<h> for at most SECONDS on its growing corpus (OUT/corpus/<h>, kept between
# runs) plus its seeds (OUT/seeds/<h>), JOBS harnesses at a time (libFuzzer runs one process
# each: on CI's 2 cores two at a time take half the wall time). FUZZ_FLAGS: libFuzzer's other
# flags (seed, runs, limits). One summary line per harness, in the order given, once all have
# ended; the logs in OUT/logs/<h>.log, a failing input in OUT/crashes/<h>/. Exit 1 when any
# harness failed (a crash, leak, timeout or sanitizer report).
set -u
if [ "${1:-}" = --one ]; then  # --one OUT SECONDS H: one harness, its summary in OUT/logs/H.line
    out=$2 secs=$3 h=$4
    mkdir -p "$out/corpus/$h" "$out/crashes/$h"
    # shellcheck disable=SC2086  # FUZZ_FLAGS is a list of flags
    "$out/fuzz_$h" $FUZZ_FLAGS -max_total_time="$secs" -artifact_prefix="$out/crashes/$h/" \
        "$out/corpus/$h" "$out/seeds/$h" >"$out/logs/$h.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/logs/$h.log")
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$out/logs/$h.log" | tail -n 1)
    if [ $rc -eq 0 ]; then
        echo "fuzz $h: ok, ${execs:-?} runs (at most $secs s), $cov" >"$out/logs/$h.line"
    else
        { echo "fuzz $h: FAILED (exit $rc), input in $out/crashes/$h/:"
          grep -E 'ERROR|runtime error|SUMMARY|vet fuzz' "$out/logs/$h.log" | head -n 5 | sed 's/^/    /'; } \
            >"$out/logs/$h.line"
    fi
    exit 0
fi
[ $# -ge 4 ] || { echo "usage: tests/fuzz/run.sh OUT SECONDS JOBS HARNESS..." >&2; exit 2; }
out=$1 secs=$2 jobs=$3
shift 3
case $jobs in '' | *[!0-9]* | 0) echo "tests/fuzz/run.sh: JOBS=$jobs: a whole number of at least 1" >&2; exit 2 ;; esac
export FUZZ_FLAGS="${FUZZ_FLAGS:-}"
mkdir -p "$out/logs"
for h in "$@"; do rm -f "$out/logs/$h.line"; done
printf '%s\n' "$@" | xargs -P "$jobs" -I{} sh "$0" --one "$out" "$secs" {}
fail=0
for h in "$@"; do
    if [ -f "$out/logs/$h.line" ]; then
        cat "$out/logs/$h.line"
        grep -q '^fuzz [^ ]*: ok,' "$out/logs/$h.line" || fail=1
    else
        echo "fuzz $h: FAILED (the runner left no summary: see $out/logs/$h.log)"
        fail=1
    fi
done
exit $fail
