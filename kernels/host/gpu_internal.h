// gpu_internal.h — the GPU model's private state, shared by gpu_plan.c (the memory layout),
// gpu_model.c (creation, transfers, optimizer), gpu_lora_layout.c (the adapters' device layout)
// and gpu_train.c (forward, backward). Only with VET_CUDA; nothing outside those files includes it.
#ifndef VET_GPU_INTERNAL_H
#define VET_GPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/host/gpu_model.h"
#include "kernels/host/gpu_profile.h"
#include "kernels/ops_cuda.h"
#include "model/model.h"

#define ALIGN 256          // bytes: every buffer starts on a 256-byte boundary
#define CE_MAX_FLOATS (8u << 20)  // a logits chunk stays under 32 MB, as on the CPU

enum { K_WEIGHTS, K_TRAIN, K_ACTS, K_SCRATCH };

struct vet_gpu_model {
    vet_cuda *ctx;
    vet_config cfg;
    unsigned flags;
    int bf16, full;     // bf16: base matrices in 16-bit storage (bf16, or fp16 with fp16 set)
    int fp16;           // VET_GPU_FP16: that storage is IEEE fp16 (same places, same GEMMs)
    int quant;          // 0, VET_CUDA_Q_INT8 or VET_CUDA_Q_NF4 (VET_GPU_INT8 / VET_GPU_NF4)
    int attn_tc;        // attention on tensor cores (bf16 storage without VET_GPU_ATTN_FP32)
    int lora_fused;     // LoRA dropout inside the adapters' products (vet's kernels; no VET_GPU_LORA_UNFUSED)
    int lora16;         // 16-bit mode with lora_fused: the adapters read the GEMMs' 16-bit inputs
                        // and douts (xb16, db16), as PEFT's in a 16-bit model (gpu_train.c)
    int lora_mma;       // lora16 without VET_GPU_LORA_NO_MMA: those products on tensor cores
    int mlp16;          // 16-bit mode, gate and up without adapters or with lora16's: their GEMMs
                        // (and adapters) write 16 bits (gate16, up16)
    int ckpt;           // VET_GPU_CKPT: layers 0..n_recompute-1 share one activation slot and are
                        // recomputed in backward (see act_layer)
    int n_recompute;    // with ckpt: how many layers, the first ones, are recomputed (1..L; the
                        // others keep their activations as without checkpointing); 0 without
    int keep_att;       // VET_GPU_CKPT_KEEP_ATTN: att and lse hold every layer even so (att_layer)
    int qkv16;          // attn_tc, q, k, v without adapters or with lora16's: their GEMMs (a bias
                        // added onto its bf16 rows) and adapters write bf16 into q16, k16, v16,
                        // RoPE rotates in place
    int att_bf16;       // attn_tc, and no fp32 reader of its output (no adapter on o, or lora16):
                        // the attention writes its output in bf16 (att16), the o projection's input
    int lora_up_k;      // VET_GPU_LORA_UP_KERNEL: the up product by lora_up_cuda (with rc)
    int B, T;           // capacity
    size_t N;           // B*T: the layer stride of every per-layer activation
    int L, C, F, Q, KV, H, KVH, hd, V, r, W;  // W = max(C, Q, F): the widest projection input
    int rc;             // the rank vet's adapter kernels see: r, or with lora_fused at most
                        // VET_LORA_FUSED_MAX_R, an adapter of rank r then run as ceil(r / rc)
                        // blocks of rank <= rc (gpu_lora_layout.c: B's device layout)
    int ce_rows;        // rows per logits chunk
    // LoRA (copied from the model)
    int has_lora;
    unsigned targets;
    float lora_scale, dropout;
    float resid_dropout;  // before each residual add (training forwards); resid_p: in effect now
    float resid_p;
    size_t n_w, n_lora, n_params;
    size_t offA[VET_LORA_N_TARGETS], offB[VET_LORA_N_TARGETS];  // in lora_mem
    // offsets of the base tensors in w_mem (bq.. only with biases); w16 window = [wq, final_norm)
    size_t o_embed, o_attn_norm, o_wq, o_wk, o_wv, o_bq, o_bk, o_bv, o_wo, o_mlp_norm, o_wgate,
        o_wup, o_wdown, o_final_norm, o_lm_head;
    size_t n_w16;

    // --- device buffers (all inside mem) ---
    // base weights: fp32 mode: w (n_w) and the typed pointers below point into it;
    // bf16 mode: w16 holds the matrices, the fp32 pointers their own small copies.
    float *w;
    uint16_t *w16, *embed16;  // (n_w16), (V,C) untied bf16 only
    // quantized mode: projection t's matrices, layer l at qw[t] + l * q_bytes[t] and
    // qs[t] + l * q_scales[t] (int8: q (out,in), scales (out); nf4: codes, block absmax);
    // wdq (out*in of the largest projection, bf16 or fp32) holds one of them dequantized
    void *qw[VET_LORA_N_TARGETS];
    float *qs[VET_LORA_N_TARGETS];
    size_t q_bytes[VET_LORA_N_TARGETS], q_scales[VET_LORA_N_TARGETS];
    void *wdq;
    size_t max_oi;
    float *embed, *attn_norm, *bq, *bk, *bv, *mlp_norm, *final_norm, *lm_head;
    // trainable: params (lora_mem copy, or w in full mode), grads, AdamW moments
    float *params, *grads, *adam_m, *adam_v;
    // activations kept for backward (layer stride N positions). x always has every layer's
    // input; the per-layer ones below it have LA = L layers, or 1 with ckpt (act_layer)
    float *cos_t, *sin_t;          // (T, hd/2)
    float *x, *xmid;               // (L+1,N,C), (LA,N,C)
    float *rstd1, *rstd2;          // (LA,N)
    float *q, *k, *v, *att, *lse;  // (LA,N,Q), (LA,N,KV) x2, (LA,N,Q), (LA,N,H)
    uint16_t *att16;               // (LA,N,Q) with att_bf16, in place of att
    // With attn_tc, q, k, v are kept in bf16 instead, q16 (LA,N,Q), k16, v16 (LA,N,KV): what the
    // tensor-core attention reads (it rounds to bf16 as it loads: the same values, half the
    // memory and traffic); q, k, v are then (N,Q), (N,KV) fp32 scratch where the projections
    // write before RoPE rounds them.
    uint16_t *q16, *k16, *v16;
    float *gate, *up;              // (LA,N,F)
    uint16_t *gate16, *up16;       // (LA,N,F) with mlp16, in place of gate and up
    float *lora_u[VET_LORA_N_TARGETS];  // (LA,N,r)
    float *rstdf, *lnf, *lnf_t, *dlnf_t;  // (N), (N,C) x3; lnf shares h's memory
    // scratch
    float *chunk, *loss;           // (ce_rows,V), (N)
    // 16-bit mode: the lm_head (V,C) in 16 bits (tied: the embedding table too, embed16), and
    // the loss side's 16-bit GEMM inputs: a chunk of lnf_t (ce_rows,C), of dlogits (ce_rows,V)
    uint16_t *lm_head16, *ce16;
    size_t xd_floats;              // xd's size: (N,W), or the fused LoRA products' slices
    float *h, *act, *dx, *dh;      // (N,C), (N,F), (N,C), (N,C)
    float *dq, *dk, *dv, *datt;    // (N,Q), (N,KV), (N,KV), (N,Q); dq, dk, datt in dup, act, dact
    float *dgate, *dup, *dact;     // (N,F); dgate shares act's memory
    float *xd, *du;                // (N,W), (N,r)
    void *attn_scratch;
    vet_cuda_grad_stats *gstats;   // (1) the gradients' norm and first non-finite index
    void *gstats_scratch;          // grad_stats_scratch_bytes(): the reduction's partials
    uint16_t *xb16, *db16;         // (N,W) bf16 GEMM inputs (bf16 mode), one memory but with lora16
    int32_t *tokens, *pos, *seg, *tgt_pos, *tgt;  // (N) the batch on the device
    void *mem;
    vet_gpu_plan plan;

    // host side
    int32_t *h_tgt_pos, *h_tgt;    // (N)
    float *h_loss;                 // (N)
    const vet_batch *last;         // the batch of the last forward
    int bB, bT;                    // its shape
    int n_tgt, training, have_dlnf;
    uint64_t dropout_seed;
    int64_t row0;                  // the batch's row0: the dropout masks' row key offset
    vet_gpu_profile *prof;         // NULL, or where the device time goes (not owned)
};

// From here the device's time goes to kind (gpu_profile.h); nothing without a profile. In a
// function that returns -1 on error with err in scope.
#define PROF(g, kind)                                                                        \
    do {                                                                                     \
        if ((g)->prof && vet_gpu_profile_enter((g)->prof, (kind), err) < 0) return -1;       \
    } while (0)

// Which layer slot of the per-layer activations (xmid .. lora_u) layer l uses: its own, or with
// gradient checkpointing slot 0, the one the recomputed layers (0..n_recompute-1) share, and
// the kept layers theirs after it. act_slots: how many slots there are.
static inline size_t act_layer(const vet_gpu_model *g, int l) {
    if (!g->n_recompute) return (size_t)l;
    return l < g->n_recompute ? 0 : (size_t)(1 + l - g->n_recompute);
}
static inline size_t act_slots(const vet_gpu_model *g) {
    return g->n_recompute ? (size_t)(1 + g->L - g->n_recompute) : (size_t)g->L;
}
// att's and lse's slot: every layer's with keep_att, else act_layer's.
static inline size_t att_layer(const vet_gpu_model *g, int l) { return g->keep_att ? (size_t)l : act_layer(g, l); }

// Layout: one list of (pointer, bytes, kind) walked twice, to count and to hand out. A slot
// with alias set takes no bytes: its pointer gets the (earlier) slot's *alias, for buffers
// that are never live at the same time.
typedef struct {
    void **p;
    size_t bytes;
    int kind;
    void **alias;
} gpu_slot;
#define GPU_MAX_SLOTS 100

// Fills g's sizes (everything gpu_layout needs) from a config, the LoRA shape (r 0: none),
// the capacity B x T, the layers gradient checkpointing recomputes (vet_gpu_opts.ckpt_layers)
// and VET_GPU_* flags; refuses what the GPU model cannot do.
int gpu_set_dims(vet_gpu_model *g, const vet_config *c, int r, unsigned targets, int B, int T, int ckpt_layers,
                 unsigned flags, vet_err *err);
// The model's device buffers in order into s (GPU_MAX_SLOTS); returns their count.
int gpu_layout(vet_gpu_model *g, gpu_slot *s);
size_t gpu_aligned(size_t bytes);  // rounded up to ALIGN
// The plan (bytes by kind) of a layout.
void gpu_plan_of(const vet_gpu_model *g, const gpu_slot *s, int n, vet_gpu_plan *p);

// gpu_lora_layout.c: whether the trainable floats' device layout differs from the host's (an
// adapter of rank over rc: B's columns in blocks), the host index of device index i, and the
// transfers of n_params trainable floats (parameters, gradients, AdamW moments) between the
// host's layout and the device's.
int gpu_lora_chunked(const vet_gpu_model *g);
size_t gpu_lora_host_index(const vet_gpu_model *g, size_t i);
int gpu_upload_trainable(vet_gpu_model *g, float *dev, const float *host, vet_err *err);
int gpu_download_trainable(vet_gpu_model *g, float *host, const float *dev, vet_err *err);

#endif
