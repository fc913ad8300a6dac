// packed.h — a `packed` stream (vet-pack's rows) held in memory for training.
//
// Training revisits every row once per epoch in a new order, so the set is loaded whole; it is
// small (the DLO notes pack into ~200 rows of 512 tokens, under 1 MB).
#ifndef VET_PACKED_H
#define VET_PACKED_H

#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

typedef struct {
    int n_rows;
    vet_row *rows;           // rows[i].tokens etc. point into the arrays below
    int32_t **tokens, **targets, **starts;
    long n_tokens;           // real tokens over all rows
    long n_targets;          // positions that carry loss
    int max_len;             // the longest row
    char tokenizer_sha256[65];  // from the stream header ("" when absent)
    char tokenizer_kind[16];    // "spm" or "bpe" (a header without the field: "spm")
    int vocab_size;          // tokenizer vocab from the header (0 when absent)
    int bos_id, eos_id, pad_id, unk_id;  // tokenizer special ids from the header (-1 when absent)
    int seq_len;             // header seq_len (0 when absent)
    char path[512];
} vet_packed_set;

// Loads every row; checks each row (same lengths of tokens/targets, starts ascending from 0).
// A stream with no rows loads as an empty set (n_rows 0): whether that is an error is the
// caller's call (vet-train refuses an empty training set, not one empty file among several).
int vet_packed_load(vet_packed_set *s, const char *path, vet_err *err);
void vet_packed_free(vet_packed_set *s);

// Moves every row of src to the end of dst (src is left empty and freed), so that several
// packed files train as one set (vet-train --train A --train B: for example a final model
// refit on the train and val splits). Refused, with both paths named, when the two were made
// with different tokenizers (sha256, vocabulary or special ids). Rows of different lengths
// mix freely (a batch pads to its longest row).
int vet_packed_append(vet_packed_set *dst, vet_packed_set *src, vet_err *err);

#endif
