#!/usr/bin/env bash
# test_train.sh — vet-train end to end on a very small model: from-scratch training lowers the
# loss; LoRA on top writes a PEFT adapter; kill -9 + --resume gives byte-identical adapters;
# SIGTERM writes a checkpoint and exits 5; non-finite losses stop with the step; a tokenizer
# mismatch and bad flags fail clearly; every --help flag is in the man page.
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-train.XXXXXX")
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

spm=$tmp/tok.model
# Data: 160 synthetic notes, a tokenizer trained on them (small vocab, fast), packed rows, and a
# micro config (tests/e2e/fault_fixture.sh, shared with the fault and bad-input tests).
. "$VET_TOP/tests/e2e/fault_fixture.sh"
make_fixture "$tmp" || { fail "train_fixture"; exit 1; }
rm -rf "$tmp/base" "$tmp/adapter"  # this test makes its own, as its first cases

train() { "$VET_BIN/vet-train" --threads 2 -q "$@"; }

# 1. From scratch: the loss must fall well below its start.
scratch_ok() {
    train --init "$tmp/micro.json" --tokenizer "$spm" --train "$tmp/train.msgpack.zst" \
        --val "$tmp/val.msgpack.zst" --out "$tmp/base" --epochs 3 --batch-size 4 --grad-accum 1 \
        --lr 3e-3 --warmup-ratio 0.05 || return 1
    for f in config.json model.safetensors tokenizer.model train.log.jsonl; do
        [ -s "$tmp/base/$f" ] || { echo "missing $f" >&2; return 1; }
    done
    /usr/bin/python3 - "$tmp/base/train.log.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
first, last = rows[0]["loss"], rows[-1]["loss"]
vals = [r["val_loss"] for r in rows if "val_loss" in r]
print(f"from scratch: loss {first:.3f} -> {last:.3f}, val {vals[-1]:.3f}", file=sys.stderr)
sys.exit(0 if last < 0.5 * first and vals and vals[-1] < 0.5 * first else 1)
PY
}
check train_from_scratch_lowers_loss scratch_ok

lora_args() {  # LoRA on the scratch model, 24 steps, checkpoints every 3
    local out=$1; shift
    args=(--threads 2 -q --base "$tmp/base" --train "$tmp/train.msgpack.zst" --out "$out" --epochs 100
          --max-steps 24 --batch-size 2 --grad-accum 2 --lr 1e-3 --lora-r 4 --lora-alpha 8 --save-every 3 "$@")
}
lora() { lora_args "$@"; "$VET_BIN/vet-train" "${args[@]}"; }

# 2. LoRA: a PEFT adapter directory.
lora_ok() {
    lora "$tmp/lora-a" || return 1
    [ -s "$tmp/lora-a/adapter_model.safetensors" ] && grep -q '"r": *4' "$tmp/lora-a/adapter_config.json"
}
check train_lora_writes_peft_adapter lora_ok

# 2b. Without --threads, OMP_NUM_THREADS sets the CPU threads (as for any OpenMP program): the
# same bytes as --threads 1 under OMP_NUM_THREADS=1, and a --threads given wins over it.
threads_env_ok() {
    local t=(--base "$tmp/base" --train "$tmp/train.msgpack.zst" --max-steps 2 --batch-size 2 --lora-r 4)
    OMP_NUM_THREADS=1 "$VET_BIN/vet-train" "${t[@]}" --out "$tmp/env1" 2>"$tmp/env1.err" || return 1
    grep -q '^vet-train: device cpu (1 threads)' "$tmp/env1.err" || { cat "$tmp/env1.err" >&2; return 1; }
    "$VET_BIN/vet-train" "${t[@]}" --threads 1 -q --out "$tmp/flag1" || return 1
    cmp "$tmp/env1/adapter_model.safetensors" "$tmp/flag1/adapter_model.safetensors" || return 1
    OMP_NUM_THREADS=1 "$VET_BIN/vet-train" "${t[@]}" --threads 3 --out "$tmp/flag3" 2>"$tmp/flag3.err" || return 1
    grep -q '^vet-train: device cpu (3 threads)' "$tmp/flag3.err" || { cat "$tmp/flag3.err" >&2; return 1; }
}
check train_threads_from_omp_num_threads threads_env_ok

# 3. kill -9 in the middle, then --resume: the adapter equals the uninterrupted one, byte for byte.
kill_resume_ok() {
    local out=$tmp/lora-b
    lora_args "$out"
    # 25 ms after each step: the 18 steps after the 6th take >= 450 ms on any machine, so the
    # kill lands mid-run (without it a quiet fast machine finished before the poll saw step 6).
    VET_TRAIN_STEP_DELAY_MS=25 "$VET_BIN/vet-train" "${args[@]}" & local pid=$!
    local waited=0
    until [ -d "$out/checkpoints/step-00000006" ] || [ $waited -ge 600 ]; do sleep 0.05; waited=$((waited + 1)); done
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ -f "$out/adapter_model.safetensors" ] && { echo "run finished before the kill: inconclusive" >&2; return 1; }
    # The killed run's lock names a dead pid: the resume takes it over, and gives it up at the end.
    grep -qx "$pid" "$out/.vet-train.lock" || { echo "no lock with the killed run's pid" >&2; return 1; }
    lora "$out" --resume "$out" || return 1
    [ ! -e "$out/.vet-train.lock" ] || { echo "lock left behind" >&2; return 1; }
    # The log holds each step once, in order: the steps the killed run took after its last
    # checkpoint were cut when the resume started, then taken again.
    /usr/bin/python3 -c 'import json,sys; s=[json.loads(l)["step"] for l in open(sys.argv[1])]; sys.exit(s != list(range(1, 25)))' \
        "$out/train.log.jsonl" || { echo "log steps: $(cut -c1-12 "$out/train.log.jsonl" | tr '\n' ' ')" >&2; return 1; }
    cmp "$tmp/lora-a/adapter_model.safetensors" "$out/adapter_model.safetensors"
}
check train_kill9_resume_byte_identical kill_resume_ok

# 3b. Two runs into one --out: the second is refused (exit 2) naming the first's pid.
two_runs_ok() {
    local out=$tmp/lora-two msg status
    lora_args "$out" --max-steps 100000 --save-every 0
    "$VET_BIN/vet-train" "${args[@]}" & local pid=$!
    local waited=0
    until [ -s "$out/train.log.jsonl" ] || [ $waited -ge 600 ]; do sleep 0.05; waited=$((waited + 1)); done
    msg=$(lora "$out" 2>&1)
    status=$?
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ $status -eq 2 ] && grep -q "another vet-train (pid $pid)" <<<"$msg" || { echo "exit $status: $msg" >&2; return 1; }
}
check train_second_run_same_out_refused two_runs_ok

# 4. SIGTERM: finish the step, write a checkpoint, exit 5; resuming completes identically.
sigterm_ok() {
    local out=$tmp/lora-c
    lora_args "$out" --save-every 0
    "$VET_BIN/vet-train" "${args[@]}" & local pid=$!
    local waited=0
    until [ -s "$out/train.log.jsonl" ] || [ $waited -ge 600 ]; do sleep 0.05; waited=$((waited + 1)); done
    kill -TERM $pid
    wait $pid
    local status=$?
    [ $status -eq 5 ] || { echo "exit status $status, want 5" >&2; return 1; }
    ls "$out/checkpoints" | grep -q '^step-' || { echo "no checkpoint" >&2; return 1; }
    [ -f "$out/adapter_model.safetensors" ] && return 1
    lora "$out" --save-every 0 --resume "$out" || return 1
    cmp "$tmp/lora-a/adapter_model.safetensors" "$out/adapter_model.safetensors"
}
check train_sigterm_checkpoint_exit5 sigterm_ok

# 4b. A second SIGTERM does not wait for the step: the run ends at once by the signal (143). The
# hook makes each step last 20 s; the first signal lands in the first step's pause.
sigterm_twice_ok() {
    local out=$tmp/lora-twice
    lora_args "$out" --save-every 0
    VET_TRAIN_STEP_DELAY_MS=20000 "$VET_BIN/vet-train" "${args[@]}" & local pid=$!
    local waited=0
    until [ -s "$out/train.log.jsonl" ] || [ $waited -ge 600 ]; do sleep 0.05; waited=$((waited + 1)); done
    kill -TERM $pid; sleep 0.3; kill -TERM $pid
    local t0=$SECONDS
    wait $pid
    local status=$? took=$((SECONDS - t0))
    [ $status -eq 143 ] && [ $took -lt 10 ] || { echo "two SIGTERMs: exit $status after $took s, want 143 at once" >&2; return 1; }
}
check train_second_sigterm_ends_now sigterm_twice_ok

# 5. A base model with a NaN weight: stop at step 1 naming the loss, exit 6.
# A NaN weight is refused when the model loads, naming the tensor (exit 1); a finite weight so
# large that the forward pass overflows stops at the first step (exit 6).
poison() {  # FILE TENSOR VALUE: element 0 of TENSOR set to VALUE (a float32 file)
    /usr/bin/python3 - "$@" <<'PY'
import json, struct, sys
path, name, value = sys.argv[1], sys.argv[2], float(sys.argv[3])
data = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", data[:8])[0]
info = json.loads(data[8:8 + n])[name]
start = 8 + n + info["data_offsets"][0]
data[start:start + 4] = struct.pack("<f", value)
open(path, "wb").write(data)
PY
}
nonfinite_ok() {
    local msg status
    cp -r "$tmp/base" "$tmp/nanbase" && poison "$tmp/nanbase/model.safetensors" model.norm.weight nan || return 1
    msg=$("$VET_BIN/vet-train" -q --base "$tmp/nanbase" --train "$tmp/train.msgpack.zst" --out "$tmp/nan" \
        --max-steps 3 2>&1)
    status=$?
    [ $status -eq 1 ] && grep -q "model.norm.weight' holds NaN" <<<"$msg" || { echo "exit $status: $msg" >&2; return 1; }
    cp -r "$tmp/base" "$tmp/hugebase" && poison "$tmp/hugebase/model.safetensors" model.norm.weight 3e38 || return 1
    msg=$("$VET_BIN/vet-train" -q --base "$tmp/hugebase" --train "$tmp/train.msgpack.zst" --out "$tmp/huge" \
        --max-steps 3 2>&1)
    status=$?
    [ $status -eq 6 ] || { echo "exit $status: $msg" >&2; return 1; }
    grep -q 'step 1: the loss is not finite' <<<"$msg" || { echo "$msg" >&2; return 1; }
}
check train_nonfinite_stops nonfinite_ok

# 6. Data made by another tokenizer is refused, naming both.
mismatch_ok() {
    # another tokenizer (a real one: a damaged file would be refused as such, before any sha256)
    (cd "$tmp" && spm_train --input=text.txt --model_prefix=other --vocab_size=400 --model_type=unigram \
        --byte_fallback=true --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --num_threads=1 --minloglevel=2 \
        >/dev/null 2>&1) || return 1
    local msg
    msg=$(train --init "$tmp/micro.json" --tokenizer "$tmp/other.model" --train "$tmp/train.msgpack.zst" \
        --out "$tmp/mm" --max-steps 1 2>&1)
    [ $? -eq 1 ] && grep -q "other.model" <<<"$msg" && grep -q "re-run vet-tokenize" <<<"$msg"
}
check train_tokenizer_mismatch mismatch_ok

# 6b. --train given twice trains on both files as one set: one epoch over train + val has as
# many loss tokens as one epoch over each alone (a dropped file would show as missing tokens).
# Files from another tokenizer are refused, naming both.
log_targets() { /usr/bin/python3 -c 'import json,sys; print(sum(json.loads(l)["loss_tokens"] for l in open(sys.argv[1])))' "$1"; }
several_files_ok() {
    local a b ab
    for set in train val; do
        train --base "$tmp/base" --train "$tmp/$set.msgpack.zst" --out "$tmp/one-$set" --epochs 1 \
            --batch-size 2 --grad-accum 1 --lora-r 4 --lora-alpha 8 || return 1
    done
    train --base "$tmp/base" --train "$tmp/train.msgpack.zst" --train "$tmp/val.msgpack.zst" --out "$tmp/both" \
        --epochs 1 --batch-size 2 --grad-accum 1 --lora-r 4 --lora-alpha 8 || return 1
    a=$(log_targets "$tmp/one-train/train.log.jsonl") b=$(log_targets "$tmp/one-val/train.log.jsonl")
    ab=$(log_targets "$tmp/both/train.log.jsonl")
    echo "loss tokens: train $a + val $b, both $ab" >&2
    [ "$b" -gt 0 ] && [ "$ab" -eq $((a + b)) ] || return 1
    # another tokenizer's packed rows as the second file
    (cd "$tmp" && spm_train --input=text.txt --model_prefix=tok2 --vocab_size=400 --model_type=bpe \
        --byte_fallback=true --split_digits=true --character_coverage=1.0 --unk_id=0 --bos_id=1 --eos_id=2 \
        --pad_id=-1 --num_threads=1 --minloglevel=2 >/dev/null 2>&1) || return 1
    "$VET_BIN/vet-tokenize" --spm "$tmp/tok2.model" "$tmp/notes.csv" -o "$tmp/notes2.tok" || return 1
    "$VET_BIN/vet-pack" "$tmp/notes2.tok" --split 100/0/0 --train "$tmp/other.msgpack.zst" --seq-len 256 \
        2>/dev/null || return 1
    local msg
    msg=$(train --base "$tmp/base" --train "$tmp/train.msgpack.zst" --train "$tmp/other.msgpack.zst" \
        --out "$tmp/mixed" --max-steps 1 2>&1)
    [ $? -eq 1 ] && grep -q "train.msgpack.zst and .*other.msgpack.zst were made with different tokenizers" \
        <<<"$msg" || { echo "$msg" >&2; return 1; }
}
check train_several_files_one_set several_files_ok

# 6c. An empty file among several --train files adds nothing (the pipeline's refit passes the val
# split's species-swapped copies, which may be none); training on no rows at all is refused.
empty_file_ok() {
    "$VET_BIN/vet-tokenize" --spm "$spm" "$tmp/notes.csv" -o "$tmp/notes.tok" || return 1
    "$VET_BIN/vet-pack" "$tmp/notes.tok" --out "$tmp/ep" --val-copies "$tmp/empty.msgpack.zst" --seq-len 256 || return 1
    [ "$("$VET_BIN/vet-dump" -c "$tmp/empty.msgpack.zst")" = 0 ] || return 1
    train --base "$tmp/base" --train "$tmp/train.msgpack.zst" --train "$tmp/empty.msgpack.zst" --out "$tmp/with-empty" \
        --epochs 1 --batch-size 2 --grad-accum 1 --lora-r 4 --lora-alpha 8 || return 1
    [ "$(log_targets "$tmp/with-empty/train.log.jsonl")" -eq "$(log_targets "$tmp/one-train/train.log.jsonl")" ] || return 1
    local msg
    cp "$tmp/empty.msgpack.zst" "$tmp/empty2.msgpack.zst"  # (one file twice is refused as such)
    msg=$(train --base "$tmp/base" --train "$tmp/empty.msgpack.zst" --train "$tmp/empty2.msgpack.zst" --out "$tmp/none" \
        --max-steps 1 2>&1)
    [ $? -eq 1 ] && grep -q "none of the 2 --train files (.*empty.msgpack.zst, ...) has any rows" <<<"$msg" || { echo "$msg" >&2; return 1; }
    msg=$(train --base "$tmp/base" --train "$tmp/empty.msgpack.zst" --out "$tmp/none" --max-steps 1 2>&1)
    [ $? -eq 1 ] && grep -q "empty.msgpack.zst: no rows (is the split empty?)" <<<"$msg" || { echo "$msg" >&2; return 1; }
    msg=$(train --base "$tmp/base" --train "$tmp/train.msgpack.zst" --val "$tmp/empty.msgpack.zst" --out "$tmp/none" \
        --max-steps 1 2>&1)
    [ $? -eq 1 ] && grep -q "empty.msgpack.zst: no rows" <<<"$msg" || { echo "$msg" >&2; return 1; }
}
check train_empty_file_among_several empty_file_ok

# 6c. --token-dropout puts the tokenizer's unk in place of a token: a stream whose header names
# no unk_id (made by the test helper, as one from elsewhere might be) is refused, exit 1.
no_unk_ok() {
    local mk=${VET_BUILD:-$VET_TOP/build/rel}/tests/helpers/vet-mktokens msg
    [ -x "$mk" ] || { echo "no $mk (make helpers)" >&2; return 1; }
    printf '%s\n' '{"id":"a","species":"Cow","codes":["1"],"note":"x","prompt":[1,5,6,7],"response":[8,9,2]}' \
        '{"id":"b","species":"Cow","codes":["1"],"note":"y","prompt":[1,5,7,7],"response":[8,9,2]}' |
        "$mk" --vocab 512 --unk -1 --sha256 "$(sha256sum "$spm" | cut -c1-64)" -o "$tmp/nounk.tok" || return 1
    "$VET_BIN/vet-pack" "$tmp/nounk.tok" --split 100/0/0 --train "$tmp/nounk.msgpack.zst" 2>/dev/null || return 1
    msg=$(train --init "$tmp/micro.json" --tokenizer "$spm" --train "$tmp/nounk.msgpack.zst" --out "$tmp/nounk" \
        --token-dropout 0.1 --max-steps 1 2>&1)
    [ $? -eq 1 ] && grep -q "nounk.msgpack.zst: the header names no unk_id for --token-dropout" <<<"$msg" ||
        { echo "$msg" >&2; return 1; }
    train --init "$tmp/micro.json" --tokenizer "$spm" --train "$tmp/nounk.msgpack.zst" --out "$tmp/nounk" \
        --max-steps 1  # fine without
}
check train_token_dropout_needs_unk no_unk_ok

# 7. Usage errors exit 2 with a message; a truncated training stream exits 1.
usage_ok() {
    train --init tiny --train x --out y --scheduler sideways 2>/dev/null; [ $? -eq 2 ] || return 1
    train --train x --out y 2>/dev/null; [ $? -eq 2 ] || return 1
    train --init tiny --train x --out y --lora-targets q,z 2>/dev/null; [ $? -eq 2 ] || return 1
    head -c 300 "$tmp/train.msgpack.zst" >"$tmp/cut.zst"
    local msg
    msg=$(train --init "$tmp/micro.json" --tokenizer "$spm" --train "$tmp/cut.zst" --out "$tmp/cut" 2>&1)
    [ $? -eq 1 ] && grep -q "truncated" <<<"$msg"
}
check train_usage_and_truncated_input usage_ok

# 8. --help and the man page agree.
help_ok() {
    local flags
    flags=$("$VET_BIN/vet-train" --help | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u)
    [ -n "$flags" ] || return 1
    local man
    man=$(sed 's/\\-/-/g' "$VET_TOP/man/vet-train.1") || return 1
    for f in $flags; do grep -q -- "$f" <<<"$man" || { echo "man page lacks $f" >&2; return 1; }; done
}
check train_help_matches_man help_ok

# 9. A preset too big for this machine is refused with the numbers, before anything is allocated.
memory_ok() {
    local avail_kb msg
    avail_kb=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
    if [ "$avail_kb" -gt 100000000 ]; then echo "machine has >100 GB: check not applicable" >&2; return 0; fi
    msg=$("$VET_BIN/vet-train" --init llama-7b --tokenizer "$spm" --train "$tmp/train.msgpack.zst" --out "$tmp/big" 2>&1)
    [ $? -eq 1 ] && grep -q "needs .* GB of memory, but only .* GB is available" <<<"$msg"
}
check train_refuses_model_too_big_for_memory memory_ok

# Early stopping and resuming: a run resumed from the step before the one that used up the
# patience stops where the uninterrupted run stopped, with the same adapter; a checkpoint whose
# patience is used up (bad_evals == --patience, as older vets saved at that step) ends the run at
# once with the best parameters; --patience and --eval-every are part of the run's settings.
patience_ok() {
    local ref=$tmp/pat-ref res=$tmp/pat-res
    lora_args "$ref" --val "$tmp/val.msgpack.zst" --eval-every 1 --patience 2 --save-every 1 --lr 0.3 --max-steps 40
    local a=("${args[@]}")
    "$VET_BIN/vet-train" "${a[@]}" || return 1
    local stop; stop=$(wc -l <"$ref/train.log.jsonl")
    [ "$stop" -lt 40 ] || { echo "no early stop in 40 steps" >&2; return 1; }
    local ck; ck=$(printf '%s/checkpoints/step-%08d' "$ref" $((stop - 1)))
    [ -d "$ck" ] && [ ! -e "$(printf '%s/checkpoints/step-%08d' "$ref" "$stop")" ] || { echo "checkpoints: $(ls "$ref/checkpoints")" >&2; return 1; }
    # (a) from step stop-1: one more step, the same stop, the same adapter.
    mkdir -p "$res/checkpoints" && cp -r "$ck" "$res/checkpoints/"
    lora_args "$res" --val "$tmp/val.msgpack.zst" --eval-every 1 --patience 2 --save-every 1 --lr 0.3 --max-steps 40
    "$VET_BIN/vet-train" "${args[@]}" --resume "$res" || return 1
    [ "$(wc -l <"$res/train.log.jsonl")" = 1 ] && cmp -s "$ref/adapter_model.safetensors" "$res/adapter_model.safetensors" ||
        { echo "resumed: $(wc -l <"$res/train.log.jsonl") steps taken, want 1" >&2; return 1; }
    # (b) the same checkpoint with the patience used up: no step more, the best parameters (step
    # stop was no better, so the same adapter).
    rm -rf "$res" && mkdir -p "$res/checkpoints" && cp -r "$ck" "$res/checkpoints/"
    sed -i 's/"bad_evals": *[0-9]*/"bad_evals": 2/' "$res/checkpoints/"*/state.json
    "$VET_BIN/vet-train" "${args[@]}" --resume "$res" || return 1
    [ "$(cat "$res/train.log.jsonl" 2>/dev/null | wc -l)" = 0 ] && cmp -s "$ref/adapter_model.safetensors" "$res/adapter_model.safetensors" ||
        { echo "exhausted patience: $(wc -l <"$res/train.log.jsonl") steps taken, want 0" >&2; return 1; }
    # (c) another --patience on resume is another run.
    rm -rf "$res" && mkdir -p "$res/checkpoints" && cp -r "$ck" "$res/checkpoints/"
    lora_args "$res" --val "$tmp/val.msgpack.zst" --eval-every 1 --patience 5 --save-every 1 --lr 0.3 --max-steps 40
    ! "$VET_BIN/vet-train" "${args[@]}" --resume "$res" 2>"$tmp/pat.err" && grep -q "other settings" "$tmp/pat.err"
}
check train_early_stop_resume patience_ok

# --out naming the folder the run starts from, a --train file twice, --val among the --train
# files: usage errors before anything is read or written.
same_files_ok() {
    "$VET_BIN/vet-train" -q --full --base "$tmp/base" --train "$tmp/train.msgpack.zst" --out "$tmp/base" 2>"$tmp/sf.err"; local e1=$?
    "$VET_BIN/vet-train" -q --base "$tmp/base" --train "$tmp/train.msgpack.zst" --train "$tmp/../$(basename "$tmp")/train.msgpack.zst" --out "$tmp/sf" 2>>"$tmp/sf.err"; local e2=$?
    "$VET_BIN/vet-train" -q --base "$tmp/base" --train "$tmp/train.msgpack.zst" --val "$tmp/train.msgpack.zst" --out "$tmp/sf" 2>>"$tmp/sf.err"; local e3=$?
    [ "$e1$e2$e3" = 222 ] && grep -q "is the --base folder this run starts from" "$tmp/sf.err" && grep -q "is given twice" "$tmp/sf.err" &&
        grep -q "is a --train file" "$tmp/sf.err" && [ ! -e "$tmp/sf/adapter_model.safetensors" ]
}
check train_refuses_inputs_as_outputs same_files_ok

# A run without --resume into an --out that holds an earlier run's checkpoints: refused (its
# pruning would keep the old run's and delete its own); --resume continues it, as the message says.
stale_ok() {
    local out=$tmp/stale
    lora "$out" --max-steps 6 || return 1
    [ -d "$out/checkpoints" ] || { echo "no checkpoints to test with" >&2; return 1; }
    lora "$out" --max-steps 6 --lr 2e-3 2>"$tmp/stale.err"; local e=$?
    [ $e = 2 ] && grep -q "holds the checkpoints of an earlier run" "$tmp/stale.err" && grep -q -- "--resume $out" "$tmp/stale.err"
}
check train_refuses_stale_checkpoints stale_ok
