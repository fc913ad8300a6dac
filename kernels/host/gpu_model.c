// gpu_model.c — a vet_model on a CUDA device: creation (plan check, one allocation, weight
// upload fp32 or bf16, rope tables), the optimizer step and the transfers back. The forward
// and backward are in gpu_train.c, the buffer layout in gpu_plan.c.
#include "kernels/host/gpu_model.h"

#ifdef VET_CUDA

#include <stdlib.h>
#include <string.h>

#include "kernels/ops_cuda.h"
#include "kernels/host/gpu_internal.h"
#include "kernels/host/gpu_upload.h"
#include "base/half.h"
#include "model/lora.h"
#include "model/ops.h"
#include "model/quant.h"

// ---------------------------------------------------------------------------------------
// Creation

#define GIB(b) ((double)(b) / (1024.0 * 1024.0 * 1024.0))

// Quantized mode: every projection's matrices quantized on the host (lib/model/quant.c), one
// layer's matrix at a time, and uploaded as they are stored on the device.
static int upload_quantized(vet_gpu_model *g, const vet_model *m, vet_err *err) {
    const vet_weights *w = &m->w;
    const float *host[VET_LORA_N_TARGETS] = {w->wq, w->wk, w->wv, w->wo, w->wgate, w->wup, w->wdown};
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        int out, in;
        vet_lora_dims(&g->cfg, t, &out, &in);
        if (vet_gpu_upload_quantized(g->ctx, g->quant, host[t], g->L, out, in, g->qw[t], g->q_bytes[t], g->qs[t],
                                     g->q_scales[t], vet_lora_target_name(t), err) < 0)
            return -1;
    }
    return 0;
}

static int upload_weights(vet_gpu_model *g, const vet_model *m, vet_err *err) {
    vet_cuda *ctx = g->ctx;
    const vet_weights *w = &m->w;
    if (!g->bf16 && !g->quant) {
        if (vet_gpu_upload_f32(ctx, g->w, m->w_mem, g->n_w, err) < 0) return -1;
        float *d = g->w;
        g->embed = d + g->o_embed, g->attn_norm = d + g->o_attn_norm;
        g->mlp_norm = d + g->o_mlp_norm, g->final_norm = d + g->o_final_norm;
        g->lm_head = d + g->o_lm_head;
        if (g->cfg.qkv_bias) g->bq = d + g->o_bq, g->bk = d + g->o_bk, g->bv = d + g->o_bv;
        return 0;
    }
    if (g->quant ? upload_quantized(g, m, err) < 0 : vet_gpu_upload_half(ctx, g->w16, w->wq, g->n_w16, g->fp16, err) < 0) return -1;
    vet_gpu_small_dst d = {.embed = g->embed, .embed16 = g->embed16, .attn_norm = g->attn_norm,
                           .mlp_norm = g->mlp_norm, .final_norm = g->final_norm, .lm_head = g->lm_head,
                           .lm_head16 = g->lm_head16, .bq = g->bq, .bk = g->bk, .bv = g->bv};
    if (vet_gpu_upload_small(ctx, &g->cfg, w, &d, g->fp16, err) < 0) return -1;
    if (g->cfg.tie_embeddings) g->embed = g->lm_head;  // tied: the fp32 table (NULL in 16 bits: embed16)
    else if (g->embed16) g->embed = NULL;              // untied bf16: embed16
    return 0;
}

vet_gpu_model *vet_gpu_model_new(vet_cuda *ctx, const vet_model *m, int B, int T,
                                 const vet_gpu_opts *opts, vet_err *err) {
    vet_gpu_opts none = {0};
    if (!opts) opts = &none;
    vet_gpu_model *g = calloc(1, sizeof *g);
    if (!g) {
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    g->ctx = ctx;
    const vet_lora *lo = &m->lora;
    if (gpu_set_dims(g, &m->cfg, m->has_lora ? lo->r : 0, m->has_lora ? lo->targets : 0, B, T, opts->ckpt_layers,
                     opts->flags, err) < 0)
        goto fail;
    const vet_weights *w = &m->w;
#define OFF(p) ((size_t)((p) - m->w_mem))
    g->o_embed = OFF(w->embed), g->o_attn_norm = OFF(w->attn_norm), g->o_wq = OFF(w->wq);
    g->o_wk = OFF(w->wk), g->o_wv = OFF(w->wv), g->o_wo = OFF(w->wo);
    g->o_mlp_norm = OFF(w->mlp_norm), g->o_wgate = OFF(w->wgate), g->o_wup = OFF(w->wup);
    g->o_wdown = OFF(w->wdown), g->o_final_norm = OFF(w->final_norm), g->o_lm_head = OFF(w->lm_head);
    if (w->bq) g->o_bq = OFF(w->bq), g->o_bk = OFF(w->bk), g->o_bv = OFF(w->bv);
#undef OFF
    // The bf16 window and the LoRA offsets were derived from the config: they must be the
    // model's own layout (model.c, lora.c), or every pointer below would be wrong.
    if (m->n_w != g->n_w || g->o_final_norm - g->o_wq != g->n_w16 ||
        (m->has_lora && (m->n_lora != g->n_lora)))
        { vet_errf(err, "internal: the model's buffers do not have the layout the GPU model expects"); goto fail; }
    for (int t = 0; t < VET_LORA_N_TARGETS && m->has_lora; t++)
        if (lo->A[t] && ((size_t)(lo->A[t] - m->lora_mem) != g->offA[t] ||
                         (size_t)(lo->B[t] - m->lora_mem) != g->offB[t]))
            { vet_errf(err, "internal: LoRA layout differs from lora.c's"); goto fail; }
    if (m->has_lora) g->lora_scale = lo->scale, g->dropout = lo->dropout;
    g->resid_dropout = opts->resid_dropout;

    gpu_slot s[GPU_MAX_SLOTS];
    int n = gpu_layout(g, s);
    gpu_plan_of(g, s, n, &g->plan);
    const vet_gpu_plan *p = &g->plan;
    if (opts->mem_limit && p->total > opts->mem_limit) {
        vet_errf(err, "the model needs %.2f GiB on the device (weights %.2f, training state %.2f, "
                      "activations %.2f, scratch %.2f) but only %.2f GiB are free: use a smaller "
                      "batch than %d x %d%s",
                 GIB(p->total), GIB(p->weights), GIB(p->train), GIB(p->activations),
                 GIB(p->scratch), GIB(opts->mem_limit), B, T,
                 g->quant || g->full ? "" : g->bf16 ? ", or int8 / nf4 base weights" : ", or bf16 base weights");
        goto fail;
    }
    if (vet_cuda_malloc(&g->mem, p->total, err) < 0) {
        vet_err_prefix(err, "allocating %.2f GiB for the GPU model", GIB(p->total));
        goto fail;
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].alias && !*s[i].alias)
            { vet_errf(err, "internal: GPU buffer %d shares a buffer not yet placed", i); goto fail; }
        *s[i].p = s[i].alias ? *s[i].alias : (char *)g->mem + off;
        if (!s[i].alias)  // the padding up to the next buffer: touched by no op
            vet_cuda_guard((char *)g->mem + off + s[i].bytes, gpu_aligned(s[i].bytes) - s[i].bytes);
        off += gpu_aligned(s[i].bytes);
    }
    if (g->full) g->params = g->w;  // full mode trains the base weights in place

    // Host side: the loss rows and the target list (dropout masks are made on the device).
    g->h_tgt_pos = malloc(g->N * sizeof(int32_t));
    g->h_tgt = malloc(g->N * sizeof(int32_t));
    g->h_loss = malloc(g->N * sizeof(float));
    float *inv = malloc((size_t)g->hd / 2 * sizeof(float));
    float *cs = malloc((size_t)T * g->hd * sizeof(float));  // cos then sin, (T, hd/2) each
    if (!g->h_tgt_pos || !g->h_tgt || !g->h_loss || !inv || !cs) {
        free(inv), free(cs);
        vet_err_nomem(err, "out of memory for the GPU model's host buffers");
        goto fail;
    }
    const vet_config *c = &m->cfg;
    vet_rope_inv_freq(c, inv);
    size_t half = (size_t)T * g->hd / 2;
    rope_tables(cs, cs + half, T, c->head_dim, inv);
    int rc = vet_gpu_upload_f32(ctx, g->cos_t, cs, half, err);
    if (rc == 0) rc = vet_gpu_upload_f32(ctx, g->sin_t, cs + half, half, err);
    free(inv), free(cs);
    if (rc < 0 || upload_weights(g, m, err) < 0) goto fail;
    if (g->has_lora && gpu_upload_trainable(g, g->params, m->lora_mem, err) < 0) goto fail;
    if (vet_cuda_sync(ctx, err) < 0) goto fail;
    return g;
fail:
    vet_gpu_model_free(g);
    return NULL;
}

void vet_gpu_model_free(vet_gpu_model *g) {
    if (!g) return;
    vet_cuda_mem_free(g->mem);
    free(g->h_tgt_pos), free(g->h_tgt), free(g->h_loss);
    free(g);
}

const vet_gpu_plan *vet_gpu_model_plan(const vet_gpu_model *g) { return &g->plan; }

void vet_gpu_model_set_profile(vet_gpu_model *g, vet_gpu_profile *prof) { g->prof = prof; }

#define TRY(call) do { if ((call) < 0) return -1; } while (0)

// ---------------------------------------------------------------------------------------
// Optimizer, transfers

int vet_gpu_adamw_step(vet_gpu_model *g, size_t off, size_t n, float gscale, float lr, float beta1,
                       float beta2, float eps, float wd, int step, vet_err *err) {
    if (off > g->n_params || n > g->n_params - off)
        return vet_errf(err, "AdamW slice [%zu, %zu) outside the %zu trainable floats", off, off + n,
                        g->n_params);
    if (step < 1) return vet_errf(err, "AdamW step %d: steps count from 1", step);
    PROF(g, VET_PROF_OPTIMIZER);
    TRY(adamw_update_cuda(g->ctx, g->params + off, g->grads + off, gscale, g->adam_m + off, g->adam_v + off, n,
                          lr, beta1, beta2, eps, wd, step, err));
    PROF(g, VET_PROF_NONE);
    return 0;
}

// The optimizer's device ops (zero, AdamW) are queued without waiting: the host has
// nothing to read from them, and the next transfer (the next batch's upload, the 16 bytes of
// grad_stats, a pull_state) waits for the stream and reports any asynchronous failure.
int vet_gpu_zero_grads(vet_gpu_model *g, vet_err *err) {
    PROF(g, VET_PROF_OPTIMIZER);
    TRY(vet_cuda_memset0(g->ctx, g->grads, g->n_params * sizeof(float), err));
    PROF(g, VET_PROF_NONE);
    return 0;
}

// Two kernels and one 16-byte download (which waits for them): the step's only gradient traffic
// to the host.
int vet_gpu_grad_stats(vet_gpu_model *g, float unscale, double *norm, size_t *first_bad, vet_err *err) {
    PROF(g, VET_PROF_OPTIMIZER);
    TRY(grad_stats_cuda(g->ctx, g->gstats, g->grads, g->n_params, unscale, g->gstats_scratch, err));
    vet_cuda_grad_stats st;
    TRY(vet_cuda_download(g->ctx, &st, g->gstats, sizeof st, err));
    PROF(g, VET_PROF_NONE);
    *norm = st.norm;
    *first_bad = st.first_bad < g->n_params ? gpu_lora_host_index(g, (size_t)st.first_bad) : g->n_params;
    return 0;
}

int vet_gpu_download_params(vet_gpu_model *g, vet_model *m, vet_err *err) {
    if (g->full) {
        if (m->n_w != g->n_w) return vet_errf(err, "model has %zu weights, the GPU model %zu", m->n_w, g->n_w);
        return vet_cuda_download(g->ctx, m->w_mem, g->w, g->n_w * sizeof(float), err);
    }
    return vet_gpu_download_lora(g, m, err);
}

int vet_gpu_download_lora(vet_gpu_model *g, vet_model *m, vet_err *err) {
    if (!g->has_lora) return vet_errf(err, "the GPU model has no LoRA adapters");
    if (!m->has_lora || m->n_lora != g->n_lora || m->lora.r != g->r || m->lora.targets != g->targets)
        return vet_errf(err, "the model's LoRA adapters differ from the GPU model's (rank %d, %zu floats)",
                        g->r, g->n_lora);
    return gpu_download_trainable(g, m->lora_mem, g->params, err);
}

float *vet_gpu_grads_device(vet_gpu_model *g, size_t *n) {
    *n = g->n_params;
    return g->grads;
}

int vet_gpu_download_grads(vet_gpu_model *g, float *grads, size_t n, vet_err *err) {
    if (n != g->n_params)
        return vet_errf(err, "gradient buffer of %zu floats, the GPU model trains %zu", n, g->n_params);
    return gpu_download_trainable(g, grads, g->grads, err);
}

int vet_gpu_upload_grads(vet_gpu_model *g, const float *grads, size_t n, vet_err *err) {
    if (n != g->n_params)
        return vet_errf(err, "gradient buffer of %zu floats, the GPU model trains %zu", n, g->n_params);
    return gpu_upload_trainable(g, g->grads, grads, err);
}

int vet_gpu_download_state(vet_gpu_model *g, float *params, float *adam_m, float *adam_v,
                           size_t n, vet_err *err) {
    if (n != g->n_params)
        return vet_errf(err, "state buffers of %zu floats, the GPU model trains %zu", n, g->n_params);
    if (params) TRY(gpu_download_trainable(g, params, g->params, err));
    if (adam_m) TRY(gpu_download_trainable(g, adam_m, g->adam_m, err));
    if (adam_v) TRY(gpu_download_trainable(g, adam_v, g->adam_v, err));
    return 0;
}

int vet_gpu_upload_state(vet_gpu_model *g, const float *params, const float *adam_m,
                         const float *adam_v, size_t n, vet_err *err) {
    if (n != g->n_params)
        return vet_errf(err, "state buffers of %zu floats, the GPU model trains %zu", n, g->n_params);
    if (params) TRY(gpu_upload_trainable(g, g->params, params, err));
    if (adam_m) TRY(gpu_upload_trainable(g, g->adam_m, adam_m, err));
    if (adam_v) TRY(gpu_upload_trainable(g, g->adam_v, adam_v, err));
    return 0;
}

#else  // built without CUDA: every call fails the same way

#define NO_CUDA(err) vet_errf(err, "vet was built without CUDA (rebuild with nvcc on PATH)")

vet_gpu_model *vet_gpu_model_new(vet_cuda *ctx, const vet_model *m, int B, int T,
                                 const vet_gpu_opts *opts, vet_err *err) {
    NO_CUDA(err);
    return NULL;
}
void vet_gpu_model_free(vet_gpu_model *g) { (void)g; }
void vet_gpu_model_set_profile(vet_gpu_model *g, vet_gpu_profile *prof) { (void)g, (void)prof; }
const vet_gpu_plan *vet_gpu_model_plan(const vet_gpu_model *g) { return NULL; }
int vet_gpu_adamw_step(vet_gpu_model *g, size_t off, size_t n, float gscale, float lr, float beta1,
                       float beta2, float eps, float wd, int step, vet_err *err) {
    return NO_CUDA(err);
}
int vet_gpu_zero_grads(vet_gpu_model *g, vet_err *err) { return NO_CUDA(err); }
int vet_gpu_grad_stats(vet_gpu_model *g, float unscale, double *norm, size_t *first_bad, vet_err *err) {
    return NO_CUDA(err);
}
int vet_gpu_download_params(vet_gpu_model *g, vet_model *m, vet_err *err) { return NO_CUDA(err); }
int vet_gpu_download_lora(vet_gpu_model *g, vet_model *m, vet_err *err) { return NO_CUDA(err); }
float *vet_gpu_grads_device(vet_gpu_model *g, size_t *n) {
    *n = 0;
    return NULL;
}
int vet_gpu_download_grads(vet_gpu_model *g, float *grads, size_t n, vet_err *err) {
    return NO_CUDA(err);
}
int vet_gpu_upload_grads(vet_gpu_model *g, const float *grads, size_t n, vet_err *err) {
    return NO_CUDA(err);
}
int vet_gpu_download_state(vet_gpu_model *g, float *params, float *adam_m, float *adam_v,
                           size_t n, vet_err *err) {
    return NO_CUDA(err);
}
int vet_gpu_upload_state(vet_gpu_model *g, const float *params, const float *adam_m,
                         const float *adam_v, size_t n, vet_err *err) {
    return NO_CUDA(err);
}

#endif
