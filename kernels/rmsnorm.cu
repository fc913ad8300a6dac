// rmsnorm.cu — HF LlamaRMSNorm in fp32: y = w * (x * rstd), rstd = 1/sqrt(mean(x^2) + eps).
//
// Sums of squares and the backward dot are accumulated in double like the CPU version, so
// the two agree to the last bit or nearly (only the order of the double sum differs).
#include "common.cuh"
#include "wide_io.cuh"

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

// The forward fused with what surrounds it (one block per row, the same sums: the same values):
// RES: x += res first (the residual add, written back); out (may be NULL) and out16 (may be
// NULL: the GEMM input in 16 bits, without a separate conversion pass). WIDE: C a multiple of 8
// and every row 16-byte aligned (the host checks), so a thread takes 8 columns at a time in
// 16-byte accesses (wide_io.cuh); the double sum then adds the squares in another order, which
// moves it by ~1e-16 relative, far below the float it is rounded to.
template <bool RES, bool WIDE>
__global__ void rmsnorm_fused_kernel(float *out, uint16_t *out16, int fmt, float *rstd, float *x_io,
                                     const float *res, const float *weight, int C, float eps) {
    __shared__ double partial[32];
    const size_t row = (size_t)blockIdx.x * C;
    float *x = x_io + row;
    double ss = 0;
    if (WIDE) {
        for (int c = 8 * threadIdx.x; c < C; c += 8 * blockDim.x) {
            float v[8];
            load8(v, x + c);
            if (RES) {
                float rv[8];
                load8(rv, res + row + c);
#pragma unroll
                for (int k = 0; k < 8; k++) v[k] = v[k] + rv[k];
                store8(x + c, v);
            }
#pragma unroll
            for (int k = 0; k < 8; k++) ss += (double)v[k] * v[k];
        }
    } else {
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            float v = x[c];
            if (RES) x[c] = v = v + res[row + c];
            ss += (double)v * v;
        }
    }
    ss = block_sum(ss, partial);  // its barriers order this thread's writes of x before the reads
    float r = 1.0f / sqrtf((float)(ss / C) + eps);
    if (WIDE) {
        for (int c = 8 * threadIdx.x; c < C; c += 8 * blockDim.x) {
            float v[8], w[8], y[8];
            load8(v, x + c), load8(w, weight + c);
#pragma unroll
            for (int k = 0; k < 8; k++) y[k] = w[k] * (v[k] * r);
            if (out) store8(out + row + c, y);
            if (out16) store8_16(out16 + row + c, y, fmt);
        }
    } else {
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            float y = weight[c] * (x[c] * r);
            if (out) out[row + c] = y;
            if (out16) out16[row + c] = round_to16(y, fmt);
        }
    }
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

// Whether a row kernel over (N, C) rows at these pointers (any may be NULL; weight is one row)
// can take 8 columns at a time: C a multiple of 8 and each pointer 16-byte aligned, so that every
// row of fp32 (4C bytes) and of 16 bits (2C) starts aligned too.
static bool rows_wide(int C, const void *a, const void *b, const void *c, const void *d, const void *e) {
    if (C % 8) return false;
    const void *p[5] = {a, b, c, d, e};
    for (int i = 0; i < 5; i++)
        if (p[i] && !aligned16(p[i])) return false;
    return true;
}

// dx = r * w*dy - r^3/C * x * sum(w*dy*x), one block per row; dx accumulates (+=). WIDE: as
// rmsnorm_fused_kernel's (another order of the double sum; each dx element the same expression).
__device__ __forceinline__ float rmsnorm_dx(float dx, float r, float w, float dy, float k, float x) {
    return dx + (r * w * dy - k * x);
}
template <bool WIDE>
__global__ void rmsnorm_backward_dinp_kernel(float *dinp, const float *dout, const float *inp,
                                             const float *weight, const float *rstd, int C) {
    __shared__ double partial[32];
    size_t row = (size_t)blockIdx.x * C;
    const float *x = inp + row, *dy = dout + row;
    float *dx = dinp + row;
    float r = rstd[blockIdx.x];
    double dot = 0;
    if (WIDE) {
        for (int c = 8 * threadIdx.x; c < C; c += 8 * blockDim.x) {
            float w[8], d[8], v[8];
            load8(w, weight + c), load8(d, dy + c), load8(v, x + c);
#pragma unroll
            for (int j = 0; j < 8; j++) dot += (double)w[j] * d[j] * v[j];
        }
    } else {
        for (int c = threadIdx.x; c < C; c += blockDim.x) dot += (double)weight[c] * dy[c] * x[c];
    }
    dot = block_sum(dot, partial);
    float k = (float)(dot * r * r * r / C);
    if (WIDE) {
        for (int c = 8 * threadIdx.x; c < C; c += 8 * blockDim.x) {
            float o[8], w[8], d[8], v[8];
            load8(o, dx + c), load8(w, weight + c), load8(d, dy + c), load8(v, x + c);
#pragma unroll
            for (int j = 0; j < 8; j++) o[j] = rmsnorm_dx(o[j], r, w[j], d[j], k, v[j]);
            store8(dx + c, o);
        }
    } else {
        for (int c = threadIdx.x; c < C; c += blockDim.x) dx[c] = rmsnorm_dx(dx[c], r, weight[c], dy[c], k, x[c]);
    }
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
    const bool wide = rows_wide(C, out, out16, x, res, weight);
    if (res && wide)
        LAUNCH((rmsnorm_fused_kernel<true, true>), N, THREADS, 0, ctx->stream, out, out16, fmt, rstd, x, res, weight,
               C, eps);
    else if (res)
        LAUNCH((rmsnorm_fused_kernel<true, false>), N, THREADS, 0, ctx->stream, out, out16, fmt, rstd, x, res, weight,
               C, eps);
    else if (wide)
        LAUNCH((rmsnorm_fused_kernel<false, true>), N, THREADS, 0, ctx->stream, out, out16, fmt, rstd, x, NULL,
               weight, C, eps);
    else
        LAUNCH((rmsnorm_fused_kernel<false, false>), N, THREADS, 0, ctx->stream, out, out16, fmt, rstd, x, NULL,
               weight, C, eps);
    LAUNCH_CHECK("rmsnorm_forward_fused", err);
    return 0;
}

extern "C" int rmsnorm_backward_cuda(vet_cuda *ctx, float *dinp, float *dweight, const float *dout,
                                     const float *inp, const float *weight, const float *rstd,
                                     int N, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || C <= 0) return 0;
    if (dinp) {
        if (rows_wide(C, dinp, dout, inp, weight, NULL))
            LAUNCH(rmsnorm_backward_dinp_kernel<true>, N, THREADS, 0, ctx->stream, dinp, dout, inp, weight, rstd, C);
        else
            LAUNCH(rmsnorm_backward_dinp_kernel<false>, N, THREADS, 0, ctx->stream, dinp, dout, inp, weight, rstd, C);
        LAUNCH_CHECK("rmsnorm_backward (dinp)", err);
    }
    if (dweight) {
        LAUNCH(rmsnorm_backward_dweight_kernel, ceil_div(C, THREADS), THREADS, 0, ctx->stream, dweight, dout, inp, rstd,
               N, C);
        LAUNCH_CHECK("rmsnorm_backward (dweight)", err);
    }
    return 0;
}
