// quant.cu — quantized base weights (lib/model/quant.h's int8 per-row and NF4 block-64 formats):
// dequantization to fp32 or bf16, and the linear layer on a quantized weight.
//
// The linear layer is deliberately NOT a fused dequantize-GEMM kernel: the weight of one
// projection is dequantized into a scratch buffer (OC*C bf16: 90 MB for a 7B MLP matrix),
// then the existing cuBLAS GEMM runs on it. Correct and simple; the price is one extra pass
// over the weight per GEMM (small next to the GEMM at training batch sizes). A fused kernel
// that dequantizes tiles in shared memory would remove the scratch and that pass.
//
// Each element is dequantized with one fp32 multiply (__fmul_rn: never contracted), as
// lib/model/quant.c does on the host, so the device values equal vet_dequant_* bit for bit.
#include "common.cuh"
// After common.cuh, so err.h's declarations already have C linkage (ops_cuda.h's extern "C").
#include "model/quant.h"

#define THREADS 256

__constant__ float nf4_code[16] = VET_NF4_CODES;

static int blocks_for(size_t n) { return grid_blocks(n, THREADS); }

__device__ inline void put(float *out, size_t i, float v) { out[i] = v; }
__device__ inline void put(__nv_bfloat16 *out, size_t i, float v) { out[i] = __float2bfloat16_rn(v); }

// out (OC,C) = q (OC,C) * scale[row]
template <typename T>
__global__ void dequant_int8_kernel(T *out, const int8_t *q, const float *scale, int OC, int C) {
    size_t n = (size_t)OC * C;
    GRID_STRIDE(i, n) put(out, i, __fmul_rn((float)q[i], scale[i / C]));
}

// out (n) = nf4[code of i] * absmax[i / 64]; code of i: high nibble of byte i/2 for even i.
template <typename T>
__global__ void dequant_nf4_kernel(T *out, const uint8_t *codes, const float *absmax, size_t n) {
    GRID_STRIDE(i, n) {
        unsigned b = codes[i >> 1];
        unsigned c = (i & 1) ? (b & 15u) : (b >> 4);
        put(out, i, __fmul_rn(nf4_code[c], absmax[i / VET_NF4_BLOCK]));
    }
}

static int check_qweight(const vet_cuda_qweight *w, int OC, int C, vet_err *err) {
    if (!w || !w->q || !w->scale)
        return vet_errf(err, "%s:%d: quantized weight without its data", __FILE__, __LINE__);
    if (w->kind != VET_CUDA_Q_INT8 && w->kind != VET_CUDA_Q_NF4)
        return vet_errf(err, "%s:%d: unknown quantized weight kind %d", __FILE__, __LINE__, w->kind);
    if (OC < 0 || C < 0) return vet_errf(err, "%s:%d: weight of %d x %d", __FILE__, __LINE__, OC, C);
    return 0;
}

template <typename T>
static int dequant(vet_cuda *ctx, T *out, const vet_cuda_qweight *w, int OC, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_qweight(w, OC, C, err) < 0) return -1;
    size_t n = (size_t)OC * C;
    if (n == 0) return 0;
    if (w->kind == VET_CUDA_Q_INT8)
        dequant_int8_kernel<T><<<blocks_for(n), THREADS, 0, ctx->stream>>>(out, (const int8_t *)w->q, w->scale,
                                                                          OC, C);
    else
        dequant_nf4_kernel<T><<<blocks_for(n), THREADS, 0, ctx->stream>>>(out, (const uint8_t *)w->q, w->scale,
                                                                         n);
    LAUNCH_CHECK(w->kind == VET_CUDA_Q_INT8 ? "dequant int8" : "dequant nf4", err);
    return 0;
}

extern "C" int dequant_cuda(vet_cuda *ctx, float *out, const vet_cuda_qweight *w, int OC, int C,
                            vet_err *err) {
    return dequant<float>(ctx, out, w, OC, C, err);
}

extern "C" int dequant_bf16_cuda(vet_cuda *ctx, uint16_t *out, const vet_cuda_qweight *w, int OC, int C,
                                 vet_err *err) {
    return dequant<__nv_bfloat16>(ctx, (__nv_bfloat16 *)out, w, OC, C, err);
}

extern "C" int matmul_forward_q_cuda(vet_cuda *ctx, float *out, const float *inp, const uint16_t *inp16,
                                     const vet_cuda_qweight *w, const float *bias, int N, int C, int OC,
                                     void *scratch, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || OC <= 0) return 0;
    if (inp16) {
        if (dequant_bf16_cuda(ctx, (uint16_t *)scratch, w, OC, C, err) < 0) return -1;
        return matmul_forward_bf16_cuda(ctx, out, inp16, (const uint16_t *)scratch, bias, N, C, OC, err);
    }
    if (dequant_cuda(ctx, (float *)scratch, w, OC, C, err) < 0) return -1;
    return matmul_forward_cuda(ctx, out, inp, (const float *)scratch, bias, N, C, OC, err);
}

extern "C" int matmul_backward_q_cuda(vet_cuda *ctx, float *dinp, const float *dout, const uint16_t *dout16,
                                      const vet_cuda_qweight *w, int N, int C, int OC, void *scratch,
                                      vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || !dinp) return 0;
    if (dout16) {
        if (dequant_bf16_cuda(ctx, (uint16_t *)scratch, w, OC, C, err) < 0) return -1;
        return matmul_backward_bf16_cuda(ctx, dinp, NULL, dout16, NULL, (const uint16_t *)scratch, N, C, OC, err);
    }
    if (dequant_cuda(ctx, (float *)scratch, w, OC, C, err) < 0) return -1;
    return matmul_backward_cuda(ctx, dinp, NULL, NULL, dout, NULL, (const float *)scratch, N, C, OC, err);
}
