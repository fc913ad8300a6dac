// test_rng_device.c — lib/base/rng_core.h, the generator the CUDA dropout kernel runs, compiled here
// as plain C: its values pinned, its streams equal to lib/base/rng.c's, and the kernel's walk over a
// tensor (kernels/dropout.cu: warps of 32 rows, tiles of 32 columns, keep bits per lane)
// replayed in C giving dropout_forward / dropout_backward's results bit for bit. This is the
// very code the kernel runs, checked without a GPU; op_parity checks the kernel on one.
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "model/ops.h"
#include "base/rng.h"
#include "base/rng_core.h"

// Values from an independent implementation (Python integers, written from the algorithms'
// definitions); the splitmix64 ones are also the published reference outputs for seed 1234567.
static void test_pinned_values(void) {
    uint64_t s = 1234567;
    CHECK(vet_rng_core_splitmix64(&s) == 6457827717110365317ull);
    CHECK(vet_rng_core_splitmix64(&s) == 3203168211198807973ull);
    CHECK(vet_rng_core_splitmix64(&s) == 9817491932198370423ull);
    CHECK(vet_rng_core_hash(42, 7) == 1587005860896957696ull);
    CHECK(vet_rng_core_hash(0, 0) == 12035550249420947055ull);
    uint64_t st[4];
    vet_rng_core_seed(st, vet_rng_core_hash(2024, 3));
    CHECK(vet_rng_core_next(st) == 14928666673034737095ull);
    CHECK(vet_rng_core_next(st) == 7071366517489658730ull);
    CHECK(vet_rng_core_next(st) == 12294565562982141740ull);
    CHECK(vet_rng_core_uniform(st) == 0x1.c4c73ap-1f);
    CHECK(vet_rng_core_uniform(st) == 0x1.5447p-6f);
    CHECK(vet_rng_core_uniform(st) == 0x1.fc6b64p-2f);
    // and lib/base/rng.c, built on the core, gives the same
    s = 1234567;
    CHECK(vet_splitmix64(&s) == 6457827717110365317ull);
    CHECK(vet_rng_hash(42, 7) == 1587005860896957696ull);
    vet_rng r;
    vet_rng_seed(&r, vet_rng_hash(2024, 3));
    CHECK(vet_rng_next(&r) == 14928666673034737095ull);
}

// A dropout row's stream (seed vet_rng_hash(seed, n)) drawn by the core and by vet_rng.
static void test_row_streams_equal_vet_rng(void) {
    const uint64_t seeds[] = {0, 1, 7, 0xdeadbeefcafef00dull, UINT64_MAX};
    int bad = 0;
    for (int k = 0; k < 5; k++)
        for (uint64_t n = 0; n < 300; n += 37) {
            vet_rng r;
            uint64_t s[4];
            vet_rng_seed(&r, vet_rng_hash(seeds[k], n));
            vet_rng_core_seed(s, vet_rng_core_hash(seeds[k], n));
            for (int i = 0; i < 1000; i++) {
                float a = vet_rng_uniform(&r), b = vet_rng_core_uniform(s);
                if (memcmp(&a, &b, sizeof a) != 0 || !(b >= 0.0f && b < 1.0f)) bad++;
            }
        }
    CHECK(bad == 0);
}

// Bit j of keep_bits is !(draw j < p), the draws in order; n < 32 leaves the high bits 0.
static void test_keep_bits(void) {
    const int ns[] = {1, 3, 32};
    for (int k = 0; k < 3; k++) {
        int n = ns[k];
        uint64_t a[4], b[4];
        vet_rng_core_seed(a, 99), vet_rng_core_seed(b, 99);
        uint32_t bits = vet_rng_core_keep_bits(a, 0.3f, n);
        for (int j = 0; j < n; j++) CHECK(((bits >> j) & 1u) == (uint32_t) !(vet_rng_core_uniform(b) < 0.3f));
        if (n < 32) CHECK(bits >> n == 0);
        CHECK(memcmp(a, b, sizeof a) == 0);  // exactly n draws taken
    }
}

// kernels/dropout.cu's dropout_rows_kernel, replayed: warp w owns rows 32w..32w+31, lane l
// draws row 32w+l's keep bits 32 columns at a time; then for each row i of the tile, lane j
// applies bit j of lane i's word (the shuffle) to column c0+j. The element rule as the
// kernel's __fmul_rn / __fadd_rn (C11 does not contract a*b+c, so these are single roundings).
static void kernel_walk(float *out, const float *inp, float p, uint64_t seed, int N, int C,
                        int accumulate) {
    float keep_scale = 1.0f / (1.0f - p);
    for (int row0 = 0; row0 < N; row0 += 32) {
        int rows = N - row0 < 32 ? N - row0 : 32;
        uint64_t s[32][4];
        for (int lane = 0; lane < 32; lane++)
            if (row0 + lane < N) vet_rng_core_seed(s[lane], vet_rng_core_hash(seed, (uint64_t)(row0 + lane)));
        for (int c0 = 0; c0 < C; c0 += 32) {
            int cols = C - c0 < 32 ? C - c0 : 32;
            uint32_t bits[32];
            for (int lane = 0; lane < 32; lane++)
                bits[lane] = row0 + lane < N ? vet_rng_core_keep_bits(s[lane], p, cols) : 0u;
            for (int i = 0; i < rows; i++)
                for (int lane = 0; lane < cols; lane++) {
                    size_t at = (size_t)(row0 + i) * C + c0 + lane;
                    float v = (bits[i] >> lane) & 1u ? inp[at] * keep_scale : 0.0f;
                    out[at] = accumulate ? out[at] + v : v;
                }
        }
    }
}

static void fill(float *x, size_t n, vet_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (float)vet_rng_normal(r);
    // edge values: signed zeros, a subnormal, huge (x * scale overflows to inf), inf
    const float edge[] = {0.0f, -0.0f, 0x1p-140f, 3.0e38f, -3.0e38f, INFINITY};
    for (size_t i = 0; i < 6 && i < n; i++) x[(i * 7919) % n] = edge[i];
}

static void test_kernel_walk_equals_cpu_dropout(void) {
    const int shapes[][2] = {{1, 1}, {70, 75}, {33, 32}, {64, 200}, {5, 1000}};
    const float ps[] = {0.1f, 0.25f, 0.5f, 0.9f};
    const uint64_t seeds[] = {0, 12345, 0xdeadbeefcafef00dull};
    vet_rng r;
    vet_rng_seed(&r, 5);
    int fwd_bad = 0, bwd_bad = 0;
    size_t dropped = 0, total = 0;
    for (int sh = 0; sh < 5; sh++)
        for (int ip = 0; ip < 4; ip++)
            for (int is = 0; is < 3; is++) {
                int N = shapes[sh][0], C = shapes[sh][1];
                size_t n = (size_t)N * C, bytes = n * sizeof(float);
                float *x = malloc(bytes), *a = malloc(bytes), *b = malloc(bytes);
                fill(x, n, &r);
                dropout_forward(a, x, ps[ip], seeds[is], 0, N, C);
                kernel_walk(b, x, ps[ip], seeds[is], N, C, 0);
                fwd_bad += memcmp(a, b, bytes) != 0;
                for (size_t i = 0; i < n; i++) dropped += a[i] == 0.0f && x[i] != 0.0f;
                total += n;
                // backward: += onto the same random start
                fill(a, n, &r);
                memcpy(b, a, bytes);
                dropout_backward(a, x, ps[ip], seeds[is], 0, N, C);
                kernel_walk(b, x, ps[ip], seeds[is], N, C, 1);
                bwd_bad += memcmp(a, b, bytes) != 0;
                free(x), free(a), free(b);
            }
    CHECK(fwd_bad == 0);
    CHECK(bwd_bad == 0);
    // the masks are not trivial: about the mean p (0.4375) of the elements dropped
    double frac = (double)dropped / (double)total;
    CHECK(frac > 0.40 && frac < 0.48);
}

int main(void) {
    RUN(test_pinned_values);
    RUN(test_row_streams_equal_vet_rng);
    RUN(test_keep_bits);
    RUN(test_kernel_walk_equals_cpu_dropout);
    CHECK_EXIT();
}
