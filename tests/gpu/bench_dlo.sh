#!/usr/bin/env bash
# bench_dlo.sh — the reference recipe over the DLO notes on a 7B-shaped base, timed (issue 20's
# "three epochs over the 1,602 DLO notes on a 7B base: under 2 minutes"). The notes are tokenized
# with TOKENIZER (a SentencePiece model; the random base has none and its vocabulary is larger,
# so the ids fit), every note packed into rows of 512 (no split: all notes), then vet-train with
# its defaults, the recipe's (LoRA r 16 alpha 32 dropout 0.1 on q,k,v,o, batch 4 x accumulation 4,
# lr 2e-4 cosine), for EPOCHS epochs. The figure is vet-train's own elapsed training time (model
# loading excluded; the wall time with loading is reported beside it).
# Ends with `ok bench_dlo` or `not ok bench_dlo: <why>` (exit 1).
#
#   tests/gpu/bench_dlo.sh       (after make -j)
#
# TRAIN_CAP (seconds, 0: none) stops vet-train early: the line then gives the time projected for
# all EPOCHS from the epochs done, and the run is `not ok` (the lease's time cap, not a pass).
# Env: VET_BIN, VET_BUILD, NOTES_CSV (VET_SHARED/data/dlo/dlo_notes.csv, VET_SHARED default
# ../shared), TOKENIZER (default: one trained on the notes with pipelines/vet.mk, vocabulary
# 1,024), EPOCHS (3), CKPT (1: --grad-checkpoint, as the recipe), PRESET (llama-7b), DEVICE
# (cuda), LABEL (dlo), KEEP; bench_lib.sh's VET_HELPERS, VET_NO_BUILD, BASE, VOCAB, RESULTS, FIGURES.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/bench_lib.sh"
: "${NOTES_CSV:=${VET_SHARED:-$top/../shared}/data/dlo/dlo_notes.csv}" "${TOKENIZER:=}"
: "${EPOCHS:=3}" "${TRAIN_CAP:=0}" "${CKPT:=1}" "${PRESET:=llama-7b}" "${DEVICE:=cuda}" "${LABEL:=dlo}" "${KEEP:=0}"
say() { echo "bench_dlo: $*" >&2; }

[ -x "$VET_BIN/vet-train" ] || { echo "not ok bench_dlo: $VET_BIN/vet-train not built (make)"; exit 1; }
[ -f "$NOTES_CSV" ] || { echo "not ok bench_dlo: no notes at $NOTES_CSV (VET_SHARED or NOTES_CSV)"; exit 1; }
need_helpers bench_dlo
pick_python
bench_workdir benchdlo

make_random_base bench_dlo
if [ -z "$TOKENIZER" ]; then
    make --no-print-directory -s -f "$top/pipelines/vet.mk" VET_BIN="$VET_BIN" OUT="$work/tok" NOTES="$NOTES_CSV" \
        VOCAB=1024 tokenizer >"$work/tok.log" 2>&1 || { echo "not ok bench_dlo: training a tokenizer failed"; exit 1; }
    TOKENIZER=$work/tok/tokenizer.model
fi
"$VET_BIN/vet-tokenize" --spm "$TOKENIZER" "$NOTES_CSV" -o "$work/notes.tok" 2>"$work/prep.log" &&
    "$VET_BIN/vet-pack" --split 100/0/0 --group-by none --seq-len 512 --train "$work/train.zst" \
        "$work/notes.tok" 2>>"$work/prep.log" ||
    { tail -n 3 "$work/prep.log" >&2; echo "not ok bench_dlo: tokenizing or packing the notes failed"; exit 1; }

say "vet-train --device $DEVICE: $EPOCHS epochs over the notes of $NOTES_CSV"
t0=$SECONDS
timeout "$TRAIN_CAP" "$VET_BIN/vet-train" --device "$DEVICE" --base "$work/base" --train "$work/train.zst" --out "$work/model" \
    --epochs "$EPOCHS" $([ "$CKPT" = 1 ] && echo --grad-checkpoint) -q 2>"$work/train.log"
status=$?
wall=$((SECONDS - t0))
capped=0
if [ $status -eq 124 ] && [ -s "$work/model/train.log.jsonl" ]; then
    capped=1
elif [ $status -ne 0 ]; then
    tail -n 5 "$work/train.log" >&2
    echo "not ok bench_dlo: vet-train exit $status"
    exit 1
fi
notes=$("$VET_BIN/vet-dump" -c "$work/notes.tok") || notes=0
line=$(python3 - "$work" "$EPOCHS" "$wall" "$LABEL" "$DEVICE" "$PRESET" "$CKPT" "$notes" "$capped" <<'PY'
import json, sys
work, epochs, wall, label, device, preset, ckpt, notes, capped = sys.argv[1:]
epochs, capped = int(epochs), capped == "1"
log = [json.loads(l) for l in open(work + "/model/train.log.jsonl") if l.strip() and l.startswith('{"step"')]
toks = sum(r["tokens_per_s"] * (r["elapsed_s"] - (log[i - 1]["elapsed_s"] if i else 0.0)) for i, r in enumerate(log))
s, done = log[-1]["elapsed_s"], log[-1].get("epoch", epochs)
proj = s * epochs / done if capped and done > 0 else s
what = (f"stopped by TRAIN_CAP at epoch {done:.2f} of {epochs} after {s:.1f} s: {proj:.0f} s projected for all"
        if capped else f"{s:.1f} s of training, {wall} s with loading")
print(f"{preset}, {int(notes):,} DLO notes, {epochs} epochs, {log[-1]['step']} optimizer steps, {toks:,.0f} tokens: "
      f"{what}; loss {log[-1]['loss']:.4f}"
      + (f" (target < 120 s: {'met' if proj < 120 else 'NOT met'})" if device == "cuda" else ""))
json.dump({"part": label, "kind": "dlo", "device": device, "preset": preset, "epochs": epochs,
           "grad_checkpoint": ckpt == "1", "notes": int(notes), "steps": log[-1]["step"], "tokens": round(toks),
           "train_s": s, "capped": capped, "epochs_done": done, "projected_train_s": proj,
           "wall_s": int(wall), "final_loss": log[-1]["loss"]}, open(work + "/figures.json", "w"))
PY
) || { echo "not ok bench_dlo: no training log"; exit 1; }
echo "$line"
record_results "Three epochs over the DLO notes (bench_dlo.sh)" "$line"
record_figures "$work/figures.json"
say "done in $((SECONDS - t_all)) s"
[ $capped = 1 ] && { echo "not ok bench_dlo: stopped at TRAIN_CAP=$TRAIN_CAP s before $EPOCHS epochs (projection above)"; exit 1; }
echo "ok bench_dlo"
