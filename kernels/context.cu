// context.cu — devices, the context (stream + cuBLAS handle), device buffers and copies.
#include <stdio.h>
#include <stdlib.h>

#include "common.cuh"

const char *vet_cublas_status_string(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "cuBLAS not initialized (no usable GPU or driver?)";
    case CUBLAS_STATUS_ALLOC_FAILED: return "cuBLAS could not allocate memory";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value (a dimension or leading dimension)";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "not supported on this GPU architecture";
    case CUBLAS_STATUS_MAPPING_ERROR: return "GPU memory mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to run";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "cuBLAS internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported (type or layout combination)";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
    default: return "unknown cuBLAS status";
    }
}

extern "C" int vet_cuda_device_count(int *count, vet_err *err) {
    *count = 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();  // leave no sticky state behind for a later caller
        return vet_errf(err, "%s:%d: no usable CUDA device: %s", __FILE__, __LINE__,
                        cudaGetErrorString(e));
    }
    *count = n;
    return 0;
}

extern "C" int vet_cuda_device_name(int dev, char *name, size_t n, vet_err *err) {
    cudaDeviceProp p;
    CUDA_TRY(cudaGetDeviceProperties(&p, dev), err);
    snprintf(name, n, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return 0;
}

extern "C" void *vet_cuda_stream(vet_cuda *ctx) { return ctx ? (void *)ctx->stream : NULL; }

// Partial construction is undone by vet_cuda_free, which accepts a half-built context.
extern "C" vet_cuda *vet_cuda_new(int dev, vet_err *err) {
    int count;
    if (vet_cuda_device_count(&count, err) < 0) return NULL;
    if (dev < 0 || dev >= count) {
        vet_errf(err, "%s:%d: CUDA device %d does not exist (%d present)", __FILE__, __LINE__, dev,
                 count);
        return NULL;
    }
    vet_cuda *ctx = (vet_cuda *)calloc(1, sizeof *ctx);
    if (!ctx) {
        vet_errf(err, "%s:%d: out of host memory", __FILE__, __LINE__);
        return NULL;
    }
    ctx->dev = dev;
    cudaError_t e = cudaSetDevice(dev);
    if (e == cudaSuccess) e = cudaStreamCreate(&ctx->stream);
    if (e != cudaSuccess) {
        vet_errf(err, "%s:%d: setting up CUDA device %d: %s", __FILE__, __LINE__, dev,
                 cudaGetErrorString(e));
        vet_cuda_free(ctx);
        return NULL;
    }
    if (vet_cublas_load(err) < 0) {
        vet_cuda_free(ctx);
        return NULL;
    }
    cublasStatus_t s = vet_cublas.create(&ctx->blas);
    if (s == CUBLAS_STATUS_SUCCESS) s = vet_cublas.set_stream(ctx->blas, ctx->stream);
    // Default math: fp32 GEMMs stay fp32 (TF32 only if asked per call, and we never ask).
    if (s == CUBLAS_STATUS_SUCCESS) s = vet_cublas.set_math_mode(ctx->blas, CUBLAS_DEFAULT_MATH);
    if (s != CUBLAS_STATUS_SUCCESS) {
        vet_errf(err, "%s:%d: cuBLAS on device %d: %s", __FILE__, __LINE__, dev,
                 vet_cublas_status_string(s));
        vet_cuda_free(ctx);
        return NULL;
    }
    return ctx;
}

extern "C" void vet_cuda_free(vet_cuda *ctx) {
    if (!ctx) return;
    if (ctx->blas) vet_cublas.destroy(ctx->blas);  // a handle exists only once cuBLAS is loaded
    if (ctx->stream) {
        cudaStreamSynchronize(ctx->stream);
        cudaStreamDestroy(ctx->stream);
    }
    free(ctx);
}

extern "C" int vet_cuda_sync(vet_cuda *ctx, vet_err *err) {
    CHECK_CTX(ctx, err);
    CUDA_TRY(cudaStreamSynchronize(ctx->stream), err);
    LAUNCH_CHECK("an earlier op", err);
    return 0;
}

extern "C" int vet_cuda_mem_info(vet_cuda *ctx, size_t *free_bytes, size_t *total_bytes,
                                 vet_err *err) {
    *free_bytes = *total_bytes = 0;
    CHECK_CTX(ctx, err);
    CUDA_TRY(cudaSetDevice(ctx->dev), err);  // cudaMemGetInfo answers for the current device
    size_t f = 0, t = 0;
    CUDA_TRY(cudaMemGetInfo(&f, &t), err);
    *free_bytes = f, *total_bytes = t;
    return 0;
}

extern "C" int vet_cuda_malloc(void **ptr, size_t bytes, vet_err *err) {
    *ptr = NULL;
    if (bytes == 0) bytes = 1;  // a valid, distinct pointer even for empty tensors
    cudaError_t e = cudaMalloc(ptr, bytes);
    if (e != cudaSuccess) {
        *ptr = NULL;
        cudaGetLastError();
        return vet_errf(err, "%s:%d: cudaMalloc of %zu bytes: %s (free memory or use smaller batches)",
                        __FILE__, __LINE__, bytes, cudaGetErrorString(e));
    }
    // Zeroed so gradients can be accumulated into fresh buffers; the legacy stream orders
    // this before any op on a context's (blocking) stream.
    e = cudaMemset(*ptr, 0, bytes);
    if (e != cudaSuccess) {
        cudaFree(*ptr);
        *ptr = NULL;
        return vet_errf(err, "%s:%d: cudaMemset: %s", __FILE__, __LINE__, cudaGetErrorString(e));
    }
    return 0;
}

extern "C" void vet_cuda_mem_free(void *ptr) {
    if (ptr) cudaFree(ptr);
}

#if defined(VET_SIMT_EMU) && defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
extern "C" void vet_cuda_guard(void *p, size_t bytes) { __asan_poison_memory_region(p, bytes); }
#else
extern "C" void vet_cuda_guard(void *, size_t) {}  // device memory: ASan cannot mark it
#endif

extern "C" int vet_cuda_upload(vet_cuda *ctx, void *dst_dev, const void *src_host, size_t bytes,
                               vet_err *err) {
    CHECK_CTX(ctx, err);
    if (bytes == 0) return 0;
    CUDA_TRY(cudaMemcpyAsync(dst_dev, src_host, bytes, cudaMemcpyHostToDevice, ctx->stream), err);
    CUDA_TRY(cudaStreamSynchronize(ctx->stream), err);
    return 0;
}

extern "C" int vet_cuda_download(vet_cuda *ctx, void *dst_host, const void *src_dev, size_t bytes,
                                 vet_err *err) {
    CHECK_CTX(ctx, err);
    if (bytes == 0) return 0;
    CUDA_TRY(cudaMemcpyAsync(dst_host, src_dev, bytes, cudaMemcpyDeviceToHost, ctx->stream), err);
    CUDA_TRY(cudaStreamSynchronize(ctx->stream), err);
    return 0;
}

extern "C" int vet_cuda_memset0(vet_cuda *ctx, void *dst_dev, size_t bytes, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (bytes == 0) return 0;
    CUDA_TRY(cudaMemsetAsync(dst_dev, 0, bytes, ctx->stream), err);
    return 0;
}

extern "C" int vet_cuda_copy(vet_cuda *ctx, void *dst_dev, const void *src_dev, size_t bytes, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (bytes == 0) return 0;
    CUDA_TRY(cudaMemcpyAsync(dst_dev, src_dev, bytes, cudaMemcpyDeviceToDevice, ctx->stream), err);
    return 0;
}

extern "C" int vet_cuda_host_alloc(void **ptr, size_t bytes, vet_err *err) {
    *ptr = NULL;
    if (bytes == 0) bytes = 1;
    cudaError_t e = cudaHostAlloc(ptr, bytes, cudaHostAllocDefault);
    if (e != cudaSuccess) {
        *ptr = NULL;
        cudaGetLastError();
        return vet_errf(err, "%s:%d: cudaHostAlloc of %zu bytes: %s", __FILE__, __LINE__, bytes,
                        cudaGetErrorString(e));
    }
    return 0;
}

extern "C" void vet_cuda_host_free(void *ptr) {
    if (ptr) cudaFreeHost(ptr);
}

extern "C" int vet_cuda_download_async(vet_cuda *ctx, void *dst_host, const void *src_dev,
                                       size_t bytes, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (bytes == 0) return 0;
    CUDA_TRY(cudaMemcpyAsync(dst_host, src_dev, bytes, cudaMemcpyDeviceToHost, ctx->stream), err);
    return 0;
}
