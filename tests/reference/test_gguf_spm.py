"""test_gguf_spm.py — vet's SentencePiece tokenizer read from a GGUF file's "llama" vocabulary
(lib/data/spm_gguf.c: tokenizer.ggml.* rebuilt as a SentencePiece model) against the
tokenizer.model it came from.

Made here: SentencePiece BPE models trained with the venv's sentencepiece on vet-synth notes and
the stress corpus (byte fallback, identity normalization, whitespace kept: LLaMA's settings; a
user-defined piece; character coverage below 1 so that rare characters fall back to bytes), one
with add_dummy_prefix and one without. Each is written as a GGUF the way llama.cpp's converter
writes a llama vocabulary (gguf-py's GGUFWriter: tokens, scores, token_type from the piece kinds,
bos/eos/unk ids, add_bos_token, add_eos_token, add_space_prefix).

Checks (ids must be identical, every string):
  - vet on FILE.gguf == vet on tokenizer.model == Python sentencepiece, on the stress corpus of
    test_bpe.py and the 1,602 DLO notes rendered as vet renders them (VET_SHARED); decode equals
    sentencepiece's decode.
  - vet-tokenize --tokenizer FILE.gguf and --tokenizer tokenizer.model on the DLO notes CSV (the
    fixture notes without VET_SHARED): the same prompt and response ids in every record; the
    header says kind "gguf-spm", BOS added, the file's special ids.
  - transformers' GGUF tokenizer (AutoTokenizer.from_pretrained(dir, gguf_file=)) when it loads:
    AutoTokenizer(text).input_ids == [bos] + vet's ids on every string except where transformers
    is known to part from SentencePiece and llama.cpp (transformers_may_differ: text beginning
    with whitespace or a user-defined piece, control-piece spellings in text; counted). Without add_space_prefix it is
    skipped: transformers ignores the key.
  - sha256: a GGUF with the same tokenizer keys in another order hashes the same; a changed score
    hashes differently (and vet-pack/vet-train then refuse the stream: tested for gguf-bpe).
  - vet-export's GGUF of a model directory holding the tokenizer.model (a tiny random LLaMA with
    8 padding rows past the vocabulary) read back by vet-tokenize: the same ids as the source; and
    llama.cpp's own tokenizer on that file (llama-cpp-python, when installed) gives vet's ids.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_bpe  # noqa: E402  (the corpora and the vet-bpe-ids runner)

TOP = test_bpe.TOP
BIN = os.environ.get("VET_BIN") or os.path.join(TOP, "bin")
from test_bpe import ok, skip  # noqa: E402  (one line protocol; test_bpe.REPORT counts)


def training_text(tmp, stress):
    path = os.path.join(tmp, "text.txt")
    p = subprocess.run([os.path.join(BIN, "vet-synth"), "-d", os.path.join(TOP, "data", "diseases.tsv"), "-n",
                        "300", "--seed", "5", "--alpaca-text", "-o", path], capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode()[-500:])
    with open(path, "a", encoding="utf-8") as f:
        for s in stress[:60]:
            f.write(s.replace("\n", " ") + "\n")
    return path


def train(tmp, name, text, dummy_prefix):
    import sentencepiece as spm
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    spm.SentencePieceTrainer.train(
        input=text, model_prefix=os.path.join(d, "tokenizer"), vocab_size=900, model_type="bpe",
        byte_fallback=True, split_digits=True, character_coverage=0.995, normalization_rule_name="identity",
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, add_dummy_prefix=dummy_prefix,
        user_defined_symbols=["<sep>"], unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    return d, spm.SentencePieceProcessor(model_file=os.path.join(d, "tokenizer.model"))


def vocab(sp):
    """(tokens, scores, token_type) as llama.cpp's converter makes them from a tokenizer.model."""
    toks, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        toks.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        t = 1
        if sp.is_unknown(i):
            t = 2
        elif sp.is_control(i):
            t = 3
        elif sp.is_unused(i):
            t = 5
        elif sp.is_byte(i):
            t = 6
        elif sp.id_to_piece(i) == "<sep>":  # the processor does not say "user-defined"; the model does
            t = 4
        types.append(t)
    return toks, scores, types


def write_gguf(path, sp, dummy_prefix, order=1, bump=None):
    from gguf import GGUFWriter
    toks, scores, types = vocab(sp)
    if bump is not None:
        scores[bump] += 0.5
    w = GGUFWriter(path, "llama")
    adds = [lambda: w.add_tokenizer_model("llama"), lambda: w.add_tokenizer_pre("default"),
            lambda: w.add_token_list(toks), lambda: w.add_token_scores(scores), lambda: w.add_token_types(types),
            lambda: w.add_bos_token_id(sp.bos_id()), lambda: w.add_eos_token_id(sp.eos_id()),
            lambda: w.add_unk_token_id(sp.unk_id()), lambda: w.add_add_bos_token(True),
            lambda: w.add_add_eos_token(False), lambda: w.add_add_space_prefix(dummy_prefix)]
    for f in adds[::order]:
        f()
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def compare(tag, what, strings, gguf, model_dir, sp):
    vg = test_bpe.run_vet(gguf, strings)
    vm = test_bpe.run_vet(model_dir, strings)
    ref = [sp.encode(s) for s in strings]
    bad = [i for i in range(len(strings)) if vg[i]["ids"] != ref[i] or vm[i]["ids"] != ref[i]]
    first = ""
    if bad:
        i = bad[0]
        first = "first at %d %r: gguf %s, model %s, sentencepiece %s" % (
            i, strings[i][:60], vg[i]["ids"][:16], vm[i]["ids"][:16], ref[i][:16])
    nbyte = sum(1 for r in ref for x in r if sp.is_byte(x))
    ok("gguf_spm_ids_%s_%s (%d strings, %d ids, %d byte-fallback ids)" % (
        tag, what, len(strings), sum(map(len, ref)), nbyte), not bad, "%d differ; %s" % (len(bad), first))
    dec = [i for i in range(len(strings)) if vg[i]["text"] != sp.decode(ref[i])]
    ok("gguf_spm_decode_%s_%s" % (tag, what), not dec,
       "%d differ from sentencepiece's decode; first %r" % (len(dec), strings[dec[0]][:60] if dec else ""))


def check_info(tag, gguf, sp, dummy_prefix):
    info = test_bpe.vet_info(gguf)
    ok("gguf_spm_info_%s (kind %s, vocab %d, bos %d eos %d unk %d, add_bos %s)" % (
        tag, info["kind"], info["vocab_size"], info["bos"], info["eos"], info["unk"], info["add_bos"]),
       info["kind"] == "gguf-spm" and info["vocab_size"] == sp.get_piece_size() and info["add_bos"]
       and (info["bos"], info["eos"], info["unk"], info["pad"]) == (1, 2, 0, -1), str(info))
    return info


def dump_records(path):
    p = subprocess.run([os.path.join(BIN, "vet-dump"), "-r", path], capture_output=True, check=True)
    return [json.loads(x) for x in p.stdout.decode().split("\n") if x.strip()]


def check_vet_tokenize(tmp, gguf, model_dir):
    shared = os.environ.get("VET_SHARED", "")
    notes = os.path.join(shared, "data", "dlo", "dlo_notes.csv") if shared else ""
    if not notes or not os.path.exists(notes):
        notes = os.path.join(TOP, "tests", "fixtures", "tokenize", "notes.csv")
    out = {}
    for name, tok in (("gguf", gguf), ("model", model_dir)):
        out[name] = os.path.join(tmp, "notes-%s.tok" % name)
        p = subprocess.run([os.path.join(BIN, "vet-tokenize"), "-q", "--tokenizer", tok, notes, "-o", out[name]],
                           capture_output=True)
        if p.returncode != 0:
            ok("gguf_spm_vet_tokenize", False, p.stderr.decode()[-500:])
            return
    a, b = dump_records(out["gguf"]), dump_records(out["model"])
    same = len(a) == len(b) and all(x.get("prompt") == y.get("prompt") and x.get("response") == y.get("response")
                                    for x, y in zip(a, b))
    h = json.loads(subprocess.run([os.path.join(BIN, "vet-dump"), "-H", out["gguf"]], capture_output=True,
                                  check=True).stdout)["tokenizer"]
    bos_first = all(r["prompt"][0] == 1 for r in a)
    ok("gguf_spm_vet_tokenize (%d notes of %s; header kind %s)" % (len(a), os.path.basename(notes), h["kind"]),
       same and len(a) > 0 and h["kind"] == "gguf-spm" and h["bos_id"] == 1 and h["eos_id"] == 2 and bos_first,
       "records differ or header %s" % h)


def transformers_may_differ(s):
    """Where transformers' GGUF tokenizer is known to part from SentencePiece (and from llama.cpp):
    its Metaspace adds no prefix space before text that already begins with one (" x": SentencePiece
    and llama.cpp give "\u2581\u2581x", transformers "\u2581x") or with a user-defined piece (it
    splits added tokens off first, so "<sep>x" gets no prefix space), and it matches the control
    pieces' spellings (<s>, </s>, <unk>) in text as the special tokens, which SentencePiece never does."""
    return (s[:1].isspace() or s[:1] == "\u2581" or s.startswith("<sep>")
            or any(c in s for c in ("<s>", "</s>", "<unk>")))


def check_transformers(tag, gguf, strings, dummy_prefix):
    try:
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        auto = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    except Exception as e:
        skip("gguf_spm_transformers_%s" % tag, "transformers cannot load the GGUF tokenizer: %s" % str(e)[:200])
        return
    vet = test_bpe.run_vet(gguf, strings)
    bad = [i for i, s in enumerate(strings) if auto(s).input_ids != [1] + vet[i]["ids"]]
    if not dummy_prefix:
        # transformers' loader maps add_space_prefix to add_prefix_space, which its Llama tokenizer
        # does not honour: it puts the space before the text all the same.
        skip("gguf_spm_transformers_%s" % tag, "transformers ignores tokenizer.ggml.add_space_prefix false "
             "(%d of %d strings differ)" % (len(bad), len(strings)))
        return
    unexplained = [i for i in bad if not transformers_may_differ(strings[i])]
    first = ""
    if unexplained:
        i = unexplained[0]
        first = "first %r: transformers %s, vet [1]+%s" % (strings[i][:60], auto(strings[i]).input_ids[:16],
                                                          vet[i]["ids"][:16])
    ok("gguf_spm_transformers_%s (%d strings; %d differ, all beginning with whitespace or <sep>, or holding <s>/</s>/<unk>)"
       % (tag, len(strings), len(bad)), not unexplained, "%d differ elsewhere; %s" % (len(unexplained), first))


def check_sha(tmp, sp, gguf):
    other = write_gguf(os.path.join(tmp, "reordered.gguf"), sp, True, order=-1)
    bumped = write_gguf(os.path.join(tmp, "bumped.gguf"), sp, True, bump=300)
    a, b, c = (test_bpe.vet_info(x)["sha256"] for x in (gguf, other, bumped))
    ok("gguf_spm_sha_key_order (%s...)" % a[:12], a == b and a != c, "gguf %s reordered %s bumped %s" % (a, b, c))


def check_export(tag, tmp, model_dir, sp, strings):
    try:
        import test_gguf_export as ge
    except Exception as e:
        skip("gguf_spm_export_roundtrip_%s" % tag, "cannot import test_gguf_export: %s" % str(e)[:200])
        return
    n = sp.get_piece_size()
    ge.build_model(model_dir, "llama2", n + 8, num_key_value_heads=2, tie_word_embeddings=True)
    out = os.path.join(tmp, "exported-%s.gguf" % tag)
    p = subprocess.run([os.path.join(BIN, "vet-export"), "-q", "--model", model_dir, "--type", "f32", "-o", out],
                       capture_output=True)
    if p.returncode != 0:
        ok("gguf_spm_export_roundtrip_%s" % tag, False, p.stderr.decode()[-500:])
        return
    info = test_bpe.vet_info(out)
    vet = test_bpe.run_vet(out, strings)
    bad = [i for i, s in enumerate(strings) if vet[i]["ids"] != sp.encode(s)]
    ok("gguf_spm_export_roundtrip_%s (vet-export then vet-tokenize from its GGUF: %d strings, vocabulary %d = "
       "%d + 8 unused)" % (tag, len(strings), info["vocab_size"], n),
       not bad and info["kind"] == "gguf-spm" and info["vocab_size"] == n + 8 and info["add_bos"],
       "%d differ; info %s" % (len(bad), info))
    check_llama_cpp(tag, out, strings, vet)


def check_llama_cpp(tag, path, strings, vet):
    """llama.cpp itself (llama-cpp-python, when installed) tokenizing the exported GGUF. Where a
    user-defined piece (<sep>) is in the text, llama.cpp splits it off first and tokenizes each
    fragment alone (the prefix space goes to the first fragment only), which SentencePiece and so
    the model's own tokenizer.model do not: those strings are counted, not compared."""
    try:
        import test_gguf_export as ge
        llama_cpp = ge.llama_cpp_module()
        llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    except Exception as e:
        skip("gguf_spm_llama_cpp_%s" % tag, "llama.cpp cannot load the GGUF here: %s" % str(e)[:200])
        return
    plain = [i for i, s in enumerate(strings) if s and "<sep>" not in s]
    bad = [i for i in plain if llm.tokenize(strings[i].encode("utf-8"), add_bos=False, special=False) != vet[i]["ids"]]
    first = ""
    if bad:
        i = bad[0]
        first = "first %r: llama.cpp %s, vet %s" % (
            strings[i][:60], llm.tokenize(strings[i].encode("utf-8"), add_bos=False, special=False)[:16],
            vet[i]["ids"][:16])
    ok("gguf_spm_llama_cpp_%s (llama.cpp's tokenizer on vet-export's GGUF: %d strings without a user-defined "
       "piece, %d differ)" % (tag, len(plain), len(bad)), not bad, first)


def main():
    if not os.access(test_bpe.IDS, os.X_OK):
        skip("gguf_spm", "%s not built (make helpers)" % test_bpe.IDS)
        return 0
    try:
        import gguf  # noqa: F401
        import sentencepiece  # noqa: F401
    except ImportError as e:
        skip("gguf_spm", "the venv lacks %s" % e)
        return 0
    stress = test_bpe.stress_corpus() + ["<sep> a<sep>b", "\u2581 already escaped \u2581\u2581", "\u2581x", "  \t  ", "\r\r\n"]
    dlo = test_bpe.dlo_corpus(os.environ.get("VET_SHARED", ""))
    with tempfile.TemporaryDirectory(prefix="vet-gguf-spm-") as tmp:
        text = training_text(tmp, stress)
        for tag, prefix in (("prefix", True), ("noprefix", False)):
            d, sp = train(tmp, "spm-" + tag, text, prefix)
            gguf = write_gguf(os.path.join(tmp, "spm-%s.gguf" % tag), sp, prefix)
            check_info(tag, gguf, sp, prefix)
            compare(tag, "stress", stress, gguf, d, sp)
            if dlo:
                compare(tag, "dlo", dlo, gguf, d, sp)
            else:
                skip("gguf_spm_ids_%s_dlo" % tag, "VET_SHARED not set (the DLO notes are in ../shared)")
            check_transformers(tag, gguf, stress + (dlo if dlo else []), prefix)
            if prefix:
                check_vet_tokenize(tmp, gguf, d)
                check_sha(tmp, sp, gguf)
            check_export(tag, tmp, d, sp, stress + (dlo[:400] if dlo else []))
    return test_bpe.REPORT.status()


if __name__ == "__main__":
    sys.exit(main())
