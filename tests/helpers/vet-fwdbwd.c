// vet-fwdbwd — a test tool for the reference suite (tests/reference/): one forward and backward
// pass of the model core over a batch given as JSON, everything written to a safetensors file
// that PyTorch compares with its own computation.
//
//   vet-fwdbwd --model DIR [--adapter DIR | --full] --batch FILE.json --out FILE.safetensors
//   vet-fwdbwd --model DIR --save-adapter DIR [--lora-r N] [--lora-alpha F] [--lora-targets SPEC]
//              [--lora-dropout F] [--lora-rslora] [--lora-seed S]
//   vet-fwdbwd ... --device cuda[:N] [--dtype fp32|bf16|fp16] [--loss-scale S]
//
// The batch: {"rows": [{"tokens": [...], "targets": [...], "starts": [...]}, ...]}, rows as
// vet-pack writes them (docs/formats.md). The output holds
//   logits  (B,T,V)   per position (padding positions hold whatever the model computes there)
//   loss    (1)       mean cross-entropy over target positions
//   and the gradient of that mean loss (loss_scale = 1/n_targets, no dropout):
//   with --adapter: per LoRA matrix, named as in adapter_model.safetensors
//   with --full:    per base weight, named as in the HF checkpoint (tied lm_head: none)
//   neither:        no gradient.
// --device cuda runs the pass on the GPU model (kernels/host/gpu_model.h) instead of the CPU
// core, its base weights in --dtype (fp32 by default; bf16 and fp16 are LoRA only, --full is
// fp32), with the VET_GPU_* diagnostics of the environment as vet-train reads them. It computes
// no logits (lm_head and the loss are fused in chunks there), so the file holds the loss and the
// gradients only. --loss-scale S multiplies the loss before the backward and divides the
// gradients by S after it (fp16's static loss scale: small gradients would underflow in fp16).
// tests/reference/test_device_parity.py compares it with PyTorch in the same precision.
// --save-adapter initialises LoRA (A as PEFT does, B random non-zero from --lora-seed so the
// adapter changes the logits) and saves it as a PEFT directory.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/host/device.h"
#include "kernels/host/gpu_model.h"
#include "kernels/host/gpu_train_backend.h"
#ifdef VET_CUDA
#include "kernels/ops_cuda.h"
#endif
#include "model/adapter.h"
#include "model/model.h"
#include "base/rng.h"
#include "io/safetensors.h"

static const char *usage =
    "usage: vet-fwdbwd --model DIR [--adapter DIR | --full] --batch FILE.json --out FILE.safetensors [--threads N]\n"
    "       vet-fwdbwd --model DIR --save-adapter DIR [--lora-r N] [--lora-alpha F] [--lora-targets SPEC]\n"
    "                  [--lora-dropout F] [--lora-rslora] [--lora-seed S]\n"
    "       vet-fwdbwd ... --device cuda[:N] [--dtype fp32|bf16|fp16] [--loss-scale S]\n"
    "A test tool: one forward + backward over FILE.json, logits, loss and gradients to FILE.safetensors\n"
    "(with --device cuda: loss and gradients, no logits).\n";

static void die(const char *msg) {
    fprintf(stderr, "vet-fwdbwd: %s\n", msg);
    exit(1);
}

// ---------------------------------------------------------------------------------------
// The batch file

// Reads key of row i as an int32 array (malloc'ed) of *n entries.
static int32_t *int_array(json_t *row, size_t i, const char *key, int *n, vet_err *err) {
    json_t *a = json_object_get(row, key);
    if (!json_is_array(a)) { vet_errf(err, "rows[%zu].%s: missing or not a list", i, key); return NULL; }
    *n = (int)json_array_size(a);
    int32_t *v = malloc(sizeof(int32_t) * (*n ? *n : 1));
    if (!v) { vet_errf(err, "out of memory"); return NULL; }
    for (int k = 0; k < *n; k++) {
        json_t *e = json_array_get(a, k);
        if (!json_is_integer(e)) { free(v); vet_errf(err, "rows[%zu].%s[%d]: not an integer", i, key, k); return NULL; }
        v[k] = (int32_t)json_integer_value(e);
    }
    return v;
}

static int read_batch(const char *path, int vocab, vet_batch *b, vet_err *err) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) return vet_errf(err, "%s:%d: %s", path, je.line, je.text);
    json_t *rows = json_object_get(root, "rows");
    int rc = -1;
    size_t n = json_is_array(rows) ? json_array_size(rows) : 0;
    vet_row *r = calloc(n ? n : 1, sizeof *r);
    int32_t **bufs = calloc(3 * (n ? n : 1), sizeof *bufs);
    if (!n) { vet_errf(err, "%s: no \"rows\" list", path); goto done; }
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(rows, i);
        int nt, ny, ns;
        if (!(bufs[3 * i] = int_array(row, i, "tokens", &nt, err))) goto done;
        if (!(bufs[3 * i + 1] = int_array(row, i, "targets", &ny, err))) goto done;
        if (!(bufs[3 * i + 2] = int_array(row, i, "starts", &ns, err))) goto done;
        if (ny != nt) { vet_errf(err, "%s: rows[%zu]: %d targets for %d tokens", path, i, ny, nt); goto done; }
        r[i] = (vet_row){bufs[3 * i], bufs[3 * i + 1], bufs[3 * i + 2], nt, ns};
    }
    rc = vet_batch_from_rows(b, r, (int)n, vocab, err);
done:
    for (size_t i = 0; i < 3 * n; i++) free(bufs[i]);
    free(bufs);
    free(r);
    json_decref(root);
    return rc;
}

// ---------------------------------------------------------------------------------------
// Gradient names

// Adds the part of grads that mirrors param (a pointer into base) under name.
static int add_grad(vet_st_writer *w, const char *name, const float *grads, const float *base,
                    const float *param, int ndim, const int64_t *shape, vet_err *err) {
    return vet_st_writer_add(w, name, VET_DT_F32, ndim, shape, grads + (param - base), err);
}

static int add_lora_grads(vet_st_writer *w, const vet_model *m, const float *grads, vet_err *err) {
    const vet_lora *lo = &m->lora;
    char name[256];
    for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
        if (!(lo->targets & (1u << t))) continue;
        int64_t out, in;
        vet_adapter_target_dims(&m->cfg, t, &out, &in);
        int64_t sa[2] = {lo->r, in}, sb[2] = {out, lo->r};
        for (int l = 0; l < m->cfg.n_layers; l++) {
            vet_adapter_tensor_name(name, sizeof name, l, t, 'A');
            if (add_grad(w, name, grads, m->lora_mem, lo->A[t] + l * lo->r * in, 2, sa, err)) return -1;
            vet_adapter_tensor_name(name, sizeof name, l, t, 'B');
            if (add_grad(w, name, grads, m->lora_mem, lo->B[t] + l * out * lo->r, 2, sb, err)) return -1;
        }
    }
    return 0;
}

static int add_full_grads(vet_st_writer *w, const vet_model *m, const float *grads, vet_err *err) {
    const vet_config *c = &m->cfg;
    const vet_weights *W = &m->w;
    const float *base = m->w_mem;
    int64_t C = c->dim, F = c->hidden_dim, V = c->vocab_size, q = (int64_t)c->n_heads * c->head_dim,
            kv = (int64_t)c->n_kv_heads * c->head_dim;
    char name[256];
#define ADD(nm, p, nd, ...)                                                              \
    do {                                                                                 \
        int64_t s_[] = {__VA_ARGS__};                                                    \
        if (add_grad(w, nm, grads, base, p, nd, s_, err)) return -1;                     \
    } while (0)
    ADD("model.embed_tokens.weight", W->embed, 2, V, C);
    for (int l = 0; l < c->n_layers; l++) {
#define LAYER(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
        ADD(LAYER("input_layernorm.weight"), W->attn_norm + l * C, 1, C);
        ADD(LAYER("self_attn.q_proj.weight"), W->wq + l * q * C, 2, q, C);
        ADD(LAYER("self_attn.k_proj.weight"), W->wk + l * kv * C, 2, kv, C);
        ADD(LAYER("self_attn.v_proj.weight"), W->wv + l * kv * C, 2, kv, C);
        if (W->bq) {
            ADD(LAYER("self_attn.q_proj.bias"), W->bq + l * q, 1, q);
            ADD(LAYER("self_attn.k_proj.bias"), W->bk + l * kv, 1, kv);
            ADD(LAYER("self_attn.v_proj.bias"), W->bv + l * kv, 1, kv);
        }
        ADD(LAYER("self_attn.o_proj.weight"), W->wo + l * C * q, 2, C, q);
        ADD(LAYER("post_attention_layernorm.weight"), W->mlp_norm + l * C, 1, C);
        ADD(LAYER("mlp.gate_proj.weight"), W->wgate + l * F * C, 2, F, C);
        ADD(LAYER("mlp.up_proj.weight"), W->wup + l * F * C, 2, F, C);
        ADD(LAYER("mlp.down_proj.weight"), W->wdown + l * C * F, 2, C, F);
#undef LAYER
    }
    ADD("model.norm.weight", W->final_norm, 1, C);
    if (W->lm_head != W->embed) ADD("lm_head.weight", W->lm_head, 2, V, C);
#undef ADD
    return 0;
}

// ---------------------------------------------------------------------------------------
// The pass on a CUDA device

#ifdef VET_CUDA
// One forward + backward of the GPU model made with flags (the precision, VET_GPU_FULL) plus the
// environment's diagnostics: the mean loss in *loss and, when grads is not NULL, the gradients
// of the mean loss (n floats, laid out as lora_mem / w_mem) computed for loss * scale and divided
// by scale.
static int device_fwdbwd(const vet_device_choice *dc, unsigned flags, const vet_model *m, const vet_batch *b,
                         float scale, float *grads, size_t n, float *loss, vet_err *err) {
    char why[512];
    if (!vet_cuda_available(why, sizeof why)) return vet_errf(err, "--device cuda: %s", why);
    if (vet_gpu_env_flags(&flags, err) < 0) return -1;
    vet_cuda *ctx = vet_cuda_new(dc->index, err);
    if (!ctx) return -1;
    vet_gpu_opts o = {.flags = flags};
    vet_gpu_model *g = vet_gpu_model_new(ctx, m, b->B, b->T, &o, err);
    double sum = 0;
    int nt = 0;
    int rc = g ? vet_gpu_forward(g, b, &sum, &nt, 0, 0, err) : -1;  // no dropout, as the CPU pass
    if (rc == 0 && nt == 0) rc = vet_errf(err, "the batch has no target positions (every target is -1)");
    if (rc == 0 && grads) {
        vet_train_mode mode = flags & VET_GPU_FULL ? VET_TRAIN_FULL : VET_TRAIN_LORA;
        rc = vet_gpu_backward(g, scale / (float)nt, mode, err);
        if (rc == 0) rc = vet_gpu_download_grads(g, grads, n, err);
        for (size_t i = 0; rc == 0 && i < n; i++) grads[i] /= scale;
    }
    if (rc == 0) *loss = (float)(sum / nt);
    vet_gpu_model_free(g);
    vet_cuda_free(ctx);
    return rc;
}
#else
static int device_fwdbwd(const vet_device_choice *dc, unsigned flags, const vet_model *m, const vet_batch *b,
                         float scale, float *grads, size_t n, float *loss, vet_err *err) {
    (void)dc, (void)flags, (void)m, (void)b, (void)scale, (void)grads, (void)n, (void)loss;
    return vet_errf(err, "--device cuda: vet was built without CUDA (rebuild with nvcc on PATH)");
}
#endif

// The GPU model's flags for --dtype (the CPU computes in fp32 only) and --full.
static unsigned device_flags(const vet_device_choice *dc, int full) {
    return (dc->dtype == VET_DTYPE_BF16 ? VET_GPU_BF16 : 0) | (dc->dtype == VET_DTYPE_FP16 ? VET_GPU_FP16 : 0) |
           (full ? VET_GPU_FULL : 0);
}

// ---------------------------------------------------------------------------------------

int main(int argc, char **argv) {
    const char *model_dir = NULL, *adapter = NULL, *batch_path = NULL, *out = NULL, *save = NULL;
    const char *targets = "q,k,v,o", *device = NULL, *dtype = NULL;
    int full = 0, threads = 0, r = 4, rslora = 0;
    float alpha = 8, dropout = 0, scale = 1;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage, stdout); return 0; }
        if (!strcmp(a, "--version")) { puts("vet-fwdbwd " VET_VERSION); return 0; }
        if (!strcmp(a, "--full")) { full = 1; continue; }
        if (!strcmp(a, "--lora-rslora")) { rslora = 1; continue; }
        if (!v) { fprintf(stderr, "vet-fwdbwd: %s needs a value\n%s", a, usage); return 2; }
        i++;
        if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--adapter")) adapter = v;
        else if (!strcmp(a, "--batch")) batch_path = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--save-adapter")) save = v;
        else if (!strcmp(a, "--lora-r")) r = atoi(v);
        else if (!strcmp(a, "--lora-alpha")) alpha = strtof(v, NULL);
        else if (!strcmp(a, "--lora-dropout")) dropout = strtof(v, NULL);
        else if (!strcmp(a, "--lora-targets")) targets = v;
        else if (!strcmp(a, "--lora-seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--dtype")) dtype = v;
        else if (!strcmp(a, "--loss-scale")) scale = strtof(v, NULL);
        else { fprintf(stderr, "vet-fwdbwd: unknown option %s\n%s", a, usage); return 2; }
    }
    if (!model_dir || (!save && (!batch_path || !out)) || (adapter && full)) {
        fputs(usage, stderr);
        return 2;
    }
    vet_set_threads(threads);
    vet_device_choice dc;
    vet_err err = {0};
    if (vet_device_choose(device, dtype, NULL, "base weights", &dc, &err) < 0) {
        fprintf(stderr, "vet-fwdbwd: %s\n", err.msg);
        return 2;
    }
    if (!(scale > 0)) die("--loss-scale: give a positive number");

    vet_model m = {0};
    if (vet_model_load(&m, model_dir, &err)) die(err.msg);

    if (save) {
        unsigned mask;
        if (vet_lora_parse_targets(targets, &mask, &err)) die(err.msg);
        if (vet_model_add_lora(&m, r, alpha, dropout, rslora, mask, seed, &err)) die(err.msg);
        // B starts at zero in training; a test needs an adapter that changes the logits.
        vet_rng rng;
        vet_rng_seed(&rng, vet_rng_hash(seed, 0xB));
        for (int t = 0; t < VET_LORA_N_TARGETS; t++) {
            if (!m.lora.B[t]) continue;
            int64_t o, in;
            vet_adapter_target_dims(&m.cfg, t, &o, &in);
            size_t n = (size_t)m.cfg.n_layers * o * r;  // (L, out, r)
            for (size_t k = 0; k < n; k++) m.lora.B[t][k] = 0.2f * (float)vet_rng_normal(&rng);
        }
        if (vet_adapter_save(save, &m, model_dir, &err)) die(err.msg);
        vet_model_free(&m);
        return 0;
    }

    if (adapter && vet_adapter_load(&m, adapter, &err)) die(err.msg);

    vet_batch b = {0};
    if (read_batch(batch_path, m.cfg.vocab_size, &b, &err)) die(err.msg);
    vet_train_mode mode = full ? VET_TRAIN_FULL : VET_TRAIN_LORA;
    size_t n_grads = !(full || adapter) ? 0 : full ? m.n_w : m.n_lora;
    float *grads = n_grads ? calloc(n_grads, sizeof(float)) : NULL, *logits = NULL, loss;
    if (n_grads && !grads) die("out of memory");
    if (dc.cuda) {
        if (device_fwdbwd(&dc, device_flags(&dc, full), &m, &b, scale, grads, n_grads, &loss, &err)) die(err.msg);
    } else {
        vet_acts *acts = vet_acts_new(&m, b.B, b.T, &err);
        if (!acts) die(err.msg);
        logits = malloc(sizeof(float) * (size_t)b.B * b.T * m.cfg.vocab_size);
        if (!logits) die("out of memory");
        double loss_sum = 0;
        int n_targets = 0;
        if (vet_model_forward(&m, acts, &b, logits, &loss_sum, &n_targets, 0, 0, &err)) die(err.msg);
        if (n_targets == 0) die("the batch has no target positions (every target is -1)");
        loss = (float)(loss_sum / n_targets);
        if (grads && vet_model_backward(&m, acts, &b, 1.0f / n_targets, mode, grads, &err)) die(err.msg);
        vet_acts_free(acts);
    }

    vet_st_writer *w = vet_st_writer_new();
    if (!w) die("out of memory");
    int64_t sl[3] = {b.B, b.T, m.cfg.vocab_size}, s1[1] = {1};
    if ((logits && vet_st_writer_add(w, "logits", VET_DT_F32, 3, sl, logits, &err)) ||
        vet_st_writer_add(w, "loss", VET_DT_F32, 1, s1, &loss, &err) ||
        (full && add_full_grads(w, &m, grads, &err)) ||
        (adapter && add_lora_grads(w, &m, grads, &err)) ||
        vet_st_writer_write(w, out, &err))
        die(err.msg);

    vet_st_writer_free(w);
    free(grads);
    free(logits);
    vet_batch_free(&b);
    vet_model_free(&m);
    return 0;
}
