#!/bin/sh
# tests/gpu/bundle/assemble.sh DIR ARCH PROGS — completes the GPU bundle once make has built its
# programs into PROGS/bin, PROGS/test and PROGS/cpu (mk/gpubundle.mk: `make gpu-bundle`). Makes in DIR:
#   programs.tar.xz  PROGS's bin/, test/ and cpu/ packed (vet-train, op_parity and test_gpu_model
#              each carry every kernel for sm_80 and sm_90: ~16 MB, ~2 MB packed; unpacked the
#              bundle had passed its 60 MiB on 2026-12-06)
#   lib.tar.xz every shared library the programs load that is neither glibc's nor the NVIDIA
#              driver's or the CUDA toolkit's (those are on the device), found with ldd, packed
#              (44 MB, 8 MB packed); run.sh unpacks both archives into its work directory
#   scripts/   the benchmark scripts run.sh calls
#   data/      the DLO notes (VET_SHARED/data/dlo, default ../shared; synthetic notes from
#              vet-synth when it is absent) and a SentencePiece tokenizer trained on them
#   run.sh     the one command of a lease; BUILD (what was built, from which commit)
# and fails when DIR is over 60 MiB.
set -eu
dir=$1 arch=$2 progs=$3
top=$(pwd)
case $progs in /*) ;; *) progs=$top/$progs ;; esac
rm -rf "$dir/bin" "$dir/test" "$dir/cpu"  # the layout before programs.tar.xz
mkdir -p "$dir"
max_bytes=$((60 * 1024 * 1024))
say() { echo "gpu-bundle: $*"; }

# --- the libraries ------------------------------------------------------------------------
rm -rf "$dir/lib" && mkdir -p "$dir/lib"
for f in "$progs"/bin/* "$progs"/test/* "$progs"/cpu/*; do ldd "$f"; done |
    awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u |
    while read -r name path; do
        case $name in
            linux-vdso* | ld-linux* | libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | \
                libresolv.so.* | libmvec.so.*) continue ;;   # glibc
            libcuda.so* | libcublas* | libcudart* | libnvidia* | libnvJitLink*) continue ;;   # driver, toolkit
        esac
        cp -L "$path" "$dir/lib/$name"
    done
missing=$(for f in "$progs"/bin/* "$progs"/test/* "$progs"/cpu/*; do ldd "$f" | grep 'not found' || true; done | sort -u)
[ -z "$missing" ] || { say "libraries not found:"; echo "$missing"; exit 1; }

# --- the scripts --------------------------------------------------------------------------
rm -rf "$dir/scripts" && mkdir -p "$dir/scripts"
for f in bench_lib.sh bench_7b.sh bench_generate_gpu.sh bench_dlo.sh bench_peft.py make_base.sh; do
    cp "tests/gpu/$f" "$dir/scripts/"
done
cp tests/gpu/bundle/summary.py tests/gpu/bundle/choose.py tests/gpu/bundle/checks.sh "$dir/scripts/"
# The reference suite's device test and what it imports (run.sh's torch-parity part).
mkdir -p "$dir/scripts/ref"
for f in tap.py reflib.py make_models.py test_parity.py test_device_parity.py test_generate.py; do
    cp "tests/reference/$f" "$dir/scripts/ref/"
done
cp tests/gpu/bundle/run.sh "$dir/run.sh"
chmod +x "$dir/run.sh" "$dir"/scripts/*.sh

# --- the data: the DLO notes and a tokenizer trained on them --------------------------------
shared=${VET_SHARED:-$top/../shared}
mkdir -p "$dir/data"
if [ -f "$shared/data/dlo/dlo_notes.csv" ]; then
    cp "$shared/data/dlo/dlo_notes.csv" "$dir/data/notes.csv"
    notes_from="the DLO notes ($shared/data/dlo/dlo_notes.csv)"
else
    "$progs/bin/vet-synth" --diseases data/diseases.tsv --count 1602 --seed 1 -o "$dir/data/notes.csv"
    notes_from="1,602 synthetic notes (vet-synth; ../shared absent)"
fi
tok=$(mktemp -d "${TMPDIR:-/tmp}/vet-bundle-tok.XXXXXX")
trap 'rm -rf "$tok"' EXIT
make --no-print-directory -s -f pipelines/vet.mk VET_BIN="$progs/bin" OUT="$tok" \
    NOTES="$top/$dir/data/notes.csv" VOCAB=1024 tokenizer >/dev/null
cp "$tok/tokenizer.model" "$dir/data/tokenizer.model"
cp data/codes.tsv "$dir/data/codes.tsv"   # bench_generate_gpu.sh's --rank table

# --- what was built ------------------------------------------------------------------------
{
    echo "vet GPU bundle"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "built: $(date -u +%FT%TZ) on $(uname -m), -march=$arch, $(nvcc --version | sed -n 's/.*\(release [0-9.]*\).*/CUDA \1/p'), sm_80 + sm_90"
    echo "data: $notes_from"
    echo "libraries: $(ls "$dir/lib" | tr '\n' ' ')"
} >"$dir/BUILD"

# The libraries packed, last (BUILD lists them), and the programs: xz, as tar -J, which run.sh
# can also read with Python's tarfile where the device lacks xz.
rm -f "$dir/lib.tar.xz" "$dir/programs.tar.xz"
XZ_OPT="-6 -T0" tar -C "$dir" -cJf "$dir/lib.tar.xz" lib
rm -rf "$dir/lib"
XZ_OPT="-6 -T0" tar -C "$progs" -cJf "$dir/programs.tar.xz" bin test cpu

bytes=$(du -sb "$dir" | cut -f1)
say "$dir: $(find "$dir" -type f | wc -l) files, $((bytes / 1024 / 1024)) MiB ($bytes bytes; limit 60 MiB)"
[ "$bytes" -le "$max_bytes" ] || { say "$dir is over 60 MiB"; exit 1; }
