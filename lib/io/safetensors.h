// safetensors.h — read and write .safetensors files (the Hugging Face weight format).
//
// File layout: u64 little-endian N, then N bytes of JSON header, then the data section.
// Header: {"__metadata__": {str: str}, "<name>": {"dtype": "BF16", "shape": [..],
// "data_offsets": [begin, end]}, ...}; offsets are relative to the data section.
//
// Reading maps the files (mmap, read only) and validates every header entry, so a tensor
// reference handed out is always in bounds and its byte count agrees with dtype x shape.
// A reference's `data` may be unaligned (the format does not promise alignment): read it
// with vet_tensor_read_f32 or memcpy.
//
//   vet_tensors *t = vet_tensors_open_dir("models/llama", &err);   // single file or shards
//   const vet_tensor_ref *r = vet_tensors_find(t, "model.embed_tokens.weight");
//   vet_tensor_read_f32(r, 2, (int64_t[]){vocab, dim}, buf, &err);  // any float dtype -> fp32
//   vet_tensors_close(t);                                          // unmaps; refs die here
#ifndef VET_SAFETENSORS_H
#define VET_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef enum { VET_DT_F32, VET_DT_F16, VET_DT_BF16, VET_DT_I32, VET_DT_I64, VET_DT_U8, VET_DT_I8 } vet_dtype;

#define VET_ST_MAX_DIMS 8
#define VET_ST_MAX_HEADER (100u << 20)   // a header beyond 100 MB is refused as corrupt

// Bytes per element; "F32", "BF16", ...; and back (-1 for an unknown name).
size_t vet_dtype_size(vet_dtype dt);
const char *vet_dtype_name(vet_dtype dt);
int vet_dtype_parse(const char *name);

typedef struct {
    char *name;
    vet_dtype dtype;
    int ndim;
    int64_t shape[VET_ST_MAX_DIMS];
    const void *data;     // inside the mapping; valid until vet_tensors_close
    size_t nbytes;
    const char *file;     // path of the file holding it (for messages)
} vet_tensor_ref;

typedef struct vet_tensors vet_tensors;

// One .safetensors file (a model's, an adapter's, anything).
vet_tensors *vet_tensors_open_file(const char *path, vet_err *err);
// A Hugging Face model directory: model.safetensors when present, else
// model.safetensors.index.json and its shards (transformers' order, so a folder holding both
// is read as transformers reads it). A path that is a regular file is opened as one file.
vet_tensors *vet_tensors_open_dir(const char *dir, vet_err *err);
// Tensors are kept sorted by name; find is a binary search. NULL if absent.
const vet_tensor_ref *vet_tensors_find(const vet_tensors *t, const char *name);
size_t vet_tensors_count(const vet_tensors *t);
const vet_tensor_ref *vet_tensors_at(const vet_tensors *t, size_t i);
// The string value of a "__metadata__" key of the (first) file, or NULL.
const char *vet_tensors_meta(const vet_tensors *t, const char *key);
void vet_tensors_close(vet_tensors *t);

int64_t vet_tensor_numel(const vet_tensor_ref *r);
// Converts the tensor to fp32 into out (numel floats), from any dtype. Checks first that its
// shape is exactly (ndim, shape) and names both shapes when not. r may be NULL (a missing
// tensor straight from vet_tensors_find): that is an error too, not a crash. A weight, so any NaN
// or Inf in it is refused, naming the tensor and the element (every model, adapter and
// checkpoint loader reads through this).
int vet_tensor_read_f32(const vet_tensor_ref *r, int ndim, const int64_t *shape, float *out, vet_err *err);
// The same conversion with no check on the values: for tools that show a file as it is
// (tests/helpers/vet-inspect), special values included.
int vet_tensor_convert_f32(const vet_tensor_ref *r, int ndim, const int64_t *shape, float *out, vet_err *err);
// Formats a shape as "[a, b, c]" into buf; returns buf.
char *vet_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);

// ---------------------------------------------------------------------------------------
// Writer: collect tensors, then write them in one go. The file has "__metadata__":
// {"format": "pt", ...extra pairs}, tensors sorted by name, contiguous offsets, the header
// padded with spaces to a multiple of 8 bytes (so every tensor of 2/4/8-byte elements stays
// aligned, as the Python writer does).
typedef struct vet_st_writer vet_st_writer;

vet_st_writer *vet_st_writer_new(void);
// Adds a tensor by reference: data (numel x size of dt bytes) must stay valid until write.
int vet_st_writer_add(vet_st_writer *w, const char *name, vet_dtype dt, int ndim, const int64_t *shape,
                      const void *data, vet_err *err);
// Adds fp32 data stored as dt (F32, F16 or BF16): converts into a copy the writer owns.
int vet_st_writer_add_f32_as(vet_st_writer *w, const char *name, vet_dtype dt, int ndim, const int64_t *shape,
                             const float *data, vet_err *err);
// Same, but the writer takes ownership of a malloc'ed buffer already in dt (freed by the writer).
int vet_st_writer_add_owned(vet_st_writer *w, const char *name, vet_dtype dt, int ndim, const int64_t *shape,
                            void *data, vet_err *err);
// Adds (or replaces) a "__metadata__" string pair.
int vet_st_writer_meta(vet_st_writer *w, const char *key, const char *val, vet_err *err);
size_t vet_st_writer_count(const vet_st_writer *w);
// Total bytes of tensor data added so far.
size_t vet_st_writer_data_bytes(const vet_st_writer *w);
// Writes path atomically: "<path>.tmp.<pid>", fsync, rename. May be called more than once.
int vet_st_writer_write(vet_st_writer *w, const char *path, vet_err *err);
void vet_st_writer_free(vet_st_writer *w);

#endif
