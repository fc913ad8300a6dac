// gpu_collective.c — the GPUs' rank-order gradient sum over NCCL (see gpu_collective.h). The
// only file that calls NCCL; compiled to the two stubs at the end without it (VET_NCCL unset:
// no NCCL found, NCCL=0, or a build without CUDA or MPI, such as the CPU stand-in's and the
// GPU bundle's).
#include "kernels/host/gpu_collective.h"

#include <stdio.h>

#if defined(VET_CUDA) && defined(VET_NCCL)
#include <nccl.h>
#include <stdlib.h>

#include "kernels/ops_cuda.h"

struct vet_gpu_collective {
    vet_cuda *cuda;
    ncclComm_t nccl;
    int rank, size;
    float *scratch;            // device: (size, the largest chunk) copies of this rank's chunk
    size_t scratch_floats;
};

// An NCCL call that failed, as one line: what, NCCL's reason, and its last detailed message.
static int nccl_fail(ncclResult_t rc, ncclComm_t comm, const char *what, int line, vet_err *err) {
    const char *last = ncclGetLastError(comm);
    return vet_errf(err, "%s:%d: NCCL: %s: %s%s%s", __FILE__, line, what, ncclGetErrorString(rc),
                    last && *last ? ": " : "", last && *last ? last : "");
}
#define NCCL_TRY(g, call, err)                                                                  \
    do {                                                                                        \
        ncclResult_t r_ = (call);                                                               \
        if (r_ != ncclSuccess) return nccl_fail(r_, (g) ? (g)->nccl : NULL, #call, __LINE__, err); \
    } while (0)

int vet_gpu_collective_builtin(char *version, size_t n) {
    int v = 0;
    if (version && n) {
        if (ncclGetVersion(&v) == ncclSuccess)  // the library loaded, which may not be nccl.h's
            snprintf(version, n, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
        else
            snprintf(version, n, "%d.%d.%d", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
    }
    return 1;
}

vet_gpu_collective *vet_gpu_collective_new(vet_cuda *cuda, const vet_comm *comm, vet_err *err) {
    vet_gpu_collective *g = calloc(1, sizeof *g);
    if (!g) {
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    *g = (vet_gpu_collective){.cuda = cuda, .rank = comm->rank, .size = comm->size};
    ncclUniqueId id;
    ncclResult_t rc = ncclSuccess;
    if (comm->rank == 0 && (rc = ncclGetUniqueId(&id)) != ncclSuccess) {
        nccl_fail(rc, NULL, "ncclGetUniqueId", __LINE__, err);
        free(g);
        return NULL;
    }
    // MPI's one job here: every rank gets rank 0's id (128 bytes).
    if (comm->broadcast(comm->ctx, &id, sizeof id, 0, err) < 0) {
        free(g);
        return NULL;
    }
    // On the device vet_cuda_new made current; blocks until every rank has joined.
    if ((rc = ncclCommInitRank(&g->nccl, comm->size, id, comm->rank)) != ncclSuccess) {
        nccl_fail(rc, NULL, "ncclCommInitRank", __LINE__, err);
        free(g);
        return NULL;
    }
    return g;
}

static int grow_scratch(vet_gpu_collective *g, size_t floats, vet_err *err) {
    if (floats <= g->scratch_floats) return 0;
    vet_cuda_mem_free(g->scratch);
    g->scratch = NULL, g->scratch_floats = 0;
    if (vet_cuda_malloc((void **)&g->scratch, floats * sizeof(float), err) < 0) return -1;
    g->scratch_floats = floats;
    return 0;
}

// Chunk j of n floats on `size` ranks: [lo, lo + len), the chunks of lib/train/comm_mpi.c.
static size_t chunk(size_t n, int size, int j, size_t *len) {
    size_t lo = n * (size_t)j / size, hi = n * (size_t)(j + 1) / size;
    *len = hi - lo;
    return lo;
}

// 1: every rank sends chunk j of x to rank j; this rank receives its chunk from every rank,
// copy j from rank j at scratch + j * mine. Self included (NCCL copies it locally).
static int scatter_chunks(vet_gpu_collective *g, const float *x, size_t n, size_t mine, void *stream,
                          vet_err *err) {
    NCCL_TRY(g, ncclGroupStart(), err);
    for (int j = 0; j < g->size; j++) {
        size_t len, lo = chunk(n, g->size, j, &len);
        ncclResult_t rc = len ? ncclSend(x + lo, len, ncclFloat, j, g->nccl, stream) : ncclSuccess;
        if (rc == ncclSuccess && mine)
            rc = ncclRecv(g->scratch + (size_t)j * mine, mine, ncclFloat, j, g->nccl, stream);
        if (rc != ncclSuccess) {
            ncclGroupEnd();  // close the group before reporting
            return nccl_fail(rc, g->nccl, "ncclSend/ncclRecv (gradient chunks)", __LINE__, err);
        }
    }
    NCCL_TRY(g, ncclGroupEnd(), err);
    return 0;
}

// 3: this rank's summed chunk to every other rank; theirs into place in x.
static int gather_chunks(vet_gpu_collective *g, float *x, size_t n, void *stream, vet_err *err) {
    size_t mine, my_lo = chunk(n, g->size, g->rank, &mine);
    NCCL_TRY(g, ncclGroupStart(), err);
    for (int j = 0; j < g->size; j++) {
        if (j == g->rank) continue;
        size_t len, lo = chunk(n, g->size, j, &len);
        ncclResult_t rc = mine ? ncclSend(x + my_lo, mine, ncclFloat, j, g->nccl, stream) : ncclSuccess;
        if (rc == ncclSuccess && len) rc = ncclRecv(x + lo, len, ncclFloat, j, g->nccl, stream);
        if (rc != ncclSuccess) {
            ncclGroupEnd();
            return nccl_fail(rc, g->nccl, "ncclSend/ncclRecv (summed chunks)", __LINE__, err);
        }
    }
    NCCL_TRY(g, ncclGroupEnd(), err);
    return 0;
}

int vet_gpu_collective_allreduce(vet_gpu_collective *g, float *x, size_t n, vet_err *err) {
    if (g->size == 1 || n == 0) return 0;
    size_t mine, lo = chunk(n, g->size, g->rank, &mine);
    if (grow_scratch(g, (size_t)g->size * (mine ? mine : 1), err) < 0) return -1;
    void *stream = vet_cuda_stream(g->cuda);
    if (scatter_chunks(g, x, n, mine, stream, err) < 0) return -1;
    if (sum_in_rank_order_cuda(g->cuda, x + lo, g->scratch, g->size, mine, err) < 0) return -1;
    if (gather_chunks(g, x, n, stream, err) < 0) return -1;
    // Done on this device, or why not: a failed kernel, or an error inside NCCL's own.
    if (vet_cuda_sync(g->cuda, err) < 0) return -1;
    ncclResult_t async = ncclSuccess;
    NCCL_TRY(g, ncclCommGetAsyncError(g->nccl, &async), err);
    if (async != ncclSuccess) return nccl_fail(async, g->nccl, "the gradient allreduce", __LINE__, err);
    return 0;
}

void vet_gpu_collective_free(vet_gpu_collective *g) {
    if (!g) return;
    if (g->nccl) ncclCommAbort(g->nccl);
    vet_cuda_mem_free(g->scratch);
    free(g);
}

#else  // built without NCCL

int vet_gpu_collective_builtin(char *version, size_t n) {
    if (version && n) *version = 0;
    return 0;
}

vet_gpu_collective *vet_gpu_collective_new(vet_cuda *cuda, const vet_comm *comm, vet_err *err) {
    vet_errf(err, "vet was built without NCCL (make NCCL=auto with CUDA and MPI finds it)");
    return NULL;
}

int vet_gpu_collective_allreduce(vet_gpu_collective *g, float *x, size_t n, vet_err *err) {
    return vet_errf(err, "vet was built without NCCL");
}

void vet_gpu_collective_free(vet_gpu_collective *g) {}

#endif
