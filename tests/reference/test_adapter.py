# test_adapter.py — adapters vet writes are adapters PEFT reads.
#
# For each tiny model of make_models.py, vet-fwdbwd --save-adapter initialises a LoRA adapter
# (B random, so it changes the logits) and saves it as a PEFT directory. Then PEFT:
#   - reads adapter_config.json back to the same r, alpha, dropout, rsLoRA flag and targets;
#   - PeftModel.from_pretrained(base, dir) loads it with no warning about missing or
#     unexpected keys, and its LoRA weights are exactly the file's (nothing left at init);
#   - computes the same logits as vet with that adapter (max |diff| / max |logit| <= 1e-4).
# (The other direction, PEFT-saved adapters loading in vet, is covered by test_parity.py.)
import json
import logging
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reflib  # noqa: E402

TOL_LOGITS = 1e-4

# (case name, vet-fwdbwd flags, expected PEFT config)
CASES = [
    ("all-r4", ["--lora-r", "4", "--lora-alpha", "8", "--lora-targets", "all"],
     dict(r=4, lora_alpha=8, use_rslora=False, lora_dropout=0.0,
          target_modules={"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})),
    ("qv-rslora", ["--lora-r", "8", "--lora-alpha", "16", "--lora-targets", "q,v",
                   "--lora-dropout", "0.1", "--lora-rslora"],
     dict(r=8, lora_alpha=16, use_rslora=True, lora_dropout=0.1, target_modules={"q_proj", "v_proj"})),
]


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def load_with_peft(model_dir, adapter_dir):
    """PeftModel.from_pretrained, returning the model and every warning it raised (Python
    warnings and WARNING log records)."""
    from peft import PeftModel
    base = reflib.load_hf(model_dir)
    handler = Captured()
    logging.getLogger().addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pm = PeftModel.from_pretrained(base, adapter_dir)
    finally:
        logging.getLogger().removeHandler(handler)
    pm.eval()
    return pm, [str(w.message) for w in caught] + handler.messages


def check_config(rep, label, adapter_dir, want):
    from peft import LoraConfig
    cfg = LoraConfig.from_pretrained(adapter_dir)
    got = dict(r=cfg.r, lora_alpha=cfg.lora_alpha, use_rslora=cfg.use_rslora,
               lora_dropout=cfg.lora_dropout, target_modules=set(cfg.target_modules))
    ok = got == want and cfg.peft_type.value == "LORA" and cfg.task_type == "CAUSAL_LM" \
        and cfg.bias == "none"
    rep.check("%s config read by peft" % label, ok, "got %s, want %s" % (got, want))


def check_loaded(rep, label, pm, adapter_dir, msgs):
    from safetensors.torch import load_file
    bad = [m for m in msgs if "missing" in m.lower() or "unexpected" in m.lower()]
    rep.check("%s peft load without key warnings" % label, not bad, "; ".join(bad)[:400])
    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    live = {n.replace(".default.", "."): p.detach() for n, p in pm.named_parameters() if "lora_" in n}
    same_names = set(saved) == set(live)
    same_values = same_names and all(torch.equal(saved[n].float(), live[n].float()) for n in saved)
    rep.check("%s peft weights equal the file (%d tensors)" % (label, len(saved)), same_values,
              "file-only %s, model-only %s" % (sorted(set(saved) - set(live))[:3],
                                                 sorted(set(live) - set(saved))[:3]))


def main():
    rep = reflib.Report()
    if not reflib.have_fwdbwd():
        rep.skip("adapter", "%s not built (make helpers)" % reflib.FWDBWD)
        return rep.exit()
    with reflib.tmpdir() as tmp:
        models = reflib.make_models(os.path.join(tmp, "models"))
        for mi, (mname, mdir) in enumerate(models.items()):
            vocab = json.load(open(os.path.join(mdir, "config.json")))["vocab_size"]
            g = torch.Generator().manual_seed(2000 + mi)
            rows = reflib.packed_batch(g, vocab) + reflib.unpacked_batch(g, vocab)
            for ci, (cname, flags, want) in enumerate(CASES):
                label = "%s %s" % (mname, cname)
                adir = os.path.join(tmp, "%s-%s" % (mname, cname))
                try:
                    reflib.run_fwdbwd(["--model", mdir, "--save-adapter", adir,
                                       "--lora-seed", str(7 + 10 * mi + ci)] + flags)
                    vet_logits, _, _ = reflib.vet_fwdbwd(mdir, rows, tmp, adapter=adir,
                                                         tag=label.replace(" ", "-"))
                except RuntimeError as ex:
                    rep.check("%s vet-fwdbwd" % label, False, str(ex))
                    continue
                check_config(rep, label, adir, want)
                pm, msgs = load_with_peft(mdir, adir)
                check_loaded(rep, label, pm, adir, msgs)

                ref_logits = reflib.reference_logits(pm, rows)
                with pm.disable_adapter():
                    base_logits = reflib.reference_logits(pm, rows)
                # The adapter must matter, or matching logits would prove nothing.
                effect = max(reflib.rel_to_max(a, b) for a, b in zip(ref_logits, base_logits))
                rep.check("%s adapter changes logits by %.2e" % (label, effect), effect > 1e-2)
                e = reflib.compare_logits(vet_logits, ref_logits)
                rep.check("%s logits vs peft max-rel-err %.2e" % (label, e), e <= TOL_LOGITS,
                          "tol %.0e" % TOL_LOGITS)
    rep.exit()


if __name__ == "__main__":
    main()
