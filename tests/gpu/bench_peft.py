#!/usr/bin/env python3
"""bench_peft.py — the transformers + PEFT side of tests/gpu/bench_7b.sh: the LoRA training that
vet-train --device cuda runs there, on the same base and packed rows, timed on the GPU.

usage: bench_peft.py BASE_DIR ROWS_JSONL STEPS BATCH DROPOUT WARMUP [DEVICE]
       bench_peft.py --make-base CONFIG_JSON OUT_DIR   (random bf16 weights, made on the GPU)

Model in bf16 (PEFT keeps the adapters fp32: autocast_adapter_dtype), LoRA r 16, alpha 32,
q,k,v,o; AdamW lr 2e-4, weight decay 0.01; clipping 1.0; batch BATCH rows x grad accum 1, rows
taken in stream order, padded to the longest row of the batch. Attention is SDPA, causal over
the whole row (vet's stops at sample boundaries: a little less work); no gradient
checkpointing. Loss: mean cross-entropy over the rows' targets (vet's definition).
Prints one line of key=value: tokens_per_s, step_s (after WARMUP untimed steps), final_loss,
peak_alloc_gib (torch.cuda.max_memory_allocated). ROWS_JSONL is the packed rows as JSON lines
(`vet-dump -r train.msgpack.zst`), so nothing beyond torch, transformers and peft is needed (the
device image has no zstandard). `not ok bench_peft: <why>` and exit 1 when one of them is
missing or no CUDA device answers: a baseline that did not run is never a pass.
"""
import os
import sys
import time


def fail(why):
    print(f"not ok bench_peft: {why}")
    sys.exit(1)


def read_rows(path):
    import json
    rows = (json.loads(line) for line in open(path) if line.strip())
    return [o for o in rows if isinstance(o, dict) and "tokens" in o]


def make_base(config_json, out):
    """A random-weight model of config_json in bf16, initialized on the GPU (seconds, where
    vet-inspect init takes minutes for 7B on the host); HF's own init (normal, std 0.02)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    torch.manual_seed(7)
    cfg = AutoConfig.from_pretrained(config_json)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(out, max_shard_size="5GB")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--make-base":
        return make_base(sys.argv[2], sys.argv[3])
    if len(sys.argv) not in (7, 8):
        sys.exit(__doc__)
    base, packed = sys.argv[1], sys.argv[2]
    steps, batch, dropout, warm = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    device = sys.argv[7] if len(sys.argv) > 7 else "cuda"
    try:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM
    except ImportError as e:
        fail(f"{e} (python3 is {sys.executable})")
    if device == "cuda" and not torch.cuda.is_available():
        fail("torch sees no CUDA device")
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, attn_implementation="sdpa").to(device)
    if os.environ.get("VET_CKPT") == "1":  # the reference recipe's gradient checkpointing
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=dropout,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.01)
    rows = read_rows(packed)
    if not rows:
        sys.exit(f"{packed}: no rows")

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    tokens, t_start, loss_v = 0, None, float("nan")
    for step in range(steps):
        if step == warm:
            sync()
            t_start, tokens = time.perf_counter(), 0
        mb = [rows[(step * batch + i) % len(rows)] for i in range(batch)]
        T = max(len(r["tokens"]) for r in mb)
        ids = torch.zeros(batch, T, dtype=torch.long)
        tgt = torch.full((batch, T), -1, dtype=torch.long)
        for i, r in enumerate(mb):
            n = len(r["tokens"])
            ids[i, :n] = torch.tensor(r["tokens"])
            tgt[i, :n] = torch.tensor(r["targets"])
        ids, tgt = ids.to(device), tgt.to(device)
        n_tgt = int((tgt >= 0).sum())
        logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), tgt.view(-1),
                                                 ignore_index=-1, reduction="sum") / max(n_tgt, 1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_v = loss.item()  # also a sync point, as vet-train's per-step loss
        tokens += sum(len(r["tokens"]) for r in mb)
    sync()
    if t_start is None:
        sys.exit(f"need more than WARMUP={warm} steps")
    dt = time.perf_counter() - t_start
    timed = steps - warm
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0
    print(f"tokens_per_s={tokens / dt:.1f} step_s={dt / timed:.4f} final_loss={loss_v:.5f} peak_alloc_gib={peak:.2f}")


if __name__ == "__main__":
    main()
