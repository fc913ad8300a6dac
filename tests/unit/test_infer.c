// test_infer.c — the KV-cache decoder: prefill and step logits against the training forward
// (vet_model_forward recomputing the whole sequence), greedy tokens equal to recomputing,
// batched decoding bit-identical to one note at a time (greedy and sampled), merged LoRA,
// the sampler's rules, and the refusals.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "io/config.h"
#include "generate/decoder.h"
#include "model/model.h"
#include "model/model_save.h"
#include "model/ops.h"
#include "base/rng.h"
#include "tiny_models.h"

// Odd sizes on purpose: dim 40 and hidden 56 leave a tail after the vector chunks, vocab 61
// leaves a remainder after the 4-output tiles.
static const tiny_shape SHAPE = {40, 56, 4, 2, 10, 61, 256, 32, 5000.0f, 8.0f};
#define VAR_QWEN VAR_QWEN_TIED

static void make_model(vet_model *m, int variant, uint64_t seed) { tiny_model(m, variant, &SHAPE, seed); }

static void random_prompt(vet_rng *r, int32_t *ids, int n, int V) {
    ids[0] = 1;
    for (int i = 1; i < n; i++) ids[i] = 3 + (int32_t)vet_rng_below(r, (uint64_t)V - 3);
}

// Logits of every position of one sequence, by the training forward.
static float *forward_all(vet_model *m, const int32_t *ids, int n) {
    vet_err err;
    int32_t *tg = malloc((size_t)n * sizeof *tg), st = 0;
    for (int i = 0; i < n; i++) tg[i] = -1;
    vet_row row = {ids, tg, &st, n, 1};
    vet_batch b;
    vet_acts *a = vet_acts_new(m, 1, n, &err);
    float *logits = malloc((size_t)n * m->cfg.vocab_size * sizeof(float));
    if (!a || vet_batch_from_rows(&b, &row, 1, m->cfg.vocab_size, &err) ||
        vet_model_forward(m, a, &b, logits, NULL, NULL, 0, 0, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    vet_batch_free(&b);
    vet_acts_free(a);
    free(tg);
    return logits;
}

static double max_abs_diff(const float *a, const float *b, int n, double *scale) {
    double d = 0, s = 0;
    for (int i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > d) d = fabs(a[i] - b[i]);
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    *scale = s;
    return d;
}

// prefill + steps give the logits the full forward gives at every position.
static void check_logits_variant(int variant) {
    vet_model m;
    make_model(&m, variant, 11 + variant);
    int V = m.cfg.vocab_size, n_prompt = 9, n_total = 21;
    vet_rng r;
    vet_rng_seed(&r, 5);
    int32_t ids[32];
    random_prompt(&r, ids, n_total, V);
    float *ref = forward_all(&m, ids, n_total);
    vet_err err;
    vet_infer *s = vet_infer_new(&m, 3, &err);
    CHECK(s != NULL);
    float *lg = malloc((size_t)V * sizeof(float));
    CHECK(vet_infer_prefill(s, 2, ids, n_prompt, lg, &err) == 0);
    double scale, worst = 0;
    double d = max_abs_diff(lg, ref + (size_t)(n_prompt - 1) * V, V, &scale);
    worst = d / scale;
    for (int p = n_prompt; p < n_total; p++) {
        int slot = 2;
        CHECK(vet_infer_step(s, &slot, &ids[p], 1, lg, &err) == 0);
        d = max_abs_diff(lg, ref + (size_t)p * V, V, &scale);
        if (d / scale > worst) worst = d / scale;
    }
    CHECK(vet_infer_len(s, 2) == n_total);
    if (!(worst < 1e-5)) fprintf(stderr, "variant %d: worst relative logit error %g\n", variant, worst);
    CHECK(worst < 1e-5);
    free(lg);
    free(ref);
    vet_infer_free(s);
    vet_model_free(&m);
}

static void test_logits_match_forward(void) {
    check_logits_variant(VAR_LLAMA);
    check_logits_variant(VAR_LLAMA3);
    check_logits_variant(VAR_QWEN);
}

// --- the driver, with prompts from an array and results into an array by tag ---------------
typedef struct {
    int n_notes, next;
    int32_t **prompts;
    int *lens;
    int32_t **out;  // (n_notes) generated ids
    int *n_out, *stopped;
    int order_changed;  // results came back in another order than the input
    int done_count;
} gen_ctx;

static int ctx_next(void *c_, vet_gen_prompt *p, vet_err *err) {
    gen_ctx *c = c_;
    if (c->next == c->n_notes) return 0;
    p->tag = c->next, p->prompt = c->prompts[c->next], p->n_prompt = c->lens[c->next];
    c->next++;
    return 1;
}

static int ctx_done(void *c_, const vet_gen_result *r, vet_err *err) {
    gen_ctx *c = c_;
    if (r->tag != c->done_count) c->order_changed = 1;
    c->done_count++;
    free(c->out[r->tag]);
    c->out[r->tag] = malloc((size_t)(r->n_ids + 1) * sizeof(int32_t));
    memcpy(c->out[r->tag], r->ids, (size_t)r->n_ids * sizeof(int32_t));
    c->n_out[r->tag] = r->n_ids;
    c->stopped[r->tag] = r->stopped;
    return 0;
}

static gen_ctx make_ctx(int n_notes, int V, uint64_t seed) {
    gen_ctx c = {0};
    c.n_notes = n_notes;
    c.prompts = calloc((size_t)n_notes, sizeof *c.prompts);
    c.lens = calloc((size_t)n_notes, sizeof *c.lens);
    c.out = calloc((size_t)n_notes, sizeof *c.out);
    c.n_out = calloc((size_t)n_notes, sizeof *c.n_out);
    c.stopped = calloc((size_t)n_notes, sizeof *c.stopped);
    vet_rng r;
    vet_rng_seed(&r, seed);
    for (int i = 0; i < n_notes; i++) {
        c.lens[i] = 2 + (int)vet_rng_below(&r, 14);
        c.prompts[i] = malloc((size_t)c.lens[i] * sizeof(int32_t));
        random_prompt(&r, c.prompts[i], c.lens[i], V);
    }
    return c;
}

static void reset_ctx(gen_ctx *c) {
    for (int i = 0; i < c->n_notes; i++) free(c->out[i]), c->out[i] = NULL, c->n_out[i] = -1;
    c->next = 0, c->done_count = 0, c->order_changed = 0;
}

static void free_ctx(gen_ctx *c) {
    for (int i = 0; i < c->n_notes; i++) free(c->prompts[i]), free(c->out[i]);
    free(c->prompts), free(c->lens), free(c->out), free(c->n_out), free(c->stopped);
}

static int run_gen(vet_model *m, gen_ctx *c, const vet_gen_opts *o, int batch) {
    vet_err err;
    reset_ctx(c);
    int rc = vet_generate(m, o, batch, ctx_next, ctx_done, c, &err);
    if (rc) fprintf(stderr, "vet_generate: %s\n", err.msg);
    return rc;
}

// Greedy decoding with the cache = recomputing the whole sequence each step.
static void test_greedy_equals_recompute(void) {
    for (int variant = VAR_LLAMA; variant <= VAR_QWEN; variant++) {
        vet_model m;
        make_model(&m, variant, 21 + variant);
        int V = m.cfg.vocab_size;
        gen_ctx c = make_ctx(4, V, 77 + variant);
        vet_gen_opts o = {.max_new = 20, .n_eos = 0};
        CHECK(run_gen(&m, &c, &o, 1) == 0);
        for (int k = 0; k < c.n_notes; k++) {
            CHECK(c.n_out[k] == 20 && c.stopped[k] == 0);
            int32_t seq[64];
            int n = c.lens[k];
            memcpy(seq, c.prompts[k], (size_t)n * sizeof(int32_t));
            int same = 1;
            for (int t = 0; t < 20; t++) {
                float *lg = forward_all(&m, seq, n);
                const float *last = lg + (size_t)(n - 1) * V;
                int best = 0;
                for (int v = 1; v < V; v++)
                    if (last[v] > last[best]) best = v;
                free(lg);
                if (best != c.out[k][t]) same = 0;
                seq[n++] = best;
            }
            if (!same) fprintf(stderr, "variant %d note %d: tokens differ from recomputing\n", variant, k);
            CHECK(same);
        }
        free_ctx(&c);
        vet_model_free(&m);
    }
}

static int same_outputs(const gen_ctx *a, int32_t **out, const int *n_out) {
    for (int i = 0; i < a->n_notes; i++) {
        if (a->n_out[i] != n_out[i]) return 0;
        if (memcmp(a->out[i], out[i], (size_t)n_out[i] * sizeof(int32_t)) != 0) return 0;
    }
    return 1;
}

// Batches of several sizes give exactly the one-at-a-time tokens, with early EOS stops (so
// slots are refilled mid-run and results come back out of order).
static void check_batch_equals_single(vet_gen_opts o, const char *what) {
    vet_model m;
    make_model(&m, VAR_LLAMA3, 31);
    int V = m.cfg.vocab_size, N = 13;
    gen_ctx c = make_ctx(N, V, 99);
    // An EOS that really occurs: the 4th token note 0 generates without one.
    vet_gen_opts probe = o;
    probe.n_eos = 0;
    CHECK(run_gen(&m, &c, &probe, 1) == 0);
    int32_t eos = c.out[0][3];
    o.eos_ids = &eos, o.n_eos = 1;
    CHECK(run_gen(&m, &c, &o, 1) == 0);
    int32_t *single[16];
    int n_single[16], stops = 0;
    for (int i = 0; i < N; i++) {
        single[i] = malloc((size_t)(c.n_out[i] + 1) * sizeof(int32_t));
        memcpy(single[i], c.out[i], (size_t)c.n_out[i] * sizeof(int32_t));
        n_single[i] = c.n_out[i];
        stops += c.stopped[i];
    }
    CHECK(stops >= 1 && stops < N);  // some stop early, some run to max_new
    int reordered = 0;
    for (int batch = 2; batch <= 16; batch += (batch < 5 ? 1 : 11)) {
        CHECK(run_gen(&m, &c, &o, batch) == 0);
        int same = same_outputs(&c, single, n_single);
        if (!same) fprintf(stderr, "%s: batch %d differs from one at a time\n", what, batch);
        CHECK(same);
        CHECK(c.done_count == N);
        reordered |= c.order_changed;
    }
    CHECK(reordered);
    for (int i = 0; i < N; i++) free(single[i]);
    free_ctx(&c);
    vet_model_free(&m);
}

static void test_batch_equals_single_greedy(void) {
    vet_gen_opts o = {.max_new = 17};
    check_batch_equals_single(o, "greedy");
}

// Sampled, and on two threads (the others run on one: this machine's cores are shared, and
// a thread team per tiny op costs more than the op): rows split across threads differently
// per batch size must still come out the same.
static void test_batch_equals_single_sampled_threads(void) {
    vet_set_threads(2);
    vet_gen_opts o = {.max_new = 17, .seed = 3};
    o.sampling.temperature = 0.9f, o.sampling.top_p = 0.95f, o.sampling.top_k = 20;
    check_batch_equals_single(o, "sampled");
    vet_set_threads(1);
}

// A merged adapter decodes like the unmerged model computes.
static void test_merged_lora(void) {
    vet_model m;
    make_model(&m, VAR_QWEN, 41);
    vet_err err;
    CHECK(vet_model_add_lora(&m, 2, 4.0f, 0.0f, 0, VET_LORA_ALL, 5, &err) == 0);
    vet_rng r;
    vet_rng_seed(&r, 9);
    for (size_t i = 0; i < m.n_lora; i++) m.lora_mem[i] = 0.3f * (float)vet_rng_normal(&r);
    CHECK(vet_infer_new(&m, 1, &err) == NULL);
    CHECK_CONTAINS(err.msg, "merge");
    int V = m.cfg.vocab_size;
    int32_t ids[24];
    random_prompt(&r, ids, 24, V);
    float *ref = forward_all(&m, ids, 24);  // the LoRA forward, not merged
    vet_model_merge_lora(&m);
    CHECK(!m.has_lora);
    vet_infer *s = vet_infer_new(&m, 1, &err);
    float *lg = malloc((size_t)V * sizeof(float));
    CHECK(vet_infer_prefill(s, 0, ids, 10, lg, &err) == 0);
    double scale, worst = max_abs_diff(lg, ref + 9 * V, V, &scale) / scale;
    for (int p = 10; p < 24; p++) {
        int slot = 0;
        CHECK(vet_infer_step(s, &slot, &ids[p], 1, lg, &err) == 0);
        double d = max_abs_diff(lg, ref + (size_t)p * V, V, &scale) / scale;
        if (d > worst) worst = d;
    }
    CHECK(worst < 1e-5);
    free(lg);
    free(ref);
    vet_infer_free(s);
    vet_model_free(&m);
}

static void test_sampler(void) {
    float x[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f, -INFINITY};
    vet_sampling greedy = {0};
    CHECK(vet_sample(x, 6, &greedy, 0.99) == 1);  // tie between 1 and 3: the lowest id
    vet_sampling k1 = {1.0f, 1.0f, 1};
    float y[6];
    memcpy(y, x, sizeof y);
    CHECK(vet_sample(y, 6, &k1, 0.99) == 1);  // top_k 1 is greedy
    vet_sampling p_small = {1.0f, 0.01f, 0};
    memcpy(y, x, sizeof y);
    CHECK(vet_sample(y, 6, &p_small, 0.99) == 1);
    // u walks the distribution: all of 1, 3, 4 reachable with top_k 3, never 0, 2 or 5
    vet_sampling k3 = {1.0f, 1.0f, 3};
    int seen[6] = {0};
    for (int i = 0; i < 100; i++) {
        memcpy(y, x, sizeof y);
        seen[vet_sample(y, 6, &k3, (i + 0.5) / 100.0)]++;
    }
    CHECK(seen[1] && seen[3] && seen[4] && !seen[0] && !seen[2] && !seen[5]);
    CHECK(seen[1] > seen[4] && seen[3] > seen[4]);
    // the masked id is never drawn, even at high temperature
    vet_sampling hot = {50.0f, 1.0f, 0};
    int masked = 0;
    for (int i = 0; i < 100; i++) {
        memcpy(y, x, sizeof y);
        masked += vet_sample(y, 6, &hot, (i + 0.5) / 100.0) == 5;
    }
    CHECK(masked == 0);
    // A temperature so small that logit / T overflows to +inf (here 1.9 / T as well as 2 / T):
    // as T -> 0, greedy, ids 1 and 3 (tied at the top) sharing the draw; the NaN of inf - inf
    // took the worst candidate. All logits negative: every one / T is -inf, the same limit.
    vet_sampling cold = {1e-39f, 1.0f, 0}, cold_k = {1e-39f, 1.0f, 3}, cold_p = {1e-39f, 0.5f, 0};
    int cold_seen[6] = {0};
    for (int i = 0; i < 100; i++) {
        const vet_sampling *sps[3] = {&cold, &cold_k, &cold_p};
        for (int s = 0; s < 3; s++) {
            memcpy(y, x, sizeof y);
            cold_seen[vet_sample(y, 6, sps[s], (i + 0.5) / 100.0)]++;
        }
    }
    CHECK(cold_seen[1] > 0 && cold_seen[3] > 0 && cold_seen[1] + cold_seen[3] == 300);
    float neg[4] = {-3.0f, -0.5f, -2.0f, -INFINITY};
    CHECK(vet_sample(neg, 4, &cold, 0.99) == 1);
}

// The sampler's order is a comparison sort's (sample.c): here that sort, as vet_sample was
// written before (qsort over every candidate), is the reference. Random rows with many equal
// logits, -inf, -0 and +0, every mix of temperature, top_k and top_p, several draws: the same
// pick every time.
typedef struct {
    float logit;
    int id;
} ref_cand;
static int ref_cmp(const void *a, const void *b) {
    const ref_cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id - y->id;
}
static int ref_sample(const float *logits, int V, const vet_sampling *sp, double u) {
    ref_cand *c = malloc((size_t)V * sizeof *c);
    int n = 0;
    for (int v = 0; v < V; v++)
        if (logits[v] != -INFINITY) c[n].logit = logits[v] / sp->temperature, c[n].id = v, n++;
    qsort(c, (size_t)n, sizeof *c, ref_cmp);
    if (sp->top_k > 0 && sp->top_k < n) n = sp->top_k;
    const float mx = c[0].logit;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (c[i].logit = expf(c[i].logit - mx));
    if (sp->top_p > 0.0f && sp->top_p < 1.0f) {
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += c[i].logit / sum;
            if (cum >= sp->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = 0;
        for (int i = 0; i < n; i++) sum += c[i].logit;
    }
    double r = u * sum, cum = 0;
    int pick = c[n - 1].id;
    for (int i = 0; i < n; i++) {
        cum += c[i].logit;
        if (r < cum) {
            pick = c[i].id;
            break;
        }
    }
    free(c);
    return pick;
}

static void test_sampler_order(void) {
    const int Vs[4] = {7, 61, 1000, 49152};
    const float temps[3] = {0.7f, 1.0f, 50.0f}, top_ps[4] = {1.0f, 0.9f, 0.5f, 0.01f};
    vet_rng r;
    vet_rng_seed(&r, 3);
    long compared = 0, differ = 0;
    for (int vi = 0; vi < 4; vi++) {
        const int V = Vs[vi], top_ks[5] = {0, 1, 3, 50, V + 5};
        float *x = malloc((size_t)V * sizeof *x), *y = malloc((size_t)V * sizeof *y);
        const int rows = V > 10000 ? 2 : 12;
        for (int row = 0; row < rows; row++) {
            for (int v = 0; v < V; v++) {  // quarter steps: many ties; some masked, some signed zeros
                double g = vet_rng_normal(&r) * (row % 2 ? 1.0 : 4.0);
                x[v] = (float)(round(g * 4.0) / 4.0);
                if (x[v] == 0.0f && vet_rng_uniform_double(&r) < 0.5) x[v] = -0.0f;
                if (vet_rng_uniform_double(&r) < 0.1) x[v] = -INFINITY;
            }
            if (x[V / 2] == -INFINITY) x[V / 2] = 0.0f;  // at least one candidate
            for (int ti = 0; ti < 3; ti++)
                for (int ki = 0; ki < 5; ki++)
                    for (int pi = 0; pi < 4; pi++) {
                        vet_sampling sp = {temps[ti], top_ps[pi], top_ks[ki]};
                        for (int d = 0; d < 3; d++) {
                            double u = vet_rng_uniform_double(&r);
                            memcpy(y, x, (size_t)V * sizeof *y);
                            int got = vet_sample(y, V, &sp, u), want = ref_sample(x, V, &sp, u);
                            compared++;
                            if (got != want) {
                                if (differ++ < 5)
                                    fprintf(stderr, "  V %d T %g top_k %d top_p %g u %.17g: %d, reference %d\n", V,
                                            sp.temperature, sp.top_k, sp.top_p, u, got, want);
                            }
                        }
                    }
        }
        free(x), free(y);
    }
    printf("# sampler: %ld draws against the comparison sort's order, %ld differ\n", compared, differ);
    CHECK(differ == 0);
}

static void test_refusals(void) {
    vet_model m;
    make_model(&m, VAR_LLAMA, 1);
    vet_err err;
    vet_infer *s = vet_infer_new(&m, 2, &err);
    float *lg = malloc((size_t)m.cfg.vocab_size * 2 * sizeof(float));
    int32_t bad[3] = {1, 61, 4};
    CHECK(vet_infer_prefill(s, 0, bad, 3, lg, &err) == -1);
    CHECK_CONTAINS(err.msg, "outside the model's vocabulary");
    CHECK(vet_infer_prefill(s, 0, bad, 0, lg, &err) == -1);
    CHECK(vet_infer_prefill(s, 2, bad, 1, lg, &err) == -1);
    int slot = 1;
    int32_t t = 5;
    CHECK(vet_infer_step(s, &slot, &t, 1, lg, &err) == -1);  // never prefilled
    CHECK(vet_infer_prefill(s, 1, bad, 1, lg, &err) == 0);
    int two[2] = {1, 1};
    int32_t tt[2] = {5, 6};
    CHECK(vet_infer_step(s, two, tt, 2, lg, &err) == -1);
    CHECK_CONTAINS(err.msg, "twice");
    free(lg);
    vet_infer_free(s);
    vet_model_free(&m);
}

int main(void) {
    vet_set_threads(1);
    RUN(test_logits_match_forward);
    RUN(test_greedy_equals_recompute);
    RUN(test_batch_equals_single_greedy);
    RUN(test_batch_equals_single_sampled_threads);
    RUN(test_merged_lora);
    RUN(test_sampler);
    RUN(test_sampler_order);
    RUN(test_refusals);
    CHECK_EXIT();
}
