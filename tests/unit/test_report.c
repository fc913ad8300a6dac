// test_report.c — vet-eval's report (lib/eval/report.h) over the hand-computed fixture: the
// numbers, the baseline (from the set itself and from training streams of each kind), the table
// (no line over 100 columns) and the JSON, and what each kind of failure says.
#include <jansson.h>
#include <unistd.h>

#include "check.h"
#include "eval_files.h"
#include "eval/predictions.h"
#include "eval/report.h"
#include "io/mp.h"
#include "io/stream.h"

// A stream of kind with one record per entry of sets: key -> the labels of sets[i] (';'-separated).
// For "packed" every record holds all the sets under "codes" as one row.
static const char *write_stream(const char *name, const char *kind, const char *key, const char *const *sets, int n) {
    const char *path = tmp_path(name);
    vet_err err;
    vet_writer *w = vet_writer_open(path, kind, "test_report", &err);
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, 0);
    vet_writer_header_end(w, &err);
    int packed = strcmp(kind, "packed") == 0;
    for (int i = 0; i < (packed ? 1 : n); i++) {
        msgpack_pack_map(pk, 1);
        mp_key(pk, key);
        if (packed) msgpack_pack_array(pk, (uint32_t)n);
        for (int s = packed ? 0 : i; s < (packed ? n : i + 1); s++) {
            char **v;
            size_t nv;
            vet_split_labels(sets[s], strlen(sets[s]), &v, &nv, &err);
            msgpack_pack_array(pk, (uint32_t)nv);
            for (size_t j = 0; j < nv; j++) mp_str(pk, v[j]);
            vet_labels_free_list(v, nv);
        }
        vet_writer_record_end(w, &err);
    }
    CHECK(vet_writer_close(w, &err) == 0);
    return path;
}

static void numbers_and_baseline(void) {
    vet_eval_opts o = vet_eval_defaults();
    o.predictions = fixture("small.csv");
    o.bootstrap = 0;
    vet_report r;
    vet_err err;
    CHECK(vet_report_build(&o, &r, &err) == 0);
    CHECK(r.m.n == 9 && r.m.correct == 4);
    CHECK_STR(r.format, "csv");
    CHECK_STR(r.input, o.predictions);
    CHECK(r.nbase == 1 && strcmp(r.base[0], "1679004") == 0);  // the majority gold set of the set itself
    CHECK_NEAR(r.base_acc, 4.0 / 9, 1e-12);
    vet_report_free(&r);

    // From training streams: the majority set {3974005} is right for one sample of nine.
    const char *sets[] = {"3974005", "3974005", "1679004"};
    const char *streams[][2] = {{"tokens", "codes"}, {"predictions", "gold"}, {"packed", "codes"}};
    for (int i = 0; i < 3; i++) {
        o.baseline_from = write_stream(streams[i][0], streams[i][0], streams[i][1], sets, 3);
        CHECK(vet_report_build(&o, &r, &err) == 0);
        CHECK(r.nbase == 1 && r.nbase && strcmp(r.base[0], "3974005") == 0);
        CHECK_NEAR(r.base_acc, 1.0 / 9, 1e-12);
        vet_report_free(&r);
    }
    o.baseline_from = write_stream("other", "other", "codes", sets, 3);
    CHECK(vet_report_build(&o, &r, &err) < 0 && err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "wants a tokens, packed or predictions stream, not 'other'");
    vet_report_free(&r);
}

static void table_and_json(void) {
    vet_eval_opts o = vet_eval_defaults();
    o.predictions = fixture("small.csv");
    o.codes = fixture("codes.tsv");
    o.seed = 3;
    vet_report r;
    vet_err err;
    CHECK(vet_report_build(&o, &r, &err) == 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(vet_report_print(f, &r) == 0);
    fclose(f);
    CHECK_CONTAINS(text, "\nbaseline          0.4444  always answering 1679004\n");
    CHECK_CONTAINS(text, "(percentile bootstrap, 1000 resamples, seed 3)");
    CHECK_CONTAINS(text, "\n72934000                 2       0    0.0000  0.0000  0.0000  Mastitis\n");
    CHECK_CONTAINS(text, "Foot rot (interdigital necrobacillo...\n");  // a long term cut at 100 columns
    CHECK_CONTAINS(text, "\n      2  1679004 -> 3974005\n");
    int widest = 0, cols = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') cols = 0;
        else if (((unsigned char)*p & 0xC0) != 0x80 && ++cols > widest) widest = cols;
    }
    CHECK(widest <= 100);
    free(text);

    CHECK(vet_report_write_json(&r, tmp_path("m.json"), &err) == 0);
    json_error_t je;
    json_t *j = json_load_file(tmp_path("m.json"), 0, &je);
    CHECK(j != NULL);
    CHECK(json_integer_value(json_object_get(j, "n")) == 9);
    CHECK_NEAR(json_real_value(json_object_get(j, "accuracy")), 4.0 / 9, 1e-12);
    json_t *base = json_object_get(j, "baseline");
    CHECK_STR(json_string_value(json_object_get(base, "label")), "1679004");
    CHECK(json_is_true(json_object_get(base, "optimistic")));
    json_t *ci = json_object_get(j, "ci");
    CHECK(json_integer_value(json_object_get(ci, "resamples")) == 1000 && json_integer_value(json_object_get(ci, "seed")) == 3);
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(j, "per_label"), "72934000"), "term")),
              "Mastitis");
    json_decref(j);
    CHECK(vet_report_write_json(&r, tmp_path("no/such/dir/m.json"), &err) < 0 && err.kind == VET_E_IO);
    vet_report_free(&r);
}

static void failures(void) {
    vet_eval_opts o = vet_eval_defaults();
    vet_report r;
    vet_err err;
    o.predictions = tmp_path("missing.csv");
    CHECK(vet_report_build(&o, &r, &err) < 0 && err.kind == VET_E_IO);
    vet_report_free(&r);
    o.predictions = fixture("small.csv");
    o.codes = tmp_path("missing.tsv");
    CHECK(vet_report_build(&o, &r, &err) < 0 && err.kind == VET_E_IO);
    vet_report_free(&r);
    o.codes = NULL;
    FILE *f = fopen(tmp_path("header.csv"), "w");
    fputs("id,gold,pred\n", f);
    fclose(f);
    o.predictions = tmp_path("header.csv");
    CHECK(vet_report_build(&o, &r, &err) < 0 && err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "header.csv: no predictions (n = 0)");
    vet_report_free(&r);
    f = fopen(tmp_path("bad.csv"), "w");
    fputs("id,gold,pred\n1,A,A\n2,\"A\"x,B\n", f);
    fclose(f);
    o.predictions = tmp_path("bad.csv");
    CHECK(vet_report_build(&o, &r, &err) < 0 && err.kind == VET_E_INPUT && err.line == 3);
    vet_report_free(&r);
    o.predictions = fixture("small.csv");
    o.baseline_from = tmp_path("no-stream.tok");
    CHECK(vet_report_build(&o, &r, &err) < 0 && err.kind == VET_E_IO);
    vet_report_free(&r);
}

int main(void) {
    if (eval_dir_make("report")) return 1;
    RUN(numbers_and_baseline);
    RUN(table_and_json);
    RUN(failures);
    if (eval_dir_remove()) return 1;
    CHECK_EXIT();
}
