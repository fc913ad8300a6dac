// schedule.h — learning-rate schedules, as Hugging Face transformers defines them
// (get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup, constant with warmup).
// Optimizer step k (counting from 0) uses lr · factor(k): the first step of a warmup uses 0,
// exactly as a torch LambdaLR scheduler stepped after each optimizer step does.
#ifndef VET_SCHEDULE_H
#define VET_SCHEDULE_H

#include "base/err.h"

typedef enum { VET_SCHED_COSINE, VET_SCHED_LINEAR, VET_SCHED_CONSTANT } vet_sched_kind;

typedef struct {
    vet_sched_kind kind;
    double lr;           // peak learning rate
    long warmup_steps;   // ceil(warmup_ratio * total_steps), as transformers' Trainer does
    long total_steps;
} vet_schedule;

int vet_schedule_parse(const char *name, vet_sched_kind *kind, vet_err *err);
const char *vet_schedule_name(vet_sched_kind kind);
void vet_schedule_init(vet_schedule *s, vet_sched_kind kind, double lr, double warmup_ratio, long total_steps);
double vet_schedule_lr(const vet_schedule *s, long step);

#endif
