// test_generate_job.c — one vet-generate run (lib/generate/job.h), the checks made before a
// model or a tokenizer is needed: the defaults, the input's kind and its header's tokenizer
// hash, and a missing tokenizer; each with its kind (the exit status of the program). The
// full run needs a SentencePiece model: tests/e2e/test_generate.sh.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "generate/job.h"
#include "io/mp.h"
#include "io/stream.h"

static char path[] = "/tmp/vet-test-job.XXXXXX";

// An empty stream of kind; with_tokenizer: its header names a tokenizer by hash.
static void write_stream(const char *kind, int with_tokenizer) {
    vet_err err;
    vet_writer *w = vet_writer_open(path, kind, "test_generate_job", &err);
    if (!w) fprintf(stderr, "%s\n", err.msg), abort();
    msgpack_packer *pk = vet_writer_packer(w);
    vet_writer_header_begin(w, with_tokenizer ? 1 : 0);
    if (with_tokenizer) {
        mp_key(pk, "tokenizer");
        msgpack_pack_map(pk, 1);
        mp_kv_str(pk, "sha256", "00ff");
    }
    vet_writer_header_end(w, &err);
    if (vet_writer_close(w, &err)) fprintf(stderr, "%s\n", err.msg), abort();
}

static void test_defaults(void) {
    vet_generate_opts o = vet_generate_defaults();
    CHECK(o.n_models == 0 && o.adapter == NULL && o.constrain == NULL && o.codes == NULL && o.tokenizer == NULL);
    CHECK_STR(o.input, "-");
    CHECK_STR(o.output, "-");
    CHECK(o.max_new == 100 && o.batch == 8 && o.seed == 0);
    CHECK(o.sampling.temperature == 0.0f && o.sampling.top_p == 1.0f && o.sampling.top_k == 0);  // greedy
    CHECK(o.progress == NULL);
}

static void test_refused_before_any_model(void) {
    vet_generate_opts o = vet_generate_defaults();
    vet_err err;
    o.input = path;
    CHECK(vet_generate_open(&o, &err) == NULL);  // no model
    CHECK(err.kind == VET_E_USAGE);

    o.models[o.n_models++] = "/nonexistent/model";
    o.input = "/nonexistent/notes.tok";
    CHECK(vet_generate_open(&o, &err) == NULL);
    CHECK(err.kind == VET_E_IO);

    o.input = path;
    write_stream("predictions", 1);
    CHECK(vet_generate_open(&o, &err) == NULL);
    CHECK(err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "a stream of kind 'predictions'");

    write_stream("tokens", 0);
    CHECK(vet_generate_open(&o, &err) == NULL);
    CHECK(err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, ": header lacks tokenizer.sha256 (not made by vet-tokenize?)");

    // The tokenizer defaults to the first model's directory: not there, an I/O error.
    write_stream("tokens", 1);
    CHECK(vet_generate_open(&o, &err) == NULL);
    CHECK(err.kind == VET_E_IO);
    CHECK_CONTAINS(err.msg, "/nonexistent/model: no such tokenizer");
    vet_generate_close(NULL);
}

int main(void) {
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);
    RUN(test_defaults);
    RUN(test_refused_before_any_model);
    unlink(path);
    CHECK_EXIT();
}
