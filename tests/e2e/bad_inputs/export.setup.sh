# export.setup.sh — sourced by test_bad_inputs.sh before export.table: models vet-export must
# refuse, made from the fixture's base in $X. Needs python3 (standard library only). Sourced
# before train.setup.sh (alphabetical order), so its helpers are not there yet.

# bl_tokenizer DIR N PRETOK: a byte-level BPE tokenizer.json in DIR with the 256 byte pieces, then
# pieces up to N in all, no merges, PRETOK as its pre_tokenizer (JSON); DIR's tokenizer.model goes.
bl_tokenizer() {
    rm -f "$1/tokenizer.model"
    python3 - "$1/tokenizer.json" "$2" "$3" <<'PY'
import json, sys
bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
cs, k = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + k); k += 1
vocab = {chr(c): i for i, c in enumerate(cs)}
for i in range(256, int(sys.argv[2])):
    vocab["tok%d" % i] = i
json.dump({"model": {"type": "BPE", "vocab": vocab, "merges": []}, "pre_tokenizer": json.loads(sys.argv[3]),
           "decoder": {"type": "ByteLevel"}}, open(sys.argv[1], "w"))
PY
}

# spm_tok DIR ARGS...: DIR's tokenizer.model retrained on the fixture's text with spm_train ARGS
# (the fixture's own, $X/tok.model, has spm_train's default normalizer, nmt_nfkc).
spm_tok() {
    local dir=$1; shift
    (cd "$X" && spm_train --input=text.txt --model_prefix="$dir/tokenizer" --vocab_size=512 --model_type=bpe \
        --byte_fallback=true --character_coverage=1.0 --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
        --num_threads=1 --minloglevel=2 "$@" >/dev/null 2>&1) && rm -f "$dir/tokenizer.vocab"
}
# One that GGUF can hold (llama.cpp's runtime normalizes nothing), and one that squeezes spaces.
cp -r "$X/base" "$X/base-identity" && spm_tok "$X/base-identity" --normalization_rule_name=identity \
    --remove_extra_whitespaces=false
cp -r "$X/base" "$X/base-squeeze" && spm_tok "$X/base-squeeze" --normalization_rule_name=identity
# vet-export reads the tokenizer before the weights: the cases that test the weights or the
# adapter need one it exports (models.setup.sh and train.setup.sh, sourced later, copy
# base-identity's tokenizer.model for theirs too).
cp -r "$X/base3" "$X/base3-identity" && cp "$X/base-identity/tokenizer.model" "$X/base3-identity/"
# The squeezing tokenizer beside weights cut short: the tokenizer is refused before the weights
# are read (a 7B model's minute of loading), so its message comes first.
cp -r "$X/base-squeeze" "$X/base-squeeze-cut" && truncate -s 4096 "$X/base-squeeze-cut/model.safetensors"

# One up_proj weight of 1e6: finite, so the model loads, but beyond f16's 65504 (with a tokenizer
# GGUF holds: that is checked before the weights are written).
cp -r "$X/base-identity" "$X/base-big-up" && python3 - "$X/base-big-up/model.safetensors" <<'PY'
import json, struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", data[:8])[0]
start = 8 + n + json.loads(data[8:8 + n])["model.layers.1.mlp.up_proj.weight"]["data_offsets"][0]
data[start:start + 4] = struct.pack("<f", 1e6)
open(sys.argv[1], "wb").write(data)
PY
cp -r "$X/base" "$X/base-prefix-space" && bl_tokenizer "$X/base-prefix-space" 300 \
    '{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}'
cp -r "$X/base" "$X/base-tok600" && bl_tokenizer "$X/base-tok600" 600 '{"type": "ByteLevel", "add_prefix_space": false}'

