// utf8.c — see utf8.h. The byte ranges are Table 3-7 of the Unicode standard.
#include "base/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t vet_utf8_bom_len(const char *s, size_t n) {
    const size_t len = sizeof VET_UTF8_BOM - 1;
    return n >= len && memcmp(s, VET_UTF8_BOM, len) == 0 ? len : 0;
}

size_t vet_utf8_seq(const char *s, size_t n, size_t *bad) {
    const uint8_t *p = (const uint8_t *)s;
    uint8_t c = p[0];
    if (c < 0x80) return 1;  // ASCII: the common case
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
    else { *bad = 1; return 0; }
    // The subpart grows while each byte could still continue a well-formed sequence.
    size_t k = 1;
    for (; k < len && k < n; k++)
        if (p[k] < (k == 1 ? lo : 0x80) || p[k] > (k == 1 ? hi : 0xBF)) break;
    if (k == len) return len;
    *bad = k;
    return 0;
}

bool vet_utf8_valid(const char *s, size_t n, size_t *bad_off) {
    size_t i = 0, bad;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) { i++; continue; }  // no call for ASCII
        size_t len = vet_utf8_seq(s + i, n - i, &bad);
        if (!len) {
            if (bad_off) *bad_off = i;
            return false;
        }
        i += len;
    }
    return true;
}

char *vet_utf8_repair_n(const char *s, size_t n, size_t *out_len) {
    char *out = malloc(3 * n + 1);  // a bad byte becomes at most 3
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t bad, len = vet_utf8_seq(s + i, n - i, &bad);
        if (len) memcpy(out + k, s + i, len), k += len, i += len;
        else memcpy(out + k, "\xEF\xBF\xBD", 3), k += 3, i += bad;
    }
    out[k] = 0;
    if (out_len) *out_len = k;
    return out;
}

char *vet_utf8_repair(const char *s) { return vet_utf8_repair_n(s, strlen(s), NULL); }
