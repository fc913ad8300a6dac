// gpu_upload.c — see gpu_upload.h.
#include "kernels/host/gpu_upload.h"

#ifdef VET_CUDA

#include <stdlib.h>

#include "kernels/ops_cuda.h"
#include "base/half.h"
#include "model/quant.h"

int vet_gpu_upload_f32(vet_cuda *ctx, float *dst, const float *src, size_t n, vet_err *err) {
    return n ? vet_cuda_upload(ctx, dst, src, n * sizeof(float), err) : 0;
}

int vet_gpu_upload_half(vet_cuda *ctx, uint16_t *dst, const float *src, size_t n, int fp16, vet_err *err) {
    size_t piece = (size_t)1 << 22;
    uint16_t *tmp = malloc((n < piece ? n : piece) * sizeof(uint16_t) + 1);
    if (!tmp) return vet_err_nomem(err, "out of memory");
    for (size_t o = 0; o < n; o += piece) {
        size_t k = n - o < piece ? n - o : piece;
        for (size_t i = 0; i < k; i++) tmp[i] = fp16 ? vet_f32_to_f16(src[o + i]) : vet_f32_to_bf16(src[o + i]);
        if (vet_cuda_upload(ctx, dst + o, tmp, k * sizeof(uint16_t), err) < 0) {
            free(tmp);
            return -1;
        }
    }
    free(tmp);
    return 0;
}

int vet_gpu_upload_quantized(vet_cuda *ctx, int quant, const float *host, int L, int out, int in,
                             void *qw, size_t q_bytes, float *qs, size_t q_scales, const char *what,
                             vet_err *err) {
    void *q = malloc(q_bytes + 1);
    float *sc = malloc((q_scales + 1) * sizeof(float));
    int rc = q && sc ? 0 : vet_err_nomem(err, "out of memory for quantizing a weight matrix");
    size_t n = (size_t)out * in;
    for (int l = 0; l < L && rc == 0; l++) {
        const float *src = host + (size_t)l * n;
        rc = quant == VET_CUDA_Q_INT8 ? vet_quant_int8(q, sc, src, (size_t)out, (size_t)in, err)
                                      : vet_quant_nf4_dq(q, sc, src, n, err);
        if (rc < 0) {
            vet_err_prefix(err, "layer %d %s", l, what);
            break;
        }
        rc = vet_cuda_upload(ctx, (char *)qw + l * q_bytes, q, q_bytes, err);
        if (rc == 0) rc = vet_gpu_upload_f32(ctx, qs + l * q_scales, sc, q_scales, err);
    }
    free(q), free(sc);
    return rc;
}

int vet_gpu_upload_small(vet_cuda *ctx, const vet_config *c, const vet_weights *w, const vet_gpu_small_dst *d,
                         int fp16, vet_err *err) {
    size_t L = c->n_layers, C = c->dim, V = c->vocab_size;
    size_t Q = (size_t)c->n_heads * c->head_dim, KV = (size_t)c->n_kv_heads * c->head_dim;
    int embed_is_head = c->tie_embeddings && d->lm_head16 && d->embed16 == d->lm_head16;
    if (d->embed16 && !embed_is_head && vet_gpu_upload_half(ctx, d->embed16, w->embed, V * C, fp16, err) < 0)
        return -1;
    if (d->lm_head16 && vet_gpu_upload_half(ctx, d->lm_head16, w->lm_head, V * C, fp16, err) < 0) return -1;
    if (!d->embed16 && !c->tie_embeddings && vet_gpu_upload_f32(ctx, d->embed, w->embed, V * C, err) < 0) return -1;
    if (vet_gpu_upload_f32(ctx, d->attn_norm, w->attn_norm, L * C, err) < 0 ||
        vet_gpu_upload_f32(ctx, d->mlp_norm, w->mlp_norm, L * C, err) < 0 ||
        vet_gpu_upload_f32(ctx, d->final_norm, w->final_norm, C, err) < 0 ||
        (!d->lm_head16 && vet_gpu_upload_f32(ctx, d->lm_head, w->lm_head, V * C, err) < 0))
        return -1;
    if (c->qkv_bias &&
        (vet_gpu_upload_f32(ctx, d->bq, w->bq, L * Q, err) < 0 || vet_gpu_upload_f32(ctx, d->bk, w->bk, L * KV, err) < 0 ||
         vet_gpu_upload_f32(ctx, d->bv, w->bv, L * KV, err) < 0))
        return -1;
    return 0;
}

#else
typedef int vet_gpu_upload_needs_cuda;  // ISO C: a translation unit must declare something
#endif
