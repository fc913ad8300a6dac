#!/usr/bin/env bash
# test_eval.sh — vet-eval end to end: the report, --json, formats, streams, baselines,
# exit statuses, the 100-column limit and every kind of bad input.
set -u
: "${VET_BIN:?}" "${VET_TOP:?}" "${VET_BUILD:=$VET_TOP/build/rel}" "${VET_SHARED:=}"
eval_=$VET_BIN/vet-eval
mkpreds=$VET_BUILD/tests/helpers/vet-mkpreds
fx=$VET_TOP/tests/fixtures/eval
py=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-test-eval.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

ok() { echo "ok $1"; }
notok() { echo "not ok $1"; shift; for l in "$@"; do echo "    $l" >&2; done; }
check() {  # check NAME CONDITION-COMMAND...
    local name=$1; shift
    if "$@"; then ok "$name"; else notok "$name" "failed: $*"; fi
}
# runs vet-eval, keeping stdout, stderr and the exit status
run() { "$eval_" "$@" >"$tmp/out" 2>"$tmp/err"; echo $? >"$tmp/rc"; }
rc() { cat "$tmp/rc"; }
has() { grep -qF -- "$2" "$tmp/$1"; }

# --- the report on the hand-computed fixture (numbers worked out in tests/unit/test_metrics.c) ---
run --bootstrap 0 --codes "$fx/codes.tsv" "$fx/small.csv"
check report_numbers bash -c "[ $(rc) = 0 ] && grep -q '^accuracy  *0.4444 ' $tmp/out && grep -q '^macro F1  *0.4933\$' $tmp/out \
    && grep -q '^micro F1  *0.6667\$' $tmp/out && grep -q '^mean Jaccard  *0.5556\$' $tmp/out \
    && grep -q '^no label  *1 ' $tmp/out && grep -q '^baseline  *0.4444  always answering 1679004\$' $tmp/out \
    && grep -q 'optimistic' $tmp/out && grep -q '^      2  1679004 -> 3974005\$' $tmp/out \
    && grep -q '^72934000  *2  *0  *0.0000  *0.0000  *0.0000  Mastitis\$' $tmp/out"

# --- --json: every key, and the same numbers as the table ---
run --codes "$fx/codes.tsv" --json "$tmp/small.json" --seed 3 "$fx/small.csv"
cp "$tmp/out" "$tmp/table"
if [ "$(rc)" = 0 ] && $py - "$tmp/small.json" "$tmp/table" <<'EOF'; then ok json_matches_table; else notok json_matches_table "see above"; fi
import json, re, sys
j = json.load(open(sys.argv[1]))
table = open(sys.argv[2]).read()
need = ["n", "accuracy", "macro_f1", "micro_f1", "jaccard", "per_label", "per_species", "macro_precision",
        "macro_recall", "micro_precision", "micro_recall", "no_label", "baseline", "ci", "confusions"]
missing = [k for k in need if k not in j]
assert not missing, missing
def row(name):  # the number after a label at the start of a line
    m = re.search(r"^%s +([0-9.]+)" % re.escape(name), table, re.M)
    assert m, name
    return m.group(1)
f4 = lambda x: "%.4f" % x
assert row("n") == str(j["n"]) == "9"
for key, name in [("accuracy", "accuracy"), ("macro_precision", "macro precision"), ("macro_recall", "macro recall"),
                  ("macro_f1", "macro F1"), ("micro_precision", "micro precision"), ("micro_recall", "micro recall"),
                  ("micro_f1", "micro F1"), ("jaccard", "mean Jaccard")]:
    assert row(name) == f4(j[key]), (key, row(name), j[key])
assert row("no label") == str(j["no_label"]) == "1"
assert row("baseline") == f4(j["baseline"]["accuracy"]) and j["baseline"]["label"] == "1679004"
assert j["baseline"]["optimistic"] is True
lo, hi = j["ci"]["accuracy"]
assert "95%% CI [%s, %s]" % (f4(lo), f4(hi)) in table and lo <= j["accuracy"] <= hi
lo, hi = j["ci"]["macro_f1"]
assert "95%% CI [%s, %s]" % (f4(lo), f4(hi)) in table and lo <= j["macro_f1"] <= hi
assert set(j["per_label"]) == {"1679004", "3974005", "72934000", "Foot Rot", "40214000"}
for label, s in j["per_label"].items():
    assert set(s) >= {"support", "predicted", "precision", "recall", "f1", "term"}, s
    line = "%-18s %7d %7d %9s %7s %7s" % (label, s["support"], s["predicted"], f4(s["precision"]), f4(s["recall"]), f4(s["f1"]))
    assert line in table, line
assert j["per_label"]["72934000"]["term"] == "Mastitis"
assert j["per_label"]["40214000"]["precision"] == 0 and j["per_label"]["40214000"]["support"] == 0
for sp, s in j["per_species"].items():
    assert "%-18s %7d %9s" % (sp, s["n"], f4(s["accuracy"])) in table, sp
assert j["per_species"]["Goat"] == {"n": 3, "correct": 2, "accuracy": j["per_species"]["Goat"]["accuracy"]}
assert j["confusions"][0] == {"gold": ["1679004"], "pred": ["3974005"], "count": 2}
assert len(j["confusions"]) == 4
EOF

# --- the same set as a stream (vet-generate's output), a JSON lines file, and on stdin ---
if [ ! -x "$mkpreds" ]; then
    echo "skip stream_input: $mkpreds not built (make helpers)"
else
    "$mkpreds" "$fx/small.csv" "$tmp/small.preds" 2>"$tmp/err"  # CSV: gold/pred become arrays
    same_numbers() {  # same_numbers A.json B.json: every metric equal
        $py - "$1" "$2" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("input", "format"): a.pop(k); b.pop(k)
sys.exit(0 if a == b else 1)
EOF
    }
    run --codes "$fx/codes.tsv" --json "$tmp/stream.json" --seed 3 "$tmp/small.preds"
    check stream_input bash -c "[ $(rc) = 0 ] && grep -q '(stream)' $tmp/out" 
    check stream_same_numbers same_numbers "$tmp/small.json" "$tmp/stream.json"
    "$eval_" --codes "$fx/codes.tsv" --json "$tmp/stdin.json" --seed 3 - <"$tmp/small.preds" >"$tmp/out" 2>&1
    check stream_on_stdin same_numbers "$tmp/small.json" "$tmp/stdin.json"
    # Through a pipe that has a name (process substitution, a FIFO): it can be read once, so the
    # format is sniffed from the bytes read and the stream reader goes on from there.
    "$eval_" --codes "$fx/codes.tsv" --json "$tmp/pipe.json" --seed 3 <(cat "$tmp/small.preds") >"$tmp/out" 2>&1
    check stream_through_named_pipe same_numbers "$tmp/small.json" "$tmp/pipe.json"
    rm -f "$tmp/fifo" && mkfifo "$tmp/fifo" && { cat "$tmp/small.preds" >"$tmp/fifo" & }
    # (a reader that opened it twice would wait for a second writer: the timeout ends that)
    timeout 60 "$eval_" --codes "$fx/codes.tsv" --json "$tmp/fifo.json" --seed 3 "$tmp/fifo" >"$tmp/out" 2>&1
    kill %% 2>/dev/null
    wait
    check stream_through_fifo same_numbers "$tmp/small.json" "$tmp/fifo.json"
    "$eval_" --codes "$fx/codes.tsv" -q --json - --seed 3 <"$fx/small.jsonl" >"$tmp/jsonl.json" 2>"$tmp/err"
    check jsonl_sniffed_on_stdin same_numbers "$tmp/small.json" "$tmp/jsonl.json"
    "$eval_" --codes "$fx/codes.tsv" -q --json - --seed 3 --format csv <"$fx/small.csv" >"$tmp/csv.json" 2>"$tmp/err"
    check csv_forced_on_stdin same_numbers "$tmp/small.json" "$tmp/csv.json"

    # A stream record without "gold" or with a mistyped "pred", and a stream of the wrong kind.
    printf '{"id":"a","gold":["1"],"pred":["1"]}\n{"id":"b","pred":["1"]}\n' >"$tmp/nogold.jsonl"
    "$mkpreds" "$tmp/nogold.jsonl" "$tmp/nogold.preds"
    run "$tmp/nogold.preds"
    check stream_missing_gold bash -c "[ $(rc) = 1 ] && grep -q '^vet-eval: .*nogold.preds: record 2: missing field \"gold\"' $tmp/err"
    printf '{"id":"a","gold":["1"],"pred":"1"}\n' >"$tmp/badpred.jsonl"
    "$mkpreds" "$tmp/badpred.jsonl" "$tmp/badpred.preds"
    run "$tmp/badpred.preds"
    check stream_mistyped_pred bash -c "[ $(rc) = 1 ] && grep -q 'badpred.preds: record 1: field \"pred\" is not an array' $tmp/err"
    printf '{"id":"a","codes":["3974005"]}\n{"id":"b","codes":["3974005"]}\n{"id":"c","codes":["1679004"]}\n' >"$tmp/train.jsonl"
    "$mkpreds" --kind tokens "$tmp/train.jsonl" "$tmp/train.tok"
    run "$tmp/train.tok"
    check stream_wrong_kind bash -c "[ $(rc) = 1 ] && grep -q \"kind 'tokens', expected 'predictions'\" $tmp/err"
    # An empty stream: n = 0 is an error.
    : >"$tmp/none.jsonl"
    "$mkpreds" "$tmp/none.jsonl" "$tmp/none.preds"
    run "$tmp/none.preds"
    check stream_empty bash -c "[ $(rc) = 1 ] && grep -q 'n = 0' $tmp/err"
    # New notes: no note has a gold label. Scoring them would call every answer wrong, so it is
    # refused (and names the way to list them); one note with a gold label among them is scored.
    printf '{"id":"a","gold":[],"pred":["1"]}\n{"id":"b","gold":[],"pred":[]}\n' >"$tmp/new.jsonl"
    "$mkpreds" "$tmp/new.jsonl" "$tmp/new.preds"
    run "$tmp/new.preds"
    check stream_no_gold bash -c "[ $(rc) = 1 ] && grep -q 'new.preds: no note has a gold label.*vet-dump --csv' $tmp/err && [ ! -s $tmp/out ]"
    printf '{"id":"a","gold":[],"pred":["1"]}\n{"id":"c","gold":["1"],"pred":["1"]}\n' >"$tmp/some.jsonl"
    run -b 0 "$tmp/some.jsonl"
    check some_gold_scored bash -c "[ $(rc) = 0 ] && grep -q '^accuracy  *0.5000' $tmp/out"
    # A truncated stream.
    head -c 60 "$tmp/small.preds" >"$tmp/cut.preds"
    run "$tmp/cut.preds"
    check stream_truncated bash -c "[ $(rc) = 1 ] && grep -q 'truncated' $tmp/err"

    # --- baseline from a training set: majority {3974005}, right for s3 only: 1/9 ---
    run --bootstrap 0 --baseline-from "$tmp/train.tok" --json "$tmp/base.json" "$fx/small.csv"
    check baseline_from_tokens bash -c "[ $(rc) = 0 ] && grep -q '^baseline  *0.1111  always answering 3974005\$' $tmp/out \
        && $py -c 'import json,sys; b=json.load(open(\"$tmp/base.json\"))[\"baseline\"]; sys.exit(not (b[\"label\"]==\"3974005\" and abs(b[\"accuracy\"]-1/9)<1e-12 and b[\"optimistic\"] is False))'"
    printf '{"tokens":[1],"codes":[["1679004","3974005"],["3974005","1679004"],["72934000"]]}\n' >"$tmp/pack.jsonl"
    "$mkpreds" --kind packed "$tmp/pack.jsonl" "$tmp/train.pack"
    run --bootstrap 0 --baseline-from "$tmp/train.pack" "$fx/small.csv"
    check baseline_from_packed bash -c "[ $(rc) = 0 ] && grep -q '^baseline  *0.1111  always answering 1679004;3974005\$' $tmp/out"
    run --baseline-from "$tmp/small.csv.nope" "$fx/small.csv"
    check baseline_from_missing bash -c "[ $(rc) = 3 ]"
fi

# --- vet-generate --rank predictions: the ranking section (numbers worked out by hand in
# tests/unit/test_ranking.c), the table and the JSON agreeing; without `ranked`, the report as it was ---
run --bootstrap 0 --json "$tmp/ranked.json" "$fx/ranked.jsonl"
cp "$tmp/out" "$tmp/ranked.table"
if [ "$(rc)" = 0 ] && $py - "$tmp/ranked.json" "$tmp/ranked.table" <<'EOF'; then ok ranking_report; else notok ranking_report "see above"; fi
import json, re, sys
j = json.load(open(sys.argv[1]))["ranking"]
table = open(sys.argv[2]).read()
near = lambda a, b: abs(a - b) < 1e-12
assert j["k"] == 4 and list(j["hit_at"]) == ["1", "2", "3", "4"], j
for k, want in (("1", 3 / 7), ("2", 5 / 7), ("3", 5 / 7), ("4", 6 / 7)):
    assert near(j["hit_at"][k], want), (k, j["hit_at"][k])
assert near(j["mrr"], 17 / 28) and near(j["ece"], 0.3) and near(j["brier"], 1.45 / 7), j
want = [(100, 7, .3, 2 / 7), (90, 7, .3, 2 / 7), (80, 6, .3, 2 / 6), (70, 5, .5, 1 / 5), (60, 5, .5, 1 / 5),
        (50, 4, .5, 1 / 4)]
got = [(s["coverage"], s["notes"], s["threshold"], s["accuracy"]) for s in j["selective"]]
assert len(got) == 6 and all(g[:2] == w[:2] and near(g[2], w[2]) and near(g[3], w[3]) for g, w in zip(got, want)), got
assert re.search(r"^ranking \(vet-generate --rank: up to 4 labels per note", table, re.M), table
def row(name):  # the number after a label at the start of a line
    m = re.search(r"^%s +([0-9.]+)" % re.escape(name), table, re.M)
    assert m, name
    return m.group(1)
f4 = lambda x: "%.4f" % x
for k in ("1", "2", "3", "4"):
    assert row("hit@" + k) == f4(j["hit_at"][k]), k
assert row("MRR") == f4(j["mrr"]) and row("top-1 ECE") == f4(j["ece"]) and row("top-1 Brier") == f4(j["brier"])
for s in j["selective"]:
    line = "%7d%% %8d %10s %9s" % (s["coverage"], s["notes"], f4(s["threshold"]), f4(s["accuracy"]))
    assert "\n" + line + "\n" in table, line
assert table.index("\nranking (") < table.index("\nper label")
assert max(map(len, table.splitlines())) <= 100
EOF
# A mix of ranked and unranked records is refused, naming the first that differs from the first.
printf '{"id":"a","gold":["1"],"pred":["1"],"ranked":[{"label":"1","p":0.9}]}\n{"id":"b","gold":["1"],"pred":["1"]}\n' >"$tmp/mixed.jsonl"
run "$tmp/mixed.jsonl"
check ranking_mixed_refused bash -c "[ $(rc) = 1 ] && grep -q 'mixed.jsonl:2: no \"ranked\" list, but the first prediction (.*mixed.jsonl:1) has one' $tmp/err"
printf '{"id":"a","gold":["1"],"pred":["1"],"ranked":[{"label":"1","p":0.2},{"label":"2","p":0.7}]}\n' >"$tmp/rising.jsonl"
run "$tmp/rising.jsonl"
check ranking_rising_p bash -c "[ $(rc) = 1 ] && grep -q 'rising.jsonl:1: \"ranked\"\[1\].p = 0.69999999999999996 is above' $tmp/err"
if [ -x "$mkpreds" ]; then
    # The same notes as a stream (vet-mkpreds keeps `ranked` as it is, a null logp as nil): the same numbers.
    "$mkpreds" "$fx/ranked.jsonl" "$tmp/ranked.preds"
    "$eval_" -q --bootstrap 0 --json "$tmp/ranked_stream.json" "$tmp/ranked.preds" 2>"$tmp/err"
    check ranking_stream $py -c "
import json
a, b = (json.load(open('$tmp/%s.json' % k)) for k in ('ranked', 'ranked_stream'))
assert b['format'] == 'stream' and a['ranking'] == b['ranking'] and a['accuracy'] == b['accuracy']
"
    printf '{"id":"a","gold":["1"],"pred":["1"],"ranked":[{"label":"1","p":0.5},{"label":"1","p":0.5}]}\n' >"$tmp/twice.jsonl"
    "$mkpreds" "$tmp/twice.jsonl" "$tmp/twice.preds"
    run "$tmp/twice.preds"
    check ranking_stream_label_twice bash -c "[ $(rc) = 1 ] && grep -q 'twice.preds: record 1: \"ranked\"\[1\].label .1. is also \"ranked\"\[0\]' $tmp/err"
    printf '{"id":"a","gold":["1"],"pred":["1"],"ranked":[{"label":"1","p":"high"}]}\n' >"$tmp/pstr.jsonl"
    "$mkpreds" "$tmp/pstr.jsonl" "$tmp/pstr.preds"
    run "$tmp/pstr.preds"
    check ranking_stream_p_not_number bash -c "[ $(rc) = 1 ] && grep -q 'pstr.preds: record 1: \"ranked\"\[0\].p is not a number' $tmp/err"
else
    echo "skip ranking_stream: $mkpreds not built (make helpers)"
fi
# --fit-threshold and --refer-below: the threshold written with every digit, the same split back
# (tests/unit/test_ranking.c has the hand-worked numbers); without ranked lists, refused.
run -q --bootstrap 0 --fit-threshold "$tmp/p.txt" --target-accuracy 0.5 "$fx/ranked.jsonl"
fit_rc=$(rc)
run --bootstrap 0 --refer-below "$(cat "$tmp/p.txt" 2>/dev/null)" --json "$tmp/refer.json" "$fx/ranked.jsonl"
check referral bash -c "[ $fit_rc = 0 ] && [ \"\$(cat $tmp/p.txt)\" = 0.90000000000000002 ] && [ $(rc) = 0 ] &&
    grep -q '^coded  *2 of 7 (28.6%), accuracy 0.5000' $tmp/out && $py -c \"
import json; f = json.load(open('$tmp/refer.json'))['ranking']['referral']
assert f['coded'] == 2 and f['notes'] == 7 and f['fitted'] is False and 'target' not in f, f\""
run --refer-below 0.5 "$fx/small.csv"
check referral_needs_ranking bash -c "[ $(rc) = 1 ] && grep -q 'has no \"ranked\" lists' $tmp/err"
run --temperature 2 "$fx/small.csv"
check temperature_needs_ranking bash -c "[ $(rc) = 1 ] && grep -q -- '--temperature: .*has no \"ranked\" lists' $tmp/err"
run --fit-temperature "$tmp/t.txt" "$fx/small.csv"
check fit_temperature_needs_ranking bash -c "[ $(rc) = 1 ] && grep -q -- '--fit-temperature: .*has no \"ranked\" lists' $tmp/err && [ ! -e $tmp/t.txt ]"
# ranked.jsonl's lists carry logp on some entries only: not whole, refused naming the entry.
run --fit-temperature "$tmp/t.txt" "$fx/ranked.jsonl"
check fit_temperature_whole_lists bash -c "[ $(rc) = 1 ] && grep -q 'ranked.jsonl:2: \"ranked\"\[0\] has no logp (--fit-temperature needs' $tmp/err && [ ! -e $tmp/t.txt ]"
run --fit-threshold "$tmp/p1.txt" --target-accuracy 1 "$fx/ranked.jsonl"
check referral_unreachable bash -c "[ $(rc) = 1 ] && grep -q 'no threshold codes these notes at accuracy >= 1' $tmp/err && [ ! -e $tmp/p1.txt ]"
# An accuracy exactly at the target reaches it: 14 of 25 notes right is 0.56, as 55 of 100 is
# 0.55 (0.56 x 25 rounds above 14 in doubles; the fit compared that product and found nothing).
for t in 14/25/0.56 55/100/0.55; do
    IFS=/ read -r right notes target <<<"$t"
    for ((i = 0; i < notes; i++)); do
        [ $i -lt "$right" ] && l=A || l=B
        printf '{"id":"%d","gold":["A"],"pred":["%s"],"ranked":[{"label":"%s","p":0.5}]}\n' $i $l $l
    done >"$tmp/at$target.jsonl"
    run -q --bootstrap 0 --fit-threshold "$tmp/at$target.txt" --target-accuracy "$target" "$tmp/at$target.jsonl"
    check "referral_fit_at_target_$target" bash -c "[ $(rc) = 0 ] && [ \"\$(cat $tmp/at$target.txt)\" = 0.5 ]"
done
# The JSON holds every number in full: the 50% row's threshold (the second note's p) given back to
# --refer-below codes that row's 2 notes (rounded to 15 digits it was above the p: 1 coded).
for p in 0.9 0.7234567890123456 0.6 0.3; do
    printf '{"gold":["A"],"pred":["A"],"ranked":[{"label":"A","p":%s}]}\n' $p
done >"$tmp/digits.jsonl"
run -q --bootstrap 0 --json "$tmp/digits.json" "$tmp/digits.jsonl"
th=$($py -c "import json; print(repr(json.load(open('$tmp/digits.json'))['ranking']['selective'][-1]['threshold']))" 2>/dev/null)
run -q --bootstrap 0 --refer-below "$th" --json "$tmp/digits2.json" "$tmp/digits.jsonl"
check json_numbers_in_full bash -c "[ '$th' = 0.7234567890123456 ] && [ $(rc) = 0 ] && $py -c \"
import json; f = json.load(open('$tmp/digits2.json'))['ranking']['referral']; assert f['coded'] == 2, f\""
# A side of the referral that holds no note has no accuracy: "-" in the table, null in the JSON
# (it printed 0.0000, as if every note there were wrong). digits.jsonl's 4 notes are all right,
# their p 0.3 to 0.9: 0.95 refers all of them, 0 refers none, and a threshold fitted to a target
# they all reach codes them all.
referral_side_empty() {  # referral_side_empty NAME ARGS...: coded and referred as the table and JSON say
    local name=$1; shift
    run -q --bootstrap 0 --json "$tmp/$name.json" "$@" "$tmp/digits.jsonl"
    [ "$(rc)" = 0 ] || return 1
    "$eval_" --bootstrap 0 "$@" "$tmp/digits.jsonl" 2>/dev/null | grep -E '^(coded|referred) ' >"$tmp/$name.lines"
    $py -c "import json; print(json.dumps(json.load(open('$tmp/$name.json'))['ranking']['referral'], sort_keys=True))"
}
none_coded=$(referral_side_empty refer_all --refer-below 0.95)
none_referred=$(referral_side_empty refer_none --refer-below 0)
fit_all=$(referral_side_empty fit_all --fit-threshold "$tmp/all.txt" --target-accuracy 0.5)
check referral_empty_side_no_accuracy bash -c "
    grep -qx 'coded  *0 of 4 (0.0%), accuracy -' $tmp/refer_all.lines &&
    grep -qx 'referred  *4 (the model.s accuracy on them: 1.0000)' $tmp/refer_all.lines &&
    grep -qx 'coded  *4 of 4 (100.0%), accuracy 1.0000' $tmp/refer_none.lines &&
    grep -qx 'referred  *0 (the model.s accuracy on them: -)' $tmp/refer_none.lines &&
    grep -qx 'referred  *0 (the model.s accuracy on them: -)' $tmp/fit_all.lines &&
    [ \"\$(cat $tmp/all.txt)\" = 0.29999999999999999 ] &&
    $py -c \"
import json, sys
a, b, c = (json.loads(x) for x in sys.argv[1:])
assert a['accuracy'] is None and a['coded'] == 0 and a['referred_accuracy'] == 1, a
assert b['referred_accuracy'] is None and b['coded'] == 4 and b['accuracy'] == 1, b
assert c['referred_accuracy'] is None and c['coded'] == 4 and c['fitted'] is True, c\" '$none_coded' '$none_referred' '$fit_all'"

# Without `ranked`: the table byte for byte as before the ranking existed, and no "ranking" key.
(cd "$fx" && "$eval_" --bootstrap 0 --codes codes.tsv small.csv) >"$tmp/plain.table" 2>"$tmp/err"
check no_ranking_table_unchanged cmp "$fx/small.table.txt" "$tmp/plain.table"
check no_ranking_json_key $py -c "
import json
j = json.load(open('$tmp/small.json'))
assert list(j) == ['input', 'format', 'n', 'correct', 'accuracy', 'macro_precision', 'macro_recall', 'macro_f1',
                   'micro_precision', 'micro_recall', 'micro_f1', 'jaccard', 'no_label', 'per_label', 'per_species',
                   'confusions', 'baseline', 'ceiling', 'ci'], list(j)
"

# --- bootstrap: deterministic for a seed, off with 0 ---
"$eval_" -q --json "$tmp/b1.json" --seed 11 "$fx/small.csv"
"$eval_" -q --json "$tmp/b2.json" --seed 11 "$fx/small.csv"
"$eval_" -q --json "$tmp/b3.json" --seed 12 --bootstrap 200 "$fx/small.csv"
"$eval_" -q --json "$tmp/b0.json" --bootstrap 0 "$fx/small.csv"
check bootstrap_seeded $py -c "
import json
a, b, c, z = (json.load(open('$tmp/%s.json' % k)) for k in ('b1', 'b2', 'b3', 'b0'))
assert a['ci'] == b['ci'] and a['ci']['resamples'] == 1000 and c['ci']['resamples'] == 200
assert a['ci']['accuracy'] != c['ci']['accuracy'] or a['ci']['macro_f1'] != c['ci']['macro_f1']
for k, m in (('accuracy', 'accuracy'), ('macro_f1', 'macro_f1')):
    lo, hi = a['ci'][k]
    assert 0 <= lo <= a[m] <= hi <= 1
assert z['ci'] is None
"

# --- --fail-under and -q ---
run --fail-under 0.5 "$fx/small.csv"
check fail_under_below bash -c "[ $(rc) = 4 ] && grep -q '^accuracy' $tmp/out && grep -q 'below --fail-under' $tmp/err"
run --fail-under 0.4 "$fx/small.csv"
check fail_under_above bash -c "[ $(rc) = 0 ]"
# 19999 of 25000 right is 0.8000 to 4 decimals and below 0.8: the message gives the counts.
awk 'BEGIN { print "gold,pred"; for (i = 0; i < 25000; i++) print "A," (i < 19999 ? "A" : "B") }' >"$tmp/fu.csv"
run -b 0 --fail-under 0.8 "$tmp/fu.csv"
check fail_under_counts bash -c "[ $(rc) = 4 ] && grep -q 'accuracy 0.8000 (19999 of 25000 notes exactly right) is below --fail-under 0.8' $tmp/err"
run -q --fail-under 0.9 --json "$tmp/q.json" "$fx/small.csv"
check quiet bash -c "[ $(rc) = 4 ] && [ ! -s $tmp/out ] && [ ! -s $tmp/err ] && [ -s $tmp/q.json ]"

# --- 100 columns, even with long labels, terms, species and confusions ---
long=$(printf 'x%.0s' $(seq 1 150))
{
    echo "id,species,gold,pred"
    echo "1,Very long species name $long,Long label $long;1679004,Another long label $long;3974005;72934000"
    echo "2,Cow,40214000,40214000"
    echo "3,Schäferhund mit sehr langem Namen über alle Spalten hinaus ääääääää,1679004,"
    echo "4,Cow,Long label $long;1679004,1679004"  # the majority gold set: a long baseline line
} >"$tmp/long.csv"
printf '40214000\tAnthrax %s\n1679004\tPeste des petits ruminants, über %s\n' "$long" "$long" >"$tmp/long.tsv"
run --codes "$tmp/long.tsv" "$tmp/long.csv"
check width_100 $py -c "
import sys
lines = open('$tmp/out', encoding='utf-8').read().splitlines()
wide = [l for l in lines if len(l) > 100]
assert lines and not wide, wide
assert any(l.endswith('...') for l in lines)
assert any(l.startswith('baseline ') and l.endswith('...') for l in lines), 'baseline not cut'
"
run --codes "$fx/codes.tsv" "$fx/small.csv"
check width_100_fixture $py -c "
lines = open('$tmp/out', encoding='utf-8').read().splitlines()
assert max(map(len, lines)) <= 100 and any(l.rstrip().endswith('...') for l in lines)
"

# --- bad input and usage ---
printf 'id,gold,pred\n1,A,A\n2,"A"x,B\n' >"$tmp/badrow.csv"
run "$tmp/badrow.csv"
check bad_csv_row bash -c "[ $(rc) = 1 ] && grep -q '^vet-eval: .*badrow.csv:3: ' $tmp/err"
printf 'id,gold,pred\n1,A,A\n2,A\n' >"$tmp/short.csv"
run "$tmp/short.csv"
check short_csv_row bash -c "[ $(rc) = 1 ] && grep -q '^vet-eval: .*short.csv:3: 2 fields, the header has 3' $tmp/err"
printf 'id,label,pred\n1,A,A\n' >"$tmp/nogold.csv"
run "$tmp/nogold.csv"
check csv_without_gold bash -c "[ $(rc) = 1 ] && grep -q 'nogold.csv:1: no \"gold\" column' $tmp/err"
printf '{"id":"1","gold":"A","pred":"A"}\n{"id":"2","gold":"A"}\n' >"$tmp/nopred.jsonl"
run "$tmp/nopred.jsonl"
check jsonl_missing_pred bash -c "[ $(rc) = 1 ] && grep -q '^vet-eval: .*nopred.jsonl:2: missing \"pred\"' $tmp/err"
printf 'id,gold,pred\n' >"$tmp/header.csv"
run "$tmp/header.csv"
check empty_set bash -c "[ $(rc) = 1 ] && grep -q 'no predictions (n = 0)' $tmp/err"
run </dev/null
check empty_stdin bash -c "[ $(rc) = 1 ] && grep -q 'empty input' $tmp/err"
run "$tmp/does-not-exist.csv"
check missing_file bash -c "[ $(rc) = 3 ] && grep -q 'cannot open' $tmp/err"
run --json "$tmp/no/such/dir/x.json" "$fx/small.csv"
check unwritable_json bash -c "[ $(rc) = 3 ]"
run --codes "$tmp/does-not-exist.tsv" "$fx/small.csv"
check missing_codes bash -c "[ $(rc) = 3 ]"
bad_usage=""
for args in "--format xml" "--bootstrap -1" "--fail-under 2" "--seed x" "--nope" "--refer-below 1.5" \
            "--refer-below 0.5 --fit-threshold $tmp/p.txt" "--target-accuracy 0 --fit-threshold $tmp/p.txt" \
            "--fit-threshold $tmp/same --fit-temperature $tmp/same" "--json - --fit-threshold -" "--compare - -"; do
    run $args "$fx/small.csv"
    [ "$(rc)" = 2 ] && has err "try 'vet-eval --help'" || bad_usage="$bad_usage [$args: exit $(rc)]"
done
check usage_errors test -z "$bad_usage"
[ -n "$bad_usage" ] && echo "    usage errors not reported:$bad_usage" >&2
# Several inputs are the shards of one vet-generate --shard run (test_shard.sh): two files that
# are not shards are bad input, not a usage error.
run "$fx/small.csv" "$fx/small.csv"
check several_not_shards bash -c "[ $(rc) = 1 ] && grep -q 'small.csv: not a shard' $tmp/err"

# --- --compare: another model's predictions of the same notes, paired by id (the six notes of
# tests/unit/test_compare.c: both right 2, only here 2, only there 1, neither 1) ---
printf '{"id":"n1","gold":["A"],"pred":["A"]}\n{"id":"n2","gold":["A"],"pred":["B"]}\n{"id":"n3","gold":["B"],"pred":["B"]}\n{"id":"n4","gold":["B"],"pred":["B"]}\n{"id":"n5","gold":["C"],"pred":["A"]}\n{"id":"n6","gold":["C"],"pred":["C"]}\n' >"$tmp/this.jsonl"
printf 'id,gold,pred\nn6,C,C\nn5,C,B\nn4,B,A\nn3,B,A\nn2,A,A\nn1,A,A\n' >"$tmp/other.csv"
run --seed 5 --json "$tmp/cmp.json" --compare "$tmp/other.csv" "$tmp/this.jsonl"
cp "$tmp/out" "$tmp/cmp.table"
if [ "$(rc)" = 0 ] && $py - "$tmp/cmp.json" "$tmp/cmp.table" <<'EOF'; then ok compare_report; else notok compare_report "see above"; fi
import json, re, sys
c = json.load(open(sys.argv[1]))["compare"]
table = open(sys.argv[2]).read()
assert c["other"].endswith("other.csv") and c["n"] == 6, c
assert (c["both"], c["only_this"], c["only_other"], c["neither"]) == (2, 2, 1, 1), c
assert abs(c["accuracy"][0] - 4 / 6) < 1e-12 and abs(c["accuracy"][1] - 0.5) < 1e-12, c
assert abs(c["difference"] - 1 / 6) < 1e-12 and c["ci"][0] <= c["difference"] <= c["ci"][1], c
assert c["mcnemar_p"] == 1, c  # b = 2, c = 1
assert c["only_this_ids"] == ["n3", "n4"] and c["only_other_ids"] == ["n2"], c
assert re.search(r"^compared note by note with .*other\.csv \(the same 6 notes\)$", table, re.M), table
assert re.search(r"^accuracy +0\.6667 here, 0\.5000 there: difference \+0\.1667  95% CI \[", table, re.M), table
assert re.search(r"^only here right +2 +n3, n4$", table, re.M) and re.search(r"^only there right +1 +n2$", table, re.M) and re.search(r"^McNemar p +1  \(exact", table, re.M), table
EOF
# Without resamples: no interval (null in the JSON).
run -b 0 --json - --compare "$tmp/other.csv" "$tmp/this.jsonl"
check compare_no_interval bash -c "[ $(rc) = 0 ] && $py -c 'import json,sys; sys.exit(json.load(open(\"$tmp/out\"))[\"compare\"][\"ci\"] is not None)'"
# With groups (notes written alike): McNemar's test again, each group one outcome. Groups gx, gz
# and gw hold two notes only here right each, gy one only there, gn one both right: by notes 6
# against 1 (p = 2 (1 + 7) / 128 = 0.125); by groups the nets +2, +2, +2, -1 flip to |sum| >= 5 in
# 4 of 16 patterns (p = 0.25).
$py - "$tmp/gthis.jsonl" "$tmp/gother.csv" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as here, open(sys.argv[2], "w") as there:
    there.write("id,gold,pred\n")
    for i, g, mine, theirs in [("x1", "gx", "A", "B"), ("x2", "gx", "A", "B"), ("z1", "gz", "A", "B"), ("z2", "gz", "A", "B"),
                               ("w1", "gw", "A", "B"), ("w2", "gw", "A", "B"), ("y1", "gy", "B", "A"), ("n1", "gn", "A", "A")]:
        here.write(json.dumps({"id": i, "gold": ["A"], "pred": [mine], "group": g}) + "\n")
        there.write(f"{i},A,{theirs}\n")
EOF
run --json "$tmp/gcmp.json" --compare "$tmp/gother.csv" "$tmp/gthis.jsonl"
cp "$tmp/out" "$tmp/gcmp.table"
check compare_groups_whole $py - "$tmp/gcmp.json" "$tmp/gcmp.table" "$tmp/cmp.json" <<'EOF'
import json, re, sys
c = json.load(open(sys.argv[1]))["compare"]
table = open(sys.argv[2]).read()
assert abs(c["mcnemar_p"] - 0.125) < 1e-12 and c["groups"] == {"n": 5, "discordant": 4, "p": 0.25, "exact": True}, c
assert re.search(r"^  groups whole +0\.25  \(the same, each group one outcome: exact sign-flip test on the\n +4 of 5 groups whose notes only one gets right do not cancel\)$", table, re.M), table
assert json.load(open(sys.argv[3]))["compare"]["groups"] is None  # the first pair has no groups
EOF
# Refused: a note in one file only, a note whose gold labels differ, the other file missing.
head -6 "$tmp/other.csv" >"$tmp/five.csv"
run --compare "$tmp/five.csv" "$tmp/this.jsonl"
check compare_missing_note bash -c "[ $(rc) = 1 ] && grep -q \"note 'n1' of .*this.jsonl is not in .*five.csv\" $tmp/err && [ ! -s $tmp/out ]"
sed 's/^n3,B,A$/n3,C,A/' "$tmp/other.csv" >"$tmp/regold.csv"
run --compare "$tmp/regold.csv" "$tmp/this.jsonl"
check compare_other_gold bash -c "[ $(rc) = 1 ] && grep -q \"note 'n3' has other gold labels in .*this.jsonl than in .*regold.csv: {B} against {C}\" $tmp/err"
run --compare "$tmp/nope.csv" "$tmp/this.jsonl"
check compare_missing_file bash -c "[ $(rc) = 3 ] && grep -q 'cannot open' $tmp/err"
run --json "$tmp/other.csv" --compare "$tmp/other.csv" "$tmp/this.jsonl"
check compare_not_overwritten bash -c "[ $(rc) = 2 ] && grep -q 'n6,C,C' $tmp/other.csv"

# --- --help, --version, the man page ---
run --version
check version bash -c "[ $(rc) = 0 ] && grep -q '^vet-eval [0-9]' $tmp/out"
run --help
cp "$tmp/out" "$tmp/help"
missing=""
for flag in $(grep -oE -- '--[a-z][a-z-]+' "$tmp/help" | sort -u); do
    grep -qF -- "${flag//-/\\-}" "$VET_TOP/man/vet-eval.1" || missing="$missing $flag"
done
check man_lists_every_flag bash -c "[ -z '$missing' ] && grep -q '^\.SH EXIT STATUS' $VET_TOP/man/vet-eval.1" 
[ -n "$missing" ] && echo "    man/vet-eval.1 lacks:$missing" >&2

# --- the real notes (../shared): a perfect and a majority answer, scored ---
if [ -z "$VET_SHARED" ]; then
    echo "skip real_data: VET_SHARED is empty"
else
    $py - "$VET_SHARED/data/dlo/dlo_notes.csv" "$tmp" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
with open(sys.argv[2] + "/perfect.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "species", "gold", "pred"])
    for r in rows:
        gold = r["codes"] or r["disease"]
        w.writerow([r["id"], r["species"], gold, gold])
with open(sys.argv[2] + "/ppr.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "species", "gold", "pred"])
    for r in rows:
        w.writerow([r["id"], r["species"], r["codes"] or r["disease"], "1679004"])
EOF
    run -q --json "$tmp/perfect.json" --codes "$VET_SHARED/data/dlo/codes.tsv" "$tmp/perfect.csv"
    run --json "$tmp/ppr.json" --codes "$VET_SHARED/data/dlo/codes.tsv" "$tmp/ppr.csv"
    check real_data $py -c "
import json
p, q = json.load(open('$tmp/perfect.json')), json.load(open('$tmp/ppr.json'))
assert p['n'] == 1602 and p['accuracy'] == 1 and p['macro_f1'] == 1 and p['no_label'] == 0
assert set(p['per_species']) == {'Cow', 'Buffalo', 'Sheep', 'Goat'}
assert q['per_label']['1679004']['support'] == 652 and q['per_label']['1679004']['term'].startswith('Peste')
assert abs(q['accuracy'] - 652 / 1602) < 1e-12 and abs(q['baseline']['accuracy'] - 652 / 1602) < 1e-12
assert q['baseline']['label'] == '1679004'
lines = open('$tmp/out', encoding='utf-8').read().splitlines()
assert max(map(len, lines)) <= 100
"
fi

# A file name that is not UTF-8 (names are bytes): the JSON's "input" shows the bad byte as
# U+FFFD instead of going missing (JSON holds only UTF-8).
bad_name=$tmp/$(printf 'p\377.csv')
cp "$fx/small.csv" "$bad_name"
run -q --bootstrap 0 --json "$tmp/bad-name.json" "$bad_name"
check json_input_name_not_utf8 bash -c "[ $(rc) = 0 ] && /usr/bin/python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); assert j[\"input\"].endswith(\"p\ufffd.csv\"), j[\"input\"]' '$tmp/bad-name.json'"

# Labels are trimmed and blank ones dropped in every format, as a CSV field's are: a JSON array's
# " A " is the label "A" (it used to count as wrong against "A", and "  " as a label); a ranked
# label that is blank is refused, and one that is another after trimming is a label ranked twice.
printf '{"gold": [" A ", "  "], "pred": "A"}\n{"gold": ["B"], "pred": ["B\\t", ""]}\n' >"$tmp/blank.jsonl"
run -q --bootstrap 0 --json "$tmp/blank.json" "$tmp/blank.jsonl"
check labels_trimmed_in_arrays bash -c "[ $(rc) = 0 ] && $py -c 'import json, sys; j = json.load(open(sys.argv[1])); assert j[\"accuracy\"] == 1 and sorted(j[\"per_label\"]) == [\"A\", \"B\"], j' '$tmp/blank.json'"
printf '{"gold": ["A"], "pred": "A", "ranked": [{"label": "  ", "p": 0.5}]}\n' >"$tmp/blank-ranked.jsonl"
run -q "$tmp/blank-ranked.jsonl"
check ranked_label_blank bash -c "[ $(rc) = 1 ] && grep -q 'blank-ranked.jsonl:1: \"ranked\"\[0\].label is blank' $tmp/err"
printf '{"gold": ["A"], "pred": "A", "ranked": [{"label": " A", "p": 0.5}, {"label": "A", "p": 0.4}]}\n' >"$tmp/twice-ranked.jsonl"
run -q "$tmp/twice-ranked.jsonl"
check ranked_label_twice_after_trim bash -c "[ $(rc) = 1 ] && grep -q 'twice-ranked.jsonl:1: \"ranked\"\[1\].label .A. is also' $tmp/err"

# --confusions 0 asks for no confusions section (it printed a heading over nothing); a set with
# every sample right says so instead of a table of none.
run --bootstrap 0 -n 0 "$fx/small.csv"
check confusions_zero_no_section bash -c "[ $(rc) = 0 ] && ! grep -q confusions $tmp/out && grep -q '^per species' $tmp/out"
printf 'id,gold,pred\n1,A,A\n2,B,B\n' >"$tmp/all-right.csv"
run --bootstrap 0 "$tmp/all-right.csv"
check confusions_none_when_all_right bash -c "[ $(rc) = 0 ] && [ \"\$(sed -n '/^confusions/,\$p' $tmp/out)\" = 'confusions: none (every sample exactly right)' ]"

# Groups (a `group` column or key; vet-generate writes the prompt's hash): the bootstrap draws a
# group whole. A set of notes each written twice, each pair one group, has the interval of the
# notes written once; without the groups the copies count as independent notes and it narrows.
# The table says which, and the JSON's ci.groups.
$py - "$tmp" <<'EOF2'
import random, sys
d, r = sys.argv[1], random.Random(4)
rows = [(f"n{i}", r.choice("AB"), r.choice("AB")) for i in range(40)]
with open(f"{d}/once.csv", "w") as f:
    f.write("id,gold,pred\n")
    for i, g, p in rows: f.write(f"{i},{g},{p}\n")
with open(f"{d}/twice.csv", "w") as f, open(f"{d}/twice-loose.csv", "w") as l:
    f.write("id,gold,pred,group\n"); l.write("id,gold,pred\n")
    for i, g, p in rows:
        for c in "ab": f.write(f"{i}{c},{g},{p},{i}\n"); l.write(f"{i}{c},{g},{p}\n")
with open(f"{d}/twice-blanks.csv", "w") as f:  # the same groups with blanks around them
    f.write("id,gold,pred,group\n")
    for i, g, p in rows:
        for c in "ab": f.write(f"{i}{c},{g},{p},{' ' if c == 'a' else ''}{i}{' ' if c == 'b' else ''}\n")
with open(f"{d}/twice.jsonl", "w") as f:
    for i, g, p in rows:
        for c in "ab": f.write(f'{{"id": "{i}{c}", "gold": "{g}", "pred": "{p}", "group": "{i}"}}\n')
EOF2
run --json "$tmp/once.json" "$tmp/once.csv"; cp "$tmp/out" "$tmp/out.once.txt"
run --json "$tmp/twice.json" "$tmp/twice.csv"; cp "$tmp/out" "$tmp/twice.txt"
run -q --json "$tmp/twice-jsonl.json" "$tmp/twice.jsonl"
run -q --json "$tmp/loose.json" "$tmp/twice-loose.csv"
check bootstrap_draws_groups_whole $py -c '
import json, sys
o, t, j, l = (json.load(open(f"{sys.argv[1]}/{n}.json")) for n in ("once", "twice", "twice-jsonl", "loose"))
assert o["ci"]["groups"] is None and l["ci"]["groups"] is None and t["ci"]["groups"] == 40 == j["ci"]["groups"], (o["ci"], t["ci"])
assert t["ci"]["accuracy"] == o["ci"]["accuracy"] == j["ci"]["accuracy"] and t["ci"]["macro_f1"] == o["ci"]["macro_f1"], (o["ci"], t["ci"])
lo, hi = l["ci"]["accuracy"]; assert hi - lo < o["ci"]["accuracy"][1] - o["ci"]["accuracy"][0], l["ci"]
' "$tmp"
run -q --json "$tmp/twice-blanks.json" "$tmp/twice-blanks.csv"
check group_blanks_cut $py -c '
import json, sys
t, b = (json.load(open(f"{sys.argv[1]}/{n}.json")) for n in ("twice", "twice-blanks"))
assert b["ci"] == t["ci"] and b["ci"]["groups"] == 40, (b["ci"], t["ci"])
' "$tmp"
check bootstrap_groups_in_table grep -q '^  *(drawing the 40 groups whole, not the 80 notes one by one)$' "$tmp/twice.txt"
# The ceiling label noise puts on a model that answers notes written alike alike: the twice
# files' pairs share one gold label (1.0); below, group x's notes carry A, A, B and group y's C, D
# (best A twice, C or D once: 3 of 5, two groups mixed, five notes). Without groups: none.
printf 'id,gold,pred,group\n1,A,A,x\n2,A,B,x\n3,B,A,x\n4,C,C,y\n5,D,C,y\n' >"$tmp/noisy.csv"
run --json "$tmp/noisy.json" "$tmp/noisy.csv"; cp "$tmp/out" "$tmp/noisy.txt"
check ceiling_of_label_noise $py -c '
import json, re, sys
d = sys.argv[1]
c = json.load(open(f"{d}/noisy.json"))["ceiling"]
assert c == {"accuracy": 0.6, "correct": 3, "groups": 2, "groups_mixed": 2, "notes_mixed": 5}, c
assert json.load(open(f"{d}/twice.json"))["ceiling"]["accuracy"] == 1 and json.load(open(f"{d}/once.json"))["ceiling"] is None
table = open(f"{d}/noisy.txt").read()
assert re.search(r"^ceiling +0\.6000  the most a model answering each group.s notes alike can score: 2 of the\n +2 groups \(5 notes\) hold notes written alike under other gold labels$", table, re.M), table
assert "ceiling" not in open(f"{d}/out.once.txt").read()
' "$tmp"
printf '{"gold": "A", "pred": "A", "group": 7}\n' >"$tmp/group-number.jsonl"
run -q "$tmp/group-number.jsonl"
check group_not_a_string bash -c "[ $(rc) = 1 ] && grep -q 'group-number.jsonl:1: \"group\" is not a string' $tmp/err"
if [ -x "$mkpreds" ]; then
    printf '{"id": "a", "gold": ["A"], "pred": ["A"], "group": 7}\n' >"$tmp/group-number-rec.jsonl"
    "$mkpreds" "$tmp/group-number-rec.jsonl" "$tmp/group-number.pred"
    run -q "$tmp/group-number.pred"
    check group_not_a_string_in_stream bash -c "[ $(rc) = 1 ] && grep -q 'group-number.pred: record 1: \"group\" is not a string' $tmp/err"
else
    notok group_not_a_string_in_stream "no $mkpreds (make test-build)"
fi
