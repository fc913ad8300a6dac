# test_parity.py — vet's forward and backward against Hugging Face transformers + PEFT.
#
# For each tiny model of make_models.py (llama2 MHA, llama3 GQA + rope scaling + untied,
# qwen2 with biases + tied) and each case:
#   lora-qkvo   PEFT LoRA r=4 alpha=8 on q,k,v,o (lora_B random so A's gradients are non-trivial)
#   lora-all    the same on all seven projections
#   rslora      use_rslora=True (scale alpha/sqrt(r)), once
#   full        no adapter, every weight's gradient
# and each batch (unpacked: one sample per padded row; packed: 2-3 samples per row), vet-fwdbwd
# computes logits, mean loss and gradients, and PyTorch computes the same with every sample run
# separately (the definition of correct packing). PEFT saves the adapters, vet loads them: this
# also checks that PEFT-made adapters load in vet.
#
# One line per (model, case, batch, quantity); the measured error is on stderr.
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reflib  # noqa: E402

TOL_LOGITS = 1e-4   # max |vet - ref| / max |ref|
TOL_LOSS = 1e-4     # |vet - ref| / |ref|
TOL_GRAD = 1e-3     # per tensor: max |vet - ref| / max |ref|

QKVO = ["q_proj", "k_proj", "v_proj", "o_proj"]
ALL7 = QKVO + ["gate_proj", "up_proj", "down_proj"]


def make_adapter(base, targets, rslora, seed, outdir, r=4, alpha=8):
    """A PEFT LoRA adapter (rank r) on base with random non-zero lora_B, saved to outdir; returns
    the PeftModel (which shares base's weights)."""
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(seed)
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets,
                     use_rslora=rslora, bias="none", task_type="CAUSAL_LM")
    pm = get_peft_model(base, cfg)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.2)
    pm.save_pretrained(outdir)
    pm.eval()
    return pm


def check_case(rep, label, vet_out, ref_logits, ref_loss, ref_grads):
    logits, loss, grads = vet_out
    e = reflib.compare_logits(logits, ref_logits)
    rep.check("%s logits max-rel-err %.2e" % (label, e), e <= TOL_LOGITS, "tol %.0e" % TOL_LOGITS)
    e = abs(loss.double().item() - ref_loss.double().item()) / abs(ref_loss.item())
    rep.check("%s loss rel-err %.2e" % (label, e), e <= TOL_LOSS,
              "vet %.7f torch %.7f" % (loss.item(), ref_loss.item()))
    e, worst, problem = reflib.compare_grads(grads, ref_grads)
    rep.check("%s grads(%d) max-rel-err %.2e" % (label, len(ref_grads), e), e <= TOL_GRAD,
              problem or "worst %s, tol %.0e" % (worst, TOL_GRAD))


def main():
    rep = reflib.Report()
    if not reflib.have_fwdbwd():
        rep.skip("parity", "%s not built (make helpers)" % reflib.FWDBWD)
        return rep.exit()
    with reflib.tmpdir() as tmp:
        models = reflib.make_models(os.path.join(tmp, "models"))
        for mi, (mname, mdir) in enumerate(models.items()):
            base = reflib.load_hf(mdir)
            vocab = base.config.vocab_size
            g = torch.Generator().manual_seed(1000 + mi)
            batches = {"unpacked": reflib.unpacked_batch(g, vocab),
                       "packed": reflib.packed_batch(g, vocab)}

            cases = [("lora-qkvo", QKVO, False), ("lora-all", ALL7, False)]
            if mi == 0:
                cases.append(("rslora", QKVO, True))
            for ci, (cname, targets, rslora) in enumerate(cases):
                base = reflib.load_hf(mdir)  # get_peft_model modifies the model in place
                adir = os.path.join(tmp, "%s-%s" % (mname, cname))
                pm = make_adapter(base, targets, rslora, 10 * mi + ci, adir)
                for bname, rows in batches.items():
                    label = "%s %s %s" % (mname, cname, bname)
                    try:
                        vet = reflib.vet_fwdbwd(mdir, rows, tmp, adapter=adir, tag=label.replace(" ", "-"))
                    except RuntimeError as ex:
                        rep.check("%s vet-fwdbwd" % label, False, str(ex))
                        continue
                    ref_logits, ref_loss = reflib.reference_fwdbwd(pm, rows)
                    check_case(rep, label, vet, ref_logits, ref_loss, reflib.lora_grads(pm))

            base = reflib.load_hf(mdir)
            for p in base.parameters():
                p.requires_grad_(True)
            for bname, rows in batches.items():
                label = "%s full %s" % (mname, bname)
                try:
                    vet = reflib.vet_fwdbwd(mdir, rows, tmp, full=True, tag=label.replace(" ", "-"))
                except RuntimeError as ex:
                    rep.check("%s vet-fwdbwd" % label, False, str(ex))
                    continue
                ref_logits, ref_loss = reflib.reference_fwdbwd(base, rows)
                check_case(rep, label, vet, ref_logits, ref_loss, reflib.full_grads(base))
    rep.exit()


if __name__ == "__main__":
    main()
