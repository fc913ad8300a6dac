// attention_pipe.cu — the register attention (attention_mma_tile.cuh's tiles, ldmatrix fragments)
// with its tiles double-buffered: while a block computes on one key (or query) tile, the next one
// is already on its way into the other half of shared memory by cp.async (sm_80+), which copies
// global memory into shared memory without passing through registers and without stalling the
// thread that issued it.
//
// Why: the synchronous kernels (attention_mma.cu) load a tile, wait for it at a barrier, compute,
// and load the next; with two blocks a multiprocessor (their registers allow no more) the tensor
// cores idle through every load's latency. Here the only waits are for a tile issued one whole
// tile of work earlier. The inputs are bf16 already (q, k, v, dout as training stores them), so
// a tile is a plain copy: 16 bytes a copy, rows past T and columns past hd zero-filled by the
// copy itself (a source size of 0).
//
// The numbers are the synchronous kernels' bit for bit: the same tiles in the same order, the
// same per-tile code (forward_tile, dq_tile, dkdv_tile); only where the bytes come from differs.
//
// The pipeline, in every kernel (groups of copies committed in order; wait_group 1 waits for all
// but the newest):
//   issue the block's fixed tiles (Q; Q and dO; K and V), commit      -> group F
//   issue tile 0 into stage 0, commit                                 -> group 0
//   wait_group 1, barrier: the fixed tiles are in
//   for tile i: issue tile i + 1 into stage (i + 1) % 2 (or nothing), commit; wait_group 1,
//               barrier: tile i is in; compute on stage i % 2; barrier: stage i % 2 may be refilled
#include "attention_mma_tile.cuh"
#include "attention_pipe.cuh"

// --- asynchronous copies ----------------------------------------------------------------------
// 16 bytes from global src to shared dst, or 16 zero bytes when !full (src is then not read).
// Under tests/unit/simt_emu.h (VET_SIMT_EMU) a copy lands at once and the waits are no-ops.
#ifdef VET_SIMT_EMU
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool full) {
    full ? (void)memcpy(dst, src, 16) : (void)memset(dst, 0, 16);
}
__device__ __forceinline__ void cp_async4(void *dst, const void *src, bool full) {
    full ? (void)memcpy(dst, src, 4) : (void)memset(dst, 0, 4);
}
__device__ __forceinline__ void cp_async_commit() {}
__device__ __forceinline__ void cp_async_wait_but_newest() {}
__device__ __forceinline__ void cp_async_wait_all() {}
#else
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool full) {
    const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(full ? 16 : 0));
}
// 4 bytes, the same way (cp.async.cg copies only 16; .ca takes 4).
__device__ __forceinline__ void cp_async4(void *dst, const void *src, bool full) {
    const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(d), "l"(src), "r"(full ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Until every group but the newest has landed (this thread's copies; a barrier after it makes
// every thread's visible).
__device__ __forceinline__ void cp_async_wait_but_newest() { asm volatile("cp.async.wait_group 1;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }
#endif

// Rows r0..r0+N-1 of head `head` of x (B,T,nh,hd) bf16 into rm (row-major, N x ldr), as
// load_rows's vec path puts them (hd a multiple of 8, x 16-byte aligned): issued, not waited for.
template <int HDP, int N>
__device__ __forceinline__ void copy_rows(bf16 *rm, int ldr, const bf16 *x, int b, int T, int nh, int head, int r0,
                                          int hd) {
    constexpr int E = 8, VECS = N * HDP / E;
#pragma unroll
    for (int idx = threadIdx.x; idx < VECS; idx += NW * 32) {
        const int r = idx / (HDP / E), d = idx % (HDP / E) * E, i = r0 + r;
        const bool in = i < T && d < hd;
        cp_async16(rm + r * ldr + d, in ? x + (((size_t)b * T + i) * nh + head) * hd + d : x, in);
    }
}

// K and V rows kt..kt+TT-1 of kv head grp into a stage (K's tile, then V's TT LDH elements
// after it): issued, not waited for.
template <int KC>
__device__ __forceinline__ void copy_kv(bf16 *stage, const bf16 *k, const bf16 *v, int b, int T, int KVH, int grp,
                                        int kt, int hd) {
    typedef mma_dims<KC> M;
    copy_rows<M::HDP, TT>(stage, M::LDH, k, b, T, KVH, grp, kt, hd);
    copy_rows<M::HDP, TT>(stage + TT * M::LDH, M::LDH, v, b, T, KVH, grp, kt, hd);
}

// The forward's and dq's key tiles. key_tiles_begin: the block's key range (into range[0..1],
// shared) and the first tile issued into stage 0, as one group. key_tiles_run: for each tile, the
// next one issued into the other stage, this one waited for, work(Ks, kt) where some row of the
// warp sees it (Ks: its K, its V TT LDH elements after), and a barrier before its stage is refilled.
template <int KC>
__device__ __forceinline__ void key_tiles_begin(int *range, bf16 *stage, const int32_t *st, int i0, const bf16 *k,
                                                const bf16 *v, int b, int T, int KVH, int grp, int hd) {
    if (threadIdx.x < 32) block_query_range(st, i0, TT, T, range);
    __syncthreads();
    if (range[0] < range[1]) copy_kv<KC>(stage, k, v, b, T, KVH, grp, range[0], hd);
    cp_async_commit();
}
template <int KC, typename Work>
__device__ __forceinline__ void key_tiles_run(bf16 *stage, const bf16 *k, const bf16 *v, int b, int T, int KVH,
                                              int grp, int hd, int klo, int khi, const query_rows &qr, Work work) {
    constexpr int TILE = TT * mma_dims<KC>::LDH;
    for (int kt = klo, i = 0; kt < khi; kt += TT, i++) {
        if (kt + TT < khi) copy_kv<KC>(stage + 2 * ((i + 1) & 1) * TILE, k, v, b, T, KVH, grp, kt + TT, hd);
        cp_async_commit();
        cp_async_wait_but_newest();
        __syncthreads();                           // tile kt is in
        if (!(qr.whi <= kt || qr.wlo >= kt + TT))  // warp-uniform: some row of the warp sees the tile
            work(stage + 2 * (i & 1) * TILE, kt);
        __syncthreads();  // this stage is read: the next iteration's copies may refill it
    }
    cp_async_wait_all();
}

// load_query_stats's values, issued: lse, D and sample start of queries qt..qt+n-1 of head h
// (threads 0..n-1). Past T: zeros, which dkdv_tile's mask never reads (it tests i < T first).
__device__ __forceinline__ void copy_query_stats(float *Ls, float *Ds, int *Ss, const float *lse, const float *Dl,
                                                 const int32_t *st, int b, int T, int H, int h, int qt, int n) {
    if (threadIdx.x >= n) return;
    const int i = qt + threadIdx.x;
    const bool in = i < T;
    const size_t qo = ((size_t)b * T + (in ? i : 0)) * H + h;
    cp_async4(&Ls[threadIdx.x], lse + qo, in);
    cp_async4(&Ds[threadIdx.x], Dl + qo, in);
    cp_async4(&Ss[threadIdx.x], st + (in ? i : 0), in);
}

// --- forward ---------------------------------------------------------------------------------
// grid (ceil(T/TT), H, B). shared: Qs (TT, LDH), then two stages of Ks, Vs (TT, LDH) bf16.
template <int KC> __host__ __device__ constexpr size_t pipe_fwd_smem_bytes() {
    return 5 * (size_t)TT * mma_dims<KC>::LDH * sizeof(bf16) + 2 * sizeof(int);
}

template <int KC>
__global__ void __launch_bounds__(NW * 32)
attention_pipe_forward_kernel(attn_out out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                              const int32_t *start, int T, int H, int KVH, int hd, float scale) {
    typedef mma_dims<KC> M;
    constexpr int TILE = TT * M::LDH;
    SHARED_DYNAMIC(unsigned char, smem, 16);
    bf16 *Qs = (bf16 *)smem, *stage = Qs + TILE;  // stage s: Ks at stage + 2 s TILE, Vs after it
    int *range = (int *)(stage + 4 * TILE);
    const int b = blockIdx.z, h = blockIdx.y, grp = h / (H / KVH), i0 = blockIdx.x * TT;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int32_t *st = start + (size_t)b * T;

    copy_rows<M::HDP, TT>(Qs, M::LDH, q, b, T, H, h, i0, hd);
    cp_async_commit();
    key_tiles_begin<KC>(range, stage, st, i0, k, v, b, T, KVH, grp, hd);
    const int klo = range[0], khi = range[1];
    const query_rows qr = query_rows_of(st, i0, warp, g, T);
    cp_async_wait_but_newest();
    __syncthreads();  // Q is in

    unsigned qa[KC][4];
#pragma unroll
    for (int kc = 0; kc < KC; kc++) frag_a(qa[kc], Qs + warp * 16 * M::LDH + kc * 16, M::LDH, g, t);
    float o[2 * KC][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    zero_acc(o);

    key_tiles_run<KC>(stage, k, v, b, T, KVH, grp, hd, klo, khi, qr, [&](const bf16 *Ks, int kt) {
        forward_tile<KC, true, true>(o, m, l, qa, Ks, Ks + TILE, kt, qr, scale, g, t);
    });
    forward_store<KC, true>(out, lse, o, m, l, qr, b, T, H, h, hd, scale, t);
}

// --- backward: dq ----------------------------------------------------------------------------
// grid (ceil(T/TT), H, B). shared: Qs, dOs (TT, LDH), then two stages of Ks, Vs (TT, LDH).
template <int KC> __host__ __device__ constexpr size_t pipe_dq_smem_bytes() {
    return 6 * (size_t)TT * mma_dims<KC>::LDH * sizeof(bf16) + 2 * sizeof(int);
}

template <int KC>
__global__ void __launch_bounds__(NW * 32)
attention_pipe_dq_kernel(float *dq, const bf16 *dout, const bf16 *q, const bf16 *k, const bf16 *v,
                         const float *lse, const float *Dl, const int32_t *start, int T, int H, int KVH, int hd,
                         float scale, int accumulate) {
    typedef mma_dims<KC> M;
    constexpr int TILE = TT * M::LDH;
    SHARED_DYNAMIC(unsigned char, smem, 16);
    bf16 *Qs = (bf16 *)smem, *dOs = Qs + TILE, *stage = dOs + TILE;
    int *range = (int *)(stage + 4 * TILE);
    const int b = blockIdx.z, h = blockIdx.y, grp = h / (H / KVH), i0 = blockIdx.x * TT;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int32_t *st = start + (size_t)b * T;

    copy_rows<M::HDP, TT>(Qs, M::LDH, q, b, T, H, h, i0, hd);
    copy_rows<M::HDP, TT>(dOs, M::LDH, dout, b, T, H, h, i0, hd);
    cp_async_commit();
    key_tiles_begin<KC>(range, stage, st, i0, k, v, b, T, KVH, grp, hd);
    const int klo = range[0], khi = range[1];
    const query_rows qr = query_rows_of(st, i0, warp, g, T);
    float L[2], Dq[2];
    query_stats_of(L, Dq, lse, Dl, qr, b, T, H, h);
    const bf16 *Qw = Qs + warp * 16 * M::LDH, *dOw = dOs + warp * 16 * M::LDH;
    cp_async_wait_but_newest();
    __syncthreads();  // Q and dO are in

    float acc[2 * KC][4];
    zero_acc(acc);
    key_tiles_run<KC>(stage, k, v, b, T, KVH, grp, hd, klo, khi, qr, [&](const bf16 *Ks, int kt) {
        dq_tile<KC, true, true>(acc, Qw, dOw, Ks, Ks + TILE, nullptr, kt, qr, L, Dq, scale, g, t);
    });
    dq_store<KC>(dq, acc, qr, b, T, H, h, hd, t, accumulate);
}

// --- backward: dk, dv ------------------------------------------------------------------------
// grid (ceil(T/TT), KVH, B). shared: Kb, Vb (TT, LDH), then two stages of Qs, dOs (KQT, LDH)
// and their queries' Ls, Ds (float) and Ss (int), KQT each. The tiles run over every head of the
// kv group (outer) and every query tile of the block's range (inner), as the synchronous kernel.
template <int KC> struct pipe_dkdv_layout {
    static constexpr int TILE = TT * mma_dims<KC>::LDH, QTILE = KQT * mma_dims<KC>::LDH;
    static constexpr size_t STATS = 2 * (2 * QTILE) * sizeof(bf16) + 2 * (size_t)TILE * sizeof(bf16);  // offset
    static constexpr size_t bytes = STATS + 2 * 3 * KQT * sizeof(float) + 2 * sizeof(int);
};

template <int KC>
__global__ void __launch_bounds__(NW * 32)
attention_pipe_dkdv_kernel(float *dk, float *dv, const bf16 *dout, const bf16 *q, const bf16 *k, const bf16 *v,
                           const float *lse, const float *Dl, const int32_t *start, const int32_t *end, int T, int H,
                           int KVH, int hd, float scale, int accumulate) {
    typedef mma_dims<KC> M;
    typedef pipe_dkdv_layout<KC> P;
    SHARED_DYNAMIC(unsigned char, smem, 16);
    bf16 *Kb = (bf16 *)smem, *Vb = Kb + P::TILE, *qstage = Vb + P::TILE;  // stage s: Qs, dOs at 2 s QTILE
    float *stats = (float *)(smem + P::STATS);                             // stage s: Ls, Ds, Ss at 3 s KQT
    int *range = (int *)(stats + 2 * 3 * KQT);
    const int b = blockIdx.z, grp = blockIdx.y, k0 = blockIdx.x * TT, rep = H / KVH;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int32_t *st = start + (size_t)b * T, *en = end + (size_t)b * T;

    copy_rows<M::HDP, TT>(Kb, M::LDH, k, b, T, KVH, grp, k0, hd);
    copy_rows<M::HDP, TT>(Vb, M::LDH, v, b, T, KVH, grp, k0, hd);
    cp_async_commit();
    if (threadIdx.x < 32) block_key_range(st, en, k0, TT, T, range);
    __syncthreads();
    const int qlo = range[0], qhi = range[1];
    const int per_head = qhi > qlo ? (qhi - qlo + KQT - 1) / KQT : 0, n = per_head * rep;
    // tile i: head grp rep + i / per_head, queries qlo + (i % per_head) KQT.. into stage i % 2
    auto issue = [&](int i) {
        const int h = grp * rep + i / per_head, qt = qlo + i % per_head * KQT, s = i & 1;
        bf16 *Qs = qstage + 2 * s * P::QTILE;
        float *Ls = stats + 3 * s * KQT;
        copy_rows<M::HDP, KQT>(Qs, M::LDH, q, b, T, H, h, qt, hd);
        copy_rows<M::HDP, KQT>(Qs + P::QTILE, M::LDH, dout, b, T, H, h, qt, hd);
        copy_query_stats(Ls, Ls + KQT, (int *)(Ls + 2 * KQT), lse, Dl, st, b, T, H, h, qt, KQT);
    };
    if (n > 0) issue(0);
    cp_async_commit();
    const key_rows kr = key_rows_of(st, en, k0, warp, g, T);
    const bf16 *Kw = Kb + warp * 16 * M::LDH, *Vw = Vb + warp * 16 * M::LDH;
    cp_async_wait_but_newest();
    __syncthreads();  // K and V are in

    float gk[2 * KC][4], gv[2 * KC][4];
    zero_acc(gk), zero_acc(gv);
    for (int i = 0; i < n; i++) {
        if (i + 1 < n) issue(i + 1);
        cp_async_commit();
        cp_async_wait_but_newest();
        __syncthreads();  // tile i is in
        const int qt = qlo + i % per_head * KQT, s = i & 1;
        const bf16 *Qs = qstage + 2 * s * P::QTILE;
        const float *Ls = stats + 3 * s * KQT;
        if (!(kr.whi <= qt || kr.wlo >= qt + KQT))  // warp-uniform
            dkdv_tile<KC, true, true>(gk, gv, Kw, Vw, Qs, Qs + P::QTILE, nullptr, nullptr, Ls, Ls + KQT,
                                (const int *)(Ls + 2 * KQT), qt, T, kr, scale, g, t);
        __syncthreads();  // this stage is read: the next iteration's copies may refill it
    }
    cp_async_wait_all();
    dkdv_store<KC>(dk, dv, gk, gv, kr, b, T, KVH, grp, hd, t, accumulate);
}

// --- host side -----------------------------------------------------------------------------------
bool attention_pipe_fits(int hd, const void *q, const void *k, const void *v, const void *dout) {
    return hd % 8 == 0 && hd <= VET_ATTN_MMA_MAX_HD && aligned16(q) && aligned16(k) && aligned16(v) &&
           aligned16(dout);
}

template <int KC>
static int launch_forward(vet_cuda *ctx, attn_out out, float *lse, const uint16_t *q, const uint16_t *k,
                          const uint16_t *v, const int32_t *start, int B, int T, int H, int KVH, int hd, vet_err *err) {
    const size_t smem = pipe_fwd_smem_bytes<KC>();
    SMEM_OPT_IN(attention_pipe_forward_kernel<KC>, smem, err);
    LAUNCH(attention_pipe_forward_kernel<KC>, dim3(ceil_div(T, TT), H, B), NW * 32, smem, ctx->stream, out, lse,
           as_bf16(q), as_bf16(k), as_bf16(v), start, T, H, KVH, hd, 1.0f / sqrtf((float)hd));
    LAUNCH_CHECK("attention_forward_bf16 (pipelined)", err);
    return 0;
}

template <int KC>
static int launch_backward(vet_cuda *ctx, float *dq, float *dk, float *dv, const uint16_t *dout, const uint16_t *q,
                           const uint16_t *k, const uint16_t *v, const float *lse, const float *Dl,
                           const int32_t *start, const int32_t *end, int B, int T, int H, int KVH, int hd,
                           int accumulate, vet_err *err) {
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t smem_dq = pipe_dq_smem_bytes<KC>(), smem_kv = pipe_dkdv_layout<KC>::bytes;
    SMEM_OPT_IN(attention_pipe_dq_kernel<KC>, smem_dq, err);
    LAUNCH(attention_pipe_dq_kernel<KC>, dim3(ceil_div(T, TT), H, B), NW * 32, smem_dq, ctx->stream, dq,
           as_bf16(dout), as_bf16(q), as_bf16(k), as_bf16(v), lse, Dl, start, T, H, KVH, hd, scale, accumulate);
    LAUNCH_CHECK("attention_backward_bf16 (pipelined dq)", err);
    SMEM_OPT_IN(attention_pipe_dkdv_kernel<KC>, smem_kv, err);
    LAUNCH(attention_pipe_dkdv_kernel<KC>, dim3(ceil_div(T, TT), KVH, B), NW * 32, smem_kv, ctx->stream, dk, dv,
           as_bf16(dout), as_bf16(q), as_bf16(k), as_bf16(v), lse, Dl, start, end, T, H, KVH, hd, scale,
           accumulate);
    LAUNCH_CHECK("attention_backward_bf16 (pipelined dk, dv)", err);
    return 0;
}

int attention_pipe_forward(vet_cuda *ctx, attn_out out, float *lse, const uint16_t *q, const uint16_t *k,
                           const uint16_t *v, const int32_t *start, int B, int T, int H, int KVH, int hd, vet_err *err) {
    return hd <= 64 ? launch_forward<4>(ctx, out, lse, q, k, v, start, B, T, H, KVH, hd, err)
                    : launch_forward<8>(ctx, out, lse, q, k, v, start, B, T, H, KVH, hd, err);
}

int attention_pipe_backward(vet_cuda *ctx, float *dq, float *dk, float *dv, const uint16_t *dout, const uint16_t *q,
                            const uint16_t *k, const uint16_t *v, const float *lse, const float *Dl,
                            const int32_t *start, const int32_t *end, int B, int T, int H, int KVH, int hd,
                            int accumulate, vet_err *err) {
    return hd <= 64 ? launch_backward<4>(ctx, dq, dk, dv, dout, q, k, v, lse, Dl, start, end, B, T, H, KVH, hd,
                                         accumulate, err)
                    : launch_backward<8>(ctx, dq, dk, dv, dout, q, k, v, lse, Dl, start, end, B, T, H, KVH, hd,
                                         accumulate, err);
}
