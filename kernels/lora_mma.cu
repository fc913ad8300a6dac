// lora_mma.cu — the adapter's four products that read a long (N, width) 16-bit operand, on the
// tensor cores (PTX mma.sync m16n8k16: bf16 or fp16 operands, fp32 accumulators), LoRA dropout's mask
// inside as in lora.cu. What a 16-bit autocast run of PEFT computes (the reference recipe's
// Trainer with fp16/bf16 = True): its adapter's matmuls cast both operands to the 16-bit type and
// accumulate in fp32. The fp32 master A and B (and AdamW's state) stay fp32; each product rounds
// what it reads to the mode's 16-bit format as it loads it (round to nearest even), nothing is
// written in 16 bits.
//
//   down    u (N,r)  = dropout(x) (N,C) · A^T          A (r,C)      rows x ranks, sum over C
//   du      du (N,r) = s · dout (N,out) · B             B (out,r)    rows x ranks, sum over out
//   grad A  dA (r,C) += du^T · dropout(x)                            ranks x columns, sum over N
//   grad B  dB (out,r) += s · dout^T · u                             (the same, stored transposed)
//
// Two kernels serve the four. Both load the long operand straight from memory into mma fragments,
// 16 bytes (8 columns of a row) a lane, which the fragment layouts allow because a dot product
// does not care in which order its k terms are numbered (and an output column in which lane it
// sits), as long as both operands agree:
//   rows x ranks: a lane's 8 columns k0+8t..k0+8t+7 of rows g and g+8 feed the two k16 halves of
//     a 32-column chunk, k position 2t+8i+h of half j being column 8t+4j+2i+h (for A from x and
//     for B from the weight alike);
//   ranks x columns: k is the row (as the fragments have it), and the 8 columns c0+8g..c0+8g+7 a
//     lane loads are column g of the warp's 8 n-tiles (n-tile nt, lane g: column c0+8g+nt).
// Sums: fp32 in the tensor cores, then over a block's warps (rows x ranks) or the row slices
// (ranks x columns: lora_grad_a_slices(N, r), scratch as lora.cu's) in a fixed order: the same
// bits run to run. Against a CPU product on the rounded operands only the order of the fp32 sums
// differs (op_parity: `lora_*_mma vs rounded operands`).
//
// The long operand is bf16 or fp16 (the 16-bit mode's copies), and the other operands are
// rounded to that format: F16 below picks fp16's conversions and mma (fp16's range ends at
// 65504: a larger product operand becomes inf, as under PyTorch's fp16 autocast, and the loss
// scaler skips that step). 1 <= r <= 32.
#include <type_traits>

#include "common.cuh"
#include "mma_ops.cuh"
#include "base/philox.h"

#define ROWS_WARPS 16  // warps a block of the rows x ranks kernel, splitting the sum's columns
#define COLS_WARPS 4   // warps a block of the ranks x columns kernel, 64 columns each

// The 16-bit format's operations: a value's bits widened (exact), two fp32 values rounded and
// packed into one operand register, and the product.
template <bool F16> struct fmt16;
template <> struct fmt16<false> {  // bf16
    static __device__ __forceinline__ float widen(unsigned b) { return __uint_as_float(b << 16); }
    static __device__ __forceinline__ unsigned pack(float lo, float hi) { return pack_bf16(lo, hi); }
    static __device__ __forceinline__ void mma(float d[4], const unsigned a[4], const unsigned b[2]) {
        mma_bf16(d, a, b);
    }
};
template <> struct fmt16<true> {  // fp16
    static __device__ __forceinline__ float widen(unsigned b) {
        return __half2float(__ushort_as_half((unsigned short)b));
    }
    static __device__ __forceinline__ unsigned pack(float lo, float hi) { return pack_f16(lo, hi); }
    static __device__ __forceinline__ void mma(float d[4], const unsigned a[4], const unsigned b[2]) {
        mma_f16(d, a, b);
    }
};

// Row n's 8 bf16 values from column k as 4 words (two values each, the lower column in the low
// half); zeros for a row at or past N and past K. VEC: one 16-byte load (K a multiple of 8, X
// 16-byte aligned: the caller checks).
template <bool VEC>
__device__ __forceinline__ void load8(unsigned w[4], const uint16_t *X, int n, int N, int k, int K) {
    if (n >= N) {
        w[0] = w[1] = w[2] = w[3] = 0u;
        return;
    }
    const uint16_t *p = X + (size_t)n * K + k;
    if (VEC && k + 8 <= K) {
        const uint4 v = __ldg((const uint4 *)p);
        w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
        return;
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const unsigned lo = k + 2 * i < K ? __ldg(p + 2 * i) : 0u, hi = k + 2 * i + 1 < K ? __ldg(p + 2 * i + 1) : 0u;
        w[i] = lo | hi << 16;
    }
}

// The dropout of those 8 values (columns k..k+7, k a multiple of 8: mask groups k/4 and k/4+1,
// lib/base/philox.h's as everywhere): a kept value is x * keep_scale rounded to fp32 as in
// lora.cu, then to the format (what autocast does to the fp32 dropout's output).
template <bool F16>
__device__ __forceinline__ void drop8(unsigned w[4], int64_t row, int k, uint64_t seed, uint32_t thr, float ks) {
    const unsigned bits = vet_dropout_keep4(seed, (uint64_t)row, (uint32_t)(k / 4), thr) |
                          vet_dropout_keep4(seed, (uint64_t)row, (uint32_t)(k / 4 + 1), thr) << 4;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float lo = (bits >> (2 * i)) & 1u ? __fmul_rn(fmt16<F16>::widen(w[i] & 0xffffu), ks) : 0.0f;
        const float hi = (bits >> (2 * i + 1)) & 1u ? __fmul_rn(fmt16<F16>::widen(w[i] >> 16), ks) : 0.0f;
        w[i] = fmt16<F16>::pack(lo, hi);
    }
}

// An adapter weight's 8 values (rank j, positions k..k+7 along its long side) rounded to the
// format, as 4 words; zeros past r or K. ROWS: M is (r, K), rank-major (A); else (K, r) (B). VEC
// (ROWS, K a multiple of 4, M 16-byte aligned: the caller checks): two 16-byte loads.
template <bool F16, bool VEC, bool ROWS>
__device__ __forceinline__ void weight8(unsigned w[4], const float *M, int j, int r, int k, int K) {
    float v[8];
    if (j >= r) {
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = 0.0f;
    } else if (ROWS && VEC && k + 8 <= K) {
        const float4 a = __ldg((const float4 *)(M + (size_t)j * K + k)), b = __ldg((const float4 *)(M + (size_t)j * K + k + 4));
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++)
            v[i] = k + i < K ? __ldg(ROWS ? M + (size_t)j * K + k + i : M + (size_t)(k + i) * r + j) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < 4; i++) w[i] = fmt16<F16>::pack(v[2 * i], v[2 * i + 1]);
}

// U (N,r) = s · X̃ (N,K) · W^T, W(j, k) = M's (ROWS: A (r,K); else B (K,r)); X̃ = dropout(X) with
// DROP. Block: 16 rows, ROWS_WARPS warps, warp w taking the 32-column chunks w, w + ROWS_WARPS, ...
// NT n-tiles of 8 ranks (8 NT >= r). The warps' partial sums meet in shared memory and are added
// in warp order; u = s times the sum (s = 1: the sum's bits).
template <bool F16, int NT, bool VEC, bool DROP, bool ROWS>
__global__ void __launch_bounds__(ROWS_WARPS * 32)
adapter_rows_mma_kernel(float *U, const uint16_t *X, const float *M, float ks, uint32_t thr, uint64_t seed,
                     int64_t row0, int N, int K, int r, float s) {
    __shared__ float part[ROWS_WARPS][16][NT * 8];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
    const int n0 = blockIdx.x * 16;
    float acc[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; nt++) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
#pragma unroll 2
    for (int k0 = warp * 32; k0 < K; k0 += ROWS_WARPS * 32) {
        const int k = k0 + 8 * t;
        unsigned xa[4], xb[4];  // rows g and g + 8
        load8<VEC>(xa, X, n0 + g, N, k, K);
        load8<VEC>(xb, X, n0 + g + 8, N, k, K);
        if (DROP) {
            drop8<F16>(xa, row0 + n0 + g, k, seed, thr, ks);
            drop8<F16>(xb, row0 + n0 + g + 8, k, seed, thr, ks);
        }
        const unsigned a_lo[4] = {xa[0], xb[0], xa[1], xb[1]}, a_hi[4] = {xa[2], xb[2], xa[3], xb[3]};
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            unsigned w[4];
            weight8<F16, VEC, ROWS>(w, M, 8 * nt + g, r, k, K);
            fmt16<F16>::mma(acc[nt], a_lo, w);
            fmt16<F16>::mma(acc[nt], a_hi, w + 2);
        }
    }
#pragma unroll
    for (int nt = 0; nt < NT; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) part[warp][g + 8 * (e >> 1)][8 * nt + 2 * t + (e & 1)] = acc[nt][e];
    __syncthreads();
    for (int i = threadIdx.x; i < 16 * NT * 8; i += blockDim.x) {
        const int row = i / (NT * 8), j = i % (NT * 8), n = n0 + row;
        float sum = 0.0f;
        for (int w = 0; w < ROWS_WARPS; w++) sum = __fadd_rn(sum, part[w][row][j]);
        if (n < N && j < r) U[(size_t)n * r + j] = __fmul_rn(s, sum);
    }
}

// L's value (row n, rank j) (0 outside the slice's rows or past r), rounded where it is packed.
__device__ __forceinline__ float lval(const float *L, int n, int n_hi, int j, int r) {
    return n < n_hi && j < r ? __ldg(L + (size_t)n * r + j) : 0.0f;
}

// The 16-bit value nt of a lane's 8 (words w).
__device__ __forceinline__ unsigned half_of(const unsigned w[4], int nt) { return (w[nt >> 1] >> (16 * (nt & 1))) & 0xffffu; }

// G (r,C) = L^T (r,N) · X̃ (N,C) over the rows of slice z (blockIdx.y: rows z·rows_per_slice ...),
// L fp32 (N,r) rounded to bf16 as it loads. Warp: 64 columns (8 n-tiles), MT m-tiles of 16 ranks,
// 16 rows a step. Stored (T_OUT: transposed, (C, r), B's layout) into out + z·r·C as the slice's
// partial sums, or with accumulate (one slice) out += s times them. VEC: X read 16 bytes a row
// (as load8's) and, stored (r, C), the sums written 16 bytes at a time (C and out aligned for it).
template <bool F16, int MT, bool VEC, bool DROP, bool T_OUT>
__global__ void __launch_bounds__(COLS_WARPS * 32)
adapter_cols_mma_kernel(float *out, int accumulate, const float *L, const uint16_t *X, float ks, uint32_t thr,
                     uint64_t seed, int64_t row0, int N, int C, int r, int rows_per_slice, float s) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
    const int c0 = (blockIdx.x * COLS_WARPS + warp) * 64, z = blockIdx.y;
    if (c0 >= C) return;  // a whole warp: no barrier in this kernel
    const int n_lo = z * rows_per_slice, n_hi = min(N, n_lo + rows_per_slice);
    float acc[MT][8][4];
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int nt = 0; nt < 8; nt++) acc[m][nt][0] = acc[m][nt][1] = acc[m][nt][2] = acc[m][nt][3] = 0.0f;
    for (int nb = n_lo; nb < n_hi; nb += 16) {
        // k = rows nb + 2t, 2t+1 (b0, a0/a1) and nb + 2t+8, 2t+9 (b1, a2/a3)
        const int rows[4] = {nb + 2 * t, nb + 2 * t + 1, nb + 2 * t + 8, nb + 2 * t + 9};
        unsigned xv[4][4];
#pragma unroll
        for (int q = 0; q < 4; q++) {
            load8<VEC>(xv[q], X, rows[q] < n_hi ? rows[q] : N, N, c0 + 8 * g, C);
            if (DROP) drop8<F16>(xv[q], row0 + rows[q], c0 + 8 * g, seed, thr, ks);
        }
#pragma unroll
        for (int m = 0; m < MT; m++) {
            const int j = 16 * m + g;
            using F = fmt16<F16>;
            const unsigned a[4] = {F::pack(lval(L, rows[0], n_hi, j, r), lval(L, rows[1], n_hi, j, r)),
                                   F::pack(lval(L, rows[0], n_hi, j + 8, r), lval(L, rows[1], n_hi, j + 8, r)),
                                   F::pack(lval(L, rows[2], n_hi, j, r), lval(L, rows[3], n_hi, j, r)),
                                   F::pack(lval(L, rows[2], n_hi, j + 8, r), lval(L, rows[3], n_hi, j + 8, r))};
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
                const unsigned b[2] = {half_of(xv[0], nt) | half_of(xv[1], nt) << 16,
                                       half_of(xv[2], nt) | half_of(xv[3], nt) << 16};
                F::mma(acc[m][nt], a, b);
            }
        }
    }
    float *o = out + (accumulate ? 0 : (size_t)z * r * C);
    // A lane's sums of rank j are columns c0+16t .. c0+16t+15 (element i: n-tile i % 8, e & 1 =
    // i / 8). (r, C) with VEC (the caller checks C and out for 16-byte stores): four 16-byte
    // stores a rank, so a rank's 64 columns are one 256-byte run across the 4 lanes of a g.
    if (!T_OUT && VEC && c0 + 16 * t + 16 <= C) {
#pragma unroll
        for (int m = 0; m < MT; m++)
#pragma unroll
            for (int hf = 0; hf < 2; hf++) {
                const int j = 16 * m + g + 8 * hf;
                if (j >= r) continue;
                float4 *p = (float4 *)(o + (size_t)j * C + c0 + 16 * t);
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    const int e = 2 * hf + k / 2, nt = 4 * (k % 2);
                    float4 v = make_float4(acc[m][nt][e], acc[m][nt + 1][e], acc[m][nt + 2][e], acc[m][nt + 3][e]);
                    if (accumulate) {
                        const float4 w = p[k];
                        v.x = __fadd_rn(w.x, __fmul_rn(s, v.x)), v.y = __fadd_rn(w.y, __fmul_rn(s, v.y));
                        v.z = __fadd_rn(w.z, __fmul_rn(s, v.z)), v.w = __fadd_rn(w.w, __fmul_rn(s, v.w));
                    }
                    p[k] = v;
                }
            }
        return;
    }
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int j = 16 * m + g + 8 * (e >> 1), c = c0 + 8 * (2 * t + (e & 1)) + nt;
                if (j >= r || c >= C) continue;
                const size_t at = T_OUT ? (size_t)c * r + j : (size_t)j * C + c;
                o[at] = accumulate ? __fadd_rn(o[at], __fmul_rn(s, acc[m][nt][e])) : acc[m][nt][e];
            }
}

// --- host side -----------------------------------------------------------------------------------
int lora_add_slices(vet_cuda *ctx, float *dst, const float *part, int S, size_t n, float s, const char *what,
                    vet_err *err);  // lora.cu

static int check_mma(int fmt, int r, float p, const char *what, vet_err *err) {
    if (vet_cuda_check_fmt16(fmt, what, err) < 0) return -1;
    if (r < 1 || r > VET_LORA_FUSED_MAX_R)
        return vet_errf(err, "%s:%d: %s: rank %d outside 1..%d", __FILE__, __LINE__, what, r, VET_LORA_FUSED_MAX_R);
    if (!(p >= 0.0f && p < 1.0f))
        return vet_errf(err, "%s:%d: %s: dropout %g outside [0, 1)", __FILE__, __LINE__, what, (double)p);
    return 0;
}

static bool rows16_aligned(const uint16_t *X, int K) { return K % 8 == 0 && ((uintptr_t)X & 15) == 0; }

// f(std::bool_constant<F16>{}) for fmt (checked by check_mma): one place picks the format.
template <typename F> static void with_format(int fmt, F f) {
    if (fmt == VET_CUDA_F16)
        f(std::true_type{});
    else
        f(std::false_type{});
}

// rows x ranks: u = s · dropout_p(x) · W^T (ROWS: W = A (r,K); else W^T = B (K,r)).
template <bool ROWS>
static int rows_product(vet_cuda *ctx, int fmt, float *U, const uint16_t *X, const float *M, float p, uint64_t seed,
                        int64_t row0, int N, int K, int r, float s, const char *what, vet_err *err) {
    const float ks = 1.0f / (1.0f - p);  // as the CPU's dropout_apply
    const uint32_t thr = vet_dropout_threshold(p);
    const bool drop = p > 0.0f, vec = rows16_aligned(X, K) && (!ROWS || (K % 4 == 0 && ((uintptr_t)M & 15) == 0));
    with_format(fmt, [&](auto f16_c) {
        constexpr bool H = decltype(f16_c)::value;
        auto go = [&](auto nt_c) {
            constexpr int NT = decltype(nt_c)::value;
            LAUNCH((drop ? (vec ? adapter_rows_mma_kernel<H, NT, true, true, ROWS>
                                : adapter_rows_mma_kernel<H, NT, false, true, ROWS>)
                         : (vec ? adapter_rows_mma_kernel<H, NT, true, false, ROWS>
                                : adapter_rows_mma_kernel<H, NT, false, false, ROWS>)),
                   ceil_div(N, 16), ROWS_WARPS * 32, 0, ctx->stream, U, X, M, ks, thr, seed, row0, N, K, r, s);
        };
        if (r <= 8)
            go(std::integral_constant<int, 1>{});
        else if (r <= 16)
            go(std::integral_constant<int, 2>{});
        else
            go(std::integral_constant<int, 4>{});
    });
    LAUNCH_CHECK(what, err);
    return 0;
}

// ranks x columns, summed over the N rows in lora_grad_a_slices(N, r) slices:
// dst (T_OUT: (C,r); else (r,C)) += s · L^T · dropout_p(X).
template <bool T_OUT>
static int cols_product(vet_cuda *ctx, int fmt, float *dst, const float *L, const uint16_t *X, float p, uint64_t seed,
                        int64_t row0, int N, int C, int r, float s, float *scratch, size_t scratch_floats,
                        const char *what, vet_err *err) {
    const size_t need = lora_grad_a_scratch_floats(N, C, r);
    if (scratch_floats < need)
        return vet_errf(err, "%s:%d: %s: scratch of %zu floats, needs %zu", __FILE__, __LINE__, what, scratch_floats,
                        need);
    const int S = lora_grad_a_slices(N, r), rows = ceil_div(N, S);
    const float ks = 1.0f / (1.0f - p);
    const uint32_t thr = vet_dropout_threshold(p);
    float *out = S > 1 ? scratch : dst;
    const bool drop = p > 0.0f, vec = rows16_aligned(X, C) && (T_OUT || ((uintptr_t)out & 15) == 0);
    dim3 grid(ceil_div(C, 64 * COLS_WARPS), S);
    with_format(fmt, [&](auto f16_c) {
        constexpr bool H = decltype(f16_c)::value;
        auto go = [&](auto mt_c) {
            constexpr int MT = decltype(mt_c)::value;
            LAUNCH((drop ? (vec ? adapter_cols_mma_kernel<H, MT, true, true, T_OUT>
                                : adapter_cols_mma_kernel<H, MT, false, true, T_OUT>)
                         : (vec ? adapter_cols_mma_kernel<H, MT, true, false, T_OUT>
                                : adapter_cols_mma_kernel<H, MT, false, false, T_OUT>)),
                   grid, COLS_WARPS * 32, 0, ctx->stream, out, S == 1, L, X, ks, thr, seed, row0, N, C, r, rows, s);
        };
        if (r <= 16)
            go(std::integral_constant<int, 1>{});
        else
            go(std::integral_constant<int, 2>{});
    });
    LAUNCH_CHECK(what, err);
    return S > 1 ? lora_add_slices(ctx, dst, scratch, S, (size_t)r * C, s, what, err) : 0;
}

extern "C" int lora_down_mma_cuda(vet_cuda *ctx, float *u, const uint16_t *x, int fmt, const float *A, float p,
                                  uint64_t seed, int64_t row0, int N, int C, int r, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_mma(fmt, r, p, "lora_down_mma", err) < 0) return -1;
    if ((long long)N * C <= 0) return 0;
    return rows_product<true>(ctx, fmt, u, x, A, p, seed, row0, N, C, r, 1.0f, "lora_down_mma", err);
}

extern "C" int lora_du_mma_cuda(vet_cuda *ctx, float *du, const uint16_t *dout, int fmt, const float *B, float s,
                                int N, int out, int r, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_mma(fmt, r, 0.0f, "lora_du_mma", err) < 0) return -1;
    if ((long long)N * out <= 0) return 0;
    return rows_product<false>(ctx, fmt, du, dout, B, 0.0f, 0u, 0, N, out, r, s, "lora_du_mma", err);
}

extern "C" int lora_grad_a_mma_cuda(vet_cuda *ctx, float *dA, const float *du, const uint16_t *x, int fmt, float p,
                                    uint64_t seed, int64_t row0, int N, int C, int r, float *scratch,
                                    size_t scratch_floats, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_mma(fmt, r, p, "lora_grad_a_mma", err) < 0) return -1;
    if ((long long)N * C <= 0) return 0;
    return cols_product<false>(ctx, fmt, dA, du, x, p, seed, row0, N, C, r, 1.0f, scratch, scratch_floats,
                               "lora_grad_a_mma", err);
}

extern "C" int lora_grad_b_mma_cuda(vet_cuda *ctx, float *dB, const uint16_t *dout, int fmt, const float *u, float s,
                                    int N, int out, int r, float *scratch, size_t scratch_floats, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_mma(fmt, r, 0.0f, "lora_grad_b_mma", err) < 0) return -1;
    if ((long long)N * out <= 0) return 0;
    return cols_product<true>(ctx, fmt, dB, u, dout, 0.0f, 0u, 0, N, out, r, s, scratch, scratch_floats,
                              "lora_grad_b_mma", err);
}
