// vet-bpe-ids — a test tool: lib/data/tokenizer.h from the command line, for the reference test
// (tests/reference/test_bpe.py) and the benchmark.
//
//   vet-bpe-ids TOKENIZER            reads JSON strings, one a line, on stdin; prints for each
//                                    {"ids": [...], "text": decode(ids)} on one line
//   vet-bpe-ids TOKENIZER --info     prints what was loaded (kind, path, sha256, special ids)
//   vet-bpe-ids TOKENIZER --count    encodes only; prints the number of strings and of ids
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"

static int info(const vet_tokenizer *t) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:b}", "kind", vet_tokenizer_kind_name(t),
                          "path", vet_tokenizer_path(t), "sha256", vet_tokenizer_sha256(t), "choice",
                          vet_tokenizer_choice(t), "vocab_size", vet_tokenizer_vocab_size(t), "bos",
                          vet_tokenizer_bos_id(t), "eos", vet_tokenizer_eos_id(t), "pad", vet_tokenizer_pad_id(t),
                          "unk", vet_tokenizer_unk_id(t), "add_bos", vet_tokenizer_add_bos(t));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s) puts(s);
    free(s);
    json_decref(o);
    return s ? 0 : 1;
}

static int one(const vet_tokenizer *t, const char *text, size_t len, int count_only, int32_t **ids, size_t *cap,
               size_t *total, vet_err *err) {
    size_t n = 0;
    if (vet_tokenizer_encode(t, text, len, ids, &n, cap, err) < 0) return -1;
    *total += n;
    if (count_only) return 0;
    char *back = vet_tokenizer_decode(t, *ids, n, err);
    if (!back) return -1;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_integer((*ids)[i]));
    json_t *o = json_pack("{s:o, s:s}", "ids", arr, "text", back);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    free(back);
    json_decref(o);
    if (!s) return vet_errf(err, "cannot format the output");
    puts(s);
    free(s);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: vet-bpe-ids TOKENIZER [--info | --count] < json-strings\n");
        return 2;
    }
    vet_err err = {0};
    vet_tokenizer *t = vet_tokenizer_load(argv[1], &err);
    if (!t) { fprintf(stderr, "vet-bpe-ids: %s\n", err.msg); return 1; }
    if (argc == 3 && strcmp(argv[2], "--info") == 0) { int rc = info(t); vet_tokenizer_free(t); return rc; }
    int count_only = argc == 3 && strcmp(argv[2], "--count") == 0;
    char *line = NULL;
    size_t lcap = 0, cap = 0, total = 0, strings = 0;
    int32_t *ids = NULL;
    ssize_t got;
    int rc = 0;
    while (rc == 0 && (got = getline(&line, &lcap, stdin)) > 0) {
        json_error_t je;
        json_t *s = json_loadb(line, (size_t)got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!json_is_string(s)) { fprintf(stderr, "vet-bpe-ids: line %zu: not a JSON string\n", strings + 1); rc = 1; }
        else if (one(t, json_string_value(s), json_string_length(s), count_only, &ids, &cap, &total, &err) < 0) {
            fprintf(stderr, "vet-bpe-ids: line %zu: %s\n", strings + 1, err.msg);
            rc = 1;
        }
        json_decref(s);
        strings++;
    }
    if (count_only && rc == 0) printf("%zu strings, %zu ids\n", strings, total);
    free(line), free(ids);
    vet_tokenizer_free(t);
    return rc;
}
