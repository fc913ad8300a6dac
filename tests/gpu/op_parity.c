// op_parity.c — every CUDA op against its CPU twin (lib/model/ops.h), forward and backward.
//
//   op_parity [--size small|mid] [--seed S] [--reps R] [--only attention,lora,other]
//
// Draws random inputs from a fresh seed (printed; --seed repeats a run), runs the CPU op and
// the CUDA op on the same inputs and prints one line per comparison:
//   ok NAME: max rel err E (tol T)      or      not ok NAME: ...
// The error is max |gpu - cpu| over the tensor divided by max |cpu| (a relative error that does
// not explode where a value happens to be near zero). Gradients start from the same random
// values on both sides, so the += accumulation is checked too. Then a table: op, shape, error,
// GPU time per call (mean of R calls after a warm-up; 0 skips timing).
// Without a usable GPU it prints `not ok op_parity: no usable GPU: <why>` and exits 1 (a check
// that did not run is never a pass).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernels/ops_cuda.h"
#include "kernels/host/device.h"
#include "base/half.h"
#include "model/ops.h"
#include "model/quant.h"
#include "base/rng.h"
#include "train/backend.h"

static vet_cuda *ctx;
static vet_rng rng;
static int reps = 5, failures = 0;
static vet_err err;
static const double F32_TOL = 1e-5;  // fp32 ops against the CPU's: summation order only

typedef struct {
    char name[64], shape[64];
    double err, tol, ms;
} row_t;
static row_t table[512];
static int n_rows;

#define TRY(call)                                                              \
    do {                                                                       \
        if ((call) < 0) {                                                      \
            printf("not ok %s: %s\n", #call, err.msg);                         \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

// Mean milliseconds of one GPU call, after a warm-up (the first call loads the module).
#define TIME(call, out_ms)                                                     \
    do {                                                                       \
        out_ms = 0;                                                            \
        if (reps > 0) {                                                        \
            TRY(call);                                                         \
            TRY(vet_cuda_sync(ctx, &err));                                     \
            double t0_ = now_ms();                                             \
            for (int r_ = 0; r_ < reps; r_++) TRY(call);                       \
            TRY(vet_cuda_sync(ctx, &err));                                     \
            out_ms = (now_ms() - t0_) / reps;                                  \
        }                                                                      \
    } while (0)

static float *rnd(size_t n, float scale) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)vet_rng_normal(&rng) * scale;
    return x;
}
static float *copyf(const float *x, size_t n) {
    float *y = malloc(n * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}
static void *dev(const void *host, size_t bytes) {
    void *d;
    TRY(vet_cuda_malloc(&d, bytes, &err));
    if (host) TRY(vet_cuda_upload(ctx, d, host, bytes, &err));
    return d;
}
static float *devf(const float *host, size_t n) { return dev(host, n * sizeof(float)); }
// n fp32 values rounded to bf16 on the device.
static uint16_t *dev_bf16(const float *host, size_t n) {
    uint16_t *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = vet_f32_to_bf16(host[i]);
    uint16_t *d = dev(h, n * sizeof *h);
    free(h);
    return d;
}

static double max_rel(const float *gpu, const float *cpu, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)gpu[i] - cpu[i]);
        if (!(d <= num)) num = d;  // also catches nan
        if (fabs(cpu[i]) > den) den = fabs(cpu[i]);
    }
    return num / (den > 0 ? den : 1.0);
}

// Downloads the device tensor and compares it with the CPU's; records the line.
// a + b in one of four rotating buffers: a row's name, copied before the fourth next call.
static const char *cat(const char *a, const char *b) {
    static char buf[4][96];
    static int at;
    at = (at + 1) % 4;
    snprintf(buf[at], sizeof buf[at], "%s%s", a, b);
    return buf[at];
}

static row_t *compare(const char *name, const char *shape, const float *d, const float *cpu,
                      size_t n, double tol) {
    float *g = malloc(n * sizeof(float));
    TRY(vet_cuda_sync(ctx, &err));
    TRY(vet_cuda_download(ctx, g, d, n * sizeof(float), &err));
    double e = max_rel(g, cpu, n);
    int ok = e <= tol;
    if (!ok) failures++;
    printf("%s %s: max rel err %.3g (tol %.0e) %s\n", ok ? "ok" : "not ok", name, e, tol, shape);
    fflush(stdout);
    free(g);
    row_t *r = &table[n_rows < 511 ? n_rows++ : 511];
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    r->err = e;
    r->tol = tol;
    r->ms = 0;
    return r;
}

// Bit-exact comparison (ops that must equal the CPU's bits, not just its values): downloads the
// device tensor, counts the values whose bits differ and the elements dropped (== 0) on one
// side only, prints the line and records it (err = fraction of values that differ).
static row_t *compare_bits(const char *name, const char *shape, const float *d, const float *cpu,
                           size_t n) {
    float *g = malloc(n * sizeof(float));
    TRY(vet_cuda_sync(ctx, &err));
    TRY(vet_cuda_download(ctx, g, d, n * sizeof(float), &err));
    size_t bad = 0, mask_bad = 0;
    for (size_t i = 0; i < n; i++) {
        bad += memcmp(&g[i], &cpu[i], sizeof(float)) != 0;
        mask_bad += (g[i] == 0.0f) != (cpu[i] == 0.0f);
    }
    if (bad) failures++;
    printf("%s %s: %zu of %zu values differ in bits, %zu in the mask %s\n", bad ? "not ok" : "ok", name,
           bad, n, mask_bad, shape);
    fflush(stdout);
    free(g);
    row_t *r = &table[n_rows < 511 ? n_rows++ : 511];
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    r->err = (double)bad / (double)(n ? n : 1);
    r->tol = 0;
    r->ms = 0;
    return r;
}

// Whether two device buffers hold the same bytes (both downloaded).
static int same_bits_dev(const void *a, const void *b, size_t bytes) {
    unsigned char *x = malloc(bytes), *y = malloc(bytes);
    TRY(vet_cuda_sync(ctx, &err));
    TRY(vet_cuda_download(ctx, x, a, bytes, &err));
    TRY(vet_cuda_download(ctx, y, b, bytes, &err));
    int same = !memcmp(x, y, bytes);
    free(x), free(y);
    return same;
}

// Records a bit-for-bit comparison's line (err 0 or 1, tolerance 0).
static row_t *bits_row_as(const char *name, const char *shape, int same, const char *as) {
    if (!same) failures++;
    printf("%s %s: the same bits as %s %s\n", same ? "ok" : "not ok", name, as, shape);
    fflush(stdout);
    row_t *r = &table[n_rows < 511 ? n_rows++ : 511];
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    r->err = !same, r->tol = 0, r->ms = 0;
    return r;
}
static row_t *bits_row(const char *name, const char *shape, int same) {
    return bits_row_as(name, shape, same, "the unfused ops");
}

// The 16-bit entries of an adapter's products (lora_*16_cuda: what the 16-bit mode trains with)
// against their fp32 twins run on the widened values: the same bits, by contract; timed beside
// the fp32 rows (half the reads). x (N,W) rounded to fmt serves as x and as dout, A (R,W) as A and
// (its values read (W,R)) as B, du (N,R) as du and as u; s = 2.
static void lora16_rows(int N, int W, int R, const float *x, const float *A, const float *du, float p, int fmt) {
    const uint64_t seed = 0x5eedu;
    const size_t nx = (size_t)N * W, na = (size_t)R * W, nu = (size_t)N * R, nmax = na > nu ? na : nu;
    uint16_t *x16 = malloc(nx * 2);
    float *xw = malloc(nx * 4), *ref = malloc(nmax * 4);
    for (size_t i = 0; i < nx; i++) {
        x16[i] = fmt == VET_CUDA_F16 ? vet_f32_to_f16(x[i]) : vet_f32_to_bf16(x[i]);
        xw[i] = fmt == VET_CUDA_F16 ? vet_f16_to_f32(x16[i]) : vet_bf16_to_f32(x16[i]);
    }
    uint16_t *d_x16 = dev(x16, nx * 2);
    float *d_xw = devf(xw, nx), *d_A = devf(A, na), *d_du = devf(du, nu);
    float *d_ref = devf(NULL, nmax), *d_out = devf(NULL, nmax);
    const size_t ns = lora_grad_a_scratch_floats(N, W, R);
    float *d_s = devf(NULL, ns ? ns : 1);
    char sh[64];
    snprintf(sh, sizeof sh, "N=%d C=%d r=%d p=%g %s", N, W, R, p, fmt == VET_CUDA_F16 ? "fp16" : "bf16");
    row_t *r;
#define REF(call, n)                                                      \
    do {                                                                  \
        TRY(vet_cuda_memset0(ctx, d_ref, nmax * 4, &err));                \
        TRY(vet_cuda_memset0(ctx, d_out, nmax * 4, &err));                \
        TRY(call);                                                        \
        TRY(vet_cuda_sync(ctx, &err));                                    \
        TRY(vet_cuda_download(ctx, ref, d_ref, (n) * 4, &err));           \
    } while (0)
    REF(lora_down_dropout_cuda(ctx, d_ref, d_xw, d_A, p, seed, 37, N, W, R, &err), nu);
    TRY(lora_down_dropout16_cuda(ctx, d_out, d_x16, fmt, d_A, p, seed, 37, N, W, R, &err));
    r = compare_bits("lora_down_dropout16 == fp32 twin", sh, d_out, ref, nu);
    TIME(lora_down_dropout16_cuda(ctx, d_out, d_x16, fmt, d_A, p, seed, 37, N, W, R, &err), r->ms);
    REF(lora_grad_a_dropout_cuda(ctx, d_ref, d_du, d_xw, p, seed, 37, N, W, R, d_s, ns, &err), na);
    TRY(lora_grad_a_dropout16_cuda(ctx, d_out, d_du, d_x16, fmt, p, seed, 37, N, W, R, d_s, ns, &err));
    r = compare_bits("lora_grad_a_dropout16 == fp32 twin", sh, d_out, ref, na);
    TIME(lora_grad_a_dropout16_cuda(ctx, d_out, d_du, d_x16, fmt, p, seed, 37, N, W, R, d_s, ns, &err), r->ms);
    REF(lora_du_cuda(ctx, d_ref, d_xw, d_A, 2.0f, N, W, R, &err), nu);
    TRY(lora_du16_cuda(ctx, d_out, d_x16, fmt, d_A, 2.0f, N, W, R, &err));
    r = compare_bits("lora_du16 == fp32 twin", sh, d_out, ref, nu);
    TIME(lora_du16_cuda(ctx, d_out, d_x16, fmt, d_A, 2.0f, N, W, R, &err), r->ms);
    REF(lora_grad_b_cuda(ctx, d_ref, d_xw, d_du, 2.0f, N, W, R, d_s, ns, &err), na);
    TRY(lora_grad_b16_cuda(ctx, d_out, d_x16, fmt, d_du, 2.0f, N, W, R, d_s, ns, &err));
    r = compare_bits("lora_grad_b16 == fp32 twin", sh, d_out, ref, na);
    TIME(lora_grad_b16_cuda(ctx, d_out, d_x16, fmt, d_du, 2.0f, N, W, R, d_s, ns, &err), r->ms);
#undef REF
    free(x16), free(xw), free(ref);
    vet_cuda_mem_free(d_x16), vet_cuda_mem_free(d_xw), vet_cuda_mem_free(d_A), vet_cuda_mem_free(d_du);
    vet_cuda_mem_free(d_ref), vet_cuda_mem_free(d_out), vet_cuda_mem_free(d_s);
}

// The tensor-core entries (lora_*_mma_cuda: what the 16-bit modes train with) against the CPU's
// products on the operands rounded to fmt as the kernels round them (x16 after its dropout, A,
// B, du, u): only the fp32 sums' order differs, so a misplaced fragment element shows as an O(1)
// error. Timed beside the 16-bit CUDA-core rows of the same shape. Operands as lora16_rows's; dA
// and dB accumulate into random starting values.
static float round_to(float v, int fmt) {
    return fmt == VET_CUDA_F16 ? vet_f16_to_f32(vet_f32_to_f16(v)) : vet_bf16_to_f32(vet_f32_to_bf16(v));
}
static void lora_mma_rows(int N, int W, int R, const float *x, const float *A, const float *du, float p, int fmt) {
    const uint64_t seed = 0x5eedu;
    const size_t nx = (size_t)N * W, na = (size_t)R * W, nu = (size_t)N * R;
    uint16_t *x16 = malloc(nx * 2);
    float *xw = malloc(nx * 4), *xd = malloc(nx * 4), *Ar = malloc(na * 4), *dur = malloc(nu * 4);
    float *ref = malloc((na > nu ? na : nu) * 4), *acc0 = rnd(na, 1);
    const int f16 = fmt == VET_CUDA_F16;
    for (size_t i = 0; i < nx; i++) {
        x16[i] = f16 ? vet_f32_to_f16(x[i]) : vet_f32_to_bf16(x[i]);
        xw[i] = f16 ? vet_f16_to_f32(x16[i]) : vet_bf16_to_f32(x16[i]);
    }
    dropout_forward(xd, xw, p, seed, 37, N, W);
    for (size_t i = 0; i < nx; i++) xd[i] = round_to(xd[i], fmt);
    for (size_t i = 0; i < na; i++) Ar[i] = round_to(A[i], fmt);
    for (size_t i = 0; i < nu; i++) dur[i] = round_to(du[i], fmt);
    uint16_t *d_x16 = dev(x16, nx * 2);
    float *d_A = devf(A, na), *d_du = devf(du, nu), *d_u = devf(NULL, nu), *d_acc = devf(acc0, na);
    const size_t ns = lora_grad_a_scratch_floats(N, W, R);
    float *d_s = devf(NULL, ns ? ns : 1);
    char sh[64];
    snprintf(sh, sizeof sh, "N=%d C=%d r=%d p=%g %s", N, W, R, p, f16 ? "fp16" : "bf16");
    row_t *r;
    // u = dropout(x) A^T
    matmul_forward(ref, xd, Ar, NULL, N, W, R);
    TRY(lora_down_mma_cuda(ctx, d_u, d_x16, fmt, d_A, p, seed, 37, N, W, R, &err));
    r = compare("lora_down_mma vs rounded operands", sh, d_u, ref, nu, 1e-4);
    TIME(lora_down_mma_cuda(ctx, d_u, d_x16, fmt, d_A, p, seed, 37, N, W, R, &err), r->ms);
    // dA += du^T dropout(x)
    memcpy(ref, acc0, na * 4);
    vet_sgemm(1, 0, R, W, N, 1.0f, dur, R, xd, W, 1.0f, ref, W);
    TRY(lora_grad_a_mma_cuda(ctx, d_acc, d_du, d_x16, fmt, p, seed, 37, N, W, R, d_s, ns, &err));
    r = compare("lora_grad_a_mma vs rounded operands", sh, d_acc, ref, na, 1e-4);
    TIME(lora_grad_a_mma_cuda(ctx, d_acc, d_du, d_x16, fmt, p, seed, 37, N, W, R, d_s, ns, &err), r->ms);
    // x16 as dout (N,W), A's values read (W,R) as B: du = 2 dout B, dB += 2 dout^T u
    snprintf(sh, sizeof sh, "N=%d out=%d r=%d %s", N, W, R, f16 ? "fp16" : "bf16");
    vet_sgemm(0, 0, N, R, W, 2.0f, xw, W, Ar, R, 0.0f, ref, R);
    TRY(lora_du_mma_cuda(ctx, d_u, d_x16, fmt, d_A, 2.0f, N, W, R, &err));
    r = compare("lora_du_mma vs rounded operands", sh, d_u, ref, nu, 1e-4);
    TIME(lora_du_mma_cuda(ctx, d_u, d_x16, fmt, d_A, 2.0f, N, W, R, &err), r->ms);
    TRY(vet_cuda_upload(ctx, d_acc, acc0, na * 4, &err));
    memcpy(ref, acc0, na * 4);
    vet_sgemm(1, 0, W, R, N, 2.0f, xw, W, dur, R, 1.0f, ref, R);
    TRY(lora_grad_b_mma_cuda(ctx, d_acc, d_x16, fmt, d_du, 2.0f, N, W, R, d_s, ns, &err));
    r = compare("lora_grad_b_mma vs rounded operands", sh, d_acc, ref, na, 1e-4);
    TIME(lora_grad_b_mma_cuda(ctx, d_acc, d_x16, fmt, d_du, 2.0f, N, W, R, d_s, ns, &err), r->ms);
    // another format is refused with the reason
    int bad = lora_down_mma_cuda(ctx, d_u, d_x16, 3, d_A, p, seed, 37, N, W, R, &err);
    int ok = bad < 0 && strstr(err.msg, "lora_down_mma: format 3 is neither bf16 (1) nor fp16 (2)");
    if (!ok) failures++;
    printf("%s lora_down_mma refuses format 3\n", ok ? "ok" : "not ok");
    free(x16), free(xw), free(xd), free(Ar), free(dur), free(ref), free(acc0);
    vet_cuda_mem_free(d_x16), vet_cuda_mem_free(d_A), vet_cuda_mem_free(d_du), vet_cuda_mem_free(d_u);
    vet_cuda_mem_free(d_acc), vet_cuda_mem_free(d_s);
}

// The 16-bit-output GEMM (gate's and up's in the 16-bit mode): out (N,F) = x16 (N,C) · w16^T in
// fmt against the CPU on the widened inputs xr, wr, within the output's rounding (2^-8 of the
// largest value for bf16, 2^-10 for fp16: twice a half-ulp), timed. Then the linear layer with
// a bias (q, k and v of a model with biases): the CPU's product plus the bias rounded to fmt
// (bias on the host, d_b on the device), to the same tolerance.
static void half_out_rows(int fmt, const uint16_t *d_x16, const uint16_t *d_w16, const float *xr, const float *wr,
                          const float *bias, const float *d_b, int N, int C, int F, const char *sh) {
    const size_t no = (size_t)N * F;
    const double tol = fmt == VET_CUDA_F16 ? 1.0 / 1024 : 1.0 / 256;
    float *ref = malloc(no * 4), *d_wide = devf(NULL, no), *b16 = malloc((size_t)F * 4);
    int (*widen)(vet_cuda *, float *, const uint16_t *, size_t, vet_err *) =
        fmt == VET_CUDA_F16 ? f16_to_f32_cuda : bf16_to_f32_cuda;
    uint16_t *d_o = dev(NULL, no * 2);
    matmul_forward(ref, xr, wr, NULL, N, C, F);
    TRY(vet_cuda_gemm_half_out(ctx, fmt, 0, 1, N, F, C, 1.0f, d_x16, C, d_w16, C, d_o, F, &err));
    TRY(widen(ctx, d_wide, d_o, no, &err));
    row_t *r = compare(fmt == VET_CUDA_F16 ? "vet_cuda_gemm_half_out f16 vs rounded" : "vet_cuda_gemm_half_out bf16 vs rounded",
                       sh, d_wide, ref, no, tol);
    TIME(vet_cuda_gemm_half_out(ctx, fmt, 0, 1, N, F, C, 1.0f, d_x16, C, d_w16, C, d_o, F, &err), r->ms);
    for (int o = 0; o < F; o++)
        b16[o] = fmt == VET_CUDA_F16 ? vet_f16_to_f32(vet_f32_to_f16(bias[o])) : vet_bf16_to_f32(vet_f32_to_bf16(bias[o]));
    matmul_forward(ref, xr, wr, b16, N, C, F);
    TRY(matmul_forward_half_out_cuda(ctx, fmt, d_o, d_x16, d_w16, d_b, N, C, F, &err));
    TRY(widen(ctx, d_wide, d_o, no, &err));
    r = compare(fmt == VET_CUDA_F16 ? "matmul_forward_half_out f16 + bias vs rounded"
                                    : "matmul_forward_half_out bf16 + bias vs rounded",
                sh, d_wide, ref, no, tol);
    TIME(matmul_forward_half_out_cuda(ctx, fmt, d_o, d_x16, d_w16, d_b, N, C, F, &err), r->ms);
    free(ref), free(b16), vet_cuda_mem_free(d_wide), vet_cuda_mem_free(d_o);
    int bad = vet_cuda_gemm_half_out(ctx, 3, 0, 1, N, F, C, 1.0f, d_x16, C, d_w16, C, NULL, F, &err);
    int ok = bad < 0 && strstr(err.msg, "vet_cuda_gemm_half_out: format 3 is neither bf16 (1) nor fp16 (2)");
    if (!ok) failures++;
    printf("%s vet_cuda_gemm_half_out refuses format 3\n", ok ? "ok" : "not ok");
    bad = matmul_forward_half_out_cuda(ctx, 3, NULL, d_x16, d_w16, d_b, N, C, F, &err);
    ok = bad < 0 && strstr(err.msg, "matmul_forward_half_out: format 3 is neither bf16 (1) nor fp16 (2)");
    if (!ok) failures++;
    printf("%s matmul_forward_half_out refuses format 3\n", ok ? "ok" : "not ok");
}

// The decode step's attention on the CPU (lib/generate/decoder.c's attend_step): query row i of slot
// slots[i] against that slot's cache positions [0, pos[i]]; caches (n_slots, max_len, KVH, hd).
static void ref_attention_decode(float *out, const float *q, const float *kc, const float *vc,
                                 const int32_t *slots, const int32_t *pos, int n, int max_len,
                                 int H, int KVH, int hd) {
    const size_t KV = (size_t)KVH * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float *p = malloc((size_t)max_len * sizeof(float));
    for (int i = 0; i < n; i++)
        for (int h = 0; h < H; h++) {
            const int g = h / (H / KVH), T = pos[i] + 1;
            const float *K = kc + (size_t)slots[i] * max_len * KV + (size_t)g * hd;
            const float *V = vc + (size_t)slots[i] * max_len * KV + (size_t)g * hd;
            const float *qv = q + ((size_t)i * H + h) * hd;
            float *o = out + ((size_t)i * H + h) * hd, mx = -INFINITY, sum = 0.0f;
            for (int j = 0; j < T; j++) {
                float s = 0.0f;
                for (int d = 0; d < hd; d++) s += qv[d] * K[(size_t)j * KV + d];
                p[j] = s * scale;
                if (p[j] > mx) mx = p[j];
            }
            for (int j = 0; j < T; j++) sum += (p[j] = expf(p[j] - mx));
            for (int d = 0; d < hd; d++) {
                float acc = 0.0f;
                for (int j = 0; j < T; j++) acc += p[j] * V[(size_t)j * KV + d];
                o[d] = acc / sum;
            }
        }
    free(p);
}

typedef struct {
    const char *label;
    int B, T, C, H, KVH, hd, F, V, maxlen;
} config;

// Packed rows: samples of random length 1..maxlen back to back, the tail of odd rows padded.
static void make_batch(const config *c, int32_t *tokens, int32_t *seg, int32_t *pos,
                       int32_t *tgt) {
    for (int b = 0; b < c->B; b++) {
        int fill = b % 2 ? c->T - (int)vet_rng_below(&rng, (uint64_t)c->T / 3 + 1) : c->T;
        int i = 0, id = 0;
        while (i < fill) {
            int len = 1 + (int)vet_rng_below(&rng, (uint64_t)c->maxlen);
            for (int p = 0; p < len && i < fill; p++, i++) {
                seg[b * c->T + i] = id;
                pos[b * c->T + i] = p;
            }
            id++;
        }
        for (; i < c->T; i++) seg[b * c->T + i] = -1, pos[b * c->T + i] = 0;
    }
    for (int n = 0; n < c->B * c->T; n++) {
        tokens[n] = (int32_t)vet_rng_below(&rng, (uint64_t)c->V);
        tgt[n] = seg[n] < 0 || vet_rng_uniform(&rng) < 0.3f ? -1 : (int32_t)vet_rng_below(&rng, (uint64_t)c->V);
    }
}

// q, k, v on the device: fp32 for the fp32 kernels, bf16 for the tensor-core ones (the adapters
// below give both one type).
typedef int (*attn_bwd_fn)(vet_cuda *, float *, float *, float *, const float *, const void *, const void *,
                           const void *, const float *, const float *, const int32_t *, int, int, int, int, int, int,
                           void *, vet_err *);
static int attention_backward_f32_dev(vet_cuda *cx, float *dq, float *dk, float *dv, const float *dout, const void *q,
                                      const void *k, const void *v, const float *out, const float *lse,
                                      const int32_t *seg, int B, int T, int H, int KVH, int hd, int acc, void *scratch,
                                      vet_err *e) {
    return attention_backward_cuda(cx, dq, dk, dv, dout, q, k, v, out, lse, seg, B, T, H, KVH, hd, acc, scratch, e);
}
static const uint16_t *parity_dout16;  // the bf16 dout of the tensor-core attention's rows
static int attention_backward_bf16_dev(vet_cuda *cx, float *dq, float *dk, float *dv, const float *dout,
                                       const void *q, const void *k, const void *v, const float *out,
                                       const float *lse, const int32_t *seg, int B, int T, int H, int KVH, int hd,
                                       int acc, void *scratch, vet_err *e) {
    return attention_backward_bf16_cuda(cx, dq, dk, dv, dout, parity_dout16, q, k, v, out, NULL, lse, seg, B, T, H,
                                        KVH, hd, acc, scratch, e);
}
typedef void (*attn_bwd_cpu)(float *, float *, float *, const float *, const float *, const float *, const float *,
                             const float *, const float *, const int32_t *, int, int, int, int, int);

// The written (=) backward: NaNs in dq, dk, dv before (a kernel that read them would show it),
// the CPU's gradients from zeros after, padding rows 0.
static void attention_written(const char *name, const char *sh, attn_bwd_fn gpu, attn_bwd_cpu cpu, const float *dout,
                              const float *q, const float *k, const float *v, const float *out, const float *lse,
                              const int32_t *seg, const float *d_dout, const void *d_q, const void *d_k,
                              const void *d_v, const float *d_out, const float *d_lse, const int32_t *d_seg,
                              void *scratch, int B, int T, int H, int KVH, int hd, double tol) {
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KVH * hd;
    float *dq = calloc(nq, 4), *dk = calloc(nk, 4), *dv = calloc(nk, 4), *nan = malloc(nq * 4);
    for (size_t i = 0; i < nq; i++) nan[i] = NAN;
    cpu(dq, dk, dv, dout, q, k, v, out, lse, seg, B, T, H, KVH, hd);
    float *d_dq = devf(nan, nq), *d_dk = devf(nan, nk), *d_dv = devf(nan, nk);
    TRY(gpu(ctx, d_dq, d_dk, d_dv, d_dout, d_q, d_k, d_v, d_out, d_lse, d_seg, B, T, H, KVH, hd, 0, scratch, &err));
    char nm[64];
    snprintf(nm, sizeof nm, "%s written dq", name);
    compare(nm, sh, d_dq, dq, nq, tol);
    snprintf(nm, sizeof nm, "%s written dk", name);
    compare(nm, sh, d_dk, dk, nk, tol);
    snprintf(nm, sizeof nm, "%s written dv", name);
    compare(nm, sh, d_dv, dv, nk, tol);
    free(dq), free(dk), free(dv), free(nan);
    vet_cuda_mem_free(d_dq), vet_cuda_mem_free(d_dk), vet_cuda_mem_free(d_dv);
}

// --only SECTIONS (comma separated: attention, lora, other): run those sections alone, as the
// bundle's racecheck part does (compute-sanitizer's racecheck and synccheck are slow, and the
// kernels with shared-memory pipelines are the attention's and the adapters').
static const char *only;
static int want(const char *section) {
    if (!only) return 1;
    size_t n = strlen(section);
    for (const char *p = only; (p = strstr(p, section)) != NULL; p += n)
        if ((p == only || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
    return 0;
}

static void run_config(const config *c) {
    const int B = c->B, T = c->T, N = B * T, C = c->C, H = c->H, KVH = c->KVH, hd = c->hd;
    const int F = c->F, V = c->V, Q = H * hd, KV = KVH * hd;
    const double F32 = 1e-5;
    char sh[64];
    printf("# config %s: B=%d T=%d C=%d H=%d KVH=%d hd=%d F=%d V=%d\n", c->label, B, T, C, H, KVH,
           hd, F, V);
    int32_t *tokens = malloc(N * 4), *seg = malloc(N * 4), *pos = malloc(N * 4), *tgt = malloc(N * 4);
    make_batch(c, tokens, seg, pos, tgt);
    int32_t *d_tokens = dev(tokens, N * 4), *d_seg = dev(seg, N * 4), *d_pos = dev(pos, N * 4),
            *d_tgt = dev(tgt, N * 4);
    row_t *r;

    // --- embedding (V,C) ---
    if (want("other")) {
        float *embed = rnd((size_t)V * C, 1), *out = malloc((size_t)N * C * 4);
        float *d_embed = devf(embed, (size_t)V * C), *d_out = devf(NULL, (size_t)N * C);
        embedding_forward(out, tokens, embed, N, C);
        TRY(embedding_forward_cuda(ctx, d_out, d_tokens, d_embed, N, C, &err));
        snprintf(sh, sizeof sh, "N=%d C=%d V=%d", N, C, V);
        r = compare("embedding_forward", sh, d_out, out, (size_t)N * C, F32);
        TIME(embedding_forward_cuda(ctx, d_out, d_tokens, d_embed, N, C, &err), r->ms);
        // bf16 table: exact widening, so the CPU on the rounded table must agree exactly
        uint16_t *e16 = malloc((size_t)V * C * 2);
        for (size_t i = 0; i < (size_t)V * C; i++) e16[i] = vet_f32_to_bf16(embed[i]);
        for (size_t i = 0; i < (size_t)V * C; i++) embed[i] = vet_bf16_to_f32(e16[i]);
        uint16_t *d_e16 = dev(e16, (size_t)V * C * 2);
        embedding_forward(out, tokens, embed, N, C);
        TRY(embedding_forward_bf16_cuda(ctx, d_out, d_tokens, d_e16, N, C, &err));
        compare("embedding_forward_bf16", sh, d_out, out, (size_t)N * C, 0.0);
        // backward: dembed starts random, repeated tokens must add
        float *dout = rnd((size_t)N * C, 1), *dembed = rnd((size_t)V * C, 1);
        float *d_dout = devf(dout, (size_t)N * C), *d_dembed = devf(dembed, (size_t)V * C);
        embedding_backward(dembed, dout, tokens, N, C);
        TRY(embedding_backward_cuda(ctx, d_dembed, d_dout, d_tokens, N, C, &err));
        r = compare("embedding_backward", sh, d_dembed, dembed, (size_t)V * C, F32);
        TIME(embedding_backward_cuda(ctx, d_dembed, d_dout, d_tokens, N, C, &err), r->ms);
        free(embed), free(out), free(e16), free(dout), free(dembed);
        vet_cuda_mem_free(d_embed), vet_cuda_mem_free(d_out), vet_cuda_mem_free(d_e16);
        vet_cuda_mem_free(d_dout), vet_cuda_mem_free(d_dembed);
    }

    // --- bf16 conversion: bit-exact against lib/base/half.h, special values included ---
    if (want("other")) {
        size_t n = (size_t)N * C;
        float *x = rnd(n, 3);
        const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1.00390625f /* tie */,
                                 1.01171875f /* tie, odd */, 3.4e38f, 1e-40f /* subnormal */};
        for (size_t i = 0; i < sizeof special / sizeof *special && i < n; i++) x[i] = special[i];
        uint16_t *h = malloc(n * 2), *g = malloc(n * 2);
        for (size_t i = 0; i < n; i++) h[i] = vet_f32_to_bf16(x[i]);
        float *d_x = devf(x, n);
        uint16_t *d_h = dev(NULL, n * 2);
        TRY(f32_to_bf16_cuda(ctx, d_h, d_x, n, &err));
        TRY(vet_cuda_download(ctx, g, d_h, n * 2, &err));
        size_t bad = 0;
        for (size_t i = 0; i < n; i++)
            if (g[i] != h[i] && !((h[i] & 0x7fff) > 0x7f80 && (g[i] & 0x7fff) > 0x7f80)) bad++;
        printf("%s f32_to_bf16: %zu of %zu values differ in bits\n", bad ? "not ok" : "ok", bad, n);
        if (bad) failures++;
        float *back = malloc(n * 4);
        for (size_t i = 0; i < n; i++) back[i] = vet_bf16_to_f32(h[i]);
        back[4] = 0;  // nan: compared as 0 below
        TRY(bf16_to_f32_cuda(ctx, d_x, d_h, n, &err));
        float *gb = malloc(n * 4);
        TRY(vet_cuda_download(ctx, gb, d_x, n * 4, &err));
        gb[4] = isnan(gb[4]) ? 0 : gb[4];
        size_t bad2 = 0;
        for (size_t i = 0; i < n; i++) bad2 += memcmp(&gb[i], &back[i], 4) != 0;
        printf("%s bf16_to_f32: %zu of %zu values differ in bits\n", bad2 ? "not ok" : "ok", bad2, n);
        if (bad2) failures++;
        free(x), free(h), free(g), free(back), free(gb);
        vet_cuda_mem_free(d_x), vet_cuda_mem_free(d_h);
    }

    // --- fused passes: the same bits as the unfused kernels in sequence, on the device ---
    if (want("other")) {
        size_t n = (size_t)N * C, nf = (size_t)N * F;
        float *x = rnd(n, 1), *res = rnd(n, 1), *w = rnd(C, 1), *gt = rnd(nf, 2), *up = rnd(nf, 1);
        float *d_x1 = devf(x, n), *d_x2 = devf(x, n), *d_res = devf(res, n), *d_w = devf(w, C);
        float *d_o1 = devf(NULL, n), *d_o2 = devf(NULL, n), *d_r1 = devf(NULL, N), *d_r2 = devf(NULL, N);
        uint16_t *d_h1 = dev(NULL, nf * 2), *d_h2 = dev(NULL, nf * 2), *d_g1 = dev(NULL, nf * 2), *d_g2 = dev(NULL, nf * 2);
        float *d_gt = devf(gt, nf), *d_up = devf(up, nf), *d_a1 = devf(NULL, nf), *d_a2 = devf(NULL, nf);
        snprintf(sh, sizeof sh, "N=%d C=%d F=%d", N, C, F);
        const char *fmt_name[3] = {"", "bf16", "f16"};
        for (int fmt = VET_CUDA_BF16; fmt <= VET_CUDA_F16; fmt++) {
            int (*conv)(vet_cuda *, uint16_t *, const float *, size_t, vet_err *) =
                fmt == VET_CUDA_F16 ? f32_to_f16_cuda : f32_to_bf16_cuda;
            // x += res; norm; round  ==  the fused pass (x written back alike)
            TRY(vet_cuda_upload(ctx, d_x1, x, n * 4, &err));
            TRY(vet_cuda_upload(ctx, d_x2, x, n * 4, &err));
            TRY(add_inplace_cuda(ctx, d_x1, d_res, n, &err));
            TRY(rmsnorm_forward_cuda(ctx, d_o1, d_r1, d_x1, d_w, N, C, 1e-5f, &err));
            TRY(conv(ctx, d_h1, d_o1, n, &err));
            TRY(rmsnorm_forward_fused_cuda(ctx, d_o2, d_h2, fmt, d_r2, d_x2, d_res, d_w, N, C, 1e-5f, &err));
            char nm[64];
            snprintf(nm, sizeof nm, "rmsnorm_forward_fused %s", fmt_name[fmt]);
            int same = same_bits_dev(d_x1, d_x2, n * 4) && same_bits_dev(d_o1, d_o2, n * 4) &&
                       same_bits_dev(d_r1, d_r2, (size_t)N * 4) && same_bits_dev(d_h1, d_h2, n * 2);
            bits_row(nm, sh, same);
            TIME(rmsnorm_forward_fused_cuda(ctx, NULL, d_h2, fmt, d_r2, d_x2, NULL, d_w, N, C, 1e-5f, &err),
                 table[n_rows - 1].ms);
            // swiglu; round  ==  the fused pass
            TRY(swiglu_forward_cuda(ctx, d_a1, d_gt, d_up, nf, &err));
            TRY(conv(ctx, d_h1, d_a1, nf, &err));
            TRY(swiglu_forward_half_cuda(ctx, d_a2, d_h2, fmt, d_gt, d_up, nf, &err));
            snprintf(nm, sizeof nm, "swiglu_forward_half %s", fmt_name[fmt]);
            bits_row(nm, sh, same_bits_dev(d_a1, d_a2, nf * 4) && same_bits_dev(d_h1, d_h2, nf * 2));
            TIME(swiglu_forward_half_cuda(ctx, NULL, d_h2, fmt, d_gt, d_up, nf, &err), table[n_rows - 1].ms);
            // swiglu's backward; round both  ==  the 16-bit pass (up serves as dout too)
            TRY(swiglu_backward_set_cuda(ctx, d_a1, d_a2, d_up, d_gt, d_up, nf, &err));
            TRY(conv(ctx, d_h1, d_a1, nf, &err));
            TRY(conv(ctx, d_g1, d_a2, nf, &err));
            TRY(swiglu_backward_half_cuda(ctx, d_h2, d_g2, fmt, d_up, d_gt, d_up, nf, &err));
            snprintf(nm, sizeof nm, "swiglu_backward_half %s", fmt_name[fmt]);
            bits_row(nm, sh, same_bits_dev(d_h1, d_h2, nf * 2) && same_bits_dev(d_g1, d_g2, nf * 2));
            TIME(swiglu_backward_half_cuda(ctx, d_h2, d_g2, fmt, d_up, d_gt, d_up, nf, &err), table[n_rows - 1].ms);
        }
        free(x), free(res), free(w), free(gt), free(up);
        void *bufs[] = {d_x1, d_x2, d_res, d_w, d_o1, d_o2, d_r1, d_r2, d_h1, d_h2, d_gt, d_up, d_a1, d_a2, d_g1, d_g2};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vet_cuda_mem_free(bufs[i]);
    }

    // --- rmsnorm ---
    if (want("other")) {
        size_t n = (size_t)N * C;
        float *x = rnd(n, 1), *w = rnd(C, 1), *out = malloc(n * 4), *rstd = malloc(N * 4);
        float *d_x = devf(x, n), *d_w = devf(w, C), *d_out = devf(NULL, n), *d_rstd = devf(NULL, N);
        rmsnorm_forward(out, rstd, x, w, N, C, 1e-5f);
        TRY(rmsnorm_forward_cuda(ctx, d_out, d_rstd, d_x, d_w, N, C, 1e-5f, &err));
        snprintf(sh, sizeof sh, "N=%d C=%d", N, C);
        r = compare("rmsnorm_forward", sh, d_out, out, n, F32);
        compare("rmsnorm_forward rstd", sh, d_rstd, rstd, N, F32);
        TIME(rmsnorm_forward_cuda(ctx, d_out, d_rstd, d_x, d_w, N, C, 1e-5f, &err), r->ms);
        float *dout = rnd(n, 1), *dx = rnd(n, 1), *dw = rnd(C, 1);
        float *d_dout = devf(dout, n), *d_dx = devf(dx, n), *d_dw = devf(dw, C);
        rmsnorm_backward(dx, dw, dout, x, w, rstd, N, C);
        TRY(rmsnorm_backward_cuda(ctx, d_dx, d_dw, d_dout, d_x, d_w, d_rstd, N, C, &err));
        r = compare("rmsnorm_backward dinp", sh, d_dx, dx, n, F32);
        compare("rmsnorm_backward dweight", sh, d_dw, dw, C, F32);
        TIME(rmsnorm_backward_cuda(ctx, d_dx, d_dw, d_dout, d_x, d_w, d_rstd, N, C, &err), r->ms);
        free(x), free(w), free(out), free(rstd), free(dout), free(dx), free(dw);
        vet_cuda_mem_free(d_x), vet_cuda_mem_free(d_w), vet_cuda_mem_free(d_out);
        vet_cuda_mem_free(d_rstd), vet_cuda_mem_free(d_dout), vet_cuda_mem_free(d_dx);
        vet_cuda_mem_free(d_dw);
    }

    // --- matmul: the MLP's up projection (N,C) -> (N,F), with a bias ---
    if (want("other")) {
        float *x = rnd((size_t)N * C, 1), *w = rnd((size_t)F * C, 0.05f), *bias = rnd(F, 1);
        float *out = malloc((size_t)N * F * 4);
        float *d_x = devf(x, (size_t)N * C), *d_w = devf(w, (size_t)F * C), *d_b = devf(bias, F);
        float *d_out = devf(NULL, (size_t)N * F);
        matmul_forward(out, x, w, bias, N, C, F);
        TRY(matmul_forward_cuda(ctx, d_out, d_x, d_w, d_b, N, C, F, &err));
        snprintf(sh, sizeof sh, "N=%d C=%d OC=%d", N, C, F);
        r = compare("matmul_forward", sh, d_out, out, (size_t)N * F, F32);
        TIME(matmul_forward_cuda(ctx, d_out, d_x, d_w, d_b, N, C, F, &err), r->ms);
        float *dout = rnd((size_t)N * F, 1), *dx = rnd((size_t)N * C, 1);
        float *dw = rnd((size_t)F * C, 1), *db = rnd(F, 1);
        float *d_dout = devf(dout, (size_t)N * F), *d_dx = devf(dx, (size_t)N * C);
        float *d_dw = devf(dw, (size_t)F * C), *d_db = devf(db, F);
        matmul_backward(dx, dw, db, dout, x, w, N, C, F);
        TRY(matmul_backward_cuda(ctx, d_dx, d_dw, d_db, d_dout, d_x, d_w, N, C, F, &err));
        r = compare("matmul_backward dinp", sh, d_dx, dx, (size_t)N * C, F32);
        compare("matmul_backward dweight", sh, d_dw, dw, (size_t)F * C, F32);
        compare("matmul_backward dbias", sh, d_db, db, F, F32);
        TIME(matmul_backward_cuda(ctx, d_dx, d_dw, d_db, d_dout, d_x, d_w, N, C, F, &err), r->ms);

        // bf16 storage: against the CPU on the rounded values (only the sum order differs) and
        // on the original fp32 values (what bf16 storage costs).
        size_t nx = (size_t)N * C, nw = (size_t)F * C, no = (size_t)N * F;
        uint16_t *x16 = malloc(nx * 2), *w16 = malloc(nw * 2), *o16 = malloc(no * 2);
        float *xr = malloc(nx * 4), *wr = malloc(nw * 4), *dor = malloc(no * 4);
        for (size_t i = 0; i < nx; i++) xr[i] = vet_bf16_to_f32(x16[i] = vet_f32_to_bf16(x[i]));
        for (size_t i = 0; i < nw; i++) wr[i] = vet_bf16_to_f32(w16[i] = vet_f32_to_bf16(w[i]));
        for (size_t i = 0; i < no; i++) dor[i] = vet_bf16_to_f32(o16[i] = vet_f32_to_bf16(dout[i]));
        uint16_t *d_x16 = dev(x16, nx * 2), *d_w16 = dev(w16, nw * 2), *d_o16 = dev(o16, no * 2);
        float *exact = malloc(no * 4);
        matmul_forward(exact, x, w, bias, N, C, F);  // fp32 inputs
        matmul_forward(out, xr, wr, bias, N, C, F);  // rounded inputs
        TRY(matmul_forward_bf16_cuda(ctx, d_out, d_x16, d_w16, d_b, N, C, F, &err));
        r = compare("matmul_forward_bf16 vs rounded", sh, d_out, out, no, 1e-4);
        TIME(matmul_forward_bf16_cuda(ctx, d_out, d_x16, d_w16, d_b, N, C, F, &err), r->ms);
        TRY(matmul_forward_bf16_cuda(ctx, d_out, d_x16, d_w16, d_b, N, C, F, &err));
        compare("matmul_forward_bf16 vs fp32", sh, d_out, exact, no, 1e-2);
        half_out_rows(VET_CUDA_BF16, d_x16, d_w16, xr, wr, bias, d_b, N, C, F, sh);
        float *dx2 = calloc(nx, 4), *dw2 = calloc(nw, 4);
        float *d_dx2 = devf(NULL, nx), *d_dw2 = devf(NULL, nw);
        matmul_backward(dx2, dw2, NULL, dor, xr, wr, N, C, F);
        TRY(matmul_backward_bf16_cuda(ctx, d_dx2, d_dw2, d_o16, d_x16, d_w16, N, C, F, &err));
        compare("matmul_backward_bf16 dinp", sh, d_dx2, dx2, nx, 1e-4);
        compare("matmul_backward_bf16 dweight", sh, d_dw2, dw2, nw, 1e-4);
        free(x), free(w), free(bias), free(out), free(dout), free(dx), free(dw), free(db);
        free(x16), free(w16), free(o16), free(xr), free(wr), free(dor), free(exact), free(dx2), free(dw2);
        vet_cuda_mem_free(d_x), vet_cuda_mem_free(d_w), vet_cuda_mem_free(d_b);
        vet_cuda_mem_free(d_out), vet_cuda_mem_free(d_dout), vet_cuda_mem_free(d_dx);
        vet_cuda_mem_free(d_dw), vet_cuda_mem_free(d_db), vet_cuda_mem_free(d_x16);
        vet_cuda_mem_free(d_w16), vet_cuda_mem_free(d_o16), vet_cuda_mem_free(d_dx2);
        vet_cuda_mem_free(d_dw2);
    }

    // --- fp16 (kernels/fp16.cu): conversion bit-exact against lib/base/half.h (range edges, ties,
    //     subnormals), the embedding on an fp16 table exact, the GEMMs against the CPU on the
    //     rounded values ---
    if (want("other")) {
        size_t n = (size_t)N * C;
        float *x = rnd(n, 3);
        const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 65504.0f, 65519.0f, 65520.0f /* -> inf */,
                                 1.00048828125f /* tie, even */, 1.00146484375f /* tie, odd */, 1e-5f, -3e-8f,
                                 2.98023224e-8f /* 2^-25: tie to 0 */, 6.1035156e-5f /* 2^-14 */, 1e30f};
        size_t ns = sizeof special / sizeof *special;
        for (size_t i = 0; i < ns && i < n; i++) x[i] = special[i];
        uint16_t *h = malloc(n * 2), *g = malloc(n * 2);
        for (size_t i = 0; i < n; i++) h[i] = vet_f32_to_f16(x[i]);
        float *d_x = devf(x, n);
        uint16_t *d_h = dev(NULL, n * 2);
        TRY(f32_to_f16_cuda(ctx, d_h, d_x, n, &err));
        TRY(vet_cuda_download(ctx, g, d_h, n * 2, &err));
        size_t bad = 0;
        for (size_t i = 0; i < n; i++)
            if (g[i] != h[i] && !((h[i] & 0x7fff) > 0x7c00 && (g[i] & 0x7fff) > 0x7c00)) bad++;
        printf("%s f32_to_f16: %zu of %zu values differ in bits\n", bad ? "not ok" : "ok", bad, n);
        if (bad) failures++;
        float *back = malloc(n * 4), *gb = malloc(n * 4);
        for (size_t i = 0; i < n; i++) back[i] = vet_f16_to_f32(h[i]);
        TRY(f16_to_f32_cuda(ctx, d_x, d_h, n, &err));
        TRY(vet_cuda_download(ctx, gb, d_x, n * 4, &err));
        size_t bad2 = 0;
        for (size_t i = 0; i < n; i++) bad2 += !(isnan(gb[i]) && isnan(back[i])) && memcmp(&gb[i], &back[i], 4) != 0;
        printf("%s f16_to_f32: %zu of %zu values differ in bits\n", bad2 ? "not ok" : "ok", bad2, n);
        if (bad2) failures++;
        free(x), free(h), free(g), free(back), free(gb);
        vet_cuda_mem_free(d_x), vet_cuda_mem_free(d_h);

        // embedding on an fp16 table (V,C): exact widening
        float *embed = rnd((size_t)V * C, 1), *out = malloc((size_t)N * C * 4);
        uint16_t *e16 = malloc((size_t)V * C * 2);
        for (size_t i = 0; i < (size_t)V * C; i++) embed[i] = vet_f16_to_f32(e16[i] = vet_f32_to_f16(embed[i]));
        uint16_t *d_e16 = dev(e16, (size_t)V * C * 2);
        float *d_out = devf(NULL, (size_t)N * C);
        embedding_forward(out, tokens, embed, N, C);
        TRY(embedding_forward_f16_cuda(ctx, d_out, d_tokens, d_e16, N, C, &err));
        snprintf(sh, sizeof sh, "N=%d C=%d V=%d", N, C, V);
        compare("embedding_forward_f16", sh, d_out, out, (size_t)N * C, 0.0);
        free(embed), free(out), free(e16);
        vet_cuda_mem_free(d_e16), vet_cuda_mem_free(d_out);

        // the linear layer (N,C) -> (N,F) with a bias, fp16 storage
        size_t nx = (size_t)N * C, nw = (size_t)F * C, no = (size_t)N * F;
        float *xr = rnd(nx, 1), *wr = rnd(nw, 0.05f), *bias = rnd(F, 1), *dor = rnd(no, 1);
        uint16_t *x16 = malloc(nx * 2), *w16 = malloc(nw * 2), *o16 = malloc(no * 2);
        for (size_t i = 0; i < nx; i++) xr[i] = vet_f16_to_f32(x16[i] = vet_f32_to_f16(xr[i]));
        for (size_t i = 0; i < nw; i++) wr[i] = vet_f16_to_f32(w16[i] = vet_f32_to_f16(wr[i]));
        for (size_t i = 0; i < no; i++) dor[i] = vet_f16_to_f32(o16[i] = vet_f32_to_f16(dor[i]));
        uint16_t *d_x16 = dev(x16, nx * 2), *d_w16 = dev(w16, nw * 2), *d_o16 = dev(o16, no * 2);
        float *d_b = devf(bias, F), *d_mo = devf(NULL, no), *mo = malloc(no * 4);
        matmul_forward(mo, xr, wr, bias, N, C, F);
        TRY(matmul_forward_f16_cuda(ctx, d_mo, d_x16, d_w16, d_b, N, C, F, &err));
        snprintf(sh, sizeof sh, "N=%d C=%d OC=%d", N, C, F);
        r = compare("matmul_forward_f16 vs rounded", sh, d_mo, mo, no, 1e-4);
        TIME(matmul_forward_f16_cuda(ctx, d_mo, d_x16, d_w16, d_b, N, C, F, &err), r->ms);
        half_out_rows(VET_CUDA_F16, d_x16, d_w16, xr, wr, bias, d_b, N, C, F, sh);
        float *dx2 = calloc(nx, 4), *dw2 = calloc(nw, 4);
        float *d_dx2 = devf(NULL, nx), *d_dw2 = devf(NULL, nw);
        matmul_backward(dx2, dw2, NULL, dor, xr, wr, N, C, F);
        TRY(matmul_backward_f16_cuda(ctx, d_dx2, d_dw2, d_o16, d_x16, d_w16, N, C, F, &err));
        compare("matmul_backward_f16 dinp", sh, d_dx2, dx2, nx, 1e-4);
        compare("matmul_backward_f16 dweight", sh, d_dw2, dw2, nw, 1e-4);
        free(xr), free(wr), free(bias), free(dor), free(x16), free(w16), free(o16), free(mo), free(dx2), free(dw2);
        vet_cuda_mem_free(d_x16), vet_cuda_mem_free(d_w16), vet_cuda_mem_free(d_o16), vet_cuda_mem_free(d_b);
        vet_cuda_mem_free(d_mo), vet_cuda_mem_free(d_dx2), vet_cuda_mem_free(d_dw2);
    }

    // --- quantized weights: device dequantization = lib/model/quant.c's, bit for bit; the linear
    //     layer on them against the CPU GEMM on the host-dequantized weight ---
    // W (OC,K) with OC = F-1, K = C-1: odd sizes, nf4 blocks across rows and a partial last
    // block; one zero row (int8 scale 0) and one zero nf4 block. Then OC = F, K = C (multiples of
    // 8: the dequantization's 8-elements-a-thread kernels).
    for (int kind_shape = 0; kind_shape < 4 && want("other"); kind_shape++) {
        const int kind = VET_CUDA_Q_INT8 + kind_shape % 2, even = kind_shape / 2;
        const int OC = even ? F : F - 1, K = even ? C : C - 1;
        const size_t nw = (size_t)OC * K, nx = (size_t)N * K, no = (size_t)N * OC;
        const char *kn = kind == VET_CUDA_Q_INT8 ? "int8" : "nf4";
        float *w = rnd(nw, 0.05f);
        for (int col = 0; col < K; col++) w[(size_t)3 * K + col] = 0.0f;
        for (size_t i = 0; i < 64 && 128 + i < nw; i++) w[128 + i] = 0.0f;
        size_t qb = kind == VET_CUDA_Q_INT8 ? nw : vet_nf4_dq_bytes(nw);
        size_t ns = kind == VET_CUDA_Q_INT8 ? (size_t)OC : vet_nf4_dq_scales(nw);
        void *q = malloc(qb);
        float *sc = malloc(ns * 4), *wd = malloc(nw * 4);
        int qrc = kind == VET_CUDA_Q_INT8 ? vet_quant_int8(q, sc, w, OC, K, &err) : vet_quant_nf4_dq(q, sc, w, nw, &err);
        if (qrc < 0) {
            printf("not ok quantize %s: %s\n", kn, err.msg);
            exit(1);
        }
        if (kind == VET_CUDA_Q_INT8) vet_dequant_int8(wd, q, sc, OC, K);
        else vet_dequant_nf4_dq(wd, q, sc, nw);
        void *d_q = dev(q, qb);
        float *d_sc = devf(sc, ns), *d_wd = devf(NULL, nw);
        vet_cuda_qweight qw = {kind, d_q, d_sc};
        char nm[64];
        snprintf(sh, sizeof sh, "OC=%d C=%d", OC, K);
        TRY(dequant_cuda(ctx, d_wd, &qw, OC, K, &err));
        snprintf(nm, sizeof nm, "dequant %s fp32", kn);
        r = compare(nm, sh, d_wd, wd, nw, 0.0);
        TIME(dequant_cuda(ctx, d_wd, &qw, OC, K, &err), r->ms);
        // bf16: every value's bits equal vet_f32_to_bf16 of the host's
        uint16_t *h16 = malloc(nw * 2), *g16 = malloc(nw * 2), *d_w16 = dev(NULL, nw * 2);
        for (size_t i = 0; i < nw; i++) h16[i] = vet_f32_to_bf16(wd[i]);
        TRY(dequant_bf16_cuda(ctx, d_w16, &qw, OC, K, &err));
        TRY(vet_cuda_sync(ctx, &err));
        TRY(vet_cuda_download(ctx, g16, d_w16, nw * 2, &err));
        size_t bad = 0;
        for (size_t i = 0; i < nw; i++) bad += g16[i] != h16[i];
        printf("%s dequant %s bf16: %zu of %zu values differ in bits\n", bad ? "not ok" : "ok", kn, bad, nw);
        if (bad) failures++;
        if (even) {  // the aligned shape is here for the dequantization's kernels alone
            free(w), free(q), free(sc), free(wd), free(h16), free(g16);
            vet_cuda_mem_free(d_q), vet_cuda_mem_free(d_sc), vet_cuda_mem_free(d_wd), vet_cuda_mem_free(d_w16);
            continue;
        }
        // the linear layer: fp32 path vs the CPU on the dequantized weight (1e-5); bf16 path vs
        // the CPU on the bf16-rounded inputs and weight (1e-4, as the bf16 GEMM above)
        float *x = rnd(nx, 1), *bias = rnd(OC, 1), *out = malloc(no * 4), *xr = malloc(nx * 4);
        float *wr = malloc(nw * 4), *dout = rnd(no, 1), *dor = malloc(no * 4);
        uint16_t *x16 = malloc(nx * 2), *o16 = malloc(no * 2);
        for (size_t i = 0; i < nx; i++) xr[i] = vet_bf16_to_f32(x16[i] = vet_f32_to_bf16(x[i]));
        for (size_t i = 0; i < nw; i++) wr[i] = vet_bf16_to_f32(h16[i]);
        for (size_t i = 0; i < no; i++) dor[i] = vet_bf16_to_f32(o16[i] = vet_f32_to_bf16(dout[i]));
        float *d_x = devf(x, nx), *d_b = devf(bias, OC), *d_out = devf(NULL, no), *d_dout = devf(dout, no);
        uint16_t *d_x16 = dev(x16, nx * 2), *d_o16 = dev(o16, no * 2);
        void *scratch = dev(NULL, nw * 4);
        matmul_forward(out, x, wd, bias, N, K, OC);
        TRY(matmul_forward_q_cuda(ctx, d_out, d_x, NULL, &qw, d_b, N, K, OC, scratch, &err));
        snprintf(sh, sizeof sh, "N=%d C=%d OC=%d", N, K, OC);
        snprintf(nm, sizeof nm, "matmul_forward_q %s fp32", kn);
        compare(nm, sh, d_out, out, no, F32);
        matmul_forward(out, xr, wr, bias, N, K, OC);
        TRY(matmul_forward_q_cuda(ctx, d_out, NULL, d_x16, &qw, d_b, N, K, OC, scratch, &err));
        snprintf(nm, sizeof nm, "matmul_forward_q %s bf16", kn);
        r = compare(nm, sh, d_out, out, no, 1e-4);
        TIME(matmul_forward_q_cuda(ctx, d_out, NULL, d_x16, &qw, d_b, N, K, OC, scratch, &err), r->ms);
        float *dx = rnd(nx, 1), *dx0 = malloc(nx * 4);  // += from the same random start
        memcpy(dx0, dx, nx * 4);
        float *d_dx = devf(dx, nx);
        matmul_backward(dx, NULL, NULL, dout, NULL, wd, N, K, OC);
        TRY(matmul_backward_q_cuda(ctx, d_dx, d_dout, NULL, &qw, N, K, OC, scratch, &err));
        snprintf(nm, sizeof nm, "matmul_backward_q %s fp32 dinp", kn);
        compare(nm, sh, d_dx, dx, nx, F32);
        memcpy(dx, dx0, nx * 4);
        TRY(vet_cuda_upload(ctx, d_dx, dx0, nx * 4, &err));
        matmul_backward(dx, NULL, NULL, dor, NULL, wr, N, K, OC);
        TRY(matmul_backward_q_cuda(ctx, d_dx, NULL, d_o16, &qw, N, K, OC, scratch, &err));
        snprintf(nm, sizeof nm, "matmul_backward_q %s bf16 dinp", kn);
        r = compare(nm, sh, d_dx, dx, nx, 1e-4);
        TIME(matmul_backward_q_cuda(ctx, d_dx, NULL, d_o16, &qw, N, K, OC, scratch, &err), r->ms);
        free(w), free(q), free(sc), free(wd), free(h16), free(g16), free(x), free(bias), free(out), free(xr);
        free(wr), free(dout), free(dor), free(x16), free(o16), free(dx), free(dx0);
        vet_cuda_mem_free(d_q), vet_cuda_mem_free(d_sc), vet_cuda_mem_free(d_wd), vet_cuda_mem_free(d_w16);
        vet_cuda_mem_free(d_x), vet_cuda_mem_free(d_b), vet_cuda_mem_free(d_out), vet_cuda_mem_free(d_dout);
        vet_cuda_mem_free(d_x16), vet_cuda_mem_free(d_o16), vet_cuda_mem_free(scratch), vet_cuda_mem_free(d_dx);
    }

    // --- rope on q (N,H,hd) with the tables of positions < T ---
    if (want("other")) {
        int half = hd / 2;
        float *inv = malloc(half * 4), *cs = malloc((size_t)T * half * 4), *sn = malloc((size_t)T * half * 4);
        rope_inv_freq(inv, hd, 500000.0f, NULL);
        rope_tables(cs, sn, T, hd, inv);
        float *d_cs = devf(cs, (size_t)T * half), *d_sn = devf(sn, (size_t)T * half);
        size_t n = (size_t)N * Q;
        float *x = rnd(n, 1), *d_x = devf(x, n);
        // the bf16 form first, from the unrotated x (which it leaves as it is): the bits of the
        // in-place rotation then a rounding pass
        uint16_t *d_r16 = dev(NULL, n * 2), *d_ref16 = dev(NULL, n * 2);
        TRY(rope_forward_bf16_cuda(ctx, d_r16, d_x, d_pos, d_cs, d_sn, N, H, hd, &err));
        snprintf(sh, sizeof sh, "N=%d H=%d hd=%d", N, H, hd);
        rope_forward(x, pos, cs, sn, N, H, hd);
        TRY(rope_forward_cuda(ctx, d_x, d_pos, d_cs, d_sn, N, H, hd, &err));
        TRY(f32_to_bf16_cuda(ctx, d_ref16, d_x, n, &err));
        r = bits_row("rope_forward_bf16", sh, same_bits_dev(d_r16, d_ref16, n * 2));
        float *x0 = rnd(n, 1), *d_x0 = devf(x0, n);
        TIME(rope_forward_bf16_cuda(ctx, d_r16, d_x0, d_pos, d_cs, d_sn, N, H, hd, &err), r->ms);
        {  // in place on bf16 (q and k as their projections write them in the 16-bit mode): the bits
            // of the bf16 form above on the widened values
            uint16_t *h16 = malloc(n * 2);
            float *w = malloc(n * 4);
            for (size_t i = 0; i < n; i++) h16[i] = vet_f32_to_bf16(x0[i]), w[i] = vet_bf16_to_f32(h16[i]);
            uint16_t *d_h16 = dev(h16, n * 2);
            float *d_w = devf(w, n);
            TRY(rope_forward_bf16_cuda(ctx, d_ref16, d_w, d_pos, d_cs, d_sn, N, H, hd, &err));
            TRY(rope_forward_inplace_bf16_cuda(ctx, d_h16, d_pos, d_cs, d_sn, N, H, hd, &err));
            r = bits_row_as("rope_forward_inplace_bf16", sh, same_bits_dev(d_h16, d_ref16, n * 2),
                            "rope_forward_bf16 on the widened values");
            TIME(rope_forward_inplace_bf16_cuda(ctx, d_h16, d_pos, d_cs, d_sn, N, H, hd, &err), r->ms);
            free(h16), free(w), vet_cuda_mem_free(d_h16), vet_cuda_mem_free(d_w);
        }
        free(x0), vet_cuda_mem_free(d_x0), vet_cuda_mem_free(d_r16), vet_cuda_mem_free(d_ref16);
        r = compare("rope_forward", sh, d_x, x, n, F32);
        TIME(rope_forward_cuda(ctx, d_x, d_pos, d_cs, d_sn, N, H, hd, &err), r->ms);
        float *g = rnd(n, 1), *d_g = devf(g, n);
        {  // the bf16 form, as the forward's
            uint16_t *d_b16 = dev(NULL, n * 2), *d_bref16 = dev(NULL, n * 2);
            float *d_g2 = devf(g, n);
            TRY(rope_backward_bf16_cuda(ctx, d_b16, d_g, d_pos, d_cs, d_sn, N, H, hd, &err));
            TRY(rope_backward_cuda(ctx, d_g2, d_pos, d_cs, d_sn, N, H, hd, &err));
            TRY(f32_to_bf16_cuda(ctx, d_bref16, d_g2, n, &err));
            r = bits_row("rope_backward_bf16", sh, same_bits_dev(d_b16, d_bref16, n * 2));
            TIME(rope_backward_bf16_cuda(ctx, d_b16, d_g, d_pos, d_cs, d_sn, N, H, hd, &err), r->ms);
            vet_cuda_mem_free(d_b16), vet_cuda_mem_free(d_bref16), vet_cuda_mem_free(d_g2);
        }
        rope_backward(g, pos, cs, sn, N, H, hd);
        TRY(rope_backward_cuda(ctx, d_g, d_pos, d_cs, d_sn, N, H, hd, &err));
        r = compare("rope_backward", sh, d_g, g, n, F32);
        TIME(rope_backward_cuda(ctx, d_g, d_pos, d_cs, d_sn, N, H, hd, &err), r->ms);
        free(inv), free(cs), free(sn), free(x), free(g);
        vet_cuda_mem_free(d_cs), vet_cuda_mem_free(d_sn), vet_cuda_mem_free(d_x), vet_cuda_mem_free(d_g);
    }

    // --- the 16-byte passes (kernels/wide_io.cuh) against the same ops one element a thread
    // (elementwise_wide(0), the bundle's VET_GPU_WIDE=0): the same bits; each op timed both ways,
    // rows `wide NAME` and `narrow NAME` (what the 16-byte accesses buy). At shapes whose rows
    // are not multiples of 8 both ways take one element a thread.
    if (want("other")) {
        const size_t n = (size_t)N * C, nf = (size_t)N * F, nq = (size_t)N * Q;
        const int half = hd / 2;
        float *x = rnd(n, 1), *res = rnd(n, 1), *w = rnd(C, 1), *dy = rnd(n, 1), *gt = rnd(nf, 2), *dn = rnd(nf, 1);
        float *q = rnd(nq, 1), *inv = malloc(half * 4), *cs = malloc((size_t)T * half * 4);
        float *sn = malloc((size_t)T * half * 4);
        rope_inv_freq(inv, hd, 500000.0f, NULL);
        rope_tables(cs, sn, T, hd, inv);
        uint16_t *g16 = malloc(nf * 2), *u16 = malloc(nf * 2);
        for (size_t i = 0; i < nf; i++) g16[i] = vet_f32_to_bf16(gt[i]), u16[i] = vet_f32_to_bf16(dn[i] * 2);
        float *d_x = devf(x, n), *d_res = devf(res, n), *d_w = devf(w, C), *d_dy = devf(dy, n), *d_dn = devf(dn, nf);
        float *d_q = devf(q, nq), *d_cs = devf(cs, (size_t)T * half), *d_sn = devf(sn, (size_t)T * half);
        uint16_t *d_g16 = dev(g16, nf * 2), *d_u16 = dev(u16, nf * 2);
        // outputs, way 0 (16 bytes a thread) and way 1 (one element a thread)
        size_t big = nf > nq ? nf : nq;
        big = big > n ? big : n;
        float *d_f[2] = {devf(NULL, big), devf(NULL, big)}, *d_r[2] = {devf(NULL, N), devf(NULL, N)};
        uint16_t *d_h[2] = {dev(NULL, big * 2), dev(NULL, big * 2)}, *d_k[2] = {dev(NULL, nf * 2), dev(NULL, nf * 2)};
        float *d_xo[2] = {devf(NULL, n), devf(NULL, n)};  // RMSNorm's x, added to in place
        double ms[2] = {0, 0};
        int wide_same = 0;
        const char *names[] = {"f32_to_bf16", "rmsnorm_forward_fused bf16", "rmsnorm_backward dinp",
                               "swiglu_forward_in16 bf16", "swiglu_backward_in16 bf16", "add_inplace",
                               "rope_forward_bf16", "rope_backward_bf16"};
        for (int op = 0; op < 8; op++) {
            // pass 0 runs each way once into its buffers (then compared); pass 1 times each way
            for (int pass = 0; pass < 2; pass++)
                for (int way = 0; way < 2; way++) {
                    elementwise_wide(way == 0);
                    float *f = d_f[way], *rs = d_r[way], *xo = d_xo[way];
                    uint16_t *h = d_h[way], *k = d_k[way];
                    double t = 0;
                    switch (op) {
                    case 0:
                        if (!pass) TRY(f32_to_bf16_cuda(ctx, h, d_x, n, &err));
                        else TIME(f32_to_bf16_cuda(ctx, h, d_x, n, &err), t);
                        break;
                    case 1:  // x += res, its norm into f and h (the MLP's norm)
                        if (!pass) {
                            TRY(vet_cuda_upload(ctx, xo, x, n * 4, &err));
                            TRY(rmsnorm_forward_fused_cuda(ctx, f, h, VET_CUDA_BF16, rs, xo, d_res, d_w, N, C, 1e-5f,
                                                           &err));
                        } else {
                            TIME(rmsnorm_forward_fused_cuda(ctx, NULL, h, VET_CUDA_BF16, rs, xo, d_res, d_w, N, C,
                                                            1e-5f, &err),
                                 t);
                        }
                        break;
                    case 2:  // dx += (from dy's values), rstd from op 1's default run
                        if (!pass) {
                            TRY(vet_cuda_upload(ctx, f, dy, n * 4, &err));
                            TRY(rmsnorm_backward_cuda(ctx, f, NULL, d_dy, d_x, d_w, d_r[0], N, C, &err));
                        } else {
                            TIME(rmsnorm_backward_cuda(ctx, f, NULL, d_dy, d_x, d_w, d_r[0], N, C, &err), t);
                        }
                        break;
                    case 3:
                        if (!pass) TRY(swiglu_forward_in16_cuda(ctx, NULL, h, VET_CUDA_BF16, d_g16, d_u16, nf, &err));
                        else TIME(swiglu_forward_in16_cuda(ctx, NULL, h, VET_CUDA_BF16, d_g16, d_u16, nf, &err), t);
                        break;
                    case 4:
                        if (!pass)
                            TRY(swiglu_backward_in16_cuda(ctx, h, k, VET_CUDA_BF16, d_dn, d_g16, d_u16, nf, &err));
                        else
                            TIME(swiglu_backward_in16_cuda(ctx, h, k, VET_CUDA_BF16, d_dn, d_g16, d_u16, nf, &err),
                                 t);
                        break;
                    case 5:
                        if (!pass) {
                            TRY(vet_cuda_upload(ctx, f, x, n * 4, &err));
                            TRY(add_inplace_cuda(ctx, f, d_res, n, &err));
                        } else {
                            TIME(add_inplace_cuda(ctx, f, d_res, n, &err), t);
                        }
                        break;
                    case 6:
                        if (!pass) TRY(rope_forward_bf16_cuda(ctx, h, d_q, d_pos, d_cs, d_sn, N, H, hd, &err));
                        else TIME(rope_forward_bf16_cuda(ctx, h, d_q, d_pos, d_cs, d_sn, N, H, hd, &err), t);
                        break;
                    default:
                        if (!pass) TRY(rope_backward_bf16_cuda(ctx, h, d_q, d_pos, d_cs, d_sn, N, H, hd, &err));
                        else TIME(rope_backward_bf16_cuda(ctx, h, d_q, d_pos, d_cs, d_sn, N, H, hd, &err), t);
                        break;
                    }
                    if (pass) ms[way] = t;
                    if (!pass && way == 1) {  // both ways made: compare
                        elementwise_wide(1);
                        int same;
                        switch (op) {
                        case 0: same = same_bits_dev(d_h[0], d_h[1], n * 2); break;
                        case 1:
                            same = same_bits_dev(d_xo[0], d_xo[1], n * 4) && same_bits_dev(d_f[0], d_f[1], n * 4) &&
                                   same_bits_dev(d_h[0], d_h[1], n * 2) &&
                                   same_bits_dev(d_r[0], d_r[1], (size_t)N * 4);
                            break;
                        case 2: case 5: same = same_bits_dev(d_f[0], d_f[1], n * 4); break;
                        case 3: same = same_bits_dev(d_h[0], d_h[1], nf * 2); break;
                        case 4:
                            same = same_bits_dev(d_h[0], d_h[1], nf * 2) && same_bits_dev(d_k[0], d_k[1], nf * 2);
                            break;
                        default: same = same_bits_dev(d_h[0], d_h[1], nq * 2); break;
                        }
                        if (op >= 6) snprintf(sh, sizeof sh, "N=%d H=%d hd=%d", N, H, hd);
                        else if (op == 3 || op == 4) snprintf(sh, sizeof sh, "N=%d F=%d", N, F);
                        else snprintf(sh, sizeof sh, "N=%d C=%d", N, C);
                        ms[0] = ms[1] = 0;
                        wide_same = same;
                    }
                }
            elementwise_wide(1);
            char nm[96];
            snprintf(nm, sizeof nm, "wide %s", names[op]);
            bits_row_as(nm, sh, wide_same, "one element a thread")->ms = ms[0];
            snprintf(nm, sizeof nm, "narrow %s", names[op]);
            bits_row_as(nm, sh, wide_same, "16 bytes a thread")->ms = ms[1];
        }
        free(x), free(res), free(w), free(dy), free(gt), free(dn), free(q), free(inv), free(cs), free(sn);
        free(g16), free(u16);
        void *bufs[] = {d_x, d_res, d_w, d_dy, d_dn, d_q, d_cs, d_sn, d_g16, d_u16, d_f[0], d_f[1], d_r[0], d_r[1],
                        d_h[0], d_h[1], d_k[0], d_k[1], d_xo[0], d_xo[1]};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vet_cuda_mem_free(bufs[i]);
    }

    // --- attention over the packed rows, GQA ---
    if (want("attention")) {
        size_t nq = (size_t)N * Q, nk = (size_t)N * KV;
        float *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1);
        float *out = malloc(nq * 4), *lse = malloc((size_t)N * H * 4);
        float *d_q = devf(q, nq), *d_k = devf(k, nk), *d_v = devf(v, nk);
        float *d_out = devf(NULL, nq), *d_lse = devf(NULL, (size_t)N * H);
        void *scratch = dev(NULL, attention_scratch_bytes(B, T, H));
        attention_forward(out, lse, q, k, v, seg, B, T, H, KVH, hd);
        TRY(attention_forward_cuda(ctx, d_out, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd, scratch, &err));
        snprintf(sh, sizeof sh, "B=%d T=%d H=%d KVH=%d hd=%d", B, T, H, KVH, hd);
        r = compare("attention_forward out", sh, d_out, out, nq, F32);
        compare("attention_forward lse", sh, d_lse, lse, (size_t)N * H, F32);
        TIME(attention_forward_cuda(ctx, d_out, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd, scratch, &err), r->ms);
        // Each side's backward uses its own forward's out and lse, as training will.
        TRY(attention_forward_cuda(ctx, d_out, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd, scratch, &err));
        float *dout = rnd(nq, 1), *dq = rnd(nq, 1), *dk = rnd(nk, 1), *dv = rnd(nk, 1);
        float *d_dout = devf(dout, nq), *d_dq = devf(dq, nq), *d_dk = devf(dk, nk), *d_dv = devf(dv, nk);
        attention_backward(dq, dk, dv, dout, q, k, v, out, lse, seg, B, T, H, KVH, hd);
        TRY(attention_backward_cuda(ctx, d_dq, d_dk, d_dv, d_dout, d_q, d_k, d_v, d_out, d_lse, d_seg,
                                    B, T, H, KVH, hd, 1, scratch, &err));
        r = compare("attention_backward dq", sh, d_dq, dq, nq, F32);
        compare("attention_backward dk", sh, d_dk, dk, nk, F32);
        compare("attention_backward dv", sh, d_dv, dv, nk, F32);
        TIME(attention_backward_cuda(ctx, d_dq, d_dk, d_dv, d_dout, d_q, d_k, d_v, d_out, d_lse, d_seg,
                                     B, T, H, KVH, hd, 1, scratch, &err), r->ms);
        attention_written("attention_backward", sh, attention_backward_f32_dev, attention_backward, dout, q, k, v, out,
                          lse, seg, d_dout, d_q, d_k, d_v, d_out, d_lse, d_seg, scratch, B, T, H, KVH, hd, F32);
        free(q), free(k), free(v), free(out), free(lse), free(dout), free(dq), free(dk), free(dv);
        vet_cuda_mem_free(d_q), vet_cuda_mem_free(d_k), vet_cuda_mem_free(d_v);
        vet_cuda_mem_free(d_out), vet_cuda_mem_free(d_lse), vet_cuda_mem_free(scratch);
        vet_cuda_mem_free(d_dout), vet_cuda_mem_free(d_dq), vet_cuda_mem_free(d_dk);
        vet_cuda_mem_free(d_dv);
    }

    // --- the same attention on tensor cores, in five variants (attention_tc_variant): the
    // default (attention_pipe.cu for heads up to 128 wide whose width is a multiple of 8: tiles
    // double-buffered by asynchronous copies, fragments by ldmatrix; attention_mma.cu's kernels
    // for the others), attention_mma.cu's element-at-a-time tile loads forced (rows `_scalar`),
    // attention_tc.cu's WMMA kernels forced (rows `_wmma`), attention_mma.cu's kernels of the
    // first GPU run, with transposed tiles in shared memory (rows `_transposed`), attention_mma.cu's
    // ldmatrix kernels loading each tile then computing (rows `_sync`); run.sh falls back to
    // `_sync`, then `_transposed`, when the default fails. Each against
    // the CPU replay of their arithmetic (ops_attention_bf16.c: only fp32 summation order and
    // the last bits of ex2.approx (or, in the _transposed and _wmma kernels, of expf, whose form
    // differs from the replay's by a rounding) differ, which can flip a probability's bf16
    // rounding) and the exact fp32 op
    // (bf16's error), each timed, so one lease compares them at the 7B head width. The CPU
    // references are computed once; the `written` check, which makes its own, runs for every
    // variant at the small size and for the default at mid. ---
    if (want("attention")) {
        size_t nq = (size_t)N * Q, nk = (size_t)N * KV, nl = (size_t)N * H;
        float *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1);
        float *out = malloc(nq * 4), *lse = malloc(nl * 4), *out32 = malloc(nq * 4), *lse32 = malloc(nl * 4);
        // q, k, v on the device in bf16, as training stores them; the CPU replay rounds the fp32
        // values the same way.
        uint16_t *d_q = dev_bf16(q, nq), *d_k = dev_bf16(k, nk), *d_v = dev_bf16(v, nk);
        float *d_out = devf(NULL, nq), *d_lse = devf(NULL, nl);
        void *scratch = dev(NULL, attention_scratch_bytes(B, T, H));
        attention_forward_bf16(out, lse, q, k, v, seg, B, T, H, KVH, hd, VET_ATTN_TC_TILE);
        attention_forward(out32, lse32, q, k, v, seg, B, T, H, KVH, hd);
        // The gradients start from random values (+= is checked): dq0.. kept for each variant.
        float *dout = rnd(nq, 1), *dq0 = rnd(nq, 1), *dk0 = rnd(nk, 1), *dv0 = rnd(nk, 1);
        float *dq = malloc(nq * 4), *dk = malloc(nk * 4), *dv = malloc(nk * 4);
        memcpy(dq, dq0, nq * 4), memcpy(dk, dk0, nk * 4), memcpy(dv, dv0, nk * 4);
        attention_backward_bf16(dq, dk, dv, dout, q, k, v, out, lse, seg, B, T, H, KVH, hd);
        // The same from the output in bf16 (training's out16): the replay given it widened.
        float *outr = malloc(nq * 4), *dqr = malloc(nq * 4), *dkr = malloc(nk * 4), *dvr = malloc(nk * 4);
        for (size_t i = 0; i < nq; i++) outr[i] = vet_bf16_to_f32(vet_f32_to_bf16(out[i]));
        memcpy(dqr, dq0, nq * 4), memcpy(dkr, dk0, nk * 4), memcpy(dvr, dv0, nk * 4);
        attention_backward_bf16(dqr, dkr, dvr, dout, q, k, v, outr, lse, seg, B, T, H, KVH, hd);
        uint16_t *d_out16 = dev(NULL, nq * 2), *d_ref16 = dev(NULL, nq * 2);
        float *lse_dev = malloc(nl * 4);
        float *d_dout = devf(dout, nq), *d_dq = devf(NULL, nq), *d_dk = devf(NULL, nk), *d_dv = devf(NULL, nk);
        uint16_t *d_dout16 = dev_bf16(dout, nq);
        parity_dout16 = d_dout16;
        float *g1 = malloc(nq * 4), *g2 = malloc(nq * 4);
        snprintf(sh, sizeof sh, "B=%d T=%d H=%d KVH=%d hd=%d", B, T, H, KVH, hd);
        for (int variant = 0; variant < 5; variant++) {
            static const char *const suffix[5] = {"", "_scalar", "_wmma", "_transposed", "_sync"};
            char fw[64], bw[64];
            snprintf(fw, sizeof fw, "attention_forward_bf16%s", suffix[variant]);
            snprintf(bw, sizeof bw, "attention_backward_bf16%s", suffix[variant]);
            attention_tc_variant(variant);
            TRY(attention_forward_bf16_cuda(ctx, d_out, NULL, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd, scratch,
                                            &err));
            r = compare(cat(fw, " out"), sh, d_out, out, nq, 4e-3);
            compare(cat(fw, " lse"), sh, d_lse, lse, nl, 1e-4);
            TIME(attention_forward_bf16_cuda(ctx, d_out, NULL, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd, scratch,
                                             &err),
                 r->ms);
            TRY(attention_forward_bf16_cuda(ctx, d_out, NULL, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd, scratch,
                                            &err));
            compare(cat(fw, " out vs fp32"), sh, d_out, out32, nq, 2e-2);
            // The output in bf16 (out16): the fp32 output rounded, bit for bit, and the same lse;
            // timed beside the fp32 row (half the output's bytes).
            TRY(vet_cuda_sync(ctx, &err));
            TRY(vet_cuda_download(ctx, lse_dev, d_lse, nl * 4, &err));
            TRY(f32_to_bf16_cuda(ctx, d_ref16, d_out, nq, &err));
            TRY(attention_forward_bf16_cuda(ctx, NULL, d_out16, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd,
                                            scratch, &err));
            r = bits_row_as(cat(fw, " out16"), sh, same_bits_dev(d_out16, d_ref16, nq * 2), "its fp32 output rounded");
            compare_bits(cat(fw, " lse with out16"), sh, d_lse, lse_dev, nl);
            TIME(attention_forward_bf16_cuda(ctx, NULL, d_out16, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd,
                                             scratch, &err),
                 r->ms);
            TRY(vet_cuda_upload(ctx, d_dq, dq0, nq * 4, &err));
            TRY(vet_cuda_upload(ctx, d_dk, dk0, nk * 4, &err));
            TRY(vet_cuda_upload(ctx, d_dv, dv0, nk * 4, &err));
            TRY(attention_backward_bf16_cuda(ctx, d_dq, d_dk, d_dv, d_dout, d_dout16, d_q, d_k, d_v, d_out, NULL, d_lse,
                                             d_seg, B, T, H, KVH, hd, 1, scratch, &err));
            r = compare(cat(bw, " dq"), sh, d_dq, dq, nq, 4e-3);
            compare(cat(bw, " dk"), sh, d_dk, dk, nk, 4e-3);
            compare(cat(bw, " dv"), sh, d_dv, dv, nk, 4e-3);
            TIME(attention_backward_bf16_cuda(ctx, d_dq, d_dk, d_dv, d_dout, d_dout16, d_q, d_k, d_v, d_out, NULL,
                                              d_lse, d_seg, B, T, H, KVH, hd, 1, scratch, &err),
                 r->ms);
            // Deterministic: a second run from the same gradients gives the same bits.
            for (int run = 0; run < 2; run++) {
                TRY(vet_cuda_upload(ctx, d_dq, dq0, nq * 4, &err));
                TRY(attention_backward_bf16_cuda(ctx, d_dq, d_dk, d_dv, d_dout, d_dout16, d_q, d_k, d_v, d_out, NULL,
                                                 d_lse, d_seg, B, T, H, KVH, hd, 1, scratch, &err));
                TRY(vet_cuda_sync(ctx, &err));
                TRY(vet_cuda_download(ctx, run ? g2 : g1, d_dq, nq * 4, &err));
            }
            int same = !memcmp(g1, g2, nq * 4);
            if (!same) failures++;
            printf("%s %s run twice: same bits\n", same ? "ok" : "not ok", bw);
            // From the bf16 output: D = rowsum(dout * out) on its widened values.
            TRY(vet_cuda_upload(ctx, d_dq, dq0, nq * 4, &err));
            TRY(vet_cuda_upload(ctx, d_dk, dk0, nk * 4, &err));
            TRY(vet_cuda_upload(ctx, d_dv, dv0, nk * 4, &err));
            TRY(attention_backward_bf16_cuda(ctx, d_dq, d_dk, d_dv, d_dout, d_dout16, d_q, d_k, d_v, NULL, d_out16,
                                             d_lse, d_seg, B, T, H, KVH, hd, 1, scratch, &err));
            compare(cat(bw, " dq from out16"), sh, d_dq, dqr, nq, 4e-3);
            compare(cat(bw, " dk from out16"), sh, d_dk, dkr, nk, 4e-3);
            compare(cat(bw, " dv from out16"), sh, d_dv, dvr, nk, 4e-3);
            if (variant == 0 || C < 1024)
                attention_written(bw, sh, attention_backward_bf16_dev, attention_backward_bf16, dout, q, k, v, out,
                                  lse, seg, d_dout, d_q, d_k, d_v, d_out, d_lse, d_seg, scratch, B, T, H, KVH, hd,
                                  4e-3);
        }
        attention_tc_variant(0);
        {  // both outputs, or neither, or a bf16 output off its 4-byte alignment: refused by name
            int rc1 = attention_forward_bf16_cuda(ctx, d_out, d_out16, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd,
                                                  scratch, &err);
            int ok = rc1 < 0 && strstr(err.msg, "give out or out16, not both");
            int rc2 = attention_forward_bf16_cuda(ctx, NULL, NULL, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd,
                                                  scratch, &err);
            ok = ok && rc2 < 0 && strstr(err.msg, "not neither");
            int rc3 = attention_forward_bf16_cuda(ctx, NULL, d_out16 + 1, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH,
                                                  hd, scratch, &err);
            ok = ok && rc3 < 0 && strstr(err.msg, "out16 is not 4-byte aligned");
            int rc4 = attention_backward_bf16_cuda(ctx, d_dq, d_dk, d_dv, d_dout, d_dout16, d_q, d_k, d_v, d_out,
                                                   d_out16, d_lse, d_seg, B, T, H, KVH, hd, 1, scratch, &err);
            ok = ok && rc4 < 0 && strstr(err.msg, "not both");
            if (!ok) failures++;
            printf("%s attention_bf16 refuses both outputs, neither, an unaligned out16\n", ok ? "ok" : "not ok");
        }
        // --- cuDNN's fused attention (variant 5, kernels/attention_cudnn.cc): the same products by
        // NVIDIA's kernels, a mask keeping the samples apart. Its output is bf16 (the fp32 rows are
        // widened from it) and its statistics are its own, so it is held to bf16's error against
        // the replay (out 1e-2, fp32's out 2e-2, gradients from the bf16 output 2e-2); its fp32
        // output rounded must be its bf16 one, bit for bit; gradients written (not added) must be
        // the added ones less the start. Its backward is not required to repeat its bits (cuDNN
        // has no deterministic backward with a mask): a comment line says whether it did.
        // Without cuDNN one `not ok` row says why; a build without its frontend (the CPU
        // emulator's: cuDNN's kernels cannot run there) says so in a comment. ---
        attention_tc_variant(5);
        if (!attention_cudnn_built()) {
            printf("# attention_*_cudnn: not in this build (no cuDNN frontend headers) %s\n", sh);
        } else if (attention_forward_bf16_cuda(ctx, d_out, NULL, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd,
                                               scratch, &err) < 0) {
            failures++;
            printf("not ok attention_forward_cudnn: %s %s\n", err.msg, sh);
        } else {
            r = compare("attention_forward_cudnn out", sh, d_out, out, nq, 1e-2);
            compare("attention_forward_cudnn out vs fp32", sh, d_out, out32, nq, 2e-2);
            TIME(attention_forward_bf16_cuda(ctx, d_out, NULL, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd, scratch,
                                             &err),
                 r->ms);
            TRY(f32_to_bf16_cuda(ctx, d_ref16, d_out, nq, &err));
            TRY(attention_forward_bf16_cuda(ctx, NULL, d_out16, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd,
                                            scratch, &err));
            r = bits_row_as("attention_forward_cudnn out16", sh, same_bits_dev(d_out16, d_ref16, nq * 2),
                            "its fp32 output rounded");
            TIME(attention_forward_bf16_cuda(ctx, NULL, d_out16, d_lse, d_q, d_k, d_v, d_seg, B, T, H, KVH, hd,
                                             scratch, &err),
                 r->ms);
            TRY(vet_cuda_upload(ctx, d_dq, dq0, nq * 4, &err));
            TRY(vet_cuda_upload(ctx, d_dk, dk0, nk * 4, &err));
            TRY(vet_cuda_upload(ctx, d_dv, dv0, nk * 4, &err));
            TRY(attention_backward_bf16_cuda(ctx, d_dq, d_dk, d_dv, d_dout, d_dout16, d_q, d_k, d_v, NULL, d_out16,
                                             d_lse, d_seg, B, T, H, KVH, hd, 1, scratch, &err));
            r = compare("attention_backward_cudnn dq", sh, d_dq, dqr, nq, 2e-2);
            compare("attention_backward_cudnn dk", sh, d_dk, dkr, nk, 2e-2);
            compare("attention_backward_cudnn dv", sh, d_dv, dvr, nk, 2e-2);
            TIME(attention_backward_bf16_cuda(ctx, d_dq, d_dk, d_dv, d_dout, d_dout16, d_q, d_k, d_v, NULL, d_out16,
                                              d_lse, d_seg, B, T, H, KVH, hd, 1, scratch, &err),
                 r->ms);
            // written: the replay's sums less the values they started from
            TRY(attention_backward_bf16_cuda(ctx, d_dq, d_dk, d_dv, d_dout, d_dout16, d_q, d_k, d_v, NULL, d_out16,
                                             d_lse, d_seg, B, T, H, KVH, hd, 0, scratch, &err));
            for (size_t i = 0; i < nq; i++) g1[i] = dqr[i] - dq0[i];
            compare("attention_backward_cudnn dq written", sh, d_dq, g1, nq, 2e-2);
            float *wk = malloc(nk * 4);
            for (size_t i = 0; i < nk; i++) wk[i] = dkr[i] - dk0[i];
            compare("attention_backward_cudnn dk written", sh, d_dk, wk, nk, 2e-2);
            for (size_t i = 0; i < nk; i++) wk[i] = dvr[i] - dv0[i];
            compare("attention_backward_cudnn dv written", sh, d_dv, wk, nk, 2e-2);
            free(wk);
            for (int run = 0; run < 2; run++) {
                TRY(attention_backward_bf16_cuda(ctx, d_dq, d_dk, d_dv, d_dout, d_dout16, d_q, d_k, d_v, NULL,
                                                 d_out16, d_lse, d_seg, B, T, H, KVH, hd, 0, scratch, &err));
                TRY(vet_cuda_sync(ctx, &err));
                TRY(vet_cuda_download(ctx, run ? g2 : g1, d_dq, nq * 4, &err));
            }
            printf("# attention_backward_cudnn run twice: %s %s\n",
                   memcmp(g1, g2, nq * 4) ? "the bits differ (not deterministic)" : "the same bits", sh);
        }
        attention_tc_variant(0);
        free(g1), free(g2), free(outr), free(dqr), free(dkr), free(dvr), free(lse_dev);
        vet_cuda_mem_free(d_out16), vet_cuda_mem_free(d_ref16);
        free(q), free(k), free(v), free(out), free(lse), free(out32), free(lse32);
        free(dout), free(dq0), free(dk0), free(dv0), free(dq), free(dk), free(dv);
        vet_cuda_mem_free(d_q), vet_cuda_mem_free(d_k), vet_cuda_mem_free(d_v);
        vet_cuda_mem_free(d_out), vet_cuda_mem_free(d_lse), vet_cuda_mem_free(scratch);
        vet_cuda_mem_free(d_dout), vet_cuda_mem_free(d_dout16), vet_cuda_mem_free(d_dq), vet_cuda_mem_free(d_dk);
        vet_cuda_mem_free(d_dv);
    }

    // --- a decode step: new k/v rows into the slots' caches, attention against the caches ---
    if (want("other")) {
        // n rows of distinct slots (in a shuffled order) at random positions, one at 0 and one
        // at the cache's last position; the caches hold random earlier keys and values.
        const int n_slots = C >= 1024 ? 64 : 9, n = n_slots - 1, max_len = T;
        size_t ncache = (size_t)n_slots * max_len * KV, nq = (size_t)n * Q, nr = (size_t)n * KV;
        int32_t *slots = malloc(n * 4), *dpos = malloc(n * 4);
        for (int i = 0; i < n; i++) slots[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)vet_rng_below(&rng, (uint64_t)i + 1), t = slots[i];
            slots[i] = slots[j], slots[j] = t;
        }
        for (int i = 0; i < n; i++) dpos[i] = (int32_t)vet_rng_below(&rng, (uint64_t)max_len);
        dpos[0] = 0, dpos[n - 1] = max_len - 1;
        float *kc = rnd(ncache, 1), *vc = rnd(ncache, 1), *kr = rnd(nr, 1), *vr = rnd(nr, 1);
        float *q = rnd(nq, 1), *out = malloc(nq * 4);
        float *d_kc = devf(kc, ncache), *d_vc = devf(vc, ncache), *d_kr = devf(kr, nr), *d_vr = devf(vr, nr);
        float *d_q = devf(q, nq), *d_out = devf(NULL, nq);
        int32_t *d_slots = dev(slots, n * 4), *d_dpos = dev(dpos, n * 4);
        for (int i = 0; i < n; i++) {
            size_t at = ((size_t)slots[i] * max_len + dpos[i]) * KV;
            memcpy(kc + at, kr + (size_t)i * KV, (size_t)KV * 4);
            memcpy(vc + at, vr + (size_t)i * KV, (size_t)KV * 4);
        }
        TRY(kv_cache_write_cuda(ctx, d_kc, d_kr, d_slots, d_dpos, n, max_len, KV, &err));
        TRY(kv_cache_write_cuda(ctx, d_vc, d_vr, d_slots, d_dpos, n, max_len, KV, &err));
        snprintf(sh, sizeof sh, "n=%d slots=%d max_len=%d KV=%d", n, n_slots, max_len, KV);
        r = compare("kv_cache_write k", sh, d_kc, kc, ncache, 0.0);
        compare("kv_cache_write v", sh, d_vc, vc, ncache, 0.0);
        TIME(kv_cache_write_cuda(ctx, d_kc, d_kr, d_slots, d_dpos, n, max_len, KV, &err), r->ms);
        ref_attention_decode(out, q, kc, vc, slots, dpos, n, max_len, H, KVH, hd);
        TRY(attention_decode_cuda(ctx, d_out, d_q, d_kc, d_vc, d_slots, d_dpos, n, max_len, H, KVH, hd, &err));
        snprintf(sh, sizeof sh, "n=%d max_len=%d H=%d KVH=%d hd=%d", n, max_len, H, KVH, hd);
        r = compare("attention_decode", sh, d_out, out, nq, F32);
        TIME(attention_decode_cuda(ctx, d_out, d_q, d_kc, d_vc, d_slots, d_dpos, n, max_len, H, KVH, hd, &err),
             r->ms);
        // A row's result does not depend on the other rows: row 1 alone gives the same bits.
        float *all = malloc(nq * 4), *one = malloc((size_t)Q * 4), *d_one = devf(NULL, Q);
        TRY(attention_decode_cuda(ctx, d_out, d_q, d_kc, d_vc, d_slots, d_dpos, n, max_len, H, KVH, hd, &err));
        TRY(attention_decode_cuda(ctx, d_one, d_q + Q, d_kc, d_vc, d_slots + 1, d_dpos + 1, 1, max_len, H,
                                  KVH, hd, &err));
        TRY(vet_cuda_sync(ctx, &err));
        TRY(vet_cuda_download(ctx, all, d_out, nq * 4, &err));
        TRY(vet_cuda_download(ctx, one, d_one, (size_t)Q * 4, &err));
        int same = memcmp(all + Q, one, (size_t)Q * 4) == 0;
        if (!same) failures++;
        printf("%s attention_decode row alone == row in the batch (bits)\n", same ? "ok" : "not ok");
        free(slots), free(dpos), free(kc), free(vc), free(kr), free(vr), free(q), free(out), free(all), free(one);
        vet_cuda_mem_free(d_kc), vet_cuda_mem_free(d_vc), vet_cuda_mem_free(d_kr), vet_cuda_mem_free(d_vr);
        vet_cuda_mem_free(d_q), vet_cuda_mem_free(d_out), vet_cuda_mem_free(d_slots), vet_cuda_mem_free(d_dpos);
        vet_cuda_mem_free(d_one);
    }

    // --- the 16-bit KV cache (bf16, fp16): the same step with caches of rounded values ---
    for (int fmt = VET_CUDA_KV_BF16; fmt <= VET_CUDA_KV_F16 && want("other"); fmt++) {
        const char *fn = fmt == VET_CUDA_KV_BF16 ? "bf16" : "fp16";
        const int n_slots = C >= 1024 ? 64 : 9, n = n_slots - 1, max_len = T;
        size_t ncache = (size_t)n_slots * max_len * KV, nq = (size_t)n * Q, nr = (size_t)n * KV;
        int32_t *slots = malloc(n * 4), *dpos = malloc(n * 4);
        for (int i = 0; i < n; i++) slots[i] = (i * 5 + 3) % n;  // distinct (n = 8 or 63: 5 is coprime)
        for (int i = 0; i < n; i++) dpos[i] = (int32_t)vet_rng_below(&rng, (uint64_t)max_len);
        dpos[0] = 0, dpos[n - 1] = max_len - 1;
        float *kc = rnd(ncache, 1), *vc = rnd(ncache, 1), *kr = rnd(nr, 1), *vr = rnd(nr, 1);
        float *q = rnd(nq, 1), *out = malloc(nq * 4);
        uint16_t *kc16 = malloc(ncache * 2), *vc16 = malloc(ncache * 2);
        for (size_t i = 0; i < ncache; i++) {  // the caches' earlier rows, rounded on the host
            kc16[i] = fmt == VET_CUDA_KV_BF16 ? vet_f32_to_bf16(kc[i]) : vet_f32_to_f16(kc[i]);
            vc16[i] = fmt == VET_CUDA_KV_BF16 ? vet_f32_to_bf16(vc[i]) : vet_f32_to_f16(vc[i]);
        }
        for (int i = 0; i < n; i++) {
            size_t at = ((size_t)slots[i] * max_len + dpos[i]) * KV;
            for (int j = 0; j < KV; j++) {
                float k = kr[(size_t)i * KV + j], v = vr[(size_t)i * KV + j];
                kc16[at + j] = fmt == VET_CUDA_KV_BF16 ? vet_f32_to_bf16(k) : vet_f32_to_f16(k);
                vc16[at + j] = fmt == VET_CUDA_KV_BF16 ? vet_f32_to_bf16(v) : vet_f32_to_f16(v);
            }
        }
        for (size_t i = 0; i < ncache; i++) {  // the CPU reference reads the rounded values
            kc[i] = fmt == VET_CUDA_KV_BF16 ? vet_bf16_to_f32(kc16[i]) : vet_f16_to_f32(kc16[i]);
            vc[i] = fmt == VET_CUDA_KV_BF16 ? vet_bf16_to_f32(vc16[i]) : vet_f16_to_f32(vc16[i]);
        }
        uint16_t *d_kc = dev(NULL, ncache * 2), *d_vc = dev(NULL, ncache * 2);
        float *d_kr = devf(kr, nr), *d_vr = devf(vr, nr), *d_q = devf(q, nq), *d_out = devf(NULL, nq);
        float *d_wide = devf(NULL, ncache);
        int32_t *d_slots = dev(slots, n * 4), *d_dpos = dev(dpos, n * 4);
        // the earlier rows uploaded as rounded, the step's rows written (and rounded) by the op
        TRY(vet_cuda_upload(ctx, d_kc, kc16, ncache * 2, &err));
        TRY(vet_cuda_upload(ctx, d_vc, vc16, ncache * 2, &err));
        TRY(kv_cache_write16_cuda(ctx, d_kc, d_kr, d_slots, d_dpos, n, max_len, KV, fmt, &err));
        TRY(kv_cache_write16_cuda(ctx, d_vc, d_vr, d_slots, d_dpos, n, max_len, KV, fmt, &err));
        if (fmt == VET_CUDA_KV_BF16) TRY(bf16_to_f32_cuda(ctx, d_wide, d_kc, ncache, &err));
        else TRY(f16_to_f32_cuda(ctx, d_wide, d_kc, ncache, &err));
        char nm[64];
        snprintf(sh, sizeof sh, "n=%d slots=%d max_len=%d KV=%d", n, n_slots, max_len, KV);
        snprintf(nm, sizeof nm, "kv_cache_write16 %s k", fn);
        r = compare_bits(nm, sh, d_wide, kc, ncache);
        TIME(kv_cache_write16_cuda(ctx, d_kc, d_kr, d_slots, d_dpos, n, max_len, KV, fmt, &err), r->ms);
        ref_attention_decode(out, q, kc, vc, slots, dpos, n, max_len, H, KVH, hd);
        TRY(attention_decode16_cuda(ctx, d_out, d_q, d_kc, d_vc, d_slots, d_dpos, n, max_len, H, KVH, hd, fmt, &err));
        snprintf(sh, sizeof sh, "n=%d max_len=%d H=%d KVH=%d hd=%d", n, max_len, H, KVH, hd);
        snprintf(nm, sizeof nm, "attention_decode16 %s", fn);
        r = compare(nm, sh, d_out, out, nq, F32);
        TIME(attention_decode16_cuda(ctx, d_out, d_q, d_kc, d_vc, d_slots, d_dpos, n, max_len, H, KVH, hd, fmt, &err),
             r->ms);
        free(slots), free(dpos), free(kc), free(vc), free(kr), free(vr), free(q), free(out), free(kc16), free(vc16);
        vet_cuda_mem_free(d_kc), vet_cuda_mem_free(d_vc), vet_cuda_mem_free(d_kr), vet_cuda_mem_free(d_vr);
        vet_cuda_mem_free(d_q), vet_cuda_mem_free(d_out), vet_cuda_mem_free(d_wide), vet_cuda_mem_free(d_slots);
        vet_cuda_mem_free(d_dpos);
    }

    // --- greedy argmax per row (N,V): ids equal the host's strict scan, ties planted ---
    if (want("other")) {
        float *x = rnd((size_t)N * V, 1);
        for (int i = 0; i < N; i++) {  // row i: its maximum twice, the lower id must win
            float *row = x + (size_t)i * V;
            int a = (int)vet_rng_below(&rng, (uint64_t)V), b = (int)vet_rng_below(&rng, (uint64_t)V);
            row[a] = row[b] = 100.0f;
        }
        int32_t *got = malloc((size_t)N * 4), *d_ids = dev(NULL, (size_t)N * 4);
        float *d_x = devf(x, (size_t)N * V);
        TRY(argmax_rows_cuda(ctx, d_ids, d_x, N, V, &err));
        TRY(vet_cuda_sync(ctx, &err));
        TRY(vet_cuda_download(ctx, got, d_ids, (size_t)N * 4, &err));
        int bad = 0;
        for (int i = 0; i < N; i++) {
            const float *row = x + (size_t)i * V;
            int best = 0;
            for (int v = 1; v < V; v++)
                if (row[v] > row[best]) best = v;
            bad += got[i] != best;
        }
        if (bad) failures++;
        snprintf(sh, sizeof sh, "N=%d V=%d", N, V);
        printf("%s argmax_rows: %d of %d rows differ from the host's (ties planted) %s\n", bad ? "not ok" : "ok", bad, N, sh);
        row_t *rr = &table[n_rows < 95 ? n_rows++ : 95];
        snprintf(rr->name, sizeof rr->name, "argmax_rows");
        snprintf(rr->shape, sizeof rr->shape, "%s", sh);
        rr->err = (double)bad / N, rr->tol = 0, rr->ms = 0;
        TIME(argmax_rows_cuda(ctx, d_ids, d_x, N, V, &err), rr->ms);
        free(x), free(got);
        vet_cuda_mem_free(d_ids), vet_cuda_mem_free(d_x);
    }

    // --- swiglu (N,F) ---
    if (want("other")) {
        size_t n = (size_t)N * F;
        float *gt = rnd(n, 2), *up = rnd(n, 1), *out = malloc(n * 4);
        float *d_gt = devf(gt, n), *d_up = devf(up, n), *d_out = devf(NULL, n);
        swiglu_forward(out, gt, up, n);
        TRY(swiglu_forward_cuda(ctx, d_out, d_gt, d_up, n, &err));
        snprintf(sh, sizeof sh, "N=%d F=%d", N, F);
        r = compare("swiglu_forward", sh, d_out, out, n, F32);
        TIME(swiglu_forward_cuda(ctx, d_out, d_gt, d_up, n, &err), r->ms);
        // the gradients written (=): NaNs in dgate, dup before, the CPU's values after
        float *dout = rnd(n, 1), *dg = rnd(n, 1), *du = rnd(n, 1), *nan = malloc(n * 4);
        for (size_t i = 0; i < n; i++) nan[i] = NAN;
        float *d_dout = devf(dout, n), *d_dg = devf(nan, n), *d_du = devf(nan, n);
        swiglu_backward_set(dg, du, dout, gt, up, n);
        TRY(swiglu_backward_set_cuda(ctx, d_dg, d_du, d_dout, d_gt, d_up, n, &err));
        r = compare("swiglu_backward_set dgate", sh, d_dg, dg, n, F32);
        compare("swiglu_backward_set dup", sh, d_du, du, n, F32);
        TIME(swiglu_backward_set_cuda(ctx, d_dg, d_du, d_dout, d_gt, d_up, n, &err), r->ms);
        free(nan);
        // residual add / scale
        add_inplace(gt, up, n);
        TRY(add_inplace_cuda(ctx, d_gt, d_up, n, &err));
        compare("add_inplace", sh, d_gt, gt, n, 0.0);
        scale_inplace(gt, 0.37f, n);
        TRY(scale_inplace_cuda(ctx, d_gt, 0.37f, n, &err));
        compare("scale_inplace", sh, d_gt, gt, n, 0.0);
        free(gt), free(up), free(out), free(dout), free(dg), free(du);
        vet_cuda_mem_free(d_gt), vet_cuda_mem_free(d_up), vet_cuda_mem_free(d_out);
        vet_cuda_mem_free(d_dout), vet_cuda_mem_free(d_dg), vet_cuda_mem_free(d_du);
    }

    // --- an adapter's products with its dropout inside (kernels/lora.cu) against the CPU's
    // dropout then BLAS: ranks 4, 16 and 32 (each template), widths C and an odd one (the tails) ---
    if (want("lora")) {
        const int ranks[3] = {4, 16, 32}, widths[2] = {C, C + 3};
        const float p = 0.1f;
        const uint64_t seed = 0x5eedu;
        for (int wi = 0; wi < 2; wi++)
            for (int ri = 0; ri < 3; ri++) {
                const int W = widths[wi], R = ranks[ri];
                size_t nx = (size_t)N * W, na = (size_t)R * W, nu = (size_t)N * R;
                float *x = rnd(nx, 1), *A = rnd(na, 1), *du = rnd(nu, 1), *xd = malloc(nx * 4), *u = malloc(nu * 4);
                float *dA = rnd(na, 1), *dinp = rnd(nx, 1), *t = malloc(nx * 4);
                float *d_x = devf(x, nx), *d_A = devf(A, na), *d_du = devf(du, nu), *d_u = devf(NULL, nu);
                float *d_dA = devf(dA, na), *d_dinp = devf(dinp, nx);
                size_t ns = lora_grad_a_scratch_floats(N, W, R);
                float *d_s = devf(NULL, ns ? ns : 1);
                dropout_forward(xd, x, p, seed, 37, N, W);
                matmul_forward(u, xd, A, NULL, N, W, R);
                vet_sgemm(1, 0, R, W, N, 1.0f, du, R, xd, W, 1.0f, dA, W);
                vet_sgemm(0, 0, N, W, R, 1.0f, du, R, A, W, 0.0f, t, W);
                dropout_backward(dinp, t, p, seed, 37, N, W);
                snprintf(sh, sizeof sh, "N=%d C=%d r=%d p=0.1", N, W, R);
                TRY(lora_down_dropout_cuda(ctx, d_u, d_x, d_A, p, seed, 37, N, W, R, &err));
                r = compare("lora_down_dropout", sh, d_u, u, nu, F32);
                TIME(lora_down_dropout_cuda(ctx, d_u, d_x, d_A, p, seed, 37, N, W, R, &err), r->ms);
                // variant 1 (the first kernel: A staged in shared memory, a row a warp): the
                // default's bits, timed beside
                float *u0 = malloc(nu * 4);
                TRY(lora_down_dropout_cuda(ctx, d_u, d_x, d_A, p, seed, 37, N, W, R, &err));
                TRY(vet_cuda_sync(ctx, &err));
                TRY(vet_cuda_download(ctx, u0, d_u, nu * 4, &err));
                lora_down_variant(1);
                TRY(vet_cuda_memset0(ctx, d_u, nu * 4, &err));
                TRY(lora_down_dropout_cuda(ctx, d_u, d_x, d_A, p, seed, 37, N, W, R, &err));
                r = compare_bits("variant 1 of lora_down_dropout (staged) == default", sh, d_u, u0, nu);
                TIME(lora_down_dropout_cuda(ctx, d_u, d_x, d_A, p, seed, 37, N, W, R, &err), r->ms);
                lora_down_variant(0);
                free(u0);
                TRY(lora_grad_a_dropout_cuda(ctx, d_dA, d_du, d_x, p, seed, 37, N, W, R, d_s, ns, &err));
                r = compare("lora_grad_a_dropout", sh, d_dA, dA, na, F32);
                TIME(lora_grad_a_dropout_cuda(ctx, d_dA, d_du, d_x, p, seed, 37, N, W, R, d_s, ns, &err), r->ms);
                TRY(lora_grad_input_dropout_cuda(ctx, d_dinp, d_du, d_A, p, seed, 37, N, W, R, &err));
                r = compare("lora_grad_input_dropout", sh, d_dinp, dinp, nx, F32);
                TIME(lora_grad_input_dropout_cuda(ctx, d_dinp, d_du, d_A, p, seed, 37, N, W, R, &err), r->ms);
                // p = 0 (training without dropout): the plain products on the same kernels
                {
                    float *up0 = malloc(nu * 4), *dA0 = rnd(na, 1);
                    float *d_dA0 = devf(dA0, na);
                    matmul_forward(up0, x, A, NULL, N, W, R);
                    vet_sgemm(1, 0, R, W, N, 1.0f, du, R, x, W, 1.0f, dA0, W);
                    snprintf(sh, sizeof sh, "N=%d C=%d r=%d p=0", N, W, R);
                    TRY(lora_down_dropout_cuda(ctx, d_u, d_x, d_A, 0.0f, seed, 37, N, W, R, &err));
                    r = compare("lora_down_dropout (p = 0)", sh, d_u, up0, nu, F32);
                    TIME(lora_down_dropout_cuda(ctx, d_u, d_x, d_A, 0.0f, seed, 37, N, W, R, &err), r->ms);
                    TRY(lora_grad_a_dropout_cuda(ctx, d_dA0, d_du, d_x, 0.0f, seed, 37, N, W, R, d_s, ns, &err));
                    r = compare("lora_grad_a_dropout (p = 0)", sh, d_dA0, dA0, na, F32);
                    TIME(lora_grad_a_dropout_cuda(ctx, d_dA0, d_du, d_x, 0.0f, seed, 37, N, W, R, d_s, ns, &err),
                         r->ms);
                    free(up0), free(dA0);
                    vet_cuda_mem_free(d_dA0);
                }
                // The backward's products through B on the same kernels without the mask: x as
                // dout (N,W), Bw (W,R) as B, du as u; s = 2. Training runs them in place of
                // cuBLAS's (the rows `lora cuBLAS du`, `dB` below time those at rank 16).
                {
                    const float sc = 2.0f;
                    float *Bw = rnd(na, 1), *dB = rnd(na, 1), *dub = malloc(nu * 4);
                    float *d_Bw = devf(Bw, na), *d_dB = devf(dB, na), *d_dub = devf(NULL, nu);
                    vet_sgemm(0, 0, N, R, W, sc, x, W, Bw, R, 0.0f, dub, R);
                    vet_sgemm(1, 0, W, R, N, sc, x, W, du, R, 1.0f, dB, R);
                    snprintf(sh, sizeof sh, "N=%d out=%d r=%d", N, W, R);
                    const double mb = (double)nx * 4 / 1e6;
                    TRY(lora_du_cuda(ctx, d_dub, d_x, d_Bw, sc, N, W, R, &err));
                    r = compare("lora_du", sh, d_dub, dub, nu, F32);
                    TIME(lora_du_cuda(ctx, d_dub, d_x, d_Bw, sc, N, W, R, &err), r->ms);
                    if (r->ms > 0) printf("# lora_du kernel %s: %.0f GB/s (dout read)\n", sh, mb / r->ms);
                    TRY(lora_grad_b_cuda(ctx, d_dB, d_x, d_du, sc, N, W, R, d_s, ns, &err));
                    r = compare("lora_grad_b", sh, d_dB, dB, na, F32);
                    TIME(lora_grad_b_cuda(ctx, d_dB, d_x, d_du, sc, N, W, R, d_s, ns, &err), r->ms);
                    if (r->ms > 0) printf("# lora_grad_b kernel %s: %.0f GB/s (dout read)\n", sh, mb / r->ms);
                    free(Bw), free(dB), free(dub);
                    vet_cuda_mem_free(d_Bw), vet_cuda_mem_free(d_dB), vet_cuda_mem_free(d_dub);
                }
                lora16_rows(N, W, R, x, A, du, p, VET_CUDA_BF16);
                lora16_rows(N, W, R, x, A, du, 0.0f, VET_CUDA_F16);
                lora_mma_rows(N, W, R, x, A, du, p, VET_CUDA_BF16);
                lora_mma_rows(N, W, R, x, A, du, 0.0f, VET_CUDA_BF16);
                lora_mma_rows(N, W, R, x, A, du, p, VET_CUDA_F16);
                // fewer than 2r rows: one row slice, summed straight into dA and dB
                if (wi == 0 && R == 16) lora_mma_rows(R + 4, W, R, x, A, du, p, VET_CUDA_BF16);
                free(x), free(A), free(du), free(xd), free(u), free(dA), free(dinp), free(t);
                vet_cuda_mem_free(d_x), vet_cuda_mem_free(d_A), vet_cuda_mem_free(d_du), vet_cuda_mem_free(d_u);
                vet_cuda_mem_free(d_dA), vet_cuda_mem_free(d_dinp), vet_cuda_mem_free(d_s);
            }
        // The adapter's products on cuBLAS (kernels/host/gpu_train.c's calls; du and dB only with
        // VET_GPU_LORA_FUSED=0 since lora_du and lora_grad_b, above), rank 16
        // at width C: y += s u B^T (up), du = s dout B, dB += s dout^T u; against the CPU's BLAS and
        // timed, with the bytes each must move, so a lease tells which LoRA product is far from
        // the memory's rate (the 7B step's LoRA share, 73-77 ms, is ~7x what its traffic needs).
        {
            const int R = 16;
            const float sc = 2.0f;
            size_t ny = (size_t)N * C, nu = (size_t)N * R, nb = (size_t)C * R;
            float *u = rnd(nu, 1), *Bw = rnd(nb, 1), *y = rnd(ny, 1), *dy = rnd(ny, 1), *du = malloc(nu * 4);
            float *dB = rnd(nb, 1);
            float *d_u = devf(u, nu), *d_B = devf(Bw, nb), *d_y = devf(y, ny), *d_dy = devf(dy, ny);
            float *d_du = devf(NULL, nu), *d_dB = devf(dB, nb);
            snprintf(sh, sizeof sh, "N=%d out=%d r=%d", N, C, R);
            const double mb_y = (double)ny * 4 / 1e6;
            vet_sgemm(0, 1, N, C, R, sc, u, R, Bw, R, 1.0f, y, C);
            TRY(vet_cuda_sgemm(ctx, 0, 1, N, C, R, sc, d_u, R, d_B, R, 1.0f, d_y, C, &err));
            r = compare("lora cuBLAS up (y += s u B^T)", sh, d_y, y, ny, 1e-5);
            TIME(vet_cuda_sgemm(ctx, 0, 1, N, C, R, sc, d_u, R, d_B, R, 1.0f, d_y, C, &err), r->ms);
            if (r->ms > 0) printf("# lora cuBLAS up %s: %.0f GB/s (y read and written)\n", sh, 2 * mb_y / r->ms);
            // the same product by lora_up_cuda (a candidate for training's up product), from a
            // fresh y
            float *y0 = rnd(ny, 1), *y1 = malloc(ny * 4);
            memcpy(y1, y0, ny * 4);
            vet_sgemm(0, 1, N, C, R, sc, u, R, Bw, R, 1.0f, y1, C);
            TRY(vet_cuda_upload(ctx, d_y, y0, ny * 4, &err));
            TRY(lora_up_cuda(ctx, d_y, d_u, d_B, sc, N, C, R, &err));
            r = compare("lora_up (kernel: y += s u B^T)", sh, d_y, y1, ny, 1e-5);
            TIME(lora_up_cuda(ctx, d_y, d_u, d_B, sc, N, C, R, &err), r->ms);
            if (r->ms > 0) printf("# lora_up kernel %s: %.0f GB/s (y read and written)\n", sh, 2 * mb_y / r->ms);
            // y in 16 bits (gate's and up's outputs with adapters, the 16-bit mode): lora_up16_cuda
            // against lora_up_cuda on the widened y then the conversion, bit for bit, at width C
            // (8-byte accesses) and C - 1 (element by element); timed at C beside the fp32 row.
            for (int fmt = VET_CUDA_BF16; fmt <= VET_CUDA_F16; fmt++)
                for (int wi = 0; wi < 2; wi++) {
                    const int out = C - wi;
                    const size_t n16 = (size_t)N * out;
                    uint16_t *h = malloc(n16 * 2);
                    float *w = malloc(n16 * 4);
                    for (size_t i = 0; i < n16; i++) {
                        h[i] = fmt == VET_CUDA_F16 ? vet_f32_to_f16(y0[i]) : vet_f32_to_bf16(y0[i]);
                        w[i] = fmt == VET_CUDA_F16 ? vet_f16_to_f32(h[i]) : vet_bf16_to_f32(h[i]);
                    }
                    uint16_t *d_h = dev(h, n16 * 2), *d_ref = dev(NULL, n16 * 2);
                    TRY(vet_cuda_upload(ctx, d_y, w, n16 * 4, &err));
                    TRY(lora_up_cuda(ctx, d_y, d_u, d_B, sc, N, out, R, &err));
                    TRY(fmt == VET_CUDA_F16 ? f32_to_f16_cuda(ctx, d_ref, d_y, n16, &err)
                                            : f32_to_bf16_cuda(ctx, d_ref, d_y, n16, &err));
                    TRY(lora_up16_cuda(ctx, d_h, fmt, d_u, d_B, sc, N, out, R, &err));
                    char nm[64], sh16[96];
                    snprintf(nm, sizeof nm, "lora_up16 %s == fp32 twin", fmt == VET_CUDA_F16 ? "f16" : "bf16");
                    snprintf(sh16, sizeof sh16, "N=%d out=%d r=%d", N, out, R);
                    r = bits_row_as(nm, sh16, same_bits_dev(d_h, d_ref, n16 * 2), "lora_up then the conversion");
                    if (wi == 0) TIME(lora_up16_cuda(ctx, d_h, fmt, d_u, d_B, sc, N, out, R, &err), r->ms);
                    free(h), free(w), vet_cuda_mem_free(d_h), vet_cuda_mem_free(d_ref);
                }
            free(y0), free(y1);
            vet_sgemm(0, 0, N, R, C, sc, dy, C, Bw, R, 0.0f, du, R);
            TRY(vet_cuda_sgemm(ctx, 0, 0, N, R, C, sc, d_dy, C, d_B, R, 0.0f, d_du, R, &err));
            r = compare("lora cuBLAS du (s dout B)", sh, d_du, du, nu, 1e-4);
            TIME(vet_cuda_sgemm(ctx, 0, 0, N, R, C, sc, d_dy, C, d_B, R, 0.0f, d_du, R, &err), r->ms);
            if (r->ms > 0) printf("# lora cuBLAS du %s: %.0f GB/s (dout read)\n", sh, mb_y / r->ms);
            vet_sgemm(1, 0, C, R, N, sc, dy, C, u, R, 1.0f, dB, R);
            TRY(vet_cuda_sgemm(ctx, 1, 0, C, R, N, sc, d_dy, C, d_u, R, 1.0f, d_dB, R, &err));
            r = compare("lora cuBLAS dB (s dout^T u)", sh, d_dB, dB, nb, 1e-4);
            TIME(vet_cuda_sgemm(ctx, 1, 0, C, R, N, sc, d_dy, C, d_u, R, 1.0f, d_dB, R, &err), r->ms);
            if (r->ms > 0) printf("# lora cuBLAS dB %s: %.0f GB/s (dout read)\n", sh, mb_y / r->ms);
            free(u), free(Bw), free(y), free(dy), free(du), free(dB);
            vet_cuda_mem_free(d_u), vet_cuda_mem_free(d_B), vet_cuda_mem_free(d_y), vet_cuda_mem_free(d_dy);
            vet_cuda_mem_free(d_du), vet_cuda_mem_free(d_dB);
        }
        // a rank over the limit is refused with the reason, not run
        int rc = lora_down_dropout_cuda(ctx, NULL, NULL, NULL, 0.1f, 1, 0, N, C, VET_LORA_FUSED_MAX_R + 1, &err);
        int ok = rc < 0 && strstr(err.msg, "use the unfused path");
        if (!ok) failures++;
        printf("%s lora_down_dropout refuses rank %d\n", ok ? "ok" : "not ok", VET_LORA_FUSED_MAX_R + 1);
        rc = lora_up_cuda(ctx, NULL, NULL, NULL, 1.0f, N, C, VET_LORA_FUSED_MAX_R + 1, &err);
        ok = rc < 0 && strstr(err.msg, "lora_up: rank") && strstr(err.msg, "outside");
        if (!ok) failures++;
        printf("%s lora_up refuses rank %d\n", ok ? "ok" : "not ok", VET_LORA_FUSED_MAX_R + 1);
        rc = lora_up16_cuda(ctx, NULL, 3, NULL, NULL, 1.0f, N, C, 16, &err);
        ok = rc < 0 && strstr(err.msg, "lora_up16: format 3 is neither bf16 (1) nor fp16 (2)");
        if (!ok) failures++;
        printf("%s lora_up16 refuses format 3\n", ok ? "ok" : "not ok");
        rc = lora_du_cuda(ctx, NULL, NULL, NULL, 1.0f, N, C, VET_LORA_FUSED_MAX_R + 1, &err);
        ok = rc < 0 && strstr(err.msg, "lora_du: rank") && strstr(err.msg, "use cuBLAS");
        rc = lora_grad_b_cuda(ctx, NULL, NULL, NULL, 1.0f, N, C, VET_LORA_FUSED_MAX_R + 1, NULL, 0, &err);
        ok = ok && rc < 0 && strstr(err.msg, "lora_grad_b: rank") && strstr(err.msg, "use cuBLAS");
        if (!ok) failures++;
        printf("%s lora_du and lora_grad_b refuse rank %d\n", ok ? "ok" : "not ok", VET_LORA_FUSED_MAX_R + 1);
    }

    // --- dropout on the LoRA input widths (N,C) and (N,F), and an odd width (the kernel's
    // scalar path, no float4): the CPU's masks, bit for bit ---
    if (want("other")) {
        const float ps[3] = {0.1f, 0.5f, 0.3f};
        for (int k = 0; k < 3; k++) {
            int W = k == 0 ? C : k == 1 ? F : C - 1;
            size_t n = (size_t)N * W;
            uint64_t s = vet_rng_next(&rng);
            float *x = rnd(n, 1), *y = malloc(n * 4), *dout = rnd(n, 1), *dinp = rnd(n, 1);
            float *d_x = devf(x, n), *d_y = devf(NULL, n), *d_dout = devf(dout, n), *d_dinp = devf(dinp, n);
            char nm[64];
            snprintf(sh, sizeof sh, "N=%d C=%d p=%g", N, W, ps[k]);
            dropout_forward(y, x, ps[k], s, 0, N, W);
            TRY(dropout_forward_cuda(ctx, d_y, d_x, ps[k], s, 0, N, W, &err));
            snprintf(nm, sizeof nm, "dropout_forward p=%g", ps[k]);
            r = compare_bits(nm, sh, d_y, y, n);
            TIME(dropout_forward_cuda(ctx, d_y, d_x, ps[k], s, 0, N, W, &err), r->ms);
            // a rank's share: rows [r0, N) run alone with row0 = r0 (not a warp's multiple)
            // are the CPU's whole-batch rows r0.. bit for bit
            int r0 = N > 37 ? 37 : N / 2;
            size_t off = (size_t)r0 * W;
            TRY(dropout_forward_cuda(ctx, d_y, d_x + off, ps[k], s, r0, N - r0, W, &err));
            snprintf(nm, sizeof nm, "dropout_forward row0=%d p=%g", r0, ps[k]);
            compare_bits(nm, sh, d_y, y + off, n - off);
            // backward: += onto the same random start, with the forward's mask
            dropout_backward(dinp, dout, ps[k], s, 0, N, W);
            TRY(dropout_backward_cuda(ctx, d_dinp, d_dout, ps[k], s, 0, N, W, &err));
            snprintf(nm, sizeof nm, "dropout_backward p=%g", ps[k]);
            r = compare_bits(nm, sh, d_dinp, dinp, n);
            TIME(dropout_backward_cuda(ctx, d_dinp, d_dout, ps[k], s, 0, N, W, &err), r->ms);
            // in place (out == inp), as the residual dropout uses it on the CPU
            TRY(dropout_forward_cuda(ctx, d_x, d_x, ps[k], s, 0, N, W, &err));
            snprintf(nm, sizeof nm, "dropout_forward in place p=%g", ps[k]);
            compare_bits(nm, sh, d_x, y, n);
            free(x), free(y), free(dout), free(dinp);
            vet_cuda_mem_free(d_x), vet_cuda_mem_free(d_y), vet_cuda_mem_free(d_dout), vet_cuda_mem_free(d_dinp);
        }
    }

    // --- cross-entropy: plain, then fused with the lm_head over the target rows ---
    if (want("other")) {
        int n = 0;
        for (int i = 0; i < N; i++) n += tgt[i] >= 0;
        int nr = n < 512 ? n : 512;  // plain op on the first rows (some with target -1)
        float *logits = rnd((size_t)nr * V, 3), *loss = malloc(nr * 4);
        float *d_logits = devf(logits, (size_t)nr * V), *d_loss = devf(NULL, N);
        crossentropy_softmax_backward_inplace(logits, loss, tgt, nr, V);
        TRY(crossentropy_softmax_backward_inplace_cuda(ctx, d_logits, d_loss, d_tgt, nr, V, &err));
        snprintf(sh, sizeof sh, "n=%d V=%d", nr, V);
        compare("crossentropy loss", sh, d_loss, loss, nr, F32);
        compare("crossentropy dlogits", sh, d_logits, logits, (size_t)nr * V, F32);
        free(logits), free(loss);
        vet_cuda_mem_free(d_logits);

        // fused: x (n,C) the target rows, W (V,C); CPU reference = the three steps unfused
        int32_t *t = malloc(n * 4);
        for (int i = 0, j = 0; i < N; i++)
            if (tgt[i] >= 0) t[j++] = tgt[i];
        float *x = rnd((size_t)n * C, 1), *W = rnd((size_t)V * C, 0.05f);
        float *lg = malloc((size_t)n * V * 4), *ls = malloc(n * 4), *dx = malloc((size_t)n * C * 4);
        float *dW0 = rnd((size_t)V * C, 1e-4f), *dW = copyf(dW0, (size_t)V * C);  // += from the same start
        float gs = 1.0f / (n ? n : 1);
        matmul_forward(lg, x, W, NULL, n, C, V);
        crossentropy_softmax_backward_inplace(lg, ls, t, n, V);
        vet_sgemm(0, 0, n, C, V, gs, lg, V, W, C, 0.0f, dx, C);
        vet_sgemm(1, 0, V, C, n, gs, lg, V, x, C, 1.0f, dW, C);
        int chunk_rows = 128;  // several chunks, the last one partial
        int32_t *d_t = dev(t, n * 4);
        float *d_x = devf(x, (size_t)n * C), *d_W = devf(W, (size_t)V * C);
        float *d_dx = devf(NULL, (size_t)n * C), *d_dW = devf(dW0, (size_t)V * C);
        float *d_chunk = devf(NULL, (size_t)chunk_rows * V);
        TRY(lmhead_crossentropy_cuda(ctx, d_loss, d_dx, d_dW, d_x, d_W, d_t, n, C, V, gs, d_chunk,
                                     chunk_rows, &err));
        snprintf(sh, sizeof sh, "n=%d C=%d V=%d chunk=%d", n, C, V, chunk_rows);
        r = compare("lmhead_crossentropy loss", sh, d_loss, ls, n, F32);
        compare("lmhead_crossentropy dx", sh, d_dx, dx, (size_t)n * C, F32);
        compare("lmhead_crossentropy dW", sh, d_dW, dW, (size_t)V * C, F32);
        TIME(lmhead_crossentropy_cuda(ctx, d_loss, d_dx, d_dW, d_x, d_W, d_t, n, C, V, gs, d_chunk,
                                      chunk_rows, &err), r->ms);
        free(t), free(x), free(W), free(lg), free(ls), free(dx), free(dW), free(dW0);
        vet_cuda_mem_free(d_t), vet_cuda_mem_free(d_x), vet_cuda_mem_free(d_W);
        vet_cuda_mem_free(d_dx), vet_cuda_mem_free(d_dW), vet_cuda_mem_free(d_chunk);
        vet_cuda_mem_free(d_loss);
    }

    // --- the rank-order sum of data-parallel gradients (kernels/rank_sum.cu): the bits of
    // lib/train/comm_mpi.c's host sum, so a run on N GPUs equals its host-summed twin. Copies of
    // mixed magnitudes make the order matter: from 3 copies on (2 commute) the reverse order
    // must differ somewhere, or the check could not see a kernel that adds in another order.
    for (int n_copies = 2; n_copies <= 8 && want("other"); n_copies += n_copies == 2 ? 1 : 5) {
        size_t len = (size_t)N * C + 7;  // odd: no multiple of a block
        float *copies = malloc((size_t)n_copies * len * 4), *want = malloc(len * 4);
        for (int j = 0; j < n_copies; j++)
            for (size_t i = 0; i < len; i++)
                copies[(size_t)j * len + i] = (float)vet_rng_normal(&rng) * (j % 3 == 0 ? 1e-3f : j % 3 == 1 ? 1.0f : 1e3f);
        size_t reverse_differs = 0;
        for (size_t i = 0; i < len; i++) {
            float f = copies[i], b = copies[(size_t)(n_copies - 1) * len + i];
            for (int j = 1; j < n_copies; j++) f += copies[(size_t)j * len + i];
            for (int j = n_copies - 2; j >= 0; j--) b += copies[(size_t)j * len + i];
            want[i] = f;
            reverse_differs += memcmp(&f, &b, sizeof f) != 0;
        }
        float *d_copies = devf(copies, (size_t)n_copies * len), *d_out = devf(NULL, len);
        TRY(sum_in_rank_order_cuda(ctx, d_out, d_copies, n_copies, len, &err));
        snprintf(sh, sizeof sh, "%d copies of %zu", n_copies, len);
        r = compare_bits("sum_in_rank_order", sh, d_out, want, len);
        TIME(sum_in_rank_order_cuda(ctx, d_out, d_copies, n_copies, len, &err), r->ms);
        if (n_copies > 2 && !reverse_differs) {
            failures++;
            printf("not ok sum_in_rank_order sensitivity: the reverse order gives the same bits %s\n", sh);
        }
        free(copies), free(want);
        vet_cuda_mem_free(d_copies), vet_cuda_mem_free(d_out);
    }

    // --- AdamW: the same fp32 operations, so bit-identical (tol 0) over several steps ---
    if (want("other")) {
        size_t n = (size_t)N * C;
        float *p = rnd(n, 1), *m = rnd(n, 0.1f), *v = malloc(n * 4);
        for (size_t i = 0; i < n; i++) v[i] = (float)fabs(vet_rng_normal(&rng)) * 0.01f;
        float *d_p = devf(p, n), *d_m = devf(m, n), *d_v = devf(v, n);
        for (int step = 1; step <= 3; step++) {
            float *g = rnd(n, 1), *d_g = devf(g, n);
            float gscale = step == 2 ? 0.37f : 1.0f;  // clipping's factor, on one step
            adamw_update(p, g, gscale, m, v, n, 2e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
            TRY(adamw_update_cuda(ctx, d_p, d_g, gscale, d_m, d_v, n, 2e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, step,
                                  &err));
            free(g);
            vet_cuda_mem_free(d_g);
        }
        snprintf(sh, sizeof sh, "n=%zu, 3 steps", n);
        r = compare("adamw_update p", sh, d_p, p, n, 0.0);
        compare("adamw_update m", sh, d_m, m, n, 0.0);
        compare("adamw_update v", sh, d_v, v, n, 0.0);
        float *g = rnd(n, 1), *d_g = devf(g, n);
        TIME(adamw_update_cuda(ctx, d_p, d_g, 1.0f, d_m, d_v, n, 2e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 4, &err), r->ms);
        free(p), free(m), free(v), free(g);
        vet_cuda_mem_free(d_p), vet_cuda_mem_free(d_m), vet_cuda_mem_free(d_v), vet_cuda_mem_free(d_g);
    }

    free(tokens), free(seg), free(pos), free(tgt);
    vet_cuda_mem_free(d_tokens), vet_cuda_mem_free(d_seg), vet_cuda_mem_free(d_pos);
    vet_cuda_mem_free(d_tgt);
}

// --- the gradients' norm and first non-finite index (gradstats.cu) ------------------------------
// Records one line of the table (for checks that are not a tensor compare).
// The decode step's linear layer on packed codes (matmul_rows_q_cuda): the bits of
// lib/model/quant_rows.c's replay, and the values of the GEMM on the dequantized weight (the
// tolerances of matmul_forward_q above), for 1, 3 and VET_QROWS_MAX rows, fp32 and bf16, with
// the time against the scratch path (dequantize, then the GEMM) at 1 and 8 rows. Refused, as
// matmul_rows_q_fits says: a ninth row, an odd width, a misaligned input.
static void quant_rows_cases(const config *c) {
    for (int kind = VET_CUDA_Q_INT8; kind <= VET_CUDA_Q_NF4; kind++) {
        const int OC = c->F, K = c->C, NM = VET_QROWS_MAX;
        const size_t nw = (size_t)OC * K;
        const char *kn = kind == VET_CUDA_Q_INT8 ? "int8" : "nf4";
        float *w = rnd(nw, 0.05f), *bias = rnd(OC, 1), *x = rnd((size_t)NM * K, 1);
        size_t qb = kind == VET_CUDA_Q_INT8 ? nw : vet_nf4_dq_bytes(nw);
        size_t ns = kind == VET_CUDA_Q_INT8 ? (size_t)OC : vet_nf4_dq_scales(nw);
        void *q = malloc(qb);
        float *sc = malloc(ns * 4), *wd = malloc(nw * 4), *wr = malloc(nw * 4), *xr = malloc((size_t)NM * K * 4);
        float *want = malloc((size_t)NM * OC * 4), *gemm = malloc((size_t)NM * OC * 4);
        uint16_t *x16 = malloc((size_t)NM * K * 2);
        if ((kind == VET_CUDA_Q_INT8 ? vet_quant_int8(q, sc, w, OC, K, &err) : vet_quant_nf4_dq(q, sc, w, nw, &err)) < 0) {
            printf("not ok quantize %s: %s\n", kn, err.msg);
            exit(1);
        }
        if (kind == VET_CUDA_Q_INT8) vet_dequant_int8(wd, q, sc, OC, K);
        else vet_dequant_nf4_dq(wd, q, sc, nw);
        for (size_t i = 0; i < nw; i++) wr[i] = vet_bf16_to_f32(vet_f32_to_bf16(wd[i]));
        for (size_t i = 0; i < (size_t)NM * K; i++) xr[i] = vet_bf16_to_f32(x16[i] = vet_f32_to_bf16(x[i]));
        void *d_q = dev(q, qb), *scratch = dev(NULL, nw * 4);
        float *d_sc = devf(sc, ns), *d_x = devf(x, (size_t)NM * K), *d_b = devf(bias, OC);
        float *d_out = devf(NULL, (size_t)NM * OC);
        uint16_t *d_x16 = dev(x16, (size_t)NM * K * 2);
        vet_cuda_qweight qw = {kind, d_q, d_sc};
        char nm[64], sh[64];
        static const int rows[] = {1, 3, VET_QROWS_MAX};
        for (int half = 0; half <= 1; half++)
            for (int ri = 0; ri < 3; ri++) {
                int N = rows[ri];
                const float *xin = half ? xr : x;
                snprintf(sh, sizeof sh, "N=%d C=%d OC=%d", N, K, OC);
                snprintf(nm, sizeof nm, "matmul_rows_q %s %s", kn, half ? "bf16" : "fp32");
                vet_quant_rows_forward(want, xin, (vet_quant_kind)kind, q, sc, bias, N, K, OC, half);
                TRY(matmul_rows_q_cuda(ctx, d_out, d_x, half ? d_x16 : NULL, &qw, d_b, N, K, OC, &err));
                row_t *r = compare_bits(nm, sh, d_out, want, (size_t)N * OC);
                if (N != 3) {
                    TIME(matmul_rows_q_cuda(ctx, d_out, d_x, half ? d_x16 : NULL, &qw, d_b, N, K, OC, &err), r->ms);
                    if (r->ms > 0)
                        printf("# %s %s: %.0f GB/s of packed weights\n", nm, sh,
                               (double)(qb + ns * 4) / (r->ms * 1e-3) / 1e9);
                }
                matmul_forward(gemm, xin, half ? wr : wd, bias, N, K, OC);
                snprintf(nm, sizeof nm, "matmul_rows_q %s %s vs GEMM", kn, half ? "bf16" : "fp32");
                compare(nm, sh, d_out, gemm, (size_t)N * OC, half ? 1e-4 : F32_TOL);
                if (N != 3) {  // the path it replaces, for the time
                    snprintf(nm, sizeof nm, "matmul_forward_q %s %s (scratch)", kn, half ? "bf16" : "fp32");
                    TRY(matmul_forward_q_cuda(ctx, d_out, d_x, half ? d_x16 : NULL, &qw, d_b, N, K, OC, scratch, &err));
                    r = compare(nm, sh, d_out, gemm, (size_t)N * OC, half ? 1e-4 : F32_TOL);
                    TIME(matmul_forward_q_cuda(ctx, d_out, d_x, half ? d_x16 : NULL, &qw, d_b, N, K, OC, scratch,
                                               &err), r->ms);
                }
            }
        // 9 to 64 rows on the tensor cores (matmul_rows_q_mma_cuda, bf16 inputs): the GEMM on the
        // weights rounded to bf16, within 1e-4 (the order of fp32 sums), timed beside the scratch
        // path at 64 rows (vet-generate's batch)
        {
            const int NQ = VET_QMMA_ROWS;
            float *xq = rnd((size_t)NQ * K, 1), *xqr = malloc((size_t)NQ * K * 4), *ref = malloc((size_t)NQ * OC * 4);
            uint16_t *xq16 = malloc((size_t)NQ * K * 2);
            for (size_t i = 0; i < (size_t)NQ * K; i++) xqr[i] = vet_bf16_to_f32(xq16[i] = vet_f32_to_bf16(xq[i]));
            uint16_t *d_xq16 = dev(xq16, (size_t)NQ * K * 2);
            float *d_oq = devf(NULL, (size_t)NQ * OC);
            static const int qrows[] = {9, 16, 40, VET_QMMA_ROWS};
            for (int ri = 0; ri < 4; ri++) {
                const int N = qrows[ri];
                snprintf(sh, sizeof sh, "N=%d C=%d OC=%d", N, K, OC);
                matmul_forward(ref, xqr, wr, bias, N, K, OC);
                snprintf(nm, sizeof nm, "matmul_rows_q_mma %s bf16 vs GEMM", kn);
                TRY(matmul_rows_q_mma_cuda(ctx, d_oq, d_xq16, &qw, d_b, N, K, OC, &err));
                row_t *r = compare(nm, sh, d_oq, ref, (size_t)N * OC, 1e-4);
                if (N != VET_QMMA_ROWS) continue;
                TIME(matmul_rows_q_mma_cuda(ctx, d_oq, d_xq16, &qw, d_b, N, K, OC, &err), r->ms);
                if (r->ms > 0)
                    printf("# %s %s: %.0f GB/s of packed weights\n", nm, sh, (double)(qb + ns * 4) / (r->ms * 1e-3) / 1e9);
                snprintf(nm, sizeof nm, "matmul_forward_q %s bf16 (scratch)", kn);
                TRY(matmul_forward_q_cuda(ctx, d_oq, NULL, d_xq16, &qw, d_b, N, K, OC, scratch, &err));
                r = compare(nm, sh, d_oq, ref, (size_t)N * OC, 1e-4);
                TIME(matmul_forward_q_cuda(ctx, d_oq, NULL, d_xq16, &qw, d_b, N, K, OC, scratch, &err), r->ms);
            }
            int refused = matmul_rows_q_mma_cuda(ctx, d_oq, d_xq16, &qw, d_b, VET_QMMA_ROWS + 1, K, OC, &err) < 0 &&
                          strstr(err.msg, "use matmul_forward_q") != NULL;
            if (!refused) failures++;
            printf("%s matmul_rows_q_mma %s refuses %d rows\n", refused ? "ok" : "not ok", kn, VET_QMMA_ROWS + 1);
            free(xq), free(xqr), free(ref), free(xq16);
            vet_cuda_mem_free(d_xq16), vet_cuda_mem_free(d_oq);
        }
        // refusals: each must fail with the message, and not write out
        struct { int N, C, off; const char *what; } bad[] = {
            {VET_QROWS_MAX + 1, K, 0, "a ninth row"}, {1, K - 1, 0, "an odd width"}, {1, K, 1, "a misaligned input"}};
        for (int i = 0; i < 3; i++) {
            int refused = matmul_rows_q_cuda(ctx, d_out, d_x + bad[i].off, NULL, &qw, d_b, bad[i].N, bad[i].C, OC,
                                             &err) < 0 && strstr(err.msg, "use matmul_forward_q") != NULL;
            if (!refused) failures++;
            printf("%s matmul_rows_q %s refuses %s\n", refused ? "ok" : "not ok", kn, bad[i].what);
        }
        free(w), free(bias), free(x), free(q), free(sc), free(wd), free(wr), free(xr), free(want), free(gemm);
        free(x16);
        vet_cuda_mem_free(d_q), vet_cuda_mem_free(scratch), vet_cuda_mem_free(d_sc), vet_cuda_mem_free(d_x);
        vet_cuda_mem_free(d_b), vet_cuda_mem_free(d_out), vet_cuda_mem_free(d_x16);
    }
}

static row_t *record(const char *name, const char *shape, int ok, double e, double tol, const char *what) {
    if (!ok) failures++;
    printf("%s %s: %s %s\n", ok ? "ok" : "not ok", name, what, shape);
    fflush(stdout);
    row_t *r = &table[n_rows < 511 ? n_rows++ : 511];
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    r->err = e, r->tol = tol, r->ms = 0;
    return r;
}

// grad_stats_cuda on the host buffer g (n): uploads it, runs the op, downloads the 16 bytes.
static vet_cuda_grad_stats gpu_grad_stats(const float *d_g, size_t n, float unscale, void *d_scratch,
                                          vet_cuda_grad_stats *d_out) {
    vet_cuda_grad_stats st;
    TRY(grad_stats_cuda(ctx, d_out, d_g, n, unscale, d_scratch, &err));
    TRY(vet_cuda_download(ctx, &st, d_out, sizeof st, &err));
    return st;
}

// The norm against vet_train_grad_norm (the CPU's double sum from element 0 up). The products
// are the same floats on both sides; only the order of the double additions differs, so the
// relative error is at most ~n * 2^-53 (1.9e-9 for the 7B adapter's 16.8M floats): tol 1e-8.
// Non-finite: the flag and the least index exactly, with an inf and a nan planted where a
// wrong block or stride minimum would pick the other one. Determinism: two runs, same bits.
static void grad_stats_cases(void) {
    const size_t big = (size_t)16777216 + 37;  // 7B LoRA r16 q,k,v,o (32 x 4 x 131072) and a ragged tail
    static const size_t sizes[] = {1, 257, 300001, (size_t)16777216 + 37};
    void *d_scratch = dev(NULL, grad_stats_scratch_bytes());
    vet_cuda_grad_stats *d_out = dev(NULL, sizeof(vet_cuda_grad_stats));
    char sh[64], what[160];
    for (int k = 0; k < 4; k++) {
        size_t n = sizes[k];
        for (int fp16 = 0; fp16 < 2; fp16++) {
            // fp16's case: gradients scaled by 2^16, unscale 2^-16 (the trainer's 1/S)
            float scale = fp16 ? 65536.0f * 1e-3f : 1e-3f, unscale = fp16 ? 1.0f / 65536.0f : 1.0f;
            float *g = rnd(n, scale), *d_g = devf(g, n);
            double cpu = vet_train_grad_norm(g, n, unscale);
            vet_cuda_grad_stats a = gpu_grad_stats(d_g, n, unscale, d_scratch, d_out);
            vet_cuda_grad_stats b = gpu_grad_stats(d_g, n, unscale, d_scratch, d_out);
            double e = fabs(a.norm - cpu) / (cpu > 0 ? cpu : 1);
            snprintf(sh, sizeof sh, "n=%zu unscale=%g", n, unscale);
            snprintf(what, sizeof what, "norm %.17g vs cpu %.17g, rel err %.3g (tol 1e-8), first_bad %llu", a.norm,
                     cpu, e, (unsigned long long)a.first_bad);
            row_t *r = record("grad_stats norm", sh, e <= 1e-8 && a.first_bad == n, e, 1e-8, what);
            int same = !memcmp(&a, &b, sizeof a);
            record("grad_stats deterministic", sh, same, same ? 0 : 1, 0,
                   same ? "two runs, identical bits" : "two runs differ in bits");
            if (n == big && !fp16)
                TIME(grad_stats_cuda(ctx, d_out, d_g, n, unscale, d_scratch, &err), r->ms);
            free(g);
            vet_cuda_mem_free(d_g);
        }
    }
    // Planted non-finite values: {index, value} pairs, and the index expected first.
    // 262144 = 1024 blocks x 256 threads, one grid stride: 262150 is block 0's second stride
    // (a block-0 minimum that is not the global one), 1000 and 5000 lie in later blocks.
    static const struct { size_t at[2]; int nan_first; size_t want; } plants[] = {
        {{1000, 300000}, 0, 1000}, {{262150, 5000}, 1, 5000}, {{300000, 300000}, 1, 300000}, {{0, 7}, 0, 0},
    };
    size_t n = 300001;
    for (int k = 0; k < 4; k++) {
        float *g = rnd(n, 1e-3f);
        g[plants[k].at[0]] = plants[k].nan_first ? NAN : INFINITY;
        g[plants[k].at[1]] = plants[k].nan_first ? INFINITY : NAN;
        float *d_g = devf(g, n);
        size_t cpu_bad = n;
        int cpu_flag = vet_train_find_nonfinite(g, n, &cpu_bad);
        double cpu_norm = vet_train_grad_norm(g, n, 1.0f);
        vet_cuda_grad_stats a = gpu_grad_stats(d_g, n, 1.0f, d_scratch, d_out);
        int ok = cpu_flag && cpu_bad == plants[k].want && a.first_bad == plants[k].want &&
                 !isfinite(a.norm) && !isfinite(cpu_norm);
        snprintf(sh, sizeof sh, "n=%zu planted at %zu, %zu", n, plants[k].at[0], plants[k].at[1]);
        snprintf(what, sizeof what, "first_bad %llu (cpu %zu, want %zu), norm %g (cpu %g)",
                 (unsigned long long)a.first_bad, cpu_bad, plants[k].want, a.norm, cpu_norm);
        record("grad_stats nonfinite", sh, ok, ok ? 0 : 1, 0, what);
        free(g);
        vet_cuda_mem_free(d_g);
    }
    vet_cuda_mem_free(d_scratch), vet_cuda_mem_free(d_out);
}

int main(int argc, char **argv) {
    const char *size = "small";
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) size = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: op_parity [--size small|mid] [--seed S] [--reps R] [--only attention,lora,other]\n");
            return 2;
        }
    }
    char why[512];
    if (!vet_cuda_available(why, sizeof why)) {
        printf("not ok op_parity: no usable GPU: %s\n", why);
        return 1;
    }
    // Odd sizes (head_dim 40, not a multiple of 32; rows not multiples of any tile) catch edge
    // cases; "mid" is a LLaMA-like layer with head_dim 128 and a 32k vocabulary. Samples up to
    // 100 positions at the small size, so that some attention tiles are whole (every query of a
    // warp sees every key: the kernels' unmasked path) beside the masked ones.
    static const config small = {"small", 2, 147, 200, 6, 2, 40, 344, 1000, 100};
    static const config mid = {"mid", 2, 1024, 2048, 16, 4, 128, 5632, 32000, 600};
    for (const char *p = only; p && *p;) {  // --only's names: a misspelt one would run nothing
        size_t n = strcspn(p, ",");
        if (!((n == 9 && !strncmp(p, "attention", n)) || (n == 4 && !strncmp(p, "lora", n)) ||
              (n == 5 && !strncmp(p, "other", n)))) {
            fprintf(stderr, "op_parity: unknown --only section '%.*s' (attention, lora, other)\n", (int)n, p);
            return 2;
        }
        p += n + (p[n] == ',');
    }
    const config *c = !strcmp(size, "mid") ? &mid : &small;
    if (strcmp(size, "mid") && strcmp(size, "small")) {
        fprintf(stderr, "op_parity: unknown --size %s (small or mid)\n", size);
        return 2;
    }
    printf("# seed %llu (op_parity --seed %llu --size %s repeats this run)\n",
           (unsigned long long)seed, (unsigned long long)seed, c->label);
    vet_rng_seed(&rng, seed);
    vet_set_threads(0);
    ctx = vet_cuda_new(0, &err);
    if (!ctx) {
        printf("not ok op_parity: %s\n", err.msg);
        return 1;
    }
    char name[256];
    if (vet_cuda_device_name(0, name, sizeof name, &err) == 0) printf("# device %s\n", name);
    run_config(c);
    if (want("other")) {
        quant_rows_cases(c);
        grad_stats_cases();
    }
    printf("\n| op | shape | max rel err | tol | GPU ms/call |\n| --- | --- | --- | --- | --- |\n");
    for (int i = 0; i < n_rows; i++) {
        char ms[32] = "-";  // only the first tensor of a call is timed
        if (table[i].ms > 0) snprintf(ms, sizeof ms, "%.3f", table[i].ms);
        printf("| %s | %s | %.2e | %.0e | %s |\n", table[i].name, table[i].shape, table[i].err,
               table[i].tol, ms);
    }
    vet_cuda_free(ctx);
    printf("# %d failed\n", failures);
    return failures ? 1 : 0;
}
