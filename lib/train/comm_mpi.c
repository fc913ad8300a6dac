// comm_mpi.c — the MPI communicator (see comm.h): MPI_COMM_WORLD, one rank per process. The
// only file in lib/ that calls MPI; compiled to nothing unless the build has MPI (VET_MPI=1,
// the Makefile's MPI=auto finds mpicc).
//
// The deterministic sum of a float buffer (the gradients), in two collectives:
//   1. MPI_Alltoallv: the buffer is cut into `size` contiguous chunks; rank k receives chunk k
//      of every rank's buffer (size x n/size floats of scratch);
//   2. rank k adds its chunk's copies in rank order, ((x_0 + x_1) + x_2) + ..., into its own
//      buffer, and MPI_Allgatherv hands every rank every summed chunk.
// Each element is summed once, by one rank, in a fixed order: the same bits on every rank and
// in every run, whatever the timing or Open MPI's algorithm. The traffic is that of a ring
// allreduce, 2 (size-1)/size x n floats sent and received per rank (reduce-scatter, then
// allgather), without the ring's pipelining; the memory, n floats of scratch. Small buffers
// of doubles (the step's loss and token count) are gathered whole and summed in rank order.
//
// Errors: MPI's default handler (MPI_ERRORS_ARE_FATAL) stays, so a peer that died ends the
// job inside the collective instead of returning; the checks below are for the rest.
#if VET_MPI
#include "train/comm.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int *counts, *displs;      // (size) chunk lengths and offsets, for the current buffer
    void *scratch;             // (size x the largest chunk) copies of this rank's chunk
    size_t scratch_bytes;
} mpi_comm;

static int mpi_fail(int rc, const char *what, vet_err *err) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return vet_errf(err, "MPI: %s failed: %.*s", what, len, msg);
}

static int grow_scratch(mpi_comm *m, size_t bytes, vet_err *err) {
    if (bytes <= m->scratch_bytes) return 0;
    void *p = realloc(m->scratch, bytes);
    if (!p) return vet_err_nomem(err, "out of memory for the allreduce's scratch (%zu bytes)", bytes);
    m->scratch = p, m->scratch_bytes = bytes;
    return 0;
}

// The sum in rank order of the `size` copies of this rank's chunk (scratch: copy j at j * len)
// into out (len).
static void sum_f32(float *out, const float *copies, int size, int len) {
    for (int i = 0; i < len; i++) {
        float s = copies[i];
        for (int j = 1; j < size; j++) s += copies[(size_t)j * len + i];
        out[i] = s;
    }
}

static int mpi_allreduce_f32(void *ctx, float *x, size_t n, vet_err *err) {
    mpi_comm *m = ctx;
    int size, rank;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (size == 1) return 0;
    if (n / size + 1 > INT_MAX) return vet_errf(err, "allreduce of %zu floats: chunks past MPI's int counts", n);
    for (int j = 0; j < size; j++) {  // chunk j: [j n / size, (j + 1) n / size)
        size_t lo = n * (size_t)j / size, hi = n * (size_t)(j + 1) / size;
        m->displs[j] = (int)lo, m->counts[j] = (int)(hi - lo);
    }
    int mine = m->counts[rank];
    if (grow_scratch(m, (size_t)size * mine * sizeof(float), err) < 0) return -1;
    int *rcounts = m->counts + size, *rdispls = m->displs + size;  // every rank sends me `mine`
    for (int j = 0; j < size; j++) rcounts[j] = mine, rdispls[j] = j * mine;
    int rc = MPI_Alltoallv(x, m->counts, m->displs, MPI_FLOAT, m->scratch, rcounts, rdispls, MPI_FLOAT,
                           MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Alltoallv (gradient chunks)", err);
    sum_f32(x + m->displs[rank], m->scratch, size, mine);
    rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, m->counts, m->displs, MPI_FLOAT, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allgatherv (summed chunks)", err);
}

static int mpi_allreduce_f64(void *ctx, double *x, size_t n, vet_err *err) {
    mpi_comm *m = ctx;
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size == 1) return 0;
    if (n > INT_MAX) return vet_errf(err, "allreduce of %zu doubles: past MPI's int counts", n);
    if (grow_scratch(m, (size_t)size * n * sizeof(double), err) < 0) return -1;
    double *all = m->scratch;  // (size, n)
    int rc = MPI_Allgather(x, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allgather", err);
    for (size_t i = 0; i < n; i++) {
        double s = all[i];
        for (int j = 1; j < size; j++) s += all[(size_t)j * n + i];
        x[i] = s;
    }
    return 0;
}

static int mpi_allgather_int(void *ctx, int mine, int *all, vet_err *err) {
    int rc = MPI_Allgather(&mine, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allgather (step status)", err);
}

static int mpi_broadcast(void *ctx, void *buf, size_t bytes, int root, vet_err *err) {
    if (bytes > INT_MAX) return vet_errf(err, "broadcast of %zu bytes: past MPI's int counts", bytes);
    int rc = MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Bcast", err);
}

static void mpi_abort(void *ctx, int status) {
    MPI_Abort(MPI_COMM_WORLD, status);
    exit(status);  // MPI_Abort does not return; should it, the process still ends
}

static void mpi_close(void *ctx) {
    mpi_comm *m = ctx;
    MPI_Finalize();
    if (!m) return;
    free(m->counts);
    free(m->displs);
    free(m->scratch);
    free(m);
}

int vet_comm_mpi_open(vet_comm *c, vet_err *err) {
    int rc = MPI_Init(NULL, NULL);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Init", err);
    mpi_comm *m = calloc(1, sizeof *m);
    int size, rank;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (m) m->counts = malloc(2 * (size_t)size * sizeof(int)), m->displs = malloc(2 * (size_t)size * sizeof(int));
    if (!m || !m->counts || !m->displs) {
        mpi_close(m);
        return vet_err_nomem(err, "out of memory");
    }
    MPI_Comm node;  // the ranks that share this machine's memory: local_rank picks a GPU
    int local = 0;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &local);
        MPI_Comm_free(&node);
    }
    *c = (vet_comm){
        .name = "mpi", .rank = rank, .size = size, .local_rank = local, .ctx = m,
        .allreduce_f32 = mpi_allreduce_f32, .allreduce_f64 = mpi_allreduce_f64,
        .allgather_int = mpi_allgather_int, .broadcast = mpi_broadcast,
        .abort = mpi_abort, .close = mpi_close,
    };
    return 0;
}

#else
typedef int vet_comm_mpi_unused;  // ISO C wants a translation unit to declare something
#endif
