// test_lora_emu.cc — kernels/lora.cu as training calls it (its host functions, their grids and
// its kernels) on the CPU emulator (tests/unit/simt_emu.h), against the CPU's dropout and BLAS:
// the down product with dropout inside, and without (p = 0), its first kernel (variant 1) bit for
// bit; dA += du^T dropout(x) in row slices, with and without dropout; dinp += mask (du A); the
// backward's products through B (du = s dout B, dB += s dout^T u); the up product (lora_up); and
// the 16-bit entries (lora_up16 too) against their fp32 twins on the widened values, bit for bit; and
// kernels/lora_mma.cu's tensor-core entries (bf16 and fp16) against the CPU's products on the
// operands rounded as they round them.
// Ranks 4, 16 and 32 (each template), widths 200 (16-byte paths) and 203 (element paths), 40
// rows (tails of every row tiling, several slices). Tolerance 1e-5 of the largest value, as
// op_parity's: only the order of fp32 sums differs from BLAS.
#include "simt_emu.h"


#include "kernels/lora.cu"
#include "kernels/lora_mma.cu"

#include <stdlib.h>

#include "emu_check.h"

extern "C" {
#include "base/half.h"
#include "model/ops.h"
}

#define TOL 1e-5
#define OK(call) CHECK((call) == 0)

static void one_shape(int N, int C, int r) {
    const float p = 0.1f, s = 2.0f;
    const uint64_t seed = 0x5eedu;
    const int64_t row0 = 37;
    vet_err err;
    const size_t nx = (size_t)N * C, na = (size_t)r * C, nu = (size_t)N * r;
    std::vector<float> x = rnd(nx), A = rnd(na), du = rnd(nu), B = rnd(na), dout = rnd(nx), u = rnd(nu);
    std::vector<float> xd(nx), want(nu), got(nu, NAN);
    std::vector<float> scratch(lora_grad_a_scratch_floats(N, C, r) + 1);

    // u = dropout(x) A^T, and without dropout
    dropout_forward(xd.data(), x.data(), p, seed, row0, N, C);
    matmul_forward(want.data(), xd.data(), A.data(), NULL, N, C, r);
    OK(lora_down_dropout_cuda(ctx, got.data(), x.data(), A.data(), p, seed, row0, N, C, r, &err));
    CHECK(max_rel(got, want) <= TOL);
    std::vector<float> staged(nu, NAN);
    lora_down_variant(1);
    OK(lora_down_dropout_cuda(ctx, staged.data(), x.data(), A.data(), p, seed, row0, N, C, r, &err));
    lora_down_variant(0);
    CHECK(!memcmp(staged.data(), got.data(), nu * sizeof(float)));  // the same bits
    matmul_forward(want.data(), x.data(), A.data(), NULL, N, C, r);
    OK(lora_down_dropout_cuda(ctx, got.data(), x.data(), A.data(), 0.0f, seed, row0, N, C, r, &err));
    CHECK(max_rel(got, want) <= TOL);

    // dA += du^T dropout(x), and without dropout
    for (float pp : {p, 0.0f}) {
        std::vector<float> dA = rnd(na), wantA = dA;
        dropout_forward(xd.data(), x.data(), pp, seed, row0, N, C);
        vet_sgemm(1, 0, r, C, N, 1.0f, du.data(), r, xd.data(), C, 1.0f, wantA.data(), C);
        OK(lora_grad_a_dropout_cuda(ctx, dA.data(), du.data(), x.data(), pp, seed, row0, N, C, r, scratch.data(),
                                    scratch.size(), &err));
        CHECK(max_rel(dA, wantA) <= TOL);
    }

    // dinp += mask / (1 - p) (du A)
    {
        std::vector<float> dinp = rnd(nx), wantx = dinp, t(nx);
        vet_sgemm(0, 0, N, C, r, 1.0f, du.data(), r, A.data(), C, 0.0f, t.data(), C);
        dropout_backward(wantx.data(), t.data(), p, seed, row0, N, C);
        OK(lora_grad_input_dropout_cuda(ctx, dinp.data(), du.data(), A.data(), p, seed, row0, N, C, r, &err));
        CHECK(max_rel(dinp, wantx) <= TOL);
    }

    // du = s dout B (B: C x r), dB += s dout^T u
    vet_sgemm(0, 0, N, r, C, s, dout.data(), C, B.data(), r, 0.0f, want.data(), r);
    OK(lora_du_cuda(ctx, got.data(), dout.data(), B.data(), s, N, C, r, &err));
    CHECK(max_rel(got, want) <= TOL);
    {
        std::vector<float> dB = rnd(na), wantB = dB;
        vet_sgemm(1, 0, C, r, N, s, dout.data(), C, u.data(), r, 1.0f, wantB.data(), r);
        OK(lora_grad_b_cuda(ctx, dB.data(), dout.data(), u.data(), s, N, C, r, scratch.data(), scratch.size(), &err));
        CHECK(max_rel(dB, wantB) <= TOL);
    }

    // y += s u B^T
    {
        std::vector<float> y = rnd(nx), wanty = y;
        vet_sgemm(0, 1, N, C, r, s, u.data(), r, B.data(), r, 1.0f, wanty.data(), C);
        OK(lora_up_cuda(ctx, y.data(), u.data(), B.data(), s, N, C, r, &err));
        CHECK(max_rel(y, wanty) <= TOL);
    }
}

// The 16-bit entries (x, dout in bf16 or fp16) give their fp32 twins' bits on the widened values.
static void one_shape16(int N, int C, int r, int fmt, float p) {
    const uint64_t seed = 0x5eedu;
    const int64_t row0 = 37;
    vet_err err;
    const size_t nx = (size_t)N * C, na = (size_t)r * C, nu = (size_t)N * r;
    std::vector<float> x = rnd(nx), A = rnd(na), du = rnd(nu), xw(nx);
    std::vector<uint16_t> x16(nx);
    for (size_t i = 0; i < nx; i++) {
        x16[i] = fmt == VET_CUDA_F16 ? vet_f32_to_f16(x[i]) : vet_f32_to_bf16(x[i]);
        xw[i] = fmt == VET_CUDA_F16 ? vet_f16_to_f32(x16[i]) : vet_bf16_to_f32(x16[i]);
    }
    std::vector<float> scratch(lora_grad_a_scratch_floats(N, C, r) + 1);
    std::vector<float> want(na > nu ? na : nu, 0.0f), got(want.size(), 0.0f);
    const size_t bu = nu * sizeof(float), ba = na * sizeof(float);
    OK(lora_down_dropout_cuda(ctx, want.data(), xw.data(), A.data(), p, seed, row0, N, C, r, &err));
    OK(lora_down_dropout16_cuda(ctx, got.data(), x16.data(), fmt, A.data(), p, seed, row0, N, C, r, &err));
    CHECK(!memcmp(got.data(), want.data(), bu));
    std::fill(want.begin(), want.end(), 0.0f), std::fill(got.begin(), got.end(), 0.0f);
    OK(lora_grad_a_dropout_cuda(ctx, want.data(), du.data(), xw.data(), p, seed, row0, N, C, r, scratch.data(),
                                scratch.size(), &err));
    OK(lora_grad_a_dropout16_cuda(ctx, got.data(), du.data(), x16.data(), fmt, p, seed, row0, N, C, r,
                                  scratch.data(), scratch.size(), &err));
    CHECK(!memcmp(got.data(), want.data(), ba));
    OK(lora_du_cuda(ctx, want.data(), xw.data(), A.data(), 2.0f, N, C, r, &err));
    OK(lora_du16_cuda(ctx, got.data(), x16.data(), fmt, A.data(), 2.0f, N, C, r, &err));
    CHECK(!memcmp(got.data(), want.data(), bu));
    std::fill(want.begin(), want.end(), 0.0f), std::fill(got.begin(), got.end(), 0.0f);
    OK(lora_grad_b_cuda(ctx, want.data(), xw.data(), du.data(), 2.0f, N, C, r, scratch.data(), scratch.size(), &err));
    OK(lora_grad_b16_cuda(ctx, got.data(), x16.data(), fmt, du.data(), 2.0f, N, C, r, scratch.data(), scratch.size(),
                          &err));
    CHECK(!memcmp(got.data(), want.data(), ba));
    CHECK(lora_du16_cuda(ctx, got.data(), x16.data(), 3, A.data(), 2.0f, N, C, r, &err) < 0);
    CHECK(strstr(err.msg, "lora_du16: format 3 is neither bf16") != NULL);
    // y (x's 16-bit values as y) += s du A^T's shape: lora_up on the widened y, then rounded
    std::vector<float> yw = xw;
    std::vector<uint16_t> y16 = x16, want16(nx);
    OK(lora_up_cuda(ctx, yw.data(), du.data(), A.data(), 2.0f, N, C, r, &err));  // A (r x C) read as B (C x r)
    for (size_t i = 0; i < nx; i++) want16[i] = fmt == VET_CUDA_F16 ? vet_f32_to_f16(yw[i]) : vet_f32_to_bf16(yw[i]);
    OK(lora_up16_cuda(ctx, y16.data(), fmt, du.data(), A.data(), 2.0f, N, C, r, &err));
    CHECK(y16 == want16);
}

// The tensor-core entries: each product within 1e-5 of the CPU's on the operands rounded to fmt
// (x after its dropout, A, B, du, u): only the order of fp32 sums differs.
static float rounded(float v, int fmt) {
    return fmt == VET_CUDA_F16 ? vet_f16_to_f32(vet_f32_to_f16(v)) : vet_bf16_to_f32(vet_f32_to_bf16(v));
}
static void one_shape_mma(int N, int C, int r, int fmt, float p) {
    const uint64_t seed = 0x5eedu;
    const int64_t row0 = 37;
    vet_err err;
    const size_t nx = (size_t)N * C, na = (size_t)r * C, nu = (size_t)N * r;
    std::vector<float> x = rnd(nx), A = rnd(na), du = rnd(nu), xw(nx), xd(nx), Ar(na), dur(nu);
    std::vector<uint16_t> x16(nx);
    for (size_t i = 0; i < nx; i++) {
        x16[i] = fmt == VET_CUDA_F16 ? vet_f32_to_f16(x[i]) : vet_f32_to_bf16(x[i]);
        xw[i] = fmt == VET_CUDA_F16 ? vet_f16_to_f32(x16[i]) : vet_bf16_to_f32(x16[i]);
    }
    dropout_forward(xd.data(), xw.data(), p, seed, row0, N, C);
    for (float &v : xd) v = rounded(v, fmt);
    for (size_t i = 0; i < na; i++) Ar[i] = rounded(A[i], fmt);
    for (size_t i = 0; i < nu; i++) dur[i] = rounded(du[i], fmt);
    std::vector<float> scratch(lora_grad_a_scratch_floats(N, C, r) + 1), want(nu), got(nu, NAN);
    matmul_forward(want.data(), xd.data(), Ar.data(), NULL, N, C, r);
    OK(lora_down_mma_cuda(ctx, got.data(), x16.data(), fmt, A.data(), p, seed, row0, N, C, r, &err));
    CHECK(max_rel(got, want) <= TOL);
    vet_sgemm(0, 0, N, r, C, 2.0f, xw.data(), C, Ar.data(), r, 0.0f, want.data(), r);  // A's values as B (C x r)
    OK(lora_du_mma_cuda(ctx, got.data(), x16.data(), fmt, A.data(), 2.0f, N, C, r, &err));
    CHECK(max_rel(got, want) <= TOL);
    std::vector<float> dA = rnd(na), wantA = dA, dB = rnd(na), wantB = dB;
    vet_sgemm(1, 0, r, C, N, 1.0f, dur.data(), r, xd.data(), C, 1.0f, wantA.data(), C);
    OK(lora_grad_a_mma_cuda(ctx, dA.data(), du.data(), x16.data(), fmt, p, seed, row0, N, C, r, scratch.data(),
                            scratch.size(), &err));
    CHECK(max_rel(dA, wantA) <= TOL);
    vet_sgemm(1, 0, C, r, N, 2.0f, xw.data(), C, dur.data(), r, 1.0f, wantB.data(), r);
    OK(lora_grad_b_mma_cuda(ctx, dB.data(), x16.data(), fmt, du.data(), 2.0f, N, C, r, scratch.data(),
                            scratch.size(), &err));
    CHECK(max_rel(dB, wantB) <= TOL);
}

static void test_tensor_cores(void) {
    for (int C : {200, 203})
        for (int r : {4, 16, 32}) {
            one_shape_mma(40, C, r, VET_CUDA_BF16, 0.1f);
            one_shape_mma(40, C, r, VET_CUDA_BF16, 0.0f);
            one_shape_mma(40, C, r, VET_CUDA_F16, 0.1f);
        }
    one_shape_mma(20, 200, 16, VET_CUDA_BF16, 0.1f);  // one row slice: summed straight into dA and dB
    vet_err err;
    std::vector<float> u(16 * 4);
    std::vector<uint16_t> x(16 * 4);
    CHECK(lora_down_mma_cuda(ctx, u.data(), x.data(), 3, u.data(), 0.1f, 1, 0, 4, 16, 4, &err) < 0);
    CHECK(strstr(err.msg, "lora_down_mma: format 3 is neither bf16") != NULL);
    CHECK(lora_du_mma_cuda(ctx, u.data(), x.data(), VET_CUDA_BF16, u.data(), 1.0f, 4, 16, 33, &err) < 0);
    CHECK(strstr(err.msg, "lora_du_mma: rank 33 outside 1..32") != NULL);
    std::vector<float> dA(16 * 200), du(70 * 16), scratch(8);
    std::vector<uint16_t> x70(70 * 200);
    CHECK(lora_grad_a_mma_cuda(ctx, dA.data(), du.data(), x70.data(), VET_CUDA_BF16, 0.1f, 1, 0, 70, 200, 16,
                               scratch.data(), scratch.size(), &err) < 0);
    CHECK(strstr(err.msg, "lora_grad_a_mma: scratch of 8 floats, needs") != NULL);
}

static void test_16bit_inputs(void) {
    for (int C : {200, 203})
        for (int r : {4, 16, 32}) {
            one_shape16(40, C, r, VET_CUDA_BF16, 0.1f);
            one_shape16(40, C, r, VET_CUDA_F16, 0.0f);
        }
}

static void test_ranks_and_widths(void) {
    for (int C : {200, 203})
        for (int r : {4, 16, 32}) one_shape(40, C, r);
}

// A short scratch is refused with the sizes, not overrun.
static void test_short_scratch(void) {
    std::vector<float> dB(200 * 16), dout(70 * 200), u(70 * 16), scratch(8);
    vet_err err;
    CHECK(lora_grad_b_cuda(ctx, dB.data(), dout.data(), u.data(), 1.0f, 70, 200, 16, scratch.data(), scratch.size(),
                           &err) < 0);
    CHECK(strstr(err.msg, "lora_grad_b: scratch of 8 floats, needs") != NULL);
}

// Dropout outside what each product takes is refused with the range, not run: the down product
// and dA take p = 0 (no mask), the input gradient does not (its caller uses cuBLAS then).
static void test_refusals(void) {
    std::vector<float> u(16), x(64), A(64);
    vet_err err;
    CHECK(lora_down_dropout_cuda(ctx, u.data(), x.data(), A.data(), -0.1f, 1, 0, 4, 16, 4, &err) < 0);
    CHECK(strstr(err.msg, "lora_down_dropout: dropout -0.1 outside [0, 1)") != NULL);
    CHECK(lora_down_dropout_cuda(ctx, u.data(), x.data(), A.data(), 1.0f, 1, 0, 4, 16, 4, &err) < 0);
    CHECK(lora_grad_input_dropout_cuda(ctx, x.data(), u.data(), A.data(), 0.0f, 1, 0, 4, 16, 4, &err) < 0);
    CHECK(strstr(err.msg, "lora_grad_input_dropout: dropout 0 outside (0, 1)") != NULL);
    CHECK(lora_du_cuda(ctx, u.data(), x.data(), A.data(), 1.0f, 4, 16, 33, &err) < 0);
    CHECK(strstr(err.msg, "lora_du: rank 33 outside 1..32 (use cuBLAS)") != NULL);
}

int main(void) {
    RUN(test_ranks_and_widths);
    RUN(test_16bit_inputs);
    RUN(test_tensor_cores);
    RUN(test_short_scratch);
    RUN(test_refusals);
    CHECK_EXIT();
}
