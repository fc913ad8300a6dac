// vet-synth — writes synthetic veterinary notes (the demo data set) from a disease table. The
// table, the generator and the writers are in lib/data/synth*.c.
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "base/input_file.h"
#include "data/synth.h"

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf("usage: vet-synth [OPTIONS]\n"
           "Writes N synthetic clinical notes of cattle, buffalo, sheep and goats as a CSV with\n"
           "the columns id,species,note,codes,disease,symptoms, drawn from a table of diseases\n"
           "and their clinical signs. The same table, options and seed give the same bytes.\n"
           "\n"
           "  -d, --diseases FILE  the disease table (default: $VET_DATA/diseases.tsv, else\n"
           "                       data/diseases.tsv or share/vet/diseases.tsv next to bin/);\n"
           "                       a file or a pipe, such as <(...) ('-' is a file named -)\n"
           "  -n, --count N        number of notes (default 2000)\n"
           "  -s, --seed S         random seed, an integer >= 0 (default 1)\n"
           "      --noise P        replace a note's label by another plausible disease with\n"
           "                       probability P (default 0.05)\n"
           "      --dup P          repeat an earlier note with probability P (default 0.2)\n"
           "      --species LIST   only these species, comma-separated (e.g. Sheep,Goat)\n"
           "      --alpaca-text    write each note in the Alpaca prompt template with its\n"
           "                       response instead of CSV (text to train a tokenizer on)\n"
           "  -o, --output FILE    write here instead of stdout ('-' is stdout)\n"
           "  -v, --verbose        print a summary on stderr even when it is not a terminal\n"
           "  -h, --help           this help\n"
           "  -V, --version        print the version\n"
           "\n"
           "Exit status: 0 ok, 1 bad disease table, 2 usage error, 3 I/O error.\n");
    exit(EXIT_OK);
}

// The table when --diseases is not given: $VET_DATA/diseases.tsv, then the copy that sits
// beside the program (bin/../data in the source tree, bin/../share/vet once installed).
static char *default_table(void) {
    static char path[PATH_MAX + 64];
    const char *env = getenv("VET_DATA");
    if (env && *env) {
        snprintf(path, sizeof path, "%s/diseases.tsv", env);
        return access(path, R_OK) == 0 ? path : NULL;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;
    static const char *rel[] = {"../data/diseases.tsv", "../share/vet/diseases.tsv"};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
        snprintf(path, sizeof path, "%s/%s", exe, rel[i]);
        if (access(path, R_OK) == 0) return path;
    }
    return NULL;
}

int main(int argc, char **argv) {
    cli_prog = "vet-synth";
    enum { OPT_NOISE = 256, OPT_DUP, OPT_SPECIES, OPT_ALPACA };
    static const struct option opts[] = {
        {"diseases", required_argument, 0, 'd'}, {"count", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'},     {"noise", required_argument, 0, OPT_NOISE},
        {"dup", required_argument, 0, OPT_DUP},  {"species", required_argument, 0, OPT_SPECIES},
        {"alpaca-text", no_argument, 0, OPT_ALPACA}, {"output", required_argument, 0, 'o'},
        {"verbose", no_argument, 0, 'v'},        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},        {0, 0, 0, 0},
    };
    const char *table_path = NULL, *out_path = "-";
    vet_synth_opts o = vet_synth_defaults();
    int verbose = 0, c;
    while ((c = getopt_long(argc, argv, "d:n:s:o:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'd': table_path = optarg; break;
        case 'n': o.count = cli_long("--count", optarg, 0, LONG_MAX / 2); break;
        case 's': o.seed = (uint64_t)cli_long("--seed", optarg, 0, LONG_MAX); break;
        case OPT_NOISE: o.noise = cli_double("--noise", optarg, 0, 1); break;
        case OPT_DUP: o.dup = cli_double("--dup", optarg, 0, 1); break;
        case OPT_SPECIES: o.species = optarg; break;
        case OPT_ALPACA: o.alpaca_text = 1; break;
        case 'o': out_path = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage();
        case 'V': cli_version();
        default: cli_usage_error("unknown option");
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!table_path && !(table_path = default_table()))
        cli_fail(EXIT_IO, "no disease table found (give --diseases FILE, or set VET_DATA to the "
                          "directory holding diseases.tsv)");

    vet_err err;
    if (vet_refuse_overwrite("-o", out_path, table_path, &err)) cli_usage_error("%s", err.msg);
    vet_synth_table *t = vet_synth_table_load(table_path, &err);
    if (!t) cli_fail_err(&err);
    vet_synth_counts n;
    int rc = vet_synth_write_file(t, &o, out_path, &n, &err);
    vet_synth_table_free(t);
    if (rc < 0 && err.kind == VET_E_USAGE) cli_usage_error("%s", err.msg);  // --species, --noise, --dup
    if (rc < 0) cli_fail_err(&err);
    if (verbose || cli_stderr_is_tty())
        fprintf(stderr, "vet-synth: wrote %ld notes (%ld repeated, %ld relabelled) from %s to %s\n", n.rows, n.repeated,
                n.relabelled, table_path, strcmp(out_path, "-") == 0 ? "stdout" : out_path);
    return EXIT_OK;
}
