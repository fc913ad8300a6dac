// labels.c — label vocabulary, codes files, and label extraction from generated text.
#include "data/labels.h"

#include "base/lines.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/input_file.h"
#include "base/strtab.h"
#include "base/trim.h"
#include "base/utf8.h"

typedef struct {
    char *label;
    char *term;
    size_t len;
} entry;

struct vet_labels {
    entry *e;
    size_t n, cap;
    vet_strtab index;  // label -> its entry's index (ids follow the entries' order)
    // For extraction: per lowercased first byte, entry indices, longest label first
    // (kept up to date by vet_labels_add, so extraction only reads the vocabulary).
    uint32_t *by_first[256];
    size_t n_first[256];
};

vet_labels *vet_labels_new(void) {
    vet_labels *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    return v;
}

void vet_labels_free(vet_labels *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        free(v->e[i].label);
        free(v->e[i].term);
    }
    for (int c = 0; c < 256; c++) free(v->by_first[c]);
    free(v->e);
    vet_strtab_free(&v->index);
    free(v);
}

size_t vet_labels_count(const vet_labels *v) { return v ? v->n : 0; }
const char *vet_labels_label(const vet_labels *v, size_t i) { return v->e[i].label; }

const char *vet_labels_term(const vet_labels *v, const char *label) {
    if (!v) return NULL;
    long k = vet_strtab_find(&v->index, label);
    return k >= 0 ? v->e[k].term : NULL;
}

// Inserts entry k into its first-byte bucket, keeping the bucket longest-first (stable).
static int index_entry(vet_labels *v, size_t k) {
    int c = tolower((unsigned char)v->e[k].label[0]);
    uint32_t *b = realloc(v->by_first[c], (v->n_first[c] + 1) * sizeof *b);
    if (!b) return -1;
    v->by_first[c] = b;
    size_t i = v->n_first[c]++;
    while (i > 0 && v->e[b[i - 1]].len < v->e[k].len) {
        b[i] = b[i - 1];
        i--;
    }
    b[i] = (uint32_t)k;
    return 0;
}

int vet_labels_add(vet_labels *v, const char *label, const char *term, vet_err *err) {
    if (!*label) return vet_errf(err, "empty label");
    if (strpbrk(label, "\t\r\n")) return vet_errf(err, "label \"%s\" holds a tab or line break", label);
    if (!term) term = "";
    long k = vet_strtab_find(&v->index, label);
    if (k >= 0) {
        entry *e = &v->e[k];
        if (!*e->term && *term) {
            char *t = strdup(term);
            if (!t) return vet_err_nomem(err, "out of memory");
            free(e->term);
            e->term = t;
        }
        return 0;
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 32;
        entry *e = realloc(v->e, cap * sizeof *e);
        if (!e) return vet_err_nomem(err, "out of memory");
        v->e = e;
        v->cap = cap;
    }
    entry *e = &v->e[v->n];
    e->label = strdup(label);
    e->term = strdup(term);
    e->len = strlen(label);
    if (!e->label || !e->term) {
        free(e->label);
        free(e->term);
        return vet_err_nomem(err, "out of memory");
    }
    if (vet_strtab_intern(&v->index, label) != (long)v->n) {  // the next id: a new label
        free(e->label);
        free(e->term);
        return vet_err_nomem(err, "out of memory");
    }
    v->n++;
    if (index_entry(v, v->n - 1) < 0) return vet_err_nomem(err, "out of memory");
    return 0;
}

vet_labels *vet_codes_load_path(const char *path, vet_err *err) {
    FILE *f = vet_input_open(path, "codes file", err);
    if (!f) return NULL;
    vet_labels *v = vet_codes_load(f, path, err);
    vet_input_close(f);
    return v;
}

// The label already in v that differs from label only in ASCII case, or NULL. Text names such
// labels alike (extraction ignores case), so the later one could never be found.
static const char *same_but_case(const vet_labels *v, const char *label) {
    size_t len = strlen(label);
    int c = tolower((unsigned char)label[0]);
    for (size_t i = 0; i < v->n_first[c]; i++) {
        const entry *e = &v->e[v->by_first[c][i]];
        if (e->len == len && strcasecmp(e->label, label) == 0 && strcmp(e->label, label) != 0) return e->label;
    }
    return NULL;
}

// A code and its term written with blanks between them instead of a tab ("72934000 Mastitis"):
// 6 to 18 digits, then a blank. As one label it is no gold code, and no term is found for the code.
static int code_then_blank(const char *label) {
    size_t d = strspn(label, "0123456789");
    return d >= VET_CODE_MIN_DIGITS && d <= VET_CODE_MAX_DIGITS && vet_is_blank((unsigned char)label[d]);
}

// One line of a codes file, its label and term split at the first tab and trimmed: added to v,
// or skipped (blank, a comment, the header), or refused where a reading would lose or confuse
// what the line says. 0 or -1 with err ("name:N: ...").
static int add_code_line(vet_labels *v, const char *name, long lineno, char *label, const char *term, vet_err *err) {
    if (!*label && *term)
        return vet_errf(err, "%s:%ld: a term (\"%s\") with no code before its tab: write CODE<TAB>TERM, or "
                        "delete the line", name, lineno, term);
    if (!*label || *label == '#') return 0;
    if (lineno == 1 && (strcasecmp(label, "code") == 0 || strcasecmp(label, "label") == 0)) return 0;
    if (strchr(term, '\t'))
        return vet_errf(err, "%s:%ld: more than two tab-separated fields (label \"%s\"): a codes line is CODE or "
                        "CODE<TAB>TERM, and a term holds no tab", name, lineno, label);
    if (code_then_blank(label))
        return vet_errf(err, "%s:%ld: \"%s\" is a code and more, separated by blanks: put a tab between the "
                        "code and its term (CODE<TAB>TERM)", name, lineno, label);
    const char *old = vet_labels_term(v, label), *twin = same_but_case(v, label);
    if (old && *old && *term && strcmp(old, term) != 0)
        return vet_errf(err, "%s:%ld: label \"%s\" listed twice with different terms (\"%s\", \"%s\")", name,
                        lineno, label, old, term);
    if (twin)
        return vet_errf(err, "%s:%ld: label \"%s\" differs from \"%s\" only in case, and vet finds labels in "
                        "text without regard to case: keep one spelling", name, lineno, label, twin);
    if (vet_labels_add(v, label, term, err) < 0) return vet_err_prefix(err, "%s:%ld", name, lineno);
    return 0;
}

vet_labels *vet_codes_load(FILE *f, const char *name, vet_err *err) {
    vet_labels *v = vet_labels_new();
    if (!v) {
        vet_err_nomem(err, "%s: out of memory", name);
        return NULL;
    }
    vet_skip_bom(f);
    // Lines end at LF, CRLF or CR alone; a line of 64 KiB is no code and term (a device, a
    // binary file) and stops the read.
    vet_lines L;
    vet_lines_init(&L, f, name, (size_t)64 << 10);
    int got;
    while ((got = vet_lines_next(&L, err)) > 0) {
        char *line = L.buf;
        if (memchr(line, 0, L.len)) {
            vet_errf(err, "%s:%ld: a NUL byte (is this a codes file?)", name, L.lineno);
            goto fail;
        }
        size_t off;
        if (!vet_utf8_valid(line, L.len, &off)) {  // labels and terms reach JSON reports and CSV tables
            vet_errf(err, "%s:%ld: invalid UTF-8 (byte %zu of the line); convert the file with iconv", name, L.lineno,
                     off + 1);
            goto fail;
        }
        char *tab = strchr(line, '\t');
        char *term = tab ? vet_trim(tab + 1) : "";
        if (tab) *tab = 0;
        if (add_code_line(v, name, L.lineno, vet_trim(line), term, err) < 0) goto fail;
    }
    if (got < 0) goto fail_read;
    vet_lines_free(&L);
    return v;
fail:
    vet_err_at_line(err, L.lineno);
fail_read:
    vet_lines_free(&L);
    vet_labels_free(v);
    return NULL;
}

// A "word" byte: a label must not be cut out of a run of these. Non-ASCII bytes count, so
// a label never matches inside a word in another script.
static int is_word(unsigned char c) { return isalnum(c) || c == '_' || c >= 0x80; }

typedef struct {
    char **v;
    bool *unk;
    size_t n, cap;
} found;

static int push(found *f, const char *s, size_t len, bool unknown) {
    for (size_t i = 0; i < f->n; i++)
        if (strlen(f->v[i]) == len && memcmp(f->v[i], s, len) == 0) return 0;  // once each
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 8;
        char **v = realloc(f->v, cap * sizeof *v);
        if (!v) return -1;
        f->v = v;
        bool *u = realloc(f->unk, cap * sizeof *u);
        if (!u) return -1;
        f->unk = u;
        f->cap = cap;
    }
    char *c = strndup(s, len);
    if (!c) return -1;
    f->unk[f->n] = unknown;
    f->v[f->n++] = c;
    return 0;
}

// The vocabulary label matching whole at text[p], longest first; NULL when none.
static const entry *match_at(const vet_labels *v, const char *text, size_t len, size_t p) {
    int c = tolower((unsigned char)text[p]);
    for (size_t j = 0; j < v->n_first[c]; j++) {
        const entry *e = &v->e[v->by_first[c][j]];
        if (e->len > len - p || strncasecmp(text + p, e->label, e->len) != 0) continue;
        // An embedded NUL in text stops strncasecmp early as a match: reject it.
        if (memchr(text + p, 0, e->len)) continue;
        size_t end = p + e->len;
        if (end < len && is_word((unsigned char)e->label[e->len - 1]) && is_word((unsigned char)text[end]))
            continue;
        return e;
    }
    return NULL;
}

int vet_labels_extract(const vet_labels *v, const char *text, size_t len, char ***out, size_t *n,
                       bool **unknown, vet_err *err) {
    found f = {0};
    size_t p = 0;
    while (p < len) {
        unsigned char c = (unsigned char)text[p];
        int starts_token = p == 0 || !is_word((unsigned char)text[p - 1]) || !is_word(c);
        if (!starts_token) {
            p++;
            continue;
        }
        const entry *e = v ? match_at(v, text, len, p) : NULL;
        if (e) {
            if (push(&f, e->label, e->len, false) < 0) goto oom;
            p += e->len;
            continue;
        }
        if (isdigit(c)) {
            size_t q = p;
            while (q < len && isdigit((unsigned char)text[q])) q++;
            size_t run = q - p;
            if (run >= VET_CODE_MIN_DIGITS && run <= VET_CODE_MAX_DIGITS && (q == len || !is_word((unsigned char)text[q])))
                if (push(&f, text + p, run, true) < 0) goto oom;
            p = q;
            continue;
        }
        p++;
    }
    *out = f.v;
    *n = f.n;
    if (unknown)
        *unknown = f.unk;
    else
        free(f.unk);
    return 0;
oom:
    vet_labels_free_list(f.v, f.n);
    free(f.unk);
    return vet_err_nomem(err, "out of memory");
}

void vet_labels_free_list(char **labels, size_t n) {
    if (!labels) return;
    for (size_t i = 0; i < n; i++) free(labels[i]);
    free(labels);
}

void vet_labels_join(char *out, size_t cap, const char *const *labels, size_t n, const char *none) {
    size_t o = 0;
    out[0] = 0;
    if (n == 0) snprintf(out, cap, "%s", none);
    for (size_t i = 0; i < n && o < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ";" : "", labels[i]);
}
