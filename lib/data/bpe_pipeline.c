// bpe_pipeline.c — the parts of a tokenizer.json around the model: normalizer (read by
// bpe_normalize.c), pre-tokenizer, post-processor and decoder. Each is read if vet does exactly
// what Hugging Face's tokenizers does with it, and refused by name otherwise.
#include <stdlib.h>
#include <string.h>

#include "data/bpe_impl.h"

// GPT-2's pre-tokenizer regex, which ByteLevel applies when use_regex is true.
const char BPE_GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// Hugging Face runs these regexes with Oniguruma, whose \s is Unicode's White_Space (it takes
// U+0085 NEXT LINE). PCRE2's \s in UCP mode has been \p{Z} plus the ASCII spaces in some
// versions, without U+0085 (Debian 12's 10.42 does take it: the reference test has a string that
// tells). So that no version depends on it, \s becomes [\s\x{85}] (inside a class, \s\x{85})
// and \S outside a class [^\s\x{85}]. Returns a malloc'd pattern, or NULL when out of memory.
static char *onig_spaces(const char *p, size_t n, size_t *out_len) {
    char *o = malloc(n * 12 + 1);
    if (!o) return NULL;
    size_t k = 0;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[++i];
            if (e == 's') { memcpy(o + k, in_class ? "\\s\\x{85}" : "[\\s\\x{85}]", in_class ? 8 : 10); k += in_class ? 8 : 10; }
            else if (e == 'S' && !in_class) { memcpy(o + k, "[^\\s\\x{85}]", 11); k += 11; }
            else { o[k++] = c; o[k++] = e; }
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            o[k++] = c;
            if (i + 1 < n && p[i + 1] == '^') o[k++] = p[++i];
            if (i + 1 < n && p[i + 1] == ']') o[k++] = p[++i];  // a leading ']' is literal
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') {  // [:alpha:] inside a class
            const char *end = strstr(p + i, ":]");
            size_t m = end && (size_t)(end - p) < n ? (size_t)(end - p) + 2 - i : 1;
            memcpy(o + k, p + i, m), k += m, i += m - 1;
            continue;
        }
        if (in_class && c == ']') in_class = 0;
        o[k++] = c;
    }
    o[k] = 0;
    *out_len = k;
    return o;
}

pcre2_code *bpe_regex(const vet_bpe *b, const char *pattern, size_t len, bool literal, vet_err *err) {
    size_t n = len;
    char *p = literal ? NULL : onig_spaces(pattern, len, &n);
    if (!literal && !p) { vet_err_nomem(err, "out of memory"); return NULL; }
    int code;
    PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(literal ? pattern : p), n, opts, &code, &off, NULL);
    free(p);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        vet_errf(err, "pre_tokenizer regex \"%.200s\": PCRE2 rejects it near offset %zu: %s", pattern, (size_t)off, (char *)msg);
        return NULL;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // no JIT here: the interpreter gives the same matches
    return re;
}

static int behavior_of(const char *s, bpe_behavior *out) {
    static const struct { const char *name; bpe_behavior b; } names[] = {
        {"Isolated", BPE_ISOLATED}, {"Removed", BPE_REMOVED}, {"MergedWithPrevious", BPE_MERGED_PREV},
        {"MergedWithNext", BPE_MERGED_NEXT}, {"Contiguous", BPE_CONTIGUOUS}};
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) { *out = names[i].b; return 0; }
    return -1;
}

static int read_split(vet_bpe *b, json_t *pt, bpe_step *st, vet_err *err) {
    json_t *pat = json_object_get(pt, "pattern");
    json_t *re = json_object_get(pat, "Regex"), *str = json_object_get(pat, "String");
    if (!json_is_string(re) && !json_is_string(str))
        return vet_errf(err, "pre_tokenizer Split: pattern is neither {\"Regex\": ...} nor {\"String\": ...}");
    const char *beh = json_string_value(json_object_get(pt, "behavior"));
    if (behavior_of(beh, &st->behavior) < 0)
        return vet_errf(err, "pre_tokenizer Split: behavior \"%.40s\" is not supported", beh ? beh : "(none)");
    st->invert = json_is_true(json_object_get(pt, "invert"));
    json_t *p = json_is_string(re) ? re : str;
    if (json_string_length(p) == 0) return vet_errf(err, "pre_tokenizer Split: the pattern is empty");
    st->re = bpe_regex(b, json_string_value(p), json_string_length(p), json_is_string(str), err);
    return st->re ? 0 : -1;
}

// One pre-tokenizer (a Sequence is read by its items, in order).
static int read_pretok(vet_bpe *b, json_t *pt, int *seen_bytelevel, vet_err *err) {
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (!type) return vet_errf(err, "pre_tokenizer: no \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        json_t *items = json_object_get(pt, "pretokenizers"), *it;
        size_t i;
        if (!json_is_array(items)) return vet_errf(err, "pre_tokenizer Sequence: no \"pretokenizers\" array");
        json_array_foreach(items, i, it) if (read_pretok(b, it, seen_bytelevel, err) < 0) return -1;
        return 0;
    }
    if (*seen_bytelevel)
        return vet_errf(err, "pre_tokenizer %.40s after ByteLevel is not supported (ByteLevel must come last)", type);
    if (b->nsteps == BPE_MAX_STEPS) return vet_errf(err, "pre_tokenizer: more than %d steps", BPE_MAX_STEPS);
    bpe_step *st = &b->steps[b->nsteps];
    memset(st, 0, sizeof *st);
    if (strcmp(type, "ByteLevel") == 0) {
        *seen_bytelevel = 1;
        st->prefix_space = json_is_true(json_object_get(pt, "add_prefix_space"));
        json_t *ur = json_object_get(pt, "use_regex");
        if (!ur || json_is_true(ur)) {  // use_regex defaults to true
            if (!(st->re = bpe_regex(b, BPE_GPT2_REGEX, strlen(BPE_GPT2_REGEX), false, err))) return -1;
        }
        st->behavior = BPE_ISOLATED;
    } else if (strcmp(type, "Split") == 0) {
        if (read_split(b, pt, st, err) < 0) return -1;
    } else if (strcmp(type, "Digits") == 0) {
        // Digits splits off runs of numeric characters (Rust's char::is_numeric: \p{N}), or
        // each one alone with individual_digits.
        const char *re = json_is_true(json_object_get(pt, "individual_digits")) ? "\\p{N}" : "\\p{N}+";
        if (!(st->re = bpe_regex(b, re, strlen(re), false, err))) return -1;
        st->behavior = BPE_ISOLATED;
    } else {
        return vet_errf(err, "pre_tokenizer %.40s is not supported (ByteLevel, Split, Digits, Sequence are)", type);
    }
    b->nsteps++;
    return 0;
}

static int read_decoder(json_t *d, vet_err *err) {
    if (!d || json_is_null(d)) return 0;
    const char *type = json_string_value(json_object_get(d, "type"));
    if (type && strcmp(type, "ByteLevel") == 0) return 0;
    return vet_errf(err, "decoder %.40s is not supported (ByteLevel is)", type ? type : "(no type)");
}

// The single special token of a template item, by the template's special_tokens table.
static int template_token(const vet_bpe *b, json_t *pp, json_t *item, int32_t *id, vet_err *err) {
    const char *name = json_string_value(json_object_get(json_object_get(item, "SpecialToken"), "id"));
    if (!name) return vet_errf(err, "post_processor TemplateProcessing: an item is neither Sequence nor SpecialToken");
    json_t *ids = json_object_get(json_object_get(json_object_get(pp, "special_tokens"), name), "ids");
    if (!json_is_array(ids) || json_array_size(ids) != 1 || !json_is_integer(json_array_get(ids, 0)))
        return vet_errf(err, "post_processor TemplateProcessing: special token \"%.80s\" is not one id", name);
    json_int_t x = json_integer_value(json_array_get(ids, 0));
    if (x < 0 || x >= b->n) return vet_errf(err, "post_processor TemplateProcessing: \"%.80s\" has id %lld, out of range", name, (long long)x);
    *id = (int32_t)x;
    return 0;
}

// TemplateProcessing's "single": at most one special token before $A and one after.
static int read_template(vet_bpe *b, json_t *pp, vet_err *err) {
    json_t *single = json_object_get(pp, "single"), *item;
    if (!json_is_array(single)) return vet_errf(err, "post_processor TemplateProcessing: no \"single\" array");
    int before = 0, after = 0, seen_a = 0;
    size_t i;
    b->has_template = true;
    json_array_foreach(single, i, item) {
        if (json_object_get(item, "Sequence")) { seen_a++; continue; }
        int32_t id = -1;
        if (template_token(b, pp, item, &id, err) < 0) return -1;
        if (seen_a) b->tmpl_eos = id, after++;
        else b->tmpl_bos = id, before++;
    }
    if (seen_a != 1 || before > 1 || after > 1)
        return vet_errf(err, "post_processor TemplateProcessing: \"single\" must be [special] $A [special]");
    return 0;
}

static int read_post(vet_bpe *b, json_t *pp, vet_err *err) {
    if (!pp || json_is_null(pp)) return 0;
    const char *type = json_string_value(json_object_get(pp, "type"));
    if (!type) return vet_errf(err, "post_processor: no \"type\"");
    if (strcmp(type, "ByteLevel") == 0) return 0;  // offsets only
    if (strcmp(type, "TemplateProcessing") == 0) return read_template(b, pp, err);
    if (strcmp(type, "Sequence") == 0) {
        json_t *items = json_object_get(pp, "processors"), *it;
        size_t i;
        if (!json_is_array(items)) return vet_errf(err, "post_processor Sequence: no \"processors\" array");
        json_array_foreach(items, i, it) if (read_post(b, it, err) < 0) return -1;
        return 0;
    }
    return vet_errf(err, "post_processor %.40s is not supported (ByteLevel, TemplateProcessing, Sequence are)", type);
}

int bpe_push_split(vet_bpe *b, const char *regex, vet_err *err) {
    if (b->nsteps == BPE_MAX_STEPS) return vet_errf(err, "pre-tokenizer: more than %d steps", BPE_MAX_STEPS);
    bpe_step *st = &b->steps[b->nsteps];
    memset(st, 0, sizeof *st);
    st->behavior = BPE_ISOLATED;
    if (!(st->re = bpe_regex(b, regex, strlen(regex), false, err))) return -1;
    b->nsteps++;
    return 0;
}

int bpe_load_pipeline(vet_bpe *b, json_t *root, vet_err *err) {
    b->tmpl_bos = b->tmpl_eos = -1;
    if (bpe_read_normalizer(b, json_object_get(root, "normalizer"), err) < 0) return -1;
    json_t *pt = json_object_get(root, "pre_tokenizer");
    int seen = 0;
    if (!pt || json_is_null(pt)) return vet_errf(err, "no pre_tokenizer: vet reads byte-level BPE (a ByteLevel pre-tokenizer)");
    if (read_pretok(b, pt, &seen, err) < 0) return -1;
    if (!seen) return vet_errf(err, "pre_tokenizer has no ByteLevel step: not a byte-level BPE tokenizer");
    if (read_decoder(json_object_get(root, "decoder"), err) < 0) return -1;
    return read_post(b, json_object_get(root, "post_processor"), err);
}
