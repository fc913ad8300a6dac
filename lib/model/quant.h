// quant.h — base-weight quantization on the host: int8 with one scale per output row, and
// NF4 (QLoRA's 4-bit NormalFloat) with one absmax per block of 64. Plain C, used to quantize
// a model's weight matrices before they are uploaded to a device (kernels/host/gpu_model.c,
// kernels/host/gpu_infer.c), and by tests as the reference the device dequantization must equal.
//
// int8, per output row r of a (rows, cols) matrix:
//   scale[r] = max_c |w[r,c]| / 127                  (fp32)
//   q[r,c]   = round-half-even(w[r,c] / scale[r]), clamped to [-127, 127]
//   w'[r,c]  = q[r,c] * scale[r]                     (one fp32 multiply)
// so |w - w'| <= scale/2 per element (up to fp32 rounding of the division). A zero row has
// scale 0 and dequantizes to zeros. Storage: 1 byte per weight + 4 bytes per row.
//
// NF4, exactly as bitsandbytes' quantize_4bit(quant_type="nf4", blocksize=64) without double
// quantization: the weight is flattened row-major, cut into blocks of 64 consecutive values,
//   absmax[b] = max |w| over the block                (fp32, stored as is: NO double
//                                                      quantization of the absmax values)
//   code      = the index of the NF4 value nearest to w * (1/absmax) (ties to the lower code,
//               as bitsandbytes' decision tree: x > midpoint takes the upper one)
//   w'        = VET_NF4_CODES[code] * absmax[b]       (one fp32 multiply)
// The last block of a length that is not a multiple of 64 is shorter (its absmax over its own
// values): any length is handled. A zero block has absmax 0, codes 7 (the value 0.0) and
// dequantizes to zeros. Two codes per byte, in bitsandbytes' order: element 2j in the HIGH
// nibble of byte j, element 2j+1 in the LOW nibble; an odd length leaves the last low nibble 0.
// Storage: ceil(n/2) bytes + 4 bytes per block = 0.5625 bytes per weight.
//
// NF4 as stored on a device (vet_quant_nf4_dq), with QLoRA's double quantization of the
// absmax values: the codes above, computed with the fp32 absmax, and then
//   offset     = the mean of the nb = ceil(n/64) absmax values     (fp32; scales[0])
//   per group g of VET_NF4_DQ_GROUP (256) consecutive blocks, the int8 rule above on
//   absmax - offset: s_g = max |absmax - offset| / 127             (fp32; scales[1 + g])
//              aq[b] = round-half-even((absmax[b] - offset) / s_g) in [-127, 127]
//   absmax'[b] = aq[b] * s_g + offset      (one fp32 multiply, then one fp32 add: never fused)
//   w'         = VET_NF4_CODES[code] * absmax'[b]
// A block that rounds below zero (far under the mean) takes one step up (its weights would
// flip sign otherwise). The second level is linear int8 around the mean, where bitsandbytes
// uses its dynamic 8-bit map: the same bytes (1 per block + 4 per 256 blocks + 4 for the mean),
// a simpler rule; the absmax error is at most s_g / 2, far below NF4's own. Storage: the
// codes, then aq (nb bytes) in one byte array of vet_nf4_dq_bytes(n); vet_nf4_dq_scales(n)
// floats: 0.5 + 1/64 + ~1/4096 = ~0.5159 bytes per weight (0.5625 without).
//
// Non-finite weights are refused (a NaN would silently poison a whole row or block).
#ifndef VET_QUANT_H
#define VET_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

// The 16 NF4 values (bitsandbytes csrc/kernels.cu, the QLoRA paper's appendix), as fp32.
// A macro so that kernels/quant.cu puts the very same literals in constant memory.
#define VET_NF4_CODES                                                                      \
    {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,             \
     -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,            \
     0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f, \
     0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f}
#define VET_NF4_BLOCK 64
#define VET_NF4_ZERO 7  // the code of 0.0

extern const float vet_nf4_code[16];

typedef enum {
    VET_QUANT_NONE = 0,
    VET_QUANT_INT8 = 1,
    VET_QUANT_NF4 = 2,
} vet_quant_kind;

// "none", "int8", "nf4" -> kind; -1 with err otherwise.
int vet_quant_parse(const char *s, vet_quant_kind *kind, vet_err *err);
const char *vet_quant_name(vet_quant_kind kind);

// int8: q (rows, cols), scale (rows). -1 with err on a non-finite weight.
int vet_quant_int8(int8_t *q, float *scale, const float *w, size_t rows, size_t cols, vet_err *err);
void vet_dequant_int8(float *w, const int8_t *q, const float *scale, size_t rows, size_t cols);

// NF4 over n values: codes (vet_nf4_bytes(n)), absmax (vet_nf4_blocks(n)).
size_t vet_nf4_bytes(size_t n);   // ceil(n / 2)
size_t vet_nf4_blocks(size_t n);  // ceil(n / 64)
// The first level alone (the fp32 absmax values); weights are stored double quantized (below).
int vet_quant_nf4(uint8_t *codes, float *absmax, const float *w, size_t n, vet_err *err);
// The code of element i (high nibble for even i).
static inline int vet_nf4_get(const uint8_t *codes, size_t i) {
    return i % 2 ? codes[i / 2] & 15 : codes[i / 2] >> 4;
}
// The nearest NF4 code to x (x normally in [-1, 1]); ties to the lower code.
int vet_nf4_nearest(float x);

// --- the decode step's linear layer on the packed codes (kernels/quant.cu's matmul_rows_q) ---
// out (N,OC) = x (N,C) · W^T + bias for a few rows (N <= VET_QROWS_MAX: the slots of one decode
// step), W (OC,C) of kind VET_QUANT_INT8 or VET_QUANT_NF4 (the double-quantized stored format:
// q as vet_quant_nf4_dq writes it, scale its scales) read code by code, never dequantized
// into a matrix. This is the kernel's arithmetic on the CPU, in its order, so that the CUDA
// stand-in runs it and the GPU parity test compares the kernel with it bit for bit:
//   - the weight of (r, c) is the dequantized value above (one fp32 multiply), rounded to bf16
//     when round_bf16 is set (as the dequantize-then-GEMM path does in 16-bit mode);
//   - the CUDA warp of row r gives lane l the groups of VET_QROWS_GROUP columns that start at
//     c0 = VET_QROWS_GROUP * (l + VET_QROWS_LANES * k), k = 0, 1, ...; a lane's sum for row n
//     is acc = fmaf(x[n][c], w[r][c], acc) over its columns in increasing order;
//   - the 32 lanes' sums are added by an xor butterfly (offsets 16, 8, 4, 2, 1: each lane adds
//     its partner's value), then out = sum + bias[r] (one fp32 add; bias may be NULL).
// x holds the values the kernel reads: in 16-bit mode, the bf16 inputs widened to fp32.
#define VET_QROWS_MAX 8
#define VET_QROWS_LANES 32
#define VET_QROWS_GROUP 8
void vet_quant_rows_forward(float *out, const float *x, vet_quant_kind kind, const void *q, const float *scale,
                            const float *bias, int N, int C, int OC, int round_bf16);

// NF4 with double quantization (the stored format above): q holds vet_nf4_dq_bytes(n) bytes
// (codes, then the int8 absmax values), scales vet_nf4_dq_scales(n) floats (the mean, then one
// scale per group of 256 blocks).
#define VET_NF4_DQ_GROUP 256
size_t vet_nf4_dq_bytes(size_t n);   // ceil(n / 2) + ceil(n / 64)
size_t vet_nf4_dq_scales(size_t n);  // 1 + ceil(ceil(n / 64) / 256)
int vet_quant_nf4_dq(uint8_t *q, float *scales, const float *w, size_t n, vet_err *err);
void vet_dequant_nf4_dq(float *w, const uint8_t *q, const float *scales, size_t n);
// absmax' of block b; aq = q + vet_nf4_bytes(n).
static inline float vet_nf4_dq_absmax(const int8_t *aq, const float *scales, size_t b) {
    float a = (float)aq[b] * scales[1 + b / VET_NF4_DQ_GROUP];
    return a + scales[0];
}

// A (rows, cols) matrix stored as kind: the bytes of its q array and the floats of its scales
// (int8: the codes and a scale per row; NF4: vet_nf4_dq_bytes and vet_nf4_dq_scales; NONE: no
// bytes, and the fp32 values as "scales").
void vet_quant_stored_sizes(vet_quant_kind kind, size_t rows, size_t cols, size_t *q_bytes, size_t *scales);
// Bytes one (rows, cols) weight matrix takes stored as kind (NONE: fp32; NF4: double quantized).
size_t vet_quant_matrix_bytes(vet_quant_kind kind, size_t rows, size_t cols);

#endif
