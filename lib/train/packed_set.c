// packed.c — see packed.h.
#include "train/packed_set.h"

#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "io/mp.h"
#include "io/stream.h"

static int grow(vet_packed_set *s, int *cap) {
    if (s->n_rows < *cap) return 0;
    int nc = *cap ? *cap * 2 : 256;
    vet_row *r = realloc(s->rows, nc * sizeof *r);
    if (r) s->rows = r;
    int32_t **t = realloc(s->tokens, nc * sizeof *t);
    if (t) s->tokens = t;
    int32_t **g = realloc(s->targets, nc * sizeof *g);
    if (g) s->targets = g;
    int32_t **st = realloc(s->starts, nc * sizeof *st);
    if (st) s->starts = st;
    if (!r || !t || !g || !st) return -1;
    *cap = nc;
    return 0;
}

static void read_header(vet_packed_set *s, const msgpack_object *h) {
    const msgpack_object *tok = mp_get(h, "tokenizer");
    const char *sha;
    size_t n;
    int64_t v;
    if (tok && mp_get_str(tok, "sha256", &sha, &n, NULL) == 0 && n < sizeof s->tokenizer_sha256) {
        memcpy(s->tokenizer_sha256, sha, n);
        s->tokenizer_sha256[n] = 0;
    }
    vet_tokenizer_header_kind(tok, s->tokenizer_kind, sizeof s->tokenizer_kind);
    if (tok && mp_get_int(tok, "vocab_size", &v, NULL) == 0) s->vocab_size = (int)v;
    s->bos_id = tok && mp_get_int(tok, "bos_id", &v, NULL) == 0 ? (int)v : -1;
    s->eos_id = tok && mp_get_int(tok, "eos_id", &v, NULL) == 0 ? (int)v : -1;
    s->pad_id = tok && mp_get_int(tok, "pad_id", &v, NULL) == 0 ? (int)v : -1;
    s->unk_id = tok && mp_get_int(tok, "unk_id", &v, NULL) == 0 ? (int)v : -1;
    if (mp_get_int(h, "seq_len", &v, NULL) == 0) s->seq_len = (int)v;
}

int vet_packed_load(vet_packed_set *s, const char *path, vet_err *err) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    vet_reader *r = vet_reader_open(path, "packed", err);
    if (!r) return -1;
    read_header(s, vet_reader_header(r));
    const msgpack_object *rec;
    int rc, cap = 0;
    while ((rc = vet_reader_next(r, &rec, err)) == 1) {
        if (grow(s, &cap) < 0) { rc = vet_err_nomem(err, "out of memory"); break; }
        int i = s->n_rows;
        size_t nt = 0, ng = 0, ns = 0;
        s->tokens[i] = s->targets[i] = s->starts[i] = NULL;
        s->n_rows++;  // so free() releases the arrays of a half-read row too
        if (mp_get_i32_array(rec, "tokens", &s->tokens[i], &nt, err) < 0 ||
            mp_get_i32_array(rec, "targets", &s->targets[i], &ng, err) < 0 ||
            mp_get_i32_array(rec, "starts", &s->starts[i], &ns, err) < 0) {
            rc = vet_err_prefix(err, "%s: row %d", vet_reader_path(r), i + 1);
            break;
        }
        if (nt == 0 || nt != ng || ns == 0 || s->starts[i][0] != 0) {
            rc = vet_errf(err, "%s: row %d: malformed row (%zu tokens, %zu targets, %zu starts)",
                          vet_reader_path(r), i + 1, nt, ng, ns);
            break;
        }
        for (size_t k = 1; k < ns; k++)
            if (s->starts[i][k] <= s->starts[i][k - 1] || s->starts[i][k] >= (int32_t)nt) {
                rc = vet_errf(err, "%s: row %d: sample starts not ascending inside the row",
                              vet_reader_path(r), i + 1);
                break;
            }
        if (rc < 0) break;
        s->rows[i] = (vet_row){s->tokens[i], s->targets[i], s->starts[i], (int)nt, (int)ns};
        s->n_tokens += (long)nt;
        for (size_t k = 0; k < ng; k++) s->n_targets += s->targets[i][k] >= 0;
        if ((int)nt > s->max_len) s->max_len = (int)nt;
    }
    vet_reader_close(r);
    if (rc < 0) {
        vet_packed_free(s);
        return -1;
    }
    return 0;
}

void vet_packed_free(vet_packed_set *s) {
    for (int i = 0; i < s->n_rows; i++) {
        free(s->tokens[i]);
        free(s->targets[i]);
        free(s->starts[i]);
    }
    free(s->tokens);
    free(s->targets);
    free(s->starts);
    free(s->rows);
    memset(s, 0, sizeof *s);
}

int vet_packed_append(vet_packed_set *dst, vet_packed_set *src, vet_err *err) {
    if (strcmp(dst->tokenizer_sha256, src->tokenizer_sha256) != 0 || strcmp(dst->tokenizer_kind, src->tokenizer_kind) != 0 ||
        dst->vocab_size != src->vocab_size ||
        dst->bos_id != src->bos_id || dst->eos_id != src->eos_id || dst->pad_id != src->pad_id ||
        dst->unk_id != src->unk_id)
        return vet_errf(err, "%s and %s were made with different tokenizers (%s sha256 %.12s… vs %s %.12s…): "
                             "tokenize both with the same --tokenizer",
                        dst->path, src->path, dst->tokenizer_kind, dst->tokenizer_sha256, src->tokenizer_kind,
                        src->tokenizer_sha256);
    int cap = dst->n_rows;  // grow() doubles from the current size
    for (int i = 0; i < src->n_rows; i++) {
        if (grow(dst, &cap) < 0) return vet_err_nomem(err, "out of memory");
        int k = dst->n_rows++;
        dst->tokens[k] = src->tokens[i];
        dst->targets[k] = src->targets[i];
        dst->starts[k] = src->starts[i];
        dst->rows[k] = src->rows[i];
        src->tokens[i] = src->targets[i] = src->starts[i] = NULL;  // owned by dst now
    }
    dst->n_tokens += src->n_tokens;
    dst->n_targets += src->n_targets;
    if (src->max_len > dst->max_len) dst->max_len = src->max_len;
    if (src->seq_len > dst->seq_len) dst->seq_len = src->seq_len;
    vet_packed_free(src);
    return 0;
}
