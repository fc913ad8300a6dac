// err.h — how library code reports failure.
//
// Library functions never print and never exit. A function that can fail takes a
// `vet_err *` as its last argument, fills it on failure and returns -1 (or NULL). An error
// has a kind (what went wrong, for the program to act on), the input line it is about (0 when
// none) and one human-readable line of text (for the person). Programs in tools/ print the
// text as `vet-X: <msg>` and choose their exit status from the kind alone (tools/cli.h,
// cli_exit_status): no program reads the text to decide anything.
// Messages follow the shape `file:line: what is wrong (and what to do)`.
#ifndef VET_ERR_H
#define VET_ERR_H

#include <stdarg.h>

typedef enum {
    VET_E_INPUT = 0,   // input that is not what it should be (a bad row, stream, model): the default
    VET_E_USAGE,       // settings that cannot work together, found only once the inputs are known
    VET_E_IO,          // a file could not be opened, read, written, synced or renamed
    VET_E_NOMEM,       // an allocation failed
    VET_E_NONFINITE,   // a NaN or Inf where a finite number must be (loss, gradient, weight)
} vet_err_kind;

typedef struct {
    vet_err_kind kind;
    long line;         // the input line (or record) the error is about; 0 when none
    char msg[1024];
} vet_err;

// Sets err's text from a printf format, its kind to VET_E_INPUT and its line to 0. Always
// returns -1 so callers can write `return vet_errf(err, "...")`. err may be NULL (dropped).
int vet_errf(vet_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// The same with an explicit kind: `return vet_err_kindf(err, VET_E_IO, "%s: ...", path)`.
int vet_err_kindf(vet_err *err, vet_err_kind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

// Shorthands for the common kinds.
int vet_err_io(vet_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vet_err_nomem(vet_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Prepends "prefix: " to an existing message (adds context on the way up); kind and line stay.
int vet_err_prefix(vet_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// An error about line `line` of file `name` (kind VET_E_INPUT): "name:line: <fmt>", err->line
// set. Returns -1. The one way readers of line-based inputs say where the input is wrong.
int vet_err_at(vet_err *err, const char *name, long line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

// Sets the line the error is about (kept by vet_err_prefix); returns -1.
int vet_err_at_line(vet_err *err, long line);

// A short name for a kind ("bad input", "usage", "I/O", "out of memory", "non-finite").
const char *vet_err_kind_name(vet_err_kind kind);

#endif
