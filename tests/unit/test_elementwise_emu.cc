// test_elementwise_emu.cc — the element-wise and row kernels a training step runs between its
// GEMMs (kernels/elementwise.cu, rmsnorm.cu, dropout.cu, crossentropy.cu), through their host
// functions, on the CPU emulator (tests/unit/simt_emu.h), against lib/model's CPU ops: bf16
// conversions, embeddings forward (fp32 and bf16 tables) and backward with repeated tokens,
// SwiGLU forward, backward and the fused forward into bf16, residual add and scale, AdamW,
// RMSNorm forward, backward with its weight gradient and the fused residual + norm + cast,
// dropout forward and backward (the Philox masks) and cross-entropy in place (an ignored row).
// op_parity's tolerances: 1e-5 where the order of sums may differ, bits where the ops promise
// them. (gradstats.cu runs on the emulated device, in op_parity: test_gpu_emu_parity.sh.) These kernels ran on the H200 on 2026-12-04; here they guard every later change made
// without one.
#include "simt_emu.h"

#include "kernels/elementwise.cu"
#undef THREADS
#include "kernels/rmsnorm.cu"
#undef THREADS
#include "kernels/dropout.cu"
#include "kernels/crossentropy.cu"
#undef THREADS
#define blocks_for blocks_for_fp16  // the same static helper in both files: one translation unit here
#include "kernels/fp16.cu"
#undef blocks_for

#include <stdlib.h>

#include "emu_check.h"

extern "C" {
#include "base/half.h"
#include "model/ops.h"
}

#define F32 1e-5

// The conversions to 16 bits, 8 elements a thread (aligned, with a tail of n % 8) and one a
// thread (skewed off 16 bytes): the rounding's bits either way, and nothing written past n.
static void test_wide_conversions(void) {
    vet_err err;
    for (size_t n : {(size_t)1003, (size_t)8, (size_t)5})
        for (int skew : {0, 1, 3})
            for (int fmt : {VET_CUDA_BF16, VET_CUDA_F16}) {
                std::vector<float> xb = rnd(n + skew + 1);
                xb[skew + 3 % n] = 70000.0f;  // past fp16's range: inf there, bf16 keeps it
                std::vector<uint16_t> hb(n + skew + 1, 0x7e7e);
                const float *x = xb.data() + skew;
                uint16_t *h = hb.data() + skew;
                CHECK((fmt == VET_CUDA_F16 ? f32_to_f16_cuda : f32_to_bf16_cuda)(ctx, h, x, n, &err) == 0);
                int bad = 0;
                for (size_t i = 0; i < n; i++)
                    bad += h[i] != (fmt == VET_CUDA_F16 ? vet_f32_to_f16(x[i]) : vet_f32_to_bf16(x[i]));
                CHECK(bad == 0);
                CHECK(h[n] == 0x7e7e && (skew == 0 || h[-1] == 0x7e7e));
            }
}

static void test_conversions_and_embeddings(void) {
    const int N = 37, C = 40, V = 11;
    vet_err err;
    std::vector<float> x = rnd((size_t)N * C), back(x.size(), NAN);
    std::vector<uint16_t> h(x.size(), 0);
    CHECK(f32_to_bf16_cuda(ctx, h.data(), x.data(), x.size(), &err) == 0);
    int bad = 0;
    for (size_t i = 0; i < x.size(); i++) bad += h[i] != vet_f32_to_bf16(x[i]);
    CHECK(bad == 0);
    CHECK(bf16_to_f32_cuda(ctx, back.data(), h.data(), h.size(), &err) == 0);
    bad = 0;
    for (size_t i = 0; i < x.size(); i++) bad += back[i] != vet_bf16_to_f32(h[i]);
    CHECK(bad == 0);

    std::vector<int32_t> tok(N);
    for (int n = 0; n < N; n++) tok[n] = n % 3 == 0 ? 4 : irand(V);  // token 4 many times
    std::vector<float> emb = rnd((size_t)V * C), want((size_t)N * C), got(want.size(), NAN);
    embedding_forward(want.data(), tok.data(), emb.data(), N, C);
    CHECK(embedding_forward_cuda(ctx, got.data(), tok.data(), emb.data(), N, C, &err) == 0);
    CHECK(same_bits(got, want));
    std::vector<uint16_t> emb16(emb.size());
    std::vector<float> emb_r(emb.size());
    for (size_t i = 0; i < emb.size(); i++) emb16[i] = vet_f32_to_bf16(emb[i]), emb_r[i] = vet_bf16_to_f32(emb16[i]);
    embedding_forward(want.data(), tok.data(), emb_r.data(), N, C);
    CHECK(embedding_forward_bf16_cuda(ctx, got.data(), tok.data(), emb16.data(), N, C, &err) == 0);
    CHECK(same_bits(got, want));
    std::vector<float> dout = rnd((size_t)N * C), de = rnd((size_t)V * C), de_want = de;
    embedding_backward(de_want.data(), dout.data(), tok.data(), N, C);
    CHECK(embedding_backward_cuda(ctx, de.data(), dout.data(), tok.data(), N, C, &err) == 0);
    CHECK(same_bits(de, de_want));  // one thread a column walks the rows in the CPU's order
}

// SwiGLU's 16-bit passes and the residual add, 8 elements a thread on aligned buffers (n = 1003:
// a tail of 3) against the same ops one a thread on buffers skewed by one element (a thread an
// element from the first): the same bits, element for element.
static void test_wide_swiglu_add(void) {
    const size_t n = 1003, m = n - 1;
    vet_err err;
    std::vector<float> g = rnd(n), u = rnd(n), d = rnd(n);
    for (int fmt : {VET_CUDA_BF16, VET_CUDA_F16}) {
        std::vector<uint16_t> g16(n), u16(n);
        for (size_t i = 0; i < n; i++) {
            g16[i] = fmt == VET_CUDA_F16 ? vet_f32_to_f16(g[i]) : vet_f32_to_bf16(g[i]);
            u16[i] = fmt == VET_CUDA_F16 ? vet_f32_to_f16(u[i]) : vet_f32_to_bf16(u[i]);
        }
        // forward from 16-bit gate and up: aligned (wide) and from element 1 (skewed)
        std::vector<float> y(n, NAN), ys(n, NAN);
        std::vector<uint16_t> h(n), hs(n);
        CHECK(swiglu_forward_in16_cuda(ctx, y.data(), h.data(), fmt, g16.data(), u16.data(), n, &err) == 0);
        CHECK(swiglu_forward_in16_cuda(ctx, ys.data() + 1, hs.data() + 1, fmt, g16.data() + 1, u16.data() + 1, m,
                                       &err) == 0);
        CHECK(memcmp(y.data() + 1, ys.data() + 1, m * sizeof(float)) == 0 &&
              memcmp(h.data() + 1, hs.data() + 1, m * 2) == 0);
        // ... from fp32 gate and up, 16 bits only
        std::vector<uint16_t> h2(n), h2s(n);
        CHECK(swiglu_forward_half_cuda(ctx, NULL, h2.data(), fmt, g.data(), u.data(), n, &err) == 0);
        CHECK(swiglu_forward_half_cuda(ctx, NULL, h2s.data() + 1, fmt, g.data() + 1, u.data() + 1, m, &err) == 0);
        CHECK(memcmp(h2.data() + 1, h2s.data() + 1, m * 2) == 0);
        std::vector<float> want(n);
        swiglu_forward(want.data(), g.data(), u.data(), n);
        int bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += h2[i] != (fmt == VET_CUDA_F16 ? vet_f32_to_f16(want[i]) : vet_f32_to_bf16(want[i]));
        CHECK(bad <= (int)(n / 100));  // the CPU's expf may differ from the kernel's in the last bit
        // backward into 16 bits, from 16-bit and from fp32 gate and up
        std::vector<uint16_t> a(n), b(n), as(n), bs(n);
        CHECK(swiglu_backward_in16_cuda(ctx, a.data(), b.data(), fmt, d.data(), g16.data(), u16.data(), n, &err) == 0);
        CHECK(swiglu_backward_in16_cuda(ctx, as.data() + 1, bs.data() + 1, fmt, d.data() + 1, g16.data() + 1,
                                        u16.data() + 1, m, &err) == 0);
        CHECK(memcmp(a.data() + 1, as.data() + 1, m * 2) == 0 && memcmp(b.data() + 1, bs.data() + 1, m * 2) == 0);
        CHECK(swiglu_backward_half_cuda(ctx, a.data(), b.data(), fmt, d.data(), g.data(), u.data(), n, &err) == 0);
        CHECK(swiglu_backward_half_cuda(ctx, as.data() + 1, bs.data() + 1, fmt, d.data() + 1, g.data() + 1,
                                        u.data() + 1, m, &err) == 0);
        CHECK(memcmp(a.data() + 1, as.data() + 1, m * 2) == 0 && memcmp(b.data() + 1, bs.data() + 1, m * 2) == 0);
    }
    std::vector<float> x = rnd(n), y = rnd(n), xs = x, want = x;
    add_inplace(want.data(), y.data(), n);
    CHECK(add_inplace_cuda(ctx, x.data(), y.data(), n, &err) == 0);
    CHECK(add_inplace_cuda(ctx, xs.data() + 1, y.data() + 1, m, &err) == 0);
    CHECK(same_bits(x, want) && memcmp(xs.data() + 1, want.data() + 1, m * sizeof(float)) == 0);
}

static void test_swiglu_add_scale_adamw(void) {
    const size_t n = 1000;
    vet_err err;
    std::vector<float> g = rnd(n), u = rnd(n), dout = rnd(n), want(n), got(n, NAN);
    swiglu_forward(want.data(), g.data(), u.data(), n);
    CHECK(swiglu_forward_cuda(ctx, got.data(), g.data(), u.data(), n, &err) == 0);
    CHECK(max_rel(got, want) <= F32);
    std::vector<float> fused(n, NAN);
    std::vector<uint16_t> h(n, 0);
    CHECK(swiglu_forward_half_cuda(ctx, fused.data(), h.data(), VET_CUDA_BF16, g.data(), u.data(), n, &err) == 0);
    CHECK(same_bits(fused, got));  // the fused pass: the same bits as the op, then rounded
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += h[i] != vet_f32_to_bf16(got[i]);
    CHECK(bad == 0);
    std::vector<float> dg(n), du(n), dg_got(n, NAN), du_got(n, NAN);
    swiglu_backward_set(dg.data(), du.data(), dout.data(), g.data(), u.data(), n);
    CHECK(swiglu_backward_set_cuda(ctx, dg_got.data(), du_got.data(), dout.data(), g.data(), u.data(), n, &err) == 0);
    CHECK(max_rel(dg_got, dg) <= F32 && max_rel(du_got, du) <= F32);
    for (int fmt : {VET_CUDA_BF16, VET_CUDA_F16}) {  // straight into 16 bits: the rounded op's bits
        std::vector<uint16_t> dg16(n, 0), du16(n, 0);
        CHECK(swiglu_backward_half_cuda(ctx, dg16.data(), du16.data(), fmt, dout.data(), g.data(), u.data(), n,
                                        &err) == 0);
        int wrong = 0;
        for (size_t i = 0; i < n; i++) {
            const uint16_t wg = fmt == VET_CUDA_F16 ? vet_f32_to_f16(dg_got[i]) : vet_f32_to_bf16(dg_got[i]);
            const uint16_t wu = fmt == VET_CUDA_F16 ? vet_f32_to_f16(du_got[i]) : vet_f32_to_bf16(du_got[i]);
            wrong += dg16[i] != wg || du16[i] != wu;
        }
        CHECK(wrong == 0);
    }
    for (int fmt : {VET_CUDA_BF16, VET_CUDA_F16}) {  // gate and up stored in 16 bits: the widened values' bits
        std::vector<uint16_t> g16(n), u16(n), a16(n), b16(n), c16(n), d16(n), h1(n), h2(n);
        std::vector<float> gw(n), uw(n), y1(n, NAN), y2(n, NAN);
        for (size_t i = 0; i < n; i++) {
            g16[i] = fmt == VET_CUDA_F16 ? vet_f32_to_f16(g[i]) : vet_f32_to_bf16(g[i]);
            u16[i] = fmt == VET_CUDA_F16 ? vet_f32_to_f16(u[i]) : vet_f32_to_bf16(u[i]);
            gw[i] = fmt == VET_CUDA_F16 ? vet_f16_to_f32(g16[i]) : vet_bf16_to_f32(g16[i]);
            uw[i] = fmt == VET_CUDA_F16 ? vet_f16_to_f32(u16[i]) : vet_bf16_to_f32(u16[i]);
        }
        CHECK(swiglu_forward_half_cuda(ctx, y1.data(), h1.data(), fmt, gw.data(), uw.data(), n, &err) == 0);
        CHECK(swiglu_forward_in16_cuda(ctx, y2.data(), h2.data(), fmt, g16.data(), u16.data(), n, &err) == 0);
        CHECK(same_bits(y1, y2) && h1 == h2);
        CHECK(swiglu_backward_half_cuda(ctx, a16.data(), b16.data(), fmt, dout.data(), gw.data(), uw.data(), n,
                                        &err) == 0);
        CHECK(swiglu_backward_in16_cuda(ctx, c16.data(), d16.data(), fmt, dout.data(), g16.data(), u16.data(), n,
                                        &err) == 0);
        CHECK(a16 == c16 && b16 == d16);
    }
    CHECK(swiglu_backward_half_cuda(ctx, NULL, NULL, 0, dout.data(), g.data(), u.data(), n, &err) < 0);
    CHECK(strstr(err.msg, "swiglu_backward_half: format 0 is neither bf16") != NULL);
    std::vector<uint16_t> g16(n), u16(n);
    CHECK(swiglu_forward_in16_cuda(ctx, NULL, g16.data(), 7, g16.data(), u16.data(), n, &err) < 0);
    CHECK(strstr(err.msg, "swiglu_forward_in16: format 7 is neither bf16 (1) nor fp16 (2)") != NULL);
    CHECK(swiglu_backward_in16_cuda(ctx, g16.data(), u16.data(), 0, dout.data(), g16.data(), u16.data(), n, &err) < 0);
    CHECK(strstr(err.msg, "swiglu_backward_in16: format 0 is neither bf16") != NULL);

    std::vector<float> a = rnd(n), b = rnd(n), aw = a;
    add_inplace(aw.data(), b.data(), n);
    scale_inplace(aw.data(), 0.37f, n);
    CHECK(add_inplace_cuda(ctx, a.data(), b.data(), n, &err) == 0);
    CHECK(scale_inplace_cuda(ctx, a.data(), 0.37f, n, &err) == 0);
    CHECK(same_bits(a, aw));

    std::vector<float> p = rnd(n), grad = rnd(n), m = rnd(n), v(n);
    for (auto &e : v) e = fabsf(frand());
    std::vector<float> pw = p, mw = m, vw = v;
    adamw_update(pw.data(), grad.data(), 0.5f, mw.data(), vw.data(), n, 2e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 7);
    CHECK(adamw_update_cuda(ctx, p.data(), grad.data(), 0.5f, m.data(), v.data(), n, 2e-4f, 0.9f, 0.999f, 1e-8f,
                            0.01f, 7, &err) == 0);
    CHECK(same_bits(p, pw) && same_bits(m, mw) && same_bits(v, vw));  // AdamW: bit for bit
}

static void test_rmsnorm(void) {
    const int N = 21, C = 300;
    const float eps = 1e-5f;
    vet_err err;
    std::vector<float> x = rnd((size_t)N * C), w = rnd(C), out((size_t)N * C), rstd(N), got(out.size(), NAN),
                       rgot(N, NAN);
    rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, eps);
    CHECK(rmsnorm_forward_cuda(ctx, got.data(), rgot.data(), x.data(), w.data(), N, C, eps, &err) == 0);
    CHECK(max_rel(got, out) <= F32 && max_rel(rgot, rstd) <= F32);
    // the fused pass: x += res, its norm, rounded to bf16 too
    std::vector<float> res = rnd(x.size()), xs = x, xw = x, fo(out.size(), NAN), fr(N, NAN);
    std::vector<uint16_t> f16(out.size(), 0);
    add_inplace(xw.data(), res.data(), xw.size());
    rmsnorm_forward(out.data(), rstd.data(), xw.data(), w.data(), N, C, eps);
    CHECK(rmsnorm_forward_fused_cuda(ctx, fo.data(), f16.data(), VET_CUDA_BF16, fr.data(), xs.data(), res.data(),
                                     w.data(), N, C, eps, &err) == 0);
    CHECK(same_bits(xs, xw));
    CHECK(max_rel(fo, out) <= F32 && max_rel(fr, rstd) <= F32);
    int bad = 0;
    for (size_t i = 0; i < fo.size(); i++) bad += f16[i] != vet_f32_to_bf16(fo[i]);
    CHECK(bad == 0);
    // backward: dx += , dw +=
    std::vector<float> dout = rnd(x.size()), dx = rnd(x.size()), dw = rnd(C), dxw = dx, dww = dw;
    rmsnorm_backward(dxw.data(), dww.data(), dout.data(), xw.data(), w.data(), rstd.data(), N, C);
    CHECK(rmsnorm_backward_cuda(ctx, dx.data(), dw.data(), dout.data(), xw.data(), w.data(), rstd.data(), N, C,
                                &err) == 0);
    CHECK(max_rel(dx, dxw) <= F32 && max_rel(dw, dww) <= F32);
}

// RMSNorm's row kernels 8 columns at a time (C = 304, aligned rows) against the same with every
// buffer skewed off 16 bytes (a column a thread): the fused residual add, norm and cast, and the
// backward's dx; the double sums add in another order, which leaves these floats' bits as they
// are; and both against the CPU op.
static void test_rmsnorm_wide(void) {
    const int N = 13, C = 304;
    const size_t len = (size_t)N * C;
    const float eps = 1e-5f;
    vet_err err;
    const std::vector<float> x0 = rnd(len), res = rnd(len), w = rnd(C), dout = rnd(len), dx0 = rnd(len);
    // buffers at offset 0 and at offset 1 (skewed)
    std::vector<float> xa = x0, xb(len + 1), ra(len), rb(len + 1), wb(C + 1), oa(len, NAN), ob(len + 1, NAN);
    std::vector<float> sa(N, NAN), sb(N, NAN), da = dx0, db(len + 1), dob(len + 1);
    std::vector<uint16_t> ha(len), hb(len + 1);
    std::copy(x0.begin(), x0.end(), xb.begin() + 1);
    std::copy(res.begin(), res.end(), rb.begin() + 1);
    std::copy(w.begin(), w.end(), wb.begin() + 1);
    std::copy(dx0.begin(), dx0.end(), db.begin() + 1);
    std::copy(dout.begin(), dout.end(), dob.begin() + 1);
    CHECK(rmsnorm_forward_fused_cuda(ctx, oa.data(), ha.data(), VET_CUDA_BF16, sa.data(), xa.data(), res.data(),
                                     w.data(), N, C, eps, &err) == 0);
    CHECK(rmsnorm_forward_fused_cuda(ctx, ob.data() + 1, hb.data() + 1, VET_CUDA_BF16, sb.data(), xb.data() + 1,
                                     rb.data() + 1, wb.data() + 1, N, C, eps, &err) == 0);
    CHECK(memcmp(xa.data(), xb.data() + 1, len * 4) == 0 && memcmp(oa.data(), ob.data() + 1, len * 4) == 0);
    CHECK(memcmp(ha.data(), hb.data() + 1, len * 2) == 0 && same_bits(sa, sb));
    std::vector<float> xw = x0, want(len), rw(N);
    add_inplace(xw.data(), res.data(), len);
    rmsnorm_forward(want.data(), rw.data(), xw.data(), w.data(), N, C, eps);
    CHECK(same_bits(xa, xw) && max_rel(oa, want) <= F32 && max_rel(sa, rw) <= F32);
    CHECK(rmsnorm_backward_cuda(ctx, da.data(), NULL, dout.data(), xa.data(), w.data(), sa.data(), N, C, &err) == 0);
    CHECK(rmsnorm_backward_cuda(ctx, db.data() + 1, NULL, dob.data() + 1, xb.data() + 1, wb.data() + 1, sb.data(), N,
                                C, &err) == 0);
    CHECK(memcmp(da.data(), db.data() + 1, len * 4) == 0);
    std::vector<float> dw = dx0;
    rmsnorm_backward(dw.data(), NULL, dout.data(), xw.data(), w.data(), rw.data(), N, C);
    CHECK(max_rel(da, dw) <= F32);
}

static void test_dropout(void) {
    const int N = 19, C = 203;  // an odd width: the groups' tails
    const float p = 0.1f;
    vet_err err;
    std::vector<float> x = rnd((size_t)N * C), want(x.size()), got(x.size(), NAN);
    dropout_forward(want.data(), x.data(), p, 0x5eed, 37, N, C);
    CHECK(dropout_forward_cuda(ctx, got.data(), x.data(), p, 0x5eed, 37, N, C, &err) == 0);
    CHECK(same_bits(got, want));
    std::vector<float> d = rnd(x.size()), dw = d;
    dropout_backward(dw.data(), x.data(), p, 0x5eed, 37, N, C);
    CHECK(dropout_backward_cuda(ctx, d.data(), x.data(), p, 0x5eed, 37, N, C, &err) == 0);
    CHECK(same_bits(d, dw));
}

static void test_crossentropy(void) {
    const int n = 6, V = 1000;
    vet_err err;
    std::vector<float> z = rnd((size_t)n * V), zw = z, loss(n, NAN), lw(n);
    std::vector<int32_t> tgt{3, 999, -1, 0, 500, 3};
    crossentropy_softmax_backward_inplace(zw.data(), lw.data(), tgt.data(), n, V);
    CHECK(crossentropy_softmax_backward_inplace_cuda(ctx, z.data(), loss.data(), tgt.data(), n, V, &err) == 0);
    CHECK(max_rel(loss, lw) <= F32 && max_rel(z, zw) <= F32);
}

int main(void) {
    RUN(test_conversions_and_embeddings);
    RUN(test_swiglu_add_scale_adamw);
    RUN(test_rmsnorm);
    RUN(test_rmsnorm_wide);
    RUN(test_wide_conversions);
    RUN(test_wide_swiglu_add);
    RUN(test_dropout);
    RUN(test_crossentropy);
    CHECK_EXIT();
}
