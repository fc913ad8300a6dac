# text.setup.sh — sourced by test_bad_inputs.sh before text.table: the inputs of the text and
# data side (line ends, devices and unbounded reads, duplicates, outputs that name an input),
# made in $X from the fixture. Needs the test helper vet-mktokens ($VET_BUILD/tests/helpers).
mk=${VET_BUILD:-$VET_TOP/build/rel}/tests/helpers/vet-mktokens
[ -x "$mk" ] || { echo "text.setup.sh: no $mk (make helpers)" >&2; return 1; }
mkdir -p "$X/text" && T=$X/text

# Line ends: CR alone (an old Mac, some Excel exports), counted as lines everywhere.
printf 'id,species,note,codes\r' >"$T/cr-header-only.csv"
printf 'id,species,note,codes\n' >"$T/header-only.csv"
printf 'id,note\r1,fine note\r2,"bad"x\r3,ok\r' >"$T/cr-bad-quote.csv"
printf 'id,note\r\n1, \r2,\n' >"$T/all-empty-notes.csv"
printf '[]\n' >"$T/empty-array.json"
printf '\n\r\n\r' >"$T/blank.jsonl"
printf 'id,species,note,species\n1,goat,fever,sheep\n' >"$T/dup-columns.csv"
{ head -c 70000 /dev/zero | tr '\0' ','; printf 'note\n'; } >"$T/wide-header.csv"
cp "$X/notes.csv" "$T/self.csv" && ln -f "$T/self.csv" "$T/self-link.csv"

# vet-pack: a whole stream with no record, and headers whose vocab_size would disable the range check.
"$mk" -o "$T/empty.tok" </dev/null || return 1
rec='{"id":"1","species":"goat","codes":["1"],"note":"n","prompt":[1,5],"response":[7,2]}'
echo "$rec" | "$mk" --vocab -1 -o "$T/vocab-neg.tok" || return 1
echo "$rec" | "$mk" --vocab 0 -o "$T/vocab-zero.tok" || return 1
echo "$rec" | "$mk" --vocab 4294967296 -o "$T/vocab-huge.tok" || return 1
cp "$X/notes.tok" "$T/self.tok"

# vet-eval: ids twice (CSV with CR line ends, JSON lines), column names twice.
printf 'id,gold,pred\r1,a,a\r2,b,b\r1,a,b\r' >"$T/preds-dup-id-cr.csv"
printf '{"id":"x","gold":["a"],"pred":["a"]}\n{"id":"x","gold":["b"],"pred":["a"]}\n' >"$T/preds-dup-id.jsonl"
printf 'id,gold,pred,gold\n1,a,a,b\n' >"$T/preds-dup-col.csv"
printf 'id,gold,Gold,pred\n1,a,a,b\n' >"$T/preds-dup-col-case.csv"
printf 'id,gold,pred\r' >"$T/preds-header-only.csv"
printf 'id,gold,pred\n1,a,a\n' >"$T/preds.csv"

# vet-synth: a table to be overwritten.
cp "$VET_TOP/data/diseases.tsv" "$T/diseases.tsv"
