// fp16.cu — IEEE fp16 storage for vet-train --fp16: conversions, the embedding lookup on an
// fp16 table, and GEMMs on fp16 inputs with fp32 output and accumulation. The twins of the
// bf16 ops in elementwise.cu and matmul.cu (same shapes, same row-major convention).
#include <cuda_fp16.h>

#include "common.cuh"
#include "wide_io.cuh"

#define THREADS 256

static int blocks_for(size_t n) { return grid_blocks(n, THREADS); }

// --- fp16 <-> fp32 --------------------------------------------------------------------------
__global__ void f32_to_f16_kernel(__half *out, const float *inp, size_t n, bool vec) {
    WIDE_GROUPS(q, n, vec) {  // 8 a thread (wide_io.cuh): the same rounding
        float v[8];
        load8(v, inp + 8 * q);
        store8_16((uint16_t *)out + 8 * q, v, VET_CUDA_F16);
    }
    WIDE_TAIL(i, n, vec) out[i] = __float2half_rn(inp[i]);  // nearest even; > 65504 (past the tie) -> inf
}
__global__ void f16_to_f32_kernel(float *out, const __half *inp, size_t n) {
    GRID_STRIDE(i, n) out[i] = __half2float(inp[i]);  // exact
}

extern "C" int f32_to_f16_cuda(vet_cuda *ctx, uint16_t *out, const float *inp, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n == 0) return 0;
    const bool vec = aligned16(out) && aligned16(inp);
    LAUNCH(f32_to_f16_kernel, blocks_for(wide_threads(n, vec)), THREADS, 0, ctx->stream, (__half *)out, inp, n,
           vec);
    LAUNCH_CHECK("f32_to_f16", err);
    return 0;
}
extern "C" int f16_to_f32_cuda(vet_cuda *ctx, float *out, const uint16_t *inp, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n == 0) return 0;
    LAUNCH(f16_to_f32_kernel, blocks_for(n), THREADS, 0, ctx->stream, out, (const __half *)inp, n);
    LAUNCH_CHECK("f16_to_f32", err);
    return 0;
}

// --- embedding ------------------------------------------------------------------------------
__global__ void embedding_forward_f16_kernel(float *out, const int32_t *tokens, const __half *embed,
                                             int N, int C) {
    size_t total = (size_t)N * C;
    GRID_STRIDE(i, total) {
        size_t n = i / C, c = i % C;
        out[i] = __half2float(embed[(size_t)tokens[n] * C + c]);
    }
}

extern "C" int embedding_forward_f16_cuda(vet_cuda *ctx, float *out, const int32_t *tokens,
                                          const uint16_t *embed, int N, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || C <= 0) return 0;
    LAUNCH(embedding_forward_f16_kernel, blocks_for((size_t)N * C), THREADS, 0, ctx->stream, out, tokens,
           (const __half *)embed, N, C);
    LAUNCH_CHECK("embedding_forward_f16", err);
    return 0;
}

// --- GEMM -----------------------------------------------------------------------------------
// Row-major C (M,N) = alpha op(A)·op(B) + beta C as the column-major C^T = op(B)^T op(A)^T
// (operands swapped, M with N; see matmul.cu). fp16 inputs, fp32 output, CUBLAS_COMPUTE_32F:
// fp32 accumulation (never the fp16-accumulating CUBLAS_COMPUTE_16F).
extern "C" int vet_cuda_gemm_f16(vet_cuda *ctx, int transA, int transB, int M, int N, int K,
                                 float alpha, const uint16_t *A, int lda, const uint16_t *B, int ldb,
                                 float beta, float *C, int ldc, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0) return vet_errf(err, "%s:%d: GEMM with inner dimension K = %d", __FILE__, __LINE__, K);
    cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_TRY(vet_cublas.gemm_ex(ctx->blas, opB, opA, N, M, K, &alpha, B, CUDA_R_16F, ldb, A, CUDA_R_16F, lda,
                                  &beta, C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               err);
    return 0;
}

// out (N,OC) rows = bias: the GEMM then adds onto it with beta = 1 (as matmul.cu and the CPU).
__global__ void f16_bias_rows_kernel(float *out, const float *bias, int N, int OC) {
    size_t total = (size_t)N * OC;
    GRID_STRIDE(i, total) out[i] = bias[i % OC];
}

extern "C" int matmul_forward_f16_cuda(vet_cuda *ctx, float *out, const uint16_t *inp,
                                       const uint16_t *weight, const float *bias, int N, int C, int OC,
                                       vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || OC <= 0) return 0;
    float beta = 0.0f;
    if (bias) {
        LAUNCH(f16_bias_rows_kernel, blocks_for((size_t)N * OC), THREADS, 0, ctx->stream, out, bias, N, OC);
        LAUNCH_CHECK("matmul_forward_f16 (bias)", err);
        beta = 1.0f;
    }
    // out (N,OC) = inp (N,C) · weight^T (C,OC)
    return vet_cuda_gemm_f16(ctx, 0, 1, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC, err);
}

extern "C" int matmul_backward_f16_cuda(vet_cuda *ctx, float *dinp, float *dweight, const uint16_t *dout,
                                        const uint16_t *inp, const uint16_t *weight, int N, int C, int OC,
                                        vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0) return 0;
    if (dinp && vet_cuda_gemm_f16(ctx, 0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C, err) < 0)
        return -1;
    if (dweight && vet_cuda_gemm_f16(ctx, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C, err) < 0)
        return -1;
    return 0;
}
