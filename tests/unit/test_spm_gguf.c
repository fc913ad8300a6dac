// test_spm_gguf.c — a SentencePiece model built from parts (data/spm_proto.h) and run by
// libsentencepiece (vet_spm_from_proto): the merges follow the scores, byte fallback and the
// dummy prefix follow the flags, and the types come back as they went in. The GGUF side
// (data/spm_gguf.c) is covered by tests/reference/test_gguf_spm.py and the bad-input catalogue.
#include "check.h"

#include "data/spm.h"
#include "data/spm_proto.h"

// <unk> <s> </s>, the byte pieces <0x00>..<0xFF>, then ▁ a b c <x> ▁a ab ▁ab (<x> user-defined).
enum { N_HEAD = 3, N_BYTES = 256, FIRST = N_HEAD + N_BYTES, N = FIRST + 8 };
static char names[N][16];
static const char *piece[N];
static size_t len[N];
static float score[N];
static uint8_t type[N];

static void vocab(void) {
    static const char *head[] = {"<unk>", "<s>", "</s>"}, *tail[] = {"\xe2\x96\x81", "a", "b", "c", "<x>",
                                                                      "\xe2\x96\x81" "a", "ab", "\xe2\x96\x81" "ab"};
    static const float tail_score[] = {0, 0, 0, 0, 0, -2, -1, -3};  // "ab" before "▁a"
    for (int i = 0; i < N; i++) {
        if (i < N_HEAD) snprintf(names[i], sizeof names[i], "%s", head[i]), type[i] = i ? 3 : 2;
        else if (i < FIRST) snprintf(names[i], sizeof names[i], "<0x%02X>", i - N_HEAD), type[i] = 6;
        else snprintf(names[i], sizeof names[i], "%s", tail[i - FIRST]), type[i] = i == FIRST + 4 ? 4 : 1;
        piece[i] = names[i], len[i] = strlen(names[i]);
        score[i] = i >= FIRST ? tail_score[i - FIRST] : 0;
    }
}

static vet_spm *build(int dummy_prefix, uint8_t *types_back, int *prefix_back) {
    vet_spm_norm norm;
    vet_spm_proto m = {.n = N, .piece = piece, .piece_len = len, .score = score, .type = type, .byte_fallback = 1,
                       .add_dummy_prefix = dummy_prefix, .unk_piece = "<unk>", .bos_piece = "<s>", .eos_piece = "</s>"};
    uint8_t *proto = NULL;
    size_t n = 0;
    vet_err err = {0};
    CHECK(vet_spm_proto_serialize(&m, &proto, &n, &err) == 0);
    CHECK(vet_spm_proto_read(proto, n, types_back, N, &norm) == 0);
    *prefix_back = norm.add_dummy_prefix;
    // what vet writes is what llama.cpp's runtime does: no character rules, spaces kept and escaped
    CHECK_STR(norm.name, "identity");
    CHECK(norm.charsmap_len == 0 && !norm.remove_extra_whitespaces && norm.escape_whitespaces &&
          !norm.whitespace_as_suffix);
    uint8_t scratch[N];
    CHECK(vet_spm_proto_read(proto, n - 1, scratch, N, &norm) < 0);      // cut short: refused
    CHECK(vet_spm_proto_read(proto, n, scratch, N - 1, &norm) < 0);      // more pieces than said
    vet_spm *s = vet_spm_from_proto("test.gguf", proto, n, "00", &err);
    if (!s) fprintf(stderr, "%s\n", err.msg);
    free(proto);
    return s;
}

static int encode(vet_spm *s, const char *text, int32_t *out, int max) {
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    vet_err err = {0};
    CHECK(vet_spm_encode(s, text, strlen(text), &ids, &n, &cap, &err) == 0);
    int k = (int)n < max ? (int)n : max;
    memcpy(out, ids, (size_t)k * sizeof *out);
    free(ids);
    return (int)n;
}

static void merges_follow_scores(void) {
    uint8_t back[N];
    int prefix = -1;
    vet_spm *s = build(1, back, &prefix);
    CHECK(s != NULL);
    if (!s) return;
    CHECK(prefix == 1);
    CHECK(memcmp(back, type, N) == 0);
    CHECK(vet_spm_piece_type(s, FIRST + 4) == VET_SPM_USER_DEFINED);
    CHECK(vet_spm_piece_type(s, N_HEAD + 10) == VET_SPM_BYTE);
    CHECK(vet_spm_bos_id(s) == 1 && vet_spm_eos_id(s) == 2 && vet_spm_unk_id(s) == 0);
    int32_t ids[8];
    // "ab" -> ▁ a b; "ab" (score -1) beats "▁a" (-2), then ▁ + ab = ▁ab (-3).
    CHECK(encode(s, "ab", ids, 8) == 1 && ids[0] == FIRST + 7);
    // "é" has no piece: its two UTF-8 bytes, after the prefix ▁.
    CHECK(encode(s, "\xc3\xa9", ids, 8) == 3 && ids[0] == FIRST && ids[1] == N_HEAD + 0xC3 && ids[2] == N_HEAD + 0xA9);
    // The user-defined piece is matched whole.
    CHECK(encode(s, "c<x>", ids, 8) == 3 && ids[2] == FIRST + 4);
    char *text = vet_spm_decode(s, ids, 3, &(vet_err){0});
    CHECK_STR(text, "c<x>");
    free(text);
    vet_spm_free(s);
}

static void no_dummy_prefix(void) {
    uint8_t back[N];
    int prefix = -1;
    vet_spm *s = build(0, back, &prefix);
    CHECK(s != NULL);
    if (!s) return;
    CHECK(prefix == 0);
    CHECK(vet_spm_add_dummy_prefix(s) == 0);
    int32_t ids[8];
    CHECK(encode(s, "ab", ids, 8) == 1 && ids[0] == FIRST + 6);
    vet_spm_free(s);
}

// spm_train's defaults, as bytes: one piece, a TrainerSpec with treat_whitespace_as_suffix, and a
// NormalizerSpec naming nmt_nfkc with a 3-byte charsmap and nothing else (the rest defaults to true).
static void normalizer_read_back(void) {
    static const uint8_t proto[] = {
        0x0A, 0x03, 0x0A, 0x01, 'a',                                    // pieces { piece "a" }
        0x12, 0x03, 0xC0, 0x01, 0x01,                                   // trainer_spec { 24: 1 }
        0x1A, 0x0F, 0x0A, 0x08, 'n', 'm', 't', '_', 'n', 'f', 'k', 'c', // normalizer_spec { name
        0x12, 0x03, 1, 2, 3,                                            //   precompiled_charsmap }
    };
    uint8_t t[1];
    vet_spm_norm norm;
    CHECK(vet_spm_proto_read(proto, sizeof proto, t, 1, &norm) == 0);
    CHECK_STR(norm.name, "nmt_nfkc");
    CHECK(norm.charsmap_len == 3);
    CHECK(norm.add_dummy_prefix && norm.remove_extra_whitespaces && norm.escape_whitespaces);   // protobuf's defaults
    CHECK(norm.whitespace_as_suffix && t[0] == 1);
}

int main(void) {
    vocab();
    RUN(normalizer_read_back);
    RUN(merges_follow_scores);
    RUN(no_dummy_prefix);
    CHECK_EXIT();
}
