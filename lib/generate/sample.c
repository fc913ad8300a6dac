// sample.c — vet_sample (decoder.h): temperature, top-k, top-p and the draw.
//
// The candidates (every id whose logit is not -inf, the logit divided by the temperature) are
// taken in one order, the best first: higher scaled logit first, equal ones by lower id; the
// softmax weights are summed, top_p's mass counted and the draw walked in that order.
//
// Why no comparison sort: qsort over the whole vocabulary, for every row of every step, cost
// as much as the model's own step when sampling (7 ms a row for SmolLM2's 49,152 ids on one
// AMD EPYC core: ~110 ms a step at batch 16, where its CPU step takes ~80 ms, and ~0.45 s a
// step at batch 64 behind a device whose step takes a few ms). Here, with top_k, one pass
// keeps the k best in a heap and only those k are sorted (0.16 ms a row at k 50); without it,
// a stable radix sort on the logits' bits (three passes of 11 bits) orders everything in
// linear time (1.5 ms a row), leaving equal logits in id order as the comparison did. The
// order, and so every pick, is the comparison sort's exactly: tests/unit/test_infer.c keeps
// that sort as the reference and compares the picks over random rows with ties.
#include "generate/decoder.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float logit;
    int id;
} cand;

static int argmax(const float *x, int V) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (x[v] > x[best]) best = v;  // strict: the lowest id wins a tie
    return best;
}

// Whether x comes before y: the higher logit, or the lower id on equal logits.
static inline int before(const cand *x, const cand *y) {
    return x->logit > y->logit || (x->logit == y->logit && x->id < y->id);
}
static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

// The k best candidates of the row (logits / temperature, -inf skipped) into best[0..k), in
// order. A heap whose root is the last of the kept (the one a better candidate replaces): most
// ids are turned away by one comparison, and no candidate list of the whole row is written.
static void keep_best(const float *logits, int V, float temperature, int k, cand *best) {
    int n = 0;
    for (int v = 0; v < V; v++) {
        if (logits[v] == -INFINITY) continue;
        const cand x = {logits[v] / temperature, v};
        int hole;
        if (n < k) {  // sift up from the end
            hole = n++;
            while (hole > 0 && before(&best[(hole - 1) / 2], &x))
                best[hole] = best[(hole - 1) / 2], hole = (hole - 1) / 2;
        } else {
            if (!before(&x, &best[0])) continue;
            hole = 0;  // replace the root, sift down
            for (;;) {
                int ch = 2 * hole + 1;
                if (ch >= k) break;
                if (ch + 1 < k && before(&best[ch], &best[ch + 1])) ch++;  // the later child
                if (!before(&x, &best[ch])) break;
                best[hole] = best[ch], hole = ch;
            }
        }
        best[hole] = x;
    }
    qsort(best, (size_t)k, sizeof *best, cand_cmp);
}

// A float's bits made to order as unsigned integers do, then inverted: ascending keys are
// descending logits. -0 is taken as +0, which it equals.
static inline uint32_t desc_key(float f) {
    f += 0.0f;  // -0 + 0 = +0
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return ~(u & 0x80000000u ? ~u : u | 0x80000000u);
}

// c[0..n), given in id order, sorted by logit descending, stable (equal logits keep id order),
// by three radix passes of 11 bits through tmp (n). Returns the buffer holding the sorted run.
static cand *sort_all(cand *c, cand *tmp, int n) {
    enum { BITS = 11, BUCKETS = 1 << BITS };
    int count[BUCKETS + 1];
    cand *src = c, *dst = tmp;
    for (int shift = 0; shift < 32; shift += BITS) {
        memset(count, 0, sizeof count);
        for (int i = 0; i < n; i++) count[((desc_key(src[i].logit) >> shift) & (BUCKETS - 1)) + 1]++;
        for (int b = 0; b < BUCKETS; b++) count[b + 1] += count[b];
        for (int i = 0; i < n; i++) dst[count[(desc_key(src[i].logit) >> shift) & (BUCKETS - 1)]++] = src[i];
        cand *t = src;
        src = dst, dst = t;
    }
    return src;
}

// The limit of sampling as the temperature goes to 0: the ids tied at the best logit share the
// draw equally (u picks among them in id order, as the softmax's equal weights would).
static int sample_cold(const float *logits, int V, double u) {
    const float best = logits[argmax(logits, V)];
    int ties = 0;
    for (int v = 0; v < V; v++) ties += logits[v] == best;
    int k = (int)(u * ties);
    for (int v = 0; v < V; v++)
        if (logits[v] == best && k-- == 0) return v;
    return argmax(logits, V);
}

int vet_sample(float *logits, int V, const vet_sampling *sp, double u) {
    if (sp->temperature <= 0.0f) return argmax(logits, V);
    int n = 0;  // candidates: the ids not masked, and the best logit among them, in one pass
    float best = -INFINITY;
    for (int v = 0; v < V; v++) {
        n += logits[v] != -INFINITY;
        if (logits[v] > best) best = logits[v];
    }
    if (n == 0) return argmax(logits, V);
    // A temperature so small (--temperature 1e-39) that the best logit / T overflows: the scaled
    // logits' +inf - +inf (or -inf - -inf) was NaN, no sum exceeded the draw, and the worst
    // candidate was taken. Any two distinct floats are then more than 87 apart once scaled
    // (their gap is at least 2^-24 of the best), so every weight but the ties' is exp(< -87):
    // 0 in float. That limit is exact here.
    if (!isfinite(best / sp->temperature)) return sample_cold(logits, V, u);
    const int top_k = sp->top_k > 0 && sp->top_k < n ? sp->top_k : 0;
    // top_k: the k best; else every candidate and as many again for the radix sort's passes
    cand *buf = malloc((size_t)(top_k ? top_k : 2 * n) * sizeof *buf), *c = buf;
    if (!buf) return argmax(logits, V);
    if (top_k) {
        keep_best(logits, V, sp->temperature, top_k, c);
        n = top_k;
    } else {
        n = 0;
        for (int v = 0; v < V; v++)
            if (logits[v] != -INFINITY) c[n].logit = logits[v] / sp->temperature, c[n].id = v, n++;
        c = sort_all(c, c + n, n);
    }
    const float mx = c[0].logit;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (c[i].logit = expf(c[i].logit - mx));
    if (sp->top_p > 0.0f && sp->top_p < 1.0f) {  // smallest head whose mass reaches top_p
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += c[i].logit / sum;
            if (cum >= sp->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = 0;
        for (int i = 0; i < n; i++) sum += c[i].logit;
    }
    double r = u * sum, cum = 0;
    int pick = c[n - 1].id;
    for (int i = 0; i < n; i++) {
        cum += c[i].logit;
        if (r < cum) {
            pick = c[i].id;
            break;
        }
    }
    free(buf);
    return pick;
}
