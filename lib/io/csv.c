// csv.c — see csv.h. A byte-at-a-time state machine over a 64 KiB read buffer; the current
// row's fields live in one growing buffer (NUL after each field) that is reused row to row.
#include "io/csv.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/strtab.h"
#include "base/utf8.h"

struct vet_csv {
    FILE *f;
    char name[512];
    unsigned char in[1 << 16];  // read buffer
    size_t in_pos, in_len;
    int eof, ioerr;
    long line;                  // physical line of the next unread byte
    long row_line;              // line where the current row starts
    char *data;                 // fields of the current row, each NUL-terminated
    size_t data_len, data_cap;
    size_t *starts;             // offset of each field in data
    size_t nfields, fields_cap;
    char *raw;                  // the row's bytes as read
    size_t raw_len, raw_cap;
    size_t text_len;            // raw_len less the row's line end, once vet_csv_raw has cut it; SIZE_MAX before
    char why[1024];             // why the last row was rejected, without "name:line: "
    int dead;                   // a fatal row was met: nothing more is read
    vet_err dead_err;           // its error, repeated by every later call
};

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

static int peek(vet_csv *c);

// Next byte of input (also appended to the raw row), -1 at end of input or on a read error.
static int get(vet_csv *c) {
    if (c->in_pos == c->in_len) {
        if (c->eof || c->ioerr) return -1;
        c->in_len = fread(c->in, 1, sizeof c->in, c->f);
        c->in_pos = 0;
        if (c->in_len == 0) {
            if (ferror(c->f)) c->ioerr = 1; else c->eof = 1;
            return -1;
        }
    }
    int ch = c->in[c->in_pos++];
    if (c->raw_len + 1 >= c->raw_cap && grow((void **)&c->raw, &c->raw_cap, c->raw_len + 2, 1)) {
        c->ioerr = 1;  // out of memory: treated as a failed read
        return -1;
    }
    c->raw[c->raw_len++] = (char)ch;
    // CR, LF and CRLF each end one physical line: CRLF is counted at its LF.
    if (ch == '\n' || (ch == '\r' && peek(c) != '\n')) c->line++;
    return ch;
}

static int peek(vet_csv *c) {
    if (c->in_pos == c->in_len) {
        if (c->eof || c->ioerr) return -1;
        c->in_len = fread(c->in, 1, sizeof c->in, c->f);
        c->in_pos = 0;
        if (c->in_len == 0) {
            if (ferror(c->f)) c->ioerr = 1; else c->eof = 1;
            return -1;
        }
    }
    return c->in[c->in_pos];
}

static int put(vet_csv *c, char ch) {
    if (c->data_len + 1 >= c->data_cap &&
        grow((void **)&c->data, &c->data_cap, c->data_len + 2, 1)) return -1;
    c->data[c->data_len++] = ch;
    return 0;
}

static int begin_field(vet_csv *c) {
    if (grow((void **)&c->starts, &c->fields_cap, c->nfields + 1, sizeof(size_t))) return -1;
    c->starts[c->nfields++] = c->data_len;
    return 0;
}

vet_csv *vet_csv_open(FILE *f, const char *name, vet_err *err) {
    vet_csv *c = calloc(1, sizeof *c);
    if (!c) { vet_err_nomem(err, "%s: out of memory", name); return NULL; }
    c->f = f;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->line = 1;
    // A UTF-8 byte order mark is not part of the first column's name.
    peek(c);  // fills the buffer
    c->in_pos += vet_utf8_bom_len((const char *)c->in + c->in_pos, c->in_len - c->in_pos);
    return c;
}

// A rejected row: err says "name:line: why" and carries the line; the reason alone is kept for
// vet_csv_reason (a rejects file writes the line and the reason in columns of their own).
static int bad_row(vet_csv *c, long line, vet_err *err, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int bad_row(vet_csv *c, long line, vet_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    vet_errf(err, "%s:%ld: %s", c->name, line, c->why);
    vet_err_at_line(err, line);
    return VET_CSV_BAD;
}

// A line end at the current byte ch (just read): LF, CR, or CRLF (its LF consumed here).
static int line_end(vet_csv *c, int ch) {
    if (ch == '\n') return 1;
    if (ch != '\r') return 0;
    if (peek(c) == '\n') get(c);
    return 1;
}

// Skips to the end of the physical line after a malformed row, so the next row starts clean.
// Bounded like a row: past VET_CSV_MAX_ROW bytes with no line end the input is not CSV (a
// device, a binary file) and the reader stops for good.
static int resync(vet_csv *c) {
    int ch;
    size_t n = 0;
    while ((ch = get(c)) >= 0 && !line_end(c, ch)) {
        if (c->raw_len > VET_CSV_MAX_ROW + 1) c->raw_len = VET_CSV_MAX_ROW + 1;  // the rest is not kept
        if (++n > VET_CSV_MAX_ROW) return -1;
    }
    return 0;
}

// A row the reader cannot get past (no line end in sight, too many fields): every later call
// returns VET_CSV_FATAL with the same error.
static int fatal(vet_csv *c, vet_err *err) {
    c->dead = 1;
    if (err) c->dead_err = *err;
    return VET_CSV_FATAL;
}

int vet_csv_next(vet_csv *c, vet_err *err) {
    enum { FIELD_START, UNQUOTED, QUOTED, AFTER_QUOTE } st;
    int ch;
    if (c->dead) {
        if (err) *err = c->dead_err;
        return VET_CSV_FATAL;
    }
restart:
    c->data_len = 0;
    c->nfields = 0;
    c->raw_len = 0;
    c->text_len = SIZE_MAX;
    c->row_line = c->line;
    // Blank lines between rows are not rows.
    ch = peek(c);
    if (ch == '\n') { get(c); goto restart; }
    if (ch == '\r') {  // an empty line, ended by CR or CRLF
        get(c);
        if (peek(c) == '\n') get(c);
        goto restart;
    }
    if (ch < 0 && c->ioerr) {
        vet_err_io(err, "%s:%ld: read error: %s", c->name, c->line, strerror(errno));
        vet_err_at_line(err, c->line);
        return VET_CSV_IOERR;
    }
    if (ch < 0) return VET_CSV_EOF;
    st = FIELD_START;
    for (;;) {
        if (c->raw_len > VET_CSV_MAX_ROW) {
            bad_row(c, c->row_line, err, "row longer than %u MiB (an unbalanced quote, or not a text file?)",
                    VET_CSV_MAX_ROW >> 20);
            return resync(c) < 0 || st == QUOTED ? fatal(c, err) : VET_CSV_BAD;
        }
        if (c->nfields > VET_CSV_MAX_FIELDS) {
            bad_row(c, c->row_line, err, "more than %u fields in one row (is this a CSV file?)", VET_CSV_MAX_FIELDS);
            return fatal(c, err);
        }
        ch = get(c);
        if (ch < 0 && c->ioerr) {
            vet_err_io(err, "%s:%ld: read error", c->name, c->line);
            vet_err_at_line(err, c->line);
            return VET_CSV_IOERR;
        }
        switch (st) {
        case FIELD_START:
            if (begin_field(c)) goto oom;
            if (ch == '"') { st = QUOTED; break; }
            st = UNQUOTED;
            __attribute__((fallthrough));  // the byte belongs to an unquoted field
        case UNQUOTED:
            if (ch < 0 || line_end(c, ch)) goto end_row;
            if (ch == ',') { if (put(c, '\0')) goto oom; st = FIELD_START; break; }
            if (put(c, (char)ch)) goto oom;
            break;
        case QUOTED:
            if (ch < 0)
                return bad_row(c, c->row_line, err, "unbalanced quote: a quoted field is still open at end of input");
            if (ch == '"') {
                if (peek(c) == '"') { get(c); if (put(c, '"')) goto oom; }
                else st = AFTER_QUOTE;
                break;
            }
            if (put(c, (char)ch)) goto oom;
            break;
        case AFTER_QUOTE:
            if (ch < 0 || line_end(c, ch)) goto end_row;
            if (ch == ',') { if (put(c, '\0')) goto oom; st = FIELD_START; break; }
            // The line of the stray byte, not of the row's start: a quoted field may span lines.
            bad_row(c, c->line, err, "unbalanced quote: '%c' after the closing quote of field %zu "
                    "(quotes inside a quoted field must be doubled)", ch >= 0x20 && ch < 0x7f ? ch : '?', c->nfields);
            return resync(c) < 0 ? fatal(c, err) : VET_CSV_BAD;
        }
    }
end_row:
    if (st == FIELD_START && begin_field(c)) goto oom;  // "a," ends with an empty field
    if (put(c, '\0')) goto oom;
    return VET_CSV_ROW;
oom:
    vet_err_nomem(err, "%s:%ld: out of memory", c->name, c->row_line);
    vet_err_at_line(err, c->row_line);
    return VET_CSV_IOERR;
}

size_t vet_csv_nfields(const vet_csv *c) { return c->nfields; }

const char *vet_csv_field(const vet_csv *c, size_t i, size_t *len) {
    if (i >= c->nfields) return NULL;
    size_t end = i + 1 < c->nfields ? c->starts[i + 1] - 1 : c->data_len - 1;
    if (len) *len = end - c->starts[i];
    return c->data + c->starts[i];
}

long vet_csv_line(const vet_csv *c) { return c->row_line; }

const char *vet_csv_reason(const vet_csv *c) { return c->why; }

const char *vet_csv_raw(vet_csv *c, size_t *len) {
    if (!c->raw) {
        if (len) *len = 0;
        return "";
    }
    // The line end is cut once per row, and raw_len stays as read: a second call gives the same
    // bytes. (Cutting raw_len itself took one more CR of a row ending "\r\r\n" on each call, and
    // the NUL written over the line end was once taken for the row's last byte.)
    if (c->text_len == SIZE_MAX) {
        size_t n = c->raw_len;
        if (n && c->raw[n - 1] == '\n') n--;
        if (n && c->raw[n - 1] == '\r') n--;
        c->text_len = n;
    }
    if (len) *len = c->text_len;
    c->raw[c->text_len] = '\0';  // the buffer always has room for the NUL
    return c->raw;
}

void vet_csv_close(vet_csv *c) {
    if (!c) return;
    free(c->data);
    free(c->starts);
    free(c->raw);
    free(c);
}

int vet_csv_check_header(const vet_csv *c, int fold_case, vet_err *err) {
    // One string table over the names (a hostile header may hold 65,536 of them): a name that
    // adds nothing to it has been seen, at the column first[id].
    vet_strtab seen = {0};
    size_t *first = malloc((c->nfields + 1) * sizeof *first);
    char *key = malloc(c->data_len + 1);
    int rc = 0;
    if (!first || !key) rc = vet_err_nomem(err, "%s: out of memory", c->name);
    for (size_t j = 0; rc == 0 && j < c->nfields; j++) {
        size_t len;
        const char *name = vet_csv_field(c, j, &len);
        size_t n = strlen(name);
        if (n != len) {  // "note\0x" would be found as "note"
            rc = vet_errf(err, "%s:%ld: a NUL byte in the name of column %zu ('%s...'): is this a text file?",
                          c->name, c->row_line, j + 1, name);
            vet_err_at_line(err, c->row_line);
            break;
        }
        for (size_t k = 0; k <= n; k++) key[k] = fold_case ? (char)tolower((unsigned char)name[k]) : name[k];
        size_t before = seen.n;
        long id = vet_strtab_intern(&seen, key);
        if (id < 0) {
            rc = vet_err_nomem(err, "%s: out of memory", c->name);
        } else if (seen.n == before) {
            rc = vet_errf(err, "%s:%ld: column '%s' appears twice in the header (columns %zu and %zu): which one "
                          "is meant? rename one", c->name, c->row_line, name, first[id] + 1, j + 1);
            vet_err_at_line(err, c->row_line);
        } else {
            first[id] = j;
        }
    }
    vet_strtab_free(&seen);
    free(first);
    free(key);
    return rc;
}
