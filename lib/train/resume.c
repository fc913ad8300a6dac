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
             train_global_batch(r), o->grad_accum, o->lr, o->weight_decay, o->warmup_ratio, (int)o->scheduler,
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
    // When the validation loss is taken and how many worse ones end the run decide which
    // parameters are written (the best) and when the run stops.
    if (o->val_path && (o->eval_every > 0 || o->patience > 0)) {
        size_t len = strlen(s);
        snprintf(s + len, sizeof s - len, " ee=%ld pat=%ld", (long)o->eval_every, (long)o->patience);
    }
    vet_sha256_hex(s, strlen(s), hex);
}

// The checkpoint against this run: the same base and data (identity.c), the same settings
// (the fingerprint), and a step inside the run.
static int check_checkpoint(const train_run *r, const vet_train_state *st, const char *fp, const char *dir,
                            vet_err *err) {
    if (strcmp(st->base_id, r->base_id) != 0)
        return vet_errf(err, "%s: checkpoint of a run on another base model (its weights hash %.12s…, this "
                             "run's %.12s…): resume with the --base (or --init and --seed, or --adapter) it "
                             "started from, or start afresh", dir, st->base_id, r->base_id);
    if (strcmp(st->data_id, r->data_id) != 0)
        return vet_errf(err, "%s: checkpoint of a run on other data (its rows hash %.12s…, this run's %.12s…): "
                             "resume with the same --train and --val files, or start afresh", dir, st->data_id,
                        r->data_id);
    if (strcmp(fp, st->fingerprint) != 0)
        return vet_errf(err, "%s: checkpoint of a run with other settings or data: resume with the same "
                             "flags and files, or start afresh", dir);
    if (st->step > r->total_steps)
        return vet_errf(err, "%s/state.json: \"step\" %ld is past the end of this run (%ld steps): the checkpoint "
                             "is damaged or was altered", dir, st->step, r->total_steps);
    return 0;
}

int train_resume(train_run *r, vet_train_state *st, vet_err *err) {
    const vet_train_opts *o = r->o;
    *st = (vet_train_state){.best_val = INFINITY, .best_step = -1};
    fingerprint(r, st->fingerprint);
    memcpy(st->base_id, r->base_id, sizeof st->base_id);
    memcpy(st->data_id, r->data_id, sizeof st->data_id);
    if (!o->resume) return 0;
    char dir[4096], fp[65];
    int has_best = 0;
    memcpy(fp, st->fingerprint, sizeof fp);
    if (vet_ckpt_find(o->resume, dir, sizeof dir, err) < 0) return -1;
    if (vet_ckpt_load(dir, st, r->params, r->adam_m, r->adam_v, r->best, &has_best, r->n, err) < 0) return -1;
    if (check_checkpoint(r, st, fp, dir, err) < 0) return -1;
    if (!has_best) st->best_val = INFINITY;
    return r->be.push_state(r->be.ctx, err);
}

int train_save_checkpoint(train_run *r, const vet_train_state *st, vet_train_result *res, vet_err *err) {
    if (r->comm->rank != 0) return 0;  // rank 0 alone writes OUT
    char root[4200];
    snprintf(root, sizeof root, "%s/checkpoints", r->o->out_dir);
    if (r->be.pull_state(r->be.ctx, 1, err) < 0) return -1;
    if (vet_ckpt_save(root, st, r->params, r->adam_m, r->adam_v, isfinite(st->best_val) ? r->best : NULL, r->n,
                      err) < 0)
        return -1;
    snprintf(res->checkpoint, sizeof res->checkpoint, "%s/step-%08ld", root, st->step);
    return vet_ckpt_prune(root, r->o->save_limit, err);
}
