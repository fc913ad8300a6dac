#!/usr/bin/env python3
"""choose.py MID_LOG [PARITY_LOG...] -- the GPU bundle's choices by speed (run.sh, after its
fallbacks, before the benchmarks).

Several kernels written without a GPU have a twin that computes the same thing another way (the
same bits, or the same product within its rounding), and only a device says which is faster.
parity-mid's table (op_parity at a LLaMA-like layer) times both; this picks, for each such pair,
the one the rest of the lease should train with, so one call measures the 7B step with the
faster path instead of a second call after reading the table:

  VET_GPU_LORA_UP=vet        the adapters' up product by vet's kernel, when it is the faster of
                             it and cuBLAS's SGEMM (default: cuBLAS)
  VET_GPU_ATTENTION=tc-sync  the tensor-core attention's other tile schedules (tiles loaded, then
  | tc-transposed | cudnn    computed; the first lease's kernels) or cuDNN's fused attention
                             (not deterministic) when one of them is >= 3% faster than the
                             default (pipelined), forward (bf16 output) plus backward
  VET_GPU_LORA_MMA=0         the 16-bit adapters' products on CUDA cores when the four of them
                             (down, dA, du, dB at rank 16, bf16) are >= 3% faster than on the
                             tensor cores (the default)
  VET_GPU_WIDE=0             the element-wise passes one element a thread when their eight
                             ops are >= 3% faster than 16 bytes a thread (the default)

A path is chosen only when every parity row of it passed (in every log given) and both sides
were timed; a setting already in the environment (a fallback made it) is left as it is. The 3%
margin keeps the default on a tie (timing noise). Prints one line a choice, NAME=VALUE, a tab,
and why in Markdown; nothing when there is none. Exit status 0, 2 on a usage error.
"""
import os
import re
import sys

MARGIN = 0.97  # a non-default path must take less than this fraction of the default's time


def table_rows(path):
    """(name, shape, ms or None) for each row of op_parity's Markdown table."""
    rows = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if not line.startswith("| ") or len(cells) != 5 or cells[0] == "op" or cells[0].startswith("-"):
                    continue
                try:
                    ms = float(cells[4])
                except ValueError:
                    ms = None
                rows.append((cells[0], cells[1], ms))
    except OSError:
        pass
    return rows


def verdicts(paths):
    """Every `ok ...` and `not ok ...` line of the parity logs, without the verdict."""
    ok, bad = [], []
    for p in paths:
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("not ok "):
                        bad.append(line[7:])
                    elif line.startswith("ok "):
                        ok.append(line[3:])
        except OSError:
            pass
    return ok, bad


class Parity:
    def __init__(self, mid, logs):
        self.rows = table_rows(mid)
        self.ok, self.bad = verdicts(logs)

    def passed(self, prefix):
        """No failed row starting with prefix, and at least one that passed."""
        return not any(v.startswith(prefix) for v in self.bad) and any(v.startswith(prefix) for v in self.ok)

    def ms(self, name, shape_ok=lambda s: True):
        """The mean time of the rows called name whose shape passes shape_ok, or None."""
        t = [ms for n, s, ms in self.rows if n == name and shape_ok(s)]
        if not t or any(x is None or x <= 0 for x in t):
            return None
        return sum(t) / len(t)


def fmt(ms):
    return "%.4g ms" % ms


def up_choice(par):
    k = par.ms("lora_up (kernel: y += s u B^T)")
    b = par.ms("lora cuBLAS up (y += s u B^T)")
    if k is None or b is None or not par.passed("lora_up (kernel") or not k < b:
        return None
    return ("VET_GPU_LORA_UP=vet", "the adapters' up product: vet's kernel %s, cuBLAS %s" % (fmt(k), fmt(b)))


# (op_parity's forward and backward row names, VET_GPU_ATTENTION's value, what it is); the
# default first.
ATTENTION = [("attention_forward_bf16", "attention_backward_bf16", "tc", "tiles pipelined"),
             ("attention_forward_bf16_sync", "attention_backward_bf16_sync", "tc-sync",
              "tiles loaded, then computed"),
             ("attention_forward_bf16_transposed", "attention_backward_bf16_transposed", "tc-transposed",
              "tiles of the first lease's kernels"),
             ("attention_forward_cudnn", "attention_backward_cudnn", "cudnn", "cuDNN's fused attention")]


def attention_time(par, forward, backward):
    fwd = par.ms("%s out16" % forward)  # training's output is bf16
    if fwd is None:
        fwd = par.ms("%s out" % forward)
    bwd = par.ms("%s dq" % backward)  # the row that times the backward
    if fwd is None or bwd is None:
        return None
    if not (par.passed("%s " % forward) and par.passed("%s " % backward)):
        return None
    return fwd + bwd


def attention_choice(par):
    times = [(attention_time(par, f, b), v, what) for f, b, v, what in ATTENTION]
    default, _, default_what = times[0]
    timed = [t for t in times[1:] if t[0] is not None]
    if default is None or not timed:
        return None
    t, value, what = min(timed)
    if not t < MARGIN * default:
        return None
    return ("VET_GPU_ATTENTION=%s" % value, "the attention in training (forward + backward): %s %s, the "
            "default (vet's tensor-core kernels, %s) %s" % (what, fmt(t), default_what, fmt(default)))


# The four products the 16-bit adapters run, each with its tensor-core row and its CUDA-core
# (16-bit entry) row in op_parity.
LORA_PRODUCTS = [("lora_down_mma", "lora_down_dropout16"), ("lora_grad_a_mma", "lora_grad_a_dropout16"),
                 ("lora_du_mma", "lora_du16"), ("lora_grad_b_mma", "lora_grad_b16")]


def shape_n(shape):
    m = re.search(r"\bN=(\d+)", shape)
    return int(m.group(1)) if m else 0


def recipe_shape(shape, n):
    """rank 16, bf16, N rows, no p = 0 (the recipe's dropout is 0.1; du and dB have no p)."""
    return (shape_n(shape) == n and re.search(r"\br=16\b", shape) and re.search(r"\bbf16\b", shape)
            and not re.search(r"\bp=0(\s|$)", shape))


def lora_mma_choice(par):
    mma_total = cuda_total = 0.0
    for mma, twin in LORA_PRODUCTS:
        mname, tname = mma + " vs rounded operands", twin + " == fp32 twin"
        ns = [shape_n(s) for n, s, _ in par.rows if n in (mname, tname)]
        if not ns or not par.passed(mma + " ") or not par.passed(twin + " "):
            return None
        n = max(ns)
        tm = par.ms(mname, lambda s: recipe_shape(s, n))
        tc = par.ms(tname, lambda s: recipe_shape(s, n))
        if tm is None or tc is None:
            return None
        mma_total += tm
        cuda_total += tc
    if not cuda_total < MARGIN * mma_total:
        return None
    return ("VET_GPU_LORA_MMA=0", "the 16-bit adapters' four products (rank 16, bf16): CUDA cores %s, tensor "
            "cores %s" % (fmt(cuda_total), fmt(mma_total)))


def wide_choice(par):
    wide = [(n[5:], ms) for n, _, ms in par.rows if n.startswith("wide ")]
    narrow = {n[7:]: ms for n, _, ms in par.rows if n.startswith("narrow ")}
    if not wide or any(ms is None or narrow.get(op) is None for op, ms in wide):
        return None
    if not (par.passed("wide ") and par.passed("narrow ")):
        return None
    w = sum(ms for _, ms in wide)
    n = sum(narrow[op] for op, _ in wide)
    if not n < MARGIN * w:
        return None
    return ("VET_GPU_WIDE=0", "the element-wise passes (%d ops): one element a thread %s, 16 bytes a thread %s"
            % (len(wide), fmt(n), fmt(w)))


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        sys.stdout.write(__doc__)
        return 0 if len(argv) >= 2 else 2
    par = Parity(argv[1], list(dict.fromkeys(argv[1:])))  # (the mid log may be named twice)
    # each choice, unless the environment has its setting already (a fallback)
    for var, choose in (("VET_GPU_LORA_UP", up_choice), ("VET_GPU_ATTENTION", attention_choice),
                        ("VET_GPU_LORA_MMA", lora_mma_choice), ("VET_GPU_WIDE", wide_choice)):
        if var in os.environ or (var == "VET_GPU_LORA_MMA" and os.environ.get("VET_GPU_LORA_FUSED") == "0"):
            continue
        c = choose(par)
        if c:
            print("%s\t%s" % c)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
