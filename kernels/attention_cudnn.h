// attention_cudnn.h — what kernels/attention_cudnn.cc (cuDNN's fused attention through its
// frontend) needs of kernels/attention_cudnn_passes.cu (vet's own small kernels around it). Kept
// apart so that the passes build without cuDNN's headers and run on the CPU emulator
// (tests/unit/test_attention_cudnn_emu.cc).
#ifndef VET_ATTENTION_CUDNN_H
#define VET_ATTENTION_CUDNN_H

#include <stddef.h>
#include <stdint.h>

#include "ops_cuda.h"  // vet_cuda, and base/err.h with its C names

#ifdef __cplusplus
extern "C" {
#endif

// The score a key no query may see gets from the mask: far below any real score (|q.k|/sqrt(hd)
// stays in the tens), so its probability underflows to exactly 0 in fp32; finite, so a row that
// sees nothing cannot make a NaN, and representable in bf16 and fp16 alike.
#define VET_CUDNN_MASKED (-30000.0f)

// bias (B,1,T,T) in bf16, cuDNN's additive mask for packed rows: 0 where query i may see key j
// (j in i's sample, start[b,i] <= j <= i; a padding position, start -1, sees itself only, so no
// row is empty), VET_CUDNN_MASKED elsewhere. start (B,T): each position's sample start, as
// attention_prepare's scratch holds it.
int attention_cudnn_bias(vet_cuda *ctx, uint16_t *bias, const int32_t *start, int B, int T, vet_err *err);

// dst (rows, w) fp32 from src (rows, w) 16-bit (bf16): written (accumulate 0) or added to
// (accumulate 1), the widened values, exactly; a padding row (start[r] < 0) gets 0 (or keeps its
// value when adding): what vet's own kernels give padding.
int attention_cudnn_widen(vet_cuda *ctx, float *dst, const uint16_t *src, const int32_t *start, size_t rows, int w,
                          int accumulate, vet_err *err);

// The padding rows (start[r] < 0) of x (rows, w), 16-bit, set to 0 in place.
int attention_cudnn_zero_padding16(vet_cuda *ctx, uint16_t *x, const int32_t *start, size_t rows, int w,
                                   vet_err *err);

// cuDNN's fused attention (attention_cudnn.cc) on the packed rows of attention_forward_bf16_cuda
// / _backward_bf16_cuda, which call these for their variant 5 (VET_GPU_ATTENTION=cudnn) once
// attention_prepare has put each position's sample start in start (B,T). q (B,T,H,hd), k, v
// (B,T,KVH,hd) bf16; the output to out32 (fp32, widened from cuDNN's bf16) or out16; lse
// (B*T*H floats) holds cuDNN's own statistics (its layout, (B,H,T)), which only
// attention_backward_cudnn reads. The backward reads the output in bf16 (out16, or out32 rounded)
// and dout16, and writes or adds (accumulate) fp32 dq, dk, dv; padding rows 0 in every output.
// cuDNN is loaded on first use (dlopen of libcudnn.so.MAJOR, as cuBLAS in cublas.cu): without it,
// or in a build without cuDNN's frontend headers (mk/cudnn_frontend.sh), each returns -1 saying
// why. Not deterministic: cuDNN's backward with a bias mask has no deterministic algorithm.
int attention_forward_cudnn(vet_cuda *ctx, float *out32, uint16_t *out16, float *lse, const uint16_t *q,
                            const uint16_t *k, const uint16_t *v, const int32_t *start, int B, int T, int H, int KVH,
                            int hd, vet_err *err);
int attention_backward_cudnn(vet_cuda *ctx, float *dq, float *dk, float *dv, const uint16_t *dout16,
                             const uint16_t *q, const uint16_t *k, const uint16_t *v, const float *out32,
                             const uint16_t *out16, const float *lse, const int32_t *start, int B, int T, int H,
                             int KVH, int hd, int accumulate, vet_err *err);

#ifdef __cplusplus
}
#endif

#endif
