// report_json.c — vet-eval's report as JSON (report.h): every number of the table, the
// per-label, per-species and confusion lists in full, the baseline and the intervals, and the
// ranking metrics (hit@k for every k) when the predictions have them.
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/utf8.h"
#include "eval/report.h"

static json_t *str_array(const char *const *v, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *pair(double lo, double hi) { return json_pack("[ff]", lo, hi); }

static const char *term_of(const vet_report *r, const char *label) {
    const char *t = r->codes ? vet_labels_term(r->codes, label) : NULL;
    return t ? t : "";
}

// A file's name as a JSON string: its bytes need not be UTF-8, which JSON needs (jansson would
// refuse it and the key would be missing), so ill-formed bytes show as U+FFFD.
static json_t *name_json(const char *name) {
    json_t *j = json_string(name);
    if (j) return j;
    char *fixed = vet_utf8_repair(name);
    j = fixed ? json_string(fixed) : NULL;
    free(fixed);
    return j;
}

static void add_summary(json_t *root, const vet_report *r) {
    const vet_metrics *m = &r->m;
    json_object_set_new(root, "input", name_json(r->input));
    json_object_set_new(root, "format", json_string(r->format));
    json_object_set_new(root, "n", json_integer((json_int_t)m->n));
    json_object_set_new(root, "correct", json_integer((json_int_t)m->correct));
    json_object_set_new(root, "accuracy", json_real(m->accuracy));
    json_object_set_new(root, "macro_precision", json_real(m->macro_precision));
    json_object_set_new(root, "macro_recall", json_real(m->macro_recall));
    json_object_set_new(root, "macro_f1", json_real(m->macro_f1));
    json_object_set_new(root, "micro_precision", json_real(m->micro_precision));
    json_object_set_new(root, "micro_recall", json_real(m->micro_recall));
    json_object_set_new(root, "micro_f1", json_real(m->micro_f1));
    json_object_set_new(root, "jaccard", json_real(m->jaccard));
    json_object_set_new(root, "no_label", json_integer((json_int_t)m->no_label));
}

static void add_tables(json_t *root, const vet_report *r) {
    const vet_metrics *m = &r->m;
    json_t *labels = json_object();
    for (size_t i = 0; i < m->nlabels; i++) {
        const vet_label_stat *s = &m->labels[i];
        json_object_set_new(labels, s->label,
                            json_pack("{sIsIsIsfsfsfss}", "support", (json_int_t)s->support, "predicted",
                                      (json_int_t)s->predicted, "tp", (json_int_t)s->tp, "precision", s->precision,
                                      "recall", s->recall, "f1", s->f1, "term", term_of(r, s->label)));
    }
    json_object_set_new(root, "per_label", labels);
    json_t *species = json_object();
    for (size_t i = 0; i < m->nspecies; i++) {
        const vet_species_stat *s = &m->species[i];
        json_object_set_new(species, s->species,
                            json_pack("{sIsIsf}", "n", (json_int_t)s->n, "correct", (json_int_t)s->correct,
                                      "accuracy", s->accuracy));
    }
    json_object_set_new(root, "per_species", species);
    json_t *conf = json_array();
    for (size_t i = 0; i < m->nconfusions; i++) {
        const vet_confusion *c = &m->confusions[i];
        json_array_append_new(conf, json_pack("{sososI}", "gold", str_array(c->gold, c->ngold), "pred",
                                              str_array(c->pred, c->npred), "count", (json_int_t)c->count));
    }
    json_object_set_new(root, "confusions", conf);
}

static void add_baseline_and_ci(json_t *root, const vet_report *r) {
    char joined[4096];
    vet_labels_join(joined, sizeof joined, (const char *const *)r->base, r->nbase, "");
    json_object_set_new(root, "baseline",
                        json_pack("{sssosfssso}", "label", joined, "labels",
                                  str_array((const char *const *)r->base, r->nbase), "accuracy", r->base_acc,
                                  "from", r->o.baseline_from ? r->o.baseline_from : "this set", "optimistic",
                                  json_boolean(!r->o.baseline_from)));
    // "ceiling": {accuracy, correct, groups, groups_mixed, notes_mixed} with groups, else null.
    const vet_metrics *m = &r->m;
    json_object_set_new(root, "ceiling",
                        m->groups == 0 ? json_null()
                                       : json_pack("{sfsIsIsIsI}", "accuracy", m->ceiling, "correct",
                                                   (json_int_t)m->ceiling_correct, "groups", (json_int_t)m->groups,
                                                   "groups_mixed", (json_int_t)m->groups_mixed, "notes_mixed",
                                                   (json_int_t)m->notes_mixed));
    if (r->o.bootstrap > 0)
        json_object_set_new(root, "ci",
                            json_pack("{sososIsIss}", "accuracy", pair(r->acc_ci[0], r->acc_ci[1]), "macro_f1",
                                      pair(r->f1_ci[0], r->f1_ci[1]), "resamples", (json_int_t)r->o.bootstrap, "seed",
                                      (json_int_t)r->o.seed, "method", "percentile"));
    if (r->o.bootstrap > 0)  // the groups drawn whole (metrics.h's cluster bootstrap), or null: notes
        json_object_set_new(json_object_get(root, "ci"), "groups",
                            r->groups > 0 ? json_integer((json_int_t)r->groups) : json_null());
    else
        json_object_set_new(root, "ci", json_null());
}

// An accuracy over notes notes, or null over none: it is undefined, not 0.
static json_t *accuracy_or_null(size_t notes, double accuracy) {
    return notes ? json_real(accuracy) : json_null();
}

// "ranking": {k, hit_at: {"1": ..., "kmax": ...}, mrr, ece, brier, selective: [{coverage, notes,
// threshold, accuracy}, ...]}, and with --fit-temperature "temperature": {t, bound, notes,
// fitted, nll: [at 1, at t], ece: [..], brier: [..]}, with --refer-below or --fit-threshold
// "referral": {threshold, fitted, notes, coded, coverage, accuracy, referred_accuracy[, target]}
// (either accuracy null when its side holds no note),
// with --temperature "p_temperature": T.
static void add_ranking(json_t *root, const vet_report *r) {
    const vet_ranking *g = &r->rank;
    json_t *hit = json_object(), *sel = json_array();
    char k[32];
    for (size_t i = 0; i < g->kmax; i++) {
        snprintf(k, sizeof k, "%zu", i + 1);
        json_object_set_new(hit, k, json_real(g->hit_at[i]));
    }
    for (int i = 0; i < VET_SELECTIVE_ROWS; i++) {
        const vet_selective *s = &g->selective[i];
        json_array_append_new(sel, json_pack("{sisIsfsf}", "coverage", s->coverage, "notes", (json_int_t)s->notes,
                                             "threshold", s->threshold, "accuracy", s->accuracy));
    }
    json_t *rk = json_pack("{sIsosfsfsfso}", "k", (json_int_t)g->kmax, "hit_at", hit, "mrr", g->mrr, "ece", g->ece,
                           "brier", g->brier, "selective", sel);
    if (r->o.temperature > 0) json_object_set_new(rk, "p_temperature", json_real(r->o.temperature));
    if (g->fitted) {
        const vet_temperature *t = &g->temperature;
        json_object_set_new(rk, "temperature",
                            json_pack("{sfsisIsIs[ff]s[ff]s[ff]}", "t", t->t, "bound", t->bound, "notes",
                                      (json_int_t)t->notes, "fitted", (json_int_t)t->fitted, "nll", t->nll[0],
                                      t->nll[1], "ece", t->ece[0], t->ece[1], "brier", t->brier[0], t->brier[1]));
    }
    if (r->referred) {
        const vet_referral *f = &r->referral;
        json_object_set_new(rk, "referral",
                            json_pack("{sfsbsIsIsfsoso}", "threshold", f->threshold, "fitted", r->o.fit_threshold > 0,
                                      "notes", (json_int_t)f->notes, "coded", (json_int_t)f->coded, "coverage",
                                      f->coverage, "accuracy", accuracy_or_null(f->coded, f->accuracy),
                                      "referred_accuracy",
                                      accuracy_or_null(f->notes - f->coded, f->referred_accuracy)));
        if (r->o.fit_threshold > 0)
            json_object_set_new(json_object_get(rk, "referral"), "target", json_real(r->o.fit_threshold));
    }
    json_object_set_new(root, "ranking", rk);
}

// "compare": {other, n, both, only_this, only_other, neither, accuracy: [this, other],
// difference, ci: [lo, hi] or null, mcnemar_p, groups: {n, discordant, p, exact} or null (the
// test with the groups drawn whole, compare.h), only_this_ids, only_other_ids}.
static void add_compare(json_t *root, const vet_report *r) {
    const vet_comparison *c = &r->cmp;
    json_t *cmp = json_pack("{sosIsIsIsIsIs[ff]sf}", "other", name_json(r->other), "n", (json_int_t)c->n, "both",
                            (json_int_t)c->both, "only_this", (json_int_t)c->only_this, "only_other",
                            (json_int_t)c->only_other, "neither", (json_int_t)c->neither, "accuracy", c->acc_this,
                            c->acc_other, "difference", c->diff);
    json_object_set_new(cmp, "ci", isnan(c->ci[0]) ? json_null() : json_pack("[ff]", c->ci[0], c->ci[1]));
    json_object_set_new(cmp, "mcnemar_p", json_real(c->mcnemar_p));
    json_object_set_new(cmp, "groups",
                        c->groups == 0 ? json_null()
                                       : json_pack("{sIsIsfsb}", "n", (json_int_t)c->groups, "discordant",
                                                   (json_int_t)c->groups_discordant, "p", c->groups_p, "exact",
                                                   c->groups_p_exact));
    json_t *here = json_array(), *there = json_array();
    for (size_t i = 0; i < c->only_this; i++) json_array_append_new(here, json_string(c->this_right[i]));
    for (size_t i = 0; i < c->only_other; i++) json_array_append_new(there, json_string(c->other_right[i]));
    json_object_set_new(cmp, "only_this_ids", here);
    json_object_set_new(cmp, "only_other_ids", there);
    json_object_set_new(root, "compare", cmp);
}

// "folds": {mean, sd, each: [{n, accuracy}, ...] in fold order}: a cross-validation's folds alone.
static void add_folds(json_t *root, const vet_report *r) {
    json_t *each = json_array();
    for (int i = 0; i < r->n_folds; i++)
        json_array_append_new(each, json_pack("{sIsf}", "n", (json_int_t)r->folds[i].n, "accuracy", r->folds[i].accuracy));
    json_object_set_new(root, "folds", json_pack("{sfsfso}", "mean", r->fold_mean, "sd", r->fold_sd, "each", each));
}

int vet_report_write_json(const vet_report *r, const char *path, vet_err *err) {
    json_t *root = json_object();
    if (!root) return vet_err_nomem(err, "out of memory");
    add_summary(root, r);
    add_tables(root, r);
    add_baseline_and_ci(root, r);
    if (r->rank.kmax > 0) add_ranking(root, r);
    if (r->compared) add_compare(root, r);
    if (r->n_folds > 0) add_folds(root, r);
    vet_afile a;
    if (vet_afile_open(&a, path, err) < 0) {
        json_decref(root);
        return -1;
    }
    // 17 significant digits: every double read back is the one vet computed (15 are not enough: a
    // selective row's threshold rounded up, given to --refer-below, referred the note it stood for).
    int bad = json_dumpf(root, a.f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) < 0 ||
              fputc('\n', a.f) == EOF;
    json_decref(root);
    if (bad) {
        vet_err_io(err, "%s: write failed: %s", a.shown, strerror(errno));
        vet_afile_abort(&a);
        return -1;
    }
    return vet_afile_commit(&a, err);
}
