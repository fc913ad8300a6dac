// test_predictions.c — the predictions stream's header and records as vet-generate writes them
// (lib/generate/predictions.h), read back with the stream reader.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "generate/predictions.h"
#include "io/mp.h"
#include "io/stream.h"

static char path[] = "/tmp/vet-test-predictions.XXXXXX";

// The header's value of key as JSON-ish text for simple checks: a string, or "nil".
static const char *hdr_str(const msgpack_object *h, const char *key, char *buf, size_t n) {
    const msgpack_object *o = mp_get(h, key);
    if (!o) return "absent";
    if (o->type == MSGPACK_OBJECT_NIL) return "nil";
    if (o->type != MSGPACK_OBJECT_STR) return "not a string";
    snprintf(buf, n, "%.*s", (int)o->via.str.size, o->via.str.ptr);
    return buf;
}

static void test_header_and_records(void) {
    // The input's header pieces copied as they are: a tokenizer map.
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    mp_kv_str(&pk, "sha256", "abcd");
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    CHECK(msgpack_unpack_next(&up, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
    const char *models[2] = {"m1", "m2"};
    for (int k = 1; k <= 2; k++) {
        vet_predictions_header h = {.model = "m1", .ensemble = models, .n_models = k, .adapter = k == 1 ? "ad" : NULL,
                                    .tokenizer = &up.data, .tmpl = NULL, .source = "notes.tok",
                                    .sampling = {0.5f, 0.9f, 7}, .seed = 3, .max_new = 12, .batch = 4,
                                    .constrain = k == 2 ? "codes.tsv" : NULL};
        vet_err err;
        vet_writer *w = vet_predictions_open(path, &h, &err);
        CHECK(w != NULL);
        if (!w) continue;
        char *gold[1] = {"111111"}, *pred[2] = {"111111", "222222"};
        int32_t gen[3] = {5, 6, 2};
        vet_prediction p = {.id = "n1", .species = "", .gold = gold, .n_gold = 1, .text = "Diagnosed: 111111",
                            .pred = pred, .n_pred = 2, .generated = gen, .n_generated = 3, .ms = 1.5};
        CHECK(vet_predictions_write(w, &p, &err) == 0);
        CHECK(vet_writer_close(w, &err) == 0);

        vet_reader *r = vet_reader_open(path, "predictions", &err);
        CHECK(r != NULL);
        if (!r) continue;
        const msgpack_object *hd = vet_reader_header(r);
        char buf[64];
        CHECK_STR(hdr_str(hd, "program", buf, sizeof buf), "vet-generate");
        CHECK_STR(hdr_str(hd, "model", buf, sizeof buf), "m1");
        CHECK_STR(hdr_str(hd, "adapter", buf, sizeof buf), k == 1 ? "ad" : "nil");
        CHECK_STR(hdr_str(hd, "source", buf, sizeof buf), "notes.tok");
        CHECK_STR(hdr_str(hd, "template", buf, sizeof buf), "absent");
        CHECK((mp_get(hd, "ensemble") != NULL) == (k == 2));  // only for an ensemble
        const msgpack_object *dec = mp_get(hd, "decoding");
        int64_t v = 0;
        CHECK(dec && mp_get_int(dec, "top_k", &v, &err) == 0 && v == 7);
        CHECK(dec && mp_get_int(dec, "batch", &v, &err) == 0 && v == 4);
        CHECK_STR(hdr_str(dec, "mode", buf, sizeof buf), "sample");
        CHECK_STR(hdr_str(dec, "constrain", buf, sizeof buf), k == 2 ? "codes.tsv" : "nil");
        const msgpack_object *rec;
        CHECK(vet_reader_next(r, &rec, &err) == 1);
        CHECK_STR(hdr_str(rec, "id", buf, sizeof buf), "n1");
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(mp_get_i32_array(rec, "generated", &ids, &n, &err) == 0 && n == 3 && ids[2] == 2);
        CHECK(mp_get_int(rec, "tokens", &v, &err) == 0 && v == 3);
        char **got = NULL;
        CHECK(mp_get_str_array(rec, "pred", &got, &n, &err) == 0 && n == 2 && strcmp(got[1], "222222") == 0);
        mp_free_strs(got, n);
        free(ids);
        CHECK(vet_reader_next(r, &rec, &err) == 0);
        vet_reader_close(r);
    }
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

static void test_unwritable_path(void) {
    vet_predictions_header h = {.model = "m", .n_models = 1, .source = "-"};
    msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    h.tokenizer = &nil;
    vet_err err;
    CHECK(vet_predictions_open("/nonexistent/dir/p.pred", &h, &err) == NULL);
    CHECK(err.kind == VET_E_IO);
}

int main(void) {
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);
    RUN(test_header_and_records);
    RUN(test_unwritable_path);
    unlink(path);
    CHECK_EXIT();
}
