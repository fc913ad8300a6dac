// config.c — see config.h. Parses with jansson; field names and defaults follow transformers'
// LlamaConfig / Qwen2Config, in both the 4.x form (rope_theta + rope_scaling) and the 5.x form
// (rope_parameters holding rope_theta and the scaling).
#include "io/config.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "io/json_file.h"

// ---------------------------------------------------------------------------------------
// Reading

typedef struct {
    const char *path;
    json_t *root;
    vet_err *err;
} reader;

// Required integer field; also accepts a float with an integral value (some writers do that).
static int get_int(reader *r, const char *key, int *out, int required, int def) {
    json_t *v = json_object_get(r->root, key);
    if (!v || json_is_null(v)) {
        if (required) return vet_errf(r->err, "%s: no \"%s\" (is this a LLaMA/Qwen2 config.json?)", r->path, key);
        *out = def;
        return 0;
    }
    double d = json_is_integer(v) ? (double)json_integer_value(v) : json_is_real(v) ? json_real_value(v) : NAN;
    if (!(d == floor(d)))
        return vet_errf(r->err, "%s: \"%s\" is not an integer", r->path, key);
    if (d < -2147483648.0 || d > 2147483647.0)
        return vet_errf(r->err, "%s: \"%s\" is %.0f, out of range (at most 2147483647)", r->path, key, d);
    *out = (int)d;
    return 0;
}

static int num_of(json_t *v, double *out) {
    if (json_is_integer(v)) *out = (double)json_integer_value(v);
    else if (json_is_real(v)) *out = json_real_value(v);
    else return -1;
    return 0;
}

static int get_num(reader *r, json_t *obj, const char *key, float *out, double def) {
    json_t *v = json_object_get(obj, key);
    double d = def;
    if (v && !json_is_null(v) && num_of(v, &d) != 0) return vet_errf(r->err, "%s: \"%s\" is not a number", r->path, key);
    *out = (float)d;
    return 0;
}

static int get_bool(reader *r, const char *key, int *out, int def) {
    json_t *v = json_object_get(r->root, key);
    if (!v || json_is_null(v)) *out = def;
    else if (json_is_boolean(v)) *out = json_is_true(v);
    else return vet_errf(r->err, "%s: \"%s\" is not true/false", r->path, key);
    return 0;
}

// A token id field: absent/null/-1 -> none; an int; or (for eos) a list of ints. Other negative
// or out-of-int-range values are refused (they cannot be token ids, and a saved config could not
// say them back).
static int get_id_value(reader *r, const char *key, json_t *x, int *out) {
    json_int_t v = json_integer_value(x);
    if (v < -1 || v > INT32_MAX) return vet_errf(r->err, "%s: \"%s\" %lld is not a token id", r->path, key, (long long)v);
    *out = (int)v;
    return 0;
}

// An id or a list of ids into ids[0..*n); -1 entries mean none and are skipped. More than max
// is refused: dropping an end id would let generation run past it, and the saved config lose it.
static int get_ids(reader *r, const char *key, int *ids, int max, int *n) {
    json_t *v = json_object_get(r->root, key);
    *n = 0;
    if (!v || json_is_null(v)) return 0;
    int id = -1;
    if (json_is_integer(v)) {
        if (get_id_value(r, key, v, &id)) return -1;
        if (id >= 0) ids[(*n)++] = id;
        return 0;
    }
    if (!json_is_array(v)) return vet_errf(r->err, "%s: \"%s\" is neither an id nor a list of ids", r->path, key);
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_integer(x)) return vet_errf(r->err, "%s: \"%s\"[%zu] is not an integer id", r->path, key, i);
        if (get_id_value(r, key, x, &id)) return -1;
        if (id < 0) continue;
        if (*n == max)
            return vet_errf(r->err, "%s: \"%s\" lists more ids than the %d vet keeps", r->path, key, max);
        ids[(*n)++] = id;
    }
    return 0;
}

static int get_rope(reader *r, vet_config *c) {
    json_t *params = json_object_get(r->root, "rope_parameters");   // transformers 5
    json_t *scaling = json_object_get(r->root, "rope_scaling");      // transformers 4
    if (params && !json_is_null(params) && !json_is_object(params))
        return vet_errf(r->err, "%s: \"rope_parameters\" is not an object", r->path);
    if (scaling && !json_is_null(scaling) && !json_is_object(scaling))
        return vet_errf(r->err, "%s: \"rope_scaling\" is not an object", r->path);
    if (!json_is_object(params)) params = NULL;
    if (!json_is_object(scaling)) scaling = NULL;

    // theta: rope_parameters.rope_theta, else top-level rope_theta, else 10000.
    float top_theta = 10000.0f;
    if (get_num(r, r->root, "rope_theta", &top_theta, 10000.0) != 0) return -1;
    if (get_num(r, params ? params : r->root, "rope_theta", &c->rope_theta, top_theta) != 0) return -1;

    json_t *s = params ? params : scaling;
    const char *type = "default";
    if (s) {
        json_t *t = json_object_get(s, "rope_type");
        if (!json_is_string(t)) t = json_object_get(s, "type");
        if (json_is_string(t)) type = json_string_value(t);
    }
    if (strcmp(type, "default") == 0) {
        c->rope_type = VET_ROPE_DEFAULT;
        c->rope_factor = 1.0f;
        return 0;
    }
    if (strcmp(type, "llama3") != 0)
        return vet_errf(r->err, "%s: rope scaling '%s' is not supported (vet runs default and llama3 rope)", r->path, type);
    c->rope_type = VET_ROPE_LLAMA3;
    json_t *orig = json_object_get(s, "original_max_position_embeddings");
    double o;
    if (!orig || num_of(orig, &o) != 0 || !json_object_get(s, "factor"))
        return vet_errf(r->err, "%s: llama3 rope scaling needs \"factor\" and \"original_max_position_embeddings\"", r->path);
    if (!(o > -2147483648.0 && o < 2147483648.0))   // (int) of a double out of range is undefined
        return vet_errf(r->err, "%s: \"original_max_position_embeddings\" %g is not an int", r->path, o);
    c->rope_orig_max_pos = (int)o;
    if (get_num(r, s, "factor", &c->rope_factor, 8.0) || get_num(r, s, "low_freq_factor", &c->rope_low_freq_factor, 1.0) ||
        get_num(r, s, "high_freq_factor", &c->rope_high_freq_factor, 4.0))
        return -1;
    return 0;
}

static int load_root(vet_config *c, reader *r) {
    memset(c, 0, sizeof *c);
    // Architecture: architectures[0] names the class; model_type when that is absent.
    json_t *archs = json_object_get(r->root, "architectures");
    json_t *mt = json_object_get(r->root, "model_type");
    const char *a = json_is_array(archs) && json_is_string(json_array_get(archs, 0))
                        ? json_string_value(json_array_get(archs, 0)) : NULL;
    const char *m = json_is_string(mt) ? json_string_value(mt) : NULL;
    // "LLaMAForCausalLM": early-2023 conversions (Alpaca-7B and its kin) spelled it so.
    if (a ? strcmp(a, "LlamaForCausalLM") == 0 || strcmp(a, "LLaMAForCausalLM") == 0 : m && strcmp(m, "llama") == 0)
        strcpy(c->arch, "llama");
    else if (a ? strcmp(a, "Qwen2ForCausalLM") == 0 : m && strcmp(m, "qwen2") == 0) strcpy(c->arch, "qwen2");
    else
        return vet_errf(r->err, "%s: architecture '%s' is not supported (vet runs LlamaForCausalLM and Qwen2ForCausalLM)",
                        r->path, a ? a : m ? m : "(none given)");
    int qwen = strcmp(c->arch, "qwen2") == 0;

    json_t *act = json_object_get(r->root, "hidden_act");
    if (json_is_string(act) && strcmp(json_string_value(act), "silu") != 0)
        return vet_errf(r->err, "%s: hidden_act '%s' is not supported (vet runs SiLU/SwiGLU)", r->path, json_string_value(act));

    int head_dim = 0;
    if (get_int(r, "hidden_size", &c->dim, 1, 0) || get_int(r, "intermediate_size", &c->hidden_dim, 1, 0) ||
        get_int(r, "num_hidden_layers", &c->n_layers, 1, 0) || get_int(r, "num_attention_heads", &c->n_heads, 1, 0) ||
        get_int(r, "vocab_size", &c->vocab_size, 1, 0) || get_int(r, "num_key_value_heads", &c->n_kv_heads, 0, c->n_heads) ||
        get_int(r, "head_dim", &head_dim, 0, 0) ||
        get_int(r, "max_sequence_length", &c->max_pos, 0, qwen ? 32768 : 2048) ||   // the early-2023 name
        get_int(r, "max_position_embeddings", &c->max_pos, 0, c->max_pos) ||
        get_num(r, r->root, "rms_norm_eps", &c->rms_eps, 1e-6) || get_rope(r, c) ||
        get_bool(r, "tie_word_embeddings", &c->tie_embeddings, 0))
        return -1;
    c->head_dim = head_dim > 0 ? head_dim : c->n_heads > 0 ? c->dim / c->n_heads : 0;
    if (head_dim <= 0 && c->n_heads > 0 && c->dim % c->n_heads != 0)
        return vet_errf(r->err, "%s: hidden_size %d is not a multiple of num_attention_heads %d (and no head_dim given)",
                        r->path, c->dim, c->n_heads);

    int attn_bias = 0, mlp_bias = 0, sliding = 0;
    if (get_bool(r, "attention_bias", &attn_bias, 0) || get_bool(r, "mlp_bias", &mlp_bias, 0) ||
        get_bool(r, "use_sliding_window", &sliding, 0))
        return -1;
    // Qwen2's q/k/v projections always carry biases; LLaMA's only with attention_bias, and then
    // o_proj has one too, which vet does not run.
    if (!qwen && attn_bias)
        return vet_errf(r->err, "%s: attention_bias true (biases on q/k/v/o projections) is not supported", r->path);
    c->qkv_bias = qwen;
    if (mlp_bias) return vet_errf(r->err, "%s: mlp_bias true is not supported (vet's MLP has no biases)", r->path);
    if (sliding) return vet_errf(r->err, "%s: use_sliding_window true is not supported (vet runs full attention)", r->path);

    int n;
    if (get_ids(r, "bos_token_id", &c->bos_id, 1, &n)) return -1;
    if (!n) c->bos_id = -1;
    if (get_ids(r, "pad_token_id", &c->pad_id, 1, &n)) return -1;
    if (!n) c->pad_id = -1;
    if (get_ids(r, "eos_token_id", c->eos_ids, VET_MAX_EOS, &c->n_eos)) return -1;
    c->eos_id = c->n_eos ? c->eos_ids[0] : -1;

    json_t *dt = json_object_get(r->root, "dtype");   // transformers 5 writes "dtype"
    if (!json_is_string(dt)) dt = json_object_get(r->root, "torch_dtype");
    const char *d = json_is_string(dt) ? json_string_value(dt) : "float32";
    if (strcmp(d, "float32") && strcmp(d, "bfloat16") && strcmp(d, "float16"))
        return vet_errf(r->err, "%s: dtype '%s' is not supported (float32, bfloat16 or float16)", r->path, d);
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "%s", d);
    if (vet_config_validate(c, r->err) != 0) return vet_err_prefix(r->err, "%s", r->path);
    return 0;
}

int vet_config_load(vet_config *c, const char *path, vet_err *err) {
    char buf[4096];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(buf, sizeof buf, "%s/config.json", path);
        path = buf;
    }
    json_t *root = vet_json_load(path, "config", JSON_REJECT_DUPLICATES, err);
    if (!root) return -1;
    if (!json_is_object(root)) {
        json_decref(root);
        return vet_errf(err, "%s: not a JSON object", path);
    }
    reader r = {path, root, err};
    int rc = load_root(c, &r);
    json_decref(root);
    return rc;
}

// Per-frequency rope factors (a GGUF's rope_freqs.weight): head_dim/2 of them, each finite and
// > 0 (a zero would divide a frequency into infinity).
static int validate_rope_factors(const vet_config *c, vet_err *err) {
    if (c->head_dim / 2 > VET_ROPE_MAX_FACTORS)
        return vet_errf(err, "head_dim %d: per-frequency rope factors are supported up to head_dim %d", c->head_dim,
                        2 * VET_ROPE_MAX_FACTORS);
    for (int i = 0; i < c->head_dim / 2; i++)
        if (!(c->rope_freq_factors[i] > 0) || !isfinite(c->rope_freq_factors[i]))
            return vet_errf(err, "rope frequency factor %d is %g: each must be finite and > 0", i,
                            (double)c->rope_freq_factors[i]);
    return 0;
}

int vet_config_validate(const vet_config *c, vet_err *err) {
    if (strcmp(c->arch, "llama") && strcmp(c->arch, "qwen2"))
        return vet_errf(err, "architecture '%s' is not llama or qwen2", c->arch);
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->head_dim <= 0 || c->vocab_size <= 0 || c->max_pos <= 0)
        return vet_errf(err, "sizes must be positive (hidden_size %d, intermediate_size %d, layers %d, heads %d, "
                             "kv heads %d, head_dim %d, vocab %d, max positions %d)",
                        c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size, c->max_pos);
    if (c->dim > (1 << 20) || c->hidden_dim > (1 << 22) || c->n_layers > 4096 || c->n_heads > 4096 ||
        c->head_dim > 4096 || c->vocab_size > (1 << 24))
        return vet_errf(err, "sizes are absurdly large (hidden_size %d, intermediate_size %d, layers %d, heads %d, head_dim %d, vocab %d)",
                        c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->head_dim, c->vocab_size);
    if (c->n_heads % c->n_kv_heads)
        return vet_errf(err, "num_attention_heads %d is not a multiple of num_key_value_heads %d", c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2) return vet_errf(err, "head_dim %d is odd (rope rotates pairs)", c->head_dim);
    // isfinite too: a number beyond float's range reads as infinity, which no writer can save.
    if (!(c->rms_eps > 0) || !(c->rope_theta > 0) || !isfinite(c->rms_eps) || !isfinite(c->rope_theta))
        return vet_errf(err, "rms_norm_eps (%g) and rope_theta (%g) must be positive and finite", c->rms_eps,
                        c->rope_theta);
    if (!isfinite(c->rope_factor) || !isfinite(c->rope_low_freq_factor) || !isfinite(c->rope_high_freq_factor))
        return vet_errf(err, "rope scaling factors must be finite (factor %g, low_freq_factor %g, high_freq_factor %g)",
                        c->rope_factor, c->rope_low_freq_factor, c->rope_high_freq_factor);
    if (c->rope_type == VET_ROPE_LLAMA3 &&
        !(c->rope_factor > 0 && c->rope_low_freq_factor > 0 && c->rope_high_freq_factor > c->rope_low_freq_factor &&
          c->rope_orig_max_pos > 0))
        return vet_errf(err, "llama3 rope scaling needs factor > 0, high_freq_factor > low_freq_factor > 0 and "
                             "original_max_position_embeddings > 0 (got %g, %g, %g, %d)",
                        c->rope_factor, c->rope_high_freq_factor, c->rope_low_freq_factor, c->rope_orig_max_pos);
    if (c->rope_type != VET_ROPE_DEFAULT && c->rope_type != VET_ROPE_LLAMA3 && c->rope_type != VET_ROPE_FACTORS)
        return vet_errf(err, "rope_type %d is unknown", c->rope_type);
    if (c->rope_type == VET_ROPE_FACTORS && validate_rope_factors(c, err)) return -1;
    if (c->mlp_bias) return vet_errf(err, "mlp_bias is not supported");
    if (c->qkv_bias && strcmp(c->arch, "qwen2"))
        return vet_errf(err, "q/k/v biases are only supported for qwen2 (LLaMA's attention_bias also biases o_proj)");
    if (c->n_eos < 0 || c->n_eos > VET_MAX_EOS) return vet_errf(err, "n_eos %d out of range", c->n_eos);
    int ids[3] = {c->bos_id, c->eos_id, c->pad_id};
    const char *names[3] = {"bos_token_id", "eos_token_id", "pad_token_id"};
    for (int i = 0; i < 3; i++)
        if (ids[i] < -1 || ids[i] >= c->vocab_size)
            return vet_errf(err, "%s %d is outside the vocabulary (0..%d)", names[i], ids[i], c->vocab_size - 1);
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] < 0 || c->eos_ids[i] >= c->vocab_size)
            return vet_errf(err, "eos_token_id %d is outside the vocabulary (0..%d)", c->eos_ids[i], c->vocab_size - 1);
    return 0;
}

// ---------------------------------------------------------------------------------------
// Writing

// A JSON number for a float that prints as its shortest exact decimal (1e-05, not 9.99999975e-06).
static json_t *jfloat(float x) {
    char s[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(s, sizeof s, "%.*g", p, (double)x);
        if (strtof(s, NULL) == x) break;
    }
    return json_real(strtod(s, NULL));
}

static json_t *jid(int id) { return id < 0 ? json_null() : json_integer(id); }

int vet_config_save(const vet_config *c, const char *path, vet_err *err) {
    if (vet_config_validate(c, err) != 0) return vet_err_prefix(err, "%s", path);
    // transformers' rope_scaling cannot hold factors, and guessing llama3 parameters back from
    // them would write a model that is not the one that ran.
    if (c->rope_type == VET_ROPE_FACTORS)
        return vet_errf(err, "%s: rope scaling from a GGUF's rope_freqs.weight (per-frequency factors) has no "
                        "config.json form: write the model as GGUF with vet-export instead", path);
    int qwen = strcmp(c->arch, "qwen2") == 0;
    json_t *o = json_object();
    json_object_set_new(o, "architectures", json_pack("[s]", qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"));
    json_object_set_new(o, "model_type", json_string(c->arch));
    json_object_set_new(o, "hidden_size", json_integer(c->dim));
    json_object_set_new(o, "intermediate_size", json_integer(c->hidden_dim));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(o, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->n_kv_heads));
    // Exact product, not dim / n_heads: 67 / 4 == 16 would drop a head_dim the reader then cannot infer.
    if (!qwen || (int64_t)c->head_dim * c->n_heads != c->dim) json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_pos));
    json_object_set_new(o, "rms_norm_eps", jfloat(c->rms_eps));
    json_object_set_new(o, "hidden_act", json_string("silu"));
    json_object_set_new(o, "initializer_range", json_real(0.02));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_embeddings));
    json_object_set_new(o, "attention_dropout", json_real(0.0));
    json_object_set_new(o, "use_cache", json_true());
    if (qwen) {
        json_object_set_new(o, "use_sliding_window", json_false());
        json_object_set_new(o, "sliding_window", json_null());
        json_object_set_new(o, "max_window_layers", json_integer(c->n_layers));
    } else {
        json_object_set_new(o, "attention_bias", json_false());
        json_object_set_new(o, "mlp_bias", json_false());
    }
    json_object_set_new(o, "bos_token_id", jid(c->bos_id));
    json_object_set_new(o, "pad_token_id", jid(c->pad_id));
    if (c->n_eos > 1) {
        json_t *a = json_array();
        for (int i = 0; i < c->n_eos; i++) json_array_append_new(a, json_integer(c->eos_ids[i]));
        json_object_set_new(o, "eos_token_id", a);
    } else {
        json_object_set_new(o, "eos_token_id", jid(c->eos_id));
    }
    // Rope, in the transformers 5 form (rope_parameters, which holds the theta) and the 4.x form
    // (top-level rope_theta + rope_scaling) so either version reads the same rope.
    json_t *rp = json_object();
    json_object_set_new(rp, "rope_theta", jfloat(c->rope_theta));
    json_object_set_new(rp, "rope_type", json_string(c->rope_type == VET_ROPE_LLAMA3 ? "llama3" : "default"));
    json_t *rs = json_null();
    if (c->rope_type == VET_ROPE_LLAMA3) {
        rs = json_object();
        json_t *both[2] = {rp, rs};
        for (int i = 0; i < 2; i++) {
            json_object_set_new(both[i], "factor", jfloat(c->rope_factor));
            json_object_set_new(both[i], "low_freq_factor", jfloat(c->rope_low_freq_factor));
            json_object_set_new(both[i], "high_freq_factor", jfloat(c->rope_high_freq_factor));
            json_object_set_new(both[i], "original_max_position_embeddings", json_integer(c->rope_orig_max_pos));
        }
        json_object_set_new(rs, "rope_type", json_string("llama3"));
    }
    json_object_set_new(o, "rope_parameters", rp);
    json_object_set_new(o, "rope_theta", jfloat(c->rope_theta));
    json_object_set_new(o, "rope_scaling", rs);
    const char *dt = c->torch_dtype[0] ? c->torch_dtype : "float32";
    json_object_set_new(o, "dtype", json_string(dt));
    json_object_set_new(o, "torch_dtype", json_string(dt));

    vet_afile out;
    if (vet_afile_open(&out, path, err) < 0) {
        json_decref(o);
        return -1;
    }
    int rc = json_dumpf(o, out.f, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (rc != 0) {
        vet_err_io(err, "%s: cannot write (directory missing or disk full?)", out.shown);
        vet_afile_abort(&out);
        return -1;
    }
    return vet_afile_commit(&out, err);
}

// ---------------------------------------------------------------------------------------
// Presets and sizes

static void base_llama(vet_config *c) {
    memset(c, 0, sizeof *c);
    strcpy(c->arch, "llama");
    c->rms_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_factor = 1.0f;
    c->bos_id = 1;
    c->eos_id = 2;
    c->eos_ids[0] = 2;
    c->n_eos = 1;
    c->pad_id = -1;
    strcpy(c->torch_dtype, "float32");
}

int vet_config_preset(vet_config *c, const char *name, vet_err *err) {
    base_llama(c);
    if (strcmp(name, "tiny") == 0) {
        // Trains from scratch on a few thousand short notes in minutes on 2 cores: ~0.9M params.
        c->dim = 128, c->hidden_dim = 384, c->n_layers = 4, c->n_heads = 4, c->n_kv_heads = 2;
        c->vocab_size = 512, c->max_pos = 2048;
    } else if (strcmp(name, "small") == 0) {
        c->dim = 256, c->hidden_dim = 768, c->n_layers = 8, c->n_heads = 8, c->n_kv_heads = 4;
        c->vocab_size = 512, c->max_pos = 2048;
    } else if (strcmp(name, "base") == 0) {
        // ~70M parameters (280 MB in fp32): too big for any CPU cache, so decoding one note at
        // a time is bound by memory bandwidth, as with every real checkpoint.
        c->dim = 768, c->hidden_dim = 2048, c->n_layers = 8, c->n_heads = 12, c->n_kv_heads = 4;
        c->vocab_size = 32000, c->max_pos = 2048;
    } else if (strcmp(name, "llama-7b") == 0) {   // LLaMA-2 7B (and Alpaca-7B)
        c->dim = 4096, c->hidden_dim = 11008, c->n_layers = 32, c->n_heads = 32, c->n_kv_heads = 32;
        c->vocab_size = 32000, c->max_pos = 4096;
        strcpy(c->torch_dtype, "float16");
    } else if (strcmp(name, "llama3-8b") == 0) {  // Llama-3.1-8B
        c->dim = 4096, c->hidden_dim = 14336, c->n_layers = 32, c->n_heads = 32, c->n_kv_heads = 8;
        c->vocab_size = 128256, c->max_pos = 131072, c->rope_theta = 500000.0f;
        c->rope_type = VET_ROPE_LLAMA3, c->rope_factor = 8.0f, c->rope_low_freq_factor = 1.0f;
        c->rope_high_freq_factor = 4.0f, c->rope_orig_max_pos = 8192;
        c->bos_id = 128000, c->eos_id = c->eos_ids[0] = 128001;
        strcpy(c->torch_dtype, "bfloat16");
    } else if (strcmp(name, "qwen2.5-7b") == 0) {
        strcpy(c->arch, "qwen2");
        c->dim = 3584, c->hidden_dim = 18944, c->n_layers = 28, c->n_heads = 28, c->n_kv_heads = 4;
        c->vocab_size = 152064, c->max_pos = 131072, c->rope_theta = 1000000.0f, c->rms_eps = 1e-6f;
        c->qkv_bias = 1;
        c->bos_id = 151643, c->eos_id = c->eos_ids[0] = 151643;
        strcpy(c->torch_dtype, "bfloat16");
    } else {
        return vet_errf(err, "no model preset '%s' (presets: %s)", name, vet_config_preset_names());
    }
    c->head_dim = c->dim / c->n_heads;
    return vet_config_validate(c, err);
}

const char *vet_config_preset_names(void) { return "tiny, small, base, llama-7b, llama3-8b, qwen2.5-7b"; }

void vet_config_set_vocab(vet_config *c, int vocab_size) {
    c->vocab_size = vocab_size;
    // Special ids from the preset may not exist in a smaller vocabulary: drop them.
    if (c->bos_id >= vocab_size) c->bos_id = -1;
    if (c->pad_id >= vocab_size) c->pad_id = -1;
    int k = 0;
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] < vocab_size) c->eos_ids[k++] = c->eos_ids[i];
    c->n_eos = k;
    c->eos_id = k ? c->eos_ids[0] : -1;
}

int64_t vet_config_n_params(const vet_config *c) {
    int64_t d = c->dim, q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t attn = d * q + 2 * d * kv + q * d + (c->qkv_bias ? q + 2 * kv : 0);   // wq wk wv wo (+ biases)
    int64_t mlp = 3 * d * c->hidden_dim;                                           // gate up down
    int64_t layer = attn + mlp + 2 * d;                                            // + two rmsnorm weights
    int64_t embed = (int64_t)c->vocab_size * d;
    return embed + c->n_layers * layer + d + (c->tie_embeddings ? 0 : embed);      // + final norm, lm_head
}

size_t vet_config_weight_bytes(const vet_config *c, int bytes_per_param) {
    return (size_t)vet_config_n_params(c) * (size_t)bytes_per_param;
}
