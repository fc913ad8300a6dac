// gpu_infer.h — lib/generate/decoder.h's KV-cache forward on a CUDA device: prefill of one
// prompt into a slot, and decode steps of one token for n slots at once, with the ops of
// kernels/ops_cuda.h. At the end, vet-generate's device: opened, planned, checked, loaded.
//
// A vet_gpu_infer is a merged model (no LoRA left: vet_model_merge_lora first, as for the
// CPU) uploaded once (fp32, or bf16 weight matrices with VET_GPU_BF16, IEEE fp16 ones with
// VET_GPU_FP16: norms, biases, the lm_head and the tied embedding stay fp32), plus the KV caches of n_slots sequences of up to
// max_len positions each ((L, n_slots, max_len, KVH, hd): bf16 with bf16 or quantized weights,
// fp16 with fp16 weights, fp32 in fp32 mode unless VET_GPU_KV_BF16) and the scratch rows of a
// prefill or a step, all in ONE device allocation sized first by vet_gpu_infer_plan_bytes and
// refused, with the numbers, when larger than the caller's memory limit. Nothing is allocated
// afterwards.
//
//   prefill  one prompt, or several concatenated (prefill_batch), as one batched forward:
//            GEMMs over all their positions, causal attention per prompt (attention_forward_cuda
//            over one packed row, a segment per prompt), keys and values scattered into each
//            prompt's slot (kv_cache_write); logits of each prompt's last position come back.
//   step     one token for each of n distinct slots: GEMMs over the n rows, RoPE at each
//            slot's position, the new k/v rows scattered into the caches (kv_cache_write_cuda),
//            attention of each row against its own slot's cache (attention_decode_cuda);
//            logits (n, V) come back (through pinned memory) for sampling on the host, or,
//            greedy, only the n argmax ids (step_greedy; constrained, over the allowed ids).
// vet_gpu_infer_backend fills lib/generate/decoder.h's backend table, so vet_generate_on drives
// it with the CPU's scheduling, sampling and constrained decoding.
//
// Precision: fp32 mode computes what the CPU computes up to summation order (cuBLAS fp32
// GEMMs, no TF32): ~1e-6 relative. A row's result does not depend on the other rows of its
// step in the attention; cuBLAS may pick other GEMM kernels for other row counts, so batch 1
// and batch 64 can differ in the last bits (unlike the CPU's row-exact kernel). 16-bit modes
// round each GEMM input to the format (bf16 ~0.4%, fp16 ~0.05% per element); fp16 ends at
// 65504, so a GEMM input beyond it becomes inf (the residual stream, norms and logits are
// fp32; the GEMM inputs are normed or products of them, as in PyTorch's fp16 inference).
//
// Built without CUDA (no nvcc, or CUDA=0) every function exists and fails with
// "vet was built without CUDA (rebuild with nvcc on PATH)".
#ifndef VET_GPU_INFER_H
#define VET_GPU_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "generate/decoder.h"
#include "kernels/host/device.h"
#include "kernels/host/gpu_model.h"
#include "model/model.h"
#include "model/quant.h"

// Inference-only option (a bit of vet_gpu_opts.flags beside gpu_model.h's): a bf16 KV cache
// with fp32 weights and GEMMs, so a test sees the cache's rounding alone. 16-bit weights
// always get a 16-bit cache (their format); fp32 (vet-generate --fp32) an fp32 one.
enum { VET_GPU_KV_BF16 = 1 << 8 };
// Quantized weights only: decode steps dequantize into scratch for a GEMM, as a prefill does,
// instead of reading the packed codes (matmul_rows_q_cuda, the default for steps of up to
// VET_QROWS_MAX rows). For comparisons and as the fallback: VET_GPU_QUANT_GEMV=0 sets it.
enum { VET_GPU_QUANT_SCRATCH = 1 << 9 };

// Device bytes of an inference model, by kind; total is exactly what vet_gpu_infer_new
// allocates (each buffer rounded up to 256 bytes).
typedef struct {
    size_t weights;  // base weights (fp32, or bf16 / fp16 / int8 / nf4 matrices + fp32 norms/biases/lm_head)
    size_t cache;    // keys and values of n_slots x max_len positions, every layer
    size_t scratch;  // rows of a prefill (max_len) or a step (n_slots), logits, RoPE tables
    size_t total;
} vet_gpu_infer_plan;

// The plan for a config, n_slots sequences of up to max_len positions and flags (VET_GPU_BF16 or
// VET_GPU_FP16, VET_GPU_INT8 / VET_GPU_NF4, or 0). No device is needed.
int vet_gpu_infer_plan_bytes(const vet_config *c, int n_slots, int max_len, unsigned flags,
                             vet_gpu_infer_plan *out, vet_err *err);

// Opens CUDA device dev for inference: a context, the device's name (name, n bytes: "NVIDIA
// H200 (sm_90, 139.8 GiB)") and its free and total memory. NULL with the reason (no GPU, no
// driver, built without CUDA) in err.
vet_cuda *vet_gpu_infer_open(int dev, char *name, size_t n, size_t *free_bytes,
                             size_t *total_bytes, vet_err *err);
void vet_gpu_infer_close(vet_cuda *ctx);  // safe with NULL

typedef struct vet_gpu_infer vet_gpu_infer;  // opaque

// Uploads m (no LoRA adapters) and allocates its caches and scratch. opts: flags
// VET_GPU_BF16, VET_GPU_FP16 (the bf16 mode in IEEE fp16: matrices and GEMM inputs fp16, fp32
// accumulation; for float16 checkpoints, whose weights it keeps exactly) or 0, plus
// VET_GPU_INT8 or VET_GPU_NF4 (not with VET_GPU_FP16) for quantized weight matrices
// (quantized on the host by lib/model/quant.c; a prefill dequantizes each matrix into one scratch
// matrix for its GEMM, to bf16 with VET_GPU_BF16, else fp32, see gpu_model.h; a step of up to
// VET_QROWS_MAX rows reads the packed codes, unless VET_GPU_QUANT_SCRATCH); mem_limit the bytes it may take (0: no check). opts may be NULL (fp32,
// no limit). m is not referenced afterwards.
vet_gpu_infer *vet_gpu_infer_new(vet_cuda *ctx, const vet_model *m, int n_slots, int max_len,
                                 const vet_gpu_opts *opts, vet_err *err);
void vet_gpu_infer_free(vet_gpu_infer *g);  // safe with NULL
const vet_gpu_infer_plan *vet_gpu_infer_plan_of(const vet_gpu_infer *g);

// As vet_infer_prefill / vet_infer_step (lib/generate/decoder.h); logits are host memory. A prompt may
// take up to max_len positions; a step fails on a slot whose cache is full.
int vet_gpu_infer_prefill(vet_gpu_infer *g, int slot, const int32_t *ids, int n, float *logits,
                          vet_err *err);
int vet_gpu_infer_step(vet_gpu_infer *g, const int *slots, const int32_t *tokens, int n,
                       float *logits, vet_err *err);
// A step whose next tokens are chosen greedily on the device (argmax_rows_cuda: the lowest id
// on ties, as vet_sample at temperature 0): next (n) gets the ids, n ints come back instead of
// n x V floats. allowed (NULL: every id): row i chooses among allowed[allowed_off[i] ..
// allowed_off[i+1]), ascending, 1 to V ids of [0, V) (constrained decoding; argmax_allowed_rows_cuda),
// checked here. The slots advance as with vet_gpu_infer_step.
int vet_gpu_infer_step_greedy(vet_gpu_infer *g, const int *slots, const int32_t *tokens, int n,
                              const int32_t *allowed, const int32_t *allowed_off, int32_t *next, vet_err *err);
// As vet_infer_backend's prefill_batch: count prompts (at most n_slots, distinct slots) prefilled
// in batched forwards of up to the plan's prefill rows each (max(max_len, min(n_slots x max_len,
// 2048)) positions: consecutive prompts concatenated, causal attention per prompt through
// attention_forward_cuda's segments), logits (count, V). bad (may be NULL): the prompt at fault.
int vet_gpu_infer_prefill_batch(vet_gpu_infer *g, const int *slots, const int32_t *const *ids, const int *n,
                                int count, float *logits, int *bad, vet_err *err);
int vet_gpu_infer_len(const vet_gpu_infer *g, int slot);  // positions in the slot's cache
// Slot dst holds what slot src holds (its cached keys and values, copied on the device, and its
// length): the backend's copy_slot (lib/generate/rank.h prefills a prompt once for its answers).
int vet_gpu_infer_copy(vet_gpu_infer *g, int dst, int src, vet_err *err);

// be = the backend table of g, for vet_generate_on.
void vet_gpu_infer_backend(vet_gpu_infer *g, vet_infer_backend *be);

// ---------------------------------------------------------------------------------------
// vet-generate's device, in three steps so that each can fail before the next costs time:
// open it (before any input is read: a wrong device fails at once), plan its memory once the
// model's config is known (said to the person before anything is allocated), then refuse a
// plan that does not fit, or upload the model. The caller says each step; nothing here prints.

// Device memory a plan may take: the free memory less room for what is allocated outside the
// plan (cuBLAS workspaces, kernel modules loaded on first use); as vet-train.
#define VET_GPU_INFER_HEADROOM ((size_t)256 << 20)

typedef struct {
    vet_cuda *ctx;
    int index;                 // cuda:N
    char name[256];            // "NVIDIA H200 (sm_90, 139.8 GiB)"
    size_t free_bytes, total_bytes;
    unsigned half;             // VET_GPU_BF16, VET_GPU_FP16 or 0 (fp32)
    vet_quant_kind quant;
    int half_from_checkpoint;  // fp16 because the checkpoint is stored in float16
    int quant_scratch;         // VET_GPU_QUANT_GEMV=0: decode steps dequantize into scratch too
} vet_gpu_infer_device;

// The 16-bit format of the weights (VET_GPU_BF16, VET_GPU_FP16, or 0 for fp32): as c asks,
// else fp16 for a checkpoint stored in float16 (model_dir's config.json; bf16 would drop 3
// mantissa bits of each of its weights; quantized weights dequantize to bf16), else bf16. A
// config that does not load here is left to the model's loader to report. *from_checkpoint
// (may be NULL) is set when config.json decided.
unsigned vet_gpu_infer_choose_half(const vet_device_choice *c, const char *model_dir, int *from_checkpoint);

// Opens the device of c (c->cuda set) with the format above. VET_E_USAGE with the reason when
// it cannot be used (no GPU, no driver, built without CUDA).
int vet_gpu_infer_device_open(const vet_device_choice *c, const char *model_dir, vet_gpu_infer_device *d,
                              vet_err *err);
void vet_gpu_infer_device_close(vet_gpu_infer_device *d);  // safe on a zeroed or closed one

// "device cuda:0 NAME, weights bf16", with why fp16 or how quantized weights are used.
const char *vet_gpu_infer_device_describe(const vet_gpu_infer_device *d, char *buf, size_t n);

// The plan of cfg on d for n_slots notes of max_len positions each.
int vet_gpu_infer_device_plan(const vet_gpu_infer_device *d, const vet_config *cfg, int n_slots, int max_len,
                              vet_gpu_infer_plan *p, vet_err *err);
// "device memory plan for 16 notes x 512 positions: weights 1.2 MiB, KV cache ..., free".
const char *vet_gpu_infer_plan_describe(const vet_gpu_infer_plan *p, const vet_gpu_infer_device *d, int n_slots,
                                        int max_len, char *buf, size_t n);
// 0 when p fits d's free memory less VET_GPU_INFER_HEADROOM; else VET_E_USAGE with the numbers
// and what to change (--batch, --max-len, a smaller weight format).
int vet_gpu_infer_check_fit(const vet_gpu_infer_plan *p, const vet_gpu_infer_device *d, int n_slots, int max_len,
                            vet_err *err);
// Checks the fit, then uploads m (no LoRA left) with d's format.
vet_gpu_infer *vet_gpu_infer_device_load(const vet_gpu_infer_device *d, const vet_model *m, int n_slots,
                                         int max_len, vet_err *err);

#endif
