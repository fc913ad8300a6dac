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
