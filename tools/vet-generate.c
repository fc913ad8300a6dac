// vet-generate — notes in, diagnoses out: runs a model (and optionally a LoRA adapter) over
// the prompts of a `tokens` or `packed` stream and writes a `predictions` stream.
//
// The work is in lib/infer.c (KV cache, batching, sampling), lib/gpu_infer.c (the same forward
// on a CUDA device, --device cuda) and lib/constrain.c (constrained decoding); this file reads
// the input, decodes the generated ids to text, finds the labels in it and writes the records
// back in input order.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "model/adapter.h"
#include "cli.h"
#include "generate/constrain.h"
#include "generate/ensemble.h"
#include "kernels/host/gpu_infer.h"
#include "model/quant.h"
#include "base/sha256.h"
#include "generate/decoder.h"
#include "data/labels.h"
#include "model/model.h"
#include "model/model_save.h"
#include "io/mp.h"
#include "model/ops.h"
#include "data/spm.h"
#include "io/stream.h"

#define DEFAULT_PREFIX "Diagnosed conditions: "
#define DEFAULT_MAX_LEN 512  // --device cuda: positions per note's KV cache
// Device memory a plan may take: the free memory less room for what is allocated outside the
// plan (cuBLAS workspaces, kernel modules loaded on first use); as vet-train.
#define GPU_HEADROOM ((size_t)256 << 20)
#define MAX_MODELS 16        // --model given more than once: an ensemble (lib/ensemble.h)

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf("usage: vet-generate --model DIR [OPTIONS] [INPUT]\n"
           "Generates a diagnosis for every note of INPUT (a `tokens` stream from vet-tokenize, or\n"
           "a `packed` stream from vet-pack; stdin when none or '-') and writes a `predictions`\n"
           "stream: per note its id, species, gold labels, predicted labels and the text.\n"
           "\n"
           "  -m, --model DIR        Hugging Face model directory (config.json, safetensors); given\n"
           "                         K times (K <= %d), an ensemble: each token is chosen from the\n"
           "                         K models' mean next-token probabilities (CPU, no --adapter)\n"
           "  -a, --adapter DIR      PEFT LoRA adapter to apply (merged into the weights)\n"
           "  -s, --spm FILE         tokenizer (default DIR/tokenizer.model of the first --model);\n"
           "                         must be the one the input was tokenized with, and the one\n"
           "                         shipped in every --model DIR that has one\n"
           "  -o, --output FILE      the predictions stream (default stdout, '-')\n"
           "  -n, --max-new N        at most N new tokens per note (default 100)\n"
           "  -b, --batch N          decode N notes at once (default 8); results do not depend on it\n"
           "      --temperature T    sample at temperature T (default 0: greedy)\n"
           "      --top-p P          sample from the smallest set of tokens with mass P (default 1)\n"
           "      --top-k K          sample from the K most likely tokens (default 0: all)\n"
           "      --seed S           seed of the sampler (default 0)\n"
           "      --constrain FILE   only write `Diagnosed conditions: ` and labels of this code\n"
           "                         table (one label per line, or code<TAB>term), then stop\n"
           "      --codes FILE       more labels to find in the text (the --constrain table's are\n"
           "                         always looked for; so are 6-18 digit codes)\n"
           "  -t, --threads N        threads (default 0: OMP_NUM_THREADS, else all cores)\n"
           "      --device cpu|cuda[:N]  where the model runs (default cpu); cuda = cuda:0\n"
           "      --bf16             CUDA: weight matrices in bf16 (the default on cuda, unless\n"
           "                         config.json's dtype is float16)\n"
           "      --fp16             CUDA: weight matrices in IEEE fp16, fp32 accumulation (the\n"
           "                         default on cuda when config.json's dtype is float16)\n"
           "      --fp32             CUDA: weights in fp32, the CPU's results up to rounding\n"
           "      --quant none|int8|nf4  CUDA: weight matrices stored int8 (a scale per row) or nf4\n"
           "                         (QLoRA's, an absmax per 64), dequantized for each GEMM (none)\n"
           "      --max-len N        CUDA: positions per note in the KV cache, prompt + new\n"
           "                         tokens (default %d); sizes the device memory plan\n"
           "  -q, --quiet            no progress and no summary on stderr\n"
           "  -h, --help             this help\n"
           "  -V, --version          print the version\n"
           "\n"
           "Exit status: 0 ok, 1 bad input, 2 usage error (also: no usable device, a plan that\n"
           "does not fit it), 3 I/O error.\n", MAX_MODELS, DEFAULT_MAX_LEN);
    exit(EXIT_OK);
}

// ---------------------------------------------------------------------------------------
// Notes waiting for their turn to be written (results arrive in completion order).
typedef struct {
    char *id, *species;
    char **gold;
    size_t n_gold;
    int done;
    char *text;
    char **pred;
    size_t n_pred;
    int32_t *gen;
    int n_gen;
    double ms;
} note;

typedef struct {
    // input
    vet_reader *r;
    int packed;
    const msgpack_object *rec;
    int row_sample, row_samples;   // packed: the next sample of the current row
    int32_t *row_tokens, *row_starts, *row_plens;
    size_t row_n;
    int32_t *prompt;               // tokens: the current record's prompt
    int64_t n_read;
    int V;
    int max_pos, max_new;           // --device cuda: a note needs at most max_pos positions (0: any)
    // pending notes, tag base .. base + n_pending - 1
    note *pend;
    int64_t base;
    size_t n_pending, cap_pending;
    // output
    vet_writer *w;
    const vet_spm *spm;
    const vet_labels *vocab;
    const int32_t *eos;
    int n_eos;
    int status;                     // exit status of the first failure
    // progress
    int64_t notes_out, tokens_out;
    double t0, last_progress;
    int progress;
    vet_gen_stats stats;  // prefill and decode-step timings (lib/infer.h)
} gen_ctx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void free_note(note *n) {
    free(n->id), free(n->species), free(n->text), free(n->gen);
    mp_free_strs(n->gold, n->n_gold);
    vet_labels_free_list(n->pred, n->n_pred);
    memset(n, 0, sizeof *n);
}

static note *push_note(gen_ctx *c) {
    if (c->n_pending == c->cap_pending) {
        size_t cap = c->cap_pending ? 2 * c->cap_pending : 32;
        note *p = realloc(c->pend, cap * sizeof *p);
        if (!p) return NULL;
        c->pend = p, c->cap_pending = cap;
    }
    note *n = &c->pend[c->n_pending++];
    memset(n, 0, sizeof *n);
    return n;
}

// An array of arrays of strings (packed `codes`), element k.
static int str_array_at(const msgpack_object *rec, const char *key, int k, char ***out, size_t *n,
                        vet_err *err) {
    const msgpack_object *o = mp_get(rec, key);
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || (uint32_t)k >= o->via.array.size)
        return vet_errf(err, "field %s lacks entry %d", key, k);
    const msgpack_object *a = &o->via.array.ptr[k];
    if (a->type != MSGPACK_OBJECT_ARRAY) return vet_errf(err, "field %s[%d] is not an array", key, k);
    *n = a->via.array.size;
    *out = calloc(*n ? *n : 1, sizeof(char *));
    for (size_t i = 0; i < *n; i++) {
        const msgpack_object *s = &a->via.array.ptr[i];
        if (s->type != MSGPACK_OBJECT_STR) {
            mp_free_strs(*out, i);
            return vet_errf(err, "field %s[%d][%zu] is not a string", key, k, i);
        }
        (*out)[i] = strndup(s->via.str.ptr, s->via.str.size);
    }
    return 0;
}

static char *str_at(const msgpack_object *rec, const char *key, int k) {
    const msgpack_object *o = mp_get(rec, key);
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || (uint32_t)k >= o->via.array.size ||
        o->via.array.ptr[k].type != MSGPACK_OBJECT_STR)
        return NULL;
    return strndup(o->via.array.ptr[k].via.str.ptr, o->via.array.ptr[k].via.str.size);
}

static void free_row(gen_ctx *c) {
    free(c->row_tokens), free(c->row_starts), free(c->row_plens);
    c->row_tokens = c->row_starts = c->row_plens = NULL;
    c->row_sample = c->row_samples = 0;
}

static int bad_record(gen_ctx *c, vet_err *err) {
    c->status = EXIT_BAD_INPUT;
    return vet_err_prefix(err, "%s: record %llu", vet_reader_path(c->r),
                          (unsigned long long)vet_reader_records(c->r));
}

// The next prompt: one per `tokens` record, one per sample of a `packed` row.
static int next_prompt(void *ctx, vet_gen_prompt *p, vet_err *err) {
    gen_ctx *c = ctx;
    free(c->prompt);
    c->prompt = NULL;
    while (c->packed && c->row_sample >= c->row_samples) {
        free_row(c);
        int rc = vet_reader_next(c->r, &c->rec, err);
        if (rc <= 0) {
            if (rc < 0) c->status = EXIT_BAD_INPUT;
            return rc;
        }
        size_t ns, np;
        if (mp_get_i32_array(c->rec, "tokens", &c->row_tokens, &c->row_n, err) ||
            mp_get_i32_array(c->rec, "starts", &c->row_starts, &ns, err) ||
            mp_get_i32_array(c->rec, "prompt_lens", &c->row_plens, &np, err))
            return bad_record(c, err);
        if (ns != np || ns == 0) {
            vet_errf(err, "starts has %zu entries but prompt_lens %zu", ns, np);
            return bad_record(c, err);
        }
        c->row_samples = (int)ns;
    }
    note *n = push_note(c);
    if (!n) {
        c->status = EXIT_BAD_INPUT;
        return vet_errf(err, "out of memory");
    }
    if (c->packed) {
        int k = c->row_sample++;
        n->id = str_at(c->rec, "ids", k);
        n->species = str_at(c->rec, "species", k);
        if (!n->id) {
            vet_errf(err, "field ids lacks entry %d", k);
            return bad_record(c, err);
        }
        if (str_array_at(c->rec, "codes", k, &n->gold, &n->n_gold, err)) return bad_record(c, err);
        int start = c->row_starts[k], len = c->row_plens[k];
        int end = k + 1 < c->row_samples ? c->row_starts[k + 1] : (int)c->row_n;
        if (start < 0 || len <= 0 || start + len > end) {
            vet_errf(err, "sample %d: prompt of %d tokens at %d does not fit its sample [%d, %d)", k, len,
                     start, start, end);
            return bad_record(c, err);
        }
        p->prompt = c->row_tokens + start, p->n_prompt = len;
    } else {
        int rc = vet_reader_next(c->r, &c->rec, err);
        if (rc <= 0) {
            c->n_pending--;  // the note pushed above does not exist
            if (rc < 0) c->status = EXIT_BAD_INPUT;
            return rc;
        }
        size_t np;
        if (!(n->id = mp_get_strdup(c->rec, "id", err)) ||
            mp_get_str_array(c->rec, "codes", &n->gold, &n->n_gold, err) ||
            mp_get_i32_array(c->rec, "prompt", &c->prompt, &np, err))
            return bad_record(c, err);
        const msgpack_object *sp = mp_get(c->rec, "species");
        n->species = sp && sp->type == MSGPACK_OBJECT_STR ? strndup(sp->via.str.ptr, sp->via.str.size) : NULL;
        if (np == 0) {
            vet_errf(err, "note %s has an empty prompt", n->id);
            return bad_record(c, err);
        }
        p->prompt = c->prompt, p->n_prompt = (int)np;
    }
    if (!n->species) n->species = strdup("");
    // The device KV cache has room for max_pos positions: the prompt and every generated token
    // but the last (which is never fed back).
    long need = (long)p->n_prompt + (c->max_new > 0 ? c->max_new - 1 : 0);
    if (c->max_pos > 0 && need > c->max_pos) {
        c->status = EXIT_USAGE;
        return vet_errf(err, "note %s: a prompt of %d tokens and --max-new %d need %ld positions, but the device "
                        "KV cache holds --max-len %d (raise --max-len)", n->id, p->n_prompt, c->max_new, need,
                        c->max_pos);
    }
    for (int i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= c->V) {
            vet_errf(err, "note %s: prompt token %d is outside the model's vocabulary [0, %d) (was the "
                          "input tokenized for this model?)", n->id, p->prompt[i], c->V);
            return bad_record(c, err);
        }
    p->tag = c->n_read++;
    return 1;
}

static int write_note(gen_ctx *c, const note *n, vet_err *err) {
    msgpack_packer *pk = vet_writer_packer(c->w);
    msgpack_pack_map(pk, 8);
    mp_kv_str(pk, "id", n->id);
    mp_kv_str(pk, "species", n->species);
    mp_kv_str_array(pk, "gold", n->gold, n->n_gold);
    mp_kv_str_array(pk, "pred", n->pred, n->n_pred);
    mp_kv_str(pk, "text", n->text);
    mp_kv_int(pk, "tokens", n->n_gen);
    mp_kv_double(pk, "ms", n->ms);
    mp_kv_i32_array(pk, "generated", n->gen, (size_t)n->n_gen);
    if (vet_writer_record_end(c->w, err)) {
        c->status = EXIT_IO;
        return -1;
    }
    return 0;
}

static void show_progress(gen_ctx *c, int final) {
    double t = now_s() - c->t0;
    if (!final && t - c->last_progress < 0.5) return;
    c->last_progress = t;
    fprintf(stderr, "%svet-generate: %lld notes, %lld tokens, %.1f tokens/s%s", final ? "" : "\r",
            (long long)c->notes_out, (long long)c->tokens_out, t > 0 ? c->tokens_out / t : 0.0,
            final ? "" : "   ");
    if (!final) return;
    // The two phases separately: prompts run as GEMMs, decode steps one token per note.
    const vet_gen_stats *st = &c->stats;
    fprintf(stderr, " (%.1f s; prompts %lld tokens at %.1f tokens/s, decode steps %lld tokens at "
                    "%.1f tokens/s)\n",
            t, (long long)st->prompt_tokens,
            st->prefill_ms > 0 ? st->prompt_tokens / (st->prefill_ms * 1e-3) : 0.0,
            (long long)st->step_tokens, st->step_ms > 0 ? st->step_tokens / (st->step_ms * 1e-3) : 0.0);
}

// A finished note: decode its text, find its labels, write every note now due in order.
static int note_done(void *ctx, const vet_gen_result *r, vet_err *err) {
    gen_ctx *c = ctx;
    note *n = &c->pend[r->tag - c->base];
    n->gen = malloc((size_t)(r->n_ids + 1) * sizeof(int32_t));
    int32_t *keep = malloc((size_t)(r->n_ids + 1) * sizeof(int32_t));
    if (!n->gen || !keep) {
        free(keep);
        c->status = EXIT_BAD_INPUT;
        return vet_errf(err, "out of memory");
    }
    memcpy(n->gen, r->ids, (size_t)r->n_ids * sizeof(int32_t));
    n->n_gen = r->n_ids, n->ms = r->ms;
    // The text: EOS and ids the tokenizer does not know (a model vocabulary padded beyond it)
    // are left out.
    int nk = 0, sv = vet_spm_vocab_size(c->spm);
    for (int i = 0; i < r->n_ids; i++) {
        int is_eos = 0;
        for (int e = 0; e < c->n_eos; e++) is_eos |= r->ids[i] == c->eos[e];
        if (!is_eos && r->ids[i] < sv) keep[nk++] = r->ids[i];
    }
    n->text = vet_spm_decode(c->spm, keep, (size_t)nk, err);
    free(keep);
    if (!n->text) {
        c->status = EXIT_BAD_INPUT;
        return -1;
    }
    if (vet_labels_extract(c->vocab, n->text, strlen(n->text), &n->pred, &n->n_pred, NULL, err)) {
        c->status = EXIT_BAD_INPUT;
        return -1;
    }
    n->done = 1;
    size_t k = 0;
    for (; k < c->n_pending && c->pend[k].done; k++) {
        if (write_note(c, &c->pend[k], err)) return -1;
        c->notes_out++, c->tokens_out += c->pend[k].n_gen;
        free_note(&c->pend[k]);
    }
    if (k) {
        memmove(c->pend, c->pend + k, (c->n_pending - k) * sizeof *c->pend);
        c->n_pending -= k, c->base += (int64_t)k;
    }
    if (c->progress) show_progress(c, 0);
    return 0;
}

// ---------------------------------------------------------------------------------------

// K models on the CPU, each with its own KV cache, decoding as one (lib/ensemble.h): first is
// the first --model (adapter merged), members[1..k) the others.
static int generate_ensemble(const vet_model *first, const vet_model *members, int k, int batch,
                             const vet_gen_opts *o, gen_ctx *ctx, vet_err *err) {
    vet_infer *fwd[MAX_MODELS] = {0};
    vet_infer_backend be[MAX_MODELS];
    int rc = -1;
    for (int i = 0; i < k; i++) {
        if (!(fwd[i] = vet_infer_new(i == 0 ? first : &members[i], batch, err))) goto out;
        vet_infer_backend_of(fwd[i], &be[i]);
    }
    vet_ensemble *e = vet_ensemble_new(be, k, first->cfg.vocab_size, batch, err);
    if (!e) goto out;
    vet_infer_backend ens;
    vet_ensemble_backend(e, &ens);
    rc = vet_generate_on(&ens, first->cfg.vocab_size, o, batch, next_prompt, note_done, ctx, err);
    vet_ensemble_free(e);
out:
    for (int i = 0; i < k; i++) vet_infer_free(fwd[i]);
    return rc;
}

static vet_labels *load_codes(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) cli_fail(EXIT_IO, "%s: cannot open", path);
    vet_err err;
    vet_labels *v = vet_codes_load(f, path, &err);
    fclose(f);
    if (!v) cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
    return v;
}


static long parse_long(const char *s, const char *flag, long lo, long hi) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) cli_usage_error("%s wants an integer in [%ld, %ld], got '%s'", flag, lo, hi, s);
    return v;
}

// "1.5 GiB", "12.0 MiB", "3.0 KiB" into buf.
static const char *bytes_str(char *buf, size_t b) {
    if (b >= (size_t)1 << 30) snprintf(buf, 32, "%.2f GiB", b / (double)(1 << 30));
    else if (b >= (size_t)1 << 20) snprintf(buf, 32, "%.1f MiB", b / (double)(1 << 20));
    else snprintf(buf, 32, "%.1f KiB", b / 1024.0);
    return buf;
}

static float parse_float(const char *s, const char *flag, float lo, float hi) {
    char *end;
    float v = strtof(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi)) cli_usage_error("%s wants a number in [%g, %g], got '%s'", flag, lo, hi, s);
    return v;
}

// The model on the device: its memory plan said (unless quiet), then checked against the free
// memory less GPU_HEADROOM before anything is allocated there, then one allocation and the
// upload. NULL with err and *status (EXIT_USAGE: the plan does not fit) on failure.
// half: 0 (fp32), VET_GPU_BF16 or VET_GPU_FP16.
static vet_gpu_infer *setup_device(vet_cuda *cuda, const vet_model *m, int gpu_index, int batch, int max_len,
                                   unsigned half, vet_quant_kind quant, size_t free_b, size_t total_b, int quiet,
                                   int *status, vet_err *err) {
    unsigned flags = half | (quant == VET_QUANT_INT8 ? VET_GPU_INT8 : quant == VET_QUANT_NF4 ? VET_GPU_NF4 : 0);
    vet_gpu_infer_plan p;
    if (vet_gpu_infer_plan_bytes(&m->cfg, batch, max_len, flags, &p, err)) return NULL;
    size_t usable = free_b > GPU_HEADROOM ? free_b - GPU_HEADROOM : 0;
    char w[32], kv[32], sc[32], tot[32], fr[32], all[32], us[32], hr[32];
    if (!quiet)
        fprintf(stderr, "vet-generate: device memory plan for %d notes x %d positions: weights %s, KV cache %s, "
                "scratch %s; total %s of %s free (%s on the device)\n", batch, max_len, bytes_str(w, p.weights),
                bytes_str(kv, p.cache), bytes_str(sc, p.scratch), bytes_str(tot, p.total), bytes_str(fr, free_b),
                bytes_str(all, total_b));
    if (p.total > usable) {
        *status = EXIT_USAGE;
        vet_errf(err, "the model needs %s on cuda:%d (weights %s, KV cache %s, scratch %s) but only %s of its %s "
                 "free can be planned (%s is kept for cuBLAS and kernels): use a smaller --batch than %d or a "
                 "smaller --max-len than %d%s", bytes_str(tot, p.total), gpu_index, bytes_str(w, p.weights),
                 bytes_str(kv, p.cache), bytes_str(sc, p.scratch), bytes_str(us, usable), bytes_str(fr, free_b),
                 bytes_str(hr, GPU_HEADROOM), batch, max_len,
                 quant == VET_QUANT_NF4 ? "" : quant ? ", or --quant nf4"
                 : half == VET_GPU_FP16 ? ", or --quant int8 / nf4 (without --fp16)"
                 : half ? ", or --quant int8 / nf4" : ", or --bf16 weights");
        return NULL;
    }
    vet_gpu_opts go = {.flags = flags, .mem_limit = usable};
    return vet_gpu_infer_new(cuda, m, batch, max_len, &go, err);
}

int main(int argc, char **argv) {
    cli_prog = "vet-generate";
    enum { OPT_TEMP = 256, OPT_TOPP, OPT_TOPK, OPT_SEED, OPT_CONSTRAIN, OPT_CODES, OPT_DEVICE, OPT_BF16,
           OPT_FP32, OPT_FP16, OPT_MAXLEN, OPT_QUANT };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"adapter", required_argument, 0, 'a'},
        {"spm", required_argument, 0, 's'},     {"output", required_argument, 0, 'o'},
        {"max-new", required_argument, 0, 'n'}, {"batch", required_argument, 0, 'b'},
        {"temperature", required_argument, 0, OPT_TEMP}, {"top-p", required_argument, 0, OPT_TOPP},
        {"top-k", required_argument, 0, OPT_TOPK}, {"seed", required_argument, 0, OPT_SEED},
        {"constrain", required_argument, 0, OPT_CONSTRAIN}, {"codes", required_argument, 0, OPT_CODES},
        {"threads", required_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'},
        {"device", required_argument, 0, OPT_DEVICE}, {"bf16", no_argument, 0, OPT_BF16},
        {"fp32", no_argument, 0, OPT_FP32}, {"fp16", no_argument, 0, OPT_FP16},
        {"max-len", required_argument, 0, OPT_MAXLEN},
        {"quant", required_argument, 0, OPT_QUANT},
        {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    const char *model_dirs[MAX_MODELS], *adapter = NULL, *spm_path = NULL, *out = "-", *constrain_path = NULL;
    const char *codes_path = NULL, *device = "cpu", *dtype = NULL, *quant = "none";
    int n_models = 0, max_new = 100, batch = 8, threads = 0, quiet = 0, max_len = 0, c;
    vet_sampling sampling = {0.0f, 1.0f, 0};
    uint64_t seed = 0;
    while ((c = getopt_long(argc, argv, "m:a:s:o:n:b:t:qhV", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (n_models == MAX_MODELS) cli_usage_error("--model: at most %d models in an ensemble", MAX_MODELS);
            model_dirs[n_models++] = optarg;
            break;
        case 'a': adapter = optarg; break;
        case 's': spm_path = optarg; break;
        case 'o': out = optarg; break;
        case 'n': max_new = (int)parse_long(optarg, "--max-new", 0, 1 << 20); break;
        case 'b': batch = (int)parse_long(optarg, "--batch", 1, 4096); break;
        case 't': threads = (int)parse_long(optarg, "--threads", 0, 1024); break;
        case OPT_TEMP: sampling.temperature = parse_float(optarg, "--temperature", 0.0f, 1e6f); break;
        case OPT_TOPP: sampling.top_p = parse_float(optarg, "--top-p", 0.0f, 1.0f); break;
        case OPT_TOPK: sampling.top_k = (int)parse_long(optarg, "--top-k", 0, 1 << 30); break;
        case OPT_SEED: seed = (uint64_t)parse_long(optarg, "--seed", 0, 0x7fffffffffffffffL); break;
        case OPT_CONSTRAIN: constrain_path = optarg; break;
        case OPT_CODES: codes_path = optarg; break;
        case OPT_DEVICE: device = optarg; break;
        case OPT_BF16: dtype = "bf16"; break;
        case OPT_FP32: dtype = "fp32"; break;
        case OPT_FP16: dtype = "fp16"; break;
        case OPT_MAXLEN: max_len = (int)parse_long(optarg, "--max-len", 1, 1 << 20); break;
        case OPT_QUANT: quant = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage();
        case 'V': cli_version();
        default: cli_usage_error("unknown option");
        }
    }
    if (!n_models) cli_usage_error("--model DIR is required");
    const char *model_dir = model_dirs[0];
    if (n_models > 1 && adapter)
        cli_usage_error("--adapter with %d --model: an adapter belongs to one base; merge it into its model first, "
                        "or decode with one --model", n_models);
    if (argc - optind > 1) cli_usage_error("one input at most (got %d)", argc - optind);
    const char *in_path = optind < argc ? argv[optind] : "-";
    // Default: OMP_NUM_THREADS when set, else every core.
    const char *omp_env = getenv("OMP_NUM_THREADS");
    vet_set_threads(threads > 0 || !omp_env ? threads : atoi(omp_env));
    vet_err err;

    // The device first, before any input is read: a wrong one fails at once.
    int use_cuda = 0, gpu_index = 0;
    if (strncmp(device, "cuda", 4) == 0 && (device[4] == 0 || device[4] == ':')) {
        use_cuda = 1;
        if (device[4] == ':') gpu_index = (int)parse_long(device + 5, "--device cuda:N", 0, 1024);
    } else if (strcmp(device, "cpu") != 0) {
        cli_usage_error("--device: '%s' is not cpu, cuda or cuda:N", device);
    }
    if (use_cuda && n_models > 1)
        cli_usage_error("an ensemble of %d models runs on the CPU only (--device cpu), or decode with one --model",
                        n_models);
    if (!use_cuda && dtype && strcmp(dtype, "fp32") != 0)
        cli_usage_error("--%s: the CPU backend computes in fp32; %s weights need --device cuda", dtype, dtype);
    if (!use_cuda && max_len) cli_usage_error("--max-len sizes the device KV cache: it needs --device cuda");
    vet_quant_kind qk;
    if (vet_quant_parse(quant, &qk, &err) < 0) cli_usage_error("--quant: %s", err.msg);
    if (!use_cuda && qk != VET_QUANT_NONE)
        cli_usage_error("--quant %s: quantized weights need --device cuda (the CPU backend computes in fp32)", quant);
    if (qk != VET_QUANT_NONE && dtype && strcmp(dtype, "fp16") == 0)
        cli_usage_error("--quant %s with --fp16: quantized weights are dequantized to bf16 or fp32 for their GEMMs; "
                        "drop one", quant);
    // The weights' format on the device: as asked, else fp16 for a checkpoint stored in float16
    // (config.json's dtype: bf16 would drop 3 mantissa bits of each of its weights), else bf16.
    // A config that does not load here fails with its reason when the model is loaded below.
    unsigned gpu_half = 0;
    const char *half_why = "";
    if (use_cuda && dtype) {
        gpu_half = strcmp(dtype, "bf16") == 0 ? VET_GPU_BF16 : strcmp(dtype, "fp16") == 0 ? VET_GPU_FP16 : 0;
    } else if (use_cuda) {
        vet_config stored;
        vet_err cerr;
        int f16 = qk == VET_QUANT_NONE && vet_config_load(&stored, model_dir, &cerr) == 0 &&
                  strcmp(stored.torch_dtype, "float16") == 0;
        gpu_half = f16 ? VET_GPU_FP16 : VET_GPU_BF16;
        if (f16) half_why = " (the checkpoint's dtype, float16)";
    }
    const char *half_name = gpu_half == VET_GPU_FP16 ? "fp16" : gpu_half ? "bf16" : "fp32";
    if (!max_len) max_len = DEFAULT_MAX_LEN;
    vet_cuda *cuda = NULL;
    size_t free_b = 0, total_b = 0;
    if (use_cuda) {
        char name[256];
        cuda = vet_gpu_infer_open(gpu_index, name, sizeof name, &free_b, &total_b, &err);
        if (!cuda) cli_fail(EXIT_USAGE, "--device %s: %s; use --device cpu", device, err.msg);
        if (!quiet && qk != VET_QUANT_NONE)
            fprintf(stderr, "vet-generate: device cuda:%d %s, weights %s (dequantized to %s for each GEMM)\n",
                    gpu_index, name, vet_quant_name(qk), half_name);
        else if (!quiet)
            fprintf(stderr, "vet-generate: device cuda:%d %s, weights %s%s\n", gpu_index, name, half_name, half_why);
    } else if (!quiet) {
        fprintf(stderr, "vet-generate: device cpu (%d threads), fp32\n", vet_get_threads());
    }

    // Input first: a wrong stream should fail before a model is loaded.
    vet_reader *r = vet_reader_open(in_path, NULL, &err);
    if (!r) cli_fail_err(&err);
    const char *kind = vet_reader_kind(r);
    if (strcmp(kind, "tokens") != 0 && strcmp(kind, "packed") != 0)
        cli_fail(EXIT_BAD_INPUT, "%s: a stream of kind '%s'; vet-generate reads 'tokens' (vet-tokenize) or "
                 "'packed' (vet-pack --no-pack)", vet_reader_path(r), kind);
    const msgpack_object *h = vet_reader_header(r);
    const msgpack_object *tok = mp_get(h, "tokenizer"), *tpl = mp_get(h, "template");
    const char *in_sha = NULL;
    size_t in_sha_len = 0;
    if (!tok || mp_get_str(tok, "sha256", &in_sha, &in_sha_len, &err))
        cli_fail(EXIT_BAD_INPUT, "%s: header lacks tokenizer.sha256 (not made by vet-tokenize?)", vet_reader_path(r));
    char *prefix = NULL;
    if (tpl && tpl->type == MSGPACK_OBJECT_MAP && mp_get(tpl, "response_prefix"))
        prefix = mp_get_strdup(tpl, "response_prefix", &err);
    if (!prefix) prefix = strdup(DEFAULT_PREFIX);

    // The tokenizer, and the check that the input was made with it.
    char spm_default[4096];
    if (!spm_path) {
        snprintf(spm_default, sizeof spm_default, "%s/tokenizer.model", model_dir);
        spm_path = spm_default;
    }
    vet_spm *spm = vet_spm_load(spm_path, &err);
    if (!spm) cli_fail_err(&err);   // corrupt: 1, unreadable: 3
    const char *sha = vet_spm_sha256(spm);
    if (strlen(sha) != in_sha_len || strncmp(sha, in_sha, in_sha_len) != 0)
        cli_fail(EXIT_BAD_INPUT, "tokenizer mismatch: %s was tokenized with a tokenizer of sha256 %.*s, but %s has "
                 "sha256 %s (tokenize with %s, or give the right one with --spm)", vet_reader_path(r),
                 (int)in_sha_len, in_sha, vet_spm_path(spm), sha, vet_spm_path(spm));

    vet_labels *ctable = constrain_path ? load_codes(constrain_path) : NULL;
    // The labels to find in the text: the --codes table and the --constrain table together.
    vet_labels *vocab = codes_path ? load_codes(codes_path) : NULL;
    if (vocab && ctable)
        for (size_t i = 0; i < vet_labels_count(ctable); i++) {
            const char *l = vet_labels_label(ctable, i);
            if (vet_labels_add(vocab, l, vet_labels_term(ctable, l), &err))
                cli_fail(EXIT_BAD_INPUT, "%s: %s", constrain_path, err.msg);
        }
    const vet_labels *label_vocab = vocab ? vocab : ctable;

    // The model, with the adapter merged in; an ensemble's other members (no adapter), each
    // checked against the first: the same vocabulary and end tokens, the same tokenizer.
    vet_model members[MAX_MODELS];
    vet_model m;
    if (vet_model_load(&m, model_dir, &err)) cli_fail_err(&err);
    if (adapter) {
        if (vet_adapter_load(&m, adapter, &err)) cli_fail_err(&err);
        vet_model_merge_lora(&m);
    }
    int V = m.cfg.vocab_size;
    for (int k = 1; k < n_models; k++) {
        vet_model *mk = &members[k];
        if (vet_model_load(mk, model_dirs[k], &err)) cli_fail_err(&err);
        if (mk->cfg.vocab_size != V)
            cli_fail(EXIT_BAD_INPUT, "%s: a vocabulary of %d tokens, but %s has %d: the models of an ensemble "
                     "must share one tokenizer", model_dirs[k], mk->cfg.vocab_size, model_dir, V);
        int same_eos = mk->cfg.n_eos == m.cfg.n_eos;
        for (int i = 0; same_eos && i < m.cfg.n_eos; i++) same_eos = mk->cfg.eos_ids[i] == m.cfg.eos_ids[i];
        if (!same_eos)
            cli_fail(EXIT_BAD_INPUT, "%s: its end-of-sequence ids differ from those of %s (config.json "
                     "eos_token_id): the models of an ensemble must share one tokenizer", model_dirs[k], model_dir);
    }
    for (int k = 0; k < n_models && n_models > 1; k++) {
        char shipped[4096], hex[65];
        struct stat st;
        snprintf(shipped, sizeof shipped, "%s/tokenizer.model", model_dirs[k]);
        if (stat(shipped, &st) != 0) continue;  // a model without its tokenizer: V was checked
        if (vet_sha256_file(shipped, hex, &err)) cli_fail(EXIT_IO, "%s", err.msg);
        if (strcmp(hex, vet_spm_sha256(spm)) != 0)
            cli_fail(EXIT_BAD_INPUT, "%s has sha256 %s, but the tokenizer in use (%s) has %s: the models of an "
                     "ensemble must share one tokenizer", shipped, hex, vet_spm_path(spm), vet_spm_sha256(spm));
    }
    int32_t eos[9];
    int n_eos = 0;
    for (int i = 0; i < m.cfg.n_eos; i++) eos[n_eos++] = m.cfg.eos_ids[i];
    int spm_eos = vet_spm_eos_id(spm), have = 0;
    for (int i = 0; i < n_eos; i++) have |= eos[i] == spm_eos;
    if (spm_eos >= 0 && spm_eos < V && !have) eos[n_eos++] = spm_eos;

    vet_constrain *cons = NULL;
    if (ctable) {
        size_t nl = vet_labels_count(ctable);
        char **labels = malloc((nl ? nl : 1) * sizeof *labels);
        for (size_t i = 0; i < nl; i++) labels[i] = (char *)vet_labels_label(ctable, i);
        char **pieces = vet_constrain_spm_pieces(spm, V, &err);
        if (!pieces) cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
        cons = vet_constrain_new(prefix, labels, nl, pieces, V, eos, n_eos, &err);
        vet_constrain_free_pieces(pieces, V);
        free(labels);
        if (!cons) cli_fail(EXIT_BAD_INPUT, "%s: %s", constrain_path, err.msg);
    }

    // On a device: the plan, the check, the upload (the host copy of the weights is not needed
    // after it). A refusal cleans up first, so a sanitized build exits with the status.
    vet_gpu_infer *gi = NULL;
    if (cuda) {
        int status = EXIT_BAD_INPUT;
        gi = setup_device(cuda, &m, gpu_index, batch, max_len, gpu_half, qk, free_b, total_b, quiet, &status, &err);
        if (!gi) {
            cli_warn("%s", err.msg);
            vet_reader_close(r);
            vet_constrain_free(cons);
            vet_labels_free(ctable);
            vet_labels_free(vocab);
            vet_model_free(&m);
            vet_gpu_infer_close(cuda);
            vet_spm_free(spm);
            free(prefix);
            return status;
        }
        vet_model_free(&m);
    }

    // The output header: what made these predictions.
    vet_writer *w = vet_writer_open(out, "predictions", "vet-generate", &err);
    if (!w) cli_fail(EXIT_IO, "%s", err.msg);
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, (tpl ? 6 : 5) + (n_models > 1));
    mp_kv_str(pk, "model", model_dir);
    if (n_models > 1) {
        mp_kv_str_array(pk, "ensemble", (char *const *)model_dirs, (size_t)n_models);
    }
    mp_key(pk, "adapter");
    if (adapter) mp_str(pk, adapter);
    else msgpack_pack_nil(pk);
    mp_key(pk, "tokenizer");
    msgpack_pack_object(pk, *tok);
    if (tpl) {
        mp_key(pk, "template");
        msgpack_pack_object(pk, *tpl);
    }
    mp_kv_str(pk, "source", in_path);
    mp_key(pk, "decoding");
    msgpack_pack_map(pk, 8);
    mp_kv_str(pk, "mode", sampling.temperature > 0 ? "sample" : "greedy");
    mp_kv_double(pk, "temperature", sampling.temperature);
    mp_kv_double(pk, "top_p", sampling.top_p);
    mp_kv_int(pk, "top_k", sampling.top_k);
    mp_kv_int(pk, "seed", (int64_t)seed);
    mp_kv_int(pk, "max_new", max_new);
    mp_kv_int(pk, "batch", batch);
    mp_key(pk, "constrain");
    if (constrain_path) mp_str(pk, constrain_path);
    else msgpack_pack_nil(pk);
    if (vet_writer_header_end(w, &err)) {
        vet_writer_abort(w);
        cli_fail(EXIT_IO, "%s", err.msg);
    }

    gen_ctx ctx = {0};
    ctx.r = r, ctx.packed = strcmp(kind, "packed") == 0, ctx.V = V;
    ctx.max_pos = gi ? max_len : 0, ctx.max_new = max_new;
    ctx.w = w, ctx.spm = spm, ctx.vocab = label_vocab, ctx.eos = eos, ctx.n_eos = n_eos;
    ctx.t0 = now_s(), ctx.progress = !quiet && cli_stderr_is_tty();
    vet_gen_opts o = {sampling, seed, max_new, eos, n_eos, cons, &ctx.stats};
    int rc;
    if (gi) {
        vet_infer_backend be;
        vet_gpu_infer_backend(gi, &be);
        rc = vet_generate_on(&be, V, &o, batch, next_prompt, note_done, &ctx, &err);
    } else if (n_models > 1) {
        rc = generate_ensemble(&m, members, n_models, batch, &o, &ctx, &err);
    } else {
        rc = vet_generate(&m, &o, batch, next_prompt, note_done, &ctx, &err);
    }
    if (ctx.progress) fputc('\n', stderr);
    if (rc == 0 && vet_writer_close(w, &err)) {
        ctx.status = EXIT_IO;
        rc = -1;
        w = NULL;
    }
    if (rc) {
        if (w) vet_writer_abort(w);
        cli_warn("%s", err.msg);
    } else if (!quiet) {
        show_progress(&ctx, 1);
    }
    for (size_t i = 0; i < ctx.n_pending; i++) free_note(&ctx.pend[i]);
    free(ctx.pend);
    free(ctx.prompt);
    free_row(&ctx);
    vet_reader_close(r);
    vet_constrain_free(cons);
    vet_labels_free(ctable);
    vet_labels_free(vocab);
    vet_model_free(&m);
    for (int k = 1; k < n_models; k++) vet_model_free(&members[k]);
    vet_gpu_infer_free(gi);
    vet_gpu_infer_close(cuda);
    vet_spm_free(spm);
    free(prefix);
    if (rc) return ctx.status ? ctx.status : EXIT_BAD_INPUT;
    return EXIT_OK;
}
