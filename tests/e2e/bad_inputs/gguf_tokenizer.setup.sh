# gguf_tokenizer.setup.sh — sourced by test_bad_inputs.sh before gguf_tokenizer.table: GGUF files
# whose tokenizer.ggml.* metadata is hostile, made in $X/gguf by tests/helpers/mk-gguf-tok.py
# (the standard library's struct only: no venv needed), and a truncated one.
mkdir -p "$X/gguf" || return 1
for v in tokens-not-strings type-length merge-unknown merge-no-space pre-unknown no-pre bos-out-of-range \
         model-bert model-llama no-tokenizer add-eos duplicate-token bad-utf8-token no-merges pre-not-string good; do
    /usr/bin/python3 "$VET_TOP/tests/helpers/mk-gguf-tok.py" "$X/gguf/$v.gguf" "$v" || return 1
done
head -c 3000 "$X/gguf/good.gguf" >"$X/gguf/truncated.gguf"
