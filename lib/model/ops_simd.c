// ops_simd.c — AVX2 + FMA versions of the element-wise ops that dominate a small model's step
// outside GEMM (SwiGLU forward/backward, dropout's masks, attention's softmax rows, RMSNorm's
// sums), chosen at run time.
//
// Why by hand: GCC leaves SwiGLU's forward scalar (the clamps of vet_expf read as control
// flow) and does not vectorize dropout's Philox rounds (32x32 -> 64-bit products). A build for
// a generic x86-64 (NATIVE=0) would get neither AVX2 nor FMA from the compiler at all. These functions carry their own target attribute and run only where
// __builtin_cpu_supports says the CPU has AVX2 and FMA, so one binary is fast on AVX2-only
// machines (most cloud VMs and laptops) and still runs on older ones.
//
// Exactness: every kernel does the scalar code's operations in the scalar code's order (mul
// and add, never a fused multiply-add where the C code has none; IEEE division), so its
// results are bit-identical to ops_cpu.c's loops: tests/unit/test_ops.c compares them.
#include "model/ops_math.h"

#include <stddef.h>
#include <stdint.h>

#include "base/philox.h"

static int simd_off_;  // vet_ops_simd(0): the scalar loops everywhere (tests compare the two)

void vet_ops_simd(int on) { simd_off_ = !on; }

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

int vet_simd_avx2(void) {
    // Asked from inside OpenMP loops too: atomic, so a first call on two threads is no race.
    static int have = -1;
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    return h && !simd_off_;
}

#define AVX2 __attribute__((target("avx2,fma")))

// vet_expf (ops_math.h) on 8 lanes: the same operations in the same order.
AVX2 static inline __m256 expf8(__m256 x) {
    // max/min return their second operand when either is NaN: a NaN stays NaN, as in vet_expf
    x = _mm256_max_ps(_mm256_set1_ps(-87.3f), x);
    x = _mm256_min_ps(_mm256_set1_ps(88.7f), x);
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 fn = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), magic), magic);
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(fn, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(fn, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r), _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fn), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

// out[i] = g / (1 + exp(-g)) * up[i] for i in [0, n); the tail (n % 8) in scalar code.
AVX2 void vet_avx2_swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = expf8(_mm256_xor_ps(g, neg));
        __m256 o = _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i));
        _mm256_storeu_ps(out + i, o);
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + vet_expf(-gate[i])) * up[i];
}

// dup += dout * silu(g); dgate += dout * up * (s * (1 + g * (1 - s))), s = sigmoid(g); or,
// with accumulate 0, the same values written instead of added.
AVX2 void vet_avx2_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                                   const float *up, size_t n, int accumulate) {
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i), d = _mm256_loadu_ps(dout + i);
        __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, expf8(_mm256_xor_ps(g, neg))));
        __m256 vu = _mm256_mul_ps(d, _mm256_mul_ps(g, s));
        __m256 ds = _mm256_mul_ps(s, _mm256_add_ps(one, _mm256_mul_ps(g, _mm256_sub_ps(one, s))));
        __m256 vg = _mm256_mul_ps(_mm256_mul_ps(d, _mm256_loadu_ps(up + i)), ds);
        if (accumulate) {
            vu = _mm256_add_ps(_mm256_loadu_ps(dup + i), vu);
            vg = _mm256_add_ps(_mm256_loadu_ps(dgate + i), vg);
        }
        _mm256_storeu_ps(dup + i, vu);
        _mm256_storeu_ps(dgate + i, vg);
    }
    for (; i < n; i++) {
        float g = gate[i], s = 1.0f / (1.0f + vet_expf(-g));
        float vu = dout[i] * (g * s), vg = dout[i] * up[i] * (s * (1.0f + g * (1.0f - s)));
        dup[i] = accumulate ? dup[i] + vu : vu;
        dgate[i] = accumulate ? dgate[i] + vg : vg;
    }
}

// (hi, lo) of the eight 32x32 -> 64-bit products m * x[i]. _mm256_mul_epu32 multiplies the even
// 32-bit lanes (the low halves of the 64-bit lanes); the odd lanes go through a shift first.
AVX2 static inline void mulhilo8(__m256i x, __m256i m, __m256i *hi, __m256i *lo) {
    __m256i pe = _mm256_mul_epu32(x, m), po = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m);
    *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

// The ten rounds on two blocks of eight counters at once (x[0..3] and y[0..3]): two independent
// chains of multiplies, so one block's products fill the other's latency.
AVX2 static inline void philox_rounds16(__m256i x[4], __m256i y[4], uint64_t seed) {
    const __m256i m0 = _mm256_set1_epi32((int)VET_PHILOX_M0), m1 = _mm256_set1_epi32((int)VET_PHILOX_M1);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        if (round > 0) k0 += VET_PHILOX_W0, k1 += VET_PHILOX_W1;
        const __m256i kv0 = _mm256_set1_epi32((int)k0), kv1 = _mm256_set1_epi32((int)k1);
        __m256i hx0, lx0, hx1, lx1, hy0, ly0, hy1, ly1;
        mulhilo8(x[0], m0, &hx0, &lx0);
        mulhilo8(y[0], m0, &hy0, &ly0);
        mulhilo8(x[2], m1, &hx1, &lx1);
        mulhilo8(y[2], m1, &hy1, &ly1);
        x[0] = _mm256_xor_si256(_mm256_xor_si256(hx1, x[1]), kv0), x[1] = lx1;
        y[0] = _mm256_xor_si256(_mm256_xor_si256(hy1, y[1]), kv0), y[1] = ly1;
        x[2] = _mm256_xor_si256(_mm256_xor_si256(hx0, x[3]), kv1), x[3] = lx0;
        y[2] = _mm256_xor_si256(_mm256_xor_si256(hy0, y[3]), kv1), y[3] = ly0;
    }
}

// Eight counters' output words x[0..3] (lane i: counter i) as keep masks in column order:
// o[4i + j] = word j of counter i kept. After the unpacks r0 holds counters 0 | 4, r1 1 | 5,
// r2 2 | 6, r3 3 | 7; the permutes put them in order.
AVX2 static inline void keep_store32(int32_t *o, const __m256i x[4], __m256i below) {
    __m256i k0 = _mm256_cmpgt_epi32(_mm256_srli_epi32(x[0], 8), below);
    __m256i k1 = _mm256_cmpgt_epi32(_mm256_srli_epi32(x[1], 8), below);
    __m256i k2 = _mm256_cmpgt_epi32(_mm256_srli_epi32(x[2], 8), below);
    __m256i k3 = _mm256_cmpgt_epi32(_mm256_srli_epi32(x[3], 8), below);
    __m256i a = _mm256_unpacklo_epi32(k0, k1), b = _mm256_unpackhi_epi32(k0, k1);
    __m256i c = _mm256_unpacklo_epi32(k2, k3), d = _mm256_unpackhi_epi32(k2, k3);
    __m256i r0 = _mm256_unpacklo_epi64(a, c), r1 = _mm256_unpackhi_epi64(a, c);
    __m256i r2 = _mm256_unpacklo_epi64(b, d), r3 = _mm256_unpackhi_epi64(b, d);
    _mm256_storeu_si256((__m256i *)(o + 0), _mm256_permute2x128_si256(r0, r1, 0x20));
    _mm256_storeu_si256((__m256i *)(o + 8), _mm256_permute2x128_si256(r2, r3, 0x20));
    _mm256_storeu_si256((__m256i *)(o + 16), _mm256_permute2x128_si256(r0, r1, 0x31));
    _mm256_storeu_si256((__m256i *)(o + 24), _mm256_permute2x128_si256(r2, r3, 0x31));
}

// Dropout's keep masks of one row, columns [4*q0, 4*(q0+nq)): Philox4x32-10 counters
// (q, row key, 0) sixteen at a time in the lanes of two blocks, the rounds of base/philox.h,
// then the output words transposed into column order. mask[c] is all ones where
// vet_dropout_keep4 keeps column 4*q0 + c. nq % 16 != 0: the last counters one at a time.
AVX2 void vet_avx2_dropout_keep(int32_t *mask, uint64_t seed, uint64_t row_key, uint32_t q0, int nq,
                                uint32_t thr) {
    const __m256i below = _mm256_set1_epi32((int)thr - 1);  // k < 2^24: a signed compare is exact
    const __m256i lo = _mm256_set1_epi32((int)(uint32_t)row_key), hi = _mm256_set1_epi32((int)(uint32_t)(row_key >> 32));
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int q = 0;
    for (; q + 16 <= nq; q += 16) {
        __m256i x[4] = {_mm256_add_epi32(_mm256_set1_epi32((int)(q0 + (uint32_t)q)), lane), lo, hi,
                        _mm256_setzero_si256()};
        __m256i y[4] = {_mm256_add_epi32(_mm256_set1_epi32((int)(q0 + (uint32_t)q + 8u)), lane), lo, hi,
                        _mm256_setzero_si256()};
        philox_rounds16(x, y, seed);
        keep_store32(mask + 4 * q, x, below);
        keep_store32(mask + 4 * q + 32, y, below);
    }
    for (; q < nq; q++) {
        unsigned bits = vet_dropout_keep4(seed, row_key, q0 + (uint32_t)q, thr);
        for (int j = 0; j < 4; j++) mask[4 * q + j] = (bits >> j) & 1u ? -1 : 0;
    }
}

// y = (x * keep_scale) & mask, or y += that: the kept elements as the scalar loop computes
// them, the dropped ones +0 exactly.
AVX2 void vet_avx2_dropout_apply_row(float *y, const float *x, const int32_t *mask, float keep_scale, int C,
                                     int accumulate) {
    const __m256 ks = _mm256_set1_ps(keep_scale);
    int c = 0;
    for (; c + 8 <= C; c += 8) {
        __m256 v = _mm256_and_ps(_mm256_mul_ps(_mm256_loadu_ps(x + c), ks),
                                 _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(mask + c))));
        if (accumulate) v = _mm256_add_ps(_mm256_loadu_ps(y + c), v);
        _mm256_storeu_ps(y + c, v);
    }
    for (; c < C; c++) {
        float v = mask[c] ? x[c] * keep_scale : 0.0f;
        y[c] = accumulate ? y[c] + v : v;
    }
}

// Attention's softmax of one row of scores (ops_attention.c, vet_softmax_row): the sum of the
// exponentials in 8 lanes (lane k takes j = k mod 8) added up as ((0+4)+(2+6))+((1+5)+(3+7)),
// the order the scalar version uses too. Returns the sum; row[0..nv) holds exp(row - mx).
AVX2 float vet_avx2_exp_sum(float *row, int nv, float mx) {
    const __m256 m = _mm256_set1_ps(mx);
    __m256 acc = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= nv; j += 8) {
        __m256 e = expf8(_mm256_sub_ps(_mm256_loadu_ps(row + j), m));
        _mm256_storeu_ps(row + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (j < nv) {  // the tail: lanes past nv load and add +0 (acc + 0 == acc, acc >= +0)
        __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        __m256i in = _mm256_cmpgt_epi32(_mm256_set1_epi32(nv - j), lane);
        __m256 e = expf8(_mm256_sub_ps(_mm256_maskload_ps(row + j, in), m));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(in));
        _mm256_maskstore_ps(row + j, in, e);
        acc = _mm256_add_ps(acc, e);
    }
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));  // (0+4, 1+5, 2+6, 3+7)
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));                                     // ((0+4)+(2+6), (1+5)+(3+7))
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

// The largest of row[0..nv) (nv >= 1).
AVX2 float vet_avx2_max(const float *row, int nv) {
    float mx = row[0];
    int j = 0;
    if (nv >= 8) {
        __m256 m = _mm256_loadu_ps(row);
        for (j = 8; j + 8 <= nv; j += 8) m = _mm256_max_ps(_mm256_loadu_ps(row + j), m);
        __m128 b = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        b = _mm_max_ps(b, _mm_movehl_ps(b, b));
        mx = _mm_cvtss_f32(_mm_max_ss(b, _mm_movehdup_ps(b)));
    }
    for (; j < nv; j++) mx = row[j] > mx ? row[j] : mx;
    return mx;
}

// Attention backward's row: p = exp(p - L); dp = p * (dp - D) * scale, for j < nv.
AVX2 void vet_avx2_dsoftmax_row(float *p, float *dp, int nv, float L, float D, float scale) {
    const __m256 vl = _mm256_set1_ps(L), vd = _mm256_set1_ps(D), vs = _mm256_set1_ps(scale);
    int j = 0;
    for (; j + 8 <= nv; j += 8) {
        __m256 e = expf8(_mm256_sub_ps(_mm256_loadu_ps(p + j), vl));
        _mm256_storeu_ps(p + j, e);
        _mm256_storeu_ps(dp + j, _mm256_mul_ps(_mm256_mul_ps(e, _mm256_sub_ps(_mm256_loadu_ps(dp + j), vd)), vs));
    }
    for (; j < nv; j++) {
        p[j] = vet_expf(p[j] - L);
        dp[j] = p[j] * (dp[j] - D) * scale;
    }
}

// The sum over c of (double)a[c] * b[c] (* e[c] when e is given) in 8 double lanes, lane k
// taking c = k mod 8, into lanes[8] (rmsnorm's sums of squares and its backward's dot).
// Each product of two floats is exact in double; the lanes are combined by the caller.
AVX2 void vet_avx2_dot_lanes(double lanes[8], const float *a, const float *b, const float *e, int n) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256 va = _mm256_loadu_ps(a + c), vb = _mm256_loadu_ps(b + c);
        __m256d plo = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(va)), _mm256_cvtps_pd(_mm256_castps256_ps128(vb)));
        __m256d phi = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(va, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(vb, 1)));
        if (e) {
            __m256 ve = _mm256_loadu_ps(e + c);
            plo = _mm256_mul_pd(plo, _mm256_cvtps_pd(_mm256_castps256_ps128(ve)));
            phi = _mm256_mul_pd(phi, _mm256_cvtps_pd(_mm256_extractf128_ps(ve, 1)));
        }
        lo = _mm256_add_pd(lo, plo);
        hi = _mm256_add_pd(hi, phi);
    }
    _mm256_storeu_pd(lanes, lo);
    _mm256_storeu_pd(lanes + 4, hi);
    for (; c < n; c++) lanes[c & 7] += e ? (double)a[c] * b[c] * e[c] : (double)a[c] * b[c];
}

#else  // not x86-64 with GCC or clang: the scalar loops only

int vet_simd_avx2(void) { return 0; }
void vet_avx2_swiglu_forward(float *out, const float *gate, const float *up, size_t n) {}
void vet_avx2_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                              const float *up, size_t n, int accumulate) {}
void vet_avx2_dropout_keep(int32_t *mask, uint64_t seed, uint64_t row_key, uint32_t q0, int nq,
                           uint32_t thr) {}
void vet_avx2_dropout_apply_row(float *y, const float *x, const int32_t *mask, float keep_scale, int C,
                                int accumulate) {}
float vet_avx2_exp_sum(float *row, int nv, float mx) { return 0.0f; }
float vet_avx2_max(const float *row, int nv) { return 0.0f; }
void vet_avx2_dsoftmax_row(float *p, float *dp, int nv, float L, float D, float scale) {}
void vet_avx2_dot_lanes(double lanes[8], const float *a, const float *b, const float *e, int n) {}

#endif
