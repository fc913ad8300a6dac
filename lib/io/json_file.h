// json_file.h — a JSON file (config.json, adapter_config.json, a shard index, a checkpoint's
// state.json) read whole through base/read_file.h: a regular file of bounded size, parsed by
// jansson. One place for the size bound and the shape of the messages.
#ifndef VET_JSON_FILE_H
#define VET_JSON_FILE_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"

// The JSON files vet reads are small; the largest real one (a 70B model's shard index) is ~100 KB.
#define VET_JSON_MAX_BYTES ((size_t)64 << 20)

// Parses path with jansson's flags (e.g. JSON_REJECT_DUPLICATES). NULL with err: VET_E_IO when the
// file cannot be read ("path: cannot open what: ..."), VET_E_INPUT when it is too large or not
// JSON ("path:LINE: not valid JSON: why", with err->line set).
json_t *vet_json_load(const char *path, const char *what, size_t flags, vet_err *err);

// jansson's reason for refusing a text, in vet's words where jansson's name its own flags
// ("\u0000 is not allowed without JSON_ALLOW_NUL" becomes "a \u0000 (NUL) in a string: text
// cannot hold one"); else je->text as it is.
const char *vet_json_why(const json_error_t *je);

#endif
