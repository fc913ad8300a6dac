# reflib.py — shared helpers for the reference (PyTorch) tests in tests/reference/.
#
# The reference suite checks vet's model core against Hugging Face transformers + PEFT on tiny
# random models (tests/reference/make_models.py). vet's side runs through the test tool
# build/rel/tests/helpers/vet-fwdbwd, which writes logits, loss and gradients to a safetensors
# file; this module computes the same quantities in PyTorch and compares them.
#
# Everything here is float32 on the CPU with eager attention, so differences come only from
# summation order (see docs/reference.md for the tolerances and why).
import json
import os
import subprocess
import sys
import tempfile

import torch

from tap import Report  # noqa: F401  (the tests use reflib.Report)

torch.set_num_threads(int(os.environ.get("VET_REF_THREADS", "1")))  # tiny models: threads only add spin-waits
try:  # save_pretrained's progress bars would bury the figures on stderr
    from huggingface_hub.utils import disable_progress_bars
    disable_progress_bars()
except ImportError:
    pass

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("VET_TOP") or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("VET_BUILD") or os.path.join(TOP, "build", "rel")
FWDBWD = os.path.join(BUILD, "tests", "helpers", "vet-fwdbwd")


# --------------------------------------------------------------------------------------
# The line protocol of tests/run: ok NAME | not ok NAME | skip NAME: why
def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Tiny models
def make_models(outdir):
    """Builds the tiny HF models into outdir with make_models.py; returns {name: dir}."""
    p = subprocess.run([sys.executable, os.path.join(HERE, "make_models.py"), outdir],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("make_models.py %s: exit %d: %s" % (outdir, p.returncode, p.stderr[-2000:]))
    found = {}
    for name in sorted(os.listdir(outdir)):
        d = os.path.join(outdir, name)
        if os.path.isfile(os.path.join(d, "config.json")):
            found[name] = d
    if not found:
        raise RuntimeError("make_models.py made no model directory in %s" % outdir)
    return found


def load_hf(model_dir):
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()  # keeps stderr for the figures
    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                             attn_implementation="eager")
    m.eval()  # no dropout anywhere (LoRA dropout is 0 too)
    return m


# --------------------------------------------------------------------------------------
# Batches: rows as vet-pack writes them (docs/formats.md)
def make_sample(g, vocab, n, prompt):
    """A sample of n random tokens whose first `prompt` positions carry no loss; targets are the
    next token within the sample, -1 at the last position."""
    toks = torch.randint(0, vocab, (n,), generator=g).tolist()
    tgts = toks[1:] + [-1]
    for i in range(min(prompt, n)):
        tgts[i] = -1
    return toks, tgts


def make_row(g, vocab, lengths):
    """A packed row of samples with the given lengths."""
    tokens, targets, starts = [], [], []
    for n in lengths:
        prompt = int(torch.randint(1, max(2, n // 2), (1,), generator=g))
        t, y = make_sample(g, vocab, n, prompt)
        starts.append(len(tokens))
        tokens += t
        targets += y
    return {"tokens": tokens, "targets": targets, "starts": starts}


def unpacked_batch(g, vocab):
    """One sample per row, rows of different lengths (so the shorter ones are padded)."""
    return [make_row(g, vocab, [n]) for n in (11, 7, 16)]


def packed_batch(g, vocab):
    """Two or three samples of different lengths per row, rows of different lengths."""
    return [make_row(g, vocab, ls) for ls in ([6, 9, 4], [12, 5], [3, 8, 7])]


def write_batch(path, rows):
    with open(path, "w") as f:
        json.dump({"rows": rows}, f)


def n_targets(rows):
    return sum(1 for r in rows for y in r["targets"] if y != -1)


# --------------------------------------------------------------------------------------
# vet's side
def have_fwdbwd():
    return os.access(FWDBWD, os.X_OK)


def run_fwdbwd(args):
    """Runs vet-fwdbwd with args; raises with its stderr on failure."""
    p = subprocess.run([FWDBWD] + args + ["--threads", "2"], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("vet-fwdbwd %s: exit %d: %s" % (" ".join(args), p.returncode,
                                                           p.stderr.strip()))
    return p


def vet_fwdbwd(model_dir, rows, workdir, adapter=None, full=False, tag="run"):
    """vet's logits (B,T,V), loss and gradients {name: tensor} for rows."""
    from safetensors.torch import load_file
    batch = os.path.join(workdir, tag + ".json")
    out = os.path.join(workdir, tag + ".safetensors")
    write_batch(batch, rows)
    args = ["--model", model_dir, "--batch", batch, "--out", out]
    if adapter:
        args += ["--adapter", adapter]
    if full:
        args += ["--full"]
    run_fwdbwd(args)
    t = load_file(out)
    logits = t.pop("logits")
    loss = t.pop("loss")
    return logits, loss, t


# --------------------------------------------------------------------------------------
# PyTorch's side
def reference_forward(model, rows, label_smoothing=0.0):
    """The definition of correct packing: every sample of every row runs SEPARATELY through the
    model. Returns per-row logits (list of detached (n_row, V) tensors) and the mean
    cross-entropy over all target positions of the batch (a graph, for backward)."""
    total = n_targets(rows)
    loss_sum = 0.0
    row_logits = []
    for r in rows:
        n = len(r["tokens"])
        bounds = r["starts"] + [n]
        parts = []
        for s, e in zip(bounds[:-1], bounds[1:]):
            ids = torch.tensor([r["tokens"][s:e]])
            tgt = torch.tensor(r["targets"][s:e])
            logits = model(input_ids=ids).logits[0].float()  # (n_sample, V)
            parts.append(logits.detach())
            keep = tgt != -1
            if keep.any():
                loss_sum = loss_sum + torch.nn.functional.cross_entropy(
                    logits[keep], tgt[keep], reduction="sum", label_smoothing=label_smoothing)
        row_logits.append(torch.cat(parts))
    return row_logits, loss_sum / total


def reference_fwdbwd(model, rows):
    """reference_forward, then backward of the mean loss: the gradients are in the parameters'
    .grad. Returns per-row logits and the loss."""
    model.zero_grad(set_to_none=True)
    row_logits, loss = reference_forward(model, rows)
    loss.backward()
    return row_logits, loss.detach()


def reference_logits(model, rows):
    """Per-row logits only (no gradients)."""
    with torch.no_grad():
        return reference_forward(model, rows)[0]


def lora_grads(peft_model):
    """{adapter tensor name: grad} of a PeftModel's LoRA parameters, named as in
    adapter_model.safetensors (PEFT drops the adapter name "default" when saving)."""
    out = {}
    for name, p in peft_model.named_parameters():
        if p.requires_grad:
            out[name.replace(".default.", ".")] = p.grad.detach().clone() if p.grad is not None \
                else torch.zeros_like(p)
    return out


def full_grads(model):
    """{HF name: grad} of every parameter (tied embeddings appear once, as embed_tokens)."""
    return {name: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
            for name, p in model.named_parameters()}


# --------------------------------------------------------------------------------------
# Comparisons
def rel_to_max(a, b):
    """max |a - b| / max |b|: error relative to the tensor's scale (element-wise relative error
    is meaningless for entries near zero)."""
    a = a.double()
    b = b.double()
    if a.shape != b.shape:
        return float("inf")
    scale = b.abs().max().item()
    diff = (a - b).abs().max().item()
    return diff / scale if scale > 0 else diff


def compare_logits(vet_logits, ref_rows):
    """Compares vet's (B,T,V) logits with the reference's per-row logits on real positions only
    (what vet writes at padding is not defined)."""
    worst = 0.0
    if vet_logits.dim() != 3 or vet_logits.shape[0] != len(ref_rows):
        return float("inf")
    for b, ref in enumerate(ref_rows):
        n = ref.shape[0]
        if vet_logits.shape[1] < n or vet_logits.shape[2] != ref.shape[1]:
            return float("inf")
        worst = max(worst, rel_to_max(vet_logits[b, :n], ref))
    return worst


def compare_grads(vet, ref):
    """(worst error, name of the worst tensor, problem) over every reference gradient; a
    missing or extra tensor, or a shape mismatch, is a problem."""
    missing = sorted(set(ref) - set(vet))
    extra = sorted(set(vet) - set(ref))
    if missing or extra:
        return float("inf"), "", "missing %s, unexpected %s" % (missing[:4], extra[:4])
    worst, worst_name = 0.0, ""
    for name in sorted(ref):
        if tuple(vet[name].shape) != tuple(ref[name].shape):
            return float("inf"), name, "%s: shape %s, expected %s" % (
                name, tuple(vet[name].shape), tuple(ref[name].shape))
        if ref[name].abs().max().item() == 0:
            return float("inf"), name, "%s: reference gradient is all zero (test is blind)" % name
        e = rel_to_max(vet[name], ref[name])
        if e > worst:
            worst, worst_name = e, name
    return worst, worst_name, ""


def tmpdir():
    return tempfile.TemporaryDirectory(prefix="vet-ref-")
