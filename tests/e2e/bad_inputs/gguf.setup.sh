# gguf.setup.sh — GGUF models for gguf.table, written with python3's struct (no gguf-py needed):
# a valid micro llama (dim 32, 1 layer, 2 heads / 1 kv head, vocab 512, F32 with a Q8_0 attn_q),
# which must train (so each bad variant fails for its own reason), and the variants, each with one
# thing wrong. The data section is laid out as GGUF v3 says (32-byte alignment).
python3 - "$X" <<'PY' || exit 1
import struct, sys
out = sys.argv[1]
C, F, H, KV, HD, V = 32, 64, 2, 1, 16, 512

def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b

def kv(key, t, v):
    if t == "u32": return s(key) + struct.pack("<II", 4, v)
    if t == "f32": return s(key) + struct.pack("<If", 6, v)
    return s(key) + struct.pack("<I", 8) + s(v)

def f32(n, val=0.02):
    return struct.pack("<%df" % n, *[val * ((i * 7919) % 13 - 6) / 6 for i in range(n)])

def q8_0(rows, cols, d=0x2000):   # blocks: f16 scale d, 32 int8
    return b"".join(struct.pack("<H", d) + bytes((i * 37 + r) % 17 for i in range(32))
                    for r in range(rows * cols // 32))

def write(name, arch="llama", drop=None, extra=None, shapes={}, meta={}, q_scale=0x2000, magic=b"GGUF",
          bad_offset=False, qtype=None):
    ts = [("token_embd.weight", [C, V], 0, f32(C * V)), ("output_norm.weight", [C], 0, f32(C, 1.0)),
          ("output.weight", [C, V], 0, f32(C * V)), ("blk.0.attn_norm.weight", [C], 0, f32(C, 1.0)),
          ("blk.0.attn_q.weight", [C, H * HD], 8, q8_0(H * HD, C, q_scale)),
          ("blk.0.attn_k.weight", [C, KV * HD], 0, f32(C * KV * HD)),
          ("blk.0.attn_v.weight", [C, KV * HD], 0, f32(C * KV * HD)),
          ("blk.0.attn_output.weight", [H * HD, C], 0, f32(C * H * HD)), ("blk.0.ffn_norm.weight", [C], 0, f32(C, 1.0)),
          ("blk.0.ffn_gate.weight", [C, F], 0, f32(C * F)), ("blk.0.ffn_up.weight", [C, F], 0, f32(C * F)),
          ("blk.0.ffn_down.weight", [F, C], 0, f32(C * F))]
    ts = [t for t in ts if t[0] != drop] + (extra or [])
    ts = [(n, shapes[n], ty, f32(shapes[n][0] * shapes[n][1])) if n in shapes else (n, ne, ty, d) for n, ne, ty, d in ts]
    ts = [(n, ne, qtype if qtype is not None and n == "blk.0.attn_k.weight" else ty, d) for n, ne, ty, d in ts]
    m = {"general.architecture": ("str", arch), arch + ".block_count": ("u32", 1), arch + ".context_length": ("u32", 512),
         arch + ".embedding_length": ("u32", C), arch + ".feed_forward_length": ("u32", F),
         arch + ".attention.head_count": ("u32", H), arch + ".attention.head_count_kv": ("u32", KV),
         arch + ".attention.layer_norm_rms_epsilon": ("f32", 1e-5), arch + ".rope.freq_base": ("f32", 10000.0),
         "tokenizer.ggml.bos_token_id": ("u32", 1), "tokenizer.ggml.eos_token_id": ("u32", 2), arch + ".vocab_size": ("u32", V)}
    m.update(meta)
    head = magic + struct.pack("<IQQ", 3, len(ts), len(m)) + b"".join(kv(k, t, v) for k, (t, v) in m.items())
    data, infos = b"", b""
    for n, ne, ty, d in ts:
        off = len(data) + (1 << 20 if bad_offset and n == "blk.0.ffn_down.weight" else 0)
        infos += s(n) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne) + struct.pack("<IQ", ty, off)
        data += d + b"\0" * (-len(d) % 32)
    head += infos
    head += b"\0" * (-len(head) % 32)
    open("%s/%s.gguf" % (out, name), "wb").write(head + data)

write("good")
write("badmagic", magic=b"GGUX")
write("oob", bad_offset=True)
write("iq2xs", qtype=17)
write("blockstr", meta={"llama.block_count": ("str", "one")})
write("nohead", meta={"llama.attention.head_count": ("str", "2")})
write("noffnup", drop="blk.0.ffn_up.weight")
write("kshape", shapes={"blk.0.attn_k.weight": [C, 2 * HD]})
write("extra", extra=[("blk.0.attn_q_norm.weight", [HD], 0, f32(HD))])
write("nanscale", q_scale=0x7E00)
write("gpt2", arch="gpt2")
write("yarn", meta={"llama.rope.scaling.type": ("str", "yarn")})
# a scaling factor without a type: linear to llama.cpp
write("ropefactor4", meta={"llama.rope.scaling.factor": ("f32", 4.0)})
# llama3 rope as llama.cpp stores it: rope_freqs.weight, HD/2 = 8 F32 factors (good, then broken)
def freqs(vals):
    return [("rope_freqs.weight", [len(vals)], 0, struct.pack("<%df" % len(vals), *vals))]
L3 = [1.0, 1.0, 1.5, 4.0, 8.0, 8.0, 8.0, 8.0]
write("ropefreqs", extra=freqs(L3))
write("ropefreqs7", extra=freqs(L3[:7]))
write("ropefreqsnan", extra=freqs(L3[:5] + [float("nan")] + L3[6:]))
write("ropefreqs0", extra=freqs(L3[:3] + [0.0] + L3[4:]))
write("ropefreqsneg", extra=freqs(L3[:3] + [-2.0] + L3[4:]))
PY
head -c 1000 "$X/good.gguf" >"$X/cut.gguf"
"$B/vet-train" -q --threads 2 --base "$X/good.gguf" --tokenizer "$X/tok.model" --train "$X/train.msgpack.zst" \
    --out "$X/gguf-ok" --max-steps 1 --batch-size 2 --grad-accum 1 --lora-r 4 || exit 1
# The good rope_freqs model trains (so its broken variants fail for their own reason).
"$B/vet-train" -q --threads 2 --base "$X/ropefreqs.gguf" --tokenizer "$X/tok.model" --train "$X/train.msgpack.zst" \
    --out "$X/gguf-ropefreqs-ok" --max-steps 1 --batch-size 2 --grad-accum 1 --lora-r 4 || exit 1
