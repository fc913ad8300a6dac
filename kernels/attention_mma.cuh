// attention_mma.cuh — attention_tc.cu's entry to attention_mma.cu: the same three kernels with
// their products and accumulators in registers (mma.sync), for heads up to 128 wide.
#ifndef VET_ATTENTION_MMA_CUH
#define VET_ATTENTION_MMA_CUH

#include "common.cuh"

// The widest head the register kernels take (head_dim rounded up to 16); wider heads stay on
// attention_tc.cu's WMMA kernels.
#define VET_ATTN_MMA_MAX_HD 128

// Each returns 0 when launched, -1 on a CUDA error (err set), 1 when hd is wider than
// VET_ATTN_MMA_MAX_HD (nothing launched). start/end/Dl: attention_prepare's scratch.
int attention_mma_forward(vet_cuda *ctx, attn_out out, float *lse, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                          const int32_t *start, int B, int T, int H, int KVH, int hd, vet_err *err);
int attention_mma_backward(vet_cuda *ctx, float *dq, float *dk, float *dv, const uint16_t *dout, const uint16_t *q,
                           const uint16_t *k, const uint16_t *v, const float *lse, const float *Dl, const int32_t *start,
                           const int32_t *end, int B, int T, int H, int KVH, int hd, int accumulate, vet_err *err);

// Which kernels run (a process-wide setting, for tests and the diagnostic VET_GPU_ATTENTION). By
// default attention_pipe.cu's (tiles double-buffered by asynchronous copies) where they apply
// (head_dim a multiple of 8, 16-byte aligned tensors), else attention_mma.cu's (each tile loaded,
// then computed). scalar = 1: attention_mma.cu's kernels loading their tiles one element at a
// time (their path for other widths) at any width; transposed = 1: attention_mma.cu's kernels of
// the first GPU run (2026-12-04), which keep transposed copies of V, K, Q and dO in shared
// memory and read fragments with 32-bit loads instead of ldmatrix(.trans); sync = 1:
// attention_mma.cu's ldmatrix kernels with 16-byte loads, where the pipelined ones would run.
void attention_mma_set_variant(int scalar, int transposed, int sync);

#endif
