// device.c — runtime detection of the CUDA backend (see device.h).
//
// Compiled by the C compiler in every build. With VET_CUDA the probe is asked of the CUDA
// runtime through kernels/ops_cuda.h (plain C, so no CUDA header is needed here).
#include "kernels/host/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/numparse.h"
#ifdef VET_CUDA
#include "kernels/ops_cuda.h"
#endif

static void set_why(char *why, size_t n, const char *msg) {
    if (why && n) snprintf(why, n, "%s", msg);
}

int vet_cuda_available(char *why, size_t n) {
#ifdef VET_CUDA
    vet_err err = {0};
    int count = 0;
    if (vet_cuda_device_count(&count, &err) < 0) {
        set_why(why, n, err.msg);
        return 0;
    }
    if (count == 0) {
        set_why(why, n, "no CUDA device present");
        return 0;
    }
    set_why(why, n, "");
    return 1;
#else
    set_why(why, n, "built without CUDA (nvcc was not found at build time, or CUDA=0)");
    return 0;
#endif
}

const char *vet_backends_built(void) {
#ifdef VET_CUDA
    return "cpu cuda";
#else
    return "cpu";
#endif
}

static int parse_device(const char *device, vet_device_choice *c, vet_err *err) {
    if (!device || strcmp(device, "cpu") == 0) return 0;
    if (strncmp(device, "cuda", 4) == 0 && (device[4] == 0 || device[4] == ':')) {
        c->cuda = 1;
        long n = 0;
        if (device[4] == ':' && vet_parse_long(device + 5, 0, 1024, &n, err) < 0)
            return vet_err_prefix(err, "--device cuda:N");
        c->index = (int)n;
        return 0;
    }
    return vet_err_kindf(err, VET_E_USAGE, "--device: '%s' is not cpu, cuda or cuda:N", device);
}

int vet_env_switch(const char *name, int dflt, vet_err *err) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    if (!strcmp(v, "0") || !strcmp(v, "1")) return v[0] == '1';
    return vet_err_kindf(err, VET_E_USAGE, "%s=%s: use 1%s or 0%s", name, v, dflt ? " (the default)" : "",
                         dflt ? "" : " (the default)");
}

int vet_device_choose(const char *device, const char *dtype, const char *quant, const char *weights,
                      vet_device_choice *c, vet_err *err) {
    memset(c, 0, sizeof *c);
    if (parse_device(device, c, err) < 0) return -1;
    if (dtype) {
        c->dtype = strcmp(dtype, "fp32") == 0   ? VET_DTYPE_FP32
                   : strcmp(dtype, "bf16") == 0 ? VET_DTYPE_BF16
                   : strcmp(dtype, "fp16") == 0 ? VET_DTYPE_FP16
                                                : VET_DTYPE_DEFAULT;
        if (c->dtype == VET_DTYPE_DEFAULT)
            return vet_err_kindf(err, VET_E_USAGE, "--dtype: '%s' is not fp32, bf16 or fp16", dtype);
    }
    if (!c->cuda && c->dtype != VET_DTYPE_DEFAULT && c->dtype != VET_DTYPE_FP32)
        return vet_err_kindf(err, VET_E_USAGE, "--%s: the CPU backend computes in fp32; %s %s need --device cuda",
                             dtype, dtype, weights);
    if (vet_quant_parse(quant ? quant : "none", &c->quant, err) < 0) {
        err->kind = VET_E_USAGE;
        return vet_err_prefix(err, "--quant");
    }
    if (c->quant != VET_QUANT_NONE && !c->cuda)
        return vet_err_kindf(err, VET_E_USAGE, "--quant %s: quantized %s need --device cuda (the CPU backend "
                             "computes in fp32); drop --quant", quant, weights);
    if (c->quant != VET_QUANT_NONE && c->dtype == VET_DTYPE_FP16)
        return vet_err_kindf(err, VET_E_USAGE, "--quant %s with --fp16: quantized weights are dequantized to bf16 "
                             "or fp32 for their GEMMs; drop one", quant);
    return 0;
}

const char *vet_dtype_choice_name(vet_dtype_choice d) {
    switch (d) {
    case VET_DTYPE_FP32: return "fp32";
    case VET_DTYPE_BF16: return "bf16";
    case VET_DTYPE_FP16: return "fp16";
    case VET_DTYPE_DEFAULT: break;
    }
    return "default";
}

const char *vet_bytes_str(char buf[32], size_t b) {
    if (b >= (size_t)1 << 30) snprintf(buf, 32, "%.2f GiB", b / (double)(1 << 30));
    else if (b >= (size_t)1 << 20) snprintf(buf, 32, "%.1f MiB", b / (double)(1 << 20));
    else snprintf(buf, 32, "%.1f KiB", b / 1024.0);
    return buf;
}
