// template.h — the prompt template: how a note becomes the prompt text and the response text.
//
// Built in: "alpaca" (instruction + input, the tatsu-lab/alpaca-lora wording byte for byte) and
// "alpaca-noinput". A template file is plain text:
//
//   <prompt part, with {placeholders}>
//   ---
//   <response part>
//
// The prompt part is every byte before the first line that is exactly `---` (its last newline
// included); the response part is every byte after that line, less one final newline. With no
// `---` line the whole file is the prompt part and the response format stays as it is.
// Placeholders: {instruction} {input} {note} {species} {id} (prompt and response) and {codes}
// {disease} (response only: in the prompt they would show the model its answer). {{ and }}
// are literal braces. {input} renders the record's own input when it has one (Alpaca), else
// the input format ("Clinical Note: {note}"); {instruction} the record's own instruction, else
// the template's. {codes} is the codes joined by ", ", or the disease when a note has none.
// A record's own `output` (Alpaca) is its response as it is.
#ifndef VET_TEMPLATE_H
#define VET_TEMPLATE_H

#include <stddef.h>

#include "base/err.h"
#include "io/notes.h"

#define VET_DEFAULT_INSTRUCTION \
    "Analyze the following veterinary clinical note and predict the SNOMED-CT diagnosis codes."
#define VET_DEFAULT_INPUT_FORMAT "Clinical Note: {note}"
#define VET_DEFAULT_RESPONSE_FORMAT "Diagnosed conditions: {codes}"

// A growing byte string, NUL-terminated.
typedef struct {
    char *s;
    size_t len, cap;
} vet_text;

int vet_text_append(vet_text *t, const char *s, size_t n);
void vet_text_free(vet_text *t);

typedef struct vet_template vet_template;

// `spec` is a built-in name ("alpaca", "alpaca-noinput") or a template file's path. NULL
// parts keep the defaults (VET_DEFAULT_*; the input format's is "" for a template that shows
// no {input}); an empty input format with the built-in "alpaca" selects "alpaca-noinput" (the
// prompt then has no input section).
vet_template *vet_template_open(const char *spec, const char *instruction, const char *input_format,
                                const char *response_format, vet_err *err);
// The same from template text in memory (name is the header's `name`).
vet_template *vet_template_parse(const char *text, size_t len, const char *name,
                                 const char *instruction, const char *input_format,
                                 const char *response_format, vet_err *err);
void vet_template_free(vet_template *t);

// Render into out (cleared first). Fails when a placeholder has nothing to render.
int vet_template_prompt(const vet_template *t, const vet_note *n, vet_text *out, vet_err *err);
// 1 when the prompt shows a CSV note's text: {note} in it, or {input} with {note} in the input
// format. Alpaca records carry the note in their own instruction or input instead.
int vet_template_shows_note(const vet_template *t);
int vet_template_response(const vet_template *t, const vet_note *n, vet_text *out, vet_err *err);

// Identity, for the stream header. sha256 covers the template text, the instruction, the
// input format and the response format (NUL-separated): equal hashes render equal prompts.
const char *vet_template_name(const vet_template *t);
const char *vet_template_sha256(const vet_template *t);
const char *vet_template_instruction(const vet_template *t);
const char *vet_template_input_format(const vet_template *t);
// The response format's literal text before its first placeholder ("Diagnosed conditions: ").
const char *vet_template_response_prefix(const vet_template *t);
// The response format itself ("Diagnosed conditions: {codes}"), for the stream header: vet-generate
// --constrain and --rank force prefix + label + end, which only a format of that shape trains.
const char *vet_template_response_format(const vet_template *t);
// The input format's literal text before {note} ("Clinical Note: "), or "" when it does not
// start that way: what to strip from an Alpaca input to recover the note. An input format
// without {note} (a template with no input section has "") strips the default's "Clinical Note: ".
const char *vet_template_note_prefix(const vet_template *t);
// The template in file form (prompt, ---, response), e.g. to start a custom one from.
const char *vet_template_text(const vet_template *t);
// The same with the instruction and the input format, where they are not the defaults, written
// into the prompt in place of {instruction} (braces doubled) and {input}: a file that, read with
// no --instruction or --input-format, renders every CSV note as t does (vet-tokenize
// --print-template). Alpaca records, whose own instruction and input would replace them, then
// get these instead. Into out (cleared first); -1 with err when out of memory.
int vet_template_print_form(const vet_template *t, vet_text *out, vet_err *err);

#endif
