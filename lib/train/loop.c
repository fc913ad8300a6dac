// loop.c — the training loop (trainer.h says what a step is). It reads like llm.c's
// train_gpt2.c: an optimizer step is the forward and backward of its micro-batches, the
// gradient norm, clipping and the AdamW step; then validation, the log line, checkpoints.
// No device appears here: the backend (train/backend.h) computes, train/loss_scale.h scales
// fp16 losses.
#include <math.h>
#include <string.h>
#include <time.h>

#include "base/rng.h"
#include "train/loss_scale.h"
#include "train/run.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ---------------------------------------------------------------------------------------
// Data

// The row order of epoch `epoch`: a Fisher-Yates shuffle drawn from (seed, epoch).
static void shuffle_epoch(train_run *r, int epoch) {
    if (r->order_epoch == epoch) return;
    int n = r->train.n_rows;
    for (int i = 0; i < n; i++) r->order[i] = i;
    vet_rng g;
    vet_rng_seed(&g, vet_rng_hash(r->o->seed, 0xE90C0000ULL + (uint64_t)epoch));
    for (int i = n - 1; i > 0; i--) {
        int j = (int)vet_rng_below(&g, (uint64_t)i + 1);
        int t = r->order[i];
        r->order[i] = r->order[j];
        r->order[j] = t;
    }
    r->order_epoch = epoch;
}

// This rank's share of micro-batch `micro` of the current epoch's order (parallel.c; alone,
// the whole micro-batch; the epoch's last may hold fewer rows), n > 0 of them, token dropout
// drawn from seed; *real_tokens: the tokens of its rows, padding not counted. Every rank builds
// the whole (global) micro-batch, draws its token dropout and cuts its rows out of it: the share
// is padded to the global batch's longest row and its row0 is its place in the global batch, so
// its token dropout and its dropout masks are those of one process with the global batch size
// (docs/scale.md, "Dropout"). Alone the share is the whole, as it always was.
static int micro_batch(train_run *r, long micro, uint64_t seed, vet_batch *b, long *real_tokens, vet_err *err) {
    int first, n = train_share(r, micro, &first), g0 = (int)(micro * train_global_batch(r));
    int gn = r->train.n_rows - g0 < train_global_batch(r) ? r->train.n_rows - g0 : train_global_batch(r);
    vet_row rows[gn];
    *real_tokens = 0;
    for (int i = 0; i < gn; i++) {
        rows[i] = r->train.rows[r->order[g0 + i]];
        if (i >= first - g0 && i < first - g0 + n) *real_tokens += rows[i].n;
    }
    vet_batch whole;
    if (vet_batch_from_rows(&whole, rows, gn, r->m.cfg.vocab_size, err) < 0) return -1;
    vet_batch_drop_tokens(&whole, r->o->token_dropout, r->train.unk_id, vet_rng_hash(seed, 0x70CE));
    if (gn == n) {  // the share is the whole (one process, or the share is everything left)
        *b = whole;
        return 0;
    }
    int rc = vet_batch_slice(b, &whole, first - g0, n, err);
    vet_batch_free(&whole);
    return rc;
}

// The micro-batches [first, last) of the step's epoch that make one optimizer step (each
// batch_size rows on every rank: parallel.c).
typedef struct {
    long first, last;
    long targets;              // target tokens in all of them: the step's loss is their mean
} step_span;

static step_span span_of(train_run *r, long step) {
    const vet_train_opts *o = r->o;
    step_span s = {.first = (step % r->steps_per_epoch) * o->grad_accum};
    s.last = s.first + o->grad_accum < r->micro_per_epoch ? s.first + o->grad_accum : r->micro_per_epoch;
    shuffle_epoch(r, (int)(step / r->steps_per_epoch));
    int gbs = train_global_batch(r);  // every rank's rows: the loss is the mean over all ranks'
    for (long mi = s.first; mi < s.last; mi++)
        for (int i = (int)(mi * gbs); i < (int)((mi + 1) * gbs) && i < r->train.n_rows; i++) {
            const vet_row *row = &r->train.rows[r->order[i]];
            for (int k = 0; k < row->n; k++) s.targets += row->targets[k] >= 0;
        }
    return s;
}

// ---------------------------------------------------------------------------------------
// One optimizer step

// Forward and backward of each micro-batch of the step (token dropout and the dropout masks
// drawn from (seed, step, micro-batch), whatever the number of ranks); the backend accumulates the gradients. The backward
// is of loss_sum / targets, times fp16's loss scale: the gradient of the step's mean loss.
static int forward_backward(train_run *r, long step, const step_span *s, float loss_scale, double *loss_sum,
                            long *tokens, vet_err *err) {
    const vet_train_opts *o = r->o;
    float grad_scale = s->targets > 0 ? loss_scale * (1.0f / (float)s->targets) : 0.0f;
    *loss_sum = 0, *tokens = 0;
    for (long mi = s->first; mi < s->last; mi++) {
        vet_batch b;
        long real;
        int first;
        if (train_share(r, mi, &first) == 0) continue;  // nothing of an epoch's short last one here
        // One seed for every rank: a share's masks are keyed by its rows' global places (row0).
        uint64_t seed = vet_rng_hash(vet_rng_hash(o->seed, (uint64_t)step), (uint64_t)mi);
        if (micro_batch(r, mi, seed, &b, &real, err) < 0) return vet_err_prefix(err, "training rows");
        double ls;
        int rc = r->be.forward_backward(r->be.ctx, &b, seed, grad_scale, &ls, err);
        vet_batch_free(&b);
        if (rc < 0) return -1;
        *loss_sum += ls;
        *tokens += real;
    }
    return 0;
}

// A step whose loss or gradient norm is not finite. An fp16 overflow is skipped (the scale
// backs off); anything else is an error naming the culprit, or with --skip-nonfinite skipped.
// Returns 0 (skip the step) or -1.
static int nonfinite_step(train_run *r, vet_train_state *st, long step, double loss, double norm, vet_err *err) {
    if (vet_loss_scale_overflowed(st, loss, norm)) {
        double was = st->loss_scale;
        if (vet_loss_scale_back_off(st, step, err) < 0) return -1;
        vet_train_notef(r->o->on_note, r->ctx, "step %ld: gradients overflowed in fp16 at loss scale %.9g: step "
                        "skipped, loss scale %.9g", step + 1, was, st->loss_scale);
        return 0;
    }
    char what[256] = "the loss";
    size_t bad;
    if (isfinite(loss) && r->be.find_nonfinite_grad(r->be.ctx, &bad)) {
        char name[160];
        train_describe_param(r, bad, name, sizeof name);
        snprintf(what, sizeof what, "the gradient of %s", name);
    }
    if (!r->o->skip_nonfinite)
        return vet_err_kindf(err, VET_E_NONFINITE, "step %ld: %s is not finite (loss %g): lower --lr, check the "
                             "data, or pass --skip-nonfinite", step + 1, what, loss);
    st->skipped_steps++;
    return 0;
}

// As torch.nn.utils.clip_grad_norm_: the gradients' factor max/(norm + 1e-6) when that is
// below 1. fp16's unscale rides in the same multiply (GradScaler.unscale_ then clipping), and
// the multiply in the AdamW step (vet_adamw's grad_scale).
static float clip_scale(const train_run *r, double norm, float unscale) {
    double max = r->o->max_grad_norm;
    double coef = max > 0 ? max / (norm + 1e-6) : 1.0;
    return coef < 1.0 ? unscale * (float)coef : unscale;
}

// AdamW over each parameter group (torch.optim.AdamW's betas and eps; no decay on norms and
// biases) on the gradients times grad_scale. opt_step counts from 0.
static int adamw_step(train_run *r, double lr, long opt_step, float grad_scale, vet_err *err) {
    for (int i = 0; i < r->n_groups; i++) {
        const train_group *g = &r->groups[i];
        vet_adamw hp = {.lr = (float)lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                        .weight_decay = g->decay ? (float)r->o->weight_decay : 0.0f, .step = (int)(opt_step + 1),
                        .grad_scale = grad_scale};
        if (r->be.adamw_step(r->be.ctx, g->off, g->n, &hp, err) < 0) return -1;
    }
    return 0;
}

// Optimizer step `step` (0-based). Returns 1 when taken (info's step, loss, lr, norm and
// targets filled; *tokens: the real tokens it trained on, every rank's), 0 when skipped, -1 on
// error. With several ranks, the gradients are summed over them (parallel.c) before the norm.
static int train_step(train_run *r, vet_train_state *st, const vet_schedule *sched, long step, vet_step_info *info,
                      long *tokens, vet_err *err) {
    vet_train_backend *be = &r->be;
    step_span span = span_of(r, step);
    double loss_sum, norm, comm_s;
    int rc = forward_backward(r, step, &span, vet_loss_scale_factor(st), &loss_sum, tokens, err);
    double sums[2] = {loss_sum, (double)*tokens};
    if (train_sync_step(r, step, rc, sums, &comm_s, err) < 0) return -1;
    loss_sum = sums[0], *tokens = (long)sums[1];
    double loss = span.targets ? loss_sum / span.targets : 0;
    float unscale = vet_loss_scale_unscale(st);
    if (be->grad_norm(be->ctx, unscale, &norm, err) < 0) return -1;
    if (!isfinite(loss) || !isfinite(norm)) {  // skipped, or an error: no AdamW step either way
        if (nonfinite_step(r, st, step, loss, norm, err) < 0) return -1;
        return be->zero_grads(be->ctx, err) < 0 ? -1 : 0;
    }
    long opt_step = step - st->scale_skips;  // steps skipped for fp16 overflow advance neither
    double lr = vet_schedule_lr(sched, opt_step);
    if (adamw_step(r, lr, opt_step, clip_scale(r, norm, unscale), err) < 0 || be->zero_grads(be->ctx, err) < 0)
        return -1;
    *info = (vet_step_info){.step = step + 1, .total_steps = r->total_steps,
                            .epoch = (double)(step + 1) / r->steps_per_epoch, .loss = loss, .lr = lr,
                            .grad_norm = norm, .loss_tokens = span.targets, .val_loss = NAN, .comm_s = comm_s};
    return 1;
}

// ---------------------------------------------------------------------------------------
// After a step

// The mean loss over the validation rows, in batches of batch_size; with several ranks, rank k
// takes batches k, k + N, ... and the sums are added up over the ranks.
static int validation_loss(train_run *r, double *out, vet_err *err) {
    double loss_sum = 0;
    long targets = 0;
    int bs = r->o->batch_size, ranks = r->comm->size;
    for (int first = r->comm->rank * bs; first < r->val.n_rows; first += bs * ranks) {
        int n = r->val.n_rows - first < bs ? r->val.n_rows - first : bs;
        vet_batch b;
        if (vet_batch_from_rows(&b, r->val.rows + first, n, r->m.cfg.vocab_size, err) < 0)
            return vet_err_prefix(err, "%s", r->o->val_path);
        double ls;
        int nt;
        int rc = r->be.forward(r->be.ctx, &b, &ls, &nt, err);
        vet_batch_free(&b);
        if (rc < 0) return -1;
        loss_sum += ls;
        targets += nt;
    }
    double sums[2] = {loss_sum, (double)targets};
    if (ranks > 1 && r->comm->allreduce_f64(r->comm->ctx, sums, 2, err) < 0) return -1;
    loss_sum = sums[0], targets = (long)sums[1];
    *out = targets ? loss_sum / targets : NAN;
    return 0;
}

// With --val, every eval_every steps and at the last: the validation loss into info; a better
// one keeps the parameters as the best, `patience` evaluations without one set *early.
static int evaluate(train_run *r, vet_train_state *st, vet_step_info *info, int *early, vet_err *err) {
    const vet_train_opts *o = r->o;
    int due = (o->eval_every > 0 && info->step % o->eval_every == 0) || info->step == r->total_steps;
    if (!o->val_path || !due) return 0;
    if (validation_loss(r, &info->val_loss, err) < 0) return -1;
    if (info->val_loss < st->best_val) {
        st->best_val = info->val_loss;
        st->best_step = info->step;
        st->bad_evals = 0;
        if (r->be.pull_state(r->be.ctx, 0, err) < 0) return -1;
        memcpy(r->best, r->params, r->n * sizeof(float));
    } else if (o->patience > 0 && ++st->bad_evals >= o->patience) {
        *early = 1;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------
// The loop

int train_loop(train_run *r, vet_step_fn on_step, void *ctx, vet_train_result *res, vet_err *err) {
    const vet_train_opts *o = r->o;
    vet_train_state st;
    if (train_resume(r, &st, err) < 0) return -1;
    vet_loss_scale_start(&st, r->be.loss_scaling, o->fp16_init_scale);
    if (train_log_open(r, o->resume ? st.step : -1, err) < 0) return -1;
    vet_schedule sched;
    vet_schedule_init(&sched, o->scheduler, o->lr, o->warmup_ratio, r->total_steps);
    double t_start = now_s();
    res->first_loss = NAN;
    // A checkpoint of the step that used up the patience ends the run at once, with the best
    // parameters, as the uninterrupted run ended there.
    if (o->patience > 0 && st.bad_evals >= o->patience) res->outcome = VET_TRAIN_EARLY_STOP;
    for (long step = st.step; step < r->total_steps && res->outcome == VET_TRAIN_DONE; step++) {
        double t0 = now_s(), loss_scale = st.loss_scale;  // the scale this step runs at (0: none)
        vet_step_info info;
        long tokens;
        int taken = train_step(r, &st, &sched, step, &info, &tokens, err);
        if (taken < 0) return -1;
        st.step = step + 1;
        if (!taken) continue;
        st.tokens_seen += (double)tokens;
        vet_loss_scale_step_taken(&st);
        res->comm_seconds += info.comm_s;
        if (isnan(res->first_loss)) res->first_loss = info.loss;
        res->last_loss = info.loss;
        int early = 0, last = st.step == r->total_steps;
        if (evaluate(r, &st, &info, &early, err) < 0) return -1;
        double t1 = now_s();
        info.tokens_per_s = tokens / (t1 - t0 > 1e-9 ? t1 - t0 : 1e-9);
        info.elapsed_s = t1 - t_start;
        train_log_step(r, &info, loss_scale);
        if (on_step) on_step(&info, ctx);
        // SIGINT / SIGTERM: a checkpoint, then stop; with several ranks, when any saw it (each
        // may see the signal at another step: they agreed on this one in parallel.c).
        // The step that stops early is a last step too: the run ends with its outputs written,
        // signal or not (a checkpoint there would be resumed into more steps).
        int stop = r->comm->size > 1 ? r->stop_agreed : o->stop && *o->stop;
        last |= early;
        if (!last && ((o->save_every > 0 && st.step % o->save_every == 0) || stop))
            if (train_save_checkpoint(r, &st, res, err) < 0) return -1;
        if (stop && !last) res->outcome = VET_TRAIN_INTERRUPTED;
        else if (early) res->outcome = VET_TRAIN_EARLY_STOP;
        if (res->outcome != VET_TRAIN_DONE) break;
    }
    res->steps = st.step;
    res->tokens = st.tokens_seen;
    res->seconds = now_s() - t_start;
    res->best_val = isfinite(st.best_val) ? st.best_val : NAN;
    res->best_step = st.best_step;
    res->skipped_steps = st.skipped_steps;
    if (res->outcome == VET_TRAIN_INTERRUPTED) return 0;
    return train_write_outputs(r, &st, err);
}
