// ensemble.h — several models decoding as one: a forward backend (lib/generate/decoder.h)
// whose logits are the log of the members' mean next-token probability,
//
//   out[v] = log( (1/K) * sum_k softmax(logits_k)[v] ),
//
// so greedy decoding picks the token the members find most probable on average, sampling
// draws from their mean distribution, and constrained decoding masks the mean like any
// logits. Every member sees the same tokens (the ensemble's choices), so each keeps its own
// KV cache in step with the others. The members must share the vocabulary (same V, the same
// tokenizer: the caller checks the tokenizer).
//
// Why the mean of probabilities: it is what an ensemble of classifiers averages, it is
// bounded by the members (a token no member finds likely stays unlikely), and with K = 1 it
// is the member's log-softmax, which picks the same tokens as its logits.
//
// Exactness: each output row depends only on the members' rows for the same slot, so an
// ensemble is as batch-invariant as its members (lib/generate/decoder.h).
#ifndef VET_ENSEMBLE_H
#define VET_ENSEMBLE_H

#include "base/err.h"
#include "generate/decoder.h"

typedef struct vet_ensemble vet_ensemble;

// members[0..k): backends with at least n_slots slots each, all for a vocabulary of V tokens.
// The table is copied; the backends' states must outlive the ensemble.
vet_ensemble *vet_ensemble_new(const vet_infer_backend *members, int k, int V, int n_slots, vet_err *err);
void vet_ensemble_free(vet_ensemble *e);  // safe with NULL

// K models on the CPU as one: each member gets its own KV-cache forward (vet_infer) of n_slots
// slots, owned by the ensemble. models[0..k) share one vocabulary (lib/generate/models.h checks).
vet_ensemble *vet_ensemble_new_cpu(const vet_model *models, int k, int n_slots, vet_err *err);

// be = the ensemble as a backend, for vet_generate_on.
void vet_ensemble_backend(vet_ensemble *e, vet_infer_backend *be);

// The combination itself, on n rows of V: acc (n, V) holds the running log of the summed
// probabilities of the members so far (count of them: k_done), logits (n, V) the next
// member's logits, overwritten as scratch. k_done == 0 starts the sum.
void vet_ensemble_accumulate(float *acc, float *logits, int n, int V, int k_done);
// After the last member: acc -= log(K).
void vet_ensemble_finish(float *acc, int n, int V, int K);

#endif
