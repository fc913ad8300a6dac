// config.h — a model's shape: read from / written to a Hugging Face config.json, or a preset.
//
// vet runs the LLaMA family as transformers defines it: LlamaForCausalLM (LLaMA-1/2/3.x,
// Alpaca, Vicuna, ...) and Qwen2ForCausalLM (Qwen2, Qwen2.5). Everything else is refused
// with a message, never half-run: non-SiLU activations, MLP biases, sliding-window
// attention, rope scalings other than llama3 (a GGUF's llama3 factors are read: VET_ROPE_FACTORS).
#ifndef VET_CONFIG_H
#define VET_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define VET_ROPE_DEFAULT 0
#define VET_ROPE_LLAMA3 1
#define VET_ROPE_FACTORS 2      // rope_freq_factors; no config.json form (vet_config_save refuses it)
#define VET_ROPE_MAX_FACTORS 512   // head_dim up to 1024 with VET_ROPE_FACTORS
// The most end-of-sequence ids a config.json may list (published models list up to 3 or 4); a
// longer list is refused, never cut.
#define VET_MAX_EOS 16

typedef struct {
    char arch[16];            // "llama" or "qwen2" (from architectures[0] / model_type)
    int dim;                  // hidden_size
    int hidden_dim;           // intermediate_size
    int n_layers, n_heads, n_kv_heads, head_dim;   // head_dim = config head_dim or dim/n_heads
    int vocab_size, max_pos;  // max_position_embeddings
    float rms_eps, rope_theta;
    int rope_type;            // VET_ROPE_DEFAULT, _LLAMA3 or _FACTORS
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_max_pos;    // llama3 scaling: original_max_position_embeddings
    // VET_ROPE_FACTORS: (head_dim/2) per-frequency factors, a GGUF's rope_freqs.weight (how
    // llama.cpp's converter stores llama3 scaling): rotary frequency i is theta^(-2i/hd) / factor[i].
    float rope_freq_factors[VET_ROPE_MAX_FACTORS];
    int tie_embeddings;       // tie_word_embeddings: lm_head shares embed_tokens
    int qkv_bias;             // q/k/v projections have biases (always for qwen2; attention_bias for llama)
    int mlp_bias;             // always 0: vet refuses configs with MLP biases
    int bos_id, eos_id, pad_id;   // -1 when absent; eos_id is eos_ids[0]
    int eos_ids[VET_MAX_EOS];
    int n_eos;
    char torch_dtype[16];     // "float32" | "bfloat16" | "float16" (the dtype the weights are stored in)
} vet_config;

// Reads config.json (a path to the file, or to the model directory holding it) and validates it.
int vet_config_load(vet_config *c, const char *path, vet_err *err);
// Writes a config.json transformers loads (atomically: tmp file + rename). Refuses
// VET_ROPE_FACTORS, which config.json has no way to say.
int vet_config_save(const vet_config *c, const char *path, vet_err *err);
// Fills c with a named shape: tiny, small, llama-7b, llama3-8b, qwen2.5-7b.
int vet_config_preset(vet_config *c, const char *name, vet_err *err);
// The names vet_config_preset knows, comma separated (for --help and messages).
const char *vet_config_preset_names(void);
// The vocabulary is the tokenizer's: set it after choosing a preset.
void vet_config_set_vocab(vet_config *c, int vocab_size);
// Checks the numbers fit together (heads divide, dims positive, ...). Load and preset call it.
int vet_config_validate(const vet_config *c, vet_err *err);

int64_t vet_config_n_params(const vet_config *c);
size_t vet_config_weight_bytes(const vet_config *c, int bytes_per_param);

#endif
