// test_quant.c — lib/model/quant.c: int8 per-row and NF4 block-64 quantization against their
// definitions (quant.h), element by element; the NF4 table; nibble order; edge cases (zero
// rows and blocks, odd lengths, lengths not a multiple of 64, ties, non-finite weights);
// storage bytes per parameter.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/quant.h"
#include "base/rng.h"

static float *randn(size_t n, float sd, uint64_t seed) {
    vet_rng r;
    vet_rng_seed(&r, seed);
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = sd * (float)vet_rng_normal(&r);
    return x;
}

// The table as bitsandbytes writes it (csrc/kernels.cu nf4_dequantization_lut; QLoRA
// appendix E), in double, independently of quant.h's macro.
static const double NF4_REF[16] = {
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
};

static void test_nf4_table(void) {
    for (int i = 0; i < 16; i++) {
        CHECK(vet_nf4_code[i] == (float)NF4_REF[i]);
        if (i) CHECK(vet_nf4_code[i] > vet_nf4_code[i - 1]);
    }
    CHECK(vet_nf4_code[VET_NF4_ZERO] == 0.0f);
    // each code is its own nearest code
    for (int i = 0; i < 16; i++) CHECK(vet_nf4_nearest(vet_nf4_code[i]) == i);
}

// The nearest code by brute force, ties to the lower code.
static int nearest_ref(float x) {
    int best = 0;
    double bd = fabs((double)x - vet_nf4_code[0]);
    for (int j = 1; j < 16; j++) {
        double d = fabs((double)x - vet_nf4_code[j]);
        if (d < bd) best = j, bd = d;
    }
    return best;
}

static void test_nf4_nearest_and_ties(void) {
    // the midpoint of codes 7 (0) and 8 is exactly code[8]/2: a tie goes to the lower code
    float mid = vet_nf4_code[8] * 0.5f;
    CHECK(vet_nf4_nearest(mid) == 7);
    CHECK(vet_nf4_nearest(nextafterf(mid, 1.0f)) == 8);
    CHECK(vet_nf4_nearest(nextafterf(mid, -1.0f)) == 7);
    CHECK(vet_nf4_nearest(-2.0f) == 0 && vet_nf4_nearest(2.0f) == 15);
    CHECK(vet_nf4_nearest(-0.0f) == 7);
    vet_rng r;
    vet_rng_seed(&r, 3);
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        float x = (float)(vet_rng_uniform(&r) * 2.2 - 1.1);
        if (vet_nf4_nearest(x) != nearest_ref(x)) bad++;
    }
    for (int i = 0; i < 15; i++) {  // around every midpoint, a few ulps either side
        float m = (float)(((double)vet_nf4_code[i] + vet_nf4_code[i + 1]) / 2);
        for (int k = 0; k < 8; k++, m = nextafterf(m, 2.0f))
            if (vet_nf4_nearest(m) != nearest_ref(m)) bad++;
    }
    CHECK(bad == 0);
}

// Every element: the code is the nearest to w/absmax, it dequantizes to code * absmax of its
// block, absmax is the block's max |w|. n odd and not a multiple of 64.
static void nf4_roundtrip(size_t n, uint64_t seed) {
    float *w = randn(n, 0.02f, seed), *back = malloc(n * sizeof(float));
    // a zero block (block 2) and a block with one large outlier (block 3)
    for (size_t i = 128; i < 192 && i < n; i++) w[i] = 0.0f;
    if (n > 200) w[200] = 3.0f;
    size_t nb = vet_nf4_blocks(n);
    uint8_t *codes = malloc(vet_nf4_bytes(n));
    float *absmax = malloc(nb * sizeof(float));
    vet_err err;
    CHECK(vet_quant_nf4(codes, absmax, w, n, &err) == 0);
    for (size_t i = 0; i < n; i++)  // the first level's dequantization: code * its block's absmax
        back[i] = vet_nf4_code[vet_nf4_get(codes, i)] * absmax[i / VET_NF4_BLOCK];
    size_t bad_code = 0, bad_max = 0;
    double worst = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t a = b * 64, e = a + 64 < n ? a + 64 : n;
        float amax = 0;
        for (size_t i = a; i < e; i++) amax = fabsf(w[i]) > amax ? fabsf(w[i]) : amax;
        if (absmax[b] != amax) bad_max++;
        for (size_t i = a; i < e; i++) {
            int c = vet_nf4_get(codes, i);
            int want = amax > 0 ? nearest_ref(w[i] * (1.0f / amax)) : VET_NF4_ZERO;
            if (c != want) bad_code++;
            double d = fabs((double)back[i] - w[i]) / (amax > 0 ? amax : 1);
            worst = d > worst ? d : worst;
        }
    }
    CHECK(bad_code == 0 && bad_max == 0);
    // no value is further from its dequantized value than half the widest gap between codes
    // (-1 .. -0.696: 0.152 of absmax)
    double gap = 0;
    for (int j = 0; j < 15; j++) gap = vet_nf4_code[j + 1] - vet_nf4_code[j] > gap ? vet_nf4_code[j + 1] - vet_nf4_code[j] : gap;
    CHECK(worst <= gap / 2 + 1e-6);
    for (size_t i = 128; i < 192 && i < n; i++) CHECK(back[i] == 0.0f);
    if (n % 2) CHECK((codes[n / 2] & 15) == 0);  // the unused low nibble of an odd length
    printf("# nf4 n=%zu: worst |w - w'| / absmax %.4f\n", n, worst);
    free(w), free(back), free(codes), free(absmax);
}

static void test_nf4_roundtrip(void) {
    nf4_roundtrip(64 * 37, 1);    // whole blocks
    nf4_roundtrip(64 * 37 + 13, 2);  // odd, a last block of 13
    nf4_roundtrip(1, 3);
    nf4_roundtrip(63, 4);
}

// Nibble order: element 2j in the high nibble of byte j (bitsandbytes' order).
static void test_nf4_nibbles(void) {
    float w[3] = {1.0f, -1.0f, 0.0f};
    uint8_t codes[2] = {0xaa, 0xaa};
    float absmax[1];
    vet_err err;
    CHECK(vet_quant_nf4(codes, absmax, w, 3, &err) == 0);
    CHECK(absmax[0] == 1.0f);
    CHECK(codes[0] == 0xf0);  // 1.0 -> 15 (high), -1.0 -> 0 (low)
    CHECK(codes[1] == 0x70);  // 0.0 -> 7 (high), unused low nibble 0
    CHECK(vet_nf4_get(codes, 0) == 15 && vet_nf4_get(codes, 1) == 0 && vet_nf4_get(codes, 2) == 7);
}

static void test_int8_roundtrip(void) {
    size_t rows = 37, cols = 101;  // odd sizes
    float *w = randn(rows * cols, 0.05f, 9), *back = malloc(rows * cols * sizeof(float));
    for (size_t c = 0; c < cols; c++) w[5 * cols + c] = 0.0f;  // a zero row
    for (size_t c = 0; c < cols; c++) w[6 * cols + c] *= 1e4f;  // a large one
    int8_t *q = malloc(rows * cols);
    float *scale = malloc(rows * sizeof(float));
    vet_err err;
    CHECK(vet_quant_int8(q, scale, w, rows, cols, &err) == 0);
    vet_dequant_int8(back, q, scale, rows, cols);
    size_t bad = 0;
    for (size_t r = 0; r < rows; r++) {
        float amax = 0;
        int qmax = 0;
        for (size_t c = 0; c < cols; c++) amax = fabsf(w[r * cols + c]) > amax ? fabsf(w[r * cols + c]) : amax;
        if (scale[r] != amax / 127.0f) bad++;
        for (size_t c = 0; c < cols; c++) {
            size_t i = r * cols + c;
            if (q[i] == -128) bad++;  // int8 holds -128, the scheme never uses it
            if (abs(q[i]) > qmax) qmax = abs(q[i]);
            if (back[i] != (float)q[i] * scale[r]) bad++;
            // within half a step (and the fp32 rounding of w/scale)
            if (!(fabs((double)back[i] - w[i]) <= scale[r] * 0.5 * (1 + 1e-5))) bad++;
            if (scale[r] > 0 && q[i] != (int8_t)rintf(w[i] / scale[r])) bad++;
        }
        if (r == 5) CHECK(scale[r] == 0.0f && qmax == 0);
        else CHECK(qmax == 127);  // the largest value of a row maps to +-127
    }
    CHECK(bad == 0);
    free(w), free(back), free(q), free(scale);
}

// Round half to even: w/scale exactly k + 0.5.
static void test_int8_ties(void) {
    float w[6] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -3.5f};
    int8_t q[6];
    float s;
    vet_err err;
    CHECK(vet_quant_int8(q, &s, w, 1, 6, &err) == 0);
    CHECK(s == 1.0f);
    CHECK(q[0] == 127 && q[1] == 0 && q[2] == 2 && q[3] == 2 && q[4] == 0 && q[5] == -4);
}

static void test_refusals(void) {
    vet_err err;
    float w[4] = {1.0f, NAN, 2.0f, 3.0f};
    int8_t q[4];
    float s[2];
    uint8_t codes[2];
    CHECK(vet_quant_int8(q, s, w, 2, 2, &err) < 0);
    CHECK_CONTAINS(err.msg, "row 0");
    w[1] = INFINITY;
    CHECK(vet_quant_nf4(codes, s, w, 4, &err) < 0);
    CHECK_CONTAINS(err.msg, "not finite");
    vet_quant_kind k;
    CHECK(vet_quant_parse("int8", &k, &err) == 0 && k == VET_QUANT_INT8);
    CHECK(vet_quant_parse("nf4", &k, &err) == 0 && k == VET_QUANT_NF4);
    CHECK(vet_quant_parse("none", &k, &err) == 0 && k == VET_QUANT_NONE);
    CHECK(vet_quant_parse("int4", &k, &err) < 0);
    CHECK_STR(vet_quant_name(VET_QUANT_NF4), "nf4");
}

// Storage per parameter: int8 1 byte + 4 per row; nf4 (double quantized, as stored) 0.5 + 1/64
// + 4 per 256 blocks + 4 for the mean (0.5625 with fp32 absmax values); fp32 4.
static void test_bytes_per_param(void) {
    size_t r = 4096, c = 11008, n = r * c;
    CHECK(vet_quant_matrix_bytes(VET_QUANT_INT8, r, c) == n + 4 * r);
    CHECK(vet_quant_matrix_bytes(VET_QUANT_NF4, r, c) == n / 2 + n / 64 + 4 * (1 + n / 64 / 256));
    CHECK(vet_nf4_bytes(n) + vet_nf4_blocks(n) * 4 == n / 2 + n / 64 * 4);  // the single-level sizes
    CHECK(vet_quant_matrix_bytes(VET_QUANT_NONE, r, c) == 4 * n);
    CHECK(vet_quant_matrix_bytes(VET_QUANT_NF4, 1, 65) == 33 + 2 + 8);  // odd, two blocks, one group
    CHECK(vet_nf4_dq_scales(64 * 256) == 2 && vet_nf4_dq_scales(64 * 256 + 1) == 3);
    size_t qb, ns;
    vet_quant_stored_sizes(VET_QUANT_NF4, r, c, &qb, &ns);
    CHECK(qb == n / 2 + n / 64 && ns == 1 + n / 64 / 256);
    vet_quant_stored_sizes(VET_QUANT_INT8, r, c, &qb, &ns);
    CHECK(qb == n && ns == r);
    printf("# bytes per parameter (4096 x 11008): int8 %.6f, nf4 %.6f, fp32 4\n",
           (double)vet_quant_matrix_bytes(VET_QUANT_INT8, r, c) / n,
           (double)vet_quant_matrix_bytes(VET_QUANT_NF4, r, c) / n);
}

// Double quantization (the stored nf4 format): the codes are the single-level ones; the mean
// is the absmax values' mean; every absmax' is within half a step of its absmax (or one step
// above, never below zero); the weights dequantize to code * absmax' exactly. n spans three
// groups of 256 blocks, the last partial, with a zero block and an outlier block.
static void test_nf4_double_quant(void) {
    size_t n = 64 * 600 + 13, nb = vet_nf4_blocks(n), ng = (nb + 255) / 256;
    float *w = randn(n, 0.02f, 21);
    for (size_t i = 64 * 5; i < 64 * 6; i++) w[i] = 0.0f;  // block 5: zero
    w[64 * 300 + 7] = 0.5f;                               // block 300: an outlier
    uint8_t *codes = malloc(vet_nf4_bytes(n)), *q = malloc(vet_nf4_dq_bytes(n));
    float *absmax = malloc(nb * 4), *sc = malloc(vet_nf4_dq_scales(n) * 4), *back = malloc(n * 4);
    vet_err err;
    CHECK(vet_quant_nf4(codes, absmax, w, n, &err) == 0);
    CHECK(vet_quant_nf4_dq(q, sc, w, n, &err) == 0);
    CHECK(vet_nf4_dq_scales(n) == 1 + ng && ng == 3);
    CHECK(memcmp(codes, q, vet_nf4_bytes(n)) == 0);
    double mean = 0;
    for (size_t b = 0; b < nb; b++) mean += absmax[b];
    CHECK(sc[0] == (float)(mean / nb));
    const int8_t *aq = (const int8_t *)(q + vet_nf4_bytes(n));
    size_t far = 0, negative = 0, bad_val = 0;
    double worst = 0;
    for (size_t b = 0; b < nb; b++) {
        float s = sc[1 + b / 256], a = vet_nf4_dq_absmax(aq, sc, b);
        CHECK(a == (float)aq[b] * s + sc[0]);
        double d = fabs((double)a - absmax[b]);
        if (d > 0.5001 * s && !(a >= absmax[b] && d <= 1.0001 * s)) far++;
        if (a < 0) negative++;
        worst = d / absmax[300] > worst ? d / absmax[300] : worst;
    }
    vet_dequant_nf4_dq(back, q, sc, n);
    for (size_t i = 0; i < n; i++)
        bad_val += back[i] != vet_nf4_code[vet_nf4_get(q, i)] * vet_nf4_dq_absmax(aq, sc, i / 64);
    for (size_t i = 64 * 5; i < 64 * 6; i++) CHECK(back[i] == 0.0f);
    CHECK(far == 0 && negative == 0 && bad_val == 0);
    printf("# nf4 double quantization, %zu blocks: worst |absmax' - absmax| %.2e of the largest\n", nb, worst);
    free(w), free(codes), free(q), free(absmax), free(sc), free(back);
}

// A block far below the mean would round under zero and flip its weights' signs: it takes one
// step up instead. 255 blocks of absmax ~1 and one of 1e-4: the step is ~2/254 > 2 x 1e-4.
static void test_nf4_double_quant_sign(void) {
    size_t n = 64 * 256;
    float *w = malloc(n * 4), *back = malloc(n * 4);
    for (size_t i = 0; i < n; i++) w[i] = (i % 3 ? 1.0f : -0.5f) * (i % 64 == 0 ? 1.0f : 0.25f);
    for (size_t i = 0; i < 64; i++) w[64 * 9 + i] = (i % 2 ? 1e-4f : -1e-4f);
    w[64 * 17] = 2.0f;  // the spread that makes the step coarse
    uint8_t *q = malloc(vet_nf4_dq_bytes(n));
    float sc[2];
    vet_err err;
    CHECK(vet_quant_nf4_dq(q, sc, w, n, &err) == 0);
    vet_dequant_nf4_dq(back, q, sc, n);
    size_t flipped = 0;
    for (size_t i = 0; i < n; i++) flipped += (back[i] > 0 && w[i] < 0) || (back[i] < 0 && w[i] > 0);
    CHECK(flipped == 0);
    CHECK(vet_nf4_dq_absmax((const int8_t *)(q + vet_nf4_bytes(n)), sc, 9) >= 0.0f);
    free(w), free(back), free(q);
}

int main(void) {
    RUN(test_nf4_double_quant);
    RUN(test_nf4_double_quant_sign);
    RUN(test_nf4_table);
    RUN(test_nf4_nearest_and_ties);
    RUN(test_nf4_roundtrip);
    RUN(test_nf4_nibbles);
    RUN(test_int8_roundtrip);
    RUN(test_int8_ties);
    RUN(test_refusals);
    RUN(test_bytes_per_param);
    CHECK_EXIT();
}
