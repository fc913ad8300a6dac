// numparse.h — a number from a flag or a field, whole and in range, or a clear refusal.
//
// strtol alone wraps nothing but accepts too much: leading blanks, an empty string, trailing
// junk, and a value past LONG_MAX that it clamps with only errno to tell. Every numeric flag of
// every program goes through these two (tools/cli.h: cli_long, cli_double), so that
// `--lora-r 4294967300` is refused, never taken as 4.
#ifndef VET_NUMPARSE_H
#define VET_NUMPARSE_H

#include <stddef.h>

#include "base/err.h"

// A decimal integer (optional sign, digits only, nothing around it) in [lo, hi]. 0 with *out
// set, or -1 with err (VET_E_USAGE): "'S' is not an integer in [lo, hi]".
int vet_parse_long(const char *s, long lo, long hi, long *out, vet_err *err);

// A finite number in decimal notation (vet_strtod_decimal, nothing around it) in [lo, hi]; one
// too small for a double (1e-400) is refused rather than read as 0. 0 with *out set, or -1 with
// err (VET_E_USAGE): "'S' is not a number in [lo, hi]".
int vet_parse_double(const char *s, double lo, double hi, double *out, vet_err *err);

// strtod limited to decimal notation: [+-] digits [. digits] [(e|E) [+-] digits], at least one
// digit before the exponent. What C's strtod also takes (hexadecimal 0x1p4, inf, nan,
// "infinity") is no number a person types for a rate or a share, so it ends the number there:
// "0x10" reads as 0 with *end at 'x'. *end == s when no number starts at s. errno as strtod
// sets it (ERANGE for overflow and underflow).
double vet_strtod_decimal(const char *s, char **end);

// A size in bytes: a whole number with an optional binary suffix K, M, G or T (also KiB, MiB,
// GiB, TiB; any case), "18G" = 18 x 2^30, in [lo, hi]. A decimal suffix (GB) is refused
// rather than guessed at. 0 with *out set, or -1 with err (VET_E_USAGE).
int vet_parse_bytes(const char *s, size_t lo, size_t hi, size_t *out, vet_err *err);

#endif
