// atomic_file.h — every output file: written under a temporary name beside its final one,
// made durable (fsync), and renamed into place only when whole.
//
// A reader therefore sees either the old file or the complete new one, never a file cut by a
// full disk or a killed writer. "-" (or NULL) is stdout; a path that already names something
// other than a regular file (/dev/null, /dev/stdout, a fifo) is written in place, since renaming
// a temporary over it would replace the device with a plain file. So is a symlink to this
// process's own stdout or stderr (/dev/stdout while stdout is redirected to a file) and a
// dangling one. A symlink to a regular file is followed: the temporary goes beside the file it
// leads to and replaces that file, leaving the link a link (renaming over the link would
// replace the link and leave its file as it was). The temporary is named TARGET.tmp.PID
// (checkpoint pruning recognises and removes strays of that shape).
//
// A program with several outputs finishes them all (vet_afile_finish: flushed, synced, closed)
// and only then publishes them (vet_afile_publish: the renames), so that a run that fails
// renames nothing. vet_afile_commit is the two in one for a single output.
#ifndef VET_ATOMIC_FILE_H
#define VET_ATOMIC_FILE_H

#include <stdio.h>

#include "base/err.h"

typedef struct {
    FILE *f;            // write here (binary mode)
    char *path;         // the final name as given (NULL for stdout)
    char *target;       // the file a symlink at path leads to, renamed over instead (NULL: path)
    char *tmp;          // the temporary's name (NULL when written in place)
    const char *shown;  // the name for messages: path, or "<stdout>"
    int in_place;       // stdout, a device or a pipe: nothing to rename
    int finished;       // vet_afile_finish succeeded: closed, waiting for publish
} vet_afile;

// Opens path (or stdout) for writing. 0, or -1 with err (VET_E_IO / VET_E_NOMEM); a on failure
// holds nothing to clean up.
int vet_afile_open(vet_afile *a, const char *path, vet_err *err);

// Flushes, syncs and closes the file (stdout: flushed only). On failure the temporary is
// removed (vet_afile_abort) and -1 returned with err (VET_E_IO).
int vet_afile_finish(vet_afile *a, vet_err *err);

// Renames a finished file into place and frees a. On failure the temporary is removed.
int vet_afile_publish(vet_afile *a, vet_err *err);

// vet_afile_finish then vet_afile_publish.
int vet_afile_commit(vet_afile *a, vet_err *err);

// Closes the file, removes the temporary (never the final name) and frees a. Safe to call
// on an aborted or published a, and after a failed open.
void vet_afile_abort(vet_afile *a);

// Removes every temporary of this process that is open and not yet published, and nothing else.
// Async-signal-safe: for a program's handler of a signal that ends it (tools/cli.h), so that
// Ctrl-C or a kill leaves no TARGET.tmp.PID behind. The first 64 open at once are tracked.
void vet_afile_remove_temporaries(void);

#endif
