// model_save.c — see model_save.h.
#include "model/model_save.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/adapter.h"
#include "io/hfdir.h"

int vet_model_tensors(const vet_model *m, vet_named_tensor *out, int max) {
    const vet_config *c = &m->cfg;
    const vet_weights *w = &m->w;
    int64_t C = c->dim, F = c->hidden_dim, V = c->vocab_size;
    int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    int n = 0;
#define ADD(ptr, nm, nd, a, b, dec)                                                    \
    do {                                                                               \
        if (n < max) {                                                                 \
            out[n] = (vet_named_tensor){.p = (ptr), .ndim = (nd), .shape = {(a), (b)}, \
                                        .decay = (dec)};                               \
            snprintf(out[n].name, sizeof out[n].name, "%s", (nm));                     \
        }                                                                              \
        n++;                                                                           \
    } while (0)
    char nm[96];
    ADD(w->embed, "model.embed_tokens.weight", 2, V, C, 1);
    for (int l = 0; l < c->n_layers; l++) {
#define L(s) (snprintf(nm, sizeof nm, "model.layers.%d." s, l), nm)
        ADD(w->attn_norm + l * C, L("input_layernorm.weight"), 1, C, 0, 0);
        ADD(w->wq + l * q * C, L("self_attn.q_proj.weight"), 2, q, C, 1);
        ADD(w->wk + l * kv * C, L("self_attn.k_proj.weight"), 2, kv, C, 1);
        ADD(w->wv + l * kv * C, L("self_attn.v_proj.weight"), 2, kv, C, 1);
        if (c->qkv_bias) {
            ADD(w->bq + l * q, L("self_attn.q_proj.bias"), 1, q, 0, 0);
            ADD(w->bk + l * kv, L("self_attn.k_proj.bias"), 1, kv, 0, 0);
            ADD(w->bv + l * kv, L("self_attn.v_proj.bias"), 1, kv, 0, 0);
        }
        ADD(w->wo + l * C * q, L("self_attn.o_proj.weight"), 2, C, q, 1);
        ADD(w->mlp_norm + l * C, L("post_attention_layernorm.weight"), 1, C, 0, 0);
        ADD(w->wgate + l * F * C, L("mlp.gate_proj.weight"), 2, F, C, 1);
        ADD(w->wup + l * F * C, L("mlp.up_proj.weight"), 2, F, C, 1);
        ADD(w->wdown + l * C * F, L("mlp.down_proj.weight"), 2, C, F, 1);
#undef L
    }
    ADD(w->final_norm, "model.norm.weight", 1, C, 0, 0);
    if (!c->tie_embeddings) ADD(w->lm_head, "lm_head.weight", 2, V, C, 1);
#undef ADD
    return n;
}

int vet_model_save(const vet_model *m, const char *dir, vet_dtype dt, const char *tokenizer_model, vet_err *err) {
    if (m->has_lora) return vet_errf(err, "%s: model still has LoRA adapters: merge them first (a bug)", dir);
    int n = vet_model_tensors(m, NULL, 0);
    vet_named_tensor *t = malloc(n * sizeof *t);
    vet_st_writer *w = vet_st_writer_new();
    if (!t || !w) {
        free(t);
        vet_st_writer_free(w);
        return vet_err_nomem(err, "out of memory");
    }
    vet_model_tensors(m, t, n);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = dt == VET_DT_F32 ? vet_st_writer_add(w, t[i].name, dt, t[i].ndim, t[i].shape, t[i].p, err)
                              : vet_st_writer_add_f32_as(w, t[i].name, dt, t[i].ndim, t[i].shape, t[i].p, err);
    vet_config cfg = m->cfg;
    const char *tn = vet_dtype_torch_name(dt);
    snprintf(cfg.torch_dtype, sizeof cfg.torch_dtype, "%s", tn ? tn : "float32");
    if (rc == 0) rc = vet_hf_save_dir(dir, &cfg, w, tokenizer_model, err);
    vet_st_writer_free(w);
    free(t);
    return rc;
}

// The base weight matrix (out, in) of target t in layer l.
static float *target_weight(vet_model *m, int t, int l) {
    const vet_config *c = &m->cfg;
    size_t C = c->dim, F = c->hidden_dim, q = (size_t)c->n_heads * c->head_dim,
           kv = (size_t)c->n_kv_heads * c->head_dim;
    vet_weights *w = &m->w;
    switch (t) {
    case 0: return w->wq + l * q * C;
    case 1: return w->wk + l * kv * C;
    case 2: return w->wv + l * kv * C;
    case 3: return w->wo + l * C * q;
    case 4: return w->wgate + l * F * C;
    case 5: return w->wup + l * F * C;
    default: return w->wdown + l * C * F;
    }
}

void vet_model_merge_lora(vet_model *m) {
    if (!m->has_lora) return;
    const vet_lora *lo = &m->lora;
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!(lo->targets & (1u << t))) continue;
        int64_t out, in;
        vet_adapter_target_dims(&m->cfg, t, &out, &in);
        for (int l = 0; l < m->cfg.n_layers; l++) {
            const float *A = lo->A[t] + (size_t)l * lo->r * in;   // (r, in)
            const float *B = lo->B[t] + (size_t)l * out * lo->r;  // (out, r)
            // W (out, in) += scale · B · A
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)out, (int)in, lo->r, lo->scale, B,
                        lo->r, A, (int)in, 1.0f, target_weight(m, t, l), (int)in);
        }
    }
    m->has_lora = 0;
    free(m->lora_mem);
    m->lora_mem = NULL;
    m->n_lora = 0;
    memset(&m->lora, 0, sizeof m->lora);
}
