// rank.c — every answer of a code table scored for a prompt (see rank.h).
#include "generate/rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// ---------------------------------------------------------------------------------------
// The answers.

void vet_rank_answers_free(vet_rank_answers *a) {
    if (!a) return;
    for (int i = 0; a->ids && i < a->count; i++) free(a->ids[i]);
    free(a->ids), free(a->n);
    memset(a, 0, sizeof *a);
}

static int same_ids(const int32_t *x, int nx, const int32_t *y, int ny) {
    return nx == ny && memcmp(x, y, (size_t)nx * sizeof *x) == 0;
}

// The label's answer, as vet-tokenize encodes a response: encode(prefix + label), then EOS.
static int encode_answer(vet_rank_answers *a, int i, const vet_tokenizer *tok, const char *prefix, const char *label,
                         int32_t eos, vet_err *err) {
    size_t lp = strlen(prefix), ll = strlen(label), n = 0, cap = 0;
    char *text = malloc(lp + ll + 1);
    if (!text) return vet_err_nomem(err, "out of memory");
    memcpy(text, prefix, lp), memcpy(text + lp, label, ll + 1);
    int32_t *ids = NULL;
    int rc = vet_tokenizer_encode(tok, text, lp + ll, &ids, &n, &cap, err);
    free(text);
    if (rc) return free(ids), vet_err_prefix(err, "label \"%s\"", label);
    int32_t *grown = realloc(ids, (n + 1) * sizeof *ids);
    if (!grown) return free(ids), vet_err_nomem(err, "out of memory");
    grown[n++] = eos;
    a->ids[i] = grown, a->n[i] = (int)n;
    return 0;
}

static int check_answer(const vet_rank_answers *a, int i, const char *label, const vet_labels *table, int V,
                        vet_err *err) {
    for (int t = 0; t < a->n[i]; t++)
        if (a->ids[i][t] < 0 || a->ids[i][t] >= V)
            return vet_err_kindf(err, VET_E_INPUT, "label \"%s\": its answer's token %d (id %d) is outside the "
                                 "model's vocabulary [0, %d)", label, t, a->ids[i][t], V);
    for (int j = 0; j < i; j++)
        if (same_ids(a->ids[i], a->n[i], a->ids[j], a->n[j]))
            return vet_err_kindf(err, VET_E_INPUT, "labels \"%s\" and \"%s\" are the same tokens: the model "
                                 "cannot tell them apart", vet_labels_label(table, (size_t)j), label);
    return 0;
}

// Leading ids every answer shares, short of the shortest answer's last id (so each answer has
// at least its EOS of its own to score after the shared part).
int vet_rank_common_prefix(const vet_rank_answers *a) {
    int c = a->n[0] - 1;
    for (int i = 1; i < a->count; i++) {
        int k = 0;
        while (k < c && k < a->n[i] - 1 && a->ids[i][k] == a->ids[0][k]) k++;
        c = k;
    }
    return c;
}

int vet_rank_answers_build(vet_rank_answers *a, const vet_tokenizer *tok, const char *prefix, const vet_labels *table,
                           int32_t eos, int V, vet_err *err) {
    memset(a, 0, sizeof *a);
    size_t m = vet_labels_count(table);
    if (m == 0) return vet_err_kindf(err, VET_E_INPUT, "the code table holds no label to rank");
    if (m > 1000000) return vet_err_kindf(err, VET_E_INPUT, "%zu labels: too many to rank", m);
    if (eos < 0 || eos >= V)
        return vet_err_kindf(err, VET_E_INPUT, "end-of-sequence id %d is outside the model's vocabulary [0, %d)", eos, V);
    a->ids = calloc(m, sizeof *a->ids), a->n = calloc(m, sizeof *a->n);
    if (!a->ids || !a->n) return vet_rank_answers_free(a), vet_err_nomem(err, "out of memory");
    a->count = (int)m;
    for (int i = 0; i < a->count; i++) {
        const char *label = vet_labels_label(table, (size_t)i);
        if (encode_answer(a, i, tok, prefix, label, eos, err) || check_answer(a, i, label, table, V, err))
            return vet_rank_answers_free(a), -1;
    }
    a->common = vet_rank_common_prefix(a);
    return 0;
}

// ---------------------------------------------------------------------------------------
// Scoring.

struct vet_ranker {
    const vet_infer_backend *be;
    const vet_rank_answers *a;
    int V, S;
    float *logits;          // (S, V) a step's rows
    float *first;           // (V) slot 0's logits after the shared tokens
    int *slots, *who;       // per row of a step: its slot, its answer
    int *chunk;             // (S) the slots a chunk of answers runs in
    int32_t *tok;           // (S) a step's tokens
    const int32_t **prompts;
    int *lens;              // (S) prefill_batch's arguments
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

void vet_ranker_free(vet_ranker *r) {
    if (!r) return;
    free(r->logits), free(r->first), free(r->slots), free(r->who), free(r->chunk), free(r->tok);
    free(r->prompts), free(r->lens);
    free(r);
}

vet_ranker *vet_ranker_new(const vet_infer_backend *be, int V, const vet_rank_answers *a, vet_err *err) {
    if (be->n_slots < 1) return vet_errf(err, "the forward has no slot"), NULL;
    vet_ranker *r = calloc(1, sizeof *r);
    if (!r) return vet_err_nomem(err, "out of memory"), NULL;
    r->be = be, r->a = a, r->V = V, r->S = be->n_slots;
    size_t S = (size_t)r->S;
    r->logits = malloc(S * V * sizeof(float)), r->first = malloc((size_t)V * sizeof(float));
    r->slots = malloc(S * sizeof(int)), r->who = malloc(S * sizeof(int)), r->chunk = malloc(S * sizeof(int));
    r->tok = malloc(S * sizeof(int32_t)), r->prompts = malloc(S * sizeof *r->prompts), r->lens = malloc(S * sizeof(int));
    if (!r->logits || !r->first || !r->slots || !r->who || !r->chunk || !r->tok || !r->prompts || !r->lens) {
        vet_ranker_free(r);
        return vet_err_nomem(err, "out of memory for the ranker's %d rows of %d logits", (int)S, V), NULL;
    }
    return r;
}

// log P(id) under a row of logits: row[id] - log sum exp(row), in double.
static double log_prob(const float *row, int V, int id) {
    float mx = row[0];
    for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
    double s = 0.0;
    for (int v = 0; v < V; v++) s += exp((double)row[v] - mx);
    return (double)row[id] - mx - log(s);
}

static void add_time(vet_gen_stats *st, int prefill, int64_t tokens, double t0) {
    if (!st) return;
    double ms = now_ms() - t0;
    if (prefill)
        st->prompt_tokens += tokens, st->prefill_ms += ms;
    else
        st->step_tokens += tokens, st->step_ms += ms;
}

// Slots slots[0..k) fed the shared tokens ids[0..common) together (the logits are not needed).
static int feed_shared(vet_ranker *r, const int *slots, int k, vet_gen_stats *st, vet_err *err) {
    const int32_t *ids = r->a->ids[0];
    for (int t = 0; t < r->a->common; t++) {
        double t0 = now_ms();
        for (int i = 0; i < k; i++) r->tok[i] = ids[t];
        if (r->be->step(r->be->state, slots, r->tok, k, r->logits, err)) return -1;
        add_time(st, 0, k, t0);
    }
    return 0;
}

// Slot 0: the prompt, then the shared tokens; returns their log-probability in *lp and leaves
// the logits that follow them in r->first.
static int shared_part(vet_ranker *r, const int32_t *prompt, int n_prompt, double *lp, vet_gen_stats *st,
                       vet_err *err) {
    const vet_infer_backend *be = r->be;
    const int32_t *ids = r->a->ids[0];
    int slot0 = 0;
    double t0 = now_ms();
    if (be->prefill(be->state, 0, prompt, n_prompt, r->first, err)) return -1;
    add_time(st, 1, n_prompt, t0);
    *lp = 0.0;
    for (int t = 0; t < r->a->common; t++) {
        *lp += log_prob(r->first, r->V, ids[t]);
        t0 = now_ms();
        if (be->step(be->state, &slot0, &ids[t], 1, r->first, err)) return -1;
        add_time(st, 0, 1, t0);
    }
    return 0;
}

// Slots slots[0..k) made to hold what slot 0 holds after the shared part: copies, or the same
// prefill and steps again (prefill and steps give each slot the same bits as slot 0's).
static int prepare(vet_ranker *r, const int *slots, int k, const int32_t *prompt, int n_prompt, vet_gen_stats *st,
                   vet_err *err) {
    const vet_infer_backend *be = r->be;
    if (be->copy_slot && slots[0] != 0) {  // slot 0 itself (a single slot) has moved on: redo it
        for (int i = 0; i < k; i++)
            if (be->copy_slot(be->state, slots[i], 0, err)) return -1;
        return 0;
    }
    double t0 = now_ms();
    if (be->prefill_batch && k > 1) {
        int bad = -1;
        for (int i = 0; i < k; i++) r->prompts[i] = prompt, r->lens[i] = n_prompt;
        if (be->prefill_batch(be->state, slots, r->prompts, r->lens, k, r->logits, &bad, err)) return -1;
    } else {
        for (int i = 0; i < k; i++)
            if (be->prefill(be->state, slots[i], prompt, n_prompt, r->logits, err)) return -1;
    }
    add_time(st, 1, (int64_t)k * n_prompt, t0);
    return feed_shared(r, slots, k, st, err);
}

// Answers a0 .. a0+k-1 in slots slots[0..k), each already holding the prompt and the shared
// part: their first own token scored from r->first, then one step a token for every answer
// not yet at its EOS (rows compacted: finished answers leave the step).
static int score_chunk(vet_ranker *r, int a0, int k, const int *slots, double lp_shared, double *logp,
                       vet_gen_stats *st, vet_err *err) {
    const vet_rank_answers *a = r->a;
    int c = a->common;
    for (int i = 0; i < k; i++) logp[a0 + i] = lp_shared + log_prob(r->first, r->V, a->ids[a0 + i][c]);
    for (int t = c;; t++) {
        int n = 0;
        for (int i = 0; i < k; i++) {
            int w = a0 + i;
            if (t + 1 >= a->n[w]) continue;  // its last id (EOS) is scored, never fed
            r->slots[n] = slots[i], r->who[n] = w, r->tok[n] = a->ids[w][t], n++;
        }
        if (n == 0) return 0;
        double t0 = now_ms();
        if (r->be->step(r->be->state, r->slots, r->tok, n, r->logits, err)) return -1;
        add_time(st, 0, n, t0);
        for (int i = 0; i < n; i++) {
            int w = r->who[i];
            logp[w] += log_prob(r->logits + (size_t)i * r->V, r->V, a->ids[w][t + 1]);
        }
    }
}

int vet_ranker_score(vet_ranker *r, const int32_t *prompt, int n_prompt, double *logp, vet_gen_stats *st,
                     vet_err *err) {
    double lp_shared;
    if (shared_part(r, prompt, n_prompt, &lp_shared, st, err)) return -1;
    // Slot 0 keeps the shared part while slots 1.. take the answers; a single slot takes them
    // itself, one at a time, the shared part redone for each but the first.
    int width = r->S > 1 ? r->S - 1 : 1, first_slot = r->S > 1 ? 1 : 0;
    int *sl = r->chunk, rc = 0;
    for (int a0 = 0; rc == 0 && a0 < r->a->count; a0 += width) {
        int k = r->a->count - a0 < width ? r->a->count - a0 : width;
        for (int i = 0; i < k; i++) sl[i] = first_slot + i;
        if (first_slot > 0 || a0 > 0) rc = prepare(r, sl, k, prompt, n_prompt, st, err);
        if (rc == 0) rc = score_chunk(r, a0, k, sl, lp_shared, logp, st, err);
    }
    return rc;
}

// ---------------------------------------------------------------------------------------
// The order.

typedef struct {
    double p;
    int i;
} ranked_item;

static int by_p_desc(const void *x, const void *y) {
    const ranked_item *a = x, *b = y;
    if (a->p != b->p) return a->p > b->p ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

int vet_rank_order(const double *logp, int count, double *p, int *order, double *log_total, vet_err *err) {
    double mx = -INFINITY;
    for (int i = 0; i < count; i++) mx = logp[i] > mx ? logp[i] : mx;
    double s = 0.0;
    for (int i = 0; i < count; i++) s += exp(logp[i] - mx);
    for (int i = 0; i < count; i++) p[i] = exp(logp[i] - mx) / s;
    if (log_total) *log_total = mx + log(s);
    ranked_item *items = malloc((size_t)count * sizeof *items);
    if (!items) return vet_err_nomem(err, "out of memory");
    for (int i = 0; i < count; i++) items[i] = (ranked_item){p[i], i};
    qsort(items, (size_t)count, sizeof *items, by_p_desc);
    for (int i = 0; i < count; i++) order[i] = items[i].i;
    free(items);
    return 0;
}
