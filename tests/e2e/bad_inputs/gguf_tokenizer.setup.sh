# gguf_tokenizer.setup.sh — sourced by test_bad_inputs.sh before gguf_tokenizer.table: GGUF files
# whose tokenizer.ggml.* metadata is hostile, made in $X/gguf by tests/helpers/mk-gguf-tok.py
# (the standard library's struct only: no venv needed), and a truncated one.
mkdir -p "$X/gguf" || return 1
for v in tokens-not-strings type-length merge-unknown merge-no-space pre-unknown no-pre bos-out-of-range \
         model-bert model-llama no-tokenizer add-eos duplicate-token bad-utf8-token no-merges pre-not-string good \
         spm-good spm-no-scores spm-scores-length spm-scores-not-float spm-score-nan spm-no-types spm-type-range \
         spm-no-unk spm-two-unk spm-unk-id-mismatch spm-duplicate spm-empty-piece spm-bad-byte spm-bos-absent \
         spm-eos-out-of-range spm-tokens-not-strings spm-squeeze; do
    /usr/bin/python3 "$VET_TOP/tests/helpers/mk-gguf-tok.py" "$X/gguf/$v.gguf" "$v" || return 1
done
head -c 3000 "$X/gguf/good.gguf" >"$X/gguf/truncated.gguf"
head -c 3000 "$X/gguf/spm-good.gguf" >"$X/gguf/spm-truncated.gguf"
