// lora.cu — an adapter's three skinny products with its input dropout applied inside them: the
// dropped-out input is never written. What they replace, per target and layer: a dropout pass
// writing xd (N,C) and a cuBLAS GEMM reading it, in the forward (u = xd·A^T) and twice in the
// backward (dA += du^T·xd; dinp += mask ⊙ (du·A) through an (N,C) temporary): ~200 MB of
// traffic per target and layer at 7B.
//
// The mask of element (n, c) is lib/base/philox.h's (vet_dropout_keep4(seed, row0 + n, c / 4,
// thr)), the same as dropout.cu's and the CPU's; a kept value is x * keep_scale rounded to fp32
// (__fmul_rn), as there. A thread takes one group of 4 columns (one Philox call), so the mask
// costs what the dropout pass cost, once per use. Sums run in fp32 in a fixed order (no
// atomics): the same bits run to run; against the CPU's BLAS only the order of the sums differs.
//
// r (the rank) is at most VET_LORA_FUSED_MAX_R (32): the kernels keep r x 4 values a thread in
// registers, so a larger rank takes the unfused path (gpu_train.c decides).
//
// The long operand (x, or the backward's dout) is fp32, or T = __nv_bfloat16 / __half: the
// 16-bit copies the 16-bit mode's GEMMs read, widened exactly as they load, so a 16-bit entry
// gives the bits of its fp32 twin run on the widened values, for half the reads. That is PEFT's
// arithmetic in a 16-bit model: its fp32 adapter gets the 16-bit activation cast up, and the
// 16-bit gradient of the layer's output.
#include <type_traits>

#include "common.cuh"
#include "wide_io.cuh"
#include "base/philox.h"

#define GROUPS 128  // column groups of 4 a block (512 columns)
#define DOWN_ROWS_PER_WARP 1
#define DOWN_WARPS 8
#define DOWN_CHUNK 128  // columns of A staged in shared memory at a time (down)
#define IN_ROWS 32      // rows a thread walks (grad input), so A's columns are read once per 32 rows
#define JT 16           // rank rows a thread accumulates (grad A)

// x's 4 values at xr as fp32: VEC, one load (16 bytes of fp32, 8 of a 16-bit type; the caller
// checks the alignment), else element by element with zeros past `left` values.
template <bool VEC, typename T> __device__ __forceinline__ void load4(float v[4], const T *xr, int left) {
    if constexpr (VEC && std::is_same<T, float>::value) {
        const float4 v4 = __ldg((const float4 *)xr);
        v[0] = v4.x, v[1] = v4.y, v[2] = v4.z, v[3] = v4.w;
    } else if constexpr (VEC) {
        const uint2 w = __ldg((const uint2 *)xr);
        v[0] = widen16<T>(w.x & 0xffffu), v[1] = widen16<T>(w.x >> 16);
        v[2] = widen16<T>(w.y & 0xffffu), v[3] = widen16<T>(w.y >> 16);
    } else {
#pragma unroll
        for (int k = 0; k < 4; k++) v[k] = k < left ? to_f32(xr[k]) : 0.0f;
    }
}

// x̃ = dropout(x) for the 4 columns of group q of row n (zeros past C); without DROP x's values
// as they are (the backward's products through B, which have no dropout). VEC: the group read as
// one load (C a multiple of 4, x aligned to the group's bytes: the caller checks), the same values.
template <bool VEC = false, bool DROP = true, typename T = float>
__device__ inline void dropped4(float xv[4], const T *x, int n, int q, int C, uint64_t seed, int64_t row0,
                                uint32_t thr, float keep_scale) {
    const T *xr = x + (size_t)n * C + 4 * (size_t)q;
    float v[4];
    load4<VEC>(v, xr, C - 4 * q);
    if constexpr (!DROP) {
#pragma unroll
        for (int k = 0; k < 4; k++) xv[k] = v[k];
        return;
    }
    const unsigned bits = vet_dropout_keep4(seed, (uint64_t)(row0 + n), (uint32_t)q, thr);
#pragma unroll
    for (int k = 0; k < 4; k++) xv[k] = (bits >> k) & 1u ? __fmul_rn(v[k], keep_scale) : 0.0f;
}

// acc + x · a over 4 columns, in the one order both down kernels use (so they give the same bits).
__device__ __forceinline__ float dot4_acc(float acc, const float x[4], const float *a) {
    return fmaf(x[3], a[3], fmaf(x[2], a[2], fmaf(x[1], a[1], fmaf(x[0], a[0], acc))));
}

// Columns 4q..4q+3 of every rank of an adapter matrix M into w[rank][column], zeros past C and
// r: M rank-major (r, C) as A is, or with COLS column-major (C, r) as B is (then the group is 4
// rows of r contiguous values). VEC: 16-byte loads (C a multiple of 4, M 16-byte aligned, and
// with COLS r == RT: the caller checks), the same values.
template <int RT, bool VEC, bool COLS>
__device__ __forceinline__ void group_ranks(float (&w)[RT][4], const float *M, int q, int C, int r) {
    if constexpr (VEC && COLS) {  // RT 16-byte loads of the 4 RT contiguous values
        const float4 *m4 = (const float4 *)(M + (size_t)4 * q * RT);
#pragma unroll
        for (int m = 0; m < RT; m++) {
            const float4 f = __ldg(m4 + m);
            const float e[4] = {f.x, f.y, f.z, f.w};
#pragma unroll
            for (int i = 0; i < 4; i++) w[(4 * m + i) % RT][(4 * m + i) / RT] = e[i];
        }
    } else if constexpr (VEC) {
#pragma unroll
        for (int j = 0; j < RT; j++) {
            const float4 f =
                j < r ? __ldg((const float4 *)(M + (size_t)j * C + 4 * q)) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            w[j][0] = f.x, w[j][1] = f.y, w[j][2] = f.z, w[j][3] = f.w;
        }
    } else {
#pragma unroll
        for (int j = 0; j < RT; j++)
#pragma unroll
            for (int k = 0; k < 4; k++) {
                if constexpr (COLS)
                    w[j][k] = j < r && 4 * q + k < C ? __ldg(M + (size_t)(4 * q + k) * r + j) : 0.0f;
                else
                    w[j][k] = j < r && 4 * q + k < C ? __ldg(M + (size_t)j * C + 4 * q + k) : 0.0f;
            }
    }
}

// u's rows n0..n0+R-1 (< N) from each lane's partial sums: one butterfly a rank, lane 0 writes
// s times the sum (s = 1: the sum's bits).
template <int R, int RT>
__device__ inline void store_row_sums(float *u, float (&acc)[R][RT], int n0, int N, int r, int lane, float s) {
#pragma unroll
    for (int a = 0; a < R; a++) {
        const int n = n0 + a;
#pragma unroll
        for (int j = 0; j < RT; j++) {
            const float sum = warp_sum(acc[a][j]);  // every lane joins the shuffles
            if (lane == 0 && n < N && j < r) u[(size_t)n * r + j] = __fmul_rn(s, sum);
        }
    }
}

// u (N,r) = dropout(x) (N,C) · A^T (r,C). Block: DOWN_WARPS warps, each DOWN_ROWS_PER_WARP rows;
// a lane takes group q = c0/4 + lane of each chunk of DOWN_CHUNK columns; per row, the lane's
// partial sums over its columns are reduced across the warp at the end (fixed butterfly).
template <int RT>
__global__ void __launch_bounds__(DOWN_WARPS * 32)
lora_down_kernel(float *u, const float *x, const float *A, float keep_scale, uint32_t thr, uint64_t seed,
                 int64_t row0, int N, int C, int r) {
    __shared__ float As[RT][DOWN_CHUNK];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int n0 = (blockIdx.x * DOWN_WARPS + warp) * DOWN_ROWS_PER_WARP;
    float acc[DOWN_ROWS_PER_WARP][RT];
#pragma unroll
    for (int a = 0; a < DOWN_ROWS_PER_WARP; a++)
#pragma unroll
        for (int j = 0; j < RT; j++) acc[a][j] = 0.0f;
    for (int c0 = 0; c0 < C; c0 += DOWN_CHUNK) {
        __syncthreads();  // the previous chunk is no longer read
        for (int i = threadIdx.x; i < RT * DOWN_CHUNK; i += blockDim.x) {
            int j = i / DOWN_CHUNK, cc = i % DOWN_CHUNK;
            As[j][cc] = j < r && c0 + cc < C ? A[(size_t)j * C + c0 + cc] : 0.0f;
        }
        __syncthreads();
        const int q = c0 / 4 + lane;
        if (4 * q >= C) continue;
#pragma unroll
        for (int a = 0; a < DOWN_ROWS_PER_WARP; a++) {
            const int n = n0 + a;
            if (n >= N) break;
            float xv[4];
            dropped4(xv, x, n, q, C, seed, row0, thr, keep_scale);
#pragma unroll
            for (int j = 0; j < RT; j++) acc[a][j] = dot4_acc(acc[a][j], xv, &As[j][4 * lane]);
        }
    }
    store_row_sums(u, acc, n0, N, r, lane, 1.0f);
}

// The same product without shared memory or barriers, the default (the kernel above is
// lora_down_variant(1); this one was written after the first H200 lease, which put that one at
// ~3 TFLOP/s: it waits at two barriers and a staging load of A for every 128 columns). A warp
// takes R rows; a lane takes the same groups of 4 columns as above (q = lane, lane + 32, ...),
// reads A's 4 columns of every rank straight from global memory (L1 serves the warps that walk
// the same columns) and uses them for its R rows. Each lane's sums run in the order above and
// are reduced by the same butterfly: the same bits (op_parity checks it). VEC (C a multiple of 4, x and A 16-byte aligned): x's
// and A's groups as 16-byte loads, two groups' loads in flight.
//
// The same kernel computes the backward's du (N,r) = s dout (N,out) B (out,r), a product of the
// same shape (a long row against r short ones): DROP false (no mask), COLS true (the operand
// stored (C, r) row-major, as B is), u scaled by s. With COLS a group's operand is 4 rows of r
// values, contiguous: 16-byte loads when r == RT.
template <int RT, int R, bool VEC, bool DROP = true, bool COLS = false, typename T = float>
__global__ void __launch_bounds__(DOWN_WARPS * 32)
lora_down2_kernel(float *u, const T *x, const float *A, float keep_scale, uint32_t thr, uint64_t seed,
                  int64_t row0, int N, int C, int r, float s) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int n0 = (blockIdx.x * DOWN_WARPS + warp) * R, groups = (C + 3) / 4;
    float acc[R][RT];
#pragma unroll
    for (int a = 0; a < R; a++)
#pragma unroll
        for (int j = 0; j < RT; j++) acc[a][j] = 0.0f;
#pragma unroll 2
    for (int q = lane; q < groups; q += 32) {
        float aw[RT][4];
        group_ranks<RT, VEC, COLS>(aw, A, q, C, r);
#pragma unroll
        for (int a = 0; a < R; a++) {
            const int n = n0 + a;
            if (n >= N) break;
            float xv[4];
            dropped4<VEC, DROP, T>(xv, x, n, q, C, seed, row0, thr, keep_scale);
#pragma unroll
            for (int j = 0; j < RT; j++) acc[a][j] = dot4_acc(acc[a][j], xv, aw[j]);
        }
    }
    store_row_sums(u, acc, n0, N, r, lane, s);
}

// dinp (N,C) += mask ⊙ keep_scale · (du (N,r) · A (r,C)). Thread: group q (4 columns), its A
// columns in registers, walking IN_ROWS rows; du's row is the same for the whole warp (a
// broadcast). A dropped element adds 0.0f, as the CPU's dropout_backward (so -0 becomes +0 alike).
// VEC (C a multiple of 4, dinp 16-byte aligned): dinp's group read and written as 16 bytes, two
// rows in flight; the same bits.
template <int RT, bool VEC>
__global__ void __launch_bounds__(GROUPS)
lora_grad_input_kernel(float *dinp, const float *du, const float *A, float keep_scale, uint32_t thr,
                       uint64_t seed, int64_t row0, int N, int C, int r) {
    const int q = blockIdx.x * GROUPS + threadIdx.x, n0 = blockIdx.y * IN_ROWS;
    if (4 * q >= C) return;
    float a[RT][4];
    group_ranks<RT, false, false>(a, A, q, C, r);
#pragma unroll 2
    for (int n = n0; n < n0 + IN_ROWS && n < N; n++) {
        const unsigned bits = vet_dropout_keep4(seed, (uint64_t)(row0 + n), (uint32_t)q, thr);
        float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        const float *dr = du + (size_t)n * r;
#pragma unroll
        for (int j = 0; j < RT; j++) {
            if (j >= r) break;
            const float d = dr[j];
#pragma unroll
            for (int k = 0; k < 4; k++) s[k] = fmaf(d, a[j][k], s[k]);
        }
        float *o = dinp + (size_t)n * C + 4 * q;
        if constexpr (VEC) {
            float4 v = *(float4 *)o;
            v.x = __fadd_rn(v.x, bits & 1u ? __fmul_rn(s[0], keep_scale) : 0.0f);
            v.y = __fadd_rn(v.y, bits & 2u ? __fmul_rn(s[1], keep_scale) : 0.0f);
            v.z = __fadd_rn(v.z, bits & 4u ? __fmul_rn(s[2], keep_scale) : 0.0f);
            v.w = __fadd_rn(v.w, bits & 8u ? __fmul_rn(s[3], keep_scale) : 0.0f);
            *(float4 *)o = v;
        } else {
#pragma unroll
            for (int k = 0; k < 4; k++)
                if (4 * q + k < C) o[k] = __fadd_rn(o[k], (bits >> k) & 1u ? __fmul_rn(s[k], keep_scale) : 0.0f);
        }
    }
}

// Partial dA: part[z] (r,C) = du[rows of slice z]^T · dropout(x)[same rows], JT rank rows a
// thread (blockIdx.y picks them), one group of 4 columns, the slice's rows in order. With one
// slice, dA += s times the sum directly. VEC (C a multiple of 4, x and out 16-byte aligned): x's
// group read and the sums written as 16 bytes; the same bits.
//
// The same kernel computes the backward's dB (out,r) += s dout^T u, of the same shape (a sum
// over rows of a short row times a long one): du := u, x := dout, DROP false, T_OUT true (the
// sums stored (C, r), B's layout, partial slices too; 4-byte stores: the output is small).
template <bool VEC, bool DROP = true, bool T_OUT = false, typename T = float>
__global__ void __launch_bounds__(GROUPS)
lora_grad_a_kernel(float *out, int accumulate, const float *du, const T *x, float keep_scale, uint32_t thr,
                   uint64_t seed, int64_t row0, int N, int C, int r, int rows_per_slice, float s) {
    __shared__ float dus[64][JT];
    const int q = blockIdx.x * GROUPS + threadIdx.x, j0 = blockIdx.y * JT, z = blockIdx.z;
    const int n_lo = z * rows_per_slice, n_hi = min(N, n_lo + rows_per_slice);
    float acc[JT][4];
#pragma unroll
    for (int jj = 0; jj < JT; jj++)
#pragma unroll
        for (int k = 0; k < 4; k++) acc[jj][k] = 0.0f;
    for (int nb = n_lo; nb < n_hi; nb += 64) {
        __syncthreads();
        for (int i = threadIdx.x; i < 64 * JT; i += blockDim.x) {
            int rr = i / JT, jj = i % JT, n = nb + rr;
            dus[rr][jj] = n < n_hi && j0 + jj < r ? du[(size_t)n * r + j0 + jj] : 0.0f;
        }
        __syncthreads();
        if (4 * q >= C) continue;
        for (int rr = 0; rr < 64 && nb + rr < n_hi; rr++) {
            float xv[4];
            dropped4<VEC, DROP, T>(xv, x, nb + rr, q, C, seed, row0, thr, keep_scale);
#pragma unroll
            for (int jj = 0; jj < JT; jj++)
#pragma unroll
                for (int k = 0; k < 4; k++) acc[jj][k] = fmaf(dus[rr][jj], xv[k], acc[jj][k]);
        }
    }
    if (4 * q >= C) return;
    float *o = out + (accumulate ? 0 : (size_t)z * r * C);
#pragma unroll
    for (int jj = 0; jj < JT; jj++) {
        if (j0 + jj >= r) break;
        if constexpr (VEC && !T_OUT) {
            float4 *p = (float4 *)(o + (size_t)(j0 + jj) * C + 4 * q);
            float4 v = make_float4(acc[jj][0], acc[jj][1], acc[jj][2], acc[jj][3]);
            if (accumulate) {
                const float4 w = *p;
                v.x = __fadd_rn(w.x, __fmul_rn(s, v.x)), v.y = __fadd_rn(w.y, __fmul_rn(s, v.y));
                v.z = __fadd_rn(w.z, __fmul_rn(s, v.z)), v.w = __fadd_rn(w.w, __fmul_rn(s, v.w));
            }
            *p = v;
        } else {
#pragma unroll
            for (int k = 0; k < 4; k++) {
                const int c = 4 * q + k;
                if (c >= C) break;
                const size_t at = T_OUT ? (size_t)c * r + j0 + jj : (size_t)(j0 + jj) * C + c;
                o[at] = accumulate ? __fadd_rn(o[at], __fmul_rn(s, acc[jj][k])) : acc[jj][k];
            }
        }
    }
}

// dA (n) += sc times the sum over the S slices of part[s], in slice order (sc = 1: the sum).
__global__ void lora_sum_slices_kernel(float *dA, const float *part, int S, size_t n, float sc) {
    GRID_STRIDE(i, n) {
        float s = 0.0f;
        for (int z = 0; z < S; z++) s = __fadd_rn(s, part[(size_t)z * n + i]);
        dA[i] = __fadd_rn(dA[i], __fmul_rn(sc, s));
    }
}

// Four consecutive values of y at o as fp32 (left: how many of them are in the row, when !VEC),
// and back: fp32 as they are, a 16-bit T (__nv_bfloat16 / __half) widened and rounded to T.
// VEC: one access (wide_io.cuh's load4 / store4), o aligned to it.
template <typename T>
__host__ __device__ constexpr int fmt_of() { return std::is_same<T, __half>::value ? VET_CUDA_F16 : VET_CUDA_BF16; }
template <bool VEC, typename T> __device__ __forceinline__ void up_load(float v[4], const T *o, int left) {
    if constexpr (VEC) {
        load4(v, o);
    } else {
#pragma unroll
        for (int k = 0; k < 4; k++) {
            if constexpr (std::is_same<T, float>::value) v[k] = k < left ? o[k] : 0.0f;
            else v[k] = k < left ? widen16<T>(((const uint16_t *)o)[k]) : 0.0f;
        }
    }
}
template <bool VEC, typename T> __device__ __forceinline__ void up_store(T *o, const float v[4], int left) {
    if constexpr (std::is_same<T, float>::value) {
        if constexpr (VEC) store4(o, v);
        else
#pragma unroll
            for (int k = 0; k < 4; k++)
                if (k < left) o[k] = v[k];
    } else if constexpr (VEC) {
        store4_16((uint16_t *)o, v, fmt_of<T>());
    } else {
#pragma unroll
        for (int k = 0; k < 4; k++)
            if (k < left) ((uint16_t *)o)[k] = round_to16(v[k], fmt_of<T>());
    }
}

// y (N,out) += s · u · B^T: thread = group q of 4 columns, UP_ROWS rows; B's 4 rows (r values each)
// in registers, u's row the same for the whole block (a broadcast). VEC (out a multiple of 4, y
// aligned to 4 values): y's group read and written in one access. y fp32, or 16-bit T (gate's
// and up's outputs in the 16-bit mode): widened, the sum in fp32, rounded as written: the bits of
// the fp32 kernel on the widened values, then a conversion.
#define UP_ROWS 32
template <int RT, bool VEC, typename T>
__global__ void __launch_bounds__(GROUPS)
lora_up_kernel(T *y, const float *u, const float *B, float s, int N, int out, int r) {
    const int q = blockIdx.x * GROUPS + threadIdx.x, n0 = blockIdx.y * UP_ROWS;
    if (4 * q >= out) return;
    float b[RT][4];
    group_ranks<RT, false, true>(b, B, q, out, r);
#pragma unroll 2
    for (int n = n0; n < n0 + UP_ROWS && n < N; n++) {
        const float *ur = u + (size_t)n * r;
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int j = 0; j < RT; j++) {
            if (j >= r) break;
            const float uj = __ldg(ur + j);
#pragma unroll
            for (int k = 0; k < 4; k++) acc[k] = fmaf(uj, b[j][k], acc[k]);
        }
        T *o = y + (size_t)n * out + 4 * q;
        float v[4];
        up_load<VEC>(v, o, out - 4 * q);
#pragma unroll
        for (int k = 0; k < 4; k++) v[k] = fmaf(s, acc[k], v[k]);
        up_store<VEC>(o, v, out - 4 * q);
    }
}

// --- host side -----------------------------------------------------------------------------------
// dst (n) += s times the sum of the S partials at part (S x n), in slice order. Also lora_mma.cu's.
int lora_add_slices(vet_cuda *ctx, float *dst, const float *part, int S, size_t n, float s, const char *what,
                    vet_err *err) {
    LAUNCH(lora_sum_slices_kernel, grid_blocks(n, 256), 256, 0, ctx->stream, dst, part, S, n, s);
    LAUNCH_CHECK(what, err);
    return 0;
}

// f(std::integral_constant<int, RT>{}) with RT the kernels' rank bound for r (8, 16 or 32: r x 4
// values a thread in registers): one place picks the template for every launch below.
template <typename F> static void with_rank(int r, F f) {
    if (r <= 8)
        f(std::integral_constant<int, 8>{});
    else if (r <= 16)
        f(std::integral_constant<int, 16>{});
    else
        f(std::integral_constant<int, 32>{});
}

static int down_variant = 0;
extern "C" void lora_down_variant(int variant) { down_variant = variant == 1; }  // 1: lora_down_kernel

// zero_ok: p = 0 (no dropout: the plain product on the same kernel) is taken.
static int check_args(int N, int C, int r, float p, const char *what, vet_err *err, bool zero_ok = false) {
    if (r < 1 || r > VET_LORA_FUSED_MAX_R)
        return vet_errf(err, "%s:%d: %s: rank %d outside 1..%d (use the unfused path)", __FILE__, __LINE__, what, r,
                        VET_LORA_FUSED_MAX_R);
    if (!((p > 0.0f || (zero_ok && p == 0.0f)) && p < 1.0f))
        return vet_errf(err, "%s:%d: %s: dropout %g outside %s, 1)", __FILE__, __LINE__, what, (double)p,
                        zero_ok ? "[0" : "(0");
    if ((long long)N * C <= 0) return 0;
    return 1;
}

// x (N,C) aligned for one load of a group of 4 (16 bytes of fp32, 8 of a 16-bit type).
template <typename T> static bool group_aligned(const T *x, int C) {
    return C % 4 == 0 && ((uintptr_t)x % (4 * sizeof(T))) == 0;
}

// f((T *)x) with T the 16-bit type fmt names (VET_CUDA_BF16, VET_CUDA_F16); -1 with err set for
// another fmt.
template <typename F> static int with_format16(int fmt, const uint16_t *x, const char *what, vet_err *err, F f) {
    if (vet_cuda_check_fmt16(fmt, what, err) < 0) return -1;
    return fmt == VET_CUDA_BF16 ? f((const __nv_bfloat16 *)x) : f((const __half *)x);
}

template <typename T>
static int down_product(vet_cuda *ctx, float *u, const T *x, const float *A, float p, uint64_t seed, int64_t row0,
                        int N, int C, int r, const char *what, vet_err *err) {
    CHECK_CTX(ctx, err);
    int ok = check_args(N, C, r, p, what, err, true);
    if (ok <= 0) return ok;
    const float ks = 1.0f / (1.0f - p);  // as the CPU's dropout_apply
    const uint32_t thr = vet_dropout_threshold(p);
    const bool drop = p > 0.0f;
    if (down_variant == 0 || !drop || !std::is_same<T, float>::value) {
        // R rows a warp: 32 / RT, so a lane keeps ~64 sums and A values
        const bool vec = group_aligned(x, C) && ((uintptr_t)A & 15) == 0;
        with_rank(r, [&](auto rt) {
            constexpr int RT = decltype(rt)::value, R = 32 / RT;
            LAUNCH((drop ? (vec ? lora_down2_kernel<RT, R, true, true, false, T>
                                : lora_down2_kernel<RT, R, false, true, false, T>)
                         : (vec ? lora_down2_kernel<RT, R, true, false, false, T>
                                : lora_down2_kernel<RT, R, false, false, false, T>)),
                   ceil_div(N, DOWN_WARPS * R), DOWN_WARPS * 32, 0, ctx->stream, u, x, A, ks, thr, seed, row0, N, C, r,
                   1.0f);
        });
        LAUNCH_CHECK(what, err);
        return 0;
    }
    if constexpr (std::is_same<T, float>::value) {  // variant 1: the staged kernel, fp32 only
        const int rows_per_block = DOWN_WARPS * DOWN_ROWS_PER_WARP, blocks = ceil_div(N, rows_per_block);
        with_rank(r, [&](auto rt) {
            LAUNCH(lora_down_kernel<decltype(rt)::value>, blocks, DOWN_WARPS * 32, 0, ctx->stream, u, x, A, ks, thr,
                   seed, row0, N, C, r);
        });
        LAUNCH_CHECK("lora_down_dropout (variant 1)", err);
    }
    return 0;
}

extern "C" int lora_down_dropout_cuda(vet_cuda *ctx, float *u, const float *x, const float *A, float p, uint64_t seed,
                                      int64_t row0, int N, int C, int r, vet_err *err) {
    return down_product(ctx, u, x, A, p, seed, row0, N, C, r, "lora_down_dropout", err);
}

extern "C" int lora_down_dropout16_cuda(vet_cuda *ctx, float *u, const uint16_t *x, int fmt, const float *A, float p,
                                        uint64_t seed, int64_t row0, int N, int C, int r, vet_err *err) {
    return with_format16(fmt, x, "lora_down_dropout16", err, [&](auto x16) {
        return down_product(ctx, u, x16, A, p, seed, row0, N, C, r, "lora_down_dropout16", err);
    });
}

extern "C" int lora_grad_input_dropout_cuda(vet_cuda *ctx, float *dinp, const float *du, const float *A, float p,
                                            uint64_t seed, int64_t row0, int N, int C, int r, vet_err *err) {
    CHECK_CTX(ctx, err);
    int ok = check_args(N, C, r, p, "lora_grad_input_dropout", err);
    if (ok <= 0) return ok;
    const float ks = 1.0f / (1.0f - p);
    const uint32_t thr = vet_dropout_threshold(p);
    dim3 grid(ceil_div((C + 3) / 4, GROUPS), ceil_div(N, IN_ROWS));
    if (grid.y > 65535) return vet_errf(err, "%s:%d: lora_grad_input_dropout: %d rows too many", __FILE__, __LINE__, N);
    const bool vec = C % 4 == 0 && ((uintptr_t)dinp & 15) == 0;
    with_rank(r, [&](auto rt) {
        constexpr int RT = decltype(rt)::value;
        LAUNCH((vec ? lora_grad_input_kernel<RT, true> : lora_grad_input_kernel<RT, false>), grid, GROUPS, 0,
               ctx->stream, dinp, du, A, ks, thr, seed, row0, N, C, r);
    });
    LAUNCH_CHECK("lora_grad_input_dropout", err);
    return 0;
}

template <typename T>
static int lora_up_any(vet_cuda *ctx, T *y, const float *u, const float *B, float s, int N, int out, int r,
                       const char *what, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (r < 1 || r > VET_LORA_FUSED_MAX_R)
        return vet_errf(err, "%s:%d: %s: rank %d outside 1..%d", __FILE__, __LINE__, what, r, VET_LORA_FUSED_MAX_R);
    if ((long long)N * out <= 0) return 0;
    dim3 grid(ceil_div((out + 3) / 4, GROUPS), ceil_div(N, UP_ROWS));
    if (grid.y > 65535) return vet_errf(err, "%s:%d: %s: %d rows too many", __FILE__, __LINE__, what, N);
    const bool vec = out % 4 == 0 && ((uintptr_t)y % (4 * sizeof(T))) == 0;
    with_rank(r, [&](auto rt) {
        constexpr int RT = decltype(rt)::value;
        LAUNCH((vec ? lora_up_kernel<RT, true, T> : lora_up_kernel<RT, false, T>), grid, GROUPS, 0, ctx->stream, y,
               u, B, s, N, out, r);
    });
    LAUNCH_CHECK(what, err);
    return 0;
}

extern "C" int lora_up_cuda(vet_cuda *ctx, float *y, const float *u, const float *B, float s, int N, int out, int r,
                            vet_err *err) {
    return lora_up_any(ctx, y, u, B, s, N, out, r, "lora_up", err);
}

extern "C" int lora_up16_cuda(vet_cuda *ctx, uint16_t *y, int fmt, const float *u, const float *B, float s, int N,
                              int out, int r, vet_err *err) {
    if (vet_cuda_check_fmt16(fmt, "lora_up16", err) < 0) return -1;
    return fmt == VET_CUDA_F16 ? lora_up_any(ctx, (__half *)y, u, B, s, N, out, r, "lora_up16", err)
                               : lora_up_any(ctx, (__nv_bfloat16 *)y, u, B, s, N, out, r, "lora_up16", err);
}

// dst += s · (du^T · dropout(x)) over the N rows (what: the caller's name, in errors): the
// sums in lora_grad_a_slices(N, r) slices (partials in scratch), then the slices' sum in order.
// DROP, T_OUT: lora_grad_a_kernel's (dA: the mask, r x C; dB: none, C x r).
template <bool DROP, bool T_OUT, typename T>
static int sum_over_rows(vet_cuda *ctx, float *dst, const float *du, const T *x, float ks, uint32_t thr,
                         uint64_t seed, int64_t row0, int N, int C, int r, float s, float *scratch,
                         size_t scratch_floats, const char *what, vet_err *err) {
    const size_t need = lora_grad_a_scratch_floats(N, C, r);
    if (scratch_floats < need)
        return vet_errf(err, "%s:%d: %s: scratch of %zu floats, needs %zu", __FILE__, __LINE__, what, scratch_floats,
                        need);
    const int S = lora_grad_a_slices(N, r), rows = ceil_div(N, S);
    dim3 grid(ceil_div((C + 3) / 4, GROUPS), ceil_div(r, JT), S);
    float *out = S > 1 ? scratch : dst;
    const bool vec = group_aligned(x, C) && (T_OUT || ((uintptr_t)out & 15) == 0);
    LAUNCH((vec ? lora_grad_a_kernel<true, DROP, T_OUT, T> : lora_grad_a_kernel<false, DROP, T_OUT, T>), grid, GROUPS, 0,
           ctx->stream, out, S == 1, du, x, ks, thr, seed, row0, N, C, r, rows, s);
    LAUNCH_CHECK(what, err);
    return S > 1 ? lora_add_slices(ctx, dst, scratch, S, (size_t)r * C, s, what, err) : 0;
}

template <typename T>
static int grad_a_product(vet_cuda *ctx, float *dA, const float *du, const T *x, float p, uint64_t seed, int64_t row0,
                          int N, int C, int r, float *scratch, size_t scratch_floats, const char *what, vet_err *err) {
    CHECK_CTX(ctx, err);
    int ok = check_args(N, C, r, p, what, err, true);
    if (ok <= 0) return ok;
    const float ks = 1.0f / (1.0f - p);
    const uint32_t thr = vet_dropout_threshold(p);
    return p > 0.0f ? sum_over_rows<true, false>(ctx, dA, du, x, ks, thr, seed, row0, N, C, r, 1.0f, scratch,
                                                 scratch_floats, what, err)
                    : sum_over_rows<false, false>(ctx, dA, du, x, ks, thr, seed, row0, N, C, r, 1.0f, scratch,
                                                  scratch_floats, what, err);
}

extern "C" int lora_grad_a_dropout_cuda(vet_cuda *ctx, float *dA, const float *du, const float *x, float p,
                                        uint64_t seed, int64_t row0, int N, int C, int r, float *scratch,
                                        size_t scratch_floats, vet_err *err) {
    return grad_a_product(ctx, dA, du, x, p, seed, row0, N, C, r, scratch, scratch_floats, "lora_grad_a_dropout", err);
}

extern "C" int lora_grad_a_dropout16_cuda(vet_cuda *ctx, float *dA, const float *du, const uint16_t *x, int fmt,
                                          float p, uint64_t seed, int64_t row0, int N, int C, int r, float *scratch,
                                          size_t scratch_floats, vet_err *err) {
    return with_format16(fmt, x, "lora_grad_a_dropout16", err, [&](auto x16) {
        return grad_a_product(ctx, dA, du, x16, p, seed, row0, N, C, r, scratch, scratch_floats,
                              "lora_grad_a_dropout16", err);
    });
}

// --- the backward's products through B, on the kernels above (no dropout there) --------------
static int check_rank(int r, const char *what, vet_err *err) {
    if (r < 1 || r > VET_LORA_FUSED_MAX_R)
        return vet_errf(err, "%s:%d: %s: rank %d outside 1..%d (use cuBLAS)", __FILE__, __LINE__, what, r,
                        VET_LORA_FUSED_MAX_R);
    return 0;
}

template <typename T>
static int du_product(vet_cuda *ctx, float *du, const T *dout, const float *B, float s, int N, int out, int r,
                      const char *what, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_rank(r, what, err) < 0) return -1;
    if ((long long)N * out <= 0) return 0;
    with_rank(r, [&](auto rt) {
        constexpr int RT = decltype(rt)::value, R = 32 / RT;
        const bool vec = r == RT && group_aligned(dout, out) && ((uintptr_t)B & 15) == 0;
        LAUNCH((vec ? lora_down2_kernel<RT, R, true, false, true, T> : lora_down2_kernel<RT, R, false, false, true, T>),
               ceil_div(N, DOWN_WARPS * R), DOWN_WARPS * 32, 0, ctx->stream, du, dout, B, 1.0f, 0u, 0u, 0, N, out, r,
               s);
    });
    LAUNCH_CHECK(what, err);
    return 0;
}

template <typename T>
static int grad_b_product(vet_cuda *ctx, float *dB, const T *dout, const float *u, float s, int N, int out, int r,
                          float *scratch, size_t scratch_floats, const char *what, vet_err *err) {
    CHECK_CTX(ctx, err);
    if (check_rank(r, what, err) < 0) return -1;
    if ((long long)N * out <= 0) return 0;
    return sum_over_rows<false, true>(ctx, dB, u, dout, 1.0f, 0u, 0u, 0, N, out, r, s, scratch, scratch_floats, what,
                                      err);
}

extern "C" int lora_du_cuda(vet_cuda *ctx, float *du, const float *dout, const float *B, float s, int N, int out, int r,
                            vet_err *err) {
    return du_product(ctx, du, dout, B, s, N, out, r, "lora_du", err);
}

extern "C" int lora_grad_b_cuda(vet_cuda *ctx, float *dB, const float *dout, const float *u, float s, int N, int out,
                                int r, float *scratch, size_t scratch_floats, vet_err *err) {
    return grad_b_product(ctx, dB, dout, u, s, N, out, r, scratch, scratch_floats, "lora_grad_b", err);
}

extern "C" int lora_du16_cuda(vet_cuda *ctx, float *du, const uint16_t *dout, int fmt, const float *B, float s, int N,
                              int out, int r, vet_err *err) {
    return with_format16(fmt, dout, "lora_du16", err,
                         [&](auto d16) { return du_product(ctx, du, d16, B, s, N, out, r, "lora_du16", err); });
}

extern "C" int lora_grad_b16_cuda(vet_cuda *ctx, float *dB, const uint16_t *dout, int fmt, const float *u, float s,
                                  int N, int out, int r, float *scratch, size_t scratch_floats, vet_err *err) {
    return with_format16(fmt, dout, "lora_grad_b16", err, [&](auto d16) {
        return grad_b_product(ctx, dB, d16, u, s, N, out, r, scratch, scratch_floats, "lora_grad_b16", err);
    });
}
