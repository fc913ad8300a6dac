// test_compare.c — two sets of predictions of the same notes compared note by note
// (lib/eval/compare.h): McNemar's exact p against values worked out with exact fractions, its
// grouped sign-flip form against brute force and against McNemar's with groups of one, the 2x2
// table and difference on hand-made notes, the paired interval, and the refusals (an id in one
// set only, a note with other gold labels, a sample without an id).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "eval/compare.h"

static void mcnemar(void) {
    // p = min(1, 2 sum_{k <= min(b,c)} C(b+c, k) / 2^(b+c)), by Python's fractions.Fraction.
    CHECK(vet_mcnemar_p(0, 0) == 1);
    CHECK(vet_mcnemar_p(1, 0) == 1);
    CHECK(vet_mcnemar_p(3, 3) == 1);
    CHECK_NEAR(vet_mcnemar_p(5, 0), 0.0625, 1e-15);
    CHECK_NEAR(vet_mcnemar_p(14, 5), 0.063568115234375, 1e-13);  // 2 x 16664 / 2^19
    CHECK_NEAR(vet_mcnemar_p(5, 14), 0.063568115234375, 1e-13);
    CHECK_NEAR(vet_mcnemar_p(60, 40), 0.05688793364098079, 1e-12);
    CHECK_NEAR(vet_mcnemar_p(1000, 900), 0.02310884510890107, 1e-11);  // terms far below 2^-1000
}

// The sign-flip p of net counts by brute force: all 2^m sign patterns of the m groups.
static double flips_brute(const long *net, int m) {
    long total = 0;
    for (int g = 0; g < m; g++) total += net[g];
    long hit = 0;
    for (long pattern = 0; pattern < (1L << m); pattern++) {
        long sum = 0;
        for (int g = 0; g < m; g++) sum += (pattern >> g & 1) ? net[g] : -net[g];
        hit += labs(sum) >= labs(total);
    }
    return (double)hit / (double)(1L << m);
}

static void grouped_mcnemar(void) {
    int exact = -1;
    // By hand: {3, 1} flips to 4, 2, -2, -4 (|sum| >= 4: 2 of 4); {2, 2, 1}: 5 and -5 of 8; {2, -1}:
    // every sum reaches |1|; one group alone is never evidence; groups that cancel take no part.
    CHECK(vet_grouped_mcnemar_p((long[]){3, 1}, 2, &exact) == 0.5 && exact == 1);
    CHECK(vet_grouped_mcnemar_p((long[]){2, 2, 1}, 3, NULL) == 0.25);
    CHECK(vet_grouped_mcnemar_p((long[]){2, -1}, 2, NULL) == 1);
    CHECK(vet_grouped_mcnemar_p((long[]){4}, 1, NULL) == 1);
    CHECK(vet_grouped_mcnemar_p((long[]){0, 3, 0, 1, 0}, 5, NULL) == 0.5);
    CHECK(vet_grouped_mcnemar_p((long[]){0, 0}, 2, NULL) == 1);
    // Groups of one discordant note each: McNemar's exact p, to the bit.
    for (size_t b = 0; b <= 30; b += 3)
        for (size_t c = 0; c <= 12; c++) {
            long net[42];
            for (size_t k = 0; k < b + c; k++) net[k] = k < b ? 1 : -1;
            CHECK(vet_grouped_mcnemar_p(net, b + c, NULL) == vet_mcnemar_p(b, c));
        }
    // Against brute force on made-up groups (sizes 1-6, either sign), and a group's copies: every
    // count times 3 gives the same p (a note written three times is one outcome, not three).
    unsigned state = 12345;
    for (int trial = 0; trial < 200; trial++) {
        int m = 1 + trial % 12;
        long net[12], net3[12];
        for (int g = 0; g < m; g++) {
            state = state * 1103515245u + 12345u;
            net[g] = (long)(state >> 16) % 13 - 6;
            net3[g] = 3 * net[g];
        }
        double p = vet_grouped_mcnemar_p(net, (size_t)m, &exact);
        CHECK_NEAR(p, flips_brute(net, m), 1e-12);
        CHECK(exact == 1);
        CHECK_NEAR(vet_grouped_mcnemar_p(net3, (size_t)m, NULL), p, 1e-12);
    }
    // Past 20 groups the subset-sum table instead of enumeration: against brute force at 21
    // groups, and against two binomials: 13 groups of net +-1 (8 up) and 12 of +-2 (9 up) sum to
    // (2 X1 - 13) + 2 (2 X2 - 12), X1 ~ B(13, 1/2), X2 ~ B(12, 1/2); observed 3 + 12 = 15.
    for (int trial = 0; trial < 4; trial++) {
        long net[21];
        for (int g = 0; g < 21; g++) {
            state = state * 1103515245u + 12345u;
            net[g] = (long)(state >> 16) % 9 - 4;
            if (net[g] == 0) net[g] = 3;  // all 21 take part
        }
        CHECK_NEAR(vet_grouped_mcnemar_p(net, 21, &exact), flips_brute(net, 21), 1e-12);
        CHECK(exact == 1);
    }
    long mixed[25];
    for (int g = 0; g < 25; g++) mixed[g] = g < 13 ? (g < 8 ? 1 : -1) : (g < 13 + 9 ? 2 : -2);
    double want = 0;
    for (int x1 = 0; x1 <= 13; x1++)
        for (int x2 = 0; x2 <= 12; x2++)
            if (labs((2L * x1 - 13) + 2 * (2L * x2 - 12)) >= 15)
                want += exp(lgamma(14) - lgamma(x1 + 1) - lgamma(14 - x1) + lgamma(13) - lgamma(x2 + 1) -
                            lgamma(13 - x2) - 25 * log(2.0));
    CHECK_NEAR(vet_grouped_mcnemar_p(mixed, 25, &exact), want, 1e-12);
    CHECK(exact == 1);
    // Past the exact sum's limit: the chi-square approximation, flagged. 40,000 groups of net +-2
    // (20,100 up, 19,900 down) are McNemar's 20,100 against 19,900 scaled by 2: p within 0.01 of
    // it (z = 400 / sqrt(40,000 x 4) = 1: p = erfc(1 / sqrt 2) = 0.3173).
    static long big[40000];
    for (int g = 0; g < 40000; g++) big[g] = g < 20100 ? 2 : -2;
    double p = vet_grouped_mcnemar_p(big, 40000, &exact);
    CHECK(exact == 0);
    CHECK_NEAR(p, erfc(1 / sqrt(2.0)), 1e-12);
    CHECK_NEAR(p, vet_mcnemar_p(20100, 19900), 0.01);
}

// One sample named id, with a gold set and a predicted set of one label each ("" for none).
static void add(vet_eval *e, const char *id, const char *gold, const char *pred) {
    char *g[1] = {(char *)gold}, *p[1] = {(char *)pred};
    vet_err err;
    CHECK(vet_eval_add(e, "Cow", g, *gold ? 1 : 0, p, *pred ? 1 : 0, &err) == 0);
    CHECK(vet_eval_name_last(e, id, &err) == 0);
}

// Six notes, in different orders in the two sets:
//   id    gold  this  other    this right  other right
//   n1    A     A     A        1           1
//   n2    A     B     A        0           1
//   n3    B     B     A        1           0
//   n4    B     B     A        1           0
//   n5    C     A     B        0           0
//   n6    C     C     C        1           1
// both 2, only this 2, only other 1, neither 1; accuracies 4/6 and 3/6; difference 1/6.
static void build(vet_eval *a, vet_eval *b) {
    add(a, "n1", "A", "A"), add(a, "n2", "A", "B"), add(a, "n3", "B", "B");
    add(a, "n4", "B", "B"), add(a, "n5", "C", "A"), add(a, "n6", "C", "C");
    add(b, "n6", "C", "C"), add(b, "n5", "C", "B"), add(b, "n4", "B", "A");
    add(b, "n3", "B", "A"), add(b, "n2", "A", "A"), add(b, "n1", "A", "A");
}

static void table(void) {
    vet_eval *a = vet_eval_new(), *b = vet_eval_new();
    build(a, b);
    vet_comparison c;
    vet_err err;
    CHECK(vet_compare(a, b, "a", "b", 0, 1, &c, &err) == 0);
    CHECK(c.n == 6 && c.both == 2 && c.only_this == 2 && c.only_other == 1 && c.neither == 1);
    CHECK_NEAR(c.acc_this, 4.0 / 6, 1e-15);
    CHECK_NEAR(c.acc_other, 3.0 / 6, 1e-15);
    CHECK_NEAR(c.diff, 1.0 / 6, 1e-15);
    CHECK(isnan(c.ci[0]) && isnan(c.ci[1]));  // no resamples
    CHECK(c.mcnemar_p == 1);                   // b = 2, c = 1: 2 (1 + 3) / 8 = 1
    CHECK(strcmp(c.this_right[0], "n3") == 0 && strcmp(c.this_right[1], "n4") == 0);
    CHECK(strcmp(c.other_right[0], "n2") == 0);
    vet_comparison_free(&c);
    // The other way round: the signs flip, the p does not.
    vet_comparison r;
    CHECK(vet_compare(b, a, "b", "a", 0, 1, &r, &err) == 0);
    CHECK(r.only_this == 1 && r.only_other == 2 && r.both == 2 && r.neither == 1);
    CHECK_NEAR(r.diff, -1.0 / 6, 1e-15);
    CHECK(strcmp(r.this_right[0], "n2") == 0);  // in b's order
    vet_comparison_free(&r);
    // The paired interval: resample differences are means of draws from {0, -1, +1, +1, 0, 0}
    // (n1..n6), so each lies in [-1, 1] on a grid of 1/6; the interval holds the point estimate
    // here, and the same seed gives the same bounds.
    CHECK(vet_compare(a, b, "a", "b", 2000, 7, &c, &err) == 0);
    CHECK(c.ci[0] <= c.diff && c.diff <= c.ci[1] && c.ci[0] >= -1 && c.ci[1] <= 1 && c.ci[0] < c.ci[1]);
    vet_comparison again;
    CHECK(vet_compare(a, b, "a", "b", 2000, 7, &again, &err) == 0);
    CHECK(again.ci[0] == c.ci[0] && again.ci[1] == c.ci[1]);
    vet_comparison_free(&c), vet_comparison_free(&again);
    // A set against itself: every resample's difference is 0.
    CHECK(vet_compare(a, a, "a", "a", 500, 3, &c, &err) == 0);
    CHECK(c.diff == 0 && c.ci[0] == 0 && c.ci[1] == 0 && c.mcnemar_p == 1 && c.only_this == 0);
    vet_comparison_free(&c);
    vet_eval_free(a), vet_eval_free(b);
}

// The paired interval with groups: the six notes of build() three times over (ids nK.c), each
// note's copies one group of this set, draw what the six notes alone draw: the same bounds, to
// the bit. Without the groups the 18 copies count as 18 pairs and the interval narrows.
static void grouped(void) {
    vet_eval *a = vet_eval_new(), *b = vet_eval_new(), *a3 = vet_eval_new(), *b3 = vet_eval_new(),
             *l3 = vet_eval_new();
    build(a, b);
    static const char *rows_a[6][3] = {{"n1", "A", "A"}, {"n2", "A", "B"}, {"n3", "B", "B"},
                                       {"n4", "B", "B"}, {"n5", "C", "A"}, {"n6", "C", "C"}};
    static const char *pred_b[6] = {"A", "A", "A", "A", "B", "C"};
    vet_err err;
    for (int i = 0; i < 6; i++)
        for (int c = 0; c < 3; c++) {
            char id[16];
            snprintf(id, sizeof id, "%s.%d", rows_a[i][0], c);
            add(a3, id, rows_a[i][1], rows_a[i][2]);
            CHECK(vet_eval_group_last(a3, rows_a[i][0], &err) == 0);
            add(l3, id, rows_a[i][1], rows_a[i][2]);
            add(b3, id, rows_a[i][1], pred_b[i]);
        }
    vet_comparison c1, c3, cl;
    CHECK(vet_compare(a, b, "a", "b", 1000, 5, &c1, &err) == 0);
    CHECK(vet_compare(a3, b3, "a3", "b3", 1000, 5, &c3, &err) == 0);
    CHECK(vet_compare(l3, b3, "l3", "b3", 1000, 5, &cl, &err) == 0);
    CHECK(c3.n == 18 && c3.diff == c1.diff && c3.ci[0] == c1.ci[0] && c3.ci[1] == c1.ci[1]);
    CHECK(cl.ci[1] - cl.ci[0] < c3.ci[1] - c3.ci[0]);
    // McNemar with the groups drawn whole is the six notes' p (nets -3, +3, +3 flip as -1, +1, +1);
    // by notes the 18 copies count 6 against 3. Without groups there is no grouped p.
    CHECK(c1.groups == 0 && isnan(c1.groups_p));
    CHECK(c3.groups == 6 && c3.groups_discordant == 3 && c3.groups_p_exact == 1);
    CHECK(c3.groups_p == c1.mcnemar_p && c3.mcnemar_p == vet_mcnemar_p(6, 3));
    CHECK(cl.groups == 0 && isnan(cl.groups_p));
    vet_comparison_free(&c1), vet_comparison_free(&c3), vet_comparison_free(&cl);
    vet_eval_free(a), vet_eval_free(b), vet_eval_free(a3), vet_eval_free(b3), vet_eval_free(l3);
}

static void refusals(void) {
    vet_err err;
    vet_comparison c;
    // A note in one set only, either way.
    vet_eval *a = vet_eval_new(), *b = vet_eval_new();
    add(a, "n1", "A", "A"), add(a, "n2", "A", "A");
    add(b, "n1", "A", "A");
    CHECK(vet_compare(a, b, "this.csv", "other.csv", 0, 1, &c, &err) == -1);
    CHECK(strstr(err.msg, "note 'n2' of this.csv is not in other.csv") != NULL);
    CHECK(vet_compare(b, a, "other.csv", "this.csv", 0, 1, &c, &err) == -1);
    CHECK(strstr(err.msg, "note 'n2' of this.csv is not in other.csv") != NULL);
    add(b, "n3", "A", "A");  // the same count, another id
    CHECK(vet_compare(a, b, "this.csv", "other.csv", 0, 1, &c, &err) == -1);
    CHECK(strstr(err.msg, "note 'n3' of other.csv is not in this.csv") != NULL);
    vet_eval_free(a), vet_eval_free(b);
    // Other gold labels for one note.
    a = vet_eval_new(), b = vet_eval_new();
    add(a, "n1", "A", "A"), add(b, "n1", "B", "A");
    CHECK(vet_compare(a, b, "x", "y", 0, 1, &c, &err) == -1);
    vet_comparison_free(&c);
    CHECK(strstr(err.msg, "note 'n1' has other gold labels in x than in y: {A} against {B}") != NULL);
    vet_eval_free(a), vet_eval_free(b);
    // A sample with no id, and an id named twice.
    a = vet_eval_new(), b = vet_eval_new();
    char *g[1] = {"A"};
    CHECK(vet_eval_add(a, NULL, g, 1, g, 1, &err) == 0);
    add(b, "n1", "A", "A");
    CHECK(vet_compare(a, b, "x", "y", 0, 1, &c, &err) == -1 && strstr(err.msg, "needs an id") != NULL);
    CHECK(vet_eval_name_last(b, "n1", &err) == -1 && strstr(err.msg, "names two samples") != NULL);
    vet_eval_free(a), vet_eval_free(b);
}

int main(void) {
    RUN(mcnemar);
    RUN(grouped_mcnemar);
    RUN(table);
    RUN(grouped);
    RUN(refusals);
    CHECK_EXIT();
}
