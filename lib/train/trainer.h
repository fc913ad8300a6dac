// trainer.h — the training loop behind vet-train: LoRA or full fine-tuning (or from scratch)
// over packed rows, AdamW as torch.optim.AdamW, Hugging Face schedules, gradient accumulation,
// clipping, validation, early stopping, atomic checkpoints and exact resume.
//
// Steps. An epoch visits every row once, in an order drawn from (seed, epoch). Micro-batches
// are batch_size rows; an optimizer step takes grad_accum micro-batches (the last step of an
// epoch may take fewer). Steps per epoch = ceil(ceil(rows / batch_size) / grad_accum).
// The loss of a step is the sum of cross-entropy over all its target tokens divided by their
// count (not a mean of micro-batch means).
//
// Everything random (data order, LoRA dropout) is a function of (seed, step), so a run that is
// stopped and resumed from a checkpoint computes bit-for-bit what the uninterrupted run does.
//
// Data parallel (docs/scale.md). With a communicator of N ranks (train/comm.h: mpirun -np N),
// a micro-batch is batch_size rows on every rank, batch_size x N in all: rank k computes the
// k-th batch_size rows of each of the step's micro-batches, in the one global data order, and
// the gradients are summed over the ranks in rank order before the norm, clipping and AdamW,
// which every rank then takes alike. N ranks with batch B therefore train as one process with
// batch N x B and the same grad_accum (to float rounding: the rows' gradients are summed in
// another order), and a checkpoint (the global step; settings fingerprinted with the global
// batch) continues on any number of ranks whose batch_size x N is the same. Rank 0 alone
// writes OUT; the ranks agree after every step's backward on who failed and on a stop signal.
//
// Devices. The compute runs on a backend (train/backend.h): the CPU's by default, or the one
// vet_train_opts.backend_new makes (tools/vet-train.c hands in the CUDA backend of
// kernels/host/gpu_train_backend.h for --device cuda). The data, the schedule, the gradient
// norm and the files are the same on every backend; a checkpoint resumes on either. In fp32 a
// CUDA step computes the CPU's step (to ~1e-6; bit for bit on the CPU stand-in of the ops).
//
// The code, by concern: trainer.c (this API: the run's phases in order), setup.c (data, the
// model, the tokenizer check), params.c (the trainable floats, parameter groups, AdamW's
// moments), loop.c (the training loop), loss_scale.c (fp16 loss scaling), resume.c
// (checkpoints and resume), log.c (train.log.jsonl), outputs.c (the adapter or model written
// at the end), backend_cpu.c (the CPU backend); run.h is what they share.
#ifndef VET_TRAINER_H
#define VET_TRAINER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "train/backend.h"
#include "train/comm.h"
#include "train/schedule.h"

// vet_train_opts.gpu_ckpt_layers: recompute as few layers as the device memory allows.
#define VET_CKPT_LAYERS_AUTO (-1)

typedef struct vet_train_opts {
    // model
    const char *base_dir;      // HF directory, or NULL with init
    const char *init;          // preset name or config.json path, or NULL
    const char *tokenizer;     // tokenizer.model, tokenizer.json or a directory (data/tokenizer.h) to
                               // check the data against and ship with a model written out
                               // (default: --base's; a directory holding both kinds: on_note says which)
    const char *out_dir;
    // data
    const char *train_path;    // packed training rows
    const char *const *train_more;  // more packed files trained on as part of the same set
    int n_train_more;               // (their rows follow train_path's; may be 0)
    const char *val_path;
    // LoRA / full
    int full;
    int lora_r;
    float lora_alpha, lora_dropout;
    unsigned lora_targets;
    int rslora;
    int merge;                 // also write OUT/merged (LoRA merged into the base)
    const char *adapter_in;    // start LoRA from this PEFT adapter (its r/alpha/targets win)
    // optimization
    int epochs, batch_size, grad_accum;
    double lr, weight_decay, warmup_ratio, max_grad_norm;
    double label_smoothing;    // eps in [0, 1): torch's cross_entropy(label_smoothing=eps) (0)
    double resid_dropout;      // p in [0, 1): dropout before each residual add, training only (0)
    double token_dropout;      // p in [0, 1): prompt tokens replaced by unk in training batches
                               // (vet_batch_drop_tokens; 0)
    vet_sched_kind scheduler;
    uint64_t seed;
    long max_steps;            // 0: epochs decide
    // evaluation and saving
    long eval_every, save_every, log_every;
    int save_limit, patience;
    const char *resume;        // checkpoint dir or output dir, or NULL
    int skip_nonfinite;
    int threads;
    // device
    vet_train_backend_fn backend_new;  // the backend to train on (NULL: the CPU's); the gpu_*
                                       // settings below are read by the CUDA backend only
    int gpu_index;             // CUDA device number (0)
    int gpu_bf16;              // CUDA: base weight matrices in bf16 (LoRA only; fp32 is exact)
    int gpu_fp16;              // CUDA: base weight matrices in fp16 with dynamic loss scaling (LoRA
                               // only, not with gpu_bf16 / gpu_quant)
    double fp16_init_scale;    // the loss scale fp16 starts at (0: 65536, GradScaler's default)
    int gpu_quant;             // CUDA: base weight matrices quantized (lib/quant.h's vet_quant_kind:
                               // 0 none, 1 int8, 2 nf4; LoRA only): dequantized to bf16 for the
                               // GEMMs with gpu_bf16, else to fp32
    int gpu_ckpt;              // CUDA: gradient checkpointing (VET_GPU_CKPT): 1 keeps each layer's
                               // input only, recompute the layer in backward; same results, far
                               // smaller activations, ~1 more forward per step. 2 (VET_GPU_CKPT_
                               // KEEP_ATTN) keeps each layer's attention output too, and the
                               // recompute skips the attention. The CPU ignores it
    int gpu_ckpt_layers;       // CUDA, with gpu_ckpt: how many layers, the first ones, are
                               // recomputed: 0 every layer, N > 0 that many (the others keep their
                               // activations: faster, more memory), VET_CKPT_LAYERS_AUTO as few as
                               // the device memory allows (gpu_mem_cap or its free memory)
    size_t gpu_mem_cap;        // CUDA: the most device memory the run may plan for (bytes; 0: the
                               // device's free memory), for a shared device or a memory target
    vet_note_fn on_note;       // called with vet_train_run's ctx; NULL: no notes (the backend's
                               // notes go there too)
    const volatile sig_atomic_t *stop;  // set by a signal handler: checkpoint and stop
    // data parallel
    const vet_comm *comm;      // the ranks trained with (NULL: this process alone)
    int fail_rank;             // a test hook (VET_TRAIN_FAIL_AT=RANK:STEP in vet-train): rank
    long fail_step;            // fail_rank fails at step fail_step (1-based; 0: never)
} vet_train_opts;

// What the loop tells its caller after every step (for progress output).
typedef struct {
    long step, total_steps;
    double epoch;              // fractional epochs done
    double loss, lr, grad_norm, tokens_per_s, val_loss;  // val_loss NAN when not evaluated
    long loss_tokens;
    double elapsed_s;
    double comm_s;             // seconds of this step spent in the ranks' collectives (0 alone)
} vet_step_info;

typedef void (*vet_step_fn)(const vet_step_info *info, void *ctx);

typedef enum {
    VET_TRAIN_DONE = 0,
    VET_TRAIN_EARLY_STOP = 1,
    VET_TRAIN_INTERRUPTED = 2,   // stop flag seen; a checkpoint was written
} vet_train_outcome;

typedef struct {
    vet_train_outcome outcome;
    long steps;
    double tokens, seconds;
    double first_loss, last_loss;
    double best_val;           // NAN without validation
    long best_step;
    long skipped_steps;
    char checkpoint[4096];     // the last checkpoint written ("" if none)
    int ranks;                 // processes trained with (1: alone)
    double comm_seconds;       // of seconds, those spent in the ranks' collectives
    char model_desc[256];      // "llama tiny: 4 layers, dim 128, ... (1.2 M params, 0.3 M trainable)"
} vet_train_result;

void vet_train_defaults(vet_train_opts *o);
// Runs training. Returns 0 with res filled, or -1 (err says what, e.g. a non-finite loss at
// step N, a tokenizer mismatch, a write error).
int vet_train_run(const vet_train_opts *o, vet_step_fn on_step, void *ctx, vet_train_result *res, vet_err *err);

#endif
