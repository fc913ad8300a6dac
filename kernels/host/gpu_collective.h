// gpu_collective.h — data-parallel gradients summed on the GPUs (NCCL), one rank per GPU: the
// device twin of lib/train/comm_mpi.c's deterministic sum, with the same bits.
//
// The sum, for a float buffer x (n) on each rank's device, with `size` ranks:
//   1. reduce-scatter in rank order: x is cut into the chunks of comm_mpi.c, chunk j =
//      [j n / size, (j + 1) n / size); inside one ncclGroupStart/End every rank sends chunk j
//      to rank j (ncclSend) and receives `size` copies of its own chunk, one from each rank,
//      into a device scratch (ncclRecv);
//   2. rank k adds the copies in rank order, ((x_0 + x_1) + x_2) + ..., into its chunk of x
//      (sum_in_rank_order_cuda, kernels/rank_sum.cu);
//   3. allgather: in a second group every rank sends its summed chunk to every other rank and
//      receives theirs into place (grouped send/recv rather than ncclAllGather, which wants
//      equal counts: the chunks differ by one float when size does not divide n).
// Every element is summed once, by one rank, in one order, so the result does not depend on
// timing, topology or NCCL's algorithms, and it equals the host path's bit for bit.
// ncclAllReduce is not used: it promises no order of summation.
//
// MPI (train/comm.h) only bootstraps: rank 0 makes the ncclUniqueId, comm->broadcast hands it
// to every rank, each calls ncclCommInitRank on the device its vet_cuda context selected.
// All work is queued on that context's stream.
//
// Built only with NCCL (VET_NCCL=1: the Makefile's NCCL=auto, with CUDA and MPI); without it
// vet_gpu_collective_builtin() is 0 and vet_gpu_collective_new fails saying so.
#ifndef VET_GPU_COLLECTIVE_H
#define VET_GPU_COLLECTIVE_H

#include <stddef.h>

#include "base/err.h"
#include "train/comm.h"

typedef struct vet_cuda vet_cuda;  // kernels/ops_cuda.h's context (same typedef there)
typedef struct vet_gpu_collective vet_gpu_collective;

// 1 when this build has NCCL; then *version (when not NULL) is the library's, as "2.28.9".
int vet_gpu_collective_builtin(char *version, size_t n);

// The NCCL communicator of comm's ranks (a collective call: every rank of comm makes it, after
// vet_cuda_new selected its device). NULL with err filled on failure.
vet_gpu_collective *vet_gpu_collective_new(vet_cuda *cuda, const vet_comm *comm, vet_err *err);

// x (n, device memory) := the sum over the ranks of every rank's x, in rank order (above); the
// same bits on every rank. A collective call; returns once the sum is complete on this device.
int vet_gpu_collective_allreduce(vet_gpu_collective *g, float *x, size_t n, vet_err *err);

// Tears the communicator down with ncclCommAbort: local, it never waits for a peer (a peer
// may have failed: the trainer's status exchange stops every rank, and a rank that died is
// gone), and nothing is in flight then (every allreduce is waited for). NULL: nothing.
void vet_gpu_collective_free(vet_gpu_collective *g);

#endif
