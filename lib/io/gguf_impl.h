// gguf_impl.h — the insides of vet_gguf, shared by gguf.c (opening and checking a file) and
// gguf_get.c (typed access to its metadata). Not for use outside lib/io/gguf*.c.
#ifndef VET_GGUF_IMPL_H
#define VET_GGUF_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "base/strtab.h"
#include "io/gguf.h"

struct vet_gguf {
    char *path;
    const uint8_t *map;      // the whole file, read only
    size_t size;
    uint32_t version;
    size_t alignment;
    vet_gguf_kv *kv;         // (n_kv) in file order
    uint64_t **str_off;      // (n_kv) for string arrays: offset of each element from kv.data; else NULL
    size_t n_kv;
    vet_strtab kv_names;     // key -> index into kv (interned in file order)
    vet_gguf_tensor *tensors;// (n_tensors) in file order
    size_t n_tensors;
    vet_strtab tensor_names; // name -> index into tensors
};

// Bytes of one scalar of a value type (0 for string, array and unknown types).
size_t gguf_scalar_size(uint32_t type);

#endif
