// test_ensemble.c — several models decoding as one (lib/generate/ensemble.h): the combination
// against a direct computation in double, a case where the mean differs from every member's
// choice, greedy decoding of two real models against recomputing both from scratch at every
// step, batch invariance, the CPU ensemble that owns its members' forwards, and the refusals;
// then loading an ensemble's members from their directories (lib/generate/models.h), each
// checked against the first.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "generate/ensemble.h"
#include "generate/decoder.h"
#include "generate/models.h"
#include "model/model.h"
#include "model/model_save.h"
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
    vet_infer_backend be = {f, f->n_slots, fixed_prefill, fixed_step, NULL, NULL, NULL};
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

// vet_ensemble_new_cpu (the members' forwards made and owned by the ensemble) decodes what
// the ensemble of hand-made forwards decodes.
static void test_new_cpu_owns_forwards(void) {
    vet_model ms[2];
    tiny_model(&ms[0], VAR_LLAMA, &SHAPE, 31);
    tiny_model(&ms[1], VAR_LLAMA, &SHAPE, 32);
    vet_model *both[2] = {&ms[0], &ms[1]};
    notes_ctx by_hand = {0};
    for (int i = 0; i < N_NOTES; i++) {
        by_hand.lens[i] = 3 + i;
        for (int j = 0; j < by_hand.lens[i]; j++) by_hand.prompts[i][j] = (int32_t)(1 + (7 * i + 5 * j) % 60);
    }
    notes_ctx owned = by_hand;
    CHECK(decode(both, 2, 2, &by_hand) == 0);
    vet_err err;
    vet_ensemble *e = vet_ensemble_new_cpu(ms, 2, 2, &err);
    CHECK(e != NULL);
    if (e) {
        vet_infer_backend be;
        vet_ensemble_backend(e, &be);
        vet_gen_opts o = {.max_new = MAX_NEW};
        CHECK(vet_generate_on(&be, SHAPE.vocab, &o, 2, notes_next, notes_done, &owned, &err) == 0);
        CHECK(memcmp(owned.out, by_hand.out, sizeof owned.out) == 0);
        vet_ensemble_free(e);  // frees the forwards too (the sanitized build checks)
    }
    CHECK(vet_ensemble_new_cpu(ms, 0, 2, &err) == NULL);
    vet_model_free(&ms[0]);
    vet_model_free(&ms[1]);
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

// --- an ensemble's members from their directories --------------------------------------
static char tmp_root[] = "/tmp/vet-test-ensemble.XXXXXX";

// A tiny model saved as DIR (under tmp_root) with vocabulary V and end id eos; its path in out.
static void save_model(const char *name, int V, int eos, uint64_t seed, char out[512]) {
    tiny_shape sh = SHAPE;
    sh.vocab = V;
    vet_model m;
    tiny_model(&m, VAR_LLAMA, &sh, seed);
    m.cfg.eos_id = m.cfg.eos_ids[0] = eos;
    snprintf(out, 512, "%s/%s", tmp_root, name);
    vet_err err;
    if (vet_model_save(&m, out, VET_DT_F32, NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    vet_model_free(&m);
}

static void write_file(const char *dir, const char *name, const char *text) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

static void test_members_checked_against_first(void) {
    char a[512], b[512], other_v[512], other_eos[512];
    save_model("a", 61, 2, 41, a);
    save_model("b", 61, 2, 42, b);
    save_model("v", 69, 2, 43, other_v);
    save_model("eos", 61, 3, 44, other_eos);
    // "abc" has sha256 ba7816bf...; b ships it, a ships nothing.
    const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    write_file(b, "tokenizer.model", "abc");
    vet_gen_models ms;
    vet_err err;
    const char *ok[3] = {a, b, a};
    CHECK(vet_gen_models_load(&ms, ok, 3, NULL, abc, "tok.model", &err) == 0);
    CHECK(ms.k == 3 && ms.m[2].cfg.vocab_size == 61);
    vet_gen_models_free(&ms);
    CHECK(ms.k == 0);

    const char *vocab[2] = {a, other_v};
    CHECK(vet_gen_models_load(&ms, vocab, 2, NULL, abc, "tok.model", &err) == -1);
    CHECK(err.kind == VET_E_INPUT && ms.k == 0);  // nothing stays loaded
    CHECK_CONTAINS(err.msg, "/v: a vocabulary of 69 tokens, but ");
    CHECK_CONTAINS(err.msg, "has 61: the models of an ensemble must share one tokenizer");

    const char *eos[2] = {a, other_eos};
    CHECK(vet_gen_models_load(&ms, eos, 2, NULL, abc, "tok.model", &err) == -1);
    CHECK_CONTAINS(err.msg, "/eos: its end-of-sequence ids differ from those of ");

    const char *tok[2] = {a, b};
    CHECK(vet_gen_models_load(&ms, tok, 2, NULL, "00", "other.model", &err) == -1);
    CHECK(err.kind == VET_E_INPUT && ms.k == 0);
    CHECK_CONTAINS(err.msg, "/b/tokenizer.model has sha256 ba7816bf");
    CHECK_CONTAINS(err.msg, "but the tokenizer in use (other.model) has 00");
    // One model too: a model decodes with the tokenizer it ships (--tokenizer naming another,
    // e.g. a SentencePiece one for a model trained on byte-level BPE ids, is refused).
    CHECK(vet_gen_models_load(&ms, &tok[1], 1, NULL, "00", "other.model", &err) == -1);
    CHECK(err.kind == VET_E_INPUT && ms.k == 0);
    CHECK_CONTAINS(err.msg, "/b/tokenizer.model has sha256 ba7816bf");
    CHECK(vet_gen_models_load(&ms, &tok[1], 1, NULL, abc, "b/tokenizer.model", &err) == 0);
    vet_gen_models_free(&ms);

    CHECK(vet_gen_models_load(&ms, ok, 2, a, abc, "tok.model", &err) == -1);
    CHECK(err.kind == VET_E_USAGE);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none", tmp_root);
    const char *gone[2] = {a, missing};
    CHECK(vet_gen_models_load(&ms, gone, 2, NULL, abc, "tok.model", &err) == -1);
    CHECK(err.kind == VET_E_IO && ms.k == 0);
}

int main(void) {
    vet_set_threads(1);
    RUN(test_combination);
    RUN(test_mean_not_vote);
    RUN(test_two_models_equal_recompute);
    RUN(test_new_cpu_owns_forwards);
    RUN(test_refusals);
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_members_checked_against_first);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    CHECK_EXIT();
}
