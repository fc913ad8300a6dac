// test_template.c — prompts rendered byte for byte as the reference recipe (alpaca-lora's
// templates/alpaca.json) writes them, and the template file format.
#include "check.h"
#include "data/template.h"

static char *codes2[] = {"40214000", "1679004"};

static vet_note cow(void) {
    return (vet_note){.line = 2, .index = 1, .id = "dlo-1", .species = "Cow",
                      .note = "Cow. Fever.", .disease = "Anthrax", .codes = codes2, .n_codes = 1};
}

static void alpaca_with_input(void) {
    vet_err err;
    vet_template *t = vet_template_open(NULL, NULL, NULL, NULL, &err);
    CHECK(t != NULL);
    vet_note n = cow();
    vet_text out = {0};
    CHECK(vet_template_prompt(t, &n, &out, &err) == 0);
    CHECK_STR(out.s,
        "Below is an instruction that describes a task, paired with an input that provides further "
        "context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nAnalyze the following veterinary clinical note and predict the SNOMED-CT "
        "diagnosis codes.\n\n### Input:\nClinical Note: Cow. Fever.\n\n### Response:\n");
    CHECK(vet_template_response(t, &n, &out, &err) == 0);
    CHECK_STR(out.s, "Diagnosed conditions: 40214000");
    n.n_codes = 2;
    CHECK(vet_template_response(t, &n, &out, &err) == 0);
    CHECK_STR(out.s, "Diagnosed conditions: 40214000, 1679004");
    n.n_codes = 0;  // no code: the disease names the label
    CHECK(vet_template_response(t, &n, &out, &err) == 0);
    CHECK_STR(out.s, "Diagnosed conditions: Anthrax");
    CHECK_STR(vet_template_name(t), "alpaca");
    CHECK_STR(vet_template_response_prefix(t), "Diagnosed conditions: ");
    CHECK_STR(vet_template_note_prefix(t), "Clinical Note: ");
    CHECK(strlen(vet_template_sha256(t)) == 64);
    vet_text_free(&out);
    vet_template_free(t);
}

static void alpaca_without_input(void) {
    vet_err err;
    vet_template *t = vet_template_open("alpaca", "Name the disease.", "", NULL, &err);
    CHECK(t != NULL);
    CHECK_STR(vet_template_name(t), "alpaca-noinput");
    vet_note n = cow();
    vet_text out = {0};
    CHECK(vet_template_prompt(t, &n, &out, &err) == 0);
    CHECK_STR(out.s,
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nName the disease.\n\n### Response:\n");
    vet_text_free(&out);
    vet_template_free(t);
}

// Alpaca records carry their own instruction, input and output: used as they are.
static void record_fields_win(void) {
    vet_err err;
    vet_template *t = vet_template_open(NULL, NULL, NULL, NULL, &err);
    vet_note n = cow();
    n.instruction = "Own instruction.";
    n.input = "Own input";
    n.output = "Own output";
    vet_text out = {0};
    CHECK(vet_template_prompt(t, &n, &out, &err) == 0);
    CHECK_CONTAINS(out.s, "### Instruction:\nOwn instruction.\n\n### Input:\nOwn input\n\n### Response:\n");
    CHECK(vet_template_response(t, &n, &out, &err) == 0);
    CHECK_STR(out.s, "Own output");
    vet_text_free(&out);
    vet_template_free(t);
}

static void file_format(void) {
    vet_err err;
    const char *text = "Species {species}, id {id} {{literal}}:\n{note}\n---\nAnswer: {disease} / {codes}\n";
    vet_template *t = vet_template_parse(text, strlen(text), "mine.txt", NULL, NULL, NULL, &err);
    CHECK(t != NULL);
    if (!t) { fprintf(stderr, "%s\n", err.msg); return; }
    vet_note n = cow();
    vet_text out = {0};
    CHECK(vet_template_prompt(t, &n, &out, &err) == 0);
    CHECK_STR(out.s, "Species Cow, id dlo-1 {literal}:\nCow. Fever.\n");
    CHECK(vet_template_response(t, &n, &out, &err) == 0);
    CHECK_STR(out.s, "Answer: Anthrax / 40214000");
    CHECK_STR(vet_template_response_prefix(t), "Answer: ");
    CHECK_STR(vet_template_text(t), text);  // the file form round-trips
    // --response-format beats the file's response part.
    vet_template *t2 = vet_template_parse(text, strlen(text), "mine.txt", NULL, NULL, "[{codes}]", &err);
    CHECK(vet_template_response(t2, &n, &out, &err) == 0);
    CHECK_STR(out.s, "[40214000]");
    CHECK(strcmp(vet_template_sha256(t), vet_template_sha256(t2)) != 0);
    vet_template_free(t2);
    vet_text_free(&out);
    vet_template_free(t);
}

static void file_roundtrip_and_identity(void) {
    vet_err err;
    vet_template *a = vet_template_open(NULL, NULL, NULL, NULL, &err);
    char path[] = "/tmp/vet-template-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs(vet_template_text(a), f);
    fclose(f);
    vet_template *b = vet_template_open(path, NULL, NULL, NULL, &err);
    CHECK(b != NULL);
    if (b) {
        // The built-in written out and read back renders the same and has the same identity.
        CHECK_STR(vet_template_sha256(a), vet_template_sha256(b));
        vet_note n = cow();
        vet_text x = {0}, y = {0};
        vet_template_prompt(a, &n, &x, &err);
        vet_template_prompt(b, &n, &y, &err);
        CHECK_STR(x.s, y.s);
        vet_text_free(&x);
        vet_text_free(&y);
        CHECK_STR(vet_template_name(b), strrchr(path, '/') + 1);
    }
    vet_template *c = vet_template_open(NULL, "Another instruction.", NULL, NULL, &err);
    CHECK(strcmp(vet_template_sha256(a), vet_template_sha256(c)) != 0);
    vet_template_free(a);
    vet_template_free(b);
    vet_template_free(c);
    remove(path);
    CHECK(vet_template_open(path, NULL, NULL, NULL, &err) == NULL);
    CHECK_CONTAINS(err.msg, "cannot open template");
}

// The print form writes a non-default instruction (braces doubled) and input format into the
// placeholders, in the prompt and the response alike; "{{input}}" is a literal, no placeholder.
// Parsed back with no options, it renders what the template rendered.
static void print_form_with_options(void) {
    static const char file[] = "{{input}} {instruction}|{input}\n---\n{instruction}: {codes}\n";
    vet_err err;
    vet_template *t = vet_template_parse(file, strlen(file), "f", "Say {it}", "Note {note}", NULL, &err);
    CHECK(t != NULL);
    vet_text form = {0}, a = {0}, b = {0};
    CHECK(vet_template_print_form(t, &form, &err) == 0);
    CHECK_STR(form.s, "{{input}} Say {{it}}|Note {note}\n---\nSay {{it}}: {codes}\n");
    vet_template *back = vet_template_parse(form.s, form.len, "f", NULL, NULL, NULL, &err);
    CHECK(back != NULL);
    vet_note n = cow();
    CHECK(vet_template_prompt(t, &n, &a, &err) == 0 && vet_template_prompt(back, &n, &b, &err) == 0);
    CHECK_STR(a.s, "{input} Say {it}|Note Cow. Fever.\n");
    CHECK_STR(b.s, a.s);
    CHECK(vet_template_response(t, &n, &a, &err) == 0 && vet_template_response(back, &n, &b, &err) == 0);
    CHECK_STR(b.s, a.s);
    vet_template_free(back);
    vet_template_free(t);
    // With the defaults the placeholders stay (an Alpaca record's own instruction still counts).
    t = vet_template_open(NULL, NULL, NULL, NULL, &err);
    CHECK(vet_template_print_form(t, &form, &err) == 0);
    CHECK_STR(form.s, vet_template_text(t));
    vet_template_free(t);
    vet_text_free(&form);
    vet_text_free(&a);
    vet_text_free(&b);
}

static void bad_templates(void) {
    vet_err err;
    const char *t1 = "{instruction} {nte}\n";
    CHECK(vet_template_parse(t1, strlen(t1), "x", NULL, NULL, NULL, &err) == NULL);
    CHECK_CONTAINS(err.msg, "unknown placeholder {nte}");
    const char *t2 = "{note} {codes}\n---\n{codes}\n";
    CHECK(vet_template_parse(t2, strlen(t2), "x", NULL, NULL, NULL, &err) == NULL);
    CHECK_CONTAINS(err.msg, "{codes} in the prompt would show the model its answer");
    const char *t3 = "{note\n";
    CHECK(vet_template_parse(t3, strlen(t3), "x", NULL, NULL, NULL, &err) == NULL);
    CHECK_CONTAINS(err.msg, "unclosed {");
    CHECK(vet_template_open(NULL, NULL, "Note: {input}", NULL, &err) == NULL);
    CHECK_CONTAINS(err.msg, "input format");
}

int main(void) {
    RUN(alpaca_with_input);
    RUN(alpaca_without_input);
    RUN(record_fields_win);
    RUN(file_format);
    RUN(file_roundtrip_and_identity);
    RUN(print_form_with_options);
    RUN(bad_templates);
    CHECK_EXIT();
}
