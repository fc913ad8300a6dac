// setup.c — what a run trains on: the packed rows and the model (see run.h).
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/input_file.h"
#include "base/rng.h"
#include "data/tokenizer.h"
#include "io/config.h"
#include "io/gguf_config.h"
#include "io/hfdir.h"
#include "model/adapter.h"
#include "train/run.h"

// LoRA's limits (model/adapter.h: the ones every adapter reader applies) against the base's
// config.json, before the data and the weights are read: vet-train never writes an adapter that
// vet-generate and vet-train --adapter would refuse. An --adapter's own values are checked when
// it loads; --init and --full train no adapter.
// Also, before any work: --merge and --full write a Hugging Face directory, whose config.json
// cannot hold a GGUF's per-frequency rope factors (rope_freqs.weight).
int train_preflight(train_run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
    int writes_hf = o->merge || o->full;
    if (!o->base_dir || (!writes_hf && (o->full || o->adapter_in))) return 0;
    vet_config bc;
    if (vet_model_config_load(&bc, o->base_dir, err) < 0) return -1;
    if (writes_hf && bc.rope_type == VET_ROPE_FACTORS)
        return vet_err_kindf(err, VET_E_USAGE, "--%s with the base %s: its llama3 rope scaling is per-frequency factors "
                             "(rope_freqs.weight), which a Hugging Face config.json cannot hold%s", o->full ? "full" : "merge",
                             o->base_dir, o->full ? "" : ": train without --merge, then merge with vet-export --model BASE "
                             "--adapter OUT");
    if (o->full || o->adapter_in) return 0;
    if (vet_adapter_check_limits(&bc, o->lora_r, o->lora_alpha, o->lora_dropout, o->lora_targets, err) == 0)
        return 0;
    vet_err_prefix(err, "--lora-r %d / --lora-alpha %g / --lora-dropout %g with the base %s", o->lora_r,
                   (double)o->lora_alpha, (double)o->lora_dropout, o->base_dir);
    err->kind = VET_E_USAGE;  // flags that cannot work with this base
    return -1;
}

// The training files and --val, of which at most one may be stdin: a second would find the
// first's end of stream.
static int refuse_stdin_twice(const vet_train_opts *o, vet_err *err) {
    vet_named_input in[2];
    int n = 0;
    for (int i = -1; i <= o->n_train_more && n < 2; i++) {
        const char *path = i < 0 ? o->train_path : i < o->n_train_more ? o->train_more[i] : o->val_path;
        if (path && strcmp(path, "-") == 0) in[n++] = (vet_named_input){i < o->n_train_more ? "--train" : "--val", path};
    }
    return vet_refuse_stdin_twice(in, n, err);
}

// Rows whose targets are all -1 (a loss mask over nothing) train nothing: every step's loss and
// gradient are 0 and the run "succeeds" with the weights it started from; a validation set like
// that has no loss, so no evaluation ever happens and no best model is kept. Refused, naming
// what: nothing on which to learn or to validate.
static int refuse_no_targets(const vet_packed_set *s, const char *what, const char *path, int n_files, vet_err *err) {
    if (s->n_targets > 0) return 0;
    if (n_files > 1)
        return vet_errf(err, "none of the %d --train files (%s, ...) has a target token in its rows: nothing to %s",
                        n_files, path, what);
    return vet_errf(err, "%s: no target token in its %d rows (every target is -1): nothing to %s (vet-pack puts "
                         "the responses' tokens in the loss)", path, s->n_rows, what);
}

int train_load_data(train_run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
    if (refuse_stdin_twice(o, err)) return -1;
    if (vet_packed_load(&r->train, o->train_path, err) < 0) return -1;
    if (o->token_dropout > 0 && r->train.unk_id < 0)
        return vet_errf(err, "%s: the header names no unk_id for --token-dropout to put in place of a token: "
                             "tokenize with vet-tokenize (it names the tokenizer's unk), or drop --token-dropout", o->train_path);
    for (int i = 0; i < o->n_train_more; i++) {
        vet_packed_set more;
        if (vet_packed_load(&more, o->train_more[i], err) < 0) return -1;
        if (vet_packed_append(&r->train, &more, err) < 0) {
            vet_packed_free(&more);
            return -1;
        }
    }
    if (r->train.n_rows == 0)
        return o->n_train_more ? vet_errf(err, "none of the %d --train files (%s, ...) has any rows",
                                          o->n_train_more + 1, o->train_path)
                               : vet_errf(err, "%s: no rows (is the split empty?)", o->train_path);
    if (refuse_no_targets(&r->train, "learn", o->train_path, o->n_train_more + 1, err)) return -1;
    if (o->val_path) {
        if (vet_packed_load(&r->val, o->val_path, err) < 0) return -1;
        if (r->val.n_rows == 0) return vet_errf(err, "%s: no rows (is the split empty?)", o->val_path);
        if (refuse_no_targets(&r->val, "validate with", o->val_path, 1, err)) return -1;
        if (strcmp(r->train.tokenizer_sha256, r->val.tokenizer_sha256) != 0)
            return vet_errf(err, "%s and %s were made with different tokenizers (%s sha256 %.12s… vs %s %.12s…): "
                                 "tokenize both with the same --tokenizer", o->train_path, o->val_path,
                            r->train.tokenizer_kind, r->train.tokenizer_sha256, r->val.tokenizer_kind,
                            r->val.tokenizer_sha256);
    }
    return 0;
}

// --base: the HF directory's model, or a GGUF file's; its tokenizer (tokenizer.json or
// tokenizer.model in the directory, see data/tokenizer.h; the GGUF file itself, whose
// tokenizer.ggml.* keys hold one) is the one to check and ship unless --tokenizer names another.
static int load_base(train_run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
    // Say so before allocating when the model cannot fit: fp32 weights, and under --full
    // their gradients and both AdamW moments too.
    vet_config bc;
    if (vet_model_config_load(&bc, o->base_dir, err) < 0) return -1;
    if (vet_check_memory((size_t)vet_config_n_params(&bc) * (o->full ? 16 : 4), "the model (fp32)", err) < 0)
        return -1;
    if (vet_model_load(&r->m, o->base_dir, err) < 0) return -1;
    if (vet_path_is_gguf(o->base_dir)) {
        snprintf(r->tokenizer_path, sizeof r->tokenizer_path, "%s", o->tokenizer ? o->tokenizer : o->base_dir);
        return 0;
    }
    char js[4200], md[4200];
    snprintf(js, sizeof js, "%s/tokenizer.json", o->base_dir);
    snprintf(md, sizeof md, "%s/tokenizer.model", o->base_dir);
    const char *tok = o->tokenizer ? o->tokenizer : access(js, R_OK) == 0 || access(md, R_OK) == 0 ? o->base_dir : "";
    snprintf(r->tokenizer_path, sizeof r->tokenizer_path, "%s", tok);
    return 0;
}

// --init: a new model from a preset or a config.json, its vocabulary and special ids from the
// data's tokenizer, random weights from the seed.
static int init_new(train_run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
    vet_config cfg;
    int rc = strchr(o->init, '/') || strstr(o->init, ".json") ? vet_config_load(&cfg, o->init, err)
                                                               : vet_config_preset(&cfg, o->init, err);
    if (rc < 0) return -1;
    if (r->train.vocab_size <= 0)
        return vet_errf(err, "%s: header has no tokenizer vocab_size: cannot size a new model's vocabulary",
                        o->train_path);
    vet_config_set_vocab(&cfg, r->train.vocab_size);
    cfg.bos_id = r->train.bos_id;
    cfg.eos_id = r->train.eos_id;
    cfg.eos_ids[0] = r->train.eos_id;
    cfg.n_eos = r->train.eos_id >= 0;
    cfg.pad_id = r->train.pad_id;
    snprintf(cfg.torch_dtype, sizeof cfg.torch_dtype, "float32");
    if (vet_check_memory((size_t)vet_config_n_params(&cfg) * 16, "a new model with gradients and AdamW state",
                         err) < 0)
        return -1;
    if (vet_model_init(&r->m, &cfg, o->seed, err) < 0) return -1;
    if (o->tokenizer) snprintf(r->tokenizer_path, sizeof r->tokenizer_path, "%s", o->tokenizer);
    return 0;
}

// The model's tokenizer, r->tokenizer_path made the file read (a directory names one); the
// data must come from it: same file (sha256), so the same kind.
static int resolve_tokenizer(train_run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
    vet_tokenizer *t = vet_tokenizer_load(r->tokenizer_path, err);
    if (!t) return -1;
    if (vet_tokenizer_choice(t)[0] && o->on_note) o->on_note(vet_tokenizer_choice(t), r->ctx);
    const char *hex = vet_tokenizer_sha256(t), *kind = vet_tokenizer_kind_name(t);
    snprintf(r->tokenizer_path, sizeof r->tokenizer_path, "%s", vet_tokenizer_path(t));
    int rc = 0;
    if (r->train.tokenizer_sha256[0] && strcmp(hex, r->train.tokenizer_sha256) != 0)
        rc = vet_errf(err, "%s was tokenized with a %s tokenizer of sha256 %.16s…, but the model's tokenizer %s is %s "
                           "with sha256 %.16s…: re-run vet-tokenize with --tokenizer %s",
                      o->train_path, r->train.tokenizer_kind, r->train.tokenizer_sha256, r->tokenizer_path, kind, hex,
                      r->tokenizer_path);
    vet_tokenizer_free(t);
    return rc;
}

// The data must come from the model's tokenizer (resolve_tokenizer), a vocabulary that fits.
static int check_tokenizer(train_run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
    if (r->tokenizer_path[0] && resolve_tokenizer(r, err) < 0) return -1;
    if (r->train.vocab_size > r->m.cfg.vocab_size)
        return vet_errf(err, "%s: tokenizer vocabulary (%d) is larger than the model's (%d): wrong tokenizer?",
                        o->train_path, r->train.vocab_size, r->m.cfg.vocab_size);
    return 0;
}

// Every row against the model, before the first step (a bad id would otherwise surface in
// the middle of training, naming neither file nor record); and a note when the model has more
// token ids than the data's tokenizer. That is accepted: Hugging Face models often pad their
// embedding to a multiple of 64 or 128, the extra ids are never targets, and vet-generate
// decodes only ids its tokenizer has.
static int check_rows(const train_run *r, vet_err *err) {
    const vet_config *c = &r->m.cfg;
    if (vet_packed_check_model(&r->train, c->vocab_size, c->max_pos, err) < 0) return -1;
    if (r->val.n_rows && vet_packed_check_model(&r->val, c->vocab_size, c->max_pos, err) < 0) return -1;
    if (r->train.vocab_size > 0 && c->vocab_size > r->train.vocab_size)
        vet_train_notef(r->o->on_note, r->ctx, "warning: the model's vocabulary (%d) is larger than the tokenizer's of "
                        "%s (%d): ids %d..%d are never trained on as targets (a padded embedding is fine; another "
                        "tokenizer is not)", c->vocab_size, r->o->train_path, r->train.vocab_size,
                        r->train.vocab_size, c->vocab_size - 1);
    return 0;
}

// A tokenizer inside a GGUF file is checked against the data like any other, but an HF
// directory written out (--merge, --full) cannot hold it: it goes out without a tokenizer file,
// and a note says where the tokenizer is.
static void no_gguf_tokenizer_out(train_run *r) {
    const vet_train_opts *o = r->o;
    if (!r->tokenizer_path[0] || !vet_path_is_gguf(r->tokenizer_path)) return;
    if (o->merge || o->full)
        vet_train_notef(o->on_note, r->ctx, "note: the tokenizer is inside %s: %s%s is written without a tokenizer file "
                        "(give vet-generate --tokenizer %s)", r->tokenizer_path, o->out_dir, o->full ? "" : "/merged",
                        r->tokenizer_path);
    r->tokenizer_path[0] = 0;
}

int train_setup_model(train_run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
    if ((o->base_dir ? load_base(r, err) : init_new(r, err)) < 0) return -1;
    if (check_tokenizer(r, err) < 0) return -1;
    no_gguf_tokenizer_out(r);
    if (check_rows(r, err) < 0) return -1;
    if (o->full) return 0;
    if (o->adapter_in) {
        if (vet_adapter_load(&r->m, o->adapter_in, err) < 0) return -1;
        r->m.lora.dropout = o->lora_dropout;  // the adapter's r/alpha/targets, this run's dropout
        return 0;
    }
    return vet_model_add_lora(&r->m, o->lora_r, o->lora_alpha, o->lora_dropout, o->rslora, o->lora_targets,
                              vet_rng_hash(o->seed, 0x10AA), err) < 0 ? -1 : 0;
}
