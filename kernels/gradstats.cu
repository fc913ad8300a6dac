// gradstats.cu — the optimizer step's one reduction over the gradients: their global L2 norm
// (times the fp16 unscale) and the first element that is not finite, on the device, so that a
// step moves 16 bytes to the host instead of the whole gradient buffer.
//
// Deterministic two-pass reduction, no atomics:
//   pass 1: a FIXED grid of GS_BLOCKS blocks of GS_THREADS threads (the same on every GPU,
//           whatever its SM count); thread t of block b visits elements b*GS_THREADS + t,
//           then + GS_BLOCKS*GS_THREADS, ... in ascending order, and the block sums its
//           threads with block_sum's fixed butterfly: one partial per block;
//   pass 2: one block sums the GS_BLOCKS partials in a fixed order (thread t takes partials
//           t, t + GS_THREADS, ... ascending; then block_sum).
// Every addition therefore happens in an order fixed by (n) alone: two runs give the same bits.
//
// Why double partials (not fp32 + Kahan): the CPU reference (vet_train_grad_norm) sums the
// squares in double, so double keeps the two within ~1e-15 relative, far below anything that
// could change a clipping decision; the pass reads 4 bytes per element and is memory-bound
// (67 MB in ~20 us at H200 bandwidth) and H100/H200 run FP64 at half the FP32 rate, so the
// doubles are free there (even at 1/64 rate on a consumer card it is ~30 us for 16.8M).
#include "common.cuh"

#define GS_BLOCKS 1024
#define GS_THREADS 256  // a multiple of 32, as block_sum needs

__device__ inline unsigned long long warp_min_u64(unsigned long long x) {
    for (int o = 16; o > 0; o >>= 1) {
        unsigned long long y = __shfl_xor_sync(0xffffffffu, x, o);
        x = y < x ? y : x;
    }
    return x;
}

// block_sum's shape for the minimum index; `shared` holds 32 slots.
__device__ inline unsigned long long block_min_u64(unsigned long long x, unsigned long long *shared,
                                                   unsigned long long none) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    x = warp_min_u64(x);
    if (lane == 0) shared[warp] = x;
    __syncthreads();
    unsigned long long v = lane < nwarps ? shared[lane] : none;
    v = warp_min_u64(v);
    __syncthreads();
    return v;
}

// Pass 1: part_sum[b] = the sum of (double)(g[i] * unscale)^2 over block b's elements,
// part_bad[b] = the smallest i among them with g[i] not finite, or n.
__global__ void grad_stats_partial_kernel(double *part_sum, unsigned long long *part_bad, const float *g,
                                          size_t n, float unscale) {
    __shared__ double s_sum[32];
    __shared__ unsigned long long s_bad[32];
    double acc = 0.0;
    unsigned long long bad = n;
    size_t stride = (size_t)GS_BLOCKS * GS_THREADS;
    for (size_t i = (size_t)blockIdx.x * GS_THREADS + threadIdx.x; i < n; i += stride) {
        float gi = g[i];
        float u = __fmul_rn(gi, unscale);                       // rounded to float, as the CPU
        acc = __dadd_rn(acc, __dmul_rn((double)u, (double)u));  // no FMA: the CPU's two roundings
        if (bad == n && !isfinite(gi)) bad = i;  // a thread's indices ascend: its first is its least
    }
    double s = block_sum(acc, s_sum);
    unsigned long long b = block_min_u64(bad, s_bad, n);
    if (threadIdx.x == 0) part_sum[blockIdx.x] = s, part_bad[blockIdx.x] = b;
}

// Pass 2 (one block): out = {sqrt(the partials' sum), their least index}.
__global__ void grad_stats_final_kernel(vet_cuda_grad_stats *out, const double *part_sum,
                                        const unsigned long long *part_bad, size_t n) {
    __shared__ double s_sum[32];
    __shared__ unsigned long long s_bad[32];
    double acc = 0.0;
    unsigned long long bad = n;
    for (int i = threadIdx.x; i < GS_BLOCKS; i += GS_THREADS) {
        acc = __dadd_rn(acc, part_sum[i]);
        bad = part_bad[i] < bad ? part_bad[i] : bad;
    }
    double s = block_sum(acc, s_sum);
    unsigned long long b = block_min_u64(bad, s_bad, n);
    if (threadIdx.x == 0) {
        out->norm = sqrt(s);  // IEEE sqrt, correctly rounded: as the CPU's
        out->first_bad = b;
    }
}

extern "C" size_t grad_stats_scratch_bytes(void) {
    return (size_t)GS_BLOCKS * (sizeof(double) + sizeof(unsigned long long));
}

extern "C" int grad_stats_cuda(vet_cuda *ctx, vet_cuda_grad_stats *out, const float *g, size_t n,
                               float unscale, void *scratch, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (!out || !scratch || (n && !g))
        return vet_errf(err, "%s:%d: grad_stats: NULL device buffer", __FILE__, __LINE__);
    double *part_sum = (double *)scratch;
    unsigned long long *part_bad = (unsigned long long *)(part_sum + GS_BLOCKS);
    LAUNCH(grad_stats_partial_kernel, GS_BLOCKS, GS_THREADS, 0, ctx->stream, part_sum, part_bad, g, n, unscale);
    LAUNCH_CHECK("grad_stats (pass 1)", err);
    LAUNCH(grad_stats_final_kernel, 1, GS_THREADS, 0, ctx->stream, out, part_sum, part_bad, n);
    LAUNCH_CHECK("grad_stats (pass 2)", err);
    return 0;
}
