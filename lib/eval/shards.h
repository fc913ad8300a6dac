// shards.h — the shards of one vet-generate run (`--shard K/N`: notes K, K+N, K+2N, ... of the
// input, round-robin), merged back into the one set of predictions the unsharded run would
// have written, in the input's order, so that every metric (and every bootstrap resample) comes
// out the same.
//
// A set is complete when its streams are shards 0/N .. N-1/N, each once, all of the same N, the
// same input note count, fold and input digest (their headers', docs/formats.md; a set where no
// shard has a digest, from a vet-generate before it, is taken as before, one where only some do
// is refused), and each holds the records its shard of that input has. Anything else is refused (VET_E_INPUT) naming the shard and the file:
//   "FILE: shard 2/3 is missing", "B: shard 1/3 appears twice (A and B)", a mismatched N or note
//   count, a stream that is no shard among shards.
#ifndef VET_SHARDS_H
#define VET_SHARDS_H

#include <stdint.h>

#include "base/err.h"
#include "eval/metrics.h"
#include "eval/predictions.h"

// The shard and the fold each of the n predictions files at paths names into s[i]
// (vet_pred_shard: n 0 when it names no shard, fold.k 0 when no fold): each header read once, for
// telling a set of shards from one of folds and for checking it; *sharded and *plain: the first
// that names a shard and the first that does not (-1: none). None of the paths may be stdin
// (VET_E_USAGE: each is read again for its records).
int vet_shards_headers(const char *const *paths, int n, int format, vet_shard *s, int *sharded, int *plain,
                       vet_err *err);

// Checks that s[0..n) (the shards of paths[0..n), every one sharded) are a complete set. 0 or -1.
int vet_shards_check(const vet_shard *s, const char *const *paths, int n, vet_err *err);

// How many records shard s.k of an input of s.input_notes notes split s.n ways holds.
int64_t vet_shard_size(const vet_shard *s);
// 0 when a stream of shard s (at path) holds the records it should, else -1 with err.
int vet_shard_check_count(const vet_shard *s, const char *path, uint64_t records, vet_err *err);

// The predictions of the n >= 2 streams at paths, whose headers s[i] (vet_shards_headers) must
// make a complete set of shards (checked before any record is read), added to e in the input's
// order, and their rankings to ranks (NULL: not kept); *format_name "stream". Ids must be unique
// across the set, and either every record or none has `ranked` (as in vet_eval_read_predictions).
int vet_eval_read_shards(vet_eval *e, struct vet_ranks *ranks, const char *const *paths, const vet_shard *s, int n,
                         int format, const char **format_name, vet_err *err);

#endif
