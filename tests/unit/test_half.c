// test_half.c — lib/base/half.h's fp16 conversions: round to nearest even, range edges, subnormals,
// inf and nan, and an exhaustive round trip of every fp16 value (what f32_to_f16_cuda and the
// CPU stand-in must match bit for bit).
#include <math.h>

#include "check.h"
#include "base/half.h"

static void test_f16_exact_values(void) {
    CHECK(vet_f32_to_f16(0.0f) == 0x0000);
    CHECK(vet_f32_to_f16(-0.0f) == 0x8000);
    CHECK(vet_f32_to_f16(1.0f) == 0x3c00);
    CHECK(vet_f32_to_f16(-2.0f) == 0xc000);
    CHECK(vet_f32_to_f16(65504.0f) == 0x7bff);          // the largest finite fp16
    CHECK(vet_f32_to_f16(0x1p-14f) == 0x0400);          // the smallest normal
    CHECK(vet_f32_to_f16(0x1p-24f) == 0x0001);          // the smallest subnormal
    CHECK(vet_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(vet_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(vet_f16_to_f32(0x83ff) == -0x3ffp-24f);        // the largest subnormal, negative
}

static void test_f16_round_to_nearest_even(void) {
    // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1)
    CHECK(vet_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);
    // 1 + 3*2^-11 lies halfway between 1 + 2^-10 (odd) and 1 + 2^-9: up to even
    CHECK(vet_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02);
    CHECK(vet_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01);  // just past the tie: up
    // overflow: 65519 rounds down to 65504, 65520 (the tie) to inf (even), larger to inf
    CHECK(vet_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(vet_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(vet_f32_to_f16(-1e30f) == 0xfc00);
    // subnormals: 2^-25 is the tie between 0 and 2^-24 (goes to 0), 1.5*2^-24 to 2*2^-24
    CHECK(vet_f32_to_f16(0x1p-25f) == 0x0000);
    CHECK(vet_f32_to_f16(0x1.000002p-25f) == 0x0001);
    CHECK(vet_f32_to_f16(1.5f * 0x1p-24f) == 0x0002);
    CHECK(vet_f32_to_f16(2.5f * 0x1p-24f) == 0x0002);
    CHECK(vet_f32_to_f16(1e-10f) == 0x0000);
    // the largest subnormal rounding up into the smallest normal
    CHECK(vet_f32_to_f16(0x1p-14f - 0x1p-26f) == 0x0400);
}

static void test_f16_inf_nan(void) {
    CHECK(vet_f32_to_f16(INFINITY) == 0x7c00);
    CHECK(vet_f32_to_f16(-INFINITY) == 0xfc00);
    uint16_t n = vet_f32_to_f16(NAN);
    CHECK((n & 0x7c00) == 0x7c00 && (n & 0x03ff) != 0 && (n & 0x0200));  // a quiet nan
    CHECK(isnan(vet_f16_to_f32(n)));
    CHECK(isinf(vet_f16_to_f32(0xfc00)) && vet_f16_to_f32(0xfc00) < 0);
}

// Every fp16 bit pattern widens exactly and narrows back to itself (nan: to a nan).
static void test_f16_round_trip_all(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = vet_f16_to_f32((uint16_t)h);
        uint16_t back = vet_f32_to_f16(f);
        int is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan ? !((back & 0x7c00) == 0x7c00 && (back & 0x3ff)) : back != h) bad++;
    }
    CHECK(bad == 0);
    // and against the nearest of the two neighbours for values between fp16 numbers
    int wrong = 0;
    for (uint32_t h = 0x0000; h < 0x7bff; h += 7) {
        float lo = vet_f16_to_f32((uint16_t)h), hi = vet_f16_to_f32((uint16_t)(h + 1));
        float a = lo + (hi - lo) * 0.25f, b = lo + (hi - lo) * 0.75f;
        wrong += vet_f32_to_f16(a) != h || vet_f32_to_f16(b) != h + 1;
    }
    CHECK(wrong == 0);
}

int main(void) {
    RUN(test_f16_exact_values);
    RUN(test_f16_round_to_nearest_even);
    RUN(test_f16_inf_nan);
    RUN(test_f16_round_trip_all);
    CHECK_EXIT();
}
