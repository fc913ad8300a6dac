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

// The device index of host index i of the trainable floats (to_device), or the other way.
static size_t map_index(const vet_gpu_model *g, size_t i, int to_device) {
    const int r = g->r, rc = g->rc;
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!(g->targets & (1u << t))) continue;
        int out, in;
        vet_lora_dims(&g->cfg, t, &out, &in);
        const size_t per = (size_t)out * r, lo = g->offB[t], hi = lo + (size_t)g->L * per;
        if (i < lo || i >= hi) continue;
        const size_t base = lo + (i - lo) / per * per, k = (i - lo) % per;
        if (to_device) {  // k = o * r + j
            const int o = (int)(k / r), j = (int)(k % r), j0 = j / rc * rc, w = r - j0 < rc ? r - j0 : rc;
            return base + (size_t)j0 * out + (size_t)o * w + (j - j0);
        }
        // k = j0 * out + o * w + (j - j0): the block holds out * w floats from j0 * out
        const int j0 = (int)(k / ((size_t)rc * out)) * rc, w = r - j0 < rc ? r - j0 : rc;
        const size_t in_block = k - (size_t)j0 * out;
        return base + in_block / w * r + j0 + in_block % w;
    }
    return i;  // A, or not an adapter's float
}

size_t gpu_lora_host_index(const vet_gpu_model *g, size_t i) {
    return gpu_lora_chunked(g) && i < g->n_params ? map_index(g, i, 0) : i;
}

// dst := src moved between the layouts (n_params floats each).
static void move_layout(const vet_gpu_model *g, float *dst, const float *src, int to_device) {
    memcpy(dst, src, g->n_params * sizeof(float));  // A and everything else stay in place
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!(g->targets & (1u << t))) continue;
        int out, in;
        vet_lora_dims(&g->cfg, t, &out, &in);
        const size_t lo = g->offB[t], hi = lo + (size_t)g->L * out * g->r;
        for (size_t i = lo; i < hi; i++) {  // i in src's layout
            const size_t k = map_index(g, i, to_device);
            dst[k] = src[i];
        }
    }
}

int gpu_upload_trainable(vet_gpu_model *g, float *dev, const float *host, vet_err *err) {
    const size_t bytes = g->n_params * sizeof(float);
    if (!gpu_lora_chunked(g)) return vet_cuda_upload(g->ctx, dev, host, bytes, err);
    float *tmp = malloc(bytes);
    if (!tmp) return vet_err_kindf(err, VET_E_NOMEM, "out of host memory for the adapters' layout (%zu bytes)", bytes);
    move_layout(g, tmp, host, 1);
    int rc = vet_cuda_upload(g->ctx, dev, tmp, bytes, err);
    free(tmp);
    return rc;
}

int gpu_download_trainable(vet_gpu_model *g, float *host, const float *dev, vet_err *err) {
    const size_t bytes = g->n_params * sizeof(float);
    if (!gpu_lora_chunked(g)) return vet_cuda_download(g->ctx, host, dev, bytes, err);
    float *tmp = malloc(bytes);
    if (!tmp) return vet_err_kindf(err, VET_E_NOMEM, "out of host memory for the adapters' layout (%zu bytes)", bytes);
    int rc = vet_cuda_download(g->ctx, tmp, dev, bytes, err);
    if (rc == 0) move_layout(g, host, tmp, 0);
    free(tmp);
    return rc;
}

#endif
