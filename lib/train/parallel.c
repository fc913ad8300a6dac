// parallel.c — data-parallel training (trainer.h): which rows are this rank's, and what the
// ranks settle after every step's backward (run.h). Alone (one rank) every function here is
// the identity, so a run without mpirun computes what it always did.
#include <time.h>

#include "train/run.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int train_global_batch(const train_run *r) { return r->o->batch_size * r->comm->size; }

// A global micro-batch is rows [micro x G, (micro + 1) x G) of the order (G = batch_size x
// ranks; the epoch's last may be short); rank k's share the k-th batch_size of them.
int train_share(const train_run *r, long micro, int *first) {
    long bs = r->o->batch_size, start = micro * train_global_batch(r) + r->comm->rank * bs;
    long n = r->train.n_rows - start;
    *first = (int)start;
    return n <= 0 ? 0 : n < bs ? (int)n : (int)bs;
}

// The test hook VET_TRAIN_FAIL_AT=RANK:STEP: rc, or the failure this rank was told to have here.
static int test_hook(const train_run *r, long step, int rc, vet_err *err) {
    const vet_train_opts *o = r->o;
    if (rc == 0 && o->fail_step == step + 1 && o->fail_rank == r->comm->rank)
        rc = vet_errf(err, "step %ld: failing on purpose (the test hook VET_TRAIN_FAIL_AT=%d:%ld)", step + 1,
                      r->comm->rank, o->fail_step);
    return rc;
}

// The step's status on every rank: (1 + error kind) << 1 when this rank failed, | 1 when it
// saw a stop signal. The first failing rank's kind becomes every rank's exit status.
static int agree(train_run *r, long step, int rc, vet_err *err) {
    const vet_train_opts *o = r->o;
    const vet_comm *c = r->comm;
    rc = test_hook(r, step, rc, err);
    int mine = (rc < 0 ? (1 + (int)err->kind) << 1 : 0) | (o->stop && *o->stop), all[c->size];
    vet_err own = *err;
    if (c->allgather_int(c->ctx, mine, all, err) < 0) return -1;
    r->stop_agreed = 0;
    for (int k = 0; k < c->size; k++) r->stop_agreed |= all[k] & 1;
    for (int k = 0; k < c->size; k++) {
        if (!(all[k] >> 1)) continue;
        if (k == c->rank) {
            *err = own;
            return -1;
        }
        return vet_err_kindf(err, (vet_err_kind)((all[k] >> 1) - 1), "step %ld: rank %d of %d failed (its message "
                             "says why): every rank stops", step + 1, k, c->size);
    }
    return 0;
}

int train_sync_step(train_run *r, long step, int rc, double sums[2], double *comm_s, vet_err *err) {
    const vet_comm *c = r->comm;
    *comm_s = 0;
    if (c->size == 1) return test_hook(r, step, rc, err);
    double t0 = now_s();
    if (agree(r, step, rc, err) < 0) return -1;
    if (c->allreduce_f64(c->ctx, sums, 2, err) < 0) return -1;
    if (r->be.allreduce_grads(r->be.ctx, c, err) < 0) return -1;
    *comm_s = now_s() - t0;
    return 0;
}
