// adapter.c — see adapter.h.
#include "model/adapter.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/utf8.h"
#include "io/json_file.h"
#include "model/lora.h"
#include "io/safetensors.h"

#define ADAPTER_CONFIG "adapter_config.json"
#define ADAPTER_WEIGHTS "adapter_model.safetensors"

void vet_adapter_target_dims(const vet_config *c, int t, int64_t *out, int64_t *in) {
    int o, i;
    vet_lora_dims(c, t, &o, &i);
    *out = o, *in = i;
}

void vet_adapter_tensor_name(char *buf, size_t n, int l, int t, char ab) {
    snprintf(buf, n, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", l,
             t < 4 ? "self_attn" : "mlp", vet_lora_target_name(t), ab);
}

int vet_adapter_check_limits(const vet_config *c, int r, double alpha, double dropout, unsigned targets,
                             vet_err *err) {
    if (!(alpha > 0 && alpha <= VET_LORA_MAX_ALPHA))  // also false for NaN
        return vet_errf(err, "lora_alpha %g must be a finite number above 0 and at most %g", alpha,
                        VET_LORA_MAX_ALPHA);
    if (!(dropout >= 0 && dropout < 1)) return vet_errf(err, "lora_dropout %g is outside [0, 1)", dropout);
    if (r < 1) return vet_errf(err, "LoRA rank r=%d must be at least 1", r);
    // The binding limit: the adapted projection with the smallest smaller dimension.
    int lim = 0, at = -1, out = 0, in = 0;
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!(targets & (1u << t))) continue;
        int o, i;
        vet_lora_dims(c, t, &o, &i);
        if (at < 0 || (o < i ? o : i) < lim) lim = o < i ? o : i, at = t, out = o, in = i;
    }
    if (at >= 0 && r > lim)
        return vet_errf(err, "LoRA rank r=%d is larger than %s's smaller dimension: %s is (%d, %d) in this model, "
                        "so r must be 1 to %d", r, vet_lora_target_name(at), vet_lora_target_name(at), out, in, lim);
    return 0;
}

static void join(char *buf, size_t n, const char *dir, const char *file) {
    snprintf(buf, n, "%s/%s", dir, file);
}

// mkdir -p: creates dir and its missing parents.
static int make_dirs(const char *dir, vet_err *err) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return vet_errf(err, "%s: path too long", dir);
    for (char *p = path + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return vet_err_io(err, "%s: cannot create directory: %s", path, strerror(errno));
            *p = c;
            if (c == '\0') break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return vet_errf(err, "%s: exists and is not a directory", dir);
    return 0;
}

// Writes text to path atomically (base/atomic_file.h).
static int write_atomic(const char *path, const char *text, vet_err *err) {
    vet_afile out;
    if (vet_afile_open(&out, path, err) < 0) return -1;
    if (fputs(text, out.f) == EOF) {
        vet_err_io(err, "%s: write failed: %s", out.shown, strerror(errno));
        vet_afile_abort(&out);
        return -1;
    }
    return vet_afile_commit(&out, err);
}

// ---------------------------------------------------------------------------------------
// Save

// The double with the fewest decimal digits that reads back as x: a float 0.1 is written
// 0.1, not 0.10000000149011612 (what Python would then show as the dropout).
static double shortest_decimal(float x) {
    char buf[32];
    for (int digits = 1; digits < 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)x);
        if (strtof(buf, NULL) == x) return strtod(buf, NULL);
    }
    return (double)x;
}

// adapter_config.json as PEFT 0.21 writes it for a plain LoRA (keys we do not use keep
// PEFT's defaults, so PEFT reads back exactly this adapter).
static json_t *config_json(const vet_lora *lo, const char *base_model_path) {
    json_t *targets = json_array();
    for (int t = 0; t < VET_LORA_N_TARGETS; t++)
        if (lo->targets & (1u << t)) json_array_append_new(targets, json_string(vet_lora_target_name(t)));
    // PEFT writes lora_alpha as an int when it is one; keep that so the file reads naturally.
    json_t *alpha = lo->alpha == floorf(lo->alpha) && fabsf(lo->alpha) < 1e9f
                        ? json_integer((json_int_t)lo->alpha) : json_real(shortest_decimal(lo->alpha));
    json_t *c = json_object();
    json_object_set_new(c, "alpha_pattern", json_object());
    json_object_set_new(c, "auto_mapping", json_null());
    // A path is bytes and JSON text UTF-8: jansson gives no string for one that is not (the key
    // went missing), so it is written with U+FFFD for each ill-formed part.
    char *shown = base_model_path && !vet_utf8_valid(base_model_path, strlen(base_model_path), NULL)
                      ? vet_utf8_repair(base_model_path) : NULL;
    json_object_set_new(c, "base_model_name_or_path",
                        base_model_path ? json_string(shown ? shown : base_model_path) : json_null());
    free(shown);
    json_object_set_new(c, "bias", json_string("none"));
    json_object_set_new(c, "exclude_modules", json_null());
    json_object_set_new(c, "fan_in_fan_out", json_false());
    json_object_set_new(c, "inference_mode", json_true());
    json_object_set_new(c, "init_lora_weights", json_true());
    json_object_set_new(c, "layers_pattern", json_null());
    json_object_set_new(c, "layers_to_transform", json_null());
    json_object_set_new(c, "lora_alpha", alpha);
    json_object_set_new(c, "lora_bias", json_false());
    json_object_set_new(c, "lora_dropout", json_real(shortest_decimal(lo->dropout)));
    json_object_set_new(c, "modules_to_save", json_null());
    json_object_set_new(c, "peft_type", json_string("LORA"));
    json_object_set_new(c, "r", json_integer(lo->r));
    json_object_set_new(c, "rank_pattern", json_object());
    json_object_set_new(c, "revision", json_null());
    json_object_set_new(c, "target_modules", targets);
    json_object_set_new(c, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(c, "use_dora", json_false());
    json_object_set_new(c, "use_rslora", lo->rslora ? json_true() : json_false());
    return c;
}

int vet_adapter_save(const char *dir, const vet_model *m, const char *base_model_path, vet_err *err) {
    if (!m->has_lora) return vet_errf(err, "%s: the model has no LoRA adapter to save", dir);
    if (make_dirs(dir, err)) return -1;
    const vet_lora *lo = &m->lora;
    int L = m->cfg.n_layers;

    vet_st_writer *w = vet_st_writer_new();
    if (!w) return vet_err_nomem(err, "%s: out of memory", dir);
    char name[256];
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!(lo->targets & (1u << t))) continue;
        int64_t out, in;
        vet_adapter_target_dims(&m->cfg, t, &out, &in);
        for (int l = 0; l < L; l++) {
            int64_t sa[2] = {lo->r, in}, sb[2] = {out, lo->r};
            vet_adapter_tensor_name(name, sizeof name, l, t, 'A');
            if (vet_st_writer_add(w, name, VET_DT_F32, 2, sa, lo->A[t] + (size_t)l * lo->r * in, err)) goto fail;
            vet_adapter_tensor_name(name, sizeof name, l, t, 'B');
            if (vet_st_writer_add(w, name, VET_DT_F32, 2, sb, lo->B[t] + (size_t)l * out * lo->r, err)) goto fail;
        }
    }
    char path[4200];
    join(path, sizeof path, dir, ADAPTER_WEIGHTS);
    if (vet_st_writer_write(w, path, err)) goto fail;
    vet_st_writer_free(w);

    json_t *c = config_json(lo, base_model_path);
    char *text = json_dumps(c, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    json_decref(c);
    if (!text) return vet_err_nomem(err, "%s: out of memory", dir);
    size_t n = strlen(text);
    char *nl = realloc(text, n + 2);  // end the file with a newline, as PEFT does
    if (!nl) { free(text); return vet_err_nomem(err, "%s: out of memory", dir); }
    nl[n] = '\n';
    nl[n + 1] = '\0';
    join(path, sizeof path, dir, ADAPTER_CONFIG);
    int rc = write_atomic(path, nl, err);
    free(nl);
    return rc;
fail:
    vet_st_writer_free(w);
    return -1;
}

// ---------------------------------------------------------------------------------------
// Load

// A key that must hold a JSON null / false / empty value because vet does not implement the
// feature it turns on.
static int refuse_feature(const json_t *c, const char *key, const char *path, vet_err *err) {
    json_t *v = json_object_get(c, key);
    if (!v || json_is_null(v) || json_is_false(v)) return 0;
    if ((json_is_object(v) && json_object_size(v) == 0) || (json_is_array(v) && json_array_size(v) == 0)) return 0;
    if (json_is_string(v) && json_string_length(v) == 0) return 0;   // as empty as PEFT's "" (falsy)
    return vet_errf(err, "%s: \"%s\" is set; vet implements plain LoRA only (no %s)", path, key, key);
}

// Parses target_modules (a list of module names, or "all-linear") into a mask.
static int parse_targets(const json_t *v, const char *path, unsigned *mask, vet_err *err) {
    *mask = 0;
    if (!v || json_is_null(v))
        return vet_errf(err, "%s: \"target_modules\" is missing; which projections does the adapter change?", path);
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "all-linear") == 0) { *mask = VET_LORA_ALL; return 0; }
        return vet_errf(err, "%s: \"target_modules\" is the pattern \"%s\"; vet reads a list of module "
                        "names (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj) or \"all-linear\"",
                        path, json_string_value(v));
    }
    if (!json_is_array(v))
        return vet_errf(err, "%s: \"target_modules\" must be a list of module names", path);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        const char *s = json_string_value(e);
        if (!s) return vet_errf(err, "%s: \"target_modules\"[%zu] is not a string", path, i);
        // PEFT matches a name against the end of the module path: "self_attn.q_proj" and
        // "q_proj" mean the same.
        const char *leaf = strrchr(s, '.') ? strrchr(s, '.') + 1 : s;
        int t = 0;
        while (t < VET_LORA_N_TARGETS && strcmp(leaf, vet_lora_target_name(t)) != 0) t++;
        if (t == VET_LORA_N_TARGETS)
            return vet_errf(err, "%s: target module \"%s\" is not one vet can adapt (q_proj, k_proj, "
                            "v_proj, o_proj, gate_proj, up_proj, down_proj)", path, s);
        *mask |= 1u << t;
    }
    if (!*mask) return vet_errf(err, "%s: \"target_modules\" is empty", path);
    return 0;
}

typedef struct {
    int r;
    float alpha, dropout;
    int rslora;
    unsigned targets;
} lora_params;

static int read_config(const char *path, lora_params *p, vet_err *err) {
    if (access(path, F_OK) != 0) return vet_errf(err, "%s: missing: not a PEFT adapter directory", path);
    json_t *c = vet_json_load(path, "adapter config", 0, err);
    if (!c) return -1;
    int rc = -1;
    if (!json_is_object(c)) { vet_errf(err, "%s: not a JSON object", path); goto done; }
    const char *type = json_string_value(json_object_get(c, "peft_type"));
    if (!type || strcmp(type, "LORA") != 0) {
        vet_errf(err, "%s: peft_type is %s; vet reads LORA adapters only", path, type ? type : "missing");
        goto done;
    }
    json_t *r = json_object_get(c, "r");
    if (!json_is_integer(r) || json_integer_value(r) <= 0 || json_integer_value(r) > 65536) {
        vet_errf(err, "%s: \"r\" is %s; it must be the LoRA rank, a positive integer", path,
                 r ? "not a positive integer" : "missing");
        goto done;
    }
    p->r = (int)json_integer_value(r);
    json_t *alpha = json_object_get(c, "lora_alpha");
    if (!json_is_number(alpha)) {
        vet_errf(err, "%s: \"lora_alpha\" is %s; it must be a number (scale = alpha / r)", path,
                 alpha ? "not a number" : "missing");
        goto done;
    }
    p->alpha = (float)json_number_value(alpha);
    json_t *drop = json_object_get(c, "lora_dropout");
    p->dropout = json_is_number(drop) ? (float)json_number_value(drop) : 0.0f;
    if (!(p->dropout >= 0 && p->dropout < 1)) {
        vet_errf(err, "%s: \"lora_dropout\" %g is outside [0, 1)", path, p->dropout);
        goto done;
    }
    p->rslora = json_is_true(json_object_get(c, "use_rslora"));
    const char *bias = json_string_value(json_object_get(c, "bias"));
    if (bias && strcmp(bias, "none") != 0) {
        vet_errf(err, "%s: \"bias\" is \"%s\"; vet implements bias \"none\" only", path, bias);
        goto done;
    }
    static const char *unsupported[] = {"use_dora", "lora_bias", "fan_in_fan_out", "rank_pattern",
                                        "alpha_pattern", "layers_to_transform", "modules_to_save",
                                        "trainable_token_indices", "layer_replication",
                                        // PEFT leaves these modules alone even when target_modules names them
                                        "exclude_modules"};
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
        if (refuse_feature(c, unsupported[i], path, err)) goto done;
    if (parse_targets(json_object_get(c, "target_modules"), path, &p->targets, err)) goto done;
    rc = 0;
done:
    json_decref(c);
    return rc;
}

// Checks that t holds exactly the tensors p implies for m, each with the right shape and a
// float dtype.
static int check_tensors(const vet_model *m, const lora_params *p, const vet_tensors *t,
                         const char *path, vet_err *err) {
    int L = m->cfg.n_layers;
    size_t expected = 0;
    char name[256], got[128], want[128];
    for (int k = 0; k < VET_LORA_N_TARGETS; k++) {
        if (!(p->targets & (1u << k))) continue;
        int64_t out, in;
        vet_adapter_target_dims(&m->cfg, k, &out, &in);
        for (int l = 0; l < L; l++) {
            for (int ab = 0; ab < 2; ab++) {
                int64_t shape[2] = {ab ? out : p->r, ab ? p->r : in};
                vet_adapter_tensor_name(name, sizeof name, l, k, ab ? 'B' : 'A');
                const vet_tensor_ref *ref = vet_tensors_find(t, name);
                if (!ref)
                    return vet_errf(err, "%s: tensor %s is missing (adapter_config.json targets %s "
                                    "in all %d layers)", path, name, vet_lora_target_name(k), L);
                if (ref->ndim != 2 || ref->shape[0] != shape[0] || ref->shape[1] != shape[1])
                    return vet_errf(err, "%s: tensor %s has shape %s but the base model needs %s "
                                    "(r=%d): was the adapter made for another base model?", path, name,
                                    vet_shape_str(got, sizeof got, ref->ndim, ref->shape),
                                    vet_shape_str(want, sizeof want, 2, shape), p->r);
                if (ref->dtype != VET_DT_F32 && ref->dtype != VET_DT_F16 && ref->dtype != VET_DT_BF16)
                    return vet_errf(err, "%s: tensor %s has dtype %s; LoRA weights must be F32, F16 or BF16",
                                    path, name, vet_dtype_name(ref->dtype));
                expected++;
            }
        }
    }
    if (vet_tensors_count(t) != expected) {
        // Name one tensor that does not belong (another layer count, another target, extra modules).
        for (size_t i = 0; i < vet_tensors_count(t); i++) {
            const char *n = vet_tensors_at(t, i)->name;
            int known = 0;
            for (int k = 0; k < VET_LORA_N_TARGETS && !known; k++) {
                if (!(p->targets & (1u << k))) continue;
                for (int l = 0; l < L && !known; l++)
                    for (int ab = 0; ab < 2 && !known; ab++) {
                        vet_adapter_tensor_name(name, sizeof name, l, k, ab ? 'B' : 'A');
                        known = strcmp(name, n) == 0;
                    }
            }
            if (!known) {
                char list[128] = "";
                for (int k = 0; k < VET_LORA_N_TARGETS; k++)
                    if (p->targets & (1u << k))
                        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                                 *list ? "," : "", vet_lora_target_name(k));
                return vet_errf(err, "%s: unexpected tensor %s (the base model has %d layers, "
                                "adapter_config.json targets %s): was the adapter made for another "
                                "base model?", path, n, L, list);
            }
        }
    }
    return 0;
}

// Undoes vet_model_add_lora (model.c's vet_model_free releases lora_mem the same way).
static void drop_lora(vet_model *m) {
    free(m->lora_mem);
    m->lora_mem = NULL;
    m->n_lora = 0;
    m->has_lora = 0;
    memset(&m->lora, 0, sizeof m->lora);
}

int vet_adapter_refuse_as_model(const char *flag, const char *dir, vet_err *err) {
    char config[4200], adapter[4200];
    if (!dir) return 0;
    join(config, sizeof config, dir, "config.json");
    join(adapter, sizeof adapter, dir, ADAPTER_CONFIG);
    if (access(adapter, F_OK) != 0 || access(config, F_OK) == 0) return 0;
    return vet_err_kindf(err, VET_E_USAGE, "%s %s is a LoRA adapter (%s, no config.json), not a model: give its base "
                         "model as %s and this folder as --adapter", flag, dir, ADAPTER_CONFIG, flag);
}

int vet_adapter_load(vet_model *m, const char *dir, vet_err *err) {
    if (m->has_lora) return vet_errf(err, "%s: the model already has a LoRA adapter", dir);
    // A path that is not there is a file that cannot be opened (exit 3), as a missing --model is;
    // a folder without the adapter's files is bad input (below).
    if (access(dir, F_OK) != 0) return vet_err_io(err, "%s: cannot open the adapter: %s", dir, strerror(errno));
    char path[4200];
    lora_params p = {0};
    join(path, sizeof path, dir, ADAPTER_CONFIG);
    if (read_config(path, &p, err)) return -1;
    if (vet_adapter_check_limits(&m->cfg, p.r, p.alpha, p.dropout, p.targets, err))
        return vet_err_prefix(err, "%s", path);

    join(path, sizeof path, dir, ADAPTER_WEIGHTS);
    if (access(path, F_OK) != 0) {
        char bin[4200];
        join(bin, sizeof bin, dir, "adapter_model.bin");
        if (access(bin, F_OK) == 0)
            return vet_errf(err, "%s: vet reads adapter_model.safetensors only (re-save the adapter "
                            "with save_pretrained(..., safe_serialization=True))", bin);
        return vet_errf(err, "%s: missing: not a PEFT adapter directory", path);
    }
    vet_tensors *t = vet_tensors_open_file(path, err);
    if (!t) return -1;
    if (check_tensors(m, &p, t, path, err)) goto fail;

    if (vet_model_add_lora(m, p.r, p.alpha, p.dropout, p.rslora, p.targets, 0, err)) goto fail;
    // From here a failure takes the half-filled adapter off again (see drop_lora).
    char name[256];
    for (int k = 0; k < VET_LORA_N_TARGETS; k++) {
        if (!(p.targets & (1u << k))) continue;
        int64_t out, in;
        vet_adapter_target_dims(&m->cfg, k, &out, &in);
        for (int l = 0; l < m->cfg.n_layers; l++) {
            int64_t sa[2] = {p.r, in}, sb[2] = {out, p.r};
            vet_adapter_tensor_name(name, sizeof name, l, k, 'A');
            if (vet_tensor_read_f32(vet_tensors_find(t, name), 2, sa,
                                    m->lora.A[k] + (size_t)l * p.r * in, err)) goto undo;
            vet_adapter_tensor_name(name, sizeof name, l, k, 'B');
            if (vet_tensor_read_f32(vet_tensors_find(t, name), 2, sb,
                                    m->lora.B[k] + (size_t)l * out * p.r, err)) goto undo;
        }
    }
    vet_tensors_close(t);
    return 0;
undo:
    drop_lora(m);
fail:
    vet_tensors_close(t);
    return -1;
}
