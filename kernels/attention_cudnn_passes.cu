// attention_cudnn_passes.cu — vet's kernels around cuDNN's fused attention (attention_cudnn.cc):
// the mask that turns cuDNN's one causal sequence a row into packed rows of several samples, and
// the passes that give its 16-bit results vet's conventions (fp32 gradients, written or added;
// padding rows 0). No cuDNN here: they build everywhere and run on the CPU emulator
// (tests/unit/test_attention_cudnn_emu.cc).
#include "common.cuh"

#include "attention_cudnn.h"

#define PASS_THREADS 256

// One block a query row (b, i); its threads walk the row's T keys. The bias is B*T*T bf16 values
// (2 MB at 4 x 512): written once a call, it costs what one small element-wise pass costs.
__global__ void attention_cudnn_bias_kernel(__nv_bfloat16 *bias, const int32_t *start, int T) {
    const int i = blockIdx.x, b = blockIdx.y;
    const int s = start[(size_t)b * T + i];
    __nv_bfloat16 *row = bias + ((size_t)b * T + i) * T;
    const __nv_bfloat16 seen = __float2bfloat16_rn(0.0f), hidden = __float2bfloat16_rn(VET_CUDNN_MASKED);
    for (int j = threadIdx.x; j < T; j += blockDim.x) row[j] = (s >= 0 && j >= s && j <= i) || j == i ? seen : hidden;
}

__global__ void attention_cudnn_widen_kernel(float *dst, const __nv_bfloat16 *src, const int32_t *start, size_t n,
                                             int w, int accumulate) {
    GRID_STRIDE(e, n) {
        const bool pad = start[e / w] < 0;
        const float v = pad ? 0.0f : __bfloat162float(src[e]);
        dst[e] = accumulate ? dst[e] + v : v;
    }
}

__global__ void attention_cudnn_zero_padding_kernel(uint16_t *x, const int32_t *start, size_t n, int w) {
    GRID_STRIDE(e, n) {
        if (start[e / w] < 0) x[e] = 0;
    }
}

extern "C" int attention_cudnn_bias(vet_cuda *ctx, uint16_t *bias, const int32_t *start, int B, int T,
                                    vet_err *err) {
    CHECK_CTX(ctx, err);
    if (B <= 0 || T <= 0) return 0;
    LAUNCH(attention_cudnn_bias_kernel, dim3(T, B), PASS_THREADS, 0, ctx->stream, (__nv_bfloat16 *)bias, start, T);
    LAUNCH_CHECK("attention_cudnn_bias", err);
    return 0;
}

extern "C" int attention_cudnn_widen(vet_cuda *ctx, float *dst, const uint16_t *src, const int32_t *start,
                                     size_t rows, int w, int accumulate, vet_err *err) {
    CHECK_CTX(ctx, err);
    const size_t n = rows * (size_t)w;
    if (n == 0) return 0;
    LAUNCH(attention_cudnn_widen_kernel, grid_blocks(n, PASS_THREADS), PASS_THREADS, 0, ctx->stream, dst,
           (const __nv_bfloat16 *)src, start, n, w, accumulate);
    LAUNCH_CHECK("attention_cudnn_widen", err);
    return 0;
}

extern "C" int attention_cudnn_zero_padding16(vet_cuda *ctx, uint16_t *x, const int32_t *start, size_t rows, int w,
                                              vet_err *err) {
    CHECK_CTX(ctx, err);
    const size_t n = rows * (size_t)w;
    if (n == 0) return 0;
    LAUNCH(attention_cudnn_zero_padding_kernel, grid_blocks(n, PASS_THREADS), PASS_THREADS, 0, ctx->stream, x, start,
           n, w);
    LAUNCH_CHECK("attention_cudnn_zero_padding16", err);
    return 0;
}
