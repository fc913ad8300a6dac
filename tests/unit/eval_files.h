// eval_files.h — the files vet-eval's unit tests read and write: the committed fixtures of
// tests/fixtures/eval, and a scratch folder made at start and removed at the end.
#ifndef VET_EVAL_FILES_H
#define VET_EVAL_FILES_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char eval_dir[256];

// tests/fixtures/eval/NAME (from $VET_TOP, else the current folder). The last 8 stay valid.
static inline const char *fixture(const char *name) {
    static char p[8][600];
    static int k;
    k = (k + 1) % 8;
    const char *top = getenv("VET_TOP");
    snprintf(p[k], sizeof p[k], "%s/tests/fixtures/eval/%s", top && *top ? top : ".", name);
    return p[k];
}

// NAME inside the scratch folder. The last 8 stay valid.
static inline const char *tmp_path(const char *name) {
    static char p[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", eval_dir, name);
    return p[k];
}

// The scratch folder $TMPDIR/vet-test-TAG.XXXXXX; 0, or -1 when it cannot be made.
static inline int eval_dir_make(const char *tag) {
    snprintf(eval_dir, sizeof eval_dir, "%s/vet-test-%s.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", tag);
    return mkdtemp(eval_dir) ? 0 : -1;
}

// Removes it and all it holds; 0, or -1 when that fails.
static inline int eval_dir_remove(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", eval_dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
