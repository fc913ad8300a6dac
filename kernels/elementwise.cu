// elementwise.cu — the ops that touch each element once: bf16 conversion, embedding,
// SwiGLU, residual add/scale, AdamW. One thread per element, grid-stride loops; the ones a
// 16-bit training step runs on every layer (the conversion to bf16, SwiGLU on 16-bit gate and
// up, the residual add) take 8 elements a thread in 16-byte accesses where the pointers allow
// (wide_io.cuh), the same function on each element either way.
#include "common.cuh"
#include "wide_io.cuh"

#define THREADS 256

static int blocks_for(size_t n) { return grid_blocks(n, THREADS); }

// Whether a pass over these buffers (any may be NULL) can take 8 elements a thread (wide_io.cuh),
// and the blocks it needs then: a thread for each group of 8 or each element of the tail.
static bool wide_ok(const void *a, const void *b, const void *c, const void *d, const void *e) {
    const void *p[5] = {a, b, c, d, e};
    for (int i = 0; i < 5; i++)
        if (p[i] && !aligned16(p[i])) return false;
    return true;
}
static int wide_blocks(size_t n, bool vec) { return blocks_for(wide_threads(n, vec)); }

extern "C" void elementwise_wide(int on) { vet_wide_io = on != 0; }

// --- bf16 <-> fp32 ------------------------------------------------------------------------------
__global__ void f32_to_bf16_kernel(__nv_bfloat16 *out, const float *inp, size_t n, bool vec) {
    WIDE_GROUPS(q, n, vec) {
        float v[8];
        load8(v, inp + 8 * q);
        store8_16((uint16_t *)out + 8 * q, v, VET_CUDA_BF16);  // __float2bfloat16_rn, as below
    }
    WIDE_TAIL(i, n, vec) out[i] = __float2bfloat16_rn(inp[i]);  // nearest even, nan stays nan
}
__global__ void bf16_to_f32_kernel(float *out, const __nv_bfloat16 *inp, size_t n) {
    GRID_STRIDE(i, n) out[i] = __bfloat162float(inp[i]);  // exact
}

extern "C" int f32_to_bf16_cuda(vet_cuda *ctx, uint16_t *out, const float *inp, size_t n,
                                vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n == 0) return 0;
    const bool vec = aligned16(out) && aligned16(inp);
    LAUNCH(f32_to_bf16_kernel, wide_blocks(n, vec), THREADS, 0, ctx->stream, (__nv_bfloat16 *)out, inp, n, vec);
    LAUNCH_CHECK("f32_to_bf16", err);
    return 0;
}
extern "C" int bf16_to_f32_cuda(vet_cuda *ctx, float *out, const uint16_t *inp, size_t n,
                                vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n == 0) return 0;
    LAUNCH(bf16_to_f32_kernel, blocks_for(n), THREADS, 0, ctx->stream, out, (const __nv_bfloat16 *)inp, n);
    LAUNCH_CHECK("bf16_to_f32", err);
    return 0;
}

// --- embedding ------------------------------------------------------------------------------------
// out (N,C) = embed[tokens[n]] (V,C); element i of out is column i % C of row i / C.
template <typename T>
__global__ void embedding_forward_kernel(float *out, const int32_t *tokens, const T *embed, int N,
                                         int C) {
    size_t total = (size_t)N * C;
    GRID_STRIDE(i, total) {
        size_t n = i / C, c = i % C;
        out[i] = (float)embed[(size_t)tokens[n] * C + c];
    }
}

// One thread per column c walks the positions in order, exactly like the CPU loop: two
// positions with the same token add into one row without atomics, and the sum has the CPU's
// order, so the result is bit-identical. (Parallel over C only; fine for an op that runs once
// per step, and only in full fine-tuning.)
__global__ void embedding_backward_kernel(float *dembed, const float *dout, const int32_t *tokens,
                                          int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    for (int n = 0; n < N; n++) dembed[(size_t)tokens[n] * C + c] += dout[(size_t)n * C + c];
}

extern "C" int embedding_forward_cuda(vet_cuda *ctx, float *out, const int32_t *tokens,
                                      const float *embed, int N, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || C <= 0) return 0;
    LAUNCH(embedding_forward_kernel<float>, blocks_for((size_t)N * C), THREADS, 0, ctx->stream, out, tokens, embed, N,
           C);
    LAUNCH_CHECK("embedding_forward", err);
    return 0;
}

extern "C" int embedding_forward_bf16_cuda(vet_cuda *ctx, float *out, const int32_t *tokens,
                                           const uint16_t *embed, int N, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || C <= 0) return 0;
    LAUNCH(embedding_forward_kernel<__nv_bfloat16>, blocks_for((size_t)N * C), THREADS, 0, ctx->stream, out, tokens,
           (const __nv_bfloat16 *)embed, N, C);
    LAUNCH_CHECK("embedding_forward_bf16", err);
    return 0;
}

extern "C" int embedding_backward_cuda(vet_cuda *ctx, float *dembed, const float *dout,
                                       const int32_t *tokens, int N, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || C <= 0) return 0;
    LAUNCH(embedding_backward_kernel, ceil_div(C, THREADS), THREADS, 0, ctx->stream, dembed, dout,
           tokens, N, C);
    LAUNCH_CHECK("embedding_backward", err);
    return 0;
}

// --- SwiGLU -----------------------------------------------------------------------------------------
__global__ void swiglu_forward_kernel(float *out, const float *gate, const float *up, size_t n) {
    GRID_STRIDE(i, n) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];  // silu(g) * up
    }
}

// The gradients written (=), not added: the trainer needs no zeroing pass first.
__global__ void swiglu_backward_kernel(float *dgate, float *dup, const float *dout,
                                       const float *gate, const float *up, size_t n) {
    GRID_STRIDE(i, n) {
        float g = gate[i], s = 1.0f / (1.0f + expf(-g));
        float du = dout[i] * (g * s), dg = dout[i] * up[i] * (s * (1.0f + g * (1.0f - s)));  // d silu/dg
        dup[i] = du, dgate[i] = dg;
    }
}

// One element of SwiGLU's backward: the gradients at gate (dg) and up (du) from dout d and the
// values g, u.
__device__ __forceinline__ void swiglu_grads(float d, float g, float u, float *dg, float *du) {
    float s = 1.0f / (1.0f + expf(-g));
    *du = d * (g * s), *dg = d * u * (s * (1.0f + g * (1.0f - s)));
}
// The same gradients rounded to fmt and written in 16 bits (what f32_to_bf16 / f32_to_f16 of
// swiglu_backward_kernel's outputs give): for douts that only 16-bit GEMMs read.
template <typename T>
__global__ void swiglu_backward_half_kernel(uint16_t *dgate, uint16_t *dup, int fmt, const float *dout,
                                            const T *gate, const T *up, size_t n, bool vec) {
    WIDE_GROUPS(q, n, vec) {
        float d[8], g[8], u[8], dg[8], du[8];
        load8(d, dout + 8 * q), load8(g, gate + 8 * q), load8(u, up + 8 * q);
#pragma unroll
        for (int k = 0; k < 8; k++) swiglu_grads(d[k], g[k], u[k], &dg[k], &du[k]);
        store8_16(dup + 8 * q, du, fmt), store8_16(dgate + 8 * q, dg, fmt);
    }
    WIDE_TAIL(i, n, vec) {
        float dg, du;
        swiglu_grads(dout[i], to_f32(gate[i]), to_f32(up[i]), &dg, &du);
        dup[i] = round_to16(du, fmt), dgate[i] = round_to16(dg, fmt);
    }
}

// silu(gate) * up into out (may be NULL) and out16 (may be NULL) in one pass.
__device__ __forceinline__ float swiglu_value(float g, float u) { return g / (1.0f + expf(-g)) * u; }
template <typename T>
__global__ void swiglu_forward_half_kernel(float *out, uint16_t *out16, int fmt, const T *gate, const T *up,
                                           size_t n, bool vec) {
    WIDE_GROUPS(q, n, vec) {
        float g[8], u[8], y[8];
        load8(g, gate + 8 * q), load8(u, up + 8 * q);
#pragma unroll
        for (int k = 0; k < 8; k++) y[k] = swiglu_value(g[k], u[k]);
        if (out) store8(out + 8 * q, y);
        if (out16) store8_16(out16 + 8 * q, y, fmt);
    }
    WIDE_TAIL(i, n, vec) {
        float y = swiglu_value(to_f32(gate[i]), to_f32(up[i]));
        if (out) out[i] = y;
        if (out16) out16[i] = round_to16(y, fmt);
    }
}

extern "C" int swiglu_forward_cuda(vet_cuda *ctx, float *out, const float *gate, const float *up,
                                   size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n == 0) return 0;
    LAUNCH(swiglu_forward_kernel, blocks_for(n), THREADS, 0, ctx->stream, out, gate, up, n);
    LAUNCH_CHECK("swiglu_forward", err);
    return 0;
}

extern "C" int swiglu_backward_set_cuda(vet_cuda *ctx, float *dgate, float *dup, const float *dout,
                                        const float *gate, const float *up, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n == 0) return 0;
    LAUNCH(swiglu_backward_kernel, blocks_for(n), THREADS, 0, ctx->stream, dgate, dup, dout, gate, up, n);
    LAUNCH_CHECK("swiglu_backward_set", err);
    return 0;
}

extern "C" int swiglu_backward_half_cuda(vet_cuda *ctx, uint16_t *dgate, uint16_t *dup, int fmt, const float *dout,
                                         const float *gate, const float *up, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (vet_cuda_check_fmt16(fmt, "swiglu_backward_half", err) < 0) return -1;
    if (n == 0) return 0;
    const bool vec = wide_ok(dgate, dup, dout, gate, up);
    LAUNCH(swiglu_backward_half_kernel<float>, wide_blocks(n, vec), THREADS, 0, ctx->stream, dgate, dup, fmt, dout,
           gate, up, n, vec);
    LAUNCH_CHECK("swiglu_backward_half", err);
    return 0;
}

extern "C" int swiglu_backward_in16_cuda(vet_cuda *ctx, uint16_t *dgate, uint16_t *dup, int fmt, const float *dout,
                                         const uint16_t *gate, const uint16_t *up, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (vet_cuda_check_fmt16(fmt, "swiglu_backward_in16", err) < 0) return -1;
    if (n == 0) return 0;
    const bool vec = wide_ok(dgate, dup, dout, gate, up);
    if (fmt == VET_CUDA_F16)
        LAUNCH(swiglu_backward_half_kernel<__half>, wide_blocks(n, vec), THREADS, 0, ctx->stream, dgate, dup, fmt,
               dout, (const __half *)gate, (const __half *)up, n, vec);
    else
        LAUNCH(swiglu_backward_half_kernel<__nv_bfloat16>, wide_blocks(n, vec), THREADS, 0, ctx->stream, dgate, dup,
               fmt, dout, (const __nv_bfloat16 *)gate, (const __nv_bfloat16 *)up, n, vec);
    LAUNCH_CHECK("swiglu_backward_in16", err);
    return 0;
}

extern "C" int swiglu_forward_in16_cuda(vet_cuda *ctx, float *out, uint16_t *out16, int fmt, const uint16_t *gate,
                                        const uint16_t *up, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (vet_cuda_check_fmt16(fmt, "swiglu_forward_in16", err) < 0) return -1;
    if (n == 0) return 0;
    const bool vec = wide_ok(out, out16, gate, up, NULL);
    if (fmt == VET_CUDA_F16)
        LAUNCH(swiglu_forward_half_kernel<__half>, wide_blocks(n, vec), THREADS, 0, ctx->stream, out, out16, fmt,
               (const __half *)gate, (const __half *)up, n, vec);
    else
        LAUNCH(swiglu_forward_half_kernel<__nv_bfloat16>, wide_blocks(n, vec), THREADS, 0, ctx->stream, out, out16,
               fmt, (const __nv_bfloat16 *)gate, (const __nv_bfloat16 *)up, n, vec);
    LAUNCH_CHECK("swiglu_forward_in16", err);
    return 0;
}

extern "C" int swiglu_forward_half_cuda(vet_cuda *ctx, float *out, uint16_t *out16, int fmt, const float *gate,
                                        const float *up, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n == 0) return 0;
    const bool vec = wide_ok(out, out16, gate, up, NULL);
    LAUNCH(swiglu_forward_half_kernel<float>, wide_blocks(n, vec), THREADS, 0, ctx->stream, out, out16, fmt, gate, up,
           n, vec);
    LAUNCH_CHECK("swiglu_forward_half", err);
    return 0;
}

// --- residual -------------------------------------------------------------------------------------
__global__ void add_inplace_kernel(float *x, const float *y, size_t n, bool vec) {
    WIDE_GROUPS(q, n, vec) {
        float a[8], b[8];
        load8(a, x + 8 * q), load8(b, y + 8 * q);
#pragma unroll
        for (int k = 0; k < 8; k++) a[k] += b[k];
        store8(x + 8 * q, a);
    }
    WIDE_TAIL(i, n, vec) x[i] += y[i];
}
__global__ void scale_inplace_kernel(float *x, float s, size_t n) {
    GRID_STRIDE(i, n) x[i] *= s;
}

extern "C" int add_inplace_cuda(vet_cuda *ctx, float *x, const float *y, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n == 0) return 0;
    const bool vec = aligned16(x) && aligned16(y);
    LAUNCH(add_inplace_kernel, wide_blocks(n, vec), THREADS, 0, ctx->stream, x, y, n, vec);
    LAUNCH_CHECK("add_inplace", err);
    return 0;
}
extern "C" int scale_inplace_cuda(vet_cuda *ctx, float *x, float s, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n == 0) return 0;
    LAUNCH(scale_inplace_kernel, blocks_for(n), THREADS, 0, ctx->stream, x, s, n);
    LAUNCH_CHECK("scale_inplace", err);
    return 0;
}

// --- AdamW --------------------------------------------------------------------------------------------
// The CPU's adamw_update operation by operation. The _rn intrinsics are never fused into FMAs
// by nvcc (plain a*b+c would be), and the CPU build does not contract either (-std=c11), so
// every rounding happens at the same place and the update is bit-identical to the CPU's.
__global__ void adamw_kernel(float *p, const float *g, float gscale, float *m, float *v, size_t n,
                             float decay, float beta2, float w1, float w2, float step_size,
                             float bc2_sqrt, float eps) {
    GRID_STRIDE(i, n) {
        float gi = __fmul_rn(g[i], gscale), mi0 = m[i];
        float pi = __fmul_rn(p[i], decay);
        // torch.lerp: m + w*(g-m) for w < 0.5, else g - (g-m)*(1-w)
        float mi = w1 < 0.5f ? __fadd_rn(mi0, __fmul_rn(w1, __fsub_rn(gi, mi0)))
                             : __fsub_rn(gi, __fmul_rn(__fsub_rn(gi, mi0), __fsub_rn(1.0f, w1)));
        float vi = __fadd_rn(__fmul_rn(v[i], beta2), __fmul_rn(__fmul_rn(w2, gi), gi));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
        p[i] = __fadd_rn(pi, __fdiv_rn(__fmul_rn(-step_size, mi), denom));
        m[i] = mi;
        v[i] = vi;
    }
}

extern "C" int adamw_update_cuda(vet_cuda *ctx, float *p, const float *g, float gscale, float *m,
                                 float *v, size_t n, float lr, float beta1, float beta2, float eps,
                                 float wd, int step, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (step < 1) return vet_errf(err, "%s:%d: adamw step %d (steps count from 1)", __FILE__, __LINE__, step);
    if (n == 0) return 0;
    // Scalars exactly as lib/model/ops_cpu.c derives them (bias corrections in double).
    double bc1 = 1.0 - pow((double)beta1, step), bc2 = 1.0 - pow((double)beta2, step);
    float decay = (float)(1.0 - (double)lr * wd);
    float w1 = (float)(1.0 - (double)beta1), w2 = (float)(1.0 - (double)beta2);
    float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    LAUNCH(adamw_kernel, blocks_for(n), THREADS, 0, ctx->stream, p, g, gscale, m, v, n, decay, beta2,
           w1, w2, step_size, bc2_sqrt, eps);
    LAUNCH_CHECK("adamw_update", err);
    return 0;
}
