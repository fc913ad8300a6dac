// test_referral.c — referring the least confident notes to a person (lib/eval/referral.h):
// the split at a threshold, and the fitted threshold, against hand-worked notes with ties, an
// accuracy exactly at the target, and a target no threshold reaches.
#include <math.h>

#include "check.h"
#include "eval/referral.h"

// Ten notes, top-1 p and whether each is right (sorted here by p for reading; the functions get
// them shuffled):
//   p   .99 .95 .95 .90 .80 .80 .70 .60 .50 .40
//   ok   1   1   0   1   1   1   0   1   0   0
// Prefixes ending where p changes: .99 1/1; .95 2/3; .90 3/4; .80 5/6; .70 5/7; .60 6/8;
// .50 6/9; .40 6/10.
static const double P[10] = {0.80, 0.40, 0.95, 0.99, 0.60, 0.95, 0.50, 0.80, 0.70, 0.90};
static const unsigned char OK[10] = {1, 0, 0, 1, 1, 1, 0, 1, 0, 1};

static void split_at(void) {
    vet_referral f;
    vet_referral_at(P, OK, 10, 0.80, &f);  // p >= .80 coded: 6 notes, 5 right; 4 referred, 1 right
    CHECK(f.notes == 10 && f.coded == 6 && f.threshold == 0.80);
    CHECK_NEAR(f.coverage, 0.6, 1e-15);
    CHECK_NEAR(f.accuracy, 5.0 / 6.0, 1e-15);
    CHECK_NEAR(f.referred_accuracy, 0.25, 1e-15);
    vet_referral_at(P, OK, 10, 0.0, &f);  // every note coded
    CHECK(f.coded == 10 && isnan(f.referred_accuracy));  // of no note: undefined, not 0
    CHECK_NEAR(f.accuracy, 0.6, 1e-15);
    vet_referral_at(P, OK, 10, 1.0, &f);  // none
    CHECK(f.coded == 0 && isnan(f.accuracy) && f.coverage == 0);
    CHECK_NEAR(f.referred_accuracy, 0.6, 1e-15);
}

static void fitted(void) {
    double t = -1;
    // 0.8: .80's prefix (5/6 = .833) is the longest at or above it.
    CHECK(vet_referral_fit(P, OK, 10, 0.8, &t) == 1 && t == 0.80);
    // 0.75: .60's 6/8 = .75 exactly: reached (no rounding at the boundary), the most coverage.
    CHECK(vet_referral_fit(P, OK, 10, 0.75, &t) == 1 && t == 0.60);
    // 0.9: only the surest note alone (1/1); .95's tie cannot be split (2/3).
    CHECK(vet_referral_fit(P, OK, 10, 0.9, &t) == 1 && t == 0.99);
    // 0.5: every note (6/10).
    CHECK(vet_referral_fit(P, OK, 10, 0.5, &t) == 1 && t == 0.40);
    // The surest note wrong: no threshold reaches 1.
    unsigned char first_wrong[10] = {1, 0, 0, 0, 1, 1, 0, 1, 0, 1};
    t = -1;
    CHECK(vet_referral_fit(P, first_wrong, 10, 1.0, &t) == 0 && t == -1);
    // Applied back, the fitted threshold splits as the fit counted.
    vet_referral f;
    CHECK(vet_referral_fit(P, OK, 10, 0.75, &t) == 1);
    vet_referral_at(P, OK, 10, t, &f);
    CHECK(f.coded == 8 && f.accuracy >= 0.75);
}

int main(void) {
    RUN(split_at);
    RUN(fitted);
    CHECK_EXIT();
}
