// trainer.c — see trainer.h.
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/adapter.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "kernels/host/device.h"
#include "kernels/host/gpu_model.h"
#include "io/hfdir.h"
#include "model/model.h"
#include "model/model_save.h"
#include "model/ops.h"
#include "train/packed_set.h"
#include "base/rng.h"
#include "io/safetensors.h"
#include "base/sha256.h"
#ifdef VET_CUDA
#include "kernels/ops_cuda.h"
#endif

void vet_train_defaults(vet_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->lora_r = 16;
    o->lora_alpha = 32;
    o->lora_dropout = 0.1f;
    o->lora_targets = VET_LORA_Q | VET_LORA_K | VET_LORA_V | VET_LORA_O;
    o->epochs = 3;
    o->batch_size = 4;
    o->grad_accum = 4;
    o->lr = 2e-4;
    o->weight_decay = 0.01;
    o->warmup_ratio = 0.03;
    o->max_grad_norm = 1.0;
    o->scheduler = VET_SCHED_COSINE;
    o->seed = 42;
    o->log_every = 10;
    o->save_limit = 2;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// A contiguous range of trainable floats with its weight-decay setting.
typedef struct {
    size_t off, n;
    int decay;
} segment;

// Everything one run holds.
typedef struct {
    const vet_train_opts *o;
    vet_packed_set train, val;
    vet_model m;
    vet_acts *acts;
    float *params;       // m.lora_mem or m.w_mem
    size_t n;
    float *grads, *adam_m, *adam_v, *best;
    segment *segs;
    int n_segs;
    int *order;          // the current epoch's row order
    int order_epoch;
    long micro_per_epoch, steps_per_epoch, total_steps;
    char tokenizer_path[4096];
    FILE *log;
    void *ctx;           // the caller's, for o->on_note
    // VET_DEVICE_CUDA: the context and the model on it (NULL on the CPU). The host model m
    // stays the master copy of everything but the trainable state, which lives on the device
    // between downloads (pull_state).
    vet_cuda *cuda;
    vet_gpu_model *gpu;
    double step_scale;   // fp16: the loss scale of the step being logged (0: not fp16)
} run;

static void note(const run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const run *r, const char *fmt, ...) {
    if (!r->o->on_note) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->o->on_note(line, r->ctx);
}

// "13.48 GiB", "3.2 MiB" or "12.0 KiB" (a small model's plan would read 0.00 GiB).
static const char *bytes_str(char buf[32], size_t b) {
    if (b >= (size_t)1 << 30) snprintf(buf, 32, "%.2f GiB", b / (1024.0 * 1024.0 * 1024.0));
    else if (b >= (size_t)1 << 20) snprintf(buf, 32, "%.1f MiB", b / (1024.0 * 1024.0));
    else snprintf(buf, 32, "%.1f KiB", b / 1024.0);
    return buf;
}

// Names the trainable tensor that holds element idx (for messages about non-finite values).
static void describe_param(const run *r, size_t idx, char *buf, size_t n) {
    const vet_model *m = &r->m;
    if (r->o->full) {
        int k = vet_model_tensors(m, NULL, 0);
        vet_named_tensor *t = malloc(k * sizeof *t);
        if (t) {
            vet_model_tensors(m, t, k);
            for (int i = 0; i < k; i++) {
                size_t off = (size_t)(t[i].p - m->w_mem), cnt = (size_t)t[i].shape[0] * (t[i].ndim > 1 ? t[i].shape[1] : 1);
                if (idx >= off && idx < off + cnt) {
                    snprintf(buf, n, "%s", t[i].name);
                    free(t);
                    return;
                }
            }
            free(t);
        }
    } else {
        const vet_lora *lo = &m->lora;
        for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
            if (!(lo->targets & (1u << t))) continue;
            int64_t out, in;
            vet_adapter_target_dims(&m->cfg, t, &out, &in);
            size_t a = (size_t)(lo->A[t] - m->lora_mem), b = (size_t)(lo->B[t] - m->lora_mem);
            size_t na = (size_t)m->cfg.n_layers * lo->r * in, nb = (size_t)m->cfg.n_layers * out * lo->r;
            if (idx >= a && idx < a + na) {
                snprintf(buf, n, "layers.%zu.%s.lora_A", (idx - a) / (lo->r * in), vet_lora_target_name(t));
                return;
            }
            if (idx >= b && idx < b + nb) {
                snprintf(buf, n, "layers.%zu.%s.lora_B", (idx - b) / (out * lo->r), vet_lora_target_name(t));
                return;
            }
        }
    }
    snprintf(buf, n, "parameter %zu", idx);
}

static int load_data(run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
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
    if (o->val_path) {
        if (vet_packed_load(&r->val, o->val_path, err) < 0) return -1;
        if (r->val.n_rows == 0) return vet_errf(err, "%s: no rows (is the split empty?)", o->val_path);
        if (strcmp(r->train.tokenizer_sha256, r->val.tokenizer_sha256) != 0)
            return vet_errf(err, "%s and %s were made with different tokenizers (sha256 %.12s… vs %.12s…): "
                                 "tokenize both with the same --spm", o->train_path, o->val_path,
                            r->train.tokenizer_sha256, r->val.tokenizer_sha256);
    }
    return 0;
}

static int setup_model(run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
    if (o->base_dir) {
        // Say so before allocating when the model cannot fit: fp32 weights, and under --full
        // their gradients and both AdamW moments too.
        vet_config bc;
        if (vet_config_load(&bc, o->base_dir, err) < 0) return -1;
        if (vet_check_memory((size_t)vet_config_n_params(&bc) * (o->full ? 16 : 4), "the model (fp32)", err) < 0)
            return -1;
        if (vet_model_load(&r->m, o->base_dir, err) < 0) return -1;
        if (o->tokenizer) snprintf(r->tokenizer_path, sizeof r->tokenizer_path, "%s", o->tokenizer);
        else {
            snprintf(r->tokenizer_path, sizeof r->tokenizer_path, "%s/tokenizer.model", o->base_dir);
            if (access(r->tokenizer_path, R_OK) != 0) r->tokenizer_path[0] = 0;
        }
    } else {
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
    }
    // The data must come from the model's tokenizer.
    if (r->tokenizer_path[0] && r->train.tokenizer_sha256[0]) {
        char hex[65];
        if (vet_sha256_file(r->tokenizer_path, hex, err) < 0) return -1;
        if (strcmp(hex, r->train.tokenizer_sha256) != 0)
            return vet_errf(err, "%s was tokenized with tokenizer sha256 %.16s…, but the model's tokenizer %s "
                                 "has sha256 %.16s…: re-run vet-tokenize with --spm %s",
                            o->train_path, r->train.tokenizer_sha256, r->tokenizer_path, hex, r->tokenizer_path);
    }
    if (r->train.vocab_size > r->m.cfg.vocab_size)
        return vet_errf(err, "%s: tokenizer vocabulary (%d) is larger than the model's (%d): wrong tokenizer?",
                        o->train_path, r->train.vocab_size, r->m.cfg.vocab_size);
    if (!o->full && o->adapter_in) {
        if (vet_adapter_load(&r->m, o->adapter_in, err) < 0) return -1;
        r->m.lora.dropout = o->lora_dropout;  // the adapter's r/alpha/targets, this run's dropout
        return 0;
    }
    if (!o->full &&
        vet_model_add_lora(&r->m, o->lora_r, o->lora_alpha, o->lora_dropout, o->rslora, o->lora_targets,
                           vet_rng_hash(o->seed, 0x10AA), err) < 0)
        return -1;
    return 0;
}

static int setup_optimizer(run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
    if (o->full) {
        r->params = r->m.w_mem;
        r->n = r->m.n_w;
        int k = vet_model_tensors(&r->m, NULL, 0);
        vet_named_tensor *t = malloc(k * sizeof *t);
        r->segs = malloc(k * sizeof *r->segs);
        if (!t || !r->segs) { free(t); return vet_err_nomem(err, "out of memory"); }
        vet_model_tensors(&r->m, t, k);
        for (int i = 0; i < k; i++) {
            size_t cnt = (size_t)t[i].shape[0] * (t[i].ndim > 1 ? t[i].shape[1] : 1);
            r->segs[i] = (segment){(size_t)(t[i].p - r->m.w_mem), cnt, t[i].decay};
        }
        r->n_segs = k;
        free(t);
    } else {
        r->params = r->m.lora_mem;
        r->n = r->m.n_lora;
        r->segs = malloc(sizeof *r->segs);
        if (!r->segs) return vet_err_nomem(err, "out of memory");
        r->segs[0] = (segment){0, r->n, 1};  // every LoRA matrix decays
        r->n_segs = 1;
    }
    r->grads = calloc(r->n, sizeof(float));
    r->adam_m = calloc(r->n, sizeof(float));
    r->adam_v = calloc(r->n, sizeof(float));
    if (o->val_path) r->best = calloc(r->n, sizeof(float));
    r->order = malloc(r->train.n_rows * sizeof(int));
    if (!r->grads || !r->adam_m || !r->adam_v || (o->val_path && !r->best) || !r->order)
        return vet_err_nomem(err, "out of memory for the optimizer (%zu trainable floats)", r->n);
    r->order_epoch = -1;
    r->micro_per_epoch = (r->train.n_rows + o->batch_size - 1) / o->batch_size;
    r->steps_per_epoch = (r->micro_per_epoch + o->grad_accum - 1) / o->grad_accum;
    r->total_steps = r->steps_per_epoch * o->epochs;
    if (o->max_steps > 0 && o->max_steps < r->total_steps) r->total_steps = o->max_steps;
    if (o->device == VET_DEVICE_CUDA) return 0;  // the activations live on the device
    int T = r->train.max_len > r->val.max_len ? r->train.max_len : r->val.max_len;
    r->acts = vet_acts_new(&r->m, o->batch_size, T, err);
    if (!r->acts) return -1;
    vet_acts_set_label_smoothing(r->acts, (float)o->label_smoothing);
    vet_acts_set_resid_dropout(r->acts, (float)o->resid_dropout);
    return 0;
}

// Device memory a plan may take: the free memory less room for what is allocated outside
// the plan (cuBLAS workspaces, kernel modules loaded on first use).
#define GPU_HEADROOM ((size_t)256 << 20)

// The device's context, named in a note; before any data or model is read, so a wrong device
// fails at once.
static int open_device(run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
    if (o->device != VET_DEVICE_CUDA) {
        if (o->gpu_fp16) return vet_errf(err, "fp16 base weights need --device cuda (the CPU backend computes in fp32)");
        if (o->gpu_quant)
            return vet_errf(err, "quantized base weights need --device cuda (the CPU backend computes in fp32)");
        note(r, "device cpu (%d threads), fp32", vet_get_threads());
        return 0;
    }
    if (o->label_smoothing != 0.0)
        return vet_errf(err, "--label-smoothing is not implemented on CUDA yet: train on the CPU, or without it");
    if (o->full && o->gpu_bf16)
        return vet_errf(err, "full training on CUDA needs fp32 base weights (--fp32), or train LoRA");
    if (o->full && o->gpu_quant)
        return vet_errf(err, "quantized base weights are frozen: --quant needs LoRA training, not --full");
    if (o->gpu_fp16 && (o->full || o->gpu_bf16 || o->gpu_quant))
        return vet_errf(err, "fp16 base weights are for LoRA training without --bf16 or --quant");
#ifdef VET_CUDA
    char why[512], name[256];
    if (!vet_cuda_available(why, sizeof why)) return vet_errf(err, "--device cuda: %s", why);
    if (vet_cuda_device_name(o->gpu_index, name, sizeof name, err) < 0) return -1;
    r->cuda = vet_cuda_new(o->gpu_index, err);
    if (!r->cuda) return -1;
    if (o->gpu_quant)
        note(r, "device cuda:%d %s, base weights %s (dequantized to %s for each GEMM)", o->gpu_index, name,
             o->gpu_quant == 1 ? "int8" : "nf4", o->gpu_bf16 ? "bf16" : "fp32");
    else
        note(r, "device cuda:%d %s, base weights %s", o->gpu_index, name,
             o->gpu_fp16 ? "fp16 (dynamic loss scaling)" : o->gpu_bf16 ? "bf16" : "fp32");
    return 0;
#else
    return vet_errf(err, "--device cuda: vet was built without CUDA (rebuild with nvcc on PATH)");
#endif
}

// The model on the device: its memory plan for the run's largest micro-batch (batch_size rows
// of the longest row, train or validation) said first, then checked against the free memory
// before anything is allocated there, then one allocation and the upload.
static int setup_device(run *r, vet_err *err) {
    const vet_train_opts *o = r->o;
    if (o->device != VET_DEVICE_CUDA) return 0;
#ifdef VET_CUDA
    const vet_model *m = &r->m;
    int T = r->train.max_len > r->val.max_len ? r->train.max_len : r->val.max_len;
    int rows = r->train.n_rows > r->val.n_rows ? r->train.n_rows : r->val.n_rows;
    int B = o->batch_size < rows ? o->batch_size : rows;
    if (B < 1) B = 1;
    if (T < 1) T = 1;
    unsigned flags = (o->gpu_bf16 ? VET_GPU_BF16 : 0) | (o->full ? VET_GPU_FULL : 0) |
                     (o->gpu_quant == 1 ? VET_GPU_INT8 : o->gpu_quant == 2 ? VET_GPU_NF4 : 0) |
                     (o->gpu_ckpt ? VET_GPU_CKPT : 0) | (o->gpu_fp16 ? VET_GPU_FP16 : 0);
    vet_gpu_plan p;
    if (vet_gpu_plan_bytes(&m->cfg, m->has_lora ? m->lora.r : 0, m->has_lora ? m->lora.targets : 0, B, T, flags,
                           &p, err) < 0)
        return -1;
    size_t free_b, total_b;
    if (vet_cuda_mem_info(r->cuda, &free_b, &total_b, err) < 0) return -1;
    size_t usable = free_b > GPU_HEADROOM ? free_b - GPU_HEADROOM : 0;
    char w[32], t[32], a[32], sc[32], tot[32], fr[32], all[32];
    note(r, "device memory plan for batches of %d x %d: weights %s, training state %s, activations %s, "
            "scratch %s; total %s of %s free (%s on the device)%s",
         B, T, bytes_str(w, p.weights), bytes_str(t, p.train), bytes_str(a, p.activations),
         bytes_str(sc, p.scratch), bytes_str(tot, p.total), bytes_str(fr, free_b), bytes_str(all, total_b),
         o->gpu_ckpt ? "; gradient checkpointing: layer inputs kept, each layer recomputed in backward" : "");
    if (p.total > usable) {
        char us[32], hr[32];
        return vet_errf(err, "the model needs %s on cuda:%d (weights %s, training state %s, activations %s, "
                             "scratch %s) but only %s of its %s free can be planned (%s is kept for cuBLAS "
                             "and kernels): use a smaller --batch-size than %d or shorter rows than %d "
                             "(vet-pack --seq-len)%s%s",
                        tot, o->gpu_index, w, t, a, sc, bytes_str(us, usable), fr, bytes_str(hr, GPU_HEADROOM),
                        B, T, o->gpu_ckpt ? "" : ", or --grad-checkpoint",
                        o->full || o->gpu_quant == 2 ? "" : o->gpu_quant ? ", or --quant nf4"
                              : o->gpu_bf16 ? ", or --quant int8 / nf4 base weights" : ", or --bf16 base weights");
    }
    vet_gpu_opts go = {.flags = flags, .mem_limit = usable, .resid_dropout = (float)o->resid_dropout};
    r->gpu = vet_gpu_model_new(r->cuda, m, B, T, &go, err);
    return r->gpu ? 0 : -1;
#else
    return vet_errf(err, "--device cuda: vet was built without CUDA (rebuild with nvcc on PATH)");
#endif
}

// The trainable floats (and with moments, both AdamW moments) from the device into the host
// buffers the writers read: r->params is the host model's lora_mem / w_mem. No-op on the CPU.
static int pull_state(run *r, int moments, vet_err *err) {
    if (!r->gpu) return 0;
    return vet_gpu_download_state(r->gpu, r->params, moments ? r->adam_m : NULL, moments ? r->adam_v : NULL,
                                  r->n, err);
}

// The run's settings as a hash: a checkpoint from other settings is refused on resume.
static void fingerprint(const run *r, char hex[65]) {
    const vet_train_opts *o = r->o;
    char s[2048];
    snprintf(s, sizeof s,
             "full=%d r=%d alpha=%.9g drop=%.9g targets=%u rslora=%d epochs=%d bs=%d ga=%d lr=%.9g wd=%.9g "
             "warm=%.9g sched=%d clip=%.9g seed=%llu max_steps=%ld rows=%d tokens=%ld n=%zu adapter=%s",
             o->full, o->lora_r, o->lora_alpha, o->lora_dropout, o->lora_targets, o->rslora, o->epochs,
             o->batch_size, o->grad_accum, o->lr, o->weight_decay, o->warmup_ratio, (int)o->scheduler,
             o->max_grad_norm, (unsigned long long)o->seed, o->max_steps, r->train.n_rows, r->train.n_tokens, r->n,
             o->adapter_in ? o->adapter_in : "");
    if (o->label_smoothing != 0.0) {  // only then, so older checkpoints keep their fingerprint
        size_t len = strlen(s);
        snprintf(s + len, sizeof s - len, " ls=%.9g", o->label_smoothing);
    }
    if (o->resid_dropout != 0.0) {
        size_t len = strlen(s);
        snprintf(s + len, sizeof s - len, " rd=%.9g", o->resid_dropout);
    }
    if (o->token_dropout != 0.0) {
        size_t len = strlen(s);
        snprintf(s + len, sizeof s - len, " td=%.9g", o->token_dropout);
    }
    vet_sha256_hex(s, strlen(s), hex);
}

static void shuffle_epoch(run *r, int epoch) {
    if (r->order_epoch == epoch) return;
    int n = r->train.n_rows;
    for (int i = 0; i < n; i++) r->order[i] = i;
    vet_rng g;
    vet_rng_seed(&g, vet_rng_hash(r->o->seed, 0xE90C0000ULL + (uint64_t)epoch));
    for (int i = n - 1; i > 0; i--) {
        int j = (int)vet_rng_below(&g, (uint64_t)i + 1);
        int t = r->order[i];
        r->order[i] = r->order[j];
        r->order[j] = t;
    }
    r->order_epoch = epoch;
}

// Builds micro-batch `micro` of the current epoch's order.
static int micro_batch(run *r, long micro, vet_batch *b, long *real_tokens, vet_err *err) {
    int bs = r->o->batch_size, first = (int)(micro * bs);
    int n = r->train.n_rows - first < bs ? r->train.n_rows - first : bs;
    vet_row rows[n];
    *real_tokens = 0;
    for (int i = 0; i < n; i++) {
        rows[i] = r->train.rows[r->order[first + i]];
        *real_tokens += rows[i].n;
    }
    return vet_batch_from_rows(b, rows, n, r->m.cfg.vocab_size, err);
}

static int validation_loss(run *r, double *out, vet_err *err) {
    double loss_sum = 0;
    long targets = 0;
    int bs = r->o->batch_size;
    for (int first = 0; first < r->val.n_rows; first += bs) {
        int n = r->val.n_rows - first < bs ? r->val.n_rows - first : bs;
        vet_batch b;
        if (vet_batch_from_rows(&b, r->val.rows + first, n, r->m.cfg.vocab_size, err) < 0)
            return vet_err_prefix(err, "%s", r->o->val_path);
        double ls;
        int nt;
        int rc = r->gpu ? vet_gpu_forward(r->gpu, &b, &ls, &nt, 0, 0, err)
                        : vet_model_forward(&r->m, r->acts, &b, NULL, &ls, &nt, 0, 0, err);
        vet_batch_free(&b);
        if (rc < 0) return -1;
        loss_sum += ls;
        targets += nt;
    }
    *out = targets ? loss_sum / targets : NAN;
    return 0;
}

static int save_checkpoint(run *r, vet_train_state *st, vet_train_result *res, vet_err *err) {
    char root[4200];
    snprintf(root, sizeof root, "%s/checkpoints", r->o->out_dir);
    if (pull_state(r, 1, err) < 0) return -1;
    if (vet_ckpt_save(root, st, r->params, r->adam_m, r->adam_v, isfinite(st->best_val) ? r->best : NULL, r->n,
                      err) < 0)
        return -1;
    snprintf(res->checkpoint, sizeof res->checkpoint, "%s/step-%08ld", root, st->step);
    return vet_ckpt_prune(root, r->o->save_limit, err);
}

static int write_outputs(run *r, const vet_train_state *st, vet_err *err) {
    const vet_train_opts *o = r->o;
    if (pull_state(r, 0, err) < 0) return -1;
    if (r->best && isfinite(st->best_val)) memcpy(r->params, r->best, r->n * sizeof(float));
    const char *base = o->base_dir ? o->base_dir : o->init;
    if (!o->full) {
        if (vet_adapter_save(o->out_dir, &r->m, base, err) < 0) return -1;
        if (!o->merge) return 0;
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/merged", o->out_dir);
        vet_model_merge_lora(&r->m);
        int dt = vet_dtype_parse(r->m.cfg.torch_dtype);
        return vet_model_save(&r->m, dir, dt >= 0 ? (vet_dtype)dt : VET_DT_F32,
                              r->tokenizer_path[0] ? r->tokenizer_path : NULL, err);
    }
    int dt = o->base_dir ? vet_dtype_parse(r->m.cfg.torch_dtype) : VET_DT_F32;
    return vet_model_save(&r->m, o->out_dir, dt >= 0 ? (vet_dtype)dt : VET_DT_F32,
                          r->tokenizer_path[0] ? r->tokenizer_path : NULL, err);
}

static void log_step(run *r, const vet_step_info *s) {
    if (!r->log) return;
    fprintf(r->log,
            "{\"step\":%ld,\"epoch\":%.4f,\"loss\":%.7g,\"lr\":%.7g,\"grad_norm\":%.7g,\"loss_tokens\":%ld,"
            "\"tokens_per_s\":%.1f,\"elapsed_s\":%.3f",
            s->step, s->epoch, s->loss, s->lr, s->grad_norm, s->loss_tokens, s->tokens_per_s, s->elapsed_s);
    if (!isnan(s->val_loss)) fprintf(r->log, ",\"val_loss\":%.7g", s->val_loss);
    if (r->step_scale > 0) fprintf(r->log, ",\"loss_scale\":%.7g", r->step_scale);
    fputs("}\n", r->log);
    fflush(r->log);
}

static void run_free(run *r) {
    vet_packed_free(&r->train);
    if (r->val.rows) vet_packed_free(&r->val);
    vet_model_free(&r->m);
    vet_acts_free(r->acts);
    free(r->grads);
    free(r->adam_m);
    free(r->adam_v);
    free(r->best);
    free(r->segs);
    free(r->order);
    if (r->log) fclose(r->log);
    vet_gpu_model_free(r->gpu);
#ifdef VET_CUDA
    vet_cuda_free(r->cuda);
#endif
}

static int train_loop(run *r, vet_step_fn on_step, void *ctx, vet_train_result *res, vet_err *err) {
    const vet_train_opts *o = r->o;
    vet_train_state st = {.best_val = INFINITY, .best_step = -1};
    fingerprint(r, st.fingerprint);
    if (o->resume) {
        char dir[4096];
        int has_best = 0;
        char fp[65];
        memcpy(fp, st.fingerprint, sizeof fp);
        if (vet_ckpt_find(o->resume, dir, sizeof dir, err) < 0) return -1;
        float *best = r->best ? r->best : NULL;
        if (vet_ckpt_load(dir, &st, r->params, r->adam_m, r->adam_v, best, &has_best, r->n, err) < 0) return -1;
        if (strcmp(fp, st.fingerprint) != 0)
            return vet_errf(err, "%s: checkpoint of a run with other settings or data: resume with the same "
                                 "flags and files, or start afresh", dir);
        if (!has_best) st.best_val = INFINITY;
        if (r->gpu && vet_gpu_upload_state(r->gpu, r->params, r->adam_m, r->adam_v, r->n, err) < 0) return -1;
    }
    // fp16: dynamic loss scaling as torch.cuda.amp.GradScaler's defaults (start 2^16, x2 after
    // 2000 steps in a row without overflow, x0.5 and the step skipped on one). A checkpoint
    // without a scale (older, or of a bf16 / fp32 run) starts at the initial one.
    if (!o->gpu_fp16) st.loss_scale = 0, st.scale_good = 0, st.scale_skips = 0;
    else if (!(st.loss_scale > 0)) {
        st.loss_scale = o->fp16_init_scale > 0 ? o->fp16_init_scale : 65536.0;
        st.scale_good = 0;
    }
    char path[4200];
    if (vet_mkdirs(o->out_dir, err) < 0) return -1;
    snprintf(path, sizeof path, "%s/train.log.jsonl", o->out_dir);
    r->log = fopen(path, o->resume ? "a" : "w");
    if (!r->log) return vet_err_io(err, "%s: cannot create: %s", path, strerror(errno));

    vet_schedule sched;
    vet_schedule_init(&sched, o->scheduler, o->lr, o->warmup_ratio, r->total_steps);
    double t_start = now_s();
    res->first_loss = NAN;
    for (long step = st.step; step < r->total_steps; step++) {
        double t0 = now_s();
        int epoch = (int)(step / r->steps_per_epoch);
        long first_micro = (step % r->steps_per_epoch) * o->grad_accum;
        long last_micro = first_micro + o->grad_accum;
        if (last_micro > r->micro_per_epoch) last_micro = r->micro_per_epoch;
        shuffle_epoch(r, epoch);
        // The step's loss is a mean over ALL its target tokens: count them first.
        long step_targets = 0, step_tokens = 0;
        for (long mi = first_micro; mi < last_micro; mi++)
            for (int i = (int)(mi * o->batch_size); i < (int)((mi + 1) * o->batch_size) && i < r->train.n_rows; i++) {
                const vet_row *row = &r->train.rows[r->order[i]];
                for (int k = 0; k < row->n; k++) step_targets += row->targets[k] >= 0;
            }
        double loss_sum = 0;
        for (long mi = first_micro; mi < last_micro; mi++) {
            vet_batch b;
            long real;
            if (micro_batch(r, mi, &b, &real, err) < 0) return vet_err_prefix(err, "training rows");
            double ls;
            int nt;
            uint64_t dseed = vet_rng_hash(vet_rng_hash(o->seed, (uint64_t)step), (uint64_t)mi);
            vet_batch_drop_tokens(&b, o->token_dropout, r->train.unk_id, vet_rng_hash(dseed, 0x70CE));
            vet_train_mode mode = o->full ? VET_TRAIN_FULL : VET_TRAIN_LORA;
            int rc;
            if (r->gpu) {  // gradients accumulate on the device
                rc = vet_gpu_forward(r->gpu, &b, &ls, &nt, 1, dseed, err);
                // fp16: the backward of loss * S, so that small gradients survive fp16's range
                float gs = o->gpu_fp16 ? (float)st.loss_scale * (1.0f / (float)step_targets) : 1.0f / (float)step_targets;
                if (rc == 0 && step_targets > 0) rc = vet_gpu_backward(r->gpu, gs, mode, err);
            } else {
                rc = vet_model_forward(&r->m, r->acts, &b, NULL, &ls, &nt, 1, dseed, err);
                if (rc == 0 && step_targets > 0)
                    rc = vet_model_backward(&r->m, r->acts, &b, 1.0f / (float)step_targets, mode, r->grads, err);
            }
            vet_batch_free(&b);
            if (rc < 0) return -1;
            loss_sum += ls;
            step_tokens += real;
        }
        double loss = step_targets ? loss_sum / step_targets : 0;
        // The norm is summed on the host in the CPU's order: the device's grads come back
        // (LoRA's are small), so both devices clip and check alike.
        if (r->gpu && vet_gpu_download_grads(r->gpu, r->grads, r->n, err) < 0) return -1;
        // fp16: unscale (GradScaler.unscale_: grads * float(1/S)) before the norm and clipping;
        // the device's copy is unscaled with the clipping below, in one multiply.
        float inv_scale = o->gpu_fp16 ? (float)(1.0 / st.loss_scale) : 1.0f;
        if (o->gpu_fp16)
            for (size_t i = 0; i < r->n; i++) r->grads[i] *= inv_scale;
        double norm2 = 0;
        for (size_t i = 0; i < r->n; i++) norm2 += (double)r->grads[i] * r->grads[i];
        double norm = sqrt(norm2);
        if (o->gpu_fp16 && isfinite(loss) && !isfinite(norm)) {
            // Overflow in the scaled backward: as GradScaler + the HF Trainer, no AdamW step, the
            // schedule does not advance (scale_skips), the scale halves; the data is consumed.
            if (st.loss_scale < 0x1p-24)
                return vet_err_kindf(err, VET_E_NONFINITE, "step %ld: gradients not finite even at loss scale %g: fp16 overflows in "
                                     "backward; use --bf16", step + 1, st.loss_scale);
            note(r, "step %ld: gradients overflowed in fp16 at loss scale %.9g: step skipped, loss scale %.9g",
                 step + 1, st.loss_scale, st.loss_scale * 0.5);
            st.loss_scale *= 0.5;
            st.scale_good = 0;
            st.scale_skips++;
            st.skipped_steps++;
            memset(r->grads, 0, r->n * sizeof(float));
            if (vet_gpu_zero_grads(r->gpu, err) < 0) return -1;
            st.step = step + 1;
            continue;
        }
        if (!isfinite(loss) || !isfinite(norm)) {
            char what[256] = "the loss";
            if (isfinite(loss))
                for (size_t i = 0; i < r->n; i++)
                    if (!isfinite(r->grads[i])) {
                        char name[160];
                        describe_param(r, i, name, sizeof name);
                        snprintf(what, sizeof what, "the gradient of %s", name);
                        break;
                    }
            if (!o->skip_nonfinite)
                return vet_err_kindf(err, VET_E_NONFINITE, "step %ld: %s is not finite (loss %g): lower --lr, check the data, or pass "
                                     "--skip-nonfinite",
                                step + 1, what, loss);
            st.skipped_steps++;
            memset(r->grads, 0, r->n * sizeof(float));
            if (r->gpu && vet_gpu_zero_grads(r->gpu, err) < 0) return -1;
            st.step = step + 1;
            continue;
        }
        if (o->gpu_fp16) {  // the device grads: unscaled, and clipped in the same multiply
            double coef = o->max_grad_norm > 0 ? o->max_grad_norm / (norm + 1e-6) : 1.0;
            float s = coef < 1.0 ? inv_scale * (float)coef : inv_scale;
            if (s != 1.0f && vet_gpu_scale_grads(r->gpu, s, err) < 0) return -1;
        } else if (o->max_grad_norm > 0) {
            // As torch.nn.utils.clip_grad_norm_: scale by max/(norm + 1e-6) when that is below 1.
            double coef = o->max_grad_norm / (norm + 1e-6);
            if (coef < 1.0) {
                if (r->gpu) {
                    if (vet_gpu_scale_grads(r->gpu, (float)coef, err) < 0) return -1;
                } else {
                    scale_inplace(r->grads, (float)coef, r->n);
                }
            }
        }
        // Steps skipped for fp16 overflow did not advance the schedule or AdamW's count (0 otherwise).
        long opt_step = step - st.scale_skips;
        double lr = vet_schedule_lr(&sched, opt_step);
        for (int s = 0; s < r->n_segs; s++) {
            segment g = r->segs[s];
            float wd = g.decay ? (float)o->weight_decay : 0.0f;
            if (r->gpu) {
                if (vet_gpu_adamw_step(r->gpu, g.off, g.n, (float)lr, 0.9f, 0.999f, 1e-8f, wd, (int)(opt_step + 1), err) < 0)
                    return -1;
            } else {
                adamw_update(r->params + g.off, r->grads + g.off, r->adam_m + g.off, r->adam_v + g.off, g.n,
                             (float)lr, 0.9f, 0.999f, 1e-8f, wd, (int)(opt_step + 1));
            }
        }
        memset(r->grads, 0, r->n * sizeof(float));
        if (r->gpu && vet_gpu_zero_grads(r->gpu, err) < 0) return -1;
        st.step = step + 1;
        st.tokens_seen += (double)step_tokens;
        r->step_scale = st.loss_scale;
        if (o->gpu_fp16 && ++st.scale_good >= 2000) {  // GradScaler's growth_interval
            st.loss_scale *= 2.0;
            st.scale_good = 0;
        }
        if (isnan(res->first_loss)) res->first_loss = loss;
        res->last_loss = loss;

        vet_step_info info = {.step = step + 1, .total_steps = r->total_steps,
                              .epoch = (double)(step + 1) / r->steps_per_epoch, .loss = loss, .lr = lr,
                              .grad_norm = norm, .loss_tokens = step_targets, .val_loss = NAN};
        int last = step + 1 == r->total_steps, early = 0;
        if (o->val_path && ((o->eval_every > 0 && (step + 1) % o->eval_every == 0) || last)) {
            if (validation_loss(r, &info.val_loss, err) < 0) return -1;
            if (info.val_loss < st.best_val) {
                st.best_val = info.val_loss;
                st.best_step = step + 1;
                st.bad_evals = 0;
                if (pull_state(r, 0, err) < 0) return -1;
                memcpy(r->best, r->params, r->n * sizeof(float));
            } else if (o->patience > 0 && ++st.bad_evals >= o->patience) {
                early = 1;
            }
        }
        double t1 = now_s();
        info.tokens_per_s = step_tokens / (t1 - t0 > 1e-9 ? t1 - t0 : 1e-9);
        info.elapsed_s = t1 - t_start;
        log_step(r, &info);
        if (on_step) on_step(&info, ctx);
        int stop = o->stop && *o->stop;
        if ((o->save_every > 0 && (step + 1) % o->save_every == 0 && !last) || (stop && !last)) {
            if (save_checkpoint(r, &st, res, err) < 0) return -1;
        }
        if (stop && !last) {
            res->outcome = VET_TRAIN_INTERRUPTED;
            break;
        }
        if (early) {
            res->outcome = VET_TRAIN_EARLY_STOP;
            break;
        }
    }
    res->steps = st.step;
    res->tokens = st.tokens_seen;
    res->seconds = now_s() - t_start;
    res->best_val = isfinite(st.best_val) ? st.best_val : NAN;
    res->best_step = st.best_step;
    res->skipped_steps = st.skipped_steps;
    if (res->outcome == VET_TRAIN_INTERRUPTED) return 0;
    return write_outputs(r, &st, err);
}

int vet_train_run(const vet_train_opts *o, vet_step_fn on_step, void *ctx, vet_train_result *res, vet_err *err) {
    memset(res, 0, sizeof *res);
    if ((o->base_dir != NULL) == (o->init != NULL)) return vet_errf(err, "give exactly one of --base and --init");
    if (o->batch_size < 1 || o->grad_accum < 1 || o->epochs < 1)
        return vet_errf(err, "--batch-size, --grad-accum and --epochs must be at least 1");
    vet_set_threads(o->threads);
    run r = {.o = o, .ctx = ctx};
    int rc = open_device(&r, err);
    if (rc == 0) rc = load_data(&r, err);
    if (rc == 0) rc = setup_model(&r, err);
    if (rc == 0) rc = setup_optimizer(&r, err);
    if (rc == 0) rc = setup_device(&r, err);
    if (rc == 0) {
        const vet_config *c = &r.m.cfg;
        snprintf(res->model_desc, sizeof res->model_desc,
                 "%s: %d layers, dim %d, %d heads (%d kv), vocab %d; %.2f M params, %.3f M trainable", c->arch,
                 c->n_layers, c->dim, c->n_heads, c->n_kv_heads, c->vocab_size, vet_config_n_params(c) / 1e6,
                 r.n / 1e6);
        rc = train_loop(&r, on_step, ctx, res, err);
    }
    run_free(&r);
    return rc;
}
