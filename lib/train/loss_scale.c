// loss_scale.c — see loss_scale.h.
#include "train/loss_scale.h"

#include <math.h>

#define DEFAULT_INIT_SCALE 65536.0  // 2^16
#define GROWTH_INTERVAL 2000
#define MIN_SCALE 0x1p-24

void vet_loss_scale_start(vet_train_state *st, int on, double init_scale) {
    if (!on) {
        st->loss_scale = 0, st->scale_good = 0, st->scale_skips = 0;
    } else if (!(st->loss_scale > 0)) {  // a checkpoint without a scale (older, or bf16 / fp32)
        st->loss_scale = init_scale > 0 ? init_scale : DEFAULT_INIT_SCALE;
        st->scale_good = 0;
    }
}

float vet_loss_scale_factor(const vet_train_state *st) { return st->loss_scale > 0 ? (float)st->loss_scale : 1.0f; }

float vet_loss_scale_unscale(const vet_train_state *st) {
    return st->loss_scale > 0 ? (float)(1.0 / st->loss_scale) : 1.0f;
}

int vet_loss_scale_overflowed(const vet_train_state *st, double loss, double grad_norm) {
    return st->loss_scale > 0 && isfinite(loss) && !isfinite(grad_norm);
}

int vet_loss_scale_back_off(vet_train_state *st, long step, vet_err *err) {
    if (st->loss_scale < MIN_SCALE)
        return vet_err_kindf(err, VET_E_NONFINITE, "step %ld: gradients not finite even at loss scale %g: fp16 "
                             "overflows in backward; use --bf16", step + 1, st->loss_scale);
    st->loss_scale *= 0.5;
    st->scale_good = 0;
    st->scale_skips++;
    st->skipped_steps++;
    return 0;
}

void vet_loss_scale_step_taken(vet_train_state *st) {
    if (st->loss_scale > 0 && ++st->scale_good >= GROWTH_INTERVAL) {
        st->loss_scale *= 2.0;
        st->scale_good = 0;
    }
}
