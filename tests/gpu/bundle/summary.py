#!/usr/bin/env python3
"""summary.py — the GPU bundle's report: run.sh's parts, logs, tables and figures into OUTDIR's
summary.md (for a reader) and figures.json (every figure, for a program). Standard library only:
it runs on the device's python3 and in the rehearsal's minimal root.

usage: summary.py --mode gpu|cpu --budget S --total S --bundle DIR --parts TSV --logs DIR
                  --tables MD --figures JSONL --out DIR
"""
import argparse
import datetime
import json
import os
import re

# The targets of issue 20 that one run measures: (row, figure getter, unit, test).
GB = 1.073741824  # GiB -> GB


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def load_parts(path):
    parts = []
    for line in read(path).splitlines():
        name, status, secs, cap, why = (line.split("\t") + [""] * 5)[:5]
        parts.append({"name": name, "status": status, "seconds": int(secs or 0), "cap": int(cap or 0), "why": why})
    return parts


def parity_counts(text):
    return {"ok": len(re.findall(r"^ok ", text, re.M)), "not_ok": len(re.findall(r"^not ok ", text, re.M))}


def gemm_rate(text):
    """gemm_rate's lines: {"shapes": {"NxCxOC": TFLOP/s}, "best_tflops": R} or {}."""
    shapes = {m.group(1): float(m.group(2)) for m in re.finditer(r"^# gemm (\d+x\d+x\d+): [0-9.]+ ms, ([0-9.]+) TFLOP/s", text, re.M)}
    best = re.search(r"^# gemm best: ([0-9.]+) TFLOP/s", text, re.M)
    return {"shapes": shapes, "best_tflops": float(best.group(1))} if best else {}


def targets(bench, parity, logs, mode, gemm):
    """Rows: (what, measured, met) with met one of yes / NO / not measured / n/a."""
    rows = []

    def add(what, value, fmt, ok, gpu_only=False):
        if value is None and gpu_only and mode == "cpu":
            rows.append((what, "no GPU to read", "n/a (cpu rehearsal)"))
        elif value is None:
            rows.append((what, "not measured", "not measured"))
        else:
            rows.append((what, fmt.format(value), ("yes" if ok(value) else "NO") if mode == "gpu" else "n/a (cpu rehearsal)"))

    fast, ckpt = bench.get("lora-fast", {}), bench.get("lora-ckpt", {})
    add("7B LoRA r16 q,k,v,o, bf16, 4 x 512, no checkpointing: MFU (model FLOPs) >= 40%",
        fast.get("vet", {}).get("mfu"), "{:.1f}%", lambda v: v >= 40)
    add("the same: tokens/s >= 2x transformers + peft", fast.get("speedup"), "{:.2f}x", lambda v: v >= 2)
    tps, best = fast.get("vet", {}).get("tps"), gemm.get("best_tflops")
    share = tps * fast["model_flops_per_token"] / 1e12 / best * 100 if tps and best else None
    rows.append(("the same: model FLOP/s as a share of the bf16 GEMM rate measured in this run (no target)",
                 f"{share:.1f}% of {best:.3g} TFLOP/s" if share is not None else "not measured", "-"))
    # how lora-ckpt checkpointed: its --grad-checkpoint value and --device-memory (bench_7b's figures)
    how = "--grad-checkpoint" + (f"={ckpt['checkpoint_mode']}" if ckpt.get("checkpoint_mode", "1") != "1" else "")
    if ckpt.get("device_memory"): how += f" --device-memory {ckpt['device_memory']}"
    if ckpt.get("vet_recomputed_layers") is not None: how += f" ({ckpt['vet_recomputed_layers']:.0%} of layers recomputed)"
    smi = ckpt.get("vet", {}).get("smi_gib")
    add(f"with {how}, bf16: peak device memory (nvidia-smi) <= 18 GB",
        smi * GB if smi is not None else None, "{:.1f} GB", lambda v: v <= 18, gpu_only=True)
    for q, limit in (("int8", 11), ("nf4", 7)):
        smi = bench.get(f"lora-{q}", {}).get("vet", {}).get("smi_gib")
        add(f"with --grad-checkpoint, --quant {q}: peak device memory (nvidia-smi) <= {limit} GB",
            smi * GB if smi is not None else None, "{:.1f} GB", lambda v, lim=limit: v <= lim, gpu_only=True)
    add(f"with {how}: >= 1.5x transformers + peft with its checkpointing",
        ckpt.get("speedup"),
        "{:.2f}x", lambda v: v >= 1.5)
    dlo = bench.get("dlo", {})
    add("3 epochs of the recipe over the DLO notes on a 7B base: < 120 s of training",
        dlo.get("projected_train_s"), "{:.0f} s", lambda v: v < 120)
    gen = bench.get("generate", {})
    add("vet-generate, 7B: 1,000 notes (batch 64, greedy, <= 100 new) in < 30 s",
        gen.get("s_per_1000_notes"), "{:.1f} s", lambda v: v < 30)
    for size in ("small", "mid"):
        c = parity.get(size)
        add(f"op parity --size {size}: every op within its tolerance",
            None if c is None or c["ok"] + c["not_ok"] == 0 else c, "{0[ok]} ok, {0[not_ok]} not ok",
            lambda v: v["not_ok"] == 0)
    m = re.search(r"ERROR SUMMARY: (\d+) error", read(os.path.join(logs, "memcheck")))
    add("compute-sanitizer memcheck on op_parity --size small: 0 errors", int(m.group(1)) if m else None,
        "{} errors", lambda v: v == 0, gpu_only=True)
    counts = [int(n) for n in re.findall(r"ERROR SUMMARY: (\d+) error", read(os.path.join(logs, "racecheck")))]
    add("compute-sanitizer racecheck and synccheck on the attention and LoRA ops: 0 errors",
        sum(counts) if len(counts) == 2 else None, "{} errors", lambda v: v == 0, gpu_only=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    for a in ("mode", "budget", "total", "bundle", "parts", "logs", "tables", "figures", "out"):
        ap.add_argument("--" + a, required=True)
    a = ap.parse_args()
    parts = load_parts(a.parts)
    bench = {}
    for line in read(a.figures).splitlines():
        if line.strip():
            fig = json.loads(line)
            bench[fig["part"]] = fig
    logs = {p["name"]: read(os.path.join(a.logs, p["name"])) for p in parts}
    parity = {}
    for name in ("parity-small", "parity-mid"):
        if name in logs:
            size = re.search(r"--size (\w+)", logs[name].splitlines()[0] if logs[name] else "")
            parity[name.split("-")[1]] = dict(parity_counts(logs[name]), size_run=size.group(1) if size else None)
    device = [l[len("# device: "):] for l in logs.get("gpu", "").splitlines() if l.startswith("# device: ")]
    device += [l[2:] for l in logs.get("gpu", "").splitlines() if l.startswith("# flags: ")]
    build = read(os.path.join(a.bundle, "BUILD")).strip().splitlines()
    gemm = gemm_rate(logs.get("gemm", ""))
    rows = targets(bench, parity, a.logs, a.mode, gemm)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    n_ok = sum(p["status"] == "ok" for p in parts)

    md = [f"# vet GPU bundle run, {now}", ""]
    md.append(f"- mode: **{a.mode}**" + (" (the CPU rehearsal: tiny sizes, figures are not the targets')"
                                         if a.mode == "cpu" else ""))
    md.append(f"- device: {'; '.join(device) or 'unknown'}")
    md += [f"- {l}" for l in build[1:]]
    md.append(f"- {n_ok} of {len(parts)} parts ok in {a.total} s (budget {a.budget} s)")
    md += ["", "## Parts", "", "| part | status | seconds | cap | why not ok |", "| --- | --- | ---: | ---: | --- |"]
    for p in parts:
        md.append(f"| {p['name']} | {p['status']} | {p['seconds']} | {p['cap']} | {p['why'].replace('|', '/')} |")
    md += ["", "## Targets (issue 20)", "", "| target | measured | met |", "| --- | ---: | --- |"]
    md += [f"| {w} | {v} | {m} |" for w, v, m in rows]
    tables = read(a.tables).strip()
    if tables:
        md += ["", "## Benchmarks", ("\n" + tables).replace("\n## ", "\n### ")]
    if gemm:
        md += ["", "## bf16 GEMM rate (gemm_rate: vet's matmul_forward_bf16_cuda, random inputs)", "",
               "| N x C x OC | TFLOP/s |", "| --- | ---: |"] + [f"| {k} | {v:.1f} |" for k, v in gemm["shapes"].items()]
    for name in ("parity-small", "parity-mid"):
        body = [l for l in logs.get(name, "").splitlines() if l.startswith("|") or l.startswith("# ")]
        if body:
            md += ["", f"## {name} (op_parity: max |gpu - cpu| / max |cpu| per tensor, GPU ms per call)", ""]
            md += [l[2:] if l.startswith("# ") else l for l in body]
    # torch-parity's lines: each with vet's error and PyTorch's own in the format (docs/reference.md)
    torch_lines = [l for l in logs.get("torch-parity", "").splitlines()
                   if re.match(r"(not )?ok (device|generate)", l)]
    if torch_lines:
        md += ["", "## Against PyTorch (torch-parity: the device's loss, LoRA gradients and greedy ids)", ""]
        md += ["    " + l for l in torch_lines]
    fails = [l for p in parts for l in logs.get(p["name"], "").splitlines() if l.startswith("not ok")]
    if fails:
        md += ["", "## Every `not ok` line", ""] + ["    " + l for l in fails[:200]]
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    fig = {"date": now, "mode": a.mode, "budget_s": int(a.budget), "total_s": int(a.total), "device": device,
           "bundle": build, "parts": parts, "benchmarks": bench, "parity": parity, "gemm": gemm,
           "targets": [{"target": w, "measured": v, "met": m} for w, v, m in rows], "torch_parity": torch_lines}
    with open(os.path.join(a.out, "figures.json"), "w") as f:
        json.dump(fig, f, indent=1)


if __name__ == "__main__":
    main()
