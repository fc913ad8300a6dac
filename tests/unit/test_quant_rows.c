// test_quant_rows.c — lib/model/quant_rows.c, the CPU arithmetic of the decode step's linear
// layer on packed int8/nf4 codes (kernels/quant.cu's matmul_rows_q): its values against the
// dequantize-then-multiply definition (in double), on shapes that cross nf4 blocks and bytes
// between rows, rows shorter than a warp's stride and every row count up to VET_QROWS_MAX; the
// bf16 rounding of the weights; and the summation order quant.h documents (which the GPU parity
// test holds the kernel to bit for bit).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/half.h"
#include "base/rng.h"
#include "check.h"
#include "model/quant.h"

static float *randn(size_t n, float sd, vet_rng *r) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = sd * (float)vet_rng_normal(r);
    return x;
}

// out vs x·W^T + bias in double on the dequantized (optionally bf16-rounded) W, relative to the
// sum of |x||w| (the size of the fp32 rounding an fp32 sum can make); returns the worst ratio.
static double worst_rel(const float *out, const float *x, const float *w, const float *bias, int N, int C,
                        int OC) {
    double worst = 0;
    for (int n = 0; n < N; n++)
        for (int r = 0; r < OC; r++) {
            double s = bias ? bias[r] : 0, mag = bias ? fabs(bias[r]) : 0;
            for (int c = 0; c < C; c++) {
                s += (double)x[(size_t)n * C + c] * w[(size_t)r * C + c];
                mag += fabs((double)x[(size_t)n * C + c] * w[(size_t)r * C + c]);
            }
            double e = fabs(out[(size_t)n * OC + r] - s) / (mag > 0 ? mag : 1);
            if (!(e <= worst)) worst = e;
        }
    return worst;
}

static void one_shape(vet_quant_kind kind, int N, int C, int OC, int round_bf16, int with_bias, vet_rng *rng) {
    size_t nw = (size_t)OC * C;
    float *w = randn(nw, 0.05f, rng), *x = randn((size_t)N * C, 1.0f, rng), *bias = randn(OC, 1.0f, rng);
    float *wd = malloc(nw * sizeof(float)), *out = malloc((size_t)N * OC * sizeof(float));
    size_t qb = kind == VET_QUANT_INT8 ? nw : vet_nf4_dq_bytes(nw);
    size_t ns = kind == VET_QUANT_INT8 ? (size_t)OC : vet_nf4_dq_scales(nw);
    void *q = malloc(qb ? qb : 1);
    float *sc = malloc(ns * sizeof(float) + 1);
    vet_err err;
    int rc = kind == VET_QUANT_INT8 ? vet_quant_int8(q, sc, w, OC, C, &err) : vet_quant_nf4_dq(q, sc, w, nw, &err);
    CHECK(rc == 0);
    if (kind == VET_QUANT_INT8) vet_dequant_int8(wd, q, sc, OC, C);
    else vet_dequant_nf4_dq(wd, q, sc, nw);
    if (round_bf16)
        for (size_t i = 0; i < nw; i++) wd[i] = vet_bf16_to_f32(vet_f32_to_bf16(wd[i]));
    for (size_t i = 0; i < (size_t)N * OC; i++) out[i] = NAN;  // every output is written
    vet_quant_rows_forward(out, x, kind, q, sc, with_bias ? bias : NULL, N, C, OC, round_bf16);
    double e = worst_rel(out, x, wd, with_bias ? bias : NULL, N, C, OC);
    if (!(e < 1e-6))
        fprintf(stderr, "%s N=%d C=%d OC=%d bf16=%d bias=%d: rel err %.3g\n", vet_quant_name(kind), N, C, OC,
                round_bf16, with_bias, e);
    CHECK(e < 1e-6);
    free(w), free(x), free(bias), free(wd), free(out), free(q), free(sc);
}

// Odd widths put nf4 rows mid-byte and mid-block; widths under 256 leave lanes idle; 520 gives
// some lanes one more group than others.
static void test_values(void) {
    vet_rng rng;
    vet_rng_seed(&rng, 11);
    static const int widths[] = {1, 7, 37, 64, 256, 300, 520};
    for (int kind = VET_QUANT_INT8; kind <= VET_QUANT_NF4; kind++)
        for (size_t i = 0; i < sizeof widths / sizeof *widths; i++)
            for (int N = 1; N <= VET_QROWS_MAX; N += 3)
                one_shape(kind, N, widths[i], 5, N % 2, i % 2, &rng);
    one_shape(VET_QUANT_NF4, VET_QROWS_MAX, 1024, 9, 1, 1, &rng);
    one_shape(VET_QUANT_INT8, VET_QROWS_MAX, 1024, 9, 0, 1, &rng);
}

// Rows are independent: row n's outputs are those of a one-row call on row n alone.
static void test_rows_independent(void) {
    vet_rng rng;
    vet_rng_seed(&rng, 12);
    int N = 6, C = 300, OC = 7;
    float *w = randn((size_t)OC * C, 0.05f, &rng), *x = randn((size_t)N * C, 1.0f, &rng);
    uint8_t *q = malloc(vet_nf4_dq_bytes((size_t)OC * C));
    float *sc = malloc(vet_nf4_dq_scales((size_t)OC * C) * sizeof(float)), all[6 * 7], one[7];
    vet_err err;
    CHECK(vet_quant_nf4_dq(q, sc, w, (size_t)OC * C, &err) == 0);
    vet_quant_rows_forward(all, x, VET_QUANT_NF4, q, sc, NULL, N, C, OC, 0);
    int same = 1;
    for (int n = 0; n < N; n++) {
        vet_quant_rows_forward(one, x + (size_t)n * C, VET_QUANT_NF4, q, sc, NULL, 1, C, OC, 0);
        same &= !memcmp(one, all + n * OC, sizeof one);
    }
    CHECK(same);
    free(w), free(x), free(q), free(sc);
}

// The bf16 rounding of the weights happens: with it the outputs differ from the fp32 weights'.
static void test_bf16_rounding_applies(void) {
    vet_rng rng;
    vet_rng_seed(&rng, 13);
    int C = 256, OC = 4;
    float *w = randn((size_t)OC * C, 0.05f, &rng), *x = randn(C, 1.0f, &rng), a[4], b[4];
    int8_t *q = malloc((size_t)OC * C);
    float sc[4];
    vet_err err;
    CHECK(vet_quant_int8(q, sc, w, OC, C, &err) == 0);
    vet_quant_rows_forward(a, x, VET_QUANT_INT8, q, sc, NULL, 1, C, OC, 0);
    vet_quant_rows_forward(b, x, VET_QUANT_INT8, q, sc, NULL, 1, C, OC, 1);
    CHECK(memcmp(a, b, sizeof a) != 0);
    free(w), free(x), free(q);
}

// The order: lane l's first group starts at column 8l. Lane 0 holds 2^24, lanes 1 and 17 hold
// 1 each. The butterfly adds lanes 1 and 17 first (offset 16), so the 2 survives next to 2^24;
// a sequential sum over the columns would lose both ones (2^24 + 1 rounds to 2^24). Then the
// bias is added last: 2^24 + 2 + 1 rounds to 2^24 + 4 (ties to even), not 2^24 + 3.
static void test_summation_order(void) {
    enum { C = 256 };
    int8_t q[C] = {0};
    float x[C] = {0}, scale = 1.0f, bias = 1.0f, out;
    q[0] = q[8] = q[8 * 17] = 1;
    x[0] = 16777216.0f, x[8] = 1.0f, x[8 * 17] = 1.0f;
    vet_quant_rows_forward(&out, x, VET_QUANT_INT8, q, &scale, NULL, 1, C, 1, 0);
    CHECK(out == 16777218.0f);
    float seq = 0;
    for (int c = 0; c < C; c++) seq += x[c] * q[c];
    CHECK(seq == 16777216.0f);  // what the order above avoids
    vet_quant_rows_forward(&out, x, VET_QUANT_INT8, q, &scale, &bias, 1, C, 1, 0);
    CHECK(out == 16777220.0f);
    // lanes take groups of 8 columns: column 7 belongs to lane 0, column 8 to lane 1
    memset(x, 0, sizeof x), memset(q, 0, sizeof q);
    x[0] = 16777216.0f, x[7] = 1.0f, x[8 * 17] = 1.0f, q[0] = q[7] = q[8 * 17] = 1;
    vet_quant_rows_forward(&out, x, VET_QUANT_INT8, q, &scale, NULL, 1, C, 1, 0);
    CHECK(out == 16777216.0f);  // lane 0: 2^24 + 1 rounds away; lane 17's 1 meets 2^24 alone
}

// Zero rows and blocks give zeros (plus the bias); a row of C = 0 gives the bias alone.
static void test_zeros(void) {
    float w[2 * 64] = {0}, x[2 * 64], out[2 * 2], bias[2] = {0.5f, -2.0f};
    for (int i = 0; i < 2 * 64; i++) x[i] = (float)i;
    uint8_t q[64 + 2];  // vet_nf4_dq_bytes(128): codes, then an absmax byte per block
    float sc[2];        // vet_nf4_dq_scales(128): the mean, one group's scale
    vet_err err;
    CHECK(vet_nf4_dq_bytes(128) == sizeof q && vet_nf4_dq_scales(128) == 2);
    CHECK(vet_quant_nf4_dq(q, sc, w, 2 * 64, &err) == 0);
    vet_quant_rows_forward(out, x, VET_QUANT_NF4, q, sc, bias, 2, 64, 2, 1);
    CHECK(out[0] == 0.5f && out[1] == -2.0f && out[2] == 0.5f && out[3] == -2.0f);
    vet_quant_rows_forward(out, x, VET_QUANT_NF4, q, sc, bias, 1, 0, 2, 0);
    CHECK(out[0] == 0.5f && out[1] == -2.0f);
}

int main(void) {
    RUN(test_values);
    RUN(test_rows_independent);
    RUN(test_bf16_rounding_applies);
    RUN(test_summation_order);
    RUN(test_zeros);
    CHECK_EXIT();
}
