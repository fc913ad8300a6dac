#!/bin/sh
# mk/cudnn_frontend.sh DIR — cuDNN's frontend (NVIDIA's header-only C++ API over cuDNN's graph
# backend, MIT licensed) into DIR/include, for kernels/attention_cudnn.cc: cuDNN's fused
# attention (docs/cuda.md "cuDNN's attention"). The headers ship in the nvidia-cudnn-frontend
# wheel on PyPI; this downloads that one pinned wheel (checked against its SHA-256) and unpacks
# its include/ folder. Needs python3 with pip, or python3-venv to make one. Idempotent: exits at
# once when DIR/include/cudnn_frontend.h is there.
set -eu
dir=${1:?usage: mk/cudnn_frontend.sh DIR}
version=1.32.0
wheel=nvidia_cudnn_frontend-$version-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
sha256=c6006556017a4d1c914c52a556c71b1267f2d6a0500f742e7b4edef539878df0
[ -f "$dir/include/cudnn_frontend.h" ] && exit 0
py=$(command -v /usr/bin/python3 || command -v python3)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pip="$py -m pip"
if ! $pip --version >/dev/null 2>&1; then
    "$py" -m venv "$tmp/venv"
    pip="$tmp/venv/bin/python -m pip"
fi
# The exact wheel whatever this machine's Python: the headers are the same in every wheel of a
# version, the pinned hash is this one's.
$pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux_2_28_x86_64 -d "$tmp" "nvidia-cudnn-frontend==$version"
got=$(sha256sum "$tmp/$wheel" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
    echo "mk/cudnn_frontend.sh: $wheel: SHA-256 $got, expected $sha256" >&2
    exit 1
fi
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
"$py" - "$tmp/$wheel" "$dir.tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("include/")])
PY
echo "nvidia-cudnn-frontend $version ($sha256)" >"$dir.tmp/VERSION"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "mk/cudnn_frontend.sh: cuDNN frontend $version headers in $dir/include"
