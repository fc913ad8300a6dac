#!/usr/bin/env bash
# test_pack.sh — vet-pack end to end: splits without leakage, rows within seq_len, loss masks,
# determinism, the pre-split mode, every documented failure (message + exit status), and the
# DLO notes through vet-tokenize -> vet-pack -> vet-dump when ../shared is there.
set -u
: "${VET_BIN:?}" "${VET_TOP:?}" "${VET_BUILD:=$VET_TOP/build/rel}" "${VET_SHARED:=}"
PACK="$VET_BIN/vet-pack" DUMP="$VET_BIN/vet-dump" MKTOK="$VET_BUILD/tests/helpers/vet-mktokens"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-pack-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

ok() { echo "ok $1"; }
notok() { echo "not ok $1"; shift; [ $# -gt 0 ] && echo "  $*" >&2; }
skip() { echo "skip $1: $2"; }
check() { local name=$1; shift; if "$@" >/dev/null; then ok "$name"; else notok "$name" "failed: $*"; fi; }

if [ ! -x "$PACK" ] || [ ! -x "$DUMP" ]; then echo "not ok vet-pack built (no $PACK or $DUMP)"; exit 1; fi
if [ ! -x "$MKTOK" ]; then echo "not ok test helper built (no $MKTOK: run make helpers)"; exit 1; fi
PY=$(command -v python3 || true)
if [ -z "$PY" ]; then echo "skip vet-pack e2e: no python3 for the JSON checks"; exit 0; fi

# gen N SEED [MAXPROMPT] > jsonl: synthetic samples. 40 distinct notes written with varying case
# and spacing (the same after normalization), 5 labels, prompt 3..MAXPROMPT tokens (BOS first),
# response 2..6 tokens (EOS last).
gen() {
    "$PY" - "$@" <<'EOF'
import json, random, sys
n, seed = int(sys.argv[1]), int(sys.argv[2])
maxp = int(sys.argv[3]) if len(sys.argv) > 3 else 40
r = random.Random(seed)
for i in range(n):
    k = r.randrange(40)
    note = f"Cow. Fever and cough, case {k}."
    if r.random() < 0.5: note = "  " + note.upper().replace(" ", " \t ") + "\n"
    label = [["1679004"], ["75702008"], ["40214000", "1679004"], ["29600000"], ["198462004"]][k % 5]
    prompt = [1] + [r.randrange(3, 1000) for _ in range(r.randrange(2, maxp))]
    resp = [r.randrange(3, 1000) for _ in range(r.randrange(1, 6))] + [2]
    print(json.dumps(dict(id=f"s{i}", species=r.choice(["Cow", "Goat", ""]), codes=label,
                          note=note, prompt=prompt, response=resp)))
EOF
}

# verify SEQ_LEN LOSS_ON TOKENS_JSONL FILE... : checks every packed row against its samples.
# Prints "samples=N rows=R" on success; errors on stderr and exit 1 otherwise.
verify() {
    "$PY" - "$@" <<'EOF'
import json, re, sys
seq_len, loss_on, src, files = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
samples = {}
for line in open(src):
    s = json.loads(line); samples[s["id"]] = s
def norm(t): return re.sub(r"[ \t\n\v\f\r]+", " ", t.lower()).strip()
seen, where, n_rows, bad = set(), {}, 0, []
import subprocess
for f in files:
    out = subprocess.run([sys.argv[0] if False else "vet-dump", "-r", f], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        row = json.loads(line); n_rows += 1
        tok, tgt, st = row["tokens"], row["targets"], row["starts"]
        if len(tok) > seq_len or len(tok) != len(tgt): bad.append(f"{f}: row length {len(tok)}/{len(tgt)}")
        if not st or st[0] != 0 or st != sorted(set(st)): bad.append(f"{f}: starts {st}")
        for key in ("ids", "species", "codes", "prompt_lens"):
            if len(row[key]) != len(st): bad.append(f"{f}: {key} has {len(row[key])} entries for {len(st)} samples")
        ends = st[1:] + [len(tok)]
        for j, sid in enumerate(row["ids"]):
            s = samples[sid]
            if sid in seen: bad.append(f"sample {sid} twice")
            seen.add(sid)
            where.setdefault(norm(s["note"]), set()).add(f)
            a, b, pl = st[j], ends[j], row["prompt_lens"][j]
            t = tok[a:b]
            if t[pl:] != s["response"]: bad.append(f"{sid}: response changed")
            if pl == len(s["prompt"]) and t[:pl] != s["prompt"]: bad.append(f"{sid}: prompt changed")
            if row["codes"][j] != s["codes"] or row["species"][j] != s["species"]: bad.append(f"{sid}: labels")
            for i in range(a, b):
                nxt = i + 1 < b
                want = tok[i + 1] if nxt and (loss_on == "all" or i + 1 - a >= pl) else -1
                if tgt[i] != want: bad.append(f"{sid}: target at {i - a} is {tgt[i]}, want {want}"); break
leaks = [k for k, v in where.items() if len(v) > 1]
if leaks: bad.append(f"{len(leaks)} normalized notes in more than one split, e.g. {leaks[0]!r}")
if bad:
    print("\n".join(bad[:10]), file=sys.stderr); sys.exit(1)
print(f"samples={len(seen)} rows={n_rows}")
EOF
}
export PATH="$VET_BIN:$PATH"

gen 300 1 > "$tmp/s.jsonl"
"$MKTOK" -o "$tmp/s.tok" < "$tmp/s.jsonl" || { echo "not ok make test tokens"; exit 1; }

# --- a grouped split, packed: every sample once, rows within seq_len, masks right, no leak ---
if "$PACK" --out "$tmp/o" --seq-len 128 --summary "$tmp/sum.json" "$tmp/s.tok" 2>"$tmp/err" &&
   res=$(verify 128 response "$tmp/s.jsonl" "$tmp"/o/{train,val,test}.msgpack.zst) && [ "$res" = "samples=300 rows=$(jq '.total.rows' "$tmp/sum.json")" ]; then
    ok "pack grouped split: rows, masks, no leaked note ($res)"
else
    notok "pack grouped split: rows, masks, no leaked note" "$(cat "$tmp/err") $res"
fi
check "quiet when stderr is not a terminal" test ! -s "$tmp/err"
check "summary counts add up" jq -e '.samples_in == 300 and .samples_packed + .samples_rejected == .samples_in
    and .splits.train.samples + .splits.val.samples + .splits.test.samples == 300 and .leaked_groups == 0
    and .note_groups == 40 and .total.utilization > 0.9 and .total.positions_vs_pad < 0.5' "$tmp/sum.json"
check "header carries split, seq_len, summary" bash -c "vet-dump -H '$tmp/o/val.msgpack.zst' | jq -e '.kind == \"packed\" and .split == \"val\" and .seq_len == 128 and .packed == true and .loss_on == \"response\" and .summary.samples_in == 300 and (.tokenizer.sha256 | length) == 64'"
shares=$(jq -r '[.splits.train.samples, .splits.val.samples, .splits.test.samples] | @tsv' "$tmp/sum.json")
check "split shares near 80/10/10 (within one note group, <= 20 samples)" \
    "$PY" -c "import sys; t,v,s=map(int,'$shares'.split()); sys.exit(not (abs(t-240)<=20 and abs(v-30)<=20 and abs(s-30)<=20))"

# --- determinism: same seed byte-identical, another seed different ---
"$PACK" --out "$tmp/o2" --seq-len 128 "$tmp/s.tok" && "$PACK" --out "$tmp/o3" --seq-len 128 --seed 2 "$tmp/s.tok"
same=1; for k in train val test; do cmp -s "$tmp/o/$k.msgpack.zst" "$tmp/o2/$k.msgpack.zst" || same=0; done
check "same input and seed: byte-identical output" test $same = 1
check "another seed: another split" bash -c "! cmp -s '$tmp/o/train.msgpack.zst' '$tmp/o3/train.msgpack.zst'"
"$PACK" --train "$tmp/stdin.pack" --val "$tmp/v.pack" --test "$tmp/t.pack" --seq-len 128 < "$tmp/s.tok"
check "stdin input and --train/--val/--test files" cmp -s "$tmp/stdin.pack" "$tmp/o/train.msgpack.zst"

# --- no grouping: a plain random split leaks notes (proves the leak check can fail) ---
"$PACK" --out "$tmp/ng" --group-by none --seq-len 128 --summary "$tmp/ng.json" "$tmp/s.tok"
check "--group-by none splits by sample (notes leak)" jq -e '.leaked_groups > 0 and .group_by == "none"' "$tmp/ng.json"
if verify 128 response "$tmp/s.jsonl" "$tmp"/ng/*.msgpack.zst >/dev/null 2>&1; then notok "leak check detects leaks"; else ok "leak check detects leaks"; fi

# --- stratified ---
if "$PACK" --out "$tmp/st" --stratify codes --split 60/20/20 --seq-len 128 --summary "$tmp/st.json" "$tmp/s.tok" &&
   verify 128 response "$tmp/s.jsonl" "$tmp"/st/*.msgpack.zst >/dev/null; then ok "--stratify codes: grouped, valid"; else notok "--stratify codes: grouped, valid"; fi

# --- --no-pack, --train-on-prompt, 100/0/0 ---
"$PACK" --no-pack --train-on-prompt --split 100/0/0 --train "$tmp/np.pack" --seq-len 128 "$tmp/s.tok"
if res=$(verify 128 all "$tmp/s.jsonl" "$tmp/np.pack") && [ "$res" = "samples=300 rows=300" ] &&
   vet-dump -H "$tmp/np.pack" | jq -e '.packed == false and .loss_on == "all"' >/dev/null; then
    ok "--no-pack one sample per row, --train-on-prompt, 100/0/0 with only --train"
else notok "--no-pack one sample per row, --train-on-prompt, 100/0/0 with only --train" "$res"; fi
"$PACK" -o "$tmp/all.pack" --seq-len 128 "$tmp/s.tok"
check "-o: everything in one stream (split all)" bash -c "vet-dump -H '$tmp/all.pack' | jq -e '.split == \"all\" and .summary.splits.all.packed == 300' >/dev/null"

# --- edges: a sample of exactly seq_len, a one-token response, over-long ones ---
{
    echo '{"id":"exact","species":"Cow","codes":["1"],"note":"a","prompt":[1,5,6,7,8,9],"response":[10,11,12,2]}'
    echo '{"id":"eos-only","species":"Cow","codes":["1"],"note":"b","prompt":[1,5,6],"response":[2]}'
    echo '{"id":"long","species":"Cow","codes":["1"],"note":"c","prompt":[1,5,6,7,8,9,13,14],"response":[10,11,2]}'
    echo '{"id":"long-resp","species":"Cow","codes":["1"],"note":"d","prompt":[1,5],"response":[10,11,12,13,14,15,16,17,18,2]}'
    echo '{"id":"fits-bos","species":"Cow","codes":["1"],"note":"e","prompt":[1,5,6],"response":[10,11,12,13,14,15,16,17,2]}'
} > "$tmp/edge.jsonl"
"$MKTOK" -o "$tmp/edge.tok" < "$tmp/edge.jsonl"
"$PACK" --split 100/0/0 --train "$tmp/e.pack" --seq-len 10 --summary "$tmp/e.json" "$tmp/edge.tok" 2>"$tmp/err"
if res=$(verify 10 response "$tmp/edge.jsonl" "$tmp/e.pack") && [ "$res" = "samples=2 rows=2" ] &&
   jq -e '.samples_rejected == 3 and (.rejected_ids | sort) == ["fits-bos", "long", "long-resp"]' "$tmp/e.json" >/dev/null &&
   grep -q "3 samples longer than --seq-len 10 rejected: long, long-resp, fits-bos" "$tmp/err"; then
    ok "exact seq_len kept, one-token response, over-long rejected and named"
else notok "exact seq_len kept, one-token response, over-long rejected and named" "$res $(cat "$tmp/err")"; fi
# the exact-length sample: its first response token is predicted from the last prompt token
check "mask edge: loss starts at the last prompt token, EOS carries loss, last -1" bash -c \
    "vet-dump -r '$tmp/e.pack' | jq -se 'map(select(.ids == [\"exact\"]))[0].targets == [-1,-1,-1,-1,-1,10,11,12,2,-1]' >/dev/null"
for mode in left right; do
    "$PACK" --split 100/0/0 --train "$tmp/$mode.pack" --seq-len 10 --truncate $mode --summary "$tmp/$mode.json" "$tmp/edge.tok" 2>/dev/null
    want_long='[1,6,7,8,9,13,14,10,11,2]'; [ $mode = right ] && want_long='[1,5,6,7,8,9,13,10,11,2]'
    want_fit='[1,10,11,12,13,14,15,16,17,2]'
    if jq -e '.samples_rejected == 1 and .rejected_ids == ["long-resp"] and .samples_truncated == 2' "$tmp/$mode.json" >/dev/null &&
       vet-dump -r "$tmp/$mode.pack" | jq -se "[.[] | . as \$r | range(0; .ids | length) as \$j |
           {id: .ids[\$j], t: .tokens[.starts[\$j]:(.starts[\$j + 1] // (.tokens | length))], pl: .prompt_lens[\$j]}] |
           (map(select(.id == \"long\"))[0] | .t == $want_long and .pl == 7) and
           (map(select(.id == \"fits-bos\"))[0] | .t == $want_fit and .pl == 1)" >/dev/null &&
       verify 10 response "$tmp/edge.jsonl" "$tmp/$mode.pack" >/dev/null; then
        ok "--truncate $mode cuts the prompt only; a response that cannot fit is still rejected"
    else notok "--truncate $mode cuts the prompt only; a response that cannot fit is still rejected"; fi
done
# Every sample too long: exit 1 naming the input, and nothing written (no --out folder, no
# summary); it used to write three streams without a row, with exit 0.
"$PACK" --seq-len 3 --out "$tmp/none" --summary "$tmp/none.json" "$tmp/edge.tok" 2>"$tmp/err"; rc=$?
if [ $rc = 1 ] && grep -q "edge.tok: all 5 samples are longer than --seq-len 3: nothing to pack" "$tmp/err" &&
   [ ! -e "$tmp/none" ] && [ ! -e "$tmp/none.json" ]; then ok "every sample over --seq-len: exit 1, nothing written"
else notok "every sample over --seq-len: exit 1, nothing written" "exit $rc: $(cat "$tmp/err"); $(ls "$tmp/none" 2>&1)"; fi

# --- pre-split inputs ---
gen 40 7 > "$tmp/v.jsonl"; gen 40 8 > "$tmp/t.jsonl"
"$MKTOK" -o "$tmp/v.tok" < "$tmp/v.jsonl"; "$MKTOK" -o "$tmp/t.tok" < "$tmp/t.jsonl"
"$MKTOK" --sha256 bbbbbbbb -o "$tmp/other.tok" < "$tmp/t.jsonl"
if "$PACK" --train-in "$tmp/s.tok" --val-in "$tmp/v.tok" --test-in "$tmp/t.tok" --out "$tmp/pre" --seq-len 128 --summary "$tmp/pre.json" &&
   jq -e '.splits.train.samples == 300 and .splits.val.samples == 40 and .splits.test.samples == 40 and .group_by == "input" and .leaked_groups > 0' "$tmp/pre.json" >/dev/null &&
   [ "$(vet-dump -r "$tmp/pre/val.msgpack.zst" | jq -s '[.[].ids[]] | length')" = 40 ]; then
    ok "--train-in/--val-in/--test-in packed as they are (leaks between them reported)"
else notok "--train-in/--val-in/--test-in packed as they are (leaks between them reported)"; fi

# --- copies (vet-tokenize --species-swap): split with their originals, trained on only ---
# Every sample of s.jsonl gets a copy "ID~Goat" whose note is another sample's note (so some
# copies read like a held-out note) and whose prompt differs.
"$PY" - "$tmp/s.jsonl" > "$tmp/c.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for i, r in enumerate(rows):
    print(json.dumps(r))
    c = dict(r, id=r["id"] + "~Goat", species="Goat", copy_of=r["id"], note=rows[(i * 7 + 3) % len(rows)]["note"],
             prompt=r["prompt"] + [999])
    print(json.dumps(c))
EOF
"$MKTOK" -o "$tmp/c.tok" < "$tmp/c.jsonl"
# check_copies DIR SUMMARY: originals split exactly as without copies (o/), copies only in train
# and exactly the train originals' copies, counts that add up, like_heldout recomputed here.
check_copies() {
    "$PY" - "$1" "$2" "$tmp/o" "$tmp/c.jsonl" <<'EOF'
import json, re, subprocess, sys
d, summ, ref, src = sys.argv[1:]
def ids(f):
    out = subprocess.run(["vet-dump", "-r", f], capture_output=True, text=True, check=True).stdout
    return sorted(i for l in out.splitlines() for i in json.loads(l)["ids"])
got = {k: ids(f"{d}/{k}.msgpack.zst") for k in ("train", "val", "test")}
want = {k: ids(f"{ref}/{k}.msgpack.zst") for k in ("train", "val", "test")}
bad = []
for k in got:
    if [i for i in got[k] if "~" not in i] != want[k]: bad.append(f"{k}: originals differ from the split without copies")
if [i for i in got["val"] + got["test"] if "~" in i]: bad.append("a copy in val or test")
if sorted(i[:-5] for i in got["train"] if "~" in i) != want["train"]: bad.append("train copies != copies of train originals")
notes = {json.loads(l)["id"]: json.loads(l)["note"] for l in open(src)}
def norm(t): return re.sub(r"[ \t\n\v\f\r]+", " ", t.lower()).strip()
held = {norm(notes[i]) for i in want["val"] + want["test"]}
like = sum(norm(notes[i]) in held for i in got["train"] if "~" in i)
s = json.load(open(summ))
n_held = len(want["val"]) + len(want["test"])
if not (s["samples_in"] == 600 and s["copies_in"] == 300 and s["copies_dropped"] == n_held and
        s["samples_packed"] + s["samples_rejected"] + s["copies_dropped"] == s["samples_in"] and
        s["copies_like_heldout"] == like and like > 0 and s["leaked_groups"] == 0 and s["note_groups"] == 40):
    bad.append(f"summary {s['samples_in']} {s['copies_in']} {s['copies_dropped']} {s['copies_like_heldout']} (like={like})")
if bad: print("\n".join(bad), file=sys.stderr); sys.exit(1)
EOF
}
"$PACK" --out "$tmp/cp" --seq-len 128 --summary "$tmp/cp.json" "$tmp/c.tok" 2>"$tmp/err"
check "copies: originals split as without them, copies trained on only with train originals, counts add up" \
    check_copies "$tmp/cp" "$tmp/cp.json"
"$PACK" --out "$tmp/cps" --stratify codes --group-by none --seq-len 128 "$tmp/c.tok" 2>/dev/null
"$PACK" --out "$tmp/os" --stratify codes --group-by none --seq-len 128 "$tmp/s.tok"
check "copies with --stratify codes --group-by none: the split of the originals is unchanged" \
    bash -c "for k in train val test; do diff <(vet-dump -r '$tmp/os/'\$k.msgpack.zst | jq -c '.ids[]' | sort) \
             <(vet-dump -r '$tmp/cps/'\$k.msgpack.zst | jq -c '.ids[] | select(contains(\"~\") | not)' | sort) || exit 1; done"
# --val-copies: the val split's copies to a file of their own (for a refit on train + val).
"$PACK" --out "$tmp/cvc" --val-copies "$tmp/cvc/vc.pack" --seq-len 128 --summary "$tmp/cvc.json" "$tmp/c.tok"
check "--val-copies: exactly the val originals' copies, the rest as without it; test copies still dropped" bash -c "
    cmp -s <(vet-dump -r '$tmp/cvc/train.msgpack.zst') <(vet-dump -r '$tmp/cp/train.msgpack.zst') &&
    cmp -s <(vet-dump -r '$tmp/cvc/val.msgpack.zst') <(vet-dump -r '$tmp/cp/val.msgpack.zst') &&
    diff <(vet-dump -r '$tmp/cvc/vc.pack' | jq -r '.ids[]' | sort) <(vet-dump -r '$tmp/o/val.msgpack.zst' | jq -r '.ids[] + \"~Goat\"' | sort) &&
    vet-dump -H '$tmp/cvc/vc.pack' | jq -e '.split == \"val_copies\"' >/dev/null &&
    jq -e '.copies_dropped == .splits.test.samples and .splits.val_copies.samples == .splits.val.samples and
           .samples_packed + .samples_rejected + .copies_dropped == .samples_in' '$tmp/cvc.json' >/dev/null"
"$PACK" -o "$tmp/call.pack" --seq-len 128 --summary "$tmp/call.json" "$tmp/c.tok"
check "-o keeps every copy (no held-out split)" jq -e '.samples_packed == 600 and .copies_dropped == 0' "$tmp/call.json"
# A row holding a copy says which samples are copies (copy_of: the original's id, null for a
# note); a row without one has no copy_of.
check "copy_of marks exactly the copies of a row" bash -c "vet-dump -r '$tmp/call.pack' | jq -se '
    map(if has(\"copy_of\") then ([.ids, .copy_of] | transpose | all(if (.[0] | contains(\"~\")) then .[1] + \"~Goat\" == .[0] else .[1] == null end)) and (.copy_of | any(. != null))
        else (.ids | all(contains(\"~\") | not)) end) | all' >/dev/null"
# vet-eval --baseline-from counts notes, not copies: three notes of A with a copy each against
# four of B is B's majority (the copies made it A's, 6 to 4).
"$PY" - > "$tmp/maj.jsonl" <<'EOF'
import json
for i in range(3):
    r = dict(id=f"a{i}", species="Cow", codes=["A"], note=f"a note {i}", prompt=[1, 5 + i], response=[7, 2])
    print(json.dumps(r)); print(json.dumps(dict(r, id=f"a{i}~Goat", species="Goat", copy_of=f"a{i}")))
for i in range(4):
    print(json.dumps(dict(id=f"b{i}", species="Cow", codes=["B"], note=f"b note {i}", prompt=[1, 9 + i], response=[8, 2])))
EOF
"$MKTOK" -o "$tmp/maj.tok" < "$tmp/maj.jsonl" && "$PACK" -o "$tmp/maj.pack" --seq-len 16 "$tmp/maj.tok" 2>/dev/null
printf 'id,gold,pred\n1,B,B\n2,A,B\n' > "$tmp/maj.csv"
check "vet-eval --baseline-from leaves species-swapped copies out (packed rows and tokens)" bash -c "
    '$VET_BIN/vet-eval' -q --bootstrap 0 --baseline-from '$tmp/maj.pack' -j - '$tmp/maj.csv' | jq -e '.baseline.label == \"B\"' >/dev/null &&
    '$VET_BIN/vet-eval' -q --bootstrap 0 --baseline-from '$tmp/maj.tok' -j - '$tmp/maj.csv' | jq -e '.baseline.label == \"B\"' >/dev/null"
gen 40 7 | "$PY" -c "
import json, sys
for l in sys.stdin:
    r = json.loads(l); print(json.dumps(r)); print(json.dumps(dict(r, id=r['id'] + '~Goat', copy_of=r['id'])))" > "$tmp/cv.jsonl"
"$MKTOK" -o "$tmp/cv.tok" < "$tmp/cv.jsonl"
"$PACK" --train-in "$tmp/c.tok" --val-in "$tmp/cv.tok" --out "$tmp/cpre" --seq-len 128 --summary "$tmp/cpre.json"
check "pre-split: copies in --val-in dropped, in --train-in kept" jq -e '.splits.train.samples == 600 and
    .splits.val.samples == 40 and .copies_dropped == 40 and .samples_in == 680' "$tmp/cpre.json"
# A copy whose original is not in the stream cannot be split with it.
grep -v '"id": "s5"' "$tmp/c.jsonl" | "$MKTOK" -o "$tmp/orphan.tok"

# --- failures: message and exit status; no output left under a final name ---
fails() {  # fails NAME STATUS PATTERN CMD...
    local name=$1 want=$2 pat=$3; shift 3
    "$@" >/dev/null 2>"$tmp/err"; local rc=$?
    if [ $rc = "$want" ] && grep -q -- "$pat" "$tmp/err"; then ok "$name"
    else notok "$name" "exit $rc (want $want), stderr: $(cat "$tmp/err")"; fi
}
printf 'id,note\n1,hello\n' > "$tmp/notes.csv"
fails "not a vet stream: exit 1, named" 1 "^vet-pack: .*notes.csv: not a vet stream" "$PACK" --out "$tmp/f1" "$tmp/notes.csv"
fails "wrong kind: exit 1" 1 "kind 'packed', expected 'tokens'" "$PACK" --out "$tmp/f2" "$tmp/e.pack"
gen 2000 3 | "$MKTOK" -o "$tmp/big.tok"
head -c $(($(stat -c %s "$tmp/big.tok") / 2)) "$tmp/big.tok" > "$tmp/cut.tok"
fails "truncated input: exit 1" 1 "truncated stream" "$PACK" --out "$tmp/f3" "$tmp/cut.tok"
check "truncated input leaves no output files" test -z "$(ls -A "$tmp/f3" 2>/dev/null)"
fails "tokenizer mismatch names both files and hashes" 1 "s.tok has tokenizer sha256 a\{64\}, .*other.tok has bbbbbbbb" \
    "$PACK" --train-in "$tmp/s.tok" --test-in "$tmp/other.tok" --out "$tmp/f4"
fails "bad --split: exit 2" 2 "split" "$PACK" --split 80/20 --out "$tmp/f5" "$tmp/s.tok"
fails "negative --split: exit 2" 2 "split" "$PACK" --split 80/-10/30 --out "$tmp/f5" "$tmp/s.tok"
fails "--seq-len 1: exit 2" 2 "seq-len" "$PACK" --seq-len 1 --out "$tmp/f5" "$tmp/s.tok"
fails "a split without output: exit 2" 2 "the val split has no output" "$PACK" --train "$tmp/x.pack" "$tmp/s.tok"
fails "missing input: exit 3" 3 "cannot open" "$PACK" --out "$tmp/f6" "$tmp/nope.tok"
fails "unwritable output: exit 3" 3 "vet-pack: " "$PACK" --train "$tmp/w1.pack" --val "$tmp/w2.pack" --test "$tmp/no/such/dir/t.pack" "$tmp/s.tok"
check "a failed write leaves none of the outputs (nor temp files)" test -z "$(ls "$tmp" | grep '^w[12]\.pack')"
fails "--val-copies with -o: exit 2" 2 "no --out/--train/--val/--test/--\*-in/--val-copies with it" \
    "$PACK" -o "$tmp/f8.pack" --val-copies "$tmp/f8v.pack" "$tmp/c.tok"
# The split's own flags where no split is made did nothing: refused (bad_inputs audit_edge.table
# has each); --seed goes with every output (it orders the rows), and so stays accepted.
fails "--split with --train-in: exit 2" 2 "^vet-pack: --split has no effect with --train-in" \
    "$PACK" --split 1/1/1 --train-in "$tmp/s.tok" --out "$tmp/f11"
check "--seed with -o and with --train-in: accepted" bash -c "'$PACK' --seed 7 -o '$tmp/f12.pack' '$tmp/s.tok' &&
    '$PACK' --seed 7 --train-in '$tmp/s.tok' --out '$tmp/f12'"
fails "--val-copies without a val split: exit 2" 2 "--val-copies without a val split" \
    "$PACK" --split 100/0/0 --train "$tmp/f9.pack" --val-copies "$tmp/f9v.pack" "$tmp/c.tok"
echo '{"id":"b~Goat","species":"Goat","codes":["1"],"note":"x","prompt":[1,5],"response":[6,2],"copy_of":7}' |
    "$MKTOK" -o "$tmp/badcopy.tok"
fails "copy_of not a string: exit 1, the record named" 1 "record 1 (id b~Goat): .*copy_of" "$PACK" --out "$tmp/f10" "$tmp/badcopy.tok"
fails "a copy without its original: exit 1, named" 1 "record id s5~Goat is a copy of s5, which is not in the stream" \
    "$PACK" --out "$tmp/f7" --seq-len 128 "$tmp/orphan.tok"

# --- the DLO notes: tokenize -> pack -> dump, grouped split never shares a note ---
TOKENIZE="$VET_BIN/vet-tokenize"
if [ -z "$VET_SHARED" ] || [ ! -f "$VET_SHARED/data/dlo/dlo_notes.csv" ]; then
    skip "DLO notes through vet-tokenize/vet-pack" "VET_SHARED not set"
elif [ ! -x "$TOKENIZE" ]; then
    skip "DLO notes through vet-tokenize/vet-pack" "no vet-tokenize"
else
    spm=${VET_SPM:-}
    if [ -z "$spm" ] && command -v spm_train >/dev/null; then
        # A small BPE model trained on the notes: enough to give realistic token counts.
        cut -d, -f3 "$VET_SHARED/data/dlo/dlo_notes.csv" > "$tmp/notes.txt"
        spm_train --input="$tmp/notes.txt" --model_prefix="$tmp/spm" --vocab_size=600 --model_type=bpe \
            --bos_id=1 --eos_id=2 --unk_id=0 --pad_id=-1 --minloglevel=2 >/dev/null 2>&1 && spm="$tmp/spm.model"
    fi
    if [ -z "$spm" ]; then
        skip "DLO notes through vet-tokenize/vet-pack" "no tokenizer (set VET_SPM or install spm_train)"
    elif "$TOKENIZE" --spm "$spm" "$VET_SHARED/data/dlo/dlo_notes.csv" 2>/dev/null |
         "$PACK" --out "$tmp/dlo" --stratify codes --summary "$tmp/dlo.json" 2>"$tmp/err"; then
        # The sample notes, by id, from the tokens stream itself.
        "$TOKENIZE" --spm "$spm" "$VET_SHARED/data/dlo/dlo_notes.csv" 2>/dev/null | vet-dump -r |
            jq -c '{id, species, codes, note, prompt, response}' > "$tmp/dlo.jsonl"
        if res=$(verify 512 response "$tmp/dlo.jsonl" "$tmp"/dlo/*.msgpack.zst) && [ "${res%% *}" = "samples=1602" ] &&
           jq -e '.samples_in == 1602 and .leaked_groups == 0 and .note_groups == 444' "$tmp/dlo.json" >/dev/null; then
            ok "DLO notes: 1602 samples, no note shared across splits ($res, utilization $(jq '.total.utilization' "$tmp/dlo.json"))"
        else notok "DLO notes: 1602 samples, no note shared across splits" "$res"; fi
    else
        notok "DLO notes through vet-tokenize/vet-pack" "$(cat "$tmp/err")"
    fi
fi

# --- cross-validation folds (--fold I/K) ---
# Four folds of the notes with their copies: the test splits partition the originals (every note
# tested once), no normalized note in two splits of a fold, copies only in train, the headers'
# `fold` maps true to the streams, the rest of each fold split 80/10 (8:1) into train and val.
for i in 0 1 2 3; do "$PACK" --fold $i/4 --stratify codes --out "$tmp/fold$i" --seq-len 128 \
    --summary "$tmp/fold$i.json" "$tmp/c.tok" 2>>"$tmp/folderr"; done
check_folds() {
    "$PY" - "$tmp" "$tmp/c.jsonl" <<'EOF2'
import json, re, subprocess, sys
d, src = sys.argv[1], sys.argv[2]
notes = {json.loads(l)["id"]: json.loads(l)["note"] for l in open(src)}
def norm(t): return re.sub(r"[ \t\n\v\f\r]+", " ", t.lower()).strip()
def ids(f): return [i for l in subprocess.run(["vet-dump", "-r", f], capture_output=True, text=True, check=True).stdout.splitlines() for i in json.loads(l)["ids"]]
def header(f): return json.loads(subprocess.run(["vet-dump", "-H", f], capture_output=True, text=True, check=True).stdout)
bad, tested = [], []
originals = sorted(i for i in notes if "~" not in i)
for i in range(4):
    got = {k: ids(f"{d}/fold{i}/{k}.msgpack.zst") for k in ("train", "val", "test")}
    if [x for x in got["val"] + got["test"] if "~" in x]: bad.append(f"fold {i}: a copy held out")
    orig = {k: [x for x in v if "~" not in x] for k, v in got.items()}
    if sorted(orig["train"] + orig["val"] + orig["test"]) != originals: bad.append(f"fold {i}: not every note once")
    where = {}
    for k, v in orig.items():
        for x in v: where.setdefault(norm(notes[x]), set()).add(k)
    if any(len(s) > 1 for s in where.values()): bad.append(f"fold {i}: a note in two splits")
    rest = len(orig["train"]) + len(orig["val"])
    if abs(len(orig["val"]) - rest / 9) > 20: bad.append(f"fold {i}: val {len(orig['val'])} of {rest} is not 1/9")
    for k in ("train", "val", "test"):
        f = header(f"{d}/fold{i}/{k}.msgpack.zst").get("fold")
        want = {"i": i, "k": 4, "seed": 1, "split": k, "notes": len(orig[k]), "input_notes": 300}
        if f != want: bad.append(f"fold {i} {k}: header fold {f}, want {want}")
    tested += orig["test"]
if sorted(tested) != originals: bad.append(f"the test splits do not partition the notes ({len(tested)} tested, {len(set(tested))} distinct)")
if bad: print("\n".join(bad), file=sys.stderr); sys.exit(1)
EOF2
}
check "--fold I/K: the test splits partition the notes, no note in two splits, headers true" check_folds
check "--fold: quiet, and the summaries count no leaked note" bash -c "[ ! -s '$tmp/folderr' ] &&
    jq -se 'all(.[]; .leaked_groups == 0 and .samples_packed + .samples_rejected + .copies_dropped == .samples_in)' \
    '$tmp'/fold[0-3].json >/dev/null"
"$PACK" --fold 0/4 --stratify codes --out "$tmp/fold0b" --seq-len 128 "$tmp/c.tok"
"$PACK" --fold 0/4 --stratify codes --split 100/0 --out "$tmp/fold0c" --seq-len 128 "$tmp/c.tok"
check "--fold: the same seed gives the same bytes; --split 100/0 leaves val empty, test the same" bash -c "
    cmp -s '$tmp/fold0/test.msgpack.zst' '$tmp/fold0b/test.msgpack.zst' && cmp -s '$tmp/fold0/train.msgpack.zst' '$tmp/fold0b/train.msgpack.zst' &&
    [ \$(vet-dump --count '$tmp/fold0c/val.msgpack.zst') = 0 ] &&
    diff <(vet-dump -r '$tmp/fold0/test.msgpack.zst' | jq -r '.ids[]' | sort) <(vet-dump -r '$tmp/fold0c/test.msgpack.zst' | jq -r '.ids[]' | sort)"
fold_usage() {  # EXPECTED-MESSAGE ARGS...: exit 2 and the message, nothing written
    local want=$1; shift
    "$PACK" "$@" "$tmp/c.tok" 2>"$tmp/ferr" >/dev/null; local st=$?
    [ $st = 2 ] && grep -qF -- "$want" "$tmp/ferr" && [ ! -e "$tmp/fno" ]
}
check "--fold refusals: I >= K, K < 2, three --split shares, -o, --train-in" bash -c "
    $(declare -f fold_usage); PACK='$PACK' tmp='$tmp'
    fold_usage \"--fold '4/4'\" --fold 4/4 --out '$tmp/fno' &&
    fold_usage \"--fold '0/1'\" --fold 0/1 --out '$tmp/fno' &&
    fold_usage 'expected two shares TRAIN/VAL' --fold 0/4 --split 80/10/10 --out '$tmp/fno' &&
    fold_usage 'not with -o' --fold 0/4 -o '$tmp/fno' &&
    ! '$PACK' --fold 0/4 --train-in '$tmp/c.tok' --out '$tmp/fno' 2>'$tmp/ferr' && grep -q 'not with --train-in' '$tmp/ferr'"

# One split that packs nothing while the others do: refused, naming the split (it was written
# without a row, exit 0, and only vet-train found it empty).
"$PY" -c '
import json
for i in range(5): print(json.dumps(dict(id=f"l{i}", species="Cow", codes=["1"], note=f"long {i}", prompt=[1] + [5] * 30, response=[7, 2])))' |
    "$MKTOK" -o "$tmp/long.tok"
"$PY" -c '
import json
for i in range(5): print(json.dumps(dict(id=f"s{i}", species="Cow", codes=["1"], note=f"short {i}", prompt=[1, 5, 6], response=[7, 2])))' |
    "$MKTOK" -o "$tmp/short.tok"
"$PACK" --train-in "$tmp/long.tok" --val-in "$tmp/short.tok" --seq-len 16 --out "$tmp/emptied" 2>"$tmp/err"; st=$?
check "a split whose every sample is too long is refused, nothing written" bash -c "[ $st = 1 ] && [ ! -e '$tmp/emptied' ] &&
    grep -q 'long.tok: all 5 samples of the train split are longer than --seq-len 16' '$tmp/err'"

# --- every flag in --help is in the man page ---
# A summary that cannot be written fails the run with nothing under a final name: the splits
# wait for it (a make rule run again must not find outputs of a failed run up to date).
"$PACK" --out "$tmp/nosum" --seq-len 128 --summary "$tmp/no/such/dir/s.json" "$tmp/s.tok" 2>"$tmp/err"; st1=$?
"$PACK" -o "$tmp/nosum.pack" --seq-len 128 --summary /dev/full "$tmp/s.tok" 2>>"$tmp/err"; st2=$?
check "a failed --summary leaves no split" bash -c "[ $st1 = 3 ] && [ $st2 = 3 ] && [ -z \"\$(ls '$tmp/nosum')\" ] && [ ! -e '$tmp/nosum.pack' ] && grep -q 'cannot write the summary' '$tmp/err'"
man="$VET_TOP/man/vet-pack.1"
missing=$("$PACK" --help | grep -o -- '--[a-z][a-z-]*' | sort -u | while read -r f; do
    grep -qF -- "$(printf '%s' "$f" | sed 's/-/\\-/g')" "$man" 2>/dev/null || echo "$f"; done | tr '\n' ' ')
check "man page documents every --help flag${missing:+ (missing: $missing)}" test -z "$missing"
check "--version" bash -c "'$PACK' --version | grep -q '^vet-pack [0-9]'"
