// gguf.c — opening a GGUF file: map it, then check every part before anything is handed out
// (see gguf.h for the layout). The parse walks a cursor over the mapping; every read is
// checked against the bytes left, so a truncated or hostile file stops with a message naming
// the part being read and its offset.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/gguf_impl.h"

typedef struct {
    const vet_gguf *g;
    size_t off;
} cursor;

// "path: at byte N: <what is wrong>" — every parse error says where in the file it happened.
__attribute__((format(printf, 3, 4))) static int fail_at(const cursor *c, vet_err *err, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vet_errf(err, "%s: at byte %zu: %s", c->g->path, c->off, msg);
}

static int need(cursor *c, size_t n, const char *what, vet_err *err) {
    if (n > c->g->size - c->off)
        return fail_at(c, err, "the file ends inside %s (%zu bytes needed, %zu left): truncated?", what, n,
                       c->g->size - c->off);
    return 0;
}

static int read_u32(cursor *c, uint32_t *v, const char *what, vet_err *err) {
    if (need(c, 4, what, err)) return -1;
    const uint8_t *p = c->g->map + c->off;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    c->off += 4;
    return 0;
}

static int read_u64(cursor *c, uint64_t *v, const char *what, vet_err *err) {
    if (need(c, 8, what, err)) return -1;
    const uint8_t *p = c->g->map + c->off;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = x << 8 | p[i];
    *v = x;
    c->off += 8;
    return 0;
}

// A string whose length is at most max; *s points into the mapping.
static int read_str(cursor *c, const uint8_t **s, uint64_t *len, uint64_t max, const char *what, vet_err *err) {
    if (read_u64(c, len, what, err)) return -1;
    if (*len > max) return fail_at(c, err, "%s is %llu bytes long, more than the %llu vet accepts: corrupt?", what,
                                   (unsigned long long)*len, (unsigned long long)max);
    if (need(c, (size_t)*len, what, err)) return -1;
    *s = c->g->map + c->off;
    c->off += (size_t)*len;
    return 0;
}

// A NUL-terminated copy of a name (a key or a tensor name), refused when it holds a NUL.
static char *read_name(cursor *c, const char *what, vet_err *err) {
    const uint8_t *s = NULL;
    uint64_t len = 0;
    if (read_str(c, &s, &len, VET_GGUF_MAX_NAME, what, err)) return NULL;
    if (len == 0 || memchr(s, 0, (size_t)len)) {
        fail_at(c, err, "%s is empty or holds a NUL byte", what);
        return NULL;
    }
    char *name = malloc((size_t)len + 1);
    if (!name) {
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    memcpy(name, s, (size_t)len);
    name[len] = 0;
    return name;
}

// Skips the elements of an array of type t (not an array: nested arrays are refused), keeping
// the offset of each string of a string array in *offs.
static int skip_array(cursor *c, vet_gguf_kv *kv, uint64_t **offs, vet_err *err) {
    if (kv->arr_type == VET_GGUF_STRING) {
        // Each string takes at least its 8-byte length: bounds the count before allocating.
        if (kv->n > (c->g->size - c->off) / 8) return fail_at(c, err, "%s: array of %llu strings cannot fit in the file",
                                                             kv->key, (unsigned long long)kv->n);
        uint64_t *o = malloc((size_t)(kv->n ? kv->n : 1) * sizeof *o);
        if (!o) return vet_err_nomem(err, "out of memory");
        *offs = o;
        for (uint64_t i = 0; i < kv->n; i++) {
            const uint8_t *s;
            uint64_t len;
            o[i] = c->off - (size_t)(kv->data - c->g->map);
            if (read_str(c, &s, &len, VET_GGUF_MAX_STRING, kv->key, err)) return -1;
        }
        return 0;
    }
    size_t es = gguf_scalar_size(kv->arr_type);
    if (es == 0) return fail_at(c, err, "%s: an array of %s, which GGUF metadata vet reads never holds", kv->key,
                                vet_gguf_type_name(kv->arr_type));
    if (kv->n > (c->g->size - c->off) / es)
        return fail_at(c, err, "%s: array of %llu %s cannot fit in the file: truncated?", kv->key,
                       (unsigned long long)kv->n, vet_gguf_type_name(kv->arr_type));
    c->off += (size_t)kv->n * es;
    return 0;
}

static int read_value(cursor *c, vet_gguf_kv *kv, uint64_t **offs, vet_err *err) {
    if (read_u32(c, &kv->type, kv->key, err)) return -1;
    if (kv->type == VET_GGUF_STRING) {
        if (read_str(c, &kv->data, &kv->n, VET_GGUF_MAX_STRING, kv->key, err)) return -1;
        return 0;
    }
    if (kv->type == VET_GGUF_ARRAY) {
        if (read_u32(c, &kv->arr_type, kv->key, err) || read_u64(c, &kv->n, kv->key, err)) return -1;
        kv->data = c->g->map + c->off;
        return skip_array(c, kv, offs, err);
    }
    size_t es = gguf_scalar_size(kv->type);
    if (es == 0) return fail_at(c, err, "%s has value type %u, which is not a GGUF type", kv->key, kv->type);
    if (need(c, es, kv->key, err)) return -1;
    kv->data = c->g->map + c->off;
    c->off += es;
    if (kv->type == VET_GGUF_BOOL && kv->data[0] > 1)
        return fail_at(c, err, "%s is a bool holding %u (0 or 1 expected)", kv->key, kv->data[0]);
    return 0;
}

static int read_kvs(cursor *c, uint64_t n_kv, vet_err *err) {
    vet_gguf *g = (vet_gguf *)c->g;
    if (n_kv > VET_GGUF_MAX_KV) return fail_at(c, err, "header says %llu metadata keys, more than the %d vet accepts: corrupt?",
                                               (unsigned long long)n_kv, VET_GGUF_MAX_KV);
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->str_off = calloc(n_kv ? n_kv : 1, sizeof *g->str_off);
    if (!g->kv || !g->str_off) return vet_err_nomem(err, "out of memory");
    for (uint64_t i = 0; i < n_kv; i++) {
        vet_gguf_kv *kv = &g->kv[i];
        char *key = read_name(c, "a metadata key", err);
        if (!key) return -1;
        long id = vet_strtab_intern(&g->kv_names, key);
        free(key);
        if (id < 0) return vet_err_nomem(err, "out of memory");
        kv->key = g->kv_names.str[id];
        g->n_kv = i + 1;
        if ((size_t)id != i) return fail_at(c, err, "metadata key %s appears twice", kv->key);
        if (read_value(c, kv, &g->str_off[i], err)) return -1;
    }
    return 0;
}

static int read_tensor_info(cursor *c, vet_gguf_tensor *t, uint64_t *offset, vet_err *err) {
    uint32_t nd, type;
    if (read_u32(c, &nd, t->name, err)) return -1;
    if (nd < 1 || nd > VET_GGUF_MAX_DIMS)
        return fail_at(c, err, "tensor %s has %u dimensions (1 to %d expected)", t->name, nd, VET_GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    t->n_elems = 1;
    for (int d = 0; d < VET_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t ne;
        if (read_u64(c, &ne, t->name, err)) return -1;
        if (ne == 0 || ne > ((uint64_t)1 << 40) || (uint64_t)t->n_elems > ((uint64_t)1 << 46) / ne)
            return fail_at(c, err, "tensor %s has a dimension of %llu: corrupt?", t->name, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        t->n_elems *= (int64_t)ne;
    }
    if (read_u32(c, &type, t->name, err) || read_u64(c, offset, t->name, err)) return -1;
    t->type = type;
    vet_ggml_type_info ti = vet_ggml_type_get(type);
    if (ti.block_elems == 0)
        return fail_at(c, err, "tensor %s has type %s, which vet does not read (it reads F32, F16, BF16, Q8_0, "
                               "Q4_0, Q4_1, Q5_0, Q5_1 and Q2_K to Q6_K: convert the model to one)", t->name, ti.name);
    size_t row = vet_ggml_row_bytes(type, t->ne[0]);
    if (row == 0) return fail_at(c, err, "tensor %s: a row of %lld elements is not a whole number of %s blocks of %d",
                                 t->name, (long long)t->ne[0], ti.name, ti.block_elems);
    t->nbytes = row * (size_t)(t->n_elems / t->ne[0]);
    return 0;
}

static int by_offset(const void *a, const void *b) {
    const vet_gguf_tensor *x = *(vet_gguf_tensor *const *)a, *y = *(vet_gguf_tensor *const *)b;
    return (x->data > y->data) - (x->data < y->data);
}

// Tensors may come in any order in the file, but none may overlap another.
static int check_overlaps(vet_gguf *g, vet_err *err) {
    vet_gguf_tensor **s = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *s);
    if (!s) return vet_err_nomem(err, "out of memory");
    for (size_t i = 0; i < g->n_tensors; i++) s[i] = &g->tensors[i];
    qsort(s, g->n_tensors, sizeof *s, by_offset);
    int rc = 0;
    for (size_t i = 1; i < g->n_tensors && !rc; i++)
        if (s[i - 1]->data + s[i - 1]->nbytes > s[i]->data)
            rc = vet_errf(err, "%s: the data of tensors %s and %s overlap: corrupt file", g->path, s[i - 1]->name,
                          s[i]->name);
    free(s);
    return rc;
}

static int read_alignment(vet_gguf *g, vet_err *err) {
    g->alignment = VET_GGUF_DEFAULT_ALIGNMENT;
    if (!vet_gguf_has(g, "general.alignment")) return 0;
    uint32_t a;
    if (vet_gguf_get_u32(g, "general.alignment", &a, err)) return vet_err_prefix(err, "%s", g->path);
    if (a == 0 || (a & (a - 1)) || a > 65536)
        return vet_errf(err, "%s: general.alignment is %u (a power of two up to 65536 expected)", g->path, a);
    g->alignment = a;
    return 0;
}

static int read_tensors(cursor *c, uint64_t n_t, vet_err *err) {
    vet_gguf *g = (vet_gguf *)c->g;
    if (n_t > VET_GGUF_MAX_TENSORS) return fail_at(c, err, "header says %llu tensors, more than the %d vet accepts: corrupt?",
                                                   (unsigned long long)n_t, VET_GGUF_MAX_TENSORS);
    g->tensors = calloc(n_t ? n_t : 1, sizeof *g->tensors);
    uint64_t *offs = malloc((n_t ? n_t : 1) * sizeof *offs);
    int rc = g->tensors && offs ? 0 : vet_err_nomem(err, "out of memory");
    for (uint64_t i = 0; i < n_t && !rc; i++) {
        vet_gguf_tensor *t = &g->tensors[i];
        char *name = read_name(c, "a tensor name", err);
        if (!name) { rc = -1; break; }
        long id = vet_strtab_intern(&g->tensor_names, name);
        free(name);
        if (id < 0) { rc = vet_err_nomem(err, "out of memory"); break; }
        t->name = g->tensor_names.str[id];
        g->n_tensors = i + 1;
        if ((size_t)id != i) rc = fail_at(c, err, "tensor %s appears twice", t->name);
        else rc = read_tensor_info(c, t, &offs[i], err);
    }
    if (!rc) rc = read_alignment(g, err);
    // The data section starts at the next multiple of the alignment after the tensor infos.
    size_t start = rc ? 0 : (c->off + g->alignment - 1) / g->alignment * g->alignment;
    if (!rc && n_t && start > g->size) rc = fail_at(c, err, "the file ends before its tensor data: truncated?");
    for (uint64_t i = 0; i < n_t && !rc; i++) {
        vet_gguf_tensor *t = &g->tensors[i];
        if (offs[i] % g->alignment)
            rc = vet_errf(err, "%s: tensor %s starts at offset %llu, not a multiple of the alignment %zu", g->path,
                          t->name, (unsigned long long)offs[i], g->alignment);
        else if (offs[i] > g->size - start || t->nbytes > g->size - start - offs[i])
            rc = vet_errf(err, "%s: tensor %s (%s, %zu bytes at offset %llu) lies beyond the end of the file "
                              "(%zu bytes of tensor data): truncated?", g->path, t->name,
                          vet_ggml_type_get(t->type).name, t->nbytes, (unsigned long long)offs[i], g->size - start);
        else t->data = g->map + start + offs[i];
    }
    free(offs);
    return rc ? rc : check_overlaps(g, err);
}

static int map_file(vet_gguf *g, const char *path, vet_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vet_err_io(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = fstat(fd, &st) ? vet_err_io(err, "%s: cannot stat: %s", path, strerror(errno))
           : !S_ISREG(st.st_mode) ? vet_err_io(err, "%s: not a regular file", path)
           : st.st_size < 24 ? vet_errf(err, "%s: %lld bytes, too short for a GGUF header (24 bytes)", path,
                                        (long long)st.st_size)
           : 0;
    if (!rc) {
        g->size = (size_t)st.st_size;
        void *m = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) rc = vet_err_io(err, "%s: cannot mmap: %s", path, strerror(errno));
        else g->map = m;
    }
    close(fd);
    return rc;
}

static int read_header(cursor *c, uint64_t *n_t, uint64_t *n_kv, vet_err *err) {
    vet_gguf *g = (vet_gguf *)c->g;
    uint32_t magic;
    if (read_u32(c, &magic, "the magic", err)) return -1;
    if (magic != VET_GGUF_MAGIC)
        return vet_errf(err, "%s: not a GGUF file (it does not begin with \"GGUF\")", g->path);
    if (read_u32(c, &g->version, "the version", err)) return -1;
    if (g->version != 2 && g->version != 3)
        return vet_errf(err, "%s: GGUF version %u; vet reads versions 2 and 3 (re-convert the model with a current "
                             "llama.cpp)", g->path, g->version);
    return read_u64(c, n_t, "the tensor count", err) || read_u64(c, n_kv, "the metadata count", err) ? -1 : 0;
}

vet_gguf *vet_gguf_open(const char *path, vet_err *err) {
    vet_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    cursor c = {g, 0};
    uint64_t n_t = 0, n_kv = 0;
    if (map_file(g, path, err) || read_header(&c, &n_t, &n_kv, err) || read_kvs(&c, n_kv, err) ||
        read_tensors(&c, n_t, err)) {
        vet_gguf_close(g);
        return NULL;
    }
    return g;
}

void vet_gguf_close(vet_gguf *g) {
    if (!g) return;
    if (g->map) munmap((void *)g->map, g->size);
    for (size_t i = 0; g->str_off && i < g->n_kv; i++) free(g->str_off[i]);
    free(g->str_off);
    free(g->kv);
    free(g->tensors);
    vet_strtab_free(&g->kv_names);
    vet_strtab_free(&g->tensor_names);
    free(g->path);
    free(g);
}
