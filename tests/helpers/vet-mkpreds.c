// vet-mkpreds — test helper: writes a `predictions` stream (what vet-generate writes) from
// JSON lines or a CSV, so tests can feed vet-eval streams without a model.
//   JSON lines: each object becomes one record as it is (any keys, any types), so a test can
//               also make broken records (a missing "gold", a string where an array belongs).
//   CSV:        header row; gold and pred are split on ';' into arrays, tokens becomes an
//               integer and ms a number, every other column a string.
// usage: vet-mkpreds [--kind KIND] [--header JSON] IN OUT   ('-' for stdin/stdout; KIND default
// predictions; --header: a JSON object whose keys are added to the header, e.g. a shard's)
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../../tools/cli.h"
#include "io/csv.h"
#include "data/labels.h"
#include "eval/predictions.h"
#include "io/mp.h"
#include "io/stream.h"

static void pack_json(msgpack_packer *pk, const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(v));
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            mp_str(pk, k);
            pack_json(pk, x);
        }
        break;
    }
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(v));
        for (size_t i = 0; i < json_array_size(v); i++) pack_json(pk, json_array_get(v, i));
        break;
    case JSON_STRING: mp_strn(pk, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(v)); break;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(v)); break;
    case JSON_TRUE: msgpack_pack_true(pk); break;
    case JSON_FALSE: msgpack_pack_false(pk); break;
    case JSON_NULL: msgpack_pack_nil(pk); break;
    }
}

static void end_record(vet_writer *w) {
    vet_err err;
    if (vet_writer_record_end(w, &err) < 0) {
        vet_writer_abort(w);
        cli_fail(EXIT_IO, "%s", err.msg);
    }
}

static void from_jsonl(FILE *in, vet_writer *w) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    while ((got = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)got) continue;
        json_error_t jerr;
        json_t *o = json_loadb(line, (size_t)got, 0, &jerr);
        if (!json_is_object(o)) cli_fail(EXIT_BAD_INPUT, "line %ld: not a JSON object (%s)", lineno, jerr.text);
        pack_json(vet_writer_packer(w), o);
        json_decref(o);
        end_record(w);
    }
    free(line);
}

static void from_csv(FILE *in, vet_writer *w) {
    vet_err err;
    vet_csv *c = vet_csv_open(in, "input", &err);
    if (!c || vet_csv_next(c, &err) != VET_CSV_ROW) cli_fail(EXIT_BAD_INPUT, "no header row");
    size_t nh = vet_csv_nfields(c);
    char **head = calloc(nh, sizeof *head);
    for (size_t i = 0; i < nh; i++) head[i] = strdup(vet_csv_field(c, i, NULL));
    msgpack_packer *pk = vet_writer_packer(w);
    int rc;
    while ((rc = vet_csv_next(c, &err)) == VET_CSV_ROW) {
        if (vet_csv_nfields(c) != nh) cli_fail(EXIT_BAD_INPUT, "%ld: field count", vet_csv_line(c));
        msgpack_pack_map(pk, nh);
        for (size_t i = 0; i < nh; i++) {
            size_t len;
            const char *f = vet_csv_field(c, i, &len);
            if (strcmp(head[i], "gold") == 0 || strcmp(head[i], "pred") == 0) {
                char **v;
                size_t n;
                if (vet_split_labels(f, len, &v, &n, &err) < 0) cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
                mp_kv_str_array(pk, head[i], v, n);
                vet_labels_free_list(v, n);
            } else if (strcmp(head[i], "tokens") == 0) {
                mp_kv_int(pk, head[i], strtoll(f, NULL, 10));
            } else if (strcmp(head[i], "ms") == 0) {
                mp_kv_double(pk, head[i], strtod(f, NULL));
            } else {
                mp_kv_strn(pk, head[i], f, len);
            }
        }
        end_record(w);
    }
    if (rc != VET_CSV_EOF) cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
    for (size_t i = 0; i < nh; i++) free(head[i]);
    free(head);
    vet_csv_close(c);
}

int main(int argc, char **argv) {
    cli_prog = "vet-mkpreds";
    const char *kind = "predictions";
    json_t *extra = NULL;
    int a = 1;
    for (; argc - a > 2 && strncmp(argv[a], "--", 2) == 0; a += 2) {
        if (strcmp(argv[a], "--kind") == 0) kind = argv[a + 1];
        else if (strcmp(argv[a], "--header") == 0 && !extra) extra = json_loads(argv[a + 1], 0, NULL);
        else cli_usage_error("unknown option %s", argv[a]);
        if (strcmp(argv[a], "--header") == 0 && !json_is_object(extra)) cli_usage_error("--header: want a JSON object");
    }
    if (argc - a != 2) cli_usage_error("usage: vet-mkpreds [--kind KIND] [--header JSON] IN OUT");
    FILE *in = strcmp(argv[a], "-") == 0 ? stdin : fopen(argv[a], "r");
    if (!in) cli_fail(EXIT_IO, "%s: cannot open", argv[a]);
    vet_err err;
    vet_writer *w = vet_writer_open(argv[a + 1], kind, "vet-mkpreds", &err);
    if (!w) cli_fail(EXIT_IO, "%s", err.msg);
    vet_writer_header_begin(w, 1 + (extra ? (uint32_t)json_object_size(extra) : 0));
    mp_kv_str(vet_writer_packer(w), "source", argv[a]);
    const char *k;
    json_t *x;
    if (extra) json_object_foreach(extra, k, x) {
        mp_str(vet_writer_packer(w), k);
        pack_json(vet_writer_packer(w), x);
    }
    json_decref(extra);
    if (vet_writer_header_end(w, &err) < 0) cli_fail(EXIT_IO, "%s", err.msg);
    int c = getc(in);
    while (c == ' ' || c == '\n' || c == '\r' || c == '\t') c = getc(in);
    if (c != EOF) ungetc(c, in);
    if (c == '{')
        from_jsonl(in, w);
    else if (c != EOF)
        from_csv(in, w);
    if (in != stdin) fclose(in);
    if (vet_writer_close(w, &err) < 0) cli_fail(EXIT_IO, "%s", err.msg);
    return EXIT_OK;
}
