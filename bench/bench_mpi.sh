#!/usr/bin/env bash
# bench_mpi.sh — data-parallel training (docs/scale.md): `mpirun -np 2 vet-train` (1 thread per
# rank, batch 2 each) next to one process (2 threads, batch 4) with the same global batch, on
# the same cores: tokens/s of both and the ratio (about 1x on one 2-core machine: the point is
# that the ranks compute the same training at the same speed), the share of the 2-rank run's
# time spent in the collectives (vet-train's own timing: the status exchange, the loss and the
# gradient sums, waiting for the slower rank included), and the arithmetic of the allreduce of
# a 7B LoRA adapter on 8 GPUs against the compute of its step.
#
#   bench/bench_mpi.sh [PRESET]     (default: tiny, LoRA r16 q,k,v,o on a random-weight base)
# Env: VET_BIN, STEPS (8 optimizer steps of batch 4 x accum 4).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
: "${VET_BIN:=$top/bin}" "${STEPS:=8}"
preset=${1:-tiny}
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
if ! "$VET_BIN/vet-train" --help | grep -q 'This build: with MPI' || ! command -v mpirun >/dev/null; then
    echo "bench_mpi: skip: vet-train built without MPI, or no mpirun (Debian's libopenmpi-dev, openmpi-bin)"
    exit 0
fi
spm="$top/build/data/tokenizer.model"
[ -f "$spm" ] || { echo "bench_mpi: skip: no $spm (make tokenizer)"; exit 0; }
notes="$top/build/data/notes.csv"
shared=${VET_SHARED:-$top/../shared}
[ -f "$shared/data/dlo/dlo_notes.csv" ] && notes="$shared/data/dlo/dlo_notes.csv"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-bench-mpi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$VET_BIN/vet-tokenize" --spm "$spm" "$notes" -o "$tmp/notes.tok"
"$VET_BIN/vet-pack" --split 100/0/0 --train "$tmp/train.zst" "$tmp/notes.tok"
"$VET_BIN/vet-train" -q --init "$preset" --tokenizer "$spm" --train "$tmp/train.zst" --out "$tmp/base" --max-steps 1
rm -rf "$tmp/base/checkpoints"
common=(--base "$tmp/base" --train "$tmp/train.zst" --epochs 100 --max-steps "$STEPS" --grad-accum 4)
rate() { sed -n 's/.*(\([0-9]*\) tokens\/s).*/\1/p'; }
echo "data: $(basename "$notes"), packed rows of 512; preset $preset, LoRA r16 q,k,v,o; global batch 4 x accum 4;" \
     "$STEPS steps; $(nproc) cores"
one=$("$VET_BIN/vet-train" "${common[@]}" --out "$tmp/one" --batch-size 4 --threads 2 2>&1)
two=$(OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS -x OMP_WAIT_POLICY \
      "$VET_BIN/vet-train" "${common[@]}" --out "$tmp/two" --batch-size 2 --threads 1 2>&1)
r1=$(echo "$one" | rate) r2=$(echo "$two" | rate)
share=$(echo "$two" | sed -n 's/.*ranks: \([0-9.]*\) s in the collectives (\([0-9.]*\)%.*/\1 s, \2%/p')
floats=$(sed -n 's/.*; [0-9.]* M params, \([0-9.]*\) M trainable.*/\1/p' <<<"$one")
printf '%-34s %12s\n' run tokens/s
printf '%-34s %12s\n' "1 process, 2 threads, batch 4" "${r1:-failed}"
printf '%-34s %12s\n' "mpirun -np 2, 1 thread, batch 2" "${r2:-failed}"
[ -n "$r1" ] && [ -n "$r2" ] && awk -v a="$r2" -v b="$r1" 'BEGIN{printf "ratio (2 ranks / 1 process): %.2fx\n", a/b}'
echo "2 ranks: time in the collectives: ${share:-?} of the run (adapter ${floats:-?} M floats summed per step)"
# The 7B projection (docs/scale.md has the same arithmetic, with its sources).
awk 'BEGIN {
    L = 32; C = 4096; r = 16; targets = 4; P = 6.74e9     # LLaMA-2-7B, LoRA r16 on q,k,v,o
    n = L * targets * r * (C + C); bytes = 4 * n           # A (r, in) + B (out, r), fp32 gradients
    N = 8; moved = 2 * (N - 1) / N * bytes                 # a ring allreduce: sent (= received) per GPU
    tok = 4 * 4 * 512                                      # batch 4 x accum 4 x 512 tokens, per GPU
    flops = 4 * P * tok                                    # LoRA: forward 2P + input gradients 2P per token
    tflops = 400e12                                        # bf16 on an H100, ~40% of its dense peak
    step = flops / tflops
    printf "projection, 7B LoRA r16 q,k,v,o on 8 GPUs: %.1f M floats = %.1f MB of gradients; a ring allreduce moves %.1f MB per GPU per step\n", n / 1e6, bytes / 1e6, moved / 1e6
    printf "  step compute: 4 x %.2e params x %d tokens = %.2e FLOP = %.2f s at 400 TFLOP/s\n", P, tok, flops, step
    split("NVLink 300|InfiniBand NDR 45|PCIe 4.0 (host-staged MPI) 12|100 GbE 11", link, "|")
    for (i = 1; i <= 4; i++) {
        k = split(link[i], w, " "); gbs = w[k]; name = link[i]; sub(/ [0-9]+$/, "", name)
        t = moved / (gbs * 1e9)
        printf "  %-32s %5.0f GB/s: allreduce %6.2f ms = %5.2f%% of the step\n", name, gbs, t * 1e3, 100 * t / (step + t)
    }
}'
