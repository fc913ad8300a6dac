// test_bpe.c — lib/data/bpe.h on small hand-written tokenizer.json files: merges in both forms
// and by rank, added tokens in text, ignore_merges, unseen bytes through the byte-level alphabet,
// decode(encode(x)) == x, and malformed files refused with "path: what is wrong".
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "data/bpe.h"
#include "data/bytelevel.h"

static char tmpdir[256];

static const char *write_json(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
    return path;
}

// A tokenizer.json around the given vocab/merges/added-tokens/pre-tokenizer JSON fragments.
static vet_bpe *load_with(const char *vocab, const char *merges, const char *added, const char *extra,
                          vet_err *err) {
    char text[8192];
    snprintf(text, sizeof text,
             "{\"version\": \"1.0\", \"added_tokens\": [%s], \"normalizer\": null,"
             " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true},"
             " \"post_processor\": null, \"decoder\": {\"type\": \"ByteLevel\"},"
             " \"model\": {\"type\": \"BPE\", \"vocab\": {%s}, \"merges\": [%s]%s}}",
             added, vocab, merges, extra);
    return vet_bpe_load(write_json("tokenizer.json", text), err);
}

static size_t enc(const vet_bpe *b, const char *text, int32_t *out, size_t max) {
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    vet_err err = {0};
    if (vet_bpe_encode(b, text, strlen(text), &ids, &n, &cap, &err) < 0) {
        fprintf(stderr, "encode: %s\n", err.msg);
        n = 0;
    }
    for (size_t i = 0; i < n && i < max; i++) out[i] = ids[i];
    free(ids);
    return n;
}

#define SMALL_VOCAB "\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"abc\": 4, \"\\u0120\": 5, \"\\u0120ab\": 6, \"bc\": 7"

static void merges_string_and_pair_forms(void) {
    const char *forms[2] = {"\"a b\", \"ab c\", \"\\u0120 ab\"", "[\"a\", \"b\"], [\"ab\", \"c\"], [\"\\u0120\", \"ab\"]"};
    for (int f = 0; f < 2; f++) {
        vet_err err = {0};
        vet_bpe *b = load_with(SMALL_VOCAB, forms[f], "", "", &err);
        CHECK(b != NULL);
        if (!b) { fprintf(stderr, "%s\n", err.msg); continue; }
        int32_t ids[8];
        size_t n = enc(b, "abc ab", ids, 8);  // "abc" -> ab c -> abc; " ab" -> Ġ ab -> Ġab
        CHECK(n == 2 && ids[0] == 4 && ids[1] == 6);
        CHECK(vet_bpe_vocab_size(b) == 8);
        CHECK_STR(vet_bpe_id_to_piece(b, 6), "\xC4\xA0" "ab");
        CHECK(vet_bpe_piece_to_id(b, "abc") == 4 && vet_bpe_piece_to_id(b, "zz") == -1);
        vet_bpe_free(b);
    }
}

static void merges_by_rank(void) {
    vet_err err = {0};
    int32_t ids[8];
    vet_bpe *b = load_with(SMALL_VOCAB, "\"b c\", \"a b\"", "", "", &err);  // "b c" first
    CHECK(b && enc(b, "abc", ids, 8) == 2 && ids[0] == 0 && ids[1] == 7);
    vet_bpe_free(b);
    b = load_with(SMALL_VOCAB, "\"a b\", \"b c\"", "", "", &err);  // "a b" first
    CHECK(b && enc(b, "abc", ids, 8) == 2 && ids[0] == 3 && ids[1] == 2);
    vet_bpe_free(b);
    // Equal pairs merge leftmost first: "aaa" with "a a" is [aa, a], never [a, aa].
    b = load_with("\"a\": 0, \"aa\": 1", "\"a a\"", "", "", &err);
    CHECK(b && enc(b, "aaa", ids, 8) == 2 && ids[0] == 1 && ids[1] == 0);
    CHECK(b && enc(b, "aaaa", ids, 8) == 2 && ids[0] == 1 && ids[1] == 1);
    vet_bpe_free(b);
}

static void added_tokens_in_text(void) {
    vet_err err = {0};
    const char *added = "{\"id\": 8, \"content\": \"<x>\", \"special\": true, \"normalized\": false},"
                        "{\"id\": 9, \"content\": \"<x>>\", \"special\": false, \"normalized\": false},"
                        "{\"id\": 10, \"content\": \"bca\", \"special\": false, \"normalized\": true}";
    vet_bpe *b = load_with(SMALL_VOCAB ", \"<\": 11, \">\": 12, \"x\": 13", "\"a b\", \"ab c\"", added, "", &err);
    CHECK(b != NULL);
    if (!b) { fprintf(stderr, "%s\n", err.msg); return; }
    int32_t ids[16];
    size_t n = enc(b, "ab<x>ab", ids, 16);  // never merged into: ab, <x>, ab
    CHECK(n == 3 && ids[0] == 3 && ids[1] == 8 && ids[2] == 3);
    n = enc(b, "<x>>c", ids, 16);  // the longest token wins: <x>> then c
    CHECK(n == 2 && ids[0] == 9 && ids[1] == 2);
    n = enc(b, "abca", ids, 16);  // "bca" is cut out before the merges could take "ab"
    CHECK(n == 2 && ids[0] == 0 && ids[1] == 10);
    CHECK(vet_bpe_is_special(b, 8) && !vet_bpe_is_special(b, 9) && !vet_bpe_is_special(b, 3));
    int32_t d[3] = {3, 8, 9};
    size_t len;
    char *s = vet_bpe_decode_bytes(b, d, 3, &len, &err);
    CHECK_STR(s, "ab<x>>");  // special tokens decode to nothing
    free(s);
    vet_bpe_free(b);
}

static void ignore_merges(void) {
    vet_err err = {0};
    int32_t ids[8];
    vet_bpe *b = load_with(SMALL_VOCAB, "\"a b\"", "", ", \"ignore_merges\": true", &err);
    CHECK(b && enc(b, "abc", ids, 8) == 1 && ids[0] == 4);  // "abc" is in the vocabulary: whole
    vet_bpe_free(b);
    b = load_with(SMALL_VOCAB, "\"a b\"", "", ", \"ignore_merges\": false", &err);
    CHECK(b && enc(b, "abc", ids, 8) == 2 && ids[0] == 3 && ids[1] == 2);
    vet_bpe_free(b);
}

// The whole byte-level alphabet as a vocabulary (ids 0..255 in byte order), no merges.
static vet_bpe *alphabet(vet_err *err) {
    static char vocab[8192];
    size_t k = 0;
    for (int c = 0; c < 256; c++) {
        char u[2];
        int m = vet_bytelevel_utf8((uint8_t)c, u);
        k += (size_t)snprintf(vocab + k, sizeof vocab - k, "%s\"", c ? ", " : "");
        if (u[0] == '"' || u[0] == '\\') vocab[k++] = '\\';
        memcpy(vocab + k, u, (size_t)m), k += (size_t)m;
        k += (size_t)snprintf(vocab + k, sizeof vocab - k, "\": %d", c);
    }
    return load_with(vocab, "", "", "", err);
}

static void bytes_and_roundtrip(void) {
    CHECK(vet_bytelevel_cp(' ') == 0x120 && vet_bytelevel_cp('\n') == 0x10A && vet_bytelevel_cp('A') == 'A');
    CHECK(vet_bytelevel_byte(0x120) == ' ' && vet_bytelevel_byte(0x41) == 'A' && vet_bytelevel_byte(0x7F) == -1);
    vet_err err = {0};
    vet_bpe *b = alphabet(&err);
    CHECK(b != NULL);
    if (!b) { fprintf(stderr, "%s\n", err.msg); return; }
    const char *texts[] = {"caf\xC3\xA9 \xF0\x9F\x90\xB6 \xE4\xB8\xAD\x01\x7F", "  tabs\t\tand\n\nlines  ",
                           "it's 12345 dogs", "", "\xE2\x80\xA8\xC2\x85"};
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        int32_t ids[64];
        size_t n = enc(b, texts[t], ids, 64);
        CHECK(n == strlen(texts[t]));  // an unseen character: one id per byte
        for (size_t i = 0; i < n && i < 64; i++) CHECK(ids[i] == (unsigned char)texts[t][i]);
        size_t len;
        char *back = vet_bpe_decode_bytes(b, ids, n, &len, &err);
        CHECK(back && len == strlen(texts[t]) && memcmp(back, texts[t], len) == 0);
        free(back);
    }
    int32_t cut[1] = {0xC3};  // the first byte of "é" alone: bytes, not an error
    size_t len;
    char *half = vet_bpe_decode_bytes(b, cut, 1, &len, &err);
    CHECK(half && len == 1 && (unsigned char)half[0] == 0xC3);
    free(half);
    int32_t out_of_range = 256;
    CHECK(vet_bpe_decode_bytes(b, &out_of_range, 1, &len, &err) == NULL);
    CHECK_CONTAINS(err.msg, "out of range");
    CHECK(vet_bpe_encode(b, "\xC3(", 2, &(int32_t *){NULL}, &(size_t){0}, &(size_t){0}, &err) == -1);
    CHECK_CONTAINS(err.msg, "not valid UTF-8");
    vet_bpe_free(b);
}

// A file that must be refused, and a piece of the message.
static void refused(const char *json, const char *want) {
    vet_err err = {0};
    const char *p = write_json("bad.json", json);
    vet_bpe *b = vet_bpe_load(p, &err);
    CHECK(b == NULL);
    if (b) { fprintf(stderr, "loaded: %s\n", json); vet_bpe_free(b); return; }
    CHECK(strncmp(err.msg, p, strlen(p)) == 0);  // "path: what is wrong"
    CHECK_CONTAINS(err.msg, want);
    CHECK(err.kind == VET_E_INPUT);
}

#define PT "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}"
#define M(x) "{" PT ", \"model\": {\"type\": \"BPE\", " x "}}"

static void malformed_files(void) {
    refused("{}", "no \"model\"");
    refused("[1, 2]", "not a JSON object");
    refused("{\"model\": {\"type\": \"BPE\"", "not valid JSON");
    refused(M("\"vocab\": {\"a\": 0}") "\xff", "not valid JSON");
    refused("{" PT ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\xC3\x28\": 0}}}", "not valid JSON");  // bad UTF-8
    refused("{" PT ", \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "only BPE");
    refused("{" PT ", \"model\": {\"vocab\": {\"a\": 0}}}", "model.type is missing");
    refused(M("\"vocab\": []"), "model.vocab");
    refused(M("\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]"), "\"c\" is not in the vocabulary");
    refused(M("\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]"), "\"ab\" is not in the vocabulary");
    refused(M("\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"ab\"]"), "not two pieces");
    refused(M("\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [[\"a\"]]"), "neither");
    refused(M("\"vocab\": {\"a\": -1}"), "out of range");
    refused(M("\"vocab\": {\"a\": 99999999}"), "out of range");
    refused(M("\"vocab\": {\"a\": \"0\"}"), "not an integer");
    refused(M("\"vocab\": {\"a\": 0, \"b\": 0}"), "given to both");
    refused(M("\"vocab\": {\"a\": 0, \"a\": 1}"), "not valid JSON");  // duplicate key
    refused(M("\"vocab\": {\"a\": 0, \"c\": 2}"), "id 1 has no piece");
    refused(M("\"vocab\": {\"a\": 0}, \"dropout\": 0.1"), "dropout");
    refused(M("\"vocab\": {\"a\": 0}, \"continuing_subword_prefix\": \"##\""), "continuing_subword_prefix");
    refused(M("\"vocab\": {\"a\": 0}, \"unk_token\": \"<unk>\""), "unk_token");
    refused("{\"normalizer\": {\"type\": \"NFKC\"}, " PT ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}",
            "normalizer NFKC is not supported");
    refused("{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}",
            "pre_tokenizer Metaspace is not supported");
    refused("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "no pre_tokenizer");
    refused("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"}, \"behavior\": \"Isolated\"},"
            " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "PCRE2 rejects");
    refused("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Isolated\"},"
            " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "no ByteLevel");
    refused("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Sideways\"},"
            " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "behavior \"Sideways\"");
    refused("{" PT ", \"decoder\": {\"type\": \"WordPiece\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}",
            "decoder WordPiece");
    refused("{" PT ", \"post_processor\": {\"type\": \"BertProcessing\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}",
            "post_processor BertProcessing");
    refused("{" PT ", \"added_tokens\": [{\"id\": 1, \"content\": \"<s>\", \"lstrip\": true}],"
            " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "lstrip");
    refused("{" PT ", \"added_tokens\": [{\"id\": 0, \"content\": \"<s>\"}],"
            " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "given to both");
    vet_err err = {0};
    CHECK(vet_bpe_load("/nonexistent/tokenizer.json", &err) == NULL && err.kind == VET_E_IO);
    CHECK(vet_bpe_load(tmpdir, &err) == NULL && err.kind == VET_E_IO);  // a directory
}

// Split behaviours and invert, Digits, and add_prefix_space, on the full alphabet (one id per byte,
// so the pieces show as the runs of ids a piece boundary separates: checked through merges).
static void split_behaviours(void) {
    vet_err err = {0};
    char text[2048];
    const char *pt[] = {
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"},"
        " \"behavior\": \"Removed\"}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}",
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": true},"
        " {\"type\": \"ByteLevel\", \"use_regex\": false}]}",
    };
    // vocab: a, b, 1, 2, ab, 12, -; merges a b, 1 2.
    for (int k = 0; k < 2; k++) {
        snprintf(text, sizeof text, "{\"pre_tokenizer\": %s, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1,"
                 " \"1\": 2, \"2\": 3, \"ab\": 4, \"12\": 5, \"-\": 6}, \"merges\": [\"a b\", \"1 2\"]}}", pt[k]);
        vet_bpe *b = vet_bpe_load(write_json("split.json", text), &err);
        CHECK(b != NULL);
        if (!b) { fprintf(stderr, "%s\n", err.msg); continue; }
        int32_t ids[8];
        size_t n = enc(b, k == 0 ? "a-b-ab" : "ab12", ids, 8);
        if (k == 0) CHECK(n == 3 && ids[0] == 0 && ids[1] == 1 && ids[2] == 4);  // '-' removed, a|b|ab
        else CHECK(n == 3 && ids[0] == 4 && ids[1] == 2 && ids[2] == 3);          // 1 and 2 apart: no "12"
        vet_bpe_free(b);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/vet-test-bpe.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(merges_string_and_pair_forms);
    RUN(merges_by_rank);
    RUN(added_tokens_in_text);
    RUN(ignore_merges);
    RUN(bytes_and_roundtrip);
    RUN(split_behaviours);
    RUN(malformed_files);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {}
    CHECK_EXIT();
}
