// dropout.cu — inverted dropout with exactly lib/model/ops_cpu.c's masks (dropout_forward /
// dropout_backward), made on the device.
//
// The masks come from a counter-based generator (lib/base/philox.h): element (n, c) is kept by
// vet_dropout_keep4(seed, row0 + n, c / 4, thr), a pure function of its coordinates (row0: the
// batch's first row in the data-parallel global micro-batch, 0 alone). So every element is
// independent work: one thread per four columns of a row (one Philox4x32-10 call gives all
// four), the whole (N, C) tensor in parallel, nothing carried from element to element, no
// mask stored between the forward, the recompute and the backward. The CPU runs the same
// header, so the masks are its bits; the one fp32 multiply (and, in backward, the one add) are
// done with the _rn intrinsics so nvcc cannot fuse them into an FMA: the values are the CPU's
// bit for bit too.
//
// Cost: ten rounds of two 32-bit multiplies per four elements, against 16 bytes read and
// written per element; on an H200 a (2048, 4096) call is memory-bound (~67 MB, ~15 us).
#include "common.cuh"
#include "base/philox.h"

// Thread i of N * Q (Q = ceil(C / 4)) takes row i / Q, columns 4 * (i % Q) .. + 3. vec: C is a
// multiple of 4 and both pointers are 16-byte aligned, so the four columns are one float4.
__global__ void dropout_kernel(float *out, const float *inp, float keep_scale, uint32_t thr, uint64_t seed,
                               int64_t row0, int N, int C, int Q, int accumulate, int vec) {
    const size_t total = (size_t)N * Q;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int n = (int)(i / Q), q = (int)(i % Q);
        const unsigned bits = vet_dropout_keep4(seed, (uint64_t)(row0 + n), (uint32_t)q, thr);
        const size_t at = (size_t)n * C + 4 * (size_t)q;
        if (vec) {
            float4 x = *(const float4 *)(inp + at);
            float4 v = make_float4(bits & 1u ? __fmul_rn(x.x, keep_scale) : 0.0f,
                                   bits & 2u ? __fmul_rn(x.y, keep_scale) : 0.0f,
                                   bits & 4u ? __fmul_rn(x.z, keep_scale) : 0.0f,
                                   bits & 8u ? __fmul_rn(x.w, keep_scale) : 0.0f);
            if (accumulate) {
                float4 y = *(const float4 *)(out + at);
                v = make_float4(__fadd_rn(y.x, v.x), __fadd_rn(y.y, v.y), __fadd_rn(y.z, v.z), __fadd_rn(y.w, v.w));
            }
            *(float4 *)(out + at) = v;
            continue;
        }
        const int cols = min(4, C - 4 * q);
        for (int j = 0; j < cols; j++) {
            float v = (bits >> j) & 1u ? __fmul_rn(inp[at + j], keep_scale) : 0.0f;
            out[at + j] = accumulate ? __fadd_rn(out[at + j], v) : v;
        }
    }
}

#define DROPOUT_THREADS 256

static int dropout_rows(vet_cuda *ctx, float *out, const float *inp, float p, uint64_t seed, int64_t row0,
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
    // The scale and the threshold as the CPU computes them, on the host: the same bits.
    float keep_scale = 1.0f / (1.0f - p);
    uint32_t thr = vet_dropout_threshold(p);
    int Q = (C + 3) / 4;
    int vec = C % 4 == 0 && ((uintptr_t)out | (uintptr_t)inp) % 16 == 0;
    size_t threads = (size_t)N * Q;
    // Enough blocks to fill the device several times over; the grid-stride loop takes the rest.
    int blocks = (int)(threads / DROPOUT_THREADS + 1 < 65536 ? threads / DROPOUT_THREADS + 1 : 65536);
    LAUNCH(dropout_kernel, blocks, DROPOUT_THREADS, 0, ctx->stream, out, inp, keep_scale, thr, seed, row0, N, C, Q,
           accumulate, vec);
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
