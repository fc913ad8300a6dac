// gpu_model.h — the decoder of lib/model/model.h on a CUDA device: the same forward and
// backward, run with the ops of kernels/ops_cuda.h on device buffers.
//
// A vet_gpu_model is a vet_model uploaded once (base weights fp32, or bf16 with VET_GPU_BF16,
// or int8 / NF4 matrices with VET_GPU_INT8 / VET_GPU_NF4; LoRA A/B always fp32), plus every activation, gradient and optimizer buffer for batches of
// up to B x T, all in ONE device allocation sized from the config before anything is
// allocated (vet_gpu_plan). Nothing is allocated per step, so a run that starts cannot run
// out of device memory later.
//
// The calls mirror the CPU's: vet_gpu_forward ~ vet_model_forward (loss only: lm_head and
// cross-entropy are fused in chunks, so the (B,T,V) logits never exist), vet_gpu_backward ~
// vet_model_backward (gradients accumulate on the device, laid out like lora_mem, or w_mem
// in full mode), vet_gpu_adamw_step ~ adamw_update over a slice of the trainable buffer.
// The trainer reaches these through the CUDA training backend (gpu_train_backend.h).
// In fp32 the results should agree with the CPU to ~1e-6 relative: tests/gpu/test_gpu_model.c
// checks 1e-5. Status: run only against the CPU stand-in of the ops (mk/gpustub.mk), never
// yet on a GPU.
//
// LoRA dropout: the masks are made on the device (dropout_forward_cuda) from the CPU's seeds
// (lib/model/forward_backward.c's) with the CPU's counter-based generator (lib/base/philox.h),
// so they are the CPU's masks bit for bit and a GPU step equals a CPU step.
//
// Built without CUDA (no nvcc, or CUDA=0) every function exists and fails with
// "vet was built without CUDA (rebuild with nvcc on PATH)".
#ifndef VET_GPU_MODEL_H
#define VET_GPU_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

typedef struct vet_cuda vet_cuda;  // kernels/ops_cuda.h's context (same typedef there)

// Options (bits of vet_gpu_opts.flags).
enum {
    VET_GPU_BF16 = 1 << 0,  // base weight matrices stored bf16 (GEMM inputs rounded to bf16);
                            // norms, biases, lm_head and LoRA stay fp32. LoRA training only.
    VET_GPU_FULL = 1 << 1,  // train every base weight (VET_TRAIN_FULL): base grads + AdamW
                            // state on the device. fp32 only, model without LoRA adapters.
    // Quantized base weight matrices (model/quant.h; at most one of the two), quantized on the
    // host and uploaded quantized; each projection is dequantized into one scratch buffer
    // right before its GEMM (forward and the activation-gradient backward). With VET_GPU_BF16
    // the scratch is bf16 and the GEMMs are bf16 (QLoRA's compute); without it fp32 (a parity
    // mode: the fp32 model on the dequantized weights, exactly). Norms, biases, lm_head and
    // LoRA stay fp32, an untied embedding bf16 (fp32 without VET_GPU_BF16). LoRA only.
    VET_GPU_INT8 = 1 << 2,  // int8, one fp32 scale per output row
    VET_GPU_NF4 = 1 << 3,   // NF4, an absmax per block of 64, double quantized (lib/model/quant.h)
    // Gradient checkpointing: forward keeps only each layer's input (the residual stream,
    // (L+1) x N x C) and the loss side; backward recomputes one layer's forward, into a single
    // layer's buffers, right before that layer's backward. The same ops in the same order on
    // the same inputs (dropout masks from the same seeds), so the loss and every gradient are
    // bit-identical to the run without it; it costs about one more forward per step.
    // vet_gpu_opts.ckpt_layers recomputes only the first layers, the others keeping their
    // activations: memory and time in between, the same bits again.
    VET_GPU_CKPT = 1 << 4,
    // Base weight matrices stored IEEE fp16 instead of bf16: VET_GPU_BF16's mode exactly (the
    // same tensors and GEMM inputs rounded, fp16 GEMMs with fp32 accumulation) in the other
    // format. fp16's range ends at 65504, so the caller scales the loss (vet-train --fp16's
    // dynamic loss scaling). Not with VET_GPU_BF16, VET_GPU_FULL or a quantization.
    VET_GPU_FP16 = 1 << 5,
    // With bf16 storage (VET_GPU_BF16, not VET_GPU_FP16), attention runs on tensor cores (kernels/attention_tc.cu: q, k, v and
    // the probabilities rounded to bf16, fp32 accumulation). This flag keeps the fp32 CUDA-core
    // kernels there instead (exact, slower): vet-train's VET_GPU_ATTENTION=fp32, to tell a
    // difference the tensor-core attention makes from one the bf16 weights make.
    VET_GPU_ATTN_FP32 = 1 << 6,
    // LoRA dropout runs inside the adapters' products (kernels/lora.cu) when the rank allows it;
    // this flag takes the unfused path (a dropout pass, then cuBLAS): vet-train's
    // VET_GPU_LORA_FUSED=0, the same numbers up to the order of fp32 sums, more memory traffic.
    VET_GPU_LORA_UNFUSED = 1 << 7,
    // With 16-bit storage (VET_GPU_BF16 or VET_GPU_FP16) and the fused products, the four adapter
    // products that read a long operand run on tensor cores (kernels/lora_mma.cu: every operand
    // rounded to the 16-bit format, fp32 sums: a 16-bit-autocast PEFT's arithmetic). This flag
    // keeps the CUDA-core kernels there (fp32 adapters on the 16-bit values: PEFT in a 16-bit
    // model without autocast): vet-train's VET_GPU_LORA_MMA=0.
    VET_GPU_LORA_NO_MMA = 1 << 8,
    // With VET_GPU_CKPT: each layer's attention output (N x Q fp32) and log-sum-exp (N x H) are
    // kept as well, so the recompute runs everything but the attention's forward (the backward
    // reads those two and q, k, v, which the recompute makes again). The same bits as without
    // it; L x N x (Q + H) x 4 more bytes (~1.1 GB at 7B, 4 x 512) for one attention forward a
    // layer less per step: vet-train --grad-checkpoint=keep-attention.
    VET_GPU_CKPT_KEEP_ATTN = 1 << 9,
    // With LoRA (a rank over 32 in blocks of 32), the adapters' up product out += s·u·B^T by vet's kernel
    // (lora_up_cuda: out read and written once, 16 bytes at a time) instead of cuBLAS's SGEMM,
    // whose tiles fit a rank-16 product badly: the same numbers up to the order of the rank's
    // sum. vet-train's VET_GPU_LORA_UP=vet; the GPU bundle picks it when op_parity times the
    // kernel faster.
    VET_GPU_LORA_UP_KERNEL = 1 << 10,
};

typedef struct {
    unsigned flags;    // VET_GPU_*
    size_t mem_limit;  // bytes the model may take on the device (its free memory); 0: no check
    float resid_dropout;  // dropout before each residual add in training forwards, as
                          // vet_acts_set_resid_dropout (0: none)
    int ckpt_layers;   // with VET_GPU_CKPT: how many layers, the first ones, are recomputed in
                       // backward (1..L; 0: every layer); the others keep their activations.
                       // Each layer kept costs one layer's activations (vet_gpu_plan_for says
                       // how much) and saves one layer's forward a step. 0 without VET_GPU_CKPT
} vet_gpu_opts;

// Device bytes a model needs, by kind (vet_gpu_plan_bytes fills it: a function cannot share
// the type's name in C). total is the sum, and exactly what vet_gpu_model_new
// allocates (each buffer rounded up to 256 bytes).
typedef struct {
    size_t weights;      // base weights (fp32, or bf16 / int8 / nf4 matrices + the rest, see flags)
    size_t train;        // trainable params' grads + AdamW m, v (+ LoRA A/B themselves)
    size_t activations;  // what forward keeps for backward, for B x T positions (with
                         // VET_GPU_CKPT: the layer inputs, one layer's worth for the recomputed
                         // layers and the kept layers' own)
    size_t scratch;      // backward scratch, logits chunk, attention scratch, the batch
    size_t total;
    size_t n_params;     // trainable floats (n_lora, or n_w in full mode)
} vet_gpu_plan;

// The plan for a config with LoRA rank lora_r on lora_targets (VET_LORA_* mask; r 0 = no
// LoRA), batches of B x T and flags (VET_GPU_*). No device is needed.
int vet_gpu_plan_bytes(const vet_config *c, int lora_r, unsigned lora_targets, int B, int T,
                       unsigned flags, vet_gpu_plan *out, vet_err *err);
// The same with every setting of the model's options (flags, ckpt_layers; mem_limit is not
// checked here): what vet_gpu_model_new with o would allocate.
int vet_gpu_plan_for(const vet_config *c, int lora_r, unsigned lora_targets, int B, int T, const vet_gpu_opts *o,
                     vet_gpu_plan *out, vet_err *err);

typedef struct vet_gpu_model vet_gpu_model;  // opaque

// Uploads m (add LoRA adapters first) and allocates everything for batches of up to B x T.
// Refuses, with the plan's numbers, when the plan exceeds opts->mem_limit. opts may be NULL
// (fp32, LoRA mode, no limit). The model m is not referenced afterwards.
vet_gpu_model *vet_gpu_model_new(vet_cuda *ctx, const vet_model *m, int B, int T,
                                 const vet_gpu_opts *opts, vet_err *err);
void vet_gpu_model_free(vet_gpu_model *g);
// The plan the model was allocated with.
const vet_gpu_plan *vet_gpu_model_plan(const vet_gpu_model *g);
// From now on the forwards, backwards and optimizer ops mark their kinds of work on prof
// (kernels/host/gpu_profile.h; NULL: none). prof is not owned and must outlive g's use.
typedef struct vet_gpu_profile vet_gpu_profile;
void vet_gpu_model_set_profile(vet_gpu_model *g, vet_gpu_profile *prof);

// Forward over a batch (uploaded here: b is not needed afterwards). Summed
// cross-entropy over target positions in *loss_sum, their count in *n_targets. training != 0
// applies LoRA dropout with masks drawn from dropout_seed, as vet_model_forward does, and
// computes the loss gradient at the final norm right away (as the CPU).
int vet_gpu_forward(vet_gpu_model *g, const vet_batch *b, double *loss_sum, int *n_targets,
                    int training, uint64_t dropout_seed, vet_err *err);
// Backward of (loss_sum * loss_scale) of the last forward, gradients accumulated (+=) into
// the device grads: VET_TRAIN_LORA needs adapters; VET_TRAIN_FULL needs VET_GPU_FULL.
int vet_gpu_backward(vet_gpu_model *g, float loss_scale, vet_train_mode mode, vet_err *err);

// AdamW (adamw_update's exact operations) over the trainable floats [off, off + n) with
// their grads times gscale (clipping, and fp16's unscale in the same multiply) and moments;
// step counts from 1. Grads are left as they are.
int vet_gpu_adamw_step(vet_gpu_model *g, size_t off, size_t n, float gscale, float lr, float beta1,
                       float beta2, float eps, float wd, int step, vet_err *err);
int vet_gpu_zero_grads(vet_gpu_model *g, vet_err *err);
// The gradients' global norm times unscale (vet_train_grad_norm's value) and the index (in the
// host's layout; the least in the device's, which differs from the host's for B of a rank over
// 32: gpu_lora_layout.c) of a gradient that is not finite (*first_bad = n_params when none), reduced on the device
// (grad_stats_cuda): 16 bytes come back, the gradients stay where they are.
int vet_gpu_grad_stats(vet_gpu_model *g, float unscale, double *norm, size_t *first_bad, vet_err *err);

// Copies the trainable floats back: the LoRA A/B into m->lora_mem (m must have the same
// adapters), or in full mode the base weights into m->w_mem.
int vet_gpu_download_params(vet_gpu_model *g, vet_model *m, vet_err *err);
// LoRA mode: the adapters into m->lora_mem (vet_gpu_download_params for LoRA).
int vet_gpu_download_lora(vet_gpu_model *g, vet_model *m, vet_err *err);
// The gradients (n_params floats, laid out like lora_mem / w_mem) into grads.
int vet_gpu_download_grads(vet_gpu_model *g, float *grads, size_t n, vet_err *err);
// The gradients on the device (n_params floats; *n set), for a collective that sums them in
// place there (gpu_collective.h). NULL without CUDA.
float *vet_gpu_grads_device(vet_gpu_model *g, size_t *n);
// The gradients replaced by grads (n_params floats): the sum over data-parallel ranks.
int vet_gpu_upload_grads(vet_gpu_model *g, const float *grads, size_t n, vet_err *err);
// The training state for checkpoints and resume: the trainable floats and both AdamW moments
// (n_params floats each, laid out like lora_mem / w_mem; a NULL pointer is skipped).
int vet_gpu_download_state(vet_gpu_model *g, float *params, float *adam_m, float *adam_v,
                           size_t n, vet_err *err);
int vet_gpu_upload_state(vet_gpu_model *g, const float *params, const float *adam_m,
                         const float *adam_v, size_t n, vet_err *err);

#endif
