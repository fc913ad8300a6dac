#!/usr/bin/env bash
# make_base.sh DIR — a random-weight $PRESET base in bf16 at DIR, made once by the bundle's run.sh
# for every benchmark that follows (BASE=DIR): torch on the GPU when it answers, else vet-inspect
# init. Ends with `ok make_base` or `not ok make_base: <why>` (exit 1).
# Env: PRESET (llama-7b), DEVICE (cuda), VOCAB; VET_BIN, VET_BUILD, VET_VENV, VET_HELPERS, VET_NO_BUILD.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/bench_lib.sh"
: "${PRESET:=llama-7b}" "${DEVICE:=cuda}"
say() { echo "make_base: $*" >&2; }
[ $# -eq 1 ] || { echo "usage: make_base.sh DIR" >&2; exit 2; }
[ -e "$1" ] && { echo "not ok make_base: $1 exists"; exit 1; }
need_helpers make_base
pick_python
work=$(mktemp -d "$(dirname "$1")/.vet-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset BASE
make_random_base make_base
mv "$work/base" "$1" || { echo "not ok make_base: cannot move the base to $1"; exit 1; }
echo "# $(du -sh "$1" | cut -f1) in $(ls "$1" | wc -l) files"
echo "ok make_base"
