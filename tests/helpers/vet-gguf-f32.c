// vet-gguf-f32 — a test tool for the reference suite: every tensor of a GGUF file dequantized to
// fp32 by io/ggml_dequant.h, written to a safetensors file under the tensor's GGUF name, shape
// in row-major order (ne reversed), so PyTorch/gguf-py can compare bit for bit.
//
//   vet-gguf-f32 FILE.gguf OUT.safetensors [--raw]
//
// --raw: vet_ggml_dequant alone (NaN/Inf pass through); without it vet_gguf_tensor_f32, which
// refuses a non-finite weight as a model load does.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ggml_dequant.h"
#include "io/gguf.h"
#include "io/safetensors.h"

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--raw"))) {
        fputs("usage: vet-gguf-f32 FILE.gguf OUT.safetensors [--raw]\n", stderr);
        return 2;
    }
    int raw = argc == 4;
    vet_err err = {0};
    vet_gguf *g = vet_gguf_open(argv[1], &err);
    if (!g) goto fail;
    vet_st_writer *w = vet_st_writer_new();
    for (size_t i = 0; i < vet_gguf_n_tensors(g); i++) {
        const vet_gguf_tensor *t = vet_gguf_tensor_at(g, i);
        float *x = malloc((size_t)(t->n_elems ? t->n_elems : 1) * sizeof(float));
        if (!x) return fputs("vet-gguf-f32: out of memory\n", stderr), 3;
        int rc = raw ? vet_ggml_dequant(t->type, t->data, t->n_elems, x, &err) : vet_gguf_tensor_f32(g, t, x, &err);
        int64_t shape[VET_GGUF_MAX_DIMS];
        for (int d = 0; d < t->n_dims; d++) shape[d] = t->ne[t->n_dims - 1 - d];
        if (rc || vet_st_writer_add_owned(w, t->name, VET_DT_F32, t->n_dims, shape, x, &err)) {
            if (rc) free(x);
            goto fail;
        }
    }
    if (vet_st_writer_write(w, argv[2], &err)) goto fail;
    vet_st_writer_free(w);
    vet_gguf_close(g);
    return 0;
fail:
    fprintf(stderr, "vet-gguf-f32: %s\n", err.msg);
    return 1;
}
