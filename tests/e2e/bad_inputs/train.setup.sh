# train.setup.sh — sourced by test_bad_inputs.sh before train.table: hostile models, adapters,
# packed streams and checkpoints made from the fixture in $X (base, adapter, tok.model, packed
# train/val rows, micro.json). Needs python3 (standard library only) and zstd.

# restream IN OUT PYTHON: IN's header and records (through vet-dump) as h and recs, the Python
# statements applied, written back as a vet stream (msgpack in one zstd frame, a fresh trailer).
restream() {
    "$B/vet-dump" "$1" | python3 -c '
import json, struct, sys
lines = [json.loads(l) for l in sys.stdin]
h, recs = lines[0], lines[1:-1]
exec(sys.argv[1])
def enc(o):
    if o is None: return b"\xc0"
    if o is True: return b"\xc3"
    if o is False: return b"\xc2"
    if isinstance(o, int): return b"\xd3" + struct.pack(">q", o) if o < 0 else b"\xcf" + struct.pack(">Q", o)
    if isinstance(o, float): return b"\xcb" + struct.pack(">d", o)
    if isinstance(o, str):
        b = o.encode(); return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(o, list): return b"\xdd" + struct.pack(">I", len(o)) + b"".join(enc(x) for x in o)
    return b"\xdf" + struct.pack(">I", len(o)) + b"".join(enc(k) + enc(v) for k, v in o.items())
sys.stdout.buffer.write(enc(h) + b"".join(enc(r) for r in recs) + enc({"end": True, "records": len(recs)}))
' "$3" | zstd -q -c >"$2"
}

# poison FILE TENSOR VALUE: element 0 of a float32 safetensors tensor set to VALUE (nan, inf, ...).
poison() {
    python3 - "$@" <<'PY'
import json, struct, sys
path, name, value = sys.argv[1], sys.argv[2], float(sys.argv[3])
data = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", data[:8])[0]
start = 8 + n + json.loads(data[8:8 + n])[name]["data_offsets"][0]
data[start:start + 4] = struct.pack("<f", value)
open(path, "wb").write(data)
PY
}

# jset FILE PYTHON: a JSON file edited in place (the object is d).
jset() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); exec(sys.argv[2]); json.dump(d, open(sys.argv[1], "w"))' "$1" "$2"; }

tr=$X/train.msgpack.zst
# Packed rows that no model of vocabulary 512 / 64 positions can train on.
restream "$tr" "$X/tok-ge-vocab.zst" 'recs[2]["tokens"][5] = 512'
restream "$tr" "$X/tok-negative.zst" 'recs[0]["tokens"][3] = -5'
restream "$tr" "$X/tgt-ge-vocab.zst" 'recs[1]["targets"][-3] = 9999'
restream "$X/val.msgpack.zst" "$X/val-ge-vocab.zst" 'recs[-1]["tokens"][0] = 70000'
restream "$tr" "$X/hdr-vocab-neg.zst" 'h["tokenizer"]["vocab_size"] = -1'
restream "$tr" "$X/hdr-vocab-huge.zst" 'h["tokenizer"]["vocab_size"] = 2**32'
restream "$tr" "$X/hdr-bos-out.zst" 'h["tokenizer"]["bos_id"] = 600'
restream "$tr" "$X/tgt-none.zst" 'for r in recs: r["targets"] = [-1] * len(r["targets"])'
restream "$X/val.msgpack.zst" "$X/val-tgt-none.zst" 'for r in recs: r["targets"] = [-1] * len(r["targets"])'
restream "$tr" "$X/same-size.zst" 'recs[0]["tokens"][7], recs[0]["tokens"][8] = recs[0]["tokens"][8], recs[0]["tokens"][7]'
cp -r "$X/base" "$X/base-pos64" && jset "$X/base-pos64/config.json" 'd["max_position_embeddings"] = 64'

# Models and adapters with a NaN or Inf, or LoRA values no reader takes.
cp -r "$X/base" "$X/base-nan-q" && poison "$X/base-nan-q/model.safetensors" model.layers.1.self_attn.q_proj.weight nan
# The same with export.setup.sh's tokenizer that vet-export takes (it reads the tokenizer first).
cp -r "$X/base-nan-q" "$X/base-nan-q-identity" && cp "$X/base-identity/tokenizer.model" "$X/base-nan-q-identity/"
cp -r "$X/base" "$X/base-inf-embed" && poison "$X/base-inf-embed/model.safetensors" model.embed_tokens.weight inf
lora_a=base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
cp -r "$X/adapter" "$X/adapter-nan" && poison "$X/adapter-nan/adapter_model.safetensors" "$lora_a" nan
cp -r "$X/adapter" "$X/adapter-inf" && poison "$X/adapter-inf/adapter_model.safetensors" "${lora_a/lora_A/lora_B}" -inf
cp -r "$X/adapter" "$X/adapter-r40" && jset "$X/adapter-r40/adapter_config.json" 'd["r"] = 40'
cp -r "$X/adapter" "$X/adapter-alpha0" && jset "$X/adapter-alpha0/adapter_config.json" 'd["lora_alpha"] = 0'
cp -r "$X/adapter" "$X/adapter-alpha-neg" && jset "$X/adapter-alpha-neg/adapter_config.json" 'd["lora_alpha"] = -16'

# Another base of the same shape (another seed), and a run with checkpoints to resume.
"$B/vet-train" -q --threads 2 --init "$X/micro.json" --tokenizer "$X/tok.model" --train "$tr" --out "$X/base-seed7" \
    --max-steps 2 --batch-size 4 --grad-accum 1 --seed 7 || return 1
ck_args="--threads 2 --base $X/base --train $tr --batch-size 2 --grad-accum 1 --lora-r 4 --max-steps 6"
"$B/vet-train" -q $ck_args --out "$X/ck" --save-every 2 --save-limit 0 || return 1
ck=$X/ck/checkpoints/step-00000004
# ckpt NAME PYTHON: a copy of the step-4 checkpoint, its state.json edited (d).
ckpt() { mkdir -p "$X/ck-$1" && cp -r "$ck" "$X/ck-$1/" && jset "$X/ck-$1/step-00000004/state.json" "$2"; }
ckpt negstep 'd["step"] = -3'
ckpt pastend 'd["step"] = 400'
ckpt nostep 'del d["step"]'
ckpt nofp 'del d["fingerprint"]'
ckpt nobase 'del d["base"]'
ckpt beststep 'd["best_step"] = 9'
ckpt tokens 'd["tokens_seen"] = -1.0'
ckpt skipped 'd["skipped_steps"] = 5'
ckpt scale 'd["loss_scale"] = 0; d["loss_scale_good_steps"] = 0; d["loss_scale_skipped_steps"] = 0'
ckpt stepfloat 'd["step"] = 2.5'
mkdir -p "$X/ck-notjson" && cp -r "$ck" "$X/ck-notjson/" && printf '{"step": 4,' >"$X/ck-notjson/step-00000004/state.json"
ckpt nanadam 'pass' && poison "$X/ck-nanadam/step-00000004/train.safetensors" adam_m nan
ckpt negv 'pass' && poison "$X/ck-negv/step-00000004/train.safetensors" adam_v -1

# An output directory held by a live process (pid 1 always exists), and a file where --out goes.
mkdir -p "$X/locked" && echo 1 >"$X/locked/.vet-train.lock"
: >"$X/out-is-a-file"
