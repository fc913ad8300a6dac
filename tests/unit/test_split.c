// test_split.c — grouped and stratified splits, note normalization (lib/split.h).
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "base/rng.h"
#include "data/split.h"

static void test_parse_shares(void) {
    double s[3];
    vet_err err = {0};
    CHECK(vet_split_parse_shares("80/10/10", s, &err) == 0);
    CHECK_NEAR(s[0], 0.8, 1e-12);
    CHECK_NEAR(s[1], 0.1, 1e-12);
    CHECK_NEAR(s[2], 0.1, 1e-12);
    CHECK(vet_split_parse_shares("100/0/0", s, &err) == 0);
    CHECK(s[0] == 1 && s[1] == 0 && s[2] == 0);
    CHECK(vet_split_parse_shares("1/1/2", s, &err) == 0);
    CHECK_NEAR(s[2], 0.5, 1e-12);
    CHECK(vet_split_parse_shares("0.7/0.15/0.15", s, &err) == 0);
    CHECK_NEAR(s[0], 0.7, 1e-12);
    const char *bad[] = {"80/10", "80/10/10/", "a/b/c", "-1/1/1", "0/0/0", "80/10/x", "nan/1/1",
                         "inf/1/1", "", "80,10,10", "80/10/10 ", "0x50/0x10/0x10", "1e308/1e308/1e308",
                         " 80/10/10", "80/1e-400/10"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = 0;
        CHECK(vet_split_parse_shares(bad[i], s, &err) == -1);
        CHECK_CONTAINS(err.msg, "--split");
        CHECK(err.kind == VET_E_USAGE);
    }
}

static void test_normalize(void) {
    const char *in = "  Cow.\tHigh   FEVER\r\n and Nasal discharge.  \n";
    char out[64];
    size_t n = vet_split_normalize(in, strlen(in), out);
    CHECK_STR(out, "cow. high fever and nasal discharge.");
    CHECK(n == strlen(out));
    // Non-ASCII bytes stay as they are; only ASCII letters fold.
    const char *utf = "\xc3\x89T\xc3\xa9  Z";  // "ÉTé  Z"
    vet_split_normalize(utf, strlen(utf), out);
    CHECK_STR(out, "\xc3\x89t\xc3\xa9 z");
    CHECK(vet_split_normalize("   \t", 4, out) == 0 && out[0] == 0);
    CHECK(vet_split_normalize("", 0, out) == 0 && out[0] == 0);
    // Not NUL-terminated input: only n bytes read.
    vet_split_normalize("AbcDEF", 3, out);
    CHECK_STR(out, "abc");
}

// The key of a note: byte for byte vet_split_normalize's for ASCII; NFKC, case folding and
// Unicode spaces for the rest; bytes that are not UTF-8 kept.
static void check_key(const char *a, const char *b, int same) {
    char *ka = vet_split_key(a, strlen(a)), *kb = vet_split_key(b, strlen(b));
    CHECK(ka && kb);
    if (ka && kb) CHECK((strcmp(ka, kb) == 0) == same);
    free(ka);
    free(kb);
}

static void test_key(void) {
    const char *in = "  Cow.\tHigh   FEVER\r\n and Nasal discharge.  \n";
    char ascii[64];
    vet_split_normalize(in, strlen(in), ascii);
    char *k = vet_split_key(in, strlen(in));
    CHECK(k);
    if (k) CHECK_STR(k, ascii);
    free(k);
    check_key("Fi\xc3\xa8vre", "fie\xcc\x80vre", 1);          // U+00E8 and e + U+0300 (NFC vs NFD)
    check_key("\xc3\x89T\xc3\x89", "\xc3\xa9t\xc3\xa9", 1);     // ÉTÉ and été (case folding)
    check_key("Stra\xc3\x9f" "e", "STRASSE", 1);               // ß folds to ss
    check_key("\xef\xac\x81" "eld", "field", 1);                // the ligature U+FB01 (NFKC)
    check_key("Cow\xc2\xa0" "fever", "cow  fever", 1);           // a no-break space
    check_key("Cow\xe2\x80\xa8" "fever\xe3\x80\x80", "cow fever", 1);  // U+2028, U+3000
    check_key("vesi\xc2\xad" "cles", "vesicles", 1);          // a soft hyphen (default ignorable)
    check_key("\xc3\xa9t\xc3\xa9", "ete", 0);                 // accents still count
    check_key("caf\xc3\xa9", "caf\xc3", 0);                    // not UTF-8: its bytes as they are
    char *bad = vet_split_key("X\xff  Y", 5);
    CHECK(bad && strcmp(bad, "x\xff y") == 0);
    free(bad);
    char *empty = vet_split_key("\xc2\xa0 ", 3);
    CHECK(empty && empty[0] == 0);
    free(empty);
}

static void test_label(void) {
    char *codes[] = {"75702008", "1679004", "75702008"};
    char *l = vet_split_label(codes, 3);
    CHECK_STR(l, "1679004;75702008");
    free(l);
    l = vet_split_label(NULL, 0);
    CHECK_STR(l, "");
    free(l);
}

static void test_index_keys(void) {
    char *keys[] = {"b", "a", "b", "c", "a", "b"};
    int32_t id[6];
    vet_err err;
    CHECK(vet_split_index_keys(keys, 6, id, &err) == 3);
    int32_t want[] = {0, 1, 0, 2, 1, 0};
    for (int i = 0; i < 6; i++) CHECK(id[i] == want[i]);
    CHECK(vet_split_index_keys(keys, 0, id, &err) == 0);
}

// Random data: n samples in groups of 1..max_group, labels per group (pure groups) with a
// skewed distribution. Fills group_of / stratum_of; returns the group count.
static int32_t make_data(vet_rng *rng, size_t n, int max_group, int n_labels, int32_t *group_of,
                         int32_t *stratum_of) {
    int32_t g = -1;
    size_t left_in_group = 0;
    int32_t label = 0;
    for (size_t i = 0; i < n; i++) {
        if (left_in_group == 0) {
            g++;
            left_in_group = 1 + vet_rng_below(rng, (uint64_t)max_group);
            // label k with weight ~ 1/(k+1): the first labels dominate
            double u = vet_rng_uniform_double(rng), total = 0, acc = 0;
            for (int k = 0; k < n_labels; k++) total += 1.0 / (k + 1);
            label = n_labels - 1;
            for (int k = 0; k < n_labels; k++) {
                acc += 1.0 / (k + 1) / total;
                if (u < acc) {
                    label = k;
                    break;
                }
            }
        }
        group_of[i] = g;
        stratum_of[i] = label;
        left_in_group--;
    }
    // Shuffle the samples so groups are not contiguous in the input.
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)vet_rng_below(rng, i);
        int32_t t = group_of[i - 1];
        group_of[i - 1] = group_of[j];
        group_of[j] = t;
        t = stratum_of[i - 1];
        stratum_of[i - 1] = stratum_of[j];
        stratum_of[j] = t;
    }
    return g + 1;
}

// No group is ever split; shares hold overall; deterministic in the seed.
static void test_assign_grouped(void) {
    vet_rng rng;
    vet_rng_seed(&rng, 11);
    const double shares[][3] = {{0.8, 0.1, 0.1}, {1, 0, 0}, {0, 0, 1}, {0.5, 0.5, 0}, {1 / 3.0, 1 / 3.0, 1 / 3.0}};
    for (int trial = 0; trial < 40; trial++) {
        size_t n = 1 + vet_rng_below(&rng, 3000);
        int max_group = 1 + (int)vet_rng_below(&rng, 8);
        int32_t *group_of = malloc(n * sizeof *group_of), *stratum_of = malloc(n * sizeof *stratum_of);
        uint8_t *split = malloc(n), *again = malloc(n);
        int32_t G = make_data(&rng, n, max_group, 5, group_of, stratum_of);
        const double *sh = shares[trial % 5];
        int strat = trial % 2;
        vet_err err;
        CHECK(vet_split_assign(group_of, G, strat ? stratum_of : NULL, 5, n, sh, (uint64_t)trial, split, &err) == 0);
        int8_t *group_split = malloc((size_t)G);
        memset(group_split, -1, (size_t)G);
        int64_t count[3] = {0, 0, 0};
        for (size_t i = 0; i < n; i++) {
            CHECK(split[i] < 3);
            if (group_split[group_of[i]] >= 0) CHECK(group_split[group_of[i]] == split[i]);
            group_split[group_of[i]] = (int8_t)split[i];
            count[split[i]]++;
        }
        for (int k = 0; k < 3; k++) {
            if (sh[k] == 0) CHECK(count[k] == 0);
            // overall: within one group of the ideal (rounded), plus one
            CHECK(fabs((double)count[k] - sh[k] * (double)n) <= max_group + 1);
        }
        CHECK(vet_split_assign(group_of, G, strat ? stratum_of : NULL, 5, n, sh, (uint64_t)trial, again, &err) == 0);
        CHECK(memcmp(split, again, n) == 0);
        free(group_of);
        free(stratum_of);
        free(split);
        free(again);
        free(group_split);
    }
}

// Stratified: each label's count in each split stays within 2 * (largest group + 1) samples of
// share * (label's count) — the stated tolerance (see split.h: quotas per stratum, error carried).
static void test_assign_stratified(void) {
    vet_rng rng;
    vet_rng_seed(&rng, 5);
    const double sh[3] = {0.8, 0.1, 0.1};
    int worst_plain = 0, worst_strat = 0;
    for (int trial = 0; trial < 20; trial++) {
        size_t n = 2000;
        int max_group = 3, L = 12;
        int32_t *group_of = malloc(n * sizeof *group_of), *stratum_of = malloc(n * sizeof *stratum_of);
        uint8_t *split = malloc(n), *plain = malloc(n);
        int32_t G = make_data(&rng, n, max_group, L, group_of, stratum_of);
        vet_err err;
        CHECK(vet_split_assign(group_of, G, stratum_of, L, n, sh, 100 + (uint64_t)trial, split, &err) == 0);
        CHECK(vet_split_assign(group_of, G, NULL, L, n, sh, 100 + (uint64_t)trial, plain, &err) == 0);
        int64_t per[12][3] = {{0}}, per_plain[12][3] = {{0}}, total[12] = {0};
        for (size_t i = 0; i < n; i++) {
            per[stratum_of[i]][split[i]]++;
            per_plain[stratum_of[i]][plain[i]]++;
            total[stratum_of[i]]++;
        }
        for (int l = 0; l < L; l++)
            for (int k = 0; k < 3; k++) {
                double want = sh[k] * (double)total[l];
                double dev = fabs((double)per[l][k] - want), dev_plain = fabs((double)per_plain[l][k] - want);
                CHECK(dev <= 2.0 * (max_group + 1));
                if (dev > worst_strat) worst_strat = (int)dev;
                if (dev_plain > worst_plain) worst_plain = (int)dev_plain;
            }
        free(group_of);
        free(stratum_of);
        free(split);
        free(plain);
    }
    // Stratification must actually help over a plain grouped split on the same data.
    CHECK(worst_strat < worst_plain);
}

// Mixed-label groups (label noise): a group follows its majority label and is still whole.
static void test_assign_mixed_groups(void) {
    int32_t group_of[] = {0, 0, 0, 1, 1, 2, 3, 3, 3, 3};
    int32_t stratum_of[] = {1, 0, 1, 0, 0, 2, 2, 1, 2, 0};
    uint8_t split[10];
    const double sh[3] = {0.6, 0.2, 0.2};
    vet_err err;
    CHECK(vet_split_assign(group_of, 4, stratum_of, 3, 10, sh, 3, split, &err) == 0);
    CHECK(split[0] == split[1] && split[1] == split[2]);
    CHECK(split[3] == split[4]);
    CHECK(split[6] == split[7] && split[7] == split[8] && split[8] == split[9]);
    // Out-of-range ids fail.
    int32_t bad_group[] = {0, 7};
    CHECK(vet_split_assign(bad_group, 2, NULL, 1, 2, sh, 3, split, &err) == -1);
    CHECK_CONTAINS(err.msg, "out of range");
    const double zero[3] = {0, 0, 0};
    CHECK(vet_split_assign(group_of, 4, NULL, 1, 10, zero, 3, split, &err) == -1);
}

// Different seeds give different splits (the seed is used), same seed the same.
static void test_assign_seed(void) {
    enum { N = 500 };
    int32_t group_of[N];
    uint8_t a[N], b[N];
    for (int i = 0; i < N; i++) group_of[i] = i / 2;
    const double sh[3] = {0.8, 0.1, 0.1};
    vet_err err;
    CHECK(vet_split_assign(group_of, N / 2, NULL, 1, N, sh, 1, a, &err) == 0);
    CHECK(vet_split_assign(group_of, N / 2, NULL, 1, N, sh, 2, b, &err) == 0);
    CHECK(memcmp(a, b, N) != 0);
}

// The assignment is part of the output's bytes (the same seed must give the same split in every
// version): fixed inputs against hashes recorded from the implementation when it was written.
static uint64_t fnv1a(const uint8_t *b, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
static void test_assign_golden(void) {
    enum { N = 3000 };
    static int32_t group_of[N], stratum_of[N];
    static uint8_t split[N];
    const double shares[][3] = {{0.8, 0.1, 0.1}, {0.6, 0.2, 0.2}, {0.5, 0, 0.5}, {1, 0, 0}};
    static const uint64_t want[4][2] = {
        {0x7f671f18ba8da713ull, 0x1ed1ec950d78afdeull}, {0x3b1e33f4ff630a2dull, 0x74fc2e92636b5c00ull},
        {0x8cefd8a54c3718d1ull, 0x225b172ecd7a1343ull}, {0xd082c5f0c931ee23ull, 0xd082c5f0c931ee23ull}};
    vet_rng rng;
    vet_rng_seed(&rng, 2024);
    int32_t G = make_data(&rng, N, 6, 9, group_of, stratum_of);
    // Label noise: one sample in 13 carries another label than its group's.
    for (size_t i = 0; i < N; i += 13) stratum_of[i] = (stratum_of[i] + 1) % 9;
    for (int t = 0; t < 4; t++)
        for (int strat = 0; strat < 2; strat++) {
            vet_err err;
            CHECK(vet_split_assign(group_of, G, strat ? stratum_of : NULL, 9, N, shares[t], 17 + (uint64_t)t, split,
                                   &err) == 0);
            uint64_t h = fnv1a(split, N);
            if (h != want[t][strat]) fprintf(stderr, "golden %d/%d: 0x%016llxull\n", t, strat, (unsigned long long)h);
            CHECK(h == want[t][strat]);
        }
}

static void test_parse_fold(void) {
    int i = -1, k = -1;
    vet_err err = {0};
    CHECK(vet_split_parse_fold("0/10", &i, &k, &err) == 0 && i == 0 && k == 10);
    CHECK(vet_split_parse_fold("9/10", &i, &k, &err) == 0 && i == 9 && k == 10);
    CHECK(vet_split_parse_fold("1/2", &i, &k, &err) == 0 && i == 1 && k == 2);
    CHECK(vet_split_parse_fold("99/100", &i, &k, &err) == 0 && i == 99 && k == 100);
    const char *bad[] = {"10/10", "-1/10", "0/1", "0/101", "a/b", "0/10x", "/10", "0/", "", "0", " 0/10", "0/10/3",
                         "0//10", "00000000000000000000000000000000000000/10", "0/99999999999999999999"};
    for (size_t j = 0; j < sizeof bad / sizeof *bad; j++) {
        err.msg[0] = 0;
        err.kind = VET_E_INPUT;
        CHECK(vet_split_parse_fold(bad[j], &i, &k, &err) == -1);
        CHECK_CONTAINS(err.msg, "--fold");
        CHECK(err.kind == VET_E_USAGE);
    }
}

static void test_parse_train_val(void) {
    double s[3] = {-1, -1, -1};
    vet_err err = {0};
    CHECK(vet_split_parse_train_val("80/10", s, &err) == 0);
    CHECK_NEAR(s[0], 8 / 9.0, 1e-12);
    CHECK_NEAR(s[1], 1 / 9.0, 1e-12);
    CHECK(s[2] == 0);
    CHECK(vet_split_parse_train_val("100/0", s, &err) == 0 && s[0] == 1 && s[1] == 0 && s[2] == 0);
    const char *bad[] = {"80/10/10", "0/0", "a/b", "80", "", "80/", "/10", "-1/2", "80/10 "};
    for (size_t j = 0; j < sizeof bad / sizeof *bad; j++) {
        err.msg[0] = 0;
        CHECK(vet_split_parse_train_val(bad[j], s, &err) == -1);
        CHECK_CONTAINS(err.msg, "--split");
        CHECK_CONTAINS(err.msg, "--fold");
        CHECK(err.kind == VET_E_USAGE);
    }
}

// K bins with equal shares (the folds of a cross-validation): no group split across folds, every
// fold within a largest group of n / K, each label's share kept per fold when stratified; and
// three bins are vet_split_assign itself, bit for bit.
static void test_assign_bins(void) {
    vet_rng rng;
    vet_rng_seed(&rng, 5);
    for (int trial = 0; trial < 30; trial++) {
        size_t n = 50 + vet_rng_below(&rng, 3000);
        int max_group = 1 + (int)vet_rng_below(&rng, 6), K = 2 + (int)vet_rng_below(&rng, 11);
        int32_t *group_of = malloc(n * sizeof *group_of), *stratum_of = malloc(n * sizeof *stratum_of);
        uint8_t *bin = malloc(n), *three = malloc(n);
        int32_t G = make_data(&rng, n, max_group, 5, group_of, stratum_of);
        int strat = trial % 2;
        double share[VET_SPLIT_MAX_BINS];
        for (int k = 0; k < K; k++) share[k] = 1.0 / K;
        vet_err err;
        CHECK(vet_split_assign_bins(group_of, G, strat ? stratum_of : NULL, 5, n, K, share, (uint64_t)trial, bin,
                                    &err) == 0);
        int32_t *bin_of_group = malloc((size_t)G * sizeof *bin_of_group);
        for (int32_t g = 0; g < G; g++) bin_of_group[g] = -1;
        size_t count[VET_SPLIT_MAX_BINS] = {0}, label_count[VET_SPLIT_MAX_BINS][5] = {{0}}, label_total[5] = {0};
        for (size_t i = 0; i < n; i++) {
            CHECK(bin[i] < K);
            if (bin_of_group[group_of[i]] < 0) bin_of_group[group_of[i]] = bin[i];
            CHECK(bin_of_group[group_of[i]] == bin[i]);
            count[bin[i]]++;
            label_count[bin[i]][stratum_of[i]]++;
            label_total[stratum_of[i]]++;
        }
        // Within about twice the largest group of the ideal: groups come whole.
        for (int k = 0; k < K; k++) CHECK(fabs((double)count[k] - (double)n / K) <= 2.0 * max_group + 1);
        if (strat)
            for (int k = 0; k < K; k++)
                for (int l = 0; l < 5; l++)
                    CHECK(fabs((double)label_count[k][l] - (double)label_total[l] / K) <= 2.0 * max_group + 1);
        const double sh3[3] = {0.7, 0.2, 0.1};
        CHECK(vet_split_assign_bins(group_of, G, strat ? stratum_of : NULL, 5, n, 3, sh3, 9, bin, &err) == 0);
        CHECK(vet_split_assign(group_of, G, strat ? stratum_of : NULL, 5, n, sh3, 9, three, &err) == 0);
        CHECK(memcmp(bin, three, n) == 0);
        free(bin_of_group), free(group_of), free(stratum_of), free(bin), free(three);
    }
    int32_t group_of[4] = {0, 1, 2, 3};
    uint8_t out[4];
    double share[VET_SPLIT_MAX_BINS + 1] = {1};
    vet_err err;
    CHECK(vet_split_assign_bins(group_of, 4, NULL, 1, 4, 0, share, 1, out, &err) == -1);
    CHECK(vet_split_assign_bins(group_of, 4, NULL, 1, 4, VET_SPLIT_MAX_BINS + 1, share, 1, out, &err) == -1);
}

int main(void) {
    RUN(test_parse_shares);
    RUN(test_parse_fold);
    RUN(test_parse_train_val);
    RUN(test_assign_bins);
    RUN(test_normalize);
    RUN(test_key);
    RUN(test_label);
    RUN(test_index_keys);
    RUN(test_assign_grouped);
    RUN(test_assign_stratified);
    RUN(test_assign_mixed_groups);
    RUN(test_assign_seed);
    RUN(test_assign_golden);
    CHECK_EXIT();
}
