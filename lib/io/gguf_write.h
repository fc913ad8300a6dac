// gguf_write.h — writing GGUF v3 files (the layout is in io/gguf.h).
//
// Collect first, write once: metadata values of any type (scalars, strings, arrays of numbers or
// strings) and tensors (name, ggml type, dims) are added to a writer, then vet_gguf_write lays
// the file out:
//   header, the kvs in the order they were set, the tensor infos in the order they were added,
//   zero padding to the alignment, then each tensor's data at an offset that is a multiple of
//   the alignment (zero padding between them).
// The alignment is the u32 "general.alignment" when set (a power of two, at least 8: llama.cpp
// refuses others), else 32, the format's default.
//
// A tensor's bytes are not held by the writer: the caller gives a fill function that produces
// them when the file is written, so a model is encoded one tensor at a time (a 7B model's F16
// copy never sits in memory next to its fp32 one). Output goes through base/atomic_file.h: a
// failed write leaves no file.
//
//   vet_gguf_writer *w = vet_gguf_writer_new(&err);
//   vet_gguf_set_str(w, "general.architecture", "llama", &err);
//   vet_gguf_add_tensor(w, "output_norm.weight", VET_GGML_F32, 1, (int64_t[]){576}, fill, ctx, &err);
//   vet_gguf_write(w, "model.gguf", &err);
//   vet_gguf_writer_free(w);
#ifndef VET_GGUF_WRITE_H
#define VET_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "io/gguf.h"

// llama.cpp keeps tensor names in a 64-byte buffer (GGML_MAX_NAME): longer ones are refused.
#define VET_GGUF_WRITE_MAX_NAME 63

typedef struct vet_gguf_writer vet_gguf_writer;

vet_gguf_writer *vet_gguf_writer_new(vet_err *err);
void vet_gguf_writer_free(vet_gguf_writer *w);

// Metadata. Setting a key again replaces its value (keeping its place). Every setter copies what
// it is given; -1 with err only when out of memory or for a bad key (empty or over
// VET_GGUF_MAX_NAME bytes).
int vet_gguf_set_u32(vet_gguf_writer *w, const char *key, uint32_t v, vet_err *err);
int vet_gguf_set_i32(vet_gguf_writer *w, const char *key, int32_t v, vet_err *err);
int vet_gguf_set_u64(vet_gguf_writer *w, const char *key, uint64_t v, vet_err *err);
int vet_gguf_set_f32(vet_gguf_writer *w, const char *key, float v, vet_err *err);
int vet_gguf_set_bool(vet_gguf_writer *w, const char *key, int v, vet_err *err);
int vet_gguf_set_str(vet_gguf_writer *w, const char *key, const char *s, vet_err *err);
// Arrays: n elements of a fixed-size type (u8 ... f64, bool) from data (elem_type's size each),
// or n strings (NUL-terminated).
int vet_gguf_set_array(vet_gguf_writer *w, const char *key, uint32_t elem_type, const void *data,
                       uint64_t n, vet_err *err);
int vet_gguf_set_str_array(vet_gguf_writer *w, const char *key, const char *const *strs, uint64_t n,
                           vet_err *err);

// kv of the GGUF g (being read) under its own key, its value byte for byte: scalars, strings and
// arrays of either, as the reader accepts them. How a model read from a GGUF passes on metadata
// vet does not rebuild (its tokenizer).
int vet_gguf_copy_kv(vet_gguf_writer *w, const vet_gguf *g, const vet_gguf_kv *kv, vet_err *err);

// Produces a tensor's nbytes bytes into dst when the file is written; 0, or -1 with err (which
// stops the write).
typedef int (*vet_gguf_fill_fn)(void *ctx, uint8_t *dst, size_t nbytes, vet_err *err);

// Adds a tensor of ggml type F32, F16, BF16 or Q8_0 (the types vet writes) with n_dims dims
// (ne[0] fastest; 1 to 4 dims). Refused: a duplicate or over-long name, another type, a dim < 1,
// ne[0] not a whole number of the type's blocks (Q8_0: 32). fill(ctx, ...) runs during
// vet_gguf_write; ctx must live until then.
int vet_gguf_add_tensor(vet_gguf_writer *w, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                        vet_gguf_fill_fn fill, void *ctx, vet_err *err);

// Bytes a tensor of type and n elements takes in the file (0 for a type the writer does not
// know or n not a whole number of blocks).
size_t vet_gguf_write_nbytes(uint32_t type, int64_t n);

size_t vet_gguf_writer_n_tensors(const vet_gguf_writer *w);
size_t vet_gguf_writer_n_kv(const vet_gguf_writer *w);

// Writes the file to path ("-": stdout), atomically. -1 with err: VET_E_IO when it cannot be
// written, VET_E_USAGE for a bad general.alignment, or whatever a fill function reported.
int vet_gguf_write(vet_gguf_writer *w, const char *path, vet_err *err);

#endif
