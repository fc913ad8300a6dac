#!/usr/bin/env python3
"""bench_generate.py — vet-generate against transformers `generate`, same model, same prompts.

    bench_generate.py --vet-bin DIR --tokens FILE --max-new N --threads T MODEL_DIR [MODEL_DIR ...]

For each model directory (a random model made by bench_generate.sh): vet-generate at batch 1
and batch 16 (tokens/s from its closing line), then transformers greedy `generate` at batch 1
(one prompt at a time) and batch 16 (left-padded), torch on T threads. Both sides generate
the same greedy tokens (tests/reference/test_generate.py checks that), so tokens/s compare
like for like. Prints one table; the ratios the targets speak of are in the last columns.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time


def vet_run(args, model, batch):
    cmd = [os.path.join(args.vet_bin, "vet-generate"), "--model", model, "--batch", str(batch),
           "--max-new", str(args.max_new), "--threads", str(args.threads), args.tokens, "-o", os.devnull]
    best = None
    for _ in range(args.repeat):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("bench_generate: vet-generate failed: " + p.stderr.strip())
        m = re.search(r"(\d+) notes, (\d+) tokens, ([0-9.]+) tokens/s", p.stderr)
        if not m:
            sys.exit("bench_generate: no summary line from vet-generate: " + p.stderr.strip())
        tps = float(m.group(3))
        best = tps if best is None or tps > best else best
    return best, int(m.group(2))


def read_prompts(args):
    p = subprocess.run([os.path.join(args.vet_bin, "vet-dump"), "-r", args.tokens], capture_output=True,
                       text=True, check=True)
    return [json.loads(line)["prompt"] for line in p.stdout.splitlines() if line.strip()]


def hf_run(model, prompts, max_new, batch, eos):
    import torch
    tokens = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(prompts), batch):
            group = prompts[i:i + batch]
            n = max(len(p) for p in group)
            ids = torch.zeros((len(group), n), dtype=torch.long)
            mask = torch.zeros((len(group), n), dtype=torch.long)
            for b, p in enumerate(group):  # left padding, as decoder-only generation wants
                ids[b, n - len(p):] = torch.tensor(p)
                mask[b, n - len(p):] = 1
            y = model.generate(ids, attention_mask=mask, max_new_tokens=max_new, do_sample=False,
                               num_beams=1, eos_token_id=eos, pad_token_id=0)
            for b in range(len(group)):
                gen = y[b, n:].tolist()
                k = 0
                while k < len(gen):  # count up to and including the first EOS
                    k += 1
                    if gen[k - 1] in eos:
                        break
                tokens += k
    return tokens / (time.perf_counter() - t0), tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vet-bin", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="vet runs per setting (best is kept)")
    ap.add_argument("--hf-notes-b1", type=int, default=4, help="notes transformers runs at batch 1")
    ap.add_argument("models", nargs="+")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    prompts = read_prompts(args)

    print("vet-generate vs transformers %s generate: greedy, %d prompts of %d tokens, max_new %d, "
          "%d threads" % (__import__("transformers").__version__, len(prompts), len(prompts[0]),
                          args.max_new, args.threads))
    head = "%-8s %12s %12s %12s %12s %10s %10s %12s" % (
        "model", "vet b1", "vet b16", "hf b1", "hf b16", "vet/hf b1", "vet/hf b16", "vet b16/b1")
    print(head)
    print("-" * len(head))
    for d in args.models:
        name = os.path.basename(d.rstrip("/"))
        v1, _ = vet_run(args, d, 1)
        v16, _ = vet_run(args, d, 16)
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
        model.eval()
        eos = model.config.eos_token_id
        eos = list(eos) if isinstance(eos, (list, tuple)) else [eos]
        if 2 not in eos:
            eos.append(2)  # vet-generate also stops at the tokenizer's EOS
        hf_run(model, prompts[:1], 4, 1, eos)  # warm-up
        h1, _ = hf_run(model, prompts[:args.hf_notes_b1], args.max_new, 1, eos)
        h16, _ = hf_run(model, prompts, args.max_new, 16, eos)
        print("%-8s %12.1f %12.1f %12.1f %12.1f %9.1fx %9.1fx %11.1fx" % (
            name, v1, v16, h1, h16, v1 / h1, v16 / h16, v16 / v1), flush=True)
    print("(tokens/s; targets: vet/hf b1 >= 2x, vet b16/b1 >= 5x)")


if __name__ == "__main__":
    main()
