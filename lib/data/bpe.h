// bpe.h — Hugging Face's byte-level BPE, read from a tokenizer.json (Llama-3, Qwen2, SmolLM2,
// GPT-2 and most recent small models ship one instead of a SentencePiece tokenizer.model).
//
// What is read, and what is refused (a refusal names the part: never tokenize silently wrong):
//   model          type "BPE": vocab, merges ("a b" strings or ["a","b"] pairs; rank = position),
//                  ignore_merges, unk_token/fuse_unk, byte_fallback. Refused: dropout > 0, a
//                  continuing_subword_prefix or end_of_word_suffix, a merge of unknown pieces or
//                  whose result is not in the vocabulary, ids out of range, two pieces on one id,
//                  an id with no piece.
//   added_tokens   matched whole in the text before pre-tokenization (leftmost, longest first;
//                  those with "normalized": false first, as Hugging Face does), never merged.
//                  Refused: lstrip, rstrip or single_word set.
//   normalizer     null, NFC, or a Sequence of those (NFC per stretch between the raw-text added
//                  tokens, with utf8proc; bpe_normalize.c). Refused by name otherwise (NFKC,
//                  Lowercase, ...).
//   pre_tokenizer  ByteLevel (GPT-2's regex when use_regex, add_prefix_space honoured), Split
//                  (a Regex or String pattern; Isolated, Removed, MergedWithPrevious,
//                  MergedWithNext, Contiguous; invert), Digits, and a Sequence of those ending in
//                  ByteLevel. Regexes run with PCRE2 (UTF + UCP, JIT when it has one).
//   post_processor null, ByteLevel, TemplateProcessing (its special tokens around $A), Sequence.
//   decoder        null or ByteLevel.
// A GGUF file's tokenizer.ggml.* metadata is read too (vet_bpe_load_gguf; bpe_gguf.c says what is
// built from it and what is refused).
#ifndef VET_BPE_H
#define VET_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct vet_bpe vet_bpe;

// path is a tokenizer.json. NULL with err ("path: what is wrong"): VET_E_IO when it cannot be
// read, VET_E_INPUT when it is not a byte-level BPE tokenizer vet can honour, VET_E_NOMEM.
vet_bpe *vet_bpe_load(const char *path, vet_err *err);
void vet_bpe_free(vet_bpe *b);

// What a GGUF says around its vocabulary: the special ids (-1 when absent), whether a prompt
// begins with BOS, and the model and pre-tokenizer names.
typedef struct {
    int32_t bos, eos, unk, pad;
    int add_bos;
    char model[32], pre[64];
} vet_bpe_gguf_info;

// path is a GGUF file whose tokenizer.ggml.model is "gpt2". NULL with err, as vet_bpe_load.
// vet_bpe_sha256 is then over the tokenizer's metadata, not the file (docs/formats.md).
vet_bpe *vet_bpe_load_gguf(const char *path, vet_err *err);
// The GGUF's info, or NULL when b was read from a tokenizer.json.
const vet_bpe_gguf_info *vet_bpe_gguf(const vet_bpe *b);

// Appends the ids of text[0..len) (UTF-8; refused otherwise) to *ids (malloc'd, *cap entries,
// *n used). Added tokens in the text become their ids; no BOS/EOS is added.
int vet_bpe_encode(const vet_bpe *b, const char *text, size_t len, int32_t **ids, size_t *n,
                   size_t *cap, vet_err *err);

// The bytes of ids joined (byte tokens are joined before any UTF-8 is read, so a character split
// over tokens comes back whole), malloc'd, NUL-terminated, *len bytes. Special added tokens give
// nothing. The bytes are what the ids spell: possibly not UTF-8 (a sequence cut mid-character).
char *vet_bpe_decode_bytes(const vet_bpe *b, const int32_t *ids, size_t n, size_t *len, vet_err *err);

int vet_bpe_vocab_size(const vet_bpe *b);   // largest id + 1
int vet_bpe_unk_id(const vet_bpe *b);       // the model's unk_token, -1 when none
const char *vet_bpe_id_to_piece(const vet_bpe *b, int id);  // NULL when out of range
int vet_bpe_piece_to_id(const vet_bpe *b, const char *piece);  // -1 when not in the vocabulary
int vet_bpe_is_special(const vet_bpe *b, int id);  // an added token marked "special"

// The post-processor's template for one sequence: the special token before $A (-1 when none)
// and after it (-1 when none). Llama-3's adds <|begin_of_text|> before; GPT-2-style none.
int vet_bpe_template_bos(const vet_bpe *b);
int vet_bpe_template_eos(const vet_bpe *b);
int vet_bpe_has_template(const vet_bpe *b);  // 1 when the file has a TemplateProcessing

const char *vet_bpe_path(const vet_bpe *b);
const char *vet_bpe_sha256(const vet_bpe *b);

#endif
