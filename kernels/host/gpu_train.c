// gpu_train.c — the decoder's forward and backward on a CUDA device (see gpu_model.h).
//
// The layer sequence is lib/model/forward_backward.c's, op for op, with the CPU ops swapped
// for their CUDA twins from kernels/ops_cuda.h; the same tensors are kept for backward and the
// same ones recomputed (see that file's header). Differences, each for a reason:
//   - o_proj and down_proj write straight into the residual buffer, which then gets the
//     residual added (x + p == p + x in IEEE arithmetic: no copy, no extra buffer);
//   - the target rows of the final norm's output are gathered, and their gradient scattered
//     back, with the embedding ops (a gather/scatter by index is exactly what they are);
//   - lm_head + cross-entropy run fused in chunks (lmhead_crossentropy_cuda): the (B,T,V)
//     logits never exist;
//   - in the 16-bit mode the adapters read the GEMMs' 16-bit copies of their input and of the
//     gradient at their output (g->lora16), as PEFT's fp32 adapters in a 16-bit model do, and
//     the fp32 copies are not made; the gradients at gate's, up's, q's and k's outputs are
//     rounded to 16 bits by the pass that makes them (SwiGLU's backward, RoPE's) where
//     nothing reads them in fp32 (mlp_douts16, qk_douts16);
//   - dropout masks are made on the device (dropout_forward_cuda: the counter-based generator
//     of lib/base/philox.h, the CPU's too, so the masks are the CPU's bit for bit) from the
//     CPU's seeds, regenerated in the recompute and the backward, never stored;
//   - gradient checkpointing (VET_GPU_CKPT; the CPU core has none): forward keeps only the
//     layer inputs x[l] of the first n_recompute layers (all of them by default; the others keep
//     their activations), backward reruns layer_forward for such a layer l into one layer's
//     buffers right before layer l's backward. Same ops, same inputs, same dropout seeds: the
//     same bits.
#include "kernels/host/gpu_model.h"

#ifdef VET_CUDA

#include "kernels/ops_cuda.h"
#include "kernels/host/gpu_internal.h"
#include "model/lora.h"
#include "base/rng.h"

// ---------------------------------------------------------------------------------------
// One (possibly adapted) projection

// The 16-bit storage mode (g->bf16) holds bf16, or IEEE fp16 with VET_GPU_FP16: the same
// places converted, the same GEMMs, only the format differs.
static int to_half(vet_gpu_model *g, uint16_t *out, const float *inp, size_t n, vet_err *err) {
    PROF(g, VET_PROF_CONVERT);
    return g->fp16 ? f32_to_f16_cuda(g->ctx, out, inp, n, err) : f32_to_bf16_cuda(g->ctx, out, inp, n, err);
}
static int half_forward(vet_gpu_model *g, float *out, const uint16_t *inp, const uint16_t *w, const float *b,
                        int N, int C, int OC, vet_err *err) {
    return g->fp16 ? matmul_forward_f16_cuda(g->ctx, out, inp, w, b, N, C, OC, err)
                   : matmul_forward_bf16_cuda(g->ctx, out, inp, w, b, N, C, OC, err);
}
// dinp (N,C) = dout (N,OC) · W (OC,C), written (beta 0) or added (beta 1): matmul_backward_bf16_cuda's
// (matmul_backward_f16_cuda's) activation-gradient GEMM, with the choice of beta.
static int half_dinp(vet_gpu_model *g, float *dinp, const uint16_t *dout, const uint16_t *w, int N, int C, int OC,
                     float beta, vet_err *err) {
    return g->fp16 ? vet_cuda_gemm_f16(g->ctx, 0, 0, N, C, OC, 1.0f, dout, OC, w, C, beta, dinp, C, err)
                   : vet_cuda_gemm_bf16(g->ctx, 0, 0, N, C, OC, 1.0f, dout, OC, w, C, beta, dinp, C, err);
}
static int half_embedding(vet_gpu_model *g, float *out, const int32_t *tokens, const uint16_t *embed, int N,
                          int C, vet_err *err) {
    PROF(g, VET_PROF_EMBEDDING);
    return g->fp16 ? embedding_forward_f16_cuda(g->ctx, out, tokens, embed, N, C, err)
                   : embedding_forward_bf16_cuda(g->ctx, out, tokens, embed, N, C, err);
}

// The dropout seed of (layer, target): lib/model/forward_backward.c's lora_seed, so masks match.
static uint64_t lora_seed(uint64_t seed, int l, int t) {
    return vet_rng_hash(vet_rng_hash(seed, (uint64_t)l), (uint64_t)t);
}
// Residual dropout's seed of (layer, branch 0 attention / 1 MLP): forward_backward.c's resid_seed.
static uint64_t resid_seed(uint64_t seed, int l, int branch) {
    return lora_seed(seed, l, VET_LORA_N_TARGETS + branch);
}

typedef struct {
    const float *w, *b, *A, *B;  // device; w NULL in bf16 mode
    const uint16_t *w16;
    vet_cuda_qweight qw;         // quantized mode (qw.kind 0 otherwise)
    float *dw, *db, *dA, *dB;    // gradient slots (full mode: dw, db; LoRA mode: dA, dB)
    float *u;                    // (N,r) this layer's x·A^T
    int out, in;
    int r;                       // the adapter's rank; in a block of it (chunk_of) the block's
} proj;

static proj proj_of(vet_gpu_model *g, int l, int t) {
    proj p = {0};
    vet_lora_dims(&g->cfg, t, &p.out, &p.in);
    size_t per = (size_t)p.out * p.in, ow = 0, ob = 0;
    int bias = 0;
    switch (t) {
    case 0: ow = g->o_wq, ob = g->o_bq, bias = 1; break;
    case 1: ow = g->o_wk, ob = g->o_bk, bias = 1; break;
    case 2: ow = g->o_wv, ob = g->o_bv, bias = 1; break;
    case 3: ow = g->o_wo; break;
    case 4: ow = g->o_wgate; break;
    case 5: ow = g->o_wup; break;
    default: ow = g->o_wdown; break;
    }
    ow += l * per;
    if (g->quant) {
        p.qw.kind = g->quant;
        p.qw.q = (const char *)g->qw[t] + l * g->q_bytes[t];
        p.qw.scale = g->qs[t] + l * g->q_scales[t];
    } else if (g->bf16) {
        p.w16 = g->w16 + (ow - g->o_wq);
    } else {
        p.w = g->w + ow;
    }
    if (bias && g->cfg.qkv_bias) {
        const float *bb = t == 0 ? g->bq : t == 1 ? g->bk : g->bv;
        p.b = bb + (size_t)l * p.out;
        ob += (size_t)l * p.out;
    }
    if (g->full) {
        p.dw = g->grads + ow;
        if (p.b) p.db = g->grads + ob;
    }
    if (g->targets & (1u << t)) {
        size_t oa = g->offA[t] + (size_t)l * g->r * p.in, obb = g->offB[t] + (size_t)l * p.out * g->r;
        p.A = g->params + oa, p.B = g->params + obb;
        p.dA = g->grads + oa, p.dB = g->grads + obb;
        p.u = g->lora_u[t] + act_layer(g, l) * g->N * g->r;
        p.r = g->r;
    }
    return p;
}

// An adapter of rank r over g->rc runs as blocks of rank <= rc, the most vet's kernels take
// (gpu_lora_layout.c): block c is A's rows [j0, j0 + w), B's columns [j0, j0 + w) as the device
// stores them (a whole (out, w) matrix), u's (N, w) block of the layer's slot, and the same of dA
// and dB. Its products are an adapter of rank w; the blocks' outputs and gradients add up to the
// whole adapter's (each rounding apart: the up product into a 16-bit output is rounded after
// each block). One block, p itself, when r <= rc.
static int n_blocks(const vet_gpu_model *g) { return g->rc > 0 ? (g->r + g->rc - 1) / g->rc : 1; }
static proj chunk_of(const vet_gpu_model *g, const proj *p, int c) {
    proj q = *p;
    const int j0 = c * g->rc;
    q.r = p->r - j0 < g->rc ? p->r - j0 : g->rc;
    q.A += (size_t)j0 * p->in, q.dA += (size_t)j0 * p->in;
    q.B += (size_t)j0 * p->out, q.dB += (size_t)j0 * p->out;
    q.u += (size_t)j0 * g->N;
    return q;
}

// The 16-bit mode's format code (kernels/ops_cuda.h's VET_CUDA_BF16 / VET_CUDA_F16).
static int half_fmt(const vet_gpu_model *g) { return g->fp16 ? VET_CUDA_F16 : VET_CUDA_BF16; }

// The down product of one block of an adapter (vet's kernels, rank <= rc): q.u = dropout(x)·A^T,
// the mask (the same for every block: it is keyed by x's element) applied inside the product.
static int lora_down_block(vet_gpu_model *g, const proj *q, const float *inp, const uint16_t *inp16, int N,
                           float pd, uint64_t seed, vet_err *err) {
    if (g->lora_mma)
        return lora_down_mma_cuda(g->ctx, q->u, inp16, half_fmt(g), q->A, pd, seed, g->row0, N, q->in, q->r, err);
    if (g->lora16)
        return lora_down_dropout16_cuda(g->ctx, q->u, inp16, half_fmt(g), q->A, pd, seed, g->row0, N, q->in, q->r,
                                        err);
    return lora_down_dropout_cuda(g->ctx, q->u, inp, q->A, pd, seed, g->row0, N, q->in, q->r, err);
}

// The adapter's input side: p.u (N,r) = dropout(inp)·A^T, what backward keeps of it. With
// lora16 it reads inp16 (inp may be NULL), otherwise inp.
static int lora_u_forward(vet_gpu_model *g, int l, int t, const proj *p, const float *inp, const uint16_t *inp16,
                          int N, vet_err *err) {
    const float *x = inp;
    const int drop = g->training && g->dropout > 0.0f;
    const uint64_t seed = lora_seed(g->dropout_seed, l, t);
    if (g->lora_fused) {  // vet's kernels: the mask inside the product (xd is never written), or none
        PROF(g, VET_PROF_LORA_FUSED);
        for (int c = 0; c < n_blocks(g); c++) {
            proj q = chunk_of(g, p, c);
            if (lora_down_block(g, &q, inp, inp16, N, drop ? g->dropout : 0.0f, seed, err) < 0) return -1;
        }
        return 0;
    }
    if (drop) {
        PROF(g, VET_PROF_DROPOUT);
        if (dropout_forward_cuda(g->ctx, g->xd, inp, g->dropout, seed, g->row0, N, p->in, err) < 0) return -1;
        x = g->xd;
    }
    PROF(g, VET_PROF_GEMM_LORA);
    return matmul_forward_cuda(g->ctx, p->u, x, p->A, NULL, N, p->in, p->r, err);
}

// out (N,out) = inp·W^T + b + scale·(dropout(inp)·A^T)·B^T. inp16: inp as bf16 (bf16 mode;
// with it inp may be NULL, when no fp32 reader wants it: fp32_input_read).
static int proj_forward(vet_gpu_model *g, int l, int t, float *out, const float *inp,
                        const uint16_t *inp16, int N, vet_err *err) {
    vet_cuda *ctx = g->ctx;
    proj p = proj_of(g, l, t);
    PROF(g, VET_PROF_GEMM_BASE);
    int rc = g->quant ? matmul_forward_q_cuda(ctx, out, inp, g->bf16 ? inp16 : NULL, &p.qw, p.b, N, p.in,
                                              p.out, g->wdq, err)
             : g->bf16 ? half_forward(g, out, inp16, p.w16, p.b, N, p.in, p.out, err)
                       : matmul_forward_cuda(ctx, out, inp, p.w, p.b, N, p.in, p.out, err);
    if (rc < 0 || !p.A) return rc;
    if (lora_u_forward(g, l, t, &p, inp, inp16, N, err) < 0) return -1;
    for (int c = 0; c < n_blocks(g); c++) {  // out += scale * u·B^T, block by block
        proj q = chunk_of(g, &p, c);
        if (g->lora_up_k) {  // out read and written once
            PROF(g, VET_PROF_LORA_FUSED);
            rc = lora_up_cuda(ctx, out, q.u, q.B, g->lora_scale, N, q.out, q.r, err);
        } else {
            PROF(g, VET_PROF_GEMM_LORA);
            rc = vet_cuda_sgemm(ctx, 0, 1, N, q.out, q.r, g->lora_scale, q.u, q.r, q.B, q.r, 1.0f, out, q.out, err);
        }
        if (rc < 0) return -1;
    }
    return 0;
}

// The loss at the target rows and, with dx, its gradient dx (n,C) = grad_scale * dlogits·lm_head:
// the fp32 fused op, or in the 16-bit mode the same steps chunk by chunk on the 16-bit lm_head
// (each chunk's rows and dlogits rounded to the GEMMs' format, as a bf16 autograd would).
static int lmhead_loss(vet_gpu_model *g, float *dx, int n, float grad_scale, vet_err *err) {
    vet_cuda *ctx = g->ctx;
    const int C = g->C, V = g->V;
    if (!g->lm_head16)
        return lmhead_crossentropy_cuda(ctx, g->loss, dx, NULL, g->lnf_t, g->lm_head, g->tgt, n, C, V, grad_scale,
                                        g->chunk, g->ce_rows, err);
    uint16_t *x16 = g->ce16, *d16 = g->ce16 + (size_t)g->ce_rows * C;
    int (*gemm)(vet_cuda *, int, int, int, int, int, float, const uint16_t *, int, const uint16_t *, int, float,
                float *, int, vet_err *) = g->fp16 ? vet_cuda_gemm_f16 : vet_cuda_gemm_bf16;
    for (int c0 = 0; c0 < n; c0 += g->ce_rows) {
        int m = n - c0 < g->ce_rows ? n - c0 : g->ce_rows;
        if (to_half(g, x16, g->lnf_t + (size_t)c0 * C, (size_t)m * C, err) < 0) return -1;
        PROF(g, VET_PROF_LOSS);  // logits (m,V) = x·lm_head^T, then softmax - onehot in place
        if (gemm(ctx, 0, 1, m, V, C, 1.0f, x16, C, g->lm_head16, C, 0.0f, g->chunk, V, err) < 0 ||
            crossentropy_softmax_backward_inplace_cuda(ctx, g->chunk, g->loss + c0, g->tgt + c0, m, V, err) < 0)
            return -1;
        if (!dx) continue;
        if (to_half(g, d16, g->chunk, (size_t)m * V, err) < 0) return -1;
        PROF(g, VET_PROF_LOSS);
        if (gemm(ctx, 0, 0, m, C, V, grad_scale, d16, V, g->lm_head16, C, 0.0f, dx + (size_t)c0 * C, C, err) < 0)
            return -1;
    }
    return 0;
}

// The projections that share one input (VET_LORA_* bits): a norm's output feeds these.
#define QKV_IN (VET_LORA_Q | VET_LORA_K | VET_LORA_V)
#define MLP_IN (VET_LORA_GATE | VET_LORA_UP)

// Whether the forward reads the fp32 input of the projections in `mask`: the fp32 GEMMs do (fp32
// and quantized-fp32 modes), and so does an adapter on one of them but with lora16; the 16-bit
// GEMMs read only the 16-bit copy.
static int fp32_input_read(const vet_gpu_model *g, unsigned mask) {
    return !g->bf16 || ((g->targets & mask) && !g->lora16);
}

// Whether the backward of a projection in `mask` reads its fp32 input: an adapter's dA (and the
// dropout mask over the input), or full training's dW. The base's dinp needs only W and dout, so
// without either the backward need not recompute the input (SwiGLU's output, a norm's output).
static int input_in_backward(const vet_gpu_model *g, unsigned mask, int full) {
    return full || (g->targets & mask);
}

// Whether gate's and up's output gradients go straight into 16 bits (swiglu_backward_half_cuda):
// in the 16-bit mode when nothing reads them in fp32, that is no adapter on gate or up but on the
// 16-bit copies (lora16), and no full training (which keeps fp32 weights anyway).
static int mlp_douts16(const vet_gpu_model *g, int full) {
    return g->bf16 && !full && (g->lora16 || !(g->targets & MLP_IN));
}

// Whether the gradients at q's and k's outputs go through RoPE's transpose straight into bf16
// (rope_backward_bf16_cuda) as mlp_douts16 says for gate and up; the kernel writes bf16, so not
// in fp16 storage.
static int qk_douts16(const vet_gpu_model *g, int full) {
    return g->bf16 && !g->fp16 && !full && (g->lora16 || !(g->targets & (VET_LORA_Q | VET_LORA_K)));
}

// dinp (N,in) += du·A, no dropout: a well-shaped GEMM (n = in), cuBLAS's on either path.
static int lora_dinp_plain(vet_gpu_model *g, const proj *p, float *dinp, int N, vet_err *err) {
    PROF(g, VET_PROF_GEMM_LORA);
    return vet_cuda_sgemm(g->ctx, 0, 0, N, p->in, p->r, 1.0f, g->du, p->r, p->A, p->in, 1.0f, dinp, p->in, err);
}

// An adapter's backward on vet's kernels (rank <= 32): du (N,r) = scale dout·B and dB (out,r) +=
// scale dout^T·u (cuBLAS tiles these skinny shapes onto few multiprocessors), dA (r,in) +=
// du^T·dropout(inp) and dinp += the mask's share of du·A, the forward's mask regenerated inside
// the products (xd is scratch for the row slices only).
// With lora16 the 16-bit copies instead: dout16 (the base GEMM's) and inp16, on the tensor cores
// with lora_mma.
static int lora_backward_products(vet_gpu_model *g, const proj *p, const float *dout, const uint16_t *dout16,
                                  const float *inp, const uint16_t *inp16, int N, float pd, uint64_t seed,
                                  vet_err *err) {
    vet_cuda *ctx = g->ctx;
    const int r = p->r, fmt = half_fmt(g);
    const float s = g->lora_scale;
    if (g->lora_mma)
        return lora_du_mma_cuda(ctx, g->du, dout16, fmt, p->B, s, N, p->out, r, err) < 0 ||
                       lora_grad_b_mma_cuda(ctx, p->dB, dout16, fmt, p->u, s, N, p->out, r, g->xd, g->xd_floats,
                                            err) < 0 ||
                       lora_grad_a_mma_cuda(ctx, p->dA, g->du, inp16, fmt, pd, seed, g->row0, N, p->in, r, g->xd,
                                            g->xd_floats, err) < 0
                   ? -1
                   : 0;
    if (g->lora16)
        return lora_du16_cuda(ctx, g->du, dout16, fmt, p->B, s, N, p->out, r, err) < 0 ||
                       lora_grad_b16_cuda(ctx, p->dB, dout16, fmt, p->u, s, N, p->out, r, g->xd, g->xd_floats,
                                          err) < 0 ||
                       lora_grad_a_dropout16_cuda(ctx, p->dA, g->du, inp16, fmt, pd, seed, g->row0, N, p->in, r,
                                                  g->xd, g->xd_floats, err) < 0
                   ? -1
                   : 0;
    return lora_du_cuda(ctx, g->du, dout, p->B, s, N, p->out, r, err) < 0 ||
                   lora_grad_b_cuda(ctx, p->dB, dout, p->u, s, N, p->out, r, g->xd, g->xd_floats, err) < 0 ||
                   lora_grad_a_dropout_cuda(ctx, p->dA, g->du, inp, pd, seed, g->row0, N, p->in, r, g->xd,
                                            g->xd_floats, err) < 0
               ? -1
               : 0;
}

static int lora_backward_fused(vet_gpu_model *g, const proj *p, float *dinp, const float *dout,
                               const uint16_t *dout16, const float *inp, const uint16_t *inp16, int N, int drop,
                               uint64_t seed, vet_err *err) {
    for (int c = 0; c < n_blocks(g); c++) {  // du is one block's at a time
        proj q = chunk_of(g, p, c);
        PROF(g, VET_PROF_LORA_FUSED);
        if (lora_backward_products(g, &q, dout, dout16, inp, inp16, N, drop ? g->dropout : 0.0f, seed, err) < 0 ||
            (!drop ? lora_dinp_plain(g, &q, dinp, N, err)
                   : lora_grad_input_dropout_cuda(g->ctx, dinp, g->du, q.A, g->dropout, seed, g->row0, N, q.in, q.r,
                                                  err)) < 0)
            return -1;
    }
    return 0;
}

// The same with cuBLAS's GEMMs and, with dropout, a pass that writes the masked input into xd
// (VET_GPU_LORA_FUSED=0: the whole adapter at once, in the host's layout).
static int lora_backward_cublas(vet_gpu_model *g, const proj *p, float *dinp, const float *dout, const float *inp,
                                int N, int drop, uint64_t seed, vet_err *err) {
    vet_cuda *ctx = g->ctx;
    const int r = p->r;
    PROF(g, VET_PROF_GEMM_LORA);
    if (vet_cuda_sgemm(ctx, 0, 0, N, r, p->out, g->lora_scale, dout, p->out, p->B, r, 0.0f, g->du, r, err) < 0 ||
        vet_cuda_sgemm(ctx, 1, 0, p->out, r, N, g->lora_scale, dout, p->out, p->u, r, 1.0f, p->dB, r, err) < 0)
        return -1;
    const float *x = inp;
    if (drop) {  // the forward's mask again
        PROF(g, VET_PROF_DROPOUT);
        if (dropout_forward_cuda(ctx, g->xd, inp, g->dropout, seed, g->row0, N, p->in, err) < 0) return -1;
        x = g->xd;
        PROF(g, VET_PROF_GEMM_LORA);
    }
    // dA (r,in) += du^T·x
    if (vet_cuda_sgemm(ctx, 1, 0, r, p->in, N, 1.0f, g->du, r, x, p->in, 1.0f, p->dA, p->in, err) < 0) return -1;
    if (!drop) return lora_dinp_plain(g, p, dinp, N, err);
    // dinp += mask/(1-p) * (du·A); xd is free again
    if (vet_cuda_sgemm(ctx, 0, 0, N, p->in, r, 1.0f, g->du, r, p->A, p->in, 0.0f, g->xd, p->in, err) < 0) return -1;
    PROF(g, VET_PROF_DROPOUT);
    return dropout_backward_cuda(ctx, dinp, g->xd, g->dropout, seed, g->row0, N, p->in, err);
}

// dinp (N,in) +=, or = when `first` (the first projection to write it: the base GEMM writes with
// beta 0 instead of a zeroing pass before; the quantized and full-training GEMMs, which add,
// get the zeroing pass); full mode: dW, db +=; LoRA mode: dA, dB +=. As lora_proj_backward.
// The adapter reads inp, or with lora16 inp16 (the backward makes whichever it is). dout16: in
// the 16-bit mode, dout already rounded to 16 bits by the pass that made it (dout is then NULL:
// no fp32 reader may want it, see mlp_douts16), or NULL: rounded here into db16.
static int proj_backward(vet_gpu_model *g, int l, int t, float *dinp, const float *dout, const uint16_t *dout16,
                         const float *inp, const uint16_t *inp16, int N, int full, int first, vet_err *err) {
    vet_cuda *ctx = g->ctx;
    proj p = proj_of(g, l, t);
    int rc = 0;
    if (first && (g->quant || full)) {
        PROF(g, VET_PROF_MEMSET);
        if (vet_cuda_memset0(ctx, dinp, (size_t)N * p.in * sizeof(float), err) < 0) return -1;
    }
    const float beta = first && !g->quant && !full ? 0.0f : 1.0f;
    // dout rounded to 16 bits, as a 16-bit autograd would: what the 16-bit GEMMs (and lora16) read
    const uint16_t *d16 = g->bf16 ? (dout16 ? dout16 : g->db16) : NULL;
    if (g->bf16 && !dout16) rc = to_half(g, g->db16, dout, (size_t)N * p.out, err);
    if (rc < 0) return rc;
    if (g->quant) {  // dinp += dout·W, W dequantized again (the forward's copy is long gone)
        PROF(g, VET_PROF_GEMM_BASE);
        rc = matmul_backward_q_cuda(ctx, dinp, dout, d16, &p.qw, N, p.in, p.out, g->wdq, err);
    } else if (g->bf16) {  // dinp += dout·W on the 16-bit dout
        PROF(g, VET_PROF_GEMM_BASE);
        rc = half_dinp(g, dinp, d16, p.w16, N, p.in, p.out, beta, err);
    } else if (!full) {  // dinp (+)= dout·W: matmul_backward_cuda's GEMM, with the choice of beta
        PROF(g, VET_PROF_GEMM_BASE);
        rc = vet_cuda_sgemm(ctx, 0, 0, N, p.in, p.out, 1.0f, dout, p.out, p.w, p.in, beta, dinp, p.in, err);
    } else {
        PROF(g, VET_PROF_GEMM_BASE);
        rc = matmul_backward_cuda(ctx, dinp, p.dw, p.db, dout, inp, p.w, N, p.in, p.out, err);
    }
    if (rc < 0 || !p.A || full) return rc;
    const int drop = g->training && g->dropout > 0.0f;
    const uint64_t seed = lora_seed(g->dropout_seed, l, t);
    return g->lora_fused ? lora_backward_fused(g, &p, dinp, dout, d16, inp, inp16, N, drop, seed, err)
                         : lora_backward_cublas(g, &p, dinp, dout, inp, N, drop, seed, err);
}

// ---------------------------------------------------------------------------------------
// Forward

#define TRY(call) do { if ((call) < 0) return -1; } while (0)

// Layer l's pointers into the per-layer activations (act_layer's slot). With attn_tc, q, k, v
// are the fp32 scratch the projections write (shared by every layer) and q16, k16, v16 the
// layer's bf16 copies, which the attention reads; otherwise q16, k16, v16 are NULL.
typedef struct {
    float *xmid, *rstd1, *rstd2, *q, *k, *v, *att, *lse, *gate, *up;
    uint16_t *q16, *k16, *v16, *gate16, *up16;  // gate16, up16: with mlp16, where gate and up are NULL
    uint16_t *att16;                            // with g->att_bf16, where att is NULL
} layer_acts;

static layer_acts acts_of(const vet_gpu_model *g, int l) {
    size_t NS = g->N, s = act_layer(g, l), sq = g->attn_tc ? 0 : s, sa = att_layer(g, l);
    layer_acts a = {g->xmid + s * NS * g->C, g->rstd1 + s * NS, g->rstd2 + s * NS, g->q + sq * NS * g->Q,
                    g->k + sq * NS * g->KV, g->v + sq * NS * g->KV, NULL, g->lse + sa * NS * g->H,
                    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    if (g->att_bf16) a.att16 = g->att16 + sa * NS * g->Q;
    else a.att = g->att + sa * NS * g->Q;
    if (g->mlp16) a.gate16 = g->gate16 + s * NS * g->F, a.up16 = g->up16 + s * NS * g->F;
    else a.gate = g->gate + s * NS * g->F, a.up = g->up + s * NS * g->F;
    if (g->attn_tc) a.q16 = g->q16 + s * NS * g->Q, a.k16 = g->k16 + s * NS * g->KV, a.v16 = g->v16 + s * NS * g->KV;
    return a;
}

// out16 (N,out) = inp16·W^T (+ the bias, rounded to 16 bits as the GEMM adds onto it) rounded to
// 16 bits: gate's or up's base GEMM with mlp16, q's, k's and v's with qkv16 (a quantized W
// dequantized into wdq first, as matmul_forward_q_cuda does). An adapter (lora16: it
// reads inp16) adds s·u·B^T to the 16-bit output, the sum rounded again (lora_up16_cuda), as a
// 16-bit PEFT model adds its adapter's output to the base layer's 16-bit one.
static int proj_forward16(vet_gpu_model *g, int l, int t, uint16_t *out16, const uint16_t *inp16, int N,
                          vet_err *err) {
    proj p = proj_of(g, l, t);
    if (p.A && !g->lora16) return vet_errf(err, "projection %d: an adapter on fp32 inputs needs the fp32 output", t);
    const uint16_t *w = p.w16;
    if (g->quant) {
        PROF(g, VET_PROF_GEMM_BASE);
        if (dequant_bf16_cuda(g->ctx, (uint16_t *)g->wdq, &p.qw, p.out, p.in, err) < 0) return -1;
        w = (const uint16_t *)g->wdq;
    }
    PROF(g, VET_PROF_GEMM_BASE);
    if (matmul_forward_half_out_cuda(g->ctx, half_fmt(g), out16, inp16, w, p.b, N, p.in, p.out, err) < 0) return -1;
    if (!p.A) return 0;
    if (lora_u_forward(g, l, t, &p, NULL, inp16, N, err) < 0) return -1;
    PROF(g, VET_PROF_LORA_FUSED);
    for (int c = 0; c < n_blocks(g); c++) {
        proj q = chunk_of(g, &p, c);
        if (lora_up16_cuda(g->ctx, out16, half_fmt(g), q.u, q.B, g->lora_scale, N, q.out, q.r, err) < 0) return -1;
    }
    return 0;
}

// silu(gate) * up of layer acts a into out (fp32) and out16 (16-bit), either NULL: from fp32
// gate and up, or from the 16-bit ones with mlp16.
static int swiglu_any(vet_gpu_model *g, float *out, uint16_t *out16, const layer_acts *a, int N, vet_err *err) {
    const size_t n = (size_t)N * g->F;
    if (g->mlp16) return swiglu_forward_in16_cuda(g->ctx, out, out16, half_fmt(g), a->gate16, a->up16, n, err);
    if (!out16) return swiglu_forward_cuda(g->ctx, out, a->gate, a->up, n, err);
    return swiglu_forward_half_cuda(g->ctx, out, out16, half_fmt(g), a->gate, a->up, n, err);
}

// Layer l's forward on the batch of B x T (N = B*T positions) on the device: from its input
// x[l] into its activations and x[l+1]. recompute (gradient checkpointing, in backward): the
// same ops into the same activation slot, but what backward does not read is skipped: the
// down projection's GEMM and the residual add (x[l+1] is the next layer's input, kept), so
// only its adapter input u is made (the same op on the same act as in the forward); with
// keep_att the attention's forward too, its output and lse kept from the forward (q, k, v are
// still made: the attention's backward reads them).
static int layer_forward(vet_gpu_model *g, int l, int B, int T, int recompute, vet_err *err) {
    vet_cuda *ctx = g->ctx;
    const vet_config *c = &g->cfg;
    int N = B * T, C = g->C, Q = g->Q;
    size_t NS = g->N;
    float *x = g->x + l * NS * C, *xout = g->x + (l + 1) * NS * C;
    layer_acts a = acts_of(g, l);
    // attention block
    // The norms write the GEMMs' 16-bit input in the same pass, and their fp32 output only for
    // a reader: the fp32 GEMMs, or an adapter on a projection that reads it.
    const int fmt = half_fmt(g);
    uint16_t *in16 = g->bf16 ? g->xb16 : NULL;
    PROF(g, VET_PROF_NORM);
    TRY(rmsnorm_forward_fused_cuda(ctx, fp32_input_read(g, QKV_IN) ? g->h : NULL, in16, fmt, a.rstd1, x, NULL,
                                   g->attn_norm + (size_t)l * C, N, C, c->rms_eps, err));
    if (g->qkv16) {  // straight into the bf16 copies the attention reads
        TRY(proj_forward16(g, l, 0, a.q16, g->xb16, N, err));
        TRY(proj_forward16(g, l, 1, a.k16, g->xb16, N, err));
        TRY(proj_forward16(g, l, 2, a.v16, g->xb16, N, err));
    } else {
        TRY(proj_forward(g, l, 0, a.q, g->h, g->xb16, N, err));
        TRY(proj_forward(g, l, 1, a.k, g->h, g->xb16, N, err));
        TRY(proj_forward(g, l, 2, a.v, g->h, g->xb16, N, err));
    }
    const int attend = !(recompute && g->keep_att);
    PROF(g, VET_PROF_ROPE);
    if (g->qkv16) {  // rotated in place
        TRY(rope_forward_inplace_bf16_cuda(ctx, a.q16, g->pos, g->cos_t, g->sin_t, N, g->H, g->hd, err));
        TRY(rope_forward_inplace_bf16_cuda(ctx, a.k16, g->pos, g->cos_t, g->sin_t, N, g->KVH, g->hd, err));
    } else if (g->attn_tc) {  // rotated and rounded to bf16 in one pass; v rounded
        TRY(rope_forward_bf16_cuda(ctx, a.q16, a.q, g->pos, g->cos_t, g->sin_t, N, g->H, g->hd, err));
        TRY(rope_forward_bf16_cuda(ctx, a.k16, a.k, g->pos, g->cos_t, g->sin_t, N, g->KVH, g->hd, err));
        PROF(g, VET_PROF_CONVERT);
        TRY(f32_to_bf16_cuda(ctx, a.v16, a.v, (size_t)N * g->KV, err));
    }
    if (g->attn_tc) {
        PROF(g, VET_PROF_ATTENTION);
        if (attend)
            TRY(attention_forward_bf16_cuda(ctx, a.att, a.att16, a.lse, a.q16, a.k16, a.v16, g->seg, B, T, g->H,
                                            g->KVH, g->hd, g->attn_scratch, err));
    } else {
        TRY(rope_forward_cuda(ctx, a.q, g->pos, g->cos_t, g->sin_t, N, g->H, g->hd, err));
        TRY(rope_forward_cuda(ctx, a.k, g->pos, g->cos_t, g->sin_t, N, g->KVH, g->hd, err));
        PROF(g, VET_PROF_ATTENTION);
        if (attend)
            TRY(attention_forward_cuda(ctx, a.att, a.lse, a.q, a.k, a.v, g->seg, B, T, g->H, g->KVH, g->hd,
                                       g->attn_scratch, err));
    }
    // o's 16-bit input: the attention's own bf16 output, or the fp32 one rounded
    if (g->bf16 && !g->att_bf16) TRY(to_half(g, g->xb16, a.att, (size_t)N * Q, err));
    TRY(proj_forward(g, l, 3, a.xmid, a.att, g->att_bf16 ? a.att16 : g->xb16, N, err));  // xmid = drop(o(att)) + x
    if (g->resid_p > 0.0f) {
        PROF(g, VET_PROF_DROPOUT);
        TRY(dropout_forward_cuda(ctx, a.xmid, a.xmid, g->resid_p, resid_seed(g->dropout_seed, l, 0), g->row0, N, C, err));
    }
    // MLP block: xmid += x (the residual) and its norm in one pass
    PROF(g, VET_PROF_NORM);
    TRY(rmsnorm_forward_fused_cuda(ctx, fp32_input_read(g, MLP_IN) ? g->h : NULL, in16, fmt, a.rstd2, a.xmid, x,
                                   g->mlp_norm + (size_t)l * C, N, C, c->rms_eps, err));
    if (g->mlp16) {
        TRY(proj_forward16(g, l, 4, a.gate16, g->xb16, N, err));
        TRY(proj_forward16(g, l, 5, a.up16, g->xb16, N, err));
    } else {
        TRY(proj_forward(g, l, 4, a.gate, g->h, g->xb16, N, err));
        TRY(proj_forward(g, l, 5, a.up, g->h, g->xb16, N, err));
    }
    if (recompute) {  // of the rest, backward wants only down's adapter input side again
        proj p = proj_of(g, l, 6);
        if (!p.A) return 0;
        PROF(g, VET_PROF_SWIGLU);
        TRY(swiglu_any(g, g->lora16 ? NULL : g->act, g->lora16 ? g->xb16 : NULL, &a, N, err));
        return lora_u_forward(g, l, 6, &p, g->act, g->xb16, N, err);
    }
    PROF(g, VET_PROF_SWIGLU);
    TRY(swiglu_any(g, fp32_input_read(g, VET_LORA_DOWN) ? g->act : NULL, in16, &a, N, err));
    TRY(proj_forward(g, l, 6, xout, g->act, g->xb16, N, err));  // xout = dropout(down(act)) + xmid
    if (g->resid_p > 0.0f) {
        PROF(g, VET_PROF_DROPOUT);
        TRY(dropout_forward_cuda(ctx, xout, xout, g->resid_p, resid_seed(g->dropout_seed, l, 1), g->row0, N, C, err));
    }
    PROF(g, VET_PROF_RESIDUAL);
    return add_inplace_cuda(ctx, xout, a.xmid, (size_t)N * C, err);
}

int vet_gpu_forward(vet_gpu_model *g, const vet_batch *b, double *loss_sum, int *n_targets,
                    int training, uint64_t dropout_seed, vet_err *err) {
    vet_cuda *ctx = g->ctx;
    const vet_config *c = &g->cfg;
    if (b->B <= 0 || b->T <= 0 || b->B > g->B || b->T > g->T)
        return vet_errf(err, "batch %d x %d does not fit the GPU model's %d x %d", b->B, b->T, g->B, g->T);
    int N = b->B * b->T, C = g->C;
    size_t NS = g->N;  // layer stride in positions
    g->last = NULL;    // set again only when this forward completes
    g->training = training && g->has_lora;
    g->resid_p = training ? g->resid_dropout : 0.0f;
    g->dropout_seed = dropout_seed;
    g->row0 = b->row0;
    g->have_dlnf = 0;
    // A bad index would read out of bounds on the device, silently: check on the host.
    for (int i = 0; i < N; i++)
        if (b->tokens[i] < 0 || b->tokens[i] >= g->V || b->pos[i] < 0 || b->pos[i] >= g->T)
            return vet_errf(err, "batch position %d: token %d or position %d outside [0, %d) / [0, %d)",
                            i, b->tokens[i], b->pos[i], g->V, g->T);
    size_t ni = (size_t)N * sizeof(int32_t);
    PROF(g, VET_PROF_TRANSFER);
    TRY(vet_cuda_upload(ctx, g->tokens, b->tokens, ni, err));
    TRY(vet_cuda_upload(ctx, g->pos, b->pos, ni, err));
    TRY(vet_cuda_upload(ctx, g->seg, b->seg, ni, err));

    PROF(g, VET_PROF_EMBEDDING);
    if (g->embed) TRY(embedding_forward_cuda(ctx, g->x, g->tokens, g->embed, N, C, err));
    else TRY(half_embedding(g, g->x, g->tokens, g->embed16, N, C, err));
    for (int l = 0; l < g->L; l++) TRY(layer_forward(g, l, b->B, b->T, 0, err));
    const float *xL = g->x + (size_t)g->L * NS * C;
    PROF(g, VET_PROF_NORM);
    TRY(rmsnorm_forward_cuda(ctx, g->lnf, g->rstdf, xL, g->final_norm, N, C, c->rms_eps, err));

    // The positions with a target, ascending (the CPU's order, so the loss sums alike).
    int n = 0;
    for (int i = 0; i < N; i++)
        if (b->targets[i] >= 0 && b->seg[i] >= 0) g->h_tgt_pos[n] = i, g->h_tgt[n] = b->targets[i], n++;
    g->n_tgt = n;
    double s = 0;
    if (n > 0) {
        PROF(g, VET_PROF_TRANSFER);
        TRY(vet_cuda_upload(ctx, g->tgt_pos, g->h_tgt_pos, (size_t)n * sizeof(int32_t), err));
        TRY(vet_cuda_upload(ctx, g->tgt, g->h_tgt, (size_t)n * sizeof(int32_t), err));
        // lnf_t (n,C) = lnf rows at tgt_pos: a gather, which is what an embedding lookup is
        PROF(g, VET_PROF_EMBEDDING);
        TRY(embedding_forward_cuda(ctx, g->lnf_t, g->tgt_pos, g->lnf, n, C, err));
        // Training: the loss gradient at lnf_t now, while each logits chunk is at hand (as
        // the CPU), so a LoRA backward never recomputes the logits.
        PROF(g, VET_PROF_LOSS);
        TRY(lmhead_loss(g, training ? g->dlnf_t : NULL, n, 1.0f, err));
        PROF(g, VET_PROF_TRANSFER);
        TRY(vet_cuda_download(ctx, g->h_loss, g->loss, (size_t)n * sizeof(float), err));
        for (int i = 0; i < n; i++) s += g->h_loss[i];
    }
    PROF(g, VET_PROF_NONE);
    TRY(vet_cuda_sync(ctx, err));
    if (g->prof) TRY(vet_gpu_profile_collect(g->prof, err));
    g->have_dlnf = training;
    g->last = b, g->bB = b->B, g->bT = b->T;
    if (loss_sum) *loss_sum = s;
    if (n_targets) *n_targets = n;
    return 0;
}

// ---------------------------------------------------------------------------------------
// Backward

// The gradient reaching a branch's projection output from the residual gradient dx: dx, or
// with residual dropout dx through the forward's mask, in g->h (free at both call sites: it
// is recomputed right after). As lib/model/forward_backward.c's resid_branch_grad.
static const float *resid_branch_grad(vet_gpu_model *g, const float *dx, int l, int branch, int N,
                                      vet_err *err) {
    if (g->resid_p <= 0.0f) return dx;
    size_t n = (size_t)N * g->C;
    if (g->prof && vet_gpu_profile_enter(g->prof, VET_PROF_DROPOUT, err) < 0) return NULL;
    if (vet_cuda_memset0(g->ctx, g->h, n * sizeof(float), err) < 0 ||
        dropout_backward_cuda(g->ctx, g->h, dx, g->resid_p, resid_seed(g->dropout_seed, l, branch), g->row0, N, g->C,
                              err) < 0)
        return NULL;
    return g->h;
}

int vet_gpu_backward(vet_gpu_model *g, float loss_scale, vet_train_mode mode, vet_err *err) {
    vet_cuda *ctx = g->ctx;
    const vet_config *c = &g->cfg;
    const vet_batch *b = g->last;
    if (!b) return vet_errf(err, "backward needs a completed forward first");
    int full = mode == VET_TRAIN_FULL;
    if (!full && !g->has_lora) return vet_errf(err, "LoRA training needs LoRA adapters on the model");
    if (full && !g->full)
        return vet_errf(err, "full training needs a GPU model made with VET_GPU_FULL (fp32 weights, "
                             "no adapters)");
    int N = g->bB * g->bT, C = g->C, F = g->F, n = g->n_tgt, fmt = half_fmt(g);
    size_t NS = g->N, fs = sizeof(float);
    float *gw = full ? g->grads : NULL;  // base weight grads, offsets as in w_mem
#define GW(o) (gw ? gw + (o) : NULL)

    // --- loss -> lnf ---
    float *dlnf = g->dh;  // (N,C), rows without a target stay 0
    PROF(g, VET_PROF_MEMSET);
    TRY(vet_cuda_memset0(ctx, dlnf, (size_t)N * C * fs, err));
    if (n > 0) {
        PROF(g, VET_PROF_LOSS);
        if (!g->have_dlnf)
            TRY(lmhead_loss(g, g->dlnf_t, n, 1.0f, err));
        if (full)  // d lm_head (V,C) += loss_scale * dlogits^T · lnf_t: the logits once more
            TRY(lmhead_crossentropy_cuda(ctx, g->loss, NULL, GW(g->o_lm_head), g->lnf_t, g->lm_head,
                                         g->tgt, n, C, g->V, loss_scale, g->chunk, g->ce_rows, err));
        // scatter the target rows back (an embedding backward into zeros), then scale
        PROF(g, VET_PROF_EMBEDDING);
        TRY(embedding_backward_cuda(ctx, dlnf, g->dlnf_t, g->tgt_pos, n, C, err));
        PROF(g, VET_PROF_RESIDUAL);
        TRY(scale_inplace_cuda(ctx, dlnf, loss_scale, (size_t)N * C, err));
    }
    g->have_dlnf = 1;
    float *dx = g->dx;  // gradient of the residual stream, walking down the layers
    PROF(g, VET_PROF_MEMSET);
    TRY(vet_cuda_memset0(ctx, dx, (size_t)N * C * fs, err));
    PROF(g, VET_PROF_NORM);
    TRY(rmsnorm_backward_cuda(ctx, dx, GW(g->o_final_norm), dlnf, g->x + (size_t)g->L * NS * C,
                              g->final_norm, g->rstdf, N, C, err));

    for (int l = g->L - 1; l >= 0; l--) {
        // checkpointed: layer l's activations again, from its kept input, just before use
        if (l < g->n_recompute) TRY(layer_forward(g, l, g->bB, g->bT, 1, err));
        layer_acts a = acts_of(g, l);
        float *x = g->x + l * NS * C, *xmid = a.xmid, *q = a.q, *k = a.k, *v = a.v, *att = a.att;
        float *gate = a.gate, *up = a.up;
        const float *anorm = g->attn_norm + (size_t)l * C, *mnorm = g->mlp_norm + (size_t)l * C;
        size_t o_anorm = g->o_attn_norm + (size_t)l * C, o_mnorm = g->o_mlp_norm + (size_t)l * C;
        // The projections' inputs, made again where their backward reads them (input_in_backward):
        // in fp32 (h, act), or with lora16 the 16-bit copy the forward made (xb16, free here).
        // MLP: x'' = x' + down(silu(g)*u), g,u from h2 = norm(x')
        if (input_in_backward(g, VET_LORA_DOWN, full)) {
            PROF(g, VET_PROF_SWIGLU);
            TRY(swiglu_any(g, g->lora16 ? NULL : g->act, g->lora16 ? g->xb16 : NULL, &a, N, err));
        }
        const float *dbranch = resid_branch_grad(g, dx, l, 1, N, err);
        if (!dbranch) return -1;
        TRY(proj_backward(g, l, 6, g->dact, dbranch, NULL, g->act, g->xb16, N, full, 1, err));
        // written, not added: no zeroing pass (the CPU's order); straight into 16 bits when only
        // 16-bit readers want them, each in the first half of its fp32 buffer
        const int d16 = mlp_douts16(g, full);
        uint16_t *dgate16 = d16 ? (uint16_t *)g->dgate : NULL, *dup16 = d16 ? (uint16_t *)g->dup : NULL;
        PROF(g, VET_PROF_SWIGLU);
        if (g->mlp16)  // (mlp16 implies d16)
            TRY(swiglu_backward_in16_cuda(ctx, dgate16, dup16, fmt, g->dact, a.gate16, a.up16, (size_t)N * F, err));
        else if (d16)
            TRY(swiglu_backward_half_cuda(ctx, dgate16, dup16, fmt, g->dact, gate, up, (size_t)N * F, err));
        else TRY(swiglu_backward_set_cuda(ctx, g->dgate, g->dup, g->dact, gate, up, (size_t)N * F, err));
        if (input_in_backward(g, MLP_IN, full)) {  // rstd2 is kept
            PROF(g, VET_PROF_NORM);
            if (g->lora16)
                TRY(rmsnorm_forward_fused_cuda(ctx, NULL, g->xb16, fmt, a.rstd2, xmid, NULL, mnorm, N, C, c->rms_eps,
                                               err));
            else TRY(rmsnorm_forward_cuda(ctx, g->h, a.rstd2, xmid, mnorm, N, C, c->rms_eps, err));
        }
        TRY(proj_backward(g, l, 4, g->dh, d16 ? NULL : g->dgate, dgate16, g->h, g->xb16, N, full, 1, err));
        TRY(proj_backward(g, l, 5, g->dh, d16 ? NULL : g->dup, dup16, g->h, g->xb16, N, full, 0, err));
        PROF(g, VET_PROF_NORM);
        TRY(rmsnorm_backward_cuda(ctx, dx, GW(o_mnorm), g->dh, xmid, mnorm, a.rstd2, N, C, err));
        // attention: x' = x + o(attn(rope(q), rope(k), v)), q,k,v from h = norm(x)
        if (!(dbranch = resid_branch_grad(g, dx, l, 0, N, err))) return -1;
        if (g->lora16 && !g->att_bf16 && (g->targets & VET_LORA_O))  // (att_bf16: the forward's bf16 output)
            TRY(to_half(g, g->xb16, att, (size_t)N * g->Q, err));
        TRY(proj_backward(g, l, 3, g->datt, dbranch, NULL, att, g->att_bf16 ? a.att16 : g->xb16, N, full, 1,
                          err));
        PROF(g, VET_PROF_ATTENTION);  // dq, dk, dv written (not added): no zeroing pass
        if (g->attn_tc) {  // datt rounded into db16, free between the projections' backward passes
            TRY(to_half(g, g->db16, g->datt, (size_t)N * g->Q, err));
            PROF(g, VET_PROF_ATTENTION);
            TRY(attention_backward_bf16_cuda(ctx, g->dq, g->dk, g->dv, g->datt, g->db16, a.q16, a.k16, a.v16, att,
                                             a.att16, a.lse, g->seg, g->bB, g->bT, g->H, g->KVH, g->hd, 0,
                                             g->attn_scratch, err));
        } else {
            TRY(attention_backward_cuda(ctx, g->dq, g->dk, g->dv, g->datt, q, k, v, att, a.lse, g->seg, g->bB,
                                        g->bT, g->H, g->KVH, g->hd, 0, g->attn_scratch, err));
        }
        // dq, dk through RoPE's transpose: in place, or where only bf16 readers want them
        // (qk_douts16) rounded into db16 right before each projection's backward
        const int qk16 = qk_douts16(g, full);
        if (!qk16) {
            PROF(g, VET_PROF_ROPE);
            TRY(rope_backward_cuda(ctx, g->dq, g->pos, g->cos_t, g->sin_t, N, g->H, g->hd, err));
            TRY(rope_backward_cuda(ctx, g->dk, g->pos, g->cos_t, g->sin_t, N, g->KVH, g->hd, err));
        }
        if (input_in_backward(g, QKV_IN, full)) {
            PROF(g, VET_PROF_NORM);
            if (g->lora16)
                TRY(rmsnorm_forward_fused_cuda(ctx, NULL, g->xb16, fmt, a.rstd1, x, NULL, anorm, N, C, c->rms_eps,
                                               err));
            else TRY(rmsnorm_forward_cuda(ctx, g->h, a.rstd1, x, anorm, N, C, c->rms_eps, err));
        }
        if (qk16) {
            PROF(g, VET_PROF_ROPE);
            TRY(rope_backward_bf16_cuda(ctx, g->db16, g->dq, g->pos, g->cos_t, g->sin_t, N, g->H, g->hd, err));
        }
        TRY(proj_backward(g, l, 0, g->dh, qk16 ? NULL : g->dq, qk16 ? g->db16 : NULL, g->h, g->xb16, N, full, 1, err));
        if (qk16) {
            PROF(g, VET_PROF_ROPE);
            TRY(rope_backward_bf16_cuda(ctx, g->db16, g->dk, g->pos, g->cos_t, g->sin_t, N, g->KVH, g->hd, err));
        }
        TRY(proj_backward(g, l, 1, g->dh, qk16 ? NULL : g->dk, qk16 ? g->db16 : NULL, g->h, g->xb16, N, full, 0, err));
        TRY(proj_backward(g, l, 2, g->dh, g->dv, NULL, g->h, g->xb16, N, full, 0, err));
        PROF(g, VET_PROF_NORM);
        TRY(rmsnorm_backward_cuda(ctx, dx, GW(o_anorm), g->dh, x, anorm, a.rstd1, N, C, err));
    }
    PROF(g, VET_PROF_EMBEDDING);
    if (full) TRY(embedding_backward_cuda(ctx, GW(g->o_embed), dx, g->tokens, N, C, err));
#undef GW
    PROF(g, VET_PROF_NONE);
    TRY(vet_cuda_sync(ctx, err));
    return g->prof ? vet_gpu_profile_collect(g->prof, err) : 0;
}

#else  // built without CUDA

#define NO_CUDA(err) vet_errf(err, "vet was built without CUDA (rebuild with nvcc on PATH)")

int vet_gpu_forward(vet_gpu_model *g, const vet_batch *b, double *loss_sum, int *n_targets,
                    int training, uint64_t dropout_seed, vet_err *err) {
    return NO_CUDA(err);
}
int vet_gpu_backward(vet_gpu_model *g, float loss_scale, vet_train_mode mode, vet_err *err) {
    return NO_CUDA(err);
}

#endif
