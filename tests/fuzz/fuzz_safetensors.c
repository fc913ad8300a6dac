// fuzz_safetensors.c — lib/io/safetensors.h: the header, the tensor table and the fp32 conversion
// on arbitrary files. An input that starts with '{' is instead a model.safetensors.index.json
// beside one valid shard (model-00001-of-00002.safetensors, made here), read as a model folder.
// Every tensor handed out must hold exactly dtype x shape bytes and convert to fp32 (a read
// past the end of the mapping faults, which libFuzzer records as a crash).
#include "fuzz_util.h"

#include <math.h>
#include <sys/stat.h>

#include "io/safetensors.h"

static char shard_dir[300];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fz_path(shard_dir, sizeof shard_dir, "model");
    mkdir(shard_dir, 0777);
    vet_err err;
    vet_st_writer *w = vet_st_writer_new();
    float a[6] = {1, 2, 3, 4, 5, 6}, b[2] = {7, 8};
    if (!w || vet_st_writer_add_f32_as(w, "model.embed_tokens.weight", VET_DT_BF16, 2, (int64_t[]){2, 3}, a, &err) ||
        vet_st_writer_add_f32_as(w, "model.norm.weight", VET_DT_F32, 1, (int64_t[]){2}, b, &err))
        abort();
    char p[400];
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", shard_dir);
    if (vet_st_writer_write(w, p, &err)) { fprintf(stderr, "%s\n", err.msg); abort(); }
    vet_st_writer_free(w);
    size_t n;
    unsigned char *bytes = fz_read(p, &n);
    fz_seed("shard.safetensors", bytes, n);
    free(bytes);
    static const char index[] = "{\"metadata\": {\"total_size\": 20}, \"weight_map\": {"
                                "\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\", "
                                "\"model.norm.weight\": \"model-00001-of-00002.safetensors\"}}";
    fz_seed("index.json", index, sizeof index - 1);
    return 0;
}

static void check_table(const vet_tensors *t) {
    vet_err err;
    const char *fmt = vet_tensors_meta(t, "format");
    if (fmt) (void)strlen(fmt);
    for (size_t i = 0; i < vet_tensors_count(t); i++) {
        const vet_tensor_ref *r = vet_tensors_at(t, i);
        if (!r || vet_tensors_find(t, r->name) != r) abort();   // sorted, names unique
        int64_t numel = vet_tensor_numel(r);
        if (numel < 0 || (uint64_t)numel * vet_dtype_size(r->dtype) != r->nbytes) abort();
        if (r->nbytes > (16u << 20)) continue;
        float *out = malloc((size_t)(numel ? numel : 1) * sizeof *out);
        if (!out) abort();
        if (vet_tensor_convert_f32(r, r->ndim, r->shape, out, &err)) abort();   // its own shape: must work
        // As a weight it may be refused only for a NaN or Inf among the values, never otherwise.
        int finite = 1;
        for (int64_t k = 0; k < numel; k++) finite &= isfinite(out[k]) != 0;
        if ((vet_tensor_read_f32(r, r->ndim, r->shape, out, &err) == 0) != finite) abort();
        int64_t wrong[2] = {numel + 1, 1};
        if (vet_tensor_read_f32(r, 2, wrong, out, &err) == 0) abort();     // another shape: must not
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vet_err err = {0};
    vet_tensors *t;
    if (size && data[0] == '{') {
        char p[400];
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", shard_dir);
        fz_write(p, data, size);
        t = vet_tensors_open_dir(shard_dir, &err);
    } else {
        char p[300];
        fz_path(p, sizeof p, "in.safetensors");
        fz_write(p, data, size);
        t = vet_tensors_open_file(p, &err);
    }
    if (!t) { fz_check_msg(&err); return 0; }
    check_table(t);
    vet_tensors_close(t);
    return 0;
}
