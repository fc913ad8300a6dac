// model.c — batches, the weight buffer's layout, random init and loading a HF directory.
// The forward and backward passes are in forward_backward.c.
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "model/model_gguf.h"
#include "model/model_save.h"
#include "io/gguf_config.h"
#include "io/hfdir.h"
#include "io/safetensors.h"

// ---------------------------------------------------------------------------------------
// Batch

int vet_batch_from_rows(vet_batch *b, const vet_row *rows, int n_rows, int vocab_size,
                        vet_err *err) {
    memset(b, 0, sizeof *b);
    if (n_rows <= 0) return vet_errf(err, "a batch needs at least one row (got %d)", n_rows);
    int T = 0;
    for (int r = 0; r < n_rows; r++) {
        const vet_row *w = &rows[r];
        if (w->n <= 0) return vet_errf(err, "row %d is empty", r);
        if (w->n_samples <= 0 || w->starts[0] != 0)
            return vet_errf(err, "row %d: starts must begin at 0 (got %s%d)", r,
                            w->n_samples <= 0 ? "no samples, " : "",
                            w->n_samples > 0 ? w->starts[0] : 0);
        for (int s = 1; s < w->n_samples; s++)
            if (w->starts[s] <= w->starts[s - 1] || w->starts[s] >= w->n)
                return vet_errf(err, "row %d: start %d of sample %d is not ascending inside the "
                                     "row's %d tokens", r, w->starts[s], s, w->n);
        for (int i = 0; i < w->n; i++) {
            if (w->tokens[i] < 0 || w->tokens[i] >= vocab_size)
                return vet_errf(err, "row %d: token %d at %d is outside the vocabulary [0, %d)", r,
                                w->tokens[i], i, vocab_size);
            if (w->targets[i] < -1 || w->targets[i] >= vocab_size)
                return vet_errf(err, "row %d: target %d at %d is outside the vocabulary [0, %d) "
                                     "and not -1", r, w->targets[i], i, vocab_size);
        }
        if (w->n > T) T = w->n;
    }
    size_t n = (size_t)n_rows * T;
    b->B = n_rows, b->T = T;
    b->tokens = calloc(n, sizeof(int32_t));
    b->targets = malloc(n * sizeof(int32_t));
    b->pos = calloc(n, sizeof(int32_t));
    b->seg = malloc(n * sizeof(int32_t));
    if (!b->tokens || !b->targets || !b->pos || !b->seg) {
        vet_batch_free(b);
        return vet_err_nomem(err, "out of memory for a batch of %d x %d", n_rows, T);
    }
    for (size_t i = 0; i < n; i++) b->targets[i] = -1, b->seg[i] = -1;
    for (int r = 0; r < n_rows; r++) {
        const vet_row *w = &rows[r];
        size_t o = (size_t)r * T;
        memcpy(b->tokens + o, w->tokens, (size_t)w->n * sizeof(int32_t));
        memcpy(b->targets + o, w->targets, (size_t)w->n * sizeof(int32_t));
        int s = 0;
        for (int i = 0; i < w->n; i++) {
            while (s + 1 < w->n_samples && i >= w->starts[s + 1]) s++;
            b->seg[o + i] = s;
            b->pos[o + i] = i - w->starts[s];
        }
    }
    return 0;
}

int vet_batch_slice(vet_batch *dst, const vet_batch *src, int r0, int n, vet_err *err) {
    memset(dst, 0, sizeof *dst);
    if (r0 < 0 || n <= 0 || r0 + n > src->B)
        return vet_errf(err, "rows [%d, %d) are not a slice of a batch of %d rows", r0, r0 + n, src->B);
    size_t off = (size_t)r0 * src->T, cnt = (size_t)n * src->T, bytes = cnt * sizeof(int32_t);
    dst->B = n, dst->T = src->T, dst->row0 = src->row0 + (int64_t)off;
    dst->tokens = malloc(bytes), dst->targets = malloc(bytes), dst->pos = malloc(bytes), dst->seg = malloc(bytes);
    if (!dst->tokens || !dst->targets || !dst->pos || !dst->seg) {
        vet_batch_free(dst);
        return vet_err_nomem(err, "out of memory for a batch of %d x %d", n, src->T);
    }
    memcpy(dst->tokens, src->tokens + off, bytes);
    memcpy(dst->targets, src->targets + off, bytes);
    memcpy(dst->pos, src->pos + off, bytes);
    memcpy(dst->seg, src->seg + off, bytes);
    return 0;
}

void vet_batch_free(vet_batch *b) {
    free(b->tokens);
    free(b->targets);
    free(b->pos);
    free(b->seg);
    memset(b, 0, sizeof *b);
}

int vet_batch_n_targets(const vet_batch *b) {
    int n = 0;
    for (size_t i = 0; i < (size_t)b->B * b->T; i++) n += b->targets[i] != -1;
    return n;
}

long vet_batch_drop_tokens(vet_batch *b, double p, int32_t replace_id, uint64_t seed) {
    if (!(p > 0)) return 0;
    vet_rng g;
    vet_rng_seed(&g, seed);
    long dropped = 0;
    for (size_t i = 0; i < (size_t)b->B * b->T; i++) {
        if (b->seg[i] < 0 || b->pos[i] == 0 || b->targets[i] != -1) continue;  // padding, BOS, loss
        if (vet_rng_uniform_double(&g) < p) {
            b->tokens[i] = replace_id;
            dropped++;
        }
    }
    return dropped;
}

// ---------------------------------------------------------------------------------------
// Weights: one buffer, tensors in this order (llm.c style). With mem == NULL only counts.

static size_t weights_layout(const vet_config *c, vet_weights *w, float *mem) {
    size_t L = c->n_layers, C = c->dim, F = c->hidden_dim, V = c->vocab_size;
    size_t q = (size_t)c->n_heads * c->head_dim, kv = (size_t)c->n_kv_heads * c->head_dim;
    size_t off = 0;
    memset(w, 0, sizeof *w);
#define TAKE(field, count)                    \
    do {                                      \
        w->field = mem ? mem + off : NULL;    \
        off += (count);                       \
    } while (0)
    TAKE(embed, V * C);
    TAKE(attn_norm, L * C);
    TAKE(wq, L * q * C);
    TAKE(wk, L * kv * C);
    TAKE(wv, L * kv * C);
    if (c->qkv_bias) {
        TAKE(bq, L * q);
        TAKE(bk, L * kv);
        TAKE(bv, L * kv);
    }
    TAKE(wo, L * C * q);
    TAKE(mlp_norm, L * C);
    TAKE(wgate, L * F * C);
    TAKE(wup, L * F * C);
    TAKE(wdown, L * C * F);
    TAKE(final_norm, C);
    if (c->tie_embeddings) w->lm_head = w->embed;
    else TAKE(lm_head, V * C);
#undef TAKE
    return off;
}

int vet_model_alloc(vet_model *m, const vet_config *cfg, vet_err *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    vet_weights tmp;
    m->n_w = weights_layout(cfg, &tmp, NULL);
    m->w_mem = malloc(m->n_w * sizeof(float));
    if (!m->w_mem)
        return vet_err_nomem(err, "out of memory for the model's weights (%zu floats, %.1f GB)", m->n_w,
                        m->n_w * 4.0 / 1e9);
    weights_layout(cfg, &m->w, m->w_mem);
    return 0;
}

int vet_model_init(vet_model *m, const vet_config *cfg, uint64_t seed, vet_err *err) {
    if (vet_config_validate(cfg, err)) return -1;
    if (vet_model_alloc(m, cfg, err)) return -1;
    const vet_weights *w = &m->w;
    // Every tensor gets its own stream (by its offset), so init is the same on any machine.
    size_t L = cfg->n_layers, C = cfg->dim;
    struct { float *p; size_t n; int kind; } t[] = {  // kind: 0 normal(0.02), 1 ones, 2 zeros
        {w->embed, (size_t)cfg->vocab_size * C, 0},
        {w->attn_norm, L * C, 1},
        {w->wq, L * cfg->n_heads * cfg->head_dim * C, 0},
        {w->wk, L * cfg->n_kv_heads * cfg->head_dim * C, 0},
        {w->wv, L * cfg->n_kv_heads * cfg->head_dim * C, 0},
        {w->bq, L * cfg->n_heads * cfg->head_dim, 2},
        {w->bk, L * cfg->n_kv_heads * cfg->head_dim, 2},
        {w->bv, L * cfg->n_kv_heads * cfg->head_dim, 2},
        {w->wo, L * C * cfg->n_heads * cfg->head_dim, 0},
        {w->mlp_norm, L * C, 1},
        {w->wgate, L * cfg->hidden_dim * C, 0},
        {w->wup, L * cfg->hidden_dim * C, 0},
        {w->wdown, L * C * cfg->hidden_dim, 0},
        {w->final_norm, C, 1},
        {cfg->tie_embeddings ? NULL : w->lm_head, (size_t)cfg->vocab_size * C, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (!t[i].p) continue;
        vet_rng r;
        vet_rng_seed(&r, vet_rng_hash(seed, (uint64_t)i));
        for (size_t j = 0; j < t[i].n; j++)
            t[i].p[j] = t[i].kind == 0 ? (float)(0.02 * vet_rng_normal(&r)) : t[i].kind == 1 ? 1.0f : 0.0f;
    }
    return 0;
}

void vet_model_free(vet_model *m) {
    free(m->w_mem);
    free(m->lora_mem);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------------------------------
// Loading a Hugging Face directory

static int load_tensor(const vet_tensors *ts, const char *dir, const char *name, float *dst,
                       int ndim, int64_t d0, int64_t d1, vet_err *err) {
    const vet_tensor_ref *r = vet_tensors_find(ts, name);
    if (!r)
        return vet_errf(err, "%s: tensor %s is missing from the checkpoint (is this a LLaMA/Qwen2 "
                             "model with the shapes config.json describes?)", dir, name);
    int64_t shape[2] = {d0, d1};
    if (vet_tensor_read_f32(r, ndim, shape, dst, err))
        return vet_err_prefix(err, "%s: tensor %s", dir, name);
    return 0;
}

int vet_model_load(vet_model *m, const char *dir, vet_err *err) {
    memset(m, 0, sizeof *m);
    if (vet_path_is_gguf(dir)) return vet_model_load_gguf(m, dir, err);
    vet_config cfg;
    if (vet_config_load(&cfg, dir, err)) return -1;
    vet_tensors *ts = vet_tensors_open_dir(dir, err);
    if (!ts) return -1;
    // The output layer is the file's lm_head.weight when it has one (as transformers reads it),
    // else the embedding; then every tensor must be one the model uses, or it would be left out.
    if (vet_hf_tie_from_weights(&cfg, ts, dir, err) || vet_hf_check_tensors(&cfg, ts, dir, err) || vet_model_alloc(m, &cfg, err)) {
        vet_tensors_close(ts);
        return -1;
    }
    // Every tensor by its HF name, in the same table the saver uses (model_io.h).
    int n = vet_model_tensors(m, NULL, 0);
    vet_named_tensor *t = malloc(n * sizeof *t);
    int rc = t ? 0 : vet_err_nomem(err, "out of memory");
    if (t) vet_model_tensors(m, t, n);
    for (int k = 0; k < n && !rc; k++)
        rc = load_tensor(ts, dir, t[k].name, t[k].p, t[k].ndim, t[k].shape[0], t[k].shape[1], err);
    free(t);
    vet_tensors_close(ts);
    if (rc) vet_model_free(m);
    return rc;
}
