// test_prompts.c — the notes vet-generate decodes (lib/generate/prompts.h): prompts from a
// `tokens` stream and from the samples of a `packed` stream's rows, what each prompt carries
// along (id, species, gold), and what is refused: another kind of stream, an empty prompt, a
// prompt outside its sample, a token outside the vocabulary (each naming the record), a prompt
// too long for a fixed KV cache (a usage error).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "generate/prompts.h"
#include "io/mp.h"
#include "io/stream.h"

static char path[] = "/tmp/vet-test-prompts.XXXXXX";

// A stream of kind at path; the records are packed by fill, one per call with i = 0, 1, ...
// until it returns 0.
static void write_stream(const char *kind, int (*fill)(msgpack_packer *pk, int i)) {
    vet_err err;
    vet_writer *w = vet_writer_open(path, kind, "test_prompts", &err);
    if (!w) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
    vet_writer_header_begin(w, 0);
    vet_writer_header_end(w, &err);
    for (int i = 0; fill(vet_writer_packer(w), i); i++) vet_writer_record_end(w, &err);
    if (vet_writer_close(w, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        abort();
    }
}

// --- tokens --------------------------------------------------------------------------------
static const int32_t PROMPTS[3][4] = {{1, 5, 6, 7}, {1, 9, 0, 0}, {1, 4, 4, 0}};
static const int LENS[3] = {4, 2, 3};
static int bad_token;     // record 2's second token becomes this when not 0
static int empty_second;  // record 2 gets an empty prompt

static int tokens_fill(msgpack_packer *pk, int i) {
    if (i == 3) return 0;
    char id[8];
    snprintf(id, sizeof id, "n%d", i);
    int n = empty_second && i == 1 ? 0 : LENS[i];
    int32_t p[4];
    memcpy(p, PROMPTS[i], sizeof p);
    if (bad_token && i == 1) p[1] = bad_token;
    char *codes[2] = {"111111", "222222"};
    msgpack_pack_map(pk, i == 2 ? 3 : 4);  // record 3 has no species
    mp_kv_str(pk, "id", id);
    if (i != 2) mp_kv_str(pk, "species", i == 0 ? "canine" : "bovine");
    mp_kv_str_array(pk, "codes", codes, (size_t)i % 3);
    mp_kv_i32_array(pk, "prompt", p, (size_t)n);
    return 1;
}

static vet_prompts *open_ok(void) {
    vet_err err;
    vet_prompts *p = vet_prompts_open(path, &err);
    if (!p) fprintf(stderr, "%s\n", err.msg);
    CHECK(p != NULL);
    return p;
}

static void test_tokens_stream(void) {
    bad_token = empty_second = 0;
    write_stream("tokens", tokens_fill);
    vet_prompts *ps = open_ok();
    if (!ps) return;
    vet_prompts_limit(ps, &(vet_prompt_limits){.vocab = 10});
    vet_err err;
    vet_prompt p;
    for (int i = 0; i < 3; i++) {
        CHECK(vet_prompts_next(ps, &p, &err) == 1);
        char id[8];
        snprintf(id, sizeof id, "n%d", i);
        CHECK_STR(p.id, id);
        CHECK_STR(p.species, i == 0 ? "canine" : i == 1 ? "bovine" : "");  // none: ""
        CHECK(p.n_gold == (size_t)i % 3);
        if (i == 2) CHECK_STR(p.gold[1], "222222");
        CHECK(p.n_prompt == LENS[i] && memcmp(p.prompt, PROMPTS[i], sizeof(int32_t) * (size_t)LENS[i]) == 0);
        vet_prompt_free_fields(&p);
    }
    CHECK(vet_prompts_next(ps, &p, &err) == 0);
    vet_prompts_close(ps);
}

static void test_tokens_refusals(void) {
    vet_err err;
    vet_prompt p;
    // A token outside the vocabulary names the note and the record.
    bad_token = 10, empty_second = 0;
    write_stream("tokens", tokens_fill);
    vet_prompts *ps = open_ok();
    if (!ps) return;
    vet_prompts_limit(ps, &(vet_prompt_limits){.vocab = 10});
    CHECK(vet_prompts_next(ps, &p, &err) == 1);
    vet_prompt_free_fields(&p);
    CHECK(vet_prompts_next(ps, &p, &err) == -1);
    CHECK(err.kind == VET_E_INPUT && p.id == NULL);
    CHECK_CONTAINS(err.msg, ": record 2: note n1: prompt token 10 is outside the model's vocabulary [0, 10)");
    vet_prompts_close(ps);

    // An empty prompt.
    bad_token = 0, empty_second = 1;
    write_stream("tokens", tokens_fill);
    if (!(ps = open_ok())) return;
    CHECK(vet_prompts_next(ps, &p, &err) == 1);
    vet_prompt_free_fields(&p);
    CHECK(vet_prompts_next(ps, &p, &err) == -1);
    CHECK_CONTAINS(err.msg, ": record 2: note n1 has an empty prompt");
    vet_prompts_close(ps);

    // Too long for a KV cache of 4 positions with 2 new tokens (4 + 2 - 1 = 5): a setting to
    // raise, not a bad input; 3 + 1 = 4 fits.
    empty_second = 0;
    write_stream("tokens", tokens_fill);
    if (!(ps = open_ok())) return;
    vet_prompts_limit(ps, &(vet_prompt_limits){.vocab = 10, .max_pos = 4, .max_new = 2});
    CHECK(vet_prompts_next(ps, &p, &err) == -1);
    CHECK(err.kind == VET_E_USAGE);
    CHECK_CONTAINS(err.msg, "note n0: a prompt of 4 tokens and --max-new 2 need 5 positions, but the device KV cache "
                            "holds --max-len 4 (raise --max-len)");
    vet_prompts_close(ps);
}

// --- packed --------------------------------------------------------------------------------
// Row 1: samples "a" (prompt 2 of 4 tokens at 0) and "b" (prompt 3 of 3 at 4); row 2: "c".
static int bad_fit;  // row 1's second prompt claims 4 tokens, past its sample's end

static int packed_fill(msgpack_packer *pk, int i) {
    if (i == 2) return 0;
    char *ab[2] = {"a", "b"}, *c[1] = {"c"}, *sp[2] = {"feline", "equine"}, *g[1] = {"333333"};
    int32_t tokens1[7] = {1, 5, 8, 8, 1, 6, 7}, tokens2[3] = {1, 2, 9};
    int32_t starts1[2] = {0, 4}, plens1[2] = {2, bad_fit ? 4 : 3}, starts2[1] = {0}, plens2[1] = {2};
    msgpack_pack_map(pk, 6);
    mp_kv_i32_array(pk, "tokens", i ? tokens2 : tokens1, i ? 3 : 7);
    mp_kv_i32_array(pk, "starts", i ? starts2 : starts1, i ? 1 : 2);
    mp_kv_i32_array(pk, "prompt_lens", i ? plens2 : plens1, i ? 1 : 2);
    mp_kv_str_array(pk, "ids", i ? c : ab, i ? 1 : 2);
    mp_kv_str_array(pk, "species", sp, i ? 1 : 2);
    mp_key(pk, "codes");
    msgpack_pack_array(pk, i ? 1 : 2);
    for (int k = 0; k < (i ? 1 : 2); k++) {  // sample k has k codes
        msgpack_pack_array(pk, (size_t)k);
        for (int j = 0; j < k; j++) mp_str(pk, g[0]);
    }
    return 1;
}

static void test_packed_stream(void) {
    bad_fit = 0;
    write_stream("packed", packed_fill);
    vet_prompts *ps = open_ok();
    if (!ps) return;
    vet_err err;
    vet_prompt p;
    const char *ids[3] = {"a", "b", "c"};
    const int32_t want[3][3] = {{1, 5}, {1, 6, 7}, {1, 2}};
    const int lens[3] = {2, 3, 2};
    for (int i = 0; i < 3; i++) {
        CHECK(vet_prompts_next(ps, &p, &err) == 1);
        CHECK_STR(p.id, ids[i]);
        CHECK_STR(p.species, i == 1 ? "equine" : "feline");
        CHECK(p.n_gold == (i == 1 ? 1u : 0u));
        CHECK(p.n_prompt == lens[i] && memcmp(p.prompt, want[i], sizeof(int32_t) * (size_t)lens[i]) == 0);
        vet_prompt_free_fields(&p);
    }
    CHECK(vet_prompts_next(ps, &p, &err) == 0);
    vet_prompts_close(ps);

    bad_fit = 1;
    write_stream("packed", packed_fill);
    if (!(ps = open_ok())) return;
    CHECK(vet_prompts_next(ps, &p, &err) == 1);
    vet_prompt_free_fields(&p);
    CHECK(vet_prompts_next(ps, &p, &err) == -1);
    CHECK_CONTAINS(err.msg, ": record 1: sample 1: prompt of 4 tokens at 4 does not fit its sample [4, 7)");
    vet_prompts_close(ps);
}

static int other_fill(msgpack_packer *pk, int i) {
    (void)pk, (void)i;
    return 0;
}

static void test_other_streams_refused(void) {
    write_stream("predictions", other_fill);
    vet_err err;
    CHECK(vet_prompts_open(path, &err) == NULL);
    CHECK(err.kind == VET_E_INPUT);
    CHECK_CONTAINS(err.msg, "a stream of kind 'predictions'; vet-generate reads 'tokens' (vet-tokenize) or 'packed'");
    CHECK(vet_prompts_open("/nonexistent/notes.tok", &err) == NULL);
    CHECK(err.kind == VET_E_IO);
    vet_prompts_close(NULL);
}

int main(void) {
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);
    RUN(test_tokens_stream);
    RUN(test_tokens_refusals);
    RUN(test_packed_stream);
    RUN(test_other_streams_refused);
    unlink(path);
    CHECK_EXIT();
}
