// fuzz_util.h — what every libFuzzer harness in tests/fuzz shares: a private scratch folder
// (on /dev/shm when there is one: the harnesses write a file per input) and a file writer.
// The library reads paths, not buffers, so each input goes through a real file, as it would
// in use. Harnesses abort (a crash libFuzzer records) only when the library breaks a promise
// its header makes; any error return with a message is a pass.
#ifndef VET_FUZZ_UTIL_H
#define VET_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "base/err.h"

static char fz_dir[256];

static inline void fz_rm_dir(void) {
    if (!fz_dir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
    if (system(cmd) != 0) {}
}

// The scratch folder, made on first use and removed at exit.
static inline const char *fz_scratch(void) {
    if (fz_dir[0]) return fz_dir;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(fz_dir, sizeof fz_dir, "%s/vet-fuzz.XXXXXX", base);
    if (!mkdtemp(fz_dir)) { perror("vet fuzz: mkdtemp"); abort(); }
    atexit(fz_rm_dir);
    return fz_dir;
}

// path of name inside the scratch folder (static buffer per call site is the caller's).
static inline void fz_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", fz_scratch(), name); }

static inline void fz_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) { perror(path); abort(); }
}

// data compressed into one zstd frame (with its checksum) at path: a stream harness's way past
// the framing to the msgpack objects inside.
static inline void fz_write_zstd(const char *path, const void *data, size_t n) {
    size_t cap = ZSTD_compressBound(n);
    void *z = malloc(cap);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (!z || !cc) abort();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    size_t zn = ZSTD_compress2(cc, z, cap, data, n);
    if (ZSTD_isError(zn)) abort();
    fz_write(path, z, zn);
    ZSTD_freeCCtx(cc);
    free(z);
}

// Reads a whole file into a malloc'd buffer (NULL when it cannot).
static inline unsigned char *fz_read(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    unsigned char *b = malloc(cap);
    size_t k;
    while (b && (k = fread(b + len, 1, cap - len, f)) > 0) {
        len += k;
        if (len == cap) { unsigned char *q = realloc(b, cap *= 2); if (!q) { free(b); b = NULL; } else b = q; }
    }
    fclose(f);
    *n = len;
    return b;
}

// A failure must come with a message: the programs print it as `vet-X: <msg>` and exit.
// (Not checked: that it is one line. Messages quote the input, which may hold a newline.)
static inline void fz_check_msg(const vet_err *e) {
    size_t n = strnlen(e->msg, sizeof e->msg);
    if (n == 0 || n == sizeof e->msg) {
        fprintf(stderr, "vet fuzz: an error return without a message: '%.200s'\n", e->msg);
        abort();
    }
}

// FUZZ_WRITE_SEEDS=dir: a harness that builds valid inputs itself writes them there as seeds.
static inline void fz_seed(const char *name, const void *data, size_t n) {
    const char *dir = getenv("FUZZ_WRITE_SEEDS");
    if (!dir || !*dir) return;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    fz_write(p, data, n);
}

#endif
