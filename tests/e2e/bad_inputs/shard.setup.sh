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
