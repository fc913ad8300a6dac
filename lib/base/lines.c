// lines.c — see lines.h.
#include "base/lines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void vet_lines_init(vet_lines *L, FILE *f, const char *name, size_t max) {
    *L = (vet_lines){.f = f, .name = name, .max = max};
}

void vet_lines_free(vet_lines *L) {
    free(L->buf);
    L->buf = NULL;
    L->cap = L->len = 0;
}

static int put(vet_lines *L, int ch, vet_err *err) {
    if (L->len + 1 >= L->cap) {
        size_t cap = L->cap ? 2 * L->cap : 256;
        char *p = realloc(L->buf, cap);
        if (!p) return vet_err_nomem(err, "%s:%ld: out of memory", L->name, L->lineno);
        L->buf = p;
        L->cap = cap;
    }
    L->buf[L->len++] = (char)ch;
    return 0;
}

int vet_lines_next(vet_lines *L, vet_err *err) {
    L->len = 0;
    int ch;
    errno = 0;
    if ((ch = getc(L->f)) == EOF) {
        if (ferror(L->f)) return vet_err_io(err, "%s:%ld: read failed: %s", L->name, L->lineno + 1, strerror(errno));
        return 0;
    }
    L->lineno++;
    for (; ch != EOF && ch != '\n' && ch != '\r'; ch = getc(L->f)) {
        if (L->len >= L->max) {
            vet_errf(err, "%s:%ld: line longer than %zu bytes (is this a text file?)", L->name, L->lineno, L->max);
            return vet_err_at_line(err, L->lineno);
        }
        if (put(L, ch, err) < 0) return -1;
    }
    if (ch == EOF && ferror(L->f))
        return vet_err_io(err, "%s:%ld: read failed: %s", L->name, L->lineno, strerror(errno));
    if (ch == '\r') {  // CRLF is one line end; CR alone is one too
        int next = getc(L->f);
        if (next != '\n' && next != EOF) ungetc(next, L->f);
    }
    if (put(L, 0, err) < 0) return -1;
    L->len--;
    return 1;
}
