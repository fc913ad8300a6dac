// utf8.h — UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF).
#ifndef VET_UTF8_H
#define VET_UTF8_H

#include <stdbool.h>
#include <stddef.h>

// True when s[0..n) is well-formed UTF-8. On false, *bad_off (if not NULL) is the byte
// offset of the first byte of the first ill-formed sequence.
bool vet_utf8_valid(const char *s, size_t n, size_t *bad_off);

#endif
