// test_attention_cudnn_emu.cc — vet's kernels around cuDNN's fused attention
// (kernels/attention_cudnn_passes.cu) on the CPU emulator (tests/unit/simt_emu.h), through their
// host functions. cuDNN's own kernels need a GPU (op_parity's `attention_*_cudnn` rows on a
// lease); what decides whether its answers mean vet's attention is here:
// - the mask: for packed rows of random samples, padding between and after them, two samples
//   side by side, and one id on both sides of padding, query i may see key j (bias 0) exactly
//   when a serial reading of the row says so: j <= i and positions j..i all in i's sample; a
//   padding position sees only itself; everything else carries VET_CUDNN_MASKED, in bf16;
// - the widening of its 16-bit results: written or added, exact, padding rows 0 (or kept);
// - the zeroing of its 16-bit output's padding rows, nothing else touched.
#include "simt_emu.h"

#include "kernels/attention_cudnn_passes.cu"

#include <stdlib.h>

#include "emu_check.h"
#include "kernels/attention_ranges.cuh"

extern "C" {
#include "base/half.h"
}

// B rows of T positions: samples of 1..7 positions (ids counting up, one id reused after a run of
// padding), padding runs (-1) between some and at the end.
static std::vector<int32_t> packed_rows(int B, int T) {
    std::vector<int32_t> seg((size_t)B * T);
    for (int b = 0; b < B; b++) {
        int id = 0, p = 0;
        while (p < T) {
            const int len = 1 + irand(7);
            const bool pad = irand(4) == 0;
            const int32_t v = pad ? -1 : (irand(5) == 0 && id > 0 ? id - 1 : id++);
            for (int i = 0; i < len && p < T; i++) seg[(size_t)b * T + p++] = v;
        }
        for (int i = T - 1 - irand(3); i < T; i++) seg[(size_t)b * T + i] = -1;  // padding at the end
    }
    return seg;
}

// Whether query i may see key j of one row sg, read serially.
static bool sees(const int32_t *sg, int i, int j) {
    if (i == j) return true;
    if (sg[i] < 0 || j > i) return false;
    for (int p = j; p <= i; p++)
        if (sg[p] != sg[i]) return false;
    return true;
}

static std::vector<int32_t> starts(const std::vector<int32_t> &seg, int B, int T) {
    std::vector<int32_t> start(seg.size()), end(seg.size());
    for (int b = 0; b < B; b++)
        for (int p = 0; p < T; p++)
            seg_bounds_at(seg.data() + (size_t)b * T, T, p, &start[(size_t)b * T + p], &end[(size_t)b * T + p]);
    return start;
}

static void test_mask(void) {
    vet_err err;
    const uint16_t seen = vet_f32_to_bf16(0.0f), hidden = vet_f32_to_bf16(VET_CUDNN_MASKED);
    CHECK(vet_bf16_to_f32(hidden) < -29000.0f);  // representable: the mask means what it says
    for (int T : {1, 9, 70}) {
        const int B = 3;
        std::vector<int32_t> seg = packed_rows(B, T), start = starts(seg, B, T);
        std::vector<uint16_t> bias((size_t)B * T * T, 0x7e7e);
        CHECK(attention_cudnn_bias(ctx, bias.data(), start.data(), B, T, &err) == 0);
        int bad = 0, visible = 0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    const bool s = sees(seg.data() + (size_t)b * T, i, j);
                    visible += s;
                    bad += bias[((size_t)b * T + i) * T + j] != (s ? seen : hidden);
                }
        CHECK(bad == 0);
        CHECK(visible >= B * T);  // the diagonal at least
    }
    // two samples side by side (ids 0 and 1): the second never sees the first
    const int32_t two[6] = {0, 0, 0, 1, 1, -1};
    std::vector<int32_t> seg(two, two + 6), start = starts(seg, 1, 6);
    std::vector<uint16_t> bias(36);
    CHECK(attention_cudnn_bias(ctx, bias.data(), start.data(), 1, 6, &err) == 0);
    CHECK(bias[3 * 6 + 2] == hidden && bias[3 * 6 + 3] == seen && bias[4 * 6 + 3] == seen && bias[2 * 6 + 0] == seen);
    CHECK(bias[5 * 6 + 4] == hidden && bias[5 * 6 + 5] == seen);  // padding: itself only
}

static void test_widen_and_padding(void) {
    vet_err err;
    const int B = 2, T = 33, w = 12;
    const size_t rows = (size_t)B * T, n = rows * w;
    std::vector<int32_t> seg = packed_rows(B, T), start = starts(seg, B, T);
    std::vector<float> x = rnd(n), base = rnd(n);
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; i++) h[i] = vet_f32_to_bf16(x[i]);
    for (int accumulate : {0, 1}) {
        std::vector<float> dst = base;
        CHECK(attention_cudnn_widen(ctx, dst.data(), h.data(), start.data(), rows, w, accumulate, &err) == 0);
        std::vector<float> want(n);
        for (size_t i = 0; i < n; i++) {
            const float v = start[i / w] < 0 ? 0.0f : vet_bf16_to_f32(h[i]);
            want[i] = accumulate ? base[i] + v : v;
        }
        CHECK(same_bits(dst, want));
    }
    std::vector<uint16_t> z = h;
    CHECK(attention_cudnn_zero_padding16(ctx, z.data(), start.data(), rows, w, &err) == 0);
    int bad = 0, padded = 0;
    for (size_t i = 0; i < n; i++) {
        const bool pad = start[i / w] < 0;
        padded += pad;
        bad += z[i] != (pad ? 0 : h[i]);
    }
    CHECK(bad == 0 && padded > 0);
    // nothing to do: no launch, no error
    CHECK(attention_cudnn_widen(ctx, NULL, NULL, NULL, 0, w, 0, &err) == 0);
    CHECK(attention_cudnn_bias(ctx, NULL, NULL, 0, T, &err) == 0);
}

int main(void) {
    RUN(test_mask);
    RUN(test_widen_and_padding);
    CHECK_EXIT();
}
