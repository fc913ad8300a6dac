// job.c — one vet-generate run (see job.h): the checks before anything is written, then the
// decoder's two callbacks, which read the next prompt and write finished notes in input order.
#include "generate/job.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/input_file.h"
#include "data/labels.h"
#include "data/tokenizer.h"
#include "generate/constrain.h"
#include "generate/ensemble.h"
#include "generate/pending.h"
#include "generate/predictions.h"
#include "generate/prompts.h"
#include "generate/rank.h"
#include "io/mp.h"

struct vet_generate_job {
    vet_generate_opts o;
    // the input and what its header says
    vet_prompts *in;
    const msgpack_object *tokenizer, *tmpl;  // the header's, valid while in is open
    const msgpack_object *fold;              // the header's `fold` (vet-pack --fold), or NULL
    const char *in_sha;                      // the tokenizer's sha256 the input was made with
    size_t in_sha_len;
    char in_kind[16];                        // and its kind ("spm" when the header has none)
    char *prefix;                            // the template's response prefix
    // what turns ids into text and text into labels
    vet_tokenizer *tok;
    vet_labels *constrain_table, *codes;     // --constrain, --codes (codes gets the table's labels too)
    const vet_labels *vocab;                 // the labels to find: codes, else the constrain table
    // the models and how decoding ends
    vet_gen_models models;
    int V;
    int32_t eos[VET_MAX_EOS + 1];            // config.json's end ids and the tokenizer's
    int n_eos;
    vet_constrain *cons;
    vet_rank_answers answers;                // --rank: every label's answer
    // the forward: handed in (a device), or made on the CPU by run
    vet_infer_backend be;
    int have_backend, max_pos;
    vet_infer *cpu;
    vet_ensemble *ens;
    // the output
    vet_writer *w;
    vet_pending *pending;
    vet_generate_counts counts;
    double t0;
    // with a shard: the input's notes and digest (counted before the header), and the notes
    // read so far and their digest (the same at the end, or the input changed between the reads)
    int64_t input_notes, seen;
    char input_digest[17];
    vet_input_digest seen_digest;
};

vet_generate_opts vet_generate_defaults(void) {
    vet_generate_opts o;
    memset(&o, 0, sizeof o);
    o.input = "-", o.output = "-";
    o.max_new = 100, o.batch = 8;
    o.sampling = (vet_sampling){0.0f, 1.0f, 0};
    o.rank_temperature = 1.0;
    return o;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ---------------------------------------------------------------------------------------
// Open: each step checks what the one before it read.

// The input, and from its header the tokenizer's hash and the template's response prefix.
static int open_input(vet_generate_job *j, vet_err *err) {
    if (!(j->in = vet_prompts_open(j->o.input, err))) return -1;
    const msgpack_object *h = vet_prompts_header(j->in);
    j->tokenizer = mp_get(h, "tokenizer"), j->tmpl = mp_get(h, "template"), j->fold = mp_get(h, "fold");
    if (!j->tokenizer || mp_get_str(j->tokenizer, "sha256", &j->in_sha, &j->in_sha_len, err))
        return vet_errf(err, "%s: header lacks tokenizer.sha256 (not made by vet-tokenize?)",
                        vet_prompts_path(j->in));
    vet_tokenizer_header_kind(j->tokenizer, j->in_kind, sizeof j->in_kind);
    if (j->tmpl && j->tmpl->type == MSGPACK_OBJECT_MAP && mp_get(j->tmpl, "response_prefix"))
        j->prefix = mp_get_strdup(j->tmpl, "response_prefix", err);
    if (!j->prefix && !(j->prefix = strdup(VET_GENERATE_DEFAULT_PREFIX))) return vet_err_nomem(err, "out of memory");
    return 0;
}

// 1 when a response format is its literal prefix then one {codes} or {disease} and nothing
// more: what --constrain and --rank force (prefix, a label, the end). ("{{" and "}}" are literal
// braces, as data/template.h reads them.)
static int answer_shaped(const char *fmt, size_t n) {
    size_t i = 0;
    while (i < n && !(fmt[i] == '{' && (i + 1 == n || fmt[i + 1] != '{')))
        i += (fmt[i] == '{' || fmt[i] == '}') && i + 1 < n && fmt[i + 1] == fmt[i] ? 2 : 1;
    const char *tail = fmt + i;
    size_t rest = n - i;
    return (rest == 7 && memcmp(tail, "{codes}", 7) == 0) || (rest == 9 && memcmp(tail, "{disease}", 9) == 0);
}

// --constrain and --rank make the answer prefix + a label + the end: refused for an input whose
// template trained another shape ("For {species}: {codes}", text after the codes), where they
// would force what the model never learnt. A header from before response_format is taken as is.
static int check_answer_shape(const vet_generate_job *j, vet_err *err) {
    const msgpack_object *f = j->constrain_table && j->tmpl && j->tmpl->type == MSGPACK_OBJECT_MAP
                                  ? mp_get(j->tmpl, "response_format") : NULL;
    if (!f || f->type != MSGPACK_OBJECT_STR) return 0;
    // judged whole (a format of any length); shown up to 200 bytes
    const char *fmt = f->via.str.ptr;
    size_t n = f->via.str.size;
    if (answer_shaped(fmt, n)) return 0;
    return vet_err_kindf(err, VET_E_USAGE, "%s: %s makes each answer '%s' + a label + the end, but the input's "
                         "template answers '%.*s%s': generate without it, or tokenize with a response format of "
                         "that shape (text, then {codes})", vet_prompts_path(j->in),
                         j->o.rank > 0 ? "--rank" : "--constrain", j->prefix, (int)(n > 200 ? 200 : n), fmt,
                         n > 200 ? "..." : "");
}

// The tokenizer (--tokenizer, else the first model's directory), and the check that the input
// was made with it: the same file (sha256), so the same kind.
static int load_tokenizer(vet_generate_job *j, vet_err *err) {
    const char *path = j->o.tokenizer ? j->o.tokenizer : j->o.models[0];
    if (!(j->tok = vet_tokenizer_load(path, err))) return -1;  // corrupt: VET_E_INPUT, unreadable: VET_E_IO
    const char *sha = vet_tokenizer_sha256(j->tok), *shown = vet_tokenizer_path(j->tok);
    const char *kind = vet_tokenizer_kind_name(j->tok);
    char kinds[96] = "";
    if (strcmp(kind, j->in_kind) != 0)
        snprintf(kinds, sizeof kinds, " (a %s tokenizer's ids, decoded with a %s tokenizer)", j->in_kind, kind);
    if (strlen(sha) != j->in_sha_len || strncmp(sha, j->in_sha, j->in_sha_len) != 0)
        return vet_errf(err, "tokenizer mismatch: %s was tokenized with a tokenizer of sha256 %.*s, but %s has sha256 "
                        "%s%s (tokenize with %s, or give the right one with --tokenizer)", vet_prompts_path(j->in),
                        (int)j->in_sha_len, j->in_sha, shown, sha, kinds, shown);
    return 0;
}

// The code tables; the labels to find in the text are those of both.
static int load_tables(vet_generate_job *j, vet_err *err) {
    const char *cpath = j->o.constrain;
    if (cpath && !(j->constrain_table = vet_codes_load_path(cpath, err))) return -1;
    if (j->o.codes && !(j->codes = vet_codes_load_path(j->o.codes, err))) return -1;
    for (size_t i = 0; j->codes && j->constrain_table && i < vet_labels_count(j->constrain_table); i++) {
        const char *l = vet_labels_label(j->constrain_table, i);
        if (vet_labels_add(j->codes, l, vet_labels_term(j->constrain_table, l), err))
            return vet_err_prefix(err, "%s", cpath);
    }
    j->vocab = j->codes ? j->codes : j->constrain_table;
    return 0;
}

// Decoding ends at config.json's end-of-sequence ids, and at the tokenizer's when the model's
// vocabulary has it and config.json does not list it.
static void end_ids(vet_generate_job *j) {
    const vet_config *c = &j->models.m[0].cfg;
    j->n_eos = 0;
    for (int i = 0; i < c->n_eos; i++) j->eos[j->n_eos++] = c->eos_ids[i];
    int tok_eos = vet_tokenizer_eos_id(j->tok), have = 0;
    for (int i = 0; i < j->n_eos; i++) have |= j->eos[i] == tok_eos;
    if (tok_eos >= 0 && tok_eos < j->V && !have) j->eos[j->n_eos++] = tok_eos;
}

// Constrained decoding over the --constrain table, in the tokenizer's pieces.
static int build_constrain(vet_generate_job *j, vet_err *err) {
    if (!j->constrain_table) return 0;
    char **pieces = vet_constrain_pieces(j->tok, j->V, err);
    if (!pieces) return -1;
    j->cons = vet_constrain_from_labels(j->prefix, j->constrain_table, pieces, j->V, j->eos, j->n_eos, err);
    vet_constrain_free_pieces(pieces, j->V);
    return j->cons ? 0 : vet_err_prefix(err, "%s", j->o.constrain);
}

// --rank: the constrain table's labels as answers, ended by the id the input's responses end
// with (the header's tokenizer.eos_id, what vet-tokenize appended), else the tokenizer's.
static int build_answers(vet_generate_job *j, vet_err *err) {
    if (j->o.rank <= 0) return 0;
    int64_t eos = vet_tokenizer_eos_id(j->tok);
    const msgpack_object *e = mp_get(j->tokenizer, "eos_id");
    if (e && e->type == MSGPACK_OBJECT_POSITIVE_INTEGER) eos = (int64_t)e->via.u64;
    if (eos < 0 || eos >= j->V)
        return vet_err_kindf(err, VET_E_INPUT, "%s: end-of-sequence id %lld is outside the model's vocabulary "
                             "[0, %d)", vet_prompts_path(j->in), (long long)eos, j->V);
    if (vet_rank_answers_build(&j->answers, j->tok, j->prefix, j->constrain_table, (int32_t)eos, j->V, err))
        return vet_err_prefix(err, "%s", j->o.constrain);
    return 0;
}

// -o must name none of the inputs: the notes, the code tables, the tokenizer, and no file of a
// model or adapter folder (or a GGUF model itself).
static int refuse_overwrite(const vet_generate_opts *o, vet_err *err) {
    if (vet_refuse_overwrite("-o", o->output, o->input, err) || vet_refuse_overwrite("-o", o->output, o->codes, err) ||
        vet_refuse_overwrite("-o", o->output, o->constrain, err) ||
        vet_refuse_overwrite_in("-o", o->output, "--tokenizer", o->tokenizer, err) ||
        vet_refuse_overwrite_in("-o", o->output, "--adapter", o->adapter, err))
        return -1;
    for (int i = 0; i < o->n_models; i++)
        if (vet_refuse_overwrite_in("-o", o->output, "--model", o->models[i], err)) return -1;
    return 0;
}

vet_generate_job *vet_generate_open(const vet_generate_opts *o, vet_err *err) {
    vet_generate_job *j = calloc(1, sizeof *j);
    if (!j) return vet_err_nomem(err, "out of memory"), NULL;
    j->o = *o;
    if (o->n_models < 1) {
        vet_err_kindf(err, VET_E_USAGE, "no model to decode with");
        goto fail;
    }
    if (o->shard_n < 0 || (o->shard_n > 0 && (o->shard_k < 0 || o->shard_k >= o->shard_n))) {
        vet_err_kindf(err, VET_E_USAGE, "--shard %d/%d: want K/N with 0 <= K < N", o->shard_k, o->shard_n);
        goto fail;
    }
    if (o->rank > 0 && !o->constrain) {
        vet_err_kindf(err, VET_E_USAGE, "--rank scores the labels of a code table: give it with --constrain FILE");
        goto fail;
    }
    if (o->rank > 0 && o->sampling.temperature > 0) {
        vet_err_kindf(err, VET_E_USAGE, "--rank scores every answer, it does not sample: drop --temperature");
        goto fail;
    }
    if (!(o->sampling.temperature > 0) && (o->sampling.top_p < 1 || o->sampling.top_k > 0 || o->seed != 0)) {
        vet_err_kindf(err, VET_E_USAGE, "%s shapes sampling, but greedy decoding (no --temperature) samples "
                      "nothing: give --temperature T too, or drop it",
                      o->sampling.top_p < 1 ? "--top-p" : o->sampling.top_k > 0 ? "--top-k" : "--seed");
        goto fail;
    }
    if (!(o->rank_temperature > 0 && o->rank_temperature <= 1e6)) {  // NaN fails too
        vet_err_kindf(err, VET_E_USAGE, "--rank-temperature %g: want a number above 0 (1: the model's own p)",
                      o->rank_temperature);
        goto fail;
    }
    if (o->rank_temperature != 1.0 && o->rank <= 0) {
        vet_err_kindf(err, VET_E_USAGE, "--rank-temperature rescales the p of --rank's scores: give --rank K too");
        goto fail;
    }
    // A pipe with a name (`<(...)`, a FIFO) can be read once, as stdin: its second read would
    // find it empty. (A path that is not there is left to the open, which names it.)
    const int in_stdin = strcmp(o->input, "-") == 0;
    struct stat in_st;
    if (o->shard_n > 0 && (in_stdin || (stat(o->input, &in_st) == 0 && !S_ISREG(in_st.st_mode)))) {
        vet_err_kindf(err, VET_E_USAGE, "--shard reads its input twice (first to count the notes for the header): "
                      "give INPUT as a regular file, not %s", in_stdin ? "stdin" : "a pipe");
        goto fail;
    }
    const vet_named_input ins[] = {{"INPUT", o->input}, {"--codes", o->codes}, {"--constrain", o->constrain}};
    if (vet_refuse_stdin_twice(ins, 3, err)) goto fail;
    // Predictions written over anything this run reads would destroy it: refused before anything opens.
    if (refuse_overwrite(o, err)) goto fail;
    if (open_input(j, err) || load_tokenizer(j, err) || load_tables(j, err) || check_answer_shape(j, err) ||
        vet_gen_models_load(&j->models, o->models, o->n_models, o->adapter, vet_tokenizer_sha256(j->tok),
                            vet_tokenizer_path(j->tok), err))
        goto fail;
    j->V = j->models.m[0].cfg.vocab_size;
    for (int i = 0; i < j->models.k; i++) {
        int c = j->models.m[i].cfg.max_pos;
        if (c > 0 && (j->counts.context == 0 || c < j->counts.context)) j->counts.context = c;
    }
    end_ids(j);
    if (build_constrain(j, err) || build_answers(j, err)) goto fail;
    return j;
fail:
    vet_generate_close(j);
    return NULL;
}

void vet_generate_close(vet_generate_job *j) {
    if (!j) return;
    vet_writer_abort(j->w);
    vet_pending_free(j->pending);
    vet_infer_free(j->cpu);
    vet_ensemble_free(j->ens);
    vet_constrain_free(j->cons);
    vet_rank_answers_free(&j->answers);
    vet_gen_models_free(&j->models);
    vet_labels_free(j->constrain_table);
    vet_labels_free(j->codes);
    vet_tokenizer_free(j->tok);
    free(j->prefix);
    vet_prompts_close(j->in);
    free(j);
}

const char *vet_generate_tokenizer_choice(const vet_generate_job *j) { return vet_tokenizer_choice(j->tok); }

const vet_model *vet_generate_model(const vet_generate_job *j) { return j->models.k ? &j->models.m[0] : NULL; }

void vet_generate_use_backend(vet_generate_job *j, const vet_infer_backend *be, int max_pos) {
    j->be = *be, j->have_backend = 1, j->max_pos = max_pos;
}

void vet_generate_drop_models(vet_generate_job *j) { vet_gen_models_free(&j->models); }

void vet_generate_counts_now(const vet_generate_job *j, vet_generate_counts *c) {
    *c = j->counts;
    c->seconds = j->t0 > 0 ? now_s() - j->t0 : 0.0;
}

// ---------------------------------------------------------------------------------------
// Run: the decoder pulls prompts and hands back finished notes.

// The next prompt of this shard (every prompt without one): the others are read, checked as
// the unsharded run would, and passed over. 1, 0 at the end, -1 on error.
static int shard_prompt(vet_generate_job *j, vet_prompt *p, vet_err *err) {
    for (;;) {
        int rc = vet_prompts_next(j->in, p, err);
        if (rc <= 0) return rc;
        int64_t i = j->seen++;
        if (j->o.shard_n == 0) return 1;
        vet_input_digest_add(&j->seen_digest, p);
        if (i % j->o.shard_n == j->o.shard_k) return 1;
        vet_prompt_free_fields(p);
    }
}

// The decoder's tag of a note is its place in the whole input, which seeds its sampler: a note
// samples the same tokens in a shard as in the unsharded run. The queue's own numbers count this
// shard's notes: shard k of n holds notes k, k + n, ..., so its i-th is note k + i n.
static int64_t input_place(const vet_generate_job *j, int64_t queued) {
    return j->o.shard_n ? j->o.shard_k + queued * j->o.shard_n : queued;
}
static int64_t queue_place(const vet_generate_job *j, int64_t tag) {
    return j->o.shard_n ? (tag - j->o.shard_k) / j->o.shard_n : tag;
}

// The decoder's next prompt; its note gets a place in the queue (written in input order).
static int next_prompt(void *ctx, vet_gen_prompt *gp, vet_err *err) {
    vet_generate_job *j = ctx;
    vet_prompt p;
    int rc = shard_prompt(j, &p, err);
    if (rc <= 0) return rc;
    int64_t tag;
    vet_prediction *n = vet_pending_add(j->pending, &tag, err);
    if (!n) {
        vet_prompt_free_fields(&p);
        return -1;
    }
    n->id = p.id, n->species = p.species, n->gold = p.gold, n->n_gold = p.n_gold, n->n_prompt = p.n_prompt;
    vet_prediction_group(p.prompt, p.n_prompt, n->group);
    gp->tag = input_place(j, tag), gp->prompt = p.prompt, gp->n_prompt = p.n_prompt;
    if (j->counts.context > 0 && p.n_prompt > j->counts.context && j->counts.long_prompts++ == 0)
        snprintf(j->counts.first_long, sizeof j->counts.first_long, "%s", p.id);
    return 1;
}

// A note whose prompt fits the context but whose answer of n tokens does not: its last token
// was predicted from position n_prompt + n - 2, the context or later. Counted, the first named.
static void count_long_answer(vet_generate_job *j, const vet_prediction *p, int n) {
    int context = j->counts.context;
    if (context > 0 && p->n_prompt <= context && (int64_t)p->n_prompt + n - 1 > context &&
        j->counts.long_answers++ == 0)
        snprintf(j->counts.first_long_answer, sizeof j->counts.first_long_answer, "%s", p->id);
}

static int write_one(void *ctx, const vet_prediction *p, vet_err *err) {
    vet_generate_job *j = ctx;
    if (vet_predictions_write(j->w, p, err)) return -1;
    j->counts.notes++, j->counts.tokens += p->n_generated;
    return 0;
}

// A finished note: its text and labels, then every note now due, in input order.
static int note_done(void *ctx, const vet_gen_result *r, vet_err *err) {
    vet_generate_job *j = ctx;
    int64_t queued = queue_place(j, r->tag);
    vet_prediction *p = vet_pending_get(j->pending, queued);
    if (vet_prediction_fill(p, r, j->tok, j->vocab, j->cons, j->eos, j->n_eos, err)) return -1;
    count_long_answer(j, p, r->n_ids);
    vet_pending_done(j->pending, queued);
    if (vet_pending_flush(j->pending, write_one, j, err) < 0) return -1;
    if (j->o.progress) {
        vet_generate_counts c;
        vet_generate_counts_now(j, &c);
        j->o.progress(j->o.progress_ctx, &c);
    }
    return 0;
}

// The CPU's forward when no backend was handed in: one model, or an ensemble of them.
static int cpu_backend(vet_generate_job *j, vet_err *err) {
    if (j->models.k > 1) {
        if (!(j->ens = vet_ensemble_new_cpu(j->models.m, j->models.k, j->o.batch, err))) return -1;
        vet_ensemble_backend(j->ens, &j->be);
    } else {
        if (!(j->cpu = vet_infer_new(&j->models.m[0], j->o.batch, err))) return -1;
        vet_infer_backend_of(j->cpu, &j->be);
    }
    j->have_backend = 1;
    return 0;
}

static int longest_answer(const vet_generate_job *j) {
    int m = 0;
    for (int a = 0; a < j->answers.count; a++) m = j->answers.n[a] > m ? j->answers.n[a] : m;
    return m;
}

// Labels a record lists: K, or the whole table when it holds fewer.
static int ranked_count(const vet_generate_job *j) {
    return j->o.rank < j->answers.count ? j->o.rank : j->answers.count;
}

static vet_predictions_header header_of(const vet_generate_job *j) {
    const vet_generate_opts *o = &j->o;
    return (vet_predictions_header){
        .model = o->models[0], .ensemble = o->models, .n_models = o->n_models, .adapter = o->adapter,
        .tokenizer = j->tokenizer, .tmpl = j->tmpl, .fold = j->fold, .source = o->input, .sampling = o->sampling,
        .seed = o->seed, .max_new = o->max_new, .batch = o->batch, .constrain = o->constrain,
        .shard_k = o->shard_k, .shard_n = o->shard_n, .input_notes = j->input_notes,
        .input_digest = j->input_digest,
        .rank_k = o->rank > 0 ? ranked_count(j) : 0, .rank_labels = j->answers.count,
        .rank_temperature = o->rank_temperature,
    };
}

// Every note through the decoder into the open stream.
static int decode_all(vet_generate_job *j, vet_err *err) {
    const vet_generate_opts *o = &j->o;
    j->t0 = now_s();
    if (!j->have_backend && cpu_backend(j, err)) return -1;
    vet_gen_opts go = {o->sampling, o->seed, o->max_new, j->eos, j->n_eos, j->cons, &j->counts.phases};
    return vet_generate_on(&j->be, j->V, &go, o->batch, next_prompt, note_done, j, err);
}

// --rank: note p's record from the answers' logp: the ranked labels, the best as pred and as
// the text (the answer decoded, as if generated).
static int fill_ranked(vet_generate_job *j, vet_prediction *p, const double *logp, double *prob, int *order,
                       double ms, vet_err *err) {
    const vet_rank_answers *a = &j->answers;
    double log_total;
    vet_rank_order(logp, a->count, j->o.rank_temperature, prob, order, &log_total);
    vet_gen_result r = {0, a->ids[order[0]], a->n[order[0]], 1, ms};
    if (vet_prediction_fill(p, &r, j->tok, j->vocab, NULL, j->eos, j->n_eos, err)) return -1;
    // Every answer was scored: p shares the belief of the longest too, past the context or not.
    int longest = 0;
    for (int i = 0; i < a->count; i++) longest = a->n[i] > longest ? a->n[i] : longest;
    count_long_answer(j, p, longest);
    int k = ranked_count(j);
    vet_labels_free_list(p->pred, p->n_pred);
    p->pred = NULL, p->n_pred = 0;
    p->ranked = calloc((size_t)k, sizeof *p->ranked);
    p->ranked_p = malloc((size_t)k * sizeof *p->ranked_p), p->ranked_logp = malloc((size_t)k * sizeof *p->ranked_logp);
    if (!p->ranked || !p->ranked_p || !p->ranked_logp) return vet_err_nomem(err, "out of memory");
    p->n_ranked = k, p->table_p = exp(log_total);
    for (int i = 0; i < k; i++) {
        if (!(p->ranked[i] = strdup(vet_labels_label(j->constrain_table, (size_t)order[i]))))
            return vet_err_nomem(err, "out of memory");
        p->ranked_p[i] = prob[order[i]], p->ranked_logp[i] = logp[order[i]];
    }
    if (!(p->pred = malloc(sizeof *p->pred)) || !(p->pred[0] = strdup(p->ranked[0])))
        return vet_err_nomem(err, "out of memory");
    p->n_pred = 1;
    return 0;
}

// A round's notes: their prompts copied (a prompt read is valid only until the next is read).
typedef struct {
    int32_t **ids;
    int *lens, *caps;
    int64_t *tags;
    int n, max;
} rank_round;

static void round_free(rank_round *rd) {
    for (int i = 0; rd->ids && i < rd->max; i++) free(rd->ids[i]);
    free(rd->ids), free(rd->lens), free(rd->caps), free(rd->tags);
}

// Up to rd->max next prompts into rd; 1 when it holds any, 0 at the end, -1 on error.
static int round_fill(vet_generate_job *j, rank_round *rd, vet_err *err) {
    rd->n = 0;
    while (rd->n < rd->max) {
        vet_gen_prompt gp;
        int rc = next_prompt(j, &gp, err);
        if (rc < 0) return -1;
        if (rc == 0) break;
        int i = rd->n;
        if (gp.n_prompt > rd->caps[i]) {
            int32_t *p = realloc(rd->ids[i], (size_t)gp.n_prompt * sizeof *p);
            if (!p) return vet_err_nomem(err, "out of memory for a prompt of %d tokens", gp.n_prompt);
            rd->ids[i] = p, rd->caps[i] = gp.n_prompt;
        }
        memcpy(rd->ids[i], gp.prompt, (size_t)gp.n_prompt * sizeof(int32_t));
        rd->lens[i] = gp.n_prompt, rd->tags[i] = gp.tag, rd->n++;
    }
    return rd->n > 0;
}

// Every note's answers scored, vet_ranker_notes at a time (their answers fill the slots).
static int rank_notes(vet_generate_job *j, vet_ranker *rk, double *logp, double *prob, int *order, vet_err *err) {
    int A = j->answers.count, rc;
    rank_round rd = {0};
    rd.max = vet_ranker_notes(rk);
    rd.ids = calloc((size_t)rd.max, sizeof *rd.ids), rd.lens = calloc((size_t)rd.max, sizeof *rd.lens);
    rd.caps = calloc((size_t)rd.max, sizeof *rd.caps), rd.tags = calloc((size_t)rd.max, sizeof *rd.tags);
    if (!rd.ids || !rd.lens || !rd.caps || !rd.tags) {
        round_free(&rd);
        return vet_err_nomem(err, "out of memory");
    }
    while ((rc = round_fill(j, &rd, err)) > 0) {
        double t0 = now_s();
        rc = vet_ranker_score(rk, (const int32_t *const *)rd.ids, rd.lens, rd.n, logp, &j->counts.phases, err);
        double ms = (now_s() - t0) * 1e3 / rd.n;  // the round's time shared among its notes
        for (int i = 0; rc == 0 && i < rd.n; i++) {
            int64_t queued = queue_place(j, rd.tags[i]);
            vet_prediction *p = vet_pending_get(j->pending, queued);
            rc = fill_ranked(j, p, logp + (size_t)i * A, prob, order, ms, err);
            if (rc == 0) vet_pending_done(j->pending, queued);
        }
        if (rc == 0 && vet_pending_flush(j->pending, write_one, j, err) < 0) rc = -1;
        if (rc) break;
        if (j->o.progress) {
            vet_generate_counts c;
            vet_generate_counts_now(j, &c);
            j->o.progress(j->o.progress_ctx, &c);
        }
    }
    round_free(&rd);
    return rc < 0 ? -1 : 0;
}

// --rank over the handed-in backend, or the CPU's forward: a slot for each note's prompt and
// one for each of its answers, for as many notes as make ~64 rows a step (a CPU slot costs
// only the cache it fills); a table over 256 labels takes one note at a time, 256 answers a step.
static int rank_all(vet_generate_job *j, vet_err *err) {
    j->t0 = now_s();
    int n = j->answers.count, rc = -1;
    if (!j->have_backend) {
        int notes = n < 64 ? 64 / n : 1, slots = n <= 256 ? notes * (n + 1) : 257;
        if (j->models.k > 1) {
            if (!(j->ens = vet_ensemble_new_cpu(j->models.m, j->models.k, slots, err))) return -1;
            vet_ensemble_backend(j->ens, &j->be);
        } else {
            if (!(j->cpu = vet_infer_new(&j->models.m[0], slots, err))) return -1;
            vet_infer_backend_of(j->cpu, &j->be);
        }
        j->have_backend = 1;
    }
    vet_ranker *rk = vet_ranker_new(&j->be, j->V, &j->answers, err);
    if (!rk) return -1;
    size_t g = (size_t)vet_ranker_notes(rk);
    double *logp = malloc(g * n * sizeof *logp), *prob = malloc((size_t)n * sizeof *prob);
    int *order = malloc((size_t)n * sizeof *order);
    if (!logp || !prob || !order)
        vet_err_nomem(err, "out of memory");
    else
        rc = rank_notes(j, rk, logp, prob, order, err);
    vet_ranker_free(rk);
    free(logp), free(prob), free(order);
    return rc;
}

// A shard's header names the input's note count and digest, so vet-eval can tell a complete set
// of shards of one input: counted before anything is written, by the same reader and checks as
// the run (so a note the run would refuse fails every shard alike, as it fails the unsharded
// run). The run's own count and digest must come out the same: else the input changed between
// the two reads.
static int count_input(vet_generate_job *j, const vet_prompt_limits *l, vet_err *err) {
    if (j->o.shard_n == 0) return 0;
    vet_input_digest_init(&j->seen_digest);
    j->input_notes = vet_prompts_count(j->o.input, l, j->input_digest, err);
    return j->input_notes < 0 ? -1 : 0;
}

static int check_count(vet_generate_job *j, vet_err *err) {
    if (j->o.shard_n == 0) return 0;
    char seen[17];
    vet_input_digest_hex(&j->seen_digest, seen);
    if (j->seen == j->input_notes && strcmp(seen, j->input_digest) == 0) return 0;
    return vet_errf(err, "%s: %lld notes (digest %s) when counted, %lld (digest %s) when decoded: the input "
                    "changed while it was read", vet_prompts_path(j->in), (long long)j->input_notes,
                    j->input_digest, (long long)j->seen, seen);
}

int vet_generate_run(vet_generate_job *j, vet_err *err) {
    const vet_generate_opts *o = &j->o;
    vet_prompt_limits lim = {.vocab = j->V, .max_pos = j->max_pos, .max_new = o->max_new};
    if (o->rank > 0) lim.max_new = longest_answer(j), lim.ranked = 1;  // it must fit beside each prompt
    vet_prompts_limit(j->in, &lim);
    if (count_input(j, &lim, err)) return -1;
    vet_predictions_header h = header_of(j);
    if (!(j->pending = vet_pending_new(err)) || !(j->w = vet_predictions_open(o->output, &h, err))) return -1;
    int rc = o->rank > 0 ? rank_all(j, err) : decode_all(j, err);
    if (rc == 0) rc = check_count(j, err);
    vet_writer *w = j->w;
    j->w = NULL;
    if (rc == 0) return vet_writer_close(w, err);  // the trailer, fsync, rename
    vet_writer_abort(w);
    return -1;
}
