#!/usr/bin/env python3
"""bench_model.py — PyTorch eager reference for bench_model.sh: forward+backward tokens/s of
transformers' LlamaForCausalLM with a peft LoRA, on the same shapes as vet-bench-model.

usage: bench_model.py --dim D --hidden F --layers L --heads H --kv-heads K --vocab V
                      [--batch B] [--seq T] [--rank R] [--threads N] [--steps K]
Rows are one sample each (HF's causal mask over the whole row). Prints one key=value line.
"""
import argparse
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    for k in ("dim", "hidden", "layers", "heads", "kv-heads", "vocab"):
        ap.add_argument("--" + k, type=int, required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--attn", default="sdpa")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=a.dim, intermediate_size=a.hidden, num_hidden_layers=a.layers,
                      num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
                      vocab_size=a.vocab, max_position_embeddings=max(2048, a.seq),
                      rms_norm_eps=1e-5, tie_word_embeddings=False, attn_implementation=a.attn)
    model = LlamaForCausalLM(cfg).float()
    lcfg = LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, lcfg)
    model.train()
    ids = torch.randint(0, a.vocab, (a.batch, a.seq))
    labels = ids.clone()
    best = float("inf")
    loss = None
    for k in range(a.steps + 1):  # the first is warm-up
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        t = time.perf_counter() - t0
        loss = out.loss.item()
        if k > 0:
            best = min(best, t)
    n = a.batch * a.seq
    print(f"torch={torch.__version__} batch={a.batch} seq={a.seq} rank={a.rank} threads={a.threads} "
          f"step_s={best:.4f} tokens_per_s={n / best:.0f} loss={loss:.4f}")


if __name__ == "__main__":
    main()
