// spm.h — a C interface to SentencePiece (the tokenizer.model of LLaMA-family models).
// The one C++ file in vet (spm_shim.cc) sits behind it.
#ifndef VET_SPM_H
#define VET_SPM_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "data/spm_proto.h"

typedef struct vet_spm vet_spm;

// path is a tokenizer.model file or a directory holding one. Fails with a message that says
// what is wrong: missing file, not a SentencePiece model.
vet_spm *vet_spm_load(const char *path, vet_err *err);
// A model from a serialized ModelProto built elsewhere (data/spm_proto.h; a GGUF's vocabulary):
// path is the file it came from (for messages and vet_spm_path), sha256_hex what names it.
vet_spm *vet_spm_from_proto(const char *path, const void *proto, size_t len, const char *sha256_hex, vet_err *err);
void vet_spm_free(vet_spm *s);

// Appends the ids of text[0..len) to *ids (a malloc'd buffer of *cap entries, grown as
// needed; *n is the count in it). No BOS/EOS: callers add those.
int vet_spm_encode(const vet_spm *s, const char *text, size_t len, int32_t **ids, size_t *n,
                   size_t *cap, vet_err *err);
// The text of ids, malloc'd and NUL-terminated (control ids such as BOS/EOS decode to "").
char *vet_spm_decode(const vet_spm *s, const int32_t *ids, size_t n, vet_err *err);

int vet_spm_vocab_size(const vet_spm *s);
int vet_spm_bos_id(const vet_spm *s);  // -1 when the model has none
int vet_spm_eos_id(const vet_spm *s);
int vet_spm_pad_id(const vet_spm *s);
int vet_spm_unk_id(const vet_spm *s);
// The piece of an id (NULL when out of range); the id of a piece (the unk id when unknown).
const char *vet_spm_id_to_piece(const vet_spm *s, int id);
int vet_spm_piece_to_id(const vet_spm *s, const char *piece);
// True for control (<s>, </s>) and unknown pieces; byte pieces (<0x0A>) are not control.
int vet_spm_is_control(const vet_spm *s, int id);
// The piece's score (BPE: its merge priority; unigram: its log probability); 0 out of range.
float vet_spm_score(const vet_spm *s, int id);
// The piece's type, numbered as SentencePiece (and GGUF's tokenizer.ggml.token_type) number them:
// VET_SPM_NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4 (matched whole in text), UNUSED 5, BYTE 6
// (<0x0A>); 0 out of range. Read from the model's bytes (data/spm_proto.h), which the processor's
// interface does not expose.
enum { VET_SPM_NORMAL = 1, VET_SPM_UNKNOWN = 2, VET_SPM_CONTROL = 3, VET_SPM_USER_DEFINED = 4, VET_SPM_UNUSED = 5,
       VET_SPM_BYTE = 6 };
int vet_spm_piece_type(const vet_spm *s, int id);
// 1 when the normalizer puts a space (U+2581) before the text (normalizer_spec.add_dummy_prefix).
int vet_spm_add_dummy_prefix(const vet_spm *s);
// The model's normalizer settings (data/spm_proto.h), read from its bytes; NULL when they could
// not be read back (a model SentencePiece accepts but vet's reader does not follow).
const vet_spm_norm *vet_spm_normalizer(const vet_spm *s);

// The model file actually read and the sha256 (hex) of its bytes.
const char *vet_spm_path(const vet_spm *s);
const char *vet_spm_sha256(const vet_spm *s);

#endif
