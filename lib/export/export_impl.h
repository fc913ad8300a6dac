// export_impl.h — the two halves of a GGUF export, shared by export.c: the model
// (export_model.c) and the tokenizer (export_vocab.c). Not for use outside lib/export/.
#ifndef VET_EXPORT_IMPL_H
#define VET_EXPORT_IMPL_H

#include "export/export.h"
#include "io/gguf_write.h"
#include "model/model.h"

// What the writer's fill functions read when the file is written: one per tensor.
typedef struct {
    const float *src;          // (rows, cols) row-major, as the HF checkpoint holds it
    int64_t rows, cols;
    int perm_heads;            // > 0: rows permuted for llama.cpp's RoPE, heads of rows/perm_heads
    uint32_t type;             // the ggml type written
} export_src;

typedef struct {
    export_src *src;           // (cap) owned, allocated once: the writer points into it
    int n, cap;
    float rope_freqs[VET_ROPE_MAX_FACTORS];   // (head_dim/2) rope_freqs.weight, when written
} export_srcs;

// Refuses what GGUF's llama/qwen2 cannot say (rope scaling for qwen2) by name. 0 or -1.
int export_check_config(const vet_config *c, vet_err *err);

// general.* and <arch>.* keys and every tensor of m into w; srcs keeps the fill contexts (free
// srcs->src after the write). name is general.name.
int export_model(vet_gguf_writer *w, const vet_model *m, uint32_t type, const char *name, export_srcs *srcs,
                 vet_export_result *r, vet_err *err);

// tokenizer.ggml.* for the tokenizer in dir, padded to vocab_size entries. 1 when written, 0
// when dir holds no tokenizer.json or tokenizer.model (nothing written), -1 with err.
int export_vocab(vet_gguf_writer *w, const char *dir, int vocab_size, vet_export_result *r, vet_err *err);

#endif
