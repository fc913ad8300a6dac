// pred_set.c — see pred_set.h.
#include "eval/pred_set.h"

#include <string.h>

#include "eval/folds.h"
#include "eval/predictions.h"
#include "eval/shards.h"

const char *vet_pred_set_noun(vet_pred_set_kind kind) { return kind == VET_PRED_SET_FOLDS ? "folds" : "shards"; }

// Whether any of the n streams names a shard (1), else a fold (2), else neither (0); -1 on error.
static int what_the_headers_name(const char *const *paths, int n, int format, vet_err *err) {
    int any_fold = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(paths[i], "-") == 0)
            return vet_err_kindf(err, VET_E_USAGE, "stdin ('-') cannot be one of several predictions files (each is "
                                 "read twice): give every file by name");
        vet_pred_reader *r = vet_pred_open(paths[i], format, err);
        if (!r) return -1;
        vet_shard s;
        vet_fold f;
        int sharded = vet_pred_shard(r, &s, err), folded = sharded < 0 ? -1 : vet_pred_fold(r, &f, err);
        vet_pred_close(r);
        if (sharded < 0 || folded < 0) return -1;
        if (sharded) return 1;
        any_fold |= folded;
    }
    return any_fold ? 2 : 0;
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
