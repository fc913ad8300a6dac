# fold.setup.sh — inputs for fold.table: the test splits of a 3-fold cross-validation of the
# fixture's notes decoded (2 new tokens each: only the headers and the counts matter here), fold
# 1's val split decoded, and a fold of a 4-fold one.
for i in 0 1 2; do
    "$B/vet-pack" --fold $i/3 --no-pack --seq-len 256 --out "$X/fold$i" "$X/notes.tok" || return 1
    "$B/vet-generate" -q -m "$X/base" -n 2 "$X/fold$i/test.msgpack.zst" -o "$X/fold-$i.pred" || return 1
done
"$B/vet-generate" -q -m "$X/base" -n 2 "$X/fold1/val.msgpack.zst" -o "$X/fold-1-val.pred" || return 1
"$B/vet-pack" --fold 2/4 --no-pack --seq-len 256 --out "$X/fold4-2" "$X/notes.tok" || return 1
"$B/vet-generate" -q -m "$X/base" -n 2 "$X/fold4-2/test.msgpack.zst" -o "$X/fold4-2.pred" || return 1
