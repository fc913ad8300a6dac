// synth_write.c — synthetic notes out (synth.h): a CSV with the DLO notes' columns, or Alpaca
// text to train a tokenizer on; and the whole job of vet-synth, table to file.
#include <errno.h>
#include <string.h>

#include "base/atomic_file.h"
#include "data/synth.h"
#include "io/csv_write.h"

const char vet_synth_alpaca_header[] =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n";
const char vet_synth_alpaca_instruction[] =
    "Analyze the following veterinary clinical note and predict the SNOMED-CT diagnosis codes.";

static int write_status(FILE *f, vet_err *err) {
    if (ferror(f)) return vet_err_io(err, "write failed: %s", strerror(errno));
    return 0;
}

int vet_synth_write_csv_header(FILE *f, vet_err *err) {
    fputs("id,species,note,codes,disease,symptoms\n", f);
    return write_status(f, err);
}

int vet_synth_write_csv_row(FILE *f, const vet_synth_table *t, const vet_synth_row *r, vet_err *err) {
    const vet_synth_disease *d = &t->diseases[r->disease];
    vet_csv_write_field(f, r->id, 0);
    vet_csv_write_field(f, t->species[r->species].name, 0);
    vet_csv_write_field(f, r->note, 0);
    vet_csv_write_field(f, d->code, 0);
    vet_csv_write_field(f, d->name, 0);
    vet_csv_write_field(f, r->symptoms, 1);
    return write_status(f, err);
}

int vet_synth_write_alpaca(FILE *f, const vet_synth_table *t, const vet_synth_row *r, vet_err *err) {
    fprintf(f, "%s### Instruction:\n%s\n\n### Input:\nClinical Note: %s\n\n### Response:\n"
            "Diagnosed conditions: %s\n",
            vet_synth_alpaca_header, vet_synth_alpaca_instruction, r->note,
            t->diseases[r->disease].code);
    return write_status(f, err);
}

// o->count rows drawn by g, written to f; the repeats and relabellings counted into c.
static int write_rows(FILE *f, const vet_synth_table *t, const vet_synth_opts *o, vet_synth_gen *g,
                      vet_synth_counts *c, vet_err *err) {
    if (!o->alpaca_text && vet_synth_write_csv_header(f, err) < 0) return -1;
    for (long i = 0; i < o->count; i++) {
        const vet_synth_row *r = vet_synth_gen_next(g, err);
        if (!r) return -1;
        c->repeated += r->dup_of >= 0;
        c->relabelled += r->disease != r->true_disease;
        if ((o->alpaca_text ? vet_synth_write_alpaca(f, t, r, err) : vet_synth_write_csv_row(f, t, r, err)) < 0)
            return -1;
        c->rows++;
    }
    return 0;
}

int vet_synth_write_file(const vet_synth_table *t, const vet_synth_opts *o, const char *path, vet_synth_counts *c,
                         vet_err *err) {
    memset(c, 0, sizeof *c);
    vet_synth_gen *g = vet_synth_gen_new(t, o, o->count, err);
    if (!g) return -1;
    // Written under a temporary name and renamed at the end: a failed run never leaves a
    // complete-looking, shorter data set behind (make would take it as up to date).
    vet_afile a;
    if (vet_afile_open(&a, path, err) < 0) {
        vet_synth_gen_free(g);
        return -1;
    }
    int rc = write_rows(a.f, t, o, g, c, err);
    vet_synth_gen_free(g);
    if (rc < 0) {
        if (ferror(a.f)) vet_err_prefix(err, "%s", a.shown);  // the writers' messages name no file
        vet_afile_abort(&a);
        return -1;
    }
    return vet_afile_commit(&a, err);
}
