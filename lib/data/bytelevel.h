// bytelevel.h — GPT-2's byte-level alphabet: every byte 0..255 is shown as one printable Unicode
// character, so that a byte-level BPE vocabulary (tokenizer.json) can spell any byte string as
// text. Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68
// (controls, space, DEL, NBSP, soft hyphen) take U+0100 upwards in byte order (space is 'Ġ',
// U+0120; newline 'Ċ', U+010A).
#ifndef VET_BYTELEVEL_H
#define VET_BYTELEVEL_H

#include <stddef.h>
#include <stdint.h>

// The code point that stands for byte b.
uint32_t vet_bytelevel_cp(uint8_t b);

// Writes the UTF-8 of byte b's character to out (1 or 2 bytes, no NUL); returns the length.
int vet_bytelevel_utf8(uint8_t b, char out[2]);

// The byte a code point stands for, or -1 when cp is not in the alphabet.
int vet_bytelevel_byte(uint32_t cp);

// Decodes a byte-level spelling s[0..n) (valid UTF-8) into bytes at out (at most n bytes):
// returns how many, or -1 when a character of s is not in the alphabet.
long vet_bytelevel_decode(const char *s, size_t n, uint8_t *out);

#endif
