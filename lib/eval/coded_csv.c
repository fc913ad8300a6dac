// coded_csv.c — a predictions stream as a CSV table for people (coded_csv.h).
#include <stdlib.h>
#include <string.h>

#include "eval/coded_csv.h"
#include "io/csv_write.h"

void vet_coded_csv_header(FILE *f) { fputs("id,species,pred,term,p,refer,gold,ranked,text\n", f); }

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

static void field_num(field *b, double x) {
    char num[32];
    snprintf(num, sizeof num, "%.6g", x);
    field_str(b, num);
}

static const char *field_text(field *b) {
    if (!b->s) field_put(b, "", 0);
    return b->failed ? NULL : b->s;
}

static void field_reset(field *b) {
    b->len = 0;
    if (b->s) b->s[0] = '\0';
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
    field b = {0};
    int rc = 0;
    // id, species
    vet_csv_write_field(f, rec->id, 0);
    vet_csv_write_field(f, rec->species, 0);
    // pred, term
    field_labels(&b, rec->pred, rec->npred);
    const char *s = field_text(&b);
    if (!s) goto nomem;
    vet_csv_write_field(f, s, 0);
    field_reset(&b);
    for (size_t i = 0; o->codes && i < rec->npred; i++) {
        const char *term = vet_labels_term(o->codes, rec->pred[i]);
        if (i) field_put(&b, ";", 1);
        field_str(&b, term ? term : "");
    }
    if (!(s = field_text(&b))) goto nomem;
    vet_csv_write_field(f, s, 0);
    // p, refer
    field_reset(&b);
    if (rec->nranked) field_num(&b, rec->ranked_p[0]);
    if (!(s = field_text(&b))) goto nomem;
    vet_csv_write_field(f, s, 0);
    vet_csv_write_field(f, o->refer_below < 0 ? "" : rec->ranked_p[0] < o->refer_below ? "yes" : "no", 0);
    // gold
    field_reset(&b);
    field_labels(&b, rec->gold, rec->ngold);
    if (!(s = field_text(&b))) goto nomem;
    vet_csv_write_field(f, s, 0);
    // ranked
    field_reset(&b);
    for (size_t i = 0; i < rec->nranked; i++) {
        if (i) field_put(&b, ";", 1);
        field_str(&b, rec->ranked[i]);
        field_put(&b, "=", 1);
        field_num(&b, rec->ranked_p[i]);
    }
    if (!(s = field_text(&b))) goto nomem;
    vet_csv_write_field(f, s, 0);
    // text
    vet_csv_write_field(f, rec->text, 1);
    goto done;
nomem:
    rc = vet_err_nomem(err, "%s: record %ld: out of memory", name, rec->at);
done:
    free(b.s);
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
