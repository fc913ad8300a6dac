// calibrate.h — temperature scaling of ranked answers (vet-eval --fit-temperature): the one
// T > 0 for which p_T = softmax(logp / T) over each note's table, fitted to held-out notes,
// makes their gold labels most probable (Guo et al. 2017, "On calibration of modern neural
// networks"). One parameter cannot change which label a note ranks first, so accuracy and hit@k
// stay; what it changes is how far the printed p can be trusted. vet-generate
// --rank-temperature T applies it.
//
// The fit minimises the mean over notes of NLL(T) = -log Σ_{gold g} p_T(g): convex in s = 1/T
// (log-sum-exp minus log-sum-exp over a subset of the same terms: the first convex, the
// difference's derivative E_all[logp] - E_gold[logp] rising in s), so the minimum is where that
// derivative crosses zero, found by bisection on log s: deterministic, no step size.
#ifndef VET_CALIBRATE_H
#define VET_CALIBRATE_H

#include <stddef.h>

#include "base/err.h"

enum { VET_ECE_BINS = 10 };  // [0, .1), [.1, .2), ..., [.9, 1]: ranking.h's ECE

// The range the fit searches; a fit that wants more stops at the end and says so.
#define VET_TEMPERATURE_MIN 0.01
#define VET_TEMPERATURE_MAX 100.0

typedef struct {
    size_t notes;      // all notes given
    size_t fitted;     // those with a gold label among the table's (the others have no p_T to raise)
    double t;          // the fitted temperature
    int bound;         // -1: the fit wants T below VET_TEMPERATURE_MIN, +1: above the MAX, 0: neither
    double nll[2];     // mean NLL over the fitted notes at T = 1 and at t
    double ece[2];     // top-1 ECE over all notes at T = 1 and at t
    double brier[2];   // top-1 Brier score over all notes at T = 1 and at t
} vet_temperature;

// Fits T to notes (labels each): logp[i * labels + j] the log-probability of note i's answer j
// (-inf allowed: probability 0; every note needs one finite), gold[i * labels + j] nonzero when
// that answer is one of the note's gold labels. The top label of a note is its largest logp (the
// first of equal ones). -1 with err (VET_E_INPUT) when no note has a gold label among its
// answers, or a note has no finite logp; VET_E_NOMEM when memory runs out.
int vet_temperature_fit(const double *logp, const unsigned char *gold, size_t notes, size_t labels,
                        vet_temperature *out, vet_err *err);

// p of answer i among n at temperature t: softmax(logp / t)[i], the largest subtracted first;
// -inf entries weigh nothing (0 when every entry is -inf). What --temperature rescores with.
double vet_p_at(const double *logp, size_t n, size_t i, double t);

// The top-1 calibration ranking.h reports: notes binned by top_p into VET_ECE_BINS equal bins,
// *ece = Σ over bins (count / n) |mean p - share correct|; *brier = mean (top_p - correct)².
void vet_top1_calibration(const double *top_p, const unsigned char *correct, size_t n, double *ece, double *brier);

#endif
