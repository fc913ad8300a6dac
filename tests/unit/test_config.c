// test_config.c — config.json parsing (LLaMA-2, Llama-3.1, Qwen2.5, transformers 5 form),
// refusals, presets and parameter counts; then the model-directory helpers (hfdir).
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/config.h"
#include "base/half.h"
#include "io/hfdir.h"
#include "io/safetensors.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static const char *write_json(const char *text) {
    const char *p = tmp_path("config.json");
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

// Loads text as config.json; expects failure with `want` in the message.
static void expect_refused(const char *text, const char *want) {
    vet_config c;
    vet_err err = {0};
    CHECK(vet_config_load(&c, write_json(text), &err) == -1);
    CHECK_CONTAINS(err.msg, want);
}

// Real configs, as published (Llama-2-7b-hf, Llama-3.1-8B, Qwen2.5-7B-Instruct).
static const char *LLAMA2 =
    "{\"_name_or_path\": \"meta-llama/Llama-2-7b-hf\", \"architectures\": [\"LlamaForCausalLM\"], \"bos_token_id\": 1,"
    " \"eos_token_id\": 2, \"hidden_act\": \"silu\", \"hidden_size\": 4096, \"initializer_range\": 0.02,"
    " \"intermediate_size\": 11008, \"max_position_embeddings\": 4096, \"model_type\": \"llama\","
    " \"num_attention_heads\": 32, \"num_hidden_layers\": 32, \"num_key_value_heads\": 32, \"pretraining_tp\": 1,"
    " \"rms_norm_eps\": 1e-05, \"rope_scaling\": null, \"tie_word_embeddings\": false, \"torch_dtype\": \"float16\","
    " \"transformers_version\": \"4.31.0.dev0\", \"use_cache\": true, \"vocab_size\": 32000}";
static const char *LLAMA31 =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": 0.0,"
    " \"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, 128009], \"hidden_act\": \"silu\", \"hidden_size\": 4096,"
    " \"initializer_range\": 0.02, \"intermediate_size\": 14336, \"max_position_embeddings\": 131072,"
    " \"mlp_bias\": false, \"model_type\": \"llama\", \"num_attention_heads\": 32, \"num_hidden_layers\": 32,"
    " \"num_key_value_heads\": 8, \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05, \"rope_scaling\": {\"factor\": 8.0,"
    " \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192,"
    " \"rope_type\": \"llama3\"}, \"rope_theta\": 500000.0, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\","
    " \"transformers_version\": \"4.43.0.dev0\", \"use_cache\": true, \"vocab_size\": 128256}";
static const char *QWEN25 =
    "{\"architectures\": [\"Qwen2ForCausalLM\"], \"attention_dropout\": 0.0, \"bos_token_id\": 151643,"
    " \"eos_token_id\": 151645, \"hidden_act\": \"silu\", \"hidden_size\": 3584, \"initializer_range\": 0.02,"
    " \"intermediate_size\": 18944, \"max_position_embeddings\": 32768, \"max_window_layers\": 28, \"model_type\": \"qwen2\","
    " \"num_attention_heads\": 28, \"num_hidden_layers\": 28, \"num_key_value_heads\": 4, \"rms_norm_eps\": 1e-06,"
    " \"rope_theta\": 1000000.0, \"sliding_window\": 131072, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\","
    " \"transformers_version\": \"4.43.1\", \"use_cache\": true, \"use_sliding_window\": false, \"vocab_size\": 152064}";

static void test_load_llama2(void) {
    vet_config c;
    vet_err err = {0};
    CHECK(vet_config_load(&c, write_json(LLAMA2), &err) == 0);
    CHECK_STR(c.arch, "llama");
    CHECK(c.dim == 4096 && c.hidden_dim == 11008 && c.n_layers == 32 && c.n_heads == 32 && c.n_kv_heads == 32);
    CHECK(c.head_dim == 128 && c.vocab_size == 32000 && c.max_pos == 4096);
    CHECK(c.rms_eps == 1e-5f && c.rope_theta == 10000.0f && c.rope_type == VET_ROPE_DEFAULT);
    CHECK(!c.tie_embeddings && !c.qkv_bias && !c.mlp_bias);
    CHECK(c.bos_id == 1 && c.eos_id == 2 && c.n_eos == 1 && c.pad_id == -1);
    CHECK_STR(c.torch_dtype, "float16");
    CHECK(vet_config_n_params(&c) == 6738415616LL);
    // A directory holding config.json works too.
    CHECK(vet_config_load(&c, tmpdir, &err) == 0 && c.dim == 4096);
}

static void test_load_llama31_rope_scaling(void) {
    vet_config c;
    vet_err err = {0};
    CHECK(vet_config_load(&c, write_json(LLAMA31), &err) == 0);
    CHECK(c.n_kv_heads == 8 && c.head_dim == 128 && c.vocab_size == 128256);
    CHECK(c.rope_theta == 500000.0f && c.rope_type == VET_ROPE_LLAMA3);
    CHECK(c.rope_factor == 8.0f && c.rope_low_freq_factor == 1.0f && c.rope_high_freq_factor == 4.0f);
    CHECK(c.rope_orig_max_pos == 8192);
    CHECK(c.bos_id == 128000 && c.eos_id == 128001 && c.n_eos == 3 && c.eos_ids[2] == 128009);
    CHECK_STR(c.torch_dtype, "bfloat16");
    CHECK(vet_config_n_params(&c) == 8030261248LL);
    // The older spelling "type" instead of "rope_type".
    const char *old = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 160,"
                      " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 100, \"rope_theta\": 5e5,"
                      " \"rope_scaling\": {\"type\": \"llama3\", \"factor\": 32, \"low_freq_factor\": 1,"
                      " \"high_freq_factor\": 4, \"original_max_position_embeddings\": 8192}}";
    CHECK(vet_config_load(&c, write_json(old), &err) == 0);
    CHECK(c.rope_type == VET_ROPE_LLAMA3 && c.rope_factor == 32.0f && c.rope_theta == 500000.0f);
    CHECK(c.n_kv_heads == 4 && c.head_dim == 16 && c.rms_eps == 1e-6f && c.max_pos == 2048);   // transformers defaults
    CHECK(c.bos_id == -1 && c.eos_id == -1 && c.n_eos == 0);
}

// transformers 5 writes rope_parameters (with rope_theta inside) and "dtype".
static void test_load_rope_parameters(void) {
    vet_config c;
    vet_err err = {0};
    const char *v5 = "{\"architectures\": [\"LlamaForCausalLM\"], \"dtype\": \"bfloat16\", \"head_dim\": 16,"
                     " \"hidden_size\": 64, \"intermediate_size\": 160, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
                     " \"num_key_value_heads\": 2, \"vocab_size\": 300, \"rope_parameters\": {\"factor\": 8.0,"
                     " \"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 64,"
                     " \"rope_theta\": 500000.0, \"rope_type\": \"llama3\"}, \"tie_word_embeddings\": true}";
    CHECK(vet_config_load(&c, write_json(v5), &err) == 0);
    CHECK(c.rope_type == VET_ROPE_LLAMA3 && c.rope_theta == 500000.0f && c.rope_orig_max_pos == 64);
    CHECK(c.tie_embeddings == 1 && c.n_kv_heads == 2);
    CHECK_STR(c.torch_dtype, "bfloat16");
    const char *def = "{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"intermediate_size\": 160, \"num_hidden_layers\": 2,"
                      " \"num_attention_heads\": 4, \"vocab_size\": 300, \"rope_parameters\": {\"rope_theta\": 1e6,"
                      " \"rope_type\": \"default\"}, \"rope_theta\": 3.0}";
    CHECK(vet_config_load(&c, write_json(def), &err) == 0);
    CHECK_STR(c.arch, "qwen2");
    CHECK(c.rope_theta == 1e6f && c.rope_type == VET_ROPE_DEFAULT && c.qkv_bias == 1 && c.max_pos == 32768);
}

static void test_load_qwen25(void) {
    vet_config c;
    vet_err err = {0};
    CHECK(vet_config_load(&c, write_json(QWEN25), &err) == 0);
    CHECK_STR(c.arch, "qwen2");
    CHECK(c.dim == 3584 && c.hidden_dim == 18944 && c.n_layers == 28 && c.n_heads == 28 && c.n_kv_heads == 4);
    CHECK(c.head_dim == 128 && c.vocab_size == 152064 && c.max_pos == 32768);
    CHECK(c.rms_eps == 1e-6f && c.rope_theta == 1e6f && c.qkv_bias == 1 && !c.tie_embeddings);
    CHECK(c.bos_id == 151643 && c.eos_id == 151645);
    CHECK(vet_config_n_params(&c) == 7615616512LL);
}

// An early-2023 Alpaca/LLaMA-1 conversion: "LLaMAForCausalLM", max_sequence_length, pad -1.
static void test_load_alpaca_era(void) {
    vet_config c;
    vet_err err = {0};
    const char *old = "{\"architectures\": [\"LLaMAForCausalLM\"], \"bos_token_id\": 0, \"eos_token_id\": 1,"
                      " \"hidden_act\": \"silu\", \"hidden_size\": 4096, \"intermediate_size\": 11008,"
                      " \"initializer_range\": 0.02, \"max_sequence_length\": 2048, \"model_type\": \"llama\","
                      " \"num_attention_heads\": 32, \"num_hidden_layers\": 32, \"pad_token_id\": -1,"
                      " \"rms_norm_eps\": 1e-06, \"torch_dtype\": \"float16\", \"vocab_size\": 32000}";
    CHECK(vet_config_load(&c, write_json(old), &err) == 0);
    CHECK_STR(c.arch, "llama");
    CHECK(c.max_pos == 2048 && c.pad_id == -1 && c.bos_id == 0 && c.rms_eps == 1e-6f);
}

#define BASE "\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 160, " \
             "\"num_hidden_layers\": 2, \"vocab_size\": 100"

static void test_refusals(void) {
    expect_refused("{" BASE ", \"num_attention_heads\": 4, \"mlp_bias\": true}", "mlp_bias true is not supported");
    expect_refused("{" BASE ", \"num_attention_heads\": 4, \"attention_bias\": true}", "attention_bias true");
    expect_refused("{" BASE ", \"num_attention_heads\": 4, \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}",
                   "rope scaling 'yarn' is not supported");
    expect_refused("{" BASE ", \"num_attention_heads\": 4, \"rope_scaling\": {\"rope_type\": \"llama3\"}}",
                   "llama3 rope scaling needs");
    expect_refused("{" BASE ", \"num_attention_heads\": 5}", "hidden_size 64 is not a multiple of num_attention_heads 5");
    expect_refused("{" BASE ", \"num_attention_heads\": 4, \"num_key_value_heads\": 3}",
                   "num_attention_heads 4 is not a multiple of num_key_value_heads 3");
    expect_refused("{" BASE ", \"num_attention_heads\": 0}", "must be positive");
    expect_refused("{" BASE ", \"num_attention_heads\": 4, \"hidden_act\": \"gelu\"}", "hidden_act 'gelu'");
    expect_refused("{" BASE ", \"num_attention_heads\": 4, \"use_sliding_window\": true}", "use_sliding_window");
    expect_refused("{" BASE ", \"num_attention_heads\": 4, \"bos_token_id\": 100}", "bos_token_id 100 is outside");
    expect_refused("{" BASE ", \"num_attention_heads\": 4, \"torch_dtype\": \"float64\"}", "dtype 'float64'");
    expect_refused("{" BASE ", \"num_attention_heads\": 4, \"head_dim\": 15}", "head_dim 15 is odd");
    expect_refused("{" BASE ", \"num_attention_heads\": \"4\"}", "\"num_attention_heads\" is not an integer");
    expect_refused("{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 64}",
                   "architecture 'MistralForCausalLM' is not supported");
    expect_refused("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64}", "no \"intermediate_size\"");
    expect_refused("{\"architectures\": [\"LlamaForCausalLM\"],\n \"hidden_size\": 64,,}", "config.json:2: not valid JSON");
    expect_refused("[1]", "not a JSON object");
    vet_config c;
    vet_err err = {0};
    CHECK(vet_config_load(&c, tmp_path("nope/config.json"), &err) == -1);
    CHECK_CONTAINS(err.msg, "nope/config.json: cannot open config: No such file");
}

static void test_presets(void) {
    vet_config c;
    vet_err err = {0};
    const char *names[] = {"tiny", "small", "llama-7b", "llama3-8b", "qwen2.5-7b"};
    for (int i = 0; i < 5; i++) {
        CHECK(vet_config_preset(&c, names[i], &err) == 0);
        CHECK(vet_config_validate(&c, &err) == 0);
        CHECK_CONTAINS(vet_config_preset_names(), names[i]);
    }
    CHECK(vet_config_preset(&c, "llama-7b", &err) == 0);
    CHECK(vet_config_n_params(&c) == 6738415616LL);
    CHECK(vet_config_weight_bytes(&c, 2) == 2 * 6738415616ULL);
    CHECK(vet_config_preset(&c, "llama3-8b", &err) == 0);
    CHECK(vet_config_n_params(&c) == 8030261248LL && c.rope_type == VET_ROPE_LLAMA3 && c.rope_orig_max_pos == 8192);
    CHECK(vet_config_preset(&c, "qwen2.5-7b", &err) == 0);
    CHECK(vet_config_n_params(&c) == 7615616512LL && c.qkv_bias && c.rms_eps == 1e-6f && c.rope_theta == 1e6f);
    CHECK(vet_config_preset(&c, "tiny", &err) == 0);
    CHECK(c.dim == 128 && c.n_layers == 4 && c.n_heads == 4 && c.n_kv_heads == 2 && c.head_dim == 32 && c.vocab_size == 512);
    CHECK(vet_config_n_params(&c) < 2000000);
    vet_config_set_vocab(&c, 2000);
    CHECK(c.vocab_size == 2000 && c.eos_id == 2 && vet_config_validate(&c, &err) == 0);
    CHECK(vet_config_preset(&c, "llama3-8b", &err) == 0);
    vet_config_set_vocab(&c, 1000);   // the preset's special ids do not exist any more
    CHECK(c.bos_id == -1 && c.eos_id == -1 && c.n_eos == 0 && vet_config_validate(&c, &err) == 0);
    CHECK(vet_config_preset(&c, "gpt2", &err) == -1);
    CHECK_CONTAINS(err.msg, "no model preset 'gpt2' (presets: tiny,");
}

static int same_config(const vet_config *a, const vet_config *b) {
    int same = strcmp(a->arch, b->arch) == 0 && a->dim == b->dim && a->hidden_dim == b->hidden_dim &&
               a->n_layers == b->n_layers && a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads &&
               a->head_dim == b->head_dim && a->vocab_size == b->vocab_size && a->max_pos == b->max_pos &&
               a->rms_eps == b->rms_eps && a->rope_theta == b->rope_theta && a->rope_type == b->rope_type &&
               a->tie_embeddings == b->tie_embeddings && a->qkv_bias == b->qkv_bias && a->bos_id == b->bos_id &&
               a->eos_id == b->eos_id && a->pad_id == b->pad_id && a->n_eos == b->n_eos &&
               strcmp(a->torch_dtype, b->torch_dtype) == 0;
    for (int i = 0; same && i < a->n_eos; i++) same = a->eos_ids[i] == b->eos_ids[i];
    if (same && a->rope_type == VET_ROPE_LLAMA3)
        same = a->rope_factor == b->rope_factor && a->rope_low_freq_factor == b->rope_low_freq_factor &&
               a->rope_high_freq_factor == b->rope_high_freq_factor && a->rope_orig_max_pos == b->rope_orig_max_pos;
    return same;
}

static void test_save_load_round_trip(void) {
    const char *names[] = {"tiny", "small", "llama-7b", "llama3-8b", "qwen2.5-7b"};
    vet_err err = {0};
    for (int i = 0; i < 5; i++) {
        vet_config a, b;
        CHECK(vet_config_preset(&a, names[i], &err) == 0);
        if (i == 2) a.pad_id = 0, a.tie_embeddings = 1;
        if (i == 3) a.n_eos = 3, a.eos_ids[1] = 128008, a.eos_ids[2] = 128009;
        const char *p = tmp_path("saved.json");
        CHECK(vet_config_save(&a, p, &err) == 0);
        CHECK(vet_config_load(&b, p, &err) == 0);
        CHECK(same_config(&a, &b));
        if (!same_config(&a, &b)) fprintf(stderr, "round trip of %s differs\n", names[i]);
    }
    vet_config a;
    CHECK(vet_config_preset(&a, "tiny", &err) == 0);
    a.rms_eps = 1e-5f;
    CHECK(vet_config_save(&a, tmp_path("saved.json"), &err) == 0);
    FILE *f = fopen(tmp_path("saved.json"), "r");
    char text[4096] = {0};
    CHECK(fread(text, 1, sizeof text - 1, f) > 0);
    fclose(f);
    // The shortest decimal, not 9.99999975e-06 (jansson writes the exponent as e-5 or e-05).
    CHECK(strstr(text, "\"rms_norm_eps\": 1e-05") || strstr(text, "\"rms_norm_eps\": 1e-5,"));
    CHECK_CONTAINS(text, "\"architectures\": [\n    \"LlamaForCausalLM\"\n  ]");
    // A GGUF's per-frequency rope factors: valid when each is finite and > 0, never saved
    // (config.json has no form for them).
    vet_config fa = a;
    fa.rope_type = VET_ROPE_FACTORS;
    for (int i = 0; i < fa.head_dim / 2; i++) fa.rope_freq_factors[i] = 1.0f + (float)i;
    CHECK(vet_config_validate(&fa, &err) == 0);
    CHECK(vet_config_save(&fa, tmp_path("factors.json"), &err) == -1);
    CHECK_CONTAINS(err.msg, "rope_freqs.weight (per-frequency factors) has no config.json form");
    CHECK(access(tmp_path("factors.json"), F_OK) != 0);
    fa.rope_freq_factors[1] = 0.0f;
    CHECK(vet_config_validate(&fa, &err) == -1);
    CHECK_CONTAINS(err.msg, "rope frequency factor 1 is 0");
    fa.rope_freq_factors[1] = NAN;
    CHECK(vet_config_validate(&fa, &err) == -1);
    a.n_heads = 3;
    CHECK(vet_config_save(&a, tmp_path("bad.json"), &err) == -1);
    CHECK(access(tmp_path("bad.json"), F_OK) != 0);
    CHECK(vet_config_save(&a, tmp_path("no/dir/x.json"), &err) == -1);
}

// eos_token_id lists: every id kept up to VET_MAX_EOS and saved back; a longer list is refused,
// never cut (generation would run past the ids dropped, and a saved model lose them).
static void test_eos_lists(void) {
    char text[1024], ids[512] = "";
    size_t k = 0;
    for (int i = 0; i < VET_MAX_EOS; i++) k += (size_t)snprintf(ids + k, sizeof ids - k, "%s%d", i ? ", " : "", 2 + i);
    const char *head = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 160,"
                       " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 100, \"eos_token_id\": ";
    snprintf(text, sizeof text, "%s[%s]}", head, ids);
    vet_config a, b;
    vet_err err = {0};
    CHECK(vet_config_load(&a, write_json(text), &err) == 0);
    CHECK(a.n_eos == VET_MAX_EOS && a.eos_id == 2 && a.eos_ids[VET_MAX_EOS - 1] == 2 + VET_MAX_EOS - 1);
    CHECK(vet_config_save(&a, tmp_path("eos.json"), &err) == 0);
    CHECK(vet_config_load(&b, tmp_path("eos.json"), &err) == 0);
    CHECK(same_config(&a, &b));
    // -1 means none, in a list too
    snprintf(text, sizeof text, "%s[-1, %s]}", head, ids);
    CHECK(vet_config_load(&a, write_json(text), &err) == 0 && a.n_eos == VET_MAX_EOS);
    snprintf(text, sizeof text, "%s[%s, 90]}", head, ids);
    expect_refused(text, "\"eos_token_id\" lists more ids than the 16 vet keeps");
}

// ---------------------------------------------------------------------------------------
// hfdir

static void test_hf_names(void) {
    char buf[96];
    CHECK_STR(vet_hf_name(buf, sizeof buf, 3, "self_attn.q_proj.weight"), "model.layers.3.self_attn.q_proj.weight");
    CHECK_STR(vet_hf_name(buf, sizeof buf, -1, "model.norm.weight"), "model.norm.weight");
    vet_config c;
    vet_err err = {0};
    CHECK(vet_config_preset(&c, "qwen2.5-7b", &err) == 0);
    int n = vet_hf_tensors(&c, NULL, 0);
    CHECK(n == 1 + 28 * 12 + 2);   // 9 weights + 3 biases per layer
    vet_hf_tensor *list = malloc((size_t)n * sizeof *list);
    CHECK(vet_hf_tensors(&c, list, n) == n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += list[i].ndim == 1 ? list[i].shape[0] : list[i].shape[0] * list[i].shape[1];
    CHECK(total == vet_config_n_params(&c));
    CHECK_STR(list[2].name, "model.layers.0.self_attn.q_proj.weight");
    CHECK(list[2].shape[0] == 3584 && list[2].shape[1] == 3584);
    CHECK_STR(list[5].name, "model.layers.0.self_attn.k_proj.bias");
    CHECK(list[5].shape[0] == 512 && list[5].init == VET_INIT_ZEROS);
    CHECK_STR(list[n - 1].name, "lm_head.weight");
    free(list);
    CHECK(vet_config_preset(&c, "tiny", &err) == 0);
    c.tie_embeddings = 1;
    CHECK(vet_hf_tensors(&c, NULL, 0) == 1 + 4 * 9 + 1);
}

static void test_hf_init_dir(void) {
    vet_config c;
    vet_err err = {0};
    CHECK(vet_config_preset(&c, "tiny", &err) == 0);
    c.pad_id = 0;
    char dir[300], dir2[300];
    snprintf(dir, sizeof dir, "%s/init/a", tmpdir);
    snprintf(dir2, sizeof dir2, "%s/init/b", tmpdir);
    const char *tok = write_json("not really a tokenizer");
    CHECK(vet_hf_init_dir(dir, &c, 42, VET_DT_BF16, tok, &err) == 0);
    if (err.msg[0]) fprintf(stderr, "%s\n", err.msg);
    CHECK(vet_hf_init_dir(dir2, &c, 42, VET_DT_F32, NULL, &err) == 0);

    vet_config l;
    CHECK(vet_config_load(&l, dir, &err) == 0);
    CHECK_STR(l.torch_dtype, "bfloat16");
    CHECK(l.dim == 128 && l.pad_id == 0);
    vet_tensors *t = vet_tensors_open_dir(dir, &err), *t2 = vet_tensors_open_dir(dir2, &err);
    CHECK(t && t2);
    if (!t || !t2) return;
    CHECK(vet_hf_check_tensors(&l, t, dir, &err) == 0);
    CHECK(vet_tensors_count(t) == (size_t)vet_hf_tensors(&c, NULL, 0));
    char p[600];
    // The tokenizer ships under its kind's name: a file named *.json is a tokenizer.json.
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    CHECK(access(p, F_OK) == 0);
    snprintf(p, sizeof p, "%s/tokenizer.model", dir);
    CHECK(access(p, F_OK) != 0);

    // Statistics of one weight: mean ~0, std ~0.02; norms are 1; pad row of the embedding is 0.
    const vet_tensor_ref *q = vet_tensors_find(t2, "model.layers.1.mlp.up_proj.weight");
    int64_t s[2] = {384, 128};
    float *w = malloc(384 * 128 * sizeof(float)), *w16 = malloc(384 * 128 * sizeof(float));
    CHECK(q && vet_tensor_read_f32(q, 2, s, w, &err) == 0);
    double sum = 0, sq = 0;
    for (int i = 0; i < 384 * 128; i++) sum += w[i], sq += (double)w[i] * w[i];
    double mean = sum / (384 * 128), std = sqrt(sq / (384 * 128) - mean * mean);
    CHECK(fabs(mean) < 1e-3 && fabs(std - 0.02) < 1e-3);
    // Same seed: the bf16 file holds the fp32 file's values rounded.
    const vet_tensor_ref *q16 = vet_tensors_find(t, "model.layers.1.mlp.up_proj.weight");
    CHECK(q16 && q16->dtype == VET_DT_BF16 && vet_tensor_read_f32(q16, 2, s, w16, &err) == 0);
    int same = 1;
    for (int i = 0; i < 384 * 128; i++) same &= w16[i] == vet_bf16_to_f32(vet_f32_to_bf16(w[i]));
    CHECK(same);
    // Different tensors get different streams.
    const vet_tensor_ref *g = vet_tensors_find(t2, "model.layers.1.mlp.gate_proj.weight");
    CHECK(g && memcmp(g->data, q->data, 64) != 0);
    float norm[128], emb[4 * 128];
    int64_t s1[1] = {128}, se[2] = {512, 128};
    CHECK(vet_tensor_read_f32(vet_tensors_find(t2, "model.norm.weight"), 1, s1, norm, &err) == 0);
    CHECK(norm[0] == 1.0f && norm[127] == 1.0f);
    float *e = malloc(512 * 128 * sizeof(float));
    CHECK(vet_tensor_read_f32(vet_tensors_find(t2, "model.embed_tokens.weight"), 2, se, e, &err) == 0);
    memcpy(emb, e, sizeof emb);
    CHECK(emb[0] == 0.0f && emb[127] == 0.0f && emb[128] != 0.0f);
    free(e);
    free(w);
    free(w16);
    vet_tensors_close(t);
    vet_tensors_close(t2);

    // Deterministic: a second init with the same seed gives the same bytes; another seed does not.
    char dir3[300];
    snprintf(dir3, sizeof dir3, "%s/init/c", tmpdir);
    CHECK(vet_hf_init_dir(dir3, &c, 42, VET_DT_F32, NULL, &err) == 0);
    CHECK(vet_hf_init_dir(dir, &c, 7, VET_DT_F32, NULL, &err) == 0);   // overwrites a
    t = vet_tensors_open_dir(dir2, &err);
    t2 = vet_tensors_open_dir(dir3, &err);
    vet_tensors *t3 = vet_tensors_open_dir(dir, &err);
    const vet_tensor_ref *x = vet_tensors_find(t, "lm_head.weight"), *y = vet_tensors_find(t2, "lm_head.weight"),
                         *z = vet_tensors_find(t3, "lm_head.weight");
    CHECK(x && y && z && memcmp(x->data, y->data, x->nbytes) == 0 && memcmp(x->data, z->data, x->nbytes) != 0);
    vet_tensors_close(t);
    vet_tensors_close(t2);
    vet_tensors_close(t3);
}

static void test_hf_check_tensors(void) {
    vet_config c;
    vet_err err = {0};
    CHECK(vet_config_preset(&c, "tiny", &err) == 0);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/init/a", tmpdir);
    vet_tensors *t = vet_tensors_open_dir(dir, &err);
    CHECK(t != NULL);
    if (!t) return;
    c.hidden_dim = 256;
    CHECK(vet_hf_check_tensors(&c, t, dir, &err) == -1);
    CHECK_CONTAINS(err.msg, "tensor 'model.layers.0.mlp.gate_proj.weight': shape [384, 128], but config.json says [256, 128]");
    c.hidden_dim = 384;
    c.n_layers = 5;
    CHECK(vet_hf_check_tensors(&c, t, dir, &err) == -1);
    CHECK_CONTAINS(err.msg, "/init/a: tensor 'model.layers.4.input_layernorm.weight' is missing");
    c.n_layers = 3;
    CHECK(vet_hf_check_tensors(&c, t, dir, &err) == -1);
    CHECK_CONTAINS(err.msg, "tensor 'model.layers.3.");
    CHECK_CONTAINS(err.msg, "is not part of the llama model config.json describes (num_hidden_layers is 3)");
    // a tied config: the file's lm_head.weight is then the one tensor too many
    c.n_layers = 4;
    c.tie_embeddings = 1;
    CHECK(vet_hf_check_tensors(&c, t, dir, &err) == -1);
    CHECK_CONTAINS(err.msg, "tensor 'lm_head.weight' is not part of the llama model config.json describes: vet");
    // ... which the weights decide, as transformers does
    CHECK(vet_hf_tie_from_weights(&c, t, dir, &err) == 0);
    CHECK(c.tie_embeddings == 0 && vet_hf_check_tensors(&c, t, dir, &err) == 0);
    vet_tensors_close(t);
}

static void test_hf_refusals(void) {
    vet_config c;
    vet_err err = {0};
    CHECK(vet_config_preset(&c, "tiny", &err) == 0);
    // Far beyond any machine's memory: refused before allocating, with the numbers.
    c.vocab_size = 1 << 24, c.dim = 1 << 16, c.n_heads = 512, c.head_dim = 128, c.n_kv_heads = 512;
    CHECK(vet_hf_init_dir(tmp_path("huge"), &c, 1, VET_DT_BF16, NULL, &err) == -1);
    CHECK_CONTAINS(err.msg, "GB of memory, but only");
    CHECK(access(tmp_path("huge"), F_OK) != 0);
    CHECK(vet_check_memory(1000, "a little", &err) == 0);
    CHECK(vet_mem_available() > 0);
    CHECK(vet_config_preset(&c, "tiny", &err) == 0);
    CHECK(vet_hf_init_dir(tmp_path("i32"), &c, 1, VET_DT_I32, NULL, &err) == -1);
    CHECK_CONTAINS(err.msg, "not I32");
    // A directory that holds a sharded model is not overwritten with a single file.
    char dir[300];
    snprintf(dir, sizeof dir, "%s/shardeddir", tmpdir);
    mkdir(dir, 0777);
    FILE *f = fopen(tmp_path("shardeddir/model.safetensors.index.json"), "w");
    fputs("{}", f);
    fclose(f);
    CHECK(vet_hf_init_dir(dir, &c, 1, VET_DT_F32, NULL, &err) == -1);
    CHECK_CONTAINS(err.msg, "holds a sharded model");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/vet-cfg.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_load_llama2);
    RUN(test_load_llama31_rope_scaling);
    RUN(test_load_rope_parameters);
    RUN(test_load_qwen25);
    RUN(test_load_alpaca_era);
    RUN(test_refusals);
    RUN(test_presets);
    RUN(test_save_load_round_trip);
    RUN(test_eos_lists);
    RUN(test_hf_names);
    RUN(test_hf_init_dir);
    RUN(test_hf_check_tensors);
    RUN(test_hf_refusals);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    CHECK_EXIT();
}
