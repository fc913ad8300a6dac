#!/usr/bin/env bash
# test_bad_inputs.sh — the catalogue of bad inputs: one line per case, every program. Each case
# must exit with exactly the expected status (never 0, never by a signal: >= 128 is a crash),
# within 20 s, printing `vet-X: ...` with the expected substring on stderr. Static inputs live
# in tests/fixtures/bad/; streams, models and adapters are made here from a small fixture.
# Under `make test SANITIZE=1` VET_BIN holds the sanitized programs, so every error path also
# runs under ASan + UBSan + LeakSanitizer (a leak report changes the exit status: a failure).
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-bad.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. "$VET_TOP/tests/e2e/fault_fixture.sh"
B=$VET_BIN F=$VET_TOP/tests/fixtures/bad X=$tmp/fx
mkdir -p "$X" && make_fixture "$X" || { echo "not ok bad_inputs_fixture"; exit 1; }

# Inputs made from the fixture.
head -c 2000 "$X/notes.tok" >"$X/cut.tok"                                  # a writer that died
(cd "$X" && spm_train --input=text.txt --model_prefix=other --vocab_size=512 --model_type=unigram \
    --byte_fallback=true --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --num_threads=1 --minloglevel=2 \
    >/dev/null 2>&1) || exit 1                                              # another tokenizer
"$B/vet-tokenize" --spm "$X/other.model" "$X/notes.csv" -o "$X/other.tok" || exit 1
"$B/vet-pack" "$X/other.tok" --out "$X/other" --seq-len 256 2>/dev/null || exit 1
sed 's/"hidden_size": 32/"hidden_size": 48/' "$X/micro.json" >"$X/micro3.json"
"$B/vet-train" -q --threads 2 --init "$X/micro3.json" --tokenizer "$X/tok.model" --train "$X/train.msgpack.zst" \
    --out "$X/base3" --max-steps 1 || exit 1                                 # another base model
cp -r "$X/base" "$X/base-wide" && sed -i 's/"intermediate_size": 64/"intermediate_size": 96/' "$X/base-wide/config.json"
cp -r "$X/adapter" "$X/adapter-prefix" && sed -i 's/"LORA"/"PREFIX_TUNING"/' "$X/adapter-prefix/adapter_config.json"
mkdir -p "$X/adapter-empty"
cp -r "$X/base" "$X/base-badtok" && cp "$F/corrupt.model" "$X/base-badtok/tokenizer.model"

# The cases: every tests/e2e/bad_inputs/*.table, one per line:
#   name | exit status | message substring | command (run by eval; $B programs, $F static, $X made)
# A table may come with NAME.setup.sh beside it, sourced here first, to make the inputs it needs
# (in $X). Lines starting with # are comments.
for setup in "$VET_TOP"/tests/e2e/bad_inputs/*.setup.sh; do
    [ -f "$setup" ] || continue
    . "$setup" || { echo "not ok bad_inputs_setup_$(basename "$setup" .setup.sh)"; exit 1; }
done
cases=$(cat "$VET_TOP"/tests/e2e/bad_inputs/*.table | grep -v '^#')

n=0
while IFS='|' read -r name want substr cmd; do
    name=$(echo $name) want=$(echo $want) substr=$(echo "$substr" | sed 's/^ *//; s/ *$//')
    [ -n "$name" ] || continue
    n=$((n + 1))
    # The program: the first word, past `env` and its VAR=value assignments (a case may set a
    # program's environment variable: `env VET_X=bad $B/vet-train ...`).
    prog=$(eval "echo $cmd" | awk '{ i = 1; if ($1 == "env") { i = 2; while ($i ~ /^[A-Za-z_][A-Za-z0-9_]*=/) i++ } print $i }')
    prog=$(basename "$prog")
    eval "timeout 20 $cmd" >"$tmp/out" 2>"$tmp/err" </dev/null
    status=$? why=""
    if [ $status -eq 124 ]; then why="hung (killed after 20 s)"
    elif [ $status -ge 128 ]; then why="crashed (signal $((status - 128)))"
    elif [ $status -eq 0 ]; then why="exit 0 on bad input"
    elif [ $status -ne "$want" ]; then why="exit $status, want $want"
    elif ! grep -qF -- "$substr" "$tmp/err"; then why="message lacks '$substr'"
    elif ! grep -q "^$prog: " "$tmp/err"; then why="message not in the form '$prog: ...'"
    fi
    if [ -z "$why" ]; then echo "ok bad_$name"
    else echo "not ok bad_$name"; echo "bad_$name: $why: $(head -c 400 "$tmp/err")" >&2; fi
    rm -rf "$tmp/o" "$tmp/t" "$tmp/p"
done <<<"$cases"
[ $n -ge 124 ] || echo "not ok bad_inputs_catalogue_size ($n cases, want >= 124)"
