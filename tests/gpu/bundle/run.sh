#!/usr/bin/env bash
# run.sh [--cpu] [--parts LIST] OUTDIR — every GPU check of one device lease, in at most 9 minutes.
#
# The one command of the GPU bundle (`make gpu-bundle` builds dist/gpu/, docs/cuda.md says how a
# session with a lent GPU runs it): on the device, `sh dist/gpu/run.sh "$OUT"`. It needs nothing
# but what the device image has (the NVIDIA driver, the CUDA libraries, python3 with torch,
# transformers and peft) and the bundle itself; it writes nothing outside OUTDIR and /tmp.
#
# Parts, in order, each with its own time cap, and one budget of 540 s for all (the caps add up
# to 795 s: a part never gets more than the budget has left, so the whole run ends within 9
# minutes whatever happens; a part left less than 5 s is `not ok: no time left`):
#   bundle        every program starts and finds its libraries; the baseline's Python imports
#   gpu           nvidia-smi (with --cpu: the CPU and its flags)
#   memcheck      op_parity --size small under compute-sanitizer --tool memcheck
#   parity-small  op_parity --size small      every CUDA op against the CPU op
#   parity-mid    op_parity --size mid        (a LLaMA-like layer, head_dim 128, 32k vocabulary)
#   gemm          gemm_rate: vet's bf16 GEMM at the 7B step's shapes, the ceiling for the MFU figures
#   gpu-model     test_gpu_model              the GPU model against the CPU model core
#   gpu-infer     test_gpu_infer              prefill and batched decode against the CPU's
#   torch-parity  the GPU model's loss and LoRA gradients against PyTorch + PEFT in fp32, bf16 and
#                 fp16 (tests/reference/test_device_parity.py --quick), vet-generate's ids against
#                 transformers generate on the CPU and the device (test_generate.py); PyTorch on the CPU
#   base          a random llama-7b base in bf16, made once with torch on the GPU
#   lora-ckpt     vet-train vs transformers + peft, 7B LoRA r16 q,k,v,o, bf16, checkpointing, dropout 0.1
#                 (vet: --grad-checkpoint=auto,keep-attention --device-memory 16G: as few layers
#                 recomputed as fit the 18 GB target with the CUDA context; peft: its gradient
#                 checkpointing, every layer);
#                 vet-train profiled (VET_GPU_PROFILE): its device time by kind of work
#   lora-fast     the same without checkpointing, dropout 0 (issue 20's speed target)
#   lora-nf4      vet-train alone, --quant nf4 --grad-checkpoint, 4 steps: peak memory (target 7 GB)
#   dlo           three epochs of the reference recipe over the DLO notes on the 7B base
#   generate      vet-generate vs transformers generate, 300 notes, batch 64, greedy, <= 100 new tokens
#   lora-int8     as lora-nf4 with --quant int8 (target 11 GB)
#   racecheck     op_parity --size small --only attention,lora under compute-sanitizer racecheck,
#                 then synccheck (the shared-memory pipelines); last, it gets what time is left
#   ncu           only when --parts names it: Nsight Compute on the attention and fused LoRA kernels
# Each part prints `ok PART` or `not ok PART: <why>` — a missing program, GPU, library or Python
# package is `not ok`, never a skip. What the run learns goes to OUTDIR in three files:
#   summary.md     the parts, the targets of issue 20 with the measured figures, every table
#   figures.json   every figure, machine-readable
#   log.txt        each part's output (its last 2 MiB)
#
# --cpu: the rehearsal (`make gpu-rehearsal`, in CI): the same parts on the CPU with tiny sizes —
# the CUDA test programs replaced by their CPU stand-in builds (cpu/), vet-train and vet-generate
# with --device cpu, a tiny base. Without a GPU and without --cpu, run.sh exits 2 with one line.
# --parts LIST: only these parts (comma-separated; `base` is added when a benchmark needs it),
# for a second call in the same lease.
# Env: VET_BUDGET_S (540), VET_CAP_SCALE (1: every cap and the budget multiplied by it; the
# rehearsal on a shared 2-core CI machine uses 3), VET_PYTHON (python3), CUDA_LIB (a folder
# holding libcublas.so.13).
# Exit status: 0 every part ok, 1 some part not ok, 2 usage error or no GPU.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
here=$(cd "$(dirname "$0")" && pwd)
usage() { sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; }
cpu=0 parts=
while [ $# -gt 0 ]; do
    case $1 in
        --cpu) cpu=1 ;;
        --parts) parts=${2:-}; shift ;;
        --parts=*) parts=${1#--parts=} ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) break ;;
    esac
    shift
done
[ $# -eq 1 ] || { echo "usage: run.sh [--cpu] [--parts LIST] OUTDIR (see --help)" >&2; exit 2; }
out=$1
mkdir -p "$out" || { echo "run.sh: cannot make $out" >&2; exit 2; }
out=$(cd "$out" && pwd)

if [ $cpu = 0 ] && ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    echo "run.sh: no NVIDIA GPU here (nvidia-smi -L lists none): run it on the device machine, or with --cpu for the CPU rehearsal" >&2
    exit 2
fi

# --- the run's settings ----------------------------------------------------------------------
scale=${VET_CAP_SCALE:-1}
case $scale in '' | *[!0-9]* | 0) echo "run.sh: VET_CAP_SCALE must be a positive integer" >&2; exit 2 ;; esac
budget=$(( ${VET_BUDGET_S:-540} * scale ))
work=$(mktemp -d "${TMPDIR:-/tmp}/vet-gpurun.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/logs"
export VET_PYTHON=${VET_PYTHON:-python3}
# The bundle carries its programs and libraries packed (programs.tar.xz: bin/, test/, cpu/, each
# CUDA program ~16 MB, ~2 MB packed; lib.tar.xz: OpenBLAS alone is 36 MB, 4 MB packed), so that it
# stays far under what a lease carries (64 MiB with the working tree). Both are unpacked into the
# work directory (the bundle itself may be read-only: the rehearsal mounts it so), where the
# programs find their libraries through DT_RPATH $ORIGIN/../lib.
progs=$work/bundle
unpack() {  # unpack ARCHIVE DIR-IT-MUST-MAKE: with tar, or Python's tarfile where xz is missing
    { tar -xJf "$here/$1" -C "$progs" 2>/dev/null ||
        "$VET_PYTHON" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
            "$here/$1" "$progs" 2>/dev/null; } && [ -d "$progs/$2" ] ||
        { echo "run.sh: cannot unpack $here/$1 into $progs (tar with xz, or $VET_PYTHON; make gpu-bundle)" >&2; exit 2; }
}
mkdir -p "$progs"
unpack programs.tar.xz cpu
unpack lib.tar.xz lib
export VET_BIN=$progs/bin VET_HELPERS=$progs/bin VET_NO_BUILD=1 VET_VENV=/nonexistent
export RESULTS=$work/tables.md FIGURES=$work/figures.jsonl
export TOKENIZER=$here/data/tokenizer.model NOTES_CSV=$here/data/notes.csv
: >"$RESULTS"
: >"$FIGURES"
if [ $cpu = 1 ]; then
    mode=cpu tests=$progs/cpu
    export DEVICE=cpu PRESET=tiny VOCAB=1024
    lora_env=(STEPS=4 WARMUP=1 BATCH=2 SEQ=512)
    q4=none q8=none  # --quant needs a device: the rehearsal runs the parts' scripts unquantized
    dlo_env=(EPOCHS=1)
    gen_env=(NOTES=24 BATCH=8 MAX_NEW=16 PROMPT=60)
    mid_size=small   # the stand-in's "mid" CPU references take minutes on 2 cores
    gemm_size=small
else
    mode=gpu tests=$progs/test
    export DEVICE=cuda PRESET=llama-7b BASE_TORCH_ONLY=1
    lora_env=(STEPS=10 WARMUP=2 BATCH=4 SEQ=512)
    q4=nf4 q8=int8
    dlo_env=(EPOCHS=3 TRAIN_CAP=55)
    gen_env=(NOTES=300 BATCH=64 MAX_NEW=100 PROMPT=90)
    mid_size=mid gemm_size=full
fi
quant_env=(STEPS=4 WARMUP=1 CKPT=1 DROPOUT=0.1 BASELINE=0)  # after lora_env: these win
export TMPDIR=$work   # every benchmark's work directory goes away with ours

# --- running a part ------------------------------------------------------------------------
# A part's processes can outlive it by seconds (a Python killed at its cap releasing tens of GB):
# the next part's nvidia-smi peak would count their memory (2026-12-04: int8's 69.6 GiB was the
# killed transformers run's). So after each part, wait until the GPU runs no process (20 s at most).
gpu_idle() {
    [ $cpu = 1 ] && return 0
    local i apps
    for i in $(seq 40); do
        apps=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader 2>/dev/null)
        [ -z "$apps" ] && return 0
        sleep 0.5
    done
    echo "# run.sh: after part $1 the GPU still runs: $(echo "$apps" | tr '\n' ';')" >>"$work/logs/$1"
}

t_start=$SECONDS
status=0
: >"$work/parts.tsv"
wanted() { [ -z "$parts" ] || [[ ",$parts," == *",$1,"* ]]; }
# part NAME CAP COMMAND...: runs COMMAND with at most CAP seconds (less when the budget is short),
# output in logs/NAME; ok when it exits 0 and printed no `not ok` and no `skip` line (a test
# program that found no GPU skips: here that is a failure).
part() {
    local name=$1 cap=$(($2 * scale)); shift 2
    wanted "$name" || return 0
    local left=$((budget - (SECONDS - t_start)))
    [ "$cap" -gt "$left" ] && cap=$left
    local log=$work/logs/$name t0=$SECONDS rc why=
    if [ "$cap" -lt 5 ]; then
        rc=125 why="no time left of the ${budget} s budget"
        : >"$log"
    else
        echo "# run.sh: part $name, cap $cap s: $*" >"$log"
        timeout -k 5 "$cap" "$@" >>"$log" 2>&1 </dev/null
        rc=$?
        [ $rc -eq 124 ] || [ $rc -eq 137 ] && why="timed out after $cap s"
    fi
    gpu_idle "$name"
    local secs=$((SECONDS - t0))
    if [ $rc -eq 0 ] && ! grep -q '^not ok\|^skip' "$log"; then
        echo "ok $name ($secs s)"
        printf '%s\tok\t%s\t%s\t\n' "$name" "$secs" "$cap" >>"$work/parts.tsv"
        return 0
    fi
    [ -z "$why" ] && why=$(grep -m1 '^not ok' "$log" | sed 's/^not ok [^:]*: //')
    [ -z "$why" ] && why=$(grep -m1 '^skip' "$log")
    [ -z "$why" ] && why="exit $rc: $(grep -v '^# run.sh:' "$log" | tail -n 1)"
    echo "not ok $name: $why"
    printf '%s\tnot ok\t%s\t%s\t%s\n' "$name" "$secs" "$cap" "$(echo "$why" | tr '\t' ' ' | head -c 400)" >>"$work/parts.tsv"
    status=1
}

# --- the parts -------------------------------------------------------------------------------
# CUDA's libraries where the programs' rpath (/usr/local/cuda/lib64) does not reach them: CUDA_LIB,
# other toolkit folders, the nvidia-* Python wheels, ldconfig's cache (the `bundle` part checks).
# cuBLAS is not linked but opened on first use (kernels/cublas.cu), so ldd does not show it missing.
cublas_found() {
    local d
    for d in /usr/local/cuda/lib64 $(echo "${LD_LIBRARY_PATH:-}" | tr ':' ' '); do
        [ -f "$d/libcublas.so.13" ] && return 0
    done
    ldconfig -p 2>/dev/null | grep -q 'libcublas\.so\.13 '
}
find_cuda_libs() {
    local p d
    if ! { for p in "$progs"/bin/* "$tests"/*; do ldd "$p" 2>&1; done | grep -q 'not found'; } && cublas_found; then
        return 0
    fi
    for d in ${CUDA_LIB:-} /usr/local/cuda*/lib64 /usr/local/cuda*/targets/x86_64-linux/lib \
        $("$VET_PYTHON" -c 'import nvidia, os; print(" ".join(os.path.join(p, s, "lib") for p in nvidia.__path__ for s in os.listdir(p)))' 2>/dev/null) \
        $(ldconfig -p 2>/dev/null | awk '/libcublas\.so\.13 /{ sub("/[^/]*$", "", $NF); print $NF }'); do
        [ -f "$d/libcublas.so.13" ] || [ -f "$d/libcudart.so.13" ] || continue
        export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        echo "# run.sh: CUDA libraries from $d" >&2
    done
}
# cuDNN (libcudnn.so.9), which VET_GPU_ATTENTION=cudnn and op_parity's `attention_*_cudnn` rows
# open on first use (kernels/attention_cudnn.cc): where the rpath, LD_LIBRARY_PATH and ldconfig
# miss it, the first toolkit folder or nvidia-* wheel (torch's nvidia/cudnn/lib) holding it.
find_cudnn() {
    local d
    for d in /usr/local/cuda/lib64 $(echo "${LD_LIBRARY_PATH:-}" | tr ':' ' '); do
        [ -f "$d/libcudnn.so.9" ] && return 0
    done
    ldconfig -p 2>/dev/null | grep -q 'libcudnn\.so\.9 ' && return 0
    for d in ${CUDA_LIB:-} /usr/local/cuda*/lib64 /usr/local/cuda*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu \
        $("$VET_PYTHON" -c 'import nvidia, os; print(" ".join(os.path.join(p, s, "lib") for p in nvidia.__path__ for s in os.listdir(p)))' 2>/dev/null); do
        [ -f "$d/libcudnn.so.9" ] || continue
        export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d
        echo "# run.sh: cuDNN from $d" >&2
        return 0
    done
    echo "# run.sh: no libcudnn.so.9 found: the attention_*_cudnn rows will say so" >&2
}
[ $cpu = 1 ] || { find_cuda_libs; find_cudnn; }
export VET_BUNDLE=$progs VET_TESTS=$tests VET_RUN_MODE=$mode

cd "$work" || exit 2
echo "# run.sh: $mode run, budget $budget s, output in $out" >&2
part bundle 60 bash "$here/scripts/checks.sh" bundle
part gpu 10 bash "$here/scripts/checks.sh" device
part memcheck 40 bash "$here/scripts/checks.sh" memcheck
part parity-small 20 "$tests/op_parity" --size small
# A parity run that never printed its table hung or crashed in some kernel: the mid run would
# spend its 90 s the same way, and the fallbacks below treat the rows it never printed as failed.
if wanted parity-mid && wanted parity-small && ! grep -q '^| op | shape' "$work/logs/parity-small" 2>/dev/null; then
    echo "not ok parity-mid: parity-small did not finish (a kernel hung or crashed?): not run"
    printf 'parity-mid\tnot ok\t0\t%s\tparity-small did not finish: not run\n' "$((90 * scale))" >>"$work/parts.tsv"
    status=1
else
    part parity-mid 90 "$tests/op_parity" --size "$mid_size"
fi
part gemm 10 "$tests/gemm_rate" --size "$gemm_size"
# A kernel written without a GPU that fails its parity rows (or that compute-sanitizer catches)
# is turned off for what follows, so the benchmarks still measure a correct program; the
# summary's tables say which and why.
fallback() {  # fallback ROWS KERNELS SETTING: `not ok ROWS` in a parity log, no `ok ROWS` in the
    local rows kern        # parity logs there are (a run that hung or crashed before them), or a
    # memcheck report in a kernel named like KERNELS: export SETTING
    rows=$(cat "$work"/logs/parity-* 2>/dev/null | grep -c "^not ok $1")
    if compgen -G "$work/logs/parity-*" >/dev/null && [ "$(cat "$work"/logs/parity-* | grep -c "^ok $1")" -eq 0 ]; then
        rows=$((rows + 1))  # never printed: counted as one failed row
    fi
    kern=$(grep -c "^=========  *at .*$2" "$work/logs/memcheck" 2>/dev/null)
    [ "$rows" -gt 0 ] || [ "${kern:-0}" -gt 0 ] || return 0
    export "${3?}"
    echo "# run.sh: $rows parity rows \`not ok $1\`, ${kern:-0} memcheck reports in $2: $3 from here on" >&2
    printf '\n### Fallbacks\n\n%s parity rows `not ok %s`, %s memcheck reports in `%s`: the parts after ran with `%s`.\n' \
        "$rows" "$1" "${kern:-0}" "$2" "$3" >>"$RESULTS"
}
# attention: the default variant's rows (`attention_forward_bf16 out` ...), what training runs;
# the forced ones (`_scalar`, `_wmma`, `_transposed`, `_sync`) are compared and timed, not used
# at the 7B width. When the default fails (its rows, or memcheck in its pipelined kernels), the
# first of the tensor-core variants `_sync` (tiles loaded, then computed) and `_transposed` (the
# first GPU run's kernels) whose rows all passed takes its place, unless memcheck named one of
# their kernels; otherwise the fp32 kernels do.
parity_count() { cat "$work"/logs/parity-* 2>/dev/null | grep -c "$1"; }
attention_fallback=VET_GPU_ATTENTION=fp32
if ! grep -q "^=========  *at .*attention_\(tc\|mma\)_" "$work/logs/memcheck" 2>/dev/null; then
    for candidate in sync:tc-sync transposed:tc-transposed; do
        if [ "$(parity_count "^not ok attention_[a-z]*_bf16_${candidate%%:*} ")" -eq 0 ] &&
            [ "$(parity_count "^ok attention_[a-z]*_bf16_${candidate%%:*} ")" -gt 0 ]; then
            attention_fallback=VET_GPU_ATTENTION=${candidate#*:}
            break
        fi
    done
fi
fallback 'attention_[a-z]*_bf16 ' 'attention_\(tc\|mma\|pipe\)_' "$attention_fallback"
# LoRA: the fused products' rows (`lora_down_dropout`, ..., and the backward's `lora_du`,
# `lora_grad_b`, not their `_mma` twins) or memcheck in their kernels (`lora_down2_kernel` has a
# digit): cuBLAS and a dropout pass instead. The tensor-core products' rows (`lora_down_mma`,
# ...) or memcheck in theirs (`adapter_rows_mma_kernel`, `adapter_cols_mma_kernel`): the 16-bit
# CUDA-core kernels instead.
fallback 'lora_\([a-z_]*dropout\|du\|grad_b\)\($\|[^_]\|_[^m]\)' 'lora_[a-z_0-9]*_kernel' VET_GPU_LORA_FUSED=0
fallback 'lora_[a-z_]*_mma ' 'adapter_[a-z]*_mma_kernel' VET_GPU_LORA_MMA=0
# The 16-byte element-wise passes against one element a thread (`wide ...`, `narrow ...`) or
# memcheck in their kernels: one element a thread everywhere (the paths of the first lease).
fallback '\(wide\|narrow\) ' '\(f32_to_bf16\|f32_to_f16\|swiglu_[a-z_]*\|add_inplace\|rmsnorm_[a-z_]*\|rope_wide\)_kernel' \
    VET_GPU_WIDE=0
# The packed-code decode kernels' rows (`matmul_rows_q`, `matmul_rows_q_mma`) or memcheck in
# either (`rows_q_kernel`, `rows_q_mma_kernel`): dequantization into scratch for every step.
fallback 'matmul_rows_q' 'rows_q_\(mma_\)\{0,1\}kernel' VET_GPU_QUANT_GEMV=0
# Choices by speed, not fallbacks (scripts/choose.py): where a kernel has a twin computing the same
# thing another way (vet's up product or cuBLAS's, the attention's tile schedules, the 16-bit
# adapters' products on tensor or CUDA cores, 16 bytes or one element a thread), the one
# parity-mid timed faster, its rows all passing, for the parts after; said in the results, like
# a fallback. A setting a fallback made is left alone.
choices=$(python3 "$here/scripts/choose.py" "$work/logs/parity-mid" "$work"/logs/parity-* 2>>"$work/logs/choose")
if [ -n "$choices" ]; then
    printf '\n### Choices\n\n' >>"$RESULTS"
    while IFS=$'\t' read -r setting why; do
        export "${setting?}"
        echo "# run.sh: $why (parity-mid): $setting from here on" >&2
        printf -- '- %s (parity-mid): the parts after ran with `%s`.\n' "$why" "$setting" >>"$RESULTS"
    done <<<"$choices"
fi
part gpu-model 35 "$tests/test_gpu_model"
part gpu-infer 25 "$tests/test_gpu_infer"
# With the settings chosen above: the benchmarks below run what this part checks.
fwdbwd=$progs/bin/vet-fwdbwd
[ $cpu = 1 ] && fwdbwd=$progs/cpu/vet-fwdbwd  # the stand-in build, as the other test programs
gen=$progs/bin/vet-generate
[ $cpu = 1 ] && gen=$progs/cpu/vet-generate
part torch-parity 45 env VET_FWDBWD_DEVICE="$fwdbwd" VET_GENERATE_DEVICE="$gen" bash -c \
    '"$VET_PYTHON" "$1/test_device_parity.py" --quick && "$VET_PYTHON" "$1/test_generate.py"' _ "$here/scripts/ref"
if wanted lora-ckpt || wanted lora-fast || wanted lora-nf4 || wanted lora-int8 || wanted dlo || wanted generate; then
    parts=${parts:+$parts,base}
fi
part base 75 bash "$here/scripts/make_base.sh" "$work/base"
export BASE=$work/base
part lora-ckpt 65 env "${lora_env[@]}" CKPT=auto,keep-attention MEM=16G DROPOUT=0.1 PROFILE=1 LABEL=lora-ckpt bash "$here/scripts/bench_7b.sh"
part lora-fast 60 env "${lora_env[@]}" CKPT=0 DROPOUT=0 LABEL=lora-fast bash "$here/scripts/bench_7b.sh"
# The quantized bases' memory targets (nf4 <= 7 GB, int8 <= 11 GB with checkpointing): vet-train
# alone, a few steps. int8 comes last: it gets what the budget has left.
part lora-nf4 35 env "${lora_env[@]}" "${quant_env[@]}" QUANT=$q4 LABEL=lora-nf4 bash "$here/scripts/bench_7b.sh"
part dlo 70 env "${dlo_env[@]}" bash "$here/scripts/bench_dlo.sh"
part generate 80 env "${gen_env[@]}" bash "$here/scripts/bench_generate_gpu.sh"
part lora-int8 35 env "${lora_env[@]}" "${quant_env[@]}" QUANT=$q8 LABEL=lora-int8 bash "$here/scripts/bench_7b.sh"
part racecheck 40 bash "$here/scripts/checks.sh" racecheck
# Opt-in (--parts ncu): a profile for the speed work, not a check.
[[ ",$parts," == *",ncu,"* ]] && part ncu 120 bash "$here/scripts/checks.sh" ncu

# --- what comes back ---------------------------------------------------------------------------
total=$((SECONDS - t_start))
python3 "$here/scripts/summary.py" --mode "$mode" --budget "$budget" --total "$total" --bundle "$here" \
    --parts "$work/parts.tsv" --logs "$work/logs" --tables "$RESULTS" --figures "$FIGURES" --out "$out" ||
    { echo "not ok summary: summary.py failed"; status=1; }
for f in "$work"/logs/*; do
    [ -f "$f" ] || continue
    echo "===== ${f##*/}"
    tail -c 2097152 "$f"
done >"$out/log.txt"
n_ok=$(grep -c $'\tok\t' "$work/parts.tsv")
n_all=$(wc -l <"$work/parts.tsv")
echo "run.sh: $n_ok of $n_all parts ok in $total s ($mode); $out/summary.md"
exit $status
