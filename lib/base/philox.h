// philox.h — Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011), the counter-based generator behind dropout's masks, and the one rule that
// turns its output into keep decisions. Written here from the paper's definition.
//
// Why counter-based: a mask element is a pure function of (seed, row, column), with no state
// carried from one element to the next. The CUDA kernel (kernels/dropout.cu) computes any
// element in any thread, in parallel, and the backward and the recompute regenerate the mask
// instead of storing it; the CPU (lib/model/ops_cpu.c, scalar and AVX2) computes the same
// function, so the device's masks are the CPU's bit for bit. (The stream generator of
// per-row xoshiro256** streams used before made a row one dependent chain of draws: one GPU
// thread per row.)
//
// Plain C11 / CUDA C++: no vet types, no libc calls; __host__ __device__ under nvcc.
// tests/unit/test_philox.c checks Random123's published known-answer vectors.
#ifndef VET_PHILOX_H
#define VET_PHILOX_H

#include <stdint.h>

#ifdef __CUDACC__
#define VET_PHILOX_FN static inline __host__ __device__
#else
#define VET_PHILOX_FN static inline
#endif

#define VET_PHILOX_M0 0xD2511F53u  // the round multipliers
#define VET_PHILOX_M1 0xCD9E8D57u
#define VET_PHILOX_W0 0x9E3779B9u  // the key schedule's increments (golden ratio, sqrt(3) - 1)
#define VET_PHILOX_W1 0xBB67AE85u

// out[0..4) = Philox4x32-10(ctr, key): ten rounds, the key bumped between rounds. Each round
// multiplies words 0 and 2 by M0 and M1 (64-bit products split in high and low halves) and
// mixes: (x0, x1, x2, x3) -> (hi(M1*x2) ^ x1 ^ k0, lo(M1*x2), hi(M0*x0) ^ x3 ^ k1, lo(M0*x0)).
VET_PHILOX_FN void vet_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t x0 = ctr[0], x1 = ctr[1], x2 = ctr[2], x3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) k0 += VET_PHILOX_W0, k1 += VET_PHILOX_W1;
        uint64_t p0 = (uint64_t)VET_PHILOX_M0 * x0, p1 = (uint64_t)VET_PHILOX_M1 * x2;
        uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1 ^ k0, y1 = (uint32_t)p1;
        uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3 ^ k1, y3 = (uint32_t)p0;
        x0 = y0, x1 = y1, x2 = y2, x3 = y3;
    }
    out[0] = x0, out[1] = x1, out[2] = x2, out[3] = x3;
}

// --- dropout's masks ------------------------------------------------------------------------
// Element (row key r, column c) of a mask with seed s: Philox4x32-10 with
//   key = (low 32 bits of s, high 32 bits of s)
//   ctr = (c / 4, low 32 bits of r, high 32 bits of r, 0)
// gives four words, word j for column 4 * (c / 4) + j. The element is kept when the word's top
// 24 bits k satisfy k >= thr, thr = ceil(p * 2^24): that is u = k * 2^-24 (a uniform in [0, 1),
// exact in fp32) not below p, the rule `u < p ? drop : keep` of torch.nn.Dropout's definition.
// Bit j of the result is column 4q + j's keep bit.
VET_PHILOX_FN unsigned vet_dropout_keep4(uint64_t seed, uint64_t row_key, uint32_t q, uint32_t thr) {
    const uint32_t ctr[4] = {q, (uint32_t)row_key, (uint32_t)(row_key >> 32), 0u};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t w[4];
    vet_philox4x32_10(ctr, key, w);
    return (unsigned)((w[0] >> 8) >= thr) | (unsigned)((w[1] >> 8) >= thr) << 1 |
           (unsigned)((w[2] >> 8) >= thr) << 2 | (unsigned)((w[3] >> 8) >= thr) << 3;
}

// thr for p in [0, 1): ceil(p * 2^24), p * 2^24 exact in double (p is a float). p == 0 keeps all.
VET_PHILOX_FN uint32_t vet_dropout_threshold(float p) {
    double t = (double)p * 16777216.0;
    uint32_t i = (uint32_t)t;
    return (double)i < t ? i + 1u : i;
}

#endif
