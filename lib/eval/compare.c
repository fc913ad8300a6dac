// compare.c — two sets of predictions of the same notes, compared note by note (compare.h).
#include "eval/compare.h"

#include <math.h>
#include <stdlib.h>

#include "base/rng.h"

void vet_comparison_free(vet_comparison *c) {
    free(c->this_right), free(c->other_right);
    c->this_right = c->other_right = NULL;
}

double vet_mcnemar_p(size_t b, size_t c) {
    size_t n = b + c, m = b < c ? b : c;
    if (n == 0) return 1.0;
    // P(X <= m) for X ~ Binomial(n, 1/2): the terms C(n, k) / 2^n in log space, so that no
    // binomial coefficient overflows however many notes disagree.
    double lfn = lgamma((double)n + 1), ln2n = (double)n * log(2.0), tail = 0;
    for (size_t k = 0; k <= m; k++)
        tail += exp(lfn - lgamma((double)k + 1) - lgamma((double)(n - k) + 1) - ln2n);
    double p = 2 * tail;
    return p < 1 ? p : 1;
}

// Beyond this many DP steps (groups x their summed counts), or a table of more sums than
// EXACT_SUMS_MAX (80 MB), vet_grouped_mcnemar_p takes the chi-square approximation: ~1 s of work,
// met only by hundreds of thousands of discordant notes. Up to ENUMERATE_MAX groups the sign
// patterns are enumerated instead, exact whatever their counts.
#define EXACT_STEPS_MAX 1e9
#define EXACT_SUMS_MAX 10000000L
#define ENUMERATE_MAX 20

// The sign-flip p by enumeration of the 2^m patterns of the m nonzero counts in a[].
static double flips_enumerated(const long *a, size_t m, long observed) {
    long hit = 0;
    for (long pattern = 0; pattern < (1L << m); pattern++) {
        long sum = 0;
        for (size_t g = 0; g < m; g++) sum += (pattern >> g & 1) ? a[g] : -a[g];
        hit += (sum < 0 ? -sum : sum) >= observed;
    }
    return (double)hit / (double)(1L << m);
}

double vet_grouped_mcnemar_p(const long *net, size_t n, int *exact) {
    // Only groups whose notes do not cancel take part: a net count of 0 is 0 whatever its sign.
    size_t m = 0, plus = 0, minus = 0, unit = 1;
    long total = 0, spread = 0;  // T = sum of net, S = sum of |net|
    for (size_t g = 0; g < n; g++) {
        if (net[g] == 0) continue;
        long a = net[g] < 0 ? -net[g] : net[g];
        m++, total += net[g], spread += a, unit &= a == 1;
        plus += net[g] > 0, minus += net[g] < 0;
    }
    if (exact) *exact = 1;
    // Every group one discordant note (no groups, or groups of one): the sign flips are McNemar's
    // binomial, exactly.
    if (unit) return vet_mcnemar_p(plus, minus);
    long observed = total < 0 ? -total : total;
    if (m <= ENUMERATE_MAX) {
        long a[ENUMERATE_MAX];
        size_t k = 0;
        for (size_t g = 0; g < n; g++)
            if (net[g] != 0) a[k++] = net[g];
        return flips_enumerated(a, m, observed);
    }
    if ((double)m * (double)spread > EXACT_STEPS_MAX || spread > EXACT_SUMS_MAX) {
        // Durkalski et al.'s clustered McNemar statistic, T^2 / sum net^2 ~ chi-square(1).
        double sq = 0;
        for (size_t g = 0; g < n; g++) sq += (double)net[g] * (double)net[g];
        if (exact) *exact = 0;
        return erfc((double)observed / sqrt(2 * sq));
    }
    // A flip's sum is 2X - S, X the summed |net| of the groups flipped positive: X's distribution
    // over 0..S by the subset sums, each of the 2^m patterns with probability 2^-m.
    double *pr = calloc((size_t)spread + 1, sizeof *pr);
    if (!pr) return NAN;
    pr[0] = 1;
    long reach = 0;
    for (size_t g = 0; g < n; g++) {
        if (net[g] == 0) continue;
        long a = net[g] < 0 ? -net[g] : net[g];
        reach += a;
        for (long x = reach; x >= 0; x--) pr[x] = 0.5 * (pr[x] + (x >= a ? pr[x - a] : 0));
    }
    double p = 0;
    for (long x = 0; x <= spread; x++) {
        long flip = 2 * x - spread;
        if ((flip < 0 ? -flip : flip) >= observed) p += pr[x];
    }
    free(pr);
    return p < 1 ? p : 1;
}

// The paired bootstrap of the difference: outcome[k] is note k's correct(this) - correct(other),
// -1, 0 or 1, so a resample's difference is the mean of the outcomes it draws. With group_of
// (note k's group, G groups; NULL: none) a resample draws G groups with replacement, each with
// all of its notes, as vet_metrics_bootstrap does.
static int paired_interval(const signed char *outcome, size_t n, const size_t *group_of, size_t G, int resamples,
                           uint64_t seed, double ci[2], vet_err *err) {
    size_t units = group_of ? G : n;
    double *d = malloc((size_t)resamples * sizeof *d);
    long *sum_of = calloc(units + 1, sizeof *sum_of);    // each unit's outcomes summed
    size_t *size_of = calloc(units + 1, sizeof *size_of);
    if (!d || !sum_of || !size_of) {
        free(d), free(sum_of), free(size_of);
        return vet_err_nomem(err, "out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        size_t u = group_of ? group_of[k] : k;
        sum_of[u] += outcome[k], size_of[u]++;
    }
    vet_rng rng;
    vet_rng_seed(&rng, seed);
    for (int r = 0; r < resamples; r++) {
        long sum = 0;
        size_t drawn = 0;
        for (size_t k = 0; k < units; k++) {
            size_t u = (size_t)vet_rng_below(&rng, units);
            sum += sum_of[u], drawn += size_of[u];
        }
        d[r] = (double)sum / (double)drawn;
    }
    vet_percentile_ci(d, resamples, ci);
    free(d), free(sum_of), free(size_of);
    return 0;
}

// McNemar's test with the groups drawn whole: each group's net count of notes only this set gets
// right (minus those only the other does) is one outcome of the sign-flip test.
static int grouped_test(const signed char *outcome, size_t n, const size_t *group_of, size_t G, vet_comparison *c,
                        vet_err *err) {
    long *net = calloc(G, sizeof *net);
    if (!net) return vet_err_nomem(err, "out of memory");
    for (size_t k = 0; k < n; k++) net[group_of[k]] += outcome[k];
    c->groups = G;
    for (size_t g = 0; g < G; g++) c->groups_discordant += net[g] != 0;
    c->groups_p = vet_grouped_mcnemar_p(net, G, &c->groups_p_exact);
    free(net);
    return isnan(c->groups_p) ? vet_err_nomem(err, "out of memory") : 0;
}

int vet_compare(const vet_eval *a, const vet_eval *b, const char *name_a, const char *name_b, int resamples,
                uint64_t seed, vet_comparison *c, vet_err *err) {
    *c = (vet_comparison){.ci = {NAN, NAN}, .mcnemar_p = 1, .groups_p = NAN};
    size_t n = vet_eval_n(a);
    if (n == 0) return vet_errf(err, "%s: no notes to compare", name_a);
    if (vet_eval_named(a) != n || vet_eval_named(b) != vet_eval_n(b))
        return vet_errf(err, "%s: every note needs an id to be paired with %s's", vet_eval_named(a) != n ? name_a : name_b,
                        vet_eval_named(a) != n ? name_b : name_a);
    // Every id of b in a: with the counts equal, the ids are then the same.
    for (size_t k = 0; k < vet_eval_named(b); k++)
        if (vet_eval_find(a, vet_eval_id_at(b, k)) < 0)
            return vet_errf(err, "--compare: note '%s' of %s is not in %s: compare predictions of the same notes",
                            vet_eval_id_at(b, k), name_b, name_a);
    if (vet_eval_n(b) != n)  // then some id of a is missing from b
        for (size_t k = 0; k < n; k++)
            if (vet_eval_find(b, vet_eval_id_at(a, k)) < 0)
                return vet_errf(err, "--compare: note '%s' of %s is not in %s: compare predictions of the same notes",
                                vet_eval_id_at(a, k), name_a, name_b);
    signed char *outcome = malloc(n);
    size_t G = vet_eval_groups(a), *group_of = G ? malloc(n * sizeof *group_of) : NULL;  // by note, as outcome
    c->this_right = malloc(n * sizeof *c->this_right), c->other_right = malloc(n * sizeof *c->other_right);
    if (!outcome || !c->this_right || !c->other_right || (G && !group_of)) {
        free(outcome), free(group_of), vet_comparison_free(c);
        return vet_err_nomem(err, "out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        const char *id = vet_eval_id_at(a, k);
        size_t i = (size_t)vet_eval_find(a, id), j = (size_t)vet_eval_find(b, id);
        char why[600];
        if (!vet_eval_same_gold(a, i, b, j, why, sizeof why)) {
            free(outcome), free(group_of), vet_comparison_free(c);
            return vet_errf(err, "--compare: note '%s' has other gold labels in %s than in %s: %s (predictions of "
                            "different data?)", id, name_a, name_b, why);
        }
        int x = vet_eval_correct(a, i), y = vet_eval_correct(b, j);
        outcome[k] = (signed char)(x - y);
        if (group_of) group_of[k] = vet_eval_group_of(a, i);
        if (x && !y) c->this_right[c->only_this] = id;
        if (!x && y) c->other_right[c->only_other] = id;
        c->both += x && y, c->only_this += x && !y, c->only_other += !x && y, c->neither += !x && !y;
    }
    c->n = n;
    c->acc_this = (double)(c->both + c->only_this) / (double)n;
    c->acc_other = (double)(c->both + c->only_other) / (double)n;
    c->diff = ((double)c->only_this - (double)c->only_other) / (double)n;
    c->mcnemar_p = vet_mcnemar_p(c->only_this, c->only_other);
    int rc = group_of ? grouped_test(outcome, n, group_of, G, c, err) : 0;
    if (rc == 0 && resamples > 0) rc = paired_interval(outcome, n, group_of, G, resamples, seed, c->ci, err);
    free(outcome), free(group_of);
    return rc;
}
