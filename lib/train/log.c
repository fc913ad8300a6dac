// log.c — OUT/train.log.jsonl: one JSON object per optimizer step taken (see run.h).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train/run.h"

int train_log_open(train_run *r, vet_err *err) {
    char path[4200];
    if (vet_mkdirs(r->o->out_dir, err) < 0) return -1;
    snprintf(path, sizeof path, "%s/train.log.jsonl", r->o->out_dir);
    r->log = fopen(path, r->o->resume ? "a" : "w");  // a resumed run continues its log
    if (!r->log) return vet_err_io(err, "%s: cannot create: %s", path, strerror(errno));
    return 0;
}

// loss_scale: fp16's loss scale the step ran at (0: not fp16, and no field).
void train_log_step(train_run *r, const vet_step_info *s, double loss_scale) {
    if (!r->log) return;
    fprintf(r->log,
            "{\"step\":%ld,\"epoch\":%.4f,\"loss\":%.7g,\"lr\":%.7g,\"grad_norm\":%.7g,\"loss_tokens\":%ld,"
            "\"tokens_per_s\":%.1f,\"elapsed_s\":%.3f",
            s->step, s->epoch, s->loss, s->lr, s->grad_norm, s->loss_tokens, s->tokens_per_s, s->elapsed_s);
    if (!isnan(s->val_loss)) fprintf(r->log, ",\"val_loss\":%.7g", s->val_loss);
    if (loss_scale > 0) fprintf(r->log, ",\"loss_scale\":%.7g", loss_scale);
    fputs("}\n", r->log);
    fflush(r->log);
}
