// pred_set.h — several predictions files read as one, told apart by their headers: the shards of
// one vet-generate --shard run (eval/shards.h: merged back into the input's order) or the test
// folds of one cross-validation (eval/folds.h: pooled). A set of shards of one fold's test split
// is a set of shards.
#ifndef VET_PRED_SET_H
#define VET_PRED_SET_H

#include <stdint.h>

#include "base/err.h"
#include "eval/metrics.h"

struct vet_ranks;  // eval/ranking.h

typedef enum { VET_PRED_SET_SHARDS = 0, VET_PRED_SET_FOLDS = 1 } vet_pred_set_kind;

// "shards" or "folds": how a set is named ("A and 4 more folds").
const char *vet_pred_set_noun(vet_pred_set_kind kind);

// The n >= 2 predictions files at paths as one set into e (and ranks, NULL: not kept), its kind
// into *kind: shards when any stream names a shard, else folds when any names a fold (then each
// must), else refused (VET_E_INPUT, naming the first file: several files are one run's shards or
// one cross-validation's folds). None may be stdin (VET_E_USAGE). For folds, fold_notes[i] (n of
// them; NULL: not wanted) is fold i's share of e's samples, in order (eval/folds.h).
int vet_eval_read_set(vet_eval *e, struct vet_ranks *ranks, const char *const *paths, int n, int format,
                      const char **format_name, vet_pred_set_kind *kind, int64_t *fold_notes, vet_err *err);

#endif
