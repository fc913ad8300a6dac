// allowed.c — allowed.h: an open-addressing table of (state set, tokens left) -> id list.
//
// The table holds up to SLOTS / 2 lists; when it would hold more it is emptied and starts over
// (a batch visits few places at a time, so a full table means the old ones are not coming
// back soon). Each list is its own allocation, sized to fit.
#include "generate/allowed.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 4096  // a power of two

typedef struct {
    int used;
    vet_cstate s;   // the key: the state set (in the order the constraint keeps it) ...
    int remaining;  // ... and the tokens left
    int32_t *ids;   // the list
    int n;
} entry;

struct vet_allowed {
    const vet_constrain *c;
    int V;
    entry *tab;             // (SLOTS)
    int filled;
    int32_t *ids;           // (V) scratch for a list being worked out
    unsigned char *allow;   // (V) scratch for vet_constrain_allowed
    long long computed, remembered;
};

vet_allowed *vet_allowed_new(const vet_constrain *c, int V, vet_err *err) {
    vet_allowed *a = calloc(1, sizeof *a);
    if (a) {
        a->c = c, a->V = V;
        a->tab = calloc(SLOTS, sizeof *a->tab);
        a->ids = malloc((size_t)V * sizeof *a->ids);
        a->allow = malloc((size_t)V);
    }
    if (!a || !a->tab || !a->ids || !a->allow) {
        vet_allowed_free(a);
        vet_err_nomem(err, "out of memory for the allowed-token lists of %d ids", V);
        return NULL;
    }
    return a;
}

static void empty(vet_allowed *a) {
    for (int i = 0; i < SLOTS; i++) free(a->tab[i].ids);
    memset(a->tab, 0, SLOTS * sizeof *a->tab);
    a->filled = 0;
}

void vet_allowed_free(vet_allowed *a) {
    if (!a) return;
    if (a->tab) empty(a);
    free(a->tab), free(a->ids), free(a->allow);
    free(a);
}

// FNV-1a over the key's numbers.
static unsigned hash(const vet_cstate *s, int remaining) {
    uint32_t h = 2166136261u;
    h = (h ^ (uint32_t)remaining) * 16777619u;
    h = (h ^ (uint32_t)s->n) * 16777619u;
    for (int i = 0; i < s->n; i++) h = (h ^ (uint32_t)s->st[i]) * 16777619u;
    return h;
}

static int same(const entry *e, const vet_cstate *s, int remaining) {
    return e->remaining == remaining && e->s.n == s->n && memcmp(e->s.st, s->st, (size_t)s->n * sizeof *s->st) == 0;
}

const int32_t *vet_allowed_get(vet_allowed *a, const vet_cstate *s, int remaining, int *n, vet_err *err) {
    unsigned i = hash(s, remaining) & (SLOTS - 1);
    for (; a->tab[i].used; i = (i + 1) & (SLOTS - 1))
        if (same(&a->tab[i], s, remaining)) {
            a->remembered++;
            *n = a->tab[i].n;
            return a->tab[i].ids;
        }
    int k = vet_constrain_allowed(a->c, s, remaining, a->ids, a->allow);
    a->computed++;
    *n = k;
    if (a->filled + 1 > SLOTS / 2) {  // full: start over (the probe position is rehashed)
        empty(a);
        for (i = hash(s, remaining) & (SLOTS - 1); a->tab[i].used; i = (i + 1) & (SLOTS - 1)) {}
    }
    int32_t *ids = malloc((size_t)k * sizeof *ids);
    if (!ids) {
        vet_err_nomem(err, "out of memory for an allowed-token list of %d ids", k);
        return NULL;
    }
    memcpy(ids, a->ids, (size_t)k * sizeof *ids);
    entry *e = &a->tab[i];
    e->used = 1, e->s = *s, e->remaining = remaining, e->ids = ids, e->n = k;
    a->filled++;
    return ids;
}

void vet_allowed_counts(const vet_allowed *a, long long *computed, long long *remembered) {
    *computed = a->computed, *remembered = a->remembered;
}
