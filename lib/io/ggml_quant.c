// ggml_quant.c — F16 and Q8_0 rows (ggml_quant.h).
#include "io/ggml_quant.h"

#include <math.h>
#include <string.h>

#include "base/half.h"

int vet_ggml_q8_0_row(uint8_t *dst, const float *x, int64_t n) {
    for (int64_t b = 0; b < n / VET_Q8_0_BLOCK; b++, x += VET_Q8_0_BLOCK, dst += VET_Q8_0_BLOCK_BYTES) {
        float amax = 0.0f;
        for (int i = 0; i < VET_Q8_0_BLOCK; i++) {
            if (!isfinite(x[i])) return -1;
            float a = fabsf(x[i]);
            if (a > amax) amax = a;
        }
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;   // as ggml: the fp32 d, not its f16 rounding
        uint16_t h = vet_f32_to_f16(d);
        if ((h & 0x7c00u) == 0x7c00u) return -1;  // the scale does not fit in f16
        memcpy(dst, &h, 2);
        for (int i = 0; i < VET_Q8_0_BLOCK; i++) dst[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
    }
    return 0;
}

void vet_ggml_q8_0_dequant_row(float *y, const uint8_t *src, int64_t n) {
    for (int64_t b = 0; b < n / VET_Q8_0_BLOCK; b++, y += VET_Q8_0_BLOCK, src += VET_Q8_0_BLOCK_BYTES) {
        uint16_t h;
        memcpy(&h, src, 2);
        float d = vet_f16_to_f32(h);
        for (int i = 0; i < VET_Q8_0_BLOCK; i++) y[i] = d * (float)(int8_t)src[2 + i];
    }
}

int vet_ggml_f16_row(uint8_t *dst, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return -1;
        uint16_t h = vet_f32_to_f16(x[i]);
        if ((h & 0x7c00u) == 0x7c00u) return -1;  // rounded to inf: beyond 65504
        memcpy(dst + 2 * i, &h, 2);
    }
    return 0;
}
