// decoder.h — text generation on the CPU: a forward pass with a KV cache, a sampler, and a
// driver that decodes many notes at once (continuous batching). The driver also runs on a
// device's forward (vet_generate_on with kernels/host/gpu_infer.h's backend).
//
// Two kinds of forward:
//   prefill  one prompt, all its positions in one pass (GEMMs over the prompt's M positions
//            through OpenBLAS, attention over the prompt with attention_forward); its keys and
//            values go straight into the slot's cache.
//   step     one new token for each of n slots at once: every projection is an (n, C) x
//            (C, OC) product, attention reads each slot's cache.
// Exactness: a step computes every row with the same instruction sequence whatever n is and
// whichever rows sit next to it (vet's own row-wise GEMM kernel, see decoder.c), and a prompt
// is always prefilled alone (the GEMM's shape depends only on the prompt), so a note decoded
// in a batch gets bit-identical logits, hence the same tokens, as the note decoded alone.
//
// The model must have no LoRA left: merge an adapter first (vet_model_merge_lora), which is
// the same function and one projection instead of three per adapted layer.
#ifndef VET_INFER_H
#define VET_INFER_H

#include <stdint.h>

#include "base/err.h"
#include "model/model.h"

typedef struct vet_constrain vet_constrain;

// ---------------------------------------------------------------------------------------
// The KV-cache forward.
typedef struct vet_infer vet_infer;

// n_slots sequences can be in flight at once; each slot's cache grows as needed.
vet_infer *vet_infer_new(const vet_model *m, int n_slots, vet_err *err);
void vet_infer_free(vet_infer *s);  // safe with NULL

// Clears slot and runs ids[0..n) through the model from position 0. logits (V) gets the
// logits of the last position. Fails on an empty prompt or an id outside [0, V).
int vet_infer_prefill(vet_infer *s, int slot, const int32_t *ids, int n, float *logits, vet_err *err);
// Feeds tokens[i] to slots[i] (i < n, distinct slots) at each slot's next position.
// logits (n, V): row i holds the logits after tokens[i].
int vet_infer_step(vet_infer *s, const int *slots, const int32_t *tokens, int n, float *logits,
                   vet_err *err);
int vet_infer_len(const vet_infer *s, int slot);  // positions in the slot's cache
// Makes slot dst hold what slot src holds (its cache and length), so that both go on from the
// same prefix: scoring many answers to one prompt (generate/rank.h) prefills the prompt once.
int vet_infer_copy(vet_infer *s, int dst, int src, vet_err *err);

// ---------------------------------------------------------------------------------------
// Sampling. temperature <= 0: greedy (argmax, the lowest id on ties). Otherwise as
// transformers does it: logits / temperature, keep the top_k best (top_k <= 0: all), softmax,
// keep the smallest set of best tokens whose probability reaches top_p (top_p >= 1: all),
// then draw with u, a uniform number in [0, 1). logits (V) is used as scratch.
typedef struct {
    float temperature;
    float top_p;
    int top_k;
} vet_sampling;

int vet_sample(float *logits, int V, const vet_sampling *sp, double u);

// ---------------------------------------------------------------------------------------
// The driver: pulls prompts, decodes up to `batch` of them at once, hands back each result
// as soon as it is finished (so results come in completion order, not input order).
// Where the time went, for the closing line and the benchmark: prompts are processed as
// GEMMs (compute-bound), decode steps one token per active note (bound by memory bandwidth
// at batch 1), so the two rates say different things.
typedef struct {
    int64_t prompt_tokens;      // tokens of every prompt prefilled
    double prefill_ms;          // time in prefill (its first token's sampling included)
    int64_t step_tokens;        // tokens made by decode steps (the first of each note is not)
    double step_ms;             // time in decode steps and their sampling
} vet_gen_stats;

typedef struct {
    vet_sampling sampling;
    uint64_t seed;              // note k samples from its own stream, seeded by (seed, tag)
    int max_new;                // at most this many new tokens per note (EOS included)
    const int32_t *eos_ids;     // decoding stops after any of these
    int n_eos;
    const vet_constrain *constrain;  // NULL: free decoding
    vet_gen_stats *stats;       // added to when not NULL
} vet_gen_opts;

typedef struct {
    int64_t tag;                // the caller's number for the note (also seeds its sampler)
    const int32_t *prompt;      // valid until next is called again
    int n_prompt;
} vet_gen_prompt;

typedef struct {
    int64_t tag;
    const int32_t *ids;         // the generated ids, EOS included when it was generated
    int n_ids;
    int stopped;                // 1: ended by EOS, 0: ran into max_new
    double ms;                  // wall time from the note's prefill to its last token
} vet_gen_result;

// next: fills *p and returns 1, or returns 0 when there are no more prompts, -1 on error.
// done: receives each finished note; returns 0, or -1 to stop (with err filled).
typedef int (*vet_gen_next_fn)(void *ctx, vet_gen_prompt *p, vet_err *err);
typedef int (*vet_gen_done_fn)(void *ctx, const vet_gen_result *r, vet_err *err);

int vet_generate(const vet_model *m, const vet_gen_opts *o, int batch, vet_gen_next_fn next,
                 vet_gen_done_fn done, void *ctx, vet_err *err);

// The forward the driver runs on: the CPU's vet_infer above (what vet_generate uses), or a
// device's (kernels/host/gpu_infer.h). prefill and step mean what vet_infer_prefill and vet_infer_step
// mean; slots are 0 .. n_slots-1. prefill_batch (NULL: the driver calls prefill for each
// prompt) prefills count prompts into distinct slots at once: prompt i (ids[i], n[i] tokens)
// into slots[i], logits (count, V) with row i the last position's logits of prompt i, each
// row what prefill would give (up to the device's summation order). A device does it as one
// batched forward; the CPU loops over prefill (its prompts stay alone: bit-exact batching).
// On failure *bad is the index of the prompt at fault (-1: not one prompt's).
typedef struct {
    void *state;
    int n_slots;
    int (*prefill)(void *state, int slot, const int32_t *ids, int n, float *logits, vet_err *err);
    int (*step)(void *state, const int *slots, const int32_t *tokens, int n, float *logits,
                vet_err *err);
    int (*prefill_batch)(void *state, const int *slots, const int32_t *const *ids, const int *n, int count,
                         float *logits, int *bad, vet_err *err);
    // NULL, or step with the greedy choice made by the backend: next[i] = vet_sample's
    // temperature-0 choice (argmax, lowest id on ties) of row i's logits; with allowed, the
    // choice among row i's allowed ids allowed[allowed_off[i] .. allowed_off[i+1]) (ascending,
    // at least one: constrained decoding, generate/allowed.h). The driver uses it for greedy
    // decoding (a device then returns n ids, not n x V floats).
    int (*step_greedy)(void *state, const int *slots, const int32_t *tokens, int n, const int32_t *allowed,
                       const int32_t *allowed_off, int32_t *next, vet_err *err);
    // NULL, or vet_infer_copy: slot dst goes on from what slot src holds (the ranker uses it to
    // prefill a prompt once for all its answers; without it each answer's slot prefills it).
    int (*copy_slot)(void *state, int dst, int src, vet_err *err);
} vet_infer_backend;

// be = the CPU forward s as a backend table (what vet_generate runs on; an ensemble's members).
void vet_infer_backend_of(vet_infer *s, vet_infer_backend *be);

// vet_generate on a backend with at least `batch` slots, for a model of V tokens: the same
// scheduling, sampling, constrained decoding, stats and callbacks.
int vet_generate_on(const vet_infer_backend *be, int V, const vet_gen_opts *o, int batch,
                    vet_gen_next_fn next, vet_gen_done_fn done, void *ctx, vet_err *err);

#endif
