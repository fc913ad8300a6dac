// kv_forward.c — the forward pass for generation: one sequence, keys and values cached,
// so each new token costs one position's work instead of the whole prefix again.
// The same ops as training (forward_backward.c); only attention reads the cache.
#include <stdlib.h>
#include <string.h>

#include "model/lora.h"
#include "model/model.h"
#include "model/ops.h"

struct vet_kv {
    int max_len, len;
    int L, C, F, Q, KV, V, r;
    float *k, *v;          // (L, max_len, KV) after RoPE / as projected
    float *cos_t, *sin_t;  // (max_len, hd/2)
    int32_t *pos;          // (max_len) scratch: positions of the new tokens
    // scratch for up to max_len new tokens
    float *x, *h, *q, *att, *proj, *gate, *up, *act, *u, *rstd, *last;
    void *mem;
};

vet_kv *vet_kv_new(const vet_model *m, int max_len, vet_err *err) {
    const vet_config *c = &m->cfg;
    if (max_len <= 0) {
        vet_errf(err, "a key/value cache needs max_len > 0 (got %d)", max_len);
        return NULL;
    }
    vet_kv *kv = calloc(1, sizeof *kv);
    if (!kv) {
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    size_t T = max_len, L = c->n_layers, C = c->dim, F = c->hidden_dim;
    size_t Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
    size_t r = m->has_lora ? m->lora.r : 1;
    kv->max_len = max_len, kv->L = (int)L, kv->C = (int)C, kv->F = (int)F, kv->Q = (int)Q;
    kv->KV = (int)KV, kv->V = c->vocab_size, kv->r = (int)r;
    struct { float **p; size_t n; } t[] = {
        {&kv->k, L * T * KV}, {&kv->v, L * T * KV}, {&kv->cos_t, T * c->head_dim / 2},
        {&kv->sin_t, T * c->head_dim / 2}, {&kv->x, T * C}, {&kv->h, T * C}, {&kv->q, T * Q},
        {&kv->att, T * Q}, {&kv->proj, T * C}, {&kv->gate, T * F}, {&kv->up, T * F},
        {&kv->act, T * F}, {&kv->u, T * r}, {&kv->rstd, T}, {&kv->last, C},
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) total += (t[i].n + 15) & ~(size_t)15;
    float *mem = aligned_alloc(64, total * sizeof(float));
    kv->pos = malloc(T * sizeof(int32_t));
    float *inv = malloc((size_t)c->head_dim / 2 * sizeof(float));
    if (!mem || !kv->pos || !inv) {
        free(mem);
        free(inv);
        free(kv->pos);
        free(kv);
        vet_err_nomem(err, "out of memory for a key/value cache of %d positions (%.2f GB)", max_len,
                 total * 4.0 / 1e9);
        return NULL;
    }
    size_t off = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        *t[i].p = mem + off;
        off += (t[i].n + 15) & ~(size_t)15;
    }
    kv->mem = mem;
    vet_rope_inv_freq(c, inv);
    rope_tables(kv->cos_t, kv->sin_t, max_len, c->head_dim, inv);
    free(inv);
    return kv;
}

void vet_kv_free(vet_kv *kv) {
    if (!kv) return;
    free(kv->mem);
    free(kv->pos);
    free(kv);
}

void vet_kv_reset(vet_kv *kv) { kv->len = 0; }
int vet_kv_len(const vet_kv *kv) { return kv->len; }

static void proj(const vet_model *m, vet_kv *kv, int l, int t, float *out, const float *inp, int n) {
    int outc, in;
    vet_lora_dims(&m->cfg, t, &outc, &in);
    lora_proj_w p = lora_layer_proj(m, l, t);
    lora_proj_forward(out, kv->u, NULL, inp, p.w, p.b, p.A, p.B, kv->r, m->lora.scale, 0.0f, 0, 0, n,
                      in, outc);
}

int vet_model_step(const vet_model *m, vet_kv *kv, const int32_t *tokens, int n, float *logits,
                   vet_err *err) {
    const vet_config *c = &m->cfg;
    if (n <= 0) return vet_errf(err, "a step needs at least one token (got %d)", n);
    if (kv->len + n > kv->max_len)
        return vet_errf(err, "the sequence would reach %d positions, past the cache's %d (make "
                             "the cache longer)", kv->len + n, kv->max_len);
    if (m->has_lora && kv->r != m->lora.r)
        return vet_errf(err, "the cache was made before the LoRA adapters were added");
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return vet_errf(err, "token %d at %d is outside the vocabulary [0, %d)", tokens[i], i,
                            c->vocab_size);
        kv->pos[i] = kv->len + i;
    }
    int C = kv->C, F = kv->F, KV = kv->KV, p0 = kv->len;
    size_t lstride = (size_t)kv->max_len * KV;
    embedding_forward(kv->x, tokens, m->w.embed, n, C);
    for (int l = 0; l < c->n_layers; l++) {
        float *kc = kv->k + l * lstride, *vc = kv->v + l * lstride;
        rmsnorm_forward(kv->h, kv->rstd, kv->x, m->w.attn_norm + (size_t)l * C, n, C, c->rms_eps);
        proj(m, kv, l, 0, kv->q, kv->h, n);
        proj(m, kv, l, 1, kc + (size_t)p0 * KV, kv->h, n);  // new keys straight into the cache
        proj(m, kv, l, 2, vc + (size_t)p0 * KV, kv->h, n);
        rope_forward(kv->q, kv->pos, kv->cos_t, kv->sin_t, n, c->n_heads, c->head_dim);
        rope_forward(kc + (size_t)p0 * KV, kv->pos, kv->cos_t, kv->sin_t, n, c->n_kv_heads, c->head_dim);
        attention_cached_forward(kv->att, kv->q, kc, vc, n, p0, c->n_heads, c->n_kv_heads, c->head_dim);
        proj(m, kv, l, 3, kv->proj, kv->att, n);
        add_inplace(kv->x, kv->proj, (size_t)n * C);
        rmsnorm_forward(kv->h, kv->rstd, kv->x, m->w.mlp_norm + (size_t)l * C, n, C, c->rms_eps);
        proj(m, kv, l, 4, kv->gate, kv->h, n);
        proj(m, kv, l, 5, kv->up, kv->h, n);
        swiglu_forward(kv->act, kv->gate, kv->up, (size_t)n * F);
        proj(m, kv, l, 6, kv->proj, kv->act, n);
        add_inplace(kv->x, kv->proj, (size_t)n * C);
    }
    kv->len += n;
    if (logits) {  // only the last token's: that is what generation samples from
        rmsnorm_forward(kv->last, kv->rstd, kv->x + (size_t)(n - 1) * C, m->w.final_norm, 1, C, c->rms_eps);
        matmul_forward(logits, kv->last, m->w.lm_head, NULL, 1, C, kv->V);
    }
    return 0;
}
