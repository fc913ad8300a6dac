// ops_attention.c — causal self-attention over packed rows, GQA, per-sample masking.
//
// Memory choice: nothing of size (T,T) is ever stored. Forward keeps only each query's
// log-sum-exp (B,T,H); backward recomputes the probabilities p_ij = exp(q_i·k_j*scale - lse_i)
// from q, k and lse (as FlashAttention does). Work per row is the sum over its samples of
// len^2, so short samples packed in a row cost what they would cost alone.
//
// Samples are contiguous in a row (vet_batch guarantees it), so the keys a query i sees are
// the range [start(i), i] where start(i) is the first position of its sample. Queries are
// taken in blocks of QB inside a sample; a block's scores against the keys [start, last
// query] are one small GEMM (single-threaded cblas inside the OpenMP loop), the causal
// triangle is masked afterwards. Scratch is (QB, T) per thread.
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/ops.h"
#include "model/ops_math.h"

#define QB 64  // queries per block

static inline float dotf(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// The next sample of row sg[0..T) starting at or after *i: [s, e), or 0 when none is left.
static int next_sample(const int32_t *sg, int T, int *i, int *s, int *e) {
    while (*i < T && sg[*i] < 0) (*i)++;
    if (*i >= T) return 0;
    *s = *i;
    while (*i < T && sg[*i] == sg[*s]) (*i)++;
    *e = *i;
    return 1;
}

// Softmax of one row of scores in place: row[0..nv) becomes the probabilities, row[nv..nk) 0
// (the causal mask); returns the row's log-sum-exp. The exponentials are summed in 8 lanes
// (lane k takes j = k mod 8) combined in a fixed order, the same with AVX2 (ops_simd.c) as
// without, so both paths give the same bits.
static float softmax_row(float *row, int nv, int nk) {
    float mx, sum;
    if (vet_simd_avx2()) {
        mx = vet_avx2_max(row, nv);
        sum = vet_avx2_exp_sum(row, nv, mx);
    } else {
        mx = -INFINITY;
        for (int j = 0; j < nv; j++) mx = row[j] > mx ? row[j] : mx;
        float a[8] = {0};
        for (int j = 0; j < nv; j++) {
            row[j] = vet_expf(row[j] - mx);
            a[j & 7] += row[j];
        }
        sum = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < nv; j++) row[j] *= inv;
    for (int j = nv; j < nk; j++) row[j] = 0.0f;
    return mx + logf(sum);
}

// Backward's row: p = exp(score - lse) (the forward's probabilities again), dp becomes
// dS = p * (dp - D) * scale; both 0 past nv.
static void dsoftmax_row(float *p, float *dp, int nv, int nk, float L, float D, float scale) {
    if (vet_simd_avx2()) {
        vet_avx2_dsoftmax_row(p, dp, nv, L, D, scale);
    } else {
        for (int j = 0; j < nv; j++) {
            p[j] = vet_expf(p[j] - L);
            dp[j] = p[j] * (dp[j] - D) * scale;
        }
    }
    for (int j = nv; j < nk; j++) p[j] = dp[j] = 0.0f;
}

void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                       const int32_t *seg, int B, int T, int H, int KVH, int hd) {
    const float scale = 1.0f / sqrtf((float)hd);
    const int rep = H / KVH;  // query heads per key/value head
    const int ldq = H * hd, ldk = KVH * hd;
    vet_blas_single_threaded();
#pragma omp parallel if ((size_t)B * T * H * hd >= VET_PAR_MIN)
    {
        float *S = malloc((size_t)QB * T * sizeof(float));  // a block's scores, then probabilities
#pragma omp for collapse(2) schedule(dynamic)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                const int g = h / rep;
                const int32_t *sg = seg + (size_t)b * T;
                // padding queries: zero output
                for (int i = 0; i < T; i++)
                    if (sg[i] < 0) {
                        size_t qi = ((size_t)b * T + i) * H + h;
                        memset(out + qi * hd, 0, (size_t)hd * sizeof(float));
                        lse[qi] = 0.0f;
                    }
                int cur = 0, s, e;
                while (next_sample(sg, T, &cur, &s, &e)) {
                    const float *K = k + ((size_t)b * T + s) * ldk + (size_t)g * hd;
                    const float *Vv = v + ((size_t)b * T + s) * ldk + (size_t)g * hd;
                    for (int i0 = s; i0 < e; i0 += QB) {
                        int n = e - i0 < QB ? e - i0 : QB, nk = i0 + n - s;
                        const float *Q = q + ((size_t)b * T + i0) * ldq + (size_t)h * hd;
                        float *O = out + ((size_t)b * T + i0) * ldq + (size_t)h * hd;
                        // S (n,nk) = Q (n,hd) · K^T (hd,nk) * scale
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, hd, scale, Q, ldq,
                                    K, ldk, 0.0f, S, nk);
                        for (int r = 0; r < n; r++)  // keys s..i0+r, the rest masked
                            lse[((size_t)b * T + i0 + r) * H + h] = softmax_row(S + (size_t)r * nk, i0 + r - s + 1, nk);
                        // O (n,hd) = P (n,nk) · V (nk,hd)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, nk, 1.0f, S, nk,
                                    Vv, ldk, 0.0f, O, ldq);
                    }
                }
            }
        free(S);
    }
}

// With P = softmax(S), O = P V, and dO given:
//   dV += P^T dO;   dP = dO V^T;   dS = P * (dP - rowsum(dO * O));
//   dQ += scale * dS K;   dK += scale * dS^T Q
// One work item is (row b, kv head g): it owns dK and dV of that head in that row, so no two
// threads ever add into the same float (deterministic, no atomics).
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                        const float *k, const float *v, const float *out, const float *lse,
                        const int32_t *seg, int B, int T, int H, int KVH, int hd) {
    const float scale = 1.0f / sqrtf((float)hd);
    const int rep = H / KVH;
    const int ldq = H * hd, ldk = KVH * hd;
    vet_blas_single_threaded();
#pragma omp parallel if ((size_t)B * T * H * hd >= VET_PAR_MIN)
    {
        float *P = malloc((size_t)QB * T * sizeof(float));
        float *dP = malloc((size_t)QB * T * sizeof(float));
#pragma omp for collapse(2) schedule(dynamic)
        for (int b = 0; b < B; b++)
            for (int g = 0; g < KVH; g++) {
                const int32_t *sg = seg + (size_t)b * T;
                int cur = 0, s, e;
                while (next_sample(sg, T, &cur, &s, &e)) {
                    size_t koff = ((size_t)b * T + s) * ldk + (size_t)g * hd;
                    const float *K = k + koff, *Vv = v + koff;
                    float *dK = dk + koff, *dV = dv + koff;
                    for (int h = g * rep; h < (g + 1) * rep; h++)
                        for (int i0 = s; i0 < e; i0 += QB) {
                            int n = e - i0 < QB ? e - i0 : QB, nk = i0 + n - s;
                            size_t qoff = ((size_t)b * T + i0) * ldq + (size_t)h * hd;
                            const float *Q = q + qoff, *dO = dout + qoff, *O = out + qoff;
                            float *dQ = dq + qoff;
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, hd, scale, Q,
                                        ldq, K, ldk, 0.0f, P, nk);
                            // dP (n,nk) = dO (n,hd) · V^T
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nk, hd, 1.0f, dO,
                                        ldq, Vv, ldk, 0.0f, dP, nk);
                            for (int r = 0; r < n; r++) {
                                float *p = P + (size_t)r * nk, *dp = dP + (size_t)r * nk;
                                int nv = i0 + r - s + 1;
                                float L = lse[((size_t)b * T + i0 + r) * H + h];
                                float D = dotf(dO + (size_t)r * ldq, O + (size_t)r * ldq, hd);
                                dsoftmax_row(p, dp, nv, nk, L, D, scale);  // dS, scaled for dQ, dK
                            }
                            // dV (nk,hd) += P^T · dO;  dQ (n,hd) += dS · K;  dK (nk,hd) += dS^T · Q
                            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, n, 1.0f, P, nk,
                                        dO, ldq, 1.0f, dV, ldk);
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, nk, 1.0f, dP,
                                        nk, K, ldk, 1.0f, dQ, ldq);
                            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, n, 1.0f, dP, nk,
                                        Q, ldq, 1.0f, dK, ldk);
                        }
                }
            }
        free(P);
        free(dP);
    }
}

// Inference: n new queries at positions p0..p0+n-1 of one sequence against its cache of
// keys/values at positions 0..p0+n-1. q, out (n,H,hd); kc, vc (>= p0+n, KVH, hd).
void attention_cached_forward(float *out, const float *q, const float *kc, const float *vc,
                              int n, int p0, int H, int KVH, int hd) {
    const float scale = 1.0f / sqrtf((float)hd);
    const int rep = H / KVH, ldq = H * hd, ldk = KVH * hd;
    vet_blas_single_threaded();
#pragma omp parallel if ((size_t)(p0 + n) * H * hd >= VET_PAR_MIN)
    {
        float *S = malloc((size_t)QB * (p0 + n) * sizeof(float));
#pragma omp for schedule(dynamic)
        for (int h = 0; h < H; h++) {
            const int g = h / rep;
            for (int i0 = 0; i0 < n; i0 += QB) {
                int nb = n - i0 < QB ? n - i0 : QB, nk = p0 + i0 + nb;
                const float *Q = q + (size_t)i0 * ldq + (size_t)h * hd;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, nk, hd, scale, Q, ldq,
                            kc + (size_t)g * hd, ldk, 0.0f, S, nk);
                for (int r = 0; r < nb; r++) softmax_row(S + (size_t)r * nk, p0 + i0 + r + 1, nk);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, hd, nk, 1.0f, S, nk,
                            vc + (size_t)g * hd, ldk, 0.0f, out + (size_t)i0 * ldq + (size_t)h * hd, ldq);
            }
        }
        free(S);
    }
}
