// trim.h — the blanks around a string, one rule for every reader: what C's isspace calls space
// in the "C" locale (space, \t, \n, \v, \f, \r), never a locale's idea of it and never a byte of
// a UTF-8 sequence. A label, a code, a species or a column name read from a file means the same
// with or without them.
#ifndef VET_TRIM_H
#define VET_TRIM_H

#include <stdbool.h>
#include <stddef.h>

// One of the six ASCII blanks.
static inline bool vet_is_blank(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// The span of s[0..*len) without its blanks at both ends: returns its start and sets *len to its
// length (0 for a blank string). s is not changed.
const char *vet_trim_span(const char *s, size_t *len);

// s without its blanks, in place: the trailing ones are cut with a NUL, and the start of what is
// left is returned (a pointer into s).
char *vet_trim(char *s);

// True when s holds nothing but blanks (or nothing).
bool vet_is_blank_str(const char *s);

#endif
