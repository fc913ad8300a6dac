// export_model.c — a vet_model as GGUF: llama.cpp's hyperparameter keys and tensor names, the
// weights encoded one row at a time when the writer asks for them.
//
// Names (llama.cpp's LLM_ARCH_LLAMA / LLM_ARCH_QWEN2 tensors); an HF (out, in) weight is stored
// with ne = {in, out}, the same bytes row-major:
//   token_embd.weight (C, V)   blk.N.attn_norm.weight (C)   blk.N.attn_{q,k,v}.weight (C, out)
//   blk.N.attn_{q,k,v}.bias    blk.N.attn_output.weight     blk.N.ffn_norm.weight (C)
//   blk.N.ffn_{gate,up}.weight (C, F)   blk.N.ffn_down.weight (F, C)
//   output_norm.weight (C)     output.weight (C, V), absent when the embeddings are tied
//   rope_freqs.weight (hd/2), first, only with llama3 rope scaling (see rope_freqs below)
//
// RoPE: transformers rotates (x[i], x[i + hd/2]) (rotate_half); llama.cpp's llama architecture
// rotates adjacent pairs (x[2i], x[2i+1]). So for "llama" the rows of Q and K (and their biases)
// are reordered within each head, as llama.cpp's converter does: GGUF row 2i+j of a head is HF
// row j*hd/2 + i. Then llama.cpp's adjacent pairs are transformers' (i, i + hd/2) pairs and the
// attention scores are unchanged. Qwen2 runs llama.cpp's NEOX rope (transformers' pairing): no
// permutation. K uses its own head count (GQA).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export_impl.h"
#include "io/ggml_quant.h"
#include "model/ops.h"

int export_check_config(const vet_config *c, vet_err *err) {
    if (strcmp(c->arch, "llama") != 0 && strcmp(c->arch, "qwen2") != 0)
        return vet_errf(err, "architecture %s has no GGUF export (vet writes llama and qwen2)", c->arch);
    if (c->rope_type != VET_ROPE_DEFAULT && strcmp(c->arch, "llama") != 0)
        return vet_errf(err, "rope_scaling llama3 is not exported for %s: llama.cpp applies rope_freqs to the llama "
                             "architecture only", c->arch);
    if (c->rope_type != VET_ROPE_DEFAULT && c->head_dim / 2 > VET_ROPE_MAX_FACTORS)
        return vet_errf(err, "rope_scaling llama3 with head_dim %d is not exported (rope_freqs of at most %d factors)",
                        c->head_dim, VET_ROPE_MAX_FACTORS);
    if (c->mlp_bias) return vet_errf(err, "MLP biases have no place in GGUF's llama architecture");
    return 0;
}

// rope_freqs.weight (hd/2) for llama3 rope scaling, as llama.cpp's convert_hf_to_gguf.py computes
// it from rope_scaling: 1 above the high-frequency wavelength, factor below the low one, and
// 1 / ((1 - smooth) / factor + smooth) between; llama.cpp divides frequency i by it. fp32 steps
// as PyTorch evaluates the converter's expressions on 0-d tensors: `scalar / tensor` as
// reciprocal(tensor) * scalar, `tensor / scalar` as a true division (the bits match the
// converter's: tests/reference/test_gguf_model.py). A GGUF's own factors (VET_ROPE_FACTORS) go
// back out as they came in.
static void rope_freqs(const vet_config *c, float *out) {
    int half = c->head_dim / 2;
    if (c->rope_type == VET_ROPE_FACTORS) {
        memcpy(out, c->rope_freq_factors, (size_t)half * sizeof(float));
        return;
    }
    rope_inv_freq(out, c->head_dim, c->rope_theta, NULL);   // theta^(-2i/hd), the converter's freqs
    float factor = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
    float old_ctx = (float)c->rope_orig_max_pos;
    float low_wavelen = (float)((double)c->rope_orig_max_pos / lo), high_wavelen = (float)((double)c->rope_orig_max_pos / hi);
    float band = (float)((double)hi - lo);
    for (int i = 0; i < half; i++) {
        float wavelen = (1.0f / out[i]) * (float)(2 * M_PI);
        float smooth = ((1.0f / wavelen) * old_ctx - lo) / band;
        out[i] = wavelen < high_wavelen ? 1.0f : wavelen > low_wavelen ? factor : 1.0f / ((1.0f - smooth) / factor + smooth);
    }
}

// The HF row that GGUF row r of a permuted Q/K holds (see the top of the file).
static int64_t src_row(const export_src *s, int64_t r) {
    if (s->perm_heads <= 0) return r;
    int64_t hd = s->rows / s->perm_heads, h = r / hd, k = r % hd;
    return h * hd + (k % 2) * (hd / 2) + k / 2;
}

static int fill(void *ctx, uint8_t *dst, size_t nbytes, vet_err *err) {
    const export_src *s = ctx;
    size_t rb = vet_gguf_write_nbytes(s->type, s->cols);
    int bad = 0;
    #pragma omp parallel for schedule(static) reduction(|:bad)
    for (int64_t r = 0; r < s->rows; r++) {
        const float *x = s->src + src_row(s, r) * s->cols;
        uint8_t *out = dst + (size_t)r * rb;
        if (s->type == VET_GGML_F32) memcpy(out, x, rb);
        else if (s->type == VET_GGML_F16) bad |= vet_ggml_f16_row(out, x, s->cols) < 0;
        else bad |= vet_ggml_q8_0_row(out, x, s->cols) < 0;
    }
    (void)nbytes;  // == rows * rb: the writer sized it from the same type and dims
    if (bad)
        return vet_err_kindf(err, VET_E_NONFINITE, "a weight is not finite or beyond f16's range (65504): "
                             "export with --type f32");
    return 0;
}

// One tensor: an HF (rows, cols) matrix (cols 0: a vector of rows) as GGUF name. ss->src was
// sized for every tensor up front: the writer keeps pointers into it.
static int add(vet_gguf_writer *w, export_srcs *ss, const char *name, const float *p, int64_t rows, int64_t cols,
               uint32_t type, int perm_heads, vet_export_result *r, vet_err *err) {
    int vec = cols == 0;
    uint32_t t = vec ? VET_GGML_F32 : type;
    if (t == VET_GGML_Q8_0 && cols % 32) t = VET_GGML_F16, r->n_f16_fallback++;   // as llama.cpp's converter
    if (ss->n == ss->cap) return vet_errf(err, "%s: more tensors than the model has", name);   // a bug
    // A vector is a column: one element per row, so the permutation reorders its elements.
    export_src *s = &ss->src[ss->n++];
    *s = (export_src){.src = p, .rows = rows, .cols = vec ? 1 : cols, .perm_heads = perm_heads, .type = t};
    int64_t ne[2] = {vec ? rows : cols, rows};
    return vet_gguf_add_tensor(w, name, t, vec ? 1 : 2, ne, fill, s, err);
}

static int arch_keys(vet_gguf_writer *w, const vet_config *c, uint32_t type, const char *name, vet_err *err) {
    char k[96];
    const char *a = c->arch;
    uint32_t ftype = type == VET_GGML_F32 ? 0 : type == VET_GGML_F16 ? 1 : 7;   // llama.cpp's LLAMA_FTYPE
    int rc = vet_gguf_set_str(w, "general.architecture", a, err);
    if (!rc) rc = vet_gguf_set_str(w, "general.name", name, err);
    if (!rc) rc = vet_gguf_set_u32(w, "general.file_type", ftype, err);
    if (!rc) rc = vet_gguf_set_u32(w, "general.quantization_version", 2, err);
    if (!rc) rc = vet_gguf_set_u32(w, "general.alignment", VET_GGUF_DEFAULT_ALIGNMENT, err);
#define U32(key, v) if (!rc) snprintf(k, sizeof k, "%s." key, a), rc = vet_gguf_set_u32(w, k, (uint32_t)(v), err)
#define F32(key, v) if (!rc) snprintf(k, sizeof k, "%s." key, a), rc = vet_gguf_set_f32(w, k, (v), err)
    U32("vocab_size", c->vocab_size);
    U32("context_length", c->max_pos);
    U32("embedding_length", c->dim);
    U32("block_count", c->n_layers);
    U32("feed_forward_length", c->hidden_dim);
    U32("rope.dimension_count", c->head_dim);
    U32("attention.head_count", c->n_heads);
    U32("attention.head_count_kv", c->n_kv_heads);
    F32("attention.layer_norm_rms_epsilon", c->rms_eps);
    F32("rope.freq_base", c->rope_theta);
    if (c->head_dim * c->n_heads != c->dim) {   // llama.cpp assumes dim / heads otherwise
        U32("attention.key_length", c->head_dim);
        U32("attention.value_length", c->head_dim);
    }
#undef U32
#undef F32
    return rc;
}

int export_model(vet_gguf_writer *w, const vet_model *m, uint32_t type, const char *name, export_srcs *ss,
                 vet_export_result *r, vet_err *err) {
    const vet_config *c = &m->cfg;
    const vet_weights *W = &m->w;
    if (arch_keys(w, c, type, name, err) < 0) return -1;
    int64_t C = c->dim, F = c->hidden_dim, V = c->vocab_size, hd = c->head_dim;
    int64_t q = c->n_heads * hd, kv = c->n_kv_heads * hd;
    int llama = strcmp(c->arch, "llama") == 0;
    int ph = llama ? c->n_heads : 0, pk = llama ? c->n_kv_heads : 0;
    ss->cap = 4 + 12 * c->n_layers, ss->n = 0;
    if (!(ss->src = calloc((size_t)ss->cap, sizeof *ss->src))) return vet_err_nomem(err, "out of memory");
#define ADD(p, rows, cols, perm) add(w, ss, nm, p, rows, cols, type, perm, r, err)
    const char *nm = "rope_freqs.weight";   // first, as the converter writes its extra tensors
    if (c->rope_type != VET_ROPE_DEFAULT) {
        rope_freqs(c, ss->rope_freqs);
        if (ADD(ss->rope_freqs, hd / 2, 0, 0)) return -1;
    }
    nm = "token_embd.weight";
    if (ADD(W->embed, V, C, 0)) return -1;
    for (int l = 0; l < c->n_layers; l++) {
        char b[64];
        struct { const char *suf; const float *p; int64_t rows, cols; int perm; } t[] = {
            {"attn_norm.weight", W->attn_norm + l * C, C, 0, 0},
            {"attn_q.weight", W->wq + l * q * C, q, C, ph},
            {"attn_q.bias", W->bq ? W->bq + l * q : NULL, q, 0, ph},
            {"attn_k.weight", W->wk + l * kv * C, kv, C, pk},
            {"attn_k.bias", W->bk ? W->bk + l * kv : NULL, kv, 0, pk},
            {"attn_v.weight", W->wv + l * kv * C, kv, C, 0},
            {"attn_v.bias", W->bv ? W->bv + l * kv : NULL, kv, 0, 0},
            {"attn_output.weight", W->wo + l * C * q, C, q, 0},
            {"ffn_norm.weight", W->mlp_norm + l * C, C, 0, 0},
            {"ffn_gate.weight", W->wgate + l * F * C, F, C, 0},
            {"ffn_up.weight", W->wup + l * F * C, F, C, 0},
            {"ffn_down.weight", W->wdown + l * C * F, C, F, 0},
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
            if (!t[i].p) continue;   // no q/k/v biases
            snprintf(b, sizeof b, "blk.%d.%s", l, t[i].suf);
            nm = b;
            if (ADD(t[i].p, t[i].rows, t[i].cols, t[i].perm)) return -1;
        }
    }
    nm = "output_norm.weight";
    if (ADD(W->final_norm, C, 0, 0)) return -1;
    nm = "output.weight";
    if (!c->tie_embeddings && ADD(W->lm_head, V, C, 0)) return -1;
#undef ADD
    return 0;
}
