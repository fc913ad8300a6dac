// ops.h — the model's building blocks on the CPU, as forward/backward pairs (llm.c style).
//
// x_forward(out, ..., inp, weights, dims) computes one layer; x_backward(dinp, dweight, dout, ...)
// ADDS (+=) the gradients into dinp / dweight, so several uses of one tensor accumulate. A NULL
// gradient pointer means "not wanted" and that gradient is not computed at all (frozen weights
// cost nothing). N is the number of positions (B*T flattened), shapes are row-major.
//
// Threads: loops over independent outputs use OpenMP; matmuls go through cblas_sgemm. Every
// reduction runs in a fixed order, so results are bit-identical for a given thread count.
#ifndef VET_OPS_H
#define VET_OPS_H

#include <stddef.h>
#include <stdint.h>

// Loops over fewer elements than this run on one thread: waking the team costs more than
// the work, and on a busy machine a spinning team can cost far more (tiny test models).
#define VET_PAR_MIN 32768

// --- embedding ---------------------------------------------------------------------------
// out (N,C) = embed[tokens[n]] with embed (V,C)
void embedding_forward(float *out, const int32_t *tokens, const float *embed, int N, int C);
// dembed (V,C) += dout rows scattered to their tokens
void embedding_backward(float *dembed, const float *dout, const int32_t *tokens, int N, int C);

// --- RMSNorm (HF LlamaRMSNorm: fp32, x * rsqrt(mean(x^2) + eps) * w) -----------------------
// out (N,C), rstd (N) kept for backward, inp (N,C), weight (C)
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C,
                     float eps);
// dinp (N,C) +=, dweight (C) += (NULL: skip), from dout (N,C)
void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, const float *rstd, int N, int C);

// --- GEMM: C (M,N) = alpha * op(A) · op(B) + beta * C, row-major, op = transpose when asked.
// cblas_sgemm split over the OpenMP threads (OpenBLAS itself runs single-threaded).
void vet_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

// --- linear layer: out = inp · W^T + bias (torch.nn.Linear) -------------------------------
// out (N,OC), inp (N,C), weight (OC,C), bias (OC) or NULL. out is overwritten.
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                    int C, int OC);
// dinp (N,C) += dout · W; dweight (OC,C) += dout^T · inp; dbias (OC) += column sums of dout.
// Each of dinp, dweight, dbias may be NULL and is then not computed.
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC);

// --- rotary position embedding (HF rotate_half: dimension i pairs with i + hd/2) ----------
typedef struct {
    int type;                 // 0 none (default), 1 llama3, 2 per-frequency factors
    float factor, low_freq_factor, high_freq_factor;
    int original_max_pos;     // original_max_position_embeddings
    const float *freq_factors;   // type 2: (hd/2) divisors, llama.cpp's rope_freqs
} rope_scaling;
// inv_freq (hd/2) exactly as transformers computes it (fp32, with llama3 scaling if asked);
// type 2 divides theta^(-2i/hd) by freq_factors[i], as llama.cpp does.
void rope_inv_freq(float *inv_freq, int hd, float theta, const rope_scaling *scaling);
// cos, sin (max_pos, hd/2): angle = pos * inv_freq[i] in fp32, as HF does.
void rope_tables(float *cos_t, float *sin_t, int max_pos, int hd, const float *inv_freq);
// x (N, nh, hd) rotated in place with the angle of each row's position pos[n] (< max_pos).
void rope_forward(float *x, const int32_t *pos, const float *cos_t, const float *sin_t, int N,
                  int nh, int hd);
// dx (N, nh, hd): gradient of the rotated x in, gradient of x before rotation out (in place).
void rope_backward(float *dx, const int32_t *pos, const float *cos_t, const float *sin_t, int N,
                   int nh, int hd);

// --- causal self-attention over packed rows, with GQA ------------------------------------
// q (B,T,H,hd), k, v (B,T,KVH,hd); seg (B,T) sample of each position, -1 = padding.
// Query i sees key j iff seg[i] == seg[j] != -1 and j <= i (samples are contiguous in a row).
// out (B,T,H,hd); lse (B,T,H) the log-sum-exp of each query's scaled scores, kept so backward
// recomputes the probabilities instead of storing (T,T) per head. Padding queries give 0.
void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                       const int32_t *seg, int B, int T, int H, int KVH, int hd);
// dq (B,T,H,hd) +=, dk, dv (B,T,KVH,hd) +=, from dout (B,T,H,hd) and the forward's out, lse.
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                        const float *k, const float *v, const float *out, const float *lse,
                        const int32_t *seg, int B, int T, int H, int KVH, int hd);

// The same attention with the tensor-core kernels' arithmetic (kernels/attention_tc.cu), so
// the stand-in and the GPU parity test have the kernels' numbers to compare with: q, k, v and
// dout are rounded to bf16 (RN) where the kernels load them; scores and every product sum in
// fp32 or wider; the probabilities (and the score gradients) are rounded to bf16 before they
// multiply v (dout, q, k). The forward's online softmax runs over key tiles of `tile` keys
// starting at the first key the query block of `tile` queries sees, as the kernel's (its tile:
// kernels/ops_cuda.h's VET_ATTN_TC_TILE), because a probability is rounded against the running
// maximum of its tile; tile <= 64. Same shapes, mask and outputs as attention_forward / _backward.
void attention_forward_bf16(float *out, float *lse, const float *q, const float *k, const float *v,
                            const int32_t *seg, int B, int T, int H, int KVH, int hd, int tile);
void attention_backward_bf16(float *dq, float *dk, float *dv, const float *dout, const float *q,
                             const float *k, const float *v, const float *out, const float *lse,
                             const int32_t *seg, int B, int T, int H, int KVH, int hd);

// Inference over one sequence with a cache: n new queries q (n,H,hd) at positions p0..p0+n-1
// against keys/values kc, vc (p0+n, KVH, hd) (the new ones already appended); out (n,H,hd).
void attention_cached_forward(float *out, const float *q, const float *kc, const float *vc,
                              int n, int p0, int H, int KVH, int hd);

// --- SwiGLU: out = silu(gate) * up ---------------------------------------------------------
// out, gate, up (N,F); out may alias nothing.
void swiglu_forward(float *out, const float *gate, const float *up, size_t n);
// dgate, dup (N,F) += (both required)
void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, size_t n);
// The same gradients written (=) instead of added: no zeroing pass over dgate, dup first.
void swiglu_backward_set(float *dgate, float *dup, const float *dout, const float *gate,
                         const float *up, size_t n);

// --- residual add ---------------------------------------------------------------------------
void add_inplace(float *x, const float *y, size_t n);  // x += y
void scale_inplace(float *x, float s, size_t n);       // x *= s

// --- cross-entropy over logits ------------------------------------------------------------
// For n rows of logits (n,V) with targets tgt (n): loss[i] = logsumexp(row) - row[tgt],
// and in place, row becomes softmax(row) - onehot(tgt) (the gradient of loss[i]); a row with
// target -1 gets loss 0 and gradient 0. Numerically stable (max subtracted).
void crossentropy_softmax_backward_inplace(float *logits, float *loss, const int32_t *tgt, int n,
                                           int V);
// The same with label smoothing eps (torch's cross_entropy(label_smoothing=eps), transformers'
// label_smoothing_factor): the target distribution is (1-eps)·onehot + eps/V, so
// loss[i] = (1-eps)·(lse - row[tgt]) + eps·(lse - mean(row)) and the row becomes
// softmax(row) - (1-eps)·onehot(tgt) - eps/V. eps == 0 is the function above, bit for bit.
void crossentropy_smoothed_softmax_backward_inplace(float *logits, float *loss, const int32_t *tgt,
                                                    int n, int V, float eps);

// --- dropout (inverted, as torch.nn.Dropout) ------------------------------------------------
// out (N,C) = inp * mask / (1-p), element (n, c) kept by vet_dropout_keep4(seed, row0 + n, c / 4,
// ceil(p * 2^24)) (base/philox.h: counter-based, so reproducible for any thread count, and the
// CUDA kernel's masks bit for bit). p == 0 copies. Row n's mask is keyed by row0 + n: the batch's first row's index in a
// bigger batch (a rank's share of a data-parallel micro-batch: vet_batch.row0; else 0), so
// the rows of a slice at row0 get the masks of those rows of the whole.
void dropout_forward(float *out, const float *inp, float p, uint64_t seed, int64_t row0, int N, int C);
// dinp (N,C) += dout * mask / (1-p), the same mask regenerated from (seed, row0).
void dropout_backward(float *dinp, const float *dout, float p, uint64_t seed, int64_t row0, int N, int C);

// --- AdamW, as torch.optim.AdamW (decoupled weight decay, bias correction) ----------------
// step counts from 1. p -= lr*wd*p, then m,v moments and p -= lr * mhat / (sqrt(vhat) + eps).
// The gradient used is g * gscale, one rounded multiply: clipping and fp16's unscale ride in
// the step (the same bits as scale_inplace(g, gscale) before it; 1 leaves g as it is).
void adamw_update(float *p, const float *g, float gscale, float *m, float *v, size_t n, float lr,
                  float beta1, float beta2, float eps, float wd, int step);

// --- threads ---------------------------------------------------------------------------------
void vet_set_threads(int n);  // OpenMP threads (0: OMP_NUM_THREADS, else all cores); OpenBLAS single; also in model.h
int vet_get_threads(void);
// Puts OpenBLAS in single-threaded mode once (vet_set_threads does it too); the ops call it
// from the main thread before any GEMM, so a program that never sets threads is safe.
void vet_blas_single_threaded(void);
// The element-wise kernels' AVX2 + FMA paths (ops_simd.c) are taken when the CPU has them,
// checked at run time; they give the scalar loops' results bit for bit. vet_ops_simd(0) forces
// the scalar loops (tests, benchmarks), vet_ops_simd(1) restores the default.
void vet_ops_simd(int on);

#endif
