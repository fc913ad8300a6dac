// cuda_emu.cc — the CUDA runtime and the five cuBLAS functions vet calls, on the CPU: with
// kernels/*.cu compiled for the emulator (tests/unit/simt_emu.h, VET_SIMT_EMU) this makes a
// whole device out of the host (mk/gpuemu.mk), so the GPU model's tests and op_parity run
// vet's real kernels and host code together, where CI has no GPU.
//
// Device memory is host memory (every pointer works on both sides, as on a device with unified
// addressing), handed out filled with 0xff bytes (vet_cuda_malloc zeroes it, as on a device;
// a direct cudaMalloc's reader sees NaNs, as uninitialized memory can be anything). Its
// capacity is VET_EMU_MEM_MIB (default 4096): an allocation past it fails as cudaMalloc does. A launch
// runs every block before it returns, so streams are names, events take the host's clock and
// every copy is done when it returns. cublasGemmEx is the column-major product cuBLAS defines,
// summed in double, refusing what cuBLAS refuses (a leading dimension under the rows stored,
// types vet never asks for).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <map>
#include <mutex>
#include <vector>

#include "kernels/common.cuh"

struct CUstream_st {
    int id;
};
struct CUevent_st {
    double ms;  // the host's monotonic clock when recorded
};
struct cublasContext {
    cudaStream_t stream;
};

static std::mutex mem_lock;
static std::map<void *, size_t> live;  // device allocations and their sizes
static size_t in_use;

static size_t capacity() {
    const char *s = getenv("VET_EMU_MEM_MIB");
    long mib = s && *s ? atol(s) : 4096;
    return (size_t)(mib > 0 ? mib : 4096) << 20;
}

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int device) {
    if (device != 0) return cudaErrorInvalidDevice;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "vet SIMT emulator on the CPU");
    p->major = 9, p->minor = 0;
    p->totalGlobalMem = capacity();
    p->multiProcessorCount = 1;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->sharedMemPerBlock = 48 << 10;
    p->sharedMemPerBlockOptin = sizeof emu_smem;
    return cudaSuccess;
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory (the emulator's VET_EMU_MEM_MIB)";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidValue: return "invalid argument";
    default: return "unknown error";
    }
}

cudaError_t cudaGetLastError(void) { return cudaSuccess; }  // a launch here cannot fail

cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = nullptr;
    std::lock_guard<std::mutex> hold(mem_lock);
    if (bytes > capacity() - in_use) return cudaErrorMemoryAllocation;
    void *q = nullptr;
    if (posix_memalign(&q, 256, bytes ? bytes : 1)) return cudaErrorMemoryAllocation;
    memset(q, 0xff, bytes);
    live[q] = bytes;
    in_use += bytes;
    *p = q;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    std::lock_guard<std::mutex> hold(mem_lock);
    auto it = live.find(p);
    if (it == live.end()) return cudaErrorInvalidValue;  // not cudaMalloc's, or freed twice
    in_use -= it->second;
    live.erase(it);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
    std::lock_guard<std::mutex> hold(mem_lock);
    *total = capacity();
    *free_bytes = *total - in_use;
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int) {
    *p = malloc(bytes ? bytes : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFreeHost(void *p) {
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind, cudaStream_t) {
    if (n) memmove(dst, src, n);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t) {
    memset(p, value, n);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t n) { return cudaMemsetAsync(p, value, n, nullptr); }

cudaError_t cudaStreamCreate(cudaStream_t *s) {
    *s = new CUstream_st{1};
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaFuncSetAttribute(const void *, cudaFuncAttribute, int) { return cudaSuccess; }

cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = new CUevent_st{0.0};
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    e->ms = t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    *ms = (float)(b->ms - a->ms);
    return cudaSuccess;
}

// --- cuBLAS ------------------------------------------------------------------------------------

static cublasStatus_t emu_create(cublasHandle_t *h) {
    *h = new cublasContext{nullptr};
    return CUBLAS_STATUS_SUCCESS;
}
static cublasStatus_t emu_destroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
static cublasStatus_t emu_set_stream(cublasHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
static cublasStatus_t emu_set_math_mode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }

// Element i of a matrix of type t.
static double element(const void *m, cudaDataType t, size_t i) {
    switch (t) {
    case CUDA_R_32F: return ((const float *)m)[i];
    case CUDA_R_16BF: return __bfloat162float(((const __nv_bfloat16 *)m)[i]);
    default: return __half2float(((const __half *)m)[i]);  // CUDA_R_16F
    }
}

// C (m x n) = alpha op(A) op(B) + beta C, column-major, as cuBLAS: op(A) (m x k) is A's
// (lda-strided) columns or, transposed, its rows; beta 0 never reads C. C is fp32, or of A's
// 16-bit type (the sum rounded to nearest even as it is stored).
static cublasStatus_t emu_gemm_ex(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                                  cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                                  cublasComputeType_t compute, cublasGemmAlgo_t) {
    auto known = [](cudaDataType t) { return t == CUDA_R_32F || t == CUDA_R_16BF || t == CUDA_R_16F; };
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!known(at) || at != bt || (ct != CUDA_R_32F && ct != at) || compute != CUBLAS_COMPUTE_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const bool tA = ta != CUBLAS_OP_N, tB = tb != CUBLAS_OP_N;
    if (m < 0 || n < 0 || k < 0 || lda < (tA ? k : m) || lda < 1 || ldb < (tB ? n : k) || ldb < 1 || ldc < m ||
        ldc < 1)
        return CUBLAS_STATUS_INVALID_VALUE;
    const float a = *(const float *)alpha, b = *(const float *)beta;
    // op(A)'s rows and op(B)'s columns widened to double once, each contiguous: the same
    // products summed in the same order as element by element, without a type switch and a
    // strided load for each of the m n k of them.
    std::vector<double> rows((size_t)m * k), cols((size_t)n * k);
    for (int i = 0; i < m; i++)
        for (int l = 0; l < k; l++) rows[(size_t)i * k + l] = element(A, at, tA ? (size_t)i * lda + l : (size_t)l * lda + i);
    for (int j = 0; j < n; j++)
        for (int l = 0; l < k; l++) cols[(size_t)j * k + l] = element(B, bt, tB ? (size_t)l * ldb + j : (size_t)j * ldb + l);
    // Threads only where there is work for them: a team's start costs more than a small product.
#pragma omp parallel for schedule(static) if ((double)m * n * k > 1 << 20)
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            const double *x = &rows[(size_t)i * k], *y = &cols[(size_t)j * k];
            double acc = 0.0;
            for (int l = 0; l < k; l++) acc += x[l] * y[l];
            const size_t at_c = (size_t)j * ldc + i;
            const float v = b == 0.0f ? a * (float)acc : a * (float)acc + b * (float)element(C, ct, at_c);
            if (ct == CUDA_R_32F) ((float *)C)[at_c] = v;
            else if (ct == CUDA_R_16BF) ((__nv_bfloat16 *)C)[at_c] = __float2bfloat16_rn(v);
            else ((__half *)C)[at_c] = __float2half_rn(v);
        }
    return CUBLAS_STATUS_SUCCESS;
}

vet_cublas_api vet_cublas;

// cublas.cu's loader, with the functions above instead of libcublas's.
extern "C" int vet_cublas_load(vet_err *) {
    vet_cublas.create = emu_create;
    vet_cublas.destroy = emu_destroy;
    vet_cublas.set_stream = emu_set_stream;
    vet_cublas.set_math_mode = emu_set_math_mode;
    vet_cublas.gemm_ex = emu_gemm_ex;
    return 0;
}
