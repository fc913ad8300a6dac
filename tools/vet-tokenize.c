// vet-tokenize — clinical notes (CSV, Alpaca JSON, JSONL) to a `tokens` stream: for each note
// the prompt ids ([BOS] + encode(prompt), BOS when the tokenizer adds one) and the response ids
// (encode(response) + [EOS]), with a SentencePiece or a byte-level BPE tokenizer.
//
// The prompt and the response are encoded separately (not as one string, as alpaca-lora
// does): the prompt ids are then exactly what vet-generate feeds the model, and the response
// starts on a fresh piece ("▁Diagnosed"). See man/vet-tokenize.1; the work is in
// lib/data/tokenize_job.c.
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "data/swap.h"
#include "data/template.h"
#include "data/tokenize_job.h"

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf("usage: vet-tokenize --tokenizer PATH [OPTIONS] [INPUT]\n"
           "Reads clinical notes (INPUT, or stdin when none or '-'): CSV with a header row,\n"
           "an Alpaca JSON array, or JSONL. Writes a `tokens` stream: per note its id, species,\n"
           "codes, note, prompt ids ([BOS] + prompt) and response ids (response + [EOS]); the\n"
           "BOS only when the tokenizer adds one (SentencePiece, Llama-3; not Qwen2, SmolLM2).\n"
           "\n"
           "      --tokenizer PATH     a tokenizer.model (SentencePiece), a tokenizer.json (byte-level\n"
           "                           BPE), a GGUF model file (its tokenizer.ggml.* metadata), or a\n"
           "                           model directory holding one (both: the one its\n"
           "                           tokenizer_config.json names, said on stderr)\n"
           "  -s, --spm PATH           the same as --tokenizer\n"
           "      --text               write the rendered prompt + response text of every note\n"
           "                           instead of token ids (to train a tokenizer; no --tokenizer)\n"
           "  -o, --output FILE        the stream (default stdout, '-')\n"
           "  -f, --format FMT         csv, json or jsonl (default: by suffix, else by the first byte)\n"
           "      --template T         alpaca (default), alpaca-noinput, or a template FILE (- stdin)\n"
           "      --instruction TEXT   the instruction (default: \"%s\")\n"
           "      --input-format FMT   the input section (default: \"%s\"; '' drops the section)\n"
           "      --response-format FMT the response (default: \"%s\")\n"
           "      --print-template     print the template in file form and exit\n"
           "      --id-col NAME        CSV column of the id (default id; absent: the row number)\n"
           "      --species-col NAME   CSV column of the species (default species)\n"
           "      --note-col NAME      CSV column of the note (default note; required)\n"
           "      --codes-col NAME     CSV column of the ';'-separated codes (default codes)\n"
           "      --disease-col NAME   CSV column of the disease name (default disease)\n"
           "      --species-swap A=B[,C=D...]  after each note of species A, write a copy of it as\n"
           "                           species B (and B as A), the species' name swapped in the note\n"
           "                           as a whole word; the copy's id is ID~B and its copy_of is ID.\n"
           "                           Training-data augmentation: vet-pack keeps copies with their\n"
           "                           original and trains on those of the train split only\n"
           "      --skip-bad FILE      write rejected rows to FILE ('-': stderr) and go on\n"
           "                           (default: stop at the first)\n"
           "      --stats              print token-length statistics on stderr\n"
           "      --max-len N          length the statistics compare against (default 512)\n"
           "  -q, --quiet              no note on stderr of which tokenizer a directory gave, nor of\n"
           "                           how many records have no answer\n"
           "  -h, --help               this help\n"
           "  -V, --version            print the version\n"
           "\n"
           "Exit status: 0 ok, 1 bad input, 2 usage error, 3 I/O error.\n",
           VET_DEFAULT_INSTRUCTION, VET_DEFAULT_INPUT_FORMAT, VET_DEFAULT_RESPONSE_FORMAT);
    exit(EXIT_OK);
}

// --- what is printed after the run ---------------------------------------------------------

static void print_hist(const char *name, const vet_len_hist *h) {
    fprintf(stderr, "  %-9s %7llu %9.1f %7zu %7zu %7llu\n", name, (unsigned long long)h->min, vet_len_hist_mean(h),
            vet_len_hist_pct(h, 0.50), vet_len_hist_pct(h, 0.95), (unsigned long long)h->max);
}

// --stats: tokens per sample, and what padding every sample to --max-len would cost.
static void print_stats(const vet_tokenize_summary *s, long max_len) {
    double n = (double)s->written;
    fprintf(stderr, "vet-tokenize: %llu samples, tokens per sample:\n", (unsigned long long)s->written);
    fprintf(stderr, "  %-9s %7s %9s %7s %7s %7s\n", "", "min", "mean", "p50", "p95", "max");
    print_hist("prompt", &s->prompt);
    print_hist("response", &s->response);
    print_hist("total", &s->total);
    fprintf(stderr, "  over --max-len %ld: %llu (%.1f%%)\n", max_len, (unsigned long long)s->over_max_len,
            s->written ? 100.0 * (double)s->over_max_len / n : 0.0);
    fprintf(stderr, "  padding to %ld tokens would use %.1f%% of the compute on real tokens\n", max_len,
            s->written ? 100.0 * (double)s->real_tokens / (n * (double)max_len) : 0.0);
}

// "N read, M written, K rejected": read = notes written + rejected; the copies come on top.
static void print_counts(const vet_tokenize_summary *s, const char *rejects_path) {
    char copies[96] = "";
    if (s->copies)
        snprintf(copies, sizeof copies, " (%llu notes + %llu species-swapped copies)",
                 (unsigned long long)(s->written - s->copies), (unsigned long long)s->copies);
    fprintf(stderr, "vet-tokenize: %llu read, %llu written%s, %llu rejected%s%s%s\n", (unsigned long long)s->read,
            (unsigned long long)s->written, copies, (unsigned long long)s->rejected, s->rejected ? " (see " : "",
            !s->rejected ? "" : strcmp(rejects_path, "-") == 0 ? "above" : rejects_path, s->rejected ? ")" : "");
}

// Notes without an answer among notes with one: a blank codes cell in training data, most
// likely. (An input of new notes, all without one, is what the code stage tokenizes: no word.)
static void warn_unlabeled(const vet_tokenize_summary *s) {
    if (s->unlabeled && s->unlabeled < s->written)
        cli_warn("%llu of %llu records have no codes, disease or output: notes to code with vet-generate; "
                 "vet-pack refuses them as training data (fill in their codes, or leave them out)",
                 (unsigned long long)s->unlabeled, (unsigned long long)s->written);
}

// --print-template: the template in file form, to start a custom one from, with --instruction and
// --input-format written in: given back with --template alone it renders the same prompts.
static int print_template(const vet_tokenize_opts *o) {
    vet_err err;
    vet_text text = {0};
    vet_template *tpl = vet_template_open(o->template_spec, o->instruction, o->input_format, o->response_format, &err);
    if (!tpl || vet_template_print_form(tpl, &text, &err)) cli_fail_err(&err);
    fputs(text.s, stdout);
    vet_text_free(&text);
    vet_template_free(tpl);
    return fflush(stdout) ? EXIT_IO : EXIT_OK;
}

// --print-template prints and exits: a flag for the run itself would do nothing (-o FILE left the
// template on stdout and no FILE). The first such flag is refused by name.
static void refuse_run_flags(const vet_tokenize_opts *o, const vet_swap *swap) {
    const vet_notes_opts *n = &o->notes;
    const struct { int given; const char *flag; } run[] = {
        {strcmp(o->output, "-") != 0, "-o"}, {o->rejects != NULL, "--skip-bad"}, {o->stats, "--stats"},
        {o->text, "--text"}, {swap->n > 0, "--species-swap"}, {n->format != VET_NOTES_AUTO, "--format"},
        {n->id_col || n->species_col || n->note_col || n->codes_col || n->disease_col, "a column flag (--*-col)"},
    };
    for (size_t k = 0; k < sizeof run / sizeof *run; k++)
        if (run[k].given)
            cli_usage_error("--print-template prints the template on stdout and exits: %s has no effect with it%s",
                            run[k].flag, k == 0 ? " (redirect stdout to a file instead)" : "");
}

static vet_notes_format parse_format(const char *s) {
    if (strcmp(s, "csv") == 0) return VET_NOTES_CSV;
    if (strcmp(s, "json") == 0) return VET_NOTES_JSON;
    if (strcmp(s, "jsonl") == 0) return VET_NOTES_JSONL;
    cli_usage_error("--format: '%s' is not csv, json or jsonl", s);
}

enum {
    OPT_TEMPLATE = 256, OPT_INSTRUCTION, OPT_INPUT_FORMAT, OPT_RESPONSE_FORMAT, OPT_PRINT_TEMPLATE, OPT_TEXT,
    OPT_ID_COL, OPT_SPECIES_COL, OPT_NOTE_COL, OPT_CODES_COL, OPT_DISEASE_COL, OPT_SKIP_BAD,
    OPT_STATS, OPT_MAX_LEN, OPT_SPECIES_SWAP,
};

int main(int argc, char **argv) {
    cli_prog = "vet-tokenize";
    static const struct option opts[] = {
        {"spm", required_argument, 0, 's'},
        {"tokenizer", required_argument, 0, 's'},
        {"quiet", no_argument, 0, 'q'},
        {"output", required_argument, 0, 'o'},
        {"format", required_argument, 0, 'f'},
        {"template", required_argument, 0, OPT_TEMPLATE},
        {"instruction", required_argument, 0, OPT_INSTRUCTION},
        {"input-format", required_argument, 0, OPT_INPUT_FORMAT},
        {"response-format", required_argument, 0, OPT_RESPONSE_FORMAT},
        {"print-template", no_argument, 0, OPT_PRINT_TEMPLATE},
        {"text", no_argument, 0, OPT_TEXT},
        {"id-col", required_argument, 0, OPT_ID_COL},
        {"species-col", required_argument, 0, OPT_SPECIES_COL},
        {"note-col", required_argument, 0, OPT_NOTE_COL},
        {"codes-col", required_argument, 0, OPT_CODES_COL},
        {"disease-col", required_argument, 0, OPT_DISEASE_COL},
        {"skip-bad", required_argument, 0, OPT_SKIP_BAD},
        {"stats", no_argument, 0, OPT_STATS},
        {"max-len", required_argument, 0, OPT_MAX_LEN},
        {"species-swap", required_argument, 0, OPT_SPECIES_SWAP},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    vet_tokenize_opts o = vet_tokenize_defaults();
    vet_swap swap = {0};
    vet_err err;
    int print_tpl = 0, quiet = 0, max_len_given = 0, c;
    while ((c = getopt_long(argc, argv, "s:o:f:qhV", opts, NULL)) != -1) {
        switch (c) {
        case 's': o.tokenizer = optarg; break;
        case 'q': quiet = 1; break;
        case 'o': o.output = optarg; break;
        case 'f': o.notes.format = parse_format(optarg); break;
        case OPT_TEMPLATE: o.template_spec = optarg; break;
        case OPT_INSTRUCTION: o.instruction = optarg; break;
        case OPT_INPUT_FORMAT: o.input_format = optarg; break;
        case OPT_RESPONSE_FORMAT: o.response_format = optarg; break;
        case OPT_PRINT_TEMPLATE: print_tpl = 1; break;
        case OPT_TEXT: o.text = 1; break;
        case OPT_ID_COL: o.notes.id_col = optarg; break;
        case OPT_SPECIES_COL: o.notes.species_col = optarg; break;
        case OPT_NOTE_COL: o.notes.note_col = optarg; break;
        case OPT_CODES_COL: o.notes.codes_col = optarg; break;
        case OPT_DISEASE_COL: o.notes.disease_col = optarg; break;
        case OPT_SKIP_BAD:  // "-": stderr, written as rows come (a file is renamed into place at the end)
            o.rejects = optarg;
            o.rejects_stream = strcmp(optarg, "-") == 0 ? stderr : NULL;
            break;
        case OPT_SPECIES_SWAP:
            vet_swap_free(&swap);  // the last one given counts
            if (vet_swap_parse(optarg, &swap, &err) != 0) cli_usage_error("%s", err.msg);
            break;
        case OPT_STATS: o.stats = 1; break;
        case OPT_MAX_LEN: o.max_len = cli_long("--max-len", optarg, 1, 1L << 20), max_len_given = 1; break;
        case 'h': usage();
        case 'V': cli_version();
        default: cli_usage_error("unknown option");
        }
    }
    if (argc - optind > 1) cli_usage_error("one INPUT at most (got %d)", argc - optind);
    if (optind < argc) o.input = argv[optind];
    if (print_tpl && optind < argc) cli_usage_error("--print-template prints the template and reads no INPUT");
    if (o.template_spec && strcmp(o.template_spec, "-") == 0 && !print_tpl && strcmp(o.input, "-") == 0)
        cli_usage_error("--template - and the notes both on stdin: give the notes or the template as a file");
    if (max_len_given && !o.stats) cli_usage_error("--max-len is what --stats compares against: give --stats too");
    if (print_tpl) {
        refuse_run_flags(&o, &swap);
        return print_template(&o);
    }
    o.swap = &swap;

    vet_tokenize_summary sum;
    int status = EXIT_OK;
    int rc = vet_tokenize_run(&o, &sum, &err);
    if (!quiet && sum.tokenizer_choice[0]) fprintf(stderr, "vet-tokenize: %s\n", sum.tokenizer_choice);
    if (rc < 0) {
        if (err.kind == VET_E_USAGE) cli_usage_error("%s", err.msg);  // flags that do not go together
        cli_warn("%s", err.msg);
        status = cli_exit_status(&err);
    }
    if (o.stats && status == EXIT_OK) print_stats(&sum, o.max_len);
    if (sum.rejected > 0 || (status == EXIT_OK && cli_stderr_is_tty())) print_counts(&sum, o.rejects);
    if (!quiet && status == EXIT_OK) warn_unlabeled(&sum);
    vet_tokenize_summary_free(&sum);
    vet_swap_free(&swap);
    return status;
}
