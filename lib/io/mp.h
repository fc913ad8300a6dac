// mp.h — small helpers over msgpack-c: packing key/value pairs and reading typed
// fields out of record maps with errors that name the field.
#ifndef VET_MP_H
#define VET_MP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"

// --- packing (msgpack-c's packer writes to a buffer; these never fail) ---
void mp_str(msgpack_packer *pk, const char *s);
void mp_strn(msgpack_packer *pk, const char *s, size_t n);
void mp_kv_str(msgpack_packer *pk, const char *key, const char *val);
void mp_kv_strn(msgpack_packer *pk, const char *key, const char *val, size_t n);
void mp_kv_int(msgpack_packer *pk, const char *key, int64_t val);
void mp_kv_double(msgpack_packer *pk, const char *key, double val);
void mp_kv_bool(msgpack_packer *pk, const char *key, bool val);
void mp_kv_i32_array(msgpack_packer *pk, const char *key, const int32_t *v, size_t n);
void mp_kv_str_array(msgpack_packer *pk, const char *key, char *const *v, size_t n);
void mp_key(msgpack_packer *pk, const char *key);  // then pack the value yourself
// A file path as a string: a path is bytes, a msgpack string UTF-8 (Python's msgpack refuses
// anything else), so a path that is not UTF-8 is written with U+FFFD for each ill-formed part, as
// a file name in a JSON report is. (Out of memory: its bytes as they are.)
void mp_kv_path(msgpack_packer *pk, const char *key, const char *path);
void mp_path(msgpack_packer *pk, const char *path);  // the value alone

// --- reading: all return NULL / -1 with a message naming the key when absent or mistyped ---
// Finds key in a map; NULL when obj is not a map or key is absent (no error set).
const msgpack_object *mp_get(const msgpack_object *map, const char *key);
// Strings are not NUL-terminated in msgpack: these give pointer + length.
int mp_get_str(const msgpack_object *map, const char *key, const char **s, size_t *len, vet_err *err);
// Copies a string field into a fresh NUL-terminated malloc'd buffer.
char *mp_get_strdup(const msgpack_object *map, const char *key, vet_err *err);
int mp_get_int(const msgpack_object *map, const char *key, int64_t *out, vet_err *err);
int mp_get_double(const msgpack_object *map, const char *key, double *out, vet_err *err);
// An array of integers into a malloc'd int32 buffer (*out NULL when n == 0).
int mp_get_i32_array(const msgpack_object *map, const char *key, int32_t **out, size_t *n, vet_err *err);
// An array of strings into malloc'd NUL-terminated copies; free with mp_free_strs.
int mp_get_str_array(const msgpack_object *map, const char *key, char ***out, size_t *n, vet_err *err);
void mp_free_strs(char **v, size_t n);
// True when obj is a string equal to s.
bool mp_str_eq(const msgpack_object *obj, const char *s);

// --- JSON: prints any msgpack object as one line of JSON (vet-dump) ---
int mp_print_json(FILE *f, const msgpack_object *obj);

#endif
