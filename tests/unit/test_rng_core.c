// test_rng_core.c — lib/base/rng_core.h, the arithmetic of lib/base/rng.c's generator as
// __host__ __device__ functions: its values pinned, its streams equal to lib/base/rng.c's.
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "base/rng.h"
#include "base/rng_core.h"

// Values from an independent implementation (Python integers, written from the algorithms'
// definitions); the splitmix64 ones are also the published reference outputs for seed 1234567.
static void test_pinned_values(void) {
    uint64_t s = 1234567;
    CHECK(vet_rng_core_splitmix64(&s) == 6457827717110365317ull);
    CHECK(vet_rng_core_splitmix64(&s) == 3203168211198807973ull);
    CHECK(vet_rng_core_splitmix64(&s) == 9817491932198370423ull);
    CHECK(vet_rng_core_hash(42, 7) == 1587005860896957696ull);
    CHECK(vet_rng_core_hash(0, 0) == 12035550249420947055ull);
    uint64_t st[4];
    vet_rng_core_seed(st, vet_rng_core_hash(2024, 3));
    CHECK(vet_rng_core_next(st) == 14928666673034737095ull);
    CHECK(vet_rng_core_next(st) == 7071366517489658730ull);
    CHECK(vet_rng_core_next(st) == 12294565562982141740ull);
    CHECK(vet_rng_core_uniform(st) == 0x1.c4c73ap-1f);
    CHECK(vet_rng_core_uniform(st) == 0x1.5447p-6f);
    CHECK(vet_rng_core_uniform(st) == 0x1.fc6b64p-2f);
    // and lib/base/rng.c, built on the core, gives the same
    s = 1234567;
    CHECK(vet_splitmix64(&s) == 6457827717110365317ull);
    CHECK(vet_rng_hash(42, 7) == 1587005860896957696ull);
    vet_rng r;
    vet_rng_seed(&r, vet_rng_hash(2024, 3));
    CHECK(vet_rng_next(&r) == 14928666673034737095ull);
}

// A dropout row's stream (seed vet_rng_hash(seed, n)) drawn by the core and by vet_rng.
static void test_row_streams_equal_vet_rng(void) {
    const uint64_t seeds[] = {0, 1, 7, 0xdeadbeefcafef00dull, UINT64_MAX};
    int bad = 0;
    for (int k = 0; k < 5; k++)
        for (uint64_t n = 0; n < 300; n += 37) {
            vet_rng r;
            uint64_t s[4];
            vet_rng_seed(&r, vet_rng_hash(seeds[k], n));
            vet_rng_core_seed(s, vet_rng_core_hash(seeds[k], n));
            for (int i = 0; i < 1000; i++) {
                float a = vet_rng_uniform(&r), b = vet_rng_core_uniform(s);
                if (memcmp(&a, &b, sizeof a) != 0 || !(b >= 0.0f && b < 1.0f)) bad++;
            }
        }
    CHECK(bad == 0);
}

int main(void) {
    RUN(test_pinned_values);
    RUN(test_row_streams_equal_vet_rng);
    CHECK_EXIT();
}
