// len_stats.c — see len_stats.h.
#include "data/len_stats.h"

#include <stdlib.h>
#include <string.h>

int vet_len_hist_add(vet_len_hist *h, size_t len) {
    if (len >= h->cap) {
        size_t cap = h->cap ? h->cap : 1024;
        while (cap <= len) cap *= 2;
        uint64_t *p = realloc(h->count, cap * sizeof *p);
        if (!p) return -1;
        memset(p + h->cap, 0, (cap - h->cap) * sizeof *p);
        h->count = p;
        h->cap = cap;
    }
    h->count[len]++;
    if (h->n == 0 || len < h->min) h->min = len;
    if (len > h->max) h->max = len;
    h->n++;
    h->sum += len;
    return 0;
}

size_t vet_len_hist_pct(const vet_len_hist *h, double q) {
    // need = ceil(q * n), computed as the tool always has (a hair under 1 added before
    // truncating), so that its figures do not move.
    uint64_t need = (uint64_t)(q * (double)h->n + 0.999999), seen = 0;
    if (need < 1) need = 1;
    for (size_t len = 0; len < h->cap; len++)
        if ((seen += h->count[len]) >= need) return len;
    return h->max;
}

double vet_len_hist_mean(const vet_len_hist *h) { return h->n ? (double)h->sum / (double)h->n : 0.0; }

void vet_len_hist_free(vet_len_hist *h) {
    free(h->count);
    memset(h, 0, sizeof *h);
}
