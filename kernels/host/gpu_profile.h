// gpu_profile.h — where a GPU training step's device time goes, by kind of work: the
// accounting that tells which of the CUDA core's costs matter (docs/cuda.md, "Profile").
//
// The device path marks each change of kind of work on its stream (vet_gpu_profile_enter):
// the device time from one mark to the next goes to the kind the first one started, launch
// gaps included, so a kind made of many small launches shows what it really costs. Marks
// are CUDA events (ops_cuda.h's vet_cuda_timer) in a ring; their times are read when the
// path syncs anyway (the end of a forward and of a backward), or when the ring is full.
// VET_PROF_NONE starts time that is nobody's: the device waiting for the host between calls.
//
// vet-train makes one when VET_GPU_PROFILE=FILE is in its environment (gpu_train_backend.c)
// and writes FILE at each pull of the state (checkpoints, the outputs). The stand-in's
// timer is the wall clock, so the file is checked in CI (tests/e2e/test_train_device.sh).
#ifndef VET_GPU_PROFILE_H
#define VET_GPU_PROFILE_H

#include "base/err.h"
#include "kernels/ops_cuda.h"

typedef enum {
    VET_PROF_NONE = -1,  // between calls: the device waits for the host
    VET_PROF_GEMM_BASE,  // the frozen (or fully trained) weights' GEMMs, dequantization included
    VET_PROF_GEMM_LORA,  // the adapters' A and B GEMMs and their gradients (cuBLAS)
    VET_PROF_LORA_FUSED, // the adapters' products with LoRA dropout's mask inside (lora.cu)
    VET_PROF_DROPOUT,    // LoRA input and residual dropout, forward and backward
    VET_PROF_ATTENTION,  // attention forward and backward
    VET_PROF_ROPE,
    VET_PROF_NORM,       // RMSNorm forward (and its recompute in backward) and backward
    VET_PROF_SWIGLU,
    VET_PROF_RESIDUAL,   // residual adds, the loss gradient's scale
    VET_PROF_CONVERT,    // fp32 -> bf16/fp16 copies of activations and gradients
    VET_PROF_MEMSET,     // zeroing of activation gradients
    VET_PROF_EMBEDDING,  // embedding lookup and gradient, the target rows' gather and scatter
    VET_PROF_LOSS,       // lm_head + cross-entropy (fused, chunked)
    VET_PROF_TRANSFER,   // the batch up, the losses down
    VET_PROF_OPTIMIZER,  // gradient norm, clipping, AdamW, zeroing the gradients
    VET_PROF_COLLECTIVE, // the data-parallel gradient sum
    VET_PROF_N
} vet_prof_kind;

typedef struct vet_gpu_profile vet_gpu_profile;

vet_gpu_profile *vet_gpu_profile_new(vet_cuda *ctx, vet_err *err);
void vet_gpu_profile_free(vet_gpu_profile *p);
// From now on the device's time goes to kind (a mark, unless kind is already the current one).
int vet_gpu_profile_enter(vet_gpu_profile *p, vet_prof_kind kind, vet_err *err);
// Adds up the times of every mark queued so far but the last (waits for that one). Call it
// after a sync, or it waits.
int vet_gpu_profile_collect(vet_gpu_profile *p, vet_err *err);
// The totals as JSON into path (atomically): milliseconds, share and segments per kind.
int vet_gpu_profile_write(vet_gpu_profile *p, const char *path, vet_err *err);

#endif
