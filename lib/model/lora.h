// lora.h — internals of the LoRA adapted projection (the public LoRA API is in model.h).
#ifndef VET_LORA_H
#define VET_LORA_H

#include <stdint.h>

#include "model/model.h"

// (out, in) of target t (bit index of VET_LORA_*): A is (r, in), B (out, r) per layer.
void vet_lora_dims(const vet_config *c, int t, int *out, int *in);

// The weights of projection t (bit index of VET_LORA_*) in layer l: base W (out,in), bias or
// NULL, and the LoRA A (r,in), B (out,r) or NULL when t is not adapted.
typedef struct {
    const float *w, *b, *A, *B;
} lora_proj_w;
lora_proj_w lora_layer_proj(const vet_model *m, int l, int t);

// out (N,out) = inp · W^T + bias + scale * (dropout(inp) · A^T) · B^T.
// A == NULL: a plain linear layer. u (N,r) is kept for backward; xd (N,in) is scratch
// (used only when dropout > 0). The dropout mask is drawn from seed, row n keyed by row0 + n
// (dropout_forward in ops.h).
void lora_proj_forward(float *out, float *u, float *xd, const float *inp, const float *W,
                       const float *bias, const float *A, const float *B, int r, float scale,
                       float dropout, uint64_t seed, int64_t row0, int N, int in, int outc);
// Gradients (+=): dinp (N,in), dW/dbias (base, NULL when frozen), dA (r,in), dB (out,r).
// du (N,r) and xd (N,in) are scratch.
void lora_proj_backward(float *dinp, float *dW, float *dbias, float *dA, float *dB, float *du,
                        float *xd, const float *dout, const float *inp, const float *u,
                        const float *W, const float *A, const float *B, int r, float scale,
                        float dropout, uint64_t seed, int64_t row0, int N, int in, int outc);

#endif
