// bytelevel.c — see bytelevel.h. The map is computed, not tabulated: bytes that print stand for
// themselves, the rest are numbered from U+0100 in byte order.
#include "data/bytelevel.h"

static int prints(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

// Both directions, filled on first use (idempotent: racing threads write the same values).
static uint16_t cp_of[256];
static int16_t byte_of[0x100 + 68];
static volatile int ready;

static void fill(void) {
    if (ready) return;
    unsigned k = 0;
    for (unsigned b = 0; b < 256; b++) cp_of[b] = (uint16_t)(prints(b) ? b : 0x100 + k++);
    for (unsigned c = 0; c < sizeof byte_of / sizeof byte_of[0]; c++) byte_of[c] = -1;
    for (unsigned b = 0; b < 256; b++) byte_of[cp_of[b]] = (int16_t)b;
    ready = 1;
}

uint32_t vet_bytelevel_cp(uint8_t b) {
    fill();
    return cp_of[b];
}

int vet_bytelevel_utf8(uint8_t b, char out[2]) {
    fill();
    uint32_t c = cp_of[b];
    if (c < 0x80) { out[0] = (char)c; return 1; }
    out[0] = (char)(0xC0 | (c >> 6));  // every code point of the alphabet is below U+0800
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
}

int vet_bytelevel_byte(uint32_t cp) {
    fill();
    return cp < sizeof byte_of / sizeof byte_of[0] ? byte_of[cp] : -1;
}

long vet_bytelevel_decode(const char *s, size_t n, uint8_t *out) {
    long m = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        if (c < 0x80) { cp = c; i += 1; }
        else if ((c & 0xE0) == 0xC0 && i + 1 < n) { cp = ((uint32_t)(c & 0x1F) << 6) | ((unsigned char)s[i + 1] & 0x3F); i += 2; }
        else return -1;  // three- and four-byte characters are never in the alphabet
        int b = vet_bytelevel_byte(cp);
        if (b < 0) return -1;
        out[m++] = (uint8_t)b;
    }
    return m;
}
