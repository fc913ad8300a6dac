// check.h — the unit-test harness: a few macros, no framework.
//
// Each test binary prints one line per test case, which tests/run counts:
//   ok NAME            the case passed
//   not ok NAME        at least one CHECK failed (the failures are on stderr)
//   skip NAME: why     the case could not run here (e.g. ../shared absent)
// A binary that exits non-zero without a `not ok` line counts as one failure.
#ifndef VET_CHECK_H
#define VET_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures_;     // failures in the current case
static int check_total_failed_; // cases failed in this binary
static const char *check_skip_; // set by SKIP()

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,    \
                    #cond);                                                     \
            check_failures_++;                                                  \
        }                                                                       \
    } while (0)

// |a - b| <= tol * max(1, |b|): relative for large values, absolute near zero.
#define CHECK_NEAR(a, b, tol)                                                   \
    do {                                                                        \
        double a_ = (a), b_ = (b), t_ = (tol);                                  \
        double s_ = fabs(b_) > 1.0 ? fabs(b_) : 1.0;                            \
        if (!(fabs(a_ - b_) <= t_ * s_)) {                                      \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g, tol %g\n", \
                    __FILE__, __LINE__, #a, a_, #b, b_, t_);                    \
            check_failures_++;                                                  \
        }                                                                       \
    } while (0)

#define CHECK_STR(a, b)                                                         \
    do {                                                                        \
        const char *a_ = (a), *b_ = (b);                                        \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s = \"%s\", expected \"%s\"\n", \
                    __FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
            check_failures_++;                                                  \
        }                                                                       \
    } while (0)

// Fails the case if haystack does not contain needle (for error messages).
#define CHECK_CONTAINS(haystack, needle)                                        \
    do {                                                                        \
        const char *h_ = (haystack), *n_ = (needle);                            \
        if (!h_ || !strstr(h_, n_)) {                                           \
            fprintf(stderr, "%s:%d: CHECK_CONTAINS failed: \"%s\" lacks \"%s\"\n", \
                    __FILE__, __LINE__, h_ ? h_ : "(null)", n_);                \
            check_failures_++;                                                  \
        }                                                                       \
    } while (0)

#define SKIP(why) do { check_skip_ = (why); return; } while (0)

static inline void check_run_(const char *name, void (*fn)(void)) {
    check_failures_ = 0;
    check_skip_ = NULL;
    fn();
    if (check_skip_) {
        printf("skip %s: %s\n", name, check_skip_);
    } else if (check_failures_) {
        printf("not ok %s\n", name);
        check_total_failed_++;
    } else {
        printf("ok %s\n", name);
    }
    fflush(stdout);
}

#define RUN(fn) check_run_(#fn, fn)
#define CHECK_EXIT() return check_total_failed_ ? 1 : 0

// The shared data directory (../shared relative to the repo), or NULL when absent.
// tests/run exports VET_SHARED when it exists.
static inline const char *check_shared_dir(void) {
    const char *d = getenv("VET_SHARED");
    return (d && *d) ? d : NULL;
}

#endif
