// ops_rope.c — rotary position embedding as transformers computes it (rotate_half layout).
#include <math.h>

#include "model/model.h"
#include "model/ops.h"

// transformers' _compute_default_rope_parameters: inv_freq = 1 / theta^(arange(0,hd,2)/hd),
// all in fp32; then _compute_llama3_parameters when asked. Kept in fp32 on purpose: the
// angles must round the way PyTorch rounds them, or long positions drift apart.
void rope_inv_freq(float *inv_freq, int hd, float theta, const rope_scaling *sc) {
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)hd;
        inv_freq[i] = 1.0f / powf(theta, e);
    }
    if (sc && sc->type == 2) {
        // llama.cpp's rope_freqs: theta_i / factor_i, one fp32 division (ggml's rope divides the
        // angle by the factor; the same number up to rounding)
        for (int i = 0; i < half; i++) inv_freq[i] /= sc->freq_factors[i];
        return;
    }
    if (!sc || sc->type != 1) return;
    // PyTorch evaluates `scalar / tensor` as reciprocal(tensor) * scalar and `tensor / scalar`
    // as tensor * (1 / scalar), in fp32; the same here so the medium band rounds alike.
    float factor = sc->factor, lo = sc->low_freq_factor, hi = sc->high_freq_factor;
    float old_ctx = (float)sc->original_max_pos;
    float low_freq_wavelen = (float)((double)sc->original_max_pos / lo);
    float high_freq_wavelen = (float)((double)sc->original_max_pos / hi);
    float inv_factor = (float)(1.0 / factor), inv_band = (float)(1.0 / ((double)hi - lo));
    for (int i = 0; i < half; i++) {
        float f = inv_freq[i];
        float wavelen = (1.0f / f) * (float)(2 * M_PI);
        // wavelen > low_freq_wavelen: divide by factor; < high_freq_wavelen: keep
        float f_llama = wavelen > low_freq_wavelen ? f * inv_factor : f;
        // in between: interpolate with a smooth factor
        float smooth = ((1.0f / wavelen) * old_ctx - lo) * inv_band;
        float smoothed = ((1.0f - smooth) * f_llama) * inv_factor + smooth * f_llama;
        int medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
        inv_freq[i] = medium ? smoothed : f_llama;
    }
}

void vet_rope_inv_freq(const vet_config *c, float *inv_freq) {
    rope_scaling sc = {c->rope_type == VET_ROPE_LLAMA3 ? 1 : c->rope_type == VET_ROPE_FACTORS ? 2 : 0, c->rope_factor,
                       c->rope_low_freq_factor, c->rope_high_freq_factor, c->rope_orig_max_pos, c->rope_freq_factors};
    rope_inv_freq(inv_freq, c->head_dim, c->rope_theta, &sc);
}

void rope_tables(float *cos_t, float *sin_t, int max_pos, int hd, const float *inv_freq) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if ((size_t)max_pos * hd >= VET_PAR_MIN)
    for (int p = 0; p < max_pos; p++)
        for (int i = 0; i < half; i++) {
            float angle = (float)p * inv_freq[i];  // fp32 product, as HF's fp32 matmul
            cos_t[(size_t)p * half + i] = cosf(angle);
            sin_t[(size_t)p * half + i] = sinf(angle);
        }
}

// x[i]' = x[i] cos - x[i+h] sin;  x[i+h]' = x[i+h] cos + x[i] sin   (h = hd/2)
void rope_forward(float *x, const int32_t *pos, const float *cos_t, const float *sin_t, int N,
                  int nh, int hd) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if ((size_t)N * nh * hd >= VET_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *c = cos_t + (size_t)pos[n] * half, *s = sin_t + (size_t)pos[n] * half;
        for (int h = 0; h < nh; h++) {
            float *v = x + ((size_t)n * nh + h) * hd;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

// The rotation's transpose: da = da' cos + db' sin;  db = db' cos - da' sin.
void rope_backward(float *dx, const int32_t *pos, const float *cos_t, const float *sin_t, int N,
                   int nh, int hd) {
    int half = hd / 2;
#pragma omp parallel for schedule(static) if ((size_t)N * nh * hd >= VET_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *c = cos_t + (size_t)pos[n] * half, *s = sin_t + (size_t)pos[n] * half;
        for (int h = 0; h < nh; h++) {
            float *v = dx + ((size_t)n * nh + h) * hd;
            for (int i = 0; i < half; i++) {
                float da = v[i], db = v[i + half];
                v[i] = da * c[i] + db * s[i];
                v[i + half] = db * c[i] - da * s[i];
            }
        }
    }
}
