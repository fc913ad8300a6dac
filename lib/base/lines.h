// lines.h — a line-based text file read one line at a time, bounded, whatever its line ends.
//
// getline() knows only LF: a file from an old Mac or some Excel exports (CR alone) reads as one
// line, and /dev/zero or a huge file with no line end reads until memory runs out. This reader
// ends a line at LF, CR or CRLF (mixed in one file too) and refuses a line longer than its bound.
#ifndef VET_LINES_H
#define VET_LINES_H

#include <stddef.h>
#include <stdio.h>

#include "base/err.h"

typedef struct {
    FILE *f;
    const char *name;   // for messages
    size_t max;         // longest line accepted, in bytes
    char *buf;          // the current line, NUL-terminated, without its line end (may hold NULs)
    size_t len, cap;
    long lineno;        // 1-based number of the current line
} vet_lines;

// Reads f (not closed by vet_lines_free); name appears in messages.
void vet_lines_init(vet_lines *L, FILE *f, const char *name, size_t max);

// 1: the next line is in L->buf (L->len bytes); 0: end of input; -1 with err: a line longer
// than max ("name:N: line longer than M bytes (is this a text file?)", VET_E_INPUT, err->line
// set), a read error (VET_E_IO) or no memory. After -1 the reader is at no defined place.
int vet_lines_next(vet_lines *L, vet_err *err);

void vet_lines_free(vet_lines *L);

#endif
