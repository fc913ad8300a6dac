// err.c — see err.h.
#include "err.h"

#include <stdio.h>
#include <string.h>

int vet_errf(vet_err *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int vet_err_prefix(vet_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    size_t p = strlen(prefix);
    if (p > sizeof err->msg - 3) p = sizeof err->msg - 3;
    memcpy(err->msg, prefix, p);
    memcpy(err->msg + p, ": ", 2);
    size_t room = sizeof err->msg - p - 3, o = strlen(old);
    if (o > room) o = room;
    memcpy(err->msg + p + 2, old, o);
    err->msg[p + 2 + o] = 0;
    return -1;
}
