// tiny_models.h — the small random models the model-core unit tests run on: LLaMA, Llama-3
// (llama3 rope scaling) and Qwen2 (q/k/v biases, tied embeddings) at a shape each test picks.
#ifndef VET_TINY_MODELS_H
#define VET_TINY_MODELS_H

#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "base/rng.h"

enum { VAR_LLAMA, VAR_LLAMA3, VAR_QWEN_TIED };

typedef struct {
    int dim, hidden, n_heads, n_kv_heads, head_dim, vocab, max_pos;
    int llama3_orig_max_pos;   // llama3 scaling: short, so every frequency band occurs
    float llama3_theta;
    float matrix_scale;        // weights this many times the init's 0.02 (spread-out logits)
} tiny_shape;

// Layers of the next tiny_config (2; a test that needs more sets it and puts it back).
static int tiny_n_layers = 2;

static inline vet_config tiny_config(int variant, const tiny_shape *s) {
    vet_config c;
    memset(&c, 0, sizeof c);
    strcpy(c.arch, variant == VAR_QWEN_TIED ? "qwen2" : "llama");
    c.dim = s->dim, c.hidden_dim = s->hidden, c.n_layers = tiny_n_layers, c.n_heads = s->n_heads;
    c.n_kv_heads = s->n_kv_heads, c.head_dim = s->head_dim, c.vocab_size = s->vocab, c.max_pos = s->max_pos;
    c.rms_eps = 1e-5f, c.rope_theta = 10000.0f, c.rope_factor = 1.0f;
    c.bos_id = 1, c.eos_id = 2, c.pad_id = -1, c.eos_ids[0] = 2, c.n_eos = 1;
    strcpy(c.torch_dtype, "float32");
    if (variant == VAR_LLAMA3) {
        c.rope_type = VET_ROPE_LLAMA3, c.rope_factor = 8, c.rope_low_freq_factor = 1;
        c.rope_high_freq_factor = 4, c.rope_orig_max_pos = s->llama3_orig_max_pos, c.rope_theta = s->llama3_theta;
    }
    if (variant == VAR_QWEN_TIED) c.qkv_bias = 1, c.tie_embeddings = 1, c.rms_eps = 1e-6f;
    return c;
}

// Random weights away from the init's scale so every path carries a visible gradient; norms
// and biases away from 1 and 0 so their gradients are tested too.
static inline void tiny_model(vet_model *m, int variant, const tiny_shape *s, uint64_t seed) {
    vet_config c = tiny_config(variant, s);
    vet_err err;
    if (vet_model_init(m, &c, seed, &err)) { fprintf(stderr, "%s\n", err.msg); abort(); }
    vet_rng r;
    vet_rng_seed(&r, seed + 100);
    for (size_t i = 0; i < m->n_w; i++) {
        float x = m->w_mem[i], n = 0.1f * (float)vet_rng_normal(&r);
        m->w_mem[i] = x == 1.0f ? 1.0f + n : x == 0.0f ? n : s->matrix_scale * x;  // norms, biases, matrices
    }
}

#endif
