// test_gpu_infer.c — kernels/host/gpu_infer.c against the CPU's KV-cache forward (lib/generate/decoder.c).
//
// Tiny random models (LLaMA with GQA; Qwen2 with q/k/v biases and tied embeddings). Three
// prompts of different lengths prefilled into three slots, then decode steps over all slots
// (in a shuffled order), over a subset, and one slot alone: every logits row within TOL of the
// CPU's (fp32), or of the CPU's within bf16 / fp16 tolerances (16-bit weights; fp16 also on a
// float16 checkpoint, where it keeps the CPU's greedy tokens); the memory plan, and
// the refusals (LoRA not merged, a plan over the limit, a full cache, bad slots); int8 / NF4
// weights: logits bit-identical to the unquantized model on the host-dequantized weights,
// and close to the CPU's.
//
// Built two ways, like test_gpu_model: against the real kernels (mk/gpu.mk,
// $(BUILD)/tests/gpu/test_gpu_infer; `skip` without a GPU) and against the CPU stand-in of
// kernels/ops_cuda.h (mk/gpustub.mk, build/standin/test_gpu_infer, ASan + UBSan), which
// tests/e2e/test_generate_device.sh runs on every machine.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test_util.h"  // ctx, no_gpu, LLAMA, QWEN, max_rel, roundtrip_weights, ...
#include "kernels/host/gpu_infer.h"
#include "base/half.h"
#include "generate/decoder.h"
#include "model/ops.h"

#define TOL 1e-4      // fp32 logits after two layers: cuBLAS vs the CPU's summation order
#define TOL_BF16 3e-2 // bf16 weights and GEMM inputs
// fp16 weights and GEMM inputs: fp16 keeps 10 mantissa bits to bf16's 7, so its rounding error
// is 8x smaller; bf16's tolerance / 8, rounded down: 3.5e-3. It lies under what bf16 itself
// measures on these models (1.4e-2, 1.55e-2), so fp16 silently stored or computed as bf16
// fails; and an fp16 run must show at least TOL's error (the rounding happened: not fp32).
#define TOL_FP16 3.5e-3
// A bf16 KV cache with fp32 weights and GEMMs: each key and value rounded once to bf16, a
// relative error of at most 2^-9 (~0.2%) per element. The attention output is a convex
// combination of the rounded values (error <= 2^-9 of the largest), but the scores move by up
// to 2^-9 |q||k|, and these test models' matrices (10x the init scale; Qwen's k biases) make
// scores of tens, so softmax weights move by a few %, then two layers amplify it: measured
// 7.1e-3 (LLaMA) and 1.9e-2 (Qwen). The bound is bf16 weights' TOL_BF16 (3e-2, which rounds
// every GEMM input and weight besides). Lower bound TOL: an fp32 cache measures < 1e-6, so a
// cache silently kept fp32 fails; a cache read with the wrong width is test_kv16_ops's
// planted misread (error ~1-2, far over any bound).
#define TOL_KV_BF16 TOL_BF16

static int argmax(const float *x, int V) {
    int b = 0;
    for (int v = 1; v < V; v++)
        if (x[v] > x[b]) b = v;
    return b;
}

// Prefill three prompts, then steps: all slots (shuffled), a subset, one alone; each logits row
// against the CPU's. Returns the worst relative error; *ok 0 when a call failed.
static int batched_prefill;  // parity: the three prompts in one vet_gpu_infer_prefill_batch

static double parity(int variant, unsigned flags, int *ok) {
    const tiny_shape *s = variant == VAR_QWEN_TIED ? &QWEN : &LLAMA;
    vet_model m;
    tiny_model(&m, variant, s, 11);
    const int V = m.cfg.vocab_size, S = 3, max_len = 40;
    vet_err err;
    vet_infer *cpu = vet_infer_new(&m, S, &err);
    vet_gpu_opts o = {.flags = flags};
    vet_gpu_infer *g = vet_gpu_infer_new(ctx, &m, S, max_len, &o, &err);
    *ok = cpu && g;
    if (!g) printf("# %s\n", err.msg);
    double worst = 0;
    float *a = malloc((size_t)S * V * sizeof(float)), *b = malloc((size_t)S * V * sizeof(float));
    int32_t prompts[3][13];
    int lens[3] = {7, 13, 1};
    vet_rng r;
    vet_rng_seed(&r, 5);
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < lens[p]; i++) prompts[p][i] = (int32_t)vet_rng_below(&r, (uint64_t)V);
    int32_t next[3];
    if (batched_prefill && *ok) {  // slots 2, 0, 1: logits row i is slot (i + 2) % 3's
        int sl[3] = {2, 0, 1}, n3[3] = {lens[2], lens[0], lens[1]};
        const int32_t *ids[3] = {prompts[2], prompts[0], prompts[1]};
        *ok = vet_gpu_infer_prefill_batch(g, sl, ids, n3, 3, b, NULL, &err) == 0;
        if (!*ok) printf("# %s\n", err.msg);
    }
    for (int p = 0; p < 3 && *ok; p++) {
        *ok = vet_infer_prefill(cpu, p, prompts[p], lens[p], a, &err) == 0 &&
              (batched_prefill || vet_gpu_infer_prefill(g, p, prompts[p], lens[p], b, &err) == 0);
        double e = max_rel(batched_prefill ? b + (size_t)((p + 1) % 3) * V : b, a, V);
        worst = e > worst ? e : worst;
        next[p] = (int32_t)argmax(a, V);
    }
    // steps: every slot (order 2, 0, 1) x 4, then slots {1, 2}, then slot 0 alone
    const int order[3] = {2, 0, 1};
    for (int step = 0; step < 6 && *ok; step++) {
        int slots[3], n = 0;
        int32_t toks[3];
        for (int i = 0; i < 3; i++) {
            int sl = order[i];
            if ((step == 4 && sl == 0) || (step == 5 && sl != 0)) continue;
            slots[n] = sl, toks[n] = next[sl], n++;
        }
        *ok = vet_infer_step(cpu, slots, toks, n, a, &err) == 0 && vet_gpu_infer_step(g, slots, toks, n, b, &err) == 0;
        if (!*ok) printf("# step %d: %s\n", step, err.msg);
        for (int i = 0; i < n && *ok; i++) {
            double e = max_rel(b + (size_t)i * V, a + (size_t)i * V, V);
            worst = e > worst ? e : worst;
            next[slots[i]] = (int32_t)argmax(a + (size_t)i * V, V);
        }
    }
    for (int p = 0; p < 3 && *ok; p++)
        if (vet_gpu_infer_len(g, p) != vet_infer_len(cpu, p)) *ok = 0;
    free(a), free(b);
    vet_gpu_infer_free(g);
    vet_infer_free(cpu);
    vet_model_free(&m);
    return worst;
}

// The worst error must lie in [lo, tol].
static void run_parity_in(int variant, unsigned flags, double lo, double tol) {
    if (!ctx) SKIP(no_gpu);
    int ok;
    double e = parity(variant, flags, &ok);
    printf("# max rel err %.3g (tol %.1e)\n", e, tol);
    CHECK(ok);
    CHECK(e <= tol && e >= lo);
}
static void run_parity(int variant, unsigned flags, double tol) { run_parity_in(variant, flags, 0, tol); }

static void test_llama_gqa_fp32(void) { run_parity(VAR_LLAMA, 0, TOL); }
static void test_qwen_bias_tied_fp32(void) { run_parity(VAR_QWEN_TIED, 0, TOL); }
static void test_llama3_rope_fp32(void) { run_parity(VAR_LLAMA3, 0, TOL); }
static void test_llama_bf16(void) { run_parity(VAR_LLAMA, VET_GPU_BF16, TOL_BF16); }
static void test_qwen_bf16(void) { run_parity(VAR_QWEN_TIED, VET_GPU_BF16, TOL_BF16); }
static void test_llama_fp16(void) { run_parity_in(VAR_LLAMA, VET_GPU_FP16, TOL, TOL_FP16); }
static void test_qwen_fp16(void) { run_parity_in(VAR_QWEN_TIED, VET_GPU_FP16, TOL, TOL_FP16); }
// Batched prefill: the three prompts in one forward (rows concatenated, a causal segment each),
// every logits row and the decode steps after it as close to the CPU's (each prompt alone) as
// one-at-a-time prefill. Prompts that attended across their boundary, keys written to the
// wrong slot or positions not restarting at 0 would be off by O(1).
static void test_llama_batched_prefill(void) { batched_prefill = 1; run_parity(VAR_LLAMA, 0, TOL); batched_prefill = 0; }
static void test_qwen_batched_prefill_bf16(void) {
    batched_prefill = 1;
    run_parity(VAR_QWEN_TIED, VET_GPU_BF16, TOL_BF16);
    batched_prefill = 0;
}

// More prompt rows than one batched forward takes (2048): the batch is cut into consecutive
// chunks (here 2 + 2 prompts); each prompt's logits, in its row of the result, within TOL of
// the CPU's prefill of that prompt alone, and each slot's length its prompt's.
static void test_prefill_chunks(void) {
    if (!ctx) SKIP(no_gpu);
    vet_model m;
    tiny_model(&m, VAR_LLAMA, &LLAMA, 11);
    const int V = m.cfg.vocab_size, S = 4, max_len = 800, len = 700;
    vet_err err;
    vet_infer *cpu = vet_infer_new(&m, 1, &err);
    vet_gpu_infer *g = vet_gpu_infer_new(ctx, &m, S, max_len, NULL, &err);
    CHECK(cpu && g);
    int32_t *pr = malloc((size_t)S * len * sizeof(int32_t));
    vet_rng r;
    vet_rng_seed(&r, 9);
    for (int i = 0; i < S * len; i++) pr[i] = (int32_t)vet_rng_below(&r, (uint64_t)V);
    const int32_t *ids[4] = {pr, pr + len, pr + 2 * len, pr + 3 * len};
    int sl[4] = {3, 1, 0, 2}, n[4] = {len, len, len, len - 100};
    float *b = malloc((size_t)S * V * 4), *a = malloc((size_t)V * 4);
    int ok = cpu && g && vet_gpu_infer_prefill_batch(g, sl, ids, n, S, b, NULL, &err) == 0;
    if (!ok && g) printf("# %s\n", err.msg);
    double worst = 0;
    for (int i = 0; i < S && ok; i++) {
        ok = vet_infer_prefill(cpu, 0, ids[i], n[i], a, &err) == 0 && vet_gpu_infer_len(g, sl[i]) == n[i];
        double e = max_rel(b + (size_t)i * V, a, V);
        worst = e > worst ? e : worst;
    }
    printf("# 4 prompts of %d-%d tokens in chunks of <= 2048 rows: max rel err %.3g\n", len - 100, len, worst);
    CHECK(ok && worst <= TOL);
    free(pr), free(a), free(b);
    vet_gpu_infer_free(g);
    vet_infer_free(cpu);
    vet_model_free(&m);
}

// argmax_rows_cuda: the lowest id of each row's maximum (decoder.c's greedy), on rows of 1,000
// values: ties at the front, middle and end, the maximum last, all equal, -inf around, and a
// NaN first (a number wins). A kernel keeping the highest id of a tie fails rows 0-2.
static void test_argmax_rows(void) {
    if (!ctx) SKIP(no_gpu);
    enum { NR = 7, V = 1000 };
    float *x = malloc((size_t)NR * V * 4);
    vet_rng r;
    vet_rng_seed(&r, 4);
    for (int i = 0; i < NR * V; i++) x[i] = (float)vet_rng_uniform_double(&r);
    float *row = x;
    row[3] = row[700] = 5.0f;                            // 0: tie -> 3
    row = x + V, row[0] = row[1] = row[999] = 7.0f;      // 1: tie at the front -> 0
    row = x + 2 * V, row[511] = row[256] = 2.0f;         // 2: tie across thread slices -> 256
    row = x + 3 * V, row[999] = 3.0f;                    // 3: the last -> 999
    row = x + 4 * V;                                     // 4: all equal -> 0
    for (int v = 0; v < V; v++) row[v] = 1.5f;
    row = x + 5 * V;                                     // 5: -inf but one -> 640
    for (int v = 0; v < V; v++) row[v] = -INFINITY;
    row[640] = -3.0f;
    row = x + 6 * V, row[0] = NAN, row[17] = 9.0f;       // 6: a NaN first -> 17
    const int32_t want[NR] = {3, 0, 256, 999, 0, 640, 17};
    vet_err err;
    void *dx, *dout;
    int32_t got[NR] = {0};
    int ok = vet_cuda_malloc(&dx, (size_t)NR * V * 4, &err) == 0 && vet_cuda_malloc(&dout, NR * 4, &err) == 0 &&
             vet_cuda_upload(ctx, dx, x, (size_t)NR * V * 4, &err) == 0 &&
             argmax_rows_cuda(ctx, dout, dx, NR, V, &err) == 0 && vet_cuda_download(ctx, got, dout, NR * 4, &err) == 0;
    if (!ok) printf("# %s\n", err.msg);
    CHECK(ok);
    for (int i = 0; i < NR; i++) {
        if (got[i] != want[i]) printf("# row %d: %d, want %d\n", i, got[i], want[i]);
        CHECK(got[i] == want[i]);
        if (i < 6) CHECK(got[i] == argmax(x + (size_t)i * V, V));  // the host's greedy, NaN-free rows
    }
    vet_cuda_mem_free(dx), vet_cuda_mem_free(dout);
    free(x);
}

// vet_gpu_infer_step_greedy on one model against vet_gpu_infer_step on a twin: 8 steps of 3
// slots fed their own greedy tokens; the ids equal the argmax of the twin's logits, and the
// slots' lengths move together.
static void test_step_greedy(void) {
    if (!ctx) SKIP(no_gpu);
    vet_model m;
    tiny_model(&m, VAR_QWEN_TIED, &QWEN, 11);
    const int V = m.cfg.vocab_size, S = 3;
    vet_err err;
    vet_gpu_opts o = {.flags = VET_GPU_BF16};
    vet_gpu_infer *a = vet_gpu_infer_new(ctx, &m, S, 32, &o, &err), *b = vet_gpu_infer_new(ctx, &m, S, 32, &o, &err);
    CHECK(a && b);
    float *lg = malloc((size_t)S * V * 4);
    int32_t pr[3][4] = {{1, 2, 3, 4}, {9, 8, 7, 0}, {5, 5, 5, 5}}, tok[3], ids[3];
    int slots[3] = {1, 2, 0}, ok = a && b, same = 1;
    for (int s0 = 0; s0 < S && ok; s0++) {
        ok = vet_gpu_infer_prefill(a, s0, pr[s0], 4 - s0, lg, &err) == 0 &&
             vet_gpu_infer_prefill(b, s0, pr[s0], 4 - s0, lg, &err) == 0;
        tok[s0] = (int32_t)argmax(lg, V);
    }
    for (int step = 0; step < 8 && ok; step++) {
        int32_t in[3] = {tok[slots[0]], tok[slots[1]], tok[slots[2]]};
        ok = vet_gpu_infer_step_greedy(a, slots, in, S, NULL, NULL, ids, &err) == 0 &&
             vet_gpu_infer_step(b, slots, in, S, lg, &err) == 0;
        for (int i = 0; i < S && ok; i++) {
            same &= ids[i] == argmax(lg + (size_t)i * V, V);
            tok[slots[i]] = ids[i];
        }
    }
    if (!ok) printf("# %s\n", err.msg);
    CHECK(ok && same);
    for (int s0 = 0; s0 < S && ok; s0++) CHECK(vet_gpu_infer_len(a, s0) == vet_gpu_infer_len(b, s0));
    free(lg);
    vet_gpu_infer_free(a), vet_gpu_infer_free(b);
    vet_model_free(&m);
}

// The first best of row[ids[0..k)] (ids ascending), the host's rule for a subset.
static int argmax_of(const float *row, const int32_t *ids, int k) {
    int b = ids[0];
    for (int j = 1; j < k; j++)
        if (row[ids[j]] > row[b]) b = ids[j];
    return b;
}

// argmax_allowed_rows_cuda on planted rows: the best allowed id, not the row's best; the lowest
// allowed id of a tie; a single allowed id whatever its value; a NaN among the allowed loses.
static void test_argmax_allowed_rows(void) {
    if (!ctx) SKIP(no_gpu);
    enum { NR = 4, V = 600 };
    float *x = malloc((size_t)NR * V * 4);
    vet_rng r;
    vet_rng_seed(&r, 6);
    for (int i = 0; i < NR * V; i++) x[i] = (float)vet_rng_uniform_double(&r);
    x[0 * V + 5] = 50.0f, x[0 * V + 300] = 9.0f;  // 0: 5 is the row's best but not allowed -> 300
    x[1 * V + 20] = x[1 * V + 400] = 8.0f;        // 1: a tie among the allowed -> 20
    x[2 * V + 599] = -INFINITY;                   // 2: the only allowed id -> 599
    x[3 * V + 7] = NAN, x[3 * V + 8] = 0.5f;      // 3: NaN first, then numbers -> the best number
    int32_t ids[] = {1, 300, 301, 599,  20, 21, 400, 450,  599,  7, 8, 9, 10};
    int32_t off[NR + 1] = {0, 4, 8, 9, 13};
    int32_t want[NR] = {300, 20, 599, 0};
    want[3] = x[3 * V + 9] > x[3 * V + 8] ? (x[3 * V + 10] > x[3 * V + 9] ? 10 : 9) : (x[3 * V + 10] > x[3 * V + 8] ? 10 : 8);
    vet_err err;
    void *dx, *dout, *dids, *doff;
    int32_t got[NR] = {0};
    int ok = vet_cuda_malloc(&dx, (size_t)NR * V * 4, &err) == 0 && vet_cuda_malloc(&dout, NR * 4, &err) == 0 &&
             vet_cuda_malloc(&dids, sizeof ids, &err) == 0 && vet_cuda_malloc(&doff, sizeof off, &err) == 0 &&
             vet_cuda_upload(ctx, dx, x, (size_t)NR * V * 4, &err) == 0 &&
             vet_cuda_upload(ctx, dids, ids, sizeof ids, &err) == 0 && vet_cuda_upload(ctx, doff, off, sizeof off, &err) == 0 &&
             argmax_allowed_rows_cuda(ctx, dout, dx, NR, V, dids, doff, &err) == 0 &&
             vet_cuda_download(ctx, got, dout, NR * 4, &err) == 0;
    if (!ok) printf("# %s\n", err.msg);
    CHECK(ok);
    for (int i = 0; i < NR; i++) {
        if (got[i] != want[i]) printf("# row %d: %d, want %d\n", i, got[i], want[i]);
        CHECK(got[i] == want[i]);
        if (i < 3) CHECK(got[i] == argmax_of(x + (size_t)i * V, ids + off[i], off[i + 1] - off[i]));
    }
    vet_cuda_mem_free(dx), vet_cuda_mem_free(dout), vet_cuda_mem_free(dids), vet_cuda_mem_free(doff);
    free(x);
}

// Constrained greedy on the device against the host's choice on a twin: each step every slot
// may take a different allowed subset (every third id from a moving start, and one slot a single
// id); the device's ids are the host's argmax over the same subset of the twin's logits. Lists
// the device must refuse (an id outside [0, V), an empty row) fail the call, named.
static void test_step_greedy_allowed(void) {
    if (!ctx) SKIP(no_gpu);
    vet_model m;
    tiny_model(&m, VAR_LLAMA, &LLAMA, 12);
    const int V = m.cfg.vocab_size, S = 3;
    vet_err err;
    vet_gpu_infer *a = vet_gpu_infer_new(ctx, &m, S, 32, NULL, &err), *b = vet_gpu_infer_new(ctx, &m, S, 32, NULL, &err);
    CHECK(a && b);
    float *lg = malloc((size_t)S * V * 4);
    int32_t *allowed = malloc((size_t)S * V * sizeof *allowed), off[4], tok[3], ids[3];
    int32_t pr[3][3] = {{3, 1, 4}, {1, 5, 9}, {2, 6, 5}};
    int slots[3] = {2, 0, 1}, ok = a && b, same = 1;
    for (int s0 = 0; s0 < S && ok; s0++) {
        ok = vet_gpu_infer_prefill(a, s0, pr[s0], 3, lg, &err) == 0 && vet_gpu_infer_prefill(b, s0, pr[s0], 3, lg, &err) == 0;
        tok[s0] = (int32_t)argmax(lg, V);
    }
    for (int step = 0; step < 6 && ok; step++) {
        off[0] = 0;
        for (int i = 0; i < S; i++) {
            int k = off[i];
            if (i == 2) allowed[k++] = (int32_t)((step * 7) % V);  // one id only
            else
                for (int v = (step + i) % 3; v < V; v += 3) allowed[k++] = v;
            off[i + 1] = k;
        }
        int32_t in[3] = {tok[slots[0]], tok[slots[1]], tok[slots[2]]};
        ok = vet_gpu_infer_step_greedy(a, slots, in, S, allowed, off, ids, &err) == 0 &&
             vet_gpu_infer_step(b, slots, in, S, lg, &err) == 0;
        for (int i = 0; i < S && ok; i++) {
            same &= ids[i] == argmax_of(lg + (size_t)i * V, allowed + off[i], off[i + 1] - off[i]);
            tok[slots[i]] = ids[i];
        }
    }
    if (!ok) printf("# %s\n", err.msg);
    CHECK(ok && same);
    // refused before anything runs: an id out of range, a row with no ids
    int32_t bad_ids[2] = {0, V}, bad_off[2] = {0, 2}, one[1] = {0}, empty_off[2] = {0, 0}, in1[1] = {tok[slots[0]]};
    CHECK(a && vet_gpu_infer_step_greedy(a, slots, in1, 1, bad_ids, bad_off, ids, &err) == -1 &&
          strstr(err.msg, "outside"));
    CHECK(a && vet_gpu_infer_step_greedy(a, slots, in1, 1, one, empty_off, ids, &err) == -1 &&
          strstr(err.msg, "allowed ids"));
    free(lg), free(allowed);
    vet_gpu_infer_free(a), vet_gpu_infer_free(b);
    vet_model_free(&m);
}

static void test_llama_kv_bf16(void) { run_parity_in(VAR_LLAMA, VET_GPU_KV_BF16, TOL, TOL_KV_BF16); }
static void test_qwen_kv_bf16(void) { run_parity_in(VAR_QWEN_TIED, VET_GPU_KV_BF16, TOL, TOL_KV_BF16); }

// The 16-bit cache ops alone: rows written by kv_cache_write16_cuda are each value rounded once
// (the cache's bits equal lib/base/half.h's rounding), and attention_decode16_cuda equals the
// fp32 op on a float cache holding those rounded values (1e-5: the same sums). The planted bug
// -- the bf16 cache read as fp32 -- must be far off (> 0.5), so a width mix-up cannot pass.
static void test_kv16_ops(void) {
    if (!ctx) SKIP(no_gpu);
    const int S = 3, max_len = 9, H = 4, KVH = 2, hd = 8, KV = KVH * hd, n = 2;
    const size_t ncache = (size_t)S * max_len * KV;
    int32_t slots[2] = {2, 0}, pos[2] = {8, 3};
    vet_rng r;
    vet_rng_seed(&r, 3);
    float *kf = calloc(ncache, 4), *vf = calloc(ncache, 4), *rows = malloc((size_t)n * KV * 4), *q = malloc((size_t)n * H * hd * 4);
    uint16_t *back = malloc(ncache * 2);
    float *o16 = malloc((size_t)n * H * hd * 4), *o32 = malloc((size_t)n * H * hd * 4), *obug = malloc((size_t)n * H * hd * 4);
    for (int i = 0; i < n * H * hd; i++) q[i] = 2.0f * (float)vet_rng_uniform_double(&r) - 1.0f;
    for (int fmt = VET_CUDA_KV_BF16; fmt <= VET_CUDA_KV_F16; fmt++) {
        vet_err err;
        void *dk, *dv, *dkf, *dvf, *drows, *dq, *dslots, *dpos, *dout;
        // the 16-bit caches get 4 bytes per element, so the planted fp32 read stays in bounds
        int ok = vet_cuda_malloc(&dk, ncache * 4, &err) == 0 && vet_cuda_malloc(&dv, ncache * 4, &err) == 0 &&
                 vet_cuda_malloc(&dkf, ncache * 4, &err) == 0 && vet_cuda_malloc(&dvf, ncache * 4, &err) == 0 &&
                 vet_cuda_malloc(&drows, (size_t)n * KV * 4, &err) == 0 && vet_cuda_malloc(&dq, (size_t)n * H * hd * 4, &err) == 0 &&
                 vet_cuda_malloc(&dslots, 8, &err) == 0 && vet_cuda_malloc(&dpos, 8, &err) == 0 &&
                 vet_cuda_malloc(&dout, (size_t)n * H * hd * 4, &err) == 0;
        CHECK(ok);
        if (!ok) return;
        // every position of both slots filled through the 16-bit write, one row pair at a time
        int good_bits = 1;
        for (int p = 0; p < max_len && ok; p++) {
            int32_t ps[2] = {p, p};
            for (int i = 0; i < n * KV; i++) rows[i] = 4.0f * (float)vet_rng_uniform_double(&r) - 2.0f;
            ok = vet_cuda_upload(ctx, drows, rows, (size_t)n * KV * 4, &err) == 0 && vet_cuda_upload(ctx, dslots, slots, 8, &err) == 0 &&
                 vet_cuda_upload(ctx, dpos, ps, 8, &err) == 0 &&
                 kv_cache_write16_cuda(ctx, dk, drows, dslots, dpos, n, max_len, KV, fmt, &err) == 0;
            for (int i = 0; i < n * KV; i++) rows[i] = -rows[i] * 0.5f;
            ok = ok && vet_cuda_upload(ctx, drows, rows, (size_t)n * KV * 4, &err) == 0 &&
                 kv_cache_write16_cuda(ctx, dv, drows, dslots, dpos, n, max_len, KV, fmt, &err) == 0;
            for (int i = 0; i < n && ok; i++)
                for (int c = 0; c < KV; c++) {  // the float cache: the rounded values
                    size_t at = ((size_t)slots[i] * max_len + p) * KV + c;
                    float v = rows[(size_t)i * KV + c], k = -2.0f * v;
                    kf[at] = fmt == VET_CUDA_KV_BF16 ? vet_bf16_to_f32(vet_f32_to_bf16(k)) : vet_f16_to_f32(vet_f32_to_f16(k));
                    vf[at] = fmt == VET_CUDA_KV_BF16 ? vet_bf16_to_f32(vet_f32_to_bf16(v)) : vet_f16_to_f32(vet_f32_to_f16(v));
                }
        }
        ok = ok && vet_cuda_download(ctx, back, dv, ncache * 2, &err) == 0;
        for (int s0 = 0; s0 < 2 && ok; s0++)
            for (int p = 0; p < max_len; p++)
                for (int c = 0; c < KV; c++) {
                    size_t at = ((size_t)slots[s0] * max_len + p) * KV + c;
                    good_bits &= back[at] == (fmt == VET_CUDA_KV_BF16 ? vet_f32_to_bf16(vf[at]) : vet_f32_to_f16(vf[at]));
                }
        ok = ok && vet_cuda_upload(ctx, dkf, kf, ncache * 4, &err) == 0 && vet_cuda_upload(ctx, dvf, vf, ncache * 4, &err) == 0 &&
             vet_cuda_upload(ctx, dq, q, (size_t)n * H * hd * 4, &err) == 0 && vet_cuda_upload(ctx, dpos, pos, 8, &err) == 0 &&
             attention_decode16_cuda(ctx, dout, dq, dk, dv, dslots, dpos, n, max_len, H, KVH, hd, fmt, &err) == 0 &&
             vet_cuda_download(ctx, o16, dout, (size_t)n * H * hd * 4, &err) == 0 &&
             attention_decode_cuda(ctx, dout, dq, dkf, dvf, dslots, dpos, n, max_len, H, KVH, hd, &err) == 0 &&
             vet_cuda_download(ctx, o32, dout, (size_t)n * H * hd * 4, &err) == 0 &&
             attention_decode_cuda(ctx, dout, dq, dk, dv, dslots, dpos, n, max_len, H, KVH, hd, &err) == 0 &&  // planted
             vet_cuda_download(ctx, obug, dout, (size_t)n * H * hd * 4, &err) == 0;
        if (!ok) printf("# %s\n", err.msg);
        double e = max_rel(o16, o32, (size_t)n * H * hd), eb = max_rel(obug, o32, (size_t)n * H * hd);
        printf("# %s cache: written bits the host's rounding: %s; attention vs fp32 on the rounded values %.3g, "
               "read as fp32 (planted bug) %.3g\n", fmt == VET_CUDA_KV_BF16 ? "bf16" : "fp16", good_bits ? "yes" : "NO", e, eb);
        CHECK(ok && good_bits);
        CHECK(e <= 1e-5);
        CHECK(!(eb <= 0.5));  // NaN (garbage bits) fails the planted read too
        void *all[] = {dk, dv, dkf, dvf, drows, dq, dslots, dpos, dout};
        for (int i = 0; i < 9; i++) vet_cuda_mem_free(all[i]);
    }
    free(kf), free(vf), free(rows), free(q), free(back), free(o16), free(o32), free(obug);
}

// A float16 checkpoint (every weight an fp16 value): fp16 storage keeps its matrices exactly,
// so only the GEMM inputs' rounding is left, and the greedy tokens of a decode stay the CPU's;
// bf16 storage rounds the weights themselves as well (3 of 10 mantissa bits dropped).
static void test_fp16_checkpoint(void) {
    if (!ctx) SKIP(no_gpu);
    vet_model m;
    tiny_model(&m, VAR_LLAMA, &LLAMA, 11);
    for (size_t i = 0; i < m.n_w; i++) m.w_mem[i] = vet_f16_to_f32(vet_f32_to_f16(m.w_mem[i]));
    const int V = m.cfg.vocab_size, n_new = 12;
    vet_err err;
    vet_infer *cpu = vet_infer_new(&m, 1, &err);
    vet_gpu_opts o16 = {.flags = VET_GPU_FP16}, ob16 = {.flags = VET_GPU_BF16};
    vet_gpu_infer *g16 = vet_gpu_infer_new(ctx, &m, 1, 32, &o16, &err);
    vet_gpu_infer *gb = vet_gpu_infer_new(ctx, &m, 1, 32, &ob16, &err);
    CHECK(cpu && g16 && gb);
    float *a = malloc((size_t)V * 4), *b = malloc((size_t)V * 4), *c = malloc((size_t)V * 4);
    int32_t prompt[6] = {5, 9, 2, 33, 17, 4}, tok;
    int slot = 0, ok = cpu && g16 && gb, same_tokens = 1;
    double e16 = 0, eb = 0;
    ok = ok && vet_infer_prefill(cpu, 0, prompt, 6, a, &err) == 0 && vet_gpu_infer_prefill(g16, 0, prompt, 6, b, &err) == 0 &&
         vet_gpu_infer_prefill(gb, 0, prompt, 6, c, &err) == 0;
    for (int i = 0; i < n_new && ok; i++) {
        double x = max_rel(b, a, V), y = max_rel(c, a, V);
        e16 = x > e16 ? x : e16, eb = y > eb ? y : eb;
        tok = (int32_t)argmax(a, V);
        same_tokens &= argmax(b, V) == tok;
        ok = vet_infer_step(cpu, &slot, &tok, 1, a, &err) == 0 && vet_gpu_infer_step(g16, &slot, &tok, 1, b, &err) == 0 &&
             vet_gpu_infer_step(gb, &slot, &tok, 1, c, &err) == 0;
    }
    if (!ok) printf("# %s\n", err.msg);
    printf("# float16 weights: logits max rel err fp16 %.3g, bf16 %.3g; fp16's greedy tokens the CPU's: %s\n", e16, eb,
           same_tokens ? "yes" : "NO");
    CHECK(ok && same_tokens);
    CHECK(e16 <= TOL_FP16 && e16 < eb);
    free(a), free(b), free(c);
    vet_gpu_infer_free(g16);
    vet_gpu_infer_free(gb);
    vet_infer_free(cpu);
    vet_model_free(&m);
}

static void test_plan(void) {
    vet_model m;
    tiny_model(&m, VAR_QWEN_TIED, &QWEN, 11);
    vet_err err;
    vet_gpu_infer_plan p, pb, p2;
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 4, 32, 0, &p, &err) == 0);
    CHECK(p.total == p.weights + p.cache + p.scratch);
    CHECK(p.weights >= m.n_w * sizeof(float));
    // keys and values, every layer, 4 slots x 32 positions of KVH*hd floats
    size_t kv = 2 * (size_t)m.cfg.n_layers * 4 * 32 * m.cfg.n_kv_heads * m.cfg.head_dim * sizeof(float);
    CHECK(p.cache >= kv && p.cache < kv + 4096);
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 4, 32, VET_GPU_BF16, &pb, &err) == 0);
    CHECK(pb.weights < p.weights && pb.cache >= kv / 2 && pb.cache < kv / 2 + 1024);  // the bf16 cache: half
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 4, 32, VET_GPU_KV_BF16, &p2, &err) == 0);
    CHECK(p2.weights == p.weights && p2.cache == pb.cache);
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 4, 32, VET_GPU_FP16, &p2, &err) == 0);
    CHECK(memcmp(&p2, &pb, sizeof pb) == 0);  // fp16: bf16's layout in the other format
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 4, 32, VET_GPU_FP16 | VET_GPU_BF16, &p2, &err) < 0);
    CHECK_CONTAINS(err.msg, "choose one");
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 4, 32, VET_GPU_FP16 | VET_GPU_NF4, &p2, &err) < 0);
    CHECK_CONTAINS(err.msg, "quantized");
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 8, 32, 0, &p2, &err) == 0);
    CHECK(p2.cache > p.cache && p2.weights == p.weights);
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 0, 32, 0, &p2, &err) < 0);
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 4, 32, VET_GPU_FULL, &p2, &err) < 0);
    if (ctx) {
        vet_gpu_infer *g = vet_gpu_infer_new(ctx, &m, 4, 32, NULL, &err);
        CHECK(g != NULL);
        if (g) CHECK(memcmp(vet_gpu_infer_plan_of(g), &p, sizeof p) == 0);
        vet_gpu_infer_free(g);
        vet_gpu_opts o = {.mem_limit = p.total - 1};
        CHECK(vet_gpu_infer_new(ctx, &m, 4, 32, &o, &err) == NULL);
        CHECK_CONTAINS(err.msg, "GiB on the device");
        CHECK_CONTAINS(err.msg, "fewer slots than 4");
        o.mem_limit = p.total;  // exactly enough is enough
        g = vet_gpu_infer_new(ctx, &m, 4, 32, &o, &err);
        CHECK(g != NULL);
        vet_gpu_infer_free(g);
    }
    vet_model_free(&m);
}

static void test_refusals(void) {
    if (!ctx) SKIP(no_gpu);
    vet_model m;
    tiny_model(&m, VAR_LLAMA, &LLAMA, 11);
    vet_err err;
    const int V = m.cfg.vocab_size;
    vet_gpu_infer *g = vet_gpu_infer_new(ctx, &m, 2, 4, NULL, &err);
    CHECK(g != NULL);
    if (g) {
        float *lg = malloc(2 * (size_t)V * sizeof(float));
        int32_t ids[5] = {3, 4, 5, 6, 7}, bad = V;
        int s0 = 0, s1 = 1, two[2] = {0, 0};
        CHECK(vet_gpu_infer_prefill(g, 0, ids, 5, lg, &err) < 0);  // 5 positions, cache of 4
        CHECK_CONTAINS(err.msg, "4 positions");
        CHECK(vet_gpu_infer_prefill(g, 2, ids, 2, lg, &err) < 0);
        CHECK(vet_gpu_infer_prefill(g, 0, &bad, 1, lg, &err) < 0);
        CHECK_CONTAINS(err.msg, "vocabulary");
        CHECK(vet_gpu_infer_step(g, &s1, ids, 1, lg, &err) < 0);  // never prefilled
        CHECK_CONTAINS(err.msg, "never prefilled");
        CHECK(vet_gpu_infer_prefill(g, 0, ids, 3, lg, &err) == 0);
        CHECK(vet_gpu_infer_step(g, two, ids, 2, lg, &err) < 0);
        CHECK_CONTAINS(err.msg, "twice");
        CHECK(vet_gpu_infer_step(g, &s0, ids, 1, lg, &err) == 0);  // position 3: the last one
        CHECK(vet_gpu_infer_len(g, 0) == 4);
        CHECK(vet_gpu_infer_step(g, &s0, ids, 1, lg, &err) < 0);
        CHECK_CONTAINS(err.msg, "full");
        free(lg);
    }
    vet_gpu_infer_free(g);
    vet_err e2;
    CHECK(vet_model_add_lora(&m, 2, 4.0f, 0.0f, 0, VET_LORA_ALL, 5, &e2) == 0);
    CHECK(vet_gpu_infer_new(ctx, &m, 2, 4, NULL, &err) == NULL);
    CHECK_CONTAINS(err.msg, "merge");
    vet_model_free(&m);
}

// --- quantized weights ----------------------------------------------------------------------

// Two prompts prefilled, then 4 decode steps over both slots, on three device models: the
// quantized one (its steps read the packed codes: matmul_rows_q_cuda, and in bf16 up to 64 rows
// matmul_rows_q_mma_cuda), the same with VET_GPU_QUANT_SCRATCH (steps dequantize into scratch
// as a prefill does) and the unquantized model on the dequantized weights (same compute flags).
// The scratch model equals the dequantized one bit for bit, prefill and steps; the default one
// equals it in the prefill of the 9-token prompt in fp32 (more rows than the packed kernel
// takes), and differs in the prompts the packed kernels take and in the steps only by the order
// of fp32 sums (the packed path ran: some bits differ); all lie within tol of the CPU's on the
// original weights.
static void quant_infer(int variant, unsigned qflag, unsigned compute, double tol) {
    if (!ctx) SKIP(no_gpu);
    // at the init's scale (matrix_scale 1): the usual test models' matrices are 10x that,
    // which amplifies NF4's weight noise into ~45% of the largest logit and says nothing
    tiny_shape sh = variant == VAR_QWEN_TIED ? QWEN : LLAMA;
    sh.matrix_scale = 1.0f;
    vet_model m, mq;
    tiny_model(&m, variant, &sh, 11);
    tiny_model(&mq, variant, &sh, 11);
    roundtrip_weights(&mq, qflag);
    const int V = m.cfg.vocab_size, max_len = 24;
    const size_t bytes = 2 * (size_t)V * 4;
    vet_err err;
    vet_infer *cpu = vet_infer_new(&m, 2, &err);
    vet_gpu_opts oq = {.flags = qflag | compute}, os = {.flags = qflag | compute | VET_GPU_QUANT_SCRATCH},
                 orf = {.flags = compute};
    vet_gpu_infer *gq = vet_gpu_infer_new(ctx, &m, 2, max_len, &oq, &err);
    if (!gq) printf("# %s\n", err.msg);
    vet_gpu_infer *gs = vet_gpu_infer_new(ctx, &m, 2, max_len, &os, &err);
    vet_gpu_infer *gr = vet_gpu_infer_new(ctx, &mq, 2, max_len, &orf, &err);
    CHECK(cpu && gq && gs && gr);
    float *a = malloc(bytes), *b = malloc(bytes), *c = malloc(bytes), *d = malloc(bytes);
    int32_t prompt[2][9] = {{5, 9, 2, 33, 17, 4, 8, 21, 3}, {40, 1, 12, 7, 0, 0, 0, 0, 0}};
    int lens[2] = {9, 4}, ok = cpu && gq && gs && gr, same = 1, scratch_same = 1, step_bits_differ = 0;
    double worst = 0, step_vs_scratch = 0;
    int32_t next[2];
    for (int p = 0; p < 2 && ok; p++) {
        ok = vet_infer_prefill(cpu, p, prompt[p], lens[p], a, &err) == 0 &&
             vet_gpu_infer_prefill(gq, p, prompt[p], lens[p], b, &err) == 0 &&
             vet_gpu_infer_prefill(gr, p, prompt[p], lens[p], c, &err) == 0 &&
             vet_gpu_infer_prefill(gs, p, prompt[p], lens[p], d, &err) == 0;
        scratch_same &= memcmp(d, c, (size_t)V * 4) == 0;
        if (lens[p] > (compute & VET_GPU_BF16 ? VET_QMMA_ROWS : VET_QROWS_MAX)) {  // scratch, as gr's
            same &= memcmp(b, c, (size_t)V * 4) == 0;
        } else {  // as few rows as a step: the packed path
            double es = max_rel(b, c, V);
            step_vs_scratch = es > step_vs_scratch ? es : step_vs_scratch;
        }
        double e = max_rel(b, a, V);
        worst = e > worst ? e : worst;
        next[p] = (int32_t)argmax(a, V);
    }
    int slots[2] = {1, 0};
    for (int step = 0; step < 4 && ok; step++) {
        int32_t toks[2] = {next[1], next[0]};
        ok = vet_infer_step(cpu, slots, toks, 2, a, &err) == 0 && vet_gpu_infer_step(gq, slots, toks, 2, b, &err) == 0 &&
             vet_gpu_infer_step(gr, slots, toks, 2, c, &err) == 0 && vet_gpu_infer_step(gs, slots, toks, 2, d, &err) == 0;
        scratch_same &= memcmp(d, c, bytes) == 0;
        step_bits_differ |= memcmp(b, c, bytes) != 0;
        double e = max_rel(b, a, 2 * (size_t)V), es = max_rel(b, c, 2 * (size_t)V);
        worst = e > worst ? e : worst;
        step_vs_scratch = es > step_vs_scratch ? es : step_vs_scratch;
        next[1] = (int32_t)argmax(a, V), next[0] = (int32_t)argmax(a + V, V);
    }
    if (!ok) printf("# %s\n", err.msg);
    printf("# %s%s: logits max rel err vs the CPU %.3g (tol %.2g); scratch-path prefill identical to the dequantized model: %s; "
           "packed-code rows vs dequantized %.3g (tol 1e-4, bits differ: %s); scratch steps identical: %s\n",
           qflag == VET_GPU_INT8 ? "int8" : "nf4", compute ? " bf16" : "", worst, tol, same ? "yes" : "NO",
           step_vs_scratch, step_bits_differ ? "yes" : "NO", scratch_same ? "yes" : "NO");
    CHECK(ok && same && scratch_same);
    CHECK(step_bits_differ && step_vs_scratch <= 1e-4);
    CHECK(worst <= tol && worst > 0);
    free(a), free(b), free(c), free(d);
    vet_gpu_infer_free(gq);
    vet_gpu_infer_free(gs);
    vet_gpu_infer_free(gr);
    vet_infer_free(cpu);
    vet_model_free(&m);
    vet_model_free(&mq);
}

// Tolerances (max |logit error| / max |logit|, two layers at init scale): int8's weight noise
// (0.55% rms, at most max|row|/254) moves the logits by ~0.6% (measured 0.4-0.6%): 2e-2; NF4's
// (~10% rms) by ~10% (measured 9-11%): 0.25. bf16 GEMMs add ~0.1%.
static void test_quant_int8(void) { quant_infer(VAR_LLAMA, VET_GPU_INT8, 0, 2e-2); }
static void test_quant_nf4(void) { quant_infer(VAR_QWEN_TIED, VET_GPU_NF4, 0, 0.25); }
static void test_quant_int8_bf16(void) { quant_infer(VAR_QWEN_TIED, VET_GPU_INT8, VET_GPU_BF16, 2e-2); }
static void test_quant_nf4_bf16(void) { quant_infer(VAR_LLAMA, VET_GPU_NF4, VET_GPU_BF16, 0.25); }

// The plan: the matrices at 1 byte + a scale per row (int8), 0.5 byte + an absmax per 64
// (nf4); caches unchanged; both at once refused.
static void test_quant_plan(void) {
    vet_model m;
    tiny_model(&m, VAR_LLAMA, &LLAMA, 11);
    vet_err err;
    vet_gpu_infer_plan pb, p8, p4;
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 4, 32, VET_GPU_BF16, &pb, &err) == 0);
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 4, 32, VET_GPU_BF16 | VET_GPU_INT8, &p8, &err) == 0);
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 4, 32, VET_GPU_BF16 | VET_GPU_NF4, &p4, &err) == 0);
    CHECK(p4.weights < p8.weights && p8.weights < pb.weights);
    CHECK(p8.cache == pb.cache && p4.cache == pb.cache);
    matrix_bytes d = plan_matrix_bytes(&m.cfg);
    CHECK(pb.weights - d.b16 == p8.weights - d.b8 && p8.weights - d.b8 == p4.weights - d.b4);
    CHECK(vet_gpu_infer_plan_bytes(&m.cfg, 4, 32, VET_GPU_INT8 | VET_GPU_NF4, &p8, &err) < 0);
    CHECK_CONTAINS(err.msg, "choose one");
    if (ctx) {
        vet_gpu_opts o = {.flags = VET_GPU_BF16 | VET_GPU_NF4};
        vet_gpu_infer *g = vet_gpu_infer_new(ctx, &m, 4, 32, &o, &err);
        CHECK(g && memcmp(vet_gpu_infer_plan_of(g), &p4, sizeof p4) == 0);
        vet_gpu_infer_free(g);
    }
    vet_model_free(&m);
}

int main(void) {
    vet_set_threads(1);
    gpu_test_open();
    RUN(test_plan);
    RUN(test_llama_gqa_fp32);
    RUN(test_qwen_bias_tied_fp32);
    RUN(test_llama3_rope_fp32);
    RUN(test_llama_bf16);
    RUN(test_qwen_bf16);
    RUN(test_llama_fp16);
    RUN(test_qwen_fp16);
    RUN(test_fp16_checkpoint);
    RUN(test_llama_batched_prefill);
    RUN(test_qwen_batched_prefill_bf16);
    RUN(test_prefill_chunks);
    RUN(test_argmax_rows);
    RUN(test_step_greedy);
    RUN(test_argmax_allowed_rows);
    RUN(test_step_greedy_allowed);
    RUN(test_llama_kv_bf16);
    RUN(test_qwen_kv_bf16);
    RUN(test_kv16_ops);
    RUN(test_refusals);
    RUN(test_quant_plan);
    RUN(test_quant_int8);
    RUN(test_quant_nf4);
    RUN(test_quant_int8_bf16);
    RUN(test_quant_nf4_bf16);
    vet_cuda_free(ctx);
    CHECK_EXIT();
}
