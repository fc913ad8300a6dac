// synth.h — synthetic veterinary notes from a table of diseases and their clinical signs.
//
// The table (data/diseases.tsv, format in data/README.md) declares species, clinical signs
// with the phrases a note may use for them, diseases with a per-species prevalence and a
// per-sign probability, and sentence templates. A generator draws, for each note: a species
// (by weight), a disease of that species (by prevalence), each of the disease's signs (by its
// probability; at least one), an age, a sex, a duration and a template, and renders the note.
// Label noise replaces the diagnosis by another plausible one of the same species; duplication
// repeats an earlier note. Everything comes from one seeded vet_rng: same table, same options,
// same seed, same bytes.
#ifndef VET_SYNTH_H
#define VET_SYNTH_H

#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "base/rng.h"

typedef struct {
    char *name;        // "Cow": the `species` column and the plain subject of a note
    double weight;     // relative share of notes
    char *young, *female, *male;  // words for a young animal, an adult female, an adult male
    double max_age;    // years
} vet_synth_species;

typedef struct {
    char *name;        // canonical name: the `symptoms` column
    char **phrases;    // how a note may say it (one picked at random)
    int nphrases;
    int female_only;   // udder, milk, abortion: not recorded for male animals
    char *group;       // signs of one group exclude each other in a note (fever, high fever)
} vet_synth_sign;

typedef struct {
    char *code;        // SNOMED-CT concept id
    char *name;        // short name: the `disease` column
    char *term;        // readable term, as in codes.tsv
    int female_only;
    double age_min, age_max;  // years; age_max 0 = no limit beyond the species'
    int chronic;       // duration in weeks instead of days
    double *prevalence;// [nspecies] relative prevalence among that species' cases (0 = absent)
    double *p;         // [nsigns] probability that a note records the sign
    int line;          // where it was declared, for messages
} vet_synth_disease;

typedef struct {
    char *path;        // as given, for messages
    vet_synth_species *species;
    int nspecies;
    vet_synth_sign *signs;
    int nsigns;
    vet_synth_disease *diseases;
    int ndiseases;
    char **templates;
    int ntemplates;
} vet_synth_table;

// Parses a table from text in memory; name is used in messages ("name:12: ...", err->line 12).
vet_synth_table *vet_synth_table_parse(const char *text, const char *name, vet_err *err);
vet_synth_table *vet_synth_table_load(const char *path, vet_err *err);
void vet_synth_table_free(vet_synth_table *t);
// Index of a species / disease by name (case-insensitive) or code, or -1.
int vet_synth_species_index(const vet_synth_table *t, const char *name);
int vet_synth_disease_index(const vet_synth_table *t, const char *code);

typedef struct {
    uint64_t seed;
    double noise;          // probability that a row's label is replaced by another disease
    double dup;            // probability that a row repeats an earlier row's note
    const char *species;   // comma-separated species to keep, or NULL for all
    long count;            // rows vet_synth_write_file writes
    int alpaca_text;       // vet_synth_write_file: Alpaca text instead of CSV
} vet_synth_opts;

// seed 1, noise 0.05, dup 0.2, every species, 2000 rows, CSV.
vet_synth_opts vet_synth_defaults(void);

typedef struct {
    char id[32];
    int species;       // index into table->species
    int disease;       // the label written out (after noise)
    int true_disease;  // the disease the signs were drawn from
    int dup_of;        // -1, or the index of the earlier row whose note this repeats
    char *note;
    char *symptoms;    // canonical sign names in note order, ';'-joined
} vet_synth_row;

typedef struct vet_synth_gen vet_synth_gen;

// n: how many rows will be drawn (sets the width of the ids: syn-0001 ...). Options that cannot
// work (a probability outside [0,1], an unknown species, no species left to draw) are a
// VET_E_USAGE error.
vet_synth_gen *vet_synth_gen_new(const vet_synth_table *t, const vet_synth_opts *o, long n,
                                 vet_err *err);
// The next row; valid until vet_synth_gen_free (the generator keeps earlier rows to repeat).
const vet_synth_row *vet_synth_gen_next(vet_synth_gen *g, vet_err *err);
void vet_synth_gen_free(vet_synth_gen *g);

// Output. The CSV has the columns of the DLO notes: id,species,note,codes,disease,symptoms.
int vet_synth_write_csv_header(FILE *f, vet_err *err);
int vet_synth_write_csv_row(FILE *f, const vet_synth_table *t, const vet_synth_row *r, vet_err *err);
// The row rendered in the Alpaca prompt template (instruction, input, response), as text for
// training a tokenizer: prompt and response, then a newline.
int vet_synth_write_alpaca(FILE *f, const vet_synth_table *t, const vet_synth_row *r, vet_err *err);

typedef struct {
    long rows;        // written
    long repeated;    // of which repeat an earlier note (dup)
    long relabelled;  // of which carry another disease's label (noise)
} vet_synth_counts;

// vet-synth's job: o->count rows drawn from t written to path ("-": stdout), as CSV or (with
// o->alpaca_text) Alpaca text, through a temporary file renamed into place when whole
// (base/atomic_file.h). 0, or -1 with err: VET_E_USAGE for options that cannot work with t
// (see vet_synth_gen_new), VET_E_IO for a write that failed ("path: ...").
int vet_synth_write_file(const vet_synth_table *t, const vet_synth_opts *o, const char *path, vet_synth_counts *c,
                         vet_err *err);

// The Alpaca template pieces used by vet_synth_write_alpaca (the built-in "alpaca" template).
extern const char vet_synth_alpaca_header[];
extern const char vet_synth_alpaca_instruction[];

#endif
