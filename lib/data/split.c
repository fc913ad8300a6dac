// split.c — see split.h.
#include "data/split.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/strtab.h"

const char *vet_split_name(int k) {
    static const char *names[VET_SPLIT_N] = {"train", "val", "test"};
    return (k >= 0 && k < VET_SPLIT_N) ? names[k] : "?";
}

int vet_split_parse_shares(const char *spec, double share[3], vet_err *err) {
    if (!spec) return vet_errf(err, "--split: missing value (expected e.g. 80/10/10)");
    const char *p = spec;
    double v[3], sum = 0;
    for (int k = 0; k < 3; k++) {
        char *end;
        errno = 0;
        v[k] = strtod(p, &end);
        if (end == p || errno || !isfinite(v[k]) || v[k] < 0 || isspace((unsigned char)*p))
            return vet_errf(err, "--split '%s': expected three non-negative numbers like 80/10/10", spec);
        p = end;
        if (k < 2) {
            if (*p != '/')
                return vet_errf(err, "--split '%s': expected three numbers separated by '/' (like 80/10/10)", spec);
            p++;
        }
        sum += v[k];
    }
    if (*p) return vet_errf(err, "--split '%s': trailing characters after the third number", spec);
    if (!(sum > 0)) return vet_errf(err, "--split '%s': the shares are all zero", spec);
    for (int k = 0; k < 3; k++) share[k] = v[k] / sum;
    return 0;
}

static int is_ascii_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

size_t vet_split_normalize(const char *s, size_t n, char *out) {
    size_t o = 0;
    int pending_space = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_ascii_space(c)) {
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

// The split with the largest value among those with a positive share (ties: lower split).
static int argmax_allowed(const double v[3], const double share[3]) {
    int best = -1;
    for (int k = 0; k < VET_SPLIT_N; k++)
        if (share[k] > 0 && (best < 0 || v[k] > v[best])) best = k;
    return best;
}

int vet_split_assign(const int32_t *group_of, int32_t n_groups, const int32_t *stratum_of,
                     int32_t n_strata, size_t n, const double share[3], uint64_t seed,
                     uint8_t *split_of, vet_err *err) {
    if (!stratum_of) n_strata = 1;
    if (n_groups < 0 || n_strata < 1) return vet_errf(err, "vet_split_assign: bad group/stratum counts");
    if (argmax_allowed((double[3]){0, 0, 0}, share) < 0)
        return vet_errf(err, "vet_split_assign: every share is zero");
    int ret = -1;
    size_t G = (size_t)n_groups, S = (size_t)n_strata;
    int64_t *group_size = calloc(G + 1, sizeof *group_size);
    int32_t *group_stratum = malloc((G + 1) * sizeof *group_stratum);
    uint8_t *group_split = malloc(G + 1);
    int64_t *stratum_size = calloc(S, sizeof *stratum_size);
    stratum_key *stratum_order = malloc(S * sizeof *stratum_order);
    int32_t *groups_by_stratum = malloc((G + 1) * sizeof *groups_by_stratum);
    int64_t *stratum_begin = calloc(S + 1, sizeof *stratum_begin);
    int32_t *by_group = malloc((n + 1) * sizeof *by_group);
    if (!group_size || !group_stratum || !group_split || !stratum_size || !stratum_order ||
        !groups_by_stratum || !stratum_begin || !by_group) {
        vet_err_nomem(err, "vet_split_assign: out of memory (%zu samples)", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (group_of[i] < 0 || group_of[i] >= n_groups ||
            (stratum_of && (stratum_of[i] < 0 || stratum_of[i] >= n_strata))) {
            vet_errf(err, "vet_split_assign: sample %zu: group or stratum out of range", i);
            goto done;
        }
        group_size[group_of[i]]++;
    }

    // 1. Each group's stratum: its majority stratum. Samples listed group by group (counting
    // sort), then each group's strata counted with a scratch counter per stratum.
    {
        int64_t *gbeg = calloc(G + 1, sizeof *gbeg);
        int64_t *count = calloc(S, sizeof *count);
        int64_t *fill = calloc(G + 1, sizeof *fill);
        if (!gbeg || !count || !fill) {
            free(gbeg);
            free(count);
            free(fill);
            vet_err_nomem(err, "vet_split_assign: out of memory");
            goto done;
        }
        for (size_t g = 0; g < G; g++) gbeg[g + 1] = gbeg[g] + group_size[g];
        for (size_t i = 0; i < n; i++) {
            int32_t g = group_of[i];
            by_group[gbeg[g] + fill[g]++] = (int32_t)i;
        }
        for (size_t g = 0; g < G; g++) {
            int32_t best = 0;
            if (stratum_of) {
                best = -1;
                for (int64_t j = gbeg[g]; j < gbeg[g + 1]; j++) count[stratum_of[by_group[j]]]++;
                for (int64_t j = gbeg[g]; j < gbeg[g + 1]; j++) {
                    int32_t s = stratum_of[by_group[j]];
                    if (best < 0 || count[s] > count[best] || (count[s] == count[best] && s < best)) best = s;
                }
                for (int64_t j = gbeg[g]; j < gbeg[g + 1]; j++) count[stratum_of[by_group[j]]] = 0;
            }
            group_stratum[g] = best;
            stratum_size[best] += group_size[g];
        }
        free(gbeg);
        free(count);
        free(fill);
    }

    // Groups listed stratum by stratum, in group id order (then shuffled per stratum).
    for (size_t g = 0; g < G; g++) stratum_begin[group_stratum[g] + 1]++;
    for (size_t s = 0; s < S; s++) stratum_begin[s + 1] += stratum_begin[s];
    {
        int64_t *cursor = calloc(S, sizeof *cursor);
        if (!cursor) {
            vet_err_nomem(err, "vet_split_assign: out of memory");
            goto done;
        }
        for (size_t g = 0; g < G; g++) {
            int32_t s = group_stratum[g];
            groups_by_stratum[stratum_begin[s] + cursor[s]++] = (int32_t)g;
        }
        free(cursor);
    }

    // 2-4. Strata largest first; quotas seat by seat; groups in shuffled order; error carried.
    for (size_t s = 0; s < S; s++) stratum_order[s] = (stratum_key){stratum_size[s], (int32_t)s};
    qsort(stratum_order, S, sizeof *stratum_order, cmp_stratum);
    vet_rng rng;
    vet_rng_seed(&rng, seed);
    double carry[3] = {0, 0, 0};
    for (size_t si = 0; si < S; si++) {
        int32_t s = stratum_order[si].id;
        int64_t ns = stratum_size[s];
        if (ns == 0) continue;
        double ideal[3], quota[3] = {0, 0, 0}, gap[3];
        for (int k = 0; k < 3; k++) ideal[k] = share[k] * (double)ns + carry[k];
        for (int64_t seat = 0; seat < ns; seat++) {
            for (int k = 0; k < 3; k++) gap[k] = ideal[k] - quota[k];
            quota[argmax_allowed(gap, share)] += 1;
        }
        int32_t *gs = groups_by_stratum + stratum_begin[s];
        int64_t ng = stratum_begin[s + 1] - stratum_begin[s];
        for (int64_t i = ng - 1; i > 0; i--) {  // Fisher-Yates
            int64_t j = (int64_t)vet_rng_below(&rng, (uint64_t)i + 1);
            int32_t t = gs[i];
            gs[i] = gs[j];
            gs[j] = t;
        }
        double given[3] = {0, 0, 0};
        for (int64_t i = 0; i < ng; i++) {
            for (int k = 0; k < 3; k++) gap[k] = quota[k] - given[k];
            int k = argmax_allowed(gap, share);
            group_split[gs[i]] = (uint8_t)k;
            given[k] += (double)group_size[gs[i]];
        }
        for (int k = 0; k < 3; k++) carry[k] = ideal[k] - given[k];
    }
    for (size_t i = 0; i < n; i++) split_of[i] = group_split[group_of[i]];
    ret = 0;
done:
    free(group_size);
    free(group_stratum);
    free(group_split);
    free(stratum_size);
    free(stratum_order);
    free(groups_by_stratum);
    free(stratum_begin);
    free(by_group);
    return ret;
}
