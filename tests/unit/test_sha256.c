// test_sha256.c — SHA-256 against the FIPS 180-4 / NIST example vectors, and incremental
// updates of every split against the one-shot digest.
#include <stdint.h>

#include "check.h"
#include "base/sha256.h"

static void known_vectors(void) {
    char hex[65];
    vet_sha256_hex("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    vet_sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    vet_sha256_hex(m448, strlen(m448), hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                       "klmnopqrlmnopqrsmnopqrstnopqrstu";
    vet_sha256_hex(m896, strlen(m896), hex);
    CHECK_STR(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void million_a(void) {
    vet_sha256 s;
    uint8_t d[32];
    char hex[65], chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    vet_sha256_init(&s);
    for (int i = 0; i < 1000; i++) vet_sha256_update(&s, chunk, sizeof chunk);
    vet_sha256_final(&s, d);
    vet_sha256_to_hex(d, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Lengths around the 55/56/64-byte padding edges, fed in two pieces split at every offset.
static void incremental_splits(void) {
    uint8_t msg[200];
    for (int i = 0; i < 200; i++) msg[i] = (uint8_t)(i * 7 + 3);
    const size_t lens[] = {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 200};
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        char want[65], got[65];
        vet_sha256_hex(msg, lens[k], want);
        for (size_t cut = 0; cut <= lens[k]; cut++) {
            vet_sha256 s;
            uint8_t d[32];
            vet_sha256_init(&s);
            vet_sha256_update(&s, msg, cut);
            vet_sha256_update(&s, msg + cut, lens[k] - cut);
            vet_sha256_final(&s, d);
            vet_sha256_to_hex(d, got);
            if (strcmp(got, want) != 0) {
                fprintf(stderr, "len %zu cut %zu: %s != %s\n", lens[k], cut, got, want);
                CHECK(0);
                return;
            }
        }
    }
}

static void file_hash(void) {
    char path[] = "/tmp/vet-sha256-XXXXXX", hex[65];
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("abc", f);
    fclose(f);
    vet_err err;
    CHECK(vet_sha256_file(path, hex, &err) == 0);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    remove(path);
    CHECK(vet_sha256_file(path, hex, &err) == -1);
    CHECK_CONTAINS(err.msg, "cannot open");
}

int main(void) {
    RUN(known_vectors);
    RUN(million_a);
    RUN(incremental_splits);
    RUN(file_hash);
    CHECK_EXIT();
}
