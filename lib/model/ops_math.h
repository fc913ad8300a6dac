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

#include <stddef.h>
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
    // unsigned shift: a NaN input (fn NaN, converted to INT32_MIN on x86) must not make it UB
    uint32_t bits = (uint32_t)((int32_t)fn + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

// --- run-time dispatch (ops_simd.c) -------------------------------------------------------
// 1 when the CPU has AVX2 and FMA (checked once) and vet_ops_simd (ops.h) has not turned the
// kernels off. The kernels below compute exactly what the scalar loops compute, bit for bit.
int vet_simd_avx2(void);
void vet_avx2_swiglu_forward(float *out, const float *gate, const float *up, size_t n);
// accumulate 1: dgate, dup +=; 0: written (=)
void vet_avx2_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                              const float *up, size_t n, int accumulate);
// The keep masks (all ones: kept) mask (4 * nq) of one row's columns [4*q0, 4*(q0+nq)): the bits
// of vet_dropout_keep4(seed, row_key, q, thr) (base/philox.h) for q = q0 .. q0+nq-1.
void vet_avx2_dropout_keep(int32_t *mask, uint64_t seed, uint64_t row_key, uint32_t q0, int nq,
                           uint32_t thr);
// y (C) = or += x * keep_scale where mask, else 0.
void vet_avx2_dropout_apply_row(float *y, const float *x, const int32_t *mask, float keep_scale, int C,
                                int accumulate);
// Attention's rows (ops_attention.c): exp(row - mx) in place and their sum in the lane order
// of vet_softmax_row; the max; backward's p = exp(p - L), dp = p * (dp - D) * scale.
float vet_avx2_exp_sum(float *row, int nv, float mx);
float vet_avx2_max(const float *row, int nv);
void vet_avx2_dsoftmax_row(float *p, float *dp, int nv, float L, float D, float scale);
// lanes[k] = the sum over c = k mod 8 of (double)a[c] * b[c] (* e[c] unless e is NULL).
void vet_avx2_dot_lanes(double lanes[8], const float *a, const float *b, const float *e, int n);

#endif
