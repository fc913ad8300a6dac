// dropout.cu — inverted dropout with exactly lib/model/ops_cpu.c's masks (dropout_forward /
// dropout_backward), made on the device.
//
// The CPU gives row n its own xoshiro256** stream, seeded by vet_rng_hash(seed, row0 + n) (row0:
// the batch's first row in the data-parallel global micro-batch, 0 alone), and draws
// one uniform per column in order: element (n,c) becomes 0 when its draw is < p, else
// x * (1/(1-p)). The kernel runs the same generator (lib/base/rng_core.h, the code lib/base/rng.c is
// built on) with the same integer arithmetic, so the masks are the CPU's bit for bit, and
// the one fp32 multiply (and, in backward, the one add) are done with the _rn intrinsics so
// nvcc cannot fuse them into an FMA: the values are the CPU's bit for bit too.
#include "common.cuh"
#include "base/rng_core.h"

// One thread per row. A row's mask is one sequential stream (column c is the row's c-th draw)
// and xoshiro256** has no cheap jump to draw c, so a row cannot be split over threads without
// replaying its prefix or drawing other masks than the CPU's; rows are independent, so the N
// rows (B*T: 2048 at 4 x 512) run in parallel. A warp owns 32 consecutive rows. To keep the
// memory traffic coalesced anyway, the warp goes over the columns in tiles of 32: each lane
// draws its own row's next 32 keep bits (vet_rng_core_keep_bits), then the warp walks the 32
// rows of the tile with lane j on column c0 + j, taking row i's bits from lane i with a
// shuffle, so every load and store of the warp is 128 contiguous bytes of one row.
//
// Cost: the draws are a dependent chain of C xoshiro steps per thread (64-bit integer work),
// far more than the memory traffic; a call is roughly C steps' latency, not N*C/throughput.
// Splitting rows would need a GF(2) jump table per column tile (future work if it shows).
__global__ void dropout_rows_kernel(float *out, const float *inp, float p, float keep_scale,
                                    uint64_t seed, int64_t key0, int N, int C, int accumulate) {
    const int lane = threadIdx.x % 32;
    const int row0 = (blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32) * 32;  // the warp's first row
    if (row0 >= N) return;  // the whole warp: the shuffles below see all 32 lanes or none
    const int n = row0 + lane, rows = min(32, N - row0);
    uint64_t s[4];
    if (n < N) vet_rng_core_seed(s, vet_rng_core_hash(seed, (uint64_t)(key0 + n)));
    for (int c0 = 0; c0 < C; c0 += 32) {
        const int cols = min(32, C - c0), c = c0 + lane;
        uint32_t bits = n < N ? vet_rng_core_keep_bits(s, p, cols) : 0u;
        for (int i = 0; i < rows; i++) {
            uint32_t row_bits = __shfl_sync(0xffffffffu, bits, i);
            if (lane >= cols) continue;
            size_t at = (size_t)(row0 + i) * C + c;
            float v = (row_bits >> lane) & 1u ? __fmul_rn(inp[at], keep_scale) : 0.0f;
            out[at] = accumulate ? __fadd_rn(out[at], v) : v;
        }
    }
}

#define DROPOUT_THREADS 128  // 4 warps = 128 rows per block

static int dropout_rows(vet_cuda *ctx, float *out, const float *inp, float p, uint64_t seed, int64_t key0,
                        int N, int C, int accumulate, const char *what, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || C <= 0) return 0;
    size_t n = (size_t)N * C;
    if (p <= 0.0f) {  // the CPU's identity: a copy, or an add (no draws)
        if (accumulate) return add_inplace_cuda(ctx, out, inp, n, err);
        if (out != inp)
            CUDA_TRY(cudaMemcpyAsync(out, inp, n * sizeof(float), cudaMemcpyDeviceToDevice, ctx->stream), err);
        return 0;
    }
    // The scale as the CPU computes it, in fp32 on the host: the same bits.
    float keep_scale = 1.0f / (1.0f - p);
    dropout_rows_kernel<<<ceil_div(N, DROPOUT_THREADS), DROPOUT_THREADS, 0, ctx->stream>>>(
        out, inp, p, keep_scale, seed, key0, N, C, accumulate);
    LAUNCH_CHECK(what, err);
    return 0;
}

extern "C" int dropout_forward_cuda(vet_cuda *ctx, float *out, const float *inp, float p, uint64_t seed,
                                    int64_t row0, int N, int C, vet_err *err) {
    return dropout_rows(ctx, out, inp, p, seed, row0, N, C, 0, "dropout_forward", err);
}

extern "C" int dropout_backward_cuda(vet_cuda *ctx, float *dinp, const float *dout, float p,
                                     uint64_t seed, int64_t row0, int N, int C, vet_err *err) {
    return dropout_rows(ctx, dinp, dout, p, seed, row0, N, C, 1, "dropout_backward", err);
}
