// comm.h — the communicator of a data-parallel run: what the trainer needs from the processes
// it trains with, as a table of functions over an opaque context (train/backend.h is the same
// idea for devices). Two implementations: one process (comm.c, always built: rank 0 of 1, every
// collective a no-op) and MPI (comm_mpi.c, compiled only when the build has MPI, VET_MPI=1:
// the one file in lib/ that calls MPI).
//
// Determinism. Every sum is taken in rank order (rank 0's value, plus rank 1's, ...), each
// element by one rank, and the result handed to every rank, so the bits of a sum depend on
// the values alone, never on timing or on the MPI library's choice of algorithm (MPI_Allreduce
// with MPI_SUM promises neither). comm_mpi.c says how and what it costs.
//
// Every function returns 0, or -1 with err filled.
#ifndef VET_TRAIN_COMM_H
#define VET_TRAIN_COMM_H

#include <stddef.h>

#include "base/err.h"

typedef struct vet_comm {
    const char *name;          // "single", "mpi"
    int rank, size;            // this process, and how many train together (1: alone)
    int local_rank;            // its index among the ranks on its machine (one GPU per rank)
    void *ctx;

    // x (n) := the sum over ranks of every rank's x, in rank order; the same bits on every rank.
    int (*allreduce_f32)(void *ctx, float *x, size_t n, vet_err *err);
    int (*allreduce_f64)(void *ctx, double *x, size_t n, vet_err *err);
    // all (size) := every rank's `mine`, by rank (the per-step status: who failed, who stops).
    int (*allgather_int)(void *ctx, int mine, int *all, vet_err *err);
    // buf (bytes) := root's buf on every rank.
    int (*broadcast)(void *ctx, void *buf, size_t bytes, int root, vet_err *err);
    // Ends every rank's process with exit status `status` (MPI_Abort); does not return. For a
    // failure the other ranks cannot know of (they would wait for this one for ever).
    void (*abort)(void *ctx, int status);
    // The end of a run that every rank reached (MPI_Finalize); the table is unusable after.
    void (*close)(void *ctx);
} vet_comm;

// The one-process communicator: rank 0 of 1.
void vet_comm_single(vet_comm *c);

// 1 when this process was started by an MPI launcher (mpirun, mpiexec, srun with PMI/PMIx:
// one of OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK is set) into a job of more than one
// process (*size, when known; 0 when the launcher does not say before MPI_Init).
int vet_comm_launched(int *size);

// The communicator this process runs under: MPI's when an MPI launcher started it and the
// build has MPI; else the single one. A job of several processes started by a launcher on a
// build without MPI is refused (each would train alone and all would write OUT).
int vet_comm_open(vet_comm *c, vet_err *err);

#if VET_MPI
// comm_mpi.c: MPI_Init and MPI_COMM_WORLD's rank and size.
int vet_comm_mpi_open(vet_comm *c, vet_err *err);
#endif

// A build string for --version and tests: "mpi" when built with MPI, else "".
const char *vet_comm_builtin(void);

#endif
