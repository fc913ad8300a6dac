// simt_emu.h — just enough of a CUDA multiprocessor on the CPU to run vet's warp-level kernels
// as they are written (tests/unit/test_*_emu.cc, compiled by the C++ compiler with
// -DVET_SIMT_EMU): a block's threads are POSIX threads; __syncthreads is a barrier of the
// block; a warp's collectives (shuffles, ldmatrix, mma.sync) exchange values through a slot
// array of the warp and a barrier of its 32 threads; cp.async copies at once.
//
// Why: the register attention's kernels (kernels/attention_pipe.cu, attention_mma.cu) had only
// ever been compiled when they were written: their tile loops, fragment addresses, masks and
// stores run here on a few blocks and are compared with the CPU replay of their arithmetic
// (lib/model/ops_attention_bf16.c). What this cannot see: timing, races between asynchronous
// copies and their readers (the copies here land at once), bank conflicts, register limits;
// the GPU bundle's compute-sanitizer parts look for the races.
//
// The collectives follow the PTX ISA's descriptions: ldmatrix (lane 8 m + r addresses row r of
// matrix m; lane 4 r + c receives (r, 2c), (r, 2c + 1), or with .trans (2c, r), (2c + 1, r)) and
// mma.m16n8k16 with the fragment layouts of kernels/mma_frag.cuh, its sums in double (the
// tensor cores' order is not documented; the CPU replay sums exactly too).
#ifndef VET_SIMT_EMU_H
#define VET_SIMT_EMU_H

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include <functional>
#include <vector>

#include "kernels/mma_frag.cuh"

#define __launch_bounds__(...)
// One block runs at a time: a static local is its shared memory (the dynamic part is emu_smem,
// through common.cuh's SHARED_DYNAMIC).
#undef __shared__
#define __shared__ static

// The device's integer min and max (CUDA declares them for device code only).
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

inline thread_local uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

// A reusable barrier of n threads: arrivals counted atomically, the waiters asleep on the
// generation word (a futex), woken all at once by the last to arrive. (A mutex and a condition
// variable made every waiter take the mutex again on its way out: 32 hand-offs a collective.)
struct emu_barrier {
    std::atomic<int> waiting{0};
    std::atomic<int> generation{0};
    int n = 0;
    void wait() {
        const int gen = generation.load(std::memory_order_acquire);
        if (waiting.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
            waiting.store(0, std::memory_order_relaxed);
            generation.fetch_add(1, std::memory_order_acq_rel);
            syscall(SYS_futex, (int *)&generation, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
            return;
        }
        // A barrier that some thread never reaches (a kernel whose threads skip a __syncthreads
        // or a warp collective) would hang the test: after a minute it fails instead.
        int waited = 0;
        while (generation.load(std::memory_order_acquire) == gen) {
            struct timespec second = {1, 0};
            syscall(SYS_futex, (int *)&generation, FUTEX_WAIT_PRIVATE, gen, &second, nullptr, 0);
            if (generation.load(std::memory_order_acquire) == gen && ++waited == 60) {
                fprintf(stderr, "simt_emu: a barrier of %d threads waited 60 s with %d arrived: a thread skipped "
                                "a __syncthreads or a warp collective\n",
                        n, waiting.load());
                abort();
            }
        }
    }
};

enum { EMU_MAX_THREADS = 1024, EMU_SLOT_BYTES = 64 };
struct emu_warp {
    emu_barrier bar;
    // Two slot arrays used in turn: a lane may be one collective ahead of the others (the
    // barrier keeps it from two), so the array it writes is never one another lane still reads.
    alignas(16) unsigned char slot[2][32][EMU_SLOT_BYTES];
};
inline emu_barrier emu_block_bar;
inline emu_warp emu_warps[EMU_MAX_THREADS / 32];
inline thread_local unsigned emu_phase;

// Dynamic shared memory (SHARED_DYNAMIC), one block at a time. Filled with 0xff before each
// block: NaNs where a kernel reads what it never wrote.
alignas(128) inline unsigned char emu_smem[232 * 1024];

inline void __syncthreads() { emu_block_bar.wait(); }

// This lane's `n` bytes to the warp; returns the warp's 32 slots (valid until the collective
// after next).
inline const unsigned char (*emu_exchange(const void *mine, size_t n))[EMU_SLOT_BYTES] {
    emu_warp &w = emu_warps[threadIdx.x / 32];
    const int ph = emu_phase++ & 1;
    memcpy(w.slot[ph][threadIdx.x % 32], mine, n);
    w.bar.wait();
    return w.slot[ph];
}

template <typename T> inline T __shfl_xor_sync(unsigned, T x, int lane_mask) {
    static_assert(sizeof(T) <= EMU_SLOT_BYTES, "a shuffled value fits a slot");
    auto s = emu_exchange(&x, sizeof x);
    T y;
    memcpy(&y, s[(threadIdx.x % 32) ^ lane_mask], sizeof y);
    return y;
}

template <typename T> inline T __shfl_sync(unsigned, T x, int src_lane) {
    static_assert(sizeof(T) <= EMU_SLOT_BYTES, "a shuffled value fits a slot");
    auto s = emu_exchange(&x, sizeof x);
    T y;
    memcpy(&y, s[src_lane & 31], sizeof y);
    return y;
}

// ldmatrix.x4 (trans or not): p is this lane's row address in shared memory.
inline void emu_ldmatrix_x4(unsigned r[4], const void *p, bool trans) {
    const uint16_t *mine = (const uint16_t *)p;
    auto s = emu_exchange(&mine, sizeof mine);
    const int lane = threadIdx.x % 32, row = lane >> 2, c = lane & 3;
    for (int m = 0; m < 4; m++) {
        uint16_t h[2];
        for (int e = 0; e < 2; e++) {
            const uint16_t *rowp;
            int col;
            if (trans) {
                memcpy(&rowp, s[8 * m + 2 * c + e], sizeof rowp);
                col = row;
            } else {
                memcpy(&rowp, s[8 * m + row], sizeof rowp);
                col = 2 * c + e;
            }
            h[e] = rowp[col];
        }
        r[m] = (unsigned)h[0] | (unsigned)h[1] << 16;
    }
}

inline float emu_bf16(unsigned reg, int h) {
    return __bfloat162float(__ushort_as_bfloat16((unsigned short)(reg >> (16 * h))));
}

// d (16x8 fp32) += a (16x16 bf16) b (16x8 bf16), this lane's fragments of each.
inline void emu_mma_bf16(float d[4], const unsigned a[4], const unsigned b[2]) {
    unsigned mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
    auto s = emu_exchange(mine, sizeof mine);
    double A[16][16], B[16][8];
    for (int l = 0; l < 32; l++) {
        unsigned f[6];
        memcpy(f, s[l], sizeof f);
        for (int h = 0; h < 2; h++) {
            for (int i = 0; i < 4; i++) {
                mma_pos p = mma_a_pos(l, i, h);
                A[p.row][p.col] = emu_bf16(f[i], h);
            }
            for (int i = 0; i < 2; i++) {
                mma_pos p = mma_b_pos(l, i, h);
                B[p.row][p.col] = emu_bf16(f[4 + i], h);
            }
        }
    }
    const int lane = threadIdx.x % 32;
    for (int e = 0; e < 4; e++) {
        mma_pos p = mma_c_pos(lane, e);
        double acc = d[e];
        for (int k = 0; k < 16; k++) acc += A[p.row][k] * B[k][p.col];
        d[e] = (float)acc;
    }
}

// The intrinsics the kernels name, with the host's IEEE arithmetic (compiled with
// -ffp-contract=off, so a product and a sum round apart as __fmul_rn and __fadd_rn do).
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
template <typename T> inline T __ldg(const T *p) { return *p; }
inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// A kernel call (a lambda that calls it with its arguments) over grid x threads, one block at a
// time: `threads` POSIX threads, made once a launch, walk the blocks in order with a barrier of
// the block between two (thread 0 refills shared memory there); dynamic shared memory up to
// sizeof emu_smem.
struct emu_worker {
    const std::function<void()> *kernel;
    dim3 grid;
    unsigned t;
};
inline void *emu_work(void *v) {
    const emu_worker *w = (const emu_worker *)v;
    for (unsigned z = 0; z < w->grid.z; z++)
        for (unsigned y = 0; y < w->grid.y; y++)
            for (unsigned x = 0; x < w->grid.x; x++) {
                if (w->t == 0) memset(emu_smem, 0xff, sizeof emu_smem);
                emu_block_bar.wait();  // the block's shared memory is ready
                blockIdx = make_uint3(x, y, z), threadIdx = make_uint3(w->t, 0, 0), emu_phase = 0;
                (*w->kernel)();
                emu_block_bar.wait();  // every thread is done with this block
            }
    return nullptr;
}
inline void emu_launch(dim3 grid, int threads, const std::function<void()> &kernel);
inline void emu_launch(dim3 grid, dim3 block, const std::function<void()> &kernel) {  // 1-D blocks
    emu_launch(grid, (int)(block.x * block.y * block.z), kernel);
}
inline void emu_launch(dim3 grid, int threads, const std::function<void()> &kernel) {
    gridDim = grid, blockDim = dim3(threads);
    emu_block_bar.n = threads;
    for (int w = 0; w < (threads + 31) / 32; w++) emu_warps[w].bar.n = threads - 32 * w < 32 ? threads - 32 * w : 32;
    std::vector<pthread_t> tids(threads);
    std::vector<emu_worker> args(threads);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 1 << 20);
    for (int t = 0; t < threads; t++) {
        args[t] = emu_worker{&kernel, grid, (unsigned)t};
        pthread_create(&tids[t], &at, emu_work, &args[t]);
    }
    pthread_attr_destroy(&at);
    for (int t = 0; t < threads; t++) pthread_join(tids[t], nullptr);
}

#endif
