// common.cuh — what every kernels/*.cu shares: the context, error checks, reductions.
//
// Errors: a CUDA or cuBLAS call that fails becomes one vet_err line `file:line: what failed:
// the runtime's reason` and the op returns -1; nothing here prints or exits (lib/base/err.h).
#ifndef VET_COMMON_CUH
#define VET_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <float.h>
#include <math.h>

#include "ops_cuda.h"

// The context behind vet_cuda (ops_cuda.h): one device, one stream, one cuBLAS handle bound
// to that stream. Every op of a context is ordered on its stream.
struct vet_cuda {
    int dev;
    cudaStream_t stream;
    cublasHandle_t blas;
};

static inline int ceil_div(long long a, long long b) { return (int)((a + b - 1) / b); }

const char *vet_cublas_status_string(cublasStatus_t s);  // context.cu

// The cuBLAS functions vet calls, loaded by vet_cublas_load (cublas.cu) from vet_cuda_new:
// call them as vet_cublas.gemm_ex(...) once a context exists.
struct vet_cublas_api {
    decltype(&cublasCreate_v2) create;
    decltype(&cublasDestroy_v2) destroy;
    decltype(&cublasSetStream_v2) set_stream;
    decltype(&cublasSetMathMode) set_math_mode;
    // cuBLAS's C entry point (the header adds a C++ overload of the same name for the old
    // cudaDataType compute argument): the exported symbol's signature, written out.
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *,
                              void *, cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
};
extern vet_cublas_api vet_cublas;

// `CUDA_TRY(cudaMalloc(...), err)`: returns -1 from the calling function with the error named.
#define CUDA_TRY(call, err)                                                                     \
    do {                                                                                        \
        cudaError_t e_ = (call);                                                                \
        if (e_ != cudaSuccess)                                                                  \
            return vet_errf((err), "%s:%d: %s: %s", __FILE__, __LINE__, #call,                  \
                            cudaGetErrorString(e_));                                            \
    } while (0)

#define CUBLAS_TRY(call, err)                                                                   \
    do {                                                                                        \
        cublasStatus_t s_ = (call);                                                             \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                        \
            return vet_errf((err), "%s:%d: %s: %s", __FILE__, __LINE__, #call,                  \
                            vet_cublas_status_string(s_));                                      \
    } while (0)

// After a <<<...>>> launch: a bad configuration or an earlier asynchronous failure shows here.
// cudaGetLastError also clears a non-sticky error, so the next op starts clean.
#define LAUNCH_CHECK(what, err)                                                                 \
    do {                                                                                        \
        cudaError_t e_ = cudaGetLastError();                                                    \
        if (e_ != cudaSuccess)                                                                  \
            return vet_errf((err), "%s:%d: launching %s: %s", __FILE__, __LINE__, (what),       \
                            cudaGetErrorString(e_));                                            \
    } while (0)

// The block's dynamic shared memory as `type name[]`, aligned to `align` bytes. A macro so that
// the CPU emulator (tests/unit/simt_emu.h, VET_SIMT_EMU), where `__shared__` makes a static
// local (one block runs at a time), can hand every kernel its one buffer instead.
#ifdef VET_SIMT_EMU
#define SHARED_DYNAMIC(type, name, align) type *name = (type *)emu_smem
#else
#define SHARED_DYNAMIC(type, name, align) extern __shared__ __align__(align) type name[]
#endif


// Kernels that need more than the default 48 KB of dynamic shared memory must say so once.
#define SMEM_OPT_IN(kernel, bytes, err)                                                         \
    do {                                                                                        \
        if ((bytes) > 48 * 1024)                                                                \
            CUDA_TRY(cudaFuncSetAttribute((kernel), cudaFuncAttributeMaxDynamicSharedMemorySize, \
                                          (int)(bytes)),                                        \
                     err);                                                                      \
    } while (0)

#define CHECK_CTX(ctx, err)                                                                     \
    do {                                                                                        \
        if (!(ctx)) return vet_errf((err), "%s:%d: no CUDA context (vet_cuda_new first)",       \
                                    __FILE__, __LINE__);                                        \
    } while (0)

// An fp32 value rounded to a 16-bit format (VET_CUDA_BF16 / VET_CUDA_F16), nearest even: the
// conversion kernels' rounding (elementwise.cu, fp16.cu), for fused passes that write both.
__device__ inline uint16_t round_to16(float v, int fmt) {
    return fmt == VET_CUDA_F16 ? __half_as_ushort(__float2half_rn(v)) : __bfloat16_as_ushort(__float2bfloat16_rn(v));
}

// --- shared by attention.cu and attention_tc.cu (defined in attention.cu) ----------------------
// Both attentions' entry: the context and shape checks, the caller's scratch split into start,
// end (B,T) and D (B,T,H), the samples' bounds, and with dout (backward) D. Returns 1 when the
// batch is empty (nothing to do), 0 to go on, -1 with err set.
typedef struct {
    int32_t *start, *end;
    float *D;
} attention_scratch;
// Where a forward writes its output (B,T,H,hd): fp32 (f32), or rounded to bf16 (b16: nearest
// even, the bits f32_to_bf16_cuda would give the fp32 output: what training's o projection
// reads, so the conversion pass and half the output's memory go); exactly one is non-NULL.
struct attn_out {
    float *f32;
    uint16_t *b16;
    __device__ __forceinline__ void put(size_t i, float v) const {
        if (b16) b16[i] = round_to16(v, VET_CUDA_BF16);
        else f32[i] = v;
    }
    // out[i], out[i + 1] = v0, v1; i even (head_dim is: a 4-byte store in bf16)
    __device__ __forceinline__ void put2(size_t i, float v0, float v1) const {
        if (b16)
            *(uint32_t *)(b16 + i) = round_to16(v0, VET_CUDA_BF16) | (uint32_t)round_to16(v1, VET_CUDA_BF16) << 16;
        else
            f32[i] = v0, f32[i + 1] = v1;
    }
};
// The forward's output as the backward reads it (D = rowsum(dO * O) on the widened bf16 values).
struct attn_in {
    const float *f32;
    const uint16_t *b16;
    __device__ __forceinline__ float at(size_t i) const {
        return b16 ? __bfloat162float(__ushort_as_bfloat16(b16[i])) : f32[i];
    }
};
int attention_prepare(vet_cuda *ctx, const int32_t *seg, const float *dout, attn_in out, int B, int T, int H,
                      int KVH, int hd, void *scratch, attention_scratch *s, vet_err *err);

// A value as fp32: fp32 itself, or a bf16 / fp16 one widened (exactly: each is an fp32 value).
__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }

// --- reductions ---------------------------------------------------------------------------------
// Warp-level: every lane ends with the result. Order is fixed (butterfly), so a kernel is
// deterministic run to run.
template <typename T> __device__ inline T warp_sum(T x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ inline float warp_max(float x) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

// Block-level sum for blockDim.x a multiple of 32 (<= 1024); every thread gets the result.
// `shared` holds 32 slots. Ends with a barrier so `shared` can be reused right after.
template <typename T> __device__ inline T block_sum(T x, T *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    x = warp_sum(x);
    if (lane == 0) shared[warp] = x;
    __syncthreads();
    T v = lane < nwarps ? shared[lane] : (T)0;
    v = warp_sum(v);
    __syncthreads();
    return v;
}
__device__ inline float block_max(float x, float *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    x = warp_max(x);
    if (lane == 0) shared[warp] = x;
    __syncthreads();
    float v = lane < nwarps ? shared[lane] : -INFINITY;
    v = warp_max(v);
    __syncthreads();
    return v;
}

// Element-wise launches: `threads` per block and enough blocks to fill any GPU (at most
// 65536); grid-stride loops (GRID_STRIDE) cover the rest.
static inline int grid_blocks(size_t n, int threads) {
    size_t b = (n + threads - 1) / threads;
    return (int)(b < 65536 ? (b ? b : 1) : 65536);
}
#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

// kernel<<<grid, block, smem, stream>>>(...) where the CPU emulator (tests/unit/simt_emu.h,
// VET_SIMT_EMU) can run it instead, the host code around it unchanged: there a launch runs
// every block before it returns, a launch cannot fail and needs no opt-in to more shared memory.
#ifdef VET_SIMT_EMU
#define LAUNCH(kernel, grid, block, smem, stream, ...)                                          \
    do {                                                                                        \
        (void)(stream);                                                                         \
        emu_launch(dim3(grid), (block), (size_t)(smem), [&] { (kernel)(__VA_ARGS__); });        \
    } while (0)
#undef LAUNCH_CHECK
#define LAUNCH_CHECK(what, err) ((void)(what), (void)(err))
#undef SMEM_OPT_IN
#define SMEM_OPT_IN(kernel, bytes, err) (void)(bytes)
#else
#define LAUNCH(kernel, grid, block, smem, stream, ...) (kernel)<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#endif

#endif
