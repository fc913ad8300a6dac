// test_export_vocab.c — the tokenizer accessors vet-export writes GGUF vocabularies from:
// data/bpe_merges.h (merges back in rank order, a pair listed twice counted once at the rank
// encoding uses) and data/spm.h's vet_spm_score / vet_spm_piece_type (types numbered as GGUF's
// token_type; scores in SentencePiece's order).
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "data/bpe.h"
#include "data/bpe_merges.h"
#include "data/spm.h"

static char tmpdir[256];

static const char *write_file(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
    return path;
}

static void bpe_merges_by_rank(void) {
    // "ab c" listed first, "a b" twice: ranks are 0 (ab c), 3 (a b, the later one), 2 (Ġ ab)
    const char *json =
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"abc\": 4,"
        " \"\\u0120\": 5, \"\\u0120ab\": 6}, \"merges\": [\"ab c\", \"a b\", \"\\u0120 ab\", [\"a\", \"b\"]]}}";
    vet_err err = {0};
    vet_bpe *b = vet_bpe_load(write_file("tokenizer.json", json), &err);
    CHECK(b != NULL);
    if (!b) { fprintf(stderr, "%s\n", err.msg); return; }
    int32_t *pairs = NULL;
    size_t n = 0;
    CHECK(vet_bpe_merge_list(b, &pairs, &n, &err) == 0);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(pairs[0] == 3 && pairs[1] == 2);   // ab c
        CHECK(pairs[2] == 5 && pairs[3] == 3);   // Ġ ab
        CHECK(pairs[4] == 0 && pairs[5] == 1);   // a b
        CHECK_STR(vet_bpe_id_to_piece(b, pairs[2]), "\xc4\xa0");
    }
    free(pairs);
    vet_bpe_free(b);
    // no merges at all: an empty list, not an error
    b = vet_bpe_load(write_file("t2.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                                          " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}"), &err);
    CHECK(b != NULL);
    if (!b) { fprintf(stderr, "%s\n", err.msg); return; }
    CHECK(vet_bpe_merge_list(b, &pairs, &n, &err) == 0 && n == 0 && pairs == NULL);
    vet_bpe_free(b);
}

static void spm_scores_and_types(void) {
    char cmd[800];
    snprintf(cmd, sizeof cmd, "bash tests/fixtures/tokenize/make_model.sh '%s/spm' >/dev/null 2>&1", tmpdir);
    if (access("tests/fixtures/tokenize/make_model.sh", R_OK) != 0 || system(cmd) != 0)
        SKIP("cannot train a SentencePiece model here (spm_train, run from the repository top)");
    char path[600];
    snprintf(path, sizeof path, "%s/spm", tmpdir);
    vet_err err = {0};
    vet_spm *s = vet_spm_load(path, &err);
    CHECK(s != NULL);
    if (!s) { fprintf(stderr, "%s\n", err.msg); return; }
    CHECK(vet_spm_piece_type(s, 0) == VET_SPM_UNKNOWN);   // <unk>
    CHECK(vet_spm_piece_type(s, 1) == VET_SPM_CONTROL && vet_spm_piece_type(s, 2) == VET_SPM_CONTROL);
    int nl = vet_spm_piece_to_id(s, "<0x0A>");           // byte fallback pieces
    CHECK(nl > 2 && vet_spm_piece_type(s, nl) == VET_SPM_BYTE);
    int n = vet_spm_vocab_size(s), normal = 0;
    for (int i = 0; i < n; i++) normal += vet_spm_piece_type(s, i) == VET_SPM_NORMAL;
    CHECK(normal > 0 && normal < n);
    // BPE pieces: the score is minus the merge order, so it falls as ids rise
    int last = -1, ordered = 1;
    for (int i = 0; i < n; i++) {
        if (vet_spm_piece_type(s, i) != VET_SPM_NORMAL) continue;
        if (last >= 0 && vet_spm_score(s, i) > vet_spm_score(s, last)) ordered = 0;
        last = i;
    }
    CHECK(ordered);
    CHECK(vet_spm_piece_type(s, -1) == 0 && vet_spm_piece_type(s, n) == 0 && vet_spm_score(s, n) == 0.0f);
    vet_spm_free(s);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/vet-test-vocab.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(bpe_merges_by_rank);
    RUN(spm_scores_and_types);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {}
    CHECK_EXIT();
}
