// pack_rows.h — one output slot of a vet-pack job: its samples planned into rows (first-fit
// decreasing, pack.h, or one sample per row), the rows put in a seeded random order, and the
// whole `packed` stream written (docs/formats.md).
#ifndef VET_PACK_ROWS_H
#define VET_PACK_ROWS_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "data/pack.h"
#include "data/pack_input.h"
#include "io/stream.h"

// A cross-validation fold (--fold I/K), as each output's header `fold` records it (docs/formats.md):
// what vet-eval checks a set of folds' predictions with.
typedef struct {
    int i, k;
    uint64_t seed;                     // the folds' seed (--seed)
    int64_t input_notes;               // the notes packed into any split (copies not counted)
    int64_t notes[VET_PACK_SLOTS];     // the notes packed into each slot (copies not counted)
} vet_pack_fold;

// The rows' settings; every output header records them.
typedef struct {
    int32_t seq_len;        // tokens per row at most
    int packed;             // 0: one sample per row (--no-pack)
    vet_loss_on loss_on;
    uint64_t seed;          // the row order of slot k is seeded with vet_rng_hash(seed, 1000 + k)
    const vet_pack_fold *fold;  // NULL: no folds (no header key `fold`)
} vet_pack_row_opts;

// A slot's numbers, the summary's per-split map.
typedef struct {
    int64_t samples;        // in the slot (dropped copies not counted)
    int64_t rejected, truncated, packed;
    int64_t rows, tokens, loss_tokens;
} vet_pack_slot_stats;

// Adds b's counts into a.
void vet_pack_stats_add(vet_pack_slot_stats *a, const vet_pack_slot_stats *b);

// A slot's rows: row r holds the samples idx[order[begin[r] .. begin[r+1])], in input order.
typedef struct {
    int32_t *idx;           // (n) the slot's packed samples (indices into the sample table)
    size_t n, n_rows;
    int32_t *order;         // (n) positions in idx, row by row
    int64_t *begin;         // (n_rows + 1)
    int32_t *perm;          // (n_rows) the order the rows are written in
} vet_pack_slot_plan;

// Plans slot `slot`: the samples in it (not dropped; rejected ones only counted) into rows and
// fills st. On failure p holds nothing to free.
int vet_pack_plan_slot(const vet_pack_samples *S, int slot, const vet_pack_row_opts *ro, vet_pack_slot_plan *p,
                       vet_pack_slot_stats *st, vet_err *err);
void vet_pack_slot_plan_free(vet_pack_slot_plan *p);

// Writes a slot's header (the input's tokenizer and template, the slot's name, the row
// settings, the summary) and then its rows, in the plan's order.
int vet_pack_write_slot(vet_writer *w, const vet_pack_input *in, int slot, const vet_pack_row_opts *ro,
                        const msgpack_object *summary, const vet_pack_samples *S, const vet_pack_slot_plan *p,
                        vet_err *err);

#endif
