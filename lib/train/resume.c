// resume.c — checkpoints (io/checkpoint.h's files) written from a run and read back into
// one, so that a stopped run continues exactly where it was (see run.h).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/sha256.h"
#include "train/run.h"

// The run's settings as a hash: a checkpoint from other settings is refused on resume.
static void fingerprint(const train_run *r, char hex[65]) {
    const vet_train_opts *o = r->o;
    char s[2048];
    snprintf(s, sizeof s,
             "full=%d r=%d alpha=%.9g drop=%.9g targets=%u rslora=%d epochs=%d bs=%d ga=%d lr=%.9g wd=%.9g "
             "warm=%.9g sched=%d clip=%.9g seed=%llu max_steps=%ld rows=%d tokens=%ld n=%zu adapter=%s",
             o->full, o->lora_r, o->lora_alpha, o->lora_dropout, o->lora_targets, o->rslora, o->epochs,
             o->batch_size, o->grad_accum, o->lr, o->weight_decay, o->warmup_ratio, (int)o->scheduler,
             o->max_grad_norm, (unsigned long long)o->seed, o->max_steps, r->train.n_rows, r->train.n_tokens, r->n,
             o->adapter_in ? o->adapter_in : "");
    // Each only when set, so that older checkpoints keep their fingerprint.
    if (o->label_smoothing != 0.0) {
        size_t len = strlen(s);
        snprintf(s + len, sizeof s - len, " ls=%.9g", o->label_smoothing);
    }
    if (o->resid_dropout != 0.0) {
        size_t len = strlen(s);
        snprintf(s + len, sizeof s - len, " rd=%.9g", o->resid_dropout);
    }
    if (o->token_dropout != 0.0) {
        size_t len = strlen(s);
        snprintf(s + len, sizeof s - len, " td=%.9g", o->token_dropout);
    }
    vet_sha256_hex(s, strlen(s), hex);
}

int train_resume(train_run *r, vet_train_state *st, vet_err *err) {
    const vet_train_opts *o = r->o;
    *st = (vet_train_state){.best_val = INFINITY, .best_step = -1};
    fingerprint(r, st->fingerprint);
    if (!o->resume) return 0;
    char dir[4096], fp[65];
    int has_best = 0;
    memcpy(fp, st->fingerprint, sizeof fp);
    if (vet_ckpt_find(o->resume, dir, sizeof dir, err) < 0) return -1;
    if (vet_ckpt_load(dir, st, r->params, r->adam_m, r->adam_v, r->best, &has_best, r->n, err) < 0) return -1;
    if (strcmp(fp, st->fingerprint) != 0)
        return vet_errf(err, "%s: checkpoint of a run with other settings or data: resume with the same "
                             "flags and files, or start afresh", dir);
    if (!has_best) st->best_val = INFINITY;
    return r->be.push_state(r->be.ctx, err);
}

int train_save_checkpoint(train_run *r, const vet_train_state *st, vet_train_result *res, vet_err *err) {
    char root[4200];
    snprintf(root, sizeof root, "%s/checkpoints", r->o->out_dir);
    if (r->be.pull_state(r->be.ctx, 1, err) < 0) return -1;
    if (vet_ckpt_save(root, st, r->params, r->adam_m, r->adam_v, isfinite(st->best_val) ? r->best : NULL, r->n,
                      err) < 0)
        return -1;
    snprintf(res->checkpoint, sizeof res->checkpoint, "%s/step-%08ld", root, st->step);
    return vet_ckpt_prune(root, r->o->save_limit, err);
}
