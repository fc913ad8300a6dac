// half.h — 16-bit floats <-> fp32, bit-exact, header only.
//
// bf16 is the top half of an fp32 (same exponent range, 7-bit mantissa); fp16 (IEEE binary16)
// has a 5-bit exponent (max 65504, subnormals down to 2^-24) and a 10-bit mantissa.
// Widening is exact. Narrowing rounds to nearest, ties to even (what PyTorch's .to() does),
// keeps inf, turns every nan into a quiet nan with its sign, flushes nothing: values too
// small for a normal fp16 become fp16 subnormals, too large become inf.
#ifndef VET_HALF_H
#define VET_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t vet_f32_bits(float f) { uint32_t x; memcpy(&x, &f, 4); return x; }
static inline float vet_bits_f32(uint32_t x) { float f; memcpy(&f, &x, 4); return f; }

static inline float vet_bf16_to_f32(uint16_t h) { return vet_bits_f32((uint32_t)h << 16); }

static inline uint16_t vet_f32_to_bf16(float f) {
    uint32_t x = vet_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)          // nan: keep sign and top payload, force quiet
        return (uint16_t)((x >> 16) | 0x0040u);
    x += 0x7fffu + ((x >> 16) & 1u);              // round to nearest, ties to even (may carry to inf: right)
    return (uint16_t)(x >> 16);
}

static inline float vet_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0) {                               // zero or subnormal: mant * 2^-24, exact in fp32
        float v = (float)mant * (1.0f / 16777216.0f);
        return vet_bits_f32(vet_f32_bits(v) | sign);
    }
    if (exp == 31) return vet_bits_f32(sign | 0x7f800000u | (mant << 13));   // inf / nan
    return vet_bits_f32(sign | ((exp + 112) << 23) | (mant << 13));          // rebias 15 -> 127
}

static inline uint16_t vet_f32_to_f16(float f) {
    uint32_t x = vet_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00u | (uint16_t)((ax >> 13) & 0x1ffu);  // quiet nan
    if (ax >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 (halfway past 65504) rounds to inf
    if (ax >= 0x38800000u) {                       // normal fp16 range: >= 2^-14
        uint32_t h = (ax >> 13) - ((127u - 15u) << 10);
        uint32_t rem = ax & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;   // a carry into the exponent is right
        return sign | (uint16_t)h;
    }
    // Subnormal fp16: result is round(value / 2^-24). value = mant24 * 2^(e-150).
    uint32_t e = ax >> 23;
    if (e < 102) return sign;                      // < 2^-25: rounds to zero (2^-25 itself ties to 0)
    uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;                      // 14..24
    uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) r++;   // r may reach 0x400: smallest normal, right
    return sign | (uint16_t)r;
}

#endif
