// vet-mktokens — test helper: JSON lines of {id, species, codes, note, prompt, response[, copy_of]} on
// stdin become a `tokens` stream (docs/formats.md), so vet-pack's tests need no tokenizer.
//
//   vet-mktokens [--sha256 HEX] [--vocab N] [--unk ID] [--kind KIND] [-o OUT] < samples.jsonl
//
// --sha256 sets the tokenizer identity written in the header (default 64 'a's), --vocab its
// vocab_size (default 32000), --unk its unk_id (default 0; negative: no unk_id in the header,
// as a stream from elsewhere might be), --kind writes a stream of another kind (to test refusals).
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/mp.h"
#include "io/stream.h"

static void die(const char *msg, const char *detail) {
    fprintf(stderr, "vet-mktokens: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void pack_int_array(msgpack_packer *pk, const char *key, json_t *arr) {
    mp_key(pk, key);
    if (!json_is_array(arr)) die("not an array", key);
    msgpack_pack_array(pk, json_array_size(arr));
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) msgpack_pack_int64(pk, json_integer_value(v));
}

int main(int argc, char **argv) {
    const char *sha = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const char *kind = "tokens", *out = "-";
    long vocab = 32000, unk = 0;
    static const struct option opts[] = {
        {"sha256", required_argument, 0, 's'}, {"vocab", required_argument, 0, 'v'},
        {"kind", required_argument, 0, 'k'},   {"output", required_argument, 0, 'o'},
        {"unk", required_argument, 0, 'u'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "s:v:k:o:u:", opts, NULL)) != -1) {
        switch (c) {
        case 's': sha = optarg; break;
        case 'v': vocab = atol(optarg); break;
        case 'k': kind = optarg; break;
        case 'o': out = optarg; break;
        case 'u': unk = atol(optarg); break;
        default: return 2;
        }
    }
    vet_err err;
    vet_writer *w = vet_writer_open(out, kind, "vet-mktokens", &err);
    if (!w) die(err.msg, NULL);
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, 3);
    mp_key(pk, "tokenizer");
    msgpack_pack_map(pk, unk >= 0 ? 6 : 5);
    mp_kv_str(pk, "sha256", sha);
    mp_kv_int(pk, "vocab_size", vocab);
    mp_kv_int(pk, "bos_id", 1);
    mp_kv_int(pk, "eos_id", 2);
    mp_kv_int(pk, "pad_id", 0);
    if (unk >= 0) mp_kv_int(pk, "unk_id", unk);
    mp_key(pk, "template");
    msgpack_pack_map(pk, 2);
    mp_kv_str(pk, "name", "test");
    mp_kv_str(pk, "sha256", "0000");
    mp_kv_str(pk, "source", "-");
    if (vet_writer_header_end(w, &err) != 0) die(err.msg, NULL);

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (len <= 1) continue;
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        if (!json_is_object(o)) die("bad JSON line", jerr.text);
        json_t *copy_of = json_object_get(o, "copy_of");  // optional: a species-swapped copy
        msgpack_pack_map(pk, copy_of ? 7 : 6);
        mp_kv_str(pk, "id", json_string_value(json_object_get(o, "id")));
        mp_kv_str(pk, "species", json_string_value(json_object_get(o, "species")));
        json_t *codes = json_object_get(o, "codes");
        mp_key(pk, "codes");
        msgpack_pack_array(pk, json_array_size(codes));
        size_t i;
        json_t *v;
        json_array_foreach(codes, i, v) mp_str(pk, json_string_value(v));
        mp_kv_str(pk, "note", json_string_value(json_object_get(o, "note")));
        pack_int_array(pk, "prompt", json_object_get(o, "prompt"));
        pack_int_array(pk, "response", json_object_get(o, "response"));
        if (copy_of && json_is_string(copy_of)) mp_kv_str(pk, "copy_of", json_string_value(copy_of));
        else if (copy_of) {  // any other type goes through as an integer: a bad record for vet-pack
            mp_key(pk, "copy_of");
            msgpack_pack_int64(pk, json_integer_value(copy_of));
        }
        json_decref(o);
        if (vet_writer_record_end(w, &err) != 0) die(err.msg, NULL);
    }
    free(line);
    if (vet_writer_close(w, &err) != 0) die(err.msg, NULL);
    return 0;
}
