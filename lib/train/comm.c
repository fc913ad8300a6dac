// comm.c — the one-process communicator (see comm.h), and the choice between it and MPI's.
#include "train/comm.h"

#include <stdlib.h>
#include <string.h>

static int single_allreduce_f32(void *ctx, float *x, size_t n, vet_err *err) { return 0; }
static int single_allreduce_f64(void *ctx, double *x, size_t n, vet_err *err) { return 0; }
static int single_broadcast(void *ctx, void *buf, size_t bytes, int root, vet_err *err) { return 0; }
static void single_close(void *ctx) {}

static int single_allgather_int(void *ctx, int mine, int *all, vet_err *err) {
    all[0] = mine;
    return 0;
}

static void single_abort(void *ctx, int status) { exit(status); }

void vet_comm_single(vet_comm *c) {
    *c = (vet_comm){
        .name = "single", .rank = 0, .size = 1,
        .allreduce_f32 = single_allreduce_f32, .allreduce_f64 = single_allreduce_f64,
        .allgather_int = single_allgather_int, .broadcast = single_broadcast,
        .abort = single_abort, .close = single_close,
    };
}

int vet_comm_launched(int *size) {
    // Open MPI's mpirun says the size; PMIx and PMI (srun, MPICH's hydra) the rank, and
    // PMI_SIZE the size where it is set.
    static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"};
    static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"};
    int launched = 0;
    for (size_t i = 0; i < sizeof rank_vars / sizeof *rank_vars; i++) launched |= getenv(rank_vars[i]) != NULL;
    *size = 0;
    for (size_t i = 0; launched && i < sizeof size_vars / sizeof *size_vars && !*size; i++) {
        const char *v = getenv(size_vars[i]);
        if (v) *size = atoi(v);
    }
    return launched;
}

int vet_comm_open(vet_comm *c, vet_err *err) {
    vet_comm_single(c);
    int size;
    if (!vet_comm_launched(&size)) return 0;
#if VET_MPI
    return vet_comm_mpi_open(c, err);
#else
    if (size > 1)
        return vet_err_kindf(err, VET_E_USAGE, "started by an MPI launcher as one of %d processes, but this "
                             "build has no MPI (each would train alone): rebuild with MPI (make MPI=1, Debian's "
                             "libopenmpi-dev), or run one process", size);
    return 0;
#endif
}

const char *vet_comm_builtin(void) {
#if VET_MPI
    return "mpi";
#else
    return "";
#endif
}
