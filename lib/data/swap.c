// swap.c — species swap tables and whole-word replacement (see swap.h).
#include "data/swap.h"

#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

static int is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
static unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c; }
static unsigned char upper(unsigned char c) { return c >= 'a' && c <= 'z' ? (unsigned char)(c - 32) : c; }

static int same_name(const char *x, const char *y) {
    for (; *x && *y; x++, y++)
        if (lower((unsigned char)*x) != lower((unsigned char)*y)) return 0;
    return *x == *y;
}

void vet_swap_free(vet_swap *s) {
    for (int i = 0; i < s->n; i++) free(s->a[i]), free(s->b[i]);
    s->n = 0;
}

int vet_swap_parse(const char *spec, vet_swap *s, vet_err *err) {
    memset(s, 0, sizeof *s);
    // The names become a copy's species, id and note words: bytes that are not UTF-8 would be
    // records other readers cannot decode (the notes' own text is checked).
    size_t off;
    if (!vet_utf8_valid(spec, strlen(spec), &off))
        return vet_err_kindf(err, VET_E_USAGE, "--species-swap is not valid UTF-8 (byte %zu)", off + 1);
    const char *p = spec;
    for (;;) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p || eq + 1 == p + len || memchr(eq + 1, '=', (size_t)(p + len - eq - 1))) {
            vet_swap_free(s);
            return vet_err_kindf(err, VET_E_USAGE, "--species-swap '%.*s': expected A=B, two species names (as in 'Cow=Buffalo,Sheep=Goat')",
                            (int)len, p);
        }
        if (s->n == VET_SWAP_MAX_PAIRS) {
            vet_swap_free(s);
            return vet_err_kindf(err, VET_E_USAGE, "--species-swap: more than %d pairs", VET_SWAP_MAX_PAIRS);
        }
        s->a[s->n] = strndup(p, (size_t)(eq - p));
        s->b[s->n] = strndup(eq + 1, (size_t)(p + len - eq - 1));
        s->n++;
        if (!s->a[s->n - 1] || !s->b[s->n - 1]) {
            vet_swap_free(s);
            return vet_err_nomem(err, "out of memory");
        }
        if (!p[len]) break;
        p += len + 1;
    }
    // Every name once: a species with two partners would make its copy ambiguous.
    for (int i = 0; i < 2 * s->n; i++)
        for (int j = i + 1; j < 2 * s->n; j++) {
            const char *x = i % 2 ? s->b[i / 2] : s->a[i / 2], *y = j % 2 ? s->b[j / 2] : s->a[j / 2];
            if (same_name(x, y)) {
                vet_err_kindf(err, VET_E_USAGE, "--species-swap '%s': '%s' appears twice (each species has one partner)", spec, x);
                vet_swap_free(s);
                return -1;
            }
        }
    return 0;
}

const char *vet_swap_partner(const vet_swap *s, const char *species) {
    for (int i = 0; i < s->n; i++) {
        if (same_name(species, s->a[i])) return s->b[i];
        if (same_name(species, s->b[i])) return s->a[i];
    }
    return NULL;
}

// The replacement for one matched word: `to`, its first letter in the case of the word's
// first letter, or all of it upper case when the word is (two letters or more).
static int append_cased(vet_text *out, const char *word, size_t wlen, const char *to) {
    int all_upper = wlen > 1;
    for (size_t i = 0; i < wlen; i++)
        if (lower((unsigned char)word[i]) == (unsigned char)word[i] && upper((unsigned char)word[i]) != (unsigned char)word[i])
            all_upper = 0;
    size_t start = out->len;
    if (vet_text_append(out, to, strlen(to))) return -1;
    unsigned char first = (unsigned char)word[0];
    for (size_t i = start; i < out->len; i++) {
        unsigned char c = (unsigned char)out->s[i];
        if (all_upper) c = upper(c);
        else if (i == start) c = upper(first) == first && lower(first) != first ? upper(c) : lower(c);
        out->s[i] = (char)c;
    }
    return 0;
}

int vet_swap_words(const char *text, const char *from, const char *to, vet_text *out, vet_err *err) {
    size_t flen = strlen(from), n = strlen(text), i = 0, kept = 0;
    int replaced = 0;
    while (flen > 0 && i + flen <= n) {
        int at_start = i == 0 || !is_word_byte((unsigned char)text[i - 1]);
        int match = at_start && (i + flen == n || !is_word_byte((unsigned char)text[i + flen]));
        for (size_t k = 0; match && k < flen; k++)
            match = lower((unsigned char)text[i + k]) == lower((unsigned char)from[k]);
        if (!match) {
            i++;
            continue;
        }
        if (vet_text_append(out, text + kept, i - kept) || append_cased(out, text + i, flen, to))
            return vet_err_nomem(err, "out of memory");
        replaced++;
        i += flen;
        kept = i;
    }
    if (vet_text_append(out, text + kept, n - kept)) return vet_err_nomem(err, "out of memory");
    return replaced;
}
