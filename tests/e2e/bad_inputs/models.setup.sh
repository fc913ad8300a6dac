# models.setup.sh — sourced by test_bad_inputs.sh before models.table: model folders whose files
# disagree with their config.json, made from the fixture's base in $X (2 layers, untied, F32).
# Needs python3 (standard library only). Sourced before train.setup.sh (alphabetical order), so
# the helpers there are not defined yet.

# mf_json FILE KEY VALUE: one key of a JSON file set to VALUE (JSON).
mf_json() {
    python3 - "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d[sys.argv[2]] = json.loads(sys.argv[3]); json.dump(d, open(sys.argv[1], "w"))
PY
}

# mf_add_tensor FILE NAME N: a float32 tensor NAME of N zeros added to the safetensors FILE.
mf_add_tensor() {
    python3 - "$@" <<'PY'
import json, struct, sys
path, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(path, "rb").read()
hn = struct.unpack("<Q", data[:8])[0]
head, body = json.loads(data[8:8 + hn]), data[8 + hn:]
head[name] = {"dtype": "F32", "shape": [n], "data_offsets": [len(body), len(body) + 4 * n]}
h = json.dumps(head).encode()
h += b" " * (-len(h) % 8)
open(path, "wb").write(struct.pack("<Q", len(h)) + h + body + b"\0" * (4 * n))
PY
}

# config.json says one layer, the weights hold two: layer 1 would be left out.
cp -r "$X/base" "$X/base-layers1" && mf_json "$X/base-layers1/config.json" num_hidden_layers 1
# The same with export.setup.sh's tokenizer that vet-export takes (it reads the tokenizer first).
cp -r "$X/base-layers1" "$X/base-layers1-identity" && cp "$X/base-identity/tokenizer.model" "$X/base-layers1-identity/"
# A q_proj bias in a llama model (which has none): it would be left out.
cp -r "$X/base" "$X/base-qbias" && mf_add_tensor "$X/base-qbias/model.safetensors" model.layers.0.self_attn.q_proj.bias 32

# mf_drop_tensor FILE NAME: the tensor NAME and its bytes taken out of the safetensors FILE.
mf_drop_tensor() {
    python3 - "$@" <<'PY'
import json, struct, sys
path, name = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
hn = struct.unpack("<Q", data[:8])[0]
head, body = json.loads(data[8:8 + hn]), data[8 + hn:]
off = head.pop(name)["data_offsets"]
for k, v in head.items():  # close the gap: safetensors wants the data contiguous
    if k != "__metadata__" and v["data_offsets"][0] >= off[1]:
        v["data_offsets"] = [v["data_offsets"][0] - (off[1] - off[0]), v["data_offsets"][1] - (off[1] - off[0])]
body = body[:off[0]] + body[off[1]:]
h = json.dumps(head).encode()
h += b" " * (-len(h) % 8)
open(path, "wb").write(struct.pack("<Q", len(h)) + h + body)
PY
}

# An untied config without lm_head.weight: transformers starts that head from random numbers,
# vet used to tie it to the embedding without a word (tied models, Qwen2's in
# tests/reference/make_models.py, have none and load).
cp -r "$X/base" "$X/base-nohead" && mf_drop_tensor "$X/base-nohead/model.safetensors" lm_head.weight
