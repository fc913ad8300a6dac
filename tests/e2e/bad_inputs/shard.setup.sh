# shard.setup.sh — inputs for shard.table: the three shards of one vet-generate run over the
# fixture's notes (2 new tokens each: only the headers and the counts matter here), a shard of
# a 4-way split, a shard of another input (fewer notes), and the unsharded stream.
for k in 0 1 2; do
    "$B/vet-generate" -q -m "$X/base" -n 2 --shard $k/3 "$X/notes.tok" -o "$X/shard-$k.pred" || return 1
done
"$B/vet-generate" -q -m "$X/base" -n 2 --shard 1/4 "$X/notes.tok" -o "$X/shard4-1.pred" || return 1
"$B/vet-generate" -q -m "$X/base" -n 2 "$X/notes.tok" -o "$X/unsharded.pred" || return 1
head -n 100 "$X/notes.csv" >"$X/fewer.csv" && "$B/vet-tokenize" -q --spm "$X/tok.model" "$X/fewer.csv" -o "$X/fewer.tok" || return 1
"$B/vet-generate" -q -m "$X/base" -n 2 --shard 2/3 "$X/fewer.tok" -o "$X/shard-other-2.pred" || return 1
# Another input of as many notes (other notes; the same tokenizer): only the input's digest in
# the shards' headers tells its shards from the fixture's.
"$B/vet-synth" -d "$VET_TOP/data/diseases.tsv" -n "$("$B/vet-dump" -c "$X/notes.tok")" --seed 11 -o "$X/same-size.csv" || return 1
"$B/vet-tokenize" -q --spm "$X/tok.model" "$X/same-size.csv" -o "$X/same-size.tok" || return 1
"$B/vet-generate" -q -m "$X/base" -n 2 --shard 1/3 "$X/same-size.tok" -o "$X/shard-same-size-1.pred" || return 1
# Shard 1 as a vet-generate before the digest wrote it (the key taken out), and with a digest
# vet-generate never writes.
mkpreds=$VET_BUILD/tests/helpers/vet-mkpreds
[ -x "$mkpreds" ] || { echo "shard.setup.sh: no $mkpreds (make test-build)" >&2; return 1; }
shard1=$("$B/vet-dump" -H "$X/shard-1.pred" | grep -o '"shard":{[^}]*}')
"$B/vet-dump" -r "$X/shard-1.pred" >"$X/shard-1.jsonl" || return 1
"$mkpreds" --header "{$(echo "$shard1" | sed 's/,"input_digest":"[0-9a-f]*"//')}" "$X/shard-1.jsonl" "$X/shard-undigested-1.pred" || return 1
"$mkpreds" --header "{$(echo "$shard1" | sed 's/"input_digest":"[0-9a-f]*"/"input_digest":"0123456789ABCDEF"/')}" "$X/shard-1.jsonl" "$X/shard-bad-digest-1.pred" || return 1
