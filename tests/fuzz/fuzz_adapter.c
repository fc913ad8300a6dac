// fuzz_adapter.c — lib/model/adapter.h: a PEFT adapter folder loaded onto a micro base model. The
// first byte picks which file is the input: even, adapter_config.json is the rest of the input
// and adapter_model.safetensors a valid one; odd, the other way round. The valid pair is a real
// adapter written by vet_adapter_save at start-up. A refused adapter must leave the model as it
// was (no LoRA); an accepted one must have the rank the config names.
#include "fuzz_util.h"

#include <sys/stat.h>

#include "model/adapter.h"
#include "io/config.h"
#include "model/model.h"

static vet_config cfg;
static unsigned char *good_cfg, *good_st;
static size_t good_cfg_n, good_st_n;
static char dir[300], cfg_path[400], st_path[400];

static void micro_config(vet_config *c) {
    vet_err err;
    if (vet_config_preset(c, "tiny", &err)) abort();
    c->dim = 16, c->hidden_dim = 32, c->n_layers = 2, c->n_heads = 2, c->n_kv_heads = 1, c->head_dim = 8;
    vet_config_set_vocab(c, 64);
    c->max_pos = 64;
    if (vet_config_validate(c, &err)) { fprintf(stderr, "%s\n", err.msg); abort(); }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    micro_config(&cfg);
    fz_path(dir, sizeof dir, "adapter");
    snprintf(cfg_path, sizeof cfg_path, "%s/adapter_config.json", dir);
    snprintf(st_path, sizeof st_path, "%s/adapter_model.safetensors", dir);
    vet_err err;
    vet_model m;
    memset(&m, 0, sizeof m);
    if (vet_model_init(&m, &cfg, 1, &err) ||
        vet_model_add_lora(&m, 2, 4, 0.05f, 0, VET_LORA_Q | VET_LORA_V | VET_LORA_DOWN, 7, &err) ||
        vet_adapter_save(dir, &m, "micro", &err)) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    vet_model_free(&m);
    good_cfg = fz_read(cfg_path, &good_cfg_n);
    good_st = fz_read(st_path, &good_st_n);
    if (!good_cfg || !good_st) abort();
    // Seeds in the harness's own input form: mode byte, then the file.
    unsigned char *s = malloc(1 + (good_st_n > good_cfg_n ? good_st_n : good_cfg_n));
    s[0] = 0, memcpy(s + 1, good_cfg, good_cfg_n);
    fz_seed("config", s, 1 + good_cfg_n);
    s[0] = 1, memcpy(s + 1, good_st, good_st_n);
    fz_seed("weights", s, 1 + good_st_n);
    free(s);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) {
        fz_write(cfg_path, good_cfg, good_cfg_n);
        fz_write(st_path, data + 1, size - 1);
    } else {
        fz_write(cfg_path, data + 1, size - 1);
        fz_write(st_path, good_st, good_st_n);
    }
    vet_err err = {0};
    vet_model m;
    memset(&m, 0, sizeof m);
    if (vet_model_init(&m, &cfg, 1, &err)) abort();
    if (vet_adapter_load(&m, dir, &err)) {
        fz_check_msg(&err);
        if (m.has_lora || m.lora_mem) abort();   // refused: the model is as it was
    } else {
        if (!m.has_lora || m.lora.r <= 0) abort();
    }
    vet_model_free(&m);
    return 0;
}
