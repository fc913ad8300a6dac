// test_rank.c — scoring a code table's answers (lib/generate/rank.h): each answer's logp
// against an oracle that recomputes every prefix with a fresh prefill, the same bits whatever
// the number of slots and with or without copy_slot, the softmax and its order, the shared
// prefix, and the refusals.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "generate/decoder.h"
#include "generate/ensemble.h"
#include "generate/rank.h"
#include "base/rng.h"
#include "data/labels.h"
#include "data/tokenizer.h"
#include "tiny_models.h"

static const tiny_shape SHAPE = {40, 56, 4, 2, 10, 61, 256, 32, 5000.0f, 8.0f};

// Answers that share 3 leading ids (a response prefix), then differ in length and content;
// two share a fourth id, one is a prefix of another but for the EOS (2).
static const int32_t A0[] = {9, 17, 5, 30, 2}, A1[] = {9, 17, 5, 30, 41, 2}, A2[] = {9, 17, 5, 12, 2},
                     A3[] = {9, 17, 5, 50, 50, 50, 7, 2}, A4[] = {9, 17, 5, 2};
static const int32_t *const ANS[] = {A0, A1, A2, A3, A4};
static const int ANS_N[] = {5, 6, 5, 8, 4};
#define N_ANS 5

static vet_rank_answers make_answers(void) {
    vet_rank_answers a = {N_ANS, malloc(N_ANS * sizeof(int32_t *)), malloc(N_ANS * sizeof(int)), 0};
    for (int i = 0; i < N_ANS; i++) {
        a.ids[i] = malloc((size_t)ANS_N[i] * sizeof(int32_t));
        memcpy(a.ids[i], ANS[i], (size_t)ANS_N[i] * sizeof(int32_t));
        a.n[i] = ANS_N[i];
    }
    a.common = vet_rank_common_prefix(&a);
    return a;
}

static void random_prompt(vet_rng *r, int32_t *ids, int n, int V) {
    ids[0] = 1;
    for (int i = 1; i < n; i++) ids[i] = 3 + (int32_t)vet_rng_below(r, (uint64_t)V - 3);
}

// The oracle: log P(ids | prompt) with each token's logits from a prefill of everything before
// it (no step, no copy, no shared part).
static double oracle_logp(vet_infer *s, const int32_t *prompt, int np, const int32_t *ids, int n, int V) {
    vet_err err;
    int32_t *seq = malloc((size_t)(np + n) * sizeof *seq);
    float *logits = malloc((size_t)V * sizeof *logits);
    memcpy(seq, prompt, (size_t)np * sizeof *seq);
    memcpy(seq + np, ids, (size_t)n * sizeof *seq);
    double lp = 0;
    for (int t = 0; t < n; t++) {
        if (vet_infer_prefill(s, 0, seq, np + t, logits, &err)) fprintf(stderr, "%s\n", err.msg), abort();
        double mx = logits[0], sum = 0;
        for (int v = 1; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
        for (int v = 0; v < V; v++) sum += exp(logits[v] - mx);
        lp += logits[ids[t]] - mx - log(sum);
    }
    free(seq), free(logits);
    return lp;
}

// logp of every answer through a ranker over the CPU forward with n_slots slots; copy 0: the
// backend without copy_slot (each answer's slot prefilled again).
static void score_with(const vet_model *m, const vet_rank_answers *a, int n_slots, int copy, const int32_t *prompt,
                       int np, double *logp) {
    vet_err err;
    vet_infer *s = vet_infer_new(m, n_slots, &err);
    CHECK(s != NULL);
    vet_infer_backend be;
    vet_infer_backend_of(s, &be);
    if (!copy) be.copy_slot = NULL;
    vet_gen_stats st = {0};
    vet_ranker *r = vet_ranker_new(&be, m->cfg.vocab_size, a, &err);
    CHECK(r != NULL);
    const int32_t *const prompts[] = {prompt};
    CHECK(vet_ranker_notes(r) == (n_slots >= a->count + 1 ? n_slots / (a->count + 1) : 1));
    if (vet_ranker_score(r, prompts, &np, 1, logp, &st, &err)) fprintf(stderr, "%s\n", err.msg), abort();
    // Every answer's ids after the shared part went through a step except its EOS, and the
    // shared part once on slot 0 (more without copy_slot, or with one slot).
    int64_t own = 0;
    for (int i = 0; i < a->count; i++) own += a->n[i] - 1 - a->common;
    CHECK(st.step_tokens >= own + a->common && st.prompt_tokens >= np);
    if (copy && n_slots > a->count) CHECK(st.step_tokens == own + a->common && st.prompt_tokens == np);
    vet_ranker_free(r);
    vet_infer_free(s);
}

static void check_variant(int variant) {
    vet_model m;
    tiny_model(&m, variant, &SHAPE, 11 + variant);
    int V = m.cfg.vocab_size;
    vet_rank_answers a = make_answers();
    CHECK(a.common == 3);
    vet_rng rng;
    vet_rng_seed(&rng, 5 + variant);
    int32_t prompt[23];
    random_prompt(&rng, prompt, 23, V);
    double ref[N_ANS], got[N_ANS], other[N_ANS];
    vet_err err;
    vet_infer *s = vet_infer_new(&m, 1, &err);
    for (int i = 0; i < N_ANS; i++) ref[i] = oracle_logp(s, prompt, 23, ANS[i], ANS_N[i], V);
    vet_infer_free(s);
    score_with(&m, &a, N_ANS + 1, 1, prompt, 23, got);
    for (int i = 0; i < N_ANS; i++) CHECK_NEAR(got[i], ref[i], 1e-5);  // steps vs prefills: rounding only
    // The same bits with any slot count, with or without copies.
    int widths[] = {1, 2, 3, 4, 9};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
        for (int copy = 0; copy < 2; copy++) {
            score_with(&m, &a, widths[w], copy, prompt, 23, other);
            CHECK(memcmp(other, got, sizeof got) == 0);
        }
    vet_rank_answers_free(&a);
    vet_model_free(&m);
}

// Several notes at once (their answers in the same steps) give each note's logp alone, bit for
// bit, with copies and without; a round of fewer notes than the ranker takes too.
static void test_notes_together(void) {
    vet_model m;
    tiny_model(&m, VAR_LLAMA, &SHAPE, 3);
    int V = m.cfg.vocab_size;
    vet_rank_answers a = make_answers();
    vet_rng rng;
    vet_rng_seed(&rng, 9);
    enum { NOTES = 3 };
    int lens[NOTES] = {17, 6, 29};
    int32_t p0[17], p1[6], p2[29];
    const int32_t *const prompts[NOTES] = {p0, p1, p2};
    random_prompt(&rng, p0, 17, V), random_prompt(&rng, p1, 6, V), random_prompt(&rng, p2, 29, V);
    double alone[NOTES][N_ANS];
    for (int i = 0; i < NOTES; i++) score_with(&m, &a, N_ANS + 1, 1, prompts[i], lens[i], alone[i]);
    vet_err err;
    for (int copy = 0; copy < 2; copy++)
        for (int extra = 0; extra < 2; extra++) {  // exactly NOTES notes' slots, or more than that
            vet_infer *s = vet_infer_new(&m, NOTES * (N_ANS + 1) + extra * 4, &err);
            vet_infer_backend be;
            vet_infer_backend_of(s, &be);
            if (!copy) be.copy_slot = NULL;
            vet_ranker *r = vet_ranker_new(&be, V, &a, &err);
            CHECK(r && vet_ranker_notes(r) == NOTES);
            double got[NOTES * N_ANS], two[2 * N_ANS];
            CHECK(vet_ranker_score(r, prompts, lens, NOTES, got, NULL, &err) == 0);
            CHECK(memcmp(got, alone, sizeof got) == 0);
            CHECK(vet_ranker_score(r, prompts + 1, lens + 1, 2, two, NULL, &err) == 0);
            CHECK(memcmp(two, alone[1], sizeof two) == 0);
            CHECK(vet_ranker_score(r, prompts, lens, NOTES + 1, got, NULL, &err) == -1);  // more than it takes
            vet_ranker_free(r);
            vet_infer_free(s);
        }
    vet_rank_answers_free(&a);
    vet_model_free(&m);
}

// An ensemble copies every member's slot: the same bits as each answer's slot prefilled again.
static void test_ensemble_copies(void) {
    vet_model m[2];
    tiny_model(&m[0], VAR_LLAMA, &SHAPE, 21), tiny_model(&m[1], VAR_LLAMA, &SHAPE, 22);
    int V = m[0].cfg.vocab_size;
    vet_rank_answers a = make_answers();
    vet_rng rng;
    vet_rng_seed(&rng, 4);
    int32_t prompt[13];
    random_prompt(&rng, prompt, 13, V);
    const int32_t *const prompts[] = {prompt};
    int len = 13;
    double got[2][N_ANS];
    vet_err err;
    for (int copy = 0; copy < 2; copy++) {
        vet_ensemble *e = vet_ensemble_new_cpu(m, 2, 2 * (N_ANS + 1), &err);
        CHECK(e != NULL);
        vet_infer_backend be;
        vet_ensemble_backend(e, &be);
        CHECK(be.copy_slot != NULL);
        if (!copy) be.copy_slot = NULL;
        vet_ranker *r = vet_ranker_new(&be, V, &a, &err);
        CHECK(r && vet_ranker_score(r, prompts, &len, 1, got[copy], NULL, &err) == 0);
        vet_ranker_free(r);
        vet_ensemble_free(e);
    }
    CHECK(memcmp(got[0], got[1], sizeof got[0]) == 0);
    vet_rank_answers_free(&a);
    vet_model_free(&m[0]), vet_model_free(&m[1]);
}

static void test_logp_matches_oracle(void) {
    check_variant(VAR_LLAMA);
    check_variant(VAR_LLAMA3);
    check_variant(VAR_QWEN_TIED);
}

// The shared part: the ids all answers share, but never an answer's last.
static void test_common_prefix(void) {
    int32_t x[] = {4, 5, 6, 2}, y[] = {4, 5, 2}, z[] = {4, 5, 6, 7, 2}, w[] = {8, 2};
    int32_t *ids[] = {x, z};
    int n[] = {4, 5};
    vet_rank_answers a = {2, ids, n, 0};
    CHECK(vet_rank_common_prefix(&a) == 3);
    ids[0] = y, n[0] = 3;
    CHECK(vet_rank_common_prefix(&a) == 2);
    ids[1] = w, n[1] = 2;
    CHECK(vet_rank_common_prefix(&a) == 0);
    a.count = 1, ids[0] = x, n[0] = 4;
    CHECK(vet_rank_common_prefix(&a) == 3);  // one answer: all but its EOS
}

// The answers of a table as vet-tokenize encodes responses, and the refusal of two labels that
// encode alike: a byte-level BPE tokenizer with NFC makes "é" (U+00E9) and "e" U+0301 the same
// piece. Pieces: e, Ã, ©, é (3), !, and the EOS </s> (5).
static void test_answers_from_tokenizer(void) {
    char dir[] = "/tmp/vet-test-rank.XXXXXX", path[300];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"added_tokens\": [{\"id\": 5, \"content\": \"</s>\", \"special\": true}],"
          " \"normalizer\": {\"type\": \"NFC\"},"
          " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false},"
          " \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"e\": 0,"
          " \"\\u00c3\": 1, \"\\u00a9\": 2, \"\\u00c3\\u00a9\": 3, \"!\": 4, \"\\u00cc\": 6, \"\\u0123\": 7},"
          " \"merges\": [\"\\u00c3 \\u00a9\"]}}", f);
    fclose(f);
    vet_err err;
    vet_tokenizer *tok = vet_tokenizer_load(path, &err);
    if (!tok) fprintf(stderr, "%s\n", err.msg);
    CHECK(tok != NULL);
    vet_labels *t = vet_labels_new();
    CHECK(vet_labels_add(t, "e!", NULL, &err) == 0 && vet_labels_add(t, "\xc3\xa9", NULL, &err) == 0);
    vet_rank_answers a;
    CHECK(vet_rank_answers_build(&a, tok, "e", t, 5, 8, &err) == 0);
    CHECK(a.count == 2 && a.n[0] == 4 && a.n[1] == 3 && a.common == 1);  // e e ! </s>; e é </s>
    CHECK(a.ids[0][0] == 0 && a.ids[0][1] == 0 && a.ids[0][2] == 4 && a.ids[0][3] == 5);
    CHECK(a.ids[1][1] == 3 && a.ids[1][2] == 5);
    vet_rank_answers_free(&a);
    CHECK(vet_rank_answers_build(&a, tok, "e", t, 9, 8, &err) == -1 && err.kind == VET_E_INPUT);  // EOS past V
    CHECK(vet_labels_add(t, "e\xcc\x81", NULL, &err) == 0);  // "e" U+0301: NFC makes it "é"
    CHECK(vet_rank_answers_build(&a, tok, "e", t, 5, 8, &err) == -1 && err.kind == VET_E_INPUT);
    CHECK(strstr(err.msg, "are the same tokens") && strstr(err.msg, "\"\xc3\xa9\" and \"e\xcc\x81\""));
    CHECK(a.count == 0 && a.ids == NULL);
    vet_labels_free(t);
    vet_tokenizer_free(tok);
    unlink(path), rmdir(dir);
}

static void test_order(void) {
    double logp[] = {-3.0, -1.0, -2.0, -1.0, -40.0}, p[5], lt;
    int order[5];
    vet_rank_order(logp, 5, 1.0, p, order, &lt);
    double sum = 0, want = 0;
    for (int i = 0; i < 5; i++) sum += p[i], want += exp(logp[i]);
    CHECK_NEAR(sum, 1.0, 1e-12);
    CHECK_NEAR(lt, log(want), 1e-12);
    CHECK_NEAR(p[1], exp(-1.0) / want, 1e-12);
    CHECK(p[1] == p[3]);
    CHECK(order[0] == 1 && order[1] == 3 && order[2] == 2 && order[3] == 0 && order[4] == 4);  // ties: table order
    // Far below any double's exp: the largest is subtracted first, so p stays exact.
    double deep[] = {-2000.0, -2001.0};
    vet_rank_order(deep, 2, 1.0, p, order, &lt);
    CHECK_NEAR(p[0], 1.0 / (1.0 + exp(-1.0)), 1e-12);
    CHECK_NEAR(lt, -2000.0 + log(1.0 + exp(-1.0)), 1e-12);
}

// --rank-temperature: p = softmax(logp / T), the order and the table's total unchanged.
static void test_order_temperature(void) {
    double logp[] = {-3.0, -1.0, -2.0, -1.0, -40.0}, p1[5], p[5], lt1, lt;
    int order1[5], order[5];
    vet_rank_order(logp, 5, 1.0, p1, order1, &lt1);
    const double temps[] = {0.25, 0.5, 2.0, 7.5};
    for (int t = 0; t < 4; t++) {
        double T = temps[t], z = 0;
        vet_rank_order(logp, 5, T, p, order, &lt);
        for (int i = 0; i < 5; i++) z += exp(logp[i] / T);
        for (int i = 0; i < 5; i++) CHECK_NEAR(p[i], exp(logp[i] / T) / z, 1e-12);
        for (int i = 0; i < 5; i++) CHECK(order[i] == order1[i]);
        CHECK(lt == lt1);
        // Above 1 the top label's p falls (flatter), below 1 it rises.
        CHECK(T > 1 ? p[1] < p1[1] : p[1] > p1[1]);
    }
    // At the lowest temperature (0.001) every p below the best two underflows to 0: still in
    // the order of their logp (-2 before -3), not in table order.
    vet_rank_order(logp, 5, 0.001, p, order, &lt);
    CHECK(p[0] == 0 && p[2] == 0 && p[4] == 0);
    for (int i = 0; i < 5; i++) CHECK(order[i] == order1[i]);
    // So at temperature 1, past exp's range (p 0 for both).
    double far[] = {0.0, -900.0, -800.0};
    vet_rank_order(far, 3, 1.0, p, order, &lt);
    CHECK(p[1] == 0 && p[2] == 0 && order[0] == 0 && order[1] == 2 && order[2] == 1);
}

int main(void) {
    vet_set_threads(1);
    RUN(test_logp_matches_oracle);
    RUN(test_notes_together);
    RUN(test_ensemble_copies);
    RUN(test_common_prefix);
    RUN(test_answers_from_tokenizer);
    RUN(test_order);
    RUN(test_order_temperature);
    CHECK_EXIT();
}
