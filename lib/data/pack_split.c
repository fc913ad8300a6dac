// pack_split.c — see pack_split.h.
#include "data/pack_split.h"

#include <stdlib.h>
#include <string.h>

#include "base/strtab.h"
#include "data/split.h"

// The originals' sample indices, in input order, into *orig (m of them).
static int list_originals(const vet_pack_samples *S, int32_t **orig, size_t *m, vet_err *err) {
    *orig = malloc((S->n + 1) * sizeof **orig);
    if (!*orig) return vet_err_nomem(err, "out of memory");
    *m = 0;
    for (size_t i = 0; i < S->n; i++)
        if (!S->s[i].copy_of) (*orig)[(*m)++] = (int32_t)i;
    return 0;
}

// Sets each copy's original: the first original (in input order) whose id is its copy_of.
// With path set (the split is made here) a copy without its original is an error: the split is
// decided by originals, and a copy must go where its original goes.
static int link_copies(vet_pack_samples *S, const int32_t *orig, size_t m, const char *path, vet_err *err) {
    vet_strtab ids = {0};
    int32_t *first = malloc((m + 1) * sizeof *first);  // by id number: the first original's index
    int rc = 0;
    if (!first) rc = vet_err_nomem(err, "out of memory");
    for (size_t j = 0; j < m && rc == 0; j++) {
        size_t known = ids.n;
        long id = vet_strtab_intern(&ids, S->s[orig[j]].id);
        if (id < 0) rc = vet_err_nomem(err, "out of memory");
        else if ((size_t)id == known) first[id] = orig[j];
    }
    for (size_t i = 0; i < S->n && rc == 0; i++) {
        vet_pack_sample *x = &S->s[i];
        if (!x->copy_of) continue;
        long id = vet_strtab_find(&ids, x->copy_of);
        if (id >= 0) x->original = first[id];
        else if (path)
            rc = vet_errf(err, "%s: record id %s is a copy of %s, which is not in the stream (a copy is split with "
                          "its original: tokenize them together, or drop the copy)", path, x->id, x->copy_of);
    }
    free(first);
    vet_strtab_free(&ids);
    return rc;
}

// Numbers the distinct normalized notes of the samples idx[0..m) (samples 0..m when idx is
// NULL) into id_of. Returns the number of distinct notes, or -1.
static int64_t index_notes(const vet_pack_samples *S, const int32_t *idx, size_t m, int32_t *id_of, vet_err *err) {
    char **keys = malloc((m + 1) * sizeof *keys);
    if (!keys) return vet_err_nomem(err, "out of memory");
    for (size_t j = 0; j < m; j++) keys[j] = S->s[idx ? (size_t)idx[j] : j].key;
    int64_t n = vet_split_index_keys(keys, m, id_of, err);
    free(keys);
    return n;
}

// The stratum of each original: its label (sorted, de-duplicated codes) numbered. Returns the
// number of strata, or -1.
static int64_t index_labels(const vet_pack_samples *S, const int32_t *orig, size_t m, int32_t *stratum_of,
                            vet_err *err) {
    char **labels = calloc(m + 1, sizeof *labels);
    int64_t n = -1;
    if (!labels) return vet_err_nomem(err, "out of memory");
    size_t j = 0;
    for (; j < m; j++)
        if (!(labels[j] = vet_split_label(S->s[orig[j]].codes, S->s[orig[j]].n_codes))) break;
    if (j < m) vet_err_nomem(err, "out of memory");
    else n = vet_split_index_keys(labels, m, stratum_of, err);
    for (size_t k = 0; k < j; k++) free(labels[k]);
    free(labels);
    return n;
}

// Cross-validation (pack_split.h): m originals dealt into o->fold_k folds; fold o->fold_i is test,
// the others' groups split into train and val. A group emptied of samples by the first step weighs
// nothing in the second.
static int assign_fold(const int32_t *group_of, int64_t n_groups, const int32_t *stratum_of, int64_t n_strata,
                       size_t m, const vet_pack_split_opts *o, uint8_t *split_of, vet_err *err) {
    double equal[VET_SPLIT_MAX_BINS];
    for (int k = 0; k < o->fold_k; k++) equal[k] = 1.0 / o->fold_k;
    uint8_t *fold_of = malloc(m + 1);
    int32_t *rest_group = malloc((m + 1) * sizeof *rest_group), *rest_stratum = malloc((m + 1) * sizeof *rest_stratum);
    int rc = -1;
    if (!fold_of || !rest_group || !rest_stratum) {
        vet_err_nomem(err, "out of memory");
        goto done;
    }
    if (vet_split_assign_bins(group_of, (int32_t)n_groups, stratum_of, (int32_t)n_strata, m, o->fold_k, equal, o->seed,
                              fold_of, err) != 0)
        goto done;
    size_t r = 0;  // the originals outside fold I, in input order
    for (size_t j = 0; j < m; j++) {
        if (fold_of[j] == o->fold_i) continue;
        rest_group[r] = group_of[j];
        rest_stratum[r++] = stratum_of ? stratum_of[j] : 0;
    }
    uint8_t *rest_split = malloc(r + 1);
    if (!rest_split) {
        vet_err_nomem(err, "out of memory");
        goto done;
    }
    double train_val[3] = {o->share[0], o->share[1], 0};
    if (vet_split_assign(rest_group, (int32_t)n_groups, stratum_of ? rest_stratum : NULL, (int32_t)n_strata, r,
                         train_val, o->seed + 1 + (uint64_t)o->fold_i, rest_split, err) == 0) {
        r = 0;
        for (size_t j = 0; j < m; j++) split_of[j] = fold_of[j] == o->fold_i ? VET_SPLIT_TEST : rest_split[r++];
        rc = 0;
    }
    free(rest_split);
done:
    free(fold_of);
    free(rest_group);
    free(rest_stratum);
    return rc;
}

// Rule 1 and the first half of rule 2: the originals' groups (a note each, or one per sample)
// split by vet_split_assign; every copy then takes its original's split.
static int assign_splits(vet_pack_samples *S, const int32_t *orig, size_t m, const int32_t *note_of,
                         int64_t n_notes, const vet_pack_split_opts *o, vet_err *err) {
    int32_t *group_of = malloc((m + 1) * sizeof *group_of), *stratum_of = malloc((m + 1) * sizeof *stratum_of);
    uint8_t *split_of = malloc(m + 1);
    int rc = -1;
    if (!group_of || !stratum_of || !split_of) {
        vet_err_nomem(err, "out of memory");
        goto done;
    }
    for (size_t j = 0; j < m; j++) group_of[j] = o->group_by_note ? note_of[j] : (int32_t)j;
    int64_t n_groups = o->group_by_note ? n_notes : (int64_t)m, n_strata = 1;
    if (o->stratify && (n_strata = index_labels(S, orig, m, stratum_of, err)) < 0) goto done;
    if (o->fold_k > 0 ? assign_fold(group_of, n_groups, o->stratify ? stratum_of : NULL, n_strata, m, o, split_of,
                                    err) != 0
                      : vet_split_assign(group_of, (int32_t)n_groups, o->stratify ? stratum_of : NULL,
                                         (int32_t)n_strata, m, o->share, o->seed, split_of, err) != 0)
        goto done;
    for (size_t j = 0; j < m; j++) S->s[orig[j]].split = split_of[j];
    for (size_t i = 0; i < S->n; i++)
        if (S->s[i].copy_of) S->s[i].split = S->s[S->s[i].original].split;
    rc = 0;
done:
    free(group_of);
    free(stratum_of);
    free(split_of);
    return rc;
}

// Duplicate notes among the originals, and notes found in more than one slot.
static int count_groups(const vet_pack_samples *S, const int32_t *orig, size_t m, const int32_t *note_of,
                        int64_t n_notes, vet_pack_group_stats *g, vet_err *err) {
    int64_t *size = calloc((size_t)n_notes + 1, sizeof *size);
    uint8_t *seen_in = calloc((size_t)n_notes + 1, 1);  // a bit per slot
    if (!size || !seen_in) {
        free(size);
        free(seen_in);
        return vet_err_nomem(err, "out of memory");
    }
    for (size_t j = 0; j < m; j++) {
        size[note_of[j]]++;
        seen_in[note_of[j]] |= (uint8_t)(1u << S->s[orig[j]].split);
    }
    g->groups = n_notes;
    for (int64_t k = 0; k < n_notes; k++) {
        if (size[k] > 1) {
            g->dup_groups++;
            g->dup_samples += size[k];
        }
        uint8_t b = seen_in[k];
        if (b & (b - 1)) g->leaked_groups++;  // more than one bit: the note is in two slots
    }
    free(size);
    free(seen_in);
    return 0;
}

// Rules 2 and 3: held-out copies dropped (or the val ones diverted), and the kept copies that
// read like a held-out original counted.
static int settle_copies(vet_pack_samples *S, int divert_val_copies, vet_pack_copy_stats *c, vet_err *err) {
    int32_t *note_of = malloc((S->n + 1) * sizeof *note_of);
    if (!note_of) return vet_err_nomem(err, "out of memory");
    int64_t n_notes = index_notes(S, NULL, S->n, note_of, err);
    uint8_t *heldout = n_notes < 0 ? NULL : calloc((size_t)n_notes + 1, 1);  // per note: a held-out original
    if (!heldout) {
        free(note_of);
        return n_notes < 0 ? -1 : vet_err_nomem(err, "out of memory");
    }
    for (size_t i = 0; i < S->n; i++) {
        vet_pack_sample *x = &S->s[i];
        int held = x->split == VET_SPLIT_VAL || x->split == VET_SPLIT_TEST;
        if (x->copy_of && x->split == VET_SPLIT_VAL && divert_val_copies) x->split = VET_PACK_VAL_COPIES;
        else if (x->copy_of && held) x->dropped = 1, c->dropped++;
        if (!x->copy_of && held) heldout[note_of[i]] = 1;
    }
    for (size_t i = 0; i < S->n; i++)
        if (S->s[i].copy_of && !S->s[i].dropped && heldout[note_of[i]]) c->like_heldout++;
    free(heldout);
    free(note_of);
    return 0;
}

int vet_pack_split(vet_pack_samples *S, const vet_pack_split_opts *o, vet_pack_group_stats *groups,
                   vet_pack_copy_stats *copies, vet_err *err) {
    memset(groups, 0, sizeof *groups);
    memset(copies, 0, sizeof *copies);
    int32_t *orig = NULL, *note_of = NULL;
    size_t m = 0;
    int rc = -1;
    if (list_originals(S, &orig, &m, err) != 0) goto done;
    copies->in = (int64_t)(S->n - m);
    if (copies->in && link_copies(S, orig, m, o->assign ? o->path : NULL, err) != 0) goto done;
    if (!(note_of = malloc((m + 1) * sizeof *note_of))) {
        vet_err_nomem(err, "out of memory");
        goto done;
    }
    int64_t n_notes = index_notes(S, orig, m, note_of, err);
    if (n_notes < 0 || (o->assign && assign_splits(S, orig, m, note_of, n_notes, o, err) != 0) ||
        count_groups(S, orig, m, note_of, n_notes, groups, err) != 0 ||
        (copies->in && settle_copies(S, o->divert_val_copies, copies, err) != 0))
        goto done;
    rc = 0;
done:
    for (size_t i = 0; i < S->n; i++) {  // the keys have served: the split is made
        free(S->s[i].key);
        S->s[i].key = NULL;
    }
    free(orig);
    free(note_of);
    return rc;
}
