// ranking.h — scoring the ranked answers of `vet-generate --rank K` (a record's `ranked` list,
// docs/formats.md: at most K {label, p} entries, most probable first, p a label's probability
// among the code table's answers): what such a list must be, the lists of a set of predictions
// collected note by note, and the metrics over them (man/vet-eval.1, "ranking"). With N notes
// and kmax the longest list:
//   hit@k      the share of notes with a gold label among the first k ranked labels, k = 1..kmax
//              (a list shorter than k counts with the labels it has)
//   MRR        the mean over notes of 1/r, r the place of the first gold label in the list; 0
//              for a note none of whose gold labels is listed
//   ECE        calibration of the top-1 p: notes binned by ranked[0].p into 10 equal-width bins
//              [0, .1), [.1, .2), ..., [.9, 1] (the last closed), correct meaning ranked[0].label
//              is a gold label; ECE = Σ over bins (bin count / N) |mean p - share correct|
//   Brier      the mean over notes of (ranked[0].p - correct)², correct as for ECE
//   selective  the notes sorted by ranked[0].p, highest first (ties keep input order); for a
//              coverage c of 100, 90, ..., 50%, the first ceil(c N / 100) of them: how many,
//              the lowest top-1 p among them (the threshold) and their exact-match accuracy (the
//              predicted set equals the gold set, as vet-eval's accuracy: metrics.h)
#ifndef VET_RANKING_H
#define VET_RANKING_H

#include <stddef.h>

#include "base/err.h"
#include "eval/calibrate.h"
#include "eval/metrics.h"
#include "eval/predictions.h"

// Checks one note's ranked list: at least one label, each non-empty and listed once, each p a
// probability (0 <= p <= 1, not NaN) and no p above the one before it. 0, or -1 with err
// saying which entry is wrong ("\"ranked\"[2].p = 0.4 is above ...") for the caller to prefix
// with the place (VET_E_INPUT).
int vet_ranked_check(char *const *labels, const double *p, size_t n, vet_err *err);

// The ranked lists of a set of predictions, one note at a time, in the order the notes are
// added to the set's vet_eval (metrics.h).
typedef struct vet_ranks vet_ranks;

vet_ranks *vet_ranks_new(void);
void vet_ranks_free(vet_ranks *rk);  // safe with NULL

// Keep every note's whole list for a temperature fit (calibrate.h), before the first note is
// added. Each note must then list every label of its table with its logp: the first note's
// length, and for a stream the table size its header names (`rank.labels`): vet-generate
// --rank all. A note that does not is an error naming it (VET_E_INPUT).
void vet_ranks_keep_lists(vet_ranks *rk);

// Score each note's top label at p = softmax(logp / temperature) over its whole list instead of
// its listed p (as if vet-generate had ranked with --rank-temperature): the calibration, the
// selective rows and a referral change, hit@k and MRR do not. The lists must be whole, as for
// vet_ranks_keep_lists. Before the first note is added.
void vet_ranks_rescale(vet_ranks *rk, double temperature);

// Adds the note rec (read from file, rec->at its `unit`, "record" or "line"): its ranked list,
// or that it has none. Every note must be like the first, since scores over a mix of ranked and
// unranked runs would mean nothing: a note that differs is an error naming it and the first
// (VET_E_INPUT). Call it once per note added to the vet_eval, after it.
int vet_ranks_add(vet_ranks *rk, const vet_pred *rec, const char *file, const char *unit, vet_err *err);

// The notes' top-1 p (their first listed label's), in the order added: n of them, NULL without
// a ranking.
const double *vet_ranks_top_p(const vet_ranks *rk, size_t *n);

enum { VET_SELECTIVE_ROWS = 6 };  // coverage 100, 90, 80, 70, 60, 50%

typedef struct {
    int coverage;      // percent of the notes kept
    size_t notes;      // how many: ceil(coverage N / 100)
    double threshold;  // the lowest top-1 p among them
    double accuracy;   // exact match over them
} vet_selective;

typedef struct {
    size_t n, kmax;   // kmax 0: the notes carry no ranking, and nothing else is set
    double *hit_at;   // [kmax]: hit_at[k - 1] is hit@k
    double mrr, ece, brier;
    vet_selective selective[VET_SELECTIVE_ROWS];
    int fitted;                 // with vet_ranks_keep_lists: the temperature fitted to the notes
    vet_temperature temperature;
} vet_ranking;

// The metrics above over the notes of rk, whose exact-match correctness e holds (the same
// notes, in the same order), and with vet_ranks_keep_lists the temperature fit. Without a
// ranking, 0 with out->kmax 0 (the caller that asked for a fit says that is an error). -1 when
// memory runs out, rk and e disagree on the number of notes, or the fit fails (calibrate.h).
int vet_ranking_compute(const vet_ranks *rk, const vet_eval *e, vet_ranking *out, vet_err *err);
void vet_ranking_free(vet_ranking *m);

#endif
