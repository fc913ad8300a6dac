// test_decode_emu.cc — kernels/decode.cu (vet-generate's device step, written without a GPU)
// as the GPU model calls it, on the CPU emulator (tests/unit/simt_emu.h): new keys and values
// into the slots' caches (fp32, bf16, fp16: each value rounded once, nearest even, at its
// row), one query a row against its slot's cache (fp32 and 16-bit caches, GQA, positions 0 and
// max_len - 1, head widths 40 and 128) against a double-precision softmax over the cached
// values, and greedy decoding's argmax on the device, over whole rows and over allowed ids
// (the lowest id wins a tie, a number beats a NaN), against the rule computed here.
#include "simt_emu.h"

#include "kernels/decode.cu"

#include <stdlib.h>

#include "emu_check.h"

extern "C" {
#include "base/half.h"
}

// fmt: 0 fp32 cache, else VET_CUDA_KV_BF16 / VET_CUDA_KV_F16.
static void decode_step(int fmt, int hd) {
    const int n_slots = 9, n = 8, max_len = 40, H = 4, KVH = 2, KV = KVH * hd;
    std::vector<int32_t> slots(n), pos(n);
    for (int i = 0; i < n; i++) slots[i] = (i * 5 + 3) % n_slots;  // distinct, shuffled
    for (int i = 0; i < n; i++) pos[i] = (int)(emu_next() % max_len);
    pos[0] = 0, pos[n - 1] = max_len - 1;
    const size_t ncache = (size_t)n_slots * max_len * KV;
    std::vector<float> kc = rnd(ncache), vc = rnd(ncache), kr = rnd((size_t)n * KV), vr = rnd((size_t)n * KV);
    std::vector<float> q = rnd((size_t)n * H * hd), out((size_t)n * H * hd, NAN);
    auto round16 = [fmt](float x) {
        return fmt == VET_CUDA_KV_BF16 ? vet_bf16_to_f32(vet_f32_to_bf16(x)) : vet_f16_to_f32(vet_f32_to_f16(x));
    };
    std::vector<float> kw = kc, vw = vc;  // what the cache holds after the write, widened
    vet_err err;
    if (fmt == 0) {
        std::vector<float> k = kc, v = vc;
        CHECK(kv_cache_write_cuda(ctx, k.data(), kr.data(), slots.data(), pos.data(), n, max_len, KV, &err) == 0);
        CHECK(kv_cache_write_cuda(ctx, v.data(), vr.data(), slots.data(), pos.data(), n, max_len, KV, &err) == 0);
        for (int i = 0; i < n; i++)
            for (int c = 0; c < KV; c++) {
                size_t at = ((size_t)slots[i] * max_len + pos[i]) * KV + c;
                kw[at] = kr[(size_t)i * KV + c], vw[at] = vr[(size_t)i * KV + c];
            }
        CHECK(!memcmp(k.data(), kw.data(), ncache * 4) && !memcmp(v.data(), vw.data(), ncache * 4));
        CHECK(attention_decode_cuda(ctx, out.data(), q.data(), k.data(), v.data(), slots.data(), pos.data(), n,
                                    max_len, H, KVH, hd, &err) == 0);
    } else {
        std::vector<uint16_t> k(ncache), v(ncache);
        for (size_t j = 0; j < ncache; j++) {
            k[j] = fmt == VET_CUDA_KV_BF16 ? vet_f32_to_bf16(kc[j]) : vet_f32_to_f16(kc[j]);
            v[j] = fmt == VET_CUDA_KV_BF16 ? vet_f32_to_bf16(vc[j]) : vet_f32_to_f16(vc[j]);
            kw[j] = round16(kc[j]), vw[j] = round16(vc[j]);
        }
        CHECK(kv_cache_write16_cuda(ctx, k.data(), kr.data(), slots.data(), pos.data(), n, max_len, KV, fmt, &err) ==
              0);
        CHECK(kv_cache_write16_cuda(ctx, v.data(), vr.data(), slots.data(), pos.data(), n, max_len, KV, fmt, &err) ==
              0);
        int bad = 0;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < KV; c++) {
                size_t at = ((size_t)slots[i] * max_len + pos[i]) * KV + c;
                uint16_t want_k = fmt == VET_CUDA_KV_BF16 ? vet_f32_to_bf16(kr[(size_t)i * KV + c])
                                                          : vet_f32_to_f16(kr[(size_t)i * KV + c]);
                bad += k[at] != want_k;
                kw[at] = round16(kr[(size_t)i * KV + c]), vw[at] = round16(vr[(size_t)i * KV + c]);
            }
        CHECK(bad == 0);
        CHECK(attention_decode16_cuda(ctx, out.data(), q.data(), k.data(), v.data(), slots.data(), pos.data(), n,
                                      max_len, H, KVH, hd, fmt, &err) == 0);
    }
    // softmax(q K^T / sqrt(hd)) V over the slot's positions 0..pos[i], in double
    double worst = 0, big = 0;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < H; h++) {
            const int g = h / (H / KVH);
            const float *qr = &q[((size_t)i * H + h) * hd];
            std::vector<double> s(pos[i] + 1);
            double m = -INFINITY, l = 0;
            for (int j = 0; j <= pos[i]; j++) {
                const float *kr_ = &kw[(((size_t)slots[i] * max_len + j) * KVH + g) * hd];
                double d = 0;
                for (int e = 0; e < hd; e++) d += (double)qr[e] * kr_[e];
                s[j] = d / sqrt((double)hd);
                m = s[j] > m ? s[j] : m;
            }
            for (int j = 0; j <= pos[i]; j++) l += exp(s[j] - m);
            for (int e = 0; e < hd; e++) {
                double o = 0;
                for (int j = 0; j <= pos[i]; j++)
                    o += exp(s[j] - m) / l * vw[(((size_t)slots[i] * max_len + j) * KVH + g) * hd + e];
                const double got = out[((size_t)i * H + h) * hd + e], d = fabs(got - o);
                if (!(d <= worst)) worst = d;
                big = fabs(o) > big ? fabs(o) : big;
            }
        }
    const char *name = fmt == 0 ? "fp32" : fmt == VET_CUDA_KV_BF16 ? "bf16" : "fp16";
    printf("# decode attention (cache %s, hd %d): max rel err %.2g\n", name, hd, worst / big);
    CHECK(worst / big <= 1e-5);
}

static void test_decode_step(void) {
    decode_step(0, 40);
    decode_step(VET_CUDA_KV_BF16, 128);
    decode_step(VET_CUDA_KV_F16, 40);
}

// The rule: the largest value, the lowest id of it; a number beats a NaN.
static int best_of(const float *row, const int32_t *ids, int m) {
    int bi = -1;
    for (int k = 0; k < m; k++) {
        int v = ids[k];
        float x = row[v];
        if (bi < 0 || (x > row[bi]) || (row[bi] != row[bi] && x == x)) bi = v;
    }
    return bi;
}

static void test_argmax(void) {
    const int n = 5, V = 1000;
    std::vector<float> x = rnd((size_t)n * V);
    x[0 * V + 700] = 5.0f, x[0 * V + 300] = 5.0f;  // a tie: 300 wins
    x[1 * V + 0] = NAN, x[1 * V + 999] = 3.0f;      // a NaN first, the max last
    for (int v = 0; v < V; v++) x[2 * V + v] = -1.0f;  // all equal: 0
    x[3 * V + 517] = INFINITY;
    std::vector<int32_t> all(V), got(n, -1);
    for (int v = 0; v < V; v++) all[v] = v;
    vet_err err;
    CHECK(argmax_rows_cuda(ctx, got.data(), x.data(), n, V, &err) == 0);
    int bad = 0;
    for (int i = 0; i < n; i++) bad += got[i] != best_of(&x[(size_t)i * V], all.data(), V);
    CHECK(bad == 0);
    CHECK(got[0] == 300 && got[1] == 999 && got[2] == 0 && got[3] == 517);
    // allowed ids: row i gets every (i + 2)-th id from i, and row 0 the two tied ones
    std::vector<int32_t> ids, off{0};
    for (int i = 0; i < n; i++) {
        if (i == 0) {
            ids.push_back(300), ids.push_back(700);
        } else {
            for (int v = i; v < V; v += i + 2) ids.push_back(v);
        }
        off.push_back((int32_t)ids.size());
    }
    std::fill(got.begin(), got.end(), -1);
    CHECK(argmax_allowed_rows_cuda(ctx, got.data(), x.data(), n, V, ids.data(), off.data(), &err) == 0);
    bad = 0;
    for (int i = 0; i < n; i++)
        bad += got[i] != best_of(&x[(size_t)i * V], &ids[off[i]], off[i + 1] - off[i]);
    CHECK(bad == 0);
    CHECK(got[0] == 300);
}

int main(void) {
    RUN(test_decode_step);
    RUN(test_argmax);
    CHECK_EXIT();
}
