// mma_frag.cuh — where the operands of PTX mma.sync.m16n8k16 (16-bit inputs, fp32 accumulators)
// sit in a warp's registers, and which shared-memory row each lane hands ldmatrix so that one
// ldmatrix.x4 fills them. Host and device functions: tests/unit/test_mma_frag.cu (compiled by
// nvcc, run on the CPU) checks the ldmatrix offsets against the fragment layouts below by
// replaying ldmatrix's documented semantics, without a GPU.
//
// The fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), lane =
// 4 g + t, each 32-bit register holding two 16-bit elements, the lower column (or k) in the low
// half:
//   A (16 x 16, row-major): register i holds A[g + 8 (i & 1)][2 t + 8 (i >> 1) + h], h = 0, 1
//   B (16 x 8, k x n):      register i holds B[2 t + 8 i + h][g]
//   C (16 x 8, fp32):       element e holds C[g + 8 (e >> 1)][2 t + (e & 1)]
//
// ldmatrix.sync.aligned.m8n8.x4.shared.b16 (PTX ISA, "ldmatrix"): lane 8 m + r hands the
// address of row r of 8x8 matrix m (8 consecutive 16-bit elements, 16-byte aligned); lane 4 r +
// c receives in register m elements (r, 2c) and (r, 2c + 1) of matrix m, or with .trans elements
// (2c, r) and (2c + 1, r).
#ifndef VET_MMA_FRAG_CUH
#define VET_MMA_FRAG_CUH

typedef struct {
    int row, col;
} mma_pos;

__host__ __device__ inline mma_pos mma_a_pos(int lane, int reg, int h) {
    return mma_pos{(lane >> 2) + 8 * (reg & 1), 2 * (lane & 3) + 8 * (reg >> 1) + h};
}
// (row = k, col = n)
__host__ __device__ inline mma_pos mma_b_pos(int lane, int reg, int h) {
    return mma_pos{2 * (lane & 3) + 8 * reg + h, lane >> 2};
}
__host__ __device__ inline mma_pos mma_c_pos(int lane, int e) {
    return mma_pos{(lane >> 2) + 8 * (e >> 1), 2 * (lane & 3) + (e & 1)};
}

// The element offset, in a 16 x 16 block of a row-major tile with ld elements a row, of the row
// that lane hands ldmatrix.x4 when its four matrices are the block's quarters in the order
// top-left, bottom-left, top-right, bottom-right. Serves two operands:
//   - an A fragment of the block (non-transposed load): registers 0..3 are a0..a3;
//   - with .trans, the B fragments of two adjacent 8-column tiles of a block stored [k][n]
//     (16 k x 16 n): registers 0, 1 are b0, b1 of columns 0..7, registers 2, 3 of columns 8..15.
//     This is how P V, dS K, P^T dO and dS^T Q read V, K, dO and Q from their row-major tiles.
__host__ __device__ inline int ldsm_offset_down_first(int lane, int ld) {
    return ((lane & 7) + 8 * ((lane >> 3) & 1)) * ld + 8 * (lane >> 4);
}

// The same with the quarters in the order top-left, top-right, bottom-left, bottom-right: the B
// fragments (non-transposed load) of two adjacent 8-row tiles of a block stored [n][k] (16 n x
// 16 k, as K for S = Q K^T): registers 0, 1 are b0, b1 of rows 0..7, registers 2, 3 of rows 8..15.
__host__ __device__ inline int ldsm_offset_right_first(int lane, int ld) {
    return ((lane & 7) + 8 * (lane >> 4)) * ld + 8 * ((lane >> 3) & 1);
}

#endif
