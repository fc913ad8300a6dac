// test_gguf_config.c — lib/io/gguf_config.h's rope scaling keys, read as llama.cpp reads them
// (llama-model.cpp load_hparams): the type is rope.scaling.type, "linear" when absent; the factor
// rope.scaling.factor, else the older rope.scale_linear, 0 meaning 1; type "none" never scales.
// vet runs plain rope, so a GGUF whose rope llama.cpp would scale is refused, and one it would not
// is read.
#include <unistd.h>

#include "check.h"
#include "io/gguf.h"
#include "io/gguf_config.h"
#include "io/gguf_write.h"

static char tmpdir[256];

// A header-only llama GGUF (config keys, no tensors: vet_gguf_config reads only the keys and the
// vocabulary size) with the rope keys given: a NULL type or a negative factor leaves that key out.
static const char *write_gguf(const char *name, const char *type, float factor, float scale_linear) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, name);
    vet_err err = {0};
    vet_gguf_writer *w = vet_gguf_writer_new(&err);
    int rc = vet_gguf_set_str(w, "general.architecture", "llama", &err);
    struct { const char *k; uint32_t v; } u[] = {
        {"llama.block_count", 1}, {"llama.context_length", 64}, {"llama.embedding_length", 32},
        {"llama.feed_forward_length", 64}, {"llama.attention.head_count", 4}, {"llama.attention.head_count_kv", 2},
        {"llama.vocab_size", 100},
    };
    for (size_t i = 0; !rc && i < sizeof u / sizeof u[0]; i++) rc = vet_gguf_set_u32(w, u[i].k, u[i].v, &err);
    if (!rc) rc = vet_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &err);
    if (!rc && type) rc = vet_gguf_set_str(w, "llama.rope.scaling.type", type, &err);
    if (!rc && factor >= 0) rc = vet_gguf_set_f32(w, "llama.rope.scaling.factor", factor, &err);
    if (!rc && scale_linear >= 0) rc = vet_gguf_set_f32(w, "llama.rope.scale_linear", scale_linear, &err);
    if (!rc) rc = vet_gguf_write(w, path, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    CHECK(rc == 0);
    vet_gguf_writer_free(w);
    return path;
}

// vet_gguf_config's result on the file; its message in msg.
static int config_of(const char *path, char *msg, size_t n) {
    vet_err err = {0};
    vet_gguf *g = vet_gguf_open(path, &err);
    vet_config c;
    int rc = g ? vet_gguf_config(&c, g, &err) : -1;
    snprintf(msg, n, "%s", err.msg);
    if (g) vet_gguf_close(g);
    return rc;
}

static void rope_scaling_as_llama_cpp(void) {
    char msg[1024];
    CHECK(config_of(write_gguf("plain", NULL, -1, -1), msg, sizeof msg) == 0);
    // a factor without a type: llama.cpp takes the type for linear and scales
    CHECK(config_of(write_gguf("factor4", NULL, 4, -1), msg, sizeof msg) == -1);
    CHECK_CONTAINS(msg, "llama.rope.scaling.factor 4: linear rope scaling is not supported (llama.cpp scales linearly");
    CHECK(config_of(write_gguf("scale_linear4", NULL, -1, 4), msg, sizeof msg) == -1);
    CHECK_CONTAINS(msg, "llama.rope.scale_linear 4: linear rope scaling is not supported");
    // the new key wins over the old one, as in llama.cpp
    CHECK(config_of(write_gguf("factor1-old4", NULL, 1, 4), msg, sizeof msg) == 0);
    CHECK(config_of(write_gguf("factor4-old1", NULL, 4, 1), msg, sizeof msg) == -1);
    // factors 0 and 1 do not scale
    CHECK(config_of(write_gguf("factor0", NULL, 0, -1), msg, sizeof msg) == 0);
    CHECK(config_of(write_gguf("factor1", NULL, 1, -1), msg, sizeof msg) == 0);
    // type none never scales, whatever the factors
    CHECK(config_of(write_gguf("none4", "none", 4, 4), msg, sizeof msg) == 0);
    CHECK(config_of(write_gguf("yarn", "yarn", 4, -1), msg, sizeof msg) == -1);
    CHECK_CONTAINS(msg, "llama.rope.scaling.type 'yarn': rope scaling is not supported");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/vet-test-gguf-config.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(rope_scaling_as_llama_cpp);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    CHECK_EXIT();
}
