// test_ranking.c — the ranking metrics of vet-generate --rank predictions (lib/eval/ranking.h)
// against numbers worked out by hand on tests/fixtures/eval/ranked.jsonl, the same notes as a
// stream and as shards, the report's table and JSON with and without `ranked`, and every kind of
// bad `ranked` the readers refuse.
#include <jansson.h>
#include <math.h>
#include <unistd.h>

#include "check.h"
#include "eval_files.h"
#include "eval/predictions.h"
#include "eval/ranking.h"
#include "eval/report.h"
#include "io/mp.h"
#include "io/stream.h"

static const char *write_tmp(const char *name, const char *text) {
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

// The report of paths (one file, or n >= 2 shards), without intervals; -1 with err on failure.
static int build(vet_report *r, const char *const *paths, int n, vet_err *err) {
    vet_eval_opts o = vet_eval_defaults();
    o.bootstrap = 0;
    o.predictions = paths[0];
    if (n > 1) o.shards = paths, o.n_shards = n;
    return vet_report_build(&o, r, err);
}

// The seven notes of ranked.jsonl (labels A 1679004, B 3974005, C 72934000, D Foot Rot,
// E 40214000), gold -> ranked (p) and pred:
//   n1  A    A .9, B .05             pred A  exactly right  first gold at 1
//   n2  B    A .6, B .3, C .1        pred A  wrong          first gold at 2
//   n3  C    A .5, B .2, D .1, C .05 pred A  wrong          first gold at 4
//   n4  D    A .5, B .3              pred A  wrong          no gold listed
//   n5  A;B  B 1                     pred B  wrong (gold has two labels) first gold at 1
//   n6  E    E .3, A .3              pred E  exactly right  first gold at 1
//   n7  A    B .3, A .3              pred B  wrong          first gold at 2
// kmax 4. hit@1 = {n1 n5 n6} 3/7; hit@2 = + n2 n7 = 5/7; hit@3 = 5/7; hit@4 = + n3 = 6/7.
// MRR = (1 + 1/2 + 1/4 + 0 + 1 + 1 + 1/2) / 7 = 4.25/7 = 17/28.
// Top-1 (p, gold?): n1 (.9, 1) n2 (.6, 0) n3 (.5, 0) n4 (.5, 0) n5 (1, 1) n6 (.3, 1) n7 (.3, 0).
// ECE bins: [.3,.4) n6 n7: (2/7)|.3 - .5| = .4/7; [.5,.6) n3 n4: (2/7)|.5 - 0| = 1/7;
// [.6,.7) n2: (1/7)|.6 - 0| = .6/7; [.9,1] n1 n5 (p = 1 in the closed last bin): (2/7)|.95 - 1|
// = .1/7. ECE = 2.1/7 = .3.
// Brier = (.1² + .6² + .5² + .5² + 0² + .7² + .3²) / 7 = (.01+.36+.25+.25+0+.49+.09)/7 = 1.45/7.
// Selective: by top-1 p, ties in input order: n5 1, n1 .9, n2 .6, n3 .5, n4 .5, n6 .3, n7 .3;
// exactly right: n1 n6.
//   100%: ceil(7)   = 7 kept, threshold .3, right n1 n6: 2/7
//    90%: ceil(6.3) = 7 kept, .3, 2/7
//    80%: ceil(5.6) = 6 kept (n6 before n7, its equal: input order), .3, 2/6
//    70%: ceil(4.9) = 5 kept (n5 n1 n2 n3 n4), .5, 1/5
//    60%: ceil(4.2) = 5 kept, .5, 1/5
//    50%: ceil(3.5) = 4 kept (n3 before n4, its equal), .5, 1/4
static void check_hand(const vet_ranking *g) {
    CHECK(g->n == 7 && g->kmax == 4);
    if (g->kmax != 4) return;
    CHECK_NEAR(g->hit_at[0], 3.0 / 7, 1e-12);
    CHECK_NEAR(g->hit_at[1], 5.0 / 7, 1e-12);
    CHECK_NEAR(g->hit_at[2], 5.0 / 7, 1e-12);
    CHECK_NEAR(g->hit_at[3], 6.0 / 7, 1e-12);
    CHECK_NEAR(g->mrr, 17.0 / 28, 1e-12);
    CHECK_NEAR(g->ece, 0.3, 1e-12);
    CHECK_NEAR(g->brier, 1.45 / 7, 1e-12);
    static const struct { int coverage; size_t notes; double threshold, accuracy; } want[VET_SELECTIVE_ROWS] = {
        {100, 7, 0.3, 2.0 / 7}, {90, 7, 0.3, 2.0 / 7}, {80, 6, 0.3, 2.0 / 6},
        {70, 5, 0.5, 1.0 / 5},  {60, 5, 0.5, 1.0 / 5}, {50, 4, 0.5, 1.0 / 4},
    };
    for (int i = 0; i < VET_SELECTIVE_ROWS; i++) {
        const vet_selective *s = &g->selective[i];
        CHECK(s->coverage == want[i].coverage && s->notes == want[i].notes);
        CHECK_NEAR(s->threshold, want[i].threshold, 1e-12);
        CHECK_NEAR(s->accuracy, want[i].accuracy, 1e-12);
    }
}

static void hand_computed(void) {
    const char *path = fixture("ranked.jsonl");
    vet_report r;
    vet_err err;
    CHECK(build(&r, &path, 1, &err) == 0);
    check_hand(&r.rank);
    CHECK(r.m.n == 7 && r.m.correct == 2);  // the same exact match as the accuracy
    vet_report_free(&r);
}

// The API alone: one note, no file. The note's one gold label is second; p 0.95 sits in the last
// bin, [.9, 1], as p = 1 does.
static void one_note(void) {
    char *gold[] = {"B"}, *pred[] = {"A"}, *ranked[] = {"A", "B", "C"};
    double p[] = {0.95, 0.04, 0.01};
    vet_pred rec = {.gold = gold, .ngold = 1, .pred = pred, .npred = 1, .ranked = ranked, .ranked_p = p,
                    .nranked = 3, .at = 1};
    vet_eval *e = vet_eval_new();
    vet_ranks *rk = vet_ranks_new();
    vet_err err;
    CHECK(vet_eval_add(e, NULL, gold, 1, pred, 1, &err) == 0);
    CHECK(vet_ranks_add(rk, &rec, "x", "line", &err) == 0);
    vet_ranking g;
    CHECK(vet_ranking_compute(rk, e, &g, &err) == 0);
    CHECK(g.kmax == 3 && g.hit_at[0] == 0 && g.hit_at[1] == 1 && g.hit_at[2] == 1);
    CHECK_NEAR(g.mrr, 0.5, 1e-12);
    CHECK_NEAR(g.ece, 0.95, 1e-12);  // one bin: |.95 - 0|
    CHECK_NEAR(g.brier, 0.95 * 0.95, 1e-12);
    CHECK(g.selective[5].notes == 1 && g.selective[5].threshold == 0.95 && g.selective[5].accuracy == 0);
    vet_ranking_free(&g);
    // A second note's vet_eval sample without its ranking: the two no longer agree.
    CHECK(vet_eval_add(e, NULL, gold, 1, pred, 1, &err) == 0);
    CHECK(vet_ranking_compute(rk, e, &g, &err) < 0);
    vet_ranks_free(rk);
    vet_eval_free(e);
}

// One note whose list is the one label "X" at p, the gold label X when top_is_gold, else Y.
static void add_top(vet_eval *e, vet_ranks *rk, double p, int top_is_gold) {
    char *gold[] = {top_is_gold ? "X" : "Y"}, *ranked[] = {"X"};
    vet_pred rec = {.gold = gold, .ngold = 1, .pred = ranked, .npred = 1, .ranked = ranked, .ranked_p = &p,
                    .nranked = 1, .at = (long)vet_eval_n(e) + 1};
    vet_err err;
    CHECK(vet_eval_add(e, NULL, gold, 1, ranked, 1, &err) == 0);
    CHECK(vet_ranks_add(rk, &rec, "x", "line", &err) == 0);
}

// The bins' edges: [0, .1) holds .05, [.1, .2) holds .1 (its lower edge) and .18, [.9, 1] holds
// .9 and 1 (the closed upper edge).
//   bin 0: .05 wrong            |.05 - 0|       = .05
//   bin 1: .1 right, .18 wrong  |.28 - 1|       = .72
//   bin 9: .9 wrong, 1 right    |1.9 - 1|       = .9
// ECE = (.05 + .72 + .9) / 5 = 1.67/5; Brier = (.05² + .9² + .18² + .9² + 0²) / 5 = 1.6549/5.
// Rounding 10p instead of cutting it would move .05 to bin 1 and .18 to bin 2: 1.93/5.
static void calibration_bins(void) {
    vet_eval *e = vet_eval_new();
    vet_ranks *rk = vet_ranks_new();
    add_top(e, rk, 0.05, 0);
    add_top(e, rk, 0.1, 1);
    add_top(e, rk, 0.18, 0);
    add_top(e, rk, 0.9, 0);
    add_top(e, rk, 1.0, 1);
    vet_ranking g;
    vet_err err;
    CHECK(vet_ranking_compute(rk, e, &g, &err) == 0);
    CHECK_NEAR(g.ece, 1.67 / 5, 1e-12);
    CHECK_NEAR(g.brier, 1.6549 / 5, 1e-12);
    CHECK(g.kmax == 1 && g.hit_at[0] == 0.4);
    vet_ranking_free(&g);
    vet_ranks_free(rk);
    vet_eval_free(e);
}

// --- the same notes as a stream, and as shards -------------------------------------------------

// rec as a stream record, with `ranked` (a logp below each p's log: the response's probability)
// or without.
static void pack_pred(msgpack_packer *pk, const vet_pred *rec, int with_ranked) {
    msgpack_pack_map(pk, 3 + (with_ranked != 0));
    mp_kv_str(pk, "id", rec->id);
    mp_kv_str_array(pk, "gold", rec->gold, rec->ngold);
    mp_kv_str_array(pk, "pred", rec->pred, rec->npred);
    if (!with_ranked) return;
    mp_key(pk, "ranked");
    msgpack_pack_array(pk, (uint32_t)rec->nranked);
    for (size_t i = 0; i < rec->nranked; i++) {
        msgpack_pack_map(pk, 3);
        mp_kv_str(pk, "label", rec->ranked[i]);
        mp_kv_double(pk, "p", rec->ranked_p[i]);
        mp_kv_double(pk, "logp", log(rec->ranked_p[i]) - 1);
    }
}

// The notes k, k + n, ... of ranked.jsonl as a stream (n 0: all of them, no shard in the
// header); without_ranked drops every `ranked`.
static const char *stream_of_fixture(const char *name, int k, int n, int without_ranked) {
    const char *path = tmp_path(name);
    vet_err err;
    vet_writer *w = vet_writer_open(path, "predictions", "test_ranking", &err);
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, n ? 1 : 0);
    if (n) {
        mp_key(pk, "shard");
        msgpack_pack_map(pk, 3);
        mp_kv_int(pk, "k", k), mp_kv_int(pk, "n", n), mp_kv_int(pk, "input_notes", 7);
    }
    vet_writer_header_end(w, &err);
    vet_pred_reader *r = vet_pred_open(fixture("ranked.jsonl"), VET_PRED_SNIFF, &err);
    CHECK(r != NULL);
    vet_pred rec;
    for (int g = 0; r && vet_pred_next(r, &rec, &err) == 1; g++) {
        if (!n || g % n == k) pack_pred(pk, &rec, !without_ranked), vet_writer_record_end(w, &err);
        vet_pred_clear(&rec);
    }
    vet_pred_close(r);
    CHECK(vet_writer_close(w, &err) == 0);
    return path;
}

static void stream_and_shards(void) {
    vet_report r;
    vet_err err;
    const char *all = stream_of_fixture("all.pred", 0, 0, 0);
    CHECK(build(&r, &all, 1, &err) == 0);
    CHECK_STR(r.format, "stream");
    check_hand(&r.rank);
    vet_report_free(&r);
    const char *set[] = {stream_of_fixture("s1.pred", 1, 2, 0), stream_of_fixture("s0.pred", 0, 2, 0)};
    CHECK(build(&r, set, 2, &err) == 0);
    check_hand(&r.rank);  // in the input's order again: the ties fall as in one stream
    vet_report_free(&r);
    // Shard 1 from a run without --rank: its first record (note 2) is the first without a list.
    set[0] = stream_of_fixture("u1.pred", 1, 2, 1);
    CHECK(build(&r, set, 2, &err) < 0 && err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "u1.pred: record 1: no \"ranked\" list, but the first prediction (");
    CHECK_CONTAINS(err.msg, "s0.pred: record 1) has one");
    vet_report_free(&r);
}

// --- the report ----------------------------------------------------------------------------------

static char *table_of(const vet_report *r) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(vet_report_print(f, r) == 0);
    fclose(f);
    return text;
}

static int widest(const char *text) {
    int w = 0, cols = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') cols = 0;
        else if (((unsigned char)*p & 0xC0) != 0x80 && ++cols > w) w = cols;
    }
    return w;
}

static void report_section(void) {
    const char *path = fixture("ranked.jsonl");
    vet_report r;
    vet_err err;
    CHECK(build(&r, &path, 1, &err) == 0);
    char *text = table_of(&r);
    CHECK_CONTAINS(text, "\nranking (vet-generate --rank: up to 4 labels per note, most probable first)\n");
    CHECK_CONTAINS(text, "\nhit@1             0.4286  ");
    CHECK_CONTAINS(text, "\nhit@4             0.8571  ");
    CHECK_CONTAINS(text, "\nMRR               0.6071  ");
    CHECK_CONTAINS(text, "\ntop-1 ECE         0.3000  ");
    CHECK_CONTAINS(text, "\ntop-1 Brier       0.2071  ");
    CHECK_CONTAINS(text, "\ncoverage    notes  threshold  accuracy\n    100%        7     0.3000    0.2857\n");
    CHECK_CONTAINS(text, "\n     50%        4     0.5000    0.2500\n\nper label");
    CHECK(widest(text) <= 100);
    free(text);
    CHECK(vet_report_write_json(&r, tmp_path("r.json"), &err) == 0);
    json_t *j = json_load_file(tmp_path("r.json"), 0, NULL), *g = json_object_get(j, "ranking");
    CHECK(json_integer_value(json_object_get(g, "k")) == 4);
    json_t *hit = json_object_get(g, "hit_at");
    CHECK(json_object_size(hit) == 4);
    CHECK_NEAR(json_real_value(json_object_get(hit, "2")), 5.0 / 7, 1e-12);
    CHECK_NEAR(json_real_value(json_object_get(g, "mrr")), 17.0 / 28, 1e-12);
    CHECK_NEAR(json_real_value(json_object_get(g, "ece")), 0.3, 1e-12);
    CHECK_NEAR(json_real_value(json_object_get(g, "brier")), 1.45 / 7, 1e-12);
    json_t *row = json_array_get(json_object_get(g, "selective"), 2);
    CHECK(json_array_size(json_object_get(g, "selective")) == 6);
    CHECK(json_integer_value(json_object_get(row, "coverage")) == 80 &&
          json_integer_value(json_object_get(row, "notes")) == 6);
    CHECK_NEAR(json_real_value(json_object_get(row, "threshold")), 0.3, 1e-12);
    CHECK_NEAR(json_real_value(json_object_get(row, "accuracy")), 2.0 / 6, 1e-12);
    json_decref(j);
    vet_report_free(&r);

    // Without `ranked`: no section, no key.
    path = fixture("small.jsonl");
    CHECK(build(&r, &path, 1, &err) == 0);
    CHECK(r.rank.kmax == 0 && r.rank.hit_at == NULL);
    text = table_of(&r);
    CHECK(strstr(text, "ranking") == NULL && strstr(text, "hit@") == NULL);
    free(text);
    CHECK(vet_report_write_json(&r, tmp_path("s.json"), &err) == 0);
    j = json_load_file(tmp_path("s.json"), 0, NULL);
    CHECK(j && json_object_get(j, "ranking") == NULL);
    json_decref(j);
    vet_report_free(&r);
}

// The table shows hit@k for k = 1, 2, 3, 5 and the longest list, each once.
static void shown_ks(void) {
    static const struct { int kmax; const char *shown, *hidden; } cases[] = {
        {1, "hit@1 ", "hit@2"}, {4, "hit@4 ", "hit@5"}, {5, "hit@5 ", "hit@4"}, {7, "hit@7 ", "hit@6"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        // One note whose gold label is last of kmax labels.
        char line[1024];
        int o = snprintf(line, sizeof line, "{\"gold\": [\"L%d\"], \"pred\": [\"L1\"], \"ranked\": [", cases[c].kmax);
        for (int i = 1; i <= cases[c].kmax; i++)
            o += snprintf(line + o, sizeof line - (size_t)o, "%s{\"label\": \"L%d\", \"p\": %g}", i > 1 ? ", " : "",
                          i, 0.5 / i);
        snprintf(line + o, sizeof line - (size_t)o, "]}\n");
        const char *path = write_tmp("k.jsonl", line);
        vet_report r;
        vet_err err;
        CHECK(build(&r, &path, 1, &err) == 0);
        char *text = table_of(&r);
        CHECK_CONTAINS(text, "\nhit@1 ");
        CHECK_CONTAINS(text, cases[c].shown);
        CHECK(strstr(text, cases[c].hidden) == NULL);
        if (cases[c].kmax == 7) CHECK_CONTAINS(text, "\nhit@3             0.0000  ");
        if (cases[c].kmax == 7) CHECK_CONTAINS(text, "\nhit@7             1.0000  ");
        free(text);
        vet_report_free(&r);
    }
}

// --- bad input -------------------------------------------------------------------------------------

// Reading every record of path (a JSON lines file or a stream) must fail with a message
// containing want, of kind VET_E_INPUT.
static void refused(const char *path, const char *want) {
    vet_report r;
    vet_err err = {0};
    CHECK(build(&r, &path, 1, &err) < 0);
    CHECK(err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, want);
    vet_report_free(&r);
}

#define OK_LINE "{\"gold\": [\"A\"], \"pred\": [\"A\"], \"ranked\": [{\"label\": \"A\", \"p\": 0.5}]}\n"

// Line 2 of a JSON lines file holds `ranked` as given; the message names line 2.
static void bad_jsonl(const char *ranked, const char *want) {
    char text[1024], expect[600];
    snprintf(text, sizeof text, OK_LINE "{\"gold\": [\"A\"], \"pred\": [\"A\"], \"ranked\": %s}\n", ranked);
    const char *path = write_tmp("bad.jsonl", text);
    snprintf(expect, sizeof expect, "bad.jsonl:2: %s", want);
    refused(path, expect);
}

static void bad_jsonl_ranked(void) {
    bad_jsonl("{\"label\": \"A\"}", "\"ranked\" is not an array");
    bad_jsonl("\"A;B\"", "\"ranked\" is not an array");
    bad_jsonl("[]", "\"ranked\" is empty");
    bad_jsonl("[{\"label\": \"A\", \"p\": 0.5}, [\"B\", 0.2]]", "\"ranked\"[1] is not an object");
    bad_jsonl("[{\"p\": 0.5}]", "\"ranked\"[0] has no \"label\"");
    bad_jsonl("[{\"label\": 7, \"p\": 0.5}]", "\"ranked\"[0].label is not a string");
    bad_jsonl("[{\"label\": \"\", \"p\": 0.5}]", "\"ranked\"[0].label is empty");
    bad_jsonl("[{\"label\": \"A\"}]", "\"ranked\"[0] has no \"p\"");
    bad_jsonl("[{\"label\": \"A\", \"p\": \"0.5\"}]", "\"ranked\"[0].p is not a number");
    bad_jsonl("[{\"label\": \"A\", \"p\": null}]", "\"ranked\"[0].p is not a number");
    bad_jsonl("[{\"label\": \"A\", \"p\": 1.5}]", "\"ranked\"[0].p = 1.5 is not a probability (want 0 <= p <= 1)");
    bad_jsonl("[{\"label\": \"A\", \"p\": -0.1}]", "\"ranked\"[0].p = -0.1 is not a probability");
    bad_jsonl("[{\"label\": \"A\", \"p\": 0.2}, {\"label\": \"B\", \"p\": 0.3}]",
              "\"ranked\"[1].p = 0.29999999999999999 is above \"ranked\"[0].p = 0.20000000000000001: the list must "
              "be most probable first");
    bad_jsonl("[{\"label\": \"B\", \"p\": 0.4}, {\"label\": \"A\", \"p\": 0.3}, {\"label\": \"B\", \"p\": 0.2}]",
              "\"ranked\"[2].label 'B' is also \"ranked\"[0]: each label is ranked once");
    bad_jsonl("[{\"label\": \"A\", \"p\": 0.5, \"logp\": \"x\"}]", "\"ranked\"[0].logp is not a number");
    bad_jsonl("[{\"label\": \"A\", \"p\": 0.5, \"logp\": 0.25}]", "\"ranked\"[0].logp = 0.25 is not a log probability");
    // A list only in some records: the first record that differs from the first is named.
    refused(write_tmp("mix1.jsonl", OK_LINE "{\"gold\": [\"A\"], \"pred\": [\"A\"]}\n"),
            "mix1.jsonl:2: no \"ranked\" list, but the first prediction (");
    refused(write_tmp("mix2.jsonl", "{\"gold\": [\"A\"], \"pred\": [\"A\"], \"ranked\": null}\n"
                                    "{\"gold\": [\"B\"], \"pred\": [\"A\"]}\n" OK_LINE),
            "mix2.jsonl:3: a \"ranked\" list, but the first prediction (");
}

// A stream of two records, the second's `ranked` packed by pack (the first a good list).
static const char *stream_with(const char *name, void (*pack)(msgpack_packer *)) {
    const char *path = tmp_path(name);
    vet_err err;
    vet_writer *w = vet_writer_open(path, "predictions", "test_ranking", &err);
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, 0);
    vet_writer_header_end(w, &err);
    char *gold[] = {"A"};
    for (int i = 0; i < 2; i++) {
        msgpack_pack_map(pk, 3);
        mp_kv_str_array(pk, "gold", gold, 1);
        mp_kv_str_array(pk, "pred", gold, 1);
        mp_key(pk, "ranked");
        if (i == 1) {
            pack(pk);
        } else {
            msgpack_pack_array(pk, 1);
            msgpack_pack_map(pk, 2);
            mp_kv_str(pk, "label", "A"), mp_kv_double(pk, "p", 0.5);
        }
        vet_writer_record_end(w, &err);
    }
    CHECK(vet_writer_close(w, &err) == 0);
    return path;
}

static void one_entry(msgpack_packer *pk, const char *label, double p, int with_logp, double logp) {
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2 + (with_logp != 0));
    mp_kv_str(pk, "label", label);
    mp_kv_double(pk, "p", p);
    if (with_logp) mp_kv_double(pk, "logp", logp);
}

static void nan_p(msgpack_packer *pk) { one_entry(pk, "A", NAN, 0, 0); }
static void nan_logp(msgpack_packer *pk) { one_entry(pk, "A", 0.5, 1, NAN); }
static void nil_list(msgpack_packer *pk) { msgpack_pack_nil(pk); }
static void str_list(msgpack_packer *pk) { mp_str(pk, "A"); }
static void int_entry(msgpack_packer *pk) { msgpack_pack_array(pk, 1), msgpack_pack_int(pk, 3); }
static void bin_label(msgpack_packer *pk) {
    msgpack_pack_array(pk, 1), msgpack_pack_map(pk, 2);
    mp_key(pk, "label"), msgpack_pack_bin(pk, 1), msgpack_pack_bin_body(pk, "A", 1);
    mp_kv_double(pk, "p", 0.5);
}
static void str_p(msgpack_packer *pk) {
    msgpack_pack_array(pk, 1), msgpack_pack_map(pk, 2);
    mp_kv_str(pk, "label", "A"), mp_kv_str(pk, "p", "0.5");
}
static void neg_inf_logp(msgpack_packer *pk) { one_entry(pk, "A", 0, 1, -INFINITY); }  // fine: probability 0

static void bad_stream_ranked(void) {
    refused(stream_with("nan.pred", nan_p), "nan.pred: record 2: \"ranked\"[0].p = nan is not a probability");
    refused(stream_with("nanlogp.pred", nan_logp), "nanlogp.pred: record 2: \"ranked\"[0].logp = nan is not a log");
    refused(stream_with("nil.pred", nil_list), "nil.pred: record 2: no \"ranked\" list, but the first");  // nil: none
    refused(stream_with("str.pred", str_list), "str.pred: record 2: \"ranked\" is not an array of {label, p} maps");
    refused(stream_with("int.pred", int_entry), "int.pred: record 2: \"ranked\"[0] is not a map");
    refused(stream_with("bin.pred", bin_label), "bin.pred: record 2: \"ranked\"[0].label is not a string");
    refused(stream_with("strp.pred", str_p), "strp.pred: record 2: \"ranked\"[0].p is not a number");
    const char *ok = stream_with("inf.pred", neg_inf_logp);
    vet_report r;
    vet_err err;
    CHECK(build(&r, &ok, 1, &err) == 0 && r.rank.kmax == 1);
    CHECK(r.rank.selective[0].threshold == 0);  // the least confident of the two: p 0
    vet_report_free(&r);
}

// Where the mix is refused, the first record is named with its file.
static void mix_names_first(void) {
    const char *path = write_tmp("mix3.jsonl", "{\"gold\": [\"A\"], \"pred\": [\"A\"]}\n" OK_LINE);
    vet_report r;
    vet_err err;
    CHECK(build(&r, &path, 1, &err) < 0);
    CHECK_CONTAINS(err.msg, "mix3.jsonl:2: a \"ranked\" list, but the first prediction (");
    CHECK_CONTAINS(err.msg, "mix3.jsonl:1) has none: predictions with and without vet-generate --rank");
    vet_report_free(&r);
}


// --- --fit-temperature -----------------------------------------------------------------------

// Six notes over a table of the three labels A, B, C, each listed whole with logp (the scores
// below) and p = softmax(logp), most probable first; the header's `rank.labels` is header_labels
// (0: no `rank`). drop_logp_at: a record (from 1) whose second entry has no logp (0: none).
static const double fit_scores[6][3] = {{-0.1, -2.5, -4.0}, {-0.3, -1.5, -3.0}, {-0.2, -2.0, -2.2},
                                        {-0.7, -0.9, -3.5}, {-0.05, -3.5, -5.0}, {-0.4, -1.2, -2.9}};
static const char fit_gold[6] = {'A', 'B', 'A', 'B', 'A', 'C'};

static const char *fit_stream(const char *name, int header_labels, int drop_logp_at) {
    const char *path = tmp_path(name);
    vet_err err;
    vet_writer *w = vet_writer_open(path, "predictions", "test_ranking", &err);
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, header_labels ? 1 : 0);
    if (header_labels) {
        mp_key(pk, "rank");
        msgpack_pack_map(pk, 3);
        mp_kv_int(pk, "k", 3), mp_kv_int(pk, "labels", header_labels), mp_kv_double(pk, "temperature", 1.0);
    }
    vet_writer_header_end(w, &err);
    for (int i = 0; i < 6; i++) {
        char g[2] = {fit_gold[i], 0}, a[2] = "A";
        char *gold[] = {g}, *pred[] = {a};
        double z = 0;
        for (int j = 0; j < 3; j++) z += exp(fit_scores[i][j]);
        msgpack_pack_map(pk, 3);
        mp_kv_str_array(pk, "gold", gold, 1);
        mp_kv_str_array(pk, "pred", pred, 1);
        mp_key(pk, "ranked");
        msgpack_pack_array(pk, 3);
        for (int j = 0; j < 3; j++) {  // the scores fall along each row: A, B, C is the order
            char label[2] = {(char)('A' + j), 0};
            int with_logp = !(drop_logp_at == i + 1 && j == 1);
            msgpack_pack_map(pk, 2 + with_logp);
            mp_kv_str(pk, "label", label);
            mp_kv_double(pk, "p", exp(fit_scores[i][j]) / z);
            if (with_logp) mp_kv_double(pk, "logp", fit_scores[i][j]);
        }
        vet_writer_record_end(w, &err);
    }
    CHECK(vet_writer_close(w, &err) == 0);
    return path;
}

static int build_fit(vet_report *r, const char *path, vet_err *err) {
    vet_eval_opts o = vet_eval_defaults();
    o.bootstrap = 0, o.predictions = path, o.fit_temperature = 1;
    return vet_report_build(&o, r, err);
}

static void temperature_fit(void) {
    vet_report r;
    vet_err err;
    const char *path = fit_stream("fit.pred", 3, 0);
    CHECK(build_fit(&r, path, &err) == 0);
    CHECK(r.rank.fitted == 1);
    // The same fit as calibrate.h's on the arrays written here.
    double logp[18];
    unsigned char gold[18];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) logp[3 * i + j] = fit_scores[i][j], gold[3 * i + j] = fit_gold[i] == 'A' + j;
    vet_temperature t;
    CHECK(vet_temperature_fit(logp, gold, 6, 3, &t, &err) == 0);
    CHECK(r.rank.temperature.t == t.t && r.rank.temperature.fitted == 6 && r.rank.temperature.bound == 0);
    // At T = 1 the fit's ECE and Brier are the report's own (p is softmax(logp) here).
    CHECK_NEAR(r.rank.temperature.ece[0], r.rank.ece, 1e-12);
    CHECK_NEAR(r.rank.temperature.brier[0], r.rank.brier, 1e-12);
    char *text = table_of(&r);
    CHECK_CONTAINS(text, "temperature fitted to these 6 notes (6 with a gold label ranked): T = ");
    CHECK(widest(text) <= 100);
    free(text);
    const char *tfile = tmp_path("T.txt"), *jfile = tmp_path("fit.json");
    CHECK(vet_report_write_temperature(&r, tfile, &err) == 0);
    FILE *f = fopen(tfile, "r");
    double back = 0;
    CHECK(f && fscanf(f, "%lf", &back) == 1);
    if (f) fclose(f);
    CHECK_NEAR(back, t.t, 1e-5 * t.t);  // "%.6g": six digits
    CHECK(vet_report_write_json(&r, jfile, &err) == 0);
    json_t *root = json_load_file(jfile, 0, NULL);
    json_t *jt = json_object_get(json_object_get(root, "ranking"), "temperature");
    CHECK(json_is_object(jt));
    CHECK_NEAR(json_real_value(json_object_get(jt, "t")), t.t, 1e-12 * t.t);  // 15 digits
    CHECK(json_array_size(json_object_get(jt, "nll")) == 2);
    json_decref(root);
    vet_report_free(&r);
    // Without the fit the report has no temperature, in the table or the JSON.
    CHECK(build(&r, &path, 1, &err) == 0 && r.rank.fitted == 0);
    text = table_of(&r);
    CHECK(strstr(text, "temperature fitted") == NULL);
    free(text);
    vet_report_free(&r);
}

static void fit_refused(const char *path, const char *want) {
    vet_report r;
    vet_err err = {0};
    CHECK(build_fit(&r, path, &err) < 0 && err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, want);
    vet_report_free(&r);
}

static void temperature_fit_refused(void) {
    fit_refused(fit_stream("fit4.pred", 4, 0),
                "fit4.pred: record 1: lists 3 of the table's 4 labels (--fit-temperature needs every label's logp: "
                "vet-generate --rank all)");
    fit_refused(fit_stream("nologp.pred", 3, 5), "nologp.pred: record 5: \"ranked\"[1] has no logp");
    fit_refused(write_tmp("short.jsonl",
                          "{\"gold\": [\"A\"], \"pred\": [\"A\"], \"ranked\": [{\"label\": \"A\", \"p\": 0.7, "
                          "\"logp\": -0.3}, {\"label\": \"B\", \"p\": 0.3, \"logp\": -1.2}]}\n"
                          "{\"gold\": [\"A\"], \"pred\": [\"A\"], \"ranked\": [{\"label\": \"A\", \"p\": 1, "
                          "\"logp\": -0.1}]}\n"),
                "short.jsonl:2: lists 1 labels, but the first prediction (");
    fit_refused(write_tmp("plain.jsonl", "{\"gold\": [\"A\"], \"pred\": [\"A\"]}\n"),
                "--fit-temperature: ");
    fit_refused(write_tmp("plain2.jsonl", "{\"gold\": [\"A\"], \"pred\": [\"A\"]}\n"), "has no \"ranked\" lists");
    // No note's gold label among the labels: nothing to fit.
    fit_refused(write_tmp("nogold.jsonl", "{\"gold\": [\"Z\"], \"pred\": [\"A\"], \"ranked\": [{\"label\": \"A\", "
                                          "\"p\": 1, \"logp\": -0.1}]}\n"),
                "--fit-temperature: no note's gold label is among its ranked labels");
}

// --- --refer-below and --fit-threshold ------------------------------------------------------

// ranked.jsonl's top-1 p and exact match (check_hand's table): n1 .9 right, n2 .6, n3 .5, n4 .5,
// n5 1 (wrong: its gold set has two labels), n6 .3 right, n7 .3.
static int build_referral(vet_report *r, double refer_below, double fit, vet_err *err) {
    vet_eval_opts o = vet_eval_defaults();
    o.bootstrap = 0, o.predictions = fixture("ranked.jsonl"), o.refer_below = refer_below, o.fit_threshold = fit;
    return vet_report_build(&o, r, err);
}

static void referral_report(void) {
    vet_report r;
    vet_err err;
    // p >= .55 coded: n1 n2 n5, one right; referred n3 n4 n6 n7, one right (n6).
    CHECK(build_referral(&r, 0.55, 0, &err) == 0 && r.referred);
    CHECK(r.referral.coded == 3 && r.referral.notes == 7);
    CHECK_NEAR(r.referral.accuracy, 1.0 / 3, 1e-15);
    CHECK_NEAR(r.referral.referred_accuracy, 0.25, 1e-15);
    char *text = table_of(&r);
    CHECK_CONTAINS(text, "referral (notes with top-1 p below 0.5500 go to a person)");
    CHECK_CONTAINS(text, "coded             3 of 7 (42.9%), accuracy 0.3333");
    CHECK(widest(text) <= 100);
    free(text);
    vet_report_free(&r);
    // For accuracy >= .5: by p, 1 (wrong) .9 (right) .6 .5 .5 .3 .3: the first two, 1/2.
    CHECK(build_referral(&r, -1, 0.5, &err) == 0 && r.referred && r.referral.threshold == 0.9);
    CHECK(r.referral.coded == 2);
    const char *tfile = tmp_path("thr.txt");
    CHECK(vet_report_write_threshold(&r, tfile, &err) == 0);
    FILE *f = fopen(tfile, "r");
    double back = 0;
    CHECK(f && fscanf(f, "%lf", &back) == 1 && back == 0.9);  // all 17 digits: the same double
    if (f) fclose(f);
    text = table_of(&r);
    CHECK_CONTAINS(text, "referral (threshold fitted to these notes for accuracy >= 0.5: 0.9000");
    CHECK(widest(text) <= 100);
    free(text);
    vet_report_free(&r);
    // No threshold reaches 1: the surest note is wrong.
    CHECK(build_referral(&r, -1, 1.0, &err) < 0 && strstr(err.msg, "no threshold codes these notes at accuracy >= 1"));
    vet_report_free(&r);
    // Predictions without ranked lists: nothing to refer by.
    vet_eval_opts o = vet_eval_defaults();
    o.bootstrap = 0, o.predictions = fixture("small.jsonl"), o.refer_below = 0.5;
    CHECK(vet_report_build(&o, &r, &err) < 0 && strstr(err.msg, "--refer-below: ") &&
          strstr(err.msg, "has no \"ranked\" lists"));
    vet_report_free(&r);
}

// An accuracy exactly at the target reaches it, however the target rounds: k of n right for each
// two-decimal target k/n (0.56 x 25 and 0.55 x 100 round above 14 and 55 in doubles).
static void referral_fit_at_target(void) {
    double p[100];
    unsigned char ok[100];
    for (int i = 0; i < 100; i++) p[i] = 0.5;
    for (int t = 1; t <= 100; t++)
        for (int n = 1; n <= 100; n++) {
            if (t * n % 100) continue;  // k = t n / 100 right of n: accuracy t / 100 exactly
            int k = t * n / 100;
            for (int i = 0; i < n; i++) ok[i] = i < k;
            char target[16];
            snprintf(target, sizeof target, "%d.%02d", t / 100, t % 100);
            double thr = -1;
            if (vet_referral_fit(p, ok, (size_t)n, strtod(target, NULL), &thr) != 1 || thr != 0.5) {
                fprintf(stderr, "%d of %d right: no threshold for target %s\n", k, n, target);
                CHECK(!"an accuracy equal to the target reaches it");
                return;
            }
        }
}

// --temperature: the top labels' p recomputed from the whole lists' logp; hit@k unchanged.
static void rescaled(void) {
    vet_report r;
    vet_err err;
    const char *path = fit_stream("scale.pred", 3, 0);
    vet_eval_opts o = vet_eval_defaults();
    o.bootstrap = 0, o.predictions = path;
    CHECK(vet_report_build(&o, &r, &err) == 0);
    double ece1 = r.rank.ece, hit1 = r.rank.hit_at[0], brier1 = r.rank.brier;
    vet_report_free(&r);
    o.temperature = 1.0;  // the lists' own p (softmax of logp): the same numbers
    CHECK(vet_report_build(&o, &r, &err) == 0);
    CHECK_NEAR(r.rank.ece, ece1, 1e-12);
    CHECK_NEAR(r.rank.brier, brier1, 1e-12);
    vet_report_free(&r);
    o.temperature = 2.0;
    CHECK(vet_report_build(&o, &r, &err) == 0);
    CHECK(r.rank.hit_at[0] == hit1);
    // Brier at T = 2 worked out here: the first label (A) is each note's top.
    double brier = 0;
    for (int i = 0; i < 6; i++) {
        double z = 0;
        for (int j = 0; j < 3; j++) z += exp(fit_scores[i][j] / 2);
        double p = exp(fit_scores[i][0] / 2) / z, ok = fit_gold[i] == 'A';
        brier += (p - ok) * (p - ok);
    }
    CHECK_NEAR(r.rank.brier, brier / 6, 1e-12);
    char *text = table_of(&r);
    CHECK_CONTAINS(text, "(p at temperature 2, from each note's logp: vet-eval --temperature)");
    free(text);
    vet_report_free(&r);
    // Lists that are not whole, or no lists: refused.
    o.predictions = fit_stream("scale4.pred", 4, 0);
    CHECK(vet_report_build(&o, &r, &err) < 0 && strstr(err.msg, "lists 3 of the table's 4 labels (--temperature needs"));
    vet_report_free(&r);
    o.predictions = fixture("small.jsonl");
    CHECK(vet_report_build(&o, &r, &err) < 0 && strstr(err.msg, "--temperature: ") &&
          strstr(err.msg, "has no \"ranked\" lists"));
    vet_report_free(&r);
}

int main(void) {
    if (eval_dir_make("ranking")) return 1;
    RUN(hand_computed);
    RUN(one_note);
    RUN(calibration_bins);
    RUN(stream_and_shards);
    RUN(report_section);
    RUN(shown_ks);
    RUN(bad_jsonl_ranked);
    RUN(bad_stream_ranked);
    RUN(mix_names_first);
    RUN(temperature_fit);
    RUN(temperature_fit_refused);
    RUN(referral_report);
    RUN(referral_fit_at_target);
    RUN(rescaled);
    if (eval_dir_remove()) return 1;
    CHECK_EXIT();
}
