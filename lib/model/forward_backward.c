// forward_backward.c — the decoder's forward and backward passes over a packed batch.
//
// One layer (HF LlamaDecoderLayer), N = B*T positions:
//   h   = rmsnorm(x) · attn_norm                       (N,C)
//   q,k,v = h·Wq^T(+bq), h·Wk^T(+bk), h·Wv^T(+bv)     (N,H*hd), (N,KVH*hd)   [+ LoRA]
//   q,k = rope(q, pos), rope(k, pos)
//   a   = attention(q, k, v; seg)                      (N,H*hd)
//   x'  = x + a·Wo^T                                   (N,C)                   [+ LoRA]
//   h2  = rmsnorm(x') · mlp_norm
//   g,u = h2·Wgate^T, h2·Wup^T                         (N,F)                   [+ LoRA]
//   x'' = x' + (silu(g)*u)·Wdown^T                                             [+ LoRA]
// then final rmsnorm, lm_head and cross-entropy over the positions with a target. With residual
// dropout (training only) each o/down output goes through dropout before its residual add; the
// masks come from seeds, like LoRA dropout's, and backward regenerates them.
//
// Kept for backward, per layer: x, x', rstd of both norms, q and k (after rope), v, a, the
// attention log-sum-exp, g, u, and each LoRA's x·A^T (N,r). The normed inputs h, h2 and
// silu(g)*u are recomputed in backward (cheap, element-wise) rather than stored.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/lora.h"
#include "model/model.h"
#include "model/ops.h"
#include "base/rng.h"

struct vet_acts {
    int B, T;           // capacity
    size_t N;           // B*T
    int L, C, F, Q, KV, H, KVH, hd, V, r;
    // rope tables for positions < T
    float *cos_t, *sin_t;
    // per layer, stride N*(width)
    float *x;           // (L+1, N, C) residual stream entering layer l; x[L] feeds the final norm
    float *xmid;        // (L, N, C) after attention
    float *rstd1, *rstd2;  // (L, N)
    float *q, *k, *v;   // (L, N, Q), (L, N, KV), (L, N, KV)
    float *att;         // (L, N, Q)
    float *lse;         // (L, N, H)
    float *gate, *up;   // (L, N, F)
    float *lora_u[VET_LORA_N_TARGETS];  // (L, N, r) when t is a target
    float *rstdf;       // (N)
    float *lnf;         // (N, C) final norm output
    // target positions and the loss side
    int *tgt_pos;       // (N) positions with a target, ascending
    int n_tgt;
    float *lnf_t;       // (N, C) lnf rows of tgt_pos, gathered
    float *dlnf_t;      // (N, C) d(loss_sum)/d lnf_t rows, computed in a training forward
    int have_dlnf;
    int ce_rows;        // rows per logits chunk
    float label_smoothing;  // eps of the cross-entropy (0: plain)
    float resid_dropout;    // p of the dropout on each o/down output before the residual add
    float *logits_chunk;  // (ce_rows, V)
    float *ce_loss;     // (ce_rows)
    // scratch for forward/backward
    float *h;           // (N, C) a normed input
    float *act;         // (N, F) silu(g)*u
    float *proj;        // (N, C) an o/down projection before the residual add
    float *dx;          // (N, C) gradient of the residual stream
    float *dh;          // (N, C)
    float *dq, *dk, *dv, *datt;  // (N,Q), (N,KV), (N,KV), (N,Q)
    float *dgate, *dup, *dact;   // (N, F)
    float *xd;          // (N, max(C,Q,F)) LoRA dropout input / scratch
    float *du;          // (N, r)
    // what the last forward ran with
    int training;       // LoRA dropout on (a training forward of a model with adapters)
    float resid_p;      // residual dropout in effect (resid_dropout in a training forward, else 0)
    uint64_t dropout_seed;
    int64_t row0;       // the batch's row0: the dropout masks' row key offset
    const vet_batch *last;
    void *mem;          // everything above lives in this one allocation
};

#define CE_MAX_FLOATS (8u << 20)  // a logits chunk stays under 32 MB

vet_acts *vet_acts_new(const vet_model *m, int B, int T, vet_err *err) {
    const vet_config *c = &m->cfg;
    if (B <= 0 || T <= 0) {
        vet_errf(err, "activations need B, T > 0 (got %d x %d)", B, T);
        return NULL;
    }
    vet_acts *a = calloc(1, sizeof *a);
    if (!a) {
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    size_t N = (size_t)B * T, L = c->n_layers, C = c->dim, F = c->hidden_dim;
    size_t Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
    size_t V = c->vocab_size, r = m->has_lora ? m->lora.r : 0;
    a->B = B, a->T = T, a->N = N, a->L = (int)L, a->C = (int)C, a->F = (int)F, a->Q = (int)Q;
    a->KV = (int)KV, a->H = c->n_heads, a->KVH = c->n_kv_heads, a->hd = c->head_dim;
    a->V = (int)V, a->r = (int)r;
    size_t ce_rows = CE_MAX_FLOATS / V;
    if (ce_rows < 16) ce_rows = 16;
    if (ce_rows > N) ce_rows = N;
    a->ce_rows = (int)ce_rows;
    size_t maxin = C > Q ? C : Q;
    if (F > maxin) maxin = F;

    // Two passes over the same list: count, then hand out pointers.
    struct { float **p; size_t n; } t[64];
    int nt = 0;
#define ADD(ptr, count) (t[nt].p = &(ptr), t[nt].n = (count), nt++)
    ADD(a->cos_t, (size_t)T * c->head_dim / 2);
    ADD(a->sin_t, (size_t)T * c->head_dim / 2);
    ADD(a->x, (L + 1) * N * C);
    ADD(a->xmid, L * N * C);
    ADD(a->rstd1, L * N);
    ADD(a->rstd2, L * N);
    ADD(a->q, L * N * Q);
    ADD(a->k, L * N * KV);
    ADD(a->v, L * N * KV);
    ADD(a->att, L * N * Q);
    ADD(a->lse, L * N * c->n_heads);
    ADD(a->gate, L * N * F);
    ADD(a->up, L * N * F);
    for (int i = 0; i < VET_LORA_N_TARGETS; i++)
        if (m->has_lora && (m->lora.targets & (1u << i))) ADD(a->lora_u[i], L * N * r);
    ADD(a->rstdf, N);
    ADD(a->lnf, N * C);
    ADD(a->lnf_t, N * C);
    ADD(a->dlnf_t, N * C);
    ADD(a->logits_chunk, ce_rows * V);
    ADD(a->ce_loss, ce_rows);
    ADD(a->h, N * C);
    ADD(a->act, N * F);
    ADD(a->proj, N * C);
    ADD(a->dx, N * C);
    ADD(a->dh, N * C);
    ADD(a->dq, N * Q);
    ADD(a->dk, N * KV);
    ADD(a->dv, N * KV);
    ADD(a->datt, N * Q);
    ADD(a->dgate, N * F);
    ADD(a->dup, N * F);
    ADD(a->dact, N * F);
    ADD(a->xd, N * maxin);
    ADD(a->du, N * (r ? r : 1));
#undef ADD
    size_t total = 0;
    for (int i = 0; i < nt; i++) total += (t[i].n + 15) & ~(size_t)15;  // 64-byte aligned
    float *mem = aligned_alloc(64, total * sizeof(float));
    a->tgt_pos = malloc(N * sizeof(int));
    if (!mem || !a->tgt_pos) {
        free(mem);
        free(a->tgt_pos);
        free(a);
        vet_err_nomem(err, "out of memory for activations of %d x %d (%.2f GB)", B, T, total * 4.0 / 1e9);
        return NULL;
    }
    memset(mem, 0, total * sizeof(float));
    size_t off = 0;
    for (int i = 0; i < nt; i++) {
        *t[i].p = mem + off;
        off += (t[i].n + 15) & ~(size_t)15;
    }
    a->mem = mem;

    float *inv = malloc((size_t)c->head_dim / 2 * sizeof(float));
    if (!inv) {
        vet_acts_free(a);
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    vet_rope_inv_freq(c, inv);
    rope_tables(a->cos_t, a->sin_t, T, c->head_dim, inv);
    free(inv);
    return a;
}

void vet_acts_set_label_smoothing(vet_acts *a, float eps) { a->label_smoothing = eps; }
void vet_acts_set_resid_dropout(vet_acts *a, float p) { a->resid_dropout = p; }

void vet_acts_free(vet_acts *a) {
    if (!a) return;
    free(a->mem);
    free(a->tgt_pos);
    free(a);
}

// The dropout seed of (layer, target): its own stream, reproducible from the step's seed.
static uint64_t lora_seed(uint64_t seed, int l, int t) {
    return vet_rng_hash(vet_rng_hash(seed, (uint64_t)l), (uint64_t)t);
}

// The residual dropout seed of (layer, branch 0 attention / 1 MLP): streams of their own, next
// to the LoRA targets' 0..6.
static uint64_t resid_seed(uint64_t seed, int l, int branch) {
    return lora_seed(seed, l, VET_LORA_N_TARGETS + branch);
}

// The gradient slot of a tensor: the same offset in grads as the tensor has in its buffer.
static float *grad_of(float *grads, const float *base, const float *p) {
    return grads && p ? grads + (p - base) : NULL;
}

// ---------------------------------------------------------------------------------------
// Forward

static void proj_forward(const vet_model *m, vet_acts *a, int l, int t, float *out,
                         const float *inp, int N) {
    int outc, in;
    vet_lora_dims(&m->cfg, t, &outc, &in);
    lora_proj_w p = lora_layer_proj(m, l, t);
    float *u = a->lora_u[t] ? a->lora_u[t] + (size_t)l * a->N * a->r : NULL;
    float drop = a->training ? m->lora.dropout : 0.0f;
    lora_proj_forward(out, u, a->xd, inp, p.w, p.b, p.A, p.B, a->r, m->lora.scale, drop,
                      lora_seed(a->dropout_seed, l, t), a->row0, N, in, outc);
}

// Cross-entropy over the gathered target rows in chunks; with want_dlnf also the gradient of
// the summed loss with respect to those rows (dlnf_t), computed while the chunk is hot.
static double loss_chunks(const vet_model *m, vet_acts *a, const vet_batch *b,
                          const float *logits, int want_dlnf) {
    int C = a->C, V = a->V;
    double sum = 0;
    int32_t *tg = malloc((size_t)a->ce_rows * sizeof(int32_t));
    for (int c0 = 0; c0 < a->n_tgt; c0 += a->ce_rows) {
        int n = a->n_tgt - c0 < a->ce_rows ? a->n_tgt - c0 : a->ce_rows;
        if (logits) {  // the caller's full logits already hold these rows
            for (int i = 0; i < n; i++)
                memcpy(a->logits_chunk + (size_t)i * V, logits + (size_t)a->tgt_pos[c0 + i] * V,
                       (size_t)V * sizeof(float));
        } else {
            matmul_forward(a->logits_chunk, a->lnf_t + (size_t)c0 * C, m->w.lm_head, NULL, n, C, V);
        }
        for (int i = 0; i < n; i++) tg[i] = b->targets[a->tgt_pos[c0 + i]];
        crossentropy_smoothed_softmax_backward_inplace(a->logits_chunk, a->ce_loss, tg, n, V, a->label_smoothing);
        for (int i = 0; i < n; i++) sum += a->ce_loss[i];
        if (want_dlnf)  // (n,C) = dlogits (n,V) · lm_head (V,C)
            vet_sgemm(0, 0, n, C, V, 1.0f, a->logits_chunk, V, m->w.lm_head, C, 0.0f, a->dlnf_t + (size_t)c0 * C, C);
    }
    free(tg);
    return sum;
}

int vet_model_forward(vet_model *m, vet_acts *a, const vet_batch *b, float *logits,
                      double *loss_sum, int *n_targets, int training, uint64_t dropout_seed,
                      vet_err *err) {
    const vet_config *c = &m->cfg;
    if (b->B > a->B || b->T > a->T)
        return vet_errf(err, "batch %d x %d exceeds the activations' %d x %d", b->B, b->T, a->B, a->T);
    if (m->has_lora && a->r != m->lora.r)
        return vet_errf(err, "activations were made before the LoRA adapters were added "
                             "(make them after vet_model_add_lora)");
    for (int t = 0; t < VET_LORA_N_TARGETS; t++)
        if (m->has_lora && m->lora.A[t] && !a->lora_u[t])
            return vet_errf(err, "activations lack room for LoRA target %s (make them after "
                                 "vet_model_add_lora)", vet_lora_target_name(t));
    int N = b->B * b->T, C = a->C, F = a->F, Q = a->Q, KV = a->KV;
    size_t NS = a->N;  // layer stride in positions
    a->training = training && m->has_lora;
    a->resid_p = training ? a->resid_dropout : 0.0f;
    a->dropout_seed = dropout_seed;
    a->row0 = b->row0;
    a->last = b;
    a->have_dlnf = 0;

    embedding_forward(a->x, b->tokens, m->w.embed, N, C);
    for (int l = 0; l < c->n_layers; l++) {
        float *x = a->x + l * NS * C, *xmid = a->xmid + l * NS * C, *xout = a->x + (l + 1) * NS * C;
        float *q = a->q + l * NS * Q, *k = a->k + l * NS * KV, *v = a->v + l * NS * KV;
        float *att = a->att + l * NS * Q, *gate = a->gate + l * NS * F, *up = a->up + l * NS * F;
        rmsnorm_forward(a->h, a->rstd1 + l * NS, x, m->w.attn_norm + (size_t)l * C, N, C, c->rms_eps);
        proj_forward(m, a, l, 0, q, a->h, N);
        proj_forward(m, a, l, 1, k, a->h, N);
        proj_forward(m, a, l, 2, v, a->h, N);
        rope_forward(q, b->pos, a->cos_t, a->sin_t, N, c->n_heads, c->head_dim);
        rope_forward(k, b->pos, a->cos_t, a->sin_t, N, c->n_kv_heads, c->head_dim);
        attention_forward(att, a->lse + l * NS * a->H, q, k, v, b->seg, b->B, b->T, c->n_heads,
                          c->n_kv_heads, c->head_dim);
        proj_forward(m, a, l, 3, a->proj, att, N);
        if (a->resid_p > 0.0f)  // in place: each element reads its own input only
            dropout_forward(a->proj, a->proj, a->resid_p, resid_seed(dropout_seed, l, 0), a->row0, N, C);
        memcpy(xmid, x, (size_t)N * C * sizeof(float));
        add_inplace(xmid, a->proj, (size_t)N * C);
        rmsnorm_forward(a->h, a->rstd2 + l * NS, xmid, m->w.mlp_norm + (size_t)l * C, N, C, c->rms_eps);
        proj_forward(m, a, l, 4, gate, a->h, N);
        proj_forward(m, a, l, 5, up, a->h, N);
        swiglu_forward(a->act, gate, up, (size_t)N * F);
        proj_forward(m, a, l, 6, a->proj, a->act, N);
        if (a->resid_p > 0.0f)
            dropout_forward(a->proj, a->proj, a->resid_p, resid_seed(dropout_seed, l, 1), a->row0, N, C);
        memcpy(xout, xmid, (size_t)N * C * sizeof(float));
        add_inplace(xout, a->proj, (size_t)N * C);
    }
    const float *xL = a->x + (size_t)c->n_layers * NS * C;
    rmsnorm_forward(a->lnf, a->rstdf, xL, m->w.final_norm, N, C, c->rms_eps);

    a->n_tgt = 0;
    for (int i = 0; i < N; i++)
        if (b->targets[i] >= 0 && b->seg[i] >= 0) a->tgt_pos[a->n_tgt++] = i;
    for (int i = 0; i < a->n_tgt; i++)
        memcpy(a->lnf_t + (size_t)i * C, a->lnf + (size_t)a->tgt_pos[i] * C, (size_t)C * sizeof(float));
    if (logits) matmul_forward(logits, a->lnf, m->w.lm_head, NULL, N, C, a->V);
    // Training: the loss gradient at lnf costs one more GEMM now and saves recomputing the
    // logits in backward (a LoRA step never needs them again).
    double s = loss_chunks(m, a, b, logits, training);
    a->have_dlnf = training;
    if (loss_sum) *loss_sum = s;
    if (n_targets) *n_targets = a->n_tgt;
    return 0;
}

// ---------------------------------------------------------------------------------------
// Backward

static void proj_backward(const vet_model *m, vet_acts *a, int l, int t, float *dinp,
                          const float *dout, const float *inp, int N, float *grads, int full) {
    int outc, in;
    vet_lora_dims(&m->cfg, t, &outc, &in);
    lora_proj_w p = lora_layer_proj(m, l, t);
    float *dW = NULL, *db = NULL, *dA = NULL, *dB = NULL;
    if (full) {
        dW = grad_of(grads, m->w_mem, p.w);
        db = grad_of(grads, m->w_mem, p.b);
    } else if (p.A) {
        dA = grad_of(grads, m->lora_mem, p.A);
        dB = grad_of(grads, m->lora_mem, p.B);
    }
    const float *u = a->lora_u[t] ? a->lora_u[t] + (size_t)l * a->N * a->r : NULL;
    float drop = a->training ? m->lora.dropout : 0.0f;
    lora_proj_backward(dinp, dW, db, dA, dB, a->du, a->xd, dout, inp, u, p.w, p.A, p.B, a->r,
                       m->lora.scale, drop, lora_seed(a->dropout_seed, l, t), a->row0, N, in, outc);
}

// The gradient reaching a branch's projection output from the residual gradient dx: dx itself,
// or with residual dropout dx through the forward's mask, in a->h (free at both call sites:
// it is recomputed right after).
static const float *resid_branch_grad(vet_acts *a, const float *dx, int l, int branch, int N) {
    if (a->resid_p <= 0.0f) return dx;
    memset(a->h, 0, (size_t)N * a->C * sizeof(float));
    dropout_backward(a->h, dx, a->resid_p, resid_seed(a->dropout_seed, l, branch), a->row0, N, a->C);
    return a->h;
}

int vet_model_backward(vet_model *m, vet_acts *a, const vet_batch *b, float loss_scale,
                       vet_train_mode mode, float *grads, vet_err *err) {
    const vet_config *c = &m->cfg;
    if (a->last != b) return vet_errf(err, "backward needs the forward of the same batch first");
    int full = mode == VET_TRAIN_FULL;
    if (!full && !m->has_lora) return vet_errf(err, "LoRA training needs LoRA adapters on the model");
    if (full && m->has_lora)
        return vet_errf(err, "full training of a model with LoRA adapters is not supported "
                             "(train the adapters, or drop them)");
    int N = b->B * b->T, C = a->C, F = a->F, Q = a->Q, KV = a->KV, V = a->V;
    size_t NS = a->N;
    const vet_weights *w = &m->w;
    float *gw = full ? grads : NULL;  // base weight gradients (NULL in LoRA mode)

    // --- loss -> lnf ---
    float *dlnf = a->dh;  // (N,C), rows without a target stay 0
    memset(dlnf, 0, (size_t)N * C * sizeof(float));
    if (!a->have_dlnf || full) {
        // Full mode needs d lm_head = dlogits^T · lnf: recompute the logits chunk by chunk.
        int32_t *tg = malloc((size_t)a->ce_rows * sizeof(int32_t));
        float *dlm = grad_of(gw, m->w_mem, w->lm_head);
        for (int c0 = 0; c0 < a->n_tgt; c0 += a->ce_rows) {
            int n = a->n_tgt - c0 < a->ce_rows ? a->n_tgt - c0 : a->ce_rows;
            const float *rows = a->lnf_t + (size_t)c0 * C;
            matmul_forward(a->logits_chunk, rows, w->lm_head, NULL, n, C, V);
            for (int i = 0; i < n; i++) tg[i] = b->targets[a->tgt_pos[c0 + i]];
            crossentropy_smoothed_softmax_backward_inplace(a->logits_chunk, a->ce_loss, tg, n, V, a->label_smoothing);
            if (!a->have_dlnf)
                vet_sgemm(0, 0, n, C, V, 1.0f, a->logits_chunk, V, w->lm_head, C, 0.0f, a->dlnf_t + (size_t)c0 * C, C);
            if (dlm)  // (V,C) += loss_scale * dlogits^T · rows
                vet_sgemm(1, 0, V, C, n, loss_scale, a->logits_chunk, V, rows, C, 1.0f, dlm, C);
        }
        free(tg);
        a->have_dlnf = 1;
    }
    for (int i = 0; i < a->n_tgt; i++) {
        float *d = dlnf + (size_t)a->tgt_pos[i] * C;
        const float *s = a->dlnf_t + (size_t)i * C;
        for (int j = 0; j < C; j++) d[j] = loss_scale * s[j];
    }
    float *dx = a->dx;  // gradient of the residual stream, walking down the layers
    memset(dx, 0, (size_t)N * C * sizeof(float));
    rmsnorm_backward(dx, grad_of(gw, m->w_mem, w->final_norm), dlnf,
                     a->x + (size_t)c->n_layers * NS * C, w->final_norm, a->rstdf, N, C);

    for (int l = c->n_layers - 1; l >= 0; l--) {
        float *x = a->x + l * NS * C, *xmid = a->xmid + l * NS * C;
        float *q = a->q + l * NS * Q, *k = a->k + l * NS * KV, *v = a->v + l * NS * KV;
        float *att = a->att + l * NS * Q, *gate = a->gate + l * NS * F, *up = a->up + l * NS * F;
        const float *anorm = w->attn_norm + (size_t)l * C, *mnorm = w->mlp_norm + (size_t)l * C;
        // MLP: x'' = x' + down(silu(g)*u), g,u from h2 = norm(x')
        swiglu_forward(a->act, gate, up, (size_t)N * F);
        memset(a->dact, 0, (size_t)N * F * sizeof(float));
        proj_backward(m, a, l, 6, a->dact, resid_branch_grad(a, dx, l, 1, N), a->act, N, grads, full);
        swiglu_backward_set(a->dgate, a->dup, a->dact, gate, up, (size_t)N * F);  // (=): no zeroing
        rmsnorm_forward(a->h, a->rstd2 + l * NS, xmid, mnorm, N, C, c->rms_eps);  // h2 again
        memset(a->dh, 0, (size_t)N * C * sizeof(float));
        proj_backward(m, a, l, 4, a->dh, a->dgate, a->h, N, grads, full);
        proj_backward(m, a, l, 5, a->dh, a->dup, a->h, N, grads, full);
        rmsnorm_backward(dx, grad_of(gw, m->w_mem, mnorm), a->dh, xmid, mnorm, a->rstd2 + l * NS, N, C);
        // attention: x' = x + o(attn(rope(q), rope(k), v)), q,k,v from h = norm(x)
        memset(a->datt, 0, (size_t)N * Q * sizeof(float));
        proj_backward(m, a, l, 3, a->datt, resid_branch_grad(a, dx, l, 0, N), att, N, grads, full);
        memset(a->dq, 0, (size_t)N * Q * sizeof(float));
        memset(a->dk, 0, (size_t)N * KV * sizeof(float));
        memset(a->dv, 0, (size_t)N * KV * sizeof(float));
        attention_backward(a->dq, a->dk, a->dv, a->datt, q, k, v, att, a->lse + l * NS * a->H,
                           b->seg, b->B, b->T, c->n_heads, c->n_kv_heads, c->head_dim);
        rope_backward(a->dq, b->pos, a->cos_t, a->sin_t, N, c->n_heads, c->head_dim);
        rope_backward(a->dk, b->pos, a->cos_t, a->sin_t, N, c->n_kv_heads, c->head_dim);
        rmsnorm_forward(a->h, a->rstd1 + l * NS, x, anorm, N, C, c->rms_eps);  // h again
        memset(a->dh, 0, (size_t)N * C * sizeof(float));
        proj_backward(m, a, l, 0, a->dh, a->dq, a->h, N, grads, full);
        proj_backward(m, a, l, 1, a->dh, a->dk, a->h, N, grads, full);
        proj_backward(m, a, l, 2, a->dh, a->dv, a->h, N, grads, full);
        rmsnorm_backward(dx, grad_of(gw, m->w_mem, anorm), a->dh, x, anorm, a->rstd1 + l * NS, N, C);
    }
    if (full) embedding_backward(grad_of(gw, m->w_mem, w->embed), dx, b->tokens, N, C);
    return 0;
}
