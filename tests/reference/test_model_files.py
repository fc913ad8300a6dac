#!/usr/bin/env python3
"""test_model_files.py — model folders whose files could be read two ways, read by vet as
transformers reads them (the venv's version), checked on the logits of vet-fwdbwd:

  tied-lm-head-differs  config.json says tie_word_embeddings, but the weights hold an lm_head.weight
                        of other values: transformers leaves the two untied and uses lm_head
  tied-lm-head-equal    the same with lm_head.weight equal to the embedding (as .bin-era files
                        store a tied pair): tied, the same logits
  inv-freq              the rotary inv_freq buffers older transformers saved: derived, ignored
  single-and-shards     model.safetensors beside a model.safetensors.index.json and its shards
                        (a model re-saved unsharded over an old sharded copy): transformers reads
                        model.safetensors

Prints `ok NAME` / `not ok NAME` / `skip NAME: why` lines (see tests/run); the measured errors
go to stderr.
"""
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_models  # noqa: E402
import reflib  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

TOL_LOGITS = 1e-4   # max |vet - ref| / max |ref|, as test_parity.py


def edit_config(d, **kv):
    p = os.path.join(d, "config.json")
    c = json.load(open(p))
    c.update(kv)
    json.dump(c, open(p, "w"), indent=1)


def tied_lm_head(d, equal):
    """d's config says tied; its weights keep an lm_head.weight (the embedding's values when
    equal, else the untied model's own lm_head)."""
    edit_config(d, tie_word_embeddings=True)
    f = os.path.join(d, "model.safetensors")
    t = load_file(f)
    if equal:
        t["lm_head.weight"] = t["model.embed_tokens.weight"].clone()
    save_file(t, f, metadata={"format": "pt"})


def inv_freq(d):
    """The buffers as transformers 4.3x saved them, one per layer."""
    f = os.path.join(d, "model.safetensors")
    t = load_file(f)
    c = json.load(open(os.path.join(d, "config.json")))
    hd = c["head_dim"]
    for layer in range(c["num_hidden_layers"]):
        t["model.layers.%d.self_attn.rotary_emb.inv_freq" % layer] = \
            1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    save_file(t, f, metadata={"format": "pt"})


def single_and_shards(d):
    """Old shards (and their index) beside a model.safetensors holding other weights."""
    f = os.path.join(d, "model.safetensors")
    t = load_file(f)
    names = sorted(t)
    half = len(names) // 2
    shard = ["model-0000%d-of-00002.safetensors" % i for i in (1, 2)]
    save_file({k: t[k] for k in names[:half]}, os.path.join(d, shard[0]), metadata={"format": "pt"})
    save_file({k: t[k] for k in names[half:]}, os.path.join(d, shard[1]), metadata={"format": "pt"})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as fh:
        json.dump({"metadata": {}, "weight_map": {k: shard[i >= half] for i, k in enumerate(names)}}, fh)
    new = {k: (v * 1.5 if "embed" in k or "lm_head" in k or "norm" in k else v) for k, v in t.items()}
    save_file(new, f, metadata={"format": "pt"})


CASES = [
    ("tied-lm-head-differs", lambda d: tied_lm_head(d, False)),
    ("tied-lm-head-equal", lambda d: tied_lm_head(d, True)),
    ("inv-freq", inv_freq),
    ("single-and-shards", single_and_shards),
]


def main():
    rep = reflib.Report()
    if not reflib.have_fwdbwd():
        for name, _ in CASES:
            rep.skip("model_files_" + name, "no %s (make test-build)" % reflib.FWDBWD)
        return rep.exit()
    g = torch.Generator().manual_seed(5)
    rows = reflib.unpacked_batch(g, make_models.COMMON["vocab_size"])
    with reflib.tmpdir() as tmp:
        base = make_models.make("llama2", os.path.join(tmp, "base"))
        for name, prepare in CASES:
            d = os.path.join(tmp, name)
            shutil.copytree(base, d)
            prepare(d)
            ref = reflib.reference_logits(reflib.load_hf(d), rows)
            try:
                logits, _, _ = reflib.vet_fwdbwd(d, rows, tmp, tag=name)
            except RuntimeError as e:
                rep.check("model_files_" + name, False, str(e))
                continue
            e = reflib.compare_logits(logits, ref)
            reflib.log("%s: logits max-rel-err %.2e" % (name, e))
            rep.check("model_files_" + name, e <= TOL_LOGITS, "logits max-rel-err %.2e, tol %.0e" % (e, TOL_LOGITS))
    return rep.exit()


if __name__ == "__main__":
    sys.exit(main())
