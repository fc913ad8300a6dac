// attention_ranges.cuh — what the attention kernels (attention.cu, attention_tc.cu,
// attention_mma.cu, attention_pipe.cu) share about packed rows: each position's sample bounds,
// which keys a block of queries sees, which queries see a block of keys (from those bounds), a
// warp's min and max of such bounds, and a query tile's statistics for the dk/dv kernels.
#ifndef VET_ATTENTION_RANGES_CUH
#define VET_ATTENTION_RANGES_CUH

#include <limits.h>
#include <stdint.h>

// The sample run of position p of one packed row sg (T positions; -1 padding): [*start, *end),
// the maximal run of equal ids around p, or -1, -1 for padding. Host and device (one thread a
// position on the device; tests/unit/test_seg_bounds.cu checks it on the CPU against a serial
// walk). Each position reads only its own run, so the work is the runs' lengths, not T.
__host__ __device__ inline void seg_bounds_at(const int32_t *sg, int T, int p, int32_t *start, int32_t *end) {
    const int32_t s = sg[p];
    if (s < 0) {
        *start = *end = -1;
        return;
    }
    int a = p, e = p + 1;
    while (a > 0 && sg[a - 1] == s) a--;
    while (e < T && sg[e] == s) e++;
    *start = a, *end = e;
}

// Whole tiles: where every query of a warp sees every key of a tile, the kernels skip the mask
// (attention_mma_tile.cuh). Host and device, so that tests/unit/test_attention_whole.cu checks
// on the CPU that each says "whole" exactly when every pair is seen.
//
// A warp's query rows qmin.. (consecutive) whose largest sample start is smax, each row's start
// taken as start_or_never (padding and rows past T never see a whole tile): they see all of the
// keys kt..kt+n-1 iff every row's sample starts at or before kt and the first row is at or past
// the last key.
__host__ __device__ inline int start_or_never(int s) { return s >= 0 ? s : INT_MAX; }
__host__ __device__ inline bool queries_see_whole_tile(int smax, int qmin, int kt, int n) {
    return smax <= kt && kt + n - 1 <= qmin;
}
// A warp's keys, ..kmax, all of one sample [kstart, kend) (kstart -1 if they are not: two
// samples, padding, past T): every query of qt..qt+n-1 sees all of them iff the tile starts at or
// after the last key and ends inside that sample.
__host__ __device__ inline bool keys_seen_by_whole_tile(int kstart, int kend, int kmax, int qt, int n) {
    return kstart >= 0 && kmax <= qt && qt + n <= kend;
}

__device__ inline int warp_min_int(int x) {
    for (int o = 16; o > 0; o >>= 1) x = min(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}
__device__ inline int warp_max_int(int x) {
    for (int o = 16; o > 0; o >>= 1) x = max(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

// The keys queries i0..i0+n-1 see: [the smallest sample start, the largest valid i + 1), or
// [0, 0) when none is valid (padding); and the queries that see some key of k0..k0+n-1: [the
// first valid key, the largest sample end), or [0, 0). Computed by one whole warp (every lane
// calls; lane 0 writes range[0], range[1]): a lane takes rows lane, lane + 32, ..., and the
// bounds are reduced across the warp. Why not one thread: walking 64 rows it waits for each
// row's load in turn, a serial prologue of microseconds in every block.
__device__ inline void block_query_range(const int32_t *st, int i0, int n, int T, int *range) {
    const int lane = threadIdx.x & 31;
    int a = T, z = 0;
    for (int r = lane; r < n && i0 + r < T; r += 32) {
        const int s = st[i0 + r];
        if (s < 0) continue;
        a = min(a, s);
        z = max(z, i0 + r + 1);
    }
    a = warp_min_int(a), z = warp_max_int(z);
    if (lane == 0) range[0] = z ? a : 0, range[1] = z;
}
__device__ inline void block_key_range(const int32_t *st, const int32_t *en, int k0, int n, int T, int *range) {
    const int lane = threadIdx.x & 31;
    int a = T, z = 0;
    for (int r = lane; r < n && k0 + r < T; r += 32) {
        const int j = k0 + r;
        if (st[j] < 0) continue;
        a = min(a, j);
        z = max(z, (int)en[j]);
    }
    a = warp_min_int(a), z = warp_max_int(z);
    if (lane == 0) range[0] = z ? a : 0, range[1] = z;
}

// For queries qt..qt+n-1 of head h (threads 0..n-1 of the block, n <= blockDim.x): their lse
// and D = rowsum(dO * O) (B,T,H) and their sample's start (-1 past T) into shared Ls, Ds, Ss.
__device__ inline void load_query_stats(float *Ls, float *Ds, int *Ss, const float *lse, const float *Dl,
                                        const int32_t *st, int b, int T, int H, int h, int qt, int n) {
    if (threadIdx.x >= n) return;
    const int i = qt + threadIdx.x;
    const size_t qo = ((size_t)b * T + (i < T ? i : 0)) * H + h;
    Ls[threadIdx.x] = lse[qo];
    Ds[threadIdx.x] = Dl[qo];
    Ss[threadIdx.x] = i < T ? st[i] : -1;
}

#endif
