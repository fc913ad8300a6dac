// log.c — OUT/train.log.jsonl: one JSON object per optimizer step taken (see run.h).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/read_file.h"
#include "train/run.h"

// A log far larger than any run writes (a line per step, ~200 bytes) is not ours to keep.
#define LOG_MAX_BYTES ((size_t)1 << 30)

// The step a log line is about: lines start {"step":N,... (train_log_step); -1 when not.
static long line_step(const char *line) {
    static const char key[] = "{\"step\":";
    if (strncmp(line, key, sizeof key - 1) != 0) return -1;
    char *end;
    long s = strtol(line + sizeof key - 1, &end, 10);
    return end > line + sizeof key - 1 && *end == ',' ? s : -1;
}

// On resume from step `upto`: the log keeps its lines of steps 1..upto, in order, and loses
// those the interrupted run took after its checkpoint (they are taken again) and a line cut
// by a kill. Rewritten atomically, so a crash here leaves the old log.
static int truncate_log(const char *path, long upto, vet_err *err) {
    char *text;
    size_t len;
    FILE *probe = fopen(path, "rb");
    if (!probe) return 0;  // no log yet: nothing to keep
    fclose(probe);
    if (vet_read_file(path, "training log", LOG_MAX_BYTES, &text, &len, err) < 0) return -1;
    size_t keep = 0;
    long prev = 0;
    for (size_t at = 0; at < len;) {
        char *nl = memchr(text + at, '\n', len - at);
        if (!nl) break;  // a cut last line
        long s = line_step(text + at);
        if (s <= prev || s > upto) break;
        prev = s;
        at = keep = (size_t)(nl - text) + 1;
    }
    if (keep == len) {
        free(text);
        return 0;
    }
    vet_afile out;
    int rc = vet_afile_open(&out, path, err);
    if (rc == 0 && keep && fwrite(text, 1, keep, out.f) != keep) {
        rc = vet_err_io(err, "%s: write failed: %s", out.shown, strerror(errno));
        vet_afile_abort(&out);
    } else if (rc == 0) {
        rc = vet_afile_commit(&out, err);
    }
    free(text);
    return rc;
}

int train_log_open(train_run *r, long resume_step, vet_err *err) {
    char path[4200];
    if (r->comm->rank != 0) return 0;  // rank 0 alone writes OUT: r->log stays NULL
    if (vet_mkdirs(r->o->out_dir, err) < 0) return -1;
    snprintf(path, sizeof path, "%s/train.log.jsonl", r->o->out_dir);
    if (resume_step >= 0 && truncate_log(path, resume_step, err) < 0) return -1;
    r->log = fopen(path, resume_step >= 0 ? "a" : "w");  // a resumed run continues its log
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
    if (r->comm->size > 1) fprintf(r->log, ",\"ranks\":%d,\"allreduce_s\":%.4f", r->comm->size, s->comm_s);
    fputs("}\n", r->log);
    fflush(r->log);
}
