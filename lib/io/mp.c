// mp.c — see mp.h.
#include "io/mp.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

// --- packing ---------------------------------------------------------------------------

void mp_strn(msgpack_packer *pk, const char *s, size_t n) {
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}
void mp_str(msgpack_packer *pk, const char *s) { mp_strn(pk, s ? s : "", s ? strlen(s) : 0); }
void mp_key(msgpack_packer *pk, const char *key) { mp_str(pk, key); }
void mp_kv_str(msgpack_packer *pk, const char *key, const char *val) { mp_key(pk, key); mp_str(pk, val); }
void mp_kv_strn(msgpack_packer *pk, const char *key, const char *val, size_t n) {
    mp_key(pk, key);
    mp_strn(pk, val, n);
}
void mp_path(msgpack_packer *pk, const char *path) {
    path = path ? path : "";
    char *shown = vet_utf8_valid(path, strlen(path), NULL) ? NULL : vet_utf8_repair(path);
    mp_str(pk, shown ? shown : path);
    free(shown);
}
void mp_kv_path(msgpack_packer *pk, const char *key, const char *path) {
    mp_key(pk, key);
    mp_path(pk, path);
}
void mp_kv_int(msgpack_packer *pk, const char *key, int64_t val) { mp_key(pk, key); msgpack_pack_int64(pk, val); }
void mp_kv_double(msgpack_packer *pk, const char *key, double val) { mp_key(pk, key); msgpack_pack_double(pk, val); }
void mp_kv_bool(msgpack_packer *pk, const char *key, bool val) {
    mp_key(pk, key);
    if (val) msgpack_pack_true(pk); else msgpack_pack_false(pk);
}
void mp_kv_i32_array(msgpack_packer *pk, const char *key, const int32_t *v, size_t n) {
    mp_key(pk, key);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) msgpack_pack_int32(pk, v[i]);
}
void mp_kv_str_array(msgpack_packer *pk, const char *key, char *const *v, size_t n) {
    mp_key(pk, key);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) mp_str(pk, v[i]);
}

// --- reading ---------------------------------------------------------------------------

bool mp_str_eq(const msgpack_object *o, const char *s) {
    size_t n = strlen(s);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n && memcmp(o->via.str.ptr, s, n) == 0;
}

const msgpack_object *mp_get(const msgpack_object *map, const char *key) {
    if (!map || map->type != MSGPACK_OBJECT_MAP) return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (mp_str_eq(&map->via.map.ptr[i].key, key)) return &map->via.map.ptr[i].val;
    return NULL;
}

static const msgpack_object *need(const msgpack_object *map, const char *key, vet_err *err) {
    const msgpack_object *v = mp_get(map, key);
    if (!v) vet_errf(err, "missing field \"%s\"", key);
    return v;
}

int mp_get_str(const msgpack_object *map, const char *key, const char **s, size_t *len, vet_err *err) {
    const msgpack_object *v = need(map, key, err);
    if (!v) return -1;
    if (v->type != MSGPACK_OBJECT_STR) return vet_errf(err, "field \"%s\" is not a string", key);
    *s = v->via.str.ptr;
    *len = v->via.str.size;
    return 0;
}

char *mp_get_strdup(const msgpack_object *map, const char *key, vet_err *err) {
    const char *s = NULL;
    size_t n = 0;
    if (mp_get_str(map, key, &s, &n, err) < 0) return NULL;
    char *out = malloc(n + 1);
    if (!out) { vet_err_nomem(err, "out of memory"); return NULL; }
    memcpy(out, s, n);
    out[n] = 0;
    return out;
}

int mp_get_int(const msgpack_object *map, const char *key, int64_t *out, vet_err *err) {
    const msgpack_object *v = need(map, key, err);
    if (!v) return -1;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (v->via.u64 > INT64_MAX) return vet_errf(err, "field \"%s\" is out of range", key);
        *out = (int64_t)v->via.u64;
    } else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = v->via.i64;
    } else {
        return vet_errf(err, "field \"%s\" is not an integer", key);
    }
    return 0;
}

int mp_get_double(const msgpack_object *map, const char *key, double *out, vet_err *err) {
    const msgpack_object *v = need(map, key, err);
    if (!v) return -1;
    switch (v->type) {
    case MSGPACK_OBJECT_FLOAT32: case MSGPACK_OBJECT_FLOAT64: *out = v->via.f64; return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)v->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)v->via.i64; return 0;
    default: return vet_errf(err, "field \"%s\" is not a number", key);
    }
}

int mp_get_i32_array(const msgpack_object *map, const char *key, int32_t **out, size_t *n, vet_err *err) {
    *out = NULL;
    *n = 0;
    const msgpack_object *v = need(map, key, err);
    if (!v) return -1;
    if (v->type != MSGPACK_OBJECT_ARRAY) return vet_errf(err, "field \"%s\" is not an array", key);
    uint32_t len = v->via.array.size;
    if (len == 0) return 0;
    int32_t *a = malloc(len * sizeof *a);
    if (!a) return vet_err_nomem(err, "out of memory");
    for (uint32_t i = 0; i < len; i++) {
        const msgpack_object *e = &v->via.array.ptr[i];
        int64_t x;
        if (e->type == MSGPACK_OBJECT_POSITIVE_INTEGER && e->via.u64 <= INT32_MAX) x = (int64_t)e->via.u64;
        else if (e->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && e->via.i64 >= INT32_MIN) x = e->via.i64;
        else {
            free(a);
            return vet_errf(err, "field \"%s\"[%u] is not a 32-bit integer", key, i);
        }
        a[i] = (int32_t)x;
    }
    *out = a;
    *n = len;
    return 0;
}

void mp_free_strs(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

int mp_get_str_array(const msgpack_object *map, const char *key, char ***out, size_t *n, vet_err *err) {
    *out = NULL;
    *n = 0;
    const msgpack_object *v = need(map, key, err);
    if (!v) return -1;
    if (v->type != MSGPACK_OBJECT_ARRAY) return vet_errf(err, "field \"%s\" is not an array", key);
    uint32_t len = v->via.array.size;
    char **a = calloc(len ? len : 1, sizeof *a);
    if (!a) return vet_err_nomem(err, "out of memory");
    for (uint32_t i = 0; i < len; i++) {
        const msgpack_object *e = &v->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_STR) {
            mp_free_strs(a, i);
            return vet_errf(err, "field \"%s\"[%u] is not a string", key, i);
        }
        a[i] = malloc(e->via.str.size + 1);
        if (!a[i]) { mp_free_strs(a, i); return vet_err_nomem(err, "out of memory"); }
        memcpy(a[i], e->via.str.ptr, e->via.str.size);
        a[i][e->via.str.size] = 0;
    }
    *out = a;
    *n = len;
    return 0;
}

// --- JSON ------------------------------------------------------------------------------

// A JSON string literal. Bytes that are not well-formed UTF-8 become U+FFFD (base/utf8.h), so the
// output is always valid JSON and reads as Python's errors="replace" shows the bytes.
static void json_string(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t bad, len = vet_utf8_seq(s + i, n - i, &bad);
            if (len) fwrite(s + i, 1, len, f);
            else fputs("\\ufffd", f);
            i += len ? len : bad;
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
        i++;
    }
    fputc('"', f);
}

// x with the fewest significant digits (15 to 17) that read back as the same double, the number
// vet-eval scores (%.9g cut p = 0.3732278091502738 to 0.373227809, below the threshold vet-eval
// --fit-threshold writes from that p). A float32 is shown as the double it widens to, as read.
static void print_number(FILE *f, double x) {
    char buf[40];
    for (int prec = 15;; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (prec == 17 || strtod(buf, NULL) == x) break;
    }
    fputs(buf, f);
}

int mp_print_json(FILE *f, const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: fputs("null", f); break;
    case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", f); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(f, "%" PRIu64, o->via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(f, "%" PRId64, o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32: case MSGPACK_OBJECT_FLOAT64:
        if (isfinite(o->via.f64)) print_number(f, o->via.f64);
        else fputs("null", f);  // JSON has no NaN/Inf
        break;
    case MSGPACK_OBJECT_STR: json_string(f, o->via.str.ptr, o->via.str.size); break;
    case MSGPACK_OBJECT_BIN:  // bytes: shown as a hex string
        fputc('"', f);
        for (uint32_t i = 0; i < o->via.bin.size; i++) fprintf(f, "%02x", (unsigned char)o->via.bin.ptr[i]);
        fputc('"', f);
        break;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', f);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i) fputc(',', f);
            mp_print_json(f, &o->via.array.ptr[i]);
        }
        fputc(']', f);
        break;
    case MSGPACK_OBJECT_MAP:
        fputc('{', f);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i) fputc(',', f);
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR) json_string(f, k->via.str.ptr, k->via.str.size);
            else { fputc('"', f); mp_print_json(f, k); fputc('"', f); }  // JSON keys are strings
            fputc(':', f);
            mp_print_json(f, &o->via.map.ptr[i].val);
        }
        fputc('}', f);
        break;
    default: fputs("null", f); break;  // extension types: vet writes none
    }
    return ferror(f) ? -1 : 0;
}
