// export.h — the vet-export job: a Hugging Face model directory (optionally with a PEFT LoRA
// adapter merged in) written as one GGUF v3 file that llama.cpp, Ollama and transformers' GGUF
// loader read (docs/formats.md, "GGUF out").
//
// The file holds the architecture's hyperparameters (export_model.c), every weight under
// llama.cpp's tensor names, and the tokenizer of the model directory as tokenizer.ggml.*
// (export_vocab.c). 2-D weights take the requested type; 1-D ones (norms, biases) stay F32, as
// llama.cpp's converter keeps them.
#ifndef VET_EXPORT_H
#define VET_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct {
    const char *model_dir;     // config.json + safetensors (+ tokenizer.json or tokenizer.model)
    const char *adapter_dir;   // a PEFT LoRA adapter to merge, or NULL
    const char *out;           // the .gguf to write; "-" is stdout
    uint32_t type;             // VET_GGML_F32, VET_GGML_F16 or VET_GGML_Q8_0
} vet_export_opts;

typedef struct {
    char arch[16];             // "llama" or "qwen2"
    size_t n_tensors, n_kv;
    int n_f16_fallback;        // Q8_0 asked, but a row length not a multiple of 32: written F16
    int has_tokenizer;         // 0: the directory had none, nothing tokenizer.* was written
    char tokenizer[16];        // "gpt2" (byte-level BPE) or "llama" (SentencePiece)
    char pre[16];              // gpt2 only: tokenizer.ggml.pre
} vet_export_result;

// "f32", "f16", "q8_0" -> the ggml type; -1 with err (VET_E_USAGE) naming the choices.
int vet_export_parse_type(const char *s, uint32_t *type, vet_err *err);

// Runs the export. -1 with err: VET_E_IO (unreadable inputs, an unwritable output), VET_E_INPUT
// (a model, adapter or tokenizer vet cannot read or GGUF cannot hold), VET_E_NONFINITE (a weight
// beyond the range of the requested type).
int vet_export_gguf(const vet_export_opts *o, vet_export_result *r, vet_err *err);

#endif
