// model_save.h — a vet_model's tensors by their Hugging Face names: saving a model directory,
// merging LoRA into the base weights, and the names the trainer logs.
#ifndef VET_MODEL_IO_H
#define VET_MODEL_IO_H

#include "model/model.h"
#include "io/safetensors.h"

typedef struct {
    char name[96];      // e.g. "model.layers.3.self_attn.q_proj.weight"
    float *p;           // into m->w_mem
    int ndim;
    int64_t shape[2];
    int decay;          // 1 for matrices; 0 for norms and biases (no weight decay, as HF Trainer)
} vet_named_tensor;

// The model's tensors in HF order (lm_head omitted when tied). Returns how many; fills at most
// max (call with max 0 to count).
int vet_model_tensors(const vet_model *m, vet_named_tensor *out, int max);

// Writes m's base weights as a HF model directory (config.json, model.safetensors stored as dt,
// the tokenizer copied when given: a tokenizer.model or tokenizer.json, with its
// tokenizer_config.json, io/hfdir.h). LoRA, if any, must be merged first.
int vet_model_save(const vet_model *m, const char *dir, vet_dtype dt, const char *tokenizer_model, vet_err *err);

// W += scale · B·A for every adapted projection; the model then has no LoRA.
void vet_model_merge_lora(vet_model *m);

#endif
