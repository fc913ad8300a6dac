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

# name | exit status | message substring | command (run by eval; $B programs, $F static, $X made)
cases=$(cat <<'TABLE'
tok_no_note_column     | 1 | no column 'note'         | $B/vet-tokenize -s $X/tok.model $F/no-note-column.csv -o $tmp/o
tok_unbalanced_quote   | 1 | unbalanced quote         | $B/vet-tokenize -s $X/tok.model $F/unbalanced-quote.csv -o $tmp/o
tok_text_after_quote   | 1 | after the closing quote  | $B/vet-tokenize -s $X/tok.model $F/text-after-quote.csv -o $tmp/o
tok_invalid_utf8       | 1 | UTF-8                    | $B/vet-tokenize -s $X/tok.model $F/invalid-utf8.csv -o $tmp/o
tok_invalid_utf8_seq   | 1 | UTF-8                    | $B/vet-tokenize -s $X/tok.model $F/invalid-utf8-seq.csv -o $tmp/o
tok_empty_csv          | 1 | empty input              | $B/vet-tokenize -s $X/tok.model $F/empty.csv -o $tmp/o
tok_truncated_json     | 1 | JSON                     | $B/vet-tokenize -s $X/tok.model $F/truncated.json -o $tmp/o
tok_broken_jsonl_line  | 1 | broken-line.jsonl:2      | $B/vet-tokenize -s $X/tok.model $F/broken-line.jsonl -o $tmp/o
tok_corrupt_model      | 1 | not a SentencePiece model | $B/vet-tokenize -s $F/corrupt.model $X/notes.csv -o $tmp/o
tok_missing_model      | 3 | no such tokenizer model  | $B/vet-tokenize -s $tmp/nothing.model $X/notes.csv -o $tmp/o
tok_bad_format_flag    | 2 | xml                      | $B/vet-tokenize -s $X/tok.model -f xml $X/notes.csv -o $tmp/o
tok_bad_template       | 3 | nosuch                   | $B/vet-tokenize -s $X/tok.model --template $tmp/nosuch $X/notes.csv -o $tmp/o
pack_wrong_kind        | 1 | expected 'tokens'        | $B/vet-pack $X/train.msgpack.zst -o $tmp/o
pack_not_a_stream      | 1 | not a vet stream         | $B/vet-pack $F/not-a-stream.txt -o $tmp/o
pack_truncated         | 1 | truncated                | $B/vet-pack $X/cut.tok -o $tmp/o
pack_seq_len_1         | 2 | seq-len                  | $B/vet-pack --seq-len 1 $X/notes.tok -o $tmp/o
pack_bad_split         | 2 | split                    | $B/vet-pack --split 1/x $X/notes.tok --out $tmp/p
pack_bad_truncate      | 2 | middle                   | $B/vet-pack --truncate middle $X/notes.tok -o $tmp/o
pack_mixed_tokenizers  | 1 | tokenizer                | $B/vet-pack --train-in $X/notes.tok --val-in $X/other.tok --out $tmp/p
dump_not_a_stream      | 1 | not a vet stream         | $B/vet-dump $F/not-a-stream.txt
dump_empty             | 1 | empty input              | $B/vet-dump $F/empty.csv
dump_truncated         | 1 | truncated                | $B/vet-dump $X/cut.tok
dump_wrong_kind        | 1 | expected 'packed'        | $B/vet-dump --kind packed $X/notes.tok
train_wrong_kind       | 1 | expected 'packed'        | $B/vet-train -q --base $X/base --train $X/notes.tok --out $tmp/t
train_tokenizer_mismatch | 1 | other.model            | $B/vet-train -q --base $X/base --tokenizer $X/other.model --train $X/train.msgpack.zst --out $tmp/t
train_data_other_tokenizer | 1 | tokenizer              | $B/vet-train -q --base $X/base --train $X/other/train.msgpack.zst --out $tmp/t
train_zero_heads       | 1 | must be positive         | $B/vet-train -q --init $F/config-zero-heads.json --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_heads_mismatch   | 1 | not a multiple           | $B/vet-train -q --init $F/config-heads-mismatch.json --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_kv_mismatch      | 1 | num_key_value_heads      | $B/vet-train -q --init $F/config-kv-mismatch.json --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_gpt2_config      | 1 | not supported            | $B/vet-train -q --init $F/config-gpt2.json --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_config_no_vocab  | 1 | vocab_size               | $B/vet-train -q --init $F/config-no-vocab.json --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_config_yarn      | 1 | yarn                     | $B/vet-train -q --init $F/config-rope-yarn.json --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_config_not_json  | 1 | not valid JSON           | $B/vet-train -q --init $F/config-not-json.json --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_label_smoothing_range | 2 | not a number in      | $B/vet-train -q --base $X/base --label-smoothing 1.5 --train $X/train.msgpack.zst --out $tmp/t
train_resid_dropout_range | 2 | not a number in        | $B/vet-train -q --base $X/base --resid-dropout 0.95 --train $X/train.msgpack.zst --out $tmp/t
train_token_dropout_range | 2 | not a number in        | $B/vet-train -q --base $X/base --token-dropout -0.1 --train $X/train.msgpack.zst --out $tmp/t
train_too_many_files   | 2 | at most 16 files         | $B/vet-train -q --base $X/base --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --train $X/train.msgpack.zst --out $tmp/t
train_weights_shape    | 1 | shape                    | $B/vet-train -q --base $X/base-wide --train $X/train.msgpack.zst --out $tmp/t
train_st_offsets       | 1 | beyond the data section  | $B/vet-train -q --base $F/st-offsets-beyond --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_st_huge_header   | 1 | absurd                   | $B/vet-train -q --base $F/st-huge-header --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_st_header_past_end | 1 | beyond the end of the file | $B/vet-train -q --base $F/st-header-past-end --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_st_overlap       | 1 | overlap                  | $B/vet-train -q --base $F/st-overlap --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_st_negative      | 1 | negative data_offsets    | $B/vet-train -q --base $F/st-negative-offset --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_st_size_mismatch | 1 | need 18 bytes            | $B/vet-train -q --base $F/st-size-mismatch --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_st_not_json      | 1 | not valid JSON           | $B/vet-train -q --base $F/st-not-json --tokenizer $X/tok.model --train $X/train.msgpack.zst --out $tmp/t
train_adapter_other_base | 1 | another base model     | $B/vet-train -q --base $X/base3 --adapter $X/adapter --train $X/train.msgpack.zst --out $tmp/t
train_bad_scheduler    | 2 | sideways                 | $B/vet-train --init tiny --train $X/train.msgpack.zst --out $tmp/t --scheduler sideways
train_bad_targets      | 2 | z                        | $B/vet-train --init tiny --train $X/train.msgpack.zst --out $tmp/t --lora-targets q,z
gen_adapter_other_base | 1 | another base model       | $B/vet-generate -q -m $X/base3 -a $X/adapter $X/rows.tok -o $tmp/o
gen_adapter_not_lora   | 1 | LORA                     | $B/vet-generate -q -m $X/base -a $X/adapter-prefix $X/rows.tok -o $tmp/o
gen_adapter_missing    | 1 | adapter_config.json      | $B/vet-generate -q -m $X/base -a $X/adapter-empty $X/rows.tok -o $tmp/o
gen_tokenizer_mismatch | 1 | tokenizer                | $B/vet-generate -q -m $X/base -s $X/other.model $X/rows.tok -o $tmp/o
gen_corrupt_tokenizer  | 1 | not a SentencePiece model | $B/vet-generate -q -m $X/base-badtok $X/rows.tok -o $tmp/o
gen_not_a_stream       | 1 | not a vet stream         | $B/vet-generate -q -m $X/base $X/base/model.safetensors -o $tmp/o
gen_bad_top_p          | 2 | top-p                    | $B/vet-generate -q -m $X/base --top-p 2 $X/rows.tok -o $tmp/o
gen_bad_temperature    | 2 | temperature              | $B/vet-generate -q -m $X/base --temperature -1 $X/rows.tok -o $tmp/o
eval_tokens_stream     | 1 | kind                     | $B/vet-eval -q $X/notes.tok
eval_csv_no_gold       | 1 | gold                     | $B/vet-eval -q $F/preds-no-gold.csv
eval_gold_not_list     | 1 | gold                     | $B/vet-eval -q $F/preds-gold-not-list.jsonl
eval_bad_bootstrap     | 2 | bootstrap                | $B/vet-eval -q --bootstrap many $F/preds-no-gold.csv
synth_empty_table      | 1 | diseases-empty.tsv       | $B/vet-synth -d $F/diseases-empty.tsv -n 5 -o $tmp/o
synth_bad_count        | 2 | -n                       | $B/vet-synth -d $VET_TOP/data/diseases.tsv -n -5 -o $tmp/o
TABLE
)

n=0
while IFS='|' read -r name want substr cmd; do
    name=$(echo $name) want=$(echo $want) substr=$(echo "$substr" | sed 's/^ *//; s/ *$//')
    [ -n "$name" ] || continue
    n=$((n + 1))
    prog=$(eval "echo $cmd" | awk '{print $1}'); prog=$(basename "$prog")
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
[ $n -ge 30 ] || echo "not ok bad_inputs_catalogue_size ($n cases, want >= 30)"
