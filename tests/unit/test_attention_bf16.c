// test_attention_bf16.c — the tensor-core kernels' arithmetic on the CPU
// (lib/model/ops_attention_bf16.c) against the exact fp32 attention (ops_attention.c): close to
// it at bf16's precision (and not equal: the rounding happens), exact where bf16 loses nothing,
// the mask and padding as the fp32 op's, tiles that split a sample's keys included.
#include <stdint.h>

#include "base/half.h"
#include "check.h"
#include "model/ops.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {  // uniform in [-1, 1)
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static float *rnd(size_t n, float scale) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
    return x;
}
static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}
static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;  // nan too
    }
    return m;
}

// Row 0: samples of 30, 90 (its keys span two 64-key tiles and the second query block), 20, 20;
// row 1: 64 (exactly one tile), 1, 70, then padding to T.
enum { B = 2, T = 160, H = 4, KVH = 2 };
static void make_seg(int32_t *seg) {
    const int len0[] = {30, 90, 20, 20}, len1[] = {64, 1, 70};
    int t = 0;
    for (int s = 0; s < 4; s++)
        for (int i = 0; i < len0[s]; i++) seg[t++] = s;
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < len1[s]; i++) seg[t++] = s;
    while (t < B * T) seg[t++] = -1;
}

static void close_to_fp32(int hd) {
    int32_t seg[B * T];
    make_seg(seg);
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KVH * hd, nl = (size_t)B * T * H;
    float *q = rnd(nq, 2.0f), *k = rnd(nk, 2.0f), *v = rnd(nk, 1.0f), *dout = rnd(nq, 1.0f);
    float *o32 = malloc(nq * 4), *l32 = malloc(nl * 4), *o16 = malloc(nq * 4), *l16 = malloc(nl * 4);
    attention_forward(o32, l32, q, k, v, seg, B, T, H, KVH, hd);
    attention_forward_bf16(o16, l16, q, k, v, seg, B, T, H, KVH, hd, 64);
    double e_out = max_diff(o16, o32, nq) / max_abs(o32, nq), e_lse = max_diff(l16, l32, nl);
    fprintf(stderr, "hd %d: out max rel err %.3g, lse max abs err %.3g\n", hd, e_out, e_lse);
    CHECK(e_out <= 1.5e-2);
    CHECK(e_lse <= 2e-2);
    CHECK(e_out > 1e-5);  // the operands really were rounded

    // Padding queries: zero output and lse, as the fp32 op.
    for (size_t x = (size_t)(T + 135) * H * hd; x < nq; x++) CHECK(o16[x] == 0.0f);
    for (size_t x = (size_t)(T + 135) * H; x < nl; x++) CHECK(l16[x] == 0.0f);

    // Backward from each side's own forward (as training), into gradients that start non-zero.
    float *dq32 = rnd(nq, 1.0f), *dk32 = rnd(nk, 1.0f), *dv32 = rnd(nk, 1.0f);
    float *dq16 = malloc(nq * 4), *dk16 = malloc(nk * 4), *dv16 = malloc(nk * 4);
    memcpy(dq16, dq32, nq * 4), memcpy(dk16, dk32, nk * 4), memcpy(dv16, dv32, nk * 4);
    float *dk0 = malloc(nk * 4);
    memcpy(dk0, dk32, nk * 4);
    attention_backward(dq32, dk32, dv32, dout, q, k, v, o32, l32, seg, B, T, H, KVH, hd);
    attention_backward_bf16(dq16, dk16, dv16, dout, q, k, v, o16, l16, seg, B, T, H, KVH, hd);
    double e_dq = max_diff(dq16, dq32, nq) / max_abs(dq32, nq);
    double e_dk = max_diff(dk16, dk32, nk) / max_abs(dk32, nk);
    double e_dv = max_diff(dv16, dv32, nk) / max_abs(dv32, nk);
    fprintf(stderr, "hd %d: dq %.3g, dk %.3g, dv %.3g max rel err\n", hd, e_dq, e_dk, e_dv);
    CHECK(e_dq <= 1.5e-2 && e_dk <= 1.5e-2 && e_dv <= 1.5e-2);
    CHECK(e_dq > 1e-6 && e_dk > 1e-6 && e_dv > 1e-6);
    // Padding keys get nothing: their gradients are what they were.
    for (size_t x = (size_t)(T + 135) * KVH * hd; x < nk; x++) CHECK(dk16[x] == dk0[x]);

    free(q), free(k), free(v), free(dout), free(o32), free(l32), free(o16), free(l16);
    free(dq32), free(dk32), free(dv32), free(dq16), free(dk16), free(dv16), free(dk0);
}

static void test_close_to_fp32_hd40(void) { close_to_fp32(40); }   // not a multiple of 16
static void test_close_to_fp32_hd64(void) { close_to_fp32(64); }
static void test_close_to_fp32_hd128(void) { close_to_fp32(128); }

// Samples of one position each, with bf16-exact inputs: every query sees only itself, p = 1
// exactly, so out = v and lse = q.k * scale bit for bit; and the backward gives dv = dout
// (rounded), dq = dk = 0 (ds = p (dp - D) = 0 when out = v).
static void test_single_key_samples_exact(void) {
    enum { b = 1, t = 70, h = 2, kvh = 1, hd = 16 };
    int32_t seg[t];
    for (int i = 0; i < t; i++) seg[i] = i;
    size_t nq = (size_t)t * h * hd, nk = (size_t)t * kvh * hd;
    float *q = rnd(nq, 1.0f), *k = rnd(nk, 1.0f), *v = rnd(nk, 1.0f), *dout = rnd(nq, 1.0f);
    for (size_t i = 0; i < nq; i++) q[i] = vet_bf16_to_f32(vet_f32_to_bf16(q[i])),
                                     dout[i] = vet_bf16_to_f32(vet_f32_to_bf16(dout[i]));
    for (size_t i = 0; i < nk; i++) k[i] = vet_bf16_to_f32(vet_f32_to_bf16(k[i])),
                                     v[i] = vet_bf16_to_f32(vet_f32_to_bf16(v[i]));
    float *o = malloc(nq * 4), *l = malloc((size_t)t * h * 4);
    attention_forward_bf16(o, l, q, k, v, seg, b, t, h, kvh, hd, 64);
    for (int i = 0; i < t; i++)
        for (int hh = 0; hh < h; hh++) {
            for (int d = 0; d < hd; d++) CHECK(o[((size_t)i * h + hh) * hd + d] == v[(size_t)i * hd + d]);
            double s = 0;
            for (int d = 0; d < hd; d++) s += (double)q[((size_t)i * h + hh) * hd + d] * k[(size_t)i * hd + d];
            CHECK(l[(size_t)i * h + hh] == (float)s * (1.0f / sqrtf((float)hd)));
        }
    float *dq = calloc(nq, 4), *dk = calloc(nk, 4), *dv = calloc(nk, 4);
    attention_backward_bf16(dq, dk, dv, dout, q, k, v, o, l, seg, b, t, h, kvh, hd);
    for (size_t i = 0; i < nq; i++) CHECK(fabsf(dq[i]) <= 1e-6f);
    for (size_t i = 0; i < nk; i++) CHECK(fabsf(dk[i]) <= 1e-6f);
    for (int i = 0; i < t; i++)
        for (int d = 0; d < hd; d++)  // both heads of the group add their dout
            CHECK_NEAR(dv[(size_t)i * hd + d],
                       (double)dout[((size_t)i * h + 0) * hd + d] + dout[((size_t)i * h + 1) * hd + d], 1e-6);
    free(q), free(k), free(v), free(dout), free(o), free(l), free(dq), free(dk), free(dv);
}

// The forward's tiling shows in its bits (a probability is rounded against its tile's running
// maximum): tiles of 16 and of 64 differ, both within bf16's error of each other. So the
// replay takes the kernel's tile, and a kernel with another tile would fail op_parity's 4e-3
// against it only where the roundings differ, not by a bug's margin.
static void test_tile_shows_in_bits(void) {
    enum { hd = 32 };
    int32_t seg[B * T];
    make_seg(seg);
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KVH * hd, nl = (size_t)B * T * H;
    float *q = rnd(nq, 2.0f), *k = rnd(nk, 2.0f), *v = rnd(nk, 1.0f);
    float *o64 = malloc(nq * 4), *l64 = malloc(nl * 4), *o16 = malloc(nq * 4), *l16 = malloc(nl * 4);
    attention_forward_bf16(o64, l64, q, k, v, seg, B, T, H, KVH, hd, 64);
    attention_forward_bf16(o16, l16, q, k, v, seg, B, T, H, KVH, hd, 16);
    double e = max_diff(o16, o64, nq) / max_abs(o64, nq);
    fprintf(stderr, "tiles 16 vs 64: out max rel diff %.3g\n", e);
    CHECK(memcmp(o16, o64, nq * 4) != 0);
    CHECK(e <= 1e-2);
    free(q), free(k), free(v), free(o64), free(l64), free(o16), free(l16);
}

int main(void) {
    RUN(test_close_to_fp32_hd40);
    RUN(test_close_to_fp32_hd64);
    RUN(test_close_to_fp32_hd128);
    RUN(test_single_key_samples_exact);
    RUN(test_tile_shows_in_bits);
    CHECK_EXIT();
}
