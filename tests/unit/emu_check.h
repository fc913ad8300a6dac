// emu_check.h — what the emulator tests (tests/unit/test_*_emu.cc) share besides the emulator:
// random inputs from a seeded xorshift, the parity test's error measure, a bit comparison, and
// a context for the host functions (the emulated launches never read it).
#ifndef VET_EMU_CHECK_H
#define VET_EMU_CHECK_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <vector>

extern "C" {
#include "check.h"
}

static uint64_t emu_rng = 0x2545f4914f6cdd1dull;  // a test may reseed it
static inline uint64_t emu_next() {
    emu_rng ^= emu_rng << 13, emu_rng ^= emu_rng >> 7, emu_rng ^= emu_rng << 17;
    return emu_rng;
}
static inline float frand() { return (float)((emu_next() >> 40) * (1.0 / 8388608.0)) - 1.0f; }  // [-1, 1)
static inline int irand(int n) { return (int)((emu_next() >> 33) % (uint64_t)n); }              // [0, n)
static inline std::vector<float> rnd(size_t n) {
    std::vector<float> x(n);
    for (auto &e : x) e = frand();
    return x;
}

// op_parity's measure: max |got - want| / max |want| (a NaN in got is the worst).
static inline double max_rel(const std::vector<float> &got, const std::vector<float> &want) {
    double num = 0, den = 0;
    for (size_t i = 0; i < got.size(); i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= num)) num = d;
        if (fabs(want[i]) > den) den = fabs(want[i]);
    }
    return num / (den > 0 ? den : 1.0);
}

static inline bool same_bits(const std::vector<float> &a, const std::vector<float> &b) {
    return a.size() == b.size() && !memcmp(a.data(), b.data(), a.size() * sizeof(float));
}

static vet_cuda emu_ctx_;
static vet_cuda *const ctx = &emu_ctx_;

#endif
