// ops_cuda_cpu.c — a CPU stand-in for kernels/ops_cuda.h: every function, done with the CPU
// ops of lib/model/ops.h on host memory ("device" memory is malloc, upload/download are memcpy).
//
// Why: the host-side orchestration of the CUDA backend (kernels/host/gpu_model.c: buffer layout,
// strides, the order of ops, transfers) is most of its code, and this machine and CI have no
// GPU. Linked in place of kernels/*.cu (mk/gpustub.mk builds that variant, always under
// ASan + UBSan), the GPU code runs here, so an out-of-bounds offset or a wrong buffer size
// is caught before the first run on a GPU. The kernels themselves are checked by
// tests/gpu/op_parity.c on a GPU. Asynchrony does not exist here: every op is done when it
// returns.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/ops_cuda.h"
#include "base/half.h"
#include "base/numparse.h"
#include "model/ops.h"
#include "model/quant.h"
#include "train/backend.h"

struct vet_cuda {
    int dev;
};

// The argument checks the real ops make (common.cuh's CHECK_CTX), so misuse fails here too.
#define CHECK_CTX(ctx, err)                                                              \
    do {                                                                                 \
        if (!(ctx)) return vet_errf(err, "%s:%d: no CUDA context", __FILE__, __LINE__);  \
    } while (0)

int vet_cuda_device_count(int *count, vet_err *err) {
    *count = 1;
    return 0;
}

int vet_cuda_device_name(int dev, char *name, size_t n, vet_err *err) {
    if (dev != 0) return vet_errf(err, "%s:%d: no CUDA device %d (the stand-in has one)", __FILE__, __LINE__, dev);
    snprintf(name, n, "CPU stand-in (tests/gpu/standin)");
    return 0;
}

vet_cuda *vet_cuda_new(int dev, vet_err *err) {
    if (dev != 0) {
        vet_errf(err, "%s:%d: no CUDA device %d (the stand-in has one)", __FILE__, __LINE__, dev);
        return NULL;
    }
    vet_cuda *c = calloc(1, sizeof *c);
    if (!c) vet_errf(err, "%s:%d: out of memory", __FILE__, __LINE__);
    return c;
}

void vet_cuda_free(vet_cuda *ctx) { free(ctx); }

// Nothing to load: the stand-in's GEMMs are OpenBLAS's.
int vet_cublas_load(vet_err *err) { return 0; }

// No stream on the CPU: nothing queues work of its own on the stand-in.
void *vet_cuda_stream(vet_cuda *ctx) { return NULL; }

int vet_cuda_sync(vet_cuda *ctx, vet_err *err) {
    CHECK_CTX(ctx, err);
    return 0;
}

// Timing marks: the wall clock when the mark is queued, which on the stand-in is when the
// work before it is done.
struct vet_cuda_timer {
    int n;
    double *at;  // (n) seconds
};

vet_cuda_timer *vet_cuda_timer_new(vet_cuda *ctx, int n, vet_err *err) {
    if (!ctx || n < 2) {
        vet_errf(err, "%s:%d: a timer needs a context and at least 2 marks", __FILE__, __LINE__);
        return NULL;
    }
    vet_cuda_timer *t = calloc(1, sizeof *t);
    double *at = calloc((size_t)n, sizeof *at);
    if (!t || !at) {
        free(t), free(at);
        vet_errf(err, "%s:%d: out of memory", __FILE__, __LINE__);
        return NULL;
    }
    t->n = n, t->at = at;
    return t;
}

int vet_cuda_timer_mark(vet_cuda_timer *t, int i, vet_err *err) {
    if (!t || i < 0 || i >= t->n) return vet_errf(err, "%s:%d: timer mark %d out of range", __FILE__, __LINE__, i);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t->at[i] = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    return 0;
}

int vet_cuda_timer_ms(vet_cuda_timer *t, int a, int b, float *ms, vet_err *err) {
    *ms = 0.0f;
    if (!t || a < 0 || a >= t->n || b < 0 || b >= t->n)
        return vet_errf(err, "%s:%d: timer marks %d, %d out of range", __FILE__, __LINE__, a, b);
    *ms = (float)((t->at[b] - t->at[a]) * 1e3);
    return 0;
}

void vet_cuda_timer_free(vet_cuda_timer *t) {
    if (!t) return;
    free(t->at);
    free(t);
}

// A pretend 80 GiB card with 64 GiB free; VET_STANDIN_MEM=BYTES (suffix K, M or G allowed)
// sets the free memory instead, so a test can make a memory plan not fit.
int vet_cuda_mem_info(vet_cuda *ctx, size_t *free_bytes, size_t *total_bytes, vet_err *err) {
    *free_bytes = *total_bytes = 0;
    CHECK_CTX(ctx, err);
    size_t gib = (size_t)1 << 30, f = 64 * gib, t = 80 * gib;
    const char *env = getenv("VET_STANDIN_MEM");
    if (env && *env) {
        vet_err why;
        if (vet_parse_bytes(env, 0, SIZE_MAX, &f, &why) < 0)
            return vet_errf(err, "%s:%d: VET_STANDIN_MEM='%s' is not a byte count (e.g. 1048576 or 64M)",
                            __FILE__, __LINE__, env);
        if (f > t) t = f;
    }
    *free_bytes = f, *total_bytes = t;
    return 0;
}

int vet_cuda_malloc(void **ptr, size_t bytes, vet_err *err) {
    *ptr = calloc(1, bytes ? bytes : 1);  // zeroed, as the real one
    if (!*ptr) return vet_errf(err, "%s:%d: out of memory for %zu bytes", __FILE__, __LINE__, bytes);
    return 0;
}

void vet_cuda_mem_free(void *ptr) { free(ptr); }

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
void vet_cuda_guard(void *p, size_t bytes) { __asan_poison_memory_region(p, bytes); }
#else
void vet_cuda_guard(void *p, size_t bytes) { (void)p, (void)bytes; }
#endif

int vet_cuda_upload(vet_cuda *ctx, void *dst_dev, const void *src_host, size_t bytes, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (bytes) memcpy(dst_dev, src_host, bytes);
    return 0;
}

int vet_cuda_download(vet_cuda *ctx, void *dst_host, const void *src_dev, size_t bytes, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (bytes) memcpy(dst_host, src_dev, bytes);
    return 0;
}

// Pinned host memory is plain malloc here; the async copy is done when it returns.
int vet_cuda_host_alloc(void **ptr, size_t bytes, vet_err *err) {
    *ptr = malloc(bytes ? bytes : 1);
    return *ptr ? 0 : vet_errf(err, "%s:%d: out of memory", __FILE__, __LINE__);
}

void vet_cuda_host_free(void *ptr) { free(ptr); }

int vet_cuda_download_async(vet_cuda *ctx, void *dst_host, const void *src_dev, size_t bytes, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (bytes) memcpy(dst_host, src_dev, bytes);
    return 0;
}

int vet_cuda_copy(vet_cuda *ctx, void *dst_dev, const void *src_dev, size_t bytes, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (bytes) memmove(dst_dev, src_dev, bytes);
    return 0;
}

int vet_cuda_memset0(vet_cuda *ctx, void *dst_dev, size_t bytes, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (bytes) memset(dst_dev, 0, bytes);
    return 0;
}

// --- bf16 ------------------------------------------------------------------------------------
int f32_to_bf16_cuda(vet_cuda *ctx, uint16_t *out, const float *inp, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    for (size_t i = 0; i < n; i++) out[i] = vet_f32_to_bf16(inp[i]);
    return 0;
}

int bf16_to_f32_cuda(vet_cuda *ctx, float *out, const uint16_t *inp, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    for (size_t i = 0; i < n; i++) out[i] = vet_bf16_to_f32(inp[i]);
    return 0;
}

// n bf16 values widened into a new fp32 buffer (NULL stays NULL).
static float *widen(const uint16_t *x, size_t n) {
    if (!x) return NULL;
    float *y = malloc((n ? n : 1) * sizeof(float));
    if (!y) abort();  // a test helper: out of memory here is not worth a code path
    for (size_t i = 0; i < n; i++) y[i] = vet_bf16_to_f32(x[i]);
    return y;
}

// --- embedding -------------------------------------------------------------------------------
int embedding_forward_cuda(vet_cuda *ctx, float *out, const int32_t *tokens, const float *embed,
                           int N, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    embedding_forward(out, tokens, embed, N, C);
    return 0;
}

int embedding_forward_bf16_cuda(vet_cuda *ctx, float *out, const int32_t *tokens,
                                const uint16_t *embed, int N, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            out[(size_t)n * C + c] = vet_bf16_to_f32(embed[(size_t)tokens[n] * C + c]);
    return 0;
}

int embedding_backward_cuda(vet_cuda *ctx, float *dembed, const float *dout,
                            const int32_t *tokens, int N, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    embedding_backward(dembed, dout, tokens, N, C);
    return 0;
}

// --- RMSNorm ---------------------------------------------------------------------------------
int rmsnorm_forward_cuda(vet_cuda *ctx, float *out, float *rstd, const float *inp,
                         const float *weight, int N, int C, float eps, vet_err *err) {
    CHECK_CTX(ctx, err);
    rmsnorm_forward(out, rstd, inp, weight, N, C, eps);
    return 0;
}

int rmsnorm_backward_cuda(vet_cuda *ctx, float *dinp, float *dweight, const float *dout,
                          const float *inp, const float *weight, const float *rstd, int N, int C,
                          vet_err *err) {
    CHECK_CTX(ctx, err);
    rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, N, C);
    return 0;
}

// --- GEMM and the linear layer ---------------------------------------------------------------
int vet_cuda_sgemm(vet_cuda *ctx, int transA, int transB, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C,
                   int ldc, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (M <= 0 || N <= 0) return 0;
    vet_sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return 0;
}

int vet_cuda_gemm_bf16(vet_cuda *ctx, int transA, int transB, int M, int N, int K, float alpha,
                       const uint16_t *A, int lda, const uint16_t *B, int ldb, float beta,
                       float *C, int ldc, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (M <= 0 || N <= 0) return 0;
    // Sizes of A and B as stored (row-major, leading dimensions given).
    size_t na = (size_t)(transA ? K : M) * lda, nb = (size_t)(transB ? N : K) * ldb;
    float *a = widen(A, na), *b = widen(B, nb);
    vet_sgemm(transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, C, ldc);
    free(a), free(b);
    return 0;
}

int matmul_forward_cuda(vet_cuda *ctx, float *out, const float *inp, const float *weight,
                        const float *bias, int N, int C, int OC, vet_err *err) {
    CHECK_CTX(ctx, err);
    matmul_forward(out, inp, weight, bias, N, C, OC);
    return 0;
}

int matmul_backward_cuda(vet_cuda *ctx, float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp, const float *weight, int N, int C,
                         int OC, vet_err *err) {
    CHECK_CTX(ctx, err);
    matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
    return 0;
}

int matmul_forward_bf16_cuda(vet_cuda *ctx, float *out, const uint16_t *inp,
                             const uint16_t *weight, const float *bias, int N, int C, int OC,
                             vet_err *err) {
    CHECK_CTX(ctx, err);
    float *x = widen(inp, (size_t)N * C), *w = widen(weight, (size_t)OC * C);
    matmul_forward(out, x, w, bias, N, C, OC);
    free(x), free(w);
    return 0;
}

// inp is read only for dweight (as the real op: a LoRA backward passes NULL).
int matmul_backward_bf16_cuda(vet_cuda *ctx, float *dinp, float *dweight, const uint16_t *dout,
                              const uint16_t *inp, const uint16_t *weight, int N, int C, int OC,
                              vet_err *err) {
    CHECK_CTX(ctx, err);
    float *d = widen(dout, (size_t)N * OC), *w = widen(weight, (size_t)OC * C);
    float *x = dweight ? widen(inp, (size_t)N * C) : NULL;
    matmul_backward(dinp, dweight, NULL, d, x, w, N, C, OC);
    free(d), free(w), free(x);
    return 0;
}

// --- RoPE ------------------------------------------------------------------------------------
int rope_forward_cuda(vet_cuda *ctx, float *x, const int32_t *pos, const float *cos_t,
                      const float *sin_t, int N, int nh, int hd, vet_err *err) {
    CHECK_CTX(ctx, err);
    rope_forward(x, pos, cos_t, sin_t, N, nh, hd);
    return 0;
}

// x rotated (or, backward, through the rotation's transpose) on a copy, rounded to bf16 into out16.
static int rope_into_bf16(uint16_t *out16, const float *x, int backward, const int32_t *pos, const float *cos_t,
                          const float *sin_t, int N, int nh, int hd, vet_err *err) {
    size_t n = (size_t)N * nh * hd;
    float *t = malloc(n * sizeof *t);
    if (!t) return vet_err_nomem(err, "out of memory");
    memcpy(t, x, n * sizeof *t);
    (backward ? rope_backward : rope_forward)(t, pos, cos_t, sin_t, N, nh, hd);
    for (size_t i = 0; i < n; i++) out16[i] = vet_f32_to_bf16(t[i]);
    free(t);
    return 0;
}

int rope_forward_bf16_cuda(vet_cuda *ctx, uint16_t *out16, const float *x, const int32_t *pos,
                           const float *cos_t, const float *sin_t, int N, int nh, int hd, vet_err *err) {
    CHECK_CTX(ctx, err);
    return rope_into_bf16(out16, x, 0, pos, cos_t, sin_t, N, nh, hd, err);
}

// In place on bf16: the forward on the widened values, rounded.
int rope_forward_inplace_bf16_cuda(vet_cuda *ctx, uint16_t *x16, const int32_t *pos, const float *cos_t,
                                   const float *sin_t, int N, int nh, int hd, vet_err *err) {
    CHECK_CTX(ctx, err);
    size_t n = (size_t)N * nh * hd;
    float *w = malloc(n * sizeof *w);
    if (!w) return vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < n; i++) w[i] = vet_bf16_to_f32(x16[i]);
    int rc = rope_into_bf16(x16, w, 0, pos, cos_t, sin_t, N, nh, hd, err);
    free(w);
    return rc;
}

int rope_backward_bf16_cuda(vet_cuda *ctx, uint16_t *out16, const float *dx, const int32_t *pos,
                            const float *cos_t, const float *sin_t, int N, int nh, int hd, vet_err *err) {
    CHECK_CTX(ctx, err);
    return rope_into_bf16(out16, dx, 1, pos, cos_t, sin_t, N, nh, hd, err);
}

int rope_backward_cuda(vet_cuda *ctx, float *dx, const int32_t *pos, const float *cos_t,
                       const float *sin_t, int N, int nh, int hd, vet_err *err) {
    CHECK_CTX(ctx, err);
    rope_backward(dx, pos, cos_t, sin_t, N, nh, hd);
    return 0;
}

// --- attention -------------------------------------------------------------------------------
size_t attention_scratch_bytes(int B, int T, int H) {
    return (size_t)B * T * 2 * sizeof(int32_t) + (size_t)B * T * H * sizeof(float);
}

// The real kernels' argument checks (attention.cu), so the GPU model meets them here first.
static int attention_args(int B, int T, int H, int KVH, int hd, const void *scratch, vet_err *err) {
    if (hd <= 0 || hd > 128 || hd % 2)
        return vet_errf(err, "%s:%d: attention head_dim %d (needs even, <= 128)", __FILE__, __LINE__, hd);
    if (KVH <= 0 || H % KVH)
        return vet_errf(err, "%s:%d: attention heads %d not a multiple of kv heads %d", __FILE__, __LINE__, H, KVH);
    if (!scratch) return vet_errf(err, "%s:%d: attention needs scratch", __FILE__, __LINE__);
    // Touch the whole scratch the caller claims to own: ASan catches a short buffer.
    memset((void *)scratch, 0, attention_scratch_bytes(B, T, H));
    return 0;
}

// A backward's checks; written (not added) gradients are zeroed first, then the CPU's += runs:
// the bits of a zeroing pass and an add.
static int backward_args(vet_cuda *ctx, float *dq, float *dk, float *dv, int B, int T, int H, int KVH, int hd,
                         int accumulate, void *scratch, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (attention_args(B, T, H, KVH, hd, scratch, err) < 0) return -1;
    if (!accumulate) {
        memset(dq, 0, (size_t)B * T * H * hd * sizeof *dq);
        memset(dk, 0, (size_t)B * T * KVH * hd * sizeof *dk);
        memset(dv, 0, (size_t)B * T * KVH * hd * sizeof *dv);
    }
    return 0;
}

int attention_forward_cuda(vet_cuda *ctx, float *out, float *lse, const float *q, const float *k,
                           const float *v, const int32_t *seg, int B, int T, int H, int KVH,
                           int hd, void *scratch, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (attention_args(B, T, H, KVH, hd, scratch, err) < 0) return -1;
    attention_forward(out, lse, q, k, v, seg, B, T, H, KVH, hd);
    return 0;
}

int attention_backward_cuda(vet_cuda *ctx, float *dq, float *dk, float *dv, const float *dout,
                            const float *q, const float *k, const float *v, const float *out,
                            const float *lse, const int32_t *seg, int B, int T, int H, int KVH,
                            int hd, int accumulate, void *scratch, vet_err *err) {
    if (backward_args(ctx, dq, dk, dv, B, T, H, KVH, hd, accumulate, scratch, err) < 0) return -1;
    attention_backward(dq, dk, dv, dout, q, k, v, out, lse, seg, B, T, H, KVH, hd);
    return 0;
}

// The tensor-core kernels' arithmetic, as lib/model/ops_attention_bf16.c computes it, on q, k, v
// widened from bf16 (the CPU op rounds them to bf16 again: the same values).
static int widen3(float **q32, float **k32, float **v32, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                  size_t nq, size_t nk, vet_err *err) {
    *q32 = malloc(nq * sizeof(float)), *k32 = malloc(nk * sizeof(float)), *v32 = malloc(nk * sizeof(float));
    if (!*q32 || !*k32 || !*v32) {
        free(*q32), free(*k32), free(*v32);
        return vet_err_nomem(err, "out of memory");
    }
    for (size_t i = 0; i < nq; i++) (*q32)[i] = vet_bf16_to_f32(q[i]);
    for (size_t i = 0; i < nk; i++) (*k32)[i] = vet_bf16_to_f32(k[i]), (*v32)[i] = vet_bf16_to_f32(v[i]);
    return 0;
}

// out or out16 as the kernels check them: exactly one; out16 4-byte aligned.
static int out_args(const char *what, const void *out, const void *out16, vet_err *err) {
    if (!out == !out16)
        return vet_errf(err, "%s:%d: %s: give out or out16, not %s", __FILE__, __LINE__, what,
                        out ? "both" : "neither");
    if ((uintptr_t)out16 % 4) return vet_errf(err, "%s:%d: %s: out16 is not 4-byte aligned", __FILE__, __LINE__, what);
    return 0;
}

// With out16 the CPU op's fp32 output rounded to bf16, as the kernels' stores round it.
int attention_forward_bf16_cuda(vet_cuda *ctx, float *out, uint16_t *out16, float *lse, const uint16_t *q,
                                const uint16_t *k, const uint16_t *v, const int32_t *seg, int B, int T, int H,
                                int KVH, int hd, void *scratch, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (out_args("attention_forward_bf16", out, out16, err) < 0) return -1;
    if (attention_args(B, T, H, KVH, hd, scratch, err) < 0) return -1;
    float *q32, *k32, *v32;
    size_t rows = (size_t)B * T, n = rows * H * hd;
    float *o32 = out ? out : malloc(n * sizeof(float));
    if (!o32) return vet_err_nomem(err, "out of memory");
    if (widen3(&q32, &k32, &v32, q, k, v, n, rows * KVH * hd, err) < 0) {
        if (!out) free(o32);
        return -1;
    }
    attention_forward_bf16(o32, lse, q32, k32, v32, seg, B, T, H, KVH, hd, VET_ATTN_TC_TILE);
    free(q32), free(k32), free(v32);
    if (!out) {
        for (size_t i = 0; i < n; i++) out16[i] = vet_f32_to_bf16(o32[i]);
        free(o32);
    }
    return 0;
}

// dout16 must be dout rounded (the kernels multiply with it, the CPU op rounds dout itself): a
// caller that hands another buffer is caught here. out16: the CPU op on its widened values.
int attention_backward_bf16_cuda(vet_cuda *ctx, float *dq, float *dk, float *dv, const float *dout,
                                 const uint16_t *dout16, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                 const float *out, const uint16_t *out16, const float *lse, const int32_t *seg, int B,
                                 int T, int H, int KVH, int hd, int accumulate, void *scratch, vet_err *err) {
    if (out_args("attention_backward_bf16", out, out16, err) < 0) return -1;
    if (backward_args(ctx, dq, dk, dv, B, T, H, KVH, hd, accumulate, scratch, err) < 0) return -1;
    float *q32, *k32, *v32;
    size_t rows = (size_t)B * T, n = rows * H * hd;
    for (size_t i = 0; i < n; i++)
        if (dout16[i] != vet_f32_to_bf16(dout[i]))
            return vet_errf(err, "%s:%d: attention_backward_bf16: dout16[%zu] is not dout rounded to bf16", __FILE__,
                            __LINE__, i);
    float *o32 = (float *)out;
    if (!out) {
        if (!(o32 = malloc(n * sizeof(float)))) return vet_err_nomem(err, "out of memory");
        for (size_t i = 0; i < n; i++) o32[i] = vet_bf16_to_f32(out16[i]);
    }
    int rc = widen3(&q32, &k32, &v32, q, k, v, n, rows * KVH * hd, err);
    if (rc == 0) {
        attention_backward_bf16(dq, dk, dv, dout, q32, k32, v32, o32, lse, seg, B, T, H, KVH, hd);
        free(q32), free(k32), free(v32);
    }
    if (!out) free(o32);
    return rc;
}

// Both kernels compute the same bits: one CPU op serves both.
void lora_down_variant(int variant) { (void)variant; }

// The register (mma) and WMMA kernels compute the same numbers: one replay serves every variant.
void attention_tc_variant(int variant) { (void)variant; }
int attention_cudnn_built(void) { return 1; }  // the CPU op stands for cuDNN's attention as for vet's

// The CPU ops take no 16-byte path: the one setting there is the ops themselves.
void elementwise_wide(int on) { (void)on; }

// --- SwiGLU, residual ------------------------------------------------------------------------
int swiglu_forward_cuda(vet_cuda *ctx, float *out, const float *gate, const float *up, size_t n,
                        vet_err *err) {
    CHECK_CTX(ctx, err);
    swiglu_forward(out, gate, up, n);
    return 0;
}

int add_inplace_cuda(vet_cuda *ctx, float *x, const float *y, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    add_inplace(x, y, n);
    return 0;
}

int scale_inplace_cuda(vet_cuda *ctx, float *x, float s, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    scale_inplace(x, s, n);
    return 0;
}

// --- fused passes: the ops in sequence (the kernels give these bits too) -------------------
static void round16_rows(uint16_t *out16, const float *x, size_t n, int fmt) {
    for (size_t i = 0; i < n; i++) out16[i] = fmt == VET_CUDA_F16 ? vet_f32_to_f16(x[i]) : vet_f32_to_bf16(x[i]);
}

int swiglu_backward_set_cuda(vet_cuda *ctx, float *dgate, float *dup, const float *dout,
                             const float *gate, const float *up, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    swiglu_backward_set(dgate, dup, dout, gate, up, n);
    return 0;
}

int swiglu_backward_half_cuda(vet_cuda *ctx, uint16_t *dgate, uint16_t *dup, int fmt, const float *dout,
                              const float *gate, const float *up, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (vet_cuda_check_fmt16(fmt, "swiglu_backward_half", err) < 0) return -1;
    if (n == 0) return 0;
    float *t = malloc(2 * n * sizeof *t);
    if (!t) return vet_err_kindf(err, VET_E_NOMEM, "%s:%d: stand-in swiglu: out of memory", __FILE__, __LINE__);
    swiglu_backward_set(t, t + n, dout, gate, up, n);
    round16_rows(dgate, t, n, fmt);
    round16_rows(dup, t + n, n, fmt);
    free(t);
    return 0;
}

int swiglu_forward_half_cuda(vet_cuda *ctx, float *out, uint16_t *out16, int fmt, const float *gate,
                             const float *up, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n == 0) return 0;
    float *y = out ? out : malloc(n * sizeof *y);
    if (!y) return vet_err_kindf(err, VET_E_NOMEM, "%s:%d: stand-in swiglu: out of memory", __FILE__, __LINE__);
    swiglu_forward(y, gate, up, n);
    if (out16) round16_rows(out16, y, n, fmt);
    if (!out) free(y);
    return 0;
}

int rmsnorm_forward_fused_cuda(vet_cuda *ctx, float *out, uint16_t *out16, int fmt, float *rstd, float *x,
                               const float *res, const float *weight, int N, int C, float eps, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || C <= 0) return 0;
    size_t n = (size_t)N * C;
    if (res) add_inplace(x, res, n);
    float *y = out ? out : malloc(n * sizeof *y);
    if (!y) return vet_err_kindf(err, VET_E_NOMEM, "%s:%d: stand-in rmsnorm: out of memory", __FILE__, __LINE__);
    rmsnorm_forward(y, rstd, x, weight, N, C, eps);
    if (out16) round16_rows(out16, y, n, fmt);
    if (!out) free(y);
    return 0;
}

// --- an adapter's products with its input dropout inside: the unfused sequence the trainer ran
// before (dropout into a temporary, then the same GEMM calls), so the bits are that path's ----
// zero_ok: p = 0 taken (the down product and dA: the plain product, as the kernels).
static int lora_fused_args(int r, float p, const char *what, vet_err *err, int zero_ok) {
    if (r < 1 || r > VET_LORA_FUSED_MAX_R)
        return vet_errf(err, "%s:%d: %s: rank %d outside 1..%d (use the unfused path)", __FILE__, __LINE__, what, r,
                        VET_LORA_FUSED_MAX_R);
    if (!((p > 0.0f || (zero_ok && p == 0.0f)) && p < 1.0f))
        return vet_errf(err, "%s:%d: %s: dropout %g outside %s, 1)", __FILE__, __LINE__, what, (double)p,
                        zero_ok ? "[0" : "(0");
    return 0;
}

// The row sums' slices, as the kernels': a scratch shorter than they need is refused; the stand-in
// writes all of it (ASan sees a short buffer here, as the device would fault).
static int lora_scratch(float *scratch, size_t have, size_t need, const char *what, vet_err *err) {
    if (have < need)
        return vet_errf(err, "%s:%d: %s: scratch of %zu floats, needs %zu", __FILE__, __LINE__, what, have, need);
    if (need) memset(scratch, 0, need * sizeof *scratch);
    return 0;
}

int lora_down_dropout_cuda(vet_cuda *ctx, float *u, const float *x, const float *A, float p, uint64_t seed,
                           int64_t row0, int N, int C, int r, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (lora_fused_args(r, p, "lora_down_dropout", err, 1) < 0) return -1;
    if (N <= 0 || C <= 0) return 0;
    float *xd = malloc((size_t)N * C * sizeof *xd);
    if (!xd) return vet_err_kindf(err, VET_E_NOMEM, "%s:%d: stand-in lora: out of memory", __FILE__, __LINE__);
    dropout_forward(xd, x, p, seed, row0, N, C);
    int rc = matmul_forward_cuda(ctx, u, xd, A, NULL, N, C, r, err);
    free(xd);
    return rc;
}

int lora_grad_a_dropout_cuda(vet_cuda *ctx, float *dA, const float *du, const float *x, float p, uint64_t seed,
                             int64_t row0, int N, int C, int r, float *scratch, size_t scratch_floats, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (lora_fused_args(r, p, "lora_grad_a_dropout", err, 1) < 0) return -1;
    if (N <= 0 || C <= 0) return 0;
    if (lora_scratch(scratch, scratch_floats, lora_grad_a_scratch_floats(N, C, r), "lora_grad_a_dropout", err) < 0)
        return -1;
    float *xd = malloc((size_t)N * C * sizeof *xd);
    if (!xd) return vet_err_kindf(err, VET_E_NOMEM, "%s:%d: stand-in lora: out of memory", __FILE__, __LINE__);
    dropout_forward(xd, x, p, seed, row0, N, C);
    int rc = vet_cuda_sgemm(ctx, 1, 0, r, C, N, 1.0f, du, r, xd, C, 1.0f, dA, C, err);
    free(xd);
    return rc;
}

// The kernel's arithmetic: per element the rank sum in order (fmaf), then y + s·sum (fmaf).
static float up_sum(const float *u, const float *B, int n, int o, int r) {
    float acc = 0.0f;
    for (int j = 0; j < r; j++) acc = fmaf(u[(size_t)n * r + j], B[(size_t)o * r + j], acc);
    return acc;
}
int lora_up_cuda(vet_cuda *ctx, float *y, const float *u, const float *B, float s, int N, int out, int r,
                 vet_err *err) {
    CHECK_CTX(ctx, err);
    if (r < 1 || r > VET_LORA_FUSED_MAX_R)
        return vet_errf(err, "%s:%d: lora_up: rank %d outside 1..%d", __FILE__, __LINE__, r, VET_LORA_FUSED_MAX_R);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < out; o++) y[(size_t)n * out + o] = fmaf(s, up_sum(u, B, n, o, r), y[(size_t)n * out + o]);
    return 0;
}

// The same per element on y widened from fmt, the result rounded to fmt.
int lora_up16_cuda(vet_cuda *ctx, uint16_t *y, int fmt, const float *u, const float *B, float s, int N, int out,
                   int r, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (vet_cuda_check_fmt16(fmt, "lora_up16", err) < 0) return -1;
    if (r < 1 || r > VET_LORA_FUSED_MAX_R)
        return vet_errf(err, "%s:%d: lora_up16: rank %d outside 1..%d", __FILE__, __LINE__, r, VET_LORA_FUSED_MAX_R);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < out; o++) {
            uint16_t *h = y + (size_t)n * out + o;
            const float w = fmt == VET_CUDA_F16 ? vet_f16_to_f32(*h) : vet_bf16_to_f32(*h);
            const float v = fmaf(s, up_sum(u, B, n, o, r), w);
            *h = fmt == VET_CUDA_F16 ? vet_f32_to_f16(v) : vet_f32_to_bf16(v);
        }
    return 0;
}

// The products through B: the cuBLAS calls the trainer makes without them, so the stand-in's
// training bits do not depend on which path runs; the arguments checked as the kernels check them.
int lora_du_cuda(vet_cuda *ctx, float *du, const float *dout, const float *B, float s, int N, int out, int r,
                 vet_err *err) {
    CHECK_CTX(ctx, err);
    if (r < 1 || r > VET_LORA_FUSED_MAX_R)
        return vet_errf(err, "%s:%d: lora_du: rank %d outside 1..%d (use cuBLAS)", __FILE__, __LINE__, r,
                        VET_LORA_FUSED_MAX_R);
    if (N <= 0 || out <= 0) return 0;
    return vet_cuda_sgemm(ctx, 0, 0, N, r, out, s, dout, out, B, r, 0.0f, du, r, err);
}

int lora_grad_b_cuda(vet_cuda *ctx, float *dB, const float *dout, const float *u, float s, int N, int out, int r,
                     float *scratch, size_t scratch_floats, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (r < 1 || r > VET_LORA_FUSED_MAX_R)
        return vet_errf(err, "%s:%d: lora_grad_b: rank %d outside 1..%d (use cuBLAS)", __FILE__, __LINE__, r,
                        VET_LORA_FUSED_MAX_R);
    if (N <= 0 || out <= 0) return 0;
    if (lora_scratch(scratch, scratch_floats, lora_grad_a_scratch_floats(N, out, r), "lora_grad_b", err) < 0)
        return -1;
    return vet_cuda_sgemm(ctx, 1, 0, out, r, N, s, dout, out, u, r, 1.0f, dB, r, err);
}

// The 16-bit entries: the fp32 ones on the widened copy (the kernels' contract, bit for bit).
static float *widen_copy(const uint16_t *x, int fmt, size_t n, const char *what, vet_err *err) {
    if (vet_cuda_check_fmt16(fmt, what, err) < 0) return NULL;
    float *w = malloc((n ? n : 1) * sizeof *w);
    if (!w) {
        vet_err_kindf(err, VET_E_NOMEM, "%s:%d: stand-in %s: out of memory", __FILE__, __LINE__, what);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) w[i] = fmt == VET_CUDA_F16 ? vet_f16_to_f32(x[i]) : vet_bf16_to_f32(x[i]);
    return w;
}
static size_t rows_by_width(int N, int C) { return N > 0 && C > 0 ? (size_t)N * C : 0; }

int lora_down_dropout16_cuda(vet_cuda *ctx, float *u, const uint16_t *x, int fmt, const float *A, float p,
                             uint64_t seed, int64_t row0, int N, int C, int r, vet_err *err) {
    CHECK_CTX(ctx, err);
    float *w = widen_copy(x, fmt, rows_by_width(N, C), "lora_down_dropout16", err);
    if (!w) return -1;
    int rc = lora_down_dropout_cuda(ctx, u, w, A, p, seed, row0, N, C, r, err);
    free(w);
    return rc;
}

int lora_grad_a_dropout16_cuda(vet_cuda *ctx, float *dA, const float *du, const uint16_t *x, int fmt, float p,
                               uint64_t seed, int64_t row0, int N, int C, int r, float *scratch,
                               size_t scratch_floats, vet_err *err) {
    CHECK_CTX(ctx, err);
    float *w = widen_copy(x, fmt, rows_by_width(N, C), "lora_grad_a_dropout16", err);
    if (!w) return -1;
    int rc = lora_grad_a_dropout_cuda(ctx, dA, du, w, p, seed, row0, N, C, r, scratch, scratch_floats, err);
    free(w);
    return rc;
}

int lora_du16_cuda(vet_cuda *ctx, float *du, const uint16_t *dout, int fmt, const float *B, float s, int N, int out,
                   int r, vet_err *err) {
    CHECK_CTX(ctx, err);
    float *w = widen_copy(dout, fmt, rows_by_width(N, out), "lora_du16", err);
    if (!w) return -1;
    int rc = lora_du_cuda(ctx, du, w, B, s, N, out, r, err);
    free(w);
    return rc;
}

int lora_grad_b16_cuda(vet_cuda *ctx, float *dB, const uint16_t *dout, int fmt, const float *u, float s, int N,
                       int out, int r, float *scratch, size_t scratch_floats, vet_err *err) {
    CHECK_CTX(ctx, err);
    float *w = widen_copy(dout, fmt, rows_by_width(N, out), "lora_grad_b16", err);
    if (!w) return -1;
    int rc = lora_grad_b_cuda(ctx, dB, w, u, s, N, out, r, scratch, scratch_floats, err);
    free(w);
    return rc;
}

// The tensor-core entries (kernels/lora_mma.cu): every operand rounded to fmt as the kernels
// read it (x after its dropout, A, B, du, u), then the fp32 products above on the rounded values
// (p = 0: the plain product). Only the order of fp32 sums differs from the device's.
static float round16(float v, int fmt) {
    return fmt == VET_CUDA_F16 ? vet_f16_to_f32(vet_f32_to_f16(v)) : vet_bf16_to_f32(vet_f32_to_bf16(v));
}
static float *rounded16(const float *x, size_t n, int fmt, vet_err *err) {
    float *y = malloc((n ? n : 1) * sizeof *y);
    if (!y) {
        vet_err_kindf(err, VET_E_NOMEM, "%s:%d: stand-in lora_mma: out of memory", __FILE__, __LINE__);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) y[i] = round16(x[i], fmt);
    return y;
}
static int mma_args(int fmt, int r, float p, const char *what, vet_err *err) {
    if (vet_cuda_check_fmt16(fmt, what, err) < 0) return -1;
    return lora_fused_args(r, p, what, err, 1);
}
// x (N,C) in fmt widened, with dropout p (> 0) applied, rounded to fmt again.
static float *dropped16(const uint16_t *x, int fmt, float p, uint64_t seed, int64_t row0, int N, int C,
                        vet_err *err) {
    const size_t n = rows_by_width(N, C);
    float *w = widen_copy(x, fmt, n, "lora_mma", err);
    if (!w || p == 0.0f) return w;
    float *d = malloc((n ? n : 1) * sizeof *d);
    if (!d) {
        free(w);
        vet_err_kindf(err, VET_E_NOMEM, "%s:%d: stand-in lora_mma: out of memory", __FILE__, __LINE__);
        return NULL;
    }
    dropout_forward(d, w, p, seed, row0, N, C);
    for (size_t i = 0; i < n; i++) d[i] = round16(d[i], fmt);
    free(w);
    return d;
}

int lora_down_mma_cuda(vet_cuda *ctx, float *u, const uint16_t *x, int fmt, const float *A, float p, uint64_t seed,
                       int64_t row0, int N, int C, int r, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (mma_args(fmt, r, p, "lora_down_mma", err) < 0) return -1;
    if (N <= 0 || C <= 0) return 0;
    float *xd = dropped16(x, fmt, p, seed, row0, N, C, err), *Ar = xd ? rounded16(A, (size_t)r * C, fmt, err) : NULL;
    int rc = Ar ? lora_down_dropout_cuda(ctx, u, xd, Ar, 0.0f, 0, 0, N, C, r, err) : -1;
    free(xd), free(Ar);
    return rc;
}

int lora_grad_a_mma_cuda(vet_cuda *ctx, float *dA, const float *du, const uint16_t *x, int fmt, float p,
                         uint64_t seed, int64_t row0, int N, int C, int r, float *scratch, size_t scratch_floats,
                         vet_err *err) {
    CHECK_CTX(ctx, err);
    if (mma_args(fmt, r, p, "lora_grad_a_mma", err) < 0) return -1;
    if (N <= 0 || C <= 0) return 0;
    float *xd = dropped16(x, fmt, p, seed, row0, N, C, err), *dur = xd ? rounded16(du, (size_t)N * r, fmt, err) : NULL;
    int rc = dur ? lora_grad_a_dropout_cuda(ctx, dA, dur, xd, 0.0f, 0, 0, N, C, r, scratch, scratch_floats, err) : -1;
    free(xd), free(dur);
    return rc;
}

int lora_du_mma_cuda(vet_cuda *ctx, float *du, const uint16_t *dout, int fmt, const float *B, float s, int N, int out,
                     int r, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (mma_args(fmt, r, 0.0f, "lora_du_mma", err) < 0) return -1;
    if (N <= 0 || out <= 0) return 0;
    float *d = dropped16(dout, fmt, 0.0f, 0, 0, N, out, err), *Br = d ? rounded16(B, (size_t)out * r, fmt, err) : NULL;
    int rc = Br ? lora_du_cuda(ctx, du, d, Br, s, N, out, r, err) : -1;
    free(d), free(Br);
    return rc;
}

int lora_grad_b_mma_cuda(vet_cuda *ctx, float *dB, const uint16_t *dout, int fmt, const float *u, float s, int N,
                         int out, int r, float *scratch, size_t scratch_floats, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (mma_args(fmt, r, 0.0f, "lora_grad_b_mma", err) < 0) return -1;
    if (N <= 0 || out <= 0) return 0;
    float *d = dropped16(dout, fmt, 0.0f, 0, 0, N, out, err), *ur = d ? rounded16(u, (size_t)N * r, fmt, err) : NULL;
    int rc = ur ? lora_grad_b_cuda(ctx, dB, d, ur, s, N, out, r, scratch, scratch_floats, err) : -1;
    free(d), free(ur);
    return rc;
}

int lora_grad_input_dropout_cuda(vet_cuda *ctx, float *dinp, const float *du, const float *A, float p,
                                 uint64_t seed, int64_t row0, int N, int C, int r, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (lora_fused_args(r, p, "lora_grad_input_dropout", err, 0) < 0) return -1;
    if (N <= 0 || C <= 0) return 0;
    float *t = malloc((size_t)N * C * sizeof *t);
    if (!t) return vet_err_kindf(err, VET_E_NOMEM, "%s:%d: stand-in lora: out of memory", __FILE__, __LINE__);
    int rc = vet_cuda_sgemm(ctx, 0, 0, N, C, r, 1.0f, du, r, A, C, 0.0f, t, C, err);
    if (rc == 0) dropout_backward(dinp, t, p, seed, row0, N, C);
    free(t);
    return rc;
}

// --- dropout -----------------------------------------------------------------------------------
// The CPU ops themselves: the kernel's masks are these bit for bit (lib/base/philox.h, shared;
// tests/unit/test_philox.c runs the kernel's walk in C against them).
int dropout_forward_cuda(vet_cuda *ctx, float *out, const float *inp, float p, uint64_t seed, int64_t row0,
                         int N, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || C <= 0 || (p <= 0.0f && out == inp)) return 0;  // memcpy onto itself is undefined
    dropout_forward(out, inp, p, seed, row0, N, C);
    return 0;
}

int dropout_backward_cuda(vet_cuda *ctx, float *dinp, const float *dout, float p, uint64_t seed,
                          int64_t row0, int N, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || C <= 0) return 0;
    dropout_backward(dinp, dout, p, seed, row0, N, C);
    return 0;
}

// --- cross-entropy ---------------------------------------------------------------------------
int crossentropy_softmax_backward_inplace_cuda(vet_cuda *ctx, float *logits, float *loss,
                                               const int32_t *tgt, int n, int V, vet_err *err) {
    CHECK_CTX(ctx, err);
    crossentropy_softmax_backward_inplace(logits, loss, tgt, n, V);
    return 0;
}

// The real op's sequence (crossentropy.cu), chunk by chunk.
int lmhead_crossentropy_cuda(vet_cuda *ctx, float *loss, float *dx, float *dW, const float *x,
                             const float *W, const int32_t *tgt, int n, int C, int V,
                             float grad_scale, float *chunk, int chunk_rows, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (chunk_rows <= 0)
        return vet_errf(err, "%s:%d: lm_head chunk of %d rows", __FILE__, __LINE__, chunk_rows);
    for (int c0 = 0; c0 < n; c0 += chunk_rows) {
        int m = n - c0 < chunk_rows ? n - c0 : chunk_rows;
        const float *xc = x + (size_t)c0 * C;
        vet_sgemm(0, 1, m, V, C, 1.0f, xc, C, W, C, 0.0f, chunk, V);
        crossentropy_softmax_backward_inplace(chunk, loss + c0, tgt + c0, m, V);
        if (dx) vet_sgemm(0, 0, m, C, V, grad_scale, chunk, V, W, C, 0.0f, dx + (size_t)c0 * C, C);
        if (dW) vet_sgemm(1, 0, V, C, m, grad_scale, chunk, V, xc, C, 1.0f, dW, C);
    }
    return 0;
}

// --- AdamW -----------------------------------------------------------------------------------
int adamw_update_cuda(vet_cuda *ctx, float *p, const float *g, float gscale, float *m, float *v,
                      size_t n, float lr, float beta1, float beta2, float eps, float wd, int step,
                      vet_err *err) {
    CHECK_CTX(ctx, err);
    adamw_update(p, g, gscale, m, v, n, lr, beta1, beta2, eps, wd, step);
    return 0;
}

// --- the gradients' norm and finiteness (gradstats.cu) -----------------------------------------
// The CPU's own reductions on the buffer (device memory is host memory here), so the stand-in's
// norm is vet_train_grad_norm's bits and the device path trains exactly as the CPU path does.
size_t grad_stats_scratch_bytes(void) { return 1024 * 16; }  // as gradstats.cu: 1024 partials

int grad_stats_cuda(vet_cuda *ctx, vet_cuda_grad_stats *out, const float *g, size_t n,
                    float unscale, void *scratch, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (!out || !scratch || (n && !g))
        return vet_errf(err, "%s:%d: grad_stats: NULL device buffer", __FILE__, __LINE__);
    memset(scratch, 0, grad_stats_scratch_bytes());  // touched, so a short scratch shows under ASan
    size_t bad;
    out->norm = vet_train_grad_norm(g, n, unscale);
    out->first_bad = vet_train_find_nonfinite(g, n, &bad) ? bad : n;
    return 0;
}

// --- decoding with a KV cache (decode.cu) ------------------------------------------------------
// The cache's elements: fp32 (fmt 0), or bf16 / fp16 bit patterns rounded and widened with
// lib/base/half.h, what decode.cu's ld / st do on the device.
static float kv_ld(const void *c, size_t i, int fmt) {
    if (fmt == VET_CUDA_KV_BF16) return vet_bf16_to_f32(((const uint16_t *)c)[i]);
    if (fmt == VET_CUDA_KV_F16) return vet_f16_to_f32(((const uint16_t *)c)[i]);
    return ((const float *)c)[i];
}
static void kv_st(void *c, size_t i, float x, int fmt) {
    if (fmt == VET_CUDA_KV_BF16) ((uint16_t *)c)[i] = vet_f32_to_bf16(x);
    else if (fmt == VET_CUDA_KV_F16) ((uint16_t *)c)[i] = vet_f32_to_f16(x);
    else ((float *)c)[i] = x;
}

static int kv_write(vet_cuda *ctx, void *cache, const float *rows, const int32_t *slots, const int32_t *pos, int n,
                    int max_len, int KV, int fmt, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n <= 0 || KV <= 0) return 0;
    if (max_len <= 0) return vet_errf(err, "%s:%d: kv cache of %d positions", __FILE__, __LINE__, max_len);
    for (int i = 0; i < n; i++) {
        if (pos[i] < 0 || pos[i] >= max_len)  // the real op does not check: a wrong caller shows here
            return vet_errf(err, "%s:%d: kv_cache_write row %d at position %d of a cache of %d", __FILE__,
                            __LINE__, i, pos[i], max_len);
        size_t at = ((size_t)slots[i] * max_len + pos[i]) * KV;
        for (int c = 0; c < KV; c++) kv_st(cache, at + c, rows[(size_t)i * KV + c], fmt);
    }
    return 0;
}

int kv_cache_write_cuda(vet_cuda *ctx, float *cache, const float *rows, const int32_t *slots,
                        const int32_t *pos, int n, int max_len, int KV, vet_err *err) {
    return kv_write(ctx, cache, rows, slots, pos, n, max_len, KV, 0, err);
}

int kv_cache_write16_cuda(vet_cuda *ctx, uint16_t *cache, const float *rows, const int32_t *slots,
                          const int32_t *pos, int n, int max_len, int KV, int fmt, vet_err *err) {
    if (fmt != VET_CUDA_KV_BF16 && fmt != VET_CUDA_KV_F16)
        return vet_errf(err, "%s:%d: kv cache format %d (not bf16 or fp16)", __FILE__, __LINE__, fmt);
    return kv_write(ctx, cache, rows, slots, pos, n, max_len, KV, fmt, err);
}

// lib/generate/decoder.c's attend_step: scores, their max, exp and sum, then the weighted values.
static int attn_decode(vet_cuda *ctx, float *out, const float *q, const void *kcache, const void *vcache,
                       const int32_t *slots, const int32_t *pos, int n, int max_len, int H, int KVH, int hd, int fmt,
                       vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n <= 0 || H <= 0) return 0;
    if (hd <= 0 || hd > 128)
        return vet_errf(err, "%s:%d: attention_decode head_dim %d (needs <= 128)", __FILE__, __LINE__, hd);
    if (KVH <= 0 || H % KVH)
        return vet_errf(err, "%s:%d: attention heads %d not a multiple of kv heads %d", __FILE__, __LINE__, H, KVH);
    const float scale = 1.0f / sqrtf((float)hd);
    const int rep = H / KVH;
    const size_t KV = (size_t)KVH * hd;
    float *score = malloc((size_t)max_len * sizeof(float));
    if (!score) return vet_errf(err, "%s:%d: out of memory", __FILE__, __LINE__);
    for (int i = 0; i < n; i++) {
        const int T = pos[i] + 1;
        if (T < 1 || T > max_len) {
            free(score);
            return vet_errf(err, "%s:%d: attention_decode row %d at position %d of a cache of %d", __FILE__,
                            __LINE__, i, pos[i], max_len);
        }
        const size_t base = (size_t)slots[i] * max_len * KV;  // the slot's first element
        for (int h = 0; h < H; h++) {
            const size_t g = (size_t)(h / rep) * hd;
            const float *qv = q + ((size_t)i * H + h) * hd;
            float *o = out + ((size_t)i * H + h) * hd;
            float mx = -INFINITY;
            for (int j = 0; j < T; j++) {
                float s = 0.0f;
                for (int d = 0; d < hd; d++) s += qv[d] * kv_ld(kcache, base + j * KV + g + d, fmt);
                score[j] = s * scale;
                mx = score[j] > mx ? score[j] : mx;
            }
            float sum = 0.0f;
            for (int j = 0; j < T; j++) sum += (score[j] = expf(score[j] - mx));
            memset(o, 0, (size_t)hd * sizeof(float));
            for (int j = 0; j < T; j++)
                for (int d = 0; d < hd; d++) o[d] += score[j] * kv_ld(vcache, base + j * KV + g + d, fmt);
            const float inv = 1.0f / sum;
            for (int d = 0; d < hd; d++) o[d] *= inv;
        }
    }
    free(score);
    return 0;
}

int attention_decode_cuda(vet_cuda *ctx, float *out, const float *q, const float *kcache,
                          const float *vcache, const int32_t *slots, const int32_t *pos, int n,
                          int max_len, int H, int KVH, int hd, vet_err *err) {
    return attn_decode(ctx, out, q, kcache, vcache, slots, pos, n, max_len, H, KVH, hd, 0, err);
}

int attention_decode16_cuda(vet_cuda *ctx, float *out, const float *q, const uint16_t *kcache,
                            const uint16_t *vcache, const int32_t *slots, const int32_t *pos, int n,
                            int max_len, int H, int KVH, int hd, int fmt, vet_err *err) {
    if (fmt != VET_CUDA_KV_BF16 && fmt != VET_CUDA_KV_F16)
        return vet_errf(err, "%s:%d: kv cache format %d (not bf16 or fp16)", __FILE__, __LINE__, fmt);
    return attn_decode(ctx, out, q, kcache, vcache, slots, pos, n, max_len, H, KVH, hd, fmt, err);
}

// decoder.c's argmax (strict >: the lowest id wins a tie), with decode.cu's rule that a number
// beats a NaN.
int argmax_rows_cuda(vet_cuda *ctx, int32_t *out, const float *x, int n, int V, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n <= 0) return 0;
    if (V <= 0) return vet_errf(err, "%s:%d: argmax of rows of %d values", __FILE__, __LINE__, V);
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * V;
        int b = 0;
        for (int v = 1; v < V; v++)
            if (r[v] > r[b] || (r[b] != r[b] && r[v] == r[v])) b = v;
        out[i] = b;
    }
    return 0;
}

// The same over each row's allowed ids (ascending): the first of the best, a number over a NaN.
int argmax_allowed_rows_cuda(vet_cuda *ctx, int32_t *out, const float *x, int n, int V, const int32_t *ids,
                             const int32_t *off, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n <= 0) return 0;
    if (V <= 0) return vet_errf(err, "%s:%d: argmax of rows of %d values", __FILE__, __LINE__, V);
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * V;
        if (off[i + 1] <= off[i]) return vet_errf(err, "%s:%d: row %d has no allowed id", __FILE__, __LINE__, i);
        int b = ids[off[i]];
        for (int k = off[i] + 1; k < off[i + 1]; k++) {
            int v = ids[k];
            if (r[v] > r[b] || (r[b] != r[b] && r[v] == r[v])) b = v;
        }
        out[i] = b;
    }
    return 0;
}

// --- quantized base weights --------------------------------------------------------------------
// lib/model/quant.c's dequantization (what kernels/quant.cu must equal bit for bit, checked by
// tests/gpu/op_parity.c on a GPU), then the stand-in GEMMs above: the same composition as
// the real ops.
static int check_qweight(const vet_cuda_qweight *w, int OC, int C, vet_err *err) {
    if (!w || !w->q || !w->scale)
        return vet_errf(err, "%s:%d: quantized weight without its data", __FILE__, __LINE__);
    if (w->kind != VET_CUDA_Q_INT8 && w->kind != VET_CUDA_Q_NF4)
        return vet_errf(err, "%s:%d: unknown quantized weight kind %d", __FILE__, __LINE__, w->kind);
    if (OC < 0 || C < 0) return vet_errf(err, "%s:%d: weight of %d x %d", __FILE__, __LINE__, OC, C);
    return 0;
}

int dequant_cuda(vet_cuda *ctx, float *out, const vet_cuda_qweight *w, int OC, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_qweight(w, OC, C, err) < 0) return -1;
    if (w->kind == VET_CUDA_Q_INT8) vet_dequant_int8(out, w->q, w->scale, (size_t)OC, (size_t)C);
    else vet_dequant_nf4_dq(out, w->q, w->scale, (size_t)OC * C);
    return 0;
}

int dequant_bf16_cuda(vet_cuda *ctx, uint16_t *out, const vet_cuda_qweight *w, int OC, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_qweight(w, OC, C, err) < 0) return -1;
    size_t n = (size_t)OC * C;
    float *tmp = malloc((n ? n : 1) * sizeof(float));
    if (!tmp) return vet_errf(err, "%s:%d: out of memory", __FILE__, __LINE__);
    int rc = dequant_cuda(ctx, tmp, w, OC, C, err);
    for (size_t i = 0; i < n && rc == 0; i++) out[i] = vet_f32_to_bf16(tmp[i]);
    free(tmp);
    return rc;
}

int matmul_forward_q_cuda(vet_cuda *ctx, float *out, const float *inp, const uint16_t *inp16,
                          const vet_cuda_qweight *w, const float *bias, int N, int C, int OC, void *scratch,
                          vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || OC <= 0) return 0;
    if (inp16) {
        if (dequant_bf16_cuda(ctx, scratch, w, OC, C, err) < 0) return -1;
        return matmul_forward_bf16_cuda(ctx, out, inp16, scratch, bias, N, C, OC, err);
    }
    if (dequant_cuda(ctx, scratch, w, OC, C, err) < 0) return -1;
    return matmul_forward_cuda(ctx, out, inp, scratch, bias, N, C, OC, err);
}

// The tensor-core decode kernel for up to 64 rows: matmul_forward_q's 16-bit path (the same
// dequantized and rounded weights; the device differs in the order of its sums only).
int matmul_rows_q_mma_cuda(vet_cuda *ctx, float *out, const uint16_t *inp16, const vet_cuda_qweight *w,
                           const float *bias, int N, int C, int OC, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_qweight(w, OC, C, err) < 0) return -1;
    if (N == 0 || OC == 0) return 0;
    if (!matmul_rows_q_mma_fits(w, inp16, N, C))  // what the kernel refuses, refused here too
        return vet_errf(err, "%s:%d: matmul_rows_q_mma takes 1 to %d bf16 rows of a multiple of %d columns on "
                        "aligned buffers, not %d x %d (use matmul_forward_q)", __FILE__, __LINE__, VET_QMMA_ROWS,
                        VET_QROWS_GROUP, N, C);
    uint16_t *scratch = malloc((size_t)OC * C * sizeof *scratch);
    if (!scratch) return vet_errf(err, "%s:%d: out of memory", __FILE__, __LINE__);
    int rc = matmul_forward_q_cuda(ctx, out, NULL, inp16, w, bias, N, C, OC, scratch, err);
    free(scratch);
    return rc;
}

// The decode step's kernel: its arithmetic is lib/model/quant_rows.c's, which it equals bit for bit.
int matmul_rows_q_cuda(vet_cuda *ctx, float *out, const float *inp, const uint16_t *inp16,
                       const vet_cuda_qweight *w, const float *bias, int N, int C, int OC, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_qweight(w, OC, C, err) < 0) return -1;
    if (N == 0 || OC == 0) return 0;
    if (!matmul_rows_q_fits(w, inp, inp16, N, C))  // what the kernel refuses, refused here too
        return vet_errf(err, "%s:%d: matmul_rows_q takes 1 to %d rows of a multiple of %d columns on aligned "
                        "buffers, not %d x %d (use matmul_forward_q)", __FILE__, __LINE__, VET_QROWS_MAX,
                        VET_QROWS_GROUP, N, C);
    float *x = (float *)inp;
    if (inp16) {  // the kernel reads the bf16 inputs widened
        size_t n = (size_t)N * C;
        if (!(x = malloc((n ? n : 1) * sizeof(float)))) return vet_errf(err, "%s:%d: out of memory", __FILE__, __LINE__);
        for (size_t i = 0; i < n; i++) x[i] = vet_bf16_to_f32(inp16[i]);
    }
    vet_quant_rows_forward(out, x, (vet_quant_kind)w->kind, w->q, w->scale, bias, N, C, OC, inp16 != NULL);
    if (inp16) free(x);
    return 0;
}

int matmul_backward_q_cuda(vet_cuda *ctx, float *dinp, const float *dout, const uint16_t *dout16,
                           const vet_cuda_qweight *w, int N, int C, int OC, void *scratch, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (N <= 0 || !dinp) return 0;
    if (dout16) {
        if (dequant_bf16_cuda(ctx, scratch, w, OC, C, err) < 0) return -1;
        return matmul_backward_bf16_cuda(ctx, dinp, NULL, dout16, NULL, scratch, N, C, OC, err);
    }
    if (dequant_cuda(ctx, scratch, w, OC, C, err) < 0) return -1;
    return matmul_backward_cuda(ctx, dinp, NULL, NULL, dout, NULL, scratch, N, C, OC, err);
}

// --- fp16 (kernels/fp16.cu): lib/base/half.h's rounding, the GEMMs on the widened values -----------
int f32_to_f16_cuda(vet_cuda *ctx, uint16_t *out, const float *inp, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    for (size_t i = 0; i < n; i++) out[i] = vet_f32_to_f16(inp[i]);
    return 0;
}

int f16_to_f32_cuda(vet_cuda *ctx, float *out, const uint16_t *inp, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    for (size_t i = 0; i < n; i++) out[i] = vet_f16_to_f32(inp[i]);
    return 0;
}

static float *widen16(const uint16_t *x, size_t n) {
    if (!x) return NULL;
    float *y = malloc((n ? n : 1) * sizeof(float));
    if (!y) abort();
    for (size_t i = 0; i < n; i++) y[i] = vet_f16_to_f32(x[i]);
    return y;
}

int embedding_forward_f16_cuda(vet_cuda *ctx, float *out, const int32_t *tokens,
                               const uint16_t *embed, int N, int C, vet_err *err) {
    CHECK_CTX(ctx, err);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            out[(size_t)n * C + c] = vet_f16_to_f32(embed[(size_t)tokens[n] * C + c]);
    return 0;
}

int vet_cuda_gemm_f16(vet_cuda *ctx, int transA, int transB, int M, int N, int K, float alpha,
                      const uint16_t *A, int lda, const uint16_t *B, int ldb, float beta,
                      float *C, int ldc, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (M <= 0 || N <= 0) return 0;
    size_t na = (size_t)(transA ? K : M) * lda, nb = (size_t)(transB ? N : K) * ldb;
    float *a = widen16(A, na), *b = widen16(B, nb);
    vet_sgemm(transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, C, ldc);
    free(a), free(b);
    return 0;
}

int matmul_forward_f16_cuda(vet_cuda *ctx, float *out, const uint16_t *inp,
                            const uint16_t *weight, const float *bias, int N, int C, int OC,
                            vet_err *err) {
    CHECK_CTX(ctx, err);
    float *x = widen16(inp, (size_t)N * C), *w = widen16(weight, (size_t)OC * C);
    matmul_forward(out, x, w, bias, N, C, OC);
    free(x), free(w);
    return 0;
}

int matmul_backward_f16_cuda(vet_cuda *ctx, float *dinp, float *dweight, const uint16_t *dout,
                             const uint16_t *inp, const uint16_t *weight, int N, int C, int OC,
                             vet_err *err) {
    CHECK_CTX(ctx, err);
    float *d = widen16(dout, (size_t)N * OC), *w = widen16(weight, (size_t)OC * C);
    float *x = dweight ? widen16(inp, (size_t)N * C) : NULL;
    matmul_backward(dinp, dweight, NULL, d, x, w, N, C, OC);
    free(d), free(w), free(x);
    return 0;
}

// The rank-order sum of kernels/rank_sum.cu, as lib/train/comm_mpi.c adds: copy 0, then + copy 1, ...
int sum_in_rank_order_cuda(vet_cuda *ctx, float *out, const float *copies, int n_copies, size_t len,
                           vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n_copies < 1) return vet_errf(err, "%s:%d: sum of %d copies", __FILE__, __LINE__, n_copies);
    for (size_t i = 0; i < len; i++) {
        float s = copies[i];
        for (int j = 1; j < n_copies; j++) s += copies[(size_t)j * len + i];
        out[i] = s;
    }
    return 0;
}

// The 16-bit-output GEMM: the fp32-output one into a temporary, then rounded into C.
int vet_cuda_gemm_half_out(vet_cuda *ctx, int fmt, int transA, int transB, int M, int N, int K, float alpha,
                           const uint16_t *A, int lda, const uint16_t *B, int ldb, uint16_t *C, int ldc,
                           vet_err *err) {
    CHECK_CTX(ctx, err);
    if (vet_cuda_check_fmt16(fmt, "vet_cuda_gemm_half_out", err) < 0) return -1;
    if (M <= 0 || N <= 0) return 0;
    float *t = malloc((size_t)M * N * sizeof *t);
    if (!t) return vet_err_kindf(err, VET_E_NOMEM, "%s:%d: stand-in GEMM: out of memory", __FILE__, __LINE__);
    int rc = fmt == VET_CUDA_F16 ? vet_cuda_gemm_f16(ctx, transA, transB, M, N, K, alpha, A, lda, B, ldb, 0.0f, t, N, err)
                                 : vet_cuda_gemm_bf16(ctx, transA, transB, M, N, K, alpha, A, lda, B, ldb, 0.0f, t, N, err);
    for (int i = 0; rc == 0 && i < M; i++) round16_rows(C + (size_t)i * ldc, t + (size_t)i * N, (size_t)N, fmt);
    free(t);
    return rc;
}

// The 16-bit linear layer with a bias: the fp32 product, plus the bias rounded to fmt and
// widened (cuBLAS's beta-1 sum onto the bias rows), rounded into out16.
int matmul_forward_half_out_cuda(vet_cuda *ctx, int fmt, uint16_t *out16, const uint16_t *inp16,
                                 const uint16_t *weight, const float *bias, int N, int C, int OC, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (vet_cuda_check_fmt16(fmt, "matmul_forward_half_out", err) < 0) return -1;
    if (!bias) return vet_cuda_gemm_half_out(ctx, fmt, 0, 1, N, OC, C, 1.0f, inp16, C, weight, C, out16, OC, err);
    if ((size_t)N * OC == 0) return 0;
    float *t = malloc((size_t)N * OC * sizeof *t);
    if (!t) return vet_err_kindf(err, VET_E_NOMEM, "%s:%d: stand-in GEMM: out of memory", __FILE__, __LINE__);
    int rc = fmt == VET_CUDA_F16 ? vet_cuda_gemm_f16(ctx, 0, 1, N, OC, C, 1.0f, inp16, C, weight, C, 0.0f, t, OC, err)
                                 : vet_cuda_gemm_bf16(ctx, 0, 1, N, OC, C, 1.0f, inp16, C, weight, C, 0.0f, t, OC, err);
    for (int n = 0; rc == 0 && n < N; n++)
        for (int o = 0; o < OC; o++) {
            float b = fmt == VET_CUDA_F16 ? vet_f16_to_f32(vet_f32_to_f16(bias[o])) : vet_bf16_to_f32(vet_f32_to_bf16(bias[o]));
            t[(size_t)n * OC + o] += b;
        }
    if (rc == 0) round16_rows(out16, t, (size_t)N * OC, fmt);
    free(t);
    return rc;
}

// SwiGLU on gate and up stored in 16 bits: the fp32 entries on the widened values.
int swiglu_forward_in16_cuda(vet_cuda *ctx, float *out, uint16_t *out16, int fmt, const uint16_t *gate,
                             const uint16_t *up, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    float *g = widen_copy(gate, fmt, n, "swiglu_forward_in16", err);
    float *u = g ? widen_copy(up, fmt, n, "swiglu_forward_in16", err) : NULL;
    int rc = u ? swiglu_forward_half_cuda(ctx, out, out16, fmt, g, u, n, err) : -1;
    free(g), free(u);
    return rc;
}

int swiglu_backward_in16_cuda(vet_cuda *ctx, uint16_t *dgate, uint16_t *dup, int fmt, const float *dout,
                              const uint16_t *gate, const uint16_t *up, size_t n, vet_err *err) {
    CHECK_CTX(ctx, err);
    float *g = widen_copy(gate, fmt, n, "swiglu_backward_in16", err);
    float *u = g ? widen_copy(up, fmt, n, "swiglu_backward_in16", err) : NULL;
    int rc = u ? swiglu_backward_half_cuda(ctx, dgate, dup, fmt, dout, g, u, n, err) : -1;
    free(g), free(u);
    return rc;
}
