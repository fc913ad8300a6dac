// report_table.c — vet-eval's report as a table (report.h): a summary, the ranking metrics (only
// for vet-generate --rank predictions), the per-label and per-species tables and the most
// frequent confusions, no line wider than WIDTH columns.
#include <math.h>
#include <stdio.h>

#include "eval/report.h"

#define WIDTH 100  // no line of the report is wider

// s cut to at most width columns (UTF-8 code points), ending in "..." when cut; control
// characters become spaces so a label from generated text cannot break the table.
static const char *fit(char *out, size_t cap, const char *s, int width) {
    int cols = 0;
    for (const char *p = s; *p; p++) cols += ((unsigned char)*p & 0xC0) != 0x80;
    size_t o = 0;
    int keep = cols <= width ? cols : width - 3, c = 0;
    for (const char *p = s; *p && o + 4 < cap; p++) {
        unsigned char b = (unsigned char)*p;
        if ((b & 0xC0) != 0x80 && c++ == keep) break;
        out[o++] = b < 0x20 || b == 0x7f ? ' ' : (char)b;
    }
    if (cols > width) o += (size_t)snprintf(out + o, cap - o, "...");
    out[o] = 0;
    return out;
}

// "a;b" for a label set, "(none)" for the empty set.
static void join_set(char *out, size_t cap, const char *const *v, size_t n) { vet_labels_join(out, cap, v, n, "(none)"); }

static const char *term_of(const vet_report *r, const char *label) {
    const char *t = r->codes ? vet_labels_term(r->codes, label) : NULL;
    return t ? t : "";
}

// n, accuracy, P/R/F1, Jaccard, outputs with no label, the baseline and (with groups) the ceiling.
static void print_summary(FILE *o, const vet_report *r) {
    const vet_metrics *m = &r->m;
    char a[512], b[512];
    fprintf(o, "%s (%s)\n", fit(a, sizeof a, r->input, WIDTH - 10), r->format);
    fprintf(o, "%-17s %zu\n", "n", m->n);
    if (r->o.bootstrap > 0) {
        fprintf(o, "%-17s %.4f  95%% CI [%.4f, %.4f] (percentile bootstrap, %d resamples, seed %llu)\n",
                "accuracy", m->accuracy, r->acc_ci[0], r->acc_ci[1], r->o.bootstrap, (unsigned long long)r->o.seed);
        if (r->groups > 0)
            fprintf(o, "%-17s (drawing the %zu groups whole, not the %zu notes one by one)\n", "", r->groups, m->n);
    } else {
        fprintf(o, "%-17s %.4f  (%zu of %zu exactly right)\n", "accuracy", m->accuracy, m->correct, m->n);
    }
    fprintf(o, "%-17s %.4f\n", "macro precision", m->macro_precision);
    fprintf(o, "%-17s %.4f\n", "macro recall", m->macro_recall);
    if (r->o.bootstrap > 0)
        fprintf(o, "%-17s %.4f  95%% CI [%.4f, %.4f]\n", "macro F1", m->macro_f1, r->f1_ci[0], r->f1_ci[1]);
    else
        fprintf(o, "%-17s %.4f\n", "macro F1", m->macro_f1);
    fprintf(o, "%-17s %.4f\n", "micro precision", m->micro_precision);
    fprintf(o, "%-17s %.4f\n", "micro recall", m->micro_recall);
    fprintf(o, "%-17s %.4f\n", "micro F1", m->micro_f1);
    fprintf(o, "%-17s %.4f\n", "mean Jaccard", m->jaccard);
    fprintf(o, "%-17s %zu  (outputs that parsed to no label, %.1f%%)\n", "no label", m->no_label,
            100.0 * m->no_label / m->n);
    join_set(b, sizeof b, (const char *const *)r->base, r->nbase);
    fprintf(o, "%-17s %.4f  always answering %s\n", "baseline", r->base_acc, fit(a, sizeof a, b, WIDTH - 43));
    if (r->o.baseline_from)
        fprintf(o, "%-17s the majority gold set of %s\n", "", fit(a, sizeof a, r->o.baseline_from, WIDTH - 42));
    else
        fprintf(o, "%-17s the majority gold set of this set: optimistic, it peeks at the test labels\n", "");
    if (m->groups > 0)
        fprintf(o, "%-17s %.4f  the most a model answering each group's notes alike can score: %zu of the\n"
                   "%-17s %zu groups (%zu notes) hold notes written alike under other gold labels\n",
                "ceiling", m->ceiling, m->groups_mixed, "", m->groups, m->notes_mixed);
}

// --fit-temperature: T, and what it does to the NLL, ECE and Brier on these same notes.
static void print_temperature(FILE *o, const vet_temperature *t) {
    fprintf(o, "\ntemperature fitted to these %zu notes (%zu with a gold label ranked): T = %.4g%s\n", t->notes,
            t->fitted, t->t, t->bound < 0 ? " (the search's lower end: the fit wants it lower)"
                             : t->bound > 0 ? " (the search's upper end: the fit wants it higher)" : "");
    fprintf(o, "%-17s %9s %9s\n", "", "T = 1", "fitted");
    fprintf(o, "%-17s %9.4f %9.4f  (mean -log p of the gold label)\n", "NLL", t->nll[0], t->nll[1]);
    fprintf(o, "%-17s %9.4f %9.4f\n", "top-1 ECE", t->ece[0], t->ece[1]);
    fprintf(o, "%-17s %9.4f %9.4f\n", "top-1 Brier", t->brier[0], t->brier[1]);
    fprintf(o, "%-17s (in-sample: fit on validation notes; vet-generate --rank-temperature T)\n", "");
}

// An accuracy over notes notes, as "0.8333", or "-" over none: it is undefined, not 0.
static const char *accuracy_or_dash(char *buf, size_t size, size_t notes, double accuracy) {
    if (notes == 0) return "-";
    snprintf(buf, size, "%.4f", accuracy);
    return buf;
}

// --refer-below / --fit-threshold: how many notes are coded at the threshold, and how well.
static void print_referral(FILE *o, const vet_report *r) {
    const vet_referral *f = &r->referral;
    if (r->o.fit_threshold > 0)
        fprintf(o, "\nreferral (threshold fitted to these notes for accuracy >= %g: %.4f; in-sample, apply it to\n"
                   "other notes with vet-eval --refer-below)\n", r->o.fit_threshold, f->threshold);
    else
        fprintf(o, "\nreferral (notes with top-1 p below %.4f go to a person)\n", f->threshold);
    size_t referred = f->notes - f->coded;
    char a[32], b[32];
    fprintf(o, "%-17s %zu of %zu (%.1f%%), accuracy %s\n", "coded", f->coded, f->notes, 100 * f->coverage,
            accuracy_or_dash(a, sizeof a, f->coded, f->accuracy));
    fprintf(o, "%-17s %zu (the model's accuracy on them: %s)\n", "referred", referred,
            accuracy_or_dash(b, sizeof b, referred, f->referred_accuracy));
}

// hit@k for k = 1, 2, 3, 5 and the longest list (those it reaches), MRR and the top label's
// calibration, then what accuracy the most confident notes keep when the others go to a person.
static void print_ranking(FILE *o, const vet_report *r) {
    const vet_ranking *g = &r->rank;
    char name[32];
    fprintf(o, "\nranking (vet-generate --rank: up to %zu labels per note, most probable first)\n", g->kmax);
    if (r->o.temperature > 0)
        fprintf(o, "(p at temperature %g, from each note's logp: vet-eval --temperature)\n", r->o.temperature);
    for (size_t k = 1; k <= g->kmax; k++) {
        if (k > 3 && k != 5 && k != g->kmax) continue;
        snprintf(name, sizeof name, "hit@%zu", k);
        fprintf(o, "%-17s %.4f  (a gold label in the top %zu)\n", name, g->hit_at[k - 1], k);
    }
    fprintf(o, "%-17s %.4f  (mean of 1/rank of the first gold label; 0 when none is ranked)\n", "MRR", g->mrr);
    fprintf(o, "%-17s %.4f  (the top label's p against how often it is gold, 10 bins)\n", "top-1 ECE", g->ece);
    fprintf(o, "%-17s %.4f  (mean (p - correct)^2 of the top label; correct: 1 if it is gold)\n", "top-1 Brier",
            g->brier);
    if (g->fitted) print_temperature(o, &g->temperature);
    fprintf(o, "\nselective prediction (the least confident notes go to a person; by top-1 p)\n");
    fprintf(o, "%8s %8s %10s %9s\n", "coverage", "notes", "threshold", "accuracy");
    for (int i = 0; i < VET_SELECTIVE_ROWS; i++) {
        const vet_selective *s = &g->selective[i];
        fprintf(o, "%7d%% %8zu %10.4f %9.4f\n", s->coverage, s->notes, s->threshold, s->accuracy);
    }
    if (r->referred) print_referral(o, r);
}

// A count of discordant notes and the first of their ids, ", "-separated and cut to the table's
// width (the JSON has them all).
static void discordant(FILE *o, const char *name, const char *const *id, size_t n) {
    if (n == 0) {
        fprintf(o, "%-17s 0\n", name);
        return;
    }
    char all[2048], cut[512];
    size_t len = 0;
    all[0] = 0;
    for (size_t i = 0; i < n && len + 2 < sizeof all; i++)
        len += (size_t)snprintf(all + len, sizeof all - len, "%s%s", i ? ", " : "", id[i]);
    fprintf(o, "%-17s %-5zu %s\n", name, n, fit(cut, sizeof cut, all, WIDTH - 24));
}

// --compare: the 2x2 table of exactly right notes, the difference with its paired interval and
// McNemar's exact p, by notes and (when the notes are in groups) by groups drawn whole.
static void print_compare(FILE *o, const vet_report *r) {
    const vet_comparison *c = &r->cmp;
    char a[512];
    fprintf(o, "\ncompared note by note with %s (the same %zu notes)\n", fit(a, sizeof a, r->other, WIDTH - 50),
            c->n);
    fprintf(o, "%-17s %.4f here, %.4f there: difference %+.4f", "accuracy", c->acc_this, c->acc_other, c->diff);
    if (isnan(c->ci[0]))
        fputc('\n', o);
    else
        fprintf(o, "  95%% CI [%+.4f, %+.4f]\n%-17s (paired percentile bootstrap, %d resamples, seed %llu%s)\n",
                c->ci[0], c->ci[1], "", r->o.bootstrap, (unsigned long long)r->o.seed,
                r->groups > 0 ? "; groups whole" : "");
    fprintf(o, "%-17s %zu\n", "both right", c->both);
    discordant(o, "only here right", c->this_right, c->only_this);
    discordant(o, "only there right", c->other_right, c->only_other);
    fprintf(o, "%-17s %zu\n", "neither", c->neither);
    fprintf(o, "%-17s %.4g  (exact McNemar test, two-sided, on the %zu notes only one gets right)\n", "McNemar p",
            c->mcnemar_p, c->only_this + c->only_other);
    if (c->groups > 0)
        fprintf(o, "%-17s %.4g  (the same, each group one outcome: %s on the\n%-17s %zu of %zu groups whose notes "
                   "only one gets right do not cancel)\n",
                "  groups whole", c->groups_p, c->groups_p_exact ? "exact sign-flip test" : "chi-square approximation",
                "", c->groups_discordant, c->groups);
}

static void print_labels(FILE *o, const vet_report *r) {
    const vet_metrics *m = &r->m;
    char a[512], b[512];
    fprintf(o, "\nper label (P = 0 for a label never predicted; macro means over these %zu labels)\n", m->nlabels);
    fprintf(o, "%-18s %7s %7s %9s %7s %7s  %s\n", "label", "support", "pred", "precision", "recall", "F1", "term");
    for (size_t i = 0; i < m->nlabels; i++) {
        const vet_label_stat *s = &m->labels[i];
        const char *term = term_of(r, s->label);
        fprintf(o, "%-18s %7zu %7zu %9.4f %7.4f %7.4f%s%s\n", fit(a, sizeof a, s->label, 18), s->support, s->predicted,
                s->precision, s->recall, s->f1, *term ? "  " : "", fit(b, sizeof b, term, WIDTH - 62));
    }
}

static void print_species(FILE *o, const vet_report *r) {
    const vet_metrics *m = &r->m;
    char a[512];
    fprintf(o, "\nper species\n%-18s %7s %9s\n", "species", "n", "accuracy");
    for (size_t i = 0; i < m->nspecies; i++) {
        const vet_species_stat *s = &m->species[i];
        fprintf(o, "%-18s %7zu %9.4f\n", fit(a, sizeof a, *s->species ? s->species : "(none)", 18), s->n, s->accuracy);
    }
}

// A cross-validation's folds, each scored alone: how far one fold's figure strays from the pooled.
static void print_folds(FILE *o, const vet_report *r) {
    fprintf(o, "\nper fold (each fold's test split alone; mean %.4f, sd %.4f over %d folds)\n%-18s %7s %9s\n",
            r->fold_mean, r->fold_sd, r->n_folds, "fold", "n", "accuracy");
    for (int i = 0; i < r->n_folds; i++) {
        char name[32];
        snprintf(name, sizeof name, "%d/%d", i, r->n_folds);
        fprintf(o, "%-18s %7lld %9.4f\n", name, (long long)r->folds[i].n, r->folds[i].accuracy);
    }
}

static void print_confusions(FILE *o, const vet_report *r) {
    const vet_metrics *m = &r->m;
    char a[512], b[512], c[512], g[256];
    size_t show = (size_t)r->o.confusions < m->nconfusions ? (size_t)r->o.confusions : m->nconfusions;
    if (r->o.confusions == 0) return;  // --confusions 0: none asked for, no heading over nothing
    if (m->nconfusions == 0) {
        fprintf(o, "\nconfusions: none (every sample exactly right)\n");
        return;
    }
    fprintf(o, "\nconfusions (the %zu most frequent of %zu)\n%7s  %s\n", show, m->nconfusions, "count", "gold -> predicted");
    for (size_t i = 0; i < show; i++) {
        const vet_confusion *cf = &m->confusions[i];
        join_set(a, sizeof a, cf->gold, cf->ngold);
        join_set(b, sizeof b, cf->pred, cf->npred);
        fprintf(o, "%7zu  %s -> %s\n", cf->count, fit(g, sizeof g, a, 43), fit(c, sizeof c, b, 43));
    }
}

int vet_report_print(FILE *o, const vet_report *r) {
    print_summary(o, r);
    if (r->rank.kmax > 0) print_ranking(o, r);
    if (r->compared) print_compare(o, r);
    print_labels(o, r);
    print_species(o, r);
    if (r->n_folds > 0) print_folds(o, r);
    print_confusions(o, r);
    return ferror(o) ? -1 : 0;
}
