// pred_set.c — see pred_set.h.
#include "eval/pred_set.h"

#include <stdlib.h>

#include "eval/folds.h"
#include "eval/predictions.h"
#include "eval/shards.h"

const char *vet_pred_set_noun(vet_pred_set_kind kind) { return kind == VET_PRED_SET_FOLDS ? "folds" : "shards"; }

// Whether any of the n streams names a shard (1), else a fold (2), else neither (0); -1 on error.
static int what_the_headers_name(const char *const *paths, int n, int format, vet_err *err) {
    vet_shard *s = calloc((size_t)n, sizeof *s);
    vet_fold *f = calloc((size_t)n, sizeof *f);
    int first, plain, rc = s && f ? 0 : vet_err_nomem(err, "out of memory");
    if (rc == 0) rc = vet_shards_headers(paths, n, format, s, &first, &plain, err);
    if (rc == 0 && first >= 0) rc = 1;
    if (rc == 0) rc = vet_folds_headers(paths, n, format, f, &first, &plain, err);
    if (rc == 0 && first >= 0) rc = 2;
    free(s), free(f);
    return rc;
}

int vet_eval_read_set(vet_eval *e, struct vet_ranks *ranks, const char *const *paths, int n, int format,
                      const char **format_name, vet_pred_set_kind *kind, int64_t *fold_notes, vet_err *err) {
    int named = what_the_headers_name(paths, n, format, err);
    if (named < 0) return -1;
    *kind = named == 2 ? VET_PRED_SET_FOLDS : VET_PRED_SET_SHARDS;
    // Neither: the shards' reader refuses the set, naming the first stream that is no shard.
    return named == 2 ? vet_eval_read_folds(e, ranks, paths, n, format, format_name, fold_notes, err)
                      : vet_eval_read_shards(e, ranks, paths, n, format, format_name, err);
}
