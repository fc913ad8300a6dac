// pred_set.c — see pred_set.h.
#include "eval/pred_set.h"

#include <stdlib.h>

#include "eval/folds.h"
#include "eval/predictions.h"
#include "eval/shards.h"

const char *vet_pred_set_noun(vet_pred_set_kind kind) { return kind == VET_PRED_SET_FOLDS ? "folds" : "shards"; }

// Whether any of the n headers names a shard (then the set is one of shards), else a fold.
static vet_pred_set_kind kind_of(const vet_shard *s, int n) {
    int folds = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].n > 0) return VET_PRED_SET_SHARDS;
        folds |= s[i].fold.k > 0;
    }
    return folds ? VET_PRED_SET_FOLDS : VET_PRED_SET_SHARDS;
}

int vet_eval_read_set(vet_eval *e, struct vet_ranks *ranks, const char *const *paths, int n, int format,
                      const char **format_name, vet_pred_set_kind *kind, int64_t *fold_notes, vet_err *err) {
    // Every header is read once, here: its shard and its fold tell the set's kind and check it.
    vet_shard *s = calloc((size_t)n, sizeof *s);
    vet_fold *f = calloc((size_t)n, sizeof *f);
    int sharded, plain, rc = s && f ? 0 : vet_err_nomem(err, "out of memory");
    if (rc == 0) rc = vet_shards_headers(paths, n, format, s, &sharded, &plain, err);
    if (rc == 0) {
        *kind = kind_of(s, n);
        for (int i = 0; i < n; i++) f[i] = s[i].fold;
        // Neither: the shards' reader refuses the set, naming the first stream that is no shard.
        rc = *kind == VET_PRED_SET_FOLDS
                 ? vet_eval_read_folds(e, ranks, paths, f, n, format, format_name, fold_notes, err)
                 : vet_eval_read_shards(e, ranks, paths, s, n, format, format_name, err);
    }
    free(s), free(f);
    return rc < 0 ? -1 : 0;
}
