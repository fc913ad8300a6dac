// coded_csv.h — a predictions stream as a table for people: one CSV row per note, what a
// researcher coding new notes opens in a spreadsheet or joins back to the notes by id
// (vet-dump --csv). The columns, always all of them, in this order:
//   id       the note's id
//   species  its species
//   pred     the predicted labels, ';'-separated (so vet-eval reads the file back as CSV
//            predictions when the notes had gold labels)
//   term     the terms of pred's labels in the codes table, ';'-separated; a label the table
//            lacks has an empty term; empty without a table
//   p        vet-generate --rank's top-1 p (the share of the table's probability its first label
//            holds); empty for notes that were generated, not ranked
//   refer    with a threshold P: "yes" when p < P (the note goes to a person, as vet-eval
//            --refer-below counts it), "no" when p >= P; empty without one
//   gold     the gold labels, ';'-separated; empty for new notes
//   ranked   the ranked list "label=p;label=p;...", most probable first; empty without a ranking
//   text     the text the model wrote
// Numbers are printed with 6 significant digits.
#ifndef VET_CODED_CSV_H
#define VET_CODED_CSV_H

#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "data/labels.h"
#include "eval/predictions.h"

typedef struct {
    const vet_labels *codes;  // the terms; NULL: the term column stays empty
    double refer_below;       // the referral threshold P in [0, 1]; < 0: the refer column stays empty
} vet_coded_csv_opts;

// The header row.
void vet_coded_csv_header(FILE *f);

// One note's row. With a threshold, a note without a ranking is an error (VET_E_INPUT): there is
// no p to compare ("name: record N: ..."). Write errors are left in f's error flag.
int vet_coded_csv_row(FILE *f, const vet_pred *rec, const vet_coded_csv_opts *o, const char *name, vet_err *err);

// Every note of the predictions stream at path ("-": stdin) as a row, in the stream's order;
// *rows counts those written. When *header is nonzero, the header row comes first, once the
// stream has opened as a predictions stream, and *header is cleared (so several files make one
// table, and a file that is not a stream leaves no header behind). The whole stream is verified
// as it is read: a truncated or corrupt one is an error after the rows before the damage.
int vet_coded_csv_write(FILE *f, const char *path, const vet_coded_csv_opts *o, int *header, uint64_t *rows,
                        vet_err *err);

// The n >= 2 streams at paths, whose shards s[i] (vet_shards_headers) are a complete set
// (vet_shards_check), as one table in the input's order: shard k's i-th record is note k + i N,
// so the rows come round-robin from the shards. A shard with fewer or more records than its
// share of the input is an error naming it (after the rows before it). Header and rows as
// vet_coded_csv_write's.
int vet_coded_csv_write_shards(FILE *f, const char *const *paths, const vet_shard *s, int n,
                               const vet_coded_csv_opts *o, int *header, uint64_t *rows, vet_err *err);

// The n files at paths as one table when every one is a shard (a complete set, else an error),
// or when every one is a cross-validation's test fold (a whole set, eval/folds.h, else an error:
// the rows in fold order, each stream holding its fold's notes): 0 written, -1 error. 1, with
// nothing written, when the files are neither or one is stdin: the caller writes them one by one
// (vet_coded_csv_write).
int vet_coded_csv_write_shard_set(FILE *f, const char *const *paths, int n, const vet_coded_csv_opts *o,
                                  int *header, uint64_t *rows, vet_err *err);

#endif
