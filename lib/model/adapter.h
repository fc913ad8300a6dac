// adapter.h — LoRA adapters as PEFT directories, read and written directly.
//
// A PEFT adapter directory holds two files:
//   adapter_config.json         {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8,
//                                "lora_alpha": 16, "lora_dropout": 0.05, "use_rslora": false,
//                                "target_modules": ["q_proj", "v_proj"], "bias": "none", ...}
//   adapter_model.safetensors   per adapted projection of layer N:
//     base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight   (r, in)
//     base_model.model.model.layers.N.self_attn.q_proj.lora_B.weight   (out, r)
//   (mlp.gate_proj / mlp.up_proj / mlp.down_proj for the MLP targets), metadata {"format": "pt"}.
// This is what peft's save_pretrained writes and PeftModel.from_pretrained(base, dir) loads.
#ifndef VET_ADAPTER_H
#define VET_ADAPTER_H

#include "base/err.h"
#include "model/model.h"

// Writes m's LoRA (m->has_lora must be set) into dir (created if absent, parents too):
// adapter_model.safetensors, then adapter_config.json, each written to a temporary file and
// renamed into place, so a reader never sees half a file. base_model_path is recorded as
// base_model_name_or_path (NULL writes null).
int vet_adapter_save(const char *dir, const vet_model *m, const char *base_model_path, vet_err *err);

// Reads the PEFT adapter in dir into m (which must have no LoRA yet): checks the whole
// adapter against m's shapes first, then calls vet_model_add_lora and overwrites A and B, so
// on failure m is left as it was. Refuses, with a message naming the key or tensor:
// a missing or unreadable file (VET_E_IO when dir itself is not there), peft_type other than LORA, r / lora_alpha / target_modules
// missing, a target module vet cannot adapt, features vet does not implement (DoRA, biases,
// rank/alpha patterns, layers_to_transform, modules_to_save), a missing or unexpected
// tensor, and a tensor whose shape does not fit the base model (naming both shapes).
int vet_adapter_load(vet_model *m, const char *dir, vet_err *err);

// Refuses (VET_E_USAGE, naming flag) a dir given where a model goes (--model, --base) that holds
// an adapter and no config.json: the adapter belongs to --adapter, beside its base model. 0 for
// anything else (a model, a GGUF file, a path not there: the model's reader says what is wrong).
int vet_adapter_refuse_as_model(const char *flag, const char *dir, vet_err *err);

// The limits every LoRA adapter keeps, one set for the program that writes adapters (vet-train
// checks its flags against the base model before it trains) and for every reader
// (vet_adapter_load, so vet-train --adapter and vet-generate --adapter): whatever vet writes,
// vet reads. r from 1 to the smaller dimension of every adapted projection (a larger rank adds
// no expressive power, only size: A·B cannot have rank above min(out, in)); alpha finite, > 0
// and at most VET_LORA_MAX_ALPHA; dropout in [0, 1). The message names the projection and its
// shape; the caller says where the values came from (vet_err_prefix).
#define VET_LORA_MAX_ALPHA 1e9
int vet_adapter_check_limits(const vet_config *c, int r, double alpha, double dropout, unsigned targets,
                             vet_err *err);

// (out, in) of LoRA target t (bit index of VET_LORA_*) in every layer: A is (r, in), B (out, r).
void vet_adapter_target_dims(const vet_config *c, int t, int64_t *out, int64_t *in);
// PEFT's tensor name of layer l, target t, matrix ab ('A' or 'B'):
// base_model.model.model.layers.<l>.self_attn.q_proj.lora_A.weight
void vet_adapter_tensor_name(char *buf, size_t n, int l, int t, char ab);

#endif
