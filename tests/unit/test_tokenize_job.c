// test_tokenize_job.c — vet-tokenize's job (lib/data/tokenize_job.h) on small inputs: every row
// read is written or rejected, a rejected row keeps its line and its reason, a stopped job
// leaves no output behind, species-swapped copies follow their originals, and (with a
// tokenizer at hand) the stream's records and the length statistics.
#include <dirent.h>
#include <unistd.h>

#include "check.h"
#include "data/bytelevel.h"
#include "data/len_stats.h"
#include "data/tokenizer.h"
#include "data/tokenize_job.h"
#include "io/mp.h"
#include "io/stream.h"

static char dir[256];

static const char *path_in(const char *name) {
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void write_file(const char *name, const char *text) {
    FILE *f = fopen(path_in(name), "wb");
    fputs(text, f);
    fclose(f);
}

// The whole file, malloc'd and NUL-terminated ("" when it cannot be read); *len its size.
static char *read_file_n(const char *name, size_t *len) {
    FILE *f = fopen(path_in(name), "rb");
    char *buf = calloc(1, 1 << 16);
    *len = f ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    if (f) fclose(f);
    return buf;
}

static char *read_file(const char *name) {
    size_t len;
    return read_file_n(name, &len);
}

// Files in the test directory whose name contains part.
static int files_named(const char *part) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, part) != NULL;
    if (d) closedir(d);
    return n;
}

// Rows 3, 4 and 6 are bad (too many fields, an empty note, text after a closing quote, the
// last on the line after its row starts); the others are good, one of them on two lines.
static const char MIXED[] = "id,species,note,codes\n"
                            "1,Cow,Cow. Fever.,1679004\n"
                            "2,Goat,Goat. Cough.,2260006,extra\n"
                            "3,Goat,,1\n"
                            "4,Sheep,\"Sheep.\nLame.\",40214000\n"
                            "5,Cow,\"two\nlines\"x,1\n"
                            "6,Buffalo,\"Buffalo.\tDown.\",198462004\n";

static void rejects_and_counts(void) {
    write_file("mixed.csv", MIXED);
    vet_tokenize_opts o = vet_tokenize_defaults();
    o.input = path_in("mixed.csv");
    o.output = path_in("mixed.txt");
    o.rejects = path_in("rejects.tsv");
    o.text = 1;
    vet_tokenize_summary sum;
    vet_err err;
    CHECK(vet_tokenize_run(&o, &sum, &err) == 0);
    CHECK(sum.read == 6 && sum.written == 3 && sum.rejected == 3 && sum.copies == 0);
    CHECK(sum.read == sum.written + sum.rejected);
    size_t len;
    char *rej = read_file_n("rejects.tsv", &len);
    // LINE<TAB>REASON<TAB>RAW, the reason without "file:line: ", the raw row escaped.
    const char *want[] = {
        "3\t5 fields, the header has 4 (too many; quote fields that hold commas)\t2,Goat,Goat. Cough.,2260006,extra\n",
        "4\tempty note\t3,Goat,,1",
        "8\tunbalanced quote: 'x' after the closing quote of field 3 (quotes inside a quoted field must be "
        "doubled)\t5,Cow,\"two\\nlines\"x,1\n",
    };
    const char *line = rej, *end = rej + len;
    for (int i = 0; i < 3 && line; i++) {
        CHECK(strncmp(line, want[i], strlen(want[i])) == 0);
        line = memchr(line, '\n', (size_t)(end - line));
        if (line) line++;
    }
    CHECK(line == end);
    char *txt = read_file("mixed.txt");
    CHECK_CONTAINS(txt, "Clinical Note: Cow. Fever.\n\n### Response:\nDiagnosed conditions: 1679004\n");
    CHECK_CONTAINS(txt, "Clinical Note: Sheep.\nLame.\n");
    CHECK_CONTAINS(txt, "Clinical Note: Buffalo.\tDown.\n");
    CHECK(files_named(".tmp.") == 0);
    free(rej);
    free(txt);
    vet_tokenize_summary_free(&sum);
}

// Without a rejects file the first bad row stops the job: its line in err, nothing written.
static void stops_at_bad_row(void) {
    write_file("mixed.csv", MIXED);
    vet_tokenize_opts o = vet_tokenize_defaults();
    o.input = path_in("mixed.csv");
    o.output = path_in("stopped.txt");
    o.text = 1;
    vet_tokenize_summary sum;
    vet_err err;
    CHECK(vet_tokenize_run(&o, &sum, &err) < 0);
    CHECK(err.kind == VET_E_INPUT);
    CHECK(err.line == 3);
    char want[600];
    snprintf(want, sizeof want, "%s:3: 5 fields, the header has 4", path_in("mixed.csv"));
    CHECK(strncmp(err.msg, want, strlen(want)) == 0);
    CHECK(sum.read == 2 && sum.written == 1 && sum.rejected == 0);
    CHECK(access(path_in("stopped.txt"), F_OK) != 0);
    CHECK(files_named(".tmp.") == 0);
    vet_tokenize_summary_free(&sum);
}

static void species_swap_copies(void) {
    write_file("sw.csv", "id,species,note,codes\n"
                         "1,Cow,\"Cow. The cow is down, cows nearby.\",1\n"
                         "2,Horse,Horse. Colic.,2\n"
                         "3,goat,GOAT. Cough.,3\n");
    vet_swap swap;
    vet_err err;
    CHECK(vet_swap_parse("Cow=Buffalo,Sheep=Goat", &swap, &err) == 0);
    vet_tokenize_opts o = vet_tokenize_defaults();
    o.input = path_in("sw.csv");
    o.output = path_in("sw.txt");
    o.text = 1;
    o.swap = &swap;
    vet_tokenize_summary sum;
    CHECK(vet_tokenize_run(&o, &sum, &err) == 0);
    CHECK(sum.read == 3 && sum.written == 5 && sum.copies == 2);
    char *txt = read_file("sw.txt");
    const char *cow = strstr(txt, "Note: Cow. The cow is down, cows nearby.");
    const char *buffalo = strstr(txt, "Note: Buffalo. The buffalo is down, cows nearby.");
    const char *horse = strstr(txt, "Note: Horse. Colic.");
    CHECK(cow && buffalo && horse && cow < buffalo && buffalo < horse);  // the copy right after its original
    CHECK_CONTAINS(txt, "Note: SHEEP. Cough.");
    free(txt);
    vet_tokenize_summary_free(&sum);
    vet_swap_free(&swap);
}

static void refusals(void) {
    vet_tokenize_opts o = vet_tokenize_defaults();
    vet_tokenize_summary sum;
    vet_err err;
    o.text = 1;
    o.stats = 1;
    CHECK(vet_tokenize_run(&o, &sum, &err) < 0 && err.kind == VET_E_USAGE);
    CHECK_CONTAINS(err.msg, "do not go together");
    o = vet_tokenize_defaults();
    CHECK(vet_tokenize_run(&o, &sum, &err) < 0 && err.kind == VET_E_USAGE);  // no tokenizer
    o.text = 1;
    o.input = path_in("nope.csv");
    CHECK(vet_tokenize_run(&o, &sum, &err) < 0 && err.kind == VET_E_IO);
    CHECK_CONTAINS(err.msg, "nope.csv: cannot open");
    o.input = path_in("mixed.csv");
    o.template_spec = path_in("nope.template");
    CHECK(vet_tokenize_run(&o, &sum, &err) < 0 && err.kind == VET_E_IO);
    write_file("header-only.csv", "id,text\n1,x\n");
    o = vet_tokenize_defaults();
    o.text = 1;
    o.input = path_in("header-only.csv");
    o.output = path_in("h.txt");
    CHECK(vet_tokenize_run(&o, &sum, &err) < 0 && err.kind == VET_E_INPUT && err.line == 1);
    CHECK_CONTAINS(err.msg, "no column 'note'");
}

// The stream, with a real tokenizer: build/data/tokenizer.model (make tokenizer) when present.
static void stream_records_and_stats(void) {
    const char *top = getenv("VET_TOP");
    char spm[600];
    snprintf(spm, sizeof spm, "%s/build/data/tokenizer.model", top ? top : ".");
    if (access(spm, R_OK) != 0) SKIP("no build/data/tokenizer.model (make tokenizer)");
    write_file("mixed.csv", MIXED);
    vet_swap swap;
    vet_err err;
    CHECK(vet_swap_parse("Cow=Buffalo", &swap, &err) == 0);
    vet_tokenize_opts o = vet_tokenize_defaults();
    o.input = path_in("mixed.csv");
    o.output = path_in("mixed.tok");
    o.tokenizer = spm;
    o.rejects = path_in("rejects2.tsv");
    o.swap = &swap;
    o.stats = 1;
    o.max_len = 40;
    vet_tokenize_summary sum;
    CHECK(vet_tokenize_run(&o, &sum, &err) == 0);
    CHECK(sum.written == 5 && sum.copies == 2 && sum.rejected == 3);
    CHECK(sum.total.n == 5 && sum.prompt.n == 5);
    CHECK(sum.total.sum == sum.prompt.sum + sum.response.sum);
    CHECK(sum.over_max_len == 5);  // an Alpaca prompt alone is longer than 40 tokens
    CHECK(sum.real_tokens == 5 * 40);
    vet_reader *r = vet_reader_open(path_in("mixed.tok"), "tokens", &err);
    CHECK(r != NULL);
    char kind[16];  // the header names the kind, as a reader of old streams would guess it
    CHECK(r && mp_get(mp_get(vet_reader_header(r), "tokenizer"), "kind") != NULL);
    vet_tokenizer_header_kind(r ? mp_get(vet_reader_header(r), "tokenizer") : NULL, kind, sizeof kind);
    CHECK_STR(kind, "spm");
    const msgpack_object *rec;
    const char *want_ids[] = {"1", "1~Buffalo", "4", "6", "6~Cow"};
    int k = 0;
    while (r && vet_reader_next(r, &rec, &err) == 1 && k < 5) {
        const char *id;
        size_t len;
        CHECK(mp_get_str(rec, "id", &id, &len, &err) == 0);
        CHECK(len == strlen(want_ids[k]) && memcmp(id, want_ids[k], len) == 0);
        CHECK((mp_get(rec, "copy_of") != NULL) == (strchr(want_ids[k], '~') != NULL));
        k++;
    }
    CHECK(k == 5);
    vet_reader_close(r);
    vet_tokenize_summary_free(&sum);
    vet_swap_free(&swap);
}

// A byte-level tokenizer.json in dir: the 256 byte pieces (ids 0..255, each byte's GPT-2
// character), <s> (256), </s> (257); post_processor as given.
static void write_bpe(const char *name, const char *post) {
    static char text[16384];
    size_t k = (size_t)snprintf(text, sizeof text, "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"post_processor\": %s,"
        " \"added_tokens\": [{\"id\": 256, \"content\": \"<s>\", \"special\": true},"
        " {\"id\": 257, \"content\": \"</s>\", \"special\": true}], \"model\": {\"type\": \"BPE\", \"merges\": [],"
        " \"vocab\": {", post);
    for (int c = 0; c < 256; c++) {
        char u[2];
        int m = vet_bytelevel_utf8((uint8_t)c, u);
        text[k++] = '"';
        if (u[0] == '"' || u[0] == '\\') text[k++] = '\\';
        memcpy(text + k, u, (size_t)m), k += (size_t)m;
        k += (size_t)snprintf(text + k, sizeof text - k, "\": %d, ", c);
    }
    snprintf(text + k, sizeof text - k, "\"<s>\": 256, \"</s>\": 257}}}");
    write_file(name, text);
}

// The first record's prompt and response ids and the header's tokenizer kind.
static void first_record(const char *stream, int32_t **p, size_t *np, int32_t **r, size_t *nr, char *kind) {
    vet_err err;
    vet_reader *rd = vet_reader_open(stream, "tokens", &err);
    CHECK(rd != NULL);
    if (!rd) return;
    vet_tokenizer_header_kind(mp_get(vet_reader_header(rd), "tokenizer"), kind, 16);
    const msgpack_object *rec;
    CHECK(vet_reader_next(rd, &rec, &err) == 1);
    CHECK(mp_get_i32_array(rec, "prompt", p, np, &err) == 0 && mp_get_i32_array(rec, "response", r, nr, &err) == 0);
    vet_reader_close(rd);
}

// A byte-level BPE tokenizer: the header says "bpe"; the prompt begins with BOS only when the
// tokenizer adds one (here: its post-processor's template), every response ends with EOS; one
// id per byte here, so the lengths are the texts'.
static void bpe_stream(void) {
    static const char csv[] = "id,species,note,codes\n1,Cow,Fièvre. 発熱,123\n";
    write_file("bpe.csv", csv);
    write_bpe("plain.json", "null");
    write_bpe("tmpl.json", "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\","
              " \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\":"
              " {\"<s>\": {\"id\": \"<s>\", \"ids\": [256]}}}");
    vet_tokenize_opts o = vet_tokenize_defaults();
    vet_tokenize_summary sum;
    vet_err err;
    char in[512], tokp[512], out[512];  // path_in's buffers are reused four calls on
    snprintf(in, sizeof in, "%s", path_in("bpe.csv"));
    o.input = in;
    int32_t *p[2] = {0}, *r[2] = {0};
    size_t np[2] = {0}, nr[2] = {0};
    const char *tok[2] = {"plain.json", "tmpl.json"};
    for (int i = 0; i < 2; i++) {
        char kind[16] = "";
        snprintf(tokp, sizeof tokp, "%s", path_in(tok[i]));
        snprintf(out, sizeof out, "%s/bpe%d.tok", dir, i);
        o.tokenizer = tokp;
        o.output = out;
        int rc = vet_tokenize_run(&o, &sum, &err);
        if (rc) fprintf(stderr, "%s\n", err.msg);
        CHECK(rc == 0 && sum.written == 1);
        vet_tokenize_summary_free(&sum);
        first_record(out, &p[i], &np[i], &r[i], &nr[i], kind);
        CHECK_STR(kind, "bpe");
    }
    CHECK(np[1] == np[0] + 1 && p[1] && p[1][0] == 256);  // the template's BOS, and only there
    CHECK(np[0] > 0 && p[0] && p[0][0] == 'B');            // "Below is an instruction ..."
    CHECK(nr[0] == strlen("Diagnosed conditions: 123") + 1 && r[0] && r[0][nr[0] - 1] == 257);
    CHECK(nr[1] == nr[0] && r[1] && memcmp(r[0], r[1], nr[0] * sizeof(int32_t)) == 0);
    for (int i = 0; i < 2; i++) free(p[i]), free(r[i]);
}

static void length_histogram(void) {
    vet_len_hist h = {0};
    size_t lens[] = {5, 1, 3, 3, 2000, 7};
    for (size_t i = 0; i < 6; i++) CHECK(vet_len_hist_add(&h, lens[i]) == 0);
    CHECK(h.n == 6 && h.min == 1 && h.max == 2000 && h.sum == 2019);
    CHECK(vet_len_hist_pct(&h, 0.50) == 3);   // 3 of 6 at or below 3
    CHECK(vet_len_hist_pct(&h, 0.95) == 2000);
    CHECK(vet_len_hist_pct(&h, 0.0) == 1);
    CHECK_NEAR(vet_len_hist_mean(&h), 2019.0 / 6, 1e-12);
    vet_len_hist_free(&h);
    CHECK(vet_len_hist_mean(&h) == 0 && h.count == NULL);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/vet-tokenize-job.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    RUN(rejects_and_counts);
    RUN(stops_at_bad_row);
    RUN(species_swap_copies);
    RUN(refusals);
    RUN(stream_records_and_stats);
    RUN(bpe_stream);
    RUN(length_histogram);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!getenv("KEEP") && system(cmd) != 0) return 1;
    CHECK_EXIT();
}
