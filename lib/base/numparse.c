// numparse.c — see numparse.h.
#include "base/numparse.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int vet_parse_long(const char *s, long lo, long hi, long *out, vet_err *err) {
    char *end;
    errno = 0;
    long x = 0;
    int ok = s && (isdigit((unsigned char)s[0]) || ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1])));
    if (ok) {
        x = strtol(s, &end, 10);
        ok = *end == 0 && errno != ERANGE && x >= lo && x <= hi;
    }
    if (!ok) return vet_err_kindf(err, VET_E_USAGE, "'%s' is not an integer in [%ld, %ld]", s ? s : "", lo, hi);
    *out = x;
    return 0;
}

double vet_strtod_decimal(const char *s, char **end) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    size_t digits = 0;
    for (; isdigit((unsigned char)*p); p++) digits++;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++) digits++;
    if (!digits) {
        *end = (char *)s;
        return 0;
    }
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        if (*q == '+' || *q == '-') q++;
        if (isdigit((unsigned char)*q)) {
            for (; isdigit((unsigned char)*q); q++) {}
            p = q;
        }
    }
    // strtod on exactly this prefix: a copy, since strtod itself would read on into "0x10".
    char buf[128];
    size_t n = (size_t)(p - s);
    if (n >= sizeof buf) {  // 127 characters of digits is no flag value: "no number here"
        *end = (char *)s;
        return 0;
    }
    memcpy(buf, s, n), buf[n] = 0;
    char *e;
    double x = strtod(buf, &e);
    *end = (char *)s + (e - buf);
    return x;
}

int vet_parse_double(const char *s, double lo, double hi, double *out, vet_err *err) {
    char *end;
    errno = 0;
    double x = 0;
    int ok = s && *s;
    if (ok) {
        x = vet_strtod_decimal(s, &end);
        ok = end != s && *end == 0 && errno != ERANGE && isfinite(x) && x >= lo && x <= hi;
    }
    if (!ok) return vet_err_kindf(err, VET_E_USAGE, "'%s' is not a number in [%g, %g]", s ? s : "", lo, hi);
    *out = x;
    return 0;
}

int vet_parse_bytes(const char *s, size_t lo, size_t hi, size_t *out, vet_err *err) {
    static const char units[] = "KMGT";
    const char *p = s ? s : "";
    unsigned long long x = 0;
    int digits = 0, ok = 1;
    for (; isdigit((unsigned char)*p); p++, digits++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (ULLONG_MAX - d) / 10) ok = 0;
        else x = x * 10 + d;
    }
    int shift = 0;
    if (*p) {
        const char *u = strchr(units, toupper((unsigned char)*p));
        if (!u) ok = 0;
        else shift = 10 * (int)(u - units + 1), p++;
        if (ok && (!strcmp(p, "iB") || !strcmp(p, "ib") || !strcmp(p, "IB"))) p += 2;
        if (*p) ok = 0;  // "GB", "12G5", "1.5G": not a binary size we can read exactly
    }
    if (ok && digits && shift && x > (SIZE_MAX >> shift)) ok = 0;
    if (ok && digits) x <<= shift;
    if (!ok || !digits || x < lo || x > hi)
        return vet_err_kindf(err, VET_E_USAGE,
                             "'%s' is not a size in [%zu, %zu] bytes (a whole number, optionally with K, M, G or T: "
                             "binary units, 18G = 18 GiB)",
                             s ? s : "", lo, hi);
    *out = (size_t)x;
    return 0;
}
