// gguf_types.c — the block sizes and names of GGUF's tensor and value types (gguf.h).
#include <stdio.h>

#include "io/gguf.h"

// Indexed by ggml_type. block_elems 0: a type vet cannot even size (the IQ family, whose
// layouts vet does not read), named so a refusal can say which it was.
static const vet_ggml_type_info ggml_types[] = {
    [VET_GGML_F32] = {"F32", 1, 4},       [VET_GGML_F16] = {"F16", 1, 2},
    [VET_GGML_Q4_0] = {"Q4_0", 32, 18},   [VET_GGML_Q4_1] = {"Q4_1", 32, 20},
    [4] = {"Q4_2 (removed from ggml)", 0, 0}, [5] = {"Q4_3 (removed from ggml)", 0, 0},
    [VET_GGML_Q5_0] = {"Q5_0", 32, 22},   [VET_GGML_Q5_1] = {"Q5_1", 32, 24},
    [VET_GGML_Q8_0] = {"Q8_0", 32, 34},   [VET_GGML_Q8_1] = {"Q8_1", 32, 36},
    [VET_GGML_Q2_K] = {"Q2_K", 256, 84},  [VET_GGML_Q3_K] = {"Q3_K", 256, 110},
    [VET_GGML_Q4_K] = {"Q4_K", 256, 144}, [VET_GGML_Q5_K] = {"Q5_K", 256, 176},
    [VET_GGML_Q6_K] = {"Q6_K", 256, 210}, [VET_GGML_Q8_K] = {"Q8_K", 256, 292},
    [16] = {"IQ2_XXS", 0, 0}, [17] = {"IQ2_XS", 0, 0}, [18] = {"IQ3_XXS", 0, 0}, [19] = {"IQ1_S", 0, 0},
    [20] = {"IQ4_NL", 0, 0},  [21] = {"IQ3_S", 0, 0},  [22] = {"IQ2_S", 0, 0},   [23] = {"IQ4_XS", 0, 0},
    [VET_GGML_I8] = {"I8", 1, 1},         [VET_GGML_I16] = {"I16", 1, 2},
    [VET_GGML_I32] = {"I32", 1, 4},       [VET_GGML_I64] = {"I64", 1, 8},
    [VET_GGML_F64] = {"F64", 1, 8},       [29] = {"IQ1_M", 0, 0},
    [VET_GGML_BF16] = {"BF16", 1, 2},     [34] = {"TQ1_0", 0, 0}, [35] = {"TQ2_0", 0, 0},
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

vet_ggml_type_info vet_ggml_type_get(uint32_t type) {
    if (type < N_GGML_TYPES && ggml_types[type].name) return ggml_types[type];
    static _Thread_local char buf[32];
    snprintf(buf, sizeof buf, "type %u", type);
    return (vet_ggml_type_info){buf, 0, 0};
}

size_t vet_ggml_row_bytes(uint32_t type, int64_t n) {
    vet_ggml_type_info t = vet_ggml_type_get(type);
    if (t.block_elems <= 0 || n < 0 || n % t.block_elems) return 0;
    return (size_t)(n / t.block_elems) * (size_t)t.block_bytes;
}

const char *vet_gguf_type_name(uint32_t type) {
    static const char *const names[VET_GGUF_N_TYPES] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                         "bool", "string", "array", "u64", "i64", "f64"};
    if (type < VET_GGUF_N_TYPES) return names[type];
    static _Thread_local char buf[32];
    snprintf(buf, sizeof buf, "type %u", type);
    return buf;
}
