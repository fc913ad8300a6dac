// grad_ckpt.h — vet-train's --grad-checkpoint value: which layers the CUDA backend recomputes in
// backward, and whether it keeps the attention's output (vet_train_opts.gpu_ckpt,
// gpu_ckpt_layers). A library function so that every spelling is tested, not only the ones a
// script happens to use.
#ifndef VET_GRAD_CKPT_H
#define VET_GRAD_CKPT_H

#include "base/err.h"

// v: the flag's value, NULL for --grad-checkpoint alone (every layer recomputed), else a
// comma-separated list of at most one of N (the first N layers recomputed, the others keeping
// their activations; 0: no checkpointing) or auto (as few as fit in the device's memory), and
// keep-attention. 0 with *mode (0 off, 1 on, 2 keeping the attention's output) and *layers
// (0 every layer, N, or VET_CKPT_LAYERS_AUTO) set, or -1 with err (VET_E_USAGE).
int vet_grad_ckpt_parse(const char *v, int *mode, int *layers, vet_err *err);

#endif
