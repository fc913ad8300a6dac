// gpu_plan.c — where every device buffer of the GPU model goes, and what it costs.
//
// gpu_layout lists the buffers (pointer, bytes, kind); vet_gpu_plan_bytes sums them from a
// config alone, vet_gpu_model_new sums them, checks the caller's memory limit, makes one
// allocation and hands out the pointers. One list, so the plan is the allocation, byte for
// byte. Per-layer activations follow docs/model.md's table (what the CPU keeps).
#include "kernels/host/gpu_model.h"

#ifdef VET_CUDA

#include <stdlib.h>
#include <string.h>

#include "kernels/ops_cuda.h"
#include "kernels/host/gpu_internal.h"
#include "model/lora.h"
#include "model/quant.h"

int gpu_set_dims(vet_gpu_model *g, const vet_config *c, int r, unsigned targets, int B, int T, int ckpt_layers,
                 unsigned flags, vet_err *err) {
    if (B <= 0 || T <= 0) return vet_errf(err, "GPU model needs B, T > 0 (got %d x %d)", B, T);
    if (c->head_dim % 2 || c->head_dim > 128)
        return vet_errf(err, "head_dim %d: the CUDA attention needs an even head_dim <= 128",
                        c->head_dim);
    g->cfg = *c;
    g->flags = flags;
    g->bf16 = (flags & VET_GPU_BF16) != 0;
    g->full = (flags & VET_GPU_FULL) != 0;
    g->fp16 = (flags & VET_GPU_FP16) != 0;
    if (g->fp16) {
        if (g->bf16) return vet_errf(err, "VET_GPU_FP16 and VET_GPU_BF16 together: choose one 16-bit format");
        if (flags & (VET_GPU_INT8 | VET_GPU_NF4))
            return vet_errf(err, "VET_GPU_FP16 with quantized base weights is not supported (their GEMMs are bf16 "
                                 "or fp32): drop one");
        if (g->full) return vet_errf(err, "full training needs fp32 base weights (drop VET_GPU_FP16, or train LoRA)");
        g->bf16 = 1;  // the 16-bit storage mode, in fp16
    }
    if (g->bf16 && g->full)
        return vet_errf(err, "full training needs fp32 base weights (drop VET_GPU_BF16, or train LoRA)");
    if ((flags & VET_GPU_INT8) && (flags & VET_GPU_NF4))
        return vet_errf(err, "VET_GPU_INT8 and VET_GPU_NF4 together: choose one quantization");
    g->quant = flags & VET_GPU_INT8 ? VET_CUDA_Q_INT8 : flags & VET_GPU_NF4 ? VET_CUDA_Q_NF4 : 0;
    if (g->quant && g->full)
        return vet_errf(err, "quantized base weights (%s) are frozen: full training needs fp32 weights; "
                             "train LoRA, or drop the quantization", g->quant == VET_CUDA_Q_INT8 ? "int8" : "nf4");
    if (g->full && r > 0)
        return vet_errf(err, "full training of a model with LoRA adapters is not supported "
                             "(train the adapters, or drop them)");
    // Not in fp16 storage: its loss-scaled gradients would need the attention in fp16's range
    // (a kernel on fp16 operands; today's rounds to bf16), so it keeps the fp32 kernels.
    g->attn_tc = g->bf16 && !g->fp16 && !(flags & VET_GPU_ATTN_FP32);
    g->ckpt = (flags & VET_GPU_CKPT) != 0;
    g->keep_att = (flags & VET_GPU_CKPT_KEEP_ATTN) != 0;
    if (g->keep_att && !g->ckpt)
        return vet_errf(err, "VET_GPU_CKPT_KEEP_ATTN without VET_GPU_CKPT: keeping the attention's output is a "
                             "form of gradient checkpointing; add VET_GPU_CKPT");
    if (ckpt_layers < 0 || (ckpt_layers > 0 && !g->ckpt) || ckpt_layers > c->n_layers)
        return vet_errf(err, "%d checkpointed layers: give 1 to %d (the model's layers) with VET_GPU_CKPT, or 0 "
                             "(every layer with VET_GPU_CKPT, none without)",
                        ckpt_layers, c->n_layers);
    g->n_recompute = g->ckpt ? (ckpt_layers ? ckpt_layers : c->n_layers) : 0;
    g->B = B, g->T = T, g->N = (size_t)B * T;
    g->L = c->n_layers, g->C = c->dim, g->F = c->hidden_dim, g->H = c->n_heads;
    g->KVH = c->n_kv_heads, g->hd = c->head_dim, g->V = c->vocab_size;
    g->Q = g->H * g->hd, g->KV = g->KVH * g->hd;
    g->W = g->C > g->Q ? g->C : g->Q;
    if (g->F > g->W) g->W = g->F;
    size_t ce = CE_MAX_FLOATS / (size_t)g->V;
    if (ce < 16) ce = 16;
    if (ce > g->N) ce = g->N;
    g->ce_rows = (int)ce;
    g->has_lora = r > 0;
    g->r = r;
    g->targets = r > 0 ? targets & VET_LORA_ALL : 0;
    g->n_w = (size_t)vet_config_n_params(c);
    size_t L = g->L, C = g->C, V = g->V, off = 0;
    g->n_lora = 0;
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!(g->targets & (1u << t))) continue;
        int out, in;
        vet_lora_dims(c, t, &out, &in);
        g->offA[t] = off;
        off += L * r * in;
        g->offB[t] = off;
        off += L * out * r;
    }
    g->n_lora = off;
    g->max_oi = 0;
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {  // one layer's matrix of each projection, stored
        int out, in;
        vet_lora_dims(c, t, &out, &in);
        size_t n = (size_t)out * in;
        if (g->quant) vet_quant_stored_sizes((vet_quant_kind)g->quant, out, in, &g->q_bytes[t], &g->q_scales[t]);
        if (n > g->max_oi) g->max_oi = n;
    }
    g->n_params = g->full ? g->n_w : g->n_lora;
    // xd holds the unfused LoRA dropout's input (N,W); the fused products (kernels/lora.cu, in
    // blocks of rank rc) need only the slices of lora_grad_a_dropout_cuda (the widest adapter
    // input) and lora_grad_b_cuda (the widest adapter output).
    g->xd_floats = g->N * g->W;
    g->lora_fused = r > 0 && !(flags & VET_GPU_LORA_UNFUSED);
    // vet's kernels take ranks up to VET_LORA_FUSED_MAX_R: a larger adapter runs as blocks of it
    g->rc = g->lora_fused && r > VET_LORA_FUSED_MAX_R ? VET_LORA_FUSED_MAX_R : r;
    g->lora16 = g->lora_fused && g->bf16;
    g->lora_mma = g->lora16 && !(flags & VET_GPU_LORA_NO_MMA);
    g->lora_up_k = r > 0 && g->rc <= VET_LORA_FUSED_MAX_R && (flags & VET_GPU_LORA_UP_KERNEL);
    // gate's and up's outputs in 16 bits when only 16-bit readers want them: no adapter on either,
    // or adapters on the 16-bit copies (lora16), which add their product into the 16-bit output
    g->mlp16 = g->bf16 && (g->lora16 || !(g->targets & (VET_LORA_GATE | VET_LORA_UP)));
    // the attention's output in bf16 when only 16-bit readers want it: the o projection's GEMM,
    // its adapter reading the 16-bit copies (lora16), the attention's backward (D from it)
    g->att_bf16 = g->attn_tc && (g->lora16 || !(g->targets & VET_LORA_O));
    // q, k and v the same way: their GEMMs (and adapters) write the bf16 copies the tensor-core
    // attention reads, RoPE rotates q and k there (no fp32 output, no conversion pass); Qwen2's
    // biases, rounded to bf16, are the rows the GEMM adds onto (matmul_forward_half_out_cuda)
    g->qkv16 = g->attn_tc && (g->lora16 || !(g->targets & (VET_LORA_Q | VET_LORA_K | VET_LORA_V)));
    if (g->lora_fused) {
        g->xd_floats = 1;
        for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
            if (!(g->targets & (1u << t))) continue;
            int out, in;
            vet_lora_dims(c, t, &out, &in);
            // the blocks' ranks: rc, and a narrower last one (its row slices can be more)
            const int ranks[2] = {g->rc, r - (r - 1) / g->rc * g->rc};
            for (int k = 0; k < 2; k++) {
                size_t need_a = lora_grad_a_scratch_floats((int)g->N, in, ranks[k]);
                size_t need_b = lora_grad_a_scratch_floats((int)g->N, out, ranks[k]);
                size_t need = need_a > need_b ? need_a : need_b;
                if (need > g->xd_floats) g->xd_floats = need;
            }
        }
    }
    // embed, attn_norm | wq .. wdown | final_norm, lm_head: the matrices' window
    g->n_w16 = g->n_w - V * C * (c->tie_embeddings ? 1 : 2) - L * C - C;
    return 0;
}

int gpu_layout(vet_gpu_model *g, gpu_slot *s) {
    int n = 0;
    size_t N = g->N, L = g->L, C = g->C, F = g->F, Q = g->Q, KV = g->KV, V = g->V, r = g->r;
    size_t f = sizeof(float), i32 = sizeof(int32_t), u16 = sizeof(uint16_t);
#define PUT(ptr, nbytes, k) (s[n].p = (void **)&(ptr), s[n].bytes = (nbytes), s[n].kind = (k), s[n].alias = NULL, n++)
#define SHARE(ptr, other) (s[n].p = (void **)&(ptr), s[n].bytes = 0, s[n].kind = K_SCRATCH, s[n].alias = (void **)&(other), n++)
    if (!g->bf16 && !g->quant) {
        PUT(g->w, g->n_w * f, K_WEIGHTS);
    } else {
        if (!g->quant) {
            PUT(g->w16, g->n_w16 * u16, K_WEIGHTS);
        } else {
            for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
                PUT(g->qw[t], L * g->q_bytes[t], K_WEIGHTS);
                PUT(g->qs[t], L * g->q_scales[t] * f, K_WEIGHTS);
            }
        }
        if (!g->cfg.tie_embeddings) {
            if (g->bf16) PUT(g->embed16, V * C * u16, K_WEIGHTS);
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
        if (g->bf16) {  // the lm_head in 16 bits like the matrices; tied, it is the embedding too
            PUT(g->lm_head16, V * C * u16, K_WEIGHTS);
            if (g->cfg.tie_embeddings) SHARE(g->embed16, g->lm_head16);
        } else {
            PUT(g->lm_head, V * C * f, K_WEIGHTS);  // lmhead_crossentropy_cuda reads fp32
        }
    }
    if (!g->full) PUT(g->params, g->n_lora * f, K_TRAIN);
    PUT(g->grads, g->n_params * f, K_TRAIN);
    PUT(g->adam_m, g->n_params * f, K_TRAIN);
    PUT(g->adam_v, g->n_params * f, K_TRAIN);

    PUT(g->cos_t, (size_t)g->T * g->hd / 2 * f, K_ACTS);
    PUT(g->sin_t, (size_t)g->T * g->hd / 2 * f, K_ACTS);
    PUT(g->x, (L + 1) * N * C * f, K_ACTS);  // every layer's input, checkpointed or not
    size_t LA = act_slots(g);                // layers of the rest: one for all the recomputed ones
    PUT(g->xmid, LA * N * C * f, K_ACTS);
    PUT(g->rstd1, LA * N * f, K_ACTS);
    PUT(g->rstd2, LA * N * f, K_ACTS);
    if (g->attn_tc) {  // bf16: what the tensor-core attention reads; fp32 scratch below
        PUT(g->q16, LA * N * Q * u16, K_ACTS);
        PUT(g->k16, LA * N * KV * u16, K_ACTS);
        PUT(g->v16, LA * N * KV * u16, K_ACTS);
    } else {
        PUT(g->q, LA * N * Q * f, K_ACTS);
        PUT(g->k, LA * N * KV * f, K_ACTS);
        PUT(g->v, LA * N * KV * f, K_ACTS);
    }
    size_t LT = g->keep_att ? L : LA;  // att_layer's slots
    if (g->att_bf16) PUT(g->att16, LT * N * Q * u16, K_ACTS);
    else PUT(g->att, LT * N * Q * f, K_ACTS);
    PUT(g->lse, LT * N * g->H * f, K_ACTS);
    if (g->mlp16) {
        PUT(g->gate16, LA * N * F * u16, K_ACTS);
        PUT(g->up16, LA * N * F * u16, K_ACTS);
    } else {
        PUT(g->gate, LA * N * F * f, K_ACTS);
        PUT(g->up, LA * N * F * f, K_ACTS);
    }
    for (int t = 0; t < VET_LORA_N_TARGETS; t++)
        if (g->targets & (1u << t)) PUT(g->lora_u[t], LA * N * r * f, K_ACTS);
    PUT(g->rstdf, N * f, K_ACTS);
    PUT(g->lnf_t, N * C * f, K_ACTS);
    PUT(g->dlnf_t, N * C * f, K_ACTS);

    PUT(g->chunk, (size_t)g->ce_rows * V * f, K_SCRATCH);
    PUT(g->loss, N * f, K_SCRATCH);
    PUT(g->h, N * C * f, K_SCRATCH);
    SHARE(g->lnf, g->h);  // the final norm's output lives only until its target rows are gathered
    PUT(g->act, N * F * f, K_SCRATCH);
    PUT(g->dx, N * C * f, K_SCRATCH);
    PUT(g->dh, N * C * f, K_SCRATCH);
    // A layer's backward runs the MLP's part, then the attention's: the attention's gradients
    // live in the MLP's (N,F) buffers, dead by then, where they fit (Q, KV <= F: every LLaMA).
    SHARE(g->dgate, g->act);  // act is dead once the down projection's backward has read it
    PUT(g->dup, N * F * f, K_SCRATCH);
    PUT(g->dact, N * F * f, K_SCRATCH);
    if (Q <= F) SHARE(g->dq, g->dup), SHARE(g->datt, g->dact);
    else PUT(g->dq, N * Q * f, K_SCRATCH), PUT(g->datt, N * Q * f, K_SCRATCH);
    if (KV <= F) SHARE(g->dk, g->act);
    else PUT(g->dk, N * KV * f, K_SCRATCH);
    PUT(g->dv, N * KV * f, K_SCRATCH);
    // With q, k, v kept in bf16, the projections write fp32 into the gradients' buffers, which a
    // layer's forward (or recompute) never holds anything in: they are made and rounded before
    // its MLP writes act or dup, and backward fills them only after the recompute.
    if (g->attn_tc) SHARE(g->q, g->dq), SHARE(g->k, g->dk), SHARE(g->v, g->dv);
    PUT(g->xd, g->xd_floats * f, K_SCRATCH);
    PUT(g->du, N * (r ? r : 1) * f, K_SCRATCH);
    PUT(g->attn_scratch, attention_scratch_bytes(g->B, g->T, g->H), K_SCRATCH);
    PUT(g->gstats, sizeof(vet_cuda_grad_stats), K_SCRATCH);
    PUT(g->gstats_scratch, grad_stats_scratch_bytes(), K_SCRATCH);
    if (g->bf16) {
        PUT(g->xb16, N * g->W * u16, K_SCRATCH);
        // forward (and recompute) inputs vs backward dout: never at once, but for lora16's
        // backward, which reads an adapter's input and its dout together
        if (g->lora16) PUT(g->db16, N * g->W * u16, K_SCRATCH);
        else SHARE(g->db16, g->xb16);
        PUT(g->ce16, (size_t)g->ce_rows * (C + V) * u16, K_SCRATCH);
    }
    if (g->quant) PUT(g->wdq, g->max_oi * (g->bf16 ? u16 : f), K_SCRATCH);  // one dequantized matrix
    PUT(g->tokens, N * i32, K_SCRATCH);
    PUT(g->pos, N * i32, K_SCRATCH);
    PUT(g->seg, N * i32, K_SCRATCH);
    PUT(g->tgt_pos, N * i32, K_SCRATCH);
    PUT(g->tgt, N * i32, K_SCRATCH);
#undef PUT
#undef SHARE
    return n;
}

size_t gpu_aligned(size_t b) { return (b + ALIGN - 1) / ALIGN * ALIGN; }

void gpu_plan_of(const vet_gpu_model *g, const gpu_slot *s, int n, vet_gpu_plan *p) {
    memset(p, 0, sizeof *p);
    for (int i = 0; i < n; i++) {
        size_t b = gpu_aligned(s[i].bytes);
        switch (s[i].kind) {
        case K_WEIGHTS: p->weights += b; break;
        case K_TRAIN: p->train += b; break;
        case K_ACTS: p->activations += b; break;
        default: p->scratch += b; break;
        }
    }
    p->total = p->weights + p->train + p->activations + p->scratch;
    p->n_params = g->n_params;
}

int vet_gpu_plan_bytes(const vet_config *c, int lora_r, unsigned lora_targets, int B, int T,
                       unsigned flags, vet_gpu_plan *out, vet_err *err) {
    const vet_gpu_opts o = {.flags = flags};
    return vet_gpu_plan_for(c, lora_r, lora_targets, B, T, &o, out, err);
}

int vet_gpu_plan_for(const vet_config *c, int lora_r, unsigned lora_targets, int B, int T, const vet_gpu_opts *o,
                     vet_gpu_plan *out, vet_err *err) {
    vet_gpu_model *g = calloc(1, sizeof *g);  // only its sizes are used
    if (!g) return vet_err_nomem(err, "out of memory");
    if (lora_r > 0 && !(lora_targets & VET_LORA_ALL)) {
        free(g);
        return vet_errf(err, "LoRA rank %d with no target", lora_r);
    }
    if (gpu_set_dims(g, c, lora_r > 0 ? lora_r : 0, lora_targets, B, T, o->ckpt_layers, o->flags, err) < 0) {
        free(g);
        return -1;
    }
    gpu_slot s[GPU_MAX_SLOTS];
    gpu_plan_of(g, s, gpu_layout(g, s), out);
    free(g);
    return 0;
}

#else

int vet_gpu_plan_bytes(const vet_config *c, int lora_r, unsigned lora_targets, int B, int T,
                       unsigned flags, vet_gpu_plan *out, vet_err *err) {
    return vet_errf(err, "vet was built without CUDA (rebuild with nvcc on PATH)");
}
int vet_gpu_plan_for(const vet_config *c, int lora_r, unsigned lora_targets, int B, int T, const vet_gpu_opts *o,
                     vet_gpu_plan *out, vet_err *err) {
    return vet_errf(err, "vet was built without CUDA (rebuild with nvcc on PATH)");
}

#endif
