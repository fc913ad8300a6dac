// bpe_merges.c — the merge table (bpe_impl.h: open addressing on the pair) back into rank order.
#include "data/bpe_merges.h"

#include <stdlib.h>

#include "data/bpe_impl.h"

typedef struct {
    int32_t rank, a, b;
} ranked;

static int by_rank(const void *x, const void *y) {
    int32_t p = ((const ranked *)x)->rank, q = ((const ranked *)y)->rank;
    return (p > q) - (p < q);
}

int vet_bpe_merge_list(const vet_bpe *b, int32_t **pairs, size_t *n, vet_err *err) {
    *pairs = NULL, *n = 0;
    if (!b->merges) return 0;
    size_t cnt = 0;
    for (size_t s = 0; s <= b->merge_mask; s++) cnt += b->merges[s].key != 0;
    if (cnt == 0) return 0;
    ranked *r = malloc(cnt * sizeof *r);
    int32_t *out = malloc(2 * cnt * sizeof *out);
    if (!r || !out) {
        free(r), free(out);
        return vet_err_nomem(err, "%s: out of memory listing %zu merges", b->path, cnt);
    }
    size_t k = 0;
    for (size_t s = 0; s <= b->merge_mask; s++) {
        uint64_t key = b->merges[s].key;   // (a + 1) << 32 | (b + 1)
        if (key) r[k++] = (ranked){b->merges[s].rank, (int32_t)(key >> 32) - 1, (int32_t)(key & 0xffffffffu) - 1};
    }
    qsort(r, cnt, sizeof *r, by_rank);
    for (size_t i = 0; i < cnt; i++) out[2 * i] = r[i].a, out[2 * i + 1] = r[i].b;
    free(r);
    *pairs = out, *n = cnt;
    return 0;
}
