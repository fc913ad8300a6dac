// test_seg_bounds.cu — kernels/attention_ranges.cuh's seg_bounds_at on the CPU (compiled by nvcc
// as host code, run where nvcc is, as in CI): for packed rows of random samples, padding between
// and after them, and samples with the same id on both sides of padding, each position's run
// [start, end) equals a serial walk over the row (what the kernel computed before, a thread a row).
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "kernels/attention_ranges.cuh"

static unsigned rnd_state = 2024;
static unsigned rnd(void) { return rnd_state = rnd_state * 1664525u + 1013904223u; }

// The serial walk: runs of equal non-negative ids; padding -1, -1.
static void serial(const int32_t *sg, int T, int32_t *st, int32_t *en) {
    int i = 0;
    while (i < T) {
        if (sg[i] < 0) {
            st[i] = en[i] = -1;
            i++;
            continue;
        }
        int s = i;
        while (i < T && sg[i] == sg[s]) i++;
        for (int j = s; j < i; j++) st[j] = s, en[j] = i;
    }
}

static void test_random_rows(void) {
    enum { T = 300 };
    int32_t sg[T], st0[T], en0[T];
    int bad = 0, runs = 0;
    for (int trial = 0; trial < 500; trial++) {
        int i = 0, id = (int)(rnd() % 3);
        while (i < T) {
            int len = 1 + (int)(rnd() % (trial % 5 == 0 ? T : 40));
            int pad = rnd() % 4 == 0 ? (int)(rnd() % 5) : 0;
            for (int k = 0; k < len && i < T; k++) sg[i++] = id;
            for (int k = 0; k < pad && i < T; k++) sg[i++] = -1;
            id += rnd() % 3 == 0 && pad ? 0 : 1;  // sometimes the same id across padding: two runs
            runs++;
        }
        serial(sg, T, st0, en0);
        for (int p = 0; p < T; p++) {
            int32_t s, e;
            seg_bounds_at(sg, T, p, &s, &e);
            bad += s != st0[p] || e != en0[p];
        }
    }
    CHECK(runs > 1000);
    CHECK(bad == 0);
}

static void test_edges(void) {
    const int32_t all_pad[4] = {-1, -1, -1, -1}, one[1] = {7}, split[5] = {3, 3, -1, 3, 3};
    int32_t s, e;
    seg_bounds_at(all_pad, 4, 2, &s, &e);
    CHECK(s == -1 && e == -1);
    seg_bounds_at(one, 1, 0, &s, &e);
    CHECK(s == 0 && e == 1);
    seg_bounds_at(split, 5, 1, &s, &e);
    CHECK(s == 0 && e == 2);
    seg_bounds_at(split, 5, 3, &s, &e);
    CHECK(s == 3 && e == 5);
}

int main(void) {
    RUN(test_random_rows);
    RUN(test_edges);
    CHECK_EXIT();
}
