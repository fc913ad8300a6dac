#!/usr/bin/env bash
# test_folds.sh — k-fold cross-validation end to end: vet-pack --fold I/K over the fault fixture's
# 160 notes, each fold's test split decoded by vet-generate (which copies the header's `fold`),
# and vet-eval given the K streams: the pooled report equals vet-eval of the same records as one
# file in fold order, whatever order the streams come in; every note scored once. Then each way a
# set can fail to be one cross-validation's test folds (missing, twice, a val split, another K,
# seed or input, a stream holding part of its fold, notes that do not add up, an id in two folds,
# a stream without a fold, a malformed `fold`), refused naming the file and the fold; --compare
# with folds; the cv stage of pipelines/vet.mk on a tiny run.
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
VET_BUILD=${VET_BUILD:-$VET_TOP/build/rel}
PACK=$VET_BIN/vet-pack GEN=$VET_BIN/vet-generate EVAL=$VET_BIN/vet-eval DUMP=$VET_BIN/vet-dump
MKPREDS=$VET_BUILD/tests/helpers/vet-mkpreds
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-folds.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1

ok() { echo "ok $1"; }
notok() { echo "not ok $1"; [ $# -gt 1 ] && echo "  $2" >&2; return 0; }
check() { if eval "$2"; then ok "$1"; else notok "$1" "${3:-$2}"; fi; }
command -v jq >/dev/null || { echo "skip folds: no jq"; exit 0; }

. "$VET_TOP/tests/e2e/fault_fixture.sh"
fx=$tmp/fx
mkdir -p "$fx" && make_fixture "$fx" || { notok setup "make_fixture failed"; exit 1; }
gen() { "$GEN" -q -m "$fx/base" -n 24 -b 4 --constrain "$VET_TOP/data/codes.tsv" "$@"; }
metrics() { jq -S 'del(.input, .format, .folds)' "$1"; }  # the JSON report less the input's name, format, folds

# --- four folds, each test split decoded; pooled by vet-eval -------------------------------------
K=4
for i in 0 1 2 3; do
    "$PACK" --fold $i/$K --stratify codes --no-pack --seq-len 256 --out "$tmp/f$i" "$fx/notes.tok" &&
        gen "$tmp/f$i/test.msgpack.zst" -o "$tmp/p$i.pred" || { notok setup "fold $i failed"; exit 1; }
done
total=$("$DUMP" -c "$fx/rows.tok")
hdr_ok=1 sum=0
for i in 0 1 2 3; do
    n=$("$DUMP" -c "$tmp/p$i.pred")
    sum=$((sum + n))
    "$DUMP" -H "$tmp/p$i.pred" | jq -e --argjson i $i --argjson n "$n" --argjson t "$total" \
        '.fold == {"i": $i, "k": 4, "seed": 1, "split": "test", "notes": $n, "input_notes": $t}' >/dev/null || hdr_ok=0
done
check fold-headers '[ $hdr_ok = 1 ] && [ $sum = $total ]' "vet-generate's headers carry vet-pack's fold; the test splits hold every note ($sum of $total)"

"$EVAL" -q --json "$tmp/pooled.json" "$tmp/p0.pred" "$tmp/p1.pred" "$tmp/p2.pred" "$tmp/p3.pred" 2>"$tmp/err"
"$EVAL" -q --json "$tmp/shuffled.json" "$tmp/p2.pred" "$tmp/p0.pred" "$tmp/p3.pred" "$tmp/p1.pred" 2>>"$tmp/err"
. "$VET_TOP/tests/e2e/eval_refused.sh"  # refused WANT_STATUS SUBSTRING ARGS...; read_twice PROGRAM ARGS...
read_twice "$EVAL" -q "$tmp/p2.pred" "$tmp/p0.pred" "$tmp/p3.pred" "$tmp/p1.pred"; rc=$?
if [ $rc = 2 ]; then echo "skip fold-headers-read-once: no strace"
else check fold-headers-read-once '[ $rc = 0 ] && read_twice "$DUMP" --csv "$tmp/p2.pred" "$tmp/p0.pred" "$tmp/p3.pred" "$tmp/p1.pred"'; fi
# The same records as one CSV, fold 0's first: what pooling must equal, bootstrap intervals included.
# (As JSON lines, vet-dump's records: their groups too, so the bootstrap draws alike.)
for i in 0 1 2 3; do "$DUMP" --csv "$tmp/p$i.pred" | { [ $i = 0 ] && cat || tail -n +2; }; done >"$tmp/all.csv"
for i in 0 1 2 3; do "$DUMP" -r "$tmp/p$i.pred"; done >"$tmp/all.jsonl"
"$EVAL" -q --json "$tmp/concat.json" "$tmp/all.jsonl" 2>>"$tmp/err"
check fold-pooled '[ ! -s "$tmp/err" ] && [ "$(jq .n "$tmp/pooled.json")" = "$total" ] && diff <(metrics "$tmp/pooled.json") <(metrics "$tmp/concat.json") >&2' \
    "pooled folds != the same records as one file: $(cat "$tmp/err")"
# Each fold scored alone in the pooled report's per-fold rows: the accuracy vet-eval gives that
# fold's stream by itself, and their mean and sample standard deviation.
for i in 0 1 2 3; do "$EVAL" -q --bootstrap 0 --json "$tmp/one$i.json" "$tmp/p$i.pred"; done
check fold-each 'jq -se ".[0].folds as \$f | [.[1:][] | {n, accuracy}] as \$one | (\$one | map(.accuracy) | add / 4) as \$m |
    \$f.each == \$one and (\$f.mean - \$m | if . < 0 then -. else . end) < 1e-12 and
    (\$f.sd - ((\$one | map((.accuracy - \$m) * (.accuracy - \$m)) | add / 3) | sqrt) | if . < 0 then -. else . end) < 1e-12" \
    "$tmp/pooled.json" "$tmp"/one[0-3].json >/dev/null && grep -q "^per fold (each fold" <("$EVAL" "$tmp/p0.pred" "$tmp/p1.pred" "$tmp/p2.pred" "$tmp/p3.pred")'
check fold-any-order 'diff <(metrics "$tmp/pooled.json") <(metrics "$tmp/shuffled.json") >&2 && jq -e ".input | endswith(\"and 3 more folds\")" "$tmp/pooled.json" >/dev/null'
"$EVAL" --compare "$tmp/p0.pred" --compare "$tmp/p1.pred" --compare "$tmp/p2.pred" --compare "$tmp/p3.pred" \
    "$tmp/p3.pred" "$tmp/p2.pred" "$tmp/p1.pred" "$tmp/p0.pred" >"$tmp/cmp.txt" 2>&1
check fold-compare 'grep -q "and 3 more folds (the same $total notes)" "$tmp/cmp.txt" && grep -q "^only here right  *0$" "$tmp/cmp.txt"' \
    "--compare with the other run's folds: $(head -c 600 "$tmp/cmp.txt")"
# vet-dump --csv: the folds as one table, fold 0's rows first, whatever order they are named in.
"$DUMP" --csv "$tmp/p3.pred" "$tmp/p1.pred" "$tmp/p0.pred" "$tmp/p2.pred" >"$tmp/dump.csv" 2>"$tmp/err"; rc=$?
"$DUMP" --csv "$tmp/p0.pred" "$tmp/p1.pred" "$tmp/p3.pred" >/dev/null 2>"$tmp/err2"; rc2=$?
check fold-dump-csv '[ $rc = 0 ] && cmp -s "$tmp/dump.csv" "$tmp/all.csv" && [ $rc2 = 1 ] && grep -q "fold 2/4 is missing" "$tmp/err2"' \
    "vet-dump --csv of the folds: rc=$rc, $(cat "$tmp/err" "$tmp/err2")"
"$EVAL" -q "$tmp/p1.pred" 2>"$tmp/err"
check fold-alone '[ $? = 0 ] && [ ! -s "$tmp/err" ]' "one fold's predictions alone are one file: scored as they are"

# --- a set that is not one cross-validation's test folds -----------------------------------------
P="$tmp/p0.pred $tmp/p1.pred $tmp/p2.pred"
check fold-missing 'refused 1 "p0.pred: fold 3/4 is missing (3 of 4 folds given" $P'
check fold-twice 'refused 1 "fold 1/4 appears twice ($tmp/p1.pred and $tmp/p1.pred)" $P "$tmp/p1.pred"'
gen "$tmp/f3/val.msgpack.zst" -o "$tmp/v3.pred"
check fold-val-split 'refused 1 "v3.pred: the val split of fold 3/4" $P "$tmp/v3.pred"'
"$PACK" --fold 3/5 --no-pack --seq-len 256 --out "$tmp/g3" "$fx/notes.tok" && gen "$tmp/g3/test.msgpack.zst" -o "$tmp/k5.pred"
"$PACK" --fold 3/4 --stratify codes --seed 2 --no-pack --seq-len 256 --out "$tmp/s3" "$fx/notes.tok" && gen "$tmp/s3/test.msgpack.zst" -o "$tmp/seed2.pred"
check fold-other-run 'refused 1 "k5.pred: fold 3/5, but" $P "$tmp/k5.pred" && refused 1 "seed2.pred: fold 3/4 dealt with --seed 2" $P "$tmp/seed2.pred"'
gen "$fx/notes.tok" -o "$tmp/all.pred"
check fold-plain-among-folds 'refused 1 "all.pred: not a fold (its header names none), but" $P "$tmp/all.pred"'
check fold-stdin 'refused 2 "stdin" $P - <"$tmp/p3.pred"'
if [ -x "$MKPREDS" ]; then
    printf '{"id":"a","gold":["1"],"pred":["1"]}\n{"id":"b","gold":["2"],"pred":["1"]}\n' >"$tmp/ab.jsonl"
    printf '{"id":"c","gold":["1"],"pred":["1"]}\n' >"$tmp/c.jsonl"
    printf '{"id":"a","gold":["1"],"pred":["2"]}\n' >"$tmp/a.jsonl"
    fold() { printf '{"fold":{"i":%s,"k":2,"seed":1,"split":"test","notes":%s,"input_notes":%s}}' "$1" "$2" "$3"; }
    "$MKPREDS" --header "$(fold 0 2 3)" "$tmp/ab.jsonl" "$tmp/m0.pred"
    "$MKPREDS" --header "$(fold 1 1 3)" "$tmp/c.jsonl" "$tmp/m1.pred"
    printf '{"id":"c","gold":["1"],"pred":["1"]}\n{"id":"d","gold":["1"],"pred":["1"]}\n' >"$tmp/cd.jsonl"
    "$MKPREDS" --header "$(fold 1 1 3)" "$tmp/cd.jsonl" "$tmp/long.pred"      # says 1 note, holds 2
    "$MKPREDS" --header "$(fold 1 1 4)" "$tmp/c.jsonl" "$tmp/other.pred"      # another input
    "$MKPREDS" --header "$(fold 0 2 4)" "$tmp/ab.jsonl" "$tmp/n0.pred"
    "$MKPREDS" --header "$(fold 1 1 4)" "$tmp/c.jsonl" "$tmp/n1.pred"         # 2 + 1 of 4 notes
    "$MKPREDS" --header "$(fold 1 1 3)" "$tmp/a.jsonl" "$tmp/dup.pred"        # id a is in fold 0 too
    "$MKPREDS" --header '{"fold":{"i":2,"k":2,"seed":1,"split":"test","notes":1,"input_notes":3}}' "$tmp/c.jsonl" "$tmp/badi.pred"
    "$MKPREDS" --header '{"fold":[0,2]}' "$tmp/c.jsonl" "$tmp/notmap.pred"
    check fold-made-set '"$EVAL" -q --json "$tmp/m.json" "$tmp/m1.pred" "$tmp/m0.pred" && jq -e ".n == 3" "$tmp/m.json" >/dev/null'
    check fold-edited 'refused 1 "long.pred: fold 1/2'"'"'s test split holds 1 notes, but the stream has 2 records" "$tmp/m0.pred" "$tmp/long.pred" &&
        refused 1 "other.pred: fold 1/2 of an input of 4 notes" "$tmp/m0.pred" "$tmp/other.pred" &&
        refused 1 "the test splits hold 3 notes, but their input packed 4" "$tmp/n0.pred" "$tmp/n1.pred" &&
        refused 1 "dup.pred: record 1: id '"'"'a'"'"' is also in $tmp/m0.pred" "$tmp/m0.pred" "$tmp/dup.pred" &&
        refused 1 "badi.pred: header: fold 2/2" "$tmp/m0.pred" "$tmp/badi.pred" &&
        refused 1 "notmap.pred: header: \"fold\" is not a map" "$tmp/m0.pred" "$tmp/notmap.pred"'
    # vet-dump --csv checks a fold's count with the same words (one check for both programs).
    check fold-edited-csv '! "$DUMP" --csv "$tmp/m0.pred" "$tmp/long.pred" >/dev/null 2>"$tmp/err" &&
        grep -qF "long.pred: fold 1/2'"'"'s test split holds 1 notes, but the stream has 2 records: predictions of part" "$tmp/err"'
else
    notok fold-edited "no $MKPREDS (make test-build)"
fi

# --- the cv stage of pipelines/vet.mk: every fold's job, then the pooled score -------------------
mk() { make -s --no-print-directory -f "$VET_TOP/pipelines/vet.mk" VET_BIN="$VET_BIN" OUT="$tmp/cv" \
    NOTES="$fx/notes.csv" CODES="$VET_TOP/data/codes.tsv" INIT="$fx/micro.json" VOCAB=512 ENSEMBLE=1 SWAP= \
    TRAIN_ARGS="--max-steps 2 --batch-size 4 --grad-accum 1 --threads 1" GEN_ARGS="-n 24 -b 8" "$@"; }
mk cv FOLDS=3 >"$tmp/cv.out" 2>"$tmp/cv.err"; rc=$?
check cv-stage '[ $rc = 0 ] && [ "$(jq .n "$tmp/cv/cv-metrics.json")" = "$total" ] && grep -q "and 2 more folds" "$tmp/cv/cv-metrics.txt" &&
    [ "$(grep -c "^vet.mk: fold [0-2]/3: accuracy" "$tmp/cv.err")" = 3 ] &&
    grep -qx -- "--fold 2/3 --group-by note --stratify codes --seq-len 512 --seed 1" "$tmp/cv/fold-2/.args/pack"' \
    "make cv FOLDS=3: rc=$rc $(tail -n 5 "$tmp/cv.err")"
rm -rf "$tmp/cvn"
make -n -s --no-print-directory -f "$VET_TOP/pipelines/vet.mk" VET_BIN="$VET_BIN" OUT="$tmp/cvn" NOTES="$fx/notes.csv" \
    CODES="$VET_TOP/data/codes.tsv" INIT="$fx/micro.json" cv FOLDS=2 >"$tmp/cvn.out" 2>&1; rcn=$?
check cv-dry-run '[ $rcn = 0 ] && [ ! -e "$tmp/cvn" ] && grep -q -- "--fold 1/2 --group-by note" "$tmp/cvn.out" && grep -q "vet-eval .*fold-0/predictions.msgpack.zst .*fold-1/predictions.msgpack.zst" "$tmp/cvn.out"' \
    "make -n cv: rc=$rcn, wrote $(ls "$tmp/cvn" 2>/dev/null | head -3): $(head -c 300 "$tmp/cvn.out")"
mk cv FOLDS=1 >/dev/null 2>"$tmp/cv1.err"; rc1=$?
mk cv FOLDS=3 FOLD=1/3 >/dev/null 2>"$tmp/cv2.err"; rc2=$?
check cv-stage-usage '[ $rc1 = 2 ] && grep -q "FOLDS=K, the number of folds, from 2 to 20" "$tmp/cv1.err" && [ $rc2 = 2 ] && grep -q "leave FOLD out" "$tmp/cv2.err"'
