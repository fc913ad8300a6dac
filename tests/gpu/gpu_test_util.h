// gpu_test_util.h — what tests/gpu/test_gpu_model.c and tests/gpu/test_gpu_infer.c share:
// the device (opened once by gpu_test_open, or the reason there is none), the tiny model
// shapes, the error measure, the host round trip of quantized weights and the plan's byte
// count of quantized matrices.
//
// A header of static definitions, not a .c: mk/gpu.mk builds every tests/gpu/*.c as a test
// program of its own, and each test is one translation unit.
#ifndef VET_GPU_TEST_UTIL_H
#define VET_GPU_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/ops_cuda.h"
#include "../unit/check.h"
#include "../unit/tiny_models.h"
#include "kernels/host/device.h"
#include "kernels/host/gpu_model.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/quant.h"

static vet_cuda *ctx;       // NULL: no usable device
static char no_gpu[512];    // why

// LLaMA: dim 32, hidden 48, 4 heads / 2 kv heads of 8, vocab 61. Qwen2: 6 heads / 2 kv heads
// of 6 (head_dim not a power of two), dim 36, vocab 53, tied embeddings, q/k/v biases.
static const tiny_shape LLAMA = {32, 48, 4, 2, 8, 61, 64, 64, 500.0f, 10.0f};
static const tiny_shape QWEN = {36, 56, 6, 2, 6, 53, 64, 64, 500.0f, 10.0f};

// Opens device 0 into ctx, or says in no_gpu why there is none (the tests then `skip`).
static inline void gpu_test_open(void) {
    vet_err err;
    if (!vet_cuda_available(no_gpu, sizeof no_gpu)) return;
    ctx = vet_cuda_new(0, &err);
    if (!ctx) snprintf(no_gpu, sizeof no_gpu, "%s", err.msg);
    char name[256] = "";
    if (ctx && vet_cuda_device_name(0, name, sizeof name, &err) == 0) printf("# device: %s\n", name);
}

// max |got - want| / max |want| (as tests/gpu/op_parity.c); a nan counts as infinitely wrong.
static inline double max_rel(const float *got, const float *want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= num)) num = d;  // nan too
        if (fabs(want[i]) > den) den = fabs(want[i]);
    }
    return num / (den > 0 ? den : 1.0);
}

// The model's projection matrices replaced by their host round trip (lib/model/quant.c: quantize,
// dequantize; qflag VET_GPU_INT8 or VET_GPU_NF4), one layer's matrix at a time as the GPU
// model and GPU inference store them.
static inline void roundtrip_weights(vet_model *m, unsigned qflag) {
    const vet_weights *w = &m->w;
    float *host[VET_LORA_N_TARGETS] = {w->wq, w->wk, w->wv, w->wo, w->wgate, w->wup, w->wdown};
    vet_err err;
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        int out, in;
        vet_lora_dims(&m->cfg, t, &out, &in);
        size_t n = (size_t)out * in;
        void *q = malloc(2 * n + 1);  // nf4: codes and absmax bytes; int8: n
        float *s = malloc((n + 1) * sizeof(float));
        for (int l = 0; l < m->cfg.n_layers; l++) {
            float *x = host[t] + l * n;
            if (qflag == VET_GPU_INT8) {
                CHECK(vet_quant_int8(q, s, x, out, in, &err) == 0);
                vet_dequant_int8(x, q, s, out, in);
            } else {
                CHECK(vet_quant_nf4_dq(q, s, x, n, &err) == 0);
                vet_dequant_nf4_dq(x, q, s, n);
            }
        }
        free(q), free(s);
    }
}

// A device buffer's bytes as the plans count them: rounded up to 256.
static inline size_t plan_aligned(size_t b) { return (b + 255) / 256 * 256; }

// The plan's bytes of the 7 projection matrices of c, each stored as one buffer of all layers
// (and a buffer of its scales): 16-bit, int8 (a fp32 scale per row) and nf4 (4-bit codes, an
// int8 absmax per 64, a partial last block rounding up; fp32 mean and scale per 256 blocks); *most: the largest matrix's element count.
typedef struct {
    size_t b16, b8, b4, most;
} matrix_bytes;
static inline matrix_bytes plan_matrix_bytes(const vet_config *c) {
    matrix_bytes r = {0, 0, 0, 0};
    size_t L = c->n_layers;
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        int out, in;
        vet_lora_dims(c, t, &out, &in);
        size_t n = (size_t)out * in;
        r.b16 += plan_aligned(L * n * 2);
        r.b8 += plan_aligned(L * n) + plan_aligned(L * out * 4);
        size_t blocks = (n + 63) / 64;  // nf4, double quantized: codes + an int8 absmax per block,
        r.b4 += plan_aligned(L * ((n + 1) / 2 + blocks)) +  // the mean and a scale per 256 blocks
                plan_aligned(L * (1 + (blocks + 255) / 256) * 4);
        r.most = n > r.most ? n : r.most;
    }
    return r;
}

#endif
