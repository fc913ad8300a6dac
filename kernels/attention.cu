// attention.cu — causal self-attention over packed rows with GQA, flash-attention style.
//
// Same contract as lib/model/ops_attention.c: q (B,T,H,hd), k, v (B,T,KVH,hd), seg (B,T) with -1 for
// padding. Query i sees key j iff both lie in the same run of equal seg values and j <= i.
// Samples are contiguous, so the keys of query i are the range [start(i), i]; a first kernel
// turns seg into start/end (the run's first position and one past its last) once per call.
//
// Nothing of size (T,T) is formed. Forward streams key tiles through shared memory and keeps
// a running max and sum per query (online softmax), then stores lse = max + log(sum) per
// query. Backward recomputes p = exp(s - lse) from q, k and lse:
//   D_i = dO_i · O_i;   dp_ij = dO_i · v_j;   ds_ij = p_ij (dp_ij - D_i) * scale
//   dq_i += sum_j ds_ij k_j          (kernel over query tiles)
//   dk_j += sum_i ds_ij q_i,  dv_j += sum_i p_ij dO_i   (kernel over key tiles, all heads of
//                                                        the kv group: GQA sums them)
// Every output element is owned by one warp, so there are no atomics and results are the
// same run to run.
//
// Work split inside a warp: a tile holds 32 keys (or queries), one per lane. A lane computes
// the full dot product for its key (q and its key row from shared memory, rows padded to
// hd+1 floats so the 32 lanes hit 32 different banks); the softmax statistics are warp
// reductions; the weighted sums over the tile are done dimension-parallel, lane l owning
// dimensions l, l+32, l+64, l+96, with each key's weight broadcast by a shuffle.
#include "attention_ranges.cuh"
#include "common.cuh"

#define MAXD 128          // largest head_dim supported (LLaMA, Qwen2: 128)
#define NPL (MAXD / 32)   // output dimensions per lane
#define TILE 32           // keys (forward, dq) or queries (dk/dv) per tile: one per lane
#define NWARPS 4
#define QPW 4             // queries per warp (forward, dq): BQ = 16 per block
#define KPW 4             // keys per warp (dk/dv): 16 per block
#define BQ (NWARPS * QPW)
#define BKEY (NWARPS * KPW)

extern "C" size_t attention_scratch_bytes(int B, int T, int H) {
    return (size_t)B * T * 2 * sizeof(int32_t) + (size_t)B * T * H * sizeof(float);
}

// start, end (B,T): the run of position i is [start, end); -1 for padding. One thread a position
// (seg_bounds_at): a thread a row walked its T positions one dependent load after another, a
// serial prologue in every attention call.
__global__ void seg_bounds_kernel(int32_t *start, int32_t *end, const int32_t *seg, int B, int T) {
    GRID_STRIDE(i, (size_t)B * T) {
        const size_t b = i / T;
        seg_bounds_at(seg + b * T, T, (int)(i % T), start + i, end + i);
    }
}

// --- forward ---------------------------------------------------------------------------------
// grid (ceil(T/BQ), H, B), NWARPS warps; warp w owns queries i0 + w*QPW + (0..QPW-1).
// shared: Qs (BQ,hd), Ks (TILE,hd+1), Vs (TILE,hd)
__global__ void __launch_bounds__(NWARPS * 32)
attention_forward_kernel(float *out, float *lse, const float *q, const float *k, const float *v,
                         const int32_t *start, int T, int H, int KVH, int hd, float scale) {
    SHARED_DYNAMIC(float, smem, 4);
    float *Qs = smem, *Ks = Qs + BQ * hd, *Vs = Ks + TILE * (hd + 1);
    __shared__ int range[2];
    const int b = blockIdx.z, h = blockIdx.y, g = h / (H / KVH), i0 = blockIdx.x * BQ;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int32_t *st = start + (size_t)b * T;

    for (int idx = threadIdx.x; idx < BQ * hd; idx += blockDim.x) {
        int r = idx / hd, d = idx % hd, i = i0 + r;
        Qs[idx] = i < T ? q[(((size_t)b * T + i) * H + h) * hd + d] : 0.0f;
    }
    if (threadIdx.x < 32) block_query_range(st, i0, BQ, T, range);
    __syncthreads();
    const int klo = range[0], khi = range[1];

    int qi[QPW], qs[QPW];  // each query's position and the start of its sample (-1: none)
    float m[QPW], l[QPW], o[QPW][NPL];
#pragma unroll
    for (int a = 0; a < QPW; a++) {
        qi[a] = i0 + warp * QPW + a;
        qs[a] = qi[a] < T ? st[qi[a]] : -1;
        m[a] = -INFINITY;
        l[a] = 0.0f;
#pragma unroll
        for (int e = 0; e < NPL; e++) o[a][e] = 0.0f;
    }

    for (int kt = klo; kt < khi; kt += TILE) {
        __syncthreads();  // the previous tile is no longer read
        for (int idx = threadIdx.x; idx < TILE * hd; idx += blockDim.x) {
            int r = idx / hd, d = idx % hd, j = kt + r;
            size_t src = (((size_t)b * T + j) * KVH + g) * hd + d;
            Ks[r * (hd + 1) + d] = j < T ? k[src] : 0.0f;
            Vs[r * hd + d] = j < T ? v[src] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int a = 0; a < QPW; a++) {
            // Warp-uniform: skip queries that see no key of this tile.
            if (qs[a] < 0 || kt > qi[a] || kt + TILE <= qs[a]) continue;
            const float *qrow = Qs + (warp * QPW + a) * hd;
            int j = kt + lane;
            bool valid = j >= qs[a] && j <= qi[a];
            float s = -INFINITY;
            if (valid) {
                float dot = 0.0f;
                for (int d = 0; d < hd; d++) dot += qrow[d] * Ks[lane * (hd + 1) + d];
                s = dot * scale;
            }
            // The tile has at least one valid key, so m_new is finite.
            float m_new = fmaxf(m[a], warp_max(s));
            float p = valid ? expf(s - m_new) : 0.0f;
            float corr = expf(m[a] - m_new);  // 0 on the first tile (m = -inf)
            l[a] = l[a] * corr + warp_sum(p);
            m[a] = m_new;
#pragma unroll
            for (int e = 0; e < NPL; e++) o[a][e] *= corr;
            for (int jj = 0; jj < TILE; jj++) {
                float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
                for (int e = 0; e < NPL; e++) {
                    int d = lane + 32 * e;
                    if (d < hd) o[a][e] += pj * Vs[jj * hd + d];
                }
            }
        }
    }

#pragma unroll
    for (int a = 0; a < QPW; a++) {
        if (qi[a] >= T) continue;
        size_t qo = ((size_t)b * T + qi[a]) * H + h;
        bool pad = qs[a] < 0;  // padding queries: zero output, lse 0 (as the CPU)
        float inv = pad ? 0.0f : 1.0f / l[a];
#pragma unroll
        for (int e = 0; e < NPL; e++) {
            int d = lane + 32 * e;
            if (d < hd) out[qo * hd + d] = o[a][e] * inv;
        }
        if (lane == 0) lse[qo] = pad ? 0.0f : m[a] + logf(l[a]);
    }
}

// --- backward ----------------------------------------------------------------------------------
// D (B,T,H) = rowsum(dO * O), one warp per (position, head).
__global__ void attention_delta_kernel(float *D, const float *dout, attn_in out, size_t NH, int hd) {
    size_t w = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x % 32;
    if (w >= NH) return;
    const float *a = dout + w * hd;
    float s = 0.0f;
    for (int d = lane; d < hd; d += 32) s += a[d] * out.at(w * hd + d);
    s = warp_sum(s);
    if (lane == 0) D[w] = s;
}

// dq: grid (ceil(T/BQ), H, B) like the forward. shared: Qs, dOs (BQ,hd), Ks, Vs (TILE,hd+1)
__global__ void __launch_bounds__(NWARPS * 32)
attention_backward_dq_kernel(float *dq, const float *dout, const float *q, const float *k,
                             const float *v, const float *lse, const float *D,
                             const int32_t *start, int T, int H, int KVH, int hd, float scale, int accumulate) {
    SHARED_DYNAMIC(float, smem, 4);
    float *Qs = smem, *dOs = Qs + BQ * hd, *Ks = dOs + BQ * hd, *Vs = Ks + TILE * (hd + 1);
    __shared__ int range[2];
    const int b = blockIdx.z, h = blockIdx.y, g = h / (H / KVH), i0 = blockIdx.x * BQ;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int32_t *st = start + (size_t)b * T;

    for (int idx = threadIdx.x; idx < BQ * hd; idx += blockDim.x) {
        int r = idx / hd, d = idx % hd, i = i0 + r;
        size_t src = (((size_t)b * T + i) * H + h) * hd + d;
        Qs[idx] = i < T ? q[src] : 0.0f;
        dOs[idx] = i < T ? dout[src] : 0.0f;
    }
    if (threadIdx.x < 32) block_query_range(st, i0, BQ, T, range);
    __syncthreads();
    const int klo = range[0], khi = range[1];

    int qi[QPW], qs[QPW];
    float L[QPW], Dq[QPW], acc[QPW][NPL];
#pragma unroll
    for (int a = 0; a < QPW; a++) {
        qi[a] = i0 + warp * QPW + a;
        qs[a] = qi[a] < T ? st[qi[a]] : -1;
        size_t qo = ((size_t)b * T + (qi[a] < T ? qi[a] : 0)) * H + h;
        L[a] = lse[qo];
        Dq[a] = D[qo];
#pragma unroll
        for (int e = 0; e < NPL; e++) acc[a][e] = 0.0f;
    }

    for (int kt = klo; kt < khi; kt += TILE) {
        __syncthreads();
        for (int idx = threadIdx.x; idx < TILE * hd; idx += blockDim.x) {
            int r = idx / hd, d = idx % hd, j = kt + r;
            size_t src = (((size_t)b * T + j) * KVH + g) * hd + d;
            Ks[r * (hd + 1) + d] = j < T ? k[src] : 0.0f;
            Vs[r * (hd + 1) + d] = j < T ? v[src] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int a = 0; a < QPW; a++) {
            if (qs[a] < 0 || kt > qi[a] || kt + TILE <= qs[a]) continue;  // warp-uniform
            const float *qrow = Qs + (warp * QPW + a) * hd, *dorow = dOs + (warp * QPW + a) * hd;
            int j = kt + lane;
            float ds = 0.0f;
            if (j >= qs[a] && j <= qi[a]) {
                float s = 0.0f, dp = 0.0f;
                for (int d = 0; d < hd; d++) {
                    s += qrow[d] * Ks[lane * (hd + 1) + d];
                    dp += dorow[d] * Vs[lane * (hd + 1) + d];
                }
                float p = expf(s * scale - L[a]);
                ds = p * (dp - Dq[a]) * scale;
            }
            for (int jj = 0; jj < TILE; jj++) {
                float dsj = __shfl_sync(0xffffffffu, ds, jj);
#pragma unroll
                for (int e = 0; e < NPL; e++) {
                    int d = lane + 32 * e;
                    if (d < hd) acc[a][e] += dsj * Ks[jj * (hd + 1) + d];
                }
            }
        }
    }

#pragma unroll
    for (int a = 0; a < QPW; a++) {
        if (qi[a] >= T || (qs[a] < 0 && accumulate)) continue;  // padding: no gradient (0 when written)
        size_t qo = ((size_t)b * T + qi[a]) * H + h;
#pragma unroll
        for (int e = 0; e < NPL; e++) {
            int d = lane + 32 * e;
            if (d < hd) dq[qo * hd + d] = accumulate ? dq[qo * hd + d] + acc[a][e] : qs[a] < 0 ? 0.0f : acc[a][e];
        }
    }
}

// dk, dv: grid (ceil(T/BKEY), KVH, B); warp w owns keys k0 + w*KPW + (0..KPW-1) and sums over
// every query head of the group and every query of the key's sample at or after it.
// shared: Qs, dOs (TILE,hd+1) for a tile of 32 queries; Kb, Vb (BKEY,hd); per-query lse, D, start.
__global__ void __launch_bounds__(NWARPS * 32)
attention_backward_dkdv_kernel(float *dk, float *dv, const float *dout, const float *q,
                               const float *k, const float *v, const float *lse, const float *D,
                               const int32_t *start, const int32_t *end, int T, int H, int KVH,
                               int hd, float scale, int accumulate) {
    SHARED_DYNAMIC(float, smem, 4);
    float *Qs = smem, *dOs = Qs + TILE * (hd + 1), *Kb = dOs + TILE * (hd + 1), *Vb = Kb + BKEY * hd;
    float *Ls = Vb + BKEY * hd, *Ds = Ls + TILE;
    int *Ss = (int *)(Ds + TILE);
    __shared__ int range[2];
    const int b = blockIdx.z, g = blockIdx.y, k0 = blockIdx.x * BKEY, rep = H / KVH;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int32_t *st = start + (size_t)b * T, *en = end + (size_t)b * T;

    for (int idx = threadIdx.x; idx < BKEY * hd; idx += blockDim.x) {
        int r = idx / hd, d = idx % hd, j = k0 + r;
        size_t src = (((size_t)b * T + j) * KVH + g) * hd + d;
        Kb[idx] = j < T ? k[src] : 0.0f;
        Vb[idx] = j < T ? v[src] : 0.0f;
    }
    if (threadIdx.x < 32) block_key_range(st, en, k0, BKEY, T, range);
    __syncthreads();
    const int qlo = range[0], qhi = range[1];

    int kj[KPW], ks[KPW], ke[KPW];  // key position, its sample's start and end (-1: none)
    float dkacc[KPW][NPL], dvacc[KPW][NPL];
#pragma unroll
    for (int a = 0; a < KPW; a++) {
        kj[a] = k0 + warp * KPW + a;
        ks[a] = kj[a] < T ? st[kj[a]] : -1;
        ke[a] = kj[a] < T ? en[kj[a]] : -1;
#pragma unroll
        for (int e = 0; e < NPL; e++) dkacc[a][e] = dvacc[a][e] = 0.0f;
    }

    for (int h = g * rep; h < (g + 1) * rep; h++)
        for (int qt = qlo; qt < qhi; qt += TILE) {
            __syncthreads();
            for (int idx = threadIdx.x; idx < TILE * hd; idx += blockDim.x) {
                int r = idx / hd, d = idx % hd, i = qt + r;
                size_t src = (((size_t)b * T + i) * H + h) * hd + d;
                Qs[r * (hd + 1) + d] = i < T ? q[src] : 0.0f;
                dOs[r * (hd + 1) + d] = i < T ? dout[src] : 0.0f;
            }
            if (threadIdx.x < TILE) {
                int i = qt + threadIdx.x;
                size_t qo = ((size_t)b * T + (i < T ? i : 0)) * H + h;
                Ls[threadIdx.x] = lse[qo];
                Ds[threadIdx.x] = D[qo];
                Ss[threadIdx.x] = i < T ? st[i] : -1;
            }
            __syncthreads();
#pragma unroll
            for (int a = 0; a < KPW; a++) {
                // Warp-uniform: skip keys no query of this tile sees.
                if (ks[a] < 0 || qt + TILE <= kj[a] || qt >= ke[a]) continue;
                const float *krow = Kb + (warp * KPW + a) * hd, *vrow = Vb + (warp * KPW + a) * hd;
                int i = qt + lane;
                // query i sees key j iff same sample (start equal) and j <= i
                bool valid = i < T && Ss[lane] == ks[a] && kj[a] <= i;
                float p = 0.0f, ds = 0.0f;
                if (valid) {
                    float s = 0.0f, dp = 0.0f;
                    for (int d = 0; d < hd; d++) {
                        s += Qs[lane * (hd + 1) + d] * krow[d];
                        dp += dOs[lane * (hd + 1) + d] * vrow[d];
                    }
                    p = expf(s * scale - Ls[lane]);
                    ds = p * (dp - Ds[lane]) * scale;
                }
                for (int ii = 0; ii < TILE; ii++) {
                    float pi = __shfl_sync(0xffffffffu, p, ii);
                    float dsi = __shfl_sync(0xffffffffu, ds, ii);
#pragma unroll
                    for (int e = 0; e < NPL; e++) {
                        int d = lane + 32 * e;
                        if (d < hd) {
                            dvacc[a][e] += pi * dOs[ii * (hd + 1) + d];
                            dkacc[a][e] += dsi * Qs[ii * (hd + 1) + d];
                        }
                    }
                }
            }
        }

#pragma unroll
    for (int a = 0; a < KPW; a++) {
        if (kj[a] >= T || (ks[a] < 0 && accumulate)) continue;  // padding keys are seen by nobody
        size_t ko = (((size_t)b * T + kj[a]) * KVH + g) * hd;
        const bool pad = ks[a] < 0;
#pragma unroll
        for (int e = 0; e < NPL; e++) {
            int d = lane + 32 * e;
            if (d < hd) {
                dk[ko + d] = accumulate ? dk[ko + d] + dkacc[a][e] : pad ? 0.0f : dkacc[a][e];
                dv[ko + d] = accumulate ? dv[ko + d] + dvacc[a][e] : pad ? 0.0f : dvacc[a][e];
            }
        }
    }
}

// --- host side -----------------------------------------------------------------------------------
static int attention_check_shapes(int B, int T, int H, int KVH, int hd, vet_err *err) {
    if (hd <= 0 || hd > MAXD)
        return vet_errf(err, "%s:%d: attention supports head_dim 1..%d, not %d", __FILE__, __LINE__,
                        MAXD, hd);
    if (KVH <= 0 || H % KVH)
        return vet_errf(err, "%s:%d: %d heads do not split into %d kv heads", __FILE__, __LINE__, H,
                        KVH);
    if (T > 65535 * BQ || B > 65535 || H > 65535)  // BQ = 16: the smallest block of any kernel
        return vet_errf(err, "%s:%d: attention batch %d x %d x %d heads too large for one launch",
                        __FILE__, __LINE__, B, T, H);
    return 0;
}

static int attention_seg_bounds(vet_cuda *ctx, int32_t *start, int32_t *end, const int32_t *seg, int B, int T,
                                vet_err *err) {
    LAUNCH(seg_bounds_kernel, grid_blocks((size_t)B * T, 256), 256, 0, ctx->stream, start, end, seg, B, T);
    LAUNCH_CHECK("attention seg_bounds", err);
    return 0;
}

static int attention_delta(vet_cuda *ctx, float *D, const float *dout, attn_in out, size_t NH, int hd,
                           vet_err *err) {
    LAUNCH(attention_delta_kernel, ceil_div((long long)NH * 32, 256), 256, 0, ctx->stream, D, dout, out, NH, hd);
    LAUNCH_CHECK("attention_backward (delta)", err);
    return 0;
}

int attention_prepare(vet_cuda *ctx, const int32_t *seg, const float *dout, attn_in out, int B, int T, int H,
                      int KVH, int hd, void *scratch, attention_scratch *s, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (B <= 0 || T <= 0 || H <= 0) return 1;
    if (attention_check_shapes(B, T, H, KVH, hd, err) < 0) return -1;
    s->start = (int32_t *)scratch, s->end = s->start + (size_t)B * T;
    s->D = (float *)(s->end + (size_t)B * T);
    if (attention_seg_bounds(ctx, s->start, s->end, seg, B, T, err) < 0) return -1;
    return dout && attention_delta(ctx, s->D, dout, out, (size_t)B * T * H, hd, err) < 0 ? -1 : 0;
}

extern "C" int attention_forward_cuda(vet_cuda *ctx, float *out, float *lse, const float *q,
                                      const float *k, const float *v, const int32_t *seg, int B,
                                      int T, int H, int KVH, int hd, void *scratch, vet_err *err) {
    attention_scratch s = {};
    int ready = attention_prepare(ctx, seg, NULL, attn_in{}, B, T, H, KVH, hd, scratch, &s, err);
    if (ready != 0) return ready < 0 ? -1 : 0;
    const int32_t *start = s.start;
    size_t smem = (size_t)(BQ * hd + TILE * (hd + 1) + TILE * hd) * sizeof(float);
    SMEM_OPT_IN(attention_forward_kernel, smem, err);
    dim3 grid(ceil_div(T, BQ), H, B);
    LAUNCH(attention_forward_kernel, grid, NWARPS * 32, smem, ctx->stream, out, lse, q, k, v, start, T, H, KVH, hd,
           1.0f / sqrtf((float)hd));
    LAUNCH_CHECK("attention_forward", err);
    return 0;
}

extern "C" int attention_backward_cuda(vet_cuda *ctx, float *dq, float *dk, float *dv,
                                       const float *dout, const float *q, const float *k,
                                       const float *v, const float *out, const float *lse,
                                       const int32_t *seg, int B, int T, int H, int KVH, int hd,
                                       int accumulate, void *scratch, vet_err *err) {
    attention_scratch s = {};
    int ready = attention_prepare(ctx, seg, dout, attn_in{out, NULL}, B, T, H, KVH, hd, scratch, &s, err);
    if (ready != 0) return ready < 0 ? -1 : 0;
    const int32_t *start = s.start, *end = s.end;
    const float *D = s.D, scale = 1.0f / sqrtf((float)hd);

    size_t smem_dq = (size_t)(2 * BQ * hd + 2 * TILE * (hd + 1)) * sizeof(float);
    SMEM_OPT_IN(attention_backward_dq_kernel, smem_dq, err);
    LAUNCH(attention_backward_dq_kernel, dim3(ceil_div(T, BQ), H, B), NWARPS * 32, smem_dq, ctx->stream, dq, dout, q,
           k, v, lse, D, start, T, H, KVH, hd, scale, accumulate);
    LAUNCH_CHECK("attention_backward (dq)", err);

    size_t smem_kv = (size_t)(2 * TILE * (hd + 1) + 2 * BKEY * hd + 3 * TILE) * sizeof(float);
    SMEM_OPT_IN(attention_backward_dkdv_kernel, smem_kv, err);
    LAUNCH(attention_backward_dkdv_kernel, dim3(ceil_div(T, BKEY), KVH, B), NWARPS * 32, smem_kv, ctx->stream, dk,
           dv, dout, q, k, v, lse, D, start, end, T, H, KVH, hd, scale, accumulate);
    LAUNCH_CHECK("attention_backward (dk, dv)", err);
    return 0;
}
