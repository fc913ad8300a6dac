#!/usr/bin/env python3
"""bench_train.py — the PyTorch + PEFT side of bench_train.sh: the same LoRA training as vet-train
(same base model, same packed rows, same hyperparameters: r 16, alpha 32, dropout 0.1 on
q,k,v,o, AdamW lr 2e-4, weight decay 0.01, batch 4 x grad accum 4, clipping 1.0), timed.

usage: bench_train.py BASE_DIR PACKED_STREAM STEPS THREADS
Rows are fed as vet-pack wrote them, padded to the longest row of each micro-batch; PyTorch's
attention runs causally over the whole row (vet's runs per sample: a little less work), and the
loss is over the same targets. Prints one key=value line: tokens_per_s and peak_rss_mb.
"""
import resource
import sys
import time

import msgpack
import torch
import zstandard


def read_rows(path):
    raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"))
    objs = list(msgpack.Unpacker(raw, raw=False))
    return [o for o in objs[1:] if "tokens" in o]


def main():
    base, packed, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.1,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.01)
    rows = read_rows(packed)
    bs, ga = 4, 4
    tokens = 0
    t0 = time.perf_counter()
    k = 0
    for _ in range(steps):
        micro = []
        for _ in range(ga):
            micro.append([rows[(k + i) % len(rows)] for i in range(bs)])
            k += bs
        n_tgt = sum(1 for mb in micro for r in mb for y in r["targets"] if y >= 0)
        opt.zero_grad(set_to_none=True)
        for mb in micro:
            T = max(len(r["tokens"]) for r in mb)
            ids = torch.zeros((len(mb), T), dtype=torch.long)
            tgt = torch.full((len(mb), T), -100, dtype=torch.long)
            mask = torch.zeros((len(mb), T), dtype=torch.long)
            for i, r in enumerate(mb):
                n = len(r["tokens"])
                ids[i, :n] = torch.tensor(r["tokens"])
                tgt[i, :n] = torch.tensor([y if y >= 0 else -100 for y in r["targets"]])
                mask[i, :n] = 1
                tokens += n
            logits = model(input_ids=ids, attention_mask=mask).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1),
                                                     ignore_index=-100, reduction="sum") / n_tgt
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tokens_per_s={tokens / dt:.0f} peak_rss_mb={rss:.0f} steps={steps} seconds={dt:.1f}")


if __name__ == "__main__":
    main()
