// predictions.h — reading what vet-eval scores: predictions (a `predictions` stream from
// vet-generate, a CSV, or JSON lines) and, for the majority baseline, the gold label sets of a
// training stream.
#ifndef VET_PREDICTIONS_H
#define VET_PREDICTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "eval/metrics.h"

enum { VET_PRED_SNIFF, VET_PRED_STREAM, VET_PRED_CSV, VET_PRED_JSONL };

typedef struct {
    char *id, *species;  // species "" when absent; id the record/row number when absent
    int id_numbered;     // 1: the record had no id, and id is its number
    char **gold, **pred;
    size_t ngold, npred;
    char *text;  // "" when absent
    char *group;  // NULL when absent: the key of the records drawn together by the bootstrap
    int64_t tokens;  // -1 when absent
    double ms;  // -1 when absent
    long at;  // where it was read: CSV and JSON lines its line, a stream its record number
    // `ranked` (vet-generate --rank; a stream or JSON lines): the labels, most probable first,
    // each one's p, checked as eval/ranking.h says, and its logp (NaN where the entry has none).
    // nranked 0: the record has no ranking. table_labels: with a ranking, how many labels the
    // table it was drawn from holds, as a stream's header says (`rank.labels`); 0: not said.
    char **ranked;
    double *ranked_p, *ranked_logp;
    size_t nranked;
    int64_t table_labels;
} vet_pred;

typedef struct vet_pred_reader vet_pred_reader;

// path "-" or NULL is stdin. format VET_PRED_SNIFF looks at the first bytes: the zstd magic
// means a stream, '{' JSON lines, anything else CSV. A stream must be of kind "predictions".
// CSV: a header row naming at least `gold` and `pred` (optional `id`, `species`, `text`,
// `tokens`, `ms`, `group`), labels `;`-separated. JSON lines: one object per line, `gold`/`pred`
// arrays of strings or `;`-separated strings, an optional `ranked` (an array of {"label", "p"}
// objects, "logp" optional). A stream's `ranked` is an array of such maps. In both, a null
// `ranked` or `logp` is absent; a `logp` must be a number <= 0. In every format the blanks
// around a `group` are cut, and an empty (or blank) group is none. On failure
// err's kind tells a file that could not be opened or read (VET_E_IO) from one that is not what
// it should be (VET_E_INPUT).
vet_pred_reader *vet_pred_open(const char *path, int format, vet_err *err);
const char *vet_pred_format_name(const vet_pred_reader *r);  // "stream", "csv", "jsonl"
// 1: *rec filled (free with vet_pred_clear), 0: end of input, -1: error ("FILE:LINE: why" with
// err->line set, or "FILE: record N: why"; err's kind as above).
int vet_pred_next(vet_pred_reader *r, vet_pred *rec, vet_err *err);
// Where a prediction was read, as messages put it: "FILE:N" for a line of a CSV or JSON lines
// file, "FILE: record N" for a stream's record (unit "line" or "record"). Written into buf.
const char *vet_pred_where(char *buf, size_t n, const char *file, const char *unit, long at);

void vet_pred_clear(vet_pred *rec);
void vet_pred_close(vet_pred_reader *r);

// What a cross-validation fold's header says (vet-pack --fold I/K, copied by vet-generate;
// docs/formats.md): split `split` of fold i of k folds dealt with seed, holding `notes` of the
// input_notes notes packed.
typedef struct {
    int i, k;
    int64_t seed, notes, input_notes;
    char split[8];  // "train", "val" or "test"
} vet_fold;

// The fold r's header names: 1 with *f filled, 0 when it names none, -1 when its `fold` is
// malformed (VET_E_INPUT).
int vet_pred_fold(const vet_pred_reader *r, vet_fold *f, vet_err *err);

// What a shard's header says (vet-generate --shard K/N, docs/formats.md): shard k of n, cut
// from an input of input_notes notes whose identity is input_digest (16 hex digits; "" in a
// stream of a vet-generate that wrote none); fold: the fold that input was (vet-pack --fold,
// copied into the header), k 0 when it was none. Two shards of one run share their digest and
// fold: two inputs of one size are told apart by them.
typedef struct {
    int k, n;
    int64_t input_notes;
    char input_digest[17];
    vet_fold fold;
} vet_shard;

// The shard r's header names: 1 with *s filled, 0 when it names none (a stream without the key,
// a CSV, JSON lines; n 0), -1 when its `shard` or `fold` is malformed (VET_E_INPUT). In both,
// s->fold is the fold the header names (k 0: none), so one read of a header tells both.
int vet_pred_shard(const vet_pred_reader *r, vet_shard *s, vet_err *err);

// Adds rec to e as one sample: its species and label sets, named by its id, in its group.
int vet_eval_add_pred(vet_eval *e, const vet_pred *rec, vet_err *err);

// Splits "a; b;;c" into trimmed, non-empty malloc'd strings (free with vet_labels_free_list).
int vet_split_labels(const char *s, size_t len, char ***out, size_t *n, vet_err *err);

struct vet_ranks;  // eval/ranking.h

// Every prediction of path (read as above) added to e, its ranking (or its lack of one) to ranks
// (eval/ranking.h; NULL: rankings are not kept), and the format it was read as in
// *format_name ("stream", "csv", "jsonl"). A file with no prediction is an error, and so is an
// id that appears twice: each note must be scored once, and a repeated id means two runs
// concatenated or an id column that is not unique, which would weigh some notes double. So is a
// file where some records have `ranked` and others do not. A shard of a split into more than one
// (eval/shards.h) is refused alone: the set is incomplete.
int vet_eval_read_predictions(vet_eval *e, struct vet_ranks *ranks, const char *path, int format,
                              const char **format_name, vet_err *err);

// The gold label sets of a tokens (`codes`), packed (`codes`, one set per sample of a row) or
// predictions (`gold`) stream, added to e with no prediction: what the majority baseline is
// drawn from. A stream of another kind, or one with no sample, is an error.
int vet_eval_read_gold_sets(vet_eval *e, const char *path, vet_err *err);

#endif
