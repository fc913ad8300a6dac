// metrics.c — exact match, per-label/micro/macro P/R/F1, Jaccard, confusions, the ceiling that
// notes written alike under other gold sets put on accuracy, the majority baseline and the
// percentile bootstrap over a set of (gold set, predicted set) samples.
// Conventions: see metrics.h.
#include "eval/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/strtab.h"
#include "data/labels.h"

// --- samples ----------------------------------------------------------------------------
typedef struct {
    uint32_t *gold, *pred;  // label ids, unique, sorted by label string
    uint32_t ngold, npred;
    uint32_t species;
    int32_t group;  // vet_eval_group_last's, -1: none
} sample;

struct vet_eval {
    vet_strtab labels, species;
    sample *s;
    size_t n, cap;
    vet_strtab ids;     // the notes' ids, for the samples that were named (vet_eval_name_last)
    size_t *id_sample;  // id_sample[k]: the sample named ids.str[k]
    vet_strtab groups;  // the groups' keys (vet_eval_group_last)
    size_t grouped;     // samples in a group
};

vet_eval *vet_eval_new(void) { return calloc(1, sizeof(vet_eval)); }

void vet_eval_free(vet_eval *e) {
    if (!e) return;
    for (size_t i = 0; i < e->n; i++) {
        free(e->s[i].gold);
        free(e->s[i].pred);
    }
    free(e->s);
    vet_strtab_free(&e->labels);
    vet_strtab_free(&e->species);
    vet_strtab_free(&e->ids);
    vet_strtab_free(&e->groups);
    free(e->id_sample);
    free(e);
}

size_t vet_eval_n(const vet_eval *e) { return e->n; }

static int cmp_ids(const void *a, const void *b, void *names) {
    char **v = names;
    return strcmp(v[*(const uint32_t *)a], v[*(const uint32_t *)b]);
}

// Interns labels[0..n) into a fresh sorted, de-duplicated id array (empty strings dropped).
static int intern_set(vet_eval *e, char *const *labels, size_t n, uint32_t **out, uint32_t *nout) {
    uint32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!labels[i][0]) continue;
        long id = vet_strtab_intern(&e->labels, labels[i]);
        if (id < 0) {
            free(ids);
            return -1;
        }
        ids[k++] = (uint32_t)id;
    }
    qsort_r(ids, k, sizeof *ids, cmp_ids, e->labels.str);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || ids[u - 1] != ids[i]) ids[u++] = ids[i];
    *out = ids;
    *nout = (uint32_t)u;
    return 0;
}

int vet_eval_add(vet_eval *e, const char *species, char *const *gold, size_t ngold, char *const *pred,
                 size_t npred, vet_err *err) {
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 256;
        sample *s = realloc(e->s, cap * sizeof *s);
        if (!s) return vet_err_nomem(err, "out of memory");
        e->s = s;
        e->cap = cap;
    }
    sample *s = &e->s[e->n];
    memset(s, 0, sizeof *s);
    long sp = vet_strtab_intern(&e->species, species ? species : "");
    if (sp < 0 || intern_set(e, gold, ngold, &s->gold, &s->ngold) < 0) return vet_err_nomem(err, "out of memory");
    if (intern_set(e, pred, npred, &s->pred, &s->npred) < 0) {
        free(s->gold);
        return vet_err_nomem(err, "out of memory");
    }
    s->species = (uint32_t)sp;
    s->group = -1;
    e->n++;
    return 0;
}

int vet_eval_name_last(vet_eval *e, const char *id, vet_err *err) {
    if (e->n == 0) return vet_errf(err, "no sample to name '%s'", id);
    size_t before = e->ids.n;
    long k = vet_strtab_intern(&e->ids, id);
    if (k < 0) return vet_err_nomem(err, "out of memory");
    if (e->ids.n == before) return vet_errf(err, "id '%s' names two samples", id);
    if ((e->ids.n & (e->ids.n - 1)) == 0) {  // grown at 1, 2, 4, 8, ...: room for 2n ids
        size_t *p = realloc(e->id_sample, 2 * e->ids.n * sizeof *p);
        if (!p) return vet_err_nomem(err, "out of memory");
        e->id_sample = p;
    }
    e->id_sample[k] = e->n - 1;
    return 0;
}

int vet_eval_group_last(vet_eval *e, const char *key, vet_err *err) {
    if (e->n == 0) return vet_errf(err, "no sample to put in group '%s'", key ? key : "");
    sample *s = &e->s[e->n - 1];
    if (s->group >= 0) return vet_errf(err, "a sample put in two groups");
    if (!key || !*key) return 0;
    long g = vet_strtab_intern(&e->groups, key);
    if (g < 0 || g > INT32_MAX) return vet_err_nomem(err, "out of memory");
    s->group = (int32_t)g;
    e->grouped++;
    return 0;
}

size_t vet_eval_groups(const vet_eval *e) { return e->n > 0 && e->grouped == e->n ? e->groups.n : 0; }

size_t vet_eval_group_of(const vet_eval *e, size_t i) { return (size_t)e->s[i].group; }

bool vet_eval_in_group(const vet_eval *e, size_t i) { return e->s[i].group >= 0; }

long vet_eval_find(const vet_eval *e, const char *id) {
    long k = vet_strtab_find(&e->ids, id);
    return k < 0 ? -1 : (long)e->id_sample[k];
}

size_t vet_eval_named(const vet_eval *e) { return e->ids.n; }

const char *vet_eval_id_at(const vet_eval *e, size_t k) { return e->ids.str[k]; }

// A sample's gold set as its labels joined by ';' (labels.h), cut at cap; the first 64 labels.
static void gold_text(const vet_eval *e, const sample *s, char *out, size_t cap) {
    const char *v[64];
    uint32_t n = s->ngold < 64 ? s->ngold : 64;
    for (uint32_t i = 0; i < n; i++) v[i] = e->labels.str[s->gold[i]];
    vet_labels_join(out, cap, v, n, "");
}

int vet_eval_same_gold(const vet_eval *a, size_t i, const vet_eval *b, size_t j, char *why, size_t cap) {
    const sample *x = &a->s[i], *y = &b->s[j];
    int same = x->ngold == y->ngold;
    for (uint32_t k = 0; same && k < x->ngold; k++)  // both sorted by label string
        same = strcmp(a->labels.str[x->gold[k]], b->labels.str[y->gold[k]]) == 0;
    if (!same && why && cap) {
        char ga[256], gb[256];
        gold_text(a, x, ga, sizeof ga);
        gold_text(b, y, gb, sizeof gb);
        snprintf(why, cap, "{%s} against {%s}", ga, gb);
    }
    return same;
}

// --- set arithmetic (both sides sorted by label string) ---------------------------------
static int set_equal(const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb) {
    return na == nb && memcmp(a, b, na * sizeof *a) == 0;
}

static uint32_t set_common(const vet_eval *e, const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb) {
    uint32_t i = 0, j = 0, k = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) {
            k++, i++, j++;
            continue;
        }
        if (strcmp(e->labels.str[a[i]], e->labels.str[b[j]]) < 0)
            i++;
        else
            j++;
    }
    return k;
}

// Orders sets by their sorted labels, a prefix first.
static int set_cmp(const vet_eval *e, const uint32_t *a, uint32_t na, const uint32_t *b, uint32_t nb) {
    for (uint32_t i = 0; i < na && i < nb; i++) {
        int c = strcmp(e->labels.str[a[i]], e->labels.str[b[i]]);
        if (c) return c;
    }
    return (na > nb) - (na < nb);
}

static int sample_correct(const sample *s) { return set_equal(s->gold, s->ngold, s->pred, s->npred); }

bool vet_eval_correct(const vet_eval *e, size_t i) { return i < e->n && sample_correct(&e->s[i]); }

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

// --- the report -------------------------------------------------------------------------
static int cmp_label_stat(const void *pa, const void *pb) {
    const vet_label_stat *a = pa, *b = pb;
    if (a->support != b->support) return a->support < b->support ? 1 : -1;
    if (a->predicted != b->predicted) return a->predicted < b->predicted ? 1 : -1;
    return strcmp(a->label, b->label);
}

static int cmp_species_stat(const void *pa, const void *pb) {
    const vet_species_stat *a = pa, *b = pb;
    if (a->n != b->n) return a->n < b->n ? 1 : -1;
    return strcmp(a->species, b->species);
}

// Sorting samples by (gold set, pred set) puts equal pairs next to each other.
static int cmp_pairs(const void *pa, const void *pb, void *ev) {
    const vet_eval *e = ev;
    const sample *a = &e->s[*(const size_t *)pa], *b = &e->s[*(const size_t *)pb];
    int c = set_cmp(e, a->gold, a->ngold, b->gold, b->ngold);
    return c ? c : set_cmp(e, a->pred, a->npred, b->pred, b->npred);
}

static int cmp_gold(const void *pa, const void *pb, void *ev) {
    const vet_eval *e = ev;
    const sample *a = &e->s[*(const size_t *)pa], *b = &e->s[*(const size_t *)pb];
    return set_cmp(e, a->gold, a->ngold, b->gold, b->ngold);
}

typedef struct {
    const vet_eval *e;
    size_t first;  // a sample holding the pair
    size_t count;
} run;

static int cmp_runs(const void *pa, const void *pb, void *unused) {
    const run *a = pa, *b = pb;
    if (a->count != b->count) return a->count < b->count ? 1 : -1;
    return cmp_pairs(&a->first, &b->first, (void *)a->e);
}

static const char **label_strs(const vet_eval *e, const uint32_t *ids, uint32_t n) {
    const char **v = malloc((n ? n : 1) * sizeof *v);
    if (v)
        for (uint32_t i = 0; i < n; i++) v[i] = e->labels.str[ids[i]];
    return v;
}

static int confusions(const vet_eval *e, vet_metrics *m) {
    size_t *idx = malloc((e->n ? e->n : 1) * sizeof *idx), k = 0;
    run *runs = malloc((e->n ? e->n : 1) * sizeof *runs);
    size_t nruns = 0;
    if (!idx || !runs) goto oom;
    for (size_t i = 0; i < e->n; i++)
        if (!sample_correct(&e->s[i])) idx[k++] = i;
    qsort_r(idx, k, sizeof *idx, cmp_pairs, (void *)e);
    for (size_t i = 0; i < k; i++) {
        if (nruns && cmp_pairs(&idx[i], &runs[nruns - 1].first, (void *)e) == 0) {
            runs[nruns - 1].count++;
        } else {
            runs[nruns++] = (run){e, idx[i], 1};
        }
    }
    qsort_r(runs, nruns, sizeof *runs, cmp_runs, NULL);
    m->confusions = calloc(nruns ? nruns : 1, sizeof *m->confusions);
    if (!m->confusions) goto oom;
    for (size_t i = 0; i < nruns; i++) {
        const sample *s = &e->s[runs[i].first];
        vet_confusion *c = &m->confusions[i];
        c->gold = label_strs(e, s->gold, s->ngold);
        c->pred = label_strs(e, s->pred, s->npred);
        c->ngold = s->ngold;
        c->npred = s->npred;
        c->count = runs[i].count;
        m->nconfusions = i + 1;
        if (!c->gold || !c->pred) goto oom;
    }
    free(idx);
    free(runs);
    return 0;
oom:
    free(idx);
    free(runs);
    return -1;
}

static int cmp_group_gold(const void *pa, const void *pb, void *ev) {
    const vet_eval *e = ev;
    const sample *a = &e->s[*(const size_t *)pa], *b = &e->s[*(const size_t *)pb];
    if (a->group != b->group) return a->group < b->group ? -1 : 1;
    return cmp_gold(pa, pb, ev);
}

// The ceiling (metrics.h): the samples sorted by group, then gold set, so that a group's gold
// sets are runs; its best answer is its longest run. 0, or -1 out of memory.
static int ceiling(const vet_eval *e, vet_metrics *m) {
    m->ceiling = NAN;
    if (vet_eval_groups(e) == 0) return 0;
    size_t *idx = malloc(e->n * sizeof *idx);
    if (!idx) return -1;
    for (size_t i = 0; i < e->n; i++) idx[i] = i;
    qsort_r(idx, e->n, sizeof *idx, cmp_group_gold, (void *)e);
    m->groups = vet_eval_groups(e);
    for (size_t i = 0; i < e->n;) {
        size_t end = i, best = 0, sets = 0;  // the group's samples are idx[i .. end)
        while (end < e->n && e->s[idx[end]].group == e->s[idx[i]].group) end++;
        for (size_t first = i; first < end; sets++) {
            size_t next = first + 1;  // the run of one gold set is idx[first .. next)
            while (next < end && cmp_gold(&idx[next], &idx[first], (void *)e) == 0) next++;
            if (next - first > best) best = next - first;
            first = next;
        }
        m->ceiling_correct += best;
        if (sets > 1) m->groups_mixed++, m->notes_mixed += end - i;
        i = end;
    }
    m->ceiling = (double)m->ceiling_correct / (double)e->n;
    free(idx);
    return 0;
}

// Per-label P/R/F1 from the counts (support, predicted, true positives per label id), their
// macro means, and the micro figures from the summed counts.
static void label_stats(const vet_eval *e, const size_t *sup, const size_t *prd, const size_t *tp, vet_metrics *m) {
    size_t sum_tp = 0, sum_sup = 0, sum_prd = 0;
    for (size_t l = 0; l < e->labels.n; l++) {
        vet_label_stat *st = &m->labels[m->nlabels];
        if (sup[l] + prd[l] == 0) continue;  // cannot happen for interned labels; kept for clarity
        st->label = e->labels.str[l];
        st->support = sup[l];
        st->predicted = prd[l];
        st->tp = tp[l];
        st->precision = ratio(tp[l], prd[l]);
        st->recall = ratio(tp[l], sup[l]);
        st->f1 = ratio(2.0 * tp[l], (double)(sup[l] + prd[l]));
        m->macro_precision += st->precision;
        m->macro_recall += st->recall;
        m->macro_f1 += st->f1;
        sum_tp += tp[l], sum_sup += sup[l], sum_prd += prd[l];
        m->nlabels++;
    }
    if (m->nlabels) {
        m->macro_precision /= m->nlabels;
        m->macro_recall /= m->nlabels;
        m->macro_f1 /= m->nlabels;
    }
    m->micro_precision = ratio(sum_tp, sum_prd);
    m->micro_recall = ratio(sum_tp, sum_sup);
    m->micro_f1 = ratio(2 * m->micro_precision * m->micro_recall, m->micro_precision + m->micro_recall);
    qsort(m->labels, m->nlabels, sizeof *m->labels, cmp_label_stat);
}

int vet_metrics_compute(const vet_eval *e, vet_metrics *m, vet_err *err) {
    memset(m, 0, sizeof *m);
    if (e->n == 0) return vet_errf(err, "no samples to evaluate (n = 0)");
    size_t L = e->labels.n, S = e->species.n;
    size_t *sup = calloc(L + 1, sizeof *sup), *prd = calloc(L + 1, sizeof *prd), *tp = calloc(L + 1, sizeof *tp);
    m->labels = calloc(L + 1, sizeof *m->labels);
    m->species = calloc(S + 1, sizeof *m->species);
    if (!sup || !prd || !tp || !m->labels || !m->species) goto oom;

    double jaccard = 0;
    for (size_t i = 0; i < e->n; i++) {
        const sample *s = &e->s[i];
        int ok = sample_correct(s);
        m->correct += ok;
        m->no_label += s->npred == 0;
        vet_species_stat *sp = &m->species[s->species];
        sp->n++;
        sp->correct += ok;
        for (uint32_t j = 0; j < s->ngold; j++) sup[s->gold[j]]++;
        for (uint32_t j = 0; j < s->npred; j++) prd[s->pred[j]]++;
        // Common labels: walk gold, look each up in pred (both tiny).
        for (uint32_t j = 0; j < s->ngold; j++)
            for (uint32_t k = 0; k < s->npred; k++)
                if (s->gold[j] == s->pred[k]) tp[s->gold[j]]++;
        uint32_t common = set_common(e, s->gold, s->ngold, s->pred, s->npred);
        uint32_t uni = s->ngold + s->npred - common;
        jaccard += uni ? (double)common / uni : 1.0;
    }
    m->n = e->n;
    m->accuracy = (double)m->correct / e->n;
    m->jaccard = jaccard / e->n;

    label_stats(e, sup, prd, tp, m);

    for (size_t k = 0; k < S; k++) {
        m->species[k].species = e->species.str[k];
        m->species[k].accuracy = ratio(m->species[k].correct, m->species[k].n);
    }
    m->nspecies = S;
    qsort(m->species, S, sizeof *m->species, cmp_species_stat);

    if (confusions(e, m) < 0 || ceiling(e, m) < 0) goto oom;
    free(sup);
    free(prd);
    free(tp);
    return 0;
oom:
    free(sup);
    free(prd);
    free(tp);
    vet_metrics_free(m);
    return vet_err_nomem(err, "out of memory");
}

void vet_metrics_free(vet_metrics *m) {
    free(m->labels);
    free(m->species);
    for (size_t i = 0; m->confusions && i < m->nconfusions; i++) {
        free(m->confusions[i].gold);
        free(m->confusions[i].pred);
    }
    free(m->confusions);
    memset(m, 0, sizeof *m);
}

// --- the majority baseline --------------------------------------------------------------
int vet_eval_majority_gold(const vet_eval *e, char ***labels, size_t *nlabels, size_t *count, vet_err *err) {
    if (e->n == 0) return vet_errf(err, "no samples: no majority label");
    size_t *idx = malloc(e->n * sizeof *idx);
    if (!idx) return vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < e->n; i++) idx[i] = i;
    qsort_r(idx, e->n, sizeof *idx, cmp_gold, (void *)e);
    size_t best = idx[0], best_n = 0;
    for (size_t i = 0; i < e->n;) {
        size_t j = i + 1;
        while (j < e->n && cmp_gold(&idx[i], &idx[j], (void *)e) == 0) j++;
        if (j - i > best_n) best = idx[i], best_n = j - i;  // strictly more: ties keep the first
        i = j;
    }
    free(idx);
    const sample *s = &e->s[best];
    char **v = calloc(s->ngold ? s->ngold : 1, sizeof *v);
    if (!v) return vet_err_nomem(err, "out of memory");
    for (uint32_t k = 0; k < s->ngold; k++)
        if (!(v[k] = strdup(e->labels.str[s->gold[k]]))) {
            for (uint32_t q = 0; q < k; q++) free(v[q]);
            free(v);
            return vet_err_nomem(err, "out of memory");
        }
    *labels = v;
    *nlabels = s->ngold;
    *count = best_n;
    return 0;
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

double vet_eval_constant_accuracy(const vet_eval *e, char *const *labels, size_t n) {
    if (e->n == 0) return 0;
    // The answer as a sorted, de-duplicated list of non-empty strings.
    char **want = malloc((n ? n : 1) * sizeof *want);
    if (!want) return 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (labels[i][0]) want[k++] = labels[i];
    qsort(want, k, sizeof *want, cmp_str_ptr);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(want[u - 1], want[i]) != 0) want[u++] = want[i];
    size_t hits = 0;
    for (size_t i = 0; i < e->n; i++) {
        const sample *s = &e->s[i];
        if (s->ngold != u) continue;
        uint32_t j = 0;
        while (j < u && strcmp(e->labels.str[s->gold[j]], want[j]) == 0) j++;
        hits += j == u;
    }
    free(want);
    return (double)hits / e->n;
}

// --- the bootstrap ----------------------------------------------------------------------
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// The q-quantile of sorted v[0..n) by linear interpolation between order statistics.
static double quantile(const double *v, int n, double q) {
    double pos = q * (n - 1);
    int lo = (int)pos;
    if (lo >= n - 1) return v[n - 1];
    return v[lo] + (pos - lo) * (v[lo + 1] - v[lo]);
}

void vet_percentile_ci(double *v, int n, double ci[2]) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    ci[0] = quantile(v, n, 0.025), ci[1] = quantile(v, n, 0.975);
}

// What a resample draws from: G units, unit u the samples member[begin[u] .. begin[u+1]). Without
// groups every sample is a unit of its own (the sample bootstrap).
typedef struct {
    size_t G;
    size_t *begin, *member;
} draw_units;

static void units_free(draw_units *u) { free(u->begin), free(u->member); }

static int units_of(const vet_eval *e, draw_units *u, vet_err *err) {
    size_t n = e->n, G = vet_eval_groups(e);
    *u = (draw_units){.G = G ? G : n};
    u->begin = calloc(u->G + 1, sizeof *u->begin);
    u->member = malloc(n * sizeof *u->member);
    if (!u->begin || !u->member) return units_free(u), vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < n; i++) u->begin[(G ? (size_t)e->s[i].group : i) + 1]++;
    for (size_t g = 0; g < u->G; g++) u->begin[g + 1] += u->begin[g];
    size_t *fill = calloc(u->G + 1, sizeof *fill);
    if (!fill) return units_free(u), vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t g = G ? (size_t)e->s[i].group : i;
        u->member[u->begin[g] + fill[g]++] = i;
    }
    free(fill);
    return 0;
}

int vet_metrics_bootstrap(const vet_eval *e, int B, uint64_t seed, double acc_ci[2], double f1_ci[2],
                          vet_err *err) {
    if (e->n == 0) return vet_errf(err, "no samples to resample");
    if (B <= 0) return vet_errf(err, "bootstrap needs at least one resample");
    size_t L = e->labels.n;
    draw_units u;
    if (units_of(e, &u, err)) return -1;
    size_t *sup = malloc((L + 1) * sizeof *sup), *prd = malloc((L + 1) * sizeof *prd),
           *tp = malloc((L + 1) * sizeof *tp);
    double *acc = malloc(B * sizeof *acc), *f1 = malloc(B * sizeof *f1);
    if (!sup || !prd || !tp || !acc || !f1) {
        free(sup), free(prd), free(tp), free(acc), free(f1), units_free(&u);
        return vet_err_nomem(err, "out of memory");
    }
    vet_rng rng;
    vet_rng_seed(&rng, seed);
    for (int b = 0; b < B; b++) {
        memset(sup, 0, L * sizeof *sup);
        memset(prd, 0, L * sizeof *prd);
        memset(tp, 0, L * sizeof *tp);
        size_t correct = 0, drawn = 0;
        for (size_t k = 0; k < u.G; k++) {
            size_t g = (size_t)vet_rng_below(&rng, u.G);
            for (size_t m = u.begin[g]; m < u.begin[g + 1]; m++, drawn++) {
                const sample *s = &e->s[u.member[m]];
                correct += sample_correct(s);
                for (uint32_t j = 0; j < s->ngold; j++) sup[s->gold[j]]++;
                for (uint32_t j = 0; j < s->npred; j++) prd[s->pred[j]]++;
                for (uint32_t j = 0; j < s->ngold; j++)
                    for (uint32_t q = 0; q < s->npred; q++)
                        if (s->gold[j] == s->pred[q]) tp[s->gold[j]]++;
            }
        }
        double sum = 0;
        size_t present = 0;
        for (size_t l = 0; l < L; l++) {
            if (sup[l] + prd[l] == 0) continue;
            sum += 2.0 * tp[l] / (double)(sup[l] + prd[l]);
            present++;
        }
        acc[b] = (double)correct / (double)drawn;
        f1[b] = present ? sum / present : 0;
    }
    vet_percentile_ci(acc, B, acc_ci);
    vet_percentile_ci(f1, B, f1_ci);
    free(sup), free(prd), free(tp), free(acc), free(f1), units_free(&u);
    return 0;
}
