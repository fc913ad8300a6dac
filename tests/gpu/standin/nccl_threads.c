// nccl_threads.c — the stand-in NCCL of nccl.h beside it: ranks are threads of one process.
// Inside ncclGroupStart/End a rank only records its sends and receives; ncclGroupEnd
// publishes the sends (peer by peer), waits for every rank (a barrier), copies each receive
// from the matching send (same count, or ncclInvalidUsage, as NCCL would hang or fail), and
// waits again before the buffers may change. One send and one receive per peer per group, as
// gpu_collective.c uses them. Outside a group send and receive are refused.
#include "nccl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANKS 16

struct ncclComm {
    int rank, size;
};

typedef struct {
    const void *buf;
    size_t count;
    int posted, matched;
} post;

static pthread_barrier_t barrier;
static int world_size;
static post sends[MAX_RANKS][MAX_RANKS];  // [from][to]

typedef struct {
    int in_group, n_recv;
    struct { void *buf; size_t count; int peer; } recv[MAX_RANKS];
} group;
static _Thread_local group g;
static _Thread_local int my_rank;

void standin_nccl_world(int size) {
    world_size = size;
    memset(sends, 0, sizeof sends);
    pthread_barrier_init(&barrier, NULL, (unsigned)size);
}

const char *ncclGetErrorString(ncclResult_t r) { return r == ncclSuccess ? "no error" : "stand-in NCCL error"; }
const char *ncclGetLastError(ncclComm_t comm) { return ""; }
ncclResult_t ncclGetVersion(int *version) {
    *version = 0;
    return ncclSuccess;
}
ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    memset(id, 0, sizeof *id);
    strcpy(id->internal, "stand-in");
    return ncclSuccess;
}
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    if (nranks != world_size || rank < 0 || rank >= nranks || strcmp(id.internal, "stand-in")) return ncclInvalidArgument;
    *comm = malloc(sizeof **comm);
    if (!*comm) return ncclSystemError;
    (*comm)->rank = rank, (*comm)->size = nranks;
    my_rank = rank;
    pthread_barrier_wait(&barrier);  // every rank joins, as ncclCommInitRank blocks for them
    return ncclSuccess;
}
ncclResult_t ncclCommAbort(ncclComm_t comm) {
    free(comm);
    return ncclSuccess;
}
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *e) {
    *e = ncclSuccess;
    return ncclSuccess;
}
ncclResult_t ncclGroupStart(void) {
    if (g.in_group) return ncclInvalidUsage;  // gpu_collective.c never nests
    g.in_group = 1, g.n_recv = 0;
    return ncclSuccess;
}
ncclResult_t ncclSend(const void *buf, size_t count, ncclDataType_t t, int peer, ncclComm_t comm, cudaStream_t s) {
    if (!g.in_group || t != ncclFloat || peer < 0 || peer >= comm->size) return ncclInvalidUsage;
    post *p = &sends[comm->rank][peer];
    if (p->posted) return ncclInvalidUsage;
    *p = (post){buf, count, 1, 0};
    return ncclSuccess;
}
ncclResult_t ncclRecv(void *buf, size_t count, ncclDataType_t t, int peer, ncclComm_t comm, cudaStream_t s) {
    if (!g.in_group || t != ncclFloat || peer < 0 || peer >= comm->size || g.n_recv == MAX_RANKS)
        return ncclInvalidUsage;
    g.recv[g.n_recv].buf = buf, g.recv[g.n_recv].count = count, g.recv[g.n_recv].peer = peer;
    g.n_recv++;
    return ncclSuccess;
}
ncclResult_t ncclGroupEnd(void) {
    if (!g.in_group) return ncclInvalidUsage;
    g.in_group = 0;
    pthread_barrier_wait(&barrier);  // every rank's sends are posted
    ncclResult_t rc = ncclSuccess;
    for (int i = 0; i < g.n_recv; i++) {
        post *p = &sends[g.recv[i].peer][my_rank];
        if (!p->posted || p->count != g.recv[i].count) {
            rc = ncclInvalidUsage;  // NCCL would hang or fail: no matching send
            continue;
        }
        memcpy(g.recv[i].buf, p->buf, p->count * sizeof(float));
        p->matched = 1;
    }
    pthread_barrier_wait(&barrier);  // every receive is done: this rank's row is its own again
    for (int j = 0; j < world_size; j++) {
        post *p = &sends[my_rank][j];
        if (p->posted && !p->matched) rc = ncclInvalidUsage;  // a send nobody received
        *p = (post){0};
    }
    return rc;
}
