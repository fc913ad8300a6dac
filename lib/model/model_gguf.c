// model_gguf.c — see model_gguf.h. GGUF tensor names are llama.cpp's:
//   token_embd.weight (V, C)   output_norm.weight (C)   output.weight (V, C), absent when tied
//   blk.N.attn_norm / attn_q / attn_k / attn_v / attn_output / ffn_norm / ffn_gate / ffn_up /
//   ffn_down .weight, and for qwen2 blk.N.attn_q / attn_k / attn_v .bias; rope_freqs.weight
//   (head_dim/2), llama3 rope factors, is read with the config (io/gguf_config.c), not here
// GGUF dims are ne[0] fastest, so a weight (out, in) has ne = {in, out}: dequantized in file
// order it is the row-major (out, in) matrix vet holds, no transpose needed.
#include "model/model_gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ggml_dequant.h"
#include "io/gguf_config.h"
#include "io/hfdir.h"
#include "model/model_save.h"

// Hugging Face's per-layer names (after "model.layers.N.") and llama.cpp's (after "blk.N.").
static const char *const layer_names[][2] = {
    {"input_layernorm.weight", "attn_norm.weight"},     {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},       {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},           {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},           {"self_attn.o_proj.weight", "attn_output.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},            {"mlp.down_proj.weight", "ffn_down.weight"},
};
#define N_LAYER_NAMES (sizeof layer_names / sizeof layer_names[0])
static const char *const top_names[][2] = {
    {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

// The GGUF name of a vet tensor's HF name into buf; -1 for a name with no GGUF counterpart.
static int gguf_name(const char *hf, char *buf, size_t n) {
    for (size_t i = 0; i < 3; i++)
        if (strcmp(hf, top_names[i][0]) == 0) return snprintf(buf, n, "%s", top_names[i][1]) > 0 ? 0 : -1;
    int layer, off = 0;
    if (sscanf(hf, "model.layers.%d.%n", &layer, &off) != 1 || off == 0) return -1;
    for (size_t i = 0; i < N_LAYER_NAMES; i++)
        if (strcmp(hf + off, layer_names[i][0]) == 0) return snprintf(buf, n, "blk.%d.%s", layer, layer_names[i][1]) > 0 ? 0 : -1;
    return -1;
}

// "{a, b}" of a tensor's ne.
static const char *ne_str(char *buf, size_t n, const int64_t *ne, int nd) {
    int o = snprintf(buf, n, "{");
    for (int i = 0; i < nd && o < (int)n; i++) o += snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)ne[i]);
    if (o < (int)n) snprintf(buf + o, n - o, "}");
    return buf;
}

// One tensor: present, of the shape the config says (GGUF order: ne = reversed HF shape), of a
// type vet reads. Returns it, or NULL with err.
static const vet_gguf_tensor *check_one(const vet_gguf *g, const char *hf, int ndim, const int64_t *shape,
                                        vet_err *err) {
    char name[128];
    if (gguf_name(hf, name, sizeof name) < 0) return vet_errf(err, "no GGUF name for %s", hf), NULL;
    const vet_gguf_tensor *t = vet_gguf_find_tensor(g, name);
    if (!t)
        return vet_errf(err, "%s: tensor %s is missing (is this a llama/qwen2 model with the shape its metadata "
                        "describes?)", vet_gguf_path(g), name), NULL;
    int64_t want[VET_GGUF_MAX_DIMS] = {1, 1, 1, 1};
    for (int i = 0; i < ndim; i++) want[i] = shape[ndim - 1 - i];
    for (int i = 0; i < VET_GGUF_MAX_DIMS; i++)
        if (t->ne[i] != want[i]) {
            char a[96], b[96];
            return vet_errf(err, "%s: tensor %s has ne %s, but the metadata makes it %s", vet_gguf_path(g), name,
                            ne_str(a, sizeof a, t->ne, t->n_dims), ne_str(b, sizeof b, want, ndim)), NULL;
        }
    if (!vet_ggml_can_dequant(t->type))
        return vet_errf(err, "%s: tensor %s has type %s, which vet does not read (it reads %s)", vet_gguf_path(g), name,
                        vet_ggml_type_get(t->type).name, vet_ggml_dequant_names()), NULL;
    return t;
}

// 1 when name is a tensor the model of config c has.
static int known(const vet_config *c, const char *name) {
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "output_norm.weight")) return 1;
    if (!strcmp(name, "rope_freqs.weight")) return 1;   // read into the config (io/gguf_config.h)
    if (!strcmp(name, "output.weight")) return !c->tie_embeddings;
    int layer, off = 0;
    if (sscanf(name, "blk.%d.%n", &layer, &off) != 1 || off == 0 || layer < 0 || layer >= c->n_layers) return 0;
    char canon[64];
    snprintf(canon, sizeof canon, "blk.%d.", layer);   // "blk.01." is not llama.cpp's
    if (strncmp(name, canon, strlen(canon))) return 0;
    for (size_t i = 0; i < N_LAYER_NAMES; i++)
        if (strcmp(name + off, layer_names[i][1]) == 0) return c->qkv_bias || !strstr(name + off, ".bias");
    return 0;
}

// llama.cpp's converter stores Q and K with each head's rows reordered: the row for (half s,
// index i) of a head of hd rows, Hugging Face's row s*hd/2 + i, sits at 2*i + s. Undo it for each
// of the n_heads heads of every layer's (n_heads*hd, C) matrix w; tmp holds one head.
static void unpermute_heads(float *w, int n_layers, int n_heads, int hd, int C, float *tmp) {
    size_t head = (size_t)hd * C;
    for (size_t h = 0; h < (size_t)n_layers * n_heads; h++) {
        float *p = w + h * head;
        memcpy(tmp, p, head * sizeof(float));
        for (int i = 0; i < hd / 2; i++)
            for (int s = 0; s < 2; s++)
                memcpy(p + (size_t)(s * hd / 2 + i) * C, tmp + (size_t)(2 * i + s) * C, (size_t)C * sizeof(float));
    }
}

// Before anything is allocated: every tensor the config needs is there with its shape and a type
// vet reads, and every tensor of the file is one the model has (anything else is a model vet
// would run wrong). So a small hostile file cannot make vet allocate a large model.
static int check_tensors(const vet_gguf *g, const vet_config *c, vet_err *err) {
    int n = vet_hf_tensors(c, NULL, 0);
    vet_hf_tensor *t = malloc((size_t)n * sizeof *t);
    if (!t) return vet_err_nomem(err, "out of memory");
    vet_hf_tensors(c, t, n);
    int rc = 0;
    for (int k = 0; k < n && !rc; k++) rc = check_one(g, t[k].name, t[k].ndim, t[k].shape, err) ? 0 : -1;
    free(t);
    if (rc || vet_gguf_n_tensors(g) == (size_t)n) return rc;
    for (size_t i = 0; i < vet_gguf_n_tensors(g); i++) {
        const vet_gguf_tensor *x = vet_gguf_tensor_at(g, i);
        if (!known(c, x->name))
            return vet_errf(err, "%s: tensor %s is not part of a %s model as vet runs it (%zu tensors, %d expected)",
                            vet_gguf_path(g), x->name, c->arch, vet_gguf_n_tensors(g), n);
    }
    return 0;
}

// Every tensor dequantized into the model's buffer (checked by check_tensors), then Q and K of
// the llama arch put back in Hugging Face's row order.
static int load_weights(vet_model *m, const vet_gguf *g, vet_err *err) {
    int n = vet_model_tensors(m, NULL, 0);
    vet_named_tensor *t = malloc((size_t)n * sizeof *t);
    if (!t) return vet_err_nomem(err, "out of memory");
    vet_model_tensors(m, t, n);
    int rc = 0;
    for (int k = 0; k < n && !rc; k++) {
        const vet_gguf_tensor *x = check_one(g, t[k].name, t[k].ndim, t[k].shape, err);
        rc = x ? vet_gguf_tensor_f32(g, x, t[k].p, err) : -1;
    }
    free(t);
    if (rc) return -1;
    if (strcmp(m->cfg.arch, "llama") == 0) {
        const vet_config *c = &m->cfg;
        float *tmp = malloc((size_t)c->head_dim * c->dim * sizeof(float));
        if (!tmp) return vet_err_nomem(err, "out of memory");
        unpermute_heads(m->w.wq, c->n_layers, c->n_heads, c->head_dim, c->dim, tmp);
        unpermute_heads(m->w.wk, c->n_layers, c->n_kv_heads, c->head_dim, c->dim, tmp);
        free(tmp);
    }
    return 0;
}

int vet_model_load_gguf(vet_model *m, const char *path, vet_err *err) {
    memset(m, 0, sizeof *m);
    vet_gguf *g = vet_gguf_open(path, err);
    if (!g) return -1;
    vet_config cfg;
    int rc = vet_gguf_config(&cfg, g, err);
    if (!rc) rc = check_tensors(g, &cfg, err);
    if (!rc && vet_check_memory((size_t)vet_config_n_params(&cfg) * sizeof(float), "its weights in fp32", err))
        rc = vet_err_prefix(err, "%s", path);
    if (!rc) rc = vet_model_alloc(m, &cfg, err);
    if (!rc && (rc = load_weights(m, g, err)) != 0) vet_model_free(m);
    vet_gguf_close(g);
    return rc;
}
