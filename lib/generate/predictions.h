// predictions.h — the `predictions` stream vet-generate writes (docs/formats.md): a header that
// says what made the predictions, then one record per note, in input order:
//   {"id", "species", "gold": [codes], "pred": [labels found in the text], "text",
//    "tokens": n generated, "ms": wall time, "generated": [ids]}
#ifndef VET_PREDICTIONS_H
#define VET_PREDICTIONS_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "data/labels.h"
#include "data/tokenizer.h"
#include "generate/decoder.h"
#include "io/stream.h"

// One note's record. Every pointer is malloc'd and owned by the record.
typedef struct {
    char *id, *species;
    char **gold;
    size_t n_gold;
    char *text;
    char **pred;
    size_t n_pred;
    int32_t *generated;  // the ids the model chose, end-of-sequence included
    int n_generated;
    int n_prompt;        // the prompt's length in tokens (not written: the context check's)
    char group[17];      // the prompt's 16-hex-digit hash (vet_prediction_group): equal prompts,
                         //   equal groups (vet-eval resamples them together)
    double ms;
    // --rank (generate/rank.h): the n_ranked most probable labels of the table, best first,
    // with p (softmax over the table) and logp (the answer's log-probability); table_p the
    // table's answers' total probability. n_ranked 0: not ranked (no keys written).
    char **ranked;
    double *ranked_p, *ranked_logp;
    int n_ranked;
    double table_p;
} vet_prediction;

void vet_prediction_free(vet_prediction *p);  // frees what p holds and zeroes it

// The group of a note whose prompt is ids[0..n): the first 16 hex digits of the SHA-256 of the ids
// as 4-byte little-endian integers. Notes written alike (the DLO notes repeat: 444 distinct texts
// in 1,602) have one prompt, so the model answers them alike: their outcomes are one draw, not
// several, and vet-eval's bootstrap resamples them as one (docs/formats.md).
void vet_prediction_group(const int32_t *ids, int n, char group[17]);

// What made the predictions, written once into the header.
typedef struct {
    const char *model;                  // the first --model
    const char *const *ensemble;        // every --model, when more than one (else NULL)
    int n_models;
    const char *adapter;                // NULL: none
    const msgpack_object *tokenizer;    // the input header's, copied as is
    const msgpack_object *tmpl;         // the input header's template; NULL when it has none
    const msgpack_object *fold;         // the input header's `fold` (vet-pack --fold), copied as is; NULL: none
    const char *source;                 // the input path as given
    vet_sampling sampling;
    uint64_t seed;
    int max_new, batch;
    const char *constrain;              // the --constrain table's path; NULL: none
    int shard_k, shard_n;               // shard_n > 0: shard k of n (header key `shard`)
    int64_t input_notes;                // with a shard: the notes of the whole input
    const char *input_digest;           // with a shard: the whole input's identity (16 hex digits,
                                        //   vet_input_digest in generate/prompts.h)
    int rank_k, rank_labels;            // rank_k > 0: --rank K over a table of rank_labels (key `rank`)
    double rank_temperature;            // with rank_k: the p's temperature (--rank-temperature)
} vet_predictions_header;

// Opens the stream at path ("-": stdout) and writes its header. VET_E_IO on failure (nothing
// is left under path).
vet_writer *vet_predictions_open(const char *path, const vet_predictions_header *h, vet_err *err);
int vet_predictions_write(vet_writer *w, const vet_prediction *p, vet_err *err);

// Fills p's text, labels and generated ids from a finished note: the text is ids decoded
// without the end-of-sequence ids and without ids the tokenizer does not know (a model
// vocabulary padded beyond it), always valid UTF-8 (byte-level pieces are joined first; a
// character cut by the end of decoding becomes U+FFFD, data/tokenizer.h); the labels are
// those of vocab found in it (lib/data/labels.h). With cons (constrained decoding; may be NULL)
// only in the part of the text that is a complete response: a note cut by max_new in the middle
// of a label (max_new too short for any label to fit) wrote the start of one, which is no label
// of the table ("4021400" of 40214000 reads as an unknown code).
int vet_prediction_fill(vet_prediction *p, const vet_gen_result *r, const vet_tokenizer *tok, const vet_labels *vocab,
                        const vet_constrain *cons, const int32_t *eos, int n_eos, vet_err *err);

#endif
