// cublas.cu — cuBLAS, loaded when the first CUDA context is made, not when a program starts.
//
// Why: loading libcublas.so pulls in libcublasLt, and that load alone costs ~210 MB of resident
// memory (its relocations touch most of a 540 MB library: a program that links it and does
// nothing else peaks at 211 MB here, against 1.4 MB for libcudart). Linked in, every run of
// vet-train and vet-generate paid it, on the CPU too, in any build made where nvcc is. vet
// calls five cuBLAS functions; vet_cublas_load looks them up with dlopen/dlsym from the first
// vet_cuda_new, so a run that never opens a device never maps the library. The pointers are
// typed with decltype of cuBLAS's own declarations, so a call through them is checked as a
// direct call would be. The library is searched for as the dynamic linker would (the
// program's rpath, LD_LIBRARY_PATH, ld.so.cache), under the soname of the headers built with.
#include "common.cuh"

#include <dlfcn.h>

#include <mutex>

vet_cublas_api vet_cublas;

#define VET_STR2(x) #x
#define VET_STR(x) VET_STR2(x)

extern "C" int vet_cublas_load(vet_err *err) {
    static std::mutex lock;
    std::lock_guard<std::mutex> hold(lock);
    if (vet_cublas.gemm_ex) return 0;
    const char *soname = "libcublas.so." VET_STR(CUBLAS_VER_MAJOR);
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return vet_errf(err, "cannot load cuBLAS (%s): %s (put the CUDA toolkit's lib64 on LD_LIBRARY_PATH)",
                        soname, dlerror());
    vet_cublas_api api;
    struct {
        void **fn;
        const char *name;
    } syms[] = {{(void **)&api.create, "cublasCreate_v2"},
                {(void **)&api.destroy, "cublasDestroy_v2"},
                {(void **)&api.set_stream, "cublasSetStream_v2"},
                {(void **)&api.set_math_mode, "cublasSetMathMode"},
                {(void **)&api.gemm_ex, "cublasGemmEx"}};
    for (auto &s : syms)
        if (!(*s.fn = dlsym(h, s.name))) {
            vet_errf(err, "cuBLAS (%s) has no %s: %s", soname, s.name, dlerror());
            dlclose(h);
            return -1;
        }
    vet_cublas = api;  // the handle stays open for the life of the process
    return 0;
}
