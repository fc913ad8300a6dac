// schedule.c — see schedule.h.
#include "train/schedule.h"

#include <math.h>
#include <string.h>

int vet_schedule_parse(const char *name, vet_sched_kind *kind, vet_err *err) {
    if (strcmp(name, "cosine") == 0) *kind = VET_SCHED_COSINE;
    else if (strcmp(name, "linear") == 0) *kind = VET_SCHED_LINEAR;
    else if (strcmp(name, "constant") == 0) *kind = VET_SCHED_CONSTANT;
    else return vet_errf(err, "unknown scheduler '%s' (cosine, linear or constant)", name);
    return 0;
}

const char *vet_schedule_name(vet_sched_kind kind) {
    return kind == VET_SCHED_COSINE ? "cosine" : kind == VET_SCHED_LINEAR ? "linear" : "constant";
}

void vet_schedule_init(vet_schedule *s, vet_sched_kind kind, double lr, double warmup_ratio, long total_steps) {
    s->kind = kind;
    s->lr = lr;
    s->total_steps = total_steps;
    s->warmup_steps = (long)ceil(warmup_ratio * (double)total_steps);
}

double vet_schedule_lr(const vet_schedule *s, long step) {
    long w = s->warmup_steps, n = s->total_steps;
    if (step < w) return s->lr * (double)step / (double)(w > 1 ? w : 1);
    if (s->kind == VET_SCHED_CONSTANT) return s->lr;
    double progress = (double)(step - w) / (double)(n - w > 1 ? n - w : 1);
    double f;
    if (s->kind == VET_SCHED_LINEAR) f = (double)(n - step) / (double)(n - w > 1 ? n - w : 1);
    else f = 0.5 * (1.0 + cos(M_PI * progress));
    return s->lr * (f > 0 ? f : 0);
}
