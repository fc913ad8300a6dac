// ggml_quant.h — rows of fp32 encoded in ggml's tensor types, for the GGUF files vet writes.
//
// F16: IEEE binary16 per element (base/half.h: round to nearest, ties to even).
// Q8_0: blocks of 32 elements, 34 bytes each: an f16 scale d, then 32 int8 q, with x ~ d * q:
//   amax = max |x| over the block,  d = amax / 127,  q = roundf(x * (1/d))   (fp32 arithmetic,
//   round half away from zero; an all-zero block has d = 0 and q = 0)
// which is ggml's reference quantize_row_q8_0 and gguf-py's quants.Q8_0, so the bytes are the
// ones llama.cpp's converter writes. |x - d'q| <= d/2 plus the f16 rounding of d (d' = f16(d)).
// Non-finite input is refused (a NaN or Inf would poison a whole block), and so is a value beyond
// f16's range (65504; for Q8_0 a block whose scale is: |x| > 127 * 65504).
#ifndef VET_GGML_QUANT_H
#define VET_GGML_QUANT_H

#include <stddef.h>
#include <stdint.h>

#define VET_Q8_0_BLOCK 32
#define VET_Q8_0_BLOCK_BYTES 34

// n must be a multiple of VET_Q8_0_BLOCK; dst holds n / 32 * 34 bytes. 0, or -1 when the row
// holds a non-finite value or one too large for the f16 scale (dst is then partly written).
int vet_ggml_q8_0_row(uint8_t *dst, const float *x, int64_t n);
void vet_ggml_q8_0_dequant_row(float *y, const uint8_t *src, int64_t n);

// dst holds 2n bytes. 0, or -1 when a value is non-finite or beyond f16's range.
int vet_ggml_f16_row(uint8_t *dst, const float *x, int64_t n);

#endif
