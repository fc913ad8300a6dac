// test_attention_whole.cu — kernels/attention_ranges.cuh's whole-tile tests on the CPU (compiled
// by nvcc as host code): for packed rows of random samples and padding, a warp's 16 query rows
// "see a whole key tile" exactly when every (query, key) pair of the two is seen (one sample, key
// at or before the query), and a warp's 16 keys "are seen by a whole query tile" exactly when every
// pair is; the attention kernels skip the mask on such tiles, so a "whole" that is wrong once would
// let a query see another sample's key. The warps' reductions are the kernels' (query_rows_of,
// key_rows_of in attention_mma_tile.cuh): the largest start_or_never of the rows; the keys' one
// sample start (their smallest start if it equals their largest) and end.
#include <limits.h>
#include <stdint.h>

#include "check.h"
#include "kernels/attention_ranges.cuh"

enum { T = 256, W = 16, KEYS = 64, QUERIES = 32 };

static unsigned rnd_state = 77;
static unsigned rnd(void) { return rnd_state = rnd_state * 1664525u + 1013904223u; }

static int32_t sg[T], st[T], en[T];

// Sample ids: runs of 1..maxlen positions, padding now and then; one long sample when maxlen >= T.
static void make_row(int maxlen) {
    int i = 0, id = 0;
    while (i < T) {
        int len = 1 + (int)(rnd() % maxlen), pad = rnd() % 5 == 0 ? 1 + (int)(rnd() % 6) : 0;
        for (int k = 0; k < len && i < T; k++) sg[i++] = id;
        for (int k = 0; k < pad && i < T; k++) sg[i++] = -1;
        id++;
    }
    for (int p = 0; p < T; p++) seg_bounds_at(sg, T, p, &st[p], &en[p]);
}

static bool seen(int i, int j) { return i < T && j < T && st[i] >= 0 && st[i] == st[j] && j <= i; }

static int wholes_q, wholes_k, bad;

static void check_row(void) {
    for (int qmin = 0; qmin < T + W; qmin += W) {  // a warp past T too (rows past T are never whole)
        int smax = 0;
        for (int r = 0; r < W; r++) smax = max(smax, start_or_never(qmin + r < T ? st[qmin + r] : -1));
        for (int kt = 0; kt < T; kt++) {
            bool all = true;
            for (int r = 0; r < W && all; r++)
                for (int j = kt; j < kt + KEYS && all; j++) all = seen(qmin + r, j);
            bool whole = queries_see_whole_tile(smax, qmin, kt, KEYS);
            bad += whole != all;
            wholes_q += whole;
        }
    }
    for (int k0 = 0; k0 < T + W; k0 += W) {
        int smin = INT_MAX, smx = INT_MIN, elo = INT_MAX;
        for (int r = 0; r < W; r++) {
            const int j = k0 + r, ks = j < T ? st[j] : -1;
            smin = min(smin, ks), smx = max(smx, ks);
            if (ks >= 0) elo = min(elo, (int)en[j]);
        }
        const int kstart = smin == smx ? smin : -1, kmax = k0 + W - 1;
        for (int qt = 0; qt < T; qt++) {
            bool all = true;
            for (int r = 0; r < W && all; r++)
                for (int i = qt; i < qt + QUERIES && all; i++) all = seen(i, k0 + r);
            bool whole = keys_seen_by_whole_tile(kstart, elo, kmax, qt, QUERIES);
            bad += whole != all;
            wholes_k += whole;
        }
    }
}

static void test_random_rows(void) {
    for (int trial = 0; trial < 60; trial++) {
        make_row(trial % 3 == 0 ? 4 * T : trial % 3 == 1 ? 150 : 40);
        check_row();
    }
    CHECK(bad == 0);
    CHECK(wholes_q > 1000);  // the long samples have whole tiles: the test reaches both answers
    CHECK(wholes_k > 1000);
}

int main(void) {
    RUN(test_random_rows);
    CHECK_EXIT();
}
