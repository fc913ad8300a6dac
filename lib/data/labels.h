// labels.h — a label vocabulary, and finding its labels in generated text.
//
// A vocabulary is a list of labels (SNOMED-CT ids such as "1679004", or any other string such
// as "Foot Rot"), each with an optional readable term. It comes from the codes seen in training
// or from a codes file (vet_codes_load): one label per line, or `code<TAB>term`.
//
// vet_labels_extract finds which labels a model's output names:
//   - a vocabulary label matches only as whole tokens: the characters just before and after it
//     must not be letters, digits, '_' or non-ASCII bytes (where the label itself begins/ends
//     with such a character). So "1679004" is not found in "11679004" nor "Rot" in "Rotavirus".
//     Letters compare ASCII case-insensitively ("foot rot" finds "Foot Rot"); the label is
//     reported as spelled in the vocabulary. At one position the longest label wins.
//   - any other run of 6 to 18 digits standing alone is reported too (an unknown numeric code),
//     as the reference recipe's pattern `\b\d{6,18}\b` does: a model may name a real code that
//     training never showed.
// Labels are reported once each, in order of first appearance.
#ifndef VET_LABELS_H
#define VET_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/err.h"

#define VET_CODE_MIN_DIGITS 6
#define VET_CODE_MAX_DIGITS 18

typedef struct vet_labels vet_labels;

vet_labels *vet_labels_new(void);
void vet_labels_free(vet_labels *v);  // safe with NULL
// Adds a label (term may be NULL or ""). Adding a label already present keeps the first and
// fills its term if it had none. Fails on an empty label or one with a line break or tab.
int vet_labels_add(vet_labels *v, const char *label, const char *term, vet_err *err);
size_t vet_labels_count(const vet_labels *v);
const char *vet_labels_label(const vet_labels *v, size_t i);  // in order of addition
// The term of a label ("" when it has none), or NULL when the label is not in the vocabulary.
const char *vet_labels_term(const vet_labels *v, const char *label);

// Reads a codes file: one label per line, or `label<TAB>term` (`label<TAB>` alone: no term, as
// the label alone). Blank lines and lines that start with '#' are skipped, so is a first line
// whose first field is "code" or "label" (a header, as in codes.tsv). CRLF line ends are
// accepted; the blanks around label and term are trimmed. Refused, as they would lose or confuse
// what the file says ("name:LINE: ...", err->line LINE): a term with no label before its tab; a
// third tab-separated field; a 6-18 digit code followed by blanks and more (a code and its term
// separated by spaces); the same label twice with different terms; two labels that differ only
// in case (extraction could never tell them apart).
vet_labels *vet_codes_load(FILE *f, const char *name, vet_err *err);
// The same from the file at path (base/input_file.h: a regular file or a pipe; "-" is stdin):
// NULL with err VET_E_IO when it cannot be opened, VET_E_INPUT when it is malformed.
vet_labels *vet_codes_load_path(const char *path, vet_err *err);

// Finds the labels in text[0..len): *out gets malloc'd NUL-terminated copies (free with
// vet_labels_free_list), *n their number. When unknown is not NULL, (*unknown)[i] is set
// (malloc'd) to whether label i is an unknown numeric code rather than a vocabulary entry.
// v may be NULL (then only numeric codes are found). Returns 0 or -1 (out of memory).
int vet_labels_extract(const vet_labels *v, const char *text, size_t len, char ***out, size_t *n,
                       bool **unknown, vet_err *err);
void vet_labels_free_list(char **labels, size_t n);
// labels[0..n) joined by ';' into out (cut short at cap bytes), or `none` when n is 0.
void vet_labels_join(char *out, size_t cap, const char *const *labels, size_t n, const char *none);

#endif
