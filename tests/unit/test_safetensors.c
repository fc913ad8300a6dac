// test_safetensors.c — fp16/bf16 conversion, safetensors write/read round trips, sharded
// directories, and every way a hostile file can be wrong (each error must name the problem).
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "base/half.h"
#include "io/safetensors.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

// Writes a raw safetensors file: u64 header length (hlen, or strlen(header) when hlen is
// UINT64_MAX), the header text, then data_len bytes 0, 1, 2, ...
static void write_raw(const char *path, const char *header, uint64_t hlen, size_t data_len) {
    FILE *f = fopen(path, "wb");
    if (hlen == UINT64_MAX) hlen = strlen(header);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    for (size_t i = 0; i < data_len; i++) fputc((int)(i & 0xff), f);
    fclose(f);
}

// Opens path expecting failure; checks the message holds `want`.
static void expect_open_error(const char *path, const char *want) {
    vet_err err = {0};
    vet_tensors *t = vet_tensors_open_file(path, &err);
    CHECK(t == NULL);
    CHECK_CONTAINS(err.msg, want);
    vet_tensors_close(t);
}

// ---------------------------------------------------------------------------------------

static void test_f16_matches_compiler(void) {
    // All 65536 halves widen exactly as the compiler's _Float16 does.
    int bad = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t b = (uint16_t)i;
        _Float16 h;
        memcpy(&h, &b, 2);
        float want = (float)h, got = vet_f16_to_f32(b);
        if (want == want ? memcmp(&want, &got, 4) != 0 : got == got) bad++;
        if (want == want && vet_f32_to_f16(got) != b) bad++;   // and narrow back to themselves
    }
    CHECK(bad == 0);
    // Narrowing of ~4M fp32 bit patterns spread over the whole range (normals, subnormals,
    // ties, overflow to inf) agrees with the compiler's round-to-nearest-even.
    bad = 0;
    for (uint64_t i = 0; i < (1ull << 32); i += 1021) {
        float f = vet_bits_f32((uint32_t)i);
        uint16_t got = vet_f32_to_f16(f);
        if (f != f) {
            if (((got >> 10) & 31) != 31 || !(got & 0x3ff)) bad++;
            continue;
        }
        _Float16 h = (_Float16)f;
        uint16_t want;
        memcpy(&want, &h, 2);
        if (got != want) bad++;
    }
    CHECK(bad == 0);
    CHECK(vet_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(vet_f32_to_f16(65520.0f) == 0x7c00);          // tie past max rounds to inf
    CHECK(vet_f32_to_f16(5.960464477539063e-8f) == 1);  // 2^-24, smallest subnormal
    CHECK(vet_f32_to_f16(2.98023224e-8f) == 0);         // 2^-25 ties to even (zero)
    CHECK(vet_f32_to_f16(-0.0f) == 0x8000);
}

// An independent bf16 reference: pick the nearer of the two neighbours in double, ties to even.
static uint16_t bf16_ref(float f) {
    uint32_t x = vet_f32_bits(f);
    uint32_t lo = x & 0xffff0000u, hi = lo + 0x10000u;
    double dl = vet_bits_f32(lo), dh = vet_bits_f32(hi), d = f;
    if ((hi & 0x7fffffffu) == 0x7f800000u) dh = ldexp((x >> 31) ? -1.0 : 1.0, 128);   // the step past FLT_MAX
    double el = fabs(d - dl), eh = fabs(dh - d);
    if (el < eh) return (uint16_t)(lo >> 16);
    if (eh < el) return (uint16_t)(hi >> 16);
    return (uint16_t)(((lo >> 16) & 1) ? hi >> 16 : lo >> 16);
}

static void test_bf16_rounding(void) {
    int bad = 0;
    for (uint64_t i = 0; i < (1ull << 32); i += 997) {
        float f = vet_bits_f32((uint32_t)i);
        uint16_t got = vet_f32_to_bf16(f);
        if (f != f) {
            if ((got & 0x7f80) != 0x7f80 || !(got & 0x7f)) bad++;   // still a nan
            continue;
        }
        if (isinf(f)) {
            if (got != (uint16_t)(vet_f32_bits(f) >> 16)) bad++;
            continue;
        }
        if (got != bf16_ref(f)) bad++;
        if (vet_bf16_to_f32(got) != vet_bits_f32((uint32_t)got << 16)) bad++;
    }
    CHECK(bad == 0);
    CHECK(vet_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(vet_f32_to_bf16(vet_bits_f32(0x3f808000u)) == 0x3f80);   // tie, even stays
    CHECK(vet_f32_to_bf16(vet_bits_f32(0x3f818000u)) == 0x3f82);   // tie, odd rounds up
    CHECK(vet_f32_to_bf16(vet_bits_f32(0x7f7fffffu)) == 0x7f80);   // FLT_MAX rounds to inf
    CHECK(vet_f32_to_bf16(vet_bits_f32(0x00000001u)) == 0x0000);   // subnormal rounds to zero
}

static void test_round_trip_all_dtypes(void) {
    float f[12];
    for (int i = 0; i < 12; i++) f[i] = (float)(i - 5) * 0.375f + 1e-3f * (float)i;
    int32_t i32[4] = {-7, 0, 7, 2000000000};
    int64_t i64[2] = {-((int64_t)1 << 40), 42};
    uint8_t u8[5] = {0, 1, 2, 200, 255};
    int8_t i8[2] = {-100, 100};
    int64_t s34[2] = {3, 4}, s4[1] = {4}, s2[1] = {2}, s5[1] = {5}, s112[3] = {1, 12, 1};
    vet_err err = {0};
    vet_st_writer *w = vet_st_writer_new();
    CHECK(vet_st_writer_add(w, "z.f32", VET_DT_F32, 2, s34, f, &err) == 0);
    CHECK(vet_st_writer_add_f32_as(w, "a.bf16", VET_DT_BF16, 2, s34, f, &err) == 0);
    CHECK(vet_st_writer_add_f32_as(w, "m.f16", VET_DT_F16, 3, s112, f, &err) == 0);
    CHECK(vet_st_writer_add(w, "i32", VET_DT_I32, 1, s4, i32, &err) == 0);
    CHECK(vet_st_writer_add(w, "i64", VET_DT_I64, 1, s2, i64, &err) == 0);
    CHECK(vet_st_writer_add(w, "u8", VET_DT_U8, 1, s5, u8, &err) == 0);
    CHECK(vet_st_writer_add(w, "i8", VET_DT_I8, 1, s2, i8, &err) == 0);
    CHECK(vet_st_writer_meta(w, "note", "hello \"world\"", &err) == 0);
    CHECK(vet_st_writer_count(w) == 7);
    CHECK(vet_st_writer_data_bytes(w) == 48 + 24 + 24 + 16 + 16 + 5 + 2);
    const char *path = tmp_path("all.safetensors");
    CHECK(vet_st_writer_write(w, path, &err) == 0);
    vet_st_writer_free(w);
    CHECK(access(tmp_path("all.safetensors.tmp"), F_OK) != 0);

    vet_tensors *t = vet_tensors_open_file(path, &err);
    CHECK(t != NULL);
    if (!t) return;
    CHECK(vet_tensors_count(t) == 7);
    CHECK_STR(vet_tensors_at(t, 0)->name, "a.bf16");   // sorted by name
    CHECK_STR(vet_tensors_meta(t, "format"), "pt");
    CHECK_STR(vet_tensors_meta(t, "note"), "hello \"world\"");
    CHECK(vet_tensors_meta(t, "absent") == NULL);
    CHECK(vet_tensors_find(t, "nope") == NULL);

    const vet_tensor_ref *r = vet_tensors_find(t, "z.f32");
    CHECK(r && r->dtype == VET_DT_F32 && r->ndim == 2 && r->shape[0] == 3 && r->shape[1] == 4 && r->nbytes == 48);
    CHECK(r && memcmp(r->data, f, 48) == 0);
    CHECK(r && strcmp(r->file, path) == 0);
    float out[12];
    CHECK(r && vet_tensor_read_f32(r, 2, s34, out, &err) == 0 && memcmp(out, f, 48) == 0);

    r = vet_tensors_find(t, "a.bf16");
    CHECK(r && r->dtype == VET_DT_BF16 && r->nbytes == 24);
    CHECK(r && vet_tensor_read_f32(r, 2, s34, out, &err) == 0);
    for (int i = 0; r && i < 12; i++) CHECK(out[i] == vet_bf16_to_f32(vet_f32_to_bf16(f[i])));
    r = vet_tensors_find(t, "m.f16");
    CHECK(r && r->dtype == VET_DT_F16 && r->ndim == 3 && vet_tensor_numel(r) == 12);
    CHECK(r && vet_tensor_read_f32(r, 3, s112, out, &err) == 0);
    for (int i = 0; r && i < 12; i++) CHECK_NEAR(out[i], f[i], 1e-3);
    for (int i = 0; r && i < 12; i++) CHECK(out[i] == vet_f16_to_f32(vet_f32_to_f16(f[i])));

    r = vet_tensors_find(t, "i32");
    CHECK(r && r->dtype == VET_DT_I32 && memcmp(r->data, i32, 16) == 0);
    CHECK(r && vet_tensor_read_f32(r, 1, s4, out, &err) == 0 && out[0] == -7.0f && out[3] == 2e9f);
    r = vet_tensors_find(t, "i64");
    CHECK(r && r->dtype == VET_DT_I64 && memcmp(r->data, i64, 16) == 0);
    r = vet_tensors_find(t, "u8");
    CHECK(r && r->dtype == VET_DT_U8 && memcmp(r->data, u8, 5) == 0);
    CHECK(r && vet_tensor_read_f32(r, 1, s5, out, &err) == 0 && out[4] == 255.0f);
    r = vet_tensors_find(t, "i8");
    CHECK(r && r->dtype == VET_DT_I8 && vet_tensor_read_f32(r, 1, s2, out, &err) == 0 && out[0] == -100.0f);
    vet_tensors_close(t);
}

// The bytes on disk: header length a multiple of 8, space padding, offsets contiguous by name.
static void test_writer_layout(void) {
    float a[3] = {1, 2, 3};
    uint8_t b[1] = {9};
    int64_t s3[1] = {3}, s1[1] = {1};
    vet_err err = {0};
    vet_st_writer *w = vet_st_writer_new();
    CHECK(vet_st_writer_add(w, "b", VET_DT_U8, 1, s1, b, &err) == 0);
    CHECK(vet_st_writer_add(w, "a", VET_DT_F32, 1, s3, a, &err) == 0);
    const char *path = tmp_path("layout.safetensors");
    CHECK(vet_st_writer_write(w, path, &err) == 0);
    vet_st_writer_free(w);
    FILE *f = fopen(path, "rb");
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    CHECK(hlen % 8 == 0);
    CHECK(n == 8 + hlen + 13);
    char header[512] = {0};
    memcpy(header, buf + 8, hlen);
    CHECK(header[0] == '{');
    CHECK_CONTAINS(header, "\"__metadata__\":{\"format\":\"pt\"}");
    CHECK_CONTAINS(header, "\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}");
    CHECK_CONTAINS(header, "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[12,13]}");
    char *close = strrchr(header, '}');
    for (char *p = close + 1; p < header + hlen; p++) CHECK(*p == ' ');
    CHECK(memcmp(buf + 8 + hlen, a, 12) == 0 && buf[8 + hlen + 12] == 9);
}

static void test_writer_refuses(void) {
    float a[2] = {0};
    int64_t s2[1] = {2}, neg[1] = {-1};
    vet_err err = {0};
    vet_st_writer *w = vet_st_writer_new();
    CHECK(vet_st_writer_add(w, "x", VET_DT_F32, 1, s2, a, &err) == 0);
    CHECK(vet_st_writer_add(w, "x", VET_DT_F32, 1, s2, a, &err) == -1);
    CHECK_CONTAINS(err.msg, "'x' added twice");
    CHECK(vet_st_writer_add(w, "__metadata__", VET_DT_F32, 1, s2, a, &err) == -1);
    CHECK(vet_st_writer_add(w, "y", VET_DT_F32, 1, neg, a, &err) == -1);
    CHECK(vet_st_writer_add_f32_as(w, "y", VET_DT_I32, 1, s2, a, &err) == -1);
    CHECK_CONTAINS(err.msg, "not I32");
    CHECK(vet_st_writer_add(w, "y", VET_DT_F32, 1, s2, NULL, &err) == -1);
    CHECK(vet_st_writer_count(w) == 1);
    CHECK(vet_st_writer_write(w, tmp_path("no/such/dir/x.safetensors"), &err) == -1);
    CHECK_CONTAINS(err.msg, "cannot create");
    vet_st_writer_free(w);
}

static void test_read_shape_mismatch(void) {
    float a[6] = {0};
    int64_t s23[2] = {2, 3}, s32[2] = {3, 2}, s6[1] = {6};
    vet_err err = {0};
    vet_st_writer *w = vet_st_writer_new();
    vet_st_writer_add(w, "w", VET_DT_F32, 2, s23, a, &err);
    const char *path = tmp_path("shape.safetensors");
    CHECK(vet_st_writer_write(w, path, &err) == 0);
    vet_st_writer_free(w);
    vet_tensors *t = vet_tensors_open_file(path, &err);
    const vet_tensor_ref *r = t ? vet_tensors_find(t, "w") : NULL;
    float out[6];
    CHECK(r && vet_tensor_read_f32(r, 2, s32, out, &err) == -1);
    CHECK_CONTAINS(err.msg, "tensor 'w': shape [2, 3], but the model expects [3, 2]");
    CHECK_CONTAINS(err.msg, "shape.safetensors");
    CHECK(r && vet_tensor_read_f32(r, 1, s6, out, &err) == -1);
    CHECK_CONTAINS(err.msg, "expects [6]");
    CHECK(vet_tensor_read_f32(t ? vet_tensors_find(t, "absent") : NULL, 1, s6, out, &err) == -1);
    CHECK_CONTAINS(err.msg, "missing");
    vet_tensors_close(t);
}

// A NaN or Inf in any weight is refused on load, naming the tensor (it would otherwise turn every
// logit into NaN and every generated token into 0).
static void test_read_refuses_nonfinite(void) {
    float a[6] = {0, 1, 2, 3, 4, 5};
    int64_t s6[1] = {6};
    const float bad[2] = {NAN, INFINITY};
    const vet_dtype dts[3] = {VET_DT_F32, VET_DT_BF16, VET_DT_F16};
    for (int k = 0; k < 2; k++)
        for (int d = 0; d < 3; d++) {
            vet_err err = {0};
            a[4] = bad[k];
            vet_st_writer *w = vet_st_writer_new();
            CHECK(vet_st_writer_add_f32_as(w, "model.layers.0.self_attn.q_proj.weight", dts[d], 1, s6, a, &err) == 0);
            const char *path = tmp_path("nan.safetensors");
            CHECK(vet_st_writer_write(w, path, &err) == 0);
            vet_st_writer_free(w);
            vet_tensors *t = vet_tensors_open_file(path, &err);
            const vet_tensor_ref *r = t ? vet_tensors_find(t, "model.layers.0.self_attn.q_proj.weight") : NULL;
            float out[6];
            CHECK(r && vet_tensor_read_f32(r, 1, s6, out, &err) == -1);
            CHECK_CONTAINS(err.msg, "tensor 'model.layers.0.self_attn.q_proj.weight' holds");
            CHECK_CONTAINS(err.msg, k == 0 ? "NaN at element 4" : "Inf at element 4");
            vet_tensors_close(t);
        }
}

static void test_hostile_files(void) {
    const char *p = tmp_path("bad.safetensors");
    FILE *f = fopen(p, "wb");
    fwrite("abcde", 1, 5, f);
    fclose(f);
    expect_open_error(p, "bad.safetensors: file is 5 bytes, shorter than the 8-byte header length");

    write_raw(p, "{}", (uint64_t)1 << 40, 0);
    expect_open_error(p, "bad.safetensors: header length 1099511627776 is absurd");
    write_raw(p, "{}", 100, 4);
    expect_open_error(p, "header length 100 runs beyond the end of the file (14 bytes)");
    write_raw(p, "{\"x\": [1,", UINT64_MAX, 0);
    expect_open_error(p, "bad.safetensors: header is not valid JSON");
    write_raw(p, "[1, 2]", UINT64_MAX, 0);
    expect_open_error(p, "header is not a JSON object");
    write_raw(p, "{\"x\": 3}", UINT64_MAX, 0);
    expect_open_error(p, "tensor 'x': header entry is not a JSON object");
    write_raw(p, "{\"x\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [0, 16]}}", UINT64_MAX, 16);
    expect_open_error(p, "bad.safetensors: tensor 'x': unknown dtype 'F64'");
    write_raw(p, "{\"x\": {\"shape\": [2], \"data_offsets\": [0, 16]}}", UINT64_MAX, 16);
    expect_open_error(p, "tensor 'x': no \"dtype\"");
    write_raw(p, "{\"x\": {\"dtype\": \"F32\", \"shape\": [2, -1], \"data_offsets\": [0, 8]}}", UINT64_MAX, 8);
    expect_open_error(p, "tensor 'x': shape entry 1 is not a non-negative integer");
    write_raw(p, "{\"x\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 12]}}", UINT64_MAX, 12);
    expect_open_error(p, "tensor 'x': dtype F32 and shape [4] need 16 bytes but data_offsets [0,12] hold 12");
    write_raw(p, "{\"x\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", UINT64_MAX, 12);
    expect_open_error(p, "bad.safetensors: tensor 'x': data_offsets [0,16] beyond the data section (12 bytes)");
    write_raw(p, "{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", UINT64_MAX, 12);
    expect_open_error(p, "tensor 'x': data_offsets [8,4] end before they begin");
    write_raw(p, "{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", UINT64_MAX, 12);
    expect_open_error(p, "tensor 'x': negative data_offsets");
    write_raw(p, "{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", UINT64_MAX, 12);
    expect_open_error(p, "\"data_offsets\" is not an array of two integers");
    write_raw(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                 " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", UINT64_MAX, 12);
    expect_open_error(p, "tensors 'a' [0,8] and 'b' [4,12] overlap");
    write_raw(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                 " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", UINT64_MAX, 8);
    expect_open_error(p, "header names a tensor twice");
    write_raw(p, "{\"x\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", UINT64_MAX, 4);
    expect_open_error(p, "9 dims");
    write_raw(p, "{\"x\": {\"dtype\": \"U8\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": [0, 4]}}",
              UINT64_MAX, 4);
    expect_open_error(p, "absurdly large");
    write_raw(p, "{\"__metadata__\": [1]}", UINT64_MAX, 0);
    expect_open_error(p, "\"__metadata__\" is not a JSON object");
    expect_open_error(tmp_path("missing.safetensors"), "missing.safetensors: cannot open");
    expect_open_error(tmpdir, "not a regular file");

    // Legal corner cases: empty tensors may share an offset; a hole-free header with padding.
    write_raw(p, "{\"e\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]},"
                 " \"f\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [4, 4]},"
                 " \"g\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [0, 8]}}   ", UINT64_MAX, 8);
    vet_err err = {0};
    vet_tensors *t = vet_tensors_open_file(p, &err);
    CHECK(t != NULL);
    if (!t) fprintf(stderr, "%s\n", err.msg);
    CHECK(t && vet_tensors_count(t) == 3 && vet_tensor_numel(vet_tensors_find(t, "f")) == 0);
    vet_tensors_close(t);
}

// A directory with shards and an index, as transformers writes for big models.
static void write_shard(const char *name, const char *tensor_a, const char *tensor_b, float base) {
    float a[4] = {base, base + 1, base + 2, base + 3};
    int64_t s[2] = {2, 2};
    vet_err err = {0};
    vet_st_writer *w = vet_st_writer_new();
    vet_st_writer_add(w, tensor_a, VET_DT_F32, 2, s, a, &err);
    if (tensor_b) vet_st_writer_add_f32_as(w, tensor_b, VET_DT_BF16, 2, s, a, &err);
    CHECK(vet_st_writer_write(w, tmp_path(name), &err) == 0);
    vet_st_writer_free(w);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_sharded_dir(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/sharded", tmpdir);
    mkdir(dir, 0777);
    vet_err err = {0};
    CHECK(vet_tensors_open_dir(dir, &err) == NULL);
    CHECK_CONTAINS(err.msg, "no model.safetensors or model.safetensors.index.json");

    write_shard("sharded/model-00001-of-00002.safetensors", "model.a", "model.b", 1);
    write_shard("sharded/model-00002-of-00002.safetensors", "model.c", NULL, 10);
    const char *index = tmp_path("sharded/model.safetensors.index.json");
    write_text(index, "{\"metadata\": {\"total_size\": 40}, \"weight_map\": {"
                      "\"model.a\": \"model-00001-of-00002.safetensors\", \"model.b\": \"model-00001-of-00002.safetensors\","
                      "\"model.c\": \"model-00002-of-00002.safetensors\"}}");
    vet_tensors *t = vet_tensors_open_dir(dir, &err);
    CHECK(t != NULL);
    if (!t) fprintf(stderr, "%s\n", err.msg);
    if (t) {
        CHECK(vet_tensors_count(t) == 3);
        const vet_tensor_ref *c = vet_tensors_find(t, "model.c");
        float out[4];
        int64_t s[2] = {2, 2};
        CHECK(c && vet_tensor_read_f32(c, 2, s, out, &err) == 0 && out[0] == 10.0f && out[3] == 13.0f);
        CHECK(c && strstr(c->file, "model-00002-of-00002.safetensors"));
        const vet_tensor_ref *b = vet_tensors_find(t, "model.b");
        CHECK(b && b->dtype == VET_DT_BF16 && vet_tensor_read_f32(b, 2, s, out, &err) == 0 && out[2] == 3.0f);
        vet_tensors_close(t);
    }
    // The index names a tensor its shard lacks.
    write_text(index, "{\"weight_map\": {\"model.a\": \"model-00001-of-00002.safetensors\","
                      "\"model.c\": \"model-00001-of-00002.safetensors\"}}");
    CHECK(vet_tensors_open_dir(dir, &err) == NULL);
    CHECK_CONTAINS(err.msg, "names tensor 'model.c' in shard 'model-00001-of-00002.safetensors', but that shard lacks it");
    write_text(index, "{\"weight_map\": {\"model.z\": \"model-00001-of-00002.safetensors\"}}");
    CHECK(vet_tensors_open_dir(dir, &err) == NULL);
    CHECK_CONTAINS(err.msg, "names tensor 'model.z'");
    // A shard file is missing.
    write_text(index, "{\"weight_map\": {\"model.a\": \"model-00001-of-00002.safetensors\","
                      "\"model.q\": \"model-00003-of-00002.safetensors\"}}");
    CHECK(vet_tensors_open_dir(dir, &err) == NULL);
    CHECK_CONTAINS(err.msg, "shard 'model-00003-of-00002.safetensors' (holding tensor 'model.q') is missing");
    write_text(index, "{\"weight_map\": {\"model.a\": \"../x.safetensors\"}}");
    CHECK(vet_tensors_open_dir(dir, &err) == NULL);
    CHECK_CONTAINS(err.msg, "not a plain file name");
    write_text(index, "{\"weight_map\": [}");
    CHECK(vet_tensors_open_dir(dir, &err) == NULL);
    CHECK_CONTAINS(err.msg, "model.safetensors.index.json:1: not valid JSON");
    write_text(index, "{\"metadata\": {}}");
    CHECK(vet_tensors_open_dir(dir, &err) == NULL);
    CHECK_CONTAINS(err.msg, "no \"weight_map\"");
    // Two shards hold the same tensor.
    write_shard("sharded/model-00002-of-00002.safetensors", "model.a", NULL, 10);
    write_text(index, "{\"weight_map\": {\"model.a\": \"model-00001-of-00002.safetensors\","
                      "\"model.b\": \"model-00002-of-00002.safetensors\"}}");
    CHECK(vet_tensors_open_dir(dir, &err) == NULL);
    CHECK_CONTAINS(err.msg, "tensor 'model.a' is in both");

    // model.safetensors beside a good index: the single file, as transformers reads such a folder.
    write_shard("sharded/model-00002-of-00002.safetensors", "model.c", NULL, 10);
    write_text(index, "{\"weight_map\": {\"model.a\": \"model-00001-of-00002.safetensors\","
                      "\"model.c\": \"model-00002-of-00002.safetensors\"}}");
    write_shard("sharded/model.safetensors", "only", NULL, 5);
    t = vet_tensors_open_dir(dir, &err);
    CHECK(t && vet_tensors_count(t) == 1 && vet_tensors_find(t, "only"));
    vet_tensors_close(t);
    // Without an index, model.safetensors; a file path opens the file.
    unlink(index);
    t = vet_tensors_open_dir(dir, &err);
    CHECK(t && vet_tensors_count(t) == 1 && vet_tensors_find(t, "only"));
    vet_tensors_close(t);
    t = vet_tensors_open_dir(tmp_path("sharded/model-00001-of-00002.safetensors"), &err);
    CHECK(t && vet_tensors_count(t) == 2);
    vet_tensors_close(t);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/vet-st.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_f16_matches_compiler);
    RUN(test_bf16_rounding);
    RUN(test_round_trip_all_dtypes);
    RUN(test_writer_layout);
    RUN(test_writer_refuses);
    RUN(test_read_shape_mismatch);
    RUN(test_read_refuses_nonfinite);
    RUN(test_hostile_files);
    RUN(test_sharded_dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    CHECK_EXIT();
}
