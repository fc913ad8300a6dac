// test_quant_unpack.cu — kernels/quant_unpack.cuh, the bit layout of the packed decode kernel's
// loads, on the CPU (compiled by nvcc as host code; built and run where nvcc is, as in CI): for
// random bytes, element j of each loaded word is the element lib/model/quant.h's layout puts
// there (int8 bytes in order, nf4's high nibble first, bf16 halves low first), read the way the
// kernel reads it: the word loaded from memory as the device would (little-endian memcpy).
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "base/half.h"
#include "kernels/quant_unpack.cuh"
#include "model/quant.h"

static unsigned rnd_state = 12345;
static unsigned rnd(void) { return rnd_state = rnd_state * 1664525u + 1013904223u; }

static void test_int8(void) {
    int bad = 0;
    for (int t = 0; t < 1000; t++) {
        int8_t bytes[8];
        for (int j = 0; j < 8; j++) bytes[j] = (int8_t)(rnd() >> 24);
        uint2 w;
        memcpy(&w, bytes, 8);  // what an 8-byte load of the group gives
        for (int j = 0; j < 8; j++) bad += unpack_int8(w, j) != bytes[j];
    }
    CHECK(bad == 0);
}

static void test_nf4(void) {
    int bad = 0;
    for (int t = 0; t < 1000; t++) {
        uint8_t codes[4];  // 8 codes of a group starting at an even element
        for (int k = 0; k < 4; k++) codes[k] = (uint8_t)(rnd() >> 24);
        unsigned w;
        memcpy(&w, codes, 4);
        for (int j = 0; j < 8; j++) bad += (int)unpack_nf4(w, j) != vet_nf4_get(codes, (size_t)j);
    }
    CHECK(bad == 0);
    // a group inside a row: element 8g + j of the byte array
    uint8_t row[64];
    for (int k = 0; k < 64; k++) row[k] = (uint8_t)(rnd() >> 24);
    for (int g = 0; g < 16; g++) {
        unsigned w;
        memcpy(&w, row + 4 * g, 4);
        for (int j = 0; j < 8; j++) bad += (int)unpack_nf4(w, j) != vet_nf4_get(row, (size_t)(8 * g + j));
    }
    CHECK(bad == 0);
}

static void test_bf16(void) {
    int bad = 0;
    for (int t = 0; t < 1000; t++) {
        uint16_t h[8];
        for (int j = 0; j < 8; j++) h[j] = (uint16_t)(rnd() >> 16);
        uint4 p;
        memcpy(&p, h, 16);
        for (int j = 0; j < 8; j++) {
            float got, want = vet_bf16_to_f32(h[j]);
            unsigned bits = unpack_bf16_bits(p, j);
            memcpy(&got, &bits, 4);
            bad += memcmp(&got, &want, 4) != 0;
        }
    }
    CHECK(bad == 0);
}

int main(void) {
    RUN(test_int8);
    RUN(test_nf4);
    RUN(test_bf16);
    CHECK_EXIT();
}
