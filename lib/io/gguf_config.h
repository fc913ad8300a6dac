// gguf_config.h — a model's shape (io/config.h's vet_config) from a GGUF file's metadata, and
// loading a config from either kind of model path.
//
// Keys read (ARCH is general.architecture: llama or qwen2; others are refused by name):
//   ARCH.block_count, .embedding_length, .feed_forward_length, .attention.head_count,
//   .attention.layer_norm_rms_epsilon, .context_length          required
//   ARCH.attention.head_count_kv (default head_count), .attention.key_length (head_dim; default
//   embedding_length / head_count), .rope.freq_base (default 10000), .vocab_size (default: the
//   length of tokenizer.ggml.tokens, else token_embd.weight's ne[1])
//   tokenizer.ggml.bos_token_id / eos_token_id / padding_token_id      optional
//   tensor rope_freqs.weight (head_dim/2 values, each finite and > 0): llama3 rope scaling as
//   llama.cpp's converter stores it, per-frequency factors (VET_ROPE_FACTORS; all ones: plain rope)
// Refused with the key named: a missing required key, a key of the wrong type, rope scaling by
// metadata (ARCH.rope.scaling.type other than none, rope.scale_linear), a rope_freqs.weight of
// the wrong length or with a factor that is not finite and > 0, partial rotary
// (rope.dimension_count != head_dim), value_length != key_length, mixtures of experts
// (expert_count > 0). Embeddings are tied when the file has no output.weight (as llama.cpp's
// converter writes tied models).
#ifndef VET_GGUF_CONFIG_H
#define VET_GGUF_CONFIG_H

#include "base/err.h"
#include "io/config.h"
#include "io/gguf.h"

// 1 when path is a regular file whose first four bytes are the GGUF magic, or whose name ends in
// ".gguf" (so a damaged one is refused as a GGUF, not read as a config.json).
int vet_path_is_gguf(const char *path);

// Fills c from g's metadata (see above) and validates it; errors name the file and the key.
int vet_gguf_config(vet_config *c, const vet_gguf *g, vet_err *err);

// A model's config from path: a GGUF file (vet_gguf_config), else a config.json or a directory
// holding one (vet_config_load).
int vet_model_config_load(vet_config *c, const char *path, vet_err *err);

#endif
