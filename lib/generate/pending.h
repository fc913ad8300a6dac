// pending.h — predictions held until they can be written in input order.
//
// The decoder finishes notes in completion order (a short note started after a long one ends
// first), but the predictions stream lists them in input order. Each note gets a place when
// its prompt is read (its tag: 0, 1, 2, ... in input order); when it is finished its record
// is filled and marked done; vet_pending_flush then writes every done note at the front, in
// order, and forgets it. At most `batch` notes are in flight, so the queue stays that short.
#ifndef VET_PENDING_H
#define VET_PENDING_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "generate/predictions.h"

typedef struct vet_pending vet_pending;

vet_pending *vet_pending_new(vet_err *err);
void vet_pending_free(vet_pending *q);  // frees every record still held; safe with NULL

// A new, zeroed record at the back; *tag gets its number. NULL when out of memory.
vet_prediction *vet_pending_add(vet_pending *q, int64_t *tag, vet_err *err);
// The record of tag, or NULL when tag is not held (written already, or never added).
vet_prediction *vet_pending_get(vet_pending *q, int64_t tag);
// Marks tag's record finished: it may be written once every record before it is.
void vet_pending_done(vet_pending *q, int64_t tag);
size_t vet_pending_count(const vet_pending *q);  // records held, done or not

// Hands every done record at the front to write, in order, and frees it. Returns the number
// written, or -1 when write fails (the failed record and those after it stay held).
typedef int (*vet_pending_write_fn)(void *ctx, const vet_prediction *p, vet_err *err);
long vet_pending_flush(vet_pending *q, vet_pending_write_fn write, void *ctx, vet_err *err);

#endif
