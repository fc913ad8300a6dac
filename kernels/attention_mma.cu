// attention_mma.cu — attention_tc.cu's algorithm (FlashAttention-2 over packed rows with GQA,
// bf16 operands, fp32 accumulation) with the products in registers: PTX mma.sync m16n8k16.
//
// Why a second version: attention_tc.cu's WMMA kernels keep their accumulators in shared memory
// (WMMA does not say which row a fragment element holds, so a row-wise rescale must go through
// memory) and reload them every tile. On the first H200 run (2026-12-04) that made attention half
// of a 7B LoRA step at ~10 TFLOP/s. m16n8k16's register layout is documented (PTX ISA, "Matrix
// Fragments for mma.m16n8k16"), so here the scores, the probabilities and the O / dQ / dK / dV
// accumulators stay in registers, and a probability tile goes from an accumulator straight into
// the next product's A operand.
//
// The numbers are attention_tc.cu's: the same tiles (64 queries a block, 64 keys a tile from the
// block's first visible key; 64 keys and 32-query tiles in dk/dv), the same running max, the
// same bf16 rounding of q, k, v, dout, p and dS, the same fp32 formulas (__fmul_rn, __fsub_rn);
// only fp32 summation order differs. lib/model/ops_attention_bf16.c replays them on the CPU.
//
// Fragments (lane = 4 g + t): A (16x16): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..),
// a3 = (g+8, 2t+8..); B (16x8, k x n): b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g); C (16x8):
// c0, c1 = (g, 2t, 2t+1), c2, c3 = (g+8, 2t, 2t+1). Each register holds two bf16, the lower
// column (or k) in the low half. A thread therefore owns rows g and g+8 of its warp's 16.
//
// B operands are read from shared tiles stored [n][k]: K (and V for dP) row-major serve S = Q K^T
// directly; products over keys or queries (P V, dS K, P^T dO, dS^T Q) take their B operand
// transposed. The default kernels (template flag LDM) read every fragment with ldmatrix and the
// transposed ones with ldmatrix.trans from the same row-major tiles (mma_frag.cuh). The kernels
// of the first GPU run (LDM false, attention_tc_variant 3) had the loader also write V, K, dO, Q
// transposed ([d][row]): 2-byte stores a column apart, which by the row strides below fall 16 to a
// bank (a 16-way conflict on every store, ~4,000 cycles a 64 x 128 tile against ~700 for its
// products), the likely cause of the ~13 TFLOP/s measured. Row strides are padded by 8 elements
// so the eight rows of a fragment (or of an ldmatrix matrix) fall in distinct banks.
#include <limits.h>

#include "attention_mma.cuh"
#include "attention_ranges.cuh"
#include "mma_frag.cuh"

#define TT VET_ATTN_TC_TILE  // queries a block and keys a tile (forward, dq); keys a block (dk/dv)
#define KQT 32               // queries a tile in dk/dv (as attention_tc.cu)
#define NW 4                 // warps a block, 16 rows each
#define FULL 0xffffffffu
static_assert(TT == NW * 16, "a block's warps cover its rows");

typedef __nv_bfloat16 bf16;

// d (16x8 fp32) += a (16x16 bf16, row) . b (16x8 bf16, col)
__device__ __forceinline__ void mma_bf16(float d[4], const unsigned a[4], const unsigned b[2]) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ unsigned ld_pair(const bf16 *p) { return *(const unsigned *)p; }

__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);  // .x (lo) in the low half
    return *(unsigned *)&h;
}

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
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}
__device__ __forceinline__ void ldsm_x4_trans(unsigned r[4], const bf16 *p) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
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

// Rows r0..r0+N-1 of head `head` of x (B,T,nh,hd) as bf16 into rm (row-major, N x ldr) and/or
// tr (transposed, HDP x ldt: tr[d ldt + r]); rows past T and columns past hd are 0. x is bf16
// (q, k, v, dout, as their callers give them: the values these kernels once rounded fp32 to as
// they loaded); the fp32 form stays for tests of the loader.
//
// Why batches: a loop that loads, converts and stores one element an iteration can wait for each
// load before the next. On the 2026-12-04 H200 runs these kernels ran at ~13 TFLOP/s (mid size,
// forward), with ~128 such loads a thread a tile: one likely cause (the other, the transposed
// stores' bank conflicts, above), not yet confirmed by a profile. Here a thread issues BATCH
// 16-byte loads (when hd is a multiple of 8 and the tensors 16-byte aligned: `vec`), then
// converts and stores them; a 64 x 128 fp32 tile takes two such rounds, a bf16 one one.
__device__ __forceinline__ bf16 to_bf16(float x) { return __float2bfloat16_rn(x); }
__device__ __forceinline__ bf16 to_bf16(bf16 x) { return x; }

template <int HDP, int N, typename Tin>
__device__ __forceinline__ void load_rows(bf16 *rm, int ldr, bf16 *tr, int ldt, const Tin *x, int b, int T,
                                          int nh, int head, int r0, int hd, bool vec) {
    constexpr int THREADS = NW * 32, BATCH = 8;  // 16-byte loads in flight a thread (the accumulators keep the rest)
    constexpr int E = 16 / sizeof(Tin);          // elements a load: 4 fp32 or 8 bf16
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
                if constexpr (E == 4) {  // fp32: round to bf16 pairs
                    const unsigned lo = pack_bf16(__uint_as_float(w.x), __uint_as_float(w.y));
                    const unsigned hi = pack_bf16(__uint_as_float(w.z), __uint_as_float(w.w));
                    if (rm) *(uint2 *)(rm + r * ldr + d) = make_uint2(lo, hi);  // 8-byte aligned
                    if (tr) {
                        tr[(d + 0) * ldt + r] = __ushort_as_bfloat16((unsigned short)(lo & 0xffffu));
                        tr[(d + 1) * ldt + r] = __ushort_as_bfloat16((unsigned short)(lo >> 16));
                        tr[(d + 2) * ldt + r] = __ushort_as_bfloat16((unsigned short)(hi & 0xffffu));
                        tr[(d + 3) * ldt + r] = __ushort_as_bfloat16((unsigned short)(hi >> 16));
                    }
                } else {  // bf16: copied
                    if (rm) *(uint4 *)(rm + r * ldr + d) = w;  // 16-byte aligned (ldr % 8 == 0)
                    if (tr) {
                        const unsigned word[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
                        for (int e = 0; e < 8; e++)
                            tr[(d + e) * ldt + r] = __ushort_as_bfloat16((unsigned short)(word[e >> 1] >> (16 * (e & 1))));
                    }
                }
            }
        }
        return;
    }
    // One element an iteration, as before the batching: rare (hd not a multiple of 8), and
    // batched it would double the kernels' machine code.
#pragma unroll 1
    for (int idx = threadIdx.x; idx < N * HDP; idx += THREADS) {
        const int r = idx / HDP, d = idx % HDP, i = r0 + r;
        const bf16 h = i < T && d < hd ? to_bf16(x[(((size_t)b * T + i) * nh + head) * hd + d]) : to_bf16(0.0f);
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

template <int KC> struct mma_dims {
    static constexpr int HDP = KC * 16;  // head_dim padded with zeros to 16 KC
    static constexpr int LDH = HDP + 8;  // row-major tiles of HDP columns
    static constexpr int LDK = TT + 8;   // transposed tiles of TT rows
    static constexpr int LDQ = KQT + 8;  // transposed tiles of KQT rows
};

// --- forward ---------------------------------------------------------------------------------
// grid (ceil(T/TT), H, B). shared: Qs, Ks (TT, LDH) bf16, and V: with LDM row-major Vs (TT,
// LDH), else transposed Vt (HDP, LDK). Registers per thread: Q fragments (KC x 4), O (2 KC
// tiles x 4), scores (TT/8 tiles x 4).
template <int KC, bool LDM> __host__ __device__ constexpr size_t v_tile_elems() {
    return LDM ? (size_t)TT * mma_dims<KC>::LDH : (size_t)mma_dims<KC>::HDP * mma_dims<KC>::LDK;
}
template <int KC, bool LDM> __host__ __device__ constexpr size_t fwd_smem_bytes() {
    return (2 * (size_t)TT * mma_dims<KC>::LDH + v_tile_elems<KC, LDM>()) * sizeof(bf16) + 2 * sizeof(int);
}

template <int KC, bool LDM>
__global__ void __launch_bounds__(NW * 32)
attention_mma_forward_kernel(float *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                             const int32_t *start, int T, int H, int KVH, int hd, float scale, bool vec) {
    typedef mma_dims<KC> M;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Qs = (bf16 *)smem, *Ks = Qs + TT * M::LDH, *Vt = Ks + TT * M::LDH;  // V: row-major with LDM, else [d][key]
    int *range = (int *)(Vt + v_tile_elems<KC, LDM>());
    const int ldv = LDM ? M::LDH : M::LDK, ob = ldsm_offset_right_first(threadIdx.x & 31, M::LDH);
    const int b = blockIdx.z, h = blockIdx.y, grp = h / (H / KVH), i0 = blockIdx.x * TT;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int32_t *st = start + (size_t)b * T;

    load_rows<M::HDP, TT>(Qs, M::LDH, nullptr, 0, q, b, T, H, h, i0, hd, vec);
    if (threadIdx.x == 0) block_query_range(st, i0, TT, T, &range[0], &range[1]);
    __syncthreads();
    const int klo = range[0], khi = range[1];

    int qi[2], qs[2], lo = INT_MAX, hi = 0;  // this thread's rows g and g+8: index, sample start
    for (int rr = 0; rr < 2; rr++) {
        qi[rr] = i0 + warp * 16 + g + 8 * rr;
        qs[rr] = qi[rr] < T ? st[qi[rr]] : -1;
        if (qs[rr] >= 0) lo = min(lo, qs[rr]), hi = max(hi, qi[rr] + 1);
    }
    const int wlo = warp_min_int(lo), whi = warp_max_int(hi);  // the keys any row of the warp sees

    unsigned qa[KC][4];
#pragma unroll
    for (int kc = 0; kc < KC; kc++) frag_a(qa[kc], Qs + warp * 16 * M::LDH + kc * 16, M::LDH, g, t);
    float o[2 * KC][4];
#pragma unroll
    for (int dn = 0; dn < 2 * KC; dn++) o[dn][0] = o[dn][1] = o[dn][2] = o[dn][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

    for (int kt = klo; kt < khi; kt += TT) {
        __syncthreads();  // the previous tile is no longer read
        load_rows<M::HDP, TT>(Ks, M::LDH, nullptr, 0, k, b, T, KVH, grp, kt, hd, vec);
        if constexpr (LDM)
            load_rows<M::HDP, TT>(Vt, M::LDH, nullptr, 0, v, b, T, KVH, grp, kt, hd, vec);
        else
            load_rows<M::HDP, TT>(nullptr, 0, Vt, M::LDK, v, b, T, KVH, grp, kt, hd, vec);
        __syncthreads();
        if (whi <= kt || wlo >= kt + TT) continue;  // warp-uniform: no row of the warp sees the tile

        float s[TT / 8][4];  // S = Q K^T, then the scaled and masked scores, then p
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
                const int rr = e >> 1, j = kt + nt * 8 + 2 * t + (e & 1);
                const bool seen = qs[rr] >= 0 && j >= qs[rr] && j <= qi[rr];
                s[nt][e] = seen ? __fmul_rn(s[nt][e], scale) : -INFINITY;
                mt[rr] = fmaxf(mt[rr], s[nt][e]);
            }
        float mn[2], corr[2], ps[2] = {0.0f, 0.0f};
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            mn[rr] = fmaxf(m[rr], quad_max(mt[rr]));
            corr[rr] = m[rr] == -INFINITY ? 0.0f : expf(m[rr] - mn[rr]);  // m finite: mn too
        }
#pragma unroll
        for (int nt = 0; nt < TT / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int rr = e >> 1;
                const float p = s[nt][e] == -INFINITY ? 0.0f : expf(s[nt][e] - mn[rr]);
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
        acc_product<KC, TT / 16, LDM>(o, s, Vt, ldv, g, t);  // O += bf16(p) V
    }

#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        if (qi[rr] >= T) continue;
        const size_t qo = ((size_t)b * T + qi[rr]) * H + h;
        const bool pad = qs[rr] < 0;  // padding queries: zero output, lse 0 (as the CPU)
        const float inv = pad ? 0.0f : 1.0f / l[rr];
#pragma unroll
        for (int dn = 0; dn < 2 * KC; dn++)
#pragma unroll
            for (int c = 0; c < 2; c++) {
                const int d = dn * 8 + 2 * t + c;
                if (d < hd) out[qo * hd + d] = __fmul_rn(o[dn][2 * rr + c], inv);
            }
        if (t == 0) lse[qo] = pad ? 0.0f : m[rr] + logf(l[rr]);
    }
}

// --- backward: dq ----------------------------------------------------------------------------
// grid (ceil(T/TT), H, B). shared: Qs, dOs, Ks, Vs (TT, LDH), and without LDM Kt (HDP, LDK)
// bf16. Registers: dQ (2 KC tiles x 4), S then p, dP then dS (TT/8 tiles x 4 each).
template <int KC, bool LDM> __host__ __device__ constexpr size_t dq_smem_bytes() {
    return (4 * (size_t)TT * mma_dims<KC>::LDH + (LDM ? 0 : (size_t)mma_dims<KC>::HDP * mma_dims<KC>::LDK)) *
               sizeof(bf16) +
           2 * sizeof(int);
}

template <int KC, bool LDM>
__global__ void __launch_bounds__(NW * 32)
attention_mma_dq_kernel(float *dq, const bf16 *dout, const bf16 *q, const bf16 *k, const bf16 *v,
                        const float *lse, const float *Dl, const int32_t *start, int T, int H, int KVH, int hd,
                        float scale, int accumulate, bool vec) {
    typedef mma_dims<KC> M;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Qs = (bf16 *)smem, *dOs = Qs + TT * M::LDH, *Ks = dOs + TT * M::LDH, *Vs = Ks + TT * M::LDH;
    bf16 *Kt = Vs + TT * M::LDH;  // unused with LDM
    int *range = (int *)(Kt + (LDM ? 0 : M::HDP * M::LDK));
    const int b = blockIdx.z, h = blockIdx.y, grp = h / (H / KVH), i0 = blockIdx.x * TT;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int32_t *st = start + (size_t)b * T;

    load_rows<M::HDP, TT>(Qs, M::LDH, nullptr, 0, q, b, T, H, h, i0, hd, vec);
    load_rows<M::HDP, TT>(dOs, M::LDH, nullptr, 0, dout, b, T, H, h, i0, hd, vec);
    if (threadIdx.x == 0) block_query_range(st, i0, TT, T, &range[0], &range[1]);
    __syncthreads();
    const int klo = range[0], khi = range[1];

    int qi[2], qs[2], lo = INT_MAX, hi = 0;
    float L[2], Dq[2];
    for (int rr = 0; rr < 2; rr++) {
        qi[rr] = i0 + warp * 16 + g + 8 * rr;
        qs[rr] = qi[rr] < T ? st[qi[rr]] : -1;
        const size_t qo = ((size_t)b * T + (qi[rr] < T ? qi[rr] : 0)) * H + h;
        L[rr] = lse[qo], Dq[rr] = Dl[qo];
        if (qs[rr] >= 0) lo = min(lo, qs[rr]), hi = max(hi, qi[rr] + 1);
    }
    const int wlo = warp_min_int(lo), whi = warp_max_int(hi);
    const bf16 *Qw = Qs + warp * 16 * M::LDH, *dOw = dOs + warp * 16 * M::LDH;

    float acc[2 * KC][4];
#pragma unroll
    for (int dn = 0; dn < 2 * KC; dn++) acc[dn][0] = acc[dn][1] = acc[dn][2] = acc[dn][3] = 0.0f;

    for (int kt = klo; kt < khi; kt += TT) {
        __syncthreads();
        load_rows<M::HDP, TT>(Ks, M::LDH, LDM ? nullptr : Kt, M::LDK, k, b, T, KVH, grp, kt, hd, vec);
        load_rows<M::HDP, TT>(Vs, M::LDH, nullptr, 0, v, b, T, KVH, grp, kt, hd, vec);
        __syncthreads();
        if (whi <= kt || wlo >= kt + TT) continue;  // warp-uniform

        float s[TT / 8][4], dp[TT / 8][4];  // S = Q K^T and dP = dO V^T
        two_products<KC, TT / 8, LDM>(s, dp, Qw, Ks, dOw, Vs, M::LDH, g, t);
#pragma unroll
        for (int nt = 0; nt < TT / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {  // dS = p (dP - D) scale, into s
                const int rr = e >> 1, j = kt + nt * 8 + 2 * t + (e & 1);
                const bool seen = qs[rr] >= 0 && j >= qs[rr] && j <= qi[rr];
                const float p = seen ? expf(__fsub_rn(__fmul_rn(s[nt][e], scale), L[rr])) : 0.0f;
                s[nt][e] = __fmul_rn(__fmul_rn(p, __fsub_rn(dp[nt][e], Dq[rr])), scale);
            }
        if constexpr (LDM)
            acc_product<KC, TT / 16, true>(acc, s, Ks, M::LDH, g, t);  // dQ += bf16(dS) K
        else
            acc_product<KC, TT / 16, false>(acc, s, Kt, M::LDK, g, t);
    }

#pragma unroll
    for (int rr = 0; rr < 2; rr++)
        if (qi[rr] < T)
            store_grad_row<KC>(dq + (((size_t)b * T + qi[rr]) * H + h) * hd, acc, rr, t, hd, qs[rr] < 0, accumulate);
}

// --- backward: dk, dv ------------------------------------------------------------------------
// grid (ceil(T/TT), KVH, B): a block owns TT keys (16 a warp) and sums over every query head of
// the kv group and every query of each key's sample at or after it, KQT queries a tile.
// shared: Kb, Vb (TT, LDH), Qs, dOs (KQT, LDH), without LDM Qt, dOt (HDP, LDQ) bf16; per query
// of the tile lse, D and its sample's start. Registers: dK, dV (2 KC tiles x 4 each), S^T then
// p, dP^T.
template <int KC, bool LDM> __host__ __device__ constexpr size_t dkdv_transposed_elems() {
    return LDM ? 0 : (size_t)mma_dims<KC>::HDP * mma_dims<KC>::LDQ;
}
template <int KC, bool LDM> __host__ __device__ constexpr size_t dkdv_smem_bytes() {
    return (2 * (size_t)TT * mma_dims<KC>::LDH + 2 * (size_t)KQT * mma_dims<KC>::LDH +
            2 * dkdv_transposed_elems<KC, LDM>()) * sizeof(bf16) +
           KQT * (2 * sizeof(float) + sizeof(int)) + 2 * sizeof(int);
}

template <int KC, bool LDM>
__global__ void __launch_bounds__(NW * 32)
attention_mma_dkdv_kernel(float *dk, float *dv, const bf16 *dout, const bf16 *q, const bf16 *k, const bf16 *v,
                          const float *lse, const float *Dl, const int32_t *start, const int32_t *end, int T, int H,
                          int KVH, int hd, float scale, int accumulate, bool vec) {
    typedef mma_dims<KC> M;
    extern __shared__ __align__(16) unsigned char smem[];
    bf16 *Kb = (bf16 *)smem, *Vb = Kb + TT * M::LDH, *Qs = Vb + TT * M::LDH, *dOs = Qs + KQT * M::LDH;
    bf16 *Qt = dOs + KQT * M::LDH, *dOt = Qt + dkdv_transposed_elems<KC, LDM>();  // unused with LDM
    float *Ls = (float *)(dOt + dkdv_transposed_elems<KC, LDM>()), *Ds = Ls + KQT;
    int *Ss = (int *)(Ds + KQT), *range = Ss + KQT;
    const int b = blockIdx.z, grp = blockIdx.y, k0 = blockIdx.x * TT, rep = H / KVH;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int32_t *st = start + (size_t)b * T, *en = end + (size_t)b * T;

    load_rows<M::HDP, TT>(Kb, M::LDH, nullptr, 0, k, b, T, KVH, grp, k0, hd, vec);
    load_rows<M::HDP, TT>(Vb, M::LDH, nullptr, 0, v, b, T, KVH, grp, k0, hd, vec);
    if (threadIdx.x == 0) block_key_range(st, en, k0, TT, T, &range[0], &range[1]);
    __syncthreads();
    const int qlo = range[0], qhi = range[1];

    int kj[2], ks[2], lo = INT_MAX, hi = 0;  // this thread's key rows g and g+8
    for (int rr = 0; rr < 2; rr++) {
        kj[rr] = k0 + warp * 16 + g + 8 * rr;
        ks[rr] = kj[rr] < T ? st[kj[rr]] : -1;
        if (ks[rr] >= 0) lo = min(lo, kj[rr]), hi = max(hi, (int)en[kj[rr]]);
    }
    const int wlo = warp_min_int(lo), whi = warp_max_int(hi);  // the queries that see a key of the warp
    const bf16 *Kw = Kb + warp * 16 * M::LDH, *Vw = Vb + warp * 16 * M::LDH;

    float gk[2 * KC][4], gv[2 * KC][4];
#pragma unroll
    for (int dn = 0; dn < 2 * KC; dn++)
#pragma unroll
        for (int e = 0; e < 4; e++) gk[dn][e] = gv[dn][e] = 0.0f;

    for (int h = grp * rep; h < (grp + 1) * rep; h++)
        for (int qt = qlo; qt < qhi; qt += KQT) {
            __syncthreads();
            load_rows<M::HDP, KQT>(Qs, M::LDH, LDM ? nullptr : Qt, M::LDQ, q, b, T, H, h, qt, hd, vec);
            load_rows<M::HDP, KQT>(dOs, M::LDH, LDM ? nullptr : dOt, M::LDQ, dout, b, T, H, h, qt, hd, vec);
            load_query_stats(Ls, Ds, Ss, lse, Dl, st, b, T, H, h, qt, KQT);
            __syncthreads();
            if (whi <= qt || wlo >= qt + KQT) continue;  // warp-uniform

            float s[KQT / 8][4], dp[KQT / 8][4];  // S^T = K Q^T and dP^T = V dO^T: keys x queries
            two_products<KC, KQT / 8, LDM>(s, dp, Kw, Qs, Vw, dOs, M::LDH, g, t);
#pragma unroll
            for (int nt = 0; nt < KQT / 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {  // p into s, dS into dp
                    const int rr = e >> 1, col = nt * 8 + 2 * t + (e & 1), i = qt + col;
                    const bool seen = i < T && ks[rr] >= 0 && Ss[col] == ks[rr] && kj[rr] <= i;  // one sample, j <= i
                    const float p = seen ? expf(__fsub_rn(__fmul_rn(s[nt][e], scale), Ls[col])) : 0.0f;
                    s[nt][e] = p;
                    dp[nt][e] = __fmul_rn(__fmul_rn(p, __fsub_rn(dp[nt][e], Ds[col])), scale);
                }
            if constexpr (LDM) {
                acc_product<KC, KQT / 16, true>(gv, s, dOs, M::LDH, g, t);  // dV += bf16(p)^T dO
                acc_product<KC, KQT / 16, true>(gk, dp, Qs, M::LDH, g, t);  // dK += bf16(dS)^T Q
            } else {
                acc_product<KC, KQT / 16, false>(gv, s, dOt, M::LDQ, g, t);
                acc_product<KC, KQT / 16, false>(gk, dp, Qt, M::LDQ, g, t);
            }
        }

#pragma unroll
    for (int rr = 0; rr < 2; rr++) {  // padding keys are seen by nobody: no gradient
        if (kj[rr] >= T) continue;
        const size_t ko = (((size_t)b * T + kj[rr]) * KVH + grp) * hd;
        store_grad_row<KC>(dk + ko, gk, rr, t, hd, ks[rr] < 0, accumulate);
        store_grad_row<KC>(dv + ko, gv, rr, t, hd, ks[rr] < 0, accumulate);
    }
}

// --- host side -----------------------------------------------------------------------------------
static int scalar_loads = 0;      // attention_mma_set_variant: tests reach the element-load path
static int transposed_tiles = 0;  // and the kernels of the first GPU run (no ldmatrix)
void attention_mma_set_variant(int scalar, int transposed) {
    scalar_loads = scalar != 0;
    transposed_tiles = transposed != 0;
}

// 16-byte loads: rows of hd elements keep every 8-column group 16-byte aligned.
static bool vec_loads(int hd, const uint16_t *q, const uint16_t *k, const uint16_t *v, const uint16_t *dout) {
    auto al = [](const void *p) { return p == nullptr || ((uintptr_t)p & 15) == 0; };
    return !scalar_loads && hd % 8 == 0 && al(q) && al(k) && al(v) && al(dout);
}
static const bf16 *as_bf16(const uint16_t *p) { return (const bf16 *)p; }

template <int KC, bool LDM>
static int launch_forward(vet_cuda *ctx, float *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                          const int32_t *start, int B, int T, int H, int KVH, int hd, vet_err *err) {
    const size_t smem = fwd_smem_bytes<KC, LDM>();
    SMEM_OPT_IN((attention_mma_forward_kernel<KC, LDM>), smem, err);
    attention_mma_forward_kernel<KC, LDM><<<dim3(ceil_div(T, TT), H, B), NW * 32, smem, ctx->stream>>>(
        out, lse, as_bf16(q), as_bf16(k), as_bf16(v), start, T, H, KVH, hd, 1.0f / sqrtf((float)hd),
        vec_loads(hd, q, k, v, nullptr));
    LAUNCH_CHECK("attention_forward_bf16 (mma)", err);
    return 0;
}

template <int KC, bool LDM>
static int launch_backward(vet_cuda *ctx, float *dq, float *dk, float *dv, const uint16_t *dout, const uint16_t *q,
                           const uint16_t *k, const uint16_t *v, const float *lse, const float *Dl, const int32_t *start,
                           const int32_t *end, int B, int T, int H, int KVH, int hd, int accumulate, vet_err *err) {
    const float scale = 1.0f / sqrtf((float)hd);
    const bool vec = vec_loads(hd, q, k, v, dout);
    const size_t smem_dq = dq_smem_bytes<KC, LDM>(), smem_kv = dkdv_smem_bytes<KC, LDM>();
    SMEM_OPT_IN((attention_mma_dq_kernel<KC, LDM>), smem_dq, err);
    attention_mma_dq_kernel<KC, LDM><<<dim3(ceil_div(T, TT), H, B), NW * 32, smem_dq, ctx->stream>>>(
        dq, as_bf16(dout), as_bf16(q), as_bf16(k), as_bf16(v), lse, Dl, start, T, H, KVH, hd, scale, accumulate, vec);
    LAUNCH_CHECK("attention_backward_bf16 (mma dq)", err);
    SMEM_OPT_IN((attention_mma_dkdv_kernel<KC, LDM>), smem_kv, err);
    attention_mma_dkdv_kernel<KC, LDM><<<dim3(ceil_div(T, TT), KVH, B), NW * 32, smem_kv, ctx->stream>>>(
        dk, dv, as_bf16(dout), as_bf16(q), as_bf16(k), as_bf16(v), lse, Dl, start, end, T, H, KVH, hd, scale,
        accumulate,
        vec);
    LAUNCH_CHECK("attention_backward_bf16 (mma dk, dv)", err);
    return 0;
}

// Two instantiations (the register arrays need the width at compile time): heads up to 64 wide
// run padded to 64, wider ones to 128; the padding columns are zeros, which add nothing. Each
// width costs ~0.6 MB of machine code in every program that links it (the GPU bundle's size).
static int padded_kc(int hd) { return hd <= 64 ? 4 : hd <= VET_ATTN_MMA_MAX_HD ? 8 : 0; }
static_assert(8 * 16 == VET_ATTN_MMA_MAX_HD, "the widest instantiation is VET_ATTN_MMA_MAX_HD");

int attention_mma_forward(vet_cuda *ctx, float *out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                          const int32_t *start, int B, int T, int H, int KVH, int hd, vet_err *err) {
    const bool ldm = !transposed_tiles;
    switch (padded_kc(hd)) {
    case 4:
        return (ldm ? launch_forward<4, true> : launch_forward<4, false>)(ctx, out, lse, q, k, v, start, B, T, H,
                                                                          KVH, hd, err);
    case 8:
        return (ldm ? launch_forward<8, true> : launch_forward<8, false>)(ctx, out, lse, q, k, v, start, B, T, H,
                                                                          KVH, hd, err);
    default: return 1;
    }
}

int attention_mma_backward(vet_cuda *ctx, float *dq, float *dk, float *dv, const uint16_t *dout, const uint16_t *q,
                           const uint16_t *k, const uint16_t *v, const float *lse, const float *Dl, const int32_t *start,
                           const int32_t *end, int B, int T, int H, int KVH, int hd, int accumulate, vet_err *err) {
    const bool ldm = !transposed_tiles;
    switch (padded_kc(hd)) {
    case 4:
        return (ldm ? launch_backward<4, true> : launch_backward<4, false>)(
            ctx, dq, dk, dv, dout, q, k, v, lse, Dl, start, end, B, T, H, KVH, hd, accumulate, err);
    case 8:
        return (ldm ? launch_backward<8, true> : launch_backward<8, false>)(
            ctx, dq, dk, dv, dout, q, k, v, lse, Dl, start, end, B, T, H, KVH, hd, accumulate, err);
    default: return 1;
    }
}
