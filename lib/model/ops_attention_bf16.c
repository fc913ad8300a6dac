// ops_attention_bf16.c — causal attention over packed rows, GQA, with the arithmetic of the
// tensor-core kernels (kernels/attention_tc.cu) on the CPU.
//
// Why it exists: the kernels round their operands to bf16 and multiply them on tensor cores, so
// they cannot equal attention_forward's fp32 bits. This file computes what they compute, in
// the order that matters, so that (1) the CPU stand-in of the CUDA backend runs the bf16
// training path with the kernels' numbers, and (2) the GPU parity test compares the kernels
// against these values with a tight tolerance (only fp32 summation order and the last bits of
// ex2.approx against exp2f differ), and against attention_forward's fp32 values with a bf16 one.
// The softmax is the default kernels' ex2 form (kernels/attention_mma_tile.cuh, "the softmax's
// arithmetic"); the WMMA and transposed-tile fallbacks keep expf(s scale - m), within the same
// tolerance of these values.
//
// What matters for the bits:
//   - q, k, v, dout are rounded to bf16 where the kernels load them into shared memory;
//   - a score is an exact sum of bf16 products (here in double, there in fp32 inside the MMA),
//     rounded to fp32, then times scale;
//   - forward: online softmax over key tiles of `tile` keys starting at the first key the query
//     block of `tile` queries sees (klo), the running max m over unscaled scores; p =
//     exp2f(s * scale log2 e - m * scale log2 e), each product rounded, is summed in fp32 in
//     two halves of the tile (the two lanes of a row) and rounded to bf16 before it multiplies
//     v; out = o * (1 / l), lse = fmaf(m, scale, logf(l));
//   - backward: D = rowsum(dout * out) in fp32 values; p = exp2f(fmaf(s, scale log2 e,
//     -lse log2 e));
//     ds = p (dp - D) scale; p and ds are rounded to bf16 before they multiply dout, q, k.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/half.h"
#include "model/ops.h"

#define TILE_MAX 64
#define LOG2E_F 1.44269504088896341f  // as the kernels' (attention_mma_tile.cuh)

static inline float rb(float x) { return vet_bf16_to_f32(vet_f32_to_bf16(x)); }

// start (T): the first position of each position's sample, -1 for padding.
static void sample_starts(int32_t *start, const int32_t *sg, int T) {
    int i = 0;
    while (i < T) {
        if (sg[i] < 0) {
            start[i++] = -1;
            continue;
        }
        int s = i;
        while (i < T && sg[i] == sg[s]) start[i++] = s;
    }
}

// A row of n values rounded to bf16.
static void round_row(float *dst, const float *src, int n) {
    for (int d = 0; d < n; d++) dst[d] = rb(src[d]);
}

static float dot_exact(const float *a, const float *b, int n) {
    double s = 0.0;
    for (int d = 0; d < n; d++) s += (double)a[d] * b[d];
    return (float)s;
}

void attention_forward_bf16(float *out, float *lse, const float *q, const float *k, const float *v,
                            const int32_t *seg, int B, int T, int H, int KVH, int hd, int tile) {
    const int TILE = tile > 0 && tile <= TILE_MAX ? tile : TILE_MAX, HALF = TILE / 2;
    const float scale = 1.0f / sqrtf((float)hd), scale2 = scale * LOG2E_F;
    const int rep = H / KVH;
    int32_t *st = malloc((size_t)T * sizeof *st);
    float *kr = malloc((size_t)T * KVH * hd * sizeof *kr), *vr = malloc((size_t)T * KVH * hd * sizeof *vr);
    float *qr = malloc((size_t)hd * sizeof *qr), *o = malloc((size_t)hd * sizeof *o);
    if (!st || !kr || !vr || !qr || !o) abort();  // a few KB per row: as the other ops, no error path
    for (int b = 0; b < B; b++) {
        sample_starts(st, seg + (size_t)b * T, T);
        round_row(kr, k + (size_t)b * T * KVH * hd, T * KVH * hd);
        round_row(vr, v + (size_t)b * T * KVH * hd, T * KVH * hd);
        for (int i0 = 0; i0 < T; i0 += TILE) {
            int klo = T, khi = 0;  // the block's key range, as the kernel's query_block_range
            for (int i = i0; i < i0 + TILE && i < T; i++)
                if (st[i] >= 0) klo = st[i] < klo ? st[i] : klo, khi = i + 1;
            if (khi == 0) klo = 0;
            for (int h = 0; h < H; h++) {
                const int g = h / rep;
                for (int i = i0; i < i0 + TILE && i < T; i++) {
                    size_t qo = ((size_t)b * T + i) * H + h;
                    if (st[i] < 0) {  // padding: zero output, lse 0
                        memset(out + qo * hd, 0, (size_t)hd * sizeof *out);
                        lse[qo] = 0.0f;
                        continue;
                    }
                    round_row(qr, q + qo * hd, hd);
                    memset(o, 0, (size_t)hd * sizeof *o);
                    float m = -INFINITY, l = 0.0f;
                    for (int kt = klo; kt < khi; kt += TILE) {
                        float s[TILE_MAX], pb[TILE_MAX], mt = -INFINITY;
                        for (int c = 0; c < TILE; c++) {
                            int j = kt + c;
                            int ok = j >= st[i] && j <= i;  // j <= i < T
                            s[c] = ok ? dot_exact(qr, kr + ((size_t)j * KVH + g) * hd, hd) : -INFINITY;
                            mt = s[c] > mt ? s[c] : mt;
                        }
                        float m_new = m > mt ? m : mt;
                        // the exponents' offset; 0 while nothing is seen (exp2f(-inf) = 0)
                        float base = m_new == -INFINITY ? 0.0f : m_new * scale2;
                        float mscaled = m * scale2, corr = exp2f(mscaled - base);  // m = -inf: 0
                        float sum[2] = {0.0f, 0.0f};
                        for (int c = 0; c < TILE; c++) {
                            float sscaled = s[c] * scale2, p = exp2f(sscaled - base);
                            sum[c / HALF] += p;
                            pb[c] = rb(p);
                        }
                        l = l * corr + (sum[0] + sum[1]);
                        m = m_new;
                        for (int d = 0; d < hd; d++) {
                            double a = (double)(o[d] * corr);
                            for (int c = 0; c < TILE; c++)
                                if (pb[c] != 0.0f) a += (double)pb[c] * vr[((size_t)(kt + c) * KVH + g) * hd + d];
                            o[d] = (float)a;
                        }
                    }
                    float inv = 1.0f / l;
                    for (int d = 0; d < hd; d++) out[qo * hd + d] = o[d] * inv;
                    lse[qo] = fmaf(m, scale, logf(l));
                }
            }
        }
    }
    free(st), free(kr), free(vr), free(qr), free(o);
}

void attention_backward_bf16(float *dq, float *dk, float *dv, const float *dout, const float *q,
                             const float *k, const float *v, const float *out, const float *lse,
                             const int32_t *seg, int B, int T, int H, int KVH, int hd) {
    const float scale = 1.0f / sqrtf((float)hd), scale2 = scale * LOG2E_F;
    const int rep = H / KVH;
    const size_t nq = (size_t)T * H * hd, nk = (size_t)T * KVH * hd;
    int32_t *st = malloc((size_t)T * sizeof *st);
    float *qr = malloc(nq * sizeof *qr), *dor = malloc(nq * sizeof *dor);
    float *kr = malloc(nk * sizeof *kr), *vr = malloc(nk * sizeof *vr);
    double *aq = malloc((size_t)hd * sizeof *aq), *ak = malloc(nk * sizeof *ak), *av = malloc(nk * sizeof *av);
    if (!st || !qr || !dor || !kr || !vr || !aq || !ak || !av) abort();
    for (int b = 0; b < B; b++) {
        const size_t bq = (size_t)b * nq, bk = (size_t)b * nk;
        sample_starts(st, seg + (size_t)b * T, T);
        round_row(qr, q + bq, (int)nq);
        round_row(dor, dout + bq, (int)nq);
        round_row(kr, k + bk, (int)nk);
        round_row(vr, v + bk, (int)nk);
        memset(ak, 0, nk * sizeof *ak);
        memset(av, 0, nk * sizeof *av);
        for (int i = 0; i < T; i++) {
            if (st[i] < 0) continue;
            for (int h = 0; h < H; h++) {
                const int g = h / rep;
                const size_t qo = (size_t)i * H + h;
                const float *qi = qr + qo * hd, *doi = dor + qo * hd;
                float L2 = lse[(size_t)b * T * H + qo] * LOG2E_F;
                float D = dot_exact(dout + bq + qo * hd, out + bq + qo * hd, hd);  // fp32 values
                memset(aq, 0, (size_t)hd * sizeof *aq);
                for (int j = st[i]; j <= i; j++) {
                    const size_t ko = ((size_t)j * KVH + g) * hd;
                    float p = exp2f(fmaf(dot_exact(qi, kr + ko, hd), scale2, -L2));
                    float dp = dot_exact(doi, vr + ko, hd);
                    float pb = rb(p), dsb = rb(p * (dp - D) * scale);
                    for (int d = 0; d < hd; d++) {
                        aq[d] += (double)dsb * kr[ko + d];
                        ak[ko + d] += (double)dsb * qi[d];
                        av[ko + d] += (double)pb * doi[d];
                    }
                }
                for (int d = 0; d < hd; d++) dq[bq + qo * hd + d] += (float)aq[d];
            }
        }
        for (size_t x = 0; x < nk; x++) {
            dk[bk + x] += (float)ak[x];
            dv[bk + x] += (float)av[x];
        }
    }
    free(st), free(qr), free(dor), free(kr), free(vr), free(aq), free(ak), free(av);
}
