// vet-train — LoRA or full fine-tuning (also from scratch) of a LLaMA-family model on packed
// rows from vet-pack. HF model directory in; PEFT adapter (or HF model directory) out.
//
// The shape of the program: the flags become vet_train_opts (parse_flags, choose_device), one
// call to vet_train_run trains, and the summary and the exit status follow from its result.
// The program picks the backend: the CPU's (the library's default) or, for --device cuda,
// the CUDA backend of kernels/host, which it hands to the trainer.
#include <float.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "io/config.h"
#include "kernels/host/device.h"
#include "kernels/host/gpu_train_backend.h"
#include "model/model.h"
#include "train/grad_ckpt.h"
#include "train/trainer.h"

enum { EXIT_INTERRUPTED = 5 };

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf(
        "usage: vet-train (--base DIR | --init PRESET|config.json) --train FILE --out DIR [OPTIONS]\n"
        "Fine-tunes a LLaMA-family model on packed rows (vet-pack). LoRA by default: OUT is a PEFT\n"
        "adapter directory; with --full, OUT is a Hugging Face model directory.\n"
        "\n"
        "Model:\n"
        "  --base DIR|FILE.gguf    Hugging Face model directory (config.json, *.safetensors) or a\n"
        "                          GGUF model file (llama architecture; its tokenizer too)\n"
        "  --init NAME|FILE        a new model with random weights: preset (%s)\n"
        "                          or a config.json; implies --full\n"
        "  --tokenizer PATH        the tokenizer to check the data against and to ship with a model\n"
        "                          written out: a tokenizer.model, a tokenizer.json, a GGUF file,\n"
        "                          or a directory holding one (default: --base's; required with\n"
        "                          --init); --spm is the same\n"
        "  --out DIR               output directory (created)\n"
        "Data:\n"
        "  --train FILE            packed training rows (vet-pack); repeat it to train on several\n"
        "                          files as one set (e.g. the train and val splits of a final model)\n"
        "  --val FILE              packed validation rows: validation loss, best-checkpoint output\n"
        "LoRA:\n"
        "  --lora-r N              rank (16)\n"
        "  --lora-alpha X          scale numerator (32): scale = alpha/r\n"
        "  --lora-dropout P        dropout on the adapter input (0.1)\n"
        "  --lora-targets LIST     q,k,v,o,gate,up,down or all (q,k,v,o)\n"
        "  --rslora                scale = alpha/sqrt(r)\n"
        "  --adapter DIR           start from this PEFT adapter (its r, alpha and targets)\n"
        "  --full                  train every weight instead of LoRA\n"
        "  --merge                 also write OUT/merged: the base with the adapter merged in\n"
        "Optimization (defaults are the reference recipe's):\n"
        "  --epochs N              (3)\n"
        "  --batch-size N          rows per micro-batch (4)\n"
        "  --grad-accum N          micro-batches per optimizer step (4)\n"
        "  --lr X                  peak learning rate (2e-4)\n"
        "  --weight-decay X        AdamW decoupled decay (0.01; not on norms and biases)\n"
        "  --label-smoothing X     cross-entropy label smoothing in [0, 0.99] (0; CPU only)\n"
        "  --resid-dropout P       dropout on each attention/MLP output before the residual add,\n"
        "                          in [0, 0.9] (0; a regularizer for small models)\n"
        "  --token-dropout P       replace each prompt token by unk with probability P in training\n"
        "                          (word dropout), in [0, 0.9] (0; a regularizer for small data)\n"
        "  --warmup-ratio X        warmup steps = ceil(X * total steps) (0.03)\n"
        "  --scheduler NAME        cosine, linear or constant (cosine)\n"
        "  --max-grad-norm X       clip the global gradient norm (1.0; 0 = off)\n"
        "  --max-steps N           stop after at most N optimizer steps (0 = epochs decide)\n"
        "  --seed N                data order, LoRA init and dropout (42)\n"
        "Evaluation and saving:\n"
        "  --eval-every N          validation loss every N steps (0 = only at the end; needs --val)\n"
        "  --save-every N          checkpoint every N steps into OUT/checkpoints (0 = never)\n"
        "  --save-limit K          keep the newest K checkpoints (2; 0 = all)\n"
        "  --patience P            stop after P evaluations without a better validation loss\n"
        "  --resume DIR            continue from a checkpoint (or the newest one in DIR)\n"
        "  --skip-nonfinite        skip a step whose loss or gradient is NaN/Inf instead of stopping\n"
        "  --log-every N           plain progress lines every N steps when stderr is no terminal (10)\n"
        "Hardware:\n"
        "  --device cpu|cuda[:N]   where the model computes (cpu); cuda = cuda:0\n"
        "  --bf16                  CUDA: base weight matrices in bf16 (the default for LoRA on cuda)\n"
        "  --fp32                  CUDA: base weights in fp32, the CPU's results (the default for --full)\n"
        "  --fp16                  CUDA, LoRA: base weight matrices in fp16, with dynamic loss scaling\n"
        "  --dtype fp32|bf16|fp16  the same as --fp32 / --bf16 / --fp16\n"
        "  --threads N             CPU threads (default 0: OMP_NUM_THREADS, else all cores)\n"
        "  --grad-checkpoint[=N|auto][,keep-attention]\n"
        "                          CUDA: keep only each layer's input, recompute the layer in backward\n"
        "                          (same results, much less memory, ~1 more forward; the CPU ignores it);\n"
        "                          =N recomputes the first N layers only, the others keeping their\n"
        "                          activations (faster, more memory); =auto as few as fit in the\n"
        "                          device's memory; keep-attention also keeps each layer's attention\n"
        "                          output, so the recompute skips the attention (~1 GB more at 7B)\n"
        "  --device-memory SIZE    CUDA: plan for at most SIZE of the device (18G, 24576M; default its\n"
        "                          free memory), for a shared device or a memory target\n"
        "  --quant none|int8|nf4   CUDA, LoRA: base weight matrices stored int8 (a scale per row) or\n"
        "                          nf4 (QLoRA's, an absmax per 64), dequantized for each GEMM (none)\n"
        "  -q, --quiet             no progress output\n"
        "Data parallel (man vet-train, docs/scale.md):\n"
        "  mpirun -np N vet-train ...  N ranks, each --batch-size rows of every micro-batch (N x\n"
        "                          --batch-size in all); rank 0 writes OUT. This build: %s\n"
        "  -h, --help              this help\n"
        "  -V, --version           print the version\n"
        "\n"
        "Outputs: OUT/adapter_config.json + OUT/adapter_model.safetensors (LoRA), or config.json +\n"
        "model.safetensors + the tokenizer (--full/--init); OUT/train.log.jsonl (one JSON line per\n"
        "step); OUT/checkpoints/step-N.\n"
        "Exit status: 0 done (or stopped early by --patience), 1 bad input, 2 usage, 3 I/O error,\n"
        "5 interrupted by SIGINT/SIGTERM (checkpoint written: continue with --resume OUT),\n"
        "6 non-finite loss or gradient.\n",
        vet_config_preset_names(), *vet_comm_builtin() ? "with MPI" : "without MPI (make MPI=1)");
    exit(EXIT_OK);
}

static volatile sig_atomic_t stop_requested;
// The first SIGINT or SIGTERM asks for a stop after the step (and a checkpoint); a second one,
// from a user who will not wait for a long step, ends the program now as the signal would (the
// newest checkpoint stays whole: a half-written one is a temporary, removed).
static void on_signal(int sig) {
    if (stop_requested) cli_on_fatal_signal_(sig);
    stop_requested = 1;
}

typedef struct {
    int quiet, tty;
    long log_every;
    long step_delay_ms;  // the test hook VET_TRAIN_STEP_DELAY_MS (man vet-train)
} progress;

static void on_note(const char *line, void *ctx) {
    progress *p = ctx;
    if (!p->quiet) fprintf(stderr, "vet-train: %s\n", line);
}

static void on_step(const vet_step_info *s, void *ctx) {
    progress *p = ctx;
    if (p->step_delay_ms > 0) {  // a run slow enough for a test's kill -9 to land mid-run on any machine
        struct timespec d = {p->step_delay_ms / 1000, p->step_delay_ms % 1000 * 1000000L};
        while (nanosleep(&d, &d) != 0) continue;
    }
    if (p->quiet) return;
    if (p->tty) {
        int width = 30, done = (int)(width * s->step / (s->total_steps ? s->total_steps : 1));
        double eta = s->step ? s->elapsed_s / s->step * (s->total_steps - s->step) : 0;
        fprintf(stderr, "\r[%.*s%*s] %ld/%ld ep %.2f loss %.4f lr %.2e %.0f tok/s ETA %.0fs ", done,
                "##############################", width - done, "", s->step, s->total_steps, s->epoch, s->loss,
                s->lr, s->tokens_per_s, eta);
        if (!isnan(s->val_loss)) fprintf(stderr, "val %.4f ", s->val_loss);
        if (s->step == s->total_steps) fputc('\n', stderr);
        fflush(stderr);
    } else if ((p->log_every > 0 && s->step % p->log_every == 0) || s->step == s->total_steps || !isnan(s->val_loss)) {
        fprintf(stderr, "vet-train: step %ld/%ld epoch %.2f loss %.4f lr %.3e grad_norm %.3f %.0f tok/s", s->step,
                s->total_steps, s->epoch, s->loss, s->lr, s->grad_norm, s->tokens_per_s);
        if (!isnan(s->val_loss)) fprintf(stderr, " val_loss %.4f", s->val_loss);
        fputc('\n', stderr);
    }
}

enum {
    O_BASE = 256, O_INIT, O_TOKENIZER, O_OUT, O_TRAIN, O_VAL, O_R, O_ALPHA, O_DROPOUT, O_TARGETS, O_RSLORA,
    O_FULL, O_MERGE, O_EPOCHS, O_BS, O_GA, O_LR, O_WD, O_WARMUP, O_SCHED, O_CLIP, O_MAXSTEPS, O_SEED,
    O_EVAL, O_SAVE, O_SAVELIMIT, O_PATIENCE, O_RESUME, O_SKIPNF, O_LOGEVERY, O_DEVICE, O_THREADS, O_DTYPE,
    O_GRADCKPT, O_DEVMEM, O_QUANT, O_ADAPTER, O_BF16, O_FP32, O_FP16, O_SMOOTH, O_RDROP, O_TDROP,
};

static const struct option long_opts[] = {
    {"base", required_argument, 0, O_BASE}, {"init", required_argument, 0, O_INIT},
    {"tokenizer", required_argument, 0, O_TOKENIZER}, {"spm", required_argument, 0, O_TOKENIZER},
    {"out", required_argument, 0, O_OUT},
    {"train", required_argument, 0, O_TRAIN}, {"val", required_argument, 0, O_VAL},
    {"lora-r", required_argument, 0, O_R}, {"lora-alpha", required_argument, 0, O_ALPHA},
    {"lora-dropout", required_argument, 0, O_DROPOUT}, {"lora-targets", required_argument, 0, O_TARGETS},
    {"rslora", no_argument, 0, O_RSLORA}, {"adapter", required_argument, 0, O_ADAPTER},
    {"full", no_argument, 0, O_FULL}, {"merge", no_argument, 0, O_MERGE},
    {"epochs", required_argument, 0, O_EPOCHS}, {"batch-size", required_argument, 0, O_BS},
    {"grad-accum", required_argument, 0, O_GA}, {"lr", required_argument, 0, O_LR},
    {"weight-decay", required_argument, 0, O_WD}, {"label-smoothing", required_argument, 0, O_SMOOTH},
    {"resid-dropout", required_argument, 0, O_RDROP}, {"token-dropout", required_argument, 0, O_TDROP},
    {"warmup-ratio", required_argument, 0, O_WARMUP}, {"scheduler", required_argument, 0, O_SCHED},
    {"max-grad-norm", required_argument, 0, O_CLIP}, {"max-steps", required_argument, 0, O_MAXSTEPS},
    {"seed", required_argument, 0, O_SEED}, {"eval-every", required_argument, 0, O_EVAL},
    {"save-every", required_argument, 0, O_SAVE}, {"save-limit", required_argument, 0, O_SAVELIMIT},
    {"patience", required_argument, 0, O_PATIENCE}, {"resume", required_argument, 0, O_RESUME},
    {"skip-nonfinite", no_argument, 0, O_SKIPNF}, {"log-every", required_argument, 0, O_LOGEVERY},
    {"device", required_argument, 0, O_DEVICE}, {"threads", required_argument, 0, O_THREADS},
    {"dtype", required_argument, 0, O_DTYPE}, {"grad-checkpoint", optional_argument, 0, O_GRADCKPT},
    {"device-memory", required_argument, 0, O_DEVMEM},
    {"quant", required_argument, 0, O_QUANT}, {"bf16", no_argument, 0, O_BF16}, {"fp32", no_argument, 0, O_FP32},
    {"fp16", no_argument, 0, O_FP16}, {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, 'V'}, {0, 0, 0, 0},
};

#define MAX_TRAIN_FILES 16

// What the command line says: the trainer's options, and what the program decides itself.
typedef struct {
    vet_train_opts o;
    progress prog;
    const char *device, *dtype, *quant;  // --device, --dtype (or --fp32/--bf16/--fp16), --quant
    int grad_ckpt;    // 0, 1 (--grad-checkpoint) or 2 (keep-attention): vet_train_opts.gpu_ckpt
    int ckpt_layers;  // its layers recomputed (0 every layer, N, VET_CKPT_LAYERS_AUTO): gpu_ckpt_layers
    const char *train_more[MAX_TRAIN_FILES - 1];  // the second and later --train files
    int n_more;
} flags;

// One flag: getopt_long's code c with its value v (NULL for a switch).
static void set_flag(flags *f, int c, const char *v) {
    vet_train_opts *o = &f->o;
    vet_err err;
    switch (c) {
    case O_BASE: o->base_dir = v; break;
    case O_INIT: o->init = v; o->full = 1; break;
    case O_TOKENIZER: o->tokenizer = v; break;
    case O_OUT: o->out_dir = v; break;
    case O_TRAIN:  // repeatable: the later files' rows join the first's
        if (!o->train_path) o->train_path = v;
        else if (f->n_more < MAX_TRAIN_FILES - 1) f->train_more[f->n_more++] = v;
        else cli_usage_error("--train: at most %d files", MAX_TRAIN_FILES);
        break;
    case O_VAL: o->val_path = v; break;
    case O_R: o->lora_r = cli_int("--lora-r", v, 1, 65536); break;
    case O_ALPHA: o->lora_alpha = (float)cli_double("--lora-alpha", v, 1e-9, 1e9); break;
    case O_DROPOUT: o->lora_dropout = (float)cli_double("--lora-dropout", v, 0, 0.99); break;
    case O_TARGETS:
        if (vet_lora_parse_targets(v, &o->lora_targets, &err) < 0) cli_usage_error("--lora-targets: %s", err.msg);
        break;
    case O_RSLORA: o->rslora = 1; break;
    case O_ADAPTER: o->adapter_in = v; break;
    case O_FULL: o->full = 1; break;
    case O_MERGE: o->merge = 1; break;
    case O_EPOCHS: o->epochs = cli_int("--epochs", v, 1, 100000); break;
    case O_BS: o->batch_size = cli_int("--batch-size", v, 1, 65536); break;
    case O_GA: o->grad_accum = cli_int("--grad-accum", v, 1, 65536); break;
    case O_LR: o->lr = cli_double("--lr", v, 0, 10); break;
    case O_WD: o->weight_decay = cli_double("--weight-decay", v, 0, 10); break;
    case O_SMOOTH: o->label_smoothing = cli_double("--label-smoothing", v, 0, 0.99); break;
    case O_RDROP: o->resid_dropout = cli_double("--resid-dropout", v, 0, 0.9); break;
    case O_TDROP: o->token_dropout = cli_double("--token-dropout", v, 0, 0.9); break;
    case O_WARMUP: o->warmup_ratio = cli_double("--warmup-ratio", v, 0, 1); break;
    case O_SCHED:
        if (vet_schedule_parse(v, &o->scheduler, &err) < 0) cli_usage_error("--scheduler: %s", err.msg);
        break;
    case O_CLIP: o->max_grad_norm = cli_double("--max-grad-norm", v, 0, 1e9); break;
    case O_MAXSTEPS: o->max_steps = cli_long("--max-steps", v, 0, LONG_MAX); break;
    case O_SEED: o->seed = (uint64_t)cli_long("--seed", v, 0, LONG_MAX); break;
    case O_EVAL: o->eval_every = cli_long("--eval-every", v, 0, LONG_MAX); break;
    case O_SAVE: o->save_every = cli_long("--save-every", v, 0, LONG_MAX); break;
    case O_SAVELIMIT: o->save_limit = cli_int("--save-limit", v, 0, 1000000); break;
    case O_PATIENCE: o->patience = cli_int("--patience", v, 0, 1000000); break;
    case O_RESUME: o->resume = v; break;
    case O_SKIPNF: o->skip_nonfinite = 1; break;
    case O_LOGEVERY: f->prog.log_every = cli_long("--log-every", v, 0, LONG_MAX); break;
    case O_DEVICE: f->device = v; break;
    case O_THREADS: o->threads = cli_int("--threads", v, 0, 4096); break;
    case O_DTYPE: f->dtype = v; break;
    case O_BF16: f->dtype = "bf16"; break;
    case O_FP32: f->dtype = "fp32"; break;
    case O_FP16: f->dtype = "fp16"; break;
    case O_GRADCKPT:
        if (vet_grad_ckpt_parse(v, &f->grad_ckpt, &f->ckpt_layers, &err) < 0) cli_usage_error("%s", err.msg);
        break;
    case O_DEVMEM:
        if (vet_parse_bytes(v, (size_t)1 << 20, SIZE_MAX, &o->gpu_mem_cap, &err) < 0)
            cli_usage_error("--device-memory: %s", err.msg);
        break;
    case O_QUANT: f->quant = v; break;
    case 'q': f->prog.quiet = 1; break;
    case 'h': usage();
    case 'V': cli_version();
    default: cli_usage_error("unknown option");
    }
}

// The command line into f (defaults first); a usage error exits with status 2.
static void parse_flags(int argc, char **argv, flags *f) {
    memset(f, 0, sizeof *f);
    vet_train_defaults(&f->o);
    f->prog = (progress){.tty = cli_stderr_is_tty(), .log_every = 10};
    f->device = "cpu", f->quant = "none";
    int c;
    while ((c = getopt_long(argc, argv, "qhV", long_opts, NULL)) != -1) set_flag(f, c, optarg);
    vet_train_opts *o = &f->o;
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->base_dir == !o->init) cli_usage_error("give exactly one of --base DIR and --init PRESET");
    if (!o->train_path) cli_usage_error("--train FILE is required");
    o->train_more = f->train_more;
    o->n_train_more = f->n_more;
    if (!o->out_dir) cli_usage_error("--out DIR is required");
    if (o->full && o->merge) cli_usage_error("--merge applies to LoRA training only");
    if (o->full && o->adapter_in) cli_usage_error("--adapter applies to LoRA training only");
}

// The backend and the base weights' format: the device rules vet-generate shares
// (kernels/host/device.h), then training's own. On CUDA, full training keeps fp32 weights
// (the GPU model trains every weight in fp32 only) and quantized weights are frozen; LoRA's
// base weights are bf16 unless --fp32 / --fp16 says otherwise (half the memory).
static void choose_device(flags *f) {
    vet_train_opts *o = &f->o;
    vet_device_choice dc;
    vet_err err;
    if (vet_device_choose(f->device, f->dtype, f->quant, "base weights", &dc, &err) < 0) cli_fail_err(&err);
    if (!dc.cuda) return;
    char why[512];
    if (!vet_cuda_available(why, sizeof why)) cli_fail(EXIT_USAGE, "--device %s: %s; use --device cpu", f->device, why);
    o->backend_new = vet_cuda_train_backend;
    o->gpu_index = dc.index;
    o->gpu_ckpt = f->grad_ckpt;  // the CPU keeps its activations: there the flag changes nothing
    o->gpu_ckpt_layers = f->ckpt_layers;
    const char *full_flag = o->init ? "--init" : "--full";
    if (o->full && dc.dtype != VET_DTYPE_DEFAULT && dc.dtype != VET_DTYPE_FP32)
        cli_fail(EXIT_USAGE, "--%s with %s: full training on CUDA keeps fp32 weights; drop --%s or train LoRA",
                 f->dtype, full_flag, f->dtype);
    if (o->full && dc.quant != VET_QUANT_NONE)
        cli_fail(EXIT_USAGE, "--quant %s with %s: quantized base weights are frozen; train LoRA, or drop --quant",
                 f->quant, full_flag);
    if (!o->full) {
        o->gpu_bf16 = dc.dtype == VET_DTYPE_DEFAULT || dc.dtype == VET_DTYPE_BF16;
        o->gpu_fp16 = dc.dtype == VET_DTYPE_FP16;
    }
    o->gpu_quant = (int)dc.quant;
    // A test hook (documented in the man page): the loss scale fp16 starts at, e.g. 1e38 to
    // force overflows.
    const char *init_scale = getenv("VET_FP16_INIT_SCALE");
    if (o->gpu_fp16 && init_scale && *init_scale &&
        vet_parse_double(init_scale, DBL_MIN, DBL_MAX, &o->fp16_init_scale, &err) < 0)
        cli_usage_error("VET_FP16_INIT_SCALE: '%s' is not a positive number", init_scale);
}

// SIGINT and SIGTERM set the flag the trainer polls after each step: it writes a checkpoint
// and stops (exit status 5).
static const volatile sig_atomic_t *catch_stop_signals(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return &stop_requested;
}

// One GPU per rank: --device cuda without an index is the rank's local index among the GPUs it
// sees (modulo their count in CUDA_VISIBLE_DEVICES: srun --gpus-per-task=1 shows each rank one).
static int local_gpu(int local_rank) {
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    if (!vis || !*vis) return local_rank;
    int n = 1;
    for (const char *p = vis; *p; p++) n += *p == ',';
    return local_rank % n;
}

// Under mpirun: the ranks, one GPU each with --device cuda (rank 0 speaks for the job: the others keep quiet but for errors),
// and the test hooks (man vet-train): VET_TRAIN_FAIL_AT=RANK:STEP, that rank fails at that step;
// VET_TRAIN_STEP_DELAY_MS=N, a pause after every step (outputs unchanged).
static void join_ranks(flags *f, const vet_comm *comm) {
    f->o.comm = comm;
    if (comm->size > 1 && f->o.backend_new && !strchr(f->device, ':'))
        f->o.gpu_index = local_gpu(comm->local_rank);
    if (comm->rank > 0) f->prog.quiet = 1;
    const char *hook = getenv("VET_TRAIN_FAIL_AT");
    if (hook && *hook && sscanf(hook, "%d:%ld", &f->o.fail_rank, &f->o.fail_step) != 2)
        cli_usage_error("VET_TRAIN_FAIL_AT: '%s' is not RANK:STEP", hook);
    const char *delay = getenv("VET_TRAIN_STEP_DELAY_MS");
    if (delay && *delay) f->prog.step_delay_ms = cli_long("VET_TRAIN_STEP_DELAY_MS", delay, 0, 60000);
    if (comm->size > 1 && !f->prog.quiet)
        fprintf(stderr, "vet-train: data parallel: %d ranks (%s), %d rows each, a micro-batch of %ld rows\n",
                comm->size, comm->name, f->o.batch_size, (long)f->o.batch_size * comm->size);
}

static void print_summary(const flags *f, const vet_train_result *res) {
    if (!f->prog.quiet && res->ranks > 1)
        fprintf(stderr, "vet-train: %d ranks: %.3f s in the collectives (%.1f%% of %.1f s)\n", res->ranks,
                res->comm_seconds, 100 * res->comm_seconds / (res->seconds > 0 ? res->seconds : 1), res->seconds);
    if (!f->prog.quiet) {
        fprintf(stderr, "vet-train: %s\n", res->model_desc);
        fprintf(stderr, "vet-train: %ld steps, %.0f tokens in %.1f s (%.0f tokens/s); loss %.4f -> %.4f", res->steps,
                res->tokens, res->seconds, res->tokens / (res->seconds > 0 ? res->seconds : 1), res->first_loss,
                res->last_loss);
        if (!isnan(res->best_val)) fprintf(stderr, "; best val_loss %.4f at step %ld", res->best_val, res->best_step);
        if (res->skipped_steps) fprintf(stderr, "; %ld non-finite steps skipped", res->skipped_steps);
        fputc('\n', stderr);
    }
    if (res->outcome == VET_TRAIN_INTERRUPTED)  // said even with -q: the run did not finish
        fprintf(stderr, "vet-train: interrupted at step %ld; checkpoint %s (continue with --resume %s)\n",
                res->steps, res->checkpoint, f->o.out_dir);
    else if (!f->prog.quiet)
        fprintf(stderr, "vet-train: %s%s written to %s\n", f->o.full ? "model" : "adapter",
                res->outcome == VET_TRAIN_EARLY_STOP ? " (stopped early: no better validation loss)" : "",
                f->o.out_dir);
}

int main(int argc, char **argv) {
    cli_prog = "vet-train";
    flags f;
    parse_flags(argc, argv, &f);
    choose_device(&f);
    f.o.on_note = on_note;  // the device and its memory plan, before training starts
    f.o.stop = catch_stop_signals();
    vet_comm comm;
    vet_err err;
    if (vet_comm_open(&comm, &err) < 0) cli_fail_err(&err);
    join_ranks(&f, &comm);

    vet_train_result res;
    if (vet_train_run(&f.o, on_step, &f.prog, &res, &err) < 0) {
        if (f.prog.tty && !f.prog.quiet) fputc('\n', stderr);  // end the progress bar's line
        if (comm.size == 1) cli_warn("%s", err.msg);
        else cli_warn("rank %d of %d: %s", comm.rank, comm.size, err.msg);
        // Under mpirun every rank ends now: a failure only this rank knows of (rank 0 writing
        // OUT) would otherwise leave the others waiting in the next collective for ever.
        if (comm.size > 1) comm.abort(comm.ctx, cli_exit_status(&err));
        return cli_exit_status(&err);
    }
    print_summary(&f, &res);
    comm.close(comm.ctx);
    return res.outcome == VET_TRAIN_INTERRUPTED ? EXIT_INTERRUPTED : EXIT_OK;
}
