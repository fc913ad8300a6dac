// attention_tc.cu — causal attention over packed rows with GQA on tensor cores: bf16 operands,
// fp32 accumulation (WMMA 16x16x16 fragments), forward and backward, FlashAttention-2's
// algorithm. The bf16 training path uses it; attention.cu's fp32 kernels stay the exact
// reference (and the fp32 path). lib/model/ops_attention_bf16.c computes the same numbers on
// the CPU (given this file's tile, VET_ATTN_TC_TILE): the stand-in runs it, the GPU parity test
// compares these kernels with it.
//
// Contract as attention.cu: q (B,T,H,hd), k, v (B,T,KVH,hd), seg (B,T) with -1 padding; query
// i sees key j iff both lie in one sample and j <= i. q, k, v and dout come in bf16 (training
// keeps q, k, v so and rounds dout; the fp32 values these kernels once rounded as they loaded)
// and are copied into shared memory, head_dim padded with zeros to a multiple of 16.
//
// Work split: a block holds TT = 64 queries (forward, dq) or 64 keys (dk/dv), 16 rows per warp
// (one fragment's height). Scores of a warp's 16 rows against a tile land in the warp's fp32
// scratch (store_matrix_sync); two lanes own each row, half of the tile's columns each, for
// the masking, the softmax statistics and the bf16 probabilities. Accumulators that must be
// rescaled row by row (the output O) or summed over tiles (dQ, dK, dV) live in per-warp fp32
// shared memory, loaded into a fragment, multiplied into and stored back each tile: WMMA does
// not say which row a fragment element holds, so the rows are scaled where their layout is known.
//
// Forward (per query block): for each key tile from the block's first visible key:
//   S = Q K^T;  s = S scale (masked: -inf);  m' = max(m, rowmax s);  p = exp(s - m');
//   l = l exp(m - m') + rowsum p;  O = O exp(m - m') + bf16(p) V;  at the end out = O / l,
//   lse = m + log l (padding: out 0, lse 0).
// Backward: D = rowsum(dO * O) (attention.cu's kernel), then with p = exp(S scale - lse),
// dP = dO V^T and dS = p (dP - D) scale:
//   dq kernel (per query block, over key tiles):       dQ += bf16(dS) K
//   dk/dv kernel (per key block, over the group's heads and query tiles of 32):
//                                                      dV += bf16(p)^T dO,  dK += bf16(dS)^T Q
// Each output row is owned by one warp: no atomics, the same bits run to run.
#include <limits.h>
#ifndef VET_SIMT_EMU  // the emulator brings its own nvcuda::wmma (tests/unit/simt_emu.h)
#include <mma.h>
#endif

#include "attention_cudnn.h"
#include "attention_mma.cuh"
#include "attention_ranges.cuh"
#include "common.cuh"

using namespace nvcuda;

#define TT VET_ATTN_TC_TILE  // queries per block and keys per tile (forward, dq); keys per block (dk/dv)
#define KQT 32  // queries per tile in the dk/dv kernel: keeps its shared memory under sm_80's 164 KB
#define NW 4    // warps per block
#define WR 16   // rows per warp: one fragment's height
static_assert(TT == NW * WR, "a block's warps cover its rows");

typedef __nv_bfloat16 bf16;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> frag_a;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> frag_b;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> frag_bt;  // X^T of a row-major X
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_c;

#define FULL 0xffffffffu

// Shared-memory strides, in elements. Padding shifts consecutive rows across banks; every
// stride keeps a 16-row fragment 32-byte aligned (ldh: 16 rows x ldh x 2 B = 32 ldh B).
struct tc_dims {
    int hdp;  // head_dim rounded up to 16
    int ldh;  // bf16 rows of hdp (Q, K, V, dO tiles)
    int ldf;  // fp32 rows of hdp (O, dQ, dK, dV accumulators)
};
__host__ __device__ inline tc_dims tc_dims_of(int hd) {
    int hdp = (hd + 15) / 16 * 16;
    return {hdp, hdp + 8, hdp + 4};
}
__host__ __device__ inline int ld_score(int w) { return w + 4; }  // fp32 scores, tile width w
__host__ __device__ inline int ld_prob(int w) { return w + 8; }   // bf16 probabilities

// Carves a block's dynamic shared memory into 128-byte aligned regions; the host runs the same
// arithmetic (base NULL) to size the launch.
struct smem_carve {
    unsigned char *base;
    size_t used;
    __host__ __device__ void *take(size_t bytes) {
        void *p = base ? base + used : nullptr;
        used += (bytes + 127) / 128 * 128;
        return p;
    }
};

// rows r0..r0+n-1 of head `head` of x (B,T,nh,hd, bf16), batch row b, into dst (n rows of ld);
// rows past T and columns past hd are 0.
__device__ inline void load_tile(bf16 *dst, const bf16 *x, int b, int T, int nh, int head, int r0, int n, int hd,
                                 tc_dims D) {
    for (int idx = threadIdx.x; idx < n * D.hdp; idx += blockDim.x) {
        int r = idx / D.hdp, d = idx % D.hdp, i = r0 + r;
        dst[r * D.ldh + d] = i < T && d < hd ? x[(((size_t)b * T + i) * nh + head) * hd + d] : __float2bfloat16_rn(0.0f);
    }
}

__device__ inline void zero_f32(float *p, int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) p[i] = 0.0f;
}

// C (16 x w) = A (16 x kdim, row-major, lda) . X^T, X (w x kdim, row-major, ldx): scores.
__device__ inline void mma_abt(float *C, int ldc, const bf16 *A, int lda, const bf16 *X, int ldx, int w,
                               int kdim) {
    for (int n = 0; n < w / 16; n++) {
        frag_c c;
        wmma::fill_fragment(c, 0.0f);
        for (int kk = 0; kk < kdim; kk += 16) {
            frag_a a;
            frag_bt bt;
            wmma::load_matrix_sync(a, A + kk, lda);
            wmma::load_matrix_sync(bt, X + n * 16 * ldx + kk, ldx);
            wmma::mma_sync(c, a, bt, c);
        }
        wmma::store_matrix_sync(C + n * 16, c, ldc, wmma::mem_row_major);
    }
}

// C (16 x ncol) += P (16 x kdim, row-major, ldp) . X (kdim x ncol, row-major, ldx), C fp32 in shared.
__device__ inline void mma_acc(float *C, int ldc, const bf16 *P, int ldp, const bf16 *X, int ldx, int kdim,
                               int ncol) {
    for (int n = 0; n < ncol / 16; n++) {
        frag_c c;
        wmma::load_matrix_sync(c, C + n * 16, ldc, wmma::mem_row_major);
        for (int kk = 0; kk < kdim; kk += 16) {
            frag_a a;
            frag_b bm;
            wmma::load_matrix_sync(a, P + kk, ldp);
            wmma::load_matrix_sync(bm, X + kk * ldx + n * 16, ldx);
            wmma::mma_sync(c, a, bm, c);
        }
        wmma::store_matrix_sync(C + n * 16, c, ldc, wmma::mem_row_major);
    }
}

// --- forward ---------------------------------------------------------------------------------
// grid (ceil(T/TT), H, B). shared: Qs, Ks, Vs (TT, ldh) bf16; per warp S (WR, TT+4) fp32,
// P (WR, TT+8) bf16, O (WR, ldf) fp32.
struct fwd_smem {
    bf16 *Qs, *Ks, *Vs, *P;
    float *S, *O;
    int *range;
};
// The forward's shared memory carved from base (NULL: only counted); returns its bytes, so the
// kernel and its launch use one layout.
__host__ __device__ inline size_t fwd_layout(tc_dims D, unsigned char *base, fwd_smem *m) {
    smem_carve c{base, 0};
    m->Qs = (bf16 *)c.take((size_t)TT * D.ldh * sizeof(bf16));
    m->Ks = (bf16 *)c.take((size_t)TT * D.ldh * sizeof(bf16));
    m->Vs = (bf16 *)c.take((size_t)TT * D.ldh * sizeof(bf16));
    m->S = (float *)c.take((size_t)NW * WR * ld_score(TT) * sizeof(float));
    m->P = (bf16 *)c.take((size_t)NW * WR * ld_prob(TT) * sizeof(bf16));
    m->O = (float *)c.take((size_t)NW * WR * D.ldf * sizeof(float));
    m->range = (int *)c.take(2 * sizeof(int));
    return c.used;
}

__global__ void __launch_bounds__(NW * 32)
attention_tc_forward_kernel(attn_out out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                            const int32_t *start, int T, int H, int KVH, int hd, float scale) {
    SHARED_DYNAMIC(unsigned char, smem, 128);
    const tc_dims D = tc_dims_of(hd);
    fwd_smem sm;
    fwd_layout(D, smem, &sm);
    bf16 *Qs = sm.Qs, *Ks = sm.Ks, *Vs = sm.Vs, *Pw = sm.P;
    float *Sw = sm.S, *Ow = sm.O;
    int *range = sm.range;
    const int b = blockIdx.z, h = blockIdx.y, g = h / (H / KVH), i0 = blockIdx.x * TT;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int32_t *st = start + (size_t)b * T;
    const int lds = ld_score(TT), ldp = ld_prob(TT);

    load_tile(Qs, q, b, T, H, h, i0, TT, hd, D);
    zero_f32(Ow, NW * WR * D.ldf);
    if (threadIdx.x < 32) block_query_range(st, i0, TT, T, range);
    __syncthreads();
    const int klo = range[0], khi = range[1];

    // This lane's row (two lanes a row) and half of the tile's columns.
    const int r = lane >> 1, half = lane & 1;
    const int qi = i0 + warp * WR + r, qs = qi < T ? st[qi] : -1;
    // The keys any row of this warp sees: [wlo, whi) (whi = 0: none).
    const int wlo = warp_min_int(qs >= 0 ? qs : INT_MAX), whi = warp_max_int(qs >= 0 ? qi + 1 : 0);
    const bf16 *Qw = Qs + warp * WR * D.ldh;
    float *S = Sw + warp * WR * lds, *O = Ow + warp * WR * D.ldf;
    bf16 *P = Pw + warp * WR * ldp;
    float *srow = S + r * lds + half * (TT / 2), *orow = O + r * D.ldf + half * (D.hdp / 2);
    bf16 *prow = P + r * ldp + half * (TT / 2);
    float m = -INFINITY, l = 0.0f;

    for (int kt = klo; kt < khi; kt += TT) {
        __syncthreads();  // the previous tile is no longer read
        load_tile(Ks, k, b, T, KVH, g, kt, TT, hd, D);
        load_tile(Vs, v, b, T, KVH, g, kt, TT, hd, D);
        __syncthreads();
        if (whi <= kt || wlo >= kt + TT) continue;  // warp-uniform: no row of the warp sees the tile

        mma_abt(S, lds, Qw, D.ldh, Ks, D.ldh, TT, D.hdp);
        __syncwarp();
        float mt = -INFINITY;
#pragma unroll
        for (int c = 0; c < TT / 2; c++) {
            int j = kt + half * (TT / 2) + c;
            float s = qs >= 0 && j >= qs && j <= qi ? __fmul_rn(srow[c], scale) : -INFINITY;
            srow[c] = s;
            mt = fmaxf(mt, s);
        }
        mt = fmaxf(mt, __shfl_xor_sync(FULL, mt, 1));
        const float m_new = fmaxf(m, mt);
        const float corr = m == -INFINITY ? 0.0f : expf(m - m_new);  // m finite: m_new too
        float ps = 0.0f;
#pragma unroll
        for (int c = 0; c < TT / 2; c++) {
            float p = srow[c] == -INFINITY ? 0.0f : expf(srow[c] - m_new);
            ps = __fadd_rn(ps, p);
            prow[c] = __float2bfloat16_rn(p);
        }
        ps = __fadd_rn(ps, __shfl_xor_sync(FULL, ps, 1));  // both halves: commutative, one value
        l = __fadd_rn(__fmul_rn(l, corr), ps);
        m = m_new;
        for (int d = 0; d < D.hdp / 2; d++) orow[d] = __fmul_rn(orow[d], corr);
        __syncwarp();
        mma_acc(O, D.ldf, P, ldp, Vs, D.ldh, TT, D.hdp);
        __syncwarp();
    }

    if (qi < T) {
        size_t qo = ((size_t)b * T + qi) * H + h;
        bool pad = qs < 0;  // padding queries: zero output, lse 0 (as the CPU)
        float inv = pad ? 0.0f : 1.0f / l;
        for (int d = half * (D.hdp / 2); d < (half + 1) * (D.hdp / 2) && d < hd; d++)
            out.put(qo * hd + d, __fmul_rn(O[r * D.ldf + d], inv));
        if (half == 0) lse[qo] = pad ? 0.0f : m + logf(l);
    }
}

// --- backward: dq ----------------------------------------------------------------------------
// grid (ceil(T/TT), H, B). shared: Qs, dOs, Ks, Vs (TT, ldh) bf16; per warp S (WR, TT+4) fp32
// (scores, then dP), G (WR, TT+8) bf16 (dS), A (WR, ldf) fp32 (dQ).
struct dq_smem {
    bf16 *Qs, *dOs, *Ks, *Vs, *G;
    float *S, *A;
    int *range;
};
__host__ __device__ inline size_t dq_layout(tc_dims D, unsigned char *base, dq_smem *m) {
    smem_carve c{base, 0};
    m->Qs = (bf16 *)c.take((size_t)TT * D.ldh * sizeof(bf16));
    m->dOs = (bf16 *)c.take((size_t)TT * D.ldh * sizeof(bf16));
    m->Ks = (bf16 *)c.take((size_t)TT * D.ldh * sizeof(bf16));
    m->Vs = (bf16 *)c.take((size_t)TT * D.ldh * sizeof(bf16));
    m->S = (float *)c.take((size_t)NW * WR * ld_score(TT) * sizeof(float));
    m->G = (bf16 *)c.take((size_t)NW * WR * ld_prob(TT) * sizeof(bf16));
    m->A = (float *)c.take((size_t)NW * WR * D.ldf * sizeof(float));
    m->range = (int *)c.take(2 * sizeof(int));
    return c.used;
}

__global__ void __launch_bounds__(NW * 32)
attention_tc_dq_kernel(float *dq, const bf16 *dout, const bf16 *q, const bf16 *k, const bf16 *v,
                       const float *lse, const float *Dl, const int32_t *start, int T, int H, int KVH,
                       int hd, float scale, int accumulate) {
    SHARED_DYNAMIC(unsigned char, smem, 128);
    const tc_dims D = tc_dims_of(hd);
    dq_smem sm;
    dq_layout(D, smem, &sm);
    bf16 *Qs = sm.Qs, *dOs = sm.dOs, *Ks = sm.Ks, *Vs = sm.Vs, *Gw = sm.G;
    float *Sw = sm.S, *Aw = sm.A;
    int *range = sm.range;
    const int b = blockIdx.z, h = blockIdx.y, g = h / (H / KVH), i0 = blockIdx.x * TT;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int32_t *st = start + (size_t)b * T;
    const int lds = ld_score(TT), ldp = ld_prob(TT);

    load_tile(Qs, q, b, T, H, h, i0, TT, hd, D);
    load_tile(dOs, dout, b, T, H, h, i0, TT, hd, D);
    zero_f32(Aw, NW * WR * D.ldf);
    if (threadIdx.x < 32) block_query_range(st, i0, TT, T, range);
    __syncthreads();
    const int klo = range[0], khi = range[1];

    const int r = lane >> 1, half = lane & 1;
    const int qi = i0 + warp * WR + r, qs = qi < T ? st[qi] : -1;
    const size_t qo = ((size_t)b * T + (qi < T ? qi : 0)) * H + h;
    const float L = lse[qo], Dq = Dl[qo];
    const int wlo = warp_min_int(qs >= 0 ? qs : INT_MAX), whi = warp_max_int(qs >= 0 ? qi + 1 : 0);
    const bf16 *Qw = Qs + warp * WR * D.ldh, *dOw = dOs + warp * WR * D.ldh;
    float *S = Sw + warp * WR * lds, *A = Aw + warp * WR * D.ldf;
    bf16 *G = Gw + warp * WR * ldp;
    float *srow = S + r * lds + half * (TT / 2);
    bf16 *grow = G + r * ldp + half * (TT / 2);

    for (int kt = klo; kt < khi; kt += TT) {
        __syncthreads();
        load_tile(Ks, k, b, T, KVH, g, kt, TT, hd, D);
        load_tile(Vs, v, b, T, KVH, g, kt, TT, hd, D);
        __syncthreads();
        if (whi <= kt || wlo >= kt + TT) continue;  // warp-uniform

        mma_abt(S, lds, Qw, D.ldh, Ks, D.ldh, TT, D.hdp);
        __syncwarp();
        float p[TT / 2];
#pragma unroll
        for (int c = 0; c < TT / 2; c++) {
            int j = kt + half * (TT / 2) + c;
            p[c] = qs >= 0 && j >= qs && j <= qi ? expf(__fsub_rn(__fmul_rn(srow[c], scale), L)) : 0.0f;
        }
        __syncwarp();  // the scores are read: dP may overwrite them
        mma_abt(S, lds, dOw, D.ldh, Vs, D.ldh, TT, D.hdp);
        __syncwarp();
#pragma unroll
        for (int c = 0; c < TT / 2; c++)
            grow[c] = __float2bfloat16_rn(__fmul_rn(__fmul_rn(p[c], __fsub_rn(srow[c], Dq)), scale));
        __syncwarp();
        mma_acc(A, D.ldf, G, ldp, Ks, D.ldh, TT, D.hdp);
        __syncwarp();
    }

    if (qi < T && (qs >= 0 || !accumulate)) {  // padding: no gradient (0 when written)
        size_t base = ((size_t)b * T + qi) * H + h;
        for (int d = half * (D.hdp / 2); d < (half + 1) * (D.hdp / 2) && d < hd; d++) {
            float g = qs < 0 ? 0.0f : A[r * D.ldf + d];
            dq[base * hd + d] = accumulate ? dq[base * hd + d] + g : g;
        }
    }
}

// --- backward: dk, dv ------------------------------------------------------------------------
// grid (ceil(T/TT), KVH, B): a block owns TT keys (16 a warp) and sums over every query head of
// the kv group and every query of each key's sample at or after it, KQT queries a tile.
// shared: Kb, Vb (TT, ldh), Qs, dOs (KQT, ldh) bf16; per warp S (WR, KQT+4) fp32, P, G
// (WR, KQT+8) bf16, dK, dV (WR, ldf) fp32; per query of the tile lse, D and its sample's start.
struct dkdv_smem {
    bf16 *Kb, *Vb, *Qs, *dOs, *P, *G;
    float *S, *dK, *dV, *Ls, *Ds;
    int *Ss, *range;
};
__host__ __device__ inline size_t dkdv_layout(tc_dims D, unsigned char *base, dkdv_smem *m) {
    smem_carve c{base, 0};
    m->Kb = (bf16 *)c.take((size_t)TT * D.ldh * sizeof(bf16));
    m->Vb = (bf16 *)c.take((size_t)TT * D.ldh * sizeof(bf16));
    m->Qs = (bf16 *)c.take((size_t)KQT * D.ldh * sizeof(bf16));
    m->dOs = (bf16 *)c.take((size_t)KQT * D.ldh * sizeof(bf16));
    m->S = (float *)c.take((size_t)NW * WR * ld_score(KQT) * sizeof(float));
    m->P = (bf16 *)c.take((size_t)NW * WR * ld_prob(KQT) * sizeof(bf16));
    m->G = (bf16 *)c.take((size_t)NW * WR * ld_prob(KQT) * sizeof(bf16));
    m->dK = (float *)c.take((size_t)NW * WR * D.ldf * sizeof(float));
    m->dV = (float *)c.take((size_t)NW * WR * D.ldf * sizeof(float));
    m->Ls = (float *)c.take(KQT * sizeof(float));
    m->Ds = (float *)c.take(KQT * sizeof(float));
    m->Ss = (int *)c.take(KQT * sizeof(int));
    m->range = (int *)c.take(2 * sizeof(int));
    return c.used;
}

__global__ void __launch_bounds__(NW * 32)
attention_tc_dkdv_kernel(float *dk, float *dv, const bf16 *dout, const bf16 *q, const bf16 *k,
                         const bf16 *v, const float *lse, const float *Dl, const int32_t *start,
                         const int32_t *end, int T, int H, int KVH, int hd, float scale, int accumulate) {
    SHARED_DYNAMIC(unsigned char, smem, 128);
    const tc_dims D = tc_dims_of(hd);
    dkdv_smem sm;
    dkdv_layout(D, smem, &sm);
    bf16 *Kb = sm.Kb, *Vb = sm.Vb, *Qs = sm.Qs, *dOs = sm.dOs, *Pw = sm.P, *Gw = sm.G;
    float *Sw = sm.S, *dKw = sm.dK, *dVw = sm.dV, *Ls = sm.Ls, *Ds = sm.Ds;
    int *Ss = sm.Ss, *range = sm.range;
    const int b = blockIdx.z, g = blockIdx.y, k0 = blockIdx.x * TT, rep = H / KVH;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int32_t *st = start + (size_t)b * T, *en = end + (size_t)b * T;
    const int lds = ld_score(KQT), ldp = ld_prob(KQT);

    load_tile(Kb, k, b, T, KVH, g, k0, TT, hd, D);
    load_tile(Vb, v, b, T, KVH, g, k0, TT, hd, D);
    zero_f32(dKw, NW * WR * D.ldf);
    zero_f32(dVw, NW * WR * D.ldf);
    if (threadIdx.x < 32) block_key_range(st, en, k0, TT, T, range);
    __syncthreads();
    const int qlo = range[0], qhi = range[1];

    // This lane's key row (two lanes a key) and half of the query tile's columns.
    const int r = lane >> 1, half = lane & 1;
    const int kj = k0 + warp * WR + r, ks = kj < T ? st[kj] : -1, ke = kj < T ? en[kj] : -1;
    // The queries any key of this warp is seen by: [wlo, whi).
    const int wlo = warp_min_int(ks >= 0 ? kj : INT_MAX), whi = warp_max_int(ks >= 0 ? ke : 0);
    const bf16 *Kw = Kb + warp * WR * D.ldh, *Vw = Vb + warp * WR * D.ldh;
    float *S = Sw + warp * WR * lds, *dK = dKw + warp * WR * D.ldf, *dV = dVw + warp * WR * D.ldf;
    bf16 *P = Pw + warp * WR * ldp, *G = Gw + warp * WR * ldp;
    float *srow = S + r * lds + half * (KQT / 2);
    bf16 *prow = P + r * ldp + half * (KQT / 2), *grow = G + r * ldp + half * (KQT / 2);

    for (int h = g * rep; h < (g + 1) * rep; h++)
        for (int qt = qlo; qt < qhi; qt += KQT) {
            __syncthreads();
            load_tile(Qs, q, b, T, H, h, qt, KQT, hd, D);
            load_tile(dOs, dout, b, T, H, h, qt, KQT, hd, D);
            load_query_stats(Ls, Ds, Ss, lse, Dl, st, b, T, H, h, qt, KQT);
            __syncthreads();
            if (whi <= qt || wlo >= qt + KQT) continue;  // warp-uniform

            mma_abt(S, lds, Kw, D.ldh, Qs, D.ldh, KQT, D.hdp);  // S^T: keys x queries
            __syncwarp();
            float p[KQT / 2];
#pragma unroll
            for (int c = 0; c < KQT / 2; c++) {
                int col = half * (KQT / 2) + c, i = qt + col;
                bool ok = i < T && ks >= 0 && Ss[col] == ks && kj <= i;  // same sample, j <= i
                p[c] = ok ? expf(__fsub_rn(__fmul_rn(srow[c], scale), Ls[col])) : 0.0f;
                prow[c] = __float2bfloat16_rn(p[c]);
            }
            __syncwarp();
            mma_abt(S, lds, Vw, D.ldh, dOs, D.ldh, KQT, D.hdp);  // dP^T
            __syncwarp();
#pragma unroll
            for (int c = 0; c < KQT / 2; c++) {
                int col = half * (KQT / 2) + c;
                grow[c] = __float2bfloat16_rn(__fmul_rn(__fmul_rn(p[c], __fsub_rn(srow[c], Ds[col])), scale));
            }
            __syncwarp();
            mma_acc(dV, D.ldf, P, ldp, dOs, D.ldh, KQT, D.hdp);
            mma_acc(dK, D.ldf, G, ldp, Qs, D.ldh, KQT, D.hdp);
            __syncwarp();
        }

    if (kj < T && (ks >= 0 || !accumulate)) {  // padding keys are seen by nobody (0 when written)
        size_t ko = (((size_t)b * T + kj) * KVH + g) * hd;
        for (int d = half * (D.hdp / 2); d < (half + 1) * (D.hdp / 2) && d < hd; d++) {
            float gk = ks < 0 ? 0.0f : dK[r * D.ldf + d], gv = ks < 0 ? 0.0f : dV[r * D.ldf + d];
            dk[ko + d] = accumulate ? dk[ko + d] + gk : gk;
            dv[ko + d] = accumulate ? dv[ko + d] + gv : gv;
        }
    }
}

// --- host side -----------------------------------------------------------------------------------
// Heads up to VET_ATTN_MMA_MAX_HD wide run attention_mma.cu's register kernels (same numbers);
// the WMMA kernels above take wider heads, and every width when a test asks for them.
static int force_wmma = 0, use_cudnn = 0;
extern "C" void attention_tc_variant(int variant) {
    force_wmma = variant == 2;
    use_cudnn = variant == 5;
    attention_mma_set_variant(variant == 1, variant == 3, variant == 4);
}

// One output, and a bf16 one 4-byte aligned (attn_out::put2's stores); what: the caller's name.
static int check_out(const char *what, const void *out, const void *out16, vet_err *err) {
    if (!out == !out16)
        return vet_errf(err, "%s:%d: %s: give out or out16, not %s", __FILE__, __LINE__, what, out ? "both" : "neither");
    if ((uintptr_t)out16 % 4)
        return vet_errf(err, "%s:%d: %s: out16 is not 4-byte aligned", __FILE__, __LINE__, what);
    return 0;
}

extern "C" int attention_forward_bf16_cuda(vet_cuda *ctx, float *out32, uint16_t *out16, float *lse,
                                           const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                           const int32_t *seg, int B, int T, int H, int KVH, int hd, void *scratch,
                                           vet_err *err) {
    if (check_out("attention_forward_bf16", out32, out16, err) < 0) return -1;
    const attn_out out = {out32, out16};
    attention_scratch s = {};
    int ready = attention_prepare(ctx, seg, NULL, attn_in{}, B, T, H, KVH, hd, scratch, &s, err);
    if (ready != 0) return ready < 0 ? -1 : 0;
    const int32_t *start = s.start;
    if (use_cudnn) return attention_forward_cudnn(ctx, out32, out16, lse, q, k, v, start, B, T, H, KVH, hd, err);
    if (!force_wmma) {
        int done = attention_mma_forward(ctx, out, lse, q, k, v, start, B, T, H, KVH, hd, err);
        if (done <= 0) return done;
    }
    const tc_dims D = tc_dims_of(hd);
    fwd_smem none;
    size_t smem = fwd_layout(D, nullptr, &none);
    SMEM_OPT_IN(attention_tc_forward_kernel, smem, err);
    LAUNCH(attention_tc_forward_kernel, dim3(ceil_div(T, TT), H, B), NW * 32, smem, ctx->stream, out, lse,
           (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, start, T, H, KVH, hd, 1.0f / sqrtf((float)hd));
    LAUNCH_CHECK("attention_forward_bf16", err);
    return 0;
}

extern "C" int attention_backward_bf16_cuda(vet_cuda *ctx, float *dq, float *dk, float *dv,
                                            const float *dout, const uint16_t *dout16, const uint16_t *q,
                                            const uint16_t *k, const uint16_t *v, const float *out,
                                            const uint16_t *out16, const float *lse, const int32_t *seg, int B, int T,
                                            int H, int KVH, int hd, int accumulate, void *scratch, vet_err *err) {
    if (check_out("attention_backward_bf16", out, out16, err) < 0) return -1;
    attention_scratch s = {};
    // (cuDNN computes D itself, from the bf16 output and dout16)
    int ready = attention_prepare(ctx, seg, use_cudnn ? NULL : dout, attn_in{out, out16}, B, T, H, KVH, hd, scratch,
                                  &s, err);
    if (ready != 0) return ready < 0 ? -1 : 0;
    if (use_cudnn)
        return attention_backward_cudnn(ctx, dq, dk, dv, dout16, q, k, v, out, out16, lse, s.start, B, T, H, KVH, hd,
                                        accumulate, err);
    const int32_t *start = s.start, *end = s.end;
    const float *Dl = s.D, scale = 1.0f / sqrtf((float)hd);
    if (!force_wmma) {
        int done = attention_mma_backward(ctx, dq, dk, dv, dout16, q, k, v, lse, Dl, start, end, B, T, H, KVH, hd,
                                          accumulate, err);
        if (done <= 0) return done;
    }
    const tc_dims D = tc_dims_of(hd);

    dq_smem none_dq;
    size_t smem_dq = dq_layout(D, nullptr, &none_dq);
    SMEM_OPT_IN(attention_tc_dq_kernel, smem_dq, err);
    LAUNCH(attention_tc_dq_kernel, dim3(ceil_div(T, TT), H, B), NW * 32, smem_dq, ctx->stream, dq,
           (const bf16 *)dout16, (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, lse, Dl, start, T, H, KVH, hd,
           scale, accumulate);
    LAUNCH_CHECK("attention_backward_bf16 (dq)", err);

    dkdv_smem none_kv;
    size_t smem_kv = dkdv_layout(D, nullptr, &none_kv);
    SMEM_OPT_IN(attention_tc_dkdv_kernel, smem_kv, err);
    LAUNCH(attention_tc_dkdv_kernel, dim3(ceil_div(T, TT), KVH, B), NW * 32, smem_kv, ctx->stream, dk, dv,
           (const bf16 *)dout16, (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, lse, Dl, start, end, T, H, KVH,
           hd, scale, accumulate);
    LAUNCH_CHECK("attention_backward_bf16 (dk, dv)", err);
    return 0;
}
