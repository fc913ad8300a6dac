// test_ggml_dequant.c — io/ggml_dequant.h on blocks made by hand: each block is packed here from
// the layout llama.cpp documents (ggml-common.h), with values whose dequantized result is known
// in closed form, so a wrong nibble order, scale unpacking or sign shows. (Bit-exactness against
// gguf-py on random blocks of every type is tests/reference/test_gguf_model.py.)
#include <stdint.h>

#include "check.h"
#include "base/half.h"
#include "io/ggml_dequant.h"

static void put16(uint8_t *p, float x) {
    uint16_t h = vet_f32_to_f16(x);
    p[0] = (uint8_t)h, p[1] = (uint8_t)(h >> 8);
}

static int same(const float *y, const float *want, int n) {
    for (int i = 0; i < n; i++)
        if (y[i] != want[i]) {
            fprintf(stderr, "element %d: %g, expected %g\n", i, y[i], want[i]);
            return 0;
        }
    return 1;
}

static void test_plain_types(void) {
    uint8_t b[8] = {0, 0x3C, 0, 0xC0, 0x80, 0x3F, 0x00, 0xC1};   // f16 1, -2; bf16 1, -8
    float y[2];
    vet_err err = {0};
    CHECK(vet_ggml_dequant(VET_GGML_F16, b, 2, y, &err) == 0 && y[0] == 1.0f && y[1] == -2.0f);
    CHECK(vet_ggml_dequant(VET_GGML_BF16, b + 4, 2, y, &err) == 0 && y[0] == 1.0f && y[1] == -8.0f);
    float f[2] = {3.5f, -0.25f};
    CHECK(vet_ggml_dequant(VET_GGML_F32, f, 2, y, &err) == 0 && y[0] == 3.5f && y[1] == -0.25f);
}

static void test_q8_0_q4_0_q4_1(void) {
    uint8_t b[34];
    float y[32], want[32];
    vet_err err = {0};
    put16(b, 0.5f);                                  // Q8_0: d 0.5, q = i - 16
    for (int i = 0; i < 32; i++) b[2 + i] = (uint8_t)(int8_t)(i - 16), want[i] = 0.5f * (float)(i - 16);
    CHECK(vet_ggml_dequant(VET_GGML_Q8_0, b, 32, y, &err) == 0 && same(y, want, 32));
    put16(b, 2.0f);                                  // Q4_0: d 2, byte i: low i, high 15 - i
    for (int i = 0; i < 16; i++) {
        b[2 + i] = (uint8_t)(i | (15 - i) << 4);
        want[i] = 2.0f * (float)(i - 8), want[16 + i] = 2.0f * (float)(15 - i - 8);
    }
    CHECK(vet_ggml_dequant(VET_GGML_Q4_0, b, 32, y, &err) == 0 && same(y, want, 32));
    put16(b, 1.0f), put16(b + 2, -3.0f);             // Q4_1: d 1, m -3, both nibbles i
    for (int i = 0; i < 16; i++) b[4 + i] = (uint8_t)(i | i << 4), want[i] = want[16 + i] = (float)i - 3.0f;
    CHECK(vet_ggml_dequant(VET_GGML_Q4_1, b, 32, y, &err) == 0 && same(y, want, 32));
}

static void test_q5_0_q5_1(void) {
    uint8_t b[24];
    float y[32], want[32];
    vet_err err = {0};
    put16(b, 1.0f);                                  // Q5_0: fifth bits set for elements 16..31
    b[2] = b[3] = 0, b[4] = b[5] = 0xFF;
    for (int i = 0; i < 16; i++) b[6 + i] = (uint8_t)i, want[i] = (float)(i - 16), want[16 + i] = 0.0f;
    CHECK(vet_ggml_dequant(VET_GGML_Q5_0, b, 32, y, &err) == 0 && same(y, want, 32));
    put16(b, 0.5f), put16(b + 2, 1.0f);              // Q5_1: fifth bits set for elements 0..15
    b[4] = b[5] = 0xFF, b[6] = b[7] = 0;
    for (int i = 0; i < 16; i++) {
        b[8 + i] = (uint8_t)(i | 3 << 4);
        want[i] = 0.5f * (float)(i + 16) + 1.0f, want[16 + i] = 0.5f * 3.0f + 1.0f;
    }
    CHECK(vet_ggml_dequant(VET_GGML_Q5_1, b, 32, y, &err) == 0 && same(y, want, 32));
}

// The 12 bytes of Q4_K / Q5_K scales and mins (6 bits each) for sub-blocks 0..7.
static void pack_k4(uint8_t *s, const int *sc, const int *mn) {
    memset(s, 0, 12);
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4);
    }
}

static void test_q4_k_q5_k(void) {
    static uint8_t b[176];
    static float y[256], want[256];
    const int sc[8] = {1, 2, 3, 63, 5, 40, 7, 8}, mn[8] = {0, 1, 2, 3, 4, 33, 6, 63};
    vet_err err = {0};
    put16(b, 1.0f), put16(b + 2, 0.5f);
    pack_k4(b + 4, sc, mn);
    for (int i = 0; i < 128; i++) b[16 + i] = 0x21;  // low nibble 1 (even sub-blocks), high 2 (odd)
    for (int e = 0; e < 256; e++) {
        int j = e / 32;
        want[e] = (float)sc[j] * (float)(j % 2 ? 2 : 1) - 0.5f * (float)mn[j];
    }
    CHECK(vet_ggml_dequant(VET_GGML_Q4_K, b, 256, y, &err) == 0 && same(y, want, 256));
    // Q5_K: the same, qh bit j set on bytes 0..15 only (the first 16 elements of each sub-block).
    for (int l = 0; l < 32; l++) b[16 + l] = l < 16 ? 0xFF : 0;
    for (int i = 0; i < 128; i++) b[48 + i] = 0x21;
    for (int e = 0; e < 256; e++) {
        int j = e / 32, q = (j % 2 ? 2 : 1) + (e % 32 < 16 ? 16 : 0);
        want[e] = (float)sc[j] * (float)q - 0.5f * (float)mn[j];
    }
    CHECK(vet_ggml_dequant(VET_GGML_Q5_K, b, 256, y, &err) == 0 && same(y, want, 256));
}

static void test_q6_k(void) {
    static uint8_t b[210];
    static float y[256], want[256];
    memset(b, 0, sizeof b);
    vet_err err = {0};
    for (int k = 0; k < 16; k++) b[192 + k] = (uint8_t)(int8_t)(k - 8);
    put16(b + 208, 0.25f);
    // Element e = 128 h + 32 k + l holds q = (e * 5) % 64: low 4 bits in ql, high 2 in qh.
    for (int e = 0; e < 256; e++) {
        int h = e / 128, k = (e % 128) / 32, l = e % 32, q = (e * 5) % 64;
        uint8_t *ql = b + 64 * h + l + 32 * (k & 1);
        *ql |= (uint8_t)(k < 2 ? q & 0xF : (q & 0xF) << 4);
        b[128 + 32 * h + l] |= (uint8_t)((q >> 4) << (2 * k));
        want[e] = 0.25f * (float)(8 * h + l / 16 + 2 * k - 8) * (float)(q - 32);
    }
    CHECK(vet_ggml_dequant(VET_GGML_Q6_K, b, 256, y, &err) == 0 && same(y, want, 256));
}

static void test_q2_k_q3_k(void) {
    static uint8_t b[110];
    static float y[256], want[256];
    vet_err err = {0};
    // Q2_K: group j (16 elements) has scale j % 16 and min 1; element e = 128 h + 32 s + 16 g + l
    // takes bits 2s of byte 32 h + 16 g + l, all set to value (l % 4).
    memset(b, 0, sizeof b);
    for (int j = 0; j < 16; j++) b[j] = (uint8_t)((j & 0xF) | 1 << 4);
    for (int i = 0; i < 64; i++) { int v = (i % 16) % 4; b[16 + i] = (uint8_t)(v | v << 2 | v << 4 | v << 6); }
    put16(b + 80, 0.5f), put16(b + 82, 0.25f);
    for (int e = 0; e < 256; e++) want[e] = 0.5f * (float)(e / 16) * (float)((e % 16) % 4) - 0.25f;
    CHECK(vet_ggml_dequant(VET_GGML_Q2_K, b, 256, y, &err) == 0 && same(y, want, 256));
    // Q3_K: scale of group j is j + 10 (stored + 32: 6 bits split 4 + 2); 2-bit value 3 everywhere;
    // the high-bit mask set (no -4) for every byte but those with l odd.
    memset(b, 0, sizeof b);
    for (int l = 0; l < 32; l++) b[l] = l % 2 ? 0 : 0xFF;
    memset(b + 32, 0xFF, 64);
    for (int j = 0; j < 16; j++) {
        int s = j + 10 + 32;
        b[96 + j % 8] |= (uint8_t)(j < 8 ? s & 0xF : (s & 0xF) << 4);
        b[96 + 8 + j % 4] |= (uint8_t)((s >> 4) << (2 * (j / 4)));
    }
    put16(b + 108, 0.5f);
    for (int e = 0; e < 256; e++) {
        int j = e / 16, l = e % 32;
        want[e] = 0.5f * (float)(j + 10) * (float)(3 - (l % 2 ? 4 : 0));
    }
    CHECK(vet_ggml_dequant(VET_GGML_Q3_K, b, 256, y, &err) == 0 && same(y, want, 256));
}

static void test_refusals(void) {
    uint8_t b[64] = {0};
    float y[64];
    vet_err err = {0};
    CHECK(vet_ggml_dequant(17, b, 32, y, &err) < 0);
    CHECK_CONTAINS(err.msg, "IQ2_XS");
    CHECK(vet_ggml_dequant(VET_GGML_Q8_1, b, 32, y, &err) < 0);
    CHECK_CONTAINS(err.msg, "Q8_1");
    CHECK(vet_ggml_dequant(VET_GGML_Q4_0, b, 20, y, &err) < 0);
    CHECK_CONTAINS(err.msg, "not a whole number");
    CHECK(!vet_ggml_can_dequant(VET_GGML_I32) && vet_ggml_can_dequant(VET_GGML_Q3_K));
    put16(b, 65504.0f);                              // the largest fp16 scale: still finite in fp32
    for (int i = 0; i < 32; i++) b[2 + i] = 127;
    CHECK(vet_ggml_dequant(VET_GGML_Q8_0, b, 32, y, &err) == 0 && y[0] == 65504.0f * 127.0f);
    b[0] = 0x00, b[1] = 0x7E;                        // a NaN scale: NaNs out (the caller refuses them)
    CHECK(vet_ggml_dequant(VET_GGML_Q8_0, b, 32, y, &err) == 0 && isnan(y[5]));
}

int main(void) {
    RUN(test_plain_types);
    RUN(test_q8_0_q4_0_q4_1);
    RUN(test_q5_0_q5_1);
    RUN(test_q4_k_q5_k);
    RUN(test_q6_k);
    RUN(test_q2_k_q3_k);
    RUN(test_refusals);
    CHECK_EXIT();
}
