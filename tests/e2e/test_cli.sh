#!/usr/bin/env bash
# test_cli.sh — what every program does the same way (tools/cli.h): --help and --version exit 0,
# and what they print must reach stdout: into a full disk (/dev/full) they fail with exit 3 and
# `vet-X: <stdout>: write failed`, never a silent 0 (the check registered before main runs).
set -u
: "${VET_BIN:?}"
ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }
[ -w /dev/full ] || { echo "skip cli_stdout_full: no /dev/full here"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for prog in vet-tokenize vet-pack vet-train vet-generate vet-eval vet-dump vet-synth vet-export; do
    for flag in --help --version; do
        name="cli_${prog#vet-}_${flag#--}"
        "$VET_BIN/$prog" "$flag" >"$tmp/out" 2>"$tmp/err"
        st=$?
        if [ $st -ne 0 ] || [ ! -s "$tmp/out" ]; then
            fail "$name"; echo "$prog $flag: exit $st, $(wc -c <"$tmp/out") bytes" >&2; continue
        fi
        "$VET_BIN/$prog" "$flag" >/dev/full 2>"$tmp/err"
        st=$?
        if [ $st -eq 3 ] && grep -q "^$prog: <stdout>: write failed" "$tmp/err"; then ok "${name}_full"
        else fail "${name}_full"; echo "$prog $flag >/dev/full: exit $st: $(head -c 300 "$tmp/err")" >&2; fi
        ok "$name"
    done
done

# An output named through a symlink (base/atomic_file): one to the program's own stdout, as
# /dev/stdout is under a redirect, is written through (the redirect's file gets the bytes, the
# link stays); one to a file replaces that file whole and leaves the link a link.
printf 'id,gold,pred\n1,a,a\n2,b,c\n' >"$tmp/preds.csv"
ln -s /proc/self/fd/1 "$tmp/so" && ln -s real.json "$tmp/link.json" && echo old >"$tmp/real.json"
"$VET_BIN/vet-eval" -q -j "$tmp/so" "$tmp/preds.csv" >"$tmp/captured" 2>"$tmp/err"; st=$?
"$VET_BIN/vet-eval" -q -j "$tmp/link.json" "$tmp/preds.csv" 2>>"$tmp/err"; st2=$?
if [ $st$st2 = 00 ] && [ -L "$tmp/so" ] && [ -L "$tmp/link.json" ] && grep -q '"accuracy"' "$tmp/captured" && grep -q '"accuracy"' "$tmp/real.json"
then ok cli_output_through_symlink
else fail cli_output_through_symlink; echo "exit $st $st2; captured $(wc -c <"$tmp/captured") bytes; $(cat "$tmp/err")" >&2; fi

# A failed write to stdout is reported once, with the program's status (the exit-time check stays
# quiet once the program has reported an error itself).
"$VET_BIN/vet-eval" "$tmp/preds.csv" >/dev/full 2>"$tmp/err"; st=$?
if [ $st = 3 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q '^vet-eval: <stdout>: write failed' "$tmp/err"
then ok cli_stdout_failure_once
else fail cli_stdout_failure_once; echo "exit $st: $(cat "$tmp/err")" >&2; fi
