// model.h — a LLaMA-family decoder (LLaMA 1/2/3, Qwen2) on the CPU, forward and backward,
// with optional LoRA adapters. Maths follows Hugging Face transformers exactly (see docs/model.md):
// fp32 RMSNorm, rotate_half RoPE (pair i with i + head_dim/2), llama3 rope scaling, GQA,
// Qwen2 q/k/v biases, SwiGLU MLP, tied or untied lm_head, mean cross-entropy over targets != -1.
//
// Layout of a batch: B rows of T positions (rows padded to the longest). Each row is a packed
// row from vet-pack: several samples back to back. Per position we keep the sample it belongs
// to (seg, -1 for padding) and its position inside the sample (pos): attention from query i to
// key j is allowed iff seg[i] == seg[j] != -1 and j <= i, and RoPE uses pos, so a packed row
// computes exactly what its samples would compute one by one.
#ifndef VET_MODEL_H
#define VET_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "io/config.h"
#include "base/err.h"

// ---------------------------------------------------------------------------------------
// Batch
typedef struct {
    int B, T;          // rows, positions per row (the longest row)
    int32_t *tokens;   // (B,T) input ids; padding holds 0
    int32_t *targets;  // (B,T) id to predict at each position, -1 = no loss
    int32_t *pos;      // (B,T) position inside the sample (RoPE), 0 for padding
    int32_t *seg;      // (B,T) sample index inside the row, -1 for padding
    // The flattened index (b*T + t) of this batch's first position inside a bigger batch it is
    // a slice of (a rank's share of a data-parallel micro-batch, vet_batch_slice), else 0. The
    // dropout masks of position n are keyed by row0 + n, so a slice draws the whole's masks.
    int64_t row0;
} vet_batch;

// One packed row as vet-pack writes it (docs/formats.md): tokens/targets of length n and the
// start offset of each of its n_samples samples.
typedef struct {
    const int32_t *tokens, *targets, *starts;
    int n, n_samples;
} vet_row;

// Builds a batch from rows (allocates; free with vet_batch_free). Fails on a malformed row
// (starts not ascending from 0, a start beyond n, a token outside [0, vocab)).
int vet_batch_from_rows(vet_batch *b, const vet_row *rows, int n_rows, int vocab_size, vet_err *err);
void vet_batch_free(vet_batch *b);
// dst = rows [r0, r0 + n) of src (copied; same T, so padded to src's longest row), with
// row0 = src->row0 + r0 * T: the slice trains with the whole's dropout masks. 0 < n, r0 + n <= B.
int vet_batch_slice(vet_batch *dst, const vet_batch *src, int r0, int n, vet_err *err);
int vet_batch_n_targets(const vet_batch *b);  // positions with target != -1

// Word dropout (Iyyer et al. 2015; Bowman et al. 2016): each context token that carries no
// loss (target -1: the prompt but its last token, and the closing EOS) is replaced by replace_id (the
// tokenizer's unk) with probability p, the first token of each sample (BOS) and padding
// excepted. The response's inputs are never touched (teacher forcing stays exact). A model
// that cannot always see every word of the note (or its species) has to use the rest: a
// regularizer for small data, applied to training batches only. Draws one number per
// position from a vet_rng seeded with seed, in (row, position) order, so the result depends
// on the seed and the batch alone (the same on every device). Returns how many were replaced.
long vet_batch_drop_tokens(vet_batch *b, double p, int32_t replace_id, uint64_t seed);

// ---------------------------------------------------------------------------------------
// Weights. All tensors of one kind live in one fp32 buffer with typed pointers into it (llm.c
// style), shapes as in the HF checkpoint (Linear weight = (out, in)).
typedef struct {
    float *embed;       // (V, C)            model.embed_tokens.weight
    float *attn_norm;   // (L, C)            model.layers.l.input_layernorm.weight
    float *wq;          // (L, H*hd, C)      self_attn.q_proj.weight
    float *wk;          // (L, KVH*hd, C)    self_attn.k_proj.weight
    float *wv;          // (L, KVH*hd, C)    self_attn.v_proj.weight
    float *bq, *bk, *bv;// (L, H*hd), (L, KVH*hd), (L, KVH*hd)  Qwen2 only, else NULL
    float *wo;          // (L, C, H*hd)      self_attn.o_proj.weight
    float *mlp_norm;    // (L, C)            post_attention_layernorm.weight
    float *wgate;       // (L, F, C)         mlp.gate_proj.weight
    float *wup;         // (L, F, C)         mlp.up_proj.weight
    float *wdown;       // (L, C, F)         mlp.down_proj.weight
    float *final_norm;  // (C)               model.norm.weight
    float *lm_head;     // (V, C)            lm_head.weight, == embed when tied
} vet_weights;

// The projections LoRA can adapt, as bits of a mask.
enum {
    VET_LORA_Q = 1 << 0, VET_LORA_K = 1 << 1, VET_LORA_V = 1 << 2, VET_LORA_O = 1 << 3,
    VET_LORA_GATE = 1 << 4, VET_LORA_UP = 1 << 5, VET_LORA_DOWN = 1 << 6,
    VET_LORA_ALL = 0x7f,
};
#define VET_LORA_N_TARGETS 7
// Parses "q,k,v,o" / "all" / "gate,up,down" into a mask; names as in PEFT target_modules
// (q_proj ...) are accepted too.
int vet_lora_parse_targets(const char *spec, unsigned *mask, vet_err *err);
// PEFT module name of target bit i: "q_proj", "k_proj", ..., "down_proj".
const char *vet_lora_target_name(int i);

typedef struct {
    int r;              // rank
    float alpha;        // scale = alpha / r, or alpha / sqrt(r) with rslora
    int rslora;
    float dropout;      // on the adapter's input only, training only
    unsigned targets;   // VET_LORA_* mask
    float scale;        // derived
    // For target t and layer l: A (r, in_t), B (out_t, r), both fp32 in one buffer.
    float *A[VET_LORA_N_TARGETS];  // (L, r, in_t) or NULL when t is not a target
    float *B[VET_LORA_N_TARGETS];  // (L, out_t, r)
} vet_lora;

typedef struct {
    vet_config cfg;
    vet_weights w;        // base weights (fp32)
    float *w_mem;         // the buffer behind w
    size_t n_w;           // floats in w_mem
    int has_lora;
    vet_lora lora;
    float *lora_mem;      // the buffer behind lora.A/B
    size_t n_lora;        // floats in lora_mem
} vet_model;

// Loads a HF model directory (config.json + safetensors) or a GGUF file (model/model_gguf.h),
// converting to fp32.
int vet_model_load(vet_model *m, const char *dir, vet_err *err);
// Random init (normal std 0.02, norms 1, biases 0) from a config, deterministic in seed.
int vet_model_init(vet_model *m, const vet_config *cfg, uint64_t seed, vet_err *err);
void vet_model_free(vet_model *m);
// The rotary inverse frequencies (head_dim/2) of config c: its theta and its rope scaling
// (llama3 as transformers computes it, or a GGUF's per-frequency factors). Every backend's
// rope tables start here.
void vet_rope_inv_freq(const vet_config *c, float *inv_freq);
// Adds LoRA adapters: A kaiming-uniform(a=sqrt(5)) as PEFT does (bound 1/sqrt(in)), B zero.
int vet_model_add_lora(vet_model *m, int r, float alpha, float dropout, int rslora,
                       unsigned targets, uint64_t seed, vet_err *err);

// ---------------------------------------------------------------------------------------
// Training state: activations kept for backward, and gradients.
typedef enum { VET_TRAIN_LORA, VET_TRAIN_FULL } vet_train_mode;

typedef struct vet_acts vet_acts;  // activations sized for at most B x T (opaque)
vet_acts *vet_acts_new(const vet_model *m, int B, int T, vet_err *err);
void vet_acts_free(vet_acts *a);
// Label smoothing eps in [0, 1) for the loss of every later forward/backward (default 0):
// the loss and its gradient are those of torch's cross_entropy(label_smoothing=eps).
void vet_acts_set_label_smoothing(vet_acts *a, float eps);
// Residual dropout p in [0, 1) for every later training forward (default 0): each attention
// and MLP output (after o_proj / down_proj) is dropped before it joins the residual stream,
// as GPT-2's resid_pdrop. A regularizer for training small models on little data; not part of
// the LLaMA architecture, so inference and the saved weights are unchanged by it.
void vet_acts_set_resid_dropout(vet_acts *a, float p);

// Forward over a batch. Writes per-row logits into logits (B,T,V) when logits != NULL.
// Returns the summed cross-entropy over target positions in *loss_sum and their count in
// *n_targets (mean loss = loss_sum / n_targets). training != 0 applies LoRA dropout, drawing
// its masks from dropout_seed (so a step is reproducible).
int vet_model_forward(vet_model *m, vet_acts *a, const vet_batch *b, float *logits,
                      double *loss_sum, int *n_targets, int training, uint64_t dropout_seed,
                      vet_err *err);

// Backward of (loss_sum * loss_scale): call after vet_model_forward on the same batch.
// With loss_scale = 1 / (targets in the whole accumulated batch), gradients add up across
// micro-batches to the gradient of the mean loss. Gradients are accumulated (+=) into grads:
//   VET_TRAIN_LORA: grads has n_lora floats laid out like lora_mem (base weights get none).
//   VET_TRAIN_FULL: grads has n_w floats laid out like w_mem.
int vet_model_backward(vet_model *m, vet_acts *a, const vet_batch *b, float loss_scale,
                       vet_train_mode mode, float *grads, vet_err *err);

// ---------------------------------------------------------------------------------------
// Inference: one sequence at a time with a key/value cache (LoRA applied, no dropout).
typedef struct vet_kv vet_kv;  // the cache of one sequence, up to max_len positions (opaque)
vet_kv *vet_kv_new(const vet_model *m, int max_len, vet_err *err);
void vet_kv_free(vet_kv *kv);
void vet_kv_reset(vet_kv *kv);  // forget the sequence (the cache is reused)
int vet_kv_len(const vet_kv *kv);
// Appends n tokens to the sequence (a prompt at once, or one generated token) and writes the
// logits (V) of the last of them when logits != NULL. Positions continue from vet_kv_len.
int vet_model_step(const vet_model *m, vet_kv *kv, const int32_t *tokens, int n, float *logits,
                   vet_err *err);

// Sets the thread count for OpenMP loops and OpenBLAS (0 = all cores).
void vet_set_threads(int n);

#endif
