// read_file.h — a whole small file (a config, a tokenizer, a template) into memory, bounded.
//
// Reading "until EOF" never ends on /dev/zero and ends in an allocation failure on a huge file
// given by mistake; a directory reads as an error only at the first read. So the file must be a
// regular file (or a pipe, such as <(...) or /dev/stdin) and at most max_bytes long; anything
// else is refused up front with the reason.
#ifndef VET_READ_FILE_H
#define VET_READ_FILE_H

#include <stddef.h>

#include "base/err.h"

// Reads path into a fresh buffer (*data, NUL-terminated for text; free() it) of *len bytes.
// what names the file's role in messages ("tokenizer model", "config"). 0, or -1 with err:
// VET_E_IO when the file cannot be opened or read (missing, a directory, a device), VET_E_INPUT
// when it is larger than max_bytes, VET_E_NOMEM when the buffer cannot be had.
int vet_read_file(const char *path, const char *what, size_t max_bytes, char **data, size_t *len, vet_err *err);

#endif
