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
