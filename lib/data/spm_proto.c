// spm_proto.c — see spm_proto.h: protobuf's wire format, only what a ModelProto needs.
// A field is a key varint (field number << 3 | wire type) and its value: wire type 0 a varint,
// 2 a varint length then that many bytes (strings, nested messages), 5 four little-endian bytes.
#include "data/spm_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int oom;
} pbuf;

static void put(pbuf *b, const void *data, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n) c *= 2;
        uint8_t *q = realloc(b->p, c);
        if (!q) { b->oom = 1; return; }
        b->p = q, b->cap = c;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void varint(pbuf *b, uint64_t v) {
    uint8_t tmp[10];
    size_t k = 0;
    do {
        tmp[k++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(b, tmp, k);
}

enum { WT_VARINT = 0, WT_LEN = 2, WT_FIXED32 = 5 };

static void key(pbuf *b, unsigned field, unsigned wt) { varint(b, (uint64_t)field << 3 | wt); }

static void f_varint(pbuf *b, unsigned field, uint64_t v) { key(b, field, WT_VARINT), varint(b, v); }

static void f_bytes(pbuf *b, unsigned field, const void *s, size_t n) {
    key(b, field, WT_LEN), varint(b, n), put(b, s, n);
}

static void f_float(pbuf *b, unsigned field, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    key(b, field, WT_FIXED32), put(b, le, 4);
}

// A nested message: its bytes (sub) as a length-delimited field of b; sub is emptied for reuse.
static void f_msg(pbuf *b, unsigned field, pbuf *sub) {
    if (sub->oom) b->oom = 1;
    f_bytes(b, field, sub->p, sub->n);
    sub->n = 0;
}

static void trainer_spec(pbuf *t, const vet_spm_proto *m) {
    f_varint(t, 3, 2);  // model_type BPE: llama.cpp runs a "llama" vocabulary as score-ranked merges
    f_varint(t, 35, m->byte_fallback ? 1 : 0);
    const char *sp[4] = {m->unk_piece, m->bos_piece, m->eos_piece, m->pad_piece};
    for (unsigned k = 0; k < 4; k++)
        if (sp[k]) f_bytes(t, 45 + k, sp[k], strlen(sp[k]));
}

static void normalizer_spec(pbuf *t, const vet_spm_proto *m) {
    f_bytes(t, 1, "identity", 8);
    f_varint(t, 3, m->add_dummy_prefix ? 1 : 0);
    f_varint(t, 4, m->remove_extra_whitespaces ? 1 : 0);
    f_varint(t, 5, 1);  // escape_whitespaces: spaces are U+2581 in the pieces
}

int vet_spm_proto_serialize(const vet_spm_proto *m, uint8_t **out, size_t *len, vet_err *err) {
    pbuf b = {0}, sub = {0};
    for (int32_t i = 0; i < m->n && !b.oom; i++) {
        f_bytes(&sub, 1, m->piece[i], m->piece_len[i]);
        f_float(&sub, 2, m->score[i]);
        f_varint(&sub, 3, m->type[i]);
        f_msg(&b, 1, &sub);
    }
    trainer_spec(&sub, m);
    f_msg(&b, 2, &sub);
    normalizer_spec(&sub, m);
    f_msg(&b, 3, &sub);
    free(sub.p);
    if (b.oom || sub.oom) {
        free(b.p);
        return vet_err_nomem(err, "out of memory building the SentencePiece model");
    }
    *out = b.p, *len = b.n;
    return 0;
}

// ---- reading back the two things the processor's interface does not tell ---------------------

// A varint at *p (< end); -1 when it runs off the end or past 10 bytes.
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

// The next field of [*p, end): its number, wire type, and value (a varint in *v; for wire type 2
// the bytes in [*sub, *sub + *v)). Fixed-width values are skipped. -1 on malformed bytes.
static int next_field(const uint8_t **p, const uint8_t *end, unsigned *field, unsigned *wt, uint64_t *v,
                      const uint8_t **sub) {
    uint64_t k;
    if (get_varint(p, end, &k) < 0) return -1;
    *field = (unsigned)(k >> 3), *wt = (unsigned)(k & 7);
    size_t skip = *wt == 1 ? 8 : *wt == 5 ? 4 : 0;
    if (*wt == 0) return get_varint(p, end, v);
    if (*wt == 1 || *wt == 5) {
        if ((size_t)(end - *p) < skip) return -1;
        *p += skip;
        return 0;
    }
    if (*wt != 2 || get_varint(p, end, v) < 0 || *v > (uint64_t)(end - *p)) return -1;
    *sub = *p;
    *p += *v;
    return 0;
}

// The type (field 3) of one SentencePiece message; 1 (normal) when absent.
static int piece_type(const uint8_t *p, const uint8_t *end, uint8_t *type) {
    *type = 1;
    while (p < end) {
        unsigned f, wt;
        uint64_t v = 0;
        const uint8_t *sub;
        if (next_field(&p, end, &f, &wt, &v, &sub) < 0) return -1;
        if (f == 3 && wt == 0) *type = v <= 6 ? (uint8_t)v : 0;
    }
    return 0;
}

// The NormalizerSpec message [p, end) into *norm (fields absent keep what *norm holds).
static int normalizer_read(const uint8_t *p, const uint8_t *end, vet_spm_norm *norm) {
    while (p < end) {
        unsigned f, wt;
        uint64_t v = 0;
        const uint8_t *sub = NULL;
        if (next_field(&p, end, &f, &wt, &v, &sub) < 0) return -1;
        if (f == 1 && wt == 2) snprintf(norm->name, sizeof norm->name, "%.*s", (int)(v < 31 ? v : 31), (const char *)sub);
        else if (f == 2 && wt == 2) norm->charsmap_len = (size_t)v;
        else if (f == 3 && wt == 0) norm->add_dummy_prefix = v != 0;
        else if (f == 4 && wt == 0) norm->remove_extra_whitespaces = v != 0;
        else if (f == 5 && wt == 0) norm->escape_whitespaces = v != 0;
    }
    return 0;
}

// The one TrainerSpec field that changes encoding: treat_whitespace_as_suffix (24).
static int trainer_read(const uint8_t *p, const uint8_t *end, vet_spm_norm *norm) {
    while (p < end) {
        unsigned f, wt;
        uint64_t v = 0;
        const uint8_t *sub = NULL;
        if (next_field(&p, end, &f, &wt, &v, &sub) < 0) return -1;
        if (f == 24 && wt == 0) norm->whitespace_as_suffix = v != 0;
    }
    return 0;
}

int vet_spm_proto_read(const void *data, size_t len, uint8_t *types, int32_t n, vet_spm_norm *norm) {
    const uint8_t *p = data, *end = p + len;
    int32_t i = 0;
    *norm = (vet_spm_norm){.add_dummy_prefix = 1, .remove_extra_whitespaces = 1, .escape_whitespaces = 1};
    while (p < end) {
        unsigned f, wt;
        uint64_t v = 0;
        const uint8_t *sub = NULL;
        if (next_field(&p, end, &f, &wt, &v, &sub) < 0) return -1;
        if (f == 1 && wt == 2) {
            if (i >= n || piece_type(sub, sub + v, &types[i++]) < 0) return -1;
        } else if (f == 2 && wt == 2) {
            if (trainer_read(sub, sub + v, norm) < 0) return -1;
        } else if (f == 3 && wt == 2) {
            if (normalizer_read(sub, sub + v, norm) < 0) return -1;
        }
    }
    return i == n ? 0 : -1;
}
