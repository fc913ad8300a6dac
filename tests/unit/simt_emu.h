// simt_emu.h — just enough of a CUDA multiprocessor on the CPU to run vet's kernels as they are
// written (tests/unit/test_*_emu.cc and the whole emulated device of mk/gpuemu.mk, compiled by
// the C++ compiler with -DVET_SIMT_EMU): a block's threads are fibers on the calling thread;
// __syncthreads is a barrier of the block; a warp's collectives (shuffles, ldmatrix, mma.sync,
// WMMA) exchange values through a slot array of the warp and a barrier of its threads;
// cp.async copies at once.
//
// Why: the register attention's kernels (kernels/attention_pipe.cu, attention_mma.cu) had only
// ever been compiled when they were written: their tile loops, fragment addresses, masks and
// stores run here on a few blocks and are compared with the CPU replay of their arithmetic
// (lib/model/ops_attention_bf16.c). What this cannot see: timing, races (one thread
// runs at a time, to its next barrier: a read the kernel does not order after a write sees it
// or not by the threads' order, and asynchronous copies land at once), bank conflicts,
// register limits; the GPU bundle's compute-sanitizer parts look for the races.
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
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <type_traits>
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

// Every thread of a block is a fiber on the calling thread (emu_launch, below): the scheduler
// sets these before it resumes one.
inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

// The fiber that runs now and what it waits for (emu_launch keeps one of these a thread).
struct emu_barrier;
struct emu_fiber {
    void *sp;                   // its saved stack pointer while it is not running
    unsigned char *stack;       // the bottom of its stack (a guard page below)
    unsigned tid, phase;        // threadIdx.x; emu_phase
    const emu_barrier *waits;   // the barrier it waits at, or none
    unsigned waits_gen;         // that barrier's generation when it arrived
    bool done;
};
inline emu_fiber *emu_running;
inline void emu_yield();  // to the next thread of the pass, or back to the scheduler

// The emulator's own bookkeeping (the scheduler, barriers, the slots shuffles pass values
// through) is not checked by ASan or UBSan: it runs once a thread a collective, and its checks
// were most of what a resume cost. (block_sum over 256-thread blocks, ASan + UBSan build, a
// 2-core AMD EPYC: 58 ns a thread a collective checked and through the scheduler, 18 unchecked
// and handed over directly, as emu_yield does; an emulated 4-step training run took 12.5 s
// instead of 26.7, with the same bytes.) The kernels stay checked, and so does every address a
// kernel hands the emulator (ldmatrix's rows; the asynchronous copies are the kernels' own code).
#if defined(__SANITIZE_ADDRESS__)
#define EMU_UNCHECKED __attribute__((no_sanitize("address", "undefined")))
#else
#define EMU_UNCHECKED
#endif

// A reusable barrier of n threads. The last to arrive opens it (a new generation) and goes on;
// the others yield until the scheduler sees the generation change.
struct emu_barrier {
    int n = 0, arrived = 0;
    unsigned generation = 0;
    EMU_UNCHECKED void wait() {
        if (++arrived == n) {
            arrived = 0, generation++;
            return;
        }
        emu_running->waits = this, emu_running->waits_gen = generation;
        emu_yield();
    }
};

enum { EMU_MAX_THREADS = 1024, EMU_SLOT_BYTES = 64 };
struct emu_warp {
    emu_barrier bar;
    // The product of the warp's last mma.sync (emu_mma_bf16), made by its first lane out of the
    // collective for all 32: the barrier generation that collective completed.
    unsigned mma_key = ~0u;
    double mma_ab[16][8];
    // Two slot arrays used in turn: a lane may be one collective ahead of the others (the
    // barrier keeps it from two), so the array it writes is never one another lane still reads.
    alignas(16) unsigned char slot[2][32][EMU_SLOT_BYTES];
};
inline emu_barrier emu_block_bar;
inline emu_warp emu_warps[EMU_MAX_THREADS / 32];
inline unsigned emu_phase;

// Dynamic shared memory (SHARED_DYNAMIC), one block at a time. The part a launch asks for is
// filled with 0xff before each block (NaNs where a kernel reads what it never wrote); under
// ASan the rest is poisoned for the launch (emu_launch).
alignas(128) inline unsigned char emu_smem[232 * 1024];

inline void __syncthreads() { emu_block_bar.wait(); }

// This lane's `n` bytes to the warp; returns the warp's 32 slots (valid until the collective
// after next).
EMU_UNCHECKED inline const unsigned char (*emu_exchange(const void *mine, size_t n))[EMU_SLOT_BYTES] {
    emu_warp &w = emu_warps[threadIdx.x / 32];
    const int ph = emu_phase++ & 1;
    memcpy(w.slot[ph][threadIdx.x % 32], mine, n);
    w.bar.wait();
    return w.slot[ph];
}

template <typename T> EMU_UNCHECKED inline T __shfl_xor_sync(unsigned, T x, int lane_mask) {
    static_assert(sizeof(T) <= EMU_SLOT_BYTES, "a shuffled value fits a slot");
    auto s = emu_exchange(&x, sizeof x);
    T y;
    memcpy(&y, s[(threadIdx.x % 32) ^ lane_mask], sizeof y);
    return y;
}

template <typename T> EMU_UNCHECKED inline T __shfl_sync(unsigned, T x, int src_lane) {
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

inline float emu_f16(unsigned reg, int h) { return __half2float(__ushort_as_half((unsigned short)(reg >> (16 * h)))); }

// d (16x8 fp32) += a (16x16) b (16x8), bf16 or (f16) fp16, this lane's fragments of each. The
// first lane past the collective multiplies the whole tiles (in double) for the warp; each lane
// adds its accumulators and rounds once.
inline void emu_mma16(float d[4], const unsigned a[4], const unsigned b[2], bool f16) {
    unsigned mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
    auto s = emu_exchange(mine, sizeof mine);
    emu_warp &w = emu_warps[threadIdx.x / 32];
    if (w.mma_key != w.bar.generation) {
        double A[16][16], B[16][8];
        for (int l = 0; l < 32; l++) {
            unsigned f[6];
            memcpy(f, s[l], sizeof f);
            for (int h = 0; h < 2; h++) {
                for (int i = 0; i < 4; i++) {
                    mma_pos p = mma_a_pos(l, i, h);
                    A[p.row][p.col] = f16 ? emu_f16(f[i], h) : emu_bf16(f[i], h);
                }
                for (int i = 0; i < 2; i++) {
                    mma_pos p = mma_b_pos(l, i, h);
                    B[p.row][p.col] = f16 ? emu_f16(f[4 + i], h) : emu_bf16(f[4 + i], h);
                }
            }
        }
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < 8; c++) {
                double acc = 0.0;
                for (int k = 0; k < 16; k++) acc += A[r][k] * B[k][c];
                w.mma_ab[r][c] = acc;
            }
        w.mma_key = w.bar.generation;
    }
    const int lane = threadIdx.x % 32;
    for (int e = 0; e < 4; e++) {
        mma_pos p = mma_c_pos(lane, e);
        d[e] = (float)((double)d[e] + w.mma_ab[p.row][p.col]);
    }
}
inline void emu_mma_bf16(float d[4], const unsigned a[4], const unsigned b[2]) { emu_mma16(d, a, b, false); }
inline void emu_mma_f16(float d[4], const unsigned a[4], const unsigned b[2]) { emu_mma16(d, a, b, true); }

// __syncwarp: the warp's barrier alone (no slot: a lane one collective ahead stays in bounds).
inline void __syncwarp(unsigned = 0xffffffffu) { emu_warps[threadIdx.x / 32].bar.wait(); }

// nvcuda::wmma as kernels/attention_tc.cu uses it (16x16x16 tiles of bf16, fp32 accumulators;
// fill, load, mma, store; no element access): the fragments' layout across lanes is opaque to
// a kernel, so here every lane holds the whole tile. Loads read it all; a store writes one
// eighth of a row a lane (its part), so a kernel that reads a tile back without __syncwarp
// races as on the device; mma sums in double, as emu_mma_bf16.
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
    float x[16][16];  // (row, column) of the tile
};
template <typename F> inline void fill_fragment(F &f, float v) {
    for (auto &row : f.x)
        for (float &e : row) e = v;
}
template <typename T> inline float emu_wmma_value(T v) { return (float)v; }
inline float emu_wmma_value(__nv_bfloat16 v) { return __bfloat162float(v); }
// a (16 x k) and b (k x 16) tiles as stored: row-major (r, c) at p[r ldm + c], column-major at
// p[c ldm + r].
template <typename Use, typename T, typename Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout> &f, const T *p, unsigned ldm) {
    const bool rows = std::is_same<Layout, row_major>::value;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) f.x[r][c] = emu_wmma_value(rows ? p[r * ldm + c] : p[c * ldm + r]);
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p, unsigned ldm,
                             layout_t l) {
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) f.x[r][c] = l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm,
                              layout_t l) {
    const int lane = threadIdx.x % 32, r = lane / 2;
    for (int c = (lane % 2) * 8; c < (lane % 2) * 8 + 8; c++) {
        if (l == mem_row_major)
            p[r * ldm + c] = f.x[r][c];
        else
            p[c * ldm + r] = f.x[r][c];
    }
}
template <typename T, typename LA, typename LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, T, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, T, LB> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c) {
    float out[16][16];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            double acc = c.x[i][j];
            for (int k = 0; k < 16; k++) acc += (double)a.x[i][k] * b.x[k][j];
            out[i][j] = (float)acc;
        }
    memcpy(d.x, out, sizeof out);
}
}  // namespace wmma
}  // namespace nvcuda

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
// time, each of its threads a fiber on the calling thread. A pass resumes them in turn: each
// runs to its next barrier or collective (or its end) and hands over to the next one of the
// pass (emu_yield), one that waits at a barrier not yet complete is passed over, and the last
// switches back to the scheduler, which starts the next pass. A pass that resumes nobody while
// some thread is unfinished is a deadlock (a thread skipped a __syncthreads or a collective,
// or exited before it): that aborts with the block named. Deterministic, and a launch costs
// one switch a thread per sync point instead of the kernel's threads, futexes and the
// operating system's scheduler (what POSIX threads here cost: minutes for a model's step).
// tests/unit/test_simt_emu.cc checks these promises.
//
// The switch saves the System V x86-64 callee-saved registers on the old stack and takes the
// new one's: a dozen instructions (ucontext's swapcontext makes a system call a switch).
#if defined(__x86_64__)
extern "C" void emu_switch(void **save_sp, void *load_sp);
asm(".text\n"
    ".weak emu_switch\n"  // one copy a translation unit: the linker keeps one
    ".type emu_switch, @function\n"
    "emu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size emu_switch, .-emu_switch\n");
#else
#error "simt_emu.h: the fiber switch is written for x86-64"
#endif

// Under ASan: the fibers' frames poison and unpoison their redzones on the fibers' stacks as on
// any stack, so loads and stores are checked as everywhere else. ASan's fiber annotations
// (__sanitizer_start_switch_fiber) are left out: they keep its idea of the current stack
// right, which only a no-return call (abort, longjmp, a throw: none in a kernel) and its
// reports' wording need, and they doubled a model step's time here. What is left to do is
// emu_fiber_start's: a stack handed to a new fiber carries no poison of the finished one.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

enum { EMU_STACK_BYTES = 512 << 10, EMU_GUARD_BYTES = 4096 };
// The scheduler's state for the block that runs: its fibers, the order of this block's passes,
// the position in the pass of the one running, and how many are unfinished.
struct emu_sched {
    void *sp = nullptr;  // the scheduler's, while a fiber runs
    const std::function<void()> *kernel = nullptr;
    emu_fiber *fibers = nullptr;
    int threads = 0, pos = 0, left = 0;
    bool reverse = false;
};
inline emu_sched emu_main;

// The fiber at position i of this pass (every other block resumes its threads last first: see
// emu_launch), or none when it is finished or waits at a barrier still closed.
EMU_UNCHECKED inline emu_fiber *emu_runnable(int i) {
    emu_fiber &f = emu_main.fibers[emu_main.reverse ? emu_main.threads - 1 - i : i];
    if (f.done || (f.waits && f.waits->generation == f.waits_gen)) return nullptr;
    return &f;
}
// The first fiber this pass resumes at or after position i (it becomes the running one), or none.
EMU_UNCHECKED inline emu_fiber *emu_take_next(int i) {
    for (; i < emu_main.threads; i++)
        if (emu_fiber *f = emu_runnable(i)) {
            f->waits = nullptr;
            threadIdx.x = f->tid, threadIdx.y = threadIdx.z = 0, emu_phase = f->phase;
            emu_running = f, emu_main.pos = i;
            return f;
        }
    return nullptr;
}
// The running fiber stops (at a barrier or a collective, or finished) and hands the core to the
// next one of the pass directly, or back to the scheduler at the pass's end: one switch a
// resume instead of two through the scheduler, in the same order.
EMU_UNCHECKED inline void emu_yield() {
    emu_fiber *f = emu_running;
    f->phase = emu_phase;
    if (f->done) emu_main.left--;
    if (emu_fiber *g = emu_take_next(emu_main.pos + 1))
        emu_switch(&f->sp, g->sp);
    else
        emu_switch(&f->sp, emu_main.sp);
}

// The fibers' stacks, made once (mmap, a guard page at the bottom) and kept for the process;
// with ASan, the lowest address a finished fiber's frames may have poisoned.
inline std::vector<unsigned char *> emu_stacks, emu_stack_used;
inline unsigned char *emu_stack(unsigned t) {
    while (emu_stacks.size() <= t) {
        void *m = mmap(nullptr, EMU_STACK_BYTES + EMU_GUARD_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            perror("simt_emu: a fiber's stack");
            abort();
        }
        mprotect(m, EMU_GUARD_BYTES, PROT_NONE);
        emu_stacks.push_back((unsigned char *)m + EMU_GUARD_BYTES);
        emu_stack_used.push_back(nullptr);
    }
    return emu_stacks[t];
}

// Where a fiber starts (through emu_switch's ret): the kernel, then back for good.
inline void emu_fiber_main() {
    (*emu_main.kernel)();
    emu_running->done = true;
#if EMU_ASAN
    // This frame stays on the stack when the fiber is left for good (with whatever a compiler
    // poisoned in it): the next fiber on this stack unpoisons from below it up (emu_fiber_start).
    emu_stack_used[emu_running->tid] = (unsigned char *)__builtin_frame_address(0) - 1024;
#endif
    emu_yield();
    abort();  // a finished fiber is never resumed
}

// A fresh fiber for thread t: its stack as emu_switch leaves one (six registers, then the
// address it returns to, 16-byte aligned as a call would leave it).
inline void emu_fiber_start(emu_fiber &f, unsigned t) {
    f = emu_fiber{};
    f.tid = t, f.stack = emu_stack(t);
#if EMU_ASAN
    if (unsigned char *low = emu_stack_used[t]) {
        __asan_unpoison_memory_region(low, (size_t)(f.stack + EMU_STACK_BYTES - low));
        emu_stack_used[t] = nullptr;
    }
#endif
    uintptr_t top = ((uintptr_t)(f.stack + EMU_STACK_BYTES) & ~(uintptr_t)15) - 16;
    void **sp = (void **)top;
    *sp = (void *)emu_fiber_main;
    for (int r = 0; r < 6; r++) *--sp = nullptr;
    f.sp = sp;
}

// smem: the launch's dynamic shared memory, refilled with 0xff before each block (under ASan
// the rest of emu_smem is poisoned while the launch runs: a kernel past its request is a report).
inline void emu_launch(dim3 grid, int threads, size_t smem, const std::function<void()> &kernel);
inline void emu_launch(dim3 grid, dim3 block, size_t smem, const std::function<void()> &kernel) {  // 1-D blocks
    emu_launch(grid, (int)(block.x * block.y * block.z), smem, kernel);
}
inline void emu_launch(dim3 grid, int threads, size_t smem, const std::function<void()> &kernel) {
    if (smem > sizeof emu_smem) {
        fprintf(stderr, "simt_emu: a launch asks for %zu bytes of dynamic shared memory (at most %zu)\n", smem,
                sizeof emu_smem);
        abort();
    }
    if (threads < 1 || threads > EMU_MAX_THREADS) {
        fprintf(stderr, "simt_emu: a launch of %d threads a block (1 to %d)\n", threads, (int)EMU_MAX_THREADS);
        abort();
    }
    gridDim = grid, blockDim = dim3(threads);
    emu_block_bar = emu_barrier{};
    emu_block_bar.n = threads;
    for (int w = 0; w < (threads + 31) / 32; w++) {
        emu_warps[w].bar = emu_barrier{};
        emu_warps[w].mma_key = ~0u;
        emu_warps[w].bar.n = threads - 32 * w < 32 ? threads - 32 * w : 32;
    }
    emu_main.kernel = &kernel;
    std::vector<emu_fiber> fibers(threads);
    emu_main.fibers = fibers.data(), emu_main.threads = threads;
#if EMU_ASAN
    // Past the dynamic shared memory the launch asked for, an access is an ASan report (on a GPU
    // it reads another block's, or faults).
    __asan_poison_memory_region(emu_smem + smem, sizeof emu_smem - smem);
#endif
    size_t block = 0;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++, block++) {
                memset(emu_smem, 0xff, smem);
                blockIdx = make_uint3(x, y, z);
                for (int t = 0; t < threads; t++) emu_fiber_start(fibers[t], t);
                // Every other block resumes its threads last first: a GPU runs warps in any
                // order, so a value read before a barrier orders it after its write (a missing
                // __syncthreads) comes out wrong in one of the two orders.
                emu_main.reverse = block & 1;
                emu_main.left = threads;
                while (emu_main.left > 0) {
                    // A pass: the fibers run one after another (emu_yield hands over) and the
                    // last one of the pass switches back here.
                    emu_fiber *f = emu_take_next(0);
                    if (!f) {
                        fprintf(stderr,
                                "simt_emu: block (%u, %u, %u): %d threads wait at barriers the others never reach "
                                "(a thread skipped a __syncthreads or a warp collective, or returned before it)\n",
                                x, y, z, emu_main.left);
                        abort();
                    }
                    emu_switch(&emu_main.sp, f->sp);
                }
            }
    emu_running = nullptr;
#if EMU_ASAN
    __asan_unpoison_memory_region(emu_smem, sizeof emu_smem);
#endif
}

#endif
