// atomic_file.c — see atomic_file.h.
#include "base/atomic_file.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// The temporaries in flight, for vet_afile_remove_temporaries. A signal handler may read a slot
// at any moment, so each is a lock-free atomic pointer (C11 lets a handler touch those): a name is
// whole before it is stored, and its slot is emptied before the name is freed.
enum { MAX_LIVE = 64 };
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, "a signal handler may read only lock-free atomics");
static _Atomic(char *) live[MAX_LIVE];

static void track(char *tmp) {
    for (int i = 0; i < MAX_LIVE; i++) {
        char *none = NULL;
        if (atomic_compare_exchange_strong(&live[i], &none, tmp)) return;
    }
}

static void untrack(const char *tmp) {
    for (int i = 0; i < MAX_LIVE; i++) {
        char *mine = (char *)tmp;
        if (atomic_compare_exchange_strong(&live[i], &mine, NULL)) return;
    }
}

void vet_afile_remove_temporaries(void) {
    for (int i = 0; i < MAX_LIVE; i++) {
        char *p = atomic_load(&live[i]);
        if (p) unlink(p);
    }
}

static void release(vet_afile *a) {
    if (a->tmp) untrack(a->tmp);
    free(a->path);
    free(a->target);
    free(a->tmp);
    memset(a, 0, sizeof *a);
}

// 1 when st is the file this process's stdout or stderr writes to (/dev/stdout, /dev/fd/2,
// /proc/self/fd/1 lead there through a redirect): replacing it would leave the redirect's open
// file, which the shell's reader sees, empty.
static int same_as_std(const struct stat *st) {
    struct stat s;
    for (int fd = 1; fd <= 2; fd++)
        if (fstat(fd, &s) == 0 && s.st_dev == st->st_dev && s.st_ino == st->st_ino) return 1;
    return 0;
}

int vet_afile_open(vet_afile *a, const char *path, vet_err *err) {
    memset(a, 0, sizeof *a);
    if (!path || strcmp(path, "-") == 0) {
        a->f = stdout;
        a->shown = "<stdout>";
        a->in_place = 1;
        return 0;
    }
    a->path = strdup(path);
    if (!a->path) return vet_err_nomem(err, "out of memory");
    a->shown = a->path;
    struct stat st, lst;
    int exists = stat(path, &st) == 0;
    int is_link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
    if (is_link && exists && S_ISREG(st.st_mode) && !same_as_std(&st) && !(a->target = realpath(path, NULL))) {
        vet_err_io(err, "%s: cannot follow the symlink: %s", path, strerror(errno));
        release(a);
        return -1;
    }
    if ((exists && !S_ISREG(st.st_mode)) || (is_link && !a->target)) {
        a->in_place = 1;
        a->f = fopen(path, "wb");
        if (!a->f) {
            vet_err_io(err, "%s: cannot open for writing: %s", path, strerror(errno));
            release(a);
            return -1;
        }
        return 0;
    }
    const char *final = a->target ? a->target : path;
    size_t n = strlen(final) + 32;
    a->tmp = malloc(n);
    if (!a->tmp) {
        release(a);
        return vet_err_nomem(err, "out of memory");
    }
    snprintf(a->tmp, n, "%s.tmp.%ld", final, (long)getpid());
    track(a->tmp);  // before it exists: a signal between the two removes nothing of anyone's
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        // Named by the file asked for: the temporary name is ours, and the reason (a missing
        // folder, no permission) is the final path's too.
        vet_err_io(err, "%s: cannot create: %s", path, strerror(errno));
        release(a);  // nothing was created, nothing to remove
        return -1;
    }
    return 0;
}

int vet_afile_finish(vet_afile *a, vet_err *err) {
    if (a->finished) return 0;
    if (fflush(a->f) != 0) goto failed;
    if (a->f == stdout) {
        a->finished = 1;
        return 0;
    }
    // Durable before visible: the data on disk, then the rename makes it the real file.
    if (!a->in_place && fsync(fileno(a->f)) != 0 && errno != EINVAL) {
        vet_err_io(err, "%s: fsync failed: %s", a->shown, strerror(errno));
        vet_afile_abort(a);
        return -1;
    }
    int rc = fclose(a->f);
    a->f = NULL;
    if (rc != 0) goto failed;
    a->finished = 1;
    return 0;
failed:
    vet_err_io(err, "%s: write failed: %s", a->shown, strerror(errno));
    vet_afile_abort(a);
    return -1;
}

int vet_afile_publish(vet_afile *a, vet_err *err) {
    if (!a->finished) {
        vet_afile_abort(a);
        return vet_errf(err, "%s: published before it was finished (a bug)", a->shown ? a->shown : "?");
    }
    const char *final = a->target ? a->target : a->path;
    if (a->tmp && rename(a->tmp, final) != 0) {
        vet_err_io(err, "%s: cannot rename %s into place: %s", final, a->tmp, strerror(errno));
        vet_afile_abort(a);
        return -1;
    }
    release(a);
    return 0;
}

int vet_afile_commit(vet_afile *a, vet_err *err) {
    if (vet_afile_finish(a, err) < 0) return -1;
    return vet_afile_publish(a, err);
}

void vet_afile_abort(vet_afile *a) {
    if (a->f && a->f != stdout) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    release(a);
}
