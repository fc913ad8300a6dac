// test_gpu_infer_device.c — vet-generate's device planning (kernels/host/gpu_infer.h), the parts
// that need no device: the weights' format from the flags or the checkpoint, the lines said to
// the person, and the refusal of a plan larger than the free memory, with the numbers and
// what to change for each weight format. Opening a device is only asked to fail cleanly
// (VET_E_USAGE) where there is none.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "io/config.h"
#include "kernels/host/gpu_infer.h"
#include "tiny_models.h"

static char dir[] = "/tmp/vet-test-gpu-infer.XXXXXX";

static void save_config(const char *dtype) {
    tiny_shape sh = {16, 32, 2, 1, 8, 64, 128, 32, 5000.0f, 1.0f};
    vet_config c = tiny_config(VAR_LLAMA, &sh);
    snprintf(c.torch_dtype, sizeof c.torch_dtype, "%s", dtype);
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    vet_err err;
    if (vet_config_save(&c, path, &err)) fprintf(stderr, "%s\n", err.msg), abort();
}

static void test_weights_format(void) {
    vet_device_choice c = {.cuda = 1};
    int ckpt = -1;
    c.dtype = VET_DTYPE_FP32;
    CHECK(vet_gpu_infer_choose_half(&c, dir, &ckpt) == 0 && ckpt == 0);
    c.dtype = VET_DTYPE_BF16;
    CHECK(vet_gpu_infer_choose_half(&c, dir, NULL) == VET_GPU_BF16);
    c.dtype = VET_DTYPE_FP16;
    CHECK(vet_gpu_infer_choose_half(&c, dir, NULL) == VET_GPU_FP16);
    // The default follows the checkpoint: float16 keeps its weights exactly in fp16.
    c.dtype = VET_DTYPE_DEFAULT;
    save_config("float32");
    CHECK(vet_gpu_infer_choose_half(&c, dir, &ckpt) == VET_GPU_BF16 && ckpt == 0);
    save_config("float16");
    CHECK(vet_gpu_infer_choose_half(&c, dir, &ckpt) == VET_GPU_FP16 && ckpt == 1);
    // Quantized weights dequantize to bf16 whatever the checkpoint.
    c.quant = VET_QUANT_NF4;
    CHECK(vet_gpu_infer_choose_half(&c, dir, &ckpt) == VET_GPU_BF16 && ckpt == 0);
    // A directory without a config: bf16 (the model's loader says what is wrong later).
    c.quant = VET_QUANT_NONE;
    CHECK(vet_gpu_infer_choose_half(&c, "/nonexistent", &ckpt) == VET_GPU_BF16 && ckpt == 0);
}

static vet_gpu_infer_device device(unsigned half, vet_quant_kind q, size_t free_bytes) {
    vet_gpu_infer_device d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "Test GPU (sm_90, 1.0 GiB)");
    d.half = half, d.quant = q, d.free_bytes = free_bytes, d.total_bytes = (size_t)1 << 30;
    return d;
}

static void test_lines_said(void) {
    char buf[512];
    vet_gpu_infer_device d = device(VET_GPU_BF16, VET_QUANT_NONE, 0);
    CHECK_STR(vet_gpu_infer_device_describe(&d, buf, sizeof buf), "device cuda:0 Test GPU (sm_90, 1.0 GiB), weights bf16");
    d = device(VET_GPU_FP16, VET_QUANT_NONE, 0);
    d.half_from_checkpoint = 1, d.index = 2;
    CHECK_STR(vet_gpu_infer_device_describe(&d, buf, sizeof buf),
              "device cuda:2 Test GPU (sm_90, 1.0 GiB), weights fp16 (the checkpoint's dtype, float16)");
    d = device(0, VET_QUANT_INT8, 0);
    CHECK_STR(vet_gpu_infer_device_describe(&d, buf, sizeof buf),
              "device cuda:0 Test GPU (sm_90, 1.0 GiB), weights int8 (read packed by steps of up to 8 notes, else "
              "dequantized to fp32 for each GEMM)");
    d.quant_scratch = 1;  // VET_GPU_QUANT_GEMV=0
    CHECK_STR(vet_gpu_infer_device_describe(&d, buf, sizeof buf),
              "device cuda:0 Test GPU (sm_90, 1.0 GiB), weights int8 (dequantized to fp32 for each GEMM)");
    d = device(0, VET_QUANT_NONE, (size_t)3 << 29);
    vet_gpu_infer_plan p = {.weights = 3 << 20, .cache = 1536, .scratch = (size_t)5 << 30};
    p.total = p.weights + p.cache + p.scratch;
    CHECK_STR(vet_gpu_infer_plan_describe(&p, &d, 16, 512, buf, sizeof buf),
              "device memory plan for 16 notes x 512 positions: weights 3.0 MiB, KV cache 1.5 KiB, scratch 5.00 GiB; "
              "total 5.00 GiB of 1.50 GiB free (1.00 GiB on the device)");
}

static void test_plan_refused_when_too_big(void) {
    vet_gpu_infer_plan p = {.weights = 1 << 20, .cache = 1 << 19, .scratch = 1 << 19, .total = 2 << 20};
    vet_err err;
    // 257 MiB free, 256 MiB kept back: 1 MiB can be planned.
    vet_gpu_infer_device d = device(0, VET_QUANT_NONE, (size_t)257 << 20);
    CHECK(vet_gpu_infer_check_fit(&p, &d, 16, 512, &err) == -1);
    CHECK(err.kind == VET_E_USAGE);
    CHECK_STR(err.msg, "the model needs 2.0 MiB on cuda:0 (weights 1.0 MiB, KV cache 512.0 KiB, scratch 512.0 KiB) "
                       "but only 1.0 MiB of its 257.0 MiB free can be planned (256.0 MiB is kept for cuBLAS and "
                       "kernels): use a smaller --batch than 16 or a smaller --max-len than 512, or --bf16 weights");
    // What else would help, by weight format.
    struct { unsigned half; vet_quant_kind q; const char *tail; } alt[] = {
        {VET_GPU_BF16, VET_QUANT_NONE, "than 512, or --quant int8 / nf4"},
        {VET_GPU_FP16, VET_QUANT_NONE, "than 512, or --quant int8 / nf4 (without --fp16)"},
        {VET_GPU_BF16, VET_QUANT_INT8, "than 512, or --quant nf4"},
        {VET_GPU_BF16, VET_QUANT_NF4, "than 512"},
    };
    for (size_t i = 0; i < sizeof alt / sizeof alt[0]; i++) {
        d = device(alt[i].half, alt[i].q, (size_t)257 << 20);
        CHECK(vet_gpu_infer_check_fit(&p, &d, 16, 512, &err) == -1);
        size_t n = strlen(err.msg), t = strlen(alt[i].tail);
        CHECK(n >= t && strcmp(err.msg + n - t, alt[i].tail) == 0);
    }
    // Less free than the headroom: nothing can be planned; a little more and it fits.
    d = device(0, VET_QUANT_NONE, (size_t)100 << 20);
    CHECK(vet_gpu_infer_check_fit(&p, &d, 1, 8, &err) == -1);
    CHECK_CONTAINS(err.msg, "but only 0.0 KiB of its 100.0 MiB free");
    d = device(0, VET_QUANT_NONE, (size_t)258 << 20);
    CHECK(vet_gpu_infer_check_fit(&p, &d, 16, 512, &err) == 0);
}

static void test_open_fails_cleanly_without_a_device(void) {
    char why[256];
    vet_device_choice c = {.cuda = 1, .index = 0};
    vet_gpu_infer_device d;
    vet_err err;
    int rc = vet_gpu_infer_device_open(&c, dir, &d, &err);
    if (rc == 0) {
        CHECK(vet_cuda_available(why, sizeof why) == 1 && d.ctx != NULL && d.name[0]);
    } else {
        CHECK(err.kind == VET_E_USAGE && d.ctx == NULL);
        CHECK(strlen(err.msg) > 0);
    }
    vet_gpu_infer_device_close(&d);
    vet_gpu_infer_device_close(&d);  // twice is fine
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_weights_format);
    RUN(test_lines_said);
    RUN(test_plan_refused_when_too_big);
    RUN(test_open_fails_cleanly_without_a_device);
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
    CHECK_EXIT();
}
