// spm_gguf.h — a SentencePiece tokenizer from a GGUF file's metadata: tokenizer.ggml.model
// "llama" (LLaMA-1/2, Mistral, TinyLlama GGUFs), rebuilt as a SentencePiece model
// (data/spm_proto.h) and run by the sentencepiece library, so it tokenizes as the model's
// tokenizer.model does. data/bpe_gguf.c reads the other kind ("gpt2").
#ifndef VET_SPM_GGUF_H
#define VET_SPM_GGUF_H

#include <stdint.h>

#include "base/err.h"
#include "data/spm.h"

typedef struct {
    int32_t bos, eos, unk, pad;  // tokenizer.ggml.*_token_id; -1 when absent (unk: the unknown piece)
    int add_bos;                 // tokenizer.ggml.add_bos_token; absent: 1 when there is a BOS id
    int add_space_prefix;        // tokenizer.ggml.add_space_prefix; absent: 1 (llama.cpp's default)
} vet_spm_gguf_info;

// 1 when the GGUF at path says tokenizer.ggml.model "llama"; 0 when it says another model or has
// none (bpe_gguf.c then names what is wrong); -1 with err when it is not a GGUF vet can read.
int vet_gguf_tokenizer_is_spm(const char *path, vet_err *err);

// The tokenizer of a "llama" GGUF; its sha256 (vet_spm_sha256) is over the canonical tokenizer
// metadata (docs/formats.md), not the file. NULL with err (VET_E_INPUT naming the key and what is
// wrong with it: scores or token types missing or of the wrong length or type, a type out of
// range, no unknown piece, a duplicate, empty or non-UTF-8 piece, a special id out of range).
vet_spm *vet_spm_load_gguf(const char *path, vet_spm_gguf_info *info, vet_err *err);

#endif
