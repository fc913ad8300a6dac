// trainer.c — vet_train_run (see trainer.h): the run's phases in order. The device comes
// first, so a wrong one fails before anything is read; then the data, the model, the
// trainable state, the model handed to the backend, and the loop (loop.c).
#include "train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/input_file.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "model/adapter.h"
#include "model/lora.h"
#include "model/ops.h"
#include "train/run.h"

void vet_train_defaults(vet_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->lora_r = 16;
    o->lora_alpha = 32;
    o->lora_dropout = 0.1f;
    o->lora_targets = VET_LORA_Q | VET_LORA_K | VET_LORA_V | VET_LORA_O;
    o->epochs = 3;
    o->batch_size = 4;
    o->grad_accum = 4;
    o->lr = 2e-4;
    o->weight_decay = 0.01;
    o->warmup_ratio = 0.03;
    o->max_grad_norm = 1.0;
    o->scheduler = VET_SCHED_COSINE;
    o->seed = 42;
    o->log_every = 10;
    o->save_limit = 2;
}

// The host model and the trainable state, handed to the backend: room for batch_size rows of
// the longest row, training or validation.
static int load_backend(train_run *r, vet_err *err) {
    vet_train_setup s = {
        .m = &r->m, .mode = r->o->full ? VET_TRAIN_FULL : VET_TRAIN_LORA,
        .params = r->params, .adam_m = r->adam_m, .adam_v = r->adam_v, .n = r->n,
        .batch_size = r->o->batch_size,  // this rank's rows of a micro-batch
        .max_len = r->train.max_len > r->val.max_len ? r->train.max_len : r->val.max_len,
        .max_rows = r->train.n_rows > r->val.n_rows ? r->train.n_rows : r->val.n_rows,
    };
    return r->be.load(r->be.ctx, &s, err);
}

// "llama: 4 layers, dim 128, 4 heads (2 kv), vocab 512; 1.20 M params, 0.031 M trainable"
static void describe_model(const train_run *r, char *buf, size_t n) {
    const vet_config *c = &r->m.cfg;
    snprintf(buf, n, "%s: %d layers, dim %d, %d heads (%d kv), vocab %d; %.2f M params, %.3f M trainable", c->arch,
             c->n_layers, c->dim, c->n_heads, c->n_kv_heads, c->vocab_size, vet_config_n_params(c) / 1e6,
             r->n / 1e6);
}

// Settings that cannot work together, refused before anything is read or written (usage
// errors: vet-train exits 2).
// The files of a run, before any is read: --out must be none of the input folders (the run would
// write its model or adapter over the one it starts from), and no rows file may be given twice
// (its rows would count double) or serve as both training and validation rows.
static int check_files(const vet_train_opts *o, vet_err *err) {
    if (vet_adapter_refuse_as_model("--base", o->base_dir, err)) return -1;
    if (vet_same_dir(o->out_dir, o->base_dir) || vet_same_dir(o->out_dir, o->adapter_in))
        return vet_err_kindf(err, VET_E_USAGE, "--out %s is the %s folder this run starts from: writing it would "
                             "destroy the input (choose another --out)", o->out_dir,
                             vet_same_dir(o->out_dir, o->base_dir) ? "--base" : "--adapter");
    // (stdin is no file to compare: base/input_file refuses it twice)
    for (int i = -1; i < o->n_train_more; i++) {
        const char *a = i < 0 ? o->train_path : o->train_more[i];
        if (!a || strcmp(a, "-") == 0) continue;
        if (o->val_path && strcmp(o->val_path, "-") != 0 && vet_same_file(o->val_path, a))
            return vet_err_kindf(err, VET_E_USAGE, "--val %s is a --train file: a validation loss on the training rows "
                                 "measures nothing (give held-out rows, e.g. vet-pack's val split)", o->val_path);
        for (int k = i + 1; k < o->n_train_more; k++)
            if (strcmp(o->train_more[k], "-") != 0 && vet_same_file(o->train_more[k], a))
                return vet_err_kindf(err, VET_E_USAGE, "--train %s is given twice: its rows would count double (to "
                                     "see them more often, raise --epochs)", o->train_more[k]);
    }
    return 0;
}

static int check_opts(const vet_train_opts *o, vet_err *err) {
    if ((o->base_dir != NULL) == (o->init != NULL))
        return vet_err_kindf(err, VET_E_USAGE, "give exactly one of --base and --init");
    if (o->batch_size < 1 || o->grad_accum < 1 || o->epochs < 1)
        return vet_err_kindf(err, VET_E_USAGE, "--batch-size, --grad-accum and --epochs must be at least 1");
    if (o->comm && o->comm->size > 1 && (long)o->batch_size * o->comm->size > 65536)
        return vet_err_kindf(err, VET_E_USAGE, "--batch-size %d on %d ranks: a global batch over 65536 rows",
                             o->batch_size, o->comm->size);
    if (o->init && !o->tokenizer)
        return vet_err_kindf(err, VET_E_USAGE, "--init %s needs --tokenizer FILE: the new model is written with "
                             "the tokenizer its data was made with, and without one no program could use it", o->init);
    if (!o->val_path && (o->eval_every > 0 || o->patience > 0))
        return vet_err_kindf(err, VET_E_USAGE, "%s without --val: it acts on the validation loss; give --val FILE "
                             "or drop it", o->eval_every > 0 ? "--eval-every" : "--patience");
    return check_files(o, err);
}

// A run without --resume into an OUT that holds an earlier run's checkpoints: the new run's
// pruning would keep the old ones (the highest steps) and remove its own, even the one an
// interrupt has just named, and --resume would then find the old run's. Refused (exit 2)
// rather than deleting what may be hours of another run.
static int refuse_stale_checkpoints(const vet_train_opts *o, vet_err *err) {
    if (o->resume) return 0;
    char root[4200], found[4400];
    snprintf(root, sizeof root, "%s/checkpoints", o->out_dir);
    vet_err ignored;
    if (vet_ckpt_find(root, found, sizeof found, &ignored) < 0) return 0;
    return vet_err_kindf(err, VET_E_USAGE, "%s holds the checkpoints of an earlier run (%s): continue it with --resume "
                         "%s, or remove %s (or choose another --out) to start afresh", o->out_dir, found, o->out_dir,
                         root);
}

// OUT, created if absent, and its lock (train/out_lock.h): taken before anything is read, so a
// second run into the same OUT stops at once instead of after loading a model.
static int claim_out(train_run *r, vet_err *err) {
    struct stat st;
    r->made_out = stat(r->o->out_dir, &st) != 0;
    if (!r->made_out && !S_ISDIR(st.st_mode))
        return vet_err_io(err, "%s: exists and is not a directory (--out names the output directory)", r->o->out_dir);
    if (vet_mkdirs(r->o->out_dir, err) < 0) return -1;
    if (vet_out_lock_take(&r->lock, r->o->out_dir, err) < 0) return -1;
    return refuse_stale_checkpoints(r->o, err);
}

static void run_free(train_run *r) {
    if (r->be.free) r->be.free(r->be.ctx);
    vet_packed_free(&r->train);
    if (r->val.rows) vet_packed_free(&r->val);
    vet_model_free(&r->m);
    free(r->adam_m);
    free(r->adam_v);
    free(r->best);
    free(r->groups);
    free(r->order);
    if (r->log) fclose(r->log);
    vet_out_lock_release(&r->lock);
}

int vet_train_run(const vet_train_opts *o, vet_step_fn on_step, void *ctx, vet_train_result *res, vet_err *err) {
    memset(res, 0, sizeof *res);
    if (check_opts(o, err) < 0) return -1;
    vet_set_threads(o->threads);
    train_run r = {.o = o, .ctx = ctx};
    vet_comm_single(&r.alone);
    r.comm = o->comm ? o->comm : &r.alone;
    res->ranks = r.comm->size;
    vet_train_backend_fn backend_new = o->backend_new ? o->backend_new : vet_cpu_train_backend;
    int rc = backend_new(o, o->on_note, ctx, &r.be, err);
    if (rc == 0 && r.comm->size > 1 && !r.be.allreduce_grads)
        rc = vet_err_kindf(err, VET_E_USAGE, "the %s backend cannot train under mpirun (%d ranks): run one process",
                           r.be.name, r.comm->size);
    if (rc == 0) rc = train_preflight(&r, err);
    if (rc == 0 && r.comm->rank == 0) rc = claim_out(&r, err);  // rank 0 alone writes OUT
    if (rc == 0) rc = train_load_data(&r, err);
    if (rc == 0) rc = train_setup_model(&r, err);
    if (rc == 0) train_identities(&r);
    if (rc == 0) rc = train_setup_params(&r, err);
    if (rc == 0) rc = load_backend(&r, err);
    if (rc == 0) {
        describe_model(&r, res->model_desc, sizeof res->model_desc);
        rc = train_loop(&r, on_step, ctx, res, err);
    }
    run_free(&r);
    if (rc < 0 && r.made_out) rmdir(o->out_dir);  // only when the failed run left it empty
    return rc;
}
