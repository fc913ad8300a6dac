#!/bin/sh
# rehearse.sh BUNDLE — the GPU bundle's CPU rehearsal (`make gpu-rehearsal`, in CI): BUNDLE's
# run.sh --cpu inside a minimal Debian root that lacks the -dev packages, so that a library the
# bundle forgot to carry fails here and not on a device lease. Every part must end `ok` (as many
# as run.sh has `part` lines); then
# run.sh without --cpu (no GPU there) must exit non-zero with one line.
#
# The root: `debootstrap --variant=minbase --include=python3 bookworm` (about 260 MB, made once and
# kept in VET_REHEARSAL_ROOT, default /var/tmp/vet-rehearsal-root). Mounted into it, read-only:
# the bundle at /bundle, the reference venv at its own path (torch, transformers and peft for the
# baseline, as the device image has them; its python is the root's own python3), and the CUDA
# toolkit's libraries at their path (the device has them; vet-train and vet-generate link cuBLAS).
# Nothing else of this machine is visible: the run's `bundle` part checks that every library the
# programs load is the bundle's, glibc's or CUDA's. Needs root (debootstrap, mount, chroot).
# Env: VET_REHEARSAL_ROOT, VET_VENV (.venv), CUDA_HOME (/usr/local/cuda), DEBIAN_MIRROR,
# VET_REHEARSAL_OUT (build/gpu-rehearsal: the run's three files are copied there).
# `rehearse.sh --root` only makes the root (CI starts it early: it is mostly download time).
set -eu
[ $# -eq 1 ] || { echo "usage: rehearse.sh BUNDLE | rehearse.sh --root" >&2; exit 2; }
root=${VET_REHEARSAL_ROOT:-/var/tmp/vet-rehearsal-root}
say() { echo "gpu-rehearsal: $*"; }
fail() { say "$*" >&2; exit 1; }

make_root() {
    [ ! -f "$root/.vet-root-ready" ] || return 0
    command -v debootstrap >/dev/null || fail "needs debootstrap (make deps installs it)"
    mirror=${DEBIAN_MIRROR:-$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null)}
    mirror=${mirror:-http://deb.debian.org/debian}
    say "making a minimal Debian root in $root (debootstrap from $mirror)"
    rm -rf "$root"
    debootstrap --variant=minbase --include=python3 bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
        { tail -n 20 "$root.log" >&2; fail "debootstrap failed (log: $root.log)"; }
    touch "$root/.vet-root-ready"
}
if [ "$1" = --root ]; then
    [ "$(id -u)" = 0 ] || fail "needs root (debootstrap)"
    make_root
    exit 0
fi

bundle=$(cd "$1" && pwd)
top=$(pwd)
venv=$(cd "${VET_VENV:-$top/.venv}" 2>/dev/null && pwd) || venv=
cuda=${CUDA_HOME:-/usr/local/cuda}
keep=${VET_REHEARSAL_OUT:-$top/build/gpu-rehearsal}

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, mount, chroot)"
[ -n "$venv" ] && [ -x "$venv/bin/python" ] || fail "needs the reference venv (tests/reference/setup)"
[ -d "$cuda/lib64" ] || fail "no CUDA libraries at $cuda/lib64 (CUDA_HOME)"

make_root

# The root lacks what the bundle must carry: no -dev package, none of vet's own libraries.
dev=$(chroot "$root" dpkg-query -W -f '${Package}\n' | grep -- '-dev$' || true)
[ -z "$dev" ] || fail "the root has -dev packages: $dev"
for lib in libopenblas.so.0 libsentencepiece.so.0 libmsgpackc.so.2 libjansson.so.4 libutf8proc.so.2 libgomp.so.1; do
    [ -z "$(find "$root/usr/lib" "$root/lib" -name "$lib" 2>/dev/null | head -1)" ] || fail "the root has $lib"
done

out=$(mktemp -d "${TMPDIR:-/tmp}/vet-rehearsal.XXXXXX")
mounted=
bind() {  # bind SRC DEST_IN_ROOT: a read-only bind mount, undone on exit
    mkdir -p "$root$2"
    mount --bind "$1" "$root$2" && mount -o remount,bind,ro "$root$2"
    mounted="$root$2 $mounted"
}
cleanup() {
    for m in $mounted; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$out"
}
trap cleanup EXIT INT TERM
bind "$bundle" /bundle
bind "$venv" "$venv"
bind "$cuda/lib64/" "$cuda/lib64"
mkdir -p "$root/out" "$root/proc" "$root/dev/shm"
mount --bind "$out" "$root/out" && mounted="$root/out $mounted"
mount -t proc proc "$root/proc" && mounted="$root/proc $mounted"
mount -t tmpfs -o size=1g tmpfs "$root/dev/shm" && mounted="$root/dev/shm $mounted"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TMPDIR=/tmp "$@"; }
say "run.sh --cpu in $root (bundle $bundle, $(du -sh "$bundle" | cut -f1))"
t0=$(date +%s)
rc=0
# The caps are the GPU run's, times 3: the rehearsal checks the parts, not a shared CI machine's speed.
in_root VET_PYTHON="$venv/bin/python" VET_CAP_SCALE=3 bash /bundle/run.sh --cpu /out || rc=$?
mkdir -p "$keep"
cp "$out"/* "$keep/" 2>/dev/null || true
say "run.sh --cpu: exit $rc in $(( $(date +%s) - t0 )) s; its files: $keep"
[ "$rc" -eq 0 ] || { grep '^| [a-z0-9-]* | not ok |' "$keep/summary.md" >&2; fail "some part is not ok"; }
n_parts=$(grep -c '^ *part [a-z]' "$bundle/run.sh")  # indented: parts run under a condition
n_ok=$(grep -c '^| [a-z0-9-]* | ok |' "$keep/summary.md")
[ "$n_ok" -eq "$n_parts" ] || fail "$n_ok of the $n_parts parts are ok in $keep/summary.md"

# Without --cpu there is no GPU in the root: one line, a non-zero exit, no parts run.
rm -rf "$out"/*
err=$(in_root bash /bundle/run.sh /out 2>&1 >/dev/null) && fail "run.sh without a GPU exited 0"
[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "run.sh without a GPU printed more than one line: $err"
[ -z "$(ls "$out")" ] || fail "run.sh without a GPU wrote files"
say "run.sh without a GPU: $err"
say "ok: $n_ok of $n_parts parts ok on the CPU, in a root without the -dev packages"
