// cli.h — what every vet program does the same way: messages, exit codes, --version.
// Header-only and only for tools/: library code never exits.
#ifndef VET_CLI_H
#define VET_CLI_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/err.h"
#include "base/numparse.h"

// Exit statuses shared by all programs (each man page lists them).
enum {
    EXIT_OK = 0,
    EXIT_BAD_INPUT = 1,  // input that is not what it should be (bad row, bad stream, bad model)
    EXIT_USAGE = 2,      // bad flags or arguments
    EXIT_IO = 3,         // a file could not be read or written (missing, no space, permissions)
    EXIT_NONFINITE = 6,  // a NaN or Inf where a finite number must be (vet-train's loss or gradient)
};

static const char *cli_prog = "vet";

// The one map from an error's kind to the exit status every man page lists: tools branch on
// the kind, never on the message.
static inline int cli_exit_status(const vet_err *err) {
    switch (err->kind) {
    case VET_E_USAGE: return EXIT_USAGE;
    case VET_E_IO:
    case VET_E_NOMEM: return EXIT_IO;
    case VET_E_NONFINITE: return EXIT_NONFINITE;
    case VET_E_INPUT: break;
    }
    return EXIT_BAD_INPUT;
}

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

// Set once the program exits on an error it reported: stdout's check at exit (below) then stays
// quiet, so a failed write to stdout is reported once, with the program's own status.
static int cli_failed_;

// Prints "prog: message" and exits with status.
static inline void cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static inline void cli_fail(int status, const char *fmt, ...) {
    cli_failed_ = status != EXIT_OK;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(status);
}

// Prints "prog: <err's message>" and exits with the status of err's kind.
static inline void cli_fail_err(const vet_err *err) __attribute__((noreturn));
static inline void cli_fail_err(const vet_err *err) { cli_fail(cli_exit_status(err), "%s", err->msg); }

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

// A numeric flag's value, whole and within [lo, hi]; otherwise a usage error (exit 2) that names
// the flag and the range. The one parser of every numeric flag in every program.
static inline long cli_long(const char *flag, const char *v, long lo, long hi) {
    long x;
    vet_err err;
    if (vet_parse_long(v, lo, hi, &x, &err) < 0) cli_usage_error("%s: %s", flag, err.msg);
    return x;
}
static inline int cli_int(const char *flag, const char *v, int lo, int hi) { return (int)cli_long(flag, v, lo, hi); }
static inline double cli_double(const char *flag, const char *v, double lo, double hi) {
    double x;
    vet_err err;
    if (vet_parse_double(v, lo, hi, &x, &err) < 0) cli_usage_error("%s: %s", flag, err.msg);
    return x;
}

static inline void cli_version(void) __attribute__((noreturn));
static inline void cli_version(void) {
    printf("%s %s\n", cli_prog, VET_VERSION);
    exit(EXIT_OK);
}

// Whatever path a program takes to exit (return from main, exit(0) after --help), what it wrote
// to stdout must have reached it: `vet-x --help > /dev/full` fails with exit 3, not 0. Registered
// before main runs, so no program can forget it.
static inline void cli_close_stdout_(void) {
    if (cli_failed_) return;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: <stdout>: write failed: %s\n", cli_prog, strerror(errno ? errno : EIO));
        _exit(EXIT_IO);
    }
}
__attribute__((constructor)) static void cli_register_close_stdout_(void) { atexit(cli_close_stdout_); }

// A signal that ends the program (Ctrl-C, kill, a closed terminal, a reader gone from a pipe)
// first removes the outputs' temporaries, then ends it as the signal would have (the shell sees
// 128 + the signal), so no TARGET.tmp.PID is left behind. A signal the program was started
// ignoring (nohup, a background job's SIGINT) stays ignored; vet-train installs its own SIGINT
// and SIGTERM handlers (a checkpoint, then exit 5) over these.
static inline void cli_on_fatal_signal_(int sig) {
    vet_afile_remove_temporaries();
    signal(sig, SIG_DFL);
    raise(sig);  // delivered when the handler returns (the signal is blocked until then)
}
__attribute__((constructor)) static void cli_register_signal_cleanup_(void) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    struct sigaction sa = {0}, old;
    sa.sa_handler = cli_on_fatal_signal_;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN) sigaction(sigs[i], &sa, NULL);
}

// True when stderr is a terminal: progress bars and summaries only then.
static inline int cli_stderr_is_tty(void) { return isatty(2); }

#endif
