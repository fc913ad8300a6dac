// fuzz_gguf.c — lib/io/gguf.h on arbitrary files: the header, every metadata value and the
// tensor table. Whatever the reader hands out must be what its header promises: keys findable
// by name, string arrays whose elements lie inside the file, tensors whose bytes lie inside
// the mapping and match type x dims (touching each byte: a read past the mapping faults, which
// libFuzzer records as a crash).
#include "fuzz_util.h"

#include "io/gguf.h"

static void walk_kv(const vet_gguf *g, const vet_gguf_kv *kv) {
    if (vet_gguf_find_kv(g, kv->key) != kv) abort();
    vet_err err;
    if (kv->type == VET_GGUF_STRING) {
        char *s = vet_gguf_get_str(g, kv->key, &err);
        if (!s) fz_check_msg(&err);
        free(s);
    }
    if (kv->type != VET_GGUF_ARRAY) return;
    volatile uint8_t sink = 0;
    for (uint64_t i = 0; i < kv->n && i < 4096; i++) {
        if (kv->arr_type == VET_GGUF_STRING) {
            uint64_t len = 0;
            const char *s = vet_gguf_array_str(g, kv, i, &len);
            if (!s) abort();
            for (uint64_t k = 0; k < len; k++) sink ^= (uint8_t)s[k];
        } else {
            double d = vet_gguf_array_float(kv, i);   // may be NaN or huge: only compared
            sink ^= (uint8_t)vet_gguf_array_int(kv, i) ^ (uint8_t)(d == d);
        }
    }
    (void)sink;
}

static void walk_tensor(const vet_gguf *g, const vet_gguf_tensor *t) {
    if (vet_gguf_find_tensor(g, t->name) != t) abort();
    size_t row = vet_ggml_row_bytes(t->type, t->ne[0]);
    if (!row || row * (size_t)(t->n_elems / t->ne[0]) != t->nbytes) abort();
    volatile uint8_t sink = 0;
    for (size_t k = 0; k < t->nbytes; k++) sink ^= t->data[k];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[300];
    fz_path(path, sizeof path, "in.gguf");
    fz_write(path, data, size);
    vet_err err;
    vet_gguf *g = vet_gguf_open(path, &err);
    if (!g) {
        fz_check_msg(&err);
        return 0;
    }
    for (size_t i = 0; i < vet_gguf_n_kv(g); i++) walk_kv(g, vet_gguf_kv_at(g, i));
    for (size_t i = 0; i < vet_gguf_n_tensors(g); i++) walk_tensor(g, vet_gguf_tensor_at(g, i));
    uint32_t u;
    float f;
    if (vet_gguf_get_u32(g, "llama.block_count", &u, &err)) fz_check_msg(&err);
    if (vet_gguf_get_f32(g, "llama.rope.freq_base", &f, &err)) fz_check_msg(&err);
    vet_gguf_close(g);
    return 0;
}
