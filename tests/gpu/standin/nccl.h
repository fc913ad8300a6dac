// nccl.h — a stand-in for NCCL's header: the subset kernels/host/gpu_collective.c calls, with
// NCCL's names and signatures, implemented over threads of one process by nccl_threads.c (each
// thread a rank, "device" memory host memory, as in ops_cuda_cpu.c). Only for
// tests/gpu/standin/test_collective.c (mk/gpustub.mk), which compiles gpu_collective.c against
// it to check the reduce-scatter / sum / allgather schedule without GPUs.
#ifndef VET_STANDIN_NCCL_H
#define VET_STANDIN_NCCL_H

#include <stddef.h>

#define NCCL_MAJOR 0
#define NCCL_MINOR 0
#define NCCL_PATCH 0

typedef enum {
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
} ncclResult_t;
typedef enum { ncclFloat = 7 } ncclDataType_t;
typedef struct ncclComm *ncclComm_t;
typedef struct {
    char internal[128];
} ncclUniqueId;
typedef void *cudaStream_t;

const char *ncclGetErrorString(ncclResult_t result);
const char *ncclGetLastError(ncclComm_t comm);
ncclResult_t ncclGetVersion(int *version);
ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId);
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank);
ncclResult_t ncclCommAbort(ncclComm_t comm);
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError);
ncclResult_t ncclGroupStart(void);
ncclResult_t ncclGroupEnd(void);
ncclResult_t ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream);
ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream);

// The stand-in's world: `size` ranks (threads) that will call ncclCommInitRank. Before any.
void standin_nccl_world(int size);

#endif
