// lora.c — LoRA adapters: target names, initialisation as PEFT does it, and the adapted
// projection y = x·W^T + b + scale · (dropout(x)·A^T)·B^T with its backward.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/lora.h"
#include "model/ops.h"
#include "base/rng.h"


static const char *target_names[VET_LORA_N_TARGETS] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                       "gate_proj", "up_proj", "down_proj"};
static const char *short_names[VET_LORA_N_TARGETS] = {"q", "k", "v", "o", "gate", "up", "down"};

const char *vet_lora_target_name(int i) {
    return i >= 0 && i < VET_LORA_N_TARGETS ? target_names[i] : "?";
}

int vet_lora_parse_targets(const char *spec, unsigned *mask, vet_err *err) {
    *mask = 0;
    if (!spec || !*spec) return vet_errf(err, "empty LoRA target list (try q,k,v,o or all)");
    const char *p = spec;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && (*p == ' ')) p++, len--;
        while (len && p[len - 1] == ' ') len--;
        int found = -1;
        if (len == 3 && strncmp(p, "all", 3) == 0) {
            *mask |= VET_LORA_ALL;
            found = 0;
        }
        for (int t = 0; t < VET_LORA_N_TARGETS && found < 0; t++)
            if ((strlen(short_names[t]) == len && strncmp(p, short_names[t], len) == 0) ||
                (strlen(target_names[t]) == len && strncmp(p, target_names[t], len) == 0)) {
                *mask |= 1u << t;
                found = t;
            }
        if (found < 0)
            return vet_errf(err, "unknown LoRA target '%.*s' in '%s' (known: q,k,v,o,gate,up,down, "
                                 "their PEFT names q_proj..down_proj, or all)", (int)len, p, spec);
        if (!e) break;
        p = e + 1;
    }
    if (!*mask) return vet_errf(err, "no LoRA target in '%s' (try q,k,v,o or all)", spec);
    return 0;
}

void vet_lora_dims(const vet_config *c, int t, int *out, int *in) {
    int q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    switch (t) {
    case 0: *out = q, *in = c->dim; break;
    case 1: *out = kv, *in = c->dim; break;
    case 2: *out = kv, *in = c->dim; break;
    case 3: *out = c->dim, *in = q; break;
    case 4: *out = c->hidden_dim, *in = c->dim; break;
    case 5: *out = c->hidden_dim, *in = c->dim; break;
    default: *out = c->dim, *in = c->hidden_dim; break;
    }
}

int vet_model_add_lora(vet_model *m, int r, float alpha, float dropout, int rslora,
                       unsigned targets, uint64_t seed, vet_err *err) {
    if (m->has_lora) return vet_errf(err, "the model already has LoRA adapters");
    if (r <= 0) return vet_errf(err, "LoRA rank %d must be positive", r);
    if (!(dropout >= 0.0f && dropout < 1.0f))
        return vet_errf(err, "LoRA dropout %g is outside [0, 1)", dropout);
    targets &= VET_LORA_ALL;
    if (!targets) return vet_errf(err, "no LoRA target chosen (try q,k,v,o or all)");
    const vet_config *c = &m->cfg;
    vet_lora *lo = &m->lora;
    memset(lo, 0, sizeof *lo);
    lo->r = r, lo->alpha = alpha, lo->rslora = rslora, lo->dropout = dropout, lo->targets = targets;
    lo->scale = rslora ? alpha / sqrtf((float)r) : alpha / (float)r;
    size_t n = 0;
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!(targets & (1u << t))) continue;
        int out, in;
        vet_lora_dims(c, t, &out, &in);
        n += (size_t)c->n_layers * r * ((size_t)in + out);
    }
    float *mem = calloc(n, sizeof(float));  // B = 0
    if (!mem) return vet_err_nomem(err, "out of memory for LoRA adapters (%zu floats)", n);
    size_t off = 0;
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!(targets & (1u << t))) continue;
        int out, in;
        vet_lora_dims(c, t, &out, &in);
        lo->A[t] = mem + off;
        off += (size_t)c->n_layers * r * in;
        lo->B[t] = mem + off;
        off += (size_t)c->n_layers * out * r;
        // PEFT: kaiming_uniform_(A, a=sqrt(5)) -> bound = sqrt(6 / ((1 + 5) * in)) = 1/sqrt(in).
        // Each (target, layer) gets its own stream, so adding a target leaves the others alone.
        float bound = 1.0f / sqrtf((float)in);
        for (int l = 0; l < c->n_layers; l++) {
            vet_rng rng;
            vet_rng_seed(&rng, vet_rng_hash(vet_rng_hash(seed, (uint64_t)t), (uint64_t)l));
            float *A = lo->A[t] + (size_t)l * r * in;
            for (size_t i = 0; i < (size_t)r * in; i++) A[i] = vet_rng_uniform_range(&rng, -bound, bound);
        }
    }
    m->lora_mem = mem;
    m->n_lora = n;
    m->has_lora = 1;
    return 0;
}

// ---------------------------------------------------------------------------------------
// The adapted projection.

lora_proj_w lora_layer_proj(const vet_model *m, int l, int t) {
    const vet_config *c = &m->cfg;
    const vet_weights *w = &m->w;
    size_t C = c->dim, F = c->hidden_dim, Q = (size_t)c->n_heads * c->head_dim;
    size_t KV = (size_t)c->n_kv_heads * c->head_dim;
    lora_proj_w p = {0};
    switch (t) {
    case 0: p.w = w->wq + l * Q * C; p.b = w->bq ? w->bq + l * Q : NULL; break;
    case 1: p.w = w->wk + l * KV * C; p.b = w->bk ? w->bk + l * KV : NULL; break;
    case 2: p.w = w->wv + l * KV * C; p.b = w->bv ? w->bv + l * KV : NULL; break;
    case 3: p.w = w->wo + l * C * Q; break;
    case 4: p.w = w->wgate + l * F * C; break;
    case 5: p.w = w->wup + l * F * C; break;
    default: p.w = w->wdown + l * C * F; break;
    }
    if (m->has_lora && m->lora.A[t]) {
        int out, in;
        vet_lora_dims(c, t, &out, &in);
        p.A = m->lora.A[t] + (size_t)l * m->lora.r * in;
        p.B = m->lora.B[t] + (size_t)l * out * m->lora.r;
    }
    return p;
}

void lora_proj_forward(float *out, float *u, float *xd, const float *inp, const float *W,
                       const float *bias, const float *A, const float *B, int r, float scale,
                       float dropout, uint64_t seed, int64_t row0, int N, int in, int outc) {
    matmul_forward(out, inp, W, bias, N, in, outc);  // (N,out) base
    if (!A) return;
    const float *x = inp;
    if (dropout > 0.0f) {  // xd (N,in) = dropout(inp)
        dropout_forward(xd, inp, dropout, seed, row0, N, in);
        x = xd;
    }
    matmul_forward(u, x, A, NULL, N, in, r);  // u (N,r) = x · A^T
    // out (N,out) += scale * u · B^T
    vet_sgemm(0, 1, N, outc, r, scale, u, r, B, r, 1.0f, out, outc);
}

void lora_proj_backward(float *dinp, float *dW, float *dbias, float *dA, float *dB, float *du,
                        float *xd, const float *dout, const float *inp, const float *u,
                        const float *W, const float *A, const float *B, int r, float scale,
                        float dropout, uint64_t seed, int64_t row0, int N, int in, int outc) {
    matmul_backward(dinp, dW, dbias, dout, inp, W, N, in, outc);
    if (!A) return;
    // du (N,r) = scale * dout · B
    vet_sgemm(0, 0, N, r, outc, scale, dout, outc, B, r, 0.0f, du, r);
    if (dB)  // dB (out,r) += scale * dout^T · u
        vet_sgemm(1, 0, outc, r, N, scale, dout, outc, u, r, 1.0f, dB, r);
    const float *x = inp;
    if (dropout > 0.0f) {  // the same mask as the forward, regenerated from its seed
        dropout_forward(xd, inp, dropout, seed, row0, N, in);
        x = xd;
    }
    if (dA)  // dA (r,in) += du^T · x
        vet_sgemm(1, 0, r, in, N, 1.0f, du, r, x, in, 1.0f, dA, in);
    if (!dinp) return;
    if (dropout > 0.0f) {  // dinp += mask/(1-p) * (du · A); xd is free again: use it
        vet_sgemm(0, 0, N, in, r, 1.0f, du, r, A, in, 0.0f, xd, in);
        dropout_backward(dinp, xd, dropout, seed, row0, N, in);
    } else {
        vet_sgemm(0, 0, N, in, r, 1.0f, du, r, A, in, 1.0f, dinp, in);
    }
}
