#!/usr/bin/env bash
# test_quant_device.sh — --quant int8|nf4 (quantized base weights, lib/model/quant.h) in vet-train and
# vet-generate --device cuda, run without a GPU through the stand-in build (build/standin/*:
# lib/ linked against the CPU stand-in of the CUDA ops, ASan + UBSan; make gpustub). Checks: a
# tiny LoRA run completes with int8 and nf4, says so, and prints a memory plan whose weight
# bytes are exactly what the formats cost (int8: 1 byte + a fp32 scale per row; nf4: half a
# byte + an int8 absmax per 64 + the fp32 mean and a scale per 256 blocks; the rest as in bf16
# mode), recomputed here from config.json;
# its losses stay within 1% of the bf16 run's; vet-generate --quant nf4 writes a full predictions
# stream; --quant on the CPU is refused with exit 2. `skip` where the stand-in is not built.
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-quant-dev.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

# 1. --quant on the CPU device: a usage error (exit 2), before anything is read.
cpu_refused() {
    local msg st
    msg=$("$VET_BIN/vet-train" --device cpu --quant int8 --base "$tmp/none" --train "$tmp/none.zst" \
          --out "$tmp/none-out" 2>&1)
    st=$?
    [ $st -eq 2 ] && grep -q -- "--quant int8: quantized base weights need --device cuda" <<<"$msg" ||
        { echo "vet-train exit $st: $msg" >&2; return 1; }
    msg=$("$VET_BIN/vet-generate" --quant nf4 -m "$tmp/none" "$tmp/none.tok" -o "$tmp/none.pred" 2>&1)
    st=$?
    [ $st -eq 2 ] && grep -q -- "--quant nf4: quantized weights need --device cuda" <<<"$msg" &&
        [ ! -e "$tmp/none.pred" ] || { echo "vet-generate exit $st: $msg" >&2; return 1; }
    msg=$("$VET_BIN/vet-train" --quant int4 --base "$tmp/none" --train "$tmp/none.zst" --out "$tmp/none-out" 2>&1)
    [ $? -eq 2 ] && grep -q "not none, int8 or nf4" <<<"$msg"
}
check quant_cpu_refused_exit2 cpu_refused

sbin=${VET_STANDIN:-$VET_TOP/build/standin}
if [ ! -x "$sbin/vet-train" ] || [ ! -x "$sbin/vet-generate" ]; then
    echo "skip quant_device: $sbin/vet-train or vet-generate not built (make gpustub)"
    exit 0
fi

. "$VET_TOP/tests/e2e/fault_fixture.sh"
make_fixture "$tmp" || { fail "quant_device_fixture"; exit 1; }

common=(--threads 2 --base "$tmp/base" --train "$tmp/train.msgpack.zst" --device cuda --epochs 100
        --max-steps 6 --batch-size 2 --grad-accum 2 --lr 1e-3 --lora-r 4 --lora-alpha 8 --lora-dropout 0)
# train OUT [FLAGS...]: the stand-in vet-train, stderr into OUT.err
train() { local out=$1; shift; "$sbin/vet-train" "${common[@]}" --out "$out" "$@" 2>"$out.err"; }

train "$tmp/bf16"; st_bf16=$?
train "$tmp/int8" --quant int8; st_int8=$?
train "$tmp/nf4" --quant nf4; st_nf4=$?

# 2. Both complete: an adapter, six log lines with finite losses, and the device line says so.
runs_ok() {
    local q=$1 st=$2
    [ "$st" -eq 0 ] || { cat "$tmp/$q.err" >&2; return 1; }
    [ -s "$tmp/$q/adapter_model.safetensors" ] && [ -s "$tmp/$q/adapter_config.json" ] || return 1
    grep -q "^vet-train: device cuda:0 .*, base weights $q (dequantized to bf16 for each GEMM)$" "$tmp/$q.err" ||
        { cat "$tmp/$q.err" >&2; return 1; }
    /usr/bin/python3 - "$tmp/$q/train.log.jsonl" <<'PY'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if len(rows) == 6 and all(math.isfinite(r["loss"]) for r in rows) else 1)
PY
}
check quant_train_int8_completes runs_ok int8 $st_int8
check quant_train_nf4_completes runs_ok nf4 $st_nf4

# 3. The plan's weights: exactly the formats' bytes (each buffer rounded to 256 bytes, as
#    kernels/host/gpu_plan.c), recomputed from the model's config.json and printed as vet-train does.
plan_ok() {
    [ $st_bf16 -eq 0 ] && [ $st_int8 -eq 0 ] && [ $st_nf4 -eq 0 ] || return 1
    /usr/bin/python3 - "$tmp/base/config.json" "$tmp/bf16.err" "$tmp/int8.err" "$tmp/nf4.err" <<'PY'
import json, re, sys
c = json.load(open(sys.argv[1]))
L, C, F, H = c["num_hidden_layers"], c["hidden_size"], c["intermediate_size"], c["num_attention_heads"]
KVH, V = c.get("num_key_value_heads", H), c["vocab_size"]
hd = C // H
Q, KV = H * hd, KVH * hd
tied, bias = c.get("tie_word_embeddings", False), c["model_type"] == "qwen2"
AL = lambda b: (b + 255) // 256 * 256
mats = [(Q, C), (KV, C), (KV, C), (C, Q), (F, C), (F, C), (C, F)]  # (out, in) per projection
# untied: the embedding in 16 bits; the lm_head in 16 bits (tied: one table for both)
rest = (0 if tied else AL(V * C * 2)) + 2 * AL(L * C * 4) + AL(C * 4) + AL(V * C * 2)
rest += (AL(L * Q * 4) + 2 * AL(L * KV * 4)) if bias else 0
n16 = sum(o * i for o, i in mats) * L + L * C + (L * (Q + 2 * KV) if bias else 0)  # the bf16 window
want = {
    "bf16": AL(n16 * 2) + rest,
    "int8": sum(AL(L * o * i) + AL(L * o * 4) for o, i in mats) + rest,
    # nf4, double quantized: codes and an int8 absmax per 64; the fp32 mean and a scale per 256 blocks
    "nf4": sum(AL(L * ((o * i + 1) // 2 + (o * i + 63) // 64)) + AL(L * (1 + ((o * i + 63) // 64 + 255) // 256) * 4)
               for o, i in mats) + rest,
}
def shown(b):  # kernels/host/device.c's vet_bytes_str
    if b >= 1 << 30: return "%.2f GiB" % (b / 2**30)
    if b >= 1 << 20: return "%.1f MiB" % (b / 2**20)
    return "%.1f KiB" % (b / 1024)
bad = 0
for q, path in zip(("bf16", "int8", "nf4"), sys.argv[2:]):
    m = re.search(r"device memory plan for batches of .*: weights ([0-9.]+ [KMG]iB),", open(path).read())
    got = m.group(1) if m else None
    print(f"{q}: plan weights {got}, want {shown(want[q])} ({want[q]} bytes; x{want[q] / want['bf16']:.3f} of bf16)",
          file=sys.stderr)
    bad += got != shown(want[q])
mb = sum(o * i for o, i in mats) * L
print(f"matrices alone: int8 x{(want['int8'] - rest) / (AL(n16 * 2)):.3f}, nf4 x{(want['nf4'] - rest) / AL(n16 * 2):.3f}"
      f" of bf16 ({mb} weights)", file=sys.stderr)
sys.exit(1 if bad or not want["nf4"] < want["int8"] < want["bf16"] else 0)
PY
}
check quant_train_plan_weights plan_ok

# 4. Close to the bf16 run: the same steps, the final loss within 1% (measured 4e-6 int8,
#    4e-5 nf4: the micro model is barely trained, its weights 0.02-scale Gaussians that int8
#    moves by ~0.5% rms, nf4 by ~10%, and its loss stays near log(512)).
close_ok() {
    [ $st_bf16 -eq 0 ] && [ $st_int8 -eq 0 ] && [ $st_nf4 -eq 0 ] || return 1
    /usr/bin/python3 - "$tmp/bf16/train.log.jsonl" "$tmp/int8/train.log.jsonl" "$tmp/nf4/train.log.jsonl" <<'PY'
import json, sys
logs = [[json.loads(l) for l in open(p)] for p in sys.argv[1:]]
b = logs[0][-1]["loss"]
ok = True
for name, log in zip(("int8", "nf4"), logs[1:]):
    q = log[-1]["loss"]
    print(f"final loss bf16 {b:.5f}, {name} {q:.5f} (rel {abs(q - b) / b:.2e})", file=sys.stderr)
    ok &= len(log) == len(logs[0]) and abs(q - b) <= 0.01 * b
sys.exit(0 if ok else 1)
PY
}
check quant_train_close_to_bf16 close_ok

# 5. The fp32-compute variant (--quant int8 --fp32) runs too; --full with --quant is refused.
fp32_full_ok() {
    train "$tmp/int8-fp32" --quant int8 --fp32 --max-steps 2 || { cat "$tmp/int8-fp32.err" >&2; return 1; }
    grep -q "base weights int8 (dequantized to fp32 for each GEMM)$" "$tmp/int8-fp32.err" || return 1
    local msg
    msg=$("$sbin/vet-train" --threads 2 --init "$tmp/micro.json" --tokenizer "$tmp/tok.model" \
          --train "$tmp/train.msgpack.zst" --out "$tmp/full-q" --device cuda --fp32 --quant nf4 2>&1)
    [ $? -eq 2 ] && grep -q "quantized base weights are frozen" <<<"$msg" && [ ! -e "$tmp/full-q" ]
}
check quant_train_fp32_and_full_refused fp32_full_ok

# 6. vet-generate --device cuda --quant nf4 (with the fixture's adapter merged before the
#    quantization): a predictions stream with every note; it says nf4 and prints its plan.
DUMP=$VET_BIN/vet-dump
gen_ok() {
    local n_notes
    n_notes=$("$DUMP" -c "$tmp/rows.tok") || return 1
    "$sbin/vet-generate" --threads 2 -m "$tmp/base" -a "$tmp/adapter" --device cuda --quant nf4 -n 8 -b 4 \
        "$tmp/rows.tok" -o "$tmp/nf4.pred" 2>"$tmp/gen.err" || { cat "$tmp/gen.err" >&2; return 1; }
    grep -q "^vet-generate: device cuda:0 .*, weights nf4 (read packed by steps of up to 8 notes, else dequantized to bf16 for each GEMM)$" "$tmp/gen.err" &&
        grep -q "^vet-generate: device memory plan for 4 notes" "$tmp/gen.err" || { cat "$tmp/gen.err" >&2; return 1; }
    [ "$("$DUMP" -c "$tmp/nf4.pred")" = "$n_notes" ] || return 1
    "$DUMP" -r "$tmp/nf4.pred" | /usr/bin/python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin if l.strip()]
sys.exit(0 if recs and all("id" in r and "text" in r and isinstance(r.get("pred"), list) for r in recs) else 1)'
}
check quant_generate_nf4_predictions gen_ok

# 7. VET_GPU_QUANT_GEMV=0: steps dequantize into scratch too (said on stderr), every note still
#    written; another value is refused before any work (exit 2, nothing written).
gemv_env_ok() {
    VET_GPU_QUANT_GEMV=0 "$sbin/vet-generate" --threads 2 -m "$tmp/base" -a "$tmp/adapter" --device cuda --quant nf4 \
        -n 8 -b 4 "$tmp/rows.tok" -o "$tmp/nf4s.pred" 2>"$tmp/gen0.err" || { cat "$tmp/gen0.err" >&2; return 1; }
    grep -q "^vet-generate: device cuda:0 .*, weights nf4 (dequantized to bf16 for each GEMM)$" "$tmp/gen0.err" ||
        { cat "$tmp/gen0.err" >&2; return 1; }
    [ "$("$DUMP" -c "$tmp/nf4s.pred")" = "$("$DUMP" -c "$tmp/rows.tok")" ] || return 1
    local msg
    msg=$(VET_GPU_QUANT_GEMV=yes "$sbin/vet-generate" --threads 2 -m "$tmp/base" --device cuda --quant nf4 \
          "$tmp/rows.tok" -o "$tmp/bad.pred" 2>&1)
    [ $? -eq 2 ] && grep -q "VET_GPU_QUANT_GEMV=yes: use 1 (the default) or 0" <<<"$msg" && [ ! -e "$tmp/bad.pred" ]
}
check quant_generate_gemv_env gemv_env_ok
