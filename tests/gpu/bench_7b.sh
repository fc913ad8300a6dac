#!/usr/bin/env bash
# bench_7b.sh — LoRA training speed and memory of a LLaMA-7B-shaped model on one GPU: vet-train
# --device cuda next to transformers + PEFT (tests/gpu/bench_peft.py) on the same base, the same
# packed rows and the same settings. Prints one table (appended to $RESULTS, or on a GPU to
# docs/gpu-results-<date>.md) and its figures as JSON ($FIGURES). Ends with `ok bench_7b`, or
# `not ok bench_7b: <why>` and exit 1 — also when a program, the GPU or the baseline's Python
# packages are missing: a run that measured nothing never looks green.
#
#   tests/gpu/bench_7b.sh        (after make -j; builds the helpers it needs)
#
# Setup: a random-weight llama-7b base in bf16 (made by torch on the GPU, or vet-inspect init;
# no tokenizer, so the data's identity is not checked), random token samples (prompt 150-350, response 20-80 tokens) packed
# by vet-pack into rows of SEQ tokens. LoRA r 16, alpha 32, q,k,v,o, dropout DROPOUT, batch BATCH
# x grad accum 1, AdamW, clipping 1.0; vet's base weights bf16 (its default on cuda), PEFT's model
# in bf16 with fp32 adapters (PEFT's autocast_adapter_dtype). The first WARMUP steps are not timed.
# PEFT reads the same rows as JSON lines (vet-dump), so the baseline needs torch, transformers
# and peft only.
#
# FLOPs per token, two counts (issue 20's honest accounting):
#   model FLOPs    = 4 N: forward 2 N, backward 2 N for the activation gradients only (the base is
#                    frozen: no weight gradients; LoRA's own FLOPs are < 1% and not counted)
#   hardware FLOPs = 6 N with checkpointing (the recompute of --grad-checkpoint, its projections
#                    with =keep-attention too: attention's FLOPs are not counted), else 4 N
# N = the matmul parameters: every layer's projections plus lm_head (the embedding is a lookup).
# Attention's score/value FLOPs are not counted. The same nominal count for both programs, so MFU
# ratios equal throughput ratios (vet computes the logits only at target positions, PEFT at every
# position: vet does less work than counted). MFU = model FLOPs/s / PEAK_TFLOPS (989: H100/H200
# SXM dense bf16).
#
# Env: VET_BIN (bin), VET_BUILD (build/rel), VET_VENV (.venv; else python3 must have torch,
# transformers, peft), PRESET (llama-7b), STEPS (20), WARMUP (3), BATCH (4), SEQ (512),
# DROPOUT (0.1), CKPT (1: --grad-checkpoint, and PEFT's gradient checkpointing; another value V,
# such as keep-attention or auto,keep-attention: --grad-checkpoint=V, PEFT's checkpointing as with
# 1; 0: neither), MEM (vet-train --device-memory MEM; empty: none), PEAK_TFLOPS (989),
# DEVICE (cuda; cpu with a small PRESET only checks this script), LABEL (the figures' name),
# PROFILE (1: vet-train runs with VET_GPU_PROFILE, and a second table says where its device
# time went by kind of work: GEMMs, dropout, attention, ...; kernels/host/gpu_profile.h),
# QUANT (none; int8 or nf4: vet-train --quant, for the quantized bases' memory targets),
# BASELINE (1; 0 runs vet-train alone: the quantized runs have absolute targets, no baseline),
# KEEP=1 keeps the work directory; bench_lib.sh's VET_HELPERS, VET_NO_BUILD, BASE, VOCAB,
# RESULTS, FIGURES. Budget: ~1-2 minutes per run on an H200 (the base made once by run.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/bench_lib.sh"
: "${PRESET:=llama-7b}" "${STEPS:=20}" "${WARMUP:=3}" "${BATCH:=4}" "${SEQ:=512}" "${DROPOUT:=0.1}"
: "${PEAK_TFLOPS:=989}" "${DEVICE:=cuda}" "${KEEP:=0}" "${CKPT:=1}" "${PROFILE:=0}" "${QUANT:=none}"
: "${BASELINE:=1}"
: "${MEM:=}"
case $CKPT in 0) ckpt_flag= ;; 1) ckpt_flag=--grad-checkpoint ;; *[!a-z0-9,-]* | '')
    echo "not ok bench_7b: CKPT=$CKPT: use 0, 1 or a --grad-checkpoint value (keep-attention, auto, N)"; exit 1 ;;
*) ckpt_flag=--grad-checkpoint=$CKPT ;; esac
: "${LABEL:=lora-$([ "$CKPT" = 0 ] && echo nockpt || echo ckpt)-d$DROPOUT}"
say() { echo "bench_7b: $*" >&2; }

[ -x "$VET_BIN/vet-train" ] || { echo "not ok bench_7b: $VET_BIN/vet-train not built (make)"; exit 1; }
if [ "$DEVICE" = cuda ]; then
    # vet-train's own check (exit 2 with the reason) before anything big is made
    msg=$("$VET_BIN/vet-train" --device cuda --base /nonexistent --train /nonexistent --out /nonexistent 2>&1)
    if [ $? -eq 2 ]; then echo "not ok bench_7b: ${msg#vet-train: }"; exit 1; fi
fi
need_helpers bench_7b
pick_python

bench_workdir bench7b

# --- the base and the data ----------------------------------------------------------------
make_random_base bench_7b
vocab=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$work/base/config.json")
rows=$(( BATCH * (STEPS + 1) ))
python3 - "$rows" "$vocab" "$SEQ" >"$work/samples.jsonl" <<'PY'
import json, random, sys
rows, vocab, seq = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(11)
k = seq / 512  # sample lengths scale with the row length, so every sample fits a row
for i in range(rows * 3):  # ~2 samples fill a row; extra so no row repeats
    p = [1] + [rng.randrange(3, vocab) for _ in range(rng.randint(int(150 * k), int(350 * k)))]
    r = [rng.randrange(3, vocab) for _ in range(rng.randint(int(20 * k) + 1, int(80 * k) + 1))] + [2]
    print(json.dumps({"id": f"s{i}", "species": "dog", "codes": ["1"], "note": f"n{i}",
                      "prompt": p, "response": r}))
PY
"$mktokens" --vocab "$vocab" -o "$work/samples.tok" <"$work/samples.jsonl" &&
    "$VET_BIN/vet-pack" --split 100/0/0 --group-by none --train "$work/train.zst" --seq-len "$SEQ" \
        "$work/samples.tok" 2>/dev/null &&
    "$VET_BIN/vet-dump" -r "$work/train.zst" >"$work/train.jsonl" ||
    { echo "not ok bench_7b: making the packed rows failed"; exit 1; }

# Peak device memory as nvidia-smi sees it (context included), polled every 200 ms.
smi_peak() {  # smi_peak FILE: runs until killed, keeps the maximum in FILE
    command -v nvidia-smi >/dev/null || return 0
    local m max=0
    while m=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 2>/dev/null | head -1); do
        [ "${m:-0}" -gt "$max" ] 2>/dev/null && max=$m && echo "$max" >"$1"
        sleep 0.2
    done
}

# --- vet-train ----------------------------------------------------------------------------
say "vet-train --device $DEVICE --quant $QUANT: $STEPS steps of $BATCH x $SEQ"
smi_peak "$work/vet.smi" & smi_pid=$!
prof_env=()
[ "$PROFILE" = 1 ] && [ "$DEVICE" = cuda ] && prof_env=(VET_GPU_PROFILE="$work/profile.json")
timeout 240 env "${prof_env[@]}" "$VET_BIN/vet-train" --device "$DEVICE" --base "$work/base" --train "$work/train.zst" \
    --out "$work/vet" --epochs 100 --max-steps "$STEPS" --batch-size "$BATCH" --grad-accum 1 \
    --lora-r 16 --lora-alpha 32 --lora-dropout "$DROPOUT" --lora-targets q,k,v,o --log-every 1 \
    $ckpt_flag $([ "$QUANT" != none ] && echo --quant "$QUANT") $([ -n "$MEM" ] && echo --device-memory "$MEM") \
    2>"$work/vet.err"
vet_status=$?
kill "$smi_pid" 2>/dev/null; wait "$smi_pid" 2>/dev/null; smi_pid=
grep -E '^vet-train: (device|llama)' "$work/vet.err" >&2
if [ $vet_status -ne 0 ]; then
    tail -n 5 "$work/vet.err" >&2
    echo "not ok bench_7b: vet-train exit $vet_status"
fi

# --- transformers + PEFT ------------------------------------------------------------------
peft_status=0
if [ "$BASELINE" = 1 ]; then
    say "transformers + peft: the same $STEPS steps"
    smi_peak "$work/peft.smi" & smi_pid=$!
    VET_CKPT=$([ "$CKPT" = 0 ] && echo 0 || echo 1) timeout 240 "$py" "$here/bench_peft.py" "$work/base" "$work/train.jsonl" "$STEPS" "$BATCH" \
        "$DROPOUT" "$WARMUP" "$DEVICE" >"$work/peft.out" 2>"$work/peft.err"
    peft_status=$?
    kill "$smi_pid" 2>/dev/null; wait "$smi_pid" 2>/dev/null; smi_pid=
fi
if [ $peft_status -ne 0 ]; then
    tail -n 5 "$work/peft.err" >&2
    why=$(sed -n 's/^not ok bench_peft: //p' "$work/peft.out" | head -1)
    echo "not ok bench_7b: transformers + peft: ${why:-bench_peft.py exit $peft_status}"
fi

# --- the table and the figures --------------------------------------------------------------
table=$(CKPT=$CKPT QUANT=$QUANT MEM=$MEM python3 - "$work" "$WARMUP" "$PEAK_TFLOPS" "$BATCH" "$SEQ" "$STEPS" "$DROPOUT" "$PRESET" "$LABEL" "$DEVICE" <<'PY'
import json, os, re, sys
work, warm, peak, B, T, steps, drop, preset, label, device = sys.argv[1:]
warm, peak, ckpt = int(warm), float(peak), os.environ.get("CKPT", "0") != "0"
cfg = json.load(open(f"{work}/base/config.json"))
C, F, L, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
H, KVH = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
hd = cfg.get("head_dim", C // H)
n_mm = L * (C * H * hd * 2 + 2 * C * KVH * hd + 3 * C * F) + V * C  # q,o; k,v; gate,up,down; lm_head
model_flops_tok = 4 * n_mm                    # forward + activation gradients

def read(path):
    try: return open(path).read()
    except OSError: return ""

# + the recompute with checkpointing: every layer's for PEFT; vet's plan line says how many
# layers it recomputed (--grad-checkpoint=N or auto: "the first 20 of 32", "none needed")
def recomputed(err):
    if not ckpt or device == "cpu": return 0.0  # the CPU keeps every activation
    m = re.search(r"the first ([0-9]+) of ([0-9]+) layers", err)
    return int(m.group(1)) / int(m.group(2)) if m else 0.0 if "checkpointing: none needed" in err else 1.0
vet_recomputed = recomputed(read(f"{work}/vet.err"))
hw_flops_tok = (4 + 2 * vet_recomputed) * n_mm
peft_hw_flops_tok = (6 if ckpt else 4) * n_mm

vet = {}
log = [json.loads(l) for l in read(f"{work}/vet/train.log.jsonl").splitlines() if l.strip()]
if len(log) > warm:
    tok, dt = 0.0, 0.0
    for i, r in enumerate(log):
        d = r["elapsed_s"] - (log[i - 1]["elapsed_s"] if i else 0.0)
        if i >= warm:
            tok += r["tokens_per_s"] * d
            dt += d
    vet["tps"] = tok / dt if dt > 0 else None
    vet["step_s"] = dt / (len(log) - warm)
    vet["loss"] = log[-1]["loss"]
m = re.search(r"total ([0-9.]+) ([KMG])iB", read(f"{work}/vet.err"))
if m: vet["alloc_gib"] = float(m.group(1)) / {"K": 1 << 20, "M": 1 << 10, "G": 1}[m.group(2)]
peft = dict(kv.split("=", 1) for kv in read(f"{work}/peft.out").split() if "=" in kv)
pf = {}
if "tokens_per_s" in peft:
    pf = {"tps": float(peft["tokens_per_s"]), "step_s": float(peft["step_s"]), "loss": float(peft["final_loss"]),
          "alloc_gib": float(peft["peak_alloc_gib"])}
for name, d, hw in (("vet", vet, hw_flops_tok), ("peft", pf, peft_hw_flops_tok)):
    s = read(f"{work}/{name}.smi").strip()
    if s: d["smi_gib"] = int(s) / 1024
    if d.get("tps"):
        d["mfu"] = d["tps"] * model_flops_tok / (peak * 1e12) * 100
        d["hw_tflops"] = d["tps"] * hw / 1e12

def cell(d, k, fmt):
    return fmt.format(d[k]) if d.get(k) is not None else "-"
def ratio(k):
    return f"{vet[k] / pf[k]:.2f}x" if vet.get(k) and pf.get(k) else "-"
rows = [("tokens/s", "tps", "{:.0f}"), ("s/step", "step_s", "{:.3f}"),
        ("MFU % (model FLOPs 4N)", "mfu", "{:.1f}"),
        (f"hardware TFLOP/s (vet {hw_flops_tok / n_mm:.3g}N, peft {peft_hw_flops_tok // n_mm}N)", "hw_tflops",
         "{:.1f}"),
        ("peak device memory, nvidia-smi (GiB)", "smi_gib", "{:.1f}"),
        ("allocated: vet's plan / torch max_memory_allocated (GiB)", "alloc_gib", "{:.1f}"),
        ("final loss", "loss", "{:.4f}")]
quant = os.environ.get("QUANT", "none")
base = "bf16 base" if quant == "none" else f"base quantized to {quant} (--quant {quant}, bf16 compute)"
ckpt_kind = os.environ.get("CKPT", "0")
ckpt_said = {"0": "off", "1": "on"}.get(ckpt_kind, f"on (vet: ={ckpt_kind})")
if ckpt and vet_recomputed < 1: ckpt_said += f", vet recomputing {vet_recomputed:.0%} of the layers"
if os.environ.get("MEM"): ckpt_said += f", vet within --device-memory {os.environ['MEM']}"
print(f"{preset} (random weights, {base}), LoRA r 16 q,k,v,o, dropout {drop}, gradient checkpointing "
      f"{ckpt_said}; batch {B} x {T} packed rows, {steps} steps, first {warm} not timed; "
      f"N = {n_mm / 1e9:.2f} G matmul parameters; MFU against {peak:.0f} TFLOP/s")
print()
print(f"| | vet-train --device {device} | transformers + peft | vet / peft |")
print("| --- | ---: | ---: | ---: |")
for label_, k, fmt in rows:
    print(f"| {label_} | {cell(vet, k, fmt)} | {cell(pf, k, fmt)} | {ratio(k)} |")
fig = {"part": label, "kind": "lora", "quant": quant, "device": device, "preset": preset, "batch": int(B), "seq": int(T),
       "steps": int(steps), "warmup": warm, "dropout": float(drop), "grad_checkpoint": ckpt, "checkpoint_mode": ckpt_kind,
       "n_matmul_params": n_mm, "model_flops_per_token": model_flops_tok, "hw_flops_per_token": hw_flops_tok,
       "peft_hw_flops_per_token": peft_hw_flops_tok, "vet_recomputed_layers": vet_recomputed,
       "device_memory": os.environ.get("MEM") or None,
       "peak_tflops": peak, "vet": vet, "peft": pf,
       "speedup": vet["tps"] / pf["tps"] if vet.get("tps") and pf.get("tps") else None}
def profile_table(prof):
    lines = ["", f"vet-train's device time by kind of work (VET_GPU_PROFILE; all {steps} steps, warm-up included; "
             f"busy {prof['busy_ms']:.0f} ms, device waiting for the host between calls "
             f"{prof['between_calls_ms']:.0f} ms)", "", "| kind | ms/step | share | segments/step |",
             "| --- | ---: | ---: | ---: |"]
    for name, k in sorted(prof["kinds"].items(), key=lambda kv: -kv[1]["ms"]):
        if k["segments"]:
            lines.append(f"| {name} | {k['ms'] / int(steps):.2f} | {100 * k['share']:.1f}% | "
                         f"{k['segments'] / int(steps):.0f} |")
    return lines
prof = read(f"{work}/profile.json")
if prof:
    try:  # a broken profile must not cost the table above
        fig["vet_profile"] = json.loads(prof)
        print("\n".join(profile_table(fig["vet_profile"])))
    except (ValueError, KeyError, TypeError) as e:
        print(f"\n(vet-train's profile unreadable: {e})")
json.dump(fig, open(f"{work}/figures.json", "w"))
PY
)
echo "$table"
record_results "LoRA training, vet-train vs transformers + PEFT: $LABEL (bench_7b.sh)" "$table"
record_figures "$work/figures.json"
say "done in $((SECONDS - t_all)) s"
[ $vet_status -eq 0 ] && [ $peft_status -eq 0 ] && echo "ok bench_7b"
[ $vet_status -eq 0 ] && [ $peft_status -eq 0 ]
