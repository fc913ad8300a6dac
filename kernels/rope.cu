// rope.cu — rotary position embedding, HF rotate_half layout: dimension i pairs with i + hd/2.
// The cos/sin tables (max_pos, hd/2) are made on the host by rope_tables (lib/model/ops_rope.c) and
// uploaded once, so the angles round exactly as the CPU's (and PyTorch's) do.
#include "common.cuh"

#define THREADS 256

// One thread per pair (n, head, i < hd/2) of x (N,nh,hd).
//   forward:  a' = a cos - b sin;  b' = b cos + a sin
//   backward: the transpose, da = da' cos + db' sin;  db = db' cos - da' sin
// out16 non-NULL: the result rounded to bf16 there, x left as it is; the same fp32 arithmetic
// as in place, so the bits are those of rounding the in-place result.
template <bool BACKWARD>
__global__ void rope_kernel(float *x, __nv_bfloat16 *out16, const int32_t *pos, const float *cos_t,
                            const float *sin_t, int N, int nh, int hd) {
    int half = hd / 2;
    size_t total = (size_t)N * nh * half;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t i = t % half, nhead = t / half;  // nhead = n * nh + head
        size_t n = nhead / nh;
        float c = cos_t[(size_t)pos[n] * half + i], s = sin_t[(size_t)pos[n] * half + i];
        float *v = x + nhead * hd;
        float a = v[i], b = v[i + half], ra, rb;
        if (!BACKWARD) {
            ra = a * c - b * s;
            rb = b * c + a * s;
        } else {
            ra = a * c + b * s;
            rb = b * c - a * s;
        }
        if (out16) {
            out16[nhead * hd + i] = __float2bfloat16_rn(ra);
            out16[nhead * hd + i + half] = __float2bfloat16_rn(rb);
        } else {
            v[i] = ra;
            v[i + half] = rb;
        }
    }
}

static int rope_launch(vet_cuda *ctx, bool backward, float *x, uint16_t *out16, const int32_t *pos,
                       const float *cos_t, const float *sin_t, int N, int nh, int hd, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (hd % 2) return vet_errf(err, "%s:%d: rope needs an even head_dim, not %d", __FILE__, __LINE__, hd);
    size_t total = (size_t)N * nh * (hd / 2);
    if (total == 0) return 0;
    size_t b = (total + THREADS - 1) / THREADS;
    int blocks = (int)(b < 65536 ? b : 65536);
    if (backward)
        LAUNCH((rope_kernel<true>), blocks, THREADS, 0, ctx->stream, x, (__nv_bfloat16 *)out16, pos, cos_t, sin_t, N,
               nh, hd);
    else
        LAUNCH((rope_kernel<false>), blocks, THREADS, 0, ctx->stream, x, (__nv_bfloat16 *)out16, pos, cos_t, sin_t, N,
                                                                  nh, hd);
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

extern "C" int rope_backward_cuda(vet_cuda *ctx, float *dx, const int32_t *pos, const float *cos_t,
                                  const float *sin_t, int N, int nh, int hd, vet_err *err) {
    return rope_launch(ctx, true, dx, nullptr, pos, cos_t, sin_t, N, nh, hd, err);
}
