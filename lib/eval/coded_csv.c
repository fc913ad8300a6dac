// coded_csv.c — a predictions stream as a CSV table for people (coded_csv.h).
#include <stdlib.h>
#include <string.h>

#include "eval/coded_csv.h"
#include "eval/folds.h"
#include "eval/shards.h"
#include "io/csv_write.h"

void vet_coded_csv_header(FILE *f) { fputs("id,species,pred,term,p,refer,gold,ranked,group,text\n", f); }

// A growing string for one field; a failed allocation leaves it marked failed and the row
// refused, not cut short.
typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} field;

static void field_put(field *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->s = p, b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void field_str(field *b, const char *s) { field_put(b, s, strlen(s)); }

// x in 6 significant digits, or as many more (up to 17, then exact) as keep it on its side of
// the referral threshold (below: < 0 when there is none): a p of 0.9499999 beside refer=yes at
// 0.95 reads 0.9499999, not 0.95.
static void field_num(field *b, double x, double below) {
    char num[32];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(num, sizeof num, "%.*g", prec, x);
        if (below < 0 || (strtod(num, NULL) < below) == (x < below)) break;
    }
    field_str(b, num);
}

static const char *field_text(field *b) {
    if (!b->s) field_put(b, "", 0);
    return b->failed ? NULL : b->s;
}

static void field_labels(field *b, char *const *labels, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (i) field_put(b, ";", 1);
        field_str(b, labels[i]);
    }
}

int vet_coded_csv_row(FILE *f, const vet_pred *rec, const vet_coded_csv_opts *o, const char *name, vet_err *err) {
    if (o->refer_below >= 0 && rec->nranked == 0)
        return vet_errf(err, "%s: record %ld (id %s): no \"ranked\" list, so no p to compare with the referral "
                        "threshold (rank the notes with vet-generate --rank K)", name, rec->at, rec->id);
    // Every field is made before the row is written, so that a failed allocation leaves no
    // half row behind.
    enum { PRED, TERM, P, GOLD, RANKED, NFIELDS };
    field b[NFIELDS] = {{0}};
    field_labels(&b[PRED], rec->pred, rec->npred);
    for (size_t i = 0; o->codes && i < rec->npred; i++) {
        const char *term = vet_labels_term(o->codes, rec->pred[i]);
        if (i) field_put(&b[TERM], ";", 1);
        field_str(&b[TERM], term ? term : "");
    }
    if (rec->nranked) field_num(&b[P], rec->ranked_p[0], o->refer_below);
    field_labels(&b[GOLD], rec->gold, rec->ngold);
    for (size_t i = 0; i < rec->nranked; i++) {
        if (i) field_put(&b[RANKED], ";", 1);
        field_str(&b[RANKED], rec->ranked[i]);
        field_put(&b[RANKED], "=", 1);
        field_num(&b[RANKED], rec->ranked_p[i], o->refer_below);
    }
    const char *text[NFIELDS];
    int ok = 1;
    for (int i = 0; i < NFIELDS; i++) ok &= (text[i] = field_text(&b[i])) != NULL;
    if (ok) {
        const char *refer = o->refer_below < 0 ? "" : rec->ranked_p[0] < o->refer_below ? "yes" : "no";
        const char *row[] = {rec->id, rec->species, text[PRED], text[TERM], text[P], refer, text[GOLD], text[RANKED],
                             rec->group ? rec->group : "", rec->text};
        size_t n = sizeof row / sizeof *row;
        for (size_t i = 0; i < n; i++) vet_csv_write_field(f, row[i], i == n - 1);
    }
    for (int i = 0; i < NFIELDS; i++) free(b[i].s);
    return ok ? 0 : vet_err_nomem(err, "%s: record %ld: out of memory", name, rec->at);
}

int vet_coded_csv_write_shards(FILE *f, const char *const *paths, const vet_shard *s, int n,
                               const vet_coded_csv_opts *o, int *header, uint64_t *rows, vet_err *err) {
    *rows = 0;
    vet_pred_reader **r = calloc((size_t)n, sizeof *r);  // by shard number
    const char **name = calloc((size_t)n, sizeof *name);
    int rc = r && name ? 0 : vet_err_nomem(err, "out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        name[s[i].k] = paths[i];
        if (!(r[s[i].k] = vet_pred_open(paths[i], VET_PRED_STREAM, err))) rc = -1;
    }
    if (rc == 0 && *header) vet_coded_csv_header(f), *header = 0;
    vet_pred rec;
    for (int64_t g = 0; rc == 0 && g < s[0].input_notes; g++) {
        int k = (int)(g % n);
        int got = vet_pred_next(r[k], &rec, err);
        if (got < 0) rc = -1;
        else if (got == 0)  // shard k ended early: it holds g / n records
            rc = vet_shard_check_count(&(vet_shard){.k = k, .n = n, .input_notes = s[0].input_notes}, name[k],
                                       (uint64_t)(g / n), err);
        if (got <= 0) break;
        rc = vet_coded_csv_row(f, &rec, o, name[k], err);
        vet_pred_clear(&rec);
        if (rc == 0) ++*rows;
    }
    // Every shard ended where its share does: its trailer read and verified, no record more.
    for (int k = 0; rc == 0 && k < n; k++) {
        vet_shard sk = {.k = k, .n = n, .input_notes = s[0].input_notes};
        uint64_t more = 0;
        int got;
        while ((got = vet_pred_next(r[k], &rec, err)) == 1) vet_pred_clear(&rec), more++;
        if (got < 0) rc = -1;
        else if (more) rc = vet_shard_check_count(&sk, name[k], (uint64_t)vet_shard_size(&sk) + more, err);
    }
    for (int k = 0; r && k < n; k++) vet_pred_close(r[k]);
    free(r), free(name);
    return rc < 0 ? -1 : 0;
}

// The n >= 2 streams as one table when every one is a test fold of one cross-validation (checked
// whole: the folds their headers name, s[i].fold, as vet_shards_headers read them), fold 0's rows
// first; 1 (nothing written) when some stream names no fold.
static int write_fold_set(FILE *f, const char *const *paths, const vet_shard *s, int n, const vet_coded_csv_opts *o,
                          int *header, uint64_t *rows, vet_err *err) {
    vet_fold *fo = calloc((size_t)n, sizeof *fo);
    int *by_i = calloc((size_t)n, sizeof *by_i);
    int rc = fo && by_i ? 0 : vet_err_nomem(err, "out of memory");
    for (int j = 0; rc == 0 && j < n; j++) {
        fo[j] = s[j].fold;
        if (fo[j].k == 0) rc = 1;
    }
    if (rc == 0) rc = vet_folds_check(fo, paths, n, err);
    for (int j = 0; rc == 0 && j < n; j++) by_i[fo[j].i] = j;
    for (int i = 0; rc == 0 && i < n; i++) {
        const vet_fold *fi = &fo[by_i[i]];
        uint64_t got = 0;
        rc = vet_coded_csv_write(f, paths[by_i[i]], o, header, &got, err);
        *rows += got;
        if (rc == 0) rc = vet_fold_check_count(fi, paths[by_i[i]], (int64_t)got, err);
    }
    free(fo), free(by_i);
    return rc;
}

int vet_coded_csv_write_shard_set(FILE *f, const char *const *paths, int n, const vet_coded_csv_opts *o,
                                  int *header, uint64_t *rows, vet_err *err) {
    *rows = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(paths[i], "-") == 0) return 1;
    vet_shard *s = calloc((size_t)n, sizeof *s);
    if (!s) return vet_err_nomem(err, "out of memory");
    int sharded, plain, rc = vet_shards_headers(paths, n, VET_PRED_STREAM, s, &sharded, &plain, err);
    if (rc == 0 && n >= 2 && sharded < 0) {
        rc = write_fold_set(f, paths, s, n, o, header, rows, err);
        free(s);
        return rc;
    }
    if (rc == 0 && (plain >= 0 || n < 2)) rc = 1;
    if (rc == 0) rc = vet_shards_check(s, paths, n, err);
    if (rc == 0) rc = vet_coded_csv_write_shards(f, paths, s, n, o, header, rows, err);
    free(s);
    return rc;
}

int vet_coded_csv_write(FILE *f, const char *path, const vet_coded_csv_opts *o, int *header, uint64_t *rows,
                        vet_err *err) {
    *rows = 0;
    vet_pred_reader *r = vet_pred_open(path, VET_PRED_STREAM, err);
    if (!r) return -1;
    if (*header) vet_coded_csv_header(f), *header = 0;
    const char *name = path && strcmp(path, "-") != 0 ? path : "<stdin>";
    vet_pred rec;
    int rc;
    while ((rc = vet_pred_next(r, &rec, err)) == 1) {
        rc = vet_coded_csv_row(f, &rec, o, name, err);
        vet_pred_clear(&rec);
        if (rc < 0) break;
        ++*rows;
    }
    vet_pred_close(r);
    return rc < 0 ? -1 : 0;
}
