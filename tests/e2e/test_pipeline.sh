#!/usr/bin/env bash
# test_pipeline.sh — pipelines/vet.mk end to end: the demo pipeline on a reduced budget, stage
# dependencies (rerunning a stage rebuilds only what depends on it), and pipelines/seeds.sh.
# (The DLO notes with a regression floor on accuracy: test_pipeline_dlo.sh, a file of its own so
# that the suite runs the two beside each other.)
set -u
# Nested makes must not inherit a parent `make -jN test`'s jobserver (its warning lands in
# the output the checks below read).
unset MAKEFLAGS MFLAGS MAKELEVEL
: "${VET_BIN:?}" "${VET_TOP:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-pipeline.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }
# Each check's time as a comment line (tests/run counts only ok / not ok / skip lines): this is
# the suite's longest test, and the figures say where its minutes go.
check() {
    local name=$1 t0=$SECONDS; shift
    if "$@"; then ok "$name"; else fail "$name"; fi
    echo "# $name: $((SECONDS - t0)) s"
}
pipe() { make --no-print-directory -s -f "$VET_TOP/pipelines/vet.mk" VET_BIN="$VET_BIN" "$@"; }
json() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

# The sanitized build (several times slower) codes half the notes after one epoch instead of
# four: what that pass checks is memory and undefined behaviour along every stage and code path
# below; the accuracy above the baseline is the plain pass's check (the default run's four
# trainings, model and three refits, and their rankings were most of that pass's longest test).
n_notes=600 epochs=4
[ "${VET_SANITIZE:-0}" = 1 ] && n_notes=300 epochs=1
"$VET_BIN/vet-synth" -d "$VET_TOP/data/diseases.tsv" -n $n_notes --seed 5 -o "$tmp/notes.csv" || exit 1
small=(OUT="$tmp/out" NOTES="$tmp/notes.csv" CODES="$VET_TOP/data/codes.tsv" VOCAB=512
       TRAIN_ARGS="--epochs $epochs --lr 3e-3 --batch-size 4 --grad-accum 1 -q" GEN_ARGS="--batch 16 -q"
       EVAL_ARGS="--bootstrap 100")

# 1. The whole pipeline: every intermediate file and metrics.json, better than the baseline.
whole_ok() {
    pipe "${small[@]}" >"$tmp/log" 2>&1 || { tail -20 "$tmp/log" >&2; return 1; }
    for f in tokenizer.model notes.tok.msgpack.zst packed/train.msgpack.zst packed/val.msgpack.zst \
             packed/test.msgpack.zst rows/test.msgpack.zst refit/model.safetensors predictions.msgpack.zst \
             metrics.json metrics.txt; do
        [ -s "$tmp/out/$f" ] || { echo "missing $f" >&2; return 1; }
    done
    local acc base
    acc=$(json "$tmp/out/metrics.json" '["accuracy"]')
    base=$(json "$tmp/out/metrics.json" '["baseline"]["accuracy"]')
    echo "reduced demo ($epochs epochs): accuracy $acc, baseline $base" >&2
    if [ "$epochs" = 1 ]; then  # sanitized: scores that are scores
        /usr/bin/python3 -c "import sys; sys.exit(0 if 0 <= float('$acc') <= 1 and 0 < float('$base') <= 1 else 1)"
    else
        /usr/bin/python3 -c "import sys; sys.exit(0 if float('$acc') > float('$base') + 0.1 else 1)"
    fi
}
check pipeline_whole_job whole_ok

# Pictures: the loss curves and the per-label F1 bars (gnuplot), as real PNG files.
report_ok() {
    pipe "${small[@]}" report >/dev/null 2>&1 || return 1
    for f in loss.png f1.png; do
        [ "$(head -c 8 "$tmp/out/$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || { echo "$f is no PNG" >&2; return 1; }
    done
}
check pipeline_report_pictures report_ok

# 2. Up to date after a run; a stage's input or arguments rerun it and what follows, nothing before.
stages() { make --no-print-directory -f "$VET_TOP/pipelines/vet.mk" VET_BIN="$VET_BIN" "$@" -n 2>/dev/null | grep -oE 'vet-(tokenize|pack|train|generate|eval)|spm_train' | sort -u | tr '\n' ' '; }
deps_ok() {
    pipe "${small[@]}" -q || { echo "not up to date after a run" >&2; return 1; }
    local s
    s=$(stages "${small[@]}" GEN_ARGS="--batch 4 -q")
    [ "$s" = "vet-eval vet-generate " ] || { echo "GEN_ARGS change reran: $s" >&2; return 1; }
    s=$(stages "${small[@]}" TRAIN_ARGS="--epochs 3 -q")
    [ "$s" = "vet-eval vet-generate vet-train " ] || { echo "TRAIN_ARGS change reran: $s" >&2; return 1; }
    # Put the arguments back as they were: nothing to do again.
    pipe "${small[@]}" -q || { echo "not up to date with the original arguments" >&2; return 1; }
    touch "$tmp/out/notes.tok.msgpack.zst"
    s=$(stages "${small[@]}")
    [ "$s" = "vet-eval vet-generate vet-pack vet-train " ] || { echo "touching tokens reran: $s" >&2; return 1; }
    # One stage by name runs that stage (and what it needs) only.
    mkdir -p "$tmp/before" && cp "$tmp"/out/packed/*.msgpack.zst "$tmp/before/" &&
        cp "$tmp/out/rows/test.msgpack.zst" "$tmp/before/rows-test.msgpack.zst" || return 1
    pipe "${small[@]}" pack >/dev/null 2>&1 || return 1
    s=$(stages "${small[@]}")
    [ "$s" = "vet-eval vet-generate vet-train " ] || { echo "after 'pack': $s" >&2; return 1; }
    # pack is deterministic: it wrote the same bytes again, so the models trained on them and
    # what they made stand (the runs are deterministic too). Marked current in the pipeline's
    # order, instead of four trainings again in the next check.
    local f g
    for f in "$tmp"/before/*.msgpack.zst; do
        case ${f##*/} in rows-*) g=$tmp/out/rows/${f##*/rows-} ;; *) g=$tmp/out/packed/${f##*/} ;; esac
        cmp -s "$f" "$g" || { echo "pack wrote other bytes for $g the second time" >&2; return 1; }
    done
    touch "$tmp"/out/*.done && touch "$tmp/out/predictions.msgpack.zst" && touch "$tmp/out/metrics.json" &&
        touch "$tmp/out/loss.png" "$tmp/out/f1.png" || return 1
    pipe "${small[@]}" -q || { echo "not up to date after marking" >&2; return 1; }
}
check pipeline_stage_dependencies deps_ok

# 2b. FIT: from scratch the test split is coded by OUT/refit, trained on train + val with the
# same arguments (vet-train --train twice, no --val); OUT/model (train only) serves `val` and the
# loss curves. FIT=train codes the test split with OUT/model: only generate and eval rerun.
fit_ok() {
    local s
    pipe "${small[@]}" >/dev/null 2>&1 || return 1  # up to date again after the stage checks above
    grep -q -- "--train $tmp/out/packed/train.msgpack.zst --train $tmp/out/packed/val.msgpack.zst --out $tmp/out/refit" \
        <(make --no-print-directory -n -f "$VET_TOP/pipelines/vet.mk" "${small[@]}" OUT="$tmp/out" VET_BIN="$VET_BIN" \
          -B refit 2>&1 | tr -d '\\\n' | tr -s ' ') || { echo "refit does not train on both splits" >&2; return 1; }
    [ -s "$tmp/out/refit/model.safetensors" ] || { echo "the default run made no OUT/refit" >&2; return 1; }
    grep -q -- "--model $tmp/out/refit " "$tmp/out/.args/generate" || { echo "test not coded by OUT/refit" >&2; return 1; }
    pipe "${small[@]}" val >/dev/null 2>&1 || return 1
    [ -s "$tmp/out/val-metrics.json" ] && [ -s "$tmp/out/model/model.safetensors" ] || return 1
    cmp -s "$tmp/out/model/model.safetensors" "$tmp/out/refit/model.safetensors" && { echo "same model" >&2; return 1; }
    grep -q val_loss "$tmp/out/model/train.log.jsonl" || { echo "OUT/model has no validation loss" >&2; return 1; }
    s=$(stages "${small[@]}" FIT=train)
    [ "$s" = "vet-eval vet-generate " ] || { echo "FIT=train reran: $s" >&2; return 1; }
    pipe "${small[@]}" OUT="$tmp/out" FIT=both >/dev/null 2>&1 && return 1
    pipe "${small[@]}" -q  # still up to date
}
check pipeline_fit_train_val fit_ok

# 2c. SWAP: from scratch the tokenize stage writes a species-swapped copy after every note of a
# paired species; vet-pack trains on the train split's copies and keeps val and test real.
# SWAP= turns it off (tokenize and everything after rerun); with BASE it is off by default.
swap_ok() {
    local s n
    grep -q -- "--species-swap Cow=Buffalo,Sheep=Goat" "$tmp/out/.args/tokenize" || { echo "no --species-swap by default" >&2; return 1; }
    n=$("$VET_BIN/vet-dump" -c "$tmp/out/notes.tok.msgpack.zst")
    [ "$n" = $((2 * n_notes)) ] || { echo "notes.tok holds $n records, not $n_notes notes + $n_notes copies" >&2; return 1; }
    json "$tmp/out/packed/summary.json" '["copies_in"]' | grep -qx $n_notes || return 1
    /usr/bin/python3 - "$tmp/out/packed/summary.json" $n_notes <<'PY' || return 1
import json, sys
s, n = json.load(open(sys.argv[1])), int(sys.argv[2])
held = s["splits"]["val"]["samples"] + s["splits"]["test"]["samples"]
assert s["copies_dropped"] == held and s["splits"]["train"]["samples"] == 2 * (n - held), s
PY
    "$VET_BIN/vet-dump" -r "$tmp/out/rows/test.msgpack.zst" | grep -q '~' && { echo "a copy in the test rows" >&2; return 1; }
    "$VET_BIN/vet-dump" -r "$tmp/out/packed/train.msgpack.zst" | grep -q '~Buffalo' || { echo "no copies in train" >&2; return 1; }
    s=$(stages "${small[@]}" SWAP=)
    [ "$s" = "vet-eval vet-generate vet-pack vet-tokenize vet-train " ] || { echo "SWAP= reran: $s" >&2; return 1; }
    # (a dry run: a real one would record BASE's arguments in OUT/.args)
    s=$(make --no-print-directory -n -f "$VET_TOP/pipelines/vet.mk" "${small[@]}" BASE="$tmp/nobase" \
        --eval 'print-swap: ; @echo "[$(SWAP_FLAG)]"' print-swap 2>&1)
    [ "$s" = 'echo "[]"' ] || { echo "with BASE: SWAP_FLAG=$s" >&2; return 1; }
    pipe "${small[@]}" -q  # still up to date
}
check pipeline_species_swap swap_ok

# 2d. CONSTRAIN: from scratch, generation writes only labels of CODES (vet-generate --constrain);
# CONSTRAIN= decodes freely (only generate and eval rerun); with BASE it is off by default.
constrain_ok() {
    local s
    grep -q -- "--constrain $VET_TOP/data/codes.tsv" "$tmp/out/.args/generate" || { echo "no --constrain by default" >&2; return 1; }
    /usr/bin/python3 - "$tmp/out/predictions.msgpack.zst" "$VET_TOP/data/codes.tsv" "$VET_BIN/vet-dump" <<'PY' || return 1
import json, subprocess, sys
codes = {l.split("\t")[0] for l in open(sys.argv[2]) if l.strip() and not l.startswith("code\t")}
out = subprocess.run([sys.argv[3], "-r", sys.argv[1]], capture_output=True, text=True, check=True).stdout
preds = [json.loads(l)["pred"] for l in out.splitlines()]
bad = [p for p in preds if not p or any(c not in codes for c in p)]
assert preds and not bad, bad[:5]
PY
    s=$(stages "${small[@]}" CONSTRAIN=)
    [ "$s" = "vet-eval vet-generate " ] || { echo "CONSTRAIN= reran: $s" >&2; return 1; }
    s=$(make --no-print-directory -n -f "$VET_TOP/pipelines/vet.mk" "${small[@]}" BASE="$tmp/nobase" \
        --eval 'print-gen: ; @echo "[$(GEN_CODES_FLAG)]"' print-gen 2>&1)
    [ "$s" = "echo \"[--codes $VET_TOP/data/codes.tsv]\"" ] || { echo "with BASE: $s" >&2; return 1; }
}
check pipeline_constrain_codes constrain_ok

# 2d'. RANK: every code of the table scored (vet-generate --rank), only generate and eval rerun,
# and metrics.json holds the ranking; RANK without a table is refused before anything runs.
rank_ok() {
    local s
    s=$(stages "${small[@]}" RANK=3)
    [ "$s" = "vet-eval vet-generate " ] || { echo "RANK=3 would rerun: $s" >&2; return 1; }
    pipe "${small[@]}" RANK=3 >"$tmp/rank.log" 2>&1 || { tail -5 "$tmp/rank.log" >&2; return 1; }
    grep -q -- "--constrain $VET_TOP/data/codes.tsv --rank 3" "$tmp/out/.args/generate" || return 1
    s=$(json "$tmp/out/metrics.json" '["ranking"]["hit_at"]["3"] >= json.load(open(sys.argv[1]))["accuracy"]')
    [ "$s" = True ] || { echo "metrics.json: no ranking, or hit@3 below the accuracy" >&2; return 1; }
    pipe "${small[@]}" RANK=3 CONSTRAIN= >"$tmp/rank.log" 2>&1 && return 1
    grep -q "RANK=3 scores the labels of a table" "$tmp/rank.log" || { cat "$tmp/rank.log" >&2; return 1; }
    pipe "${small[@]}" >"$tmp/rank.log" 2>&1  # back to generating, for the checks below
}
check pipeline_rank rank_ok

# 2d''. CALIBRATE=1: the validation split ranked whole by OUT/model, the fitted temperature in
# OUT/temperature.txt, and the test split ranked with it (the header says so); refused without
# RANK, and for a value other than 1. REFER=ACC on top of it.
calibrate_ok() {  # the checks, then the pipeline back to generating whatever they said
    local rc
    calibrate_checks
    rc=$?
    pipe "${small[@]}" >"$tmp/cal.log" 2>&1
    return $rc
}
calibrate_checks() {
    local s t
    pipe "${small[@]}" RANK=3 CALIBRATE=1 >"$tmp/cal.log" 2>&1 || { tail -5 "$tmp/cal.log" >&2; return 1; }
    t=$(cat "$tmp/out/temperature.txt") || return 1
    s=$("$VET_BIN/vet-dump" -H "$tmp/out/val-ranked.msgpack.zst" | /usr/bin/python3 -c '
import json, sys; h = json.load(sys.stdin)["rank"]; print(h["k"] == h["labels"] and h["temperature"] == 1)')
    [ "$s" = True ] || { echo "val-ranked.msgpack.zst: not every label ranked" >&2; return 1; }
    s=$("$VET_BIN/vet-dump" -H "$tmp/out/predictions.msgpack.zst" | /usr/bin/python3 -c '
import json, sys; h = json.load(sys.stdin)["rank"]; print(h["k"] == 3 and abs(h["temperature"] - float(sys.argv[1])) < 1e-12)' "$t")
    [ "$s" = True ] || { echo "predictions not ranked at T = $t" >&2; return 1; }
    grep -q "ranking" "$tmp/out/metrics.txt" || return 1
    pipe "${small[@]}" RANK=3 CALIBRATE=1 -q || { echo "not up to date after a run" >&2; return 1; }
    # REFER=ACC: the threshold fitted on the same validation ranking at that temperature, and
    # the test notes below it referred in metrics.json; refused without RANK and out of (0, 1].
    pipe "${small[@]}" RANK=3 CALIBRATE=1 REFER=0.5 >"$tmp/cal.log" 2>&1 || { tail -5 "$tmp/cal.log" >&2; return 1; }
    # (the JSON holds 15 significant digits, the threshold file all 17)
    s=$(/usr/bin/python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["ranking"]["referral"]["threshold"]
print(abs(t - float(open(sys.argv[2]).read())) <= 1e-12)' "$tmp/out/metrics.json" "$tmp/out/threshold.txt")
    [ "$s" = True ] || { echo "metrics.json: no referral at OUT/threshold.txt's threshold" >&2; return 1; }
    grep -q -- "--refer-below" "$tmp/out/.args/eval" || return 1
    s=$(stages "${small[@]}" RANK=3 CALIBRATE=1 REFER=0.6)
    [ "$s" = "vet-eval " ] || { echo "REFER=0.6 would rerun: $s" >&2; return 1; }
    pipe "${small[@]}" REFER=0.9 >"$tmp/cal.log" 2>&1 && return 1
    grep -q "REFER=0.9 refers the notes a ranking is least sure of" "$tmp/cal.log" || { cat "$tmp/cal.log" >&2; return 1; }
    pipe "${small[@]}" RANK=3 REFER=1.5 >"$tmp/cal.log" 2>&1 && return 1
    grep -q "REFER must be an accuracy above 0 and at most 1" "$tmp/cal.log" || { cat "$tmp/cal.log" >&2; return 1; }
    pipe "${small[@]}" CALIBRATE=1 >"$tmp/cal.log" 2>&1 && return 1
    grep -q "CALIBRATE=1 calibrates the probabilities of a ranking" "$tmp/cal.log" || { cat "$tmp/cal.log" >&2; return 1; }
    pipe "${small[@]}" RANK=3 CALIBRATE=yes >"$tmp/cal.log" 2>&1 && return 1
    grep -q "CALIBRATE must be 1 or empty" "$tmp/cal.log" || { cat "$tmp/cal.log" >&2; return 1; }
}
check pipeline_calibrate calibrate_ok

# 2e. ENSEMBLE: from scratch the test split is decoded by three refits as one (vet-generate
# --model three times), trained with seeds 42 (vet-train's default), 142 and 242; ENSEMBLE=K
# changes only generate and eval, plus the training of members that do not exist yet.
ensemble_ok() {
    local s m
    for m in refit refit-2 refit-3; do
        [ -s "$tmp/out/$m/model.safetensors" ] || { echo "no $m" >&2; return 1; }
    done
    cmp -s "$tmp/out/refit/model.safetensors" "$tmp/out/refit-2/model.safetensors" && { echo "refit-2 = refit" >&2; return 1; }
    grep -q -- "--seed" "$tmp/out/.args/refit" && { echo "refit got a --seed" >&2; return 1; }
    grep -q -- "--seed 142$" "$tmp/out/.args/refit-2" && grep -q -- "--seed 242$" "$tmp/out/.args/refit-3" ||
        { echo "member seeds: $(cat "$tmp/out/.args/refit-2" "$tmp/out/.args/refit-3")" >&2; return 1; }
    grep -q -- "--model $tmp/out/refit --model $tmp/out/refit-2 --model $tmp/out/refit-3 " "$tmp/out/.args/generate" ||
        { echo "generate: $(cat "$tmp/out/.args/generate")" >&2; return 1; }
    "$VET_BIN/vet-dump" -H "$tmp/out/predictions.msgpack.zst" |
        grep -q "\"ensemble\":\[\"$tmp/out/refit\",\"$tmp/out/refit-2\",\"$tmp/out/refit-3\"\]" ||
        { echo "no ensemble in the predictions header" >&2; return 1; }
    s=$(stages "${small[@]}" ENSEMBLE=1)
    [ "$s" = "vet-eval vet-generate " ] || { echo "ENSEMBLE=1 reran: $s" >&2; return 1; }
    s=$(make --no-print-directory -n -f "$VET_TOP/pipelines/vet.mk" "${small[@]}" VET_BIN="$VET_BIN" ENSEMBLE=4 2>&1 | tr -d '\\\n' | tr -s ' ')
    [ "$(grep -o 'vet-train ' <<<"$s" | wc -l)" = 1 ] && grep -q -- "--out $tmp/out/refit-4 .*--seed 342" <<<"$s" &&
        grep -q -- "--model $tmp/out/refit-3 --model $tmp/out/refit-4 " <<<"$s" || { echo "ENSEMBLE=4: $s" >&2; return 1; }
    s=$(make --no-print-directory -n -f "$VET_TOP/pipelines/vet.mk" "${small[@]}" VET_BIN="$VET_BIN" TRAIN_SEED=7 2>&1 | grep -o -- '--seed [0-9]*' | sort | tr '\n' ' ')
    [ "$s" = "--seed 107 --seed 207 --seed 7 " ] || { echo "TRAIN_SEED=7 seeds: $s" >&2; return 1; }
    for bad in "ENSEMBLE=0" "ENSEMBLE=two" "ENSEMBLE=2 FIT=train" "ENSEMBLE=2 BASE=$tmp/nobase"; do
        # shellcheck disable=SC2086
        pipe "${small[@]}" $bad >"$tmp/ens.err" 2>&1 && { echo "$bad accepted" >&2; return 1; }
        grep -q "ENSEMBLE" "$tmp/ens.err" || { echo "$bad: $(cat "$tmp/ens.err")" >&2; return 1; }
    done
    pipe "${small[@]}" -q  # still up to date
}
check pipeline_ensemble ensemble_ok

# 2f. code: new notes without codes (data/new-notes.csv) coded by the model(s) that coded the test
# split, with only tokenize and generate run for them; the table has one row per note, each a
# code of the table with its term; CODED names another file; without NEW the stage is refused.
code_ok() {
    local s n="$VET_TOP/data/new-notes.csv"
    s=$(stages "${small[@]}" code NEW="$n")
    [ "$s" = "vet-generate vet-tokenize " ] || { echo "code would run: $s" >&2; return 1; }
    pipe "${small[@]}" code NEW="$n" >"$tmp/code.log" 2>&1 || { tail -5 "$tmp/code.log" >&2; return 1; }
    /usr/bin/python3 - "$tmp/out/coded.csv" "$n" "$VET_TOP/data/codes.tsv" <<'EOF' || return 1
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
notes = list(csv.DictReader(open(sys.argv[2], newline="")))
terms = dict(l.rstrip("\n").split("\t") for l in open(sys.argv[3]) if not l.startswith("code\t"))
assert [r["id"] for r in rows] == [n["id"] for n in notes], rows
for r in rows:
    assert r["gold"] == "" and r["pred"] in terms and r["term"] == terms[r["pred"]], r
EOF
    pipe "${small[@]}" code NEW="$n" -q || { echo "code: not up to date after a run" >&2; return 1; }
    pipe "${small[@]}" -q || { echo "code changed the pipeline's own stages" >&2; return 1; }
    pipe "${small[@]}" code NEW="$n" CODED="$tmp/elsewhere.csv" >"$tmp/code.log" 2>&1 || return 1
    cmp -s "$tmp/elsewhere.csv" "$tmp/out/coded.csv" || { echo "CODED= wrote another table" >&2; return 1; }
    pipe "${small[@]}" code >"$tmp/code.log" 2>&1 && return 1
    grep -q "the code stage codes new notes: set NEW=notes.csv" "$tmp/code.log" || { cat "$tmp/code.log" >&2; return 1; }
}
check pipeline_code_new_notes code_ok

# 2g. --fail-under in EVAL_ARGS failing the eval stage: metrics.json and metrics.txt hold the
# scores that failed, and the stage is not taken as done (the next make evaluates again).
fail_under_ok() {
    local rc
    pipe "${small[@]}" EVAL_ARGS="--bootstrap 100 --fail-under 0.999" >"$tmp/fu.log" 2>&1; rc=$?
    [ $rc -ne 0 ] && grep -q "is below --fail-under 0.999" "$tmp/fu.log" || { echo "rc=$rc: $(tail -3 "$tmp/fu.log")" >&2; return 1; }
    [ "$(json "$tmp/out/metrics.json" '["accuracy"] < 0.999')" = True ] && grep -q "^accuracy" "$tmp/out/metrics.txt" ||
        { echo "no metrics.json or metrics.txt after a failed --fail-under" >&2; return 1; }
    pipe "${small[@]}" EVAL_ARGS="--bootstrap 100 --fail-under 0.999" -q && { echo "the failed eval is taken as done" >&2; return 1; }
    pipe "${small[@]}" >"$tmp/fu.log" 2>&1 && pipe "${small[@]}" -q  # back to the run's own arguments
}
check pipeline_fail_under_keeps_metrics fail_under_ok

# 2h. A stage's arguments are recorded by the make that runs it: a make for `pack` with other
# TRAIN_ARGS (nothing to do) records nothing for train.
args_by_stage_ok() {
    pipe "${small[@]}" TRAIN_ARGS="--epochs 3 -q" pack >/dev/null 2>&1 || return 1
    pipe "${small[@]}" -q || { echo "a make for pack recorded the train arguments" >&2; return 1; }
}
check pipeline_args_recorded_by_stage args_by_stage_ok

# 2i. The code table is an input of generate and eval (editing it reruns them, nothing before).
table_input_ok() {
    local s
    s=$(stages "${small[@]}" -W "$VET_TOP/data/codes.tsv")
    [ "$s" = "vet-eval vet-generate " ] || { echo "a newer CODES table would rerun: $s" >&2; return 1; }
}
check pipeline_code_table_input table_input_ok

# 2j. Settings that cannot work are refused before anything is written, saying what is wrong
# (exit 2, nothing in OUT or the current directory).
refused() {  # refused MESSAGE MAKE-ARGS...
    local want=$1 rc; shift
    rm -rf "$tmp/cwd" && mkdir -p "$tmp/cwd" || return 1
    (cd "$tmp/cwd" && pipe "$@" </dev/null) >"$tmp/ref.log" 2>&1; rc=$?
    [ $rc = 2 ] && grep -qF -- "$want" "$tmp/ref.log" && [ ! -e "$tmp/refused" ] && [ ! -e "$tmp/with" ] &&
        [ -z "$(ls -A "$tmp/cwd")" ] || { echo "$*: rc=$rc: $(cat "$tmp/ref.log")" >&2; return 1; }
}
# A given split without VAL or TEST (no vet-tokenize left reading stdin for the missing one).
given_split_ok() {
    refused "TRAIN= is a given split: set VAL=b.csv and TEST=c.csv too" OUT="$tmp/refused" TRAIN="$tmp/notes.csv" &&
        refused "set TEST=c.csv too" OUT="$tmp/refused" TRAIN="$tmp/notes.csv" VAL="$tmp/notes.csv" &&
        refused "set NOTES or TRAIN/VAL/TEST, not both" OUT="$tmp/refused" NOTES="$tmp/notes.csv" TEST="$tmp/notes.csv"
}
check pipeline_given_split_refused given_split_ok
# A blank or a quote in a path (make would split the name, the shell read the quote).
paths_ok() {
    refused "OUT='$tmp/with space' has a blank in it" OUT="$tmp/with space" NOTES="$tmp/notes.csv" &&
        refused "OUT='$tmp/it's' has ' in it" OUT="$tmp/it's" NOTES="$tmp/notes.csv" &&
        refused "NOTES='$tmp/a b.csv' has a blank in it" OUT="$tmp/refused" NOTES="$tmp/a b.csv"
}
check pipeline_odd_paths_refused paths_ok
# VOCAB: no number is refused; a number spm_train refuses fails the stage with spm_train's reason.
vocab_ok() {
    refused "VOCAB must be a whole number of pieces such as 1024 (got 'abc')" OUT="$tmp/refused" NOTES="$tmp/notes.csv" VOCAB=abc &&
        refused "VOCAB must be a whole number" OUT="$tmp/refused" NOTES="$tmp/notes.csv" VOCAB=0 || return 1
    pipe OUT="$tmp/vocab" NOTES="$tmp/notes.csv" VOCAB=100000 tokenizer >"$tmp/ref.log" 2>&1 && return 1
    grep -q "spm_train failed" "$tmp/ref.log" && grep -q "Vocabulary size too high (100000)" "$tmp/ref.log" &&
        [ ! -e "$tmp/vocab/tokenizer.model" ] || { cat "$tmp/ref.log" >&2; return 1; }
}
check pipeline_vocab vocab_ok

# 2k. The small stages on an OUT of their own (the run's tokenizer, a micro model), each in seconds.
ta="--instruction \"Code the patient's note.\""
fast=(OUT="$tmp/q" NOTES="$tmp/notes.csv" SPM="$tmp/out/tokenizer.model" CODES="$VET_TOP/data/codes.tsv" ENSEMBLE=1 FIT=train SWAP=)
# The arguments are compared byte for byte: a change in blanks inside quotes, or a value holding
# an apostrophe, reruns the stage; the same value again does not.
args_exact_ok() {
    local q="$tmp/q"
    pipe "${fast[@]}" TOKENIZE_ARGS="--instruction 'Code  the note.'" tokenize >/dev/null 2>&1 || return 1
    pipe "${fast[@]}" TOKENIZE_ARGS="--instruction 'Code  the note.'" -q tokenize || { echo "not up to date after tokenize" >&2; return 1; }
    pipe "${fast[@]}" TOKENIZE_ARGS="--instruction 'Code the note.'" -q tokenize && { echo "a change in blanks not seen" >&2; return 1; }
    pipe "${fast[@]}" TOKENIZE_ARGS="$ta" tokenize >"$tmp/q.log" 2>&1 || { cat "$tmp/q.log" >&2; return 1; }
    [ "$(cat "$q/.args/tokenize")" = "$tmp/out/tokenizer.model $ta " ] || { echo "recorded: $(cat "$q/.args/tokenize")" >&2; return 1; }
    pipe "${fast[@]}" TOKENIZE_ARGS="$ta" -q tokenize || { echo "an apostrophe: not up to date after tokenize" >&2; return 1; }
}
check pipeline_args_compared_exactly args_exact_ok
fast+=(TOKENIZE_ARGS="$ta")

# One make at a time on an OUT: a second one is refused while the first runs (here: holds the
# lock until told to let go), and the next one after it takes OUT/.lock over.
one_make_ok() {
    local q="$tmp/q" m i rc
    make --no-print-directory -s -f "$VET_TOP/pipelines/vet.mk" VET_BIN="$VET_BIN" "${fast[@]}" \
        --eval "hold: ; @i=0; while [ ! -e $tmp/release ] && [ \$\$i -lt 300 ]; do sleep 0.1; i=\$\$((i + 1)); done" hold & m=$!
    for i in $(seq 100); do [ "$(cut -d' ' -f1 "$q/.lock" 2>/dev/null)" = "$m" ] && break; sleep 0.1; done
    pipe "${fast[@]}" tokenize >"$tmp/q.log" 2>&1; rc=$?
    touch "$tmp/release"; wait $m
    [ $rc = 2 ] && grep -q "another make (process $m) is running on OUT=$q" "$tmp/q.log" || { echo "second make: rc=$rc: $(cat "$tmp/q.log")" >&2; return 1; }
    pipe "${fast[@]}" pack >"$tmp/q.log" 2>&1 || { echo "after the first make: $(cat "$tmp/q.log")" >&2; return 1; }
}
check pipeline_one_make_per_out one_make_ok

# The pack stage killed (-9, make and all) between its two vet-pack runs is not taken as done,
# and the next run writes packed/ and rows/ of one split; a pack output that is gone is made again.
pack_atomic_ok() {
    local q="$tmp/q" i
    mkdir -p "$tmp/shim" && for i in "$VET_BIN"/vet-*; do ln -sf "$i" "$tmp/shim/"; done && rm -f "$tmp/shim/vet-pack" &&
        printf '#!/bin/sh\ncase " $* " in *" --no-pack "*) [ -e %s ] && kill -9 0 ;; esac\nexec %s "$@"\n' \
            "$tmp/kill-pack" "$VET_BIN/vet-pack" >"$tmp/shim/vet-pack" && chmod +x "$tmp/shim/vet-pack" && touch "$tmp/kill-pack" || return 1
    (setsid -w make --no-print-directory -s -f "$VET_TOP/pipelines/vet.mk" "${fast[@]}" VET_BIN="$tmp/shim" SEED=2 pack >/dev/null 2>&1; :) 2>/dev/null
    rm -f "$tmp/kill-pack"
    pipe "${fast[@]}" SEED=2 -q pack && { echo "a pack killed half way is taken as done" >&2; return 1; }
    pipe "${fast[@]}" SEED=2 pack >/dev/null 2>&1 || return 1
    test_ids() { "$VET_BIN/vet-dump" -r "$1" | /usr/bin/python3 -c 'import json, sys; print(sorted(i for l in sys.stdin for i in json.loads(l)["ids"]))'; }
    [ "$(test_ids "$q/packed/test.msgpack.zst")" = "$(test_ids "$q/rows/test.msgpack.zst")" ] &&
        [ "$(test_ids "$q/rows/test.msgpack.zst")" != "[]" ] || { echo "packed/ and rows/ hold other test splits" >&2; return 1; }
    rm "$q/rows/test.msgpack.zst" && pipe "${fast[@]}" SEED=2 pack >/dev/null 2>&1 && [ -s "$q/rows/test.msgpack.zst" ] &&
        pipe "${fast[@]}" SEED=2 -q pack || { echo "rows/test.msgpack.zst not made again" >&2; return 1; }
}
check pipeline_pack_atomic pack_atomic_ok
fast+=(SEED=2)

# The model training starts from is an input of the train stage: an INIT config.json edited, or
# BASE's weights replaced, trains again; a rerun with nothing changed does nothing.
train_inputs_ok() {
    local q="$tmp/q" s
    cp "$VET_TOP/tests/fixtures/micro.json" "$tmp/micro.json" || return 1
    local init=("${fast[@]}" INIT="$tmp/micro.json" TRAIN_ARGS="--max-steps 2 --batch-size 4 --threads 1 -q")
    pipe "${init[@]}" train >"$tmp/q.log" 2>&1 && pipe "${init[@]}" -q train || { cat "$tmp/q.log" >&2; return 1; }
    touch "$tmp/micro.json"
    pipe "${init[@]}" -q train && { echo "an edited INIT config.json: train up to date" >&2; return 1; }
    pipe "${init[@]}" train >/dev/null 2>&1 && pipe "${init[@]}" -q train || return 1
    local lora=(OUT="$tmp/qb" NOTES="$tmp/notes.csv" BASE="$q/model" TRAIN_ARGS="--max-steps 2 --batch-size 4 --threads 1 -q --lora-r 4")
    pipe "${lora[@]}" train >"$tmp/q.log" 2>&1 && pipe "${lora[@]}" -q train || { cat "$tmp/q.log" >&2; return 1; }
    touch "$q/model/model.safetensors"
    s=$(stages "${lora[@]}" train)
    [ "$s" = "vet-train " ] || { echo "new BASE weights would rerun: $s" >&2; return 1; }
}
check pipeline_train_inputs train_inputs_ok

# A train stage that failed after a checkpoint continues the run when make runs it again
# (nothing changed): the hook fails step 2 after step 1's checkpoint; the rerun fails step 1
# if it started afresh, so passing it means it resumed. Changed arguments start afresh.
train_resume_ok() {
    local r=("${fast[@]}" OUT="$tmp/qr" INIT="$tmp/micro.json" TRAIN_ARGS="--max-steps 3 --batch-size 4 --threads 1 -q --save-every 1")
    VET_TRAIN_FAIL_AT=0:2 pipe "${r[@]}" train >"$tmp/qr.log" 2>&1 && { echo "the hook did not fail step 2" >&2; return 1; }
    [ -d "$tmp/qr/model/checkpoints" ] || { echo "no checkpoint after step 1" >&2; cat "$tmp/qr.log" >&2; return 1; }
    VET_TRAIN_FAIL_AT=0:1 pipe "${r[@]}" train >"$tmp/qr.log" 2>&1 || { echo "the rerun did not resume" >&2; cat "$tmp/qr.log" >&2; return 1; }
    grep -q 'continuing the interrupted run' "$tmp/qr.log" && pipe "${r[@]}" -q train || return 1
    r[${#r[@]}-1]="TRAIN_ARGS=--max-steps 2 --batch-size 4 --threads 1 -q --save-every 1"
    VET_TRAIN_FAIL_AT=0:1 pipe "${r[@]}" train >"$tmp/qr.log" 2>&1 && { echo "changed arguments resumed" >&2; return 1; }
    grep -q 'failing on purpose' "$tmp/qr.log" || { cat "$tmp/qr.log" >&2; return 1; }
}
check pipeline_train_resumes train_resume_ok

# 3. A failing stage leaves no output under its final name, and the run stops there.
failure_ok() {
    cp "$tmp/notes.csv" "$tmp/bad.csv" && printf '"unterminated,Cow,fever\n' >>"$tmp/bad.csv"
    pipe OUT="$tmp/bad" NOTES="$tmp/bad.csv" SPM="$tmp/out/tokenizer.model" >/dev/null 2>&1 && return 1
    [ ! -e "$tmp/bad/notes.tok.msgpack.zst" ] && [ ! -e "$tmp/bad/packed" ]
}
check pipeline_stops_at_bad_input failure_ok

# 3b. pipelines/seeds.sh: one model per training seed on the same split, and their spread.
# One model per seed (ENSEMBLE=1: what is checked is the runs and their spread, and the
# ensemble has its own check above), of 5 steps each: what seeds.sh does with their scores does
# not depend on how good they are.
seeds_ok() {
    local o="$tmp/seeds"
    sh "$VET_TOP/pipelines/seeds.sh" -s "7 8" -t eval "${small[@]}" ENSEMBLE=1 OUT="$o" TRAIN_ARGS="--max-steps 5 --lr 3e-3 -q" \
        VET_BIN="$VET_BIN" >"$tmp/seeds.out" 2>&1 || { cat "$tmp/seeds.out" >&2; return 1; }
    # The split is the same for both seeds, the models (the refits that coded the test split) differ.
    cmp -s "$o/seed-7/rows/test.msgpack.zst" "$o/seed-8/rows/test.msgpack.zst" || { echo "splits differ" >&2; return 1; }
    [ -s "$o/seed-7/refit/model.safetensors" ] && [ -s "$o/seed-8/refit/model.safetensors" ] || { echo "no refit models" >&2; return 1; }
    cmp -s "$o/seed-7/refit/model.safetensors" "$o/seed-8/refit/model.safetensors" && { echo "same model for two seeds" >&2; return 1; }
    grep -q -- "--seed 8$" "$o/seed-8/.args/refit" || { echo "TRAIN_SEED not passed to vet-train" >&2; return 1; }
    # seeds.json: the runs' own accuracies, and their mean.
    /usr/bin/python3 - "$o" <<'PY' || return 1
import json, sys
o = sys.argv[1]
s = json.load(open(o + "/seeds.json"))
accs = [json.load(open("%s/seed-%d/metrics.json" % (o, r["seed"])))["accuracy"] for r in s["runs"]]
assert [r["seed"] for r in s["runs"]] == [7, 8], s["runs"]
assert [r["accuracy"] for r in s["runs"]] == accs, (s["runs"], accs)
assert abs(s["accuracy"]["mean"] - sum(accs) / 2) < 1e-12, s["accuracy"]
assert abs(s["accuracy"]["sd"] - abs(accs[0] - accs[1]) / 2 ** 0.5) < 1e-12, s["accuracy"]
PY
    grep -q "^accuracy on the test split over 2 training seeds: mean" "$tmp/seeds.out" || { cat "$tmp/seeds.out" >&2; return 1; }
    # -k split: another grouped split per seed (cross-validation by repeated splits).
    sh "$VET_TOP/pipelines/seeds.sh" -k split -s "3 4" -t eval "${small[@]}" ENSEMBLE=1 OUT="$tmp/cv" TRAIN_ARGS="--max-steps 5 --lr 3e-3 -q" \
        VET_BIN="$VET_BIN" >"$tmp/cv.out" 2>&1 || { cat "$tmp/cv.out" >&2; return 1; }
    cmp -s "$tmp/cv/seed-3/rows/test.msgpack.zst" "$tmp/cv/seed-4/rows/test.msgpack.zst" && { echo "-k split kept the split" >&2; return 1; }
    grep -q -- "--seed 4" "$tmp/cv/seed-4/.args/pack" || { echo "SEED not passed to vet-pack" >&2; return 1; }
    grep -q '"seed_varies": "split"' "$tmp/cv/seeds.json" && grep -q "over 2 split seeds" "$tmp/cv.out" || return 1
    # A usage error is refused before anything runs.
    sh "$VET_TOP/pipelines/seeds.sh" -t test OUT="$tmp/x" >/dev/null 2>&1; [ $? -eq 2 ] && [ ! -e "$tmp/x" ] || return 1
    sh "$VET_TOP/pipelines/seeds.sh" -k both OUT="$tmp/x" >/dev/null 2>&1; [ $? -eq 2 ] && [ ! -e "$tmp/x" ]
}
check pipeline_seeds_spread seeds_ok
