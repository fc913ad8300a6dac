// rank_sum.cu — the sum in rank order of a data-parallel step's gradient chunk
// (kernels/host/gpu_collective.c): rank k has received `n_copies` copies of its chunk, one from
// every rank, and adds them ((x_0 + x_1) + x_2) + ..., exactly as lib/train/comm_mpi.c's host
// sum does, so that the device path and the host path give the same bits.
//
// One thread per element; each walks the copies in order. Only additions: nothing for nvcc
// to contract into an FMA, and it does not reassociate float adds, so the order is the code's.
#include "common.cuh"

#define THREADS 256

__global__ void sum_in_rank_order_kernel(float *out, const float *copies, int n_copies, size_t len) {
    GRID_STRIDE(i, len) {
        float s = copies[i];
        for (int j = 1; j < n_copies; j++) s += copies[(size_t)j * len + i];
        out[i] = s;
    }
}

extern "C" int sum_in_rank_order_cuda(vet_cuda *ctx, float *out, const float *copies, int n_copies,
                                      size_t len, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n_copies < 1) return vet_errf(err, "%s:%d: sum of %d copies", __FILE__, __LINE__, n_copies);
    if (len == 0) return 0;
    LAUNCH(sum_in_rank_order_kernel, grid_blocks(len, THREADS), THREADS, 0, ctx->stream, out, copies, n_copies, len);
    LAUNCH_CHECK("sum_in_rank_order", err);
    return 0;
}
