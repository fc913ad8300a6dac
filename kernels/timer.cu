// timer.cu — timing marks on a context's stream (ops_cuda.h's vet_cuda_timer): CUDA events.
//
// Why events and not the host's clock: ops return as soon as they are queued, so the host
// sees launch times, not run times. An event recorded on the stream takes the device's
// timestamp when the stream reaches it, so the time between two marks is the device's time
// for the work queued between them, launch gaps included (kernels/host/gpu_profile.c).
#include "common.cuh"

#include <stdlib.h>

struct vet_cuda_timer {
    vet_cuda *ctx;
    int n;
    cudaEvent_t *ev;  // (n), created with timing on
};

extern "C" void vet_cuda_timer_free(vet_cuda_timer *t) {
    if (!t) return;
    for (int i = 0; i < t->n; i++)
        if (t->ev[i]) cudaEventDestroy(t->ev[i]);
    free(t->ev);
    free(t);
}

extern "C" vet_cuda_timer *vet_cuda_timer_new(vet_cuda *ctx, int n, vet_err *err) {
    if (!ctx || n < 2) {
        vet_errf(err, "%s:%d: a timer needs a context and at least 2 marks", __FILE__, __LINE__);
        return NULL;
    }
    vet_cuda_timer *t = (vet_cuda_timer *)calloc(1, sizeof *t);
    cudaEvent_t *ev = (cudaEvent_t *)calloc((size_t)n, sizeof *ev);
    if (!t || !ev) {
        free(t), free(ev);
        vet_errf(err, "%s:%d: out of memory", __FILE__, __LINE__);
        return NULL;
    }
    t->ctx = ctx, t->n = n, t->ev = ev;
    for (int i = 0; i < n; i++) {
        cudaError_t e = cudaEventCreate(&ev[i]);
        if (e != cudaSuccess) {
            ev[i] = NULL;
            vet_errf(err, "%s:%d: cudaEventCreate: %s", __FILE__, __LINE__, cudaGetErrorString(e));
            vet_cuda_timer_free(t);
            return NULL;
        }
    }
    return t;
}

extern "C" int vet_cuda_timer_mark(vet_cuda_timer *t, int i, vet_err *err) {
    if (!t || i < 0 || i >= t->n) return vet_errf(err, "%s:%d: timer mark %d out of range", __FILE__, __LINE__, i);
    CUDA_TRY(cudaEventRecord(t->ev[i], t->ctx->stream), err);
    return 0;
}

extern "C" int vet_cuda_timer_ms(vet_cuda_timer *t, int a, int b, float *ms, vet_err *err) {
    *ms = 0.0f;
    if (!t || a < 0 || a >= t->n || b < 0 || b >= t->n)
        return vet_errf(err, "%s:%d: timer marks %d, %d out of range", __FILE__, __LINE__, a, b);
    CUDA_TRY(cudaEventSynchronize(t->ev[b]), err);
    CUDA_TRY(cudaEventElapsedTime(ms, t->ev[a], t->ev[b]), err);
    return 0;
}
