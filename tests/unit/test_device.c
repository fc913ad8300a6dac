// test_device.c — vet_cuda_available answers without crashing, on any machine.
//
// In CI (and on the development machine) there is no GPU: the probe must return 0 with a
// reason. On a GPU machine it must return 1. VET_EXPECT_GPU=1|0 states which is expected
// (unset: either answer is fine as long as it is consistent and explained).
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/host/device.h"

static void test_probe_answers(void) {
    char why[512];
    memset(why, 'x', sizeof why);
    int ok = vet_cuda_available(why, sizeof why);
    CHECK(ok == 0 || ok == 1);
    CHECK(memchr(why, '\0', sizeof why) != NULL);  // always a terminated string
    if (!ok) CHECK(strlen(why) > 0);                // a "no" always says why
    const char *expect = getenv("VET_EXPECT_GPU");
    if (expect && *expect) CHECK(ok == atoi(expect));
    fprintf(stderr, "vet_cuda_available: %d (%s)\n", ok, ok ? "GPU usable" : why);
}

static void test_probe_repeatable(void) {
    // Asking twice (a tool may ask, then a library may ask again) gives the same answer.
    char a[256], b[256];
    int x = vet_cuda_available(a, sizeof a), y = vet_cuda_available(b, sizeof b);
    CHECK(x == y);
    CHECK_STR(a, b);
}

static void test_probe_small_buffers(void) {
    char tiny[4];
    int x = vet_cuda_available(tiny, sizeof tiny);
    CHECK(strlen(tiny) < sizeof tiny);  // truncated, never overrun
    CHECK(vet_cuda_available(NULL, 0) == x);
}

static void test_backends_named(void) {
    const char *b = vet_backends_built();
    CHECK(b && strncmp(b, "cpu", 3) == 0);
#ifdef VET_CUDA
    CHECK(strstr(b, "cuda") != NULL);
#else
    CHECK(strstr(b, "cuda") == NULL);
    char why[256];
    CHECK(vet_cuda_available(why, sizeof why) == 0);
    CHECK_CONTAINS(why, "without CUDA");
#endif
}

int main(void) {
    RUN(test_probe_answers);
    RUN(test_probe_repeatable);
    RUN(test_probe_small_buffers);
    RUN(test_backends_named);
    CHECK_EXIT();
}
