// referral.h — which notes a person should code: those whose top-1 p (vet-generate --rank) is
// below a threshold are referred, the rest are coded automatically. vet-eval --fit-threshold
// chooses the threshold on notes with known labels (validation) for a target accuracy on the
// automatically coded ones; --refer-below applies a threshold to other notes (the test split),
// where what it gives is measured out of sample.
#ifndef VET_REFERRAL_H
#define VET_REFERRAL_H

#include <stddef.h>

typedef struct {
    double threshold;           // notes with top-1 p >= threshold are coded, the others referred
    size_t notes, coded;        // all notes, and those coded
    double coverage;            // coded / notes
    // The accuracy of no note is undefined: NAN when that side is empty (a threshold that refers
    // every note, or none), which the reports print as "-" and null, never as a 0 to be believed.
    double accuracy;            // exact-match accuracy over the coded notes (NAN when none)
    double referred_accuracy;   // the model's accuracy over the referred ones (NAN when none)
} vet_referral;

// The split at threshold of n notes, top_p[i] note i's top-1 p and correct[i] whether it is
// exactly right.
void vet_referral_at(const double *top_p, const unsigned char *correct, size_t n, double threshold, vet_referral *out);

// The lowest threshold at which the coded notes are exactly right at least a fraction target of
// the time (the most notes coded at that accuracy): always one of the notes' top-1 p, so that
// notes of equal p are coded or referred together. 1 with *threshold set, 0 when no threshold
// reaches target (not even the surest notes alone), -1 when memory runs out.
int vet_referral_fit(const double *top_p, const unsigned char *correct, size_t n, double target, double *threshold);

#endif
