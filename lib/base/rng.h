// rng.h — a small deterministic random number generator: xoshiro256** seeded by splitmix64.
//
// The same seed gives the same stream on every machine (no libc rand, no time). Draws are
// uniform floats in [0,1), uniform in [lo,hi), and standard normals by Box-Muller.
// vet_rng_hash mixes a few integers into one 64-bit seed, so a parallel loop can give
// each (layer, row, ...) its own independent stream without sharing state between threads.
#ifndef VET_RNG_H
#define VET_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
    int has_spare;   // Box-Muller makes normals in pairs; the second waits here
    double spare;
} vet_rng;

// One step of splitmix64: advances *state and returns a well-mixed value.
uint64_t vet_splitmix64(uint64_t *state);
// Mixes a and b into one seed (order matters): hash(hash(a) ^ b).
uint64_t vet_rng_hash(uint64_t a, uint64_t b);

void vet_rng_seed(vet_rng *r, uint64_t seed);
uint64_t vet_rng_next(vet_rng *r);               // 64 random bits (xoshiro256**)
float vet_rng_uniform(vet_rng *r);               // [0, 1), 24 random bits
double vet_rng_uniform_double(vet_rng *r);       // [0, 1), 53 random bits
float vet_rng_uniform_range(vet_rng *r, float lo, float hi);  // [lo, hi)
double vet_rng_normal(vet_rng *r);               // mean 0, std 1 (Box-Muller)
uint64_t vet_rng_below(vet_rng *r, uint64_t n);  // uniform in [0, n), n > 0, unbiased

#endif
