// bpe_gguf.c — a byte-level BPE tokenizer from a GGUF file's metadata (llama.cpp's
// tokenizer.ggml.* keys), so a GGUF model needs no separate tokenizer file.
//
// What is built, and why it equals what the file's other readers build:
//   vocabulary   tokenizer.ggml.tokens in id order. A token spelled outside GPT-2's byte alphabet
//                (an added token holding a space or a newline) is respelled in it, as
//                transformers' GGUF converter does, so the BPE sees every token the same way.
//   added tokens token_type 3 (control) whose spelling is all in the byte alphabet: special, matched
//                whole before pre-tokenization, decoding to nothing; token_type 4 (user-defined),
//                same test: matched whole, not special; the BOS/EOS/UNK/PAD tokens: special
//                (transformers adds its special tokens so). Other types (1 normal, 2 unknown,
//                5 unused, 6 byte) are ordinary vocabulary.
//   merges       tokenizer.ggml.merges, "a b" strings, rank = position.
//   pre-tokenizer by tokenizer.ggml.pre, as llama.cpp defines each name (its regexes, applied in
//                turn, each splitting the pieces of the one before; see pre_table). A name not in
//                the table is refused by name: a guessed pre-tokenizer tokenizes silently wrong.
//   BOS/EOS/...  tokenizer.ggml.{bos,eos,unknown,padding}_token_id; tokenizer.ggml.add_bos_token
//                (absent: llama.cpp's default for the pre-tokenizer); add_eos_token true refused.
// tokenizer.ggml.model "llama" (SentencePiece) is data/spm_gguf.c's (tokenizer.c sends it there);
// every other model is refused by name.
//
// The sha256 that names the tokenizer in stream headers is over a canonical serialization of
// exactly these keys (docs/formats.md), not over the file: a requantized copy of the same model
// has the same tokenizer and the same hash, and hashing never reads the weights.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "base/utf8.h"
#include "data/bpe_impl.h"
#include "data/bytelevel.h"
#include "io/gguf.h"

// llama.cpp's pre-tokenizers, by the names its converter writes. Regexes are Hugging Face's
// spelling of them (the same splits; bpe_regex runs them with PCRE2).
#define LLAMA3_RE                                                                                              \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+" \
    "|\\s+(?!\\S)|\\s+"
#define QWEN2_RE                                                                                           \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+" \
    "|\\s+(?!\\S)|\\s+"
#define GPT2 BPE_GPT2_REGEX

typedef struct {
    const char *names[12];     // the tokenizer.ggml.pre values that mean this
    const char *regex[4];      // applied in turn
    int n_regex;
    bool ignore_merges;        // a piece already in the vocabulary is taken whole
    bool add_bos;              // llama.cpp's default when the file has no add_bos_token
} pre_kind;

static const char *gpt2_re(void) { return GPT2; }

static int pre_lookup(const char *pre, pre_kind *out) {
    static const pre_kind table[] = {
        {{"gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais"}, {NULL}, 1, false, false},
        {{"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"}, {"\\p{N}", NULL}, 2,
         false, false},
        {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "dbrx",
          "smaug-bpe"},
         {LLAMA3_RE}, 1, true, true},
        {{"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2"}, {QWEN2_RE}, 1, false, false},
        {{"default"}, {"[\\p{P}\\$\\+<=>\\^~\\|]+", NULL, "\\p{N}+", "[0-9][0-9][0-9]"}, 4, false, false},
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++)
        for (int i = 0; i < 12 && table[k].names[i]; i++)
            if (strcmp(pre, table[k].names[i]) == 0) {
                *out = table[k];
                // GPT-2's regex sits where the table has NULL (it is an extern, not a constant).
                for (int r = 0; r < out->n_regex; r++)
                    if (!out->regex[r]) out->regex[r] = gpt2_re();
                return 0;
            }
    return -1;
}

static const char KNOWN_PRE[] =
    "gpt-2, smollm, starcoder, refact, command-r, codeshell, exaone, minerva-7b, llama3, llama-v3, llama-bpe, "
    "falcon3, falcon-h1, pixtral, midm-2.0, lfm2, dbrx, smaug-bpe, qwen2, deepseek-r1-qwen, megrez, stablelm2, "
    "default, and the aliases gpt2, phi-2, mpt, olmo, jais";

// ---- the canonical serialization that is hashed (docs/formats.md) ----------------------------

static void h_str(vet_sha256 *h, const char *s, size_t n) { vet_sha256_update_field(h, s, n); }

static void h_int(vet_sha256 *h, long long v) {
    char line[32];
    int k = snprintf(line, sizeof line, "%lld\n", v);
    vet_sha256_update(h, line, (size_t)k);
}

static void h_line(vet_sha256 *h, const char *key, long long v) {
    char line[96];
    int k = snprintf(line, sizeof line, "%s %lld\n", key, v);
    vet_sha256_update(h, line, (size_t)k);
}

// ---- reading ---------------------------------------------------------------------------------

typedef struct {
    const char *path;
    vet_gguf *g;
    const vet_gguf_kv *tokens, *types, *merges;
    uint64_t n, nm;
    char model[32], pre[64];
    pre_kind kind;
    vet_sha256 hash;
} reader;

// A string metadata value into out (n bytes); -1 with err when absent, not a string or too long.
static int small_str(reader *r, const char *key, char *out, size_t n, vet_err *err) {
    char *s = vet_gguf_get_str(r->g, key, err);
    if (!s) return -1;
    int rc = 0;
    if (strlen(s) >= n) rc = vet_errf(err, "%s: %s \"%.60s...\" is too long to be a name vet knows", r->path, key, s);
    else snprintf(out, n, "%s", s);
    free(s);
    return rc;
}

static int read_kind(reader *r, vet_err *err) {
    if (!vet_gguf_has(r->g, "tokenizer.ggml.model"))
        return vet_errf(err, "%s: no tokenizer.ggml.model: the GGUF carries no tokenizer (give one with --tokenizer)",
                        r->path);
    if (small_str(r, "tokenizer.ggml.model", r->model, sizeof r->model, err) < 0) return -1;
    if (strcmp(r->model, "llama") == 0)
        return vet_errf(err, "%s: tokenizer.ggml.model is \"llama\" (SentencePiece): vet reads only byte-level BPE "
                        "(\"gpt2\") from a GGUF; give the model's tokenizer.model with --tokenizer", r->path);
    if (strcmp(r->model, "gpt2") != 0)
        return vet_errf(err, "%s: tokenizer.ggml.model is \"%s\": vet reads only byte-level BPE (\"gpt2\") from a GGUF",
                        r->path, r->model);
    if (!vet_gguf_has(r->g, "tokenizer.ggml.pre"))
        return vet_errf(err, "%s: no tokenizer.ggml.pre: the pre-tokenizer is not known (vet does not guess one; "
                        "reconvert the model with a recent llama.cpp, or give its tokenizer.json with --tokenizer)",
                        r->path);
    if (small_str(r, "tokenizer.ggml.pre", r->pre, sizeof r->pre, err) < 0) return -1;
    if (pre_lookup(r->pre, &r->kind) < 0)
        return vet_errf(err, "%s: tokenizer.ggml.pre \"%s\" is a pre-tokenizer vet does not know (it knows %s); "
                        "give the model's tokenizer.json with --tokenizer", r->path, r->pre, KNOWN_PRE);
    h_str(&r->hash, r->model, strlen(r->model));
    h_str(&r->hash, r->pre, strlen(r->pre));
    return 0;
}

// The arrays: tokens (strings), token_type (integers, as many; optional), merges (strings).
static int read_arrays(reader *r, vet_err *err) {
    if (vet_gguf_get_array(r->g, "tokenizer.ggml.tokens", VET_GGUF_STRING, &r->n, err) < 0) return -1;
    if (r->n == 0 || r->n > BPE_MAX_ID)
        return vet_errf(err, "%s: tokenizer.ggml.tokens has %llu tokens (1 to %d accepted)", r->path,
                        (unsigned long long)r->n, BPE_MAX_ID);
    r->tokens = vet_gguf_find_kv(r->g, "tokenizer.ggml.tokens");
    if (vet_gguf_has(r->g, "tokenizer.ggml.token_type")) {
        uint64_t nt;
        if (vet_gguf_get_array(r->g, "tokenizer.ggml.token_type", VET_GGUF_I64, &nt, err) < 0) return -1;
        if (nt != r->n)
            return vet_errf(err, "%s: tokenizer.ggml.token_type has %llu entries for %llu tokens", r->path,
                            (unsigned long long)nt, (unsigned long long)r->n);
        r->types = vet_gguf_find_kv(r->g, "tokenizer.ggml.token_type");
    }
    if (!vet_gguf_has(r->g, "tokenizer.ggml.merges"))
        return vet_errf(err, "%s: no tokenizer.ggml.merges (a byte-level BPE needs its merges)", r->path);
    if (vet_gguf_get_array(r->g, "tokenizer.ggml.merges", VET_GGUF_STRING, &r->nm, err) < 0) return -1;
    r->merges = vet_gguf_find_kv(r->g, "tokenizer.ggml.merges");
    return 0;
}

// Token i's bytes, checked: not empty, UTF-8, no NUL.
static const char *token_at(reader *r, uint64_t i, size_t *len, vet_err *err) {
    uint64_t n = 0;
    const char *s = vet_gguf_array_str(r->g, r->tokens, i, &n);
    size_t bad;
    *len = (size_t)n;
    if (!s || n == 0) vet_errf(err, "%s: tokenizer.ggml.tokens[%llu] is empty", r->path, (unsigned long long)i);
    else if (memchr(s, 0, n)) vet_errf(err, "%s: tokenizer.ggml.tokens[%llu] holds a NUL byte", r->path, (unsigned long long)i);
    else if (!vet_utf8_valid(s, n, &bad))
        vet_errf(err, "%s: tokenizer.ggml.tokens[%llu] is not valid UTF-8", r->path, (unsigned long long)i);
    else return s;
    return NULL;
}

// In the byte alphabet: every character stands for a byte (the token's UTF-8 is checked already;
// the alphabet has only one- and two-byte characters).
static bool in_alphabet(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) { if (vet_bytelevel_byte(c) < 0) return false; i++; continue; }
        if ((c & 0xE0) != 0xC0) return false;
        if (vet_bytelevel_byte(((uint32_t)(c & 0x1F) << 6) | ((unsigned char)s[i + 1] & 0x3F)) < 0) return false;
        i += 2;
    }
    return true;
}

// What read_tokens says of each id: matched whole as a special token, as a plain one, an
// ordinary token spelled in the byte alphabet, one respelled into it.
enum { TOK_RESPELLED, TOK_SPECIAL, TOK_USER, TOK_PLAIN };

// The pieces, in id order (malloc'd each), and what each id is (whole[id], the enum above).
static int read_tokens(reader *r, char **pieces, uint8_t *whole, vet_err *err) {
    h_line(&r->hash, "tokens", (long long)r->n);
    int rc = 0;
    for (uint64_t i = 0; rc == 0 && i < r->n; i++) {
        size_t len;
        const char *s = token_at(r, i, &len, err);
        if (!s) { rc = -1; break; }
        h_str(&r->hash, s, len);
        bool spelled = in_alphabet(s, len);
        size_t out = 0;
        if (!(pieces[i] = malloc(spelled ? len + 1 : 2 * len + 1))) { rc = vet_err_nomem(err, "out of memory"); break; }
        if (spelled) memcpy(pieces[i], s, len), out = len;
        else for (size_t k = 0; k < len; k++) out += (size_t)vet_bytelevel_utf8((uint8_t)s[k], pieces[i] + out);
        pieces[i][out] = 0;
        int64_t type = r->types ? vet_gguf_array_int(r->types, i) : 1;
        whole[i] = !spelled ? TOK_RESPELLED : type == 3 ? TOK_SPECIAL : type == 4 ? TOK_USER : TOK_PLAIN;
    }
    h_line(&r->hash, "token_type", r->types ? (long long)r->n : 0);
    for (uint64_t i = 0; r->types && i < r->n; i++) h_int(&r->hash, vet_gguf_array_int(r->types, i));
    return rc;
}

static int read_merges(reader *r, vet_bpe *b, vet_err *err) {
    if (bpe_merges_reserve(b, (size_t)r->nm, err) < 0) return -1;
    h_line(&r->hash, "merges", (long long)r->nm);
    char buf[2048];
    for (uint64_t i = 0; i < r->nm; i++) {
        uint64_t n = 0;
        const char *s = vet_gguf_array_str(r->g, r->merges, i, &n);
        h_str(&r->hash, s, (size_t)n);
        const char *sp = n < sizeof buf ? memchr(s, ' ', (size_t)n) : NULL;
        // "a b": exactly one space with a piece on each side (as llama.cpp and transformers split it).
        if (!sp || sp == s || sp + 1 == s + n || memchr(sp + 1, ' ', (size_t)(s + n - sp - 1)) || memchr(s, 0, (size_t)n))
            return vet_errf(err, "%s: tokenizer.ggml.merges[%llu] \"%.*s\" is not two pieces separated by one space",
                            r->path, (unsigned long long)i, (int)(n < 80 ? n : 80), s);
        memcpy(buf, s, (size_t)n);
        buf[n] = 0;
        buf[sp - s] = 0;
        if (bpe_merge_add(b, "tokenizer.ggml.merges", (size_t)i, buf, buf + (sp - s) + 1, err) < 0)
            return vet_err_prefix(err, "%s", r->path);
    }
    return 0;
}

// One special id (-1 when the key is absent), hashed as read.
static int special(reader *r, const char *key, int32_t *out, vet_err *err) {
    if (vet_gguf_get_token_id(r->g, key, r->n, out, err) < 0) return -1;
    h_line(&r->hash, key, *out);
    return 0;
}

static int read_specials(reader *r, vet_bpe_gguf_info *gi, vet_err *err) {
    if (special(r, "tokenizer.ggml.bos_token_id", &gi->bos, err) < 0 ||
        special(r, "tokenizer.ggml.eos_token_id", &gi->eos, err) < 0 ||
        special(r, "tokenizer.ggml.unknown_token_id", &gi->unk, err) < 0 ||
        special(r, "tokenizer.ggml.padding_token_id", &gi->pad, err) < 0)
        return -1;
    gi->add_bos = r->kind.add_bos;
    if (vet_gguf_has(r->g, "tokenizer.ggml.add_bos_token") &&
        vet_gguf_get_bool(r->g, "tokenizer.ggml.add_bos_token", &gi->add_bos, err) < 0)
        return -1;
    if (gi->add_bos && gi->bos < 0)
        return vet_errf(err, "%s: the tokenizer adds BOS but tokenizer.ggml.bos_token_id is absent", r->path);
    int add_eos = 0;
    if (vet_gguf_has(r->g, "tokenizer.ggml.add_eos_token") &&
        vet_gguf_get_bool(r->g, "tokenizer.ggml.add_eos_token", &add_eos, err) < 0)
        return -1;
    if (add_eos)
        return vet_errf(err, "%s: tokenizer.ggml.add_eos_token is true: not supported (vet ends only a response with "
                        "EOS, never a prompt)", r->path);
    h_line(&r->hash, "add_bos", gi->add_bos);
    h_line(&r->hash, "add_eos", 0);
    return 0;
}

// The vocabulary, the added tokens and the merges into b.
static int build(reader *r, vet_bpe *b, vet_err *err) {
    char **pieces = calloc((size_t)r->n, sizeof *pieces);
    uint8_t *whole = calloc((size_t)r->n, 1);
    int rc = !pieces || !whole ? vet_err_nomem(err, "out of memory") : read_tokens(r, pieces, whole, err);
    if (rc == 0 && bpe_set_vocab(b, (const char *const *)pieces, (int32_t)r->n, err) < 0)
        rc = vet_err_prefix(err, "%s: tokenizer.ggml.tokens", r->path);
    if (rc == 0) rc = read_specials(r, &b->gguf, err);
    int32_t named[4] = {b->gguf.bos, b->gguf.eos, b->gguf.unk, b->gguf.pad};
    for (int k = 0; rc == 0 && k < 4; k++)  // transformers makes its named special tokens special
        if (named[k] >= 0 && whole[named[k]] != TOK_RESPELLED) whole[named[k]] = TOK_SPECIAL;
    size_t nadd = 0;
    for (uint64_t i = 0; rc == 0 && i < r->n; i++) nadd += whole[i] == TOK_SPECIAL || whole[i] == TOK_USER;
    if (rc == 0) rc = bpe_added_reserve(b, nadd, err);
    for (uint64_t i = 0; rc == 0 && i < r->n; i++)
        if (whole[i] == TOK_SPECIAL || whole[i] == TOK_USER)
            rc = bpe_added_push(b, pieces[i], strlen(pieces[i]), (int32_t)i, false, whole[i] == TOK_SPECIAL, err);
    for (uint64_t i = 0; pieces && i < r->n; i++) free(pieces[i]);
    free(pieces), free(whole);
    if (rc == 0) rc = read_merges(r, b, err);
    if (rc == 0 && bpe_finish_model(b, err) < 0) rc = vet_err_prefix(err, "%s", r->path);
    return rc;
}

static int load(reader *r, vet_bpe *b, vet_err *err) {
    if (read_kind(r, err) < 0 || read_arrays(r, err) < 0 || build(r, b, err) < 0) return -1;
    b->ignore_merges = r->kind.ignore_merges;
    for (int k = 0; k < r->kind.n_regex; k++)
        if (bpe_push_split(b, r->kind.regex[k], err) < 0) return vet_err_prefix(err, "%s", r->path);
    uint8_t digest[32];
    vet_sha256_final(&r->hash, digest);
    vet_sha256_to_hex(digest, b->sha256);
    snprintf(b->gguf.model, sizeof b->gguf.model, "%s", r->model);
    snprintf(b->gguf.pre, sizeof b->gguf.pre, "%s", r->pre);
    return 0;
}

vet_bpe *vet_bpe_load_gguf(const char *path, vet_err *err) {
    reader r = {.path = path};
    if (!(r.g = vet_gguf_open(path, err))) return NULL;
    vet_sha256_init(&r.hash);
    vet_sha256_update(&r.hash, "vet-gguf-tokenizer 1\n", 21);
    vet_bpe *b = calloc(1, sizeof *b);
    int rc = 0;
    if (!b || !(b->path = strdup(path))) rc = vet_err_nomem(err, "%s: out of memory", path);
    else {
        b->from_gguf = true;
        b->unk_id = b->tmpl_bos = b->tmpl_eos = -1;
        b->gguf.bos = b->gguf.eos = b->gguf.unk = b->gguf.pad = -1;
        rc = load(&r, b, err);
    }
    vet_gguf_close(r.g);
    if (rc < 0) {
        vet_bpe_free(b);
        return NULL;
    }
    return b;
}

const vet_bpe_gguf_info *vet_bpe_gguf(const vet_bpe *b) { return b->from_gguf ? &b->gguf : NULL; }
