# test_device_parity.py — the GPU model (kernels/host/gpu_model.h) against PyTorch + PEFT, in
# fp32 and in the 16-bit formats.
#
# vet's side is `vet-fwdbwd --device cuda`: by default the emulated device's build
# (build/emu/vet-fwdbwd, mk/gpuemu.mk: vet's kernels as written, run by the SIMT emulator, cuBLAS
# done on the host), or the program VET_FWDBWD_DEVICE names (the GPU bundle's, on a real GPU).
# For each tiny model of make_models.py (llama2, llama3 with GQA and rope scaling, qwen2 with
# biases and tied embeddings), PEFT LoRA r=4 alpha=8 on q,k,v,o and on all seven projections
# (lora_B random; on llama3 also rank 48, alpha 16, on the five projections at least 48 wide:
# vet's adapter kernels take ranks up to 32 and run it in blocks), one packed batch, one forward
# and backward:
#
#   fp32   against PyTorch fp32 to the CPU core's tolerances (loss 1e-4, gradients 1e-3 of each
#          tensor's largest entry): the kernels only sum in other orders. Also full fine-tuning.
#   bf16   PyTorch has no reference to these digits: a model in bf16 differs from the fp32 one
#   fp16   by its roundings, wherever they fall. So the fp32 reference is the truth, and vet's
#          error against it must be no larger than PyTorch's own in the same format (the base
#          model cast to it, the adapter kept in fp32 as PEFT does, each sample run alone):
#          gradients at most GRAD_RATIO times PyTorch's worst-tensor error, the loss at most
#          LOSS_RATIO times PyTorch's or a sixteenth of the format's unit roundoff, whichever is
#          larger (a loss error of 1e-6 is luck, not a bar). A mistake in a 16-bit path (a scale,
#          a missed term, a wrong operand) errs by orders of magnitude more; roundings of the kind
#          PyTorch makes do not. fp16 runs with a loss scale of 1024 on both sides (its gradients
#          would underflow without one, as in training).
#   The 16-bit mode's alternative kernels, each selected by its VET_GPU_* setting (vet-train(1)),
#   are held to the same bar on llama3 with all seven projections.
#
# --quick (the GPU bundle's torch-parity part, where a lease's seconds count): llama3 and qwen2
# with all seven projections (and llama3's rank 48) in the three formats, no alternatives, no
# full fine-tuning; the
# VET_GPU_* settings the bundle chose are in the environment, so it checks what the benchmarks
# after it run.
#
# Skipped (cleanly) where the emulated device is not built (no CUDA toolkit headers: make gpuemu)
# and in the suite's sanitizer pass (the emulator build is ASan + UBSan already).
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reflib  # noqa: E402
from test_parity import ALL7, QKVO, make_adapter  # noqa: E402

TOL_LOSS32, TOL_GRAD32 = 1e-4, 1e-3
GRAD_RATIO, LOSS_RATIO = 1.5, 2.0
WIDE = ["q_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # llama3's k, v are 32 wide
UNIT_ROUNDOFF = {"bf16": 2.0 ** -8, "fp16": 2.0 ** -11}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
LOSS_SCALE = {"fp32": 1.0, "bf16": 1.0, "fp16": 1024.0}
# The 16-bit mode's alternatives (kernels/host/gpu_train_backend.c reads them as vet-train does).
VARIANTS = [
    ("attention fp32", {"VET_GPU_ATTENTION": "fp32"}),
    ("attention tc-sync", {"VET_GPU_ATTENTION": "tc-sync"}),
    ("attention tc-transposed", {"VET_GPU_ATTENTION": "tc-transposed"}),
    ("lora cuda cores", {"VET_GPU_LORA_MMA": "0"}),
    ("lora unfused", {"VET_GPU_LORA_FUSED": "0"}),
    ("lora up vet", {"VET_GPU_LORA_UP": "vet"}),
    ("narrow passes", {"VET_GPU_WIDE": "0"}),
]


def device_program():
    """The vet-fwdbwd to run with --device cuda, and why not when there is none."""
    prog = os.environ.get("VET_FWDBWD_DEVICE")
    if prog:
        return prog, "" if os.access(prog, os.X_OK) else "VET_FWDBWD_DEVICE=%s is not an executable" % prog
    emu = os.environ.get("VET_EMU") or os.path.join(reflib.TOP, "build", "emu")
    prog = os.path.join(emu, "vet-fwdbwd")
    if os.environ.get("VET_SANITIZE") == "1":
        return prog, "ran in the plain pass (the emulated device is one ASan + UBSan build)"
    if not os.access(prog, os.X_OK):
        return prog, "%s not built (make gpuemu; needs the CUDA toolkit's headers)" % prog
    return prog, ""


def vet_device(prog, mdir, rows, workdir, tag, dtype, adapter=None, full=False, env=None):
    """vet's loss and gradients {name: tensor} from one pass on the device."""
    from safetensors.torch import load_file
    batch = os.path.join(workdir, tag + ".json")
    out = os.path.join(workdir, tag + ".safetensors")
    reflib.write_batch(batch, rows)
    args = [prog, "--model", mdir, "--batch", batch, "--out", out, "--device", "cuda", "--dtype", dtype,
            "--loss-scale", str(LOSS_SCALE[dtype]), "--threads", "2"]
    args += ["--adapter", adapter] if adapter else ["--full"] if full else []
    p = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    if p.returncode != 0:
        raise RuntimeError("vet-fwdbwd %s: exit %d: %s" % (" ".join(args[1:]), p.returncode, p.stderr.strip()[-2000:]))
    t = load_file(out)
    if "logits" in t:
        raise RuntimeError("vet-fwdbwd --device cuda wrote logits: the CPU core ran, not the device")
    return t.pop("loss"), t


def torch_lora(mdir, adir, rows, dtype):
    """PyTorch's loss and LoRA gradients with the base model in dtype and the adapter (PEFT's
    autocast_adapter_dtype) in fp32; fp16's loss scaled for the backward and the gradients
    unscaled, as vet's."""
    from peft import PeftModel
    base = reflib.load_hf(mdir).to(DTYPES[dtype])
    pm = PeftModel.from_pretrained(base, adir, is_trainable=True)
    pm.zero_grad(set_to_none=True)
    _, loss = reflib.reference_forward(pm, rows)
    (loss * LOSS_SCALE[dtype]).backward()
    grads = {k: g.float() / LOSS_SCALE[dtype] for k, g in reflib.lora_grads(pm).items()}
    return loss.detach().float(), grads


def rel(a, b):
    return abs(a.double().item() - b.double().item()) / abs(b.double().item())


def check_fp32(rep, label, vet_out, ref_loss, ref_grads):
    loss, grads = vet_out
    e = rel(loss, ref_loss)
    rep.check("%s loss rel-err %.2e" % (label, e), e <= TOL_LOSS32, "vet %.7f torch %.7f" % (loss.item(), ref_loss.item()))
    e, worst, problem = reflib.compare_grads(grads, ref_grads)
    rep.check("%s grads(%d) max-rel-err %.2e" % (label, len(ref_grads), e), e <= TOL_GRAD32,
              problem or "worst %s, tol %.0e" % (worst, TOL_GRAD32))


def check_16(rep, label, dtype, vet_out, torch_out, ref_loss, ref_grads):
    """vet's errors against the fp32 reference, bounded by PyTorch's in the same format."""
    (vl, vg), (tl, tg) = vet_out, torch_out
    ev, et = rel(vl, ref_loss), rel(tl, ref_loss)
    bound = max(LOSS_RATIO * et, UNIT_ROUNDOFF[dtype] / 16)
    rep.check("%s loss rel-err %.2e (torch %s %.2e)" % (label, ev, dtype, et), ev <= bound,
              "vet %.7f, torch %s %.7f, fp32 %.7f; bound %.2e" % (vl.item(), dtype, tl.item(), ref_loss.item(), bound))
    ev, worst, problem = reflib.compare_grads(vg, ref_grads)
    et, tworst, tproblem = reflib.compare_grads(tg, ref_grads)
    rep.check("%s grads(%d) max-rel-err %.2e (torch %s %.2e)" % (label, len(ref_grads), ev, dtype, et),
              not problem and not tproblem and ev <= GRAD_RATIO * et,
              problem or tproblem or "vet's worst %s, torch's worst %s; bound %.2e" % (worst, tworst, GRAD_RATIO * et))


def check_refusals(rep, prog):
    """vet-fwdbwd refuses, before reading anything, a 16-bit format on the CPU, a bad device and a
    loss scale that is not positive: the exit status and the message naming the flag."""
    cases = [(["--dtype", "bf16"], 2, "bf16 base weights need --device cuda"),
             (["--device", "gpu"], 2, "--device: 'gpu' is not cpu, cuda or cuda:N"),
             (["--device", "cuda", "--loss-scale", "0"], 1, "--loss-scale: give a positive number")]
    for args, status, msg in cases:
        p = subprocess.run([prog, "--model", "none", "--batch", "none.json", "--out", "none.st"] + args,
                           capture_output=True, text=True)
        rep.check("vet-fwdbwd %s refused (exit %d)" % (" ".join(args), status),
                  p.returncode == status and msg in p.stderr, "exit %d: %s" % (p.returncode, p.stderr.strip()))


def main():
    quick = sys.argv[1:] == ["--quick"]
    if sys.argv[1:] and not quick:
        sys.exit("usage: test_device_parity.py [--quick]")
    rep = reflib.Report()
    if reflib.have_fwdbwd() and not quick:
        check_refusals(rep, reflib.FWDBWD)
    prog, why = device_program()
    if why:
        rep.skip("device_parity", why)
        return rep.exit()
    with reflib.tmpdir() as tmp:
        models = reflib.make_models(os.path.join(tmp, "models"))
        for mi, (mname, mdir) in enumerate(models.items()):
            if quick and mname == "llama2":
                continue
            base = reflib.load_hf(mdir)
            rows = reflib.packed_batch(torch.Generator().manual_seed(1000 + mi), base.config.vocab_size)
            cases = [("lora-qkvo", QKVO, 4, 8), ("lora-all", ALL7, 4, 8)]
            if mname == "llama3":  # rank over 32: vet's kernels run it in blocks of 32 and 16
                cases.append(("lora-r48", WIDE, 48, 16))
            for ci, (cname, targets, rank, alpha) in enumerate(cases):
                if quick and cname == "lora-qkvo":
                    continue
                adir = os.path.join(tmp, "%s-%s" % (mname, cname))
                pm = make_adapter(reflib.load_hf(mdir), targets, False, 10 * mi + ci, adir, r=rank, alpha=alpha)
                _, ref_loss = reflib.reference_fwdbwd(pm, rows)
                ref_grads = reflib.lora_grads(pm)
                runs = [(dtype, "", {}) for dtype in DTYPES]
                if mname == "llama3" and cname == "lora-all" and not quick:
                    runs += [("bf16", vname, env) for vname, env in VARIANTS]
                torch_16 = {}
                for dtype, vname, env in runs:
                    label = " ".join(x for x in ("device", mname, cname, dtype, vname) if x)
                    try:
                        vet = vet_device(prog, mdir, rows, tmp, label.replace(" ", "-"), dtype, adapter=adir, env=env)
                    except RuntimeError as ex:
                        rep.check("%s vet-fwdbwd" % label, False, str(ex))
                        continue
                    if dtype == "fp32":
                        check_fp32(rep, label, vet, ref_loss, ref_grads)
                        continue
                    if dtype not in torch_16:
                        torch_16[dtype] = torch_lora(mdir, adir, rows, dtype)
                    check_16(rep, label, dtype, vet, torch_16[dtype], ref_loss, ref_grads)

            # Full fine-tuning (fp32 only on the device): every base weight's gradient.
            if quick:
                continue
            base = reflib.load_hf(mdir)
            for p in base.parameters():
                p.requires_grad_(True)
            label = "device %s full fp32" % mname
            try:
                vet = vet_device(prog, mdir, rows, tmp, label.replace(" ", "-"), "fp32", full=True)
            except RuntimeError as ex:
                rep.check("%s vet-fwdbwd" % label, False, str(ex))
                continue
            _, ref_loss = reflib.reference_fwdbwd(base, rows)
            check_fp32(rep, label, vet, ref_loss, reflib.full_grads(base))
    rep.exit()


if __name__ == "__main__":
    main()
