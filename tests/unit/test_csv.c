// test_csv.c — the RFC 4180 reader on the edge cases real exports produce.
#include "check.h"
#include "base/rng.h"
#include "io/csv.h"
#include "io/csv_write.h"

// Reads all of text and describes it: one "LINE:[f1|f2]" per row, "LINE:BAD" per rejected
// row, joined by spaces. The last error message goes to errbuf.
static char *parse(const char *text, size_t len, char *errbuf) {
    static char out[4096];
    out[0] = '\0';
    FILE *f = fmemopen((void *)text, len, "rb");
    vet_err err = {0};
    vet_csv *c = vet_csv_open(f, "t.csv", &err);
    int rc;
    while ((rc = vet_csv_next(c, &err)) != VET_CSV_EOF && rc != VET_CSV_IOERR) {
        char *o = out + strlen(out);
        if (rc == VET_CSV_FATAL) {
            sprintf(o, "%sFATAL", *out ? " " : "");
            if (errbuf) strcpy(errbuf, err.msg);
            break;
        }
        if (rc == VET_CSV_BAD) {
            sprintf(o, "%s%ld:BAD", *out ? " " : "", vet_csv_line(c));
            if (errbuf) strcpy(errbuf, err.msg);
            continue;
        }
        o += sprintf(o, "%s%ld:[", *out ? " " : "", vet_csv_line(c));
        for (size_t i = 0; i < vet_csv_nfields(c); i++)
            o += sprintf(o, "%s%s", i ? "|" : "", vet_csv_field(c, i, NULL));
        strcpy(o, "]");
    }
    vet_csv_close(c);
    fclose(f);
    return out;
}
#define P(s) parse(s, sizeof(s) - 1, NULL)

static void plain_rows(void) {
    CHECK_STR(P("a,b,c\n1,2,3\n"), "1:[a|b|c] 2:[1|2|3]");
    CHECK_STR(P("a,b\n1,2"), "1:[a|b] 2:[1|2]");  // no final newline
    CHECK_STR(P(""), "");
}

static void quoted_fields(void) {
    CHECK_STR(P("\"a,b\",c\n"), "1:[a,b|c]");
    CHECK_STR(P("\"say \"\"hi\"\"\",x\n"), "1:[say \"hi\"|x]");
    CHECK_STR(P("\"\",x\n"), "1:[|x]");
    // Embedded newlines: the next row's line number counts them.
    CHECK_STR(P("\"line1\nline2\",x\ny,z\n"), "1:[line1\nline2|x] 3:[y|z]");
    // A quote inside an unquoted field is data.
    CHECK_STR(P("ab\"c,d\n"), "1:[ab\"c|d]");
}

static void crlf_and_bom(void) {
    CHECK_STR(P("a,b\r\n1,2\r\n"), "1:[a|b] 2:[1|2]");
    CHECK_STR(P("\xEF\xBB\xBFid,note\r\n7,x\r\n"), "1:[id|note] 2:[7|x]");
    // CRLF inside quotes is kept as data.
    CHECK_STR(P("\"a\r\nb\",c\r\n"), "1:[a\r\nb|c]");
    // A lone CR ends a line, as in files from an old Mac or some Excel exports.
    CHECK_STR(P("a\rb,c\n"), "1:[a] 2:[b|c]");
}

// CR alone, LF and CRLF, mixed in one file: the same rows, the same line numbers.
static void cr_only_and_mixed(void) {
    CHECK_STR(P("id,note\r1,x\r2,y\r"), "1:[id|note] 2:[1|x] 3:[2|y]");
    CHECK_STR(P("id,note\r1,x\r\n2,y\n3,z"), "1:[id|note] 2:[1|x] 3:[2|y] 4:[3|z]");
    CHECK_STR(P("a\r\r\rb\r"), "1:[a] 4:[b]");              // blank CR lines are skipped, counted
    CHECK_STR(P("\"x\ry\",1\rz,2\r"), "1:[x\ry|1] 3:[z|2]");  // a CR inside quotes is data
    // After a rejected row the reader resyncs at a CR too.
    CHECK_STR(P("\"a\"b,c\rd,e\r"), "1:BAD 2:[d|e]");
}

// A row with no line end in sight (a device, a binary file) or too many fields stops the
// reader for good, with bounded memory; every later call says the same.
static void fatal_rows(void) {
    FILE *z = fopen("/dev/zero", "rb");  // NUL bytes without end and no line end
    vet_err err = {0};
    vet_csv *c = vet_csv_open(z, "zero", &err);
    CHECK(vet_csv_next(c, &err) == VET_CSV_FATAL);
    CHECK_CONTAINS(err.msg, "zero:1: row longer than 64 MiB");
    CHECK(vet_csv_next(c, &err) == VET_CSV_FATAL);
    CHECK_CONTAINS(err.msg, "zero:1: row longer than 64 MiB");
    vet_csv_close(c);
    fclose(z);
    char msg[1024] = "";
    size_t n = 2 * VET_CSV_MAX_FIELDS;
    char *t = malloc(n + 1);
    memset(t, ',', n);
    t[n] = '\n';
    CHECK_STR(parse(t, n + 1, msg), "FATAL");
    CHECK_CONTAINS(msg, "more than 65536 fields");
    free(t);
}

static const char *header_check(const char *text, int fold) {
    static char msg[1024];
    FILE *f = fmemopen((void *)text, strlen(text), "rb");
    vet_err err = {0};
    vet_csv *c = vet_csv_open(f, "t.csv", &err);
    strcpy(msg, vet_csv_next(c, &err) == VET_CSV_ROW && vet_csv_check_header(c, fold, &err) == 0 ? "ok" : err.msg);
    vet_csv_close(c);
    fclose(f);
    return msg;
}

static void duplicate_columns(void) {
    CHECK_STR(header_check("id,note,codes\n", 0), "ok");
    CHECK_STR(header_check("id,note,ID\n", 0), "ok");
    CHECK_CONTAINS(header_check("id,note,species,note\n", 0), "t.csv:1: column 'note' appears twice in the header (columns 2 and 4)");
    CHECK_CONTAINS(header_check("id,gold,Gold\n", 1), "column 'Gold' appears twice in the header (columns 2 and 3)");
}

static void empty_fields_and_blank_lines(void) {
    CHECK_STR(P("a,,c\n,,\n"), "1:[a||c] 2:[||]");
    CHECK_STR(P("a,b,\n"), "1:[a|b|]");
    CHECK_STR(P("a\n\n\nb\n\r\n"), "1:[a] 4:[b]");
}

static void unbalanced_quotes(void) {
    char msg[1024] = "";
    CHECK_STR(parse("a,b\n\"open,x\ny,z\n", 16, msg), "1:[a|b] 2:BAD");
    CHECK_CONTAINS(msg, "t.csv:2: unbalanced quote");
    CHECK_CONTAINS(msg, "end of input");
    // Text after a closing quote: that row is rejected, the next one is read.
    msg[0] = '\0';
    const char *t = "\"a\"b,c\nd,e\n";
    CHECK_STR(parse(t, strlen(t), msg), "1:BAD 2:[d|e]");
    CHECK_CONTAINS(msg, "t.csv:1: unbalanced quote: 'b' after the closing quote");
}

// A rejected row's error carries its line, and the reason comes apart from the "t.csv:LINE: ".
// After a quoted field that spans lines, the line is the one with the stray byte.
static void bad_row_line_and_reason(void) {
    const char *t = "a,b\n\"two\nlines\"x,c\nd,e\n";
    FILE *f = fmemopen((void *)t, strlen(t), "rb");
    vet_err err;
    vet_csv *c = vet_csv_open(f, "t.csv", &err);
    CHECK(vet_csv_next(c, &err) == VET_CSV_ROW);
    CHECK(vet_csv_next(c, &err) == VET_CSV_BAD);
    CHECK(vet_csv_line(c) == 2);
    CHECK(err.line == 3);
    CHECK(err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "t.csv:3: unbalanced quote: 'x' after the closing quote of field 1");
    CHECK(strncmp(vet_csv_reason(c), "unbalanced quote: 'x'", 21) == 0);
    CHECK(strstr(err.msg, vet_csv_reason(c)) == err.msg + strlen("t.csv:3: "));
    CHECK(vet_csv_next(c, &err) == VET_CSV_ROW);
    CHECK_STR(vet_csv_field(c, 0, NULL), "d");
    vet_csv_close(c);
    fclose(f);
}

static void raw_text(void) {
    const char *t = "h1,h2\r\n\"x\ny\",2\r\n";
    FILE *f = fmemopen((void *)t, strlen(t), "rb");
    vet_err err;
    vet_csv *c = vet_csv_open(f, "t.csv", &err);
    CHECK(vet_csv_next(c, &err) == VET_CSV_ROW);
    CHECK(vet_csv_next(c, &err) == VET_CSV_ROW);
    size_t n;
    const char *raw = vet_csv_raw(c, &n);
    CHECK(n == 7 && memcmp(raw, "\"x\ny\",2", 7) == 0);
    // Asked again (vet-tokenize checks the row's UTF-8, then writes it to the rejects file): the
    // same 7 bytes, not the NUL that the first call wrote over the line end as an 8th.
    raw = vet_csv_raw(c, &n);
    CHECK(n == 7 && memcmp(raw, "\"x\ny\",2", 8) == 0);
    size_t len;
    CHECK_STR(vet_csv_field(c, 0, &len), "x\ny");
    CHECK(len == 3);
    CHECK(vet_csv_field(c, 2, NULL) == NULL);
    CHECK(vet_csv_next(c, &err) == VET_CSV_EOF);
    vet_csv_close(c);
    fclose(f);
}

// The raw text less its one line end, the same bytes on every call: a row left open at end of
// input ending in "\r\r\n" lost one more CR on each call.
static void raw_text_idempotent(void) {
    const char *t = "h\r\nab\r\n\"x\r\r\n";
    FILE *f = fmemopen((void *)t, strlen(t), "rb");
    vet_err err;
    vet_csv *c = vet_csv_open(f, "t.csv", &err);
    CHECK(vet_csv_next(c, &err) == VET_CSV_ROW);
    CHECK(vet_csv_next(c, &err) == VET_CSV_ROW);
    size_t n;
    for (int call = 0; call < 2; call++) CHECK(memcmp(vet_csv_raw(c, &n), "ab", 3) == 0 && n == 2);
    CHECK(vet_csv_next(c, &err) == VET_CSV_BAD);  // the quote still open at end of input
    for (int call = 0; call < 3; call++) {
        const char *raw = vet_csv_raw(c, &n);
        CHECK(n == 3 && memcmp(raw, "\"x\r", 4) == 0);
    }
    vet_csv_close(c);
    fclose(f);
}

// Rows longer than the 64 KiB read buffer, and many rows: the buffers are reused.
static void long_rows(void) {
    size_t n = 200000;
    char *t = malloc(n + 16);
    strcpy(t, "a\n\"");
    memset(t + 3, 'x', n);
    strcpy(t + 3 + n, "\"\nb\n");
    FILE *f = fmemopen(t, strlen(t), "rb");
    vet_err err;
    vet_csv *c = vet_csv_open(f, "t.csv", &err);
    size_t len = 0;
    CHECK(vet_csv_next(c, &err) == VET_CSV_ROW);
    CHECK(vet_csv_next(c, &err) == VET_CSV_ROW);
    vet_csv_field(c, 0, &len);
    CHECK(len == n);
    CHECK(vet_csv_next(c, &err) == VET_CSV_ROW);
    CHECK_STR(vet_csv_field(c, 0, NULL), "b");
    CHECK(vet_csv_line(c) == 3);
    vet_csv_close(c);
    fclose(f);
    free(t);
}

// What vet_csv_write_field writes, vet_csv reads back field for field: rows of random fields made
// of the characters that need quoting (comma, quote, CR, LF), spaces and letters, empty ones too.
static void written_fields_read_back(void) {
    static const char alphabet[] = ",\"\r\n a;=";
    enum { ROWS = 400, COLS = 4, MAXLEN = 12 };
    static char want[ROWS][COLS][MAXLEN + 1];
    vet_rng rng;
    vet_rng_seed(&rng, 7);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < COLS; c++) {
            int n = (int)(vet_rng_next(&rng) % (MAXLEN + 1));
            for (int i = 0; i < n; i++) want[r][c][i] = alphabet[vet_rng_next(&rng) % (sizeof alphabet - 1)];
            want[r][c][n] = '\0';
            vet_csv_write_field(f, want[r][c], c == COLS - 1);
        }
    CHECK(fclose(f) == 0);
    FILE *in = fmemopen(buf, len, "rb");
    vet_err err = {0};
    vet_csv *csv = vet_csv_open(in, "w.csv", &err);
    int rows = 0, same = 1;
    for (int rc; (rc = vet_csv_next(csv, &err)) == VET_CSV_ROW; rows++) {
        if (rows >= ROWS || vet_csv_nfields(csv) != COLS) {
            same = 0;
            break;
        }
        for (int c = 0; c < COLS; c++) same &= strcmp(vet_csv_field(csv, c, NULL), want[rows][c]) == 0;
    }
    CHECK(same);
    CHECK(rows == ROWS);
    vet_csv_close(csv);
    fclose(in);
    free(buf);
    // A field needs quotes only when it holds one of the four characters.
    char *one = NULL;
    size_t n1 = 0;
    f = open_memstream(&one, &n1);
    vet_csv_write_field(f, "a b;c=d", 0);
    vet_csv_write_field(f, "say \"hi\", then\r\n", 1);
    CHECK(fclose(f) == 0);
    CHECK_STR(one, "a b;c=d,\"say \"\"hi\"\", then\r\n\"\n");
    free(one);
}

int main(void) {
    RUN(plain_rows);
    RUN(quoted_fields);
    RUN(crlf_and_bom);
    RUN(cr_only_and_mixed);
    RUN(fatal_rows);
    RUN(duplicate_columns);
    RUN(empty_fields_and_blank_lines);
    RUN(unbalanced_quotes);
    RUN(bad_row_line_and_reason);
    RUN(raw_text);
    RUN(raw_text_idempotent);
    RUN(long_rows);
    RUN(written_fields_read_back);
    CHECK_EXIT();
}
