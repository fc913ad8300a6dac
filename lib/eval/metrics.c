// metrics.c — exact match, per-label/micro/macro P/R/F1, Jaccard, confusions, the majority
// baseline and the percentile bootstrap over a set of (gold set, predicted set) samples.
// Conventions: see metrics.h.
#include "eval/metrics.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/csv.h"
#include "base/strtab.h"
#include "data/labels.h"
#include "io/mp.h"
#include "base/rng.h"
#include "io/stream.h"

// --- samples ----------------------------------------------------------------------------
typedef struct {
    uint32_t *gold, *pred;  // label ids, unique, sorted by label string
    uint32_t ngold, npred;
    uint32_t species;
} sample;

struct vet_eval {
    vet_strtab labels, species;
    sample *s;
    size_t n, cap;
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
    e->n++;
    return 0;
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

    size_t sum_tp = 0, sum_sup = 0, sum_prd = 0;
    for (size_t l = 0; l < L; l++) {
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

    for (size_t k = 0; k < S; k++) {
        m->species[k].species = e->species.str[k];
        m->species[k].accuracy = ratio(m->species[k].correct, m->species[k].n);
    }
    m->nspecies = S;
    qsort(m->species, S, sizeof *m->species, cmp_species_stat);

    if (confusions(e, m) < 0) goto oom;
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

int vet_metrics_bootstrap(const vet_eval *e, int B, uint64_t seed, double acc_ci[2], double f1_ci[2],
                          vet_err *err) {
    if (e->n == 0) return vet_errf(err, "no samples to resample");
    if (B <= 0) return vet_errf(err, "bootstrap needs at least one resample");
    size_t L = e->labels.n, n = e->n;
    size_t *sup = malloc((L + 1) * sizeof *sup), *prd = malloc((L + 1) * sizeof *prd),
           *tp = malloc((L + 1) * sizeof *tp);
    double *acc = malloc(B * sizeof *acc), *f1 = malloc(B * sizeof *f1);
    if (!sup || !prd || !tp || !acc || !f1) {
        free(sup), free(prd), free(tp), free(acc), free(f1);
        return vet_err_nomem(err, "out of memory");
    }
    vet_rng rng;
    vet_rng_seed(&rng, seed);
    for (int b = 0; b < B; b++) {
        memset(sup, 0, L * sizeof *sup);
        memset(prd, 0, L * sizeof *prd);
        memset(tp, 0, L * sizeof *tp);
        size_t correct = 0;
        for (size_t k = 0; k < n; k++) {
            const sample *s = &e->s[vet_rng_below(&rng, n)];
            correct += sample_correct(s);
            for (uint32_t j = 0; j < s->ngold; j++) sup[s->gold[j]]++;
            for (uint32_t j = 0; j < s->npred; j++) prd[s->pred[j]]++;
            for (uint32_t j = 0; j < s->ngold; j++)
                for (uint32_t q = 0; q < s->npred; q++)
                    if (s->gold[j] == s->pred[q]) tp[s->gold[j]]++;
        }
        double sum = 0;
        size_t present = 0;
        for (size_t l = 0; l < L; l++) {
            if (sup[l] + prd[l] == 0) continue;
            sum += 2.0 * tp[l] / (double)(sup[l] + prd[l]);
            present++;
        }
        acc[b] = (double)correct / n;
        f1[b] = present ? sum / present : 0;
    }
    qsort(acc, B, sizeof *acc, cmp_double);
    qsort(f1, B, sizeof *f1, cmp_double);
    acc_ci[0] = quantile(acc, B, 0.025), acc_ci[1] = quantile(acc, B, 0.975);
    f1_ci[0] = quantile(f1, B, 0.025), f1_ci[1] = quantile(f1, B, 0.975);
    free(sup), free(prd), free(tp), free(acc), free(f1);
    return 0;
}

// --- reading predictions: stream, CSV, JSON lines ---------------------------------------
enum { COL_ID, COL_SPECIES, COL_GOLD, COL_PRED, COL_TEXT, COL_TOKENS, COL_MS, NCOLS };
static const char *col_names[NCOLS] = {"id", "species", "gold", "pred", "text", "tokens", "ms"};

struct vet_pred_reader {
    int format;
    char *name;          // for messages: the path or "<stdin>"
    vet_reader *stream;  // VET_PRED_STREAM
    FILE *f;             // CSV and JSON lines
    vet_csv *csv;
    long col[NCOLS];     // CSV column of each field, -1 when absent
    size_t ncols;
    char *line;          // JSON lines
    size_t cap;
    long lineno;
    uint64_t records;
};

// A decimal integer as a fresh string (NULL when out of memory).
static char *str_of_int(long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return strdup(buf);
}

int vet_split_labels(const char *s, size_t len, char ***out, size_t *n, vet_err *err) {
    size_t cap = 1;
    for (size_t i = 0; i < len; i++) cap += s[i] == ';';
    char **v = calloc(cap, sizeof *v);
    if (!v) return vet_err_nomem(err, "out of memory");
    size_t k = 0, i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && s[j] != ';') j++;
        size_t a = i, b = j;
        while (a < b && isspace((unsigned char)s[a])) a++;
        while (b > a && isspace((unsigned char)s[b - 1])) b--;
        if (b > a && !(v[k++] = strndup(s + a, b - a))) {
            vet_labels_free_list(v, k - 1);
            return vet_err_nomem(err, "out of memory");
        }
        i = j + 1;
    }
    *out = v;
    *n = k;
    return 0;
}

void vet_pred_clear(vet_pred *rec) {
    free(rec->id);
    free(rec->species);
    free(rec->text);
    vet_labels_free_list(rec->gold, rec->ngold);
    vet_labels_free_list(rec->pred, rec->npred);
    memset(rec, 0, sizeof *rec);
}

const char *vet_pred_format_name(const vet_pred_reader *r) {
    return r->format == VET_PRED_STREAM ? "stream" : r->format == VET_PRED_CSV ? "csv" : "jsonl";
}

void vet_pred_close(vet_pred_reader *r) {
    if (!r) return;
    vet_reader_close(r->stream);
    vet_csv_close(r->csv);
    if (r->f && r->f != stdin) fclose(r->f);
    free(r->line);
    free(r->name);
    free(r);
}

static int csv_header(vet_pred_reader *r, vet_err *err) {
    int rc = vet_csv_next(r->csv, err);
    if (rc < 0) return -1;
    if (rc == VET_CSV_EOF) return vet_errf(err, "%s: empty input (expected a header row with gold and pred)", r->name);
    r->ncols = vet_csv_nfields(r->csv);
    for (int c = 0; c < NCOLS; c++) r->col[c] = -1;
    for (size_t i = 0; i < r->ncols; i++) {
        const char *h = vet_csv_field(r->csv, i, NULL);
        for (int c = 0; c < NCOLS; c++)
            if (strcasecmp(h, col_names[c]) == 0 && r->col[c] < 0) r->col[c] = (long)i;
    }
    for (int c = COL_GOLD; c <= COL_PRED; c++)
        if (r->col[c] < 0)
            return vet_errf(err, "%s:%ld: no \"%s\" column (the header row must name id, gold, pred; "
                            "species optional)", r->name, vet_csv_line(r->csv), col_names[c]);
    return 0;
}

vet_pred_reader *vet_pred_open(const char *path, int format, vet_err *err) {
    int is_stdin = !path || strcmp(path, "-") == 0;
    vet_pred_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(is_stdin ? "<stdin>" : path))) {
        free(r);
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    r->f = is_stdin ? stdin : fopen(path, "rb");
    if (!r->f) {
        vet_err_io(err, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    if (format == VET_PRED_SNIFF) {
        // One byte is enough and can be pushed back into stdin: a zstd frame starts 0x28 B5 2F FD.
        int c = getc(r->f);
        if (c == EOF && ferror(r->f)) {
            vet_err_io(err, "%s: read failed: %s", r->name, strerror(errno));
            goto fail;
        }
        if (c == EOF) {
            vet_errf(err, "%s: empty input (no predictions)", r->name);
            goto fail;
        }
        ungetc(c, r->f);
        format = c == 0x28 ? VET_PRED_STREAM : c == '{' ? VET_PRED_JSONL : VET_PRED_CSV;
    }
    r->format = format;
    if (format == VET_PRED_STREAM) {
        if (!is_stdin) fclose(r->f);  // the stream reader opens the path itself
        r->f = NULL;
        r->stream = vet_reader_open(is_stdin ? "-" : path, "predictions", err);
        if (!r->stream) {
            goto fail;
        }
    } else if (format == VET_PRED_CSV) {
        if (!(r->csv = vet_csv_open(r->f, r->name, err)) || csv_header(r, err) < 0) goto fail;
    }
    return r;
fail:
    vet_pred_close(r);
    return NULL;
}

// --- one record from each format ---

static int stream_next(vet_pred_reader *r, vet_pred *rec, vet_err *err) {
    const msgpack_object *o;
    int rc = vet_reader_next(r->stream, &o, err);
    if (rc <= 0) {
        return rc;
    }
    uint64_t k = vet_reader_records(r->stream);
    const msgpack_object *v;
    if ((v = mp_get(o, "id")) && v->type == MSGPACK_OBJECT_STR)
        rec->id = strndup(v->via.str.ptr, v->via.str.size);
    else if (v && (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER || v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER))
        rec->id = str_of_int(v->via.i64);
    else
        rec->id = str_of_int((long long)k);
    if ((v = mp_get(o, "species")) && v->type == MSGPACK_OBJECT_STR)
        rec->species = strndup(v->via.str.ptr, v->via.str.size);
    else
        rec->species = strdup("");
    if ((v = mp_get(o, "text")) && v->type == MSGPACK_OBJECT_STR)
        rec->text = strndup(v->via.str.ptr, v->via.str.size);
    else
        rec->text = strdup("");
    if (!rec->id || !rec->species || !rec->text) return vet_err_nomem(err, "out of memory");
    rec->tokens = -1;
    rec->ms = -1;
    if (mp_get(o, "tokens") && mp_get_int(o, "tokens", &rec->tokens, err) < 0) goto bad;
    if (mp_get(o, "ms") && mp_get_double(o, "ms", &rec->ms, err) < 0) goto bad;
    if (mp_get_str_array(o, "gold", &rec->gold, &rec->ngold, err) < 0) goto bad;
    if (mp_get_str_array(o, "pred", &rec->pred, &rec->npred, err) < 0) goto bad;
    return 1;
bad:
    return vet_err_prefix(err, "%s: record %llu", r->name, (unsigned long long)k);
}

static int parse_int(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno) return -1;
    *out = v;
    return 0;
}

static int csv_next(vet_pred_reader *r, vet_pred *rec, vet_err *err) {
    int rc = vet_csv_next(r->csv, err);
    if (rc == VET_CSV_EOF) return 0;
    if (rc < 0) return -1;
    long line = vet_csv_line(r->csv);
    size_t nf = vet_csv_nfields(r->csv);
    if (nf != r->ncols)
        return vet_errf(err, "%s:%ld: %zu fields, the header has %zu", r->name, line, nf, r->ncols);
    size_t len;
    const char *f;
    f = r->col[COL_ID] >= 0 ? vet_csv_field(r->csv, r->col[COL_ID], NULL) : NULL;
    if (f) rec->id = strdup(f);
    else rec->id = str_of_int((long long)r->records + 1);
    rec->species = strdup(r->col[COL_SPECIES] >= 0 ? vet_csv_field(r->csv, r->col[COL_SPECIES], NULL) : "");
    rec->text = strdup(r->col[COL_TEXT] >= 0 ? vet_csv_field(r->csv, r->col[COL_TEXT], NULL) : "");
    if (!rec->id || !rec->species || !rec->text) return vet_err_nomem(err, "out of memory");
    rec->tokens = -1;
    rec->ms = -1;
    if (r->col[COL_TOKENS] >= 0 && *(f = vet_csv_field(r->csv, r->col[COL_TOKENS], NULL)) &&
        parse_int(f, &rec->tokens) < 0)
        return vet_errf(err, "%s:%ld: tokens \"%s\" is not an integer", r->name, line, f);
    if (r->col[COL_MS] >= 0 && *(f = vet_csv_field(r->csv, r->col[COL_MS], NULL)) && parse_double(f, &rec->ms) < 0)
        return vet_errf(err, "%s:%ld: ms \"%s\" is not a number", r->name, line, f);
    f = vet_csv_field(r->csv, r->col[COL_GOLD], &len);
    if (vet_split_labels(f, len, &rec->gold, &rec->ngold, err) < 0) return -1;
    f = vet_csv_field(r->csv, r->col[COL_PRED], &len);
    if (vet_split_labels(f, len, &rec->pred, &rec->npred, err) < 0) return -1;
    return 1;
}

// A JSON label list: an array of strings (or integers), or one ';'-separated string.
static int json_labels(const json_t *v, const char *key, char ***out, size_t *n, vet_err *err) {
    if (!v) return vet_errf(err, "missing \"%s\"", key);
    if (json_is_string(v)) return vet_split_labels(json_string_value(v), json_string_length(v), out, n, err);
    if (!json_is_array(v)) return vet_errf(err, "\"%s\" is neither an array of labels nor a ';'-separated string", key);
    size_t m = json_array_size(v);
    char **a = calloc(m ? m : 1, sizeof *a);
    if (!a) return vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < m; i++) {
        const json_t *x = json_array_get(v, i);
        if (json_is_string(x))
            a[i] = strdup(json_string_value(x));
        else if (json_is_integer(x))
            a[i] = str_of_int(json_integer_value(x));
        else {
            vet_labels_free_list(a, i);
            return vet_errf(err, "\"%s\"[%zu] is not a string", key, i);
        }
        if (!a[i]) {
            vet_labels_free_list(a, i);
            return vet_err_nomem(err, "out of memory");
        }
    }
    *out = a;
    *n = m;
    return 0;
}

static int jsonl_next(vet_pred_reader *r, vet_pred *rec, vet_err *err) {
    ssize_t got;
    for (;;) {
        errno = 0;
        got = getline(&r->line, &r->cap, r->f);
        if (got < 0) {
            if (ferror(r->f)) {
                return vet_err_io(err, "%s: read failed: %s", r->name, strerror(errno));
            }
            return 0;
        }
        r->lineno++;
        size_t i = 0;
        while (i < (size_t)got && isspace((unsigned char)r->line[i])) i++;
        if (i < (size_t)got) break;  // skip blank lines
    }
    json_error_t jerr;
    json_t *o = json_loadb(r->line, (size_t)got, 0, &jerr);
    if (!o) return vet_errf(err, "%s:%ld: not JSON (%s)", r->name, r->lineno, jerr.text);
    int rc = 1;
    if (!json_is_object(o)) {
        rc = vet_errf(err, "%s:%ld: not a JSON object", r->name, r->lineno);
        goto done;
    }
    json_t *v = json_object_get(o, "id");
    if (json_is_string(v))
        rec->id = strdup(json_string_value(v));
    else if (json_is_integer(v))
        rec->id = str_of_int(json_integer_value(v));
    else
        rec->id = str_of_int((long long)r->records + 1);
    v = json_object_get(o, "species");
    rec->species = strdup(json_is_string(v) ? json_string_value(v) : "");
    v = json_object_get(o, "text");
    rec->text = strdup(json_is_string(v) ? json_string_value(v) : "");
    if (!rec->id || !rec->species || !rec->text) {
        rc = vet_err_nomem(err, "out of memory");
        goto done;
    }
    rec->tokens = -1;
    rec->ms = -1;
    if ((v = json_object_get(o, "tokens")) && !json_is_null(v)) {
        if (!json_is_integer(v)) {
            rc = vet_errf(err, "%s:%ld: \"tokens\" is not an integer", r->name, r->lineno);
            goto done;
        }
        rec->tokens = json_integer_value(v);
    }
    if ((v = json_object_get(o, "ms")) && !json_is_null(v)) {
        if (!json_is_number(v)) {
            rc = vet_errf(err, "%s:%ld: \"ms\" is not a number", r->name, r->lineno);
            goto done;
        }
        rec->ms = json_number_value(v);
    }
    if (json_labels(json_object_get(o, "gold"), "gold", &rec->gold, &rec->ngold, err) < 0 ||
        json_labels(json_object_get(o, "pred"), "pred", &rec->pred, &rec->npred, err) < 0)
        rc = vet_err_prefix(err, "%s:%ld", r->name, r->lineno);
done:
    json_decref(o);
    return rc;
}

int vet_pred_next(vet_pred_reader *r, vet_pred *rec, vet_err *err) {
    memset(rec, 0, sizeof *rec);
    int rc = r->format == VET_PRED_STREAM ? stream_next(r, rec, err)
             : r->format == VET_PRED_CSV  ? csv_next(r, rec, err)
                                          : jsonl_next(r, rec, err);
    if (rc != 1) {
        vet_pred_clear(rec);
        return rc;
    }
    r->records++;
    return 1;
}
