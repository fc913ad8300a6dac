// vet-eval — scores predicted label sets against gold label sets: exact-match accuracy,
// micro/macro P/R/F1, Jaccard, per-label and per-species tables, confusions, bootstrap
// confidence intervals, a majority-label baseline and, for ranked predictions, the ranking
// metrics (lib/eval/ranking.h). The report is built and written by
// lib/eval/report.h (the arithmetic in lib/eval/metrics.c, the readers in predictions.c).
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "base/input_file.h"
#include "eval/predictions.h"
#include "eval/report.h"

enum { EXIT_BELOW = 4 };  // accuracy below --fail-under
enum { OPT_TARGET = 256, OPT_TEMPERATURE, OPT_COMPARE };

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf("usage: vet-eval [OPTIONS] [PREDICTIONS...]\n"
           "Scores predictions (a 'predictions' stream from vet-generate, or a CSV or JSON lines\n"
           "file with id, gold, pred and optional species) read from PREDICTIONS or stdin ('-').\n"
           "Several PREDICTIONS: the N streams of one vet-generate --shard K/N run, merged in the\n"
           "input's order, or the test splits' predictions of one cross-validation (vet-pack\n"
           "--fold I/K), pooled; an incomplete or overlapping set is refused, naming the shard\n"
           "or the fold.\n"
           "Prints exact-match accuracy, micro/macro precision, recall and F1, mean Jaccard, a\n"
           "per-label and a per-species table, the most frequent confusions, how many outputs\n"
           "parsed to no label, 95%% bootstrap intervals and a majority-label baseline; for\n"
           "vet-generate --rank predictions also hit@k, MRR, top-1 calibration (ECE, Brier) and\n"
           "the accuracy left when the least confident notes go to a person.\n"
           "\n"
           "  -f, --format F           stream, csv or jsonl (default: sniffed from the first byte)\n"
           "  -c, --codes FILE         label terms for the table: 'code<TAB>term' lines\n"
           "  -j, --json FILE          also write every number as JSON to FILE ('-': stdout, no table)\n"
           "  -n, --confusions N       show the N most frequent confusions (default 10)\n"
           "  -b, --bootstrap N        resamples for the 95%% intervals (default 1000, 0: none)\n"
           "  -s, --seed S             bootstrap seed, an integer >= 0 (default 1)\n"
           "  -B, --baseline-from FILE majority label from this tokens/packed/predictions stream\n"
           "                           (default: from the evaluated set itself: optimistic)\n"
           "  -F, --fail-under ACC     exit 4 when accuracy < ACC (after the report)\n"
           "  -T, --fit-temperature FILE  fit the temperature that calibrates --rank's p to these\n"
           "                           notes' gold labels; write it to FILE ('-': stdout, no table)\n"
           "                           for vet-generate --rank-temperature (needs --rank all)\n"
           "      --temperature T      score the ranking at p = softmax(logp / T) (needs --rank all):\n"
           "                           as if vet-generate had used --rank-temperature T\n"
           "  -R, --refer-below P      notes whose top-1 p is below P go to a person: report how\n"
           "                           many are coded automatically and how well (needs --rank)\n"
           "  -A, --fit-threshold FILE the lowest P whose coded notes reach --target-accuracy on\n"
           "                           these notes, written to FILE ('-': stdout, no table)\n"
           "      --target-accuracy ACC  for --fit-threshold (default 0.95)\n"
           "      --compare OTHER      compare note by note with OTHER, another model's predictions\n"
           "                           of the same notes (paired by id): both right, only one,\n"
           "                           neither; the accuracy difference with a paired bootstrap\n"
           "                           interval; McNemar's exact p (by notes, and with the\n"
           "                           notes' groups whole when they have groups). Repeat it\n"
           "                           to give the shards of one vet-generate --shard run, or\n"
           "                           the folds of one cross-validation\n"
           "  -q, --quiet              print nothing but errors\n"
           "  -h, --help               this help\n"
           "  -V, --version            print the version\n"
           "\n"
           "Exit status: 0 ok, 1 bad input, 2 usage error, 3 I/O error, 4 below --fail-under.\n");
    exit(EXIT_OK);
}

static int parse_format(const char *s) {
    if (strcmp(s, "stream") == 0) return VET_PRED_STREAM;
    if (strcmp(s, "csv") == 0) return VET_PRED_CSV;
    if (strcmp(s, "jsonl") == 0) return VET_PRED_JSONL;
    cli_usage_error("--format: want stream, csv or jsonl, got '%s'", s);
}

static void refuse_overwrite(const char *flag, const char *out, const char *input) {
    vet_err err;
    if (input && out && vet_refuse_overwrite(flag, out, input, &err)) cli_usage_error("%s", err.msg);
}

int main(int argc, char **argv) {
    cli_prog = "vet-eval";
    static const struct option opts[] = {
        {"format", required_argument, 0, 'f'},      {"codes", required_argument, 0, 'c'},
        {"json", required_argument, 0, 'j'},        {"confusions", required_argument, 0, 'n'},
        {"bootstrap", required_argument, 0, 'b'},   {"seed", required_argument, 0, 's'},
        {"baseline-from", required_argument, 0, 'B'}, {"fail-under", required_argument, 0, 'F'},
        {"fit-temperature", required_argument, 0, 'T'}, {"refer-below", required_argument, 0, 'R'},
        {"fit-threshold", required_argument, 0, 'A'}, {"target-accuracy", required_argument, 0, OPT_TARGET},
        {"temperature", required_argument, 0, OPT_TEMPERATURE}, {"compare", required_argument, 0, OPT_COMPARE},
        {"quiet", no_argument, 0, 'q'},             {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},           {0, 0, 0, 0},
    };
    vet_eval_opts o = vet_eval_defaults();
    const char *json_path = NULL, *temperature_path = NULL, *threshold_path = NULL;
    double target = 0.95;
    double fail_under = -1;
    int quiet = 0, target_given = 0, c;
    const char **compare = malloc((size_t)argc * sizeof *compare);  // every --compare, in order
    if (!compare) cli_fail(EXIT_IO, "out of memory");
    while ((c = getopt_long(argc, argv, "f:c:j:n:b:s:B:F:T:R:A:qhV", opts, NULL)) != -1) {
        switch (c) {
        case 'f': o.format = parse_format(optarg); break;
        case 'c': o.codes = optarg; break;
        case 'j': json_path = optarg; break;
        case 'n': o.confusions = cli_int("--confusions", optarg, 0, 1000000); break;
        case 'b': o.bootstrap = cli_int("--bootstrap", optarg, 0, 10000000); break;
        case 's': o.seed = (uint64_t)cli_long("--seed", optarg, 0, 0x7fffffffffffffffL); break;
        case 'B': o.baseline_from = optarg; break;
        case 'F': fail_under = cli_double("--fail-under", optarg, 0, 1); break;
        case 'T': temperature_path = optarg, o.fit_temperature = 1; break;
        case 'R': o.refer_below = cli_double("--refer-below", optarg, 0, 1); break;
        case 'A': threshold_path = optarg; break;
        case OPT_TEMPERATURE: o.temperature = cli_double("--temperature", optarg, 1e-3, 1e3); break;
        case OPT_TARGET: target = cli_double("--target-accuracy", optarg, 1e-9, 1), target_given = 1; break;
        case OPT_COMPARE:  // repeated: the shards of one vet-generate --shard run
            if (!o.compare) o.compare = optarg;
            compare[o.n_compare_shards++] = optarg;
            break;
        case 'q': quiet = 1; break;
        case 'h': usage();
        case 'V': cli_version();
        default: cli_usage_error("unknown option");
        }
    }
    if (target_given && !threshold_path)
        cli_usage_error("--target-accuracy is what --fit-threshold aims for: give --fit-threshold FILE too");
    if (threshold_path) o.fit_threshold = target;
    if (threshold_path && o.refer_below >= 0)
        cli_usage_error("--refer-below and --fit-threshold: give one (fit the threshold on validation notes, then "
                        "refer the test notes below it)");
    if (optind < argc) o.predictions = argv[optind];
    if (o.n_compare_shards >= 2) o.compare_shards = compare;
    else o.n_compare_shards = 0;
    const vet_named_input ins[] = {{"PREDICTIONS", o.predictions}, {"--codes", o.codes}, {"--compare", o.compare},
                                   {"--baseline-from", o.baseline_from}};
    vet_err err;
    if (vet_refuse_stdin_twice(ins, 4, &err)) cli_usage_error("%s", err.msg);
    if (argc - optind > 1) o.shards = (const char *const *)argv + optind, o.n_shards = argc - optind;

    // Before anything is read or written: the outputs (--json, --fit-temperature,
    // --fit-threshold) must name none of the inputs, nor two of them the same file.
    const char *outs[3][2] = {{"--json", json_path}, {"--fit-temperature", temperature_path},
                              {"--fit-threshold", threshold_path}};
    for (int k = 0; k < 3; k++) {
        refuse_overwrite(outs[k][0], outs[k][1], o.codes), refuse_overwrite(outs[k][0], outs[k][1], o.baseline_from);
        for (int i = 0; o.compare && i < (o.n_compare_shards ? o.n_compare_shards : 1); i++)
            refuse_overwrite(outs[k][0], outs[k][1], compare[i]);
        for (int i = optind; i < argc; i++) refuse_overwrite(outs[k][0], outs[k][1], argv[i]);
    }
    for (int k = 0; k < 3; k++)
        for (int l = k + 1; l < 3; l++)
            if (outs[k][1] && outs[l][1] && strcmp(outs[k][1], outs[l][1]) == 0)
                cli_usage_error("%s and %s both name '%s': give each its own file", outs[k][0], outs[l][0], outs[k][1]);
    vet_report r;
    if (vet_report_build(&o, &r, &err) < 0) cli_fail_err(&err);
    int on_stdout = 0;
    for (int k = 0; k < 3; k++) on_stdout |= outs[k][1] && strcmp(outs[k][1], "-") == 0;
    if (!quiet && !on_stdout && (vet_report_print(stdout, &r) < 0 || fflush(stdout) != 0))
        cli_fail(EXIT_IO, "<stdout>: write failed");
    if (json_path && vet_report_write_json(&r, json_path, &err) < 0) cli_fail_err(&err);
    if (temperature_path && vet_report_write_temperature(&r, temperature_path, &err) < 0) cli_fail_err(&err);
    if (threshold_path && vet_report_write_threshold(&r, threshold_path, &err) < 0) cli_fail_err(&err);

    int status = fail_under >= 0 && r.m.accuracy < fail_under ? EXIT_BELOW : EXIT_OK;
    // The counts beside the 4 decimals: 19999 of 25000 right shows as 0.8000, and is below 0.8.
    if (status == EXIT_BELOW && !quiet)
        cli_warn("accuracy %.4f (%zu of %zu notes exactly right) is below --fail-under %g", r.m.accuracy, r.m.correct,
                 r.m.n, fail_under);
    vet_report_free(&r);
    free(compare);
    return status;
}
