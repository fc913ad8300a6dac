#!/usr/bin/env bash
# test_generate.sh — vet-generate end to end: a random model (vet-inspect init) with a small
# tokenizer trained here, notes tokenized by vet-tokenize. Checks the predictions stream,
# batch == one at a time, packed input == tokens input, constrained decoding, the tokenizer
# mismatch refusal, sampling reproducibility, exit codes and the man page.
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
VET_BUILD=${VET_BUILD:-$VET_TOP/build/rel}
GEN=$VET_BIN/vet-generate DUMP=$VET_BIN/vet-dump TOK=$VET_BIN/vet-tokenize PACK=$VET_BIN/vet-pack EVAL=$VET_BIN/vet-eval
INSPECT=$VET_BUILD/tests/helpers/vet-inspect MKTOK=$VET_BUILD/tests/helpers/vet-mktokens
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-gen.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # tiny model: a thread team costs more than it saves

ok() { echo "ok $1"; }
notok() { echo "not ok $1"; [ $# -gt 1 ] && echo "  $2" >&2; return 0; }
check() { if eval "$2"; then ok "$1"; else notok "$1" "${3:-$2}"; fi; }
skip_all() { for t in "$@"; do echo "skip $t: $why"; done; exit 0; }

cases=(predictions prompt-groups batch-equal summary-counts packed-equal constrain constrain-cut constrain-budget rank rank-temperature rank-refusals mismatch sampling-seeded ensemble ensemble-refusals
       long-prompts long-answers rank-long-answers exit-codes manpage)
why="vet-inspect or vet-mktokens not built (make helpers)"
[ -x "$INSPECT" ] && [ -x "$MKTOK" ] || skip_all "${cases[@]}"
bash "$VET_TOP/tests/fixtures/tokenize/make_model.sh" "$tmp/tok" >/dev/null 2>&1
rc=$?
why="spm_train is not installed"
[ $rc -eq 77 ] && skip_all "${cases[@]}"
[ $rc -eq 0 ] || { notok setup "make_model.sh failed ($rc)"; exit 1; }
vocab=$(wc -l <"$tmp/tok/tokenizer.vocab")

# A random tiny model whose vocabulary is the tokenizer's; weights scaled up by a custom seed
# are not needed: greedy output of a random model is fine for equality checks.
"$INSPECT" saveconfig tiny "$tmp/config.json" >/dev/null || { notok setup "saveconfig"; exit 1; }
sed -i "s/\"vocab_size\": [0-9]*/\"vocab_size\": $vocab/" "$tmp/config.json"
"$INSPECT" init "$tmp/model" "$tmp/config.json" 7 F32 >/dev/null || { notok setup "init"; exit 1; }
cp "$tmp/tok/tokenizer.model" "$tmp/model/"
"$TOK" --spm "$tmp/tok/tokenizer.model" "$VET_TOP/tests/fixtures/tokenize/notes.csv" -o "$tmp/notes.tok" ||
    { notok setup "vet-tokenize"; exit 1; }
n_notes=$("$DUMP" -c "$tmp/notes.tok")

# Records without the timing (ms differs run to run).
records() { "$DUMP" -r "$1" | sed 's/"ms":[0-9.e+-]*,//'; }

# --- the predictions stream -----------------------------------------------------------------
"$GEN" -q -m "$tmp/model" -n 12 -b 1 "$tmp/notes.tok" -o "$tmp/b1.pred" 2>"$tmp/err"
rc=$?
kind=$("$DUMP" -H "$tmp/b1.pred" 2>/dev/null | grep -o '"kind":"[a-z]*"' | head -1)  # the stream's, not the tokenizer's
keys_ok=1
while read -r line; do
    for k in id species group gold pred text tokens ms generated; do
        case $line in *"\"$k\":"*) ;; *) keys_ok=0 ;; esac
    done
done < <("$DUMP" -r "$tmp/b1.pred")
check predictions '[ $rc -eq 0 ] && [ "$kind" = "\"kind\":\"predictions\"" ] && [ "$("$DUMP" -c "$tmp/b1.pred")" = "$n_notes" ] && [ $keys_ok = 1 ] && [ ! -s "$tmp/err" ]' \
    "rc=$rc kind=$kind keys_ok=$keys_ok err=$(head -c 300 "$tmp/err")"

# Each record's group is the hash of its prompt: two notes written alike (here the first note again
# under another id) share it, and notes written otherwise do not (vet-eval draws a group whole).
{ cat "$VET_TOP/tests/fixtures/tokenize/notes.csv"; sed -n 2p "$VET_TOP/tests/fixtures/tokenize/notes.csv" | sed 's/^t-01,/t-01-again,/'; } >"$tmp/again.csv"
"$TOK" -q --spm "$tmp/tok/tokenizer.model" "$tmp/again.csv" -o "$tmp/again.tok" &&
    "$GEN" -q -m "$tmp/model" -n 2 "$tmp/again.tok" -o "$tmp/again.pred" 2>/dev/null
groups=$("$DUMP" -r "$tmp/again.pred" | grep -o '"id":"[^"]*","species":"[^"]*","group":"[^"]*"' | sed 's/.*"group":"//; s/"$//')
check prompt-groups '[ "$(echo "$groups" | head -1)" = "$(echo "$groups" | tail -1)" ] && echo "$groups" | grep -qvx "$(echo "$groups" | head -1)" &&
    ! echo "$groups" | grep -vqx "[0-9a-f]\{16\}" && [ "$(echo "$groups" | sort -u | wc -l)" = "$(("$(echo "$groups" | wc -l)" - 1))" ]' \
    "groups: $(echo $groups)"

# --- batch == one at a time (and the summary line without -q) -------------------------------
"$GEN" -m "$tmp/model" -n 12 -b 3 "$tmp/notes.tok" -o "$tmp/b3.pred" 2>"$tmp/err3"
"$GEN" -q -m "$tmp/model" -n 12 -b 16 <"$tmp/notes.tok" >"$tmp/b16.pred"
check batch-equal '[ "$(records "$tmp/b1.pred")" = "$(records "$tmp/b3.pred")" ] && [ "$(records "$tmp/b1.pred")" = "$(records "$tmp/b16.pred")" ] && grep -q "^vet-generate: $n_notes notes, [0-9]* tokens, [0-9.]* tokens/s" "$tmp/err3"' \
    "batch 3/16 differ from batch 1, or no summary: $(cat "$tmp/err3")"

# --- the closing line's counts add up: every prompt token prefilled once; each note's first
# token comes from its prompt's pass, the rest from decode steps ------------------------------
prompt_sum=$("$DUMP" -r "$tmp/notes.tok" | grep -o '"prompt":\[[0-9,]*\]' | tr -cd ',\n' | awk '{s += length($0) + 1} END {print s}')
gen_sum=$(records "$tmp/b3.pred" | grep -o '"tokens":[0-9]*' | cut -d: -f2 | awk '{s += $1} END {print s}')
line=$(grep "^vet-generate: " "$tmp/err3")
said_tokens=$(sed -n 's/.* notes, \([0-9]*\) tokens, .*/\1/p' <<<"$line")
said_prompt=$(sed -n 's/.*prompts \([0-9]*\) tokens at [0-9.]* tokens\/s.*/\1/p' <<<"$line")
said_steps=$(sed -n 's/.*decode steps \([0-9]*\) tokens at [0-9.]* tokens\/s.*/\1/p' <<<"$line")
check summary-counts '[ -n "$said_prompt" ] && [ "$said_prompt" = "$prompt_sum" ] && [ "$said_tokens" = "$gen_sum" ] && [ "$said_steps" = $((gen_sum - n_notes)) ]' \
    "closing line '$line': prompts ${said_prompt:-?} (want $prompt_sum), tokens ${said_tokens:-?} (want $gen_sum), steps ${said_steps:-?} (want $((gen_sum - n_notes)))"

# --- a packed --no-pack stream gives the same predictions, note for note --------------------
"$PACK" --no-pack -o "$tmp/notes.pack" --seq-len 4096 "$tmp/notes.tok" 2>/dev/null
"$GEN" -q -m "$tmp/model" -n 12 -b 2 "$tmp/notes.pack" -o "$tmp/pack.pred"
check packed-equal '[ "$(records "$tmp/b1.pred" | sort)" = "$(records "$tmp/pack.pred" | sort)" ]' \
    "packed input gave other predictions"

# --- constrained decoding: every text parses, every label is in the table -------------------
"$GEN" -q -m "$tmp/model" -n 40 -b 4 --constrain "$VET_TOP/data/codes.tsv" "$tmp/notes.tok" -o "$tmp/c.pred"
rc=$?
codes_re=$(awk -F'\t' 'NR > 1 && $1 != "" { printf "%s%s", sep, $1; sep = "|" }' "$VET_TOP/data/codes.tsv")
"$DUMP" -r "$tmp/c.pred" | grep -o '"text":"[^"]*"' | sed 's/^"text":"//; s/"$//' >"$tmp/c.texts"
bad=$(grep -Evc "^Diagnosed conditions: ($codes_re)(, ($codes_re))*$" "$tmp/c.texts")
grep -Ev "^Diagnosed conditions: ($codes_re)(, ($codes_re))*$" "$tmp/c.texts" | head -3 >&2
preds=$("$DUMP" -r "$tmp/c.pred" | grep -o '"pred":\[[^]]*\]' | sed 's/^"pred"://' | grep -o '"[^"]*"' | tr -d '"' | sort -u)
bad_pred=0
for p in $preds; do grep -q "^$p	" "$VET_TOP/data/codes.tsv" || bad_pred=1; done
check constrain '[ $rc -eq 0 ] && [ "$bad" = 0 ] && [ $bad_pred = 0 ] && [ -n "$preds" ]' \
    "rc=$rc unparsed=$bad bad_pred=$bad_pred preds=$preds"

# --- constrained decoding cut short: a --max-new too small for any label to fit cuts the text
# in the middle of one ("Diagnosed conditions: 1679004" of 167900412345), and that start of a
# label is no prediction (it read as an unknown code): every pred is a label of the table.
printf '167900412345\n167900498765\n' >"$tmp/long.tsv"
cut_bad="" cut_rc=0
for n in $(seq 18 26); do
    "$GEN" -q -m "$tmp/model" -n "$n" -b 4 --constrain "$tmp/long.tsv" "$tmp/notes.tok" -o "$tmp/cut.pred" || cut_rc=$?
    for p in $("$DUMP" -r "$tmp/cut.pred" | grep -o '"pred":\[[^]]*\]' | sed 's/^"pred"://' | grep -o '"[^"]*"' | tr -d '"' | sort -u); do
        grep -qx "$p" "$tmp/long.tsv" || cut_bad="$cut_bad -n $n: $p"
    done
done
check constrain-cut '[ $cut_rc -eq 0 ] && [ -z "$cut_bad" ]' "rc=$cut_rc not in the table:$cut_bad"

# --- constrained decoding's length budget counts tokens: "Diagnosed conditions: 1679004" is 29
# characters but, as note t-01's response says, only R tokens with the EOS. With --max-new R
# or a little more every answer is a complete sentence: the budget steers the model onto a way
# that fits, where a budget in characters allowed nothing, fell back to no budget, and the
# random model spelt the prefix in small pieces until it was cut ("Diagnosed condit").
R=$("$DUMP" -r "$tmp/notes.tok" | grep '"id":"t-01"' | grep -o '"response":\[[0-9,]*\]' | tr -cd ',' | wc -c)
R=$((R + 1))
budget_bad="" budget_rc=0
for n in $R $((R + 1)) $((R + 3)); do
    "$GEN" -q -m "$tmp/model" -n "$n" -b 4 --constrain "$VET_TOP/data/codes.tsv" "$tmp/notes.tok" -o "$tmp/bud.pred" || budget_rc=$?
    got=$("$DUMP" -r "$tmp/bud.pred" | grep -o '"text":"[^"]*"' | sed 's/^"text":"//; s/"$//')
    [ "$(grep -c . <<<"$got")" = "$n_notes" ] || budget_bad="$budget_bad -n $n: $(grep -c . <<<"$got") answers"
    cut=$(grep -Ev "^Diagnosed conditions: ($codes_re)(, ($codes_re))*$" <<<"$got" | head -1)
    [ -z "$cut" ] || budget_bad="$budget_bad -n $n: \"$cut\""
done
check constrain-budget '[ $R -gt 2 ] && [ $budget_rc -eq 0 ] && [ -z "$budget_bad" ]' "R=$R rc=$budget_rc cut:$budget_bad"

# --- --rank: every label of the table scored; K listed, best first, p their softmax share ---
# (the logp values themselves against transformers: tests/reference/test_rank.py)
n_labels=$(awk -F'\t' 'NR > 1 && $1 != ""' "$VET_TOP/data/codes.tsv" | wc -l)
"$GEN" -q -m "$tmp/model" -b 2 --rank 4 --constrain "$VET_TOP/data/codes.tsv" "$tmp/notes.tok" -o "$tmp/r4.pred"
rc=$?
"$GEN" -q -m "$tmp/model" -b 16 --rank 1000 --constrain "$VET_TOP/data/codes.tsv" "$tmp/notes.tok" -o "$tmp/rall.pred"
rc2=$?
rank_ok=$("$DUMP" -r "$tmp/r4.pred" 2>/dev/null | /usr/bin/python3 -c '
import json, math, sys
n_labels, ok, n = int(sys.argv[1]), True, 0
for line in sys.stdin:
    r = json.loads(line); k = r.get("ranked", []); n += 1
    ps = [x["p"] for x in k]
    ok &= len(k) == 4 and all(a >= b for a, b in zip(ps, ps[1:])) and 0 < sum(ps) <= 1 + 1e-9
    ok &= r["pred"] == [k[0]["label"]] and r["text"] == "Diagnosed conditions: " + k[0]["label"]
    ok &= len(set(x["label"] for x in k)) == 4 and all(x["logp"] < 0 for x in k) and 0 < r["table_p"] <= 1
print(int(ok and n > 0))' "$n_labels")
all_ok=$("$DUMP" -r "$tmp/rall.pred" 2>/dev/null | /usr/bin/python3 -c '
import json, math, sys
n_labels, ok = int(sys.argv[1]), True
for line in sys.stdin:
    r = json.loads(line); k = r.get("ranked", [])
    ok &= len(k) == n_labels and abs(sum(x["p"] for x in k) - 1) < 1e-6
    # p is the softmax of logp, and table_p the total of exp(logp)
    ok &= abs(sum(math.exp(x["logp"]) for x in k) - r["table_p"]) <= 1e-6 * r["table_p"]
print(int(ok))' "$n_labels")
# The first four of the whole table are the --rank 4 list (another batch, the same scores).
same4=$(diff <("$DUMP" -r "$tmp/r4.pred" | /usr/bin/python3 -c 'import json,sys; [print(json.loads(l)["ranked"]) for l in sys.stdin]') \
             <("$DUMP" -r "$tmp/rall.pred" | /usr/bin/python3 -c 'import json,sys; [print(json.loads(l)["ranked"][:4]) for l in sys.stdin]') >/dev/null && echo 1)
hdr=$("$DUMP" -H "$tmp/r4.pred" 2>/dev/null)
check rank '[ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ "$rank_ok" = 1 ] && [ "$all_ok" = 1 ] && [ "$same4" = 1 ] && [[ $hdr == *"\"rank\":{\"k\":4,\"labels\":$n_labels,\"temperature\":1}"* ]] && [[ $hdr == *"\"mode\":\"rank\""* ]]' \
    "rc=$rc/$rc2 rank_ok=$rank_ok all_ok=$all_ok same4=$same4 header: $hdr"

# --- --rank all lists the whole table, as a K past its size; --rank-temperature T rescales p to
# softmax(logp / T) and changes nothing else; vet-eval --fit-temperature fits T to those lists
"$GEN" -q -m "$tmp/model" -b 16 --rank all --constrain "$VET_TOP/data/codes.tsv" "$tmp/notes.tok" -o "$tmp/rA.pred"
rc=$?
"$GEN" -q -m "$tmp/model" -b 16 --rank all --rank-temperature 2.5 --constrain "$VET_TOP/data/codes.tsv" "$tmp/notes.tok" -o "$tmp/rT.pred"
rc2=$?
same_all=$(cmp -s <("$DUMP" -r "$tmp/rA.pred" | sed 's/"ms":[0-9.e+-]*,//') <("$DUMP" -r "$tmp/rall.pred" | sed 's/"ms":[0-9.e+-]*,//') && echo 1)
temp_ok=$(paste -d '\n' <("$DUMP" -r "$tmp/rA.pred") <("$DUMP" -r "$tmp/rT.pred") 2>/dev/null | /usr/bin/python3 -c '
import json, math, sys
lines, ok = sys.stdin.read().splitlines(), True
for a, b in zip(lines[0::2], lines[1::2]):
    a, b = json.loads(a), json.loads(b)
    ka, kb = a["ranked"], b["ranked"]
    ok &= [x["label"] for x in ka] == [x["label"] for x in kb] and [x["logp"] for x in ka] == [x["logp"] for x in kb]
    ok &= a["pred"] == b["pred"] and a["table_p"] == b["table_p"]
    z = sum(math.exp(x["logp"] / 2.5) for x in kb)
    ok &= all(abs(x["p"] - math.exp(x["logp"] / 2.5) / z) < 1e-6 for x in kb)  # vet-dump prints 9 digits
    ok &= kb[0]["p"] < ka[0]["p"]  # flatter
print(int(ok and len(lines) > 0))')
hdrT=$("$DUMP" -H "$tmp/rT.pred" 2>/dev/null)
"$EVAL" -q --fit-temperature "$tmp/T.txt" "$tmp/rA.pred"; e1=$?
"$EVAL" -q --fit-temperature "$tmp/T2.txt" "$tmp/rT.pred"; e2=$?  # fitted to logp: the same T
"$EVAL" -q --fit-temperature "$tmp/T3.txt" "$tmp/r4.pred" 2>"$tmp/errT"; e3=$?
check rank-temperature '[ $rc = 0 ] && [ $rc2 = 0 ] && [ "$same_all" = 1 ] && [ "$temp_ok" = 1 ] && [[ $hdrT == *"\"temperature\":2.5}"* ]] && [ $e1 = 0 ] && [ $e2 = 0 ] && cmp -s "$tmp/T.txt" "$tmp/T2.txt" && awk "{exit !(\$1 > 0 && NR == 1)}" "$tmp/T.txt" && [ $e3 = 1 ] && grep -q "lists 4 of the table.s $n_labels labels" "$tmp/errT" && [ ! -e "$tmp/T3.txt" ]' \
    "rc=$rc/$rc2 same_all=$same_all temp_ok=$temp_ok fit=$e1/$e2/$e3 T=$(cat "$tmp/T.txt" "$tmp/T2.txt" 2>&1) $(cat "$tmp/errT") header: $hdrT"

# --- --rank's refusals: no table, K < 1, with sampling: usage errors, nothing written -------
"$GEN" -q -m "$tmp/model" --rank 3 "$tmp/notes.tok" -o "$tmp/rx.pred" 2>"$tmp/err1"; e1=$?
"$GEN" -q -m "$tmp/model" --rank 0 --constrain "$VET_TOP/data/codes.tsv" "$tmp/notes.tok" -o "$tmp/rx.pred" 2>"$tmp/err2"; e2=$?
"$GEN" -q -m "$tmp/model" --rank 3 --temperature 0.7 --constrain "$VET_TOP/data/codes.tsv" "$tmp/notes.tok" -o "$tmp/rx.pred" 2>"$tmp/err3"; e3=$?
"$GEN" -q -m "$tmp/model" --rank-temperature 2 --constrain "$VET_TOP/data/codes.tsv" "$tmp/notes.tok" -o "$tmp/rx.pred" 2>"$tmp/err4"; e4=$?
"$GEN" -q -m "$tmp/model" --rank 3 --rank-temperature 0 --constrain "$VET_TOP/data/codes.tsv" "$tmp/notes.tok" -o "$tmp/rx.pred" 2>"$tmp/err5"; e5=$?
"$GEN" -q -m "$tmp/model" --rank some --constrain "$VET_TOP/data/codes.tsv" "$tmp/notes.tok" -o "$tmp/rx.pred" 2>"$tmp/err6"; e6=$?
check rank-refusals '[ $e1 = 2 ] && grep -q -- "--constrain" "$tmp/err1" && [ $e2 = 2 ] && [ $e3 = 2 ] && grep -q -- "--temperature" "$tmp/err3" && [ $e4 = 2 ] && grep -q -- "give --rank K" "$tmp/err4" && [ $e5 = 2 ] && grep -q -- "--rank-temperature" "$tmp/err5" && [ $e6 = 2 ] && [ ! -e "$tmp/rx.pred" ]' \
    "exits $e1 $e2 $e3 $e4 $e5 $e6: $(cat "$tmp/err1" "$tmp/err2" "$tmp/err3" "$tmp/err4" "$tmp/err5" "$tmp/err6")"

# --- tokenizer mismatch: refused, naming both hashes and the tokenizer file -----------------
echo '{"id":"x","species":"","codes":[],"note":"n","prompt":[1,5,6],"response":[7,2]}' |
    "$MKTOK" --sha256 "$(printf 'b%.0s' {1..64})" -o "$tmp/other.tok"
"$GEN" -q -m "$tmp/model" "$tmp/other.tok" -o "$tmp/x.pred" 2>"$tmp/err"
rc=$?
sha=$(sha256sum "$tmp/model/tokenizer.model" | cut -c1-64)
check mismatch '[ $rc -eq 1 ] && grep -q "tokenizer mismatch" "$tmp/err" && grep -q "$sha" "$tmp/err" && grep -q bbbbbbbb "$tmp/err" && grep -q "tokenizer.model" "$tmp/err" && [ ! -e "$tmp/x.pred" ]' \
    "rc=$rc: $(cat "$tmp/err")"

# --- sampling: reproducible from the seed, independent of the batch and of the threads that
# pick the batch's tokens (each row its own), changed by the seed; without top-k (the whole
# vocabulary ordered) as well -------------------------------------------------------------
s() { "$GEN" -q -m "$tmp/model" -n 12 --temperature 1.5 --top-p 0.95 "$@" "$tmp/notes.tok" -o - | "$DUMP" -r | sed 's/"ms":[0-9.e+-]*,//'; }
a=$(s --top-k 50 --seed 1 -b 1) b=$(s --top-k 50 --seed 1 -b 4) c=$(s --top-k 50 --seed 2 -b 4)
d=$(s --top-k 50 --seed 1 -b 4 --threads 1) e=$(s --seed 1 -b 1 --threads 1) f=$(s --seed 1 -b 4 --threads 2)
check sampling-seeded '[ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$d" ] && [ "$a" != "$c" ] && [ -n "$e" ] && [ "$e" = "$f" ] && [ "$a" != "$(records "$tmp/b1.pred")" ]'

# --- an ensemble (--model twice): one model twice decodes as the model alone; two models are
# order- and batch-invariant and say so in the header ----------------------------------------
"$INSPECT" init "$tmp/model2" "$tmp/config.json" 8 F32 >/dev/null && cp "$tmp/tok/tokenizer.model" "$tmp/model2/"
texts() { records "$1" | grep -o '"text":"[^"]*"'; }
"$GEN" -q -m "$tmp/model" -m "$tmp/model" -n 12 -b 3 "$tmp/notes.tok" -o "$tmp/twice.pred"; rc1=$?
"$GEN" -q -m "$tmp/model" -m "$tmp/model2" -n 12 -b 1 "$tmp/notes.tok" -o "$tmp/ab1.pred"; rc2=$?
"$GEN" -q -m "$tmp/model2" -m "$tmp/model" -n 12 -b 4 --constrain "$VET_TOP/data/codes.tsv" "$tmp/notes.tok" -o "$tmp/ba4c.pred"; rc3=$?
"$GEN" -q -m "$tmp/model2" -m "$tmp/model" -n 12 -b 4 "$tmp/notes.tok" -o "$tmp/ba4.pred"; rc4=$?
"$GEN" -q -m "$tmp/model2" -n 12 "$tmp/notes.tok" -o "$tmp/m2.pred"
hdr=$("$DUMP" -H "$tmp/ab1.pred")
check ensemble '[ $rc1$rc2$rc3$rc4 = 0000 ] && [ "$(records "$tmp/twice.pred")" = "$(records "$tmp/b1.pred")" ] && [ "$(records "$tmp/ab1.pred")" = "$(records "$tmp/ba4.pred")" ] && [ "$(texts "$tmp/ab1.pred")" != "$(texts "$tmp/b1.pred")" ] && [ "$(texts "$tmp/ab1.pred")" != "$(texts "$tmp/m2.pred")" ] && grep -q "\"ensemble\":\[\"$tmp/model\",\"$tmp/model2\"\]" <<<"$hdr" && [ "$("$DUMP" -c "$tmp/ba4c.pred")" = "$n_notes" ]' \
    "rc=$rc1$rc2$rc3$rc4 header=$hdr"

# --- what an ensemble refuses: another vocabulary or tokenizer (1), an adapter, a device or
# too many models (2) -------------------------------------------------------------------------
sed "s/\"vocab_size\": $vocab/\"vocab_size\": $((vocab + 8))/" "$tmp/config.json" >"$tmp/config3.json"
"$INSPECT" init "$tmp/model3" "$tmp/config3.json" 9 F32 >/dev/null
"$GEN" -q -m "$tmp/model" -m "$tmp/model3" "$tmp/notes.tok" -o "$tmp/x.pred" 2>"$tmp/e_vocab"; e_vocab=$?
cp -r "$tmp/model2" "$tmp/model4" && printf 'not this tokenizer' >"$tmp/model4/tokenizer.model"
"$GEN" -q -m "$tmp/model" -m "$tmp/model4" "$tmp/notes.tok" -o "$tmp/x.pred" 2>"$tmp/e_tok"; e_tok=$?
cp -r "$tmp/model2" "$tmp/model5" && sed -i 's/"eos_token_id": 2/"eos_token_id": 3/' "$tmp/model5/config.json"
"$GEN" -q -m "$tmp/model" -m "$tmp/model5" "$tmp/notes.tok" -o "$tmp/x.pred" 2>"$tmp/e_eos"; e_eos=$?
"$GEN" -q -m "$tmp/model" -m "$tmp/model2" -a "$tmp/model" "$tmp/notes.tok" -o "$tmp/x.pred" 2>/dev/null; e_adapter=$?
"$GEN" -q -m "$tmp/model" -m "$tmp/model2" --device cuda "$tmp/notes.tok" -o "$tmp/x.pred" 2>"$tmp/e_dev"; e_dev=$?
many=(); for i in $(seq 17); do many+=(-m "$tmp/model"); done
"$GEN" -q "${many[@]}" "$tmp/notes.tok" -o "$tmp/x.pred" 2>/dev/null; e_many=$?
check ensemble-refusals '[ $e_vocab = 1 ] && grep -q "vocabulary of $((vocab + 8)) tokens" "$tmp/e_vocab" && [ $e_tok = 1 ] && grep -q "model4/tokenizer.model has sha256" "$tmp/e_tok" && [ $e_eos = 1 ] && grep -q "model5: its end-of-sequence ids differ" "$tmp/e_eos" && [ $e_adapter = 2 ] && [ $e_dev = 2 ] && grep -q "CPU only" "$tmp/e_dev" && [ $e_many = 2 ] && [ ! -e "$tmp/x.pred" ]' \
    "vocab=$e_vocab tok=$e_tok eos=$e_eos adapter=$e_adapter dev=$e_dev many=$e_many: $(cat "$tmp/e_vocab" "$tmp/e_tok" "$tmp/e_eos" "$tmp/e_dev")"

# --- prompts longer than the model's context: coded all the same (as transformers would), the
# same records as a model with room, and a warning that counts them and names the first, even
# with -q; a run whose prompts fit says nothing (the predictions check above) ----------------
lens=$("$DUMP" -r "$tmp/notes.tok" | /usr/bin/python3 -c 'import json, sys
ls = [(json.loads(l)["id"], len(json.loads(l)["prompt"])) for l in sys.stdin]
ctx = sorted(n for _, n in ls)[len(ls) // 2]  # half the notes (or fewer) longer than ctx
print(ctx, sum(n > ctx for _, n in ls), next(i for i, n in ls if n > ctx))')
read -r ctx n_long first_long <<<"$lens"
sed "s/\"max_position_embeddings\": [0-9]*/\"max_position_embeddings\": $ctx/" "$tmp/config.json" >"$tmp/short.json"
"$INSPECT" init "$tmp/short" "$tmp/short.json" 7 F32 >/dev/null && cp "$tmp/tok/tokenizer.model" "$tmp/short/"
"$GEN" -q -m "$tmp/short" -n 12 -b 3 "$tmp/notes.tok" -o "$tmp/short.pred" 2>"$tmp/short.err"
rc=$?
want="vet-generate: warning: $n_long notes (the first: $first_long) have a prompt longer than the model's context of $ctx positions"
# The notes that fit but whose answers ran past the context: counted from the records.
long_answers() {  # CONTEXT PREDICTIONS: "count first-id" of prompt <= C < prompt + generated - 1
    "$DUMP" -r "$tmp/notes.tok" >"$tmp/la.tok.jsonl" && "$DUMP" -r "$2" >"$tmp/la.pred.jsonl" &&
        /usr/bin/python3 -c 'import json, sys
c = int(sys.argv[1])
n = {r["id"]: len(r["prompt"]) for r in map(json.loads, open(sys.argv[2]))}
hit = [r["id"] for r in map(json.loads, open(sys.argv[3])) if n[r["id"]] <= c < n[r["id"]] + len(r["generated"]) - 1]
print(len(hit), hit[0] if hit else "-")' "$1" "$tmp/la.tok.jsonl" "$tmp/la.pred.jsonl"
}
read -r n_la first_la <<<"$(long_answers "$ctx" "$tmp/short.pred")"
want_la="vet-generate: warning: $n_la note$([ "$n_la" = 1 ] || echo s) (the first: $first_la) ran past the model's context of $ctx positions while generating"
check long-prompts '[ $rc -eq 0 ] && [ "$n_long" -ge 2 ] && grep -qF "$want" "$tmp/short.err" && { [ "$n_la" = 0 ] || grep -qF "$want_la" "$tmp/short.err"; } && [ "$(wc -l <"$tmp/short.err")" = $((1 + (n_la > 0))) ] && [ "$(records "$tmp/short.pred")" = "$(records "$tmp/b1.pred")" ]' \
    "rc=$rc want: $want; got: $(cat "$tmp/short.err")"
# Every prompt fits a context of the longest prompt, but that note's answer cannot: one warning,
# about the answers alone.
ctx_max=$("$DUMP" -r "$tmp/notes.tok" | /usr/bin/python3 -c 'import json, sys; print(max(len(json.loads(l)["prompt"]) for l in sys.stdin))')
sed "s/\"max_position_embeddings\": [0-9]*/\"max_position_embeddings\": $ctx_max/" "$tmp/config.json" >"$tmp/fits.json"
"$INSPECT" init "$tmp/fits" "$tmp/fits.json" 7 F32 >/dev/null && cp "$tmp/tok/tokenizer.model" "$tmp/fits/"
"$GEN" -q -m "$tmp/fits" -n 12 -b 3 "$tmp/notes.tok" -o "$tmp/fits.pred" 2>"$tmp/fits.err"
rc=$?
read -r n_la first_la <<<"$(long_answers "$ctx_max" "$tmp/fits.pred")"
want_la="vet-generate: warning: $n_la note$([ "$n_la" = 1 ] || echo s) (the first: $first_la) ran past the model's context of $ctx_max positions while generating; the last tokens of"
check long-answers '[ $rc -eq 0 ] && [ "$n_la" -ge 1 ] && grep -qF "$want_la" "$tmp/fits.err" && [ "$(wc -l <"$tmp/fits.err")" = 1 ] && [ "$(records "$tmp/fits.pred")" = "$(records "$tmp/b1.pred")" ]' \
    "rc=$rc n_la=$n_la want: $want_la; got: $(cat "$tmp/fits.err")"
# --rank scores each answer at the positions after the prompt as well: a note whose prompt fits
# but whose (longest) answer does not gets the warning too, said of the scoring. One label, so
# that the record's answer is the longest.
printf '76902006\n' >"$tmp/one.tsv"
"$GEN" -q -m "$tmp/fits" --rank 1 --constrain "$tmp/one.tsv" "$tmp/notes.tok" -o "$tmp/fitsr.pred" 2>"$tmp/fitsr.err"
rc=$?
read -r n_lr first_lr <<<"$(long_answers "$ctx_max" "$tmp/fitsr.pred")"
want_lr="vet-generate: warning: $n_lr note$([ "$n_lr" = 1 ] || echo s) (the first: $first_lr) ran past the model's context of $ctx_max positions while scoring the table's answers"
check rank-long-answers '[ $rc -eq 0 ] && [ "$n_lr" -ge 1 ] && grep -qF "$want_lr" "$tmp/fitsr.err" && [ "$(wc -l <"$tmp/fitsr.err")" = 1 ]' \
    "rc=$rc n_lr=$n_lr want: $want_lr; got: $(cat "$tmp/fitsr.err")"

# --- exit codes -----------------------------------------------------------------------------
"$GEN" "$tmp/notes.tok" >/dev/null 2>&1; e_nomodel=$?
"$GEN" -m "$tmp/model" --top-p 2 "$tmp/notes.tok" >/dev/null 2>&1; e_badflag=$?
"$GEN" -m "$tmp/model" "$tmp/nope.tok" >/dev/null 2>&1; e_missing=$?
"$GEN" -m "$tmp/model" "$tmp/b1.pred" >/dev/null 2>"$tmp/err"; e_kind=$?
head -c 100 "$tmp/notes.tok" >"$tmp/trunc.tok"
"$GEN" -m "$tmp/model" "$tmp/trunc.tok" >/dev/null 2>&1; e_trunc=$?
"$GEN" -m "$tmp/nomodel" "$tmp/notes.tok" --spm "$tmp/tok/tokenizer.model" >/dev/null 2>&1; e_nodir=$?
# A code table that cannot be read (missing, a directory: I/O) or is malformed (bad input).
"$GEN" -m "$tmp/model" --constrain "$tmp/nope.tsv" "$tmp/notes.tok" >/dev/null 2>"$tmp/err_tab"; e_notab=$?
"$GEN" -m "$tmp/model" --codes "$tmp" "$tmp/notes.tok" >/dev/null 2>>"$tmp/err_tab"; e_dirtab=$?
printf '1679004\tPPR\n1679004\tother\n' >"$tmp/twice.tsv"
"$GEN" -m "$tmp/model" --constrain "$tmp/twice.tsv" "$tmp/notes.tok" >/dev/null 2>>"$tmp/err_tab"; e_badtab=$?
check exit-codes '[ $e_nomodel = 2 ] && [ $e_badflag = 2 ] && [ $e_missing = 3 ] && [ $e_kind = 1 ] && grep -q "kind" "$tmp/err" && [ $e_trunc = 1 ] && [ $e_nodir = 3 ] && [ $e_notab = 3 ] && [ $e_dirtab = 3 ] && [ $e_badtab = 1 ] && grep -q "nope.tsv: cannot open the codes file" "$tmp/err_tab" && grep -q "twice.tsv:2" "$tmp/err_tab"' \
    "nomodel=$e_nomodel badflag=$e_badflag missing=$e_missing kind=$e_kind trunc=$e_trunc nodir=$e_nodir notab=$e_notab dirtab=$e_dirtab badtab=$e_badtab: $(cat "$tmp/err_tab")"

# --- the man page lists every long option of --help -----------------------------------------
man_ok=1
for f in $("$GEN" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    grep -q -- "$(echo "$f" | sed 's/-/\\\\-/g')" "$VET_TOP/man/vet-generate.1" || { man_ok=0; echo "man lacks $f" >&2; }
done
for sec in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
    grep -q "^\.SH \"*$sec" "$VET_TOP/man/vet-generate.1" || { man_ok=0; echo "man lacks section $sec" >&2; }
done
check manpage '[ $man_ok = 1 ] && "$GEN" --version | grep -q "^vet-generate "'
