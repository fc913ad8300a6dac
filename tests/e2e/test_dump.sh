#!/usr/bin/env bash
# test_dump.sh — vet-dump: JSON lines out of a stream, --count/--header/--records/--kind, the
# errors a damaged stream gives (with their exit statuses), and --help against the man page.
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-dump.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }
dump="$VET_BIN/vet-dump"

# A real stream: synthetic notes through vet-tokenize needs a tokenizer; vet-pack's test helper
# writes token streams without one.
mk="$VET_BUILD/tests/helpers/vet-mktokens"
[ -x "$mk" ] || { echo "skip dump_all: no $mk (make helpers)"; exit 0; }
for i in 1 2 3 4 5; do
    echo "{\"id\":\"n$i\",\"species\":\"Cow\",\"codes\":[\"1679004\"],\"note\":\"fever $i\",\"prompt\":[1,5,$i],\"response\":[7,2]}"
done | "$mk" -o "$tmp/t.zst" || exit 1

lines_ok() {
    "$dump" "$tmp/t.zst" >"$tmp/out.jsonl" || return 1
    [ "$(wc -l <"$tmp/out.jsonl")" -eq 7 ] || return 1
    head -1 "$tmp/out.jsonl" | grep -q '"kind":"tokens"' || return 1
    sed -n 2p "$tmp/out.jsonl" | grep -q '"id":"n1"' || return 1
    tail -1 "$tmp/out.jsonl" | grep -qx '{"end":true,"records":5}' || return 1
    /usr/bin/python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$tmp/out.jsonl"
}
check dump_json_lines lines_ok
check dump_count bash -c "[ \"\$('$dump' --count '$tmp/t.zst')\" = 5 ]"
check dump_count_stdin bash -c "[ \"\$('$dump' -c - < '$tmp/t.zst')\" = 5 ]"
check dump_header bash -c "[ \"\$('$dump' -H '$tmp/t.zst' | wc -l)\" = 1 ]"
check dump_records bash -c "[ \"\$('$dump' -r '$tmp/t.zst' | wc -l)\" = 5 ]"

status_and_msg() {  # status_and_msg WANT_STATUS PATTERN ARGS...: exit status and message
    local want=$1 pat=$2; shift 2
    local msg
    msg=$("$dump" "$@" 2>&1 >/dev/null)
    local got=$?
    [ $got -eq "$want" ] || { echo "exit $got, want $want: $msg" >&2; return 1; }
    grep -q -- "$pat" <<<"$msg" || { echo "message lacks '$pat': $msg" >&2; return 1; }
}
head -c $(( $(stat -c %s "$tmp/t.zst") - 6 )) "$tmp/t.zst" >"$tmp/cut.zst"
check dump_truncated status_and_msg 1 "truncated stream" "$tmp/cut.zst"
printf 'id,note\n1,fever\n' >"$tmp/plain.csv"
check dump_not_a_stream status_and_msg 1 "not a vet stream" "$tmp/plain.csv"
check dump_wrong_kind status_and_msg 1 "kind 'tokens', expected 'packed'" --kind packed "$tmp/t.zst"
check dump_missing_file status_and_msg 3 "cannot open" "$tmp/nope.zst"
check dump_bad_flag status_and_msg 2 "unknown option" --frobnicate

help_ok() {
    local man flags
    man=$(sed 's/\\-/-/g' "$VET_TOP/man/vet-dump.1")
    flags=$("$dump" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
    for f in $flags; do grep -q -- "$f" <<<"$man" || { echo "man page lacks $f" >&2; return 1; }; done
    [ -n "$flags" ]
}
check dump_help_matches_man help_ok
