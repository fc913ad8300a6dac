// shards.c — see shards.h: the set's checks (from the headers alone), then the merge: every
// record into its place in the input (shard k's i-th record is note k + i N), then into the
// sample set in that order.
#include "eval/shards.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strtab.h"
#include "eval/ranking.h"

int64_t vet_shard_size(const vet_shard *s) {
    return s->input_notes > s->k ? (s->input_notes - 1 - s->k) / s->n + 1 : 0;
}

int vet_shard_check_count(const vet_shard *s, const char *path, uint64_t records, vet_err *err) {
    int64_t want = vet_shard_size(s);
    if ((int64_t)records == want) return 0;
    return vet_errf(err, "%s: shard %d/%d has %llu records, want %lld (its share of an input of %lld notes): a stream "
                    "edited, or a header not its own?", path, s->k, s->n, (unsigned long long)records, (long long)want,
                    (long long)s->input_notes);
}

// The first shard number of 0..N-1 that no stream holds, or -1 when each is held. With n
// streams and no duplicate, some k <= n is missing when N > n: at most n + 1 numbers to try.
static int first_missing(const vet_shard *s, int n) {
    int N = s[0].n;
    for (int k = 0; k < N && k <= n; k++) {
        int held = 0;
        for (int i = 0; i < n && !held; i++) held = s[i].k == k;
        if (!held) return k;
    }
    return -1;
}

// Whether two shards were cut from the same fold's split, or both from no fold.
static int same_fold(const vet_fold *a, const vet_fold *b) {
    return a->k == b->k && a->i == b->i && a->seed == b->seed && a->notes == b->notes &&
           a->input_notes == b->input_notes && strcmp(a->split, b->split) == 0;
}

// "the test split of fold 1/3" or "no fold", for the message about shards of two inputs.
static const char *fold_name(char *buf, size_t n, const vet_fold *f) {
    if (f->k == 0) snprintf(buf, n, "no fold");
    else snprintf(buf, n, "the %s split of fold %d/%d", f->split, f->i, f->k);
    return buf;
}

// Shards of two inputs of as many notes (two test splits, one input tokenized again) have other
// digests, and merged they would score notes of both as one run's. A stream of a vet-generate
// before the digest has none: a set where no shard has one is taken as before, but one digest
// beside none cannot be checked.
static int check_same_input(const vet_shard *s, const char *const *paths, int i, vet_err *err) {
    const char *a = s[0].input_digest, *b = s[i].input_digest;
    if (strcmp(a, b) == 0) return 0;
    if (!a[0] || !b[0]) {
        int with = a[0] ? 0 : i, without = a[0] ? i : 0;
        return vet_errf(err, "%s: shard %d/%d names its input's digest (%s), but %s (shard %d/%d) names none: shards "
                        "of one vet-generate --shard run either all carry it or none does (decode the shards "
                        "again with one vet-generate)", paths[with], s[with].k, s[with].n, s[with].input_digest,
                        paths[without], s[without].k, s[without].n);
    }
    return vet_errf(err, "%s: shard %d/%d of an input whose digest is %s, but %s is a shard of one whose digest is "
                    "%s: shards of different inputs of %lld notes each (other notes, another order or another "
                    "tokenizer: give the %d shards of one vet-generate --shard run on one input)", paths[i], s[i].k,
                    s[i].n, b, paths[0], a, (long long)s[0].input_notes, s[0].n);
}

int vet_shards_check(const vet_shard *s, const char *const *paths, int n, vet_err *err) {
    for (int i = 1; i < n; i++) {
        if (s[i].n != s[0].n)
            return vet_errf(err, "%s: shard %d/%d, but %s is shard %d/%d: shards of different splits (give the %d "
                            "shards of one run)", paths[i], s[i].k, s[i].n, paths[0], s[0].k, s[0].n, s[0].n);
        if (s[i].input_notes != s[0].input_notes)
            return vet_errf(err, "%s: shard %d/%d of an input of %lld notes, but %s is a shard of one of %lld notes: "
                            "shards of different inputs", paths[i], s[i].k, s[i].n, (long long)s[i].input_notes,
                            paths[0], (long long)s[0].input_notes);
        // Two folds' test splits can hold as many notes each: only their folds tell them apart,
        // and merged they would score half of one fold and half of the other.
        if (!same_fold(&s[i].fold, &s[0].fold)) {
            char a[64], b[64];
            return vet_errf(err, "%s: shard %d/%d of %s, but %s is a shard of %s: shards of different inputs "
                            "(give the %d shards of one vet-generate --shard run)", paths[i], s[i].k, s[i].n,
                            fold_name(b, sizeof b, &s[i].fold), paths[0], fold_name(a, sizeof a, &s[0].fold),
                            s[0].n);
        }
        if (check_same_input(s, paths, i, err)) return -1;
        for (int j = 0; j < i; j++)
            if (s[j].k == s[i].k)
                return vet_errf(err, "%s: shard %d/%d appears twice (%s and %s)", paths[i], s[i].k, s[i].n, paths[j],
                                paths[i]);
    }
    int k = first_missing(s, n);
    if (k >= 0)
        return vet_errf(err, "%s: shard %d/%d is missing (%d of %d shards given: add the stream of vet-generate "
                        "--shard %d/%d on the same input)", paths[0], k, s[0].n, n, s[0].n, k, s[0].n);
    return 0;
}

int vet_shards_headers(const char *const *paths, int n, int format, vet_shard *s, int *sharded, int *plain,
                       vet_err *err) {
    *sharded = *plain = -1;
    for (int i = 0; i < n; i++) {
        if (strcmp(paths[i], "-") == 0)
            return vet_err_kindf(err, VET_E_USAGE, "stdin ('-') cannot be one of several predictions files (each is "
                                 "read twice): give every shard or fold as a file");
        vet_pred_reader *r = vet_pred_open(paths[i], format, err);
        if (!r) return -1;
        int rc = vet_pred_shard(r, &s[i], err);
        vet_pred_close(r);
        if (rc < 0) return -1;
        if (rc == 1 && *sharded < 0) *sharded = i;
        if (rc == 0 && *plain < 0) *plain = i;
    }
    return 0;
}

// Every stream's header must name a shard. -1 naming the first that does not.
static int every_one_a_shard(const char *const *paths, int n, const vet_shard *s, vet_err *err) {
    int sharded = -1, plain = -1;  // the first stream that is a shard, the first that is not
    for (int i = 0; i < n; i++) {
        if (s[i].n > 0 && sharded < 0) sharded = i;
        if (s[i].n == 0 && plain < 0) plain = i;
    }
    if (plain < 0) return 0;
    if (sharded < 0)
        return vet_errf(err, "%s: not a shard (its header names none): vet-eval reads one predictions file, the "
                        "shards of one vet-generate --shard run, or the test folds of one cross-validation "
                        "(vet-pack --fold)", paths[plain]);
    return vet_errf(err, "%s: not a shard (its header names none), but %s is shard %d/%d: give the shards of one "
                    "vet-generate --shard run, or one unsharded stream", paths[plain], paths[sharded], s[sharded].k,
                    s[sharded].n);
}

// Shard s's records, as read, into *out (*count of them): kept in a list that grows with what
// the stream holds, not made for what its header claims (`input_notes` of 2^62 would ask for
// that many slots before a record was read). Records past its share are counted, not kept.
static int read_shard(const char *path, int format, const vet_shard *s, vet_pred **out, int64_t *count,
                      vet_err *err) {
    vet_pred_reader *r = vet_pred_open(path, format, err);
    if (!r) return -1;
    int64_t want = vet_shard_size(s), i = 0, cap = 0;
    vet_pred rec, *kept = NULL;
    int rc;
    while ((rc = vet_pred_next(r, &rec, err)) == 1) {
        if (i < want && i == cap) {
            int64_t c = cap ? 2 * cap : 256;
            vet_pred *p = realloc(kept, (size_t)c * sizeof *p);
            if (!p) {
                vet_pred_clear(&rec);
                rc = vet_err_nomem(err, "out of memory");
                break;
            }
            kept = p, cap = c;
        }
        if (i < want) {
            free(rec.text);  // not scored: what vet_eval_add and vet_ranks_add take is kept for the merge
            rec.text = NULL;
            kept[i] = rec;
        } else {
            vet_pred_clear(&rec);  // more than its shard holds: counted, for the message
        }
        i++;
    }
    vet_pred_close(r);
    *out = kept, *count = i < want ? i : want;
    return rc < 0 ? -1 : vet_shard_check_count(s, path, (uint64_t)i, err);
}

// The merged notes into e (and their rankings into ranks) in input order, each id once (a repeat
// names both streams): note g is record g / N of shard g % N (by_k[k] holds shard k's records).
static int add_merged(vet_eval *e, vet_ranks *ranks, vet_pred *const *by_k, int64_t total, const char *const *name_k,
                      int N, vet_err *err) {
    vet_strtab ids = {0};
    int64_t *first = malloc((size_t)(total ? total : 1) * sizeof *first);
    int rc = first ? 0 : vet_err_nomem(err, "out of memory");
    for (int64_t g = 0; rc == 0 && g < total; g++) {
        const vet_pred *p = &by_k[g % N][g / N];
        size_t before = ids.n;
        long id = vet_strtab_intern(&ids, p->id);
        if (id < 0) {
            rc = vet_err_nomem(err, "out of memory");
        } else if (ids.n == before) {
            int64_t f = first[id];
            rc = vet_errf(err, "%s: record %lld: id '%s' appears twice (first at %s record %lld): each note must be "
                          "scored once", name_k[g % N], (long long)(g / N + 1), p->id, name_k[f % N],
                          (long long)(f / N + 1));
        } else {
            first[id] = g;
            if (vet_eval_add_pred(e, p, err) < 0)
                rc = vet_err_prefix(err, "%s: record %lld", name_k[g % N], (long long)(g / N + 1));
            if (rc == 0 && ranks) rc = vet_ranks_add(ranks, p, name_k[g % N], "record", err);
        }
    }
    free(first);
    vet_strtab_free(&ids);
    return rc < 0 ? -1 : 0;
}

int vet_eval_read_shards(vet_eval *e, vet_ranks *ranks, const char *const *paths, const vet_shard *s, int n,
                         int format, const char **format_name, vet_err *err) {
    *format_name = "stream";
    const char **name_k = calloc((size_t)n, sizeof *name_k);
    vet_pred **by_k = calloc((size_t)n, sizeof *by_k);  // shard k's records
    int64_t *count = calloc((size_t)n, sizeof *count);
    if (!name_k || !by_k || !count) {
        free(name_k), free(by_k), free(count);
        return vet_err_nomem(err, "out of memory");
    }
    int rc = every_one_a_shard(paths, n, s, err);
    if (rc == 0) rc = vet_shards_check(s, paths, n, err);
    for (int i = 0; rc == 0 && i < n; i++) {
        int k = s[i].k;
        name_k[k] = paths[i];
        rc = read_shard(paths[i], format, &s[i], &by_k[k], &count[k], err);
    }
    // Every shard held its share: the input's notes are all there.
    if (rc == 0) rc = add_merged(e, ranks, by_k, s[0].input_notes, name_k, n, err);
    if (rc == 0 && vet_eval_n(e) == 0) rc = vet_errf(err, "%s: no predictions (n = 0): nothing to evaluate", paths[0]);
    for (int k = 0; k < n; k++) {
        for (int64_t i = 0; by_k[k] && i < count[k]; i++) vet_pred_clear(&by_k[k][i]);
        free(by_k[k]);
    }
    free(name_k), free(by_k), free(count);
    return rc < 0 ? -1 : 0;
}
