// fuzz_csv.c — lib/csv.h on arbitrary bytes: every row's fields and raw text are read back, and
// the reader's promises checked (fields lie inside the row, the raw text holds no line end).
#include "fuzz_util.h"

#include "io/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[300];
    fz_path(path, sizeof path, "in.csv");
    fz_write(path, data, size);
    FILE *f = fopen(path, "rb");
    if (!f) abort();
    vet_err err = {0};
    vet_csv *c = vet_csv_open(f, "in.csv", &err);
    if (!c) { fz_check_msg(&err); fclose(f); return 0; }
    long last_line = 0;
    for (int rows = 0; rows < 100000; rows++) {
        err.msg[0] = 0;
        int rc = vet_csv_next(c, &err);
        if (rc == VET_CSV_EOF) break;
        if (rc == VET_CSV_IOERR) { fz_check_msg(&err); break; }
        if (rc == VET_CSV_FATAL) {  // stops for good: the next call must say so again
            fz_check_msg(&err);
            if (vet_csv_next(c, &err) != VET_CSV_FATAL) abort();
            break;
        }
        if (rc == VET_CSV_BAD) fz_check_msg(&err);
        if (rc == VET_CSV_ROW && rows == 0) {  // the header check must set a message when it refuses
            vet_err herr = {0};
            if (vet_csv_check_header(c, rows & 1, &herr) < 0) fz_check_msg(&herr);
        }
        if (vet_csv_line(c) < last_line) abort();   // rows come in file order
        last_line = vet_csv_line(c);
        size_t rawlen;
        const char *raw = vet_csv_raw(c, &rawlen);
        if (raw[rawlen] != '\0' || rawlen > size) abort();
        if (rc != VET_CSV_ROW) continue;
        size_t total = 0;
        for (size_t i = 0; i < vet_csv_nfields(c); i++) {
            size_t len;
            const char *v = vet_csv_field(c, i, &len);
            if (!v || v[len] != '\0') abort();
            total += len;
        }
        if (total > size || vet_csv_field(c, vet_csv_nfields(c), NULL) != NULL) abort();
    }
    vet_csv_close(c);
    fclose(f);
    return 0;
}
