# fault_fixture.sh — sourced by test_faults.sh and test_bad_inputs.sh: a small, fast set of real
# inputs in $fx (a directory the caller made): notes, a tokenizer trained on them, token and
# packed streams, a micro model (config.json + weights + tokenizer) and a LoRA adapter on it.
# Not a test itself (tests/run runs only test_*.sh). Returns non-zero when a step fails.
make_fixture() {
    local fx=$1 seed=${2:-3}
    "$VET_BIN/vet-synth" -d "$VET_TOP/data/diseases.tsv" -n 160 --seed "$seed" -o "$fx/notes.csv" || return 1
    "$VET_BIN/vet-synth" -d "$VET_TOP/data/diseases.tsv" -n 300 --seed "$seed" --alpaca-text -o "$fx/text.txt" || return 1
    (cd "$fx" && spm_train --input=text.txt --model_prefix=tok --vocab_size=512 --model_type=bpe \
        --byte_fallback=true --split_digits=true --character_coverage=1.0 --unk_id=0 --bos_id=1 --eos_id=2 \
        --pad_id=-1 --num_threads=1 --minloglevel=2 >/dev/null 2>&1) || return 1
    "$VET_BIN/vet-tokenize" --spm "$fx/tok.model" "$fx/notes.csv" -o "$fx/notes.tok" || return 1
    "$VET_BIN/vet-pack" "$fx/notes.tok" --out "$fx" --seq-len 256 2>/dev/null || return 1
    "$VET_BIN/vet-pack" "$fx/notes.tok" --no-pack -o "$fx/rows.tok" --seq-len 256 2>/dev/null || return 1
    cp "$VET_TOP/tests/fixtures/micro.json" "$fx/micro.json" || return 1  # a micro llama config
    "$VET_BIN/vet-train" -q --threads 2 --init "$fx/micro.json" --tokenizer "$fx/tok.model" \
        --train "$fx/train.msgpack.zst" --out "$fx/base" --max-steps 2 --batch-size 4 --grad-accum 1 || return 1
    "$VET_BIN/vet-train" -q --threads 2 --base "$fx/base" --train "$fx/train.msgpack.zst" --out "$fx/adapter" \
        --max-steps 1 --batch-size 2 --grad-accum 1 --lora-r 4 --lora-alpha 8 || return 1
}
