// vet-generate — notes in, diagnoses out: runs a model (and optionally a LoRA adapter) over
// the prompts of a `tokens` or `packed` stream and writes a `predictions` stream.
//
// The run is lib/generate/job.h's (input, tokenizer, code tables, models, the decoder, the
// stream written in input order); this file reads the flags, chooses where the model runs
// (the CPU, or a CUDA device through kernels/host/gpu_infer.h, whose forward it hands to the
// job), says what it does on stderr and maps a failure's kind to the exit status.
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "generate/job.h"
#include "kernels/host/device.h"
#include "kernels/host/gpu_infer.h"
#include "model/adapter.h"
#include "model/model.h"
#include "model/ops.h"

#define DEFAULT_MAX_LEN 512  // --device cuda: positions per note's KV cache

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf("usage: vet-generate --model DIR [OPTIONS] [INPUT]\n"
           "Generates a diagnosis for every note of INPUT (a `tokens` stream from vet-tokenize, or\n"
           "a `packed` stream from vet-pack; stdin when none or '-') and writes a `predictions`\n"
           "stream: per note its id, species, gold labels, predicted labels and the text.\n"
           "\n"
           "  -m, --model DIR        Hugging Face model directory (config.json, safetensors) or a GGUF\n"
           "                         file (FILE.gguf, llama architecture); given\n"
           "                         K times (K <= %d), an ensemble: each token is chosen from the\n"
           "                         K models' mean next-token probabilities (CPU, no --adapter)\n"
           "  -a, --adapter DIR      PEFT LoRA adapter to apply (merged into the weights)\n"
           "      --tokenizer PATH   tokenizer: a tokenizer.model (SentencePiece), a tokenizer.json\n"
           "                         (byte-level BPE), a GGUF file or a directory holding one\n"
           "                         (default: the first --model's); must be the one the input was\n"
           "                         tokenized with, and the one shipped in every --model that has one\n"
           "  -s, --spm PATH         the same as --tokenizer\n"
           "  -o, --output FILE      the predictions stream (default stdout, '-')\n"
           "  -n, --max-new N        at most N new tokens per note, N >= 1 (default 100)\n"
           "  -b, --batch N          decode N notes at once (default 8); results do not depend on it\n"
           "      --temperature T    sample at temperature T (default 0: greedy)\n"
           "      --top-p P          sample from the smallest set of tokens with mass P (default 1)\n"
           "      --top-k K          sample from the K most likely tokens (default 0: all)\n"
           "      --seed S           seed of the sampler (default 0)\n"
           "      --constrain FILE   only write `Diagnosed conditions: ` and labels of this code\n"
           "                         table (one label per line, or code<TAB>term), then stop\n"
           "      --rank K           generate nothing: score every label of the --constrain table\n"
           "                         as the answer (its log-probability given the note), and list\n"
           "                         the K most probable with p, their share of the table's\n"
           "                         probability; pred is the best (vet-eval reports hit@k and\n"
           "                         calibration). --rank all: every label\n"
           "      --rank-temperature T  with --rank: p = softmax(logp / T) over the table\n"
           "                         (default 1; vet-eval --fit-temperature finds T on held-out notes)\n"
           "      --codes FILE       more labels to find in the text (the --constrain table's are\n"
           "                         always looked for; so are 6-18 digit codes)\n"
           "      --shard K/N        decode only notes K, K+N, K+2N, ... of INPUT (a regular file, read\n"
           "                         twice: not stdin or a pipe): shard K of N,\n"
           "                         0 <= K < N; the header names the shard and the input's note\n"
           "                         count, and vet-eval merges the N streams (pipelines/README.md)\n"
           "  -t, --threads N        threads (default 0: OMP_NUM_THREADS, else all cores)\n"
           "      --device cpu|cuda[:N]  where the model runs (default cpu); cuda = cuda:0\n"
           "      --bf16             CUDA: weight matrices in bf16 (the default on cuda, unless\n"
           "                         config.json's dtype is float16)\n"
           "      --fp16             CUDA: weight matrices in IEEE fp16, fp32 accumulation (the\n"
           "                         default on cuda when config.json's dtype is float16)\n"
           "      --fp32             CUDA: weights in fp32, the CPU's results up to rounding\n"
           "      --quant none|int8|nf4  CUDA: weight matrices stored int8 (a scale per row) or nf4\n"
           "                         (QLoRA's, an absmax per 64), read packed by decode steps of\n"
           "                         <= 8 notes, else dequantized for each GEMM (none)\n"
           "      --max-len N        CUDA: positions per note in the KV cache, prompt + new\n"
           "                         tokens (default %d); sizes the device memory plan\n"
           "  -q, --quiet            no progress and no summary on stderr\n"
           "  -h, --help             this help\n"
           "  -V, --version          print the version\n"
           "\n"
           "Exit status: 0 ok, 1 bad input, 2 usage error (also: no usable device, a plan that\n"
           "does not fit it), 3 I/O error.\n", VET_GEN_MAX_MODELS, DEFAULT_MAX_LEN);
    exit(EXIT_OK);
}

// --shard K/N: both numbers through the numeric parser, N >= 1 first, then 0 <= K < N.
static void parse_shard(const char *v, vet_generate_opts *o) {
    const char *slash = strchr(v, '/');
    char k[32];
    if (!slash || (size_t)(slash - v) >= sizeof k)
        cli_usage_error("--shard: want K/N (shard K of N, 0 <= K < N, e.g. 0/4), got '%s'", v);
    memcpy(k, v, (size_t)(slash - v));
    k[slash - v] = 0;
    o->shard_n = cli_int("--shard N", slash + 1, 1, 1 << 30);
    o->shard_k = cli_int("--shard K", k, 0, o->shard_n - 1);
}

// The flags that say where the model runs (the job's own go into vet_generate_opts).
typedef struct {
    const char *device, *dtype, *quant;
    int max_len;  // 0: not given
    int threads;  // 0: OMP_NUM_THREADS, else every core
    int quiet;
} run_flags;

static void parse_flags(int argc, char **argv, vet_generate_opts *o, run_flags *f) {
    enum { OPT_TEMP = 256, OPT_TOPP, OPT_TOPK, OPT_SEED, OPT_CONSTRAIN, OPT_CODES, OPT_DEVICE, OPT_BF16,
           OPT_FP32, OPT_FP16, OPT_MAXLEN, OPT_QUANT, OPT_SHARD, OPT_RANK, OPT_RANK_TEMP };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"adapter", required_argument, 0, 'a'},
        {"spm", required_argument, 0, 's'},     {"tokenizer", required_argument, 0, 's'},
        {"output", required_argument, 0, 'o'},
        {"max-new", required_argument, 0, 'n'}, {"batch", required_argument, 0, 'b'},
        {"temperature", required_argument, 0, OPT_TEMP}, {"top-p", required_argument, 0, OPT_TOPP},
        {"top-k", required_argument, 0, OPT_TOPK}, {"seed", required_argument, 0, OPT_SEED},
        {"constrain", required_argument, 0, OPT_CONSTRAIN}, {"codes", required_argument, 0, OPT_CODES},
        {"threads", required_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'},
        {"device", required_argument, 0, OPT_DEVICE}, {"bf16", no_argument, 0, OPT_BF16},
        {"fp32", no_argument, 0, OPT_FP32}, {"fp16", no_argument, 0, OPT_FP16},
        {"max-len", required_argument, 0, OPT_MAXLEN},
        {"quant", required_argument, 0, OPT_QUANT}, {"shard", required_argument, 0, OPT_SHARD},
        {"rank", required_argument, 0, OPT_RANK}, {"rank-temperature", required_argument, 0, OPT_RANK_TEMP},
        {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "m:a:s:o:n:b:t:qhV", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (o->n_models == VET_GEN_MAX_MODELS)
                cli_usage_error("--model: at most %d models in an ensemble", VET_GEN_MAX_MODELS);
            o->models[o->n_models++] = optarg;
            break;
        case 'a': o->adapter = optarg; break;
        case 's': o->tokenizer = optarg; break;
        case 'o': o->output = optarg; break;
        case 'n': o->max_new = cli_int("--max-new", optarg, 1, 1 << 20); break;  // 0: every answer empty
        case 'b': o->batch = cli_int("--batch", optarg, 1, 4096); break;
        case 't': f->threads = cli_int("--threads", optarg, 0, 1024); break;
        case OPT_TEMP: o->sampling.temperature = (float)cli_double("--temperature", optarg, 0.0, 1e6); break;
        case OPT_TOPP: o->sampling.top_p = (float)cli_double("--top-p", optarg, 0.0, 1.0); break;
        case OPT_TOPK: o->sampling.top_k = cli_int("--top-k", optarg, 0, 1 << 30); break;
        case OPT_SEED: o->seed = (uint64_t)cli_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
        case OPT_CONSTRAIN: o->constrain = optarg; break;
        case OPT_CODES: o->codes = optarg; break;
        case OPT_DEVICE: f->device = optarg; break;
        case OPT_BF16: f->dtype = "bf16"; break;
        case OPT_FP32: f->dtype = "fp32"; break;
        case OPT_FP16: f->dtype = "fp16"; break;
        case OPT_MAXLEN: f->max_len = cli_int("--max-len", optarg, 1, 1 << 20); break;
        case OPT_QUANT: f->quant = optarg; break;
        case OPT_SHARD: parse_shard(optarg, o); break;
        case OPT_RANK: o->rank = strcmp(optarg, "all") == 0 ? INT_MAX : cli_int("--rank", optarg, 1, 1 << 20); break;
        case OPT_RANK_TEMP: o->rank_temperature = cli_double("--rank-temperature", optarg, 1e-3, 1e3); break;
        case 'q': f->quiet = 1; break;
        case 'h': usage();
        case 'V': cli_version();
        default: cli_usage_error("unknown option");
        }
    }
    if (!o->n_models) cli_usage_error("--model DIR is required");
    vet_err err;
    for (int i = 0; i < o->n_models; i++)
        if (vet_adapter_refuse_as_model("--model", o->models[i], &err)) cli_usage_error("%s", err.msg);
    if (o->n_models > 1 && o->adapter)
        cli_usage_error("--adapter with %d --model: an adapter belongs to one base; merge it into its model first, "
                        "or decode with one --model", o->n_models);
    if (argc - optind > 1) cli_usage_error("one input at most (got %d)", argc - optind);
    if (optind < argc) o->input = argv[optind];
}

// The device flags checked together (kernels/host/device.h), then vet-generate's own rules.
static vet_device_choice choose_device(const vet_generate_opts *o, const run_flags *f) {
    vet_device_choice dc;
    vet_err err;
    if (vet_device_choose(f->device, f->dtype, f->quant, "weights", &dc, &err)) cli_usage_error("%s", err.msg);
    if (dc.cuda && o->n_models > 1)
        cli_usage_error("an ensemble of %d models runs on the CPU only (--device cpu), or decode with one --model",
                        o->n_models);
    if (!dc.cuda && f->max_len) cli_usage_error("--max-len sizes the device KV cache: it needs --device cuda");
    return dc;
}

// ---------------------------------------------------------------------------------------
// What the person sees on stderr: a progress line on a terminal, a closing summary.

typedef struct {
    double last;  // seconds of the last progress line
} progress_line;

static void show_progress(void *ctx, const vet_generate_counts *c) {
    progress_line *pl = ctx;
    if (c->seconds - pl->last < 0.5) return;
    pl->last = c->seconds;
    fprintf(stderr, "\rvet-generate: %lld notes, %lld tokens, %.1f tokens/s   ", (long long)c->notes,
            (long long)c->tokens, c->seconds > 0 ? c->tokens / c->seconds : 0.0);
}

// The closing line: the two phases separately, as prompts run as GEMMs and decode steps one
// token per note.
static void show_summary(const vet_generate_counts *c) {
    const vet_gen_stats *st = &c->phases;
    double t = c->seconds;
    fprintf(stderr, "vet-generate: %lld notes, %lld tokens, %.1f tokens/s", (long long)c->notes, (long long)c->tokens,
            t > 0 ? c->tokens / t : 0.0);
    fprintf(stderr, " (%.1f s; prompts %lld tokens at %.1f tokens/s, decode steps %lld tokens at %.1f tokens/s)\n", t,
            (long long)st->prompt_tokens, st->prefill_ms > 0 ? st->prompt_tokens / (st->prefill_ms * 1e-3) : 0.0,
            (long long)st->step_tokens, st->step_ms > 0 ? st->step_tokens / (st->step_ms * 1e-3) : 0.0);
}

// Where the model runs, said before anything is read: a device that cannot be used fails here.
static void open_device(const vet_device_choice *dc, const run_flags *f, const char *model_dir,
                        vet_gpu_infer_device *dev) {
    char line[512];
    vet_err err;
    if (!dc->cuda) {
        if (!f->quiet) fprintf(stderr, "vet-generate: device cpu (%d threads), fp32\n", vet_get_threads());
        return;
    }
    if (vet_gpu_infer_device_open(dc, model_dir, dev, &err))
        cli_fail(cli_exit_status(&err), "--device %s: %s; use --device cpu", f->device, err.msg);
    if (!f->quiet) fprintf(stderr, "vet-generate: %s\n", vet_gpu_infer_device_describe(dev, line, sizeof line));
}

// The job's model on the device: its memory plan said (unless quiet), checked against the free
// memory before anything is allocated there, the upload; then the job decodes with the
// device's forward and the host copy of the weights is freed.
static vet_gpu_infer *to_device(vet_generate_job *job, const vet_gpu_infer_device *d, int batch, int max_len,
                                int quiet, vet_err *err) {
    const vet_model *m = vet_generate_model(job);
    vet_gpu_infer_plan p = {0};
    char line[512];
    if (vet_gpu_infer_device_plan(d, &m->cfg, batch, max_len, &p, err)) return NULL;
    if (!quiet) fprintf(stderr, "vet-generate: %s\n", vet_gpu_infer_plan_describe(&p, d, batch, max_len, line, sizeof line));
    vet_gpu_infer *gi = vet_gpu_infer_device_load(d, m, batch, max_len, err);
    if (!gi) return NULL;
    vet_infer_backend be;
    vet_gpu_infer_backend(gi, &be);
    vet_generate_use_backend(job, &be, max_len);
    vet_generate_drop_models(job);
    return gi;
}

int main(int argc, char **argv) {
    cli_prog = "vet-generate";
    vet_generate_opts o = vet_generate_defaults();
    run_flags f = {.device = "cpu", .quant = "none"};
    parse_flags(argc, argv, &o, &f);
    vet_set_threads(f.threads);  // 0: OMP_NUM_THREADS, else all cores
    int max_len = f.max_len ? f.max_len : DEFAULT_MAX_LEN;
    progress_line pl = {0};
    if (!f.quiet && cli_stderr_is_tty()) o.progress = show_progress, o.progress_ctx = &pl;

    // The device first, before any input is read: a wrong one fails at once.
    vet_device_choice dc = choose_device(&o, &f);
    vet_gpu_infer_device dev = {0};
    open_device(&dc, &f, o.models[0], &dev);

    vet_err err;
    vet_generate_job *job = vet_generate_open(&o, &err);
    vet_gpu_infer *gi = NULL;
    int rc = job ? 0 : -1;
    if (rc == 0 && !f.quiet && *vet_generate_tokenizer_choice(job))
        fprintf(stderr, "vet-generate: %s\n", vet_generate_tokenizer_choice(job));
    if (rc == 0 && dc.cuda && !(gi = to_device(job, &dev, o.batch, max_len, f.quiet, &err))) rc = -1;
    if (rc == 0) {
        rc = vet_generate_run(job, &err);
        if (o.progress) fputc('\n', stderr);  // ends the progress line
    }
    if (rc == 0) {
        vet_generate_counts c;
        vet_generate_counts_now(job, &c);
        if (!f.quiet) show_summary(&c);
        // Not an error (transformers codes such notes too), but the codes of these notes come
        // from positions the model never trained on: said even with -q.
        if (c.long_prompts)
            cli_warn("warning: %lld note%s (the first: %s) %s a prompt longer than the model's context of %d "
                     "positions; %s coded, but from positions the model never trained on (shorten the notes, "
                     "or use a model with a longer context)",
                     (long long)c.long_prompts, c.long_prompts == 1 ? "" : "s", c.first_long,
                     c.long_prompts == 1 ? "has" : "have", c.context, c.long_prompts == 1 ? "it is" : "they are");
        if (c.long_answers && o.rank > 0)
            cli_warn("warning: %lld note%s (the first: %s) ran past the model's context of %d positions while "
                     "scoring the table's answers; the last tokens of the longest came from positions the model "
                     "never trained on (shorten the notes, or the labels)",
                     (long long)c.long_answers, c.long_answers == 1 ? "" : "s", c.first_long_answer, c.context);
        else if (c.long_answers)
            cli_warn("warning: %lld note%s (the first: %s) ran past the model's context of %d positions while "
                     "generating; the last tokens of %s answer%s came from positions the model never trained on "
                     "(lower --max-new, or shorten the notes)",
                     (long long)c.long_answers, c.long_answers == 1 ? "" : "s", c.first_long_answer, c.context,
                     c.long_answers == 1 ? "its" : "their", c.long_answers == 1 ? "" : "s");
    }
    if (rc) cli_warn("%s", err.msg);
    // Everything freed before the exit status, so a sanitized build reports no leak.
    vet_generate_close(job);
    vet_gpu_infer_free(gi);
    vet_gpu_infer_device_close(&dev);
    return rc ? cli_exit_status(&err) : EXIT_OK;
}
