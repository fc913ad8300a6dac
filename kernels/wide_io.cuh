// wide_io.cuh — eight consecutive elements in 16-byte accesses (one for 16-bit values, two for
// fp32): the loads and stores of the element-wise and row kernels (conversions, SwiGLU, the
// residual add, RMSNorm, RoPE). With one element a thread those issued 2- and 4-byte accesses,
// an eighth or a quarter of what one instruction can move, and the first H200 profile had them
// at roughly a third of the memory's rate. The caller checks the alignment (aligned16) and keeps
// an element-at-a-time path for the tail and for unaligned pointers; both paths compute each
// element with the same function, so they give the same bits.
#pragma once

#include <type_traits>

#include "common.cuh"

// elementwise_wide's setting (one variable in every file that includes this: C++17 inline).
inline int vet_wide_io = 1;

// Whether p can be read or written 16 bytes at a time (the device allocator's buffers can; a
// slice at an odd offset may not), and the wide path is on (elementwise_wide).
static inline bool aligned16(const void *p) { return vet_wide_io && ((uintptr_t)p & 15u) == 0; }

// A 16-bit value's bits as fp32: exact (every bf16 and fp16 value is an fp32 value).
template <typename T> __device__ __forceinline__ float widen16(unsigned bits);
template <> __device__ __forceinline__ float widen16<__nv_bfloat16>(unsigned bits) {
    return __uint_as_float(bits << 16);
}
template <> __device__ __forceinline__ float widen16<__half>(unsigned bits) {
    return __half2float(__ushort_as_half((unsigned short)bits));
}

// v[0..7] = p[0..7] as fp32; p 16-byte aligned.
__device__ __forceinline__ void load8(float v[8], const float *p) {
    const float4 a = ((const float4 *)p)[0], b = ((const float4 *)p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
template <typename T> __device__ __forceinline__ void load8(float v[8], const T *p) {
    static_assert(sizeof(T) == 2, "load8 of a 16-bit type: bf16 or fp16");
    const uint4 u = *(const uint4 *)p;  // element 2j in the low half of word j (little-endian)
    const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int j = 0; j < 4; j++) v[2 * j] = widen16<T>(w[j] & 0xffffu), v[2 * j + 1] = widen16<T>(w[j] >> 16);
}

// p[0..7] = v[0..7]: as fp32, or rounded to fmt (VET_CUDA_BF16 / VET_CUDA_F16) by round_to16.
__device__ __forceinline__ void store8(float *p, const float v[8]) {
    ((float4 *)p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    ((float4 *)p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ __forceinline__ void store8_16(uint16_t *p, const float v[8], int fmt) {
    unsigned w[4];
#pragma unroll
    for (int j = 0; j < 4; j++) w[j] = round_to16(v[2 * j], fmt) | (unsigned)round_to16(v[2 * j + 1], fmt) << 16;
    *(uint4 *)p = make_uint4(w[0], w[1], w[2], w[3]);
}

// Four consecutive elements, for kernels whose thread owns a group of 4 (RoPE's pairs, the
// adapters' up product): v[0..3] = p[0..3] as fp32, one 16-byte load (fp32) or 8-byte one (16-bit
// T); p aligned to it.
__device__ __forceinline__ void load4(float v[4], const float *p) {
    const float4 a = *(const float4 *)p;
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
}
template <typename T> __device__ __forceinline__ void load4(float v[4], const T *p) {
    static_assert(sizeof(T) == 2, "load4 of a 16-bit type: bf16 or fp16");
    const uint2 a = *(const uint2 *)p;
    v[0] = widen16<T>(a.x & 0xffffu), v[1] = widen16<T>(a.x >> 16);
    v[2] = widen16<T>(a.y & 0xffffu), v[3] = widen16<T>(a.y >> 16);
}
// p[0..3] = v[0..3]: fp32 in one 16-byte store, or rounded to fmt in one 8-byte store.
__device__ __forceinline__ void store4(float *p, const float v[4]) {
    *(float4 *)p = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void store4_16(uint16_t *p, const float v[4], int fmt) {
    *(uint2 *)p = make_uint2(round_to16(v[0], fmt) | (unsigned)round_to16(v[1], fmt) << 16,
                             round_to16(v[2], fmt) | (unsigned)round_to16(v[3], fmt) << 16);
}

// The threads such a pass needs: one for each group of 8 (when vec) and each element of the tail.
static inline size_t wide_threads(size_t n, bool vec) { return vec ? n / 8 + n % 8 : n; }

// The element-wise kernels' walk: groups of 8 (when vec) by a grid-stride loop, then the
// elements past the last whole group (all of them when !vec) one a thread.
#define WIDE_GROUPS(q, n, vec) GRID_STRIDE(q, (vec) ? (n) / 8 : 0)
#define WIDE_TAIL(i, n, vec)                                                                         \
    for (size_t i = ((vec) ? (n) / 8 * 8 : 0) + blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)
