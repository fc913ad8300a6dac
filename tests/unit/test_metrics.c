// test_metrics.c — vet-eval's arithmetic against numbers worked out by hand, and the
// predictions readers (CSV, JSON lines; lib/eval/predictions.h) with their error messages.
#include <unistd.h>

#include "check.h"
#include "data/labels.h"
#include "eval/metrics.h"
#include "eval/predictions.h"
#include "io/mp.h"
#include "io/stream.h"

#define A "1679004"
#define B "3974005"
#define C "72934000"
#define D "Foot Rot"
#define E "40214000"

static void add(vet_eval *e, const char *species, const char *gold, const char *pred) {
    char **g, **p;
    size_t ng, np;
    vet_err err;
    CHECK(vet_split_labels(gold, strlen(gold), &g, &ng, &err) == 0);
    CHECK(vet_split_labels(pred, strlen(pred), &p, &np, &err) == 0);
    CHECK(vet_eval_add(e, species, g, ng, p, np, &err) == 0);
    vet_labels_free_list(g, ng);
    vet_labels_free_list(p, np);
}

// The nine samples of tests/fixtures/eval/small.csv:
//   s1 Cow     A      -> A        right
//   s2 Cow     A      -> B        wrong
//   s3 Goat    B      -> B        right
//   s4 Goat    B;A    -> A;B      right (order does not matter)
//   s5 Sheep   C      -> (none)   wrong, no label
//   s6 Sheep   A      -> A;E      wrong (E never in gold)
//   s7 Buffalo D      -> D;D      right (duplicates do not matter)
//   s8 Cow     A;C    -> A        wrong
//   s9 Goat    A      -> B        wrong
static vet_eval *small_set(void) {
    vet_eval *e = vet_eval_new();
    add(e, "Cow", A, A);
    add(e, "Cow", A, B);
    add(e, "Goat", B, B);
    add(e, "Goat", B ";" A, A ";" B);
    add(e, "Sheep", C, "");
    add(e, "Sheep", A, A ";" E);
    add(e, "Buffalo", D, D ";" D);
    add(e, "Cow", A ";" C, A);
    add(e, "Goat", A, B);
    return e;
}

static const vet_label_stat *stat_of(const vet_metrics *m, const char *label) {
    for (size_t i = 0; i < m->nlabels; i++)
        if (strcmp(m->labels[i].label, label) == 0) return &m->labels[i];
    return NULL;
}

static void check_small(const vet_metrics *m) {
    CHECK(m->n == 9);
    // Right: s1 s3 s4 s7 -> 4/9.
    CHECK(m->correct == 4);
    CHECK_NEAR(m->accuracy, 4.0 / 9, 1e-12);
    CHECK(m->no_label == 1);  // s5
    // Jaccard |G∩P|/|G∪P| per sample: s1 1, s2 0/2, s3 1, s4 2/2, s5 0/1, s6 1/2, s7 1, s8 1/2,
    // s9 0/2 -> (1+0+1+1+0+.5+1+.5+0)/9 = 5/9.
    CHECK_NEAR(m->jaccard, 5.0 / 9, 1e-12);
    // support (gold holds it) / predicted / tp:
    //   A: s1 s2 s4 s6 s8 s9 = 6 / s1 s4 s6 s8 = 4 / 4   P 4/4 = 1    R 4/6     F1 8/10 = .8
    //   B: s3 s4 = 2 / s2 s3 s4 s9 = 4 / s3 s4 = 2       P 2/4 = .5   R 2/2 = 1 F1 4/6
    //   C: s5 s8 = 2 / never = 0 / 0                     P 0 (never predicted) R 0 F1 0
    //   D: s7 = 1 / 1 / 1                                P 1          R 1       F1 1
    //   E: never in gold = 0 / s6 = 1 / 0                P 0/1 = 0    R 0 (no support) F1 0
    CHECK(m->nlabels == 5);
    const vet_label_stat *a = stat_of(m, A), *b = stat_of(m, B), *c = stat_of(m, C), *d = stat_of(m, D),
                         *e = stat_of(m, E);
    CHECK(a && b && c && d && e);
    if (!(a && b && c && d && e)) return;
    CHECK(a->support == 6 && a->predicted == 4 && a->tp == 4);
    CHECK(b->support == 2 && b->predicted == 4 && b->tp == 2);
    CHECK(c->support == 2 && c->predicted == 0 && c->tp == 0);
    CHECK(d->support == 1 && d->predicted == 1 && d->tp == 1);
    CHECK(e->support == 0 && e->predicted == 1 && e->tp == 0);
    CHECK_NEAR(a->precision, 1.0, 1e-12);
    CHECK_NEAR(a->recall, 4.0 / 6, 1e-12);
    CHECK_NEAR(a->f1, 0.8, 1e-12);
    CHECK_NEAR(b->precision, 0.5, 1e-12);
    CHECK_NEAR(b->recall, 1.0, 1e-12);
    CHECK_NEAR(b->f1, 4.0 / 6, 1e-12);
    CHECK(c->precision == 0 && c->recall == 0 && c->f1 == 0);
    CHECK(e->precision == 0 && e->recall == 0 && e->f1 == 0);
    // Table order: support desc, then predicted desc: A(6,4) B(2,4) C(2,0) D(1,1) E(0,1).
    CHECK(m->labels[0].label == a->label && m->labels[1].label == b->label && m->labels[2].label == c->label &&
          m->labels[3].label == d->label && m->labels[4].label == e->label);
    // Macro over the 5 labels: P (1+.5+0+1+0)/5 = .5; R (2/3+1+0+1+0)/5 = 8/15;
    // F1 (.8+2/3+0+1+0)/5 = (37/15)/5 = 37/75.
    CHECK_NEAR(m->macro_precision, 0.5, 1e-12);
    CHECK_NEAR(m->macro_recall, 8.0 / 15, 1e-12);
    CHECK_NEAR(m->macro_f1, 37.0 / 75, 1e-12);
    // Micro: Σtp = 4+2+0+1+0 = 7, Σpredicted = 4+4+0+1+1 = 10, Σsupport = 6+2+2+1+0 = 11:
    // P 7/10, R 7/11, F1 2·7/(10+11) = 2/3.
    CHECK_NEAR(m->micro_precision, 0.7, 1e-12);
    CHECK_NEAR(m->micro_recall, 7.0 / 11, 1e-12);
    CHECK_NEAR(m->micro_f1, 2.0 / 3, 1e-12);
    // Species: Cow s1 s2 s8 -> 1/3; Goat s3 s4 s9 -> 2/3; Sheep s5 s6 -> 0; Buffalo s7 -> 1.
    CHECK(m->nspecies == 4);
    CHECK_STR(m->species[0].species, "Cow");
    CHECK(m->species[0].n == 3 && m->species[0].correct == 1);
    CHECK_NEAR(m->species[0].accuracy, 1.0 / 3, 1e-12);
    CHECK_STR(m->species[1].species, "Goat");
    CHECK_NEAR(m->species[1].accuracy, 2.0 / 3, 1e-12);
    CHECK_STR(m->species[2].species, "Sheep");
    CHECK(m->species[2].n == 2 && m->species[2].accuracy == 0);
    CHECK_STR(m->species[3].species, "Buffalo");
    CHECK(m->species[3].n == 1 && m->species[3].accuracy == 1);
    // Confusions: A->B twice (s2 s9), then once each in label order: A->A;E, A;C->A, C->(none).
    CHECK(m->nconfusions == 4);
    if (m->nconfusions != 4) return;
    const vet_confusion *k = m->confusions;
    CHECK(k[0].count == 2 && k[0].ngold == 1 && k[0].npred == 1);
    CHECK_STR(k[0].gold[0], A);
    CHECK_STR(k[0].pred[0], B);
    CHECK(k[1].count == 1 && k[1].npred == 2);
    CHECK_STR(k[1].pred[1], E);
    CHECK(k[2].ngold == 2 && k[2].npred == 1);
    CHECK_STR(k[2].gold[1], C);
    CHECK(k[3].npred == 0);
    CHECK_STR(k[3].gold[0], C);
}

static void test_hand_computed(void) {
    vet_eval *e = small_set();
    vet_metrics m;
    vet_err err;
    CHECK(vet_metrics_compute(e, &m, &err) == 0);
    check_small(&m);
    vet_metrics_free(&m);
    vet_eval_free(e);
}

static void test_majority_baseline(void) {
    vet_eval *e = small_set();
    vet_err err;
    char **set;
    size_t n, count;
    // Gold sets: {A} s1 s2 s6 s9 = 4 times, every other set once -> {A}, 4/9.
    CHECK(vet_eval_majority_gold(e, &set, &n, &count, &err) == 0);
    CHECK(n == 1 && count == 4);
    CHECK_STR(set[0], A);
    CHECK_NEAR(vet_eval_constant_accuracy(e, set, n), 4.0 / 9, 1e-12);
    vet_labels_free_list(set, n);
    // A fixed answer from elsewhere: {B} is right only for s3; {A,B} in any order only for s4.
    char *b[] = {B}, *ab[] = {A, B, A};
    CHECK_NEAR(vet_eval_constant_accuracy(e, b, 1), 1.0 / 9, 1e-12);
    CHECK_NEAR(vet_eval_constant_accuracy(e, ab, 3), 1.0 / 9, 1e-12);
    CHECK(vet_eval_constant_accuracy(e, NULL, 0) == 0);  // nobody has an empty gold set
    // Ties go to the first set in label order: {A} twice and {B} twice -> {A}.
    vet_eval *t = vet_eval_new();
    add(t, NULL, B, "");
    add(t, NULL, A, "");
    add(t, NULL, B, "");
    add(t, NULL, A, "");
    CHECK(vet_eval_majority_gold(t, &set, &n, &count, &err) == 0);
    CHECK(n == 1 && count == 2);
    CHECK_STR(set[0], A);
    vet_labels_free_list(set, n);
    vet_eval_free(t);
    vet_eval_free(e);
}

static void test_empty_predictions(void) {
    // Every output parsed to no label: accuracy 0, P 0 by convention, R 0, Jaccard 0.
    vet_eval *e = vet_eval_new();
    add(e, "Cow", A, "");
    add(e, "Cow", A ";" B, "");
    vet_metrics m;
    vet_err err;
    CHECK(vet_metrics_compute(e, &m, &err) == 0);
    CHECK(m.n == 2 && m.correct == 0 && m.no_label == 2);
    CHECK(m.accuracy == 0 && m.jaccard == 0);
    CHECK(m.micro_precision == 0 && m.micro_recall == 0 && m.micro_f1 == 0);
    CHECK(m.macro_precision == 0 && m.macro_f1 == 0);
    CHECK(m.nlabels == 2 && m.nconfusions == 2);
    vet_metrics_free(&m);
    // Empty gold and empty prediction are equal sets: right, Jaccard 1.
    vet_eval_free(e);
    e = vet_eval_new();
    add(e, "", "", "");
    add(e, "", A, A);
    CHECK(vet_metrics_compute(e, &m, &err) == 0);
    CHECK(m.correct == 2 && m.jaccard == 1 && m.nlabels == 1 && m.nconfusions == 0);
    CHECK_STR(m.species[0].species, "");
    vet_metrics_free(&m);
    vet_eval_free(e);
    // No samples at all is an error, not a division by zero.
    e = vet_eval_new();
    CHECK(vet_metrics_compute(e, &m, &err) < 0);
    CHECK_CONTAINS(err.msg, "n = 0");
    vet_eval_free(e);
}

static void test_bootstrap(void) {
    vet_eval *e = small_set();
    vet_metrics m;
    vet_err err;
    CHECK(vet_metrics_compute(e, &m, &err) == 0);
    double a1[2], f1[2], a2[2], f2[2], a3[2], f3[2];
    CHECK(vet_metrics_bootstrap(e, 500, 7, a1, f1, &err) == 0);
    CHECK(vet_metrics_bootstrap(e, 500, 7, a2, f2, &err) == 0);
    CHECK(vet_metrics_bootstrap(e, 500, 8, a3, f3, &err) == 0);
    // Same seed, same interval, to the bit.
    CHECK(a1[0] == a2[0] && a1[1] == a2[1] && f1[0] == f2[0] && f1[1] == f2[1]);
    CHECK(a1[0] != a3[0] || a1[1] != a3[1] || f1[0] != f3[0] || f1[1] != f3[1]);
    // The intervals hold the point estimates and are not degenerate on 9 mixed samples.
    CHECK(a1[0] <= m.accuracy && m.accuracy <= a1[1] && a1[0] < a1[1]);
    CHECK(f1[0] <= m.macro_f1 && m.macro_f1 <= f1[1] && f1[0] < f1[1]);
    CHECK(a1[0] >= 0 && a1[1] <= 1 && f1[0] >= 0 && f1[1] <= 1);
    // All right: every resample is all right.
    vet_eval *p = vet_eval_new();
    add(p, "", A, A);
    add(p, "", B, B);
    CHECK(vet_metrics_bootstrap(p, 100, 1, a1, f1, &err) == 0);
    CHECK(a1[0] == 1 && a1[1] == 1 && f1[0] == 1 && f1[1] == 1);
    CHECK(vet_metrics_bootstrap(p, 0, 1, a1, f1, &err) < 0);
    vet_eval_free(p);
    vet_metrics_free(&m);
    vet_eval_free(e);
}

// The cluster bootstrap: every note of small_set's seven five times over, each note's copies one
// group, draws what the seven notes' own sample bootstrap draws (G = n units, one vet_rng_below(n) each): the same
// intervals, to the bit. Without the groups the copies count as 5n independent notes and the
// interval narrows; with a sample left out of every group, the notes are drawn one by one.
static void test_bootstrap_groups(void) {
    vet_eval *base = vet_eval_new(), *five = vet_eval_new(), *loose = vet_eval_new();
    static const char *rows[][3] = {{"Cow", A, A}, {"Cow", A, B}, {"Goat", B, B}, {"Goat", B ";" A, A ";" B},
                                    {"Sheep", C, ""}, {"Sheep", A, A ";" E}, {"Buffalo", D, D ";" D}};
    vet_err err;
    for (size_t i = 0; i < 7; i++) {
        add(base, rows[i][0], rows[i][1], rows[i][2]);
        char key[8];
        snprintf(key, sizeof key, "g%zu", i);
        for (int c = 0; c < 5; c++) {
            add(five, rows[i][0], rows[i][1], rows[i][2]);
            CHECK(vet_eval_group_last(five, key, &err) == 0);
            add(loose, rows[i][0], rows[i][1], rows[i][2]);
        }
    }
    CHECK(vet_eval_groups(five) == 7 && vet_eval_groups(loose) == 0 && vet_eval_groups(base) == 0);
    CHECK(vet_eval_group_of(five, 0) == 0 && vet_eval_group_of(five, 34) == 6);
    double a1[2], f1[2], a5[2], f5[2], al[2], fl[2];
    CHECK(vet_metrics_bootstrap(base, 400, 3, a1, f1, &err) == 0);
    CHECK(vet_metrics_bootstrap(five, 400, 3, a5, f5, &err) == 0);
    CHECK(vet_metrics_bootstrap(loose, 400, 3, al, fl, &err) == 0);
    CHECK(a1[0] == a5[0] && a1[1] == a5[1] && f1[0] == f5[0] && f1[1] == f5[1]);
    CHECK(al[1] - al[0] < a5[1] - a5[0]);
    // One sample without a group: the set is not grouped, and its draws are the notes'.
    add(five, "Cow", A, A);
    CHECK(vet_eval_group_last(five, "", &err) == 0 && vet_eval_groups(five) == 0);
    CHECK(vet_eval_group_last(five, "g1", &err) == 0 && vet_eval_groups(five) == 7);
    CHECK(vet_eval_group_last(five, "g2", &err) < 0);  // one sample, one group
    vet_eval_free(five), vet_eval_free(loose), vet_eval_free(base);
}

// The ceiling: groups g0 (A, A, B: best A, 2 of 3), g1 (B;A, A;B: one set, 2), g2 (C, D, E, D:
// best D, 2 of 4) and g3 (empty, empty: 2); 8 of 11, two groups mixed (7 notes). The predictions
// play no part. Without groups: none (NaN), and a group-less sample makes the set group-less.
static void test_ceiling(void) {
    static const char *rows[][2] = {{"g0", A}, {"g1", B ";" A}, {"g0", A}, {"g2", C}, {"g0", B}, {"g2", D},
                                    {"g1", A ";" B}, {"g2", E}, {"g3", ""}, {"g2", D}, {"g3", ""}};
    vet_eval *e = vet_eval_new(), *loose = vet_eval_new();
    vet_err err;
    for (size_t i = 0; i < 11; i++) {
        add(e, "Cow", rows[i][1], i % 2 ? A : "");
        CHECK(vet_eval_group_last(e, rows[i][0], &err) == 0);
        add(loose, "Cow", rows[i][1], A);
    }
    vet_metrics m;
    CHECK(vet_metrics_compute(e, &m, &err) == 0);
    CHECK(m.groups == 4 && m.groups_mixed == 2 && m.notes_mixed == 7 && m.ceiling_correct == 8);
    CHECK(m.ceiling == 8.0 / 11);
    vet_metrics_free(&m);
    CHECK(vet_metrics_compute(loose, &m, &err) == 0);
    CHECK(m.groups == 0 && isnan(m.ceiling) && m.ceiling_correct == 0);
    vet_metrics_free(&m);
    vet_eval_free(e), vet_eval_free(loose);
}

// --- readers ---

static char fixture[512];

static const char *fixture_path(const char *name) {
    const char *top = getenv("VET_TOP");
    snprintf(fixture, sizeof fixture, "%s/tests/fixtures/eval/%s", top && *top ? top : ".", name);
    return fixture;
}

// Reads a whole predictions file into a vet_eval; NULL with err on failure.
static vet_eval *read_all(const char *path, int format, vet_err *err) {
    vet_pred_reader *r = vet_pred_open(path, format, err);
    if (!r) return NULL;
    vet_eval *e = vet_eval_new();
    vet_pred rec;
    int rc;
    while ((rc = vet_pred_next(r, &rec, err)) == 1) {
        vet_eval_add(e, rec.species, rec.gold, rec.ngold, rec.pred, rec.npred, err);
        vet_pred_clear(&rec);
    }
    vet_pred_close(r);
    if (rc < 0) {
        vet_eval_free(e);
        return NULL;
    }
    return e;
}

static void test_read_fixtures(void) {
    const char *names[] = {"small.csv", "small.jsonl"};
    for (int i = 0; i < 2; i++) {
        vet_err err;
        vet_eval *e = read_all(fixture_path(names[i]), VET_PRED_SNIFF, &err);
        CHECK(e != NULL);
        if (!e) {
            fprintf(stderr, "%s\n", err.msg);
            continue;
        }
        vet_metrics m;
        CHECK(vet_metrics_compute(e, &m, &err) == 0);
        check_small(&m);  // the same nine samples, whatever the format
        vet_metrics_free(&m);
        vet_eval_free(e);
    }
    // The JSON lines reader also takes text, tokens and ms.
    vet_err err;
    vet_pred_reader *r = vet_pred_open(fixture_path("small.jsonl"), VET_PRED_JSONL, &err);
    CHECK(r != NULL);
    if (!r) return;
    vet_pred rec;
    CHECK(vet_pred_next(r, &rec, &err) == 1);
    CHECK_STR(rec.id, "s1");
    CHECK_STR(rec.text, "Diagnosed conditions: 1679004");
    CHECK(rec.tokens == 9 && rec.ms == 120.5);
    vet_pred_clear(&rec);
    vet_pred_close(r);
}

static char dir[256];

static const char *write_tmp(const char *name, const char *text) {
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static long last_line;  // the line of the last error bad() saw

// Reading text as the given format must fail with a message containing want.
static void bad(const char *name, const char *text, int format, const char *want) {
    vet_err err = {0};
    vet_eval *e = read_all(write_tmp(name, text), format, &err);
    CHECK(e == NULL);
    vet_eval_free(e);
    if (!e) CHECK_CONTAINS(err.msg, want);
    last_line = err.line;
}

static void test_bad_input(void) {
    bad("nogold.csv", "id,pred\n1,A\n", VET_PRED_SNIFF, "nogold.csv:1: no \"gold\" column");
    bad("fields.csv", "id,gold,pred\n1,A,A\n2,A\n", VET_PRED_SNIFF, "fields.csv:3: 2 fields, the header has 3");
    CHECK(last_line == 3);
    bad("quote.csv", "id,gold,pred\n1,A,A\n2,\"A\"x,B\n", VET_PRED_CSV, "quote.csv:3:");
    bad("tokens.csv", "id,gold,pred,tokens\n1,A,A,many\n", VET_PRED_CSV, "tokens.csv:2: tokens \"many\"");
    bad("nopred.jsonl", "{\"gold\": [\"A\"], \"pred\": [\"A\"]}\n{\"gold\": [\"A\"]}\n", VET_PRED_SNIFF,
        "nopred.jsonl:2: missing \"pred\"");
    CHECK(last_line == 2);
    bad("broken.jsonl", "{\"gold\": [\"A\"], \"pred\": [\"A\"]}\n\n{\"gold\": [\"A\"\n", VET_PRED_SNIFF,
        "broken.jsonl:3: not JSON");
    bad("type.jsonl", "{\"gold\": [\"A\"], \"pred\": [true]}\n", VET_PRED_JSONL, "type.jsonl:1: \"pred\"[0] is not a string");
    bad("array.jsonl", "[1, 2]\n", VET_PRED_JSONL, "array.jsonl:1: not a JSON object");
    bad("empty.csv", "", VET_PRED_SNIFF, "empty input");
    bad("notstream.csv", "id,gold,pred\n", VET_PRED_STREAM, "not a vet stream");
    vet_err err;
    snprintf(fixture, sizeof fixture, "%s/does-not-exist.csv", dir);
    CHECK(vet_pred_open(fixture, VET_PRED_SNIFF, &err) == NULL);
    CHECK(err.kind == VET_E_IO);
    CHECK_CONTAINS(err.msg, "cannot open");
    // A header-only CSV is a valid, empty set: the reader ends at once (vet-eval then says n = 0).
    vet_eval *e = read_all(write_tmp("header.csv", "id,gold,pred\n"), VET_PRED_SNIFF, &err);
    CHECK(e && vet_eval_n(e) == 0);
    vet_eval_free(e);
}

// A stream record's integer id is named by its digits: 2^64 - 1 (a msgpack uint64) as such, not
// as -1, which another record may hold.
static void test_stream_integer_ids(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/ids.pred", dir);
    vet_err err;
    vet_writer *w = vet_writer_open(path, "predictions", "test_metrics", &err);
    CHECK(w != NULL);
    if (!w) return;
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, 0);
    vet_writer_header_end(w, &err);
    char *gold = "A";
    for (int i = 0; i < 2; i++) {
        msgpack_pack_map(pk, 3);
        mp_key(pk, "id");
        if (i == 0) msgpack_pack_uint64(pk, UINT64_MAX);
        else msgpack_pack_int64(pk, -1);
        mp_kv_str_array(pk, "gold", &gold, 1);
        mp_kv_str_array(pk, "pred", &gold, 1);
        vet_writer_record_end(w, &err);
    }
    CHECK(vet_writer_close(w, &err) == 0);
    vet_pred_reader *r = vet_pred_open(path, VET_PRED_STREAM, &err);
    CHECK(r != NULL);
    if (!r) return;
    vet_pred rec;
    CHECK(vet_pred_next(r, &rec, &err) == 1);
    CHECK_STR(rec.id, "18446744073709551615");
    vet_pred_clear(&rec);
    CHECK(vet_pred_next(r, &rec, &err) == 1);
    CHECK_STR(rec.id, "-1");
    vet_pred_clear(&rec);
    vet_pred_close(r);
}

static void test_split_labels(void) {
    char **v;
    size_t n;
    vet_err err;
    CHECK(vet_split_labels(" a ; b;;c ;", 11, &v, &n, &err) == 0);
    CHECK(n == 3);
    if (n == 3) {
        CHECK_STR(v[0], "a");
        CHECK_STR(v[1], "b");
        CHECK_STR(v[2], "c");
    }
    vet_labels_free_list(v, n);
    CHECK(vet_split_labels("", 0, &v, &n, &err) == 0 && n == 0);
    vet_labels_free_list(v, n);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/vet-test-metrics.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    RUN(test_hand_computed);
    RUN(test_majority_baseline);
    RUN(test_empty_predictions);
    RUN(test_bootstrap);
    RUN(test_bootstrap_groups);
    RUN(test_ceiling);
    RUN(test_read_fixtures);
    RUN(test_bad_input);
    RUN(test_split_labels);
    RUN(test_stream_integer_ids);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    CHECK_EXIT();
}
