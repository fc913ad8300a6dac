// quant.c — int8 (per-row absmax) and NF4 (block-64 absmax) quantization on the host; see
// quant.h for the exact definitions. Rows (int8) and blocks (NF4) are independent, so both
// run in parallel over them: a 7B model's matrices quantize in seconds.
#include "model/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const float vet_nf4_code[16] = VET_NF4_CODES;

int vet_quant_parse(const char *s, vet_quant_kind *kind, vet_err *err) {
    if (strcmp(s, "none") == 0) *kind = VET_QUANT_NONE;
    else if (strcmp(s, "int8") == 0) *kind = VET_QUANT_INT8;
    else if (strcmp(s, "nf4") == 0) *kind = VET_QUANT_NF4;
    else return vet_errf(err, "'%s' is not none, int8 or nf4", s);
    return 0;
}

const char *vet_quant_name(vet_quant_kind kind) {
    return kind == VET_QUANT_INT8 ? "int8" : kind == VET_QUANT_NF4 ? "nf4" : "none";
}

// ---------------------------------------------------------------------------------------
// int8, one scale per row

// One row of len values: scale = max |x| / 127, o = round-half-even(x / scale) in [-127, 127].
// Returns 0 when a value is not finite (the row is then zeros, scale 0).
static int quant_row_int8(int8_t *o, float *scale, const float *x, size_t len) {
    float amax = 0.0f;
    int finite = 1;
    for (size_t c = 0; c < len; c++) {
        if (!isfinite(x[c])) finite = 0;
        float a = fabsf(x[c]);
        if (a > amax) amax = a;
    }
    float s = finite ? amax / 127.0f : 0.0f;
    *scale = s;
    if (s == 0.0f) {  // a zero row (or one so small that its scale underflows): zeros
        memset(o, 0, len);
        return finite;
    }
    for (size_t c = 0; c < len; c++) {
        float v = rintf(x[c] / s);  // round half to even (the default rounding mode)
        if (v > 127.0f) v = 127.0f;
        if (v < -127.0f) v = -127.0f;
        o[c] = (int8_t)v;
    }
    return 1;
}

int vet_quant_int8(int8_t *q, float *scale, const float *w, size_t rows, size_t cols, vet_err *err) {
    long bad = -1;  // the first row with a non-finite value (any one: it is refused)
#pragma omp parallel for schedule(static) if (rows * cols >= (1u << 16))
    for (size_t r = 0; r < rows; r++) {
        if (!quant_row_int8(q + r * cols, &scale[r], w + r * cols, cols)) {
#pragma omp critical
            bad = (long)r;
        }
    }
    if (bad >= 0)
        return vet_err_kindf(err, VET_E_NONFINITE, "row %ld of a %zu x %zu weight is not finite: cannot quantize it to int8", bad,
                        rows, cols);
    return 0;
}

void vet_dequant_int8(float *w, const int8_t *q, const float *scale, size_t rows, size_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols >= (1u << 16))
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) w[r * cols + c] = (float)q[r * cols + c] * scale[r];
}

// ---------------------------------------------------------------------------------------
// NF4, one absmax per block of 64

size_t vet_nf4_bytes(size_t n) { return (n + 1) / 2; }
size_t vet_nf4_blocks(size_t n) { return (n + VET_NF4_BLOCK - 1) / VET_NF4_BLOCK; }

// Midpoints between neighbouring codes, in double: the sum of two floats and its half are
// exact there, so `x > mid[i]` is exactly "x is nearer to code i+1 than to code i" and a tie
// stays with the lower code.
static double nf4_mid(int i) { return ((double)vet_nf4_code[i] + (double)vet_nf4_code[i + 1]) * 0.5; }

int vet_nf4_nearest(float x) {
    // Binary search over the 15 midpoints: the first i with x <= mid(i), else 15.
    int lo = 0, hi = 15;  // the answer lies in [lo, hi]
    double xd = x;
    while (lo < hi) {
        int m = (lo + hi) / 2;
        if (xd > nf4_mid(m)) lo = m + 1;
        else hi = m;
    }
    return lo;
}

int vet_quant_nf4(uint8_t *codes, float *absmax, const float *w, size_t n, vet_err *err) {
    size_t nb = vet_nf4_blocks(n);
    long bad = -1;
    memset(codes, 0, vet_nf4_bytes(n));
#pragma omp parallel for schedule(static) if (n >= (1u << 16))
    for (size_t b = 0; b < nb; b++) {  // a block's 64 values fill 32 whole bytes: no sharing
        size_t a = b * VET_NF4_BLOCK, e = a + VET_NF4_BLOCK < n ? a + VET_NF4_BLOCK : n;
        float amax = 0.0f;
        int finite = 1;
        for (size_t i = a; i < e; i++) {
            if (!isfinite(w[i])) finite = 0;
            float v = fabsf(w[i]);
            if (v > amax) amax = v;
        }
        if (!finite) {
#pragma omp critical
            bad = (long)b;
            amax = 0.0f;
        }
        absmax[b] = amax;
        float inv = amax > 0.0f ? 1.0f / amax : 0.0f;  // bitsandbytes multiplies by 1/absmax
        for (size_t i = a; i < e; i++) {
            int c = amax > 0.0f ? vet_nf4_nearest(w[i] * inv) : VET_NF4_ZERO;
            codes[i / 2] |= (uint8_t)(i % 2 ? c : c << 4);
        }
    }
    if (bad >= 0)
        return vet_err_kindf(err, VET_E_NONFINITE, "block %ld (values %ld..) of a weight of %zu values is not finite: cannot "
                             "quantize it to nf4", bad, bad * VET_NF4_BLOCK, n);
    return 0;
}


void vet_quant_stored_sizes(vet_quant_kind kind, size_t rows, size_t cols, size_t *q_bytes, size_t *scales) {
    size_t n = rows * cols;
    *q_bytes = kind == VET_QUANT_INT8 ? n : kind == VET_QUANT_NF4 ? vet_nf4_dq_bytes(n) : 0;
    *scales = kind == VET_QUANT_INT8 ? rows : kind == VET_QUANT_NF4 ? vet_nf4_dq_scales(n) : n;
}

size_t vet_quant_matrix_bytes(vet_quant_kind kind, size_t rows, size_t cols) {
    size_t q, sc;
    vet_quant_stored_sizes(kind, rows, cols, &q, &sc);
    return q + sc * sizeof(float);
}

// ---------------------------------------------------------------------------------------
// NF4 with double quantization: the absmax values in int8 around their mean

size_t vet_nf4_dq_bytes(size_t n) { return vet_nf4_bytes(n) + vet_nf4_blocks(n); }
size_t vet_nf4_dq_scales(size_t n) {
    return 1 + (vet_nf4_blocks(n) + VET_NF4_DQ_GROUP - 1) / VET_NF4_DQ_GROUP;
}

int vet_quant_nf4_dq(uint8_t *q, float *scales, const float *w, size_t n, vet_err *err) {
    size_t nb = vet_nf4_blocks(n);
    float *absmax = malloc((nb ? nb : 1) * sizeof(float)), *dev = malloc((nb ? nb : 1) * sizeof(float));
    if (!absmax || !dev) {
        free(absmax), free(dev);
        return vet_err_nomem(err, "out of memory for the absmax values of a %zu-value weight", n);
    }
    int rc = vet_quant_nf4(q, absmax, w, n, err);  // the first level, bitsandbytes' codes
    if (rc == 0) {
        int8_t *aq = (int8_t *)(q + vet_nf4_bytes(n));
        double sum = 0;
        for (size_t b = 0; b < nb; b++) sum += absmax[b];
        float off = nb ? (float)(sum / (double)nb) : 0.0f;
        scales[0] = off;
        for (size_t b = 0; b < nb; b++) dev[b] = absmax[b] - off;
        for (size_t g = 0; g * VET_NF4_DQ_GROUP < nb; g++) {
            size_t a = g * VET_NF4_DQ_GROUP, len = nb - a < VET_NF4_DQ_GROUP ? nb - a : VET_NF4_DQ_GROUP;
            quant_row_int8(aq + a, &scales[1 + g], dev + a, len);  // finite: absmax of finite weights
            // Rounding may put a block far below the mean under zero (by at most half a step),
            // which would flip its weights' signs: one step up keeps it at or above zero.
            for (size_t b = a; b < a + len; b++)
                if (vet_nf4_dq_absmax(aq, scales, b) < 0.0f && aq[b] < 127) aq[b]++;
        }
    }
    free(absmax), free(dev);
    return rc;
}

void vet_dequant_nf4_dq(float *w, const uint8_t *q, const float *scales, size_t n) {
    const int8_t *aq = (const int8_t *)(q + vet_nf4_bytes(n));
#pragma omp parallel for schedule(static) if (n >= (1u << 16))
    for (size_t i = 0; i < n; i++)
        w[i] = vet_nf4_code[vet_nf4_get(q, i)] * vet_nf4_dq_absmax(aq, scales, i / VET_NF4_BLOCK);
}
