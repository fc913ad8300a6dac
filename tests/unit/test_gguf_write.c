// test_gguf_write.c — lib/io/gguf_write.h byte by byte on a small file (header, each kv's
// encoding, tensor infos, offsets, alignment padding, the data), its refusals (and that a failed
// write leaves no file), and lib/io/ggml_quant.h's F16 and Q8_0 rows against their definitions
// (hand-computed blocks, ties rounded away from zero as ggml does, the error bound, refusals).
// The same bytes read by gguf-py, transformers and llama.cpp: tests/reference/test_gguf_export.py.
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "base/half.h"
#include "base/rng.h"
#include "io/ggml_quant.h"
#include "io/gguf.h"
#include "io/gguf_write.h"

static char tmpdir[256];

static char *path_of(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

static uint8_t *slurp(const char *path, size_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*n ? *n : 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

// A little-endian reader over the file, for checking what was written.
typedef struct { const uint8_t *p; size_t off, n; } cur;
static uint64_t rd(cur *c, int bytes) {
    uint64_t v = 0;
    if (c->off + (size_t)bytes > c->n) { c->off = c->n + 1; return 0; }
    memcpy(&v, c->p + c->off, (size_t)bytes);
    c->off += (size_t)bytes;
    return v;
}
static int rd_str(cur *c, const char *want) {   // a GGUF string equal to want
    uint64_t n = rd(c, 8);
    int ok = n == strlen(want) && c->off + n <= c->n && memcmp(c->p + c->off, want, n) == 0;
    c->off += n;
    return ok;
}

static int fill_seq(void *ctx, uint8_t *dst, size_t nbytes, vet_err *err) {   // F32 1, 2, 3 ...
    (void)ctx, (void)err;
    for (size_t i = 0; i < nbytes / 4; i++) { float v = (float)(i + 1); memcpy(dst + 4 * i, &v, 4); }
    return 0;
}
static int fill_q8(void *ctx, uint8_t *dst, size_t nbytes, vet_err *err) {    // two Q8_0 blocks
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)(i - 32) / 8.0f;
    (void)ctx, (void)nbytes;
    return vet_ggml_q8_0_row(dst, x, 64) < 0 ? vet_errf(err, "encode") : 0;
}
static int fill_fail(void *ctx, uint8_t *dst, size_t nbytes, vet_err *err) {
    (void)ctx, (void)dst, (void)nbytes;
    return vet_err_kindf(err, VET_E_NONFINITE, "a weight is not finite");
}

static void small_file_by_hand(void) {
    vet_err err = {0};
    vet_gguf_writer *w = vet_gguf_writer_new(&err);
    CHECK(w != NULL);
    if (!w) return;
    const char *toks[] = {"<s>", "\xc4\xa0the", ""};
    float sc[2] = {-1.5f, 0.25f};
    CHECK(vet_gguf_set_str(w, "general.architecture", "llama", &err) == 0);
    CHECK(vet_gguf_set_u32(w, "general.alignment", 32, &err) == 0);
    CHECK(vet_gguf_set_str_array(w, "tokenizer.ggml.tokens", toks, 3, &err) == 0);
    CHECK(vet_gguf_set_array(w, "tokenizer.ggml.scores", VET_GGUF_F32, sc, 2, &err) == 0);
    CHECK(vet_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 1, &err) == 0);
    CHECK(vet_gguf_set_str(w, "general.architecture", "qwen2", &err) == 0);   // replaced in place
    CHECK(vet_gguf_writer_n_kv(w) == 5);
    CHECK(vet_gguf_add_tensor(w, "norm", VET_GGML_F32, 1, (int64_t[]){3}, fill_seq, NULL, &err) == 0);
    CHECK(vet_gguf_add_tensor(w, "w", VET_GGML_Q8_0, 2, (int64_t[]){32, 2}, fill_q8, NULL, &err) == 0);
    CHECK(vet_gguf_write(w, path_of("a.gguf"), &err) == 0);
    vet_gguf_writer_free(w);

    size_t n;
    uint8_t *b = slurp(path_of("a.gguf"), &n);
    CHECK(b != NULL);
    if (!b) return;
    cur c = {b, 0, n};
    CHECK(rd(&c, 4) == 0x46554747u && rd(&c, 4) == 3);        // "GGUF", version 3
    CHECK(rd(&c, 8) == 2 && rd(&c, 8) == 5);                  // tensors, kvs
    CHECK(rd_str(&c, "general.architecture") && rd(&c, 4) == VET_GGUF_STRING && rd_str(&c, "qwen2"));
    CHECK(rd_str(&c, "general.alignment") && rd(&c, 4) == VET_GGUF_U32 && rd(&c, 4) == 32);
    CHECK(rd_str(&c, "tokenizer.ggml.tokens") && rd(&c, 4) == VET_GGUF_ARRAY);
    CHECK(rd(&c, 4) == VET_GGUF_STRING && rd(&c, 8) == 3);
    CHECK(rd_str(&c, "<s>") && rd_str(&c, "\xc4\xa0the") && rd_str(&c, ""));
    CHECK(rd_str(&c, "tokenizer.ggml.scores") && rd(&c, 4) == VET_GGUF_ARRAY);
    CHECK(rd(&c, 4) == VET_GGUF_F32 && rd(&c, 8) == 2);
    uint32_t f0 = (uint32_t)rd(&c, 4), f1 = (uint32_t)rd(&c, 4);
    CHECK(vet_bits_f32(f0) == -1.5f && vet_bits_f32(f1) == 0.25f);
    CHECK(rd_str(&c, "tokenizer.ggml.add_bos_token") && rd(&c, 4) == VET_GGUF_BOOL && rd(&c, 1) == 1);
    // tensor infos: name, n_dims, ne..., type, offset (from the data section, aligned)
    CHECK(rd_str(&c, "norm") && rd(&c, 4) == 1 && rd(&c, 8) == 3 && rd(&c, 4) == VET_GGML_F32 && rd(&c, 8) == 0);
    CHECK(rd_str(&c, "w") && rd(&c, 4) == 2 && rd(&c, 8) == 32 && rd(&c, 8) == 2);
    CHECK(rd(&c, 4) == VET_GGML_Q8_0 && rd(&c, 8) == 32);    // 12 bytes of norm, padded to 32
    size_t head = c.off, data = (head + 31) / 32 * 32;
    CHECK(head % 32 != 0);                                    // so the padding is exercised
    for (size_t i = head; i < data && i < n; i++) CHECK(b[i] == 0);
    CHECK(n == data + 32 + 96);                               // 2 blocks = 68 bytes, padded to 96
    if (n == data + 128) {
        float v;
        memcpy(&v, b + data + 8, 4);
        CHECK(v == 3.0f);
        for (size_t i = data + 12; i < data + 32; i++) CHECK(b[i] == 0);
        // block 0: x = (i - 32) / 8 for i < 32: amax 4, d = 4/127; q[0] = round(-4 * 127/4) = -127
        uint16_t d;
        memcpy(&d, b + data + 32, 2);
        CHECK(d == vet_f32_to_f16(4.0f / 127.0f));
        CHECK((int8_t)b[data + 34] == -127 && (int8_t)b[data + 34 + 16] == -64);   // x = -2: -63.5 -> -64
        for (size_t i = data + 32 + 68; i < n; i++) CHECK(b[i] == 0);
    }
    free(b);
}

static void refusals(void) {
    vet_err err = {0};
    vet_gguf_writer *w = vet_gguf_writer_new(&err);
    int64_t ne[2] = {48, 2};
    CHECK(vet_gguf_add_tensor(w, "q", VET_GGML_Q8_0, 2, ne, fill_seq, NULL, &err) < 0);   // 48 % 32
    CHECK_CONTAINS(err.msg, "32-element blocks");
    CHECK(vet_gguf_add_tensor(w, "q", VET_GGML_Q4_K, 2, (int64_t[]){256, 1}, fill_seq, NULL, &err) < 0);
    CHECK_CONTAINS(err.msg, "not one vet writes");
    CHECK(vet_gguf_add_tensor(w, "q", VET_GGML_F32, 0, ne, fill_seq, NULL, &err) < 0);
    CHECK(vet_gguf_add_tensor(w, "q", VET_GGML_F32, 2, (int64_t[]){4, 0}, fill_seq, NULL, &err) < 0);
    char long_name[80];
    memset(long_name, 'x', 79), long_name[79] = 0;
    CHECK(vet_gguf_add_tensor(w, long_name, VET_GGML_F32, 1, ne, fill_seq, NULL, &err) < 0);
    CHECK(vet_gguf_set_u32(w, "", 1, &err) < 0);
    CHECK(vet_gguf_add_tensor(w, "a", VET_GGML_F32, 1, ne, fill_seq, NULL, &err) == 0);
    CHECK(vet_gguf_add_tensor(w, "a", VET_GGML_F16, 1, ne, fill_seq, NULL, &err) < 0);
    CHECK_CONTAINS(err.msg, "added twice");
    // a bad alignment is refused before anything is written
    CHECK(vet_gguf_set_u32(w, "general.alignment", 12, &err) == 0);
    CHECK(vet_gguf_write(w, path_of("bad.gguf"), &err) < 0 && err.kind == VET_E_USAGE);
    CHECK(access(path_of("bad.gguf"), F_OK) != 0);
    // a fill that fails: its error, prefixed with the file and tensor; no file, no temporary
    CHECK(vet_gguf_set_u32(w, "general.alignment", 64, &err) == 0);
    CHECK(vet_gguf_add_tensor(w, "b", VET_GGML_F32, 1, ne, fill_fail, NULL, &err) == 0);
    CHECK(vet_gguf_write(w, path_of("fail.gguf"), &err) < 0 && err.kind == VET_E_NONFINITE);
    CHECK_CONTAINS(err.msg, "fail.gguf: tensor b: a weight is not finite");
    CHECK(access(path_of("fail.gguf"), F_OK) != 0);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path_of("fail.gguf"), (int)getpid());
    CHECK(access(tmp, F_OK) != 0);
    // into a directory that does not exist: an I/O error
    CHECK(vet_gguf_write(w, path_of("no/such/dir.gguf"), &err) < 0 && err.kind == VET_E_IO);
    vet_gguf_writer_free(w);
}

static void alignment_64(void) {
    vet_err err = {0};
    vet_gguf_writer *w = vet_gguf_writer_new(&err);
    CHECK(vet_gguf_set_u32(w, "general.alignment", 64, &err) == 0);
    for (int i = 0; i < 3; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "t%d", i);
        CHECK(vet_gguf_add_tensor(w, nm, VET_GGML_F16, 1, (int64_t[]){5 + i}, fill_seq, NULL, &err) == 0);
    }
    CHECK(vet_gguf_write(w, path_of("a64.gguf"), &err) == 0);
    vet_gguf_writer_free(w);
    size_t n;
    uint8_t *b = slurp(path_of("a64.gguf"), &n);
    if (!b) { CHECK(b != NULL); return; }
    cur c = {b, 24, n};
    CHECK(rd_str(&c, "general.alignment") && rd(&c, 4) == VET_GGUF_U32 && rd(&c, 4) == 64);
    for (int i = 0; i < 3; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "t%d", i);
        CHECK(rd_str(&c, nm) && rd(&c, 4) == 1 && rd(&c, 8) == (uint64_t)(5 + i) && rd(&c, 4) == VET_GGML_F16);
        CHECK(rd(&c, 8) == (uint64_t)(64 * i));            // 10..14 bytes each, every one at 64 k
    }
    size_t data = (c.off + 63) / 64 * 64;
    CHECK(n == data + 3 * 64);
    free(b);
}

// Everything the writer can write, read back by io/gguf.h's reader.
static int fill_bf16(void *ctx, uint8_t *dst, size_t nbytes, vet_err *err) {
    (void)ctx, (void)err;
    for (size_t i = 0; i < nbytes / 2; i++) { uint16_t h = vet_f32_to_bf16((float)i * 0.5f); memcpy(dst + 2 * i, &h, 2); }
    return 0;
}

static void round_trip_through_reader(void) {
    vet_err err = {0};
    vet_gguf_writer *w = vet_gguf_writer_new(&err);
    int32_t ia[3] = {-1, 0, 7};
    const char *sa[2] = {"a b", "\xc4\xa0x"};
    CHECK(vet_gguf_set_u32(w, "k.u32", 4000000000u, &err) == 0);
    CHECK(vet_gguf_set_i32(w, "k.i32", -5, &err) == 0);
    CHECK(vet_gguf_set_u64(w, "k.u64", 1ull << 40, &err) == 0);
    CHECK(vet_gguf_set_f32(w, "k.f32", 1e-5f, &err) == 0);
    CHECK(vet_gguf_set_bool(w, "k.bool", 1, &err) == 0);
    CHECK(vet_gguf_set_str(w, "k.str", "llama", &err) == 0);
    CHECK(vet_gguf_set_array(w, "k.ia", VET_GGUF_I32, ia, 3, &err) == 0);
    CHECK(vet_gguf_set_str_array(w, "k.sa", sa, 2, &err) == 0);
    CHECK(vet_gguf_set_array(w, "k.empty", VET_GGUF_F32, NULL, 0, &err) == 0);
    CHECK(vet_gguf_add_tensor(w, "t.f32", VET_GGML_F32, 2, (int64_t[]){3, 2}, fill_seq, NULL, &err) == 0);
    CHECK(vet_gguf_add_tensor(w, "t.q8", VET_GGML_Q8_0, 1, (int64_t[]){64}, fill_q8, NULL, &err) == 0);
    CHECK(vet_gguf_add_tensor(w, "t.bf16", VET_GGML_BF16, 3, (int64_t[]){2, 3, 4}, fill_bf16, NULL, &err) == 0);
    CHECK(vet_gguf_write(w, path_of("rt.gguf"), &err) == 0);
    vet_gguf_writer_free(w);
    vet_gguf *g = vet_gguf_open(path_of("rt.gguf"), &err);
    CHECK(g != NULL);
    if (!g) { fprintf(stderr, "%s\n", err.msg); return; }
    CHECK(vet_gguf_version(g) == 3 && vet_gguf_alignment(g) == 32 && vet_gguf_n_kv(g) == 9 && vet_gguf_n_tensors(g) == 3);
    uint32_t u;
    int64_t i64;
    float f;
    int b;
    CHECK(vet_gguf_get_u32(g, "k.u32", &u, &err) == 0 && u == 4000000000u);
    CHECK(vet_gguf_get_i64(g, "k.i32", &i64, &err) == 0 && i64 == -5);
    CHECK(vet_gguf_get_i64(g, "k.u64", &i64, &err) == 0 && i64 == 1ll << 40);
    CHECK(vet_gguf_get_f32(g, "k.f32", &f, &err) == 0 && f == 1e-5f);
    CHECK(vet_gguf_get_bool(g, "k.bool", &b, &err) == 0 && b == 1);
    char *str = vet_gguf_get_str(g, "k.str", &err);
    CHECK_STR(str, "llama");
    free(str);
    uint64_t n;
    CHECK(vet_gguf_get_array(g, "k.ia", VET_GGUF_I64, &n, &err) == 0 && n == 3);
    const vet_gguf_kv *kv = vet_gguf_find_kv(g, "k.ia");
    CHECK(kv && vet_gguf_array_int(kv, 0) == -1 && vet_gguf_array_int(kv, 2) == 7);
    CHECK(vet_gguf_get_array(g, "k.sa", VET_GGUF_STRING, &n, &err) == 0 && n == 2);
    kv = vet_gguf_find_kv(g, "k.sa");
    uint64_t len;
    const char *s1 = kv ? vet_gguf_array_str(g, kv, 1, &len) : NULL;
    CHECK(s1 && len == 3 && memcmp(s1, "\xc4\xa0x", 3) == 0);
    CHECK(vet_gguf_get_array(g, "k.empty", VET_GGUF_F32, &n, &err) == 0 && n == 0);
    const vet_gguf_tensor *t = vet_gguf_find_tensor(g, "t.f32");
    CHECK(t && t->type == VET_GGML_F32 && t->n_dims == 2 && t->ne[0] == 3 && t->ne[1] == 2 && t->nbytes == 24);
    if (t) { float v; memcpy(&v, t->data + 20, 4); CHECK(v == 6.0f); }
    t = vet_gguf_find_tensor(g, "t.q8");
    CHECK(t && t->type == VET_GGML_Q8_0 && t->nbytes == 68);
    if (t) {
        float y[64];
        vet_ggml_q8_0_dequant_row(y, t->data, 64);
        CHECK(fabsf(y[0] + 4.0f) < 1e-3f && fabsf(y[63] - 3.875f) < 0.02f);
    }
    t = vet_gguf_find_tensor(g, "t.bf16");
    CHECK(t && t->type == VET_GGML_BF16 && t->n_dims == 3 && t->ne[2] == 4 && t->n_elems == 24 && t->nbytes == 48);
    vet_gguf_close(g);
}

// Every key of a file read back, copied into a new writer (vet_gguf_copy_kv, how vet-export passes
// a GGUF model's tokenizer on): the new file is the old one byte for byte.
static void copy_kv_byte_for_byte(void) {
    vet_err err = {0};
    vet_gguf_writer *w = vet_gguf_writer_new(&err);
    uint8_t u8[3] = {1, 2, 250};
    double f64[2] = {0.5, -2};
    const char *sa[3] = {"<s>", "", "\xe2\x96\x81the"};
    CHECK(vet_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1, &err) == 0);
    CHECK(vet_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", 1, &err) == 0);
    CHECK(vet_gguf_set_f32(w, "k.f32", 0.25f, &err) == 0);
    CHECK(vet_gguf_set_str(w, "tokenizer.ggml.model", "llama", &err) == 0);
    CHECK(vet_gguf_set_str(w, "k.empty_str", "", &err) == 0);
    CHECK(vet_gguf_set_str_array(w, "tokenizer.ggml.tokens", sa, 3, &err) == 0);
    CHECK(vet_gguf_set_str_array(w, "k.no_strings", sa, 0, &err) == 0);
    CHECK(vet_gguf_set_array(w, "tokenizer.ggml.precompiled_charsmap", VET_GGUF_U8, u8, 3, &err) == 0);
    CHECK(vet_gguf_set_array(w, "k.f64", VET_GGUF_F64, f64, 2, &err) == 0);
    CHECK(vet_gguf_write(w, path_of("kv.gguf"), &err) == 0);
    vet_gguf_writer_free(w);
    vet_gguf *g = vet_gguf_open(path_of("kv.gguf"), &err);
    CHECK(g != NULL);
    if (!g) { fprintf(stderr, "%s\n", err.msg); return; }
    w = vet_gguf_writer_new(&err);
    for (size_t i = 0; i < vet_gguf_n_kv(g); i++) CHECK(vet_gguf_copy_kv(w, g, vet_gguf_kv_at(g, i), &err) == 0);
    CHECK(vet_gguf_write(w, path_of("kv-copy.gguf"), &err) == 0);
    vet_gguf_writer_free(w);
    vet_gguf_close(g);
    size_t na, nb;
    uint8_t *a = slurp(path_of("kv.gguf"), &na), *b = slurp(path_of("kv-copy.gguf"), &nb);
    CHECK(a && b && na == nb && memcmp(a, b, na) == 0);
    free(a), free(b);
}

static void q8_0_rows(void) {
    // ties go away from zero (roundf), as ggml's reference; amax 127 makes d = 1 exactly
    float x[32] = {127.0f, 2.5f, -2.5f, 0.5f, -0.5f, 1.49f, -127.0f};
    uint8_t q[34];
    CHECK(vet_ggml_q8_0_row(q, x, 32) == 0);
    uint16_t d;
    memcpy(&d, q, 2);
    CHECK(vet_f16_to_f32(d) == 1.0f);
    int8_t want[7] = {127, 3, -3, 1, -1, 1, -127};
    for (int i = 0; i < 7; i++) CHECK((int8_t)q[2 + i] == want[i]);
    for (int i = 7; i < 32; i++) CHECK(q[2 + i] == 0);
    // an all-zero block: d = 0, q = 0, dequantizes to zeros
    float z[32] = {0}, back[32];
    CHECK(vet_ggml_q8_0_row(q, z, 32) == 0);
    for (int i = 0; i < 34; i++) CHECK(q[i] == 0);
    vet_ggml_q8_0_dequant_row(back, q, 32);
    for (int i = 0; i < 32; i++) CHECK(back[i] == 0.0f);
    // random rows: |x - x'| <= d/2 + |q| * |d - f16(d)|
    vet_rng r;
    vet_rng_seed(&r, 11);
    float v[256], y[256];
    uint8_t enc[8 * 34];
    for (int i = 0; i < 256; i++) v[i] = (float)vet_rng_normal(&r) * (i < 32 ? 1e-3f : 0.3f);
    CHECK(vet_ggml_q8_0_row(enc, v, 256) == 0);
    vet_ggml_q8_0_dequant_row(y, enc, 256);
    for (int b = 0; b < 8; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(v[32 * b + i]));
        float dd = amax / 127.0f, dh;
        uint16_t h;
        memcpy(&h, enc + 34 * b, 2);
        dh = vet_f16_to_f32(h);
        for (int i = 0; i < 32; i++) CHECK(fabsf(v[32 * b + i] - y[32 * b + i]) <= dd / 2 + 127 * fabsf(dd - dh) + 1e-9f);
    }
    // refusals: NaN, Inf, a block whose scale is beyond f16
    float bad[32] = {0};
    bad[3] = NAN;
    CHECK(vet_ggml_q8_0_row(q, bad, 32) < 0);
    bad[3] = INFINITY;
    CHECK(vet_ggml_q8_0_row(q, bad, 32) < 0);
    bad[3] = 1e10f;
    CHECK(vet_ggml_q8_0_row(q, bad, 32) < 0);
    bad[3] = 1e6f;                               // d = 7874: fits
    CHECK(vet_ggml_q8_0_row(q, bad, 32) == 0);
}

static void f16_rows(void) {
    float x[4] = {1.0f, -0.1f, 65504.0f, 1e-8f};
    uint8_t h[8];
    CHECK(vet_ggml_f16_row(h, x, 4) == 0);
    uint16_t u[4];
    memcpy(u, h, 8);
    CHECK(u[0] == 0x3c00 && u[1] == vet_f32_to_f16(-0.1f) && u[2] == 0x7bff && u[3] == 0x0000);
    float big[1] = {65520.0f}, nan1[1] = {NAN};
    CHECK(vet_ggml_f16_row(h, big, 1) < 0);
    CHECK(vet_ggml_f16_row(h, nan1, 1) < 0);
    CHECK(vet_gguf_write_nbytes(VET_GGML_F16, 7) == 14 && vet_gguf_write_nbytes(VET_GGML_Q8_0, 64) == 68);
    CHECK(vet_gguf_write_nbytes(VET_GGML_Q8_0, 33) == 0 && vet_gguf_write_nbytes(VET_GGML_Q4_0, 32) == 0);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/vet-test-gguf.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(small_file_by_hand);
    RUN(refusals);
    RUN(alignment_64);
    RUN(round_trip_through_reader);
    RUN(copy_kv_byte_for_byte);
    RUN(q8_0_rows);
    RUN(f16_rows);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {}
    CHECK_EXIT();
}
