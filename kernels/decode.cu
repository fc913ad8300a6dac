// decode.cu — the two ops a decode step adds to the forward: writing the step's new keys and
// values into the slots' caches, and attention of one new query per row against its slot's
// cache (ops_cuda.h has the shapes). The prompt's pass (prefill) uses attention_forward_cuda.
//
// Cache layout, per layer: (n_slots, max_len, KVH, hd); slot s, position p is row
// s * max_len + p. A step's rows belong to distinct slots at their own positions.
//
// attention_decode: one block per (row i, head h), NWARPS warps. Warp w takes the keys
// j = w*KU + t*NWARPS*KU + (0..KU-1) of positions [0, pos[i]] and keeps an online softmax
// (running max m, sum l, output o); lane l owns output dimensions l, l+32, l+64, l+96 and
// the same slice of q, so a key's score is a warp sum of partial dot products (coalesced
// 128-byte loads of K and V rows). KU keys per iteration give the loads and shuffles some
// independent work. At the end the NWARPS partial results are merged in warp order through
// shared memory. Every (row, head) is computed alone in a fixed order: deterministic, and a
// row's result does not depend on which rows share the step.
//
// The cache's element type E is float, or a 16-bit format (bf16, IEEE fp16: the _16 ops): a
// write rounds each fp32 value to E once (nearest even), a read widens it exactly, and every
// dot product, softmax and weighted sum accumulates in fp32. A 16-bit cache halves the
// memory and the bytes each decode step reads; the kernels are the same templates.
#include <cuda_fp16.h>

#include "common.cuh"

#define MAXD 128          // largest head_dim (LLaMA, Qwen2: 128)
#define NPL (MAXD / 32)   // output dimensions per lane
#define NWARPS 4
#define KU 4              // keys per warp per iteration
#define THREADS 256

// Loads widen to fp32 (common.cuh's to_f32); stores round to nearest even (as vet_f32_to_bf16 /
// vet_f32_to_f16).
__device__ inline void st(float *p, float x) { *p = x; }
__device__ inline void st(__nv_bfloat16 *p, float x) { *p = __float2bfloat16_rn(x); }
__device__ inline void st(__half *p, float x) { *p = __float2half_rn(x); }

// --- cache write ----------------------------------------------------------------------------
template <typename E>
__global__ void kv_cache_write_kernel(E *cache, const float *rows, const int32_t *slots,
                                      const int32_t *pos, int n, int max_len, int KV) {
    size_t total = (size_t)n * KV;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        size_t i = idx / KV, c = idx % KV;
        st(cache + ((size_t)slots[i] * max_len + pos[i]) * KV + c, rows[idx]);
    }
}

template <typename E>
static int kv_cache_write_t(vet_cuda *ctx, E *cache, const float *rows, const int32_t *slots,
                            const int32_t *pos, int n, int max_len, int KV, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n <= 0 || KV <= 0) return 0;
    if (max_len <= 0)
        return vet_errf(err, "%s:%d: kv cache of %d positions", __FILE__, __LINE__, max_len);
    size_t total = (size_t)n * KV, b = (total + THREADS - 1) / THREADS;
    int blocks = (int)(b < 65536 ? b : 65536);
    LAUNCH(kv_cache_write_kernel<E>, blocks, THREADS, 0, ctx->stream, cache, rows, slots, pos, n, max_len, KV);
    LAUNCH_CHECK("kv_cache_write", err);
    return 0;
}

extern "C" int kv_cache_write_cuda(vet_cuda *ctx, float *cache, const float *rows,
                                   const int32_t *slots, const int32_t *pos, int n, int max_len,
                                   int KV, vet_err *err) {
    return kv_cache_write_t(ctx, cache, rows, slots, pos, n, max_len, KV, err);
}

extern "C" int kv_cache_write16_cuda(vet_cuda *ctx, uint16_t *cache, const float *rows,
                                     const int32_t *slots, const int32_t *pos, int n, int max_len,
                                     int KV, int fmt, vet_err *err) {
    if (fmt == VET_CUDA_KV_BF16)
        return kv_cache_write_t(ctx, (__nv_bfloat16 *)cache, rows, slots, pos, n, max_len, KV, err);
    if (fmt == VET_CUDA_KV_F16)
        return kv_cache_write_t(ctx, (__half *)cache, rows, slots, pos, n, max_len, KV, err);
    return vet_errf(err, "%s:%d: kv cache format %d (not bf16 or fp16)", __FILE__, __LINE__, fmt);
}

// --- attention of one query per row against its slot's cache -----------------------------------
// grid (n, H), NWARPS warps.
template <typename E>
__global__ void __launch_bounds__(NWARPS * 32)
attention_decode_kernel(float *out, const float *q, const E *kcache, const E *vcache,
                        const int32_t *slots, const int32_t *pos, int max_len, int H, int KVH,
                        int hd, float scale) {
    __shared__ float sm_m[NWARPS], sm_l[NWARPS];
    __shared__ float sm_o[NWARPS][MAXD];
    const int i = blockIdx.x, h = blockIdx.y, g = h / (H / KVH);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int T = pos[i] + 1;  // keys 0..pos[i]
    const size_t KV = (size_t)KVH * hd;
    const E *K = kcache + (size_t)slots[i] * max_len * KV + (size_t)g * hd;
    const E *V = vcache + (size_t)slots[i] * max_len * KV + (size_t)g * hd;
    const float *qr = q + ((size_t)i * H + h) * hd;

    float qv[NPL], o[NPL];
#pragma unroll
    for (int e = 0; e < NPL; e++) {
        int d = lane + 32 * e;
        qv[e] = d < hd ? qr[d] : 0.0f;
        o[e] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;

    for (int j0 = warp * KU; j0 < T; j0 += NWARPS * KU) {
        float s[KU];
#pragma unroll
        for (int u = 0; u < KU; u++) {  // partial dot products of KU keys, then their sums
            int j = j0 + u;
            float part = 0.0f;
            if (j < T) {
                const E *kr = K + (size_t)j * KV;
#pragma unroll
                for (int e = 0; e < NPL; e++) {
                    int d = lane + 32 * e;
                    if (d < hd) part += qv[e] * to_f32(kr[d]);
                }
            }
            s[u] = part;
        }
        float m_new = m;
#pragma unroll
        for (int u = 0; u < KU; u++) {
            s[u] = j0 + u < T ? warp_sum(s[u]) * scale : -INFINITY;  // warp-uniform
            m_new = fmaxf(m_new, s[u]);
        }
        // j0 < T: key j0 is valid, so m_new is finite
        float corr = expf(m - m_new), psum = 0.0f;  // corr 0 on the first keys (m = -inf)
        float p[KU];
#pragma unroll
        for (int u = 0; u < KU; u++) {
            p[u] = j0 + u < T ? expf(s[u] - m_new) : 0.0f;
            psum += p[u];
        }
        l = l * corr + psum;
        m = m_new;
#pragma unroll
        for (int e = 0; e < NPL; e++) {
            int d = lane + 32 * e;
            float acc = o[e] * corr;
#pragma unroll
            for (int u = 0; u < KU; u++)
                if (j0 + u < T && d < hd) acc += p[u] * to_f32(V[(size_t)(j0 + u) * KV + d]);
            o[e] = acc;
        }
    }

    if (lane == 0) sm_m[warp] = m, sm_l[warp] = l;
#pragma unroll
    for (int e = 0; e < NPL; e++) {
        int d = lane + 32 * e;
        if (d < hd) sm_o[warp][d] = o[e];
    }
    __syncthreads();
    // Merge the warps' partial softmaxes in warp order. Warp 0 always saw key 0, so M is
    // finite; a warp that saw no key has m = -inf, weight 0, o = 0.
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float M = sm_m[0];
        for (int w = 1; w < NWARPS; w++) M = fmaxf(M, sm_m[w]);
        float L = 0.0f, acc = 0.0f;
        for (int w = 0; w < NWARPS; w++) {
            float c = expf(sm_m[w] - M);
            L += sm_l[w] * c;
            acc += sm_o[w][d] * c;
        }
        out[((size_t)i * H + h) * hd + d] = acc / L;
    }
}

template <typename E>
static int attention_decode_t(vet_cuda *ctx, float *out, const float *q, const E *kcache,
                              const E *vcache, const int32_t *slots, const int32_t *pos, int n,
                              int max_len, int H, int KVH, int hd, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n <= 0 || H <= 0) return 0;
    if (hd <= 0 || hd > MAXD)
        return vet_errf(err, "%s:%d: attention_decode supports head_dim 1..%d, not %d", __FILE__,
                        __LINE__, MAXD, hd);
    if (KVH <= 0 || H % KVH)
        return vet_errf(err, "%s:%d: %d heads do not split into %d kv heads", __FILE__, __LINE__,
                        H, KVH);
    if (H > 65535 || max_len <= 0)
        return vet_errf(err, "%s:%d: attention_decode with %d heads, cache of %d positions",
                        __FILE__, __LINE__, H, max_len);
    LAUNCH(attention_decode_kernel<E>, dim3(n, H), NWARPS * 32, 0, ctx->stream, out, q, kcache, vcache, slots, pos,
           max_len, H, KVH, hd, 1.0f / sqrtf((float)hd));
    LAUNCH_CHECK("attention_decode", err);
    return 0;
}

extern "C" int attention_decode_cuda(vet_cuda *ctx, float *out, const float *q,
                                     const float *kcache, const float *vcache,
                                     const int32_t *slots, const int32_t *pos, int n, int max_len,
                                     int H, int KVH, int hd, vet_err *err) {
    return attention_decode_t(ctx, out, q, kcache, vcache, slots, pos, n, max_len, H, KVH, hd, err);
}

extern "C" int attention_decode16_cuda(vet_cuda *ctx, float *out, const float *q,
                                       const uint16_t *kcache, const uint16_t *vcache,
                                       const int32_t *slots, const int32_t *pos, int n,
                                       int max_len, int H, int KVH, int hd, int fmt,
                                       vet_err *err) {
    if (fmt == VET_CUDA_KV_BF16)
        return attention_decode_t(ctx, out, q, (const __nv_bfloat16 *)kcache,
                                  (const __nv_bfloat16 *)vcache, slots, pos, n, max_len, H, KVH,
                                  hd, err);
    if (fmt == VET_CUDA_KV_F16)
        return attention_decode_t(ctx, out, q, (const __half *)kcache, (const __half *)vcache,
                                  slots, pos, n, max_len, H, KVH, hd, err);
    return vet_errf(err, "%s:%d: kv cache format %d (not bf16 or fp16)", __FILE__, __LINE__, fmt);
}

// --- greedy argmax per row -------------------------------------------------------------------
// One block per row: each thread scans a strided slice keeping (value, id), then a shared
// memory tree keeps the larger value, the lower id on equal values: the lowest id of the max.
#define AM_THREADS 256
__device__ inline bool am_better(float v, int i, float bv, int bi) {
    return v > bv || (v == bv && i < bi) || (bv != bv && v == v);  // a number beats a NaN
}

// The block's best (value, id) of each thread's (bv, bi) (bi == V: none), into si[0].
__device__ void block_argmax(float bv, int bi, int V, float *sv, int *si) {
    sv[threadIdx.x] = bv, si[threadIdx.x] = bi;
    __syncthreads();
    for (int s = AM_THREADS / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) {
            int oi = si[threadIdx.x + s];
            float ov = sv[threadIdx.x + s];
            if (oi < V && (si[threadIdx.x] == V || am_better(ov, oi, sv[threadIdx.x], si[threadIdx.x])))
                sv[threadIdx.x] = ov, si[threadIdx.x] = oi;
        }
        __syncthreads();
    }
}

__global__ void argmax_rows_kernel(int32_t *out, const float *x, int V) {
    __shared__ float sv[AM_THREADS];
    __shared__ int si[AM_THREADS];
    const float *row = x + (size_t)blockIdx.x * V;
    float bv = -INFINITY;
    int bi = V;  // no id yet: any value of the row wins over it
    for (int v = threadIdx.x; v < V; v += AM_THREADS) {
        float xv = row[v];
        if (bi == V || am_better(xv, v, bv, bi)) bv = xv, bi = v;
    }
    block_argmax(bv, bi, V, sv, si);
    if (threadIdx.x == 0) out[blockIdx.x] = si[0];
}

// Row i's candidates are ids[off[i] .. off[i+1]): the same scan and tree over them only.
__global__ void argmax_allowed_rows_kernel(int32_t *out, const float *x, int V, const int32_t *ids,
                                           const int32_t *off) {
    __shared__ float sv[AM_THREADS];
    __shared__ int si[AM_THREADS];
    const float *row = x + (size_t)blockIdx.x * V;
    float bv = -INFINITY;
    int bi = V;
    for (int k = off[blockIdx.x] + threadIdx.x; k < off[blockIdx.x + 1]; k += AM_THREADS) {
        int v = ids[k];
        float xv = row[v];
        if (bi == V || am_better(xv, v, bv, bi)) bv = xv, bi = v;
    }
    block_argmax(bv, bi, V, sv, si);
    if (threadIdx.x == 0) out[blockIdx.x] = si[0] < V ? si[0] : 0;  // an empty list (refused on the host)
}

extern "C" int argmax_rows_cuda(vet_cuda *ctx, int32_t *out, const float *x, int n, int V,
                                vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n <= 0) return 0;
    if (V <= 0)
        return vet_errf(err, "%s:%d: argmax of rows of %d values", __FILE__, __LINE__, V);
    LAUNCH(argmax_rows_kernel, n, AM_THREADS, 0, ctx->stream, out, x, V);
    LAUNCH_CHECK("argmax_rows", err);
    return 0;
}

extern "C" int argmax_allowed_rows_cuda(vet_cuda *ctx, int32_t *out, const float *x, int n, int V,
                                        const int32_t *ids, const int32_t *off, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n <= 0) return 0;
    if (V <= 0)
        return vet_errf(err, "%s:%d: argmax of rows of %d values", __FILE__, __LINE__, V);
    LAUNCH(argmax_allowed_rows_kernel, n, AM_THREADS, 0, ctx->stream, out, x, V, ids, off);
    LAUNCH_CHECK("argmax_allowed_rows", err);
    return 0;
}
