// test_packer.c — the whole vet-pack job (lib/data/packer.h) on streams written here: the counts
// add up (records in = samples in rows + rejected + copies dropped), every sample lands once,
// no note straddles splits, copies stay out of val and test, nothing is written before the
// input is whole, a failed write leaves no output, and the option checks say what is wrong.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "data/packer.h"
#include "io/mp.h"
#include "io/stream.h"

static char tmp[64];

static void make_tmp(void) {
    snprintf(tmp, sizeof tmp, "/tmp/vet-test-packer.XXXXXX");
    if (!mkdtemp(tmp)) abort();
}

// Removes dir and the files (and empty folders) in it.
static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0) remove_tree(path);
    }
    closedir(d);
    rmdir(dir);
}

// Files in dir (0 when it does not exist).
static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

// A tokens stream of n originals (note i % 25, prompt 3 + i % 40 tokens, response 3) and, with
// copies, a copy "s<i>~Goat" of each; every 17th original is too long for a row of 48 tokens.
// bad_last: the last record lacks its response.
static void write_tokens(const char *path, int n, int copies, int bad_last) {
    vet_err err;
    vet_writer *w = vet_writer_open(path, "tokens", "test", &err);
    if (!w) abort();
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, 1);
    mp_key(pk, "tokenizer");
    msgpack_pack_map(pk, 2);
    mp_kv_str(pk, "sha256", "abc");
    mp_kv_int(pk, "vocab_size", 100);
    if (vet_writer_header_end(w, &err) != 0) abort();
    int32_t prompt[64], resp[3] = {7, 8, 2};
    char id[32], note[64], code[8];
    for (int c = 0; c <= copies; c++)
        for (int i = 0; i < n; i++) {
            int np = i % 17 == 0 ? 60 : 3 + i % 40, last = c == copies && i == n - 1;
            for (int t = 0; t < np; t++) prompt[t] = t == 0 ? 1 : 3 + (i + t) % 90;
            snprintf(id, sizeof id, c ? "s%d~Goat" : "s%d", i);
            snprintf(note, sizeof note, i % 2 ? "Note %d." : "  note   %d.", i % 25);
            snprintf(code, sizeof code, "c%d", i % 3);
            char *codes[1] = {code};
            msgpack_pack_map(pk, (c ? 7 : 6) - (last && bad_last));
            mp_kv_str(pk, "id", id);
            mp_kv_str(pk, "species", c ? "Goat" : "Cow");
            mp_kv_str_array(pk, "codes", codes, 1);
            mp_kv_str(pk, "note", note);
            mp_kv_i32_array(pk, "prompt", prompt, (size_t)np);
            if (!(last && bad_last)) mp_kv_i32_array(pk, "response", resp, 3);
            if (c) {
                snprintf(id, sizeof id, "s%d", i);
                mp_kv_str(pk, "copy_of", id);
            }
            if (vet_writer_record_end(w, &err) != 0) abort();
        }
    if (vet_writer_close(w, &err) != 0) abort();
}

// What a packed stream holds: its rows' sample ids (appended to ids, as "split:id"), checked
// against seq_len and the header's split name.
static int64_t read_packed(const char *path, const char *split, int32_t seq_len, char ***ids, size_t *n_ids) {
    vet_err err;
    vet_reader *r = vet_reader_open(path, "packed", &err);
    CHECK(r != NULL);
    if (!r) return -1;
    CHECK(mp_str_eq(mp_get(vet_reader_header(r), "split"), split));
    const msgpack_object *rec;
    int64_t rows = 0;
    while (vet_reader_next(r, &rec, &err) == 1) {
        char **row_ids;
        size_t k;
        int32_t *tok;
        size_t n_tok;
        CHECK(mp_get_str_array(rec, "ids", &row_ids, &k, &err) == 0);
        CHECK(mp_get_i32_array(rec, "tokens", &tok, &n_tok, &err) == 0);
        CHECK(n_tok <= (size_t)seq_len && k >= 1);
        for (size_t j = 0; j < k; j++) {
            *ids = realloc(*ids, (*n_ids + 1) * sizeof **ids);
            (*ids)[*n_ids] = malloc(strlen(split) + strlen(row_ids[j]) + 2);
            sprintf((*ids)[(*n_ids)++], "%s:%s", split, row_ids[j]);
        }
        mp_free_strs(row_ids, k);
        free(tok);
        rows++;
    }
    vet_reader_close(r);
    return rows;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// The job end to end, with copies and over-long samples: the result's counts, the files' rows
// and the leakage rules agree.
static void test_counts_add_up(void) {
    make_tmp();
    char in[128], out[128], paths[3][160];
    snprintf(in, sizeof in, "%s/in.tok", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    write_tokens(in, 200, 1, 0);
    vet_pack_opts o = vet_pack_defaults();
    o.input = in;
    o.out_dir = out;
    o.seq_len = 48;
    vet_pack_result res;
    vet_err err;
    CHECK(vet_pack_run(&o, &res, &err) == 0);
    CHECK(res.samples_in == 400 && res.copies.in == 200);
    CHECK(res.total.packed + res.total.rejected + res.copies.dropped == res.samples_in);
    CHECK(res.n_rejected == (size_t)res.total.rejected && res.total.rejected > 0);
    CHECK(res.groups.groups == 25 && res.groups.leaked_groups == 0);
    char **ids = NULL;
    size_t n_ids = 0;
    for (int k = 0; k < 3; k++) {
        snprintf(paths[k], sizeof paths[k], "%s/%s.msgpack.zst", out, vet_split_name(k));
        size_t before = n_ids;
        CHECK(read_packed(paths[k], vet_split_name(k), 48, &ids, &n_ids) == res.slot[k].rows);
        CHECK((int64_t)(n_ids - before) == res.slot[k].packed);
    }
    CHECK((int64_t)n_ids == res.total.packed);
    // Every id once; copies only in train, and only those of train originals; a note in one split.
    qsort(ids, n_ids, sizeof *ids, cmp_str);
    int note_split[25];
    memset(note_split, -1, sizeof note_split);
    for (size_t i = 0; i < n_ids; i++) {
        if (i > 0) CHECK(strcmp(ids[i], ids[i - 1]) != 0);
        int split = ids[i][0] == 't' && ids[i][1] == 'r' ? 0 : ids[i][0] == 'v' ? 1 : 2, num = -1;
        const char *id = strchr(ids[i], ':') + 1;
        sscanf(id, "s%d", &num);
        if (strchr(id, '~')) {
            CHECK(split == 0);
            char orig[48];
            snprintf(orig, sizeof orig, "train:s%d", num);
            CHECK(bsearch(&(const char *){orig}, ids, n_ids, sizeof *ids, cmp_str) != NULL || num % 17 == 0);
        } else {
            if (note_split[num % 25] >= 0) CHECK(note_split[num % 25] == split);
            note_split[num % 25] = split;
        }
    }
    for (size_t i = 0; i < n_ids; i++) free(ids[i]);
    free(ids);
    for (size_t i = 0; i < res.n_rejected; i++) {  // the over-long originals of every split, named
        int num = -1;
        sscanf(res.rejected_ids[i], "s%d", &num);
        CHECK(num % 17 == 0);
    }
    vet_pack_result_free(&res);
    remove_tree(tmp);
}

// The same input, options and seed give the same bytes; -o takes every sample, copies included.
static void test_deterministic_and_all(void) {
    make_tmp();
    char in[128], a[128], b[128], summary[128];
    snprintf(in, sizeof in, "%s/in.tok", tmp);
    snprintf(a, sizeof a, "%s/a.pack", tmp);
    snprintf(b, sizeof b, "%s/b.pack", tmp);
    snprintf(summary, sizeof summary, "%s/s.json", tmp);
    write_tokens(in, 120, 1, 0);
    vet_pack_opts o = vet_pack_defaults();
    o.input = in;
    o.out[VET_PACK_ALL] = a;
    o.seq_len = 64;
    o.summary_path = summary;
    vet_pack_result res;
    vet_err err;
    CHECK(vet_pack_run(&o, &res, &err) == 0);
    CHECK(res.used[VET_PACK_ALL] && !res.used[0] && res.copies.dropped == 0);
    CHECK(res.total.packed + res.total.rejected == 240);
    vet_pack_result_free(&res);
    o.out[VET_PACK_ALL] = b;
    CHECK(vet_pack_run(&o, &res, &err) == 0);
    vet_pack_result_free(&res);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb"), *fs = fopen(summary, "r");
    CHECK(fa && fb && fs);
    int same = 1, ca, cb;
    do {
        ca = fa ? fgetc(fa) : EOF;
        cb = fb ? fgetc(fb) : EOF;
        same &= ca == cb;
    } while (ca != EOF && cb != EOF);
    CHECK(same);
    char head[16] = "";
    CHECK(fs && fgets(head, sizeof head, fs) && strncmp(head, "{\"samples_in\":", 14) == 0);
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    if (fs) fclose(fs);
    remove_tree(tmp);
}

// A bad record at the very end: the run fails (bad input) and nothing is written.
static void test_nothing_written_before_input_whole(void) {
    make_tmp();
    char in[128], out[128];
    snprintf(in, sizeof in, "%s/in.tok", tmp);
    snprintf(out, sizeof out, "%s/out", tmp);
    write_tokens(in, 50, 0, 1);
    vet_pack_opts o = vet_pack_defaults();
    o.input = in;
    o.out_dir = out;
    vet_pack_result res;
    vet_err err = {0};
    CHECK(vet_pack_run(&o, &res, &err) == -1);
    CHECK(err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "in.tok: record 50: missing field \"response\"");
    CHECK(count_files(out) == 0);
    CHECK(res.rejected_ids == NULL && res.samples_in == 0);
    remove_tree(tmp);
}

// One output cannot be created: the others, complete by then, are removed too (an I/O error).
static void test_failed_write_leaves_nothing(void) {
    make_tmp();
    char in[128], tr[128], va[128], te[128];
    snprintf(in, sizeof in, "%s/in.tok", tmp);
    snprintf(tr, sizeof tr, "%s/train.pack", tmp);
    snprintf(va, sizeof va, "%s/val.pack", tmp);
    snprintf(te, sizeof te, "%s/no/such/dir/test.pack", tmp);
    write_tokens(in, 50, 0, 0);
    vet_pack_opts o = vet_pack_defaults();
    o.input = in;
    o.out[0] = tr, o.out[1] = va, o.out[2] = te;
    vet_pack_result res;
    vet_err err = {0};
    CHECK(vet_pack_run(&o, &res, &err) == -1);
    CHECK(err.kind == VET_E_IO);
    CHECK(count_files(tmp) == 1);  // in.tok alone: no stream, no temporary
    remove_tree(tmp);
}

// Options that do not fit together: usage errors, found before anything is read or made.
static void test_check(void) {
    vet_err err;
    vet_pack_opts o = vet_pack_defaults();
    CHECK(vet_pack_check(&o, &err) == -1 && err.kind == VET_E_USAGE);
    CHECK_STR(err.msg, "the train split has no output: name it with --train FILE or --out DIR");
    o.out[0] = "t";
    CHECK(vet_pack_check(&o, &err) == -1);
    CHECK_STR(err.msg, "the val split has no output: name it with --val FILE or --out DIR");
    o.share[1] = o.share[2] = 0;
    CHECK(vet_pack_check(&o, &err) == 0);
    o.out[VET_PACK_VAL_COPIES] = "vc";
    CHECK(vet_pack_check(&o, &err) == -1);
    CHECK_CONTAINS(err.msg, "--val-copies without a val split");
    o = vet_pack_defaults();
    o.out_dir = "d";
    o.out[0] = "-", o.out[1] = "-";
    CHECK(vet_pack_check(&o, &err) == -1);
    CHECK_STR(err.msg, "only one split can go to stdout");
    o.out[1] = NULL;
    o.summary_path = "-";
    CHECK(vet_pack_check(&o, &err) == -1);
    CHECK_CONTAINS(err.msg, "--summary - and a stream on stdout would mix");
    o = vet_pack_defaults();
    o.out[VET_PACK_ALL] = "a";
    CHECK(vet_pack_check(&o, &err) == 0);
    o.out_dir = "d";
    CHECK(vet_pack_check(&o, &err) == -1);
    CHECK_CONTAINS(err.msg, "-o/--output writes everything to one stream");
    o = vet_pack_defaults();
    o.split_in[1] = "v.tok";
    CHECK(vet_pack_check(&o, &err) == -1);
    CHECK_STR(err.msg, "the val split has no output: name it with --val FILE or --out DIR");
    o.out[0] = "t", o.out[1] = "v";
    CHECK(vet_pack_check(&o, &err) == -1);
    CHECK_STR(err.msg, "--train given without --train-in");
    o.out[0] = NULL;
    CHECK(vet_pack_check(&o, &err) == 0);
    o.input = "x.tok";
    CHECK(vet_pack_check(&o, &err) == -1);
    CHECK_CONTAINS(err.msg, "give either one TOKENS input or --train-in");
    // A usage error is found before the output directory is made.
    make_tmp();
    char dir[128];
    snprintf(dir, sizeof dir, "%s/d", tmp);
    o = vet_pack_defaults();
    o.out_dir = dir;
    o.out[0] = "-", o.out[1] = "-";
    vet_pack_result res;
    CHECK(vet_pack_run(&o, &res, &err) == -1 && err.kind == VET_E_USAGE);
    struct stat st;
    CHECK(stat(dir, &st) != 0);
    remove_tree(tmp);
}

// One record per call: id, prompt, response (vocab_size 100).
// bos: the header's tokenizer.bos_id, or NO_BOS_KEY to leave the key out.
#define NO_BOS_KEY (-2)
static void write_records(const char *path, int n, const char *const *id, const int32_t *const *prompt,
                          const size_t *np, const int32_t *const *resp, const size_t *nr, int bos) {
    vet_err err;
    vet_writer *w = vet_writer_open(path, "tokens", "test", &err);
    if (!w) abort();
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, 1);
    mp_key(pk, "tokenizer");
    msgpack_pack_map(pk, bos == NO_BOS_KEY ? 2 : 3);
    mp_kv_str(pk, "sha256", "abc");
    mp_kv_int(pk, "vocab_size", 100);
    if (bos != NO_BOS_KEY) mp_kv_int(pk, "bos_id", bos);
    if (vet_writer_header_end(w, &err) != 0) abort();
    for (int i = 0; i < n; i++) {
        msgpack_pack_map(pk, 6);
        mp_kv_str(pk, "id", id[i]);
        mp_kv_str(pk, "species", "Cow");
        mp_kv_str_array(pk, "codes", NULL, 0);
        mp_kv_str(pk, "note", "  A  Note ");
        mp_kv_i32_array(pk, "prompt", prompt[i], np[i]);
        mp_kv_i32_array(pk, "response", resp[i], nr[i]);
        if (vet_writer_record_end(w, &err) != 0) abort();
    }
    if (vet_writer_close(w, &err) != 0) abort();
}

// Reading: a sample that fits is kept whole; an over-long one is cut (left: BOS then the newest
// prompt tokens; right: the prompt's head) or rejected; a token outside the vocabulary stops
// the read, naming the file, the record and its id.
static void test_read_fits_and_checks(void) {
    make_tmp();
    char path[128];
    snprintf(path, sizeof path, "%s/in.tok", tmp);
    static const int32_t p0[] = {1, 5, 6}, p1[] = {1, 5, 6, 7, 8, 9, 10, 11}, r0[] = {20, 2}, r1[] = {20, 21, 2};
    const char *ids[] = {"fits", "long"};
    const int32_t *prompts[] = {p0, p1}, *resps[] = {r0, r1};
    size_t np[] = {3, 8}, nr[] = {2, 3};
    write_records(path, 2, ids, prompts, np, resps, nr, NO_BOS_KEY);
    const vet_trunc modes[] = {VET_TRUNC_NONE, VET_TRUNC_LEFT, VET_TRUNC_RIGHT};
    const int32_t want_long[][7] = {{0}, {1, 9, 10, 11, 20, 21, 2}, {1, 5, 6, 7, 20, 21, 2}};
    for (int m = 0; m < 3; m++) {
        vet_pack_fit_opts fit = {.seq_len = 7, .trunc = modes[m]};
        vet_pack_input in = {0};
        vet_pack_samples S = {0};
        vet_err err;
        CHECK(vet_pack_read(path, VET_SPLIT_VAL, &fit, &in, &S, &err) == 0);
        CHECK(S.n == 2 && strcmp(in.sha256, "abc") == 0 && in.template_.type == MSGPACK_OBJECT_NIL);
        CHECK(S.s[0].n == 5 && S.s[0].prompt_len == 3 && !S.s[0].truncated && !S.s[0].rejected);
        CHECK(S.s[0].split == VET_SPLIT_VAL && S.s[0].original == -1 && S.s[0].copy_of == NULL);
        CHECK_STR(S.s[0].key, "a note");
        CHECK(S.s[1].rejected == (modes[m] == VET_TRUNC_NONE));
        if (modes[m] != VET_TRUNC_NONE) {
            CHECK(S.s[1].truncated && S.s[1].n == 7 && S.s[1].prompt_len == 4);
            CHECK(S.s[1].tokens && memcmp(S.s[1].tokens, want_long[m], sizeof want_long[m]) == 0);
        }
        vet_pack_samples_free(&S);
        vet_pack_input_free(&in);
    }
    static const int32_t bad[] = {1, 100};
    const int32_t *bad_prompts[] = {p0, bad};
    write_records(path, 2, ids, bad_prompts, (size_t[]){3, 2}, resps, nr, NO_BOS_KEY);
    vet_pack_fit_opts fit = {.seq_len = 64};
    vet_pack_input in = {0};
    vet_pack_samples S = {0};
    vet_err err;
    CHECK(vet_pack_read(path, VET_SPLIT_TRAIN, &fit, &in, &S, &err) == -1);
    CHECK(err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "in.tok: record 2 (id long): token id 100 outside the vocabulary [0, 100)");
    vet_pack_samples_free(&S);
    vet_pack_input_free(&in);
    remove_tree(tmp);
}

// Cut on the left, a prompt keeps its first token only when the header says that it is the BOS:
// a tokenizer that adds none (SmolLM2, Qwen2: bos_id -1, or a bos_id the prompts do not start
// with) keeps the newest prompt tokens alone. Before, the template's first word ("Below") stayed
// glued to the note's tail.
static void test_read_left_cut_without_bos(void) {
    make_tmp();
    char path[128];
    snprintf(path, sizeof path, "%s/in.tok", tmp);
    static const int32_t p[] = {40, 5, 6, 7, 8, 9, 10, 11}, r[] = {20, 21, 2};
    const char *ids[] = {"long"};
    const int32_t *prompts[] = {p}, *resps[] = {r};
    static const int32_t want_plain[] = {8, 9, 10, 11, 20, 21, 2}, want_bos[] = {40, 9, 10, 11, 20, 21, 2};
    const int bos[] = {-1, 1, 40, NO_BOS_KEY};
    const int32_t *want[] = {want_plain, want_plain, want_bos, want_bos};
    for (int k = 0; k < 4; k++) {
        write_records(path, 1, ids, prompts, (size_t[]){8}, resps, (size_t[]){3}, bos[k]);
        vet_pack_fit_opts fit = {.seq_len = 7, .trunc = VET_TRUNC_LEFT};
        vet_pack_input in = {0};
        vet_pack_samples S = {0};
        vet_err err;
        CHECK(vet_pack_read(path, VET_SPLIT_TRAIN, &fit, &in, &S, &err) == 0);
        CHECK(S.n == 1 && S.s[0].truncated && S.s[0].n == 7 && S.s[0].prompt_len == 4);
        CHECK(S.s[0].tokens && memcmp(S.s[0].tokens, want[k], 7 * sizeof *want[k]) == 0);
        vet_pack_samples_free(&S);
        vet_pack_input_free(&in);
    }
    remove_tree(tmp);
}

int main(void) {
    RUN(test_read_fits_and_checks);
    RUN(test_read_left_cut_without_bos);
    RUN(test_counts_add_up);
    RUN(test_deterministic_and_all);
    RUN(test_nothing_written_before_input_whole);
    RUN(test_failed_write_leaves_nothing);
    RUN(test_check);
    CHECK_EXIT();
}
