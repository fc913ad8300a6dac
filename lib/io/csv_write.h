// csv_write.h — CSV fields out, as RFC 4180 has them and csv.h reads them back.
#ifndef VET_CSV_WRITE_H
#define VET_CSV_WRITE_H

#include <stdio.h>

// Writes s as one field, then ',' (last 0) or '\n' (last 1). A field that holds a comma, a quote
// or a line end is quoted and its quotes doubled; any other is written as it is. Write errors
// are left in f's error flag for the caller's one ferror check.
void vet_csv_write_field(FILE *f, const char *s, int last);

#endif
