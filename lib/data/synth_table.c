// synth_table.c — the disease table of vet-synth (synth.h; the format in data/README.md):
// TAB-separated rows, one parser per row kind, every error "file:line: what is wrong".
#include "data/synth.h"

#include "base/numparse.h"
#include "base/read_file.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELDS 16

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

// Weights are relative (only their ratios matter) but their sums must stay finite; an age is
// printed as a whole number of years.
#define MAX_WEIGHT 1e12
#define MAX_AGE 1000.0

// Strict number: the whole field, finite.
static int parse_number(const char *s, double *out) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    double v = vet_strtod_decimal(s, &end);
    if (errno || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

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

// --- the parser -----------------------------------------------------------------------------

typedef struct {
    vet_synth_table *t;
    int line;  // of the row being parsed
    int cur;   // the disease that prevalence and shows rows describe, or -1
} parser;

// An error about a line of the table: "path:line: what", err->line set. Returns -1.
#define bad_at(t, line, err, ...) vet_err_at(err, (t)->path, line, __VA_ARGS__)
#define BAD(p, ...) bad_at((p)->t, (p)->line, err, __VA_ARGS__)
#define NOMEM() vet_err_nomem(err, "out of memory")

// A disease is complete when it occurs in some species and shows some sign.
static int check_disease(const vet_synth_table *t, const vet_synth_disease *d, vet_err *err) {
    int any = 0;
    for (int s = 0; s < t->nspecies; s++) {
        if (d->prevalence[s] < 0) d->prevalence[s] = 0;  // unset: absent
        if (d->prevalence[s] > 0) any = 1;
    }
    if (!any)
        return bad_at(t, d->line, err, "disease %s (%s) occurs in no species (add a row "
                      "'prevalence<TAB>SPECIES<TAB>WEIGHT' with WEIGHT > 0)", d->code, d->name);
    any = 0;
    for (int k = 0; k < t->nsigns; k++) {
        if (d->p[k] < 0) d->p[k] = 0;
        if (d->p[k] > 0) any = 1;
    }
    if (!any)
        return bad_at(t, d->line, err, "disease %s (%s) shows no sign (add a row "
                      "'shows<TAB>SIGN<TAB>PROBABILITY' with PROBABILITY > 0)", d->code, d->name);
    return 0;
}

// Template placeholders: each {...} must be one we render, and {signs} must be there.
static int check_template(const parser *p, const char *text, vet_err *err) {
    static const char *known[] = {"{Subject}", "{subject}", "{signs}", "{duration}"};
    int has_signs = 0;
    for (const char *c = strchr(text, '{'); c; c = strchr(c + 1, '{')) {
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            if (strncmp(c, known[i], strlen(known[i])) == 0) ok = 1;
        if (!ok) {
            const char *e = strchr(c, '}');
            int n = e ? (int)(e - c + 1) : (int)strlen(c);
            return BAD(p, "unknown placeholder %.*s in template (use {Subject}, {subject}, {signs}, {duration})", n, c);
        }
        if (strncmp(c, "{signs}", 7) == 0) has_signs = 1;
    }
    if (!has_signs) return BAD(p, "template has no {signs}");
    return 0;
}

static int expect_fields(const parser *p, int nf, int lo, int hi, const char *kind, const char *usage, vet_err *err) {
    if (nf >= lo && nf <= hi) return 0;
    return BAD(p, "a '%s' row has %d TAB-separated fields, expected %s", kind, nf, usage);
}

// species NAME WEIGHT YOUNG FEMALE MALE MAX_AGE
static int parse_species(parser *p, char **f, int nf, vet_err *err) {
    vet_synth_table *t = p->t;
    if (expect_fields(p, nf, 7, 7, f[0], "species NAME WEIGHT YOUNG FEMALE MALE MAX_AGE", err)) return -1;
    if (t->ndiseases) return BAD(p, "species rows must come before the first disease");
    if (!*f[1]) return BAD(p, "species with an empty name");
    if (vet_synth_species_index(t, f[1]) >= 0) return BAD(p, "species %s declared twice", f[1]);
    double w, age;
    if (parse_number(f[2], &w) || !(w >= 0 && w <= MAX_WEIGHT))
        return BAD(p, "weight '%s' is not a number in [0, %g]", f[2], MAX_WEIGHT);
    if (parse_number(f[6], &age) || !(age > 0 && age <= MAX_AGE))
        return BAD(p, "max age '%s' is not a number of years in (0, %g]", f[6], MAX_AGE);
    for (int i = 3; i <= 5; i++)
        if (!*f[i]) return BAD(p, "species %s: empty word for a young/female/male animal", f[1]);
    if (grow(&t->species, t->nspecies, sizeof *t->species)) return NOMEM();
    vet_synth_species *s = &t->species[t->nspecies++];
    *s = (vet_synth_species){strdup(f[1]), w, strdup(f[3]), strdup(f[4]), strdup(f[5]), age};
    if (!s->name || !s->young || !s->female || !s->male) return NOMEM();
    return 0;
}

// sign NAME PHRASE|PHRASE|... [female] [group=NAME]
static int parse_sign(parser *p, char **f, int nf, vet_err *err) {
    vet_synth_table *t = p->t;
    if (expect_fields(p, nf, 3, 4, f[0], "sign NAME PHRASE|PHRASE|... [FLAGS]", err)) return -1;
    if (t->ndiseases) return BAD(p, "sign rows must come before the first disease");
    if (!*f[1]) return BAD(p, "sign with an empty name");
    if (sign_index(t, f[1]) >= 0) return BAD(p, "sign '%s' declared twice", f[1]);
    if (grow(&t->signs, t->nsigns, sizeof *t->signs)) return NOMEM();
    vet_synth_sign *s = &t->signs[t->nsigns++];
    *s = (vet_synth_sign){strdup(f[1]), NULL, 0, 0, NULL};
    if (!s->name) return NOMEM();
    char *save;
    for (char *tok = nf == 4 ? strtok_r(f[3], " ", &save) : NULL; tok; tok = strtok_r(NULL, " ", &save)) {
        if (strcmp(tok, "female") == 0) {
            s->female_only = 1;
        } else if (strncmp(tok, "group=", 6) == 0 && tok[6]) {
            free(s->group);
            if (!(s->group = strdup(tok + 6))) return NOMEM();
        } else {
            return BAD(p, "sign '%s': unknown flag '%s' (known: female, group=NAME)", f[1], tok);
        }
    }
    for (char *c = f[2], *bar; c; c = bar ? bar + 1 : NULL) {
        bar = strchr(c, '|');
        if (bar) *bar = 0;
        if (!*c) return BAD(p, "sign '%s' has an empty phrase (check for '||' or a '|' at an end)", f[1]);
        if (grow(&s->phrases, s->nphrases, sizeof *s->phrases)) return NOMEM();
        if (!(s->phrases[s->nphrases++] = strdup(c))) return NOMEM();
    }
    return 0;
}

// template TEXT
static int parse_template(parser *p, char **f, int nf, vet_err *err) {
    vet_synth_table *t = p->t;
    if (expect_fields(p, nf, 2, 2, f[0], "template TEXT", err)) return -1;
    if (check_template(p, f[1], err)) return -1;
    if (grow(&t->templates, t->ntemplates, sizeof *t->templates)) return NOMEM();
    if (!(t->templates[t->ntemplates++] = strdup(f[1]))) return NOMEM();
    return 0;
}

// A disease row's options: female, chronic, age=MIN-MAX.
static int disease_options(const parser *p, const char *code, char *opts, vet_synth_disease *d, vet_err *err) {
    char *save;
    for (char *tok = strtok_r(opts, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        double lo, hi;
        char extra;
        if (strcmp(tok, "female") == 0) d->female_only = 1;
        else if (strcmp(tok, "chronic") == 0) d->chronic = 1;
        else if (sscanf(tok, "age=%lf-%lf%c", &lo, &hi, &extra) == 2 && lo >= 0 && hi > lo) d->age_min = lo, d->age_max = hi;
        else return BAD(p, "disease %s: unknown option '%s' (known: female, chronic, age=MIN-MAX)", code, tok);
    }
    return 0;
}

// disease CODE NAME TERM [OPTIONS]: the disease the rows after it describe.
static int parse_disease(parser *p, char **f, int nf, vet_err *err) {
    vet_synth_table *t = p->t;
    if (expect_fields(p, nf, 4, 5, f[0], "disease CODE NAME TERM [OPTIONS]", err)) return -1;
    if (p->cur >= 0 && check_disease(t, &t->diseases[p->cur], err)) return -1;
    size_t clen = strlen(f[1]);
    if (clen < 6 || clen > 18 || strspn(f[1], "0123456789") != clen || f[1][0] == '0')
        return BAD(p, "code '%s' is not a SNOMED-CT concept id (6 to 18 digits)", f[1]);
    if (vet_synth_disease_index(t, f[1]) >= 0) return BAD(p, "disease %s declared twice", f[1]);
    if (!*f[2] || !*f[3]) return BAD(p, "disease %s: empty name or term", f[1]);
    if (!t->nspecies || !t->nsigns) return BAD(p, "declare the species and signs before the first disease");
    vet_synth_disease d = {.line = p->line};
    if (nf == 5 && disease_options(p, f[1], f[4], &d, err)) return -1;
    if (grow(&t->diseases, t->ndiseases, sizeof *t->diseases)) return NOMEM();
    d.code = strdup(f[1]), d.name = strdup(f[2]), d.term = strdup(f[3]);
    d.prevalence = malloc(t->nspecies * sizeof *d.prevalence);
    d.p = malloc(t->nsigns * sizeof *d.p);
    t->diseases[t->ndiseases] = d;
    p->cur = t->ndiseases++;
    if (!d.code || !d.name || !d.term || !d.prevalence || !d.p) return NOMEM();
    for (int s = 0; s < t->nspecies; s++) d.prevalence[s] = -1;  // -1: no row yet
    for (int k = 0; k < t->nsigns; k++) d.p[k] = -1;
    return 0;
}

// prevalence SPECIES WEIGHT, or shows SIGN PROBABILITY: of the current disease.
static int parse_weight(parser *p, char **f, int nf, vet_err *err) {
    vet_synth_table *t = p->t;
    int prev = f[0][0] == 'p';
    if (expect_fields(p, nf, 3, 3, f[0], prev ? "prevalence SPECIES WEIGHT" : "shows SIGN PROBABILITY", err)) return -1;
    if (p->cur < 0) return BAD(p, "a '%s' row before any 'disease' row", f[0]);
    vet_synth_disease *d = &t->diseases[p->cur];
    double v;
    if (prev) {
        int s = vet_synth_species_index(t, f[1]);
        if (s < 0) return BAD(p, "unknown species '%s' (declare it with a 'species' row)", f[1]);
        if (parse_number(f[2], &v) || !(v >= 0 && v <= MAX_WEIGHT))
            return BAD(p, "weight '%s' is not a number in [0, %g]", f[2], MAX_WEIGHT);
        if (d->prevalence[s] >= 0) return BAD(p, "disease %s: prevalence in %s given twice", d->code, f[1]);
        d->prevalence[s] = v;
    } else {
        int k = sign_index(t, f[1]);
        if (k < 0) return BAD(p, "unknown sign '%s' (declare it with a 'sign' row)", f[1]);
        if (parse_number(f[2], &v)) return BAD(p, "probability '%s' is not a number", f[2]);
        if (v < 0 || v > 1) return BAD(p, "probability %s outside [0,1]", f[2]);
        if (d->p[k] >= 0) return BAD(p, "disease %s: sign '%s' given twice", d->code, f[1]);
        d->p[k] = v;
    }
    return 0;
}

static const struct {
    const char *kind;
    int (*parse)(parser *p, char **f, int nf, vet_err *err);
} ROW_KINDS[] = {
    {"species", parse_species}, {"sign", parse_sign},           {"template", parse_template},
    {"disease", parse_disease}, {"prevalence", parse_weight}, {"shows", parse_weight},
};

// One row; its fields are NUL-terminated in place, f[0] names its kind.
static int parse_row(parser *p, char **f, int nf, vet_err *err) {
    for (size_t i = 0; i < sizeof ROW_KINDS / sizeof *ROW_KINDS; i++)
        if (strcmp(f[0], ROW_KINDS[i].kind) == 0) return ROW_KINDS[i].parse(p, f, nf, err);
    return BAD(p, "unknown row kind '%s' (known: species, sign, template, disease, prevalence, shows)", f[0]);
}

// Splits a line at its TABs into f; -1 when it has more than MAX_FIELDS fields.
static int split_fields(char *ln, char **f) {
    int nf = 0;
    for (char *c = ln, *tab; c; c = tab ? tab + 1 : NULL) {
        tab = strchr(c, '\t');
        if (tab) *tab = 0;
        if (nf == MAX_FIELDS) return -1;
        f[nf++] = c;
    }
    // A trailing TAB leaves an empty last field; editors add them, so ignore them.
    while (nf > 1 && !*f[nf - 1]) nf--;
    return nf;
}

// Every row of text (a writable copy): blank lines and '#' comments skipped. A row ends at LF,
// CRLF or CR alone (a table saved on an old Mac or by some spreadsheets).
static int parse_lines(parser *p, char *text, vet_err *err) {
    char *next;
    for (char *ln = text; ln; ln = next) {
        p->line++;
        next = ln + strcspn(ln, "\r\n");
        if (!*next) next = NULL;
        else if (next[0] == '\r' && next[1] == '\n') *next = 0, next += 2;
        else *next++ = 0;
        size_t len = strlen(ln);
        if (ln[0] == '#' || strspn(ln, " \t") == len) continue;
        char *f[MAX_FIELDS];
        int nf = split_fields(ln, f);
        if (nf < 0) return BAD(p, "more than %d TAB-separated fields", MAX_FIELDS);
        if (parse_row(p, f, nf, err)) return -1;
    }
    return 0;
}

vet_synth_table *vet_synth_table_parse(const char *text, const char *name, vet_err *err) {
    vet_synth_table *t = calloc(1, sizeof *t);
    char *copy = strdup(text);
    if (!t || !copy || !(t->path = strdup(name))) {
        free(copy);
        vet_synth_table_free(t);
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    parser p = {.t = t, .line = 0, .cur = -1};
    int rc = parse_lines(&p, copy, err);
    free(copy);
    if (rc == 0 && p.cur >= 0) rc = check_disease(t, &t->diseases[p.cur], err);
    if (rc == 0 && !t->nspecies) rc = vet_errf(err, "%s: no 'species' rows", name);
    if (rc == 0 && !t->ndiseases) rc = vet_errf(err, "%s: no 'disease' rows", name);
    if (rc == 0 && !t->ntemplates) rc = vet_errf(err, "%s: no 'template' rows", name);
    if (rc == 0) return t;
    vet_synth_table_free(t);
    return NULL;
}

vet_synth_table *vet_synth_table_load(const char *path, vet_err *err) {
    // The shipped table is ~20 KB; 16 MiB refuses a device or a wrong file before reading it all.
    char *text = NULL;
    size_t len = 0;
    if (vet_read_file(path, "disease table", (size_t)16 << 20, &text, &len, err) < 0) return NULL;
    if (memchr(text, 0, len)) {
        free(text);
        vet_errf(err, "%s: contains NUL bytes (not a text table)", path);
        return NULL;
    }
    vet_synth_table *t = vet_synth_table_parse(text, path, err);
    free(text);
    return t;
}
