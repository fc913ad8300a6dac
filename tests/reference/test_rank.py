# test_rank.py — vet-generate --rank's scores against transformers (and PEFT).
#
# For each tiny random model of make_models.py (llama2, llama3, qwen2), without and with a PEFT
# LoRA adapter (r=4 on all seven projections, lora_B random so it matters): a few random
# prompts, a code table of codes and terms, and for each label its answer, the ids Python's
# SentencePiece gives "Diagnosed conditions: LABEL" followed by the EOS id, as vet-tokenize
# writes a response. transformers computes logp = sum of log_softmax over the answer's ids after
# the prompt (one forward of prompt + answer); vet-generate --rank K (K = the whole table) must
# list every label with that logp (relative 1e-4: fp32 sums in another order), p = softmax of
# logp over the table, best first, and pred = the best label.
import hashlib
import json
import math
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reflib  # noqa: E402
import test_generate as tg  # noqa: E402  (tokenizer, prompts, tokens stream, adapter)

LABELS = ["1679004", "3974005", "72934000", "198462004", "Mastitis", "Foot rot"]
PREFIX = "Diagnosed conditions: "
EOS = 2  # the SentencePiece model's eos_id (the stream's header names none)
REL = 1e-4


def answers(tok_path):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=tok_path)
    return [sp.encode(PREFIX + label) + [EOS] for label in LABELS]


def hf_logp(model, prompt, ans):
    with torch.no_grad():
        ids = torch.tensor([prompt + ans[:-1]])
        logits = model(input_ids=ids).logits[0].double()
        ls = torch.log_softmax(logits, dim=-1)
        n = len(prompt)
        return sum(ls[n - 1 + t, a].item() for t, a in enumerate(ans))


def vet_rank(model_dir, tokens, table, work, adapter=None):
    out = os.path.join(work, "ranked")
    args = [tg.GEN, "-q", "--model", model_dir, "--rank", str(len(LABELS)), "--constrain", table,
            "--threads", "2", tokens, "-o", out]
    if adapter:
        args += ["--adapter", adapter]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("vet-generate: exit %d: %s" % (p.returncode, p.stderr.strip()))
    d = subprocess.run([tg.DUMP, "-r", out], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in d.stdout.splitlines() if line.strip()]


def compare(recs, ref):
    """The worst relative logp error, or a string saying what is wrong."""
    worst = 0.0
    for i, (rec, lps) in enumerate(zip(recs, ref)):
        ranked = rec.get("ranked") or []
        if sorted(r["label"] for r in ranked) != sorted(LABELS):
            return "note %d lists %s" % (i, [r["label"] for r in ranked])
        total = math.log(sum(math.exp(x) for x in lps))
        for j, r in enumerate(ranked):
            want = lps[LABELS.index(r["label"])]
            worst = max(worst, abs(r["logp"] - want) / max(1.0, abs(want)))
            if abs(r["p"] - math.exp(want - total)) > 1e-4:
                return "note %d label %s: p %g, transformers' softmax %g" % (i, r["label"], r["p"],
                                                                            math.exp(want - total))
            if j and ranked[j - 1]["p"] < r["p"]:
                return "note %d: not ordered by p" % i
        if rec["pred"] != [ranked[0]["label"]]:
            return "note %d: pred %s, best %s" % (i, rec["pred"], ranked[0]["label"])
    return worst


def main():
    rep = reflib.Report()
    names = ["llama2", "llama3", "qwen2"]
    for tool in (tg.GEN, tg.DUMP, tg.MKTOKENS):
        if not os.access(tool, os.X_OK):
            rep.skip("rank", "%s not built (make && make helpers)" % tool)
            rep.exit()
    with reflib.tmpdir() as work:
        try:
            tok = tg.train_tokenizer(work)
        except Exception as e:  # noqa: BLE001
            rep.skip("rank", "cannot train a SentencePiece model: %s" % e)
            rep.exit()
        sha = hashlib.sha256(open(tok, "rb").read()).hexdigest()
        ans = answers(tok)
        table = os.path.join(work, "codes.tsv")
        with open(table, "w") as f:
            f.write("".join(label + "\n" for label in LABELS))
        models = reflib.make_models(os.path.join(work, "models"))
        for k, name in enumerate(names):
            d = models[name]
            subprocess.run(["cp", tok, os.path.join(d, "tokenizer.model")], check=True)
            model = reflib.load_hf(d)
            ps = tg.prompts(model.config.vocab_size, 200 + k)
            tokens = os.path.join(work, name + ".tok")
            tg.write_tokens(tokens, ps, sha, model.config.vocab_size)
            # The base first: make_adapter wraps the model's own layers.
            for label in ("base", "lora"):
                adapter = None
                if label == "lora":
                    adapter = os.path.join(work, name + "-lora")
                    model = tg.make_adapter(model, adapter, 17 + k)
                ref = [[hf_logp(model, p, a) for a in ans] for p in ps]
                try:
                    got = compare(vet_rank(d, tokens, table, work, adapter), ref)
                except RuntimeError as e:
                    got = str(e)
                worst = "%.1e" % got if isinstance(got, float) else "-"
                rep.check("rank %s/%s (worst logp error %s)" % (name, label, worst),
                          isinstance(got, float) and got <= REL,
                          got if isinstance(got, str) else "logp error %.3g > %g" % (got, REL))
    rep.exit()


if __name__ == "__main__":
    main()
