// tokenize_job.c — see tokenize_job.h. The job opens what it needs in a fixed order (template,
// tokenizer, input, rejects file, output: the first that fails names the problem), then turns
// notes into records one at a time, then closes the outputs all together.
#include "data/tokenize_job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/input_file.h"
#include "base/strtab.h"
#include "data/template.h"
#include "data/tokenizer.h"
#include "io/mp.h"
#include "io/stream.h"

// Where an id was written: the line of its note, and whether it is that note's species-swapped
// copy (its id ID~PARTNER made here, not read).
typedef struct {
    long line;
    int copy;
} id_origin;

typedef struct {
    const vet_tokenize_opts *o;
    vet_tokenize_summary *sum;
    vet_template *tpl;
    vet_tokenizer *tok;          // NULL with o->text
    int bos, eos;                // bos: -1 when prompts begin without one; eos: the tokenizer's
    FILE *in;
    const char *in_name;         // the input in messages: its path, or "<stdin>"
    vet_notes *src;
    vet_writer *w;               // the stream, or with o->text:
    vet_afile text;
    int text_open;
    vet_afile rejects;           // the rejects file when the job opened it
    int rejects_open;
    FILE *rejects_f;             // where rejected rows go; NULL: a bad row stops the job
    int32_t *pids, *rids;        // encode buffers, reused note to note
    size_t pcap, rcap;
    vet_text prompt, response;   // the note being written, rendered
    vet_text copy_id, copy_note, copy_input;  // the strings of its species-swapped copy
    long first_reject_line;      // the first rejected row, for "all rows were rejected"
    char first_reject[512];
    // With a template that shows no note (alpaca-noinput: a record's instruction alone), the first
    // note's prompt, and whether any later note's prompt differs from it (one_prompt_checked).
    int one_prompt_checked, prompts_differ;
    vet_text first_prompt;
    unsigned long long originals;  // notes written, copies not counted
    vet_strtab ids;              // the ids written (copies' too), and where each came from (id_from[id])
    id_origin *id_from;
    size_t id_cap;
} job;

vet_tokenize_opts vet_tokenize_defaults(void) {
    return (vet_tokenize_opts){.input = "-", .output = "-", .template_spec = "alpaca", .max_len = 512};
}

void vet_tokenize_summary_free(vet_tokenize_summary *sum) {
    vet_len_hist_free(&sum->prompt);
    vet_len_hist_free(&sum->response);
    vet_len_hist_free(&sum->total);
}

// A failure while writing the output is an I/O error for the caller, whatever failed inside the
// writer (a write, a sync, the compressor); only running out of memory stays what it is.
static int output_failed(vet_err *err) {
    if (err->kind != VET_E_NOMEM) err->kind = VET_E_IO;
    return -1;
}

// --- opening --------------------------------------------------------------------------------

static int check_opts(const vet_tokenize_opts *o, vet_err *err) {
    if (o->text && o->stats)
        return vet_err_kindf(err, VET_E_USAGE, "--text and --stats do not go together (--text tokenizes nothing)");
    if (!o->text && !o->tokenizer)
        return vet_err_kindf(err, VET_E_USAGE,
                             "--tokenizer PATH is required (the base model's tokenizer.model, tokenizer.json or directory)");
    return 0;
}

static int open_tokenizer(job *j, vet_err *err) {
    if (j->o->text) return 0;
    if (!(j->tok = vet_tokenizer_load(j->o->tokenizer, err))) return -1;
    snprintf(j->sum->tokenizer_choice, sizeof j->sum->tokenizer_choice, "%s", vet_tokenizer_choice(j->tok));
    j->bos = vet_tokenizer_add_bos(j->tok) ? vet_tokenizer_bos_id(j->tok) : -1;
    j->eos = vet_tokenizer_eos_id(j->tok);
    if (j->eos < 0)
        return vet_errf(err, "%s: the tokenizer has no EOS id: a response could not end", vet_tokenizer_path(j->tok));
    return 0;
}

// A column flag names a CSV column: on JSON or JSONL input, whose records have fixed keys, it
// would do nothing (--codes-col labels read the codes from "snomed_codes" all the same).
static int check_column_flags(const job *j, vet_err *err) {
    const vet_notes_opts *n = &j->o->notes;
    const char *given[] = {n->id_col, n->species_col, n->note_col, n->codes_col, n->disease_col};
    static const char *const flag[] = {"--id-col", "--species-col", "--note-col", "--codes-col", "--disease-col"};
    if (vet_notes_format_of(j->src) == VET_NOTES_CSV) return 0;
    for (size_t k = 0; k < sizeof given / sizeof *given; k++)
        if (given[k])
            return vet_err_kindf(err, VET_E_USAGE, "%s: %s names a CSV column, and this input is %s (Alpaca "
                                 "records have fixed keys: id, animal, input, snomed_codes, disease): leave it out",
                                 j->in_name, flag[k], vet_notes_format_name(vet_notes_format_of(j->src)));
    return 0;
}

static int open_input(job *j, vet_err *err) {
    j->in_name = strcmp(j->o->input, "-") == 0 ? "<stdin>" : j->o->input;
    if (!(j->in = vet_input_open(j->o->input, "notes file", err))) return -1;
    vet_notes_opts nopt = j->o->notes;
    nopt.note_prefix = vet_template_note_prefix(j->tpl);  // what the template puts before an Alpaca note
    if ((j->src = vet_notes_open(j->in, j->in_name, &nopt, err))) {
        // CSV notes reach the prompt only through {note}: without it every prompt is the same.
        if (vet_notes_format_of(j->src) == VET_NOTES_CSV && !vet_template_shows_note(j->tpl))
            return vet_err_kindf(err, VET_E_USAGE, "%s: template %s never shows a CSV note's text: put {note} in "
                                 "the prompt, or in --input-format (with {input} in the prompt)", j->in_name,
                                 vet_template_name(j->tpl));
        j->one_prompt_checked = !vet_template_shows_note(j->tpl);  // Alpaca: its instruction may tell them apart
        return check_column_flags(j, err);
    }
    if (ferror(j->in)) err->kind = VET_E_IO;  // the header could not be read, rather than was bad
    return -1;
}

static int open_rejects(job *j, vet_err *err) {
    if (j->o->rejects_stream) {
        j->rejects_f = j->o->rejects_stream;
    } else if (j->o->rejects) {
        if (vet_afile_open(&j->rejects, j->o->rejects, err) < 0) return -1;
        j->rejects_open = 1;
        j->rejects_f = j->rejects.f;
    }
    return 0;
}

// The stream's header: the tokenizer and the template (so that a reader can tell which ids and
// which prompts it holds) and the source.
static int write_header(job *j, vet_err *err) {
    msgpack_packer *pk = vet_writer_packer(j->w);
    vet_writer_header_begin(j->w, 3);
    mp_key(pk, "tokenizer");
    msgpack_pack_map(pk, 7);
    mp_kv_str(pk, "sha256", vet_tokenizer_sha256(j->tok));
    mp_kv_str(pk, "kind", vet_tokenizer_kind_name(j->tok));
    mp_kv_int(pk, "vocab_size", vet_tokenizer_vocab_size(j->tok));
    mp_kv_int(pk, "bos_id", vet_tokenizer_bos_id(j->tok));
    mp_kv_int(pk, "eos_id", j->eos);
    mp_kv_int(pk, "pad_id", vet_tokenizer_pad_id(j->tok));
    mp_kv_int(pk, "unk_id", vet_tokenizer_unk_id(j->tok));
    mp_key(pk, "template");
    msgpack_pack_map(pk, 5);
    mp_kv_str(pk, "name", vet_template_name(j->tpl));
    mp_kv_str(pk, "sha256", vet_template_sha256(j->tpl));
    mp_kv_str(pk, "instruction", vet_template_instruction(j->tpl));
    mp_kv_str(pk, "response_prefix", vet_template_response_prefix(j->tpl));
    mp_kv_str(pk, "response_format", vet_template_response_format(j->tpl));
    mp_kv_path(pk, "source", j->o->input);
    return vet_writer_header_end(j->w, err) ? output_failed(err) : 0;
}

static int open_output(job *j, vet_err *err) {
    if (j->o->text) {
        if (vet_afile_open(&j->text, j->o->output, err) < 0) return -1;
        j->text_open = 1;
        return 0;
    }
    if (!(j->w = vet_writer_open(j->o->output, "tokens", "vet-tokenize", err))) return output_failed(err);
    return write_header(j, err);
}

// An output that names the input would be written over what is being read: refused before
// anything is opened (the stream, the text, the rejects file alike).
static int check_outputs(const vet_tokenize_opts *o, vet_err *err) {
    if (vet_refuse_overwrite("-o", o->output, o->input, err)) return -1;
    if (o->rejects && !o->rejects_stream && vet_refuse_overwrite("--skip-bad", o->rejects, o->input, err)) return -1;
    return 0;
}

static int open_all(job *j, vet_err *err) {
    const vet_tokenize_opts *o = j->o;
    if (check_outputs(o, err)) return -1;
    j->tpl = vet_template_open(o->template_spec, o->instruction, o->input_format, o->response_format, err);
    if (!j->tpl) return -1;
    if (check_opts(o, err) || open_tokenizer(j, err) || open_input(j, err) || open_rejects(j, err) ||
        open_output(j, err))
        return -1;
    return 0;
}

// --- one record -----------------------------------------------------------------------------

static int push_id(int32_t **ids, size_t *n, size_t *cap, int32_t id, vet_err *err) {
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 256;
        int32_t *p = realloc(*ids, c * sizeof *p);
        if (!p) return vet_err_nomem(err, "out of memory");
        *ids = p;
        *cap = c;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

// The rendered note's ids: prompt = [BOS] + encode(prompt) (BOS when the tokenizer adds one),
// response = encode(response) + [EOS].
static int encode(job *j, size_t *np, size_t *nr, vet_err *err) {
    *np = *nr = 0;
    if (j->bos >= 0 && push_id(&j->pids, np, &j->pcap, j->bos, err)) return -1;
    if (vet_tokenizer_encode(j->tok, j->prompt.s, j->prompt.len, &j->pids, np, &j->pcap, err) ||
        vet_tokenizer_encode(j->tok, j->response.s, j->response.len, &j->rids, nr, &j->rcap, err))
        return -1;
    return push_id(&j->rids, nr, &j->rcap, j->eos, err);
}

// A record's labels: its codes, or when it has none its disease name, or nothing.
static void pack_codes(msgpack_packer *pk, const vet_note *n) {
    mp_key(pk, "codes");
    if (n->n_codes) {
        msgpack_pack_array(pk, (uint32_t)n->n_codes);
        for (size_t i = 0; i < n->n_codes; i++) mp_str(pk, n->codes[i]);
    } else if (*n->disease) {
        msgpack_pack_array(pk, 1);
        mp_str(pk, n->disease);
    } else {
        msgpack_pack_array(pk, 0);
    }
}

static int count_lengths(job *j, size_t np, size_t nr, vet_err *err) {
    vet_tokenize_summary *s = j->sum;
    if (vet_len_hist_add(&s->prompt, np) || vet_len_hist_add(&s->response, nr) || vet_len_hist_add(&s->total, np + nr))
        return vet_err_nomem(err, "out of memory");
    uint64_t total = np + nr, max = (uint64_t)j->o->max_len;
    s->over_max_len += total > max;
    s->real_tokens += total > max ? max : total;
    return 0;
}

// A note with nothing to answer: no codes, no disease and no Alpaca output of its own. Its
// response is the bare prefix, right for a new note to code and wrong to train on: the record
// says so ("unlabeled"), and vet-pack refuses it.
static bool unlabeled(const vet_note *n) {
    return n->n_codes == 0 && !*n->disease && !(n->output && *n->output);
}

static int write_record(job *j, const vet_note *n, const char *copy_of, vet_err *err) {
    size_t np, nr;
    if (encode(j, &np, &nr, err)) return -1;
    msgpack_packer *pk = vet_writer_packer(j->w);
    bool no_answer = unlabeled(n);
    msgpack_pack_map(pk, 6 + (copy_of != NULL) + no_answer);
    mp_kv_str(pk, "id", n->id);
    mp_kv_str(pk, "species", n->species);
    pack_codes(pk, n);
    mp_kv_str(pk, "note", n->note);
    mp_kv_i32_array(pk, "prompt", j->pids, np);
    mp_kv_i32_array(pk, "response", j->rids, nr);
    if (copy_of) mp_kv_str(pk, "copy_of", copy_of);
    if (no_answer) {
        mp_key(pk, "unlabeled");
        msgpack_pack_true(pk);
    }
    j->sum->unlabeled += no_answer;
    if (vet_writer_record_end(j->w, err)) return output_failed(err);
    return j->o->stats ? count_lengths(j, np, nr, err) : 0;
}

static int write_text(job *j, vet_err *err) {
    FILE *f = j->text.f;
    fwrite(j->prompt.s, 1, j->prompt.len, f);
    fwrite(j->response.s, 1, j->response.len, f);
    if (fputc('\n', f) == EOF) return vet_err_io(err, "%s: write failed", j->o->output);
    return 0;
}

// With a template that shows no note, whether this original's prompt is the first one's.
static int note_prompt(job *j, vet_err *err) {
    if (!j->one_prompt_checked || j->prompts_differ) return 0;
    if (j->originals == 0) {
        j->first_prompt.len = 0;
        return vet_text_append(&j->first_prompt, j->prompt.s, j->prompt.len) ? vet_err_nomem(err, "out of memory") : 0;
    }
    j->prompts_differ = j->prompt.len != j->first_prompt.len || memcmp(j->prompt.s, j->first_prompt.s, j->prompt.len);
    return 0;
}

// Every note one prompt: the model reads the same words for every note and cannot tell one from
// another (Alpaca records that share one instruction under alpaca-noinput, which shows the
// instruction alone; a CSV note is refused up front by the template check). Stops the job.
static int refuse_one_prompt(const job *j, vet_err *err) {
    if (!j->one_prompt_checked || j->prompts_differ || j->originals < 2) return 0;
    return vet_errf(err, "%s: all %llu notes have the same prompt: template %s shows none of a note's text (%s), so a "
                    "model could not tell them apart: use a template that shows the note (alpaca shows a record's "
                    "input)", j->in_name, j->originals, vet_template_name(j->tpl),
                    "alpaca-noinput shows a record's instruction alone, and these records share one");
}

// Writes one rendered note: an original, or a copy when copy_of (its original's id) is set.
static int emit(job *j, const vet_note *n, const char *copy_of, vet_err *err) {
    if (!copy_of && note_prompt(j, err)) return -1;
    if (j->o->text ? write_text(j, err) : write_record(j, n, copy_of, err)) return -1;
    j->originals += copy_of == NULL;
    j->sum->written++;
    j->sum->copies += copy_of != NULL;
    return 0;
}

static int render(job *j, const vet_note *n, vet_err *err) {
    if (vet_template_prompt(j->tpl, n, &j->prompt, err) || vet_template_response(j->tpl, n, &j->response, err))
        return -1;
    return 0;
}

// A note whose id a record written before has: VET_E_INPUT naming that one. Every later program
// pairs a note's records by id (vet-eval refuses a repeat at the end of the pipeline), so it is
// caught here, before any generation time is spent on it. A species-swapped copy's id counts as
// well: a note "1~Buffalo" beside the copy of note 1 as Buffalo was a second "1~Buffalo" in the
// stream, and vet-pack gave the copy's split to whichever it met.
static int check_id(const job *j, const vet_note *n, vet_err *err) {
    long id = vet_strtab_find(&j->ids, n->id);
    if (id < 0) return 0;
    const id_origin *o = &j->id_from[id];
    return vet_err_kindf(err, VET_E_INPUT, "id '%s' appears twice (first at line %ld%s): each note needs an id of its "
                         "own", n->id, o->line, o->copy ? ", the species-swapped copy of that line's note" : "");
}

// A record written: its id taken.
static int remember_id(job *j, const vet_note *n, int copy, vet_err *err) {
    long id = vet_strtab_intern(&j->ids, n->id);
    if (id < 0) return vet_err_nomem(err, "out of memory");
    if ((size_t)id >= j->id_cap) {
        size_t cap = j->id_cap ? 2 * j->id_cap : 1024;
        id_origin *p = realloc(j->id_from, cap * sizeof *p);
        if (!p) return vet_err_nomem(err, "out of memory");
        j->id_from = p, j->id_cap = cap;
    }
    j->id_from[id] = (id_origin){.line = n->line, .copy = copy};
    return 0;
}

// --- rejected rows and species-swapped copies -----------------------------------------------

// Puts the note's place in front of err's message ("file:line: ", for a copy "file:line: its
// PARTNER copy: ") and sets err->line. Returns -1.
static int at_note(const job *j, const vet_note *n, const char *partner, vet_err *err) {
    if (partner) vet_err_prefix(err, "%s:%ld: its %s copy", j->in_name, n->line, partner);
    else vet_err_prefix(err, "%s:%ld", j->in_name, n->line);
    return vet_err_at_line(err, n->line);
}

// s with \\ \t \n \r escaped: one rejected row stays one line of the rejects file.
static void put_escaped(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\') fputs("\\\\", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else fputc(c, f);
    }
}

// A row that cannot become a record: with a rejects file it is written there as
// LINE<TAB>REASON<TAB>RAW and the job goes on (0); without one the job stops on err (-1).
static int set_aside(job *j, long line, const char *reason, vet_err *err) {
    if (!j->rejects_f) return -1;
    size_t rawlen;
    const char *raw = vet_notes_raw(j->src, &rawlen);
    fprintf(j->rejects_f, "%ld\t", line);
    put_escaped(j->rejects_f, reason, strlen(reason));
    fputc('\t', j->rejects_f);
    put_escaped(j->rejects_f, raw, rawlen);
    fputc('\n', j->rejects_f);
    if (j->sum->rejected++ == 0) {  // kept for the message when no row at all is good
        j->first_reject_line = line;
        snprintf(j->first_reject, sizeof j->first_reject, "%s", reason);
    }
    return 0;
}

// The species-swapped copy of a note (swap.h): species, note and Alpaca input swapped, id
// "ID~PARTNER". Its strings live in the job's copy buffers.
static int make_copy(job *j, const vet_note *n, const char *partner, vet_note *copy, vet_err *err) {
    *copy = *n;
    j->copy_id.len = j->copy_note.len = j->copy_input.len = 0;
    if (vet_text_append(&j->copy_id, n->id, strlen(n->id)) || vet_text_append(&j->copy_id, "~", 1) ||
        vet_text_append(&j->copy_id, partner, strlen(partner)) || vet_text_append(&j->copy_note, "", 0) ||
        vet_text_append(&j->copy_input, "", 0))
        return vet_err_nomem(err, "out of memory");
    if (vet_swap_words(n->note, n->species, partner, &j->copy_note, err) < 0) return -1;
    if (n->input && vet_swap_words(n->input, n->species, partner, &j->copy_input, err) < 0) return -1;
    copy->id = j->copy_id.s;
    copy->species = partner;
    copy->note = j->copy_note.s;
    copy->input = n->input ? j->copy_input.s : NULL;
    return 0;
}

// The copy right after its original. A note that rendered renders again under another species
// name, so a failure here is the copy's own: it stops the job, rejects file or not.
static int write_copy(job *j, const vet_note *n, vet_err *err) {
    const char *partner = j->o->swap && j->o->swap->n ? vet_swap_partner(j->o->swap, n->species) : NULL;
    if (!partner) return 0;
    vet_note copy;
    if (make_copy(j, n, partner, &copy, err) || check_id(j, &copy, err) || render(j, &copy, err) ||
        emit(j, &copy, n->id, err))
        return err->kind == VET_E_INPUT ? at_note(j, n, partner, err) : -1;
    return remember_id(j, &copy, 1, err);
}

// --- the run --------------------------------------------------------------------------------

// One note read well: its id checked and the note rendered (either failing rejects the row),
// written, followed by its copy.
static int take_note(job *j, const vet_note *n, vet_err *err) {
    if (check_id(j, n, err) || render(j, n, err)) {
        if (err->kind != VET_E_INPUT) return -1;
        char reason[sizeof err->msg];  // the rejects file wants the reason without "file:line: "
        memcpy(reason, err->msg, sizeof reason);
        at_note(j, n, NULL, err);
        return set_aside(j, n->line, reason, err);
    }
    if (emit(j, n, NULL, err)) return err->kind == VET_E_INPUT ? at_note(j, n, NULL, err) : -1;  // the tokenizer refused it
    return remember_id(j, n, 0, err) || write_copy(j, n, err) ? -1 : 0;
}

// A file that yields no note is refused, whatever the cause (only a header row, `[]`, every row
// rejected, line ends the reader took for something else): an empty stream would flow on
// through vet-pack and vet-train as if it were data.
static int no_notes(const job *j, vet_err *err) {
    const vet_tokenize_summary *s = j->sum;
    if (s->read == 0)
        return vet_errf(err, "%s: no notes in the input (a header row and nothing else?): nothing to tokenize",
                        j->in_name);
    return vet_errf(err, "%s: all %llu rows were rejected, the first at line %ld: %s", j->in_name,
                    (unsigned long long)s->rejected, j->first_reject_line, j->first_reject);
}

static int process(job *j, vet_err *err) {
    vet_note note;
    int rc;
    while ((rc = vet_notes_next(j->src, &note, err)) != VET_NOTE_EOF) {
        if (rc == VET_NOTE_IOERR || rc == VET_NOTE_FATAL) return -1;
        j->sum->read++;
        if (rc == VET_NOTE_BAD ? set_aside(j, err->line, vet_notes_reason(j->src), err)
                               : take_note(j, &note, err))
            return -1;
    }
    return j->sum->written == 0 ? no_notes(j, err) : refuse_one_prompt(j, err);
}

// On success every output is finished (flushed, synced) before any is renamed into place; on
// failure (ok == 0) every temporary is removed and err is left as it is.
static int close_outputs(job *j, int ok, vet_err *err) {
    if (ok && j->rejects_open && vet_afile_finish(&j->rejects, err) < 0) ok = 0;
    if (j->w) {
        if (!ok) {
            vet_writer_abort(j->w);
        } else if (vet_writer_close(j->w, err) < 0) {
            output_failed(err);
            ok = 0;
        }
        j->w = NULL;
    }
    if (j->text_open) {
        if (!ok) vet_afile_abort(&j->text);
        else if (vet_afile_commit(&j->text, err) < 0) ok = 0;
        j->text_open = 0;
    }
    if (j->rejects_open) {
        if (!ok) vet_afile_abort(&j->rejects);
        else if (vet_afile_publish(&j->rejects, err) < 0) ok = 0;
        j->rejects_open = 0;
    }
    return ok ? 0 : -1;
}

static void job_free(job *j) {
    vet_strtab_free(&j->ids);
    free(j->id_from);
    free(j->pids);
    free(j->rids);
    vet_text_free(&j->prompt);
    vet_text_free(&j->response);
    vet_text_free(&j->copy_id);
    vet_text_free(&j->copy_note);
    vet_text_free(&j->copy_input);
    vet_text_free(&j->first_prompt);
    vet_notes_close(j->src);
    vet_input_close(j->in);
    vet_tokenizer_free(j->tok);
    vet_template_free(j->tpl);
}

int vet_tokenize_run(const vet_tokenize_opts *o, vet_tokenize_summary *sum, vet_err *err) {
    vet_err dropped;
    if (!err) err = &dropped;  // the steps below read err back (its kind, its line)
    memset(sum, 0, sizeof *sum);
    job j = {.o = o, .sum = sum, .bos = -1, .eos = -1};
    int ok = open_all(&j, err) == 0 && process(&j, err) == 0;
    int rc = close_outputs(&j, ok, err);
    job_free(&j);
    return rc;
}
