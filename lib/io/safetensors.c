// safetensors.c — see safetensors.h. Reader: mmap + jansson + checks; writer: atomic file.
#include "io/safetensors.h"
#include "base/finite.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/half.h"
#include "io/json_file.h"

// ---------------------------------------------------------------------------------------
// dtypes

static const struct { const char *name; size_t size; } dtypes[] = {
    [VET_DT_F32] = {"F32", 4}, [VET_DT_F16] = {"F16", 2}, [VET_DT_BF16] = {"BF16", 2},
    [VET_DT_I32] = {"I32", 4}, [VET_DT_I64] = {"I64", 8}, [VET_DT_U8] = {"U8", 1}, [VET_DT_I8] = {"I8", 1},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

size_t vet_dtype_size(vet_dtype dt) { return (int)dt >= 0 && (int)dt < N_DTYPES ? dtypes[dt].size : 0; }
const char *vet_dtype_name(vet_dtype dt) { return (int)dt >= 0 && (int)dt < N_DTYPES ? dtypes[dt].name : "?"; }
int vet_dtype_parse(const char *name) {
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(name, dtypes[i].name) == 0) return i;
    return -1;
}

char *vet_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = 0;
    k += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

// numel of a shape, or -1 when a dim is negative or the product overflows int64.
static int64_t shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

int64_t vet_tensor_numel(const vet_tensor_ref *r) { return shape_numel(r->ndim, r->shape); }

// ---------------------------------------------------------------------------------------
// Reader

typedef struct {
    char *path;
    void *map;
    size_t size;
} st_file;

struct vet_tensors {
    st_file *files;
    int n_files;
    vet_tensor_ref *refs;   // sorted by name once opening is done
    size_t n, cap;
    json_t *meta;           // "__metadata__" of the first file (or NULL)
};

void vet_tensors_close(vet_tensors *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) free(t->refs[i].name);
    free(t->refs);
    for (int i = 0; i < t->n_files; i++) {
        if (t->files[i].map) munmap(t->files[i].map, t->files[i].size);
        free(t->files[i].path);
    }
    free(t->files);
    json_decref(t->meta);
    free(t);
}

static int add_ref(vet_tensors *t, const vet_tensor_ref *r, vet_err *err) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        vet_tensor_ref *p = realloc(t->refs, cap * sizeof *p);
        if (!p) return vet_err_nomem(err, "out of memory for the tensor table");
        t->refs = p;
        t->cap = cap;
    }
    t->refs[t->n] = *r;
    t->refs[t->n].name = strdup(r->name);
    if (!t->refs[t->n].name) return vet_err_nomem(err, "out of memory for the tensor table");
    t->n++;
    return 0;
}

typedef struct { uint64_t begin, end; const char *name; } span;
static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

// Reads one entry of the header: {"dtype": .., "shape": [..], "data_offsets": [b, e]}.
static int parse_entry(const char *path, const char *name, json_t *v, const unsigned char *data,
                       uint64_t data_size, vet_tensor_ref *r, span *sp, vet_err *err) {
    if (!json_is_object(v)) return vet_errf(err, "%s: tensor '%s': header entry is not a JSON object", path, name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"), *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd)) return vet_errf(err, "%s: tensor '%s': no \"dtype\" string", path, name);
    int dt = vet_dtype_parse(json_string_value(jd));
    if (dt < 0)
        return vet_errf(err, "%s: tensor '%s': unknown dtype '%s' (vet reads F32, F16, BF16, I32, I64, U8, I8)",
                        path, name, json_string_value(jd));
    if (!json_is_array(js)) return vet_errf(err, "%s: tensor '%s': no \"shape\" array", path, name);
    if (json_array_size(js) > VET_ST_MAX_DIMS)
        return vet_errf(err, "%s: tensor '%s': %zu dims (vet reads at most %d)", path, name, json_array_size(js),
                        VET_ST_MAX_DIMS);
    memset(r, 0, sizeof *r);
    r->dtype = (vet_dtype)dt;
    r->ndim = (int)json_array_size(js);
    for (int i = 0; i < r->ndim; i++) {
        json_t *d = json_array_get(js, (size_t)i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return vet_errf(err, "%s: tensor '%s': shape entry %d is not a non-negative integer", path, name, i);
        r->shape[i] = json_integer_value(d);
    }
    char sh[160];
    vet_shape_str(sh, sizeof sh, r->ndim, r->shape);
    int64_t numel = shape_numel(r->ndim, r->shape);
    if (numel < 0 || (uint64_t)numel > UINT64_MAX / 8)
        return vet_errf(err, "%s: tensor '%s': shape %s is absurdly large", path, name, sh);
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)))
        return vet_errf(err, "%s: tensor '%s': \"data_offsets\" is not an array of two integers", path, name);
    json_int_t b = json_integer_value(json_array_get(jo, 0)), e = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || e < 0)
        return vet_errf(err, "%s: tensor '%s': negative data_offsets [%lld,%lld]", path, name, (long long)b, (long long)e);
    if (e < b)
        return vet_errf(err, "%s: tensor '%s': data_offsets [%lld,%lld] end before they begin", path, name,
                        (long long)b, (long long)e);
    if ((uint64_t)e > data_size)
        return vet_errf(err, "%s: tensor '%s': data_offsets [%lld,%lld] beyond the data section (%" PRIu64 " bytes)",
                        path, name, (long long)b, (long long)e, data_size);
    uint64_t need = (uint64_t)numel * dtypes[dt].size;
    if ((uint64_t)(e - b) != need)
        return vet_errf(err, "%s: tensor '%s': dtype %s and shape %s need %" PRIu64 " bytes but data_offsets [%lld,%lld] hold %lld",
                        path, name, dtypes[dt].name, sh, need, (long long)b, (long long)e, (long long)(e - b));
    r->data = data + b;
    r->nbytes = (size_t)need;
    sp->begin = (uint64_t)b;
    sp->end = (uint64_t)e;
    sp->name = name;
    return 0;
}

// Maps one file and appends its tensors to t (unsorted). Keeps the first file's metadata.
static int load_file(vet_tensors *t, const char *path, vet_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vet_err_io(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return vet_err_io(err, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return vet_errf(err, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        return vet_errf(err, "%s: file is %zu bytes, shorter than the 8-byte header length of a safetensors file", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return vet_err_io(err, "%s: cannot mmap: %s", path, strerror(errno));
    st_file *fs = realloc(t->files, (size_t)(t->n_files + 1) * sizeof *fs);
    if (!fs) {
        munmap(map, size);
        return vet_err_nomem(err, "out of memory");
    }
    t->files = fs;
    st_file *f = &t->files[t->n_files++];
    f->map = map;
    f->size = size;
    f->path = strdup(path);
    if (!f->path) return vet_err_nomem(err, "out of memory");
    path = f->path;   // refs point at this copy

    const unsigned char *base = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | base[i];   // little-endian u64
    if (hlen > VET_ST_MAX_HEADER)
        return vet_errf(err, "%s: header length %" PRIu64 " is absurd (over %u MB): not a safetensors file, or corrupt",
                        path, hlen, VET_ST_MAX_HEADER >> 20);
    if (hlen > size - 8)
        return vet_errf(err, "%s: header length %" PRIu64 " runs beyond the end of the file (%zu bytes): truncated?",
                        path, hlen, size);
    json_error_t je;
    json_t *root = json_loadb((const char *)base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (strstr(je.text, "duplicate"))
            return vet_errf(err, "%s: header names a tensor twice (%s)", path, je.text);
        return vet_errf(err, "%s: header is not valid JSON: %s (at byte %d)", path, je.text, je.position);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return vet_errf(err, "%s: header is not a JSON object", path);
    }
    const unsigned char *data = base + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;
    size_t n_entries = json_object_size(root);
    span *spans = calloc(n_entries ? n_entries : 1, sizeof *spans);
    if (!spans) {
        json_decref(root);
        return vet_err_nomem(err, "out of memory");
    }
    size_t n_spans = 0;
    int rc = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v) && !json_is_null(v)) {
                rc = vet_errf(err, "%s: \"__metadata__\" is not a JSON object", path);
                break;
            }
            if (!t->meta && json_is_object(v)) t->meta = json_incref(v);
            continue;
        }
        vet_tensor_ref r;
        if ((rc = parse_entry(path, key, v, data, data_size, &r, &spans[n_spans], err)) != 0) break;
        r.name = (char *)key;
        r.file = path;
        if ((rc = add_ref(t, &r, err)) != 0) break;
        n_spans++;
    }
    if (rc == 0) {
        // Two tensors may not share bytes (empty tensors share nothing).
        qsort(spans, n_spans, sizeof *spans, cmp_span);
        const span *prev = NULL;
        for (size_t i = 0; i < n_spans; i++) {
            if (spans[i].end == spans[i].begin) continue;
            if (prev && spans[i].begin < prev->end) {
                rc = vet_errf(err, "%s: tensors '%s' [%" PRIu64 ",%" PRIu64 "] and '%s' [%" PRIu64 ",%" PRIu64 "] overlap",
                              path, prev->name, prev->begin, prev->end, spans[i].name, spans[i].begin, spans[i].end);
                break;
            }
            prev = &spans[i];
        }
    }
    free(spans);
    json_decref(root);   // the names were copied by add_ref
    return rc;
}

static int cmp_ref(const void *a, const void *b) {
    return strcmp(((const vet_tensor_ref *)a)->name, ((const vet_tensor_ref *)b)->name);
}

// Sorts by name and refuses a name held twice (possible across shards).
static int finish(vet_tensors *t, vet_err *err) {
    if (t->n > 1) qsort(t->refs, t->n, sizeof *t->refs, cmp_ref);   // refs is NULL in a file with no tensors
    for (size_t i = 1; i < t->n; i++)
        if (strcmp(t->refs[i - 1].name, t->refs[i].name) == 0)
            return vet_errf(err, "tensor '%s' is in both %s and %s", t->refs[i].name, t->refs[i - 1].file, t->refs[i].file);
    return 0;
}

vet_tensors *vet_tensors_open_file(const char *path, vet_err *err) {
    vet_tensors *t = calloc(1, sizeof *t);
    if (!t) {
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    if (load_file(t, path, err) != 0 || finish(t, err) != 0) {
        vet_tensors_close(t);
        return NULL;
    }
    return t;
}

static int file_exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

// Opens the shards an index names and checks that each named tensor is where the index says.
static vet_tensors *open_index(const char *dir, const char *index, vet_err *err) {
    json_t *root = vet_json_load(index, "shard index", JSON_REJECT_DUPLICATES, err);
    if (!root) return NULL;
    vet_tensors *t = calloc(1, sizeof *t);
    char **shards = NULL;
    size_t n_shards = 0;
    json_t *wm = json_object_get(root, "weight_map");
    const char *name;
    json_t *v;
    char path[4096];
    if (!t) {
        vet_err_nomem(err, "out of memory");
        goto fail;
    }
    if (!json_is_object(wm)) {
        vet_errf(err, "%s: no \"weight_map\" object", index);
        goto fail;
    }
    shards = calloc(json_object_size(wm) + 1, sizeof *shards);
    if (!shards) {
        vet_err_nomem(err, "out of memory");
        goto fail;
    }
    json_object_foreach(wm, name, v) {   // the distinct shard files, in first-seen order
        if (!json_is_string(v)) {
            vet_errf(err, "%s: tensor '%s': shard is not a string", index, name);
            goto fail;
        }
        const char *s = json_string_value(v);
        if (!*s || strchr(s, '/')) {
            vet_errf(err, "%s: tensor '%s': shard '%s' is not a plain file name", index, name, s);
            goto fail;
        }
        size_t k = 0;
        while (k < n_shards && strcmp(shards[k], s) != 0) k++;
        if (k < n_shards) continue;
        snprintf(path, sizeof path, "%s/%s", dir, s);
        if (!file_exists(path)) {
            vet_err_io(err, "%s: shard '%s' (holding tensor '%s') is missing: %s: %s", index, s, name, path, strerror(errno));
            goto fail;
        }
        shards[n_shards++] = (char *)s;
        if (load_file(t, path, err) != 0) goto fail;
    }
    if (finish(t, err) != 0) goto fail;
    json_object_foreach(wm, name, v) {
        snprintf(path, sizeof path, "%s/%s", dir, json_string_value(v));
        const vet_tensor_ref *r = vet_tensors_find(t, name);
        if (!r || strcmp(r->file, path) != 0) {
            vet_errf(err, "%s: names tensor '%s' in shard '%s', but that shard lacks it%s%s", index, name,
                     json_string_value(v), r ? "; it is in " : "", r ? r->file : "");
            goto fail;
        }
    }
    free(shards);
    json_decref(root);
    return t;
fail:
    free(shards);
    json_decref(root);
    vet_tensors_close(t);
    return NULL;
}

vet_tensors *vet_tensors_open_dir(const char *dir, vet_err *err) {
    struct stat st;
    if (stat(dir, &st) != 0) {
        vet_err_io(err, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    if (S_ISREG(st.st_mode)) return vet_tensors_open_file(dir, err);
    // model.safetensors first, then the index, as transformers looks for them: a folder holding
    // both (a model re-saved unsharded over an old sharded copy) is read as transformers reads it.
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (file_exists(path)) return vet_tensors_open_file(path, err);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (file_exists(path)) return open_index(dir, path, err);
    vet_errf(err, "%s: no model.safetensors or model.safetensors.index.json (a Hugging Face model directory holds "
                  "one; .bin/.pth checkpoints must be converted to safetensors first)", dir);
    return NULL;
}

const vet_tensor_ref *vet_tensors_find(const vet_tensors *t, const char *name) {
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->refs[mid].name, name);
        if (c == 0) return &t->refs[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

size_t vet_tensors_count(const vet_tensors *t) { return t->n; }
const vet_tensor_ref *vet_tensors_at(const vet_tensors *t, size_t i) { return i < t->n ? &t->refs[i] : NULL; }

const char *vet_tensors_meta(const vet_tensors *t, const char *key) {
    json_t *v = t->meta ? json_object_get(t->meta, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int vet_tensor_convert_f32(const vet_tensor_ref *r, int ndim, const int64_t *shape, float *out, vet_err *err) {
    if (!r) return vet_errf(err, "a tensor the model needs is missing from the weights (vet_tensors_find gave NULL)");
    int same = r->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = r->shape[i] == shape[i];
    if (!same) {
        char a[160], b[160];
        return vet_errf(err, "%s: tensor '%s': shape %s, but the model expects %s (config.json and weights disagree?)",
                        r->file, r->name, vet_shape_str(a, sizeof a, r->ndim, r->shape), vet_shape_str(b, sizeof b, ndim, shape));
    }
    int64_t n = vet_tensor_numel(r);
    if (n < 0) return vet_errf(err, "%s: tensor '%s': negative size", r->file, r->name);
    const unsigned char *p = r->data;
    // Elements may be unaligned in the mapping: go through memcpy, which compiles to plain loads.
    switch (r->dtype) {
    case VET_DT_F32: memcpy(out, p, (size_t)n * 4); break;
    case VET_DT_BF16:
#pragma omp parallel for if (n > (1 << 18))
        for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); out[i] = vet_bf16_to_f32(h); }
        break;
    case VET_DT_F16:
#pragma omp parallel for if (n > (1 << 18))
        for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); out[i] = vet_f16_to_f32(h); }
        break;
    case VET_DT_I32:
        for (int64_t i = 0; i < n; i++) { int32_t x; memcpy(&x, p + 4 * i, 4); out[i] = (float)x; }
        break;
    case VET_DT_I64:
        for (int64_t i = 0; i < n; i++) { int64_t x; memcpy(&x, p + 8 * i, 8); out[i] = (float)x; }
        break;
    case VET_DT_U8: for (int64_t i = 0; i < n; i++) out[i] = (float)p[i]; break;
    case VET_DT_I8: for (int64_t i = 0; i < n; i++) out[i] = (float)(int8_t)p[i]; break;
    }
    return 0;
}

int vet_tensor_read_f32(const vet_tensor_ref *r, int ndim, const int64_t *shape, float *out, vet_err *err) {
    if (vet_tensor_convert_f32(r, ndim, shape, out, err) < 0) return -1;
    // A NaN or Inf anywhere in a weight makes every logit NaN downstream: refuse it here, with
    // the tensor's name, instead of generating token 0 for every note.
    int64_t n = vet_tensor_numel(r);
    int64_t bad = vet_first_nonfinite(out, n);
    if (bad >= 0)
        return vet_errf(err, "%s: tensor '%s' holds %s at element %lld: the file is damaged or its training "
                        "diverged (weights must be finite)", r->file, r->name, isnan(out[bad]) ? "NaN" : "Inf",
                        (long long)bad);
    return 0;
}

// ---------------------------------------------------------------------------------------
// Writer

typedef struct {
    char *name;
    vet_dtype dt;
    int ndim;
    int64_t shape[VET_ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
    void *owned;   // freed with the writer
} w_entry;

struct vet_st_writer {
    w_entry *e;
    size_t n, cap;
    json_t *meta;
};

vet_st_writer *vet_st_writer_new(void) {
    vet_st_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->meta = json_object();
    if (!w->meta || json_object_set_new(w->meta, "format", json_string("pt")) != 0) {
        json_decref(w->meta);
        free(w);
        return NULL;
    }
    return w;
}

void vet_st_writer_free(vet_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].owned);
    }
    free(w->e);
    json_decref(w->meta);
    free(w);
}

size_t vet_st_writer_count(const vet_st_writer *w) { return w->n; }
size_t vet_st_writer_data_bytes(const vet_st_writer *w) {
    size_t s = 0;
    for (size_t i = 0; i < w->n; i++) s += w->e[i].nbytes;
    return s;
}

// Checks a new entry and reserves its slot; returns it (NULL + err on failure).
static w_entry *new_entry(vet_st_writer *w, const char *name, vet_dtype dt, int ndim, const int64_t *shape, vet_err *err) {
    if (!name || !*name || strcmp(name, "__metadata__") == 0) {
        vet_errf(err, "safetensors writer: bad tensor name '%s'", name ? name : "(null)");
        return NULL;
    }
    if (vet_dtype_size(dt) == 0) {
        vet_errf(err, "safetensors writer: tensor '%s': unknown dtype %d", name, (int)dt);
        return NULL;
    }
    if (ndim < 0 || ndim > VET_ST_MAX_DIMS || (ndim > 0 && !shape) || shape_numel(ndim, shape) < 0) {
        vet_errf(err, "safetensors writer: tensor '%s': bad shape (ndim %d)", name, ndim);
        return NULL;
    }
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0) {
            vet_errf(err, "safetensors writer: tensor '%s' added twice", name);
            return NULL;
        }
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        w_entry *p = realloc(w->e, cap * sizeof *p);
        if (!p) {
            vet_err_nomem(err, "out of memory");
            return NULL;
        }
        w->e = p;
        w->cap = cap;
    }
    w_entry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (!e->name) {
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    e->dt = dt;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->nbytes = (size_t)shape_numel(ndim, shape) * vet_dtype_size(dt);
    w->n++;
    return e;
}

int vet_st_writer_add(vet_st_writer *w, const char *name, vet_dtype dt, int ndim, const int64_t *shape,
                      const void *data, vet_err *err) {
    w_entry *e = new_entry(w, name, dt, ndim, shape, err);
    if (!e) return -1;
    if (!data && e->nbytes) {
        free(e->name);
        w->n--;
        return vet_errf(err, "safetensors writer: tensor '%s': no data", name);
    }
    e->data = data;
    return 0;
}

int vet_st_writer_add_owned(vet_st_writer *w, const char *name, vet_dtype dt, int ndim, const int64_t *shape,
                            void *data, vet_err *err) {
    if (vet_st_writer_add(w, name, dt, ndim, shape, data, err) != 0) return -1;
    w->e[w->n - 1].owned = data;
    return 0;
}

int vet_st_writer_add_f32_as(vet_st_writer *w, const char *name, vet_dtype dt, int ndim, const int64_t *shape,
                             const float *data, vet_err *err) {
    if (dt != VET_DT_F32 && dt != VET_DT_F16 && dt != VET_DT_BF16)
        return vet_errf(err, "safetensors writer: tensor '%s': fp32 data can be stored as F32, F16 or BF16, not %s",
                        name, vet_dtype_name(dt));
    w_entry *e = new_entry(w, name, dt, ndim, shape, err);
    if (!e) return -1;
    int64_t n = shape_numel(ndim, shape);
    void *buf = malloc(e->nbytes ? e->nbytes : 1);
    if (!buf || (n && !data)) {
        free(buf);
        free(e->name);
        w->n--;
        return vet_err_nomem(err, "safetensors writer: tensor '%s': %s", name, buf ? "no data" : "out of memory");
    }
    if (dt == VET_DT_F32) {
        memcpy(buf, data, e->nbytes);
    } else {
        uint16_t *h = buf;
#pragma omp parallel for if (n > (1 << 18))
        for (int64_t i = 0; i < n; i++) h[i] = dt == VET_DT_BF16 ? vet_f32_to_bf16(data[i]) : vet_f32_to_f16(data[i]);
    }
    e->data = e->owned = buf;
    return 0;
}

int vet_st_writer_meta(vet_st_writer *w, const char *key, const char *val, vet_err *err) {
    if (!key || !val) return vet_errf(err, "safetensors writer: metadata key and value must be strings");
    if (json_object_set_new(w->meta, key, json_string(val)) != 0)
        return vet_errf(err, "safetensors writer: metadata '%s' is not valid UTF-8", key);
    return 0;
}

static int cmp_entry_ptr(const void *a, const void *b) {
    return strcmp((*(const w_entry *const *)a)->name, (*(const w_entry *const *)b)->name);
}

// fsyncs the directory holding path so a rename survives a crash.
static void sync_dir_of(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int vet_st_writer_write(vet_st_writer *w, const char *path, vet_err *err) {
    w_entry **order = malloc((w->n ? w->n : 1) * sizeof *order);
    json_t *root = json_object();
    char *header = NULL;
    FILE *f = NULL;
    int rc = -1;
    if (!order || !root) {
        vet_err_nomem(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < w->n; i++) order[i] = &w->e[i];
    qsort(order, w->n, sizeof *order, cmp_entry_ptr);
    json_object_set(root, "__metadata__", w->meta);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const w_entry *e = order[i];
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++) json_array_append_new(shape, json_integer(e->shape[d]));
        json_t *ent = json_pack("{s:s, s:o, s:[I,I]}", "dtype", vet_dtype_name(e->dt), "shape", shape, "data_offsets",
                                (json_int_t)off, (json_int_t)(off + e->nbytes));
        if (!ent || json_object_set_new(root, e->name, ent) != 0) {
            vet_errf(err, "%s: tensor '%s': cannot build the header (name not valid UTF-8?)", path, e->name);
            goto done;
        }
        off += e->nbytes;
    }
    header = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!header) {
        vet_errf(err, "%s: cannot build the header", path);
        goto done;
    }
    size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
    vet_afile out;
    if (vet_afile_open(&out, path, err) < 0) goto done;
    f = out.f;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (size_t i = 0; ok && i < w->n; i++) ok = order[i]->nbytes == 0 || fwrite(order[i]->data, 1, order[i]->nbytes, f) == order[i]->nbytes;
    f = NULL;
    if (!ok) {
        vet_err_io(err, "%s: write failed: %s (disk full?)", out.shown, strerror(errno));
        vet_afile_abort(&out);
        goto done;
    }
    if (vet_afile_commit(&out, err) < 0) goto done;
    sync_dir_of(path);
    rc = 0;
done:
    free(header);
    json_decref(root);
    free(order);
    return rc;
}
