// gguf_write.c — the GGUF writer (gguf_write.h). Each metadata value is encoded into its file
// bytes when it is set, so writing is a copy; tensors keep only their info and a fill function.
#include "io/gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf_write.c writes the host's byte order: GGUF is little-endian"
#endif

typedef struct {
    char *key;
    uint32_t type;
    uint8_t *val;       // the value as the file holds it (after the u32 type)
    size_t len;
} wkv;

typedef struct {
    char *name;
    uint32_t type;
    int n_dims;
    int64_t ne[VET_GGUF_MAX_DIMS];
    size_t nbytes;
    uint64_t offset;    // from the start of the data section
    vet_gguf_fill_fn fill;
    void *ctx;
} wtensor;

struct vet_gguf_writer {
    wkv *kv;
    size_t nkv, cap_kv;
    wtensor *t;
    size_t nt, cap_t;
};

vet_gguf_writer *vet_gguf_writer_new(vet_err *err) {
    vet_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) vet_err_nomem(err, "gguf writer: out of memory");
    return w;
}

void vet_gguf_writer_free(vet_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->nkv; i++) free(w->kv[i].key), free(w->kv[i].val);
    for (size_t i = 0; i < w->nt; i++) free(w->t[i].name);
    free(w->kv), free(w->t), free(w);
}

size_t vet_gguf_writer_n_tensors(const vet_gguf_writer *w) { return w->nt; }
size_t vet_gguf_writer_n_kv(const vet_gguf_writer *w) { return w->nkv; }

static size_t elem_size(uint32_t type) {
    switch (type) {
    case VET_GGUF_U8: case VET_GGUF_I8: case VET_GGUF_BOOL: return 1;
    case VET_GGUF_U16: case VET_GGUF_I16: return 2;
    case VET_GGUF_U32: case VET_GGUF_I32: case VET_GGUF_F32: return 4;
    case VET_GGUF_U64: case VET_GGUF_I64: case VET_GGUF_F64: return 8;
    default: return 0;  // string, array: not fixed-size
    }
}

// Stores key's encoded value (val, len bytes, taken over), replacing an earlier one.
static int put_kv(vet_gguf_writer *w, const char *key, uint32_t type, uint8_t *val, size_t len, vet_err *err) {
    size_t klen = key ? strlen(key) : 0;
    if (klen == 0 || klen > VET_GGUF_MAX_NAME) {
        free(val);
        return vet_errf(err, "gguf writer: key \"%.40s\" must be 1 to %d bytes", key ? key : "", VET_GGUF_MAX_NAME);
    }
    for (size_t i = 0; i < w->nkv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val);
            w->kv[i].type = type, w->kv[i].val = val, w->kv[i].len = len;
            return 0;
        }
    if (w->nkv == w->cap_kv) {
        size_t c = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *p = realloc(w->kv, c * sizeof *p);
        if (!p) { free(val); return vet_err_nomem(err, "gguf writer: out of memory"); }
        w->kv = p, w->cap_kv = c;
    }
    char *k = strdup(key);
    if (!k) { free(val); return vet_err_nomem(err, "gguf writer: out of memory"); }
    w->kv[w->nkv++] = (wkv){k, type, val, len};
    return 0;
}

static int put_scalar(vet_gguf_writer *w, const char *key, uint32_t type, const void *v, vet_err *err) {
    size_t n = elem_size(type);
    uint8_t *val = malloc(n);
    if (!val) return vet_err_nomem(err, "gguf writer: out of memory");
    memcpy(val, v, n);
    return put_kv(w, key, type, val, n, err);
}

int vet_gguf_set_u32(vet_gguf_writer *w, const char *key, uint32_t v, vet_err *err) {
    return put_scalar(w, key, VET_GGUF_U32, &v, err);
}
int vet_gguf_set_i32(vet_gguf_writer *w, const char *key, int32_t v, vet_err *err) {
    return put_scalar(w, key, VET_GGUF_I32, &v, err);
}
int vet_gguf_set_u64(vet_gguf_writer *w, const char *key, uint64_t v, vet_err *err) {
    return put_scalar(w, key, VET_GGUF_U64, &v, err);
}
int vet_gguf_set_f32(vet_gguf_writer *w, const char *key, float v, vet_err *err) {
    return put_scalar(w, key, VET_GGUF_F32, &v, err);
}
int vet_gguf_set_bool(vet_gguf_writer *w, const char *key, int v, vet_err *err) {
    uint8_t b = v ? 1 : 0;
    return put_scalar(w, key, VET_GGUF_BOOL, &b, err);
}

// A GGUF string (u64 length + bytes) at p; returns the bytes written.
static size_t enc_str(uint8_t *p, const char *s, size_t n) {
    uint64_t len = n;
    memcpy(p, &len, 8);
    memcpy(p + 8, s, n);
    return 8 + n;
}

int vet_gguf_set_str(vet_gguf_writer *w, const char *key, const char *s, vet_err *err) {
    size_t n = strlen(s);
    uint8_t *val = malloc(8 + n);
    if (!val) return vet_err_nomem(err, "gguf writer: out of memory");
    enc_str(val, s, n);
    return put_kv(w, key, VET_GGUF_STRING, val, 8 + n, err);
}

int vet_gguf_set_array(vet_gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n,
                       vet_err *err) {
    size_t es = elem_size(elem_type);
    if (es == 0) return vet_errf(err, "gguf writer: %s: arrays of %s are not fixed-size (strings: vet_gguf_set_str_array)",
                                 key, vet_gguf_type_name(elem_type));
    if (n > (SIZE_MAX - 12) / es) return vet_err_nomem(err, "gguf writer: %s: array too large", key);
    uint8_t *val = malloc(12 + n * es);
    if (!val) return vet_err_nomem(err, "gguf writer: out of memory");
    memcpy(val, &elem_type, 4);
    memcpy(val + 4, &n, 8);
    if (n) memcpy(val + 12, data, n * es);
    return put_kv(w, key, VET_GGUF_ARRAY, val, 12 + n * es, err);
}

int vet_gguf_set_str_array(vet_gguf_writer *w, const char *key, const char *const *strs, uint64_t n,
                           vet_err *err) {
    size_t len = 12;
    for (uint64_t i = 0; i < n; i++) len += 8 + strlen(strs[i]);
    uint8_t *val = malloc(len), *p = val;
    if (!val) return vet_err_nomem(err, "gguf writer: out of memory");
    uint32_t et = VET_GGUF_STRING;
    memcpy(p, &et, 4);
    memcpy(p + 4, &n, 8);
    p += 12;
    for (uint64_t i = 0; i < n; i++) p += enc_str(p, strs[i], strlen(strs[i]));
    return put_kv(w, key, VET_GGUF_ARRAY, val, len, err);
}

// The bytes of a string array's elements as the reader's mapping holds them (each a u64 length
// and its bytes, back to back): from the first to the end of the last.
static size_t str_array_span(const vet_gguf *g, const vet_gguf_kv *kv) {
    if (kv->n == 0) return 0;
    uint64_t len;
    const char *last = vet_gguf_array_str(g, kv, kv->n - 1, &len);
    return (size_t)((const uint8_t *)last + len - kv->data);
}

int vet_gguf_copy_kv(vet_gguf_writer *w, const vet_gguf *g, const vet_gguf_kv *kv, vet_err *err) {
    if (kv->type == VET_GGUF_STRING) {
        uint8_t *val = malloc(8 + (size_t)kv->n);
        if (!val) return vet_err_nomem(err, "gguf writer: out of memory");
        enc_str(val, (const char *)kv->data, (size_t)kv->n);
        return put_kv(w, kv->key, VET_GGUF_STRING, val, 8 + (size_t)kv->n, err);
    }
    if (kv->type != VET_GGUF_ARRAY) {
        if (elem_size(kv->type) == 0)
            return vet_errf(err, "gguf writer: %s: a value of %s cannot be copied", kv->key, vet_gguf_type_name(kv->type));
        return put_scalar(w, kv->key, kv->type, kv->data, err);
    }
    if (kv->arr_type != VET_GGUF_STRING) return vet_gguf_set_array(w, kv->key, kv->arr_type, kv->data, kv->n, err);
    size_t span = str_array_span(g, kv);
    uint8_t *val = malloc(12 + span);
    if (!val) return vet_err_nomem(err, "gguf writer: out of memory");
    uint32_t et = VET_GGUF_STRING;
    memcpy(val, &et, 4);
    memcpy(val + 4, &kv->n, 8);
    if (span) memcpy(val + 12, kv->data, span);
    return put_kv(w, kv->key, VET_GGUF_ARRAY, val, 12 + span, err);
}

size_t vet_gguf_write_nbytes(uint32_t type, int64_t n) {
    switch (type) {
    case VET_GGML_F32: case VET_GGML_F16: case VET_GGML_BF16: case VET_GGML_Q8_0: return vet_ggml_row_bytes(type, n);
    default: return 0;
    }
}

int vet_gguf_add_tensor(vet_gguf_writer *w, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                        vet_gguf_fill_fn fill, void *ctx, vet_err *err) {
    size_t nl = strlen(name);
    if (nl == 0 || nl > VET_GGUF_WRITE_MAX_NAME)
        return vet_errf(err, "gguf writer: tensor name \"%.80s\" must be 1 to %d bytes", name, VET_GGUF_WRITE_MAX_NAME);
    for (size_t i = 0; i < w->nt; i++)
        if (strcmp(w->t[i].name, name) == 0) return vet_errf(err, "gguf writer: tensor %s added twice", name);
    if (n_dims < 1 || n_dims > VET_GGUF_MAX_DIMS)
        return vet_errf(err, "gguf writer: tensor %s: %d dims (1 to %d)", name, n_dims, VET_GGUF_MAX_DIMS);
    wtensor t = {.type = type, .n_dims = n_dims, .fill = fill, .ctx = ctx};
    int64_t n = 1;
    for (int d = 0; d < VET_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 1 || t.ne[d] > (INT64_MAX >> 2) / n)
            return vet_errf(err, "gguf writer: tensor %s: dim %d is %lld", name, d, (long long)t.ne[d]);
        n *= t.ne[d];
    }
    if (vet_gguf_write_nbytes(type, 32) == 0)   // 32: a whole block of every type
        return vet_errf(err, "gguf writer: tensor %s: ggml type %s is not one vet writes (F32, F16, BF16, Q8_0)",
                        name, vet_ggml_type_get(type).name);
    if (vet_gguf_write_nbytes(type, t.ne[0]) == 0)
        return vet_errf(err, "gguf writer: tensor %s: a row of %lld is not a whole number of 32-element blocks", name,
                        (long long)t.ne[0]);
    t.nbytes = vet_gguf_write_nbytes(type, n);
    if (w->nt == w->cap_t) {
        size_t c = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *p = realloc(w->t, c * sizeof *p);
        if (!p) return vet_err_nomem(err, "gguf writer: out of memory");
        w->t = p, w->cap_t = c;
    }
    if (!(t.name = strdup(name))) return vet_err_nomem(err, "gguf writer: out of memory");
    w->t[w->nt++] = t;
    return 0;
}

// The alignment: general.alignment when set (u32, a power of two >= 8), else the default.
static int alignment(const vet_gguf_writer *w, size_t *align, vet_err *err) {
    *align = VET_GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->nkv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        uint32_t a = 0;
        if (w->kv[i].type == VET_GGUF_U32) memcpy(&a, w->kv[i].val, 4);
        if (a < 8 || (a & (a - 1)))
            return vet_err_kindf(err, VET_E_USAGE, "gguf writer: general.alignment must be a u32 power of two >= 8");
        *align = a;
    }
    return 0;
}

static size_t pad_to(uint64_t off, size_t align) { return (size_t)((align - off % align) % align); }

// Everything before the data section; returns its length before padding.
static uint64_t write_head(FILE *f, const vet_gguf_writer *w) {
    uint32_t magic = VET_GGUF_MAGIC, version = VET_GGUF_VERSION;
    uint64_t nt = w->nt, nkv = w->nkv, off = 24;
    fwrite(&magic, 4, 1, f), fwrite(&version, 4, 1, f), fwrite(&nt, 8, 1, f), fwrite(&nkv, 8, 1, f);
    for (size_t i = 0; i < w->nkv; i++) {
        const wkv *k = &w->kv[i];
        uint64_t kl = strlen(k->key);
        fwrite(&kl, 8, 1, f), fwrite(k->key, 1, kl, f), fwrite(&k->type, 4, 1, f), fwrite(k->val, 1, k->len, f);
        off += 8 + kl + 4 + k->len;
    }
    for (size_t i = 0; i < w->nt; i++) {
        const wtensor *t = &w->t[i];
        uint64_t nl = strlen(t->name);
        uint32_t nd = (uint32_t)t->n_dims;
        fwrite(&nl, 8, 1, f), fwrite(t->name, 1, nl, f), fwrite(&nd, 4, 1, f);
        fwrite(t->ne, 8, (size_t)t->n_dims, f), fwrite(&t->type, 4, 1, f), fwrite(&t->offset, 8, 1, f);
        off += 8 + nl + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
    }
    return off;
}

int vet_gguf_write(vet_gguf_writer *w, const char *path, vet_err *err) {
    size_t align, maxb = 0;
    if (alignment(w, &align, err) < 0) return -1;
    uint64_t off = 0;
    for (size_t i = 0; i < w->nt; i++) {
        w->t[i].offset = off;
        off += w->t[i].nbytes + pad_to(off + w->t[i].nbytes, align);
        if (w->t[i].nbytes > maxb) maxb = w->t[i].nbytes;
    }
    static const uint8_t zeros[256];
    uint8_t *buf = maxb ? malloc(maxb) : NULL;
    if (maxb && !buf) return vet_err_nomem(err, "gguf writer: out of memory (%zu bytes for one tensor)", maxb);
    vet_afile a;
    if (vet_afile_open(&a, path, err) < 0) { free(buf); return -1; }
    uint64_t head = write_head(a.f, w);
    fwrite(zeros, 1, pad_to(head, align), a.f);
    for (size_t i = 0; i < w->nt; i++) {
        const wtensor *t = &w->t[i];
        if (t->fill(t->ctx, buf, t->nbytes, err) < 0) {
            vet_err_prefix(err, "%s: tensor %s", a.shown, t->name);
            vet_afile_abort(&a);
            free(buf);
            return -1;
        }
        fwrite(buf, 1, t->nbytes, a.f);
        fwrite(zeros, 1, pad_to(t->offset + t->nbytes, align), a.f);
    }
    free(buf);
    if (ferror(a.f)) {
        vet_err_io(err, "%s: write failed: %s", a.shown, strerror(errno ? errno : EIO));
        vet_afile_abort(&a);
        return -1;
    }
    return vet_afile_commit(&a, err);
}
