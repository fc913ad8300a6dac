// backend.h — the training backend table: what a device provides so that vet_train_run can
// train on it. generate/decoder.h's vet_infer_backend is the same idea for generation, and
// ggml's backend interface the model: a table of functions over an opaque context.
//
// Who does what. The trainer (train/loop.c) owns everything that does not depend on the
// device: the data order, the micro-batches, the loss of a step, the learning-rate schedule,
// fp16 loss scaling (train/loss_scale.h), validation, checkpoints and the output files. A
// backend owns the compute and the trainable state while the run trains: forward and
// backward, the gradients, their norm, clipping and the AdamW step.
//
// The host keeps the master copy the files are written from: the trainable floats (the host
// model's lora_mem, or w_mem with --full) and both AdamW moments, handed to the backend by
// `load`. The CPU backend trains them in place (its pull_state and push_state do nothing); a
// device backend keeps its own copy and moves it with pull_state / push_state.
//
// Two backends: the CPU's (train/backend_cpu.c: model/forward_backward.c with OpenMP +
// OpenBLAS, the reference), and CUDA's (kernels/host/gpu_train_backend.c). Nothing in lib/
// includes kernels/, so a program hands the CUDA factory to the trainer in
// vet_train_opts.backend_new (tools/vet-train.c); NULL means the CPU.
//
// Every function returns 0, or -1 with err filled.
#ifndef VET_TRAIN_BACKEND_H
#define VET_TRAIN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "model/model.h"
#include "train/comm.h"

typedef struct vet_train_opts vet_train_opts;  // train/trainer.h

// One line of information for the user (the device, the device memory plan), no newline.
typedef void (*vet_note_fn)(const char *line, void *ctx);

// What `load` hands a backend once the model is set up on the host.
typedef struct {
    vet_model *m;              // the host model, adapters added (the backend does not free it)
    vet_train_mode mode;       // VET_TRAIN_LORA or VET_TRAIN_FULL
    float *params;             // (n) the trainable floats: m->lora_mem, or m->w_mem in full mode
    float *adam_m, *adam_v;    // (n) AdamW's first and second moments (zeros, or a checkpoint's)
    size_t n;
    int batch_size;            // rows per micro-batch
    int max_len;               // the longest row of the training and validation sets
    int max_rows;              // rows in the larger of the two sets (a batch never holds more)
} vet_train_setup;

// AdamW's settings for one parameter group, as torch.optim.AdamW.
typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    int step;                  // the optimizer step, counting from 1 (bias correction)
    float grad_scale;          // the gradients' factor inside the step: clipping times fp16's
                               // unscale (1: none). A pass of its own over the gradients
                               // would read and write them all once more.
} vet_adamw;

typedef struct vet_train_backend {
    const char *name;          // "cpu", "cuda"
    void *ctx;
    int loss_scaling;          // 1: the gradients are computed in fp16 and the trainer scales
                               // the loss (dynamic loss scaling); 0: fp32 / bf16, no scaling

    // Takes the model: room for micro-batches of batch_size x max_len, the model on the
    // device (a device backend checks its memory plan first). Called once, before any step.
    int (*load)(void *ctx, const vet_train_setup *s, vet_err *err);

    // Forward of micro-batch b in training mode (LoRA and residual dropout drawn from
    // dropout_seed); *loss_sum is its summed cross-entropy. Then, when grad_scale > 0, the
    // backward of grad_scale * loss_sum, accumulated (+=) into the gradients. The trainer
    // passes 1 / (targets of the whole step) times the fp16 loss scale, so the gradients of a
    // step's micro-batches add up to the gradient of its mean loss; 0 for a step without
    // targets (nothing to learn).
    int (*forward_backward)(void *ctx, const vet_batch *b, uint64_t dropout_seed, float grad_scale,
                            double *loss_sum, vet_err *err);
    // Forward only, no dropout (validation): the summed loss and the count of targets.
    int (*forward)(void *ctx, const vet_batch *b, double *loss_sum, int *n_targets, vet_err *err);

    // The global L2 norm of the gradients times unscale (fp16: float(1/S); else 1): the value
    // of vet_train_grad_norm (each product rounded to float, squares summed in double), so
    // that every backend clips and checks alike. The CPU sums from element 0 up; a device
    // reduces where the gradients are, in a fixed order of its own (CUDA: two passes in
    // double, deterministic, within ~1e-15 relative of the CPU's sum). Only the norm comes
    // back; the gradients themselves are not changed.
    int (*grad_norm)(void *ctx, float unscale, double *norm, vet_err *err);
    // After grad_norm: 1 and *index of the first gradient that is not finite, or 0 (a device
    // finds it in grad_norm's pass and keeps the index).
    int (*find_nonfinite_grad)(void *ctx, size_t *index);
    int (*zero_grads)(void *ctx, vet_err *err);
    // Data parallel (train/comm.h): the gradients := their sum over comm's ranks (comm's
    // rank-order sum, the same bits on every rank), before grad_norm. NULL: the backend cannot
    // train on more than one rank.
    int (*allreduce_grads)(void *ctx, const vet_comm *comm, vet_err *err);
    // AdamW (model/ops.h's adamw_update, operation for operation) over the trainable floats
    // [off, off + n): one parameter group, on the gradients times hp->grad_scale.
    int (*adamw_step)(void *ctx, size_t off, size_t n, const vet_adamw *hp, vet_err *err);

    // The host's copy made current: the trainable floats, and with moments both AdamW moments
    // (before a checkpoint, a best-model snapshot, the output files).
    int (*pull_state)(void *ctx, int moments, vet_err *err);
    // The host's copy (a checkpoint just read) made the backend's.
    int (*push_state)(void *ctx, vet_err *err);
    void (*free)(void *ctx);
} vet_train_backend;

// A backend factory: opens the device for the run o (before any data or model is read, so a
// wrong device fails at once), says which through note, and fills *be. On failure *be is left
// zeroed. vet_cuda_train_backend (kernels/host/gpu_train_backend.h) is one.
typedef int (*vet_train_backend_fn)(const vet_train_opts *o, vet_note_fn note, void *note_ctx,
                                    vet_train_backend *be, vet_err *err);

// The CPU backend (the default): refuses settings only a device has (fp16 or quantized base
// weights) and notes "device cpu (N threads), fp32".
int vet_cpu_train_backend(const vet_train_opts *o, vet_note_fn note, void *note_ctx, vet_train_backend *be,
                          vet_err *err);

// The one gradient reduction: sqrt(sum over i of (double)(g[i] * unscale)^2), i from 0 up.
double vet_train_grad_norm(const float *g, size_t n, float unscale);
// 1 and *index of the first element of g (n) that is not finite, or 0.
int vet_train_find_nonfinite(const float *g, size_t n, size_t *index);

// note(line) with the line formatted as printf does; nothing when note is NULL.
void vet_train_notef(vet_note_fn note, void *note_ctx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
