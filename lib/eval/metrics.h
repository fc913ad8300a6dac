// metrics.h — how well predicted label sets match gold label sets (vet-eval's arithmetic).
// Reading the sets from files is in predictions.h; the report built on these numbers in
// report.h.
//
// Every sample has a gold label set and a predicted label set (duplicates dropped, order
// ignored). Conventions, stated once here and in man/vet-eval.1:
//   accuracy     exact match: the predicted set equals the gold set (two empty sets are equal)
//   per label    support = samples whose gold holds the label, predicted = samples whose
//                prediction holds it, tp = both; P = tp/predicted, R = tp/support,
//                F1 = 2tp/(support+predicted) (= 2PR/(P+R)); a zero denominator gives 0, as
//                sklearn's zero_division=0: a label never predicted has P = 0.
//   macro        the unweighted mean of per-label P, R and F1 over the labels that occur in
//                gold or prediction (a label in neither does not exist for this set)
//   micro        P = Σtp/Σpredicted, R = Σtp/Σsupport, F1 = 2PR/(P+R) (0 when P+R = 0)
//   jaccard      mean over samples of |G∩P|/|G∪P|, 1 when both are empty
//   no_label     samples whose predicted set is empty
//   confusions   (gold set, predicted set) pairs of the samples that are wrong, by count
//   ceiling      with every sample in a group: the accuracy of the best answer a model can give
//                when it answers a group's notes alike (one prompt, one answer: greedy or
//                constrained decoding, --rank), each group's most frequent gold set; below 1
//                only where notes written alike carry different gold sets (label noise)
#ifndef VET_METRICS_H
#define VET_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

// ---------------------------------------------------------------------------------------
// Collecting samples
typedef struct vet_eval vet_eval;

vet_eval *vet_eval_new(void);
void vet_eval_free(vet_eval *e);  // safe with NULL
// Adds one sample; species may be NULL or "". Labels are copied; empty strings are dropped.
int vet_eval_add(vet_eval *e, const char *species, char *const *gold, size_t ngold, char *const *pred,
                 size_t npred, vet_err *err);
size_t vet_eval_n(const vet_eval *e);
// Names the last sample added by its note's id, so that another set of predictions of the same
// notes can be paired with this one (eval/compare.h). An id already naming a sample is an error.
int vet_eval_name_last(vet_eval *e, const char *id, vet_err *err);
// The sample named id, or -1 when none is.
long vet_eval_find(const vet_eval *e, const char *id);
// How many samples are named, and the k-th name (0 <= k < that, in the order they were named).
size_t vet_eval_named(const vet_eval *e);
const char *vet_eval_id_at(const vet_eval *e, size_t k);
// Whether sample i of a and sample j of b have the same gold label set (compared as strings);
// when not and why is given, why gets "{a's labels} against {b's labels}".
int vet_eval_same_gold(const vet_eval *a, size_t i, const vet_eval *b, size_t j, char *why, size_t cap);
// Whether sample i (0-based, in the order added) is exactly right, as accuracy counts it.
bool vet_eval_correct(const vet_eval *e, size_t i);
// Puts the last sample added in group key (NULL or "": in none). Samples of one group are drawn
// together by the bootstrap: notes with one prompt get one answer, so they are one outcome drawn
// once, not several independent ones (vet-generate writes the prompt's hash as the group).
int vet_eval_group_last(vet_eval *e, const char *key, vet_err *err);
// The number of distinct groups when every sample is in one, else 0 (then the bootstrap draws
// samples).
size_t vet_eval_groups(const vet_eval *e);
// Sample i's group, 0 .. vet_eval_groups(e) - 1 in order of first appearance (only when
// vet_eval_groups(e) > 0).
size_t vet_eval_group_of(const vet_eval *e, size_t i);
// Whether sample i was put in a group.
bool vet_eval_in_group(const vet_eval *e, size_t i);

// ---------------------------------------------------------------------------------------
// The report
typedef struct {
    const char *label;  // points into the vet_eval
    size_t support, predicted, tp;
    double precision, recall, f1;
} vet_label_stat;

typedef struct {
    const char *species;  // "" for samples without one
    size_t n, correct;
    double accuracy;
} vet_species_stat;

typedef struct {
    const char **gold, **pred;  // sorted label strings (pointers into the vet_eval)
    size_t ngold, npred, count;
} vet_confusion;

typedef struct {
    size_t n, correct, no_label;
    double accuracy, jaccard;
    double micro_precision, micro_recall, micro_f1;
    double macro_precision, macro_recall, macro_f1;
    vet_label_stat *labels;  // by support, then predicted (both descending), then label
    size_t nlabels;
    vet_species_stat *species;  // by n descending, then name
    size_t nspecies;
    vet_confusion *confusions;  // all of them, by count descending, then gold, then pred
    size_t nconfusions;
    // With groups (vet_eval_groups > 0): the groups, those whose notes carry more than one gold
    // set, the notes in them, and the ceiling (above) as a count and an accuracy; else groups 0
    // and ceiling NaN.
    size_t groups, groups_mixed, notes_mixed, ceiling_correct;
    double ceiling;
} vet_metrics;

int vet_metrics_compute(const vet_eval *e, vet_metrics *m, vet_err *err);
void vet_metrics_free(vet_metrics *m);

// The most frequent gold set (ties: the first in label order): malloc'd copies of its labels
// in *labels (free with vet_labels_free_list from labels.h, or free each and the array),
// *nlabels, and how many samples carry it. Fails when e has no samples.
int vet_eval_majority_gold(const vet_eval *e, char ***labels, size_t *nlabels, size_t *count, vet_err *err);
// The accuracy of answering the fixed set labels[0..n) for every sample of e.
double vet_eval_constant_accuracy(const vet_eval *e, char *const *labels, size_t n);

// Percentile bootstrap (B resamples of n samples with replacement, seeded) for accuracy and
// macro-F1: lo/hi are the 2.5th and 97.5th percentiles, interpolated linearly between order
// statistics (numpy's default). Macro-F1 of a resample averages over the labels occurring in it.
// When every sample is in a group (vet_eval_groups > 0) a resample draws G groups with
// replacement instead, each with all of its samples (the cluster bootstrap): with one sample a
// group, the draws and the interval are the sample bootstrap's.
int vet_metrics_bootstrap(const vet_eval *e, int B, uint64_t seed, double acc_ci[2], double f1_ci[2],
                          vet_err *err);
// The 95% percentile interval of n >= 1 resampled values (sorted in place): their 2.5th and
// 97.5th percentiles, interpolated as above.
void vet_percentile_ci(double *v, int n, double ci[2]);

#endif
