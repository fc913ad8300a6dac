// vet-eval — scores predicted label sets against gold label sets: exact-match accuracy,
// micro/macro P/R/F1, Jaccard, per-label and per-species tables, confusions, bootstrap
// confidence intervals and a majority-label baseline. The arithmetic is in lib/metrics.c.
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "data/labels.h"
#include "eval/metrics.h"
#include "io/mp.h"
#include "io/stream.h"

enum { EXIT_BELOW = 4 };  // accuracy below --fail-under
#define WIDTH 100         // no line of the report is wider

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf("usage: vet-eval [OPTIONS] [PREDICTIONS]\n"
           "Scores predictions (a 'predictions' stream from vet-generate, or a CSV or JSON lines\n"
           "file with id, gold, pred and optional species) read from PREDICTIONS or stdin ('-').\n"
           "Prints exact-match accuracy, micro/macro precision, recall and F1, mean Jaccard, a\n"
           "per-label and a per-species table, the most frequent confusions, how many outputs\n"
           "parsed to no label, 95%% bootstrap intervals and a majority-label baseline.\n"
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
           "  -q, --quiet              print nothing but errors\n"
           "  -h, --help               this help\n"
           "  -V, --version            print the version\n"
           "\n"
           "Exit status: 0 ok, 1 bad input, 2 usage error, 3 I/O error, 4 below --fail-under.\n");
    exit(EXIT_OK);
}

// --- reading ----------------------------------------------------------------------------

static void read_predictions(const char *path, int format, vet_eval *e, char *fmt_name, size_t cap) {
    vet_err err;
    vet_pred_reader *r = vet_pred_open(path, format, &err);
    if (!r) cli_fail_err(&err);
    snprintf(fmt_name, cap, "%s", vet_pred_format_name(r));
    vet_pred rec;
    int rc;
    while ((rc = vet_pred_next(r, &rec, &err)) == 1) {
        int ok = vet_eval_add(e, rec.species, rec.gold, rec.ngold, rec.pred, rec.npred, &err);
        vet_pred_clear(&rec);
        if (ok < 0) cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
    }
    if (rc < 0) cli_fail_err(&err);
    vet_pred_close(r);
    if (vet_eval_n(e) == 0)
        cli_fail(EXIT_BAD_INPUT, "%s: no predictions (n = 0): nothing to evaluate",
                 !path || strcmp(path, "-") == 0 ? "<stdin>" : path);
}

// The gold label sets of a tokens (codes), packed (codes per sample) or predictions (gold) stream.
static void read_gold_sets(const char *path, vet_eval *e) {
    vet_err err;
    vet_reader *r = vet_reader_open(path, NULL, &err);
    if (!r) cli_fail_err(&err);
    const char *kind = vet_reader_kind(r);
    int packed = strcmp(kind, "packed") == 0;
    const char *key = strcmp(kind, "predictions") == 0 ? "gold" : "codes";
    if (!packed && strcmp(kind, "tokens") != 0 && strcmp(kind, "predictions") != 0)
        cli_fail(EXIT_BAD_INPUT, "%s: --baseline-from wants a tokens, packed or predictions stream, not '%s'",
                 path, kind);
    const msgpack_object *rec;
    int rc;
    while ((rc = vet_reader_next(r, &rec, &err)) == 1) {
        unsigned long long k = vet_reader_records(r);
        if (!packed) {
            char **v;
            size_t n;
            if (mp_get_str_array(rec, key, &v, &n, &err) < 0) cli_fail(EXIT_BAD_INPUT, "%s: record %llu: %s", path, k, err.msg);
            if (vet_eval_add(e, NULL, v, n, NULL, 0, &err) < 0) cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
            mp_free_strs(v, n);
            continue;
        }
        const msgpack_object *codes = mp_get(rec, "codes");
        if (!codes || codes->type != MSGPACK_OBJECT_ARRAY)
            cli_fail(EXIT_BAD_INPUT, "%s: record %llu: field \"codes\" is missing or not an array", path, k);
        for (uint32_t i = 0; i < codes->via.array.size; i++) {
            const msgpack_object *set = &codes->via.array.ptr[i];
            if (set->type != MSGPACK_OBJECT_ARRAY)
                cli_fail(EXIT_BAD_INPUT, "%s: record %llu: \"codes\"[%u] is not an array", path, k, i);
            char *v[set->via.array.size + 1];
            for (uint32_t j = 0; j < set->via.array.size; j++) {
                const msgpack_object *s = &set->via.array.ptr[j];
                if (s->type != MSGPACK_OBJECT_STR || !(v[j] = strndup(s->via.str.ptr, s->via.str.size)))
                    cli_fail(EXIT_BAD_INPUT, "%s: record %llu: \"codes\"[%u][%u] is not a string", path, k, i, j);
            }
            if (vet_eval_add(e, NULL, v, set->via.array.size, NULL, 0, &err) < 0) cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
            for (uint32_t j = 0; j < set->via.array.size; j++) free(v[j]);
        }
    }
    if (rc < 0) cli_fail_err(&err);
    vet_reader_close(r);
    if (vet_eval_n(e) == 0) cli_fail(EXIT_BAD_INPUT, "%s: no samples: no majority label", path);
}

// --- formatting -------------------------------------------------------------------------

// s cut to at most width columns (UTF-8 code points), ending in "..." when cut; control
// characters become spaces so a label from generated text cannot break the table.
static const char *fit(char *out, size_t cap, const char *s, int width) {
    int cols = 0;
    for (const char *p = s; *p; p++) cols += ((unsigned char)*p & 0xC0) != 0x80;
    size_t o = 0;
    int keep = cols <= width ? cols : width - 3, c = 0;
    for (const char *p = s; *p && o + 4 < cap; p++) {
        unsigned char b = (unsigned char)*p;
        if ((b & 0xC0) != 0x80 && c++ == keep) break;
        out[o++] = b < 0x20 || b == 0x7f ? ' ' : (char)b;
    }
    if (cols > width) o += (size_t)snprintf(out + o, cap - o, "...");
    out[o] = 0;
    return out;
}

// "a;b" for a label set, "(none)" for the empty set.
static void join_set(char *out, size_t cap, const char *const *v, size_t n) {
    size_t o = 0;
    out[0] = 0;
    if (n == 0) snprintf(out, cap, "(none)");
    for (size_t i = 0; i < n && o < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ";" : "", v[i]);
}

typedef struct {
    const char *input, *format;
    int B;
    unsigned long long seed;
    double acc_ci[2], f1_ci[2];
    char **base;  // the baseline's label set
    size_t nbase;
    double base_acc;
    const char *base_from;  // NULL: this set
    const vet_labels *codes;
    int top;  // confusions shown
} report;

static const char *term_of(const report *rp, const char *label) {
    const char *t = rp->codes ? vet_labels_term(rp->codes, label) : NULL;
    return t ? t : "";
}

static void print_report(FILE *o, const vet_metrics *m, const report *rp) {
    char a[512], b[512], c[512];
    fprintf(o, "%s (%s)\n", fit(a, sizeof a, rp->input, WIDTH - 10), rp->format);
    fprintf(o, "%-17s %zu\n", "n", m->n);
    if (rp->B > 0) {
        fprintf(o, "%-17s %.4f  95%% CI [%.4f, %.4f] (percentile bootstrap, %d resamples, seed %llu)\n",
                "accuracy", m->accuracy, rp->acc_ci[0], rp->acc_ci[1], rp->B, rp->seed);
    } else {
        fprintf(o, "%-17s %.4f  (%zu of %zu exactly right)\n", "accuracy", m->accuracy, m->correct, m->n);
    }
    fprintf(o, "%-17s %.4f\n", "macro precision", m->macro_precision);
    fprintf(o, "%-17s %.4f\n", "macro recall", m->macro_recall);
    if (rp->B > 0)
        fprintf(o, "%-17s %.4f  95%% CI [%.4f, %.4f]\n", "macro F1", m->macro_f1, rp->f1_ci[0], rp->f1_ci[1]);
    else
        fprintf(o, "%-17s %.4f\n", "macro F1", m->macro_f1);
    fprintf(o, "%-17s %.4f\n", "micro precision", m->micro_precision);
    fprintf(o, "%-17s %.4f\n", "micro recall", m->micro_recall);
    fprintf(o, "%-17s %.4f\n", "micro F1", m->micro_f1);
    fprintf(o, "%-17s %.4f\n", "mean Jaccard", m->jaccard);
    fprintf(o, "%-17s %zu  (outputs that parsed to no label, %.1f%%)\n", "no label", m->no_label,
            100.0 * m->no_label / m->n);
    join_set(b, sizeof b, (const char *const *)rp->base, rp->nbase);
    fprintf(o, "%-17s %.4f  always answering %s\n", "baseline", rp->base_acc, fit(a, sizeof a, b, WIDTH - 43));
    if (rp->base_from)
        fprintf(o, "%-17s the majority gold set of %s\n", "", fit(a, sizeof a, rp->base_from, WIDTH - 42));
    else
        fprintf(o, "%-17s the majority gold set of this set: optimistic, it peeks at the test labels\n", "");

    fprintf(o, "\nper label (P = 0 for a label never predicted; macro means over these %zu labels)\n", m->nlabels);
    fprintf(o, "%-18s %7s %7s %9s %7s %7s  %s\n", "label", "support", "pred", "precision", "recall", "F1", "term");
    for (size_t i = 0; i < m->nlabels; i++) {
        const vet_label_stat *s = &m->labels[i];
        const char *term = term_of(rp, s->label);
        fprintf(o, "%-18s %7zu %7zu %9.4f %7.4f %7.4f%s%s\n", fit(a, sizeof a, s->label, 18), s->support, s->predicted,
                s->precision, s->recall, s->f1, *term ? "  " : "", fit(b, sizeof b, term, WIDTH - 62));
    }

    fprintf(o, "\nper species\n%-18s %7s %9s\n", "species", "n", "accuracy");
    for (size_t i = 0; i < m->nspecies; i++) {
        const vet_species_stat *s = &m->species[i];
        fprintf(o, "%-18s %7zu %9.4f\n", fit(a, sizeof a, *s->species ? s->species : "(none)", 18), s->n, s->accuracy);
    }

    size_t show = (size_t)rp->top < m->nconfusions ? (size_t)rp->top : m->nconfusions;
    fprintf(o, "\nconfusions (the %zu most frequent of %zu)\n%7s  %s\n", show, m->nconfusions, "count", "gold -> predicted");
    for (size_t i = 0; i < show; i++) {
        const vet_confusion *cf = &m->confusions[i];
        join_set(a, sizeof a, cf->gold, cf->ngold);
        join_set(b, sizeof b, cf->pred, cf->npred);
        char g[256];
        fprintf(o, "%7zu  %s -> %s\n", cf->count, fit(g, sizeof g, a, 43), fit(c, sizeof c, b, 43));
    }
}

// --- JSON -------------------------------------------------------------------------------

static json_t *str_array(const char *const *v, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *pair(double lo, double hi) { return json_pack("[ff]", lo, hi); }

static json_t *to_json(const vet_metrics *m, const report *rp) {
    json_t *root = json_object();
    json_object_set_new(root, "input", json_string(rp->input));
    json_object_set_new(root, "format", json_string(rp->format));
    json_object_set_new(root, "n", json_integer((json_int_t)m->n));
    json_object_set_new(root, "correct", json_integer((json_int_t)m->correct));
    json_object_set_new(root, "accuracy", json_real(m->accuracy));
    json_object_set_new(root, "macro_precision", json_real(m->macro_precision));
    json_object_set_new(root, "macro_recall", json_real(m->macro_recall));
    json_object_set_new(root, "macro_f1", json_real(m->macro_f1));
    json_object_set_new(root, "micro_precision", json_real(m->micro_precision));
    json_object_set_new(root, "micro_recall", json_real(m->micro_recall));
    json_object_set_new(root, "micro_f1", json_real(m->micro_f1));
    json_object_set_new(root, "jaccard", json_real(m->jaccard));
    json_object_set_new(root, "no_label", json_integer((json_int_t)m->no_label));

    json_t *labels = json_object();
    for (size_t i = 0; i < m->nlabels; i++) {
        const vet_label_stat *s = &m->labels[i];
        json_object_set_new(labels, s->label,
                            json_pack("{sIsIsIsfsfsfss}", "support", (json_int_t)s->support, "predicted",
                                      (json_int_t)s->predicted, "tp", (json_int_t)s->tp, "precision", s->precision,
                                      "recall", s->recall, "f1", s->f1, "term", term_of(rp, s->label)));
    }
    json_object_set_new(root, "per_label", labels);

    json_t *species = json_object();
    for (size_t i = 0; i < m->nspecies; i++) {
        const vet_species_stat *s = &m->species[i];
        json_object_set_new(species, s->species,
                            json_pack("{sIsIsf}", "n", (json_int_t)s->n, "correct", (json_int_t)s->correct,
                                      "accuracy", s->accuracy));
    }
    json_object_set_new(root, "per_species", species);

    json_t *conf = json_array();
    for (size_t i = 0; i < m->nconfusions; i++) {
        const vet_confusion *c = &m->confusions[i];
        json_array_append_new(conf, json_pack("{sososI}", "gold", str_array(c->gold, c->ngold), "pred",
                                              str_array(c->pred, c->npred), "count", (json_int_t)c->count));
    }
    json_object_set_new(root, "confusions", conf);

    char joined[4096];
    join_set(joined, sizeof joined, (const char *const *)rp->base, rp->nbase);
    json_object_set_new(root, "baseline",
                        json_pack("{sssosfssso}", "label", rp->nbase ? joined : "", "labels",
                                  str_array((const char *const *)rp->base, rp->nbase), "accuracy", rp->base_acc,
                                  "from", rp->base_from ? rp->base_from : "this set", "optimistic",
                                  json_boolean(!rp->base_from)));
    if (rp->B > 0)
        json_object_set_new(root, "ci",
                            json_pack("{sososIsIss}", "accuracy", pair(rp->acc_ci[0], rp->acc_ci[1]), "macro_f1",
                                      pair(rp->f1_ci[0], rp->f1_ci[1]), "resamples", (json_int_t)rp->B, "seed",
                                      (json_int_t)rp->seed, "method", "percentile"));
    else
        json_object_set_new(root, "ci", json_null());
    return root;
}

// A file is written under "<path>.tmp.<pid>" and renamed when whole: a full disk never leaves
// a cut metrics.json under the real name.
static void write_json(const char *path, json_t *root) {
    int to_stdout = strcmp(path, "-") == 0;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = to_stdout ? stdout : fopen(tmp, "w");
    if (!f) cli_fail(EXIT_IO, "%s: cannot create: %s", tmp, strerror(errno));
    int bad = json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) < 0 || fputc('\n', f) == EOF;
    bad |= to_stdout ? fflush(f) != 0 : fclose(f) != 0;
    if (!to_stdout && !bad && rename(tmp, path) != 0) bad = 1;
    if (bad && !to_stdout) unlink(tmp);
    if (bad) cli_fail(EXIT_IO, "%s: write failed: %s", to_stdout ? "<stdout>" : path, strerror(errno));
}

// --- main -------------------------------------------------------------------------------

static long parse_count(const char *s, const char *flag, long max) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < 0 || v > max) cli_usage_error("%s: want an integer in 0..%ld, got '%s'", flag, max, s);
    return v;
}

int main(int argc, char **argv) {
    cli_prog = "vet-eval";
    static const struct option opts[] = {
        {"format", required_argument, 0, 'f'},      {"codes", required_argument, 0, 'c'},
        {"json", required_argument, 0, 'j'},        {"confusions", required_argument, 0, 'n'},
        {"bootstrap", required_argument, 0, 'b'},   {"seed", required_argument, 0, 's'},
        {"baseline-from", required_argument, 0, 'B'}, {"fail-under", required_argument, 0, 'F'},
        {"quiet", no_argument, 0, 'q'},             {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},           {0, 0, 0, 0},
    };
    int format = VET_PRED_SNIFF, quiet = 0, c;
    const char *codes_path = NULL, *json_path = NULL;
    double fail_under = -1;
    report rp = {.B = 1000, .seed = 1, .top = 10};
    while ((c = getopt_long(argc, argv, "f:c:j:n:b:s:B:F:qhV", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "stream") == 0) format = VET_PRED_STREAM;
            else if (strcmp(optarg, "csv") == 0) format = VET_PRED_CSV;
            else if (strcmp(optarg, "jsonl") == 0) format = VET_PRED_JSONL;
            else cli_usage_error("--format: want stream, csv or jsonl, got '%s'", optarg);
            break;
        case 'c': codes_path = optarg; break;
        case 'j': json_path = optarg; break;
        case 'n': rp.top = (int)parse_count(optarg, "--confusions", 1000000); break;
        case 'b': rp.B = (int)parse_count(optarg, "--bootstrap", 10000000); break;
        case 's': rp.seed = (unsigned long long)parse_count(optarg, "--seed", 0x7fffffffffffffffL); break;
        case 'B': rp.base_from = optarg; break;
        case 'F': {
            char *end;
            fail_under = strtod(optarg, &end);
            if (end == optarg || *end || !(fail_under >= 0 && fail_under <= 1))
                cli_usage_error("--fail-under: want an accuracy in [0, 1], got '%s'", optarg);
            break;
        }
        case 'q': quiet = 1; break;
        case 'h': usage();
        case 'V': cli_version();
        default: cli_usage_error("unknown option");
        }
    }
    if (argc - optind > 1) cli_usage_error("one predictions file at most");
    const char *path = optind < argc ? argv[optind] : "-";
    rp.input = strcmp(path, "-") == 0 ? "<stdin>" : path;

    vet_err err;
    vet_labels *codes = NULL;
    if (codes_path) {
        FILE *f = fopen(codes_path, "r");
        if (!f) cli_fail(EXIT_IO, "%s: cannot open: %s", codes_path, strerror(errno));
        codes = vet_codes_load(f, codes_path, &err);
        fclose(f);
        if (!codes) cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
        rp.codes = codes;
    }

    vet_eval *e = vet_eval_new();
    if (!e) cli_fail(EXIT_BAD_INPUT, "out of memory");
    char fmt[16];
    read_predictions(path, format, e, fmt, sizeof fmt);
    rp.format = fmt;

    vet_metrics m;
    if (vet_metrics_compute(e, &m, &err) < 0) cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
    if (rp.B > 0 && vet_metrics_bootstrap(e, rp.B, rp.seed, rp.acc_ci, rp.f1_ci, &err) < 0)
        cli_fail(EXIT_BAD_INPUT, "%s", err.msg);

    size_t base_count;
    if (rp.base_from) {
        vet_eval *train = vet_eval_new();
        if (!train) cli_fail(EXIT_BAD_INPUT, "out of memory");
        read_gold_sets(rp.base_from, train);
        if (vet_eval_majority_gold(train, &rp.base, &rp.nbase, &base_count, &err) < 0) cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
        vet_eval_free(train);
    } else if (vet_eval_majority_gold(e, &rp.base, &rp.nbase, &base_count, &err) < 0) {
        cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
    }
    rp.base_acc = vet_eval_constant_accuracy(e, rp.base, rp.nbase);

    int json_on_stdout = json_path && strcmp(json_path, "-") == 0;
    if (!quiet && !json_on_stdout) {
        print_report(stdout, &m, &rp);
        if (fflush(stdout) != 0 || ferror(stdout)) cli_fail(EXIT_IO, "<stdout>: write failed");
    }
    if (json_path) {
        json_t *root = to_json(&m, &rp);
        if (!root) cli_fail(EXIT_BAD_INPUT, "out of memory");
        write_json(json_path, root);
        json_decref(root);
    }

    int status = fail_under >= 0 && m.accuracy < fail_under ? EXIT_BELOW : EXIT_OK;
    if (status == EXIT_BELOW && !quiet) cli_warn("accuracy %.4f is below --fail-under %g", m.accuracy, fail_under);
    vet_labels_free_list(rp.base, rp.nbase);
    vet_metrics_free(&m);
    vet_eval_free(e);
    vet_labels_free(codes);
    return status;
}
