// allowed.h — the ids constrained decoding allows next, as lists, remembered per place in the
// language. A device that makes the greedy choice itself (vet_infer_backend.step_greedy)
// takes these lists instead of sending its n x V logits to the host to be masked.
//
// Why remember: working out a list walks every piece of the vocabulary against the note's
// state set (vet_constrain_allowed: ~V short string walks), for every note at every step. But
// the notes of a batch sit at few places of the language (every note starts at the same one;
// a code table is a small trie), so the same (state set, tokens left) comes back again and
// again: it is worked out once. The list depends on nothing else (not on the logits), so a
// remembered list is the list.
#ifndef VET_ALLOWED_H
#define VET_ALLOWED_H

#include <stdint.h>

#include "base/err.h"
#include "generate/constrain.h"

typedef struct vet_allowed vet_allowed;

// For constraint c over V ids (c is not owned and must outlive the cache).
vet_allowed *vet_allowed_new(const vet_constrain *c, int V, vet_err *err);
void vet_allowed_free(vet_allowed *a);  // safe with NULL
// The ids allowed next at s with `remaining` tokens left (this one included): *n >= 1 of them,
// ascending, as vet_constrain_allowed. Valid until the next call. NULL on out of memory.
const int32_t *vet_allowed_get(vet_allowed *a, const vet_cstate *s, int remaining, int *n, vet_err *err);
// Lists worked out so far, and lists answered from memory (for tests and stats).
void vet_allowed_counts(const vet_allowed *a, long long *computed, long long *remembered);

#endif
