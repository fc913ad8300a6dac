// tokenize_job.h — vet-tokenize's work: clinical notes in, a `tokens` stream out (or, for
// training a tokenizer, the rendered text).
//
// For each note the job renders the prompt and the response (data/template.h) and encodes each
// on its own with the tokenizer: prompt ids = [BOS] + encode(prompt), response ids =
// encode(response) + [EOS]. The BOS is there when the tokenizer adds one
// (vet_tokenizer_add_bos: SentencePiece and Llama-3 do, Qwen2 and SmolLM2 do not), so the
// prompt ids are what AutoTokenizer(...)(prompt).input_ids gives. Encoding them apart (alpaca-lora encodes one string) makes the prompt
// ids exactly what vet-generate feeds the model, and starts the response on a fresh piece.
// With a species swap table (data/swap.h) each note of a paired species is followed by its
// swapped copy, id "ID~PARTNER" and copy_of ID.
//
// A note that cannot be read or rendered stops the job: err says "file:line: why" and err->line
// is that line. With a rejects file the job goes on instead, and writes the row there as one
// line, LINE<TAB>REASON<TAB>RAW (the raw text with \\ \t \n \r escaped): rows read = notes
// written + rows rejected, the copies on top.
//
// Every output is written under a temporary name and renamed only when the job succeeds
// (base/atomic_file.h): a failed job leaves neither a cut stream nor a rejects file behind.
#ifndef VET_TOKENIZE_JOB_H
#define VET_TOKENIZE_JOB_H

#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "data/len_stats.h"
#include "data/swap.h"
#include "io/notes.h"

typedef struct {
    const char *input;            // the notes: a path, or "-" for stdin
    const char *output;           // the stream (or text): a path, or "-" for stdout
    const char *tokenizer;        // tokenizer.model, tokenizer.json, or a directory holding one
                                  // (data/tokenizer.h; not with text)
    int text;                     // write each note's rendered prompt + response + "\n", no ids
    // The prompt template (template.h): a built-in name or a file; NULL parts keep its defaults.
    const char *template_spec;
    const char *instruction, *input_format, *response_format;
    vet_notes_opts notes;         // format and column names; the note prefix comes from the template
    const vet_swap *swap;         // species pairs to copy notes across; NULL or empty: none
    const char *rejects;          // NULL: the first bad row stops the job; else bad rows go here
    FILE *rejects_stream;         // used instead of opening `rejects` when not NULL (e.g. stderr)
    int stats;                    // count token lengths into the summary (not with text)
    long max_len;                 // the sequence length the statistics compare against
} vet_tokenize_opts;

// alpaca template, stdin to stdout, no swaps, stop at the first bad row, max_len 512.
vet_tokenize_opts vet_tokenize_defaults(void);

typedef struct {
    uint64_t read;                // rows read, good or bad
    uint64_t written;             // records written, copies included
    uint64_t copies;              // of which species-swapped copies
    uint64_t rejected;            // rows set aside in the rejects file
    uint64_t unlabeled;           // records written without an answer (no codes, disease or
                                  // output): notes to code, not to train on
    // With opts.stats: tokens per record (prompt, response, both) and, against max_len, how
    // many records are longer and how many tokens padding to max_len would leave real.
    vet_len_hist prompt, response, total;
    uint64_t over_max_len, real_tokens;
    // Which file of a directory holding both tokenizer kinds was read, and why ("" when the
    // path left no choice): for the caller to say.
    char tokenizer_choice[512];
} vet_tokenize_summary;

// Runs the job. 0, or -1 with err: VET_E_USAGE for options that cannot work together (text with
// stats, no tokenizer), VET_E_IO for a file that cannot be read or written, VET_E_INPUT for a
// bad note, template or tokenizer. *sum is filled either way (the counts up to a failure) and is
// freed with vet_tokenize_summary_free.
int vet_tokenize_run(const vet_tokenize_opts *o, vet_tokenize_summary *sum, vet_err *err);
void vet_tokenize_summary_free(vet_tokenize_summary *sum);

#endif
