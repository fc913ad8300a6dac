// export_vocab.c — a model directory's tokenizer as GGUF's tokenizer.ggml.* keys, as llama.cpp's
// converter writes them and transformers' GGUF loader reads them back:
//   model           "gpt2" for a byte-level BPE tokenizer.json, "llama" for a SentencePiece model
//   pre             (gpt2) the pre-tokenizer by llama.cpp's name: the split regex is not stored,
//                   the runtime knows it by name, so an unknown one is refused rather than guessed
//   tokens          the pieces in id order as the tokenizer spells them (byte-level: "Ġthe")
//   token_type      1 normal, 3 control (special added tokens, <s>), 4 user-defined (other added
//                   tokens; SentencePiece's user-defined pieces), 2 unknown, 5 unused (the padding
//                   to the model's vocabulary), 6 byte (SentencePiece's <0x0A>)
//   merges          (gpt2) "left right", best first
//   scores          (llama) each piece's score, from which transformers rebuilds the merges
//   add_space_prefix (llama) the SentencePiece normalizer's add_dummy_prefix, the one setting of its
//                   normalizer GGUF holds: a model that normalizes more is refused (spm_normalizer_fits)
//   bos/eos/unknown/padding_token_id, add_bos_token, add_eos_token; chat_template when
//   tokenizer_config.json has one.
// A model whose embedding has more rows than the tokenizer has pieces gets "[PADn]" entries of
// type unused, as llama.cpp does: its runtime wants one token per row.
// A GGUF model (vet-export --model FILE.gguf) passes its own tokenizer.* keys on unchanged.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/bpe.h"
#include "data/bpe_merges.h"
#include "data/spm.h"
#include "data/tokenizer.h"
#include "export/export_impl.h"
#include "io/gguf.h"
#include "io/gguf_config.h"
#include "io/json_file.h"

enum { TT_NORMAL = 1, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5 };

// The split regexes llama.cpp knows by name (llama-vocab.cpp) for the pre-tokenizers vet reads.
static const char RE_LLAMA3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
                                "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
                               "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char *str_of(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static int is_type(json_t *o, const char *t) { const char *s = str_of(o, "type"); return s && !strcmp(s, t); }
// ByteLevel's use_regex (true unless said otherwise) and add_prefix_space (false unless said).
static int bl(json_t *o, int use_regex) {
    json_t *u = json_object_get(o, "use_regex");
    return is_type(o, "ByteLevel") && !json_is_true(json_object_get(o, "add_prefix_space")) &&
           (u ? json_is_true(u) : 1) == use_regex;
}
static int split_with(json_t *o, const char *re) {
    const char *p = str_of(json_object_get(o, "pattern"), "Regex"), *b = str_of(o, "behavior");
    return is_type(o, "Split") && p && !strcmp(p, re) && b && !strcmp(b, "Isolated") &&
           !json_is_true(json_object_get(o, "invert"));
}

// llama.cpp's name for the pre-tokenizer of a tokenizer.json, or NULL.
static const char *pre_name(json_t *root) {
    json_t *pt = json_object_get(root, "pre_tokenizer"), *seq = json_object_get(pt, "pretokenizers");
    if (bl(pt, 1)) return "gpt-2";                              // GPT-2: ByteLevel with its own regex
    if (!is_type(pt, "Sequence") || json_array_size(seq) != 2) return NULL;
    json_t *a = json_array_get(seq, 0), *b = json_array_get(seq, 1);
    if (split_with(a, RE_LLAMA3) && bl(b, 0)) return "llama-bpe";   // Llama-3
    if (split_with(a, RE_QWEN2) && bl(b, 0)) return "qwen2";        // Qwen2, Qwen2.5
    if (is_type(a, "Digits") && json_is_true(json_object_get(a, "individual_digits")) && bl(b, 1))
        return "smollm";                                            // SmolLM, SmolLM2
    return NULL;
}

// Token types of a tokenizer.json's added tokens into type[] (n entries).
static void added_types(json_t *root, int32_t *type, int n) {
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(root, "added_tokens"), i, t) {
        json_int_t id = json_integer_value(json_object_get(t, "id"));
        if (id >= 0 && id < n) type[id] = json_is_true(json_object_get(t, "special")) ? TT_CONTROL : TT_USER;
    }
}

// tokens (vocab entries: the tokenizer's n, then padding) and their types, shared by both kinds.
typedef struct {
    const char **tok;
    int32_t *type;
    float *score;
    char *pads;
    int n, vocab;
} vocab_tab;

static int tab_new(vocab_tab *v, int n, int vocab, vet_err *err) {
    *v = (vocab_tab){.n = n, .vocab = vocab};
    if (n < 0 || vocab < n) return vet_errf(err, "vocabulary of %d for %d tokens", vocab, n);
    v->tok = calloc((size_t)vocab, sizeof *v->tok), v->type = calloc((size_t)vocab, sizeof *v->type);
    v->score = calloc((size_t)vocab, sizeof *v->score), v->pads = malloc((size_t)(vocab - n) * 20 + 1);
    if (!v->tok || !v->type || !v->score || !v->pads) return vet_err_nomem(err, "out of memory");
    char *p = v->pads;
    for (int i = n; i < vocab; i++) {
        v->tok[i] = p, v->type[i] = TT_UNUSED, v->score[i] = -1000.0f;
        p += snprintf(p, 20, "[PAD%d]", i) + 1;
    }
    return 0;
}
static void tab_free(vocab_tab *v) { free(v->tok), free(v->type), free(v->score), free(v->pads); }

static int bpe_part(vet_gguf_writer *w, const char *path, vocab_tab *v, vet_export_result *r, vet_err *err) {
    json_t *root = vet_json_load(path, "tokenizer", 0, err);
    if (!root) return -1;
    const char *pre = pre_name(root);
    int rc = 0;
    if (!pre) {
        char *pt = json_dumps(json_object_get(root, "pre_tokenizer"), JSON_COMPACT);
        rc = vet_errf(err, "%s: pre_tokenizer %.300s is none that GGUF names (vet writes gpt-2, llama-bpe, qwen2, "
                      "smollm); llama.cpp would split the text otherwise", path, pt ? pt : "null");
        free(pt);
    }
    vet_bpe *b = rc ? NULL : vet_bpe_load(path, err);
    if (!rc && !b) rc = -1;
    for (int i = 0; !rc && i < v->n; i++) {
        v->tok[i] = vet_bpe_id_to_piece(b, i), v->type[i] = TT_NORMAL;
        if (!v->tok[i]) rc = vet_errf(err, "%s: id %d has no piece", path, i);
    }
    if (!rc) added_types(root, v->type, v->n);
    int32_t *pairs = NULL;
    size_t nm = 0;
    char **merges = NULL;
    if (!rc) rc = vet_bpe_merge_list(b, &pairs, &nm, err);
    if (!rc && nm && !(merges = calloc(nm, sizeof *merges))) rc = vet_err_nomem(err, "out of memory");
    for (size_t i = 0; !rc && i < nm; i++) {
        const char *x = vet_bpe_id_to_piece(b, pairs[2 * i]), *y = vet_bpe_id_to_piece(b, pairs[2 * i + 1]);
        if (strchr(x, ' ') || strchr(y, ' '))   // "a b" could not be split back
            rc = vet_errf(err, "%s: merge \"%.60s\" + \"%.60s\" has a space in a piece: GGUF cannot hold it", path, x, y);
        else if (asprintf(&merges[i], "%s %s", x, y) < 0) merges[i] = NULL, rc = vet_err_nomem(err, "out of memory");
    }
    if (!rc) rc = vet_gguf_set_str(w, "tokenizer.ggml.model", "gpt2", err);
    if (!rc) rc = vet_gguf_set_str(w, "tokenizer.ggml.pre", pre, err);
    if (!rc) rc = vet_gguf_set_str_array(w, "tokenizer.ggml.tokens", v->tok, (uint64_t)v->vocab, err);
    if (!rc) rc = vet_gguf_set_array(w, "tokenizer.ggml.token_type", VET_GGUF_I32, v->type, (uint64_t)v->vocab, err);
    if (!rc) rc = vet_gguf_set_str_array(w, "tokenizer.ggml.merges", (const char *const *)merges, nm, err);
    if (!rc) snprintf(r->tokenizer, sizeof r->tokenizer, "gpt2"), snprintf(r->pre, sizeof r->pre, "%s", pre);
    for (size_t i = 0; merges && i < nm; i++) free(merges[i]);
    free(merges), free(pairs);
    vet_bpe_free(b);
    json_decref(root);
    return rc;
}

// llama.cpp runs a "llama" vocabulary without a normalizer (llm_tokenizer_spm): it puts a space
// before the text when add_space_prefix says so, writes spaces as U+2581 and matches the rest as
// it is. GGUF has no key for anything more, so a model whose normalizer does more (NFKC rules,
// squeezed spaces) would tokenize its text otherwise from the GGUF than it was trained on: refused,
// naming every setting in the way.
static int spm_normalizer_fits(const vet_spm *s, const char *path, vet_err *err) {
    const vet_spm_norm *n = vet_spm_normalizer(s);
    if (!n) return vet_errf(err, "%s: its normalizer settings cannot be read, so vet cannot tell whether GGUF can "
                            "hold them", path);
    char why[256] = "";
    size_t k = 0;
    if (n->charsmap_len)
        k += (size_t)snprintf(why + k, sizeof why - k, "normalizer %s (character rules)", n->name[0] ? n->name : "?");
    if (n->remove_extra_whitespaces)
        k += (size_t)snprintf(why + k, sizeof why - k, "%sremove_extra_whitespaces true", k ? ", " : "");
    if (!n->escape_whitespaces)
        k += (size_t)snprintf(why + k, sizeof why - k, "%sescape_whitespaces false", k ? ", " : "");
    if (n->whitespace_as_suffix)
        k += (size_t)snprintf(why + k, sizeof why - k, "%streat_whitespace_as_suffix true", k ? ", " : "");
    if (!k) return 0;
    return vet_errf(err, "%s: %s: GGUF cannot hold this normalizer, and llama.cpp would tokenize the text otherwise "
                    "than the model was trained on (a tokenizer trained with spm_train --normalization_rule_name=identity "
                    "--remove_extra_whitespaces=false exports, with a model trained on its ids)", path, why);
}

static int spm_part(vet_gguf_writer *w, const char *path, vocab_tab *v, vet_export_result *r, vet_err *err) {
    vet_spm *s = vet_spm_load(path, err);
    if (!s) return -1;
    if (spm_normalizer_fits(s, vet_spm_path(s), err) < 0) {
        vet_spm_free(s);
        return -1;
    }
    for (int i = 0; i < v->n; i++)
        v->tok[i] = vet_spm_id_to_piece(s, i), v->score[i] = vet_spm_score(s, i), v->type[i] = vet_spm_piece_type(s, i);
    int rc = vet_gguf_set_str(w, "tokenizer.ggml.model", "llama", err);
    if (!rc) rc = vet_gguf_set_str_array(w, "tokenizer.ggml.tokens", v->tok, (uint64_t)v->vocab, err);
    if (!rc) rc = vet_gguf_set_array(w, "tokenizer.ggml.scores", VET_GGUF_F32, v->score, (uint64_t)v->vocab, err);
    if (!rc) rc = vet_gguf_set_array(w, "tokenizer.ggml.token_type", VET_GGUF_I32, v->type, (uint64_t)v->vocab, err);
    // The normalizer's one setting GGUF can hold (llama.cpp's default, absent, is true); the others
    // were checked to be what llama.cpp does anyway.
    if (!rc) rc = vet_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", vet_spm_add_dummy_prefix(s), err);
    if (!rc) snprintf(r->tokenizer, sizeof r->tokenizer, "llama");
    vet_spm_free(s);
    return rc;
}

// The special ids, whether BOS is added, and the chat template.
static int specials(vet_gguf_writer *w, const vet_tokenizer *t, const char *dir, int vocab, vet_err *err) {
    struct { const char *key; int id; } ids[] = {
        {"tokenizer.ggml.bos_token_id", vet_tokenizer_bos_id(t)},
        {"tokenizer.ggml.eos_token_id", vet_tokenizer_eos_id(t)},
        {"tokenizer.ggml.unknown_token_id", vet_tokenizer_unk_id(t)},
        {"tokenizer.ggml.padding_token_id", vet_tokenizer_pad_id(t)},
    };
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].id >= 0 && ids[i].id < vocab) rc = vet_gguf_set_u32(w, ids[i].key, (uint32_t)ids[i].id, err);
    if (!rc) rc = vet_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", vet_tokenizer_add_bos(t), err);
    if (!rc) rc = vet_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", 0, err);
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (rc || access(path, F_OK) != 0) return rc;
    json_t *cfg = vet_json_load(path, "tokenizer config", 0, err);
    if (!cfg) return -1;
    const char *tmpl = str_of(cfg, "chat_template");
    if (tmpl) rc = vet_gguf_set_str(w, "tokenizer.chat_template", tmpl, err);
    json_decref(cfg);
    return rc;
}

// The string value of key in g into out (n bytes), "" when absent or not a string.
static void gguf_str(const vet_gguf *g, const char *key, char *out, size_t n) {
    const vet_gguf_kv *kv = vet_gguf_find_kv(g, key);
    out[0] = 0;
    if (kv && kv->type == VET_GGUF_STRING) snprintf(out, n, "%.*s", (int)(kv->n < n ? kv->n : n - 1), (const char *)kv->data);
}

// A GGUF model's tokenizer goes out as it came in: every tokenizer.* key copied value for value
// (vet rebuilds nothing of it, so nothing can be lost or changed). Its token list must have one
// entry per embedding row, as llama.cpp requires. Returns 1 when there was a tokenizer, 0 when not.
static int gguf_part(vet_gguf_writer *w, const char *path, int vocab_size, vet_export_result *r, vet_err *err) {
    vet_gguf *g = vet_gguf_open(path, err);
    if (!g) return -1;
    const vet_gguf_kv *tokens = vet_gguf_find_kv(g, "tokenizer.ggml.tokens");
    int rc = 0, n = 0;
    if (tokens && (tokens->type != VET_GGUF_ARRAY || tokens->arr_type != VET_GGUF_STRING ||
                   tokens->n != (uint64_t)vocab_size))
        rc = vet_errf(err, "%s: tokenizer.ggml.tokens is not a list of the model's %d tokens", path, vocab_size);
    for (size_t i = 0; !rc && i < vet_gguf_n_kv(g); i++) {
        const vet_gguf_kv *kv = vet_gguf_kv_at(g, i);
        if (strncmp(kv->key, "tokenizer.", 10) != 0) continue;
        rc = vet_gguf_copy_kv(w, g, kv, err);
        n++;
    }
    if (!rc && n) {
        gguf_str(g, "tokenizer.ggml.model", r->tokenizer, sizeof r->tokenizer);
        gguf_str(g, "tokenizer.ggml.pre", r->pre, sizeof r->pre);
        r->has_tokenizer = 1;
    }
    vet_gguf_close(g);
    return rc ? -1 : n > 0;
}

int export_vocab(vet_gguf_writer *w, const char *dir, int vocab_size, vet_export_result *r, vet_err *err) {
    if (vet_path_is_gguf(dir)) return gguf_part(w, dir, vocab_size, r, err);
    char p1[4200], p2[4200];
    snprintf(p1, sizeof p1, "%s/tokenizer.json", dir), snprintf(p2, sizeof p2, "%s/tokenizer.model", dir);
    if (access(p1, F_OK) != 0 && access(p2, F_OK) != 0) return 0;
    vet_tokenizer *t = vet_tokenizer_load(dir, err);
    if (!t) return -1;
    int n = vet_tokenizer_vocab_size(t), rc = 0;
    vocab_tab v = {0};
    if (n > vocab_size)
        rc = vet_errf(err, "%s: the tokenizer has %d tokens but the model only %d embedding rows",
                      vet_tokenizer_path(t), n, vocab_size);
    if (!rc) rc = tab_new(&v, n, vocab_size, err);
    if (!rc && vet_tokenizer_kind(t) == VET_TOK_BPE) rc = bpe_part(w, vet_tokenizer_path(t), &v, r, err);
    else if (!rc) rc = spm_part(w, vet_tokenizer_path(t), &v, r, err);
    if (!rc) rc = specials(w, t, dir, vocab_size, err);
    tab_free(&v);
    vet_tokenizer_free(t);
    if (rc) return -1;
    r->has_tokenizer = 1;
    return 1;
}
