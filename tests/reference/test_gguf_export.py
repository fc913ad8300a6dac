#!/usr/bin/env python3
"""test_gguf_export.py — vet-export's GGUF files read back by the GGUF readers people use.

Models (tiny, random, built here from make_models.py's shapes), each with its own tokenizer:
  llama-bpe   LLaMA (4 heads = 4 kv heads, untied lm_head) + a byte-level BPE tokenizer.json
              laid out as Llama-3's (Split regex + ByteLevel, "<|begin_of_text|> $A" template),
              and a PEFT LoRA adapter on all seven projections (lora_B random) merged in
  qwen2-bpe   Qwen2 (q/k/v biases, GQA 4/2, tied embeddings) + a BPE tokenizer.json with Qwen2's
              split regex and no BOS
  llama-spm   LLaMA with GQA (4/2) and tied embeddings + a SentencePiece tokenizer.model (BPE,
              byte fallback: the project's own kind); vocabulary 512
Each is exported with --type f32, f16 and q8_0. Checks:
  - gguf-py's GGUFReader: the metadata keys and values, every tensor's name, dims and type (1-D
    F32, 2-D the requested type), and the bytes of every tensor equal to what gguf-py's own
    encoders make of the Hugging Face weights after llama.cpp's Q/K permutation (written here
    in numpy, independently of vet's C) — so the Q8_0 encoder is bit-exact with ggml's reference
  - transformers' GGUF loader (AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)): its
    logits against transformers on the Hugging Face model (+ the adapter, through PEFT):
      f32    within 1e-4 relative (max |a - b| / max |b|) of the model itself
      f16    within 1e-4 of the model whose 2-D weights are rounded to f16 (what the file can
             hold: the loader widens f16 exactly, so only summation order is left), and within
             3e-3 of the unrounded model (f16 keeps 11 bits: 2^-11 ~ 4.9e-4 per weight; the
             measured logit error is ~4e-4)
      q8_0   within 1e-4 of the model whose 2-D weights went through gguf-py's Q8_0 round trip,
             and within 3e-2 of the unrounded model (8 bits per block of 32: d/2 = max|w|/254
             per weight; measured ~1e-2)
  - AutoTokenizer.from_pretrained(dir, gguf_file=...): the ids of a few notes equal the model
    directory's own tokenizer (tokenizers / sentencepiece), BOS included as each adds it
  - llama.cpp itself (llama-cpp-python, when installed): the file loads, its tokenizer gives the
    same ids, and its logits follow the model (f32 1e-3, f16 1e-2, q8_0 5e-2: llama.cpp rounds
    the activations too for F16 and Q8_0 weights) — the check that catches a wrong Q/K
    permutation, since transformers' loader undoes whatever permutation it is given.
Prints `ok NAME` / `not ok NAME` / `skip NAME: why` lines (see tests/run).
"""
import json
import os
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("VET_TOP") or os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("VET_BIN") or os.path.join(TOP, "bin")
EXPORT = os.path.join(BIN, "vet-export")
sys.path.insert(0, HERE)
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import make_models  # noqa: E402
from tap import Report  # noqa: E402

torch.set_num_threads(2)
REPORT = Report()
check = REPORT.check

TYPES = {"f32": 0, "f16": 1, "q8_0": 8}          # ggml type of the 2-D weights
FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7}      # llama.cpp's LLAMA_FTYPE
TOL_SELF = 1e-4
TOL_FROM_MODEL = {"f32": 1e-4, "f16": 3e-3, "q8_0": 5e-2}
TOL_LLAMA_CPP = {"f32": 1e-4, "f16": 1e-2, "q8_0": 1e-1}
ALL7 = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RE_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
             r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
RE_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
            r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


class Skip(Exception):
    pass


def case(name, fn, *args):
    try:
        fn(*args)
    except Skip as s:
        REPORT.skip(name, s)
    except Exception:
        REPORT.fail(name)
        traceback.print_exc()


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


# --------------------------------------------------------------------------------------
# Inputs: text, tokenizers, models, an adapter
def synth_text(tmp):
    path = os.path.join(tmp, "text.txt")
    subprocess.run([os.path.join(BIN, "vet-synth"), "-d", os.path.join(TOP, "data", "diseases.tsv"), "-n", "300",
                    "--seed", "3", "--alpaca-text", "-o", path], check=True, capture_output=True)
    with open(path, encoding="utf-8") as f:
        paras = [p for p in f.read().split("\n") if p.strip()]
    return path, paras


def bpe_tokenizer(outdir, text, regex, bos, vocab):
    """A byte-level BPE tokenizer.json trained on text: Split(regex) + ByteLevel as Llama-3 and
    Qwen2 lay theirs out; with bos the post-processor adds <|begin_of_text|> (Llama-3's)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    tok.train([text], trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials, show_progress=False,
                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                           special_tokens=[("<|begin_of_text|>", 0)])
    os.makedirs(outdir, exist_ok=True)
    tok.save(os.path.join(outdir, "tokenizer.json"))
    with open(os.path.join(outdir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": specials[0] if bos else None,
                   "eos_token": specials[1], "add_bos_token": bos}, f)


def spm_tokenizer(outdir, text):
    """A SentencePiece BPE model with the project's settings (mk/data.mk: LLaMA's): byte fallback,
    identity normalization, whitespace kept. GGUF has no place for SentencePiece's normalizer, and
    llama.cpp and transformers apply none to a "llama" vocabulary: a model trained with one (the
    default nmt_nfkc, which turns "\n\n" into a space) would tokenize differently from the GGUF."""
    os.makedirs(outdir, exist_ok=True)
    subprocess.run(["spm_train", "--input=" + text, "--model_prefix=" + os.path.join(outdir, "tokenizer"),
                    "--vocab_size=512", "--model_type=bpe", "--byte_fallback=true", "--split_digits=true",
                    "--character_coverage=1.0", "--normalization_rule_name=identity",
                    "--remove_extra_whitespaces=false", "--allow_whitespace_only_pieces=true",
                    "--add_dummy_prefix=true", "--unk_id=0", "--bos_id=1", "--eos_id=2", "--pad_id=-1",
                    "--num_threads=1", "--minloglevel=2"], check=True, capture_output=True)


def build_model(outdir, shape, vocab, **over):
    """make_models.py's shape `shape` with vocab and the overrides, random weights (its scheme)."""
    from transformers import AutoModelForCausalLM
    cfg = make_models.hf_config(shape)
    cfg.vocab_size = vocab
    for k, v in over.items():
        setattr(cfg, k, v)
    torch.manual_seed(7)
    m = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    g = torch.Generator().manual_seed(8)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
    m.save_pretrained(outdir)
    return m.eval()


def make_adapter(base, outdir):
    """A PEFT adapter on all seven projections with random lora_B; returns the merged model."""
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(9)
    pm = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=ALL7, bias="none",
                                         task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.2)
    pm.save_pretrained(outdir)
    return pm.merge_and_unload().eval()


# --------------------------------------------------------------------------------------
# What the file must hold, computed here from the Hugging Face weights
def permute(w, n_head):
    """llama.cpp's Q/K row order: within each head, row 2i+j is HF row j*hd/2 + i."""
    hd = w.shape[0] // n_head
    return w.reshape(n_head, 2, hd // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
              "post_attention_layernorm": "ffn_norm"}


def expected_tensors(model, arch):
    """{gguf name: fp32 numpy array as the file orders it (before encoding)}."""
    cfg = model.config
    out = {}
    for name, p in model.state_dict().items():
        w = p.detach().float().numpy()
        if name == "model.embed_tokens.weight":
            g = "token_embd.weight"
        elif name == "model.norm.weight":
            g = "output_norm.weight"
        elif name == "lm_head.weight":
            if cfg.tie_word_embeddings:
                continue
            g = "output.weight"
        else:
            parts = name.split(".")  # model.layers.L.<module...>.<weight|bias>
            g = "blk.%s.%s.%s" % (parts[2], GGUF_NAMES[".".join(parts[3:-1])], parts[-1])
            if arch == "llama" and ".attn_q." in g:
                w = permute(w, cfg.num_attention_heads)
            elif arch == "llama" and ".attn_k." in g:
                w = permute(w, cfg.num_key_value_heads)
        out[g] = w
    return out


def encode(w, typ):
    """The bytes gguf-py's encoders make of w as typ (1-D tensors stay F32)."""
    from gguf import GGMLQuantizationType, quants
    if w.ndim == 1 or typ == "f32":
        return w.astype(np.float32).tobytes()
    if typ == "f16":
        return w.astype(np.float16).tobytes()
    return quants.quantize(w.astype(np.float32), GGMLQuantizationType.Q8_0).tobytes()


def rounded(w, typ):
    """w after the file's encoding and the loader's decoding (gguf-py's dequantize)."""
    from gguf import GGMLQuantizationType, quants
    if w.ndim == 1 or typ == "f32":
        return w
    if typ == "f16":
        return w.astype(np.float16).astype(np.float32)
    q = quants.quantize(w.astype(np.float32), GGMLQuantizationType.Q8_0)
    return quants.dequantize(q, GGMLQuantizationType.Q8_0).reshape(w.shape)


def rounded_model(model, typ):
    """A copy of model whose 2-D weights are what a typ file holds."""
    import copy
    m = copy.deepcopy(model)
    with torch.no_grad():
        for _, p in m.named_parameters():
            if p.dim() == 2:
                p.copy_(torch.from_numpy(rounded(p.detach().numpy(), typ)))
    return m.eval()


# --------------------------------------------------------------------------------------
# The checks
def field(reader, key):
    from gguf import GGUFValueType
    f = reader.fields.get(key)
    if f is None:
        return None
    if f.types[0] == GGUFValueType.ARRAY:
        if f.types[1] == GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    if f.types[0] == GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]][0].item()


def check_file(tag, path, model, arch, typ, tok):
    from gguf import GGUFReader
    r = GGUFReader(path)
    cfg = model.config
    want = {"general.architecture": arch, "general.file_type": FILE_TYPE[typ], "general.alignment": 32,
            arch + ".block_count": cfg.num_hidden_layers, arch + ".embedding_length": cfg.hidden_size,
            arch + ".feed_forward_length": cfg.intermediate_size, arch + ".context_length": cfg.max_position_embeddings,
            arch + ".attention.head_count": cfg.num_attention_heads,
            arch + ".attention.head_count_kv": cfg.num_key_value_heads,
            arch + ".rope.dimension_count": cfg.hidden_size // cfg.num_attention_heads,
            arch + ".vocab_size": cfg.vocab_size, "tokenizer.ggml.model": tok["model"]}
    bad = ["%s = %r, want %r" % (k, field(r, k), v) for k, v in want.items() if field(r, k) != v]
    for k, v in ((arch + ".rope.freq_base", cfg.rope_parameters["rope_theta"]),
                 (arch + ".attention.layer_norm_rms_epsilon", cfg.rms_norm_eps)):
        if field(r, k) is None or abs(field(r, k) - v) > 1e-6 * v:
            bad.append("%s = %r, want %r" % (k, field(r, k), v))
    toks = field(r, "tokenizer.ggml.tokens") or []
    if len(toks) != cfg.vocab_size:
        bad.append("%d tokens for a vocabulary of %d" % (len(toks), cfg.vocab_size))
    for k, v in tok.items():
        if k != "model" and field(r, "tokenizer.ggml." + k) != v:
            bad.append("tokenizer.ggml.%s = %.200r, want %.200r" % (k, field(r, "tokenizer.ggml." + k), v))
    check("%s_metadata" % tag, not bad, "; ".join(bad))

    exp = expected_tensors(model, arch)
    got = {t.name: t for t in r.tensors}
    bad = []
    if set(got) != set(exp):
        bad.append("tensors differ: extra %s, missing %s" % (sorted(set(got) - set(exp))[:5],
                                                               sorted(set(exp) - set(got))[:5]))
    for name, w in exp.items():
        t = got.get(name)
        if t is None:
            continue
        want_type = 0 if w.ndim == 1 else TYPES[typ]
        if int(t.tensor_type) != want_type or [int(x) for x in t.shape] != list(w.shape[::-1]):
            bad.append("%s: type %d dims %s, want %d %s" % (name, int(t.tensor_type), list(t.shape), want_type,
                                                              list(w.shape[::-1])))
        elif bytes(np.asarray(t.data).tobytes()) != encode(w, typ):
            bad.append("%s: bytes differ from gguf-py's encoding" % name)
    check("%s_tensors_bytes" % tag, not bad, "; ".join(bad[:6]))


def transformers_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def check_transformers(tag, d, fname, model, typ, ids):
    from transformers import AutoModelForCausalLM
    g = AutoModelForCausalLM.from_pretrained(d, gguf_file=fname, dtype=torch.float32).eval()
    got = transformers_logits(g, ids)
    e = rel(got, transformers_logits(rounded_model(model, typ), ids))
    check("%s_transformers_logits_vs_rounded_%.1e" % (tag, e), e <= TOL_SELF, "tol %g" % TOL_SELF)
    e = rel(got, transformers_logits(model, ids))
    tol = TOL_FROM_MODEL[typ]
    check("%s_transformers_logits_vs_model_%.1e" % (tag, e), e <= tol, "tol %g" % tol)


def check_tokenizer(tag, d, fname, ref_ids, notes):
    from transformers import AutoTokenizer
    t = AutoTokenizer.from_pretrained(d, gguf_file=fname)
    bad = [(n[:40], t(n).input_ids[:12], want[:12]) for n, want in zip(notes, ref_ids) if t(n).input_ids != want]
    check("%s_autotokenizer_ids" % tag, not bad, "%d of %d notes differ, first %s" % (len(bad), len(notes),
                                                                                    bad[:1]))


def llama_cpp_module():
    try:
        import llama_cpp
        import llama_cpp.llama_cpp as C
    except ImportError:
        raise Skip("llama-cpp-python is not installed")
    # llama.cpp repacks quantized weights into "extra buffer types" (AMX / AVX-512 layouts) where
    # the CPU has them; on this project's machines that path crashes inside llama_decode for every
    # Q8_0 or Q4_1 file, llama.cpp's own ones included (SmolLM2-135M-Instruct.Q4_1.gguf too).
    # Plain CPU buffers run the same file correctly.
    if not getattr(C.llama_model_default_params, "vet_patched", False):
        orig = C.llama_model_default_params

        def plain():
            p = orig()
            p.use_extra_bufts = False
            return p
        plain.vet_patched = True
        C.llama_model_default_params = plain
    return llama_cpp


def check_llama_cpp(tag, path, model, typ, ids, ref_ids, notes):
    llama_cpp = llama_cpp_module()
    # An f32 KV cache (llama.cpp's default is f16), so that F32 weights are compared in fp32.
    llm = llama_cpp.Llama(model_path=path, logits_all=True, verbose=False, n_ctx=128, n_threads=2, seed=1,
                          type_k=0, type_v=0)
    bad = [n[:40] for n, want in zip(notes, ref_ids) if llm.tokenize(n.encode("utf-8"), special=True) != want]
    check("%s_llama_cpp_ids" % tag, not bad, "%d of %d notes differ, first %r" % (len(bad), len(notes), bad[:1]))
    llm.reset()
    llm.eval(ids)
    got = np.array(llm.scores[:len(ids)])
    e = rel(got, transformers_logits(rounded_model(model, typ), ids))
    tol = TOL_LLAMA_CPP[typ]
    check("%s_llama_cpp_logits_%.1e" % (tag, e), e <= tol, "tol %g" % tol)


def check_llama_cpp_quantize(tag, f32_path, path, typ, tmp):
    """llama.cpp's own quantizer, run on vet's F32 file, writes the same tensor bytes as vet."""
    import ctypes
    from gguf import GGUFReader
    llama_cpp = llama_cpp_module()
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype, p.nthread = FILE_TYPE[typ], 1
    out = os.path.join(tmp, "llama-quantize-%s.gguf" % typ)
    rc = llama_cpp.llama_model_quantize(f32_path.encode(), out.encode(), ctypes.byref(p))
    if rc != 0:
        check("%s_llama_quantize_same_bytes" % tag, False, "llama_model_quantize returned %d" % rc)
        return
    mine = {t.name: t for t in GGUFReader(path).tensors}
    theirs = {t.name: t for t in GGUFReader(out).tensors}
    bad = [n for n in set(mine) | set(theirs) if n not in mine or n not in theirs
           or int(mine[n].tensor_type) != int(theirs[n].tensor_type)
           or np.asarray(mine[n].data).tobytes() != np.asarray(theirs[n].data).tobytes()]
    check("%s_llama_quantize_same_bytes" % tag, not bad, "tensors differ: %s" % sorted(bad)[:6])


def check_gguf_in(tag, tmp, src):
    """vet-export --model FILE.gguf: the output carries the input's tokenizer.* keys unchanged
    (same keys, order, types and values), so llama.cpp can still load it."""
    from gguf import GGUFReader
    out = os.path.join(tmp, tag + "-again.gguf")
    p = subprocess.run([EXPORT, "-q", "--model", src, "--type", "f32", "-o", out], capture_output=True, text=True)
    check(tag + "_gguf_in_export", p.returncode == 0, p.stderr.strip())
    if p.returncode != 0:
        return
    a, b = GGUFReader(src), GGUFReader(out)
    keys = [k for k in a.fields if k.startswith("tokenizer.")]
    got = [k for k in b.fields if k.startswith("tokenizer.")]
    check(tag + "_gguf_in_keys", len(keys) > 5 and keys == got, "in %s, out %s" % (keys, got))
    differ = [k for k in keys if k in b.fields and (field(a, k) != field(b, k) or a.fields[k].types != b.fields[k].types)]
    check(tag + "_gguf_in_values", not differ, "differ: %s" % differ)


def run_model(tmp, name, d, model, arch, tok, ref_ids, notes, adapter=None):
    rng = np.random.default_rng(5)
    ids = [int(x) for x in rng.integers(3, tok["n_real"], 24)]
    tok = {k: v for k, v in tok.items() if k != "n_real"}
    for typ in TYPES:
        tag = "%s_%s" % (name, typ)
        fname = "%s-%s.gguf" % (name, typ)
        out = os.path.join(tmp, fname)
        cmd = [EXPORT, "-q", "--model", d, "--type", typ, "-o", out] + (["--adapter", adapter] if adapter else [])
        cmd += ["--threads", "0"] if typ == "q8_0" else []  # 0: all cores, as vet-generate and vet-train read it
        p = subprocess.run(cmd, capture_output=True, text=True)
        check("%s_export" % tag, p.returncode == 0 and os.path.isfile(out), p.stderr.strip())
        if p.returncode != 0:
            continue
        case(tag + "_file", check_file, tag, out, model, arch, typ, tok)
        case(tag + "_transformers", check_transformers, tag, tmp, fname, model, typ, ids)
        case(tag + "_tokenizer", check_tokenizer, tag, tmp, fname, ref_ids, notes)
        case(tag + "_llama_cpp", check_llama_cpp, tag, out, model, typ, ids, ref_ids, notes)
        if typ == "f32":
            case(tag + "_gguf_in", check_gguf_in, tag, tmp, out)
        if typ != "f32":
            case(tag + "_llama_quantize", check_llama_cpp_quantize, tag, os.path.join(tmp, "%s-f32.gguf" % name),
                 out, typ, tmp)


def main():
    if not os.access(EXPORT, os.X_OK):
        print("skip gguf_export: %s not built" % EXPORT)
        return 0
    try:
        import gguf  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as e:
        print("skip gguf_export: %s" % e)
        return 0
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        text, paras = synth_text(tmp)
        notes = paras[:3] + [paras[5] + "\n\n" + paras[6], "Café 42 d'x  \t naïve 🐕 <|end_of_text|> ok"]

        # llama + Llama-3-style BPE + adapter
        d = os.path.join(tmp, "llama-bpe")
        bpe_tokenizer(d, text, RE_LLAMA3, True, 300)
        base = build_model(d, "llama2", 300)
        merged = make_adapter(base, os.path.join(tmp, "adapter"))
        ht = AutoTokenizer.from_pretrained(d)
        tj = json.load(open(os.path.join(d, "tokenizer.json")))
        merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
        n = Tokenizer.from_file(os.path.join(d, "tokenizer.json")).get_vocab_size()
        tok = {"model": "gpt2", "pre": "llama-bpe", "merges": merges, "bos_token_id": 0, "eos_token_id": 1,
               "add_bos_token": True, "n_real": n,
               "token_type": [3, 3] + [1] * (n - 2) + [5] * (300 - n)}
        run_model(tmp, "llama-bpe", d, merged, "llama", tok, [ht(x).input_ids for x in notes], notes,
                  adapter=os.path.join(tmp, "adapter"))

        # qwen2 + Qwen2-style BPE, no BOS
        d = os.path.join(tmp, "qwen2-bpe")
        bpe_tokenizer(d, text, RE_QWEN2, False, 300)
        model = build_model(d, "qwen2", 300)
        ht = AutoTokenizer.from_pretrained(d)
        n = Tokenizer.from_file(os.path.join(d, "tokenizer.json")).get_vocab_size()
        tok = {"model": "gpt2", "pre": "qwen2", "eos_token_id": 1, "add_bos_token": False, "n_real": n}
        run_model(tmp, "qwen2-bpe", d, model, "qwen2", tok, [ht(x).input_ids for x in notes], notes)

        # llama, GQA, tied + SentencePiece
        import sentencepiece as spm
        d = os.path.join(tmp, "llama-spm")
        spm_tokenizer(d, text)
        model = build_model(d, "llama2", 512, num_key_value_heads=2, tie_word_embeddings=True)
        sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))
        tok = {"model": "llama", "bos_token_id": 1, "eos_token_id": 2, "unknown_token_id": 0, "add_bos_token": True,
               "scores": [sp.GetScore(i) for i in range(512)], "n_real": 512}
        run_model(tmp, "llama-spm", d, model, "llama", tok, [[1] + sp.encode(x) for x in notes], notes)
    return REPORT.status()


if __name__ == "__main__":
    sys.exit(main())
