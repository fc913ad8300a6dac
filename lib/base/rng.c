// rng.c — see rng.h.
#include "base/rng.h"

#include <math.h>

#include "base/rng_core.h"

// The generator's arithmetic lives in rng_core.h (__host__ __device__ under nvcc, so a kernel
// could draw the same bits); these are its vet_rng wrappers.
uint64_t vet_splitmix64(uint64_t *state) { return vet_rng_core_splitmix64(state); }

uint64_t vet_rng_hash(uint64_t a, uint64_t b) { return vet_rng_core_hash(a, b); }

void vet_rng_seed(vet_rng *r, uint64_t seed) {
    vet_rng_core_seed(r->s, seed);
    r->has_spare = 0;
    r->spare = 0;
}

uint64_t vet_rng_next(vet_rng *r) { return vet_rng_core_next(r->s); }

float vet_rng_uniform(vet_rng *r) { return vet_rng_core_uniform(r->s); }

double vet_rng_uniform_double(vet_rng *r) { return (double)(vet_rng_next(r) >> 11) * 0x1.0p-53; }

float vet_rng_uniform_range(vet_rng *r, float lo, float hi) {
    float x = lo + (hi - lo) * vet_rng_uniform(r);
    return x < hi ? x : lo;  // rounding could land on hi; keep the interval half-open
}

double vet_rng_normal(vet_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = 1.0 - vet_rng_uniform_double(r);  // (0, 1]: log(u1) is finite
    double u2 = vet_rng_uniform_double(r);
    double rad = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

uint64_t vet_rng_below(vet_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // reject the short last bucket
    uint64_t x;
    do x = vet_rng_next(r); while (x >= limit);
    return x % n;
}
