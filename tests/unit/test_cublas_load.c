// test_cublas_load.c — cuBLAS is loaded on first use (kernels/cublas.cu), not when a program
// starts: before vet_cublas_load no libcublas is mapped into the process, after it both
// libcublas and libcublasLt are, and a second call is a no-op. What it saves is printed (the
// resident memory before and after the load). Needs a CUDA build, not a GPU: loading the
// library and finding its functions talks to no device. cuDNN, which only cuDNN's attention
// uses (kernels/attention_cudnn.cc, on its first call), is mapped by neither.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#ifdef VET_CUDA
#include "kernels/ops_cuda.h"

// Whether a file whose path contains name is mapped into this process.
static int mapped(const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) found = strstr(line, name) != NULL;
    if (f) fclose(f);
    return found;
}

static long rss_mib(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    if (f) fclose(f);
    return resident * sysconf(_SC_PAGESIZE) / (1 << 20);
}
#endif

static void test_loaded_on_first_use(void) {
#ifndef VET_CUDA
    SKIP("built without CUDA");
#else
    if (access("/proc/self/maps", R_OK) != 0) SKIP("no /proc/self/maps");
    CHECK(!mapped("libcublas"));
    CHECK(!mapped("libcudnn"));
    long before = rss_mib();
    vet_err err;
    int rc = vet_cublas_load(&err);
    if (rc < 0) printf("# %s\n", err.msg);
    CHECK(rc == 0);
    CHECK(mapped("libcublas.so") && mapped("libcublasLt.so"));
    CHECK(!mapped("libcudnn"));
    printf("# resident memory %ld MiB before loading cuBLAS, %ld MiB after\n", before, rss_mib());
    CHECK(vet_cublas_load(&err) == 0);
#endif
}

int main(void) {
    RUN(test_loaded_on_first_use);
    CHECK_EXIT();
}
