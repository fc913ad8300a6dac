#!/usr/bin/env bash
# test_shard.sh — sharded coding (issue 21): vet-generate --shard K/N over the fault fixture's
# 160 notes and micro model (tests/e2e/fault_fixture.sh), 3 shards run at once, merged by
# vet-eval: the same records (by id, in input order) and the same metrics as the unsharded run;
# the headers' shard fields; sampling; a packed input; a missing, twice-given, other-split,
# other-input (also of as many notes: the input's digest) or edited shard refused with the shard
# named; streams without the digest (an older vet-generate) merged as before; an input replaced
# between the count and the decoding refused; an input the unsharded run refuses
# failing every shard alike; --shard's usage errors; and both fan-outs of
# pipelines/ (shard-parallel.sh through xargs -P, and GNU parallel when installed;
# shard-slurm.sbatch run as three array tasks outside Slurm).
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
VET_BUILD=${VET_BUILD:-$VET_TOP/build/rel}
GEN=$VET_BIN/vet-generate EVAL=$VET_BIN/vet-eval DUMP=$VET_BIN/vet-dump MKPREDS=$VET_BUILD/tests/helpers/vet-mkpreds
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-shard.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1  # a micro model: threads cost more than they save, and shards run side by side

ok() { echo "ok $1"; }
notok() { echo "not ok $1"; [ $# -gt 1 ] && echo "  $2" >&2; return 0; }
check() { if eval "$2"; then ok "$1"; else notok "$1" "${3:-$2}"; fi; }

. "$VET_TOP/tests/e2e/fault_fixture.sh"
fx=$tmp/fx
mkdir -p "$fx" && make_fixture "$fx" || { notok setup "make_fixture failed"; exit 1; }
# Constrained decoding makes every note answer with labels of the table: metrics that are not all 0.
gen() { "$GEN" -q -m "$fx/base" -n 24 -b 4 --constrain "$VET_TOP/data/codes.tsv" "$@"; }
records() { "$DUMP" -r "$1" | sed 's/"ms":[0-9.e+-]*,//'; }  # without the wall time
ids() { "$DUMP" -r "$1" | grep -o '"id":"[^"]*"'; }
metrics() { grep -v '"input"' "$1"; }  # the JSON report less the input's name

gen "$fx/notes.tok" -o "$tmp/all.pred" || { notok setup "the unsharded run failed"; exit 1; }
"$EVAL" -q --json "$tmp/all.json" "$tmp/all.pred" || { notok setup "vet-eval of the unsharded run failed"; exit 1; }
total=$("$DUMP" -c "$tmp/all.pred")

# --- 3 shards at once, then one vet-eval ---------------------------------------------------------
for k in 0 1 2; do gen --shard $k/3 "$fx/notes.tok" -o "$tmp/s$k.pred" & done
wait
hdr_ok=1 sum=0
digest() { "$DUMP" -H "$1" | grep -o '"input_digest":"[0-9a-f]*"' | cut -d'"' -f4; }
for k in 0 1 2; do
    "$DUMP" -H "$tmp/s$k.pred" | grep -q "\"shard\":{\"k\":$k,\"n\":3,\"input_notes\":$total,\"input_digest\":\"[0-9a-f]\{16\}\"}" || hdr_ok=0
    [ "$(digest "$tmp/s$k.pred")" = "$(digest "$tmp/s0.pred")" ] || hdr_ok=0  # one input: one digest
    c=$("$DUMP" -c "$tmp/s$k.pred"); sum=$((sum + c))
    [ "$c" = $(((total - k + 2) / 3)) ] || hdr_ok=0  # round-robin: notes k, k+3, ...
done
check shard-headers '[ $hdr_ok = 1 ] && [ $sum = $total ] && ! "$DUMP" -H "$tmp/all.pred" | grep -q "\"shard\""' \
    "headers or counts wrong (sum $sum of $total): $("$DUMP" -H "$tmp/s1.pred")"

# Shard k's i-th record is note k + 3i: interleaved back, the ids are the input's order, and
# every record (text, labels, generated ids) equals the unsharded one.
paste -d '\n' <(ids "$tmp/s0.pred") <(ids "$tmp/s1.pred") <(ids "$tmp/s2.pred") | grep . >"$tmp/merged.ids"
check shard-records '[ "$(cat "$tmp/merged.ids")" = "$(ids "$tmp/all.pred")" ] && [ "$(for k in 0 1 2; do records "$tmp/s$k.pred"; done | sort)" = "$(records "$tmp/all.pred" | sort)" ]' \
    "the shards' records differ from the unsharded run's"

"$EVAL" -q --json "$tmp/merged.json" "$tmp/s2.pred" "$tmp/s0.pred" "$tmp/s1.pred"; rc=$?
"$EVAL" "$tmp/s0.pred" "$tmp/s1.pred" "$tmp/s2.pred" | tail -n +2 >"$tmp/merged.table"
check shard-metrics '[ $rc = 0 ] && [ "$(metrics "$tmp/merged.json")" = "$(metrics "$tmp/all.json")" ] && grep -q "\"accuracy\": 0\.[0-9]*[1-9]" "$tmp/all.json" && [ "$(cat "$tmp/merged.table")" = "$("$EVAL" "$tmp/all.pred" | tail -n +2)" ]' \
    "rc=$rc: $(diff <(metrics "$tmp/merged.json") <(metrics "$tmp/all.json") | head -5)"

. "$VET_TOP/tests/e2e/eval_refused.sh"  # refused WANT_STATUS SUBSTRING ARGS...; read_twice PROGRAM ARGS...
read_twice "$EVAL" -q "$tmp/s2.pred" "$tmp/s0.pred" "$tmp/s1.pred"; rc=$?
if [ $rc = 2 ]; then echo "skip shard-headers-read-once: no strace"
else check shard-headers-read-once '[ $rc = 0 ] && read_twice "$DUMP" --csv "$tmp/s2.pred" "$tmp/s0.pred" "$tmp/s1.pred"'; fi

# Sampling: each note draws from a stream seeded by its place in the whole input, so a shard
# samples what the unsharded run samples.
samp() { "$GEN" -q -m "$fx/base" -n 12 -b 3 --temperature 1.5 --top-k 40 --seed 5 "$@"; }
samp "$fx/notes.tok" -o "$tmp/sall.pred"
for k in 0 1 2; do samp --shard $k/3 "$fx/notes.tok" -o "$tmp/ss$k.pred" & done
wait
check shard-sampling '[ "$(for k in 0 1 2; do records "$tmp/ss$k.pred"; done | sort)" = "$(records "$tmp/sall.pred" | sort)" ] && [ "$(records "$tmp/sall.pred")" != "$(records "$tmp/all.pred")" ]' \
    "sampled shards differ from the sampled unsharded run"

# vet-dump --csv of a set of shards: the unsharded run's table, byte for byte (rows in the input's
# order), whatever order the files come in; an incomplete set or a shard with a record too many
# is refused; shards among plain streams are printed file after file, as any streams are.
"$DUMP" --csv "$tmp/all.pred" >"$tmp/all.csv"
"$DUMP" --csv "$tmp/s2.pred" "$tmp/s0.pred" "$tmp/s1.pred" >"$tmp/merged.csv"; rc1=$?
"$DUMP" --csv "$tmp/s0.pred" "$tmp/s2.pred" >/dev/null 2>"$tmp/csv.err"; rc2=$?
"$DUMP" --csv "$tmp/s0.pred" "$tmp/all.pred" >"$tmp/mixed.csv"; rc3=$?
check shard-csv '[ "$rc1$rc2$rc3" = 010 ] && cmp -s "$tmp/merged.csv" "$tmp/all.csv" && grep -q "shard 1/3 is missing" "$tmp/csv.err" && [ "$(wc -l <"$tmp/mixed.csv")" = $(( $(wc -l <"$tmp/all.csv") + $("$DUMP" -c "$tmp/s0.pred") )) ]' \
    "rc=$rc1$rc2$rc3: $(diff "$tmp/merged.csv" "$tmp/all.csv" | head -4) $(cat "$tmp/csv.err")"

# --compare with shards on either side: the same comparison as of the unsharded streams (the
# JSON's "compare" less the other's name), and the table names the set.
cmp() { /usr/bin/python3 -c 'import json, sys; c = json.load(open(sys.argv[1]))["compare"]; c.pop("other"); print(json.dumps(c, sort_keys=True))' "$1"; }
"$EVAL" -q --json "$tmp/c-plain.json" "$tmp/all.pred" --compare "$tmp/sall.pred"; rc1=$?
"$EVAL" -q --json "$tmp/c-other.json" "$tmp/all.pred" --compare "$tmp/ss1.pred" --compare "$tmp/ss0.pred" --compare "$tmp/ss2.pred"; rc2=$?
"$EVAL" -q --json "$tmp/c-this.json" "$tmp/s0.pred" "$tmp/s1.pred" "$tmp/s2.pred" --compare "$tmp/sall.pred"; rc3=$?
"$EVAL" "$tmp/all.pred" --compare "$tmp/ss0.pred" --compare "$tmp/ss1.pred" --compare "$tmp/ss2.pred" >"$tmp/c.table"; rc4=$?
"$EVAL" -q "$tmp/all.pred" --compare "$tmp/ss0.pred" --compare "$tmp/ss1.pred" 2>"$tmp/c.err"; rc5=$?
check shard-compare '[ "$rc1$rc2$rc3$rc4$rc5" = 00001 ] && [ "$(cmp "$tmp/c-other.json")" = "$(cmp "$tmp/c-plain.json")" ] && [ "$(cmp "$tmp/c-this.json")" = "$(cmp "$tmp/c-plain.json")" ] && grep -q "\"other\": \"$tmp/ss1.pred and 2 more shards\"" "$tmp/c-other.json" && grep -q "compared note by note with .*and 2 more shards" "$tmp/c.table" && grep -q "shard 2/3 is missing" "$tmp/c.err"' \
    "rc=$rc1$rc2$rc3$rc4$rc5: $(diff <(cmp "$tmp/c-other.json") <(cmp "$tmp/c-plain.json") | head -4) $(cat "$tmp/c.err")"

# --- a packed input: shards of its notes (samples), not of its rows ------------------------------
for k in 0 1; do gen --shard $k/2 "$fx/rows.tok" -o "$tmp/p$k.pred" || echo "gen p$k failed" >&2; done
"$GEN" -q -m "$fx/base" -n 24 -b 4 --constrain "$VET_TOP/data/codes.tsv" "$fx/rows.tok" -o "$tmp/pall.pred"
"$EVAL" -q --json "$tmp/p.json" "$tmp/p0.pred" "$tmp/p1.pred"; rc=$?
"$EVAL" -q --json "$tmp/pall.json" "$tmp/pall.pred"
check shard-packed '[ $rc = 0 ] && "$DUMP" -H "$tmp/p1.pred" | grep -q "\"input_notes\":$("$DUMP" -c "$tmp/pall.pred"),\"input_digest\":" && [ "$(metrics "$tmp/p.json")" = "$(metrics "$tmp/pall.json")" ]' \
    "rc=$rc $("$DUMP" -H "$tmp/p1.pred" | grep -o '"shard":{[^}]*}')"

# --- an incomplete or overlapping set is refused, naming the shard -------------------------------
check shard-missing 'refused 1 "s0.pred: shard 2/3 is missing" "$tmp/s0.pred" "$tmp/s1.pred" && refused 1 "shard 0/3 is missing" "$tmp/s2.pred"'
check shard-twice 'refused 1 "shard 1/3 appears twice ($tmp/s1.pred and $tmp/s1.pred)" "$tmp/s0.pred" "$tmp/s1.pred" "$tmp/s1.pred" "$tmp/s2.pred"'
"$GEN" -q -m "$fx/base" -n 2 --shard 3/4 "$fx/notes.tok" -o "$tmp/q3.pred"
head -n 100 "$fx/notes.csv" >"$tmp/fewer.csv" && "$VET_BIN/vet-tokenize" -q --spm "$fx/tok.model" "$tmp/fewer.csv" -o "$tmp/fewer.tok"
"$GEN" -q -m "$fx/base" -n 2 --shard 1/3 "$tmp/fewer.tok" -o "$tmp/f1.pred"
# Two inputs of as many notes (160 other notes, and the same notes in another order): the digest
# tells their shards apart, where the count and the fold cannot.
"$VET_BIN/vet-synth" -d "$VET_TOP/data/diseases.tsv" -n 160 --seed 11 -o "$tmp/other.csv"
"$VET_BIN/vet-tokenize" -q --spm "$fx/tok.model" "$tmp/other.csv" -o "$tmp/other.tok"
{ head -n 1 "$fx/notes.csv"; tail -n +2 "$fx/notes.csv" | tac; } >"$tmp/reversed.csv"
"$VET_BIN/vet-tokenize" -q --spm "$fx/tok.model" "$tmp/reversed.csv" -o "$tmp/reversed.tok"
"$GEN" -q -m "$fx/base" -n 2 --shard 1/3 "$tmp/other.tok" -o "$tmp/o1.pred"
"$GEN" -q -m "$fx/base" -n 2 --shard 2/3 "$tmp/reversed.tok" -o "$tmp/r2.pred"
"$DUMP" --csv "$tmp/s0.pred" "$tmp/o1.pred" "$tmp/s2.pred" >/dev/null 2>"$tmp/o.err"; rc=$?
check shard-other-input-same-size '[ "$("$DUMP" -c "$tmp/other.tok")" = $total ] && [ -n "$(digest "$tmp/o1.pred")" ] && [ "$(digest "$tmp/o1.pred")" != "$(digest "$tmp/s0.pred")" ] && [ "$(digest "$tmp/r2.pred")" != "$(digest "$tmp/s0.pred")" ] && refused 1 "o1.pred: shard 1/3 of an input whose digest is $(digest "$tmp/o1.pred"), but $tmp/s0.pred is a shard of one whose digest is $(digest "$tmp/s0.pred"): shards of different inputs of $total notes each" "$tmp/s0.pred" "$tmp/o1.pred" "$tmp/s2.pred" && refused 1 "shards of different inputs" "$tmp/s0.pred" "$tmp/s1.pred" "$tmp/r2.pred" && [ $rc = 1 ] && grep -q "o1.pred: shard 1/3 of an input whose digest" "$tmp/o.err"' \
    "rc=$rc $(cat "$tmp/o.err")"
# The input replaced between its two reads (a file renamed over it while the run goes): a shim
# (LD_PRELOAD, its fopen) hands vet-generate reversed.tok at its second open of the input, the
# count's, while the decoding reads the file opened first. The same 160 notes in another order:
# the digests differ, and the run fails naming both, with nothing written.
cat >"$tmp/swap.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int opened;  // opens of SWAP_PATH so far
static FILE *swap_open(const char *path, const char *mode, const char *sym) {
    FILE *(*next)(const char *, const char *) = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, sym);
    const char *watch = getenv("SWAP_PATH"), *with = getenv("SWAP_WITH");
    if (watch && with && strcmp(path, watch) == 0 && ++opened == 2) path = with;
    return next(path, mode);
}
FILE *fopen(const char *path, const char *mode) { return swap_open(path, mode, "fopen"); }
FILE *fopen64(const char *path, const char *mode) { return swap_open(path, mode, "fopen64"); }
C
if cc -shared -fPIC -o "$tmp/swap.so" "$tmp/swap.c" -ldl 2>"$tmp/cc.err"; then
    # (ASan wants its runtime first among the libraries; a shim that only passes fopen on may precede it)
    SWAP_PATH="$fx/notes.tok" SWAP_WITH="$tmp/reversed.tok" LD_PRELOAD="$tmp/swap.so" \
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
        "$GEN" -q -m "$fx/base" -n 2 --shard 0/3 "$fx/notes.tok" -o "$tmp/swapped.pred" 2>"$tmp/swap.err"; rc=$?
    check shard-input-replaced-between-reads '[ $rc = 1 ] && grep -q "notes.tok: $total notes (digest [0-9a-f]\{16\}) when counted, $total (digest [0-9a-f]\{16\}) when decoded: the input changed while it was read" "$tmp/swap.err" && [ ! -e "$tmp/swapped.pred" ] && [ -z "$(ls "$tmp"/swapped.pred.* 2>/dev/null)" ]' \
        "rc=$rc: $(cat "$tmp/swap.err")"
else
    echo "skip shard-input-replaced-between-reads: no C compiler for the shim ($(head -n 1 "$tmp/cc.err"))"
fi
# Streams of a vet-generate before the digest (the same records, the key taken out of the header):
# a set where none has it merges as before, one where some have it is refused, naming both.
if [ -x "$MKPREDS" ]; then
    for k in 0 1 2; do
        "$DUMP" -r "$tmp/s$k.pred" | "$MKPREDS" --header "{\"shard\":{\"k\":$k,\"n\":3,\"input_notes\":$total}}" - "$tmp/old$k.pred"
    done
    "$EVAL" -q --json "$tmp/old.json" "$tmp/old0.pred" "$tmp/old1.pred" "$tmp/old2.pred"; rc=$?
    check shard-without-digest '[ $rc = 0 ] && [ "$(metrics "$tmp/old.json")" = "$(metrics "$tmp/all.json")" ] && refused 1 "s0.pred: shard 0/3 names its input'"'"'s digest ($(digest "$tmp/s0.pred")), but $tmp/old1.pred (shard 1/3) names none" "$tmp/s0.pred" "$tmp/old1.pred" "$tmp/s2.pred" && refused 1 "s2.pred: shard 2/3 names its input'"'"'s digest" "$tmp/old0.pred" "$tmp/old1.pred" "$tmp/s2.pred"' \
        "rc=$rc: $(diff <(metrics "$tmp/old.json") <(metrics "$tmp/all.json") | head -4)"
else
    echo "skip shard-without-digest: $MKPREDS not built (make helpers)"
fi
check shard-mismatch 'refused 1 "q3.pred: shard 3/4, but" "$tmp/s0.pred" "$tmp/s1.pred" "$tmp/q3.pred" && refused 1 "shards of different inputs" "$tmp/s0.pred" "$tmp/f1.pred" "$tmp/s2.pred" && refused 1 "all.pred: not a shard" "$tmp/s0.pred" "$tmp/all.pred" && refused 1 "not a shard" "$tmp/all.pred" "$tmp/all.pred"'

# A header that is not a shard's, or a stream that does not hold its shard's records (vet-mkpreds
# writes streams with any header).
if [ -x "$MKPREDS" ]; then
    printf '{"id":"a","gold":["1"],"pred":["1"]}\n{"id":"b","gold":["2"],"pred":["1"]}\n' >"$tmp/two.jsonl"
    "$MKPREDS" --header '{"shard":{"k":0,"n":1,"input_notes":3}}' "$tmp/two.jsonl" "$tmp/short.pred"
    "$MKPREDS" --header '{"shard":{"k":4,"n":3,"input_notes":3}}' "$tmp/two.jsonl" "$tmp/badk.pred"
    "$MKPREDS" --header '{"shard":{"k":0,"n":2,"input_notes":3}}' "$tmp/two.jsonl" "$tmp/h0.pred"
    "$MKPREDS" --header '{"shard":{"k":1,"n":2,"input_notes":3}}' "$tmp/two.jsonl" "$tmp/h1.pred"
    "$DUMP" --csv "$tmp/h0.pred" "$tmp/h1.pred" >"$tmp/h.csv" 2>"$tmp/h.err"; rc_csv=$?
    check shard-edited 'refused 1 "shard 0/1 has 2 records, want 3" "$tmp/short.pred" && refused 1 "shard 4/3 of 3 notes is not a shard" "$tmp/badk.pred" && refused 1 "h1.pred: shard 1/2 has 2 records, want 1" "$tmp/h0.pred" "$tmp/h1.pred" && [ $rc_csv = 1 ] && grep -q "h1.pred: shard 1/2 has 2 records, want 1" "$tmp/h.err"'
    # Ids are unique across the set: a repeated one names both streams and records.
    printf '{"id":"a","gold":["1"],"pred":["1"]}\n' >"$tmp/a.jsonl"
    "$MKPREDS" --header '{"shard":{"k":1,"n":2,"input_notes":2}}' "$tmp/a.jsonl" "$tmp/dup1.pred"
    "$MKPREDS" --header '{"shard":{"k":0,"n":2,"input_notes":2}}' "$tmp/a.jsonl" "$tmp/dup0.pred"
    check shard-duplicate-id 'refused 1 "dup1.pred: record 1: id '"'"'a'"'"' appears twice (first at $tmp/dup0.pred record 1)" "$tmp/dup0.pred" "$tmp/dup1.pred"'
else
    echo "skip shard-edited: $MKPREDS not built (make helpers)"
    echo "skip shard-duplicate-id: $MKPREDS not built (make helpers)"
fi

# --- an input the unsharded run refuses (a prompt token outside the vocabulary at note 5) fails
# every shard alike, before anything is written: no shard's count can disagree with the others'
MKTOK=$VET_BUILD/tests/helpers/vet-mktokens
if [ -x "$MKTOK" ]; then
    for i in 1 2 3 4 5 6 7; do
        tok=$([ $i = 5 ] && echo 99999 || echo 5)
        echo "{\"id\":\"b$i\",\"species\":\"\",\"codes\":[],\"note\":\"n\",\"prompt\":[1,$tok,6],\"response\":[7,2]}"
    done | "$MKTOK" --sha256 "$(sha256sum "$fx/tok.model" | cut -c1-64)" --vocab 512 -o "$tmp/bad.tok"
    "$GEN" -q -m "$fx/base" -n 2 "$tmp/bad.tok" -o "$tmp/bad.pred" 2>"$tmp/err.all"; rcs=$?
    for k in 0 1 2; do
        "$GEN" -q -m "$fx/base" -n 2 --shard $k/3 "$tmp/bad.tok" -o "$tmp/bad$k.pred" 2>"$tmp/err$k"; rcs="$rcs$?"
    done
    check shard-bad-input '[ "$rcs" = 1111 ] && grep -q "record 5: note b5: prompt token 99999" "$tmp/err0" && grep -q "record 5" "$tmp/err2" && [ -z "$(ls "$tmp"/bad.pred "$tmp"/bad[0-9].pred 2>/dev/null)" ]' \
        "rc=$rcs: $(cat "$tmp/err.all" "$tmp/err0")"
else
    echo "skip shard-bad-input: $MKTOK not built (make helpers)"
fi

# --- --shard's usage errors ---------------------------------------------------------------------
bad_flag() {  # bad_flag VALUE SUBSTRING [INPUT]
    "$GEN" -q -m "$fx/base" --shard "$1" "${3:-$fx/notes.tok}" -o "$tmp/x.pred" 2>"$tmp/err" </dev/null
    local rc=$?
    [ $rc = 2 ] && grep -qF -- "$2" "$tmp/err" && [ ! -e "$tmp/x.pred" ] || { echo "  --shard $1: rc=$rc: $(cat "$tmp/err")" >&2; return 1; }
}
check shard-usage 'bad_flag 3/3 "--shard K: '"'"'3'"'"' is not an integer in [0, 2]" && bad_flag 7 "want K/N" && bad_flag 0/0 "--shard N" && bad_flag -1/2 "--shard K" && bad_flag 1/2/3 "--shard N" && bad_flag "" "want K/N" && bad_flag 0/2 "not stdin" - && bad_flag 0/2 "regular file, not a pipe" <(cat "$fx/notes.tok")'

# --- pipelines/: shard-parallel.sh (xargs -P 3; GNU parallel when installed), shard-slurm.sbatch --
args=(-m "$fx/base" -n 24 -b 4 --constrain "$VET_TOP/data/codes.tsv")
VET_BIN=$VET_BIN "$VET_TOP/pipelines/shard-parallel.sh" -r xargs -j 3 3 "$fx/notes.tok" "$tmp/px" "${args[@]}" >"$tmp/px.out" 2>&1; rc=$?
check pipeline-xargs '[ $rc = 0 ] && [ "$(metrics "$tmp/px/metrics.json")" = "$(metrics "$tmp/all.json")" ] && [ "$(records "$tmp/px/shard-1-of-3.pred")" = "$(records "$tmp/s1.pred")" ]' \
    "rc=$rc: $(head -c 400 "$tmp/px.out")"
# -c: new notes coded into one table instead of scored: a row per note in the input's order, the
# terms of the table, no metrics.json.
VET_BIN=$VET_BIN "$VET_TOP/pipelines/shard-parallel.sh" -r xargs -c "$VET_TOP/data/codes.tsv" 3 "$fx/notes.tok" "$tmp/pc" "${args[@]}" >"$tmp/pc.out" 2>&1; rc=$?
table_ok() {
    [ $rc = 0 ] && [ ! -e "$tmp/pc/metrics.json" ] && [ ! -e "$tmp/pc/coded.csv.tmp" ] || return 1
    /usr/bin/python3 - "$tmp/pc/coded.csv" "$VET_TOP/data/codes.tsv" "$("$DUMP" -c "$fx/notes.tok")" "$(ids "$tmp/all.pred" | cut -d'"' -f4)" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
terms = dict(l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if not l.startswith("code\t"))
assert len(rows) == int(sys.argv[3]) and len({r["id"] for r in rows}) == len(rows), len(rows)
assert [r["id"] for r in rows] == sys.argv[4].split(), "not in the input's order"
assert all(r["term"] == ";".join(terms.get(p, "") for p in r["pred"].split(";")) for r in rows if r["pred"]), rows
EOF
}
check pipeline-table table_ok "rc=$rc: $(head -c 400 "$tmp/pc.out")"
# The table's vet-dump failing (a codes file it cannot read): status 1, no table left behind.
VET_BIN=$VET_BIN "$VET_TOP/pipelines/shard-parallel.sh" -r xargs -c "$tmp/nosuch.tsv" 2 "$fx/notes.tok" "$tmp/pcbad" "${args[@]}" >"$tmp/pcbad.out" 2>&1; rc=$?
check pipeline-table-fails '[ $rc = 1 ] && [ ! -e "$tmp/pcbad/coded.csv" ] && [ ! -e "$tmp/pcbad/coded.csv.tmp" ] && grep -q "nosuch.tsv: cannot open the codes file" "$tmp/pcbad.out"' "rc=$rc: $(cat "$tmp/pcbad.out")"
VET_BIN=$VET_BIN "$VET_TOP/pipelines/shard-parallel.sh" -r xargs 2 "$fx/notes.tok" "$tmp/pbad" -m "$tmp/nosuch" >/dev/null 2>&1; rc=$?
check pipeline-shard-fails '[ $rc = 1 ] && [ ! -e "$tmp/pbad/metrics.json" ]' "rc=$rc"
if command -v parallel >/dev/null 2>&1 && parallel --version 2>/dev/null | grep -q GNU; then
    VET_BIN=$VET_BIN "$VET_TOP/pipelines/shard-parallel.sh" -r parallel 3 "$fx/notes.tok" "$tmp/pp" "${args[@]}" >"$tmp/pp.out" 2>&1; rc=$?
    check pipeline-parallel '[ $rc = 0 ] && [ "$(metrics "$tmp/pp/metrics.json")" = "$(metrics "$tmp/all.json")" ]' "rc=$rc: $(head -c 400 "$tmp/pp.out")"
else
    echo "skip pipeline-parallel: GNU parallel is not installed"
fi
# Odd paths reach vet-generate as they are: a {} (or GNU parallel's {.}, {/}) in OUTDIR or in an
# argument is no replacement string, and an INPUT starting with - is a file, not options.
odd="odd {} {.} {/} it's \$x"
cp "$fx/notes.tok" "$tmp/-notes.tok" && cp "$VET_TOP/data/codes.tsv" "$tmp/codes {}.tsv" || exit 1
odd_args=(-m "$fx/base" -n 24 -b 4 --constrain "codes {}.tsv")
odd_ok() {  # odd_ok RUNNER INPUT OUTDIR: run from $tmp, the unsharded run's metrics
    (cd "$tmp" && VET_BIN=$VET_BIN "$VET_TOP/pipelines/shard-parallel.sh" -r "$1" 2 "$2" "$3" "${odd_args[@]}") >"$tmp/odd.out" 2>&1 ||
        { echo "  -r $1 $2 '$3': rc=$?: $(head -c 400 "$tmp/odd.out")" >&2; return 1; }
    [ "$(ls "$tmp/$3" | tr '\n' ' ')" = "metrics.json shard-0-of-2.pred shard-1-of-2.pred " ] &&
        [ "$(metrics "$tmp/$3/metrics.json")" = "$(metrics "$tmp/all.json")" ] || { echo "  -r $1 $2 '$3': $(ls "$tmp")" >&2; return 1; }
}
runners=xargs
command -v parallel >/dev/null 2>&1 && parallel --version 2>/dev/null | grep -q GNU && runners="xargs parallel"
odd_all() {
    local r
    for r in $runners; do odd_ok "$r" "$fx/notes.tok" "$odd $r" || return 1; done
    odd_ok xargs -notes.tok dash-input
}
check pipeline-odd-paths odd_all
for k in 0 1 2; do
    SLURM_ARRAY_TASK_ID=$k SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=2 SLURM_ARRAY_TASK_COUNT=3 SLURM_CPUS_PER_TASK=1 \
        VET_BIN=$VET_BIN bash "$VET_TOP/pipelines/shard-slurm.sbatch" "$fx/notes.tok" "$tmp/sl" "${args[@]}" &
done
wait
"$EVAL" -q --json "$tmp/sl.json" "$tmp"/sl/shard-*-of-3.pred; rc=$?
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=2 SLURM_ARRAY_TASK_COUNT=2 \
    bash "$VET_TOP/pipelines/shard-slurm.sbatch" "$fx/notes.tok" "$tmp/sl2" "${args[@]}" 2>"$tmp/err"; rc2=$?
check pipeline-slurm '[ $rc = 0 ] && [ "$(metrics "$tmp/sl.json")" = "$(metrics "$tmp/all.json")" ] && [ $rc2 = 2 ] && grep -q "the array must be 0-M" "$tmp/err"' \
    "rc=$rc rc2=$rc2 $(cat "$tmp/err")"
# An INPUT starting with - is a file; SLURM_ARRAY_TASK_MAX unset (and no VET_SHARDS) is a usage
# error (2) with a message, not bash's "unbound variable" (1).
(cd "$tmp" && SLURM_ARRAY_TASK_ID=0 VET_SHARDS=1 VET_BIN=$VET_BIN bash "$VET_TOP/pipelines/shard-slurm.sbatch" -notes.tok "$tmp/sl3" "${args[@]}"); rc=$?
SLURM_ARRAY_TASK_ID=0 bash "$VET_TOP/pipelines/shard-slurm.sbatch" "$fx/notes.tok" "$tmp/sl4" "${args[@]}" 2>"$tmp/err"; rc2=$?
check pipeline-slurm-usage '[ $rc = 0 ] && [ -s "$tmp/sl3/shard-0-of-1.pred" ] && [ $rc2 = 2 ] && grep -q "SLURM_ARRAY_TASK_MAX is not set" "$tmp/err" && [ ! -e "$tmp/sl4" ]' \
    "rc=$rc rc2=$rc2 $(cat "$tmp/err")"

# --- the man pages say it ------------------------------------------------------------------------
check manpage 'grep -q "shard" "$VET_TOP/man/vet-generate.1" && grep -q "input_notes" "$VET_TOP/man/vet-generate.1" && grep -q "input_digest" "$VET_TOP/man/vet-generate.1" && grep -q "is missing" "$VET_TOP/man/vet-eval.1" && grep -q "digest" "$VET_TOP/man/vet-eval.1" && grep -q "input_notes" "$VET_TOP/docs/formats.md" && grep -q "input_digest" "$VET_TOP/docs/formats.md" && grep -q "pipelines/" "$VET_TOP/README.md"'
