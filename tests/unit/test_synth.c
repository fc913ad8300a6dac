// test_synth.c — the disease table parser (lib/data/synth_table.c), the synthetic note
// generator (synth.c) and the writers (synth_write.c).
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "data/synth.h"
#include "data/template.h"

// The repository's own table: tests/run exports VET_TOP; from the top directory "." works.
static vet_synth_table *repo_table(vet_err *err) {
    const char *top = getenv("VET_TOP");
    char path[4096];
    snprintf(path, sizeof path, "%s/data/diseases.tsv", top && *top ? top : ".");
    return vet_synth_table_load(path, err);
}

// A minimal table to which each error case appends or alters one row.
static const char *MINI =
    "species\tCow\t1\tcalf\tcow\tbull\t12\n"
    "species\tGoat\t1\tkid\tdoe\tbuck\t9\n"
    "sign\tfever\tfever|pyrexia\n"
    "sign\tcough\tcough\n"
    "template\t{Subject}. Presented with {signs}{duration}.\n"
    "disease\t1679004\tPPR\tPeste des petits ruminants\n"
    "prevalence\tGoat\t3\n"
    "shows\tfever\t0.8\n"
    "shows\tcough\t0.5\n"
    "disease\t3974005\tFMD\tFoot-and-mouth disease\n"
    "prevalence\tCow\t2\n"
    "prevalence\tGoat\t1\n"
    "shows\tfever\t0.6\n";

static void test_parse_mini(void) {
    vet_err err = {0};
    vet_synth_table *t = vet_synth_table_parse(MINI, "mini.tsv", &err);
    CHECK(t != NULL);
    if (!t) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(t->nspecies == 2 && t->nsigns == 2 && t->ndiseases == 2 && t->ntemplates == 1);
    CHECK(t->signs[0].nphrases == 2);
    CHECK_STR(t->signs[0].phrases[1], "pyrexia");
    CHECK_NEAR(t->diseases[0].p[1], 0.5, 1e-12);
    CHECK_NEAR(t->diseases[0].prevalence[0], 0, 0);  // PPR: no prevalence row for Cow
    CHECK_NEAR(t->diseases[1].p[1], 0, 0);           // FMD: no shows row for cough
    CHECK(vet_synth_species_index(t, "goat") == 1);  // names match case-insensitively
    CHECK(vet_synth_disease_index(t, "3974005") == 1);
    vet_synth_table_free(t);
}

// Each case: a table text and a piece of the message it must give.
// The error names a line ("t.tsv:N: ...") exactly when err->line is N.
static void expect_error(const char *text, const char *needle) {
    vet_err err = {0};
    vet_synth_table *t = vet_synth_table_parse(text, "t.tsv", &err);
    CHECK(t == NULL);
    CHECK_CONTAINS(err.msg, needle);
    long line = 0;
    if (strncmp(err.msg, "t.tsv:", 6) == 0) line = strtol(err.msg + 6, NULL, 10);
    CHECK(err.line == line);
    CHECK(err.kind == VET_E_INPUT);
    vet_synth_table_free(t);
}

static void test_parse_errors(void) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%sshows\tcough\t1.7\n", MINI);
    expect_error(buf, "t.tsv:14: probability 1.7 outside [0,1]");
    snprintf(buf, sizeof buf, "%sshows\tcough\tlots\n", MINI);
    expect_error(buf, "t.tsv:14: probability 'lots' is not a number");
    snprintf(buf, sizeof buf, "%sshows\tsneezing\t0.5\n", MINI);
    expect_error(buf, "t.tsv:14: unknown sign 'sneezing'");
    snprintf(buf, sizeof buf, "%sprevalence\tHorse\t1\n", MINI);
    expect_error(buf, "t.tsv:14: unknown species 'Horse'");
    snprintf(buf, sizeof buf, "%sprevalence\tCow\t-1\n", MINI);
    expect_error(buf, "t.tsv:14: weight '-1' is not a number in [0, 1e+12]");
    snprintf(buf, sizeof buf, "%sprevalence\tCow\t0x10\n", MINI);  // decimal notation only
    expect_error(buf, "t.tsv:14: weight '0x10' is not a number in [0, 1e+12]");
    snprintf(buf, sizeof buf, "%sprevalence\tGoat\t2\n", MINI);
    expect_error(buf, "t.tsv:14: disease 3974005: prevalence in Goat given twice");
    snprintf(buf, sizeof buf, "%sdiseases\t1\n", MINI);
    expect_error(buf, "t.tsv:14: unknown row kind 'diseases'");
    snprintf(buf, sizeof buf, "%sshows\tcough\n", MINI);
    expect_error(buf, "t.tsv:14: a 'shows' row has 2 TAB-separated fields");
    snprintf(buf, sizeof buf, "%sdisease\t12ab\tX\tX\n", MINI);
    expect_error(buf, "t.tsv:14: code '12ab' is not a SNOMED-CT concept id");
    snprintf(buf, sizeof buf, "%sdisease\t3974005\tFMD\tFMD\n", MINI);
    expect_error(buf, "t.tsv:14: disease 3974005 declared twice");
    snprintf(buf, sizeof buf, "%sdisease\t14146002\tRabies\tRabies\n", MINI);
    expect_error(buf, "t.tsv:14: disease 14146002 (Rabies) occurs in no species");
    snprintf(buf, sizeof buf, "%sdisease\t14146002\tRabies\tRabies\nprevalence\tCow\t1\n", MINI);
    expect_error(buf, "t.tsv:14: disease 14146002 (Rabies) shows no sign");
    snprintf(buf, sizeof buf, "%sdisease\t14146002\tRabies\tRabies\tfurious\n", MINI);
    expect_error(buf, "t.tsv:14: disease 14146002: unknown option 'furious'");
    snprintf(buf, sizeof buf, "%ssign\tlameness\tlameness\n", MINI);
    expect_error(buf, "t.tsv:14: sign rows must come before the first disease");
    snprintf(buf, sizeof buf, "%stemplate\t{Species} with {signs}\n", MINI);
    expect_error(buf, "t.tsv:14: unknown placeholder {Species}");
    snprintf(buf, sizeof buf, "%stemplate\tNo signs here.\n", MINI);
    expect_error(buf, "t.tsv:14: template has no {signs}");
    expect_error("shows\tfever\t0.5\n", "t.tsv:1: a 'shows' row before any 'disease' row");
    expect_error("species\tCow\t1\tcalf\tcow\tbull\t12\nspecies\tcow\t1\tcalf\tcow\tbull\t12\n",
                 "t.tsv:2: species cow declared twice");
    expect_error("sign\tfever\tfever||pyrexia\n", "t.tsv:1: sign 'fever' has an empty phrase");
    expect_error("sign\tfever\tfever\tmale\n", "t.tsv:1: sign 'fever': unknown flag 'male'");
    expect_error("# only a comment\n", "t.tsv: no 'species' rows");
    // No template: everything else is fine.
    const char *no_tpl = strstr(MINI, "template");
    snprintf(buf, sizeof buf, "%.*s%s", (int)(no_tpl - MINI), MINI, strstr(no_tpl, "disease"));
    expect_error(buf, "t.tsv: no 'template' rows");
}

static void test_load_missing(void) {
    vet_err err = {0};
    CHECK(vet_synth_table_load("/nonexistent/diseases.tsv", &err) == NULL);
    CHECK_CONTAINS(err.msg, "/nonexistent/diseases.tsv: ");
}

// Every row of the file as one string, with the generator's view of each row.
static char *generate(const vet_synth_table *t, vet_synth_opts o, long n, int alpaca) {
    vet_err err = {0};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vet_synth_gen *g = vet_synth_gen_new(t, &o, n, &err);
    CHECK(g != NULL);
    if (!g) fprintf(stderr, "%s\n", err.msg);
    if (!alpaca) vet_synth_write_csv_header(f, &err);
    for (long i = 0; g && i < n; i++) {
        const vet_synth_row *r = vet_synth_gen_next(g, &err);
        CHECK(r != NULL);
        if (!r) break;
        CHECK((alpaca ? vet_synth_write_alpaca(f, t, r, &err) : vet_synth_write_csv_row(f, t, r, &err)) == 0);
    }
    vet_synth_gen_free(g);
    fclose(f);
    return buf;
}

static void test_determinism(void) {
    vet_err err = {0};
    vet_synth_table *t = repo_table(&err);
    CHECK(t != NULL);
    if (!t) return (void)fprintf(stderr, "%s\n", err.msg);
    vet_synth_opts o = {.seed = 7, .noise = 0.1, .dup = 0.2};
    char *a = generate(t, o, 500, 0), *b = generate(t, o, 500, 0);
    o.seed = 8;
    char *c = generate(t, o, 500, 0);
    CHECK(a && b && c);
    CHECK(strcmp(a, b) == 0);  // same seed: same bytes
    CHECK(strcmp(a, c) != 0);  // another seed: another data set
    free(a), free(b), free(c);
    vet_synth_table_free(t);
}

// Splits one CSV record (RFC 4180) starting at *p into fields; advances *p past it.
static int csv_record(const char **p, char fields[][1024], int max) {
    int nf = 0;
    const char *s = *p;
    for (;;) {
        char *out = fields[nf];
        size_t n = 0;
        if (*s == '"') {
            for (s++; *s && !(*s == '"' && s[1] != '"'); s++) {
                if (*s == '"') s++;
                if (n < 1023) out[n++] = *s;
            }
            if (*s == '"') s++;
        } else {
            while (*s && *s != ',' && *s != '\n') {
                if (n < 1023) out[n++] = *s;
                s++;
            }
        }
        out[n] = 0;
        nf++;
        if (*s == ',' && nf < max) {
            s++;
            continue;
        }
        break;
    }
    if (*s == '\n') s++;
    *p = s;
    return nf;
}

static void test_csv_shape(void) {
    vet_err err = {0};
    vet_synth_table *t = repo_table(&err);
    CHECK(t != NULL);
    if (!t) return (void)fprintf(stderr, "%s\n", err.msg);
    vet_synth_opts o = {.seed = 3, .noise = 0.05, .dup = 0.2};
    char *csv = generate(t, o, 1000, 0);
    const char *p = csv;
    char f[8][1024];
    CHECK(csv_record(&p, f, 8) == 6);
    CHECK_STR(f[0], "id");
    CHECK_STR(f[2], "note");
    CHECK_STR(f[5], "symptoms");
    long rows = 0;
    int bad = 0;
    while (*p) {
        int nf = csv_record(&p, f, 8);
        rows++;
        char want[32];
        snprintf(want, sizeof want, "syn-%04ld", rows);
        if (nf != 6 || strcmp(f[0], want) != 0 || vet_synth_species_index(t, f[1]) < 0 ||
            strlen(f[2]) < 10 || vet_synth_disease_index(t, f[3]) < 0 || !f[5][0]) {
            if (bad++ < 3) fprintf(stderr, "bad row %ld: %d fields, id %s, species %s\n", rows, nf, f[0], f[1]);
        }
        // The note's own words: every sign in `symptoms` has one of its phrases in the note.
        char sym[1024];
        snprintf(sym, sizeof sym, "%s", f[5]);
        char *save;
        for (char *name = strtok_r(sym, ";", &save); name; name = strtok_r(NULL, ";", &save)) {
            int found = 0;
            for (int k = 0; k < t->nsigns; k++)
                if (strcmp(t->signs[k].name, name) == 0)
                    for (int j = 0; j < t->signs[k].nphrases; j++) found |= strstr(f[2], t->signs[k].phrases[j]) != NULL;
            if (!found) fprintf(stderr, "row %ld: sign '%s' not said in: %s\n", rows, name, f[2]);
            CHECK(found);
        }
        int d = vet_synth_disease_index(t, f[3]);
        CHECK(d < 0 || strcmp(t->diseases[d].name, f[4]) == 0);
        // fever and high fever share a group: never both
        CHECK(!(strstr(f[5], "high fever") && (strncmp(f[5], "fever", 5) == 0 || strstr(f[5], ";fever"))));
    }
    CHECK(bad == 0);
    CHECK(rows == 1000);
    free(csv);
    vet_synth_table_free(t);
}

static void test_rates(void) {
    vet_err err = {0};
    vet_synth_table *t = repo_table(&err);
    CHECK(t != NULL);
    if (!t) return (void)fprintf(stderr, "%s\n", err.msg);
    const long n = 20000;
    vet_synth_opts o = {.seed = 11, .noise = 0.3, .dup = 0.25};
    vet_synth_gen *g = vet_synth_gen_new(t, &o, n, &err);
    CHECK(g != NULL);
    long relabelled = 0, dups = 0, same_note = 0, male_udder = 0;
    int udder = -1;
    for (int k = 0; k < t->nsigns; k++)
        if (strcmp(t->signs[k].name, "swollen udder") == 0) udder = k;
    CHECK(udder >= 0);
    // Notes of earlier rows, to check a repeat repeats its source.
    char **notes = calloc(n, sizeof *notes);
    for (long i = 0; g && i < n; i++) {
        const vet_synth_row *r = vet_synth_gen_next(g, &err);
        if (!r) break;
        notes[i] = strdup(r->note);
        if (r->disease != r->true_disease) {
            relabelled++;
            // noise stays plausible: the new label occurs in the same species
            CHECK(t->diseases[r->disease].prevalence[r->species] > 0);
        }
        if (r->dup_of >= 0) {
            dups++;
            same_note += r->dup_of < i && strcmp(notes[r->dup_of], r->note) == 0;
        }
        if (strstr(r->symptoms, "swollen udder") && (strncmp(r->note, "Male", 4) == 0 || strstr(r->note, " bull") ||
                                                     strstr(r->note, " ram") || strstr(r->note, " buck")))
            male_udder++;
    }
    CHECK_NEAR((double)relabelled / n, 0.3, 0.02);
    CHECK_NEAR((double)dups / n, 0.25, 0.02);
    CHECK(same_note == dups);
    CHECK(male_udder == 0);
    for (long i = 0; i < n; i++) free(notes[i]);
    free(notes);
    vet_synth_gen_free(g);

    // No noise, no duplicates: labels are the drawn diseases, and notes hardly ever repeat.
    o = (vet_synth_opts){.seed = 11, .noise = 0, .dup = 0};
    g = vet_synth_gen_new(t, &o, 2000, &err);
    relabelled = dups = 0;
    for (long i = 0; g && i < 2000; i++) {
        const vet_synth_row *r = vet_synth_gen_next(g, &err);
        if (!r) break;
        relabelled += r->disease != r->true_disease;
        dups += r->dup_of >= 0;
    }
    CHECK(relabelled == 0 && dups == 0);
    vet_synth_gen_free(g);
    vet_synth_table_free(t);
}

static void test_species_filter(void) {
    vet_err err = {0};
    vet_synth_table *t = repo_table(&err);
    CHECK(t != NULL);
    if (!t) return (void)fprintf(stderr, "%s\n", err.msg);
    vet_synth_opts o = {.seed = 5, .noise = 0.1, .dup = 0.1, .species = "sheep, Goat"};
    vet_synth_gen *g = vet_synth_gen_new(t, &o, 500, &err);
    CHECK(g != NULL);
    int sheep = vet_synth_species_index(t, "Sheep"), goat = vet_synth_species_index(t, "Goat");
    int seen[2] = {0, 0}, other = 0;
    for (int i = 0; g && i < 500; i++) {
        const vet_synth_row *r = vet_synth_gen_next(g, &err);
        if (!r) break;
        if (r->species == sheep) seen[0]++;
        else if (r->species == goat) seen[1]++;
        else other++;
    }
    CHECK(other == 0 && seen[0] > 100 && seen[1] > 100);
    vet_synth_gen_free(g);
    o.species = "Sheep,Horse";
    CHECK(vet_synth_gen_new(t, &o, 10, &err) == NULL);
    CHECK_CONTAINS(err.msg, "unknown species 'Horse'");
    CHECK(err.kind == VET_E_USAGE);
    o.species = NULL;
    o.noise = 1.5;
    CHECK(vet_synth_gen_new(t, &o, 10, &err) == NULL);
    CHECK(err.kind == VET_E_USAGE);
    vet_synth_table_free(t);
}

// vet-synth's job: the file holds exactly what the generator draws, the counts add up, and a
// run that cannot write leaves nothing behind.
static void test_write_file(void) {
    vet_err err = {0};
    vet_synth_table *t = vet_synth_table_parse(MINI, "mini.tsv", &err);
    CHECK(t != NULL);
    if (!t) return;
    char dir[] = "/tmp/vet-test-synth.XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/notes.csv", dir);
    vet_synth_opts o = vet_synth_defaults();
    o.count = 300;
    o.noise = 0.3;
    o.seed = 8;
    vet_synth_counts c;
    CHECK(vet_synth_write_file(t, &o, path, &c, &err) == 0);
    CHECK(c.rows == 300 && c.repeated > 20 && c.relabelled > 20);
    char *want = generate(t, o, 300, 0);
    FILE *f = fopen(path, "rb");
    char *got = calloc(1, 1 << 20);
    size_t n = f ? fread(got, 1, (1 << 20) - 1, f) : 0;
    if (f) fclose(f);
    CHECK(n == strlen(want) && memcmp(got, want, n) == 0);
    free(got);
    free(want);
    o.species = "Horse";
    snprintf(path, sizeof path, "%s/horse.csv", dir);
    CHECK(vet_synth_write_file(t, &o, path, &c, &err) < 0 && err.kind == VET_E_USAGE);
    CHECK(access(path, F_OK) != 0);
    o.species = NULL;
    snprintf(path, sizeof path, "%s/no/such/dir.csv", dir);
    CHECK(vet_synth_write_file(t, &o, path, &c, &err) < 0 && err.kind == VET_E_IO);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    vet_synth_table_free(t);
}

// The repository's table covers the 14 DLO codes, and data/codes.tsv agrees with it.
static void test_repo_table(void) {
    vet_err err = {0};
    vet_synth_table *t = repo_table(&err);
    CHECK(t != NULL);
    if (!t) return (void)fprintf(stderr, "%s\n", err.msg);
    static const char *dlo[] = {"1679004", "3974005", "198462004", "72934000", "29600000",
                                "2260006", "40214000", "75702008", "24026003", "14146002",
                                "24694002", "4764006", "56717001", "57428005"};
    for (size_t i = 0; i < sizeof dlo / sizeof *dlo; i++) {
        if (vet_synth_disease_index(t, dlo[i]) < 0) fprintf(stderr, "missing %s\n", dlo[i]);
        CHECK(vet_synth_disease_index(t, dlo[i]) >= 0);
    }
    CHECK(t->ndiseases > 14);
    CHECK(t->nspecies == 4);
    const char *top = getenv("VET_TOP");
    char path[4096], line[512];
    snprintf(path, sizeof path, "%s/data/codes.tsv", top && *top ? top : ".");
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *tab = strchr(line, '\t');
        CHECK(tab != NULL);
        if (!tab || strcmp(line, "code\tterm") == 0) continue;
        *tab = 0;
        int d = vet_synth_disease_index(t, line);
        if (d < 0) fprintf(stderr, "codes.tsv: %s not in diseases.tsv\n", line);
        CHECK(d >= 0);
        if (d >= 0) CHECK_STR(tab + 1, t->diseases[d].term);
        n++;
    }
    if (f) fclose(f);
    CHECK(n == t->ndiseases);
    vet_synth_table_free(t);
}

// --alpaca-text renders the same prompt as the built-in "alpaca" template.
static void test_alpaca_text(void) {
    vet_err err = {0};
    vet_synth_table *t = vet_synth_table_parse(MINI, "mini.tsv", &err);
    CHECK(t != NULL);
    if (!t) return;
    CHECK_STR(vet_synth_alpaca_instruction, VET_DEFAULT_INSTRUCTION);
    vet_synth_opts o = {.seed = 1};
    char *text = generate(t, o, 2, 1);
    CHECK(strncmp(text, "Below is an instruction that describes a task, paired with an input", 67) == 0);
    CHECK_CONTAINS(text, "\n\n### Instruction:\n" VET_DEFAULT_INSTRUCTION "\n\n### Input:\nClinical Note: ");
    CHECK_CONTAINS(text, "\n\n### Response:\nDiagnosed conditions: ");
    free(text);
    vet_synth_table_free(t);
}

int main(void) {
    RUN(test_parse_mini);
    RUN(test_parse_errors);
    RUN(test_load_missing);
    RUN(test_determinism);
    RUN(test_csv_shape);
    RUN(test_rates);
    RUN(test_species_filter);
    RUN(test_write_file);
    RUN(test_repo_table);
    RUN(test_alpaca_text);
    CHECK_EXIT();
}
