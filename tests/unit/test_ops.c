// test_ops.c — every op's backward against central finite differences, plus a few exact checks
// (attention against a dense masked reference, llama3 rope frequencies, AdamW by hand).
//
// Each op's scalar loss is L = sum(out * w) for a fixed random w, so dout = w. The loss is
// evaluated in double over fp32 outputs; with h = 1e-2..1e-3 the fp32 rounding noise stays
// well under the tolerances below (checked as |fd - analytic| <= tol * max(1, |analytic|)).
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/ops.h"
#include "base/rng.h"

static float *randn(int n, uint64_t seed, float std) {
    vet_rng r;
    vet_rng_seed(&r, seed);
    float *x = malloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) x[i] = (float)vet_rng_normal(&r) * std;
    return x;
}

static double dotd(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

typedef double (*loss_fn)(void *ctx);

// Compares analytic gradient g of parameter x against central differences at every index.
static void fd_check(loss_fn f, void *ctx, float *x, const float *g, int n, float h, double tol) {
    for (int i = 0; i < n; i++) {
        float x0 = x[i];
        x[i] = x0 + h;
        double lp = f(ctx);
        x[i] = x0 - h;
        double lm = f(ctx);
        x[i] = x0;
        double fd = (lp - lm) / (2.0 * ((double)(x0 + h) - (double)x0));
        CHECK_NEAR(g[i], fd, tol);
    }
}

// --- rmsnorm -----------------------------------------------------------------------------------
typedef struct { int N, C; float *x, *w, *out, *rstd, *dout; } rms_ctx;
static double rms_loss(void *p) {
    rms_ctx *c = p;
    rmsnorm_forward(c->out, c->rstd, c->x, c->w, c->N, c->C, 1e-5f);
    return dotd(c->out, c->dout, c->N * c->C);
}
static void test_rmsnorm_backward(void) {
    rms_ctx c = {3, 8, randn(24, 1, 1.0f), randn(8, 2, 1.0f), calloc(24, 4), calloc(3, 4), randn(24, 3, 1.0f)};
    float *dx = calloc(24, 4), *dw = calloc(8, 4);
    rms_loss(&c);
    rmsnorm_backward(dx, dw, c.dout, c.x, c.w, c.rstd, c.N, c.C);
    fd_check(rms_loss, &c, c.x, dx, 24, 1e-2f, 2e-3);
    fd_check(rms_loss, &c, c.w, dw, 8, 1e-2f, 2e-3);
    // HF formula by hand on row 0
    double ss = 0;
    for (int i = 0; i < 8; i++) ss += c.x[i] * c.x[i];
    rms_loss(&c);
    CHECK_NEAR(c.out[3], c.w[3] * c.x[3] / sqrt(ss / 8 + 1e-5), 1e-6);
    free(c.x); free(c.w); free(c.out); free(c.rstd); free(c.dout); free(dx); free(dw);
}

// --- matmul ------------------------------------------------------------------------------------
typedef struct { int N, C, OC; float *x, *w, *b, *out, *dout; } mm_ctx;
static double mm_loss(void *p) {
    mm_ctx *c = p;
    matmul_forward(c->out, c->x, c->w, c->b, c->N, c->C, c->OC);
    return dotd(c->out, c->dout, c->N * c->OC);
}
static void test_matmul_backward(void) {
    int N = 5, C = 7, OC = 6;
    mm_ctx c = {N, C, OC, randn(N * C, 4, 1.0f), randn(OC * C, 5, 1.0f), randn(OC, 6, 1.0f),
                calloc(N * OC, 4), randn(N * OC, 7, 1.0f)};
    float *dx = calloc(N * C, 4), *dw = calloc(OC * C, 4), *db = calloc(OC, 4);
    matmul_backward(dx, dw, db, c.dout, c.x, c.w, N, C, OC);
    fd_check(mm_loss, &c, c.x, dx, N * C, 1e-2f, 1e-3);
    fd_check(mm_loss, &c, c.w, dw, OC * C, 1e-2f, 1e-3);
    fd_check(mm_loss, &c, c.b, db, OC, 1e-2f, 1e-3);
    // accumulation: a second call doubles; NULL dweight leaves it alone
    float dw0 = dw[3];
    matmul_backward(dx, NULL, NULL, c.dout, c.x, c.w, N, C, OC);
    CHECK(dw[3] == dw0);
    matmul_backward(NULL, dw, NULL, c.dout, c.x, c.w, N, C, OC);
    CHECK_NEAR(dw[3], 2 * dw0, 1e-6);
    free(c.x); free(c.w); free(c.b); free(c.out); free(c.dout); free(dx); free(dw); free(db);
}

// --- embedding ---------------------------------------------------------------------------------
static void test_embedding(void) {
    int V = 5, C = 70, N = 4;  // C > one column block
    int32_t tok[4] = {3, 1, 3, 0};
    float *E = randn(V * C, 8, 1.0f), *out = calloc(N * C, 4), *dout = randn(N * C, 9, 1.0f);
    float *dE = calloc(V * C, 4);
    embedding_forward(out, tok, E, N, C);
    CHECK(out[2 * C + 5] == E[3 * C + 5]);
    embedding_backward(dE, dout, tok, N, C);
    CHECK_NEAR(dE[3 * C + 69], dout[0 * C + 69] + dout[2 * C + 69], 1e-6);
    CHECK(dE[2 * C + 1] == 0.0f);
    CHECK(dE[1 * C + 1] == dout[1 * C + 1]);
    free(E); free(out); free(dout); free(dE);
}

// --- rope --------------------------------------------------------------------------------------
typedef struct { int N, nh, hd; float *x, *y, *cs, *sn, *dout; int32_t *pos; } rope_ctx;
static double rope_loss(void *p) {
    rope_ctx *c = p;
    int n = c->N * c->nh * c->hd;
    memcpy(c->y, c->x, n * 4);
    rope_forward(c->y, c->pos, c->cs, c->sn, c->N, c->nh, c->hd);
    return dotd(c->y, c->dout, n);
}
static void test_rope(void) {
    int N = 3, nh = 2, hd = 8, n = N * nh * hd;
    float inv[4], cs[10 * 4], sn[10 * 4];
    rope_inv_freq(inv, hd, 10000.0f, NULL);
    CHECK_NEAR(inv[1], pow(10000.0, -2.0 / 8), 1e-6);
    rope_tables(cs, sn, 10, hd, inv);
    int32_t pos[3] = {0, 5, 9};
    rope_ctx c = {N, nh, hd, randn(n, 10, 1.0f), calloc(n, 4), cs, sn, randn(n, 11, 1.0f), pos};
    rope_loss(&c);
    // position 0 is the identity; position 5, pair (1, 5) of head 1 rotated by 5*inv[1]
    CHECK(c.y[3] == c.x[3]);
    float *x = c.x + (1 * nh + 1) * hd, *y = c.y + (1 * nh + 1) * hd;
    double a = 5.0 * inv[1];
    CHECK_NEAR(y[1], x[1] * cos(a) - x[5] * sin(a), 1e-5);
    CHECK_NEAR(y[5], x[5] * cos(a) + x[1] * sin(a), 1e-5);
    float *dx = malloc(n * 4);
    memcpy(dx, c.dout, n * 4);
    rope_backward(dx, pos, cs, sn, N, nh, hd);
    fd_check(rope_loss, &c, c.x, dx, n, 1e-2f, 1e-3);
    free(c.x); free(c.y); free(c.dout); free(dx);
}

static void test_rope_llama3(void) {
    // Llama-3.1 scaling: high frequencies kept, low ones divided by factor, a smooth band between.
    int hd = 128;
    float base[64], sc[64];
    rope_scaling s = {1, 8.0f, 1.0f, 4.0f, 8192, NULL};
    rope_inv_freq(base, hd, 500000.0f, NULL);
    rope_inv_freq(sc, hd, 500000.0f, &s);
    int n_keep = 0, n_div = 0, n_mid = 0;
    for (int i = 0; i < 64; i++) {
        double wl = 2 * M_PI / base[i];
        if (wl < 8192.0 / 4) { CHECK(sc[i] == base[i]); n_keep++; }
        else if (wl > 8192.0) { CHECK_NEAR(sc[i], base[i] / 8, 1e-7); n_div++; }
        else {
            double sm = (8192.0 / wl - 1) / 3;
            CHECK_NEAR(sc[i] / base[i], (1 - sm) / 8 + sm, 1e-5);
            n_mid++;
        }
    }
    CHECK(n_keep > 0 && n_div > 0 && n_mid > 0);
}

// llama.cpp's rope_freqs (what convert_hf_to_gguf.py writes for llama3 scaling, computed here
// in double from the same parameters) divide the plain frequencies: the result is transformers'
// llama3 inv_freq up to fp32 rounding, and all-ones factors are plain rope bit for bit.
static void test_rope_factors(void) {
    int hd = 128, half = 64;
    float plain[64], llama3[64], divided[64], factors[64], ones[64];
    rope_inv_freq(plain, hd, 500000.0f, NULL);
    for (int i = 0; i < half; i++) {
        double wl = 2 * M_PI / plain[i], sm = (8192.0 / wl - 1) / 3;
        factors[i] = wl < 8192.0 / 4 ? 1.0f : wl > 8192.0 ? 8.0f : (float)(1 / ((1 - sm) / 8 + sm));
        ones[i] = 1.0f;
    }
    rope_scaling l3 = {1, 8.0f, 1.0f, 4.0f, 8192, NULL}, fs = {2, 0, 0, 0, 0, factors}, one = {2, 0, 0, 0, 0, ones};
    rope_inv_freq(llama3, hd, 500000.0f, &l3);
    rope_inv_freq(divided, hd, 500000.0f, &fs);
    double worst = 0;
    for (int i = 0; i < half; i++) worst = fmax(worst, fabs(divided[i] - llama3[i]) / llama3[i]);
    CHECK(worst < 1e-6);
    CHECK(divided[0] == plain[0] && divided[63] == plain[63] / 8);
    rope_inv_freq(divided, hd, 500000.0f, &one);
    CHECK(memcmp(divided, plain, sizeof plain) == 0);
}

// --- attention ---------------------------------------------------------------------------------
// Dense reference: explicit (T,T) mask from seg, softmax in double.
static void attention_dense(float *out, const float *q, const float *k, const float *v,
                            const int32_t *seg, int B, int T, int H, int KVH, int hd) {
    double *p = malloc(T * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                int g = h / (H / KVH);
                const int32_t *s = seg + b * T;
                float *o = out + ((b * T + i) * H + h) * hd;
                double mx = -1e300, sum = 0;
                for (int j = 0; j < T; j++) {
                    p[j] = -1e300;
                    if (s[i] < 0 || s[j] != s[i] || j > i) continue;
                    p[j] = dotd(q + ((b * T + i) * H + h) * hd, k + ((b * T + j) * KVH + g) * hd, hd) / sqrt(hd);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < T; j++) { p[j] = p[j] == -1e300 ? 0 : exp(p[j] - mx); sum += p[j]; }
                for (int d = 0; d < hd; d++) {
                    double acc = 0;
                    for (int j = 0; j < T; j++) acc += p[j] * v[((b * T + j) * KVH + g) * hd + d];
                    o[d] = sum > 0 ? (float)(acc / sum) : 0.0f;
                }
            }
    free(p);
}

typedef struct { int B, T, H, KVH, hd; float *q, *k, *v, *out, *lse, *dout; int32_t *seg; } att_ctx;
static double att_loss(void *p) {
    att_ctx *c = p;
    attention_forward(c->out, c->lse, c->q, c->k, c->v, c->seg, c->B, c->T, c->H, c->KVH, c->hd);
    return dotd(c->out, c->dout, c->B * c->T * c->H * c->hd);
}
static void test_attention(void) {
    int B = 2, T = 6, H = 4, KVH = 2, hd = 4;
    int nq = B * T * H * hd, nk = B * T * KVH * hd;
    // row 0: samples of 3, 2 and one pad; row 1: one sample of 6
    int32_t seg[12] = {0, 0, 0, 1, 1, -1, 0, 0, 0, 0, 0, 0};
    att_ctx c = {B, T, H, KVH, hd, randn(nq, 12, 1.0f), randn(nk, 13, 1.0f), randn(nk, 14, 1.0f),
                 calloc(nq, 4), calloc(B * T * H, 4), randn(nq, 15, 1.0f), seg};
    float *ref = calloc(nq, 4);
    att_loss(&c);
    attention_dense(ref, c.q, c.k, c.v, seg, B, T, H, KVH, hd);
    for (int i = 0; i < nq; i++) CHECK_NEAR(c.out[i], ref[i], 1e-5);
    for (int i = 5 * H * hd; i < 6 * H * hd; i++) CHECK(c.out[i] == 0.0f);  // padding
    float *dq = calloc(nq, 4), *dk = calloc(nk, 4), *dv = calloc(nk, 4);
    attention_backward(dq, dk, dv, c.dout, c.q, c.k, c.v, c.out, c.lse, seg, B, T, H, KVH, hd);
    fd_check(att_loss, &c, c.q, dq, nq, 1e-2f, 2e-3);
    fd_check(att_loss, &c, c.k, dk, nk, 1e-2f, 2e-3);
    fd_check(att_loss, &c, c.v, dv, nk, 1e-2f, 2e-3);
    // the padding key gets no gradient
    for (int i = 5 * KVH * hd; i < 6 * KVH * hd; i++) CHECK(dk[i] == 0.0f && dv[i] == 0.0f);
    free(c.q); free(c.k); free(c.v); free(c.out); free(c.lse); free(c.dout); free(ref);
    free(dq); free(dk); free(dv);
}

// --- swiglu ------------------------------------------------------------------------------------
typedef struct { int n; float *g, *u, *out, *dout; } sw_ctx;
static double sw_loss(void *p) {
    sw_ctx *c = p;
    swiglu_forward(c->out, c->g, c->u, c->n);
    return dotd(c->out, c->dout, c->n);
}
static void test_swiglu(void) {
    int n = 20;
    sw_ctx c = {n, randn(n, 16, 2.0f), randn(n, 17, 1.0f), calloc(n, 4), randn(n, 18, 1.0f)};
    float *dg = calloc(n, 4), *du = calloc(n, 4);
    sw_loss(&c);
    CHECK_NEAR(c.out[4], c.g[4] / (1 + exp(-c.g[4])) * c.u[4], 1e-6);
    swiglu_backward(dg, du, c.dout, c.g, c.u, n);
    fd_check(sw_loss, &c, c.g, dg, n, 1e-2f, 1e-3);
    fd_check(sw_loss, &c, c.u, du, n, 1e-2f, 1e-3);
    free(c.g); free(c.u); free(c.out); free(c.dout); free(dg); free(du);
}

// --- cross-entropy -----------------------------------------------------------------------------
typedef struct { int n, V; float *z, *tmp, *loss; int32_t *t; } ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = p;
    memcpy(c->tmp, c->z, c->n * c->V * 4);
    crossentropy_softmax_backward_inplace(c->tmp, c->loss, c->t, c->n, c->V);
    double s = 0;
    for (int i = 0; i < c->n; i++) s += c->loss[i];
    return s;
}
static void test_crossentropy(void) {
    int n = 3, V = 9;
    int32_t t[3] = {4, -1, 0};
    ce_ctx c = {n, V, randn(n * V, 19, 3.0f), calloc(n * V, 4), calloc(n, 4), t};
    c.z[2] = 80.0f;  // a large logit: stable softmax must not overflow
    ce_loss(&c);
    double lse = 0;
    for (int j = 0; j < V; j++) lse += exp(c.z[j] - 80.0);
    CHECK_NEAR(c.loss[0], 80.0 + log(lse) - c.z[4], 1e-5);
    CHECK(c.loss[1] == 0.0f);
    float *g = malloc(n * V * 4);
    memcpy(g, c.tmp, n * V * 4);
    for (int j = 0; j < V; j++) CHECK(g[V + j] == 0.0f);
    fd_check(ce_loss, &c, c.z, g, n * V, 1e-2f, 2e-3);
    free(c.z); free(c.tmp); free(c.loss); free(g);
}

static float ce_eps;
static double ce_smoothed_loss(void *p) {
    ce_ctx *c = p;
    memcpy(c->tmp, c->z, c->n * c->V * 4);
    crossentropy_smoothed_softmax_backward_inplace(c->tmp, c->loss, c->t, c->n, c->V, ce_eps);
    double s = 0;
    for (int i = 0; i < c->n; i++) s += c->loss[i];
    return s;
}
static void test_crossentropy_smoothed(void) {
    int n = 3, V = 9;
    int32_t t[3] = {4, -1, 0};
    ce_ctx c = {n, V, randn(n * V, 23, 3.0f), calloc(n * V, 4), calloc(n, 4), t};
    float *plain = malloc(n * V * 4), *plain_loss = malloc(n * 4);
    // eps 0 is the plain function, bit for bit.
    ce_loss(&c);
    memcpy(plain, c.tmp, n * V * 4), memcpy(plain_loss, c.loss, n * 4);
    ce_eps = 0.0f;
    ce_smoothed_loss(&c);
    CHECK(memcmp(plain, c.tmp, n * V * 4) == 0 && memcmp(plain_loss, c.loss, n * 4) == 0);
    // eps 0.2: (1-eps)·nll + eps·mean(-log p), from the definition in double.
    ce_eps = 0.2f;
    ce_smoothed_loss(&c);
    for (int i = 0; i < n; i += 2) {
        const float *z = c.z + i * V;
        double mx = z[0], lse = 0, mean_nlp = 0;
        for (int j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < V; j++) lse += exp(z[j] - mx);
        lse = mx + log(lse);
        for (int j = 0; j < V; j++) mean_nlp += (lse - z[j]) / V;
        CHECK_NEAR(c.loss[i], 0.8 * (lse - z[t[i]]) + 0.2 * mean_nlp, 1e-5);
    }
    CHECK(c.loss[1] == 0.0f);
    float *g = malloc(n * V * 4);
    memcpy(g, c.tmp, n * V * 4);
    for (int i = 0; i < n; i++) {  // each gradient row sums to 0 (both targets sum to 1)
        double s = 0;
        for (int j = 0; j < V; j++) s += g[i * V + j];
        CHECK_NEAR(s, 0.0, 1e-6);
    }
    fd_check(ce_smoothed_loss, &c, c.z, g, n * V, 1e-2f, 2e-3);
    free(c.z); free(c.tmp); free(c.loss); free(g); free(plain); free(plain_loss);
}

// --- dropout -----------------------------------------------------------------------------------
static void test_dropout(void) {
    int N = 50, C = 40;
    float *x = randn(N * C, 20, 1.0f), *y = calloc(N * C, 4), *y2 = calloc(N * C, 4);
    dropout_forward(y, x, 0.25f, 77, 0, N, C);
    dropout_forward(y2, x, 0.25f, 77, 0, N, C);
    CHECK(memcmp(y, y2, N * C * 4) == 0);
    int zeros = 0;
    for (int i = 0; i < N * C; i++) {
        if (y[i] == 0.0f) zeros++;
        else CHECK_NEAR(y[i], x[i] / 0.75f, 1e-6);
    }
    CHECK(zeros > 0.2 * N * C && zeros < 0.3 * N * C);
    float *d = calloc(N * C, 4), *ones = malloc(N * C * 4);
    for (int i = 0; i < N * C; i++) ones[i] = 1.0f;
    dropout_backward(d, ones, 0.25f, 77, 0, N, C);
    for (int i = 0; i < N * C; i++) CHECK((d[i] == 0.0f) == (y[i] == 0.0f));
    dropout_forward(y2, x, 0.25f, 78, 0, N, C);
    CHECK(memcmp(y, y2, N * C * 4) != 0);  // another seed, another mask
    free(x); free(y); free(y2); free(d); free(ones);
}

// A slice of rows [r0, r0 + n) of a batch, run with row0 = r0, gets exactly the whole batch's
// masks for those rows (forward and backward), whatever the alignment of the AVX2 path's
// quads of rows; row0 = 0 on the slice would give the first rows' masks instead.
static void test_dropout_row0(void) {
    int N = 50, C = 300;  // C over the AVX2 path's 256-column mask tile
    float *x = randn(N * C, 21, 1.0f), *y = calloc(N * C, 4), *d = calloc(N * C, 4);
    float *ys = calloc(N * C, 4), *ds = calloc(N * C, 4);
    dropout_forward(y, x, 0.3f, 91, 0, N, C);
    for (int i = 0; i < N * C; i++) d[i] = 0.5f;
    dropout_backward(d, x, 0.3f, 91, 0, N, C);
    const int cuts[][2] = {{1, 13}, {3, 9}, {4, 40}, {17, 33}, {49, 1}, {0, 50}};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        int r0 = cuts[k][0], n = cuts[k][1];
        const float *xs = x + (size_t)r0 * C;
        dropout_forward(ys, xs, 0.3f, 91, r0, n, C);
        CHECK(memcmp(ys, y + (size_t)r0 * C, (size_t)n * C * 4) == 0);
        for (int i = 0; i < n * C; i++) ds[i] = 0.5f;
        dropout_backward(ds, xs, 0.3f, 91, r0, n, C);
        CHECK(memcmp(ds, d + (size_t)r0 * C, (size_t)n * C * 4) == 0);
        // offsets compose: a whole at row0 = 100 holds the slice at row0 = 100 + r0
        dropout_forward(d, x, 0.3f, 91, 100, N, C);
        dropout_forward(ys, xs, 0.3f, 91, 100 + r0, n, C);
        CHECK(memcmp(ys, d + (size_t)r0 * C, (size_t)n * C * 4) == 0);
        for (int i = 0; i < N * C; i++) d[i] = 0.5f;
        dropout_backward(d, x, 0.3f, 91, 0, N, C);  // the whole's backward again for the next cut
    }
    dropout_forward(ys, x + 17 * C, 0.3f, 91, 0, 33, C);  // no offset: other masks
    CHECK(memcmp(ys, y + 17 * C, 33 * C * 4) != 0);
    free(x); free(y); free(d); free(ys); free(ds);
}

// --- AdamW -------------------------------------------------------------------------------------
static void test_adamw(void) {
    // Two steps by hand (double), torch.optim.AdamW(lr=0.1, betas=(0.9,0.999), eps=1e-8, wd=0.01)
    float p[2] = {1.0f, -0.5f}, m[2] = {0}, v[2] = {0};
    float g1[2] = {0.2f, -0.3f}, g2[2] = {-0.1f, 0.4f};
    double P[2] = {1.0, -0.5}, M[2] = {0}, Vv[2] = {0};
    for (int step = 1; step <= 2; step++) {
        const float *g = step == 1 ? g1 : g2;
        adamw_update(p, g, 1.0f, m, v, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
        for (int i = 0; i < 2; i++) {
            P[i] *= 1 - 0.1 * 0.01;
            M[i] = 0.9 * M[i] + 0.1 * g[i];
            Vv[i] = 0.999 * Vv[i] + 0.001 * g[i] * g[i];
            double mh = M[i] / (1 - pow(0.9, step)), vh = Vv[i] / (1 - pow(0.999, step));
            P[i] -= 0.1 * mh / (sqrt(vh) + 1e-8);
        }
        // Adam's first step moves each weight by lr against the sign of its gradient
        if (step == 1) CHECK_NEAR(p[0], 1.0 * (1 - 0.001) - 0.1, 1e-6);
    }
    CHECK_NEAR(p[0], P[0], 1e-6);
    CHECK_NEAR(p[1], P[1], 1e-6);
    CHECK_NEAR(m[1], M[1], 1e-6);
    CHECK_NEAR(v[1], Vv[1], 1e-8);
}

// The gradients' factor inside the step (clipping, fp16's unscale) is scale_inplace before it,
// bit for bit; a factor of 1 leaves them as they are, 0 is a step without gradients.
static void test_adamw_grad_scale(void) {
    enum { N = 37 };
    float g[N], gs[N], p1[N], p2[N], m1[N], m2[N], v1[N], v2[N];
    for (int i = 0; i < N; i++) {
        g[i] = sinf(0.7f * i) * (i % 5 ? 1e-3f : 3.0f), gs[i] = g[i];
        p1[i] = p2[i] = cosf(0.3f * i), m1[i] = m2[i] = 0.01f * i, v1[i] = v2[i] = 1e-4f * (i + 1);
    }
    const float s = 0.3127f;
    scale_inplace(gs, s, N);
    adamw_update(p1, g, s, m1, v1, N, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 3);
    adamw_update(p2, gs, 1.0f, m2, v2, N, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 3);
    CHECK(!memcmp(p1, p2, sizeof p1) && !memcmp(m1, m2, sizeof m1) && !memcmp(v1, v2, sizeof v1));
    CHECK(memcmp(g, gs, sizeof g) != 0);  // the factor was not 1 in effect
    float z[N] = {0};
    memcpy(p2, p1, sizeof p1), memcpy(m2, m1, sizeof m1), memcpy(v2, v1, sizeof v1);
    adamw_update(p1, g, 0.0f, m1, v1, N, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 4);
    adamw_update(p2, z, 1.0f, m2, v2, N, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 4);
    CHECK(!memcmp(p1, p2, sizeof p1) && !memcmp(m1, m2, sizeof m1) && !memcmp(v1, v2, sizeof v1));
}

// The AVX2 kernels (ops_simd.c) against the scalar loops, bit for bit: SwiGLU both ways and
// dropout, at sizes with tails (n % 8, N % 4, C over one mask block) and with the values that
// take the edges of vet_expf (clamped, NaN, inf, -0); RMSNorm's sums. Without AVX2 both runs
// are scalar.
static int same_bits(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4) != 0 && !(isnan(a[i]) && isnan(b[i]))) return 0;
    return 1;
}
static void test_simd_exact(void) {
    int N = 4 * 9 + 3, C = 300;  // rows in quads and a tail; columns past MASK_COLS (256)
    size_t n = (size_t)N * C - 5;
    float *g = randn(N * C, 60, 4.0f), *u = randn(N * C, 61, 1.0f), *d = randn(N * C, 62, 1.0f);
    g[0] = NAN, g[1] = INFINITY, g[2] = -INFINITY, g[3] = -0.0f, g[4] = 100.0f, g[5] = -100.0f, g[6] = 88.7f;
    float *out[2], *dg[2], *du[2], *dgs[2], *dus[2], *dr[2], *db[2], *rms[2], *rstd[2], *drms[2], *dw[2];
    for (int k = 0; k < 2; k++) {
        vet_ops_simd(k == 0);
        out[k] = calloc(N * C, 4), dg[k] = randn(N * C, 63, 1.0f), du[k] = randn(N * C, 64, 1.0f);
        dgs[k] = calloc(N * C, 4), dus[k] = calloc(N * C, 4), dr[k] = calloc(N * C, 4), db[k] = randn(N * C, 65, 1.0f);
        swiglu_forward(out[k], g, u, n);
        swiglu_backward(dg[k], du[k], d, g, u, n);
        swiglu_backward_set(dgs[k], dus[k], d, g, u, n);
        dropout_forward(dr[k], g, 0.3f, 99, 0, N, C);
        dropout_backward(db[k], d, 0.1f, 98, 0, N, C);
        rms[k] = calloc(N * C, 4), rstd[k] = calloc(N, 4), drms[k] = randn(N * C, 66, 1.0f), dw[k] = calloc(C, 4);
        rmsnorm_forward(rms[k], rstd[k], u, d, N, C - 3, 1e-5f);  // C - 3: a tail of 5 past 8-lane blocks
        rmsnorm_backward(drms[k], dw[k], g + 7, u, d, rstd[k], N, C - 3);
    }
    vet_ops_simd(1);
    size_t all = (size_t)N * C;
    CHECK(same_bits(out[0], out[1], all));
    CHECK(same_bits(dg[0], dg[1], all));
    CHECK(same_bits(du[0], du[1], all));
    CHECK(same_bits(dgs[0], dgs[1], all));
    CHECK(same_bits(dus[0], dus[1], all));
    CHECK(same_bits(dr[0], dr[1], all));
    CHECK(same_bits(db[0], db[1], all));
    CHECK(same_bits(rms[0], rms[1], all) && same_bits(rstd[0], rstd[1], N));
    CHECK(same_bits(drms[0], drms[1], all) && same_bits(dw[0], dw[1], C));
    CHECK(isnan(out[0][0]) && isnan(dg[0][0]));  // a NaN gate stays NaN (non-finite checks see it)
    for (int k = 0; k < 2; k++) {
        free(out[k]); free(dg[k]); free(du[k]); free(dgs[k]); free(dus[k]); free(dr[k]); free(db[k]);
        free(rms[k]); free(rstd[k]); free(drms[k]); free(dw[k]);
    }
    free(g); free(u); free(d);
}

// Attention with and without the AVX2 rows: the same bits (samples of lengths that leave
// tails of every size, a padding tail, GQA), forward, backward and the cached forward.
static void test_simd_attention_exact(void) {
    int B = 2, T = 61, H = 4, KVH = 2, hd = 16, nq = B * T * H * hd, nk = B * T * KVH * hd;
    int32_t seg[2 * 61];
    for (int i = 0; i < B * T; i++) seg[i] = (i % T) < 13 ? 0 : (i % T) < 50 ? 1 : (i % T) < 58 ? 2 : -1;
    float *q = randn(nq, 70, 2.0f), *k = randn(nk, 71, 2.0f), *v = randn(nk, 72, 1.0f), *dout = randn(nq, 73, 1.0f);
    float *o[2], *lse[2], *dq[2], *dk[2], *dv[2], *co[2];
    for (int m = 0; m < 2; m++) {
        vet_ops_simd(m == 0);
        o[m] = calloc(nq, 4), lse[m] = calloc(B * T * H, 4), dq[m] = calloc(nq, 4), dk[m] = calloc(nk, 4);
        dv[m] = calloc(nk, 4), co[m] = calloc(nq, 4);
        attention_forward(o[m], lse[m], q, k, v, seg, B, T, H, KVH, hd);
        attention_backward(dq[m], dk[m], dv[m], dout, q, k, v, o[m], lse[m], seg, B, T, H, KVH, hd);
        attention_cached_forward(co[m], q + 20 * H * hd, k, v, 21, 20, H, KVH, hd);  // 21 new at 20..40
    }
    vet_ops_simd(1);
    CHECK(same_bits(o[0], o[1], nq));
    CHECK(same_bits(lse[0], lse[1], B * T * H));
    CHECK(same_bits(dq[0], dq[1], nq));
    CHECK(same_bits(dk[0], dk[1], nk));
    CHECK(same_bits(dv[0], dv[1], nk));
    CHECK(same_bits(co[0], co[1], 21 * H * hd));
    for (int m = 0; m < 2; m++) {
        free(o[m]); free(lse[m]); free(dq[m]); free(dk[m]); free(dv[m]); free(co[m]);
    }
    free(q); free(k); free(v); free(dout);
}

// Sizes above VET_PAR_MIN run the OpenMP paths: 1 and 2 threads must agree (bit for bit
// except the GEMMs: splitting them changes OpenBLAS's blocking, hence the last bits).
typedef struct { float *att, *lse, *dq, *dk, *dv, *rms, *rstd, *dx, *dw, *mm, *dmx, *dmw, *dmb, *sw, *dg, *du, *ce, *cel, *dr; } par_out;
static void run_ops_big(par_out *o, int threads) {
    vet_set_threads(threads);
    int B = 2, T = 200, H = 4, KVH = 2, hd = 32, N = B * T, C = 128, V = 128;
    int nq = B * T * H * hd, nk = B * T * KVH * hd;
    int32_t *seg = malloc(B * T * 4);
    for (int i = 0; i < B * T; i++) seg[i] = (i % T) < 150 ? (i % T) / 50 : (i % T) < 190 ? 3 : -1;
    float *q = randn(nq, 40, 1.0f), *k = randn(nk, 41, 1.0f), *v = randn(nk, 42, 1.0f), *dout = randn(nq, 43, 1.0f);
    o->att = calloc(nq, 4), o->lse = calloc(B * T * H, 4), o->dq = calloc(nq, 4), o->dk = calloc(nk, 4), o->dv = calloc(nk, 4);
    attention_forward(o->att, o->lse, q, k, v, seg, B, T, H, KVH, hd);
    attention_backward(o->dq, o->dk, o->dv, dout, q, k, v, o->att, o->lse, seg, B, T, H, KVH, hd);
    float *x = randn(N * C, 44, 1.0f), *w = randn(C, 45, 1.0f), *dy = randn(N * C, 46, 1.0f);
    o->rms = calloc(N * C, 4), o->rstd = calloc(N, 4), o->dx = calloc(N * C, 4), o->dw = calloc(C, 4);
    rmsnorm_forward(o->rms, o->rstd, x, w, N, C, 1e-5f);
    rmsnorm_backward(o->dx, o->dw, dy, x, w, o->rstd, N, C);
    float *W = randn(C * C, 47, 1.0f), *bias = randn(C, 48, 1.0f);
    o->mm = calloc(N * C, 4), o->dmx = calloc(N * C, 4), o->dmw = calloc(C * C, 4), o->dmb = calloc(C, 4);
    matmul_forward(o->mm, x, W, bias, N, C, C);
    matmul_backward(o->dmx, o->dmw, o->dmb, dy, x, W, N, C, C);
    o->sw = calloc(N * C, 4), o->dg = calloc(N * C, 4), o->du = calloc(N * C, 4);
    swiglu_forward(o->sw, x, dy, (size_t)N * C);
    swiglu_backward(o->dg, o->du, w, x, dy, (size_t)C);  // a short one stays serial: both paths
    swiglu_backward(o->dg, o->du, dy, x, dy, (size_t)N * C);
    o->ce = malloc(N * V * 4), o->cel = calloc(N, 4);
    memcpy(o->ce, x, N * V * 4);
    int32_t *tg = malloc(N * 4);
    for (int i = 0; i < N; i++) tg[i] = i % 7 == 0 ? -1 : (i * 13) % V;
    crossentropy_softmax_backward_inplace(o->ce, o->cel, tg, N, V);
    o->dr = calloc(N * C, 4);
    dropout_backward(o->dr, dy, 0.3f, 5, 0, N, C);
    free(seg); free(q); free(k); free(v); free(dout); free(x); free(w); free(dy); free(W); free(bias); free(tg);
}
static void test_threads_agree(void) {
    par_out a, b;
    run_ops_big(&a, 1);
    run_ops_big(&b, 2);
    struct { float *x, *y; size_t n; int exact; } t[] = {
        {a.att, b.att, 2 * 200 * 4 * 32, 1}, {a.lse, b.lse, 2 * 200 * 4, 1}, {a.dq, b.dq, 2 * 200 * 4 * 32, 1},
        {a.dk, b.dk, 2 * 200 * 2 * 32, 1}, {a.dv, b.dv, 2 * 200 * 2 * 32, 1}, {a.rms, b.rms, 400 * 128, 1},
        {a.rstd, b.rstd, 400, 1}, {a.dx, b.dx, 400 * 128, 1}, {a.dw, b.dw, 128, 1},
        {a.mm, b.mm, 400 * 128, 0}, {a.dmx, b.dmx, 400 * 128, 0}, {a.dmw, b.dmw, 128 * 128, 0},
        {a.dmb, b.dmb, 128, 1}, {a.sw, b.sw, 400 * 128, 1}, {a.dg, b.dg, 400 * 128, 1},
        {a.du, b.du, 400 * 128, 1}, {a.ce, b.ce, 400 * 128, 1}, {a.cel, b.cel, 400, 1}, {a.dr, b.dr, 400 * 128, 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (t[i].exact) CHECK(memcmp(t[i].x, t[i].y, t[i].n * 4) == 0);
        else for (size_t j = 0; j < t[i].n; j++) CHECK_NEAR(t[i].x[j], t[i].y[j], 1e-4);
        free(t[i].x);
        free(t[i].y);
    }
    vet_set_threads(2);
}

// A thread count from the environment (vet-generate's OMP_NUM_THREADS) is capped: 40,000,000
// threads is a typo, and 64 times it overflowed the GEMM's split test (UBSan).
static void test_threads_capped(void) {
    vet_set_threads(40000000);
    CHECK(vet_get_threads() == 4096);
    vet_set_threads(2);
}

// --threads 0 (the default) takes OMP_NUM_THREADS as any OpenMP program does: its first level,
// capped as above; unset, or not a count, every core.
static void test_threads_from_env(void) {
    setenv("OMP_NUM_THREADS", "3", 1);
    vet_set_threads(0);
    CHECK(vet_get_threads() == 3);
    setenv("OMP_NUM_THREADS", "5,2", 1);
    vet_set_threads(0);
    CHECK(vet_get_threads() == 5);
    setenv("OMP_NUM_THREADS", "99999999999999999999", 1);
    vet_set_threads(0);
    CHECK(vet_get_threads() == 4096);
    vet_set_threads(7);  // a count given wins
    CHECK(vet_get_threads() == 7);
    setenv("OMP_NUM_THREADS", "many", 1);
    vet_set_threads(0);
    CHECK(vet_get_threads() == omp_get_num_procs());
    setenv("OMP_NUM_THREADS", "4abc", 1);
    vet_set_threads(0);
    CHECK(vet_get_threads() == omp_get_num_procs());
    unsetenv("OMP_NUM_THREADS");
    vet_set_threads(0);
    CHECK(vet_get_threads() == omp_get_num_procs());
    vet_set_threads(2);
}

int main(void) {
    vet_set_threads(2);
    RUN(test_rmsnorm_backward);
    RUN(test_matmul_backward);
    RUN(test_embedding);
    RUN(test_rope);
    RUN(test_rope_llama3);
    RUN(test_rope_factors);
    RUN(test_attention);
    RUN(test_swiglu);
    RUN(test_crossentropy);
    RUN(test_crossentropy_smoothed);
    RUN(test_dropout);
    RUN(test_dropout_row0);
    RUN(test_adamw);
    RUN(test_adamw_grad_scale);
    RUN(test_threads_agree);
    RUN(test_threads_capped);
    RUN(test_threads_from_env);
    RUN(test_simd_exact);
    RUN(test_simd_attention_exact);
    CHECK_EXIT();
}
