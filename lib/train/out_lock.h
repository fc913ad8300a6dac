// out_lock.h — one training run per output directory.
//
// Two vet-train processes writing checkpoints, a log and an adapter into the same --out would
// mix their files. The first run creates OUT/.vet-train.lock holding its pid; a second one
// is refused, naming that pid, for as long as the holder lives. A lock left behind by a run
// that died (kill -9, a power cut) names a pid that no longer exists: the next run takes it
// over, which is what --resume after a crash needs.
//
// The lock appears with its content in one step (the pid is written to a private file that is
// then hard-linked to the lock's name, which fails when the name exists: O_EXCL's rule without
// the moment in which the file exists but is still empty).
#ifndef VET_OUT_LOCK_H
#define VET_OUT_LOCK_H

#include "base/err.h"

#define VET_OUT_LOCK_NAME ".vet-train.lock"

typedef struct {
    char path[4200];   // the lock file ("" when not held)
} vet_out_lock;

// Takes dir's lock (dir must exist). 0, or -1 with err: VET_E_USAGE while another live process
// holds it (the message names the pid and the lock file), VET_E_IO when it cannot be written.
int vet_out_lock_take(vet_out_lock *lk, const char *dir, vet_err *err);
// Removes the lock if held (safe to call twice, or after a failed take).
void vet_out_lock_release(vet_out_lock *lk);

#endif
