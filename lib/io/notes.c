// notes.c — see notes.h. One struct, three readers behind a format switch. CSV and JSONL hold
// one record at a time; the JSON array is loaded whole by jansson (Alpaca files are small).
#include "io/notes.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/input_file.h"
#include "base/lines.h"
#include "base/trim.h"
#include "base/utf8.h"
#include "io/csv.h"
#include "io/json_file.h"

// Bounds on what is held in memory at once: a JSON array is loaded whole, a JSONL record is one
// line. Real Alpaca files are a few MB; the bounds only stop a device or a wrong file.
#define NOTES_MAX_JSON ((size_t)1 << 30)
#define NOTES_MAX_LINE ((size_t)64 << 20)

enum { COL_ID, COL_SPECIES, COL_NOTE, COL_CODES, COL_DISEASE, NCOLS };
static const char *const COL_DEFAULT[NCOLS] = {"id", "species", "note", "codes", "disease"};
static const char *const COL_FLAG[NCOLS] = {"--id-col", "--species-col", "--note-col",
                                            "--codes-col", "--disease-col"};

struct vet_notes {
    FILE *f;
    char name[512];
    vet_notes_format format;
    char *note_prefix;
    long index;                 // records handed out or rejected so far
    // CSV
    vet_csv *csv;
    long col[NCOLS];            // column index of each field, -1 when absent
    size_t ncols;               // fields in the header row
    char *header;               // the header's fields, each NUL-terminated, back to back
    // JSON array
    json_t *root;
    size_t next;
    // JSONL
    vet_lines lines;
    json_t *obj;                // the current JSONL record
    // per record
    char *codes_buf;            // the codes field, split in place
    size_t codes_cap;
    char **codes;
    size_t codes_n, codes_ptr_cap;
    char *disease_buf;          // the disease name, trimmed
    size_t disease_cap;
    char *species_buf;          // the species, trimmed
    size_t species_cap;
    char idbuf[32];
    char *raw;                  // JSON: the record re-serialized, for rejections
    char why[1024];             // why the last record was rejected, without "name:line: "
};

// An error about a line of the input: "name:line: what", err->line set. Returns -1.
#define at_line(s, line, err, ...) vet_err_at(err, (s)->name, line, __VA_ARGS__)

// A rejected record: the error as at_line, and the reason kept apart for vet_notes_reason.
static int reject(vet_notes *s, long line, vet_err *err, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int reject(vet_notes *s, long line, vet_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
    at_line(s, line, err, "%s", s->why);
    return VET_NOTE_BAD;
}

// Out of memory while reading the record at line: not the record's fault, so not a rejection.
static int no_memory(const vet_notes *s, long line, vet_err *err) {
    vet_err_nomem(err, "%s:%ld: out of memory", s->name, line);
    vet_err_at_line(err, line);
    return VET_NOTE_IOERR;
}

const char *vet_notes_format_name(vet_notes_format f) {
    switch (f) {
    case VET_NOTES_CSV: return "csv";
    case VET_NOTES_JSON: return "json";
    case VET_NOTES_JSONL: return "jsonl";
    default: return "auto";
    }
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

// Format from the first non-space byte (which is pushed back; skipped spaces are lost,
// which no format minds at the very start).
static vet_notes_format sniff(FILE *f) {
    int ch;
    while ((ch = getc(f)) != EOF && (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')) {}
    if (ch == EOF) return VET_NOTES_CSV;
    ungetc(ch, f);
    return ch == '[' ? VET_NOTES_JSON : ch == '{' ? VET_NOTES_JSONL : VET_NOTES_CSV;
}

// A copy of the header row's fields, to know the header when it comes again.
static int keep_header(vet_notes *s) {
    size_t total = 0, len;
    for (size_t i = 0; i < s->ncols; i++) {
        vet_csv_field(s->csv, i, &len);
        total += len + 1;
    }
    if (!(s->header = malloc(total ? total : 1))) return -1;
    char *p = s->header;
    for (size_t i = 0; i < s->ncols; i++) {
        const char *f = vet_csv_field(s->csv, i, &len);
        memcpy(p, f, len + 1);
        p += len + 1;
    }
    return 0;
}

// True when the current row is the header again (a UTF-8 byte order mark before it aside): two
// CSV files joined with cat, whose second header would otherwise be read as a note "note"
// labelled "codes".
static int repeats_header(const vet_notes *s) {
    const char *h = s->header;
    for (size_t i = 0; i < s->ncols; i++) {
        size_t len, hlen = strlen(h);
        const char *f = vet_csv_field(s->csv, i, &len);
        size_t bom = i == 0 ? vet_utf8_bom_len(f, len) : 0;
        f += bom, len -= bom;
        if (len != hlen || memcmp(f, h, len) != 0) return 0;
        h += hlen + 1;
    }
    return 1;
}

// The header column whose name is `name` but for case and surrounding blanks ("Codes", " id"),
// or -1.
static long near_column(const vet_notes *s, const char *name) {
    for (size_t i = 0; i < s->ncols; i++) {
        size_t len;
        const char *f = vet_csv_field(s->csv, i, &len);
        f = vet_trim_span(f, &len);
        if (len == strlen(name) && strncasecmp(f, name, len) == 0) return (long)i;
    }
    return -1;
}

static int open_csv(vet_notes *s, const vet_notes_opts *o, vet_err *err) {
    s->csv = vet_csv_open(s->f, s->name, err);
    if (!s->csv) return -1;
    int rc = vet_csv_next(s->csv, err);
    if (rc == VET_CSV_EOF) return at_line(s, 1, err, "empty input: no header row");
    if (rc != VET_CSV_ROW) return -1;
    s->ncols = vet_csv_nfields(s->csv);
    size_t rawlen;
    const char *raw = vet_csv_raw(s->csv, &rawlen);
    if (!vet_utf8_valid(raw, rawlen, NULL)) return at_line(s, vet_csv_line(s->csv), err, "the header row is not valid UTF-8");
    if (vet_csv_check_header(s->csv, 0, err) < 0) return -1;
    if (keep_header(s)) return no_memory(s, vet_csv_line(s->csv), err), -1;
    const char *want[NCOLS] = {o->id_col, o->species_col, o->note_col, o->codes_col, o->disease_col};
    for (int k = 0; k < NCOLS; k++) {
        const char *name = want[k] ? want[k] : COL_DEFAULT[k];
        s->col[k] = -1;
        for (size_t i = 0; i < s->ncols; i++)
            if (strcmp(vet_csv_field(s->csv, i, NULL), name) == 0) { s->col[k] = (long)i; break; }
        // Only the note is needed; other columns are needed only when asked for by name.
        if (s->col[k] < 0 && (k == COL_NOTE || want[k])) {
            char cols[400] = "";
            for (size_t i = 0; i < s->ncols && strlen(cols) < sizeof cols - 64; i++)
                snprintf(cols + strlen(cols), sizeof cols - strlen(cols), "%s%s", i ? "," : "",
                         vet_csv_field(s->csv, i, NULL));
            return at_line(s, vet_csv_line(s->csv), err, "no column '%s' in the header (columns: %s); name the "
                           "right one with %s", name, cols, COL_FLAG[k]);
        }
        // An optional column left empty because its name differs in case or blanks only: the
        // file's ids would silently become record numbers, its codes nothing.
        long near = s->col[k] < 0 ? near_column(s, name) : -1;
        if (near >= 0)
            return at_line(s, vet_csv_line(s->csv), err, "no column '%s', but a column '%s' (names are matched "
                           "exactly): name it with %s '%s', or rename it", name, vet_csv_field(s->csv, (size_t)near, NULL),
                           COL_FLAG[k], vet_csv_field(s->csv, (size_t)near, NULL));
    }
    return 0;
}

// The whole JSON array, read with a bound (a device or a wrong file is refused, not read until
// memory runs out) and parsed by jansson.
static int load_array(vet_notes *s, vet_err *err) {
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    if (!buf) return no_memory(s, 1, err), -1;
    while ((got = fread(buf + n, 1, cap - n, s->f)) > 0) {
        n += got;
        if (n < cap) continue;
        char *p = cap < NOTES_MAX_JSON ? realloc(buf, 2 * cap) : NULL;
        if (!p) {
            free(buf);
            if (cap < NOTES_MAX_JSON) return no_memory(s, 1, err), -1;
            return vet_errf(err, "%s: more than %zu MiB: too large for a JSON array of notes (is it a text "
                            "file? use JSONL for large sets)", s->name, NOTES_MAX_JSON >> 20);
        }
        buf = p;
        cap *= 2;
    }
    if (ferror(s->f)) {
        free(buf);
        return vet_err_io(err, "%s: read failed: %s", s->name, strerror(errno));
    }
    json_error_t je;
    s->root = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (!s->root) return at_line(s, je.line, err, "not valid JSON: %s", vet_json_why(&je));
    return 0;
}

vet_notes *vet_notes_open(FILE *f, const char *name, const vet_notes_opts *opts, vet_err *err) {
    static const vet_notes_opts none = {0};
    const vet_notes_opts *o = opts ? opts : &none;
    vet_notes *s = calloc(1, sizeof *s);
    if (!s) { vet_err_nomem(err, "%s: out of memory", name); return NULL; }
    s->f = f;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->note_prefix = strdup(o->note_prefix ? o->note_prefix : "Clinical Note: ");
    s->format = o->format;
    vet_skip_bom(f);  // before the sniffing, and before jansson, which would refuse it invisibly
    if (s->format == VET_NOTES_AUTO) {
        if (ends_with(name, ".csv")) s->format = VET_NOTES_CSV;
        else if (ends_with(name, ".jsonl") || ends_with(name, ".ndjson")) s->format = VET_NOTES_JSONL;
        else if (ends_with(name, ".json")) s->format = VET_NOTES_JSON;
        else s->format = sniff(f);
    }
    vet_lines_init(&s->lines, f, s->name, NOTES_MAX_LINE);
    if (s->format == VET_NOTES_CSV) {
        if (open_csv(s, o, err)) goto fail;
    } else if (s->format == VET_NOTES_JSON) {
        if (load_array(s, err)) goto fail;
        if (!json_is_array(s->root)) {
            at_line(s, 1, err, "expected a JSON array of Alpaca records (use --format jsonl for one object per line)");
            goto fail;
        }
    }
    return s;
fail:
    vet_notes_close(s);
    return NULL;
}

vet_notes_format vet_notes_format_of(const vet_notes *s) { return s->format; }

const char *vet_notes_reason(const vet_notes *s) { return s->why; }

// A note's codes are a set (vet-eval scores them so): a code given twice ("123;123") is kept
// once, or the response would teach the model to repeat it ("123, 123").
static int add_code(vet_notes *s, char *code) {
    for (size_t i = 0; i < s->codes_n; i++)
        if (strcmp(s->codes[i], code) == 0) return 0;
    if (s->codes_n == s->codes_ptr_cap) {
        size_t cap = s->codes_ptr_cap ? 2 * s->codes_ptr_cap : 8;
        char **p = realloc(s->codes, cap * sizeof *p);
        if (!p) return -1;
        s->codes = p;
        s->codes_ptr_cap = cap;
    }
    s->codes[s->codes_n++] = code;
    return 0;
}

// Room for n bytes in *buf (capacity *cap); -1 when out of memory.
static int reserve(char **buf, size_t *cap, size_t n) {
    if (n <= *cap) return 0;
    char *p = realloc(*buf, n);
    if (!p) return -1;
    *buf = p;
    *cap = n;
    return 0;
}

// Splits "a; b;c" into codes, trimming spaces and dropping empty pieces.
static int split_codes(vet_notes *s, const char *field, size_t len) {
    s->codes_n = 0;
    if (reserve(&s->codes_buf, &s->codes_cap, len + 1)) return -1;
    memcpy(s->codes_buf, field, len);
    s->codes_buf[len] = '\0';
    char *p = s->codes_buf;
    for (;;) {
        char *semi = strchr(p, ';');
        if (semi) *semi = '\0';
        p = vet_trim(p);
        if (*p && add_code(s, p)) return -1;
        if (!semi) break;
        p = semi + 1;
    }
    return 0;
}

// v trimmed as a code is ("" when blank), copied into *buf; NULL when out of memory. For the
// disease name, the label of a note without codes (" Foot Rot" would be another label than the
// "Foot Rot" vet-eval reads back), and the species ("Cow " got no --species-swap copy, and a
// species of its own in vet-eval's report).
static const char *trimmed(char **buf, size_t *cap, const char *v) {
    size_t n = strlen(v);
    if (reserve(buf, cap, n + 1)) return NULL;
    memcpy(*buf, v, n + 1);
    return vet_trim(*buf);
}

static int next_csv(vet_notes *s, vet_note *n, vet_err *err) {
    int rc = vet_csv_next(s->csv, err);
    if (rc == VET_CSV_EOF) return VET_NOTE_EOF;
    s->index++;
    if (rc == VET_CSV_IOERR) return VET_NOTE_IOERR;
    if (rc == VET_CSV_FATAL) return VET_NOTE_FATAL;
    if (rc == VET_CSV_BAD) {
        snprintf(s->why, sizeof s->why, "%s", vet_csv_reason(s->csv));
        return VET_NOTE_BAD;
    }
    long line = vet_csv_line(s->csv);
    size_t nf = vet_csv_nfields(s->csv);
    if (nf != s->ncols)
        return reject(s, line, err, "%zu fields, the header has %zu (%s; quote fields that hold commas)", nf,
                      s->ncols, nf > s->ncols ? "too many" : "too few");
    size_t rawlen, off;
    const char *raw = vet_csv_raw(s->csv, &rawlen);
    if (!vet_utf8_valid(raw, rawlen, &off))
        return reject(s, line, err, "invalid UTF-8 (byte %zu of the row); convert the file with iconv", off + 1);
    const char *v[NCOLS];
    size_t len[NCOLS];
    for (int k = 0; k < NCOLS; k++) {
        v[k] = "";
        len[k] = 0;
        if (s->col[k] >= 0) v[k] = vet_csv_field(s->csv, (size_t)s->col[k], &len[k]);
        if (strlen(v[k]) != len[k]) return reject(s, line, err, "a NUL byte in column '%s'", COL_DEFAULT[k]);
    }
    if (repeats_header(s))
        return reject(s, line, err, "the header row again, not a note (files joined together? drop the line)");
    if (vet_is_blank_str(v[COL_NOTE])) return reject(s, line, err, "empty note");
    if (split_codes(s, v[COL_CODES], len[COL_CODES])) return no_memory(s, line, err);
    const char *disease = trimmed(&s->disease_buf, &s->disease_cap, v[COL_DISEASE]);
    const char *species = trimmed(&s->species_buf, &s->species_cap, v[COL_SPECIES]);
    if (!disease || !species) return no_memory(s, line, err);
    if (!*v[COL_ID]) snprintf(s->idbuf, sizeof s->idbuf, "%ld", s->index);
    *n = (vet_note){
        .line = line, .index = s->index,
        .id = *v[COL_ID] ? v[COL_ID] : s->idbuf, .species = species, .note = v[COL_NOTE],
        .disease = disease, .codes = s->codes, .n_codes = s->codes_n,
    };
    return VET_NOTE_OK;
}

// A string member, or NULL (absent or null); -1 when present with another type.
static int member_str(json_t *obj, const char *key, const char **out) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return -1;
    *out = json_string_value(v);
    return 0;
}

// The Alpaca record's text members, in the order of ALPACA_KEYS (NULL where absent).
enum { KEY_INSTRUCTION, KEY_INPUT, KEY_OUTPUT, KEY_ANIMAL, KEY_DISEASE, NKEYS };
static const char *const ALPACA_KEYS[NKEYS] = {"instruction", "input", "output", "animal", "disease"};

static int json_members(vet_notes *s, json_t *obj, long line, const char *v[NKEYS], vet_err *err) {
    for (int k = 0; k < NKEYS; k++) {
        if (member_str(obj, ALPACA_KEYS[k], &v[k])) return reject(s, line, err, "\"%s\" is not a string", ALPACA_KEYS[k]);
        // jansson keeps a \u0000 inside a string: the C string would end there, silently shorter.
        if (v[k] && strlen(v[k]) != json_string_length(json_object_get(obj, ALPACA_KEYS[k])))
            return reject(s, line, err, "a NUL character in \"%s\"", ALPACA_KEYS[k]);
    }
    return VET_NOTE_OK;
}

// "snomed_codes": absent, null, or an array of strings. Each is trimmed and a blank one dropped,
// as the CSV reader does with "a; b;;c": " 123 " would be a label that never equals the "123"
// a prediction names.
static int json_codes(vet_notes *s, json_t *obj, long line, vet_err *err) {
    s->codes_n = 0;
    json_t *codes = json_object_get(obj, "snomed_codes");
    if (!codes || json_is_null(codes)) return VET_NOTE_OK;
    if (!json_is_array(codes)) return reject(s, line, err, "\"snomed_codes\" is not an array");
    size_t i, need = 0;
    json_t *c;
    json_array_foreach(codes, i, c) {
        if (!json_is_string(c)) return reject(s, line, err, "\"snomed_codes\"[%zu] is not a string", i);
        need += strlen(json_string_value(c)) + 1;
    }
    if (reserve(&s->codes_buf, &s->codes_cap, need)) return no_memory(s, line, err);
    char *p = s->codes_buf;  // the copies, one after another (the buffer moves no more)
    json_array_foreach(codes, i, c) {
        size_t n = strlen(json_string_value(c)) + 1;
        memcpy(p, json_string_value(c), n);
        char *code = vet_trim(p);
        if (*code && add_code(s, code)) return no_memory(s, line, err);
        p += n;
    }
    return VET_NOTE_OK;
}

// "id": a string or an integer; absent, null or "": the record number.
static int json_id(vet_notes *s, json_t *obj, long line, const char **id, vet_err *err) {
    json_t *jid = json_object_get(obj, "id");
    *id = NULL;
    if (json_is_string(jid)) {
        *id = json_string_value(jid);
    } else if (json_is_integer(jid)) {
        snprintf(s->idbuf, sizeof s->idbuf, "%" JSON_INTEGER_FORMAT, json_integer_value(jid));
        *id = s->idbuf;
    } else if (jid && !json_is_null(jid)) {
        return reject(s, line, err, "\"id\" is neither a string nor an integer");
    }
    if (!*id || !**id) {
        snprintf(s->idbuf, sizeof s->idbuf, "%ld", s->index);
        *id = s->idbuf;
    }
    return VET_NOTE_OK;
}

// One Alpaca record (JSON array element or JSONL line) into n.
static int from_json(vet_notes *s, json_t *obj, long line, vet_note *n, vet_err *err) {
    if (!json_is_object(obj)) return reject(s, line, err, "expected a JSON object (an Alpaca record)");
    const char *v[NKEYS];
    int rc = json_members(s, obj, line, v, err);
    if (rc != VET_NOTE_OK) return rc;
    const char *input = v[KEY_INPUT];
    if (!input) return reject(s, line, err, "no note (no \"input\")");
    if (vet_is_blank_str(input)) return reject(s, line, err, "empty note (\"input\" is blank)");
    size_t pn = strlen(s->note_prefix);
    const char *note = strncmp(input, s->note_prefix, pn) == 0 ? input + pn : input;
    if (vet_is_blank_str(note)) return reject(s, line, err, "empty note (\"input\" holds only '%s')", s->note_prefix);
    // An "output" given but blank is the record's answer, and it is nothing: trained on, the model
    // learns to answer nothing. (Absent or null, the template's response format renders one.)
    if (v[KEY_OUTPUT] && vet_is_blank_str(v[KEY_OUTPUT]))
        return reject(s, line, err, "empty answer (\"output\" is blank): give the answer, or leave \"output\" out "
                      "to have the response format render the record's codes");
    // An "instruction" given but blank is a bad record as well: the prompt's instruction section
    // would be empty, in training and in every run after it. (Absent or null, --instruction is used.)
    if (v[KEY_INSTRUCTION] && vet_is_blank_str(v[KEY_INSTRUCTION]))
        return reject(s, line, err, "empty instruction (\"instruction\" is blank): give the instruction, or leave "
                      "\"instruction\" out to have --instruction used");
    const char *id;
    if ((rc = json_codes(s, obj, line, err)) != VET_NOTE_OK || (rc = json_id(s, obj, line, &id, err)) != VET_NOTE_OK)
        return rc;
    const char *disease = trimmed(&s->disease_buf, &s->disease_cap, v[KEY_DISEASE] ? v[KEY_DISEASE] : "");
    const char *species = trimmed(&s->species_buf, &s->species_cap, v[KEY_ANIMAL] ? v[KEY_ANIMAL] : "");
    if (!disease || !species) return no_memory(s, line, err);
    *n = (vet_note){
        .line = line, .index = s->index, .id = id, .species = species, .note = note,
        .disease = disease, .codes = s->codes, .n_codes = s->codes_n,
        .instruction = v[KEY_INSTRUCTION], .input = input, .output = v[KEY_OUTPUT],
    };
    return VET_NOTE_OK;
}

static int next_json(vet_notes *s, vet_note *n, vet_err *err) {
    if (s->next >= json_array_size(s->root)) return VET_NOTE_EOF;
    json_t *obj = json_array_get(s->root, s->next++);
    s->index++;
    free(s->raw);
    s->raw = NULL;
    return from_json(s, obj, s->index, n, err);
}

static int next_jsonl(vet_notes *s, vet_note *n, vet_err *err) {
    if (s->obj) { json_decref(s->obj); s->obj = NULL; }
    vet_lines *L = &s->lines;
    for (;;) {  // blank lines are skipped
        int rc = vet_lines_next(L, err);
        if (rc == 0) return VET_NOTE_EOF;
        if (rc < 0) return err->kind == VET_E_INPUT ? VET_NOTE_FATAL : VET_NOTE_IOERR;
        if (!vet_is_blank_str(L->buf) || L->len != strlen(L->buf)) break;
    }
    s->index++;
    size_t off;
    if (!vet_utf8_valid(L->buf, L->len, &off))
        return reject(s, L->lineno, err, "invalid UTF-8 (byte %zu of the line)", off + 1);
    json_error_t je;
    s->obj = json_loadb(L->buf, L->len, JSON_REJECT_DUPLICATES, &je);
    if (!s->obj)
        return reject(s, L->lineno, err, "not valid JSON: %s (JSONL wants one object per line)", vet_json_why(&je));
    return from_json(s, s->obj, L->lineno, n, err);
}

int vet_notes_next(vet_notes *s, vet_note *out, vet_err *err) {
    switch (s->format) {
    case VET_NOTES_CSV: return next_csv(s, out, err);
    case VET_NOTES_JSON: return next_json(s, out, err);
    case VET_NOTES_JSONL: return next_jsonl(s, out, err);
    default: return vet_errf(err, "%s: no format", s->name), VET_NOTE_FATAL;
    }
}

const char *vet_notes_raw(vet_notes *s, size_t *len) {
    switch (s->format) {
    case VET_NOTES_CSV: return vet_csv_raw(s->csv, len);
    case VET_NOTES_JSONL:
        *len = s->lines.len;
        return s->lines.buf ? s->lines.buf : "";
    case VET_NOTES_JSON:
        if (!s->raw && s->next > 0)
            s->raw = json_dumps(json_array_get(s->root, s->next - 1),
                                JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);  // a string or a number too
        *len = s->raw ? strlen(s->raw) : 0;
        return s->raw ? s->raw : "";
    default: *len = 0; return "";
    }
}

void vet_notes_close(vet_notes *s) {
    if (!s) return;
    vet_csv_close(s->csv);
    if (s->root) json_decref(s->root);
    if (s->obj) json_decref(s->obj);
    vet_lines_free(&s->lines);
    free(s->codes_buf);
    free(s->disease_buf);
    free(s->species_buf);
    free(s->header);
    free(s->codes);
    free(s->note_prefix);
    free(s->raw);
    free(s);
}
