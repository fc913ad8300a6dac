// test_simt_emu.cc — the SIMT emulator itself (tests/unit/simt_emu.h), on which every *_emu test
// and the emulated device (mk/gpuemu.mk) rest: what a kernel may rely on (barriers of the block
// and the warp, shuffles, blocks of any size, threads that finish early), what the emulator
// promises to catch (a missing __syncthreads shows in one of the two orders blocks are resumed
// in; a thread that skips a barrier aborts with the block named), and that a fiber's stack comes
// back clean for the next block under ASan.
#include "simt_emu.h"

#include <signal.h>
#include <sys/wait.h>

extern "C" {
#include "check.h"
}

// In-kernel, 256 threads: a block's sum through the warps' butterflies and shared memory, twice
// (the second sum reuses the slots the first left), and a broadcast from a lane of each warp.
static void sums_kernel(float *sums, float *bcast, int rounds) {
    __shared__ float part[32];
    float x = (float)(threadIdx.x + 1 + blockIdx.x);
    for (int r = 0; r < rounds; r++) {
        float s = x;
        for (int m = 16; m > 0; m >>= 1) s += __shfl_xor_sync(0xffffffffu, s, m);
        if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = s;
        __syncthreads();
        float t = 0.0f;
        for (int w = 0; w < (int)blockDim.x / 32; w++) t += part[w];
        __syncthreads();  // every thread has read part before the next round writes it
        if (threadIdx.x == 0) sums[blockIdx.x * rounds + r] = t;
    }
    float b = __shfl_sync(0xffffffffu, x, 5);
    bcast[blockIdx.x * blockDim.x + threadIdx.x] = b;
}

static void test_collectives(void) {
    const int grid = 3, threads = 256, rounds = 4;
    std::vector<float> sums(grid * rounds, NAN), bcast(grid * threads, NAN);
    emu_launch(dim3(grid), threads, 0, [&] { sums_kernel(sums.data(), bcast.data(), rounds); });
    for (int b = 0; b < grid; b++) {
        const float want = (float)(threads * (threads + 1) / 2 + threads * b);  // exact in fp32
        for (int r = 0; r < rounds; r++) CHECK(sums[b * rounds + r] == want);
        for (int t = 0; t < threads; t++) CHECK(bcast[b * threads + t] == (float)((t / 32) * 32 + 5 + 1 + b));
    }
}

// Warp 1 returns at once; warp 0 goes on through 40 of its warp's barriers; warp 2 through 3.
// Threads that finish in the middle of a pass leave the others' order and count intact.
static void early_exit_kernel(int *counts) {
    const int warp = threadIdx.x / 32;
    if (warp == 1) return;
    const int n = warp == 0 ? 40 : 3;
    int c = 0;
    for (int i = 0; i < n; i++) {
        __syncwarp();
        c += __shfl_xor_sync(0xffffffffu, 1, 1);
    }
    counts[threadIdx.x] = c;
}

static void test_threads_finish_early(void) {
    std::vector<int> counts(96, -1);
    emu_launch(dim3(2), 96, 0, [&] { early_exit_kernel(counts.data()); });
    for (int t = 0; t < 96; t++) CHECK(counts[t] == (t < 32 ? 40 : t < 64 ? -1 : 3));
}

// A missing __syncthreads: each thread writes its slot and reads its neighbour's without a
// barrier between. Resumed first to last (block 0), every thread but the last reads its
// neighbour's slot before it is written this block; last to first (block 1), every thread but
// the last finds it written. The race shows in the values, as a GPU's warp order would show
// it; with the barrier both blocks read every slot written.
static void race_kernel(int *out, bool barrier) {
    __shared__ int slot[64];
    slot[threadIdx.x] = (int)threadIdx.x + 1000 * (int)blockIdx.x;
    if (barrier) __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = slot[(threadIdx.x + 1) % blockDim.x] - 1000 * (int)blockIdx.x;
}

static void test_missing_barrier_shows(void) {
    for (int barrier = 0; barrier < 2; barrier++) {
        std::vector<int> out(2 * 64, -1);
        emu_launch(dim3(2), 64, 0, [&] { race_kernel(out.data(), barrier); });
        int right[2] = {0, 0};  // threads 0..62 of each block that read the neighbour's value
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < 63; t++) right[b] += out[64 * b + t] == t + 1;
        CHECK(right[0] == (barrier ? 63 : 0));
        CHECK(right[1] == 63);
        // The last thread reads slot 0: block 0 wrote it first; block 1 writes it last, so
        // without the barrier its thread 63 reads block 0's value there.
        CHECK(out[63] == 0 && out[127] == (barrier ? 0 : -1000));
    }
}

// A thread that returns before a __syncthreads the others wait at: the launch aborts and says
// which block (in a child process: abort is the emulator's answer).
static void deadlock_kernel(void) {
    if (threadIdx.x == 7 && blockIdx.x == 1) return;
    __syncthreads();
}

static void test_skipped_barrier_aborts(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        emu_launch(dim3(3), 64, 0, [] { deadlock_kernel(); });
        _exit(0);  // not reached when the emulator does its job
    }
    close(fds[1]);
    char msg[1024] = {0};
    size_t got = 0;
    ssize_t r;
    while (got < sizeof msg - 1 && (r = read(fds[0], msg + got, sizeof msg - 1 - got)) > 0) got += (size_t)r;
    close(fds[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(msg, "block (1, 0, 0): 63 threads wait at barriers the others never reach") != NULL);
}

// Many short launches of many barriers (the fibers' stacks reused block after block, and under
// ASan their frames' poison cleared): the sums stay right.
static void test_many_blocks(void) {
    const int grid = 64, threads = 1024;
    std::vector<float> sums(grid, NAN), bcast(grid * threads, NAN);
    for (int rep = 0; rep < 3; rep++)
        emu_launch(dim3(grid), threads, 0, [&] { sums_kernel(sums.data(), bcast.data(), 1); });
    for (int b = 0; b < grid; b++) CHECK(sums[b] == (float)(threads * (threads + 1) / 2 + threads * b));
}

int main(void) {
    RUN(test_collectives);
    RUN(test_threads_finish_early);
    RUN(test_missing_barrier_shows);
    RUN(test_skipped_barrier_aborts);
    RUN(test_many_blocks);
    CHECK_EXIT();
}
