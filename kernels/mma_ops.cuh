// mma_ops.cuh — the two device instructions every tensor-core kernel of vet's is built from:
// PTX mma.sync m16n8k16 with 16-bit operands (bf16, or fp16: mma_f16) and fp32 accumulators,
// and the packing of two fp32 values into one 16-bit x2 operand register (round to nearest even,
// the lower column in the low half). mma_frag.cuh says where each operand element sits in the
// warp's registers (the same for both formats). Under the CPU emulator (tests/unit/simt_emu.h,
// VET_SIMT_EMU) the products are its emu_mma_bf16 and emu_mma_f16.
#ifndef VET_MMA_OPS_CUH
#define VET_MMA_OPS_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

// d (16x8 fp32) += a (16x16, row) . b (16x8, col), the operands of type T ("bf16" or "f16")
#define VET_MMA_M16N8K16(T, d, a, b)                                                                        \
    asm("mma.sync.aligned.m16n8k16.row.col.f32." T "." T ".f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, " \
        "{%0, %1, %2, %3};\n"                                                                               \
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                                    \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]))

__device__ __forceinline__ void mma_bf16(float d[4], const unsigned a[4], const unsigned b[2]) {
#ifdef VET_SIMT_EMU
    emu_mma_bf16(d, a, b);
#else
    VET_MMA_M16N8K16("bf16", d, a, b);
#endif
}

__device__ __forceinline__ void mma_f16(float d[4], const unsigned a[4], const unsigned b[2]) {
#ifdef VET_SIMT_EMU
    emu_mma_f16(d, a, b);
#else
    VET_MMA_M16N8K16("f16", d, a, b);
#endif
}

__device__ __forceinline__ unsigned pack_f16(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);  // .x (lo) in the low half
    return *(unsigned *)&h;
}

__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);  // .x (lo) in the low half
    return *(unsigned *)&h;
}

#endif
