// tokenizer.c — see tokenizer.h: which file a path names, the special ids around it, and the
// dispatch to spm.h or bpe.h.
#include "data/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/utf8.h"
#include "data/bpe.h"
#include "data/spm.h"
#include "data/spm_gguf.h"
#include "io/json_file.h"
#include "io/mp.h"

struct vet_tokenizer {
    vet_tok_kind kind;
    vet_spm *spm;
    vet_bpe *bpe;
    int bos, eos, pad, unk, add_bos;
    int gguf;  // read from a GGUF's metadata (kind "gguf-bpe" or "gguf-spm")
    char choice[512];
};

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && !S_ISDIR(st.st_mode);
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

// dir/name, or NULL when out of memory.
static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

// tokenizer_config.json as transformers writes it: "model_max_length": 1000000000000000019884624838656
// for a tokenizer without a limit, an integer jansson refuses ("too big integer"). vet reads only
// strings and booleans from it, so its numbers are read as reals.
#define TOKENIZER_CONFIG_FLAGS JSON_DECODE_INT_AS_REAL

// A JSON file next to the tokenizer: NULL (no error) when it is not there.
static json_t *sibling_json(const char *file, const char *name, size_t flags, vet_err *err, int *failed) {
    const char *slash = strrchr(file, '/');
    char *dir = slash ? strndup(file, (size_t)(slash - file)) : strdup(".");
    char *p = dir ? join(dir, name) : NULL;
    free(dir);
    json_t *j = NULL;
    *failed = 0;
    if (!p) *failed = vet_err_nomem(err, "out of memory");
    else if (is_file(p) && !(j = vet_json_load(p, name, flags, err))) *failed = -1;
    free(p);
    return j;
}

// The directory case: which of tokenizer.json and tokenizer.model. *file is malloc'd.
static int pick_in_dir(vet_tokenizer *t, const char *dir, char **file, vet_err *err) {
    char *js = join(dir, "tokenizer.json"), *md = join(dir, "tokenizer.model"), *cf = join(dir, "tokenizer_config.json");
    int rc = 0;
    if (!js || !md || !cf) rc = vet_err_nomem(err, "out of memory");
    else if (!is_file(js) && !is_file(md))
        rc = vet_err_io(err, "%s: the directory has neither tokenizer.json nor tokenizer.model", dir);
    else if (!is_file(md)) *file = js, js = NULL;
    else if (!is_file(js)) *file = md, md = NULL;
    else {  // both: what tokenizer_config.json names
        json_t *c = is_file(cf) ? vet_json_load(cf, "tokenizer config", TOKENIZER_CONFIG_FLAGS, err) : NULL;
        const char *cls = json_string_value(json_object_get(c, "tokenizer_class"));
        int fast = cls && strstr(cls, "Fast") != NULL;
        snprintf(t->choice, sizeof t->choice, "%s holds tokenizer.json and tokenizer.model: using %s (%s%s%s)", dir,
                 fast ? "tokenizer.json" : "tokenizer.model", cls ? "tokenizer_config.json names " : "",
                 cls ? cls : "tokenizer_config.json names no tokenizer_class", "");
        if (fast) *file = js, js = NULL;
        else *file = md, md = NULL;
        json_decref(c);
        if (is_file(cf) && !c) rc = -1;
    }
    free(js), free(md), free(cf);
    return rc;
}

// A token named in tokenizer_config.json: a string or {"content": ...}; -2 when absent.
static int config_token(const vet_tokenizer *t, json_t *cfg, const char *key, const char *file, vet_err *err) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v)) return -2;
    int id = vet_tokenizer_piece_to_id(t, json_string_value(v));
    if (id < 0) vet_errf(err, "%s: tokenizer_config.json's %s \"%.80s\" is not in the vocabulary", file, key, json_string_value(v));
    return id;
}

// config.json's *_token_id (an integer, or a list whose first is taken); -2 when absent.
static int config_id(const vet_tokenizer *t, json_t *cfg, const char *key, const char *file, vet_err *err) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_array(v)) v = json_array_get(v, 0);
    if (!json_is_integer(v)) return -2;
    json_int_t x = json_integer_value(v);
    if (x < 0 || x >= vet_tokenizer_vocab_size(t)) {
        vet_errf(err, "%s: config.json's %s %lld is out of range", file, key, (long long)x);
        return -1;
    }
    return (int)x;
}

static int first_piece(const vet_tokenizer *t, const char *const *names) {
    for (; *names; names++) {
        int id = vet_tokenizer_piece_to_id(t, *names);
        if (id >= 0) return id;
    }
    return -1;
}

// One special id: tokenizer_config.json, config.json, the template, the usual names.
static int special_id(const vet_tokenizer *t, json_t *tcfg, json_t *cfg, const char *what, int tmpl,
                      const char *const *names, const char *file, int *out, vet_err *err) {
    char key[32];
    snprintf(key, sizeof key, "%s_token", what);
    int id = config_token(t, tcfg, key, file, err);
    if (id == -1) return -1;
    if (id == -2) {
        snprintf(key, sizeof key, "%s_token_id", what);
        if ((id = config_id(t, cfg, key, file, err)) == -1) return -1;
    }
    if (id == -2) id = tmpl >= 0 ? tmpl : names ? first_piece(t, names) : -1;
    *out = id;
    return 0;
}

static int bpe_specials(vet_tokenizer *t, const char *file, vet_err *err) {
    int f1 = 0, f2 = 0;
    json_t *tcfg = sibling_json(file, "tokenizer_config.json", TOKENIZER_CONFIG_FLAGS, err, &f1);
    json_t *cfg = f1 ? NULL : sibling_json(file, "config.json", 0, err, &f2);
    static const char *const bos_names[] = {"<|begin_of_text|>", "<s>", NULL};
    static const char *const eos_names[] = {"<|end_of_text|>", "</s>", "<|endoftext|>", NULL};
    int tb = vet_bpe_template_bos(t->bpe), te = vet_bpe_template_eos(t->bpe);
    json_t *ab = json_object_get(tcfg, "add_bos_token");
    int rc = f1 || f2 ? -1 : 0;
    if (rc == 0) rc = special_id(t, tcfg, cfg, "bos", tb, bos_names, file, &t->bos, err);
    if (rc == 0) rc = special_id(t, tcfg, cfg, "eos", te, eos_names, file, &t->eos, err);
    if (rc == 0) rc = special_id(t, tcfg, cfg, "pad", -1, NULL, file, &t->pad, err);
    if (rc == 0) rc = special_id(t, tcfg, cfg, "unk", vet_bpe_unk_id(t->bpe), NULL, file, &t->unk, err);
    if (rc == 0 && json_is_boolean(ab)) {  // the config decides, with its own BOS token
        t->add_bos = json_is_true(ab);
        if (t->add_bos && t->bos < 0)
            rc = vet_errf(err, "%s: tokenizer_config.json sets add_bos_token but names no BOS token", file);
    } else if (rc == 0 && tb >= 0) {  // the template decides, and its token is what is added
        t->add_bos = 1;
        t->bos = tb;
    }
    json_decref(tcfg), json_decref(cfg);
    return rc;
}

// A regular file that begins with the GGUF magic is a GGUF model carrying its tokenizer.
static int looks_gguf(const char *file) {
    unsigned char m[4] = {0};
    FILE *f = is_file(file) ? fopen(file, "rb") : NULL;
    size_t got = f ? fread(m, 1, 4, f) : 0;
    if (f) fclose(f);
    return got == 4 && memcmp(m, "GGUF", 4) == 0;
}

static int gguf_specials(vet_tokenizer *t) {
    const vet_bpe_gguf_info *gi = vet_bpe_gguf(t->bpe);
    t->bos = gi->bos, t->eos = gi->eos, t->pad = gi->pad, t->unk = gi->unk;
    t->add_bos = gi->add_bos;
    t->gguf = 1;
    return 0;
}

// ".json", or a file whose first non-blank byte is '{', is a tokenizer.json.
static int looks_json(const char *file) {
    if (ends_with(file, ".json")) return 1;
    if (ends_with(file, ".model")) return 0;
    FILE *f = fopen(file, "rb");
    int c = ' ';
    while (f && (c = fgetc(f)) != EOF && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) {}
    if (f) fclose(f);
    return c == '{';
}

// A GGUF whose tokenizer.ggml.model is "llama": SentencePiece, its ids and flags from the file.
static int load_gguf_spm(vet_tokenizer *t, const char *file, vet_err *err) {
    vet_spm_gguf_info gi;
    t->kind = VET_TOK_SPM;
    if (!(t->spm = vet_spm_load_gguf(file, &gi, err))) return -1;
    t->bos = gi.bos, t->eos = gi.eos, t->pad = gi.pad, t->unk = gi.unk;
    t->add_bos = gi.add_bos;
    t->gguf = 1;
    return 0;
}

static int load_file(vet_tokenizer *t, const char *file, vet_err *err) {
    if (looks_gguf(file)) {
        int spm = vet_gguf_tokenizer_is_spm(file, err);
        if (spm < 0) return -1;
        if (spm) return load_gguf_spm(t, file, err);
        t->kind = VET_TOK_BPE;
        if (!(t->bpe = vet_bpe_load_gguf(file, err))) return -1;
        return gguf_specials(t);
    }
    if (looks_json(file)) {
        t->kind = VET_TOK_BPE;
        if (!(t->bpe = vet_bpe_load(file, err))) return -1;
        return bpe_specials(t, file, err);
    }
    t->kind = VET_TOK_SPM;
    if (!(t->spm = vet_spm_load(file, err))) return -1;
    t->bos = vet_spm_bos_id(t->spm), t->eos = vet_spm_eos_id(t->spm);
    t->pad = vet_spm_pad_id(t->spm), t->unk = vet_spm_unk_id(t->spm);
    t->add_bos = t->bos >= 0;
    return 0;
}

vet_tokenizer *vet_tokenizer_load(const char *path, vet_err *err) {
    vet_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { vet_err_nomem(err, "%s: out of memory", path); return NULL; }
    struct stat st;
    char *file = NULL;
    int rc = 0;
    if (stat(path, &st) != 0)
        rc = vet_err_io(err, "%s: no such tokenizer (give a tokenizer.model, a tokenizer.json, a .gguf model or a model "
                        "directory)", path);
    else if (S_ISDIR(st.st_mode)) rc = pick_in_dir(t, path, &file, err);
    else if (!(file = strdup(path))) rc = vet_err_nomem(err, "%s: out of memory", path);
    if (rc == 0) rc = load_file(t, file, err);
    free(file);
    if (rc < 0) { vet_tokenizer_free(t); return NULL; }
    return t;
}

void vet_tokenizer_free(vet_tokenizer *t) {
    if (!t) return;
    vet_spm_free(t->spm);
    vet_bpe_free(t->bpe);
    free(t);
}

// ---- the operations, to one implementation or the other -----------------------------------

int vet_tokenizer_encode(const vet_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n,
                         size_t *cap, vet_err *err) {
    return t->bpe ? vet_bpe_encode(t->bpe, text, len, ids, n, cap, err)
                  : vet_spm_encode(t->spm, text, len, ids, n, cap, err);
}

char *vet_tokenizer_decode_bytes(const vet_tokenizer *t, const int32_t *ids, size_t n, size_t *len, vet_err *err) {
    if (t->bpe) return vet_bpe_decode_bytes(t->bpe, ids, n, len, err);
    char *s = vet_spm_decode(t->spm, ids, n, err);
    if (s && len) *len = strlen(s);
    return s;
}

size_t vet_tokenizer_complete_len(const char *s, size_t n) {
    // Only the last three bytes can start an unfinished character.
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)s[n - back];
        if ((c & 0xC0) == 0x80) continue;
        size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return want > back ? n - back : n;
    }
    return n;
}

char *vet_tokenizer_decode(const vet_tokenizer *t, const int32_t *ids, size_t n, vet_err *err) {
    size_t len;
    char *raw = vet_tokenizer_decode_bytes(t, ids, n, &len, err);
    if (!raw) return NULL;
    // A character cut by the end of decoding shows as U+FFFD, as Hugging Face's decode shows it.
    char *out = vet_utf8_repair_n(raw, len, NULL);
    if (!out) { free(raw); vet_err_nomem(err, "out of memory"); return NULL; }
    free(raw);
    return out;
}

int vet_tokenizer_vocab_size(const vet_tokenizer *t) {
    return t->bpe ? vet_bpe_vocab_size(t->bpe) : vet_spm_vocab_size(t->spm);
}
int vet_tokenizer_bos_id(const vet_tokenizer *t) { return t->bos; }
int vet_tokenizer_eos_id(const vet_tokenizer *t) { return t->eos; }
int vet_tokenizer_pad_id(const vet_tokenizer *t) { return t->pad; }
int vet_tokenizer_unk_id(const vet_tokenizer *t) { return t->unk; }
int vet_tokenizer_add_bos(const vet_tokenizer *t) { return t->add_bos; }

const char *vet_tokenizer_id_to_piece(const vet_tokenizer *t, int id) {
    return t->bpe ? vet_bpe_id_to_piece(t->bpe, id) : vet_spm_id_to_piece(t->spm, id);
}

int vet_tokenizer_piece_to_id(const vet_tokenizer *t, const char *piece) {
    if (t->bpe) return vet_bpe_piece_to_id(t->bpe, piece);
    // SentencePiece answers unknown pieces with the unk id: only an exact piece counts here.
    int id = vet_spm_piece_to_id(t->spm, piece);
    const char *p = vet_spm_id_to_piece(t->spm, id);
    return p && strcmp(p, piece) == 0 ? id : -1;
}

int vet_tokenizer_is_special(const vet_tokenizer *t, int id) {
    return t->bpe ? vet_bpe_is_special(t->bpe, id) : vet_spm_is_control(t->spm, id);
}

vet_tok_kind vet_tokenizer_kind(const vet_tokenizer *t) { return t->kind; }
const char *vet_tokenizer_kind_name(const vet_tokenizer *t) {
    if (t->gguf) return t->kind == VET_TOK_BPE ? "gguf-bpe" : "gguf-spm";
    return t->kind == VET_TOK_BPE ? "bpe" : "spm";
}
const char *vet_tokenizer_path(const vet_tokenizer *t) { return t->bpe ? vet_bpe_path(t->bpe) : vet_spm_path(t->spm); }
const char *vet_tokenizer_sha256(const vet_tokenizer *t) {
    return t->bpe ? vet_bpe_sha256(t->bpe) : vet_spm_sha256(t->spm);
}
const char *vet_tokenizer_choice(const vet_tokenizer *t) { return t->choice; }

void vet_tokenizer_header_kind(const struct msgpack_object *tok, char *out, size_t n) {
    const char *k = "spm";
    size_t len = 3;
    if (tok && tok->type == MSGPACK_OBJECT_MAP && mp_get_str(tok, "kind", &k, &len, NULL) != 0) k = "spm", len = 3;
    if (n) snprintf(out, n, "%.*s", (int)len, k);
}
