// test_train_guards.c — what vet-train checks before it trains (issue 22): one run per output
// directory (train/out_lock.h), packed rows against the model and their content hash
// (train/packed_set.h), a checkpoint's state refused field by field (io/checkpoint.h), and
// --grad-checkpoint's values (train/grad_ckpt.h).
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "io/checkpoint.h"
#include "io/mp.h"
#include "io/stream.h"
#include "train/grad_ckpt.h"
#include "train/out_lock.h"
#include "train/packed_set.h"
#include "train/trainer.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
}

static long read_pid(const char *path) {
    FILE *f = fopen(path, "r");
    long pid = -1;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1) pid = -1;
        fclose(f);
    }
    return pid;
}

// ---------------------------------------------------------------------------------------
// The output directory's lock

static void lock_taken_refused_released(void) {
    const char *dir = tmp_path("out-a");
    mkdir(dir, 0755);
    char lock[600];
    snprintf(lock, sizeof lock, "%s/%s", dir, VET_OUT_LOCK_NAME);
    vet_out_lock lk;
    vet_err err = {0};
    CHECK(vet_out_lock_take(&lk, dir, &err) == 0);
    CHECK(read_pid(lock) == (long)getpid());
    vet_out_lock_release(&lk);
    CHECK(access(lock, F_OK) != 0);
    // A live holder (pid 1 always exists): refused, naming it; the lock stays its.
    write_text(lock, "1\n");
    CHECK(vet_out_lock_take(&lk, dir, &err) < 0);
    CHECK(err.kind == VET_E_USAGE);
    CHECK_CONTAINS(err.msg, "another vet-train (pid 1)");
    CHECK(read_pid(lock) == 1);
    vet_out_lock_release(&lk);  // not ours: left alone
    CHECK(read_pid(lock) == 1);
}

static void stale_lock_taken_over(void) {
    const char *dir = tmp_path("out-b");
    mkdir(dir, 0755);
    char lock[600], text[32];
    snprintf(lock, sizeof lock, "%s/%s", dir, VET_OUT_LOCK_NAME);
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);  // its pid names no process now
    snprintf(text, sizeof text, "%ld\n", (long)child);
    write_text(lock, text);
    vet_out_lock lk;
    vet_err err = {0};
    CHECK(vet_out_lock_take(&lk, dir, &err) == 0);
    CHECK(read_pid(lock) == (long)getpid());
    vet_out_lock_release(&lk);
    write_text(lock, "not a pid");  // a file no vet wrote: no live holder either
    CHECK(vet_out_lock_take(&lk, dir, &err) == 0);
    CHECK(read_pid(lock) == (long)getpid());
    vet_out_lock_release(&lk);
}

// ---------------------------------------------------------------------------------------
// Packed rows

// A packed stream of n rows; row i has len[i] tokens (ids i+1...), one sample unless split > 0
// (then a second sample starts at split). vocab < 0: no vocab_size in the header.
static const char *packed(const char *name, int n, const int *len, int split, int vocab, int bad_token) {
    const char *path = tmp_path(name);
    vet_err err;
    vet_writer *w = vet_writer_open(path, "packed", "test", &err);
    if (!w) { fprintf(stderr, "%s\n", err.msg); exit(1); }
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, 1);
    mp_key(pk, "tokenizer");
    msgpack_pack_map(pk, vocab == 0 ? 1 : 2);
    mp_kv_str(pk, "sha256", "abc");
    if (vocab != 0) mp_kv_int(pk, "vocab_size", vocab);
    if (vet_writer_header_end(w, &err)) exit(1);
    for (int r = 0; r < n; r++) {
        int32_t tok[64], tgt[64], starts[2] = {0, split};
        for (int i = 0; i < len[r]; i++) tok[i] = (r + i) % 50 + 1, tgt[i] = i + 1 < len[r] ? tok[i] : -1;
        if (r == 1 && bad_token) tok[2] = bad_token;
        msgpack_pack_map(pk, 3);
        mp_kv_i32_array(pk, "tokens", tok, (size_t)len[r]);
        mp_kv_i32_array(pk, "targets", tgt, (size_t)len[r]);
        mp_kv_i32_array(pk, "starts", starts, split > 0 ? 2 : 1);
        if (vet_writer_record_end(w, &err)) exit(1);
    }
    if (vet_writer_close(w, &err)) { fprintf(stderr, "%s\n", err.msg); exit(1); }
    return path;
}

static void packed_rows_checked_against_model(void) {
    int len[3] = {10, 20, 30};
    vet_packed_set s, t;
    vet_err err = {0};
    CHECK(vet_packed_load(&s, packed("ok.zst", 3, len, 0, 512, 0), &err) == 0);
    CHECK(s.n_rows == 3 && s.n_tokens == 60);  // every row, not only the first
    CHECK(vet_packed_check_model(&s, 512, 64, &err) == 0);
    CHECK(vet_packed_check_model(&s, 25, 64, &err) < 0);  // row 3's ids go up to 32
    CHECK_CONTAINS(err.msg, "ok.zst: record 3: token 25 at position 22");
    CHECK(vet_packed_check_model(&s, 512, 25, &err) < 0);
    CHECK_CONTAINS(err.msg, "record 3: sample 1 has 30 tokens");
    CHECK_CONTAINS(err.msg, "max_position_embeddings (25)");
    // Positions restart at each sample: a row of 30 tokens in two samples of 15 fits 15 positions.
    int len2[3] = {20, 20, 30};
    CHECK(vet_packed_load(&t, packed("split.zst", 3, len2, 15, 512, 0), &err) == 0);
    CHECK(vet_packed_check_model(&t, 512, 15, &err) == 0);
    CHECK(vet_packed_check_model(&t, 512, 14, &err) < 0);
    CHECK_CONTAINS(err.msg, "split.zst: record 1: sample 1 has 15 tokens");
    vet_packed_free(&t);
    // A second file's bad row is named by its own file and record.
    CHECK(vet_packed_load(&t, packed("bad.zst", 3, len, 0, 512, 9000), &err) == 0);
    CHECK(vet_packed_append(&s, &t, &err) == 0);
    CHECK(vet_packed_check_model(&s, 512, 64, &err) < 0);
    CHECK_CONTAINS(err.msg, "bad.zst: record 2: token 9000 at position 2");
    vet_packed_free(&s);
}

static void packed_content_hash_and_header(void) {
    int len[2] = {8, 9};
    vet_packed_set a, b;
    vet_err err = {0};
    CHECK(vet_packed_load(&a, packed("h1.zst", 2, len, 0, 512, 0), &err) == 0);
    CHECK(vet_packed_load(&b, packed("h2.zst", 2, len, 0, 512, 7), &err) == 0);  // one id differs
    CHECK(strlen(a.content_sha256) == 64 && strcmp(a.content_sha256, b.content_sha256) != 0);
    CHECK(a.n_tokens == b.n_tokens && a.n_rows == b.n_rows);  // what the old fingerprint saw
    vet_packed_free(&b);
    CHECK(vet_packed_load(&b, packed("h3.zst", 2, len, 0, 512, 0), &err) == 0);
    CHECK_STR(a.content_sha256, b.content_sha256);
    vet_packed_free(&a);
    vet_packed_free(&b);
    CHECK(vet_packed_load(&a, packed("v-1.zst", 2, len, 0, -1, 0), &err) < 0);
    CHECK_CONTAINS(err.msg, "vocab_size -1 is not a vocabulary size");
    CHECK(vet_packed_load(&a, packed("v0.zst", 2, len, 0, 0, 0), &err) == 0);  // absent: fine
    CHECK(a.vocab_size == 0);
    vet_packed_free(&a);
}

// ---------------------------------------------------------------------------------------
// Checkpoint state

static const char *saved_ckpt(const char *name, float v0) {
    const char *root = tmp_path(name);
    float p[4] = {1, 2, 3, 4}, m[4] = {0}, v[4] = {v0, 0, 0, 0};
    vet_train_state st = {.step = 4, .best_val = 1.5, .best_step = 2, .tokens_seen = 100};
    memset(st.fingerprint, 'a', 64);
    memset(st.base_id, 'b', 64);
    memset(st.data_id, 'c', 64);
    vet_err err;
    if (vet_ckpt_save(root, &st, p, m, v, NULL, 4, &err)) { fprintf(stderr, "%s\n", err.msg); exit(1); }
    static char dir[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(dir[k], sizeof dir[k], "%s/step-00000004", root);
    return dir[k];
}

// Rewrites one key of dir's state.json (val NULL deletes it) and loads; returns the message.
static const char *load_edited(const char *dir, const char *key, json_t *val) {
    char path[700];
    snprintf(path, sizeof path, "%s/state.json", dir);
    json_t *o = json_load_file(path, 0, NULL);
    if (val) json_object_set_new(o, key, val);
    else json_object_del(o, key);
    json_dump_file(o, path, 0);
    json_decref(o);
    static vet_err err;
    memset(&err, 0, sizeof err);
    vet_train_state st;
    float p[4], m[4], v[4];
    int has_best;
    if (vet_ckpt_load(dir, &st, p, m, v, NULL, &has_best, 4, &err) == 0) err.msg[0] = 0;
    return err.msg;
}

static void checkpoint_state_refused_by_field(void) {
    const char *dir = saved_ckpt("ck", 0);
    vet_train_state st;
    float p[4], m[4], v[4];
    int has_best;
    vet_err err = {0};
    CHECK(vet_ckpt_load(dir, &st, p, m, v, NULL, &has_best, 4, &err) == 0);
    CHECK(st.step == 4 && st.best_step == 2 && st.best_val == 1.5 && st.base_id[0] == 'b' && st.data_id[0] == 'c');
    CHECK_CONTAINS(load_edited(saved_ckpt("ck1", 0), "step", json_integer(-3)), "\"step\" must be an integer from 0");
    CHECK_CONTAINS(load_edited(saved_ckpt("ck2", 0), "step", json_real(2.5)), "\"step\" must be an integer");
    CHECK_CONTAINS(load_edited(saved_ckpt("ck3", 0), "step", NULL), "\"step\" is missing");
    CHECK_CONTAINS(load_edited(saved_ckpt("ck4", 0), "best_step", json_integer(5)), "\"best_step\"");
    CHECK_CONTAINS(load_edited(saved_ckpt("ck5", 0), "tokens_seen", json_real(-1)), "\"tokens_seen\"");
    CHECK_CONTAINS(load_edited(saved_ckpt("ck6", 0), "base", NULL), "older vet");
    CHECK_CONTAINS(load_edited(saved_ckpt("ck7", 0), "data", json_string("xyz")), "\"data\" must be 64 hex digits");
    CHECK_CONTAINS(load_edited(saved_ckpt("ck8", 0), "bad_evals", json_integer(-1)), "\"bad_evals\"");
    CHECK_CONTAINS(load_edited(saved_ckpt("ck9", 0), "best_val", json_string("low")), "\"best_val\"");
    CHECK_STR(load_edited(saved_ckpt("ck10", 0), "best_val", json_null()), "");  // no evaluation yet: fine
    CHECK_CONTAINS(load_edited(saved_ckpt("ck11", -1), "step", json_integer(4)), "adam_v holds -1");
    CHECK_CONTAINS(load_edited(saved_ckpt("ck12", NAN), "step", json_integer(4)), "'adam_v' holds NaN");
}

// --grad-checkpoint's values (train/grad_ckpt.h): every spelling, and the refusals.
static void grad_ckpt_values(void) {
    vet_err e;
    int mode = -9, layers = -9;
    CHECK(vet_grad_ckpt_parse(NULL, &mode, &layers, &e) == 0 && mode == 1 && layers == 0);
    CHECK(vet_grad_ckpt_parse("keep-attention", &mode, &layers, &e) == 0 && mode == 2 && layers == 0);
    CHECK(vet_grad_ckpt_parse("12", &mode, &layers, &e) == 0 && mode == 1 && layers == 12);
    CHECK(vet_grad_ckpt_parse("auto", &mode, &layers, &e) == 0 && mode == 1 && layers == VET_CKPT_LAYERS_AUTO);
    CHECK(vet_grad_ckpt_parse("keep-attention,auto", &mode, &layers, &e) == 0 && mode == 2 &&
          layers == VET_CKPT_LAYERS_AUTO);
    CHECK(vet_grad_ckpt_parse("3,keep-attention", &mode, &layers, &e) == 0 && mode == 2 && layers == 3);
    CHECK(vet_grad_ckpt_parse("0", &mode, &layers, &e) == 0 && mode == 0 && layers == 0);  // none
    const char *bad[] = {"", "attention", "-1", "1,", ",1", "1,,auto", "2,3", "auto,4", "keep-attention,keep-attention",
                         "0,keep-attention", "99999999999", "auto ", "AUTO"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(vet_grad_ckpt_parse(bad[i], &mode, &layers, &e) == -1);
        CHECK(e.kind == VET_E_USAGE);
        CHECK_CONTAINS(e.msg, "--grad-checkpoint=");
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/vet-guards.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(grad_ckpt_values);
    RUN(lock_taken_refused_released);
    RUN(stale_lock_taken_over);
    RUN(packed_rows_checked_against_model);
    RUN(packed_content_hash_and_header);
    RUN(checkpoint_state_refused_by_field);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) return 1;
    CHECK_EXIT();
}
