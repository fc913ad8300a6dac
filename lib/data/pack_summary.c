// pack_summary.c — see pack_summary.h.
#include "data/pack_summary.h"

#include <errno.h>
#include <string.h>

#include "base/atomic_file.h"
#include "io/mp.h"

// One slot's map: its counts, and how its rows use their positions compared with padding every
// sample to seq_len.
static void pack_stats(msgpack_packer *pk, const vet_pack_slot_stats *st, int32_t seq_len) {
    double positions = (double)st->rows * seq_len, pad_positions = (double)st->packed * seq_len;
    msgpack_pack_map(pk, 12);
    mp_kv_int(pk, "samples", st->samples);
    mp_kv_int(pk, "rejected", st->rejected);
    mp_kv_int(pk, "truncated", st->truncated);
    mp_kv_int(pk, "packed", st->packed);
    mp_kv_int(pk, "rows", st->rows);
    mp_kv_int(pk, "tokens", st->tokens);
    mp_kv_int(pk, "loss_tokens", st->loss_tokens);
    mp_kv_int(pk, "positions", (int64_t)positions);
    mp_kv_double(pk, "utilization", positions > 0 ? (double)st->tokens / positions : 0);
    mp_kv_int(pk, "pad_positions", (int64_t)pad_positions);
    mp_kv_double(pk, "pad_utilization", pad_positions > 0 ? (double)st->tokens / pad_positions : 0);
    mp_kv_double(pk, "positions_vs_pad", pad_positions > 0 ? positions / pad_positions : 0);
}

static void pack_summary(msgpack_packer *pk, const vet_pack_summary_in *in) {
    msgpack_pack_map(pk, 16);
    mp_kv_int(pk, "samples_in", in->samples_in);
    mp_kv_int(pk, "samples_packed", in->total->packed);
    mp_kv_int(pk, "samples_rejected", in->total->rejected);
    mp_kv_int(pk, "samples_truncated", in->total->truncated);
    mp_kv_str_array(pk, "rejected_ids", in->rejected_ids, in->n_rejected);
    mp_kv_int(pk, "seq_len", in->seq_len);
    mp_kv_int(pk, "note_groups", in->groups->groups);
    mp_kv_int(pk, "duplicate_groups", in->groups->dup_groups);
    mp_kv_int(pk, "samples_in_duplicate_groups", in->groups->dup_samples);
    mp_kv_int(pk, "leaked_groups", in->groups->leaked_groups);
    mp_kv_str(pk, "group_by", in->group_by);
    mp_kv_int(pk, "copies_in", in->copies->in);
    mp_kv_int(pk, "copies_dropped", in->copies->dropped);
    mp_kv_int(pk, "copies_like_heldout", in->copies->like_heldout);
    size_t n_used = 0;
    for (int k = 0; k < VET_PACK_SLOTS; k++) n_used += in->used[k] != 0;
    mp_key(pk, "splits");
    msgpack_pack_map(pk, n_used);
    for (int k = 0; k < VET_PACK_SLOTS; k++) {
        if (!in->used[k]) continue;
        mp_key(pk, vet_pack_slot_name(k));
        pack_stats(pk, &in->slot[k], in->seq_len);
    }
    mp_key(pk, "total");
    pack_stats(pk, in->total, in->seq_len);
}

int vet_pack_summary_build(const vet_pack_summary_in *in, vet_pack_summary *s, vet_err *err) {
    memset(s, 0, sizeof *s);
    msgpack_sbuffer_init(&s->buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &s->buf, msgpack_sbuffer_write);
    pack_summary(&pk, in);
    // Unpacked once, so that every header and the JSON copy the same object.
    msgpack_zone_init(&s->zone, 4096);
    s->ready = 1;
    size_t off = 0;
    if (msgpack_unpack(s->buf.data, s->buf.size, &off, &s->zone, &s->obj) != MSGPACK_UNPACK_SUCCESS) {
        vet_pack_summary_free(s);
        return vet_err_nomem(err, "summary: msgpack round trip failed (out of memory)");
    }
    return 0;
}

void vet_pack_summary_free(vet_pack_summary *s) {
    if (s->ready) msgpack_zone_destroy(&s->zone);
    msgpack_sbuffer_destroy(&s->buf);
    memset(s, 0, sizeof *s);
}

int vet_pack_summary_write_json(const vet_pack_summary *s, vet_afile *a, vet_err *err) {
    if (mp_print_json(a->f, &s->obj) != 0 || fputc('\n', a->f) == EOF)
        return vet_err_io(err, "%s: write failed: %s", a->shown, strerror(errno));
    return 0;
}
