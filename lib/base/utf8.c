// utf8.c — see utf8.h. The byte ranges are Table 3-7 of the Unicode standard.
#include "base/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool vet_utf8_valid(const char *s, size_t n, size_t *bad_off) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) { i++; continue; }  // ASCII: the common case
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c == 0xE0) { len = 3; lo = 0xA0; }           // no overlongs
        else if (c >= 0xE1 && c <= 0xEC) len = 3;
        else if (c == 0xED) { len = 3; hi = 0x9F; }           // no surrogates
        else if (c >= 0xEE && c <= 0xEF) len = 3;
        else if (c == 0xF0) { len = 4; lo = 0x90; }           // no overlongs
        else if (c >= 0xF1 && c <= 0xF3) len = 4;
        else if (c == 0xF4) { len = 4; hi = 0x8F; }           // nothing past U+10FFFF
        else goto bad;
        if (i + len > n) goto bad;
        if (p[i + 1] < lo || p[i + 1] > hi) goto bad;
        for (size_t k = 2; k < len; k++)
            if (p[i + k] < 0x80 || p[i + k] > 0xBF) goto bad;
        i += len;
    }
    return true;
bad:
    if (bad_off) *bad_off = i;
    return false;
}

char *vet_utf8_repair(const char *s) {
    size_t n = strlen(s), k = 0;
    char *out = malloc(3 * n + 1);  // a bad byte becomes 3
    if (!out) return NULL;
    for (size_t i = 0; i < n;) {
        size_t off;
        if (vet_utf8_valid(s + i, n - i, &off)) off = n - i;
        memcpy(out + k, s + i, off), k += off, i += off;  // the well-formed run
        if (i < n) memcpy(out + k, "\xEF\xBF\xBD", 3), k += 3, i++;
    }
    out[k] = 0;
    return out;
}
