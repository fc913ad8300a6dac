// test_pack.c — bin packing, loss masks and truncation (lib/pack.h).
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "data/pack.h"
#include "base/rng.h"

// Checks a packing: every sample in exactly one row, no row over seq_len, rows listed in
// input order, no empty row. Returns the number of problems.
static int check_packing(const int32_t *lens, size_t n, int32_t seq_len, const int32_t *row_of,
                         size_t n_rows) {
    int bad = 0;
    int64_t *used = calloc(n_rows + 1, sizeof *used);
    for (size_t i = 0; i < n; i++) {
        if (row_of[i] < 0 || (size_t)row_of[i] >= n_rows) {
            bad++;
            continue;
        }
        used[row_of[i]] += lens[i];
    }
    for (size_t r = 0; r < n_rows; r++)
        if (used[r] > seq_len || used[r] == 0) bad++;
    int32_t *order = malloc((n + 1) * sizeof *order);
    int64_t *begin = malloc((n_rows + 1) * sizeof *begin);
    vet_err err;
    if (vet_pack_rows(row_of, n, n_rows, order, begin, &err) != 0) bad++;
    else {
        if (begin[n_rows] != (int64_t)n) bad++;
        char *seen = calloc(n + 1, 1);
        for (size_t r = 0; r < n_rows; r++)
            for (int64_t j = begin[r]; j < begin[r + 1]; j++) {
                if (row_of[order[j]] != (int32_t)r || seen[order[j]]) bad++;
                seen[order[j]] = 1;
                if (j > begin[r] && order[j] <= order[j - 1]) bad++;  // input order in a row
            }
        free(seen);
    }
    free(order);
    free(begin);
    free(used);
    return bad;
}

// The first-fit invariant: a row's first (longest) sample did not fit in any earlier row, so
// for rows i < j: used[i] + longest[j] > seq_len. Returns the number of violations.
static int check_first_fit(const int32_t *lens, size_t n, int32_t seq_len, const int32_t *row_of,
                           size_t n_rows) {
    int64_t *used = calloc(n_rows + 1, sizeof *used);
    int32_t *longest = calloc(n_rows + 1, sizeof *longest);
    for (size_t i = 0; i < n; i++) {
        used[row_of[i]] += lens[i];
        if (lens[i] > longest[row_of[i]]) longest[row_of[i]] = lens[i];
    }
    int bad = 0;
    int64_t min_used = INT64_MAX;
    for (size_t r = 0; r < n_rows; r++) {
        if (r > 0 && min_used + longest[r] <= seq_len) bad++;
        if (used[r] < min_used) min_used = used[r];
    }
    free(used);
    free(longest);
    return bad;
}

// Property: random lengths, random seq_len: packing never overflows a row, loses nothing,
// and keeps the first-fit invariant (so at most one row is half empty or worse).
static void test_ffd_property(void) {
    vet_rng rng;
    vet_rng_seed(&rng, 7);
    for (int trial = 0; trial < 300; trial++) {
        int32_t seq_len = 2 + (int32_t)vet_rng_below(&rng, 600);
        size_t n = (size_t)vet_rng_below(&rng, 400);
        int32_t *lens = malloc((n + 1) * sizeof *lens);
        int32_t *row_of = malloc((n + 1) * sizeof *row_of);
        int64_t total = 0;
        int shape = trial % 3;  // uniform, mostly short, mostly long
        for (size_t i = 0; i < n; i++) {
            uint64_t span = shape == 1 ? (uint64_t)(seq_len / 8 + 1) : (uint64_t)seq_len;
            lens[i] = 1 + (int32_t)vet_rng_below(&rng, span);
            if (shape == 2 && lens[i] < seq_len / 2) lens[i] += seq_len / 2;
            if (lens[i] > seq_len) lens[i] = seq_len;
            total += lens[i];
        }
        size_t n_rows = 99;
        vet_err err;
        CHECK(vet_pack_ffd(lens, n, seq_len, row_of, &n_rows, &err) == 0);
        CHECK(check_packing(lens, n, seq_len, row_of, n_rows) == 0);
        CHECK(check_first_fit(lens, n, seq_len, row_of, n_rows) == 0);
        size_t tight_rows = 99;  // the tight packer: valid, never more rows than first fit
        CHECK(vet_pack_tight(lens, n, seq_len, row_of, &tight_rows, &err) == 0);
        CHECK(check_packing(lens, n, seq_len, row_of, tight_rows) == 0);
        CHECK(tight_rows <= n_rows);
        int64_t lower = (total + seq_len - 1) / seq_len;
        CHECK(n_rows >= (size_t)lower);
        CHECK((int64_t)n_rows <= 2 * total / seq_len + 1);
        free(lens);
        free(row_of);
    }
}

// Where first fit decreasing is not tight: 6,6,6,5,5,4,4,4 into rows of 20. FFD fills
// {6,6,6} {5,5,4,4} and leaves a 4 for a third row; the snake deal makes {6,5,5,4} {6,6,4,4}.
static void test_tight_beats_ffd(void) {
    int32_t lens[] = {4, 6, 5, 5, 6, 4, 6, 4};
    int32_t row_of[8];
    size_t n_rows;
    vet_err err;
    CHECK(vet_pack_ffd(lens, 8, 20, row_of, &n_rows, &err) == 0);
    CHECK(n_rows == 3);
    CHECK(vet_pack_tight(lens, 8, 20, row_of, &n_rows, &err) == 0);
    CHECK(n_rows == 2);
    CHECK(check_packing(lens, 8, 20, row_of, n_rows) == 0);
}

// First fit decreasing on a hand-checked case: 6,5,4,3,2 into 10 -> {6,4} {5,3,2}.
static void test_ffd_known(void) {
    int32_t lens[] = {3, 6, 2, 5, 4};
    int32_t row_of[5];
    size_t n_rows;
    vet_err err;
    CHECK(vet_pack_ffd(lens, 5, 10, row_of, &n_rows, &err) == 0);
    CHECK(n_rows == 2);
    CHECK(row_of[1] == 0 && row_of[4] == 0);                 // 6 + 4
    CHECK(row_of[3] == 1 && row_of[0] == 1 && row_of[2] == 1); // 5 + 3 + 2
    // A sample of exactly seq_len fills a row alone.
    int32_t full[] = {10, 1, 10};
    CHECK(vet_pack_ffd(full, 3, 10, row_of, &n_rows, &err) == 0);
    CHECK(n_rows == 3);
    CHECK(row_of[0] == 0 && row_of[2] == 1 && row_of[1] == 2);
}

static void test_ffd_rejects(void) {
    int32_t lens[] = {3, 11};
    int32_t row_of[2];
    size_t n_rows;
    vet_err err = {0};
    CHECK(vet_pack_ffd(lens, 2, 10, row_of, &n_rows, &err) == -1);
    CHECK_CONTAINS(err.msg, "sample 1 has 11 tokens");
    int32_t zero[] = {0};
    CHECK(vet_pack_ffd(zero, 1, 10, row_of, &n_rows, &err) == -1);
    CHECK(vet_pack_ffd(lens, 0, 10, row_of, &n_rows, &err) == 0 && n_rows == 0);
}

// The mask at the edges: prompt then response; the first response token predicted from the
// last prompt token; the EOS carries loss; the last position none.
static void test_targets(void) {
    int32_t tok[] = {1, 10, 11, 12, 20, 21, 2};  // BOS p p p | r r EOS
    int32_t t[7];
    vet_pack_targets(tok, 7, 4, VET_LOSS_RESPONSE, t);
    int32_t want[] = {-1, -1, -1, 20, 21, 2, -1};
    for (int i = 0; i < 7; i++) CHECK(t[i] == want[i]);
    vet_pack_targets(tok, 7, 4, VET_LOSS_ALL, t);
    int32_t want_all[] = {10, 11, 12, 20, 21, 2, -1};
    for (int i = 0; i < 7; i++) CHECK(t[i] == want_all[i]);
    // Response of length 1 (just the EOS): one loss position, the last prompt token.
    int32_t one[] = {1, 10, 2};
    vet_pack_targets(one, 3, 2, VET_LOSS_RESPONSE, t);
    CHECK(t[0] == -1 && t[1] == 2 && t[2] == -1);
    // A one-token sample carries no loss at all.
    vet_pack_targets(one, 1, 1, VET_LOSS_ALL, t);
    CHECK(t[0] == -1);
    // No prompt: every next token is a response token.
    vet_pack_targets(tok, 3, 0, VET_LOSS_RESPONSE, t);
    CHECK(t[0] == 10 && t[1] == 11 && t[2] == -1);
}

static void test_fit(void) {
    int32_t from;
    // Fits exactly: everything kept.
    CHECK(vet_pack_fit(6, 4, 10, VET_TRUNC_NONE, 1, &from) == 6 && from == 0);
    // One too long: rejected without truncation.
    CHECK(vet_pack_fit(7, 4, 10, VET_TRUNC_NONE, 1, &from) == -1);
    // Right: keep the prompt's head.
    CHECK(vet_pack_fit(7, 4, 10, VET_TRUNC_RIGHT, 1, &from) == 6 && from == 0);
    // Left: keep BOS plus the newest 5 prompt tokens (indices 2..6).
    CHECK(vet_pack_fit(7, 4, 10, VET_TRUNC_LEFT, 1, &from) == 6 && from == 2);
    // Response + BOS exactly seq_len: only the BOS is kept.
    CHECK(vet_pack_fit(7, 9, 10, VET_TRUNC_LEFT, 1, &from) == 1 && from == 7);
    CHECK(vet_pack_fit(7, 9, 10, VET_TRUNC_RIGHT, 1, &from) == 1 && from == 0);
    // The response alone fills the row: rejected even with truncation.
    CHECK(vet_pack_fit(7, 10, 10, VET_TRUNC_LEFT, 1, &from) == -1);
    CHECK(vet_pack_fit(7, 12, 10, VET_TRUNC_RIGHT, 1, &from) == -1);
    // Left without a BOS (a tokenizer that adds none): the newest 6 prompt tokens (1..6), and
    // with room for one prompt token, the last one.
    CHECK(vet_pack_fit(7, 4, 10, VET_TRUNC_LEFT, 0, &from) == 6 && from == 1);
    CHECK(vet_pack_fit(7, 9, 10, VET_TRUNC_LEFT, 0, &from) == 1 && from == 6);
    CHECK(vet_pack_fit(7, 4, 10, VET_TRUNC_RIGHT, 0, &from) == 6 && from == 0);
}

static void test_parse_trunc(void) {
    vet_trunc m;
    vet_err err;
    CHECK(vet_pack_parse_trunc("left", &m, &err) == 0 && m == VET_TRUNC_LEFT);
    CHECK(vet_pack_parse_trunc("right", &m, &err) == 0 && m == VET_TRUNC_RIGHT);
    CHECK(vet_pack_parse_trunc("middle", &m, &err) == -1);
    CHECK_CONTAINS(err.msg, "expected left or right");
}

static void test_shuffle(void) {
    int32_t a[50], b[50], c[50];
    vet_pack_shuffle(a, 50, 1);
    vet_pack_shuffle(b, 50, 1);
    vet_pack_shuffle(c, 50, 2);
    int same = 1, differs = 0, seen[50] = {0};
    for (int i = 0; i < 50; i++) {
        same &= a[i] == b[i];
        differs |= a[i] != c[i];
        if (a[i] >= 0 && a[i] < 50) seen[a[i]]++;
    }
    CHECK(same);
    CHECK(differs);
    for (int i = 0; i < 50; i++) CHECK(seen[i] == 1);
}

int main(void) {
    RUN(test_ffd_property);
    RUN(test_ffd_known);
    RUN(test_tight_beats_ffd);
    RUN(test_ffd_rejects);
    RUN(test_targets);
    RUN(test_fit);
    RUN(test_parse_trunc);
    RUN(test_shuffle);
    CHECK_EXIT();
}
