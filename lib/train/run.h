// run.h — one training run's state, shared by the trainer's files (trainer.c, setup.c,
// params.c, loop.c, resume.c, log.c, outputs.c). Not an API: programs use trainer.h.
#ifndef VET_TRAIN_RUN_H
#define VET_TRAIN_RUN_H

#include <stddef.h>
#include <stdio.h>

#include "io/checkpoint.h"
#include "model/model.h"
#include "train/backend.h"
#include "train/out_lock.h"
#include "train/packed_set.h"
#include "train/trainer.h"

// A parameter group (torch's): a contiguous range of trainable floats and whether AdamW's
// weight decay applies to it (not to norms and biases).
typedef struct {
    size_t off, n;
    int decay;
} train_group;

typedef struct {
    const vet_train_opts *o;
    void *ctx;                 // the caller's, for o->on_note
    vet_packed_set train, val;
    vet_model m;               // the host model: the master copy the output files come from
    char tokenizer_path[4096]; // shipped with a model written out ("" when none)
    // The trainable state on the host (backend.h says who computes on it).
    float *params;             // (n) m.lora_mem, or m.w_mem with --full
    size_t n;
    float *adam_m, *adam_v;    // (n) AdamW's moments
    float *best;               // (n) params at the best validation loss (with --val only)
    train_group *groups;
    int n_groups;
    // Data order and step counts.
    int *order;                // (train.n_rows) the current epoch's row order
    int order_epoch;           // which epoch order holds (-1: none yet)
    long micro_per_epoch, steps_per_epoch, total_steps;
    vet_train_backend be;
    FILE *log;                 // OUT/train.log.jsonl
    vet_out_lock lock;         // OUT/.vet-train.lock, held for the whole run
    int made_out;              // OUT did not exist before this run (removed again if left empty)
    char base_id[65], data_id[65];  // identity.c: what the run starts from
    // Data parallel (parallel.c): the ranks, and what they agreed after the last step.
    const vet_comm *comm;      // o->comm, or `alone`
    vet_comm alone;
    int stop_agreed;           // some rank saw a stop signal
} train_run;

// setup.c: the settings checked against the base's config.json before anything heavy is read
// (LoRA's limits); the packed rows (train, more --train files, val); then the model (loaded or
// made from a preset, tokenizer checked, LoRA added or loaded), every row checked against it.
int train_preflight(train_run *r, vet_err *err);
int train_load_data(train_run *r, vet_err *err);
int train_setup_model(train_run *r, vet_err *err);
// identity.c: r->base_id and r->data_id, from the model and rows as set up (before any step).
void train_identities(train_run *r);
// params.c: the trainable floats, their groups, AdamW's moments, the row order, step counts.
int train_setup_params(train_run *r, vet_err *err);
// params.c: the name of the trainable tensor that holds element idx, for messages.
void train_describe_param(const train_run *r, size_t idx, char *buf, size_t n);
// parallel.c: this rank's share of micro-batch `micro` of the current order: *first, the
// position in the order of its first row; returns how many rows (0: none, at an epoch's end).
int train_share(const train_run *r, long micro, int *first);
// parallel.c: the rows of one global micro-batch: batch_size x ranks.
int train_global_batch(const train_run *r);
// parallel.c: after a step's backward on every rank (rc: this rank's result, err its error):
// the ranks agree who failed (the first failing rank's error kind becomes every rank's) and
// whether to stop; then the loss and token count (sums[2]) and the gradients are summed over
// the ranks. *comm_s: the seconds it took. Alone: rc, nothing else.
int train_sync_step(train_run *r, long step, int rc, double sums[2], double *comm_s, vet_err *err);
// loop.c: the steps, from a fresh start or a checkpoint, to the output files.
int train_loop(train_run *r, vet_step_fn on_step, void *ctx, vet_train_result *res, vet_err *err);
// resume.c: st for a fresh run, or the checkpoint o->resume names (its state made the
// backend's); a checkpoint of other settings is refused.
int train_resume(train_run *r, vet_train_state *st, vet_err *err);
// resume.c: OUT/checkpoints/step-N from the backend's current state; older ones pruned.
int train_save_checkpoint(train_run *r, const vet_train_state *st, vet_train_result *res, vet_err *err);
// log.c: OUT/train.log.jsonl opened; on resume (resume_step >= 0) cut back to the lines of
// steps 1..resume_step, then appended to. One JSON line per step taken.
int train_log_open(train_run *r, long resume_step, vet_err *err);
void train_log_step(train_run *r, const vet_step_info *s, double loss_scale);
// outputs.c: the adapter (and merged model), or the model, from the best or last parameters.
int train_write_outputs(train_run *r, const vet_train_state *st, vet_err *err);

#endif
