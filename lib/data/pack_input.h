// pack_input.h — vet-pack's input: the records of `tokens` streams read into samples, each
// fitted to the row length (kept, its prompt cut, or rejected) and keyed by its normalized note.
//
// The whole input is held in memory (the notes are small): the split needs every sample before
// it can decide anything, and nothing may be written before all of the input proved whole.
#ifndef VET_PACK_INPUT_H
#define VET_PACK_INPUT_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "data/pack.h"
#include "data/split.h"

// Where a sample goes: a split (VET_SPLIT_TRAIN/VAL/TEST), everything in one stream (-o), or
// the val split's copies (--val-copies: training data for a model fitted on train + val).
enum { VET_PACK_ALL = VET_SPLIT_N, VET_PACK_VAL_COPIES, VET_PACK_SLOTS };

// "train", "val", "test", "all", "val_copies": the header's `split` and the summary's keys.
const char *vet_pack_slot_name(int slot);

typedef struct {
    char *id, *species;
    char *copy_of;        // the original's id for a species-swapped copy, else NULL
    int32_t original;     // index of that original once linked (vet_pack_split), else -1
    uint8_t split;        // the slot the sample is packed into
    uint8_t dropped;      // a copy whose original is held out: not packed, only counted
    char **codes;
    size_t n_codes;
    char *key;            // the normalized note (vet_split_normalize): the grouping key
    int32_t *tokens;      // (n) prompt then response, after truncation; NULL when rejected
    int32_t n, prompt_len;
    int rejected;         // longer than seq_len and not truncatable: counted, not packed
    int truncated;        // its prompt was cut to fit
} vet_pack_sample;

typedef struct {
    vet_pack_sample *s;
    size_t n, cap;
} vet_pack_samples;       // zero-initialise before use

// Appends x (moved in: the table owns its strings and arrays from now on). On failure x is
// freed and -1 returned (VET_E_NOMEM).
int vet_pack_samples_add(vet_pack_samples *S, vet_pack_sample *x, vet_err *err);
void vet_pack_samples_free(vet_pack_samples *S);

// One input stream's header parts that the outputs copy: the tokenizer and template maps
// (kept alive here, outside the reader) and the tokenizer's sha256, which identifies it.
typedef struct {
    const char *path;      // as given ("-": stdin)
    msgpack_zone zone;     // the copies below live in zone and (their strings) in buf
    msgpack_sbuffer buf[2];
    msgpack_object tokenizer, template_;
    char sha256[80];
    char tokenizer_kind[16];        // "spm" or "bpe" (a header without tokenizer.kind: "spm")
    int ready;             // zone initialised (what vet_pack_input_free must release)
} vet_pack_input;

// How samples are fitted into rows of seq_len tokens.
typedef struct {
    int32_t seq_len;
    vet_trunc trunc;       // VET_TRUNC_NONE rejects an over-long sample
} vet_pack_fit_opts;

// The largest tokenizer.vocab_size a header may claim (the largest real vocabularies are ~256k).
#define VET_PACK_MAX_VOCAB (1 << 24)

// Reads the tokens stream at path ("-": stdin) to its end: its header into *in (zero it first),
// every record as a sample in slot `slot` appended to S. Refuses a header without
// tokenizer.sha256 or with a vocab_size missing or outside [1, VET_PACK_MAX_VOCAB], a record
// missing a field, an empty prompt or response, a token id outside [0, vocab_size)
// (VET_E_INPUT, naming the file and record), a stream with no record, a stream that is not whole.
int vet_pack_read(const char *path, int slot, const vet_pack_fit_opts *fit, vet_pack_input *in,
                  vet_pack_samples *S, vet_err *err);
void vet_pack_input_free(vet_pack_input *in);

#endif
