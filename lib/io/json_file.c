// json_file.c — see json_file.h.
#include "io/json_file.h"

#include <stdlib.h>
#include <string.h>

#include "base/read_file.h"

const char *vet_json_why(const json_error_t *je) {
    if (strstr(je->text, "JSON_ALLOW_NUL")) return "a \\u0000 (NUL) in a string: text cannot hold one";
    return je->text;
}

json_t *vet_json_load(const char *path, const char *what, size_t flags, vet_err *err) {
    char *text;
    size_t len;
    if (vet_read_file(path, what, VET_JSON_MAX_BYTES, &text, &len, err) < 0) return NULL;
    json_error_t je;
    json_t *root = json_loadb(text, len, flags, &je);
    free(text);
    if (!root) {
        vet_errf(err, "%s:%d: not valid JSON: %s", path, je.line, vet_json_why(&je));
        vet_err_at_line(err, je.line);
    }
    return root;
}
