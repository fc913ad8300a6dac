// utf8.h — UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF) and
// the one way vet shows bytes that are not UTF-8: U+FFFD for each maximal ill-formed subpart
// (Unicode's "best practice", section 3.9; what Python's errors="replace" and Rust's
// from_utf8_lossy, hence Hugging Face tokenizers, print), so vet's output reads the same as theirs.
#ifndef VET_UTF8_H
#define VET_UTF8_H

#include <stdbool.h>
#include <stddef.h>

// The length (1 to 4) of the well-formed sequence that starts s[0..n), n > 0; or 0 when none
// starts there, and then *bad is the length of the maximal ill-formed subpart there (1 to 3: a
// stray byte, or the start of a sequence that is cut short or broken), which one U+FFFD replaces.
size_t vet_utf8_seq(const char *s, size_t n, size_t *bad);

// True when s[0..n) is well-formed UTF-8. On false, *bad_off (if not NULL) is the byte
// offset of the first byte of the first ill-formed sequence.
bool vet_utf8_valid(const char *s, size_t n, size_t *bad_off);

// A malloc'd, NUL-terminated copy of s[0..n) with each maximal ill-formed subpart replaced by
// U+FFFD; its length in *out_len when not NULL. NULL when out of memory.
char *vet_utf8_repair_n(const char *s, size_t n, size_t *out_len);

// vet_utf8_repair_n of a NUL-terminated string: what a file name shows as in a JSON report (a
// name is bytes, and JSON holds only UTF-8).
char *vet_utf8_repair(const char *s);

// The UTF-8 byte order mark (U+FEFF): what Notepad and Excel put before a file's text. It is
// invisible in an editor and in a message, and no format vet reads wants it.
#define VET_UTF8_BOM "\xEF\xBB\xBF"
// Its length (3) when s[0..n) starts with the mark, else 0: how many bytes to skip.
size_t vet_utf8_bom_len(const char *s, size_t n);

#endif
