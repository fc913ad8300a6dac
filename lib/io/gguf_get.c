// gguf_get.c — typed access to a GGUF file's metadata and tensors (gguf.h). The file was checked
// whole when it was opened, so these only look values up and convert them.
#include <stdlib.h>
#include <string.h>

#include "io/gguf_impl.h"

size_t gguf_scalar_size(uint32_t type) {
    switch (type) {
    case VET_GGUF_U8: case VET_GGUF_I8: case VET_GGUF_BOOL: return 1;
    case VET_GGUF_U16: case VET_GGUF_I16: return 2;
    case VET_GGUF_U32: case VET_GGUF_I32: case VET_GGUF_F32: return 4;
    case VET_GGUF_U64: case VET_GGUF_I64: case VET_GGUF_F64: return 8;
    default: return 0;
    }
}

const char *vet_gguf_path(const vet_gguf *g) { return g->path; }
uint32_t vet_gguf_version(const vet_gguf *g) { return g->version; }
size_t vet_gguf_alignment(const vet_gguf *g) { return g->alignment; }
size_t vet_gguf_n_kv(const vet_gguf *g) { return g->n_kv; }
size_t vet_gguf_n_tensors(const vet_gguf *g) { return g->n_tensors; }

const vet_gguf_kv *vet_gguf_kv_at(const vet_gguf *g, size_t i) { return i < g->n_kv ? &g->kv[i] : NULL; }
const vet_gguf_tensor *vet_gguf_tensor_at(const vet_gguf *g, size_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const vet_gguf_kv *vet_gguf_find_kv(const vet_gguf *g, const char *key) {
    long id = vet_strtab_find(&g->kv_names, key);
    return id >= 0 && (size_t)id < g->n_kv ? &g->kv[id] : NULL;
}

const vet_gguf_tensor *vet_gguf_find_tensor(const vet_gguf *g, const char *name) {
    long id = vet_strtab_find(&g->tensor_names, name);
    return id >= 0 && (size_t)id < g->n_tensors && g->tensors[id].data ? &g->tensors[id] : NULL;
}

int vet_gguf_has(const vet_gguf *g, const char *key) { return vet_gguf_find_kv(g, key) != NULL; }

static int is_int(uint32_t t) {
    return t == VET_GGUF_U8 || t == VET_GGUF_I8 || t == VET_GGUF_U16 || t == VET_GGUF_I16 || t == VET_GGUF_U32 ||
           t == VET_GGUF_I32 || t == VET_GGUF_U64 || t == VET_GGUF_I64;
}

// Little-endian loads from the mapping (which need not be aligned).
static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t x = 0;
    for (size_t i = n; i-- > 0;) x = x << 8 | p[i];
    return x;
}

// An integer value of type t at p, sign-extended for the signed types; *too_big set for a u64
// beyond INT64_MAX (which fits nothing vet reads).
static int64_t load_int(uint32_t t, const uint8_t *p, int *too_big) {
    uint64_t x = load_le(p, gguf_scalar_size(t));
    *too_big = 0;
    switch (t) {
    case VET_GGUF_I8: return (int8_t)x;
    case VET_GGUF_I16: return (int16_t)x;
    case VET_GGUF_I32: return (int32_t)x;
    case VET_GGUF_I64: return (int64_t)x;
    case VET_GGUF_U64: *too_big = x > INT64_MAX; return (int64_t)(x & INT64_MAX);
    default: return (int64_t)x;
    }
}

static double load_float(uint32_t t, const uint8_t *p) {
    if (t == VET_GGUF_F32) {
        uint32_t u = (uint32_t)load_le(p, 4);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    uint64_t u = load_le(p, 8);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

// The key's entry, or NULL with an error saying it is absent.
static const vet_gguf_kv *present(const vet_gguf *g, const char *key, vet_err *err) {
    const vet_gguf_kv *kv = vet_gguf_find_kv(g, key);
    if (!kv) vet_errf(err, "%s: no metadata key %s", g->path, key);
    return kv;
}

static int wrong_type(const vet_gguf *g, const vet_gguf_kv *kv, const char *want, vet_err *err) {
    return vet_errf(err, "%s: metadata key %s is %s%s%s, expected %s", g->path, kv->key,
                    kv->type == VET_GGUF_ARRAY ? "an array of " : "a ",
                    vet_gguf_type_name(kv->type == VET_GGUF_ARRAY ? kv->arr_type : kv->type),
                    kv->type == VET_GGUF_ARRAY ? "" : " value", want);
}

int vet_gguf_get_i64(const vet_gguf *g, const char *key, int64_t *out, vet_err *err) {
    const vet_gguf_kv *kv = present(g, key, err);
    if (!kv) return -1;
    if (!is_int(kv->type)) return wrong_type(g, kv, "an integer", err);
    int too_big;
    *out = load_int(kv->type, kv->data, &too_big);
    if (too_big) return vet_errf(err, "%s: metadata key %s is too large", g->path, key);
    return 0;
}

int vet_gguf_get_token_id(const vet_gguf *g, const char *key, uint64_t n_vocab, int32_t *out, vet_err *err) {
    int64_t v = -1;
    if (vet_gguf_has(g, key) && vet_gguf_get_i64(g, key, &v, err) < 0) return -1;
    if (v < -1 || v >= (int64_t)n_vocab)
        return vet_errf(err, "%s: %s is %lld, outside the vocabulary (0 to %llu)", g->path, key, (long long)v,
                        (unsigned long long)n_vocab - 1);
    *out = (int32_t)v;
    return 0;
}

int vet_gguf_get_u32(const vet_gguf *g, const char *key, uint32_t *out, vet_err *err) {
    int64_t v;
    if (vet_gguf_get_i64(g, key, &v, err)) return -1;
    if (v < 0 || v > UINT32_MAX)
        return vet_errf(err, "%s: metadata key %s is %lld, outside 0..%u", g->path, key, (long long)v, UINT32_MAX);
    *out = (uint32_t)v;
    return 0;
}

int vet_gguf_get_f32(const vet_gguf *g, const char *key, float *out, vet_err *err) {
    const vet_gguf_kv *kv = present(g, key, err);
    if (!kv) return -1;
    if (kv->type != VET_GGUF_F32 && kv->type != VET_GGUF_F64) return wrong_type(g, kv, "f32", err);
    *out = (float)load_float(kv->type, kv->data);
    return 0;
}

int vet_gguf_get_bool(const vet_gguf *g, const char *key, int *out, vet_err *err) {
    const vet_gguf_kv *kv = present(g, key, err);
    if (!kv) return -1;
    if (kv->type != VET_GGUF_BOOL) return wrong_type(g, kv, "bool", err);
    *out = kv->data[0] != 0;
    return 0;
}

char *vet_gguf_get_str(const vet_gguf *g, const char *key, vet_err *err) {
    const vet_gguf_kv *kv = present(g, key, err);
    if (!kv) return NULL;
    if (kv->type != VET_GGUF_STRING) {
        wrong_type(g, kv, "string", err);
        return NULL;
    }
    if (memchr(kv->data, 0, (size_t)kv->n)) {
        vet_errf(err, "%s: metadata key %s holds a NUL byte", g->path, key);
        return NULL;
    }
    char *s = malloc((size_t)kv->n + 1);
    if (!s) {
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    memcpy(s, kv->data, (size_t)kv->n);
    s[kv->n] = 0;
    return s;
}

int vet_gguf_get_array(const vet_gguf *g, const char *key, uint32_t elem_type, uint64_t *n, vet_err *err) {
    const vet_gguf_kv *kv = present(g, key, err);
    if (!kv) return -1;
    int ok = kv->type == VET_GGUF_ARRAY &&
             (elem_type == VET_GGUF_I64 ? is_int(kv->arr_type)
              : elem_type == VET_GGUF_F32 ? kv->arr_type == VET_GGUF_F32 || kv->arr_type == VET_GGUF_F64
                                          : kv->arr_type == elem_type);
    if (!ok) {
        const char *want = elem_type == VET_GGUF_I64 ? "an array of integers"
                         : elem_type == VET_GGUF_F32 ? "an array of floats"
                         : elem_type == VET_GGUF_STRING ? "an array of strings" : "an array of another type";
        return wrong_type(g, kv, want, err);
    }
    *n = kv->n;
    return 0;
}

int64_t vet_gguf_array_int(const vet_gguf_kv *kv, uint64_t i) {
    int too_big;
    if (kv->type != VET_GGUF_ARRAY || !is_int(kv->arr_type) || i >= kv->n) return 0;
    return load_int(kv->arr_type, kv->data + i * gguf_scalar_size(kv->arr_type), &too_big);
}

double vet_gguf_array_float(const vet_gguf_kv *kv, uint64_t i) {
    if (kv->type != VET_GGUF_ARRAY || i >= kv->n) return 0;
    if (kv->arr_type == VET_GGUF_F32 || kv->arr_type == VET_GGUF_F64)
        return load_float(kv->arr_type, kv->data + i * gguf_scalar_size(kv->arr_type));
    return (double)vet_gguf_array_int(kv, i);
}

const char *vet_gguf_array_str(const vet_gguf *g, const vet_gguf_kv *kv, uint64_t i, uint64_t *len) {
    size_t k = (size_t)(kv - g->kv);
    if (k >= g->n_kv || kv->type != VET_GGUF_ARRAY || kv->arr_type != VET_GGUF_STRING || i >= kv->n) return NULL;
    const uint8_t *p = kv->data + g->str_off[k][i];
    *len = load_le(p, 8);
    return (const char *)p + 8;
}
