// pack.h — whole samples into rows of at most seq_len tokens, and the loss mask of a sample
// (vet-pack; the row record is `packed` in docs/formats.md).
//
// A sample is its prompt ids (BOS first) followed by its response ids (EOS last). Samples
// are never cut across rows. Rows come from first-fit decreasing: samples sorted by length,
// longest first (ties: input order), each placed in the lowest-numbered row that still has
// room, a new row opened when none has. A segment tree over the rows' free space finds that
// row in O(log rows), so packing is O(n log n).
#ifndef VET_PACK_H
#define VET_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

// Which tokens carry loss.
typedef enum {
    VET_LOSS_RESPONSE = 0,  // next tokens that are response tokens (the EOS included)
    VET_LOSS_ALL = 1,       // every next token within the sample (--train-on-prompt)
} vet_loss_on;

// Cutting an over-long sample's prompt (the response is never cut).
typedef enum {
    VET_TRUNC_NONE = 0,   // reject the sample
    VET_TRUNC_LEFT = 1,   // keep BOS, drop the oldest prompt tokens after it
    VET_TRUNC_RIGHT = 2,  // drop the prompt's tail
} vet_trunc;

// Parses "left" / "right" (and "none").
int vet_pack_parse_trunc(const char *s, vet_trunc *out, vet_err *err);

// Loss mask of one sample of n tokens whose first prompt_len are the prompt:
//   targets[i] = tokens[i+1] when i < n-1 and (loss_on == ALL or i+1 >= prompt_len), else -1.
// So the first response token is predicted from the last prompt token, the EOS carries loss
// and the last position (nothing follows it within the sample) is -1.
void vet_pack_targets(const int32_t *tokens, int32_t n, int32_t prompt_len, vet_loss_on loss_on,
                      int32_t *targets);

// Fits a sample of prompt_len + response_len tokens into seq_len by cutting its prompt.
// Returns the prompt tokens to keep, or -1 when the sample cannot be kept: mode NONE and too
// long, or the response plus one prompt token does not fit. A sample that fits keeps everything.
// RIGHT keeps prompt[0 .. kept). LEFT keeps the newest tokens, prompt[*keep_from ..]; with
// keep_bos the prompt's first token (its BOS) stays in front of them: prompt[0], then
// prompt[*keep_from .. *keep_from + kept - 2]. Without a BOS (a tokenizer that adds none, as
// SmolLM2's and Qwen2's) the first token is the template's first word, not to be kept.
int32_t vet_pack_fit(int32_t prompt_len, int32_t response_len, int32_t seq_len, vet_trunc mode, int keep_bos,
                     int32_t *keep_from);

// First-fit decreasing. lens[i] in [1, seq_len]. Writes row_of[i] (rows numbered 0.. in the
// order they were opened) and *n_rows.
int vet_pack_ffd(const int32_t *lens, size_t n, int32_t seq_len, int32_t *row_of, size_t *n_rows,
                 vet_err *err);

// First-fit decreasing, then, when its rows exceed the lower bound (tokens / seq_len, or samples /
// the most samples a row can hold), a snake deal of the samples sorted longest first into k rows
// for k from the bound up: the first k where every row fits wins. vet-pack packs with this.
int vet_pack_tight(const int32_t *lens, size_t n, int32_t seq_len, int32_t *row_of, size_t *n_rows,
                   vet_err *err);

// Turns row_of into rows: row r holds samples order[begin[r] .. begin[r+1]-1], in ascending
// sample index (input order). begin has n_rows + 1 entries, order n.
int vet_pack_rows(const int32_t *row_of, size_t n, size_t n_rows, int32_t *order, int64_t *begin,
                  vet_err *err);

// A permutation of 0..n-1 from seed (Fisher-Yates over vet_rng): the output order of rows.
void vet_pack_shuffle(int32_t *perm, size_t n, uint64_t seed);

#endif
