// ops_math.h — a vectorizable expf for the ops' inner loops (internal to lib/ops_*.c).
//
// glibc's expf is a scalar call the compiler cannot vectorize; attention and SwiGLU spend a
// tenth of a training step in it. This is Cephes' expf: exp(x) = 2^n * exp(r) with
// r = x - n*ln2 (ln2 split in two for exactness), a degree-6 polynomial for exp(r).
// Error within 2 ulp over the clamped range; inputs are clamped to [-87.3, 88.7], so
// exp(-inf) gives ~1e-38 instead of 0 (harmless next to a softmax sum >= 1) and large inputs
// stay finite.
#ifndef VET_OPS_MATH_H
#define VET_OPS_MATH_H

#include <stdint.h>
#include <string.h>

#pragma omp declare simd
static inline float vet_expf(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.7f ? 88.7f : x;
    // round to nearest by adding and removing 1.5 * 2^23 (no libm call, so it vectorizes)
    float fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * (r * r) + r + 1.0f;
    int32_t bits = ((int32_t)fn + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

#endif
