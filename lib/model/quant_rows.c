// quant_rows.c — the decode step's linear layer on quantized weights, with the arithmetic of
// kernels/quant.cu's matmul_rows_q kernel (see quant.h for the order it fixes).
//
// Why it exists: the kernel reads the packed codes and sums in its own order (one warp a row,
// a butterfly at the end), so it cannot equal a GEMM on the dequantized matrix bit for bit.
// This file computes what the kernel computes. fmaf is a correctly rounded fused multiply-add
// on every C11 implementation, as __fmaf_rn is on the device, so the bits can match exactly.
#include <math.h>
#include <string.h>

#include "base/half.h"
#include "model/quant.h"

// The dequantized weight of flat element i = r * C + c (row scale rs for int8; aq the nf4
// absmax values of the double-quantized format).
static inline float weight_at(vet_quant_kind kind, const void *q, const int8_t *aq, const float *scale, size_t i,
                              float rs, int round_bf16) {
    float w = kind == VET_QUANT_INT8 ? (float)((const int8_t *)q)[i] * rs
                                     : vet_nf4_code[vet_nf4_get(q, i)] * vet_nf4_dq_absmax(aq, scale, i / VET_NF4_BLOCK);
    return round_bf16 ? vet_bf16_to_f32(vet_f32_to_bf16(w)) : w;
}

void vet_quant_rows_forward(float *out, const float *x, vet_quant_kind kind, const void *q, const float *scale,
                            const float *bias, int N, int C, int OC, int round_bf16) {
    const int stride = VET_QROWS_GROUP * VET_QROWS_LANES;
    const int8_t *aq = (const int8_t *)q + vet_nf4_bytes((size_t)OC * C);  // nf4 only
    // Rows of W are independent: threads change nothing in any row's order.
#pragma omp parallel for schedule(static) if ((size_t)OC * C * N >= (1u << 20))
    for (int r = 0; r < OC; r++) {
        size_t row = (size_t)r * C;
        float rs = kind == VET_QUANT_INT8 ? scale[r] : 0.0f;
        for (int n = 0; n < N; n++) {
            const float *xn = x + (size_t)n * C;
            float lane[VET_QROWS_LANES], next[VET_QROWS_LANES];
            for (int l = 0; l < VET_QROWS_LANES; l++) {
                float acc = 0.0f;
                for (int c0 = VET_QROWS_GROUP * l; c0 < C; c0 += stride)
                    for (int j = 0; j < VET_QROWS_GROUP && c0 + j < C; j++)
                        acc = fmaf(xn[c0 + j], weight_at(kind, q, aq, scale, row + c0 + j, rs, round_bf16), acc);
                lane[l] = acc;
            }
            for (int off = VET_QROWS_LANES / 2; off > 0; off /= 2) {
                for (int l = 0; l < VET_QROWS_LANES; l++) next[l] = lane[l] + lane[l ^ off];
                memcpy(lane, next, sizeof lane);
            }
            out[(size_t)n * OC + r] = bias ? lane[0] + bias[r] : lane[0];
        }
    }
}
