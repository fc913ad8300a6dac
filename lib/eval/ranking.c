// ranking.c — see ranking.h. A note's list is checked as it is read; the set keeps, per note,
// only what the metrics need: where its first gold label is ranked and its top label's p.
#include "eval/ranking.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// --- one list -------------------------------------------------------------------------------
static int cmp_label_at(const void *a, const void *b, void *labels) {
    char *const *v = labels;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(v[i], v[j]);
    return c ? c : (i > j) - (i < j);
}

// A label listed twice: 1 with its two places in *first < *second, 0 when none is, -1 when out
// of memory. Sorting the places by label puts a repeat next to its first place, in n log n: a
// list may be as long as the code table.
static int find_repeat(char *const *labels, size_t n, size_t *first, size_t *second) {
    size_t *at = malloc((n ? n : 1) * sizeof *at);
    if (!at) return -1;
    for (size_t i = 0; i < n; i++) at[i] = i;
    qsort_r(at, n, sizeof *at, cmp_label_at, (void *)labels);
    int found = 0;
    for (size_t i = 1; i < n && !found; i++)
        if (strcmp(labels[at[i - 1]], labels[at[i]]) == 0) *first = at[i - 1], *second = at[i], found = 1;
    free(at);
    return found;
}

int vet_ranked_check(char *const *labels, const double *p, size_t n, vet_err *err) {
    if (n == 0) return vet_errf(err, "\"ranked\" is empty (a ranking lists at least the most probable label)");
    for (size_t i = 0; i < n; i++) {
        if (!labels[i][0]) return vet_errf(err, "\"ranked\"[%zu].label is empty", i);
        if (!(p[i] >= 0 && p[i] <= 1))  // NaN fails both comparisons
            return vet_errf(err, "\"ranked\"[%zu].p = %g is not a probability (want 0 <= p <= 1)", i, p[i]);
        if (i > 0 && p[i] > p[i - 1])
            return vet_errf(err, "\"ranked\"[%zu].p = %.17g is above \"ranked\"[%zu].p = %.17g: the list must be "
                            "most probable first", i, p[i], i - 1, p[i - 1]);
    }
    size_t a = 0, b = 0;
    int rc = find_repeat(labels, n, &a, &b);
    if (rc < 0) return vet_err_nomem(err, "out of memory");
    if (rc > 0)
        return vet_errf(err, "\"ranked\"[%zu].label '%s' is also \"ranked\"[%zu]: each label is ranked once", b,
                        labels[b], a);
    return 0;
}

// --- the notes of a set -----------------------------------------------------------------------
struct vet_ranks {
    size_t n, cap;       // notes added; room in the arrays
    size_t kmax;         // the longest list
    int ranked;          // whether the first note (and so every note) has a list
    char *first_file;    // where the first note was read, for the message about a mix
    const char *first_unit;
    long first_at;
    size_t *gold_at;     // [n] with lists: the place (from 1) of the first gold label; 0: none listed
    double *top_p;       // [n] with lists: the first label's p
    int keep;            // vet_ranks_keep_lists: the whole lists below, kmax entries a note
    double temperature;  // vet_ranks_rescale: top_p from logp at this temperature; 0: as listed
    double *logp;        // [n * kmax] each note's logp, in its list's order
    unsigned char *gold; // [n * kmax] whether that label is one of the note's gold labels
};

void vet_ranks_keep_lists(vet_ranks *rk) { rk->keep = 1; }
void vet_ranks_rescale(vet_ranks *rk, double temperature) { rk->temperature = temperature; }

const double *vet_ranks_top_p(const vet_ranks *rk, size_t *n) {
    *n = rk->ranked ? rk->n : 0;
    return rk->ranked ? rk->top_p : NULL;
}

vet_ranks *vet_ranks_new(void) { return calloc(1, sizeof(vet_ranks)); }

void vet_ranks_free(vet_ranks *rk) {
    if (!rk) return;
    free(rk->first_file);
    free(rk->gold_at);
    free(rk->top_p);
    free(rk->logp);
    free(rk->gold);
    free(rk);
}

// The place (from 1) of rec's first ranked label that is a gold label, 0 when none is. Gold sets
// hold a few labels: a walk over them per ranked label.
static size_t first_gold(const vet_pred *rec) {
    for (size_t i = 0; i < rec->nranked; i++)
        for (size_t j = 0; j < rec->ngold; j++)
            if (strcmp(rec->ranked[i], rec->gold[j]) == 0) return i + 1;
    return 0;
}

// Room for one more note (and, keeping lists, for its list of width entries).
static int grow(vet_ranks *rk, size_t width) {
    if (rk->n < rk->cap) return 0;
    size_t cap = rk->cap ? 2 * rk->cap : 256;
    size_t *g = realloc(rk->gold_at, cap * sizeof *g);
    if (g) rk->gold_at = g;
    double *p = g ? realloc(rk->top_p, cap * sizeof *p) : NULL;
    if (!p) return -1;
    rk->top_p = p;
    if (rk->keep) {
        if (width && cap > SIZE_MAX / width / sizeof(double)) return -1;
        size_t cells = width ? cap * width : 1;
        double *l = realloc(rk->logp, cells * sizeof *l);
        if (l) rk->logp = l;
        unsigned char *m = l ? realloc(rk->gold, cells) : NULL;
        if (!m) return -1;
        rk->gold = m;
    }
    rk->cap = cap;
    return 0;
}

// The messages below say where rec and the first prediction were read: "FILE:N" or "FILE:
// record N" (predictions.h).
typedef struct {
    char rec[600], first[600];
} where_buf;

static void where_of(where_buf *w, const vet_ranks *rk, const vet_pred *rec, const char *file, const char *unit) {
    vet_pred_where(w->rec, sizeof w->rec, file, unit, rec->at);
    vet_pred_where(w->first, sizeof w->first, rk->first_file, rk->first_unit, rk->first_at);
}

// Keeping or rescaling lists: rec's must be whole (every label of its table, each with its
// logp) and as long as the first note's.
static int check_whole(const vet_ranks *rk, const vet_pred *rec, const char *file, const char *unit, vet_err *err) {
    char fix[120];
    snprintf(fix, sizeof fix, "%s needs every label's logp: vet-generate --rank all",
             rk->keep ? "--fit-temperature" : "--temperature");
    where_buf w;
    where_of(&w, rk, rec, file, unit);
    for (size_t i = 0; i < rec->nranked; i++)
        if (isnan(rec->ranked_logp[i]))
            return vet_errf(err, "%s: \"ranked\"[%zu] has no logp (%s)", w.rec, i, fix);
    if (rec->table_labels > 0 && (int64_t)rec->nranked != rec->table_labels)
        return vet_errf(err, "%s: lists %zu of the table's %lld labels (%s)", w.rec,
                        rec->nranked, (long long)rec->table_labels, fix);
    if (rk->n > 0 && rec->nranked != rk->kmax)
        return vet_errf(err, "%s: lists %zu labels, but the first prediction (%s) lists %zu (%s)",
                        w.rec, rec->nranked, w.first, rk->kmax, fix);
    return 0;
}

// Stores rec's whole list for the fit.
static void keep_list(vet_ranks *rk, const vet_pred *rec) {
    size_t w = rec->nranked, at = rk->n * w;
    for (size_t i = 0; i < w; i++) {
        rk->logp[at + i] = rec->ranked_logp[i];
        rk->gold[at + i] = 0;
        for (size_t j = 0; j < rec->ngold && !rk->gold[at + i]; j++)
            rk->gold[at + i] = strcmp(rec->ranked[i], rec->gold[j]) == 0;
    }
}

int vet_ranks_add(vet_ranks *rk, const vet_pred *rec, const char *file, const char *unit, vet_err *err) {
    int has = rec->nranked > 0;
    if (rk->n == 0) {
        if (!(rk->first_file = strdup(file))) return vet_err_nomem(err, "out of memory");
        rk->first_unit = unit, rk->first_at = rec->at, rk->ranked = has;
    } else if (has != rk->ranked) {
        where_buf w;
        where_of(&w, rk, rec, file, unit);
        return vet_errf(err, "%s: %s \"ranked\" list, but the first prediction (%s) has %s: "
                        "predictions with and without vet-generate --rank cannot be scored together (two runs in "
                        "one input?)", w.rec, has ? "a" : "no", w.first, has ? "none" : "one");
    }
    if (has) {
        if (grow(rk, rk->n ? rk->kmax : rec->nranked) < 0) return vet_err_nomem(err, "out of memory");
        if ((rk->keep || rk->temperature > 0) && check_whole(rk, rec, file, unit, err) < 0) return -1;
        if (rk->keep) keep_list(rk, rec);
        rk->gold_at[rk->n] = first_gold(rec);
        rk->top_p[rk->n] = rk->temperature > 0 ? vet_p_at(rec->ranked_logp, rec->nranked, 0, rk->temperature) : rec->ranked_p[0];
        if (rec->nranked > rk->kmax) rk->kmax = rec->nranked;
    }
    rk->n++;
    return 0;
}

// --- the metrics ------------------------------------------------------------------------------

// hit@k for every k from how many notes have their first gold label at each place, and the MRR.
static int hits(const vet_ranks *rk, vet_ranking *m) {
    if (!(m->hit_at = calloc(rk->kmax, sizeof *m->hit_at))) return -1;
    double rr = 0;
    for (size_t i = 0; i < rk->n; i++) {
        size_t at = rk->gold_at[i];
        if (at == 0) continue;
        m->hit_at[at - 1] += 1;
        rr += 1.0 / (double)at;
    }
    for (size_t k = 1; k < rk->kmax; k++) m->hit_at[k] += m->hit_at[k - 1];  // counts up to k
    for (size_t k = 0; k < rk->kmax; k++) m->hit_at[k] /= (double)rk->n;
    m->mrr = rr / (double)rk->n;
    return 0;
}

// ECE and Brier of the top label as listed (calibrate.h's binning).
static int calibration(const vet_ranks *rk, vet_ranking *m) {
    unsigned char *ok = malloc(rk->n);
    if (!ok) return -1;
    for (size_t i = 0; i < rk->n; i++) ok[i] = rk->gold_at[i] == 1;
    vet_top1_calibration(rk->top_p, ok, rk->n, &m->ece, &m->brier);
    free(ok);
    return 0;
}

// Most confident first; equal p in input order, so the cut through a tie is the same every run.
static int cmp_confidence(const void *a, const void *b, void *top_p) {
    const double *p = top_p;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (p[i] != p[j]) return p[i] < p[j] ? 1 : -1;
    return (i > j) - (i < j);
}

static int selective(const vet_ranks *rk, const vet_eval *e, vet_ranking *m) {
    size_t n = rk->n, *order = malloc(n * sizeof *order);
    if (!order) return -1;
    for (size_t i = 0; i < n; i++) order[i] = i;
    qsort_r(order, n, sizeof *order, cmp_confidence, rk->top_p);
    for (int r = 0; r < VET_SELECTIVE_ROWS; r++) {
        vet_selective *s = &m->selective[r];
        s->coverage = 100 - 10 * r;
        s->notes = ((size_t)s->coverage * n + 99) / 100;  // ceil(c N / 100): at least one note
        size_t right = 0;
        for (size_t i = 0; i < s->notes; i++) right += vet_eval_correct(e, order[i]);
        s->threshold = rk->top_p[order[s->notes - 1]];
        s->accuracy = (double)right / (double)s->notes;
    }
    free(order);
    return 0;
}

int vet_ranking_compute(const vet_ranks *rk, const vet_eval *e, vet_ranking *out, vet_err *err) {
    memset(out, 0, sizeof *out);
    if (!rk || rk->n == 0 || !rk->ranked) return 0;
    if (rk->n != vet_eval_n(e))
        return vet_errf(err, "ranking: %zu notes ranked but %zu scored (notes added to one and not the other)",
                        rk->n, vet_eval_n(e));
    out->n = rk->n;
    out->kmax = rk->kmax;
    if (hits(rk, out) < 0 || selective(rk, e, out) < 0 || calibration(rk, out) < 0) {
        vet_ranking_free(out);
        return vet_err_nomem(err, "out of memory");
    }
    if (rk->keep) {
        if (vet_temperature_fit(rk->logp, rk->gold, rk->n, rk->kmax, &out->temperature, err) < 0) {
            vet_ranking_free(out);
            return vet_err_prefix(err, "--fit-temperature");
        }
        out->fitted = 1;
    }
    return 0;
}

void vet_ranking_free(vet_ranking *m) {
    free(m->hit_at);
    memset(m, 0, sizeof *m);
}
