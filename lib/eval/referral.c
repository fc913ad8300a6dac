// referral.c — see referral.h.
#include "eval/referral.h"

#include <math.h>
#include <stdlib.h>

void vet_referral_at(const double *top_p, const unsigned char *correct, size_t n, double threshold, vet_referral *out) {
    size_t coded = 0, coded_right = 0, referred_right = 0;
    for (size_t i = 0; i < n; i++) {
        if (top_p[i] >= threshold) coded++, coded_right += correct[i] != 0;
        else referred_right += correct[i] != 0;
    }
    size_t referred = n - coded;
    *out = (vet_referral){
        .threshold = threshold, .notes = n, .coded = coded,
        .coverage = n ? (double)coded / (double)n : 0,
        .accuracy = coded ? (double)coded_right / (double)coded : NAN,
        .referred_accuracy = referred ? (double)referred_right / (double)referred : NAN,
    };
}

static int by_p_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

int vet_referral_fit(const double *top_p, const unsigned char *correct, size_t n, double target, double *threshold) {
    // Pairs (p, right) sorted by p, highest first; the cut may fall only where p changes.
    double *pr = malloc((n ? n : 1) * 2 * sizeof *pr);
    if (!pr) return -1;
    for (size_t i = 0; i < n; i++) pr[2 * i] = top_p[i], pr[2 * i + 1] = correct[i] != 0;
    qsort(pr, n, 2 * sizeof *pr, by_p_desc);
    size_t right = 0;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        right += pr[2 * i + 1] != 0;
        int end_of_tie = i + 1 == n || pr[2 * (i + 1)] != pr[2 * i];
        // The accuracy as the report shows it (a division, correctly rounded) against the target:
        // at an accuracy equal to the target (14 of 25 and 0.56) both round the same number to
        // the same double. Multiplied out instead, 0.56 x 25 rounds above 14: 14 right fell short.
        if (end_of_tie && (double)right / (double)(i + 1) >= target) *threshold = pr[2 * i], found = 1;
    }
    free(pr);
    return found;
}
