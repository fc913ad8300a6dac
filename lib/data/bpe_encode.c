// bpe_encode.c — text to ids with a loaded vet_bpe, and ids back to bytes.
//
// The order is Hugging Face's: added tokens are cut out of the text first (those not
// "normalized" on the raw text; then each stretch between them is normalized, NFC when the
// tokenizer has it, and the "normalized" ones are cut out of that); each remaining stretch runs
// through the pre-tokenizer steps (Split, Digits, ByteLevel: each cuts the pieces of the step before); each
// final piece is spelled in the byte-level alphabet and merged by rank.
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "data/bpe_impl.h"
#include "data/bytelevel.h"

typedef struct { size_t off, len; } span;
typedef struct { size_t start, end; bool match; } cut;

// What one encode call needs; the model stays read-only, so threads may share it.
typedef struct {
    char *arena;             // the stretch being pre-tokenized, and prefixed copies of pieces
    size_t alen, acap;
    span *in, *out;          // the pieces before and after a step
    size_t nin, nout, capin, capout;
    cut *cuts;
    size_t ncut, capcut;
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
    int32_t *sym, *next, *prev;  // the symbols of one word (a linked list over positions)
    struct hent { int32_t rank, pos, left, right; } *heap;
    size_t nheap, capword;
    char *spell;             // a piece in the byte-level alphabet (ignore_merges looks it up)
} scratch;

// Grows *p (elements of size sz) to hold at least need; 0 or -1.
static int grow(void *p, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*(void **)p, c * sz);
    if (!q) return -1;
    *(void **)p = q;
    *cap = c;
    return 0;
}

static int push_id(int32_t **ids, size_t *n, size_t *cap, int32_t id) {
    if (grow(ids, cap, *n + 1, sizeof **ids) < 0) return -1;
    (*ids)[(*n)++] = id;
    return 0;
}

static void scratch_free(scratch *s) {
    free(s->arena), free(s->in), free(s->out), free(s->cuts);
    free(s->sym), free(s->next), free(s->prev), free(s->heap), free(s->spell);
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mc);
    pcre2_jit_stack_free(s->js);
}

static int scratch_init(scratch *s) {
    memset(s, 0, sizeof *s);
    s->md = pcre2_match_data_create(32, NULL);
    s->mc = pcre2_match_context_create(NULL);
    // Long runs of spaces against \s+(?!\S) need more than JIT's default 32 KB of stack.
    s->js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!s->md || !s->mc) return -1;
    if (s->js) pcre2_jit_stack_assign(s->mc, NULL, s->js);
    return 0;
}

// ---- pre-tokenization --------------------------------------------------------------------

static int add_cut(scratch *s, size_t a, size_t e, bool m) {
    if (grow(&s->cuts, &s->capcut, s->ncut + 1, sizeof *s->cuts) < 0) return -1;
    s->cuts[s->ncut++] = (cut){a, e, m};
    return 0;
}

static size_t utf8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

// The matches of re in subj[0..n) and the stretches between them, in order (s->cuts).
static int find_cuts(scratch *s, const pcre2_code *re, const char *subj, size_t n, vet_err *err) {
    s->ncut = 0;
    size_t pos = 0, prev = 0;
    while (pos <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)subj, n, pos, PCRE2_NO_UTF_CHECK, s->md, s->mc);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return vet_errf(err, "pre-tokenizer regex failed on a piece of %zu bytes: %s", n, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        size_t a = ov[0], e = ov[1];
        if ((a != prev && add_cut(s, prev, a, false) < 0) || add_cut(s, a, e, true) < 0)
            return vet_err_nomem(err, "out of memory");
        prev = e;
        if (e > a) pos = e;
        else if (e >= n) break;
        else pos = e + utf8_len((unsigned char)subj[e]);  // an empty match: step over one character
    }
    if (prev != n && add_cut(s, prev, n, false) < 0) return vet_err_nomem(err, "out of memory");
    return 0;
}

static int add_out(scratch *s, size_t off, size_t len) {
    if (len == 0) return 0;  // empty pieces are dropped, as Hugging Face does
    if (grow(&s->out, &s->capout, s->nout + 1, sizeof *s->out) < 0) return -1;
    s->out[s->nout++] = (span){off, len};
    return 0;
}

// s->cuts (offsets from base) into pieces by the Split behaviour (tokenizers' split rules).
static int apply_behavior(scratch *s, const bpe_step *st, size_t base) {
    size_t first = s->nout;
    bool prev_match = false;
    for (size_t i = 0; i < s->ncut; i++) {
        size_t j = st->behavior == BPE_MERGED_NEXT ? s->ncut - 1 - i : i;  // MergedWithNext folds from the right
        cut c = s->cuts[j];
        bool m = c.match != st->invert;
        bool have = s->nout > first;
        span *last = have ? &s->out[s->nout - 1] : NULL;
        switch (st->behavior) {
        case BPE_REMOVED: if (!m && add_out(s, base + c.start, c.end - c.start) < 0) return -1; break;
        case BPE_ISOLATED: if (add_out(s, base + c.start, c.end - c.start) < 0) return -1; break;
        case BPE_CONTIGUOUS:
            if (m == prev_match && have) last->len = base + c.end - last->off;
            else if (add_out(s, base + c.start, c.end - c.start) < 0) return -1;
            break;
        case BPE_MERGED_PREV:
            if (m && !prev_match && have) last->len = base + c.end - last->off;
            else if (add_out(s, base + c.start, c.end - c.start) < 0) return -1;
            break;
        case BPE_MERGED_NEXT:
            if (m && !prev_match && have) last->len += last->off - (base + c.start), last->off = base + c.start;
            else if (add_out(s, base + c.start, c.end - c.start) < 0) return -1;
            break;
        }
        prev_match = m;
    }
    if (st->behavior == BPE_MERGED_NEXT)  // pieces were made right to left
        for (size_t a = first, e = s->nout; a + 1 < e; a++, e--) { span t = s->out[a]; s->out[a] = s->out[e - 1]; s->out[e - 1] = t; }
    return 0;
}

// Appends bytes to the arena; returns their offset, or (size_t)-1 when out of memory.
static size_t arena_add(scratch *s, const char *pre, size_t npre, size_t from, size_t n) {
    if (grow(&s->arena, &s->acap, s->alen + npre + n + 1, 1) < 0) return (size_t)-1;
    size_t at = s->alen;
    memcpy(s->arena + at, pre, npre);
    if (n) memmove(s->arena + at + npre, s->arena + from, n);
    s->alen += npre + n;
    return at;
}

static int run_step(scratch *s, const bpe_step *st, vet_err *err) {
    s->nout = 0;
    for (size_t i = 0; i < s->nin; i++) {
        span p = s->in[i];
        if (st->prefix_space && s->arena[p.off] != ' ') {  // ByteLevel's add_prefix_space, per piece
            size_t at = arena_add(s, " ", 1, p.off, p.len);
            if (at == (size_t)-1) return vet_err_nomem(err, "out of memory");
            p = (span){at, p.len + 1};
        }
        if (!st->re) {
            if (add_out(s, p.off, p.len) < 0) return vet_err_nomem(err, "out of memory");
            continue;
        }
        if (find_cuts(s, st->re, s->arena + p.off, p.len, err) < 0) return -1;
        if (apply_behavior(s, st, p.off) < 0) return vet_err_nomem(err, "out of memory");
    }
    span *t = s->in; s->in = s->out; s->out = t;
    size_t c = s->capin; s->capin = s->capout; s->capout = c;
    s->nin = s->nout;
    return 0;
}

// ---- merges ------------------------------------------------------------------------------

static bool hless(const struct hent *a, const struct hent *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(scratch *s, const vet_bpe *b, int32_t pos) {
    int32_t nx = s->next[pos];
    if (nx < 0) return;
    const bpe_merge *m = bpe_merge_find(b, s->sym[pos], s->sym[nx]);
    if (!m) return;
    size_t i = s->nheap++;  // capacity: at most one live entry per position plus stale ones, see merge_word
    s->heap[i] = (struct hent){m->rank, pos, s->sym[pos], s->sym[nx]};
    while (i > 0 && hless(&s->heap[i], &s->heap[(i - 1) / 2])) {
        struct hent t = s->heap[i]; s->heap[i] = s->heap[(i - 1) / 2]; s->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static struct hent heap_pop(scratch *s) {
    struct hent top = s->heap[0];
    s->heap[0] = s->heap[--s->nheap];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && hless(&s->heap[l], &s->heap[m])) m = l;
        if (r < s->nheap && hless(&s->heap[r], &s->heap[m])) m = r;
        if (m == i) break;
        struct hent t = s->heap[i]; s->heap[i] = s->heap[m]; s->heap[m] = t;
        i = m;
    }
    return top;
}

// The symbols of one piece: a byte's one-character token, else its <0xAB> token (byte_fallback),
// else unk (fused when fuse_unk), else nothing (Hugging Face drops it too). Returns the count.
static int32_t initial_symbols(const vet_bpe *b, scratch *s, const unsigned char *p, size_t n) {
    int32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = b->byte_id[p[i]];
        if (id < 0 && b->byte_fallback) id = b->fallback_id[p[i]];
        if (id < 0 && b->unk_id >= 0) {
            if (b->fuse_unk && m > 0 && s->sym[m - 1] == b->unk_id) continue;
            id = b->unk_id;
        }
        if (id >= 0) s->sym[m++] = id;
    }
    return m;
}

// The per-word buffers, for a piece of n bytes.
static int word_scratch(scratch *s, size_t n) {
    if (s->capword >= n + 1) return 0;
    size_t c = n + 1;
    int32_t *a = realloc(s->sym, c * 4), *x = realloc(s->next, c * 4), *y = realloc(s->prev, c * 4);
    struct hent *h = realloc(s->heap, 3 * c * sizeof *h);  // n - 1 first pairs + 2 per merge (n - 1 merges)
    char *sp = realloc(s->spell, 2 * c + 1);
    if (a) s->sym = a;  // each kept, grown or not, so scratch_free frees it
    if (x) s->next = x;
    if (y) s->prev = y;
    if (h) s->heap = h;
    if (sp) s->spell = sp;
    if (!a || !x || !y || !h || !sp) return -1;
    s->capword = c;
    return 0;
}

// Merges a piece's symbols by rank, lowest first and leftmost among equals (a heap of candidate
// pairs, checked when taken: a pair whose symbols changed since it was pushed is stale).
static int merge_word(const vet_bpe *b, scratch *s, const char *p, size_t n, int32_t **ids, size_t *nid,
                      size_t *cap) {
    if (word_scratch(s, n) < 0) return -1;
    int32_t m = initial_symbols(b, s, (const unsigned char *)p, n);
    for (int32_t i = 0; i < m; i++) s->next[i] = i + 1 < m ? i + 1 : -1, s->prev[i] = i - 1;
    s->nheap = 0;
    for (int32_t i = 0; i + 1 < m; i++) heap_push(s, b, i);
    while (s->nheap) {
        struct hent h = heap_pop(s);
        int32_t nx = s->next[h.pos];
        if (s->sym[h.pos] != h.left || nx < 0 || s->sym[nx] != h.right) continue;  // stale
        s->sym[h.pos] = bpe_merge_find(b, h.left, h.right)->id;
        s->sym[nx] = -1;
        s->next[h.pos] = s->next[nx];
        if (s->next[nx] >= 0) s->prev[s->next[nx]] = h.pos;
        if (s->prev[h.pos] >= 0) heap_push(s, b, s->prev[h.pos]);
        heap_push(s, b, h.pos);
    }
    for (int32_t i = m > 0 ? 0 : -1; i >= 0; i = s->next[i])
        if (push_id(ids, nid, cap, s->sym[i]) < 0) return -1;
    return 0;
}

// One final piece: whole when ignore_merges and the vocabulary has it, else merged.
static int encode_piece(const vet_bpe *b, scratch *s, const char *p, size_t n, int32_t **ids, size_t *nid,
                        size_t *cap) {
    if (b->ignore_merges && n > 0) {
        if (word_scratch(s, n) < 0) return -1;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += (size_t)vet_bytelevel_utf8((uint8_t)p[i], s->spell + k);
        s->spell[k] = 0;
        long id = vet_strtab_find(&b->vocab, s->spell);
        if (id >= 0) return push_id(ids, nid, cap, (int32_t)id);
    }
    return merge_word(b, s, p, n, ids, nid, cap);
}

// A stretch of text with no added token in it: pre-tokenized, then each piece merged.
static int encode_plain(const vet_bpe *b, scratch *s, const char *text, size_t len, int32_t **ids, size_t *nid,
                        size_t *cap, vet_err *err) {
    if (len == 0) return 0;
    s->alen = 0;
    s->nin = 0;
    if (arena_add(s, "", 0, 0, 0) == (size_t)-1 || grow(&s->arena, &s->acap, len + 1, 1) < 0 ||
        grow(&s->in, &s->capin, 1, sizeof *s->in) < 0)
        return vet_err_nomem(err, "out of memory");
    memcpy(s->arena, text, len);
    s->alen = len;
    s->in[s->nin++] = (span){0, len};
    for (int k = 0; k < b->nsteps; k++)
        if (run_step(s, &b->steps[k], err) < 0) return -1;
    for (size_t i = 0; i < s->nin; i++)
        if (encode_piece(b, s, s->arena + s->in[i].off, s->in[i].len, ids, nid, cap) < 0)
            return vet_err_nomem(err, "out of memory");
    return 0;
}

// The longest added token of the pass (normalized or not) that starts at t[0..n), or NULL.
static const bpe_added *added_at(const vet_bpe *b, const char *t, size_t n, bool normalized) {
    if (!b->added_first[(unsigned char)t[0]]) return NULL;
    for (size_t k = 0; k < b->nadded; k++) {  // longest first
        const bpe_added *a = &b->added[k];
        if (a->normalized == normalized && a->len <= n && memcmp(a->text, t, a->len) == 0) return a;
    }
    return NULL;
}

static int encode_pass(const vet_bpe *b, scratch *s, const char *text, size_t len, bool normalized, int32_t **ids,
                       size_t *nid, size_t *cap, vet_err *err);

// A stretch between two raw-text added tokens: normalized on its own (as tokenizers does), then
// the second pass on the result.
static int encode_stretch(const vet_bpe *b, scratch *s, const char *text, size_t len, int32_t **ids, size_t *nid,
                          size_t *cap, vet_err *err) {
    char *norm;
    size_t nlen;
    int r = bpe_normalize(b, text, len, &norm, &nlen, err);
    if (r < 0) return -1;
    int rc = encode_pass(b, s, r ? norm : text, nlen, true, ids, nid, cap, err);
    free(norm);
    return rc;
}

// Cuts the added tokens of one pass out of text[0..len), leftmost then longest; the stretches
// between go to the next pass (pass 1: normalized, then the normalized tokens) or to encode_plain.
static int encode_pass(const vet_bpe *b, scratch *s, const char *text, size_t len, bool normalized, int32_t **ids,
                       size_t *nid, size_t *cap, vet_err *err) {
    size_t from = 0;
    for (size_t i = 0; i < len;) {
        const bpe_added *a = added_at(b, text + i, len - i, normalized);
        if (!a) { i++; continue; }
        int rc = normalized ? encode_plain(b, s, text + from, i - from, ids, nid, cap, err)
                            : encode_stretch(b, s, text + from, i - from, ids, nid, cap, err);
        if (rc < 0) return -1;
        if (push_id(ids, nid, cap, a->id) < 0) return vet_err_nomem(err, "out of memory");
        i += a->len;
        from = i;
    }
    return normalized ? encode_plain(b, s, text + from, len - from, ids, nid, cap, err)
                      : encode_stretch(b, s, text + from, len - from, ids, nid, cap, err);
}

int vet_bpe_encode(const vet_bpe *b, const char *text, size_t len, int32_t **ids, size_t *n, size_t *cap,
                   vet_err *err) {
    size_t bad;
    if (!vet_utf8_valid(text, len, &bad))
        return vet_errf(err, "text is not valid UTF-8 (byte %zu)", bad);
    scratch s;
    if (scratch_init(&s) < 0) { scratch_free(&s); return vet_err_nomem(err, "out of memory"); }
    int rc = encode_pass(b, &s, text, len, false, ids, n, cap, err);
    scratch_free(&s);
    return rc;
}

char *vet_bpe_decode_bytes(const vet_bpe *b, const int32_t *ids, size_t n, size_t *len, vet_err *err) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= b->n) {
            vet_errf(err, "id %d is out of range (the vocabulary has %d)", ids[i], b->n);
            return NULL;
        }
        if (!b->special[ids[i]]) total += b->dec_len[ids[i]];
    }
    char *out = malloc(total + 1);
    if (!out) { vet_err_nomem(err, "out of memory"); return NULL; }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!b->special[ids[i]]) memcpy(out + k, b->dec[ids[i]], b->dec_len[ids[i]]), k += b->dec_len[ids[i]];
    out[k] = 0;
    if (len) *len = k;
    return out;
}

int vet_bpe_vocab_size(const vet_bpe *b) { return b->n; }
int vet_bpe_unk_id(const vet_bpe *b) { return b->unk_id; }
const char *vet_bpe_id_to_piece(const vet_bpe *b, int id) { return id >= 0 && id < b->n ? b->vocab.str[id] : NULL; }
int vet_bpe_piece_to_id(const vet_bpe *b, const char *piece) { return (int)vet_strtab_find(&b->vocab, piece); }
int vet_bpe_is_special(const vet_bpe *b, int id) { return id >= 0 && id < b->n && b->special[id]; }
int vet_bpe_template_bos(const vet_bpe *b) { return b->tmpl_bos; }
int vet_bpe_template_eos(const vet_bpe *b) { return b->tmpl_eos; }
int vet_bpe_has_template(const vet_bpe *b) { return b->has_template; }
const char *vet_bpe_path(const vet_bpe *b) { return b->path; }
const char *vet_bpe_sha256(const vet_bpe *b) { return b->sha256; }
