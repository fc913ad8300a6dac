// test_philox.c — lib/base/philox.h, the counter-based generator behind dropout's masks, and the
// masks themselves: Random123's known answers, the keep rule, the CUDA kernel's walk over a
// tensor (kernels/dropout.cu: a thread per four columns of a row) replayed in C against
// dropout_forward / dropout_backward on both CPU paths (scalar and AVX2), and the masks'
// statistics (the rate per word of a Philox block, rows and seeds independent).
// This is the very code the kernel runs, checked without a GPU; op_parity checks it on one.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "base/philox.h"
#include "base/rng.h"
#include "model/ops.h"

// Random123's published known-answer vectors for Philox4x32-10 (its kat_vectors file).
static void test_known_answers(void) {
    static const struct { uint32_t ctr[4], key[2], out[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
        {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu},
         {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
        {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u},
         {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
    };
    for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++) {
        uint32_t out[4];
        vet_philox4x32_10(kat[k].ctr, kat[k].key, out);
        CHECK(memcmp(out, kat[k].out, sizeof out) == 0);
    }
}

// thr = ceil(p * 2^24); a word's top 24 bits k keep iff k >= thr, i.e. k * 2^-24 is not < p.
static void test_threshold_and_keep_rule(void) {
    CHECK(vet_dropout_threshold(0.0f) == 0u);
    CHECK(vet_dropout_threshold(0.5f) == 1u << 23);
    CHECK(vet_dropout_threshold(0x1p-24f) == 1u);
    CHECK(vet_dropout_threshold(0x1.8p-24f) == 2u);  // 1.5 rounds up
    float p = 0.1f;  // not a dyadic: p * 2^24 = 1677721.625 (p is 0.100000001490116...)
    CHECK(vet_dropout_threshold(p) == 1677722u);
    CHECK(vet_dropout_threshold(0.99999994f) == 16777215u);
    const uint64_t seeds[] = {0, 77, 0xdeadbeefcafef00dull};
    const uint64_t rows[] = {0, 5, 1ull << 32, 0xffffffffffffull};
    const float ps[] = {0.1f, 0.3f, 0.5f};
    int bad = 0;
    for (int s = 0; s < 3; s++)
        for (int r = 0; r < 4; r++)
            for (int ip = 0; ip < 3; ip++)
                for (uint32_t q = 0; q < 50; q++) {
                    uint32_t ctr[4] = {q, (uint32_t)rows[r], (uint32_t)(rows[r] >> 32), 0}, w[4];
                    uint32_t key[2] = {(uint32_t)seeds[s], (uint32_t)(seeds[s] >> 32)};
                    vet_philox4x32_10(ctr, key, w);
                    unsigned bits = vet_dropout_keep4(seeds[s], rows[r], q, vet_dropout_threshold(ps[ip]));
                    for (int j = 0; j < 4; j++) {
                        float u = (float)(w[j] >> 8) * 0x1p-24f;
                        bad += (int)((bits >> j) & 1u) != !(u < ps[ip]);
                    }
                }
    CHECK(bad == 0);
}

// kernels/dropout.cu's dropout_kernel, replayed: thread i takes row i / Q, columns 4(i % Q) ..
// +3 (Q = ceil(C/4)); the element rule as the kernel's __fmul_rn / __fadd_rn (C11 does not
// contract a*b+c, so these are single roundings).
static void kernel_walk(float *out, const float *inp, float p, uint64_t seed, int64_t row0, int N, int C,
                        int accumulate) {
    float keep_scale = 1.0f / (1.0f - p);
    uint32_t thr = vet_dropout_threshold(p);
    int Q = (C + 3) / 4;
    for (size_t i = 0; i < (size_t)N * Q; i++) {
        int n = (int)(i / Q), q = (int)(i % Q);
        unsigned bits = vet_dropout_keep4(seed, (uint64_t)(row0 + n), (uint32_t)q, thr);
        size_t at = (size_t)n * C + 4 * (size_t)q;
        int cols = C - 4 * q < 4 ? C - 4 * q : 4;
        for (int j = 0; j < cols; j++) {
            float v = (bits >> j) & 1u ? inp[at + j] * keep_scale : 0.0f;
            out[at + j] = accumulate ? out[at + j] + v : v;
        }
    }
}

static void fill(float *x, size_t n, vet_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (float)vet_rng_normal(r);
    // edge values: signed zeros, a subnormal, huge (x * scale overflows to inf), inf
    const float edge[] = {0.0f, -0.0f, 0x1p-140f, 3.0e38f, -3.0e38f, INFINITY};
    for (size_t i = 0; i < 6 && i < n; i++) x[(i * 7919) % n] = edge[i];
}

// Both CPU paths (vet_ops_simd 1 and 0) against the kernel's walk, bit for bit, at shapes with
// every tail: C % 4, C % 32 (the AVX2 blocks of eight counters), C over the 256-column tile.
static void test_kernel_walk_equals_cpu_dropout(void) {
    const int shapes[][2] = {{1, 1}, {70, 75}, {33, 32}, {64, 200}, {5, 1000}, {3, 259}, {7, 4}};
    const int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    const float ps[] = {0.1f, 0.25f, 0.5f, 0.9f};
    const uint64_t seeds[] = {0, 12345, 0xdeadbeefcafef00dull};
    const int64_t row0s[] = {0, 37};
    vet_rng r;
    vet_rng_seed(&r, 5);
    int fwd_bad = 0, bwd_bad = 0;
    for (int simd = 1; simd >= 0; simd--) {
        vet_ops_simd(simd);
        for (int sh = 0; sh < nshapes; sh++)
            for (int ip = 0; ip < 4; ip++)
                for (int is = 0; is < 3; is++)
                    for (int ir = 0; ir < 2; ir++) {
                        int N = shapes[sh][0], C = shapes[sh][1];
                        size_t n = (size_t)N * C, bytes = n * sizeof(float);
                        float *x = malloc(bytes), *a = malloc(bytes), *b = malloc(bytes);
                        fill(x, n, &r);
                        dropout_forward(a, x, ps[ip], seeds[is], row0s[ir], N, C);
                        kernel_walk(b, x, ps[ip], seeds[is], row0s[ir], N, C, 0);
                        fwd_bad += memcmp(a, b, bytes) != 0;
                        fill(a, n, &r);  // backward: += onto the same random start
                        memcpy(b, a, bytes);
                        dropout_backward(a, x, ps[ip], seeds[is], row0s[ir], N, C);
                        kernel_walk(b, x, ps[ip], seeds[is], row0s[ir], N, C, 1);
                        bwd_bad += memcmp(a, b, bytes) != 0;
                        free(x), free(a), free(b);
                    }
    }
    vet_ops_simd(1);
    CHECK(fwd_bad == 0);
    CHECK(bwd_bad == 0);
}

// The masks behave like independent Bernoulli(1 - p) draws: the drop rate of each of the four
// words of a Philox block (a transposition slip would skew one), of neighbouring rows agreeing
// beyond chance (rows share all but one counter word), of two seeds agreeing beyond chance.
static void test_mask_statistics(void) {
    const int N = 64, C = 1024;
    const float p = 0.3f;
    size_t n = (size_t)N * C;
    float *ones = malloc(n * sizeof(float)), *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
    dropout_forward(a, ones, p, 2024, 0, N, C);
    dropout_forward(b, ones, p, 2025, 0, N, C);
    double per_word[4] = {0}, same_rows = 0, same_seeds = 0;
    for (int row = 0; row < N; row++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)row * C + c;
            per_word[c % 4] += a[i] == 0.0f;
            if (row + 1 < N) same_rows += (a[i] == 0.0f) == (a[i + C] == 0.0f);
            same_seeds += (a[i] == 0.0f) == (b[i] == 0.0f);
        }
    // each word: n/4 = 16384 draws, sd of the rate ~0.0036; 0.02 is over 5 sd
    for (int j = 0; j < 4; j++) CHECK(fabs(per_word[j] / (double)(n / 4) - p) < 0.02);
    double agree = p * p + (1 - p) * (1 - p);  // two independent masks agree this often (0.58)
    CHECK(fabs(same_rows / (double)((size_t)(N - 1) * C) - agree) < 0.02);
    CHECK(fabs(same_seeds / (double)n - agree) < 0.02);
    free(ones), free(a), free(b);
}

int main(void) {
    RUN(test_known_answers);
    RUN(test_threshold_and_keep_rule);
    RUN(test_kernel_walk_equals_cpu_dropout);
    RUN(test_mask_statistics);
    CHECK_EXIT();
}
