// crossentropy.cu — softmax cross-entropy and its gradient in place, and the lm_head fused
// with it in chunks of rows so the (n,V) logits of a batch never exist whole (V = 128k makes
// them gigabytes).
#include "common.cuh"

#define THREADS 512

// One block per row of logits (n,V). As the CPU: max subtracted, exp stored, sum in double,
// loss = log(sum) - log(exp(z_t - max)), row := softmax - onehot(t). Target -1: loss 0, row 0.
__global__ void crossentropy_kernel(float *logits, float *loss, const int32_t *tgt, int V) {
    __shared__ float fpart[32];
    __shared__ double dpart[32];
    float *z = logits + (size_t)blockIdx.x * V;
    int t = tgt[blockIdx.x];  // the same for the whole block: branches below are uniform
    if (t < 0) {
        for (int j = threadIdx.x; j < V; j += blockDim.x) z[j] = 0.0f;
        if (threadIdx.x == 0) loss[blockIdx.x] = 0.0f;
        return;
    }
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, z[j]);
    mx = block_max(mx, fpart);
    double sum = 0;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float e = expf(z[j] - mx);
        z[j] = e;
        sum += e;
    }
    sum = block_sum(sum, dpart);  // its barriers also publish every z[j] written above
    float zt = z[t];
    __syncthreads();  // everyone has read z[t] before its owner rescales it
    if (threadIdx.x == 0) loss[blockIdx.x] = (float)(log(sum) - log((double)zt));
    float inv = (float)(1.0 / sum);
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float p = __fmul_rn(z[j], inv);  // _rn: not fused with the -1 below (the CPU rounds twice)
        z[j] = j == t ? p - 1.0f : p;
    }
}

extern "C" int crossentropy_softmax_backward_inplace_cuda(vet_cuda *ctx, float *logits, float *loss,
                                                          const int32_t *tgt, int n, int V,
                                                          vet_err *err) {
    CHECK_CTX(ctx, err);
    if (n <= 0) return 0;
    LAUNCH(crossentropy_kernel, n, THREADS, 0, ctx->stream, logits, loss, tgt, V);
    LAUNCH_CHECK("crossentropy", err);
    return 0;
}

extern "C" int lmhead_crossentropy_cuda(vet_cuda *ctx, float *loss, float *dx, float *dW,
                                        const float *x, const float *W, const int32_t *tgt, int n,
                                        int C, int V, float grad_scale, float *chunk,
                                        int chunk_rows, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (chunk_rows <= 0)
        return vet_errf(err, "%s:%d: lm_head chunk of %d rows", __FILE__, __LINE__, chunk_rows);
    // Ops on one stream run in order, so the next chunk's logits never overwrite a chunk
    // whose gradients are still being computed.
    for (int c0 = 0; c0 < n; c0 += chunk_rows) {
        int m = n - c0 < chunk_rows ? n - c0 : chunk_rows;
        const float *xc = x + (size_t)c0 * C;
        // logits (m,V) = x (m,C) · W^T (C,V)
        if (vet_cuda_sgemm(ctx, 0, 1, m, V, C, 1.0f, xc, C, W, C, 0.0f, chunk, V, err) < 0) return -1;
        if (crossentropy_softmax_backward_inplace_cuda(ctx, chunk, loss + c0, tgt + c0, m, V, err) < 0)
            return -1;
        // dx (m,C) = s * dlogits (m,V) · W (V,C)
        if (dx && vet_cuda_sgemm(ctx, 0, 0, m, C, V, grad_scale, chunk, V, W, C, 0.0f,
                                 dx + (size_t)c0 * C, C, err) < 0)
            return -1;
        // dW (V,C) += s * dlogits^T (V,m) · x (m,C)
        if (dW && vet_cuda_sgemm(ctx, 1, 0, V, C, m, grad_scale, chunk, V, xc, C, 1.0f, dW, C, err) < 0)
            return -1;
    }
    return 0;
}
