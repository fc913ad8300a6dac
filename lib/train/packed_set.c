// packed.c — see packed.h.
#include "train/packed_set.h"

#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
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

// The header's tokenizer: vocab_size (0 when absent) and the special ids (-1 when absent).
// A vocab_size that is present must be one (a -1 would switch the id checks off); a special id
// must lie inside it.
static int read_header(vet_packed_set *s, const msgpack_object *h, vet_err *err) {
    const msgpack_object *tok = mp_get(h, "tokenizer");
    const char *sha;
    size_t n;
    int64_t v;
    if (tok && mp_get_str(tok, "sha256", &sha, &n, NULL) == 0 && n < sizeof s->tokenizer_sha256) {
        memcpy(s->tokenizer_sha256, sha, n);
        s->tokenizer_sha256[n] = 0;
    }
    vet_tokenizer_header_kind(tok, s->tokenizer_kind, sizeof s->tokenizer_kind);
    if (tok && mp_get_int(tok, "vocab_size", &v, NULL) == 0) {
        if (v < 1 || v > VET_PACKED_MAX_VOCAB)
            return vet_errf(err, "%s: header: tokenizer vocab_size %lld is not a vocabulary size (1 to %d): "
                                 "the stream was not made by vet-pack, or was altered", s->path, (long long)v,
                            VET_PACKED_MAX_VOCAB);
        s->vocab_size = (int)v;
    }
    static const char *names[4] = {"bos_id", "eos_id", "pad_id", "unk_id"};
    int *ids[4] = {&s->bos_id, &s->eos_id, &s->pad_id, &s->unk_id};
    for (int i = 0; i < 4; i++) {
        *ids[i] = -1;
        if (!tok || mp_get_int(tok, names[i], &v, NULL) != 0) continue;
        if (v < -1 || v >= (s->vocab_size ? s->vocab_size : VET_PACKED_MAX_VOCAB))
            return vet_errf(err, "%s: header: tokenizer %s %lld is outside the vocabulary [0, %d) and not -1",
                            s->path, names[i], (long long)v, s->vocab_size ? s->vocab_size : VET_PACKED_MAX_VOCAB);
        *ids[i] = (int)v;
    }
    if (mp_get_int(h, "seq_len", &v, NULL) == 0) s->seq_len = v > 0 && v <= INT32_MAX ? (int)v : 0;
    return 0;
}

// Row i's arrays into the content hash (lengths first, so rows cannot run into each other).
static void hash_row(vet_sha256 *h, const vet_row *w) {
    int32_t lens[2] = {w->n, w->n_samples};
    vet_sha256_update(h, lens, sizeof lens);
    vet_sha256_update(h, w->tokens, (size_t)w->n * sizeof(int32_t));
    vet_sha256_update(h, w->targets, (size_t)w->n * sizeof(int32_t));
    vet_sha256_update(h, w->starts, (size_t)w->n_samples * sizeof(int32_t));
}

int vet_packed_load(vet_packed_set *s, const char *path, vet_err *err) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    vet_reader *r = vet_reader_open(path, "packed", err);
    if (!r) return -1;
    snprintf(s->files[0].path, sizeof s->files[0].path, "%s", path);
    s->n_files = 1;
    vet_sha256 h;
    vet_sha256_init(&h);
    const msgpack_object *rec;
    int rc = read_header(s, vet_reader_header(r), err), cap = 0;
    while (rc == 0 || rc == 1) {
        if ((rc = vet_reader_next(r, &rec, err)) != 1) break;
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
        if (nt > INT32_MAX / 2) {  // a row's length is an int everywhere after this
            rc = vet_errf(err, "%s: row %d: %zu tokens is not a row", vet_reader_path(r), i + 1, nt);
            break;
        }
        s->rows[i] = (vet_row){s->tokens[i], s->targets[i], s->starts[i], (int)nt, (int)ns};
        hash_row(&h, &s->rows[i]);
        s->n_tokens += (long)nt;
        for (size_t k = 0; k < ng; k++) s->n_targets += s->targets[i][k] >= 0;
        if ((int)nt > s->max_len) s->max_len = (int)nt;
    }
    vet_reader_close(r);
    if (rc < 0) {
        vet_packed_free(s);
        return -1;
    }
    uint8_t digest[32];
    vet_sha256_final(&h, digest);
    vet_sha256_to_hex(digest, s->content_sha256);
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
    if (dst->n_files + src->n_files > VET_PACKED_MAX_FILES)
        return vet_errf(err, "%s: more than %d packed files in one set", src->path, VET_PACKED_MAX_FILES);
    for (int i = 0; i < src->n_files; i++) {
        dst->files[dst->n_files] = src->files[i];
        dst->files[dst->n_files++].first_row += dst->n_rows;
    }
    char both[130];  // the set's content: the two hashes in order
    snprintf(both, sizeof both, "%s%s", dst->content_sha256, src->content_sha256);
    vet_sha256_hex(both, strlen(both), dst->content_sha256);
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

// The file and record of row i (for messages).
static const char *row_origin(const vet_packed_set *s, int i, int *record) {
    int f = s->n_files - 1;
    while (f > 0 && s->files[f].first_row > i) f--;
    *record = i - (s->n_files ? s->files[f].first_row : 0) + 1;
    return s->n_files ? s->files[f].path : s->path;
}

int vet_packed_check_model(const vet_packed_set *s, int vocab, int max_pos, vet_err *err) {
    for (int i = 0; i < s->n_rows; i++) {
        const vet_row *w = &s->rows[i];
        int rec;
        for (int k = 0; k < w->n; k++) {
            int32_t t = w->tokens[k], g = w->targets[k];
            if (t >= 0 && t < vocab && g >= -1 && g < vocab) continue;
            const char *path = row_origin(s, i, &rec);
            return t < 0 || t >= vocab
                       ? vet_errf(err, "%s: record %d: token %d at position %d is outside the model's vocabulary "
                                       "[0, %d): was the data tokenized for this model?", path, rec, t, k, vocab)
                       : vet_errf(err, "%s: record %d: target %d at position %d is outside the model's "
                                       "vocabulary [0, %d) and not -1", path, rec, g, k, vocab);
        }
        for (int j = 0; j < w->n_samples && max_pos > 0; j++) {
            int len = (j + 1 < w->n_samples ? w->starts[j + 1] : w->n) - w->starts[j];
            if (len <= max_pos) continue;
            const char *path = row_origin(s, i, &rec);
            return vet_errf(err, "%s: record %d: sample %d has %d tokens, more positions than the model's "
                                 "max_position_embeddings (%d): pack with vet-pack --seq-len %d or less",
                            path, rec, j + 1, len, max_pos, max_pos);
        }
    }
    return 0;
}
