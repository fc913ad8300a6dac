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

// Answers i and j in the order of their ids (then their length): sorting by it puts two labels
// that encode alike next to each other.
static int cmp_answers(const void *x, const void *y, void *answers) {
    const vet_rank_answers *a = answers;
    int i = *(const int *)x, j = *(const int *)y, n = a->n[i] < a->n[j] ? a->n[i] : a->n[j];
    for (int t = 0; t < n; t++)
        if (a->ids[i][t] != a->ids[j][t]) return a->ids[i][t] < a->ids[j][t] ? -1 : 1;
    if (a->n[i] != a->n[j]) return a->n[i] < a->n[j] ? -1 : 1;
    return (i > j) - (i < j);
}

// Two labels whose answers are the same ids could not be told apart: VET_E_INPUT naming both.
// Found by sorting (n log n: a table may hold many thousand labels), not by comparing pairs.
static int check_distinct(const vet_rank_answers *a, const vet_labels *table, vet_err *err) {
    int *order = malloc((size_t)a->count * sizeof *order);
    if (!order) return vet_err_nomem(err, "out of memory");
    for (int i = 0; i < a->count; i++) order[i] = i;
    qsort_r(order, (size_t)a->count, sizeof *order, cmp_answers, (void *)a);
    int rc = 0;
    for (int k = 1; k < a->count && rc == 0; k++) {
        int i = order[k - 1], j = order[k];
        if (a->n[i] == a->n[j] && memcmp(a->ids[i], a->ids[j], (size_t)a->n[i] * sizeof(int32_t)) == 0)
            rc = vet_err_kindf(err, VET_E_INPUT, "labels \"%s\" and \"%s\" are the same tokens: the model cannot "
                               "tell them apart", vet_labels_label(table, (size_t)(i < j ? i : j)),
                               vet_labels_label(table, (size_t)(i < j ? j : i)));
    }
    free(order);
    return rc;
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

static int check_answer(const vet_rank_answers *a, int i, const char *label, int V, vet_err *err) {
    for (int t = 0; t < a->n[i]; t++)
        if (a->ids[i][t] < 0 || a->ids[i][t] >= V)
            return vet_err_kindf(err, VET_E_INPUT, "label \"%s\": its answer's token %d (id %d) is outside the "
                                 "model's vocabulary [0, %d)", label, t, a->ids[i][t], V);
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
        if (encode_answer(a, i, tok, prefix, label, eos, err) || check_answer(a, i, label, V, err))
            return vet_rank_answers_free(a), -1;
    }
    if (check_distinct(a, table, err)) return vet_rank_answers_free(a), -1;
    a->common = vet_rank_common_prefix(a);
    return 0;
}

// ---------------------------------------------------------------------------------------
// Scoring.

// A row of logits' log-normalizer in two parts (log_prob below).
typedef struct {
    float mx;   // the largest logit
    double ls;  // log sum exp(logit - mx)
} row_norm;

struct vet_ranker {
    const vet_infer_backend *be;
    const vet_rank_answers *a;
    int V, S;
    int notes;              // notes a round scores at once: S / (answers + 1), at least 1
    float *logits;          // (S, V) a step's rows
    float *first;           // (notes, V) each note's logits after the shared tokens
    row_norm *zfirst, *zrow;  // (notes) first's norms; (slots) a step's rows' norms
    double *lp_shared;      // (notes) the shared tokens' log-probability, per note
    int *src;               // (notes) the slot holding a note's prompt and shared tokens
    int *u_note, *u_ans, *u_slot;  // (S) a chunk's units: which note, which answer, which slot
    int *slots, *who;       // (S) per row of a step: its slot, its unit
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
    free(r->logits), free(r->first), free(r->lp_shared), free(r->src);
    free(r->zfirst), free(r->zrow);
    free(r->u_note), free(r->u_ans), free(r->u_slot), free(r->slots), free(r->who), free(r->tok);
    free(r->prompts), free(r->lens);
    free(r);
}

vet_ranker *vet_ranker_new(const vet_infer_backend *be, int V, const vet_rank_answers *a, vet_err *err) {
    if (be->n_slots < 1) return vet_errf(err, "the forward has no slot"), NULL;
    vet_ranker *r = calloc(1, sizeof *r);
    if (!r) return vet_err_nomem(err, "out of memory"), NULL;
    r->be = be, r->a = a, r->V = V, r->S = be->n_slots;
    r->notes = r->S >= a->count + 1 ? r->S / (a->count + 1) : 1;
    size_t S = (size_t)r->S, G = (size_t)r->notes;
    r->logits = malloc(S * V * sizeof(float)), r->first = malloc(G * V * sizeof(float));
    r->lp_shared = malloc(G * sizeof(double)), r->src = malloc(G * sizeof(int));
    r->zfirst = malloc(G * sizeof *r->zfirst), r->zrow = malloc(S * sizeof *r->zrow);
    r->u_note = malloc(S * sizeof(int)), r->u_ans = malloc(S * sizeof(int)), r->u_slot = malloc(S * sizeof(int));
    r->slots = malloc(S * sizeof(int)), r->who = malloc(S * sizeof(int)), r->tok = malloc(S * sizeof(int32_t));
    r->prompts = malloc(S * sizeof *r->prompts), r->lens = malloc(S * sizeof(int));
    if (!r->logits || !r->first || !r->lp_shared || !r->src || !r->zfirst || !r->zrow || !r->u_note || !r->u_ans || !r->u_slot || !r->slots ||
        !r->who || !r->tok || !r->prompts || !r->lens) {
        vet_ranker_free(r);
        return vet_err_nomem(err, "out of memory for the ranker's %d rows of %d logits", (int)S, V), NULL;
    }
    return r;
}

int vet_ranker_notes(const vet_ranker *r) { return r->notes; }

// A row of logits' log-normalizer (row_norm, above): log P(id) = row[id] - mx - ls, in double:
// an answer's logp sums a dozen of them and answers are told apart by the differences (the
// training loss's fp32 crossentropy would also write the row's gradient, which nothing here
// needs).

static row_norm norm_of(const float *row, int V) {
    float mx = row[0];
    for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
    double s = 0.0;
    for (int v = 0; v < V; v++) s += exp((double)row[v] - mx);
    return (row_norm){mx, log(s)};
}

static double log_prob(const float *row, row_norm z, int id) { return (double)row[id] - z.mx - z.ls; }

// The norms of n rows of V logits, the rows shared among the threads: a row is summed by one
// thread in one order, so the bits do not depend on the threads. (A row of 49,152 logits costs
// about a millisecond in double: serially, as much as a third of a ranking's steps.)
static void norms(const float *rows, int n, int V, row_norm *out) {
#pragma omp parallel for schedule(static) if (n > 1)
    for (int j = 0; j < n; j++) out[j] = norm_of(rows + (size_t)j * V, V);
}

static void add_time(vet_gen_stats *st, int prefill, int64_t tokens, double t0) {
    if (!st) return;
    double ms = now_ms() - t0;
    if (prefill)
        st->prompt_tokens += tokens, st->prefill_ms += ms;
    else
        st->step_tokens += tokens, st->step_ms += ms;
}

// prompts[i] into slots[i] (i < k), batched where the backend can; logits (k, V) into out.
static int prefill_all(vet_ranker *r, const int *slots, const int32_t *const *prompts, const int *lens, int k,
                       float *out, vet_gen_stats *st, vet_err *err) {
    const vet_infer_backend *be = r->be;
    double t0 = now_ms();
    int64_t tokens = 0;
    for (int i = 0; i < k; i++) tokens += lens[i];
    if (be->prefill_batch && k > 1) {
        int bad = -1;
        if (be->prefill_batch(be->state, slots, prompts, lens, k, out, &bad, err)) return -1;
    } else {
        for (int i = 0; i < k; i++)
            if (be->prefill(be->state, slots[i], prompts[i], lens[i], out + (size_t)i * r->V, err)) return -1;
    }
    add_time(st, 1, tokens, t0);
    return 0;
}

// One step of the shared token ids[t] for slots[0..k); logits (k, V) into out.
static int step_shared(vet_ranker *r, const int *slots, int k, int t, float *out, vet_gen_stats *st, vet_err *err) {
    double t0 = now_ms();
    for (int i = 0; i < k; i++) r->tok[i] = r->a->ids[0][t];
    if (r->be->step(r->be->state, slots, r->tok, k, out, err)) return -1;
    add_time(st, 0, k, t0);
    return 0;
}

// Each note's source slot: its prompt, then the shared tokens; their log-probability into
// lp_shared and the logits that follow them into first.
static int shared_part(vet_ranker *r, const int32_t *const *prompts, const int *lens, int count, vet_gen_stats *st,
                       vet_err *err) {
    if (prefill_all(r, r->src, prompts, lens, count, r->first, st, err)) return -1;
    for (int i = 0; i < count; i++) r->lp_shared[i] = 0.0;
    for (int t = 0; t < r->a->common; t++) {
        norms(r->first, count, r->V, r->zfirst);
        for (int i = 0; i < count; i++)
            r->lp_shared[i] += log_prob(r->first + (size_t)i * r->V, r->zfirst[i], r->a->ids[0][t]);
        if (step_shared(r, r->src, count, t, r->first, st, err)) return -1;
    }
    norms(r->first, count, r->V, r->zfirst);  // what every answer's first own token is scored by
    return 0;
}

// The chunk's k units made to hold what their note's source slot holds: copies, or the same
// prefill and shared steps again (which give each slot the source's bits: decoder.h).
static int prepare(vet_ranker *r, int k, const int32_t *const *prompts, const int *lens, vet_gen_stats *st,
                   vet_err *err) {
    const vet_infer_backend *be = r->be;
    int copies = be->copy_slot != NULL;
    for (int u = 0; u < k; u++) copies &= r->u_slot[u] != r->src[r->u_note[u]];  // a single slot has moved on
    if (copies) {
        for (int u = 0; u < k; u++)
            if (be->copy_slot(be->state, r->u_slot[u], r->src[r->u_note[u]], err)) return -1;
        return 0;
    }
    for (int u = 0; u < k; u++) r->prompts[u] = prompts[r->u_note[u]], r->lens[u] = lens[r->u_note[u]];
    if (prefill_all(r, r->u_slot, r->prompts, r->lens, k, r->logits, st, err)) return -1;
    for (int t = 0; t < r->a->common; t++)
        if (step_shared(r, r->u_slot, k, t, r->logits, st, err)) return -1;
    return 0;
}

// The chunk's k units, each slot holding its note's prompt and shared part: the answer's first
// own token scored from its note's first, then one step a token for every unit not yet at its
// answer's EOS (rows compacted: finished ones leave the step), all notes' units together.
static int score_units(vet_ranker *r, int k, double *logp, vet_gen_stats *st, vet_err *err) {
    const vet_rank_answers *a = r->a;
    int c = a->common, A = a->count;
    for (int u = 0; u < k; u++) {
        int i = r->u_note[u], w = r->u_ans[u];
        logp[(size_t)i * A + w] = r->lp_shared[i] + log_prob(r->first + (size_t)i * r->V, r->zfirst[i], a->ids[w][c]);
    }
    for (int t = c;; t++) {
        int n = 0;
        for (int u = 0; u < k; u++) {
            int w = r->u_ans[u];
            if (t + 1 >= a->n[w]) continue;  // its last id (EOS) is scored, never fed
            r->slots[n] = r->u_slot[u], r->who[n] = u, r->tok[n] = a->ids[w][t], n++;
        }
        if (n == 0) return 0;
        double t0 = now_ms();
        if (r->be->step(r->be->state, r->slots, r->tok, n, r->logits, err)) return -1;
        add_time(st, 0, n, t0);
        norms(r->logits, n, r->V, r->zrow);
        for (int j = 0; j < n; j++) {
            int u = r->who[j], w = r->u_ans[u];
            logp[(size_t)r->u_note[u] * A + w] += log_prob(r->logits + (size_t)j * r->V, r->zrow[j], a->ids[w][t + 1]);
        }
    }
}

int vet_ranker_score(vet_ranker *r, const int32_t *const *prompts, const int *lens, int count, double *logp,
                     vet_gen_stats *st, vet_err *err) {
    int A = r->a->count;
    if (count < 1 || count > r->notes)
        return vet_errf(err, "%d notes at once: the ranker takes 1 to %d", count, r->notes);
    // Note i's slots: its source, then one per answer, when they all fit; else (one note) slot 0
    // keeps the source and the others take the answers a chunk at a time (a single slot takes
    // them itself, one at a time, the shared part redone for each but the first).
    int wide = r->S >= A + 1;
    for (int i = 0; i < count; i++) r->src[i] = wide ? i * (A + 1) : 0;
    if (shared_part(r, prompts, lens, count, st, err)) return -1;
    if (wide) {
        int k = 0;
        for (int i = 0; i < count; i++)
            for (int w = 0; w < A; w++) r->u_note[k] = i, r->u_ans[k] = w, r->u_slot[k] = r->src[i] + 1 + w, k++;
        if (prepare(r, k, prompts, lens, st, err)) return -1;
        return score_units(r, k, logp, st, err);
    }
    int width = r->S > 1 ? r->S - 1 : 1, first_slot = r->S > 1 ? 1 : 0;
    for (int a0 = 0; a0 < A; a0 += width) {
        int k = A - a0 < width ? A - a0 : width;
        for (int u = 0; u < k; u++) r->u_note[u] = 0, r->u_ans[u] = a0 + u, r->u_slot[u] = first_slot + u;
        if ((first_slot > 0 || a0 > 0) && prepare(r, k, prompts, lens, st, err)) return -1;
        if (score_units(r, k, logp, st, err)) return -1;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------
// The order.

// Answers by logp (the context), highest first; equal logp in table order. The order of p at
// any temperature, but for the p that underflow to 0 (logp more than ~745 T below the best:
// 7.45 at --rank-temperature 0.01), which sorted by p came in table order, not by their logp.
static int by_logp_desc(const void *x, const void *y, void *logp_) {
    const double *logp = logp_;
    int i = *(const int *)x, j = *(const int *)y;
    if (logp[i] != logp[j]) return logp[i] > logp[j] ? -1 : 1;
    return (i > j) - (i < j);
}

void vet_rank_order(const double *logp, int count, double temperature, double *p, int *order, double *log_total) {
    double mx = -INFINITY;
    for (int i = 0; i < count; i++) mx = logp[i] > mx ? logp[i] : mx;
    // At temperature 1 the two sums are the same terms in the same order: p is what it was
    // before temperatures existed, bit for bit.
    double s = 0.0, st = 0.0;
    for (int i = 0; i < count; i++) s += exp(logp[i] - mx);
    for (int i = 0; i < count; i++) p[i] = exp((logp[i] - mx) / temperature), st += p[i], order[i] = i;
    for (int i = 0; i < count; i++) p[i] /= st;
    if (log_total) *log_total = mx + log(s);
    qsort_r(order, (size_t)count, sizeof *order, by_logp_desc, (void *)logp);
}
