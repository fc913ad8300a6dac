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
