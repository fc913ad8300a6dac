// job.h — one vet-generate run: the notes of a `tokens` or `packed` stream in, a `predictions`
// stream out (lib/generate/predictions.h), every note decoded by the decoder
// (lib/generate/decoder.h) on the CPU, as an ensemble on the CPU, or on a backend the caller
// hands in (a device: kernels/host/gpu_infer.h).
//
//   vet_generate_opts o = vet_generate_defaults();
//   o.models[o.n_models++] = "model-dir"; o.input = "notes.tok"; ...
//   vet_generate_job *j = vet_generate_open(&o, &err);  // input, tokenizer, code tables, models
//   vet_generate_run(j, &err);                          // decode, write the stream
//   vet_generate_close(j);
//
// To decode on a device, between open and run: upload vet_generate_model(j), hand its forward
// in with vet_generate_use_backend, and drop the host copy with vet_generate_drop_models.
//
// What is checked where, so that a mistake costs little: the input first (its kind, its
// tokenizer), then the tokenizer against it, then the code tables, then the models (an
// ensemble's against the first), all before anything is written.
#ifndef VET_GENERATE_JOB_H
#define VET_GENERATE_JOB_H

#include <stdint.h>

#include "base/err.h"
#include "generate/decoder.h"
#include "generate/models.h"

#define VET_GENERATE_DEFAULT_PREFIX "Diagnosed conditions: "  // when the input names no template

typedef struct {
    int64_t notes, tokens;  // notes written so far, and the tokens generated for them
    double seconds;         // since decoding began
    vet_gen_stats phases;   // prompts (prefill) and decode steps, separately
    // Notes whose prompt is longer than the model's context (config.json's
    // max_position_embeddings, a GGUF's context_length; the smallest of an ensemble's): they are
    // coded all the same, as transformers would, but from positions the model never trained on,
    // so the program says so. context: that length (0: the model names none); first_long: the
    // id of the first such note, cut to fit.
    int64_t long_prompts;
    int context;
    char first_long[64];
    // Notes whose prompt fits but whose answer ran past the context while it was generated
    // (a token predicted from position context or later: prompt + generated - 1 > context),
    // and the first of them. The same caveat, for the answer's last tokens. With --rank, the
    // answer is the table's longest: every answer is scored, and p is shared among them all.
    int64_t long_answers;
    char first_long_answer[64];
} vet_generate_counts;

typedef struct {
    const char *models[VET_GEN_MAX_MODELS];  // more than one: an ensemble (CPU only, no adapter)
    int n_models;
    const char *adapter;    // a PEFT LoRA adapter merged into the first model; NULL: none
    const char *tokenizer;  // tokenizer.model, tokenizer.json or a directory (data/tokenizer.h);
                            // NULL: the one in the first model's directory
    const char *input;      // a tokens or packed stream; "-": stdin
    const char *output;     // the predictions stream; "-": stdout
    const char *constrain;  // a code table: decode only the response prefix and its labels; NULL: free
    const char *codes;      // a code table of more labels to find in the text; NULL: none
    int max_new;            // new tokens per note at most
    int batch;              // notes decoded at once (the results do not depend on it)
    vet_sampling sampling;
    uint64_t seed;
    // Shard shard_k of shard_n (0 <= shard_k < shard_n; shard_n 0: no sharding): only notes
    // shard_k, shard_k + shard_n, shard_k + 2 shard_n, ... of the input (round-robin, so long and
    // short notes spread evenly) are decoded, and the header says which shard this is and how
    // many notes the whole input holds. The input is read twice (first to count its notes), so
    // it must be a regular file, not stdin or a pipe (else VET_E_USAGE).
    int shard_k, shard_n;
    // rank > 0 (needs constrain): no generation; every label of the constrain table is scored as
    // an answer (generate/rank.h), each record gets the `rank` most probable with their p, and
    // pred is the best. The CPU then runs one slot per label (plus one), a backend its own.
    int rank;
    // With rank: p = softmax(logp / rank_temperature) over the table (> 0; 1: the model's own
    // distribution). The order, pred and logp do not depend on it; vet-eval --fit-temperature
    // finds the one that calibrates p on held-out notes.
    double rank_temperature;
    // Called after every finished note (when not NULL), e.g. for a progress line.
    void (*progress)(void *ctx, const vet_generate_counts *c);
    void *progress_ctx;
} vet_generate_opts;

// One model, stdin to stdout, 100 new tokens, batch 8, greedy, seed 0, no tables.
vet_generate_opts vet_generate_defaults(void);

typedef struct vet_generate_job vet_generate_job;

// Reads and checks everything a run needs; o's strings must outlive the job. Errors carry
// their kind: VET_E_IO for a file that cannot be read, VET_E_INPUT for one that is wrong.
vet_generate_job *vet_generate_open(const vet_generate_opts *o, vet_err *err);
void vet_generate_close(vet_generate_job *j);  // safe with NULL

// Which file of a directory holding both tokenizer kinds was read, and why ("" when there was
// no choice): for the program to say.
const char *vet_generate_tokenizer_choice(const vet_generate_job *j);

// The first model (adapter merged), for a device to upload. NULL after vet_generate_drop_models.
const vet_model *vet_generate_model(const vet_generate_job *j);
// Decode on be (at least o.batch slots) instead of the CPU. max_pos > 0: be holds that many
// positions per note, so a note whose prompt and new tokens need more is refused (VET_E_USAGE).
// be's state must outlive the run.
void vet_generate_use_backend(vet_generate_job *j, const vet_infer_backend *be, int max_pos);
// Frees the host copies of the models (once a device holds its own).
void vet_generate_drop_models(vet_generate_job *j);

// Writes the stream: its header, then every note's record in input order (with a shard: this
// shard's notes, in input order). On failure nothing is left under the output path.
int vet_generate_run(vet_generate_job *j, vet_err *err);

// The counts so far (seconds up to now).
void vet_generate_counts_now(const vet_generate_job *j, vet_generate_counts *c);

#endif
