// test_model.c — the whole decoder on tiny configs made here: gradients by finite differences
// (LoRA and full), packed rows against one sample per row, padding, determinism, batches,
// LoRA targets, and loading a HF directory written with the safetensors writer.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/config.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/ops.h"
#include "base/rng.h"
#include "io/safetensors.h"
#include "tiny_models.h"

// dim 16, hidden 24, GQA 4/2 heads of 4, vocab 23; llama3 with a short original context so all
// three frequency bands occur with head_dim 4.
static const tiny_shape SHAPE = {16, 24, 4, 2, 4, 23, 64, 64, 500.0f, 10.0f};

static void make_model(vet_model *m, int variant, uint64_t seed) { tiny_model(m, variant, &SHAPE, seed); }

static void add_lora(vet_model *m, float dropout) {
    vet_err err;
    if (vet_model_add_lora(m, 2, 4.0f, dropout, 0, VET_LORA_ALL, 5, &err)) { fprintf(stderr, "%s\n", err.msg); abort(); }
    // B starts at zero (so A's gradient would be zero): give it values to test both.
    vet_rng r;
    vet_rng_seed(&r, 9);
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        int out, in;
        vet_lora_dims(&m->cfg, t, &out, &in);
        size_t nB = (size_t)m->cfg.n_layers * out * m->lora.r;
        for (size_t i = 0; i < nB; i++) m->lora.B[t][i] = 0.3f * (float)vet_rng_normal(&r);
    }
}

// Two rows: row 0 packs samples of 5, 4 and 3 tokens; row 1 one sample of 7.
// Targets: next token within the sample, -1 at each sample's last position and on a prompt.
typedef struct { int32_t tok[2][12], tgt[2][12], starts[2][3]; vet_row rows[2]; } rows2;
static void make_rows(rows2 *r, int V, uint64_t seed) {
    vet_rng g;
    vet_rng_seed(&g, seed);
    int n[2] = {12, 7}, ns[2] = {3, 1};
    int st[2][3] = {{0, 5, 9}, {0, 0, 0}};
    for (int row = 0; row < 2; row++) {
        for (int i = 0; i < n[row]; i++) r->tok[row][i] = (int32_t)vet_rng_below(&g, V);
        for (int s = 0; s < ns[row]; s++) {
            int a = st[row][s], e = s + 1 < ns[row] ? st[row][s + 1] : n[row];
            for (int i = a; i < e; i++) r->tgt[row][i] = i + 1 < e ? r->tok[row][i + 1] : -1;
            r->tgt[row][a] = -1;  // a "prompt" token without loss
        }
        memcpy(r->starts[row], st[row], sizeof st[row]);
        r->rows[row] = (vet_row){r->tok[row], r->tgt[row], r->starts[row], n[row], ns[row]};
    }
}

// The mean loss of an evaluation forward, or of a training forward with dropout seed `seed`
// (its masks are a function of the seed, so the loss is a function of the weights).
static double mean_loss_of(vet_model *m, vet_acts *a, const vet_batch *b, int training, uint64_t seed) {
    double s;
    int n;
    vet_err err;
    if (vet_model_forward(m, a, b, NULL, &s, &n, training, seed, &err)) { fprintf(stderr, "%s\n", err.msg); abort(); }
    return s / n;
}
static double mean_loss(vet_model *m, vet_acts *a, const vet_batch *b) { return mean_loss_of(m, a, b, 0, 0); }

// Finite differences of the training forward with dropout seed fd_seed when fd_training is set.
static int fd_training;
static uint64_t fd_seed;

// Finite differences on a sample of n_check entries of buf; the analytic gradient g is of the
// mean loss. Passes when the worst error is under 2% of the largest gradient checked.
static void fd_sample(vet_model *m, vet_acts *a, const vet_batch *b, float *buf, const float *g,
                      size_t n, int n_check, uint64_t seed, const char *what) {
    vet_rng r;
    vet_rng_seed(&r, seed);
    double max_err = 0, max_g = 0;
    for (int k = 0; k < n_check; k++) {
        size_t i = (size_t)vet_rng_below(&r, n);
        float x0 = buf[i], h = 1e-2f;
        buf[i] = x0 + h;
        double lp = mean_loss_of(m, a, b, fd_training, fd_seed);
        buf[i] = x0 - h;
        double lm = mean_loss_of(m, a, b, fd_training, fd_seed);
        buf[i] = x0;
        double fd = (lp - lm) / (2.0 * h);
        double e = fabs(fd - g[i]);
        if (e > max_err) max_err = e;
        if (fabs(g[i]) > max_g) max_g = fabs(g[i]);
    }
    if (!(max_err <= 2e-2 * max_g && max_g > 1e-4))
        fprintf(stderr, "%s: finite differences off by %g, largest gradient %g\n", what, max_err, max_g);
    CHECK(max_err <= 2e-2 * max_g);
    CHECK(max_g > 1e-4);
}

static void lora_grad_case(int variant) {
    vet_model m;
    make_model(&m, variant, 1);
    add_lora(&m, 0.0f);
    rows2 r;
    make_rows(&r, m.cfg.vocab_size, 3);
    vet_batch b;
    vet_err err;
    CHECK(vet_batch_from_rows(&b, r.rows, 2, m.cfg.vocab_size, &err) == 0);
    vet_acts *a = vet_acts_new(&m, b.B, b.T, &err);
    double s;
    int n;
    float *g = calloc(m.n_lora, 4), *g2 = calloc(m.n_lora, 4);
    CHECK(vet_model_forward(&m, a, &b, NULL, &s, &n, 0, 0, &err) == 0);
    CHECK(n == vet_batch_n_targets(&b));
    CHECK(vet_model_backward(&m, a, &b, 1.0f / n, VET_TRAIN_LORA, g, &err) == 0);
    // The training forward (loss gradient fused into the forward) gives the same gradients.
    CHECK(vet_model_forward(&m, a, &b, NULL, &s, &n, 1, 0, &err) == 0);
    CHECK(vet_model_backward(&m, a, &b, 1.0f / n, VET_TRAIN_LORA, g2, &err) == 0);
    for (size_t i = 0; i < m.n_lora; i++) CHECK_NEAR(g2[i], g[i], 1e-6);
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        char what[64];
        snprintf(what, sizeof what, "lora A %s", vet_lora_target_name(t));
        size_t nA = (size_t)(m.lora.B[t] - m.lora.A[t]);
        fd_sample(&m, a, &b, m.lora.A[t], g + (m.lora.A[t] - m.lora_mem), nA, 6, t, what);
        snprintf(what, sizeof what, "lora B %s", vet_lora_target_name(t));
        int out, in;
        vet_lora_dims(&m.cfg, t, &out, &in);
        fd_sample(&m, a, &b, m.lora.B[t], g + (m.lora.B[t] - m.lora_mem),
                  (size_t)m.cfg.n_layers * out * m.lora.r, 6, t + 50, what);
    }
    free(g);
    free(g2);
    vet_acts_free(a);
    vet_batch_free(&b);
    vet_model_free(&m);
}
static void test_lora_grad_llama(void) { lora_grad_case(VAR_LLAMA); }
static void test_lora_grad_llama3_rope(void) { lora_grad_case(VAR_LLAMA3); }
static void test_lora_grad_qwen_tied(void) { lora_grad_case(VAR_QWEN_TIED); }

// Finite differences on 8 entries of every base weight tensor; g holds the full gradient.
static void fd_all_weights(vet_model *m, vet_acts *a, const vet_batch *b, const float *g) {
    const vet_weights *w = &m->w;
    const vet_config *c = &m->cfg;
    size_t L = c->n_layers, C = c->dim, F = c->hidden_dim, V = c->vocab_size;
    size_t Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
    struct { const char *name; float *p; size_t n; } t[] = {
        {"embed", w->embed, V * C}, {"attn_norm", w->attn_norm, L * C}, {"wq", w->wq, L * Q * C},
        {"wk", w->wk, L * KV * C}, {"wv", w->wv, L * KV * C}, {"bq", w->bq, L * Q},
        {"bk", w->bk, L * KV}, {"bv", w->bv, L * KV}, {"wo", w->wo, L * C * Q},
        {"mlp_norm", w->mlp_norm, L * C}, {"wgate", w->wgate, L * F * C}, {"wup", w->wup, L * F * C},
        {"wdown", w->wdown, L * C * F}, {"final_norm", w->final_norm, C},
        {"lm_head", c->tie_embeddings ? NULL : w->lm_head, V * C},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (!t[i].p) continue;
        fd_sample(m, a, b, t[i].p, g + (t[i].p - m->w_mem), t[i].n, 8, i, t[i].name);
    }
}

static void full_grad_case(int variant) {
    vet_model m;
    make_model(&m, variant, 2);
    rows2 r;
    make_rows(&r, m.cfg.vocab_size, 4);
    vet_batch b;
    vet_err err;
    CHECK(vet_batch_from_rows(&b, r.rows, 2, m.cfg.vocab_size, &err) == 0);
    vet_acts *a = vet_acts_new(&m, b.B, b.T, &err);
    double s;
    int n;
    float *g = calloc(m.n_w, 4);
    CHECK(vet_model_forward(&m, a, &b, NULL, &s, &n, 1, 0, &err) == 0);
    CHECK(vet_model_backward(&m, a, &b, 1.0f / n, VET_TRAIN_FULL, g, &err) == 0);
    fd_all_weights(&m, a, &b, g);
    free(g);
    vet_acts_free(a);
    vet_batch_free(&b);
    vet_model_free(&m);
}
static void test_full_grad_llama(void) { full_grad_case(VAR_LLAMA); }
static void test_full_grad_llama3_rope(void) { full_grad_case(VAR_LLAMA3); }
static void test_full_grad_qwen_tied(void) { full_grad_case(VAR_QWEN_TIED); }

// A packed row computes what its samples compute one per row; padding changes nothing.
static void test_packed_equals_separate(void) {
    vet_model m;
    make_model(&m, VAR_LLAMA3, 7);
    add_lora(&m, 0.0f);
    rows2 r;
    make_rows(&r, m.cfg.vocab_size, 8);
    vet_err err;
    vet_batch packed, sep;
    CHECK(vet_batch_from_rows(&packed, r.rows, 1, m.cfg.vocab_size, &err) == 0);  // row 0 only
    // the same three samples as rows of their own
    vet_row one[3];
    int32_t zero = 0;
    for (int s = 0; s < 3; s++) {
        int a0 = r.starts[0][s], e = s < 2 ? r.starts[0][s + 1] : 12;
        one[s] = (vet_row){r.tok[0] + a0, r.tgt[0] + a0, &zero, e - a0, 1};
    }
    CHECK(vet_batch_from_rows(&sep, one, 3, m.cfg.vocab_size, &err) == 0);
    CHECK(sep.T == 5);
    int V = m.cfg.vocab_size;
    vet_acts *ap = vet_acts_new(&m, packed.B, packed.T, &err), *as = vet_acts_new(&m, sep.B, sep.T, &err);
    float *lp = malloc((size_t)packed.B * packed.T * V * 4), *ls = malloc((size_t)sep.B * sep.T * V * 4);
    double sp, ss;
    int np, nsep;
    CHECK(vet_model_forward(&m, ap, &packed, lp, &sp, &np, 0, 0, &err) == 0);
    CHECK(vet_model_forward(&m, as, &sep, ls, &ss, &nsep, 0, 0, &err) == 0);
    CHECK(np == nsep && np > 0);
    CHECK_NEAR(sp, ss, 1e-5);
    for (int s = 0; s < 3; s++) {
        int a0 = r.starts[0][s], e = s < 2 ? r.starts[0][s + 1] : 12;
        for (int i = 0; i < e - a0; i++)
            for (int v = 0; v < V; v++)
                CHECK_NEAR(lp[(size_t)(a0 + i) * V + v], ls[((size_t)s * sep.T + i) * V + v], 1e-5);
    }
    // gradients agree too
    float *gp = calloc(m.n_lora, 4), *gs = calloc(m.n_lora, 4);
    CHECK(vet_model_backward(&m, ap, &packed, 1.0f / np, VET_TRAIN_LORA, gp, &err) == 0);
    CHECK(vet_model_backward(&m, as, &sep, 1.0f / np, VET_TRAIN_LORA, gs, &err) == 0);
    double gmax = 0;
    for (size_t i = 0; i < m.n_lora; i++) gmax = fmax(gmax, fabs(gp[i]));
    for (size_t i = 0; i < m.n_lora; i++) CHECK_NEAR(gp[i], gs[i], 1e-5 * gmax);
    free(lp); free(ls); free(gp); free(gs);
    vet_acts_free(ap); vet_acts_free(as);
    vet_batch_free(&packed); vet_batch_free(&sep);
    vet_model_free(&m);
}

static void test_padding_changes_nothing(void) {
    vet_model m;
    make_model(&m, VAR_QWEN_TIED, 11);
    add_lora(&m, 0.0f);
    rows2 r;
    make_rows(&r, m.cfg.vocab_size, 12);
    vet_err err;
    vet_batch b2, b1;
    CHECK(vet_batch_from_rows(&b2, r.rows, 2, m.cfg.vocab_size, &err) == 0);  // row 1 padded to 12
    CHECK(vet_batch_from_rows(&b1, r.rows + 1, 1, m.cfg.vocab_size, &err) == 0);  // row 1 alone
    CHECK(b2.T == 12 && b1.T == 7);
    CHECK(b2.seg[12 + 7] == -1 && b2.targets[12 + 11] == -1);
    int V = m.cfg.vocab_size;
    // Garbage in padding tokens must not matter either.
    for (int i = 7; i < 12; i++) b2.tokens[12 + i] = (i * 5) % V;
    vet_acts *a2 = vet_acts_new(&m, 2, 12, &err), *a1 = vet_acts_new(&m, 1, 7, &err);
    float *l2 = malloc(2 * 12 * V * 4), *l1 = malloc(7 * V * 4);
    double s2, s1, s0;
    int n2, n1, n0;
    CHECK(vet_model_forward(&m, a1, &b1, l1, &s1, &n1, 0, 0, &err) == 0);
    CHECK(vet_model_forward(&m, a2, &b2, l2, &s2, &n2, 0, 0, &err) == 0);
    for (int i = 0; i < 7 * V; i++) CHECK_NEAR(l2[12 * V + i], l1[i], 1e-5);
    // loss of row 0 alone + row 1 alone == the batch's
    vet_batch b0;
    CHECK(vet_batch_from_rows(&b0, r.rows, 1, m.cfg.vocab_size, &err) == 0);
    vet_acts *a0 = vet_acts_new(&m, 1, 12, &err);
    CHECK(vet_model_forward(&m, a0, &b0, NULL, &s0, &n0, 0, 0, &err) == 0);
    CHECK(n0 + n1 == n2);
    CHECK_NEAR(s0 + s1, s2, 1e-5);
    // padding rows get no gradient: row 1's gradient with and without padding agree
    float *g2 = calloc(m.n_lora, 4), *g1 = calloc(m.n_lora, 4), *g0 = calloc(m.n_lora, 4);
    CHECK(vet_model_backward(&m, a2, &b2, 1.0f, VET_TRAIN_LORA, g2, &err) == 0);
    CHECK(vet_model_backward(&m, a1, &b1, 1.0f, VET_TRAIN_LORA, g1, &err) == 0);
    CHECK(vet_model_backward(&m, a0, &b0, 1.0f, VET_TRAIN_LORA, g0, &err) == 0);
    double gmax = 0;
    for (size_t i = 0; i < m.n_lora; i++) gmax = fmax(gmax, fabs(g2[i]));
    for (size_t i = 0; i < m.n_lora; i++) CHECK_NEAR(g2[i], g0[i] + g1[i], 1e-5 * gmax);
    free(l1); free(l2); free(g0); free(g1); free(g2);
    vet_acts_free(a0); vet_acts_free(a1); vet_acts_free(a2);
    vet_batch_free(&b0); vet_batch_free(&b1); vet_batch_free(&b2);
    vet_model_free(&m);
}

// Same inputs and seeds: bit-identical loss and gradients (dropout on). Another seed differs.
static void test_deterministic(void) {
    vet_model m;
    make_model(&m, VAR_LLAMA, 13);
    add_lora(&m, 0.1f);
    rows2 r;
    make_rows(&r, m.cfg.vocab_size, 14);
    vet_err err;
    vet_batch b;
    CHECK(vet_batch_from_rows(&b, r.rows, 2, m.cfg.vocab_size, &err) == 0);
    vet_acts *a = vet_acts_new(&m, b.B, b.T, &err);
    float *g[3];
    double s[3];
    int n;
    uint64_t seeds[3] = {42, 42, 43};
    for (int k = 0; k < 3; k++) {
        g[k] = calloc(m.n_lora, 4);
        CHECK(vet_model_forward(&m, a, &b, NULL, &s[k], &n, 1, seeds[k], &err) == 0);
        CHECK(vet_model_backward(&m, a, &b, 1.0f / n, VET_TRAIN_LORA, g[k], &err) == 0);
    }
    CHECK(s[0] == s[1]);
    CHECK(memcmp(g[0], g[1], m.n_lora * 4) == 0);
    CHECK(s[0] != s[2]);
    CHECK(memcmp(g[0], g[2], m.n_lora * 4) != 0);
    // dropout is training only: an eval forward ignores it
    double e1, e2;
    CHECK(vet_model_forward(&m, a, &b, NULL, &e1, &n, 0, 1, &err) == 0);
    CHECK(vet_model_forward(&m, a, &b, NULL, &e2, &n, 0, 2, &err) == 0);
    CHECK(e1 == e2 && e1 != s[0]);
    for (int k = 0; k < 3; k++) free(g[k]);
    vet_acts_free(a);
    vet_batch_free(&b);
    vet_model_free(&m);
}

// With dropout on, the gradient is still the exact gradient of that step's (masked) loss.
static void test_dropout_grad(void) {
    vet_model m;
    make_model(&m, VAR_LLAMA, 15);
    add_lora(&m, 0.2f);
    rows2 r;
    make_rows(&r, m.cfg.vocab_size, 16);
    vet_err err;
    vet_batch b;
    CHECK(vet_batch_from_rows(&b, r.rows, 2, m.cfg.vocab_size, &err) == 0);
    vet_acts *a = vet_acts_new(&m, b.B, b.T, &err);
    double s0;
    int n;
    float *g = calloc(m.n_lora, 4);
    CHECK(vet_model_forward(&m, a, &b, NULL, &s0, &n, 1, 99, &err) == 0);
    CHECK(vet_model_backward(&m, a, &b, 1.0f, VET_TRAIN_LORA, g, &err) == 0);
    vet_rng rr;
    vet_rng_seed(&rr, 3);
    double max_err = 0, max_g = 0;
    for (int k = 0; k < 20; k++) {
        size_t i = (size_t)vet_rng_below(&rr, m.n_lora);
        float x0 = m.lora_mem[i], h = 1e-2f;
        m.lora_mem[i] = x0 + h;
        double lp, lm;
        vet_model_forward(&m, a, &b, NULL, &lp, &n, 1, 99, &err);
        m.lora_mem[i] = x0 - h;
        vet_model_forward(&m, a, &b, NULL, &lm, &n, 1, 99, &err);
        m.lora_mem[i] = x0;
        max_err = fmax(max_err, fabs((lp - lm) / (2 * h) - g[i]));
        max_g = fmax(max_g, fabs(g[i]));
    }
    CHECK(max_err <= 2e-2 * max_g && max_g > 1e-3);
    free(g);
    vet_acts_free(a);
    vet_batch_free(&b);
    vet_model_free(&m);
}

// Residual dropout (full training): the gradient of every weight is the exact gradient of that
// step's masked loss; the masks move the loss; an evaluation forward ignores the setting.
static void test_resid_dropout_grad(void) {
    vet_model m;
    make_model(&m, VAR_QWEN_TIED, 17);
    rows2 r;
    make_rows(&r, m.cfg.vocab_size, 18);
    vet_err err;
    vet_batch b;
    CHECK(vet_batch_from_rows(&b, r.rows, 2, m.cfg.vocab_size, &err) == 0);
    vet_acts *a = vet_acts_new(&m, b.B, b.T, &err);
    double plain, plain_train, eval, s0;
    int n;
    CHECK(vet_model_forward(&m, a, &b, NULL, &plain, &n, 0, 0, &err) == 0);
    CHECK(vet_model_forward(&m, a, &b, NULL, &plain_train, &n, 1, 5, &err) == 0);
    CHECK(plain_train == plain);  // p = 0: a training forward is the plain forward
    vet_acts_set_resid_dropout(a, 0.3f);
    CHECK(vet_model_forward(&m, a, &b, NULL, &eval, &n, 0, 5, &err) == 0);
    CHECK(eval == plain);  // evaluation: no dropout
    float *g = calloc(m.n_w, 4);
    CHECK(vet_model_forward(&m, a, &b, NULL, &s0, &n, 1, 5, &err) == 0);
    CHECK(fabs(s0 - plain) > 1e-3 * fabs(plain));  // the masks change the loss
    // fd_sample checks the gradient of the mean loss
    CHECK(vet_model_backward(&m, a, &b, 1.0f / n, VET_TRAIN_FULL, g, &err) == 0);
    fd_training = 1, fd_seed = 5;
    fd_all_weights(&m, a, &b, g);
    fd_training = 0;
    free(g);
    vet_acts_free(a);
    vet_batch_free(&b);
    vet_model_free(&m);
}

static void test_lora_init_and_targets(void) {
    vet_model m;
    make_model(&m, VAR_LLAMA, 17);
    vet_err err;
    unsigned mask;
    CHECK(vet_lora_parse_targets("q,k,v,o", &mask, &err) == 0 && mask == 0xf);
    CHECK(vet_lora_parse_targets("all", &mask, &err) == 0 && mask == VET_LORA_ALL);
    CHECK(vet_lora_parse_targets("gate_proj,up,down_proj", &mask, &err) == 0 && mask == 0x70);
    CHECK(vet_lora_parse_targets("q,x", &mask, &err) == -1);
    CHECK_CONTAINS(err.msg, "'x'");
    CHECK_STR(vet_lora_target_name(3), "o_proj");
    CHECK(vet_model_add_lora(&m, 4, 8.0f, 0.0f, 0, 0x5, 1, &err) == 0);
    CHECK(m.lora.A[0] && !m.lora.A[1] && m.lora.A[2] && !m.lora.B[3]);
    CHECK_NEAR(m.lora.scale, 2.0, 1e-7);
    CHECK(m.n_lora == 2u * (4 * 16 + 16 * 4 + 4 * 16 + 8 * 4));  // 2 layers of q (16->16), v (16->8)
    float bound = 1.0f / sqrtf(16.0f), mx = 0;
    for (int i = 0; i < 2 * 4 * 16; i++) mx = fmaxf(mx, fabsf(m.lora.A[0][i]));
    CHECK(mx < bound && mx > 0.8f * bound);
    for (int i = 0; i < 2 * 16 * 4; i++) CHECK(m.lora.B[0][i] == 0.0f);
    // B = 0: the adapted model computes what the base computes
    CHECK(vet_model_add_lora(&m, 4, 8.0f, 0.0f, 0, 0x5, 1, &err) == -1);
    vet_model m2;
    make_model(&m2, VAR_LLAMA, 17);
    rows2 r;
    make_rows(&r, m.cfg.vocab_size, 18);
    vet_batch b;
    CHECK(vet_batch_from_rows(&b, r.rows, 2, m.cfg.vocab_size, &err) == 0);
    vet_acts *a = vet_acts_new(&m, b.B, b.T, &err), *a2 = vet_acts_new(&m2, b.B, b.T, &err);
    CHECK(mean_loss(&m, a, &b) == mean_loss(&m2, a2, &b));
    // rslora scale
    vet_model_free(&m2);
    make_model(&m2, VAR_LLAMA, 17);
    CHECK(vet_model_add_lora(&m2, 4, 8.0f, 0.0f, 1, 0x1, 1, &err) == 0);
    CHECK_NEAR(m2.lora.scale, 4.0, 1e-7);
    vet_acts_free(a);
    vet_acts_free(a2);
    vet_batch_free(&b);
    vet_model_free(&m);
    vet_model_free(&m2);
}

static void test_batch_errors(void) {
    vet_err err;
    vet_batch b;
    int32_t tok[4] = {1, 2, 3, 4}, tgt[4] = {2, 3, 4, -1}, st[2] = {0, 2}, bad_st[2] = {0, 0};
    vet_row r = {tok, tgt, st, 4, 2};
    CHECK(vet_batch_from_rows(&b, &r, 1, 10, &err) == 0);
    CHECK(b.pos[3] == 1 && b.seg[3] == 1 && b.seg[1] == 0 && vet_batch_n_targets(&b) == 3);
    vet_batch_free(&b);
    CHECK(vet_batch_from_rows(&b, &r, 1, 4, &err) == -1);
    CHECK_CONTAINS(err.msg, "outside the vocabulary");
    r.starts = bad_st;
    CHECK(vet_batch_from_rows(&b, &r, 1, 10, &err) == -1);
    CHECK_CONTAINS(err.msg, "not ascending");
}

// A slice (a rank's share of a data-parallel micro-batch) keeps the whole's T (its padding) and
// rows, and its row0 is its first position's place in the whole; offsets compose; bad ranges fail.
static void test_batch_slice(void) {
    int32_t tok[3][5] = {{1, 2, 3, 4, 5}, {6, 7}, {8, 9, 1}}, tgt[3][5] = {{2, 3, 4, 5, -1}, {7, -1}, {9, 1, -1}};
    int32_t st[3][1] = {{0}, {0}, {0}};
    vet_row r[3] = {{tok[0], tgt[0], st[0], 5, 1}, {tok[1], tgt[1], st[1], 2, 1}, {tok[2], tgt[2], st[2], 3, 1}};
    vet_err err;
    vet_batch w, s, s2;
    CHECK(vet_batch_from_rows(&w, r, 3, 10, &err) == 0);
    CHECK(w.row0 == 0 && w.T == 5);
    CHECK(vet_batch_slice(&s, &w, 1, 2, &err) == 0);
    CHECK(s.B == 2 && s.T == 5 && s.row0 == 5);  // padded to the whole's longest row, not its own 3
    CHECK(memcmp(s.tokens, w.tokens + 5, 10 * sizeof(int32_t)) == 0);
    CHECK(memcmp(s.targets, w.targets + 5, 10 * sizeof(int32_t)) == 0);
    CHECK(memcmp(s.pos, w.pos + 5, 10 * sizeof(int32_t)) == 0);
    CHECK(memcmp(s.seg, w.seg + 5, 10 * sizeof(int32_t)) == 0);
    CHECK(vet_batch_slice(&s2, &s, 1, 1, &err) == 0);
    CHECK(s2.row0 == 10 && s2.tokens[0] == 8);
    vet_batch_free(&s2);
    CHECK(vet_batch_slice(&s2, &w, 2, 2, &err) == -1);
    CHECK_CONTAINS(err.msg, "not a slice");
    CHECK(vet_batch_slice(&s2, &w, 0, 0, &err) == -1);
    vet_batch_free(&s);
    vet_batch_free(&w);
}

// Word dropout: only loss-free context tokens change (never BOS, padding or any position that
// carries a target), about p of them, the same for the same seed, and p = 0 changes nothing.
static void test_token_dropout(void) {
    enum { N = 4000, PROMPT = 30 };  // two rows; samples of 40 tokens: 30 prompt, 10 response
    static int32_t tok[2][N], tgt[2][N], st[2][N / 40];
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < N; i++) {
            tok[r][i] = 1 + (i * 7 + r) % 50;
            tgt[r][i] = i % 40 >= PROMPT - 1 && i % 40 < 39 ? 1 + (i + 1) % 50 : -1;  // last prompt .. response
        }
        for (int s = 0; s < N / 40; s++) st[r][s] = s * 40;
    }
    vet_row rows[2] = {{tok[0], tgt[0], st[0], N, N / 40}, {tok[1], tgt[1], st[1], N - 40, N / 40 - 1}};
    vet_err err;
    vet_batch a, b, c;
    CHECK(vet_batch_from_rows(&a, rows, 2, 64, &err) == 0);
    CHECK(vet_batch_from_rows(&b, rows, 2, 64, &err) == 0);
    CHECK(vet_batch_from_rows(&c, rows, 2, 64, &err) == 0);
    CHECK(vet_batch_drop_tokens(&c, 0.0, 0, 7) == 0);
    CHECK(memcmp(a.tokens, c.tokens, (size_t)a.B * a.T * sizeof(int32_t)) == 0);
    long dropped = vet_batch_drop_tokens(&b, 0.2, 0, 7), changed = 0, eligible = 0;
    for (int i = 0; i < a.B * a.T; i++) {
        int may = a.seg[i] >= 0 && a.pos[i] != 0 && a.targets[i] == -1;
        eligible += may;
        if (b.tokens[i] != a.tokens[i]) {
            changed++;
            CHECK(may && b.tokens[i] == 0);
        }
        CHECK(b.targets[i] == a.targets[i]);
    }
    CHECK(changed == dropped);
    // eligible: prompt tokens 1..28 and the closing token per sample; binomial(eligible, 0.2) within 5 sd
    double mean = 0.2 * (double)eligible, sd = sqrt(eligible * 0.2 * 0.8);
    CHECK(eligible == (long)(2 * N / 40 - 1) * 29 && fabs((double)dropped - mean) < 5 * sd);
    vet_batch_drop_tokens(&c, 0.2, 0, 7);  // same seed: the same tokens
    CHECK(memcmp(b.tokens, c.tokens, (size_t)a.B * a.T * sizeof(int32_t)) == 0);
    vet_batch_free(&c);
    CHECK(vet_batch_from_rows(&c, rows, 2, 64, &err) == 0);
    vet_batch_drop_tokens(&c, 0.2, 0, 8);  // another seed: other tokens
    CHECK(memcmp(b.tokens, c.tokens, (size_t)a.B * a.T * sizeof(int32_t)) != 0);
    vet_batch_free(&a);
    vet_batch_free(&b);
    vet_batch_free(&c);
}

// A HF directory written here (config.json + safetensors) loads back to the same weights;
// a missing tensor and a wrong shape are named.
static void test_load(void) {
    char dir[] = "/tmp/vet-test-model-XXXXXX";
    if (!mkdtemp(dir)) SKIP("mkdtemp failed");
    vet_model m;
    make_model(&m, VAR_QWEN_TIED, 21);
    const vet_config *c = &m.cfg;
    vet_err err;
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(vet_config_save(c, path, &err) == 0);
    int64_t C = c->dim, F = c->hidden_dim, V = c->vocab_size, Q = c->n_heads * c->head_dim;
    int64_t KV = c->n_kv_heads * c->head_dim;
    for (int drop = 0; drop < 3; drop++) {  // 0: complete, 1: a tensor missing, 2: a bad shape
        vet_st_writer *w = vet_st_writer_new();
        char name[128];
#define PUT(nm, nd, a, b_, ptr)                                                              \
    do {                                                                                     \
        int64_t sh[2] = {(a), (b_)};                                                         \
        vet_st_writer_add(w, (nm), VET_DT_F32, (nd), sh, (ptr), &err);                       \
    } while (0)
        PUT("model.embed_tokens.weight", 2, V, C, m.w.embed);
        PUT("model.norm.weight", 1, C, 0, m.w.final_norm);
        for (int l = 0; l < c->n_layers; l++) {
#define LN(s) (snprintf(name, sizeof name, "model.layers.%d." s, l), name)
            PUT(LN("input_layernorm.weight"), 1, C, 0, m.w.attn_norm + l * C);
            PUT(LN("post_attention_layernorm.weight"), 1, C, 0, m.w.mlp_norm + l * C);
            if (!(drop == 1 && l == 1)) PUT(LN("self_attn.q_proj.weight"), 2, Q, C, m.w.wq + l * Q * C);
            PUT(LN("self_attn.k_proj.weight"), 2, KV, C, m.w.wk + l * KV * C);
            PUT(LN("self_attn.v_proj.weight"), 2, KV, C, m.w.wv + l * KV * C);
            PUT(LN("self_attn.q_proj.bias"), 1, Q, 0, m.w.bq + l * Q);
            PUT(LN("self_attn.k_proj.bias"), 1, KV, 0, m.w.bk + l * KV);
            if (drop == 2) PUT(LN("self_attn.v_proj.bias"), 1, KV - 2, 0, m.w.bv + l * KV);
            else PUT(LN("self_attn.v_proj.bias"), 1, KV, 0, m.w.bv + l * KV);
            PUT(LN("self_attn.o_proj.weight"), 2, C, Q, m.w.wo + l * C * Q);
            PUT(LN("mlp.gate_proj.weight"), 2, F, C, m.w.wgate + l * F * C);
            PUT(LN("mlp.up_proj.weight"), 2, F, C, m.w.wup + l * F * C);
            PUT(LN("mlp.down_proj.weight"), 2, C, F, m.w.wdown + l * C * F);
#undef LN
        }
#undef PUT
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        CHECK(vet_st_writer_write(w, path, &err) == 0);
        vet_st_writer_free(w);
        vet_model m2;
        int rc = vet_model_load(&m2, dir, &err);
        if (drop == 0) {
            CHECK(rc == 0);
            if (rc) { fprintf(stderr, "%s\n", err.msg); continue; }
            CHECK(m2.n_w == m.n_w && m2.w.lm_head == m2.w.embed && m2.w.bq);
            CHECK(memcmp(m2.w_mem, m.w_mem, m.n_w * 4) == 0);
            vet_model_free(&m2);
        } else {
            CHECK(rc == -1);
            CHECK_CONTAINS(err.msg, drop == 1 ? "model.layers.1.self_attn.q_proj.weight"
                                              : "model.layers.0.self_attn.v_proj.bias");
        }
    }
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
    vet_model_free(&m);
}

// Generation with the key/value cache gives the logits of the full forward: a prompt in one
// step, then one token per step; a reset sequence starts over.
static void kv_case(int variant) {
    vet_model m;
    make_model(&m, variant, 31);
    add_lora(&m, 0.3f);  // dropout must not apply at inference
    rows2 r;
    make_rows(&r, m.cfg.vocab_size, 32);
    vet_err err;
    vet_batch b;
    CHECK(vet_batch_from_rows(&b, r.rows + 1, 1, m.cfg.vocab_size, &err) == 0);  // one sample of 7
    int V = m.cfg.vocab_size, T = b.T;
    vet_acts *a = vet_acts_new(&m, 1, T, &err);
    float *full = malloc((size_t)T * V * 4), *step = malloc((size_t)V * 4);
    CHECK(vet_model_forward(&m, a, &b, full, NULL, NULL, 0, 0, &err) == 0);
    vet_kv *kv = vet_kv_new(&m, 8, &err);
    for (int round = 0; round < 2; round++) {
        vet_kv_reset(kv);
        CHECK(vet_model_step(&m, kv, b.tokens, 3, step, &err) == 0);
        for (int v = 0; v < V; v++) CHECK_NEAR(step[v], full[2 * V + v], 1e-5);
        for (int i = 3; i < T; i++) {
            CHECK(vet_model_step(&m, kv, b.tokens + i, 1, step, &err) == 0);
            for (int v = 0; v < V; v++) CHECK_NEAR(step[v], full[(size_t)i * V + v], 1e-5);
        }
        CHECK(vet_kv_len(kv) == T);
    }
    CHECK(vet_model_step(&m, kv, b.tokens, 2, step, &err) == -1);  // 7 + 2 > 8
    CHECK_CONTAINS(err.msg, "past the cache");
    vet_kv_free(kv);
    free(full);
    free(step);
    vet_acts_free(a);
    vet_batch_free(&b);
    vet_model_free(&m);
}
static void test_kv_cache_llama3(void) { kv_case(VAR_LLAMA3); }
static void test_kv_cache_qwen_tied(void) { kv_case(VAR_QWEN_TIED); }

int main(void) {
    vet_set_threads(2);
    RUN(test_batch_errors);
    RUN(test_token_dropout);
    RUN(test_lora_init_and_targets);
    RUN(test_lora_grad_llama);
    RUN(test_lora_grad_llama3_rope);
    RUN(test_lora_grad_qwen_tied);
    RUN(test_full_grad_llama);
    RUN(test_full_grad_llama3_rope);
    RUN(test_full_grad_qwen_tied);
    RUN(test_packed_equals_separate);
    RUN(test_padding_changes_nothing);
    RUN(test_deterministic);
    RUN(test_dropout_grad);
    RUN(test_resid_dropout_grad);
    RUN(test_batch_slice);
    RUN(test_load);
    RUN(test_kv_cache_llama3);
    RUN(test_kv_cache_qwen_tied);
    CHECK_EXIT();
}
