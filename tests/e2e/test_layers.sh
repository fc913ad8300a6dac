#!/usr/bin/env bash
# test_layers.sh — the library's layering (lib/README.md) holds: each lib/<layer>/ file includes
# only headers of its own layer or of the layers below; nothing in lib/ includes kernels/; the
# CUDA device code (kernels/*.cu, *.cuh, ops_cuda.h) includes its own headers, lib/base/ and lib/model/quant.h
# only; no tool decides anything from an error's text (strstr on a message).
set -u
: "${VET_TOP:?}"
cd "$VET_TOP" || exit 1
ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }

# The layer of a lib/ folder: a file may include folders of a lower or equal rank, and (rank 4
# being four siblings) not a sibling of its own rank other than itself.
rank() {
    case $1 in
    base) echo 0 ;; io) echo 1 ;; data) echo 2 ;; model) echo 3 ;; train | generate | eval | export) echo 4 ;; *) echo 9 ;;
    esac
}

bad=0
for f in lib/*/*.c lib/*/*.h lib/*/*.cc; do
    own=$(basename "$(dirname "$f")")
    while IFS= read -r inc; do
        dir=${inc%%/*}
        [ "$dir" = "$inc" ] && { echo "$f: #include \"$inc\" is not written from lib/ (folder/file.h)" >&2; bad=1; continue; }
        [ "$dir" = "$own" ] && continue
        if [ "$dir" = kernels ]; then echo "$f: includes $inc: lib/ never includes kernels/" >&2; bad=1; continue; fi
        r=$(rank "$dir")
        if [ "$r" -ge "$(rank "$own")" ]; then echo "$f: includes $inc: $dir/ is not below $own/" >&2; bad=1; fi
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
[ $bad = 0 ] && ok layers_lib_includes_point_down || fail layers_lib_includes_point_down

bad=0
for f in kernels/*.cu kernels/*.cuh kernels/*.h; do
    while IFS= read -r inc; do
        case $inc in
        */*.cuh | */*.h) [ "${inc%%/*}" = base ] || [ "$inc" = model/quant.h ] ||
            { echo "$f: includes $inc (device code may include lib/base and model/quant.h only)" >&2; bad=1; } ;;
        *) [ -f "kernels/$inc" ] ||  # the kernels' own headers (.cuh, ops_cuda.h, attention_cudnn.h)
            { echo "$f: includes $inc, which is not a header of kernels/" >&2; bad=1; } ;;
        esac
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
[ $bad = 0 ] && ok layers_device_code_includes_base_only || fail layers_device_code_includes_base_only

# Tools branch on an error's kind: no strstr over a message to pick an exit status.
if grep -n 'strstr([a-z_.>-]*msg' tools/*.c tools/*.h >&2; then fail layers_tools_never_read_error_text
else ok layers_tools_never_read_error_text; fi
