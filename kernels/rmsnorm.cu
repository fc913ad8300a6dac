// rmsnorm.cu — HF LlamaRMSNorm in fp32: y = w * (x * rstd), rstd = 1/sqrt(mean(x^2) + eps).
//
// Sums of squares and the backward dot are accumulated in double like the CPU version, so
// the two agree to the last bit or nearly (only the order of the double sum differs).
#include "common.cuh"

#define THREADS 256

// One block per row n.  inp, out (N,C), weight (C), rstd (N)
__global__ void rmsnorm_forward_kernel(float *out, float *rstd, const float *inp,
                                       const float *weight, int C, float eps) {
    __shared__ double partial[32];
    const float *x = inp + (size_t)blockIdx.x * C;
    float *y = out + (size_t)blockIdx.x * C;
    double ss = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) ss += (double)x[c] * x[c];
    ss = block_sum(ss, partial);
    float r = 1.0f / sqrtf((float)(ss / C) + eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x) y[c] = weight[c] * (x[c] * r);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

// The forward fused with what surrounds it (one block per row, the same sums, so the same bits):
// RES: x += res first (the residual add, written back); out (may be NULL) and out16 (may be
// NULL: the GEMM input in 16 bits, without a separate conversion pass).
template <bool RES>
__global__ void rmsnorm_fused_kernel(float *out, uint16_t *out16, int fmt, float *rstd, float *x_io,
                                     const float *res, const float *weight, int C, float eps) {
    __shared__ double partial[32];
    const size_t row = (size_t)blockIdx.x * C;
    float *x = x_io + row;
    double ss = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = x[c];
        if (RES) x[c] = v = v + res[row + c];
        ss += (double)v * v;
    }
    ss = block_sum(ss, partial);  // its barriers order this thread's writes of x before the reads
    float r = 1.0f / sqrtf((float)(ss / C) + eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float y = weight[c] * (x[c] * r);
        if (out) out[row + c] = y;
        if (out16) out16[row + c] = round_to16(y, fmt);
    }
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

// dx = r * w*dy - r^3/C * x * sum(w*dy*x), one block per row; dx accumulates (+=).
__global__ void rmsnorm_backward_dinp_kernel(float *dinp, const float *dout, const float *inp,
                                             const float *weight, const float *rstd, int C) {
    __shared__ double partial[32];
    size_t row = (size_t)blockIdx.x * C;
    const float *x = inp + row, *dy = dout + row;
    float *dx = dinp + row;
    float r = rstd[blockIdx.x];
    double dot = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dot += (double)weight[c] * dy[c] * x[c];
    dot = block_sum(dot, partial);
    float k = (float)(dot * r * r * r / C);
    for (int c = threadIdx.x; c < C; c += blockDim.x) dx[c] += r * weight[c] * dy[c] - k * x[c];
}

// dw[c] += sum_n dy*x*r: one thread per column walking the rows in order (coalesced across
// the warp, deterministic, the CPU's summation order).
__global__ void rmsnorm_backward_dweight_kernel(float *dweight, const float *dout, const float *inp,
                                                const float *rstd, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double acc = 0;
    for (int n = 0; n < N; n++) {
        size_t i = (size_t)n * C + c;
        acc += (double)(dout[i] * inp[i] * rstd[n]);
    }
    dweight[c] += (float)acc;
}

extern "C" int rmsnorm_forward_cuda(vet_cuda *ctx, float *out, float *rstd, const float *inp,
                                    const float *weight, int N, int C, float eps, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || C <= 0) return 0;
    LAUNCH(rmsnorm_forward_kernel, N, THREADS, 0, ctx->stream, out, rstd, inp, weight, C, eps);
    LAUNCH_CHECK("rmsnorm_forward", err);
    return 0;
}

extern "C" int rmsnorm_forward_fused_cuda(vet_cuda *ctx, float *out, uint16_t *out16, int fmt, float *rstd,
                                          float *x, const float *res, const float *weight, int N, int C,
                                          float eps, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || C <= 0) return 0;
    if (res)
        LAUNCH(rmsnorm_fused_kernel<true>, N, THREADS, 0, ctx->stream, out, out16, fmt, rstd, x, res, weight, C, eps);
    else
        LAUNCH(rmsnorm_fused_kernel<false>, N, THREADS, 0, ctx->stream, out, out16, fmt, rstd, x, NULL, weight, C, eps);
    LAUNCH_CHECK("rmsnorm_forward_fused", err);
    return 0;
}

extern "C" int rmsnorm_backward_cuda(vet_cuda *ctx, float *dinp, float *dweight, const float *dout,
                                     const float *inp, const float *weight, const float *rstd,
                                     int N, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || C <= 0) return 0;
    if (dinp) {
        LAUNCH(rmsnorm_backward_dinp_kernel, N, THREADS, 0, ctx->stream, dinp, dout, inp, weight, rstd, C);
        LAUNCH_CHECK("rmsnorm_backward (dinp)", err);
    }
    if (dweight) {
        LAUNCH(rmsnorm_backward_dweight_kernel, ceil_div(C, THREADS), THREADS, 0, ctx->stream, dweight, dout, inp, rstd,
               N, C);
        LAUNCH_CHECK("rmsnorm_backward (dweight)", err);
    }
    return 0;
}
