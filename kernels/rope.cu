// rope.cu — rotary position embedding, HF rotate_half layout: dimension i pairs with i + hd/2.
// The cos/sin tables (max_pos, hd/2) are made on the host by rope_tables (lib/model/ops_rope.c) and
// uploaded once, so the angles round exactly as the CPU's (and PyTorch's) do.
#include "common.cuh"
#include "wide_io.cuh"

#define THREADS 256

// One thread per pair (n, head, i < hd/2) of x (N,nh,hd).
//   forward:  a' = a cos - b sin;  b' = b cos + a sin
//   backward: the transpose, da = da' cos + db' sin;  db = db' cos - da' sin
// out16 non-NULL: the result rounded to bf16 there, x left as it is; the same fp32 arithmetic
// as in place, so the bits are those of rounding the in-place result. x in bf16 (T): widened as
// it is read, out16 then x itself (rotated in place, rounded).
template <bool BACKWARD, typename T>
__global__ void rope_kernel(T *x, __nv_bfloat16 *out16, const int32_t *pos, const float *cos_t,
                            const float *sin_t, int N, int nh, int hd) {
    int half = hd / 2;
    size_t total = (size_t)N * nh * half;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t i = t % half, nhead = t / half;  // nhead = n * nh + head
        size_t n = nhead / nh;
        float c = cos_t[(size_t)pos[n] * half + i], s = sin_t[(size_t)pos[n] * half + i];
        T *v = x + nhead * hd;
        float a = to_f32(v[i]), b = to_f32(v[i + half]), ra, rb;
        if (!BACKWARD) {
            ra = a * c - b * s;
            rb = b * c + a * s;
        } else {
            ra = a * c + b * s;
            rb = b * c - a * s;
        }
        if constexpr (std::is_same<T, float>::value) {
            if (!out16) {
                v[i] = ra;
                v[i + half] = rb;
                continue;
            }
        }
        out16[nhead * hd + i] = __float2bfloat16_rn(ra);
        out16[nhead * hd + i + half] = __float2bfloat16_rn(rb);
    }
}

// The same four pairs at a time: thread t takes pairs 4q..4q+3 (q = t % (hd/8)) of head row
// t / (hd/8), a, b, cos and sin each one 16-byte load, the results one 16-byte store each (8
// bytes in bf16); 32-bit index arithmetic (the host checks that the quads fit). The same
// expressions per pair, so the same bits as rope_kernel. hd a multiple of 8, x, out16 and the
// tables 16-byte aligned (rope_launch checks).
template <bool BACKWARD, typename T>
__global__ void rope_wide_kernel(T *x, __nv_bfloat16 *out16, const int32_t *pos, const float *cos_t,
                                 const float *sin_t, unsigned quads, int nh, int hd) {
    const unsigned half = (unsigned)hd / 2, hq = half / 4;
    for (unsigned t = blockIdx.x * blockDim.x + threadIdx.x; t < quads; t += gridDim.x * blockDim.x) {
        const unsigned q = t % hq, nhead = t / hq, n = nhead / (unsigned)nh, i = 4 * q;
        const size_t tab = (size_t)pos[n] * half + i, at = (size_t)nhead * hd + i;
        const float4 c = *(const float4 *)(cos_t + tab), s = *(const float4 *)(sin_t + tab);
        const float cv[4] = {c.x, c.y, c.z, c.w}, sv[4] = {s.x, s.y, s.z, s.w};
        float av[4], bv[4], ra[4], rb[4];
        load4(av, x + at), load4(bv, x + at + half);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            if (!BACKWARD) {
                ra[k] = av[k] * cv[k] - bv[k] * sv[k];
                rb[k] = bv[k] * cv[k] + av[k] * sv[k];
            } else {
                ra[k] = av[k] * cv[k] + bv[k] * sv[k];
                rb[k] = bv[k] * cv[k] - av[k] * sv[k];
            }
        }
        if (std::is_same<T, __nv_bfloat16>::value || out16) {
            uint16_t *o = (uint16_t *)out16 + at;
            store4_16(o, ra, VET_CUDA_BF16), store4_16(o + half, rb, VET_CUDA_BF16);
        } else if constexpr (std::is_same<T, float>::value) {
            store4(x + at, ra), store4(x + at + half, rb);
        }
    }
}

// x fp32 (out16: NULL, in place; else the bf16 result there), or bf16 with out16 == x (in place).
template <typename T>
static int rope_launch(vet_cuda *ctx, bool backward, T *x, uint16_t *out16, const int32_t *pos,
                       const float *cos_t, const float *sin_t, int N, int nh, int hd, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (hd % 2) return vet_errf(err, "%s:%d: rope needs an even head_dim, not %d", __FILE__, __LINE__, hd);
    size_t total = (size_t)N * nh * (hd / 2);
    if (total == 0) return 0;
    // Four pairs a thread where the layout allows: every (head row, 4 pairs) 16-byte aligned in x,
    // out16 (8 bytes of it) and the tables, and a quad count that 32 bits index.
    const size_t quads = total / 4;
    if (hd % 8 == 0 && aligned16(x) && (!out16 || aligned16(out16)) && aligned16(cos_t) && aligned16(sin_t) &&
        quads < (1u << 31)) {
        const int blocks = grid_blocks(quads, THREADS);
        if (backward)
            LAUNCH((rope_wide_kernel<true, T>), blocks, THREADS, 0, ctx->stream, x, (__nv_bfloat16 *)out16, pos,
                   cos_t, sin_t, (unsigned)quads, nh, hd);
        else
            LAUNCH((rope_wide_kernel<false, T>), blocks, THREADS, 0, ctx->stream, x, (__nv_bfloat16 *)out16, pos,
                   cos_t, sin_t, (unsigned)quads, nh, hd);
        LAUNCH_CHECK(backward ? "rope_backward" : "rope_forward", err);
        return 0;
    }
    size_t b = (total + THREADS - 1) / THREADS;
    int blocks = (int)(b < 65536 ? b : 65536);
    if (backward)
        LAUNCH((rope_kernel<true, T>), blocks, THREADS, 0, ctx->stream, x, (__nv_bfloat16 *)out16, pos, cos_t, sin_t,
               N, nh, hd);
    else
        LAUNCH((rope_kernel<false, T>), blocks, THREADS, 0, ctx->stream, x, (__nv_bfloat16 *)out16, pos, cos_t, sin_t,
               N, nh, hd);
    LAUNCH_CHECK(backward ? "rope_backward" : "rope_forward", err);
    return 0;
}

extern "C" int rope_forward_cuda(vet_cuda *ctx, float *x, const int32_t *pos, const float *cos_t,
                                 const float *sin_t, int N, int nh, int hd, vet_err *err) {
    return rope_launch(ctx, false, x, nullptr, pos, cos_t, sin_t, N, nh, hd, err);
}

extern "C" int rope_forward_bf16_cuda(vet_cuda *ctx, uint16_t *out16, const float *x, const int32_t *pos,
                                      const float *cos_t, const float *sin_t, int N, int nh, int hd, vet_err *err) {
    return rope_launch(ctx, false, (float *)x, out16, pos, cos_t, sin_t, N, nh, hd, err);
}

extern "C" int rope_backward_bf16_cuda(vet_cuda *ctx, uint16_t *out16, const float *dx, const int32_t *pos,
                                       const float *cos_t, const float *sin_t, int N, int nh, int hd, vet_err *err) {
    return rope_launch(ctx, true, (float *)dx, out16, pos, cos_t, sin_t, N, nh, hd, err);
}

extern "C" int rope_forward_inplace_bf16_cuda(vet_cuda *ctx, uint16_t *x16, const int32_t *pos, const float *cos_t,
                                              const float *sin_t, int N, int nh, int hd, vet_err *err) {
    return rope_launch(ctx, false, (__nv_bfloat16 *)x16, x16, pos, cos_t, sin_t, N, nh, hd, err);
}

extern "C" int rope_backward_cuda(vet_cuda *ctx, float *dx, const int32_t *pos, const float *cos_t,
                                  const float *sin_t, int N, int nh, int hd, vet_err *err) {
    return rope_launch(ctx, true, dx, nullptr, pos, cos_t, sin_t, N, nh, hd, err);
}
