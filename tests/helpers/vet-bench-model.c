// vet-bench-model — times forward+backward of a preset model with LoRA on random tokens.
//
//   vet-bench-model PRESET [--batch B] [--seq T] [--sample S] [--rank R] [--targets q,k,v,o]
//                          [--threads N] [--steps K] [--vocab V] [--full] [--shape]
//
// Rows of T tokens hold samples of S tokens each (S = T: one sample per row). Every position
// but each sample's last carries a target. Prints one line of key=value pairs: tokens/s,
// seconds per step, achieved GFLOP/s (matmul FLOPs counted as 2*m*n*k: forward 1x, backward
// 2x for the frozen projections' inputs only, plus attention), and the measured peak of one
// large GEMM (vet_sgemm: cblas_sgemm split over the threads) on this machine.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/config.h"
#include "model/model.h"
#include "model/ops.h"
#include "base/rng.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double sgemm_peak(void) {
    int n = 1024;
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4), *c = malloc((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = 0.001f * (float)(i % 97);
    double best = 1e30;
    for (int k = 0; k < 5; k++) {
        double t0 = now();
        vet_sgemm(0, 1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);  // as the model calls it
        double t = now() - t0;
        if (t < best) best = t;
    }
    free(a); free(b); free(c);
    return 2.0 * n * n * n / best / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: vet-bench-model PRESET [--batch B] [--seq T] [--sample S] [--rank R] "
                        "[--targets q,k,v,o] [--threads N] [--steps K] [--vocab V] [--full] [--shape]\n");
        return 2;
    }
    const char *preset = argv[1], *targets = "q,k,v,o";
    int B = 4, T = 512, S = 128, R = 16, threads = 2, steps = 5, vocab = 0, full = 0, shape = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";
        if (!strcmp(a, "--batch")) B = atoi(v), i++;
        else if (!strcmp(a, "--seq")) T = atoi(v), i++;
        else if (!strcmp(a, "--sample")) S = atoi(v), i++;
        else if (!strcmp(a, "--rank")) R = atoi(v), i++;
        else if (!strcmp(a, "--targets")) targets = v, i++;
        else if (!strcmp(a, "--threads")) threads = atoi(v), i++;
        else if (!strcmp(a, "--steps")) steps = atoi(v), i++;
        else if (!strcmp(a, "--vocab")) vocab = atoi(v), i++;
        else if (!strcmp(a, "--full")) full = 1;
        else if (!strcmp(a, "--shape")) shape = 1;
        else { fprintf(stderr, "vet-bench-model: unknown option %s\n", a); return 2; }
    }
    if (S <= 0 || S > T) S = T;
    vet_set_threads(threads);
    vet_err err;
    vet_config cfg;
    if (vet_config_preset(&cfg, preset, &err)) { fprintf(stderr, "vet-bench-model: %s\n", err.msg); return 1; }
    if (vocab > 0) vet_config_set_vocab(&cfg, vocab);
    if (shape) {  // the preset as bench_model.py's arguments
        printf("--dim %d --hidden %d --layers %d --heads %d --kv-heads %d --vocab %d\n", cfg.dim,
               cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size);
        return 0;
    }
    vet_model m;
    unsigned mask = 0;
    if (vet_model_init(&m, &cfg, 1, &err) ||
        (!full && (vet_lora_parse_targets(targets, &mask, &err) ||
                   vet_model_add_lora(&m, R, 2.0f * R, 0.0f, 0, mask, 2, &err)))) {
        fprintf(stderr, "vet-bench-model: %s\n", err.msg);
        return 1;
    }
    // rows of random tokens, samples of S tokens back to back
    int ns = (T + S - 1) / S;
    int32_t *tok = malloc((size_t)B * T * 4), *tgt = malloc((size_t)B * T * 4), *st = malloc((size_t)ns * 4);
    vet_row *rows = malloc((size_t)B * sizeof *rows);
    vet_rng rng;
    vet_rng_seed(&rng, 3);
    for (int s = 0; s < ns; s++) st[s] = s * S;
    for (int b = 0; b < B; b++) {
        int32_t *t = tok + (size_t)b * T, *g = tgt + (size_t)b * T;
        for (int i = 0; i < T; i++) t[i] = (int32_t)vet_rng_below(&rng, cfg.vocab_size);
        for (int i = 0; i < T; i++) g[i] = (i + 1) % S == 0 || i + 1 == T ? -1 : t[i + 1];
        rows[b] = (vet_row){t, g, st, T, ns};
    }
    vet_batch batch;
    vet_acts *acts;
    if (vet_batch_from_rows(&batch, rows, B, cfg.vocab_size, &err) ||
        !(acts = vet_acts_new(&m, B, T, &err))) {
        fprintf(stderr, "vet-bench-model: %s\n", err.msg);
        return 1;
    }
    size_t ng = full ? m.n_w : m.n_lora;
    float *grads = calloc(ng, sizeof(float));
    double best = 1e30, loss = 0;
    for (int k = 0; k < steps + 1; k++) {  // the first is warm-up
        double t0 = now(), ls;
        int nt;
        if (vet_model_forward(&m, acts, &batch, NULL, &ls, &nt, 1, (uint64_t)k, &err) ||
            vet_model_backward(&m, acts, &batch, 1.0f / nt, full ? VET_TRAIN_FULL : VET_TRAIN_LORA, grads, &err)) {
            fprintf(stderr, "vet-bench-model: %s\n", err.msg);
            return 1;
        }
        double t = now() - t0;
        if (k > 0 && t < best) best = t;
        loss = ls / nt;
    }
    // FLOPs: per token, forward 2*P_matmul; backward 2*P (input grads) [+ 2*P weight grads in full]
    double C = cfg.dim, F = cfg.hidden_dim, Q = (double)cfg.n_heads * cfg.head_dim;
    double KV = (double)cfg.n_kv_heads * cfg.head_dim, L = cfg.n_layers, V = cfg.vocab_size;
    double N = (double)B * T, ntgt = vet_batch_n_targets(&batch);
    double p_layer = C * Q + 2 * C * KV + Q * C + 3 * C * F;
    double fwd = 2 * N * L * p_layer + 2 * ntgt * V * C;
    double bwd = 2 * N * L * p_layer + 2 * ntgt * V * C * 0;  // frozen lm_head: no dlnf GEMM twice
    double fused = 2 * ntgt * V * C;                         // loss gradient at lnf (in forward)
    double att = 4.0 * B * ns * (S * (S + 1) / 2.0) * Q * L;   // QK^T and PV over the causal blocks
    double total = fwd + fused + bwd + att * (1 + 2.5);
    if (full) total += 2 * N * L * p_layer + 2 * ntgt * V * C * 2;
    printf("preset=%s mode=%s batch=%d seq=%d sample=%d rank=%d threads=%d params=%lld "
           "step_s=%.4f tokens_per_s=%.0f gflops=%.2f sgemm_peak_gflops=%.1f loss=%.4f\n",
           preset, full ? "full" : "lora", B, T, S, R, threads, (long long)vet_config_n_params(&cfg),
           best, N / best, total / best / 1e9, sgemm_peak(), loss);
    free(tok); free(tgt); free(st); free(rows); free(grads);
    vet_acts_free(acts);
    vet_batch_free(&batch);
    vet_model_free(&m);
    return 0;
}
