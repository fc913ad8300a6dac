// test_notes.c — the note source over CSV, Alpaca JSON and JSONL; rejected rows and their
// messages; DLO's CSV and JSON give the same prompts and responses.
#include "check.h"
#include "io/notes.h"
#include "data/template.h"

typedef struct {
    FILE *f;
    vet_notes *s;
    vet_err err;
} src;

static src open_text(const char *text, const char *name, const vet_notes_opts *o) {
    src x = {0};
    x.f = fmemopen((void *)text, strlen(text), "rb");
    x.s = vet_notes_open(x.f, name, o, &x.err);
    return x;
}

static void close_src(src *x) {
    vet_notes_close(x->s);
    fclose(x->f);
}

static void csv_by_column_name(void) {
    src x = open_text("extra,note,codes,species,id,disease\n"
                      "zz,\"Cow, sick.\",\"40214000; 1679004\",Cow,c-1,Anthrax\n"
                      "zz,Goat.,,Goat,,Flue\n", "n.csv", NULL);
    CHECK(x.s != NULL);
    vet_note n;
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_OK);
    CHECK_STR(n.note, "Cow, sick.");
    CHECK_STR(n.id, "c-1");
    CHECK_STR(n.species, "Cow");
    CHECK(n.n_codes == 2);
    if (n.n_codes == 2) { CHECK_STR(n.codes[0], "40214000"); CHECK_STR(n.codes[1], "1679004"); }
    CHECK(n.line == 2 && n.instruction == NULL && n.input == NULL && n.output == NULL);
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_OK);
    CHECK_STR(n.id, "2");  // empty id: the record number
    CHECK(n.n_codes == 0);
    CHECK_STR(n.disease, "Flue");
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_EOF);
    close_src(&x);
}

static void csv_only_note_needed(void) {
    src x = open_text("text\nhello\n", "n.csv", &(vet_notes_opts){.note_col = "text"});
    CHECK(x.s != NULL);
    vet_note n;
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_OK);
    CHECK_STR(n.note, "hello");
    CHECK_STR(n.id, "1");
    CHECK_STR(n.species, "");
    close_src(&x);
}

static void csv_missing_columns(void) {
    src x = open_text("id,text\n1,a\n", "n.csv", NULL);
    CHECK(x.s == NULL);
    CHECK_CONTAINS(x.err.msg, "n.csv:1: no column 'note' in the header (columns: id,text)");
    CHECK_CONTAINS(x.err.msg, "--note-col");
    fclose(x.f);
    x = open_text("id,note\n1,a\n", "n.csv", &(vet_notes_opts){.species_col = "animal"});
    CHECK(x.s == NULL);
    CHECK_CONTAINS(x.err.msg, "no column 'animal'");
    CHECK_CONTAINS(x.err.msg, "--species-col");
    fclose(x.f);
    // An optional column whose name differs in case or blanks only is refused, not left empty:
    // the file's ids became record numbers, its codes nothing, with exit 0.
    x = open_text("ID,note,codes\n7,a,1\n", "n.csv", NULL);
    CHECK(x.s == NULL && x.err.kind == VET_E_INPUT);
    CHECK_CONTAINS(x.err.msg, "n.csv:1: no column 'id', but a column 'ID' (names are matched exactly): name it with "
                              "--id-col 'ID'");
    fclose(x.f);
    x = open_text("id,note, Codes \n7,a,1\n", "n.csv", NULL);
    CHECK(x.s == NULL);
    CHECK_CONTAINS(x.err.msg, "no column 'codes', but a column ' Codes '");
    fclose(x.f);
    x = open_text("ID,note\n7,a\n", "n.csv", &(vet_notes_opts){.id_col = "ID"});
    CHECK(x.s != NULL);
    close_src(&x);
    x = open_text("", "n.csv", NULL);
    CHECK(x.s == NULL);
    CHECK_CONTAINS(x.err.msg, "n.csv:1: empty input");
    fclose(x.f);
}

// Every kind of bad row, each followed by a good one that must still be read.
static void csv_bad_rows(void) {
    src x = open_text("id,note\n"
                      "1,a,extra\n"       // 2: too many fields
                      "2\n"               // 3: too few
                      "3,\n"              // 4: empty note
                      "4,caf\xC3\n"       // 5: invalid UTF-8 (truncated sequence)
                      "5,\"x\"y\n"        // 6: text after a closing quote
                      "6,good\n"          // 7
                      "7,\"open\n",       // 8: unbalanced quote at end of input
                      "n.csv", NULL);
    CHECK(x.s != NULL);
    vet_note n;
    const char *want[] = {"n.csv:2: 3 fields, the header has 2 (too many",
                          "n.csv:3: 1 fields, the header has 2 (too few",
                          "n.csv:4: empty note",
                          "n.csv:5: invalid UTF-8",
                          "n.csv:6: unbalanced quote"};
    // The line comes with the error, and the reason alone (for a rejects file) from the reader.
    const char *why[] = {"3 fields, the header has 2 (too many", "1 fields, the header has 2 (too few",
                         "empty note", "invalid UTF-8", "unbalanced quote: 'y' after the closing quote"};
    for (int i = 0; i < 5; i++) {
        CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_BAD);
        CHECK_CONTAINS(x.err.msg, want[i]);
        CHECK(x.err.line == i + 2);
        CHECK(x.err.kind == VET_E_INPUT);
        CHECK(strncmp(vet_notes_reason(x.s), why[i], strlen(why[i])) == 0);
    }
    size_t len;
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_OK);
    CHECK_STR(n.note, "good");
    CHECK(n.index == 6);
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_BAD);
    CHECK_CONTAINS(x.err.msg, "n.csv:8: unbalanced quote: a quoted field is still open at end of input");
    CHECK_STR(vet_notes_raw(x.s, &len), "7,\"open");
    CHECK(len == 7);
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_EOF);
    close_src(&x);
}

static void jsonl_records(void) {
    src x = open_text("{\"instruction\":\"I\",\"input\":\"Clinical Note: Goat.\",\"output\":\"O\","
                      "\"snomed_codes\":[\"1\",\"2\"],\"animal\":\"Goat\",\"disease\":\"D\"}\n"
                      "\n"
                      "{\"input\": \"Clinical Note: x\", oops}\n"
                      "{\"input\": \"\"}\n"
                      "{\"input\": \"plain\", \"id\": 42}\n", "-", NULL);
    CHECK(x.s != NULL);
    CHECK(vet_notes_format_of(x.s) == VET_NOTES_JSONL);  // sniffed from '{'
    vet_note n;
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_OK);
    CHECK_STR(n.note, "Goat.");
    CHECK_STR(n.input, "Clinical Note: Goat.");
    CHECK_STR(n.instruction, "I");
    CHECK_STR(n.output, "O");
    CHECK_STR(n.species, "Goat");
    CHECK_STR(n.id, "1");
    CHECK(n.n_codes == 2);
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_BAD);
    CHECK_CONTAINS(x.err.msg, "-:3: not valid JSON");
    CHECK(x.err.line == 3);  // the blank line 2 is skipped, not counted away
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_BAD);
    CHECK_CONTAINS(x.err.msg, "-:4: empty note");
    CHECK(x.err.line == 4);
    CHECK_STR(vet_notes_reason(x.s), "empty note (\"input\" is blank)");
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_OK);
    CHECK_STR(n.note, "plain");
    CHECK_STR(n.id, "42");
    CHECK(n.output == NULL && n.instruction == NULL);
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_EOF);
    close_src(&x);
}

static void json_array(void) {
    src x = open_text("  [{\"input\":\"Clinical Note: a\",\"snomed_codes\":[]},{\"input\":3}]", "-", NULL);
    CHECK(x.s != NULL);
    CHECK(vet_notes_format_of(x.s) == VET_NOTES_JSON);
    vet_note n;
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_OK);
    CHECK_STR(n.note, "a");
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_BAD);
    CHECK_CONTAINS(x.err.msg, "-:2: \"input\" is not a string");
    CHECK(x.err.line == 2);  // JSON arrays: the record number
    CHECK_STR(vet_notes_reason(x.s), "\"input\" is not a string");
    size_t len;
    CHECK_STR(vet_notes_raw(x.s, &len), "{\"input\":3}");
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_EOF);
    close_src(&x);
    x = open_text("[{\"input\":", "a.json", NULL);
    CHECK(x.s == NULL);
    CHECK_CONTAINS(x.err.msg, "a.json:1: not valid JSON");
    fclose(x.f);
}

// The real data: the CSV and the published Alpaca JSON render identical prompts and responses.
static void dlo_csv_equals_json(void) {
    const char *shared = check_shared_dir();
    if (!shared) SKIP("VET_SHARED not set");
    char pc[1024], pj[1024];
    snprintf(pc, sizeof pc, "%s/data/dlo/dlo_notes.csv", shared);
    snprintf(pj, sizeof pj, "%s/data/dlo/dlo_alpaca.json", shared);
    FILE *fc = fopen(pc, "rb"), *fj = fopen(pj, "rb");
    if (!fc || !fj) SKIP("DLO data not found");
    vet_err err;
    vet_notes *c = vet_notes_open(fc, pc, NULL, &err), *j = vet_notes_open(fj, pj, NULL, &err);
    vet_template *t = vet_template_open(NULL, NULL, NULL, NULL, &err);
    CHECK(c && j && t);
    vet_text a = {0}, b = {0}, ra = {0}, rb = {0};
    vet_note nc, nj;
    int rows = 0, same = 0;
    while (vet_notes_next(c, &nc, &err) == VET_NOTE_OK) {
        CHECK(vet_notes_next(j, &nj, &err) == VET_NOTE_OK);
        rows++;
        vet_template_prompt(t, &nc, &a, &err);
        vet_template_prompt(t, &nj, &b, &err);
        vet_template_response(t, &nc, &ra, &err);
        vet_template_response(t, &nj, &rb, &err);
        int ok = strcmp(a.s, b.s) == 0 && strcmp(ra.s, rb.s) == 0 && strcmp(nc.note, nj.note) == 0 &&
                 strcmp(nc.species, nj.species) == 0 && nc.n_codes == nj.n_codes;
        if (!ok && rows - same < 3) fprintf(stderr, "row %d differs:\n%s|%s\n%s|%s\n", rows, a.s, ra.s, b.s, rb.s);
        same += ok;
    }
    CHECK(vet_notes_next(j, &nj, &err) == VET_NOTE_EOF);
    CHECK(rows == 1602);
    CHECK(same == rows);
    vet_text_free(&a); vet_text_free(&b); vet_text_free(&ra); vet_text_free(&rb);
    vet_template_free(t);
    vet_notes_close(c);
    vet_notes_close(j);
    fclose(fc);
    fclose(fj);
}

// The same notes whatever the line ends: CR alone (old Mac, Excel), LF, CRLF, mixed; in CSV
// and in JSONL. Line numbers count every kind of line end.
static void line_ends(void) {
    const char *csv[] = {"id,note\r1,Goat. Fever.\r2,Cow.\r", "id,note\n1,Goat. Fever.\n2,Cow.\n",
                         "id,note\r\n1,Goat. Fever.\r\n2,Cow.\r\n", "id,note\r1,Goat. Fever.\r\n2,Cow.\n"};
    for (size_t i = 0; i < sizeof csv / sizeof *csv; i++) {
        src x = open_text(csv[i], "n.csv", NULL);
        vet_note n;
        CHECK(x.s && vet_notes_next(x.s, &n, &x.err) == VET_NOTE_OK);
        CHECK_STR(n.note, "Goat. Fever.");
        CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_OK);
        CHECK_STR(n.id, "2");
        CHECK(n.line == 3);
        CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_EOF);
        close_src(&x);
    }
    src x = open_text("{\"input\": \"a\"}\r{\"input\": \"b\"}\r\n\r{\"input\": 1}\r", "n.jsonl", NULL);
    vet_note n;
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_OK && strcmp(n.note, "a") == 0);
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_OK && strcmp(n.note, "b") == 0 && n.line == 2);
    CHECK(vet_notes_next(x.s, &n, &x.err) == VET_NOTE_BAD);
    CHECK_CONTAINS(x.err.msg, "n.jsonl:4:");
    close_src(&x);
}

// A byte order mark before JSON, JSONL or a sniffed file is skipped (jansson would refuse it,
// and the message would show an invisible character); duplicate CSV columns are refused.
static void bom_and_duplicates(void) {
    const char *texts[][2] = {{"\xEF\xBB\xBF[{\"input\": \"Cow.\"}]", "n.json"},
                              {"\xEF\xBB\xBF{\"input\": \"Cow.\"}\n", "n.jsonl"},
                              {"\xEF\xBB\xBF  [{\"input\": \"Cow.\"}]", "stdin"},
                              {"\xEF\xBB\xBFnote\nCow.\n", "stdin"}};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        src x = open_text(texts[i][0], texts[i][1], NULL);
        vet_note n;
        CHECK(x.s && vet_notes_next(x.s, &n, &x.err) == VET_NOTE_OK);
        if (x.s) CHECK_STR(n.note, "Cow.");
        close_src(&x);
    }
    src x = open_text("\xEF\xBB\xBF{]", "n.json", NULL);
    CHECK(x.s == NULL);
    CHECK(strstr(x.err.msg, "\xEF") == NULL);
    close_src(&x);
    x = open_text("\xEF\xBBnote\n", "n.csv", NULL);  // not a BOM: the bytes stay
    CHECK(x.s == NULL);
    CHECK_CONTAINS(x.err.msg, "UTF-8");
    close_src(&x);
    x = open_text("note,id,note\nA,1,B\n", "n.csv", NULL);
    CHECK(x.s == NULL);
    CHECK_CONTAINS(x.err.msg, "n.csv:1: column 'note' appears twice in the header (columns 1 and 3)");
    close_src(&x);
}

int main(void) {
    RUN(line_ends);
    RUN(bom_and_duplicates);
    RUN(csv_by_column_name);
    RUN(csv_only_note_needed);
    RUN(csv_missing_columns);
    RUN(csv_bad_rows);
    RUN(jsonl_records);
    RUN(json_array);
    RUN(dlo_csv_equals_json);
    CHECK_EXIT();
}
