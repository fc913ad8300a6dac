// device.c — runtime detection of the CUDA backend (see device.h).
//
// Compiled by the C compiler in every build. With VET_CUDA the probe is asked of the CUDA
// runtime through kernels/ops_cuda.h (plain C, so no CUDA header is needed here).
#include "device.h"

#include <stdio.h>

#include "err.h"
#ifdef VET_CUDA
#include "../kernels/ops_cuda.h"
#endif

static void set_why(char *why, size_t n, const char *msg) {
    if (why && n) snprintf(why, n, "%s", msg);
}

int vet_cuda_available(char *why, size_t n) {
#ifdef VET_CUDA
    vet_err err = {{0}};
    int count = 0;
    if (vet_cuda_device_count(&count, &err) < 0) {
        set_why(why, n, err.msg);
        return 0;
    }
    if (count == 0) {
        set_why(why, n, "no CUDA device present");
        return 0;
    }
    set_why(why, n, "");
    return 1;
#else
    set_why(why, n, "built without CUDA (nvcc was not found at build time, or CUDA=0)");
    return 0;
#endif
}

const char *vet_backends_built(void) {
#ifdef VET_CUDA
    return "cpu cuda";
#else
    return "cpu";
#endif
}
