// checkpoint.c — see checkpoint.h.
#include "io/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/json_file.h"
#include "io/safetensors.h"

int vet_mkdirs(const char *path, vet_err *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return vet_errf(err, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return vet_err_io(err, "%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return vet_err_io(err, "%s: cannot create: %s", buf, strerror(errno));
    return 0;
}

static int fsync_path(const char *path, vet_err *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return vet_err_io(err, "%s: cannot open to sync: %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc != 0 && errno != EINVAL) return vet_err_io(err, "%s: fsync failed: %s", path, strerror(errno));
    return 0;
}

static int remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) return unlink(path);
    struct dirent *e;
    char sub[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        remove_tree(sub);
    }
    closedir(d);
    return rmdir(path);
}

static int write_state(const char *path, const vet_train_state *st, vet_err *err) {
    json_t *o = json_object();
    json_object_set_new(o, "step", json_integer(st->step));
    json_object_set_new(o, "best_val", isfinite(st->best_val) ? json_real(st->best_val) : json_null());
    json_object_set_new(o, "best_step", json_integer(st->best_step));
    json_object_set_new(o, "bad_evals", json_integer(st->bad_evals));
    json_object_set_new(o, "skipped_steps", json_integer(st->skipped_steps));
    json_object_set_new(o, "tokens_seen", json_real(st->tokens_seen));
    if (st->loss_scale > 0) {  // fp16 runs only: other checkpoints stay as they were
        json_object_set_new(o, "loss_scale", json_real(st->loss_scale));
        json_object_set_new(o, "loss_scale_good_steps", json_integer(st->scale_good));
        json_object_set_new(o, "loss_scale_skipped_steps", json_integer(st->scale_skips));
    }
    json_object_set_new(o, "fingerprint", json_string(st->fingerprint));
    json_object_set_new(o, "base", json_string(st->base_id));
    json_object_set_new(o, "data", json_string(st->data_id));
    FILE *f = fopen(path, "w");
    if (!f) { json_decref(o); return vet_err_io(err, "%s: cannot create: %s", path, strerror(errno)); }
    int bad = json_dumpf(o, f, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) != 0;
    json_decref(o);
    bad |= fputc('\n', f) == EOF;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    return bad ? vet_err_io(err, "%s: write failed: %s", path, strerror(errno)) : 0;
}

int vet_ckpt_save(const char *root, const vet_train_state *st, const float *params, const float *adam_m,
                  const float *adam_v, const float *best, size_t n, vet_err *err) {
    char tmp[4096], final[4096], file[4200];
    if (vet_mkdirs(root, err) < 0) return -1;
    snprintf(tmp, sizeof tmp, "%s/.step-%08ld.tmp.%ld", root, st->step, (long)getpid());
    snprintf(final, sizeof final, "%s/step-%08ld", root, st->step);
    remove_tree(tmp);
    if (mkdir(tmp, 0755) != 0) return vet_err_io(err, "%s: cannot create: %s", tmp, strerror(errno));
    vet_st_writer *w = vet_st_writer_new();
    int64_t shape[1] = {(int64_t)n};
    int rc = w ? 0 : vet_err_nomem(err, "out of memory");
    if (rc == 0) rc = vet_st_writer_add(w, "params", VET_DT_F32, 1, shape, params, err);
    if (rc == 0) rc = vet_st_writer_add(w, "adam_m", VET_DT_F32, 1, shape, adam_m, err);
    if (rc == 0) rc = vet_st_writer_add(w, "adam_v", VET_DT_F32, 1, shape, adam_v, err);
    if (rc == 0 && best) rc = vet_st_writer_add(w, "best", VET_DT_F32, 1, shape, best, err);
    snprintf(file, sizeof file, "%s/train.safetensors", tmp);
    if (rc == 0) rc = vet_st_writer_write(w, file, err);
    vet_st_writer_free(w);
    snprintf(file, sizeof file, "%s/state.json", tmp);
    if (rc == 0) rc = write_state(file, st, err);
    if (rc == 0) rc = fsync_path(tmp, err);
    if (rc == 0) {
        remove_tree(final);  // a checkpoint of the same step from an earlier, interrupted try
        if (rename(tmp, final) != 0) rc = vet_err_io(err, "%s: cannot rename into place: %s", final, strerror(errno));
    }
    if (rc == 0) rc = fsync_path(root, err);
    if (rc < 0) remove_tree(tmp);
    return rc;
}

// One integer field of state.json in [lo, hi]; -1 with the field named otherwise.
static int state_int(const json_t *o, const char *key, long lo, long hi, long *out, const char *path,
                     vet_err *err) {
    json_t *v = json_object_get(o, key);
    if (!v) return vet_errf(err, "%s: \"%s\" is missing: not a whole vet checkpoint state", path, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return vet_errf(err, "%s: \"%s\" must be an integer from %ld to %ld: the checkpoint is damaged or was "
                             "altered; resume from another one or start afresh", path, key, lo, hi);
    *out = (long)json_integer_value(v);
    return 0;
}

// A number field: finite and >= 0 (null allowed where null_ok: best_val before any evaluation).
static int state_num(const json_t *o, const char *key, int null_ok, double *out, const char *path, vet_err *err) {
    json_t *v = json_object_get(o, key);
    if (!v) return vet_errf(err, "%s: \"%s\" is missing: not a whole vet checkpoint state", path, key);
    if (null_ok && json_is_null(v)) return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= 0) || !isfinite(json_number_value(v)))
        return vet_errf(err, "%s: \"%s\" must be a finite number >= 0%s: the checkpoint is damaged or was "
                             "altered", path, key, null_ok ? " or null" : "");
    *out = json_number_value(v);
    return 0;
}

// A 64-hex-digit identity (fingerprint, base, data).
static int state_hex(const json_t *o, const char *key, char out[65], const char *path, vet_err *err) {
    const char *s = json_string_value(json_object_get(o, key));
    int ok = s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
    if (!ok && !json_object_get(o, key) && strcmp(key, "fingerprint") != 0)
        return vet_errf(err, "%s: \"%s\" is missing: a checkpoint from an older vet, which did not record "
                             "its base model and data, cannot be checked against this run: start afresh", path, key);
    if (!ok) return vet_errf(err, "%s: \"%s\" must be 64 hex digits: not a vet checkpoint state", path, key);
    memcpy(out, s, 65);
    return 0;
}

static int read_state(const char *path, vet_train_state *st, vet_err *err) {
    json_t *o = vet_json_load(path, "checkpoint state", 0, err);
    if (!o) return -1;
    long bad_evals = 0, good = 0, skips = 0;
    *st = (vet_train_state){.best_val = INFINITY};
    int rc = json_is_object(o) ? 0 : vet_errf(err, "%s: not a JSON object", path);
    if (!rc) rc = state_int(o, "step", 0, LONG_MAX / 2, &st->step, path, err);
    if (!rc) rc = state_int(o, "best_step", -1, st->step, &st->best_step, path, err);
    if (!rc) rc = state_int(o, "bad_evals", 0, INT_MAX, &bad_evals, path, err);
    if (!rc) rc = state_int(o, "skipped_steps", 0, st->step, &st->skipped_steps, path, err);
    if (!rc) rc = state_num(o, "best_val", 1, &st->best_val, path, err);
    if (!rc) rc = state_num(o, "tokens_seen", 0, &st->tokens_seen, path, err);
    if (!rc && json_object_get(o, "loss_scale")) {  // fp16 runs only
        rc = state_num(o, "loss_scale", 0, &st->loss_scale, path, err);
        if (!rc && !(st->loss_scale > 0))
            rc = vet_errf(err, "%s: \"loss_scale\" must be above 0", path);
        if (!rc) rc = state_int(o, "loss_scale_good_steps", 0, st->step, &good, path, err);
        if (!rc) rc = state_int(o, "loss_scale_skipped_steps", 0, st->step, &skips, path, err);
    }
    if (!rc) rc = state_hex(o, "fingerprint", st->fingerprint, path, err);
    if (!rc) rc = state_hex(o, "base", st->base_id, path, err);
    if (!rc) rc = state_hex(o, "data", st->data_id, path, err);
    st->bad_evals = (int)bad_evals, st->scale_good = good, st->scale_skips = skips;
    json_decref(o);
    return rc;
}

// adam_v is a running mean of squared gradients: a negative entry is no state AdamW can be in
// (its square root would be NaN on the first step).
static int check_second_moment(const float *v, size_t n, const char *file, vet_err *err) {
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0)
            return vet_errf(err, "%s: tensor adam_v holds %g at %zu: AdamW's second moment is never negative "
                                 "(the checkpoint is damaged)", file, (double)v[i], i);
    return 0;
}

int vet_ckpt_load(const char *dir, vet_train_state *st, float *params, float *adam_m, float *adam_v,
                  float *best, int *has_best, size_t n, vet_err *err) {
    char file[4200];
    snprintf(file, sizeof file, "%s/state.json", dir);
    if (read_state(file, st, err) < 0) return -1;
    snprintf(file, sizeof file, "%s/train.safetensors", dir);
    vet_tensors *t = vet_tensors_open_file(file, err);
    if (!t) return -1;
    int64_t shape[1] = {(int64_t)n};
    const char *names[4] = {"params", "adam_m", "adam_v", "best"};
    float *dst[4] = {params, adam_m, adam_v, best};
    int rc = 0;
    *has_best = 0;
    for (int i = 0; i < 4 && rc == 0; i++) {
        const vet_tensor_ref *r = vet_tensors_find(t, names[i]);
        if (i == 3 && !best) continue;  // a run without validation keeps no best parameters
        if (!r) {
            if (i < 3) rc = vet_errf(err, "%s: no tensor '%s'", file, names[i]);
            continue;
        }
        if (r->ndim != 1 || r->shape[0] != shape[0])
            rc = vet_errf(err, "%s: tensor '%s' holds %lld floats, this run trains %zu: checkpoint of another model "
                               "or other settings", file, names[i], r->ndim == 1 ? (long long)r->shape[0] : -1LL, n);
        if (rc == 0) rc = vet_tensor_read_f32(r, 1, shape, dst[i], err);  // refuses NaN / Inf, naming it
        if (i == 3 && rc == 0) *has_best = 1;
    }
    vet_tensors_close(t);
    if (rc == 0) rc = check_second_moment(adam_v, n, file, err);
    return rc;
}

int vet_ckpt_find(const char *path, char *out, size_t outn, vet_err *err) {
    char probe[8448];
    snprintf(probe, sizeof probe, "%s/state.json", path);
    if (access(probe, R_OK) == 0) {
        snprintf(out, outn, "%s", path);
        return 0;
    }
    // An output directory: look in its checkpoints/ (or in path itself).
    const char *roots[2] = {"checkpoints", ""};
    for (int k = 0; k < 2; k++) {
        char root[4096];
        snprintf(root, sizeof root, "%s%s%s", path, *roots[k] ? "/" : "", roots[k]);
        DIR *d = opendir(root);
        if (!d) continue;
        long best = -1;
        struct dirent *e;
        while ((e = readdir(d))) {
            long s;
            char tail;
            if (sscanf(e->d_name, "step-%ld%c", &s, &tail) != 1) continue;  // skips .tmp dirs
            snprintf(probe, sizeof probe, "%s/%s/state.json", root, e->d_name);
            if (s > best && access(probe, R_OK) == 0) best = s;
        }
        closedir(d);
        if (best >= 0) {
            snprintf(out, outn, "%s/step-%08ld", root, best);
            return 0;
        }
    }
    // Nothing there at all: a file that cannot be opened (exit 3), not a folder without checkpoints.
    if (access(path, F_OK) != 0) return vet_err_io(err, "%s: cannot open: %s", path, strerror(errno));
    return vet_errf(err, "%s: no checkpoint to resume from (looked for %s/checkpoints/step-N)", path, path);
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int vet_ckpt_prune(const char *root, int keep, vet_err *err) {
    DIR *d = opendir(root);
    if (!d) return vet_err_io(err, "%s: cannot open: %s", root, strerror(errno));
    long steps[4096];
    int n = 0;
    struct dirent *e;
    char path[4200];
    while ((e = readdir(d))) {
        long s;
        char tail;
        if (sscanf(e->d_name, "step-%ld%c", &s, &tail) == 1) {
            if (n < 4096) steps[n++] = s;
        } else if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp.")) {
            // A temporary from a run that died while saving.
            long pid = atol(strrchr(e->d_name, '.') + 1);
            if (pid != (long)getpid()) {
                snprintf(path, sizeof path, "%s/%s", root, e->d_name);
                remove_tree(path);
            }
        }
    }
    closedir(d);
    if (keep <= 0 || n <= keep) return 0;
    qsort(steps, n, sizeof *steps, cmp_long);
    for (int i = 0; i < n - keep; i++) {
        snprintf(path, sizeof path, "%s/step-%08ld", root, steps[i]);
        if (remove_tree(path) != 0) return vet_err_io(err, "%s: cannot remove: %s", path, strerror(errno));
    }
    return 0;
}
