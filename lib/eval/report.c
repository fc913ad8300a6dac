// report.c — see report.h: building the report (reading, metrics, intervals, baseline). The
// table is in report_table.c, the JSON in report_json.c.
#include "eval/report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/input_file.h"
#include "eval/predictions.h"
#include "eval/pred_set.h"

vet_eval_opts vet_eval_defaults(void) {
    return (vet_eval_opts){.predictions = "-", .format = VET_PRED_SNIFF, .bootstrap = 1000, .seed = 1, .confusions = 10,
                           .refer_below = -1};
}

void vet_report_free(vet_report *r) {
    vet_labels_free_list(r->base, r->nbase);
    vet_metrics_free(&r->m);
    vet_ranking_free(&r->rank);
    vet_comparison_free(&r->cmp);
    vet_eval_free(r->samples);
    vet_labels_free(r->codes);
    free(r->input_buf);
    free(r->other_buf);
    free(r->folds);
    memset(r, 0, sizeof *r);
}

static int load_codes(vet_report *r, vet_err *err) {
    if (!r->o.codes) return 0;
    r->codes = vet_codes_load_path(r->o.codes, err);
    return r->codes ? 0 : -1;
}

// The majority gold set of the training stream, or of e itself, and its accuracy on e.
static int baseline(vet_report *r, const vet_eval *e, vet_err *err) {
    size_t count;
    int rc;
    if (r->o.baseline_from) {
        vet_eval *train = vet_eval_new();
        if (!train) return vet_err_nomem(err, "out of memory");
        rc = vet_eval_read_gold_sets(train, r->o.baseline_from, err);
        if (rc == 0) rc = vet_eval_majority_gold(train, &r->base, &r->nbase, &count, err);
        vet_eval_free(train);
    } else {
        rc = vet_eval_majority_gold(e, &r->base, &r->nbase, &count, err);
    }
    if (rc < 0) return -1;
    r->base_acc = vet_eval_constant_accuracy(e, r->base, r->nbase);
    return 0;
}

static int write_number(const char *path, const char *fmt, double x, vet_err *err) {
    vet_afile a;
    if (vet_afile_open(&a, path, err) < 0) return -1;
    if (fprintf(a.f, fmt, x) < 0) {
        vet_err_io(err, "%s: write failed: %s", a.shown, strerror(errno));
        vet_afile_abort(&a);
        return -1;
    }
    return vet_afile_commit(&a, err);
}

int vet_report_write_temperature(const vet_report *r, const char *path, vet_err *err) {
    return write_number(path, "%.6g\n", r->rank.temperature.t, err);
}

int vet_report_write_threshold(const vet_report *r, const char *path, vet_err *err) {
    return write_number(path, "%.17g\n", r->referral.threshold, err);
}

// --refer-below or --fit-threshold: the notes split by their top-1 p.
static int referral(vet_report *r, const vet_ranks *ranks, const vet_eval *e, vet_err *err) {
    const vet_eval_opts *o = &r->o;
    const char *flag = o->fit_threshold > 0 ? "--fit-threshold" : "--refer-below";
    size_t n;
    const double *top_p = vet_ranks_top_p(ranks, &n);
    if (!top_p)
        return vet_errf(err, "%s: %s has no \"ranked\" lists: a note's confidence is its top-1 p from vet-generate "
                        "--rank K", flag, r->input);
    unsigned char *ok = malloc(n);
    if (!ok) return vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < n; i++) ok[i] = (unsigned char)vet_eval_correct(e, i);
    double threshold = o->refer_below;
    int rc = o->fit_threshold > 0 ? vet_referral_fit(top_p, ok, n, o->fit_threshold, &threshold) : 1;
    if (rc > 0) vet_referral_at(top_p, ok, n, threshold, &r->referral), r->referred = 1;
    free(ok);
    if (rc < 0) return vet_err_nomem(err, "out of memory");
    if (rc == 0)
        return vet_errf(err, "--fit-threshold: no threshold codes these notes at accuracy >= %g (not even the surest "
                        "notes alone): lower the target", o->fit_threshold);
    return 0;
}

// Whether any note has a gold label: notes without any are new notes, not wrong answers.
static int any_gold(const vet_metrics *m) {
    for (size_t i = 0; i < m->nlabels; i++)
        if (m->labels[i].support) return 1;
    return 0;
}

// "FIRST and N more shards" (or folds): how a set is named in messages and the report.
static int name_set(char **buf, const char *const *paths, int n, vet_pred_set_kind kind, vet_err *err) {
    if (n >= 2 && asprintf(buf, "%s and %d more %s", paths[0], n - 1, vet_pred_set_noun(kind)) < 0)
        return *buf = NULL, vet_err_nomem(err, "out of memory");
    return 0;
}

// --compare: the other predictions read as these were (any format, one file; or the shards of
// one run), then paired.
static int compare(vet_report *r, vet_err *err) {
    const vet_eval_opts *o = &r->o;
    vet_eval *other = vet_eval_new();
    if (!other) return vet_err_nomem(err, "out of memory");
    const char *format;
    vet_pred_set_kind kind = VET_PRED_SET_SHARDS;
    int rc = o->n_compare_shards >= 2 ? vet_eval_read_set(other, NULL, o->compare_shards, o->n_compare_shards,
                                                          VET_PRED_SNIFF, &format, &kind, NULL, err)
                                      : vet_eval_read_predictions(other, NULL, o->compare, VET_PRED_SNIFF, &format, err);
    if (rc == 0) rc = name_set(&r->other_buf, o->compare_shards, o->n_compare_shards, kind, err);
    r->other = r->other_buf ? r->other_buf : o->compare;
    if (rc == 0) rc = vet_compare(r->samples, other, r->input, r->other, o->bootstrap, o->seed, &r->cmp, err);
    vet_eval_free(other);
    r->compared = rc == 0;
    return rc;
}

// Each fold's accuracy over its own samples (fold i's follow folds 0 .. i-1's in e), and the
// mean and sample standard deviation over the folds: how much the estimate moves from one tenth
// of the notes to the next, beside the pooled figure.
static int score_folds(vet_report *r, const vet_eval *e, const int64_t *fold_notes, int n, vet_err *err) {
    if (!(r->folds = calloc((size_t)n, sizeof *r->folds))) return vet_err_nomem(err, "out of memory");
    r->n_folds = n;
    size_t at = 0;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) {
        int64_t right = 0;
        for (int64_t j = 0; j < fold_notes[i]; j++) right += vet_eval_correct(e, at++);
        r->folds[i].n = fold_notes[i];
        r->folds[i].accuracy = fold_notes[i] > 0 ? (double)right / (double)fold_notes[i] : 0;
        sum += r->folds[i].accuracy;
    }
    r->fold_mean = sum / n;
    for (int i = 0; i < n; i++) sq += (r->folds[i].accuracy - r->fold_mean) * (r->folds[i].accuracy - r->fold_mean);
    r->fold_sd = n > 1 ? sqrt(sq / (n - 1)) : 0;
    return 0;
}

int vet_report_build(const vet_eval_opts *o, vet_report *r, vet_err *err) {
    memset(r, 0, sizeof *r);
    r->o = *o;
    r->input = strcmp(o->predictions, "-") == 0 ? "<stdin>" : o->predictions;
    if (load_codes(r, err) < 0) return -1;
    vet_eval *e = r->samples = vet_eval_new();
    vet_ranks *ranks = vet_ranks_new();
    if (!e || !ranks) return vet_ranks_free(ranks), vet_err_nomem(err, "out of memory");
    if (o->fit_temperature) vet_ranks_keep_lists(ranks);
    if (o->temperature > 0) vet_ranks_rescale(ranks, o->temperature);
    vet_pred_set_kind kind = VET_PRED_SET_SHARDS;
    int64_t *fold_notes = o->n_shards >= 2 ? calloc((size_t)o->n_shards, sizeof *fold_notes) : NULL;
    int rc = o->n_shards >= 2 && !fold_notes ? vet_err_nomem(err, "out of memory")
             : o->n_shards >= 2
                 ? vet_eval_read_set(e, ranks, o->shards, o->n_shards, o->format, &r->format, &kind, fold_notes, err)
                 : vet_eval_read_predictions(e, ranks, o->predictions, o->format, &r->format, err);
    if (rc == 0) rc = name_set(&r->input_buf, o->shards, o->n_shards, kind, err);
    if (rc == 0 && kind == VET_PRED_SET_FOLDS) rc = score_folds(r, e, fold_notes, o->n_shards, err);
    free(fold_notes);
    if (r->input_buf) r->input = r->input_buf;
    if (rc == 0) rc = vet_metrics_compute(e, &r->m, err);
    if (rc == 0 && !any_gold(&r->m))
        rc = vet_errf(err, "%s: no note has a gold label, so there is nothing to score against (new notes? "
                      "vet-dump --csv lists their predictions; a codes column in vet-tokenize's input gives "
                      "notes gold labels)", r->input);
    if (rc == 0) rc = vet_ranking_compute(ranks, e, &r->rank, err);
    if (rc == 0 && (o->refer_below >= 0 || o->fit_threshold > 0)) rc = referral(r, ranks, e, err);
    vet_ranks_free(ranks);
    if (rc == 0 && o->temperature > 0 && !r->rank.kmax)
        rc = vet_errf(err, "--temperature: %s has no \"ranked\" lists: it rescales those of vet-generate --rank all",
                      r->input);
    if (rc == 0 && o->fit_temperature && !r->rank.fitted)
        rc = vet_errf(err, "--fit-temperature: %s has no \"ranked\" lists: fit to the predictions of vet-generate "
                      "--rank all", r->input);
    r->groups = vet_eval_groups(e);
    if (rc == 0 && o->bootstrap > 0) rc = vet_metrics_bootstrap(e, o->bootstrap, o->seed, r->acc_ci, r->f1_ci, err);
    if (rc == 0) rc = baseline(r, e, err);
    if (rc == 0 && o->compare) rc = compare(r, err);
    return rc;
}
