// packer.h — the whole vet-pack job: token records into packed training rows, split into
// train/val/test without leakage.
//
//   tokens stream(s) ─▶ read every sample, fit it to seq_len (pack_input) ─▶ group, split, settle
//   the copies (pack_split) ─▶ per output slot: rows by first-fit decreasing, in a seeded order
//   (pack_rows) ─▶ the summary (pack_summary) ─▶ every output written, or none
//
// Nothing is written until all of the input has been read and checked; a failure while writing
// removes every output stream (vet_writer_abort). The same input, options and seed give the
// same bytes.
#ifndef VET_PACKER_H
#define VET_PACKER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "data/pack.h"
#include "data/pack_input.h"
#include "data/pack_rows.h"
#include "data/pack_split.h"

typedef struct {
    // Input: one stream to split here, or streams already split (then `input` is NULL).
    const char *input;                   // NULL: stdin
    const char *split_in[VET_SPLIT_N];   // --train-in, --val-in, --test-in
    // Output.
    const char *out_dir;                 // --out DIR: DIR/<split>.msgpack.zst for each split
    const char *out[VET_PACK_SLOTS];     // --train/--val/--test (win over out_dir), -o, --val-copies
    const char *summary_path;            // --summary FILE ("-": stdout), or NULL
    // Splitting.
    double share[3];                     // normalized (with folds: train/val/0)
    uint64_t seed;
    int fold_i, fold_k;                  // --fold I/K: test is fold I of K (fold_k 0: no folds)
    int group_by_note, stratify;
    // Rows.
    int32_t seq_len;
    int packed;
    vet_loss_on loss_on;
    vet_trunc trunc;
} vet_pack_opts;

// 80/10/10 by note, seed 1, rows of 512 tokens packed, loss on the response, over-long rejected.
vet_pack_opts vet_pack_defaults(void);

// Checks that the inputs and outputs named in o fit together (the checks vet_pack_run makes
// first): VET_E_USAGE with a message such as "the val split has no output: ...".
int vet_pack_check(const vet_pack_opts *o, vet_err *err);

typedef struct {
    int64_t samples_in;                   // records read (copies included)
    int used[VET_PACK_SLOTS];             // the slots written
    vet_pack_slot_stats slot[VET_PACK_SLOTS];
    vet_pack_slot_stats total;            // over the slots written
    vet_pack_group_stats groups;
    vet_pack_copy_stats copies;
    char **rejected_ids;                  // (n_rejected) input order; total.rejected of them
    size_t n_rejected;
} vet_pack_result;

// Runs the job. 0 with *res filled (free it with vet_pack_result_free), or -1 with err:
// VET_E_USAGE (see vet_pack_check), VET_E_INPUT (a bad or mismatched input, a copy without its
// original), VET_E_IO (an input that cannot be read, an output that cannot be written),
// VET_E_NOMEM. On failure *res holds nothing.
int vet_pack_run(const vet_pack_opts *o, vet_pack_result *res, vet_err *err);
void vet_pack_result_free(vet_pack_result *res);

#endif
