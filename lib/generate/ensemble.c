// ensemble.c — the mean of several models' next-token distributions, as a forward backend.
// See ensemble.h for what is averaged and why.
#include "generate/ensemble.h"

#include <math.h>
#include <stdlib.h>

struct vet_ensemble {
    vet_infer_backend *members;  // k backend tables (copies)
    int k, V, n_slots;
    float *scratch;              // (n_slots, V): one member's logits at a time
    vet_infer **own;             // vet_ensemble_new_cpu: the members' forwards (k), freed with it
};

// log(e^a + e^b) without overflow; -inf stands for probability 0.
static float log_add_exp(float a, float b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    float hi = a > b ? a : b, lo = a > b ? b : a;
    return hi + log1pf(expf(lo - hi));
}

void vet_ensemble_accumulate(float *acc, float *logits, int n, int V, int k_done) {
    for (int i = 0; i < n; i++) {
        float *x = logits + (size_t)i * V, *a = acc + (size_t)i * V;
        // log-softmax of the row: x - max - log(sum exp(x - max)), the sum in double.
        float mx = -INFINITY;
        for (int v = 0; v < V; v++)
            if (x[v] > mx) mx = x[v];
        double sum = 0.0;
        for (int v = 0; v < V; v++) sum += exp((double)(x[v] - mx));
        float shift = mx + (float)log(sum);
        if (k_done == 0) {
            for (int v = 0; v < V; v++) a[v] = x[v] - shift;
        } else {
            for (int v = 0; v < V; v++) a[v] = log_add_exp(a[v], x[v] - shift);
        }
    }
}

void vet_ensemble_finish(float *acc, int n, int V, int K) {
    if (K <= 1) return;
    float lk = logf((float)K);
    for (size_t i = 0; i < (size_t)n * V; i++) acc[i] -= lk;
}

static int ens_prefill(void *state, int slot, const int32_t *ids, int n, float *logits, vet_err *err) {
    vet_ensemble *e = state;
    for (int k = 0; k < e->k; k++) {
        const vet_infer_backend *m = &e->members[k];
        if (m->prefill(m->state, slot, ids, n, e->scratch, err) < 0)
            return vet_err_prefix(err, "ensemble member %d", k + 1);
        vet_ensemble_accumulate(logits, e->scratch, 1, e->V, k);
    }
    vet_ensemble_finish(logits, 1, e->V, e->k);
    return 0;
}

static int ens_step(void *state, const int *slots, const int32_t *tokens, int n, float *logits, vet_err *err) {
    vet_ensemble *e = state;
    for (int k = 0; k < e->k; k++) {
        const vet_infer_backend *m = &e->members[k];
        if (m->step(m->state, slots, tokens, n, e->scratch, err) < 0)
            return vet_err_prefix(err, "ensemble member %d", k + 1);
        vet_ensemble_accumulate(logits, e->scratch, n, e->V, k);
    }
    vet_ensemble_finish(logits, n, e->V, e->k);
    return 0;
}

// Every member's slot copied (when every member can: else the ensemble has no copy_slot).
static int ens_copy_slot(void *state, int dst, int src, vet_err *err) {
    vet_ensemble *e = state;
    for (int k = 0; k < e->k; k++) {
        const vet_infer_backend *m = &e->members[k];
        if (m->copy_slot(m->state, dst, src, err) < 0) return vet_err_prefix(err, "ensemble member %d", k + 1);
    }
    return 0;
}

vet_ensemble *vet_ensemble_new(const vet_infer_backend *members, int k, int V, int n_slots, vet_err *err) {
    if (k < 1) return vet_errf(err, "an ensemble needs at least one model"), NULL;
    if (V < 1 || n_slots < 1) return vet_errf(err, "ensemble of V %d, %d slots", V, n_slots), NULL;
    for (int i = 0; i < k; i++)
        if (members[i].n_slots < n_slots)
            return vet_errf(err, "ensemble member %d has %d slots, fewer than %d", i + 1, members[i].n_slots,
                            n_slots), NULL;
    vet_ensemble *e = calloc(1, sizeof *e);
    if (e) {
        e->members = malloc((size_t)k * sizeof *e->members);
        e->scratch = malloc((size_t)n_slots * V * sizeof(float));
    }
    if (!e || !e->members || !e->scratch) {
        vet_ensemble_free(e);
        return vet_err_nomem(err, "out of memory for an ensemble of %d models", k), NULL;
    }
    for (int i = 0; i < k; i++) e->members[i] = members[i];
    e->k = k, e->V = V, e->n_slots = n_slots;
    return e;
}

void vet_ensemble_free(vet_ensemble *e) {
    if (!e) return;
    if (e->own)
        for (int i = 0; i < e->k; i++) vet_infer_free(e->own[i]);
    free(e->own);
    free(e->members);
    free(e->scratch);
    free(e);
}

void vet_ensemble_backend(vet_ensemble *e, vet_infer_backend *be) {
    be->state = e;
    be->n_slots = e->n_slots;
    be->prefill = ens_prefill;
    be->step = ens_step;
    be->prefill_batch = NULL;  // prompts one at a time through each member's prefill
    be->step_greedy = NULL;    // the average of the members' logits is chosen from
    int copies = 1;
    for (int k = 0; k < e->k; k++) copies &= e->members[k].copy_slot != NULL;
    be->copy_slot = copies ? ens_copy_slot : NULL;  // without: each answer's slot prefills again
}

vet_ensemble *vet_ensemble_new_cpu(const vet_model *models, int k, int n_slots, vet_err *err) {
    if (k < 1) return vet_errf(err, "an ensemble needs at least one model"), NULL;
    vet_infer **own = calloc((size_t)k, sizeof *own);
    vet_infer_backend *be = calloc((size_t)k, sizeof *be);
    vet_ensemble *e = NULL;
    if (!own || !be) {
        vet_err_nomem(err, "out of memory for an ensemble of %d models", k);
        goto out;
    }
    for (int i = 0; i < k; i++) {
        if (!(own[i] = vet_infer_new(&models[i], n_slots, err))) goto out;
        vet_infer_backend_of(own[i], &be[i]);
    }
    if ((e = vet_ensemble_new(be, k, models[0].cfg.vocab_size, n_slots, err))) e->own = own, own = NULL;
out:
    for (int i = 0; own && i < k; i++) vet_infer_free(own[i]);
    free(own), free(be);
    return e;
}
