// pack_summary.h — the summary of a vet-pack job: one msgpack map, written into the header of
// every output stream and, as one JSON object, to --summary FILE.
//
// Keys: samples_in (= samples_packed + samples_rejected + copies_dropped), samples_packed,
// samples_rejected, samples_truncated, rejected_ids, seq_len, note_groups, duplicate_groups,
// samples_in_duplicate_groups, leaked_groups, group_by, copies_in, copies_dropped,
// copies_like_heldout, splits (a map per written slot) and total; each slot's map holds its
// counts plus positions, utilization, pad_positions, pad_utilization and positions_vs_pad.
#ifndef VET_PACK_SUMMARY_H
#define VET_PACK_SUMMARY_H

#include <msgpack.h>

#include "base/atomic_file.h"
#include "base/err.h"
#include "data/pack_rows.h"
#include "data/pack_split.h"

// What the summary is made from.
typedef struct {
    int64_t samples_in;
    int32_t seq_len;
    const char *group_by;                       // "note", "none" or "input"
    const vet_pack_group_stats *groups;
    const vet_pack_copy_stats *copies;
    const int *used;                            // (VET_PACK_SLOTS) the slots written
    const vet_pack_slot_stats *slot;            // (VET_PACK_SLOTS)
    const vet_pack_slot_stats *total;           // the used slots' counts added up
    char *const *rejected_ids;                  // in input order
    size_t n_rejected;
} vet_pack_summary_in;

typedef struct {
    msgpack_sbuffer buf;    // the map, packed
    msgpack_zone zone;      // and unpacked (pointing into buf): obj
    msgpack_object obj;
    int ready;
} vet_pack_summary;

// Builds the map. On failure (out of memory) s holds nothing to free.
int vet_pack_summary_build(const vet_pack_summary_in *in, vet_pack_summary *s, vet_err *err);
void vet_pack_summary_free(vet_pack_summary *s);

// Writes the summary as one line of JSON into a, an opened base/atomic_file output (finished and
// published by the caller, with the streams it describes). -1 with err (VET_E_IO) on a failed write.
int vet_pack_summary_write_json(const vet_pack_summary *s, vet_afile *a, vet_err *err);

#endif
