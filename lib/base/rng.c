// rng.c — see rng.h.
#include "base/rng.h"

#include <math.h>

// splitmix64 (Steele, Lea & Flood), for seeding and hashing.
uint64_t vet_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// hash(hash(a) ^ b), each hash one splitmix64 step.
uint64_t vet_rng_hash(uint64_t a, uint64_t b) {
    uint64_t s = a;
    uint64_t h = vet_splitmix64(&s) ^ b;
    return vet_splitmix64(&h);
}

// xoshiro256**'s state from one seed: four splitmix64 outputs.
void vet_rng_seed(vet_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = vet_splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// 64 random bits (xoshiro256**, Blackman & Vigna).
uint64_t vet_rng_next(vet_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

// A float in [0, 1): the top 24 bits of a draw times 2^-24 (both steps exact in fp32).
float vet_rng_uniform(vet_rng *r) { return (float)(vet_rng_next(r) >> 40) * 0x1.0p-24f; }

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
