// test_calibrate.c — temperature scaling (lib/eval/calibrate.h): on notes drawn from a known
// overconfident model the fit recovers its temperature; the fitted T is the minimum of the NLL
// computed here independently; the ends of the search are said; answers of probability 0 and
// notes with no gold answer; and the ECE/Brier binning against hand-worked numbers.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "eval/calibrate.h"

// A small deterministic generator (splitmix64), uniform in [0, 1).
static uint64_t rng = 12345;
static double uniform(void) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

// The mean NLL of the gold labels at temperature t, written here the plain way (no shared code).
static double nll_at(const double *logp, const unsigned char *gold, size_t notes, size_t labels, double t) {
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < notes; i++) {
        double z = 0, zg = 0;
        for (size_t j = 0; j < labels; j++) {
            double w = exp(logp[i * labels + j] / t);
            z += w;
            if (gold[i * labels + j]) zg += w;
        }
        if (zg > 0) sum += -log(zg / z), n++;
    }
    return sum / (double)n;
}

// Notes whose answers' true probabilities are softmax(z / t_true) but whose model says
// logp = log softmax(z): overconfident by t_true. Gold drawn from the true distribution.
static void draw(double *logp, unsigned char *gold, size_t notes, size_t labels, double t_true) {
    for (size_t i = 0; i < notes; i++) {
        double *l = logp + i * labels, z = 0, zt = 0, q[16];
        for (size_t j = 0; j < labels; j++) l[j] = 6.0 * uniform();
        for (size_t j = 0; j < labels; j++) z += exp(l[j]), zt += (q[j] = exp(l[j] / t_true));
        double u = uniform() * zt, acc = 0;
        size_t g = labels - 1;
        for (size_t j = 0; j < labels; j++)
            if ((acc += q[j]) > u) {
                g = j;
                break;
            }
        for (size_t j = 0; j < labels; j++) l[j] -= log(z), gold[i * labels + j] = j == g;
    }
}

static void recovers_known_temperature(void) {
    enum { N = 6000, L = 8 };
    static double logp[N * L];
    static unsigned char gold[N * L];
    const double truth[] = {0.5, 2.0};
    for (int k = 0; k < 2; k++) {
        draw(logp, gold, N, L, truth[k]);
        vet_temperature t;
        vet_err err;
        CHECK(vet_temperature_fit(logp, gold, N, L, &t, &err) == 0);
        CHECK(t.notes == N && t.fitted == N && t.bound == 0);
        CHECK_NEAR(t.t, truth[k], 0.1 * truth[k]);  // 6,000 notes: within 10%
        // The fit is the minimum of the NLL, as computed here independently.
        CHECK_NEAR(t.nll[0], nll_at(logp, gold, N, L, 1.0), 1e-9);
        CHECK_NEAR(t.nll[1], nll_at(logp, gold, N, L, t.t), 1e-9);
        CHECK(t.nll[1] < t.nll[0]);
        CHECK(t.nll[1] <= nll_at(logp, gold, N, L, t.t * 1.01) + 1e-12);
        CHECK(t.nll[1] <= nll_at(logp, gold, N, L, t.t / 1.01) + 1e-12);
        // An overconfident model's ECE falls once calibrated.
        CHECK(t.ece[1] < t.ece[0]);
    }
}

// Every note right with its top answer far ahead: the fit wants T -> 0 and stops at the lower
// end; every gold answer the least probable: it wants T -> infinity (the uniform).
static void ends_of_the_search(void) {
    double logp[3 * 3] = {-0.01, -5, -6, -0.02, -4, -7, -0.05, -3, -9};
    unsigned char top_gold[9] = {1, 0, 0, 1, 0, 0, 1, 0, 0}, last_gold[9] = {0, 0, 1, 0, 0, 1, 0, 0, 1};
    vet_temperature t;
    vet_err err;
    CHECK(vet_temperature_fit(logp, top_gold, 3, 3, &t, &err) == 0);
    CHECK(t.bound == -1 && t.t == VET_TEMPERATURE_MIN);
    CHECK(vet_temperature_fit(logp, last_gold, 3, 3, &t, &err) == 0);
    CHECK(t.bound == 1 && t.t == VET_TEMPERATURE_MAX);
}

// logp -inf is probability 0 at every T: it weighs nothing. A note whose only gold answer has
// it cannot be fitted (left out of the NLL, still in the ECE); one with no finite answer, or a
// set with no gold answer at all, is an error.
static void probability_zero(void) {
    double logp[3 * 3] = {-0.2, -2.0, -INFINITY, -0.5, -1.0, -3.0, -0.1, -INFINITY, -2.5};
    unsigned char gold[9] = {0, 1, 0, 1, 0, 0, 0, 1, 0};  // note 3's gold has probability 0
    vet_temperature t;
    vet_err err;
    CHECK(vet_temperature_fit(logp, gold, 3, 3, &t, &err) == 0);
    CHECK(t.notes == 3 && t.fitted == 2);
    CHECK(isfinite(t.nll[0]) && isfinite(t.nll[1]) && isfinite(t.ece[1]));
    CHECK_NEAR(t.nll[1], nll_at(logp, gold, 2, 3, t.t), 1e-9);  // its first two notes: the fitted
    double dead[3] = {-INFINITY, -INFINITY, -INFINITY};
    unsigned char g1[3] = {1, 0, 0}, none[9] = {0};
    CHECK(vet_temperature_fit(dead, g1, 1, 3, &t, &err) == -1 && err.kind == VET_E_INPUT);
    CHECK(strstr(err.msg, "note 1") != NULL);
    CHECK(vet_temperature_fit(logp, none, 3, 3, &t, &err) == -1 && strstr(err.msg, "nothing to fit"));
}

// Hand-worked: p .95 right, .92 wrong (bin [.9, 1]: |1.87 - 1| = .87), .55 right (bin [.5, .6):
// |.55 - 1| = .45), 1.0 right (last bin, closed: with the first two |2.87 - 2| = .87), .05 wrong
// (first bin: .05). ECE = (.87 + .45 + .05) / 5 = .274; Brier = (.0025 + .8464 + .2025 + 0 +
// .0025) / 5 = .21078.
static void binning(void) {
    double p[5] = {0.95, 0.92, 0.55, 1.0, 0.05};
    unsigned char ok[5] = {1, 0, 1, 1, 0};
    double ece, brier;
    vet_top1_calibration(p, ok, 5, &ece, &brier);
    CHECK_NEAR(ece, 0.274, 1e-12);
    CHECK_NEAR(brier, 0.21078, 1e-12);
}

int main(void) {
    RUN(recovers_known_temperature);
    RUN(ends_of_the_search);
    RUN(probability_zero);
    RUN(binning);
    CHECK_EXIT();
}
