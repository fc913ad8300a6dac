// err.c — see err.h.
#include "base/err.h"

#include <stdio.h>
#include <string.h>

static int set(vet_err *err, vet_err_kind kind, const char *fmt, va_list ap) {
    if (!err) return -1;
    err->kind = kind;
    err->line = 0;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return -1;
}

int vet_errf(vet_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set(err, VET_E_INPUT, fmt, ap);
    va_end(ap);
    return -1;
}

int vet_err_kindf(vet_err *err, vet_err_kind kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set(err, kind, fmt, ap);
    va_end(ap);
    return -1;
}

int vet_err_io(vet_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set(err, VET_E_IO, fmt, ap);
    va_end(ap);
    return -1;
}

int vet_err_nomem(vet_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set(err, VET_E_NOMEM, fmt, ap);
    va_end(ap);
    return -1;
}

int vet_err_at(vet_err *err, const char *name, long line, const char *fmt, ...) {
    if (!err) return -1;
    char what[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    vet_errf(err, "%s:%ld: %s", name, line, what);
    err->line = line;
    return -1;
}

int vet_err_at_line(vet_err *err, long line) {
    if (err) err->line = line;
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

const char *vet_err_kind_name(vet_err_kind kind) {
    switch (kind) {
    case VET_E_INPUT: return "bad input";
    case VET_E_USAGE: return "usage";
    case VET_E_IO: return "I/O";
    case VET_E_NOMEM: return "out of memory";
    case VET_E_NONFINITE: return "non-finite";
    }
    return "error";
}
