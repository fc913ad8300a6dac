// input_file.c — see input_file.h.
#include "base/input_file.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/utf8.h"

static int is_std(const char *path) { return !path || strcmp(path, "-") == 0; }

FILE *vet_input_open(const char *path, const char *what, vet_err *err) {
    struct stat st;
    if (is_std(path)) {
        if (fstat(0, &st) == 0 && S_ISDIR(st.st_mode)) {
            vet_err_io(err, "<stdin>: the %s must be a file, not a directory", what);
            return NULL;
        }
        return stdin;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        vet_err_io(err, "%s: cannot open the %s: %s", path, what, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0) {
        vet_err_io(err, "%s: cannot read the %s: %s", path, what, strerror(errno));
        fclose(f);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode)) {
        vet_err_io(err, "%s: the %s must be a file or a pipe, not %s", path, what,
                   S_ISDIR(st.st_mode) ? "a directory" : "a device");
        fclose(f);
        return NULL;
    }
    return f;
}

void vet_input_close(FILE *f) {
    if (f && f != stdin) fclose(f);
}

// Reads only while the bytes are the mark's (one byte read and put back for most files).
void vet_skip_bom(FILE *f) {
    char got[sizeof VET_UTF8_BOM - 1];
    size_t n = 0;
    int ch;
    while (n < sizeof got && (ch = getc(f)) != EOF) {
        got[n++] = (char)ch;
        if (got[n - 1] != VET_UTF8_BOM[n - 1]) break;
    }
    if (vet_utf8_bom_len(got, n)) return;
    while (n) ungetc((unsigned char)got[--n], f);
}

// The file behind path (or behind fd for "-"), when it is a regular file.
static int regular(const char *path, int fd, struct stat *st) {
    int rc = is_std(path) ? fstat(fd, st) : stat(path, st);
    return rc == 0 && S_ISREG(st->st_mode);
}

int vet_same_file(const char *output, const char *input) {
    struct stat o, i;
    if (!regular(output, 1, &o) || !regular(input, 0, &i)) return 0;
    return o.st_dev == i.st_dev && o.st_ino == i.st_ino;
}

int vet_refuse_overwrite(const char *flag, const char *output, const char *input, vet_err *err) {
    if (!vet_same_file(output, input)) return 0;
    return vet_err_kindf(err, VET_E_USAGE, "%s %s is the input file %s: writing it would destroy what is being "
                         "read (choose another output)", flag, is_std(output) ? "<stdout>" : output,
                         is_std(input) ? "<stdin>" : input);
}

int vet_refuse_stdin_twice(const vet_named_input *in, int n, vet_err *err) {
    int first = -1;
    for (int i = 0; i < n; i++) {
        if (!in[i].path || strcmp(in[i].path, "-") != 0) continue;
        if (first < 0) {
            first = i;
            continue;
        }
        return vet_err_kindf(err, VET_E_USAGE, "%s - and %s - both read stdin: give one of them as a file",
                             in[first].flag, in[i].flag);
    }
    return 0;
}

int vet_same_dir(const char *a, const char *b) {
    struct stat x, y;
    if (!a || !b || stat(a, &x) != 0 || stat(b, &y) != 0 || !S_ISDIR(x.st_mode) || !S_ISDIR(y.st_mode)) return 0;
    return x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

int vet_refuse_overwrite_in(const char *flag, const char *output, const char *in_flag, const char *dir,
                            vet_err *err) {
    struct stat st;
    if (!dir || is_std(output)) return 0;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) return vet_refuse_overwrite(flag, output, dir, err);
    if (stat(output, &st) != 0 || S_ISDIR(st.st_mode)) return 0;  // a new file (or no file at all)
    char *copy = strdup(output);
    if (!copy) return vet_err_nomem(err, "out of memory");
    int inside = vet_same_dir(dirname(copy), dir);
    free(copy);
    if (!inside) return 0;
    return vet_err_kindf(err, VET_E_USAGE, "%s %s would overwrite a file of %s %s, which this run reads (choose an "
                         "output outside it)", flag, output, in_flag, dir);
}
