// numparse.c — see numparse.h.
#include "base/numparse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

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

int vet_parse_double(const char *s, double lo, double hi, double *out, vet_err *err) {
    char *end;
    errno = 0;
    double x = 0;
    int ok = s && *s && !isspace((unsigned char)s[0]);
    if (ok) {
        x = strtod(s, &end);
        ok = *end == 0 && isfinite(x) && x >= lo && x <= hi;
    }
    if (!ok) return vet_err_kindf(err, VET_E_USAGE, "'%s' is not a number in [%g, %g]", s ? s : "", lo, hi);
    *out = x;
    return 0;
}
