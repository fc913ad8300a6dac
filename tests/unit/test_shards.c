// test_shards.c — the shards of one vet-generate --shard run (lib/eval/shards.h): each shard's
// size, the checks of a set from its headers (each refusal naming the shard and the file), and
// the merge: a set of shards scores exactly as the one stream of the unsharded run, bootstrap
// intervals included (which needs the input's order back), whatever order the files come in.
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "eval_files.h"
#include "eval/report.h"
#include "eval/shards.h"
#include "io/mp.h"
#include "io/stream.h"

// Note g of the input: id "n<g>", gold {"A"} or {"B"}, a prediction right for about half.
static void pack_note(msgpack_packer *pk, int g) {
    char id[16], *gold = g % 3 ? "A" : "B", *pred = g % 5 < 2 ? "B" : "A";
    snprintf(id, sizeof id, "n%d", g);
    msgpack_pack_map(pk, 3);
    mp_kv_str(pk, "id", id);
    mp_kv_str_array(pk, "gold", &gold, 1);
    mp_kv_str_array(pk, "pred", &pred, 1);
}

// A predictions stream of notes k, k + n, ... of an input of total notes; n 0: every note, no
// shard in the header.
static const char *write_shard(const char *name, int k, int n, int total) {
    const char *path = tmp_path(name);
    vet_err err;
    vet_writer *w = vet_writer_open(path, "predictions", "test_shards", &err);
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, n ? 1 : 0);
    if (n) {
        mp_key(pk, "shard");
        msgpack_pack_map(pk, 3);
        mp_kv_int(pk, "k", k), mp_kv_int(pk, "n", n), mp_kv_int(pk, "input_notes", total);
    }
    vet_writer_header_end(w, &err);
    for (int g = n ? k : 0; g < total; g += n ? n : 1) {
        pack_note(pk, g);
        vet_writer_record_end(w, &err);
    }
    CHECK(vet_writer_close(w, &err) == 0);
    return path;
}

static void sizes(void) {
    vet_shard s = {.k = 0, .n = 3, .input_notes = 160};
    int64_t sum = 0;
    for (s.k = 0; s.k < 3; s.k++) sum += vet_shard_size(&s);
    CHECK(sum == 160);
    s.k = 0;
    CHECK(vet_shard_size(&s) == 54);
    s.k = 2;
    CHECK(vet_shard_size(&s) == 53);
    s = (vet_shard){.k = 2, .n = 3, .input_notes = 2};  // more shards than notes: the last is empty
    CHECK(vet_shard_size(&s) == 0);
    s = (vet_shard){.k = 0, .n = 1, .input_notes = 0};
    CHECK(vet_shard_size(&s) == 0);
}

// A shard of no fold (the fields the tests set; fold zeroed).
#define SH(k_, n_, t_) ((vet_shard){.k = (k_), .n = (n_), .input_notes = (t_)})

static void set_checks(void) {
    const char *paths[] = {"a", "b", "c"};
    vet_err err;
    vet_shard ok[] = {SH(2, 3, 10), SH(0, 3, 10), SH(1, 3, 10)};
    CHECK(vet_shards_check(ok, paths, 3, &err) == 0);
    vet_shard missing[] = {SH(0, 3, 10), SH(1, 3, 10)};
    CHECK(vet_shards_check(missing, paths, 2, &err) < 0 && err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "a: shard 2/3 is missing");
    vet_shard twice[] = {SH(0, 3, 10), SH(1, 3, 10), SH(1, 3, 10)};
    CHECK(vet_shards_check(twice, paths, 3, &err) < 0 && err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "c: shard 1/3 appears twice (b and c)");
    vet_shard split[] = {SH(0, 3, 10), SH(1, 4, 10), SH(2, 3, 10)};
    CHECK(vet_shards_check(split, paths, 3, &err) < 0);
    CHECK_CONTAINS(err.msg, "b: shard 1/4, but a is shard 0/3");
    vet_shard input[] = {SH(0, 3, 10), SH(1, 3, 10), SH(2, 3, 11)};
    CHECK(vet_shards_check(input, paths, 3, &err) < 0);
    CHECK_CONTAINS(err.msg, "shards of different inputs");
    vet_shard huge[] = {SH(0, 1 << 30, 10), SH(1, 1 << 30, 10)};  // no table of 2^30 entries
    CHECK(vet_shards_check(huge, paths, 2, &err) < 0);
    CHECK_CONTAINS(err.msg, "shard 2/1073741824 is missing");
    vet_shard alone[] = {SH(0, 1, 10)};
    CHECK(vet_shards_check(alone, paths, 1, &err) == 0);
    CHECK(vet_shard_check_count(&alone[0], "a", 10, &err) == 0);
    CHECK(vet_shard_check_count(&alone[0], "a", 9, &err) < 0);
    CHECK_CONTAINS(err.msg, "a: shard 0/1 has 9 records, want 10");
    // Shards of two folds' test splits of one size: only the folds they carry tell them apart.
    vet_shard of_folds[] = {SH(0, 2, 80), SH(1, 2, 80)};
    of_folds[0].fold = (vet_fold){.i = 0, .k = 2, .seed = 1, .notes = 80, .input_notes = 160, .split = "test"};
    of_folds[1].fold = of_folds[0].fold;
    CHECK(vet_shards_check(of_folds, paths, 2, &err) == 0);
    of_folds[1].fold.i = 1;
    CHECK(vet_shards_check(of_folds, paths, 2, &err) < 0 && err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "b: shard 1/2 of the test split of fold 1/2, but a is a shard of the test split of fold 0/2");
    of_folds[1].fold = (vet_fold){0};
    CHECK(vet_shards_check(of_folds, paths, 2, &err) < 0);
    CHECK_CONTAINS(err.msg, "b: shard 1/2 of no fold, but a is a shard of the test split of fold 0/2");
    // Shards of two inputs of as many notes and no fold: their digests tell them apart. A set
    // where none has one (an older vet-generate) passes; one where only some do is refused.
    vet_shard of_inputs[] = {SH(0, 2, 80), SH(1, 2, 80)};
    CHECK(vet_shards_check(of_inputs, paths, 2, &err) == 0);
    strcpy(of_inputs[0].input_digest, "0123456789abcdef");
    CHECK(vet_shards_check(of_inputs, paths, 2, &err) < 0 && err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "a: shard 0/2 names its input's digest (0123456789abcdef), but b (shard 1/2) names none");
    strcpy(of_inputs[1].input_digest, "0123456789abcdef");
    CHECK(vet_shards_check(of_inputs, paths, 2, &err) == 0);
    of_inputs[1].input_digest[15] = '0';
    CHECK(vet_shards_check(of_inputs, paths, 2, &err) < 0 && err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "b: shard 1/2 of an input whose digest is 0123456789abcde0, but a is a shard of one whose "
                   "digest is 0123456789abcdef: shards of different inputs of 80 notes each");
    of_inputs[1].input_digest[0] = 0;
    CHECK(vet_shards_check(of_inputs, paths, 2, &err) < 0);
    CHECK_CONTAINS(err.msg, "a: shard 0/2 names its input's digest");
}

static int build(vet_report *r, const char *const *paths, int n) {
    vet_eval_opts o = vet_eval_defaults();
    o.bootstrap = 300;
    o.predictions = paths[0];
    if (n > 1) o.shards = paths, o.n_shards = n;
    vet_err err;
    int rc = vet_report_build(&o, r, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    return rc;
}

static void merged_equals_unsharded(void) {
    const char *all[] = {write_shard("all.pred", 0, 0, 47)};
    const char *set[] = {write_shard("s2.pred", 2, 3, 47), write_shard("s0.pred", 0, 3, 47),
                         write_shard("s1.pred", 1, 3, 47)};
    vet_report a, b;
    CHECK(build(&a, all, 1) == 0);
    CHECK(build(&b, set, 3) == 0);
    CHECK(a.m.n == 47 && b.m.n == 47 && a.m.correct == b.m.correct);
    CHECK(a.acc_ci[0] == b.acc_ci[0] && a.acc_ci[1] == b.acc_ci[1]);
    CHECK(a.f1_ci[0] == b.f1_ci[0] && a.f1_ci[1] == b.f1_ci[1]);
    CHECK_CONTAINS(b.input, "s2.pred and 2 more shards");
    CHECK_STR(b.format, "stream");
    vet_report_free(&a);
    vet_report_free(&b);
    // The same notes in shard order (not the input's) resample other notes: what the merge undoes.
    const char *cat = tmp_path("cat.pred");
    vet_err err;
    vet_writer *w = vet_writer_open(cat, "predictions", "test_shards", &err);
    vet_writer_header_begin(w, 0);
    vet_writer_header_end(w, &err);
    for (int k = 0; k < 3; k++)
        for (int g = k; g < 47; g += 3) pack_note(vet_writer_packer(w), g), vet_writer_record_end(w, &err);
    CHECK(vet_writer_close(w, &err) == 0);
    const char *cats[] = {cat};
    CHECK(build(&a, all, 1) == 0 && build(&b, cats, 1) == 0);
    CHECK(a.acc_ci[0] != b.acc_ci[0] || a.acc_ci[1] != b.acc_ci[1] || a.f1_ci[0] != b.f1_ci[0]);
    vet_report_free(&a);
    vet_report_free(&b);
}

static void refused_sets(void) {
    const char *s0 = write_shard("r0.pred", 0, 2, 5), *s1 = write_shard("r1.pred", 1, 2, 5);
    const char *plain = write_shard("plain.pred", 0, 0, 5);
    vet_report r;
    vet_eval_opts o = vet_eval_defaults();
    vet_err err;
    o.predictions = s1;  // one shard of two, alone
    CHECK(vet_report_build(&o, &r, &err) < 0 && err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "r1.pred: shard 0/2 is missing");
    vet_report_free(&r);
    const char *mix[] = {s0, plain};
    o.shards = mix, o.n_shards = 2;
    CHECK(vet_report_build(&o, &r, &err) < 0 && err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "plain.pred: not a shard");
    vet_report_free(&r);
    const char *with_stdin[] = {s0, "-"};
    o.shards = with_stdin;
    CHECK(vet_report_build(&o, &r, &err) < 0 && err.kind == VET_E_USAGE);
    vet_report_free(&r);
    const char *ok[] = {s1, s0};
    o.shards = ok;
    CHECK(vet_report_build(&o, &r, &err) == 0 && r.m.n == 5);
    vet_report_free(&r);
}

int main(void) {
    if (eval_dir_make("shards")) return 1;
    RUN(sizes);
    RUN(set_checks);
    RUN(merged_equals_unsharded);
    RUN(refused_sets);
    if (eval_dir_remove()) return 1;
    CHECK_EXIT();
}
