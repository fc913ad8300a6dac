// fuzz_predictions.c — what vet-eval reads (lib/eval/predictions.h) and reports (report.h) on
// arbitrary input: the CSV and JSON lines readers, the predictions stream's records (gold, pred,
// and vet-generate --rank's `ranked` lists) and the metrics over them. The first byte picks the
// form of the rest: 0 CSV, 1 JSON lines, 2 a stream file as it is, 3 msgpack that the harness
// compresses into a zstd frame first (header, records, trailer: the fuzzer reaches the records);
// bit 2 asks for vet-eval --fit-temperature, bit 3 for --temperature 1.7, bit 4 for
// --refer-below 0.5 and bit 5 for --fit-threshold at accuracy 0.8 (in place of bit 4), bit 6 for
// --compare with the file itself (every note agrees: a difference of 0 and p = 1). Promises checked: a report is built or an error
// says why; every rate is in [0, 1]; hit@k never falls as k grows; the selective rows keep fewer
// notes as the coverage falls; a fitted temperature lies in the searched range and its NLL is
// no worse than at T = 1; a referral's counts add up, and a fitted threshold's coded notes reach
// the target. A stream is also written as vet-dump --csv's table (eval/coded_csv.h): an error
// says why, and a stream that vet-eval scores makes one row per note scored.
#include <math.h>

#include "fuzz_util.h"

#include "eval/coded_csv.h"
#include "eval/predictions.h"
#include "eval/report.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    devnull = fopen("/dev/null", "w");
    return devnull ? 0 : -1;
}

static int rate(double x) { return x >= 0 && x <= 1; }

static void check_ranking(const vet_ranking *k, size_t n) {
    if (k->kmax == 0) return;
    if (k->n != n || !rate(k->mrr) || !rate(k->ece) || !rate(k->brier)) abort();
    for (size_t i = 0; i < k->kmax; i++)
        if (!rate(k->hit_at[i]) || (i > 0 && k->hit_at[i] < k->hit_at[i - 1])) abort();
    if (k->mrr > k->hit_at[k->kmax - 1] || k->mrr < k->hit_at[0]) abort();  // between hit@1 and hit@kmax
    for (int r = 0; r < VET_SELECTIVE_ROWS; r++) {
        const vet_selective *s = &k->selective[r];
        if (s->notes < 1 || s->notes > n || !rate(s->accuracy) || !rate(s->threshold)) abort();
        if (r > 0 && (s->notes > k->selective[r - 1].notes || s->threshold < k->selective[r - 1].threshold)) abort();
    }
}

static void check_temperature(const vet_ranking *k) {
    if (!k->fitted) return;
    const vet_temperature *t = &k->temperature;
    if (!(t->t >= VET_TEMPERATURE_MIN && t->t <= VET_TEMPERATURE_MAX) || t->fitted < 1 || t->fitted > t->notes) abort();
    if (!(t->nll[0] >= 0 && t->nll[1] >= 0 && t->nll[1] <= t->nll[0] * (1 + 1e-9) + 1e-12)) abort();
    for (int i = 0; i < 2; i++)
        if (!rate(t->ece[i]) || !rate(t->brier[i])) abort();
}

static void check_referral(const vet_report *r, size_t n) {
    if (!(r->o.refer_below >= 0 || r->o.fit_threshold > 0)) return;
    const vet_referral *f = &r->referral;
    // An accuracy over no note is undefined (NAN), over some a rate.
    size_t referred = n - f->coded;
    if (!r->referred || f->notes != n || f->coded > n || !rate(f->coverage) ||
        (f->coded ? !rate(f->accuracy) : !isnan(f->accuracy)) ||
        (referred ? !rate(f->referred_accuracy) : !isnan(f->referred_accuracy)))
        abort();
    if (r->o.fit_threshold > 0 && (f->coded < 1 || f->accuracy < r->o.fit_threshold - 1e-12)) abort();
}

// The table of the stream at path; scored: how many notes vet-eval scored from it (0: none).
static void coded_table(const char *path, size_t scored, int ranked) {
    vet_coded_csv_opts o = {.codes = NULL, .refer_below = ranked ? 0.5 : -1};
    vet_err err = {0};
    uint64_t rows = 0;
    int header = 1;
    if (vet_coded_csv_write(devnull, path, &o, &header, &rows, &err) == 0) {
        if (scored && rows != scored) abort();
    } else {
        if (scored) abort();
        fz_check_msg(&err);
    }
}

static void report(const char *path, int format, int flags) {
    vet_eval_opts o = vet_eval_defaults();
    o.predictions = path, o.format = format, o.bootstrap = 20, o.fit_temperature = flags & 1;
    if (flags & 2) o.temperature = 1.7;
    if (flags & 16) o.compare = path;
    if (flags & 8) o.fit_threshold = 0.8;
    else if (flags & 4) o.refer_below = 0.5;
    int fit = flags & 1;
    vet_report r;
    vet_err err = {0};
    size_t scored = 0;
    int ranked = 0;
    if (vet_report_build(&o, &r, &err) == 0) {
        size_t n = vet_eval_n(r.samples);
        if (r.format && strcmp(r.format, "stream") == 0) scored = n, ranked = r.rank.kmax > 0;
        if (n == 0 || !rate(r.m.accuracy) || !rate(r.base_acc)) abort();
        check_ranking(&r.rank, n);
        check_temperature(&r.rank);
        check_referral(&r, n);
        if (fit != r.rank.fitted) abort();  // asked for and built, or an error
        if (!!o.compare != r.compared) abort();
        if (r.compared && (r.cmp.n != n || r.cmp.diff != 0 || r.cmp.only_this || r.cmp.only_other ||
                           r.cmp.mcnemar_p != 1 || r.cmp.ci[0] != 0 || r.cmp.ci[1] != 0))
            abort();
        if (vet_report_print(devnull, &r) != 0) abort();
        char json[300];
        fz_path(json, sizeof json, "report.json");
        err.msg[0] = 0;
        if (vet_report_write_json(&r, json, &err) != 0) fz_check_msg(&err);
    } else {
        fz_check_msg(&err);
    }
    vet_report_free(&r);
    if (format == VET_PRED_SNIFF) coded_table(path, scored, ranked);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const int formats[4] = {VET_PRED_CSV, VET_PRED_JSONL, VET_PRED_SNIFF, VET_PRED_SNIFF};
    int mode = data[0] & 3;
    char path[300];
    fz_path(path, sizeof path, "preds");
    if (mode == 3)
        fz_write_zstd(path, data + 1, size - 1);
    else
        fz_write(path, data + 1, size - 1);
    report(path, formats[mode], data[0] >> 2);
    return 0;
}
