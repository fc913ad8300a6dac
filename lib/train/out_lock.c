// out_lock.c — see out_lock.h.
#include "train/out_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// The pid a lock file names; 0 when it names none (empty, cut, or not a number): such a file
// cannot be a live run's, since a lock appears whole (see out_lock.h).
static long lock_pid(const char *path) {
    char buf[32] = {0};
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    char *end;
    long pid = strtol(buf, &end, 10);
    return pid > 0 && (*end == '\n' || *end == 0) ? pid : 0;
}

// kill(pid, 0) fails with ESRCH only when no such process exists (EPERM: it exists, another
// user's). A pid reused since the holder died reads as alive: the message says what to do.
static int pid_alive(long pid) { return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }

// Writes our pid into a private file and links it to the lock's name. 1 taken, 0 the name
// exists, -1 error.
static int try_link(const char *path, vet_err *err) {
    char tmp[4300], text[32];
    snprintf(tmp, sizeof tmp, "%s.%ld.new", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return vet_err_io(err, "%s: cannot create: %s", tmp, strerror(errno));
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    int ok = write(fd, text, (size_t)len) == len;
    ok &= close(fd) == 0;
    if (!ok) {
        unlink(tmp);
        return vet_err_io(err, "%s: write failed: %s", tmp, strerror(errno));
    }
    int rc = link(tmp, path), e = errno;
    unlink(tmp);
    if (rc == 0) return 1;
    if (e == EEXIST) return 0;
    return vet_err_io(err, "%s: cannot create: %s", path, strerror(e));
}

// A stale lock (its pid is dead): moved aside under a private name, then removed. If what was
// moved is not the stale file we looked at (another run took the stale lock over meanwhile and
// its fresh lock is what we moved), it is linked back.
static void remove_stale(const char *path, long dead_pid) {
    char aside[4300];
    snprintf(aside, sizeof aside, "%s.%ld.stale", path, (long)getpid());
    if (rename(path, aside) != 0) return;
    if (lock_pid(aside) != dead_pid) (void)link(aside, path);  // EEXIST: a third run holds it
    unlink(aside);
}

int vet_out_lock_take(vet_out_lock *lk, const char *dir, vet_err *err) {
    snprintf(lk->path, sizeof lk->path, "%s/%s", dir, VET_OUT_LOCK_NAME);
    int failed = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        int rc = try_link(lk->path, err);
        if (rc == 1) return 0;
        if (rc < 0) {
            failed = 1;
            break;
        }
        long pid = lock_pid(lk->path);
        if (pid == (long)getpid()) return 0;  // ours already (a second take in one process)
        if (pid_alive(pid)) {
            vet_err_kindf(err, VET_E_USAGE, "%s is in use: another vet-train (pid %ld) is training into it "
                          "(%s). Wait for it, or give another --out; if no such run is going on, remove the "
                          "lock file", dir, pid, lk->path);
            failed = 1;
            break;
        }
        remove_stale(lk->path, pid);  // then try again
    }
    if (!failed)
        vet_err_kindf(err, VET_E_USAGE, "%s: could not take the lock %s (other runs keep taking it)", dir, lk->path);
    lk->path[0] = 0;
    return -1;
}

void vet_out_lock_release(vet_out_lock *lk) {
    if (lk->path[0] && lock_pid(lk->path) == (long)getpid()) unlink(lk->path);
    lk->path[0] = 0;
}
