// matmul.cu — GEMMs through cuBLAS and the linear layer built on them.
//
// cuBLAS is column-major; vet is row-major. A row-major matrix X (r,c) with leading
// dimension ld is, byte for byte, the column-major X^T (c,r). So the row-major product
// C = op(A)·op(B) is computed as the column-major C^T = op(B)^T · op(A)^T: swap the operands
// and M with N, keep each transpose flag with its own operand.
#include "common.cuh"

#define THREADS 256

// C (M,N) = alpha op(A)(M,K) · op(B)(K,N) + beta C, row-major; A, B of type ab_type, C of c_type.
static int gemm_ex(vet_cuda *ctx, int transA, int transB, int M, int N, int K, float alpha,
                   const void *A, int lda, const void *B, int ldb, float beta, void *C, int ldc,
                   cudaDataType_t ab_type, vet_err *err, cudaDataType_t c_type = CUDA_R_32F) {
    CHECK_CTX(ctx, err);
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0)  // leading dimensions would be 0, which cuBLAS rejects; vet never asks for it
        return vet_errf(err, "%s:%d: GEMM with inner dimension K = %d", __FILE__, __LINE__, K);
    cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    // CUBLAS_COMPUTE_32F: fp32 accumulation and no TF32 shortcut, for bf16 inputs too.
    CUBLAS_TRY(vet_cublas.gemm_ex(ctx->blas, opB, opA, N, M, K, &alpha, B, ab_type, ldb, A, ab_type, lda,
                                  &beta, C, c_type, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               err);
    return 0;
}

extern "C" int vet_cuda_sgemm(vet_cuda *ctx, int transA, int transB, int M, int N, int K,
                              float alpha, const float *A, int lda, const float *B, int ldb,
                              float beta, float *C, int ldc, vet_err *err) {
    return gemm_ex(ctx, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, CUDA_R_32F, err);
}

extern "C" int vet_cuda_gemm_bf16(vet_cuda *ctx, int transA, int transB, int M, int N, int K,
                                  float alpha, const uint16_t *A, int lda, const uint16_t *B,
                                  int ldb, float beta, float *C, int ldc, vet_err *err) {
    return gemm_ex(ctx, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, CUDA_R_16BF, err);
}

extern "C" int vet_cuda_gemm_half_out(vet_cuda *ctx, int fmt, int transA, int transB, int M, int N, int K,
                                      float alpha, const uint16_t *A, int lda, const uint16_t *B, int ldb,
                                      uint16_t *C, int ldc, vet_err *err) {
    if (vet_cuda_check_fmt16(fmt, "vet_cuda_gemm_half_out", err) < 0) return -1;
    const cudaDataType_t t = fmt == VET_CUDA_F16 ? CUDA_R_16F : CUDA_R_16BF;
    return gemm_ex(ctx, transA, transB, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc, t, err, t);
}

// out (N,OC) rows = bias (OC): the GEMM then adds onto it with beta = 1 (as the CPU does).
__global__ void fill_rows_kernel(float *out, const float *bias, int N, int OC) {
    size_t total = (size_t)N * OC;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = bias[i % OC];
}

// The same rows in a 16-bit format: the bias rounded as a model cast to it holds it.
__global__ void fill_rows16_kernel(uint16_t *out, const float *bias, int N, int OC, int fmt) {
    size_t total = (size_t)N * OC;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = round_to16(bias[i % OC], fmt);
}

extern "C" int matmul_forward_half_out_cuda(vet_cuda *ctx, int fmt, uint16_t *out16, const uint16_t *inp16,
                                            const uint16_t *weight, const float *bias, int N, int C, int OC,
                                            vet_err *err) {
    CHECK_CTX(ctx, err);
    if (vet_cuda_check_fmt16(fmt, "matmul_forward_half_out", err) < 0) return -1;
    if (!bias) return vet_cuda_gemm_half_out(ctx, fmt, 0, 1, N, OC, C, 1.0f, inp16, C, weight, C, out16, OC, err);
    if ((size_t)N * OC == 0) return 0;
    int blocks = (int)(((size_t)N * OC + THREADS - 1) / THREADS);
    if (blocks > 65535) blocks = 65535;
    LAUNCH(fill_rows16_kernel, blocks, THREADS, 0, ctx->stream, out16, bias, N, OC, fmt);
    LAUNCH_CHECK("matmul_forward_half_out (bias)", err);
    const cudaDataType_t t = fmt == VET_CUDA_F16 ? CUDA_R_16F : CUDA_R_16BF;
    return gemm_ex(ctx, 0, 1, N, OC, C, 1.0f, inp16, C, weight, C, 1.0f, out16, OC, t, err, t);
}

// dbias[o] += sum_n dout[n,o]: one thread per column, rows in order, double accumulator
// (the CPU's order and precision; deterministic).
__global__ void column_sum_kernel(float *dbias, const float *dout, int N, int OC) {
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= OC) return;
    double acc = 0;
    for (int n = 0; n < N; n++) acc += dout[(size_t)n * OC + o];
    dbias[o] += (float)acc;
}

static int bias_rows(vet_cuda *ctx, float *out, const float *bias, int N, int OC, vet_err *err) {
    size_t total = (size_t)N * OC;
    int blocks = (int)((total + THREADS - 1) / THREADS < 65536 ? (total + THREADS - 1) / THREADS : 65536);
    LAUNCH(fill_rows_kernel, blocks, THREADS, 0, ctx->stream, out, bias, N, OC);
    LAUNCH_CHECK("matmul bias", err);
    return 0;
}

extern "C" int matmul_forward_cuda(vet_cuda *ctx, float *out, const float *inp, const float *weight,
                                   const float *bias, int N, int C, int OC, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || OC <= 0) return 0;
    float beta = 0.0f;
    if (bias) {
        if (bias_rows(ctx, out, bias, N, OC, err) < 0) return -1;
        beta = 1.0f;
    }
    // out (N,OC) = inp (N,C) · weight^T (C,OC)
    return vet_cuda_sgemm(ctx, 0, 1, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC, err);
}

extern "C" int matmul_backward_cuda(vet_cuda *ctx, float *dinp, float *dweight, float *dbias,
                                    const float *dout, const float *inp, const float *weight,
                                    int N, int C, int OC, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0) return 0;
    if (dinp &&  // (N,C) += dout (N,OC) · weight (OC,C)
        vet_cuda_sgemm(ctx, 0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C, err) < 0)
        return -1;
    if (dweight &&  // (OC,C) += dout^T (OC,N) · inp (N,C)
        vet_cuda_sgemm(ctx, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C, err) < 0)
        return -1;
    if (dbias && OC > 0) {
        LAUNCH(column_sum_kernel, ceil_div(OC, THREADS), THREADS, 0, ctx->stream, dbias, dout, N, OC);
        LAUNCH_CHECK("matmul_backward (dbias)", err);
    }
    return 0;
}

extern "C" int matmul_forward_bf16_cuda(vet_cuda *ctx, float *out, const uint16_t *inp,
                                        const uint16_t *weight, const float *bias, int N, int C,
                                        int OC, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || OC <= 0) return 0;
    float beta = 0.0f;
    if (bias) {
        if (bias_rows(ctx, out, bias, N, OC, err) < 0) return -1;
        beta = 1.0f;
    }
    return vet_cuda_gemm_bf16(ctx, 0, 1, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC, err);
}

extern "C" int matmul_backward_bf16_cuda(vet_cuda *ctx, float *dinp, float *dweight,
                                         const uint16_t *dout, const uint16_t *inp,
                                         const uint16_t *weight, int N, int C, int OC,
                                         vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0) return 0;
    if (dinp && vet_cuda_gemm_bf16(ctx, 0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C, err) < 0)
        return -1;
    if (dweight && vet_cuda_gemm_bf16(ctx, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C, err) < 0)
        return -1;
    return 0;
}
