// test_stream.c — the vet stream: round trips and every way a stream can be broken.
#include <stdint.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "check.h"
#include "io/mp.h"
#include "io/stream.h"

static char dir[256];

static const char *tmp(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

// Writes a tokens-like stream with n records.
static int write_stream(const char *path, int n) {
    vet_err err;
    vet_writer *w = vet_writer_open(path, "tokens", "test_stream", &err);
    if (!w) return -1;
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, 1);
    mp_kv_str(pk, "source", "unit test");
    if (vet_writer_header_end(w, &err) < 0) return -1;
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "note-%d", i);
        int32_t ids[3] = {1, i, 2};
        msgpack_pack_map(pk, 2);
        mp_kv_str(pk, "id", id);
        mp_kv_i32_array(pk, "prompt", ids, 3);
        if (vet_writer_record_end(w, &err) < 0) return -1;
    }
    return vet_writer_close(w, &err);
}

// Reads the whole stream; returns records read or -1 with err filled.
static long read_stream(const char *path, const char *kind, vet_err *err) {
    vet_reader *r = vet_reader_open(path, kind, err);
    if (!r) return -1;
    const msgpack_object *rec;
    int rc;
    long n = 0;
    while ((rc = vet_reader_next(r, &rec, err)) == 1) n++;
    vet_reader_close(r);
    return rc < 0 ? -1 : n;
}

static long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static void copy_prefix(const char *from, const char *to, long n) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    for (long i = 0; i < n; i++) fputc(fgetc(a), b);
    fclose(a);
    fclose(b);
}

// Compresses raw msgpack bytes into a file as one checksummed zstd frame.
static void write_raw(const char *path, const msgpack_sbuffer *sb) {
    size_t cap = ZSTD_compressBound(sb->size);
    void *z = malloc(cap);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    size_t n = ZSTD_compress2(c, z, cap, sb->data, sb->size);
    FILE *f = fopen(path, "wb");
    fwrite(z, 1, n, f);
    fclose(f);
    ZSTD_freeCCtx(c);
    free(z);
}

static void pack_header(msgpack_packer *pk, const char *kind) {
    msgpack_pack_map(pk, 2);
    mp_kv_int(pk, "vet", 1);
    mp_kv_str(pk, "kind", kind);
}

static void test_round_trip(void) {
    const char *p = tmp("rt.msgpack.zst");
    CHECK(write_stream(p, 1000) == 0);
    vet_err err;
    vet_reader *r = vet_reader_open(p, "tokens", &err);
    CHECK(r != NULL);
    if (!r) return;
    CHECK(mp_str_eq(mp_get(vet_reader_header(r), "program"), "test_stream"));
    CHECK(mp_str_eq(mp_get(vet_reader_header(r), "source"), "unit test"));
    const msgpack_object *rec;
    int i = 0, rc;
    while ((rc = vet_reader_next(r, &rec, &err)) == 1) {
        char want[32];
        snprintf(want, sizeof want, "note-%d", i);
        CHECK(mp_str_eq(mp_get(rec, "id"), want));
        int32_t *ids;
        size_t n;
        CHECK(mp_get_i32_array(rec, "prompt", &ids, &n, &err) == 0);
        CHECK(n == 3 && ids[1] == i);
        free(ids);
        i++;
    }
    CHECK(rc == 0);
    CHECK(i == 1000);
    CHECK(vet_reader_records(r) == 1000);
    CHECK(vet_reader_next(r, &rec, &err) == 0);  // stays at the end
    vet_reader_close(r);
}

static void test_empty_stream(void) {
    const char *p = tmp("empty.msgpack.zst");
    CHECK(write_stream(p, 0) == 0);
    vet_err err;
    CHECK(read_stream(p, "tokens", &err) == 0);
}

// Every cut of a valid stream must be reported as an error, never as a shorter stream.
static void test_truncated_everywhere(void) {
    const char *p = tmp("full.msgpack.zst"), *q = tmp("cut.msgpack.zst");
    CHECK(write_stream(p, 50) == 0);
    long size = file_size(p);
    CHECK(size > 20);
    int silent = 0;
    for (long n = 0; n < size; n++) {
        copy_prefix(p, q, n);
        vet_err err;
        if (read_stream(q, "tokens", &err) >= 0) silent++;
    }
    CHECK(silent == 0);
    copy_prefix(p, q, size - 3);
    vet_err err;
    CHECK(read_stream(q, "tokens", &err) < 0);
    CHECK_CONTAINS(err.msg, "truncated stream");
    CHECK_CONTAINS(err.msg, "cut.msgpack.zst");
}

static void test_corrupt_frame(void) {
    const char *p = tmp("corrupt.msgpack.zst");
    CHECK(write_stream(p, 200) == 0);
    long size = file_size(p);
    FILE *f = fopen(p, "r+b");
    fseek(f, size / 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, size / 2, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
    vet_err err;
    CHECK(read_stream(p, "tokens", &err) < 0);
    CHECK_CONTAINS(err.msg, "corrupt");
}

static void test_not_zstd(void) {
    const char *p = tmp("plain.csv");
    FILE *f = fopen(p, "w");
    fputs("id,species,note\n1,Cow,fever\n", f);
    fclose(f);
    vet_err err;
    CHECK(vet_reader_open(p, "tokens", &err) == NULL);
    CHECK_CONTAINS(err.msg, "not a vet stream");
    CHECK_CONTAINS(err.msg, "plain.csv");
    f = fopen(p, "w");
    fclose(f);
    CHECK(vet_reader_open(p, "tokens", &err) == NULL);
    CHECK_CONTAINS(err.msg, "empty input");
    CHECK(vet_reader_open(tmp("does-not-exist"), NULL, &err) == NULL);
    CHECK_CONTAINS(err.msg, "cannot open");
}

static void test_wrong_kind(void) {
    const char *p = tmp("kind.msgpack.zst");
    CHECK(write_stream(p, 3) == 0);
    vet_err err;
    CHECK(vet_reader_open(p, "packed", &err) == NULL);
    CHECK_CONTAINS(err.msg, "kind 'tokens', expected 'packed'");
    vet_reader *r = vet_reader_open(p, NULL, &err);  // any kind
    CHECK(r && strcmp(vet_reader_kind(r), "tokens") == 0);
    vet_reader_close(r);
}

static void test_record_not_a_map(void) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_header(&pk, "tokens");
    msgpack_pack_map(&pk, 0);
    msgpack_pack_array(&pk, 2);  // record 2 is an array
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 2);
    const char *p = tmp("array.msgpack.zst");
    write_raw(p, &sb);
    vet_err err;
    CHECK(read_stream(p, "tokens", &err) < 0);
    CHECK_CONTAINS(err.msg, "record 2: not a map (msgpack array)");
    msgpack_sbuffer_destroy(&sb);
}

static void test_bad_trailers(void) {
    vet_err err;
    // No trailer at all (a complete zstd frame, so zstd itself does not notice).
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_header(&pk, "tokens");
    msgpack_pack_map(&pk, 0);
    msgpack_pack_map(&pk, 0);
    const char *p = tmp("notrailer.msgpack.zst");
    write_raw(p, &sb);
    CHECK(read_stream(p, "tokens", &err) < 0);
    CHECK_CONTAINS(err.msg, "no trailer after 2 records");
    // A trailer with the wrong count.
    msgpack_pack_map(&pk, 2);
    mp_kv_bool(&pk, "end", true);
    mp_kv_int(&pk, "records", 5);
    write_raw(p, &sb);
    CHECK(read_stream(p, "tokens", &err) < 0);
    CHECK_CONTAINS(err.msg, "trailer says 5 records, read 2");
    // A good trailer followed by more data.
    msgpack_sbuffer_clear(&sb);
    pack_header(&pk, "tokens");
    msgpack_pack_map(&pk, 2);
    mp_kv_bool(&pk, "end", true);
    mp_kv_int(&pk, "records", 0);
    pack_header(&pk, "tokens");
    write_raw(p, &sb);
    CHECK(read_stream(p, "tokens", &err) < 0);
    CHECK_CONTAINS(err.msg, "data after the trailer");
    // A header that is not a map, and one from a newer vet.
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_int(&pk, 7);
    write_raw(p, &sb);
    CHECK(read_stream(p, "tokens", &err) < 0);
    CHECK_CONTAINS(err.msg, "header: not a map");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    mp_kv_int(&pk, "vet", 99);
    mp_kv_str(&pk, "kind", "tokens");
    write_raw(p, &sb);
    CHECK(read_stream(p, "tokens", &err) < 0);
    CHECK_CONTAINS(err.msg, "stream version 99");
    msgpack_sbuffer_destroy(&sb);
}

static void test_atomic_write(void) {
    const char *p = tmp("atomic.msgpack.zst");
    vet_err err;
    vet_writer *w = vet_writer_open(p, "tokens", "t", &err);
    CHECK(w != NULL);
    vet_writer_header_begin(w, 0);
    CHECK(vet_writer_header_end(w, &err) == 0);
    CHECK(file_size(p) < 0);  // not visible under its name before close
    vet_writer_abort(w);
    CHECK(file_size(p) < 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp >/dev/null", dir);
    CHECK(system(cmd) != 0);  // and the temporary file is gone
    CHECK(vet_writer_open(tmp("no/such/dir/x"), "tokens", "t", &err) == NULL);
    CHECK_CONTAINS(err.msg, "cannot create");
}

// Writing into a pipe or device goes straight in: no temporary renamed over it (as root that
// would replace /dev/null with a plain file).
static void test_write_into_fifo(void) {
    const char *p = tmp("fifo");
    CHECK(mkfifo(p, 0600) == 0);
    pid_t child = fork();
    if (child == 0) {  // the reader: drain the pipe
        FILE *f = fopen(p, "rb");
        char buf[4096];
        while (f && fread(buf, 1, sizeof buf, f) > 0) {}
        _exit(0);
    }
    CHECK(write_stream(p, 20) == 0);
    int status;
    kill(child, SIGKILL);  // done either way (and never left blocked on open)
    waitpid(child, &status, 0);
    struct stat st;
    CHECK(stat(p, &st) == 0 && S_ISFIFO(st.st_mode));
}

static void test_mp_accessors(void) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    mp_kv_str(&pk, "s", "hello");
    mp_kv_int(&pk, "i", -42);
    mp_kv_double(&pk, "d", 0.5);
    char *codes[2] = {"1679004", "3974005"};
    mp_kv_str_array(&pk, "codes", codes, 2);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    CHECK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
    vet_err err;
    int64_t i;
    double d;
    CHECK(mp_get_int(&u.data, "i", &i, &err) == 0 && i == -42);
    CHECK(mp_get_double(&u.data, "d", &d, &err) == 0 && d == 0.5);
    char *s = mp_get_strdup(&u.data, "s", &err);
    CHECK_STR(s, "hello");
    free(s);
    char **v;
    size_t n;
    CHECK(mp_get_str_array(&u.data, "codes", &v, &n, &err) == 0 && n == 2);
    CHECK_STR(v[1], "3974005");
    mp_free_strs(v, n);
    CHECK(mp_get_int(&u.data, "s", &i, &err) < 0);
    CHECK_CONTAINS(err.msg, "\"s\" is not an integer");
    CHECK(mp_get_int(&u.data, "nope", &i, &err) < 0);
    CHECK_CONTAINS(err.msg, "missing field \"nope\"");
    FILE *f = tmpfile();
    mp_print_json(f, &u.data);
    rewind(f);
    char line[256] = {0};
    CHECK(fgets(line, sizeof line, f) != NULL);
    CHECK_STR(line, "{\"s\":\"hello\",\"i\":-42,\"d\":0.5,\"codes\":[\"1679004\",\"3974005\"]}");
    fclose(f);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

// JSON out of any string: bytes that are not UTF-8 become U+FFFD (one per maximal ill-formed
// subpart, as Python's errors="replace"), well-formed multi-byte characters pass through,
// control characters are escaped.
static void test_json_escapes_invalid_utf8(void) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const char s[] = "a\xff\xc3\xa9\xe2\x82\x01\x80\x02" "b";  // bad, é, a cut 3-byte form, bad, ctrl
    msgpack_pack_str(&pk, sizeof s - 1);
    msgpack_pack_str_body(&pk, s, sizeof s - 1);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    CHECK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
    FILE *f = tmpfile();
    mp_print_json(f, &u.data);
    rewind(f);
    char line[256] = {0};
    CHECK(fgets(line, sizeof line, f) != NULL);
    CHECK_STR(line, "\"a\\ufffd\xc3\xa9\\ufffd\\u0001\\ufffd\\u0002b\"");
    fclose(f);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/vet-test-stream.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    RUN(test_round_trip);
    RUN(test_empty_stream);
    RUN(test_truncated_everywhere);
    RUN(test_corrupt_frame);
    RUN(test_not_zstd);
    RUN(test_wrong_kind);
    RUN(test_record_not_a_map);
    RUN(test_bad_trailers);
    RUN(test_atomic_write);
    RUN(test_write_into_fifo);
    RUN(test_mp_accessors);
    RUN(test_json_escapes_invalid_utf8);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    CHECK_EXIT();
}
