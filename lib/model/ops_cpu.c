// ops_cpu.c — the element-wise and GEMM ops of ops.h on the CPU (rope and attention have
// their own files). Gradients accumulate (+=); NULL gradients are skipped.
#include "model/ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "model/ops_math.h"
#include "base/philox.h"

// Reductions over rows (a weight's gradient) are split by column block, never by row:
// each output column is summed by one thread in row order, so the result does not depend
// on how many threads ran.
#define COL_BLOCK 64

// --- embedding -------------------------------------------------------------------------------
void embedding_forward(float *out, const int32_t *tokens, const float *embed, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= VET_PAR_MIN)
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * C, embed + (size_t)tokens[n] * C, (size_t)C * sizeof(float));
}

void embedding_backward(float *dembed, const float *dout, const int32_t *tokens, int N, int C) {
    // Two positions with the same token add into one row: split by columns, not positions.
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= VET_PAR_MIN)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        for (int n = 0; n < N; n++) {
            float *d = dembed + (size_t)tokens[n] * C;
            const float *g = dout + (size_t)n * C;
            for (int c = c0; c < c1; c++) d[c] += g[c];
        }
    }
}

// --- RMSNorm ---------------------------------------------------------------------------------
// The sum over c of (double)a[c] * b[c] (* e[c]) in 8 lanes (lane k takes c = k mod 8) combined
// as ((0+4)+(2+6))+((1+5)+(3+7)): the same order with AVX2 (ops_simd.c) and without.
static double dot_lanes(const float *a, const float *b, const float *e, int n) {
    double l[8] = {0};
    if (vet_simd_avx2()) {
        vet_avx2_dot_lanes(l, a, b, e, n);
    } else {
        for (int c = 0; c < n; c++) l[c & 7] += e ? (double)a[c] * b[c] * e[c] : (double)a[c] * b[c];
    }
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C,
                     float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= VET_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double ss = dot_lanes(x, x, NULL, C);
        float r = 1.0f / sqrtf((float)(ss / C) + eps);
        for (int c = 0; c < C; c++) y[c] = weight[c] * (x[c] * r);  // HF: w * (x * rstd)
        rstd[n] = r;
    }
}

void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, const float *rstd, int N, int C) {
    // y = w * x * r, r = (mean(x^2) + eps)^-1/2
    // dx = r * w*dy - r^3/C * x * sum(w*dy*x);  dw += sum_n dy * x * r
    if (dinp) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= VET_PAR_MIN)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float r = rstd[n];
            double dot = dot_lanes(weight, dy, x, C);
            float k = (float)(dot * r * r * r / C);
            for (int c = 0; c < C; c++) dx[c] += r * weight[c] * dy[c] - k * x[c];
        }
    }
    if (dweight) {
        int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= VET_PAR_MIN)
        for (int blk = 0; blk < nblk; blk++) {
            int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
            double acc[COL_BLOCK] = {0};
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
                float r = rstd[n];
                for (int c = c0; c < c1; c++) acc[c - c0] += (double)(dy[c] * x[c] * r);
            }
            for (int c = c0; c < c1; c++) dweight[c] += (float)acc[c - c0];
        }
    }
}

// --- GEMM --------------------------------------------------------------------------------------
// One thread pool only: OpenBLAS runs single-threaded (vet_set_threads) and the GEMM is split
// here over OpenMP threads by blocks of output rows (or columns when there are few rows).
// Two pools on the same cores (OpenMP's spinning workers and OpenBLAS's yielding ones) cost
// more than half the time on a 2-core machine. The split depends only on the thread count,
// so results are reproducible for a given count; another count may change OpenBLAS's
// blocking and with it the last bits of a sum.
void vet_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    vet_blas_single_threaded();
    int nt = omp_get_max_threads();
    double work = (double)M * N * K;
    if (nt > 1 && work < 2e5) nt = 1;  // too small to be worth waking threads
    CBLAS_TRANSPOSE ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans;
    if (nt == 1) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int split_rows = M >= N || M / 64 >= nt;  // (not 64 * nt: nt comes from the environment)
    int len = split_rows ? M : N;
    int chunk = (len + nt - 1) / nt;
    chunk = (chunk + 15) / 16 * 16;  // whole register blocks
    int nchunks = (len + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int c = 0; c < nchunks; c++) {
        int s = c * chunk, n = len - s < chunk ? len - s : chunk;
        if (split_rows) {  // rows s..s+n of C come from rows of op(A)
            const float *a = transA ? A + s : A + (size_t)s * lda;
            cblas_sgemm(CblasRowMajor, ta, tb, n, N, K, alpha, a, lda, B, ldb, beta,
                        C + (size_t)s * ldc, ldc);
        } else {  // columns s..s+n of C come from columns of op(B)
            const float *b = transB ? B + (size_t)s * ldb : B + s;
            cblas_sgemm(CblasRowMajor, ta, tb, M, n, K, alpha, A, lda, b, ldb, beta, C + s, ldc);
        }
    }
}

// --- linear layer ------------------------------------------------------------------------------
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                    int C, int OC) {
    float beta = 0.0f;
    if (bias) {
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= VET_PAR_MIN)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    // out (N,OC) = inp (N,C) · weight^T (C,OC)
    vet_sgemm(0, 1, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC) {
    if (dinp)  // (N,C) += dout (N,OC) · weight (OC,C)
        vet_sgemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (dweight)  // (OC,C) += dout^T (OC,N) · inp (N,C)
        vet_sgemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        int nblk = (OC + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= VET_PAR_MIN)
        for (int blk = 0; blk < nblk; blk++) {
            int o0 = blk * COL_BLOCK, o1 = o0 + COL_BLOCK < OC ? o0 + COL_BLOCK : OC;
            double acc[COL_BLOCK] = {0};
            for (int n = 0; n < N; n++)
                for (int o = o0; o < o1; o++) acc[o - o0] += dout[(size_t)n * OC + o];
            for (int o = o0; o < o1; o++) dbias[o] += (float)acc[o - o0];
        }
    }
}

// --- SwiGLU ------------------------------------------------------------------------------------
// The AVX2 path splits the n elements into blocks of whole vectors, one work item each.
#define EW_BLOCK 8192

void swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
    if (vet_simd_avx2()) {
        size_t nb = (n + EW_BLOCK - 1) / EW_BLOCK;
#pragma omp parallel for schedule(static) if (n >= VET_PAR_MIN)
        for (size_t b = 0; b < nb; b++) {
            size_t s = b * EW_BLOCK, len = n - s < EW_BLOCK ? n - s : EW_BLOCK;
            vet_avx2_swiglu_forward(out + s, gate + s, up + s, len);
        }
        return;
    }
#pragma omp parallel for simd schedule(static) if (n >= VET_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + vet_expf(-g)) * up[i];  // silu(g) * up
    }
}

static void swiglu_grads(float *dgate, float *dup, const float *dout, const float *gate,
                         const float *up, size_t n, int accumulate) {
    if (vet_simd_avx2()) {
        size_t nb = (n + EW_BLOCK - 1) / EW_BLOCK;
#pragma omp parallel for schedule(static) if (n >= VET_PAR_MIN)
        for (size_t b = 0; b < nb; b++) {
            size_t s = b * EW_BLOCK, len = n - s < EW_BLOCK ? n - s : EW_BLOCK;
            vet_avx2_swiglu_backward(dgate + s, dup + s, dout + s, gate + s, up + s, len, accumulate);
        }
        return;
    }
#pragma omp parallel for simd schedule(static) if (n >= VET_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], s = 1.0f / (1.0f + vet_expf(-g));
        float silu = g * s;
        float vu = dout[i] * silu;
        // d silu / dg = s + g * s * (1 - s)
        float vg = dout[i] * up[i] * (s * (1.0f + g * (1.0f - s)));
        dup[i] = accumulate ? dup[i] + vu : vu;
        dgate[i] = accumulate ? dgate[i] + vg : vg;
    }
}

void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, size_t n) {
    swiglu_grads(dgate, dup, dout, gate, up, n, 1);
}

void swiglu_backward_set(float *dgate, float *dup, const float *dout, const float *gate,
                         const float *up, size_t n) {
    swiglu_grads(dgate, dup, dout, gate, up, n, 0);
}

void add_inplace(float *x, const float *y, size_t n) {
#pragma omp parallel for schedule(static) if (n >= VET_PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

void scale_inplace(float *x, float s, size_t n) {
#pragma omp parallel for schedule(static) if (n >= VET_PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

// --- cross-entropy -----------------------------------------------------------------------------
void crossentropy_smoothed_softmax_backward_inplace(float *logits, float *loss, const int32_t *tgt,
                                                    int n, int V, float eps) {
    // With eps = 0 this is plain cross-entropy bit for bit (the loss is nll, and x - 0 == x).
    const float spread = eps / (float)V, keep = 1.0f - eps;
#pragma omp parallel for schedule(static) if ((size_t)n * V >= VET_PAR_MIN)
    for (int i = 0; i < n; i++) {
        float *z = logits + (size_t)i * V;
        if (tgt[i] < 0) {
            loss[i] = 0.0f;
            memset(z, 0, (size_t)V * sizeof(float));
            continue;
        }
        float mx = -INFINITY;
        for (int j = 0; j < V; j++) mx = z[j] > mx ? z[j] : mx;
        double sum = 0, centred = 0;  // sum of exp(z - max), sum of (z - max) (smoothing only)
        if (eps != 0.0f)
            for (int j = 0; j < V; j++) centred += (double)(z[j] - mx);
        for (int j = 0; j < V; j++) {
            z[j] = expf(z[j] - mx);
            sum += z[j];
        }
        double lse = log(sum);  // logsumexp(row) - max
        double nll = lse - log((double)z[tgt[i]]);
        double uniform = lse - centred / V;  // mean over v of -log p_v
        loss[i] = eps == 0.0f ? (float)nll : (float)((1.0 - eps) * nll + eps * uniform);
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < V; j++) z[j] = z[j] * inv - spread;
        z[tgt[i]] -= keep;
    }
}

void crossentropy_softmax_backward_inplace(float *logits, float *loss, const int32_t *tgt, int n,
                                           int V) {
    crossentropy_smoothed_softmax_backward_inplace(logits, loss, tgt, n, V, 0.0f);
}

// --- dropout -------------------------------------------------------------------------------------
// Element (n, c)'s keep bit is vet_dropout_keep4(seed, row0 + n, c / 4, thr) (base/philox.h): a
// pure function of its coordinates, the same for any thread count and any slice of rows, the
// same on the device (kernels/dropout.cu), and backward regenerates it instead of storing it.
// A row is done MASK_COLS columns at a time: their keep masks into a small buffer, then applied.
#define MASK_COLS 256  // a multiple of 64 (the AVX2 masks come 64 columns at a time)

static void dropout_row(float *y, const float *x, float keep_scale, uint32_t thr, uint64_t seed,
                        uint64_t row_key, int C, int accumulate, int simd) {
    int32_t mask[MASK_COLS];
    for (int c0 = 0; c0 < C; c0 += MASK_COLS) {
        int w = C - c0 < MASK_COLS ? C - c0 : MASK_COLS, nq = (w + 3) / 4;
        uint32_t q0 = (uint32_t)(c0 / 4);
        if (simd) {
            vet_avx2_dropout_keep(mask, seed, row_key, q0, nq, thr);
            vet_avx2_dropout_apply_row(y + c0, x + c0, mask, keep_scale, w, accumulate);
            continue;
        }
        for (int q = 0; q < nq; q++) {
            unsigned bits = vet_dropout_keep4(seed, row_key, q0 + (uint32_t)q, thr);
            for (int j = 0; j < 4; j++) mask[4 * q + j] = (int32_t)((bits >> j) & 1u);
        }
        for (int c = 0; c < w; c++) {
            float v = mask[c] ? x[c0 + c] * keep_scale : 0.0f;
            y[c0 + c] = accumulate ? y[c0 + c] + v : v;
        }
    }
}

static void dropout_apply(float *out, const float *inp, float p, uint64_t seed, int64_t row0, int N, int C,
                          int accumulate) {
    float keep_scale = 1.0f / (1.0f - p);
    uint32_t thr = vet_dropout_threshold(p);
    int simd = vet_simd_avx2();
#pragma omp parallel for schedule(static) if ((size_t)N * C >= VET_PAR_MIN)
    for (int n = 0; n < N; n++)
        dropout_row(out + (size_t)n * C, inp + (size_t)n * C, keep_scale, thr, seed, (uint64_t)(row0 + n), C,
                    accumulate, simd);
}

void dropout_forward(float *out, const float *inp, float p, uint64_t seed, int64_t row0, int N, int C) {
    if (p <= 0.0f) {
        memcpy(out, inp, (size_t)N * C * sizeof(float));
        return;
    }
    dropout_apply(out, inp, p, seed, row0, N, C, 0);
}

void dropout_backward(float *dinp, const float *dout, float p, uint64_t seed, int64_t row0, int N, int C) {
    if (p <= 0.0f) {
        add_inplace(dinp, dout, (size_t)N * C);
        return;
    }
    dropout_apply(dinp, dout, p, seed, row0, N, C, 1);
}

// --- AdamW ---------------------------------------------------------------------------------------
// The same sequence of fp32 operations as torch.optim.AdamW's single-tensor path:
//   p *= 1 - lr*wd;  m = lerp(m, g, 1-beta1);  v = v*beta2 + (1-beta2)*g*g;
//   p += -(lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps), with bc = 1 - beta^step in double.
void adamw_update(float *p, const float *g, float gscale, float *m, float *v, size_t n, float lr,
                  float beta1, float beta2, float eps, float wd, int step) {
    double bc1 = 1.0 - pow((double)beta1, step), bc2 = 1.0 - pow((double)beta2, step);
    float decay = (float)(1.0 - (double)lr * wd);
    float w1 = (float)(1.0 - (double)beta1), w2 = (float)(1.0 - (double)beta2);
    float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
#pragma omp parallel for schedule(static) if (n >= VET_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gscale, pi = p[i] * decay;
        // torch.lerp with weight < 0.5: m + w * (g - m)
        float mi = w1 < 0.5f ? m[i] + w1 * (gi - m[i]) : gi - (gi - m[i]) * (1.0f - w1);
        float vi = v[i] * beta2 + w2 * gi * gi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi + (-step_size) * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}
