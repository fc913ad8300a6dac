// ops_cuda.h — the CUDA backend's ops, callable from C (plain C header: no CUDA types).
//
// Every op has the same meaning, shapes and argument order as its CPU twin in lib/model/ops.h,
// with a context first and a vet_err last: x_forward_cuda(ctx, out, ..., err). All tensor
// pointers are DEVICE pointers (from vet_cuda_malloc); sizes and scalars are host values.
// Backward ops ADD (+=) into their gradients; a NULL gradient is not computed.
//
// Ops are queued on the context's stream and return at once: 0 when the launch was accepted,
// -1 with err filled otherwise (a bad argument, a failed launch, or an error left over from an
// earlier asynchronous op). vet_cuda_sync waits for the queue and reports what went wrong in
// it. Nothing here prints or exits.
//
// Precision: fp32 everywhere unless a name says _bf16. fp32 GEMMs run in true fp32 (TF32 is
// never enabled), so results agree with the CPU to ~1e-6 relative. bf16 ops read bf16
// storage and accumulate in fp32.
//
// Built only when nvcc is present (VET_CUDA=1). kernels/host/device.h says whether a GPU is usable.
#ifndef VET_OPS_CUDA_H
#define VET_OPS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {  // err.h has no guard of its own: vet_errf must keep its C name
#endif
#include "base/err.h"
#include "model/quant.h"  // the packed decode kernel's layout (VET_QROWS_*), its CPU replay's

// --- devices, context, buffers --------------------------------------------------------------
// Number of CUDA devices into *count; -1 with the reason in err when the runtime cannot talk
// to a driver or a device (no GPU, no driver, driver too old). Never aborts.
int vet_cuda_device_count(int *count, vet_err *err);
// "NVIDIA H200 (sm_90, 139.8 GiB)" for device dev, into name (n bytes).
int vet_cuda_device_name(int dev, char *name, size_t n, vet_err *err);

// A context: the device, one stream, and the cuBLAS handle every GEMM uses (opaque).
typedef struct vet_cuda vet_cuda;
vet_cuda *vet_cuda_new(int dev, vet_err *err);
void vet_cuda_free(vet_cuda *ctx);
// Loads cuBLAS (kernels/cublas.cu: dlopen, on first use, so that a program that never opens a
// device never maps it); vet_cuda_new calls it. 0, or -1 with the reason when the library or
// one of its functions is missing. The stand-in has nothing to load.
int vet_cublas_load(vet_err *err);
// Waits for every op queued on ctx; reports the first asynchronous error.
int vet_cuda_sync(vet_cuda *ctx, vet_err *err);
// Free and total memory of ctx's device in bytes (cudaMemGetInfo): what a model may still
// allocate there, for a memory plan's check before anything is allocated.
int vet_cuda_mem_info(vet_cuda *ctx, size_t *free_bytes, size_t *total_bytes, vet_err *err);

// Device memory. vet_cuda_malloc gives zeroed memory; vet_cuda_mem_free(NULL) is a no-op.
int vet_cuda_malloc(void **ptr, size_t bytes, vet_err *err);
void vet_cuda_mem_free(void *ptr);
// Marks `bytes` at p, inside one allocation, as a gap that no op may touch (the padding after a
// buffer carved from a model's one allocation): where device memory is host memory under ASan
// (the emulated device, the stand-in), an access there is a report; on a GPU it does nothing.
void vet_cuda_guard(void *p, size_t bytes);
// Copies on ctx's stream; they complete before the call returns (host memory may be pageable).
int vet_cuda_upload(vet_cuda *ctx, void *dst_dev, const void *src_host, size_t bytes, vet_err *err);
int vet_cuda_download(vet_cuda *ctx, void *dst_host, const void *src_dev, size_t bytes, vet_err *err);
int vet_cuda_memset0(vet_cuda *ctx, void *dst_dev, size_t bytes, vet_err *err);
// Device to device, queued on ctx's stream (ordered with the ops around it, no wait).
int vet_cuda_copy(vet_cuda *ctx, void *dst_dev, const void *src_dev, size_t bytes, vet_err *err);
// Page-locked host memory (cudaHostAlloc / cudaFreeHost): the device copies into it by DMA,
// without the driver's staging copy through pageable memory, and asynchronously.
// vet_cuda_host_free(NULL) is a no-op.
int vet_cuda_host_alloc(void **ptr, size_t bytes, vet_err *err);
void vet_cuda_host_free(void *ptr);
// Queues a device-to-host copy on ctx's stream and returns at once; dst_host must be
// vet_cuda_host_alloc memory, complete after vet_cuda_sync.
int vet_cuda_download_async(vet_cuda *ctx, void *dst_host, const void *src_dev, size_t bytes, vet_err *err);

// The context's stream as a cudaStream_t, for a library that queues its own work on it (NCCL:
// kernels/host/gpu_collective.c). NULL for the CPU stand-in.
void *vet_cuda_stream(vet_cuda *ctx);

// --- timing marks on the stream (kernels/context.cu) -----------------------------------------
// A timer of n marks, each a CUDA event with timing on. vet_cuda_timer_mark queues mark i
// (0 <= i < n) on ctx's stream: it takes its timestamp when the device reaches it, after the
// work queued before it. vet_cuda_timer_ms waits for mark b and gives the milliseconds of
// the device's clock between marks a and b (both queued, a first). A mark may be queued
// again once its time has been read. The stand-in takes the wall clock at the call (its ops
// are done when they return).
typedef struct vet_cuda_timer vet_cuda_timer;
vet_cuda_timer *vet_cuda_timer_new(vet_cuda *ctx, int n, vet_err *err);
int vet_cuda_timer_mark(vet_cuda_timer *t, int i, vet_err *err);
int vet_cuda_timer_ms(vet_cuda_timer *t, int a, int b, float *ms, vet_err *err);
void vet_cuda_timer_free(vet_cuda_timer *t);

// The element-wise and row kernels a training step runs on every layer (the conversions to bf16
// and fp16, SwiGLU's 16-bit passes, the residual add, RMSNorm's fused forward and its dx, RoPE)
// take 8 elements (RoPE 4 pairs) a thread in 16-byte accesses where the pointers and widths
// allow (kernels/wide_io.cuh), the same bits as one a thread. For the parity test, which checks
// and times both, and the diagnostic VET_GPU_WIDE=0 (a process-wide setting): 0 makes them take
// one element a thread everywhere, 1 (the default) as above.
void elementwise_wide(int on);

// --- bf16 storage ---------------------------------------------------------------------------
// bf16 values are uint16_t bit patterns (lib/base/half.h's layout); rounding is to nearest even,
// as vet_f32_to_bf16 and PyTorch do.
int f32_to_bf16_cuda(vet_cuda *ctx, uint16_t *out, const float *inp, size_t n, vet_err *err);
int bf16_to_f32_cuda(vet_cuda *ctx, float *out, const uint16_t *inp, size_t n, vet_err *err);

// --- embedding ------------------------------------------------------------------------------
// out (N,C) = embed[tokens[n]], embed (V,C). Tokens must lie in [0,V) (not checked on device).
int embedding_forward_cuda(vet_cuda *ctx, float *out, const int32_t *tokens, const float *embed,
                           int N, int C, vet_err *err);
// The same with a bf16 table (V,C): rows widened to fp32 exactly.
int embedding_forward_bf16_cuda(vet_cuda *ctx, float *out, const int32_t *tokens,
                                const uint16_t *embed, int N, int C, vet_err *err);
// dembed (V,C) += dout rows scattered to their tokens (deterministic: no atomics).
int embedding_backward_cuda(vet_cuda *ctx, float *dembed, const float *dout,
                            const int32_t *tokens, int N, int C, vet_err *err);

// --- RMSNorm --------------------------------------------------------------------------------
// out (N,C) = w * (x * rstd), rstd (N) kept for backward.
int rmsnorm_forward_cuda(vet_cuda *ctx, float *out, float *rstd, const float *inp,
                         const float *weight, int N, int C, float eps, vet_err *err);
// dinp (N,C) += ; dweight (C) += (NULL: skip).
int rmsnorm_backward_cuda(vet_cuda *ctx, float *dinp, float *dweight, const float *dout,
                          const float *inp, const float *weight, const float *rstd, int N, int C,
                          vet_err *err);

// --- GEMM and the linear layer --------------------------------------------------------------
// C (M,N) = alpha * op(A) · op(B) + beta * C, row-major, as vet_sgemm (cuBLAS, fp32 compute).
int vet_cuda_sgemm(vet_cuda *ctx, int transA, int transB, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C,
                   int ldc, vet_err *err);
// The same with bf16 A and B, fp32 C and fp32 accumulation.
int vet_cuda_gemm_bf16(vet_cuda *ctx, int transA, int transB, int M, int N, int K, float alpha,
                       const uint16_t *A, int lda, const uint16_t *B, int ldb, float beta,
                       float *C, int ldc, vet_err *err);
// C = alpha * op(A) · op(B) with A, B and C in fmt (VET_CUDA_BF16 / VET_CUDA_F16, declared
// below), fp32 accumulation, the sums rounded to fmt as C is written (beta 0): a 16-bit
// model's linear layer, for outputs that only 16-bit readers want (gate and up in the 16-bit
// mode). Another fmt is an error.
int vet_cuda_gemm_half_out(vet_cuda *ctx, int fmt, int transA, int transB, int M, int N, int K, float alpha,
                           const uint16_t *A, int lda, const uint16_t *B, int ldb, uint16_t *C, int ldc,
                           vet_err *err);
// A 16-bit model's linear layer: out16 (N,OC) = inp16 (N,C) · W^T (OC,C) + bias (OC, or NULL),
// in fmt, the bias rounded to fmt first (as a model cast to 16 bits holds it), the product and
// the sum in fp32, rounded once as out16 is written (the rows filled with the bias, then
// vet_cuda_gemm_half_out's GEMM with beta 1; without a bias that GEMM alone): the 16-bit mode's
// q, k and v of a model with biases (Qwen2). Another fmt is an error.
int matmul_forward_half_out_cuda(vet_cuda *ctx, int fmt, uint16_t *out16, const uint16_t *inp16,
                                 const uint16_t *weight, const float *bias, int N, int C, int OC, vet_err *err);
// out (N,OC) = inp (N,C) · W^T (OC,C) + bias (OC, or NULL). out is overwritten.
int matmul_forward_cuda(vet_cuda *ctx, float *out, const float *inp, const float *weight,
                        const float *bias, int N, int C, int OC, vet_err *err);
// dinp (N,C) += dout·W; dweight (OC,C) += dout^T·inp; dbias (OC) += column sums. Each may be NULL.
int matmul_backward_cuda(vet_cuda *ctx, float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp, const float *weight, int N, int C,
                         int OC, vet_err *err);
// bf16 storage: inp (N,C) and W (OC,C) bf16, out fp32; bias fp32 or NULL.
int matmul_forward_bf16_cuda(vet_cuda *ctx, float *out, const uint16_t *inp,
                             const uint16_t *weight, const float *bias, int N, int C, int OC,
                             vet_err *err);
// dinp (N,C) += dout·W, dweight (OC,C) += dout^T·inp in fp32, from bf16 dout, inp, W.
int matmul_backward_bf16_cuda(vet_cuda *ctx, float *dinp, float *dweight, const uint16_t *dout,
                              const uint16_t *inp, const uint16_t *weight, int N, int C, int OC,
                              vet_err *err);

// --- rotary position embedding (rotate_half) ------------------------------------------------
// x (N,nh,hd) rotated in place by the angle of pos[n]; cos_t, sin_t (max_pos, hd/2) as made by
// rope_tables on the host and uploaded once.
int rope_forward_cuda(vet_cuda *ctx, float *x, const int32_t *pos, const float *cos_t,
                      const float *sin_t, int N, int nh, int hd, vet_err *err);
int rope_backward_cuda(vet_cuda *ctx, float *dx, const int32_t *pos, const float *cos_t,
                       const float *sin_t, int N, int nh, int hd, vet_err *err);
// The forward's result rounded to bf16 into out16 (N,nh,hd), x unchanged: the same bits as
// rope_forward_cuda then f32_to_bf16_cuda, in one pass (training's q and k for the tensor-core
// attention, which reads them in bf16).
int rope_forward_bf16_cuda(vet_cuda *ctx, uint16_t *out16, const float *x, const int32_t *pos,
                           const float *cos_t, const float *sin_t, int N, int nh, int hd, vet_err *err);
// x16 (N,nh,hd) in bf16 rotated in place: each value widened, the forward's fp32 arithmetic, the
// result rounded: the bits of rope_forward_bf16_cuda on the widened values (training's q and k
// when their projections write bf16).
int rope_forward_inplace_bf16_cuda(vet_cuda *ctx, uint16_t *x16, const int32_t *pos, const float *cos_t,
                                   const float *sin_t, int N, int nh, int hd, vet_err *err);
// The backward's the same way: rope_backward_cuda then f32_to_bf16_cuda, dx unchanged (the
// gradients of q and k in the bf16 mode, where only bf16 GEMMs read them).
int rope_backward_bf16_cuda(vet_cuda *ctx, uint16_t *out16, const float *dx, const int32_t *pos,
                            const float *cos_t, const float *sin_t, int N, int nh, int hd, vet_err *err);

// --- causal attention over packed rows, GQA (flash-attention style) --------------------------
// Shapes and mask as attention_forward: q (B,T,H,hd), k, v (B,T,KVH,hd), seg (B,T) with -1 =
// padding; out (B,T,H,hd), lse (B,T,H). hd even and <= 128, H a multiple of KVH.
// scratch: (B*T*2 + B*T*H) int32/floats of device memory the caller owns, at least
// attention_scratch_bytes(B,T,H); no (T,T) matrix is ever formed.
size_t attention_scratch_bytes(int B, int T, int H);
int attention_forward_cuda(vet_cuda *ctx, float *out, float *lse, const float *q, const float *k,
                           const float *v, const int32_t *seg, int B, int T, int H, int KVH,
                           int hd, void *scratch, vet_err *err);
// dq (B,T,H,hd), dk, dv (B,T,KVH,hd): += with accumulate, else = (padding rows 0): no zeroing
// pass before (deterministic: each output owned by one warp).
int attention_backward_cuda(vet_cuda *ctx, float *dq, float *dk, float *dv, const float *dout,
                            const float *q, const float *k, const float *v, const float *out,
                            const float *lse, const int32_t *seg, int B, int T, int H, int KVH,
                            int hd, int accumulate, void *scratch, vet_err *err);
// The same on tensor cores (kernels/attention_tc.cu): q, k, v given in bf16 (training stores
// them so), and dout both in fp32 (dout: D = rowsum(dout * out) from it) and rounded to bf16
// (dout16, which the products read; the caller rounds it, as f32_to_bf16_cuda), fp32
// accumulation, probabilities and score gradients rounded to bf16 before they multiply;
// VET_ATTN_TC_TILE queries a block and keys a tile. lib/model/ops.h's
// attention_forward_bf16 (given this tile, and q, k, v widened from bf16) / _backward_bf16
// compute these values on the CPU. Same scratch and determinism as the fp32 kernels above.
// The output goes to out (fp32) or out16 (bf16, 4-byte aligned: the fp32 output rounded to
// nearest even, as f32_to_bf16_cuda; what training's o projection reads), exactly one of them;
// the backward takes the one the forward wrote, and with out16 computes D from its widened
// values (as a bf16 autograd's attention backward, whose saved output is bf16).
#define VET_ATTN_TC_TILE 64
int attention_forward_bf16_cuda(vet_cuda *ctx, float *out, uint16_t *out16, float *lse, const uint16_t *q,
                                const uint16_t *k, const uint16_t *v, const int32_t *seg, int B, int T, int H,
                                int KVH, int hd, void *scratch, vet_err *err);
int attention_backward_bf16_cuda(vet_cuda *ctx, float *dq, float *dk, float *dv, const float *dout,
                                 const uint16_t *dout16, const uint16_t *q, const uint16_t *k, const uint16_t *v,
                                 const float *out, const uint16_t *out16, const float *lse, const int32_t *seg, int B,
                                 int T, int H, int KVH, int hd, int accumulate, void *scratch, vet_err *err);
// Heads up to 128 wide run on register-resident mma.sync kernels (attention_mma.cu), wider ones
// on WMMA kernels (attention_tc.cu): the same numbers. For the parity test, which checks each,
// and the diagnostic VET_GPU_ATTENTION (a process-wide setting): variant 0 the default (tiles
// double-buffered by asynchronous copies where head_dim is a multiple of 8), 1 the mma kernels
// loading their tiles one element at a time (their path for other widths), 2 the WMMA kernels at
// any width, 3 the mma kernels of the first GPU run (transposed tiles in shared memory, no
// ldmatrix, each tile loaded then computed), 4 the ldmatrix kernels loading each tile then
// computing (what the default was before the asynchronous copies), 5 cuDNN's fused attention
// (kernels/attention_cudnn.h: lse then holds cuDNN's statistics, the output comes from bf16, the
// gradients within bf16's rounding and not deterministic; an error where cuDNN is missing).
void attention_tc_variant(int variant);
// 1 when this build has cuDNN's attention (variant 5: built with cuDNN's frontend headers, `make
// cudnn-frontend`), 0 when that variant only says it was not built. (The stand-ins' CPU ops stand
// for cuDNN's as for every kernel: 1.)
int attention_cudnn_built(void);

// --- SwiGLU, residual -----------------------------------------------------------------------
int swiglu_forward_cuda(vet_cuda *ctx, float *out, const float *gate, const float *up, size_t n,
                        vet_err *err);
int add_inplace_cuda(vet_cuda *ctx, float *x, const float *y, size_t n, vet_err *err);
int scale_inplace_cuda(vet_cuda *ctx, float *x, float s, size_t n, vet_err *err);

// --- fused passes: one pass over the memory instead of two or three, the same bits as the ops
// above run one after another -----------------------------------------------------------------
// The 16-bit format of a second output: rounded to nearest even as f32_to_bf16_cuda /
// f32_to_f16_cuda round.
enum { VET_CUDA_BF16 = 1, VET_CUDA_F16 = 2 };
// 0 when fmt is one of them, else -1 with err naming the op (what) and the value.
static inline int vet_cuda_check_fmt16(int fmt, const char *what, vet_err *err) {
    if (fmt == VET_CUDA_BF16 || fmt == VET_CUDA_F16) return 0;
    return vet_errf(err, "%s: format %d is neither bf16 (%d) nor fp16 (%d)", what, fmt, VET_CUDA_BF16, VET_CUDA_F16);
}
// dgate, dup (N,F) = (not +=) swiglu_backward's gradients: no zeroing pass before (the CPU's
// swiglu_backward_set).
int swiglu_backward_set_cuda(vet_cuda *ctx, float *dgate, float *dup, const float *dout,
                             const float *gate, const float *up, size_t n, vet_err *err);
// swiglu_backward_set_cuda's dgate, dup rounded to fmt (VET_CUDA_BF16 / VET_CUDA_F16) and
// written in 16 bits, the bits its outputs' conversion would give: for douts that only 16-bit
// GEMMs read (no fp32 pass written and read back). Another fmt is an error.
int swiglu_backward_half_cuda(vet_cuda *ctx, uint16_t *dgate, uint16_t *dup, int fmt, const float *dout,
                              const float *gate, const float *up, size_t n, vet_err *err);
// swiglu_forward_half_cuda and swiglu_backward_half_cuda on gate and up stored in fmt (as the
// 16-bit mode keeps them when they carry no adapter: vet_cuda_gemm_half_out writes them),
// widened as they load: the bits of the fp32 entries on the widened values.
int swiglu_forward_in16_cuda(vet_cuda *ctx, float *out, uint16_t *out16, int fmt, const uint16_t *gate,
                             const uint16_t *up, size_t n, vet_err *err);
int swiglu_backward_in16_cuda(vet_cuda *ctx, uint16_t *dgate, uint16_t *dup, int fmt, const float *dout,
                              const uint16_t *gate, const uint16_t *up, size_t n, vet_err *err);
// silu(gate) * up into out (fp32; NULL: not kept) and out16 (rounded to fmt; NULL: not made).
int swiglu_forward_half_cuda(vet_cuda *ctx, float *out, uint16_t *out16, int fmt, const float *gate,
                             const float *up, size_t n, vet_err *err);
// rmsnorm_forward of x (N,C) into out (fp32; NULL: not kept), out16 (rounded to fmt; NULL: not
// made) and rstd (N); with res non-NULL, first x += res (a residual add, x written back) and
// the norm of the sum.
int rmsnorm_forward_fused_cuda(vet_cuda *ctx, float *out, uint16_t *out16, int fmt, float *rstd, float *x,
                               const float *res, const float *weight, int N, int C, float eps, vet_err *err);

// --- an adapter's products with its input dropout inside (kernels/lora.cu) --------------------
// x (N,C) an adapter's input, A (r,C), du (N,r); dropout(x) is dropout_forward_cuda's (the same
// masks and values, from seed and row0), never written out. 1 <= r <= VET_LORA_FUSED_MAX_R
// (otherwise the caller takes dropout_forward_cuda and the GEMMs); 0 <= p < 1 for the down
// product and dA (p = 0: no mask, the plain product on the same kernels, where cuBLAS's SGEMM
// gets a skinny shape), 0 < p < 1 for the input gradient (p = 0: cuBLAS, a well-shaped GEMM).
#define VET_LORA_FUSED_MAX_R 32
// u (N,r) = dropout(x) · A^T
int lora_down_dropout_cuda(vet_cuda *ctx, float *u, const float *x, const float *A, float p, uint64_t seed,
                           int64_t row0, int N, int C, int r, vet_err *err);
// For the parity test, which checks and times both (a process-wide setting): variant 0 the
// default kernel (no shared memory or barriers, several rows a warp, 16-byte loads), 1 the first
// kernel (A staged in shared memory 128 columns at a time, a row a warp): the same bits.
void lora_down_variant(int variant);
// dA (r,C) += du^T · dropout(x), the rows in lora_grad_a_slices(N, r) slices whose partial sums
// (scratch: lora_grad_a_scratch_floats(N, C, r) floats, at most N*C) are added in slice order.
static inline int lora_grad_a_slices(int N, int r) {
    int S = N / r;  // S * r <= N, so the partials fit an (N,C) buffer
    return S > 32 ? 32 : S > 1 ? S : 1;
}
static inline size_t lora_grad_a_scratch_floats(int N, int C, int r) {
    int S = lora_grad_a_slices(N, r);
    return S > 1 ? (size_t)S * r * C : 0;
}
int lora_grad_a_dropout_cuda(vet_cuda *ctx, float *dA, const float *du, const float *x, float p, uint64_t seed,
                             int64_t row0, int N, int C, int r, float *scratch, size_t scratch_floats, vet_err *err);
// dinp (N,C) += the mask / (1-p) * (du · A): dropout_backward_cuda of du·A.
int lora_grad_input_dropout_cuda(vet_cuda *ctx, float *dinp, const float *du, const float *A, float p,
                                 uint64_t seed, int64_t row0, int N, int C, int r, vet_err *err);
// y (N,out) += s · u (N,r) · B^T (B: out x r), 1 <= r <= VET_LORA_FUSED_MAX_R: the adapter's up
// product as a kernel of its own (a thread 4 columns of 32 rows, B's 4 rows in registers; y read
// and written once, 16 bytes at a time where aligned). Training runs it with VET_GPU_LORA_UP=vet
// (gpu_model.h's VET_GPU_LORA_UP_KERNEL); op_parity checks it against the CPU and times it beside
// cuBLAS's SGEMM (`lora cuBLAS up`), and the GPU bundle turns it on when it is the faster. Sums
// over the rank in order, then y + s·sum (fmaf).
int lora_up_cuda(vet_cuda *ctx, float *y, const float *u, const float *B, float s, int N, int out, int r,
                 vet_err *err);
// The same into y stored in fmt (VET_CUDA_BF16 / VET_CUDA_F16: gate's and up's outputs in the
// 16-bit mode, when adapters are on them): y widened, the same sum, rounded to fmt as written:
// the bits of lora_up_cuda on the widened y, then f32_to_bf16_cuda / f32_to_f16_cuda.
int lora_up16_cuda(vet_cuda *ctx, uint16_t *y, int fmt, const float *u, const float *B, float s, int N, int out,
                   int r, vet_err *err);
// The backward's two products through B (B: out x r), on lora_down_dropout's and
// lora_grad_a_dropout's kernels without the mask, where cuBLAS's SGEMM gets shapes it tiles
// poorly (n = 16 with k = 4096; m x n = 4096 x 16 with k = N): du (N,r) = s · dout (N,out) · B,
// sums in lora_down_dropout's order, then times s; dB (out,r) += s · dout^T · u (u: N x r), the
// rows in lora_grad_a_slices(N, r) slices as lora_grad_a_dropout (scratch:
// lora_grad_a_scratch_floats(N, out, r) floats), then dB + s · sum. 1 <= r <=
// VET_LORA_FUSED_MAX_R; training uses them with the fused products (VET_GPU_LORA_FUSED).
int lora_du_cuda(vet_cuda *ctx, float *du, const float *dout, const float *B, float s, int N, int out, int r,
                 vet_err *err);
int lora_grad_b_cuda(vet_cuda *ctx, float *dB, const float *dout, const float *u, float s, int N, int out, int r,
                     float *scratch, size_t scratch_floats, vet_err *err);
// The four products that read a long (N, width) operand, reading a 16-bit copy of it instead:
// x (lora_down_dropout16, lora_grad_a_dropout16) or dout (lora_du16, lora_grad_b16) in fmt
// (VET_CUDA_BF16 or VET_CUDA_F16), widened exactly as it loads. Each gives the bits of its fp32
// twin run on the widened values (op_parity checks it), for half the reads. What the 16-bit mode
// trains with: PEFT's fp32 adapter in a 16-bit model gets the 16-bit activation cast up, and
// the 16-bit gradient of the layer's output (gpu_train.c). Another fmt is an error.
int lora_down_dropout16_cuda(vet_cuda *ctx, float *u, const uint16_t *x, int fmt, const float *A, float p,
                             uint64_t seed, int64_t row0, int N, int C, int r, vet_err *err);
int lora_grad_a_dropout16_cuda(vet_cuda *ctx, float *dA, const float *du, const uint16_t *x, int fmt, float p,
                               uint64_t seed, int64_t row0, int N, int C, int r, float *scratch,
                               size_t scratch_floats, vet_err *err);
int lora_du16_cuda(vet_cuda *ctx, float *du, const uint16_t *dout, int fmt, const float *B, float s, int N, int out,
                   int r, vet_err *err);
int lora_grad_b16_cuda(vet_cuda *ctx, float *dB, const uint16_t *dout, int fmt, const float *u, float s, int N,
                       int out, int r, float *scratch, size_t scratch_floats, vet_err *err);
// The same four products on the tensor cores (kernels/lora_mma.cu: mma.sync, 16-bit operands,
// fp32 sums): what a 16-bit autocast PEFT computes, its adapter's matmuls on 16-bit casts of both
// operands. Every operand is rounded to fmt (VET_CUDA_BF16 or VET_CUDA_F16, x's format) as it is
// read (the kept value x / (1-p) after the mask, A and B from their fp32 masters, du and u),
// nothing is written in 16 bits; the outputs and their contracts (scaling, accumulation, the row
// slices and scratch) are the 16-bit entries'. Not the same bits as those: against a CPU product
// on the rounded operands only the order of the fp32 sums differs. 1 <= r <=
// VET_LORA_FUSED_MAX_R. Training uses them in the 16-bit modes (VET_GPU_LORA_MMA, docs/cuda.md).
int lora_down_mma_cuda(vet_cuda *ctx, float *u, const uint16_t *x, int fmt, const float *A, float p, uint64_t seed,
                       int64_t row0, int N, int C, int r, vet_err *err);
int lora_grad_a_mma_cuda(vet_cuda *ctx, float *dA, const float *du, const uint16_t *x, int fmt, float p,
                         uint64_t seed, int64_t row0, int N, int C, int r, float *scratch, size_t scratch_floats,
                         vet_err *err);
int lora_du_mma_cuda(vet_cuda *ctx, float *du, const uint16_t *dout, int fmt, const float *B, float s, int N, int out,
                     int r, vet_err *err);
int lora_grad_b_mma_cuda(vet_cuda *ctx, float *dB, const uint16_t *dout, int fmt, const float *u, float s, int N,
                         int out, int r, float *scratch, size_t scratch_floats, vet_err *err);

// --- dropout (kernels/dropout.cu; inverted, as torch.nn.Dropout) -----------------------------
// lib/model/ops.h's dropout_forward / dropout_backward with the same masks and values bit for bit:
// element (n, c) is kept by vet_dropout_keep4(seed, row0 + n, c / 4, ceil(p * 2^24))
// (lib/base/philox.h, Philox4x32-10; row0: the batch's vet_batch.row0, 0 but for a rank's share
// of a data-parallel batch); a kept element is scaled by 1/(1-p). p <= 0 is the identity. out
// may be inp (in place).
// out (N,C) = dropout(inp).
int dropout_forward_cuda(vet_cuda *ctx, float *out, const float *inp, float p, uint64_t seed, int64_t row0,
                         int N, int C, vet_err *err);
// dinp (N,C) += the forward's mask / (1-p) * dout.
int dropout_backward_cuda(vet_cuda *ctx, float *dinp, const float *dout, float p, uint64_t seed,
                          int64_t row0, int N, int C, vet_err *err);

// --- cross-entropy --------------------------------------------------------------------------
// As crossentropy_softmax_backward_inplace: logits (n,V) become softmax - onehot(tgt), loss (n);
// target -1: loss 0, row 0.
int crossentropy_softmax_backward_inplace_cuda(vet_cuda *ctx, float *logits, float *loss,
                                               const int32_t *tgt, int n, int V, vet_err *err);
// lm_head and cross-entropy fused in chunks of `chunk_rows` rows, so the (n,V) logits never
// exist whole: for each chunk, logits = x·W^T into `chunk` (chunk_rows, V), loss and
// dlogits in place, then
//   dx (n,C) = grad_scale * dlogits · W        (overwritten; NULL: skip)
//   dW (V,C) += grad_scale * dlogits^T · x     (NULL: skip)
// x (n,C), W (V,C), tgt (n), loss (n) per row.
int lmhead_crossentropy_cuda(vet_cuda *ctx, float *loss, float *dx, float *dW, const float *x,
                             const float *W, const int32_t *tgt, int n, int C, int V,
                             float grad_scale, float *chunk, int chunk_rows, vet_err *err);

// --- AdamW (torch.optim.AdamW, the same fp32 operations as adamw_update: bit-identical) ------
int adamw_update_cuda(vet_cuda *ctx, float *p, const float *g, float gscale, float *m, float *v,
                      size_t n, float lr, float beta1, float beta2, float eps, float wd, int step,
                      vet_err *err);

// --- the gradients' norm and finiteness (kernels/gradstats.cu) ------------------------------
// One pass over the gradient buffer for the optimizer step, so only 16 bytes reach the host:
//   out->norm      = sqrt(sum over i of (double)(g[i] * unscale)^2): vet_train_grad_norm's
//                    value (lib/train/backend.h), product rounded to float, squares in double;
//   out->first_bad = the least i with g[i] not finite (inf or nan), or n when all are finite.
// out is DEVICE memory (download it: sizeof(vet_cuda_grad_stats) bytes); scratch holds
// grad_stats_scratch_bytes() of device memory the caller owns. The sum is a deterministic
// two-pass reduction over a fixed grid (no atomics): the same bits on every run and every GPU,
// within ~1e-15 relative of the CPU's element-0-up sum (not its bits: another order).
typedef struct {
    double norm;
    uint64_t first_bad;
} vet_cuda_grad_stats;
size_t grad_stats_scratch_bytes(void);
int grad_stats_cuda(vet_cuda *ctx, vet_cuda_grad_stats *out, const float *g, size_t n,
                    float unscale, void *scratch, vet_err *err);

// --- decoding with a KV cache (kernels/decode.cu) --------------------------------------------
// A layer's cache holds n_slots sequences of up to max_len positions: cache (n_slots, max_len,
// KVH, hd), slot s's position p at row s * max_len + p. slots and pos are (n) device int32.
//
// cache rows (slots[i], pos[i]) = rows[i] for i < n: the new keys (or values) of a decode step,
// rows (n, KV) with KV = KVH*hd. Slots must be distinct and pos[i] < max_len (not checked on
// the device).
int kv_cache_write_cuda(vet_cuda *ctx, float *cache, const float *rows, const int32_t *slots,
                        const int32_t *pos, int n, int max_len, int KV, vet_err *err);
// The decode step's attention: query row i (q (n,H,hd)) of slot slots[i] at position pos[i]
// sees that slot's cache positions [0, pos[i]] (its own key already written there);
// out (n,H,hd) = softmax(q·K^T / sqrt(hd))·V per head, GQA (head h reads kv head h/(H/KVH)).
// hd even and <= 128, H a multiple of KVH. Each (row, head) is computed alone in a fixed
// order: a row's result does not depend on the other rows (deterministic, no atomics).
int attention_decode_cuda(vet_cuda *ctx, float *out, const float *q, const float *kcache,
                          const float *vcache, const int32_t *slots, const int32_t *pos, int n,
                          int max_len, int H, int KVH, int hd, vet_err *err);

// A 16-bit cache (the same layout, uint16_t elements): fmt VET_CUDA_KV_BF16 or VET_CUDA_KV_F16.
// The write rounds each fp32 value to fmt once (nearest even, as vet_f32_to_bf16 /
// vet_f32_to_f16); the attention widens the keys and values exactly and accumulates in fp32,
// so it equals attention_decode_cuda on a float cache holding the rounded values.
enum { VET_CUDA_KV_BF16 = VET_CUDA_BF16, VET_CUDA_KV_F16 = VET_CUDA_F16 };
int kv_cache_write16_cuda(vet_cuda *ctx, uint16_t *cache, const float *rows, const int32_t *slots,
                          const int32_t *pos, int n, int max_len, int KV, int fmt, vet_err *err);
int attention_decode16_cuda(vet_cuda *ctx, float *out, const float *q, const uint16_t *kcache,
                            const uint16_t *vcache, const int32_t *slots, const int32_t *pos, int n,
                            int max_len, int H, int KVH, int hd, int fmt, vet_err *err);

// Greedy decoding's choice on the device: out[i] = the id of row i's largest value, x (n,V); the
// lowest id wins a tie (lib/generate/decoder.c's argmax). Rows with NaNs: a NaN is never
// chosen over a number, which the CPU's sequential scan only guarantees after position 0.
int argmax_rows_cuda(vet_cuda *ctx, int32_t *out, const float *x, int n, int V, vet_err *err);
// The same over a subset: out[i] = the best of x[i][ids[k]] for k in [off[i], off[i+1]) (device
// arrays; ids ascending within a row, in [0, V), at least one): constrained greedy decoding's
// choice among the allowed ids, by the same rule (the lowest id wins a tie; a number beats a NaN).
int argmax_allowed_rows_cuda(vet_cuda *ctx, int32_t *out, const float *x, int n, int V, const int32_t *ids,
                             const int32_t *off, vet_err *err);

// --- quantized base weights (kernels/quant.cu; the formats of lib/model/quant.h) ------------------
// A weight matrix W (OC,C) stored quantized on the device:
//   VET_CUDA_Q_INT8  q: int8 (OC,C); scale: fp32 (OC), one per row:   W = q * scale[row]
//   VET_CUDA_Q_NF4   q: ceil(OC*C/2) bytes of 4-bit codes over the flattened row-major W,
//                    element 2j in the HIGH nibble of byte j, then the int8 absmax of each
//                    block of 64 elements (nb = ceil(OC*C/64) bytes); scale: fp32, the mean
//                    absmax, then one scale per 256 blocks (double quantization):
//                    absmax'[b] = aq[b] * scale[1 + b/256] + scale[0], W = nf4[code] * absmax'[i/64]
// The kinds equal lib/model/quant.h's vet_quant_kind values.
enum { VET_CUDA_Q_INT8 = 1, VET_CUDA_Q_NF4 = 2 };
typedef struct {
    int kind;            // VET_CUDA_Q_INT8 or VET_CUDA_Q_NF4
    const void *q;       // device
    const float *scale;  // device
} vet_cuda_qweight;

// out (OC,C) = W dequantized: exactly lib/model/quant.c's vet_dequant_int8 / vet_dequant_nf4_dq (one
// fp32 multiply per element, and nf4's absmax' as there); _bf16: that fp32 value rounded to bf16 (nearest even).
int dequant_cuda(vet_cuda *ctx, float *out, const vet_cuda_qweight *w, int OC, int C, vet_err *err);
int dequant_bf16_cuda(vet_cuda *ctx, uint16_t *out, const vet_cuda_qweight *w, int OC, int C,
                      vet_err *err);
// The linear layer on a quantized weight. NOT a fused kernel: W is dequantized into scratch
// first, then the GEMM of matmul_forward_bf16_cuda (inp16 given: scratch holds OC*C bf16) or
// of matmul_forward_cuda (inp16 NULL: scratch holds OC*C floats, inp is read) runs on it.
// out (N,OC) = inp·W^T + bias (OC, or NULL); out is overwritten.
int matmul_forward_q_cuda(vet_cuda *ctx, float *out, const float *inp, const uint16_t *inp16,
                          const vet_cuda_qweight *w, const float *bias, int N, int C, int OC,
                          void *scratch, vet_err *err);
// The decode step's linear layer: the same out for N <= VET_QROWS_MAX rows (model/quant.h; 8),
// reading the packed codes directly (no scratch, no dequantized matrix: a decode step is bound
// by the weight bytes it reads). inp16 given: the weights rounded to bf16 as the scratch path
// does in 16-bit mode, times those bf16 inputs; else fp32 weights times inp. fp32 sums in the
// order of lib/model/quant_rows.c's vet_quant_rows_forward, which it equals bit for bit.
// It takes 1 to VET_QROWS_MAX rows of a multiple of 8 columns, the codes and inputs aligned for
// its vector loads (matmul_rows_q_fits; anything else is refused: use matmul_forward_q).
int matmul_rows_q_cuda(vet_cuda *ctx, float *out, const float *inp, const uint16_t *inp16,
                       const vet_cuda_qweight *w, const float *bias, int N, int C, int OC, vet_err *err);
static inline int matmul_rows_q_fits(const vet_cuda_qweight *w, const float *inp, const uint16_t *inp16, int N,
                                     int C) {
    return N >= 1 && N <= VET_QROWS_MAX && C % VET_QROWS_GROUP == 0 &&
           (uintptr_t)w->q % (w->kind == VET_CUDA_Q_INT8 ? 8 : 4) == 0 &&
           (inp16 ? (uintptr_t)inp16 % 16 == 0 : (uintptr_t)inp % 16 == 0);
}
// The same for up to VET_QMMA_ROWS (64) rows with bf16 inputs (a decode step of a large batch) on
// the tensor cores, reading the packed codes: the numbers of matmul_forward_q's 16-bit path (each
// weight dequantized and rounded to bf16 as there, fp32 sums) in the order of mma.sync's sums
// (op_parity: within 1e-4 of the CPU's GEMM on those weights). matmul_rows_q_mma_fits says what
// it takes (a multiple of 8 columns, the codes and inputs aligned for its vector loads); anything
// else is refused: use matmul_forward_q.
#define VET_QMMA_ROWS 64
int matmul_rows_q_mma_cuda(vet_cuda *ctx, float *out, const uint16_t *inp16, const vet_cuda_qweight *w,
                           const float *bias, int N, int C, int OC, vet_err *err);
static inline int matmul_rows_q_mma_fits(const vet_cuda_qweight *w, const uint16_t *inp16, int N, int C) {
    return N >= 1 && N <= VET_QMMA_ROWS && C % VET_QROWS_GROUP == 0 && inp16 && (uintptr_t)inp16 % 16 == 0 &&
           (uintptr_t)w->q % (w->kind == VET_CUDA_Q_INT8 ? 8 : 4) == 0;
}
// The activation gradient only (a quantized base weight is frozen: LoRA training):
// dinp (N,C) += dout (N,OC) · W, with dout16 (bf16 GEMM) or else dout (fp32 GEMM).
int matmul_backward_q_cuda(vet_cuda *ctx, float *dinp, const float *dout, const uint16_t *dout16,
                           const vet_cuda_qweight *w, int N, int C, int OC, void *scratch,
                           vet_err *err);

// --- fp16 storage (kernels/fp16.cu) ---------------------------------------------------------
// IEEE binary16 values as uint16_t bit patterns (lib/base/half.h's vet_f32_to_f16 layout): max
// 65504, subnormals down to 2^-24; rounding to nearest even, too large becomes inf. The twins
// of the bf16 ops above, for vet-train --fp16 (which adds dynamic loss scaling on the host).
int f32_to_f16_cuda(vet_cuda *ctx, uint16_t *out, const float *inp, size_t n, vet_err *err);
int f16_to_f32_cuda(vet_cuda *ctx, float *out, const uint16_t *inp, size_t n, vet_err *err);
// out (N,C) = embed[tokens[n]] with an fp16 table (V,C), widened exactly.
int embedding_forward_f16_cuda(vet_cuda *ctx, float *out, const int32_t *tokens,
                               const uint16_t *embed, int N, int C, vet_err *err);
// C (M,N) = alpha op(A)·op(B) + beta C with fp16 A and B, fp32 C, fp32 accumulation
// (cublasGemmEx, CUDA_R_16F inputs, CUBLAS_COMPUTE_32F).
int vet_cuda_gemm_f16(vet_cuda *ctx, int transA, int transB, int M, int N, int K, float alpha,
                      const uint16_t *A, int lda, const uint16_t *B, int ldb, float beta,
                      float *C, int ldc, vet_err *err);
// As matmul_forward_bf16_cuda / matmul_backward_bf16_cuda with fp16 inp, W and dout.
int matmul_forward_f16_cuda(vet_cuda *ctx, float *out, const uint16_t *inp,
                            const uint16_t *weight, const float *bias, int N, int C, int OC,
                            vet_err *err);
int matmul_backward_f16_cuda(vet_cuda *ctx, float *dinp, float *dweight, const uint16_t *dout,
                             const uint16_t *inp, const uint16_t *weight, int N, int C, int OC,
                             vet_err *err);

// --- data parallel (kernels/rank_sum.cu) ----------------------------------------------------
// out (len) = ((copies[0] + copies[1]) + copies[2]) + ... over n_copies >= 1 copies, copies
// (n_copies, len): the rank-order sum of lib/train/comm_mpi.c, bit for bit (additions only,
// in that order). out must not overlap copies.
int sum_in_rank_order_cuda(vet_cuda *ctx, float *out, const float *copies, int n_copies, size_t len,
                           vet_err *err);

#ifdef __cplusplus
}
#endif

#endif
