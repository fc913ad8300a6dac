// gpu_lora_layout.c — where the GPU model keeps an adapter of rank over 32 (see gpu_internal.h's
// rc): the host's layout (lib/model/lora.c: per projection and layer, A (r,in) then B (out,r),
// PEFT's) and the device's, and the transfers between them.
//
// vet's adapter kernels (kernels/lora.cu, lora_mma.cu) keep a rank's values in registers, so
// they take ranks up to VET_LORA_FUSED_MAX_R. An adapter of rank r over that runs as
// ceil(r / rc) adapters of rank <= rc side by side (gpu_train.c's chunk_of): A's rows
// [j0, j0 + w) are its block already (contiguous), and the device stores B's columns [j0, j0 + w)
// as their own (out, w) matrix right after the block before, so that each block is a whole
// matrix to the kernels: B element (o, j) of the host's (out, r) matrix at j0 * out + o * w +
// (j - j0) of the same span. The gradients and both AdamW moments use the same layout (AdamW is
// element by element); everything that crosses to or from the host goes through here.
#include "kernels/host/gpu_model.h"

#ifdef VET_CUDA
#include <stdlib.h>
#include <string.h>

#include "kernels/host/gpu_internal.h"
#include "model/lora.h"

int gpu_lora_chunked(const vet_gpu_model *g) { return !g->full && g->has_lora && g->rc < g->r; }

// The host index of device index i of the trainable floats: inside a B span (one layer's
// (out, r) matrix at base), k = j0 * out + o * w + (j - j0) holds element (o, j).
size_t gpu_lora_host_index(const vet_gpu_model *g, size_t i) {
    if (!gpu_lora_chunked(g) || i >= g->n_params) return i;
    const int r = g->r, rc = g->rc;
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!(g->targets & (1u << t))) continue;
        int out, in;
        vet_lora_dims(&g->cfg, t, &out, &in);
        const size_t per = (size_t)out * r, lo = g->offB[t], hi = lo + (size_t)g->L * per;
        if (i < lo || i >= hi) continue;
        const size_t base = lo + (i - lo) / per * per, k = (i - lo) % per;
        const int j0 = (int)(k / ((size_t)rc * out)) * rc, w = r - j0 < rc ? r - j0 : rc;
        const size_t in_block = k - (size_t)j0 * out;  // the block holds out * w floats from j0 * out
        return base + in_block / w * r + j0 + in_block % w;
    }
    return i;  // A's floats stay where they are
}

// One B matrix (out, r) from the host's layout into the blocked one (to_blocks), or back.
static void reblock(float *dst, const float *src, int out, int r, int rc, int to_blocks) {
    for (int j0 = 0; j0 < r; j0 += rc) {
        const int w = r - j0 < rc ? r - j0 : rc;
        for (int o = 0; o < out; o++) {
            const size_t h = (size_t)o * r + j0, b = (size_t)j0 * out + (size_t)o * w;
            if (to_blocks) memcpy(dst + b, src + h, w * sizeof(float));
            else memcpy(dst + h, src + b, w * sizeof(float));
        }
    }
}

// The n_params trainable floats between host and device (up: host -> dev): A's spans as they
// are, each layer's B through a temporary of one matrix in the other layout. The spans cover
// [0, n_lora) target by target (gpu_set_dims: A then B of each).
static int move(vet_gpu_model *g, float *dev, float *host, int up, vet_err *err) {
    const size_t bytes = g->n_params * sizeof(float);
    if (!gpu_lora_chunked(g))
        return up ? vet_cuda_upload(g->ctx, dev, host, bytes, err) : vet_cuda_download(g->ctx, host, dev, bytes, err);
    int rc = 0;
    for (int t = 0; t < VET_LORA_N_TARGETS && rc == 0; t++) {
        if (!(g->targets & (1u << t))) continue;
        int out, in;
        vet_lora_dims(&g->cfg, t, &out, &in);
        const size_t na = (size_t)g->L * g->r * in, per = (size_t)out * g->r;
        float *da = dev + g->offA[t], *ha = host + g->offA[t];
        rc = up ? vet_cuda_upload(g->ctx, da, ha, na * sizeof(float), err)
                : vet_cuda_download(g->ctx, ha, da, na * sizeof(float), err);
        float *tmp = rc == 0 ? malloc(per * sizeof(float)) : NULL;
        if (rc == 0 && !tmp) rc = vet_err_kindf(err, VET_E_NOMEM, "out of host memory for an adapter's layout");
        for (int l = 0; l < g->L && rc == 0; l++) {
            float *d = dev + g->offB[t] + l * per, *h = host + g->offB[t] + l * per;
            if (up) {
                reblock(tmp, h, out, g->r, g->rc, 1);
                rc = vet_cuda_upload(g->ctx, d, tmp, per * sizeof(float), err);
            } else if ((rc = vet_cuda_download(g->ctx, tmp, d, per * sizeof(float), err)) == 0) {
                reblock(h, tmp, out, g->r, g->rc, 0);
            }
        }
        free(tmp);
    }
    return rc;
}

int gpu_upload_trainable(vet_gpu_model *g, float *dev, const float *host, vet_err *err) {
    return move(g, dev, (float *)host, 1, err);  // up: host is only read
}

int gpu_download_trainable(vet_gpu_model *g, float *host, const float *dev, vet_err *err) {
    return move(g, (float *)dev, host, 0, err);  // down: dev is only read
}

#endif
