// folds.c — see folds.h: the set's checks (from the headers alone), then the pool: each fold's
// records in fold order, every id once.
#include "eval/folds.h"

#include <stdlib.h>
#include <string.h>

#include "base/strtab.h"
#include "eval/ranking.h"

// The first fold number of 0..K-1 that no stream holds, or -1 when each is held. With n streams
// and no duplicate, some i <= n is missing when K > n: at most n + 1 numbers to try.
static int first_missing(const vet_fold *f, int n) {
    for (int i = 0; i < f[0].k && i <= n; i++) {
        int held = 0;
        for (int j = 0; j < n && !held; j++) held = f[j].i == i;
        if (!held) return i;
    }
    return -1;
}

// One cross-validation: f[j] against f[0] (K, seed, input), as a message naming both.
static int same_run(const vet_fold *f, const char *const *paths, int j, vet_err *err) {
    const vet_fold *a = &f[0], *b = &f[j];
    if (b->k != a->k)
        return vet_errf(err, "%s: fold %d/%d, but %s is fold %d/%d: folds of different cross-validations (give the "
                        "%d test splits of one vet-pack --fold I/%d run)", paths[j], b->i, b->k, paths[0], a->i, a->k,
                        a->k, a->k);
    if (b->seed != a->seed)
        return vet_errf(err, "%s: fold %d/%d dealt with --seed %lld, but %s with --seed %lld: folds of different "
                        "cross-validations (the same seed deals the same folds)", paths[j], b->i, b->k,
                        (long long)b->seed, paths[0], (long long)a->seed);
    if (b->input_notes != a->input_notes)
        return vet_errf(err, "%s: fold %d/%d of an input of %lld notes, but %s of one of %lld notes: folds of "
                        "different inputs", paths[j], b->i, b->k, (long long)b->input_notes, paths[0],
                        (long long)a->input_notes);
    return 0;
}

int vet_folds_check(const vet_fold *f, const char *const *paths, int n, vet_err *err) {
    int64_t notes = 0;
    for (int j = 0; j < n; j++) {
        // A val or train split of one fold shares notes with the other folds' test splits: pooled,
        // some notes would count twice and others not at all.
        if (strcmp(f[j].split, "test") != 0)
            return vet_errf(err, "%s: the %s split of fold %d/%d: pool the folds' test splits (each note is in "
                            "exactly one of them)", paths[j], f[j].split, f[j].i, f[j].k);
        // A fold of no note has no accuracy: its 0 of 0 would pull the folds' mean and spread.
        if (f[j].notes == 0)
            return vet_errf(err, "%s: fold %d/%d's test split holds no note: a cross-validation of more folds "
                            "than its notes fill (deal fewer folds)", paths[j], f[j].i, f[j].k);
        if (j > 0 && same_run(f, paths, j, err)) return -1;
        for (int i = 0; i < j; i++)
            if (f[i].i == f[j].i)
                return vet_errf(err, "%s: fold %d/%d appears twice (%s and %s)", paths[j], f[j].i, f[j].k, paths[i],
                                paths[j]);
        // Each fold holds at most the input's notes (vet_pred_fold), and so may the sum: added
        // unchecked, headers claiming 2^62 notes each would overflow it.
        if (f[j].notes > f[0].input_notes - notes)
            return vet_errf(err, "%s and %d more folds: the test splits hold more notes than their input packed "
                            "(%lld): folds of different vet-pack settings, or headers edited?", paths[0], n - 1,
                            (long long)f[0].input_notes);
        notes += f[j].notes;
    }
    int i = first_missing(f, n);
    if (i >= 0)
        return vet_errf(err, "%s: fold %d/%d is missing (%d of %d folds given: add the predictions of the test split "
                        "of vet-pack --fold %d/%d)", paths[0], i, f[0].k, n, f[0].k, i, f[0].k);
    if (notes != f[0].input_notes)
        return vet_errf(err, "%s and %d more folds: the test splits hold %lld notes, but their input packed %lld: "
                        "folds of different vet-pack settings (--seq-len, --truncate)?", paths[0], n - 1,
                        (long long)notes, (long long)f[0].input_notes);
    return 0;
}

// Every stream's header must name a fold (f[i].k > 0). -1 naming the first that does not.
static int every_one_a_fold(const vet_fold *f, const char *const *paths, int n, vet_err *err) {
    int named = -1, plain = -1;  // the first stream that names a fold, the first that does not
    for (int i = 0; i < n; i++) {
        if (f[i].k > 0 && named < 0) named = i;
        if (f[i].k == 0 && plain < 0) plain = i;
    }
    if (plain < 0) return 0;
    return vet_errf(err, "%s: not a fold (its header names none)%s%s%s: give the test splits' predictions of one "
                    "vet-pack --fold I/K run, or one stream", paths[plain], named >= 0 ? ", but " : "",
                    named >= 0 ? paths[named] : "", named >= 0 ? " is one" : "");
}

// The records of fold f (at path) into e and ranks, each id new to ids (where names the stream
// that brought each id first, by id number). The stream must hold its fold's notes.
static int add_fold(vet_eval *e, vet_ranks *ranks, const char *path, int format, const vet_fold *f, vet_strtab *ids,
                    const char ***where, int64_t *cap, vet_err *err) {
    vet_pred_reader *r = vet_pred_open(path, format, err);
    if (!r) return -1;
    vet_pred rec;
    int64_t records = 0;
    int rc;
    while ((rc = vet_pred_next(r, &rec, err)) == 1) {
        records++;
        size_t before = ids->n;
        long id = vet_strtab_intern(ids, rec.id);
        int added = 0;
        if (id < 0) {
            added = vet_err_nomem(err, "out of memory");
        } else if (ids->n == before) {
            added = vet_errf(err, "%s: record %lld: id '%s' is also in %s: each note must be scored once (folds of "
                             "one cross-validation share no note)", path, (long long)records, rec.id, (*where)[id]);
        } else {
            if (id >= *cap) {
                int64_t c = *cap ? *cap * 2 : 1024;
                const char **w = realloc(*where, (size_t)c * sizeof *w);
                if (!w) added = vet_err_nomem(err, "out of memory");
                else *where = w, *cap = c;
            }
            if (added == 0) (*where)[id] = path;
            if (added == 0 && vet_eval_add_pred(e, &rec, err) < 0)
                added = vet_err_prefix(err, "%s: record %lld", path, (long long)records);
            if (added == 0 && ranks) added = vet_ranks_add(ranks, &rec, path, "record", err);
        }
        vet_pred_clear(&rec);
        if (added < 0) {
            rc = -1;
            break;
        }
    }
    vet_pred_close(r);
    if (rc < 0) return -1;
    return vet_fold_check_count(f, path, records, err);
}

int vet_fold_check_count(const vet_fold *f, const char *path, int64_t records, vet_err *err) {
    if (records == f->notes) return 0;
    return vet_errf(err, "%s: fold %d/%d's test split holds %lld notes, but the stream has %lld records: "
                    "predictions of part of the fold (vet-generate --shard: give its shards to vet-eval alone "
                    "first), or a stream edited?", path, f->i, f->k, (long long)f->notes, (long long)records);
}

int vet_eval_read_folds(vet_eval *e, vet_ranks *ranks, const char *const *paths, const vet_fold *f, int n,
                        int format, const char **format_name, int64_t *fold_notes, vet_err *err) {
    *format_name = "stream";
    int *by_i = calloc((size_t)n, sizeof *by_i);  // the stream of fold i
    if (!by_i) return vet_err_nomem(err, "out of memory");
    int rc = every_one_a_fold(f, paths, n, err);
    if (rc == 0) rc = vet_folds_check(f, paths, n, err);
    for (int j = 0; rc == 0 && j < n; j++) by_i[f[j].i] = j;
    for (int i = 0; rc == 0 && fold_notes && i < n; i++) fold_notes[i] = f[by_i[i]].notes;
    vet_strtab ids = {0};
    const char **where = NULL;
    int64_t cap = 0;
    for (int i = 0; rc == 0 && i < n; i++)
        rc = add_fold(e, ranks, paths[by_i[i]], format, &f[by_i[i]], &ids, &where, &cap, err);
    if (rc == 0 && vet_eval_n(e) == 0) rc = vet_errf(err, "%s: no predictions (n = 0): nothing to evaluate", paths[0]);
    vet_strtab_free(&ids);
    free(where), free(by_i);
    return rc < 0 ? -1 : 0;
}
