// test_gguf.c — the GGUF reader (io/gguf.h): a file built byte by byte here is read back key by
// key and tensor by tensor; every prefix of it is refused (never a crash); and each way a hostile
// file can be wrong is refused with a message naming the part.
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "io/gguf.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

// A growing byte buffer: the file under construction.
typedef struct {
    uint8_t b[1 << 16];
    size_t n;
} bytes;

static void put(bytes *o, const void *p, size_t n) {
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void u32(bytes *o, uint32_t v) {
    for (int i = 0; i < 4; i++) o->b[o->n++] = (uint8_t)(v >> 8 * i);
}
static void u64(bytes *o, uint64_t v) {
    for (int i = 0; i < 8; i++) o->b[o->n++] = (uint8_t)(v >> 8 * i);
}
static void str(bytes *o, const char *s) {
    u64(o, strlen(s));
    put(o, s, strlen(s));
}
static void f32(bytes *o, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u32(o, u);
}
static void pad_to(bytes *o, size_t align) {
    while (o->n % align) o->b[o->n++] = 0;
}

static void save(const char *path, const bytes *o) {
    FILE *f = fopen(path, "wb");
    fwrite(o->b, 1, o->n, f);
    fclose(f);
}

// The file the tests read: 7 keys of several types, then two tensors (a 2x3 F32 matrix and a
// row of 32 Q8_0 values), data aligned to 32 bytes.
static void build_good(bytes *o) {
    o->n = 0;
    u32(o, VET_GGUF_MAGIC); u32(o, 3); u64(o, 2); u64(o, 7);
    str(o, "general.architecture"); u32(o, VET_GGUF_STRING); str(o, "llama");
    str(o, "llama.block_count"); u32(o, VET_GGUF_U32); u32(o, 30);
    str(o, "llama.rope.freq_base"); u32(o, VET_GGUF_F32); f32(o, 100000.0f);
    str(o, "tokenizer.ggml.add_bos_token"); u32(o, VET_GGUF_BOOL); o->b[o->n++] = 1;
    str(o, "tokenizer.ggml.tokens"); u32(o, VET_GGUF_ARRAY); u32(o, VET_GGUF_STRING); u64(o, 3);
    str(o, "<unk>"); str(o, ""); str(o, "\xc4\xa0the");
    str(o, "tokenizer.ggml.token_type"); u32(o, VET_GGUF_ARRAY); u32(o, VET_GGUF_I32); u64(o, 3);
    u32(o, 2); u32(o, 1); u32(o, (uint32_t)-1);
    str(o, "general.alignment"); u32(o, VET_GGUF_U32); u32(o, 32);
    str(o, "w"); u32(o, 2); u64(o, 3); u64(o, 2); u32(o, VET_GGML_F32); u64(o, 0);
    str(o, "q"); u32(o, 1); u64(o, 32); u32(o, VET_GGML_Q8_0); u64(o, 32);
    pad_to(o, 32);
    for (int i = 0; i < 6; i++) f32(o, (float)i + 0.5f);
    pad_to(o, 32);
    for (int i = 0; i < 34; i++) o->b[o->n++] = (uint8_t)i;
}

static void test_reads_keys_and_tensors(void) {
    bytes o;
    build_good(&o);
    save(tmp_path("good.gguf"), &o);
    vet_err err = {0};
    vet_gguf *g = vet_gguf_open(tmp_path("good.gguf"), &err);
    CHECK(g);
    if (!g) { fprintf(stderr, "%s\n", err.msg); return; }
    CHECK(vet_gguf_version(g) == 3 && vet_gguf_n_kv(g) == 7 && vet_gguf_n_tensors(g) == 2);
    char *arch = vet_gguf_get_str(g, "general.architecture", &err);
    CHECK_STR(arch, "llama");
    free(arch);
    uint32_t n = 0;
    CHECK(vet_gguf_get_u32(g, "llama.block_count", &n, &err) == 0 && n == 30);
    float th = 0;
    CHECK(vet_gguf_get_f32(g, "llama.rope.freq_base", &th, &err) == 0 && th == 100000.0f);
    int b = 0;
    CHECK(vet_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, &err) == 0 && b == 1);
    uint64_t cnt = 0, len = 0;
    CHECK(vet_gguf_get_array(g, "tokenizer.ggml.tokens", VET_GGUF_STRING, &cnt, &err) == 0 && cnt == 3);
    const vet_gguf_kv *kv = vet_gguf_find_kv(g, "tokenizer.ggml.tokens");
    const char *s = vet_gguf_array_str(g, kv, 2, &len);
    CHECK(s && len == 5 && memcmp(s, "\xc4\xa0the", 5) == 0);
    CHECK(vet_gguf_array_str(g, kv, 1, &len) && len == 0);
    CHECK(vet_gguf_array_str(g, kv, 3, &len) == NULL);
    kv = vet_gguf_find_kv(g, "tokenizer.ggml.token_type");
    CHECK(vet_gguf_array_int(kv, 0) == 2 && vet_gguf_array_int(kv, 2) == -1);
    const vet_gguf_tensor *w = vet_gguf_find_tensor(g, "w"), *q = vet_gguf_find_tensor(g, "q");
    CHECK(w && w->type == VET_GGML_F32 && w->n_dims == 2 && w->ne[0] == 3 && w->ne[1] == 2 && w->nbytes == 24);
    float w5 = 0;
    if (w) memcpy(&w5, w->data + 20, 4);
    CHECK(w5 == 5.5f);
    CHECK(q && q->nbytes == 34 && q->data[33] == 33);
    CHECK(vet_gguf_find_tensor(g, "absent") == NULL);
    vet_gguf_close(g);
}

static void test_getters_name_the_problem(void) {
    bytes o;
    build_good(&o);
    save(tmp_path("types.gguf"), &o);
    vet_err err = {0};
    vet_gguf *g = vet_gguf_open(tmp_path("types.gguf"), &err);
    if (!g) { CHECK(0); return; }
    uint32_t n;
    CHECK(vet_gguf_get_u32(g, "general.architecture", &n, &err) == -1);
    CHECK_CONTAINS(err.msg, "general.architecture is a string value, expected an integer");
    CHECK(vet_gguf_get_u32(g, "llama.context_length", &n, &err) == -1);
    CHECK_CONTAINS(err.msg, "no metadata key llama.context_length");
    uint64_t cnt;
    CHECK(vet_gguf_get_array(g, "tokenizer.ggml.token_type", VET_GGUF_STRING, &cnt, &err) == -1);
    CHECK_CONTAINS(err.msg, "is an array of i32, expected an array of strings");
    CHECK(vet_gguf_get_array(g, "tokenizer.ggml.token_type", VET_GGUF_I64, &cnt, &err) == 0 && cnt == 3);
    float f;
    CHECK(vet_gguf_get_f32(g, "llama.block_count", &f, &err) == -1);
    vet_gguf_close(g);
}

// Every proper prefix of a valid file is refused with a message (the reader must never read
// past what it has, whatever it is in the middle of).
static void test_every_truncation_refused(void) {
    bytes o;
    build_good(&o);
    static bytes cut;
    int refused = 0, total = 0;
    for (size_t n = 0; n < o.n; n++) {
        memcpy(cut.b, o.b, n);
        cut.n = n;
        save(tmp_path("cut.gguf"), &cut);
        vet_err err = {0};
        vet_gguf *g = vet_gguf_open(tmp_path("cut.gguf"), &err);
        total++;
        if (!g && err.msg[0] && err.kind == VET_E_INPUT) refused++;
        else if (g) fprintf(stderr, "prefix of %zu bytes was accepted\n", n);
        vet_gguf_close(g);
    }
    CHECK(refused == total);
}

// One hostile variant: the good file with n bytes at offset off replaced.
static void expect_refused(const char *name, size_t off, const void *p, size_t n, const char *needle) {
    bytes o;
    build_good(&o);
    memcpy(o.b + off, p, n);
    save(tmp_path(name), &o);
    vet_err err = {0};
    vet_gguf *g = vet_gguf_open(tmp_path(name), &err);
    CHECK(g == NULL);
    CHECK_CONTAINS(err.msg, needle);
    if (g) vet_gguf_close(g);
}

// Offset of the first occurrence of a byte string in the good file.
static size_t find(const char *s, size_t n) {
    bytes o;
    build_good(&o);
    for (size_t i = 0; i + n <= o.n; i++)
        if (memcmp(o.b + i, s, n) == 0) return i;
    return 0;
}

static void test_hostile_files(void) {
    expect_refused("magic.gguf", 0, "GGML", 4, "not a GGUF file");
    uint8_t v1[4] = {1, 0, 0, 0};
    expect_refused("version.gguf", 4, v1, 4, "GGUF version 1");
    uint8_t many[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    expect_refused("count.gguf", 16, many, 8, "metadata keys, more than");
    // The second key renamed to the first: a duplicate.
    size_t k2 = find("llama.block_count", 17);
    expect_refused("dup.gguf", k2 - 8, "\x14\0\0\0\0\0\0\0general.architecture", 28, "appears twice");
    // The block count's value type set to 99.
    uint8_t t99[4] = {99, 0, 0, 0};
    expect_refused("vtype.gguf", k2 + 17, t99, 4, "not a GGUF type");
    // A bool holding 2.
    size_t kb = find("add_bos_token", 13);
    uint8_t two = 2;
    expect_refused("bool.gguf", kb + 13 + 4, &two, 1, "a bool holding 2");
    // The token array's count made huge.
    size_t kt = find("tokenizer.ggml.tokens", 21);
    uint8_t huge[8] = {0, 0, 0, 0, 0, 0, 0, 0x10};
    expect_refused("arr.gguf", kt + 21 + 8, huge, 8, "cannot fit in the file");
    // Tensor w's type set to IQ2_XS, then to an unknown number; its offset set past the end; q's
    // offset made to overlap w; w's offset misaligned; a zero dimension; 5 dimensions.
    size_t tw = find("\x01\0\0\0\0\0\0\0w", 9) + 9;   // after the name "w"
    uint8_t iq[4] = {17, 0, 0, 0}, unk[4] = {200, 0, 0, 0};
    expect_refused("iq.gguf", tw + 4 + 16, iq, 4, "type IQ2_XS, which vet does not read");
    expect_refused("unk.gguf", tw + 4 + 16, unk, 4, "type 200");
    uint8_t far[8] = {0, 1, 0, 0, 0, 0, 0, 0};
    expect_refused("oob.gguf", tw + 4 + 16 + 4, far, 8, "beyond the end of the file");
    uint8_t mis[8] = {4, 0, 0, 0, 0, 0, 0, 0};
    expect_refused("align.gguf", tw + 4 + 16 + 4, mis, 8, "not a multiple of the alignment");
    uint8_t zero[8] = {0};
    expect_refused("zero.gguf", tw + 4, zero, 8, "a dimension of 0");
    uint8_t five[4] = {5, 0, 0, 0};
    expect_refused("dims.gguf", tw, five, 4, "5 dimensions");
    size_t tq = find("\x01\0\0\0\0\0\0\0q", 9) + 9;
    expect_refused("overlap.gguf", tq + 4 + 8 + 4, zero, 8, "overlap");
    // Q8_0 with a row of 31 elements: not whole blocks.
    uint8_t n31[8] = {31, 0, 0, 0, 0, 0, 0, 0};
    expect_refused("blocks.gguf", tq + 4, n31, 8, "not a whole number of Q8_0 blocks");
    // An alignment that is not a power of two.
    size_t ka = find("general.alignment", 17);
    uint8_t a24[4] = {24, 0, 0, 0};
    expect_refused("alignment.gguf", ka + 17 + 4, a24, 4, "general.alignment is 24");
}

static void test_not_a_file(void) {
    vet_err err = {0};
    CHECK(vet_gguf_open(tmp_path("missing.gguf"), &err) == NULL && err.kind == VET_E_IO);
    CHECK_CONTAINS(err.msg, "cannot open");
    CHECK(vet_gguf_open(tmpdir, &err) == NULL && err.kind == VET_E_IO);
    CHECK_CONTAINS(err.msg, "not a regular file");
}

static void test_type_sizes(void) {
    CHECK(vet_ggml_row_bytes(VET_GGML_Q4_K, 512) == 288);
    CHECK(vet_ggml_row_bytes(VET_GGML_Q6_K, 256) == 210);
    CHECK(vet_ggml_row_bytes(VET_GGML_Q4_1, 64) == 40);
    CHECK(vet_ggml_row_bytes(VET_GGML_BF16, 3) == 6);
    CHECK(vet_ggml_row_bytes(VET_GGML_Q8_0, 33) == 0);
    CHECK_STR(vet_ggml_type_get(12).name, "Q4_K");
    CHECK_STR(vet_ggml_type_get(99).name, "type 99");
    CHECK_STR(vet_gguf_type_name(VET_GGUF_STRING), "string");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/vet-gguf.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_reads_keys_and_tensors);
    RUN(test_getters_name_the_problem);
    RUN(test_every_truncation_refused);
    RUN(test_hostile_files);
    RUN(test_not_a_file);
    RUN(test_type_sizes);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    CHECK_EXIT();
}
