// swap.h — species-swapped copies of notes, a training-data augmentation (vet-tokenize
// --species-swap, vet-pack routes the copies).
//
// Why: diseases are shared within a species pair (cattle and buffalo, sheep and goats): in the
// DLO notes all but three rare codes (6 of 1,602 notes) occur in both species of their pair.
// A model trained from scratch on a few hundred distinct texts leans on the species word: a
// sign list seen only under "Goat" is coded worse under "Sheep" than the goat's label would
// code it (docs/results.md, rounds 6 and 7). A copy of each training note under the partner species, with
// the original's label, teaches that the signs carry the diagnosis.
//
// A swap table is a set of pairs "A=B": a note of species A gets a copy of species B and the
// other way round. Species match case-insensitively (ASCII); the partner is written as it is
// spelled in the table. In the note text, every whole-word occurrence of the species name
// (case-insensitive; a word is a run of ASCII letters and digits) becomes the partner's name,
// its first letter in the case of the word it replaces ("Cow." -> "Buffalo.", "cow" ->
// "buffalo", and "COW" -> "BUFFALO"). "cows" is another word and stays.
#ifndef VET_SWAP_H
#define VET_SWAP_H

#include "base/err.h"
#include "data/template.h"

enum { VET_SWAP_MAX_PAIRS = 32 };

typedef struct {
    char *a[VET_SWAP_MAX_PAIRS], *b[VET_SWAP_MAX_PAIRS];
    int n;
} vet_swap;

// Parses "A=B[,C=D...]" into s. Each name is non-empty, has no '=' or ',', and appears once in
// the whole table (case-insensitively); an error (VET_E_USAGE: the table comes from a flag)
// names the offending part. On failure s holds nothing to free.
int vet_swap_parse(const char *spec, vet_swap *s, vet_err *err);
void vet_swap_free(vet_swap *s);

// The partner of species (as spelled in the table), or NULL when species is in no pair.
const char *vet_swap_partner(const vet_swap *s, const char *species);

// Appends text to out with every whole-word occurrence of `from` replaced by `to` (case as
// described above). Returns the number of words replaced, or -1 (out of memory).
int vet_swap_words(const char *text, const char *from, const char *to, vet_text *out, vet_err *err);

#endif
