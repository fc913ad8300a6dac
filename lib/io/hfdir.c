// hfdir.c — see hfdir.h.
#include "io/hfdir.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/rng.h"

char *vet_hf_name(char *buf, size_t n, int layer, const char *suffix) {
    if (layer < 0) snprintf(buf, n, "%s", suffix);
    else snprintf(buf, n, "model.layers.%d.%s", layer, suffix);
    return buf;
}

const char *vet_dtype_torch_name(vet_dtype dt) {
    switch (dt) {
    case VET_DT_F32: return "float32";
    case VET_DT_BF16: return "bfloat16";
    case VET_DT_F16: return "float16";
    default: return NULL;
    }
}

// ---------------------------------------------------------------------------------------
// The tensor list

static void put(vet_hf_tensor *out, int max, int *k, int layer, const char *suffix, int ndim, int64_t d0, int64_t d1,
                vet_init_kind init) {
    if (*k < max) {
        vet_hf_tensor *t = &out[*k];
        vet_hf_name(t->name, sizeof t->name, layer, suffix);
        t->ndim = ndim;
        t->shape[0] = d0;
        t->shape[1] = d1;
        t->init = init;
    }
    (*k)++;
}

int vet_hf_tensors(const vet_config *c, vet_hf_tensor *out, int max) {
    int k = 0;
    int64_t d = c->dim, q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim,
            h = c->hidden_dim, v = c->vocab_size;
    put(out, max, &k, -1, "model.embed_tokens.weight", 2, v, d, VET_INIT_NORMAL);
    for (int l = 0; l < c->n_layers; l++) {
        put(out, max, &k, l, "input_layernorm.weight", 1, d, 0, VET_INIT_ONES);
        put(out, max, &k, l, "self_attn.q_proj.weight", 2, q, d, VET_INIT_NORMAL);
        if (c->qkv_bias) put(out, max, &k, l, "self_attn.q_proj.bias", 1, q, 0, VET_INIT_ZEROS);
        put(out, max, &k, l, "self_attn.k_proj.weight", 2, kv, d, VET_INIT_NORMAL);
        if (c->qkv_bias) put(out, max, &k, l, "self_attn.k_proj.bias", 1, kv, 0, VET_INIT_ZEROS);
        put(out, max, &k, l, "self_attn.v_proj.weight", 2, kv, d, VET_INIT_NORMAL);
        if (c->qkv_bias) put(out, max, &k, l, "self_attn.v_proj.bias", 1, kv, 0, VET_INIT_ZEROS);
        put(out, max, &k, l, "self_attn.o_proj.weight", 2, d, q, VET_INIT_NORMAL);
        put(out, max, &k, l, "post_attention_layernorm.weight", 1, d, 0, VET_INIT_ONES);
        put(out, max, &k, l, "mlp.gate_proj.weight", 2, h, d, VET_INIT_NORMAL);
        put(out, max, &k, l, "mlp.up_proj.weight", 2, h, d, VET_INIT_NORMAL);
        put(out, max, &k, l, "mlp.down_proj.weight", 2, d, h, VET_INIT_NORMAL);
    }
    put(out, max, &k, -1, "model.norm.weight", 1, d, 0, VET_INIT_ONES);
    if (!c->tie_embeddings) put(out, max, &k, -1, "lm_head.weight", 2, v, d, VET_INIT_NORMAL);
    return k;
}

static vet_hf_tensor *tensor_list(const vet_config *c, int *n, vet_err *err) {
    *n = vet_hf_tensors(c, NULL, 0);
    vet_hf_tensor *list = malloc((size_t)*n * sizeof *list);
    if (!list) {
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    vet_hf_tensors(c, list, *n);
    return list;
}

// Each tensor of list is in t, with its shape and a float dtype; the first that is not is named.
static int check_listed(const vet_hf_tensor *list, int n, const vet_tensors *t, const char *where, vet_err *err) {
    for (int i = 0; i < n; i++) {
        const vet_tensor_ref *r = vet_tensors_find(t, list[i].name);
        if (!r)
            return vet_errf(err, "%s%stensor '%s' is missing from the weights (config.json and the weights disagree?)",
                            where ? where : "", where ? ": " : "", list[i].name);
        int same = r->ndim == list[i].ndim;
        for (int d = 0; same && d < r->ndim; d++) same = r->shape[d] == list[i].shape[d];
        if (!same) {
            char a[160], b[160];
            return vet_errf(err, "%s: tensor '%s': shape %s, but config.json says %s", r->file, r->name,
                            vet_shape_str(a, sizeof a, r->ndim, r->shape),
                            vet_shape_str(b, sizeof b, list[i].ndim, list[i].shape));
        }
        if (r->dtype != VET_DT_F32 && r->dtype != VET_DT_BF16 && r->dtype != VET_DT_F16)
            return vet_errf(err, "%s: tensor '%s': dtype %s is not a float type", r->file, r->name, vet_dtype_name(r->dtype));
    }
    return 0;
}

// The layer a "model.layers.L...." name belongs to, or -1.
static long layer_of(const char *name) {
    const char *p = "model.layers.";
    if (strncmp(name, p, strlen(p)) != 0) return -1;
    char *end;
    long l = strtol(name + strlen(p), &end, 10);
    return end != name + strlen(p) && *end == '.' ? l : -1;
}

// Every tensor of t is in list: one that is not would be silently left out of the model (a layer
// config.json does not count, a bias it does not have), so the first is refused by name. The
// rotary inv_freq buffer that older transformers saved is derived from config.json, not a weight.
static int check_unlisted(const vet_config *c, const vet_hf_tensor *list, int n, const vet_tensors *t, vet_err *err) {
    for (size_t i = 0; i < vet_tensors_count(t); i++) {
        const vet_tensor_ref *r = vet_tensors_at(t, i);
        int known = strstr(r->name, "rotary_emb.inv_freq") != NULL;
        for (int j = 0; j < n && !known; j++) known = strcmp(r->name, list[j].name) == 0;
        if (known) continue;
        long l = layer_of(r->name);
        char hint[96] = "";
        if (l >= c->n_layers) snprintf(hint, sizeof hint, " (num_hidden_layers is %d)", c->n_layers);
        return vet_errf(err, "%s: tensor '%s' is not part of the %s model config.json describes%s: vet would leave it "
                        "out; correct config.json, or remove the tensor from the weights", r->file, r->name, c->arch, hint);
    }
    return 0;
}

int vet_hf_check_tensors(const vet_config *c, const vet_tensors *t, const char *where, vet_err *err) {
    int n;
    vet_hf_tensor *list = tensor_list(c, &n, err);
    if (!list) return -1;
    int rc = check_listed(list, n, t, where, err);
    if (!rc) rc = check_unlisted(c, list, n, t, err);
    free(list);
    return rc;
}

int vet_hf_tie_from_weights(vet_config *c, const vet_tensors *t, const char *dir, vet_err *err) {
    int has_head = vet_tensors_find(t, "lm_head.weight") != NULL;
    if (!has_head && !c->tie_embeddings)
        return vet_errf(err, "%s: the weights have no lm_head.weight, and config.json's tie_word_embeddings is false (or absent: false for LLaMA and Qwen2): "
                        "transformers would start the output layer from random numbers; if it is the embedding, set "
                        "\"tie_word_embeddings\": true", dir);
    c->tie_embeddings = !has_head;
    return 0;
}

// ---------------------------------------------------------------------------------------
// Files

static int mkdir_p(const char *dir, vet_err *err) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) return vet_err_io(err, "%s: cannot create directory: %s", p, strerror(errno));
            *s = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return vet_errf(err, "%s: not a directory", dir);
    return 0;
}

// Copies src to dst atomically (base/atomic_file.h).
static int copy_file(const char *src, const char *dst, vet_err *err) {
    FILE *in = fopen(src, "rb");
    if (!in) return vet_err_io(err, "%s: cannot open: %s", src, strerror(errno));
    vet_afile out;
    if (vet_afile_open(&out, dst, err) < 0) {
        fclose(in);
        return -1;
    }
    char buf[1 << 16];
    size_t n;
    int ok = 1;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out.f) == n;
    ok = ok && !ferror(in);
    int e = errno;
    fclose(in);
    if (!ok) {
        vet_afile_abort(&out);
        return vet_err_io(err, "%s: cannot copy %s here: %s", dst, src, strerror(e));
    }
    return vet_afile_commit(&out, err);
}

// Copies src to dst unless they are one file (copying a file onto itself would truncate it first).
static int copy_unless_same(const char *src, const char *dst, vet_err *err) {
    struct stat a, b;
    if (stat(src, &a) == 0 && stat(dst, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) return 0;
    return copy_file(src, dst, err);
}

// A tokenizer file is a tokenizer.json when its name ends in .json or its first non-blank byte
// is '{' (as data/tokenizer.h reads it), else a SentencePiece tokenizer.model.
static int is_json_tokenizer(const char *file) {
    size_t n = strlen(file);
    if (n >= 5 && strcmp(file + n - 5, ".json") == 0) return 1;
    if (n >= 6 && strcmp(file + n - 6, ".model") == 0) return 0;
    FILE *f = fopen(file, "rb");
    int c = ' ';
    while (f && (c = fgetc(f)) != EOF && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) {}
    if (f) fclose(f);
    return c == '{';
}

// The tokenizer into dir under its kind's name, with the tokenizer_config.json beside it when
// there is one (it says which ids begin a prompt).
static int ship_tokenizer(const char *dir, const char *tokenizer, vet_err *err) {
    char path[4096], cfg[4096];
    snprintf(path, sizeof path, "%s/%s", dir, is_json_tokenizer(tokenizer) ? "tokenizer.json" : "tokenizer.model");
    if (copy_unless_same(tokenizer, path, err) != 0) return -1;
    const char *slash = strrchr(tokenizer, '/');
    int dlen = slash ? (int)(slash - tokenizer) : 1;
    snprintf(cfg, sizeof cfg, "%.*s/tokenizer_config.json", dlen, slash ? tokenizer : ".");
    if (access(cfg, R_OK) != 0) return 0;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    return copy_unless_same(cfg, path, err);
}

int vet_hf_save_dir(const char *dir, const vet_config *c, vet_st_writer *w, const char *tokenizer_model, vet_err *err) {
    if (mkdir_p(dir, err) != 0) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (access(path, F_OK) == 0)
        return vet_errf(err, "%s: holds a sharded model (model.safetensors.index.json); save into another directory", dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (vet_st_writer_write(w, path, err) != 0) return -1;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (vet_config_save(c, path, err) != 0) return -1;
    return tokenizer_model ? ship_tokenizer(dir, tokenizer_model, err) : 0;
}

// ---------------------------------------------------------------------------------------
// Memory

size_t vet_mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (size_t)kb * 1024;
}

int vet_check_memory(size_t need, const char *what, vet_err *err) {
    size_t avail = vet_mem_available();
    if (avail && need > avail)
        return vet_errf(err, "%s needs %.2f GB of memory, but only %.2f GB is available (MemAvailable in /proc/meminfo)",
                        what, need / 1e9, avail / 1e9);
    return 0;
}

// ---------------------------------------------------------------------------------------
// Random init

#define INIT_STD 0.02   // transformers' initializer_range default for LLaMA and Qwen2
#define INIT_CHUNK 65536

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void vet_hf_init_tensor(const vet_hf_tensor *t, uint64_t seed, int pad_id, float *out) {
    int64_t n = t->ndim == 1 ? t->shape[0] : t->shape[0] * t->shape[1];
    if (t->init != VET_INIT_NORMAL) {
        float v = t->init == VET_INIT_ONES ? 1.0f : 0.0f;
        for (int64_t i = 0; i < n; i++) out[i] = v;
        return;
    }
    // Each chunk has its own stream, so the result does not depend on the thread count.
    uint64_t tseed = vet_rng_hash(seed, fnv1a(t->name));
    int64_t n_chunks = (n + INIT_CHUNK - 1) / INIT_CHUNK;
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < n_chunks; ch++) {
        vet_rng r;
        vet_rng_seed(&r, vet_rng_hash(tseed, (uint64_t)ch));
        int64_t end = (ch + 1) * INIT_CHUNK < n ? (ch + 1) * INIT_CHUNK : n;
        for (int64_t i = ch * INIT_CHUNK; i < end; i++) out[i] = (float)(INIT_STD * vet_rng_normal(&r));
    }
    if (pad_id >= 0 && strcmp(t->name, "model.embed_tokens.weight") == 0 && pad_id < t->shape[0])
        memset(out + (int64_t)pad_id * t->shape[1], 0, (size_t)t->shape[1] * sizeof(float));
}

int vet_hf_init_dir(const char *dir, const vet_config *c, uint64_t seed, vet_dtype dt, const char *tokenizer_model,
                    vet_err *err) {
    const char *tname = vet_dtype_torch_name(dt);
    if (!tname) return vet_errf(err, "model weights are stored as F32, BF16 or F16, not %s", vet_dtype_name(dt));
    vet_config cfg = *c;
    snprintf(cfg.torch_dtype, sizeof cfg.torch_dtype, "%s", tname);
    if (vet_config_validate(&cfg, err) != 0) return -1;

    int n;
    vet_hf_tensor *list = tensor_list(&cfg, &n, err);
    if (!list) return -1;
    // Peak memory: every tensor in dt (the writer holds them all) + one tensor in fp32.
    size_t largest = 0;
    for (int i = 0; i < n; i++) {
        size_t b = (size_t)list[i].shape[0] * (list[i].ndim == 2 ? (size_t)list[i].shape[1] : 1) * 4;
        if (b > largest) largest = b;
    }
    size_t total = vet_config_weight_bytes(&cfg, (int)vet_dtype_size(dt));
    char what[128];
    snprintf(what, sizeof what, "initializing %.2fB parameters as %s", vet_config_n_params(&cfg) / 1e9, vet_dtype_name(dt));
    if (vet_check_memory(total + (dt == VET_DT_F32 ? 0 : largest), what, err) != 0) {
        free(list);
        return -1;
    }
    if (mkdir_p(dir, err) != 0) {
        free(list);
        return -1;
    }
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0 && (double)vfs.f_bavail * vfs.f_frsize < (double)total) {
        free(list);
        return vet_errf(err, "%s: the weights need %.2f GB of disk, but only %.2f GB is free", dir, total / 1e9,
                        (double)vfs.f_bavail * vfs.f_frsize / 1e9);
    }

    vet_st_writer *w = vet_st_writer_new();
    int rc = w ? 0 : vet_err_nomem(err, "out of memory");
    for (int i = 0; i < n && rc == 0; i++) {
        vet_hf_tensor *t = &list[i];
        size_t numel = (size_t)t->shape[0] * (t->ndim == 2 ? (size_t)t->shape[1] : 1);
        float *buf = malloc(numel * sizeof(float) + 1);
        if (!buf) {
            rc = vet_err_nomem(err, "out of memory for tensor '%s'", t->name);
            break;
        }
        vet_hf_init_tensor(t, seed, cfg.pad_id, buf);
        if (dt == VET_DT_F32) {
            rc = vet_st_writer_add_owned(w, t->name, dt, t->ndim, t->shape, buf, err);
            if (rc) free(buf);
        } else {
            rc = vet_st_writer_add_f32_as(w, t->name, dt, t->ndim, t->shape, buf, err);
            free(buf);
        }
    }
    if (rc == 0) rc = vet_hf_save_dir(dir, &cfg, w, tokenizer_model, err);
    vet_st_writer_free(w);
    free(list);
    return rc;
}
