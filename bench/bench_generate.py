#!/usr/bin/env python3
"""bench_generate.py — vet-generate against transformers `generate`, same model, same prompts.

    bench_generate.py --vet-bin DIR --tokens FILE --max-new N --threads T MODEL_DIR [MODEL_DIR ...]

For each model directory (a random model made by bench_generate.sh): vet-generate at batch 1
and batch 16 (tokens/s from its closing line), then transformers greedy `generate` at batch 1
(one prompt at a time) and batch 16 (left-padded), torch on T threads. Both sides generate
the same greedy tokens (tests/reference/test_generate.py checks that), so tokens/s compare
like for like. Prints one table; the ratios the targets speak of are in the last columns.
Then batch 16 sampled (temperature 0.8, top-k 50, as a user drawing several answers would):
vet-generate against transformers `generate(do_sample=True)` with the same settings, and
against its own greedy rate (what the sampler costs). The sampled tokens differ between the two
(other generators), so that table compares rates, not outputs.
With --codes TABLE: scoring every label of the table as each note's answer (vet-generate --rank
all) against what a transformers user writes for it: per note, one batch of prompt + answer for
every label (right-padded), the answer's log-probabilities summed (tests/reference/test_rank.py
checks the two agree; here the top label of each note is compared).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time


SAMPLE = {"temperature": 0.8, "top_k": 50, "seed": 1}
PREFIX = "Diagnosed conditions: "  # vet-tokenize's default response, before the label


def vet_run(args, model, batch, sample=False):
    cmd = [os.path.join(args.vet_bin, "vet-generate"), "--model", model, "--batch", str(batch),
           "--max-new", str(args.max_new), "--threads", str(args.threads), args.tokens, "-o", os.devnull]
    if sample:
        cmd += ["--temperature", str(SAMPLE["temperature"]), "--top-k", str(SAMPLE["top_k"]),
                "--seed", str(SAMPLE["seed"])]
    best = None
    for _ in range(args.repeat):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("bench_generate: vet-generate failed: " + p.stderr.strip())
        m = re.search(r"(\d+) notes, (\d+) tokens, ([0-9.]+) tokens/s .*decode steps (\d+) tokens at "
                      r"([0-9.]+) tokens/s", p.stderr)
        if not m:
            sys.exit("bench_generate: no summary line from vet-generate: " + p.stderr.strip())
        tps, steps = float(m.group(3)), float(m.group(5))
        if best is None or tps > best[0]:
            best = (tps, steps)
    return best


def flops_per_token(model_dir):
    """2 x the weights a decode step multiplies by: every Linear and the lm_head, not the
    embedding table (a lookup). Attention over the cache is left out (small at these lengths)."""
    c = json.load(open(os.path.join(model_dir, "config.json")))
    d, f, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    hd = c.get("head_dim") or d // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    return 2.0 * (L * (d * q + 2 * d * kv + q * d + 3 * d * f) + V * d)


def gemm_peak(threads):
    """GFLOP/s of a large fp32 GEMM in torch on the same threads: what this CPU can compute."""
    import torch
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * 2048 ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def read_prompts(args):
    p = subprocess.run([os.path.join(args.vet_bin, "vet-dump"), "-r", args.tokens], capture_output=True,
                       text=True, check=True)
    return [json.loads(line)["prompt"] for line in p.stdout.splitlines() if line.strip()]


def hf_run(model, prompts, max_new, batch, eos, sample=False):
    import torch
    torch.manual_seed(SAMPLE["seed"])
    how = dict(do_sample=True, temperature=SAMPLE["temperature"], top_k=SAMPLE["top_k"], top_p=1.0) if sample \
        else dict(do_sample=False)
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
            y = model.generate(ids, attention_mask=mask, max_new_tokens=max_new, num_beams=1, eos_token_id=eos,
                               pad_token_id=0, **how)
            for b in range(len(group)):
                gen = y[b, n:].tolist()
                k = 0
                while k < len(gen):  # count up to and including the first EOS
                    k += 1
                    if gen[k - 1] in eos:
                        break
                tokens += k
    return tokens / (time.perf_counter() - t0), tokens


def read_labels(path):
    labels = []
    for line in open(path):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        label = line.split("\t")[0].strip()
        if not labels and label in ("code", "label"):
            continue  # the header row
        labels.append(label)
    return labels


def vet_rank(args, model):
    """Notes/s of vet-generate --rank all (its work time, from the closing line) and each note's
    top label."""
    cmd = [os.path.join(args.vet_bin, "vet-generate"), "--model", model, "--rank", "all", "--constrain",
           args.codes, "--batch", "16", "--threads", str(args.threads), args.tokens, "-o", "-"]
    best = None
    for _ in range(args.repeat):
        p = subprocess.run(cmd, capture_output=True)
        if p.returncode != 0:
            sys.exit("bench_generate: vet-generate --rank failed: " + p.stderr.decode().strip())
        m = re.search(r"(\d+) notes, (\d+) tokens, ([0-9.]+) tokens/s", p.stderr.decode())
        if not m:
            sys.exit("bench_generate: no summary line from vet-generate --rank")
        rate = int(m.group(1)) / (int(m.group(2)) / float(m.group(3)))
        if best is None or rate > best[0]:
            d = subprocess.run([os.path.join(args.vet_bin, "vet-dump"), "-r", "-"], input=p.stdout,
                               capture_output=True, check=True)
            best = (rate, [json.loads(x)["pred"][0] for x in d.stdout.decode().splitlines() if x.strip()])
    return best


def hf_rank(model, prompts, answers, labels):
    """Notes/s of the transformers way, and each note's top label."""
    import torch
    tops = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for p in prompts:
            seqs = [p + a[:-1] for a in answers]
            n = max(len(x) for x in seqs)
            ids = torch.zeros((len(seqs), n), dtype=torch.long)
            mask = torch.zeros((len(seqs), n), dtype=torch.long)
            for b, x in enumerate(seqs):
                ids[b, :len(x)] = torch.tensor(x)
                mask[b, :len(x)] = 1
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
            score = []
            for b, a in enumerate(answers):
                pos = torch.arange(len(p) - 1, len(p) - 1 + len(a))
                score.append(logp[b, pos, torch.tensor(a)].sum().item())
            tops.append(labels[max(range(len(score)), key=score.__getitem__)])
    return len(prompts) / (time.perf_counter() - t0), tops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vet-bin", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="vet runs per setting (best is kept)")
    ap.add_argument("--hf-notes-b1", type=int, default=4, help="notes transformers runs at batch 1")
    ap.add_argument("--codes", help="a code table: also time scoring every label (--rank all)")
    ap.add_argument("--spm", help="the models' tokenizer.model, for the answers' ids (with --codes)")
    ap.add_argument("--rank-models", nargs="*", default=[],
                    help="with --codes: one model per MODEL_DIR, the same but with the tokenizer's vocabulary")
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
    steps, sampled, ranked = [], [], []
    for i, d in enumerate(args.models):
        name = os.path.basename(d.rstrip("/"))
        v1, s1 = vet_run(args, d, 1)
        v16, s16 = vet_run(args, d, 16)
        steps.append((name, s1, s16, flops_per_token(d)))
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
        model.eval()
        eos = model.config.eos_token_id
        eos = list(eos) if isinstance(eos, (list, tuple)) else [eos]
        if 2 not in eos:
            eos.append(2)  # vet-generate also stops at the tokenizer's EOS
        hf_run(model, prompts[:1], 4, 1, eos)  # warm-up
        h1, _ = hf_run(model, prompts[:args.hf_notes_b1], args.max_new, 1, eos)
        h16, _ = hf_run(model, prompts, args.max_new, 16, eos)
        vs16, _ = vet_run(args, d, 16, sample=True)
        hs16, _ = hf_run(model, prompts, args.max_new, 16, eos, sample=True)
        sampled.append((name, vs16, hs16, v16))
        if args.codes:
            import sentencepiece as spm
            sp = spm.SentencePieceProcessor(model_file=args.spm)
            labels = read_labels(args.codes)
            answers = [sp.encode(PREFIX + label) + [sp.eos_id()] for label in labels]
            rd = args.rank_models[i] if i < len(args.rank_models) else d
            vr, vtop = vet_rank(args, rd)
            rmodel = AutoModelForCausalLM.from_pretrained(rd, dtype=torch.float32)
            rmodel.eval()
            hf_rank(rmodel, prompts[:1], answers, labels)  # warm-up
            hr, htop = hf_rank(rmodel, prompts, answers, labels)
            same = sum(a == b for a, b in zip(vtop, htop))
            ranked.append((name, len(labels), vr, hr, same, len(prompts)))
        print("%-8s %12.1f %12.1f %12.1f %12.1f %9.1fx %9.1fx %11.1fx" % (
            name, v1, v16, h1, h16, v1 / h1, v16 / h16, v16 / v1), flush=True)
    print("(tokens/s, prompts and decoding together; targets: vet/hf b1 >= 2x, vet b16/b1 >= 5x)")
    print()
    print("batch 16 sampled: temperature %g, top-k %d (tokens/s, prompts and decoding together)" % (
        SAMPLE["temperature"], SAMPLE["top_k"]))
    head = "%-8s %12s %12s %12s %18s" % ("model", "vet", "hf", "vet/hf", "vet sampled/greedy")
    print(head)
    print("-" * len(head))
    for name, vs, hs, vg in sampled:
        print("%-8s %12.1f %12.1f %11.1fx %17.2fx" % (name, vs, hs, vs / hs, vs / vg))
    if ranked:
        print()
        print("scoring every label of %s (vet-generate --rank all, batch 16) against transformers: "
              "per note one batch of prompt + each answer (notes/s)" % os.path.basename(args.codes))
        head = "%-8s %8s %12s %12s %10s %14s" % ("model", "labels", "vet", "hf", "vet/hf", "same top-1")
        print(head)
        print("-" * len(head))
        for name, nl, vr, hr, same, n in ranked:
            print("%-8s %8d %12.1f %12.1f %9.1fx %9d of %d" % (name, nl, vr, hr, vr / hr, same, n))
    # Decode steps alone, against the roofline: batch 1 streams every weight once per token,
    # so its rate is set by memory bandwidth (or cache bandwidth for small models); batch 16
    # reuses each weight 16 times and is bound by the FMA units. The ratio cannot exceed
    # peak / (batch-1 GFLOP/s).
    peak = gemm_peak(args.threads)
    print()
    print("decode steps only (vet-generate's closing line); fp32 GEMM peak of this CPU on %d "
          "threads (torch.mm 2048^3): %.1f GFLOP/s" % (args.threads, peak))
    head = "%-8s %12s %12s %10s %12s %12s %14s" % (
        "model", "vet b1", "vet b16", "b16/b1", "b1 GFLOP/s", "b16 GFLOP/s", "bound on b16/b1")
    print(head)
    print("-" * len(head))
    for name, s1, s16, fl in steps:
        g1, g16 = s1 * fl / 1e9, s16 * fl / 1e9
        print("%-8s %12.1f %12.1f %9.1fx %12.1f %12.1f %13.1fx" % (name, s1, s16, s16 / s1, g1, g16, peak / g1))


if __name__ == "__main__":
    main()
