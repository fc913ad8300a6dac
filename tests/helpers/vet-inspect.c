// vet-inspect — test helper: shows what vet's model I/O makes of a model, and writes test files.
//
//   vet-inspect show PATH               config (when PATH has config.json) + tensor table, as JSON
//   vet-inspect config PATH             the config alone (PATH: config.json, model dir or preset name)
//   vet-inspect dump PATH NAME          one tensor converted to fp32, as JSON
//   vet-inspect write OUT               a .safetensors of test tensors (all dtypes); prints the fp32
//                                       source values as JSON so a reader can compare
//   vet-inspect saveconfig CFG OUT      loads CFG (config.json, dir or preset) and saves it to OUT
//   vet-inspect init DIR CFG SEED DTYPE random model dir (DTYPE F32|BF16|F16)
// Used by tests/reference/test_model_io.py; not installed.
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/config.h"
#include "io/hfdir.h"
#include "io/safetensors.h"

static int fail(const char *msg) {
    fprintf(stderr, "vet-inspect: %s\n", msg);
    return 1;
}

static void print_float(float x) {
    if (isnan(x)) printf("\"nan\"");
    else if (isinf(x)) printf(x > 0 ? "\"inf\"" : "\"-inf\"");
    else {
        char s[32];   // 9 digits round-trip any fp32; ".0" keeps -0.0 a float in JSON
        snprintf(s, sizeof s, "%.9g", (double)x);
        printf("%s%s", s, strpbrk(s, ".e") ? "" : ".0");
    }
}

static void print_config(const vet_config *c) {
    printf("{\"arch\": \"%s\", \"dim\": %d, \"hidden_dim\": %d, \"n_layers\": %d, \"n_heads\": %d, \"n_kv_heads\": %d, "
           "\"head_dim\": %d, \"vocab_size\": %d, \"max_pos\": %d, \"rms_eps\": ",
           c->arch, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size, c->max_pos);
    print_float(c->rms_eps);
    printf(", \"rope_theta\": ");
    print_float(c->rope_theta);
    printf(", \"rope_type\": %d, \"rope_factor\": ", c->rope_type);
    print_float(c->rope_factor);
    printf(", \"rope_low_freq_factor\": ");
    print_float(c->rope_low_freq_factor);
    printf(", \"rope_high_freq_factor\": ");
    print_float(c->rope_high_freq_factor);
    printf(", \"rope_orig_max_pos\": %d, \"tie_embeddings\": %d, \"qkv_bias\": %d, \"mlp_bias\": %d, "
           "\"bos_id\": %d, \"eos_id\": %d, \"pad_id\": %d, \"eos_ids\": [",
           c->rope_orig_max_pos, c->tie_embeddings, c->qkv_bias, c->mlp_bias, c->bos_id, c->eos_id, c->pad_id);
    for (int i = 0; i < c->n_eos; i++) printf("%s%d", i ? ", " : "", c->eos_ids[i]);
    printf("], \"torch_dtype\": \"%s\", \"n_params\": %" PRId64 "}", c->torch_dtype, vet_config_n_params(c));
}

static int load_any_config(vet_config *c, const char *what, vet_err *err) {
    struct stat st;
    if (stat(what, &st) == 0) return vet_config_load(c, what, err);
    return vet_config_preset(c, what, err);
}

static int cmd_show(const char *path) {
    vet_err err;
    vet_tensors *t = vet_tensors_open_dir(path, &err);
    if (!t) return fail(err.msg);
    char cj[4096];
    snprintf(cj, sizeof cj, "%s/config.json", path);
    struct stat st;
    printf("{\"config\": ");
    vet_config c;
    if (stat(cj, &st) == 0) {
        if (vet_config_load(&c, cj, &err) != 0) {
            vet_tensors_close(t);
            return fail(err.msg);
        }
        print_config(&c);
        printf(", \"check\": ");
        // as vet_model_load decides it
        if (vet_hf_tie_from_weights(&c, t, path, &err) == 0 && vet_hf_check_tensors(&c, t, path, &err) == 0)
            printf("\"ok\"");
        else {
            printf("\"");
            for (const char *s = err.msg; *s; s++) printf(*s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
            printf("\"");
        }
    } else {
        printf("null");
    }
    const char *fmt = vet_tensors_meta(t, "format");
    printf(", \"format\": \"%s\", \"tensors\": [", fmt ? fmt : "");
    for (size_t i = 0; i < vet_tensors_count(t); i++) {
        const vet_tensor_ref *r = vet_tensors_at(t, i);
        printf("%s\n  {\"name\": \"%s\", \"dtype\": \"%s\", \"shape\": [", i ? "," : "", r->name, vet_dtype_name(r->dtype));
        for (int d = 0; d < r->ndim; d++) printf("%s%" PRId64, d ? ", " : "", r->shape[d]);
        const char *base = strrchr(r->file, '/');
        printf("], \"nbytes\": %zu, \"file\": \"%s\"}", r->nbytes, base ? base + 1 : r->file);
    }
    printf("]}\n");
    vet_tensors_close(t);
    return 0;
}

static int cmd_dump(const char *path, const char *name) {
    vet_err err;
    vet_tensors *t = vet_tensors_open_dir(path, &err);
    if (!t) return fail(err.msg);
    const vet_tensor_ref *r = vet_tensors_find(t, name);
    if (!r) {
        vet_tensors_close(t);
        return fail("no such tensor");
    }
    int64_t n = vet_tensor_numel(r);
    float *buf = malloc((size_t)n * sizeof(float) + 1);
    if (vet_tensor_convert_f32(r, r->ndim, r->shape, buf, &err) != 0) {
        free(buf);
        vet_tensors_close(t);
        return fail(err.msg);
    }
    printf("{\"name\": \"%s\", \"dtype\": \"%s\", \"values\": [", r->name, vet_dtype_name(r->dtype));
    for (int64_t i = 0; i < n; i++) {
        printf(i ? ", " : "");
        print_float(buf[i]);
    }
    printf("]}\n");
    free(buf);
    vet_tensors_close(t);
    return 0;
}

// Test values spanning many magnitudes, plus the cases 16-bit narrowing must get right.
static int cmd_write(const char *out) {
    enum { N = 60 };
    float v[N];
    for (int i = 0; i < N - 12; i++) v[i] = sinf(1.3f * (float)i + 0.1f) * powf(10.0f, (float)(i % 9) - 4.0f);
    const float special[12] = {0.0f, -0.0f, INFINITY, -INFINITY, 65504.0f, 65520.0f, 70000.0f, 1e-7f,
                               -3e-8f, 6.1e-5f, 1.00390625f, 3.0e38f};
    memcpy(v + N - 12, special, sizeof special);
    int32_t i32[6] = {0, 1, -1, 2147483647, -2147483647 - 1, 12345};
    int64_t i64[4] = {0, -5, INT64_MAX, INT64_MIN};
    uint8_t u8[3] = {0, 128, 255};
    int8_t i8[3] = {-128, 0, 127};
    vet_err err;
    vet_st_writer *w = vet_st_writer_new();
    int64_t s2[2] = {6, 10}, s1[1] = {6}, s4[1] = {4}, s3[1] = {3}, s0[2] = {0, 4};
    int rc = vet_st_writer_add_f32_as(w, "f32", VET_DT_F32, 2, s2, v, &err) ||
             vet_st_writer_add_f32_as(w, "f16", VET_DT_F16, 2, s2, v, &err) ||
             vet_st_writer_add_f32_as(w, "bf16", VET_DT_BF16, 2, s2, v, &err) ||
             vet_st_writer_add(w, "i32", VET_DT_I32, 1, s1, i32, &err) ||
             vet_st_writer_add(w, "i64", VET_DT_I64, 1, s4, i64, &err) ||
             vet_st_writer_add(w, "u8", VET_DT_U8, 1, s3, u8, &err) ||
             vet_st_writer_add(w, "i8", VET_DT_I8, 1, s3, i8, &err) ||
             vet_st_writer_add(w, "empty", VET_DT_F32, 2, s0, NULL, &err) ||
             vet_st_writer_add_f32_as(w, "scalar", VET_DT_F32, 0, NULL, v + 1, &err) ||
             vet_st_writer_meta(w, "writer", "vet-inspect", &err) || vet_st_writer_write(w, out, &err);
    vet_st_writer_free(w);
    if (rc) return fail(err.msg);
    printf("{\"values\": [");
    for (int i = 0; i < N; i++) {
        printf(i ? ", " : "");
        print_float(v[i]);
    }
    printf("]}\n");
    return 0;
}

static int cmd_saveconfig(const char *in, const char *out) {
    vet_err err;
    vet_config c;
    if (load_any_config(&c, in, &err) != 0 || vet_config_save(&c, out, &err) != 0) return fail(err.msg);
    return 0;
}

static int cmd_init(const char *dir, const char *cfg, const char *seed, const char *dtype) {
    vet_err err;
    vet_config c;
    if (load_any_config(&c, cfg, &err) != 0) return fail(err.msg);
    int dt = vet_dtype_parse(dtype);
    if (dt < 0) return fail("dtype must be F32, BF16 or F16");
    if (vet_hf_init_dir(dir, &c, strtoull(seed, NULL, 10), (vet_dtype)dt, NULL, &err) != 0) return fail(err.msg);
    return 0;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (strcmp(cmd, "show") == 0 && argc == 3) return cmd_show(argv[2]);
    if (strcmp(cmd, "config") == 0 && argc == 3) {
        vet_err err;
        vet_config c;
        if (load_any_config(&c, argv[2], &err) != 0) return fail(err.msg);
        print_config(&c);
        printf("\n");
        return 0;
    }
    if (strcmp(cmd, "dump") == 0 && argc == 4) return cmd_dump(argv[2], argv[3]);
    if (strcmp(cmd, "write") == 0 && argc == 3) return cmd_write(argv[2]);
    if (strcmp(cmd, "saveconfig") == 0 && argc == 4) return cmd_saveconfig(argv[2], argv[3]);
    if (strcmp(cmd, "init") == 0 && argc == 6) return cmd_init(argv[2], argv[3], argv[4], argv[5]);
    fprintf(stderr, "usage: vet-inspect show PATH | config PATH | dump PATH NAME | write OUT | "
                    "saveconfig CFG OUT | init DIR CFG SEED DTYPE\n");
    return 2;
}
