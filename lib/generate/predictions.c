// predictions.c — the `predictions` stream (see predictions.h).
#include "generate/predictions.h"

#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "generate/constrain.h"
#include "io/mp.h"

void vet_prediction_free(vet_prediction *p) {
    free(p->id), free(p->species), free(p->text), free(p->generated);
    mp_free_strs(p->gold, p->n_gold);
    vet_labels_free_list(p->pred, p->n_pred);
    vet_labels_free_list(p->ranked, (size_t)p->n_ranked);
    free(p->ranked_p), free(p->ranked_logp);
    memset(p, 0, sizeof *p);
}

// A path, or nil.
static void pack_path_or_nil(msgpack_packer *pk, const char *key, const char *path) {
    if (path) {
        mp_kv_path(pk, key, path);
        return;
    }
    mp_key(pk, key);
    msgpack_pack_nil(pk);
}

// The decoding settings: enough to decode the same notes the same way again.
static void pack_decoding(msgpack_packer *pk, const vet_predictions_header *h) {
    mp_key(pk, "decoding");
    msgpack_pack_map(pk, 8);
    mp_kv_str(pk, "mode", h->rank_k > 0 ? "rank" : h->sampling.temperature > 0 ? "sample" : "greedy");
    mp_kv_double(pk, "temperature", h->sampling.temperature);
    mp_kv_double(pk, "top_p", h->sampling.top_p);
    mp_kv_int(pk, "top_k", h->sampling.top_k);
    mp_kv_int(pk, "seed", (int64_t)h->seed);
    mp_kv_int(pk, "max_new", h->max_new);
    mp_kv_int(pk, "batch", h->batch);
    pack_path_or_nil(pk, "constrain", h->constrain);
}

vet_writer *vet_predictions_open(const char *path, const vet_predictions_header *h, vet_err *err) {
    vet_writer *w = vet_writer_open(path, "predictions", "vet-generate", err);
    if (!w) return NULL;
    msgpack_packer *pk = vet_writer_packer(w);
    int ensemble = h->n_models > 1, shard = h->shard_n > 0, rank = h->rank_k > 0, fold = h->fold != NULL;
    vet_writer_header_begin(w, (h->tmpl ? 6 : 5) + ensemble + shard + rank + fold);
    mp_kv_path(pk, "model", h->model);
    if (ensemble) {
        mp_key(pk, "ensemble");
        msgpack_pack_array(pk, (size_t)h->n_models);
        for (int i = 0; i < h->n_models; i++) mp_path(pk, h->ensemble[i]);
    }
    pack_path_or_nil(pk, "adapter", h->adapter);
    mp_key(pk, "tokenizer");
    msgpack_pack_object(pk, *h->tokenizer);
    if (h->tmpl) {
        mp_key(pk, "template");
        msgpack_pack_object(pk, *h->tmpl);
    }
    mp_kv_path(pk, "source", h->source);
    pack_decoding(pk, h);
    if (shard) {  // what vet-eval checks a set of shards with (eval/shards.h)
        mp_key(pk, "shard");
        msgpack_pack_map(pk, 4);
        mp_kv_int(pk, "k", h->shard_k);
        mp_kv_int(pk, "n", h->shard_n);
        mp_kv_int(pk, "input_notes", h->input_notes);
        mp_kv_str(pk, "input_digest", h->input_digest);
    }
    if (fold) {  // what vet-eval pools the folds of a cross-validation with (eval/shards.h)
        mp_key(pk, "fold");
        msgpack_pack_object(pk, *h->fold);
    }
    if (rank) {
        mp_key(pk, "rank");
        msgpack_pack_map(pk, 3);
        mp_kv_int(pk, "k", h->rank_k);
        mp_kv_int(pk, "labels", h->rank_labels);
        mp_kv_double(pk, "temperature", h->rank_temperature);
    }
    if (vet_writer_header_end(w, err)) {
        vet_writer_abort(w);
        return NULL;
    }
    return w;
}

void vet_prediction_group(const int32_t *ids, int n, char group[17]) {
    vet_sha256 s;
    vet_sha256_init(&s);
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
        vet_sha256_update(&s, le, 4);
    }
    uint8_t digest[32];
    char hex[65];
    vet_sha256_final(&s, digest);
    vet_sha256_to_hex(digest, hex);
    memcpy(group, hex, 16);
    group[16] = 0;
}

int vet_predictions_write(vet_writer *w, const vet_prediction *p, vet_err *err) {
    msgpack_packer *pk = vet_writer_packer(w);
    msgpack_pack_map(pk, p->n_ranked > 0 ? 11 : 9);
    mp_kv_str(pk, "id", p->id);
    mp_kv_str(pk, "species", p->species);
    mp_kv_str(pk, "group", p->group);
    mp_kv_str_array(pk, "gold", p->gold, p->n_gold);
    mp_kv_str_array(pk, "pred", p->pred, p->n_pred);
    mp_kv_str(pk, "text", p->text);
    mp_kv_int(pk, "tokens", p->n_generated);
    mp_kv_double(pk, "ms", p->ms);
    mp_kv_i32_array(pk, "generated", p->generated, (size_t)p->n_generated);
    if (p->n_ranked > 0) {
        mp_key(pk, "ranked");
        msgpack_pack_array(pk, (uint32_t)p->n_ranked);
        for (int i = 0; i < p->n_ranked; i++) {
            msgpack_pack_map(pk, 3);
            mp_kv_str(pk, "label", p->ranked[i]);
            mp_kv_double(pk, "p", p->ranked_p[i]);
            mp_kv_double(pk, "logp", p->ranked_logp[i]);
        }
        mp_kv_double(pk, "table_p", p->table_p);
    }
    return vet_writer_record_end(w, err);
}

int vet_prediction_fill(vet_prediction *p, const vet_gen_result *r, const vet_tokenizer *tok, const vet_labels *vocab,
                        const vet_constrain *cons, const int32_t *eos, int n_eos, vet_err *err) {
    p->generated = malloc((size_t)(r->n_ids + 1) * sizeof(int32_t));
    int32_t *keep = malloc((size_t)(r->n_ids + 1) * sizeof(int32_t));
    if (!p->generated || !keep) {
        free(keep);
        return vet_err_nomem(err, "out of memory");
    }
    if (r->n_ids) memcpy(p->generated, r->ids, (size_t)r->n_ids * sizeof(int32_t));  // --max-new 0: ids is NULL
    p->n_generated = r->n_ids, p->ms = r->ms;
    int nk = 0, sv = vet_tokenizer_vocab_size(tok);
    for (int i = 0; i < r->n_ids; i++) {
        int is_eos = 0;
        for (int e = 0; e < n_eos; e++) is_eos |= r->ids[i] == eos[e];
        if (!is_eos && r->ids[i] < sv) keep[nk++] = r->ids[i];
    }
    p->text = vet_tokenizer_decode(tok, keep, (size_t)nk, err);
    free(keep);
    if (!p->text) return -1;
    size_t len = strlen(p->text);
    if (cons) len = vet_constrain_complete_len(cons, p->text, len);
    return vet_labels_extract(vocab, p->text, len, &p->pred, &p->n_pred, NULL, err);
}
