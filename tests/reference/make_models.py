#!/usr/bin/env python3
"""make_models.py — tiny random Hugging Face models for vet's reference tests.

    make_models.py OUTDIR [NAME ...]     writes OUTDIR/llama2, OUTDIR/llama3, OUTDIR/qwen2

As a module: `build(name)` returns the model (fp32, eval mode), `make(name, outdir)` saves it
and returns the directory, `CONFIGS` holds the shapes. Everything is deterministic: the same
name gives bit-identical weights on every run (torch.manual_seed per model).

The three models cover what vet must get right:
  llama2  LLaMA-2 shape: MHA (4 heads = 4 kv heads), rope_theta 10000, untied lm_head
  llama3  GQA (4 heads, 2 kv heads), rope_theta 500000, llama3 rope scaling, untied,
          eos_token_id a list
  qwen2   Qwen2: q/k/v biases, GQA, rope_theta 1e6, rms eps 1e-6, tied embeddings
All: vocab 300, hidden 64, 2 layers, head_dim 16, intermediate 160, max positions 256.
Norm weights and biases are perturbed away from transformers' 1/0 init (so a parity test
notices when they are ignored); linear and embedding weights are normal(0, 0.02).
"""
import os
import sys

COMMON = dict(
    vocab_size=300,
    hidden_size=64,
    intermediate_size=160,
    num_hidden_layers=2,
    num_attention_heads=4,
    head_dim=16,
    max_position_embeddings=256,
    hidden_act="silu",
    initializer_range=0.02,
    bos_token_id=1,
    eos_token_id=2,
)

CONFIGS = {
    "llama2": dict(
        arch="llama", num_key_value_heads=4, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    ),
    "llama3": dict(
        arch="llama", num_key_value_heads=2, rms_norm_eps=1e-5, tie_word_embeddings=False, eos_token_id=[2, 3],
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
    ),
    "qwen2": dict(
        arch="qwen2", num_key_value_heads=2, rms_norm_eps=1e-6, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    ),
}
SEEDS = {"llama2": 1234, "llama3": 2345, "qwen2": 3456}


def hf_config(name):
    """The transformers config object for one of the CONFIGS."""
    from transformers import LlamaConfig, Qwen2Config
    kw = dict(COMMON)
    spec = dict(CONFIGS[name])
    arch = spec.pop("arch")
    kw.update(spec)
    if arch == "qwen2":
        kw.pop("head_dim")  # Qwen2Config has none; 64 / 4 = 16 anyway
        return Qwen2Config(**kw)
    return LlamaConfig(**kw)


def build(name):
    """The model, fp32, eval mode, deterministic weights."""
    import torch
    from transformers import AutoModelForCausalLM
    if name not in CONFIGS:
        raise SystemExit(f"make_models.py: no model '{name}' (models: {', '.join(CONFIGS)})")
    torch.manual_seed(SEEDS[name])
    cfg = hf_config(name)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    g = torch.Generator().manual_seed(SEEDS[name] + 1)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif pname.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
    model.eval()
    return model


def make(name, outdir, **save_kw):
    """Builds the model and saves it as a HF directory outdir/name; returns that path."""
    path = os.path.join(outdir, name)
    build(name).save_pretrained(path, **save_kw)
    return path


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n")[1])
        return 0 if len(argv) > 1 else 2
    names = argv[2:] or list(CONFIGS)
    for n in names:
        print(make(n, argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
