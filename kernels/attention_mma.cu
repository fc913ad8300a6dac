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
// The softmax: with ldmatrix fragments (LDM) FlashAttention-2's ex2 form and unmasked whole
// tiles; the transposed-tile kernels (the first lease's, run.sh's measured fallback) keep expf
// (attention_mma_tile.cuh, "the softmax's arithmetic").
//
// The pieces (fragments, loader, each kernel's work on one tile) are in attention_mma_tile.cuh;
// this file holds the kernels that load each tile synchronously (every variant, and the only
// path for heads whose width is not a multiple of 8), and the host side, which picks between
// them and attention_pipe.cu's kernels (asynchronous copies, the default where they apply).
#include "attention_mma_tile.cuh"
#include "attention_pipe.cuh"

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
attention_mma_forward_kernel(attn_out out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                             const int32_t *start, int T, int H, int KVH, int hd, float scale, bool vec) {
    typedef mma_dims<KC> M;
    constexpr bool EX2 = LDM;  // attention_mma_tile.cuh: the first lease's kernels keep expf
    SHARED_DYNAMIC(unsigned char, smem, 16);
    bf16 *Qs = (bf16 *)smem, *Ks = Qs + TT * M::LDH, *Vt = Ks + TT * M::LDH;  // V: row-major with LDM, else [d][key]
    int *range = (int *)(Vt + v_tile_elems<KC, LDM>());
    const int b = blockIdx.z, h = blockIdx.y, grp = h / (H / KVH), i0 = blockIdx.x * TT;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int32_t *st = start + (size_t)b * T;

    load_rows<M::HDP, TT>(Qs, M::LDH, nullptr, 0, q, b, T, H, h, i0, hd, vec);
    if (threadIdx.x < 32) block_query_range(st, i0, TT, T, range);
    __syncthreads();
    const int klo = range[0], khi = range[1];
    const query_rows qr = query_rows_of(st, i0, warp, g, T);

    unsigned qa[KC][4];
#pragma unroll
    for (int kc = 0; kc < KC; kc++) frag_a(qa[kc], Qs + warp * 16 * M::LDH + kc * 16, M::LDH, g, t);
    float o[2 * KC][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    zero_acc(o);

    for (int kt = klo; kt < khi; kt += TT) {
        __syncthreads();  // the previous tile is no longer read
        load_rows<M::HDP, TT>(Ks, M::LDH, nullptr, 0, k, b, T, KVH, grp, kt, hd, vec);
        if constexpr (LDM)
            load_rows<M::HDP, TT>(Vt, M::LDH, nullptr, 0, v, b, T, KVH, grp, kt, hd, vec);
        else
            load_rows<M::HDP, TT>(nullptr, 0, Vt, M::LDK, v, b, T, KVH, grp, kt, hd, vec);
        __syncthreads();
        if (qr.whi <= kt || qr.wlo >= kt + TT) continue;  // warp-uniform: no row of the warp sees the tile
        forward_tile<KC, LDM, EX2>(o, m, l, qa, Ks, Vt, kt, qr, scale, g, t);
    }
    forward_store<KC, EX2>(out, lse, o, m, l, qr, b, T, H, h, hd, scale, t);
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
    constexpr bool EX2 = LDM;  // attention_mma_tile.cuh: the first lease's kernels keep expf
    SHARED_DYNAMIC(unsigned char, smem, 16);
    bf16 *Qs = (bf16 *)smem, *dOs = Qs + TT * M::LDH, *Ks = dOs + TT * M::LDH, *Vs = Ks + TT * M::LDH;
    bf16 *Kt = Vs + TT * M::LDH;  // unused with LDM
    int *range = (int *)(Kt + (LDM ? 0 : M::HDP * M::LDK));
    const int b = blockIdx.z, h = blockIdx.y, grp = h / (H / KVH), i0 = blockIdx.x * TT;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int32_t *st = start + (size_t)b * T;

    load_rows<M::HDP, TT>(Qs, M::LDH, nullptr, 0, q, b, T, H, h, i0, hd, vec);
    load_rows<M::HDP, TT>(dOs, M::LDH, nullptr, 0, dout, b, T, H, h, i0, hd, vec);
    if (threadIdx.x < 32) block_query_range(st, i0, TT, T, range);
    __syncthreads();
    const int klo = range[0], khi = range[1];
    const query_rows qr = query_rows_of(st, i0, warp, g, T);
    float L[2], Dq[2];
    query_stats_of(L, Dq, lse, Dl, qr, b, T, H, h);
    const bf16 *Qw = Qs + warp * 16 * M::LDH, *dOw = dOs + warp * 16 * M::LDH;

    float acc[2 * KC][4];
    zero_acc(acc);
    for (int kt = klo; kt < khi; kt += TT) {
        __syncthreads();
        load_rows<M::HDP, TT>(Ks, M::LDH, LDM ? nullptr : Kt, M::LDK, k, b, T, KVH, grp, kt, hd, vec);
        load_rows<M::HDP, TT>(Vs, M::LDH, nullptr, 0, v, b, T, KVH, grp, kt, hd, vec);
        __syncthreads();
        if (qr.whi <= kt || qr.wlo >= kt + TT) continue;  // warp-uniform
        dq_tile<KC, LDM, EX2>(acc, Qw, dOw, Ks, Vs, Kt, kt, qr, L, Dq, scale, g, t);
    }
    dq_store<KC>(dq, acc, qr, b, T, H, h, hd, t, accumulate);
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
    constexpr bool EX2 = LDM;  // attention_mma_tile.cuh: the first lease's kernels keep expf
    SHARED_DYNAMIC(unsigned char, smem, 16);
    bf16 *Kb = (bf16 *)smem, *Vb = Kb + TT * M::LDH, *Qs = Vb + TT * M::LDH, *dOs = Qs + KQT * M::LDH;
    bf16 *Qt = dOs + KQT * M::LDH, *dOt = Qt + dkdv_transposed_elems<KC, LDM>();  // unused with LDM
    float *Ls = (float *)(dOt + dkdv_transposed_elems<KC, LDM>()), *Ds = Ls + KQT;
    int *Ss = (int *)(Ds + KQT), *range = Ss + KQT;
    const int b = blockIdx.z, grp = blockIdx.y, k0 = blockIdx.x * TT, rep = H / KVH;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int32_t *st = start + (size_t)b * T, *en = end + (size_t)b * T;

    load_rows<M::HDP, TT>(Kb, M::LDH, nullptr, 0, k, b, T, KVH, grp, k0, hd, vec);
    load_rows<M::HDP, TT>(Vb, M::LDH, nullptr, 0, v, b, T, KVH, grp, k0, hd, vec);
    if (threadIdx.x < 32) block_key_range(st, en, k0, TT, T, range);
    __syncthreads();
    const int qlo = range[0], qhi = range[1];
    const key_rows kr = key_rows_of(st, en, k0, warp, g, T);
    const bf16 *Kw = Kb + warp * 16 * M::LDH, *Vw = Vb + warp * 16 * M::LDH;

    float gk[2 * KC][4], gv[2 * KC][4];
    zero_acc(gk), zero_acc(gv);
    for (int h = grp * rep; h < (grp + 1) * rep; h++)
        for (int qt = qlo; qt < qhi; qt += KQT) {
            __syncthreads();
            load_rows<M::HDP, KQT>(Qs, M::LDH, LDM ? nullptr : Qt, M::LDQ, q, b, T, H, h, qt, hd, vec);
            load_rows<M::HDP, KQT>(dOs, M::LDH, LDM ? nullptr : dOt, M::LDQ, dout, b, T, H, h, qt, hd, vec);
            load_query_stats(Ls, Ds, Ss, lse, Dl, st, b, T, H, h, qt, KQT);
            __syncthreads();
            if (kr.whi <= qt || kr.wlo >= qt + KQT) continue;  // warp-uniform
            dkdv_tile<KC, LDM, EX2>(gk, gv, Kw, Vw, Qs, dOs, Qt, dOt, Ls, Ds, Ss, qt, T, kr, scale, g, t);
        }
    dkdv_store<KC>(dk, dv, gk, gv, kr, b, T, KVH, grp, hd, t, accumulate);
}

// --- host side -----------------------------------------------------------------------------------
static int scalar_loads = 0;      // attention_mma_set_variant: tests reach the element-load path,
static int transposed_tiles = 0;  // the kernels of the first GPU run (no ldmatrix),
static int sync_tiles = 0;        // and this file's kernels where attention_pipe.cu's would run
void attention_mma_set_variant(int scalar, int transposed, int sync) {
    scalar_loads = scalar != 0;
    transposed_tiles = transposed != 0;
    sync_tiles = sync != 0;
}
static bool pipelined(int hd, const uint16_t *q, const uint16_t *k, const uint16_t *v, const uint16_t *dout) {
    return !scalar_loads && !transposed_tiles && !sync_tiles && attention_pipe_fits(hd, q, k, v, dout);
}

// 16-byte loads: rows of hd elements keep every 8-column group 16-byte aligned.
static bool vec_loads(int hd, const uint16_t *q, const uint16_t *k, const uint16_t *v, const uint16_t *dout) {
    return !scalar_loads && hd % 8 == 0 && aligned16(q) && aligned16(k) && aligned16(v) && aligned16(dout);
}

template <int KC, bool LDM>
static int launch_forward(vet_cuda *ctx, attn_out out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                          const int32_t *start, int B, int T, int H, int KVH, int hd, vet_err *err) {
    const size_t smem = fwd_smem_bytes<KC, LDM>();
    SMEM_OPT_IN((attention_mma_forward_kernel<KC, LDM>), smem, err);
    LAUNCH((attention_mma_forward_kernel<KC, LDM>), dim3(ceil_div(T, TT), H, B), NW * 32, smem, ctx->stream, out, lse,
           as_bf16(q), as_bf16(k), as_bf16(v), start, T, H, KVH, hd, 1.0f / sqrtf((float)hd),
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
    LAUNCH((attention_mma_dq_kernel<KC, LDM>), dim3(ceil_div(T, TT), H, B), NW * 32, smem_dq, ctx->stream, dq,
           as_bf16(dout), as_bf16(q), as_bf16(k), as_bf16(v), lse, Dl, start, T, H, KVH, hd, scale, accumulate, vec);
    LAUNCH_CHECK("attention_backward_bf16 (mma dq)", err);
    SMEM_OPT_IN((attention_mma_dkdv_kernel<KC, LDM>), smem_kv, err);
    LAUNCH((attention_mma_dkdv_kernel<KC, LDM>), dim3(ceil_div(T, TT), KVH, B), NW * 32, smem_kv, ctx->stream, dk, dv,
           as_bf16(dout), as_bf16(q), as_bf16(k), as_bf16(v), lse, Dl, start, end, T, H, KVH, hd, scale, accumulate,
           vec);
    LAUNCH_CHECK("attention_backward_bf16 (mma dk, dv)", err);
    return 0;
}

// Two instantiations (the register arrays need the width at compile time): heads up to 64 wide
// run padded to 64, wider ones to 128; the padding columns are zeros, which add nothing. Each
// width costs ~0.6 MB of machine code in every program that links it (the GPU bundle's size).
static int padded_kc(int hd) { return hd <= 64 ? 4 : hd <= VET_ATTN_MMA_MAX_HD ? 8 : 0; }
static_assert(8 * 16 == VET_ATTN_MMA_MAX_HD, "the widest instantiation is VET_ATTN_MMA_MAX_HD");

int attention_mma_forward(vet_cuda *ctx, attn_out out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                          const int32_t *start, int B, int T, int H, int KVH, int hd, vet_err *err) {
    if (padded_kc(hd) && pipelined(hd, q, k, v, nullptr))
        return attention_pipe_forward(ctx, out, lse, q, k, v, start, B, T, H, KVH, hd, err);
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
    if (padded_kc(hd) && pipelined(hd, q, k, v, dout))
        return attention_pipe_backward(ctx, dq, dk, dv, dout, q, k, v, lse, Dl, start, end, B, T, H, KVH, hd,
                                       accumulate, err);
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
