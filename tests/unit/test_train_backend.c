// test_train_backend.c — the training backend table (lib/train/backend.h) on the CPU, and fp16
// loss scaling (lib/train/loss_scale.h).
//
// The CPU backend must compute exactly what the model core does when called directly (the
// trainer's results before the backend table existed): a step through the table (forward and
// backward of two micro-batches, the norm, clipping, AdamW) is compared bit for bit with the
// same step written out with vet_model_forward / vet_model_backward / adamw_update. The CUDA
// backend is checked against this one in tests/gpu/test_gpu_model.c.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/ops.h"
#include "tiny_models.h"
#include "train/backend.h"
#include "train/loss_scale.h"
#include "train/trainer.h"

static const tiny_shape SHAPE = {16, 24, 4, 2, 4, 23, 64, 64, 500.0f, 10.0f};

static void die(const vet_err *err) {
    fprintf(stderr, "%s\n", err->msg);
    abort();
}

// A tiny LLaMA with LoRA on every projection, B random so that A gets a gradient too.
static void make_lora_model(vet_model *m) {
    vet_err err;
    tiny_model(m, VAR_LLAMA, &SHAPE, 3);
    if (vet_model_add_lora(m, 2, 4.0f, 0.1f, 0, VET_LORA_ALL, 5, &err)) die(&err);
    vet_rng r;
    vet_rng_seed(&r, 9);
    for (size_t i = 0; i < m->n_lora; i++) m->lora_mem[i] = 0.3f * (float)vet_rng_normal(&r);
}

// One row of n tokens (one sample; the first position a prompt without loss) as a batch.
static void make_batch(vet_batch *b, int n, uint64_t seed) {
    int32_t tok[16], tgt[16], starts[1] = {0};
    vet_rng g;
    vet_rng_seed(&g, seed);
    for (int i = 0; i < n; i++) tok[i] = (int32_t)vet_rng_below(&g, SHAPE.vocab);
    for (int i = 0; i < n; i++) tgt[i] = i == 0 || i + 1 == n ? -1 : tok[i + 1];
    vet_row row = {tok, tgt, starts, n, 1};
    vet_err err;
    if (vet_batch_from_rows(b, &row, 1, SHAPE.vocab, &err)) die(&err);
}

static char last_note[1024];
static void keep_note(const char *line, void *ctx) {
    (void)ctx;
    snprintf(last_note, sizeof last_note, "%s", line);
}

// The loss scaler: off is the identity; on, the scale halves on overflow (down to a floor,
// then the error), doubles after 2000 good steps, and a checkpoint's scale is kept.
static void test_loss_scale(void) {
    vet_train_state st = {.loss_scale = 8, .scale_good = 3, .scale_skips = 2};
    vet_loss_scale_start(&st, 0, 0);
    CHECK(st.loss_scale == 0 && st.scale_good == 0 && st.scale_skips == 0);
    CHECK(vet_loss_scale_factor(&st) == 1.0f && vet_loss_scale_unscale(&st) == 1.0f);
    CHECK(!vet_loss_scale_overflowed(&st, 1.0, INFINITY));
    vet_loss_scale_start(&st, 1, 0);
    CHECK(st.loss_scale == 65536.0);
    CHECK(vet_loss_scale_factor(&st) == 65536.0f && vet_loss_scale_unscale(&st) == 1.0f / 65536.0f);
    st.loss_scale = 1024, st.scale_good = 7;
    vet_loss_scale_start(&st, 1, 4.0);  // a checkpoint's scale wins over the initial one
    CHECK(st.loss_scale == 1024 && st.scale_good == 7);
    CHECK(vet_loss_scale_overflowed(&st, 2.0, NAN) && !vet_loss_scale_overflowed(&st, NAN, NAN) &&
          !vet_loss_scale_overflowed(&st, 2.0, 3.0));
    vet_err err;
    CHECK(vet_loss_scale_back_off(&st, 4, &err) == 0);
    CHECK(st.loss_scale == 512 && st.scale_good == 0 && st.scale_skips == 1 && st.skipped_steps == 1);
    for (int i = 0; i < 1999; i++) vet_loss_scale_step_taken(&st);
    CHECK(st.loss_scale == 512 && st.scale_good == 1999);
    vet_loss_scale_step_taken(&st);
    CHECK(st.loss_scale == 1024 && st.scale_good == 0);
    st.loss_scale = 0x1p-25;
    CHECK(vet_loss_scale_back_off(&st, 4, &err) == -1);
    CHECK(err.kind == VET_E_NONFINITE);
    CHECK_CONTAINS(err.msg, "step 5: gradients not finite even at loss scale");
}

// The one reduction: in double, each product rounded to float first, element 0 up.
static void test_grad_norm(void) {
    float g[3] = {3, 0, 4};
    CHECK(vet_train_grad_norm(g, 3, 1.0f) == 5.0);
    CHECK(vet_train_grad_norm(g, 3, 0.5f) == 2.5);
    size_t at = 99;
    CHECK(vet_train_find_nonfinite(g, 3, &at) == 0 && at == 99);
    g[1] = -INFINITY, g[2] = NAN;
    CHECK(vet_train_find_nonfinite(g, 3, &at) == 1 && at == 1);
    CHECK(isinf(vet_train_grad_norm(g, 2, 1.0f)));
}

// One optimizer step through the CPU backend equals the same step written out by hand.
static void test_cpu_step_equals_model_core(void) {
    vet_model a, b;
    make_lora_model(&a);
    make_lora_model(&b);
    size_t n = a.n_lora;
    float *am = calloc(n, sizeof(float)), *av = calloc(n, sizeof(float));
    float *bm = calloc(n, sizeof(float)), *bv = calloc(n, sizeof(float)), *bg = calloc(n, sizeof(float));
    vet_batch x, y;
    make_batch(&x, 11, 1);
    make_batch(&y, 7, 2);
    const float inv = 1.0f / (float)(9 + 5);  // the step's targets: both batches'
    vet_err err;
    vet_train_opts o;
    vet_train_defaults(&o);
    o.resid_dropout = 0.1;
    vet_train_backend be;
    last_note[0] = 0;
    if (vet_cpu_train_backend(&o, keep_note, NULL, &be, &err)) die(&err);
    CHECK_STR(be.name, "cpu");
    CHECK_CONTAINS(last_note, "device cpu (");
    CHECK(!be.loss_scaling);
    vet_train_setup s = {.m = &a, .mode = VET_TRAIN_LORA, .params = a.lora_mem, .adam_m = am, .adam_v = av,
                         .n = n, .batch_size = 1, .max_len = 11, .max_rows = 2};
    if (be.load(be.ctx, &s, &err)) die(&err);
    double la = 0, lb = 0, ls, norm;
    CHECK(be.forward_backward(be.ctx, &x, 77, inv, &ls, &err) == 0);
    la += ls;
    CHECK(be.forward_backward(be.ctx, &y, 78, inv, &ls, &err) == 0);
    la += ls;
    CHECK(be.grad_norm(be.ctx, 1.0f, &norm, &err) == 0);
    // clipping's factor inside the step: the same bits as scaling the gradients before it
    vet_adamw hp = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f, .step = 1,
                    .grad_scale = 0.5f};
    CHECK(be.adamw_step(be.ctx, 0, n, &hp, &err) == 0);
    CHECK(be.zero_grads(be.ctx, &err) == 0 && be.pull_state(be.ctx, 1, &err) == 0);
    // the same by hand on the twin
    vet_acts *acts = vet_acts_new(&b, 1, 11, &err);
    vet_acts_set_resid_dropout(acts, 0.1f);
    int nt;
    CHECK(vet_model_forward(&b, acts, &x, NULL, &ls, &nt, 1, 77, &err) == 0);
    CHECK(vet_model_backward(&b, acts, &x, inv, VET_TRAIN_LORA, bg, &err) == 0);
    lb += ls;
    CHECK(vet_model_forward(&b, acts, &y, NULL, &ls, &nt, 1, 78, &err) == 0);
    CHECK(vet_model_backward(&b, acts, &y, inv, VET_TRAIN_LORA, bg, &err) == 0);
    lb += ls;
    double norm2 = 0;
    for (size_t i = 0; i < n; i++) norm2 += (double)bg[i] * bg[i];
    scale_inplace(bg, 0.5f, n);
    adamw_update(b.lora_mem, bg, 1.0f, bm, bv, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
    CHECK(la == lb && norm == sqrt(norm2) && norm > 0);
    CHECK(memcmp(a.lora_mem, b.lora_mem, n * sizeof(float)) == 0);
    CHECK(memcmp(am, bm, n * sizeof(float)) == 0 && memcmp(av, bv, n * sizeof(float)) == 0);
    // after zero_grads the norm is 0; an evaluation forward is vet_model_forward's
    CHECK(be.grad_norm(be.ctx, 1.0f, &norm, &err) == 0 && norm == 0);
    int na;
    double ea, eb;
    CHECK(be.forward(be.ctx, &x, &ea, &na, &err) == 0);
    CHECK(vet_model_forward(&b, acts, &x, NULL, &eb, &nt, 0, 0, &err) == 0);
    CHECK(ea == eb && na == nt && na == 9);
    // grad_scale 0: forward only (a step without targets), the gradients stay 0
    CHECK(be.forward_backward(be.ctx, &x, 79, 0.0f, &ls, &err) == 0);
    CHECK(be.grad_norm(be.ctx, 1.0f, &norm, &err) == 0 && norm == 0);
    // a NaN weight: the first non-finite gradient is found
    size_t at;
    CHECK(be.find_nonfinite_grad(be.ctx, &at) == 0);
    a.lora_mem[n - 1] = NAN;
    CHECK(be.forward_backward(be.ctx, &x, 80, inv, &ls, &err) == 0);
    CHECK(be.grad_norm(be.ctx, 1.0f, &norm, &err) == 0 && !isfinite(norm));
    CHECK(be.find_nonfinite_grad(be.ctx, &at) == 1 && at < n);
    hp.step = 0;
    CHECK(be.adamw_step(be.ctx, n, 1, &hp, &err) == -1);  // outside the trainable floats
    be.free(be.ctx);
    vet_acts_free(acts);
    vet_batch_free(&x), vet_batch_free(&y);
    free(am), free(av), free(bm), free(bv), free(bg);
    vet_model_free(&a), vet_model_free(&b);
}

// What only a device can do is refused, and the table is left empty.
static void test_cpu_refusals(void) {
    vet_train_opts o;
    vet_train_defaults(&o);
    vet_train_backend be;
    vet_err err;
    o.gpu_fp16 = 1;
    CHECK(vet_cpu_train_backend(&o, NULL, NULL, &be, &err) == -1);
    CHECK_CONTAINS(err.msg, "fp16 base weights need --device cuda");
    CHECK(be.ctx == NULL && be.free == NULL);
    o.gpu_fp16 = 0, o.gpu_quant = 2;
    CHECK(vet_cpu_train_backend(&o, NULL, NULL, &be, &err) == -1);
    CHECK_CONTAINS(err.msg, "quantized base weights need --device cuda");
}

int main(void) {
    vet_set_threads(2);
    RUN(test_loss_scale);
    RUN(test_grad_norm);
    RUN(test_cpu_step_equals_model_core);
    RUN(test_cpu_refusals);
    CHECK_EXIT();
}
