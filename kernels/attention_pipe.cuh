// attention_pipe.cuh — attention_mma.cu's entry to attention_pipe.cu: the register attention with
// its tiles brought in by asynchronous copies (cp.async) while the previous tile computes.
#ifndef VET_ATTENTION_PIPE_CUH
#define VET_ATTENTION_PIPE_CUH

#include "common.cuh"

// Whether the pipelined kernels take these tensors: head_dim a multiple of 8 (16-byte copies)
// up to VET_ATTN_MMA_MAX_HD, every tensor 16-byte aligned (NULL ones ignored).
bool attention_pipe_fits(int hd, const void *q, const void *k, const void *v, const void *dout);

// As attention_mma_forward / _backward, for tensors attention_pipe_fits takes (q, k, v, dout in
// bf16): 0 when launched, -1 on a CUDA error (err set).
int attention_pipe_forward(vet_cuda *ctx, attn_out out, float *lse, const uint16_t *q, const uint16_t *k,
                           const uint16_t *v, const int32_t *start, int B, int T, int H, int KVH, int hd, vet_err *err);
int attention_pipe_backward(vet_cuda *ctx, float *dq, float *dk, float *dv, const uint16_t *dout, const uint16_t *q,
                            const uint16_t *k, const uint16_t *v, const float *lse, const float *Dl,
                            const int32_t *start, const int32_t *end, int B, int T, int H, int KVH, int hd,
                            int accumulate, vet_err *err);

#endif
