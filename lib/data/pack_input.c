// pack_input.c — see pack_input.h.
#include "data/pack_input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "io/mp.h"
#include "io/stream.h"

const char *vet_pack_slot_name(int slot) {
    if (slot == VET_PACK_ALL) return "all";
    if (slot == VET_PACK_VAL_COPIES) return "val_copies";
    return vet_split_name(slot);
}

static void sample_free(vet_pack_sample *x) {
    free(x->id);
    free(x->species);
    free(x->copy_of);
    mp_free_strs(x->codes, x->n_codes);
    free(x->key);
    free(x->tokens);
    memset(x, 0, sizeof *x);
}

int vet_pack_samples_add(vet_pack_samples *S, vet_pack_sample *x, vet_err *err) {
    if (S->n == S->cap) {
        size_t cap = S->cap ? 2 * S->cap : 1024;
        vet_pack_sample *s = realloc(S->s, cap * sizeof *s);
        if (!s) {
            sample_free(x);
            return vet_err_nomem(err, "out of memory");
        }
        S->s = s;
        S->cap = cap;
    }
    S->s[S->n++] = *x;
    memset(x, 0, sizeof *x);
    return 0;
}

void vet_pack_samples_free(vet_pack_samples *S) {
    for (size_t i = 0; i < S->n; i++) sample_free(&S->s[i]);
    free(S->s);
    memset(S, 0, sizeof *S);
}

void vet_pack_input_free(vet_pack_input *in) {
    if (in->ready) msgpack_zone_destroy(&in->zone);
    msgpack_sbuffer_destroy(&in->buf[0]);
    msgpack_sbuffer_destroy(&in->buf[1]);
    memset(in, 0, sizeof *in);
}

// What the header says that every record is checked or fitted against: the vocabulary size
// (bounds every id) and the BOS id (-1: the tokenizer has none; BOS_UNKNOWN: the header does not
// say, and the prompt's first token is taken to be its BOS, as vet-tokenize's spm streams have it).
#define BOS_UNKNOWN (-2)
typedef struct {
    int64_t vocab, bos;
} header_facts;

// Copies a header object out of the reader's memory: packed into sb, unpacked into z (the
// unpacked strings point into sb, so both live as long as dst).
static int copy_object(msgpack_zone *z, msgpack_sbuffer *sb, const msgpack_object *src, msgpack_object *dst,
                       vet_err *err) {
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *src);
    size_t off = 0;
    if (msgpack_unpack(sb->data, sb->size, &off, z, dst) != MSGPACK_UNPACK_SUCCESS)
        return vet_err_nomem(err, "out of memory");
    return 0;
}

// The header's tokenizer (its sha256 names it; its vocab_size bounds the token ids; its bos_id,
// when there, says which prompts begin with a BOS) and template, copied into in for the
// outputs' headers.
static int read_header(vet_reader *r, vet_pack_input *in, header_facts *hf, vet_err *err) {
    const msgpack_object *h = vet_reader_header(r);
    const msgpack_object *tok = mp_get(h, "tokenizer");
    const char *sha;
    size_t sha_len;
    if (!tok || tok->type != MSGPACK_OBJECT_MAP || mp_get_str(tok, "sha256", &sha, &sha_len, err) != 0)
        return vet_errf(err, "%s: header lacks tokenizer.sha256 (not made by vet-tokenize?)", vet_reader_path(r));
    snprintf(in->sha256, sizeof in->sha256, "%.*s", (int)(sha_len < 79 ? sha_len : 79), sha);
    vet_tokenizer_header_kind(tok, in->tokenizer_kind, sizeof in->tokenizer_kind);
    // The vocabulary bounds every token id below: a header without a usable one would switch the
    // range check off, so it is refused rather than trusted.
    if (mp_get_int(tok, "vocab_size", &hf->vocab, NULL) != 0 || hf->vocab < 1 || hf->vocab > VET_PACK_MAX_VOCAB)
        return vet_errf(err, "%s: header's tokenizer.vocab_size is missing or outside [1, %d] (a stream not made "
                        "by vet-tokenize, or edited?)", vet_reader_path(r), VET_PACK_MAX_VOCAB);
    if (mp_get_int(tok, "bos_id", &hf->bos, NULL) != 0 || hf->bos < -1) hf->bos = BOS_UNKNOWN;
    msgpack_zone_init(&in->zone, 2048);
    in->ready = 1;
    if (copy_object(&in->zone, &in->buf[0], tok, &in->tokenizer, err) != 0) return -1;
    const msgpack_object *tpl = mp_get(h, "template");
    if (tpl) return copy_object(&in->zone, &in->buf[1], tpl, &in->template_, err);
    msgpack_sbuffer_init(&in->buf[1]);
    in->template_.type = MSGPACK_OBJECT_NIL;
    return 0;
}

// A record's token ids as read, before fitting.
typedef struct {
    int32_t *prompt, *resp;
    size_t np, nr;
} record_tokens;

// One record's fields into x and t: every field there and of its type.
static int read_fields(const msgpack_object *rec, vet_pack_sample *x, record_tokens *t, const char **note,
                       size_t *note_len, vet_err *err) {
    if (!(x->id = mp_get_strdup(rec, "id", err)) || !(x->species = mp_get_strdup(rec, "species", err)) ||
        mp_get_str_array(rec, "codes", &x->codes, &x->n_codes, err) != 0 ||
        mp_get_str(rec, "note", note, note_len, err) != 0 ||
        mp_get_i32_array(rec, "prompt", &t->prompt, &t->np, err) != 0 ||
        mp_get_i32_array(rec, "response", &t->resp, &t->nr, err) != 0)
        return -1;
    return 0;
}

// The rest of a record, once its id is known: copy_of (optional, a string), not marked
// unlabeled, a prompt and a response that are not empty, every token id in [0, vocab); then the grouping key from the note.
static int check_record(const msgpack_object *rec, int64_t vocab, const char *note, size_t note_len,
                        vet_pack_sample *x, const record_tokens *t, vet_err *err) {
    if (mp_get(rec, "copy_of") && !(x->copy_of = mp_get_strdup(rec, "copy_of", err))) return -1;
    const msgpack_object *u = mp_get(rec, "unlabeled");  // vet-tokenize: no codes, disease or output
    if (u && !(u->type == MSGPACK_OBJECT_BOOLEAN && !u->via.boolean))
        return vet_errf(err, "the note has no answer (no codes, disease or output): its response is the bare "
                        "prefix, and training on it teaches the model to answer nothing; fill in its codes, or "
                        "leave it out of the notes to train and test on");
    if (t->np == 0 || t->nr == 0)
        return vet_errf(err, "empty %s (a prompt starts with BOS, a response ends with EOS)",
                        t->np == 0 ? "prompt" : "response");
    for (size_t i = 0; i < t->np + t->nr; i++) {
        int32_t id = i < t->np ? t->prompt[i] : t->resp[i - t->np];
        if (id < 0 || id >= vocab)
            return vet_errf(err, "token id %d outside the vocabulary [0, %lld)", id, (long long)vocab);
    }
    x->key = vet_split_key(note, note_len);
    if (!x->key) return vet_err_nomem(err, "out of memory");
    return 0;
}

// Fits the sample into seq_len: keeps it whole, cuts its prompt (--truncate), or marks it
// rejected (kept in the table, without tokens, to be counted and named). Cut on the left, the
// prompt keeps its first token only when that is the BOS: a prompt of a tokenizer that adds
// none starts with the template's first word, which glued to the note's tail would be a prompt
// no model ever sees.
static int fit_sample(vet_pack_sample *x, const record_tokens *t, const vet_pack_fit_opts *fit, int64_t bos,
                      vet_err *err) {
    int keep_bos = bos == BOS_UNKNOWN || (t->np > 0 && t->prompt[0] == bos);
    int32_t from, keep = vet_pack_fit((int32_t)t->np, (int32_t)t->nr, fit->seq_len, fit->trunc, keep_bos, &from);
    if (keep < 0) {
        x->rejected = 1;
        return 0;
    }
    x->truncated = keep < (int32_t)t->np;
    x->prompt_len = keep;
    x->n = keep + (int32_t)t->nr;
    x->tokens = malloc((size_t)x->n * sizeof *x->tokens);
    if (!x->tokens) return vet_err_nomem(err, "out of memory");
    if (from > 0 && keep_bos) {  // left: BOS, then the newest keep-1 prompt tokens
        x->tokens[0] = t->prompt[0];
        memcpy(x->tokens + 1, t->prompt + from, (size_t)(keep - 1) * sizeof *t->prompt);
    } else {  // whole, right (the head), or left without a BOS (the newest keep tokens)
        memcpy(x->tokens, t->prompt + from, (size_t)keep * sizeof *t->prompt);
    }
    memcpy(x->tokens + keep, t->resp, t->nr * sizeof *t->resp);
    return 0;
}

// One record into a sample appended to S; errors name the file and the record (and its id once
// known).
static int read_record(const vet_reader *r, const msgpack_object *rec, const header_facts *hf, int slot,
                       const vet_pack_fit_opts *fit, vet_pack_samples *S, vet_err *err) {
    vet_pack_sample x = {.split = (uint8_t)slot, .original = -1};
    record_tokens t = {0};
    const char *note;
    size_t note_len;
    unsigned long long recno = (unsigned long long)vet_reader_records(r);
    int rc = read_fields(rec, &x, &t, &note, &note_len, err);
    if (rc != 0)
        vet_err_prefix(err, "%s: record %llu", vet_reader_path(r), recno);
    else if ((rc = check_record(rec, hf->vocab, note, note_len, &x, &t, err)) != 0 ||
             (rc = fit_sample(&x, &t, fit, hf->bos, err)) != 0)
        vet_err_prefix(err, "%s: record %llu (id %s)", vet_reader_path(r), recno, x.id);
    free(t.prompt);
    free(t.resp);
    if (rc != 0) {
        sample_free(&x);
        return -1;
    }
    return vet_pack_samples_add(S, &x, err);
}

int vet_pack_read(const char *path, int slot, const vet_pack_fit_opts *fit, vet_pack_input *in,
                  vet_pack_samples *S, vet_err *err) {
    in->path = path;
    vet_reader *r = vet_reader_open(path, "tokens", err);
    if (!r) return -1;
    header_facts hf = {0};
    int rc = read_header(r, in, &hf, err);
    const msgpack_object *rec;
    while (rc == 0 && (rc = vet_reader_next(r, &rec, err)) == 1) rc = read_record(r, rec, &hf, slot, fit, S, err);
    // A whole stream with no record (vet-tokenize read no note) would become empty splits that
    // look like a finished job: refused, naming the file.
    if (rc == 0 && vet_reader_records(r) == 0)
        rc = vet_errf(err, "%s: the tokens stream holds no records: nothing to pack (did vet-tokenize read any "
                      "note?)", vet_reader_path(r));
    vet_reader_close(r);
    return rc < 0 ? -1 : 0;
}
