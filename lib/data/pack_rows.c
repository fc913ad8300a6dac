// pack_rows.c — see pack_rows.h.
#include "data/pack_rows.h"

#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "io/mp.h"

void vet_pack_stats_add(vet_pack_slot_stats *a, const vet_pack_slot_stats *b) {
    a->samples += b->samples;
    a->rejected += b->rejected;
    a->truncated += b->truncated;
    a->packed += b->packed;
    a->rows += b->rows;
    a->tokens += b->tokens;
    a->loss_tokens += b->loss_tokens;
}

void vet_pack_slot_plan_free(vet_pack_slot_plan *p) {
    free(p->idx);
    free(p->order);
    free(p->begin);
    free(p->perm);
    memset(p, 0, sizeof *p);
}

// The slot's samples: counted, and the packable ones (not rejected) listed in p->idx.
static int select_samples(const vet_pack_samples *S, int slot, vet_pack_slot_plan *p, vet_pack_slot_stats *st,
                          vet_err *err) {
    p->idx = malloc((S->n + 1) * sizeof *p->idx);
    if (!p->idx) return vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < S->n; i++) {
        const vet_pack_sample *x = &S->s[i];
        if (x->split != slot || x->dropped) continue;
        st->samples++;
        if (x->rejected) {
            st->rejected++;
            continue;
        }
        st->truncated += x->truncated;
        p->idx[p->n++] = (int32_t)i;
    }
    return 0;
}

// Rows from the samples' lengths: packed tight (vet_pack_tight) or one sample per row; then
// listed row by row, and a seeded order to write them in.
static int make_rows(const vet_pack_samples *S, int slot, const vet_pack_row_opts *ro, vet_pack_slot_plan *p,
                     vet_err *err) {
    int32_t *lens = malloc((p->n + 1) * sizeof *lens), *row_of = malloc((p->n + 1) * sizeof *row_of);
    p->order = malloc((p->n + 1) * sizeof *p->order);
    p->begin = malloc((p->n + 2) * sizeof *p->begin);
    p->perm = malloc((p->n + 1) * sizeof *p->perm);
    int rc = -1;
    if (!lens || !row_of || !p->order || !p->begin || !p->perm) {
        vet_err_nomem(err, "out of memory");
        goto done;
    }
    for (size_t j = 0; j < p->n; j++) lens[j] = S->s[p->idx[j]].n;
    if (ro->packed) {
        if (vet_pack_tight(lens, p->n, ro->seq_len, row_of, &p->n_rows, err) != 0) goto done;
    } else {
        for (size_t j = 0; j < p->n; j++) row_of[j] = (int32_t)j;
        p->n_rows = p->n;
    }
    if (vet_pack_rows(row_of, p->n, p->n_rows, p->order, p->begin, err) != 0) goto done;
    vet_pack_shuffle(p->perm, p->n_rows, vet_rng_hash(ro->seed, 1000 + (uint64_t)slot));
    rc = 0;
done:
    free(lens);
    free(row_of);
    return rc;
}

// Tokens, and tokens that carry loss, of the planned samples.
static int count_tokens(const vet_pack_samples *S, const vet_pack_row_opts *ro, const vet_pack_slot_plan *p,
                        vet_pack_slot_stats *st, vet_err *err) {
    int32_t *targets = malloc(((size_t)ro->seq_len + 1) * sizeof *targets);
    if (!targets) return vet_err_nomem(err, "out of memory");
    for (size_t j = 0; j < p->n; j++) {
        const vet_pack_sample *x = &S->s[p->idx[j]];
        st->tokens += x->n;
        vet_pack_targets(x->tokens, x->n, x->prompt_len, ro->loss_on, targets);
        for (int32_t i = 0; i < x->n; i++) st->loss_tokens += targets[i] >= 0;
    }
    free(targets);
    return 0;
}

int vet_pack_plan_slot(const vet_pack_samples *S, int slot, const vet_pack_row_opts *ro, vet_pack_slot_plan *p,
                       vet_pack_slot_stats *st, vet_err *err) {
    memset(p, 0, sizeof *p);
    memset(st, 0, sizeof *st);
    if (select_samples(S, slot, p, st, err) != 0 || make_rows(S, slot, ro, p, err) != 0 ||
        count_tokens(S, ro, p, st, err) != 0) {
        vet_pack_slot_plan_free(p);
        return -1;
    }
    st->packed = (int64_t)p->n;
    st->rows = (int64_t)p->n_rows;
    return 0;
}

static int write_header(vet_writer *w, const vet_pack_input *in, int slot, const vet_pack_row_opts *ro,
                        const msgpack_object *summary, vet_err *err) {
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, ro->fold ? 9 : 8);
    mp_key(pk, "tokenizer");
    msgpack_pack_object(pk, in->tokenizer);
    mp_key(pk, "template");
    msgpack_pack_object(pk, in->template_);
    mp_kv_str(pk, "split", vet_pack_slot_name(slot));
    mp_kv_int(pk, "seq_len", ro->seq_len);
    mp_kv_bool(pk, "packed", ro->packed);
    mp_kv_str(pk, "loss_on", ro->loss_on == VET_LOSS_ALL ? "all" : "response");
    mp_kv_int(pk, "seed", (int64_t)ro->seed);
    mp_key(pk, "summary");
    msgpack_pack_object(pk, *summary);
    if (ro->fold) {  // copied by vet-generate into its predictions; vet-eval pools the folds' test splits
        mp_key(pk, "fold");
        msgpack_pack_map(pk, 6);
        mp_kv_int(pk, "i", ro->fold->i);
        mp_kv_int(pk, "k", ro->fold->k);
        mp_kv_int(pk, "seed", (int64_t)ro->fold->seed);
        mp_kv_str(pk, "split", vet_pack_slot_name(slot));
        mp_kv_int(pk, "notes", ro->fold->notes[slot]);
        mp_kv_int(pk, "input_notes", ro->fold->input_notes);
    }
    return vet_writer_header_end(w, err);
}

// Writes one row: its k samples back to back (tok, tgt: scratch of seq_len), with per-sample
// columns (starts, ids, species, codes, prompt_lens, and copy_of in a row that holds a
// species-swapped copy: the original's id, nil for a note, so that a reader counting notes, such
// as vet-eval --baseline-from, can leave the copies out).
static int write_row(vet_writer *w, const vet_pack_samples *S, const vet_pack_slot_plan *p, size_t r,
                     vet_loss_on loss_on, int32_t *tok, int32_t *tgt, vet_err *err) {
    const int32_t *in_row = p->order + p->begin[r];
    size_t k = (size_t)(p->begin[r + 1] - p->begin[r]), len = 0;
    int32_t *starts = malloc((k + 1) * sizeof *starts), *plens = malloc((k + 1) * sizeof *plens);
    char **ids = malloc((k + 1) * sizeof *ids), **species = malloc((k + 1) * sizeof *species);
    if (!starts || !plens || !ids || !species) {
        free(starts), free(plens), free(ids), free(species);
        return vet_err_nomem(err, "out of memory");
    }
    int copies = 0;
    for (size_t j = 0; j < k; j++) {
        const vet_pack_sample *x = &S->s[p->idx[in_row[j]]];
        copies |= x->copy_of != NULL;
        starts[j] = (int32_t)len;
        plens[j] = x->prompt_len;
        ids[j] = x->id;
        species[j] = x->species;
        memcpy(tok + len, x->tokens, (size_t)x->n * sizeof *tok);
        vet_pack_targets(x->tokens, x->n, x->prompt_len, loss_on, tgt + len);
        len += (size_t)x->n;
    }
    msgpack_packer *pk = vet_writer_packer(w);
    msgpack_pack_map(pk, copies ? 8 : 7);
    mp_kv_i32_array(pk, "tokens", tok, len);
    mp_kv_i32_array(pk, "targets", tgt, len);
    mp_kv_i32_array(pk, "starts", starts, k);
    mp_kv_str_array(pk, "ids", ids, k);
    mp_kv_str_array(pk, "species", species, k);
    mp_key(pk, "codes");
    msgpack_pack_array(pk, k);
    for (size_t j = 0; j < k; j++) {
        const vet_pack_sample *x = &S->s[p->idx[in_row[j]]];
        msgpack_pack_array(pk, x->n_codes);
        for (size_t c = 0; c < x->n_codes; c++) mp_str(pk, x->codes[c]);
    }
    mp_kv_i32_array(pk, "prompt_lens", plens, k);
    if (copies) {
        mp_key(pk, "copy_of");
        msgpack_pack_array(pk, k);
        for (size_t j = 0; j < k; j++) {
            const char *of = S->s[p->idx[in_row[j]]].copy_of;
            if (of) mp_str(pk, of);
            else msgpack_pack_nil(pk);
        }
    }
    free(starts), free(plens), free(ids), free(species);
    return vet_writer_record_end(w, err);
}

int vet_pack_write_slot(vet_writer *w, const vet_pack_input *in, int slot, const vet_pack_row_opts *ro,
                        const msgpack_object *summary, const vet_pack_samples *S, const vet_pack_slot_plan *p,
                        vet_err *err) {
    if (write_header(w, in, slot, ro, summary, err) != 0) return -1;
    int32_t *tok = malloc((size_t)ro->seq_len * sizeof *tok), *tgt = malloc((size_t)ro->seq_len * sizeof *tgt);
    int rc = tok && tgt ? 0 : vet_err_nomem(err, "out of memory");
    for (size_t r = 0; r < p->n_rows && rc == 0; r++)
        rc = write_row(w, S, p, (size_t)p->perm[r], ro->loss_on, tok, tgt, err);
    free(tok);
    free(tgt);
    return rc;
}
