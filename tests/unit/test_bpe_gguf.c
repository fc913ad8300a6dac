// test_bpe_gguf.c — a byte-level BPE tokenizer read from a GGUF file's metadata (data/bpe_gguf.c
// through tokenizer.h), on tests/fixtures/gguf/tiny_tokenizer.gguf, written by gguf-py's
// GGUFWriter (mk_tiny_tokenizer.py beside it): ids 0-2 control tokens, 3 <think> user-defined,
// 4 "<bad ctl>" control but spelled with a space (so not matched whole), 5-260 the bytes in byte
// order, 261- one per merge; pre "smollm" (digits split one by one, then GPT-2's regex).
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "data/tokenizer.h"

static char fixture[600], tmpdir[256];

// The canonical hash of the fixture's tokenizer (docs/formats.md): the stdlib writer
// (tests/helpers/mk-gguf-tok.py) and GGUFWriter give different files with this same hash.
#define TINY_SHA "01627ded538559b6ab76df43852fbdeaa1b317c5fd7b629faec5ae92257a1806"

static int byte_id(unsigned char c) { return 5 + c; }

static int encode_is(const vet_tokenizer *t, const char *text, const int32_t *want, size_t nwant) {
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    vet_err err = {0};
    int ok = vet_tokenizer_encode(t, text, strlen(text), &ids, &n, &cap, &err) == 0 && n == nwant &&
             memcmp(ids, want, n * sizeof *ids) == 0;
    if (!ok) {
        fprintf(stderr, "encode \"%s\": got", text);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, " (%s)\n", err.msg);
    }
    free(ids);
    return ok;
}

static void loads_the_metadata(void) {
    vet_err err = {0};
    vet_tokenizer *t = vet_tokenizer_load(fixture, &err);
    CHECK(t != NULL);
    if (!t) { fprintf(stderr, "%s\n", err.msg); return; }
    CHECK(vet_tokenizer_kind(t) == VET_TOK_BPE);
    CHECK_STR(vet_tokenizer_kind_name(t), "gguf-bpe");
    CHECK_STR(vet_tokenizer_path(t), fixture);
    CHECK_STR(vet_tokenizer_sha256(t), TINY_SHA);
    CHECK(vet_tokenizer_vocab_size(t) == 280);
    CHECK(vet_tokenizer_bos_id(t) == 1 && vet_tokenizer_eos_id(t) == 2);
    CHECK(vet_tokenizer_pad_id(t) == 2 && vet_tokenizer_unk_id(t) == 0);
    CHECK(vet_tokenizer_add_bos(t) == 0);
    CHECK(vet_tokenizer_is_special(t, 0) && vet_tokenizer_is_special(t, 1) && vet_tokenizer_is_special(t, 2));
    CHECK(!vet_tokenizer_is_special(t, 3) && !vet_tokenizer_is_special(t, 4) && !vet_tokenizer_is_special(t, 264));
    CHECK_STR(vet_tokenizer_id_to_piece(t, 264), "hello");
    CHECK_STR(vet_tokenizer_id_to_piece(t, 4), "<badĠctl>");  // respelled in the byte alphabet
    CHECK(vet_tokenizer_piece_to_id(t, "Ġworld") == 269);
    vet_tokenizer_free(t);
}

static void encodes_and_decodes(void) {
    vet_err err = {0};
    vet_tokenizer *t = vet_tokenizer_load(fixture, &err);
    if (!t) { CHECK(t != NULL); return; }
    const int32_t hw[] = {264, 269};
    CHECK(encode_is(t, "hello world", hw, 2));
    const int32_t chat[] = {1, 264, 2};  // control tokens whole, never merged into
    CHECK(encode_is(t, "<|im_start|>hello<|im_end|>", chat, 3));
    // <think> is matched whole; "<bad ctl>" is not (a control token spelled outside the alphabet);
    // " cat" merges c+a, then ca+t before Ġ+ca (rank order); digits split one by one, so the two
    // spaces before them are one piece (ĠĠ, 274).
    const int32_t mixed[] = {3, 264, 37, byte_id('<'), byte_id('b'), byte_id('a'), byte_id('d'), 37, byte_id('c'),
                             byte_id('t'), byte_id('l'), byte_id('>'), 37, 277, 274, byte_id('1'), byte_id('2')};
    const char *text = "<think>hello <bad ctl> cat  12";
    CHECK(encode_is(t, text, mixed, sizeof mixed / sizeof mixed[0]));
    char *back = vet_tokenizer_decode(t, mixed, sizeof mixed / sizeof mixed[0], &err);
    CHECK_STR(back, text);  // <think> is not special: it decodes to itself
    free(back);
    back = vet_tokenizer_decode(t, chat, 3, &err);
    CHECK_STR(back, "hello");  // control tokens decode to nothing
    free(back);
    const int32_t cafe[] = {byte_id(0xC3), byte_id(0xA9)};  // é, byte by byte
    back = vet_tokenizer_decode(t, cafe, 2, &err);
    CHECK_STR(back, "\xC3\xA9");
    free(back);
    vet_tokenizer_free(t);
}

// The magic decides, not the name: a GGUF called tokenizer.json is still a GGUF.
static void magic_not_name(void) {
    char dst[600], cmd[1400];
    snprintf(dst, sizeof dst, "%s/tokenizer.json", tmpdir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", fixture, dst);
    CHECK(system(cmd) == 0);
    vet_err err = {0};
    vet_tokenizer *t = vet_tokenizer_load(dst, &err);
    CHECK(t && strcmp(vet_tokenizer_kind_name(t), "gguf-bpe") == 0);
    if (t) CHECK_STR(vet_tokenizer_sha256(t), TINY_SHA);  // the metadata's hash, whatever the file's name
    vet_tokenizer_free(t);
}

// Every prefix of the file is refused with a message (never a crash, never a half tokenizer),
// but for those that lack only the padding GGUFWriter puts after the metadata (no tensors follow).
static void every_prefix_refused(void) {
    FILE *f = fopen(fixture, "rb");
    if (!f) { CHECK(f != NULL); return; }
    static unsigned char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char cut[600];
    snprintf(cut, sizeof cut, "%s/cut.gguf", tmpdir);
    int refused = 0;
    for (size_t k = 4; k < n; k += (k < 512 ? 1 : 37)) {
        FILE *o = fopen(cut, "wb");
        fwrite(buf, 1, k, o);
        fclose(o);
        vet_err err = {0};
        vet_tokenizer *t = vet_tokenizer_load(cut, &err);
        if (t) {
            if (n - k >= 32) fprintf(stderr, "a prefix of %zu of %zu bytes loaded\n", k, n);
            CHECK(n - k < 32);
            vet_tokenizer_free(t);
            break;
        }
        refused += err.msg[0] != 0;
    }
    CHECK(refused > 500);
}

int main(void) {
    const char *top = getenv("VET_TOP");
    snprintf(fixture, sizeof fixture, "%s/tests/fixtures/gguf/tiny_tokenizer.gguf", top && *top ? top : ".");
    snprintf(tmpdir, sizeof tmpdir, "%s/vet-bpe-gguf-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(loads_the_metadata);
    RUN(encodes_and_decodes);
    RUN(magic_not_name);
    RUN(every_prefix_refused);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) return 1;
    CHECK_EXIT();
}
