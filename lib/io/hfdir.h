// hfdir.h — Hugging Face model directories: tensor names, saving, random initialization.
//
// A model directory is config.json + model.safetensors (or shards + index) + tokenizer.model
// (or tokenizer.json).
// Tensor names and shapes are transformers' LlamaForCausalLM / Qwen2ForCausalLM ones
// (weights are [out, in], as nn.Linear stores them):
//   model.embed_tokens.weight                      (vocab, dim)
//   model.layers.L.input_layernorm.weight          (dim)
//   model.layers.L.self_attn.q_proj.weight         (n_heads*head_dim, dim)     .bias (n_heads*head_dim) qwen2
//   model.layers.L.self_attn.k_proj.weight         (n_kv_heads*head_dim, dim)  .bias qwen2
//   model.layers.L.self_attn.v_proj.weight         (n_kv_heads*head_dim, dim)  .bias qwen2
//   model.layers.L.self_attn.o_proj.weight         (dim, n_heads*head_dim)
//   model.layers.L.post_attention_layernorm.weight (dim)
//   model.layers.L.mlp.gate_proj.weight            (hidden_dim, dim)
//   model.layers.L.mlp.up_proj.weight              (hidden_dim, dim)
//   model.layers.L.mlp.down_proj.weight            (dim, hidden_dim)
//   model.norm.weight                              (dim)
//   lm_head.weight                                 (vocab, dim)   absent when embeddings are tied
#ifndef VET_HFDIR_H
#define VET_HFDIR_H

#include <stddef.h>
#include <stdint.h>

#include "io/config.h"
#include "base/err.h"
#include "io/safetensors.h"

// "model.layers.<layer>.<suffix>" into buf (layer < 0: just suffix). Returns buf.
char *vet_hf_name(char *buf, size_t n, int layer, const char *suffix);

// How a tensor starts out in a fresh model (LLaMA convention, as transformers initializes).
typedef enum { VET_INIT_NORMAL, VET_INIT_ONES, VET_INIT_ZEROS } vet_init_kind;

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[2];
    vet_init_kind init;
} vet_hf_tensor;

// The tensors a model of config c has, in model order (embedding, layers, norm, lm_head).
// Returns how many (<= max is filled; call with max 0 to count).
int vet_hf_tensors(const vet_config *c, vet_hf_tensor *out, int max);

// Checks that the tensors in t are exactly the ones config c needs, with the right shapes
// (extra tensors are refused too, naming the first; a rotary_emb.inv_freq buffer is let through).
// Dtypes may be any float type. where (the directory, or NULL) starts the message of a missing tensor.
int vet_hf_check_tensors(const vet_config *c, const vet_tensors *t, const char *where, vet_err *err);

// Whether the output layer shares the embedding, as the weights say: tied exactly when t has no
// lm_head.weight. transformers (5.x) reads a tied config with an lm_head.weight so: it unties the
// two when their values differ and ties them when they are equal, which computes what the file's
// lm_head does either way. An untied config (tie_word_embeddings false, or absent: LLaMA's and
// Qwen2's default) without an lm_head.weight is refused: transformers would start that head from
// random numbers. dir names the folder in the message.
int vet_hf_tie_from_weights(vet_config *c, const vet_tensors *t, const char *dir, vet_err *err);

// Saves a model dir: creates dir (and parents) if needed, writes config.json and
// model.safetensors from w (+ copies tokenizer_model, when not NULL, to dir/tokenizer.json when
// it is one (its name ends in .json, or it starts with '{'), else to dir/tokenizer.model, with
// the tokenizer_config.json beside it when there is one),
// each atomically. Refuses a dir that holds a sharded model (the stale shards and index would
// stay beside the new file: a folder other tools could read as the old model).
int vet_hf_save_dir(const char *dir, const vet_config *c, vet_st_writer *w, const char *tokenizer_model, vet_err *err);

// A random model per LLaMA convention: normal(0, 0.02) for every linear and embedding weight
// (the pad_id row of the embedding zero, as nn.Embedding(padding_idx) does), 1 for norms,
// 0 for biases. Deterministic from seed whatever the thread count (each tensor's stream is
// seeded by seed and its name). Written as a HF dir with weights stored as dt (F32, BF16, F16)
// and config.json's torch_dtype set to match. Refuses, with the numbers, when the weights
// would not fit in memory (MemAvailable) or on disk.
int vet_hf_init_dir(const char *dir, const vet_config *c, uint64_t seed, vet_dtype dt, const char *tokenizer_model,
                    vet_err *err);
// Fills out (numel floats) with the initial values of one tensor: what vet_hf_init_dir stores
// (before the dtype conversion). pad_id < 0: no zero row.
void vet_hf_init_tensor(const vet_hf_tensor *t, uint64_t seed, int pad_id, float *out);

// Bytes of memory free for a new allocation (/proc/meminfo MemAvailable), 0 when unknown.
size_t vet_mem_available(void);
// Refuses (returns -1 with "<what> needs X GB of memory but only Y GB is available") when need
// bytes exceed MemAvailable. Passes when MemAvailable is unknown.
int vet_check_memory(size_t need, const char *what, vet_err *err);

// "model.safetensors" dtype name <-> config.json torch_dtype.
const char *vet_dtype_torch_name(vet_dtype dt);   // "float32", "bfloat16", "float16" (NULL otherwise)

#endif
