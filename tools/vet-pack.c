// vet-pack — token records into packed training rows: split train/val/test without leakage
// (identical notes stay together), cut the loss mask, pack whole samples into rows.
//
// The job is lib/data/packer.h (vet_pack_run): reading, fitting, splitting, the copies from
// vet-tokenize --species-swap, packing and writing all happen there. This program turns flags
// into a vet_pack_opts, runs the job, and prints what it did.
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "data/pack.h"
#include "data/packer.h"
#include "data/split.h"

// --seq-len's range: a row holds at least a BOS and an EOS; 2^24 tokens is far beyond any model.
enum { SEQ_LEN_MIN = 2, SEQ_LEN_MAX = 1 << 24 };

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf("usage: vet-pack [OPTIONS] [TOKENS]\n"
           "Packs a tokens stream (TOKENS, or stdin when absent or '-') into rows of training data:\n"
           "splits it into train/val/test with identical notes kept together, builds each sample's\n"
           "loss mask and packs whole samples into rows of at most --seq-len tokens.\n"
           "\n"
           "Output (one of):\n"
           "      --out DIR          DIR/train.msgpack.zst, DIR/val.msgpack.zst, DIR/test.msgpack.zst\n"
           "      --train F, --val F, --test F   each split to its own file ('-' = stdout)\n"
           "  -o, --output F         everything in one stream, no splitting (split 'all')\n"
           "Splitting:\n"
           "      --split A/B/C      train/val/test shares, normalized (default 80/10/10; 100/0/0 ok)\n"
           "      --seed N           seed for the split and the row order (default 1)\n"
           "      --fold I/K         cross-validation: fold I of K (0 <= I < K) is the test split,\n"
           "                         the other folds are split train/val by --split TRAIN/VAL\n"
           "                         (default 80/10); the same --seed gives the same K folds\n"
           "      --group-by note|none   keep identical normalized notes in one split (default note)\n"
           "      --stratify codes|none  keep each label's share in every split (default none)\n"
           "      --train-in F, --val-in F, --test-in F   already split token streams: packed as\n"
           "                         they are (no splitting); all must share one tokenizer\n"
           "  Copies (records with copy_of, from vet-tokenize --species-swap) follow their\n"
           "  original's split and are packed in train (and -o) only; in val and test they are\n"
           "  dropped and counted, unless:\n"
           "      --val-copies F     the val split's copies, packed, to F (training data for a\n"
           "                         model fitted on train + val; never part of val itself)\n"
           "Rows:\n"
           "      --seq-len N        row length in tokens (default 512, at least 2)\n"
           "      --no-pack          one sample per row (evaluation, generation, comparison)\n"
           "      --train-on-prompt  loss on every next token, not only the response\n"
           "      --truncate left|right  keep over-long samples by cutting the prompt (left: its\n"
           "                         oldest tokens after BOS; right: its tail); default: reject\n"
           "Reporting:\n"
           "      --summary FILE     write the summary as JSON to FILE ('-': stdout)\n"
           "  -v, --verbose          print the summary on stderr even when it is not a terminal\n"
           "  -h, --help             this help\n"
           "  -V, --version          print the version\n"
           "\n"
           "Exit status: 0 ok, 1 bad input, 2 usage error, 3 I/O error.\n");
    exit(EXIT_OK);
}

// The over-long samples, the first eight by id: the summary lists them all.
static void warn_rejected(const vet_pack_opts *o, const vet_pack_result *res) {
    if (res->n_rejected == 0) return;
    char list[600] = "";
    size_t used = 0, shown = 0;
    for (; shown < res->n_rejected && shown < 8; shown++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", shown ? ", " : "", res->rejected_ids[shown]);
        if (w < 0 || (size_t)w >= sizeof list - used) break;
        used += (size_t)w;
    }
    cli_warn("%zu samples longer than --seq-len %d rejected: %s%s (%s)", res->n_rejected, (int)o->seq_len, list,
             shown < res->n_rejected ? ", ..." : "",
             o->trunc == VET_TRUNC_NONE ? "--truncate left|right keeps them by cutting the prompt"
                                        : "their responses alone do not fit");
}

static void print_summary(const vet_pack_opts *o, const vet_pack_result *res) {
    const vet_pack_group_stats *g = &res->groups;
    const vet_pack_copy_stats *c = &res->copies;
    int seq_len = (int)o->seq_len;
    cli_warn("%lld samples in: %lld packed, %lld rejected, %lld truncated; %lld distinct notes, %lld of them "
             "repeated (%lld samples), %lld shared across splits",
             (long long)res->samples_in, (long long)res->total.packed, (long long)res->total.rejected,
             (long long)res->total.truncated, (long long)g->groups, (long long)g->dup_groups,
             (long long)g->dup_samples, (long long)g->leaked_groups);
    if (c->in)
        cli_warn("%lld of the samples are species-swapped copies: %lld trained on (%lld of them read like a "
                 "held-out note), %lld dropped with their held-out originals",
                 (long long)c->in, (long long)(c->in - c->dropped), (long long)c->like_heldout, (long long)c->dropped);
    for (int k = 0; k < VET_PACK_SLOTS; k++) {
        if (!res->used[k]) continue;
        const vet_pack_slot_stats *s = &res->slot[k];
        double pos = (double)s->rows * seq_len, pad = (double)s->packed * seq_len;
        cli_warn("%-5s: %lld samples -> %lld rows, %lld tokens (%.1f%% of %lld x %d), %lld with loss; "
                 "pad-to-%d: %.0f positions, packed uses %.3f of them",
                 vet_pack_slot_name(k), (long long)s->packed, (long long)s->rows, (long long)s->tokens,
                 pos > 0 ? 100.0 * (double)s->tokens / pos : 0.0, (long long)s->rows, seq_len,
                 (long long)s->loss_tokens, seq_len, pad, pad > 0 ? pos / pad : 0.0);
    }
}

// ---------------------------------------------------------------------------------------

enum {
    OPT_OUT = 1000, OPT_TRAIN, OPT_VAL, OPT_TEST, OPT_TRAIN_IN, OPT_VAL_IN, OPT_TEST_IN, OPT_SPLIT,
    OPT_SEED, OPT_GROUP_BY, OPT_STRATIFY, OPT_SEQ_LEN, OPT_NO_PACK, OPT_TRAIN_ON_PROMPT,
    OPT_TRUNCATE, OPT_SUMMARY, OPT_VAL_COPIES, OPT_FOLD,
};

// A flag that only shapes the split (--split, --group-by, --stratify) given where no split is made:
// -o writes one stream, --*-in gives the splits. Refused, rather than silently doing nothing.
static void refuse_unused_split_flag(const vet_pack_opts *o, const char *split_flag) {
    if (!split_flag) return;
    if (o->out[VET_PACK_ALL])
        cli_usage_error("%s has no effect with -o (one output, no split): leave it out, or split with --out DIR",
                        split_flag);
    if (o->split_in[VET_SPLIT_TRAIN] || o->split_in[VET_SPLIT_VAL] || o->split_in[VET_SPLIT_TEST])
        cli_usage_error("%s has no effect with --train-in/--val-in/--test-in (the splits are given): leave it out",
                        split_flag);
}

// "A" -> 1, "B" -> 0 for a flag that takes one of two words; anything else is a usage error.
static int one_of(const char *flag, const char *v, const char *yes, const char *no) {
    if (strcmp(v, yes) == 0) return 1;
    if (strcmp(v, no) == 0) return 0;
    cli_usage_error("%s '%s': expected %s or %s", flag, v, yes, no);
}

int main(int argc, char **argv) {
    cli_prog = "vet-pack";
    static const struct option opts[] = {
        {"out", required_argument, 0, OPT_OUT},
        {"train", required_argument, 0, OPT_TRAIN},
        {"val", required_argument, 0, OPT_VAL},
        {"test", required_argument, 0, OPT_TEST},
        {"output", required_argument, 0, 'o'},
        {"train-in", required_argument, 0, OPT_TRAIN_IN},
        {"val-in", required_argument, 0, OPT_VAL_IN},
        {"test-in", required_argument, 0, OPT_TEST_IN},
        {"split", required_argument, 0, OPT_SPLIT},
        {"seed", required_argument, 0, OPT_SEED},
        {"group-by", required_argument, 0, OPT_GROUP_BY},
        {"stratify", required_argument, 0, OPT_STRATIFY},
        {"seq-len", required_argument, 0, OPT_SEQ_LEN},
        {"no-pack", no_argument, 0, OPT_NO_PACK},
        {"train-on-prompt", no_argument, 0, OPT_TRAIN_ON_PROMPT},
        {"truncate", required_argument, 0, OPT_TRUNCATE},
        {"summary", required_argument, 0, OPT_SUMMARY},
        {"val-copies", required_argument, 0, OPT_VAL_COPIES},
        {"fold", required_argument, 0, OPT_FOLD},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    vet_pack_opts o = vet_pack_defaults();
    int verbose = 0, c;
    const char *split_flag = NULL;  // the last flag given that only shapes the split
    const char *split_spec = NULL;  // --split's value, read once --fold is known
    vet_err err;
    while ((c = getopt_long(argc, argv, "o:vhV", opts, NULL)) != -1) {
        switch (c) {
        case OPT_OUT: o.out_dir = optarg; break;
        case OPT_TRAIN: o.out[VET_SPLIT_TRAIN] = optarg; break;
        case OPT_VAL: o.out[VET_SPLIT_VAL] = optarg; break;
        case OPT_TEST: o.out[VET_SPLIT_TEST] = optarg; break;
        case 'o': o.out[VET_PACK_ALL] = optarg; break;
        case OPT_TRAIN_IN: o.split_in[VET_SPLIT_TRAIN] = optarg; break;
        case OPT_VAL_IN: o.split_in[VET_SPLIT_VAL] = optarg; break;
        case OPT_TEST_IN: o.split_in[VET_SPLIT_TEST] = optarg; break;
        case OPT_SPLIT:
            split_spec = optarg;
            split_flag = "--split";
            break;
        case OPT_FOLD:
            if (vet_split_parse_fold(optarg, &o.fold_i, &o.fold_k, &err) != 0) cli_usage_error("%s", err.msg);
            split_flag = "--fold";
            break;
        case OPT_SEED: o.seed = (uint64_t)cli_long("--seed", optarg, 0, LONG_MAX); break;  // the row order too
        case OPT_GROUP_BY:
            o.group_by_note = one_of("--group-by", optarg, "note", "none");
            split_flag = "--group-by";
            break;
        case OPT_STRATIFY:
            o.stratify = one_of("--stratify", optarg, "codes", "none");
            split_flag = "--stratify";
            break;
        case OPT_SEQ_LEN: o.seq_len = cli_int("--seq-len", optarg, SEQ_LEN_MIN, SEQ_LEN_MAX); break;
        case OPT_NO_PACK: o.packed = 0; break;
        case OPT_TRAIN_ON_PROMPT: o.loss_on = VET_LOSS_ALL; break;
        case OPT_TRUNCATE:
            if (vet_pack_parse_trunc(optarg, &o.trunc, &err) != 0 || o.trunc == VET_TRUNC_NONE)
                cli_usage_error("--truncate '%s': expected left or right", optarg);
            break;
        case OPT_SUMMARY: o.summary_path = optarg; break;
        case OPT_VAL_COPIES: o.out[VET_PACK_VAL_COPIES] = optarg; break;
        case 'v': verbose = 1; break;
        case 'h': usage();
        case 'V': cli_version();
        default: cli_usage_error("unknown option");
        }
    }
    // With --fold the test split is the fold and --split gives TRAIN/VAL for the rest (80/10 by
    // default: at --fold I/10, 80/10/10 of the whole).
    if (o.fold_k > 0 && vet_split_parse_train_val(split_spec ? split_spec : "80/10", o.share, &err) != 0)
        cli_usage_error("%s", err.msg);
    if (o.fold_k == 0 && split_spec && vet_split_parse_shares(split_spec, o.share, &err) != 0)
        cli_usage_error("%s", err.msg);
    if (optind + 1 < argc) cli_usage_error("one input at most (got %d)", argc - optind);
    if (optind < argc) o.input = argv[optind];
    if (vet_pack_check(&o, &err) != 0) {
        if (err.kind == VET_E_USAGE) cli_usage_error("%s", err.msg);
        cli_fail_err(&err);
    }
    refuse_unused_split_flag(&o, split_flag);

    vet_pack_result res;
    if (vet_pack_run(&o, &res, &err) != 0) cli_fail_err(&err);
    warn_rejected(&o, &res);
    if (verbose || cli_stderr_is_tty()) print_summary(&o, &res);
    vet_pack_result_free(&res);
    return EXIT_OK;
}
