// synth.c — see synth.h. The table parser first, then the note generator, then the writers.
#include "data/synth.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELDS 16
#define MAX_NOTE_SIGNS 6  // more signs than this reads like a textbook, not a field note

// ---- small helpers ------------------------------------------------------------------------

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

// Grows *arr (elements of size elem) so that index n fits: capacity 8, 16, 32, ... is kept
// implicit (the count alone says when the array is full). 0 on success.
static int grow(void *arr, int n, size_t elem) {
    void **a = arr;
    if (n != 0 && (n < 8 || (n & (n - 1)) != 0)) return 0;
    size_t cap = n == 0 ? 8 : (size_t)n * 2;
    void *p = realloc(*a, cap * elem);
    if (!p) return -1;
    *a = p;
    return 0;
}

// Strict number: the whole field, finite.
static int parse_number(const char *s, double *out) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

// A growing string for rendering notes.
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
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

// ---- the table ----------------------------------------------------------------------------

void vet_synth_table_free(vet_synth_table *t) {
    if (!t) return;
    for (int i = 0; i < t->nspecies; i++) {
        vet_synth_species *s = &t->species[i];
        free(s->name), free(s->young), free(s->female), free(s->male);
    }
    for (int i = 0; i < t->nsigns; i++) {
        vet_synth_sign *s = &t->signs[i];
        free(s->name), free(s->group);
        for (int j = 0; j < s->nphrases; j++) free(s->phrases[j]);
        free(s->phrases);
    }
    for (int i = 0; i < t->ndiseases; i++) {
        vet_synth_disease *d = &t->diseases[i];
        free(d->code), free(d->name), free(d->term), free(d->prevalence), free(d->p);
    }
    for (int i = 0; i < t->ntemplates; i++) free(t->templates[i]);
    free(t->species), free(t->signs), free(t->diseases), free(t->templates), free(t->path);
    free(t);
}

int vet_synth_species_index(const vet_synth_table *t, const char *name) {
    for (int i = 0; i < t->nspecies; i++)
        if (strcasecmp(t->species[i].name, name) == 0) return i;
    return -1;
}

int vet_synth_disease_index(const vet_synth_table *t, const char *code) {
    for (int i = 0; i < t->ndiseases; i++)
        if (strcmp(t->diseases[i].code, code) == 0) return i;
    return -1;
}

static int sign_index(const vet_synth_table *t, const char *name) {
    for (int i = 0; i < t->nsigns; i++)
        if (strcmp(t->signs[i].name, name) == 0) return i;
    return -1;
}

// A disease is complete when it occurs in some species and shows some sign.
static int check_disease(const vet_synth_table *t, const vet_synth_disease *d, vet_err *err) {
    int any = 0;
    for (int s = 0; s < t->nspecies; s++) {
        if (d->prevalence[s] < 0) d->prevalence[s] = 0;  // unset: absent
        if (d->prevalence[s] > 0) any = 1;
    }
    if (!any)
        return vet_errf(err, "%s:%d: disease %s (%s) occurs in no species (add a row "
                        "'prevalence<TAB>SPECIES<TAB>WEIGHT' with WEIGHT > 0)",
                        t->path, d->line, d->code, d->name);
    any = 0;
    for (int k = 0; k < t->nsigns; k++) {
        if (d->p[k] < 0) d->p[k] = 0;
        if (d->p[k] > 0) any = 1;
    }
    if (!any)
        return vet_errf(err, "%s:%d: disease %s (%s) shows no sign (add a row "
                        "'shows<TAB>SIGN<TAB>PROBABILITY' with PROBABILITY > 0)",
                        t->path, d->line, d->code, d->name);
    return 0;
}

// Template placeholders: each {...} must be one we render, and {signs} must be there.
static int check_template(const char *text, const char *path, int line, vet_err *err) {
    static const char *known[] = {"{Subject}", "{subject}", "{signs}", "{duration}"};
    int has_signs = 0;
    for (const char *p = strchr(text, '{'); p; p = strchr(p + 1, '{')) {
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            if (strncmp(p, known[i], strlen(known[i])) == 0) ok = 1;
        if (!ok) {
            const char *e = strchr(p, '}');
            int n = e ? (int)(e - p + 1) : (int)strlen(p);
            return vet_errf(err, "%s:%d: unknown placeholder %.*s in template (use {Subject}, "
                            "{subject}, {signs}, {duration})", path, line, n, p);
        }
        if (strncmp(p, "{signs}", 7) == 0) has_signs = 1;
    }
    if (!has_signs) return vet_errf(err, "%s:%d: template has no {signs}", path, line);
    return 0;
}

static int expect_fields(int nf, int lo, int hi, const char *kind, const char *usage,
                         const char *path, int line, vet_err *err) {
    if (nf >= lo && nf <= hi) return 0;
    return vet_errf(err, "%s:%d: a '%s' row has %d TAB-separated fields, expected %s", path,
                    line, kind, nf, usage);
}

// One row; fields are NUL-terminated in place. cur: the disease being described, or -1.
static int parse_row(vet_synth_table *t, char **f, int nf, int line, int *cur, vet_err *err) {
    const char *P = t->path;
    const char *kind = f[0];
    if (strcmp(kind, "species") == 0) {
        if (expect_fields(nf, 7, 7, kind, "species NAME WEIGHT YOUNG FEMALE MALE MAX_AGE", P, line, err)) return -1;
        if (t->ndiseases) return vet_errf(err, "%s:%d: species rows must come before the first disease", P, line);
        if (!*f[1]) return vet_errf(err, "%s:%d: species with an empty name", P, line);
        if (vet_synth_species_index(t, f[1]) >= 0) return vet_errf(err, "%s:%d: species %s declared twice", P, line, f[1]);
        double w, age;
        if (parse_number(f[2], &w) || w < 0) return vet_errf(err, "%s:%d: weight '%s' is not a number >= 0", P, line, f[2]);
        if (parse_number(f[6], &age) || age <= 0) return vet_errf(err, "%s:%d: max age '%s' is not a number > 0", P, line, f[6]);
        for (int i = 3; i <= 5; i++)
            if (!*f[i]) return vet_errf(err, "%s:%d: species %s: empty word for a young/female/male animal", P, line, f[1]);
        if (grow(&t->species, t->nspecies, sizeof *t->species)) return vet_err_nomem(err, "out of memory");
        vet_synth_species *s = &t->species[t->nspecies++];
        *s = (vet_synth_species){xstrdup(f[1]), w, xstrdup(f[3]), xstrdup(f[4]), xstrdup(f[5]), age};
        if (!s->name || !s->young || !s->female || !s->male) return vet_err_nomem(err, "out of memory");
        return 0;
    }
    if (strcmp(kind, "sign") == 0) {
        if (expect_fields(nf, 3, 4, kind, "sign NAME PHRASE|PHRASE|... [FLAGS]", P, line, err)) return -1;
        if (t->ndiseases) return vet_errf(err, "%s:%d: sign rows must come before the first disease", P, line);
        if (!*f[1]) return vet_errf(err, "%s:%d: sign with an empty name", P, line);
        if (sign_index(t, f[1]) >= 0) return vet_errf(err, "%s:%d: sign '%s' declared twice", P, line, f[1]);
        if (grow(&t->signs, t->nsigns, sizeof *t->signs)) return vet_err_nomem(err, "out of memory");
        vet_synth_sign *s = &t->signs[t->nsigns++];
        *s = (vet_synth_sign){xstrdup(f[1]), NULL, 0, 0, NULL};
        if (!s->name) return vet_err_nomem(err, "out of memory");
        char *save;
        for (char *tok = nf == 4 ? strtok_r(f[3], " ", &save) : NULL; tok; tok = strtok_r(NULL, " ", &save)) {
            if (strcmp(tok, "female") == 0) {
                s->female_only = 1;
            } else if (strncmp(tok, "group=", 6) == 0 && tok[6]) {
                free(s->group);
                if (!(s->group = xstrdup(tok + 6))) return vet_err_nomem(err, "out of memory");
            } else {
                return vet_errf(err, "%s:%d: sign '%s': unknown flag '%s' (known: female, group=NAME)", P, line, f[1], tok);
            }
        }
        for (char *p = f[2], *bar; p; p = bar ? bar + 1 : NULL) {
            bar = strchr(p, '|');
            if (bar) *bar = 0;
            if (!*p) return vet_errf(err, "%s:%d: sign '%s' has an empty phrase (check for '||' or a '|' at an end)", P, line, f[1]);
            if (grow(&s->phrases, s->nphrases, sizeof *s->phrases)) return vet_err_nomem(err, "out of memory");
            if (!(s->phrases[s->nphrases++] = xstrdup(p))) return vet_err_nomem(err, "out of memory");
        }
        return 0;
    }
    if (strcmp(kind, "template") == 0) {
        if (expect_fields(nf, 2, 2, kind, "template TEXT", P, line, err)) return -1;
        if (check_template(f[1], P, line, err)) return -1;
        if (grow(&t->templates, t->ntemplates, sizeof *t->templates)) return vet_err_nomem(err, "out of memory");
        if (!(t->templates[t->ntemplates++] = xstrdup(f[1]))) return vet_err_nomem(err, "out of memory");
        return 0;
    }
    if (strcmp(kind, "disease") == 0) {
        if (expect_fields(nf, 4, 5, kind, "disease CODE NAME TERM [OPTIONS]", P, line, err)) return -1;
        if (*cur >= 0 && check_disease(t, &t->diseases[*cur], err)) return -1;
        size_t clen = strlen(f[1]);
        if (clen < 6 || clen > 18 || strspn(f[1], "0123456789") != clen || f[1][0] == '0')
            return vet_errf(err, "%s:%d: code '%s' is not a SNOMED-CT concept id (6 to 18 digits)", P, line, f[1]);
        if (vet_synth_disease_index(t, f[1]) >= 0) return vet_errf(err, "%s:%d: disease %s declared twice", P, line, f[1]);
        if (!*f[2] || !*f[3]) return vet_errf(err, "%s:%d: disease %s: empty name or term", P, line, f[1]);
        if (!t->nspecies || !t->nsigns)
            return vet_errf(err, "%s:%d: declare the species and signs before the first disease", P, line);
        vet_synth_disease d = {.line = line};
        if (nf == 5) {
            char *save;
            for (char *tok = strtok_r(f[4], " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                double lo, hi;
                char extra;
                if (strcmp(tok, "female") == 0) d.female_only = 1;
                else if (strcmp(tok, "chronic") == 0) d.chronic = 1;
                else if (sscanf(tok, "age=%lf-%lf%c", &lo, &hi, &extra) == 2 && lo >= 0 && hi > lo) d.age_min = lo, d.age_max = hi;
                else return vet_errf(err, "%s:%d: disease %s: unknown option '%s' (known: female, chronic, age=MIN-MAX)", P, line, f[1], tok);
            }
        }
        if (grow(&t->diseases, t->ndiseases, sizeof *t->diseases)) return vet_err_nomem(err, "out of memory");
        d.code = xstrdup(f[1]), d.name = xstrdup(f[2]), d.term = xstrdup(f[3]);
        d.prevalence = malloc(t->nspecies * sizeof *d.prevalence);
        d.p = malloc(t->nsigns * sizeof *d.p);
        t->diseases[t->ndiseases] = d;
        *cur = t->ndiseases++;
        if (!d.code || !d.name || !d.term || !d.prevalence || !d.p) return vet_err_nomem(err, "out of memory");
        for (int s = 0; s < t->nspecies; s++) d.prevalence[s] = -1;  // -1: no row yet
        for (int k = 0; k < t->nsigns; k++) d.p[k] = -1;
        return 0;
    }
    if (strcmp(kind, "prevalence") == 0 || strcmp(kind, "shows") == 0) {
        int prev = kind[0] == 'p';
        if (expect_fields(nf, 3, 3, kind, prev ? "prevalence SPECIES WEIGHT" : "shows SIGN PROBABILITY", P, line, err)) return -1;
        if (*cur < 0) return vet_errf(err, "%s:%d: a '%s' row before any 'disease' row", P, line, kind);
        vet_synth_disease *d = &t->diseases[*cur];
        double v;
        if (prev) {
            int s = vet_synth_species_index(t, f[1]);
            if (s < 0) return vet_errf(err, "%s:%d: unknown species '%s' (declare it with a 'species' row)", P, line, f[1]);
            if (parse_number(f[2], &v) || v < 0) return vet_errf(err, "%s:%d: weight '%s' is not a number >= 0", P, line, f[2]);
            if (d->prevalence[s] >= 0) return vet_errf(err, "%s:%d: disease %s: prevalence in %s given twice", P, line, d->code, f[1]);
            d->prevalence[s] = v;
        } else {
            int k = sign_index(t, f[1]);
            if (k < 0) return vet_errf(err, "%s:%d: unknown sign '%s' (declare it with a 'sign' row)", P, line, f[1]);
            if (parse_number(f[2], &v)) return vet_errf(err, "%s:%d: probability '%s' is not a number", P, line, f[2]);
            if (v < 0 || v > 1) return vet_errf(err, "%s:%d: probability %s outside [0,1]", P, line, f[2]);
            if (d->p[k] >= 0) return vet_errf(err, "%s:%d: disease %s: sign '%s' given twice", P, line, d->code, f[1]);
            d->p[k] = v;
        }
        return 0;
    }
    return vet_errf(err, "%s:%d: unknown row kind '%s' (known: species, sign, template, disease, "
                    "prevalence, shows)", P, line, kind);
}

vet_synth_table *vet_synth_table_parse(const char *text, const char *name, vet_err *err) {
    vet_synth_table *t = calloc(1, sizeof *t);
    char *copy = xstrdup(text);
    if (!t || !copy || !(t->path = xstrdup(name))) {
        free(copy);
        vet_synth_table_free(t);
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    int line = 0, cur = -1;
    char *next;
    for (char *ln = copy; ln; ln = next) {
        line++;
        next = strchr(ln, '\n');
        if (next) *next++ = 0;
        size_t len = strlen(ln);
        if (len && ln[len - 1] == '\r') ln[--len] = 0;
        if (ln[0] == '#' || strspn(ln, " \t") == len) continue;
        char *f[MAX_FIELDS];
        int nf = 0;
        for (char *p = ln, *tab; p; p = tab ? tab + 1 : NULL) {
            tab = strchr(p, '\t');
            if (tab) *tab = 0;
            if (nf == MAX_FIELDS) {
                vet_errf(err, "%s:%d: more than %d TAB-separated fields", name, line, MAX_FIELDS);
                goto fail;
            }
            f[nf++] = p;
        }
        // A trailing TAB leaves an empty last field; editors add them, so ignore them.
        while (nf > 1 && !*f[nf - 1]) nf--;
        if (parse_row(t, f, nf, line, &cur, err)) goto fail;
    }
    if (cur >= 0 && check_disease(t, &t->diseases[cur], err)) goto fail;
    if (!t->nspecies) { vet_errf(err, "%s: no 'species' rows", name); goto fail; }
    if (!t->ndiseases) { vet_errf(err, "%s: no 'disease' rows", name); goto fail; }
    if (!t->ntemplates) { vet_errf(err, "%s: no 'template' rows", name); goto fail; }
    free(copy);
    return t;
fail:
    free(copy);
    vet_synth_table_free(t);
    return NULL;
}

vet_synth_table *vet_synth_table_load(const char *path, vet_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        vet_err_io(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    sbuf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sb_put(&b, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad || b.oom) {
        free(b.s);
        vet_err_nomem(err, "%s: %s", path, bad ? "read error" : "out of memory");
        return NULL;
    }
    if (b.s && memchr(b.s, 0, b.len)) {
        free(b.s);
        vet_errf(err, "%s: contains NUL bytes (not a text table)", path);
        return NULL;
    }
    vet_synth_table *t = vet_synth_table_parse(b.s ? b.s : "", path, err);
    free(b.s);
    return t;
}

// ---- the generator ------------------------------------------------------------------------

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

void vet_synth_gen_free(vet_synth_gen *g) {
    if (!g) return;
    for (long i = 0; i < g->nrows; i++) free(g->rows[i].pub.note), free(g->rows[i].pub.symptoms);
    free(g->rows), free(g->species_w), free(g);
}

vet_synth_gen *vet_synth_gen_new(const vet_synth_table *t, const vet_synth_opts *o, long n,
                                 vet_err *err) {
    if (!(o->noise >= 0 && o->noise <= 1) || !(o->dup >= 0 && o->dup <= 1)) {
        vet_errf(err, "noise and dup are probabilities: they must lie in [0,1]");
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

    int *keep = calloc(t->nspecies, sizeof *keep);
    if (!keep) goto oom;
    if (o->species && *o->species) {
        char *list = xstrdup(o->species);
        if (!list) { free(keep); goto oom; }
        char *save;
        for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
            while (*s == ' ') s++;
            size_t len = strlen(s);
            while (len && s[len - 1] == ' ') s[--len] = 0;
            int i = vet_synth_species_index(t, s);
            if (i < 0) {
                char known[256] = "";
                for (int k = 0; k < t->nspecies; k++)
                    snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k ? ", " : "", t->species[k].name);
                vet_errf(err, "unknown species '%s' (%s has %s)", s, t->path, known);
                free(list), free(keep);
                vet_synth_gen_free(g);
                return NULL;
            }
            keep[i] = 1;
        }
        free(list);
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
    if (total <= 0) {
        vet_errf(err, "%s: no selected species has both a weight > 0 and a disease", t->path);
        vet_synth_gen_free(g);
        return NULL;
    }
    return g;
oom:
    vet_synth_gen_free(g);
    vet_err_nomem(err, "out of memory");
    return NULL;
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

// Draws a fresh case into row (everything but id, label and dup_of).
static int fresh_case(vet_synth_gen *g, row_t *row) {
    const vet_synth_table *t = g->t;
    vet_rng *r = &g->rng;
    int s = draw(r, g->species_w, t->nspecies);
    double *w = malloc(t->ndiseases * sizeof *w);
    if (!w) return -1;
    for (int d = 0; d < t->ndiseases; d++) w[d] = t->diseases[d].prevalence[s];
    int d = draw(r, w, t->ndiseases);
    free(w);
    const vet_synth_disease *dis = &t->diseases[d];
    const vet_synth_species *sp = &t->species[s];

    // Most animals a district office sees are female (dairy and breeding stock).
    int female = dis->female_only || chance(r, 0.7);
    double lo = dis->age_min > 0 ? dis->age_min : 0.1;
    double hi = dis->age_max > 0 && dis->age_max < sp->max_age ? dis->age_max : sp->max_age;
    if (hi <= lo) hi = lo + 0.5;
    double age = lo + (hi - lo) * vet_rng_uniform_double(r);

    // Each sign independently; a note always records at least one.
    int chosen[256], nchosen = 0;
    double *pw = malloc(t->nsigns * sizeof *pw);
    if (!pw) return -1;
    for (int k = 0; k < t->nsigns; k++) {
        pw[k] = (t->signs[k].female_only && !female) ? 0 : dis->p[k];
        if (pw[k] > 0 && chance(r, pw[k]) && nchosen < 256) chosen[nchosen++] = k;
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
    nchosen = kept < MAX_NOTE_SIGNS ? kept : MAX_NOTE_SIGNS;

    sbuf subj = {0}, dur = {0}, signs = {0}, note = {0}, sym = {0};
    subject_text(&subj, r, sp, female, age);
    duration_text(&dur, r, dis->chronic);
    int oxford = chance(r, 0.5);
    for (int i = 0; i < nchosen; i++) {
        const vet_synth_sign *sg = &t->signs[chosen[i]];
        if (i > 0) sb_puts(&signs, i == nchosen - 1 ? (oxford && nchosen > 2 ? ", and " : " and ") : ", ");
        sb_puts(&signs, sg->phrases[vet_rng_below(r, (uint64_t)sg->nphrases)]);
        if (i > 0) sb_puts(&sym, ";");
        sb_puts(&sym, sg->name);
    }
    const char *tpl = t->templates[vet_rng_below(r, (uint64_t)t->ntemplates)];
    for (const char *p = tpl; *p;) {
        if (strncmp(p, "{Subject}", 9) == 0 || strncmp(p, "{subject}", 9) == 0) {
            size_t at = note.len;
            sb_puts(&note, subj.s ? subj.s : "");
            if (note.s && note.len > at)
                note.s[at] = (char)(p[1] == 'S' ? toupper((unsigned char)note.s[at]) : tolower((unsigned char)note.s[at]));
            p += 9;
        } else if (strncmp(p, "{signs}", 7) == 0) {
            sb_puts(&note, signs.s ? signs.s : "");
            p += 7;
        } else if (strncmp(p, "{duration}", 10) == 0) {
            sb_puts(&note, dur.s ? dur.s : "");
            p += 10;
        } else {
            sb_put(&note, p++, 1);
        }
    }
    int oom = subj.oom || dur.oom || signs.oom || note.oom || sym.oom || !note.s || !sym.s;
    free(subj.s), free(dur.s), free(signs.s);
    if (oom) {
        free(note.s), free(sym.s);
        return -1;
    }
    row->pub.species = s;
    row->pub.true_disease = d;
    row->pub.note = note.s;
    row->pub.symptoms = sym.s;
    row->female = female;
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
        row->pub.note = xstrdup(src->pub.note);
        row->pub.symptoms = xstrdup(src->pub.symptoms);
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

// ---- writers ------------------------------------------------------------------------------

const char vet_synth_alpaca_header[] =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n";
const char vet_synth_alpaca_instruction[] =
    "Analyze the following veterinary clinical note and predict the SNOMED-CT diagnosis codes.";

// RFC 4180: quote a field that holds a comma, a quote or a line end; double inner quotes.
static void csv_field(FILE *f, const char *s, int last) {
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputc(last ? '\n' : ',', f);
}

static int write_status(FILE *f, vet_err *err) {
    if (ferror(f)) return vet_err_io(err, "write error: %s", strerror(errno));
    return 0;
}

int vet_synth_write_csv_header(FILE *f, vet_err *err) {
    fputs("id,species,note,codes,disease,symptoms\n", f);
    return write_status(f, err);
}

int vet_synth_write_csv_row(FILE *f, const vet_synth_table *t, const vet_synth_row *r, vet_err *err) {
    const vet_synth_disease *d = &t->diseases[r->disease];
    csv_field(f, r->id, 0);
    csv_field(f, t->species[r->species].name, 0);
    csv_field(f, r->note, 0);
    csv_field(f, d->code, 0);
    csv_field(f, d->name, 0);
    csv_field(f, r->symptoms, 1);
    return write_status(f, err);
}

int vet_synth_write_alpaca(FILE *f, const vet_synth_table *t, const vet_synth_row *r, vet_err *err) {
    fprintf(f, "%s### Instruction:\n%s\n\n### Input:\nClinical Note: %s\n\n### Response:\n"
            "Diagnosed conditions: %s\n",
            vet_synth_alpaca_header, vet_synth_alpaca_instruction, r->note,
            t->diseases[r->disease].code);
    return write_status(f, err);
}
