// len_stats.h — how long the samples are: a histogram of token counts, from which the exact
// min, mean, percentiles and max come (vet-tokenize --stats).
//
// A histogram rather than a list of lengths: memory grows with the longest sample, not with
// the number of samples, and a nearest-rank percentile is one pass over the counts.
#ifndef VET_LEN_STATS_H
#define VET_LEN_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *count;  // count[len]: samples of that length
    size_t cap;       // entries in count
    uint64_t n, sum, min, max;
} vet_len_hist;

// Counts one sample of len tokens. 0, or -1 when out of memory (h unchanged).
int vet_len_hist_add(vet_len_hist *h, size_t len);

// Nearest-rank percentile, q in [0, 1]: the smallest length with at least q of the samples at
// or below it (0 for an empty histogram).
size_t vet_len_hist_pct(const vet_len_hist *h, double q);

// The mean length (0 for an empty histogram).
double vet_len_hist_mean(const vet_len_hist *h);

void vet_len_hist_free(vet_len_hist *h);

#endif
