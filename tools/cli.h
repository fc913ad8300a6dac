// cli.h — what every vet program does the same way: messages, exit codes, --version.
// Header-only and only for tools/: library code never exits.
#ifndef VET_CLI_H
#define VET_CLI_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Exit statuses shared by all programs (each man page lists them).
enum {
    EXIT_OK = 0,
    EXIT_BAD_INPUT = 1,  // input that is not what it should be (bad row, bad stream, bad model)
    EXIT_USAGE = 2,      // bad flags or arguments
    EXIT_IO = 3,         // a file could not be read or written (missing, no space, permissions)
};

static const char *cli_prog = "vet";

// Prints "prog: message" on stderr.
static inline void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void cli_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

// Prints "prog: message" and exits with status.
static inline void cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static inline void cli_fail(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(status);
}

static inline void cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (try '%s --help')\n", cli_prog);
    va_end(ap);
    exit(EXIT_USAGE);
}

static inline void cli_version(void) __attribute__((noreturn));
static inline void cli_version(void) {
    printf("%s %s\n", cli_prog, VET_VERSION);
    exit(EXIT_OK);
}

// True when stderr is a terminal: progress bars and summaries only then.
static inline int cli_stderr_is_tty(void) { return isatty(2); }

#endif
