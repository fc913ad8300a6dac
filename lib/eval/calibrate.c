// calibrate.c — see calibrate.h.
#include "eval/calibrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void vet_top1_calibration(const double *top_p, const unsigned char *correct, size_t n, double *ece, double *brier) {
    // A bin's term (count / n) |Σp / count - Σcorrect / count| is |Σp - Σcorrect| / n: the bins
    // need only the two sums.
    double sum_p[VET_ECE_BINS] = {0}, sum_ok[VET_ECE_BINS] = {0}, b2 = 0;
    for (size_t i = 0; i < n; i++) {
        double p = top_p[i], ok = correct[i] != 0;
        int b = (int)(p * VET_ECE_BINS);  // p = 1 falls in the last bin, [.9, 1]
        if (b > VET_ECE_BINS - 1) b = VET_ECE_BINS - 1;
        sum_p[b] += p;
        sum_ok[b] += ok;
        b2 += (p - ok) * (p - ok);
    }
    double e = 0;
    for (int b = 0; b < VET_ECE_BINS; b++) e += fabs(sum_p[b] - sum_ok[b]);
    *ece = n ? e / (double)n : 0;
    *brier = n ? b2 / (double)n : 0;
}

// log Σ exp(s l[j]) over the answers j of one note in the set (mask[j] nonzero; mask NULL: all),
// the largest term subtracted first, and in *mean (may be NULL) E[l] under the weights
// exp(s l[j]). Answers of probability 0 (-inf) weigh nothing and are skipped: 0 x -inf would
// be NaN. -inf when the set has no finite answer.
static double lse(const double *l, const unsigned char *mask, size_t n, double s, double *mean) {
    double mx = -INFINITY;
    for (size_t j = 0; j < n; j++)
        if ((!mask || mask[j]) && isfinite(l[j]) && s * l[j] > mx) mx = s * l[j];
    if (mx == -INFINITY) {
        if (mean) *mean = 0;
        return -INFINITY;
    }
    double z = 0, zl = 0;
    for (size_t j = 0; j < n; j++) {
        if ((mask && !mask[j]) || !isfinite(l[j])) continue;
        double w = exp(s * l[j] - mx);
        z += w, zl += w * l[j];
    }
    if (mean) *mean = zl / z;
    return mx + log(z);
}

double vet_p_at(const double *logp, size_t n, size_t i, double t) {
    double z = lse(logp, NULL, n, 1.0 / t, NULL);
    return z == -INFINITY || !isfinite(logp[i]) ? 0 : exp(logp[i] / t - z);
}

// Note i's answers and gold flags.
typedef struct {
    const double *logp;
    const unsigned char *gold;
    size_t notes, labels;
} fit_set;

static int fitted(const fit_set *f, size_t i) {
    return lse(f->logp + i * f->labels, f->gold + i * f->labels, f->labels, 1.0, NULL) > -INFINITY;
}

// dNLL/ds summed over the fitted notes (the sign is all the bisection needs), and the mean NLL.
static double slope(const fit_set *f, double s) {
    double g = 0;
    for (size_t i = 0; i < f->notes; i++) {
        const double *l = f->logp + i * f->labels;
        const unsigned char *m = f->gold + i * f->labels;
        double e_all, e_gold;
        if (lse(l, m, f->labels, s, &e_gold) == -INFINITY) continue;
        lse(l, NULL, f->labels, s, &e_all);
        g += e_all - e_gold;
    }
    return g;
}

static double mean_nll(const fit_set *f, double s, size_t n_fitted) {
    double sum = 0;
    for (size_t i = 0; i < f->notes; i++) {
        const double *l = f->logp + i * f->labels;
        double lg = lse(l, f->gold + i * f->labels, f->labels, s, NULL);
        if (lg > -INFINITY) sum += lse(l, NULL, f->labels, s, NULL) - lg;
    }
    return sum / (double)n_fitted;
}

// Top-1 ECE and Brier at s over every note: the top answer (the largest logp) is the same at
// every s; its p_T is exp(s l_top - lse).
static int top1_at(const fit_set *f, double s, double *ece, double *brier, vet_err *err) {
    double *p = malloc((f->notes ? f->notes : 1) * sizeof *p);
    unsigned char *ok = malloc(f->notes ? f->notes : 1);
    if (!p || !ok) return free(p), free(ok), vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < f->notes; i++) {
        const double *l = f->logp + i * f->labels;
        size_t top = 0;
        for (size_t j = 1; j < f->labels; j++)
            if (l[j] > l[top]) top = j;
        p[i] = vet_p_at(l, f->labels, top, 1.0 / s);
        ok[i] = f->gold[i * f->labels + top] != 0;
    }
    vet_top1_calibration(p, ok, f->notes, ece, brier);
    free(p), free(ok);
    return 0;
}

int vet_temperature_fit(const double *logp, const unsigned char *gold, size_t notes, size_t labels,
                        vet_temperature *out, vet_err *err) {
    memset(out, 0, sizeof *out);
    fit_set f = {logp, gold, notes, labels};
    out->notes = notes;
    for (size_t i = 0; i < notes; i++) {
        if (lse(logp + i * labels, NULL, labels, 1.0, NULL) == -INFINITY)
            return vet_err_kindf(err, VET_E_INPUT, "note %zu: every answer has logp -inf (probability 0): no "
                                 "distribution to calibrate", i + 1);
        out->fitted += (size_t)fitted(&f, i);
    }
    if (out->fitted == 0)
        return vet_err_kindf(err, VET_E_INPUT, "no note's gold label is among its ranked labels (with a "
                             "probability above 0): nothing to fit a temperature to");
    // s = 1/T; the slope rises with s. Below zero at the largest s: the optimum is beyond it.
    double lo = log(1.0 / VET_TEMPERATURE_MAX), hi = log(1.0 / VET_TEMPERATURE_MIN);
    double g_lo = slope(&f, exp(lo)), g_hi = slope(&f, exp(hi)), s;
    if (g_lo == 0 && g_hi == 0) {
        s = 1.0;  // flat: every fitted note's answers are all gold, or it has one; any T fits
    } else if (g_hi <= 0) {  // 0 here: the slope underflowed, the notes' top answers far ahead
        s = 1.0 / VET_TEMPERATURE_MIN, out->bound = -1;
    } else if (g_lo >= 0) {
        s = 1.0 / VET_TEMPERATURE_MAX, out->bound = 1;
    } else {
        for (int it = 0; it < 50; it++) {  // the range is log(1e4) = 9.2 wide: 50 halvings reach 1e-14
            double mid = 0.5 * (lo + hi);
            if (slope(&f, exp(mid)) < 0) lo = mid;
            else hi = mid;
        }
        s = exp(0.5 * (lo + hi));
    }
    out->t = out->bound < 0 ? VET_TEMPERATURE_MIN : out->bound > 0 ? VET_TEMPERATURE_MAX : 1.0 / s;
    out->nll[0] = mean_nll(&f, 1.0, out->fitted), out->nll[1] = mean_nll(&f, s, out->fitted);
    if (top1_at(&f, 1.0, &out->ece[0], &out->brier[0], err) < 0 || top1_at(&f, s, &out->ece[1], &out->brier[1], err) < 0)
        return -1;
    return 0;
}
