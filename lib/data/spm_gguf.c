// spm_gguf.c — see spm_gguf.h. What is built from the tokenizer.ggml.* keys, and why:
//   pieces       tokens in id order, each with its score (the merge priority: SentencePiece's BPE
//                and llama.cpp's "llama" tokenizer both merge the best-scoring pair first) and its
//                token_type, which GGUF numbers as SentencePiece does (1 normal, 2 unknown,
//                3 control, 4 user-defined, 5 unused, 6 byte). Both arrays are required: a
//                vocabulary without scores has no merges, and types are guessed nowhere.
//   trainer_spec model_type BPE; byte_fallback when there are byte pieces (<0x0A>): LLaMA's
//                tokenizer spells characters it has no piece for as bytes.
//   normalizer   LLaMA's: no normalization rule (GGUF holds none, and llama.cpp applies none),
//                spaces escaped as U+2581, extra whitespace kept; a space put before the text
//                when tokenizer.ggml.add_space_prefix says (absent: yes, llama.cpp's default).
//   specials     bos/eos/unknown/padding_token_id; the unknown id must be the one unknown piece.
//                add_bos_token (absent: BOS when there is one); add_eos_token true refused.
// The sha256 is over a canonical serialization of these keys (docs/formats.md), as bpe_gguf.c's.
#include "data/spm_gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "base/strtab.h"
#include "base/utf8.h"
#include "data/spm_proto.h"
#include "io/gguf.h"

#define SPM_GGUF_MAX_PIECES (1 << 24)

enum { T_NORMAL = 1, T_UNKNOWN = 2, T_CONTROL = 3, T_USER = 4, T_UNUSED = 5, T_BYTE = 6 };

typedef struct {
    const char *path;
    vet_gguf *g;
    const vet_gguf_kv *tokens, *scores, *types;
    uint64_t n;
    vet_sha256 hash;
    vet_strtab pieces;   // NUL-terminated copies; id i is piece i (duplicates are refused)
    size_t *len;         // (n,)
    float *score;        // (n,)
    uint8_t *type;       // (n,)
    int n_byte, unk_piece;
} reader;

int vet_gguf_tokenizer_is_spm(const char *path, vet_err *err) {
    vet_gguf *g = vet_gguf_open(path, err);
    if (!g) return -1;
    const vet_gguf_kv *kv = vet_gguf_find_kv(g, "tokenizer.ggml.model");
    int spm = kv && kv->type == VET_GGUF_STRING && kv->n == 5 && memcmp(kv->data, "llama", 5) == 0;
    vet_gguf_close(g);
    return spm;
}

// ---- the canonical serialization that is hashed (docs/formats.md) ----------------------------

static void h_str(vet_sha256 *h, const char *s, size_t n) { vet_sha256_update_field(h, s, n); }

static void h_fmt(vet_sha256 *h, const char *key, long long v) {
    char line[96];
    int k = key ? snprintf(line, sizeof line, "%s %lld\n", key, v) : snprintf(line, sizeof line, "%lld\n", v);
    vet_sha256_update(h, line, (size_t)k);
}

// ---- reading ---------------------------------------------------------------------------------

// An array of n entries of elem_type, required.
static const vet_gguf_kv *array(reader *r, const char *key, uint32_t elem_type, const char *why, vet_err *err) {
    uint64_t n;
    if (!vet_gguf_has(r->g, key)) {
        vet_errf(err, "%s: no %s: a SentencePiece (\"llama\") vocabulary needs %s", r->path, key, why);
        return NULL;
    }
    if (vet_gguf_get_array(r->g, key, elem_type, &n, err) < 0) return NULL;
    if (n != r->n) {
        vet_errf(err, "%s: %s has %llu entries for %llu tokens", r->path, key, (unsigned long long)n,
                 (unsigned long long)r->n);
        return NULL;
    }
    return vet_gguf_find_kv(r->g, key);
}

static int read_arrays(reader *r, vet_err *err) {
    char *model = vet_gguf_get_str(r->g, "tokenizer.ggml.model", err);
    int llama = model && strcmp(model, "llama") == 0;
    free(model);
    if (!llama) return model ? vet_errf(err, "%s: tokenizer.ggml.model is not \"llama\" (SentencePiece)", r->path) : -1;
    if (vet_gguf_get_array(r->g, "tokenizer.ggml.tokens", VET_GGUF_STRING, &r->n, err) < 0) return -1;
    if (r->n == 0 || r->n > SPM_GGUF_MAX_PIECES)
        return vet_errf(err, "%s: tokenizer.ggml.tokens has %llu tokens (1 to %d accepted)", r->path,
                        (unsigned long long)r->n, SPM_GGUF_MAX_PIECES);
    r->tokens = vet_gguf_find_kv(r->g, "tokenizer.ggml.tokens");
    if (!(r->scores = array(r, "tokenizer.ggml.scores", VET_GGUF_F32, "each piece's score (its merges)", err)) ||
        !(r->types = array(r, "tokenizer.ggml.token_type", VET_GGUF_I64, "each piece's type", err)))
        return -1;
    r->len = malloc((size_t)r->n * sizeof *r->len);
    r->score = malloc((size_t)r->n * sizeof *r->score);
    r->type = malloc((size_t)r->n);
    if (!r->len || !r->score || !r->type) return vet_err_nomem(err, "%s: out of memory", r->path);
    return 0;
}

// "<0xNN>" with two upper-case hex digits: how SentencePiece spells its byte pieces.
static int byte_spelling(const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    return n == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' && s[3] && strchr(hex, s[3]) && s[4] && strchr(hex, s[4]);
}

// Piece i: its bytes checked (not empty, UTF-8, no NUL, not seen before), its type and score.
static int read_piece(reader *r, uint64_t i, vet_err *err) {
    uint64_t n = 0;
    const char *s = vet_gguf_array_str(r->g, r->tokens, i, &n);
    unsigned long long ii = (unsigned long long)i;
    size_t bad;
    if (!s || n == 0) return vet_errf(err, "%s: tokenizer.ggml.tokens[%llu] is empty", r->path, ii);
    if (memchr(s, 0, (size_t)n)) return vet_errf(err, "%s: tokenizer.ggml.tokens[%llu] holds a NUL byte", r->path, ii);
    if (!vet_utf8_valid(s, (size_t)n, &bad))
        return vet_errf(err, "%s: tokenizer.ggml.tokens[%llu] is not valid UTF-8", r->path, ii);
    char *copy = strndup(s, (size_t)n);
    long id = copy ? vet_strtab_intern(&r->pieces, copy) : -1;
    free(copy);
    if (id < 0) return vet_err_nomem(err, "%s: out of memory", r->path);
    if ((uint64_t)id != i)
        return vet_errf(err, "%s: tokenizer.ggml.tokens: the piece \"%.60s\" has two ids, %ld and %llu", r->path,
                        r->pieces.str[id], id, ii);
    int64_t type = vet_gguf_array_int(r->types, i);
    double score = vet_gguf_array_float(r->scores, i);
    if (type < T_NORMAL || type > T_BYTE)
        return vet_errf(err, "%s: tokenizer.ggml.token_type[%llu] is %lld (SentencePiece's types are 1 to 6: normal, "
                        "unknown, control, user-defined, unused, byte)", r->path, ii, (long long)type);
    if (type == T_BYTE && !byte_spelling(s, (size_t)n))
        return vet_errf(err, "%s: tokenizer.ggml.tokens[%llu] \"%.60s\" has type 6 (byte) but is not spelled <0xNN>",
                        r->path, ii, r->pieces.str[id]);
    if (type == T_UNKNOWN && r->unk_piece >= 0)
        return vet_errf(err, "%s: tokenizer.ggml.token_type marks two unknown pieces, %d and %llu (SentencePiece "
                        "has one)", r->path, r->unk_piece, ii);
    if (!isfinite(score) || !isfinite((float)score))
        return vet_errf(err, "%s: tokenizer.ggml.scores[%llu] is not a finite f32", r->path, ii);
    if (type == T_UNKNOWN) r->unk_piece = (int)i;
    r->n_byte += type == T_BYTE;
    r->len[i] = (size_t)n, r->type[i] = (uint8_t)type, r->score[i] = (float)score;
    return 0;
}

static int read_pieces(reader *r, vet_err *err) {
    for (uint64_t i = 0; i < r->n; i++)
        if (read_piece(r, i, err) < 0) return -1;
    if (r->unk_piece < 0)
        return vet_errf(err, "%s: no unknown piece (tokenizer.ggml.token_type 2): SentencePiece needs one", r->path);
    h_fmt(&r->hash, "tokens", (long long)r->n);
    for (uint64_t i = 0; i < r->n; i++) h_str(&r->hash, r->pieces.str[i], r->len[i]);
    h_fmt(&r->hash, "scores", (long long)r->n);
    for (uint64_t i = 0; i < r->n; i++) {  // the f32 bits: exact, and the same whatever printf does
        uint32_t u;
        char line[16];
        memcpy(&u, &r->score[i], 4);
        vet_sha256_update(&r->hash, line, (size_t)snprintf(line, sizeof line, "%08x\n", u));
    }
    h_fmt(&r->hash, "token_type", (long long)r->n);
    for (uint64_t i = 0; i < r->n; i++) h_fmt(&r->hash, NULL, r->type[i]);
    return 0;
}

// One special id (-1 when the key is absent), hashed as read.
static int special(reader *r, const char *key, int32_t *out, vet_err *err) {
    if (vet_gguf_get_token_id(r->g, key, r->n, out, err) < 0) return -1;
    h_fmt(&r->hash, key, *out);
    return 0;
}

// A boolean key, def when absent.
static int flag(reader *r, const char *key, int def, int *out, vet_err *err) {
    *out = def;
    return vet_gguf_has(r->g, key) ? vet_gguf_get_bool(r->g, key, out, err) : 0;
}

static int read_specials(reader *r, vet_spm_gguf_info *gi, int *extra_ws, vet_err *err) {
    if (special(r, "tokenizer.ggml.bos_token_id", &gi->bos, err) < 0 ||
        special(r, "tokenizer.ggml.eos_token_id", &gi->eos, err) < 0 ||
        special(r, "tokenizer.ggml.unknown_token_id", &gi->unk, err) < 0 ||
        special(r, "tokenizer.ggml.padding_token_id", &gi->pad, err) < 0)
        return -1;
    if (gi->unk >= 0 && gi->unk != r->unk_piece)
        return vet_errf(err, "%s: tokenizer.ggml.unknown_token_id is %d, but the unknown piece (token_type 2) is %d",
                        r->path, gi->unk, r->unk_piece);
    gi->unk = r->unk_piece;
    int add_eos = 0;
    if (flag(r, "tokenizer.ggml.add_bos_token", gi->bos >= 0, &gi->add_bos, err) < 0 ||
        flag(r, "tokenizer.ggml.add_eos_token", 0, &add_eos, err) < 0 ||
        flag(r, "tokenizer.ggml.add_space_prefix", 1, &gi->add_space_prefix, err) < 0 ||
        flag(r, "tokenizer.ggml.remove_extra_whitespaces", 0, extra_ws, err) < 0)
        return -1;
    if (gi->add_bos && gi->bos < 0)
        return vet_errf(err, "%s: the tokenizer adds BOS but tokenizer.ggml.bos_token_id is absent", r->path);
    // llama.cpp reads this key for its UGM (T5) tokenizer only and runs a "llama" vocabulary
    // with spaces kept: honouring it, vet would tokenize otherwise than llama.cpp; ignoring it,
    // otherwise than the file says. Neither reads the file as its author meant, so it is refused.
    if (*extra_ws)
        return vet_errf(err, "%s: tokenizer.ggml.remove_extra_whitespaces is true, which llama.cpp does not apply to "
                        "a \"llama\" (SentencePiece) vocabulary: the text would be tokenized two ways (give the "
                        "model's tokenizer.model with --tokenizer instead)", r->path);
    if (add_eos)
        return vet_errf(err, "%s: tokenizer.ggml.add_eos_token is true: not supported (vet ends only a response with "
                        "EOS, never a prompt)", r->path);
    h_fmt(&r->hash, "add_bos", gi->add_bos);
    h_fmt(&r->hash, "add_eos", 0);
    h_fmt(&r->hash, "add_space_prefix", gi->add_space_prefix);
    h_fmt(&r->hash, "remove_extra_whitespaces", *extra_ws);
    return 0;
}

// The ModelProto of what was read, loaded by the sentencepiece library.
static vet_spm *build(reader *r, const vet_spm_gguf_info *gi, int extra_ws, vet_err *err) {
    const char *const *str = (const char *const *)r->pieces.str;
    vet_spm_proto m = {
        .n = (int32_t)r->n, .piece = str, .piece_len = r->len, .score = r->score, .type = r->type,
        .byte_fallback = r->n_byte > 0, .add_dummy_prefix = gi->add_space_prefix,
        .remove_extra_whitespaces = extra_ws, .unk_piece = str[gi->unk],
        .bos_piece = gi->bos >= 0 ? str[gi->bos] : NULL, .eos_piece = gi->eos >= 0 ? str[gi->eos] : NULL,
        .pad_piece = gi->pad >= 0 ? str[gi->pad] : NULL,
    };
    uint8_t *proto, digest[32];
    size_t len;
    char hex[65];
    if (vet_spm_proto_serialize(&m, &proto, &len, err) < 0) return NULL;
    vet_sha256_final(&r->hash, digest);
    vet_sha256_to_hex(digest, hex);
    vet_spm *s = vet_spm_from_proto(r->path, proto, len, hex, err);
    free(proto);
    return s;
}

vet_spm *vet_spm_load_gguf(const char *path, vet_spm_gguf_info *gi, vet_err *err) {
    reader r = {.path = path, .unk_piece = -1};
    *gi = (vet_spm_gguf_info){.bos = -1, .eos = -1, .unk = -1, .pad = -1};
    if (!(r.g = vet_gguf_open(path, err))) return NULL;
    vet_sha256_init(&r.hash);
    vet_sha256_update(&r.hash, "vet-gguf-tokenizer 1\n", 21);
    h_str(&r.hash, "llama", 5);
    int extra_ws = 0;
    vet_spm *s = NULL;
    if (read_arrays(&r, err) == 0 && read_pieces(&r, err) == 0 && read_specials(&r, gi, &extra_ws, err) == 0)
        s = build(&r, gi, extra_ws, err);
    vet_gguf_close(r.g);
    vet_strtab_free(&r.pieces);
    free(r.len), free(r.score), free(r.type);
    return s;
}
