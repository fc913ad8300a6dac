// params.c — the trainable floats of a run: which they are (LoRA's A and B, or with --full
// every weight), their parameter groups, AdamW's moments, and the step counts (see run.h).
#include <stdio.h>
#include <stdlib.h>

#include "model/adapter.h"
#include "model/lora.h"
#include "model/model_save.h"
#include "train/run.h"

// --full: one group per weight tensor, as they lie in w_mem; norms and biases do not decay.
static int full_groups(train_run *r, vet_err *err) {
    int k = vet_model_tensors(&r->m, NULL, 0);
    vet_named_tensor *t = malloc(k * sizeof *t);
    r->groups = malloc(k * sizeof *r->groups);
    if (!t || !r->groups) {
        free(t);
        return vet_err_nomem(err, "out of memory");
    }
    vet_model_tensors(&r->m, t, k);
    for (int i = 0; i < k; i++) {
        size_t cnt = (size_t)t[i].shape[0] * (t[i].ndim > 1 ? t[i].shape[1] : 1);
        r->groups[i] = (train_group){(size_t)(t[i].p - r->m.w_mem), cnt, t[i].decay};
    }
    r->n_groups = k;
    free(t);
    return 0;
}

int train_setup_params(train_run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
    if (o->full) {
        r->params = r->m.w_mem;
        r->n = r->m.n_w;
        if (full_groups(r, err) < 0) return -1;
    } else {
        r->params = r->m.lora_mem;
        r->n = r->m.n_lora;
        r->groups = malloc(sizeof *r->groups);
        if (!r->groups) return vet_err_nomem(err, "out of memory");
        r->groups[0] = (train_group){0, r->n, 1};  // every LoRA matrix decays
        r->n_groups = 1;
    }
    r->adam_m = calloc(r->n, sizeof(float));
    r->adam_v = calloc(r->n, sizeof(float));
    if (o->val_path) r->best = calloc(r->n, sizeof(float));
    r->order = malloc(r->train.n_rows * sizeof(int));
    if (!r->adam_m || !r->adam_v || (o->val_path && !r->best) || !r->order)
        return vet_err_nomem(err, "out of memory for the optimizer (%zu trainable floats)", r->n);
    r->order_epoch = -1;
    int gbs = train_global_batch(r);  // rows of a micro-batch over all the ranks
    r->micro_per_epoch = (r->train.n_rows + gbs - 1) / gbs;
    r->steps_per_epoch = (r->micro_per_epoch + o->grad_accum - 1) / o->grad_accum;
    r->total_steps = r->steps_per_epoch * o->epochs;
    if (o->max_steps > 0 && o->max_steps < r->total_steps) r->total_steps = o->max_steps;
    return 0;
}

// --full: the weight tensor holding w_mem[idx]; 0 when none does.
static int describe_weight(const vet_model *m, size_t idx, char *buf, size_t n) {
    int k = vet_model_tensors(m, NULL, 0);
    vet_named_tensor *t = malloc(k * sizeof *t);
    if (!t) return 0;
    vet_model_tensors(m, t, k);
    int found = 0;
    for (int i = 0; i < k && !found; i++) {
        size_t off = (size_t)(t[i].p - m->w_mem), cnt = (size_t)t[i].shape[0] * (t[i].ndim > 1 ? t[i].shape[1] : 1);
        if (idx >= off && idx < off + cnt) {
            snprintf(buf, n, "%s", t[i].name);
            found = 1;
        }
    }
    free(t);
    return found;
}

// LoRA: "layers.L.TARGET.lora_A" or "...lora_B" holding lora_mem[idx]; 0 when none does.
// A target's A is (n_layers, r, in), its B (n_layers, out, r).
static int describe_adapter(const vet_model *m, size_t idx, char *buf, size_t n) {
    const vet_lora *lo = &m->lora;
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!(lo->targets & (1u << t))) continue;
        int64_t out, in;
        vet_adapter_target_dims(&m->cfg, t, &out, &in);
        size_t a = (size_t)(lo->A[t] - m->lora_mem), b = (size_t)(lo->B[t] - m->lora_mem);
        size_t na = (size_t)m->cfg.n_layers * lo->r * in, nb = (size_t)m->cfg.n_layers * out * lo->r;
        if (idx >= a && idx < a + na) {
            snprintf(buf, n, "layers.%zu.%s.lora_A", (idx - a) / (lo->r * in), vet_lora_target_name(t));
            return 1;
        }
        if (idx >= b && idx < b + nb) {
            snprintf(buf, n, "layers.%zu.%s.lora_B", (idx - b) / (out * lo->r), vet_lora_target_name(t));
            return 1;
        }
    }
    return 0;
}

void train_describe_param(const train_run *r, size_t idx, char *buf, size_t n) {
    int found = r->o->full ? describe_weight(&r->m, idx, buf, n) : describe_adapter(&r->m, idx, buf, n);
    if (!found) snprintf(buf, n, "parameter %zu", idx);
}
