// test_bpe_nfc.c — the normalizer step of lib/data/bpe*: NFC (Qwen2/Qwen2.5's) on small
// hand-written tokenizer.json files. Each case is built so that the ids tell whether NFC ran:
// "e" + U+0301 is three byte pieces (e, 0xCC, 0x81) raw and one merged piece (0xC3 0xA9, "é")
// after NFC. Also: each stretch between raw-text added tokens is normalized on its own, a
// "normalized" added token is matched as its NFC form, a Sequence of NFCs is NFC, other
// normalizers are refused by name, invalid UTF-8 stays an error.
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "data/bpe.h"

static char tmpdir[256];

// Byte-level pieces: e, Ã (0xC3), © (0xA9), Ã© (é), Ì (0xCC), ģ (0x81), !, Ā (0x00); then the
// added tokens <x> (raw text, special) and "e" U+0301 "!" (normalized: matched as "é!").
#define VOCAB "\"e\": 0, \"\\u00c3\": 1, \"\\u00a9\": 2, \"\\u00c3\\u00a9\": 3, \"\\u00cc\": 4, \"\\u0123\": 5," \
              " \"!\": 6, \"\\u0100\": 7"
#define ADDED "{\"id\": 8, \"content\": \"<x>\", \"special\": true, \"normalized\": false}," \
              "{\"id\": 9, \"content\": \"e\\u0301!\", \"special\": false, \"normalized\": true}"

static vet_bpe *load_nz(const char *normalizer, vet_err *err) {
    char path[512], text[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    snprintf(text, sizeof text,
             "{\"added_tokens\": [" ADDED "], \"normalizer\": %s,"
             " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false},"
             " \"decoder\": {\"type\": \"ByteLevel\"},"
             " \"model\": {\"type\": \"BPE\", \"vocab\": {" VOCAB "}, \"merges\": [\"\\u00c3 \\u00a9\"]}}",
             normalizer);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
    return vet_bpe_load(path, err);
}

// The ids of text[0..len) as a string "a b c", or "error: message".
static const char *ids_of(const vet_bpe *b, const char *text, size_t len) {
    static char out[512];
    int32_t *ids = NULL;
    size_t n = 0, cap = 0, k = 0;
    vet_err err = {0};
    if (vet_bpe_encode(b, text, len, &ids, &n, &cap, &err) < 0) {
        snprintf(out, sizeof out, "error: %s", err.msg);
    } else {
        out[0] = 0;
        for (size_t i = 0; i < n && k < sizeof out - 16; i++) k += (size_t)snprintf(out + k, 16, i ? " %d" : "%d", ids[i]);
    }
    free(ids);
    return out;
}
#define IDS(b, s) ids_of(b, s, sizeof(s) - 1)

static void nfc_composes(void) {
    const char *nfc[] = {"{\"type\": \"NFC\"}", "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}]}",
                         "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, {\"type\": \"Sequence\","
                         " \"normalizers\": [{\"type\": \"NFC\"}]}]}"};
    for (int k = 0; k < 3; k++) {
        vet_err err = {0};
        vet_bpe *b = load_nz(nfc[k], &err);
        CHECK(b != NULL);
        if (!b) { fprintf(stderr, "%s\n", err.msg); continue; }
        CHECK_STR(IDS(b, "e\xCC\x81"), "3");               // e + U+0301 -> é -> one merged piece
        CHECK_STR(IDS(b, "\xC3\xA9"), "3");                // é as it is
        CHECK_STR(IDS(b, "e<x>\xCC\x81"), "0 8 4 5");      // a raw-text token parts the mark from its e
        CHECK_STR(IDS(b, "\xC3\xA9!"), "9");               // the normalized token, as its NFC form
        CHECK_STR(IDS(b, "e\xCC\x81!e"), "9 0");           // ... and written decomposed
        CHECK_STR(IDS(b, "\0e\xCC\x81"), "7 3");           // a NUL is a character like any other
        CHECK_STR(IDS(b, "!!"), "6 6");                    // ASCII: nothing to do
        CHECK_CONTAINS(IDS(b, "e\xCC"), "not valid UTF-8"); // a mark cut short: an error, as without NFC
        CHECK_CONTAINS(IDS(b, "e\xED\xA0\x80"), "not valid UTF-8");  // a surrogate
        // The normalized token decodes as tokenizers decodes it: its NFC form "é!" through the
        // ByteLevel decoder (é is in the byte-level alphabet: byte 0xE9), so 0xE9 '!'.
        int32_t nine = 9;
        size_t len = 0;
        char *d = vet_bpe_decode_bytes(b, &nine, 1, &len, &err);
        CHECK(d && len == 2 && (unsigned char)d[0] == 0xE9 && d[1] == '!');
        free(d);
        vet_bpe_free(b);
    }
}

static void none_leaves_text(void) {
    const char *none[] = {"null", "{\"type\": \"Sequence\", \"normalizers\": []}"};
    for (int k = 0; k < 2; k++) {
        vet_err err = {0};
        vet_bpe *b = load_nz(none[k], &err);
        CHECK(b != NULL);
        if (!b) { fprintf(stderr, "%s\n", err.msg); continue; }
        CHECK_STR(IDS(b, "e\xCC\x81"), "0 4 5");           // three byte pieces: nothing composed
        CHECK_STR(IDS(b, "\xC3\xA9!"), "3 6");             // the token's raw content is not "é!"
        CHECK_STR(IDS(b, "e\xCC\x81!"), "9");
        CHECK_CONTAINS(IDS(b, "e\xCC"), "not valid UTF-8");
        vet_bpe_free(b);
    }
}

static void others_refused(void) {
    const char *bad[][2] = {
        {"{\"type\": \"NFKC\"}", "normalizer NFKC is not supported"},
        {"{\"type\": \"NFD\"}", "normalizer NFD is not supported"},
        {"{\"type\": \"Lowercase\"}", "normalizer Lowercase is not supported"},
        {"{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, {\"type\": \"Lowercase\"}]}",
         "normalizer Lowercase is not supported"},
        {"{\"type\": \"Sequence\"}", "normalizer Sequence: no \"normalizers\" array"},
        {"{}", "normalizer (no type) is not supported"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        vet_err err = {0};
        vet_bpe *b = load_nz(bad[k][0], &err);
        CHECK(b == NULL);
        vet_bpe_free(b);
        CHECK_CONTAINS(err.msg, bad[k][1]);
        CHECK_CONTAINS(err.msg, "tokenizer.json: ");  // "path: what is wrong"
        CHECK(err.kind == VET_E_INPUT);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/vet-test-nfc.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(nfc_composes);
    RUN(none_leaves_text);
    RUN(others_refused);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {}
    CHECK_EXIT();
}
