// fuzz_bpe.c — lib/data/bpe.h: a tokenizer.json that is not a byte-level BPE vet can honour must
// be refused with a message, not crash. The input is a mode byte then the file. One that loads is
// used as vet uses it: encode a note (special tokens, Unicode, runs of spaces and digits in it),
// check every id, decode, look up pieces; mode bit 0 makes the run of spaces 20,000 long (one
// piece: the merge heap and PCRE2's stack), bit 1 encodes the file's own bytes as text too.
#include "fuzz_util.h"

#include "data/bpe.h"

static void use(const vet_bpe *b, const char *text, size_t len) {
    vet_err err = {0};
    int V = vet_bpe_vocab_size(b);
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    if (vet_bpe_encode(b, text, len, &ids, &n, &cap, &err) == 0) {
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= V) abort();
        size_t blen;
        char *back = vet_bpe_decode_bytes(b, ids, n, &blen, &err);
        if (!back) abort();  // ids from encode always decode
        free(back);
    } else {
        fz_check_msg(&err);
    }
    free(ids);
    int32_t bad = V;  // one past the vocabulary: an error, not a read out of bounds
    size_t blen;
    if (vet_bpe_decode_bytes(b, &bad, 1, &blen, &err)) abort();
    for (int id = 0; id < V && id < 64; id++) {
        const char *p = vet_bpe_id_to_piece(b, id);
        if (!p || vet_bpe_piece_to_id(b, p) != id) abort();
        (void)vet_bpe_is_special(b, id);
    }
    (void)vet_bpe_sha256(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char path[300];
    fz_path(path, sizeof path, "tokenizer.json");
    fz_write(path, data + 1, size - 1);
    vet_err err = {0};
    vet_bpe *b = vet_bpe_load(path, &err);
    if (!b) { fz_check_msg(&err); return 0; }
    static const char note[] = "Goat. Fever 40.5 C, it's labial vesicles \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x90\x90"
                               "<|begin_of_text|><|im_end|>  \t\n\n   12345678\xc2\x85 end";
    use(b, note, sizeof note - 1);
    static char spaces[20000];
    memset(spaces, ' ', sizeof spaces);  // one long piece: the merge heap and the regex stack
    use(b, spaces, (data[0] & 1) ? sizeof spaces : 100);
    if (data[0] & 2) use(b, (const char *)data + 1, size - 1);  // the file's own bytes as text
    vet_bpe_free(b);
    return 0;
}
