// rank.h — scoring every answer of a code table instead of generating one (vet-generate --rank).
//
// A note's answers are the responses the model was trained to write, one per label of the
// table: the tokens of PREFIX LABEL (as vet-tokenize encodes a response, EOS last). Each gets
// logp = log P(its tokens | the prompt), the sum of the model's log-softmax at each of its
// tokens, EOS included; p = softmax(logp) over the table is how the model's belief divides
// among the single-label answers. The best one is the sequence-level choice, which greedy
// constrained decoding (constrain.h) only approximates token by token; p is a confidence a
// person can sort the notes by.
//
// How it runs on a forward (decoder.h's backend): each note's prompt is prefilled into a slot of
// its own and the tokens every answer starts with (the response prefix, mostly) are fed there
// once; then the answers run in the other slots, one step a token, each slot a copy of its
// note's (copy_slot) or, on a backend without it, the same prefill and steps again. With
// enough slots several notes go at once (all their answers in each step); with fewer slots
// than answers, one note's answers a chunk at a time. On the CPU steps compute every row alike
// whatever the batch (decoder.h), so logp does not depend on the number of slots or notes, or
// on the backend's having copy_slot.
#ifndef VET_RANK_H
#define VET_RANK_H

#include <stdint.h>

#include "base/err.h"
#include "data/labels.h"
#include "data/tokenizer.h"
#include "generate/decoder.h"

// The answers: ids[a] (n[a] tokens, EOS last) for label a of the table, in the table's order.
typedef struct {
    int count;
    int32_t **ids;
    int *n;
    int common;  // leading tokens every answer shares (fewer than any answer's length)
} vet_rank_answers;

// The answers of table's labels: encode(prefix + label) with tok, then eos. A label whose ids
// fall outside the model's vocabulary [0, V) is VET_E_INPUT, and so are two labels whose
// answers are the same ids (they could not be told apart).
int vet_rank_answers_build(vet_rank_answers *a, const vet_tokenizer *tok, const char *prefix, const vet_labels *table,
                           int32_t eos, int V, vet_err *err);
void vet_rank_answers_free(vet_rank_answers *a);  // safe on a zeroed struct
// What `common` must be for answers made by hand (count >= 1, each at least one id): the
// leading ids all share, short of the shortest answer's last.
int vet_rank_common_prefix(const vet_rank_answers *a);

typedef struct vet_ranker vet_ranker;

// A ranker over be (at least one slot) for a model of V tokens; a and be must outlive it.
vet_ranker *vet_ranker_new(const vet_infer_backend *be, int V, const vet_rank_answers *a, vet_err *err);
void vet_ranker_free(vet_ranker *r);  // safe with NULL

// How many notes one vet_ranker_score call takes: with at least answers + 1 slots, as many
// notes as have a slot for their prompt and one for each answer (all their answers then step
// together); with fewer, one (its answers a chunk of slots at a time).
int vet_ranker_notes(const vet_ranker *r);

// logp[i * count_of_answers + a] for every answer a to each of prompts[0..count) (lens[i]
// tokens each; 1 <= count <= vet_ranker_notes). stats (may be NULL) is added to: the prompts'
// prefills as prefill, the answers' steps as steps.
int vet_ranker_score(vet_ranker *r, const int32_t *const *prompts, const int *lens, int count, double *logp,
                     vet_gen_stats *stats, vet_err *err);

// p[a] = softmax(logp / temperature)[a] (computed in double, the largest subtracted first;
// temperature > 0, 1: the model's own distribution over the table, any other: --rank-temperature's
// calibration, fitted by vet-eval --fit-temperature), and order[0..count) the answers by p, best
// first, that is by logp (ties: table order; the order is the same at every temperature, also
// among answers whose p underflows to 0). *log_total (may be NULL) = log sum exp(logp), whatever
// the temperature: the log of the answers' total probability, how much of the model's belief
// the table holds.
void vet_rank_order(const double *logp, int count, double temperature, double *p, int *order, double *log_total);

#endif
