// synth.c — see synth.h: the note generator. The table is parsed in synth_table.c; rows are
// written out in synth_write.c. Every random choice comes from the generator's one vet_rng, in
// a fixed order (the comments in fresh_case list it): the same table, options and seed give
// the same rows.
#include "data/synth.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NOTE_SIGNS 6  // more signs than this reads like a textbook, not a field note
#define MAX_DRAWN_SIGNS 256

// ---- a growing string for rendering notes --------------------------------------------------

typedef struct {
    char *s;
    size_t len, cap;
    int oom;  // an allocation failed: later appends do nothing
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (b->len + n + 1 > cap) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}
static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

// ---- the generator -------------------------------------------------------------------------

typedef struct {
    vet_synth_row pub;
    int female;
    int nsigns;
    int signs[MAX_NOTE_SIGNS];
} row_t;

struct vet_synth_gen {
    const vet_synth_table *t;
    vet_synth_opts o;
    vet_rng rng;
    double *species_w;  // [nspecies] draw weight (0 where filtered out or no disease)
    int id_width;
    row_t *rows;        // every row so far: duplicates repeat one of them
    long nrows, cap;
};

vet_synth_opts vet_synth_defaults(void) {
    return (vet_synth_opts){.seed = 1, .noise = 0.05, .dup = 0.2, .species = NULL, .count = 2000};
}

void vet_synth_gen_free(vet_synth_gen *g) {
    if (!g) return;
    for (long i = 0; i < g->nrows; i++) free(g->rows[i].pub.note), free(g->rows[i].pub.symptoms);
    free(g->rows), free(g->species_w), free(g);
}

// keep[i] = 1 for each species named in the comma-separated list (spaces around names ignored).
static int species_named(const vet_synth_table *t, const char *names, int *keep, vet_err *err) {
    char *list = strdup(names);
    if (!list) return vet_err_nomem(err, "out of memory");
    char *save;
    int named = 0;
    for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        while (*s == ' ') s++;
        size_t len = strlen(s);
        while (len && s[len - 1] == ' ') s[--len] = 0;
        if (!*s) continue;
        named++;
        int i = vet_synth_species_index(t, s);
        if (i < 0) {
            char known[256] = "";
            for (int k = 0; k < t->nspecies; k++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k ? ", " : "", t->species[k].name);
            vet_err_kindf(err, VET_E_USAGE, "unknown species '%s' (%s has %s)", s, t->path, known);
            free(list);
            return -1;
        }
        keep[i] = 1;
    }
    free(list);
    if (!named) return vet_err_kindf(err, VET_E_USAGE, "--species '%s' names no species", names);
    return 0;
}

// Each species' draw weight: its table weight when it is selected and has a disease, else 0.
static int species_weights(vet_synth_gen *g, const char *names, vet_err *err) {
    const vet_synth_table *t = g->t;
    int *keep = calloc(t->nspecies, sizeof *keep);
    if (!keep) return vet_err_nomem(err, "out of memory");
    if (names) {
        if (species_named(t, names, keep, err) < 0) {
            free(keep);
            return -1;
        }
    } else {
        for (int i = 0; i < t->nspecies; i++) keep[i] = 1;
    }
    double total = 0;
    for (int s = 0; s < t->nspecies; s++) {
        double dis = 0;
        for (int d = 0; d < t->ndiseases; d++) dis += t->diseases[d].prevalence[s];
        g->species_w[s] = keep[s] && dis > 0 ? t->species[s].weight : 0;
        total += g->species_w[s];
    }
    free(keep);
    if (total <= 0) return vet_err_kindf(err, VET_E_USAGE, "%s: no selected species has both a weight > 0 and a disease", t->path);
    return 0;
}

vet_synth_gen *vet_synth_gen_new(const vet_synth_table *t, const vet_synth_opts *o, long n, vet_err *err) {
    if (!(o->noise >= 0 && o->noise <= 1) || !(o->dup >= 0 && o->dup <= 1)) {
        vet_err_kindf(err, VET_E_USAGE, "noise and dup are probabilities: they must lie in [0,1]");
        return NULL;
    }
    vet_synth_gen *g = calloc(1, sizeof *g);
    if (!g || !(g->species_w = calloc(t->nspecies, sizeof *g->species_w))) {
        free(g);
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    g->t = t;
    g->o = *o;
    g->o.species = NULL;  // not kept: the caller's string may go away
    vet_rng_seed(&g->rng, o->seed);
    g->id_width = 4;
    for (long m = 10000; m <= n; m *= 10) g->id_width++;
    if (species_weights(g, o->species, err) < 0) {
        vet_synth_gen_free(g);
        return NULL;
    }
    return g;
}

// Index drawn with probability w[i] / sum(w); the weights need not be normalised.
static int draw(vet_rng *r, const double *w, int n) {
    double total = 0;
    for (int i = 0; i < n; i++) total += w[i];
    double u = vet_rng_uniform_double(r) * total;
    int last = -1;
    for (int i = 0; i < n; i++) {
        if (w[i] <= 0) continue;
        last = i;
        if (u < w[i]) return i;
        u -= w[i];
    }
    return last;  // rounding at the top end
}

static int chance(vet_rng *r, double p) { return vet_rng_uniform_double(r) < p; }

// "3 years", "1 year", "8 months".
static void age_text(sbuf *b, double age, const char *sep) {
    if (age < 1) {
        int m = (int)(age * 12);
        if (m < 1) m = 1;
        sb_printf(b, "%d%smonth%s", m, sep, m == 1 || *sep == '-' ? "" : "s");
    } else {
        int y = (int)age;
        sb_printf(b, "%d%syear%s", y, sep, y == 1 || *sep == '-' ? "" : "s");
    }
}

// The animal as a note names it: "Goat", "Goat, 3 years", "3-year-old doe", "Female goat,
// about 3 years old".
static void subject_text(sbuf *b, vet_rng *r, const vet_synth_species *sp, int female, double age) {
    const char *word = age < 1 ? sp->young : female ? sp->female : sp->male;
    double u = vet_rng_uniform_double(r);
    if (u < 0.4) {
        sb_puts(b, sp->name);
    } else if (u < 0.6) {
        sb_printf(b, "%s, ", sp->name);
        age_text(b, age, " ");
    } else if (u < 0.8) {
        age_text(b, age, "-");
        sb_printf(b, "-old %s", word);
    } else {
        sb_puts(b, female ? "Female " : "Male ");
        for (const char *c = sp->name; *c; c++) sb_put(b, &(char){(char)tolower((unsigned char)*c)}, 1);
        sb_puts(b, ", about ");
        age_text(b, age, " ");
        sb_puts(b, " old");
    }
}

// " for 3 days", " since yesterday", " for 4 weeks", or "" (half the notes say nothing).
static void duration_text(sbuf *b, vet_rng *r, int chronic) {
    if (chance(r, 0.5)) return;
    int form = (int)vet_rng_below(r, 3);
    if (chronic) {
        int w = 2 + (int)vet_rng_below(r, 7);
        static const char *f[] = {" for %d weeks", " over the last %d weeks", " for about %d weeks"};
        sb_printf(b, f[form], w);
    } else {
        int d = 1 + (int)vet_rng_below(r, 5);
        if (d == 1) {
            static const char *one[] = {" since yesterday", " for one day", " since this morning"};
            sb_puts(b, one[form]);
        } else {
            static const char *f[] = {" for %d days", " since %d days", " for the past %d days"};
            sb_printf(b, f[form], d);
        }
    }
}

// The animal of a fresh case: its species, its disease, its sex and its age (years).
typedef struct {
    int species, disease, female;
    double age;
} animal;

static int draw_animal(vet_synth_gen *g, animal *a) {
    const vet_synth_table *t = g->t;
    vet_rng *r = &g->rng;
    a->species = draw(r, g->species_w, t->nspecies);
    double *w = malloc(t->ndiseases * sizeof *w);
    if (!w) return -1;
    for (int d = 0; d < t->ndiseases; d++) w[d] = t->diseases[d].prevalence[a->species];
    a->disease = draw(r, w, t->ndiseases);
    free(w);
    const vet_synth_disease *dis = &t->diseases[a->disease];
    const vet_synth_species *sp = &t->species[a->species];
    // Most animals a district office sees are female (dairy and breeding stock).
    a->female = dis->female_only || chance(r, 0.7);
    double lo = dis->age_min > 0 ? dis->age_min : 0.1;
    double hi = dis->age_max > 0 && dis->age_max < sp->max_age ? dis->age_max : sp->max_age;
    if (hi <= lo) hi = lo + 0.5;
    a->age = lo + (hi - lo) * vet_rng_uniform_double(r);
    return 0;
}

// The signs a note records, in note order, into chosen: each of the disease's signs by its
// probability (at least one), shuffled, one per group, at most MAX_NOTE_SIGNS. Their number,
// or -1 when out of memory.
static int draw_signs(vet_synth_gen *g, const animal *a, int chosen[MAX_DRAWN_SIGNS]) {
    const vet_synth_table *t = g->t;
    const vet_synth_disease *dis = &t->diseases[a->disease];
    vet_rng *r = &g->rng;
    int nchosen = 0;
    double *pw = malloc(t->nsigns * sizeof *pw);
    if (!pw) return -1;
    for (int k = 0; k < t->nsigns; k++) {
        pw[k] = (t->signs[k].female_only && !a->female) ? 0 : dis->p[k];
        if (pw[k] > 0 && chance(r, pw[k]) && nchosen < MAX_DRAWN_SIGNS) chosen[nchosen++] = k;
    }
    if (nchosen == 0) {
        int k = draw(r, pw, t->nsigns);
        if (k < 0) k = draw(r, dis->p, t->nsigns);  // only female signs, male animal: keep one
        chosen[nchosen++] = k;
    }
    free(pw);
    for (int i = nchosen - 1; i > 0; i--) {  // Fisher-Yates: notes list signs in any order
        int j = (int)vet_rng_below(r, (uint64_t)i + 1);
        int tmp = chosen[i];
        chosen[i] = chosen[j], chosen[j] = tmp;
    }
    // One sign per group (fever or high fever, not both): the first in note order stays.
    int kept = 0;
    for (int i = 0; i < nchosen; i++) {
        const char *grp = t->signs[chosen[i]].group;
        int clash = 0;
        for (int j = 0; j < kept && grp; j++) {
            const char *other = t->signs[chosen[j]].group;
            if (other && strcmp(grp, other) == 0) clash = 1;
        }
        if (!clash) chosen[kept++] = chosen[i];
    }
    return kept < MAX_NOTE_SIGNS ? kept : MAX_NOTE_SIGNS;
}

// The template with its placeholders filled in ({Subject} capitalised, {subject} not).
static void fill_template(sbuf *note, const char *tpl, const char *subject, const char *signs, const char *duration) {
    for (const char *p = tpl; *p;) {
        if (strncmp(p, "{Subject}", 9) == 0 || strncmp(p, "{subject}", 9) == 0) {
            size_t at = note->len;
            sb_puts(note, subject);
            if (note->s && note->len > at)
                note->s[at] = (char)(p[1] == 'S' ? toupper((unsigned char)note->s[at]) : tolower((unsigned char)note->s[at]));
            p += 9;
        } else if (strncmp(p, "{signs}", 7) == 0) {
            sb_puts(note, signs);
            p += 7;
        } else if (strncmp(p, "{duration}", 10) == 0) {
            sb_puts(note, duration);
            p += 10;
        } else {
            sb_put(note, p++, 1);
        }
    }
}

// The note of a case: subject, duration, the signs' phrases ("a, b and c"), a template. Sets
// row's note and symptoms (the canonical sign names, ';'-joined). 0, or -1 out of memory.
static int render_note(vet_synth_gen *g, const animal *a, const int *chosen, int nchosen, row_t *row) {
    const vet_synth_table *t = g->t;
    vet_rng *r = &g->rng;
    sbuf subj = {0}, dur = {0}, signs = {0}, note = {0}, sym = {0};
    subject_text(&subj, r, &t->species[a->species], a->female, a->age);
    duration_text(&dur, r, t->diseases[a->disease].chronic);
    int oxford = chance(r, 0.5);
    for (int i = 0; i < nchosen; i++) {
        const vet_synth_sign *sg = &t->signs[chosen[i]];
        if (i > 0) sb_puts(&signs, i == nchosen - 1 ? (oxford && nchosen > 2 ? ", and " : " and ") : ", ");
        sb_puts(&signs, sg->phrases[vet_rng_below(r, (uint64_t)sg->nphrases)]);
        if (i > 0) sb_puts(&sym, ";");
        sb_puts(&sym, sg->name);
    }
    const char *tpl = t->templates[vet_rng_below(r, (uint64_t)t->ntemplates)];
    fill_template(&note, tpl, subj.s ? subj.s : "", signs.s ? signs.s : "", dur.s ? dur.s : "");
    int oom = subj.oom || dur.oom || signs.oom || note.oom || sym.oom || !note.s || !sym.s;
    free(subj.s), free(dur.s), free(signs.s);
    if (oom) {
        free(note.s), free(sym.s);
        return -1;
    }
    row->pub.note = note.s;
    row->pub.symptoms = sym.s;
    return 0;
}

// Draws a fresh case into row (everything but id, label and dup_of). The draws, in order: the
// animal (species, disease, sex unless the disease is female-only, age), the signs (one coin
// per possible sign, a fallback draw when none came up, the shuffle), then the wording
// (subject form, duration, list style, one phrase per sign, the template).
static int fresh_case(vet_synth_gen *g, row_t *row) {
    animal a;
    int chosen[MAX_DRAWN_SIGNS];
    if (draw_animal(g, &a) < 0) return -1;
    int nchosen = draw_signs(g, &a, chosen);
    if (nchosen < 0 || render_note(g, &a, chosen, nchosen, row) < 0) return -1;
    row->pub.species = a.species;
    row->pub.true_disease = a.disease;
    row->female = a.female;
    row->nsigns = nchosen;
    memcpy(row->signs, chosen, nchosen * sizeof *chosen);
    return 0;
}

// Label noise: another disease of the same species (and sex) that could explain the note,
// weighted by prevalence times the number of the note's signs it also shows.
static int noisy_label(vet_synth_gen *g, const row_t *row) {
    const vet_synth_table *t = g->t;
    int s = row->pub.species, truth = row->pub.true_disease;
    double *w = calloc(t->ndiseases, sizeof *w), total = 0;
    if (!w) return truth;
    for (int pass = 0; pass < 2 && total <= 0; pass++) {
        for (int d = 0; d < t->ndiseases; d++) {
            const vet_synth_disease *dis = &t->diseases[d];
            w[d] = 0;
            if (d == truth || dis->prevalence[s] <= 0 || (dis->female_only && !row->female)) continue;
            int overlap = 0;
            for (int i = 0; i < row->nsigns; i++) overlap += dis->p[row->signs[i]] > 0;
            w[d] = dis->prevalence[s] * (pass == 0 ? overlap : 1);  // pass 1: no overlap anywhere
            total += w[d];
        }
    }
    int d = total > 0 ? draw(&g->rng, w, t->ndiseases) : truth;
    free(w);
    return d;
}

const vet_synth_row *vet_synth_gen_next(vet_synth_gen *g, vet_err *err) {
    if (g->nrows == g->cap) {
        long cap = g->cap ? g->cap * 2 : 1024;
        row_t *p = realloc(g->rows, cap * sizeof *p);
        if (!p) {
            vet_err_nomem(err, "out of memory after %ld rows", g->nrows);
            return NULL;
        }
        g->rows = p, g->cap = cap;
    }
    row_t *row = &g->rows[g->nrows];
    memset(row, 0, sizeof *row);
    row->pub.dup_of = -1;
    // Draw both coins every row, so a row's fate does not shift the stream of the next ones
    // differently for different --dup/--noise settings more than it must.
    double u_dup = vet_rng_uniform_double(&g->rng);
    if (g->nrows > 0 && u_dup < g->o.dup) {
        long j = (long)vet_rng_below(&g->rng, (uint64_t)g->nrows);
        const row_t *src = &g->rows[j];
        *row = *src;
        row->pub.dup_of = j;
        row->pub.note = strdup(src->pub.note);
        row->pub.symptoms = strdup(src->pub.symptoms);
        if (!row->pub.note || !row->pub.symptoms) {
            free(row->pub.note), free(row->pub.symptoms);
            vet_err_nomem(err, "out of memory");
            return NULL;
        }
    } else if (fresh_case(g, row)) {
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    double u_noise = vet_rng_uniform_double(&g->rng);
    row->pub.disease = u_noise < g->o.noise ? noisy_label(g, row) : row->pub.true_disease;
    snprintf(row->pub.id, sizeof row->pub.id, "syn-%0*ld", g->id_width, g->nrows + 1);
    g->nrows++;
    return &row->pub;
}
