// test_export.c — lib/export/export.h end to end in C: a model directory written by vet (and a
// LoRA adapter) exported as GGUF, read back with io/gguf.h: the llama.cpp keys, every tensor's
// name, type and dims, the Q/K rows in llama.cpp's order (checked against the permutation
// written out here, independently of export_model.c), F32 bytes equal to the merged weights,
// Q8_0 within its bound, tied embeddings without output.weight, 1-D tensors F32.
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "base/half.h"
#include "export/export.h"
#include "io/ggml_quant.h"
#include "io/gguf.h"
#include "io/gguf_config.h"
#include "io/hfdir.h"
#include "model/adapter.h"
#include "model/model_save.h"

static char tmpdir[256];
static char *path_of(const char *name) {
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

static vet_config shape(int tied) {
    vet_config c;
    vet_err err;
    if (vet_config_preset(&c, "tiny", &err)) { fprintf(stderr, "%s\n", err.msg); exit(1); }
    vet_config_set_vocab(&c, 64);
    c.dim = 32, c.hidden_dim = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8;
    c.tie_embeddings = tied;
    return c;
}

// HF row of GGUF row r of a Q/K weight with heads of hd rows: row h*hd + 2i + j holds HF row
// h*hd + j*hd/2 + i (llama.cpp's converter's permute()).
static int64_t hf_row(int64_t r, int hd) { return r / hd * hd + (r % hd % 2) * (hd / 2) + r % hd / 2; }

static const vet_gguf_tensor *tensor(vet_gguf *g, const char *name, uint32_t type, int64_t ne0, int64_t ne1) {
    const vet_gguf_tensor *t = vet_gguf_find_tensor(g, name);
    CHECK(t != NULL);
    if (!t) { fprintf(stderr, "no tensor %s\n", name); return NULL; }
    int nd = ne1 ? 2 : 1;
    if (t->type != type || t->n_dims != nd || t->ne[0] != ne0 || (ne1 && t->ne[1] != ne1)) {
        fprintf(stderr, "%s: type %u dims %d {%lld, %lld}\n", name, t->type, t->n_dims, (long long)t->ne[0],
                (long long)t->ne[1]);
        CHECK(0);
        return NULL;
    }
    return t;
}

static void llama_f32_with_adapter(void) {
    vet_err err = {0};
    vet_config c = shape(0);
    CHECK(vet_hf_init_dir(path_of("base"), &c, 5, VET_DT_F32, NULL, &err) == 0);
    vet_model m;
    CHECK(vet_model_load(&m, path_of("base"), &err) == 0);
    CHECK(vet_model_add_lora(&m, 4, 8.0f, 0.0f, 0, VET_LORA_ALL, 6, &err) == 0);
    for (size_t i = 0; i < m.n_lora; i++) m.lora_mem[i] = 0.05f * sinf((float)i);   // B non-zero too
    CHECK(vet_adapter_save(path_of("adapter"), &m, NULL, &err) == 0);
    vet_model_merge_lora(&m);
    vet_export_opts o = {path_of("base"), path_of("adapter"), path_of("a.gguf"), VET_GGML_F32};
    vet_export_result r;
    CHECK(vet_export_gguf(&o, &r, &err) == 0);
    if (err.msg[0]) fprintf(stderr, "%s\n", err.msg);
    CHECK(r.has_tokenizer == 0 && r.n_tensors == 2 + 2 * 9 + 1 && r.n_f16_fallback == 0);
    vet_gguf *g = vet_gguf_open(path_of("a.gguf"), &err);
    CHECK(g != NULL);
    if (!g) { fprintf(stderr, "%s\n", err.msg); vet_model_free(&m); return; }
    char *arch = vet_gguf_get_str(g, "general.architecture", &err);
    CHECK_STR(arch, "llama");
    free(arch);
    uint32_t u;
    float f;
    CHECK(vet_gguf_get_u32(g, "general.file_type", &u, &err) == 0 && u == 0);
    CHECK(vet_gguf_get_u32(g, "llama.block_count", &u, &err) == 0 && u == 2);
    CHECK(vet_gguf_get_u32(g, "llama.attention.head_count_kv", &u, &err) == 0 && u == 2);
    CHECK(vet_gguf_get_u32(g, "llama.rope.dimension_count", &u, &err) == 0 && u == 8);
    CHECK(vet_gguf_get_u32(g, "llama.vocab_size", &u, &err) == 0 && u == 64);
    CHECK(vet_gguf_get_f32(g, "llama.rope.freq_base", &f, &err) == 0 && f == c.rope_theta);
    CHECK(!vet_gguf_has(g, "tokenizer.ggml.model"));
    // K of layer 1, (16, 32) in HF: permuted rows, merged values, bit for bit
    const vet_gguf_tensor *t = tensor(g, "blk.1.attn_k.weight", VET_GGML_F32, 32, 16);
    const float *wk = m.w.wk + 16 * 32;
    int same = 1;
    for (int64_t row = 0; t && row < 16; row++)
        same &= memcmp(t->data + row * 32 * 4, wk + hf_row(row, 8) * 32, 32 * 4) == 0;
    CHECK(same);
    t = tensor(g, "blk.0.attn_q.weight", VET_GGML_F32, 32, 32);
    same = 1;
    for (int64_t row = 0; t && row < 32; row++) same &= memcmp(t->data + row * 128, m.w.wq + hf_row(row, 8) * 32, 128) == 0;
    CHECK(same);
    t = tensor(g, "blk.0.attn_v.weight", VET_GGML_F32, 32, 16);   // V is not permuted
    CHECK(t && memcmp(t->data, m.w.wv, 16 * 32 * 4) == 0);
    t = tensor(g, "blk.1.ffn_down.weight", VET_GGML_F32, 64, 32);
    CHECK(t && memcmp(t->data, m.w.wdown + 32 * 64, 32 * 64 * 4) == 0);
    CHECK(tensor(g, "output.weight", VET_GGML_F32, 32, 64) != NULL);
    CHECK(tensor(g, "blk.1.ffn_norm.weight", VET_GGML_F32, 32, 0) != NULL);
    vet_gguf_close(g);
    vet_model_free(&m);
}

static void tied_q8_0(void) {
    vet_err err = {0};
    vet_config c = shape(1);
    CHECK(vet_hf_init_dir(path_of("tied"), &c, 7, VET_DT_F32, NULL, &err) == 0);
    vet_model m;
    CHECK(vet_model_load(&m, path_of("tied"), &err) == 0);
    vet_export_opts o = {path_of("tied"), NULL, path_of("t.gguf"), VET_GGML_Q8_0};
    vet_export_result r;
    CHECK(vet_export_gguf(&o, &r, &err) == 0);
    vet_gguf *g = vet_gguf_open(path_of("t.gguf"), &err);
    CHECK(g != NULL);
    if (!g) { fprintf(stderr, "%s\n", err.msg); vet_model_free(&m); return; }
    uint32_t u;
    CHECK(vet_gguf_get_u32(g, "general.file_type", &u, &err) == 0 && u == 7);
    CHECK(vet_gguf_find_tensor(g, "output.weight") == NULL);
    CHECK(tensor(g, "output_norm.weight", VET_GGML_F32, 32, 0) != NULL);
    const vet_gguf_tensor *t = tensor(g, "token_embd.weight", VET_GGML_Q8_0, 32, 64);
    const vet_gguf_tensor *k = tensor(g, "blk.0.attn_k.weight", VET_GGML_Q8_0, 32, 16);
    int ok = 1;
    float y[32];
    for (int64_t row = 0; t && row < 64; row++) {   // within half a step of the block's scale
        vet_ggml_q8_0_dequant_row(y, t->data + row * 34, 32);
        const float *x = m.w.embed + row * 32;
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
        uint16_t h;
        memcpy(&h, t->data + row * 34, 2);
        float d = amax / 127, dh = vet_f16_to_f32(h);   // d/2, plus the f16 rounding of d times |q|
        for (int i = 0; i < 32; i++) ok &= fabsf(y[i] - x[i]) <= d / 2 + 127 * fabsf(d - dh) + 1e-7f;
    }
    for (int64_t row = 0; k && row < 16; row++) {   // permuted before quantizing: rows stay whole
        uint8_t want[34];
        CHECK(vet_ggml_q8_0_row(want, m.w.wk + hf_row(row, 8) * 32, 32) == 0);
        ok &= memcmp(k->data + row * 34, want, 34) == 0;
    }
    CHECK(ok);
    vet_gguf_close(g);
    vet_model_free(&m);
}

// llama3 rope scaling goes out as rope_freqs.weight (head_dim/2 F32 factors, first), computed
// as llama.cpp's converter does; read back, vet runs the factors (VET_ROPE_FACTORS) with the
// frequencies of the llama3 model it came from, and exports them again unchanged. Qwen2 with
// llama3 rope is refused by name (llama.cpp applies rope_freqs to llama only).
static void llama3_rope_freqs(void) {
    vet_err err = {0};
    vet_config c = shape(1);
    c.rope_type = VET_ROPE_LLAMA3, c.rope_factor = 8, c.rope_low_freq_factor = 1, c.rope_high_freq_factor = 4;
    c.rope_orig_max_pos = 64, c.rope_theta = 10000.0f;
    CHECK(vet_hf_init_dir(path_of("l3"), &c, 9, VET_DT_F32, NULL, &err) == 0);
    vet_export_opts o = {path_of("l3"), NULL, path_of("l3.gguf"), VET_GGML_F32};
    vet_export_result r;
    CHECK(vet_export_gguf(&o, &r, &err) == 0);
    if (err.msg[0]) fprintf(stderr, "%s\n", err.msg);
    vet_gguf *g = vet_gguf_open(path_of("l3.gguf"), &err);
    CHECK(g != NULL);
    if (!g) return;
    CHECK(vet_gguf_n_tensors(g) == 2 + 2 * 9 + 1 && !strcmp(vet_gguf_tensor_at(g, 0)->name, "rope_freqs.weight"));
    const vet_gguf_tensor *t = tensor(g, "rope_freqs.weight", VET_GGML_F32, 4, 0);
    float f[4] = {0};
    if (t) memcpy(f, t->data, sizeof f);
    // hd 8, theta 1e4: wavelengths 2pi x {1, 10, 100, 1000}; high band < 64/4, low band > 64/1
    double sm = (64 / (2 * M_PI * 10) - 1) / 3;
    CHECK(f[0] == 1.0f && f[2] == 8.0f && f[3] == 8.0f);
    CHECK_NEAR(f[1], 1 / ((1 - sm) / 8 + sm), 1e-6);
    vet_gguf_close(g);
    vet_config back;
    CHECK(vet_model_config_load(&back, path_of("l3.gguf"), &err) == 0);
    CHECK(back.rope_type == VET_ROPE_FACTORS && memcmp(back.rope_freq_factors, f, sizeof f) == 0);
    float want[4], got[4];
    vet_rope_inv_freq(&c, want);
    vet_rope_inv_freq(&back, got);
    for (int i = 0; i < 4; i++) CHECK_NEAR(got[i], want[i], 1e-6);
    o = (vet_export_opts){path_of("l3.gguf"), NULL, path_of("l3-again.gguf"), VET_GGML_F32};
    CHECK(vet_export_gguf(&o, &r, &err) == 0);   // a GGUF model in: the factors go out as they came
    g = vet_gguf_open(path_of("l3-again.gguf"), &err);
    t = g ? tensor(g, "rope_freqs.weight", VET_GGML_F32, 4, 0) : NULL;
    CHECK(t && memcmp(t->data, f, sizeof f) == 0);
    if (g) vet_gguf_close(g);
    c = shape(1);
    strcpy(c.arch, "qwen2"), c.qkv_bias = 1, c.rope_type = VET_ROPE_LLAMA3, c.rope_factor = 8;
    c.rope_low_freq_factor = 1, c.rope_high_freq_factor = 4, c.rope_orig_max_pos = 64;
    CHECK(vet_hf_init_dir(path_of("q3"), &c, 9, VET_DT_F32, NULL, &err) == 0);
    o = (vet_export_opts){path_of("q3"), NULL, path_of("q3.gguf"), VET_GGML_F32};
    CHECK(vet_export_gguf(&o, &r, &err) == -1);
    CHECK_CONTAINS(err.msg, "rope_scaling llama3 is not exported for qwen2");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/vet-test-export.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(llama_f32_with_adapter);
    RUN(tied_q8_0);
    RUN(llama3_rope_freqs);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {}
    CHECK_EXIT();
}
