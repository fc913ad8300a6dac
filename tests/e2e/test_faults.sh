#!/usr/bin/env bash
# test_faults.sh — fault injection: nothing half-written is ever taken for whole.
#   1. a writer killed with -9 mid-stream (vet-tokenize, vet-pack into vet-dump through a fifo):
#      the reader reports a truncated stream and exits non-zero;
#   2. out of space (ulimit -f, SIGXFSZ ignored so writes fail with EFBIG): every program reports
#      the write error naming the file, exits non-zero (not by a signal) and leaves nothing
#      under the final name;
#   3. vet-train killed with -9 at random moments (after its first checkpoint): --resume
#      completes and the adapter is byte-identical to an uninterrupted run's, every time.
# VET_FAULT_KILLS (default 10, 3 when VET_SANITIZE=1) sets how many kills; VET_FAULT_SEED the
# random moments (default: the shell's pid, printed on failure).
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-faults.XXXXXX")
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }
. "$VET_TOP/tests/e2e/fault_fixture.sh"
fx=$tmp/fx && mkdir -p "$fx"
make_fixture "$fx" || { fail "faults_fixture"; exit 1; }
RANDOM=${VET_FAULT_SEED:-$$}

# --- 1. writer killed mid-stream --------------------------------------------------------
"$VET_BIN/vet-synth" -d "$VET_TOP/data/diseases.tsv" -n 12000 --seed 5 -o "$tmp/big.csv" || exit 1

# killed_writer NAME WRITER-ARGS...: WRITER-ARGS must write its stream to $tmp/pipe. vet-dump
# reads the fifo; once it has printed something it is stopped, so the writer fills the pipe and
# blocks mid-stream; then the writer is killed with -9 and the reader let go on.
killed_writer() {
    rm -f "$tmp/pipe" "$tmp/dump.out" "$tmp/dump.err" && mkfifo "$tmp/pipe"
    "$VET_BIN/vet-dump" "$tmp/pipe" >"$tmp/dump.out" 2>"$tmp/dump.err" & local reader=$!
    "$@" & local writer=$!
    local waited=0
    until [ -s "$tmp/dump.out" ] || [ $waited -ge 400 ]; do sleep 0.05; waited=$((waited + 1)); done
    if [ ! -s "$tmp/dump.out" ]; then
        echo "the reader printed nothing in 20 s" >&2; kill -9 $writer $reader; return 1
    fi
    kill -STOP $reader
    sleep 0.3
    if ! kill -0 $writer 2>/dev/null; then
        echo "the writer finished before it could be killed: inconclusive" >&2
        kill -9 $reader; return 1
    fi
    kill -9 $writer; wait $writer 2>/dev/null
    kill -CONT $reader
    wait $reader; local status=$?
    [ $status -ne 0 ] && [ $status -lt 128 ] || { echo "vet-dump exit $status" >&2; return 1; }
    grep -q "truncated stream" "$tmp/dump.err" || { cat "$tmp/dump.err" >&2; return 1; }
    [ "$(wc -l <"$tmp/dump.out")" -ge 2 ]   # it did read records before the cut
}
check faults_tokenize_killed_reader_reports_truncation \
    killed_writer "$VET_BIN/vet-tokenize" --spm "$fx/tok.model" "$tmp/big.csv" -o "$tmp/pipe"
"$VET_BIN/vet-tokenize" --spm "$fx/tok.model" "$tmp/big.csv" -o "$tmp/big.tok" || exit 1
check faults_pack_killed_reader_reports_truncation \
    killed_writer "$VET_BIN/vet-pack" --no-pack --seq-len 512 -o "$tmp/pipe" "$tmp/big.tok"

# --- 2. out of space ----------------------------------------------------------------------
# full_disk NAME KB FINAL-FILE -- PROGRAM ARGS...: runs PROGRAM with files limited to KB KiB.
full_disk() {
    local name=$1 kb=$2 final=$3; shift 4
    rm -rf "$final"
    (trap '' XFSZ; ulimit -f "$kb"; exec "$@") >"$tmp/fd.out" 2>"$tmp/fd.err"
    local status=$? why=""
    [ $status -ne 0 ] || why="exit 0"
    [ $status -lt 128 ] || why="killed by signal $((status - 128))"
    [ -z "$why" ] && [ -e "$final" ] && why="$final exists"
    [ -z "$why" ] && ! grep -q "$(basename "$final")" "$tmp/fd.err" && why="message does not name $(basename "$final")"
    [ -z "$why" ] && ! grep -qiE "write|too large|space" "$tmp/fd.err" && why="message does not say the write failed"
    [ -z "$why" ] && [ "$(ls "$(dirname "$final")" | grep -c '\.tmp')" -ne 0 ] && why="a temporary file was left"
    if [ -z "$why" ]; then ok "faults_full_disk_$name"; else
        fail "faults_full_disk_$name"; echo "$name: $why (exit $status): $(head -c 300 "$tmp/fd.err")" >&2; fi
}
o=$tmp/out && mkdir -p "$o"
full_disk synth 4 "$o/notes.csv" -- "$VET_BIN/vet-synth" -d "$VET_TOP/data/diseases.tsv" -n 2000 -o "$o/notes.csv"
full_disk tokenize 4 "$o/notes.tok" -- "$VET_BIN/vet-tokenize" --spm "$fx/tok.model" "$tmp/big.csv" -o "$o/notes.tok"
full_disk tokenize_text 4 "$o/notes.txt" -- "$VET_BIN/vet-tokenize" --spm "$fx/tok.model" --text "$fx/notes.csv" -o "$o/notes.txt"
full_disk pack_out 4 "$o/packed/train.msgpack.zst" -- "$VET_BIN/vet-pack" "$tmp/big.tok" --out "$o/packed"
full_disk pack_one 4 "$o/all.packed" -- "$VET_BIN/vet-pack" "$tmp/big.tok" -o "$o/all.packed"
full_disk train_full 64 "$o/scratch/model.safetensors" -- "$VET_BIN/vet-train" -q --threads 2 --init "$fx/micro.json" \
    --tokenizer "$fx/tok.model" --train "$fx/train.msgpack.zst" --out "$o/scratch" --max-steps 1
full_disk train_lora 4 "$o/lora/adapter_model.safetensors" -- "$VET_BIN/vet-train" -q --threads 2 --base "$fx/base" \
    --train "$fx/train.msgpack.zst" --out "$o/lora" --max-steps 1 --lora-r 8
full_disk generate 1 "$o/preds" -- "$VET_BIN/vet-generate" -q --threads 2 -m "$fx/base" -n 8 "$fx/rows.tok" -o "$o/preds"
"$VET_BIN/vet-generate" -q --threads 2 -m "$fx/base" -n 8 "$fx/rows.tok" -o "$tmp/preds" || exit 1
full_disk eval_json 1 "$o/metrics.json" -- "$VET_BIN/vet-eval" -q --bootstrap 0 --json "$o/metrics.json" "$tmp/preds"
# Standard output into a full file: the shell made the file, so only the message and status count.
dump_full() {
    (trap '' XFSZ; ulimit -f 4; exec "$VET_BIN/vet-dump" "$tmp/big.tok" >"$o/dump.jsonl") 2>"$tmp/fd.err"
    local status=$?
    [ $status -ne 0 ] && [ $status -lt 128 ] && grep -qiE "write|too large" "$tmp/fd.err" ||
        { echo "vet-dump exit $status: $(cat "$tmp/fd.err")" >&2; return 1; }
}
check faults_full_disk_dump_stdout dump_full

# --- 3. vet-train killed at random moments, then --resume ----------------------------------
lora_args=(--threads 2 -q --base "$fx/base" --train "$fx/train.msgpack.zst" --epochs 100 --max-steps 12
           --batch-size 2 --grad-accum 2 --lr 1e-3 --lora-r 4 --lora-alpha 8 --save-every 2 --save-limit 2)
# The uninterrupted run, timed: from its first checkpoint to its end is the window kills land in.
# Every killed run and this one pause 20 ms after each step (VET_TRAIN_STEP_DELAY_MS, outputs
# unchanged): the window is then >= 200 ms on any machine, however fast (a quiet machine ran
# the 12 steps in less time than the poll takes); the resumed runs go at full speed.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
export VET_TRAIN_STEP_DELAY_MS=20
"$VET_BIN/vet-train" "${lora_args[@]}" --out "$tmp/whole" & whole=$!
waited=0
until ls "$tmp"/whole/checkpoints/step-*/state.json >/dev/null 2>&1 || [ $waited -ge 3000 ]; do
    sleep 0.01; waited=$((waited + 1)); done
t1=$(now_ms)
wait $whole || { fail "faults_train_uninterrupted"; exit 1; }
window_ms=$(($(now_ms) - t1))
# 10 kills; 3 under the sanitized build (same code paths, 3x slower programs).
kills=${VET_FAULT_KILLS:-$([ "${VET_SANITIZE:-0}" = 1 ] && echo 3 || echo 10)}
train_kills() {
    local landed=0 tries=0 resumed_ok=0
    while [ $landed -lt "$kills" ] && [ $tries -lt $((kills * 3)) ]; do
        tries=$((tries + 1))
        local out=$tmp/run-$tries
        # Not through a shell function: $! must be vet-train's own pid.
        "$VET_BIN/vet-train" "${lora_args[@]}" --out "$out" & local pid=$!
        local waited=0
        until ls "$out"/checkpoints/step-*/state.json >/dev/null 2>&1 || [ $waited -ge 600 ]; do
            sleep 0.01; waited=$((waited + 1)); done
        # A random moment in the rest of the run (its length measured above).
        local ms=$((RANDOM % (window_ms > 20 ? window_ms * 9 / 10 : 20)))
        sleep "$(printf '0.%03d' $((ms % 1000)))"; [ $ms -ge 1000 ] && sleep $((ms / 1000))
        kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
        if [ -f "$out/adapter_model.safetensors" ]; then rm -rf "$out"; continue; fi   # finished first
        landed=$((landed + 1))
        if VET_TRAIN_STEP_DELAY_MS=0 "$VET_BIN/vet-train" "${lora_args[@]}" --out "$out" --resume "$out" 2>"$tmp/resume.err" &&
            cmp -s "$tmp/whole/adapter_model.safetensors" "$out/adapter_model.safetensors"; then
            resumed_ok=$((resumed_ok + 1))
        else
            echo "kill $landed (after ${ms} ms, VET_FAULT_SEED=${VET_FAULT_SEED:-$$}): resume failed or adapter differs: $(head -c 300 "$tmp/resume.err")" >&2
        fi
        rm -rf "$out"
    done
    echo "vet-train: $landed kills landed mid-run in $tries tries (window $window_ms ms), $resumed_ok resumed byte-identical" >&2
    [ $landed -ge "$kills" ] && [ $resumed_ok -eq $landed ]
}
check faults_train_kill9_resume_identical train_kills

# --- 4. a program ended by a signal leaves no temporary -----------------------------------
# signalled SIG STATUS: vet-generate coding the 12,000 notes is stopped by SIG once its output's
# temporary exists; it must end as the signal ends a program (STATUS = 128 + SIG's number), with
# neither the temporary (sig.pred.tmp.PID, tools/cli.h's handler) nor the output left.
signalled() {
    local sig=$1 want=$2 out="$tmp/sig-$1.pred"
    "$VET_BIN/vet-generate" -q -t 1 -m "$fx/base" -n 4 "$tmp/big.tok" -o "$out" 2>"$tmp/sig.err" & local pid=$!
    local waited=0
    until compgen -G "$out.tmp.*" >/dev/null || [ $waited -ge 400 ]; do sleep 0.05; waited=$((waited + 1)); done
    if ! compgen -G "$out.tmp.*" >/dev/null; then
        echo "no temporary in 20 s" >&2; kill -9 $pid; wait $pid; return 1
    fi
    kill -"$sig" $pid; wait $pid; local status=$?
    [ $status = "$want" ] || { echo "SIG$sig: exit $status, want $want: $(head -c 300 "$tmp/sig.err")" >&2; return 1; }
    ! compgen -G "$out*" >/dev/null || { echo "SIG$sig left $(ls "$out"*)" >&2; return 1; }
}
check faults_sigterm_leaves_no_temporary signalled TERM 143
check faults_sighup_leaves_no_temporary signalled HUP 129
