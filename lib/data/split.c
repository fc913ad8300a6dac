// split.c — see split.h.
#include "data/split.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <utf8proc.h>

#include "base/numparse.h"
#include "base/rng.h"
#include "base/strtab.h"
#include "base/trim.h"

const char *vet_split_name(int k) {
    static const char *names[VET_SPLIT_N] = {"train", "val", "test"};
    return (k >= 0 && k < VET_SPLIT_N) ? names[k] : "?";
}

// Shares are weights of any scale (80/10/10, 0.8/0.1/0.1), but each at most this, so that their
// sum stays finite and their ratios exact enough.
#define VET_SPLIT_MAX_SHARE 1e12

int vet_split_parse_shares(const char *spec, double share[3], vet_err *err) {
    if (!spec) return vet_err_kindf(err, VET_E_USAGE, "--split: missing value (expected e.g. 80/10/10)");
    const char *p = spec;
    double v[3], sum = 0;
    for (int k = 0; k < 3; k++) {
        char *end;
        errno = 0;
        v[k] = vet_strtod_decimal(p, &end);
        if (end == p || errno || !(v[k] >= 0 && v[k] <= VET_SPLIT_MAX_SHARE))
            return vet_err_kindf(err, VET_E_USAGE, "--split '%s': expected three numbers in [0, %g] like 80/10/10",
                                 spec, VET_SPLIT_MAX_SHARE);
        p = end;
        if (k < 2) {
            if (*p != '/')
                return vet_err_kindf(err, VET_E_USAGE,
                                     "--split '%s': expected three numbers separated by '/' (like 80/10/10)", spec);
            p++;
        }
        sum += v[k];
    }
    if (*p) return vet_err_kindf(err, VET_E_USAGE, "--split '%s': trailing characters after the third number", spec);
    if (!(sum > 0)) return vet_err_kindf(err, VET_E_USAGE, "--split '%s': the shares are all zero", spec);
    for (int k = 0; k < 3; k++) share[k] = v[k] / sum;
    return 0;
}

int vet_split_parse_train_val(const char *spec, double share[3], vet_err *err) {
    const char *slash = spec ? strchr(spec, '/') : NULL;
    if (!slash || strchr(slash + 1, '/'))
        return vet_err_kindf(err, VET_E_USAGE,
                             "--split '%s' with --fold: expected two shares TRAIN/VAL like 80/10 (the test split "
                             "is the fold)", spec ? spec : "");
    // "A/B" read as the three shares "A/B/0", so the two forms share one set of rules and messages.
    char three[512];
    if ((size_t)snprintf(three, sizeof three, "%s/0", spec) >= sizeof three)
        return vet_err_kindf(err, VET_E_USAGE, "--split: '%.40s...' is too long", spec);
    if (vet_split_parse_shares(three, share, err) != 0) {
        vet_err_kindf(err, VET_E_USAGE, "--split '%s' with --fold: expected two numbers in [0, %g] like 80/10, "
                      "not both zero", spec, VET_SPLIT_MAX_SHARE);
        return -1;
    }
    return 0;
}

int vet_split_parse_fold(const char *spec, int *i, int *k, vet_err *err) {
    const char *slash = spec ? strchr(spec, '/') : NULL;
    long fi, fk;
    char first[32];
    size_t n = slash ? (size_t)(slash - spec) : 0;
    vet_err e = {0};
    if (!slash || n >= sizeof first ||
        (memcpy(first, spec, n), first[n] = 0, vet_parse_long(slash + 1, 2, VET_SPLIT_MAX_BINS, &fk, &e) != 0) ||
        vet_parse_long(first, 0, fk - 1, &fi, &e) != 0)
        return vet_err_kindf(err, VET_E_USAGE,
                             "--fold '%s': expected I/K, fold I of K folds, 0 <= I < K, 2 <= K <= %d (like 0/10)",
                             spec ? spec : "", VET_SPLIT_MAX_BINS);
    *i = (int)fi;
    *k = (int)fk;
    return 0;
}

size_t vet_split_normalize(const char *s, size_t n, char *out) {
    size_t o = 0;
    int pending_space = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (vet_is_blank(c)) {
            pending_space = o > 0;  // leading whitespace is dropped
            continue;
        }
        if (pending_space) out[o++] = ' ';
        pending_space = 0;
        out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
    }
    out[o] = '\0';
    return o;
}

// Whitespace among code points after NFKC: ASCII's, and what NFKC leaves as it is (no-break and
// the other fixed-width spaces become U+0020 already): NEL, the Ogham space mark and the line
// and paragraph separators.
static int is_unicode_space(utf8proc_int32_t cp) {
    if (cp < 0x80) return vet_is_blank((unsigned char)cp);
    if (cp == 0x85) return 1;
    utf8proc_category_t cat = utf8proc_category(cp);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

// mapped[0..n) is valid UTF-8 (utf8proc's output): the same whitespace rule as
// vet_split_normalize, over code points. out holds n + 1 bytes (a run of spaces only shrinks).
static void collapse_spaces(const utf8proc_uint8_t *mapped, utf8proc_ssize_t n, char *out) {
    size_t o = 0;
    int pending_space = 0;
    for (utf8proc_ssize_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t len = utf8proc_iterate(mapped + i, n - i, &cp);
        if (len <= 0) break;  // cannot happen: utf8proc wrote it
        if (is_unicode_space(cp)) {
            pending_space = o > 0;
        } else {
            if (pending_space) out[o++] = ' ';
            pending_space = 0;
            memcpy(out + o, mapped + i, (size_t)len);
            o += (size_t)len;
        }
        i += len;
    }
    out[o] = '\0';
}

char *vet_split_key(const char *s, size_t n) {
    int ascii = 1;
    for (size_t i = 0; i < n && ascii; i++) ascii = (unsigned char)s[i] < 0x80;
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t m = UTF8PROC_ERROR_INVALIDUTF8;
    // The DLO notes are ASCII: they never reach utf8proc, and their keys are what they were.
    if (!ascii && n <= (size_t)PTRDIFF_MAX)
        m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &mapped,
                         UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    if (m == UTF8PROC_ERROR_NOMEM) return NULL;
    if (m < 0) {  // ASCII, or not UTF-8 (utf8proc refuses it): the bytes as they are
        char *out = malloc(n + 1);
        if (out) vet_split_normalize(s, n, out);
        return out;
    }
    char *out = malloc((size_t)m + 1);
    if (out) collapse_spaces(mapped, m, out);
    free(mapped);
    return out;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *vet_split_label(char *const *codes, size_t n) {
    char **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) return NULL;
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        sorted[i] = codes[i];
        len += strlen(codes[i]) + 1;
    }
    qsort(sorted, n, sizeof *sorted, cmp_str_ptr);
    char *out = malloc(len);
    if (!out) {
        free(sorted);
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0) continue;  // a set: drop repeats
        if (o > 0) out[o++] = ';';
        size_t l = strlen(sorted[i]);
        memcpy(out + o, sorted[i], l);
        o += l;
    }
    out[o] = '\0';
    free(sorted);
    return out;
}

int64_t vet_split_index_keys(char *const *keys, size_t n, int32_t *id_of, vet_err *err) {
    vet_strtab t = {0};
    for (size_t i = 0; i < n; i++) {
        long id = vet_strtab_intern(&t, keys[i]);
        if (id < 0) {
            vet_strtab_free(&t);
            return vet_err_nomem(err, "out of memory indexing %zu keys", n);
        }
        id_of[i] = (int32_t)id;
    }
    int64_t n_ids = (int64_t)t.n;
    vet_strtab_free(&t);
    return n_ids;
}

// Order of strata: more samples first, then the smaller id.
typedef struct {
    int64_t size;
    int32_t id;
} stratum_key;
static int cmp_stratum(const void *a, const void *b) {
    const stratum_key *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

// The bin with the largest value among those with a positive share (ties: lower bin).
static int argmax_allowed(const double *v, const double *share, int bins) {
    int best = -1;
    for (int k = 0; k < bins; k++)
        if (share[k] > 0 && (best < 0 || v[k] > v[best])) best = k;
    return best;
}

// What the assignment knows about groups and strata, built step by step by the helpers below.
typedef struct {
    size_t n, G, S;                // samples, groups, strata
    int bins;                      // splits (3) or folds
    const int32_t *group_of;       // (n) the caller's
    const int32_t *stratum_of;     // (n) the caller's, or NULL: one stratum
    int64_t *group_size;           // (G) samples per group
    int32_t *group_stratum;        // (G) each group's majority stratum
    uint8_t *group_split;          // (G) the answer, per group: a bin
    int64_t *stratum_size;         // (S) samples per stratum (of its groups)
    int32_t *groups_by_stratum;    // (G) group ids, stratum by stratum
    int64_t *stratum_begin;        // (S + 1) where each stratum's groups start in groups_by_stratum
} split_work;

static void work_free(split_work *w) {
    free(w->group_size);
    free(w->group_stratum);
    free(w->group_split);
    free(w->stratum_size);
    free(w->groups_by_stratum);
    free(w->stratum_begin);
}

static int work_alloc(split_work *w, vet_err *err) {
    size_t G = w->G, S = w->S;
    w->group_size = calloc(G + 1, sizeof *w->group_size);
    w->group_stratum = malloc((G + 1) * sizeof *w->group_stratum);
    w->group_split = malloc(G + 1);
    w->stratum_size = calloc(S, sizeof *w->stratum_size);
    w->groups_by_stratum = malloc((G + 1) * sizeof *w->groups_by_stratum);
    w->stratum_begin = calloc(S + 1, sizeof *w->stratum_begin);
    if (!w->group_size || !w->group_stratum || !w->group_split || !w->stratum_size || !w->groups_by_stratum ||
        !w->stratum_begin)
        return vet_err_nomem(err, "splitting %zu samples: out of memory", w->n);
    return 0;
}

// Checks every sample's group and stratum id and counts the samples of each group.
static int count_group_sizes(split_work *w, vet_err *err) {
    for (size_t i = 0; i < w->n; i++) {
        int32_t g = w->group_of[i];
        if (g < 0 || (size_t)g >= w->G ||
            (w->stratum_of && (w->stratum_of[i] < 0 || (size_t)w->stratum_of[i] >= w->S)))
            return vet_errf(err, "splitting: sample %zu has a group or stratum out of range (a bug in vet-pack: please report it)", i);
        w->group_size[g]++;
    }
    return 0;
}

// Step 1: each group's stratum is its majority stratum (ties: the smaller id), and each stratum
// counts the samples of its groups. The samples are listed group by group (a counting sort), then
// each group's strata are counted in a scratch counter that is zeroed again after the group.
static int assign_group_strata(split_work *w, vet_err *err) {
    if (!w->stratum_of) {  // one stratum holds everything
        for (size_t g = 0; g < w->G; g++) w->group_stratum[g] = 0, w->stratum_size[0] += w->group_size[g];
        return 0;
    }
    int64_t *gbeg = calloc(w->G + 1, sizeof *gbeg), *fill = calloc(w->G + 1, sizeof *fill);
    int64_t *count = calloc(w->S, sizeof *count);
    int32_t *by_group = malloc((w->n + 1) * sizeof *by_group);
    int rc = 0;
    if (!gbeg || !fill || !count || !by_group) {
        rc = vet_err_nomem(err, "splitting: out of memory");
        goto done;
    }
    for (size_t g = 0; g < w->G; g++) gbeg[g + 1] = gbeg[g] + w->group_size[g];
    for (size_t i = 0; i < w->n; i++) {
        int32_t g = w->group_of[i];
        by_group[gbeg[g] + fill[g]++] = (int32_t)i;
    }
    for (size_t g = 0; g < w->G; g++) {
        int32_t best = -1;
        for (int64_t j = gbeg[g]; j < gbeg[g + 1]; j++) count[w->stratum_of[by_group[j]]]++;
        for (int64_t j = gbeg[g]; j < gbeg[g + 1]; j++) {
            int32_t s = w->stratum_of[by_group[j]];
            if (best < 0 || count[s] > count[best] || (count[s] == count[best] && s < best)) best = s;
        }
        for (int64_t j = gbeg[g]; j < gbeg[g + 1]; j++) count[w->stratum_of[by_group[j]]] = 0;
        // An empty group (no sample names it) goes to stratum 0 and weighs nothing.
        w->group_stratum[g] = best < 0 ? 0 : best;
        w->stratum_size[w->group_stratum[g]] += w->group_size[g];
    }
done:
    free(gbeg);
    free(fill);
    free(count);
    free(by_group);
    return rc;
}

// Lists the groups stratum by stratum, in group id order within a stratum (a counting sort).
static int list_groups_by_stratum(split_work *w, vet_err *err) {
    for (size_t g = 0; g < w->G; g++) w->stratum_begin[w->group_stratum[g] + 1]++;
    for (size_t s = 0; s < w->S; s++) w->stratum_begin[s + 1] += w->stratum_begin[s];
    int64_t *cursor = calloc(w->S, sizeof *cursor);
    if (!cursor) return vet_err_nomem(err, "splitting: out of memory");
    for (size_t g = 0; g < w->G; g++) {
        int32_t s = w->group_stratum[g];
        w->groups_by_stratum[w->stratum_begin[s] + cursor[s]++] = (int32_t)g;
    }
    free(cursor);
    return 0;
}

// Step 2: a stratum's quotas, seat by seat: each of its ns seats goes to the bin furthest
// below its ideal count (largest remainder for positive ideals).
static void stratum_quotas(int64_t ns, const double *ideal, const double *share, int bins, double *quota) {
    double gap[VET_SPLIT_MAX_BINS];
    for (int k = 0; k < bins; k++) quota[k] = 0;
    for (int64_t seat = 0; seat < ns; seat++) {
        for (int k = 0; k < bins; k++) gap[k] = ideal[k] - quota[k];
        quota[argmax_allowed(gap, share, bins)] += 1;
    }
}

// Step 3: shuffles the stratum's groups and deals them out whole, each to the bin furthest
// below its quota. Returns the samples given to each bin in given[bins].
static void deal_stratum(split_work *w, int32_t s, const double *quota, const double *share, vet_rng *rng,
                         double *given) {
    int32_t *gs = w->groups_by_stratum + w->stratum_begin[s];
    int64_t ng = w->stratum_begin[s + 1] - w->stratum_begin[s];
    for (int64_t i = ng - 1; i > 0; i--) {  // Fisher-Yates
        int64_t j = (int64_t)vet_rng_below(rng, (uint64_t)i + 1);
        int32_t t = gs[i];
        gs[i] = gs[j];
        gs[j] = t;
    }
    double gap[VET_SPLIT_MAX_BINS];
    for (int k = 0; k < w->bins; k++) given[k] = 0;
    for (int64_t i = 0; i < ng; i++) {
        for (int k = 0; k < w->bins; k++) gap[k] = quota[k] - given[k];
        int k = argmax_allowed(gap, share, w->bins);
        w->group_split[gs[i]] = (uint8_t)k;
        given[k] += (double)w->group_size[gs[i]];
    }
}

// Steps 2-4 over every stratum, largest first; c_k = ideal_k - given_k carries the rounding to
// the next stratum (error diffusion).
static int deal_strata(split_work *w, const double *share, uint64_t seed, vet_err *err) {
    stratum_key *order = malloc(w->S * sizeof *order);
    if (!order) return vet_err_nomem(err, "splitting: out of memory");
    for (size_t s = 0; s < w->S; s++) order[s] = (stratum_key){w->stratum_size[s], (int32_t)s};
    qsort(order, w->S, sizeof *order, cmp_stratum);
    vet_rng rng;
    vet_rng_seed(&rng, seed);
    double carry[VET_SPLIT_MAX_BINS] = {0};
    for (size_t si = 0; si < w->S; si++) {
        int32_t s = order[si].id;
        int64_t ns = w->stratum_size[s];
        if (ns == 0) continue;
        double ideal[VET_SPLIT_MAX_BINS], quota[VET_SPLIT_MAX_BINS], given[VET_SPLIT_MAX_BINS];
        for (int k = 0; k < w->bins; k++) ideal[k] = share[k] * (double)ns + carry[k];
        stratum_quotas(ns, ideal, share, w->bins, quota);
        deal_stratum(w, s, quota, share, &rng, given);
        for (int k = 0; k < w->bins; k++) carry[k] = ideal[k] - given[k];
    }
    free(order);
    return 0;
}

int vet_split_assign_bins(const int32_t *group_of, int32_t n_groups, const int32_t *stratum_of, int32_t n_strata,
                          size_t n, int bins, const double *share, uint64_t seed, uint8_t *bin_of, vet_err *err) {
    if (!stratum_of) n_strata = 1;
    if (n_groups < 0 || n_strata < 1 || bins < 1 || bins > VET_SPLIT_MAX_BINS)
        return vet_errf(err, "splitting: %d groups, %d strata, %d bins (a bug in vet-pack: please report it)",
                        (int)n_groups, (int)n_strata, bins);
    double zero[VET_SPLIT_MAX_BINS] = {0};
    if (argmax_allowed(zero, share, bins) < 0)
        return vet_errf(err, "splitting: every share of --split is zero (give at least one above zero)");
    split_work w = {.n = n, .G = (size_t)n_groups, .S = (size_t)n_strata, .bins = bins, .group_of = group_of,
                    .stratum_of = stratum_of};
    int rc = -1;
    if (work_alloc(&w, err) == 0 && count_group_sizes(&w, err) == 0 && assign_group_strata(&w, err) == 0 &&
        list_groups_by_stratum(&w, err) == 0 && deal_strata(&w, share, seed, err) == 0) {
        for (size_t i = 0; i < n; i++) bin_of[i] = w.group_split[group_of[i]];
        rc = 0;
    }
    work_free(&w);
    return rc;
}

int vet_split_assign(const int32_t *group_of, int32_t n_groups, const int32_t *stratum_of,
                     int32_t n_strata, size_t n, const double share[3], uint64_t seed,
                     uint8_t *split_of, vet_err *err) {
    return vet_split_assign_bins(group_of, n_groups, stratum_of, n_strata, n, VET_SPLIT_N, share, seed, split_of,
                                 err);
}
