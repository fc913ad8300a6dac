// vet-synth — writes synthetic veterinary notes (the demo data set) from a disease table.
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "data/synth.h"

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf("usage: vet-synth [OPTIONS]\n"
           "Writes N synthetic clinical notes of cattle, buffalo, sheep and goats as a CSV with\n"
           "the columns id,species,note,codes,disease,symptoms, drawn from a table of diseases\n"
           "and their clinical signs. The same table, options and seed give the same bytes.\n"
           "\n"
           "  -d, --diseases FILE  the disease table (default: $VET_DATA/diseases.tsv, else\n"
           "                       data/diseases.tsv or share/vet/diseases.tsv next to bin/)\n"
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

static double parse_prob(const char *s, const char *flag) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= 0 && v <= 1))
        cli_usage_error("%s wants a probability in [0,1], not '%s'", flag, s);
    return v;
}

static unsigned long long parse_count(const char *s, const char *flag) {
    char *end;
    errno = 0;
    if (*s == '-') cli_usage_error("%s wants an integer >= 0, not '%s'", flag, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s) cli_usage_error("%s wants an integer >= 0, not '%s'", flag, s);
    return v;
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
    unsigned long long n = 2000;
    vet_synth_opts o = {.seed = 1, .noise = 0.05, .dup = 0.2, .species = NULL};
    int alpaca = 0, verbose = 0, c;
    while ((c = getopt_long(argc, argv, "d:n:s:o:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'd': table_path = optarg; break;
        case 'n': n = parse_count(optarg, "-n"); break;
        case 's': o.seed = parse_count(optarg, "--seed"); break;
        case OPT_NOISE: o.noise = parse_prob(optarg, "--noise"); break;
        case OPT_DUP: o.dup = parse_prob(optarg, "--dup"); break;
        case OPT_SPECIES: o.species = optarg; break;
        case OPT_ALPACA: alpaca = 1; break;
        case 'o': out_path = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage();
        case 'V': cli_version();
        default: cli_usage_error("unknown option");
        }
    }
    if (optind < argc) cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (n > (unsigned long long)LONG_MAX / 2) cli_usage_error("-n %llu is too many notes", n);
    if (!table_path && !(table_path = default_table()))
        cli_fail(EXIT_IO, "no disease table found (give --diseases FILE, or set VET_DATA to the "
                          "directory holding diseases.tsv)");

    vet_err err;
    if (access(table_path, R_OK) != 0) cli_fail(EXIT_IO, "%s: %s", table_path, strerror(errno));
    vet_synth_table *t = vet_synth_table_load(table_path, &err);
    if (!t) cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
    vet_synth_gen *g = vet_synth_gen_new(t, &o, (long)n, &err);
    if (!g) {
        vet_synth_table_free(t);
        cli_usage_error("%s", err.msg);
    }

    // A file is written under a temporary name and renamed at the end: a failed run never
    // leaves a complete-looking, shorter data set behind (make would take it as up to date).
    int to_stdout = strcmp(out_path, "-") == 0;
    char tmp_path[PATH_MAX];
    FILE *f = stdout;
    if (!to_stdout) {
        snprintf(tmp_path, sizeof tmp_path, "%s.tmp%ld", out_path, (long)getpid());
        if (!(f = fopen(tmp_path, "w"))) cli_fail(EXIT_IO, "%s: %s", tmp_path, strerror(errno));
    }
    int rc = alpaca ? 0 : vet_synth_write_csv_header(f, &err);
    long dups = 0, relabelled = 0;
    for (unsigned long long i = 0; i < n && rc == 0; i++) {
        const vet_synth_row *r = vet_synth_gen_next(g, &err);
        if (!r) {
            rc = -1;
            break;
        }
        dups += r->dup_of >= 0;
        relabelled += r->disease != r->true_disease;
        rc = alpaca ? vet_synth_write_alpaca(f, t, r, &err) : vet_synth_write_csv_row(f, t, r, &err);
    }
    if (rc != 0 && ferror(f)) vet_err_prefix(&err, "%s", to_stdout ? "<stdout>" : out_path);   // the library's message has no path
    if (rc == 0 && fflush(f) != 0) rc = vet_errf(&err, "%s: write failed: %s", to_stdout ? "<stdout>" : out_path, strerror(errno));
    if (!to_stdout) {
        if (fclose(f) != 0 && rc == 0) rc = vet_errf(&err, "%s: %s", tmp_path, strerror(errno));
        if (rc == 0 && rename(tmp_path, out_path) != 0)
            rc = vet_errf(&err, "%s: %s", out_path, strerror(errno));
        if (rc != 0) remove(tmp_path);
    }
    if (rc == 0 && (verbose || cli_stderr_is_tty()))
        fprintf(stderr, "vet-synth: wrote %llu notes (%ld repeated, %ld relabelled) from %s to %s\n",
                n, dups, relabelled, table_path, to_stdout ? "stdout" : out_path);
    vet_synth_gen_free(g);
    vet_synth_table_free(t);
    if (rc != 0) cli_fail(EXIT_IO, "%s", err.msg);
    return EXIT_OK;
}
