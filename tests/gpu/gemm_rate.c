// gemm_rate — the bf16 GEMM rate this GPU reaches through vet's own GEMM (matmul_forward_bf16_cuda:
// bf16 inputs and weights, fp32 accumulation and output, cuBLAS underneath), at the shapes a 7B
// LoRA step runs: a batch of 4 x 512 tokens through LLaMA-7B's projections (q/k/v/o 4096 x 4096,
// gate/up 11008 x 4096, down 4096 x 11008) and one square 8192 GEMM. The MFU is against
// the datasheet's 989 TFLOP/s; this is the ceiling measured in the same run, so a benchmark's
// model FLOP/s can also be read against what the GEMMs themselves reach here.
//
//   gemm_rate [--size small|full] [--reps R]
//
// Prints `# gemm NxCxOC: T ms, R TFLOP/s` per shape, `# gemm best: R TFLOP/s`, then `ok gemm_rate`;
// `not ok gemm_rate: <why>` (exit 1) without a usable GPU. --size small (the CPU stand-in's
// rehearsal) runs the same code on shapes a CPU does in a moment. Inputs are random normal values
// (zeros would flatter the hardware: see docs/cuda.md).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/half.h"
#include "base/rng.h"
#include "kernels/host/device.h"
#include "kernels/ops_cuda.h"

typedef struct {
    int N, C, OC;
} shape;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

// A device buffer of n random bf16 values (normal, std 1), or NULL with err filled.
static uint16_t *random_bf16(vet_cuda *ctx, size_t n, vet_rng *rng, vet_err *err) {
    uint16_t *host = malloc(n * sizeof *host), *dev = NULL;
    if (!host) return vet_err_nomem(err, "out of memory"), NULL;
    for (size_t i = 0; i < n; i++) host[i] = vet_f32_to_bf16((float)vet_rng_normal(rng));
    if (vet_cuda_malloc((void **)&dev, n * sizeof *dev, err) < 0 || vet_cuda_upload(ctx, dev, host, n * sizeof *dev, err) < 0) {
        vet_cuda_mem_free(dev);
        dev = NULL;
    }
    free(host);
    return dev;
}

// Mean seconds of one GEMM of shape s after a warm-up, or -1 with err filled.
static double time_gemm(vet_cuda *ctx, shape s, int reps, vet_rng *rng, vet_err *err) {
    uint16_t *inp = random_bf16(ctx, (size_t)s.N * s.C, rng, err);
    uint16_t *w = inp ? random_bf16(ctx, (size_t)s.OC * s.C, rng, err) : NULL;
    float *out = NULL;
    double t = -1;
    if (w && vet_cuda_malloc((void **)&out, (size_t)s.N * s.OC * sizeof *out, err) == 0 &&
        matmul_forward_bf16_cuda(ctx, out, inp, w, NULL, s.N, s.C, s.OC, err) == 0 && vet_cuda_sync(ctx, err) == 0) {
        double t0 = now_s();
        int r = 0;
        while (r < reps && matmul_forward_bf16_cuda(ctx, out, inp, w, NULL, s.N, s.C, s.OC, err) == 0) r++;
        if (r == reps && vet_cuda_sync(ctx, err) == 0) t = (now_s() - t0) / reps;
    }
    vet_cuda_mem_free(inp), vet_cuda_mem_free(w), vet_cuda_mem_free(out);
    return t;
}

int main(int argc, char **argv) {
    const char *size = "full";
    int reps = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) size = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: gemm_rate [--size small|full] [--reps R]\n");
            return 2;
        }
    }
    if ((strcmp(size, "small") && strcmp(size, "full")) || reps < 1) {
        fprintf(stderr, "gemm_rate: --size small|full, --reps >= 1\n");
        return 2;
    }
    static const shape full[] = {{2048, 4096, 4096}, {2048, 4096, 11008}, {2048, 11008, 4096}, {8192, 8192, 8192}};
    static const shape small[] = {{64, 128, 128}, {64, 128, 384}, {64, 384, 128}, {128, 128, 128}};
    const shape *shapes = strcmp(size, "small") ? full : small;
    vet_err err;
    char why[512];
    if (!vet_cuda_available(why, sizeof why)) {
        printf("not ok gemm_rate: no usable GPU: %s\n", why);
        return 1;
    }
    vet_cuda *ctx = vet_cuda_new(0, &err);
    if (!ctx) {
        printf("not ok gemm_rate: %s\n", err.msg);
        return 1;
    }
    vet_rng rng;
    vet_rng_seed(&rng, 1);
    double best = 0;
    for (int i = 0; i < 4; i++) {
        shape s = shapes[i];
        double t = time_gemm(ctx, s, reps, &rng, &err);
        if (t < 0) {
            printf("not ok gemm_rate: %dx%dx%d: %s\n", s.N, s.C, s.OC, err.msg);
            vet_cuda_free(ctx);
            return 1;
        }
        double tflops = 2.0 * s.N * s.C * s.OC / t / 1e12;
        if (tflops > best) best = tflops;
        printf("# gemm %dx%dx%d: %.3f ms, %.1f TFLOP/s\n", s.N, s.C, s.OC, t * 1e3, tflops);
    }
    printf("# gemm best: %.1f TFLOP/s\n", best);
    printf("ok gemm_rate\n");
    vet_cuda_free(ctx);
    return 0;
}
