// split.h — leakage-free train/val/test splits: group samples by their normalized note text,
// optionally stratify by label, and hand whole groups to splits (vet-pack).
//
// Why groups: the DLO notes repeat heavily (444 distinct notes in 1,602 rows); a split by
// sample puts the same note in train and test and measures memory, not skill. Every sample
// of one group lands in the same split.
//
// The assignment (vet_split_assign), step by step:
//   1. Each group gets a stratum: the most common stratum among its samples (ties: the
//      smallest stratum id). Without stratification everything is stratum 0.
//   2. Strata are visited largest first (samples; ties: smaller id). Each split k carries an
//      error term c_k (starts at 0). A stratum of n samples has the ideal count
//      ideal_k = share_k * n + c_k per split, and its quota q_k comes seat by seat: each of
//      the n seats goes to the split furthest below its ideal (largest ideal_k - q_k; ties: the
//      lower split; splits with share 0 never get seats). For positive ideals this is the
//      largest-remainder (Hamilton) rounding.
//   3. The stratum's groups are shuffled (Fisher-Yates, vet_rng seeded with seed) and taken in
//      that order; each goes whole to the split with the largest quota deficit q_k - a_k
//      (a_k: samples given so far; ties: the lower split; share-0 splits excluded).
//   4. c_k = ideal_k - a_k carries the rounding and group lumpiness to the next stratum
//      (error diffusion), so the overall shares stay close even with many tiny strata.
#ifndef VET_SPLIT_H
#define VET_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

enum { VET_SPLIT_TRAIN = 0, VET_SPLIT_VAL = 1, VET_SPLIT_TEST = 2, VET_SPLIT_N = 3 };

// The most bins vet_split_assign_bins deals into, and so the most cross-validation folds.
#define VET_SPLIT_MAX_BINS 100

// "train", "val", "test".
const char *vet_split_name(int k);

// Parses "80/10/10": three non-negative numbers separated by '/', not all zero, normalized
// to sum 1 into share[3].
int vet_split_parse_shares(const char *spec, double share[3], vet_err *err);

// The ASCII part of a note's grouping key: ASCII letters folded to lower case, each run of
// ASCII whitespace (space, \t, \n, \v, \f, \r) turned into one space, leading and trailing
// whitespace removed. Other bytes are kept as they are. out must hold n + 1 bytes; it is
// NUL-terminated. Returns the normalized length.
size_t vet_split_normalize(const char *s, size_t n, char *out);

// The grouping key of a note s[0..n): vet_split_normalize's for ASCII text (byte for byte);
// text with other bytes is first put in NFKC with Unicode case folding and default-ignorable
// code points dropped (utf8proc's tables), and every Unicode space or line separator counts as
// whitespace. So a note typed with a composed "é" and one pasted with "e" + U+0301, "ÉTÉ" and
// "été", a no-break space and a space, are one note. Bytes that are not UTF-8 are compared as
// they are. Fresh malloc'd string; NULL only when out of memory.
char *vet_split_key(const char *s, size_t n);

// The stratification label of a sample: its codes, sorted (strcmp) and de-duplicated, joined
// with ';'. Fresh malloc'd string ("" for no codes); NULL only when out of memory.
char *vet_split_label(char *const *codes, size_t n);

// Numbers equal keys: id_of[i] is the rank of key i's first appearance among the distinct
// keys (0, 1, ...). Returns the number of distinct keys, or -1 (out of memory).
int64_t vet_split_index_keys(char *const *keys, size_t n, int32_t *id_of, vet_err *err);

// Assigns every sample a split (see the algorithm above). group_of[i] in [0, n_groups);
// stratum_of[i] in [0, n_strata), or stratum_of NULL for no stratification. share sums to 1.
// Writes split_of[i] in {VET_SPLIT_TRAIN, VET_SPLIT_VAL, VET_SPLIT_TEST}.
// vet_split_assign_bins(..., VET_SPLIT_N, share, ...).
int vet_split_assign(const int32_t *group_of, int32_t n_groups, const int32_t *stratum_of,
                     int32_t n_strata, size_t n, const double share[3], uint64_t seed,
                     uint8_t *split_of, vet_err *err);

// The same assignment into `bins` bins (1 .. VET_SPLIT_MAX_BINS) with share[bins] summing to 1:
// bin_of[i] in [0, bins). K equal shares deal the groups into K cross-validation folds.
int vet_split_assign_bins(const int32_t *group_of, int32_t n_groups, const int32_t *stratum_of, int32_t n_strata,
                          size_t n, int bins, const double *share, uint64_t seed, uint8_t *bin_of, vet_err *err);

// Parses "--fold I/K": 0 <= I < K, 2 <= K <= VET_SPLIT_MAX_BINS (VET_E_USAGE otherwise).
int vet_split_parse_fold(const char *spec, int *i, int *k, vet_err *err);

// Parses the "TRAIN/VAL" shares --split takes with --fold (the test split is the fold): two
// non-negative numbers, not both zero, normalized into share[0] and share[1]; share[2] = 0.
int vet_split_parse_train_val(const char *spec, double share[3], vet_err *err);

#endif
