# bench_lib.sh — shared by the GPU benchmarks (sourced, not run): where their figures go.

# record_results TITLE TABLE: appends a section with the commit and the GPU to
# docs/gpu-results-<date>.md (the file is started with a dated title when new). Needs $top.
record_results() {
    local out="$top/docs/gpu-results-$(date +%Y-%m-%d).md"
    [ -f "$out" ] || echo "# GPU results, $(date -u '+%Y-%m-%d %H:%M UTC')" >"$out"
    {
        echo
        echo "## $1"
        echo
        echo "Commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader -i 0 2>/dev/null | head -1)."
        echo
        echo "$2"
    } >>"$out"
    echo "$out"
}

# make_random_base NAME: a random $PRESET base in bf16 at $work/base, from $work/config.json
# (vet-inspect saveconfig). On the GPU with torch when it is there (seconds), else with
# vet-inspect init (minutes for 7B). Needs $top, $work, $py, $inspect, $PRESET, $DEVICE and
# the caller's say(); on failure prints `not ok NAME: ...` and exits 1.
make_random_base() {
    "$inspect" saveconfig "$PRESET" "$work/config.json" || { echo "not ok $1: no preset $PRESET"; exit 1; }
    if [ "$DEVICE" = cuda ] && "$py" -c 'import torch, transformers; assert torch.cuda.is_available()' 2>/dev/null &&
        "$py" "$top/tests/gpu/bench_peft.py" --make-base "$work/config.json" "$work/base" 2>"$work/base.err"; then
        say "made a random $PRESET base (bf16) with torch on the GPU"
    else
        rm -rf "$work/base"
        say "making a random $PRESET base (bf16) with vet-inspect init"
        "$inspect" init "$work/base" "$PRESET" 7 BF16 >/dev/null || { echo "not ok $1: vet-inspect init failed"; exit 1; }
    fi
}
