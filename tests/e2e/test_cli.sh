#!/usr/bin/env bash
# test_cli.sh — what every program does the same way (tools/cli.h): --help and --version exit 0,
# and what they print must reach stdout: into a full disk (/dev/full) they fail with exit 3 and
# `vet-X: <stdout>: write failed`, never a silent 0 (the check registered before main runs); and
# the flags each program takes are the flags its --help and its man page list.
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

# Every flag a program takes is named in its --help and in its man page's OPTIONS, and every flag
# those two list is taken: the flags come from the option table in tools/ (what getopt_long
# accepts), the listed ones from the name column of --help's option lines (up to the first two
# spaces: not the flags of other programs a description mentions) and from the man page's .TP
# headings; a listed flag is taken when the program, given it alone, does not call it unrecognized.
top=${VET_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
flags_in() { grep -oE -- '--[a-z][a-z0-9-]*' | sort -u; }
help_listed() { "$VET_BIN/$1" --help | grep -E '^ {1,8}(-[A-Za-z], )?--[a-z]' | sed -E 's/^ +//; s/  .*//' | flags_in; }
man_options() { sed 's/\\-/-/g; s/\\f[BIRP]//g' "$top/man/$1.1" | awk '/^\.SH OPTIONS/ { on = 1; next } /^\.SH/ { on = 0 } on'; }
man_listed() { man_options "$1" | awk 'tp { print } { tp = $0 == ".TP" }' | flags_in; }
parsed_flags() { grep -oE '\{"[a-z0-9-]+", *[a-z_]+_argument' "$top/tools/$1.c" | sed -E 's/^\{"([^"]*)".*/--\1/' | sort -u; }
(cd "$tmp" && for prog in vet-tokenize vet-pack vet-train vet-generate vet-eval vet-dump vet-synth vet-export; do
    "$VET_BIN/$prog" --help | flags_in >"$tmp/help"; man_options "$prog" | flags_in >"$tmp/man"
    parsed_flags "$prog" >"$tmp/parsed"
    missing=$(comm -23 "$tmp/parsed" "$tmp/help" | sed 's/^/not in --help: /'; comm -23 "$tmp/parsed" "$tmp/man" | sed 's/^/not in the man page: /')
    for flag in $(help_listed "$prog"; man_listed "$prog"); do
        timeout 20 "$VET_BIN/$prog" "$flag" </dev/null >/dev/null 2>"$tmp/err"
        grep -q "unrecognized option '$flag'" "$tmp/err" && missing="$missing
listed but not taken: $flag"
    done
    if [ -s "$tmp/parsed" ] && [ -z "$missing" ]; then ok "cli_${prog#vet-}_flags_documented"
    else fail "cli_${prog#vet-}_flags_documented"; echo "$prog:$missing" >&2; fi
    rm -f -- ./-* 2>/dev/null
done)
