// finite.h — finding NaN and Inf in float arrays (weights are checked on every load).
#ifndef VET_FINITE_H
#define VET_FINITE_H

#include <stdint.h>

// The index of the first NaN or Inf among n values, or -1.
int64_t vet_first_nonfinite(const float *x, int64_t n);

#endif
