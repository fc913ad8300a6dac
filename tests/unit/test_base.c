// test_base.c — lib/base's shared pieces: error kinds, the numeric parser every flag uses,
// the string table and atomic output files.
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "base/atomic_file.h"
#include "base/err.h"
#include "base/input_file.h"
#include "base/numparse.h"
#include "base/strtab.h"
#include "base/trim.h"
#include "base/utf8.h"

static void err_kinds_survive_prefix(void) {
    vet_err e;
    CHECK(vet_errf(&e, "bad row") == -1);
    CHECK(e.kind == VET_E_INPUT && e.line == 0);
    vet_err_io(&e, "%s: cannot open", "x.csv");
    vet_err_at_line(&e, 12);
    vet_err_prefix(&e, "vet-x");
    CHECK(e.kind == VET_E_IO && e.line == 12);
    CHECK_STR(e.msg, "vet-x: x.csv: cannot open");
    vet_err_kindf(&e, VET_E_NONFINITE, "loss");
    CHECK(e.kind == VET_E_NONFINITE && e.line == 0);
    CHECK_STR(vet_err_kind_name(VET_E_NOMEM), "out of memory");
    CHECK(vet_err_at(&e, "notes.csv", 7, "no column '%s'", "note") == -1);
    CHECK(e.kind == VET_E_INPUT && e.line == 7);
    CHECK_STR(e.msg, "notes.csv:7: no column 'note'");
}

// Values that strtol would wrap, clamp or half-read are refused, with the range in the message.
static void parse_long_refuses_what_strtol_accepts(void) {
    vet_err e;
    long x = -7;
    CHECK(vet_parse_long("16", 1, 100, &x, &e) == 0 && x == 16);
    CHECK(vet_parse_long("-3", -5, 5, &x, &e) == 0 && x == -3);
    CHECK(vet_parse_long("+3", 0, 5, &x, &e) == 0 && x == 3);
    const char *bad[] = {"4294967300", "99999999999999999999999", "", " 5", "5 ", "0x10", "1e3", "12abc", "-", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        x = -7;
        CHECK(vet_parse_long(bad[i], 0, INT_MAX, &x, &e) == -1);
        CHECK(x == -7);
        CHECK(e.kind == VET_E_USAGE);
    }
    CHECK(vet_parse_long("101", 1, 100, &x, &e) == -1);
    CHECK_CONTAINS(e.msg, "'101' is not an integer in [1, 100]");
    CHECK(vet_parse_long(NULL, 1, 100, &x, &e) == -1);
}

// Sizes: binary units only (18G is 18 GiB), whole numbers, no overflow past size_t.
static void parse_bytes_binary_units(void) {
    vet_err e;
    size_t x = 7;
    CHECK(vet_parse_bytes("18G", 0, SIZE_MAX, &x, &e) == 0 && x == (size_t)18 << 30);
    CHECK(vet_parse_bytes("24576m", 0, SIZE_MAX, &x, &e) == 0 && x == (size_t)24576 << 20);
    CHECK(vet_parse_bytes("512KiB", 0, SIZE_MAX, &x, &e) == 0 && x == 512 * 1024);
    CHECK(vet_parse_bytes("1T", 0, SIZE_MAX, &x, &e) == 0 && x == (size_t)1 << 40);
    CHECK(vet_parse_bytes("1000", 0, SIZE_MAX, &x, &e) == 0 && x == 1000);
    const char *bad[] = {"18GB", "1.5G", "", "G", " 1G", "1G ", "-1G", "1X", "1Gi", "20000000000T",
                         "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        x = 7;
        CHECK(vet_parse_bytes(bad[i], 0, SIZE_MAX, &x, &e) == -1);
        CHECK(x == 7 && e.kind == VET_E_USAGE);
    }
    CHECK(vet_parse_bytes("1K", 2048, SIZE_MAX, &x, &e) == -1);
    CHECK_CONTAINS(e.msg, "'1K' is not a size in [2048, ");
    CHECK(vet_parse_bytes(NULL, 0, 1, &x, &e) == -1);
}

static void parse_double_needs_finite_in_range(void) {
    vet_err e;
    double x = 0;
    CHECK(vet_parse_double("2e-4", 0, 10, &x, &e) == 0 && x == 2e-4);
    CHECK(vet_parse_double("0.99", 0, 0.99, &x, &e) == 0);
    CHECK(vet_parse_double("-.5e+1", -10, 10, &x, &e) == 0 && x == -5);
    CHECK(vet_parse_double("5.", 0, 10, &x, &e) == 0 && x == 5);
    CHECK(vet_parse_double("1e", 0, 10, &x, &e) == -1);  // an exponent without digits is trailing text
    // What strtod takes beyond decimal notation (hexadecimal, inf, nan) and what a double cannot
    // hold (1e-400 is not 0) are refused.
    const char *bad[] = {"nan", "inf", "-inf", "", " 1", "1 ", "1e999", "0.1x", "11", "0x10", "0x.8p1", "0X1",
                         "infinity", "1e-400", ".", "+", "e5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK(vet_parse_double(bad[i], 0, 10, &x, &e) == -1);
    CHECK_CONTAINS(e.msg, "is not a number in [0, 10]");
    char *end;
    CHECK(vet_strtod_decimal("0x10", &end) == 0 && *end == 'x');
}

static void strtab_ids_follow_first_appearance(void) {
    vet_strtab t = {0};
    CHECK(vet_strtab_find(&t, "a") == -1);
    char buf[32];
    for (int i = 0; i < 1000; i++) {  // past several grows
        snprintf(buf, sizeof buf, "k%d", i);
        CHECK(vet_strtab_intern(&t, buf) == i);
    }
    CHECK(vet_strtab_intern(&t, "k7") == 7);
    CHECK(vet_strtab_find(&t, "k999") == 999);
    CHECK(vet_strtab_find(&t, "k1000") == -1);
    CHECK(vet_strtab_intern(&t, "") == 1000);
    CHECK(t.n == 1001);
    CHECK_STR(t.str[3], "k3");
    vet_strtab_free(&t);
    CHECK(t.n == 0 && vet_strtab_find(&t, "k1") == -1);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static void atomic_file_visible_only_when_whole(void) {
    char dir[] = "/tmp/vet-test-base.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], tmp[300];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    vet_err e;
    vet_afile a;
    // Committed: the final name holds the bytes, the temporary is gone.
    CHECK(vet_afile_open(&a, path, &e) == 0);
    fputs("hello\n", a.f);
    CHECK(exists(tmp) && !exists(path));
    CHECK(vet_afile_commit(&a, &e) == 0);
    CHECK(exists(path) && !exists(tmp));
    // Aborted: the old file stays as it was, the temporary is removed.
    CHECK(vet_afile_open(&a, path, &e) == 0);
    fputs("half", a.f);
    vet_afile_abort(&a);
    CHECK(!exists(tmp));
    FILE *f = fopen(path, "r");
    char line[32] = "";
    CHECK(f && fgets(line, sizeof line, f));
    if (f) fclose(f);
    CHECK_STR(line, "hello\n");
    // Finished but not published: nothing renamed yet (a run with several outputs).
    CHECK(vet_afile_open(&a, path, &e) == 0);
    fputs("new\n", a.f);
    CHECK(vet_afile_finish(&a, &e) == 0);
    CHECK(exists(tmp));
    CHECK(vet_afile_publish(&a, &e) == 0);
    CHECK(!exists(tmp));
    // A directory that does not exist: an I/O error naming the temporary.
    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/missing/out.txt", dir);
    CHECK(vet_afile_open(&a, nodir, &e) == -1);
    CHECK(e.kind == VET_E_IO);
    CHECK_CONTAINS(e.msg, "cannot create");
    // A device is written in place, never replaced by a file.
    CHECK(vet_afile_open(&a, "/dev/null", &e) == 0 && a.in_place);
    fputs("x", a.f);
    CHECK(vet_afile_commit(&a, &e) == 0);
    struct stat st;
    CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    // A full disk: the write fails at finish, nothing is left behind.
    if (exists("/dev/full")) {
        CHECK(vet_afile_open(&a, "/dev/full", &e) == 0);
        for (int i = 0; i < 10000; i++) fputs("0123456789", a.f);
        CHECK(vet_afile_commit(&a, &e) == -1);
        CHECK(e.kind == VET_E_IO);
    }
    unlink(path);
    rmdir(dir);
}

// A symlink is followed to its file, which is replaced whole; the link stays a link. A dangling
// one is written through (its target created), as the shell's `>` would.
static void atomic_file_follows_symlinks(void) {
    char dir[] = "/tmp/vet-test-base.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char real[256], link[256], dangling[256], made[256];
    snprintf(real, sizeof real, "%s/real.txt", dir);
    snprintf(link, sizeof link, "%s/link.txt", dir);
    snprintf(dangling, sizeof dangling, "%s/dangling.txt", dir);
    snprintf(made, sizeof made, "%s/made.txt", dir);
    FILE *f = fopen(real, "w");
    CHECK(f && fputs("old\n", f) >= 0);
    if (f) fclose(f);
    CHECK(symlink("real.txt", link) == 0 && symlink("made.txt", dangling) == 0);
    vet_err e;
    vet_afile a;
    CHECK(vet_afile_open(&a, link, &e) == 0 && !a.in_place);
    fputs("new\n", a.f);
    CHECK(vet_afile_commit(&a, &e) == 0);
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    char line[32] = "";
    f = fopen(real, "r");
    CHECK(f && fgets(line, sizeof line, f));
    if (f) fclose(f);
    CHECK_STR(line, "new\n");
    CHECK(vet_afile_open(&a, dangling, &e) == 0 && a.in_place);
    fputs("x\n", a.f);
    CHECK(vet_afile_commit(&a, &e) == 0);
    CHECK(lstat(dangling, &st) == 0 && S_ISLNK(st.st_mode) && exists(made));
    unlink(link), unlink(dangling), unlink(real), unlink(made);
    rmdir(dir);
}

// One U+FFFD for each maximal ill-formed subpart, as Python's bytes.decode("utf-8", "replace")
// prints them (the expected strings are what Python 3.11 gives): a sequence cut short is one, a
// surrogate or an overlong form is one per byte (their second byte can continue nothing).
static void utf8_repair_maximal_subparts(void) {
    static const struct { const char *in, *want; } cases[] = {
        {"a\xff\xc3\xa9\xe2\x82\x01\x80\x02" "b", "a\xEF\xBF\xBD\xc3\xa9\xEF\xBF\xBD\x01\xEF\xBF\xBD\x02" "b"},
        {"\xf0\x9f\x98", "\xEF\xBF\xBD"},
        {"\xe2\x82x", "\xEF\xBF\xBDx"},
        {"\xed\xa0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xc0\xaf", "\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xf4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"caf\xc3\xa9 \xf0\x9f\x90\x84", "caf\xc3\xa9 \xf0\x9f\x90\x84"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got = vet_utf8_repair(cases[i].in);
        CHECK_STR(got, cases[i].want);
        free(got);
    }
    size_t off = 99;
    CHECK(!vet_utf8_valid("ok\xe2\x82", 4, &off) && off == 2);
    CHECK(vet_utf8_valid("ok\xe2\x82\xac", 5, NULL));
}

// One rule for the byte order mark, on bytes (CSV, the header check, templates) and on a stream
// (vet_skip_bom): the whole mark is skipped, a start of one is text and stays, byte for byte.
static void utf8_bom_skipped_whole_only(void) {
    CHECK(vet_utf8_bom_len("\xEF\xBB\xBFid", 5) == 3);
    CHECK(vet_utf8_bom_len("\xEF\xBB\xBF", 3) == 3);
    CHECK(vet_utf8_bom_len("\xEF\xBB\xBF", 2) == 0);  // only n bytes are looked at
    CHECK(vet_utf8_bom_len("\xEF\xBBx", 3) == 0 && vet_utf8_bom_len("", 0) == 0);
    static const struct { const char *in; size_t n; const char *left; size_t left_n; } cases[] = {
        {"\xEF\xBB\xBFid", 5, "id", 2}, {"\xEF\xBB\xBF", 3, "", 0}, {"\xEF\xBB", 2, "\xEF\xBB", 2},
        {"\xEF\xBBx", 3, "\xEF\xBBx", 3}, {"\xEFxy", 3, "\xEFxy", 3}, {"id", 2, "id", 2}, {"", 0, "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        FILE *f = tmpfile();
        fwrite(cases[i].in, 1, cases[i].n, f);
        rewind(f);
        vet_skip_bom(f);
        char got[8];
        size_t n = fread(got, 1, sizeof got, f);
        CHECK(n == cases[i].left_n && memcmp(got, cases[i].left, n) == 0);
        fclose(f);
    }
}

// The six ASCII blanks and nothing else: a no-break space (C2 A0) is a character of the text,
// and a locale cannot change that.
static void trim_ascii_blanks_only(void) {
    char a[] = " \t\r\n\v\fFoot rot \r\n";
    CHECK_STR(vet_trim(a), "Foot rot");
    char b[] = "\xc2\xa0" "Cow\xc2\xa0";
    CHECK_STR(vet_trim(b), "\xc2\xa0" "Cow\xc2\xa0");
    char c[] = " \t ";
    CHECK_STR(vet_trim(c), "");
    size_t n = 7;
    const char *t = vet_trim_span("  12;34", &n);  // a span of a longer string: only n bytes read
    CHECK(n == 5 && t[0] == '1');
    n = 3;
    CHECK(vet_trim_span(" \n 9", &n) && n == 0);
    CHECK(vet_is_blank_str("") && vet_is_blank_str(" \r\n") && !vet_is_blank_str(" x "));
}

int main(void) {
    RUN(err_kinds_survive_prefix);
    RUN(parse_long_refuses_what_strtol_accepts);
    RUN(parse_double_needs_finite_in_range);
    RUN(parse_bytes_binary_units);
    RUN(strtab_ids_follow_first_appearance);
    RUN(atomic_file_visible_only_when_whole);
    RUN(atomic_file_follows_symlinks);
    RUN(utf8_repair_maximal_subparts);
    RUN(utf8_bom_skipped_whole_only);
    RUN(trim_ascii_blanks_only);
    CHECK_EXIT();
}
