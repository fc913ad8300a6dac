// pack.c — see pack.h.
#include "data/pack.h"

#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

int vet_pack_parse_trunc(const char *s, vet_trunc *out, vet_err *err) {
    if (s && strcmp(s, "left") == 0) *out = VET_TRUNC_LEFT;
    else if (s && strcmp(s, "right") == 0) *out = VET_TRUNC_RIGHT;
    else if (s && strcmp(s, "none") == 0) *out = VET_TRUNC_NONE;
    else return vet_errf(err, "--truncate '%s': expected left or right", s ? s : "");
    return 0;
}

void vet_pack_targets(const int32_t *tokens, int32_t n, int32_t prompt_len, vet_loss_on loss_on,
                      int32_t *targets) {
    for (int32_t i = 0; i < n; i++) {
        int has_next = i + 1 < n;
        int counts = loss_on == VET_LOSS_ALL || i + 1 >= prompt_len;
        targets[i] = (has_next && counts) ? tokens[i + 1] : -1;
    }
}

int32_t vet_pack_fit(int32_t prompt_len, int32_t response_len, int32_t seq_len, vet_trunc mode, int keep_bos,
                     int32_t *keep_from) {
    *keep_from = 0;
    if ((int64_t)prompt_len + response_len <= seq_len) return prompt_len;
    if (mode == VET_TRUNC_NONE) return -1;
    int32_t keep = seq_len - response_len;  // prompt tokens that fit beside the whole response
    if (keep < 1 || prompt_len < 1) return -1;  // not even one prompt token (the BOS): reject
    // LEFT keeps the newest prompt tokens, after the BOS when there is one: the caller copies
    // prompt[0] (keep_bos), then prompt[keep_from ..]. RIGHT keeps prompt[0 .. keep).
    if (mode == VET_TRUNC_LEFT) *keep_from = prompt_len - (keep_bos ? keep - 1 : keep);
    return keep;
}

// Segment tree over rows: leaf r holds row r's free space; an inner node the max of its
// children. Unopened rows hold seq_len, so the leftmost row with room is first fit.
typedef struct {
    int32_t *t;
    size_t leaves;
} free_tree;

static size_t tree_find_update(free_tree *ft, int32_t need) {
    size_t i = 1;
    while (i < ft->leaves) i = ft->t[2 * i] >= need ? 2 * i : 2 * i + 1;
    size_t row = i - ft->leaves;
    ft->t[i] -= need;
    for (i /= 2; i >= 1; i /= 2) ft->t[i] = ft->t[2 * i] > ft->t[2 * i + 1] ? ft->t[2 * i] : ft->t[2 * i + 1];
    return row;
}

typedef struct {
    int32_t len;
    int32_t idx;
} len_idx;
static int cmp_len_desc(const void *a, const void *b) {
    const len_idx *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

int vet_pack_ffd(const int32_t *lens, size_t n, int32_t seq_len, int32_t *row_of, size_t *n_rows,
                 vet_err *err) {
    *n_rows = 0;
    if (seq_len < 1) return vet_errf(err, "packing: the row length %d is below 1", seq_len);
    for (size_t i = 0; i < n; i++)
        if (lens[i] < 1 || lens[i] > seq_len)
            return vet_errf(err, "packing: sample %zu has %d tokens, outside [1, %d] (the row length)", i, lens[i], seq_len);
    if (n == 0) return 0;
    len_idx *by_len = malloc(n * sizeof *by_len);
    free_tree ft = {NULL, 1};
    while (ft.leaves < n) ft.leaves <<= 1;  // at most one row per sample
    ft.t = malloc(2 * ft.leaves * sizeof *ft.t);
    if (!by_len || !ft.t) {
        free(by_len);
        free(ft.t);
        return vet_err_nomem(err, "packing %zu samples: out of memory", n);
    }
    for (size_t i = 0; i < 2 * ft.leaves; i++) ft.t[i] = seq_len;
    for (size_t i = 0; i < n; i++) by_len[i] = (len_idx){lens[i], (int32_t)i};
    qsort(by_len, n, sizeof *by_len, cmp_len_desc);
    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        size_t r = tree_find_update(&ft, by_len[i].len);
        row_of[by_len[i].idx] = (int32_t)r;
        if (r + 1 > rows) rows = r + 1;
    }
    *n_rows = rows;
    free(by_len);
    free(ft.t);
    return 0;
}

// Deals samples sorted longest first into k rows in snake order (rows 0..k-1, then k-1..0, ...),
// so every row gets a mix of long and short samples and the row sums come out even. Writes
// row_of and returns 1 when every row fits in seq_len, else 0.
static int snake_deal(const len_idx *by_len, size_t n, size_t k, int32_t seq_len, int32_t *row_of,
                      int64_t *sum) {
    memset(sum, 0, k * sizeof *sum);
    for (size_t i = 0; i < n; i++) {
        size_t pass = i / k, pos = i % k, r = pass % 2 == 0 ? pos : k - 1 - pos;
        sum[r] += by_len[i].len;
        if (sum[r] > seq_len) return 0;
        row_of[by_len[i].idx] = (int32_t)r;
    }
    return 1;
}

int vet_pack_tight(const int32_t *lens, size_t n, int32_t seq_len, int32_t *row_of, size_t *n_rows,
                   vet_err *err) {
    if (vet_pack_ffd(lens, n, seq_len, row_of, n_rows, err) != 0) return -1;
    if (n < 2) return 0;
    // Two lower bounds on the rows: the tokens, and how many samples a row can hold at most
    // (the shortest ones). When samples are long next to seq_len the second one binds, and
    // first-fit decreasing, which fills the first rows with the longest samples, misses it.
    len_idx *by_len = malloc(n * sizeof *by_len);
    int32_t *cand = malloc(n * sizeof *cand);
    int64_t *sum = malloc(n * sizeof *sum);
    if (!by_len || !cand || !sum) {
        free(by_len), free(cand), free(sum);
        return vet_err_nomem(err, "packing %zu samples: out of memory", n);
    }
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) by_len[i] = (len_idx){lens[i], (int32_t)i}, total += lens[i];
    qsort(by_len, n, sizeof *by_len, cmp_len_desc);
    size_t most = 0;  // the most samples one row can hold: the shortest, while they fit
    for (int64_t acc = 0; most < n && acc + by_len[n - 1 - most].len <= seq_len; most++)
        acc += by_len[n - 1 - most].len;
    size_t lower = (size_t)((total + seq_len - 1) / seq_len);
    if (most > 0 && (n + most - 1) / most > lower) lower = (n + most - 1) / most;
    for (size_t k = lower; k < *n_rows; k++) {
        if (!snake_deal(by_len, n, k, seq_len, cand, sum)) continue;
        memcpy(row_of, cand, n * sizeof *row_of);
        *n_rows = k;
        break;
    }
    free(by_len), free(cand), free(sum);
    return 0;
}

int vet_pack_rows(const int32_t *row_of, size_t n, size_t n_rows, int32_t *order, int64_t *begin,
                  vet_err *err) {
    // Counting sort by row, stable, so each row lists its samples in input order.
    memset(begin, 0, (n_rows + 1) * sizeof *begin);
    for (size_t i = 0; i < n; i++) {
        if (row_of[i] < 0 || (size_t)row_of[i] >= n_rows)
            return vet_errf(err, "packing: sample %zu was placed in row %d of %zu (a bug in vet-pack: please report it)", i, row_of[i], n_rows);
        begin[row_of[i] + 1]++;
    }
    for (size_t r = 0; r < n_rows; r++) begin[r + 1] += begin[r];
    int64_t *cursor = malloc((n_rows + 1) * sizeof *cursor);
    if (!cursor) return vet_err_nomem(err, "packing rows: out of memory");
    memcpy(cursor, begin, (n_rows + 1) * sizeof *cursor);
    for (size_t i = 0; i < n; i++) order[cursor[row_of[i]]++] = (int32_t)i;
    free(cursor);
    return 0;
}

void vet_pack_shuffle(int32_t *perm, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    vet_rng rng;
    vet_rng_seed(&rng, seed);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)vet_rng_below(&rng, i);
        int32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
