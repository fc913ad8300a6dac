// gpu_train_backend.h — the CUDA training backend: lib/train/backend.h's table over the GPU
// model of gpu_model.h. tools/vet-train.c hands vet_cuda_train_backend to the trainer
// (vet_train_opts.backend_new) for --device cuda.
//
// Opening it checks the settings the device cannot train (label smoothing; --full needs fp32
// base weights and no quantization; fp16 is for LoRA without --bf16 / --quant), opens the
// context of cuda:o->gpu_index and notes the device and the base weights' format. Loading
// the model notes its device memory plan for the run's largest micro-batch and checks it
// against the device's free memory BEFORE anything is allocated there, then uploads the model
// in one allocation. The gradient norm and the non-finite check are reduced on the device
// (kernels/gradstats.cu; 16 bytes come back), clipping and AdamW run there; the gradients
// come to the host only for the multi-rank allreduce; the trainable state comes back for
// checkpoints and the output files, and goes up on resume.
//
// Data parallel (o->comm of several ranks, one GPU each): the step's gradients are summed in
// rank order on the devices with NCCL when the build has it (gpu_collective.h; its
// communicator is made when the model loads), else, or with VET_NCCL=0 in the environment,
// through the host by the comm's MPI sum; the same bits either way. The device note says which.
//
// Built without CUDA the factory exists and fails with "--device cuda: vet was built without
// CUDA (rebuild with nvcc on PATH)".
#ifndef VET_GPU_TRAIN_BACKEND_H
#define VET_GPU_TRAIN_BACKEND_H

#include "train/backend.h"

int vet_cuda_train_backend(const vet_train_opts *o, vet_note_fn note, void *note_ctx, vet_train_backend *be,
                           vet_err *err);

// The GPU model's diagnostic settings from the environment, as vet-train reads them
// (VET_GPU_ATTENTION, VET_GPU_LORA_FUSED, VET_GPU_LORA_MMA, VET_GPU_WIDE, VET_GPU_LORA_UP; vet-train(1)):
// their VET_GPU_* bits added to *flags, the process-wide kernel choices made. A value outside
// each one's list is refused (VET_E_USAGE), never a silent default. For a program that runs the
// GPU model itself (tests/helpers/vet-fwdbwd).
int vet_gpu_env_flags(unsigned *flags, vet_err *err);

#endif
