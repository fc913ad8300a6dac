// prompts.h — the notes to decode, read from a vet stream: one prompt per record of a `tokens`
// stream (vet-tokenize), one per sample of a row of a `packed` stream (vet-pack --no-pack).
//
// Each prompt comes with what its prediction record copies: the note's id, species and gold
// codes. A prompt is checked before it is handed out: not empty, inside the sample it belongs
// to (packed), every token inside the model's vocabulary, and, when the model runs with a KV
// cache of fixed size (a device), short enough for it. A bad record is VET_E_INPUT with
// "PATH: record N: what is wrong"; a prompt too long for the cache is VET_E_USAGE (a setting to
// raise, not a bad input).
#ifndef VET_PROMPTS_H
#define VET_PROMPTS_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/sha256.h"

typedef struct vet_prompts vet_prompts;

// One note's prompt. id, species ("" when the input has none) and gold (n_gold codes) are
// malloc'd and become the caller's (free with vet_prompt_free_fields); prompt points into the
// reader and is valid until the next vet_prompts_next.
typedef struct {
    char *id, *species;
    char **gold;
    size_t n_gold;
    const int32_t *prompt;
    int n_prompt;
} vet_prompt;

void vet_prompt_free_fields(vet_prompt *p);  // id, species, gold; safe on a zeroed prompt

// Opens path ("-": stdin) and checks its kind: `tokens` or `packed`, else VET_E_INPUT.
vet_prompts *vet_prompts_open(const char *path, vet_err *err);
void vet_prompts_close(vet_prompts *p);  // safe with NULL

const msgpack_object *vet_prompts_header(const vet_prompts *p);  // the stream's header map
const char *vet_prompts_path(const vet_prompts *p);              // "<stdin>" for "-"

// What a prompt must satisfy, once the model is known.
typedef struct {
    int vocab;    // every token in [0, vocab); 0: not checked
    int max_pos;  // > 0: positions of a fixed KV cache (prompt + max_new - 1 must fit); 0: any
    int max_new;  // new tokens per note (the last one is never fed back)
    int ranked;   // max_new is the longest --rank answer, not --max-new (said so when refused)
} vet_prompt_limits;

void vet_prompts_limit(vet_prompts *p, const vet_prompt_limits *l);

// The next prompt into *out: 1, 0 at the end of the stream, -1 on error (out holds nothing
// to free then).
int vet_prompts_next(vet_prompts *p, vet_prompt *out, vet_err *err);

// The identity of a whole input, which every shard's header carries (`input_digest`,
// docs/formats.md): two inputs of as many notes (two test splits, one input tokenized again)
// differ in it, so vet-eval does not merge their shards as one run's. The first 16 hex digits of
// the SHA-256 over every note in input order: its id as a field (vet_sha256_update_field), then
// its prompt's length and ids, each a 4-byte little-endian integer.
typedef struct {
    vet_sha256 sha;
} vet_input_digest;

void vet_input_digest_init(vet_input_digest *d);
void vet_input_digest_add(vet_input_digest *d, const vet_prompt *p);
void vet_input_digest_hex(vet_input_digest *d, char hex[17]);  // ends d

// How many prompts the stream at path (a file) holds, each read and checked against l as
// vet_prompts_next does: the count of records a run over all of it writes, or -1 with err
// (the same error that run would meet); the input's digest (above) into digest. For a shard's
// header (lib/generate/job.h).
int64_t vet_prompts_count(const char *path, const vet_prompt_limits *l, char digest[17], vet_err *err);

#endif
