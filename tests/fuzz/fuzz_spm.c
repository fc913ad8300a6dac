// fuzz_spm.c — lib/data/spm.h: a tokenizer.model that is not a valid SentencePiece model must be
// refused with a message, not crash. One that loads is used as vet uses it: encode a note,
// decode the ids, look up pieces.
#include "fuzz_util.h"

#include "data/spm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[300];
    fz_path(path, sizeof path, "tokenizer.model");
    fz_write(path, data, size);
    vet_err err = {0};
    vet_spm *s = vet_spm_load(path, &err);
    if (!s) { fz_check_msg(&err); return 0; }
    int V = vet_spm_vocab_size(s);
    if (V <= 0) abort();
    static const char text[] = "Goat. Fever 40.5 C, labial vesicles \xc3\xa9 \xff\n### Response:\n";
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    if (vet_spm_encode(s, text, sizeof text - 1, &ids, &n, &cap, &err) == 0) {
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= V) abort();
        char *back = vet_spm_decode(s, ids, n, &err);
        free(back);
    } else {
        fz_check_msg(&err);
    }
    free(ids);
    int32_t bad = V;   // one past the vocabulary: an error, not a read out of bounds
    char *d = vet_spm_decode(s, &bad, 1, &err);
    if (d) abort();
    int specials[4] = {vet_spm_bos_id(s), vet_spm_eos_id(s), vet_spm_pad_id(s), vet_spm_unk_id(s)};
    for (int i = 0; i < 4; i++) {
        const char *p = vet_spm_id_to_piece(s, specials[i]);
        if (p) (void)vet_spm_piece_to_id(s, p);
        (void)vet_spm_is_control(s, specials[i]);
    }
    for (int id = 0; id < V && id < 64; id++) (void)vet_spm_id_to_piece(s, id);
    (void)vet_spm_sha256(s);
    vet_spm_free(s);
    return 0;
}
