// fuzz_notes.c — lib/notes.h (CSV, Alpaca JSON, JSONL) on arbitrary bytes. The first byte picks
// the format as the name would (.csv, .json, .jsonl or no suffix: sniffed) and, from its high
// bits, non-default column names and note prefix; the rest is the file. Every record is read
// through and its fields touched.
#include "fuzz_util.h"

#include "io/notes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const char *const names[4] = {"in.csv", "in.json", "in.jsonl", "in"};
    const char *name = names[data[0] & 3];
    vet_notes_opts o = {0};
    if (data[0] & 4) o.note_prefix = "Note: ";
    if (data[0] & 8) o.note_col = "text", o.codes_col = "snomed", o.id_col = "case";
    char path[300];
    fz_path(path, sizeof path, name);
    fz_write(path, data + 1, size - 1);
    FILE *f = fopen(path, "rb");
    if (!f) abort();
    vet_err err = {0};
    vet_notes *s = vet_notes_open(f, name, &o, &err);
    if (!s) { fz_check_msg(&err); fclose(f); return 0; }
    volatile size_t sink = 0;
    for (int n = 0; n < 100000; n++) {
        vet_note note;
        err.msg[0] = 0;
        int rc = vet_notes_next(s, &note, &err);
        if (rc == VET_NOTE_EOF) break;
        if (rc != VET_NOTE_OK) {
            fz_check_msg(&err);
            size_t len;
            const char *raw = vet_notes_raw(s, &len);
            if (raw) sink += len;
            if (rc != VET_NOTE_BAD) break;
            continue;
        }
        if (!note.id || !note.species || !note.note || !note.disease) abort();   // never NULL, says notes.h
        sink += strlen(note.id) + strlen(note.species) + strlen(note.note) + strlen(note.disease);
        for (size_t i = 0; i < note.n_codes; i++) sink += strlen(note.codes[i]);
        if (note.instruction) sink += strlen(note.instruction);
        if (note.input) sink += strlen(note.input);
        if (note.output) sink += strlen(note.output);
    }
    (void)sink;
    vet_notes_close(s);
    fclose(f);
    return 0;
}
