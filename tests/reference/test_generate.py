# test_generate.py — vet-generate's tokens against transformers `generate`.
#
# For each tiny random model of make_models.py (llama2, llama3, qwen2), without and with a PEFT
# LoRA adapter (all seven projections, r=4, alpha=8, lora_B random so the adapter matters):
# greedy decoding (do_sample=False) of a few prompts, max_new_tokens 20, with an EOS id that
# the model really produces (picked from a first run without one, so some notes stop early and
# others run to the limit). vet-generate (KV cache, batch 3, adapter merged at load) must
# produce exactly the token ids transformers produces, EOS included.
#
# No tokenizer is involved in the ids: the prompts are random ids written straight into a
# `tokens` stream (tests/helpers/vet-mktokens); a small SentencePiece model trained here only
# lets vet-generate decode text and check the stream's tokenizer hash.
import json
import hashlib
import os
import shutil
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reflib  # noqa: E402

MAX_NEW = 20
BIN = os.environ.get("VET_BIN") or os.path.join(reflib.TOP, "bin")
GEN = os.path.join(BIN, "vet-generate")
DUMP = os.path.join(BIN, "vet-dump")
MKTOKENS = os.path.join(reflib.BUILD, "tests", "helpers", "vet-mktokens")
ALL7 = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def train_tokenizer(workdir):
    """A small SentencePiece model (byte fallback), trained on a few lines; returns its path."""
    import sentencepiece as spm
    text = os.path.join(workdir, "spm.txt")
    with open(text, "w") as f:
        for i in range(200):
            f.write("Diagnosed conditions: %d, %d. The cow has fever and cough %d.\n" % (i * 7919, i, i % 13))
    prefix = os.path.join(workdir, "tok")
    spm.SentencePieceTrainer.train(input=text, model_prefix=prefix, vocab_size=300, model_type="bpe",
                                   byte_fallback=True, hard_vocab_limit=False, minloglevel=2,
                                   bos_id=1, eos_id=2, unk_id=0, pad_id=-1)
    return prefix + ".model"


def prompts(vocab, seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in (5, 9, 12, 7, 16):
        out.append([1] + torch.randint(3, vocab, (n - 1,), generator=g).tolist())
    return out


def write_tokens(path, ps, sha, vocab):
    lines = "".join(json.dumps({"id": "n%d" % i, "species": "", "codes": [], "note": "",
                                "prompt": p, "response": [2]}) + "\n" for i, p in enumerate(ps))
    subprocess.run([MKTOKENS, "--sha256", sha, "--vocab", str(vocab), "-o", path], input=lines,
                   text=True, check=True)


def vet_generate(model_dir, tokens, workdir, adapter=None):
    out = os.path.join(workdir, "preds")
    args = [GEN, "-q", "--model", model_dir, "--max-new", str(MAX_NEW), "--batch", "3",
            "--threads", "2", tokens, "-o", out]
    if adapter:
        args += ["--adapter", adapter]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("vet-generate: exit %d: %s" % (p.returncode, p.stderr.strip()))
    d = subprocess.run([DUMP, "-r", out], capture_output=True, text=True, check=True)
    recs = [json.loads(line) for line in d.stdout.splitlines() if line.strip()]
    return [r["generated"] for r in recs]


def hf_generate(model, ps, eos):
    outs = []
    with torch.no_grad():
        for p in ps:
            ids = torch.tensor([p])
            kw = dict(max_new_tokens=MAX_NEW, do_sample=False, num_beams=1,
                      attention_mask=torch.ones_like(ids), pad_token_id=0)
            kw["eos_token_id"] = eos if eos else None
            y = model.generate(ids, **kw)
            outs.append(y[0, len(p):].tolist())
    return outs


def set_eos(model_dir, eos):
    """Makes eos the model's EOS in config.json (what vet-generate reads)."""
    path = os.path.join(model_dir, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["eos_token_id"] = eos
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


def make_adapter(base, outdir, seed):
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(seed)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=ALL7, bias="none",
                     task_type="CAUSAL_LM")
    pm = get_peft_model(base, cfg)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.2)
    pm.save_pretrained(outdir)
    pm.eval()
    return pm


def describe(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return "note %d: vet %s, transformers %s" % (i, x, y)
    return "note counts differ: %d vs %d" % (len(a), len(b))


def main():
    rep = reflib.Report()
    names = ["llama2", "llama3", "qwen2"]
    cases = ["%s/%s" % (n, c) for n in names for c in ("base", "lora")]
    for tool in (GEN, DUMP, MKTOKENS):
        if not os.access(tool, os.X_OK):
            for c in cases:
                rep.skip("generate " + c, "%s not built (make && make helpers)" % tool)
            rep.exit()
    with reflib.tmpdir() as work:
        try:
            tok = train_tokenizer(work)
        except Exception as e:  # noqa: BLE001
            for c in cases:
                rep.skip("generate " + c, "cannot train a SentencePiece model: %s" % e)
            rep.exit()
        sha = hashlib.sha256(open(tok, "rb").read()).hexdigest()
        models = reflib.make_models(os.path.join(work, "models"))
        for k, name in enumerate(names):
            d = models[name]
            shutil.copy(tok, os.path.join(d, "tokenizer.model"))
            model = reflib.load_hf(d)
            vocab = model.config.vocab_size
            ps = prompts(vocab, 100 + k)
            tokens = os.path.join(work, name + ".tok")
            write_tokens(tokens, ps, sha, vocab)
            # An EOS the model really emits: the 6th token of the first note's free run.
            free = hf_generate(model, ps, None)
            eos = free[0][5]
            set_eos(d, eos)
            ref = hf_generate(model, ps, eos)
            stops = sum(1 for r in ref if r and r[-1] == eos)
            try:
                got = vet_generate(d, tokens, work)
                rep.check("generate %s/base (%d of %d notes stop at EOS)" % (name, stops, len(ps)),
                          got == ref, describe(got, ref))
            except RuntimeError as e:
                rep.check("generate %s/base" % name, False, str(e))
            adir = os.path.join(work, name + "-lora")
            pm = make_adapter(model, adir, 7 + k)
            ref_lora = hf_generate(pm, ps, eos)
            differs = ref_lora != ref
            try:
                got = vet_generate(d, tokens, work, adapter=adir)
                rep.check("generate %s/lora (adapter changes the output: %s)" % (name, differs),
                          got == ref_lora and differs, describe(got, ref_lora) if got != ref_lora
                          else "the adapter did not change transformers' output: test is blind")
            except RuntimeError as e:
                rep.check("generate %s/lora" % name, False, str(e))
    rep.exit()


if __name__ == "__main__":
    main()
