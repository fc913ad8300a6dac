// model_gguf.h — loading a vet_model from a GGUF file (llama.cpp, Ollama). vet_model_load
// (model.h) calls it for a path that is a GGUF file; the internals model.c shares with it.
#ifndef VET_MODEL_GGUF_H
#define VET_MODEL_GGUF_H

#include "base/err.h"
#include "model/model.h"

// The model in a GGUF file: its config from the metadata (io/gguf_config.h), every tensor
// checked against it by name and shape (a missing or unknown one refused by name), dequantized
// to fp32 (io/ggml_dequant.h), and for the llama architecture the rows of Q and K put back in
// Hugging Face's order: llama.cpp's converter interleaves each head's two rotary halves (row
// i + hd/2 of a head next to row i) for its own RoPE, vet rotates halves as transformers does.
// Refuses, with the numbers, weights that would not fit in memory.
int vet_model_load_gguf(vet_model *m, const char *path, vet_err *err);

// model.c: zeroes m, sets its config and allocates the fp32 weight buffer (uninitialized).
int vet_model_alloc(vet_model *m, const vet_config *cfg, vet_err *err);

#endif
