// bpe_merges.h — a byte-level BPE tokenizer's merges listed in rank order (for writing them out,
// as GGUF's tokenizer.ggml.merges). Kept apart from bpe.h: encoding never needs the list.
#ifndef VET_BPE_MERGES_H
#define VET_BPE_MERGES_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "data/bpe.h"

// The merges b applies, best (lowest rank) first, as pairs of ids: pairs[2i] and pairs[2i+1] are
// the left and right pieces of merge i (vet_bpe_id_to_piece spells them). A pair listed twice in
// the tokenizer.json counts once, at the rank it takes in encoding (the later one, as Hugging
// Face's map keeps). *pairs is malloc'd (NULL when there are none); 0, or -1 with err.
int vet_bpe_merge_list(const vet_bpe *b, int32_t **pairs, size_t *n, vet_err *err);

#endif
