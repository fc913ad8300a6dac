// test_ensemble.c — several models decoding as one (lib/ensemble.h): the combination against
// a direct computation in double, a case where the mean differs from every member's choice,
// greedy decoding of two real models against recomputing both from scratch at every step,
// batch invariance, and the refusals.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "generate/ensemble.h"
#include "generate/decoder.h"
#include "model/model.h"
#include "model/ops.h"
#include "base/rng.h"
#include "tiny_models.h"

// The shape of test_infer.c's models: a vocabulary of 61, two layers.
static const tiny_shape SHAPE = {40, 56, 4, 2, 10, 61, 256, 32, 5000.0f, 8.0f};

// log( (1/K) sum_k softmax(x_k)[v] ) for one row, in double, the obvious way.
static double reference_mean_logprob(float *const *rows, int K, int V, int v) {
    double mean = 0.0;
    for (int k = 0; k < K; k++) {
        double mx = rows[k][0], z = 0.0;
        for (int j = 1; j < V; j++) mx = rows[k][j] > mx ? rows[k][j] : mx;
        for (int j = 0; j < V; j++) z += exp(rows[k][j] - mx);
        mean += exp(rows[k][v] - mx) / z / K;
    }
    return log(mean);
}

static void test_combination(void) {
    enum { V = 37, N = 3 };
    vet_rng r;
    vet_rng_seed(&r, 5);
    for (int K = 1; K <= 4; K++) {
        // N rows per member; member k's logits spread by k (row 2 of member 1 far from 0, so an
        // unshifted exp would overflow a float).
        float *members[4], *scratch = malloc(sizeof(float) * N * V), *acc = malloc(sizeof(float) * N * V);
        for (int k = 0; k < K; k++) {
            members[k] = malloc(sizeof(float) * N * V);
            for (int i = 0; i < N * V; i++) members[k][i] = (float)((vet_rng_uniform_double(&r) - 0.5) * 4 * (k + 1));
        }
        if (K > 1)
            for (int v = 0; v < V; v++) members[1][2 * V + v] += 200.0f;
        for (int k = 0; k < K; k++) {
            memcpy(scratch, members[k], sizeof(float) * N * V);
            vet_ensemble_accumulate(acc, scratch, N, V, k);
        }
        vet_ensemble_finish(acc, N, V, K);
        for (int i = 0; i < N; i++) {
            float *rows[4];
            for (int k = 0; k < K; k++) rows[k] = members[k] + (size_t)i * V;
            double total = 0.0;
            for (int v = 0; v < V; v++) {
                CHECK_NEAR(acc[(size_t)i * V + v], reference_mean_logprob(rows, K, V, v), 1e-5);
                total += exp(acc[(size_t)i * V + v]);
            }
            CHECK_NEAR(total, 1.0, 1e-5);  // a distribution
        }
        for (int k = 0; k < K; k++) free(members[k]);
        free(scratch), free(acc);
    }
}

// --- backends that answer the same distribution at every position ---------------------
typedef struct {
    const float *probs;  // (V)
    int V, n_slots;
    int fail_step;       // step returns an error
} fixed_model;

static int fixed_prefill(void *s, int slot, const int32_t *ids, int n, float *logits, vet_err *err) {
    fixed_model *f = s;
    (void)slot, (void)ids, (void)n, (void)err;
    for (int v = 0; v < f->V; v++) logits[v] = logf(f->probs[v]) + 3.0f;  // logits up to a constant
    return 0;
}

static int fixed_step(void *s, const int *slots, const int32_t *tokens, int n, float *logits, vet_err *err) {
    fixed_model *f = s;
    (void)slots, (void)tokens;
    if (f->fail_step) return vet_errf(err, "the device went away");
    for (int i = 0; i < n; i++) fixed_prefill(s, 0, NULL, 0, logits + (size_t)i * f->V, err);
    return 0;
}

static vet_infer_backend fixed_backend(fixed_model *f) {
    vet_infer_backend be = {f, f->n_slots, fixed_prefill, fixed_step};
    return be;
}

typedef struct {
    int32_t prompt[2];
    int given;
    int32_t out[8];
    int n_out;
} one_note;

static int one_next(void *c_, vet_gen_prompt *p, vet_err *err) {
    one_note *c = c_;
    (void)err;
    if (c->given) return 0;
    c->given = 1;
    p->tag = 0, p->prompt = c->prompt, p->n_prompt = 2;
    return 1;
}

static int one_done(void *c_, const vet_gen_result *r, vet_err *err) {
    one_note *c = c_;
    (void)err;
    c->n_out = r->n_ids;
    memcpy(c->out, r->ids, (size_t)r->n_ids * sizeof(int32_t));
    return 0;
}

// Member A prefers token 0, member B token 2, both find 1 nearly as likely: the mean picks 1,
// which neither member (nor a vote between them) would.
static void test_mean_not_vote(void) {
    const float pa[3] = {0.50f, 0.45f, 0.05f}, pb[3] = {0.05f, 0.45f, 0.50f};
    fixed_model a = {pa, 3, 1, 0}, b = {pb, 3, 1, 0};
    vet_infer_backend members[2] = {fixed_backend(&a), fixed_backend(&b)};
    vet_err err;
    vet_gen_opts o = {.max_new = 3};
    for (int k = 0; k <= 2; k++) {  // A alone, B alone, both
        vet_ensemble *e = k < 2 ? vet_ensemble_new(&members[k], 1, 3, 1, &err) : vet_ensemble_new(members, 2, 3, 1, &err);
        CHECK(e != NULL);
        vet_infer_backend be;
        vet_ensemble_backend(e, &be);
        one_note c = {{0, 1}, 0, {0}, 0};
        CHECK(vet_generate_on(&be, 3, &o, 1, one_next, one_done, &c, &err) == 0);
        int want = k == 0 ? 0 : k == 1 ? 2 : 1;
        CHECK(c.n_out == 3);
        for (int t = 0; t < c.n_out; t++) CHECK(c.out[t] == want);
        vet_ensemble_free(e);
    }
}

// --- two real models -----------------------------------------------------------------
// The ensemble's next token for a sequence, recomputed from scratch: each model prefills the
// whole sequence into a fresh cache (no decode steps), then the mean in double.
static int recompute_next(vet_model *const *models, int K, const int32_t *seq, int n) {
    int V = models[0]->cfg.vocab_size;
    float *rows[4];
    vet_err err;
    for (int k = 0; k < K; k++) {
        vet_infer *s = vet_infer_new(models[k], 1, &err);
        rows[k] = malloc(sizeof(float) * V);
        if (!s || vet_infer_prefill(s, 0, seq, n, rows[k], &err)) {
            fprintf(stderr, "%s\n", err.msg);
            abort();
        }
        vet_infer_free(s);
    }
    int best = 0;
    double best_lp = -INFINITY;
    for (int v = 0; v < V; v++) {
        double lp = reference_mean_logprob(rows, K, V, v);
        if (lp > best_lp) best_lp = lp, best = v;
    }
    for (int k = 0; k < K; k++) free(rows[k]);
    return best;
}

enum { N_NOTES = 5, MAX_NEW = 12 };

typedef struct {
    int32_t prompts[N_NOTES][16];
    int lens[N_NOTES], next;
    int32_t out[N_NOTES][MAX_NEW];
    int n_out[N_NOTES];
} notes_ctx;

static int notes_next(void *c_, vet_gen_prompt *p, vet_err *err) {
    notes_ctx *c = c_;
    (void)err;
    if (c->next == N_NOTES) return 0;
    p->tag = c->next, p->prompt = c->prompts[c->next], p->n_prompt = c->lens[c->next];
    c->next++;
    return 1;
}

static int notes_done(void *c_, const vet_gen_result *r, vet_err *err) {
    notes_ctx *c = c_;
    (void)err;
    c->n_out[r->tag] = r->n_ids;
    memcpy(c->out[r->tag], r->ids, (size_t)r->n_ids * sizeof(int32_t));
    return 0;
}

// Greedy decoding by an ensemble of models[0..K) with `batch` slots.
static int decode(vet_model *const *models, int K, int batch, notes_ctx *c) {
    vet_err err;
    vet_infer *fwd[4];
    vet_infer_backend be[4];
    for (int k = 0; k < K; k++) {
        fwd[k] = vet_infer_new(models[k], batch, &err);
        vet_infer_backend_of(fwd[k], &be[k]);
    }
    vet_ensemble *e = vet_ensemble_new(be, K, models[0]->cfg.vocab_size, batch, &err);
    vet_infer_backend ens;
    vet_ensemble_backend(e, &ens);
    vet_gen_opts o = {.max_new = MAX_NEW};
    c->next = 0;
    int rc = vet_generate_on(&ens, models[0]->cfg.vocab_size, &o, batch, notes_next, notes_done, c, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    vet_ensemble_free(e);
    for (int k = 0; k < K; k++) vet_infer_free(fwd[k]);
    return rc;
}

static void test_two_models_equal_recompute(void) {
    vet_model a, b;
    tiny_model(&a, VAR_LLAMA, &SHAPE, 31);
    tiny_model(&b, VAR_LLAMA, &SHAPE, 32);
    vet_model *both[2] = {&a, &b};
    notes_ctx c = {0};
    vet_rng r;
    vet_rng_seed(&r, 9);
    for (int i = 0; i < N_NOTES; i++) {
        c.lens[i] = 2 + (int)vet_rng_below(&r, 10);
        c.prompts[i][0] = 1;
        for (int j = 1; j < c.lens[i]; j++) c.prompts[i][j] = 3 + (int32_t)vet_rng_below(&r, 58);
    }
    CHECK(decode(both, 2, 1, &c) == 0);
    int differs_from_a = 0;
    for (int i = 0; i < N_NOTES; i++) {
        CHECK(c.n_out[i] == MAX_NEW);
        int32_t seq[16 + MAX_NEW];
        int n = c.lens[i], same = 1;
        memcpy(seq, c.prompts[i], sizeof(int32_t) * (size_t)n);
        for (int t = 0; t < MAX_NEW; t++) {
            int want = recompute_next(both, 2, seq, n);
            if (want != c.out[i][t]) same = 0;
            if (want != recompute_next(both, 1, seq, n)) differs_from_a = 1;
            seq[n++] = c.out[i][t];
        }
        if (!same) fprintf(stderr, "note %d: the ensemble's tokens differ from recomputing\n", i);
        CHECK(same);
    }
    CHECK(differs_from_a);  // the second model changed something, so the test can tell

    // Batch invariance: 3 slots decode the same tokens as 1.
    notes_ctx c3 = c;
    memset(c3.out, 0, sizeof c3.out);
    CHECK(decode(both, 2, 3, &c3) == 0);
    CHECK(memcmp(c3.out, c.out, sizeof c.out) == 0);

    // An ensemble of one decodes as the model alone.
    notes_ctx c1 = c, alone = c;
    CHECK(decode(both, 1, 2, &c1) == 0);
    vet_err err;
    vet_gen_opts o = {.max_new = MAX_NEW};
    alone.next = 0;
    CHECK(vet_generate(&a, &o, 2, notes_next, notes_done, &alone, &err) == 0);
    CHECK(memcmp(c1.out, alone.out, sizeof alone.out) == 0);
    vet_model_free(&a);
    vet_model_free(&b);
}

static void test_refusals(void) {
    const float p[3] = {0.2f, 0.3f, 0.5f};
    fixed_model ok = {p, 3, 4, 0}, small = {p, 3, 1, 0}, broken = {p, 3, 4, 1};
    vet_infer_backend be[2] = {fixed_backend(&ok), fixed_backend(&small)};
    vet_err err;
    CHECK(vet_ensemble_new(be, 0, 3, 1, &err) == NULL);
    CHECK(vet_ensemble_new(be, 2, 3, 4, &err) == NULL);  // member 2 has 1 slot
    CHECK_CONTAINS(err.msg, "member 2 has 1 slots");
    be[1] = fixed_backend(&broken);
    vet_ensemble *e = vet_ensemble_new(be, 2, 3, 4, &err);
    CHECK(e != NULL);
    vet_infer_backend ens;
    vet_ensemble_backend(e, &ens);
    float logits[3];
    int slot = 0;
    int32_t tok = 1;
    CHECK(ens.prefill(ens.state, 0, &tok, 1, logits, &err) == 0);
    CHECK(ens.step(ens.state, &slot, &tok, 1, logits, &err) == -1);
    CHECK_CONTAINS(err.msg, "ensemble member 2: the device went away");
    vet_ensemble_free(e);
    vet_ensemble_free(NULL);
}

int main(void) {
    vet_set_threads(1);
    RUN(test_combination);
    RUN(test_mean_not_vote);
    RUN(test_two_models_equal_recompute);
    RUN(test_refusals);
    CHECK_EXIT();
}
