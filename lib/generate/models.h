// models.h — the models one run decodes with: the first --model with its adapter merged in
// (the decoder wants no LoRA left), and, for an ensemble (lib/generate/ensemble.h), the other
// --model directories, each checked against the first: the same vocabulary size, the same
// end-of-sequence ids; and every model directory that ships a tokenizer (tokenizer.model or
// tokenizer.json) ships the one in use. The models then agree with the input on what every id
// means.
#ifndef VET_GEN_MODELS_H
#define VET_GEN_MODELS_H

#include "base/err.h"
#include "model/model.h"

#define VET_GEN_MAX_MODELS 16  // models in one ensemble

typedef struct {
    vet_model m[VET_GEN_MAX_MODELS];  // m[0]: the first, adapter merged
    int k;                            // models loaded; 0 once freed
} vet_gen_models;

// Loads dirs[0..k) (1 <= k <= VET_GEN_MAX_MODELS), adapter (NULL: none; only with k == 1)
// merged into the first. tok_sha, tok_path: the tokenizer in use (vet_tokenizer_sha256,
// vet_tokenizer_path), which every model directory that ships a tokenizer must hold. On
// failure nothing stays loaded.
int vet_gen_models_load(vet_gen_models *ms, const char *const *dirs, int k, const char *adapter,
                        const char *tok_sha, const char *tok_path, vet_err *err);
void vet_gen_models_free(vet_gen_models *ms);  // safe on a zeroed or freed set

// The checks of one member against the first (exposed for the tests): VET_E_INPUT naming dir.
int vet_gen_models_check_member(const vet_model *first, const char *first_dir, const vet_model *mk,
                                const char *dir, vet_err *err);
// When dir holds a tokenizer.model or a tokenizer.json, one of them must have sha256 tok_sha
// (the tokenizer in use, at tok_path); when dir is a GGUF file with a tokenizer inside, that
// tokenizer (read by vet_tokenizer_load) must have it. VET_E_INPUT when none does, VET_E_IO when one cannot be
// read.
int vet_gen_models_check_tokenizer(const char *dir, const char *tok_sha, const char *tok_path, vet_err *err);

#endif
