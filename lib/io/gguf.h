// gguf.h — the GGUF file format (llama.cpp, Ollama): its constants, and a validating reader.
//
// Layout (version 3, little-endian; version 2 is read too, it has the same layout):
//   u32 magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
//   kv_count x { string key, u32 value_type, value },
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset },
//   padding to general.alignment (default 32), then the data section; each tensor's offset is
//   relative to the data section and a multiple of the alignment.
// A string is u64 length + bytes (no NUL). An array is u32 element type + u64 count + elements.
// ne[0] is the fastest-varying dimension: a Hugging Face Linear weight (out, in) is stored with
// ne = {in, out}.
//
// Reading maps the file (read only) and checks everything before handing anything out: every
// length and count against the bytes left, every key unique, every tensor's data inside the file
// and not overlapping another's, its byte count equal to what its type and dims need. So a key,
// array or tensor reference handed out is always in bounds. A refusal names the file, the part
// (header, the key, the tensor) and what is wrong: a hostile file is an error, never a crash.
//
//   vet_gguf *g = vet_gguf_open("model.gguf", &err);
//   const char *arch = vet_gguf_get_str(g, "general.architecture");   // NULL when absent
//   uint32_t n; vet_gguf_get_u32(g, "llama.block_count", &n, &err);     // -1: absent or wrong type
//   const vet_gguf_tensor *t = vet_gguf_find_tensor(g, "blk.0.attn_q.weight");
//   vet_gguf_close(g);                                                  // unmaps: refs die here
#ifndef VET_GGUF_H
#define VET_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define VET_GGUF_MAGIC 0x46554747u   // "GGUF" read as a little-endian u32
#define VET_GGUF_VERSION 3
#define VET_GGUF_DEFAULT_ALIGNMENT 32
#define VET_GGUF_MAX_DIMS 4
// Bounds a hostile header cannot get past (real files are far below them): a key or tensor name,
// a string value (a chat template is a few KB), the number of keys and tensors.
#define VET_GGUF_MAX_NAME 256
#define VET_GGUF_MAX_STRING (16u << 20)
#define VET_GGUF_MAX_KV 65536
#define VET_GGUF_MAX_TENSORS 65536

// Metadata value types (gguf_type).
typedef enum {
    VET_GGUF_U8 = 0, VET_GGUF_I8 = 1, VET_GGUF_U16 = 2, VET_GGUF_I16 = 3, VET_GGUF_U32 = 4,
    VET_GGUF_I32 = 5, VET_GGUF_F32 = 6, VET_GGUF_BOOL = 7, VET_GGUF_STRING = 8, VET_GGUF_ARRAY = 9,
    VET_GGUF_U64 = 10, VET_GGUF_I64 = 11, VET_GGUF_F64 = 12,
} vet_gguf_type;
#define VET_GGUF_N_TYPES 13

// Tensor types (ggml_type). The ones vet reads are listed in vet_ggml_type_info; the others are
// named in messages only.
typedef enum {
    VET_GGML_F32 = 0, VET_GGML_F16 = 1, VET_GGML_Q4_0 = 2, VET_GGML_Q4_1 = 3, VET_GGML_Q5_0 = 6,
    VET_GGML_Q5_1 = 7, VET_GGML_Q8_0 = 8, VET_GGML_Q8_1 = 9, VET_GGML_Q2_K = 10, VET_GGML_Q3_K = 11,
    VET_GGML_Q4_K = 12, VET_GGML_Q5_K = 13, VET_GGML_Q6_K = 14, VET_GGML_Q8_K = 15,
    VET_GGML_I8 = 24, VET_GGML_I16 = 25, VET_GGML_I32 = 26, VET_GGML_I64 = 27, VET_GGML_F64 = 28,
    VET_GGML_BF16 = 30,
} vet_ggml_type;

// A tensor type's block: block_elems elements take block_bytes bytes (F32: 1 and 4; Q8_0: 32 and
// 34; Q4_K: 256 and 144). name is llama.cpp's ("Q4_K"); an unknown type gives block_elems 0 and
// name "type N" (formatted into a static buffer per call: use it at once).
typedef struct {
    const char *name;
    int block_elems;
    int block_bytes;
} vet_ggml_type_info;
vet_ggml_type_info vet_ggml_type_get(uint32_t type);
// Bytes a row of n elements of type takes; 0 when n is not a whole number of blocks or the type is
// unknown.
size_t vet_ggml_row_bytes(uint32_t type, int64_t n);

const char *vet_gguf_type_name(uint32_t type);   // "u32", "string", "array", ... ("type N" unknown)

// One metadata value. For an array, arr_type is the element type and n the count; data points at
// the first element in the mapping (strings: the first u64 length). Scalars: data points at the
// value. Strings: str/len (not NUL-terminated in the file; vet_gguf_get_str copies).
typedef struct {
    const char *key;         // NUL-terminated copy
    uint32_t type;           // vet_gguf_type
    uint32_t arr_type;       // arrays only
    uint64_t n;              // arrays: element count; strings: byte length
    const uint8_t *data;     // inside the mapping
} vet_gguf_kv;

typedef struct {
    const char *name;        // NUL-terminated copy
    uint32_t type;           // vet_ggml_type
    int n_dims;
    int64_t ne[VET_GGUF_MAX_DIMS];  // ne[0] fastest; unused dims are 1
    int64_t n_elems;
    const uint8_t *data;     // inside the mapping, in bounds, nbytes long
    size_t nbytes;
} vet_gguf_tensor;

typedef struct vet_gguf vet_gguf;

// Opens and validates path. NULL with err: VET_E_IO when it cannot be read, VET_E_INPUT for a
// file that is not a valid GGUF ("path: what is wrong"), VET_E_NOMEM.
vet_gguf *vet_gguf_open(const char *path, vet_err *err);
void vet_gguf_close(vet_gguf *g);

const char *vet_gguf_path(const vet_gguf *g);
uint32_t vet_gguf_version(const vet_gguf *g);
size_t vet_gguf_alignment(const vet_gguf *g);

size_t vet_gguf_n_kv(const vet_gguf *g);
const vet_gguf_kv *vet_gguf_kv_at(const vet_gguf *g, size_t i);
const vet_gguf_kv *vet_gguf_find_kv(const vet_gguf *g, const char *key);   // NULL when absent

size_t vet_gguf_n_tensors(const vet_gguf *g);
const vet_gguf_tensor *vet_gguf_tensor_at(const vet_gguf *g, size_t i);   // in file order
const vet_gguf_tensor *vet_gguf_find_tensor(const vet_gguf *g, const char *name);  // NULL when absent

// Typed getters. Each returns 0 and fills *out, or -1 with err naming the key: absent (a message
// saying so) or of another type ("key is a string, expected u32"). The integer getters accept
// any integer type whose value fits (converters differ: u32 here, i32 there); f32 accepts f32 and
// f64; bool accepts bool only.
int vet_gguf_get_u32(const vet_gguf *g, const char *key, uint32_t *out, vet_err *err);
int vet_gguf_get_i64(const vet_gguf *g, const char *key, int64_t *out, vet_err *err);
int vet_gguf_get_f32(const vet_gguf *g, const char *key, float *out, vet_err *err);
int vet_gguf_get_bool(const vet_gguf *g, const char *key, int *out, vet_err *err);
// A string value, malloc'd and NUL-terminated (refused when it holds a NUL byte); NULL with err.
char *vet_gguf_get_str(const vet_gguf *g, const char *key, vet_err *err);
// 1 when the key is present (any type).
int vet_gguf_has(const vet_gguf *g, const char *key);
// A token id (tokenizer.ggml.bos_token_id, ...): -1 in *out when the key is absent; refused when
// not an integer or outside 0..n_vocab-1.
int vet_gguf_get_token_id(const vet_gguf *g, const char *key, uint64_t n_vocab, int32_t *out, vet_err *err);

// Arrays. vet_gguf_get_array checks the key is an array of elem_type (any integer type for
// VET_GGUF_I64, f32/f64 for VET_GGUF_F32) and gives its count.
int vet_gguf_get_array(const vet_gguf *g, const char *key, uint32_t elem_type, uint64_t *n, vet_err *err);
// Element i of an integer array as int64 (any integer element type); of a float array as double.
int64_t vet_gguf_array_int(const vet_gguf_kv *kv, uint64_t i);
double vet_gguf_array_float(const vet_gguf_kv *kv, uint64_t i);
// Element i of a string array: its bytes (not NUL-terminated) and length. Strings in an array have
// variable length, so the reader keeps an offset table: O(1) per element.
const char *vet_gguf_array_str(const vet_gguf *g, const vet_gguf_kv *kv, uint64_t i, uint64_t *len);

#endif
