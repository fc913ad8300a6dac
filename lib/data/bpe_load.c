// bpe_load.c — a tokenizer.json into a vet_bpe: the file (bounded read, sha256, JSON), the
// model's vocabulary, merges and added tokens, and the tables encode and decode use. The
// builders (bpe_set_vocab, bpe_added_*, bpe_merge*, bpe_finish_model) are shared with the GGUF
// reader (bpe_gguf.c), so both kinds of file make the same tables the same way.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/read_file.h"
#include "base/sha256.h"
#include "data/bpe_impl.h"
#include "data/bytelevel.h"

// Llama-3's tokenizer.json is 9 MB, Qwen2's 7 MB; nothing real comes near this.
#define BPE_MAX_FILE ((size_t)256 << 20)

// Reads one "id" out of a JSON value: an integer in [0, BPE_MAX_ID).
static int read_id(json_t *v, const char *what, const char *piece, int32_t *id, vet_err *err) {
    if (!json_is_integer(v))
        return vet_errf(err, "%s \"%.80s\": the id is not an integer", what, piece);
    json_int_t x = json_integer_value(v);
    if (x < 0 || x >= BPE_MAX_ID)
        return vet_errf(err, "%s \"%.80s\": id %lld out of range (0 to %d)", what, piece, (long long)x, BPE_MAX_ID - 1);
    *id = (int32_t)x;
    return 0;
}

// Puts piece at pieces[id]; two different pieces on one id is an error (one piece on two ids is
// caught when interning).
static int place(const char **pieces, int32_t id, const char *piece, vet_err *err) {
    if (pieces[id] && strcmp(pieces[id], piece) != 0)
        return vet_errf(err, "id %d is given to both \"%.80s\" and \"%.80s\"", id, pieces[id], piece);
    pieces[id] = piece;
    return 0;
}

// One added token: checked, recorded in b->added (its content is copied), placed in pieces.
static int read_added_token(vet_bpe *b, json_t *t, size_t i, const char **pieces, vet_err *err) {
    json_t *content = json_object_get(t, "content");
    if (!json_is_string(content) || json_string_length(content) == 0)
        return vet_errf(err, "added_tokens[%zu]: no \"content\" string", i);
    const char *s = json_string_value(content);
    int32_t id = -1;
    if (read_id(json_object_get(t, "id"), "added token", s, &id, err) < 0) return -1;
    static const char *unsupported[] = {"lstrip", "rstrip", "single_word"};
    for (int k = 0; k < 3; k++)
        if (json_is_true(json_object_get(t, unsupported[k])))
            return vet_errf(err, "added token \"%.80s\": %s is not supported", s, unsupported[k]);
    if (place(pieces, id, s, err) < 0) return -1;
    return bpe_added_push(b, s, json_string_length(content), id, json_is_true(json_object_get(t, "normalized")),
                          json_is_true(json_object_get(t, "special")), err);
}

int bpe_added_push(vet_bpe *b, const char *s, size_t len, int32_t id, bool normalized, bool special, vet_err *err) {
    bpe_added *a = &b->added[b->nadded++];
    a->len = len;
    a->text = malloc(len + 1);
    if (!a->text) return vet_err_nomem(err, "out of memory");
    memcpy(a->text, s, len);
    a->text[len] = 0;
    a->id = id;
    a->normalized = normalized;
    a->special = special;
    return 0;
}

static int by_length_desc(const void *x, const void *y) {
    const bpe_added *a = x, *c = y;
    return a->len < c->len ? 1 : a->len > c->len ? -1 : 0;
}

int bpe_added_reserve(vet_bpe *b, size_t n, vet_err *err) {
    if (!(b->added = calloc(n + 1, sizeof *b->added))) return vet_err_nomem(err, "out of memory");
    return 0;
}

// The largest id in the vocabulary and the added tokens (values checked on the way).
static int max_id(json_t *vocab, json_t *added, int32_t *maxid, vet_err *err) {
    const char *key;
    json_t *v;
    *maxid = -1;
    json_object_foreach(vocab, key, v) {
        int32_t id = -1;
        if (read_id(v, "model.vocab", key, &id, err) < 0) return -1;
        if (id > *maxid) *maxid = id;
    }
    size_t i;
    json_array_foreach(added, i, v) {
        int32_t id = -1;
        if (!json_is_object(v)) return vet_errf(err, "added_tokens[%zu] is not an object", i);
        if (read_id(json_object_get(v, "id"), "added token", json_string_value(json_object_get(v, "content")) ?: "?", &id, err) < 0) return -1;
        if (id > *maxid) *maxid = id;
    }
    if (*maxid < 0) return vet_errf(err, "model.vocab is empty");
    return 0;
}

// The vocabulary and the added tokens: every id from 0 to the largest holds exactly one piece,
// interned in id order so that the string table's ids are the token ids.
static int read_vocab(vet_bpe *b, json_t *model, json_t *added, vet_err *err) {
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab)) return vet_errf(err, "model.vocab is missing or not an object");
    if (added && !json_is_array(added)) return vet_errf(err, "added_tokens is not an array");
    int32_t maxid;
    if (max_id(vocab, added, &maxid, err) < 0) return -1;
    b->n = maxid + 1;
    const char **pieces = calloc((size_t)b->n, sizeof *pieces);
    if (!pieces) return vet_err_nomem(err, "out of memory");
    if (bpe_added_reserve(b, json_array_size(added), err) < 0) { free(pieces); return -1; }
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(vocab, key, v) {
        if (key[0] == 0) { rc = vet_errf(err, "model.vocab has an empty piece"); break; }
        if ((rc = place(pieces, (int32_t)json_integer_value(v), key, err)) < 0) break;
    }
    size_t i;
    json_array_foreach(added, i, v) {
        if (rc < 0) break;
        rc = read_added_token(b, v, i, pieces, err);
    }
    if (rc == 0) rc = bpe_set_vocab(b, pieces, b->n, err);
    free(pieces);
    return rc;
}

int bpe_set_vocab(vet_bpe *b, const char *const *pieces, int32_t n, vet_err *err) {
    b->n = n;
    for (int32_t id = 0; id < n; id++) {
        if (!pieces[id]) return vet_errf(err, "id %d has no piece (ids must run from 0 without a gap)", id);
        long got = vet_strtab_intern(&b->vocab, pieces[id]);
        if (got < 0) return vet_err_nomem(err, "out of memory");
        if (got != id) return vet_errf(err, "\"%.80s\" has two ids, %ld and %d", pieces[id], got, id);
    }
    return 0;
}

static size_t merge_slot(const vet_bpe *b, uint64_t key) {
    uint64_t h = (key ^ (key >> 29)) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & b->merge_mask;
}

const bpe_merge *bpe_merge_find(const vet_bpe *b, int32_t a, int32_t c) {
    if (!b->merges) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(c + 1);
    for (size_t s = merge_slot(b, key);; s = (s + 1) & b->merge_mask) {
        if (b->merges[s].key == key) return &b->merges[s];
        if (b->merges[s].key == 0) return NULL;
    }
}

// A later merge of the same pair replaces the earlier (Hugging Face collects them into a map).
static void merge_put(vet_bpe *b, int32_t a, int32_t c, int32_t rank, int32_t id) {
    uint64_t key = ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(c + 1);
    size_t s = merge_slot(b, key);
    while (b->merges[s].key != 0 && b->merges[s].key != key) s = (s + 1) & b->merge_mask;
    b->merges[s] = (bpe_merge){key, rank, id};
}

// One merge, in either form, to its two halves (copied into buf, each NUL-terminated).
static int merge_halves(json_t *m, size_t i, char *buf, size_t cap, const char **x, const char **y, vet_err *err) {
    const char *s1, *s2;
    size_t n1, n2;
    if (json_is_string(m)) {  // "a b": exactly one space, as Hugging Face reads it
        const char *s = json_string_value(m), *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' ') || sp == s || sp[1] == 0)
            return vet_errf(err, "model.merges[%zu] \"%.80s\" is not two pieces separated by one space", i, s);
        s1 = s, n1 = (size_t)(sp - s), s2 = sp + 1, n2 = strlen(sp + 1);
    } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
               json_is_string(json_array_get(m, 1))) {
        s1 = json_string_value(json_array_get(m, 0)), n1 = json_string_length(json_array_get(m, 0));
        s2 = json_string_value(json_array_get(m, 1)), n2 = json_string_length(json_array_get(m, 1));
    } else {
        return vet_errf(err, "model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", i);
    }
    if (n1 + n2 + 3 > cap) return vet_errf(err, "model.merges[%zu] is too long", i);
    memcpy(buf, s1, n1), buf[n1] = 0;
    memcpy(buf + n1 + 1, s2, n2), buf[n1 + 1 + n2] = 0;
    *x = buf, *y = buf + n1 + 1;
    return 0;
}

int bpe_merges_reserve(vet_bpe *b, size_t nm, vet_err *err) {
    size_t tab = 16;
    while (tab < 2 * nm) tab *= 2;
    b->merges = calloc(tab, sizeof *b->merges);
    b->merge_mask = tab - 1;
    return b->merges ? 0 : vet_err_nomem(err, "out of memory");
}

int bpe_merge_add(vet_bpe *b, const char *what, size_t i, const char *x, const char *y, vet_err *err) {
    char joined[2048];
    long ia = vet_strtab_find(&b->vocab, x), ib = vet_strtab_find(&b->vocab, y);
    if ((size_t)snprintf(joined, sizeof joined, "%s%s", x, y) >= sizeof joined)
        return vet_errf(err, "%s[%zu] is too long", what, i);
    long ij = vet_strtab_find(&b->vocab, joined);
    if (ia < 0 || ib < 0 || ij < 0)
        return vet_errf(err, "%s[%zu] \"%.60s\" + \"%.60s\": \"%.60s\" is not in the vocabulary", what, i, x, y,
                        ia < 0 ? x : ib < 0 ? y : joined);
    if (i >= (size_t)INT32_MAX) return vet_errf(err, "%s: too many", what);
    merge_put(b, (int32_t)ia, (int32_t)ib, (int32_t)i, (int32_t)ij);
    return 0;
}

static int read_merges(vet_bpe *b, json_t *model, vet_err *err) {
    json_t *merges = json_object_get(model, "merges");
    if (!merges) merges = json_array();  // no merges: a byte-per-token model
    else json_incref(merges);
    if (!json_is_array(merges)) { json_decref(merges); return vet_errf(err, "model.merges is not an array"); }
    size_t nm = json_array_size(merges);
    char *buf = malloc(2048);
    int rc = !buf ? vet_err_nomem(err, "out of memory") : bpe_merges_reserve(b, nm, err);
    for (size_t i = 0; rc == 0 && i < nm; i++) {
        const char *x = NULL, *y = NULL;
        if ((rc = merge_halves(json_array_get(merges, i), i, buf, 2048, &x, &y, err)) < 0) break;
        rc = bpe_merge_add(b, "model.merges", i, x, y, err);
    }
    free(buf);
    json_decref(merges);
    return rc;
}

// The model's flags: what is honoured is read, what is not is refused by name.
static int read_flags(vet_bpe *b, json_t *model, vet_err *err) {
    json_t *v = json_object_get(model, "dropout");
    if (v && !json_is_null(v) && json_number_value(v) > 0)
        return vet_errf(err, "model.dropout is set (vet tokenizes deterministically)");
    static const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        v = json_object_get(model, affixes[k]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return vet_errf(err, "model.%s is set (not supported)", affixes[k]);
    }
    b->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    b->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    b->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    b->unk_id = -1;
    v = json_object_get(model, "unk_token");
    if (json_is_string(v)) {
        long id = vet_strtab_find(&b->vocab, json_string_value(v));
        if (id < 0) return vet_errf(err, "model.unk_token \"%.80s\" is not in the vocabulary", json_string_value(v));
        b->unk_id = (int32_t)id;
    } else if (v && !json_is_null(v)) {
        return vet_errf(err, "model.unk_token is not a string");
    }
    return 0;
}

void bpe_index_added(vet_bpe *b) {
    qsort(b->added, b->nadded, sizeof *b->added, by_length_desc);
    memset(b->added_first, 0, sizeof b->added_first);
    for (size_t k = 0; k < b->nadded; k++) b->added_first[(unsigned char)b->added[k].text[0]] = 1;
}

int bpe_set_dec(vet_bpe *b, int32_t id, const char *p, size_t len) {
    uint8_t *out = malloc(len + 1);
    if (!out) return -1;
    long m = vet_bytelevel_decode(p, len, out);
    if (m < 0) { memcpy(out, p, len); m = (long)len; }
    out[m] = 0;
    free(b->dec[id]);
    b->dec[id] = (char *)out;
    b->dec_len[id] = (uint32_t)m;
    return 0;
}

// What each id decodes to (bpe_set_dec: a byte-level spelling gives its bytes, a piece outside
// the alphabet its own UTF-8). Special tokens give nothing.
int bpe_finish_model(vet_bpe *b, vet_err *err) {
    bpe_index_added(b);
    b->dec = calloc((size_t)b->n, sizeof *b->dec);
    b->dec_len = calloc((size_t)b->n, sizeof *b->dec_len);
    b->special = calloc((size_t)b->n, 1);
    if (!b->dec || !b->dec_len || !b->special) return vet_err_nomem(err, "out of memory");
    for (int32_t id = 0; id < b->n; id++)
        if (bpe_set_dec(b, id, b->vocab.str[id], strlen(b->vocab.str[id])) < 0)
            return vet_err_nomem(err, "out of memory");
    for (int c = 0; c < 256; c++) {
        char s[8];
        int k = vet_bytelevel_utf8((uint8_t)c, s);
        s[k] = 0;
        b->byte_id[c] = (int32_t)vet_strtab_find(&b->vocab, s);
        snprintf(s, sizeof s, "<0x%02X>", c);
        b->fallback_id[c] = (int32_t)vet_strtab_find(&b->vocab, s);
    }
    for (size_t k = 0; k < b->nadded; k++)
        if (b->added[k].special) b->special[b->added[k].id] = 1;
    return 0;
}

int bpe_load_model(vet_bpe *b, json_t *root, vet_err *err) {
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) return vet_errf(err, "no \"model\" object (not a tokenizer.json)");
    json_t *type = json_object_get(model, "type");
    if (!json_is_string(type)) return vet_errf(err, "model.type is missing");
    if (strcmp(json_string_value(type), "BPE") != 0)
        return vet_errf(err, "model.type is \"%.40s\": only BPE is supported", json_string_value(type));
    json_t *added = json_object_get(root, "added_tokens");
    if (json_is_null(added)) added = NULL;
    if (read_vocab(b, model, added, err) < 0 || read_flags(b, model, err) < 0 || read_merges(b, model, err) < 0)
        return -1;
    return bpe_finish_model(b, err);
}

vet_bpe *vet_bpe_load(const char *path, vet_err *err) {
    char *text;
    size_t len;
    if (vet_read_file(path, "tokenizer.json", BPE_MAX_FILE, &text, &len, err) < 0) return NULL;
    vet_bpe *b = calloc(1, sizeof *b);
    if (!b || !(b->path = strdup(path))) {
        free(text), free(b);
        vet_err_nomem(err, "%s: out of memory", path);
        return NULL;
    }
    vet_sha256_hex(text, len, b->sha256);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    int rc;
    if (!root) {
        rc = vet_errf(err, "line %d: not valid JSON: %s", je.line, je.text);
        vet_err_at_line(err, je.line);
    } else if (!json_is_object(root)) {
        rc = vet_errf(err, "not a JSON object (not a tokenizer.json)");
    } else {
        rc = bpe_load_model(b, root, err);
        if (rc == 0) rc = bpe_load_pipeline(b, root, err);
    }
    json_decref(root);
    if (rc < 0) {
        vet_err_prefix(err, "%s", path);
        vet_bpe_free(b);
        return NULL;
    }
    return b;
}

void vet_bpe_free(vet_bpe *b) {
    if (!b) return;
    for (int32_t id = 0; b->dec && id < b->n; id++) free(b->dec[id]);
    for (size_t k = 0; k < b->nadded; k++) free(b->added[k].text);
    for (int k = 0; k < b->nsteps; k++) pcre2_code_free(b->steps[k].re);
    free(b->dec), free(b->dec_len), free(b->special), free(b->added), free(b->merges), free(b->path);
    vet_strtab_free(&b->vocab);
    free(b);
}
