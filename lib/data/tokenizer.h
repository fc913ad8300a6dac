// tokenizer.h — one tokenizer interface over the two kinds vet reads: SentencePiece
// (tokenizer.model, data/spm.h; LLaMA-1/2, Mistral, TinyLlama) and Hugging Face's byte-level BPE
// (tokenizer.json, data/bpe.h; Llama-3, Qwen2, SmolLM2, GPT-2), the latter also as a GGUF model
// file carries it (tokenizer.ggml.*; data/bpe_gguf.c), and SentencePiece from a GGUF's "llama"
// vocabulary (data/spm_gguf.c).
//
// Which ids begin a prompt: tokenizer_config.json's add_bos_token when it says, else the
// tokenizer.json post-processor's template (Llama-3's adds <|begin_of_text|>; Qwen2's and
// SmolLM2's add nothing); SentencePiece models always begin with BOS, as vet did before; a GGUF
// (either kind): its tokenizer.ggml.add_bos_token, and its *_token_id for BOS/EOS/PAD/UNK.
// BOS/EOS/PAD/UNK: tokenizer_config.json's *_token, else config.json's *_token_id, else the
// template's tokens, else the usual names (<|begin_of_text|>/<s>; <|end_of_text|>/</s>/<|endoftext|>).
#ifndef VET_TOKENIZER_H
#define VET_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct vet_tokenizer vet_tokenizer;

typedef enum { VET_TOK_SPM, VET_TOK_BPE } vet_tok_kind;

// path: a tokenizer.model, a tokenizer.json, a GGUF model (a regular file beginning with the
// GGUF magic, whatever its name), or a model directory holding either of the first two. A directory
// with both: tokenizer.json when tokenizer_config.json's tokenizer_class is a fast one
// ("...Fast"), else tokenizer.model; vet_tokenizer_choice says which and why. NULL with err
// ("path: what is wrong"; VET_E_IO when nothing can be read, VET_E_INPUT for a bad file).
vet_tokenizer *vet_tokenizer_load(const char *path, vet_err *err);
void vet_tokenizer_free(vet_tokenizer *t);

// Appends the ids of text[0..len) to *ids (malloc'd, *cap entries, *n used). No BOS/EOS added.
int vet_tokenizer_encode(const vet_tokenizer *t, const char *text, size_t len, int32_t **ids,
                         size_t *n, size_t *cap, vet_err *err);

// The text of ids, malloc'd, NUL-terminated, always valid UTF-8: byte tokens are joined before
// any character is read; a sequence that is not UTF-8 (one cut mid-character) gives U+FFFD for
// each bad stretch, as Hugging Face's decode does. Special/control ids give "".
char *vet_tokenizer_decode(const vet_tokenizer *t, const int32_t *ids, size_t n, vet_err *err);
// The raw bytes the ids spell (*len of them; NUL-terminated; possibly ending mid-character), for
// a caller that prints text as it is generated and holds back an unfinished character.
char *vet_tokenizer_decode_bytes(const vet_tokenizer *t, const int32_t *ids, size_t n, size_t *len,
                                 vet_err *err);
// The length of the longest prefix of s[0..n) that does not end inside a UTF-8 character.
size_t vet_tokenizer_complete_len(const char *s, size_t n);

int vet_tokenizer_vocab_size(const vet_tokenizer *t);
int vet_tokenizer_bos_id(const vet_tokenizer *t);   // -1 when none
int vet_tokenizer_eos_id(const vet_tokenizer *t);
int vet_tokenizer_pad_id(const vet_tokenizer *t);
int vet_tokenizer_unk_id(const vet_tokenizer *t);
// 1 when a prompt begins with the BOS id (what AutoTokenizer(...)(text).input_ids does).
int vet_tokenizer_add_bos(const vet_tokenizer *t);
// The piece of an id (NULL when out of range); the id of a piece (-1 when not in the vocabulary).
const char *vet_tokenizer_id_to_piece(const vet_tokenizer *t, int id);
int vet_tokenizer_piece_to_id(const vet_tokenizer *t, const char *piece);
// Control pieces (SentencePiece's <s>, </s>, <unk>) and special added tokens (tokenizer.json).
int vet_tokenizer_is_special(const vet_tokenizer *t, int id);

vet_tok_kind vet_tokenizer_kind(const vet_tokenizer *t);
const char *vet_tokenizer_kind_name(const vet_tokenizer *t);  // "spm", "bpe", "gguf-bpe" or "gguf-spm"
// The file actually read, the sha256 (hex) of its bytes (for a GGUF: of its tokenizer metadata,
// docs/formats.md), and a line saying which file of a directory holding both kinds was taken and
// why ("" when there was no choice).
const char *vet_tokenizer_path(const vet_tokenizer *t);
const char *vet_tokenizer_sha256(const vet_tokenizer *t);
const char *vet_tokenizer_choice(const vet_tokenizer *t);

// A stream header's tokenizer map (docs/formats.md) names its kind in "kind": "spm", "bpe", "gguf-bpe"
// or "gguf-spm";
// a map without it (streams made before the field) is "spm". Copies the kind into out (n bytes,
// cut to fit); tok may be NULL.
struct msgpack_object;
void vet_tokenizer_header_kind(const struct msgpack_object *tok, char *out, size_t n);

#endif
