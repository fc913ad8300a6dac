// device.h — which compute devices this build and this machine offer.
//
// A program picks its backend at run time (DESIGN.md, Backends): `--device cuda` needs a
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

#endif
