// fuzz_gguf_tokenizer.c — lib/data/tokenizer.h on a GGUF file (the input, as it is): a GGUF whose
// tokenizer.ggml.* metadata is not a byte-level BPE ("gpt2", data/bpe_gguf.c) or a SentencePiece
// vocabulary ("llama", data/spm_gguf.c: the ModelProto built from it goes through libsentencepiece)
// vet can honour must be refused with a message, not crash. One that loads is used as vet uses it: encode a note (special tokens,
// Unicode, digits and runs of spaces in it), check every id, decode, look pieces up.
#include "fuzz_util.h"

#include "data/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4 || memcmp(data, "GGUF", 4) != 0) return 0;  // the other kinds have their own harnesses
    char path[300];
    fz_path(path, sizeof path, "model.gguf");
    fz_write(path, data, size);
    vet_err err = {0};
    vet_tokenizer *t = vet_tokenizer_load(path, &err);
    if (!t) { fz_check_msg(&err); return 0; }
    static const char note[] = "<|im_start|>Goat. Fever 40.5 C, it's ² labial vesicles \xc3\xa9 \xe4\xb8\xad "
                               "\xf0\x9f\x90\x90<think>  \t\n\n   12345678\xc2\x85<|im_end|> end";
    int V = vet_tokenizer_vocab_size(t);
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    if (vet_tokenizer_encode(t, note, sizeof note - 1, &ids, &n, &cap, &err) == 0) {
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= V) abort();
        char *back = vet_tokenizer_decode(t, ids, n, &err);
        if (!back) abort();  // ids from encode always decode
        free(back);
    } else {
        fz_check_msg(&err);
    }
    free(ids);
    int specials[4] = {vet_tokenizer_bos_id(t), vet_tokenizer_eos_id(t), vet_tokenizer_pad_id(t), vet_tokenizer_unk_id(t)};
    for (int k = 0; k < 4; k++)
        if (specials[k] < -1 || specials[k] >= V) abort();
    if (vet_tokenizer_add_bos(t) && specials[0] < 0) abort();
    for (int id = 0; id < V && id < 64; id++) {
        const char *p = vet_tokenizer_id_to_piece(t, id);
        if (!p || vet_tokenizer_piece_to_id(t, p) != id) abort();
    }
    if (strlen(vet_tokenizer_sha256(t)) != 64) abort();
    vet_tokenizer_free(t);
    return 0;
}
