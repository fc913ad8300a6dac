// bpe_normalize.c — the normalizers of a tokenizer.json that vet honours: none, NFC (Qwen2 and
// Qwen2.5 ship {"type": "NFC"}), and a Sequence whose members are all of those. Anything else
// (NFKC, NFD, Lowercase, Replace, Strip, ...) is refused by name, never applied differently.
//
// Where it runs is Hugging Face's (tokenizers' AddedVocabulary::extract_and_normalize): the added
// tokens with "normalized": false are cut out of the raw text first; each stretch between them is
// normalized on its own; the "normalized": true tokens, whose contents were normalized the same
// way when the tokenizer was read, are then matched in the normalized stretch; what is left goes
// to the pre-tokenizer. The Unicode tables are utf8proc's (Debian's libutf8proc), not vet's.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "data/bpe_impl.h"

// One normalizer, or the members of a Sequence, in order. NFC twice is NFC: a Sequence of NFCs
// (or an empty one) is just one flag.
static int read_one(json_t *nz, bool *nfc, vet_err *err) {
    const char *type = json_string_value(json_object_get(nz, "type"));
    if (type && strcmp(type, "Sequence") == 0) {
        json_t *items = json_object_get(nz, "normalizers"), *it;
        size_t i;
        if (!json_is_array(items)) return vet_errf(err, "normalizer Sequence: no \"normalizers\" array");
        json_array_foreach(items, i, it) if (read_one(it, nfc, err) < 0) return -1;
        return 0;
    }
    if (type && strcmp(type, "NFC") == 0) { *nfc = true; return 0; }
    return vet_errf(err, "normalizer %.40s is not supported (NFC and a Sequence of NFC are; or none)",
                    type ? type : "(no type)");
}

// A code point below U+0300 is never changed by NFC and never combines with what follows unless
// that is a mark at U+0300 or above. UTF-8 writes U+0300 and up with a lead byte of 0xCC or more
// (continuation bytes are 0x80-0xBF), so text without such a byte is NFC already: the DLO notes
// and most English text skip utf8proc entirely.
static bool surely_nfc(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0xCC) return false;
    return true;
}

int bpe_normalize(const vet_bpe *b, const char *s, size_t n, char **out, size_t *out_len, vet_err *err) {
    *out = NULL;
    *out_len = n;
    if (!b->nfc || surely_nfc(s, n)) return 0;
    if (n > (size_t)(PTRDIFF_MAX / 16)) return vet_errf(err, "a text of %zu bytes is too long to normalize", n);
    utf8proc_uint8_t *dst = NULL;
    // STABLE: no compatibility mappings (that would be NFKC); COMPOSE after the canonical
    // decomposition and reordering is NFC. Given a length, NUL bytes are ordinary characters.
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m == UTF8PROC_ERROR_NOMEM) return vet_err_nomem(err, "out of memory");
    if (m < 0)  // the caller checked the UTF-8 already: only a utf8proc that disagrees gets here
        return vet_errf(err, "NFC normalization failed on a text of %zu bytes: %s", n, utf8proc_errmsg(m));
    *out = (char *)dst;
    *out_len = (size_t)m;
    return 1;
}

// The "normalized": true added tokens are matched in normalized text, so their contents are
// normalized as well (tokenizers does the same when it builds its matcher), and they decode to
// the normalized content as tokenizers' decode does (checked in tests/reference/test_bpe.py).
// Their pieces in the vocabulary (what GGUF export writes) stay as the file spells them.
static int normalize_added(vet_bpe *b, vet_err *err) {
    bool changed = false;
    for (size_t k = 0; k < b->nadded; k++) {
        bpe_added *a = &b->added[k];
        char *t;
        size_t len;
        int r = a->normalized ? bpe_normalize(b, a->text, a->len, &t, &len, err) : 0;
        if (r < 0) return vet_err_prefix(err, "added token \"%.80s\"", a->text);
        if (r == 0) continue;
        if (len == a->len && memcmp(t, a->text, len) == 0) { free(t); continue; }
        changed = true;
        free(a->text);
        a->text = t, a->len = len;
        if (bpe_set_dec(b, a->id, t, len) < 0) return vet_err_nomem(err, "out of memory");
    }
    if (changed) bpe_index_added(b);  // lengths (so the longest-first order) may have changed
    return 0;
}

int bpe_read_normalizer(vet_bpe *b, json_t *nz, vet_err *err) {
    b->nfc = false;
    if (!nz || json_is_null(nz)) return 0;
    if (read_one(nz, &b->nfc, err) < 0) return -1;
    return normalize_added(b, err);
}
