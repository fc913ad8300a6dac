// gpu_profile.c — gpu_profile.h: device time by kind of work, from marks on the stream.
//
// The marks live in a ring of RING events. Mark k (counting from the first) is event
// k % RING; the kind it started is kind[k % RING]. collect reads the times between marks
// [done, queued - 1) and their successors, then keeps the newest mark as the start of the
// next interval, so no time between two collects is lost. enter collects first when the
// ring is about to overwrite a mark whose time has not been read (that waits for the device:
// only a path with more than RING - 1 marks between syncs pays it).
#include "kernels/host/gpu_profile.h"

#include <stdlib.h>

#include "base/atomic_file.h"

#ifdef VET_CUDA

#define RING 8192

struct vet_gpu_profile {
    vet_cuda_timer *timer;
    signed char kind[RING];   // the kind mark k % RING started (VET_PROF_NONE too)
    long long queued, done;   // marks queued so far; marks whose interval has been added up
    int current;              // the kind of the newest mark (VET_PROF_NONE before any)
    double ms[VET_PROF_N + 1];        // [0]: between calls, [1 + kind]: the kinds
    long long segments[VET_PROF_N + 1];
};

static const char *const names[VET_PROF_N + 1] = {
    "between_calls", "gemm_base", "gemm_lora", "lora_fused", "dropout", "attention", "rope", "norm", "swiglu",
    "residual", "convert", "memset", "embedding", "loss", "transfer", "optimizer", "collective"};


vet_gpu_profile *vet_gpu_profile_new(vet_cuda *ctx, vet_err *err) {
    vet_gpu_profile *p = calloc(1, sizeof *p);
    if (!p) {
        vet_errf(err, "%s:%d: out of memory", __FILE__, __LINE__);
        return NULL;
    }
    if (!(p->timer = vet_cuda_timer_new(ctx, RING, err))) {
        free(p);
        return NULL;
    }
    p->current = VET_PROF_NONE;
    return p;
}

void vet_gpu_profile_free(vet_gpu_profile *p) {
    if (!p) return;
    vet_cuda_timer_free(p->timer);
    free(p);
}

int vet_gpu_profile_collect(vet_gpu_profile *p, vet_err *err) {
    for (; p->done + 1 < p->queued; p->done++) {
        int a = (int)(p->done % RING), b = (int)((p->done + 1) % RING);
        float ms;
        if (vet_cuda_timer_ms(p->timer, a, b, &ms, err) < 0) return -1;
        int slot = p->kind[a] + 1;
        p->ms[slot] += ms;
        p->segments[slot]++;
    }
    return 0;
}

int vet_gpu_profile_enter(vet_gpu_profile *p, vet_prof_kind kind, vet_err *err) {
    if (!p || kind == p->current) return 0;
    if (p->queued - p->done >= RING - 1 && vet_gpu_profile_collect(p, err) < 0) return -1;
    int at = (int)(p->queued % RING);
    if (vet_cuda_timer_mark(p->timer, at, err) < 0) return -1;
    p->kind[at] = (signed char)kind;
    p->queued++;
    p->current = kind;
    return 0;
}

int vet_gpu_profile_write(vet_gpu_profile *p, const char *path, vet_err *err) {
    if (vet_gpu_profile_collect(p, err) < 0) return -1;
    double busy = 0;
    for (int k = 1; k <= VET_PROF_N; k++) busy += p->ms[k];
    vet_afile out;
    if (vet_afile_open(&out, path, err) < 0) return -1;
    // busy_ms: the device's time inside the calls; between_calls: waiting for the host
    fprintf(out.f, "{\"busy_ms\": %.3f, \"between_calls_ms\": %.3f, \"kinds\": {", busy, p->ms[0]);
    for (int k = 1; k <= VET_PROF_N; k++)
        fprintf(out.f, "%s\n  \"%s\": {\"ms\": %.3f, \"share\": %.4f, \"segments\": %lld}", k > 1 ? "," : "",
                names[k], p->ms[k], busy > 0 ? p->ms[k] / busy : 0.0, p->segments[k]);
    fprintf(out.f, "\n}}\n");
    return vet_afile_commit(&out, err);
}

#else  // built without CUDA: no timer to mark with

vet_gpu_profile *vet_gpu_profile_new(vet_cuda *ctx, vet_err *err) {
    vet_errf(err, "vet was built without CUDA (rebuild with nvcc on PATH)");
    return NULL;
}
void vet_gpu_profile_free(vet_gpu_profile *p) { (void)p; }
int vet_gpu_profile_enter(vet_gpu_profile *p, vet_prof_kind kind, vet_err *err) { return 0; }
int vet_gpu_profile_collect(vet_gpu_profile *p, vet_err *err) { return 0; }
int vet_gpu_profile_write(vet_gpu_profile *p, const char *path, vet_err *err) {
    return vet_errf(err, "vet was built without CUDA (rebuild with nvcc on PATH)");
}

#endif
