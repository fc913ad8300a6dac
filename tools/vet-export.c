// vet-export — a Hugging Face model directory (with a LoRA adapter merged in, if given) as one
// GGUF file for llama.cpp, Ollama and transformers' GGUF loader. The work is lib/export/.
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "base/input_file.h"
#include "export/export.h"
#include "io/gguf.h"
#include "io/gguf_config.h"
#include "model/adapter.h"
#include "model/model.h"

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf("usage: vet-export --model DIR|FILE.gguf [--adapter DIR] [--type f16|q8_0|f32] [-o OUT.gguf]\n"
           "Writes the model in DIR (config.json + safetensors; a llama or qwen2 model) as GGUF v3,\n"
           "with the PEFT LoRA adapter merged in when --adapter is given, and the directory's\n"
           "tokenizer (tokenizer.json or tokenizer.model) as tokenizer.ggml.*. Norms and biases stay F32.\n"
           "\n"
           "  -m, --model DIR      the model directory (vet-train's --full or --merge output, or any\n"
           "                       Hugging Face LLaMA / Qwen2 directory), or a GGUF model file (its\n"
           "                       tokenizer.* keys are copied unchanged)\n"
           "  -a, --adapter DIR    a LoRA adapter (vet-train's output) to merge before writing\n"
           "  -t, --type T         f16 (default), q8_0 or f32: the type of the 2-D weights\n"
           "  -o, --output FILE    the .gguf to write (default or '-': stdout, never a terminal)\n"
           "      --threads N      threads for encoding (default 0: OMP_NUM_THREADS, else all cores)\n"
           "  -q, --quiet          no summary on stderr\n"
           "  -h, --help           this help\n"
           "  -V, --version        print the version\n"
           "\n"
           "Exit status: 0 ok, 1 bad model, adapter or tokenizer, 2 usage error, 3 I/O error,\n"
           "6 a weight beyond the range of the type (use --type f32).\n");
    exit(EXIT_OK);
}

static const char *type_name(uint32_t t) { return t == VET_GGML_F32 ? "F32" : t == VET_GGML_F16 ? "F16" : "Q8_0"; }

int main(int argc, char **argv) {
    cli_prog = "vet-export";
    enum { O_THREADS = 256 };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"adapter", required_argument, 0, 'a'},
        {"type", required_argument, 0, 't'},  {"output", required_argument, 0, 'o'},
        {"threads", required_argument, 0, O_THREADS}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    vet_export_opts o = {.out = "-", .type = VET_GGML_F16};
    int quiet = 0, c;
    vet_err err;
    while ((c = getopt_long(argc, argv, "m:a:t:o:qhV", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model_dir = optarg; break;
        case 'a': o.adapter_dir = optarg; break;
        case 't': if (vet_export_parse_type(optarg, &o.type, &err) < 0) cli_usage_error("%s", err.msg); break;
        case 'o': o.out = optarg; break;
        case O_THREADS: vet_set_threads(cli_int("--threads", optarg, 0, 4096)); break;  // 0: OMP_NUM_THREADS, else all cores, as elsewhere
        case 'q': quiet = 1; break;
        case 'h': usage();
        case 'V': cli_version();
        default: cli_usage_error("unknown option");
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o.model_dir) cli_usage_error("--model DIR is required");
    if (vet_adapter_refuse_as_model("--model", o.model_dir, &err)) cli_usage_error("%s", err.msg);
    if (!strcmp(o.out, "-") && isatty(1)) cli_usage_error("will not write a GGUF file to a terminal: give -o FILE");
    // The GGUF written over a file of the model or the adapter would destroy what it is made from.
    if (vet_refuse_overwrite_in("-o", o.out, "--model", o.model_dir, &err) ||
        vet_refuse_overwrite_in("-o", o.out, "--adapter", o.adapter_dir, &err))
        cli_usage_error("%s", err.msg);
    vet_export_result r;
    if (vet_export_gguf(&o, &r, &err) < 0) cli_fail_err(&err);
    if (!r.has_tokenizer && vet_path_is_gguf(o.model_dir))
        cli_warn("%s has no tokenizer.* keys: the GGUF written holds no tokenizer", o.model_dir);
    else if (!r.has_tokenizer)
        cli_warn("%s has no tokenizer.json or tokenizer.model: the GGUF holds no tokenizer", o.model_dir);
    if (r.n_f16_fallback)
        cli_warn("%d weights have rows that are not a multiple of 32: written F16, not Q8_0", r.n_f16_fallback);
    if (!quiet)
        cli_warn("wrote %s: %s, %zu tensors (%s), %zu keys%s%s%s%s", !strcmp(o.out, "-") ? "<stdout>" : o.out, r.arch,
                 r.n_tensors, type_name(o.type), r.n_kv, r.has_tokenizer ? ", tokenizer " : "", r.tokenizer,
                 r.pre[0] ? "/" : "", r.pre);
    return EXIT_OK;
}
