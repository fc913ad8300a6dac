// ggml_dequant.c — see ggml_dequant.h. Each block function writes one block's values; the
// block layouts are llama.cpp's (ggml-common.h), byte offsets written out because the blocks
// are packed and the mapping is unaligned (everything goes through loads of bytes).
#include "io/ggml_dequant.h"
#include "base/finite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/half.h"

#define QK 32     // elements in a block of the simple types
#define QK_K 256  // elements in a K-quant super-block

static float f16_at(const uint8_t *p) { return vet_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }
static uint32_t u32_at(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// Q8_0 (34 bytes): f16 d, 32 x int8 q.  x = d * q
static void block_q8_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    for (int i = 0; i < QK; i++) y[i] = d * (float)(int8_t)b[2 + i];
}

// Q4_0 (18 bytes): f16 d, 16 bytes of nibbles: element i < 16 the low nibble of byte i, element
// i + 16 its high nibble.  x = d * (q - 8)
static void block_q4_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    for (int i = 0; i < QK / 2; i++) {
        y[i] = d * (float)((b[2 + i] & 0xF) - 8);
        y[i + QK / 2] = d * (float)((b[2 + i] >> 4) - 8);
    }
}

// Q4_1 (20 bytes): f16 d, f16 m, 16 bytes of nibbles as Q4_0.  x = d * q + m
static void block_q4_1(const uint8_t *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    for (int i = 0; i < QK / 2; i++) {
        y[i] = d * (float)(b[4 + i] & 0xF) + m;
        y[i + QK / 2] = d * (float)(b[4 + i] >> 4) + m;
    }
}

// Q5_0 (22 bytes): f16 d, u32 qh (bit i: the fifth bit of element i), 16 bytes of nibbles as
// Q4_0.  x = d * (q - 16)
static void block_q5_0(const uint8_t *b, float *y) {
    float d = f16_at(b);
    uint32_t qh = u32_at(b + 2);
    for (int i = 0; i < QK / 2; i++) {
        int lo = (b[6 + i] & 0xF) | (int)((qh >> i) & 1) << 4;
        int hi = (b[6 + i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4;
        y[i] = d * (float)(lo - 16);
        y[i + QK / 2] = d * (float)(hi - 16);
    }
}

// Q5_1 (24 bytes): f16 d, f16 m, u32 qh, 16 bytes of nibbles.  x = d * q + m
static void block_q5_1(const uint8_t *b, float *y) {
    float d = f16_at(b), m = f16_at(b + 2);
    uint32_t qh = u32_at(b + 4);
    for (int i = 0; i < QK / 2; i++) {
        int lo = (b[8 + i] & 0xF) | (int)((qh >> i) & 1) << 4;
        int hi = (b[8 + i] >> 4) | (int)((qh >> (i + 16)) & 1) << 4;
        y[i] = d * (float)lo + m;
        y[i + QK / 2] = d * (float)hi + m;
    }
}

// The 6-bit scale and min of sub-block j (0..7) of Q4_K / Q5_K, packed in 12 bytes: j < 4 in
// the low 6 bits of bytes j (scale) and j + 4 (min); j >= 4 in the nibbles of byte j + 4 with
// their top two bits in the top bits of bytes j - 4 (scale) and j (min).
static void scale_min_k4(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
        *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

// Q4_K (144 bytes): f16 d, f16 dmin, 12 bytes of scales/mins, 128 bytes of nibbles. Eight
// sub-blocks of 32; each 32 bytes of nibbles hold two sub-blocks (low nibbles, then high).
// x = (d * scale) * q - (dmin * min)
static void block_q4_k(const uint8_t *b, float *y) {
    float d = f16_at(b), dmin = f16_at(b + 2);
    const uint8_t *sc = b + 4, *q = b + 16;
    for (int j = 0; j < 8; j += 2, q += 32, y += 64) {
        int s0, m0, s1, m1;
        scale_min_k4(sc, j, &s0, &m0);
        scale_min_k4(sc, j + 1, &s1, &m1);
        float d0 = d * (float)s0, dm0 = dmin * (float)m0, d1 = d * (float)s1, dm1 = dmin * (float)m1;
        for (int l = 0; l < 32; l++) y[l] = d0 * (float)(q[l] & 0xF) - dm0;
        for (int l = 0; l < 32; l++) y[32 + l] = d1 * (float)(q[l] >> 4) - dm1;
    }
}

// Q5_K (176 bytes): f16 d, f16 dmin, 12 bytes of scales/mins, 32 bytes qh, 128 bytes of nibbles:
// Q4_K with a fifth bit per element; sub-block j's fifth bits are bit j of qh[0..32).
static void block_q5_k(const uint8_t *b, float *y) {
    float d = f16_at(b), dmin = f16_at(b + 2);
    const uint8_t *sc = b + 4, *qh = b + 16, *q = b + 48;
    for (int j = 0; j < 8; j += 2, q += 32, y += 64) {
        int s0, m0, s1, m1;
        scale_min_k4(sc, j, &s0, &m0);
        scale_min_k4(sc, j + 1, &s1, &m1);
        float d0 = d * (float)s0, dm0 = dmin * (float)m0, d1 = d * (float)s1, dm1 = dmin * (float)m1;
        for (int l = 0; l < 32; l++) y[l] = d0 * (float)((q[l] & 0xF) | ((qh[l] >> j) & 1) << 4) - dm0;
        for (int l = 0; l < 32; l++) y[32 + l] = d1 * (float)((q[l] >> 4) | ((qh[l] >> (j + 1)) & 1) << 4) - dm1;
    }
}

// Q6_K (210 bytes): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales, f16 d.
// Two halves of 128; in each, element l + 32 k (l < 32, k < 4) takes its low bits from
// ql[l + 32 (k & 1)] (low nibble for k < 2, else high), its high bits from qh[l] bits 2k..2k+1,
// and scale l / 16 + 2 k.  x = (d * scale) * (q - 32)
static void block_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = f16_at(b + 208);
    for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int lo = k < 2 ? ql[l + 32 * (k & 1)] & 0xF : ql[l + 32 * (k & 1)] >> 4;
                int q = lo | ((qh[l] >> (2 * k)) & 3) << 4;
                y[32 * k + l] = d * (float)sc[l / 16 + 2 * k] * (float)(q - 32);
            }
}

// Q3_K (110 bytes): 32 bytes hmask (the high bit, inverted: set means no -4), 64 bytes of 2-bit
// values, 12 bytes of sixteen 6-bit scales (bias 32), f16 d. Two halves of 128 elements; in each,
// shift s (0..3) gives 32 elements from bits 2s..2s+1 of the half's 32 bytes, as two groups of 16
// with a scale each; hmask bit (4 half + s) of byte l is the high bit of the element at l.
// Scale j: low 4 bits in the nibble of byte j % 8 (low for j < 8), high 2 bits at bit
// 2 (j / 4) of byte 8 + j % 4.
static void block_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *q = b + 32, *s = b + 96;
    float d = f16_at(b + 108);
    for (int half = 0; half < 2; half++, q += 32)
        for (int sh = 0; sh < 4; sh++)
            for (int g = 0; g < 2; g++, y += 16) {
                int j = 8 * half + 2 * sh + g;
                int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
                int sc = (lo | ((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
                float dl = d * (float)sc;
                for (int l = 0; l < 16; l++) {
                    int e = 16 * g + l;
                    int v = ((q[e] >> (2 * sh)) & 3) - ((hm[e] >> (4 * half + sh)) & 1 ? 0 : 4);
                    y[l] = dl * (float)v;
                }
            }
}

// Q2_K (84 bytes): 16 bytes of scales (low nibble) and mins (high nibble), 64 bytes of 2-bit
// values, f16 d, f16 dmin. Laid out as Q3_K without the high bit: 16 groups of 16.
// x = (d * scale) * q - (dmin * min)
static void block_q2_k(const uint8_t *b, float *y) {
    const uint8_t *s = b, *q = b + 16;
    float d = f16_at(b + 80), dmin = f16_at(b + 82);
    for (int half = 0; half < 2; half++, q += 32)
        for (int sh = 0; sh < 4; sh++)
            for (int g = 0; g < 2; g++, y += 16) {
                int j = 8 * half + 2 * sh + g;
                float dl = d * (float)(s[j] & 0xF), ml = dmin * (float)(s[j] >> 4);
                for (int l = 0; l < 16; l++) y[l] = dl * (float)((q[16 * g + l] >> (2 * sh)) & 3) - ml;
            }
}

typedef void (*block_fn)(const uint8_t *, float *);

static block_fn block_of(uint32_t type) {
    switch (type) {
    case VET_GGML_Q8_0: return block_q8_0;
    case VET_GGML_Q4_0: return block_q4_0;
    case VET_GGML_Q4_1: return block_q4_1;
    case VET_GGML_Q5_0: return block_q5_0;
    case VET_GGML_Q5_1: return block_q5_1;
    case VET_GGML_Q2_K: return block_q2_k;
    case VET_GGML_Q3_K: return block_q3_k;
    case VET_GGML_Q4_K: return block_q4_k;
    case VET_GGML_Q5_K: return block_q5_k;
    case VET_GGML_Q6_K: return block_q6_k;
    default: return NULL;
    }
}

int vet_ggml_can_dequant(uint32_t type) {
    return type == VET_GGML_F32 || type == VET_GGML_F16 || type == VET_GGML_BF16 || block_of(type) != NULL;
}

const char *vet_ggml_dequant_names(void) { return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K"; }

int vet_ggml_dequant(uint32_t type, const void *src, int64_t n, float *dst, vet_err *err) {
    vet_ggml_type_info ti = vet_ggml_type_get(type);
    if (!vet_ggml_can_dequant(type))
        return vet_errf(err, "tensor type %s is not one vet reads (it reads %s)", ti.name, vet_ggml_dequant_names());
    if (n < 0 || n % ti.block_elems)
        return vet_errf(err, "%lld values of type %s are not a whole number of %d-value blocks", (long long)n, ti.name,
                        ti.block_elems);
    const uint8_t *p = src;
    int64_t nb = n / ti.block_elems;
    switch (type) {
    case VET_GGML_F32: memcpy(dst, p, (size_t)n * 4); return 0;
    case VET_GGML_F16:
#pragma omp parallel for if (n > (1 << 18))
        for (int64_t i = 0; i < n; i++) dst[i] = vet_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return 0;
    case VET_GGML_BF16:
#pragma omp parallel for if (n > (1 << 18))
        for (int64_t i = 0; i < n; i++) dst[i] = vet_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return 0;
    }
    block_fn f = block_of(type);
    int be = ti.block_elems, bb = ti.block_bytes;
#pragma omp parallel for if (nb > 4096)
    for (int64_t i = 0; i < nb; i++) f(p + i * bb, dst + i * be);
    return 0;
}

int vet_gguf_tensor_f32(const vet_gguf *g, const vet_gguf_tensor *t, float *dst, vet_err *err) {
    if (vet_ggml_dequant(t->type, t->data, t->n_elems, dst, err) < 0)
        return vet_err_prefix(err, "%s: tensor %s", vet_gguf_path(g), t->name);
    int64_t bad = vet_first_nonfinite(dst, t->n_elems);
    if (bad >= 0) {
        vet_ggml_type_info ti = vet_ggml_type_get(t->type);
        return vet_errf(err, "%s: tensor %s (%s) holds %s at element %lld%s: the file is damaged (weights must be "
                        "finite)", vet_gguf_path(g), t->name, ti.name, isnan(dst[bad]) ? "NaN" : "Inf", (long long)bad,
                        ti.block_elems > 1 ? " (a scale of its block is not finite, or overflows)" : "");
    }
    return 0;
}
