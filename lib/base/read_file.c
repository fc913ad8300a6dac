// read_file.c — see read_file.h.
#include "base/read_file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int vet_read_file(const char *path, const char *what, size_t max_bytes, char **data, size_t *len, vet_err *err) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return vet_err_io(err, "%s: cannot open %s: %s", path, what, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
        int dir = S_ISDIR(st.st_mode);
        fclose(f);
        return vet_err_io(err, "%s: the %s must be a file, not %s", path, what, dir ? "a directory" : "a device");
    }
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max_bytes) {
        fclose(f);
        return vet_errf(err, "%s: %jd bytes is too large for a %s (at most %zu)", path, (intmax_t)st.st_size, what,
                        max_bytes);
    }
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return vet_err_nomem(err, "%s: out of memory reading the %s", path, what);
    }
    for (;;) {
        if (n + 1 == cap) {  // only a pipe (or a file that grew) gets here
            if (cap > max_bytes) {
                free(buf);
                fclose(f);
                return vet_errf(err, "%s: more than %zu bytes: too large for a %s", path, max_bytes, what);
            }
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                fclose(f);
                return vet_err_nomem(err, "%s: out of memory reading the %s", path, what);
            }
            buf = b;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - 1 - n, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return vet_err_io(err, "%s: read failed: %s", path, strerror(e));
    }
    if (n > max_bytes) {
        free(buf);
        return vet_errf(err, "%s: more than %zu bytes: too large for a %s", path, max_bytes, what);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}
