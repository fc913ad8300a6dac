// notes.h — a source of clinical notes: CSV (streamed), Alpaca JSON array, or JSONL (streamed).
//
// Each call to vet_notes_next yields one vet_note. CSV columns are found by name in the header
// row (defaults id, species, note, codes, disease; only the note column is required; other
// columns are ignored). Alpaca records give instruction/input/output as they are, species from
// `animal`, codes from `snomed_codes`, and the note is `input` less its prefix ("Clinical
// Note: " by default). A record without an id gets its 1-based record number.
#ifndef VET_NOTES_H
#define VET_NOTES_H

#include <stddef.h>
#include <stdio.h>

#include "base/err.h"

typedef enum { VET_NOTES_AUTO, VET_NOTES_CSV, VET_NOTES_JSON, VET_NOTES_JSONL } vet_notes_format;

typedef struct {
    vet_notes_format format;  // AUTO: by the name's suffix, else by the first non-space byte
    const char *id_col, *species_col, *note_col, *codes_col, *disease_col;  // NULL: defaults
    const char *note_prefix;  // stripped from an Alpaca `input` to give the note; NULL: "Clinical Note: "
} vet_notes_opts;

typedef struct {
    long line;                 // CSV/JSONL: the line the record starts on; JSON: record number
    long index;                // 1-based record number (rejected records count too)
    const char *id, *species, *note, *disease;  // never NULL ("" when absent)
    char **codes;              // gold labels, `;`-separated in CSV
    size_t n_codes;
    const char *instruction, *input, *output;  // Alpaca fields; NULL when the input has none
} vet_note;

enum { VET_NOTE_OK = 1, VET_NOTE_EOF = 0, VET_NOTE_BAD = -1, VET_NOTE_FATAL = -2, VET_NOTE_IOERR = -3 };

typedef struct vet_notes vet_notes;

// Reads from f (not closed by vet_notes_close); name appears in messages and decides the
// format by suffix (.csv, .json, .jsonl/.ndjson). Fails (NULL) on a bad header, an unparsable
// JSON file or a missing note column.
vet_notes *vet_notes_open(FILE *f, const char *name, const vet_notes_opts *opts, vet_err *err);
// VET_NOTE_OK (*out valid until the next call), VET_NOTE_EOF, VET_NOTE_BAD (this record is
// rejected: err says "name:line: why" and err->line is that line, vet_notes_reason gives the
// why alone and vet_notes_raw the record's text; the next call goes on), VET_NOTE_FATAL (bad
// input that cannot be skipped) or VET_NOTE_IOERR (read error, or out of memory).
int vet_notes_next(vet_notes *s, vet_note *out, vet_err *err);
// The current (or just rejected) record's text as it was in the input.
const char *vet_notes_raw(vet_notes *s, size_t *len);
// Why the last VET_NOTE_BAD record was rejected: its error's message without "name:line: ".
const char *vet_notes_reason(const vet_notes *s);
vet_notes_format vet_notes_format_of(const vet_notes *s);
const char *vet_notes_format_name(vet_notes_format f);
void vet_notes_close(vet_notes *s);

#endif
