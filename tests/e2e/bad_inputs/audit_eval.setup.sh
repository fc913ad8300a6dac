# audit_eval.setup.sh — inputs for audit_eval.table: predictions streams whose headers claim
# shards and folds that do not fit together (written by vet-mkpreds from JSON lines, so each
# header says exactly what the case needs), files whose notes are grouped only in part, and a
# tokens stream of three notes to deal into more folds than they fill.
mkdir -p "$X/audit_eval" && A=$X/audit_eval
mkpreds=$VET_BUILD/tests/helpers/vet-mkpreds
[ -x "$mkpreds" ] || { echo "audit_eval.setup.sh: no $mkpreds (make test-build)" >&2; return 1; }
# preds N FIRST-ID HEADER OUT: a stream of N notes (ids FIRST-ID.., each right, one group each).
preds() {
    local i
    for i in $(seq "$2" $(($2 + $1 - 1))); do
        printf '{"id":"n%d","gold":["A"],"pred":["A"],"group":"g%d"}\n' "$i" "$i"
    done >"$A/recs.jsonl"
    "$mkpreds" --header "$3" "$A/recs.jsonl" "$A/$4" || return 1
}
fold() {  # I K NOTES INPUT-NOTES: a test fold's header
    printf '"fold":{"i":%d,"k":%d,"seed":1,"split":"test","notes":%s,"input_notes":%s}' "$1" "$2" "$3" "$4"
}
# The test splits of a 2-fold cross-validation of 8 notes hold 4 each: shard 0/2 of fold 0's and
# shard 1/2 of fold 1's are the same size, and used to merge into 4 notes of two folds, exit 0.
preds 2 0 "{\"shard\":{\"k\":0,\"n\":2,\"input_notes\":4},$(fold 0 2 4 8)}" fold0-shard0.pred || return 1
preds 2 4 "{\"shard\":{\"k\":1,\"n\":2,\"input_notes\":4},$(fold 1 2 4 8)}" fold1-shard1.pred || return 1
preds 2 4 "{\"shard\":{\"k\":1,\"n\":2,\"input_notes\":4}}" plain-shard1.pred || return 1
# Folds whose notes add up past 2^63 (a signed overflow: UBSan stopped the program).
preds 2 0 "{$(fold 0 2 4611686018427387904 9223372036854775807)}" fold0-huge.pred || return 1
preds 2 2 "{$(fold 1 2 4611686018427387904 9223372036854775807)}" fold1-huge.pred || return 1
# Shards of an input of 2^63 - 1 notes: a slot for each was asked for before a record was read.
preds 2 0 '{"shard":{"k":0,"n":2,"input_notes":9223372036854775807}}' shard0-huge.pred || return 1
preds 2 2 '{"shard":{"k":1,"n":2,"input_notes":9223372036854775807}}' shard1-huge.pred || return 1
# A fold of no note among folds that hold some (a 0 of 0 in the folds' mean).
preds 3 0 "{$(fold 0 2 3 3)}" fold0-all.pred || return 1
printf '' >"$A/none.jsonl" && "$mkpreds" --header "{$(fold 1 2 0 3)}" "$A/none.jsonl" "$A/fold1-empty.pred" || return 1
# Notes grouped only in part: one note without a group switched the bootstrap to drawing notes.
printf 'id,gold,pred,group\n1,A,A,g1\n2,A,B,g1\n3,B,B,\n' >"$A/group-part.csv"
printf 'id,gold,pred,group\n1,A,A,g1\n2,A,B,g1\n3,B,B,g3\n' >"$A/group-whole.csv"
printf 'id,gold,pred,group\n1,A,A,g1\n2,A,B,g1\n3,B,B," "\n' >"$A/group-blank.csv"  # a space: no group
printf '{"id":"1","gold":"A","pred":"A"}\n{"id":"2","gold":"B","pred":"B","group":"g2"}\n' >"$A/group-part.jsonl"
printf '{"id":"a","gold":["A"],"pred":["A"],"group":"g"}\n{"id":"b","gold":["A"],"pred":["A"],"group":null}\n' \
    >"$A/group-part-recs.jsonl" && "$mkpreds" "$A/group-part-recs.jsonl" "$A/group-part.pred" || return 1
# Two folds of one cross-validation, one of them from a vet-generate that wrote no groups.
printf '{"id":"p","gold":["A"],"pred":["A"]}\n{"id":"q","gold":["A"],"pred":["A"]}\n' >"$A/nogroup.jsonl"
preds 2 0 "{$(fold 0 2 2 4)}" cv-fold0.pred || return 1
"$mkpreds" --header "{$(fold 1 2 2 4)}" "$A/nogroup.jsonl" "$A/cv-fold1-nogroup.pred" || return 1
# Three notes of distinct text: three folds at most.
head -n 4 "$X/notes.csv" >"$A/three.csv" && "$B/vet-tokenize" -q --spm "$X/tok.model" "$A/three.csv" -o "$A/three.tok" ||
    return 1
# Ids and species of another type (a pandas export writes ids as 1.0): read as the record's
# number and as no species, without a word.
printf '{"id":1.0,"gold":"A","pred":"A"}\n{"id":2.0,"gold":"B","pred":"A"}\n' >"$A/id-float.jsonl"
printf '{"id":"1","species":7,"gold":"A","pred":"A"}\n' >"$A/species-number.jsonl"
printf '{"id":true,"gold":["A"],"pred":["A"]}\n' >"$A/id-bool-rec.jsonl" && "$mkpreds" "$A/id-bool-rec.jsonl" "$A/id-bool.pred" ||
    return 1
printf '{"id":"a","species":["Cow"],"gold":["A"],"pred":["A"]}\n' >"$A/species-list-rec.jsonl" &&
    "$mkpreds" "$A/species-list-rec.jsonl" "$A/species-list.pred" || return 1
# A line without an id is named by its place: beside a line whose id is that number, "id '1'
# appears twice (first at line 1)" pointed at a line that holds no id.
printf '{"gold":"A","pred":"A"}\n{"id":"1","gold":"A","pred":"A"}\n' >"$A/id-numbered.jsonl"
