// compare.h — two sets of predictions of the same notes, compared note by note (vet-eval
// --compare): whether one model codes a test split better than another, or the difference is
// what the split's few hundred notes cannot tell apart. Two separate intervals that overlap do
// not answer that; a paired comparison does, since the notes both sets get right (or both miss)
// say nothing about the difference.
//   the 2x2 table  notes both sets get exactly right, only this set, only the other, neither
//                  (exactly right as vet-eval's accuracy: the predicted set equals the gold set)
//   difference     accuracy(this) - accuracy(other) = (only this - only other) / n, with a
//                  paired percentile bootstrap interval: each resample draws n notes with
//                  replacement and scores both sets on the same draw (the seed and resamples of
//                  vet-eval's other intervals; quantiles as metrics.h's); when this set's notes
//                  are all in groups, G groups with all their notes (metrics.h's cluster
//                  bootstrap: notes with one prompt are one outcome)
//   McNemar        the exact two-sided test on the discordant notes: with b notes only this set
//                  gets right and c only the other, p = min(1, 2 P(X <= min(b, c))) for
//                  X ~ Binomial(b + c, 1/2); p = 1 when b + c = 0
//   groups whole   when this set's notes are all in groups (notes written alike, one prompt), the
//                  same question with each group one outcome, as the interval draws them: a
//                  group's net count d = (its notes only this set gets right) - (only the other)
//                  and the exact two-sided sign-flip (randomization) test of sum d, p = P(|sum
//                  s_g d_g| >= |sum d_g|) over the 2^m equally likely signs of the m groups with
//                  d != 0. With each discordant note a group of its own this is McNemar's p
//                  above, to the bit; a note repeated 9 times and coded alike 9 times then counts
//                  as one outcome, not 9 independent ones. (Exact: the 2^m patterns enumerated
//                  up to 20 groups, then a table of subset sums; past ~1e9 steps of that table or 1e7 sums:
//                  Durkalski et al.'s (2003) clustered statistic (sum d)^2 / sum d^2 against
//                  chi-square with 1 df.)
// Notes are paired by id (each set's ids are unique: the readers check): both sets must hold
// the same ids, and each note the same gold labels in both (else they are not predictions of the
// same notes and labels, and the comparison would mean nothing).
#ifndef VET_COMPARE_H
#define VET_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "eval/metrics.h"

typedef struct {
    size_t n, both, only_this, only_other, neither;
    double acc_this, acc_other;
    double diff;       // acc_this - acc_other
    double ci[2];      // the 95% interval of diff; NaN with no resamples
    double mcnemar_p;  // the exact two-sided p
    size_t groups;            // the groups of this set's notes (0: not all notes in one; then
    size_t groups_discordant; //   groups_p is NaN), and how many have a net count d != 0
    double groups_p;          // McNemar's test with the groups drawn whole (above)
    int groups_p_exact;       // 1: the exact sign-flip sum; 0: the chi-square approximation
    // The ids of the discordant notes, in a's order: only_this of them that only a gets right,
    // only_other that only b does (pointers into a's table; free the arrays with
    // vet_comparison_free).
    const char **this_right, **other_right;
} vet_comparison;

// Compares the samples of a ("this", named name_a in messages) with those of b (name_b), both
// named by id (vet_eval_name_last). resamples 0: no interval. 0, or -1 with err (VET_E_INPUT:
// an id in one set and not the other, a note whose gold labels differ, a sample with no id).
// Free c with vet_comparison_free after either, and before filling it again.
int vet_compare(const vet_eval *a, const vet_eval *b, const char *name_a, const char *name_b, int resamples,
                uint64_t seed, vet_comparison *c, vet_err *err);

void vet_comparison_free(vet_comparison *c);  // safe on a zeroed or freed one

// The exact two-sided McNemar p for b and c discordant notes (above).
double vet_mcnemar_p(size_t b, size_t c);

// The two-sided p of the sign-flip test of n groups' net counts net[] (above: "groups whole");
// *exact (if not NULL) is set to 0 when the chi-square approximation was taken. NaN when out of
// memory.
double vet_grouped_mcnemar_p(const long *net, size_t n, int *exact);

#endif
