// outputs.c — what a finished run leaves in OUT (see run.h): a PEFT adapter (and with --merge
// OUT/merged, the base with the adapter merged in), or with --full a Hugging Face model
// directory; from the parameters at the best validation loss when there was validation.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/adapter.h"
#include "model/model_save.h"
#include "train/run.h"

int train_write_outputs(train_run *r, const vet_train_state *st, vet_err *err) {
    const vet_train_opts *o = r->o;
    if (r->comm->rank != 0) return 0;  // rank 0 alone writes OUT
    if (r->be.pull_state(r->be.ctx, 0, err) < 0) return -1;
    if (r->best && isfinite(st->best_val)) memcpy(r->params, r->best, r->n * sizeof(float));
    const char *base = o->base_dir ? o->base_dir : o->init;
    const char *tokenizer = r->tokenizer_path[0] ? r->tokenizer_path : NULL;
    if (o->full) {  // a model from --init is written in fp32; a --base one in its own dtype
        int dt = o->base_dir ? vet_dtype_parse(r->m.cfg.torch_dtype) : VET_DT_F32;
        return vet_model_save(&r->m, o->out_dir, dt >= 0 ? (vet_dtype)dt : VET_DT_F32, tokenizer, err);
    }
    if (vet_adapter_save(o->out_dir, &r->m, base, err) < 0) return -1;
    if (!o->merge) return 0;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/merged", o->out_dir);
    vet_model_merge_lora(&r->m);
    int dt = vet_dtype_parse(r->m.cfg.torch_dtype);
    return vet_model_save(&r->m, dir, dt >= 0 ? (vet_dtype)dt : VET_DT_F32, tokenizer, err);
}
