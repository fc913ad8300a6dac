// attention_cudnn.cc — cuDNN's fused attention (NVIDIA's flash attention on tensor cores) for
// training's packed rows, through cuDNN's frontend: the twin of vet's own tensor-core kernels
// (attention_pipe.cu, attention_mma.cu) that a device lease times against them
// (VET_GPU_ATTENTION=cudnn; op_parity's `attention_*_cudnn` rows; docs/cuda.md "cuDNN's
// attention").
//
// Why a twin and not a replacement: the first lease measured vet's attention at 128 ms of a
// ~420 ms 7B step, where the arithmetic needs a few ms; cuDNN's kernels are NVIDIA's own, tuned
// per architecture. But they cannot be checked without a GPU (the CPU emulator runs vet's kernels,
// not cuDNN's), their backward with a mask is not deterministic, and cuDNN may be missing on a
// machine: so vet's kernels stay the default and the reference, and this path is chosen by a
// lease's figures.
//
// The mapping: cuDNN's attention takes one causal sequence a batch row; a packed row holds
// several samples. A bias mask (B,1,T,T), 0 inside a query's own sample and far negative outside
// (attention_cudnn_passes.cu), on top of cuDNN's causal mask, makes each sample see only itself.
// q, k, v, the output and dout are read where training keeps them, (B,T,heads,hd) in bf16:
// cuDNN's BSHD strides, no copy. Its 16-bit dq, dk, dv go to buffers of this file and are
// widened into vet's fp32 gradients (written or added), padding rows 0.
//
// Host code only (its kernels are in attention_cudnn_passes.cu), so the C++ compiler builds it,
// not nvcc: cuDNN's frontend is heavy C++, and nvcc would parse it once more for each GPU
// architecture (4 minutes a build where g++ takes 1.5).
//
// cuDNN is loaded when first asked for, as cuBLAS is (cublas.cu): dlopen of libcudnn.so.MAJOR
// (the frontend's dynamic loading: cudnn_frontend::cudnn_dlhandle), so a program that never
// asks does not map it and a machine without it runs everything else. Graphs are built once a
// shape (heuristics mode A) and kept for the process. The frontend throws C++ exceptions on some
// failures: every call into it is inside try, and each failure is an error with cuDNN's reason.
#include "attention_cudnn.h"

#include <cuda_runtime.h>

#if VET_CUDNN_FE

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cudnn_frontend.h>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>

namespace cudnn_frontend {
void *cudnn_dlhandle = nullptr;  // what the frontend's dynamic loading calls through (set below)
}
namespace fe = cudnn_frontend;

#define VET_CUDNN_STR2(x) #x
#define VET_CUDNN_STR(x) VET_CUDNN_STR2(x)

// As common.cuh's CUDA_TRY (that header is nvcc's): -1 from the calling function, the call named.
#define CUDNN_CUDA_TRY(call, err)                                                                \
    do {                                                                                        \
        cudaError_t e_ = (call);                                                                \
        if (e_ != cudaSuccess)                                                                  \
            return vet_errf((err), "%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
    } while (0)

namespace {

enum : int64_t { UID_Q = 1, UID_K, UID_V, UID_O, UID_STATS, UID_BIAS, UID_DO, UID_DQ, UID_DK, UID_DV };

typedef std::tuple<int, int, int, int, int, int> shape_key;  // B, T, H, KVH, hd, backward

// A device buffer that grows to the largest size asked for and is kept for the process.
struct grow_buffer {
    void *p = nullptr;
    size_t bytes = 0;
    int ensure(size_t want, vet_err *err) {
        if (want <= bytes) return 0;
        if (p) cudaFree(p);
        p = nullptr, bytes = 0;
        CUDNN_CUDA_TRY(cudaMalloc(&p, want), err);
        bytes = want;
        return 0;
    }
};

struct cudnn_attention {
    std::mutex lock;
    bool tried = false;
    std::string why;  // why cuDNN is unavailable, once it has failed to load
    int dev = -1;     // the device the handle was made on
    cudnnHandle_t handle = nullptr;
    std::map<shape_key, std::shared_ptr<fe::graph::Graph>> graphs;
    grow_buffer workspace, bias, o16, dq16, dk16, dv16;
};
cudnn_attention S;

// Missing cuDNN, or a shape it has no kernel for, is a setting to change (another
// VET_GPU_ATTENTION): a usage error, as an unknown value of the variable is.
int unavailable(vet_err *err) { return vet_err_kindf(err, VET_E_USAGE, "cuDNN attention: %s", S.why.c_str()); }

// dlopen cuDNN, once (the frontend calls through fe::cudnn_dlhandle); 0 or -1 with S.why.
int cudnn_open_library(vet_err *err) {
    if (fe::cudnn_dlhandle) return 0;
    // The frontend calls the CUDA runtime through a dlopen of its own, taking libcudart.so.12 or
    // .13, whichever it finds first: name the one vet is linked with, so that both speak to one
    // runtime (a name the user set is left alone).
    char cudart[32];
    snprintf(cudart, sizeof cudart, "libcudart.so.%d", CUDART_VERSION / 1000);
    setenv("CUDNN_FRONTEND_CUDART_LIB_NAME", cudart, 0);
    const char *soname = "libcudnn.so." VET_CUDNN_STR(CUDNN_MAJOR);
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        S.why = std::string("cannot load ") + soname + ": " + (e ? e : "?") +
                " (put cuDNN's lib folder on LD_LIBRARY_PATH, or use another VET_GPU_ATTENTION)";
        return unavailable(err);
    }
    fe::cudnn_dlhandle = h;
    return 0;
}

// dlopen cuDNN and make the handle, once; later calls return what the first found.
int cudnn_load(vet_err *err) {
    int dev = -1;
    CUDNN_CUDA_TRY(cudaGetDevice(&dev), err);  // the context's (vet_cuda_new made it current)
    if (S.handle) {
        if (dev != S.dev)
            return vet_err_kindf(err, VET_E_USAGE, "cuDNN attention: its handle is for device %d, not %d", S.dev,
                                 dev);
        return 0;
    }
    if (S.tried) return unavailable(err);
    S.tried = true;
    if (cudnn_open_library(err) < 0) return -1;
    try {
        cudnnStatus_t st = fe::detail::create_handle(&S.handle);
        if (st != CUDNN_STATUS_SUCCESS) {
            S.handle = nullptr;
            S.why = std::string("cudnnCreate: ") + fe::detail::get_error_string(st);
            return unavailable(err);
        }
    } catch (const std::exception &e) {
        S.handle = nullptr;
        S.why = std::string("cudnnCreate: ") + e.what();
        return unavailable(err);
    }
    S.dev = dev;
    return 0;
}

// (rows, heads, hd) bf16 as cuDNN's (B, heads, T, hd) with BSHD strides: where training keeps it.
std::shared_ptr<fe::graph::Tensor_attributes> bshd(fe::graph::Graph &g, const char *name, int64_t uid, int B, int T,
                                                   int heads, int hd) {
    return g.tensor(fe::graph::Tensor_attributes()
                        .set_name(name)
                        .set_uid(uid)
                        .set_dim({B, heads, T, hd})
                        .set_stride({(int64_t)T * heads * hd, hd, (int64_t)heads * hd, 1}));
}
void set_bshd(fe::graph::Tensor_attributes &t, int64_t uid, int B, int T, int heads, int hd) {
    t.set_output(true).set_uid(uid).set_dim({B, heads, T, hd}).set_stride(
        {(int64_t)T * heads * hd, hd, (int64_t)heads * hd, 1});
}
std::shared_ptr<fe::graph::Tensor_attributes> stats_tensor(fe::graph::Graph &g, int B, int T, int H) {
    return g.tensor(fe::graph::Tensor_attributes()
                        .set_name("stats")
                        .set_uid(UID_STATS)
                        .set_dim({B, H, T, 1})
                        .set_stride({(int64_t)H * T, T, 1, 1})
                        .set_data_type(fe::DataType_t::FLOAT));
}
std::shared_ptr<fe::graph::Tensor_attributes> bias_tensor(fe::graph::Graph &g, int B, int T) {
    return g.tensor(fe::graph::Tensor_attributes()
                        .set_name("mask")
                        .set_uid(UID_BIAS)
                        .set_dim({B, 1, T, T})
                        .set_stride({(int64_t)T * T, (int64_t)T * T, T, 1}));
}

// The graph of one shape as vet asks it of cuDNN (not yet built): q, k, v in training's layout,
// the mask, causal, vet's scale; the forward with its statistics, the backward from them.
std::shared_ptr<fe::graph::Graph> describe(const shape_key &key) {
    const int B = std::get<0>(key), T = std::get<1>(key), H = std::get<2>(key), KVH = std::get<3>(key),
              hd = std::get<4>(key), backward = std::get<5>(key);
    const float scale = 1.0f / sqrtf((float)hd);  // vet's attention scale, as every kernel's
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    auto Q = bshd(*g, "q", UID_Q, B, T, H, hd), K = bshd(*g, "k", UID_K, B, T, KVH, hd),
         V = bshd(*g, "v", UID_V, B, T, KVH, hd);
    auto mask = bias_tensor(*g, B, T);
    if (!backward) {
        auto opts = fe::graph::SDPA_attributes()
                        .set_name("vet_attention")
                        .set_generate_stats(true)
                        .set_attn_scale(scale)
                        .set_bias(mask)
                        .set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT)
                        .set_diagonal_band_right_bound(0);  // causal
        auto [O, stats] = g->sdpa(Q, K, V, opts);
        set_bshd(*O, UID_O, B, T, H, hd);
        stats->set_output(true)
            .set_uid(UID_STATS)
            .set_dim({B, H, T, 1})
            .set_stride({(int64_t)H * T, T, 1, 1})
            .set_data_type(fe::DataType_t::FLOAT);
    } else {
        auto O = bshd(*g, "o", UID_O, B, T, H, hd), dO = bshd(*g, "do", UID_DO, B, T, H, hd);
        auto opts = fe::graph::SDPA_backward_attributes()
                        .set_name("vet_attention_backward")
                        .set_attn_scale(scale)
                        .set_bias(mask)
                        .set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT)
                        .set_diagonal_band_right_bound(0);
        auto [dQ, dK, dV] = g->sdpa_backward(Q, K, V, O, dO, stats_tensor(*g, B, T, H), opts);
        set_bshd(*dQ, UID_DQ, B, T, H, hd);
        set_bshd(*dK, UID_DK, B, T, KVH, hd);
        set_bshd(*dV, UID_DV, B, T, KVH, hd);
    }
    return g;
}

const char *direction(const shape_key &key) { return std::get<5>(key) ? "backward" : "forward"; }

// The graph of one shape, built (validated, lowered, planned for this device) on first use.
int graph_of(const shape_key &key, std::shared_ptr<fe::graph::Graph> *out, vet_err *err) {
    auto it = S.graphs.find(key);
    if (it != S.graphs.end()) return *out = it->second, 0;
    std::shared_ptr<fe::graph::Graph> g;
    try {
        g = describe(key);
        auto st = g->build(S.handle, {fe::HeurMode_t::A});
        if (!st.is_good())
            return vet_err_kindf(err, VET_E_USAGE, "cuDNN attention %s (B=%d T=%d H=%d KVH=%d hd=%d): %s",
                                 direction(key), std::get<0>(key), std::get<1>(key), std::get<2>(key),
                                 std::get<3>(key), std::get<4>(key), st.get_message().c_str());
    } catch (const std::exception &e) {
        return vet_errf(err, "cuDNN attention %s: %s", direction(key), e.what());
    }
    S.graphs[key] = g;
    *out = g;
    return 0;
}

// Runs g on ctx's stream with the tensors of pack and a workspace of the size it asks.
int run_graph(vet_cuda *ctx, fe::graph::Graph &g, std::unordered_map<int64_t, void *> &pack, vet_err *err) {
    try {
        int64_t ws = 0;
        auto st = g.get_workspace_size(ws);
        if (!st.is_good()) return vet_errf(err, "cuDNN attention: workspace size: %s", st.get_message().c_str());
        if (S.workspace.ensure(ws > 0 ? (size_t)ws : 1, err) < 0) return -1;
        cudnnStatus_t ss = fe::detail::set_stream(S.handle, (cudaStream_t)vet_cuda_stream(ctx));
        if (ss != CUDNN_STATUS_SUCCESS)
            return vet_errf(err, "cuDNN attention: cudnnSetStream: %s", fe::detail::get_error_string(ss));
        auto ran = g.execute(S.handle, pack, S.workspace.p);
        if (!ran.is_good()) return vet_errf(err, "cuDNN attention: execute: %s", ran.get_message().c_str());
    } catch (const std::exception &e) {
        return vet_errf(err, "cuDNN attention: %s", e.what());
    }
    return 0;
}

// The mask of this batch's samples into S.bias (rebuilt every call: 2 MB at 4 x 512, and the
// caller's rows change every step).
int build_mask(vet_cuda *ctx, const int32_t *start, int B, int T, vet_err *err) {
    if (S.bias.ensure((size_t)B * T * T * sizeof(uint16_t), err) < 0) return -1;
    return attention_cudnn_bias(ctx, (uint16_t *)S.bias.p, start, B, T, err);
}

}  // namespace

static int forward(vet_cuda *ctx, float *out32, uint16_t *out16, float *lse, const uint16_t *q, const uint16_t *k,
                   const uint16_t *v, const int32_t *start, int B, int T, int H, int KVH, int hd, vet_err *err) {
    std::lock_guard<std::mutex> hold(S.lock);
    if (cudnn_load(err) < 0) return -1;
    std::shared_ptr<fe::graph::Graph> g;
    if (graph_of(shape_key(B, T, H, KVH, hd, 0), &g, err) < 0) return -1;
    if (build_mask(ctx, start, B, T, err) < 0) return -1;
    const size_t rows = (size_t)B * T, n = rows * H * hd;
    uint16_t *o = out16;
    if (!o) {  // an fp32 output: cuDNN's bf16 one into a buffer, then widened
        if (S.o16.ensure(n * sizeof(uint16_t), err) < 0) return -1;
        o = (uint16_t *)S.o16.p;
    }
    std::unordered_map<int64_t, void *> pack = {{UID_Q, (void *)q},       {UID_K, (void *)k},
                                                {UID_V, (void *)v},       {UID_BIAS, S.bias.p},
                                                {UID_O, (void *)o},       {UID_STATS, (void *)lse}};
    if (run_graph(ctx, *g, pack, err) < 0) return -1;
    if (out32) return attention_cudnn_widen(ctx, out32, o, start, rows, H * hd, 0, err);
    return attention_cudnn_zero_padding16(ctx, out16, start, rows, H * hd, err);
}

static int backward(vet_cuda *ctx, float *dq, float *dk, float *dv, const uint16_t *dout16, const uint16_t *q,
                    const uint16_t *k, const uint16_t *v, const float *out32, const uint16_t *out16, const float *lse,
                    const int32_t *start, int B, int T, int H, int KVH, int hd, int accumulate, vet_err *err) {
    std::lock_guard<std::mutex> hold(S.lock);
    if (cudnn_load(err) < 0) return -1;
    std::shared_ptr<fe::graph::Graph> g;
    if (graph_of(shape_key(B, T, H, KVH, hd, 1), &g, err) < 0) return -1;
    if (build_mask(ctx, start, B, T, err) < 0) return -1;
    const size_t rows = (size_t)B * T, nq = rows * H * hd, nk = rows * KVH * hd;
    const uint16_t *o = out16;
    if (!o) {  // the output as the backward reads it, bf16 (as a bf16 autograd saves it)
        if (S.o16.ensure(nq * sizeof(uint16_t), err) < 0) return -1;
        if (f32_to_bf16_cuda(ctx, (uint16_t *)S.o16.p, out32, nq, err) < 0) return -1;
        o = (const uint16_t *)S.o16.p;
    }
    if (S.dq16.ensure(nq * sizeof(uint16_t), err) < 0 || S.dk16.ensure(nk * sizeof(uint16_t), err) < 0 ||
        S.dv16.ensure(nk * sizeof(uint16_t), err) < 0)
        return -1;
    std::unordered_map<int64_t, void *> pack = {
        {UID_Q, (void *)q},          {UID_K, (void *)k},         {UID_V, (void *)v},
        {UID_O, (void *)o},          {UID_DO, (void *)dout16},   {UID_STATS, (void *)lse},
        {UID_BIAS, S.bias.p},        {UID_DQ, S.dq16.p},         {UID_DK, S.dk16.p},
        {UID_DV, S.dv16.p}};
    if (run_graph(ctx, *g, pack, err) < 0) return -1;
    if (attention_cudnn_widen(ctx, dq, (const uint16_t *)S.dq16.p, start, rows, H * hd, accumulate, err) < 0 ||
        attention_cudnn_widen(ctx, dk, (const uint16_t *)S.dk16.p, start, rows, KVH * hd, accumulate, err) < 0 ||
        attention_cudnn_widen(ctx, dv, (const uint16_t *)S.dv16.p, start, rows, KVH * hd, accumulate, err) < 0)
        return -1;
    return 0;
}

// The C entry points: nothing thrown crosses them (an allocation in a map, a lock).
extern "C" int attention_forward_cudnn(vet_cuda *ctx, float *out32, uint16_t *out16, float *lse, const uint16_t *q,
                                       const uint16_t *k, const uint16_t *v, const int32_t *start, int B, int T,
                                       int H, int KVH, int hd, vet_err *err) {
    try {
        return forward(ctx, out32, out16, lse, q, k, v, start, B, T, H, KVH, hd, err);
    } catch (const std::exception &e) {
        return vet_err_kindf(err, VET_E_NOMEM, "cuDNN attention forward: %s", e.what());
    }
}
extern "C" int attention_backward_cudnn(vet_cuda *ctx, float *dq, float *dk, float *dv, const uint16_t *dout16,
                                        const uint16_t *q, const uint16_t *k, const uint16_t *v, const float *out32,
                                        const uint16_t *out16, const float *lse, const int32_t *start, int B, int T,
                                        int H, int KVH, int hd, int accumulate, vet_err *err) {
    try {
        return backward(ctx, dq, dk, dv, dout16, q, k, v, out32, out16, lse, start, B, T, H, KVH, hd, accumulate, err);
    } catch (const std::exception &e) {
        return vet_err_kindf(err, VET_E_NOMEM, "cuDNN attention backward: %s", e.what());
    }
}

extern "C" int attention_cudnn_built(void) { return 1; }

#else  // a build without cuDNN's frontend headers (mk/cudnn_frontend.sh fetches them)

extern "C" int attention_cudnn_built(void) { return 0; }

static int not_built(vet_err *err) {
    return vet_err_kindf(err, VET_E_USAGE, "cuDNN attention: this build has no cuDNN frontend (run `make cudnn-frontend`, then "
                         "rebuild; or use another VET_GPU_ATTENTION)");
}
extern "C" int attention_forward_cudnn(vet_cuda *, float *, uint16_t *, float *, const uint16_t *, const uint16_t *,
                                       const uint16_t *, const int32_t *, int, int, int, int, int, vet_err *err) {
    return not_built(err);
}
extern "C" int attention_backward_cudnn(vet_cuda *, float *, float *, float *, const uint16_t *, const uint16_t *,
                                        const uint16_t *, const uint16_t *, const float *, const uint16_t *,
                                        const float *, const int32_t *, int, int, int, int, int, int, vet_err *err) {
    return not_built(err);
}

#endif
