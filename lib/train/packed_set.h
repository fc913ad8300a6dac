// packed.h — a `packed` stream (vet-pack's rows) held in memory for training.
//
// Training revisits every row once per epoch in a new order, so the set is loaded whole; it is
// small (the DLO notes pack into ~200 rows of 512 tokens, under 1 MB).
#ifndef VET_PACKED_H
#define VET_PACKED_H

#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

#define VET_PACKED_MAX_FILES 64
// The largest vocabulary a header may claim (config.json's limit, lib/io/config.c).
#define VET_PACKED_MAX_VOCAB (1 << 24)

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
    // What the rows hold: sha256 over every row's tokens, targets and starts, in order (after
    // vet_packed_append, over the files' hashes in order). Recorded in checkpoints so that a
    // resume on other data of the same size is refused.
    char content_sha256[65];
    // Where each row came from, for messages: rows [files[i].first_row, files[i+1].first_row)
    // are records 1.. of files[i].path.
    int n_files;
    struct { char path[512]; int first_row; } files[VET_PACKED_MAX_FILES];
} vet_packed_set;

// Loads every row; checks each row (same lengths of tokens/targets, starts ascending from 0)
// and the header's tokenizer (a vocab_size from 1 to VET_PACKED_MAX_VOCAB when present, special
// ids -1 or inside it). The rows' ids are checked against the model: vet_packed_check_model.
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

// Checks every row against the model that will train on it, before the first step: token and
// target ids inside [0, vocab) (targets may be -1), and no sample longer than max_pos
// positions (config.json's max_position_embeddings; positions restart at each sample). The
// message names the file, the record and both numbers.
int vet_packed_check_model(const vet_packed_set *s, int vocab, int max_pos, vet_err *err);

#endif
