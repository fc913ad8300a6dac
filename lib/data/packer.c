// packer.c — see packer.h.
#include "data/packer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/input_file.h"
#include "data/pack_summary.h"
#include "io/stream.h"

vet_pack_opts vet_pack_defaults(void) {
    return (vet_pack_opts){
        .share = {0.8, 0.1, 0.1},
        .seed = 1,
        .group_by_note = 1,
        .seq_len = 512,
        .packed = 1,
        .loss_on = VET_LOSS_RESPONSE,
        .trunc = VET_TRUNC_NONE,
    };
}

static int is_presplit(const vet_pack_opts *o) { return o->split_in[0] || o->split_in[1] || o->split_in[2]; }
static int is_stdout(const char *path) { return path && strcmp(path, "-") == 0; }

// ---------------------------------------------------------------------------------------
// Outputs: which slots are written, and where.

typedef struct {
    const char *path[VET_PACK_SLOTS];
    int used[VET_PACK_SLOTS];
    char *dir_path[VET_SPLIT_N];  // owned: DIR/<split>.msgpack.zst for --out DIR
} outputs;

static void outputs_free(outputs *out) {
    for (int k = 0; k < VET_SPLIT_N; k++) free(out->dir_path[k]);
    memset(out, 0, sizeof *out);
}

// The splits' outputs (a file named for a split wins over --out DIR), the val split's copies,
// and the checks on them, in the order a person meets them.
static int split_outputs(const vet_pack_opts *o, outputs *out, vet_err *err) {
    int presplit = is_presplit(o), n_stdout = 0;
    for (int k = 0; k < VET_SPLIT_N; k++) {
        const char *name = vet_split_name(k);
        out->path[k] = o->out[k];
        if (!out->path[k] && o->out_dir) {
            size_t l = strlen(o->out_dir) + 32;
            if (!(out->dir_path[k] = malloc(l))) return vet_err_nomem(err, "out of memory");
            snprintf(out->dir_path[k], l, "%s/%s.msgpack.zst", o->out_dir, name);
            out->path[k] = out->dir_path[k];
        }
        // With --fold the test split is the fold: always there, whatever share[2] says.
        int needed = presplit ? o->split_in[k] != NULL : o->share[k] > 0 || (k == VET_SPLIT_TEST && o->fold_k > 0);
        if (needed && !out->path[k])
            return vet_err_kindf(err, VET_E_USAGE, "the %s split has no output: name it with --%s FILE or --out DIR",
                                 name, name);
        if (presplit && out->path[k] && !o->split_in[k] && !o->out_dir)
            return vet_err_kindf(err, VET_E_USAGE, "--%s given without --%s-in", name, name);
        out->used[k] = out->path[k] != NULL;
        n_stdout += is_stdout(out->path[k]);
    }
    if (!out->used[0] && !out->used[1] && !out->used[2])
        return vet_err_kindf(err, VET_E_USAGE, "no output: use --out DIR, --train/--val/--test FILE or -o FILE");
    if (o->out[VET_PACK_VAL_COPIES]) {
        if (!out->used[VET_SPLIT_VAL])
            return vet_err_kindf(err, VET_E_USAGE,
                                 "--val-copies without a val split (its copies come from the val split's notes)");
        out->path[VET_PACK_VAL_COPIES] = o->out[VET_PACK_VAL_COPIES];
        out->used[VET_PACK_VAL_COPIES] = 1;
        n_stdout += is_stdout(o->out[VET_PACK_VAL_COPIES]);
    }
    if (n_stdout > 1) return vet_err_kindf(err, VET_E_USAGE, "only one split can go to stdout");
    return 0;
}

// No output may name an input (the stream, or a split given with --*-in): it would be written
// over what is being read. Checked before anything is opened for writing.
static int refuse_overwrite(const vet_pack_opts *o, const outputs *out, vet_err *err) {
    static const char *const flag[VET_PACK_SLOTS] = {"--train", "--val", "--test", "-o", "--val-copies"};
    const char *in[VET_SPLIT_N + 1] = {o->input ? o->input : "-", o->split_in[0], o->split_in[1], o->split_in[2]};
    int n_in = is_presplit(o) ? VET_SPLIT_N + 1 : 1;
    for (int i = is_presplit(o) ? 1 : 0; i < n_in; i++) {
        if (!in[i]) continue;
        for (int k = 0; k < VET_PACK_SLOTS; k++)
            if (out->used[k] && vet_refuse_overwrite(k < VET_SPLIT_N && out->dir_path[k] ? "--out" : flag[k],
                                                     out->path[k], in[i], err))
                return -1;
        if (o->summary_path && vet_refuse_overwrite("--summary", o->summary_path, in[i], err)) return -1;
    }
    return 0;
}

// Already split inputs are splits of one set: one file given as two of them (hard links and other
// spellings too) would put every note of the one split into the other, counted only as
// leaked_groups. (stdin is no file to compare: vet_refuse_stdin_twice refuses it twice.)
static int refuse_split_twice(const vet_pack_opts *o, vet_err *err) {
    for (int a = 0; a < VET_SPLIT_N; a++)
        for (int b = a + 1; b < VET_SPLIT_N; b++) {
            const char *x = o->split_in[a], *y = o->split_in[b];
            if (x && y && strcmp(x, "-") != 0 && strcmp(y, "-") != 0 && vet_same_file(y, x))
                return vet_err_kindf(err, VET_E_USAGE, "--%s-in %s is the --%s-in file: every note of the one split "
                                     "would be in the other (give each split its own file)", vet_split_name(b), y,
                                     vet_split_name(a));
        }
    return 0;
}

static int resolve_outputs(const vet_pack_opts *o, outputs *out, vet_err *err) {
    memset(out, 0, sizeof *out);
    if (is_presplit(o) && o->input)
        return vet_err_kindf(err, VET_E_USAGE, "give either one TOKENS input or --train-in/--val-in/--test-in, not both");
    const vet_named_input ins[] = {{"--train-in", o->split_in[VET_SPLIT_TRAIN]}, {"--val-in", o->split_in[VET_SPLIT_VAL]},
                                   {"--test-in", o->split_in[VET_SPLIT_TEST]}};
    if (vet_refuse_stdin_twice(ins, 3, err) || refuse_split_twice(o, err)) return -1;
    if (o->fold_k > 0 && (o->out[VET_PACK_ALL] || is_presplit(o)))
        return vet_err_kindf(err, VET_E_USAGE, "--fold makes the split (fold I is the test split): not with %s",
                             o->out[VET_PACK_ALL] ? "-o (one output, no split)" : "--train-in/--val-in/--test-in");
    if (o->out[VET_PACK_ALL]) {
        if (o->out_dir || o->out[0] || o->out[1] || o->out[2] || is_presplit(o) || o->out[VET_PACK_VAL_COPIES])
            return vet_err_kindf(err, VET_E_USAGE, "-o/--output writes everything to one stream: no "
                                 "--out/--train/--val/--test/--*-in/--val-copies with it");
        out->path[VET_PACK_ALL] = o->out[VET_PACK_ALL];
        out->used[VET_PACK_ALL] = 1;
    } else if (split_outputs(o, out, err) != 0) {
        return -1;
    }
    if (is_stdout(o->summary_path))
        for (int k = 0; k < VET_PACK_SLOTS; k++)
            if (is_stdout(out->path[k]))
                return vet_err_kindf(err, VET_E_USAGE,
                                     "--summary - and a stream on stdout would mix: write the summary to a file");
    return refuse_overwrite(o, out, err);
}

int vet_pack_check(const vet_pack_opts *o, vet_err *err) {
    outputs out;
    int rc = resolve_outputs(o, &out, err);
    outputs_free(&out);
    return rc;
}

// ---------------------------------------------------------------------------------------
// The job

typedef struct {
    outputs out;
    vet_pack_input in[VET_SPLIT_N];   // the input streams read: one, or one per given split
    int n_in;
    int in_of_slot[VET_PACK_SLOTS];   // the input whose tokenizer and template a slot's header copies
    vet_pack_samples samples;
    vet_pack_slot_plan plan[VET_PACK_SLOTS];
    vet_pack_summary summary;
    vet_pack_fold fold;               // with --fold: what every header's `fold` says
} pack_job;

static void job_free(pack_job *J) {
    outputs_free(&J->out);
    for (int i = 0; i < J->n_in; i++) vet_pack_input_free(&J->in[i]);
    vet_pack_samples_free(&J->samples);
    for (int k = 0; k < VET_PACK_SLOTS; k++) vet_pack_slot_plan_free(&J->plan[k]);
    vet_pack_summary_free(&J->summary);
}

static vet_pack_row_opts row_opts(const vet_pack_opts *o, const pack_job *J) {
    return (vet_pack_row_opts){.seq_len = o->seq_len, .packed = o->packed, .loss_on = o->loss_on, .seed = o->seed,
                               .fold = o->fold_k > 0 ? &J->fold : NULL};
}

static int make_out_dir(const vet_pack_opts *o, vet_err *err) {
    if (o->out_dir && mkdir(o->out_dir, 0777) != 0 && errno != EEXIST)
        return vet_err_io(err, "%s: cannot create directory: %s", o->out_dir, strerror(errno));
    return 0;
}

static int kinds_differ(const vet_pack_input *a, const vet_pack_input *b) {
    return strcmp(a->tokenizer_kind, b->tokenizer_kind) != 0;
}

// Every input, whole, before anything is written. Split inputs must share one tokenizer.
static int read_inputs(const vet_pack_opts *o, pack_job *J, vet_err *err) {
    vet_pack_fit_opts fit = {.seq_len = o->seq_len, .trunc = o->trunc};
    if (!is_presplit(o)) {
        J->n_in = 1;
        int slot = o->out[VET_PACK_ALL] ? VET_PACK_ALL : VET_SPLIT_TRAIN;  // a split made later moves it
        return vet_pack_read(o->input ? o->input : "-", slot, &fit, &J->in[0], &J->samples, err);
    }
    for (int k = 0; k < VET_SPLIT_N; k++) {
        if (!o->split_in[k]) continue;
        const vet_pack_input *a = &J->in[0], *b = &J->in[J->n_in];
        J->in_of_slot[k] = J->n_in++;
        if (vet_pack_read(o->split_in[k], k, &fit, &J->in[J->in_of_slot[k]], &J->samples, err) != 0) return -1;
        if (strcmp(a->sha256, b->sha256) != 0 || strcmp(a->tokenizer_kind, b->tokenizer_kind) != 0)
            return vet_errf(err, "tokenizer mismatch: %s has tokenizer sha256 %s, %s has %s%s%s%s%s%s (tokenize every "
                            "split with the same --tokenizer)", a->path, a->sha256, b->path, b->sha256,
                            kinds_differ(a, b) ? " (a " : "", kinds_differ(a, b) ? a->tokenizer_kind : "",
                            kinds_differ(a, b) ? " tokenizer and a " : "", kinds_differ(a, b) ? b->tokenizer_kind : "",
                            kinds_differ(a, b) ? " one)" : "");
    }
    J->in_of_slot[VET_PACK_VAL_COPIES] = J->in_of_slot[VET_SPLIT_VAL];
    return 0;
}

static int split_samples(const vet_pack_opts *o, pack_job *J, vet_pack_result *res, vet_err *err) {
    vet_pack_split_opts so = {
        .assign = !is_presplit(o) && !o->out[VET_PACK_ALL],
        .group_by_note = o->group_by_note,
        .stratify = o->stratify,
        .share = {o->share[0], o->share[1], o->share[2]},
        .seed = o->seed,
        .fold_i = o->fold_i,
        .fold_k = o->fold_k,
        .divert_val_copies = o->out[VET_PACK_VAL_COPIES] != NULL,
        .path = J->in[0].path,
    };
    return vet_pack_split(&J->samples, &so, &res->groups, &res->copies, err);
}

static int plan_slots(const vet_pack_opts *o, pack_job *J, vet_pack_result *res, vet_err *err) {
    vet_pack_row_opts ro = row_opts(o, J);
    for (int k = 0; k < VET_PACK_SLOTS; k++) {
        if (!J->out.used[k]) continue;
        if (vet_pack_plan_slot(&J->samples, k, &ro, &J->plan[k], &res->slot[k], err) != 0) return -1;
        vet_pack_stats_add(&res->total, &res->slot[k]);
    }
    return 0;
}

// With --fold: the notes (originals, not rejected) each slot packs, and all of them. Every fold of
// one input packs the same notes in all (a sample's fit does not depend on its split), so the
// test splits' counts of the K folds add up to input_notes.
static void count_fold_notes(const vet_pack_opts *o, pack_job *J) {
    J->fold = (vet_pack_fold){.i = o->fold_i, .k = o->fold_k, .seed = o->seed};
    for (size_t i = 0; i < J->samples.n; i++) {
        const vet_pack_sample *x = &J->samples.s[i];
        if (x->copy_of || x->rejected) continue;
        J->fold.notes[x->split]++;
        J->fold.input_notes++;
    }
}

// With --fold, a test split without a note: the input's note groups are fewer than K (or every
// note dealt to fold I was rejected). A model would be trained for a fold that tests nothing,
// and vet-eval's mean and spread over the folds would count that fold's 0 of 0 as one fold.
static int refuse_empty_fold(const vet_pack_opts *o, const pack_job *J, vet_err *err) {
    if (o->fold_k == 0 || J->fold.notes[VET_SPLIT_TEST] > 0) return 0;
    return vet_errf(err, "%s: fold %d/%d's test split holds no note: the input's %lld notes (grouped as "
                    "--group-by says) fill fewer than %d folds (give fewer folds)", J->in[0].path, o->fold_i,
                    o->fold_k, (long long)J->fold.input_notes, o->fold_k);
}

// The ids of the rejected samples that were not dropped, in input order: the very samples that
// plan_slots counted as rejected, so total.rejected of them.
static int collect_rejected(const pack_job *J, vet_pack_result *res, vet_err *err) {
    const vet_pack_samples *S = &J->samples;
    res->rejected_ids = calloc((size_t)res->total.rejected + 1, sizeof *res->rejected_ids);
    if (!res->rejected_ids) return vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < S->n; i++) {
        const vet_pack_sample *x = &S->s[i];
        if (!x->rejected || x->dropped || !J->out.used[x->split]) continue;
        if (!(res->rejected_ids[res->n_rejected++] = strdup(x->id))) return vet_err_nomem(err, "out of memory");
    }
    return 0;
}

// Samples were read, but none fits --seq-len: the outputs would be streams without a row, written
// with exit 0, and a training run on them would learn nothing (vet-tokenize likewise refuses an
// input whose every row is rejected). Refused before anything is made, the --out folder included.
// The count is over every input read (--train-in/--val-in/--test-in: up to three), so the message
// names them all: "a.tok, b.tok and c.tok".
static int refuse_nothing_packed(const vet_pack_opts *o, const pack_job *J, const vet_pack_result *res,
                                 vet_err *err) {
    if (res->total.packed > 0 || res->total.rejected == 0) return 0;
    char names[3 * 1024] = "";
    for (int i = 0; i < J->n_in; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                 i == 0 ? "" : i == J->n_in - 1 ? " and " : ", ", J->in[i].path);
    return vet_errf(err, "%s: all %lld samples are longer than --seq-len %d: nothing to pack (%s)", names,
                    (long long)res->total.rejected, (int)o->seq_len,
                    o->trunc == VET_TRUNC_NONE ? "a larger --seq-len, or --truncate left|right to cut the prompts"
                                               : "their responses alone do not fit: a larger --seq-len");
}

// Some samples were packed, but none of one split's: that split would be written as a stream
// without a row, with exit 0, and found out only by vet-train (which refuses an empty split) or
// not at all. Refused as a whole input is, naming the split and where its samples came from.
static int refuse_split_emptied(const vet_pack_opts *o, const pack_job *J, const vet_pack_result *res,
                                vet_err *err) {
    for (int k = 0; k < VET_SPLIT_N; k++) {
        const vet_pack_slot_stats *st = &res->slot[k];
        if (!J->out.used[k] || st->samples == 0 || st->packed > 0) continue;
        const char *from = is_presplit(o) ? o->split_in[k] : J->in[0].path;
        return vet_errf(err, "%s: all %lld samples of the %s split are longer than --seq-len %d: it would be written "
                        "without a row (%s)", from, (long long)st->samples, vet_split_name(k), (int)o->seq_len,
                        o->trunc == VET_TRUNC_NONE ? "a larger --seq-len, or --truncate left|right to cut the prompts"
                                                   : "their responses alone do not fit: a larger --seq-len");
    }
    return 0;
}

static int build_summary(const vet_pack_opts *o, pack_job *J, const vet_pack_result *res, vet_err *err) {
    const char *group_by = is_presplit(o) ? "input" : o->out[VET_PACK_ALL] ? "none" : o->group_by_note ? "note" : "none";
    vet_pack_summary_in in = {
        .samples_in = res->samples_in, .seq_len = o->seq_len, .group_by = group_by,
        .groups = &res->groups, .copies = &res->copies, .used = J->out.used, .slot = res->slot,
        .total = &res->total, .rejected_ids = res->rejected_ids, .n_rejected = res->n_rejected,
    };
    return vet_pack_summary_build(&in, &J->summary, err);
}

// Writes every used slot and the summary file; renames them into place only when all are
// complete (each finished: whole and synced under its temporary name), so a failure, the
// summary's included, leaves no file under its final name. Whatever fails here is an output
// failure.
static int write_outputs(const vet_pack_opts *o, pack_job *J, vet_err *err) {
    vet_pack_row_opts ro = row_opts(o, J);
    vet_writer *w[VET_PACK_SLOTS] = {0};
    int done[VET_PACK_SLOTS] = {0};  // finished: only a publish (or an abort) is left
    vet_afile summary = {0};
    int rc = 0;
    for (int k = 0; k < VET_PACK_SLOTS && rc == 0; k++) {
        if (!J->out.used[k]) continue;
        if (!(w[k] = vet_writer_open(J->out.path[k], "packed", "vet-pack", err)) ||
            vet_pack_write_slot(w[k], &J->in[J->in_of_slot[k]], k, &ro, &J->summary.obj, &J->samples, &J->plan[k],
                                err) != 0)
            rc = -1;
        else if (vet_writer_finish(w[k], err) != 0)
            w[k] = NULL, rc = -1;  // freed, its temporary gone
        else
            done[k] = 1;
    }
    if (rc == 0 && o->summary_path &&
        (vet_afile_open(&summary, o->summary_path, err) != 0 ||
         vet_pack_summary_write_json(&J->summary, &summary, err) != 0 || vet_afile_finish(&summary, err) != 0)) {
        vet_err_prefix(err, "cannot write the summary");
        rc = -1;
    }
    for (int k = 0; k < VET_PACK_SLOTS; k++) {
        if (!w[k]) continue;
        if (rc == 0 && done[k]) rc = vet_writer_publish(w[k], err);
        else vet_writer_abort(w[k]);
    }
    // The summary comes last: it describes streams that exist.
    if (summary.f || summary.finished) {
        if (rc == 0) rc = vet_afile_publish(&summary, err);
        else vet_afile_abort(&summary);
    }
    if (rc != 0 && err->kind != VET_E_NOMEM) err->kind = VET_E_IO;
    return rc;
}

int vet_pack_run(const vet_pack_opts *o, vet_pack_result *res, vet_err *err) {
    memset(res, 0, sizeof *res);
    pack_job J = {0};
    int rc = -1;
    if (resolve_outputs(o, &J.out, err) != 0 || read_inputs(o, &J, err) != 0) goto done;
    res->samples_in = (int64_t)J.samples.n;
    memcpy(res->used, J.out.used, sizeof res->used);
    if (split_samples(o, &J, res, err) != 0 || plan_slots(o, &J, res, err) != 0 ||
        refuse_nothing_packed(o, &J, res, err) != 0 || refuse_split_emptied(o, &J, res, err) != 0 ||
        collect_rejected(&J, res, err) != 0 ||
        build_summary(o, &J, res, err) != 0)
        goto done;
    count_fold_notes(o, &J);
    if (refuse_empty_fold(o, &J, err) != 0) goto done;
    // The output directory is made only once the input proved whole and packs: a refused input
    // leaves nothing.
    if (make_out_dir(o, err) != 0 || write_outputs(o, &J, err) != 0) goto done;
    rc = 0;
done:
    job_free(&J);
    if (rc != 0) vet_pack_result_free(res);
    return rc;
}

void vet_pack_result_free(vet_pack_result *res) {
    for (size_t i = 0; i < res->n_rejected; i++) free(res->rejected_ids[i]);
    free(res->rejected_ids);
    memset(res, 0, sizeof *res);
}
