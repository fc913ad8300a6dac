// constrain.h — constrained decoding: the model may only write a response that parses.
//
// The language: an optional single space (the tokenizer's dummy prefix), then the response
// prefix ("Diagnosed conditions: "), then one or more labels of a table separated by ", ".
// That is PREFIX L (", " L)* with L any label, matched byte for byte (a character trie over
// the labels). Decoding keeps, per note, the set of places in that language the text so far
// can be at (a small NFA state set); at each step a token is allowed iff appending its piece
// text keeps the text a prefix of a sentence of the language, and EOS only right after a
// complete label. Disallowed tokens get logit -inf.
//
// Length budget: with `remaining` tokens left, a token is allowed only if the shortest way
// to finish after it still fits: the fewest tokens of this vocabulary that finish a sentence
// from there, EOS included (worked out once, in vet_constrain_new). So a note that runs into
// max_new still ends on a complete label whenever max_new allows one at all. When no token
// fits (max_new too small for any label), the mask drops the budget and only keeps the text
// in the language; the response is then cut (vet_constrain_complete_len).
//
// Piece texts are SentencePiece pieces as the vocabulary spells them: "▁" is a space and a
// byte-fallback piece <0xNN> is the byte NN. NULL (a control piece) is never allowed. A
// byte-level BPE vocabulary is handed in as the bytes each piece stands for
// (vet_constrain_pieces); it has no dummy prefix, so no leading space is allowed there.
#ifndef VET_CONSTRAIN_H
#define VET_CONSTRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "data/labels.h"
#include "data/tokenizer.h"

typedef struct vet_constrain vet_constrain;

// Where in the language a note's text can be: a set of NFA states (opaque numbers). A set holds
// one place per label the text may have started inside the label it is in ("A, B" after "A, "
// is both in "A, B" and at the start of a new label), so its size is bounded by the table:
// 3 + the most ", " inside one label. vet_constrain_new refuses a table whose bound passes
// VET_CSTATE_MAX, so no place is ever dropped. Fixed, not grown: a set is copied per byte of
// every piece the mask tries, and a label of 61 ", "-joined parts is no code.
#define VET_CSTATE_MAX 64
typedef struct {
    int n;
    int st[VET_CSTATE_MAX];
} vet_cstate;

// prefix: the response prefix (may be ""); labels: the table (at least one, none empty, none
// with more than VET_CSTATE_MAX - 3 ", " inside: VET_E_INPUT naming the label);
// pieces (V): each id's piece, NULL for ids that are never allowed; eos_ids: the ids that end
// a response.
vet_constrain *vet_constrain_new(const char *prefix, char *const *labels, size_t n_labels,
                                 char *const *pieces, int V, const int32_t *eos_ids, int n_eos,
                                 vet_err *err);
void vet_constrain_free(vet_constrain *c);  // safe with NULL
// The same for a code table (lib/data/labels.h, e.g. from vet_codes_load): its labels in order.
vet_constrain *vet_constrain_from_labels(const char *prefix, const vet_labels *table, char *const *pieces, int V,
                                         const int32_t *eos_ids, int n_eos, vet_err *err);

// The pieces of a tokenizer's vocabulary for vet_constrain_new: ids >= the tokenizer's
// vocabulary and special ids are NULL. SentencePiece pieces as spelt; byte-level BPE pieces
// as the bytes they stand for, NULL for the few that those spellings would misread (a NUL
// byte, a "▁", the form <0xNN>: no code label holds one). Free with vet_constrain_free_pieces.
char **vet_constrain_pieces(const vet_tokenizer *t, int V, vet_err *err);
void vet_constrain_free_pieces(char **pieces, int V);

void vet_constrain_start(const vet_constrain *c, vet_cstate *s);
// Sets logits[v] = -inf for every id v not allowed next, with `remaining` tokens left
// (this one included). Always leaves at least one id allowed (EOS when nothing else fits).
void vet_constrain_mask(const vet_constrain *c, const vet_cstate *s, int remaining, float *logits);
// The same choice as a list: ids[0..k) the ids vet_constrain_mask leaves allowed, ascending
// (ids and allow hold V), for logits with no -inf of their own. Returns k >= 1.
int vet_constrain_allowed(const vet_constrain *c, const vet_cstate *s, int remaining, int32_t *ids,
                          unsigned char *allow);
// Moves s past token; returns -1 (s unchanged) when the token leaves the language.
int vet_constrain_advance(const vet_constrain *c, vet_cstate *s, int token);
// True when the text so far is a complete sentence (EOS may come now).
int vet_constrain_accepting(const vet_constrain *c, const vet_cstate *s);
// True when text[0..len) is a complete sentence of the language (no leading space).
int vet_constrain_matches(const vet_constrain *c, const char *text, size_t len);
// How much of text[0..len) (no leading space) is a complete sentence whose labels the text
// closed: all of it when it is one; else up to the last label followed by the separator (a
// response cut by max_new in the middle of a label, or right after a label it was going on
// past); 0 when none.
size_t vet_constrain_complete_len(const vet_constrain *c, const char *text, size_t len);

#endif
