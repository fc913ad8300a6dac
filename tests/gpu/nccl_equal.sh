#!/usr/bin/env bash
# tests/gpu/nccl_equal.sh — the NCCL gradient sum against the host's, on a machine with 2 GPUs
# (docs/scale.md, "GPUs: one rank per GPU"). Not yet run: no machine with two GPUs so far.
#
# Two runs of `mpirun -np 2 vet-train --device cuda --fp32` on the fault fixture's micro model:
# one summing on the GPUs (NCCL), one with VET_NCCL=0 (through the host, comm_mpi.c). Both sum
# in rank order, so the adapters must be byte-identical and the logs equal less their timings;
# the device note must say NCCL. Needs vet built with CUDA, MPI and NCCL (the build banner
# lists `nccl`) and run from the repository root: VET_BIN=$PWD/bin tests/gpu/nccl_equal.sh.
# Prints `ok` / `not ok` / `skip` lines; exit 1 on any `not ok`.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
: "${VET_BIN:=$top/bin}"
VET_TOP=$top
command -v mpirun >/dev/null || { echo "skip nccl_equal: no mpirun"; exit 0; }
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
[ "$gpus" -ge 2 ] || { echo "skip nccl_equal: $gpus GPU(s), 2 needed"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-nccl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "$top/tests/e2e/fault_fixture.sh"
make_fixture "$tmp" || { echo "not ok nccl_equal_fixture"; exit 1; }
export OMP_NUM_THREADS=1
run() {  # run NAME [ENV=VALUE]: 2 ranks, one GPU each (cuda = the rank's local index)
    local name=$1; shift
    env "$@" mpirun -np 2 --allow-run-as-root -x OMP_NUM_THREADS ${1:+-x VET_NCCL} "$VET_BIN/vet-train" \
        --device cuda --fp32 --threads 1 --base "$tmp/base" --train "$tmp/train.msgpack.zst" \
        --val "$tmp/val.msgpack.zst" --epochs 100 --max-steps 8 --batch-size 2 --grad-accum 2 --lr 1e-3 \
        --lora-r 4 --lora-alpha 8 --lora-dropout 0 --eval-every 4 --out "$tmp/$name" 2>"$tmp/$name.err"
}
steps() { sed -E 's/,"(tokens_per_s|elapsed_s|allreduce_s)":[^,}]*//g' "$1/train.log.jsonl"; }
status=0
check() { local name=$1; shift; if "$@"; then echo "ok $name"; else echo "not ok $name"; status=1; fi; }
run nccl; nccl_rc=$?
run host VET_NCCL=0; host_rc=$?
[ $nccl_rc -eq 0 ] || cat "$tmp/nccl.err" >&2
[ $host_rc -eq 0 ] || cat "$tmp/host.err" >&2
check nccl_equal_runs [ $nccl_rc -eq 0 -a $host_rc -eq 0 ]
check nccl_equal_note grep -q "gradients summed on the GPUs (NCCL" "$tmp/nccl.err"
check nccl_equal_host_note grep -q "gradients summed through the host (mpi, rank order: VET_NCCL=0)" "$tmp/host.err"
check nccl_equal_adapter cmp -s "$tmp/nccl/adapter_model.safetensors" "$tmp/host/adapter_model.safetensors"
check nccl_equal_log diff -q <(steps "$tmp/nccl") <(steps "$tmp/host")
exit $status
