// gpu_train_backend.c — the CUDA training backend (see gpu_train_backend.h): the table of
// lib/train/backend.h over a vet_gpu_model. The host keeps the master copy of the trainable
// state; the device's copy is the one that trains, pulled back and pushed up on request.
#include "kernels/host/gpu_train_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer.h"

// What the GPU model cannot train, refused before the device is opened.
static int check_settings(const vet_train_opts *o, vet_err *err) {
    if (o->label_smoothing != 0.0)
        return vet_errf(err, "--label-smoothing is not implemented on CUDA yet: train on the CPU, or without it");
    if (o->full && o->gpu_bf16)
        return vet_errf(err, "full training on CUDA needs fp32 base weights (--fp32), or train LoRA");
    if (o->full && o->gpu_quant)
        return vet_errf(err, "quantized base weights are frozen: --quant needs LoRA training, not --full");
    if (o->gpu_fp16 && (o->full || o->gpu_bf16 || o->gpu_quant))
        return vet_errf(err, "fp16 base weights are for LoRA training without --bf16 or --quant");
    return 0;
}

#ifdef VET_CUDA

#include "kernels/host/device.h"
#include "kernels/host/gpu_collective.h"
#include "kernels/host/gpu_model.h"
#include "kernels/ops_cuda.h"
#include "kernels/host/gpu_profile.h"

// Device memory a plan may take: the free memory less room for what is allocated outside
// the plan (cuBLAS workspaces, kernel modules loaded on first use).
#define GPU_HEADROOM ((size_t)256 << 20)

typedef struct {
    const vet_train_opts *o;
    vet_note_fn note;
    void *note_ctx;
    vet_cuda *cuda;
    vet_gpu_model *gpu;        // NULL until load
    vet_train_mode mode;
    float *params, *adam_m, *adam_v;  // (n) the host's copy (vet_train_setup)
    float *grads;              // (n) the device's gradients, downloaded for the host allreduce:
                               // allocated by its first call, so a run on one device or with
                               // NCCL never holds it (28 GB of host memory for a 7B --full run)
    size_t n;
    size_t first_bad;          // grad_norm's least non-finite index (n: none)
    int use_nccl;              // data parallel: 1 sums the gradients on the devices (NCCL),
                               // 0 through the host (the comm's MPI sum); the same bits
    vet_gpu_collective *coll;  // NCCL's communicator, made at load when use_nccl
    const char *profile_path;  // VET_GPU_PROFILE: where the device time by kind goes (NULL: nowhere)
    vet_gpu_profile *prof;     // made at load when profile_path
} cuda_backend;

// "13.48 GiB", "3.2 MiB" or "12.0 KiB" (a small model's plan would read 0.00 GiB).
static unsigned gpu_flags(const vet_train_opts *o) {
    return (o->gpu_bf16 ? VET_GPU_BF16 : 0) | (o->full ? VET_GPU_FULL : 0) |
           (o->gpu_quant == 1 ? VET_GPU_INT8 : o->gpu_quant == 2 ? VET_GPU_NF4 : 0) |
           (o->gpu_ckpt ? VET_GPU_CKPT : 0) | (o->gpu_ckpt == 2 ? VET_GPU_CKPT_KEEP_ATTN : 0) |
           (o->gpu_fp16 ? VET_GPU_FP16 : 0);
}

// Diagnostics from the environment, like VET_GPU_PROFILE: which attention the 16-bit mode runs
// (VET_GPU_ATTENTION=tc|tc-sync|tc-transposed|cudnn|fp32), whether LoRA dropout runs inside the
// adapters' products (VET_GPU_LORA_FUSED=1|0), whether the element-wise passes take 16 bytes a
// thread (VET_GPU_WIDE=1|0, elementwise_wide), and what makes the adapters' up product
// (VET_GPU_LORA_UP=cublas|vet). Another value is a usage error, not a silent
// default. tc-sync: the tensor-core kernels that load each tile, then compute (no asynchronous
// copies; attention_tc_variant 4, a process-wide setting); tc-transposed: those of the first GPU
// run (variant 3). The GPU bundle falls back to them, in that order, when the default's parity
// fails. cudnn: cuDNN's fused attention (variant 5, kernels/attention_cudnn.cc; not deterministic),
// which the bundle chooses when its parity passed and it is the faster.
int vet_gpu_env_flags(unsigned *flags, vet_err *err) {
    const char *attn = getenv("VET_GPU_ATTENTION"), *up = getenv("VET_GPU_LORA_UP");
    if (attn && *attn && strcmp(attn, "tc") && strcmp(attn, "tc-sync") && strcmp(attn, "tc-transposed") &&
        strcmp(attn, "cudnn") && strcmp(attn, "fp32"))
        return vet_err_kindf(err, VET_E_USAGE,
                             "VET_GPU_ATTENTION=%s: use tc (tensor cores, the 16-bit mode's default), tc-sync, "
                             "tc-transposed, cudnn or fp32",
                             attn);
    const int fused = vet_env_switch("VET_GPU_LORA_FUSED", 1, err), mma = vet_env_switch("VET_GPU_LORA_MMA", 1, err),
              wide = vet_env_switch("VET_GPU_WIDE", 1, err);
    if (fused < 0 || mma < 0 || wide < 0) return -1;
    if (up && *up && strcmp(up, "cublas") && strcmp(up, "vet"))
        return vet_err_kindf(err, VET_E_USAGE, "VET_GPU_LORA_UP=%s: use cublas (the default) or vet", up);
    if (up && !strcmp(up, "vet")) *flags |= VET_GPU_LORA_UP_KERNEL;
    if (attn && !strcmp(attn, "fp32")) *flags |= VET_GPU_ATTN_FP32;
    attention_tc_variant(!attn                           ? 0
                         : !strcmp(attn, "tc-transposed") ? 3
                         : !strcmp(attn, "tc-sync")       ? 4
                         : !strcmp(attn, "cudnn")         ? 5
                                                          : 0);
    if (!fused) *flags |= VET_GPU_LORA_UNFUSED;
    if (!mma) *flags |= VET_GPU_LORA_NO_MMA;
    elementwise_wide(wide);  // process-wide, like attention_tc_variant
    return 0;
}

// What the plan may take of the device: its free memory, or the --device-memory cap when that
// is less, less the headroom kept for cuBLAS and kernels (free_b, total_b: for the messages).
static int usable_memory(cuda_backend *c, size_t *usable, size_t *free_b, size_t *total_b, vet_err *err) {
    if (vet_cuda_mem_info(c->cuda, free_b, total_b, err) < 0) return -1;
    size_t room = *free_b;
    if (c->o->gpu_mem_cap && c->o->gpu_mem_cap < room) room = c->o->gpu_mem_cap;
    *usable = room > GPU_HEADROOM ? room - GPU_HEADROOM : 0;
    return 0;
}

// The checkpointing the run asked for, as the model's options: VET_GPU_CKPT (and _KEEP_ATTN)
// and the recomputed layers. With --grad-checkpoint=auto, the fewest layers recomputed (none
// at all, first) whose plan fits in usable; when none fits, every layer (check_plan refuses).
// *layers: the layers recomputed (0: no checkpointing).
static int plan_checkpointing(const cuda_backend *c, const vet_model *m, int B, int T, size_t usable,
                              vet_gpu_opts *go, vet_gpu_plan *p, int *layers, vet_err *err) {
    const vet_train_opts *o = c->o;
    const int L = m->cfg.n_layers, r = m->has_lora ? m->lora.r : 0;
    const unsigned targets = m->has_lora ? m->lora.targets : 0, ckpt = VET_GPU_CKPT | VET_GPU_CKPT_KEEP_ATTN;
    const unsigned base = go->flags & ~ckpt, asked = go->flags & ckpt;
    if (o->gpu_ckpt && o->gpu_ckpt_layers > L)
        return vet_err_kindf(err, VET_E_USAGE,
                             "--grad-checkpoint=%d: the model has %d layers; give 1 to %d, or auto (as few as fit in "
                             "the device's memory)",
                             o->gpu_ckpt_layers, L, L);
    const int lo = !o->gpu_ckpt ? 0 : o->gpu_ckpt_layers == VET_CKPT_LAYERS_AUTO ? 0
                                   : o->gpu_ckpt_layers ? o->gpu_ckpt_layers : L;
    const int hi = o->gpu_ckpt_layers == VET_CKPT_LAYERS_AUTO && o->gpu_ckpt ? L : lo;
    *layers = lo;
    for (int n = lo; n <= hi; n++) {
        go->flags = n ? base | asked : base;
        go->ckpt_layers = n;
        if (vet_gpu_plan_for(&m->cfg, r, targets, B, T, go, p, err) < 0) return -1;
        *layers = n;
        if (p->total <= usable) break;
    }
    return 0;
}

// The plan for micro-batches of B x T said, then refused with its numbers and what would
// shrink it when it exceeds what can be planned of the device's memory. layers: the layers
// recomputed (0: no checkpointing), of L.
static int check_plan(cuda_backend *c, const vet_gpu_plan *p, int B, int T, int layers, int L, size_t usable,
                      size_t free_b, size_t total_b, vet_err *err) {
    const vet_train_opts *o = c->o;
    const int auto_ckpt = o->gpu_ckpt && o->gpu_ckpt_layers == VET_CKPT_LAYERS_AUTO;
    const int capped = o->gpu_mem_cap && o->gpu_mem_cap < free_b;
    char w[32], t[32], a[32], sc[32], tot[32], fr[32], all[32], us[32], hr[32], mc[32], cap[48], ck[256] = "";
    const char *kept = o->gpu_ckpt == 2 ? "layer inputs and attention outputs kept" : "layer inputs kept";
    if (layers == L)
        snprintf(ck, sizeof ck, "; gradient checkpointing: %s, each layer%s recomputed in backward", kept,
                 o->gpu_ckpt == 2 ? " but its attention" : "");
    else if (layers && L - layers == 1)
        snprintf(ck, sizeof ck, "; gradient checkpointing: %s, the first %d of %d layers%s recomputed in backward "
                 "(the last keeps its activations)",
                 kept, layers, L, o->gpu_ckpt == 2 ? " but their attention" : "");
    else if (layers)
        snprintf(ck, sizeof ck, "; gradient checkpointing: %s, the first %d of %d layers%s recomputed in backward "
                 "(the other %d keep their activations)",
                 kept, layers, L, o->gpu_ckpt == 2 ? " but their attention" : "", L - layers);
    else if (auto_ckpt)
        snprintf(ck, sizeof ck, "; gradient checkpointing: none needed (every layer's activations fit)");
    if (o->gpu_mem_cap) snprintf(cap, sizeof cap, ", %s allowed", vet_bytes_str(mc, o->gpu_mem_cap));
    else cap[0] = 0;
    vet_train_notef(c->note, c->note_ctx,
                    "device memory plan for batches of %d x %d: weights %s, training state %s, activations %s, "
                    "scratch %s; total %s of %s free (%s on the device%s)%s",
                    B, T, vet_bytes_str(w, p->weights), vet_bytes_str(t, p->train), vet_bytes_str(a, p->activations),
                    vet_bytes_str(sc, p->scratch), vet_bytes_str(tot, p->total), vet_bytes_str(fr, free_b),
                    vet_bytes_str(all, total_b), cap, ck);
    if (p->total <= usable) return 0;
    return vet_errf(err, "the model needs %s on cuda:%d (weights %s, training state %s, activations %s, "
                         "scratch %s) but only %s of %s%s%s can be planned (%s is kept for cuBLAS "
                         "and kernels): use a smaller --batch-size than %d or shorter rows than %d "
                         "(vet-pack --seq-len)%s%s",
                    tot, o->gpu_index, w, t, a, sc, vet_bytes_str(us, usable), capped ? "the " : "its ",
                    capped ? mc : fr, capped ? " --device-memory allows" : " free",
                    vet_bytes_str(hr, GPU_HEADROOM), B, T,
                    o->gpu_ckpt == 2 ? ", or --grad-checkpoint without =keep-attention"
                    : layers == L    ? ""
                    : layers         ? ", or --grad-checkpoint recomputing more layers (alone: every layer)"
                                     : ", or --grad-checkpoint",
                    o->full || o->gpu_quant == 2 ? "" : o->gpu_quant ? ", or --quant nf4"
                          : o->gpu_bf16 ? ", or --quant int8 / nf4 base weights" : ", or --bf16 base weights");
}

// The model on the device, for the run's largest micro-batch: batch_size rows (no more than
// the larger set has) of the longest row.
static int cuda_load(void *ctx, const vet_train_setup *s, vet_err *err) {
    cuda_backend *c = ctx;
    c->mode = s->mode, c->n = s->n;
    c->params = s->params, c->adam_m = s->adam_m, c->adam_v = s->adam_v;
    const vet_model *m = s->m;
    int B = s->batch_size < s->max_rows ? s->batch_size : s->max_rows, T = s->max_len;
    if (B < 1) B = 1;
    if (T < 1) T = 1;
    unsigned flags = gpu_flags(c->o);
    if (vet_gpu_env_flags(&flags, err) < 0) return -1;
    size_t usable, free_b, total_b;
    if (usable_memory(c, &usable, &free_b, &total_b, err) < 0) return -1;
    vet_gpu_opts go = {.flags = flags, .mem_limit = usable, .resid_dropout = (float)c->o->resid_dropout};
    vet_gpu_plan p;
    int layers = 0;
    if (plan_checkpointing(c, m, B, T, usable, &go, &p, &layers, err) < 0 ||
        check_plan(c, &p, B, T, layers, m->cfg.n_layers, usable, free_b, total_b, err) < 0)
        return -1;
    c->gpu = vet_gpu_model_new(c->cuda, m, B, T, &go, err);
    if (!c->gpu) return -1;
    // A diagnostic, not a setting: the environment, like the stand-in's VET_STANDIN_MEM.
    const char *path = getenv("VET_GPU_PROFILE");
    if (path && *path) {
        if (!(c->prof = vet_gpu_profile_new(c->cuda, err))) return -1;
        c->profile_path = path;
        vet_gpu_model_set_profile(c->gpu, c->prof);
    }
    // Every rank gets here (the trainer's setup is the same on all), so the collective NCCL
    // setup cannot wait for a rank that is not coming: one that failed before makes the
    // launcher end the job (vet-train's comm->abort).
    if (c->use_nccl && !(c->coll = vet_gpu_collective_new(c->cuda, c->o->comm, err))) return -1;
    return 0;
}

static int cuda_forward_backward(void *ctx, const vet_batch *b, uint64_t dropout_seed, float grad_scale,
                                 double *loss_sum, vet_err *err) {
    cuda_backend *c = ctx;
    int n_targets;
    if (vet_gpu_forward(c->gpu, b, loss_sum, &n_targets, 1, dropout_seed, err) < 0) return -1;
    return grad_scale > 0 ? vet_gpu_backward(c->gpu, grad_scale, c->mode, err) : 0;
}

static int cuda_forward(void *ctx, const vet_batch *b, double *loss_sum, int *n_targets, vet_err *err) {
    cuda_backend *c = ctx;
    return vet_gpu_forward(c->gpu, b, loss_sum, n_targets, 0, 0, err);
}

// Reduced on the device (kernels/gradstats.cu: deterministic, two passes): the norm and the
// first non-finite index come back, 16 bytes; the gradients stay on the device.
static int cuda_grad_norm(void *ctx, float unscale, double *norm, vet_err *err) {
    cuda_backend *c = ctx;
    c->first_bad = c->n;
    return vet_gpu_grad_stats(c->gpu, unscale, norm, &c->first_bad, err);
}

// What cuda_grad_norm's reduction found.
static int cuda_find_nonfinite_grad(void *ctx, size_t *index) {
    cuda_backend *c = ctx;
    if (c->first_bad >= c->n) return 0;
    *index = c->first_bad;
    return 1;
}

static int cuda_zero_grads(void *ctx, vet_err *err) { return vet_gpu_zero_grads(((cuda_backend *)ctx)->gpu, err); }

// Data parallel, one rank per GPU. With NCCL the gradients are summed on the devices
// (gpu_collective.h: a rank-order reduce-scatter and an allgather, the same bits as the host
// path). Without it, or with VET_NCCL=0 in the environment, they go through the host, are
// summed by the ranks' communicator (train/comm.h: MPI, each element in rank order, the same
// bits on every rank), and come back: a download and an upload of the gradients per step on
// top of the network (docs/scale.md: ~5 ms for a 7B LoRA adapter over PCIe 4.0, 1% of its step).
static int cuda_allreduce_grads(void *ctx, const vet_comm *comm, vet_err *err) {
    cuda_backend *c = ctx;
    if (c->coll) {
        size_t n;
        float *g = vet_gpu_grads_device(c->gpu, &n);
        if (n != c->n) return vet_errf(err, "gradient buffer of %zu floats, the GPU model trains %zu", c->n, n);
        if (vet_gpu_profile_enter(c->prof, VET_PROF_COLLECTIVE, err) < 0 ||
            vet_gpu_collective_allreduce(c->coll, g, n, err) < 0)
            return -1;
        return vet_gpu_profile_enter(c->prof, VET_PROF_NONE, err);
    }
    if (!c->grads && !(c->grads = malloc(c->n * sizeof(float))))
        return vet_err_nomem(err, "out of memory for the host's copy of the gradients (%zu floats), which "
                                  "the sum through the host needs: a build with NCCL sums on the devices", c->n);
    if (vet_gpu_download_grads(c->gpu, c->grads, c->n, err) < 0) return -1;
    if (comm->allreduce_f32(comm->ctx, c->grads, c->n, err) < 0) return -1;
    return vet_gpu_upload_grads(c->gpu, c->grads, c->n, err);
}

static int cuda_adamw_step(void *ctx, size_t off, size_t n, const vet_adamw *hp, vet_err *err) {
    cuda_backend *c = ctx;
    return vet_gpu_adamw_step(c->gpu, off, n, hp->grad_scale, hp->lr, hp->beta1, hp->beta2, hp->eps,
                              hp->weight_decay, hp->step, err);
}

// The profile file is rewritten here too: a pull comes before every checkpoint and the outputs,
// so the file is current when the run ends (and after each checkpoint of a long one).
static int cuda_pull_state(void *ctx, int moments, vet_err *err) {
    cuda_backend *c = ctx;
    if (c->prof && vet_gpu_profile_write(c->prof, c->profile_path, err) < 0) return -1;
    return vet_gpu_download_state(c->gpu, c->params, moments ? c->adam_m : NULL, moments ? c->adam_v : NULL, c->n,
                                  err);
}

static int cuda_push_state(void *ctx, vet_err *err) {
    cuda_backend *c = ctx;
    return vet_gpu_upload_state(c->gpu, c->params, c->adam_m, c->adam_v, c->n, err);
}

static void cuda_free(void *ctx) {
    cuda_backend *c = ctx;
    if (!c) return;
    vet_gpu_collective_free(c->coll);  // before the context whose stream it uses
    vet_gpu_model_free(c->gpu);
    vet_gpu_profile_free(c->prof);  // its events belong to the context: before it
    vet_cuda_free(c->cuda);
    free(c->grads);
    free(c);
}

// Under a launcher, how the ranks' gradients are summed (after the device in its note line):
// on the devices with NCCL when the build has it and VET_NCCL=0 does not turn it off (the
// host path, for comparison), else through the host. Nothing alone: a plain run's note is as
// it always was.
static void choose_sum(cuda_backend *c, char *how, size_t n) {
    const vet_comm *comm = c->o->comm;
    char version[32];
    *how = 0;
    if (!comm || comm->size < 2) return;
    const char *env = getenv("VET_NCCL");
    int built = vet_gpu_collective_builtin(version, sizeof version);
    c->use_nccl = built && !(env && !strcmp(env, "0"));
    if (c->use_nccl)
        snprintf(how, n, "; %d ranks, gradients summed on the GPUs (NCCL %s, rank order)", comm->size, version);
    else
        snprintf(how, n, "; %d ranks, gradients summed through the host (%s, rank order%s)", comm->size, comm->name,
                 built ? ": VET_NCCL=0" : ": built without NCCL");
}

// The device's context, named in a note.
static int open_device(cuda_backend *c, vet_err *err) {
    const vet_train_opts *o = c->o;
    char why[512], name[256], how[160];
    if (!vet_cuda_available(why, sizeof why)) return vet_errf(err, "--device cuda: %s", why);
    if (vet_cuda_device_name(o->gpu_index, name, sizeof name, err) < 0) return -1;
    c->cuda = vet_cuda_new(o->gpu_index, err);
    if (!c->cuda) return -1;
    choose_sum(c, how, sizeof how);
    if (o->gpu_quant)
        vet_train_notef(c->note, c->note_ctx, "device cuda:%d %s, base weights %s (dequantized to %s for each GEMM)%s",
                        o->gpu_index, name, o->gpu_quant == 1 ? "int8" : "nf4", o->gpu_bf16 ? "bf16" : "fp32", how);
    else
        vet_train_notef(c->note, c->note_ctx, "device cuda:%d %s, base weights %s%s", o->gpu_index, name,
                        o->gpu_fp16 ? "fp16 (dynamic loss scaling)" : o->gpu_bf16 ? "bf16" : "fp32", how);
    return 0;
}

int vet_cuda_train_backend(const vet_train_opts *o, vet_note_fn note, void *note_ctx, vet_train_backend *be,
                           vet_err *err) {
    memset(be, 0, sizeof *be);
    if (check_settings(o, err) < 0) return -1;
    cuda_backend *c = calloc(1, sizeof *c);
    if (!c) return vet_err_nomem(err, "out of memory");
    *c = (cuda_backend){.o = o, .note = note, .note_ctx = note_ctx};
    if (open_device(c, err) < 0) {
        cuda_free(c);
        return -1;
    }
    *be = (vet_train_backend){
        .name = "cuda", .ctx = c, .loss_scaling = o->gpu_fp16,
        .load = cuda_load, .forward_backward = cuda_forward_backward, .forward = cuda_forward,
        .grad_norm = cuda_grad_norm, .find_nonfinite_grad = cuda_find_nonfinite_grad,
        .zero_grads = cuda_zero_grads, .allreduce_grads = cuda_allreduce_grads,
        .adamw_step = cuda_adamw_step,
        .pull_state = cuda_pull_state, .push_state = cuda_push_state, .free = cuda_free,
    };
    return 0;
}

#else  // built without CUDA

int vet_cuda_train_backend(const vet_train_opts *o, vet_note_fn note, void *note_ctx, vet_train_backend *be,
                           vet_err *err) {
    memset(be, 0, sizeof *be);
    if (check_settings(o, err) < 0) return -1;
    return vet_errf(err, "--device cuda: vet was built without CUDA (rebuild with nvcc on PATH)");
}

int vet_gpu_env_flags(unsigned *flags, vet_err *err) {
    (void)flags;
    return vet_errf(err, "--device cuda: vet was built without CUDA (rebuild with nvcc on PATH)");
}

#endif
