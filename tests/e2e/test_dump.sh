#!/usr/bin/env bash
# test_dump.sh — vet-dump: JSON lines out of a stream, --count/--header/--records/--kind, the
# errors a damaged stream gives (with their exit statuses), and --help against the man page.
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-dump.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }
dump="$VET_BIN/vet-dump"

# A real stream: synthetic notes through vet-tokenize needs a tokenizer; vet-pack's test helper
# writes token streams without one.
mk="$VET_BUILD/tests/helpers/vet-mktokens"
[ -x "$mk" ] || { echo "skip dump_all: no $mk (make helpers)"; exit 0; }
for i in 1 2 3 4 5; do
    echo "{\"id\":\"n$i\",\"species\":\"Cow\",\"codes\":[\"1679004\"],\"note\":\"fever $i\",\"prompt\":[1,5,$i],\"response\":[7,2]}"
done | "$mk" -o "$tmp/t.zst" || exit 1

lines_ok() {
    "$dump" "$tmp/t.zst" >"$tmp/out.jsonl" || return 1
    [ "$(wc -l <"$tmp/out.jsonl")" -eq 7 ] || return 1
    head -1 "$tmp/out.jsonl" | grep -q '"kind":"tokens"' || return 1
    sed -n 2p "$tmp/out.jsonl" | grep -q '"id":"n1"' || return 1
    tail -1 "$tmp/out.jsonl" | grep -qx '{"end":true,"records":5}' || return 1
    /usr/bin/python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$tmp/out.jsonl"
}
check dump_json_lines lines_ok
check dump_count bash -c "[ \"\$('$dump' --count '$tmp/t.zst')\" = 5 ]"
check dump_count_stdin bash -c "[ \"\$('$dump' -c - < '$tmp/t.zst')\" = 5 ]"
check dump_header bash -c "[ \"\$('$dump' -H '$tmp/t.zst' | wc -l)\" = 1 ]"
check dump_records bash -c "[ \"\$('$dump' -r '$tmp/t.zst' | wc -l)\" = 5 ]"

status_and_msg() {  # status_and_msg WANT_STATUS PATTERN ARGS...: exit status and message
    local want=$1 pat=$2; shift 2
    local msg
    msg=$("$dump" "$@" 2>&1 >/dev/null)
    local got=$?
    [ $got -eq "$want" ] || { echo "exit $got, want $want: $msg" >&2; return 1; }
    grep -q -- "$pat" <<<"$msg" || { echo "message lacks '$pat': $msg" >&2; return 1; }
}
head -c $(( $(stat -c %s "$tmp/t.zst") - 6 )) "$tmp/t.zst" >"$tmp/cut.zst"
check dump_truncated status_and_msg 1 "truncated stream" "$tmp/cut.zst"
printf 'id,note\n1,fever\n' >"$tmp/plain.csv"
check dump_not_a_stream status_and_msg 1 "not a vet stream" "$tmp/plain.csv"
check dump_wrong_kind status_and_msg 1 "kind 'tokens', expected 'packed'" --kind packed "$tmp/t.zst"
check dump_missing_file status_and_msg 3 "cannot open" "$tmp/nope.zst"
check dump_bad_flag status_and_msg 2 "unknown option" --frobnicate

# --- --csv: a predictions stream as a table for people --------------------------------------
mkpreds="$VET_BUILD/tests/helpers/vet-mkpreds"
if [ ! -x "$mkpreds" ]; then
    echo "skip dump_csv: no $mkpreds (make helpers)"
else
    # Ranked notes: one new (no gold), one whose text and id need quoting, one with two labels
    # (one of them missing from the codes table), one whose p sits exactly on the threshold.
    cat >"$tmp/ranked.jsonl" <<'EOF'
{"id":"n1","species":"Goat","gold":[],"pred":["3974005"],"text":"Diagnosed conditions: 3974005","group":"0123456789abcdef","ranked":[{"label":"3974005","p":0.923895,"logp":-0.08},{"label":"40214000","p":0.0445634,"logp":-3.1}]}
{"id":"n\"2","species":"Cow, adult","gold":["40214000"],"pred":["40214000"],"text":"line one\nsaid \"anthrax\", twice","ranked":[{"label":"40214000","p":0.5,"logp":-0.7},{"label":"3974005","p":0.5,"logp":-0.7}]}
{"id":"n3","species":"Sheep","gold":["3974005","999999"],"pred":["3974005","999999"],"text":"3974005; 999999","ranked":[{"label":"3974005","p":0.25,"logp":-1.4}]}
EOF
    printf 'code\tterm\n3974005\tFoot-and-mouth disease\n40214000\tAnthrax, cutaneous\n' >"$tmp/codes.tsv"
    "$mkpreds" "$tmp/ranked.jsonl" "$tmp/ranked.preds" || exit 1
    csv_exact() {  # every field as a reader of RFC 4180 must see it, worked out by hand
        "$dump" --csv --codes "$tmp/codes.tsv" --refer-below 0.5 "$tmp/ranked.preds" >"$tmp/ranked.csv" || return 1
        cat >"$tmp/want.csv" <<'EOF'
id,species,pred,term,p,refer,gold,ranked,group,text
n1,Goat,3974005,Foot-and-mouth disease,0.923895,no,,3974005=0.923895;40214000=0.0445634,0123456789abcdef,Diagnosed conditions: 3974005
"n""2","Cow, adult",40214000,"Anthrax, cutaneous",0.5,no,40214000,40214000=0.5;3974005=0.5,,"line one
said ""anthrax"", twice"
n3,Sheep,3974005;999999,Foot-and-mouth disease;,0.25,yes,3974005;999999,3974005=0.25,,3974005; 999999
EOF
        cmp "$tmp/ranked.csv" "$tmp/want.csv" || { diff "$tmp/want.csv" "$tmp/ranked.csv" >&2; return 1; }
    }
    check dump_csv_exact csv_exact
    csv_parses() {  # Python's csv module reads back what vet-dump -r says, field for field
        "$dump" -r "$tmp/ranked.preds" >"$tmp/ranked.rec" || return 1
        /usr/bin/python3 - "$tmp/ranked.csv" "$tmp/ranked.rec" <<'EOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
recs = [json.loads(l) for l in open(sys.argv[2])]
assert len(rows) == len(recs), (len(rows), len(recs))
for row, rec in zip(rows, recs):
    assert row["id"] == rec["id"] and row["species"] == rec["species"] and row["text"] == rec["text"], row
    assert row["pred"].split(";") == rec["pred"] and row["gold"] == ";".join(rec["gold"]), row
    assert row["group"] == rec.get("group", ""), row
    ranked = [x.split("=") for x in row["ranked"].split(";")]
    assert [l for l, _ in ranked] == [e["label"] for e in rec["ranked"]], row
    assert all(abs(float(p) - e["p"]) <= 1e-6 * e["p"] for (_, p), e in zip(ranked, rec["ranked"])), row
    assert float(row["p"]) == float(ranked[0][1]) and row["refer"] == ("yes" if rec["ranked"][0]["p"] < 0.5 else "no")
EOF
    }
    check dump_csv_parses csv_parses
    # The table reads back into vet-eval as CSV predictions: the same accuracy as the stream.
    csv_eval_ok() {
        printf '{"id":"a","gold":["1"],"pred":["1"]}\n{"id":"b","gold":["1"],"pred":["2"]}\n{"id":"c","gold":["2"],"pred":["2"]}\n' >"$tmp/scored.jsonl"
        "$mkpreds" "$tmp/scored.jsonl" "$tmp/scored.preds" || return 1
        "$dump" --csv "$tmp/scored.preds" >"$tmp/scored.csv" || return 1
        local a b
        a=$("$VET_BIN/vet-eval" -b 0 "$tmp/scored.preds" | grep '^accuracy') || return 1
        b=$("$VET_BIN/vet-eval" -b 0 "$tmp/scored.csv" | grep '^accuracy') || return 1
        [ "$a" = "$b" ] && grep -q '2 of 3' <<<"$a"
    }
    check dump_csv_into_eval csv_eval_ok
    # The group column carries vet-generate's groups back into vet-eval: its intervals drew the
    # groups whole from the stream, and draw them whole from the table, to the same bounds.
    csv_groups_into_eval() {
        printf '%s\n' '{"id":"a","gold":["1"],"pred":["1"],"group":"g1"}' '{"id":"b","gold":["1"],"pred":["2"],"group":"g1"}' \
            '{"id":"c","gold":["2"],"pred":["2"],"group":"g2"}' '{"id":"d","gold":["2"],"pred":["1"],"group":"g3"}' >"$tmp/grouped.jsonl"
        "$mkpreds" "$tmp/grouped.jsonl" "$tmp/grouped.preds" && "$dump" --csv "$tmp/grouped.preds" >"$tmp/grouped.csv" || return 1
        local a b
        a=$("$VET_BIN/vet-eval" "$tmp/grouped.preds") && b=$("$VET_BIN/vet-eval" "$tmp/grouped.csv") || return 1
        printf '%s\n' "$b" | grep -q 'drawing the 3 groups whole, not the 4 notes one by one' &&
            [ "$(printf '%s\n' "$a" | grep '^accuracy')" = "$(printf '%s\n' "$b" | grep '^accuracy')" ]
    }
    check dump_csv_groups_into_eval csv_groups_into_eval
    csv_unranked() {  # generated, not ranked: p, refer, ranked and term empty
        [ "$("$dump" --csv "$tmp/scored.preds" | sed -n 3p)" = 'b,,2,,,,1,,,' ]
    }
    check dump_csv_unranked csv_unranked
    csv_files() {  # several files make one table: one header row
        "$dump" --csv "$tmp/ranked.preds" "$tmp/scored.preds" >"$tmp/two.csv" || return 1
        [ "$(grep -c '^id,species,' "$tmp/two.csv")" = 1 ] &&
            [ "$(/usr/bin/python3 -c 'import csv,sys; print(len(list(csv.reader(open(sys.argv[1], newline="")))))' "$tmp/two.csv")" = 7 ]
    }
    check dump_csv_files csv_files
    csv_stdin() { "$dump" --csv --codes "$tmp/codes.tsv" --refer-below 0.5 - <"$tmp/ranked.preds" | cmp -s - "$tmp/want.csv"; }
    check dump_csv_stdin csv_stdin
    # A p just below the threshold prints below it: 0.94999999 in 6 digits, 0.95, beside refer=yes
    # at 0.95, read as a contradiction; it keeps the digits that keep it on its side.
    printf '{"id":"e","gold":["A"],"pred":["A"],"ranked":[{"label":"A","p":0.94999999},{"label":"B","p":0.05000001}]}\n' >"$tmp/edge.jsonl"
    csv_p_side() {
        "$mkpreds" "$tmp/edge.jsonl" "$tmp/edge.preds" &&
            "$dump" --csv --refer-below 0.95 "$tmp/edge.preds" | grep -q '^e,,A,,0.94999999,yes,A,A=0.94999999;B=0.05,' &&
            "$dump" --csv "$tmp/edge.preds" | grep -q '^e,,A,,0.95,,A,A=0.95;B=0.05,'
    }
    check dump_csv_p_beside_threshold csv_p_side
    check dump_csv_refer_unranked status_and_msg 1 'scored.preds: record 1 (id a): no "ranked" list' \
        --csv --refer-below 0.9 "$tmp/scored.preds"
    csv_not_predictions() {  # a tokens stream: an error, and no header row left on stdout
        status_and_msg 1 "kind 'tokens', expected 'predictions'" --csv "$tmp/t.zst" &&
            [ -z "$("$dump" --csv "$tmp/t.zst" 2>/dev/null)" ]
    }
    check dump_csv_not_predictions csv_not_predictions
    head -c $(( $(stat -c %s "$tmp/ranked.preds") - 6 )) "$tmp/ranked.preds" >"$tmp/cut.preds"
    check dump_csv_truncated status_and_msg 1 "truncated stream" --csv "$tmp/cut.preds"
    check dump_csv_codes_alone status_and_msg 2 "--codes belongs to --csv" --codes "$tmp/codes.tsv" "$tmp/t.zst"
    check dump_csv_refer_alone status_and_msg 2 "--refer-below belongs to --csv" --refer-below 0.5 "$tmp/t.zst"
    check dump_csv_refer_range status_and_msg 2 "--refer-below" --csv --refer-below 1.5 "$tmp/ranked.preds"
    check dump_csv_kind status_and_msg 2 "--csv prints predictions streams" --csv --kind tokens "$tmp/t.zst"
    printf '3974005\tFMD\n3974005\tother\n' >"$tmp/bad.tsv"
    check dump_csv_bad_codes status_and_msg 1 "bad.tsv:2" --csv --codes "$tmp/bad.tsv" "$tmp/ranked.preds"
    # Numbers as the stream holds them: a p of 16 digits whole (9 cut it below itself, under the
    # threshold vet-eval --fit-threshold writes from it), short ones short.
    printf '{"gold":["A"],"pred":["A"],"ranked":[{"label":"A","p":0.3732278091502738,"logp":-0.1},{"label":"B","p":0.1}]}\n' \
        >"$tmp/digits.jsonl"
    "$mkpreds" "$tmp/digits.jsonl" "$tmp/digits.preds" || exit 1
    check dump_numbers_whole bash -c "\"$dump\" -r \"$tmp/digits.preds\" | grep -qF '\"ranked\":[{\"label\":\"A\",\"p\":0.3732278091502738,\"logp\":-0.1},{\"label\":\"B\",\"p\":0.1}]'"
fi

# Standard output that cannot be written: exit 3, one line that gives the reason, as every other
# program's does (it said only "write failed").
if [ -w /dev/full ]; then
    "$dump" "$tmp/t.zst" >/dev/full 2>"$tmp/err"; st=$?
    check dump_stdout_full_says_why bash -c "[ $st = 3 ] && [ \$(wc -l <'$tmp/err') = 1 ] &&
        grep -q '^vet-dump: <stdout>: write failed: No space left on device' '$tmp/err'"
fi

help_ok() {
    local man flags
    man=$(sed 's/\\-/-/g' "$VET_TOP/man/vet-dump.1")
    flags=$("$dump" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
    for f in $flags; do grep -q -- "$f" <<<"$man" || { echo "man page lacks $f" >&2; return 1; }; done
    [ -n "$flags" ]
}
check dump_help_matches_man help_ok
