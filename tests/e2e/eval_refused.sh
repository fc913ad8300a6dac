# eval_refused.sh — sourced by test_shard.sh and test_folds.sh (not a test itself: tests/run runs
# only test_*.sh). Needs $EVAL and $tmp.
# refused WANT_STATUS SUBSTRING ARGS...: vet-eval -q ARGS exits WANT_STATUS with SUBSTRING in its
# message on stderr ("vet-eval: ..."); else says what it did instead and returns 1.
refused() {
    local want=$1 says=$2; shift 2
    "$EVAL" -q "$@" >/dev/null 2>"$tmp/err"
    local rc=$?
    [ $rc = "$want" ] && grep -qF -- "$says" "$tmp/err" && grep -q '^vet-eval: ' "$tmp/err" ||
        { echo "  vet-eval $*: rc=$rc: $(cat "$tmp/err")" >&2; return 1; }
}

# read_twice PROGRAM ARGS... (PROGRAM vet-eval or vet-dump; the last ARG a file of the set): each
# file of a set is opened for its header once and for its records once, twice in all as often as
# a stream read alone is opened (its header and records through one reader): vet-eval used to read
# each header again for every question about the set (up to three times). Needs strace: 2 when it
# is missing, so the caller can skip.
read_twice() {
    command -v strace >/dev/null 2>&1 || return 2
    local f alone set
    # LeakSanitizer cannot run under ptrace (a sanitized build would fail for it): leaks are the
    # other tests' concern.
    local ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    export ASAN_OPTIONS
    strace -f -qq -e trace=open,openat -o "$tmp/opens.alone" "$EVAL" -q --bootstrap 0 "${@: -1}" >/dev/null 2>&1
    strace -f -qq -e trace=open,openat -o "$tmp/opens.set" "$@" >/dev/null 2>&1 || { echo "  $*: failed" >&2; return 1; }
    alone=$(grep -cF "\"${*: -1}\"" "$tmp/opens.alone")
    for f in "${@:2}"; do
        [ -f "$f" ] || continue
        set=$(grep -cF "\"$f\"" "$tmp/opens.set")
        [ "$alone" -ge 1 ] && [ "$set" = $((2 * alone)) ] || { echo "  $f: opened $set times in the set, $alone alone" >&2; return 1; }
    done
}
