// test_labels.c — label vocabularies, codes files and finding labels in generated text.
#include "check.h"
#include "data/labels.h"

// Extracts labels from text and joins them as "a|b|c" (unknown numeric codes marked "?a").
static const char *extract(const vet_labels *v, const char *text) {
    static char out[1024];
    char **got;
    size_t n;
    bool *unk;
    vet_err err;
    if (vet_labels_extract(v, text, strlen(text), &got, &n, &unk, &err) < 0) return "(error)";
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, sizeof out - o, "%s%s%s", i ? "|" : "", unk[i] ? "?" : "", got[i]);
    vet_labels_free_list(got, n);
    free(unk);
    return out;
}

static vet_labels *vocab(const char *const *labels, size_t n) {
    vet_labels *v = vet_labels_new();
    vet_err err;
    for (size_t i = 0; i < n; i++) CHECK(vet_labels_add(v, labels[i], NULL, &err) == 0);
    return v;
}

static void test_reference_output(void) {
    const char *codes[] = {"1679004", "3974005", "72934000"};
    vet_labels *v = vocab(codes, 3);
    CHECK_STR(extract(v, "Diagnosed conditions: 1679004, 3974005"), "1679004|3974005");
    CHECK_STR(extract(v, "Diagnosed conditions: 1679004,3974005"), "1679004|3974005");
    CHECK_STR(extract(v, "Diagnosed conditions: 72934000"), "72934000");
    // Once each, in order of first appearance.
    CHECK_STR(extract(v, "3974005 or 1679004, surely 3974005"), "3974005|1679004");
    CHECK_STR(extract(v, "Diagnosed conditions:"), "");
    CHECK_STR(extract(v, ""), "");
    vet_labels_free(v);
}

static void test_whole_tokens(void) {
    const char *codes[] = {"1679004"};
    vet_labels *v = vocab(codes, 1);
    // Inside a longer digit run the code is not found; the run (8 digits) is an unknown code.
    CHECK_STR(extract(v, "11679004"), "?11679004");
    CHECK_STR(extract(v, "16790041"), "?16790041");
    // Glued to letters: neither the code nor a numeric run.
    CHECK_STR(extract(v, "x1679004 1679004x code1679004"), "");
    CHECK_STR(extract(v, "\xc3\xa9" "1679004"), "");  // é1679004: a word in another script
    // Punctuation and line breaks are boundaries.
    CHECK_STR(extract(v, "(1679004)"), "1679004");
    CHECK_STR(extract(v, "codes:\n1679004.\n"), "1679004");
    CHECK_STR(extract(v, "1679004"), "1679004");
    vet_labels_free(v);
}

static void test_unknown_numeric_codes(void) {
    const char *codes[] = {"1679004"};
    vet_labels *v = vocab(codes, 1);
    // 6 to 18 digits: reported and marked unknown; 5 and 19 digits: not codes.
    CHECK_STR(extract(v, "Diagnosed conditions: 40214000"), "?40214000");
    CHECK_STR(extract(v, "123456"), "?123456");
    CHECK_STR(extract(v, "12345"), "");
    CHECK_STR(extract(v, "123456789012345678"), "?123456789012345678");
    CHECK_STR(extract(v, "1234567890123456789"), "");
    CHECK_STR(extract(v, "1679004; 40214000; 1679004"), "1679004|?40214000");
    CHECK_STR(extract(v, "dated 2024-01-15, 3.14159"), "");  // dates, decimals: short runs
    // Without a vocabulary only the numeric pattern is used.
    CHECK_STR(extract(NULL, "1679004 and Foot Rot"), "?1679004");
    vet_labels_free(v);
}

static void test_non_numeric_labels(void) {
    const char *labels[] = {"Rot", "Foot Rot", "PPR", "1679004"};
    vet_labels *v = vocab(labels, 4);
    CHECK_STR(extract(v, "Diagnosed conditions: Foot Rot"), "Foot Rot");     // longest wins
    CHECK_STR(extract(v, "diagnosed conditions: foot rot"), "Foot Rot");     // any case, vocabulary spelling
    CHECK_STR(extract(v, "Rotavirus, Footrot, PPRs, P.P.R"), "");            // never inside words
    CHECK_STR(extract(v, "Rot; (PPR) and 1679004"), "Rot|PPR|1679004");
    CHECK_STR(extract(v, "Foot Rotting"), "");  // "Foot Rot" cut out of a word: no; "Rot" neither
    vet_labels_free(v);
}

static void test_vocabulary(void) {
    vet_labels *v = vet_labels_new();
    vet_err err;
    CHECK(vet_labels_add(v, "1679004", NULL, &err) == 0);
    CHECK(vet_labels_add(v, "1679004", "PPR", &err) == 0);  // fills the missing term
    CHECK(vet_labels_add(v, "1679004", "other", &err) == 0);  // keeps the first term
    CHECK(vet_labels_count(v) == 1);
    CHECK_STR(vet_labels_term(v, "1679004"), "PPR");
    CHECK(vet_labels_term(v, "3974005") == NULL);
    CHECK(vet_labels_add(v, "", NULL, &err) < 0);
    CHECK(vet_labels_add(v, "a\tb", NULL, &err) < 0);
    // Many labels: the hash table grows and every one stays findable.
    for (int i = 0; i < 5000; i++) {
        char l[32];
        snprintf(l, sizeof l, "%d", 100000 + i);
        CHECK(vet_labels_add(v, l, l, &err) == 0);
    }
    CHECK(vet_labels_count(v) == 5001);
    CHECK_STR(vet_labels_term(v, "104999"), "104999");
    CHECK_STR(vet_labels_label(v, 0), "1679004");
    CHECK_STR(extract(v, "x 104321 y 1679004"), "104321|1679004");  // known now, not "?"
    vet_labels_free(v);
}

static FILE *text_file(const char *s) {
    FILE *f = tmpfile();
    fputs(s, f);
    rewind(f);
    return f;
}

static void test_codes_file(void) {
    vet_err err;
    FILE *f = text_file("code\tterm\n1679004\tPeste des petits ruminants (PPR)\r\n\n# a comment\n"
                        "3974005\n  Foot Rot \t Foot rot  \n");
    vet_labels *v = vet_codes_load(f, "codes.tsv", &err);
    fclose(f);
    CHECK(v != NULL);
    if (!v) return;
    CHECK(vet_labels_count(v) == 3);
    CHECK_STR(vet_labels_term(v, "1679004"), "Peste des petits ruminants (PPR)");
    CHECK_STR(vet_labels_term(v, "3974005"), "");
    CHECK_STR(vet_labels_term(v, "Foot Rot"), "Foot rot");
    CHECK(vet_labels_term(v, "code") == NULL);  // the header is not a label
    vet_labels_free(v);

    // One label per line, no header.
    f = text_file("1679004\n3974005\n");
    v = vet_codes_load(f, "list.txt", &err);
    fclose(f);
    CHECK(v && vet_labels_count(v) == 2);
    vet_labels_free(v);

    f = text_file("1679004\tPPR\n3974005\tFMD\n1679004\tsomething else\n");
    CHECK(vet_codes_load(f, "dup.tsv", &err) == NULL);
    fclose(f);
    CHECK_CONTAINS(err.msg, "dup.tsv:3:");
    CHECK_CONTAINS(err.msg, "listed twice");
    CHECK(err.line == 3 && err.kind == VET_E_INPUT);
}

// A codes file's lines that would lose or confuse what they say are refused, naming the line; an
// empty term is a label without one, a trailing tab nothing, a label with spaces inside a label.
static void refused_line(const char *text, const char *name, long line, const char *says) {
    vet_err err = {0};
    FILE *f = text_file(text);
    vet_labels *v = vet_codes_load(f, name, &err);
    fclose(f);
    CHECK(v == NULL);
    vet_labels_free(v);
    CHECK(err.line == line && err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, says);
}

static void test_codes_file_lines(void) {
    refused_line("code\tterm\n\tFoot rot\n", "c.tsv", 2, "c.tsv:2: a term (\"Foot rot\") with no code before its tab");
    refused_line("1679004\tPPR\n \t term\n", "c.tsv", 2, "c.tsv:2: a term (\"term\") with no code");
    refused_line("1679004\tPPR\textra\n", "c.tsv", 1, "c.tsv:1: more than two tab-separated fields (label \"1679004\")");
    refused_line("72934000 Mastitis\n", "c.tsv", 1, "c.tsv:1: \"72934000 Mastitis\" is a code and more, separated by blanks");
    refused_line("a\n1679004  PPR\tx\n", "c.tsv", 2, "put a tab between the code and its term");
    refused_line("Foot Rot\tx\nFOOT ROT\n", "c.tsv", 2, "label \"FOOT ROT\" differs from \"Foot Rot\" only in case");

    vet_err err = {0};
    FILE *f = text_file("code\tterm\tnote\n1679004\t\n3974005\tFMD\t\nFoot  Rot\n2019 nCoV\tx\n\t\n# a\tb\tc\n"
                        "1679004\tPPR\n");
    vet_labels *v = vet_codes_load(f, "ok.tsv", &err);
    fclose(f);
    CHECK(v != NULL);
    if (!v) return;
    CHECK(vet_labels_count(v) == 4);
    CHECK_STR(vet_labels_term(v, "1679004"), "PPR");  // no term, then one: filled, nothing lost
    CHECK_STR(vet_labels_term(v, "3974005"), "FMD");  // a trailing tab is a blank
    CHECK_STR(vet_labels_term(v, "Foot  Rot"), "");
    CHECK_STR(vet_labels_term(v, "2019 nCoV"), "x");  // 4 digits: no code
    vet_labels_free(v);
}

static void test_join(void) {
    const char *v[] = {"1679004", "Foot Rot"};
    char out[64];
    vet_labels_join(out, sizeof out, v, 2, "(none)");
    CHECK_STR(out, "1679004;Foot Rot");
    vet_labels_join(out, sizeof out, v, 0, "(none)");
    CHECK_STR(out, "(none)");
    vet_labels_join(out, 10, v, 2, "");
    CHECK_STR(out, "1679004;F");  // cut at the buffer's end, still terminated
}

int main(void) {
    RUN(test_reference_output);
    RUN(test_whole_tokens);
    RUN(test_unknown_numeric_codes);
    RUN(test_non_numeric_labels);
    RUN(test_vocabulary);
    RUN(test_codes_file);
    RUN(test_codes_file_lines);
    RUN(test_join);
    CHECK_EXIT();
}
