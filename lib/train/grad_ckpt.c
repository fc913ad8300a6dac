// grad_ckpt.c — see grad_ckpt.h.
#include "train/grad_ckpt.h"

#include <limits.h>
#include <string.h>

#include "base/numparse.h"
#include "train/trainer.h"

int vet_grad_ckpt_parse(const char *v, int *mode, int *layers, vet_err *err) {
    *mode = 1, *layers = 0;
    if (!v) return 0;
    int keep_att = 0, count = 0, n = 0;  // count: how many of N / auto were given
    char item[64];
    for (const char *p = v;;) {
        const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
        size_t len = (size_t)(end - p);
        if (len == 0 || len >= sizeof item)
            return vet_err_kindf(err, VET_E_USAGE,
                                 "--grad-checkpoint=%s: an empty or overlong item; give N (layers recomputed), auto or "
                                 "keep-attention, comma-separated",
                                 v);
        memcpy(item, p, len);
        item[len] = 0;
        long x;
        vet_err ignored;
        if (!strcmp(item, "keep-attention")) {
            keep_att++;
        } else if (!strcmp(item, "auto")) {
            n = VET_CKPT_LAYERS_AUTO, count++;
        } else if (vet_parse_long(item, 0, INT_MAX, &x, &ignored) == 0) {
            n = (int)x, count++;
        } else {
            return vet_err_kindf(err, VET_E_USAGE,
                                 "--grad-checkpoint=%s: '%s' is not N (how many layers to recompute, the first ones), "
                                 "auto (as few as fit in the device's memory) or keep-attention",
                                 v, item);
        }
        if (!comma) break;
        p = comma + 1;
    }
    if (count > 1 || keep_att > 1)
        return vet_err_kindf(err, VET_E_USAGE, "--grad-checkpoint=%s: give each of N / auto and keep-attention once", v);
    if (count && n == 0 && keep_att)
        return vet_err_kindf(err, VET_E_USAGE,
                             "--grad-checkpoint=%s: 0 layers recomputed is no checkpointing, and keep-attention is a "
                             "form of it: drop one",
                             v);
    *mode = count && n == 0 ? 0 : keep_att ? 2 : 1;
    *layers = n;
    return 0;
}
