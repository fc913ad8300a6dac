// checkpoint.h — everything a training run needs to continue exactly where it stopped.
//
// A checkpoint is a directory OUT/checkpoints/step-NNNNNNNN holding
//   state.json          step, epoch, best validation loss, patience count, run fingerprint
//   train.safetensors   "params" (the trainable floats), "adam_m", "adam_v", and "best" (the
//                       parameters at the best validation loss, when there is one)
// It is written into a hidden temporary directory, every file fsync'ed, then renamed into
// place and the parent fsync'ed: a crash at any moment leaves the previous checkpoint whole,
// and a half-written one is never taken for a checkpoint.
#ifndef VET_CHECKPOINT_H
#define VET_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct {
    long step;            // optimizer steps done
    double best_val;      // best validation loss so far (INFINITY when none)
    long best_step;
    int bad_evals;        // evaluations without improvement (early stopping)
    long skipped_steps;   // steps skipped as non-finite
    double tokens_seen;
    // fp16 dynamic loss scaling (0 / absent in other runs' and older checkpoints: defaults)
    double loss_scale;    // the current scale (0: none yet)
    long scale_good;      // consecutive steps without overflow since the last change
    long scale_skips;     // steps skipped for overflow: the schedule and AdamW did not advance
    char fingerprint[65]; // sha256 of the run's settings: resuming another run is refused
    char base_id[65];     // the base model's identity (its weights as loaded, and a starting adapter's)
    char data_id[65];     // the data's identity (the packed rows' content, training and validation)
} vet_train_state;

// Writes OUT/checkpoints/step-N. best may be NULL.
int vet_ckpt_save(const char *ckpt_root, const vet_train_state *st, const float *params,
                  const float *adam_m, const float *adam_v, const float *best, size_t n, vet_err *err);
// Reads a checkpoint directory; n must match. *has_best tells whether best was filled.
// state.json must hold every field vet_ckpt_save writes, each of its type and in its range
// (step >= 0, best_step from -1 to step, skipped steps at most step, finite numbers, 64 hex
// digits for the identities), and the tensors must be finite (adam_v, a second moment, also
// not negative): anything else is refused naming the field. Whether the step fits the run is
// the caller's check.
int vet_ckpt_load(const char *dir, vet_train_state *st, float *params, float *adam_m,
                  float *adam_v, float *best, int *has_best, size_t n, vet_err *err);
// Finds the newest complete checkpoint under ckpt_root (or accepts a checkpoint dir itself);
// writes its path into out. Returns 0, or -1 when there is none (VET_E_IO when path itself is not
// there).
int vet_ckpt_find(const char *path, char *out, size_t outn, vet_err *err);
// Keeps the newest `keep` checkpoints (keep <= 0: all) and removes stale temporaries.
int vet_ckpt_prune(const char *ckpt_root, int keep, vet_err *err);

// mkdir -p
int vet_mkdirs(const char *path, vet_err *err);

#endif
