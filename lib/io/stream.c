// stream.c — the vet stream writer and reader (see stream.h for the format).
#include "io/stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "base/atomic_file.h"
#include "io/mp.h"

#define VET_ZSTD_LEVEL 3

// ---------------------------------------------------------------------------------------
// Writer

struct vet_writer {
    vet_afile out;         // the file (a temporary until close renames it) or stdout
    const char *shown;     // name in messages
    char *kind, *program;
    ZSTD_CCtx *cctx;
    msgpack_sbuffer sbuf;  // the object being packed, uncompressed
    msgpack_packer pk;
    char *zbuf;            // compressed output staging
    size_t zcap;
    uint64_t records;
    int header_done;
};

// Compresses what sits in sbuf (all of it) and writes the output; with ZSTD_e_end also
// closes the frame.
static int writer_compress(vet_writer *w, ZSTD_EndDirective mode, vet_err *err) {
    ZSTD_inBuffer in = {w->sbuf.data, w->sbuf.size, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->zbuf, w->zcap, 0};
        size_t left = ZSTD_compressStream2(w->cctx, &out, &in, mode);
        if (ZSTD_isError(left))
            return vet_errf(err, "%s: zstd compression failed: %s", w->shown, ZSTD_getErrorName(left));
        if (out.pos && fwrite(w->zbuf, 1, out.pos, w->out.f) != out.pos)
            return vet_err_io(err, "%s: write failed: %s", w->shown, strerror(errno));
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) break;
    }
    msgpack_sbuffer_clear(&w->sbuf);
    return 0;
}

vet_writer *vet_writer_open(const char *path, const char *kind, const char *program, vet_err *err) {
    vet_writer *w = calloc(1, sizeof *w);
    if (!w) { vet_err_nomem(err, "out of memory"); return NULL; }
    msgpack_sbuffer_init(&w->sbuf);
    msgpack_packer_init(&w->pk, &w->sbuf, msgpack_sbuffer_write);
    w->kind = strdup(kind);
    w->program = strdup(program);
    w->cctx = ZSTD_createCCtx();
    w->zcap = ZSTD_CStreamOutSize();
    w->zbuf = malloc(w->zcap);
    if (!w->kind || !w->program || !w->cctx || !w->zbuf) { vet_err_nomem(err, "out of memory"); goto fail; }
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, VET_ZSTD_LEVEL);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
    if (vet_afile_open(&w->out, path, err) < 0) goto fail;
    w->shown = w->out.shown;
    return w;
fail:
    vet_writer_abort(w);
    return NULL;
}

msgpack_packer *vet_writer_packer(vet_writer *w) { return &w->pk; }

void vet_writer_header_begin(vet_writer *w, uint32_t n_extra) {
    msgpack_pack_map(&w->pk, 4 + n_extra);
    mp_kv_int(&w->pk, "vet", VET_STREAM_VERSION);
    mp_kv_str(&w->pk, "kind", w->kind);
    mp_kv_str(&w->pk, "program", w->program);
    mp_kv_str(&w->pk, "version", VET_VERSION);
}

int vet_writer_header_end(vet_writer *w, vet_err *err) {
    w->header_done = 1;
    return writer_compress(w, ZSTD_e_continue, err);
}

int vet_writer_record_end(vet_writer *w, vet_err *err) {
    if (!w->header_done) return vet_errf(err, "%s: record written before the header (a bug)", w->shown);
    w->records++;
    return writer_compress(w, ZSTD_e_continue, err);
}

uint64_t vet_writer_records(const vet_writer *w) { return w->records; }

static void writer_free(vet_writer *w) {
    ZSTD_freeCCtx(w->cctx);
    msgpack_sbuffer_destroy(&w->sbuf);
    free(w->zbuf);
    free(w->kind);
    free(w->program);
    free(w);
}

int vet_writer_finish(vet_writer *w, vet_err *err) {
    if (!w->header_done) {
        vet_errf(err, "%s: stream closed without a header (a bug)", w->shown);
        vet_writer_abort(w);
        return -1;
    }
    msgpack_pack_map(&w->pk, 2);
    mp_kv_bool(&w->pk, "end", true);
    mp_kv_int(&w->pk, "records", (int64_t)w->records);
    if (writer_compress(w, ZSTD_e_end, err) < 0) { vet_writer_abort(w); return -1; }
    if (vet_afile_finish(&w->out, err) < 0) {  // the temporary is gone already
        writer_free(w);
        return -1;
    }
    return 0;
}

int vet_writer_publish(vet_writer *w, vet_err *err) {
    int rc = vet_afile_publish(&w->out, err);  // on failure the temporary is gone already
    writer_free(w);
    return rc;
}

int vet_writer_close(vet_writer *w, vet_err *err) {
    if (vet_writer_finish(w, err) < 0) return -1;
    return vet_writer_publish(w, err);
}

void vet_writer_abort(vet_writer *w) {
    if (!w) return;
    if (w->out.f == stdout) fflush(stdout);
    vet_afile_abort(&w->out);
    writer_free(w);
}

// ---------------------------------------------------------------------------------------
// Reader

// msgpack-c allocates an array's or map's storage when it reads the count, before any element
// arrives: 5 bytes claiming 2^32 entries would ask for ~100 GB. So the reader watches the
// decompressed bytes go by and refuses an object whose containers promise more entries, not
// yet read, than VET_STREAM_MAX_PENDING. Each promised entry needs at least one more byte, so
// what msgpack-c allocates stays within a constant times the record's real size plus this.
// The largest real records (packed rows) hold a few hundred thousand entries.
#define VET_STREAM_MAX_PENDING (1u << 22)

typedef struct {
    uint64_t skip;        // payload bytes of a str/bin/ext/number still to pass over
    uint64_t pending;     // entries promised by open containers and not yet read (0: between objects)
    unsigned char hdr[6]; // a container or length header split across two buffers
    int have, need;
} mp_scan;

// Header size in bytes (type byte included) of a token starting with byte b, its payload length
// when that is fixed (numbers), and whether its length field counts bytes (str/bin/ext) or
// entries (array/map: 1, map: 2 per entry).
static void mp_token_shape(unsigned b, int *need, uint64_t *fixed, int *kind) {
    *need = 1, *fixed = 0, *kind = 0;   // kind 0: scalar, 1: byte length, 2: array, 3: map
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc1 || b == 0xc2 || b == 0xc3) return;
    if (b >= 0x80 && b <= 0x8f) { *kind = 3; return; }
    if (b >= 0x90 && b <= 0x9f) { *kind = 2; return; }
    if (b >= 0xa0 && b <= 0xbf) { *fixed = b & 0x1f; return; }
    switch (b) {
    case 0xc4: case 0xd9: *need = 2, *kind = 1; return;            // bin8, str8
    case 0xc5: case 0xda: *need = 3, *kind = 1; return;            // bin16, str16
    case 0xc6: case 0xdb: *need = 5, *kind = 1; return;            // bin32, str32
    case 0xc7: *need = 3, *kind = 1; return;                       // ext8: len, type
    case 0xc8: *need = 4, *kind = 1; return;                       // ext16
    case 0xc9: *need = 6, *kind = 1; return;                       // ext32
    case 0xca: *fixed = 4; return;
    case 0xcb: *fixed = 8; return;
    case 0xcc: case 0xd0: *fixed = 1; return;
    case 0xcd: case 0xd1: *fixed = 2; return;
    case 0xce: case 0xd2: *fixed = 4; return;
    case 0xcf: case 0xd3: *fixed = 8; return;
    case 0xd4: *fixed = 2; return;                                 // fixext 1..16: type + data
    case 0xd5: *fixed = 3; return;
    case 0xd6: *fixed = 5; return;
    case 0xd7: *fixed = 9; return;
    case 0xd8: *fixed = 17; return;
    case 0xdc: *need = 3, *kind = 2; return;
    case 0xdd: *need = 5, *kind = 2; return;
    case 0xde: *need = 3, *kind = 3; return;
    case 0xdf: *need = 5, *kind = 3; return;
    }
}

// Feeds n decompressed bytes; -1 when an object promises more than VET_STREAM_MAX_PENDING.
static int mp_scan_feed(mp_scan *s, const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s->skip) {
            size_t k = s->skip < n - i ? (size_t)s->skip : n - i;
            s->skip -= k, i += k;
            continue;
        }
        s->hdr[s->have++] = p[i++];
        int need, kind;
        uint64_t fixed;
        mp_token_shape(s->hdr[0], &need, &fixed, &kind);
        if (s->have < need) continue;
        uint64_t len = 0;
        for (int k = 1; k < need; k++) len = len << 8 | s->hdr[k];
        if (s->hdr[0] == 0xc7 || s->hdr[0] == 0xc8 || s->hdr[0] == 0xc9) len >>= 8;   // drop the ext type byte
        if (kind == 2 || kind == 3) {
            if (need == 1) len = s->hdr[0] & 0x0f;
            if (kind == 3) len *= 2;
        }
        if (s->pending) s->pending--;   // this token fills one promised entry
        if (kind >= 2) {
            s->pending += len;
            if (s->pending > VET_STREAM_MAX_PENDING) return -1;
        } else {
            s->skip = kind == 1 ? len : fixed;
        }
        s->have = 0;
    }
    return 0;
}

struct vet_reader {
    FILE *f;
    char *path;             // as shown in messages
    char *want_kind;
    char kind[64];
    ZSTD_DCtx *dctx;
    char *zbuf;             // compressed input
    ZSTD_inBuffer in;
    int eof;                // no more compressed bytes
    int frame_done;         // the last zstd call ended a frame
    int saw_input;          // any compressed byte at all
    msgpack_unpacker up;
    msgpack_unpacked obj;   // the current object (record or header copy lives in header_zone)
    msgpack_unpacked header;
    uint64_t records;
    int finished;           // trailer seen and verified
    mp_scan scan;           // watches container sizes (see VET_STREAM_MAX_PENDING)
};

// The zstd frame magic, little endian on disk: 28 B5 2F FD.
static const unsigned char ZSTD_MAGIC_BYTES[4] = {0x28, 0xB5, 0x2F, 0xFD};

// Decompresses more bytes into the unpacker's buffer. Returns 1 when bytes were added,
// 0 at a clean end of input, -1 on error.
static int reader_fill(vet_reader *r, vet_err *err) {
    for (;;) {
        if (r->in.pos == r->in.size && !r->eof) {
            size_t n = fread(r->zbuf, 1, ZSTD_DStreamInSize(), r->f);
            if (n == 0) {
                if (ferror(r->f))
                    return vet_err_io(err, "%s: read failed: %s", r->path, strerror(errno));
                r->eof = 1;
            } else {
                if (!r->saw_input && (n < 4 || memcmp(r->zbuf, ZSTD_MAGIC_BYTES, 4) != 0))
                    return vet_errf(err, "%s: not a vet stream (not zstd-compressed; vet streams are "
                                         "written by vet programs, e.g. vet-tokenize)", r->path);
                r->saw_input = 1;
                r->in = (ZSTD_inBuffer){r->zbuf, n, 0};
            }
        }
        if (r->in.pos == r->in.size && r->eof) {
            if (!r->saw_input) return vet_errf(err, "%s: empty input (expected a vet stream)", r->path);
            if (!r->frame_done)
                return vet_errf(err, "%s: record %llu: truncated stream (the zstd frame ends early: "
                                     "the writer died or the file was cut)",
                                r->path, (unsigned long long)r->records + 1);
            return 0;
        }
        if (!msgpack_unpacker_reserve_buffer(&r->up, 1 << 16)) return vet_err_nomem(err, "out of memory");
        ZSTD_outBuffer out = {msgpack_unpacker_buffer(&r->up), msgpack_unpacker_buffer_capacity(&r->up), 0};
        size_t ret = ZSTD_decompressStream(r->dctx, &out, &r->in);
        if (ZSTD_isError(ret))
            return vet_errf(err, "%s: record %llu: corrupt stream (zstd: %s)", r->path,
                            (unsigned long long)r->records + 1, ZSTD_getErrorName(ret));
        r->frame_done = ret == 0;
        if (mp_scan_feed(&r->scan, out.dst, out.pos) < 0)
            return vet_errf(err, "%s: record %llu: corrupt stream (arrays or maps claim more than %u "
                                 "entries the data has not yet delivered)",
                            r->path, (unsigned long long)r->records + 1, VET_STREAM_MAX_PENDING);
        if (out.pos) {
            msgpack_unpacker_buffer_consumed(&r->up, out.pos);
            return 1;
        }
    }
}

// Next msgpack object into u. Returns 1, 0 at the end of input (no partial object), -1.
static int reader_object(vet_reader *r, msgpack_unpacked *u, vet_err *err) {
    for (;;) {
        msgpack_unpack_return ret = msgpack_unpacker_next(&r->up, u);
        if (ret == MSGPACK_UNPACK_SUCCESS) return 1;
        if (ret == MSGPACK_UNPACK_PARSE_ERROR)
            return vet_errf(err, "%s: record %llu: corrupt stream (bad msgpack data)", r->path,
                            (unsigned long long)r->records + 1);
        // msgpack-c says "no memory" also for containers nested deeper than its fixed stack (32
        // levels); no vet record nests more than 4, and the pending-entries bound keeps real
        // allocations small, so this is a damaged or hostile record.
        if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
            return vet_errf(err, "%s: record %llu: corrupt stream (containers nested too deep for a vet record)",
                            r->path, (unsigned long long)r->records + 1);
        int rc = reader_fill(r, err);
        if (rc < 0) return -1;
        if (rc == 0) {
            if (msgpack_unpacker_message_size(&r->up) > msgpack_unpacker_parsed_size(&r->up))
                return vet_errf(err, "%s: record %llu: truncated stream (ends inside an object)", r->path,
                                (unsigned long long)r->records + 1);
            return 0;
        }
    }
}

static const char *msgpack_type_name(int type) {
    switch (type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "integer";
    case MSGPACK_OBJECT_FLOAT32: case MSGPACK_OBJECT_FLOAT64: return "float";
    case MSGPACK_OBJECT_STR: return "string";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_BIN: return "binary";
    default: return "extension";
    }
}

// A reader with its buffers and name, no file yet (r->f stdin, which close leaves open).
static vet_reader *reader_new(const char *name, const char *kind, vet_err *err) {
    vet_reader *r = calloc(1, sizeof *r);
    if (!r) { vet_err_nomem(err, "out of memory"); return NULL; }
    r->path = strdup(name);
    r->want_kind = kind ? strdup(kind) : NULL;
    r->dctx = ZSTD_createDCtx();
    r->zbuf = malloc(ZSTD_DStreamInSize());
    msgpack_unpacked_init(&r->obj);
    msgpack_unpacked_init(&r->header);
    if (!r->path || (kind && !r->want_kind) || !r->dctx || !r->zbuf ||
        !msgpack_unpacker_init(&r->up, 1 << 16)) {
        vet_err_nomem(err, "out of memory");
        free(r->path); free(r->want_kind); ZSTD_freeDCtx(r->dctx); free(r->zbuf);
        msgpack_unpacked_destroy(&r->obj); msgpack_unpacked_destroy(&r->header);
        free(r);
        return NULL;
    }
    r->f = stdin;
    return r;
}

// Reads and checks the header of r->f; on failure closes r.
static vet_reader *reader_start(vet_reader *r, const char *kind, vet_err *err) {
    struct stat st;
    if (r->f != stdin && fstat(fileno(r->f), &st) == 0 && S_ISDIR(st.st_mode)) {
        vet_err_io(err, "%s: cannot read: it is a directory (give a stream file)", r->path);
        vet_reader_close(r);
        return NULL;
    }
    // Object 0: the header.
    int rc = reader_object(r, &r->header, err);
    if (rc == 0) vet_errf(err, "%s: truncated stream (no header)", r->path);
    if (rc <= 0) goto fail;
    const msgpack_object *h = &r->header.data;
    if (h->type != MSGPACK_OBJECT_MAP) {
        vet_errf(err, "%s: header: not a map (msgpack %s): not a vet stream", r->path, msgpack_type_name(h->type));
        goto fail;
    }
    int64_t version;
    const char *k;
    size_t klen;
    if (mp_get_int(h, "vet", &version, NULL) < 0 || mp_get_str(h, "kind", &k, &klen, NULL) < 0) {
        vet_errf(err, "%s: header: lacks \"vet\" or \"kind\": not a vet stream", r->path);
        goto fail;
    }
    if (version < 1 || version > VET_STREAM_VERSION) {
        vet_errf(err, "%s: header: stream version %lld, this vet reads version %d (upgrade vet)", r->path,
                 (long long)version, VET_STREAM_VERSION);
        goto fail;
    }
    if (klen >= sizeof r->kind) klen = sizeof r->kind - 1;
    memcpy(r->kind, k, klen);
    r->kind[klen] = 0;
    if (kind && strcmp(kind, r->kind) != 0) {
        vet_errf(err, "%s: stream of kind '%s', expected '%s'", r->path, r->kind, kind);
        goto fail;
    }
    return r;
fail:
    vet_reader_close(r);
    return NULL;
}

vet_reader *vet_reader_open(const char *path, const char *kind, vet_err *err) {
    int is_stdin = !path || strcmp(path, "-") == 0;
    vet_reader *r = reader_new(is_stdin ? "<stdin>" : path, kind, err);
    if (!r) return NULL;
    if (!is_stdin && !(r->f = fopen(path, "rb"))) {
        vet_err_io(err, "%s: cannot open: %s", path, strerror(errno));
        r->f = stdin;  // so close does not fclose NULL
        vet_reader_close(r);
        return NULL;
    }
    return reader_start(r, kind, err);
}

vet_reader *vet_reader_open_file(FILE *f, const char *name, const char *kind, vet_err *err) {
    vet_reader *r = reader_new(name, kind, err);
    if (!r) {
        if (f != stdin) fclose(f);
        return NULL;
    }
    r->f = f;
    return reader_start(r, kind, err);
}

const msgpack_object *vet_reader_header(const vet_reader *r) { return &r->header.data; }
const char *vet_reader_kind(const vet_reader *r) { return r->kind; }
const char *vet_reader_path(const vet_reader *r) { return r->path; }
uint64_t vet_reader_records(const vet_reader *r) { return r->records; }

int vet_reader_next(vet_reader *r, const msgpack_object **rec, vet_err *err) {
    if (r->finished) return 0;
    int rc = reader_object(r, &r->obj, err);
    if (rc < 0) return -1;
    if (rc == 0)
        return vet_errf(err, "%s: record %llu: truncated stream (no trailer after %llu records: the "
                             "writer died or the file was cut)",
                        r->path, (unsigned long long)r->records + 1, (unsigned long long)r->records);
    const msgpack_object *o = &r->obj.data;
    if (o->type != MSGPACK_OBJECT_MAP)
        return vet_errf(err, "%s: record %llu: not a map (msgpack %s)", r->path,
                        (unsigned long long)r->records + 1, msgpack_type_name(o->type));
    const msgpack_object *end = mp_get(o, "end");
    if (!end) {
        r->records++;
        *rec = o;
        return 1;
    }
    // The trailer: its count must match, and nothing may follow it.
    int64_t n;
    if (end->type != MSGPACK_OBJECT_BOOLEAN || !end->via.boolean || mp_get_int(o, "records", &n, NULL) < 0)
        return vet_errf(err, "%s: record %llu: malformed trailer (want {\"end\": true, \"records\": N})",
                        r->path, (unsigned long long)r->records + 1);
    if ((uint64_t)n != r->records)
        return vet_errf(err, "%s: trailer says %lld records, read %llu: truncated or spliced stream",
                        r->path, (long long)n, (unsigned long long)r->records);
    msgpack_unpacked extra;
    msgpack_unpacked_init(&extra);
    rc = reader_object(r, &extra, err);
    msgpack_unpacked_destroy(&extra);
    if (rc < 0) return -1;
    if (rc > 0) return vet_errf(err, "%s: data after the trailer (two streams concatenated?)", r->path);
    r->finished = 1;
    return 0;
}

void vet_reader_close(vet_reader *r) {
    if (!r) return;
    if (r->f && r->f != stdin) fclose(r->f);
    ZSTD_freeDCtx(r->dctx);
    free(r->zbuf);
    msgpack_unpacker_destroy(&r->up);
    msgpack_unpacked_destroy(&r->obj);
    msgpack_unpacked_destroy(&r->header);
    free(r->path);
    free(r->want_kind);
    free(r);
}
