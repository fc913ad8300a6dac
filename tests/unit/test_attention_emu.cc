// test_attention_emu.cc — the register attention's kernels run on the CPU (tests/unit/simt_emu.h:
// a block's threads as fibers, ldmatrix and mma.sync replayed from the PTX ISA), through
// attention_mma.cu's host side (attention_mma_forward / _backward, which pick the kernels), their
// outputs against the CPU replay of their arithmetic (lib/model/ops_attention_bf16.c) at
// op_parity's tolerances: the pipelined kernels (attention_pipe.cu, the default), the
// synchronous ldmatrix ones, the transposed-tile ones (the first lease's) and the element-load
// ones (attention_mma.cu), forward, dq and dk/dv, with written and accumulated gradients. Packed rows of random samples,
// padding, GQA, and samples long enough that whole tiles (the unmasked path) run beside masked
// ones; head widths 40 (padded to 64) and 128. The pipelined and synchronous kernels share their
// tile code and tile order, so their outputs must be equal bit for bit.
//
// Also attention.cu's fp32 kernels through their host functions. Built with the C++ compiler
// and -DVET_SIMT_EMU where the CUDA toolkit's headers are (as the .cu unit tests); no GPU is
// needed.
#include "simt_emu.h"

#include "kernels/attention.cu"
#undef MAXD  // attention.cu's own names, not the other files' (one translation unit here)
#undef NPL
#undef TILE
#undef NWARPS
#undef QPW
#undef KPW
#undef BQ
#undef BKEY
#include "kernels/attention_mma.cu"
#include "kernels/attention_pipe.cu"

#include <stdlib.h>

#include "emu_check.h"

extern "C" {
#include "model/ops.h"
}

struct problem {
    int B, T, H, KVH, hd, maxlen;
    std::vector<int32_t> seg, start, end;
    std::vector<float> q, k, v, dout;                    // fp32, as the replay takes them
    std::vector<__nv_bfloat16> q16, k16, v16, dout16;  // rounded, as training stores them
    std::vector<float> out, lse, D, dq, dk, dv;          // the replay's
};

static std::vector<__nv_bfloat16> rounded(const std::vector<float> &x) {
    std::vector<__nv_bfloat16> r(x.size());
    for (size_t i = 0; i < x.size(); i++) r[i] = __float2bfloat16_rn(x[i]);
    return r;
}

static problem shape(int B, int T, int H, int KVH, int hd, int maxlen) {
    problem p;
    p.B = B, p.T = T, p.H = H, p.KVH = KVH, p.hd = hd, p.maxlen = maxlen;
    return p;
}

static void make(problem &p) {
    const int N = p.B * p.T;
    p.seg.assign(N, -1);
    for (int b = 0; b < p.B; b++) {  // odd rows end in padding
        int fill = b % 2 ? p.T - irand(p.T / 3 + 1) : p.T, i = 0, id = 0;
        while (i < fill) {
            int len = 1 + irand(p.maxlen);
            for (int n = 0; n < len && i < fill; n++, i++) p.seg[b * p.T + i] = id;
            id++;
        }
    }
    p.start.resize(N), p.end.resize(N);
    for (int b = 0; b < p.B; b++)
        for (int i = 0; i < p.T; i++)
            seg_bounds_at(&p.seg[b * p.T], p.T, i, &p.start[b * p.T + i], &p.end[b * p.T + i]);
    const size_t nq = (size_t)N * p.H * p.hd, nk = (size_t)N * p.KVH * p.hd, nl = (size_t)N * p.H;
    p.q = rnd(nq), p.k = rnd(nk), p.v = rnd(nk), p.dout = rnd(nq);
    p.q16 = rounded(p.q), p.k16 = rounded(p.k), p.v16 = rounded(p.v), p.dout16 = rounded(p.dout);
    p.out.resize(nq), p.lse.resize(nl), p.D.resize(nl);
    attention_forward_bf16(p.out.data(), p.lse.data(), p.q.data(), p.k.data(), p.v.data(), p.seg.data(), p.B, p.T,
                           p.H, p.KVH, p.hd, VET_ATTN_TC_TILE);
    for (size_t r = 0; r < nl; r++) {  // D = rowsum(dout * out), fp32 values, as the replay
        double s = 0;
        for (int d = 0; d < p.hd; d++) s += (double)p.dout[r * p.hd + d] * p.out[r * p.hd + d];
        p.D[r] = (float)s;
    }
    p.dq.assign(nq, 0.0f), p.dk.assign(nk, 0.0f), p.dv.assign(nk, 0.0f);
    attention_backward_bf16(p.dq.data(), p.dk.data(), p.dv.data(), p.dout.data(), p.q.data(), p.k.data(),
                            p.v.data(), p.out.data(), p.lse.data(), p.seg.data(), p.B, p.T, p.H, p.KVH, p.hd);
}

// One kind of kernel, run through the emulator: the forward's out and lse; dq, dk, dv written
// (accumulate 0, over NaN-filled buffers) from the replay's out and lse.
struct result {
    std::vector<float> out, lse, dq, dk, dv;
    std::vector<uint16_t> out16;  // the forward again, its output in bf16 (training's att16)
};

// The kernels attention_mma.cu's host side picks (attention_mma_set_variant's switches, as
// attention_tc_variant sets them for op_parity): the pipelined default, the synchronous ldmatrix
// ones, the transposed-tile ones, and the element-at-a-time loads.
enum kind { PIPE, SYNC, TRANSPOSED, SCALAR };

static result run(const problem &p, kind kd) {
    const int N = p.B * p.T;
    const size_t nq = (size_t)N * p.H * p.hd, nk = (size_t)N * p.KVH * p.hd;
    const uint16_t *q = (const uint16_t *)p.q16.data(), *k = (const uint16_t *)p.k16.data(),
                   *v = (const uint16_t *)p.v16.data(), *dO = (const uint16_t *)p.dout16.data();
    result r;
    r.out.assign(nq, NAN), r.lse.assign((size_t)N * p.H, NAN);
    r.dq.assign(nq, NAN), r.dk.assign(nk, NAN), r.dv.assign(nk, NAN);
    vet_err err;
    attention_mma_set_variant(kd == SCALAR, kd == TRANSPOSED, kd == SYNC);
    CHECK(attention_mma_forward(ctx, attn_out{r.out.data(), nullptr}, r.lse.data(), q, k, v, p.start.data(), p.B, p.T,
                                p.H, p.KVH, p.hd, &err) == 0);
    r.out16.assign(nq, 0xffff);
    std::vector<float> lse16(r.lse.size(), NAN);
    CHECK(attention_mma_forward(ctx, attn_out{nullptr, r.out16.data()}, lse16.data(), q, k, v, p.start.data(), p.B,
                                p.T, p.H, p.KVH, p.hd, &err) == 0);
    CHECK(same_bits(lse16, r.lse));
    CHECK(attention_mma_backward(ctx, r.dq.data(), r.dk.data(), r.dv.data(), dO, q, k, v, p.lse.data(), p.D.data(),
                                 p.start.data(), p.end.data(), p.B, p.T, p.H, p.KVH, p.hd, 0, &err) == 0);
    attention_mma_set_variant(0, 0, 0);
    return r;
}

// The bf16 output: the fp32 output rounded to nearest even, bit for bit.
static bool out16_is_rounded(const result &r) {
    for (size_t i = 0; i < r.out.size(); i++)
        if (r.out16[i] != __bfloat16_as_ushort(__float2bfloat16_rn(r.out[i]))) return false;
    return true;
}

static void check_close(const char *what, const result &r, const problem &p) {
    double e_out = max_rel(r.out, p.out), e_lse = max_rel(r.lse, p.lse), e_dq = max_rel(r.dq, p.dq),
           e_dk = max_rel(r.dk, p.dk), e_dv = max_rel(r.dv, p.dv);
    printf("# %s hd=%d: max rel err out %.2g lse %.2g dq %.2g dk %.2g dv %.2g\n", what, p.hd, e_out, e_lse, e_dq,
           e_dk, e_dv);
    CHECK(e_out <= 4e-3);  // op_parity's tolerances against the replay
    CHECK(e_lse <= 1e-4);
    CHECK(e_dq <= 4e-3);
    CHECK(e_dk <= 4e-3);
    CHECK(e_dv <= 4e-3);
    CHECK(out16_is_rounded(r));
}

// Every kernel kind at one width (the transposed and element-load ones, which share less code
// with the default, only where `all` is set, to keep the emulation's seconds down).
static void check_problem(problem &p, bool all) {
    make(p);
    result pipe = run(p, PIPE), sync = run(p, SYNC);
    check_close("pipelined", pipe, p);
    check_close("synchronous", sync, p);
    CHECK(same_bits(pipe.out, sync.out) && same_bits(pipe.lse, sync.lse));  // one tile code, one order
    CHECK(same_bits(pipe.dq, sync.dq) && same_bits(pipe.dk, sync.dk) && same_bits(pipe.dv, sync.dv));
    if (!all) return;
    check_close("transposed", run(p, TRANSPOSED), p);
    result scalar = run(p, SCALAR);  // the synchronous kernels with element loads: their bits
    check_close("element loads", scalar, p);
    CHECK(same_bits(scalar.out, sync.out) && same_bits(scalar.dq, sync.dq) && same_bits(scalar.dk, sync.dk));
}

// Head width 40 (padded to 64, KC 4), 2 query heads on 1 kv head, 2 rows of 150 with samples
// up to 120 positions (whole tiles and masked ones, padding at the end of row 1).
static void test_hd40(void) {
    problem p = shape(2, 150, 2, 1, 40, 120);
    check_problem(p, true);
}

// Head width 128 (KC 8, the 7B shape), 2 query heads on 1 kv head, a row of 130 with samples up
// to 130 positions.
static void test_hd128(void) {
    problem p = shape(1, 130, 2, 1, 128, 130);
    check_problem(p, false);
}

// Accumulating gradients (accumulate 1, as a caller that adds into dq, dk, dv): the default
// (pipelined) kernels add to what is there, the replay's sum over the same starting values.
static void test_accumulate(void) {
    problem p = shape(1, 100, 2, 2, 40, 100);
    make(p);
    const int T = p.T, H = p.H, KVH = p.KVH, hd = p.hd;
    std::vector<float> dq = rnd(p.dq.size()), dk = rnd(p.dk.size()), dv = rnd(p.dv.size());
    std::vector<float> wq = dq, wk = dk, wv = dv;
    attention_backward_bf16(wq.data(), wk.data(), wv.data(), p.dout.data(), p.q.data(), p.k.data(), p.v.data(),
                            p.out.data(), p.lse.data(), p.seg.data(), 1, T, H, KVH, hd);
    vet_err err;
    CHECK(attention_mma_backward(ctx, dq.data(), dk.data(), dv.data(), (const uint16_t *)p.dout16.data(),
                                 (const uint16_t *)p.q16.data(), (const uint16_t *)p.k16.data(),
                                 (const uint16_t *)p.v16.data(), p.lse.data(), p.D.data(), p.start.data(),
                                 p.end.data(), 1, T, H, KVH, hd, 1, &err) == 0);
    CHECK(max_rel(dq, wq) <= 4e-3);
    CHECK(max_rel(dk, wk) <= 4e-3);
    CHECK(max_rel(dv, wv) <= 4e-3);
}

// The fp32 kernels (attention.cu: the fp32 path, and the bundle's last fallback) as training
// calls them (attention_forward_cuda, attention_backward_cuda: the sample bounds and D = rowsum
// (dout out) by their kernels into the scratch, then the attention's), against the exact CPU op
// at op_parity's tolerance (1e-5: only the order of fp32 sums differs).
static void test_fp32_kernels(void) {
    problem p = shape(2, 70, 2, 1, 40, 50);
    make(p);
    const int N = p.B * p.T;
    const size_t nq = (size_t)N * p.H * p.hd, nk = (size_t)N * p.KVH * p.hd, nl = (size_t)N * p.H;
    std::vector<float> out(nq), lse(nl), want_out(nq), want_lse(nl);
    std::vector<float> dq(nq, NAN), dk(nk, NAN), dv(nk, NAN), wq(nq, 0.0f), wk(nk, 0.0f), wv(nk, 0.0f);
    std::vector<unsigned char> scratch(attention_scratch_bytes(p.B, p.T, p.H));
    vet_err err;
    attention_forward(want_out.data(), want_lse.data(), p.q.data(), p.k.data(), p.v.data(), p.seg.data(), p.B, p.T,
                      p.H, p.KVH, p.hd);
    CHECK(attention_forward_cuda(ctx, out.data(), lse.data(), p.q.data(), p.k.data(), p.v.data(), p.seg.data(), p.B,
                                 p.T, p.H, p.KVH, p.hd, scratch.data(), &err) == 0);
    CHECK(max_rel(out, want_out) <= 1e-5);
    CHECK(max_rel(lse, want_lse) <= 1e-5);
    attention_backward(wq.data(), wk.data(), wv.data(), p.dout.data(), p.q.data(), p.k.data(), p.v.data(),
                       want_out.data(), want_lse.data(), p.seg.data(), p.B, p.T, p.H, p.KVH, p.hd);
    CHECK(attention_backward_cuda(ctx, dq.data(), dk.data(), dv.data(), p.dout.data(), p.q.data(), p.k.data(),
                                  p.v.data(), want_out.data(), want_lse.data(), p.seg.data(), p.B, p.T, p.H, p.KVH,
                                  p.hd, 0, scratch.data(), &err) == 0);
    printf("# fp32 kernels: max rel err out %.2g lse %.2g dq %.2g dk %.2g dv %.2g\n", max_rel(out, want_out),
           max_rel(lse, want_lse), max_rel(dq, wq), max_rel(dk, wk), max_rel(dv, wv));
    CHECK(max_rel(dq, wq) <= 1e-5);
    CHECK(max_rel(dk, wk) <= 1e-5);
    CHECK(max_rel(dv, wv) <= 1e-5);
}

// D = rowsum(dout * out) from the output in bf16 (attention_prepare's kernel, as the backward
// runs it with training's att16): the sums of the widened values, within fp32's rounding.
static void test_delta_from_bf16(void) {
    problem p = shape(2, 40, 3, 1, 40, 30);
    make(p);
    const size_t nl = (size_t)p.B * p.T * p.H, nq = nl * p.hd;
    std::vector<uint16_t> out16(nq);
    std::vector<float> want(nl), got(nl);
    for (size_t i = 0; i < nq; i++) out16[i] = __bfloat16_as_ushort(__float2bfloat16_rn(p.out[i]));
    for (size_t r = 0; r < nl; r++) {
        double s = 0;
        for (int d = 0; d < p.hd; d++)
            s += (double)p.dout[r * p.hd + d] * __bfloat162float(__ushort_as_bfloat16(out16[r * p.hd + d]));
        want[r] = (float)s;
    }
    std::vector<unsigned char> scratch(attention_scratch_bytes(p.B, p.T, p.H));
    attention_scratch sc = {};
    vet_err err;
    CHECK(attention_prepare(ctx, p.seg.data(), p.dout.data(), attn_in{nullptr, out16.data()}, p.B, p.T, p.H, p.KVH,
                            p.hd, scratch.data(), &sc, &err) == 0);
    memcpy(got.data(), sc.D, nl * sizeof(float));
    printf("# D from the bf16 output: max rel err %.2g\n", max_rel(got, want));
    CHECK(max_rel(got, want) <= 1e-6);
    CHECK(max_rel(got, p.D) > 0);  // not the fp32 output's D: the rounding shows
}

int main(void) {
    RUN(test_fp32_kernels);
    RUN(test_delta_from_bf16);
    RUN(test_hd40);
    RUN(test_hd128);
    RUN(test_accumulate);
    CHECK_EXIT();
}
