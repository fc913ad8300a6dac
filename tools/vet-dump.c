// vet-dump — prints any vet stream as JSON lines: how people look inside a stream; and a
// predictions stream as a CSV table (--csv): how people take coded notes away.
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "base/input_file.h"
#include "data/labels.h"
#include "eval/coded_csv.h"
#include "io/mp.h"
#include "io/stream.h"

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf("usage: vet-dump [OPTIONS] [FILE...]\n"
           "Prints vet streams (FILE, or stdin when none or '-') as JSON lines:\n"
           "the header, every record, then the trailer. The whole stream is verified:\n"
           "a truncated or corrupt stream is an error (exit 1).\n"
           "\n"
           "  -c, --count      print only the number of records (after verifying the trailer)\n"
           "  -H, --header     print only the header\n"
           "  -r, --records    print only the records (no header, no trailer)\n"
           "  -k, --kind KIND  fail unless the stream is of this kind\n"
           "      --csv        print a predictions stream (vet-generate's) as a CSV table, one row\n"
           "                   a note: id,species,pred,term,p,refer,gold,ranked,text (the header\n"
           "                   row once, however many FILEs; the shards of one vet-generate\n"
           "                   --shard run as one table in the input's order, the test folds\n"
           "                   of one cross-validation as one table in fold order)\n"
           "      --codes FILE with --csv: the terms of the predicted codes ('code<TAB>term')\n"
           "      --refer-below P  with --csv: refer is yes for notes whose top-1 p (--rank) is\n"
           "                   below P (such as vet-eval --fit-threshold's), else no\n"
           "  -h, --help       this help\n"
           "  -V, --version    print the version\n"
           "\n"
           "Exit status: 0 ok, 1 bad or truncated stream, 2 usage error, 3 I/O error.\n");
    exit(EXIT_OK);
}

enum { MODE_ALL, MODE_COUNT, MODE_HEADER, MODE_RECORDS, MODE_CSV };
enum { OPT_CSV = 256, OPT_CODES, OPT_REFER_BELOW };

// One predictions stream's notes as CSV rows (the header row is written once, by main).
static int csv_one(const char *path, const vet_coded_csv_opts *o, int *header) {
    vet_err err;
    uint64_t rows;
    if (vet_coded_csv_write(stdout, path, o, header, &rows, &err) < 0) {
        fflush(stdout);
        cli_warn("%s", err.msg);
        return cli_exit_status(&err);
    }
    return EXIT_OK;
}

// --csv of several files: one table in the input's order when they are the shards of one
// vet-generate --shard run, in fold order when they are one cross-validation's test folds;
// *merged 0 when they are neither (printed one after another then).
static int csv_shards(const char *const *paths, int n, const vet_coded_csv_opts *o, int *header, int *merged) {
    vet_err err;
    uint64_t rows;
    int rc = vet_coded_csv_write_shard_set(stdout, paths, n, o, header, &rows, &err);
    *merged = rc <= 0;
    if (rc >= 0) return EXIT_OK;
    fflush(stdout);
    cli_warn("%s", err.msg);
    return cli_exit_status(&err);
}


static int dump_one(const char *path, int mode, const char *kind) {
    vet_err err;
    vet_reader *r = vet_reader_open(path, kind, &err);
    if (!r) {
        cli_warn("%s", err.msg);
        return cli_exit_status(&err);
    }
    if (mode == MODE_ALL || mode == MODE_HEADER) {
        mp_print_json(stdout, vet_reader_header(r));
        fputc('\n', stdout);
    }
    if (mode == MODE_HEADER) {
        vet_reader_close(r);
        return EXIT_OK;
    }
    const msgpack_object *rec;
    int rc;
    while ((rc = vet_reader_next(r, &rec, &err)) == 1) {
        if (mode == MODE_ALL || mode == MODE_RECORDS) {
            mp_print_json(stdout, rec);
            fputc('\n', stdout);
        }
    }
    int status = EXIT_OK;
    if (rc < 0) {  // a truncated or corrupt stream (1), or one that could not be read (3)
        fflush(stdout);
        cli_warn("%s", err.msg);
        status = cli_exit_status(&err);
    } else if (mode == MODE_COUNT) {
        printf("%llu\n", (unsigned long long)vet_reader_records(r));
    } else if (mode == MODE_ALL) {
        printf("{\"end\":true,\"records\":%llu}\n", (unsigned long long)vet_reader_records(r));
    }
    vet_reader_close(r);
    return status;
}

// What to print: one of --count, --header, --records and --csv (the same one twice is fine).
static int set_mode(int now, int want) {
    static const char *const names[] = {[MODE_COUNT] = "--count", [MODE_HEADER] = "--header",
                                        [MODE_RECORDS] = "--records", [MODE_CSV] = "--csv"};
    if (now != MODE_ALL && now != want) cli_usage_error("%s and %s: give one", names[now], names[want]);
    return want;
}

int main(int argc, char **argv) {
    cli_prog = "vet-dump";
    static const struct option opts[] = {
        {"count", no_argument, 0, 'c'},   {"header", no_argument, 0, 'H'},
        {"records", no_argument, 0, 'r'}, {"kind", required_argument, 0, 'k'},
        {"csv", no_argument, 0, OPT_CSV}, {"codes", required_argument, 0, OPT_CODES},
        {"refer-below", required_argument, 0, OPT_REFER_BELOW},
        {"help", no_argument, 0, 'h'},    {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int mode = MODE_ALL, c;
    const char *kind = NULL, *codes_path = NULL;
    vet_coded_csv_opts csv = {.codes = NULL, .refer_below = -1};
    while ((c = getopt_long(argc, argv, "cHrk:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': mode = set_mode(mode, MODE_COUNT); break;
        case 'H': mode = set_mode(mode, MODE_HEADER); break;
        case 'r': mode = set_mode(mode, MODE_RECORDS); break;
        case 'k': kind = optarg; break;
        case OPT_CSV: mode = set_mode(mode, MODE_CSV); break;
        case OPT_CODES: codes_path = optarg; break;
        case OPT_REFER_BELOW: csv.refer_below = cli_double("--refer-below", optarg, 0, 1); break;
        case 'h': usage();
        case 'V': cli_version();
        default: cli_usage_error("unknown option");
        }
    }
    if (kind && strcmp(kind, "tokens") != 0 && strcmp(kind, "packed") != 0 && strcmp(kind, "predictions") != 0)
        cli_usage_error("--kind %s: want tokens, packed or predictions", kind);
    if (mode != MODE_CSV && (codes_path || csv.refer_below >= 0))
        cli_usage_error("%s belongs to --csv (the table of a predictions stream)", codes_path ? "--codes" : "--refer-below");
    if (mode == MODE_CSV && kind && strcmp(kind, "predictions") != 0)
        cli_usage_error("--csv prints predictions streams, not --kind %s", kind);
    int status = EXIT_OK;
    vet_err err;
    for (int i = optind; i < argc; i++)  // `vet-dump f >> f` would read what it writes
        if (vet_refuse_overwrite("the output", "-", argv[i], &err)) cli_usage_error("%s", err.msg);
    // At most one of the inputs (the FILEs, none meaning stdin, and --codes) may be stdin.
    vet_named_input ins[2] = {{"--codes", codes_path}, {"FILE", optind == argc ? "-" : NULL}};
    for (int i = optind; i < argc; i++)
        if (strcmp(argv[i], "-") == 0) {
            if (ins[1].path) ins[0] = ins[1];  // a second FILE -
            ins[1] = (vet_named_input){"FILE", "-"};
        }
    if (vet_refuse_stdin_twice(ins, 2, &err)) cli_usage_error("%s", err.msg);
    vet_labels *codes = NULL;
    if (codes_path && !(codes = vet_codes_load_path(codes_path, &err))) cli_fail_err(&err);
    csv.codes = codes;
    int header = 1;  // --csv: the header row, before the first stream's rows
    if (optind == argc) {
        status = mode == MODE_CSV ? csv_one("-", &csv, &header) : dump_one("-", mode, kind);
    } else {
        int merged = 0;
        if (mode == MODE_CSV && argc - optind >= 2)
            status = csv_shards((const char *const *)argv + optind, argc - optind, &csv, &header, &merged);
        for (int i = optind; i < argc && !merged; i++) {
            int s = mode == MODE_CSV ? csv_one(argv[i], &csv, &header) : dump_one(argv[i], mode, kind);
            if (s != EXIT_OK) status = s;
        }
    }
    vet_labels_free(codes);
    errno = 0;  // the reason, when this flush meets it (a full disk, a reader gone), as the others give it
    if (fflush(stdout) != 0 || ferror(stdout))
        cli_fail(EXIT_IO, "<stdout>: write failed%s%s", errno ? ": " : "", errno ? strerror(errno) : "");
    return status;
}
