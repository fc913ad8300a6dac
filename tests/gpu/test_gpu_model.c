// test_gpu_model.c — kernels/host/gpu_model.c against the CPU model core (lib/model/forward_backward.c).
//
// Tiny random models (LLaMA with GQA; Qwen2 with q/k/v biases and tied embeddings), three
// packed rows of different lengths (padding), LoRA on every projection with B != 0 so A gets
// a gradient too. Checks: loss and every LoRA gradient (and in full mode every base weight
// gradient) within 1e-5 relative of the CPU, dropout with the CPU's masks, 5 AdamW steps
// against adamw_update, the training backend tables (CUDA's against the CPU's), bf16 and fp16
// weights within their tolerances, the memory plan, refusals.
//
// Built two ways: against the real kernels (mk/gpu.mk, $(BUILD)/tests/gpu/test_gpu_model):
// the GPU model parity check, `skip` on a machine without a GPU; and against the CPU
// stand-in of kernels/ops_cuda.h (mk/gpustub.mk, build/standin/test_gpu_model, always under
// ASan + UBSan): the host orchestration checked on any machine.
// Errors are max |gpu - cpu| / max |cpu| per tensor (as tests/gpu/op_parity.c).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test_util.h"  // ctx, no_gpu, LLAMA, QWEN, max_rel, roundtrip_weights, ...
#include "base/rng.h"
#include "kernels/host/gpu_train_backend.h"
#include "model/ops.h"
#include "train/trainer.h"

#define TOL 1e-5

// An MLP narrower than the attention (hidden 12 < Q 32, KV 16): the attention's gradients do
// not fit the MLP's buffers, so they get their own (kernels/host/gpu_plan.c).
static const tiny_shape NARROW = {32, 12, 4, 2, 8, 61, 64, 64, 500.0f, 10.0f};
static const tiny_shape *llama_shape = &LLAMA;  // VAR_LLAMA's shape in make_model

static unsigned model_targets = VET_LORA_ALL;  // the adapted projections in make_model
static int model_rank = 4;                      // and their rank

static void make_model(vet_model *m, int variant, int lora, float dropout) {
    tiny_model(m, variant, variant == VAR_QWEN_TIED ? &QWEN : llama_shape, 11);
    if (!lora) return;
    vet_err err;
    if (vet_model_add_lora(m, model_rank, 8.0f, dropout, 0, model_targets, 5, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    // B starts at zero (A's gradient would be zero): random A and B test both.
    vet_rng r;
    vet_rng_seed(&r, 9);
    for (size_t i = 0; i < m->n_lora; i++) m->lora_mem[i] = 0.2f * (float)vet_rng_normal(&r);
}

// Three packed rows: samples back to back, rows of 19, 12 and 7 tokens (padding in the last
// two). Targets: the next token inside the sample, -1 on each sample's first ("prompt") and
// last position.
typedef struct {
    int32_t tok[3][19], tgt[3][19], starts[3][4];
    vet_row rows[3];
    vet_batch b;
} batch3;

static void make_batch(batch3 *x, int V, uint64_t seed) {
    vet_rng g;
    vet_rng_seed(&g, seed);
    int n[3] = {19, 12, 7}, ns[3] = {4, 2, 1};
    int st[3][4] = {{0, 6, 9, 15}, {0, 1, 0, 0}, {0, 0, 0, 0}};
    for (int row = 0; row < 3; row++) {
        for (int i = 0; i < n[row]; i++) x->tok[row][i] = (int32_t)vet_rng_below(&g, V);
        for (int s = 0; s < ns[row]; s++) {
            int a = st[row][s], e = s + 1 < ns[row] ? st[row][s + 1] : n[row];
            for (int i = a; i < e; i++) x->tgt[row][i] = i + 1 < e ? x->tok[row][i + 1] : -1;
            x->tgt[row][a] = -1;
        }
        memcpy(x->starts[row], st[row], sizeof st[row]);
        x->rows[row] = (vet_row){x->tok[row], x->tgt[row], x->starts[row], n[row], ns[row]};
    }
    vet_err err;
    if (vet_batch_from_rows(&x->b, x->rows, 3, V, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
}

// Compares a gradient tensor; prints the error when it is over tol.
static void check_tensor(const char *name, const float *got, const float *want, size_t n, double tol) {
    double e = max_rel(got, want, n);
    if (!(e <= tol)) fprintf(stderr, "  %s: max rel err %.3g (tol %.0e)\n", name, e, tol);
    CHECK(e <= tol);
}

// Returns the worst max rel error over the tensors.
static double check_lora_grads(const vet_model *m, const float *got, const float *want, double tol) {
    char name[64];
    double worst = 0;
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!m->lora.A[t]) continue;
        int out, in;
        vet_lora_dims(&m->cfg, t, &out, &in);
        size_t L = m->cfg.n_layers, r = m->lora.r;
        size_t oa = m->lora.A[t] - m->lora_mem, ob = m->lora.B[t] - m->lora_mem;
        double ea = max_rel(got + oa, want + oa, L * r * in), eb = max_rel(got + ob, want + ob, L * out * r);
        snprintf(name, sizeof name, "lora %s A", vet_lora_target_name(t));
        check_tensor(name, got + oa, want + oa, L * r * in, tol);
        snprintf(name, sizeof name, "lora %s B", vet_lora_target_name(t));
        check_tensor(name, got + ob, want + ob, L * out * r, tol);
        if (ea > worst) worst = ea;
        if (eb > worst) worst = eb;
    }
    printf("# worst LoRA grad rel err %.3g\n", worst);
    return worst;
}

// One forward + backward on both sides, the GPU model made with capacity capB x capT;
// loss and LoRA grads compared within tol_loss, tol_grad. The GPU's backward runs on the loss
// times gpu_scale and its grads are divided by gpu_scale after (vet-train --fp16's loss
// scaling; a power of two, so exact in fp32); the CPU's runs unscaled. Returns the worst LoRA
// gradient error (-1 when the GPU model could not run).
static int64_t parity_row0;  // the batch's row0 in lora_parity (a rank's share: test_lora_dropout)

static double lora_parity_scaled(int variant, float dropout, int training, int capB, int capT, unsigned flags,
                               float gpu_scale, double tol_loss, double tol_grad) {
    double worst = -1;
    vet_model m;
    make_model(&m, variant, 1, dropout);
    batch3 x;
    make_batch(&x, m.cfg.vocab_size, 3);
    x.b.row0 = parity_row0;
    vet_err err;
    vet_acts *a = vet_acts_new(&m, x.b.B, x.b.T, &err);
    vet_gpu_opts o = {.flags = flags};
    vet_gpu_model *g = vet_gpu_model_new(ctx, &m, capB, capT, &o, &err);
    if (!g) fprintf(stderr, "  %s\n", err.msg);
    CHECK(a && g);
    if (a && g) {
        double lc, lg;
        int nc, ng;
        uint64_t seed = 77;
        float *gc = calloc(m.n_lora, sizeof(float)), *gg = calloc(m.n_lora, sizeof(float));
        CHECK(vet_model_forward(&m, a, &x.b, NULL, &lc, &nc, training, seed, &err) == 0);
        CHECK(vet_model_backward(&m, a, &x.b, 1.0f / nc, VET_TRAIN_LORA, gc, &err) == 0);
        int rc = vet_gpu_forward(g, &x.b, &lg, &ng, training, seed, &err);
        if (rc == 0) rc = vet_gpu_backward(g, gpu_scale / ng, VET_TRAIN_LORA, &err);
        if (rc == 0) rc = vet_gpu_download_grads(g, gg, m.n_lora, &err);
        if (rc) fprintf(stderr, "  %s\n", err.msg);
        if (gpu_scale != 1.0f)
            for (size_t i = 0; i < m.n_lora; i++) gg[i] /= gpu_scale;
        CHECK(rc == 0);
        CHECK(ng == nc && nc > 0);
        printf("# loss cpu %.9g gpu %.9g rel %.3g\n", lc / nc, lg / ng, fabs(lg - lc) / fabs(lc));
        CHECK(fabs(lg - lc) <= tol_loss * fabs(lc));
        worst = check_lora_grads(&m, gg, gc, tol_grad);
        if (rc) worst = -1;
        free(gc), free(gg);
    }
    vet_gpu_model_free(g);
    vet_acts_free(a);
    vet_batch_free(&x.b);
    vet_model_free(&m);
    return worst;
}

static void lora_parity(int variant, float dropout, int training, int capB, int capT, unsigned flags,
                        double tol_loss, double tol_grad) {
    lora_parity_scaled(variant, dropout, training, capB, capT, flags, 1.0f, tol_loss, tol_grad);
}

static void test_lora_llama_gqa(void) {
    if (!ctx) SKIP(no_gpu);
    lora_parity(VAR_LLAMA, 0.0f, 1, 3, 19, 0, TOL, TOL);
}

// Capacity larger than the batch: every per-layer stride is the capacity's, not the batch's.
static void test_lora_capacity_larger(void) {
    if (!ctx) SKIP(no_gpu);
    lora_parity(VAR_LLAMA, 0.0f, 1, 4, 25, 0, TOL, TOL);
}

// Qwen2: biases, tied lm_head; an eval forward (training 0) then backward recomputes the loss
// gradient in backward, as the CPU does.
static void test_lora_qwen_bias_tied(void) {
    if (!ctx) SKIP(no_gpu);
    lora_parity(VAR_QWEN_TIED, 0.0f, 0, 3, 19, 0, TOL, TOL);
    lora_parity(VAR_QWEN_TIED, 0.0f, 1, 3, 19, 0, TOL, TOL);
}

// LoRA dropout: the masks come from the CPU's streams, so results agree as without dropout.
static void test_lora_dropout(void) {
    if (!ctx) SKIP(no_gpu);
    lora_parity(VAR_LLAMA, 0.25f, 1, 3, 19, 0, TOL, TOL);
    lora_parity(VAR_QWEN_TIED, 0.1f, 1, 3, 19, 0, TOL, TOL);
    parity_row0 = 45;  // a data-parallel share's row key offset: the device keys its masks by it too
    lora_parity(VAR_LLAMA, 0.25f, 1, 3, 19, 0, TOL, TOL);
    parity_row0 = 0;
}

// bf16 base weights: GEMM inputs rounded to bf16 (8 bits of mantissa), so only close.
static void test_lora_bf16(void) {
    if (!ctx) SKIP(no_gpu);
    lora_parity(VAR_LLAMA, 0.0f, 1, 3, 19, VET_GPU_BF16, 1e-2, 1e-1);
    lora_parity(VAR_QWEN_TIED, 0.0f, 1, 3, 19, VET_GPU_BF16, 1e-2, 1e-1);
}

// One forward + backward of the GPU model alone: loss per token and LoRA grads (n_lora).
static int gpu_lora_step(const vet_model *m, const vet_batch *b, unsigned flags, double *loss, float *grads) {
    vet_err err;
    vet_gpu_opts o = {.flags = flags};
    vet_gpu_model *g = vet_gpu_model_new(ctx, m, b->B, b->T, &o, &err);
    int n = 0, rc = g ? vet_gpu_forward(g, b, loss, &n, 1, 77, &err) : -1;
    if (rc == 0) rc = vet_gpu_backward(g, 1.0f / n, VET_TRAIN_LORA, &err);
    if (rc == 0) rc = vet_gpu_download_grads(g, grads, m->n_lora, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    if (n > 0) *loss /= n;
    vet_gpu_model_free(g);
    return rc;
}

// A switch between two kernels of one mode: the steps with `flags` and with `flags | sw` must
// differ (the switch works; with must_differ) by at most tol_loss in the loss and tol_grad in the
// worst LoRA gradient, relative; `what` names them in the log.
static void switch_compare(const vet_model *m, const vet_batch *b, unsigned flags, unsigned sw, double tol_loss,
                           double tol_grad, const char *what, int must_differ) {
    double l_on = 0, l_off = 0;
    float *g_on = calloc(m->n_lora, sizeof(float)), *g_off = calloc(m->n_lora, sizeof(float));
    CHECK(gpu_lora_step(m, b, flags, &l_on, g_on) == 0);
    CHECK(gpu_lora_step(m, b, flags | sw, &l_off, g_off) == 0);
    printf("# flags %#x, %s: loss %.9g and %.9g\n", flags, what, l_on, l_off);
    CHECK(fabs(l_on - l_off) <= tol_loss * fabs(l_off));
    double worst = check_lora_grads(m, g_on, g_off, tol_grad);  // each tensor within tol_grad
    if (must_differ) CHECK(l_on != l_off && memcmp(g_on, g_off, m->n_lora * sizeof(float)) != 0 && worst > 0);
    free(g_on), free(g_off);
}
static void switch_differs(const vet_model *m, const vet_batch *b, unsigned flags, unsigned sw, double tol_loss,
                           double tol_grad, const char *what) {
    switch_compare(m, b, flags, sw, tol_loss, tol_grad, what, 1);
}

// The same where the switch must change nothing: the same loss and gradient bits.
static void switch_inert(const vet_model *m, const vet_batch *b, unsigned flags, unsigned sw) {
    double l_on = 0, l_off = 0;
    float *g_on = calloc(m->n_lora, sizeof(float)), *g_off = calloc(m->n_lora, sizeof(float));
    CHECK(gpu_lora_step(m, b, flags, &l_on, g_on) == 0);
    CHECK(gpu_lora_step(m, b, flags | sw, &l_off, g_off) == 0);
    CHECK(l_on == l_off && memcmp(g_on, g_off, m->n_lora * sizeof(float)) == 0);
    free(g_on), free(g_off);
}

// The switch tests' setting: a LLaMA-shaped model with rank-1 adapters, dropout 0.1, and batch 3.
typedef struct {
    vet_model m;
    batch3 x;
} switch_fixture;
static void switch_fixture_make(switch_fixture *f) {
    make_model(&f->m, VAR_LLAMA, 1, 0.1f);
    make_batch(&f->x, f->m.cfg.vocab_size, 3);
}
static void switch_fixture_free(switch_fixture *f) {
    vet_batch_free(&f->x.b);
    vet_model_free(&f->m);
}

// bf16 storage runs attention on tensor cores (attention_*_bf16_cuda, whose arithmetic the
// stand-in replays); VET_GPU_ATTN_FP32 keeps the fp32 kernels. The two must differ (the switch
// works) by no more than bf16 rounding (the replay is the same attention), with dropout. fp16
// storage keeps the fp32 attention: the flag changes nothing there.
static void test_lora_bf16_attention(void) {
    if (!ctx) SKIP(no_gpu);
    switch_fixture f;
    switch_fixture_make(&f);
    switch_differs(&f.m, &f.x.b, VET_GPU_BF16, VET_GPU_ATTN_FP32, 5e-3, 1e-1,
                   "attention on tensor cores, fp32 attention");
    switch_inert(&f.m, &f.x.b, VET_GPU_FP16, VET_GPU_ATTN_FP32);
    switch_fixture_free(&f);
}

// 16-bit storage runs the adapters' long products on tensor cores (lora_*_mma_cuda: operands
// rounded to the format, as a 16-bit-autocast PEFT); VET_GPU_LORA_NO_MMA keeps the CUDA-core
// kernels (fp32 adapters on the 16-bit values). With dropout, on the recipe's targets and on all
// seven, bf16 and fp16: the two must differ (the switch works) by no more than the rounding of
// the adapters' operands (fp16's 8x finer than bf16's); both are within the modes' tolerances of
// the CPU (lora_parity, test_lora_fp16's). fp32 storage has no such products. bf16's gradient
// tolerance, 7e-2: measured 4.6e-2 on the recipe's targets, 5.3e-2 since the attention's
// backward takes D from its bf16 output (one more rounding in each layer, on both sides).
static void test_lora_mma(void) {
    if (!ctx) SKIP(no_gpu);
    for (int pass = 0; pass < 2; pass++) {
        model_targets = pass == 0 ? VET_LORA_Q | VET_LORA_K | VET_LORA_V | VET_LORA_O : VET_LORA_ALL;
        switch_fixture f;
        switch_fixture_make(&f);
        printf("# targets %#x\n", model_targets);
        switch_differs(&f.m, &f.x.b, VET_GPU_BF16, VET_GPU_LORA_NO_MMA, 1e-3, 7e-2,
                       "adapters on tensor cores, CUDA cores");
        lora_parity(VAR_LLAMA, 0.1f, 1, 3, 19, VET_GPU_BF16 | VET_GPU_LORA_NO_MMA, 1e-2, 1e-1);
        switch_differs(&f.m, &f.x.b, VET_GPU_FP16, VET_GPU_LORA_NO_MMA, 2e-4, 1e-2,
                       "adapters on tensor cores, CUDA cores");
        CHECK(lora_parity_scaled(VAR_LLAMA, 0.1f, 1, 3, 19, VET_GPU_FP16, 1024.0f, 1e-3, 2e-2) > 0);
        switch_inert(&f.m, &f.x.b, 0, VET_GPU_LORA_NO_MMA);
        switch_fixture_free(&f);
    }
    model_targets = VET_LORA_ALL;
}

// VET_GPU_LORA_UP_KERNEL: the adapters' up product by lora_up_cuda instead of cuBLAS's SGEMM.
// The same numbers up to the order of the rank's sum: within fp32's rounding of each other in
// fp32 and bf16, with dropout (on the stand-in, whose SGEMM is the CPU's BLAS, possibly the same
// bits; vet-train's profile shows the route taken, test_train_device.sh 7f), and against the CPU
// within fp32's tolerance.
static void test_lora_up_kernel(void) {
    if (!ctx) SKIP(no_gpu);
    switch_fixture f;
    switch_fixture_make(&f);
    switch_compare(&f.m, &f.x.b, 0, VET_GPU_LORA_UP_KERNEL, 1e-6, 1e-4, "up product by cuBLAS, by lora_up_cuda", 0);
    switch_compare(&f.m, &f.x.b, VET_GPU_BF16, VET_GPU_LORA_UP_KERNEL, 1e-5, 1e-3,
                   "up product by cuBLAS, by lora_up_cuda", 0);
    lora_parity(VAR_LLAMA, 0.1f, 1, 3, 19, VET_GPU_LORA_UP_KERNEL, TOL, TOL);
    switch_fixture_free(&f);
}

// fp16 base weights (VET_GPU_FP16, vet-train --fp16): bf16's mode in IEEE fp16, the backward
// unscaled and with GradScaler's first loss scale 65536 (grads divided on the host, as the
// trainer's lib/train/loss_scale.h has them). Tolerances: fp16 keeps 10 mantissa bits to
// bf16's 7, so its rounding error is 8x smaller; bf16's tolerances (1e-2 loss, 1e-1 grads)
// / 8, rounded: loss 1e-3 and grads 2e-2 (measured: loss 7e-5, grads 2.4e-3 and 6.4e-3, either scale). 2e-2 is below
// what bf16 itself measures here (2.3e-2, 3.0e-2), so fp16 silently stored as bf16 fails; an
// error of 0 (the GEMM inputs not rounded at all) fails too.
static void test_lora_fp16(void) {
    if (!ctx) SKIP(no_gpu);
    const float S[2] = {1.0f, 65536.0f};
    for (int i = 0; i < 2; i++) {
        printf("# fp16, loss scale %g\n", S[i]);
        CHECK(lora_parity_scaled(VAR_LLAMA, 0.0f, 1, 3, 19, VET_GPU_FP16, S[i], 1e-3, 2e-2) > 0);
        CHECK(lora_parity_scaled(VAR_QWEN_TIED, 0.1f, 1, 3, 19, VET_GPU_FP16, S[i], 1e-3, 2e-2) > 0);
    }
}

// Full training: every base weight's gradient (tied: lm_head's lands in embed's slot).
static void full_parity(int variant) {
    vet_model m;
    make_model(&m, variant, 0, 0.0f);
    batch3 x;
    make_batch(&x, m.cfg.vocab_size, 4);
    vet_err err;
    vet_acts *a = vet_acts_new(&m, x.b.B, x.b.T, &err);
    vet_gpu_opts o = {.flags = VET_GPU_FULL};
    vet_gpu_model *g = vet_gpu_model_new(ctx, &m, x.b.B, x.b.T, &o, &err);
    if (!g) fprintf(stderr, "  %s\n", err.msg);
    CHECK(a && g);
    if (a && g) {
        double lc, lg;
        int nc, ng;
        float *gc = calloc(m.n_w, sizeof(float)), *gg = calloc(m.n_w, sizeof(float));
        CHECK(vet_model_forward(&m, a, &x.b, NULL, &lc, &nc, 1, 0, &err) == 0);
        CHECK(vet_model_backward(&m, a, &x.b, 1.0f / nc, VET_TRAIN_FULL, gc, &err) == 0);
        int rc = vet_gpu_forward(g, &x.b, &lg, &ng, 1, 0, &err);
        if (rc == 0) rc = vet_gpu_backward(g, 1.0f / ng, VET_TRAIN_FULL, &err);
        if (rc == 0) rc = vet_gpu_download_grads(g, gg, m.n_w, &err);
        if (rc) fprintf(stderr, "  %s\n", err.msg);
        CHECK(rc == 0 && ng == nc);
        CHECK(fabs(lg - lc) <= TOL * fabs(lc));
        const vet_weights *w = &m.w;
        const vet_config *c = &m.cfg;
        size_t L = c->n_layers, C = c->dim, F = c->hidden_dim, V = c->vocab_size;
        size_t Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
        struct { const char *name; const float *p; size_t n; } t[] = {
            {"embed", w->embed, V * C}, {"attn_norm", w->attn_norm, L * C}, {"wq", w->wq, L * Q * C},
            {"wk", w->wk, L * KV * C}, {"wv", w->wv, L * KV * C}, {"bq", w->bq, L * Q},
            {"bk", w->bk, L * KV}, {"bv", w->bv, L * KV}, {"wo", w->wo, L * C * Q},
            {"mlp_norm", w->mlp_norm, L * C}, {"wgate", w->wgate, L * F * C}, {"wup", w->wup, L * F * C},
            {"wdown", w->wdown, L * C * F}, {"final_norm", w->final_norm, C},
            {"lm_head", w->lm_head, V * C},
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
            if (!t[i].p) continue;
            size_t off = t[i].p - m.w_mem;
            check_tensor(t[i].name, gg + off, gc + off, t[i].n, TOL);
        }
        free(gc), free(gg);
    }
    vet_gpu_model_free(g);
    vet_acts_free(a);
    vet_batch_free(&x.b);
    vet_model_free(&m);
}

static void test_full_llama(void) {
    if (!ctx) SKIP(no_gpu);
    full_parity(VAR_LLAMA);
}

static void test_full_qwen_tied(void) {
    if (!ctx) SKIP(no_gpu);
    full_parity(VAR_QWEN_TIED);
}

// 5 steps of the trainer's loop on both sides: two micro-batches accumulated per step,
// clipping by the downloaded norm, AdamW with weight decay, grads zeroed.
static void test_adamw_steps(void) {
    if (!ctx) SKIP(no_gpu);
    vet_model m;
    make_model(&m, VAR_LLAMA, 1, 0.1f);
    batch3 x[2];
    make_batch(&x[0], m.cfg.vocab_size, 5);
    make_batch(&x[1], m.cfg.vocab_size, 6);
    vet_err err;
    vet_acts *a = vet_acts_new(&m, 3, 19, &err);
    vet_gpu_model *g = vet_gpu_model_new(ctx, &m, 3, 19, NULL, &err);
    if (!g) fprintf(stderr, "  %s\n", err.msg);
    CHECK(a && g);
    size_t n = m.n_lora;
    float *gc = calloc(n, 4), *gg = calloc(n, 4), *mc = calloc(n, 4), *vc = calloc(n, 4);
    vet_model mg;  // receives the GPU's parameters
    make_model(&mg, VAR_LLAMA, 1, 0.1f);
    for (int step = 1; step <= 5 && a && g && !check_failures_; step++) {
        int total = vet_batch_n_targets(&x[0].b) + vet_batch_n_targets(&x[1].b);
        double lc = 0, lg = 0;
        for (int mi = 0; mi < 2; mi++) {
            double s;
            int nt;
            uint64_t seed = vet_rng_hash(step, mi);
            CHECK(vet_model_forward(&m, a, &x[mi].b, NULL, &s, &nt, 1, seed, &err) == 0);
            CHECK(vet_model_backward(&m, a, &x[mi].b, 1.0f / total, VET_TRAIN_LORA, gc, &err) == 0);
            lc += s;
            int rc = vet_gpu_forward(g, &x[mi].b, &s, &nt, 1, seed, &err);
            if (rc == 0) rc = vet_gpu_backward(g, 1.0f / total, VET_TRAIN_LORA, &err);
            if (rc) fprintf(stderr, "  %s\n", err.msg);
            CHECK(rc == 0);
            lg += s;
        }
        CHECK(fabs(lg - lc) <= TOL * fabs(lc));
        // clip at a norm below the gradient's, so the scaling path runs
        CHECK(vet_gpu_download_grads(g, gg, n, &err) == 0);
        check_lora_grads(&m, gg, gc, TOL);
        double nc2 = 0, ng2 = 0;
        for (size_t i = 0; i < n; i++) nc2 += (double)gc[i] * gc[i], ng2 += (double)gg[i] * gg[i];
        double coef_c = 0.5 * sqrt(nc2) / (sqrt(nc2) + 1e-6), coef_g = 0.5 * sqrt(nc2) / (sqrt(ng2) + 1e-6);
        // two segments with different weight decay, as the trainer's; the device scales
        // inside the step, the CPU before it
        scale_inplace(gc, (float)coef_c, n);
        float lr = 1e-2f;
        size_t half = n / 2;
        adamw_update(m.lora_mem, gc, 1.0f, mc, vc, half, lr, 0.9f, 0.999f, 1e-8f, 0.01f, step);
        adamw_update(m.lora_mem + half, gc + half, 1.0f, mc + half, vc + half, n - half, lr, 0.9f, 0.999f,
                     1e-8f, 0.0f, step);
        CHECK(vet_gpu_adamw_step(g, 0, half, (float)coef_g, lr, 0.9f, 0.999f, 1e-8f, 0.01f, step, &err) == 0);
        CHECK(vet_gpu_adamw_step(g, half, n - half, (float)coef_g, lr, 0.9f, 0.999f, 1e-8f, 0.0f, step, &err) == 0);
        memset(gc, 0, n * 4);
        CHECK(vet_gpu_zero_grads(g, &err) == 0);
        CHECK(vet_gpu_download_lora(g, &mg, &err) == 0);
        double e = max_rel(mg.lora_mem, m.lora_mem, n);
        printf("# step %d: loss cpu %.9g gpu %.9g, params max rel err %.3g\n", step,
                lc / total, lg / total, e);
        CHECK(e <= TOL);
    }
    // The steps moved the adapters (the comparison above is not of two untouched copies).
    vet_model m0;
    make_model(&m0, VAR_LLAMA, 1, 0.1f);
    CHECK(max_rel(m.lora_mem, m0.lora_mem, n) > 1e-3);
    vet_model_free(&m0);
    free(gc), free(gg), free(mc), free(vc);
    vet_model_free(&mg);
    vet_gpu_model_free(g);
    vet_acts_free(a);
    for (int i = 0; i < 2; i++) vet_batch_free(&x[i].b);
    vet_model_free(&m);
}

// The gradients' norm and first non-finite index reduced on the device (vet_gpu_grad_stats):
// the norm is vet_train_grad_norm's (bits on the stand-in; 1e-8 relative on a GPU, whose sum
// runs in another order), with and without fp16's unscale; planted inf / nan give the least
// index exactly and a non-finite norm; the gradients themselves are left as they were.
static void grad_stats_case(void) {
    vet_model m;
    make_model(&m, VAR_LLAMA, 1, 0.1f);
    vet_err err;
    vet_gpu_model *g = vet_gpu_model_new(ctx, &m, 2, 8, NULL, &err);
    if (!g) fprintf(stderr, "  %s\n", err.msg);
    CHECK(g);
    size_t n = m.n_lora, bad = 0;
    float *h = malloc(n * 4), *back = malloc(n * 4);
    vet_rng r;
    vet_rng_seed(&r, 7);
    for (size_t i = 0; i < n; i++) h[i] = (float)vet_rng_normal(&r) * 100.0f;
    double norm = -1;
    CHECK(g && vet_gpu_upload_grads(g, h, n, &err) == 0);
    for (int k = 0; k < 2 && g; k++) {
        float unscale = k ? 1.0f / 1024.0f : 1.0f;
        double want = vet_train_grad_norm(h, n, unscale);
        CHECK(vet_gpu_grad_stats(g, unscale, &norm, &bad, &err) == 0);
        printf("# grad_stats unscale %g: norm %.17g, cpu %.17g\n", unscale, norm, want);
        CHECK(fabs(norm - want) <= 1e-8 * want && bad == n);
    }
    // the inf comes first; with rank over 32 it is inside up's B (target 5), whose device index
    // is another
    size_t first = model_rank > 32 ? (size_t)(m.lora.B[5] - m.lora_mem) + 7 * model_rank + 40 : n / 2;
    h[n - 3] = NAN, h[first] = INFINITY;
    CHECK(g && vet_gpu_upload_grads(g, h, n, &err) == 0);
    CHECK(g && vet_gpu_grad_stats(g, 1.0f, &norm, &bad, &err) == 0);
    CHECK(!isfinite(norm) && bad == first);
    CHECK(g && vet_gpu_download_grads(g, back, n, &err) == 0);
    CHECK(memcmp(back, h, n * 4) == 0);
    free(h), free(back);
    vet_gpu_model_free(g);
    vet_model_free(&m);
}

static void test_grad_stats(void) {
    if (!ctx) SKIP(no_gpu);
    grad_stats_case();
    model_rank = 64;  // B's columns in blocks on the device: the host's indices come back
    grad_stats_case();
    model_rank = 4;
}

// Rank over 32 (vet's adapter kernels take blocks of 32; the device keeps B's columns in blocks,
// kernels/host/gpu_lora_layout.c): the loss and the gradients (back in the host's layout) to the
// CPU's tolerance in fp32, with dropout; to bf16's with the 16-bit adapters, on tensor cores and
// on CUDA cores; 48 = 32 + a narrower last block; the adapters and both AdamW moments go up and
// come back bit for bit.
static void test_lora_rank_blocks(void) {
    if (!ctx) SKIP(no_gpu);
    const int ranks[2] = {64, 48};
    for (int i = 0; i < 2; i++) {
        model_rank = ranks[i];
        printf("# rank %d\n", model_rank);
        lora_parity(VAR_LLAMA, 0.25f, 1, 3, 19, 0, TOL, TOL);
        lora_parity(VAR_LLAMA, 0.0f, 1, 3, 19, VET_GPU_BF16, 1e-2, 1e-1);
    }
    model_rank = 64;
    lora_parity(VAR_QWEN_TIED, 0.1f, 1, 3, 19, VET_GPU_BF16 | VET_GPU_LORA_NO_MMA, 1e-2, 1e-1);
    lora_parity(VAR_QWEN_TIED, 0.1f, 1, 3, 19, VET_GPU_LORA_UP_KERNEL, TOL, TOL);
    vet_model m, m2;
    make_model(&m, VAR_LLAMA, 1, 0.0f);
    make_model(&m2, VAR_LLAMA, 1, 0.0f);
    vet_err err;
    vet_gpu_model *g = vet_gpu_model_new(ctx, &m, 2, 8, NULL, &err);
    CHECK(g);
    size_t n = m.n_lora;
    float *mv = malloc(4 * n * sizeof(float)), *back = mv + 2 * n;
    for (size_t i = 0; i < 2 * n; i++) mv[i] = (float)i * 0.5f;
    memset(m2.lora_mem, 0, n * sizeof(float));
    CHECK(g && vet_gpu_download_lora(g, &m2, &err) == 0 && memcmp(m2.lora_mem, m.lora_mem, n * 4) == 0);
    CHECK(g && vet_gpu_upload_state(g, m.lora_mem, mv, mv + n, n, &err) == 0);
    CHECK(g && vet_gpu_download_state(g, NULL, back, back + n, n, &err) == 0 && memcmp(back, mv, 2 * n * 4) == 0);
    free(mv);
    vet_gpu_model_free(g);
    vet_model_free(&m), vet_model_free(&m2);
    model_rank = 4;
}

// The training backend tables (lib/train/backend.h): three steps of the trainer's phases
// through the CUDA backend (kernels/host/gpu_train_backend.c) and through the CPU's, each on
// its own copy of the model: losses, norms, parameters and both AdamW moments agree; the
// state pushed up from the host is the device's (an evaluation forward agrees again); the
// notes name the device and the memory plan.
static char note_text[2048];
static void collect_note(const char *line, void *nctx) {
    size_t len = strlen(note_text);
    snprintf(note_text + len, sizeof note_text - len, "%s\n", line);
}

static int twice_f32(void *c, float *x, size_t n, vet_err *err) {
    (void)c, (void)err;
    for (size_t i = 0; i < n; i++) x[i] *= 2;
    return 0;
}
static const vet_comm two_ranks = {.name = "twice", .size = 2, .allreduce_f32 = twice_f32};

static void test_train_backends(void) {
    if (!ctx) SKIP(no_gpu);
    vet_model mc, mg;
    make_model(&mc, VAR_LLAMA, 1, 0.1f);
    make_model(&mg, VAR_LLAMA, 1, 0.1f);
    batch3 x[2];
    make_batch(&x[0], mc.cfg.vocab_size, 5);
    make_batch(&x[1], mc.cfg.vocab_size, 6);
    size_t n = mc.n_lora;
    float *cm = calloc(n, 4), *cv = calloc(n, 4), *gm = calloc(n, 4), *gv = calloc(n, 4);
    vet_train_opts o;
    vet_train_defaults(&o);
    o.resid_dropout = 0.1;
    vet_train_backend cpu, gpu;
    vet_err err;
    note_text[0] = 0;
    int rc = vet_cpu_train_backend(&o, NULL, NULL, &cpu, &err);
    if (rc == 0) rc = vet_cuda_train_backend(&o, collect_note, NULL, &gpu, &err);
    vet_train_setup sc = {.m = &mc, .mode = VET_TRAIN_LORA, .params = mc.lora_mem, .adam_m = cm, .adam_v = cv,
                          .n = n, .batch_size = 3, .max_len = 19, .max_rows = 6};
    vet_train_setup sg = sc;
    sg.m = &mg, sg.params = mg.lora_mem, sg.adam_m = gm, sg.adam_v = gv;
    if (rc == 0) rc = cpu.load(cpu.ctx, &sc, &err);
    if (rc == 0) rc = gpu.load(gpu.ctx, &sg, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    CHECK(rc == 0);
    CHECK_CONTAINS(note_text, "device cuda:0 ");
    CHECK_CONTAINS(note_text, ", base weights fp32\ndevice memory plan for batches of 3 x 19: weights ");
    CHECK(!gpu.loss_scaling);
    const vet_train_backend *be[2] = {&cpu, &gpu};
    for (int step = 1; step <= 3 && rc == 0 && !check_failures_; step++) {
        float inv = 1.0f / (float)(vet_batch_n_targets(&x[0].b) + vet_batch_n_targets(&x[1].b));
        double loss[2] = {0, 0}, norm[2];
        for (int k = 0; k < 2; k++) {
            for (int mi = 0; mi < 2; mi++) {
                double s;
                CHECK(be[k]->forward_backward(be[k]->ctx, &x[mi].b, vet_rng_hash(step, mi), inv, &s, &err) == 0);
                loss[k] += s;
            }
            // The sum over ranks through the host (no NCCL here): a stand-in communicator of
            // two ranks holding the same gradients doubles them, and the norm, exactly.
            double alone;
            CHECK(be[k]->grad_norm(be[k]->ctx, 1.0f, &alone, &err) == 0);
            CHECK(be[k]->allreduce_grads(be[k]->ctx, &two_ranks, &err) == 0);
            CHECK(be[k]->grad_norm(be[k]->ctx, 1.0f, &norm[k], &err) == 0);
            CHECK(norm[k] == 2 * alone);
            size_t bad;
            CHECK(be[k]->find_nonfinite_grad(be[k]->ctx, &bad) == 0);
            vet_adamw hp = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f,
                            .step = step, .grad_scale = (float)(0.5 * norm[0] / (norm[k] + 1e-6))};
            CHECK(be[k]->adamw_step(be[k]->ctx, 0, n / 2, &hp, &err) == 0);
            hp.weight_decay = 0;
            CHECK(be[k]->adamw_step(be[k]->ctx, n / 2, n - n / 2, &hp, &err) == 0);
            CHECK(be[k]->zero_grads(be[k]->ctx, &err) == 0 && be[k]->pull_state(be[k]->ctx, 1, &err) == 0);
        }
        double ep = max_rel(mg.lora_mem, mc.lora_mem, n), em = max_rel(gm, cm, n), ev = max_rel(gv, cv, n);
        printf("# step %d: loss cpu %.9g cuda %.9g, norm %.9g %.9g; params %.3g, adam_m %.3g, adam_v %.3g\n", step,
               loss[0], loss[1], norm[0], norm[1], ep, em, ev);
        CHECK(fabs(loss[1] - loss[0]) <= TOL * fabs(loss[0]) && fabs(norm[1] - norm[0]) <= TOL * norm[0]);
        CHECK(ep <= TOL && em <= TOL && ev <= TOL);
    }
    // The host's state pushed up replaces the device's: the CPU's parameters, then the same loss.
    memcpy(mg.lora_mem, mc.lora_mem, n * 4), memcpy(gm, cm, n * 4), memcpy(gv, cv, n * 4);
    double lc, lg;
    int nc, ng;
    CHECK(gpu.push_state(gpu.ctx, &err) == 0);
    CHECK(cpu.forward(cpu.ctx, &x[0].b, &lc, &nc, &err) == 0 && gpu.forward(gpu.ctx, &x[0].b, &lg, &ng, &err) == 0);
    CHECK(nc == ng && fabs(lg - lc) <= TOL * fabs(lc));
    if (cpu.free) cpu.free(cpu.ctx);
    if (gpu.free) gpu.free(gpu.ctx);
    free(cm), free(cv), free(gm), free(gv);
    for (int i = 0; i < 2; i++) vet_batch_free(&x[i].b);
    vet_model_free(&mc), vet_model_free(&mg);
}

// The training backend's --grad-checkpoint=auto under --device-memory (vet_train_opts.gpu_mem_cap):
// the fewest layers recomputed whose plan fits what the cap leaves after the headroom (256 MiB):
// none when the whole plan fits, 2 of 4 when exactly that plan fits (1 of 4 recomputed saves
// nothing: the recomputed layers share one slot), and a refusal naming the cap when not even
// every layer recomputed fits. A fixed count beyond the model's layers is refused by name.
static void test_train_backend_ckpt_auto(void) {
    if (!ctx) SKIP(no_gpu);
    vet_model m;
    tiny_n_layers = 4;
    make_model(&m, VAR_LLAMA, 1, 0.1f);
    tiny_n_layers = 2;
    vet_err err;
    size_t free_b, total_b;
    CHECK(vet_cuda_mem_info(ctx, &free_b, &total_b, &err) == 0);
    vet_gpu_plan p[5];  // p[k]: k layers recomputed (0: no checkpointing)
    for (int k = 0; k <= 4; k++) {
        vet_gpu_opts go = {.flags = k ? VET_GPU_CKPT : 0, .ckpt_layers = k};
        CHECK(vet_gpu_plan_for(&m.cfg, m.lora.r, m.lora.targets, 3, 19, &go, &p[k], &err) == 0);
    }
    CHECK(p[1].total == p[0].total && p[2].total < p[1].total && p[4].total < p[3].total);
    const size_t headroom = (size_t)256 << 20;
    CHECK(headroom + p[0].total < free_b);
    const size_t cap[4] = {headroom + p[0].total, headroom + p[2].total, headroom + p[4].total - 1, 0};
    const int layers[4] = {VET_CKPT_LAYERS_AUTO, VET_CKPT_LAYERS_AUTO, VET_CKPT_LAYERS_AUTO, 5};
    const char *want[4] = {"; gradient checkpointing: none needed (every layer's activations fit)\n",
                           "; gradient checkpointing: layer inputs kept, the first 2 of 4 layers recomputed in "
                           "backward (the other 2 keep their activations)\n",
                           "can be planned", "--grad-checkpoint=5: the model has 4 layers; give 1 to 4, or auto"};
    for (int i = 0; i < 4; i++) {
        vet_train_opts o;
        vet_train_defaults(&o);
        o.gpu_ckpt = 1, o.gpu_ckpt_layers = layers[i], o.gpu_mem_cap = cap[i];
        vet_train_backend gpu;
        note_text[0] = 0;
        int rc = vet_cuda_train_backend(&o, collect_note, NULL, &gpu, &err);
        CHECK(rc == 0);
        vet_train_setup sg = {.m = &m, .mode = VET_TRAIN_LORA, .params = m.lora_mem, .n = m.n_lora,
                              .batch_size = 3, .max_len = 19, .max_rows = 6};
        float *am = calloc(m.n_lora, 4), *av = calloc(m.n_lora, 4);
        sg.adam_m = am, sg.adam_v = av;
        rc = gpu.load(gpu.ctx, &sg, &err);
        printf("# cap %zu (plans: none %zu, 2 of 4 %zu, all %zu): %s%s\n", cap[i], p[0].total, p[2].total,
               p[4].total, rc ? "refused: " : "", rc ? err.msg : note_text);
        if (i < 2) {
            CHECK(rc == 0);
            CHECK_CONTAINS(note_text, want[i]);
        } else {
            CHECK(rc < 0);
            CHECK_CONTAINS(err.msg, want[i]);
        }
        if (i == 2) CHECK_CONTAINS(err.msg, " --device-memory allows can be planned");
        if (i == 3) CHECK(err.kind == VET_E_USAGE);
        if (gpu.free) gpu.free(gpu.ctx);
        free(am), free(av);
    }
    vet_model_free(&m);
}

// The plan: parts positive and adding up, the model allocated with exactly that plan, bf16
// smaller (its weights, and q, k, v kept in bf16 for the tensor-core attention: fp32 again with
// VET_GPU_ATTN_FP32), full training bigger, and a too-small limit refused with the numbers.
static void test_plan(void) {
    vet_model m;
    make_model(&m, VAR_QWEN_TIED, 1, 0.0f);
    vet_err err;
    vet_gpu_plan p, pb, pf;
    CHECK(vet_gpu_plan_bytes(&m.cfg, m.lora.r, m.lora.targets, 3, 19, 0, &p, &err) == 0);
    CHECK(p.weights > 0 && p.train > 0 && p.activations > 0 && p.scratch > 0);
    CHECK(p.total == p.weights + p.train + p.activations + p.scratch);
    CHECK(p.n_params == m.n_lora);
    CHECK(p.weights >= m.n_w * sizeof(float));
    CHECK(p.train >= 4 * m.n_lora * sizeof(float));  // A/B, grads, m, v
    CHECK(vet_gpu_plan_bytes(&m.cfg, m.lora.r, m.lora.targets, 3, 19, VET_GPU_BF16, &pb, &err) == 0);
    size_t L = m.cfg.n_layers, NQ = (size_t)3 * 19 * m.cfg.n_heads * m.cfg.head_dim,
           NKV = (size_t)3 * 19 * m.cfg.n_kv_heads * m.cfg.head_dim;
    // q, k, v and the attention's output (att16: its adapter on o reads the 16-bit copy) in bf16,
    // and gate and up (mlp16: their adapters read the 16-bit copies and add into 16 bits)
    size_t NF = (size_t)3 * 19 * m.cfg.hidden_dim;
    size_t mlp16 = 2 * (plan_aligned(L * NF * 4) - plan_aligned(L * NF * 2));
    size_t qkv16 = 2 * (plan_aligned(L * NQ * 4) - plan_aligned(L * NQ * 2)) +
                   2 * (plan_aligned(L * NKV * 4) - plan_aligned(L * NKV * 2));
    CHECK(pb.weights < p.weights && pb.activations == p.activations - qkv16 - mlp16);
    CHECK(vet_gpu_plan_bytes(&m.cfg, m.lora.r, m.lora.targets, 3, 19, VET_GPU_BF16 | VET_GPU_ATTN_FP32, &pb,
                             &err) == 0);
    CHECK(pb.activations == p.activations - mlp16);
    CHECK(vet_gpu_plan_bytes(&m.cfg, 0, 0, 3, 19, VET_GPU_FULL, &pf, &err) == 0);
    CHECK(pf.train >= 3 * m.n_w * sizeof(float) && pf.n_params == m.n_w);
    // activations grow with B x T
    vet_gpu_plan p2;
    CHECK(vet_gpu_plan_bytes(&m.cfg, m.lora.r, m.lora.targets, 6, 19, 0, &p2, &err) == 0);
    CHECK(p2.activations > p.activations && p2.weights == p.weights);
    // refusals that need no device
    CHECK(vet_gpu_plan_bytes(&m.cfg, 0, 0, 3, 19, VET_GPU_FULL | VET_GPU_BF16, &pf, &err) < 0);
    CHECK_CONTAINS(err.msg, "fp32");
    CHECK(vet_gpu_plan_bytes(&m.cfg, 4, VET_LORA_ALL, 3, 19, VET_GPU_FULL, &pf, &err) < 0);
    CHECK(vet_gpu_plan_bytes(&m.cfg, 4, VET_LORA_ALL, 0, 19, 0, &pf, &err) < 0);
    if (ctx) {
        vet_gpu_model *g = vet_gpu_model_new(ctx, &m, 3, 19, NULL, &err);
        CHECK(g != NULL);
        if (g) CHECK(memcmp(vet_gpu_model_plan(g), &p, sizeof p) == 0);
        vet_gpu_model_free(g);
        vet_gpu_opts o = {.mem_limit = p.total - 1};
        g = vet_gpu_model_new(ctx, &m, 3, 19, &o, &err);
        CHECK(g == NULL);
        CHECK_CONTAINS(err.msg, "GiB on the device");
        CHECK_CONTAINS(err.msg, "3 x 19");
        char total[32];
        snprintf(total, sizeof total, "%.2f GiB", p.total / (1024.0 * 1024.0 * 1024.0));
        CHECK_CONTAINS(err.msg, total);
        o.mem_limit = p.total;  // exactly enough is enough
        g = vet_gpu_model_new(ctx, &m, 3, 19, &o, &err);
        CHECK(g != NULL);
        vet_gpu_model_free(g);
    }
    vet_model_free(&m);
}

// What the model refuses, cleanly.
static void test_refusals(void) {
    if (!ctx) SKIP(no_gpu);
    vet_model m;
    make_model(&m, VAR_LLAMA, 1, 0.0f);
    batch3 x;
    make_batch(&x, m.cfg.vocab_size, 3);
    vet_err err;
    vet_gpu_model *g = vet_gpu_model_new(ctx, &m, 3, 18, NULL, &err);  // one position short
    CHECK(g != NULL);
    if (g) {
        CHECK(vet_gpu_backward(g, 1.0f, VET_TRAIN_LORA, &err) < 0);
        CHECK_CONTAINS(err.msg, "forward first");
        CHECK(vet_gpu_forward(g, &x.b, NULL, NULL, 1, 0, &err) < 0);
        CHECK_CONTAINS(err.msg, "does not fit");
        CHECK(vet_gpu_backward(g, 1.0f, VET_TRAIN_FULL, &err) < 0);
        CHECK(vet_gpu_adamw_step(g, 1, m.n_lora, 1.0f, 1e-3f, 0.9f, 0.999f, 1e-8f, 0, 1, &err) < 0);
        CHECK_CONTAINS(err.msg, "outside");
        float one;
        CHECK(vet_gpu_download_grads(g, &one, 1, &err) < 0);
        vet_batch small = x.b;  // the first 18 positions of each row... as one row of 18
        small.B = 1, small.T = 18;
        small.tokens[3] = m.cfg.vocab_size;  // a token outside the vocabulary
        CHECK(vet_gpu_forward(g, &small, NULL, NULL, 1, 0, &err) < 0);
        CHECK_CONTAINS(err.msg, "outside");
        small.tokens[3] = 0;
        double s;
        int nt;
        CHECK(vet_gpu_forward(g, &small, &s, &nt, 1, 0, &err) == 0);  // and fine again
        CHECK(nt > 0 && s > 0);
    }
    vet_gpu_model_free(g);
    vet_gpu_opts full = {.flags = VET_GPU_FULL};
    g = vet_gpu_model_new(ctx, &m, 3, 19, &full, &err);  // full training with adapters attached
    CHECK(g == NULL);
    CHECK_CONTAINS(err.msg, "LoRA");
    vet_batch_free(&x.b);
    vet_model_free(&m);
}

// --- quantized base weights -----------------------------------------------------------------

// ||got - want|| / ||want||
static double rel_l2(const float *got, const float *want, size_t n) {
    double d2 = 0, n2 = 0;
    for (size_t i = 0; i < n; i++) d2 += ((double)got[i] - want[i]) * ((double)got[i] - want[i]), n2 += (double)want[i] * want[i];
    return sqrt(d2 / (n2 > 0 ? n2 : 1));
}

// One forward + backward: loss and LoRA grads of a GPU model made with flags.
static int gpu_step(const vet_model *m, const vet_batch *b, unsigned flags, double *loss, float *grads, vet_err *err) {
    vet_gpu_opts o = {.flags = flags};
    vet_gpu_model *g = vet_gpu_model_new(ctx, m, b->B, b->T, &o, err);
    if (!g) return -1;
    int n;
    int rc = vet_gpu_forward(g, b, loss, &n, 1, 77, err);
    if (rc == 0) rc = vet_gpu_backward(g, 1.0f / n, VET_TRAIN_LORA, err);
    if (rc == 0) rc = vet_gpu_download_grads(g, grads, m->n_lora, err);
    vet_gpu_model_free(g);
    return rc;
}

// qflag (VET_GPU_INT8 / NF4) with compute flags (0 or VET_GPU_BF16):
//  - bit-identical loss and grads to the unquantized GPU model (same compute flags) on the
//    host-dequantized weights: the quantize -> upload -> dequantize-on-device chain is exact;
//  - within tol_loss / tol_grad of the fp32 CPU model on the original weights. That check
//    uses the same model at its init scale (matrix_scale 1): the usual test model's matrices
//    are 10x the init (so every path carries a gradient), which makes it so sensitive that
//    NF4's weight noise turns its LoRA gradients by ~60% (measured) and says nothing.
static void quant_parity(int variant, unsigned qflag, unsigned compute, double tol_loss, double tol_grad) {
    vet_err err;
    for (int gentle = 0; gentle < 2; gentle++) {
        vet_model m, mq;
        if (!gentle) {
            make_model(&m, variant, 1, 0.0f);
            make_model(&mq, variant, 1, 0.0f);
        } else {
            tiny_shape sh = variant == VAR_QWEN_TIED ? QWEN : LLAMA;
            sh.matrix_scale = 1.0f;
            tiny_model(&m, variant, &sh, 11);
            CHECK(vet_model_add_lora(&m, 4, 8.0f, 0.0f, 0, VET_LORA_ALL, 5, &err) == 0);
            vet_rng r;
            vet_rng_seed(&r, 9);
            for (size_t i = 0; i < m.n_lora; i++) m.lora_mem[i] = 0.2f * (float)vet_rng_normal(&r);
        }
        batch3 x;
        make_batch(&x, m.cfg.vocab_size, 3);
        size_t n = m.n_lora;
        float *gq = calloc(n, 4), *gr = calloc(n, 4), *gc = calloc(n, 4);
        double lq, lr, lc;
        int rc = gpu_step(&m, &x.b, qflag | compute, &lq, gq, &err);
        if (rc) fprintf(stderr, "  quantized: %s\n", err.msg);
        CHECK(rc == 0);
        if (!gentle) {
            roundtrip_weights(&mq, qflag);
            rc = gpu_step(&mq, &x.b, compute, &lr, gr, &err);
            if (rc) fprintf(stderr, "  dequantized reference: %s\n", err.msg);
            CHECK(rc == 0);
            CHECK(memcmp(&lq, &lr, sizeof lq) == 0);
            CHECK(memcmp(gq, gr, n * sizeof(float)) == 0);
            vet_model_free(&mq);
        } else {  // against the fp32 CPU model on the original weights
            vet_acts *a = vet_acts_new(&m, x.b.B, x.b.T, &err);
            int nc;
            CHECK(a && vet_model_forward(&m, a, &x.b, NULL, &lc, &nc, 1, 77, &err) == 0);
            CHECK(vet_model_backward(&m, a, &x.b, 1.0f / nc, VET_TRAIN_LORA, gc, &err) == 0);
            // the whole LoRA gradient: ||g_q - g|| / ||g||; bf16's own error as a yardstick
            CHECK(gpu_step(&m, &x.b, VET_GPU_BF16, &lr, gr, &err) == 0);
            double eq = rel_l2(gq, gc, n), eb = rel_l2(gr, gc, n);
            printf("# %s%s: loss cpu fp32 %.7g, quantized %.7g (rel %.3g, tol %.2g); LoRA grads rel L2 error "
                   "%.3g (tol %.2g; bf16 weights alone: %.3g)\n", qflag == VET_GPU_INT8 ? "int8" : "nf4",
                   compute ? " bf16" : "", lc / nc, lq / nc, fabs(lq - lc) / fabs(lc), tol_loss, eq, tol_grad, eb);
            CHECK(fabs(lq - lc) <= tol_loss * fabs(lc));
            CHECK(eq <= tol_grad);
            CHECK(lq != lc);  // the quantization did change something
            vet_acts_free(a);
        }
        free(gq), free(gr), free(gc);
        vet_batch_free(&x.b);
        vet_model_free(&m);
    }
}

// Tolerances (against the fp32 CPU model at init scale). Weight error, measured on these
// models: int8 0.55% rms (scale/2 = max|row|/254 at most), NF4 ~10% rms (16 levels per block
// of 64). The loss moves by ~1e-4 (int8) and ~5e-4 (NF4) relative: tolerances 1e-3 and 5e-3.
// The LoRA gradients amplify the weight noise, by up to ~14x in these width-32 models (Qwen:
// 0.55% rms weights -> 7.8% rel L2 grads; bf16 weights alone give 1.7%): tolerances 0.15
// (int8) and 0.5 (NF4, measured 0.13-0.22) on ||g_q - g|| / ||g||. These only say that the
// quantization is the intended one; the exact checks against the dequantized model pin the
// chain.
static void test_quant_int8(void) {
    if (!ctx) SKIP(no_gpu);
    quant_parity(VAR_LLAMA, VET_GPU_INT8, 0, 1e-3, 0.15);
    quant_parity(VAR_QWEN_TIED, VET_GPU_INT8, 0, 1e-3, 0.15);
}

static void test_quant_nf4(void) {
    if (!ctx) SKIP(no_gpu);
    quant_parity(VAR_LLAMA, VET_GPU_NF4, 0, 5e-3, 0.5);
    quant_parity(VAR_QWEN_TIED, VET_GPU_NF4, 0, 5e-3, 0.5);  // blocks across rows, partial last blocks
}

// The production mode: quantized storage, bf16 GEMMs (bf16's error is small next to these).
static void test_quant_bf16(void) {
    if (!ctx) SKIP(no_gpu);
    quant_parity(VAR_LLAMA, VET_GPU_INT8, VET_GPU_BF16, 1e-3, 0.15);
    quant_parity(VAR_QWEN_TIED, VET_GPU_NF4, VET_GPU_BF16, 5e-3, 0.5);
}

// The plan counts the quantized matrices at 1 byte + a fp32 scale per row (int8), 0.5 byte
// + a fp32 absmax per 64 (nf4); the rest of the weights as in bf16 mode; the dequantization
// scratch is one matrix. Refusals: both quantizations, quantization with full training.
static void test_quant_plan(void) {
    vet_model m;
    make_model(&m, VAR_QWEN_TIED, 1, 0.0f);
    const vet_config *c = &m.cfg;
    vet_err err;
    vet_gpu_plan pb, p8, p4, p8f;
    CHECK(vet_gpu_plan_bytes(c, m.lora.r, m.lora.targets, 3, 19, VET_GPU_BF16, &pb, &err) == 0);
    CHECK(vet_gpu_plan_bytes(c, m.lora.r, m.lora.targets, 3, 19, VET_GPU_BF16 | VET_GPU_INT8, &p8, &err) == 0);
    CHECK(vet_gpu_plan_bytes(c, m.lora.r, m.lora.targets, 3, 19, VET_GPU_BF16 | VET_GPU_NF4, &p4, &err) == 0);
    CHECK(vet_gpu_plan_bytes(c, m.lora.r, m.lora.targets, 3, 19, VET_GPU_INT8, &p8f, &err) == 0);
    size_t L = c->n_layers, C = c->dim, V = c->vocab_size, Q = (size_t)c->n_heads * c->head_dim;
    size_t KV = (size_t)c->n_kv_heads * c->head_dim;
#define AL plan_aligned
    // the rest: norms, biases, lm_head (this model's embedding is tied to it): 16-bit with bf16
    // compute, fp32 with fp32 compute
    size_t small = AL(L * C * 4) * 2 + AL(C * 4) + AL(L * Q * 4) + AL(L * KV * 4) * 2;
    size_t rest = small + AL(V * C * 2), rest32 = small + AL(V * C * 4);
    matrix_bytes mb = plan_matrix_bytes(c);
    size_t most = mb.most;
    CHECK(p8.weights == mb.b8 + rest);
    CHECK(p4.weights == mb.b4 + rest);
    CHECK(p8f.weights == mb.b8 + rest32);
    CHECK(p4.weights < p8.weights && p8.weights < pb.weights);
    CHECK(p8.train == pb.train && p8.activations == pb.activations);
    CHECK(p8.scratch == pb.scratch + AL(most * 2));   // one bf16 matrix
    size_t NW = (size_t)3 * 19 * ((size_t)c->hidden_dim > C ? (size_t)c->hidden_dim : C);  // the bf16 GEMM inputs' size
    size_t ce16 = (size_t)3 * 19 * (C + V) * 2;  // the loss side's 16-bit inputs (every row: a small vocabulary)
    // fp32: no 16-bit GEMM inputs, nor (the adapters reading those: lora16) 16-bit douts apart
    // from them, one fp32 matrix
    CHECK(p8f.scratch + 2 * AL(NW * 2) + AL(ce16) == pb.scratch + AL(most * 4));
#undef AL
    CHECK(vet_gpu_plan_bytes(c, 4, VET_LORA_ALL, 3, 19, VET_GPU_INT8 | VET_GPU_NF4, &p8, &err) < 0);
    CHECK_CONTAINS(err.msg, "choose one");
    CHECK(vet_gpu_plan_bytes(c, 0, 0, 3, 19, VET_GPU_FULL | VET_GPU_NF4, &p8, &err) < 0);
    CHECK_CONTAINS(err.msg, "LoRA");
    if (ctx) {  // the model is allocated with exactly its plan
        vet_gpu_opts o = {.flags = VET_GPU_BF16 | VET_GPU_NF4};
        vet_gpu_model *g = vet_gpu_model_new(ctx, &m, 3, 19, &o, &err);
        CHECK(g && memcmp(vet_gpu_model_plan(g), &p4, sizeof p4) == 0);
        vet_gpu_model_free(g);
    }
    vet_model_free(&m);
}

// The figures: llama-7b, LoRA r 16 on q,k,v,o, batches of 4 x 512, in bf16, int8 and
// nf4 (bf16 compute). Printed for docs/cuda.md; checked: the matrices shrink by the formats'
// ratios (int8 ~1/2 of bf16, nf4 ~0.258), nothing else changes but the dequantization scratch.
static void test_quant_plan_7b(void) {
    vet_config c;
    vet_err err;
    CHECK(vet_config_preset(&c, "llama-7b", &err) == 0);
    unsigned qkvo = VET_LORA_Q | VET_LORA_K | VET_LORA_V | VET_LORA_O;
    vet_gpu_plan p[3];
    const unsigned flags[3] = {VET_GPU_BF16, VET_GPU_BF16 | VET_GPU_INT8, VET_GPU_BF16 | VET_GPU_NF4};
    const char *name[3] = {"bf16", "int8", "nf4"};
    for (int i = 0; i < 3; i++) {
        CHECK(vet_gpu_plan_bytes(&c, 16, qkvo, 4, 512, flags[i], &p[i], &err) == 0);
        printf("# llama-7b r16 q,k,v,o 4x512 %s: weights %.2f GB, training state %.2f GB, activations %.2f GB, "
               "scratch %.2f GB; total %.2f GB (%.2f GiB)\n", name[i], p[i].weights / 1e9, p[i].train / 1e9,
               p[i].activations / 1e9, p[i].scratch / 1e9, p[i].total / 1e9, p[i].total / 1073741824.0);
    }
    // the projection matrices alone: 6.48 G parameters
    size_t L = c.n_layers, C = c.dim, V = c.vocab_size;
    double rest = (double)(2 * L * C + C) * 4 + (double)V * C * 2 * 2;  // norms; lm_head and embed bf16
    double mb = p[0].weights - rest, m8 = p[1].weights - rest, m4 = p[2].weights - rest;
    printf("# matrices: bf16 %.2f GB, int8 %.2f GB (x%.3f), nf4 %.2f GB (x%.3f)\n", mb / 1e9, m8 / 1e9, m8 / mb,
           m4 / 1e9, m4 / mb);
    CHECK(fabs(m8 / mb - (1 + 4.0 / 4096) / 2) < 1e-3);  // 1 byte + 4 per row of 4096 (or 11008)
    CHECK(fabs(m4 / mb - (0.5 + 1.0 / 64 + 4.0 / (64 * 256)) / 2) < 1e-3);  // nf4, double quantized
    CHECK(p[1].activations == p[0].activations && p[2].train == p[0].train);
}

// --- gradient checkpointing ------------------------------------------------------------------

// Two micro-batches accumulated (forward, backward, forward, backward) on a GPU model made with
// flags and capacity capB x capT: both losses and the gradients (n floats) out.
static int ckpt_layers = 0;  // ckpt_parity's vet_gpu_opts.ckpt_layers (0: every layer)

static int ckpt_run(const vet_model *m, const vet_batch *b0, const vet_batch *b1, unsigned flags, int capB,
                    int capT, int training, vet_train_mode mode, double loss[2], float *grads, size_t n,
                    vet_err *err) {
    vet_gpu_opts o = {.flags = flags, .ckpt_layers = flags & VET_GPU_CKPT ? ckpt_layers : 0};
    vet_gpu_model *g = vet_gpu_model_new(ctx, m, capB, capT, &o, err);
    if (!g) return -1;
    const vet_batch *b[2] = {b0, b1};
    int rc = 0, nt[2] = {0, 0};
    for (int i = 0; i < 2 && rc == 0; i++) {
        rc = vet_gpu_forward(g, b[i], &loss[i], &nt[i], training, 77 + i, err);
        if (rc == 0) rc = vet_gpu_backward(g, 1.0f / nt[i], mode, err);
    }
    if (rc == 0) rc = vet_gpu_download_grads(g, grads, n, err);
    vet_gpu_model_free(g);
    return rc;
}

// With VET_GPU_CKPT, and with it VET_GPU_CKPT_KEEP_ATTN: the same losses and gradients, bit for
// bit, as without it (same flags otherwise). The gradients must also be non-trivial, or the
// comparison would say nothing.
static void ckpt_parity(int variant, float dropout, unsigned flags, int training, int capB, int capT) {
    int full = (flags & VET_GPU_FULL) != 0;
    vet_model m;
    make_model(&m, variant, !full, dropout);
    batch3 x[2];
    make_batch(&x[0], m.cfg.vocab_size, 3);
    make_batch(&x[1], m.cfg.vocab_size, 8);
    size_t n = full ? m.n_w : m.n_lora;
    float *g0 = calloc(n, sizeof(float)), *g1 = calloc(n, sizeof(float));
    double l0[2], l1[2];
    vet_err err;
    vet_train_mode mode = full ? VET_TRAIN_FULL : VET_TRAIN_LORA;
    int rc = ckpt_run(&m, &x[0].b, &x[1].b, flags, capB, capT, training, mode, l0, g0, n, &err);
    if (rc) fprintf(stderr, "  plain: %s\n", err.msg);
    CHECK(rc == 0);
    // checkpointed, then checkpointed keeping the attention's output (its recompute skipped)
    const unsigned ckpt[2] = {VET_GPU_CKPT, VET_GPU_CKPT | VET_GPU_CKPT_KEEP_ATTN};
    for (int k = 0; k < 2; k++) {
        memset(g1, 0, n * sizeof(float));
        rc = ckpt_run(&m, &x[0].b, &x[1].b, flags | ckpt[k], capB, capT, training, mode, l1, g1, n, &err);
        if (rc) fprintf(stderr, "  checkpointed (%#x): %s\n", ckpt[k], err.msg);
        CHECK(rc == 0);
        CHECK(memcmp(l0, l1, sizeof l0) == 0);
        size_t differ = 0, nonzero = 0;
        for (size_t i = 0; i < n; i++) {
            differ += memcmp(&g0[i], &g1[i], sizeof(float)) != 0;
            nonzero += g0[i] != 0.0f;
        }
        printf("# ckpt%s (%d of %d layers recomputed) flags %#x dropout %.2f training %d: losses %.9g %.9g vs %.9g %.9g; %zu of %zu grads "
               "differ, %zu nonzero\n", k ? " keep-attention" : "", ckpt_layers ? ckpt_layers : m.cfg.n_layers,
               m.cfg.n_layers, flags, dropout, training, l0[0], l0[1], l1[0],
               l1[1], differ, n, nonzero);
        CHECK(differ == 0);
        CHECK(nonzero > n / 2);
    }
    free(g0), free(g1);
    for (int i = 0; i < 2; i++) vet_batch_free(&x[i].b);
    vet_model_free(&m);
}

static void test_ckpt_fp32(void) {
    if (!ctx) SKIP(no_gpu);
    ckpt_parity(VAR_LLAMA, 0.0f, 0, 1, 3, 19);
    ckpt_parity(VAR_LLAMA, 0.0f, 0, 1, 4, 25);  // capacity larger than the batch
}

// LoRA dropout: the recomputed layer draws the forward's masks again (same seeds).
static void test_ckpt_dropout(void) {
    if (!ctx) SKIP(no_gpu);
    ckpt_parity(VAR_LLAMA, 0.25f, 0, 1, 3, 19);
    ckpt_parity(VAR_QWEN_TIED, 0.1f, 0, 1, 3, 19);
}

// Qwen2: q/k/v biases, tied embeddings; an eval forward (no dropout, loss gradient made in
// backward) as well as a training one.
static void test_ckpt_qwen_bias(void) {
    if (!ctx) SKIP(no_gpu);
    ckpt_parity(VAR_QWEN_TIED, 0.0f, 0, 0, 3, 19);
    ckpt_parity(VAR_QWEN_TIED, 0.0f, 0, 1, 3, 19);
}

// The narrow MLP: against the CPU, and checkpointed against not.
static void test_narrow_mlp(void) {
    if (!ctx) SKIP(no_gpu);
    llama_shape = &NARROW;
    lora_parity(VAR_LLAMA, 0.1f, 1, 3, 19, 0, TOL, TOL);
    ckpt_parity(VAR_LLAMA, 0.1f, 0, 1, 3, 19);
    llama_shape = &LLAMA;
}

// bf16, int8 and nf4 base weights (fp32 and bf16 compute), with dropout; full training.
// A rank over 32 (blocks of 32, the recompute's down products in blocks too): checkpointed the
// same bits, bf16 with dropout.
static void test_ckpt_rank_blocks(void) {
    if (!ctx) SKIP(no_gpu);
    model_rank = 48;
    ckpt_parity(VAR_LLAMA, 0.1f, VET_GPU_BF16, 1, 3, 19);
    model_rank = 4;
}

static void test_ckpt_weights(void) {
    if (!ctx) SKIP(no_gpu);
    ckpt_parity(VAR_LLAMA, 0.1f, VET_GPU_BF16, 1, 3, 19);
    ckpt_parity(VAR_LLAMA, 0.1f, VET_GPU_INT8, 1, 3, 19);
    ckpt_parity(VAR_QWEN_TIED, 0.1f, VET_GPU_NF4 | VET_GPU_BF16, 1, 3, 19);
    ckpt_parity(VAR_LLAMA, 0.0f, VET_GPU_FULL, 1, 3, 19);
    ckpt_parity(VAR_QWEN_TIED, 0.0f, VET_GPU_FULL, 1, 3, 19);
}

// The reference recipe's targets (q, k, v, o) in the 16-bit modes: gate and up carry no adapter,
// so their GEMMs write 16 bits (mlp16) and SwiGLU reads those. Against the CPU within the
// 16-bit tolerances (bf16 with dropout, fp16 with loss scaling), and checkpointed bit for bit
// (an int8 base too: its dequantized GEMM into 16 bits).
static void test_lora_recipe_targets_16bit(void) {
    if (!ctx) SKIP(no_gpu);
    model_targets = VET_LORA_Q | VET_LORA_K | VET_LORA_V | VET_LORA_O;
    lora_parity(VAR_LLAMA, 0.1f, 1, 3, 19, VET_GPU_BF16, 1e-2, 1e-1);
    lora_parity(VAR_QWEN_TIED, 0.0f, 1, 3, 19, VET_GPU_BF16, 1e-2, 1e-1);
    CHECK(lora_parity_scaled(VAR_LLAMA, 0.1f, 1, 3, 19, VET_GPU_FP16, 1024.0f, 1e-3, 2e-2) > 0);
    ckpt_parity(VAR_LLAMA, 0.1f, VET_GPU_BF16, 1, 3, 19);
    ckpt_parity(VAR_QWEN_TIED, 0.1f, VET_GPU_INT8 | VET_GPU_BF16, 1, 3, 19);
    model_targets = VET_LORA_ALL;
}

// Only the first layers recomputed (vet_gpu_opts.ckpt_layers), the others keeping their
// activations: the same bits again. Four layers, so that two kept layers have two slots after
// the recomputed layers' one (a kept layer in the wrong slot would read another's activations).
static void test_ckpt_some_layers(void) {
    if (!ctx) SKIP(no_gpu);
    tiny_n_layers = 4;
    const int n[3] = {1, 2, 3};
    for (int i = 0; i < 3; i++) {
        ckpt_layers = n[i];
        ckpt_parity(VAR_LLAMA, 0.1f, VET_GPU_BF16, 1, 3, 19);
    }
    ckpt_layers = 2;
    ckpt_parity(VAR_QWEN_TIED, 0.1f, 0, 1, 3, 19);
    ckpt_parity(VAR_LLAMA, 0.0f, VET_GPU_FULL, 1, 3, 19);
    ckpt_layers = 0;
    tiny_n_layers = 2;
}

// The plan with VET_GPU_CKPT: weights, training state and scratch unchanged; the per-layer
// activations (all but the layer inputs x, the rope tables and the final norm's) counted for
// one layer instead of L, each buffer rounded to 256 bytes. The model is allocated with it.
static void test_ckpt_plan(void) {
    vet_model m;
    tiny_n_layers = 4;  // room for some layers recomputed and some kept (ckpt_layers)
    make_model(&m, VAR_QWEN_TIED, 1, 0.0f);
    tiny_n_layers = 2;
    const vet_config *c = &m.cfg;
    vet_err err;
    const unsigned modes[3] = {0, VET_GPU_BF16, VET_GPU_BF16 | VET_GPU_NF4};
    size_t L = c->n_layers, C = c->dim, F = c->hidden_dim, H = c->n_heads, N = 3 * 19, r = m.lora.r;
    size_t Q = H * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
#define AL plan_aligned
    // one layer's bytes of each per-layer buffer: xmid, rstd1, rstd2, q, k, v, att, lse, gate, up,
    // and u for each of the 7 adapted projections
    size_t per[17] = {N * C * 4, N * 4, N * 4, N * Q * 4, N * KV * 4, N * KV * 4, N * Q * 4, N * H * 4,
                      N * F * 4, N * F * 4};
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) per[10 + t] = N * r * 4;
    for (int i = 0; i < 3; i++) {
        // bf16 modes keep q, k, v in bf16 (the tensor-core attention's input), and the attention's
        // output, gate and up (their adapters reading the 16-bit copies at rank 1)
        const size_t qkv = modes[i] & VET_GPU_BF16 ? 2 : 4;
        per[3] = N * Q * qkv, per[4] = per[5] = N * KV * qkv, per[6] = N * Q * qkv;
        per[8] = per[9] = N * F * qkv;
        size_t saved = 0;
        for (int j = 0; j < 17; j++) saved += AL(L * per[j]) - AL(per[j]);
        vet_gpu_plan p, pc;
        CHECK(vet_gpu_plan_bytes(c, m.lora.r, m.lora.targets, 3, 19, modes[i], &p, &err) == 0);
        CHECK(vet_gpu_plan_bytes(c, m.lora.r, m.lora.targets, 3, 19, modes[i] | VET_GPU_CKPT, &pc, &err) == 0);
        CHECK(pc.weights == p.weights && pc.train == p.train && pc.scratch == p.scratch);
        CHECK(pc.activations == p.activations - saved);
        CHECK(pc.total == pc.weights + pc.train + pc.activations + pc.scratch);
        // keeping the attention's output: att (index 6) and lse (7) for every layer again
        vet_gpu_plan pk;
        CHECK(vet_gpu_plan_bytes(c, m.lora.r, m.lora.targets, 3, 19, modes[i] | VET_GPU_CKPT | VET_GPU_CKPT_KEEP_ATTN,
                                 &pk, &err) == 0);
        CHECK(pk.weights == p.weights && pk.train == p.train && pk.scratch == p.scratch);
        CHECK(pk.activations == pc.activations + AL(L * per[6]) - AL(per[6]) + AL(L * per[7]) - AL(per[7]));
        CHECK(pk.total == pk.weights + pk.train + pk.activations + pk.scratch);
        // the first k layers recomputed (ckpt_layers): they share one slot, the other L - k keep theirs
        for (size_t k = 1; k <= L; k++) {
            size_t kept = 0, kept_att = 0;
            for (int j = 0; j < 17; j++) kept += AL(L * per[j]) - AL((1 + L - k) * per[j]);
            for (int j = 6; j < 8; j++) kept_att += AL(L * per[j]) - AL((1 + L - k) * per[j]);
            vet_gpu_opts o = {.flags = modes[i] | VET_GPU_CKPT, .ckpt_layers = (int)k};
            vet_gpu_plan ps, psk;
            CHECK(vet_gpu_plan_for(c, m.lora.r, m.lora.targets, 3, 19, &o, &ps, &err) == 0);
            CHECK(ps.weights == p.weights && ps.train == p.train && ps.scratch == p.scratch);
            CHECK(ps.activations == p.activations - kept);
            CHECK(ps.total == ps.weights + ps.train + ps.activations + ps.scratch);
            o.flags |= VET_GPU_CKPT_KEEP_ATTN;  // att and lse: every layer's
            CHECK(vet_gpu_plan_for(c, m.lora.r, m.lora.targets, 3, 19, &o, &psk, &err) == 0);
            CHECK(psk.activations == ps.activations + kept_att);
            if (k == L) CHECK(ps.activations == pc.activations && psk.activations == pk.activations);
            if (ctx && i == 1 && k == 2) {  // allocated as planned
                vet_gpu_model *g = vet_gpu_model_new(ctx, &m, 3, 19, &o, &err);
                CHECK(g && memcmp(vet_gpu_model_plan(g), &psk, sizeof psk) == 0);
                vet_gpu_model_free(g);
            }
        }
        if (ctx && i == 2) {
            vet_gpu_opts o = {.flags = modes[i] | VET_GPU_CKPT};
            vet_gpu_model *g = vet_gpu_model_new(ctx, &m, 3, 19, &o, &err);
            CHECK(g && memcmp(vet_gpu_model_plan(g), &pc, sizeof pc) == 0);
            vet_gpu_model_free(g);
            o.flags |= VET_GPU_CKPT_KEEP_ATTN;
            g = vet_gpu_model_new(ctx, &m, 3, 19, &o, &err);
            CHECK(g && memcmp(vet_gpu_model_plan(g), &pk, sizeof pk) == 0);
            vet_gpu_model_free(g);
        }
    }
    // keeping the attention's output is a form of checkpointing: alone, refused by name
    vet_gpu_plan pr;
    CHECK(vet_gpu_plan_bytes(c, m.lora.r, m.lora.targets, 3, 19, VET_GPU_CKPT_KEEP_ATTN, &pr, &err) < 0);
    CHECK(strstr(err.msg, "VET_GPU_CKPT_KEEP_ATTN without VET_GPU_CKPT") != NULL);
    // layers to recompute: 1..L with VET_GPU_CKPT (0: all of them), none without it
    const int bad[3] = {-1, (int)L + 1, 2};
    const unsigned bad_flags[3] = {VET_GPU_CKPT, VET_GPU_CKPT, 0};
    for (int i = 0; i < 3; i++) {
        vet_gpu_opts o = {.flags = bad_flags[i], .ckpt_layers = bad[i]};
        CHECK(vet_gpu_plan_for(c, m.lora.r, m.lora.targets, 3, 19, &o, &pr, &err) < 0);
        CHECK(strstr(err.msg, "checkpointed layers: give 1 to 4 (the model's layers) with VET_GPU_CKPT") != NULL);
    }
#undef AL
    vet_model_free(&m);
}

// The figures with checkpointing: llama-7b, LoRA r 16 on q,k,v,o, batches of 4 x 512,
// bf16 / int8 / nf4 base weights (bf16 compute), against the targets 18 / 11 / 7 GB. Printed
// for docs/cuda.md; checked: activations are the layer inputs (33 x 4 x 512 x 4096 fp32) plus
// one layer's and the loss side's, the same in every mode.
static void test_ckpt_plan_7b(void) {
    vet_config c;
    vet_err err;
    CHECK(vet_config_preset(&c, "llama-7b", &err) == 0);
    unsigned qkvo = VET_LORA_Q | VET_LORA_K | VET_LORA_V | VET_LORA_O;
    const unsigned flags[3] = {VET_GPU_BF16, VET_GPU_BF16 | VET_GPU_INT8, VET_GPU_BF16 | VET_GPU_NF4};
    const char *name[3] = {"bf16", "int8", "nf4"};
    const double target[3] = {18e9, 11e9, 7e9};
    vet_gpu_plan p[3], pc[3];
    for (int i = 0; i < 3; i++) {
        CHECK(vet_gpu_plan_bytes(&c, 16, qkvo, 4, 512, flags[i], &p[i], &err) == 0);
        CHECK(vet_gpu_plan_bytes(&c, 16, qkvo, 4, 512, flags[i] | VET_GPU_CKPT, &pc[i], &err) == 0);
        printf("# llama-7b r16 q,k,v,o 4x512 %s checkpointed: weights %.2f GB, training state %.2f GB, "
               "activations %.2f GB (%.2f without), scratch %.2f GB; total %.2f GB (%.2f GiB), target %.0f GB: "
               "%s by %.2f GB\n", name[i], pc[i].weights / 1e9, pc[i].train / 1e9, pc[i].activations / 1e9,
               p[i].activations / 1e9, pc[i].scratch / 1e9, pc[i].total / 1e9, pc[i].total / 1073741824.0,
               target[i] / 1e9, pc[i].total <= target[i] ? "under" : "OVER",
               fabs(target[i] - (double)pc[i].total) / 1e9);
        CHECK(pc[i].activations == pc[0].activations);
        vet_gpu_plan pk;
        CHECK(vet_gpu_plan_bytes(&c, 16, qkvo, 4, 512, flags[i] | VET_GPU_CKPT | VET_GPU_CKPT_KEEP_ATTN, &pk,
                                 &err) == 0);
        printf("# llama-7b r16 q,k,v,o 4x512 %s checkpointed, attention kept: activations %.2f GB, total %.2f GB "
               "(%.2f GiB): %s the target by %.2f GB\n", name[i], pk.activations / 1e9, pk.total / 1e9,
               pk.total / 1073741824.0, pk.total <= target[i] ? "under" : "OVER",
               fabs(target[i] - (double)pk.total) / 1e9);
        // every layer's att (N x Q bf16: the attention writes it so) and lse (N x H fp32) but the
        // one the recompute held
        double kept = 31.0 * 4 * 512 * (4096 * 2 + 32 * 4);
        CHECK(fabs((double)(pk.activations - pc[i].activations) - kept) < 32 * 2 * 256);
        if (i == 0) CHECK(pk.total < 18e9);
        if (i == 2) CHECK(pk.total < 7e9);  // nf4 keeps the attention within its target too
    }
    // --grad-checkpoint=auto's choice under a memory budget: the fewest layers recomputed whose
    // plan fits (18 GB, the target's, and 22.5 GB, a 24 GB card less its context and headroom:
    // there nothing needs recomputing at 4 x 512)
    const double budget[2] = {18e9, 22.5e9};
    for (int b = 0; b < 2; b++) {
        int k = 0;
        vet_gpu_plan ps = {0};
        for (k = 0; k <= 32; k++) {
            vet_gpu_opts o = {.flags = flags[0] | (k ? VET_GPU_CKPT : 0), .ckpt_layers = k};
            CHECK(vet_gpu_plan_for(&c, 16, qkvo, 4, 512, &o, &ps, &err) == 0);
            if ((double)ps.total <= budget[b]) break;
        }
        printf("# llama-7b r16 q,k,v,o 4x512 bf16 within %.1f GB: %d of 32 layers recomputed, total %.2f GB "
               "(activations %.2f GB)\n", budget[b] / 1e9, k, ps.total / 1e9, ps.activations / 1e9);
        CHECK(k < 32);
        if (b == 0) CHECK(k > 0);  // at the target's 18 GB, neither extreme: something to choose
    }
    double x = 33.0 * 4 * 512 * 4096 * 4;  // the layer inputs
    CHECK(pc[0].activations > x && pc[0].activations < x + 0.6e9);
    CHECK(pc[0].total < 18e9 && pc[1].total < 11e9);
}

int main(void) {
    vet_set_threads(1);
    gpu_test_open();
    RUN(test_plan);
    RUN(test_lora_llama_gqa);
    RUN(test_lora_capacity_larger);
    RUN(test_lora_qwen_bias_tied);
    RUN(test_lora_dropout);
    RUN(test_lora_bf16);
    RUN(test_lora_rank_blocks);
    RUN(test_lora_bf16_attention);
    RUN(test_lora_mma);
    RUN(test_lora_up_kernel);
    RUN(test_lora_recipe_targets_16bit);
    RUN(test_lora_fp16);
    RUN(test_full_llama);
    RUN(test_full_qwen_tied);
    RUN(test_adamw_steps);
    RUN(test_grad_stats);
    RUN(test_train_backends);
    RUN(test_train_backend_ckpt_auto);
    RUN(test_refusals);
    RUN(test_quant_plan);
    RUN(test_quant_plan_7b);
    RUN(test_quant_int8);
    RUN(test_quant_nf4);
    RUN(test_quant_bf16);
    RUN(test_ckpt_plan);
    RUN(test_ckpt_plan_7b);
    RUN(test_ckpt_fp32);
    RUN(test_ckpt_dropout);
    RUN(test_ckpt_qwen_bias);
    RUN(test_ckpt_rank_blocks);
    RUN(test_ckpt_weights);
    RUN(test_ckpt_some_layers);
    RUN(test_narrow_mlp);
    vet_cuda_free(ctx);
    CHECK_EXIT();
}
