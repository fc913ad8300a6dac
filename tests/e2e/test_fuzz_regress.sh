#!/usr/bin/env bash
# test_fuzz_regress.sh — replays every committed fuzzer input through its libFuzzer harness
# (ASan + UBSan): tests/fuzz/regress/<harness>/* (each once a crash, now fixed) and the
# hand-made seeds in tests/fuzz/corpus/<harness>/*. One case per input; a crash, a sanitizer
# report or a leak is a failure. Builds the harnesses (make fuzz-build) when clang is present;
# skips when clang or libFuzzer's runtime is not installed.
set -u
: "${VET_TOP:?}"
cd "$VET_TOP" || exit 1
fz=build/fuzz
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-fuzzreg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
    echo "skip fuzz_regress: clang not installed (Debian: clang libclang-rt-14-dev)"; exit 0
fi
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' >"$tmp/t.c"
if ! clang -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" 2>/dev/null; then
    echo "skip fuzz_regress: clang has no libFuzzer runtime (Debian: libclang-rt-14-dev)"; exit 0
fi
if ! make -s fuzz-build >"$tmp/build.log" 2>&1; then
    echo "not ok fuzz_regress_build"; tail -n 20 "$tmp/build.log" >&2; exit 1
fi

export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
n=0
for dir in tests/fuzz/regress/* tests/fuzz/corpus/*; do
    [ -d "$dir" ] || continue
    h=$(basename "$dir")
    bin=$fz/fuzz_$h
    [ -x "$bin" ] || { echo "not ok fuzz_regress_$h: no harness $bin for $dir"; continue; }
    for input in "$dir"/*; do
        [ -f "$input" ] || continue
        n=$((n + 1))
        name="fuzz_regress_${h}_$(basename "$(dirname "$dir")")_$(basename "$input")"
        if timeout 60 "$bin" -timeout=20 -rss_limit_mb=2048 "$input" >"$tmp/out" 2>&1; then
            echo "ok $name"
        else
            echo "not ok $name"
            grep -E 'ERROR|runtime error|SUMMARY|vet fuzz' "$tmp/out" | head -n 5 >&2
        fi
    done
done
[ $n -gt 0 ] || echo "not ok fuzz_regress: no inputs under tests/fuzz/regress or tests/fuzz/corpus"
