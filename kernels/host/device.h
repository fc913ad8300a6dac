// device.h — which compute devices this build and this machine offer.
//
// A program picks its backend at run time (docs/architecture.md, Device backends): `--device cuda` needs a
// build with CUDA (nvcc present at build time, VET_CUDA=1) AND a usable GPU at run time.
// These checks never abort: on a machine without a GPU or driver they say why and return 0.
#ifndef VET_DEVICE_H
#define VET_DEVICE_H

#include <stddef.h>

// 1 when the CUDA backend can run here (built with CUDA and at least one device answers);
// 0 otherwise, with the reason in why (n bytes; why may be NULL), e.g. "built without CUDA
// (nvcc was not found at build time)" or "no usable CUDA device: no CUDA-capable device is
// detected".
int vet_cuda_available(char *why, size_t n);

// "cpu cuda" or "cpu": the backends compiled into this build.
const char *vet_backends_built(void);


// ---------------------------------------------------------------------------------------
// The device and precision flags vet-train and vet-generate share (--device, --dtype /
// --fp32 / --bf16 / --fp16, --quant), parsed and checked in one place. Rules that belong to
// one program (full training keeps fp32 weights; an ensemble decodes on the CPU) stay there.

#include "base/err.h"
#include "model/quant.h"

typedef enum { VET_DTYPE_DEFAULT = 0, VET_DTYPE_FP32, VET_DTYPE_BF16, VET_DTYPE_FP16 } vet_dtype_choice;

typedef struct {
    int cuda;                // 0: the CPU; 1: a CUDA device
    int index;               // cuda:N (0 for plain "cuda")
    vet_dtype_choice dtype;  // as asked; VET_DTYPE_DEFAULT lets the program choose
    vet_quant_kind quant;    // VET_QUANT_NONE unless --quant
} vet_device_choice;

// device: "cpu", "cuda" or "cuda:N" (NULL: cpu); dtype: "fp32", "bf16", "fp16" or NULL; quant:
// "none", "int8", "nf4" or NULL. weights names what the precision applies to in messages
// ("weights", "base weights"). Refuses, with VET_E_USAGE and a message naming the flag: a
// malformed value, a half precision or a quantization on the CPU (which computes in fp32), and
// --quant with --fp16 (quantized weights are dequantized to bf16 or fp32). Does not ask
// whether a GPU is present: vet_cuda_available does.
int vet_device_choose(const char *device, const char *dtype, const char *quant, const char *weights,
                      vet_device_choice *c, vet_err *err);

// "fp32", "bf16", "fp16" (VET_DTYPE_DEFAULT: "default").
const char *vet_dtype_choice_name(vet_dtype_choice d);

// An on/off diagnostic from the environment (VET_GPU_LORA_FUSED, VET_GPU_WIDE, ...): unset or
// empty gives dflt, "1" 1, "0" 0; another value is refused with VET_E_USAGE and a message naming
// the variable, so a typo is not a silent default. Returns 0 or 1, or -1 with err set.
int vet_env_switch(const char *name, int dflt, vet_err *err);

// A byte count for memory-plan messages: "1.50 GiB", "12.0 MiB", "3.0 KiB" (buf of 32 bytes).
const char *vet_bytes_str(char buf[32], size_t b);

#endif
