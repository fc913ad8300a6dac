// folds.h — the test splits of one k-fold cross-validation pooled into one set of predictions.
//
// `vet-pack --fold I/K` makes fold I the test split; a model trained on the other folds decodes
// it (vet-generate copies the header's `fold`). Over I = 0 .. K-1 every note of the input is in
// exactly one test split, so the K streams together score each note once, by a model that never
// saw it: an estimate over the whole input instead of one tenth of it, with a bootstrap interval
// to match.
//
// A set is whole when its streams are the test splits of folds 0/K .. K-1/K, each once, all of
// one K, one seed and one input (input_notes), each holding its fold's notes, and the folds'
// notes add up to the input's. Anything else is refused (VET_E_INPUT) naming the fold and the
// file: "FILE: fold 2/5 is missing", "B: fold 1/5 appears twice (A and B)", another K, seed or
// input, a val or train split, a stream that is no fold among folds. The pooled notes are scored
// in fold order (fold 0's records first), each id once.
#ifndef VET_FOLDS_H
#define VET_FOLDS_H

#include <stdint.h>

#include "base/err.h"
#include "eval/metrics.h"
#include "eval/predictions.h"

struct vet_ranks;  // eval/ranking.h

// Checks that f[0..n) (the folds of paths[0..n), every one a fold) are a whole set. 0 or -1.
int vet_folds_check(const vet_fold *f, const char *const *paths, int n, vet_err *err);

// 0 when a stream of fold f (at path) held its fold's notes, records of them; else -1 with err
// naming the fold (part of a fold, or a stream edited).
int vet_fold_check_count(const vet_fold *f, const char *path, int64_t records, vet_err *err);

// The predictions of the n >= 2 streams at paths, whose headers' folds f[i] (k 0: none; as
// vet_shards_headers reads them, eval/shards.h) must make a whole set
// (checked before any record is read), added to e in fold order and their rankings to ranks
// (NULL: not kept); *format_name "stream"; fold_notes[i] (n of them; NULL: not wanted) the notes
// of fold i, which are e's samples after those of folds 0 .. i-1.
int vet_eval_read_folds(vet_eval *e, struct vet_ranks *ranks, const char *const *paths, const vet_fold *f, int n,
                        int format, const char **format_name, int64_t *fold_notes, vet_err *err);

#endif
