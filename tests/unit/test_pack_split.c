// test_pack_split.c — vet-pack's leakage rules (lib/data/pack_split.h): identical notes never
// straddle splits, copies follow their originals and leave val and test, stratification keeps
// label shares, and the counts agree with a count made here from scratch.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "base/rng.h"
#include "data/pack_split.h"

// Appends a sample as vet_pack_read would leave it: its note normalized into key, its tokens
// irrelevant here (the split never looks at them).
static void add(vet_pack_samples *S, const char *id, const char *note, const char *copy_of, int slot,
                const char *code_a, const char *code_b) {
    vet_err err;
    vet_pack_sample x = {.original = -1, .split = (uint8_t)slot};
    x.id = strdup(id);
    x.species = strdup("Cow");
    x.copy_of = copy_of ? strdup(copy_of) : NULL;
    x.n_codes = code_b ? 2 : 1;
    x.codes = malloc(2 * sizeof *x.codes);
    x.codes[0] = strdup(code_a);
    if (code_b) x.codes[1] = strdup(code_b);
    x.key = malloc(strlen(note) + 1);
    vet_split_normalize(note, strlen(note), x.key);
    CHECK(vet_pack_samples_add(S, &x, &err) == 0);
}

// Note k written one of several ways that normalize to the same text.
static void note_text(char *buf, size_t n, int k, vet_rng *rng) {
    switch (vet_rng_below(rng, 3)) {
    case 0: snprintf(buf, n, "Cow. Fever and cough, case %d.", k); break;
    case 1: snprintf(buf, n, "  COW.\tFEVER AND  COUGH, CASE %d.\n", k); break;
    default: snprintf(buf, n, "cow. fever\r\nand cough, case %d.  ", k); break;
    }
}

// n originals over n_notes notes (the label follows the note: k % 5), ids "s<i>".
static void make_originals(vet_pack_samples *S, int n, int n_notes, vet_rng *rng) {
    char id[32], note[96], code[16];
    for (int i = 0; i < n; i++) {
        int k = (int)vet_rng_below(rng, (uint64_t)n_notes);
        snprintf(id, sizeof id, "s%d", i);
        snprintf(code, sizeof code, "c%d", k % 5);
        note_text(note, sizeof note, k, rng);
        add(S, id, note, NULL, VET_SPLIT_TRAIN, code, NULL);
    }
}

// For each original i a copy "s<i>~Goat" whose note is original (7i + 3) % n's, so that some
// copies read like another split's note.
static void add_copies(vet_pack_samples *S, int n, vet_rng *rng) {
    char id[32], of[32], note[96];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "s%d~Goat", i);
        snprintf(of, sizeof of, "s%d", i);
        int other = (7 * i + 3) % n, k = 0;
        sscanf(S->s[other].key, "cow. fever and cough, case %d.", &k);
        note_text(note, sizeof note, k, rng);
        add(S, id, note, of, VET_SPLIT_TRAIN, "c0", NULL);
    }
}

static vet_pack_split_opts split_opts(int group_by_note, int stratify, uint64_t seed) {
    return (vet_pack_split_opts){.assign = 1, .group_by_note = group_by_note, .stratify = stratify,
                                 .share = {0.8, 0.1, 0.1}, .seed = seed, .path = "test.tok"};
}

// The note number of a sample, read back from its normalized key (kept by the caller).
static int note_of(const char *key) {
    int k = -1;
    sscanf(key, "cow. fever and cough, case %d.", &k);
    return k;
}

// Identical normalized notes (written in other case and spacing) always land in one split, with
// and without stratification, for every seed; the group counts match a count made here.
static void test_identical_notes_stay_together(void) {
    for (uint64_t seed = 1; seed <= 12; seed++) {
        vet_rng rng;
        vet_rng_seed(&rng, seed);
        vet_pack_samples S = {0};
        make_originals(&S, 600, 50, &rng);
        int note[600], size[50] = {0};
        for (int i = 0; i < 600; i++) size[note[i] = note_of(S.s[i].key)]++;
        vet_pack_split_opts o = split_opts(1, (int)(seed % 2), seed);
        vet_pack_group_stats g;
        vet_pack_copy_stats c;
        vet_err err;
        CHECK(vet_pack_split(&S, &o, &g, &c, &err) == 0);
        int split_of_note[50];
        memset(split_of_note, -1, sizeof split_of_note);
        int64_t in_split[3] = {0, 0, 0};
        for (int i = 0; i < 600; i++) {
            CHECK(S.s[i].split < 3 && !S.s[i].dropped);
            if (split_of_note[note[i]] >= 0) CHECK(split_of_note[note[i]] == S.s[i].split);
            split_of_note[note[i]] = S.s[i].split;
            in_split[S.s[i].split]++;
            CHECK(S.s[i].key == NULL);  // freed once the split is made
        }
        int64_t groups = 0, dup_groups = 0, dup_samples = 0;
        for (int k = 0; k < 50; k++) {
            groups += size[k] > 0;
            if (size[k] > 1) dup_groups++, dup_samples += size[k];
        }
        CHECK(g.groups == groups && g.dup_groups == dup_groups && g.dup_samples == dup_samples);
        CHECK(g.leaked_groups == 0);
        CHECK(in_split[1] > 0 && in_split[2] > 0 && in_split[0] > in_split[1] + in_split[2]);
        CHECK(c.in == 0 && c.dropped == 0 && c.like_heldout == 0);
        vet_pack_samples_free(&S);
    }
}

// --group-by none splits by sample: the same data then leaks notes, and the count says how many.
static void test_group_by_none_counts_leaks(void) {
    vet_rng rng;
    vet_rng_seed(&rng, 3);
    vet_pack_samples S = {0};
    make_originals(&S, 600, 50, &rng);
    int note[600];
    for (int i = 0; i < 600; i++) note[i] = note_of(S.s[i].key);
    vet_pack_split_opts o = split_opts(0, 0, 3);
    vet_pack_group_stats g;
    vet_pack_copy_stats c;
    vet_err err;
    CHECK(vet_pack_split(&S, &o, &g, &c, &err) == 0);
    unsigned seen[50] = {0};
    for (int i = 0; i < 600; i++) seen[note[i]] |= 1u << S.s[i].split;
    int64_t leaked = 0;
    for (int k = 0; k < 50; k++) leaked += (seen[k] & (seen[k] - 1)) != 0;
    CHECK(leaked > 0);
    CHECK(g.leaked_groups == leaked);
    vet_pack_samples_free(&S);
}

// Copies: each takes its original's split; those of val and test originals are dropped; the
// originals split exactly as without copies; copies_like_heldout matches a count made here.
static void test_copies_follow_originals(void) {
    for (int stratify = 0; stratify < 2; stratify++) {
        vet_rng rng, rng2;
        vet_rng_seed(&rng, 9);
        vet_rng_seed(&rng2, 9);
        vet_pack_samples A = {0}, B = {0};  // A: originals only; B: the same originals, then copies
        make_originals(&A, 300, 40, &rng);
        make_originals(&B, 300, 40, &rng2);
        add_copies(&B, 300, &rng2);
        int note[600];
        for (int i = 0; i < 600; i++) note[i] = note_of(B.s[i].key);
        vet_pack_split_opts o = split_opts(1, stratify, 5);
        vet_pack_group_stats ga, gb;
        vet_pack_copy_stats ca, cb;
        vet_err err;
        CHECK(vet_pack_split(&A, &o, &ga, &ca, &err) == 0);
        CHECK(vet_pack_split(&B, &o, &gb, &cb, &err) == 0);
        CHECK(ga.groups == gb.groups && ga.dup_samples == gb.dup_samples && gb.leaked_groups == 0);
        int heldout_note[40] = {0};
        int64_t dropped = 0, like = 0;
        for (int i = 0; i < 300; i++) {
            CHECK(B.s[i].split == A.s[i].split && !B.s[i].dropped);
            if (B.s[i].split != VET_SPLIT_TRAIN) heldout_note[note[i]] = 1;
        }
        for (int i = 300; i < 600; i++) {
            const vet_pack_sample *x = &B.s[i];
            CHECK(x->original == i - 300);
            CHECK(x->split == B.s[i - 300].split);
            CHECK(x->dropped == (x->split != VET_SPLIT_TRAIN));
            dropped += x->dropped;
            like += !x->dropped && heldout_note[note[i]];
        }
        CHECK(cb.in == 300 && cb.dropped == dropped && dropped > 0);
        CHECK(cb.like_heldout == like && like > 0);
        vet_pack_samples_free(&A);
        vet_pack_samples_free(&B);
    }
}

// --val-copies: the val originals' copies go to a slot of their own; test copies still dropped.
static void test_val_copies_diverted(void) {
    vet_rng rng;
    vet_rng_seed(&rng, 4);
    vet_pack_samples S = {0};
    make_originals(&S, 200, 30, &rng);
    add_copies(&S, 200, &rng);
    vet_pack_split_opts o = split_opts(1, 0, 8);
    o.divert_val_copies = 1;
    vet_pack_group_stats g;
    vet_pack_copy_stats c;
    vet_err err;
    CHECK(vet_pack_split(&S, &o, &g, &c, &err) == 0);
    int64_t n_val = 0, n_test = 0, n_diverted = 0;
    for (int i = 0; i < 200; i++) {
        const vet_pack_sample *orig = &S.s[i], *copy = &S.s[200 + i];
        n_val += orig->split == VET_SPLIT_VAL;
        n_test += orig->split == VET_SPLIT_TEST;
        if (orig->split == VET_SPLIT_VAL) CHECK(copy->split == VET_PACK_VAL_COPIES && !copy->dropped);
        if (orig->split == VET_SPLIT_TEST) CHECK(copy->split == VET_SPLIT_TEST && copy->dropped);
        if (orig->split == VET_SPLIT_TRAIN) CHECK(copy->split == VET_SPLIT_TRAIN && !copy->dropped);
        n_diverted += copy->split == VET_PACK_VAL_COPIES;
    }
    CHECK(n_val > 0 && n_test > 0 && n_diverted == n_val && c.dropped == n_test);
    vet_pack_samples_free(&S);
}

// A copy links to the first original with its id; a copy without one stops a split made here,
// and is kept (unlinked) when the input comes already split.
static void test_copy_links(void) {
    vet_pack_samples S = {0};
    add(&S, "a", "note one", NULL, VET_SPLIT_TRAIN, "1", NULL);
    add(&S, "b", "note two", NULL, VET_SPLIT_TRAIN, "1", NULL);
    add(&S, "a", "note three", NULL, VET_SPLIT_TRAIN, "1", NULL);  // a repeated id
    add(&S, "a~Goat", "note one", "a", VET_SPLIT_TRAIN, "1", NULL);
    add(&S, "z~Goat", "note four", "z", VET_SPLIT_TRAIN, "1", NULL);
    vet_pack_split_opts o = split_opts(1, 0, 1);
    vet_pack_group_stats g;
    vet_pack_copy_stats c;
    vet_err err = {0};
    CHECK(vet_pack_split(&S, &o, &g, &c, &err) == -1);
    CHECK(err.kind == VET_E_INPUT);
    CHECK_STR(err.msg, "test.tok: record id z~Goat is a copy of z, which is not in the stream (a copy is split "
                       "with its original: tokenize them together, or drop the copy)");
    vet_pack_samples_free(&S);

    // Already split (or one stream): nothing is assigned, an orphan is fine, copies in val go.
    add(&S, "a", "note one", NULL, VET_SPLIT_TRAIN, "1", NULL);
    add(&S, "a", "note three", NULL, VET_SPLIT_VAL, "1", NULL);
    add(&S, "a~Goat", "note one", "a", VET_SPLIT_TRAIN, "1", NULL);
    add(&S, "z~Goat", "note four", "z", VET_SPLIT_VAL, "1", NULL);
    add(&S, "a", "note one", NULL, VET_SPLIT_TEST, "1", NULL);  // the same note in test: a leak
    o.assign = 0;
    CHECK(vet_pack_split(&S, &o, &g, &c, &err) == 0);
    CHECK(S.s[2].original == 0 && S.s[2].split == VET_SPLIT_TRAIN && !S.s[2].dropped);
    CHECK(S.s[3].original == -1 && S.s[3].split == VET_SPLIT_VAL && S.s[3].dropped);
    CHECK(S.s[1].split == VET_SPLIT_VAL && S.s[4].split == VET_SPLIT_TEST);
    CHECK(c.in == 2 && c.dropped == 1 && c.like_heldout == 1);  // a~Goat reads like test's "note one"
    CHECK(g.groups == 2 && g.dup_groups == 1 && g.dup_samples == 2 && g.leaked_groups == 1);
    vet_pack_samples_free(&S);
}

// Stratified by label: with single-sample groups and shares that divide every label's count,
// each label splits exactly 80/10/10; a label is its set of codes (order and repeats ignored).
static void test_stratified_shares(void) {
    vet_pack_samples S = {0};
    char id[32], note[64];
    const char *codes[4][2] = {{"a", NULL}, {"b", NULL}, {"a", "b"}, {"b", "a"}};
    for (int i = 0; i < 600; i++) {
        snprintf(id, sizeof id, "s%d", i);
        snprintf(note, sizeof note, "note %d", i);
        int l = i % 4 < 2 ? i % 4 : 2 + (i / 4) % 2;  // labels a, b, and {a,b} written both ways
        add(&S, id, note, NULL, VET_SPLIT_TRAIN, codes[l][0], codes[l][1]);
    }
    vet_pack_split_opts o = split_opts(1, 1, 21);
    vet_pack_group_stats g;
    vet_pack_copy_stats c;
    vet_err err;
    CHECK(vet_pack_split(&S, &o, &g, &c, &err) == 0);
    int64_t per[3][3] = {{0}};  // label (a, b, ab) x split
    for (int i = 0; i < 600; i++) per[i % 4 < 2 ? i % 4 : 2][S.s[i].split]++;
    for (int l = 0; l < 2; l++) CHECK(per[l][0] == 120 && per[l][1] == 15 && per[l][2] == 15);
    CHECK(per[2][0] == 240 && per[2][1] == 30 && per[2][2] == 30);
    vet_pack_samples_free(&S);
}

int main(void) {
    RUN(test_identical_notes_stay_together);
    RUN(test_group_by_none_counts_leaks);
    RUN(test_copies_follow_originals);
    RUN(test_val_copies_diverted);
    RUN(test_copy_links);
    RUN(test_stratified_shares);
    CHECK_EXIT();
}
