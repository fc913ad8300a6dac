// sha256.h — SHA-256 (FIPS 180-4), incremental. Used to name tokenizer models and templates.
#ifndef VET_SHA256_H
#define VET_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct {
    uint32_t h[8];       // chaining state
    uint64_t nbytes;     // message length so far
    uint8_t block[64];   // pending partial block
    size_t nblock;       // bytes used in block
} vet_sha256;

void vet_sha256_init(vet_sha256 *s);
void vet_sha256_update(vet_sha256 *s, const void *data, size_t n);
void vet_sha256_final(vet_sha256 *s, uint8_t digest[32]);
// One field of a canonical serialization: "<n>:" then the n bytes then "\n", so that no two
// sequences of fields hash the same text (the GGUF tokenizers' hashes, docs/formats.md).
void vet_sha256_update_field(vet_sha256 *s, const void *data, size_t n);

// One-shot helpers. hex is 64 lowercase hex digits plus NUL.
void vet_sha256_hex(const void *data, size_t n, char hex[65]);
void vet_sha256_to_hex(const uint8_t digest[32], char hex[65]);
// Hashes a whole file; -1 with "path: reason" when it cannot be read.
int vet_sha256_file(const char *path, char hex[65], vet_err *err);

#endif
