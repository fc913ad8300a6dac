// prompts.c — the notes to decode, from a `tokens` or `packed` stream (see prompts.h).
#include "generate/prompts.h"

#include <stdlib.h>
#include <string.h>

#include "io/mp.h"
#include "io/stream.h"

struct vet_prompts {
    vet_reader *r;
    int packed;                       // a `packed` stream: prompts are samples of rows
    const msgpack_object *rec;        // the current record (valid until the next read)
    // packed: the current row and the next of its samples
    int32_t *row_tokens, *row_starts, *row_plens;
    size_t row_n;
    int row_sample, row_samples;
    // tokens: the current record's prompt
    int32_t *prompt;
    vet_prompt_limits lim;
};

void vet_prompt_free_fields(vet_prompt *p) {
    free(p->id), free(p->species);
    mp_free_strs(p->gold, p->n_gold);
    p->id = p->species = NULL, p->gold = NULL, p->n_gold = 0;
}

vet_prompts *vet_prompts_open(const char *path, vet_err *err) {
    vet_prompts *p = calloc(1, sizeof *p);
    if (!p) return vet_err_nomem(err, "out of memory"), NULL;
    if (!(p->r = vet_reader_open(path, NULL, err))) {
        free(p);
        return NULL;
    }
    const char *kind = vet_reader_kind(p->r);
    if (strcmp(kind, "tokens") != 0 && strcmp(kind, "packed") != 0) {
        vet_errf(err, "%s: a stream of kind '%s'; vet-generate reads 'tokens' (vet-tokenize) or 'packed' "
                 "(vet-pack --no-pack)", vet_reader_path(p->r), kind);
        vet_prompts_close(p);
        return NULL;
    }
    p->packed = strcmp(kind, "packed") == 0;
    return p;
}

static void free_row(vet_prompts *p) {
    free(p->row_tokens), free(p->row_starts), free(p->row_plens);
    p->row_tokens = p->row_starts = p->row_plens = NULL;
    p->row_sample = p->row_samples = 0;
}

void vet_prompts_close(vet_prompts *p) {
    if (!p) return;
    free_row(p);
    free(p->prompt);
    vet_reader_close(p->r);
    free(p);
}

const msgpack_object *vet_prompts_header(const vet_prompts *p) { return vet_reader_header(p->r); }
const char *vet_prompts_path(const vet_prompts *p) { return vet_reader_path(p->r); }
void vet_prompts_limit(vet_prompts *p, const vet_prompt_limits *l) { p->lim = *l; }

// Names the record err is about: "PATH: record N: ..."; returns -1.
static int bad_record(const vet_prompts *p, vet_err *err) {
    return vet_err_prefix(err, "%s: record %llu", vet_reader_path(p->r),
                          (unsigned long long)vet_reader_records(p->r));
}

// Element k of a field that holds an array of strings, copied; NULL when it is not a string.
static char *str_at(const msgpack_object *rec, const char *key, int k) {
    const msgpack_object *o = mp_get(rec, key);
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || (uint32_t)k >= o->via.array.size ||
        o->via.array.ptr[k].type != MSGPACK_OBJECT_STR)
        return NULL;
    return strndup(o->via.array.ptr[k].via.str.ptr, o->via.array.ptr[k].via.str.size);
}

// Element k of a field that holds an array of arrays of strings (a packed row's `codes`).
static int str_array_at(const msgpack_object *rec, const char *key, int k, char ***out, size_t *n,
                        vet_err *err) {
    const msgpack_object *o = mp_get(rec, key);
    if (!o || o->type != MSGPACK_OBJECT_ARRAY || (uint32_t)k >= o->via.array.size)
        return vet_errf(err, "field %s lacks entry %d", key, k);
    const msgpack_object *a = &o->via.array.ptr[k];
    if (a->type != MSGPACK_OBJECT_ARRAY) return vet_errf(err, "field %s[%d] is not an array", key, k);
    *n = a->via.array.size;
    if (!(*out = calloc(*n ? *n : 1, sizeof(char *)))) return vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < *n; i++) {
        const msgpack_object *s = &a->via.array.ptr[i];
        if (s->type != MSGPACK_OBJECT_STR) {
            mp_free_strs(*out, i);
            *out = NULL, *n = 0;
            return vet_errf(err, "field %s[%d][%zu] is not a string", key, k, i);
        }
        (*out)[i] = strndup(s->via.str.ptr, s->via.str.size);
    }
    return 0;
}

// packed: reads rows until one has a sample left. 1, 0 at the end, -1 on error.
static int next_row(vet_prompts *p, vet_err *err) {
    while (p->row_sample >= p->row_samples) {
        free_row(p);
        int rc = vet_reader_next(p->r, &p->rec, err);
        if (rc <= 0) return rc;
        size_t ns, np;
        if (mp_get_i32_array(p->rec, "tokens", &p->row_tokens, &p->row_n, err) ||
            mp_get_i32_array(p->rec, "starts", &p->row_starts, &ns, err) ||
            mp_get_i32_array(p->rec, "prompt_lens", &p->row_plens, &np, err))
            return bad_record(p, err);
        if (ns != np || ns == 0) {
            vet_errf(err, "starts has %zu entries but prompt_lens %zu", ns, np);
            return bad_record(p, err);
        }
        p->row_samples = (int)ns;
    }
    return 1;
}

// packed: the next sample of the current row.
static int packed_sample(vet_prompts *p, vet_prompt *out, vet_err *err) {
    int k = p->row_sample++;
    out->id = str_at(p->rec, "ids", k);
    out->species = str_at(p->rec, "species", k);
    if (!out->id) {
        vet_errf(err, "field ids lacks entry %d", k);
        return bad_record(p, err);
    }
    if (str_array_at(p->rec, "codes", k, &out->gold, &out->n_gold, err)) return bad_record(p, err);
    int start = p->row_starts[k], len = p->row_plens[k];
    int end = k + 1 < p->row_samples ? p->row_starts[k + 1] : (int)p->row_n;
    if (start < 0 || len <= 0 || start + len > end) {
        vet_errf(err, "sample %d: prompt of %d tokens at %d does not fit its sample [%d, %d)", k, len, start,
                 start, end);
        return bad_record(p, err);
    }
    out->prompt = p->row_tokens + start, out->n_prompt = len;
    return 1;
}

// tokens: the next record. 1, 0 at the end, -1 on error.
static int tokens_record(vet_prompts *p, vet_prompt *out, vet_err *err) {
    int rc = vet_reader_next(p->r, &p->rec, err);
    if (rc <= 0) return rc;
    size_t np;
    if (!(out->id = mp_get_strdup(p->rec, "id", err)) ||
        mp_get_str_array(p->rec, "codes", &out->gold, &out->n_gold, err) ||
        mp_get_i32_array(p->rec, "prompt", &p->prompt, &np, err))
        return bad_record(p, err);
    const msgpack_object *sp = mp_get(p->rec, "species");
    if (sp && sp->type == MSGPACK_OBJECT_STR) out->species = strndup(sp->via.str.ptr, sp->via.str.size);
    if (np == 0) {
        vet_errf(err, "note %s has an empty prompt", out->id);
        return bad_record(p, err);
    }
    out->prompt = p->prompt, out->n_prompt = (int)np;
    return 1;
}

// The limits of vet_prompts_limit.
static int check_limits(const vet_prompts *p, const vet_prompt *out, vet_err *err) {
    const vet_prompt_limits *l = &p->lim;
    // A fixed KV cache holds the prompt and every generated token but the last (which is
    // never fed back).
    long need = (long)out->n_prompt + (l->max_new > 0 ? l->max_new - 1 : 0);
    if (l->max_pos > 0 && need > l->max_pos)
        return vet_err_kindf(err, VET_E_USAGE, "note %s: a prompt of %d tokens and %s %d need %ld positions, "
                             "but the device KV cache holds --max-len %d (raise --max-len)", out->id, out->n_prompt,
                             l->ranked ? "the longest --rank answer, of" : "--max-new", l->max_new, need, l->max_pos);
    for (int i = 0; l->vocab > 0 && i < out->n_prompt; i++)
        if (out->prompt[i] < 0 || out->prompt[i] >= l->vocab) {
            vet_errf(err, "note %s: prompt token %d is outside the model's vocabulary [0, %d) (was the input "
                     "tokenized for this model?)", out->id, out->prompt[i], l->vocab);
            return bad_record(p, err);
        }
    return 0;
}

int vet_prompts_next(vet_prompts *p, vet_prompt *out, vet_err *err) {
    memset(out, 0, sizeof *out);
    free(p->prompt);
    p->prompt = NULL;
    int rc = p->packed ? next_row(p, err) : 1;
    if (rc == 1) rc = p->packed ? packed_sample(p, out, err) : tokens_record(p, out, err);
    if (rc == 1 && !out->species && !(out->species = strdup(""))) rc = vet_err_nomem(err, "out of memory");
    if (rc == 1 && check_limits(p, out, err) < 0) rc = -1;
    if (rc != 1) vet_prompt_free_fields(out);
    return rc;
}

void vet_input_digest_init(vet_input_digest *d) { vet_sha256_init(&d->sha); }

// v as 4 little-endian bytes: the same digest on every machine.
static void update_u32(vet_sha256 *s, uint32_t v) {
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    vet_sha256_update(s, le, 4);
}

// The id as a field (its length in front), then the prompt's length and ids: no two inputs of
// other notes hash the same bytes.
void vet_input_digest_add(vet_input_digest *d, const vet_prompt *p) {
    vet_sha256_update_field(&d->sha, p->id, strlen(p->id));
    update_u32(&d->sha, (uint32_t)p->n_prompt);
    for (int i = 0; i < p->n_prompt; i++) update_u32(&d->sha, (uint32_t)p->prompt[i]);
}

void vet_input_digest_hex(vet_input_digest *d, char hex[17]) {
    uint8_t digest[32];
    char full[65];
    vet_sha256_final(&d->sha, digest);
    vet_sha256_to_hex(digest, full);
    memcpy(hex, full, 16);
    hex[16] = 0;
}

int64_t vet_prompts_count(const char *path, const vet_prompt_limits *l, char digest[17], vet_err *err) {
    vet_prompts *p = vet_prompts_open(path, err);
    if (!p) return -1;
    vet_prompts_limit(p, l);
    vet_input_digest d;
    vet_input_digest_init(&d);
    int64_t n = 0;
    vet_prompt one;
    int rc;
    while ((rc = vet_prompts_next(p, &one, err)) == 1) {
        vet_input_digest_add(&d, &one);
        vet_prompt_free_fields(&one);
        n++;
    }
    vet_prompts_close(p);
    vet_input_digest_hex(&d, digest);
    return rc < 0 ? -1 : n;
}
