// test_adapter.c — PEFT adapter directories: save/load round trips and every refusal.
// (That PEFT itself loads what vet writes, and the other way round, is checked by
// tests/reference/test_adapter.py and test_parity.py.)
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/adapter.h"
#include "check.h"
#include "base/rng.h"
#include "io/safetensors.h"

// A tiny shape: 2 layers, dim 32, GQA 4/2 heads of 8, MLP 64, vocab 64.
static vet_config tiny_config(int dim, int n_layers) {
    vet_config c;
    vet_err err;
    if (vet_config_preset(&c, "tiny", &err)) { fprintf(stderr, "%s\n", err.msg); exit(1); }
    vet_config_set_vocab(&c, 64);
    c.dim = dim, c.hidden_dim = 2 * dim, c.n_layers = n_layers;
    c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = dim / 4;
    return c;
}

// A model with LoRA whose B is random (so A and B both carry information).
static int model_with_lora(vet_model *m, const vet_config *c, int r, float alpha, float dropout,
                           int rslora, unsigned targets, uint64_t seed) {
    vet_err err = {0};
    memset(m, 0, sizeof *m);
    if (vet_model_init(m, c, seed, &err) ||
        vet_model_add_lora(m, r, alpha, dropout, rslora, targets, seed + 1, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    vet_rng rng;
    vet_rng_seed(&rng, seed + 2);
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!m->lora.B[t]) continue;
        int64_t out, in;
        vet_adapter_target_dims(c, t, &out, &in);
        for (int64_t k = 0; k < (int64_t)c->n_layers * out * r; k++)
            m->lora.B[t][k] = (float)vet_rng_normal(&rng);
    }
    return 0;
}

static char tmp_root[256];

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmp_root, name);
    return buf;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

// Saves a fresh adapter (2 layers, dim 32, r=4, alpha=8, q,v,down) into tmp/name.
static const char *saved_adapter(const char *name, unsigned targets) {
    vet_config c = tiny_config(32, 2);
    vet_model m;
    vet_err err = {0};
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", tmp_path(name));
    if (model_with_lora(&m, &c, 4, 8, 0, 0, targets, 7) || vet_adapter_save(dir, &m, "base/dir", &err)) {
        fprintf(stderr, "saved_adapter: %s\n", err.msg);
        exit(1);
    }
    vet_model_free(&m);
    return dir;
}

// Loads dir into a fresh base of the given shape; returns the error message ("" on success).
static const char *load_into(const char *dir, int dim, int n_layers, int *has_lora) {
    static vet_err err;
    memset(&err, 0, sizeof err);
    vet_config c = tiny_config(dim, n_layers);
    vet_model m = {0};
    if (vet_model_init(&m, &c, 3, &err)) return err.msg;
    int rc = vet_adapter_load(&m, dir, &err);
    if (has_lora) *has_lora = m.has_lora;
    vet_model_free(&m);
    if (rc == 0) err.msg[0] = '\0';
    return err.msg;
}

// Rewrites one key of dir's adapter_config.json (val NULL deletes it; takes val's reference).
static void edit_config(const char *dir, const char *key, json_t *val) {
    char path[600];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_t *c = json_load_file(path, 0, NULL);
    if (!c) { fprintf(stderr, "edit_config: cannot read %s\n", path); exit(1); }
    if (val) json_object_set_new(c, key, val);
    else json_object_del(c, key);
    json_dump_file(c, path, JSON_INDENT(2));
    json_decref(c);
}

// ---------------------------------------------------------------------------------------

static void check_round_trip(int r, float alpha, float dropout, int rslora, unsigned targets, const char *name) {
    vet_config c = tiny_config(32, 2);
    vet_model a, b = {0};
    vet_err err = {0};
    CHECK(model_with_lora(&a, &c, r, alpha, dropout, rslora, targets, 11) == 0);
    const char *dir = tmp_path(name);
    CHECK(vet_adapter_save(dir, &a, "some/base", &err) == 0);
    CHECK(vet_model_init(&b, &c, 99, &err) == 0);
    int rc = vet_adapter_load(&b, dir, &err);
    CHECK(rc == 0);
    if (rc) { fprintf(stderr, "%s\n", err.msg); goto done; }
    CHECK(b.has_lora);
    CHECK(b.lora.r == r);
    CHECK(b.lora.alpha == alpha);
    CHECK(b.lora.dropout == dropout);
    CHECK(b.lora.rslora == rslora);
    CHECK(b.lora.targets == targets);
    CHECK_NEAR(b.lora.scale, a.lora.scale, 1e-7);
    CHECK(b.n_lora == a.n_lora);
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        CHECK((a.lora.A[t] == NULL) == (b.lora.A[t] == NULL));
        if (!a.lora.A[t] || !b.lora.A[t]) continue;
        int64_t out, in;
        vet_adapter_target_dims(&c, t, &out, &in);
        size_t na = (size_t)c.n_layers * r * in, nb = (size_t)c.n_layers * out * r;
        CHECK(memcmp(a.lora.A[t], b.lora.A[t], na * sizeof(float)) == 0);
        CHECK(memcmp(a.lora.B[t], b.lora.B[t], nb * sizeof(float)) == 0);
    }
done:
    vet_model_free(&a);
    vet_model_free(&b);
}

static void round_trip_qkvo(void) {
    check_round_trip(4, 8, 0.05f, 0, VET_LORA_Q | VET_LORA_K | VET_LORA_V | VET_LORA_O, "rt-qkvo");
}
static void round_trip_all_rslora(void) { check_round_trip(8, 16, 0, 1, VET_LORA_ALL, "rt-all"); }
static void round_trip_mlp_only(void) {
    check_round_trip(2, 3.5f, 0.1f, 0, VET_LORA_GATE | VET_LORA_DOWN, "rt-mlp");
}

// The files are what PEFT writes: names, shapes, metadata, config keys.
static void files_look_like_peft(void) {
    const char *dir = saved_adapter("peft-files", VET_LORA_Q | VET_LORA_DOWN);
    char path[600];
    vet_err err = {0};
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    vet_tensors *t = vet_tensors_open_file(path, &err);
    CHECK(t != NULL);
    if (!t) return;
    CHECK(vet_tensors_count(t) == 2 * 2 * 2);  // 2 targets x 2 layers x (A, B)
    CHECK_STR(vet_tensors_meta(t, "format"), "pt");
    const vet_tensor_ref *r = vet_tensors_find(t, "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
    CHECK(r && r->dtype == VET_DT_F32 && r->ndim == 2 && r->shape[0] == 4 && r->shape[1] == 32);
    r = vet_tensors_find(t, "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
    CHECK(r && r->ndim == 2 && r->shape[0] == 32 && r->shape[1] == 4);
    r = vet_tensors_find(t, "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight");
    CHECK(r && r->ndim == 2 && r->shape[0] == 4 && r->shape[1] == 64);
    vet_tensors_close(t);

    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_t *c = json_load_file(path, 0, NULL);
    CHECK(c != NULL);
    if (!c) return;
    CHECK_STR(json_string_value(json_object_get(c, "peft_type")), "LORA");
    CHECK_STR(json_string_value(json_object_get(c, "task_type")), "CAUSAL_LM");
    CHECK_STR(json_string_value(json_object_get(c, "bias")), "none");
    CHECK_STR(json_string_value(json_object_get(c, "base_model_name_or_path")), "base/dir");
    CHECK(json_integer_value(json_object_get(c, "r")) == 4);
    CHECK(json_number_value(json_object_get(c, "lora_alpha")) == 8);
    CHECK(json_is_false(json_object_get(c, "use_rslora")));
    CHECK(json_is_false(json_object_get(c, "fan_in_fan_out")));
    json_t *tm = json_object_get(c, "target_modules");
    CHECK(json_array_size(tm) == 2);
    CHECK_STR(json_string_value(json_array_get(tm, 0)), "q_proj");
    CHECK_STR(json_string_value(json_array_get(tm, 1)), "down_proj");
    json_decref(c);
    // No temporary file is left behind.
    snprintf(path, sizeof path, "%s/adapter_config.json.tmp.%ld", dir, (long)getpid());
    CHECK(access(path, F_OK) != 0);
}

// PEFT also writes target_modules as "all-linear" or with module paths.
static void accepts_peft_spellings(void) {
    const char *dir = saved_adapter("spellings", VET_LORA_ALL);
    edit_config(dir, "target_modules", json_string("all-linear"));
    CHECK_STR(load_into(dir, 32, 2, NULL), "");
    json_t *tm = json_array();
    const char *names[] = {"self_attn.q_proj", "k_proj", "v_proj", "o_proj", "mlp.gate_proj", "up_proj", "down_proj"};
    for (int i = 0; i < 7; i++) json_array_append_new(tm, json_string(names[i]));
    edit_config(dir, "target_modules", tm);
    CHECK_STR(load_into(dir, 32, 2, NULL), "");
}

static void refuses_other_base_shape(void) {
    const char *dir = saved_adapter("other-base", VET_LORA_Q | VET_LORA_V);
    int has_lora = 1;
    const char *msg = load_into(dir, 48, 2, &has_lora);
    CHECK_CONTAINS(msg, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
    CHECK_CONTAINS(msg, "[4, 32]");
    CHECK_CONTAINS(msg, "[4, 48]");
    CHECK_CONTAINS(msg, "another base model");
    CHECK(!has_lora);  // the model is left as it was
}

static void refuses_fewer_layers_in_base(void) {
    const char *dir = saved_adapter("more-layers", VET_LORA_Q);
    CHECK_CONTAINS(load_into(dir, 32, 1, NULL), "unexpected tensor base_model.model.model.layers.1.");
}

static void refuses_more_layers_in_base(void) {
    const char *dir = saved_adapter("fewer-layers", VET_LORA_Q);
    const char *msg = load_into(dir, 32, 3, NULL);
    CHECK_CONTAINS(msg, "layers.2.self_attn.q_proj.lora_A.weight is missing");
}

static void refuses_unknown_target(void) {
    const char *dir = saved_adapter("unknown-target", VET_LORA_Q);
    json_t *tm = json_array();
    json_array_append_new(tm, json_string("q_proj"));
    json_array_append_new(tm, json_string("lm_head"));
    edit_config(dir, "target_modules", tm);
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "target module \"lm_head\"");
    edit_config(dir, "target_modules", json_string(".*attn.*"));
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "pattern");
    edit_config(dir, "target_modules", NULL);
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "\"target_modules\" is missing");
}

static void refuses_missing_r_or_alpha(void) {
    const char *dir = saved_adapter("no-r", VET_LORA_Q);
    edit_config(dir, "r", NULL);
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "\"r\" is missing");
    edit_config(dir, "r", json_string("4"));
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "\"r\" is not a positive integer");
    dir = saved_adapter("no-alpha", VET_LORA_Q);
    edit_config(dir, "lora_alpha", NULL);
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "\"lora_alpha\" is missing");
}

// One set of limits for the writer (vet-train's flags) and every reader: r up to the smaller
// dimension of the tightest adapted projection, alpha finite in (0, 1e9], dropout in [0, 1).
static void limits_shared_by_writer_and_reader(void) {
    vet_config c = tiny_config(32, 2);  // q (32, 32), k/v (16, 32), MLP (64, 32) / (32, 64)
    vet_err err;
    CHECK(vet_adapter_check_limits(&c, 16, 32, 0.1, VET_LORA_ALL, &err) == 0);
    CHECK(vet_adapter_check_limits(&c, 17, 32, 0.1, VET_LORA_ALL, &err) < 0);
    CHECK_CONTAINS(err.msg, "k_proj is (16, 32) in this model, so r must be 1 to 16");
    CHECK(vet_adapter_check_limits(&c, 32, 32, 0.1, VET_LORA_Q | VET_LORA_DOWN, &err) == 0);
    CHECK(vet_adapter_check_limits(&c, 33, 32, 0.1, VET_LORA_Q | VET_LORA_DOWN, &err) < 0);
    CHECK(vet_adapter_check_limits(&c, 0, 32, 0.1, VET_LORA_Q, &err) < 0);
    CHECK(vet_adapter_check_limits(&c, 4, 0, 0.1, VET_LORA_Q, &err) < 0);
    CHECK_CONTAINS(err.msg, "lora_alpha 0");
    CHECK(vet_adapter_check_limits(&c, 4, NAN, 0.1, VET_LORA_Q, &err) < 0);
    CHECK(vet_adapter_check_limits(&c, 4, INFINITY, 0.1, VET_LORA_Q, &err) < 0);
    CHECK(vet_adapter_check_limits(&c, 4, 8, 1.0, VET_LORA_Q, &err) < 0);
    // The reader applies them: an r the writer would refuse is refused on load, model untouched.
    const char *dir = saved_adapter("limits", VET_LORA_Q | VET_LORA_K);
    edit_config(dir, "r", json_integer(20));
    int has = 1;
    CHECK_CONTAINS(load_into(dir, 32, 2, &has), "r=20 is larger than k_proj's smaller dimension");
    CHECK(has == 0);
    edit_config(dir, "r", json_integer(4));
    edit_config(dir, "lora_alpha", json_real(-8));
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "lora_alpha -8");
}

static void refuses_unsupported_features(void) {
    const char *dir = saved_adapter("features", VET_LORA_Q);
    edit_config(dir, "use_dora", json_true());
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "use_dora");
    edit_config(dir, "use_dora", json_false());
    edit_config(dir, "bias", json_string("all"));
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "\"bias\" is \"all\"");
    edit_config(dir, "bias", json_string("none"));
    edit_config(dir, "rank_pattern", json_pack("{s:i}", "q_proj", 8));
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "rank_pattern");
    edit_config(dir, "rank_pattern", json_object());
    // exclude_modules: PEFT leaves those modules alone, so an adapter naming them is refused;
    // null, [] and "" exclude nothing (as PEFT writes it by default: null)
    edit_config(dir, "exclude_modules", json_pack("[s]", "q_proj"));
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "\"exclude_modules\" is set");
    edit_config(dir, "exclude_modules", json_string(".*q_proj"));
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "exclude_modules");
    edit_config(dir, "exclude_modules", json_string(""));
    CHECK_STR(load_into(dir, 32, 2, NULL), "");
    edit_config(dir, "exclude_modules", json_array());
    CHECK_STR(load_into(dir, 32, 2, NULL), "");
    edit_config(dir, "exclude_modules", json_null());
    edit_config(dir, "peft_type", json_string("IA3"));
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "peft_type is IA3");
    edit_config(dir, "peft_type", json_string("LORA"));
    CHECK_STR(load_into(dir, 32, 2, NULL), "");  // back to plain LoRA: loads
}

// Rewrites the weights file without one tensor.
static void refuses_missing_tensor(void) {
    const char *dir = saved_adapter("missing-tensor", VET_LORA_Q | VET_LORA_V);
    char path[600];
    vet_err err = {0};
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    vet_tensors *t = vet_tensors_open_file(path, &err);
    CHECK(t != NULL);
    if (!t) return;
    const char *drop = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight";
    vet_st_writer *w = vet_st_writer_new();
    for (size_t i = 0; i < vet_tensors_count(t); i++) {
        const vet_tensor_ref *r = vet_tensors_at(t, i);
        if (strcmp(r->name, drop) == 0) continue;
        CHECK(vet_st_writer_add(w, r->name, r->dtype, r->ndim, r->shape, r->data, &err) == 0);
    }
    CHECK(vet_st_writer_write(w, path, &err) == 0);  // the map stays valid: write renames
    vet_st_writer_free(w);
    vet_tensors_close(t);
    const char *msg = load_into(dir, 32, 2, NULL);
    CHECK_CONTAINS(msg, drop);
    CHECK_CONTAINS(msg, "missing");
}

// Adapters trained in bf16 are saved in bf16: they load, converted to fp32.
static void loads_bf16_adapter(void) {
    vet_config c = tiny_config(32, 2);
    vet_model a, b = {0};
    vet_err err = {0};
    CHECK(model_with_lora(&a, &c, 4, 8, 0, 0, VET_LORA_Q | VET_LORA_UP, 5) == 0);
    const char *dir = tmp_path("bf16");
    CHECK(vet_adapter_save(dir, &a, NULL, &err) == 0);
    char path[600];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    vet_st_writer *w = vet_st_writer_new();
    char name[256];
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!a.lora.A[t]) continue;
        int64_t out, in;
        vet_adapter_target_dims(&c, t, &out, &in);
        for (int l = 0; l < c.n_layers; l++) {
            int64_t sa[2] = {4, in}, sb[2] = {out, 4};
            vet_adapter_tensor_name(name, sizeof name, l, t, 'A');
            CHECK(vet_st_writer_add_f32_as(w, name, VET_DT_BF16, 2, sa, a.lora.A[t] + l * 4 * in, &err) == 0);
            vet_adapter_tensor_name(name, sizeof name, l, t, 'B');
            CHECK(vet_st_writer_add_f32_as(w, name, VET_DT_BF16, 2, sb, a.lora.B[t] + l * out * 4, &err) == 0);
        }
    }
    CHECK(vet_st_writer_write(w, path, &err) == 0);
    vet_st_writer_free(w);
    CHECK(vet_model_init(&b, &c, 1, &err) == 0);
    CHECK(vet_adapter_load(&b, dir, &err) == 0);
    if (b.has_lora) {
        int64_t out, in;
        vet_adapter_target_dims(&c, 5, &out, &in);  // up_proj
        float worst = 0;
        for (int64_t k = 0; k < c.n_layers * out * 4; k++) {
            float d = fabsf(b.lora.B[5][k] - a.lora.B[5][k]) / fmaxf(fabsf(a.lora.B[5][k]), 1e-30f);
            if (d > worst) worst = d;
        }
        CHECK(worst <= 1.0f / 256);  // bf16 keeps 8 significant bits
        CHECK(worst > 0);            // and it really was bf16
    }
    vet_model_free(&a);
    vet_model_free(&b);
}

static void refuses_missing_files(void) {
    // Nothing there: the I/O error of a path that cannot be opened; a folder that is no adapter: bad input.
    CHECK_CONTAINS(load_into(tmp_path("no-such-dir"), 32, 2, NULL), "no-such-dir: cannot open the adapter: No such file");
    CHECK(mkdir(tmp_path("empty-dir"), 0777) == 0);
    CHECK_CONTAINS(load_into(tmp_path("empty-dir"), 32, 2, NULL), "adapter_config.json: missing");
    const char *dir = saved_adapter("no-weights", VET_LORA_Q);
    char path[600];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    CHECK(unlink(path) == 0);
    CHECK_CONTAINS(load_into(dir, 32, 2, NULL), "adapter_model.safetensors: missing");
}

static void refuses_save_without_lora(void) {
    vet_config c = tiny_config(32, 2);
    vet_model m = {0};
    vet_err err = {0};
    CHECK(vet_model_init(&m, &c, 1, &err) == 0);
    CHECK(vet_adapter_save(tmp_path("none"), &m, NULL, &err) == -1);
    CHECK_CONTAINS(err.msg, "no LoRA");
    vet_model_free(&m);
}

// A base path that is not UTF-8 (Latin-1 "caf\xe9"): written with U+FFFD. jansson gives no
// string for it, and the key went missing from adapter_config.json.
static void base_path_not_utf8(void) {
    vet_config c = tiny_config(32, 2);
    vet_model a;
    vet_err err = {0};
    CHECK(model_with_lora(&a, &c, 4, 8, 0, 0, (1u << 0), 3) == 0);
    const char *dir = tmp_path("latin1_base");
    CHECK(vet_adapter_save(dir, &a, "caf\xe9/base", &err) == 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    CHECK(j != NULL);
    if (j) CHECK_STR(json_string_value(json_object_get(j, "base_model_name_or_path")), "caf\xef\xbf\xbd/base");
    json_decref(j);
    vet_model_free(&a);
}

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "%s/vet-test-adapter.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp_root)) { perror("mkdtemp"); return 1; }
    RUN(round_trip_qkvo);
    RUN(base_path_not_utf8);
    RUN(round_trip_all_rslora);
    RUN(round_trip_mlp_only);
    RUN(files_look_like_peft);
    RUN(accepts_peft_spellings);
    RUN(refuses_other_base_shape);
    RUN(refuses_fewer_layers_in_base);
    RUN(refuses_more_layers_in_base);
    RUN(refuses_unknown_target);
    RUN(refuses_missing_r_or_alpha);
    RUN(refuses_unsupported_features);
    RUN(limits_shared_by_writer_and_reader);
    RUN(refuses_missing_tensor);
    RUN(loads_bf16_adapter);
    RUN(refuses_missing_files);
    RUN(refuses_save_without_lora);
    nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    CHECK_EXIT();
}
