// test_quant_rope_emu.cc — kernels/quant.cu and kernels/rope.cu as vet calls them (host
// functions, grids, kernels) on the CPU emulator (tests/unit/simt_emu.h), against lib/model's
// CPU code: dequantization of int8 and double-quantized NF4 weights to fp32 and bf16 (the
// 8-elements-a-thread kernels on aligned shapes, the element kernels on odd ones) bit for bit;
// the decode GEMV on packed weights (matmul_rows_q) against vet_quant_rows_forward, its
// replay, bit for bit (fp32 and bf16 inputs, with and without bias, 1 to 8 rows); RoPE forward,
// forward into bf16 and backward against the CPU's rope (here without fused multiply-adds, so
// the CPU's bits: on a GPU nvcc may contract them, which the parity test's tolerance takes), by
// the four-pairs-a-thread kernel and, on odd widths and unaligned rows, the pair-a-thread one.
#include "simt_emu.h"


#include "kernels/quant.cu"
#include "kernels/rope.cu"

#include <algorithm>
#include <stdlib.h>

#include "emu_check.h"

extern "C" {
#include "base/half.h"
#include "model/ops.h"
#include "model/quant.h"
}

// A quantized OC x C matrix with its CPU dequantization.
struct qmat {
    int kind, OC, C;
    std::vector<uint8_t> q;
    std::vector<float> scale, w;  // w: the CPU's dequantized values
    vet_cuda_qweight qw() const { return vet_cuda_qweight{kind, q.data(), scale.data()}; }
};

static qmat quantize(int kind, int OC, int C) {
    qmat m{kind, OC, C, {}, {}, {}};
    std::vector<float> w = rnd((size_t)OC * C);
    vet_err err;
    const size_t n = (size_t)OC * C;
    m.w.resize(n);
    if (kind == VET_CUDA_Q_INT8) {
        m.q.resize(n + 8), m.scale.resize(OC);
        CHECK(vet_quant_int8((int8_t *)m.q.data(), m.scale.data(), w.data(), OC, C, &err) == 0);
        vet_dequant_int8(m.w.data(), (const int8_t *)m.q.data(), m.scale.data(), OC, C);
    } else {
        m.q.resize(vet_nf4_dq_bytes(n) + 8), m.scale.resize(vet_nf4_dq_scales(n));
        CHECK(vet_quant_nf4_dq(m.q.data(), m.scale.data(), w.data(), n, &err) == 0);
        vet_dequant_nf4_dq(m.w.data(), m.q.data(), m.scale.data(), n);
    }
    return m;
}

// Aligned shapes (the 8-a-thread kernels) and odd ones (an element a thread); more than one
// nf4 scale group (256 blocks of 64) in the largest.
static void test_dequant(void) {
    const int shapes[][2] = {{24, 72}, {7, 13}, {300, 136}};
    for (int kind : {VET_CUDA_Q_INT8, VET_CUDA_Q_NF4})
        for (auto &sh : shapes) {
            qmat m = quantize(kind, sh[0], sh[1]);
            const vet_cuda_qweight w = m.qw();
            const size_t n = (size_t)m.OC * m.C;
            std::vector<float> got(n, NAN);
            std::vector<uint16_t> got16(n, 0xffff), want16(n);
            vet_err err;
            CHECK(dequant_cuda(ctx, got.data(), &w, m.OC, m.C, &err) == 0);
            CHECK(same_bits(got, m.w));
            CHECK(dequant_bf16_cuda(ctx, got16.data(), &w, m.OC, m.C, &err) == 0);
            for (size_t i = 0; i < n; i++) want16[i] = vet_f32_to_bf16(m.w[i]);
            CHECK(!memcmp(got16.data(), want16.data(), n * 2));
        }
}

// The decode GEMV: out (N, OC) = x (N, C) W^T (+ bias), on the packed codes.
static void test_rows_q(void) {
    for (int kind : {VET_CUDA_Q_INT8, VET_CUDA_Q_NF4})
        for (int N : {1, 3, 8}) {
            const int OC = 20, C = 96;
            qmat m = quantize(kind, OC, C);
            const vet_cuda_qweight w = m.qw();
            std::vector<float> x = rnd((size_t)N * C), bias = rnd(OC), xr((size_t)N * C);
            std::vector<uint16_t> x16((size_t)N * C);
            for (size_t i = 0; i < x.size(); i++) x16[i] = vet_f32_to_bf16(x[i]), xr[i] = vet_bf16_to_f32(x16[i]);
            vet_err err;
            for (int half = 0; half < 2; half++)
                for (const float *b : {(const float *)nullptr, (const float *)bias.data()}) {
                    std::vector<float> got((size_t)N * OC, NAN), want((size_t)N * OC);
                    vet_quant_rows_forward(want.data(), half ? xr.data() : x.data(), (vet_quant_kind)kind, m.q.data(),
                                           m.scale.data(), b, N, C, OC, half);
                    CHECK(matmul_rows_q_cuda(ctx, got.data(), x.data(), half ? x16.data() : nullptr, &w, b, N, C, OC,
                                             &err) == 0);
                    CHECK(same_bits(got, want));
                }
        }
}

// RoPE at head width hd, with x (and the bf16 output) starting `skew` floats into their
// buffers: hd a multiple of 8 and skew 0 take the four-pairs-a-thread kernel, the rest the
// pair-a-thread one; both against the CPU's bits.
static void rope_case(int hd, int skew) {
    const int N = 37, nh = 3, max_pos = 64;
    std::vector<float> inv(hd / 2), cos_t((size_t)max_pos * hd / 2), sin_t(cos_t.size());
    rope_inv_freq(inv.data(), hd, 10000.0f, nullptr);
    rope_tables(cos_t.data(), sin_t.data(), max_pos, hd, inv.data());
    std::vector<int32_t> pos(N);
    for (int n = 0; n < N; n++) pos[n] = (n * 7) % max_pos;
    const size_t len = (size_t)N * nh * hd;
    const std::vector<float> x0 = rnd(len);
    std::vector<float> xb(len + skew), gotb(len + skew);
    std::vector<uint16_t> got16b(len + skew);
    float *xs = xb.data() + skew, *got = gotb.data() + skew;
    uint16_t *got16 = got16b.data() + skew;
    std::copy(x0.begin(), x0.end(), xs);
    vet_err err;
    std::vector<float> want = x0;
    rope_forward(want.data(), pos.data(), cos_t.data(), sin_t.data(), N, nh, hd);
    std::copy(x0.begin(), x0.end(), got);
    CHECK(rope_forward_cuda(ctx, got, pos.data(), cos_t.data(), sin_t.data(), N, nh, hd, &err) == 0);
    CHECK(memcmp(got, want.data(), len * sizeof(float)) == 0);
    std::fill(got16b.begin(), got16b.end(), 0xffff);
    CHECK(rope_forward_bf16_cuda(ctx, got16, xs, pos.data(), cos_t.data(), sin_t.data(), N, nh, hd, &err) == 0);
    int bad = 0;
    for (size_t i = 0; i < len; i++) bad += got16[i] != vet_f32_to_bf16(want[i]);
    CHECK(bad == 0);
    CHECK(memcmp(xs, x0.data(), len * sizeof(float)) == 0);  // the bf16 pass leaves x as it was
    // in place on bf16 (q and k as their projections write them): the forward on the widened values
    std::vector<float> wide(len);
    for (size_t i = 0; i < len; i++) got16[i] = vet_f32_to_bf16(x0[i]), wide[i] = vet_bf16_to_f32(got16[i]);
    rope_forward(wide.data(), pos.data(), cos_t.data(), sin_t.data(), N, nh, hd);
    CHECK(rope_forward_inplace_bf16_cuda(ctx, got16, pos.data(), cos_t.data(), sin_t.data(), N, nh, hd, &err) == 0);
    bad = 0;
    for (size_t i = 0; i < len; i++) bad += got16[i] != vet_f32_to_bf16(wide[i]);
    CHECK(bad == 0);
    want = x0;
    rope_backward(want.data(), pos.data(), cos_t.data(), sin_t.data(), N, nh, hd);
    std::fill(got16b.begin(), got16b.end(), 0xffff);
    CHECK(rope_backward_bf16_cuda(ctx, got16, xs, pos.data(), cos_t.data(), sin_t.data(), N, nh, hd, &err) == 0);
    bad = 0;
    for (size_t i = 0; i < len; i++) bad += got16[i] != vet_f32_to_bf16(want[i]);
    CHECK(bad == 0);
    std::copy(x0.begin(), x0.end(), got);
    CHECK(rope_backward_cuda(ctx, got, pos.data(), cos_t.data(), sin_t.data(), N, nh, hd, &err) == 0);
    CHECK(memcmp(got, want.data(), len * sizeof(float)) == 0);
}

static void test_rope(void) {
    rope_case(40, 0);   // four pairs a thread (hd / 2 = 20: five quads a head)
    rope_case(128, 0);  // LLaMA's head
    rope_case(40, 1);   // x one float off 16 bytes: a pair a thread
    rope_case(42, 0);   // half of 21 pairs: a pair a thread
}

int main(void) {
    RUN(test_dequant);
    RUN(test_rows_q);
    RUN(test_rope);
    CHECK_EXIT();
}
