// test_tokenizer.c — lib/data/tokenizer.h: which file a path names (a file of either kind, a
// directory with one or both), the special ids and add_bos from tokenizer_config.json, config.json
// and the post-processor, decode to valid UTF-8, and the SentencePiece side when a model can be
// trained here (tests/fixtures/tokenize/make_model.sh needs spm_train).
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sha256.h"
#include "check.h"
#include "data/bytelevel.h"
#include "data/tokenizer.h"
#include "io/mp.h"

static char tmpdir[256];

static const char *path_in(const char *dir, const char *name) {
    static char p[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s%s%s", tmpdir, dir, *name ? "/" : "", name);
    return p[k];
}

static void put(const char *dir, const char *name, const char *text) {
    mkdir(path_in(dir, ""), 0700);
    FILE *f = fopen(path_in(dir, name), "wb");
    if (!f) { perror(name); exit(1); }
    fputs(text, f);
    fclose(f);
}

// A byte-level tokenizer.json: the 256 byte pieces (ids 0..255), "ab" (256), and added tokens
// <s> (257), </s> (258), <pad> (259); post_processor as given.
static void put_bpe(const char *dir, const char *post) {
    static char text[16384];
    size_t k = (size_t)snprintf(text, sizeof text, "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"post_processor\": %s,"
        " \"added_tokens\": [{\"id\": 257, \"content\": \"<s>\", \"special\": true},"
        " {\"id\": 258, \"content\": \"</s>\", \"special\": true}, {\"id\": 259, \"content\": \"<pad>\", \"special\": true}],"
        " \"model\": {\"type\": \"BPE\", \"merges\": [\"a b\"], \"vocab\": {", post);
    for (int c = 0; c < 256; c++) {
        char u[2];
        int m = vet_bytelevel_utf8((uint8_t)c, u);
        text[k++] = '"';
        if (u[0] == '"' || u[0] == '\\') text[k++] = '\\';
        memcpy(text + k, u, (size_t)m), k += (size_t)m;
        k += (size_t)snprintf(text + k, sizeof text - k, "\": %d, ", c);
    }
    snprintf(text + k, sizeof text - k, "\"ab\": 256, \"<s>\": 257, \"</s>\": 258, \"<pad>\": 259}}}");
    put(dir, "tokenizer.json", text);
}

#define TEMPLATE_BOS "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}," \
    " {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [257]}}}"

static void bpe_file_and_dir(void) {
    put_bpe("plain", "null");
    vet_err err = {0};
    vet_tokenizer *t = vet_tokenizer_load(path_in("plain", "tokenizer.json"), &err);
    CHECK(t != NULL);
    if (!t) { fprintf(stderr, "%s\n", err.msg); return; }
    CHECK(vet_tokenizer_kind(t) == VET_TOK_BPE);
    CHECK_STR(vet_tokenizer_kind_name(t), "bpe");
    CHECK_STR(vet_tokenizer_path(t), path_in("plain", "tokenizer.json"));
    char hex[65];
    CHECK(vet_sha256_file(path_in("plain", "tokenizer.json"), hex, &err) == 0);
    CHECK_STR(vet_tokenizer_sha256(t), hex);
    CHECK(vet_tokenizer_vocab_size(t) == 260);
    // No config, no template: the usual names; no BOS added (GPT-2, Qwen2, SmolLM2).
    CHECK(vet_tokenizer_bos_id(t) == 257 && vet_tokenizer_eos_id(t) == 258 && vet_tokenizer_add_bos(t) == 0);
    CHECK(vet_tokenizer_pad_id(t) == -1 && vet_tokenizer_unk_id(t) == -1);
    CHECK(vet_tokenizer_piece_to_id(t, "ab") == 256 && vet_tokenizer_piece_to_id(t, "abc") == -1);
    CHECK(vet_tokenizer_is_special(t, 258) && !vet_tokenizer_is_special(t, 256));
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    CHECK(vet_tokenizer_encode(t, "ab</s>", 6, &ids, &n, &cap, &err) == 0 && n == 2 && ids[0] == 256 && ids[1] == 258);
    char *s = vet_tokenizer_decode(t, ids, n, &err);
    CHECK_STR(s, "ab");
    free(s), free(ids);
    vet_tokenizer_free(t);
    t = vet_tokenizer_load(path_in("plain", ""), &err);  // the directory
    CHECK(t && vet_tokenizer_kind(t) == VET_TOK_BPE && strcmp(vet_tokenizer_choice(t), "") == 0);
    vet_tokenizer_free(t);
}

static void specials_from_configs(void) {
    vet_err err = {0};
    put_bpe("tmpl", TEMPLATE_BOS);  // Llama-3's way: the template adds the BOS
    vet_tokenizer *t = vet_tokenizer_load(path_in("tmpl", ""), &err);
    CHECK(t && vet_tokenizer_add_bos(t) == 1 && vet_tokenizer_bos_id(t) == 257);
    vet_tokenizer_free(t);
    put("tmpl", "tokenizer_config.json", "{\"add_bos_token\": false, \"eos_token\": {\"content\": \"<pad>\"},"
        " \"pad_token\": \"</s>\"}");
    t = vet_tokenizer_load(path_in("tmpl", ""), &err);
    CHECK(t && vet_tokenizer_add_bos(t) == 0 && vet_tokenizer_eos_id(t) == 259 && vet_tokenizer_pad_id(t) == 258);
    vet_tokenizer_free(t);
    put_bpe("cfg", "null");
    put("cfg", "config.json", "{\"bos_token_id\": 259, \"eos_token_id\": [258, 257]}");
    t = vet_tokenizer_load(path_in("cfg", ""), &err);
    CHECK(t && vet_tokenizer_bos_id(t) == 259 && vet_tokenizer_eos_id(t) == 258 && vet_tokenizer_add_bos(t) == 0);
    vet_tokenizer_free(t);
    put("cfg", "tokenizer_config.json", "{\"bos_token\": \"<nope>\"}");
    t = vet_tokenizer_load(path_in("cfg", ""), &err);
    CHECK(t == NULL);
    CHECK_CONTAINS(err.msg, "\"<nope>\" is not in the vocabulary");
    put("cfg", "tokenizer_config.json", "{\"bos_token\": ");
    CHECK(vet_tokenizer_load(path_in("cfg", ""), &err) == NULL);
    CHECK_CONTAINS(err.msg, "not valid JSON");
}

// A directory with both kinds: tokenizer_config.json's class decides. The tokenizer.model here is
// not a model, so taking it shows as SentencePiece's refusal.
static void directory_with_both(void) {
    vet_err err = {0};
    put_bpe("both", "null");
    put("both", "tokenizer.model", "not a sentencepiece model");
    put("both", "tokenizer_config.json", "{\"tokenizer_class\": \"PreTrainedTokenizerFast\"}");
    vet_tokenizer *t = vet_tokenizer_load(path_in("both", ""), &err);
    CHECK(t && vet_tokenizer_kind(t) == VET_TOK_BPE);
    if (t) CHECK_CONTAINS(vet_tokenizer_choice(t), "using tokenizer.json (tokenizer_config.json names PreTrainedTokenizerFast)");
    vet_tokenizer_free(t);
    put("both", "tokenizer_config.json", "{\"tokenizer_class\": \"LlamaTokenizer\"}");
    t = vet_tokenizer_load(path_in("both", ""), &err);
    CHECK(t == NULL);
    CHECK_CONTAINS(err.msg, "tokenizer.model");
    mkdir(path_in("empty", ""), 0700);
    CHECK(vet_tokenizer_load(path_in("empty", ""), &err) == NULL && err.kind == VET_E_IO);
    CHECK_CONTAINS(err.msg, "neither tokenizer.json nor tokenizer.model");
    CHECK(vet_tokenizer_load(path_in("nothing-here", ""), &err) == NULL && err.kind == VET_E_IO);
}

static void decode_utf8(void) {
    vet_err err = {0};
    put_bpe("dec", "null");
    vet_tokenizer *t = vet_tokenizer_load(path_in("dec", ""), &err);
    CHECK(t != NULL);
    if (!t) return;
    int32_t cafe[5] = {'c', 'a', 'f', 0xC3, 0xA9};  // "café", é as two byte tokens
    char *s = vet_tokenizer_decode(t, cafe, 5, &err);
    CHECK_STR(s, "caf\xC3\xA9");
    free(s);
    s = vet_tokenizer_decode(t, cafe, 4, &err);  // cut mid-character: U+FFFD, not an error
    CHECK_STR(s, "caf\xEF\xBF\xBD");
    free(s);
    size_t len;
    s = vet_tokenizer_decode_bytes(t, cafe, 4, &len, &err);
    CHECK(s && len == 4 && vet_tokenizer_complete_len(s, len) == 3);
    free(s);
    int32_t bad[4] = {0xFF, 'x', 0xE4, 0xB8};  // a byte that is never UTF-8, then half of 中
    s = vet_tokenizer_decode(t, bad, 4, &err);
    CHECK_STR(s, "\xEF\xBF\xBDx\xEF\xBF\xBD");
    free(s);
    CHECK(vet_tokenizer_complete_len("a\xF0\x9F\x90", 4) == 1 && vet_tokenizer_complete_len("a\xF0\x9F\x90\xB6", 5) == 5);
    CHECK(vet_tokenizer_complete_len("", 0) == 0 && vet_tokenizer_complete_len("ab", 2) == 2);
    vet_tokenizer_free(t);
}

static void sentencepiece_side(void) {
    char cmd[800];
    snprintf(cmd, sizeof cmd, "bash tests/fixtures/tokenize/make_model.sh '%s/spm' >/dev/null 2>&1", tmpdir);
    if (access("tests/fixtures/tokenize/make_model.sh", R_OK) != 0 || system(cmd) != 0)
        SKIP("cannot train a SentencePiece model here (spm_train, run from the repository top)");
    vet_err err = {0};
    vet_tokenizer *t = vet_tokenizer_load(path_in("spm", ""), &err);
    CHECK(t && vet_tokenizer_kind(t) == VET_TOK_SPM);
    if (!t) { fprintf(stderr, "%s\n", err.msg); return; }
    CHECK_STR(vet_tokenizer_kind_name(t), "spm");
    CHECK(vet_tokenizer_add_bos(t) == 1 && vet_tokenizer_bos_id(t) >= 0 && vet_tokenizer_eos_id(t) >= 0);
    CHECK(vet_tokenizer_is_special(t, vet_tokenizer_bos_id(t)));
    CHECK(vet_tokenizer_piece_to_id(t, "no-such-piece-here") == -1);
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    const char *text = "Cow. Fever and cough.";
    CHECK(vet_tokenizer_encode(t, text, strlen(text), &ids, &n, &cap, &err) == 0 && n > 0);
    char *back = vet_tokenizer_decode(t, ids, n, &err);
    CHECK_STR(back, text);
    free(back), free(ids);
    vet_tokenizer_free(t);
}

// A stream header's tokenizer map names its kind; a map without the field (a stream made before
// it) is SentencePiece, and so is no map at all.
static void header_kind(void) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_map(&pk, 2);
    mp_kv_str(&pk, "sha256", "ab");
    mp_kv_str(&pk, "kind", "bpe");
    msgpack_pack_map(&pk, 1);
    mp_kv_str(&pk, "sha256", "ab");
    msgpack_pack_map(&pk, 1);
    mp_kv_int(&pk, "kind", 7);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    CHECK(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *maps = u.data.via.array.ptr;
    char kind[16];
    vet_tokenizer_header_kind(&maps[0], kind, sizeof kind);
    CHECK_STR(kind, "bpe");
    vet_tokenizer_header_kind(&maps[1], kind, sizeof kind);
    CHECK_STR(kind, "spm");
    vet_tokenizer_header_kind(&maps[2], kind, sizeof kind);  // not a string: the old default
    CHECK_STR(kind, "spm");
    vet_tokenizer_header_kind(NULL, kind, sizeof kind);
    CHECK_STR(kind, "spm");
    vet_tokenizer_header_kind(&maps[0], kind, 2);  // cut to fit
    CHECK_STR(kind, "b");
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/vet-test-tok.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(bpe_file_and_dir);
    RUN(specials_from_configs);
    RUN(directory_with_both);
    RUN(decode_utf8);
    RUN(sentencepiece_side);
    RUN(header_kind);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {}
    CHECK_EXIT();
}
