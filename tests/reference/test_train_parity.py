# test_train_parity.py — vet-train against a PyTorch + PEFT training loop, step for step.
#
# The same tiny Llama-3 model, the same starting LoRA adapter (made by PEFT, B random so every
# tensor moves from step 1), the same packed rows; 20 optimizer steps of AdamW with a cosine
# schedule with warmup, weight decay, gradient clipping and gradient accumulation. The loss of
# every step must agree within 1e-4 (relative), and so must the final adapter weights (relative
# to each tensor's largest entry, 1e-3). Then the `--merge` output must load in transformers
# and give the logits of base + adapter in PEFT.
#
# Each step covers all rows (4 rows = 2 micro-batches of 2 = one step), so the loss of a step
# does not depend on the order in which vet visits the rows.
import json
import os
import subprocess
import sys

import torch

import reflib
from reflib import Report, log

STEPS, LR, WARMUP_RATIO, WD, CLIP = 20, 2e-2, 0.1, 0.01, 0.5


def write_packed(path, rows, vocab):
    """A `packed` vet stream written from Python (zstd + msgpack, docs/formats.md)."""
    import msgpack
    import zstandard
    objs = [{"vet": 1, "kind": "packed", "program": "test_train_parity", "version": "0",
             "tokenizer": {"sha256": "", "vocab_size": vocab, "bos_id": 1, "eos_id": 2, "pad_id": -1},
             "split": "train", "seq_len": 64, "packed": True}]
    for i, r in enumerate(rows):
        ids = ["s%d-%d" % (i, k) for k in range(len(r["starts"]))]
        objs.append(dict(r, ids=ids, species=[""] * len(ids), codes=[[]] * len(ids),
                         prompt_lens=[1] * len(ids)))
    objs.append({"end": True, "records": len(rows)})
    raw = b"".join(msgpack.packb(o) for o in objs)
    with open(path, "wb") as f:
        f.write(zstandard.ZstdCompressor(write_checksum=True).compress(raw))


def main():
    rep = Report()
    trainer = os.path.join(os.environ.get("VET_BIN", os.path.join(reflib.TOP, "bin")), "vet-train")
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import get_cosine_schedule_with_warmup

    with reflib.tmpdir() as tmp:
        base = reflib.make_models(tmp)["llama3"]
        model = reflib.load_hf(base)
        vocab = model.config.vocab_size
        # The starting adapter: PEFT's init for A, and B random (not zero) so A trains from step 1.
        torch.manual_seed(7)
        cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
        peft = get_peft_model(model, cfg)
        with torch.no_grad():
            for name, p in peft.named_parameters():
                if "lora_B" in name:
                    p.copy_(0.05 * torch.randn(p.shape))
        start = os.path.join(tmp, "start")
        peft.save_pretrained(start)

        g = torch.Generator().manual_seed(11)
        rows = [reflib.make_row(g, vocab, ls) for ls in ([9, 12, 6], [14, 8], [5, 7, 10], [16])]
        packed = os.path.join(tmp, "train.msgpack.zst")
        write_packed(packed, rows, vocab)

        out = os.path.join(tmp, "out")
        cmd = [trainer, "--base", base, "--adapter", start, "--train", packed, "--out", out, "--merge",
               "--lora-dropout", "0", "--batch-size", "2", "--grad-accum", "2", "--epochs", str(STEPS),
               "--lr", str(LR), "--warmup-ratio", str(WARMUP_RATIO), "--weight-decay", str(WD),
               "--max-grad-norm", str(CLIP), "--scheduler", "cosine", "--threads", "2", "-q"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if not rep.check("train_parity_vet_train_runs", p.returncode == 0, p.stderr[-2000:]):
            rep.exit()
        vet_log = [json.loads(l) for l in open(os.path.join(out, "train.log.jsonl"))]

        # The same loop in PyTorch.
        def torch_loop(label_smoothing):
            ref = PeftModel.from_pretrained(reflib.load_hf(base), start, is_trainable=True)
            params = [p for p in ref.parameters() if p.requires_grad]
            opt = torch.optim.AdamW(params, lr=LR, weight_decay=WD)
            warmup = -(-int(WARMUP_RATIO * STEPS * 1000) // 1000)  # ceil, as transformers' Trainer
            sched = get_cosine_schedule_with_warmup(opt, warmup, STEPS)
            ref_loss, ref_lr = [], []
            for _ in range(STEPS):
                ref_lr.append(opt.param_groups[0]["lr"])
                opt.zero_grad(set_to_none=True)
                _, loss = reflib.reference_forward(ref, rows, label_smoothing)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, CLIP)
                opt.step()
                sched.step()
                ref_loss.append(loss.item())
            return ref, ref_loss, ref_lr
        ref, ref_loss, ref_lr = torch_loop(0.0)

        ok_len = rep.check("train_parity_step_count", len(vet_log) == STEPS, "vet logged %d steps" % len(vet_log))
        if ok_len:
            lr_err = max(abs(v["lr"] - r) / LR for v, r in zip(vet_log, ref_lr))
            loss_err = max(abs(v["loss"] - r) / abs(r) for v, r in zip(vet_log, ref_loss))
            log("train parity: loss %.5f -> %.5f (torch %.5f -> %.5f), max rel loss error %.2e, lr error %.2e"
                % (vet_log[0]["loss"], vet_log[-1]["loss"], ref_loss[0], ref_loss[-1], loss_err, lr_err))
            rep.check("train_parity_schedule", lr_err < 1e-6, "lr error %.3g" % lr_err)
            rep.check("train_parity_loss_curve_1e-4", loss_err <= 1e-4, "max rel loss error %.3g" % loss_err)
            rep.check("train_parity_loss_falls", ref_loss[-1] < 0.95 * ref_loss[0], "torch loss did not fall: blind test")

        from safetensors.torch import load_file
        vet_ad = load_file(os.path.join(out, "adapter_model.safetensors"))
        ref_dir = os.path.join(tmp, "ref_out")
        ref.save_pretrained(ref_dir)
        ref_ad = load_file(os.path.join(ref_dir, "adapter_model.safetensors"))
        worst, name, problem = reflib.compare_grads(vet_ad, ref_ad)
        log("train parity: final adapter worst rel error %.2e (%s)" % (worst, name))
        rep.check("train_parity_final_adapter_1e-3", not problem and worst <= 1e-3, problem or "%s: %.3g" % (name, worst))

        # --label-smoothing: the loss torch's cross_entropy(label_smoothing=0.1) gives, the
        # same updates, and not the plain run's curve (so the flag is not ignored).
        out_ls = os.path.join(tmp, "out-ls")
        cmd_ls = [a for a in cmd if a != "--merge"]
        cmd_ls[cmd_ls.index(out)] = out_ls
        p = subprocess.run(cmd_ls + ["--label-smoothing", "0.1"], capture_output=True, text=True)
        if rep.check("train_label_smoothing_runs", p.returncode == 0, p.stderr[-2000:]):
            ls_log = [json.loads(l) for l in open(os.path.join(out_ls, "train.log.jsonl"))]
            ref_ls, ls_loss, _ = torch_loop(0.1)
            err = max(abs(v["loss"] - r) / abs(r) for v, r in zip(ls_log, ls_loss)) if len(ls_log) == STEPS else 1.0
            differs = abs(ls_loss[-1] - ref_loss[-1]) / ref_loss[-1]  # at the start both are near log V
            log("label smoothing 0.1: loss %.5f -> %.5f (torch %.5f -> %.5f), max rel error %.2e; plain loss differs by %.2e"
                % (ls_log[0]["loss"], ls_log[-1]["loss"], ls_loss[0], ls_loss[-1], err, differs))
            rep.check("train_label_smoothing_loss_curve_1e-4", err <= 1e-4 and differs > 1e-3,
                      "max rel loss error %.3g, differs from plain by %.3g" % (err, differs))
            ref_ls.save_pretrained(os.path.join(tmp, "ref_ls"))
            worst, name, problem = reflib.compare_grads(
                load_file(os.path.join(out_ls, "adapter_model.safetensors")),
                load_file(os.path.join(tmp, "ref_ls", "adapter_model.safetensors")))
            rep.check("train_label_smoothing_final_adapter_1e-3", not problem and worst <= 1e-3,
                      problem or "%s: %.3g" % (name, worst))

        # --merge: transformers loads OUT/merged, and it computes what base + adapter computes in PEFT.
        merged = reflib.load_hf(os.path.join(out, "merged"))
        with_adapter = PeftModel.from_pretrained(reflib.load_hf(base), out)
        with_adapter.eval()
        a = reflib.reference_logits(merged, rows)
        b = reflib.reference_logits(with_adapter, rows)
        err = max(reflib.rel_to_max(x, y) for x, y in zip(a, b))
        log("train parity: merged model vs base+adapter logits, rel error %.2e" % err)
        rep.check("train_merged_model_loads_and_matches_1e-4", err <= 1e-4, "rel error %.3g" % err)
    rep.exit()


if __name__ == "__main__":
    main()
