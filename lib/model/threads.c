// threads.c — one thread pool: OpenMP runs our loops and splits the GEMMs (vet_sgemm);
// OpenBLAS itself runs single-threaded. Two pools on the same cores (OpenMP's spinning
// workers and OpenBLAS's yielding ones) cost more than half the time on a 2-core machine,
// and the attention calls cblas_sgemm from inside OpenMP loops, where it must not spawn.
#include <omp.h>
#include <stdlib.h>

#include "model/ops.h"

void openblas_set_num_threads(int);  // from OpenBLAS; cblas.h does not declare it everywhere

static int vet_threads_;  // 0 until set: then omp's default
static int blas_single_;

void vet_blas_single_threaded(void) {
    if (blas_single_) return;
    openblas_set_num_threads(1);
    blas_single_ = 1;
}

// More threads than this is a typo (OMP_NUM_THREADS=40000000), not a machine; the thread
// counts multiply into chunk sizes that must not overflow.
#define VET_MAX_THREADS 4096

// OMP_NUM_THREADS's first level ("4" or "4,2": 4), or 0 where it is unset or not a count list
// ("4abc": the OpenMP runtime, which warns about such a value itself, ignores it too).
static int threads_from_env(void) {
    const char *e = getenv("OMP_NUM_THREADS");
    if (!e) return 0;
    char *end;
    long v = strtol(e, &end, 10);  // saturates: LONG_MAX is capped below
    if (end == e || v <= 0 || (*end && *end != ',' && *end != ' ')) return 0;
    return v > VET_MAX_THREADS ? VET_MAX_THREADS : (int)v;
}

// n <= 0: what any OpenMP program takes, OMP_NUM_THREADS where set (a Slurm script's
// $SLURM_CPUS_PER_TASK, two ranks sharing a machine), else every core.
void vet_set_threads(int n) {
    if (n <= 0) n = threads_from_env();
    if (n <= 0) n = omp_get_num_procs();
    if (n > VET_MAX_THREADS) n = VET_MAX_THREADS;
    vet_threads_ = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(1);
    blas_single_ = 1;
}

int vet_get_threads(void) { return vet_threads_ ? vet_threads_ : omp_get_max_threads(); }
