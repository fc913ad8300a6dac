# bench_lib.sh — shared by the GPU benchmarks (sourced, not run): their helpers, the random base,
# and where their figures go. Works in the repository (tests/gpu/) and in the GPU bundle
# (dist/gpu/scripts/, made by `make gpu-bundle`), where nothing can be built.
#
# Env the benchmarks share:
#   VET_PYTHON    the Python with torch, transformers and peft (default: VET_VENV's, else python3)
#   VET_HELPERS   where vet-inspect and vet-mktokens are (default $VET_BUILD/tests/helpers)
#   VET_NO_BUILD  1: never run make (the bundle); a missing helper is then `not ok`
#   BASE          an existing random base to use instead of making one (run.sh makes it once)
#   BASE_TORCH_ONLY  1: the base is made by torch on the GPU or not at all (vet-inspect init of a
#                 7B base takes minutes: the bundle's run has no time for it)
#   VOCAB         the base's vocabulary size instead of the preset's (the CPU rehearsal's tiny
#                 base takes the bundle tokenizer's 1,024)
#   RESULTS       the markdown file tables are appended to (default docs/gpu-results-<date>.md,
#                 written on a GPU only)
#   FIGURES       a file every benchmark appends its figures to, one JSON object per line

# Sourced after $top is set: the programs, the build, the venv (each unless the environment says).
: "${VET_BIN:=$top/bin}" "${VET_BUILD:=$top/build/rel}" "${VET_VENV:=$top/.venv}"

# bench_workdir NAME: $work, a fresh directory removed at exit unless KEEP=1 (it is then named),
# and $t_all, the start. A background poller in $smi_pid is stopped at exit too.
bench_workdir() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/vet-$1.XXXXXX")
    smi_pid=
    trap 'bench_cleanup' EXIT
    t_all=$SECONDS
}
bench_cleanup() {
    [ -n "${smi_pid:-}" ] && kill "$smi_pid" 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}

# pick_python: sets $py, the Python of the baselines: VET_PYTHON, else the repository's venv
# (VET_VENV) when there is one, else python3.
pick_python() {
    py=${VET_PYTHON:-python3}
    if [ -z "${VET_PYTHON:-}" ] && [ -x "${VET_VENV:-/nonexistent}/bin/python" ]; then py="$VET_VENV/bin/python"; fi
}

# need_helpers NAME: sets $inspect and $mktokens, building them in the repository when missing.
need_helpers() {
    : "${VET_HELPERS:=$VET_BUILD/tests/helpers}"
    inspect="$VET_HELPERS/vet-inspect" mktokens="$VET_HELPERS/vet-mktokens"
    [ -x "$inspect" ] && [ -x "$mktokens" ] && return 0
    if [ "${VET_NO_BUILD:-0}" != 1 ] && [ -f "$top/Makefile" ]; then
        make -C "$top" -s "$VET_BUILD/tests/helpers/vet-inspect" "$VET_BUILD/tests/helpers/vet-mktokens" >/dev/null &&
            return 0
    fi
    echo "not ok $1: the helpers vet-inspect and vet-mktokens are not in $VET_HELPERS"
    exit 1
}

# record_results TITLE TABLE: appends a section with the commit and the GPU to $RESULTS, or on a
# GPU to docs/gpu-results-<date>.md (started with a dated title when new). Needs $top.
record_results() {
    local out=${RESULTS:-}
    if [ -z "$out" ]; then
        [ "$DEVICE" = cuda ] || return 0
        out="$top/docs/gpu-results-$(date +%Y-%m-%d).md"
        [ -f "$out" ] || echo "# GPU results, $(date -u '+%Y-%m-%d %H:%M UTC')" >"$out"
    fi
    {
        echo
        echo "## $1"
        echo
        if [ -z "${RESULTS:-}" ]; then
            echo "Commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader -i 0 2>/dev/null | head -1)."
            echo
        fi
        echo "$2"
    } >>"$out"
    say "appended to $out"
}

# record_figures FILE: appends FILE's JSON object (one line) to $FIGURES, when set.
record_figures() {
    [ -n "${FIGURES:-}" ] && [ -s "$1" ] && { cat "$1"; echo; } >>"$FIGURES"
    return 0
}

# make_random_base NAME: a random $PRESET base in bf16 at $work/base, from $work/config.json
# (vet-inspect saveconfig), or $BASE when set. On the GPU with torch when it is there (seconds),
# else with vet-inspect init (minutes for 7B). Needs $top, $work, $py, $inspect, $PRESET,
# $DEVICE and the caller's say(); on failure prints `not ok NAME: ...` and exits 1.
make_random_base() {
    if [ -n "${BASE:-}" ]; then
        [ -f "$BASE/config.json" ] || { echo "not ok $1: BASE=$BASE has no config.json"; exit 1; }
        ln -s "$BASE" "$work/base"
        return 0
    fi
    local why
    why=$("$inspect" saveconfig "$PRESET" "$work/config.json" 2>&1) ||
        { echo "not ok $1: vet-inspect saveconfig $PRESET: $(echo "$why" | tail -n 1)"; exit 1; }
    if [ -n "${VOCAB:-}" ]; then
        python3 - "$work/config.json" "$VOCAB" <<'PY' || { echo "not ok $1: cannot set the vocabulary"; exit 1; }
import json, sys
c = json.load(open(sys.argv[1]))
c["vocab_size"] = int(sys.argv[2])
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
    fi
    here_lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    if [ "$DEVICE" = cuda ] && "$py" -c 'import torch, transformers; assert torch.cuda.is_available()' 2>/dev/null &&
        "$py" "$here_lib/bench_peft.py" --make-base "$work/config.json" "$work/base" 2>"$work/base.err"; then
        say "made a random $PRESET base (bf16) with torch on the GPU"
    elif [ "${BASE_TORCH_ONLY:-0}" = 1 ]; then
        echo "not ok $1: torch could not make the base on the GPU: $(tail -n 1 "$work/base.err" 2>/dev/null)"
        exit 1
    else
        rm -rf "$work/base"
        say "making a random $PRESET base (bf16) with vet-inspect init"
        "$inspect" init "$work/base" "$work/config.json" 7 BF16 >/dev/null || { echo "not ok $1: vet-inspect init failed"; exit 1; }
    fi
}
