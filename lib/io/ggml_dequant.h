// ggml_dequant.h — ggml's tensor types (GGUF files) to fp32: pure functions over blocks.
//
// A quantized tensor is a run of blocks along each row (ne[0]); a block of block_elems values
// (vet_ggml_type_get) holds one or two fp16 scales and the packed integers. The layouts are
// llama.cpp's (ggml-common.h); each function in ggml_dequant.c says its block. Results are what
// llama.cpp's dequantize_row_* and gguf-py's gguf.quants.dequantize compute, in the same fp32
// operation order, so they agree bit for bit (tests/reference/test_gguf_model.py checks gguf-py's).
//
// Types read: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
// Refused (by name): the IQ and ternary types, Q8_1 / Q8_K (ggml's internal dot-product forms),
// the integer and F64 types.
#ifndef VET_GGML_DEQUANT_H
#define VET_GGML_DEQUANT_H

#include <stdint.h>

#include "base/err.h"
#include "io/gguf.h"

// 1 when vet converts type to fp32.
int vet_ggml_can_dequant(uint32_t type);
// The types vet reads, for messages: "F32, F16, BF16, ...".
const char *vet_ggml_dequant_names(void);

// n values of type from src (vet_ggml_row_bytes(type, n) bytes: n a whole number of blocks;
// src needs no alignment) into dst (n floats). No check on the values: a NaN scale gives NaNs.
// -1 with err when type is not read or n is not whole blocks.
int vet_ggml_dequant(uint32_t type, const void *src, int64_t n, float *dst, vet_err *err);

// A GGUF tensor to fp32 (t->n_elems floats into dst, in ggml order: ne[0] fastest, so an
// (out, in) weight comes out row-major (out, in)), refusing a type vet does not read and any NaN
// or Inf in the result, naming the file and the tensor.
int vet_gguf_tensor_f32(const vet_gguf *g, const vet_gguf_tensor *t, float *dst, vet_err *err);

#endif
