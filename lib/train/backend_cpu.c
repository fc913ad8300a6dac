// backend_cpu.c — the CPU training backend (see backend.h): model/forward_backward.c's
// forward and backward over the host model, the gradients in one host buffer, AdamW from
// model/ops.h. The trainable state is the host's own (vet_train_setup's params and moments),
// trained in place: nothing is ever copied.
#include "train/backend.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"
#include "train/trainer.h"

typedef struct {
    const vet_train_opts *o;
    vet_model *m;
    vet_train_mode mode;
    vet_acts *acts;            // activations for batch_size x max_len
    float *params, *adam_m, *adam_v;  // (n) the host's, see vet_train_setup
    float *grads;              // (n) laid out like params
    size_t n;
} cpu_backend;

static int cpu_load(void *ctx, const vet_train_setup *s, vet_err *err) {
    cpu_backend *c = ctx;
    c->m = s->m, c->mode = s->mode, c->n = s->n;
    c->params = s->params, c->adam_m = s->adam_m, c->adam_v = s->adam_v;
    c->grads = calloc(s->n, sizeof(float));
    if (!c->grads) return vet_err_nomem(err, "out of memory for the optimizer (%zu trainable floats)", s->n);
    c->acts = vet_acts_new(s->m, s->batch_size, s->max_len, err);
    if (!c->acts) return -1;
    vet_acts_set_label_smoothing(c->acts, (float)c->o->label_smoothing);
    vet_acts_set_resid_dropout(c->acts, (float)c->o->resid_dropout);
    return 0;
}

static int cpu_forward_backward(void *ctx, const vet_batch *b, uint64_t dropout_seed, float grad_scale,
                                double *loss_sum, vet_err *err) {
    cpu_backend *c = ctx;
    int n_targets;
    if (vet_model_forward(c->m, c->acts, b, NULL, loss_sum, &n_targets, 1, dropout_seed, err) < 0) return -1;
    if (grad_scale > 0) return vet_model_backward(c->m, c->acts, b, grad_scale, c->mode, c->grads, err);
    return 0;
}

static int cpu_forward(void *ctx, const vet_batch *b, double *loss_sum, int *n_targets, vet_err *err) {
    cpu_backend *c = ctx;
    return vet_model_forward(c->m, c->acts, b, NULL, loss_sum, n_targets, 0, 0, err);
}

static int cpu_grad_norm(void *ctx, float unscale, double *norm, vet_err *err) {
    cpu_backend *c = ctx;
    *norm = vet_train_grad_norm(c->grads, c->n, unscale);
    return 0;
}

static int cpu_find_nonfinite_grad(void *ctx, size_t *index) {
    cpu_backend *c = ctx;
    return vet_train_find_nonfinite(c->grads, c->n, index);
}

static int cpu_zero_grads(void *ctx, vet_err *err) {
    cpu_backend *c = ctx;
    memset(c->grads, 0, c->n * sizeof(float));
    return 0;
}

static int cpu_allreduce_grads(void *ctx, const vet_comm *comm, vet_err *err) {
    cpu_backend *c = ctx;
    return comm->allreduce_f32(comm->ctx, c->grads, c->n, err);
}

static int cpu_adamw_step(void *ctx, size_t off, size_t n, const vet_adamw *hp, vet_err *err) {
    cpu_backend *c = ctx;
    if (off > c->n || n > c->n - off)
        return vet_errf(err, "AdamW slice [%zu, %zu) outside the %zu trainable floats", off, off + n, c->n);
    adamw_update(c->params + off, c->grads + off, hp->grad_scale, c->adam_m + off, c->adam_v + off, n, hp->lr,
                 hp->beta1, hp->beta2, hp->eps, hp->weight_decay, hp->step);
    return 0;
}

// The host's state is the CPU's: there is nothing to move.
static int cpu_pull_state(void *ctx, int moments, vet_err *err) { return 0; }
static int cpu_push_state(void *ctx, vet_err *err) { return 0; }

static void cpu_free(void *ctx) {
    cpu_backend *c = ctx;
    if (!c) return;
    vet_acts_free(c->acts);
    free(c->grads);
    free(c);
}

int vet_cpu_train_backend(const vet_train_opts *o, vet_note_fn note, void *note_ctx, vet_train_backend *be,
                          vet_err *err) {
    memset(be, 0, sizeof *be);
    if (o->gpu_fp16) return vet_errf(err, "fp16 base weights need --device cuda (the CPU backend computes in fp32)");
    if (o->gpu_quant)
        return vet_errf(err, "quantized base weights need --device cuda (the CPU backend computes in fp32)");
    cpu_backend *c = calloc(1, sizeof *c);
    if (!c) return vet_err_nomem(err, "out of memory");
    c->o = o;
    *be = (vet_train_backend){
        .name = "cpu", .ctx = c, .loss_scaling = 0,
        .load = cpu_load, .forward_backward = cpu_forward_backward, .forward = cpu_forward,
        .grad_norm = cpu_grad_norm, .find_nonfinite_grad = cpu_find_nonfinite_grad,
        .zero_grads = cpu_zero_grads, .allreduce_grads = cpu_allreduce_grads,
        .adamw_step = cpu_adamw_step,
        .pull_state = cpu_pull_state, .push_state = cpu_push_state, .free = cpu_free,
    };
    vet_train_notef(note, note_ctx, "device cpu (%d threads), fp32", vet_get_threads());
    return 0;
}

// In double, element 0 up, one product rounded to float first: with unscale 1 exactly the sum
// of (double)g[i] * g[i] the trainer has always computed.
double vet_train_grad_norm(const float *g, size_t n, float unscale) {
    double norm2 = 0;
    for (size_t i = 0; i < n; i++) {
        float u = g[i] * unscale;
        norm2 += (double)u * u;
    }
    return sqrt(norm2);
}

int vet_train_find_nonfinite(const float *g, size_t n, size_t *index) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(g[i])) {
            *index = i;
            return 1;
        }
    return 0;
}

void vet_train_notef(vet_note_fn note, void *note_ctx, const char *fmt, ...) {
    if (!note) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    note(line, note_ctx);
}
