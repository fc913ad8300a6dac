// gpu_upload.h — host weights onto the device, for the GPU model (gpu_model.c) and GPU
// inference (gpu_infer.c) alike: fp32 as it is, bf16/fp16 rounded on the host, and a
// projection's matrices quantized (int8 / nf4, lib/model/quant.c) one layer at a time. Conversion
// happens in pieces, so the host never needs a second copy of a 7B model.
#ifndef VET_GPU_UPLOAD_H
#define VET_GPU_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "io/config.h"
#include "base/err.h"
#include "model/model.h"

typedef struct vet_cuda vet_cuda;

// dst (n) = src (n) on the device. n may be 0.
int vet_gpu_upload_f32(vet_cuda *ctx, float *dst, const float *src, size_t n, vet_err *err);
// dst (n) = src rounded to bf16 (fp16 when fp16 != 0), nearest even, as PyTorch rounds.
int vet_gpu_upload_half(vet_cuda *ctx, uint16_t *dst, const float *src, size_t n, int fp16, vet_err *err);
// host (L, out, in): each layer's matrix quantized (quant: VET_CUDA_Q_INT8 or VET_CUDA_Q_NF4)
// into q_bytes bytes at qw + l*q_bytes and q_scales scales at qs + l*q_scales. `what` names
// the projection in errors.
int vet_gpu_upload_quantized(vet_cuda *ctx, int quant, const float *host, int L, int out, int in,
                             void *qw, size_t q_bytes, float *qs, size_t q_scales, const char *what,
                             vet_err *err);


// Where the weights other than the projection matrices go on the device (NULL: not stored).
typedef struct {
    float *embed;        // (V,C) fp32 table, unless embed16 holds it or it is tied
    uint16_t *embed16;   // (V,C) bf16/fp16 table
    float *attn_norm, *mlp_norm;  // (L,C)
    float *final_norm;   // (C)
    float *lm_head;      // (V,C) fp32, unless lm_head16 holds it
    uint16_t *lm_head16; // (V,C) bf16/fp16 (tied: embed16 is the same buffer)
    float *bq, *bk, *bv; // Qwen2 biases (L,Q), (L,KV), (L,KV)
} vet_gpu_small_dst;
// Uploads the embedding table (half when d->embed16, else fp32 unless tied), the norms, the
// lm_head and the q/k/v biases (when the config has them).
int vet_gpu_upload_small(vet_cuda *ctx, const vet_config *c, const vet_weights *w, const vet_gpu_small_dst *d,
                         int fp16, vet_err *err);

#endif
