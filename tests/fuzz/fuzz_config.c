// fuzz_config.c — lib/io/config.h's config.json reader on arbitrary bytes. A config it accepts
// must pass validation, and must survive vet's own writer: saved and read back, it is the
// same shape (a config.json vet writes is one vet and transformers read).
#include "fuzz_util.h"

#include "io/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char in[300], out[300];
    fz_path(in, sizeof in, "config.json");
    fz_path(out, sizeof out, "saved.json");
    fz_write(in, data, size);
    vet_err err = {0};
    vet_config c;
    if (vet_config_load(&c, in, &err)) { fz_check_msg(&err); return 0; }
    if (vet_config_validate(&c, &err)) abort();
    if (vet_config_n_params(&c) <= 0) abort();
    (void)vet_config_weight_bytes(&c, 2);
    if (vet_config_save(&c, out, &err)) { fprintf(stderr, "save: %s\n", err.msg); abort(); }
    vet_config d;
    if (vet_config_load(&d, out, &err)) { fprintf(stderr, "reload: %s\n", err.msg); abort(); }
    if (strcmp(c.arch, d.arch) || c.dim != d.dim || c.hidden_dim != d.hidden_dim || c.n_layers != d.n_layers ||
        c.n_heads != d.n_heads || c.n_kv_heads != d.n_kv_heads || c.head_dim != d.head_dim ||
        c.vocab_size != d.vocab_size || c.max_pos != d.max_pos || c.rope_type != d.rope_type ||
        c.tie_embeddings != d.tie_embeddings || c.qkv_bias != d.qkv_bias || c.bos_id != d.bos_id ||
        c.eos_id != d.eos_id || c.pad_id != d.pad_id || c.n_eos != d.n_eos) {
        fprintf(stderr, "config changed on save + load\n");
        abort();
    }
    return 0;
}
