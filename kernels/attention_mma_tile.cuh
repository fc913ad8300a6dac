// attention_mma_tile.cuh — the pieces of the register attention (attention_mma.cu's kernels,
// whose tiles load synchronously, and attention_pipe.cu's, whose tiles arrive by asynchronous
// copies while the previous one computes): fragment loads and products on PTX mma.sync m16n8k16,
// the tile loader, and each kernel's work on one tile, so that both kinds of kernel compute the
// same numbers by the same code. Included by those two files only (its macros are theirs).
//
// The numbers are attention_tc.cu's: the same tiles (64 queries a block, 64 keys a tile from the
// block's first visible key; 64 keys and 32-query tiles in dk/dv), the same running max, the
// same bf16 rounding of q, k, v, dout, p and dS, the same fp32 formulas (__fmul_rn, __fsub_rn),
// except the softmax of the EX2 kernels (below: ex2 where attention_tc.cu has expf); only fp32
// summation order differs. lib/model/ops_attention_bf16.c replays the EX2 kernels on the CPU.
//
// Fragments (lane = 4 g + t): A (16x16): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..),
// a3 = (g+8, 2t+8..); B (16x8, k x n): b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g); C (16x8):
// c0, c1 = (g, 2t, 2t+1), c2, c3 = (g+8, 2t, 2t+1). Each register holds two bf16, the lower
// column (or k) in the low half. A thread therefore owns rows g and g+8 of its warp's 16.
#ifndef VET_ATTENTION_MMA_TILE_CUH
#define VET_ATTENTION_MMA_TILE_CUH

#include <limits.h>

#include "attention_mma.cuh"
#include "attention_ranges.cuh"
#include "mma_frag.cuh"
#include "mma_ops.cuh"

#define TT VET_ATTN_TC_TILE  // queries a block and keys a tile (forward, dq); keys a block (dk/dv)
#define KQT 32               // queries a tile in dk/dv (as attention_tc.cu)
#define NW 4                 // warps a block, 16 rows each
#define FULL 0xffffffffu
static_assert(TT == NW * 16, "a block's warps cover its rows");

typedef __nv_bfloat16 bf16;

// The host sides': q, k, v, dout come as uint16_t (ops_cuda.h), the kernels take bf16; a pointer
// allows the 16-byte loads and copies when it is 16-byte aligned (NULL: not read).
static inline const bf16 *as_bf16(const uint16_t *p) { return (const bf16 *)p; }
static inline bool aligned16(const void *p) { return p == nullptr || ((uintptr_t)p & 15) == 0; }

__device__ __forceinline__ unsigned ld_pair(const bf16 *p) { return *(const unsigned *)p; }

// A fragment of X (row-major, ld): rows 0..15, columns 0..15 from X.
__device__ __forceinline__ void frag_a(unsigned a[4], const bf16 *X, int ld, int g, int t) {
    const bf16 *p = X + g * ld + 2 * t;
    a[0] = ld_pair(p);
    a[1] = ld_pair(p + 8 * ld);
    a[2] = ld_pair(p + 8);
    a[3] = ld_pair(p + 8 * ld + 8);
}

// B fragment with B[k][n] = Y[n][k], Y row-major (ld): n 0..7, k 0..15 from Y.
__device__ __forceinline__ void frag_b(unsigned b[2], const bf16 *Y, int ld, int g, int t) {
    const bf16 *p = Y + g * ld + 2 * t;
    b[0] = ld_pair(p);
    b[1] = ld_pair(p + 8);
}

// ldmatrix.x4 (mma_frag.cuh says which row each lane hands it): four 8x8 blocks of 16-bit
// elements from shared memory into fragments, one instruction for what frag_a / frag_b read with
// four or two 32-bit loads a thread; .trans reads B operands out of [k][n] tiles, so no tile
// needs a transposed copy in shared memory.
__device__ __forceinline__ void ldsm_x4(unsigned r[4], const bf16 *p) {
#ifdef VET_SIMT_EMU
    emu_ldmatrix_x4(r, p, false);
#else
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
#endif
}
__device__ __forceinline__ void ldsm_x4_trans(unsigned r[4], const bf16 *p) {
#ifdef VET_SIMT_EMU
    emu_ldmatrix_x4(r, p, true);
#else
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
#endif
}

// An A fragment of 16 columns (two C tiles side by side, s[0] left, s[1] right) rounded to bf16.
__device__ __forceinline__ void c_to_a(unsigned a[4], const float *s0, const float *s1) {
    a[0] = pack_bf16(s0[0], s0[1]);
    a[1] = pack_bf16(s0[2], s0[3]);
    a[2] = pack_bf16(s1[0], s1[1]);
    a[3] = pack_bf16(s1[2], s1[3]);
}

// The backward's two score-shaped products of a warp's 16 rows, in one pass over the head:
// s (16 x 8 NT) = X Y^T and dp = Z W^T, X and Z (16 rows, ld) the A sides, Y and W (8 NT rows,
// ld) the B sides, all bf16 row-major with KC 16-column steps. LDM: fragments by ldmatrix.
template <int KC, int NT, bool LDM>
__device__ __forceinline__ void two_products(float s[NT][4], float dp[NT][4], const bf16 *X, const bf16 *Y,
                                             const bf16 *Z, const bf16 *W, int ld, int g, int t) {
    static_assert(NT % 2 == 0, "ldmatrix.x4 fills two n tiles");
    const int lane = 4 * g + t, oa = ldsm_offset_down_first(lane, ld), ob = ldsm_offset_right_first(lane, ld);
#pragma unroll
    for (int nt = 0; nt < NT; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) s[nt][e] = dp[nt][e] = 0.0f;
#pragma unroll
    for (int kc = 0; kc < KC; kc++) {
        unsigned ax[4], az[4];
        if constexpr (LDM) {
            ldsm_x4(ax, X + kc * 16 + oa);
            ldsm_x4(az, Z + kc * 16 + oa);
        } else {
            frag_a(ax, X + kc * 16, ld, g, t);
            frag_a(az, Z + kc * 16, ld, g, t);
        }
#pragma unroll
        for (int nt = 0; nt < NT; nt += 2) {
            unsigned by[4], bw[4];  // b0, b1 of n tile nt, then of nt + 1
            if constexpr (LDM) {
                ldsm_x4(by, Y + nt * 8 * ld + kc * 16 + ob);
                ldsm_x4(bw, W + nt * 8 * ld + kc * 16 + ob);
            } else {
                frag_b(by, Y + nt * 8 * ld + kc * 16, ld, g, t);
                frag_b(by + 2, Y + (nt + 1) * 8 * ld + kc * 16, ld, g, t);
                frag_b(bw, W + nt * 8 * ld + kc * 16, ld, g, t);
                frag_b(bw + 2, W + (nt + 1) * 8 * ld + kc * 16, ld, g, t);
            }
            mma_bf16(s[nt], ax, by);
            mma_bf16(dp[nt], az, bw);
            mma_bf16(s[nt + 1], ax, by + 2);
            mma_bf16(dp[nt + 1], az, bw + 2);
        }
    }
}

// acc (16 x 16 KC, as 2 KC tiles of 8 columns) += bf16(p) Y: p (16 x 16 NC) in accumulator
// tiles, Y (16 NC x 16 KC). O += P V, dQ += dS K, dV += P^T dO, dK += dS^T Q. LDM: Y is the
// row-major tile (ld), read by ldmatrix.trans; otherwise Y is given transposed (a row per output
// column, ld), read by 32-bit loads.
template <int KC, int NC, bool LDM>
__device__ __forceinline__ void acc_product(float acc[2 * KC][4], float p[2 * NC][4], const bf16 *Y, int ld, int g,
                                            int t) {
    const int ot = ldsm_offset_down_first(4 * g + t, ld);
#pragma unroll
    for (int c = 0; c < NC; c++) {  // 16 rows of Y at a time
        unsigned pa[4];
        c_to_a(pa, p[2 * c], p[2 * c + 1]);
#pragma unroll
        for (int dn = 0; dn < 2 * KC; dn += 2) {
            unsigned by[4];  // b0, b1 of output tile dn, then of dn + 1
            if constexpr (LDM) {
                ldsm_x4_trans(by, Y + c * 16 * ld + dn * 8 + ot);
            } else {
                frag_b(by, Y + dn * 8 * ld + c * 16, ld, g, t);
                frag_b(by + 2, Y + (dn + 1) * 8 * ld + c * 16, ld, g, t);
            }
            mma_bf16(acc[dn], pa, by);
            mma_bf16(acc[dn + 1], pa, by + 2);
        }
    }
}

// Row rr (0: the thread's row g, 1: g + 8) of the accumulator tiles into a gradient row dst
// (hd wide): += with accumulate, else =. A padding row (pad) gets no gradient: 0 when written.
template <int KC>
__device__ __forceinline__ void store_grad_row(float *dst, const float acc[2 * KC][4], int rr, int t, int hd,
                                               bool pad, int accumulate) {
    if (pad && accumulate) return;
#pragma unroll
    for (int dn = 0; dn < 2 * KC; dn++)
#pragma unroll
        for (int c = 0; c < 2; c++) {
            const int d = dn * 8 + 2 * t + c;
            if (d >= hd) continue;
            const float v = pad ? 0.0f : acc[dn][2 * rr + c];
            dst[d] = accumulate ? dst[d] + v : v;
        }
}

// Rows r0..r0+N-1 of head `head` of x (B,T,nh,hd, bf16: q, k, v, dout as their callers give
// them) into rm (row-major, N x ldr) and/or tr (transposed, HDP x ldt: tr[d ldt + r]); rows past
// T and columns past hd are 0.
//
// Why batches: a loop that loads and stores one element an iteration can wait for each load
// before the next (on the 2026-12-04 H200 runs these kernels, then loading fp32 that way, ran at
// ~13 TFLOP/s, mid size, forward). Here a thread issues up to BATCH 16-byte loads (when hd is a
// multiple of 8 and the tensors 16-byte aligned: `vec`), then stores them; a 64 x 128 tile is one
// such round.
template <int HDP, int N>
__device__ __forceinline__ void load_rows(bf16 *rm, int ldr, bf16 *tr, int ldt, const bf16 *x, int b, int T, int nh,
                                          int head, int r0, int hd, bool vec) {
    constexpr int THREADS = NW * 32, BATCH = 8;  // 16-byte loads in flight a thread (the accumulators keep the rest)
    constexpr int E = 8;                         // elements a load
    if (vec) {
        constexpr int VECS = N * HDP / E, PER = (VECS + THREADS - 1) / THREADS;
#pragma unroll 1
        for (int k0 = 0; k0 < PER; k0 += BATCH) {
            uint4 val[BATCH];
#pragma unroll
            for (int k = 0; k < BATCH; k++) {
                const int idx = threadIdx.x + (k0 + k) * THREADS, r = idx / (HDP / E), d = idx % (HDP / E) * E;
                const int i = r0 + r;
                val[k] = k0 + k < PER && idx < VECS && i < T && d < hd
                             ? __ldg((const uint4 *)(x + (((size_t)b * T + i) * nh + head) * hd + d))
                             : make_uint4(0u, 0u, 0u, 0u);
            }
#pragma unroll
            for (int k = 0; k < BATCH; k++) {
                const int idx = threadIdx.x + (k0 + k) * THREADS, r = idx / (HDP / E), d = idx % (HDP / E) * E;
                if (k0 + k >= PER || idx >= VECS) continue;
                const uint4 w = val[k];
                if (rm) *(uint4 *)(rm + r * ldr + d) = w;  // 16-byte aligned (ldr % 8 == 0)
                if (tr) {
                    const unsigned word[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
                    for (int e = 0; e < 8; e++)
                        tr[(d + e) * ldt + r] = __ushort_as_bfloat16((unsigned short)(word[e >> 1] >> (16 * (e & 1))));
                }
            }
        }
        return;
    }
    // One element an iteration: rare (hd not a multiple of 8), and batched it would double the
    // kernels' machine code.
#pragma unroll 1
    for (int idx = threadIdx.x; idx < N * HDP; idx += THREADS) {
        const int r = idx / HDP, d = idx % HDP, i = r0 + r;
        const bf16 h = i < T && d < hd ? x[(((size_t)b * T + i) * nh + head) * hd + d] : __float2bfloat16_rn(0.0f);
        if (rm) rm[r * ldr + d] = h;
        if (tr) tr[d * ldt + r] = h;
    }
}

// Over the four lanes of a quad (the lanes holding one row's columns).
__device__ __forceinline__ float quad_max(float x) {
    x = fmaxf(x, __shfl_xor_sync(FULL, x, 1));
    return fmaxf(x, __shfl_xor_sync(FULL, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
    x = __fadd_rn(x, __shfl_xor_sync(FULL, x, 1));
    return __fadd_rn(x, __shfl_xor_sync(FULL, x, 2));
}

// --- the softmax's arithmetic -------------------------------------------------------------------
// Two forms, chosen by each kernel's EX2 flag. With EX2 (the kernels on ldmatrix fragments, the
// default): the running max is taken over unscaled scores, and a probability is a multiply, a
// subtraction and one ex2.approx, p = 2^(s scale log2(e) - m scale log2(e)), FlashAttention-2's
// form (not its fused multiply-add: rounded apart, the row's maximum gets p = 1 exactly, as with
// expf, so a one-key sample's output is its value bit for bit); the backward's p = 2^(s scale
// log2(e) - lse log2(e)), one fused multiply-add. Without it (the first lease's
// kernels on transposed tiles, kept as run.sh's measured fallback): s scaled first, then
// expf(s - m), a range reduction and a polynomial, and a test for -inf besides.
//
// Why: on m16n8k16 a warp spends 16 mma on 128 scores of a 128-wide head, 4 scores a lane, while
// the softmax took ~20 scalar instructions a score (the mask, the scale, the max, expf, the sum):
// the scalar pipes, not the tensor cores, set the pace. ex2.approx.ftz is within 2 ulp (2^-inf is
// +0, subnormal results flush to 0, far below what a bf16 probability keeps), so the values stay
// within the parity test's tolerance of the CPU replay (ops_attention_bf16.c, which computes the
// EX2 form with exp2f and fmaf).
#define LOG2E_F 1.44269504088896341f
__device__ __forceinline__ float ex2(float x) {
#ifdef VET_SIMT_EMU
    return exp2f(x);
#else
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
#endif
}

template <int KC> struct mma_dims {
    static constexpr int HDP = KC * 16;  // head_dim padded with zeros to 16 KC
    static constexpr int LDH = HDP + 8;  // row-major tiles of HDP columns
    static constexpr int LDK = TT + 8;   // transposed tiles of TT rows
    static constexpr int LDQ = KQT + 8;  // transposed tiles of KQT rows
};


// --- a warp's rows, and what it sees ------------------------------------------------------------
// The thread's query rows g and g+8 of its warp's 16 (from i0): index qi, sample start qs (-1:
// padding or past T); wlo, whi: the keys any row of the warp sees (warp-uniform).
// smax, qmin: the largest sample start of the warp's rows (INT_MAX if one is padding or past T)
// and its first row: whole(kt) says every row of the warp sees every key of the tile kt.., so
// the mask can be skipped (warp-uniform; attention_ranges.cuh).
struct query_rows {
    int qi[2], qs[2], wlo, whi, smax, qmin;
    __device__ __forceinline__ bool whole(int kt) const { return queries_see_whole_tile(smax, qmin, kt, TT); }
};
__device__ __forceinline__ query_rows query_rows_of(const int32_t *st, int i0, int warp, int g, int T) {
    query_rows q;
    int lo = INT_MAX, hi = 0, smax = 0;
    for (int rr = 0; rr < 2; rr++) {
        q.qi[rr] = i0 + warp * 16 + g + 8 * rr;
        q.qs[rr] = q.qi[rr] < T ? st[q.qi[rr]] : -1;
        if (q.qs[rr] >= 0) lo = min(lo, q.qs[rr]), hi = max(hi, q.qi[rr] + 1);
        smax = max(smax, start_or_never(q.qs[rr]));
    }
    q.wlo = warp_min_int(lo), q.whi = warp_max_int(hi);
    q.smax = warp_max_int(smax), q.qmin = i0 + warp * 16;
    return q;
}

// The thread's key rows g and g+8 of its warp's 16 (from k0): index kj, sample start ks; wlo,
// whi: the queries that see some key of the warp (warp-uniform).
// kstart, kend, kmax: the one sample all 16 keys of the warp belong to ([kstart, kend); kstart
// -1 when they are not one sample's, or one is padding or past T) and the warp's last key:
// whole(qt) says every key of the warp is seen by every query of the tile qt.. (warp-uniform).
struct key_rows {
    int kj[2], ks[2], wlo, whi, kstart, kend, kmax;
    __device__ __forceinline__ bool whole(int qt) const { return keys_seen_by_whole_tile(kstart, kend, kmax, qt, KQT); }
};
__device__ __forceinline__ key_rows key_rows_of(const int32_t *st, const int32_t *en, int k0, int warp, int g,
                                                int T) {
    key_rows k;
    int lo = INT_MAX, hi = 0, elo = INT_MAX;
    for (int rr = 0; rr < 2; rr++) {
        k.kj[rr] = k0 + warp * 16 + g + 8 * rr;
        k.ks[rr] = k.kj[rr] < T ? st[k.kj[rr]] : -1;
        if (k.ks[rr] >= 0) lo = min(lo, k.kj[rr]), hi = max(hi, (int)en[k.kj[rr]]), elo = min(elo, (int)en[k.kj[rr]]);
    }
    k.wlo = warp_min_int(lo), k.whi = warp_max_int(hi);
    const int smin = warp_min_int(min(k.ks[0], k.ks[1])), smax = warp_max_int(max(k.ks[0], k.ks[1]));
    k.kstart = smin == smax ? smin : -1;  // -1 too when a key is padding (smin -1)
    k.kend = warp_min_int(elo), k.kmax = k0 + warp * 16 + 15;
    return k;
}

// --- forward: one key tile ------------------------------------------------------------------
// For a warp's 16 query rows (Q fragments qa): S = Q K^T over the key tile kt.. (Ks: (TT, LDH)),
// masked (the sample's keys up to the query; not at all in a WHOLE tile), the running max m and
// sum l updated, O rescaled and O += bf16(P) V. V's tile: row-major (TT, LDH) with LDM, else
// transposed (HDP, LDK). m is the max of unscaled scores with EX2, of scaled ones without.
template <int KC, bool LDM, bool EX2, bool WHOLE>
__device__ __forceinline__ void forward_tile_as(float (&o)[2 * KC][4], float (&m)[2], float (&l)[2],
                                                const unsigned (&qa)[KC][4], const bf16 *Ks, const bf16 *Vt, int kt,
                                                const query_rows &q, float scale, int g, int t) {
    static_assert(EX2 || !WHOLE, "whole tiles are the EX2 kernels' (the fallback keeps its arithmetic)");
    typedef mma_dims<KC> M;
    const int ob = ldsm_offset_right_first(4 * g + t, M::LDH);
    float s[TT / 8][4];  // S = Q K^T, then the masked scores, then p
#pragma unroll
    for (int nt = 0; nt < TT / 8; nt += 2) {
#pragma unroll
        for (int e = 0; e < 4; e++) s[nt][e] = s[nt + 1][e] = 0.0f;
#pragma unroll
        for (int kc = 0; kc < KC; kc++) {
            unsigned bk[4];  // b0, b1 of key tile nt, then of nt + 1
            if constexpr (LDM) {
                ldsm_x4(bk, Ks + nt * 8 * M::LDH + kc * 16 + ob);
            } else {
                frag_b(bk, Ks + nt * 8 * M::LDH + kc * 16, M::LDH, g, t);
                frag_b(bk + 2, Ks + (nt + 1) * 8 * M::LDH + kc * 16, M::LDH, g, t);
            }
            mma_bf16(s[nt], qa[kc], bk);
            mma_bf16(s[nt + 1], qa[kc], bk + 2);
        }
    }
    float mt[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < TT / 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int rr = e >> 1;
            if constexpr (!WHOLE) {
                const int j = kt + nt * 8 + 2 * t + (e & 1);
                const bool seen = q.qs[rr] >= 0 && j >= q.qs[rr] && j <= q.qi[rr];
                s[nt][e] = seen ? (EX2 ? s[nt][e] : __fmul_rn(s[nt][e], scale)) : -INFINITY;
            }
            mt[rr] = fmaxf(mt[rr], s[nt][e]);
        }
    const float scale2 = __fmul_rn(scale, LOG2E_F);
    float mn[2], base[2], corr[2], ps[2] = {0.0f, 0.0f};
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        mn[rr] = fmaxf(m[rr], quad_max(mt[rr]));
        if constexpr (EX2) {
            // The exponents' offset m scale log2(e); 0 while the row has seen no key (all its
            // scores are -inf then, and 2^-inf = 0): no test a score.
            base[rr] = mn[rr] == -INFINITY ? 0.0f : __fmul_rn(mn[rr], scale2);
            corr[rr] = ex2(__fsub_rn(__fmul_rn(m[rr], scale2), base[rr]));  // m = -inf: 0
        } else {
            corr[rr] = m[rr] == -INFINITY ? 0.0f : expf(m[rr] - mn[rr]);  // m finite: mn too
        }
    }
#pragma unroll
    for (int nt = 0; nt < TT / 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int rr = e >> 1;
            float p;
            if constexpr (EX2)
                p = ex2(__fsub_rn(__fmul_rn(s[nt][e], scale2), base[rr]));
            else
                p = s[nt][e] == -INFINITY ? 0.0f : expf(s[nt][e] - mn[rr]);
            ps[rr] = __fadd_rn(ps[rr], p);
            s[nt][e] = p;
        }
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        l[rr] = __fadd_rn(__fmul_rn(l[rr], corr[rr]), quad_sum(ps[rr]));
        m[rr] = mn[rr];
    }
#pragma unroll
    for (int dn = 0; dn < 2 * KC; dn++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[dn][e] = __fmul_rn(o[dn][e], corr[e >> 1]);
    acc_product<KC, TT / 16, LDM>(o, s, Vt, LDM ? M::LDH : M::LDK, g, t);  // O += bf16(p) V
}
template <int KC, bool LDM, bool EX2>
__device__ __forceinline__ void forward_tile(float (&o)[2 * KC][4], float (&m)[2], float (&l)[2],
                                             const unsigned (&qa)[KC][4], const bf16 *Ks, const bf16 *Vt, int kt,
                                             const query_rows &q, float scale, int g, int t) {
    if (EX2 && q.whole(kt))
        forward_tile_as<KC, LDM, EX2, EX2>(o, m, l, qa, Ks, Vt, kt, q, scale, g, t);
    else
        forward_tile_as<KC, LDM, EX2, false>(o, m, l, qa, Ks, Vt, kt, q, scale, g, t);
}

// The rows' output O / l and lse = m + log l in natural units (m scale + log l with EX2, whose m
// is unscaled); padding queries: zero output, lse 0 (as the CPU).
template <int KC, bool EX2>
__device__ __forceinline__ void forward_store(attn_out out, float *lse, const float (&o)[2 * KC][4], const float (&m)[2],
                                              const float (&l)[2], const query_rows &q, int b, int T, int H, int h,
                                              int hd, float scale, int t) {
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        if (q.qi[rr] >= T) continue;
        const size_t qo = ((size_t)b * T + q.qi[rr]) * H + h;
        const bool pad = q.qs[rr] < 0;
        const float inv = pad ? 0.0f : 1.0f / l[rr];
#pragma unroll
        for (int dn = 0; dn < 2 * KC; dn++) {
            const int d = dn * 8 + 2 * t;  // and d + 1: hd is even
            if (d < hd) out.put2(qo * hd + d, __fmul_rn(o[dn][2 * rr], inv), __fmul_rn(o[dn][2 * rr + 1], inv));
        }
        if (t == 0) lse[qo] = pad ? 0.0f : EX2 ? __fmaf_rn(m[rr], scale, logf(l[rr])) : m[rr] + logf(l[rr]);
    }
}

// A probability in the backward from its unscaled score s and its row's lse: L2 is lse log2(e)
// with EX2, lse without.
template <bool EX2> __device__ __forceinline__ float backward_p(float s, float scale, float scale2, float L2) {
    if constexpr (EX2)
        return ex2(__fmaf_rn(s, scale2, -L2));
    else
        return expf(__fsub_rn(__fmul_rn(s, scale), L2));
}
template <bool EX2> __device__ __forceinline__ float backward_lse(float L) {
    return EX2 ? __fmul_rn(L, LOG2E_F) : L;
}

// --- backward, dq: one key tile ---------------------------------------------------------------
// For a warp's 16 query rows (Qw, dOw: their (16, LDH) tiles; L, Dq: their lse and D): S = Q K^T
// and dP = dO V^T over the key tile kt.. (Ks, Vs: (TT, LDH)), dS = p (dP - D) scale, dQ += bf16(dS)
// K. K read row-major with LDM, else from its transposed copy Kt (HDP, LDK).
template <int KC, bool LDM, bool EX2, bool WHOLE>
__device__ __forceinline__ void dq_tile_as(float (&acc)[2 * KC][4], const bf16 *Qw, const bf16 *dOw, const bf16 *Ks,
                                           const bf16 *Vs, const bf16 *Kt, int kt, const query_rows &q,
                                           const float (&L)[2], const float (&Dq)[2], float scale, int g, int t) {
    typedef mma_dims<KC> M;
    float s[TT / 8][4], dp[TT / 8][4];  // S = Q K^T and dP = dO V^T
    two_products<KC, TT / 8, LDM>(s, dp, Qw, Ks, dOw, Vs, M::LDH, g, t);
    const float scale2 = __fmul_rn(scale, LOG2E_F), L2[2] = {backward_lse<EX2>(L[0]), backward_lse<EX2>(L[1])};
#pragma unroll
    for (int nt = 0; nt < TT / 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {  // dS = p (dP - D) scale, into s
            const int rr = e >> 1;
            bool seen = true;
            if constexpr (!WHOLE) {
                const int j = kt + nt * 8 + 2 * t + (e & 1);
                seen = q.qs[rr] >= 0 && j >= q.qs[rr] && j <= q.qi[rr];
            }
            const float p = seen ? backward_p<EX2>(s[nt][e], scale, scale2, L2[rr]) : 0.0f;
            s[nt][e] = __fmul_rn(__fmul_rn(p, __fsub_rn(dp[nt][e], Dq[rr])), scale);
        }
    if constexpr (LDM)
        acc_product<KC, TT / 16, true>(acc, s, Ks, M::LDH, g, t);  // dQ += bf16(dS) K
    else
        acc_product<KC, TT / 16, false>(acc, s, Kt, M::LDK, g, t);
}
template <int KC, bool LDM, bool EX2>
__device__ __forceinline__ void dq_tile(float (&acc)[2 * KC][4], const bf16 *Qw, const bf16 *dOw, const bf16 *Ks,
                                        const bf16 *Vs, const bf16 *Kt, int kt, const query_rows &q,
                                        const float (&L)[2], const float (&Dq)[2], float scale, int g, int t) {
    if (EX2 && q.whole(kt))
        dq_tile_as<KC, LDM, EX2, EX2>(acc, Qw, dOw, Ks, Vs, Kt, kt, q, L, Dq, scale, g, t);
    else
        dq_tile_as<KC, LDM, EX2, false>(acc, Qw, dOw, Ks, Vs, Kt, kt, q, L, Dq, scale, g, t);
}

// The rows' lse and D (padding rows and rows past T: row 0's, unused).
__device__ __forceinline__ void query_stats_of(float (&L)[2], float (&Dq)[2], const float *lse, const float *Dl,
                                               const query_rows &q, int b, int T, int H, int h) {
    for (int rr = 0; rr < 2; rr++) {
        const size_t qo = ((size_t)b * T + (q.qi[rr] < T ? q.qi[rr] : 0)) * H + h;
        L[rr] = lse[qo], Dq[rr] = Dl[qo];
    }
}

template <int KC>
__device__ __forceinline__ void dq_store(float *dq, const float (&acc)[2 * KC][4], const query_rows &q, int b, int T,
                                         int H, int h, int hd, int t, int accumulate) {
#pragma unroll
    for (int rr = 0; rr < 2; rr++)
        if (q.qi[rr] < T)
            store_grad_row<KC>(dq + (((size_t)b * T + q.qi[rr]) * H + h) * hd, acc, rr, t, hd, q.qs[rr] < 0,
                               accumulate);
}

// --- backward, dk and dv: one query tile ----------------------------------------------------
// For a warp's 16 key rows (Kw, Vw: their (16, LDH) tiles): S^T = K Q^T and dP^T = V dO^T over
// the query tile qt.. of one head (Qs, dOs: (KQT, LDH); Ls, Ds, Ss: each query's lse, D, sample
// start), p and dS = p (dP - D) scale where the query sees the key (one sample, j <= i; every
// pair in a WHOLE tile), dV += bf16(p)^T dO and dK += bf16(dS)^T Q. Q and dO read row-major with
// LDM, else from their transposed copies Qt, dOt (HDP, LDQ).
template <int KC, bool LDM, bool EX2, bool WHOLE>
__device__ __forceinline__ void dkdv_tile_as(float (&gk)[2 * KC][4], float (&gv)[2 * KC][4], const bf16 *Kw,
                                             const bf16 *Vw, const bf16 *Qs, const bf16 *dOs, const bf16 *Qt,
                                             const bf16 *dOt, const float *Ls, const float *Ds, const int *Ss, int qt,
                                             int T, const key_rows &k, float scale, int g, int t) {
    typedef mma_dims<KC> M;
    float s[KQT / 8][4], dp[KQT / 8][4];  // S^T = K Q^T and dP^T = V dO^T: keys x queries
    two_products<KC, KQT / 8, LDM>(s, dp, Kw, Qs, Vw, dOs, M::LDH, g, t);
    const float scale2 = __fmul_rn(scale, LOG2E_F);
#pragma unroll
    for (int nt = 0; nt < KQT / 8; nt++)
#pragma unroll
        for (int c = 0; c < 2; c++) {  // the thread's two query columns of this n tile
            const int col = nt * 8 + 2 * t + c, i = qt + col;
            const float L2 = backward_lse<EX2>(Ls[col]), D = Ds[col];
#pragma unroll
            for (int rr = 0; rr < 2; rr++) {  // p into s, dS into dp
                const int e = 2 * rr + c;
                bool seen = true;
                if constexpr (!WHOLE) seen = i < T && k.ks[rr] >= 0 && Ss[col] == k.ks[rr] && k.kj[rr] <= i;
                const float p = seen ? backward_p<EX2>(s[nt][e], scale, scale2, L2) : 0.0f;
                s[nt][e] = p;
                dp[nt][e] = __fmul_rn(__fmul_rn(p, __fsub_rn(dp[nt][e], D)), scale);
            }
        }
    if constexpr (LDM) {
        acc_product<KC, KQT / 16, true>(gv, s, dOs, M::LDH, g, t);  // dV += bf16(p)^T dO
        acc_product<KC, KQT / 16, true>(gk, dp, Qs, M::LDH, g, t);  // dK += bf16(dS)^T Q
    } else {
        acc_product<KC, KQT / 16, false>(gv, s, dOt, M::LDQ, g, t);
        acc_product<KC, KQT / 16, false>(gk, dp, Qt, M::LDQ, g, t);
    }
}
template <int KC, bool LDM, bool EX2>
__device__ __forceinline__ void dkdv_tile(float (&gk)[2 * KC][4], float (&gv)[2 * KC][4], const bf16 *Kw,
                                          const bf16 *Vw, const bf16 *Qs, const bf16 *dOs, const bf16 *Qt,
                                          const bf16 *dOt, const float *Ls, const float *Ds, const int *Ss, int qt,
                                          int T, const key_rows &k, float scale, int g, int t) {
    if (EX2 && k.whole(qt))
        dkdv_tile_as<KC, LDM, EX2, EX2>(gk, gv, Kw, Vw, Qs, dOs, Qt, dOt, Ls, Ds, Ss, qt, T, k, scale, g, t);
    else
        dkdv_tile_as<KC, LDM, EX2, false>(gk, gv, Kw, Vw, Qs, dOs, Qt, dOt, Ls, Ds, Ss, qt, T, k, scale, g, t);
}

// Padding keys are seen by nobody: no gradient (0 when written).
template <int KC>
__device__ __forceinline__ void dkdv_store(float *dk, float *dv, const float (&gk)[2 * KC][4],
                                           const float (&gv)[2 * KC][4], const key_rows &k, int b, int T, int KVH,
                                           int grp, int hd, int t, int accumulate) {
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        if (k.kj[rr] >= T) continue;
        const size_t ko = (((size_t)b * T + k.kj[rr]) * KVH + grp) * hd;
        store_grad_row<KC>(dk + ko, gk, rr, t, hd, k.ks[rr] < 0, accumulate);
        store_grad_row<KC>(dv + ko, gv, rr, t, hd, k.ks[rr] < 0, accumulate);
    }
}

template <int N, int M> __device__ __forceinline__ void zero_acc(float (&a)[N][M]) {
#pragma unroll
    for (int i = 0; i < N; i++)
#pragma unroll
        for (int j = 0; j < M; j++) a[i][j] = 0.0f;
}

#endif
