// quant_unpack.cuh — the bit layout of the packed decode kernel's loads (kernels/quant.cu's
// rows_q_kernel): which bits of the word it loads hold element j of a group of 8. Host and
// device functions, so that tests/unit/test_quant_unpack.cu (compiled by nvcc, run on the CPU)
// checks them against lib/model/quant.h's byte layout without a GPU.
#ifndef VET_QUANT_UNPACK_CUH
#define VET_QUANT_UNPACK_CUH

#include <cuda_runtime.h>  // uint2, uint4

// int8: the 8 bytes of a group, loaded as one uint2 (little-endian: byte j of the group is
// byte j % 4 of word j / 4).
__host__ __device__ inline int unpack_int8(uint2 b, int j) {
    unsigned word = j < 4 ? b.x : b.y;
    return (int)(signed char)(unsigned char)((word >> (8 * (j & 3))) & 0xffu);
}

// nf4: the 4 bytes of a group of 8 codes, loaded as one 32-bit word; element j is in byte j / 2,
// in its HIGH nibble when j is even (element 2k of the matrix in the high nibble of byte k).
__host__ __device__ inline unsigned unpack_nf4(unsigned word, int j) {
    unsigned byte = (word >> (8 * (j >> 1))) & 0xffu;
    return (j & 1) ? (byte & 15u) : (byte >> 4);
}

// bf16: 8 values loaded as one uint4; element j is the low half of word j / 2 when j is even.
// Widened exactly: the bf16 bits are the top half of the fp32.
__host__ __device__ inline unsigned unpack_bf16_bits(uint4 p, int j) {
    unsigned w = (j >> 1) == 0 ? p.x : (j >> 1) == 1 ? p.y : (j >> 1) == 2 ? p.z : p.w;
    return ((j & 1) ? w >> 16 : w & 0xffffu) << 16;
}

#endif
