// models.c — the models of one run, an ensemble's checked against the first (see models.h).
#include "generate/models.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/sha256.h"
#include "data/tokenizer.h"
#include "io/gguf.h"
#include "io/gguf_config.h"
#include "model/adapter.h"
#include "model/model_save.h"

int vet_gen_models_check_member(const vet_model *first, const char *first_dir, const vet_model *mk,
                                const char *dir, vet_err *err) {
    int V = first->cfg.vocab_size;
    if (mk->cfg.vocab_size != V)
        return vet_errf(err, "%s: a vocabulary of %d tokens, but %s has %d: the models of an ensemble must share one "
                        "tokenizer", dir, mk->cfg.vocab_size, first_dir, V);
    int same_eos = mk->cfg.n_eos == first->cfg.n_eos;
    for (int i = 0; same_eos && i < first->cfg.n_eos; i++) same_eos = mk->cfg.eos_ids[i] == first->cfg.eos_ids[i];
    if (!same_eos)
        return vet_errf(err, "%s: its end-of-sequence ids differ from those of %s (config.json eos_token_id): the "
                        "models of an ensemble must share one tokenizer", dir, first_dir);
    return 0;
}

// A GGUF model ships its tokenizer in its tokenizer.ggml.* keys (when it has them): the
// tokenizer in use must be that one, compared as the tokenizer reader hashes it.
static int check_gguf_tokenizer(const char *path, const char *tok_sha, const char *tok_path, vet_err *err) {
    if (strcmp(path, tok_path) == 0) return 0;  // the tokenizer in use is this file's
    vet_gguf *g = vet_gguf_open(path, err);
    if (!g) return -1;
    int has = vet_gguf_has(g, "tokenizer.ggml.model");
    vet_gguf_close(g);
    if (!has) return 0;  // no tokenizer inside: its vocabulary was checked
    vet_tokenizer *t = vet_tokenizer_load(path, err);
    if (!t) return -1;
    int rc = strcmp(vet_tokenizer_sha256(t), tok_sha) == 0 ? 0
             : vet_errf(err, "%s holds a tokenizer of sha256 %s, but the tokenizer in use (%s) has %s: a model decodes "
                        "with the tokenizer it was trained with (give --tokenizer %s)", path, vet_tokenizer_sha256(t),
                        tok_path, tok_sha, path);
    vet_tokenizer_free(t);
    return rc;
}

int vet_gen_models_check_tokenizer(const char *dir, const char *tok_sha, const char *tok_path, vet_err *err) {
    if (vet_path_is_gguf(dir)) return check_gguf_tokenizer(dir, tok_sha, tok_path, err);
    static const char *const names[] = {"tokenizer.model", "tokenizer.json"};
    char shipped[2][4096], hex[2][65];
    int n = 0;
    for (int i = 0; i < 2; i++) {
        struct stat st;
        snprintf(shipped[n], sizeof shipped[n], "%s/%s", dir, names[i]);
        if (stat(shipped[n], &st) != 0) continue;
        if (vet_sha256_file(shipped[n], hex[n], err)) return -1;
        if (strcmp(hex[n], tok_sha) == 0) return 0;  // a directory may hold both kinds: one is the one in use
        n++;
    }
    if (n == 0) return 0;  // a model without its tokenizer: its vocabulary was checked
    return vet_errf(err, "%s has sha256 %s, but the tokenizer in use (%s) has %s: a model decodes with the "
                    "tokenizer it was trained with (the models of an ensemble must share one)", shipped[0], hex[0],
                    tok_path, tok_sha);
}

// Loads every model, then checks the tokenizers: a model that does not load is named first.
static int load_all(vet_gen_models *ms, const char *const *dirs, int k, const char *adapter, vet_err *err) {
    if (vet_model_load(&ms->m[0], dirs[0], err)) return -1;
    ms->k = 1;
    if (adapter) {
        if (vet_adapter_load(&ms->m[0], adapter, err)) return -1;
        vet_model_merge_lora(&ms->m[0]);
    }
    for (int i = 1; i < k; i++) {
        if (vet_model_load(&ms->m[i], dirs[i], err)) return -1;
        ms->k = i + 1;
        if (vet_gen_models_check_member(&ms->m[0], dirs[0], &ms->m[i], dirs[i], err)) return -1;
    }
    return 0;
}

int vet_gen_models_load(vet_gen_models *ms, const char *const *dirs, int k, const char *adapter,
                        const char *tok_sha, const char *tok_path, vet_err *err) {
    memset(ms, 0, sizeof *ms);
    if (k < 1 || k > VET_GEN_MAX_MODELS)
        return vet_err_kindf(err, VET_E_USAGE, "%d models: an ensemble has 1 to %d", k, VET_GEN_MAX_MODELS);
    if (k > 1 && adapter)
        return vet_err_kindf(err, VET_E_USAGE, "an adapter with %d models: an adapter belongs to one base", k);
    int rc = load_all(ms, dirs, k, adapter, err);
    for (int i = 0; rc == 0 && i < k; i++) rc = vet_gen_models_check_tokenizer(dirs[i], tok_sha, tok_path, err);
    if (rc) vet_gen_models_free(ms);
    return rc;
}

void vet_gen_models_free(vet_gen_models *ms) {
    for (int i = 0; i < ms->k; i++) vet_model_free(&ms->m[i]);
    ms->k = 0;
}
