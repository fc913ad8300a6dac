// err.h — how library code reports failure.
//
// Library functions never print and never exit. A function that can fail takes a
// `vet_err *` as its last argument, fills it with one human-readable line on failure
// and returns -1 (or NULL). Programs in tools/ print it as `vet-X: <msg>` and exit.
// Messages follow the shape `file:line: what is wrong (and what to do)`.
#ifndef VET_ERR_H
#define VET_ERR_H

#include <stdarg.h>

typedef struct {
    char msg[1024];
} vet_err;

// Sets err->msg from a printf format. Always returns -1 so callers can write
// `return vet_errf(err, "...")`. err may be NULL (message dropped).
int vet_errf(vet_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Prepends "prefix: " to an existing message (adds context on the way up).
int vet_err_prefix(vet_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
