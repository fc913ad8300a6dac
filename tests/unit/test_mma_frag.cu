// test_mma_frag.cu — kernels/mma_frag.cuh on the CPU (compiled by nvcc as host code; built and
// run where nvcc is, as in CI): the rows each lane hands ldmatrix fill exactly the mma.sync
// fragments the attention kernels multiply. ldmatrix is replayed here from its PTX description
// (lane 8 m + r addresses row r of matrix m; lane 4 r + c receives elements (r, 2c), (r, 2c + 1)
// of matrix m, or (2c, r), (2c + 1, r) with .trans), over a tile of distinct values with a padded
// row stride, at several block positions; then a whole 16 x 16 x 8 product through the fragments
// is compared with the plain one, so a wrong fragment layout fails too.
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "kernels/mma_frag.cuh"

#define ROWS 48
#define LD 40  // a padded stride, as the kernels' tiles (a multiple of 8: rows stay 16-byte aligned)

static uint16_t tile[ROWS * LD];

// regs[lane][m][h]: what ldmatrix.x4 (trans or not) leaves in register m of each lane, element h
// (0 the low half), when lane l hands base + offset(l).
static void ldmatrix_x4(uint16_t regs[32][4][2], int base, int (*offset)(int, int), int trans) {
    int addr[32];
    for (int l = 0; l < 32; l++) {
        addr[l] = base + offset(l, LD);
        CHECK(addr[l] % 8 == 0);  // 16-byte aligned rows
    }
    for (int m = 0; m < 4; m++)
        for (int l = 0; l < 32; l++) {
            const int r = l >> 2, c = l & 3;
            for (int h = 0; h < 2; h++) {
                const int row = trans ? 2 * c + h : r, col = trans ? r : 2 * c + h;  // of matrix m
                regs[l][m][h] = tile[addr[8 * m + row] + col];
            }
        }
}

static uint16_t at(int row0, int col0, int row, int col) { return tile[(row0 + row) * LD + col0 + col]; }

// The A fragment of the 16 x 16 block at (row0, col0).
static void test_a(int row0, int col0) {
    uint16_t regs[32][4][2];
    ldmatrix_x4(regs, row0 * LD + col0, ldsm_offset_down_first, 0);
    int bad = 0;
    for (int l = 0; l < 32; l++)
        for (int i = 0; i < 4; i++)
            for (int h = 0; h < 2; h++) {
                mma_pos p = mma_a_pos(l, i, h);
                bad += regs[l][i][h] != at(row0, col0, p.row, p.col);
            }
    CHECK(bad == 0);
}

// B fragments of two 8-wide n tiles (registers 0, 1: n 0..7; 2, 3: n 8..15) from a block stored
// [n][k] (non-transposed load, kn = 0) or [k][n] (transposed load, kn = 1).
static void test_b(int row0, int col0, int kn) {
    uint16_t regs[32][4][2];
    ldmatrix_x4(regs, row0 * LD + col0, kn ? ldsm_offset_down_first : ldsm_offset_right_first, kn);
    int bad = 0;
    for (int l = 0; l < 32; l++)
        for (int j = 0; j < 2; j++)
            for (int i = 0; i < 2; i++)
                for (int h = 0; h < 2; h++) {
                    mma_pos p = mma_b_pos(l, i, h);  // B[k][n] = Y[8 j + n][k], or Y[k][8 j + n]
                    uint16_t want = kn ? at(row0, col0, p.row, 8 * j + p.col) : at(row0, col0, 8 * j + p.col, p.row);
                    bad += regs[l][2 * j + i][h] != want;
                }
    CHECK(bad == 0);
}

// mma.m16n8k16 replayed from the fragment layouts: D = A B, each lane contributing the elements
// its registers hold. Elements are small integers, so the sums are exact.
static void mma_replay(int64_t d[32][4], const uint16_t a[32][4][2], const uint16_t b[32][2][2]) {
    int64_t A[16][16], B[16][8];
    for (int l = 0; l < 32; l++)
        for (int h = 0; h < 2; h++) {
            for (int i = 0; i < 4; i++) {
                mma_pos p = mma_a_pos(l, i, h);
                A[p.row][p.col] = a[l][i][h];
            }
            for (int i = 0; i < 2; i++) {
                mma_pos p = mma_b_pos(l, i, h);
                B[p.row][p.col] = b[l][i][h];
            }
        }
    for (int l = 0; l < 32; l++)
        for (int e = 0; e < 4; e++) {
            mma_pos p = mma_c_pos(l, e);
            int64_t s = 0;
            for (int k = 0; k < 16; k++) s += A[p.row][k] * B[k][p.col];
            d[l][e] = s;
        }
}

// O (16 x 16) = X (16 x 16, rows 0.., cols 0..) . Y (16 k x 16 n, stored [k][n] at rows 16..,
// cols 8..): A by ldmatrix, B by ldmatrix.trans, as the kernels' P V; and S (16 x 16) = X . Z^T
// with Z stored [n][k] at rows 32.., as Q K^T. Both against plain products.
static void test_products(void) {
    uint16_t a[32][4][2], y[32][4][2], z[32][4][2];
    ldmatrix_x4(a, 0, ldsm_offset_down_first, 0);
    ldmatrix_x4(y, 16 * LD + 8, ldsm_offset_down_first, 1);
    ldmatrix_x4(z, 32 * LD, ldsm_offset_right_first, 0);
    int bad = 0;
    for (int j = 0; j < 2; j++)  // the two 8-wide tiles of each product
        for (int which = 0; which < 2; which++) {
            uint16_t b[32][2][2];
            for (int l = 0; l < 32; l++)
                for (int i = 0; i < 2; i++)
                    for (int h = 0; h < 2; h++) b[l][i][h] = (which ? z : y)[l][2 * j + i][h];
            int64_t d[32][4];
            mma_replay(d, a, b);
            for (int l = 0; l < 32; l++)
                for (int e = 0; e < 4; e++) {
                    mma_pos p = mma_c_pos(l, e);
                    const int n = 8 * j + p.col;
                    int64_t s = 0;
                    for (int k = 0; k < 16; k++)
                        s += (int64_t)at(0, 0, p.row, k) * (which ? at(32, 0, n, k) : at(16, 8, k, n));
                    bad += d[l][e] != s;
                }
        }
    CHECK(bad == 0);
}

static void test_fragments(void) {
    for (int i = 0; i < ROWS * LD; i++) tile[i] = (uint16_t)i;  // every element its own value
    const int pos[][2] = {{0, 0}, {0, 16}, {16, 8}, {32, 24}};
    for (int p = 0; p < 4; p++) {
        test_a(pos[p][0], pos[p][1]);
        test_b(pos[p][0], pos[p][1], 0);
        test_b(pos[p][0], pos[p][1], 1);
    }
}

static void test_product(void) {
    for (int i = 0; i < ROWS * LD; i++) tile[i] = (uint16_t)((i * 40503u >> 5) % 11);  // small values (exact sums), no period
    test_products();
}

int main(void) {
    RUN(test_fragments);
    RUN(test_product);
    CHECK_EXIT();
}
