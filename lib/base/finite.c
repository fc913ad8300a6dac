// finite.c — see finite.h.
#include "base/finite.h"

#include <math.h>
#include <string.h>

// A float is not finite exactly when its exponent bits are all ones; an integer OR over those
// tests vectorizes (a float sum would not, and 7B weights are scanned on every load). Only when
// one is found does the second, exact pass look for its index.
int64_t vet_first_nonfinite(const float *x, int64_t n) {
    uint32_t any = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        any |= (u & 0x7f800000u) == 0x7f800000u;
    }
    if (!any) return -1;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}
