// loss_scale.h — fp16 dynamic loss scaling, as torch.cuda.amp.GradScaler with its defaults,
// for a backend whose gradients are fp16 (vet_train_backend.loss_scaling).
//
// fp16 ends at 65504 and loses small numbers early, so the backward is of loss * S: the
// gradients come out S times too large and small ones survive. They are unscaled (times
// float(1/S)) for the norm and in the clipping multiply. A step whose gradients overflowed
// (the loss finite, the norm not) is skipped as GradScaler + the HF Trainer skip it: no AdamW
// step, the schedule does not advance (scale_skips), S halves; the data is consumed. After
// 2000 steps in a row without overflow, S doubles.
//
// The state lives in vet_train_state (loss_scale, scale_good, scale_skips), so a checkpoint
// keeps it. Off, loss_scale is 0, both factors are 1 and nothing is skipped: the same
// arithmetic as a run without scaling, bit for bit.
#ifndef VET_LOSS_SCALE_H
#define VET_LOSS_SCALE_H

#include "base/err.h"
#include "io/checkpoint.h"

// At the start (or resume) of a run: on keeps a checkpoint's scale, or starts at init_scale
// (<= 0: 65536, GradScaler's default); off clears the three fields.
void vet_loss_scale_start(vet_train_state *st, int on, double init_scale);
// float(S): what the backward's loss is multiplied by (1 when off).
float vet_loss_scale_factor(const vet_train_state *st);
// float(1/S): what the gradients are multiplied by to unscale them (1 when off).
float vet_loss_scale_unscale(const vet_train_state *st);
// 1 when the step's gradients overflowed under scaling: the loss finite, the norm not.
int vet_loss_scale_overflowed(const vet_train_state *st, double loss, double grad_norm);
// After an overflow at step (0-based): S halves, the step counts as skipped. -1 (NONFINITE)
// when S is already below 2^-24: fp16 cannot hold these gradients at any scale.
int vet_loss_scale_back_off(vet_train_state *st, long step, vet_err *err);
// After a step taken: S doubles after 2000 in a row (GradScaler's growth_interval).
void vet_loss_scale_step_taken(vet_train_state *st);

#endif
