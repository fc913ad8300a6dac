// export.c — the vet-export job (export.h): load, merge, describe, write.
#include "export/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export_impl.h"
#include "io/gguf_config.h"
#include "model/adapter.h"
#include "model/model_save.h"

int vet_export_parse_type(const char *s, uint32_t *type, vet_err *err) {
    if (!strcmp(s, "f32")) *type = VET_GGML_F32;
    else if (!strcmp(s, "f16")) *type = VET_GGML_F16;
    else if (!strcmp(s, "q8_0")) *type = VET_GGML_Q8_0;
    else return vet_err_kindf(err, VET_E_USAGE, "--type %s: choose f32, f16 or q8_0", s);
    return 0;
}

// general.name: the model directory's last component ("SmolLM2-135M"), as llama.cpp's converter
// names a model from its directory.
static void model_name(const char *dir, char *out, size_t n) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t s = len;
    while (s > 0 && dir[s - 1] != '/') s--;
    snprintf(out, n, "%.*s", (int)(len - s), dir + s);
}

// The tokenizer half written to a writer that is thrown away, before the model is loaded: a
// tokenizer GGUF cannot hold is refused in a second, not after a 7B model's minute of loading.
static int vocab_dry_run(const char *dir, vet_err *err) {
    if (vet_path_is_gguf(dir)) return 0;  // copied key for key: nothing to refuse early
    vet_config c;
    if (vet_config_load(&c, dir, err) < 0) return -1;
    vet_gguf_writer *w = vet_gguf_writer_new(err);
    if (!w) return -1;
    vet_export_result scratch = {0};
    int rc = export_vocab(w, dir, c.vocab_size, &scratch, err) < 0 ? -1 : 0;
    vet_gguf_writer_free(w);
    return rc;
}

int vet_export_gguf(const vet_export_opts *o, vet_export_result *r, vet_err *err) {
    memset(r, 0, sizeof *r);
    if (vocab_dry_run(o->model_dir, err) < 0) return -1;
    vet_model m;
    if (vet_model_load(&m, o->model_dir, err) < 0) return -1;
    int rc = export_check_config(&m.cfg, err);
    if (rc) vet_err_prefix(err, "%s/config.json", o->model_dir);
    if (!rc && o->adapter_dir) {   // as vet-train --merge: W += scale * B A
        rc = vet_adapter_load(&m, o->adapter_dir, err);
        if (!rc) vet_model_merge_lora(&m);
    }
    snprintf(r->arch, sizeof r->arch, "%s", m.cfg.arch);
    vet_gguf_writer *w = rc ? NULL : vet_gguf_writer_new(err);
    if (!rc && !w) rc = -1;
    char name[256];
    model_name(o->model_dir, name, sizeof name);
    export_srcs ss = {0};
    if (!rc) rc = export_model(w, &m, o->type, name, &ss, r, err);
    if (!rc && export_vocab(w, o->model_dir, m.cfg.vocab_size, r, err) < 0) rc = -1;
    if (!rc) {
        r->n_tensors = vet_gguf_writer_n_tensors(w), r->n_kv = vet_gguf_writer_n_kv(w);
        rc = vet_gguf_write(w, o->out, err);
    }
    vet_gguf_writer_free(w);
    free(ss.src);
    vet_model_free(&m);
    return rc;
}
