// spm_proto.h — a SentencePiece model (sentencepiece_model.proto's ModelProto) serialized from
// its parts, so a vocabulary held elsewhere (a GGUF's tokenizer.ggml.*, data/spm_gguf.c) can be
// loaded by the sentencepiece library itself (vet_spm_from_proto) and tokenize exactly as it.
//
// Debian's libsentencepiece-dev ships no protobuf headers, so the few fields are written here by
// hand in protobuf's wire format (varints, fixed32 floats, length-delimited strings and messages):
//   ModelProto       1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
//   SentencePiece    1 piece (string), 2 score (float), 3 type (enum: 1 normal, 2 unknown,
//                    3 control, 4 user-defined, 5 unused, 6 byte)
//   TrainerSpec      3 model_type (2 BPE), 35 byte_fallback, 45-48 unk/bos/eos/pad_piece
//   NormalizerSpec   1 name ("identity"), 3 add_dummy_prefix, 4 remove_extra_whitespaces,
//                    5 escape_whitespaces (no precompiled_charsmap: no normalization rule)
#ifndef VET_SPM_PROTO_H
#define VET_SPM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct {
    int32_t n;                   // pieces, in id order
    const char *const *piece;    // piece[i]: piece_len[i] bytes (not NUL-terminated)
    const size_t *piece_len;
    const float *score;          // (n,)
    const uint8_t *type;         // (n,) 1..6 as above
    int byte_fallback;           // 1: unknown bytes become <0xNN> pieces
    int add_dummy_prefix;        // 1: a space (U+2581) is put before the text
    int remove_extra_whitespaces;
    // The special pieces by spelling (SentencePieceProcessor finds bos_id() etc. through them);
    // NULL: not written.
    const char *unk_piece, *bos_piece, *eos_piece, *pad_piece;
} vet_spm_proto;

// The serialized ModelProto of m (malloc'd, *len bytes). -1 with err when out of memory.
int vet_spm_proto_serialize(const vet_spm_proto *m, uint8_t **out, size_t *len, vet_err *err);

// How a model turns text into what its pieces are matched against: its NormalizerSpec (and the
// TrainerSpec's treat_whitespace_as_suffix), with protobuf's defaults where a field is absent.
// llama.cpp's "llama" runtime applies none of it but the dummy prefix and the U+2581 escaping,
// so vet-export needs all of it to tell whether a GGUF can hold the tokenizer.
typedef struct {
    char name[32];                // NormalizerSpec.name: "identity", "nmt_nfkc", ... ("" when absent)
    size_t charsmap_len;          // bytes of precompiled_charsmap: 0 when no character rule applies
    int add_dummy_prefix;         // default true
    int remove_extra_whitespaces; // default true
    int escape_whitespaces;       // default true
    int whitespace_as_suffix;     // TrainerSpec.treat_whitespace_as_suffix, default false
} vet_spm_norm;

// Reads back from a serialized ModelProto (a tokenizer.model) what SentencePieceProcessor's
// interface does not tell: each piece's type into types[0..n) (user-defined, 4, included; 0 for a
// type outside 1..6) and the normalizer into *norm.
// -1 when the bytes are not a ModelProto of n pieces.
int vet_spm_proto_read(const void *data, size_t len, uint8_t *types, int32_t n, vet_spm_norm *norm);

#endif
