#!/usr/bin/env bash
# test_mpi.sh — vet-train data parallel under mpirun (docs/scale.md): 2 ranks with batch 2 train
# as one process with batch 4 (the loss of every step within 1e-6, the adapter within the
# documented tolerance) and bit for bit like another 2-rank run; a rank that fails, or is
# killed with -9, ends the job at once with a non-zero status, and the checkpoints resume, on 2
# ranks or on 1. Skips when vet-train was built without MPI or mpirun is absent.
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
if ! "$VET_BIN/vet-train" --help | grep -q 'This build: with MPI'; then
    echo "skip mpi: vet-train built without MPI (install libopenmpi-dev, then make)"; exit 0
fi
if ! command -v mpirun >/dev/null; then echo "skip mpi: no mpirun (Debian's openmpi-bin)"; exit 0; fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-mpi.XXXXXX")
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

. "$VET_TOP/tests/e2e/fault_fixture.sh"
make_fixture "$tmp" || { fail "mpi_fixture"; exit 1; }
# Open MPI's own allocations at exit are no leak of ours (the sanitized build).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export OMP_NUM_THREADS=1

# One rank per core at most on CI's 2 cores; --allow-run-as-root: CI runs as root.
mpi() { local np=$1; shift; mpirun -np "$np" --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS \
    -x ASAN_OPTIONS ${VET_TRAIN_FAIL_AT:+-x VET_TRAIN_FAIL_AT} "$VET_BIN/vet-train" "$@"; }
one() { "$VET_BIN/vet-train" "$@"; }
# LoRA on the fixture's micro model, 8 steps of 2 micro-batches, validation and checkpoints;
# dropout off here (case 1b turns every kind on).
args() { echo --threads 1 -q --base "$tmp/base" --train "$tmp/train.msgpack.zst" --val "$tmp/val.msgpack.zst" \
    --epochs 100 --max-steps 8 --grad-accum 2 --lr 1e-3 --lora-r 4 --lora-alpha 8 --lora-dropout ${DROP:-0} \
    --save-every 3 --eval-every 4 --out "$tmp/$1"; }

# compare.py A B [FROM]: the losses (and validation losses) of steps FROM.. within 1e-6 relative;
# the adapters' floats within 1e-5 of the largest weight (the documented tolerance: the ranks
# add the rows' gradients in another order than one process's GEMM).
cat >"$tmp/compare.py" <<'PY'
import json, struct, sys
a, b = sys.argv[1], sys.argv[2]
start = int(sys.argv[3]) if len(sys.argv) > 3 else 1
def log(d): return {r["step"]: r for r in map(json.loads, open(d + "/train.log.jsonl"))}
la, lb = log(a), log(b)
if sorted(la) != sorted(lb): sys.exit(f"steps differ: {sorted(la)} vs {sorted(lb)}")
worst = 0.0
for s in la:
    if s < start: continue
    for k in ("loss", "val_loss"):
        if (k in la[s]) != (k in lb[s]): sys.exit(f"step {s}: {k} in one log only")
        if k in la[s]: worst = max(worst, abs(la[s][k] - lb[s][k]) / abs(la[s][k]))
def tensors(d):
    raw = open(d + "/adapter_model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__": continue
        lo, hi = v["data_offsets"]
        out[k] = struct.unpack(f"<{(hi - lo) // 4}f", raw[8 + n + lo:8 + n + hi])
    return out
ta, tb = tensors(a), tensors(b)
if sorted(ta) != sorted(tb): sys.exit("adapter tensors differ in names")
big = max(abs(x) for t in ta.values() for x in t)
diff = max(abs(x - y) for k in ta for x, y in zip(ta[k], tb[k]))
print(f"{a.split('/')[-1]} vs {b.split('/')[-1]}: loss rel {worst:.2e}, adapter |diff| {diff:.2e} (max |w| {big:.3f})",
      file=sys.stderr)
sys.exit(0 if worst <= 1e-6 and diff <= 1e-5 * big else 1)
PY
compare() { /usr/bin/python3 "$tmp/compare.py" "$@"; }
steps_of() { /usr/bin/python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["step"]) for l in open(sys.argv[1])))' "$1"; }
# The log without its timing and rank fields.
plain_log() { sed -E 's/,"tokens_per_s":[^,]*,"elapsed_s":[^,}]*//; s/,"ranks":[0-9]+,"allreduce_s":[^,}]*//' "$1"; }

# 1. The contract: 2 ranks x batch 2 = one process x batch 4, same accumulation.
doubled_ok() {
    one $(args one4) --batch-size 4 || return 1
    mpi 2 $(args two2) --batch-size 2 || return 1
    grep -q '"ranks":2,"allreduce_s":' "$tmp/two2/train.log.jsonl" || { echo "no allreduce time in the log" >&2; return 1; }
    compare "$tmp/one4" "$tmp/two2"
}
check mpi_2x2_trains_as_1x4 doubled_ok

# 1b. The same with LoRA, residual and token dropout on: a rank's share of a micro-batch is
# padded to the global batch's longest row and keys its masks by its rows' global places
# (vet_batch.row0), every rank with the one seed, so the masks and dropped tokens are the
# one-process run's. Against the per-rank masks this used to be, the losses differ at step 1.
dropout_ok() {
    local drop="--resid-dropout 0.1 --token-dropout 0.1"
    one $(DROP=0.1 args d_one4) --batch-size 4 $drop || return 1
    mpi 2 $(DROP=0.1 args d_two2) --batch-size 2 $drop || return 1
    compare "$tmp/d_one4" "$tmp/d_two2"
}
check mpi_2x2_trains_as_1x4_with_dropout dropout_ok

# 2. Deterministic: another 2-rank run gives the same bits (the rank-order sum), and rank 1
# wrote nothing (rank 0 alone writes OUT: one log, one set of checkpoints).
repeat_ok() {
    mpi 2 $(args two2b) --batch-size 2 || return 1
    cmp "$tmp/two2/adapter_model.safetensors" "$tmp/two2b/adapter_model.safetensors" || return 1
    cmp <(plain_log "$tmp/two2/train.log.jsonl") <(plain_log "$tmp/two2b/train.log.jsonl") || return 1
    [ "$(ls "$tmp/two2b/checkpoints")" = "$(printf 'step-00000003\nstep-00000006')" ]
}
check mpi_repeat_bit_identical repeat_ok

# 3. mpirun -np 1 is the plain run, bit for bit.
np1_ok() {
    mpi 1 $(args np1) --batch-size 4 || return 1
    cmp "$tmp/one4/adapter_model.safetensors" "$tmp/np1/adapter_model.safetensors" &&
        cmp <(plain_log "$tmp/one4/train.log.jsonl") <(plain_log "$tmp/np1/train.log.jsonl")
}
check mpi_np1_is_plain_run np1_ok

# 4. A rank that fails (the test hook: rank 1 at step 5) stops every rank: the job exits with
# the failure's status (1) within seconds, rank 0 names rank 1; no adapter, the step-3
# checkpoint stays.
failed_rank_ok() {
    local t0=$SECONDS status
    VET_TRAIN_FAIL_AT=1:5 mpi 2 $(args fail) --batch-size 2 2>"$tmp/fail.err"
    status=$?
    [ $status -eq 1 ] || { echo "exit status $status, not 1" >&2; cat "$tmp/fail.err" >&2; return 1; }
    [ $((SECONDS - t0)) -le 20 ] || { echo "took $((SECONDS - t0)) s" >&2; return 1; }
    grep -q 'rank 0 of 2: step 5: rank 1 of 2 failed' "$tmp/fail.err" &&
        grep -q 'rank 1 of 2: step 5: failing on purpose' "$tmp/fail.err" || { cat "$tmp/fail.err" >&2; return 1; }
    [ ! -e "$tmp/fail/adapter_model.safetensors" ] && [ -d "$tmp/fail/checkpoints/step-00000003" ]
}
check mpi_failed_rank_stops_job failed_rank_ok

# 5. The failed 2-rank run's checkpoint resumes on 1 process (batch 4: the same global batch)
# and continues the same run: steps 4..8 as the uninterrupted one-process run's; with batch 2
# on 1 process (another global batch) it is refused.
resume_2to1_ok() {
    one $(args fail) --batch-size 2 --resume "$tmp/fail" 2>/dev/null && { echo "batch 2 on 1 rank resumed" >&2; return 1; }
    one $(args fail) --batch-size 4 --resume "$tmp/fail" || return 1
    [ "$(steps_of "$tmp/fail/train.log.jsonl")" = "1 2 3 4 5 6 7 8" ] || return 1
    compare "$tmp/one4" "$tmp/fail" 4
}
check mpi_resume_2_ranks_on_1 resume_2to1_ok

# 6. kill -9 of rank 1 mid-run: mpirun ends the job within seconds, non-zero; the newest
# checkpoint resumes on 2 ranks and the run ends as the uninterrupted 2-rank run (step 2's
# checkpoint from 2 ranks: bit for bit).
kill_ok() {
    local out=$tmp/kill long="--max-steps 160 --save-every 20"
    mpi 2 $(args kill) --batch-size 2 $long 2>"$tmp/kill.err" & local job=$!
    local waited=0 victim="" p
    until [ -d "$out/checkpoints/step-00000040" ] || [ $waited -ge 600 ]; do sleep 0.05; waited=$((waited + 1)); done
    for p in $(pgrep -f "$VET_BIN/vet-train"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && grep -q "$out" "/proc/$p/cmdline" &&
            victim=$p
    done
    [ -n "$victim" ] || { echo "rank 1 not found" >&2; kill -9 $job; return 1; }
    local t0=$SECONDS
    kill -9 "$victim"
    wait $job
    local status=$?
    [ $status -ne 0 ] || { echo "mpirun exited 0 after a rank was killed" >&2; return 1; }
    [ $((SECONDS - t0)) -le 15 ] || { echo "the job took $((SECONDS - t0)) s to end" >&2; return 1; }
    [ ! -e "$out/adapter_model.safetensors" ] || { echo "run finished before the kill: inconclusive" >&2; return 1; }
    # mpirun may return before rank 0 is reaped (a zombie for a second or two): the lock it
    # took names a live pid until then.
    local holder
    holder=$(cat "$out/.vet-train.lock" 2>/dev/null)
    waited=0
    while [ -n "$holder" ] && [ -e "/proc/$holder" ] && [ $waited -lt 200 ]; do sleep 0.05; waited=$((waited + 1)); done
    mpi 2 $(args kill) --batch-size 2 $long --resume "$out" || return 1
    mpi 2 $(args whole) --batch-size 2 $long || return 1
    cmp "$tmp/whole/adapter_model.safetensors" "$out/adapter_model.safetensors"
}
check mpi_kill9_rank_ends_job_and_resumes kill_ok
