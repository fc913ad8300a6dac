// gpu_infer.c — the KV-cache forward of lib/generate/decoder.c on a CUDA device (see gpu_infer.h).
//
// One decode step for n slots, per layer (the CPU's sequence, op for op):
//   h = rmsnorm(x)                                      (n,C)
//   q, k, v = h·Wq^T(+bq), h·Wk^T(+bk), h·Wv^T(+bv)     (n,Q), (n,KV), (n,KV)
//   rope(q, k) at each slot's position; k, v scattered into the slots' caches
//   att = attention of each row against its slot's cache  (n,Q)
//   x += att·Wo^T;  x += (silu(h2·Wgate^T) * h2·Wup^T)·Wdown^T  with h2 = rmsnorm(x)
// then logits = rmsnorm(x)·lm_head^T (n,V), downloaded for sampling on the host.
// Prefill runs the same sequence over the prompt's M positions, with the keys and values
// computed straight into the slot's cache rows 0..M-1 and attention_forward_cuda over them.
//
// 16-bit mode (VET_GPU_BF16, or VET_GPU_FP16 for IEEE fp16): the weight matrices are stored in
// that format and each GEMM's input is rounded to it once (x16), as kernels/host/gpu_train.c does; the
// GEMMs accumulate in fp32. Norms, biases, lm_head and activations fp32. fp16 keeps a
// float16 checkpoint's weights exactly (bf16 would drop 3 of their 10 mantissa bits).
//
// The KV cache is stored in the 16-bit format of the weights (bf16, or fp16 with VET_GPU_FP16;
// bf16 for quantized weights dequantized to bf16; bf16 with VET_GPU_KV_BF16 in fp32 mode), fp32
// in fp32 mode: each key and value is rounded once when written (kv_cache_write16_cuda) and
// widened exactly when read, with fp32 accumulation. A prefill's own attention reads its
// keys and values rounded the same way (rounded in place before attention_forward_cuda), so
// a prompt's rows are the same numbers whether they come from the prefill or the cache.
// Prefill rows: a prompt's positions (or several prompts' concatenated), each row with its
// slot, position and segment, so the keys and values are scattered into the caches by the
// same kv_cache_write as a step's.
#include "kernels/host/gpu_infer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"

#ifdef VET_CUDA

#include "kernels/ops_cuda.h"
#include "kernels/host/device.h"
#include "base/half.h"
#include "model/ops.h"
#include "model/quant.h"
#include "kernels/host/gpu_upload.h"

#define ALIGN 256
#define GIB(b) ((double)(b) / (1024.0 * 1024.0 * 1024.0))

enum { K_WEIGHTS, K_CACHE, K_SCRATCH };

// The projections, in vet_weights order: q, k, v, o, gate, up, down.
enum { P_Q, P_K, P_V, P_O, P_GATE, P_UP, P_DOWN, P_N };

struct vet_gpu_infer {
    vet_cuda *ctx;
    vet_config cfg;
    int half;                               // weight matrices in 16 bits: bf16, or fp16 when fp16
    int fp16;                               // VET_GPU_FP16: the 16-bit format is IEEE fp16
    int quant;                              // 0, VET_CUDA_Q_INT8 or VET_CUDA_Q_NF4
    int L, C, F, Q, KV, H, KVH, hd, V, W;  // W = max(C, Q, F): the widest GEMM input
    int kvfmt;                              // 0 (fp32 cache), VET_CUDA_KV_BF16 or VET_CUDA_KV_F16
    int n_slots, max_len, P, R;             // P: prefill rows (>= max_len); R = max(P, n_slots)
    int *len;                               // host (n_slots): positions in each slot's cache
    int32_t *h_in;                          // host (4*R + n_slots): tokens, slots, positions, segments, last rows

    // --- device buffers (all inside mem) ---
    float *w;                      // fp32 mode: the whole w_mem; the pointers below point into it
    float *embed, *attn_norm, *mlp_norm, *final_norm, *lm_head, *bq, *bk, *bv;
    float *mat[P_N];               // fp32 matrices (L, out, in); NULL in 16-bit mode
    uint16_t *mat16[P_N];          // bf16 / fp16 matrices; NULL in fp32 mode
    uint16_t *embed16;             // (V,C) 16-bit mode, untied embeddings only
    // quantized mode (VET_GPU_INT8 / VET_GPU_NF4): projection t of layer l at
    // qw[t] + l * q_bytes[t], qs[t] + l * q_scales[t] (lib/model/quant.h's formats); wdq holds one
    // matrix dequantized (max_oi values, bf16 with VET_GPU_BF16, else fp32) for its GEMM
    void *qw[P_N];
    float *qs[P_N];
    size_t q_bytes[P_N], q_scales[P_N], max_oi;
    void *wdq;
    int qrows;                     // steps of up to VET_QMMA_ROWS rows read the codes (matmul_rows_q, _mma)
    void *kc, *vc;                 // (L, n_slots, max_len, KV) fp32, or uint16_t in format kvfmt
    float *cos_t, *sin_t;          // (max_len, hd/2)
    float *x, *h, *q, *att, *proj, *rstd, *lse;  // (R,C) (R,C) (R,Q) (R,Q) (R,C) (R) (R,H)
    float *k, *v;                  // (R, KV) the new keys and values of a prefill or a step
    float *gate, *up, *act;        // (R,F)
    float *logits;                 // (n_slots, V)
    float *h_logits;               // host, pinned (n_slots, V): logits copied back by DMA
    uint16_t *x16;                 // (R,W) 16-bit GEMM inputs (16-bit mode or a 16-bit cache)
    void *attn_scratch;            // attention_scratch_bytes(1, P, H)
    int32_t *in;                   // (4*R + n_slots) h_in on the device
    int32_t *allow;                // (n_slots * V + n_slots + 1) constrained greedy's id lists, offsets
    void *mem;
    vet_gpu_infer_plan plan;
};

typedef struct {
    void **p;
    size_t bytes;
    int kind;
} slot_t;
#define MAX_SLOTS 64

// Rows of one batched prefill (several prompts concatenated; one longer prompt gets max_len):
// a 7B model's scratch for 2048 rows is ~0.9 GB, beside 17 GB of a batch-64 x 512 bf16 cache.
#define PREFILL_ROWS 2048

static size_t aligned(size_t b) { return (b + ALIGN - 1) / ALIGN * ALIGN; }

// Out and in features of projection t.
static void proj_dims(const vet_gpu_infer *g, int t, int *out, int *in) {
    switch (t) {
    case P_Q: *out = g->Q, *in = g->C; break;
    case P_K: case P_V: *out = g->KV, *in = g->C; break;
    case P_O: *out = g->C, *in = g->Q; break;
    case P_GATE: case P_UP: *out = g->F, *in = g->C; break;
    default: *out = g->C, *in = g->F; break;
    }
}

static int set_dims(vet_gpu_infer *g, const vet_config *c, int n_slots, int max_len, unsigned flags,
                    vet_err *err) {
    if (n_slots < 1 || max_len < 1)
        return vet_errf(err, "GPU inference needs at least one slot of one position (got %d x %d)", n_slots,
                        max_len);
    if (c->head_dim % 2 || c->head_dim > 128)
        return vet_errf(err, "head_dim %d: the CUDA attention needs an even head_dim <= 128", c->head_dim);
    if (flags & VET_GPU_FULL) return vet_errf(err, "VET_GPU_FULL is a training option");
    if ((flags & VET_GPU_INT8) && (flags & VET_GPU_NF4))
        return vet_errf(err, "VET_GPU_INT8 and VET_GPU_NF4 together: choose one quantization");
    g->cfg = *c;
    g->fp16 = (flags & VET_GPU_FP16) != 0;
    if (g->fp16 && (flags & VET_GPU_BF16))
        return vet_errf(err, "VET_GPU_FP16 and VET_GPU_BF16 together: choose one 16-bit format");
    if (g->fp16 && (flags & (VET_GPU_INT8 | VET_GPU_NF4)))
        return vet_errf(err, "VET_GPU_FP16 with quantized weights is not supported (they are dequantized to "
                             "bf16 or fp32 for their GEMMs)");
    g->half = g->fp16 || (flags & VET_GPU_BF16) != 0;
    g->quant = flags & VET_GPU_INT8 ? VET_CUDA_Q_INT8 : flags & VET_GPU_NF4 ? VET_CUDA_Q_NF4 : 0;
    g->qrows = g->quant && !(flags & VET_GPU_QUANT_SCRATCH);
    g->L = c->n_layers, g->C = c->dim, g->F = c->hidden_dim, g->H = c->n_heads;
    g->KVH = c->n_kv_heads, g->hd = c->head_dim, g->V = c->vocab_size;
    g->Q = g->H * g->hd, g->KV = g->KVH * g->hd;
    g->W = g->C > g->Q ? g->C : g->Q;
    if (g->F > g->W) g->W = g->F;
    g->n_slots = n_slots, g->max_len = max_len;
    // Prefill rows: a whole prompt, and up to PREFILL_ROWS rows of several prompts at once.
    size_t all = (size_t)n_slots * max_len, P = all < PREFILL_ROWS ? all : PREFILL_ROWS;
    g->P = P > (size_t)max_len ? (int)P : max_len;
    g->R = g->P > n_slots ? g->P : n_slots;
    g->kvfmt = g->fp16 ? VET_CUDA_KV_F16 : (g->half || (flags & VET_GPU_KV_BF16)) ? VET_CUDA_KV_BF16 : 0;
    g->max_oi = 0;
    for (int t = 0; t < P_N; t++) {
        int out, in;
        proj_dims(g, t, &out, &in);
        size_t n = (size_t)out * in;
        if (g->quant) vet_quant_stored_sizes((vet_quant_kind)g->quant, out, in, &g->q_bytes[t], &g->q_scales[t]);
        if (n > g->max_oi) g->max_oi = n;
    }
    return 0;
}

static int layout(vet_gpu_infer *g, slot_t *s) {
    int n = 0;
    size_t L = g->L, C = g->C, F = g->F, Q = g->Q, KV = g->KV, V = g->V, R = g->R, S = g->n_slots;
    size_t f = sizeof(float), i32 = sizeof(int32_t), u16 = sizeof(uint16_t);
#define PUT(ptr, nbytes, k) (s[n].p = (void **)&(ptr), s[n].bytes = (nbytes), s[n].kind = (k), n++)
    if (!g->half && !g->quant) {
        PUT(g->w, vet_config_n_params(&g->cfg) * f, K_WEIGHTS);
    } else {
        for (int t = 0; t < P_N; t++) {
            int out, in;
            proj_dims(g, t, &out, &in);
            if (g->quant) {
                PUT(g->qw[t], L * g->q_bytes[t], K_WEIGHTS);
                PUT(g->qs[t], L * g->q_scales[t] * f, K_WEIGHTS);
            } else {
                PUT(g->mat16[t], L * out * in * u16, K_WEIGHTS);
            }
        }
        if (!g->cfg.tie_embeddings) {
            if (g->half) PUT(g->embed16, V * C * u16, K_WEIGHTS);
            else PUT(g->embed, V * C * f, K_WEIGHTS);  // quantized matrices, fp32 compute
        }
        PUT(g->attn_norm, L * C * f, K_WEIGHTS);
        PUT(g->mlp_norm, L * C * f, K_WEIGHTS);
        PUT(g->final_norm, C * f, K_WEIGHTS);
        if (g->cfg.qkv_bias) {
            PUT(g->bq, L * Q * f, K_WEIGHTS);
            PUT(g->bk, L * KV * f, K_WEIGHTS);
            PUT(g->bv, L * KV * f, K_WEIGHTS);
        }
        PUT(g->lm_head, V * C * f, K_WEIGHTS);
    }
    size_t kvb = g->kvfmt ? u16 : f;
    PUT(g->kc, L * S * g->max_len * KV * kvb, K_CACHE);
    PUT(g->vc, L * S * g->max_len * KV * kvb, K_CACHE);

    PUT(g->cos_t, (size_t)g->max_len * g->hd / 2 * f, K_SCRATCH);
    PUT(g->sin_t, (size_t)g->max_len * g->hd / 2 * f, K_SCRATCH);
    PUT(g->x, R * C * f, K_SCRATCH);
    PUT(g->h, R * C * f, K_SCRATCH);
    PUT(g->q, R * Q * f, K_SCRATCH);
    PUT(g->att, R * Q * f, K_SCRATCH);
    PUT(g->proj, R * C * f, K_SCRATCH);
    PUT(g->rstd, R * f, K_SCRATCH);
    PUT(g->lse, R * g->H * f, K_SCRATCH);
    PUT(g->k, R * KV * f, K_SCRATCH);
    PUT(g->v, R * KV * f, K_SCRATCH);
    PUT(g->gate, R * F * f, K_SCRATCH);
    PUT(g->up, R * F * f, K_SCRATCH);
    PUT(g->act, R * F * f, K_SCRATCH);
    PUT(g->logits, S * V * f, K_SCRATCH);
    if (g->half || g->kvfmt) PUT(g->x16, R * g->W * u16, K_SCRATCH);
    if (g->quant) PUT(g->wdq, g->max_oi * (g->half ? u16 : f), K_SCRATCH);
    PUT(g->attn_scratch, attention_scratch_bytes(1, g->P, g->H), K_SCRATCH);
    PUT(g->in, (4 * R + S) * i32, K_SCRATCH);
    PUT(g->allow, (S * V + S + 1) * i32, K_SCRATCH);
#undef PUT
    return n;
}

static void plan_of(const slot_t *s, int n, vet_gpu_infer_plan *p) {
    memset(p, 0, sizeof *p);
    for (int i = 0; i < n; i++) {
        size_t b = aligned(s[i].bytes);
        if (s[i].kind == K_WEIGHTS) p->weights += b;
        else if (s[i].kind == K_CACHE) p->cache += b;
        else p->scratch += b;
    }
    p->total = p->weights + p->cache + p->scratch;
}

int vet_gpu_infer_plan_bytes(const vet_config *c, int n_slots, int max_len, unsigned flags,
                             vet_gpu_infer_plan *out, vet_err *err) {
    vet_gpu_infer *g = calloc(1, sizeof *g);  // only its sizes are used
    if (!g) return vet_err_nomem(err, "out of memory");
    int rc = set_dims(g, c, n_slots, max_len, flags, err);
    if (rc == 0) {
        slot_t s[MAX_SLOTS];
        plan_of(s, layout(g, s), out);
    }
    free(g);
    return rc;
}

// ---------------------------------------------------------------------------------------
// Device, creation

vet_cuda *vet_gpu_infer_open(int dev, char *name, size_t n, size_t *free_bytes,
                             size_t *total_bytes, vet_err *err) {
    char why[512];
    if (!vet_cuda_available(why, sizeof why)) {
        vet_errf(err, "%s", why);
        return NULL;
    }
    if (vet_cuda_device_name(dev, name, n, err) < 0) return NULL;
    vet_cuda *ctx = vet_cuda_new(dev, err);
    if (!ctx) return NULL;
    if (vet_cuda_mem_info(ctx, free_bytes, total_bytes, err) < 0) {
        vet_cuda_free(ctx);
        return NULL;
    }
    return ctx;
}

void vet_gpu_infer_close(vet_cuda *ctx) {
    if (ctx) vet_cuda_free(ctx);
}

// Quantized mode: each layer's matrix of each projection quantized on the host (lib/model/quant.c)
// and uploaded as stored.
static int upload_quantized(vet_gpu_infer *g, const float *const host[P_N], vet_err *err) {
    static const char *const names[P_N] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    for (int t = 0; t < P_N; t++) {
        int out, in;
        proj_dims(g, t, &out, &in);
        if (vet_gpu_upload_quantized(g->ctx, g->quant, host[t], g->L, out, in, g->qw[t], g->q_bytes[t], g->qs[t],
                                     g->q_scales[t], names[t], err) < 0)
            return -1;
    }
    return 0;
}

static int upload_weights(vet_gpu_infer *g, const vet_model *m, vet_err *err) {
    vet_cuda *ctx = g->ctx;
    const vet_weights *w = &m->w;
    size_t L = g->L;
    const float *host[P_N] = {w->wq, w->wk, w->wv, w->wo, w->wgate, w->wup, w->wdown};
    if (!g->half && !g->quant) {
        if (vet_gpu_upload_f32(ctx, g->w, m->w_mem, m->n_w, err) < 0) return -1;
#define AT(p) ((p) ? g->w + ((p) - m->w_mem) : NULL)
        g->embed = AT(w->embed), g->attn_norm = AT(w->attn_norm), g->mlp_norm = AT(w->mlp_norm);
        g->final_norm = AT(w->final_norm), g->lm_head = AT(w->lm_head);
        g->bq = AT(w->bq), g->bk = AT(w->bk), g->bv = AT(w->bv);
        for (int t = 0; t < P_N; t++) g->mat[t] = AT(host[t]);
#undef AT
        return 0;
    }
    if (g->quant && upload_quantized(g, host, err) < 0) return -1;
    for (int t = 0; t < P_N && !g->quant; t++) {
        int out, in;
        proj_dims(g, t, &out, &in);
        if (vet_gpu_upload_half(ctx, g->mat16[t], host[t], L * out * in, g->fp16, err) < 0) return -1;
    }
    vet_gpu_small_dst d = {.embed = g->embed, .embed16 = g->embed16, .attn_norm = g->attn_norm,
                           .mlp_norm = g->mlp_norm, .final_norm = g->final_norm, .lm_head = g->lm_head,
                           .bq = g->bq, .bk = g->bk, .bv = g->bv};
    if (vet_gpu_upload_small(ctx, &g->cfg, w, &d, g->fp16, err) < 0) return -1;
    if (g->cfg.tie_embeddings) g->embed = g->lm_head;  // tied: look up in the fp32 table
    else if (g->embed16) g->embed = NULL;              // untied 16-bit: embed16
    return 0;
}

// RoPE tables for positions < max_len.
static int upload_tables(vet_gpu_infer *g, vet_err *err) {
    const vet_config *c = &g->cfg;
    size_t half = (size_t)g->max_len * g->hd / 2;
    float *inv = malloc((size_t)g->hd / 2 * sizeof(float)), *cs = malloc(2 * half * sizeof(float));
    int rc = -1;
    if (!inv || !cs) {
        vet_err_nomem(err, "out of memory for the RoPE tables");
        goto out;
    }
    vet_rope_inv_freq(c, inv);
    rope_tables(cs, cs + half, g->max_len, c->head_dim, inv);
    if (vet_gpu_upload_f32(g->ctx, g->cos_t, cs, half, err) == 0 && vet_gpu_upload_f32(g->ctx, g->sin_t, cs + half, half, err) == 0)
        rc = 0;
out:
    free(inv), free(cs);
    return rc;
}

vet_gpu_infer *vet_gpu_infer_new(vet_cuda *ctx, const vet_model *m, int n_slots, int max_len,
                                 const vet_gpu_opts *opts, vet_err *err) {
    vet_gpu_opts none = {0};
    if (!opts) opts = &none;
    if (m->has_lora) {
        vet_errf(err, "the model still has LoRA adapters: merge them first (vet_model_merge_lora)");
        return NULL;
    }
    vet_gpu_infer *g = calloc(1, sizeof *g);
    if (!g) {
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    g->ctx = ctx;
    if (set_dims(g, &m->cfg, n_slots, max_len, opts->flags, err) < 0) goto fail;
    if (m->n_w != (size_t)vet_config_n_params(&m->cfg)) {
        vet_errf(err, "internal: the model has %zu weights, its config says %lld", m->n_w,
                 (long long)vet_config_n_params(&m->cfg));
        goto fail;
    }
    slot_t s[MAX_SLOTS];
    int n = layout(g, s);
    plan_of(s, n, &g->plan);
    const vet_gpu_infer_plan *p = &g->plan;
    if (opts->mem_limit && p->total > opts->mem_limit) {
        vet_errf(err, "inference needs %.2f GiB on the device (weights %.2f, KV cache %.2f, scratch %.2f) but "
                      "only %.2f GiB are free: use fewer slots than %d or fewer positions than %d%s",
                 GIB(p->total), GIB(p->weights), GIB(p->cache), GIB(p->scratch), GIB(opts->mem_limit), n_slots,
                 max_len, g->quant ? "" : g->half ? ", or int8 / nf4 weights" : ", or bf16 weights");
        goto fail;
    }
    if (vet_cuda_malloc(&g->mem, p->total, err) < 0) {
        vet_err_prefix(err, "allocating %.2f GiB for GPU inference", GIB(p->total));
        goto fail;
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        *s[i].p = (char *)g->mem + off;
        vet_cuda_guard((char *)g->mem + off + s[i].bytes, aligned(s[i].bytes) - s[i].bytes);  // no op's
        off += aligned(s[i].bytes);
    }
    g->len = calloc((size_t)n_slots, sizeof(int));
    g->h_in = malloc((4 * (size_t)g->R + n_slots) * sizeof(int32_t));
    if (vet_cuda_host_alloc((void **)&g->h_logits, (size_t)n_slots * g->V * sizeof(float), err) < 0) goto fail;
    if (!g->len || !g->h_in) {
        vet_err_nomem(err, "out of memory");
        goto fail;
    }
    if (upload_tables(g, err) < 0 || upload_weights(g, m, err) < 0 || vet_cuda_sync(ctx, err) < 0) goto fail;
    return g;
fail:
    vet_gpu_infer_free(g);
    return NULL;
}

void vet_gpu_infer_free(vet_gpu_infer *g) {
    if (!g) return;
    vet_cuda_mem_free(g->mem);
    free(g->len), free(g->h_in);
    vet_cuda_host_free(g->h_logits);
    free(g);
}

const vet_gpu_infer_plan *vet_gpu_infer_plan_of(const vet_gpu_infer *g) { return &g->plan; }

int vet_gpu_infer_len(const vet_gpu_infer *g, int slot) {
    return slot >= 0 && slot < g->n_slots ? g->len[slot] : 0;
}

// ---------------------------------------------------------------------------------------
// The forward

#define TRY(call) do { if ((call) < 0) return -1; } while (0)

// In 16-bit mode: x16 = inp (N,in) rounded to bf16 (fp16 with VET_GPU_FP16), the input of the
// GEMMs that follow.
static int to_half(vet_gpu_infer *g, const float *inp, int N, int in, vet_err *err) {
    if (!g->half) return 0;
    size_t n = (size_t)N * in;
    return g->fp16 ? f32_to_f16_cuda(g->ctx, g->x16, inp, n, err) : f32_to_bf16_cuda(g->ctx, g->x16, inp, n, err);
}

// out (N,out) = inp (N,in)·W^T + b with projection t of layer l (16-bit mode: x16 holds inp).
static int linear(vet_gpu_infer *g, int l, int t, float *out, const float *inp, int N, vet_err *err) {
    int o, in;
    proj_dims(g, t, &o, &in);
    size_t per = (size_t)o * in;
    const float *b = NULL;
    if (g->cfg.qkv_bias && t <= P_V) b = (t == P_Q ? g->bq : t == P_K ? g->bk : g->bv) + (size_t)l * o;
    if (g->quant) {
        vet_cuda_qweight q = {g->quant, (const char *)g->qw[t] + l * g->q_bytes[t], g->qs[t] + l * g->q_scales[t]};
        const uint16_t *x16 = g->half ? g->x16 : NULL;
        if (g->qrows && matmul_rows_q_fits(&q, inp, x16, N, in))  // a step: bound by the weight bytes
            return matmul_rows_q_cuda(g->ctx, out, inp, x16, &q, b, N, in, o, err);
        if (g->qrows && !g->fp16 && matmul_rows_q_mma_fits(&q, x16, N, in))  // a larger batch's step, bf16
            return matmul_rows_q_mma_cuda(g->ctx, out, x16, &q, b, N, in, o, err);
        return matmul_forward_q_cuda(g->ctx, out, inp, x16, &q, b, N, in, o, g->wdq, err);
    }
    if (g->fp16)
        return matmul_forward_f16_cuda(g->ctx, out, g->x16, g->mat16[t] + l * per, b, N, in, o, err);
    if (g->half)
        return matmul_forward_bf16_cuda(g->ctx, out, g->x16, g->mat16[t] + l * per, b, N, in, o, err);
    return matmul_forward_cuda(g->ctx, out, inp, g->mat[t] + l * per, b, N, in, o, err);
}

static int embed(vet_gpu_infer *g, const int32_t *ids, int n, vet_err *err) {
    if (g->embed16 && g->fp16) return embedding_forward_f16_cuda(g->ctx, g->x, ids, g->embed16, n, g->C, err);
    if (g->embed16) return embedding_forward_bf16_cuda(g->ctx, g->x, ids, g->embed16, n, g->C, err);
    return embedding_forward_cuda(g->ctx, g->x, ids, g->embed, n, g->C, err);
}

// The MLP half of layer l over n rows of x, and the attention output's projection before it:
// x += att·Wo^T; x += (silu(h·Wgate^T) * h·Wup^T)·Wdown^T with h = rmsnorm(x).
static int layer_rest(vet_gpu_infer *g, int l, int n, vet_err *err) {
    vet_cuda *ctx = g->ctx;
    int C = g->C, F = g->F;
    TRY(to_half(g, g->att, n, g->Q, err));
    TRY(linear(g, l, P_O, g->proj, g->att, n, err));
    TRY(add_inplace_cuda(ctx, g->x, g->proj, (size_t)n * C, err));
    TRY(rmsnorm_forward_cuda(ctx, g->h, g->rstd, g->x, g->mlp_norm + (size_t)l * C, n, C, g->cfg.rms_eps, err));
    TRY(to_half(g, g->h, n, C, err));
    TRY(linear(g, l, P_GATE, g->gate, g->h, n, err));
    TRY(linear(g, l, P_UP, g->up, g->h, n, err));
    TRY(swiglu_forward_cuda(ctx, g->act, g->gate, g->up, (size_t)n * F, err));
    TRY(to_half(g, g->act, n, F, err));
    TRY(linear(g, l, P_DOWN, g->proj, g->act, n, err));
    return add_inplace_cuda(ctx, g->x, g->proj, (size_t)n * C, err);
}

// g->logits (n,V) = rmsnorm(rows)·lm_head^T, rows (n,C), on the device.
static int head_device(vet_gpu_infer *g, const float *rows, int n, vet_err *err) {
    TRY(rmsnorm_forward_cuda(g->ctx, g->h, g->rstd, rows, g->final_norm, n, g->C, g->cfg.rms_eps, err));
    return matmul_forward_cuda(g->ctx, g->logits, g->h, g->lm_head, NULL, n, g->C, g->V, err);
}

// The same logits on the host.
static int head(vet_gpu_infer *g, const float *rows, int n, float *logits, vet_err *err) {
    vet_cuda *ctx = g->ctx;
    TRY(head_device(g, rows, n, err));
    // queued behind the GEMM on the stream into pinned memory, then one wait for all of it
    size_t bytes = (size_t)n * g->V * sizeof(float);
    TRY(vet_cuda_download_async(ctx, g->h_logits, g->logits, bytes, err));
    TRY(vet_cuda_sync(ctx, err));
    memcpy(logits, g->h_logits, bytes);
    return 0;
}

static int check_ids(const vet_gpu_infer *g, const int32_t *ids, int n, vet_err *err) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= g->V)
            return vet_errf(err, "token %d at %d is outside the model's vocabulary [0, %d)", ids[i], i, g->V);
    return 0;
}

// Layer l's cache (keys or values: which = kc or vc) as the ops want it.
static void *cache_layer(const vet_gpu_infer *g, void *which, int l) {
    size_t per = (size_t)g->n_slots * g->max_len * g->KV * (g->kvfmt ? sizeof(uint16_t) : sizeof(float));
    return (char *)which + l * per;
}

// n rows of g->k and g->v into layer l's caches at (slots[i], pos[i]), rounded to the cache's
// format. round_rows: k and v themselves become the rounded values too (a prefill's attention
// then reads what the cache holds).
static int cache_write(vet_gpu_infer *g, int l, const int32_t *slots, const int32_t *pos, int n, int round_rows,
                       vet_err *err) {
    vet_cuda *ctx = g->ctx;
    void *kl = cache_layer(g, g->kc, l), *vl = cache_layer(g, g->vc, l);
    int KV = g->KV;
    if (!g->kvfmt) {
        TRY(kv_cache_write_cuda(ctx, kl, g->k, slots, pos, n, g->max_len, KV, err));
        return kv_cache_write_cuda(ctx, vl, g->v, slots, pos, n, g->max_len, KV, err);
    }
    TRY(kv_cache_write16_cuda(ctx, kl, g->k, slots, pos, n, g->max_len, KV, g->kvfmt, err));
    TRY(kv_cache_write16_cuda(ctx, vl, g->v, slots, pos, n, g->max_len, KV, g->kvfmt, err));
    if (!round_rows) return 0;
    size_t m = (size_t)n * KV;  // <= R*W: x16 is free between the q/k/v GEMMs and the o input
    float *rows[2] = {g->k, g->v};
    for (int r = 0; r < 2; r++) {
        if (g->kvfmt == VET_CUDA_KV_F16) {
            TRY(f32_to_f16_cuda(ctx, g->x16, rows[r], m, err));
            TRY(f16_to_f32_cuda(ctx, rows[r], g->x16, m, err));
        } else {
            TRY(f32_to_bf16_cuda(ctx, g->x16, rows[r], m, err));
            TRY(bf16_to_f32_cuda(ctx, rows[r], g->x16, m, err));
        }
    }
    return 0;
}

// The forward of B prompts concatenated into M rows: h_in holds (M) tokens, slots, positions
// (0.. within each prompt) and segments (the prompt's index), then (B) the row of each
// prompt's last position. Causal attention per prompt (attention_forward_cuda over one packed
// row, a segment per prompt); keys and values scattered into each prompt's slot; logits (B,V)
// of the last positions back on the host.
static int prefill_rows(vet_gpu_infer *g, int M, int B, float *logits, vet_err *err) {
    vet_cuda *ctx = g->ctx;
    int C = g->C, H = g->H, KVH = g->KVH, hd = g->hd;
    TRY(vet_cuda_upload(ctx, g->in, g->h_in, (4 * (size_t)M + B) * sizeof(int32_t), err));
    const int32_t *d_tok = g->in, *d_slot = d_tok + M, *d_pos = d_slot + M, *d_seg = d_pos + M, *d_last = d_seg + M;
    TRY(embed(g, d_tok, M, err));
    for (int l = 0; l < g->L; l++) {
        TRY(rmsnorm_forward_cuda(ctx, g->h, g->rstd, g->x, g->attn_norm + (size_t)l * C, M, C, g->cfg.rms_eps,
                                 err));
        TRY(to_half(g, g->h, M, C, err));
        TRY(linear(g, l, P_Q, g->q, g->h, M, err));  // (M,Q)
        TRY(linear(g, l, P_K, g->k, g->h, M, err));  // (M,KV)
        TRY(linear(g, l, P_V, g->v, g->h, M, err));
        TRY(rope_forward_cuda(ctx, g->q, d_pos, g->cos_t, g->sin_t, M, H, hd, err));
        TRY(rope_forward_cuda(ctx, g->k, d_pos, g->cos_t, g->sin_t, M, KVH, hd, err));
        TRY(cache_write(g, l, d_slot, d_pos, M, 1, err));
        TRY(attention_forward_cuda(ctx, g->att, g->lse, g->q, g->k, g->v, d_seg, 1, M, H, KVH, hd,
                                   g->attn_scratch, err));
        TRY(layer_rest(g, l, M, err));
    }
    // each prompt's last row gathered (an embedding lookup in the table x) into proj (B,C)
    TRY(embedding_forward_cuda(ctx, g->proj, d_last, g->x, B, C, err));
    return head(g, g->proj, B, logits, err);
}

static int prefill_chunk(vet_gpu_infer *g, const int *slots, const int32_t *const *ids, const int *n, int i0, int i1,
                         float *logits, vet_err *err);

int vet_gpu_infer_prefill(vet_gpu_infer *g, int slot, const int32_t *ids, int n, float *logits,
                          vet_err *err) {
    if (slot < 0 || slot >= g->n_slots) return vet_errf(err, "slot %d out of range [0, %d)", slot, g->n_slots);
    if (n <= 0) return vet_errf(err, "empty prompt");
    if (n > g->max_len)
        return vet_errf(err, "a prompt of %d tokens does not fit the device KV cache of %d positions", n,
                        g->max_len);
    TRY(check_ids(g, ids, n, err));
    g->len[slot] = 0;  // cleared first: a failure below leaves the slot empty
    TRY(prefill_chunk(g, &slot, &ids, &n, 0, 1, logits, err));
    g->len[slot] = n;
    return 0;
}

int vet_gpu_infer_copy(vet_gpu_infer *g, int dst, int src, vet_err *err) {
    if (dst < 0 || dst >= g->n_slots || src < 0 || src >= g->n_slots)
        return vet_errf(err, "slot %d or %d out of range [0, %d)", dst, src, g->n_slots);
    if (dst == src) return 0;
    size_t row = (size_t)g->KV * (g->kvfmt ? sizeof(uint16_t) : sizeof(float));
    size_t slot_bytes = (size_t)g->max_len * row, bytes = (size_t)g->len[src] * row;
    g->len[dst] = 0;  // a failure below leaves it empty
    for (int l = 0; l < g->L; l++) {
        char *k = cache_layer(g, g->kc, l), *v = cache_layer(g, g->vc, l);
        TRY(vet_cuda_copy(g->ctx, k + dst * slot_bytes, k + src * slot_bytes, bytes, err));
        TRY(vet_cuda_copy(g->ctx, v + dst * slot_bytes, v + src * slot_bytes, bytes, err));
    }
    g->len[dst] = g->len[src];
    return 0;
}

// Prompts i0..i1-1 (at most P rows in all) as one prefill_rows.
static int prefill_chunk(vet_gpu_infer *g, const int *slots, const int32_t *const *ids, const int *n, int i0, int i1,
                         float *logits, vet_err *err) {
    int M = 0, B = i1 - i0;
    for (int i = i0; i < i1; i++) M += n[i];
    int32_t *tok = g->h_in, *sl = tok + M, *pos = sl + M, *seg = pos + M, *last = seg + M;
    for (int i = i0, r = 0; i < i1; i++) {
        memcpy(tok + r, ids[i], (size_t)n[i] * sizeof(int32_t));
        for (int j = 0; j < n[i]; j++, r++) sl[r] = slots[i], pos[r] = j, seg[r] = i - i0;
        last[i - i0] = r - 1;
    }
    return prefill_rows(g, M, B, logits + (size_t)i0 * g->V, err);
}

int vet_gpu_infer_prefill_batch(vet_gpu_infer *g, const int *slots, const int32_t *const *ids, const int *n,
                                int count, float *logits, int *bad, vet_err *err) {
    int dummy;
    if (!bad) bad = &dummy;
    *bad = -1;
    if (count < 0 || count > g->n_slots)
        return vet_errf(err, "a prefill of %d prompts, but only %d slots", count, g->n_slots);
    for (int i = 0; i < count; i++) {
        *bad = i;
        if (slots[i] < 0 || slots[i] >= g->n_slots)
            return vet_errf(err, "slot %d out of range [0, %d)", slots[i], g->n_slots);
        for (int j = 0; j < i; j++)
            if (slots[j] == slots[i]) return vet_errf(err, "slot %d appears twice in one prefill", slots[i]);
        if (n[i] <= 0) return vet_errf(err, "empty prompt");
        if (n[i] > g->max_len)
            return vet_errf(err, "a prompt of %d tokens does not fit the device KV cache of %d positions", n[i],
                            g->max_len);
        TRY(check_ids(g, ids[i], n[i], err));
    }
    *bad = -1;
    for (int i = 0; i < count; i++) g->len[slots[i]] = 0;  // a failure below leaves them empty
    // consecutive prompts while their rows fit P (one prompt always does: P >= max_len)
    for (int i0 = 0, i1; i0 < count; i0 = i1) {
        int rows = 0;
        for (i1 = i0; i1 < count && rows + n[i1] <= g->P; i1++) rows += n[i1];
        TRY(prefill_chunk(g, slots, ids, n, i0, i1, logits, err));
    }
    for (int i = 0; i < count; i++) g->len[slots[i]] = n[i];
    return 0;
}

// A step's forward up to the final residual stream x (n,C), the slots' lengths not yet moved.
static int step_rows(vet_gpu_infer *g, const int *slots, const int32_t *tokens, int n, vet_err *err) {
    if (n > g->n_slots) return vet_errf(err, "a step of %d rows, but only %d slots", n, g->n_slots);
    TRY(check_ids(g, tokens, n, err));
    int32_t *h_tok = g->h_in, *h_slot = h_tok + n, *h_pos = h_slot + n;  // h_in holds 4*R >= 3*n
    for (int i = 0; i < n; i++) {
        if (slots[i] < 0 || slots[i] >= g->n_slots || g->len[slots[i]] == 0)
            return vet_errf(err, "slot %d is out of range or was never prefilled", slots[i]);
        for (int j = 0; j < i; j++)
            if (slots[j] == slots[i]) return vet_errf(err, "slot %d appears twice in one step", slots[i]);
        if (g->len[slots[i]] >= g->max_len)
            return vet_errf(err, "slot %d is full: its note needs more than the %d positions of the device KV "
                                 "cache", slots[i], g->max_len);
        h_tok[i] = tokens[i], h_slot[i] = slots[i], h_pos[i] = g->len[slots[i]];
    }
    vet_cuda *ctx = g->ctx;
    int C = g->C, H = g->H, KVH = g->KVH, hd = g->hd;
    TRY(vet_cuda_upload(ctx, g->in, g->h_in, 3 * (size_t)n * sizeof(int32_t), err));
    const int32_t *d_tok = g->in, *d_slot = g->in + n, *d_pos = g->in + 2 * n;
    TRY(embed(g, d_tok, n, err));
    for (int l = 0; l < g->L; l++) {
        TRY(rmsnorm_forward_cuda(ctx, g->h, g->rstd, g->x, g->attn_norm + (size_t)l * C, n, C, g->cfg.rms_eps,
                                 err));
        TRY(to_half(g, g->h, n, C, err));
        TRY(linear(g, l, P_Q, g->q, g->h, n, err));
        TRY(linear(g, l, P_K, g->k, g->h, n, err));
        TRY(linear(g, l, P_V, g->v, g->h, n, err));
        TRY(rope_forward_cuda(ctx, g->q, d_pos, g->cos_t, g->sin_t, n, H, hd, err));
        TRY(rope_forward_cuda(ctx, g->k, d_pos, g->cos_t, g->sin_t, n, KVH, hd, err));
        TRY(cache_write(g, l, d_slot, d_pos, n, 0, err));
        const void *kl = cache_layer(g, g->kc, l), *vl = cache_layer(g, g->vc, l);
        if (g->kvfmt)
            TRY(attention_decode16_cuda(ctx, g->att, g->q, kl, vl, d_slot, d_pos, n, g->max_len, H, KVH, hd,
                                        g->kvfmt, err));
        else
            TRY(attention_decode_cuda(ctx, g->att, g->q, kl, vl, d_slot, d_pos, n, g->max_len, H, KVH, hd, err));
        TRY(layer_rest(g, l, n, err));
    }
    return 0;
}

int vet_gpu_infer_step(vet_gpu_infer *g, const int *slots, const int32_t *tokens, int n,
                       float *logits, vet_err *err) {
    if (n <= 0) return 0;
    TRY(step_rows(g, slots, tokens, n, err));
    TRY(head(g, g->x, n, logits, err));
    for (int i = 0; i < n; i++) g->len[slots[i]]++;
    return 0;
}

int vet_gpu_infer_step_greedy(vet_gpu_infer *g, const int *slots, const int32_t *tokens, int n,
                              const int32_t *allowed, const int32_t *allowed_off, int32_t *next, vet_err *err) {
    if (n <= 0) return 0;
    if (allowed) {  // checked on the host: a bad id would read outside a row on the device
        if (allowed_off[0] != 0) return vet_errf(err, "allowed-id lists must start at offset 0");
        for (int i = 0; i < n; i++)
            if (allowed_off[i + 1] <= allowed_off[i] || allowed_off[i + 1] - allowed_off[i] > g->V)
                return vet_errf(err, "row %d: %d allowed ids (1 to %d)", i, allowed_off[i + 1] - allowed_off[i], g->V);
        for (int k = 0; k < allowed_off[n]; k++)
            if (allowed[k] < 0 || allowed[k] >= g->V) return vet_errf(err, "allowed id %d outside [0, %d)", allowed[k], g->V);
    }
    // The lists up first (a few ids a row, at most n x V; the copy waits for an idle stream,
    // so before this step's forward is queued), then the step, then the choice among them.
    int32_t *d_off = g->allow, *d_ids = g->allow + n + 1;
    if (allowed) {
        TRY(vet_cuda_upload(g->ctx, d_off, allowed_off, ((size_t)n + 1) * sizeof(int32_t), err));
        TRY(vet_cuda_upload(g->ctx, d_ids, allowed, (size_t)allowed_off[n] * sizeof(int32_t), err));
    }
    TRY(step_rows(g, slots, tokens, n, err));
    TRY(head_device(g, g->x, n, err));
    int32_t *d_next = g->in + 4 * (size_t)g->R, *h_next = (int32_t *)g->h_logits;  // (n) ids, not n x V floats
    if (allowed) {
        TRY(argmax_allowed_rows_cuda(g->ctx, d_next, g->logits, n, g->V, d_ids, d_off, err));
    } else {
        TRY(argmax_rows_cuda(g->ctx, d_next, g->logits, n, g->V, err));
    }
    TRY(vet_cuda_download_async(g->ctx, h_next, d_next, (size_t)n * sizeof(int32_t), err));
    TRY(vet_cuda_sync(g->ctx, err));
    memcpy(next, h_next, (size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) g->len[slots[i]]++;
    return 0;
}



static int be_prefill(void *g, int slot, const int32_t *ids, int n, float *logits, vet_err *err) {
    return vet_gpu_infer_prefill(g, slot, ids, n, logits, err);
}
static int be_prefill_batch(void *g, const int *slots, const int32_t *const *ids, const int *n, int count,
                            float *logits, int *bad, vet_err *err) {
    return vet_gpu_infer_prefill_batch(g, slots, ids, n, count, logits, bad, err);
}
static int be_step_greedy(void *g, const int *slots, const int32_t *tokens, int n, const int32_t *allowed,
                          const int32_t *allowed_off, int32_t *next, vet_err *err) {
    return vet_gpu_infer_step_greedy(g, slots, tokens, n, allowed, allowed_off, next, err);
}
static int be_step(void *g, const int *slots, const int32_t *tokens, int n, float *logits, vet_err *err) {
    return vet_gpu_infer_step(g, slots, tokens, n, logits, err);
}

static int be_copy_slot(void *g, int dst, int src, vet_err *err) { return vet_gpu_infer_copy(g, dst, src, err); }

void vet_gpu_infer_backend(vet_gpu_infer *g, vet_infer_backend *be) {
    be->state = g;
    be->n_slots = g->n_slots;
    be->prefill = be_prefill;
    be->step = be_step;
    be->prefill_batch = be_prefill_batch;
    be->step_greedy = be_step_greedy;
    be->copy_slot = be_copy_slot;
}

#else  // built without CUDA: every call fails the same way

#define NO_CUDA(err) vet_errf(err, "vet was built without CUDA (rebuild with nvcc on PATH)")

int vet_gpu_infer_plan_bytes(const vet_config *c, int n_slots, int max_len, unsigned flags,
                             vet_gpu_infer_plan *out, vet_err *err) {
    return NO_CUDA(err);
}
vet_cuda *vet_gpu_infer_open(int dev, char *name, size_t n, size_t *free_bytes,
                             size_t *total_bytes, vet_err *err) {
    NO_CUDA(err);
    return NULL;
}
void vet_gpu_infer_close(vet_cuda *ctx) { (void)ctx; }
vet_gpu_infer *vet_gpu_infer_new(vet_cuda *ctx, const vet_model *m, int n_slots, int max_len,
                                 const vet_gpu_opts *opts, vet_err *err) {
    NO_CUDA(err);
    return NULL;
}
void vet_gpu_infer_free(vet_gpu_infer *g) { (void)g; }
const vet_gpu_infer_plan *vet_gpu_infer_plan_of(const vet_gpu_infer *g) { return NULL; }
int vet_gpu_infer_prefill(vet_gpu_infer *g, int slot, const int32_t *ids, int n, float *logits,
                          vet_err *err) {
    return NO_CUDA(err);
}
int vet_gpu_infer_step(vet_gpu_infer *g, const int *slots, const int32_t *tokens, int n,
                       float *logits, vet_err *err) {
    return NO_CUDA(err);
}
int vet_gpu_infer_prefill_batch(vet_gpu_infer *g, const int *slots, const int32_t *const *ids, const int *n,
                                int count, float *logits, int *bad, vet_err *err) {
    if (bad) *bad = -1;
    return NO_CUDA(err);
}
int vet_gpu_infer_step_greedy(vet_gpu_infer *g, const int *slots, const int32_t *tokens, int n,
                              const int32_t *allowed, const int32_t *allowed_off, int32_t *next, vet_err *err) {
    return NO_CUDA(err);
}
int vet_gpu_infer_len(const vet_gpu_infer *g, int slot) { return 0; }
int vet_gpu_infer_copy(vet_gpu_infer *g, int dst, int src, vet_err *err) { return NO_CUDA(err); }
void vet_gpu_infer_backend(vet_gpu_infer *g, vet_infer_backend *be) { memset(be, 0, sizeof *be); }

#endif

// ---------------------------------------------------------------------------------------
// vet-generate's device: open, plan, check, upload. Built on the functions above, so it is
// the same code with and without CUDA (without, opening fails with the reason).

unsigned vet_gpu_infer_choose_half(const vet_device_choice *c, const char *model_dir, int *from_checkpoint) {
    if (from_checkpoint) *from_checkpoint = 0;
    switch (c->dtype) {
    case VET_DTYPE_FP32: return 0;
    case VET_DTYPE_BF16: return VET_GPU_BF16;
    case VET_DTYPE_FP16: return VET_GPU_FP16;
    case VET_DTYPE_DEFAULT: break;
    }
    vet_config stored;
    vet_err ignored;
    int f16 = c->quant == VET_QUANT_NONE && vet_config_load(&stored, model_dir, &ignored) == 0 &&
              strcmp(stored.torch_dtype, "float16") == 0;
    if (from_checkpoint) *from_checkpoint = f16;
    return f16 ? VET_GPU_FP16 : VET_GPU_BF16;
}

int vet_gpu_infer_device_open(const vet_device_choice *c, const char *model_dir, vet_gpu_infer_device *d,
                              vet_err *err) {
    memset(d, 0, sizeof *d);
    d->index = c->index, d->quant = c->quant;
    // A diagnostic from the environment, as vet-train's VET_GPU_ATTENTION: another value is a
    // usage error, not a silent default.
    const int gemv = vet_env_switch("VET_GPU_QUANT_GEMV", 1, err), wide = vet_env_switch("VET_GPU_WIDE", 1, err);
    if (gemv < 0 || wide < 0) return -1;
    d->quant_scratch = !gemv;
#ifdef VET_CUDA
    elementwise_wide(wide);  // process-wide, as vet-train's (a build without CUDA has no kernels)
#endif
    d->half = vet_gpu_infer_choose_half(c, model_dir, &d->half_from_checkpoint);
    d->ctx = vet_gpu_infer_open(c->index, d->name, sizeof d->name, &d->free_bytes, &d->total_bytes, err);
    if (!d->ctx) {
        err->kind = VET_E_USAGE;  // no usable device is a setting to change (--device cpu)
        return -1;
    }
    return 0;
}

void vet_gpu_infer_device_close(vet_gpu_infer_device *d) {
    vet_gpu_infer_close(d->ctx);
    d->ctx = NULL;
}

static const char *half_name(unsigned half) {
    return half == VET_GPU_FP16 ? "fp16" : half ? "bf16" : "fp32";
}

const char *vet_gpu_infer_device_describe(const vet_gpu_infer_device *d, char *buf, size_t n) {
    char packed[64] = "";
    if (!d->quant_scratch) snprintf(packed, sizeof packed, "read packed by steps of up to %d notes, else ", VET_QROWS_MAX);
    if (d->quant != VET_QUANT_NONE)
        snprintf(buf, n, "device cuda:%d %s, weights %s (%sdequantized to %s for each GEMM)", d->index, d->name,
                 vet_quant_name(d->quant), packed, half_name(d->half));
    else
        snprintf(buf, n, "device cuda:%d %s, weights %s%s", d->index, d->name, half_name(d->half),
                 d->half_from_checkpoint ? " (the checkpoint's dtype, float16)" : "");
    return buf;
}

static unsigned device_flags(const vet_gpu_infer_device *d) {
    return d->half | (d->quant == VET_QUANT_INT8 ? VET_GPU_INT8 : d->quant == VET_QUANT_NF4 ? VET_GPU_NF4 : 0) |
           (d->quant_scratch ? VET_GPU_QUANT_SCRATCH : 0);
}

int vet_gpu_infer_device_plan(const vet_gpu_infer_device *d, const vet_config *cfg, int n_slots, int max_len,
                              vet_gpu_infer_plan *p, vet_err *err) {
    return vet_gpu_infer_plan_bytes(cfg, n_slots, max_len, device_flags(d), p, err);
}

// "1.50 GiB", "12.0 MiB", "3.0 KiB" into buf.
const char *vet_gpu_infer_plan_describe(const vet_gpu_infer_plan *p, const vet_gpu_infer_device *d, int n_slots,
                                        int max_len, char *buf, size_t n) {
    char w[32], kv[32], sc[32], tot[32], fr[32], all[32];
    snprintf(buf, n, "device memory plan for %d notes x %d positions: weights %s, KV cache %s, scratch %s; total %s "
             "of %s free (%s on the device)", n_slots, max_len, vet_bytes_str(w, p->weights), vet_bytes_str(kv, p->cache),
             vet_bytes_str(sc, p->scratch), vet_bytes_str(tot, p->total), vet_bytes_str(fr, d->free_bytes),
             vet_bytes_str(all, d->total_bytes));
    return buf;
}

// What else would make the plan smaller: a smaller weight format than d's.
static const char *smaller_weights(const vet_gpu_infer_device *d) {
    if (d->quant == VET_QUANT_NF4) return "";
    if (d->quant != VET_QUANT_NONE) return ", or --quant nf4";
    if (d->half == VET_GPU_FP16) return ", or --quant int8 / nf4 (without --fp16)";
    return d->half ? ", or --quant int8 / nf4" : ", or --bf16 weights";
}

static size_t usable_bytes(const vet_gpu_infer_device *d) {
    return d->free_bytes > VET_GPU_INFER_HEADROOM ? d->free_bytes - VET_GPU_INFER_HEADROOM : 0;
}

int vet_gpu_infer_check_fit(const vet_gpu_infer_plan *p, const vet_gpu_infer_device *d, int n_slots, int max_len,
                            vet_err *err) {
    size_t usable = usable_bytes(d);
    if (p->total <= usable) return 0;
    char w[32], kv[32], sc[32], tot[32], fr[32], us[32], hr[32];
    return vet_err_kindf(err, VET_E_USAGE, "the model needs %s on cuda:%d (weights %s, KV cache %s, scratch %s) but "
                         "only %s of its %s free can be planned (%s is kept for cuBLAS and kernels): use a smaller "
                         "--batch than %d or a smaller --max-len than %d%s", vet_bytes_str(tot, p->total), d->index,
                         vet_bytes_str(w, p->weights), vet_bytes_str(kv, p->cache), vet_bytes_str(sc, p->scratch),
                         vet_bytes_str(us, usable), vet_bytes_str(fr, d->free_bytes), vet_bytes_str(hr, VET_GPU_INFER_HEADROOM),
                         n_slots, max_len, smaller_weights(d));
}

vet_gpu_infer *vet_gpu_infer_device_load(const vet_gpu_infer_device *d, const vet_model *m, int n_slots,
                                         int max_len, vet_err *err) {
    vet_gpu_infer_plan p = {0};
    if (vet_gpu_infer_device_plan(d, &m->cfg, n_slots, max_len, &p, err) ||
        vet_gpu_infer_check_fit(&p, d, n_slots, max_len, err))
        return NULL;
    vet_gpu_opts go = {.flags = device_flags(d), .mem_limit = usable_bytes(d)};
    return vet_gpu_infer_new(d->ctx, m, n_slots, max_len, &go, err);
}
