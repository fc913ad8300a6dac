// report.h — vet-eval's report: everything measured over one predictions file (metrics.h),
// with 95% bootstrap intervals and a majority-label baseline, and its two forms: a table no
// wider than 100 columns, and JSON.
//
// The baseline answers every sample with one fixed label set: the most frequent gold set of a
// training stream (baseline_from), or, without one, of the evaluated set itself. The latter is
// optimistic (it peeks at the test labels) and the report says so.
#ifndef VET_REPORT_H
#define VET_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "data/labels.h"
#include "eval/compare.h"
#include "eval/metrics.h"
#include "eval/ranking.h"
#include "eval/referral.h"

typedef struct {
    const char *predictions;    // a path, or "-" for stdin
    const char *const *shards;  // n_shards >= 2: the streams of one vet-generate --shard run,
    int n_shards;               //   merged in input order (eval/shards.h); predictions unused
    int format;                 // VET_PRED_* (predictions.h); VET_PRED_SNIFF: from the first byte
    const char *codes;          // a codes file (`code<TAB>term`) for the terms in the table, or NULL
    int bootstrap;              // resamples for the 95% intervals; 0: no intervals
    uint64_t seed;              // the bootstrap's seed
    const char *baseline_from;  // a tokens, packed or predictions stream, or NULL: this set
    int confusions;             // how many of the most frequent confusions the table shows
    int fit_temperature;        // fit a temperature to the ranked lists (calibrate.h): they must be
                                //   whole, with logp (vet-generate --rank all)
    double temperature;         // > 0: the top labels' p recomputed at this temperature from whole
                                //   lists' logp (ranking.h, vet_ranks_rescale); 0: as listed
    double refer_below;         // >= 0: notes with top-1 p below it are referred (referral.h); < 0: no
    double fit_threshold;       // > 0: the threshold for this target accuracy (referral.h); 0: no.
                                //   Not with refer_below.
    const char *compare;        // another model's predictions of the same notes (any format, one
                                //   file), compared note by note (compare.h); NULL: none
    const char *const *compare_shards;  // n_compare_shards >= 2: the other predictions are the
    int n_compare_shards;               //   streams of one --shard run instead (compare unused)
} vet_eval_opts;

// stdin, sniffed; no codes; 1000 resamples, seed 1; baseline from this set; 10 confusions; no
// temperature, no referral.
vet_eval_opts vet_eval_defaults(void);

// One fold's test split of a cross-validation, scored alone.
typedef struct {
    int64_t n;
    double accuracy;
} vet_fold_score;

typedef struct {
    vet_eval_opts o;
    const char *input;          // the predictions as named in the report: the path, or "<stdin>",
                                // or "FIRST and N more shards"
    char *input_buf;            // what input points to for a set of shards
    const char *format;         // as read: "stream", "csv" or "jsonl"
    vet_labels *codes;          // NULL without o.codes
    vet_eval *samples;          // the predictions read (m's labels and species point into it)
    vet_metrics m;
    double acc_ci[2], f1_ci[2]; // 95% intervals of accuracy and macro-F1 (o.bootstrap > 0)
    size_t groups;              // > 0: every note is in a group, and the intervals drew the groups
                                //   whole (metrics.h); 0: the notes one by one
    char **base;                // the baseline's label set
    size_t nbase;
    double base_acc;            // its accuracy on the evaluated set
    vet_ranking rank;           // from vet-generate --rank predictions; rank.kmax 0 without
    int referred;               // o.refer_below or o.fit_threshold: referral is set
    vet_referral referral;      // the split at o.refer_below, or at the threshold fitted
    int compared;               // o.compare: cmp is set
    const char *other;          // o.compare, or "FIRST and N more shards"
    char *other_buf;            // what other points to for a set of shards
    vet_comparison cmp;         // these predictions against o.compare's
    int n_folds;                // > 0: the predictions are a cross-validation's test folds, and
    vet_fold_score *folds;      //   (n_folds) each fold's own score, in fold order
    double fold_mean, fold_sd;  // the mean and sample standard deviation of the folds' accuracies
} vet_report;

// Reads the codes and the predictions, computes the metrics, the intervals, the baseline and,
// when the predictions carry `ranked` lists, the ranking metrics (ranking.h); with o.compare,
// the paired comparison (compare.h, with o.bootstrap resamples and o.seed).
// 0, or -1 with err (its kind: VET_E_IO for a file that cannot be read, VET_E_INPUT for one
// that is not what it should be). r is freed with vet_report_free either way.
int vet_report_build(const vet_eval_opts *o, vet_report *r, vet_err *err);
void vet_report_free(vet_report *r);

// The table, to f. Labels, terms and species too long for their column are cut with "...",
// control characters shown as spaces. A ranking section only with r->rank. 0, or -1 when f
// reports a write error.
int vet_report_print(FILE *f, const vet_report *r);

// The fitted threshold (o.fit_threshold) as one line, "%.17g\n" (the exact p of a note, so that
// --refer-below with it splits these notes as the fit did), to path as below.
int vet_report_write_threshold(const vet_report *r, const char *path, vet_err *err);

// The fitted temperature (r->rank.fitted) as one line, "%.6g\n", to path ("-": stdout) through
// base/atomic_file.h: what a pipeline hands to vet-generate --rank-temperature. 0, or -1 with
// err (VET_E_IO, VET_E_NOMEM).
int vet_report_write_temperature(const vet_report *r, const char *path, vet_err *err);

// Every number as JSON (2-space indent, keys in a fixed order), written to path ("-": stdout)
// through base/atomic_file.h. 0, or -1 with err (VET_E_IO, VET_E_NOMEM).
int vet_report_write_json(const vet_report *r, const char *path, vet_err *err);

#endif
