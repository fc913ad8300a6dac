// gguf_config.c — see gguf_config.h. The key names are llama.cpp's (gguf-py's constants.py):
// "<arch>.<name>" for the model's hyperparameters, "tokenizer.ggml.*" for the special ids.
#include "io/gguf_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "io/ggml_dequant.h"

typedef struct {
    const vet_gguf *g;
    const char *arch;
    vet_err *err;
} reader;

static const char *akey(const reader *r, const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s.%s", r->arch, name);
    return buf;
}

// An integer "<arch>.name" into *out (1..INT32_MAX); def when absent and not required.
static int get_int(const reader *r, const char *name, int *out, int required, int def) {
    char k[128];
    akey(r, name, k, sizeof k);
    if (!required && !vet_gguf_has(r->g, k)) {
        *out = def;
        return 0;
    }
    int64_t v;
    if (vet_gguf_get_i64(r->g, k, &v, r->err)) return -1;
    if (v < 0 || v > INT32_MAX)
        return vet_errf(r->err, "%s: metadata key %s is %lld, out of range", vet_gguf_path(r->g), k, (long long)v);
    *out = (int)v;
    return 0;
}

static int get_float(const reader *r, const char *name, float *out, int required, float def) {
    char k[128];
    akey(r, name, k, sizeof k);
    if (!required && !vet_gguf_has(r->g, k)) {
        *out = def;
        return 0;
    }
    return vet_gguf_get_f32(r->g, k, out, r->err);
}

// A token id from tokenizer.ggml.<name>: -1 when absent.
static int get_id(const reader *r, const char *name, int *out) {
    char k[128];
    snprintf(k, sizeof k, "tokenizer.ggml.%s", name);
    *out = -1;
    if (!vet_gguf_has(r->g, k)) return 0;
    int64_t v;
    if (vet_gguf_get_i64(r->g, k, &v, r->err)) return -1;
    if (v < -1 || v > INT32_MAX)
        return vet_errf(r->err, "%s: metadata key %s is %lld, not a token id", vet_gguf_path(r->g), k, (long long)v);
    *out = (int)v;
    return 0;
}

// The vocabulary: <arch>.vocab_size, else the token list's length, else the embedding's rows.
static int get_vocab(const reader *r, vet_config *c) {
    char k[128];
    if (vet_gguf_has(r->g, akey(r, "vocab_size", k, sizeof k))) return get_int(r, "vocab_size", &c->vocab_size, 1, 0);
    uint64_t n;
    if (vet_gguf_has(r->g, "tokenizer.ggml.tokens")) {
        if (vet_gguf_get_array(r->g, "tokenizer.ggml.tokens", VET_GGUF_STRING, &n, r->err)) return -1;
    } else {
        const vet_gguf_tensor *t = vet_gguf_find_tensor(r->g, "token_embd.weight");
        if (!t)
            return vet_errf(r->err, "%s: no %s, no tokenizer.ggml.tokens and no token_embd.weight: the vocabulary size "
                            "is unknown", vet_gguf_path(r->g), k);
        n = (uint64_t)t->ne[1];
    }
    if (n == 0 || n > INT32_MAX)
        return vet_errf(r->err, "%s: a vocabulary of %llu tokens", vet_gguf_path(r->g), (unsigned long long)n);
    c->vocab_size = (int)n;
    return 0;
}

// Rope scaling as llama.cpp reads it (llama-model.cpp load_hparams, llama-context.cpp): the
// type is rope.scaling.type, "linear" when absent; the factor rope.scaling.factor, else the older
// rope.scale_linear, 0 meaning 1; type "none" never scales. vet runs plain rope, so every
// scaling llama.cpp would apply is refused by name, whichever key carries it.
static int refuse_rope_scaling(const reader *r) {
    const char *path = vet_gguf_path(r->g);
    char k[128];
    if (vet_gguf_has(r->g, akey(r, "rope.scaling.type", k, sizeof k))) {
        char *type = vet_gguf_get_str(r->g, k, r->err);
        if (!type) return -1;
        int none = strcmp(type, "none") == 0;
        if (!none) vet_errf(r->err, "%s: %s '%s': rope scaling is not supported in a GGUF (vet runs plain rope)", path, k, type);
        free(type);
        return none ? 0 : -1;
    }
    const char *name = vet_gguf_has(r->g, akey(r, "rope.scaling.factor", k, sizeof k)) ? "rope.scaling.factor"
                                                                                      : "rope.scale_linear";
    float factor = 0.0f;
    if (get_float(r, name, &factor, 0, 0.0f)) return -1;
    if (factor != 0.0f && factor != 1.0f)
        return vet_errf(r->err, "%s: %s.%s %g: linear rope scaling is not supported (llama.cpp scales linearly when "
                        "%s.rope.scaling.type is absent; vet runs plain rope)", path, r->arch, name, factor, r->arch);
    return 0;
}

// What vet cannot run is refused by name: rope scaling, partial rotary, experts.
static int refuse_unsupported(const reader *r, const vet_config *c) {
    const char *path = vet_gguf_path(r->g);
    if (refuse_rope_scaling(r)) return -1;
    int rot = c->head_dim, experts = 0, vlen = c->head_dim;
    if (get_int(r, "rope.dimension_count", &rot, 0, c->head_dim) || get_int(r, "expert_count", &experts, 0, 0) ||
        get_int(r, "attention.value_length", &vlen, 0, c->head_dim))
        return -1;
    if (rot != c->head_dim)
        return vet_errf(r->err, "%s: %s.rope.dimension_count %d differs from the head size %d: partial rotary embeddings are "
                        "not supported", path, r->arch, rot, c->head_dim);
    if (vlen != c->head_dim)
        return vet_errf(r->err, "%s: %s.attention.value_length %d differs from key_length %d: not supported", path, r->arch,
                        vlen, c->head_dim);
    if (experts > 0)
        return vet_errf(r->err, "%s: %s.expert_count %d: a mixture of experts is not supported", path, r->arch, experts);
    return 0;
}

// rope_freqs.weight: llama.cpp's converter stores Llama-3.1/3.2's llama3 rope scaling as
// head_dim/2 factors, frequency i divided by factor i (ggml_rope_ext's freq_factors). Read as
// they are (any type vet dequantizes), not fitted back to llama3's four parameters: the
// factors are what llama.cpp runs. All ones is plain rope.
static int read_rope_freqs(const reader *r, vet_config *c) {
    const vet_gguf_tensor *t = vet_gguf_find_tensor(r->g, "rope_freqs.weight");
    if (!t) return 0;
    const char *path = vet_gguf_path(r->g);
    int half = c->head_dim / 2;
    if (t->n_dims != 1 || t->ne[0] != half)
        return vet_errf(r->err, "%s: tensor rope_freqs.weight has %d dims and %lld values, expected 1 dim of head_dim/2 = "
                        "%d (one factor per rotary frequency)", path, t->n_dims, (long long)t->n_elems, half);
    if (half > VET_ROPE_MAX_FACTORS)
        return vet_errf(r->err, "%s: tensor rope_freqs.weight: head_dim %d is beyond the %d per-frequency factors vet "
                        "keeps", path, c->head_dim, VET_ROPE_MAX_FACTORS);
    if (!vet_ggml_can_dequant(t->type))
        return vet_errf(r->err, "%s: tensor rope_freqs.weight has type %s, which vet does not read (it reads %s)", path,
                        vet_ggml_type_get(t->type).name, vet_ggml_dequant_names());
    if (vet_gguf_tensor_f32(r->g, t, c->rope_freq_factors, r->err)) return -1;
    int ones = 1;
    for (int i = 0; i < half; i++) {
        float f = c->rope_freq_factors[i];
        if (!(f > 0) || !isfinite(f))
            return vet_errf(r->err, "%s: tensor rope_freqs.weight[%d] is %g: a rope frequency factor must be finite and "
                            "> 0", path, i, (double)f);
        ones &= f == 1.0f;
    }
    if (!ones) c->rope_type = VET_ROPE_FACTORS;
    return 0;
}

static int read_shape(const reader *r, vet_config *c) {
    int head_dim = 0;
    if (get_int(r, "block_count", &c->n_layers, 1, 0) || get_int(r, "embedding_length", &c->dim, 1, 0) ||
        get_int(r, "feed_forward_length", &c->hidden_dim, 1, 0) || get_int(r, "attention.head_count", &c->n_heads, 1, 0) ||
        get_int(r, "attention.head_count_kv", &c->n_kv_heads, 0, c->n_heads) ||
        get_int(r, "attention.key_length", &head_dim, 0, 0) || get_int(r, "context_length", &c->max_pos, 1, 0) ||
        get_float(r, "attention.layer_norm_rms_epsilon", &c->rms_eps, 1, 0) ||
        get_float(r, "rope.freq_base", &c->rope_theta, 0, 10000.0f) || get_vocab(r, c))
        return -1;
    if (head_dim <= 0 && c->n_heads > 0 && c->dim % c->n_heads)
        return vet_errf(r->err, "%s: %s.embedding_length %d is not a multiple of attention.head_count %d (and no "
                        "attention.key_length)", vet_gguf_path(r->g), r->arch, c->dim, c->n_heads);
    c->head_dim = head_dim > 0 ? head_dim : c->n_heads > 0 ? c->dim / c->n_heads : 0;
    return 0;
}

int vet_gguf_config(vet_config *c, const vet_gguf *g, vet_err *err) {
    memset(c, 0, sizeof *c);
    const char *path = vet_gguf_path(g);
    char *arch = vet_gguf_get_str(g, "general.architecture", err);
    if (!arch) return -1;
    if (strcmp(arch, "llama") && strcmp(arch, "qwen2")) {
        vet_errf(err, "%s: general.architecture '%.64s' is not supported (vet reads llama and qwen2 GGUFs)", path, arch);
        free(arch);
        return -1;
    }
    snprintf(c->arch, sizeof c->arch, "%s", arch);
    free(arch);
    reader r = {g, c->arch, err};
    if (read_shape(&r, c) || refuse_unsupported(&r, c)) return -1;
    c->rope_type = VET_ROPE_DEFAULT;
    c->rope_factor = 1.0f;
    if (read_rope_freqs(&r, c)) return -1;
    c->qkv_bias = strcmp(c->arch, "qwen2") == 0;
    c->tie_embeddings = vet_gguf_find_tensor(g, "output.weight") == NULL;
    if (get_id(&r, "bos_token_id", &c->bos_id) || get_id(&r, "eos_token_id", &c->eos_id) ||
        get_id(&r, "padding_token_id", &c->pad_id))
        return -1;
    c->n_eos = c->eos_id >= 0;
    c->eos_ids[0] = c->eos_id;
    // The weights are dequantized to fp32 on load: a model written back out is fp32 (lossless).
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "float32");
    if (vet_config_validate(c, err)) return vet_err_prefix(err, "%s", path);
    return 0;
}

int vet_path_is_gguf(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    // By its name too, so a damaged .gguf is refused by the GGUF reader (naming what is wrong)
    // rather than read as a config.json.
    size_t n = strlen(path);
    if (n >= 5 && strcasecmp(path + n - 5, ".gguf") == 0) return 1;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char m[4];
    int yes = fread(m, 1, 4, f) == 4 && m[0] == 'G' && m[1] == 'G' && m[2] == 'U' && m[3] == 'F';
    fclose(f);
    return yes;
}

int vet_model_config_load(vet_config *c, const char *path, vet_err *err) {
    if (!vet_path_is_gguf(path)) return vet_config_load(c, path, err);
    vet_gguf *g = vet_gguf_open(path, err);
    if (!g) return -1;
    int rc = vet_gguf_config(c, g, err);
    vet_gguf_close(g);
    return rc;
}
