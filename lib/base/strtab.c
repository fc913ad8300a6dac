// strtab.c — see strtab.h.
#include "base/strtab.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

// The slot holding s, or the empty slot where it would go.
static size_t slot_of(const vet_strtab *t, const char *s) {
    size_t mask = t->nslot - 1, i = fnv1a(s) & mask;
    while (t->slot[i] && strcmp(t->str[t->slot[i] - 1], s) != 0) i = (i + 1) & mask;
    return i;
}

static int grow(vet_strtab *t) {
    size_t nslot = t->nslot ? 2 * t->nslot : 64;
    uint32_t *s = calloc(nslot, sizeof *s);
    if (!s) return -1;
    free(t->slot);
    t->slot = s;
    t->nslot = nslot;
    for (size_t k = 0; k < t->n; k++) t->slot[slot_of(t, t->str[k])] = (uint32_t)(k + 1);
    return 0;
}

long vet_strtab_intern(vet_strtab *t, const char *s) {
    long id = vet_strtab_find(t, s);
    if (id >= 0) return id;
    // Room first, then the insertion: a failure leaves the table as it was.
    if (2 * (t->n + 1) > t->nslot && grow(t) < 0) return -1;
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 32;
        char **v = realloc(t->str, cap * sizeof *v);
        if (!v) return -1;
        t->str = v;
        t->cap = cap;
    }
    char *copy = strdup(s);
    if (!copy) return -1;
    t->slot[slot_of(t, s)] = (uint32_t)(t->n + 1);
    t->str[t->n] = copy;
    return (long)t->n++;
}

long vet_strtab_find(const vet_strtab *t, const char *s) {
    if (!t->nslot) return -1;
    size_t i = slot_of(t, s);
    return t->slot[i] ? (long)t->slot[i] - 1 : -1;
}

void vet_strtab_free(vet_strtab *t) {
    for (size_t i = 0; i < t->n; i++) free(t->str[i]);
    free(t->str);
    free(t->slot);
    memset(t, 0, sizeof *t);
}
