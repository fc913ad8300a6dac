// pending.c — predictions held until they can be written in input order (see pending.h).
#include "generate/pending.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    vet_prediction p;
    int done;
} held;

struct vet_pending {
    held *q;        // q[i] is tag base + i
    int64_t base;
    size_t n, cap;
};

vet_pending *vet_pending_new(vet_err *err) {
    vet_pending *q = calloc(1, sizeof *q);
    if (!q) vet_err_nomem(err, "out of memory");
    return q;
}

void vet_pending_free(vet_pending *q) {
    if (!q) return;
    for (size_t i = 0; i < q->n; i++) vet_prediction_free(&q->q[i].p);
    free(q->q);
    free(q);
}

vet_prediction *vet_pending_add(vet_pending *q, int64_t *tag, vet_err *err) {
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 32;
        held *p = realloc(q->q, cap * sizeof *p);
        if (!p) return vet_err_nomem(err, "out of memory"), NULL;
        q->q = p, q->cap = cap;
    }
    held *h = &q->q[q->n];
    memset(h, 0, sizeof *h);
    *tag = q->base + (int64_t)q->n++;
    return &h->p;
}

static held *find(vet_pending *q, int64_t tag) {
    if (tag < q->base || tag - q->base >= (int64_t)q->n) return NULL;
    return &q->q[tag - q->base];
}

vet_prediction *vet_pending_get(vet_pending *q, int64_t tag) {
    held *h = find(q, tag);
    return h ? &h->p : NULL;
}

void vet_pending_done(vet_pending *q, int64_t tag) {
    held *h = find(q, tag);
    if (h) h->done = 1;
}

size_t vet_pending_count(const vet_pending *q) { return q->n; }

long vet_pending_flush(vet_pending *q, vet_pending_write_fn write, void *ctx, vet_err *err) {
    size_t k = 0;
    int rc = 0;
    for (; k < q->n && q->q[k].done; k++) {
        if ((rc = write(ctx, &q->q[k].p, err)) < 0) break;
        vet_prediction_free(&q->q[k].p);
    }
    // One move for the whole run of written records.
    if (k) {
        memmove(q->q, q->q + k, (q->n - k) * sizeof *q->q);
        q->n -= k, q->base += (int64_t)k;
    }
    return rc < 0 ? -1 : (long)k;
}
