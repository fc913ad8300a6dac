// decoder.c — the decoder with a KV cache (prefill + step) and the batch driver (the sampler:
// sample.c).
//
// One decode step for n slots, per layer (N = n rows, one new position each):
//   h = rmsnorm(x)                                   (n,C)
//   q, k, v = h·Wq^T(+bq), h·Wk^T(+bk), h·Wv^T(+bv)  (n,H*hd), (n,KVH*hd)
//   rope(q, k) at each slot's position; k, v appended to the slot's cache
//   a = softmax(q·K^T/sqrt(hd))·V over the slot's cache  (n,H*hd)
//   x += a·Wo^T;  x += (silu(h2·Wgate^T) * h2·Wup^T)·Wdown^T  with h2 = rmsnorm(x)
// then logits = rmsnorm(x)·lm_head^T  (n,V).
//
// The step's products go through linear_rows, not OpenBLAS: OpenBLAS picks kernels by shape
// (a 1-row product becomes a GEMV that sums in another order), so a row's result would
// depend on how many rows came with it. linear_rows computes each output with one fixed
// sequence of vector FMAs whatever the batch, so batched decoding is bit-identical to
// decoding one note at a time. Prefill uses OpenBLAS (matmul_forward): a prompt is always
// prefilled alone, so its GEMM shapes depend only on the prompt.
#include "generate/decoder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "generate/allowed.h"
#include "generate/constrain.h"
#include "model/ops.h"
#include "base/rng.h"

// ---------------------------------------------------------------------------------------
// linear_rows: out (N,OC) = x (N,C) · W^T (W is (OC,C)) + bias, row by row exact.
#if defined(__AVX512F__)
#include <immintrin.h>
typedef __m512 vf;
#define VW 16
#define ROWT 4
static inline vf v_zero(void) { return _mm512_setzero_ps(); }
static inline vf v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
// The sum of 16 lanes by one fixed tree: 256-bit halves, then 128-bit halves, then (0+2)+(1+3).
// sum16x4 below runs the same tree for 16 vectors at once, so every tile shape gives the same
// bits (batch results equal one-at-a-time results).
static inline __m256 v_hi256(vf v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }
static inline float v_sum(vf v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), v_hi256(v));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
// acc[r][o] (4 rows x 4 outputs) summed lane-wise with v_sum's tree but 16 at a time: one
// shuffle network instead of 16 separate reductions (which cost as much as the FMAs when C is
// small). Writes out[r][o] = sum(acc[r][o]) (+ bias[o]).
static inline __attribute__((always_inline)) void sum16x4(float *out, vf acc[4][4], const float *bias,
                                                          int OC, int n0, int o0) {
    __m512 t[8], u[4];
    for (int i = 0; i < 8; i++) {  // v[i] = acc[i % 4][i / 4]: 256-bit halves
        vf a = acc[(2 * i) % 4][(2 * i) / 4], b = acc[(2 * i + 1) % 4][(2 * i + 1) / 4];
        t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    }
    for (int j = 0; j < 4; j++)  // 128-bit halves: lane k of u[j] is v[4j + k]
        u[j] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * j], t[2 * j + 1], 0x88),
                             _mm512_shuffle_f32x4(t[2 * j], t[2 * j + 1], 0xDD));
    __m512 w01 = _mm512_add_ps(_mm512_unpacklo_ps(u[0], u[1]), _mm512_unpackhi_ps(u[0], u[1]));
    __m512 w23 = _mm512_add_ps(_mm512_unpacklo_ps(u[2], u[3]), _mm512_unpackhi_ps(u[2], u[3]));
    // lane k of r holds the sums of v[k], v[4+k], v[8+k], v[12+k]: row k's four outputs
    __m512 r = _mm512_add_ps(_mm512_shuffle_ps(w01, w23, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(w01, w23, _MM_SHUFFLE(3, 2, 3, 2)));
    __m128 b4 = bias ? _mm_loadu_ps(bias + o0) : _mm_setzero_ps();
    __m128 rows[4] = {_mm512_extractf32x4_ps(r, 0), _mm512_extractf32x4_ps(r, 1),
                      _mm512_extractf32x4_ps(r, 2), _mm512_extractf32x4_ps(r, 3)};
    for (int k = 0; k < 4; k++)
        _mm_storeu_ps(out + (size_t)(n0 + k) * OC + o0, bias ? _mm_add_ps(rows[k], b4) : rows[k]);
}
#define HAVE_SUM16X4 1
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
typedef __m256 vf;
#define VW 8
#define ROWT 2
static inline vf v_zero(void) { return _mm256_setzero_ps(); }
static inline vf v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline float v_sum(vf v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#else
typedef float vf __attribute__((vector_size(32)));
#define VW 8
#define ROWT 2
static inline vf v_zero(void) { return (vf){0}; }
static inline vf v_load(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline vf v_fma(vf a, vf b, vf c) { return a * b + c; }  // ISO C: never contracted
static inline float v_sum(vf v) {
    float s = 0.0f;
    for (int i = 0; i < VW; i++) s += v[i];
    return s;
}
#endif
#define OUTT 4  // outputs per tile: their weight rows are loaded once for ROWT input rows

// One tile of RT rows x OT outputs. Inlined with constant RT, OT, so acc stays in registers;
// every (row, output) pair runs the same FMA sequence in every tile shape.
static inline __attribute__((always_inline)) void lin_tile(float *out, const float *x,
                                                           const float *W, const float *bias,
                                                           int C, int OC, int n0, int o0,
                                                           const int RT, const int OT) {
    vf acc[ROWT][OUTT];
    for (int r = 0; r < RT; r++)
        for (int o = 0; o < OT; o++) acc[r][o] = v_zero();
    int k = 0;
    for (; k + VW <= C; k += VW) {
        vf w[OUTT];
        for (int o = 0; o < OT; o++) w[o] = v_load(W + (size_t)(o0 + o) * C + k);
        for (int r = 0; r < RT; r++) {
            vf xv = v_load(x + (size_t)(n0 + r) * C + k);
            for (int o = 0; o < OT; o++) acc[r][o] = v_fma(xv, w[o], acc[r][o]);
        }
    }
#ifdef HAVE_SUM16X4
    if (RT == 4 && OT == 4 && k == C) {
        sum16x4(out, acc, bias, OC, n0, o0);
        return;
    }
#endif
    for (int r = 0; r < RT; r++)
        for (int o = 0; o < OT; o++) {
            const float *xr = x + (size_t)(n0 + r) * C, *wr = W + (size_t)(o0 + o) * C;
            float s = v_sum(acc[r][o]);
            for (int kk = k; kk < C; kk++) s += xr[kk] * wr[kk];
            if (bias) s += bias[o0 + o];
            out[(size_t)(n0 + r) * OC + o0 + o] = s;
        }
}

// Below this many multiply-adds a product runs on one thread: waking the team costs more.
#define PAR_MIN_WORK (1 << 16)

static void linear_rows(float *out, const float *x, const float *W, const float *bias, int N, int C,
                        int OC) {
    int nblk = (OC + OUTT - 1) / OUTT;
#pragma omp parallel for schedule(static) if ((size_t)N * C * OC >= PAR_MIN_WORK)
    for (int b = 0; b < nblk; b++) {
        int o0 = b * OUTT;
        if (o0 + OUTT <= OC) {
            int n0 = 0;
            for (; n0 + ROWT <= N; n0 += ROWT) lin_tile(out, x, W, bias, C, OC, n0, o0, ROWT, OUTT);
            for (; n0 < N; n0++) lin_tile(out, x, W, bias, C, OC, n0, o0, 1, OUTT);
        } else {
            for (int o = o0; o < OC; o++)
                for (int n = 0; n < N; n++) lin_tile(out, x, W, bias, C, OC, n, o, 1, 1);
        }
    }
}

// ---------------------------------------------------------------------------------------
// State

struct vet_infer {
    const vet_model *m;
    int L, C, F, Q, KV, H, KVH, hd, V;
    int n_slots;
    float **kc, **vc;   // (n_slots*L) caches, each (cap[slot], KVH, hd)
    int *cap, *len;     // (n_slots)
    float *inv_freq;    // (hd/2)
    float *cos_t, *sin_t;  // (rope_cap, hd/2)
    int rope_cap;
    int rows;           // scratch capacity in positions
    float *x, *h, *q, *k, *v, *att, *lse, *gate, *up, *act, *proj, *rstd;
    int32_t *pos, *seg;
};

vet_infer *vet_infer_new(const vet_model *m, int n_slots, vet_err *err) {
    const vet_config *c = &m->cfg;
    if (m->has_lora) {
        vet_errf(err, "the model still has LoRA adapters: merge them first (vet_model_merge_lora)");
        return NULL;
    }
    if (n_slots < 1) {
        vet_errf(err, "need at least one slot (got %d)", n_slots);
        return NULL;
    }
    vet_infer *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->m = m;
    s->L = c->n_layers, s->C = c->dim, s->F = c->hidden_dim, s->H = c->n_heads;
    s->KVH = c->n_kv_heads, s->hd = c->head_dim, s->V = c->vocab_size;
    s->Q = s->H * s->hd, s->KV = s->KVH * s->hd;
    s->n_slots = n_slots;
    s->kc = calloc((size_t)n_slots * s->L, sizeof(float *));
    s->vc = calloc((size_t)n_slots * s->L, sizeof(float *));
    s->cap = calloc((size_t)n_slots, sizeof(int));
    s->len = calloc((size_t)n_slots, sizeof(int));
    s->inv_freq = malloc((size_t)s->hd / 2 * sizeof(float));
    if (!s->kc || !s->vc || !s->cap || !s->len || !s->inv_freq) goto oom;
    vet_rope_inv_freq(c, s->inv_freq);
    return s;
oom:
    vet_infer_free(s);
    vet_err_nomem(err, "out of memory for the inference state");
    return NULL;
}

static void free_rows(vet_infer *s) {
    float **bufs[] = {&s->x, &s->h, &s->q, &s->k, &s->v, &s->att, &s->lse, &s->gate, &s->up,
                      &s->act, &s->proj, &s->rstd};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(*bufs[i]), *bufs[i] = NULL;
    free(s->pos), free(s->seg);
    s->pos = s->seg = NULL;
    s->rows = 0;
}

void vet_infer_free(vet_infer *s) {
    if (!s) return;
    if (s->kc)
        for (int i = 0; i < s->n_slots * s->L; i++) free(s->kc[i]);
    if (s->vc)
        for (int i = 0; i < s->n_slots * s->L; i++) free(s->vc[i]);
    free(s->kc), free(s->vc), free(s->cap), free(s->len);
    free(s->inv_freq), free(s->cos_t), free(s->sin_t);
    free_rows(s);
    free(s);
}

int vet_infer_len(const vet_infer *s, int slot) { return s->len[slot]; }

// Room for `need` positions in a slot's cache (grown by doubling: appends stay cheap).
static int ensure_slot(vet_infer *s, int slot, int need, vet_err *err) {
    if (need <= s->cap[slot]) return 0;
    int cap = s->cap[slot] * 2;
    if (cap < need) cap = need;
    if (cap < 64) cap = 64;
    for (int l = 0; l < s->L; l++) {
        float **pk = &s->kc[(size_t)slot * s->L + l], **pv = &s->vc[(size_t)slot * s->L + l];
        float *k = realloc(*pk, (size_t)cap * s->KV * sizeof(float));
        if (k) *pk = k;
        float *v = realloc(*pv, (size_t)cap * s->KV * sizeof(float));
        if (v) *pv = v;
        if (!k || !v) return vet_err_nomem(err, "out of memory for a KV cache of %d positions", cap);
    }
    s->cap[slot] = cap;
    return 0;
}

int vet_infer_copy(vet_infer *s, int dst, int src, vet_err *err) {
    if (dst < 0 || dst >= s->n_slots || src < 0 || src >= s->n_slots)
        return vet_errf(err, "slot %d or %d out of range [0, %d)", dst, src, s->n_slots);
    if (dst == src) return 0;
    int n = s->len[src];
    if (ensure_slot(s, dst, n + 1, err)) return -1;
    for (int l = 0; l < s->L; l++) {
        size_t d = (size_t)dst * s->L + l, f = (size_t)src * s->L + l, bytes = (size_t)n * s->KV * sizeof(float);
        if (bytes) memcpy(s->kc[d], s->kc[f], bytes), memcpy(s->vc[d], s->vc[f], bytes);
    }
    s->len[dst] = n;
    return 0;
}

// Scratch for n positions.
static int ensure_rows(vet_infer *s, int n, vet_err *err) {
    if (n <= s->rows) return 0;
    free_rows(s);
    size_t N = (size_t)n;
    struct { float **p; size_t n; } t[] = {
        {&s->x, N * s->C}, {&s->h, N * s->C}, {&s->q, N * s->Q}, {&s->k, N * s->KV},
        {&s->v, N * s->KV}, {&s->att, N * s->Q}, {&s->lse, N * s->H}, {&s->gate, N * s->F},
        {&s->up, N * s->F}, {&s->act, N * s->F}, {&s->proj, N * s->C}, {&s->rstd, N},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) ok &= (*t[i].p = malloc(t[i].n * sizeof(float))) != NULL;
    s->pos = malloc(N * sizeof(int32_t));
    s->seg = malloc(N * sizeof(int32_t));
    if (!ok || !s->pos || !s->seg) {
        free_rows(s);
        return vet_err_nomem(err, "out of memory for inference buffers of %d positions", n);
    }
    s->rows = n;
    return 0;
}

// cos/sin tables for positions < need.
static int ensure_rope(vet_infer *s, int need, vet_err *err) {
    if (need <= s->rope_cap) return 0;
    int cap = s->rope_cap * 2;
    if (cap < need) cap = need;
    if (cap < 256) cap = 256;
    size_t n = (size_t)cap * (s->hd / 2);
    float *c = realloc(s->cos_t, n * sizeof(float));
    if (c) s->cos_t = c;
    float *sn = realloc(s->sin_t, n * sizeof(float));
    if (sn) s->sin_t = sn;
    if (!c || !sn) return vet_err_nomem(err, "out of memory for rope tables of %d positions", cap);
    rope_tables(s->cos_t, s->sin_t, cap, s->hd, s->inv_freq);
    s->rope_cap = cap;
    return 0;
}

// Weights of layer l.
typedef struct {
    const float *attn_norm, *wq, *wk, *wv, *bq, *bk, *bv, *wo, *mlp_norm, *wgate, *wup, *wdown;
} layer_w;

static layer_w layer(const vet_infer *s, int l) {
    const vet_weights *w = &s->m->w;
    size_t C = s->C, F = s->F, Q = s->Q, KV = s->KV;
    layer_w o = {
        w->attn_norm + l * C, w->wq + l * Q * C, w->wk + l * KV * C, w->wv + l * KV * C,
        w->bq ? w->bq + l * Q : NULL, w->bk ? w->bk + l * KV : NULL, w->bv ? w->bv + l * KV : NULL,
        w->wo + l * C * Q, w->mlp_norm + l * C, w->wgate + l * F * C, w->wup + l * F * C,
        w->wdown + l * C * F,
    };
    return o;
}

static int check_ids(const vet_infer *s, const int32_t *ids, int n, vet_err *err) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->V)
            return vet_errf(err, "token %d at %d is outside the model's vocabulary [0, %d)", ids[i], i,
                            s->V);
    return 0;
}

// ---------------------------------------------------------------------------------------
// Prefill: the whole prompt in one pass.

int vet_infer_prefill(vet_infer *s, int slot, const int32_t *ids, int n, float *logits, vet_err *err) {
    const vet_config *c = &s->m->cfg;
    if (slot < 0 || slot >= s->n_slots) return vet_errf(err, "slot %d out of range [0, %d)", slot, s->n_slots);
    if (n <= 0) return vet_errf(err, "empty prompt");
    if (check_ids(s, ids, n, err) || ensure_rows(s, n, err) || ensure_slot(s, slot, n + 1, err) ||
        ensure_rope(s, n, err))
        return -1;
    int C = s->C, F = s->F, Q = s->Q, KV = s->KV;
    for (int i = 0; i < n; i++) s->pos[i] = i, s->seg[i] = 0;
    embedding_forward(s->x, ids, s->m->w.embed, n, C);
    for (int l = 0; l < s->L; l++) {
        layer_w w = layer(s, l);
        float *kl = s->kc[(size_t)slot * s->L + l], *vl = s->vc[(size_t)slot * s->L + l];
        rmsnorm_forward(s->h, s->rstd, s->x, w.attn_norm, n, C, c->rms_eps);
        matmul_forward(s->q, s->h, w.wq, w.bq, n, C, Q);  // (n,Q)
        matmul_forward(kl, s->h, w.wk, w.bk, n, C, KV);   // (n,KV) straight into the cache
        matmul_forward(vl, s->h, w.wv, w.bv, n, C, KV);
        rope_forward(s->q, s->pos, s->cos_t, s->sin_t, n, s->H, s->hd);
        rope_forward(kl, s->pos, s->cos_t, s->sin_t, n, s->KVH, s->hd);
        attention_forward(s->att, s->lse, s->q, kl, vl, s->seg, 1, n, s->H, s->KVH, s->hd);
        matmul_forward(s->proj, s->att, w.wo, NULL, n, Q, C);
        add_inplace(s->x, s->proj, (size_t)n * C);
        rmsnorm_forward(s->h, s->rstd, s->x, w.mlp_norm, n, C, c->rms_eps);
        matmul_forward(s->gate, s->h, w.wgate, NULL, n, C, F);
        matmul_forward(s->up, s->h, w.wup, NULL, n, C, F);
        swiglu_forward(s->act, s->gate, s->up, (size_t)n * F);
        matmul_forward(s->proj, s->act, w.wdown, NULL, n, F, C);
        add_inplace(s->x, s->proj, (size_t)n * C);
    }
    s->len[slot] = n;
    // Only the last position's logits are wanted.
    rmsnorm_forward(s->h, s->rstd, s->x + (size_t)(n - 1) * C, s->m->w.final_norm, 1, C, c->rms_eps);
    linear_rows(logits, s->h, s->m->w.lm_head, NULL, 1, C, s->V);
    return 0;
}

// ---------------------------------------------------------------------------------------
// Step: one token for each of n slots.
//
// The element-wise parts of a step touch a few rows: they run here, on the calling thread,
// row by row (the ops' versions fork a thread team per call, which costs more than the work).

// out (n,C) = w * (x * rsqrt(mean(x^2) + eps)), as rmsnorm_forward
static void step_rmsnorm(float *out, const float *x, const float *w, int n, int C, float eps) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * C;
        float *yi = out + (size_t)i * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)xi[c] * xi[c];
        float r = 1.0f / sqrtf((float)(ss / C) + eps);
        for (int c = 0; c < C; c++) yi[c] = w[c] * (xi[c] * r);
    }
}

// x (n, nh, hd) rotated in place at positions pos (rotate_half), as rope_forward
static void step_rope(float *x, const int32_t *pos, const float *cos_t, const float *sin_t, int n,
                      int nh, int hd) {
    int half = hd / 2;
    for (int i = 0; i < n; i++) {
        const float *c = cos_t + (size_t)pos[i] * half, *s = sin_t + (size_t)pos[i] * half;
        for (int h = 0; h < nh; h++) {
            float *v = x + ((size_t)i * nh + h) * hd;
            for (int k = 0; k < half; k++) {
                float a = v[k], b = v[k + half];
                v[k] = a * c[k] - b * s[k];
                v[k + half] = b * c[k] + a * s[k];
            }
        }
    }
}

static void step_swiglu(float *out, const float *gate, const float *up, int n, int F) {
    for (int i = 0; i < n; i++)
        for (int f = 0; f < F; f++) {
            size_t j = (size_t)i * F + f;
            out[j] = gate[j] / (1.0f + expf(-gate[j])) * up[j];
        }
}

static void step_add(float *x, const float *y, int n, int C) {
    for (size_t j = 0; j < (size_t)n * C; j++) x[j] += y[j];
}

static inline float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// att (n,H,hd): each row's query against its slot's cache positions [0, pos[i]].
static void attend_step(vet_infer *s, int l, const int *slots, int n, int max_len) {
    const float scale = 1.0f / sqrtf((float)s->hd);
    const int H = s->H, KVH = s->KVH, hd = s->hd, rep = H / KVH;
#pragma omp parallel if ((size_t)n * H * max_len * hd >= PAR_MIN_WORK / 2)
    {
        float *score = malloc((size_t)max_len * sizeof(float));
#pragma omp for collapse(2) schedule(static)
        for (int i = 0; i < n; i++)
            for (int h = 0; h < H; h++) {
                const int g = h / rep, T = s->pos[i] + 1;
                const float *K = s->kc[(size_t)slots[i] * s->L + l];
                const float *V = s->vc[(size_t)slots[i] * s->L + l];
                const float *qv = s->q + ((size_t)i * H + h) * hd;
                float *o = s->att + ((size_t)i * H + h) * hd;
                float mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    float sc = dot(qv, K + ((size_t)j * KVH + g) * hd, hd) * scale;
                    score[j] = sc;
                    mx = sc > mx ? sc : mx;
                }
                float sum = 0.0f;
                for (int j = 0; j < T; j++) {
                    float p = expf(score[j] - mx);
                    score[j] = p;
                    sum += p;
                }
                memset(o, 0, (size_t)hd * sizeof(float));
                for (int j = 0; j < T; j++) {
                    const float *vj = V + ((size_t)j * KVH + g) * hd;
                    const float p = score[j];
#pragma omp simd
                    for (int d = 0; d < hd; d++) o[d] += p * vj[d];
                }
                const float inv = 1.0f / sum;
                for (int d = 0; d < hd; d++) o[d] *= inv;
            }
        free(score);
    }
}

int vet_infer_step(vet_infer *s, const int *slots, const int32_t *tokens, int n, float *logits,
                   vet_err *err) {
    const vet_config *c = &s->m->cfg;
    if (n <= 0) return 0;
    if (check_ids(s, tokens, n, err) || ensure_rows(s, n, err)) return -1;
    int max_len = 0;
    for (int i = 0; i < n; i++) {
        if (slots[i] < 0 || slots[i] >= s->n_slots || s->len[slots[i]] == 0)
            return vet_errf(err, "slot %d is out of range or was never prefilled", slots[i]);
        for (int j = 0; j < i; j++)
            if (slots[j] == slots[i]) return vet_errf(err, "slot %d appears twice in one step", slots[i]);
        s->pos[i] = s->len[slots[i]];
        if (ensure_slot(s, slots[i], s->pos[i] + 1, err)) return -1;
        if (s->pos[i] + 1 > max_len) max_len = s->pos[i] + 1;
    }
    if (ensure_rope(s, max_len, err)) return -1;
    int C = s->C, F = s->F, Q = s->Q, KV = s->KV;
    for (int i = 0; i < n; i++)
        memcpy(s->x + (size_t)i * C, s->m->w.embed + (size_t)tokens[i] * C, (size_t)C * sizeof(float));
    for (int l = 0; l < s->L; l++) {
        layer_w w = layer(s, l);
        step_rmsnorm(s->h, s->x, w.attn_norm, n, C, c->rms_eps);
        linear_rows(s->q, s->h, w.wq, w.bq, n, C, Q);
        linear_rows(s->k, s->h, w.wk, w.bk, n, C, KV);
        linear_rows(s->v, s->h, w.wv, w.bv, n, C, KV);
        step_rope(s->q, s->pos, s->cos_t, s->sin_t, n, s->H, s->hd);
        step_rope(s->k, s->pos, s->cos_t, s->sin_t, n, s->KVH, s->hd);
        for (int i = 0; i < n; i++) {
            size_t at = (size_t)s->pos[i] * KV;
            memcpy(s->kc[(size_t)slots[i] * s->L + l] + at, s->k + (size_t)i * KV, (size_t)KV * sizeof(float));
            memcpy(s->vc[(size_t)slots[i] * s->L + l] + at, s->v + (size_t)i * KV, (size_t)KV * sizeof(float));
        }
        attend_step(s, l, slots, n, max_len);
        linear_rows(s->proj, s->att, w.wo, NULL, n, Q, C);
        step_add(s->x, s->proj, n, C);
        step_rmsnorm(s->h, s->x, w.mlp_norm, n, C, c->rms_eps);
        linear_rows(s->gate, s->h, w.wgate, NULL, n, C, F);
        linear_rows(s->up, s->h, w.wup, NULL, n, C, F);
        step_swiglu(s->act, s->gate, s->up, n, F);
        linear_rows(s->proj, s->act, w.wdown, NULL, n, F, C);
        step_add(s->x, s->proj, n, C);
    }
    for (int i = 0; i < n; i++) s->len[slots[i]]++;
    step_rmsnorm(s->h, s->x, s->m->w.final_norm, n, C, c->rms_eps);
    linear_rows(logits, s->h, s->m->w.lm_head, NULL, n, C, s->V);
    return 0;
}

// ---------------------------------------------------------------------------------------
// The driver

typedef struct {
    int active;
    int64_t tag;
    int32_t *ids;
    int n, cap;
    int32_t *prompt;    // the prompt, copied: next's pointer lasts only until the next call
    int n_prompt, prompt_cap;
    double t0;
    vet_rng rng;
    vet_cstate cs;
} gen_slot;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int is_eos(const vet_gen_opts *o, int tok) {
    for (int i = 0; i < o->n_eos; i++)
        if (o->eos_ids[i] == tok) return 1;
    return 0;
}

static int finish(gen_slot *g, int stopped, vet_gen_done_fn done, void *ctx, vet_err *err) {
    vet_gen_result r = {g->tag, g->ids, g->n, stopped, now_ms() - g->t0};
    g->active = 0;
    return done(ctx, &r, err);
}

// The next token of rows 0..n-1 into out (row i: slot slot_of[i]'s logits, at logits + i V):
// the constraint's mask, then the sampler with the slot's next uniform draw. A row reads only
// its own slot (constraint state, generator), so the rows run in parallel and give the same
// tokens on any number of threads; the caller then takes them in row order (take_token hands
// finished notes on). Why parallel: sampling orders a whole vocabulary a row (sample.c), ~1.5
// ms at 49,152 ids, which at batch 64 behind a device outweighed the device's step.
static void pick_tokens(const vet_gen_opts *o, gen_slot *slots, const int *slot_of, int n, float *logits, int V,
                        int32_t *out) {
#pragma omp parallel for schedule(dynamic, 1) if (n > 1 && (size_t)n * V >= PAR_MIN_WORK)
    for (int i = 0; i < n; i++) {
        gen_slot *g = &slots[slot_of[i]];
        float *row = logits + (size_t)i * V;
        if (o->constrain) vet_constrain_mask(o->constrain, &g->cs, o->max_new - g->n, row);
        out[i] = vet_sample(row, V, &o->sampling, vet_rng_uniform_double(&g->rng));
    }
}

// Appends tok (from pick_tokens, or from the backend's greedy step) to slot g's note. Returns 1
// when the note is finished (and hands it to done), 0 when it goes on, -1 on error.
static int take_token(const vet_gen_opts *o, gen_slot *g, int tok, vet_gen_done_fn done, void *ctx,
                      vet_err *err) {
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        int32_t *p = realloc(g->ids, (size_t)cap * sizeof *p);
        if (!p) return vet_err_nomem(err, "out of memory");
        g->ids = p, g->cap = cap;
    }
    g->ids[g->n++] = tok;
    if (o->constrain) vet_constrain_advance(o->constrain, &g->cs, tok);
    if (is_eos(o, tok)) return finish(g, 1, done, ctx, err) < 0 ? -1 : 1;
    if (g->n >= o->max_new) return finish(g, 0, done, ctx, err) < 0 ? -1 : 1;
    return 0;
}

static int cpu_prefill(void *s, int slot, const int32_t *ids, int n, float *logits, vet_err *err) {
    return vet_infer_prefill(s, slot, ids, n, logits, err);
}
static int cpu_step(void *s, const int *slots, const int32_t *tokens, int n, float *logits, vet_err *err) {
    return vet_infer_step(s, slots, tokens, n, logits, err);
}

// The CPU's batch: each prompt alone (its GEMM shapes depend only on itself), logits row i.
static int cpu_prefill_batch(void *s, const int *slots, const int32_t *const *ids, const int *n, int count,
                             float *logits, int *bad, vet_err *err) {
    const size_t V = (size_t)((vet_infer *)s)->V;
    for (int i = 0; i < count; i++)
        if (vet_infer_prefill(s, slots[i], ids[i], n[i], logits + i * V, err) < 0) {
            *bad = i;
            return -1;
        }
    return 0;
}

static int cpu_copy_slot(void *state, int dst, int src, vet_err *err) {
    return vet_infer_copy(state, dst, src, err);
}

void vet_infer_backend_of(vet_infer *s, vet_infer_backend *be) {
    be->state = s;
    be->n_slots = s->n_slots;
    be->prefill = cpu_prefill;
    be->step = cpu_step;
    be->prefill_batch = cpu_prefill_batch;
    be->step_greedy = NULL;  // the logits are in host memory already
    be->copy_slot = cpu_copy_slot;
}

int vet_generate(const vet_model *m, const vet_gen_opts *o, int batch, vet_gen_next_fn next,
                 vet_gen_done_fn done, void *ctx, vet_err *err) {
    if (batch < 1) return vet_errf(err, "batch must be at least 1 (got %d)", batch);
    vet_infer *s = vet_infer_new(m, batch, err);
    if (!s) return -1;
    vet_infer_backend be;
    vet_infer_backend_of(s, &be);
    int rc = vet_generate_on(&be, m->cfg.vocab_size, o, batch, next, done, ctx, err);
    vet_infer_free(s);
    return rc;
}

// Slot g takes prompt p: its sampler, constraint state and a copy of the prompt.
static int take_prompt(const vet_gen_opts *o, gen_slot *g, const vet_gen_prompt *p, vet_err *err) {
    g->active = 1, g->tag = p->tag, g->n = 0, g->t0 = now_ms();
    vet_rng_seed(&g->rng, vet_rng_hash(o->seed, (uint64_t)p->tag));
    if (o->constrain) vet_constrain_start(o->constrain, &g->cs);
    if (p->n_prompt > g->prompt_cap) {
        int32_t *q = realloc(g->prompt, (size_t)p->n_prompt * sizeof *q);
        if (!q) return vet_err_nomem(err, "out of memory for a prompt of %d tokens", p->n_prompt);
        g->prompt = q, g->prompt_cap = p->n_prompt;
    }
    if (p->n_prompt > 0) memcpy(g->prompt, p->prompt, (size_t)p->n_prompt * sizeof *g->prompt);
    g->n_prompt = p->n_prompt;
    return 0;
}

// Every free slot takes the next prompt; those prompts are prefilled together (the backend's
// prefill_batch: one batched forward on a device) and pick their first tokens; a note that
// finishes at once frees its slot for another round. *more becomes 0 when next has no more.
// pick, toks (batch) and the pointer tables (batch) are scratch.
static int fill_slots(const vet_infer_backend *be, int V, const vet_gen_opts *o, gen_slot *slots, int batch,
                      int *more, vet_gen_next_fn next, vet_gen_done_fn done, void *ctx, float *logits, int *pick,
                      const int32_t **ids, int *lens, int32_t *toks, vet_err *err) {
    for (;;) {
        int k = 0;
        for (int b = 0; b < batch && *more; b++) {
            gen_slot *g = &slots[b];
            while (!g->active && *more) {
                vet_gen_prompt p;
                int got = next(ctx, &p, err);
                if (got < 0) return -1;
                if (got == 0) {
                    *more = 0;
                    break;
                }
                if (take_prompt(o, g, &p, err) < 0) return -1;
                if (o->max_new <= 0) {
                    if (finish(g, 0, done, ctx, err) < 0) return -1;
                    continue;
                }
                pick[k] = b, ids[k] = g->prompt, lens[k] = g->n_prompt, k++;
                break;
            }
        }
        if (k == 0) return 0;
        double t0 = now_ms();
        int rc = 0, bad = -1;
        if (be->prefill_batch) {
            rc = be->prefill_batch(be->state, pick, ids, lens, k, logits, &bad, err);
        } else {
            for (int i = 0; i < k && rc == 0; i++)
                if ((rc = be->prefill(be->state, pick[i], ids[i], lens[i], logits + (size_t)i * V, err)) < 0) bad = i;
        }
        if (rc < 0) {
            if (bad >= 0 || k == 1)
                vet_err_prefix(err, "note %lld", (long long)slots[pick[bad >= 0 ? bad : 0]].tag + 1);
            else
                vet_err_prefix(err, "notes %lld and %d more prefilled with it", (long long)slots[pick[0]].tag + 1, k - 1);
            return -1;
        }
        int64_t tokens = 0;
        pick_tokens(o, slots, pick, k, logits, V, toks);
        for (int i = 0; i < k; i++) {
            tokens += lens[i];
            if (take_token(o, &slots[pick[i]], toks[i], done, ctx, err) < 0) return -1;
        }
        if (o->stats) o->stats->prompt_tokens += tokens, o->stats->prefill_ms += now_ms() - t0;
    }
}

int vet_generate_on(const vet_infer_backend *be, int V, const vet_gen_opts *o, int batch,
                    vet_gen_next_fn next, vet_gen_done_fn done, void *ctx, vet_err *err) {
    if (batch < 1) return vet_errf(err, "batch must be at least 1 (got %d)", batch);
    if (batch > be->n_slots)
        return vet_errf(err, "batch %d is larger than the backend's %d slots", batch, be->n_slots);
    gen_slot *slots = calloc((size_t)batch, sizeof *slots);
    float *logits = malloc((size_t)batch * V * sizeof(float));
    int *rows = malloc((size_t)batch * sizeof(int)), *lens = malloc((size_t)batch * sizeof(int));
    int32_t *toks = malloc((size_t)batch * sizeof(int32_t)), *next_ids = malloc((size_t)batch * sizeof(int32_t));
    const int32_t **ids = malloc((size_t)batch * sizeof *ids);
    // greedy: the choice is the logits' argmax, which a backend may make; constrained, the
    // argmax over the ids the constraint allows, handed over as lists (generate/allowed.h)
    const int greedy_on_backend = be->step_greedy && o->sampling.temperature <= 0.0f;
    vet_allowed *allowed = NULL;
    int32_t *allow_ids = NULL, *allow_off = NULL;  // (<= batch x V), (batch + 1)
    if (greedy_on_backend && o->constrain) {
        allowed = vet_allowed_new(o->constrain, V, err);
        allow_ids = malloc((size_t)batch * V * sizeof *allow_ids);
        allow_off = malloc(((size_t)batch + 1) * sizeof *allow_off);
    }
    int rc = 0, more = 1;
    if (!slots || !logits || !rows || !toks || !lens || !ids || !next_ids ||
        (greedy_on_backend && o->constrain && (!allowed || !allow_ids || !allow_off))) {
        rc = vet_err_nomem(err, "out of memory for a batch of %d", batch);
        goto out;
    }
    for (;;) {
        if (fill_slots(be, V, o, slots, batch, &more, next, done, ctx, logits, rows, ids, lens, next_ids, err) < 0) {
            rc = -1;
            goto out;
        }
        int n = 0;
        for (int b = 0; b < batch; b++)
            if (slots[b].active) rows[n] = b, toks[n] = slots[b].ids[slots[b].n - 1], n++;
        if (n == 0) {
            if (!more) break;
            continue;
        }
        double t0 = now_ms();
        if (greedy_on_backend) {  // the backend's argmax: n ids back, the same draw of u skipped
            if (allowed) {  // row i may take allow_ids[allow_off[i] .. allow_off[i+1])
                allow_off[0] = 0;
                for (int i = 0; i < n; i++) {
                    const gen_slot *g = &slots[rows[i]];
                    int k;
                    const int32_t *list = vet_allowed_get(allowed, &g->cs, o->max_new - g->n, &k, err);
                    if (!list) {
                        rc = -1;
                        goto out;
                    }
                    memcpy(allow_ids + allow_off[i], list, (size_t)k * sizeof *list);
                    allow_off[i + 1] = allow_off[i] + k;
                }
            }
            if (be->step_greedy(be->state, rows, toks, n, allowed ? allow_ids : NULL, allowed ? allow_off : NULL,
                                next_ids, err) < 0) {
                rc = -1;
                goto out;
            }
            for (int i = 0; i < n; i++) {
                (void)vet_rng_uniform_double(&slots[rows[i]].rng);  // as pick_tokens: one draw per token
                if (take_token(o, &slots[rows[i]], next_ids[i], done, ctx, err) < 0) {
                    rc = -1;
                    goto out;
                }
            }
        } else {
            if (be->step(be->state, rows, toks, n, logits, err) < 0) {
                rc = -1;
                goto out;
            }
            pick_tokens(o, slots, rows, n, logits, V, next_ids);
            for (int i = 0; i < n; i++)
                if (take_token(o, &slots[rows[i]], next_ids[i], done, ctx, err) < 0) {
                    rc = -1;
                    goto out;
                }
        }
        if (o->stats) o->stats->step_tokens += n, o->stats->step_ms += now_ms() - t0;
    }
out:
    if (slots)
        for (int b = 0; b < batch; b++) free(slots[b].ids), free(slots[b].prompt);
    free(slots), free(logits), free(rows), free(toks), free(lens), free(ids), free(next_ids);
    vet_allowed_free(allowed), free(allow_ids), free(allow_off);
    return rc;
}
