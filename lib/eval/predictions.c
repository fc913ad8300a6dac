// predictions.c — see predictions.h. One reader struct, three formats behind a switch (a
// stream through io/stream, CSV through io/csv, JSON lines through jansson), then the two loops
// that fill a sample set (metrics.h) from a file.
#include "eval/predictions.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/input_file.h"
#include "base/lines.h"
#include "base/strtab.h"
#include "base/trim.h"
#include "base/utf8.h"
#include "data/labels.h"
#include "eval/ranking.h"
#include "eval/shards.h"
#include "io/csv.h"
#include "io/json_file.h"
#include "io/mp.h"
#include "io/stream.h"

// --- reading predictions: stream, CSV, JSON lines ---------------------------------------
enum { COL_ID, COL_SPECIES, COL_GOLD, COL_PRED, COL_TEXT, COL_TOKENS, COL_MS, COL_GROUP, NCOLS };
static const char *col_names[NCOLS] = {"id", "species", "gold", "pred", "text", "tokens", "ms", "group"};

struct vet_pred_reader {
    int format;
    char *name;          // for messages: the path or "<stdin>"
    vet_reader *stream;  // VET_PRED_STREAM
    FILE *f;             // CSV and JSON lines
    vet_csv *csv;
    long col[NCOLS];     // CSV column of each field, -1 when absent
    size_t ncols;
    vet_lines lines;     // JSON lines
    uint64_t records;
    int64_t table_labels;  // a stream's header `rank.labels` (vet-generate --rank); 0: not said
};

// An error about a line of a CSV or JSON lines file: "name:line: what", err->line set. -1.
#define at_line(r, line, err, ...) vet_err_at(err, (r)->name, line, __VA_ARGS__)

// A decimal integer as a fresh string (NULL when out of memory).
static char *str_of_int(long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return strdup(buf);
}

// The same for an unsigned one (a stream's positive integers go up to 2^64 - 1).
static char *str_of_uint(unsigned long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", v);
    return strdup(buf);
}

int vet_split_labels(const char *s, size_t len, char ***out, size_t *n, vet_err *err) {
    size_t cap = 1;
    for (size_t i = 0; i < len; i++) cap += s[i] == ';';
    char **v = calloc(cap, sizeof *v);
    if (!v) return vet_err_nomem(err, "out of memory");
    size_t k = 0, i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && s[j] != ';') j++;
        size_t m = j - i;
        const char *label = vet_trim_span(s + i, &m);
        if (m > 0 && !(v[k++] = strndup(label, m))) {
            vet_labels_free_list(v, k - 1);
            return vet_err_nomem(err, "out of memory");
        }
        i = j + 1;
    }
    *out = v;
    *n = k;
    return 0;
}

void vet_pred_clear(vet_pred *rec) {
    free(rec->id);
    free(rec->species);
    free(rec->text);
    free(rec->group);
    vet_labels_free_list(rec->gold, rec->ngold);
    vet_labels_free_list(rec->pred, rec->npred);
    vet_labels_free_list(rec->ranked, rec->nranked);
    free(rec->ranked_p);
    free(rec->ranked_logp);
    memset(rec, 0, sizeof *rec);
}

const char *vet_pred_format_name(const vet_pred_reader *r) {
    return r->format == VET_PRED_STREAM ? "stream" : r->format == VET_PRED_CSV ? "csv" : "jsonl";
}

void vet_pred_close(vet_pred_reader *r) {
    if (!r) return;
    vet_reader_close(r->stream);
    vet_csv_close(r->csv);
    vet_input_close(r->f);
    vet_lines_free(&r->lines);
    free(r->name);
    free(r);
}

static int csv_header(vet_pred_reader *r, vet_err *err) {
    int rc = vet_csv_next(r->csv, err);
    if (rc < 0) return -1;
    if (rc == VET_CSV_EOF) return vet_errf(err, "%s: empty input (expected a header row with gold and pred)", r->name);
    r->ncols = vet_csv_nfields(r->csv);
    size_t rawlen;
    const char *raw = vet_csv_raw(r->csv, &rawlen);
    if (!vet_utf8_valid(raw, rawlen, NULL))
        return at_line(r, vet_csv_line(r->csv), err, "the header row is not valid UTF-8 (convert the file with iconv)");
    if (vet_csv_check_header(r->csv, 1, err) < 0) return -1;  // columns are found without case
    for (int c = 0; c < NCOLS; c++) r->col[c] = -1;
    for (size_t i = 0; i < r->ncols; i++) {
        const char *h = vet_csv_field(r->csv, i, NULL);
        for (int c = 0; c < NCOLS; c++)
            if (strcasecmp(h, col_names[c]) == 0 && r->col[c] < 0) r->col[c] = (long)i;
    }
    for (int c = COL_GOLD; c <= COL_PRED; c++)
        if (r->col[c] < 0)
            return at_line(r, vet_csv_line(r->csv), err, "no \"%s\" column (the header row must name id, gold, pred; "
                           "species optional)", col_names[c]);
    return 0;
}

// Whether o is there and not nil: a nil `ranked` or `logp` counts as absent, in a stream as in
// JSON lines (where writers say null for a missing value).
static int given(const msgpack_object *o) { return o && o->type != MSGPACK_OBJECT_NIL; }

// A stream's header `rank` (vet-generate --rank): how many labels its table holds, which a
// complete list (--rank all) has, in r->table_labels; none: 0.
static int header_rank(vet_pred_reader *r, vet_err *err) {
    const msgpack_object *h = mp_get(vet_reader_header(r->stream), "rank");
    if (!given(h)) return 0;
    int64_t n;
    if (h->type != MSGPACK_OBJECT_MAP || mp_get_int(h, "labels", &n, err) < 0 || n < 1)
        return vet_errf(err, "%s: header: \"rank\" is not a map with labels >= 1 (the table's size)", r->name);
    r->table_labels = n;
    return 0;
}

vet_pred_reader *vet_pred_open(const char *path, int format, vet_err *err) {
    int is_stdin = !path || strcmp(path, "-") == 0;
    vet_pred_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(is_stdin ? "<stdin>" : path))) {
        free(r);
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    if (!(r->f = vet_input_open(path, "predictions file", err))) goto fail;
    vet_skip_bom(r->f);  // a BOM would hide a JSON lines file's '{' from the sniffing
    vet_lines_init(&r->lines, r->f, r->name, (size_t)64 << 20);
    if (format == VET_PRED_SNIFF) {
        // One byte is enough and can be pushed back into stdin: a zstd frame starts 0x28 B5 2F FD.
        int c = getc(r->f);
        if (c == EOF && ferror(r->f)) {
            vet_err_io(err, "%s: read failed: %s", r->name, strerror(errno));
            goto fail;
        }
        if (c == EOF) {
            vet_errf(err, "%s: empty input (no predictions)", r->name);
            goto fail;
        }
        ungetc(c, r->f);
        format = c == 0x28 ? VET_PRED_STREAM : c == '{' ? VET_PRED_JSONL : VET_PRED_CSV;
    }
    r->format = format;
    if (format == VET_PRED_STREAM) {
        // The stream reader takes the file as it is (the sniffed byte pushed back): a pipe or a
        // FIFO (`vet-eval <(...)`) cannot be opened a second time.
        FILE *f = r->f;
        r->f = NULL;
        r->stream = vet_reader_open_file(f, r->name, "predictions", err);
        if (!r->stream || header_rank(r, err) < 0) goto fail;
    } else if (format == VET_PRED_CSV) {
        if (!(r->csv = vet_csv_open(r->f, r->name, err)) || csv_header(r, err) < 0) goto fail;
    }
    return r;
fail:
    vet_pred_close(r);
    return NULL;
}

// The shard's `input_digest` into digest: 16 lowercase hex digits, or "" when the key is absent
// (a vet-generate before it); anything else is refused, as vet-generate writes nothing else.
static int shard_digest(const vet_pred_reader *r, const msgpack_object *sh, char digest[17], vet_err *err) {
    digest[0] = 0;
    const msgpack_object *d = mp_get(sh, "input_digest");
    if (!d) return 0;
    int ok = d->type == MSGPACK_OBJECT_STR && d->via.str.size == 16;
    for (uint32_t i = 0; ok && i < 16; i++) {
        char c = d->via.str.ptr[i];
        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    }
    if (!ok)
        return vet_errf(err, "%s: header: the shard's \"input_digest\" is not 16 lowercase hex digits (as "
                        "vet-generate --shard writes it)", r->name);
    memcpy(digest, d->via.str.ptr, 16);
    digest[16] = 0;
    return 0;
}

int vet_pred_shard(const vet_pred_reader *r, vet_shard *s, vet_err *err) {
    memset(s, 0, sizeof *s);
    if (vet_pred_fold(r, &s->fold, err) < 0) return -1;  // with a shard or without: one read tells both
    const msgpack_object *sh = r->stream ? mp_get(vet_reader_header(r->stream), "shard") : NULL;
    if (!sh) return 0;
    int64_t k, n, t;
    if (sh->type != MSGPACK_OBJECT_MAP || mp_get_int(sh, "k", &k, err) || mp_get_int(sh, "n", &n, err) ||
        mp_get_int(sh, "input_notes", &t, err))
        return vet_errf(err, "%s: header: \"shard\" is not a map of k, n and input_notes", r->name);
    if (n < 1 || n > (1 << 30) || k < 0 || k >= n || t < 0)
        return vet_errf(err, "%s: header: shard %lld/%lld of %lld notes is not a shard (want 0 <= k < n, notes >= 0)",
                        r->name, (long long)k, (long long)n, (long long)t);
    s->k = (int)k, s->n = (int)n, s->input_notes = t;
    return shard_digest(r, sh, s->input_digest, err) < 0 ? -1 : 1;
}

int vet_eval_add_pred(vet_eval *e, const vet_pred *rec, vet_err *err) {
    if (vet_eval_add(e, rec->species, rec->gold, rec->ngold, rec->pred, rec->npred, err) ||
        vet_eval_name_last(e, rec->id, err) || vet_eval_group_last(e, rec->group, err))
        return -1;
    // The bootstrap draws groups only when every sample has one: one note without a group would
    // switch the whole set to drawing notes one by one, and the interval would narrow without a
    // word. A set is grouped throughout or not at all, as it is ranked throughout or not.
    size_t n = vet_eval_n(e);
    int grouped = rec->group && rec->group[0];
    if (n >= 2 && grouped != vet_eval_in_group(e, 0))
        return vet_errf(err, "id '%s' has %s group, but the first note (id '%s') has %s: the bootstrap draws groups "
                        "whole only when every note has one (give each note a group, or none; predictions of "
                        "an older vet-generate have none)", rec->id, grouped ? "a" : "no", vet_eval_id_at(e, 0),
                        grouped ? "none" : "one");
    return 0;
}

int vet_pred_fold(const vet_pred_reader *r, vet_fold *f, vet_err *err) {
    memset(f, 0, sizeof *f);
    const msgpack_object *fo = r->stream ? mp_get(vet_reader_header(r->stream), "fold") : NULL;
    if (!fo) return 0;
    int64_t i, k;
    const char *split;
    size_t split_len;
    if (fo->type != MSGPACK_OBJECT_MAP || mp_get_int(fo, "i", &i, err) || mp_get_int(fo, "k", &k, err) ||
        mp_get_int(fo, "seed", &f->seed, err) || mp_get_int(fo, "notes", &f->notes, err) ||
        mp_get_int(fo, "input_notes", &f->input_notes, err) || mp_get_str(fo, "split", &split, &split_len, err))
        return vet_errf(err, "%s: header: \"fold\" is not a map of i, k, seed, split, notes and input_notes", r->name);
    if (k < 2 || k > (1 << 20) || i < 0 || i >= k || f->notes < 0 || f->input_notes < f->notes || split_len == 0 ||
        split_len >= sizeof f->split)
        return vet_errf(err, "%s: header: fold %lld/%lld holding %lld of %lld notes is not a fold (want 0 <= i < k, "
                        "0 <= notes <= input_notes, a split name)", r->name, (long long)i, (long long)k,
                        (long long)f->notes, (long long)f->input_notes);
    f->i = (int)i, f->k = (int)k;
    memcpy(f->split, split, split_len);
    return 1;
}

// --- `ranked`: the same entries and the same messages from both formats ---

// Room for n entries in rec (NULL labels until read; nranked set so vet_pred_clear frees them).
static int ranked_alloc(vet_pred *rec, size_t n, vet_err *err) {
    rec->ranked = calloc(n ? n : 1, sizeof *rec->ranked);
    rec->ranked_p = calloc(n ? n : 1, sizeof *rec->ranked_p);
    rec->ranked_logp = malloc((n ? n : 1) * sizeof *rec->ranked_logp);
    if (!rec->ranked || !rec->ranked_p || !rec->ranked_logp) return vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < n; i++) rec->ranked_logp[i] = NAN;  // absent until read
    rec->nranked = n;
    return 0;
}

// Entry i lacks key (present 0) or holds something else than a label string or a number.
static int ranked_bad(size_t i, const char *key, int present, vet_err *err) {
    if (!present) return vet_errf(err, "\"ranked\"[%zu] has no \"%s\"", i, key);
    return vet_errf(err, "\"ranked\"[%zu].%s is not a %s", i, key, strcmp(key, "label") == 0 ? "string" : "number");
}

// logp is the log of the whole response's probability: never above 0 (-inf is a probability 0).
static int check_logp(size_t i, double logp, vet_err *err) {
    if (logp <= 0) return 0;  // NaN fails the comparison
    return vet_errf(err, "\"ranked\"[%zu].logp = %g is not a log probability (want logp <= 0)", i, logp);
}

// Entry i of a stream's `ranked`: a map of label, p and optional logp.
static int stream_ranked_entry(const msgpack_object *x, size_t i, vet_pred *rec, vet_err *err) {
    if (x->type != MSGPACK_OBJECT_MAP) return vet_errf(err, "\"ranked\"[%zu] is not a map", i);
    const msgpack_object *label = mp_get(x, "label");
    int has_logp = given(mp_get(x, "logp"));
    double logp = 0;
    if (!label || label->type != MSGPACK_OBJECT_STR) return ranked_bad(i, "label", label != NULL, err);
    if (mp_get_double(x, "p", &rec->ranked_p[i], err) < 0) return ranked_bad(i, "p", mp_get(x, "p") != NULL, err);
    if (has_logp && mp_get_double(x, "logp", &logp, err) < 0) return ranked_bad(i, "logp", 1, err);
    if (has_logp && check_logp(i, logp, err) < 0) return -1;
    if (has_logp) rec->ranked_logp[i] = logp;
    rec->ranked[i] = strndup(label->via.str.ptr, label->via.str.size);
    return rec->ranked[i] ? 0 : vet_err_nomem(err, "out of memory");
}

// A stream record's `ranked` into rec; absent or nil: nothing.
static int stream_ranked(const msgpack_object *o, vet_pred *rec, vet_err *err) {
    const msgpack_object *v = mp_get(o, "ranked");
    if (!given(v)) return 0;
    if (v->type != MSGPACK_OBJECT_ARRAY) return vet_errf(err, "\"ranked\" is not an array of {label, p} maps");
    size_t n = v->via.array.size;
    if (ranked_alloc(rec, n, err) < 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (stream_ranked_entry(&v->via.array.ptr[i], i, rec, err) < 0) return -1;
    return vet_ranked_check(rec->ranked, rec->ranked_p, n, err);
}

// Entry i of a JSON line's `ranked`: an object of label, p and optional logp (null: absent).
static int json_ranked_entry(const json_t *x, size_t i, vet_pred *rec, vet_err *err) {
    if (!json_is_object(x)) return vet_errf(err, "\"ranked\"[%zu] is not an object", i);
    const json_t *label = json_object_get(x, "label"), *p = json_object_get(x, "p"), *logp = json_object_get(x, "logp");
    if (!json_is_string(label)) return ranked_bad(i, "label", label != NULL, err);
    if (!json_is_number(p)) return ranked_bad(i, "p", p != NULL, err);
    if (logp && !json_is_null(logp) && !json_is_number(logp)) return ranked_bad(i, "logp", 1, err);
    if (json_is_number(logp) && check_logp(i, json_number_value(logp), err) < 0) return -1;
    if (json_is_number(logp)) rec->ranked_logp[i] = json_number_value(logp);
    rec->ranked_p[i] = json_number_value(p);
    if (!(rec->ranked[i] = strdup(json_string_value(label)))) return vet_err_nomem(err, "out of memory");
    return 0;
}

// A JSON line's `ranked` into rec; absent or null: nothing.
static int json_ranked(const json_t *o, vet_pred *rec, vet_err *err) {
    const json_t *v = json_object_get(o, "ranked");
    if (!v || json_is_null(v)) return 0;
    if (!json_is_array(v)) return vet_errf(err, "\"ranked\" is not an array of {label, p} objects");
    size_t n = json_array_size(v);
    if (ranked_alloc(rec, n, err) < 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (json_ranked_entry(json_array_get(v, i), i, rec, err) < 0) return -1;
    return vet_ranked_check(rec->ranked, rec->ranked_p, n, err);
}

// --- one record from each format ---

static int stream_next(vet_pred_reader *r, vet_pred *rec, vet_err *err) {
    const msgpack_object *o;
    int rc = vet_reader_next(r->stream, &o, err);
    if (rc <= 0) {
        return rc;
    }
    uint64_t k = vet_reader_records(r->stream);
    const msgpack_object *v;
    // An id or species of another type is refused, not replaced: an id of 1.0 read as the
    // record's number would pair notes by their order under --compare, and a species of 7
    // would be counted under no species.
    if (given(v = mp_get(o, "id")) && v->type != MSGPACK_OBJECT_STR && v->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
        v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return vet_errf(err, "%s: record %llu: \"id\" is neither a string nor an integer", r->name,
                        (unsigned long long)k);
    if (given(v = mp_get(o, "species")) && v->type != MSGPACK_OBJECT_STR)
        return vet_errf(err, "%s: record %llu: \"species\" is not a string", r->name, (unsigned long long)k);
    if ((v = mp_get(o, "id")) && v->type == MSGPACK_OBJECT_STR)
        rec->id = strndup(v->via.str.ptr, v->via.str.size);
    else if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)  // up to 2^64 - 1: read as signed, it was -1
        rec->id = str_of_uint(v->via.u64);
    else if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        rec->id = str_of_int(v->via.i64);
    else
        rec->id = str_of_int((long long)k), rec->id_numbered = 1;
    if ((v = mp_get(o, "species")) && v->type == MSGPACK_OBJECT_STR)
        rec->species = strndup(v->via.str.ptr, v->via.str.size);
    else
        rec->species = strdup("");
    if ((v = mp_get(o, "text")) && v->type == MSGPACK_OBJECT_STR)
        rec->text = strndup(v->via.str.ptr, v->via.str.size);
    else
        rec->text = strdup("");
    if (!rec->id || !rec->species || !rec->text) return vet_err_nomem(err, "out of memory");
    if ((v = mp_get(o, "group")) && v->type != MSGPACK_OBJECT_NIL) {
        if (v->type != MSGPACK_OBJECT_STR) return vet_errf(err, "%s: record %llu: \"group\" is not a string", r->name,
                                                           (unsigned long long)k);
        if (!(rec->group = strndup(v->via.str.ptr, v->via.str.size))) return vet_err_nomem(err, "out of memory");
    }
    rec->tokens = -1;
    rec->ms = -1;
    if (mp_get(o, "tokens") && mp_get_int(o, "tokens", &rec->tokens, err) < 0) goto bad;
    if (mp_get(o, "ms") && mp_get_double(o, "ms", &rec->ms, err) < 0) goto bad;
    if (mp_get_str_array(o, "gold", &rec->gold, &rec->ngold, err) < 0) goto bad;
    if (mp_get_str_array(o, "pred", &rec->pred, &rec->npred, err) < 0) goto bad;
    if (stream_ranked(o, rec, err) < 0) goto bad;
    return 1;
bad:
    return vet_err_prefix(err, "%s: record %llu", r->name, (unsigned long long)k);
}

static int parse_int(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno) return -1;
    *out = v;
    return 0;
}

static int csv_next(vet_pred_reader *r, vet_pred *rec, vet_err *err) {
    int rc = vet_csv_next(r->csv, err);
    if (rc == VET_CSV_EOF) return 0;
    if (rc < 0) return -1;
    long line = vet_csv_line(r->csv);
    size_t nf = vet_csv_nfields(r->csv);
    if (nf != r->ncols) return at_line(r, line, err, "%zu fields, the header has %zu", nf, r->ncols);
    size_t len;
    const char *f;
    f = r->col[COL_ID] >= 0 ? vet_csv_field(r->csv, r->col[COL_ID], NULL) : NULL;
    if (f) rec->id = strdup(f);
    else rec->id = str_of_int((long long)r->records + 1), rec->id_numbered = 1;
    rec->species = strdup(r->col[COL_SPECIES] >= 0 ? vet_csv_field(r->csv, r->col[COL_SPECIES], NULL) : "");
    rec->text = strdup(r->col[COL_TEXT] >= 0 ? vet_csv_field(r->csv, r->col[COL_TEXT], NULL) : "");
    if (!rec->id || !rec->species || !rec->text) return vet_err_nomem(err, "out of memory");
    if (r->col[COL_GROUP] >= 0 && *(f = vet_csv_field(r->csv, r->col[COL_GROUP], NULL)) && !(rec->group = strdup(f)))
        return vet_err_nomem(err, "out of memory");
    rec->tokens = -1;
    rec->ms = -1;
    if (r->col[COL_TOKENS] >= 0 && *(f = vet_csv_field(r->csv, r->col[COL_TOKENS], NULL)) &&
        parse_int(f, &rec->tokens) < 0)
        return at_line(r, line, err, "tokens \"%s\" is not an integer", f);
    if (r->col[COL_MS] >= 0 && *(f = vet_csv_field(r->csv, r->col[COL_MS], NULL)) && parse_double(f, &rec->ms) < 0)
        return at_line(r, line, err, "ms \"%s\" is not a number", f);
    f = vet_csv_field(r->csv, r->col[COL_GOLD], &len);
    if (vet_split_labels(f, len, &rec->gold, &rec->ngold, err) < 0) return -1;
    f = vet_csv_field(r->csv, r->col[COL_PRED], &len);
    if (vet_split_labels(f, len, &rec->pred, &rec->npred, err) < 0) return -1;
    return 1;
}

// A JSON label list: an array of strings (or integers), or one ';'-separated string.
static int json_labels(const json_t *v, const char *key, char ***out, size_t *n, vet_err *err) {
    if (!v) return vet_errf(err, "missing \"%s\"", key);
    if (json_is_string(v)) return vet_split_labels(json_string_value(v), json_string_length(v), out, n, err);
    if (!json_is_array(v)) return vet_errf(err, "\"%s\" is neither an array of labels nor a ';'-separated string", key);
    size_t m = json_array_size(v);
    char **a = calloc(m ? m : 1, sizeof *a);
    if (!a) return vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < m; i++) {
        const json_t *x = json_array_get(v, i);
        if (json_is_string(x))
            a[i] = strdup(json_string_value(x));
        else if (json_is_integer(x))
            a[i] = str_of_int(json_integer_value(x));
        else {
            vet_labels_free_list(a, i);
            return vet_errf(err, "\"%s\"[%zu] is not a string", key, i);
        }
        if (!a[i]) {
            vet_labels_free_list(a, i);
            return vet_err_nomem(err, "out of memory");
        }
    }
    *out = a;
    *n = m;
    return 0;
}

// The next line that is not blank into r->lines (any line end, bounded): 1, 0 at end of
// input, -1 on a read error or a line past the bound.
static int jsonl_line(vet_pred_reader *r, vet_err *err) {
    for (;;) {
        int got = vet_lines_next(&r->lines, err);
        if (got <= 0) return got;
        for (size_t i = 0; i < r->lines.len; i++)
            if (!vet_is_blank((unsigned char)r->lines.buf[i])) return 1;
    }
}

// The fields of one JSON lines object into rec.
static int jsonl_fields(vet_pred_reader *r, json_t *o, vet_pred *rec, vet_err *err) {
    json_t *v = json_object_get(o, "id");
    // Another type is refused, as in a stream (stream_next says why); null is absent.
    if (v && !json_is_null(v) && !json_is_string(v) && !json_is_integer(v))
        return at_line(r, r->lines.lineno, err, "\"id\" is neither a string nor an integer");
    json_t *sp = json_object_get(o, "species");
    if (sp && !json_is_null(sp) && !json_is_string(sp))
        return at_line(r, r->lines.lineno, err, "\"species\" is not a string");
    if (json_is_string(v))
        rec->id = strdup(json_string_value(v));
    else if (json_is_integer(v))
        rec->id = str_of_int(json_integer_value(v));
    else
        rec->id = str_of_int((long long)r->records + 1), rec->id_numbered = 1;
    v = json_object_get(o, "species");
    rec->species = strdup(json_is_string(v) ? json_string_value(v) : "");
    v = json_object_get(o, "text");
    rec->text = strdup(json_is_string(v) ? json_string_value(v) : "");
    if (!rec->id || !rec->species || !rec->text) return vet_err_nomem(err, "out of memory");
    if ((v = json_object_get(o, "group")) && !json_is_null(v)) {
        if (!json_is_string(v)) return at_line(r, r->lines.lineno, err, "\"group\" is not a string");
        if (!(rec->group = strdup(json_string_value(v)))) return vet_err_nomem(err, "out of memory");
    }
    rec->tokens = -1;
    rec->ms = -1;
    if ((v = json_object_get(o, "tokens")) && !json_is_null(v)) {
        if (!json_is_integer(v)) return at_line(r, r->lines.lineno, err, "\"tokens\" is not an integer");
        rec->tokens = json_integer_value(v);
    }
    if ((v = json_object_get(o, "ms")) && !json_is_null(v)) {
        if (!json_is_number(v)) return at_line(r, r->lines.lineno, err, "\"ms\" is not a number");
        rec->ms = json_number_value(v);
    }
    if (json_labels(json_object_get(o, "gold"), "gold", &rec->gold, &rec->ngold, err) < 0 ||
        json_labels(json_object_get(o, "pred"), "pred", &rec->pred, &rec->npred, err) < 0 ||
        json_ranked(o, rec, err) < 0) {
        vet_err_prefix(err, "%s:%ld", r->name, r->lines.lineno);
        return vet_err_at_line(err, r->lines.lineno);
    }
    return 1;
}

static int jsonl_next(vet_pred_reader *r, vet_pred *rec, vet_err *err) {
    int got = jsonl_line(r, err);
    if (got <= 0) return got;
    json_error_t jerr;
    json_t *o = json_loadb(r->lines.buf, r->lines.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) return at_line(r, r->lines.lineno, err, "not JSON (%s)", vet_json_why(&jerr));
    int rc = json_is_object(o) ? jsonl_fields(r, o, rec, err) : at_line(r, r->lines.lineno, err, "not a JSON object");
    json_decref(o);
    return rc;
}

// The first of rec's names (id, species, a gold, predicted or ranked label) that is not UTF-8,
// or NULL. They reach the JSON report, which cannot hold such bytes (jansson refuses them, and a
// label dropped there would leave counts that do not add up), and vet-tokenize refuses them in
// notes. The text is not checked: a model can end it inside a character, and only labels
// parsed from it are scored.
static const char *not_utf8(const vet_pred *rec) {
    if (!vet_utf8_valid(rec->id, strlen(rec->id), NULL)) return "id";
    if (!vet_utf8_valid(rec->species, strlen(rec->species), NULL)) return "species";
    for (size_t i = 0; i < rec->ngold; i++)
        if (!vet_utf8_valid(rec->gold[i], strlen(rec->gold[i]), NULL)) return "a gold label";
    for (size_t i = 0; i < rec->npred; i++)
        if (!vet_utf8_valid(rec->pred[i], strlen(rec->pred[i]), NULL)) return "a predicted label";
    for (size_t i = 0; i < rec->nranked; i++)
        if (!vet_utf8_valid(rec->ranked[i], strlen(rec->ranked[i]), NULL)) return "a ranked label";
    return NULL;
}

// s with the blanks around it cut, in place (a label " A " is the label "A").
static void trim_label(char *s) {
    const char *t = vet_trim(s);
    memmove(s, t, strlen(t) + 1);
}

// One rule for labels, whatever the format: a CSV field or a ';'-string is split and trimmed
// (vet_split_labels), so an array's items (JSON lines, a stream) are trimmed too and a blank
// one dropped, and a gold " A" counts as the prediction "A". A ranked label must hold more
// than blanks (its p belongs to a label).
static int normalize_labels(vet_pred *rec, vet_err *err) {
    char **lists[2] = {rec->gold, rec->pred};
    size_t *ns[2] = {&rec->ngold, &rec->npred};
    for (int l = 0; l < 2; l++) {
        size_t k = 0;
        for (size_t i = 0; i < *ns[l]; i++) {
            trim_label(lists[l][i]);
            if (lists[l][i][0]) lists[l][k++] = lists[l][i];
            else free(lists[l][i]);
        }
        *ns[l] = k;
    }
    int trimmed = 0;
    for (size_t i = 0; i < rec->nranked; i++) {
        size_t before = strlen(rec->ranked[i]);
        trim_label(rec->ranked[i]);
        if (!rec->ranked[i][0]) return vet_errf(err, "\"ranked\"[%zu].label is blank", i);
        trimmed |= strlen(rec->ranked[i]) != before;
    }
    // " A" and "A" were two labels before: the list is checked again as the labels now read.
    return trimmed ? vet_ranked_check(rec->ranked, rec->ranked_p, rec->nranked, err) : 0;
}

// A group is a key as a label is: the blanks around it cut (a CSV's " g1" is the group "g1"), and
// one of blanks alone is none, as an empty one is (else every note whose cell holds a space would
// be drawn as one group).
static void normalize_group(vet_pred *rec) {
    if (!rec->group) return;
    trim_label(rec->group);
    if (!rec->group[0]) free(rec->group), rec->group = NULL;
}

int vet_pred_next(vet_pred_reader *r, vet_pred *rec, vet_err *err) {
    memset(rec, 0, sizeof *rec);
    int rc = r->format == VET_PRED_STREAM ? stream_next(r, rec, err)
             : r->format == VET_PRED_CSV  ? csv_next(r, rec, err)
                                          : jsonl_next(r, rec, err);
    if (rc != 1) {
        vet_pred_clear(rec);
        return rc;
    }
    r->records++;
    if (rec->nranked > 0) rec->table_labels = r->table_labels;
    rec->at = r->format == VET_PRED_STREAM ? (long)r->records
              : r->format == VET_PRED_CSV  ? vet_csv_line(r->csv)
                                           : r->lines.lineno;
    const char *bad = not_utf8(rec);
    if (bad) {
        long at = rec->at;
        vet_pred_clear(rec);
        return r->format == VET_PRED_STREAM
                   ? vet_errf(err, "%s: record %ld: %s is not valid UTF-8 (convert the file with iconv)", r->name, at,
                              bad)
                   : at_line(r, at, err, "%s is not valid UTF-8 (convert the file with iconv)", bad);
    }
    normalize_group(rec);
    if (normalize_labels(rec, err) < 0) {
        long at = rec->at;
        vet_pred_clear(rec);
        return r->format == VET_PRED_STREAM ? vet_err_prefix(err, "%s: record %ld", r->name, at)
                                            : vet_err_prefix(err, "%s:%ld", r->name, at);
    }
    return 1;
}

// --- filling a sample set -------------------------------------------------------------------

const char *vet_pred_where(char *buf, size_t n, const char *file, const char *unit, long at) {
    if (strcmp(unit, "line") == 0) snprintf(buf, n, "%s:%ld", file, at);
    else snprintf(buf, n, "%s: %s %ld", file, unit, at);
    return buf;
}

// A second prediction for an id already seen (ids: the table; at: where each was read, negated
// when that record had no id and was named by its number): -1 with err naming both places, and
// saying so when a name was a number given for want of an id ("id '1' appears twice" beside a
// line 1 without one would otherwise point at a line that holds no id).
static int check_id(const vet_pred_reader *r, const vet_pred *rec, vet_strtab *ids, long **at, vet_err *err) {
    size_t before = ids->n;
    long id = vet_strtab_intern(ids, rec->id);
    if (id < 0) return vet_err_nomem(err, "out of memory");
    const char *unit = r->format == VET_PRED_STREAM ? "record" : "line";
    char where[600], why[120] = "";
    if (ids->n == before) {
        long first = labs((*at)[id]);
        if ((*at)[id] < 0 || rec->id_numbered)
            snprintf(why, sizeof why, "; %s %ld has no id, and a record without one is named by its place: 1, 2, ...",
                     unit, (*at)[id] < 0 ? first : rec->at);
        return vet_errf(err, "%s: id '%s' appears twice (first at %s %ld%s): each note must be scored once (two "
                        "files concatenated, or an id column that is not unique?)",
                        vet_pred_where(where, sizeof where, r->name, unit, rec->at), rec->id, unit, first, why);
    }
    if ((ids->n & (ids->n - 1)) == 0) {  // grown at 1, 2, 4, 8, ...: room for 2n ids
        long *p = realloc(*at, 2 * ids->n * sizeof *p);
        if (!p) return vet_err_nomem(err, "out of memory");
        *at = p;
    }
    (*at)[id] = rec->id_numbered ? -rec->at : rec->at;
    return 0;
}

int vet_eval_read_predictions(vet_eval *e, vet_ranks *ranks, const char *path, int format, const char **format_name,
                              vet_err *err) {
    vet_pred_reader *r = vet_pred_open(path, format, err);
    if (!r) return -1;
    *format_name = vet_pred_format_name(r);  // a string constant: outlives the reader
    vet_strtab ids = {0};
    long *at = NULL;
    vet_pred rec;
    vet_shard sh;
    int rc = vet_pred_shard(r, &sh, err), sharded = rc == 1;
    const char *name = r->name;
    if (sharded) rc = vet_shards_check(&sh, &name, 1, err);  // one shard: the set of 1/1 only
    if (rc < 0) {
        vet_pred_close(r);
        return -1;
    }
    while ((rc = vet_pred_next(r, &rec, err)) == 1) {
        int added = check_id(r, &rec, &ids, &at, err);
        if (added == 0 && vet_eval_add_pred(e, &rec, err) < 0) {
            char where[600];
            const char *unit = r->format == VET_PRED_STREAM ? "record" : "line";
            added = vet_err_prefix(err, "%s", vet_pred_where(where, sizeof where, r->name, unit, rec.at));
            if (r->format != VET_PRED_STREAM) vet_err_at_line(err, rec.at);
        }
        if (added == 0 && ranks)
            added = vet_ranks_add(ranks, &rec, r->name, r->format == VET_PRED_STREAM ? "record" : "line", err);
        vet_pred_clear(&rec);
        if (added < 0) break;
    }
    vet_strtab_free(&ids);
    free(at);
    if (rc == 0 && sharded) rc = vet_shard_check_count(&sh, name, r->records, err);
    vet_pred_close(r);
    if (rc != 0) return -1;  // -1 from the reader, or 1: the sample could not be added
    if (vet_eval_n(e) == 0)
        return vet_errf(err, "%s: no predictions (n = 0): nothing to evaluate", !path || strcmp(path, "-") == 0 ? "<stdin>" : path);
    return 0;
}

// One gold set of a packed record ("codes"[i], an array of label strings) added to e.
static int add_packed_set(vet_eval *e, const msgpack_object *set, const char *path, unsigned long long k, uint32_t i,
                          vet_err *err) {
    uint32_t n = set->via.array.size, j = 0;
    char **v = calloc(n ? n : 1, sizeof *v);
    if (!v) return vet_err_nomem(err, "out of memory");
    int rc = 0;
    for (; j < n && rc == 0; j++) {
        const msgpack_object *s = &set->via.array.ptr[j];
        if (s->type != MSGPACK_OBJECT_STR || !(v[j] = strndup(s->via.str.ptr, s->via.str.size)))
            rc = vet_errf(err, "%s: record %llu: \"codes\"[%u][%u] is not a string", path, k, i, j);
    }
    if (rc == 0) rc = vet_eval_add(e, NULL, v, n, NULL, 0, err);
    vet_labels_free_list(v, j);
    return rc;
}

// 1 when sample i of a packed row (or, i = -1, a tokens record) is a species-swapped copy
// (`copy_of`, docs/formats.md): the baseline counts notes, and a copy repeats its note's labels.
static int is_copy(const msgpack_object *rec, long i) {
    const msgpack_object *of = mp_get(rec, "copy_of");
    if (!of) return 0;
    if (i < 0) return of->type == MSGPACK_OBJECT_STR;
    return of->type == MSGPACK_OBJECT_ARRAY && (uint32_t)i < of->via.array.size &&
           of->via.array.ptr[i].type == MSGPACK_OBJECT_STR;
}

// A packed record: "codes" holds one gold set per sample of the row.
static int add_packed_sets(vet_eval *e, const msgpack_object *rec, const char *path, unsigned long long k, vet_err *err) {
    const msgpack_object *codes = mp_get(rec, "codes");
    if (!codes || codes->type != MSGPACK_OBJECT_ARRAY)
        return vet_errf(err, "%s: record %llu: field \"codes\" is missing or not an array", path, k);
    for (uint32_t i = 0; i < codes->via.array.size; i++) {
        if (is_copy(rec, i)) continue;
        const msgpack_object *set = &codes->via.array.ptr[i];
        if (set->type != MSGPACK_OBJECT_ARRAY) return vet_errf(err, "%s: record %llu: \"codes\"[%u] is not an array", path, k, i);
        if (add_packed_set(e, set, path, k, i, err) < 0) return -1;
    }
    return 0;
}

// A tokens or predictions record: one gold set under key.
static int add_record_set(vet_eval *e, const msgpack_object *rec, const char *key, const char *path, unsigned long long k,
                          vet_err *err) {
    char **v;
    size_t n;
    if (mp_get_str_array(rec, key, &v, &n, err) < 0) return vet_err_prefix(err, "%s: record %llu", path, k);
    int rc = vet_eval_add(e, NULL, v, n, NULL, 0, err);
    vet_labels_free_list(v, n);
    return rc;
}

int vet_eval_read_gold_sets(vet_eval *e, const char *path, vet_err *err) {
    vet_reader *r = vet_reader_open(path, NULL, err);
    if (!r) return -1;
    const char *kind = vet_reader_kind(r);
    int packed = strcmp(kind, "packed") == 0, preds = strcmp(kind, "predictions") == 0;
    int rc = 0;
    if (!packed && !preds && strcmp(kind, "tokens") != 0)
        rc = vet_errf(err, "%s: --baseline-from wants a tokens, packed or predictions stream, not '%s'", path, kind);
    const msgpack_object *rec;
    while (rc == 0 && (rc = vet_reader_next(r, &rec, err)) == 1) {
        unsigned long long k = vet_reader_records(r);
        if (packed) rc = add_packed_sets(e, rec, path, k, err);
        else rc = is_copy(rec, -1) ? 0 : add_record_set(e, rec, preds ? "gold" : "codes", path, k, err);
    }
    vet_reader_close(r);
    if (rc < 0) return -1;
    if (vet_eval_n(e) == 0) return vet_errf(err, "%s: no samples: no majority label", path);
    return 0;
}
