// csv.h — a streaming RFC 4180 reader: one row at a time, memory bounded by the longest row.
//
// Accepts: quoted fields with embedded commas, quotes ("") and newlines; LF, CRLF or CR alone
// as line ends (old Mac and some Excel exports), mixed in one file too; a UTF-8 byte order mark
// at the start; a last row with or without a line end. Blank lines are skipped. A quote inside
// an unquoted field is kept as data (as Python's csv does).
// Rejects a row (vet_csv_next returns VET_CSV_BAD; the next call goes on with the next line):
// a character other than , or a line end after a closing quote, a quoted field still open at
// end of input, a row longer than VET_CSV_MAX_ROW bytes.
// Stops for good (VET_CSV_FATAL, then the same on every call) where it cannot find the next
// row: no line end within VET_CSV_MAX_ROW bytes (a device, a binary file), a quoted field open
// for that long, more than VET_CSV_MAX_FIELDS fields in a row. So memory stays bounded on any
// input, /dev/zero included.
#ifndef VET_CSV_H
#define VET_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "base/err.h"

#define VET_CSV_MAX_ROW (64u << 20)  // 64 MiB: past this an unbalanced quote is the likely cause
#define VET_CSV_MAX_FIELDS (1u << 16)  // columns in a row; real notes files have a handful

enum { VET_CSV_ROW = 1, VET_CSV_EOF = 0, VET_CSV_BAD = -1, VET_CSV_IOERR = -2, VET_CSV_FATAL = -3 };

typedef struct vet_csv vet_csv;

// Reads from f (not closed by vet_csv_close); name is used in messages ("notes.csv:12: ...").
vet_csv *vet_csv_open(FILE *f, const char *name, vet_err *err);
// Next row: VET_CSV_ROW, VET_CSV_EOF, VET_CSV_BAD (err says "name:line: why" and err->line is
// that line; the row's raw text is still available), VET_CSV_FATAL (err as for BAD; nothing
// more can be read) or VET_CSV_IOERR.
int vet_csv_next(vet_csv *c, vet_err *err);
// A header row (the current row) whose names repeat: -1 with err "name:line: column 'X' appears
// twice in the header (columns I and J)", VET_E_INPUT; 0 when every name is distinct. fold_case
// compares names without case (for readers that look columns up that way).
int vet_csv_check_header(const vet_csv *c, int fold_case, vet_err *err);
size_t vet_csv_nfields(const vet_csv *c);
// Field i of the current row, NUL-terminated (the field may itself hold NUL bytes: use *len).
const char *vet_csv_field(const vet_csv *c, size_t i, size_t *len);
// Physical line (1-based) where the current row starts.
long vet_csv_line(const vet_csv *c);
// Why the last VET_CSV_BAD row was rejected: err's message without its "name:line: ".
const char *vet_csv_reason(const vet_csv *c);
// The current row's bytes as they were in the file, without its line end (NUL-terminated); the
// same however often it is called.
const char *vet_csv_raw(vet_csv *c, size_t *len);
void vet_csv_close(vet_csv *c);

#endif
