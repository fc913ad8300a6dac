// quant.cu — quantized base weights (lib/model/quant.h's int8 per-row and NF4 block-64 formats):
// dequantization to fp32 or bf16, and the linear layer on a quantized weight.
//
// The linear layer at training's row counts is deliberately NOT a fused dequantize-GEMM kernel:
// the weight of one projection is dequantized into a scratch buffer (OC*C bf16: 90 MB for a 7B
// MLP matrix), then the existing cuBLAS GEMM runs on it. Correct and simple; the price is one extra pass
// over the weight per GEMM (small next to the GEMM at training batch sizes). A fused kernel
// that dequantizes tiles in shared memory would remove the scratch and that pass. A decode step
// (up to 64 rows) reads the packed codes instead (matmul_rows_q, matmul_rows_q_mma, below).
//
// Each element is dequantized with one fp32 multiply (__fmul_rn: never contracted), as
// lib/model/quant.c does on the host, so the device values equal vet_dequant_* bit for bit.
#include <type_traits>

#include "common.cuh"  // and through ops_cuda.h, model/quant.h (the formats, VET_QROWS_*)
#include "mma_ops.cuh"
#include "quant_unpack.cuh"

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

// absmax' of nf4 block b (lib/model/quant.h's vet_nf4_dq_absmax): aq[b] * s[b / 256] + mean,
// one rounded multiply and one rounded add, as on the host.
__device__ inline float nf4_absmax(const int8_t *aq, const float *scales, size_t b) {
    return __fadd_rn(__fmul_rn((float)aq[b], scales[1 + b / VET_NF4_DQ_GROUP]), scales[0]);
}

// out (n) = nf4[code of i] * absmax'[i / 64]; code of i: high nibble of byte i/2 for even i;
// the int8 absmax values follow the codes (aq = codes + ceil(n/2)).
template <typename T>
__global__ void dequant_nf4_kernel(T *out, const uint8_t *codes, const float *scales, size_t n) {
    const int8_t *aq = (const int8_t *)(codes + (n + 1) / 2);
    GRID_STRIDE(i, n) {
        unsigned b = codes[i >> 1];
        unsigned c = (i & 1) ? (b & 15u) : (b >> 4);
        put(out, i, __fmul_rn(nf4_code[c], nf4_absmax(aq, scales, i / VET_NF4_BLOCK)));
    }
}

// The same values, 8 consecutive elements a thread (elements 8 g .. 8 g + 7), for aligned
// shapes: one 8-byte (int8) or 4-byte (nf4) load of the packed group, one scale (a row's, or an
// nf4 block's: 8 divides 64), one 32- or 16-byte store, and nf4's codebook from shared memory.
// Why: the element-a-thread kernels above made each thread load a byte, divide a 64-bit index
// for its scale and (nf4) read the __constant__ codebook at 16 different addresses a warp, which
// constant memory serializes: on the first H200 lease an nf4 step cost ~100 ms more than a bf16
// one, ~10x the bytes the dequantization moves.
__device__ inline void put8(float *out, size_t i, const float v[8]) {
    float4 *o = (float4 *)(out + i);
    o[0] = make_float4(v[0], v[1], v[2], v[3]);
    o[1] = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ inline void put8(__nv_bfloat16 *out, size_t i, const float v[8]) {
    unsigned w[4];
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const __nv_bfloat162 h = __floats2bfloat162_rn(v[2 * k], v[2 * k + 1]);  // .x (lower) in the low half
        w[k] = *(const unsigned *)&h;
    }
    *(uint4 *)(out + i) = make_uint4(w[0], w[1], w[2], w[3]);
}

// C a multiple of 8 (a group never crosses a row), q 8-byte and out 16-byte aligned.
template <typename T>
__global__ void dequant_int8_vec_kernel(T *out, const int8_t *q, const float *scale, int C, size_t groups) {
    GRID_STRIDE(g, groups) {
        const size_t i = 8 * g;
        const float s = scale[i / C];
        const uint2 b = *(const uint2 *)(q + i);
        float v[8];
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] = __fmul_rn((float)unpack_int8(b, j), s);
        put8(out, i, v);
    }
}

// n a multiple of 8, codes 4-byte and out 16-byte aligned.
template <typename T>
__global__ void dequant_nf4_vec_kernel(T *out, const uint8_t *codes, const float *scales, size_t n) {
    __shared__ float code[16];
    if (threadIdx.x < 16) code[threadIdx.x] = nf4_code[threadIdx.x];
    __syncthreads();
    const int8_t *aq = (const int8_t *)(codes + (n + 1) / 2);
    GRID_STRIDE(g, n / 8) {
        const size_t i = 8 * g;
        const unsigned word = *(const unsigned *)(codes + i / 2);
        const float a = nf4_absmax(aq, scales, i / VET_NF4_BLOCK);
        float v[8];
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] = __fmul_rn(code[unpack_nf4(word, j)], a);
        put8(out, i, v);
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
    const bool out16 = ((uintptr_t)out & 15) == 0;
    if (w->kind == VET_CUDA_Q_INT8 && C % 8 == 0 && out16 && ((uintptr_t)w->q & 7) == 0)
        LAUNCH((dequant_int8_vec_kernel<T>), blocks_for(n / 8), THREADS, 0, ctx->stream, out, (const int8_t *)w->q,
                                                                                   w->scale, C, n / 8);
    else if (w->kind == VET_CUDA_Q_INT8)
        LAUNCH((dequant_int8_kernel<T>), blocks_for(n), THREADS, 0, ctx->stream, out, (const int8_t *)w->q, w->scale,
                                                                          OC, C);
    else if (n % 8 == 0 && out16 && ((uintptr_t)w->q & 3) == 0)
        LAUNCH((dequant_nf4_vec_kernel<T>), blocks_for(n / 8), THREADS, 0, ctx->stream, out, (const uint8_t *)w->q,
                                                                                  w->scale, n);
    else
        LAUNCH((dequant_nf4_kernel<T>), blocks_for(n), THREADS, 0, ctx->stream, out, (const uint8_t *)w->q, w->scale,
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

// --- the decode step's linear layer on the packed codes -------------------------------------
// out (N,OC) = x (N,C) · W^T + bias for N <= VET_QROWS_MAX rows: a decode step reads every weight
// once for a handful of rows, so it is bound by the bytes of W. Dequantizing into scratch first
// moves 0.56 (nf4) or 1 byte a weight in, 2 out and 2 back into the GEMM; this kernel moves
// only the packed bytes. lib/model/quant_rows.c is its arithmetic on the CPU, in its order (see
// model/quant.h): one warp a row of W, lane l the groups of 8 columns at 8 (l + 32 k), fmaf
// into one sum per input row, the warp's xor butterfly (warp_sum), then the bias.
//
// It takes only what matmul_rows_q_fits says (ops_cuda.h): rows of a multiple of 8 columns on
// aligned buffers, so every group is whole and read by vector loads. A model's matrices are;
// an odd shape (a tiny test model's) goes through scratch, and no slow element-by-element
// variant adds its code to every program that links the kernels.
#define QROWS_WARPS 8

static_assert(VET_QROWS_LANES == 32 && VET_QROWS_GROUP == 8, "the kernel's layout is quant.h's");

// The 8 dequantized weights of the group at flat index i (i % 8 == 0): one 8-byte (int8) or
// 4-byte (nf4) load, and for nf4 one absmax (a group of 8 never crosses a block of 64).
template <int KIND>
__device__ inline void group_weights(float w[VET_QROWS_GROUP], const void *q, const int8_t *aq, const float *scale,
                                     const float *code, size_t i, float rs) {
    if (KIND == VET_CUDA_Q_INT8) {
        uint2 b = __ldg((const uint2 *)((const int8_t *)q + i));
#pragma unroll
        for (int j = 0; j < 8; j++) w[j] = __fmul_rn((float)unpack_int8(b, j), rs);
    } else {
        unsigned b = __ldg((const unsigned *)((const uint8_t *)q + i / 2));
        float a = nf4_absmax(aq, scale, i / VET_NF4_BLOCK);
#pragma unroll
        for (int j = 0; j < 8; j++) w[j] = __fmul_rn(code[unpack_nf4(b, j)], a);
    }
}

// The 8 inputs at x[xi..] (xi % 8 == 0): two float4 loads, or one 16-byte load of bf16 values
// widened exactly (a shift).
template <bool HALF>
__device__ inline void group_inputs(float xv[VET_QROWS_GROUP], const float *x, const __nv_bfloat16 *x16, size_t xi) {
    if (HALF) {
        uint4 p = __ldg((const uint4 *)(x16 + xi));
#pragma unroll
        for (int j = 0; j < 8; j++) xv[j] = __uint_as_float(unpack_bf16_bits(p, j));
    } else {
        float4 a = __ldg((const float4 *)(x + xi)), b = __ldg((const float4 *)(x + xi + 4));
        xv[0] = a.x, xv[1] = a.y, xv[2] = a.z, xv[3] = a.w;
        xv[4] = b.x, xv[5] = b.y, xv[6] = b.z, xv[7] = b.w;
    }
}

template <int KIND, bool HALF>
__global__ void __launch_bounds__(QROWS_WARPS * 32)
rows_q_kernel(float *out, const float *x, const __nv_bfloat16 *x16, const void *q, const float *scale,
              const float *bias, int N, int C, int OC) {
    __shared__ float code[16];
    if (threadIdx.x < 16) code[threadIdx.x] = nf4_code[threadIdx.x];  // lanes index it at random
    __syncthreads();
    int r = blockIdx.x * QROWS_WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= OC) return;  // a whole warp leaves together: no shuffle waits for it
    const size_t row = (size_t)r * C;
    const float rs = KIND == VET_CUDA_Q_INT8 ? scale[r] : 0.0f;
    const int8_t *aq = (const int8_t *)q + ((size_t)OC * C + 1) / 2;  // nf4: the absmax values after the codes
    float acc[VET_QROWS_MAX];
#pragma unroll
    for (int n = 0; n < VET_QROWS_MAX; n++) acc[n] = 0.0f;
    for (int c0 = VET_QROWS_GROUP * lane; c0 < C; c0 += VET_QROWS_GROUP * VET_QROWS_LANES) {
        float w[VET_QROWS_GROUP];
        group_weights<KIND>(w, q, aq, scale, code, row + c0, rs);
        if (HALF)
#pragma unroll
            for (int j = 0; j < VET_QROWS_GROUP; j++) w[j] = __bfloat162float(__float2bfloat16_rn(w[j]));
#pragma unroll
        for (int n = 0; n < VET_QROWS_MAX; n++) {
            if (n >= N) break;
            float xv[VET_QROWS_GROUP];
            group_inputs<HALF>(xv, x, x16, (size_t)n * C + c0);
#pragma unroll
            for (int j = 0; j < VET_QROWS_GROUP; j++) acc[n] = __fmaf_rn(xv[j], w[j], acc[n]);
        }
    }
#pragma unroll
    for (int n = 0; n < VET_QROWS_MAX; n++) {
        if (n >= N) break;
        float s = warp_sum(acc[n]);
        if (lane == 0) out[(size_t)n * OC + r] = bias ? __fadd_rn(s, bias[r]) : s;
    }
}

extern "C" int matmul_rows_q_cuda(vet_cuda *ctx, float *out, const float *inp, const uint16_t *inp16,
                                  const vet_cuda_qweight *w, const float *bias, int N, int C, int OC,
                                  vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_qweight(w, OC, C, err) < 0) return -1;
    if (N == 0 || OC == 0) return 0;
    if (!matmul_rows_q_fits(w, inp, inp16, N, C))
        return vet_errf(err, "%s:%d: matmul_rows_q takes 1 to %d rows of a multiple of %d columns on aligned "
                        "buffers, not %d x %d (use matmul_forward_q)", __FILE__, __LINE__, VET_QROWS_MAX,
                        VET_QROWS_GROUP, N, C);
    dim3 grid(ceil_div(OC, QROWS_WARPS)), block(QROWS_WARPS * 32);
    const __nv_bfloat16 *x16 = (const __nv_bfloat16 *)inp16;
    // the kernel for the weight's kind and the input's format
    auto kernel = w->kind == VET_CUDA_Q_INT8 ? (inp16 ? rows_q_kernel<VET_CUDA_Q_INT8, true>
                                                      : rows_q_kernel<VET_CUDA_Q_INT8, false>)
                                             : (inp16 ? rows_q_kernel<VET_CUDA_Q_NF4, true>
                                                      : rows_q_kernel<VET_CUDA_Q_NF4, false>);
    LAUNCH(kernel, grid, block, 0, ctx->stream, out, inp, x16, w->q, w->scale, bias, N, C, OC);
    LAUNCH_CHECK("matmul_rows_q", err);
    return 0;
}

// --- 9 to 64 rows on the tensor cores ------------------------------------------------------------
// out (N,OC) = x16 (N,C) · bf16(W)^T + bias for up to QMMA_ROWS rows (a decode step of a large
// batch: vet-generate's 64 slots), reading only the packed codes: the scratch path's numbers
// (each weight dequantized and rounded to bf16 as dequant_bf16_cuda does, fp32 sums) in the
// order of mma.sync's sums instead of cuBLAS's. Block: QMMA_FEAT output features (QMMA_NT n-tiles
// of 8), every row (MT m-tiles of 16), QMMA_WARPS warps splitting C in 32-column chunks (warp w:
// chunks w, w + QMMA_WARPS, ...). Lane (g, t) loads the group of 8 columns 8t..8t+7 of a chunk for
// the rows g and g + 8 of each m-tile and for feature g of each n-tile: the k order of
// lora_mma.cu's rows kernel (k position 2t+8i+h of half j is column 8t+4j+2i+h, for both
// operands). Each code is dequantized once; each block reads all of x (through L2), so x's reads
// are 2 N / QMMA_FEAT bytes a weight: 4 at 64 rows, against ~4.5 through scratch from memory.
// The warps' sums meet in shared memory, the upper half's added to the lower's, then the lower
// half's in warp order (a fixed order), then the bias.

#define QMMA_WARPS 8
#define QMMA_ROWS 64
#define QMMA_NT 4
#define QMMA_FEAT (8 * QMMA_NT)

template <int KIND, int MT>
__global__ void __launch_bounds__(QMMA_WARPS * 32)
rows_q_mma_kernel(float *out, const __nv_bfloat16 *x16, const void *q, const float *scale, const float *bias, int N,
                  int C, int OC) {
    __shared__ float code[16];
    __shared__ float part[QMMA_WARPS / 2][MT * 16][QMMA_FEAT];
    if (threadIdx.x < 16) code[threadIdx.x] = nf4_code[threadIdx.x];
    __syncthreads();
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4, o0 = blockIdx.x * QMMA_FEAT;
    const int8_t *aq = (const int8_t *)q + ((size_t)OC * C + 1) / 2;  // nf4: the absmax values after the codes
    float acc[MT][QMMA_NT][4];
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int nt = 0; nt < QMMA_NT; nt++) acc[m][nt][0] = acc[m][nt][1] = acc[m][nt][2] = acc[m][nt][3] = 0.0f;
    for (int k0 = warp * 32; k0 < C; k0 += QMMA_WARPS * 32) {
        const int k = k0 + 8 * t;  // C is a multiple of 8: a group is whole or past C
        unsigned wb[QMMA_NT][4];
#pragma unroll
        for (int nt = 0; nt < QMMA_NT; nt++) {
            const int o = o0 + 8 * nt + g;
            float w[VET_QROWS_GROUP] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
            if (o < OC && k < C)
                group_weights<KIND>(w, q, aq, scale, code, (size_t)o * C + k, KIND == VET_CUDA_Q_INT8 ? scale[o] : 0.0f);
#pragma unroll
            for (int i = 0; i < 4; i++) wb[nt][i] = pack_bf16(w[2 * i], w[2 * i + 1]);
        }
#pragma unroll
        for (int m = 0; m < MT; m++) {
            uint4 xa = make_uint4(0u, 0u, 0u, 0u), xb = xa;  // rows 16m + g and 16m + g + 8
            const int na = 16 * m + g, nb = na + 8;
            if (k < C && na < N) xa = __ldg((const uint4 *)(x16 + (size_t)na * C + k));
            if (k < C && nb < N) xb = __ldg((const uint4 *)(x16 + (size_t)nb * C + k));
            const unsigned a_lo[4] = {xa.x, xb.x, xa.y, xb.y}, a_hi[4] = {xa.z, xb.z, xa.w, xb.w};
#pragma unroll
            for (int nt = 0; nt < QMMA_NT; nt++) {
                mma_bf16(acc[m][nt], a_lo, wb[nt]);
                mma_bf16(acc[m][nt], a_hi, wb[nt] + 2);
            }
        }
    }
    const int hw = QMMA_WARPS / 2;
    for (int round = 0; round < 2; round++) {  // the upper half stores, then the lower adds its own
        if ((warp >= hw) == (round == 0))
#pragma unroll
            for (int m = 0; m < MT; m++)
#pragma unroll
                for (int nt = 0; nt < QMMA_NT; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        float *p = &part[warp % hw][16 * m + g + 8 * (e >> 1)][8 * nt + 2 * t + (e & 1)];
                        *p = round == 0 ? acc[m][nt][e] : __fadd_rn(acc[m][nt][e], *p);
                    }
        __syncthreads();
    }
    for (int i = threadIdx.x; i < MT * 16 * QMMA_FEAT; i += blockDim.x) {
        const int n = i / QMMA_FEAT, j = i % QMMA_FEAT, o = o0 + j;
        float s = 0.0f;
        for (int w = 0; w < hw; w++) s = __fadd_rn(s, part[w][n][j]);
        if (n < N && o < OC) out[(size_t)n * OC + o] = bias ? __fadd_rn(s, bias[o]) : s;
    }
}

extern "C" int matmul_rows_q_mma_cuda(vet_cuda *ctx, float *out, const uint16_t *inp16, const vet_cuda_qweight *w,
                                      const float *bias, int N, int C, int OC, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_qweight(w, OC, C, err) < 0) return -1;
    if (N == 0 || OC == 0) return 0;
    if (!matmul_rows_q_mma_fits(w, inp16, N, C))
        return vet_errf(err, "%s:%d: matmul_rows_q_mma takes 1 to %d bf16 rows of a multiple of %d columns on "
                        "aligned buffers, not %d x %d (use matmul_forward_q)", __FILE__, __LINE__, QMMA_ROWS,
                        VET_QROWS_GROUP, N, C);
    static_assert(QMMA_ROWS == VET_QMMA_ROWS, "ops_cuda.h's bound is the kernel's");
    const __nv_bfloat16 *x16 = (const __nv_bfloat16 *)inp16;
    auto go = [&](auto mt_c) {
        constexpr int MT = decltype(mt_c)::value;
        LAUNCH((w->kind == VET_CUDA_Q_INT8 ? rows_q_mma_kernel<VET_CUDA_Q_INT8, MT> : rows_q_mma_kernel<VET_CUDA_Q_NF4, MT>),
               ceil_div(OC, QMMA_FEAT), QMMA_WARPS * 32, 0, ctx->stream, out, x16, w->q, w->scale, bias, N, C, OC);
    };
    if (N <= 16)
        go(std::integral_constant<int, 1>{});
    else if (N <= 32)
        go(std::integral_constant<int, 2>{});
    else if (N <= 48)
        go(std::integral_constant<int, 3>{});
    else
        go(std::integral_constant<int, 4>{});
    LAUNCH_CHECK("matmul_rows_q_mma", err);
    return 0;
}
