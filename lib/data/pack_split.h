// pack_split.h — the split of a vet-pack job, and the rules that keep it free of leaks.
//
//   1. Only originals are split. Identical notes (after vet_split_normalize) form one group and
//      a group goes whole to one split (--group-by note), optionally stratified by label (the
//      sorted, de-duplicated codes); see split.h for the assignment itself.
//   2. A copy (a record with copy_of, from vet-tokenize --species-swap) follows its original:
//      it is linked to the first original with that id and takes its split. Copies are training
//      data only: those that land in val or test are dropped (counted), so held-out splits hold
//      real notes only. With --val-copies the val split's copies go to VET_PACK_VAL_COPIES
//      instead (for a refit on train + val); test copies are still dropped.
//   3. A kept copy may read like a held-out note (a goat note's copy as "Sheep. ..." while that
//      sheep note is in test). Its label is the training note's, so nothing held out is learned,
//      but the summary counts such copies (copies_like_heldout).
// Because copies take no part in the assignment, the originals' split is the same with or
// without them.
//
// Cross-validation (--fold I/K): the originals' groups are first dealt into K folds by the same
// assignment with K equal shares (seeded by seed, so every I sees the same folds); fold I is the
// test split, and the groups of the other folds are split into train and val by share[0] and
// share[1] (share[2] is 0), seeded by seed + 1 + I. Over I = 0 .. K-1 every original is in test
// exactly once, and a note's group never straddles two folds.
//
// When the samples come already split (--train-in/--val-in/--test-in) or all go to one stream
// (-o), nothing is assigned: each sample keeps its slot, a copy need not find its original, and
// rules 2 and 3 apply to the slots as they are. The group counts are made in every mode.
#ifndef VET_PACK_SPLIT_H
#define VET_PACK_SPLIT_H

#include <stdint.h>

#include "base/err.h"
#include "data/pack_input.h"

typedef struct {
    int assign;             // 1: split the originals here; 0: keep every sample's slot
    int group_by_note;      // keep identical normalized notes in one split (else split by sample)
    int stratify;           // keep each label's share in every split
    double share[3];        // train/val/test, summing to 1 (with folds: train/val/0)
    int fold_i, fold_k;     // --fold I/K (fold_k 0: no folds)
    uint64_t seed;
    int divert_val_copies;  // --val-copies: val copies to VET_PACK_VAL_COPIES, not dropped
    const char *path;       // the input, for the message about a copy without its original
} vet_pack_split_opts;

// Counts over the originals' normalized notes (copies are not counted).
typedef struct {
    int64_t groups;         // distinct notes
    int64_t dup_groups;     // notes that occur more than once
    int64_t dup_samples;    // samples whose note occurs more than once
    int64_t leaked_groups;  // notes found in more than one slot (0 for a split made here by note)
} vet_pack_group_stats;

typedef struct {
    int64_t in;             // copies read
    int64_t dropped;        // copies in val or test, not packed
    int64_t like_heldout;   // kept copies whose note is a held-out original's
} vet_pack_copy_stats;

// Links copies to originals, assigns splits (o->assign), counts groups, drops or diverts the
// held-out copies (sets each sample's split and dropped). Frees every sample's key. Fails on a
// copy without its original when assigning (VET_E_INPUT) or when out of memory.
int vet_pack_split(vet_pack_samples *S, const vet_pack_split_opts *o, vet_pack_group_stats *groups,
                   vet_pack_copy_stats *copies, vet_err *err);

#endif
