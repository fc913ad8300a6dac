// test_collective.c — kernels/host/gpu_collective.c's schedule without GPUs: compiled against
// the stand-in NCCL (nccl.h, nccl_threads.c: ranks are threads) and the stand-in CUDA ops
// (ops_cuda_cpu.c), so the real file's chunking, grouped sends and receives, rank-order sum
// and gather run here (mk/gpustub.mk; tests/e2e/test_gpu_standin.sh runs it under ASan).
//
// For ranks 1..5 and buffer lengths around the rank count (n < ranks leaves chunks empty;
// n not a multiple of ranks makes them uneven), every rank's buffer must end as the rank-order
// sum ((x_0 + x_1) + x_2) + ... of lib/train/comm_mpi.c, bit for bit, on every rank. Values of
// mixed magnitudes make another order visible.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/host/gpu_collective.h"
#include "kernels/ops_cuda.h"
#include "nccl.h"
#include "base/rng.h"

#define MAX_RANKS 5

static pthread_barrier_t bcast_barrier;
static unsigned char bcast_buf[256];

// vet_comm's broadcast over the threads (the only call gpu_collective.c makes of comm).
static int thread_broadcast(void *ctx, void *buf, size_t bytes, int root, vet_err *err) {
    int rank = *(int *)ctx;
    if (bytes > sizeof bcast_buf) return vet_errf(err, "broadcast of %zu bytes", bytes);
    if (rank == root) memcpy(bcast_buf, buf, bytes);
    pthread_barrier_wait(&bcast_barrier);
    if (rank != root) memcpy(buf, bcast_buf, bytes);
    pthread_barrier_wait(&bcast_barrier);
    return 0;
}

typedef struct {
    int rank, size;
    size_t n;
    float *x;        // (n) this rank's gradients in, the sum out ("device" memory)
    char error[512];
} rank_job;

static float value(int rank, size_t i, vet_rng *rng) {
    float scale = rank % 3 == 0 ? 1e-3f : rank % 3 == 1 ? 1.0f : 1e3f;
    return (float)vet_rng_normal(rng) * scale;
}

static void *run_rank(void *arg) {
    rank_job *j = arg;
    vet_err err = {0};
    vet_comm comm = {.name = "threads", .rank = j->rank, .size = j->size, .ctx = &j->rank,
                     .broadcast = thread_broadcast};
    vet_cuda *cuda = vet_cuda_new(0, &err);
    vet_gpu_collective *g = cuda ? vet_gpu_collective_new(cuda, &comm, &err) : NULL;
    // Two sums: the buffer, then a smaller one after it (the scratch reused).
    int rc = g ? vet_gpu_collective_allreduce(g, j->x, j->n, &err) : -1;
    if (rc == 0) rc = vet_gpu_collective_allreduce(g, j->x + j->n, j->n / 2, &err);
    if (rc < 0) snprintf(j->error, sizeof j->error, "%s", err.msg);
    vet_gpu_collective_free(g);
    vet_cuda_free(cuda);
    return NULL;
}

// One case: `size` ranks summing buffers of n (and then n/2) floats. 0 when every rank holds
// the rank-order sum's bits.
static int check(int size, size_t n, uint64_t seed) {
    rank_job jobs[MAX_RANKS];
    pthread_t threads[MAX_RANKS];
    size_t total = n + n / 2;
    float *want = calloc(total ? total : 1, sizeof(float));
    standin_nccl_world(size);
    pthread_barrier_init(&bcast_barrier, NULL, (unsigned)size);
    for (int r = 0; r < size; r++) {
        vet_rng rng;
        vet_rng_seed(&rng, seed + (uint64_t)r);
        jobs[r] = (rank_job){.rank = r, .size = size, .n = n};
        jobs[r].x = malloc((total ? total : 1) * sizeof(float));
        for (size_t i = 0; i < total; i++) jobs[r].x[i] = value(r, i, &rng);
    }
    for (size_t i = 0; i < total; i++) {  // comm_mpi.c's order: rank 0, + rank 1, + rank 2 ...
        float s = jobs[0].x[i];
        for (int r = 1; r < size; r++) s += jobs[r].x[i];
        want[i] = s;
    }
    for (int r = 0; r < size; r++) pthread_create(&threads[r], NULL, run_rank, &jobs[r]);
    for (int r = 0; r < size; r++) pthread_join(threads[r], NULL);
    int bad = 0;
    for (int r = 0; r < size; r++) {
        if (jobs[r].error[0]) {
            printf("# rank %d of %d, n %zu: %s\n", r, size, n, jobs[r].error);
            bad = 1;
        } else if (memcmp(jobs[r].x, want, total * sizeof(float))) {
            printf("# rank %d of %d, n %zu: not the rank-order sum\n", r, size, n);
            bad = 1;
        }
        free(jobs[r].x);
    }
    pthread_barrier_destroy(&bcast_barrier);
    free(want);
    return bad;
}

int main(void) {
    static const size_t lengths[] = {1, 2, 3, 4, 5, 7, 64, 1000, 1003};
    int failures = 0;
    for (int size = 1; size <= MAX_RANKS; size++) {
        int bad = 0;
        for (size_t k = 0; k < sizeof lengths / sizeof *lengths; k++) bad |= check(size, lengths[k], 1000 * size + k);
        printf("%s gpu_collective_rank_order_sum_%d_ranks: lengths 1..1003, every rank the host sum's bits\n",
               bad ? "not ok" : "ok", size);
        failures += bad;
    }
    // The check can fail: a sum in reverse rank order differs from the rank-order one.
    vet_rng rng;
    vet_rng_seed(&rng, 7);
    int differs = 0;
    for (int i = 0; i < 1000 && !differs; i++) {
        float a = value(0, 0, &rng), b = value(1, 0, &rng), c = value(2, 0, &rng);
        float f = (a + b) + c, r = (c + b) + a;
        differs = memcmp(&f, &r, sizeof f) != 0;
    }
    printf("%s gpu_collective_order_visible: mixed magnitudes make the order show in the bits\n",
           differs ? "ok" : "not ok");
    failures += !differs;
    return failures ? 1 : 0;
}
