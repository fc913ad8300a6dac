// fuzz_stream.c — the vet stream reader (lib/stream.h), vet-dump's JSON printer (mp_print_json)
// and the packed-row loader (lib/packed.h) on arbitrary input. The first byte picks the mode:
// even: the rest is the file as it is (fuzzes the zstd framing and the truncation checks);
// odd: the rest is msgpack that the harness compresses into a valid zstd frame first, so the
// fuzzer reaches the msgpack objects: header, records, trailer.
#include "fuzz_util.h"


#include "io/mp.h"
#include "train/packed_set.h"
#include "io/stream.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    devnull = fopen("/dev/null", "w");
    return devnull ? 0 : -1;
}

static void read_all(const char *path) {
    vet_err err = {0};
    vet_reader *r = vet_reader_open(path, NULL, &err);
    if (!r) { fz_check_msg(&err); return; }
    const msgpack_object *h = vet_reader_header(r);
    if (h->type != MSGPACK_OBJECT_MAP || !vet_reader_kind(r)) abort();   // open promises a header map
    mp_print_json(devnull, h);
    const msgpack_object *rec;
    int rc;
    uint64_t n = 0;
    while ((rc = vet_reader_next(r, &rec, &err)) == 1) {
        if (rec->type != MSGPACK_OBJECT_MAP) abort();
        n++;
        mp_print_json(devnull, rec);
        // The typed getters the programs use on records.
        const char *s; size_t len; int64_t i; double d; int32_t *ids; size_t k; char **strs;
        mp_get_str(rec, "id", &s, &len, &err);
        mp_get_int(rec, "tokens", &i, &err);
        mp_get_double(rec, "ms", &d, &err);
        if (mp_get_i32_array(rec, "prompt", &ids, &k, &err) == 0) free(ids);
        if (mp_get_str_array(rec, "codes", &strs, &k, &err) == 0) mp_free_strs(strs, k);
        char *dup = mp_get_strdup(rec, "note", &err);
        free(dup);
    }
    if (rc < 0) fz_check_msg(&err);
    if (rc == 0 && n != vet_reader_records(r)) abort();
    vet_reader_close(r);

    vet_packed_set set;
    memset(&set, 0, sizeof set);
    err.msg[0] = 0;
    if (vet_packed_load(&set, path, &err) == 0) {
        for (int row = 0; row < set.n_rows; row++)
            if (set.rows[row].n > set.max_len || set.rows[row].n_samples < 0) abort();
        if (set.n_rows > 0 && strlen(set.content_sha256) != 64) abort();  // every loaded set has its hash
        // vet-train's check of every row against a model (vocab 512, 64 positions) before step 1.
        err.msg[0] = 0;
        if (vet_packed_check_model(&set, 512, 64, &err) < 0) fz_check_msg(&err);
        // What training does next with the rows: a batch, which checks ids and starts.
        vet_batch b;
        int nb = set.n_rows < 4 ? set.n_rows : 4;
        err.msg[0] = 0;
        if (nb > 0 && vet_batch_from_rows(&b, set.rows, nb, 512, &err) == 0) vet_batch_free(&b);
        else if (nb > 0) fz_check_msg(&err);
        vet_packed_free(&set);
    } else {
        fz_check_msg(&err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char path[300];
    fz_path(path, sizeof path, "in.msgpack.zst");
    if (data[0] & 1) {
        fz_write_zstd(path, data + 1, size - 1);
    } else {
        fz_write(path, data + 1, size - 1);
    }
    read_all(path);
    return 0;
}
