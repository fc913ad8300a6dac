// template.c — see template.h. A template is kept as two format strings (prompt, response)
// plus the instruction and input format; rendering scans a format once, copying literal
// bytes and substituting placeholders.
#include "data/template.h"

#include "base/read_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "base/utf8.h"

// The reference recipe's wording (tatsu-lab/stanford_alpaca, tloen/alpaca-lora templates/alpaca.json).
static const char ALPACA_PROMPT[] =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";
static const char ALPACA_NOINPUT_PROMPT[] =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n";

struct vet_template {
    char *name;
    char *prompt;           // prompt format
    char *response;         // response format
    char *instruction;
    char *input_format;
    char *response_prefix;
    char *note_prefix;
    char *text;             // file form: prompt, "---\n", response, "\n"
    char sha256[65];
};

int vet_text_append(vet_text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1) cap *= 2;
        char *p = realloc(t->s, cap);
        if (!p) return -1;
        t->s = p;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
    return 0;
}

void vet_text_free(vet_text *t) {
    free(t->s);
    t->s = NULL;
    t->len = t->cap = 0;
}

static void text_clear(vet_text *t) {
    t->len = 0;
    if (t->s) t->s[0] = '\0';
}

// Where a format is used decides which placeholders it may hold.
enum { IN_PROMPT, IN_INPUT, IN_RESPONSE };
static const char *const WHERE[] = {"prompt", "input format", "response format"};

static int append_codes(vet_text *out, const vet_note *n) {
    if (n->n_codes == 0) return vet_text_append(out, n->disease, strlen(n->disease));
    for (size_t i = 0; i < n->n_codes; i++) {
        if (i && vet_text_append(out, ", ", 2)) return -1;
        if (vet_text_append(out, n->codes[i], strlen(n->codes[i]))) return -1;
    }
    return 0;
}

// Renders fmt for note n into out (appending). With n == NULL only checks the placeholders.
// 1 when the format s holds the placeholder {name} ("{{" is a literal brace, no placeholder).
static int has_placeholder(const char *s, const char *name) {
    size_t n = strlen(name);
    for (const char *p = s; (p = strchr(p, '{'));) {
        if (p[1] == '{') {
            p += 2;
            continue;
        }
        if (strncmp(p + 1, name, n) == 0 && p[1 + n] == '}') return 1;
        p++;
    }
    return 0;
}

static int render(const vet_template *t, const char *fmt, int where, const vet_note *n,
                  vet_text *out, vet_err *err) {
    const char *p = fmt;
    while (*p) {
        const char *brace = strpbrk(p, "{}");
        if (!brace) brace = p + strlen(p);
        if (n && vet_text_append(out, p, (size_t)(brace - p))) goto oom;
        p = brace;
        if (!*p) break;
        if (p[0] == p[1]) {  // {{ or }}: a literal brace
            if (n && vet_text_append(out, p, 1)) goto oom;
            p += 2;
            continue;
        }
        if (*p == '}') {  // a lone } is just a character
            if (n && vet_text_append(out, p, 1)) goto oom;
            p++;
            continue;
        }
        const char *close = strchr(p, '}');
        size_t len = close ? (size_t)(close - p - 1) : 0;
        const char *name = p + 1;
#define IS(s) (close && len == strlen(s) && memcmp(name, s, len) == 0)
        int rc = 0;
        if (IS("note")) {
            if (n) rc = vet_text_append(out, n->note, strlen(n->note));
        } else if (IS("species")) {
            if (n) rc = vet_text_append(out, n->species, strlen(n->species));
        } else if (IS("id")) {
            if (n) rc = vet_text_append(out, n->id, strlen(n->id));
        } else if (IS("instruction") && where != IN_INPUT) {
            if (n) {
                const char *s = n->instruction ? n->instruction : t->instruction;
                rc = vet_text_append(out, s, strlen(s));
            }
        } else if (IS("input") && where != IN_INPUT) {
            if (n && n->input) rc = vet_text_append(out, n->input, strlen(n->input));
            else if (n) rc = render(t, t->input_format, IN_INPUT, n, out, err);
        } else if ((IS("codes") || IS("disease")) && where == IN_RESPONSE) {
            if (n) rc = IS("codes") ? append_codes(out, n)
                                    : vet_text_append(out, n->disease, strlen(n->disease));
        } else if (IS("codes") || IS("disease")) {
            return vet_errf(err, "%.*s in the %s would show the model its answer: use it in the "
                            "response part only", (int)len + 2, p, WHERE[where]);
        } else if (close && len < 40) {
            return vet_errf(err, "unknown placeholder %.*s in the %s (known: {instruction} {input} "
                            "{note} {species} {id}, and {codes} {disease} in the response; "
                            "write {{ for a literal brace)", (int)len + 2, p, WHERE[where]);
        } else {
            return vet_errf(err, "unclosed { in the %s (write {{ for a literal brace)", WHERE[where]);
        }
#undef IS
        if (rc) goto oom;
        p = close + 1;
    }
    return 0;
oom:
    return vet_err_nomem(err, "out of memory rendering the %s", WHERE[where]);
}

int vet_template_shows_note(const vet_template *t) {
    return has_placeholder(t->prompt, "note") ||
           (has_placeholder(t->prompt, "input") && has_placeholder(t->input_format, "note"));
}

int vet_template_prompt(const vet_template *t, const vet_note *n, vet_text *out, vet_err *err) {
    text_clear(out);
    if (vet_text_append(out, "", 0)) return vet_err_nomem(err, "out of memory");
    return render(t, t->prompt, IN_PROMPT, n, out, err);
}

int vet_template_response(const vet_template *t, const vet_note *n, vet_text *out, vet_err *err) {
    text_clear(out);
    if (vet_text_append(out, "", 0)) return vet_err_nomem(err, "out of memory");
    if (n->output) return vet_text_append(out, n->output, strlen(n->output)) ? vet_err_nomem(err, "out of memory") : 0;
    return render(t, t->response, IN_RESPONSE, n, out, err);
}

// The literal text of fmt before its first placeholder, with {{ }} unescaped.
static char *literal_prefix(const char *fmt, const char *upto) {
    vet_text out = {0};
    if (vet_text_append(&out, "", 0)) return NULL;
    const char *p = fmt;
    while (*p) {
        if ((p[0] == '{' || p[0] == '}') && p[1] == p[0]) { vet_text_append(&out, p, 1); p += 2; continue; }
        if (p[0] == '{') break;
        vet_text_append(&out, p, 1);
        p++;
    }
    // With upto: only a prefix that ends right at that placeholder counts.
    if (upto && strncmp(p, upto, strlen(upto)) != 0) { out.len = 0; out.s[0] = '\0'; }
    return out.s;
}

void vet_template_free(vet_template *t) {
    if (!t) return;
    free(t->name);
    free(t->prompt);
    free(t->response);
    free(t->instruction);
    free(t->input_format);
    free(t->response_prefix);
    free(t->note_prefix);
    free(t->text);
    free(t);
}

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = '\0'; }
    return d;
}

// Text that goes into every prompt is UTF-8, as the notes must be: other bytes were encoded as
// they came, and the stream's header (which records the instruction) held a string other readers
// cannot decode. The template's own text is bad input; an option's value a usage error.
static int check_utf8(const char *name, const char *text, size_t len, const char *instruction,
                      const char *input_format, const char *response_format, vet_err *err) {
    size_t off;
    if (!vet_utf8_valid(text, len, &off))
        return vet_errf(err, "%s: the template is not valid UTF-8 (byte %zu); convert it with iconv", name, off + 1);
    const char *opt[] = {instruction, input_format, response_format};
    static const char *const flag[] = {"--instruction", "--input-format", "--response-format"};
    for (int k = 0; k < 3; k++)
        if (opt[k] && !vet_utf8_valid(opt[k], strlen(opt[k]), &off))
            return vet_err_kindf(err, VET_E_USAGE, "%s is not valid UTF-8 (byte %zu)", flag[k], off + 1);
    return 0;
}

// The input format of a template given none: a template that shows no {input} has no input
// section, as alpaca-noinput, and so the empty one alpaca-noinput has. Its file form (which can
// hold no input format) then reads back as the template it was printed from: one identity.
static const char *default_input_format(const vet_template *t) {
    return has_placeholder(t->prompt, "input") || has_placeholder(t->response, "input") ? VET_DEFAULT_INPUT_FORMAT : "";
}

vet_template *vet_template_parse(const char *text, size_t len, const char *name,
                                 const char *instruction, const char *input_format,
                                 const char *response_format, vet_err *err) {
    if (memchr(text, '\0', len)) {
        vet_errf(err, "%s: the template holds a NUL byte (is it a text file?)", name);
        return NULL;
    }
    if (check_utf8(name, text, len, instruction, input_format, response_format, err)) return NULL;
    vet_template *t = calloc(1, sizeof *t);
    if (!t) { vet_err_nomem(err, "out of memory"); return NULL; }
    // Split at the first line that is exactly "---".
    const char *sep = NULL, *after = NULL;
    for (const char *line = text; line < text + len;) {
        const char *nl = memchr(line, '\n', (size_t)(text + len - line));
        const char *end = nl ? nl : text + len;
        size_t n = (size_t)(end - line);
        if (n && line[n - 1] == '\r') n--;
        if (n == 3 && memcmp(line, "---", 3) == 0) { sep = line; after = nl ? nl + 1 : end; break; }
        line = nl ? nl + 1 : end;
    }
    const char *resp = response_format;
    char *file_resp = NULL;
    if (sep) {
        size_t rn = (size_t)(text + len - after);
        if (rn && after[rn - 1] == '\n') rn--;
        if (rn && after[rn - 1] == '\r') rn--;
        file_resp = dupn(after, rn);
        if (!resp) resp = file_resp;
    }
    if (!resp) resp = VET_DEFAULT_RESPONSE_FORMAT;
    t->name = strdup(name);
    t->prompt = dupn(text, sep ? (size_t)(sep - text) : len);
    t->response = strdup(resp);
    t->instruction = strdup(instruction ? instruction : VET_DEFAULT_INSTRUCTION);
    free(file_resp);
    if (!t->name || !t->prompt || !t->response || !t->instruction) {
        vet_err_nomem(err, "out of memory");
        goto fail;
    }
    t->input_format = strdup(input_format ? input_format : default_input_format(t));
    if (!t->input_format) {
        vet_err_nomem(err, "out of memory");
        goto fail;
    }
    if (render(t, t->prompt, IN_PROMPT, NULL, NULL, err) ||
        render(t, t->input_format, IN_INPUT, NULL, NULL, err) ||
        render(t, t->response, IN_RESPONSE, NULL, NULL, err)) {
        vet_err_prefix(err, "template %s", name);
        goto fail;
    }
    // A response without the codes is the same for every sample: nothing to learn from.
    if (!has_placeholder(t->response, "codes") && !has_placeholder(t->response, "disease")) {
        vet_errf(err, "template %s: the response part '%s' holds neither {codes} nor {disease}: every sample "
                 "would have the same answer (check --response-format or the part after ---)", name, t->response);
        goto fail;
    }
    t->response_prefix = literal_prefix(t->response, NULL);
    // What an Alpaca record's input holds before its note. An input format without {note} (the
    // empty one of a template without an input section) says nothing of that: the records' inputs
    // are still "Clinical Note: ..." as the default writes them, and their note is the same as
    // under any other template (and as the CSV's note column).
    const char *shows = has_placeholder(t->input_format, "note") ? t->input_format : VET_DEFAULT_INPUT_FORMAT;
    t->note_prefix = literal_prefix(shows, "{note}");
    size_t pn = strlen(t->prompt), rn = strlen(t->response);
    t->text = malloc(pn + rn + 6);
    if (!t->response_prefix || !t->note_prefix || !t->text) { vet_err_nomem(err, "out of memory"); goto fail; }
    memcpy(t->text, t->prompt, pn);
    memcpy(t->text + pn, "---\n", 4);
    memcpy(t->text + pn + 4, t->response, rn);
    memcpy(t->text + pn + 4 + rn, "\n", 2);
    // Identity: the file form, then the instruction and the input format, NUL-separated.
    vet_sha256 h;
    uint8_t d[32];
    vet_sha256_init(&h);
    vet_sha256_update(&h, t->text, strlen(t->text) + 1);
    vet_sha256_update(&h, t->instruction, strlen(t->instruction) + 1);
    vet_sha256_update(&h, t->input_format, strlen(t->input_format));
    vet_sha256_final(&h, d);
    vet_sha256_to_hex(d, t->sha256);
    return t;
fail:
    vet_template_free(t);
    return NULL;
}

// A file written on Windows may begin with a UTF-8 byte order mark and ends its lines in CRLF: the
// mark and each CR right before a LF are dropped (in place; the new length returned), or every
// prompt would begin with the mark and carry "\r\n" where the notes and the built-in templates
// have "\n" (the notes' own mark is skipped as well). A CR elsewhere is kept as it is.
static size_t from_windows(char *s, size_t n) {
    size_t r = vet_utf8_bom_len(s, n), w = 0;
    for (; r < n; r++)
        if (!(s[r] == '\r' && r + 1 < n && s[r + 1] == '\n')) s[w++] = s[r];
    return w;
}

vet_template *vet_template_open(const char *spec, const char *instruction, const char *input_format,
                                const char *response_format, vet_err *err) {
    if (!spec) spec = "alpaca";
    if (strcmp(spec, "alpaca") == 0 && input_format && !*input_format) spec = "alpaca-noinput";
    if (strcmp(spec, "alpaca") == 0)
        return vet_template_parse(ALPACA_PROMPT, strlen(ALPACA_PROMPT), spec, instruction,
                                  input_format, response_format, err);
    if (strcmp(spec, "alpaca-noinput") == 0)
        return vet_template_parse(ALPACA_NOINPUT_PROMPT, strlen(ALPACA_NOINPUT_PROMPT), spec,
                                  instruction, input_format, response_format, err);
    // A template is a few hundred bytes: 1 MiB refuses a device or a wrong file up front.
    char *text;
    size_t len;
    // "-" is stdin, as for every other file vet reads (a pipe is read as a file is, bounded)
    const bool from_stdin = strcmp(spec, "-") == 0;
    if (vet_read_file(from_stdin ? "/dev/stdin" : spec, "template (or a built-in: alpaca, alpaca-noinput)",
                      (size_t)1 << 20, &text, &len, err) < 0)
        return NULL;
    len = from_windows(text, len);
    const char *base = strrchr(spec, '/');
    base = from_stdin ? "stdin" : base ? base + 1 : spec;
    vet_template *t = vet_template_parse(text, len, base, instruction, input_format, response_format, err);
    free(text);
    return t;
}

// s with each brace doubled: literal text that goes into a format.
static int append_literal(vet_text *out, const char *s) {
    for (; *s; s++) {
        int brace = *s == '{' || *s == '}';
        if ((brace && vet_text_append(out, s, 1)) || vet_text_append(out, s, 1)) return -1;
    }
    return 0;
}

// fmt with each {name} replaced by with (as literal text when literal, else as a format), every
// other byte as it is, appended to out. The braces pair as render pairs them: "{{input}" is none.
static int substitute(const char *fmt, const char *name, const char *with, int literal, vet_text *out) {
    size_t n = strlen(name);
    for (const char *p = fmt; *p;) {
        int pair = (p[0] == '{' || p[0] == '}') && p[1] == p[0];
        if (!pair && p[0] == '{' && strncmp(p + 1, name, n) == 0 && p[1 + n] == '}') {
            if (literal ? append_literal(out, with) : vet_text_append(out, with, strlen(with))) return -1;
            p += n + 2;
            continue;
        }
        if (vet_text_append(out, p, pair ? 2 : 1)) return -1;
        p += pair ? 2 : 1;
    }
    return 0;
}

// fmt (a prompt or a response format) appended to out with the instruction and the input format
// written in, each only where it is not what the file alone would be read with: the placeholder
// stays otherwise (and an Alpaca record's own instruction and input still count).
static int append_resolved(const vet_template *t, const char *fmt, vet_text *out) {
    vet_text mid = {0};
    int own_instruction = strcmp(t->instruction, VET_DEFAULT_INSTRUCTION) != 0;
    int own_input = strcmp(t->input_format, VET_DEFAULT_INPUT_FORMAT) != 0;
    int rc = vet_text_append(&mid, "", 0) ||
             (own_instruction ? substitute(fmt, "instruction", t->instruction, 1, &mid)
                              : vet_text_append(&mid, fmt, strlen(fmt))) ||
             (own_input ? substitute(mid.s, "input", t->input_format, 0, out) : vet_text_append(out, mid.s, mid.len));
    vet_text_free(&mid);
    return rc;
}

int vet_template_print_form(const vet_template *t, vet_text *out, vet_err *err) {
    text_clear(out);
    if (vet_text_append(out, "", 0) || append_resolved(t, t->prompt, out) || vet_text_append(out, "---\n", 4) ||
        append_resolved(t, t->response, out) || vet_text_append(out, "\n", 1))
        return vet_err_nomem(err, "out of memory");
    return 0;
}

const char *vet_template_name(const vet_template *t) { return t->name; }
const char *vet_template_sha256(const vet_template *t) { return t->sha256; }
const char *vet_template_instruction(const vet_template *t) { return t->instruction; }
const char *vet_template_input_format(const vet_template *t) { return t->input_format; }
const char *vet_template_response_prefix(const vet_template *t) { return t->response_prefix; }
const char *vet_template_response_format(const vet_template *t) { return t->response; }
const char *vet_template_note_prefix(const vet_template *t) { return t->note_prefix; }
const char *vet_template_text(const vet_template *t) { return t->text; }
