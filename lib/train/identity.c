// identity.c — what a run starts from, as two hashes recorded in every checkpoint (see run.h):
// the base (the model's weights as loaded or made, and the LoRA it starts from) and the data
// (the packed rows' content). A resume whose base or data hash differs is refused: the
// settings' fingerprint alone (flags and counts) cannot tell a base of the same shape, or other
// rows of the same size, from the real ones.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "train/run.h"

// Floats per chunk: each chunk is hashed on its own thread, then the chunks' digests in order.
#define CHUNK ((size_t)1 << 20)

// sha256 over n floats, chunks in parallel: ~270 MB/s per core, so a 7B model's 28 GB of fp32
// weights take ~7 s on 16 cores instead of ~1.7 min on one.
static void hash_floats(vet_sha256 *h, const float *x, size_t n) {
    size_t k = (n + CHUNK - 1) / CHUNK;
    uint8_t(*d)[32] = malloc((k ? k : 1) * sizeof *d);
    if (!d) {  // no room for the digests: the same content, hashed in one pass
        vet_sha256_update(h, x, n * sizeof(float));
        return;
    }
#pragma omp parallel for schedule(dynamic)
    for (long c = 0; c < (long)k; c++) {
        vet_sha256 part;
        size_t off = (size_t)c * CHUNK, len = n - off < CHUNK ? n - off : CHUNK;
        vet_sha256_init(&part);
        vet_sha256_update(&part, x + off, len * sizeof(float));
        vet_sha256_final(&part, d[c]);
    }
    uint64_t count = n;
    vet_sha256_update(h, &count, sizeof count);
    vet_sha256_update(h, d, k * sizeof *d);
    free(d);
}

void train_identities(train_run *r) {
    vet_sha256 h;
    uint8_t digest[32];
    vet_sha256_init(&h);
    hash_floats(&h, r->m.w_mem, r->m.n_w);
    if (r->m.has_lora) hash_floats(&h, r->m.lora_mem, r->m.n_lora);  // an --adapter's, or the seed's init
    vet_sha256_final(&h, digest);
    vet_sha256_to_hex(digest, r->base_id);
    char both[140];
    snprintf(both, sizeof both, "%s/%s", r->train.content_sha256, r->val.n_rows ? r->val.content_sha256 : "");
    vet_sha256_hex(both, strlen(both), r->data_id);
}
