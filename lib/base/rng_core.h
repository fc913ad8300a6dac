// rng_core.h — the arithmetic of lib/base/rng.c's generator, once: splitmix64, the seed hash,
// xoshiro256** and its uniform float, as inline functions over a bare uint64_t[4] state.
//
// Why a header of its own: a kernel can draw exactly the CPU's streams, bit for bit, from the
// one copy of every constant and every shift (under nvcc the functions are __host__
// __device__, in C plain static inline). Everything is integer arithmetic on uint64_t (exact
// on any machine) except the last step of vet_rng_core_uniform, which is exact too (a 24-bit
// integer to float, times a power of two). tests/unit/test_rng_core.c checks this header
// against values pinned from an independent implementation. (Dropout's masks, which the
// device does make, come from the counter-based generator of philox.h instead: no stream.)
//
// Plain C11 / CUDA C++: no vet types, no libc calls (a kernel can include it as is).
#ifndef VET_RNG_CORE_H
#define VET_RNG_CORE_H

#include <stdint.h>

#ifdef __CUDACC__
#define VET_HD static inline __host__ __device__
#else
#define VET_HD static inline
#endif

// One step of splitmix64: advances *state and returns a well-mixed value.
VET_HD uint64_t vet_rng_core_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// hash(hash(a) ^ b), each hash one splitmix64 step (vet_rng_hash).
VET_HD uint64_t vet_rng_core_hash(uint64_t a, uint64_t b) {
    uint64_t s = a;
    uint64_t h = vet_rng_core_splitmix64(&s) ^ b;
    return vet_rng_core_splitmix64(&h);
}

// xoshiro256**'s state from one seed: four splitmix64 outputs (vet_rng_seed).
VET_HD void vet_rng_core_seed(uint64_t s[4], uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s[i] = vet_rng_core_splitmix64(&x);
}

VET_HD uint64_t vet_rng_core_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// 64 random bits; advances s (xoshiro256**, Blackman & Vigna).
VET_HD uint64_t vet_rng_core_next(uint64_t s[4]) {
    uint64_t result = vet_rng_core_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = vet_rng_core_rotl(s[3], 45);
    return result;
}

// A float in [0, 1): the top 24 bits of a draw times 2^-24 (both steps exact in fp32).
VET_HD float vet_rng_core_uniform(uint64_t s[4]) {
    return (float)(vet_rng_core_next(s) >> 40) * 0x1.0p-24f;
}

#endif
