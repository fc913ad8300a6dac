#!/usr/bin/env python3
"""test_model_io.py — vet's model I/O against transformers and safetensors.

Builds the tiny models of make_models.py, then checks through tests/helpers/vet-inspect that
  - vet's config loader reads each config.json as transformers does (shapes, rope, ids, counts),
  - vet's reader sees the same tensors and values as safetensors (single file and shards),
  - a file written by vet's writer loads in safetensors.torch.load_file with equal values
    (f32 exact; f16 and bf16 rounded exactly as torch rounds),
  - files written by PyTorch in f16/bf16 read back in vet as torch widens them,
  - vet_hf_init_dir output loads in AutoModelForCausalLM.from_pretrained with no missing or
    unexpected weights, the same rope, and LLaMA-convention statistics,
  - vet's parameter counts of the presets equal transformers' for the same config.
Prints `ok NAME` / `not ok NAME` / `skip NAME: why` lines (see tests/run).
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("VET_TOP") or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("VET_BUILD") or os.path.join(TOP, "build", "rel")
INSPECT = os.path.join(BUILD, "tests", "helpers", "vet-inspect")
sys.path.insert(0, HERE)
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402
import make_models  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

torch.set_num_threads(2)
failed = 0


def case(name, fn, *args):
    global failed
    try:
        fn(*args)
        print(f"ok {name}", flush=True)
    except Skip as s:
        print(f"skip {name}: {s}", flush=True)
    except Exception:
        failed += 1
        print(f"not ok {name}", flush=True)
        traceback.print_exc()


class Skip(Exception):
    pass


def inspect(*args):
    r = subprocess.run([INSPECT, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"vet-inspect {' '.join(args)} failed: {r.stderr.strip()}")
    return json.loads(r.stdout) if r.stdout.strip() else None


def to_float(v):
    return float(v)  # numbers, or the strings "nan", "inf", "-inf"


def vet_values(path, name):
    return torch.tensor([to_float(v) for v in inspect("dump", path, name)["values"]], dtype=torch.float32)


def same_bits(a, b):
    """Equal including nan payload-insensitive nan positions and the sign of zero."""
    a = a.float().flatten()
    b = b.float().flatten()
    if a.shape != b.shape:
        return False
    nan = torch.isnan(a)
    if not torch.equal(nan, torch.isnan(b)):
        return False
    return torch.equal(a[~nan].view(torch.int32), b[~nan].view(torch.int32))


def close(a, b, rel=1e-6):
    return abs(a - b) <= rel * max(1.0, abs(b))


def hf_n_params(model):
    return sum(p.numel() for p in model.parameters())  # shared (tied) parameters count once


def check_config(vc, hc, model=None):
    """vet's config (vet-inspect JSON) against a transformers config object."""
    assert vc["arch"] == hc.model_type, (vc["arch"], hc.model_type)
    assert vc["dim"] == hc.hidden_size and vc["hidden_dim"] == hc.intermediate_size
    assert vc["n_layers"] == hc.num_hidden_layers and vc["n_heads"] == hc.num_attention_heads
    assert vc["n_kv_heads"] == hc.num_key_value_heads
    head_dim = getattr(hc, "head_dim", None) or hc.hidden_size // hc.num_attention_heads
    assert vc["head_dim"] == head_dim
    assert vc["vocab_size"] == hc.vocab_size and vc["max_pos"] == hc.max_position_embeddings
    assert close(vc["rms_eps"], hc.rms_norm_eps), (vc["rms_eps"], hc.rms_norm_eps)
    rp = hc.rope_parameters
    assert close(vc["rope_theta"], rp["rope_theta"])
    assert vc["rope_type"] == (1 if rp.get("rope_type") == "llama3" else 0), rp
    if vc["rope_type"] == 1:
        assert close(vc["rope_factor"], rp["factor"]) and close(vc["rope_low_freq_factor"], rp["low_freq_factor"])
        assert close(vc["rope_high_freq_factor"], rp["high_freq_factor"])
        assert vc["rope_orig_max_pos"] == rp["original_max_position_embeddings"]
    assert bool(vc["tie_embeddings"]) == bool(hc.tie_word_embeddings)
    assert bool(vc["qkv_bias"]) == (hc.model_type == "qwen2")
    eos = hc.eos_token_id if isinstance(hc.eos_token_id, list) else ([] if hc.eos_token_id is None else [hc.eos_token_id])
    assert vc["eos_ids"] == eos, (vc["eos_ids"], eos)
    assert vc["bos_id"] == (-1 if hc.bos_token_id is None else hc.bos_token_id)
    assert vc["pad_id"] == (-1 if hc.pad_token_id is None else hc.pad_token_id)
    if model is not None:
        assert vc["n_params"] == hf_n_params(model), (vc["n_params"], hf_n_params(model))


# ---------------------------------------------------------------------------------------

def t_config_and_tensors(tmp, name):
    model = make_models.build(name)
    path = os.path.join(tmp, name)
    model.save_pretrained(path)
    shown = inspect("show", path)
    check_config(shown["config"], model.config, model)
    assert shown["check"] == "ok", shown["check"]
    assert shown["format"] == "pt"
    with safe_open(os.path.join(path, "model.safetensors"), "pt") as f:
        want = {k: (list(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    got = {t["name"]: (t["shape"], t["dtype"]) for t in shown["tensors"]}
    assert got == want, (got, want)
    sd = model.state_dict()
    for tname in ["model.embed_tokens.weight", "model.layers.1.self_attn.k_proj.weight",
                  "model.layers.0.post_attention_layernorm.weight"] + (
                  ["model.layers.1.self_attn.q_proj.bias"] if name == "qwen2" else []):
        assert same_bits(vet_values(path, tname), sd[tname]), tname


def t_sharded(tmp):
    model = make_models.build("llama3")
    path = os.path.join(tmp, "llama3-sharded")
    model.save_pretrained(path, max_shard_size="100KB")
    files = sorted(os.listdir(path))
    shards = [f for f in files if f.endswith(".safetensors")]
    assert "model.safetensors.index.json" in files and len(shards) > 2, files
    shown = inspect("show", path)
    assert shown["check"] == "ok", shown["check"]
    assert {t["file"] for t in shown["tensors"]} == set(shards)
    assert len(shown["tensors"]) == len(model.state_dict())
    sd = model.state_dict()
    for t in shown["tensors"][::5]:
        assert same_bits(vet_values(path, t["name"]), sd[t["name"]]), t["name"]
    # Remove one shard: vet names it.
    os.remove(os.path.join(path, shards[-1]))
    r = subprocess.run([INSPECT, "show", path], capture_output=True, text=True)
    assert r.returncode != 0 and shards[-1] in r.stderr and "missing" in r.stderr, r.stderr


def t_writer_loads_in_python(tmp):
    path = os.path.join(tmp, "written.safetensors")
    vals = torch.tensor([to_float(v) for v in inspect("write", path)["values"]], dtype=torch.float32).reshape(6, 10)
    t = load_file(path)
    assert set(t) == {"f32", "f16", "bf16", "i32", "i64", "u8", "i8", "empty", "scalar"}, set(t)
    assert t["f32"].dtype == torch.float32 and same_bits(t["f32"], vals)
    assert t["f16"].dtype == torch.float16 and same_bits(t["f16"], vals.to(torch.float16))
    assert t["bf16"].dtype == torch.bfloat16 and same_bits(t["bf16"], vals.to(torch.bfloat16))
    # The special values did what IEEE says: 65520 and 70000 overflow fp16, 1e-7 is subnormal.
    f16 = t["f16"].flatten()
    assert math.isinf(f16[-7].item()) and math.isinf(f16[-6].item()) and 0 < f16[-5].item() < 6.2e-5
    assert t["i32"].tolist() == [0, 1, -1, 2147483647, -2147483648, 12345]
    assert t["i64"].tolist() == [0, -5, 2**63 - 1, -2**63]
    assert t["u8"].tolist() == [0, 128, 255] and t["i8"].tolist() == [-128, 0, 127]
    assert t["empty"].shape == (0, 4) and t["scalar"].shape == () and t["scalar"].item() == vals.flatten()[1].item()
    with safe_open(path, "pt") as f:
        assert f.metadata() == {"format": "pt", "writer": "vet-inspect"}, f.metadata()


def t_reader_reads_python_files(tmp):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(5, 7, generator=g) * torch.logspace(-9, 5, 35).reshape(5, 7)
    x.view(-1)[:6] = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), 65504.0, 1e-30])
    tensors = {"f32": x, "f16": x.half(), "bf16": x.bfloat16(), "i64": torch.arange(-3, 3, dtype=torch.int64),
               "i8": torch.tensor([-128, 5, 127], dtype=torch.int8)}
    path = os.path.join(tmp, "torch.safetensors")
    save_file(tensors, path, metadata={"format": "pt"})
    for k, v in tensors.items():
        assert same_bits(vet_values(path, k), v.float()), k


def t_init_loads_in_transformers(tmp, name, dtype):
    from transformers import AutoModelForCausalLM
    ref = make_models.build(name)
    src = os.path.join(tmp, name + "-ref")
    ref.save_pretrained(src)
    out = os.path.join(tmp, f"{name}-init-{dtype}")
    inspect("init", out, os.path.join(src, "config.json"), "1234", dtype)
    model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info.get(k), (k, info[k])
    want_dtype = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}[dtype]
    assert model.dtype == want_dtype, (model.dtype, want_dtype)
    check_config(inspect("show", out)["config"], model.config, model)
    # The same rope as the reference model (config written by vet, read by transformers).
    assert torch.allclose(model.model.rotary_emb.inv_freq.float(), ref.model.rotary_emb.inv_freq.float(), rtol=1e-6)
    assert model.model.rotary_emb.attention_scaling == ref.model.rotary_emb.attention_scaling
    sd = model.state_dict()
    for k, v in sd.items():
        v = v.float()
        if k.endswith("norm.weight"):
            assert torch.all(v == 1), k
        elif k.endswith(".bias"):
            assert torch.all(v == 0), k
        elif k.endswith(".weight"):
            assert abs(v.mean().item()) < 2e-3 and abs(v.std().item() - 0.02) < 2e-3, (k, v.mean(), v.std())
    if name == "qwen2":
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # tied
    with torch.no_grad():
        logits = model(torch.tensor([[1, 5, 9, 200]])).logits
    assert logits.shape == (1, 4, 300) and torch.isfinite(logits).all()


def t_saved_config_loads(tmp, name):
    from transformers import AutoConfig
    ref = make_models.hf_config(name)
    src = os.path.join(tmp, name + "-cfg")
    ref.save_pretrained(src)
    out = os.path.join(tmp, name + "-vet-config.json")
    inspect("saveconfig", src, out)
    d = os.path.join(tmp, name + "-vet-config")
    os.makedirs(d, exist_ok=True)
    os.replace(out, os.path.join(d, "config.json"))
    hc = AutoConfig.from_pretrained(d)
    check_config(inspect("config", d), hc)
    check_config(inspect("config", src), hc)
    assert hc.rope_parameters == ref.rope_parameters, (hc.rope_parameters, ref.rope_parameters)
    assert type(hc).__name__ == type(ref).__name__


def t_preset_params(tmp, preset):
    from transformers import AutoConfig, AutoModelForCausalLM
    d = os.path.join(tmp, "preset-" + preset)
    os.makedirs(d, exist_ok=True)
    inspect("saveconfig", preset, os.path.join(d, "config.json"))
    vc = inspect("config", preset)
    hc = AutoConfig.from_pretrained(d)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hc)
    check_config(vc, hc, model)


def main():
    if not os.access(INSPECT, os.X_OK):
        print(f"skip model_io: {INSPECT} is not built (make helpers)")
        return 0
    with tempfile.TemporaryDirectory(prefix="vet-model-io.") as tmp:
        for name in make_models.CONFIGS:
            case(f"config_and_tensors_{name}", t_config_and_tensors, tmp, name)
        case("sharded_dir", t_sharded, tmp)
        case("writer_loads_in_python", t_writer_loads_in_python, tmp)
        case("reader_reads_python_files", t_reader_reads_python_files, tmp)
        for name, dt in (("llama3", "F32"), ("llama2", "BF16"), ("qwen2", "F32"), ("qwen2", "F16")):
            case(f"init_loads_in_transformers_{name}_{dt}", t_init_loads_in_transformers, tmp, name, dt)
        for name in make_models.CONFIGS:
            case(f"saved_config_loads_{name}", t_saved_config_loads, tmp, name)
        for preset in ("tiny", "small", "base", "llama-7b", "llama3-8b", "qwen2.5-7b"):
            case(f"preset_params_{preset}", t_preset_params, tmp, preset)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
