// utf8.h — UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF).
#ifndef VET_UTF8_H
#define VET_UTF8_H

#include <stdbool.h>
#include <stddef.h>

// True when s[0..n) is well-formed UTF-8. On false, *bad_off (if not NULL) is the byte
// offset of the first byte of the first ill-formed sequence.
bool vet_utf8_valid(const char *s, size_t n, size_t *bad_off);

// A malloc'd, NUL-terminated copy of the string s in which every byte that starts no well-formed
// sequence is U+FFFD: what a name shows as in a JSON report (a file name is bytes, and JSON
// holds only UTF-8). NULL when out of memory.
char *vet_utf8_repair(const char *s);

#endif
