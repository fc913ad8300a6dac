// vet-tokenize — clinical notes (CSV, Alpaca JSON, JSONL) to a `tokens` stream: for each note
// the prompt ids ([BOS] + encode(prompt)) and the response ids (encode(response) + [EOS]).
//
// The prompt and the response are encoded separately (not as one string, as alpaca-lora
// does): the prompt ids are then exactly what vet-generate feeds the model, and the response
// starts on a fresh piece ("▁Diagnosed"). See man/vet-tokenize.1.
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "io/mp.h"
#include "io/notes.h"
#include "data/spm.h"
#include "io/stream.h"
#include "data/swap.h"
#include "data/template.h"

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf("usage: vet-tokenize --spm MODEL [OPTIONS] [INPUT]\n"
           "Reads clinical notes (INPUT, or stdin when none or '-'): CSV with a header row,\n"
           "an Alpaca JSON array, or JSONL. Writes a `tokens` stream: per note its id, species,\n"
           "codes, note, prompt ids ([BOS] + prompt) and response ids (response + [EOS]).\n"
           "\n"
           "  -s, --spm MODEL          SentencePiece tokenizer.model, or a directory holding one\n"
           "      --text               write the rendered prompt + response text of every note\n"
           "                           instead of token ids (to train a tokenizer; no --spm)\n"
           "  -o, --output FILE        the stream (default stdout, '-')\n"
           "  -f, --format FMT         csv, json or jsonl (default: by suffix, else by the first byte)\n"
           "      --template T         alpaca (default), alpaca-noinput, or a template FILE\n"
           "      --instruction TEXT   the instruction (default: \"%s\")\n"
           "      --input-format FMT   the input section (default: \"%s\"; '' drops the section)\n"
           "      --response-format FMT the response (default: \"%s\")\n"
           "      --print-template     print the template in file form and exit\n"
           "      --id-col NAME        CSV column of the id (default id; absent: the row number)\n"
           "      --species-col NAME   CSV column of the species (default species)\n"
           "      --note-col NAME      CSV column of the note (default note; required)\n"
           "      --codes-col NAME     CSV column of the ';'-separated codes (default codes)\n"
           "      --disease-col NAME   CSV column of the disease name (default disease)\n"
           "      --species-swap A=B[,C=D...]  after each note of species A, write a copy of it as\n"
           "                           species B (and B as A), the species' name swapped in the note\n"
           "                           as a whole word; the copy's id is ID~B and its copy_of is ID.\n"
           "                           Training-data augmentation: vet-pack keeps copies with their\n"
           "                           original and trains on those of the train split only\n"
           "      --skip-bad FILE      write rejected rows to FILE and go on (default: stop)\n"
           "      --stats              print token-length statistics on stderr\n"
           "      --max-len N          length the statistics compare against (default 512)\n"
           "  -h, --help               this help\n"
           "  -V, --version            print the version\n"
           "\n"
           "Exit status: 0 ok, 1 bad input, 2 usage error, 3 I/O error.\n",
           VET_DEFAULT_INSTRUCTION, VET_DEFAULT_INPUT_FORMAT, VET_DEFAULT_RESPONSE_FORMAT);
    exit(EXIT_OK);
}

// --- statistics: exact percentiles from a histogram of lengths (memory ~ the longest sample) ---
typedef struct {
    uint64_t *count;  // count[len]: samples of that length
    size_t cap;
    uint64_t n, sum, min, max;
} len_hist;

static void hist_add(len_hist *h, size_t len) {
    if (len >= h->cap) {
        size_t cap = h->cap ? h->cap : 1024;
        while (cap <= len) cap *= 2;
        uint64_t *p = realloc(h->count, cap * sizeof *p);
        if (!p) cli_fail(EXIT_IO, "out of memory");
        memset(p + h->cap, 0, (cap - h->cap) * sizeof *p);
        h->count = p;
        h->cap = cap;
    }
    h->count[len]++;
    if (h->n == 0 || len < h->min) h->min = len;
    if (len > h->max) h->max = len;
    h->n++;
    h->sum += len;
}

// Nearest-rank percentile: the smallest length with at least q of the samples at or below it.
static size_t hist_pct(const len_hist *h, double q) {
    uint64_t need = (uint64_t)(q * (double)h->n + 0.999999), seen = 0;
    if (need < 1) need = 1;
    for (size_t len = 0; len < h->cap; len++)
        if ((seen += h->count[len]) >= need) return len;
    return h->max;
}

static void hist_print(const char *name, const len_hist *h) {
    fprintf(stderr, "  %-9s %7llu %9.1f %7zu %7zu %7llu\n", name, (unsigned long long)h->min,
            h->n ? (double)h->sum / (double)h->n : 0.0, hist_pct(h, 0.50), hist_pct(h, 0.95),
            (unsigned long long)h->max);
}

// --- rejected rows: one line each, LINE<TAB>REASON<TAB>RAW with \\ \t \n \r escaped ---
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

// A "-o" that names a device or a pipe (/dev/null) is written in place, not through a
// temporary file renamed over it: the writer is handed stdout reopened on that path.
static void ids_push(int32_t **ids, size_t *n, size_t *cap, int32_t id) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        int32_t *p = realloc(*ids, *cap * sizeof *p);
        if (!p) cli_fail(EXIT_IO, "out of memory");
        *ids = p;
    }
    (*ids)[(*n)++] = id;
}

// Where the records go, and what is counted on the way.
typedef struct {
    FILE *text_out;           // --text: rendered text; else the stream below
    const char *out_path;
    vet_writer *w;
    msgpack_packer *pk;
    vet_spm *spm;
    int bos, eos, stats;
    long max_len;
    int32_t *pids, *rids;     // encode buffers, reused
    size_t pcap, rcap;
    len_hist hp, hr, ht;
    uint64_t n_written, n_copies, n_over, real_tokens;
} sink;

// Writes one note (an original, or a copy when copy_of is not NULL) whose prompt and response
// are rendered. Returns EXIT_OK, or EXIT_BAD_INPUT / EXIT_IO with err set.
static int write_note(sink *o, const vet_note *note, const char *copy_of, const vet_text *prompt,
                      const vet_text *response, vet_err *err) {
    if (o->text_out) {
        fwrite(prompt->s, 1, prompt->len, o->text_out);
        fwrite(response->s, 1, response->len, o->text_out);
        if (fputc('\n', o->text_out) == EOF) return vet_errf(err, "%s: write failed", o->out_path), EXIT_IO;
        o->n_written++;
        o->n_copies += copy_of != NULL;
        return EXIT_OK;
    }
    size_t np = 0, nr = 0;
    if (o->bos >= 0) ids_push(&o->pids, &np, &o->pcap, o->bos);
    if (vet_spm_encode(o->spm, prompt->s, prompt->len, &o->pids, &np, &o->pcap, err) ||
        vet_spm_encode(o->spm, response->s, response->len, &o->rids, &nr, &o->rcap, err))
        return EXIT_BAD_INPUT;
    ids_push(&o->rids, &nr, &o->rcap, o->eos);

    msgpack_packer *pk = o->pk;
    msgpack_pack_map(pk, copy_of ? 7 : 6);
    mp_kv_str(pk, "id", note->id);
    mp_kv_str(pk, "species", note->species);
    mp_key(pk, "codes");
    if (note->n_codes) {
        msgpack_pack_array(pk, (uint32_t)note->n_codes);
        for (size_t i = 0; i < note->n_codes; i++) mp_str(pk, note->codes[i]);
    } else if (*note->disease) {  // no code: the disease name is the label
        msgpack_pack_array(pk, 1);
        mp_str(pk, note->disease);
    } else {
        msgpack_pack_array(pk, 0);
    }
    mp_kv_str(pk, "note", note->note);
    mp_kv_i32_array(pk, "prompt", o->pids, np);
    mp_kv_i32_array(pk, "response", o->rids, nr);
    if (copy_of) mp_kv_str(pk, "copy_of", copy_of);
    if (vet_writer_record_end(o->w, err)) return EXIT_IO;
    o->n_written++;
    o->n_copies += copy_of != NULL;
    if (o->stats) {
        hist_add(&o->hp, np);
        hist_add(&o->hr, nr);
        hist_add(&o->ht, np + nr);
        if ((long)(np + nr) > o->max_len) o->n_over++;
        o->real_tokens += (long)(np + nr) > o->max_len ? (uint64_t)o->max_len : np + nr;
    }
    return EXIT_OK;
}

// The species-swapped copy of a note (swap.h): species, note and Alpaca input swapped, id
// "ID~PARTNER". Its strings live in the vet_text buffers given.
static int make_copy(const vet_note *note, const char *partner, vet_note *copy, vet_text *id, vet_text *text,
                     vet_text *input, vet_err *err) {
    *copy = *note;
    id->len = text->len = input->len = 0;
    if (vet_text_append(id, note->id, strlen(note->id)) || vet_text_append(id, "~", 1) ||
        vet_text_append(id, partner, strlen(partner)) || vet_text_append(text, "", 0) || vet_text_append(input, "", 0))
        return vet_errf(err, "out of memory");
    if (vet_swap_words(note->note, note->species, partner, text, err) < 0) return -1;
    if (note->input && vet_swap_words(note->input, note->species, partner, input, err) < 0) return -1;
    copy->id = id->s;
    copy->species = partner;
    copy->note = text->s;
    copy->input = note->input ? input->s : NULL;
    return 0;
}

enum {
    OPT_TEMPLATE = 256, OPT_INSTRUCTION, OPT_INPUT_FORMAT, OPT_RESPONSE_FORMAT, OPT_PRINT_TEMPLATE, OPT_TEXT,
    OPT_ID_COL, OPT_SPECIES_COL, OPT_NOTE_COL, OPT_CODES_COL, OPT_DISEASE_COL, OPT_SKIP_BAD,
    OPT_STATS, OPT_MAX_LEN, OPT_SPECIES_SWAP,
};

int main(int argc, char **argv) {
    cli_prog = "vet-tokenize";
    static const struct option opts[] = {
        {"spm", required_argument, 0, 's'},
        {"output", required_argument, 0, 'o'},
        {"format", required_argument, 0, 'f'},
        {"template", required_argument, 0, OPT_TEMPLATE},
        {"instruction", required_argument, 0, OPT_INSTRUCTION},
        {"input-format", required_argument, 0, OPT_INPUT_FORMAT},
        {"response-format", required_argument, 0, OPT_RESPONSE_FORMAT},
        {"print-template", no_argument, 0, OPT_PRINT_TEMPLATE},
        {"text", no_argument, 0, OPT_TEXT},
        {"id-col", required_argument, 0, OPT_ID_COL},
        {"species-col", required_argument, 0, OPT_SPECIES_COL},
        {"note-col", required_argument, 0, OPT_NOTE_COL},
        {"codes-col", required_argument, 0, OPT_CODES_COL},
        {"disease-col", required_argument, 0, OPT_DISEASE_COL},
        {"skip-bad", required_argument, 0, OPT_SKIP_BAD},
        {"stats", no_argument, 0, OPT_STATS},
        {"max-len", required_argument, 0, OPT_MAX_LEN},
        {"species-swap", required_argument, 0, OPT_SPECIES_SWAP},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    const char *spm_path = NULL, *out_path = "-", *template_spec = "alpaca", *instruction = NULL;
    const char *input_format = NULL, *response_format = NULL, *skip_path = NULL;
    int print_template = 0, stats = 0, text_mode = 0;
    long max_len = 512;
    vet_notes_opts nopt = {0};
    vet_swap swap = {0};
    int c;
    while ((c = getopt_long(argc, argv, "s:o:f:hV", opts, NULL)) != -1) {
        switch (c) {
        case 's': spm_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 'f':
            if (strcmp(optarg, "csv") == 0) nopt.format = VET_NOTES_CSV;
            else if (strcmp(optarg, "json") == 0) nopt.format = VET_NOTES_JSON;
            else if (strcmp(optarg, "jsonl") == 0) nopt.format = VET_NOTES_JSONL;
            else cli_usage_error("--format: '%s' is not csv, json or jsonl", optarg);
            break;
        case OPT_TEMPLATE: template_spec = optarg; break;
        case OPT_INSTRUCTION: instruction = optarg; break;
        case OPT_INPUT_FORMAT: input_format = optarg; break;
        case OPT_RESPONSE_FORMAT: response_format = optarg; break;
        case OPT_PRINT_TEMPLATE: print_template = 1; break;
        case OPT_TEXT: text_mode = 1; break;
        case OPT_ID_COL: nopt.id_col = optarg; break;
        case OPT_SPECIES_COL: nopt.species_col = optarg; break;
        case OPT_NOTE_COL: nopt.note_col = optarg; break;
        case OPT_CODES_COL: nopt.codes_col = optarg; break;
        case OPT_DISEASE_COL: nopt.disease_col = optarg; break;
        case OPT_SKIP_BAD: skip_path = optarg; break;
        case OPT_SPECIES_SWAP: {
            vet_err perr;
            vet_swap_free(&swap);  // the last one given counts
            if (vet_swap_parse(optarg, &swap, &perr) != 0) cli_usage_error("%s", perr.msg);
            break;
        }
        case OPT_STATS: stats = 1; break;
        case OPT_MAX_LEN: {
            char *end;
            max_len = strtol(optarg, &end, 10);
            if (*end || end == optarg || max_len < 1) cli_usage_error("--max-len: '%s' is not a positive integer", optarg);
            break;
        }
        case 'h': usage();
        case 'V': cli_version();
        default: cli_usage_error("unknown option");
        }
    }
    if (argc - optind > 1) cli_usage_error("one INPUT at most (got %d)", argc - optind);
    const char *in_path = optind < argc ? argv[optind] : "-";

    vet_err err;
    vet_template *tpl = vet_template_open(template_spec, instruction, input_format, response_format, &err);
    if (!tpl) cli_fail_err(&err);
    if (print_template) {
        fputs(vet_template_text(tpl), stdout);
        vet_template_free(tpl);
        return fflush(stdout) ? EXIT_IO : EXIT_OK;
    }
    if (text_mode && stats) cli_usage_error("--text and --stats do not go together (--text tokenizes nothing)");
    vet_spm *spm = NULL;
    int bos = -1, eos = -1;
    if (!text_mode) {
        if (!spm_path) cli_usage_error("--spm MODEL is required (the tokenizer.model of the base model)");
        spm = vet_spm_load(spm_path, &err);
        if (!spm) cli_fail_err(&err);
        bos = vet_spm_bos_id(spm);
        eos = vet_spm_eos_id(spm);
        if (eos < 0) cli_fail(EXIT_BAD_INPUT, "%s: the tokenizer has no EOS id: a response could not end", vet_spm_path(spm));
    }

    FILE *in = stdin;
    const char *in_name = "<stdin>";
    if (strcmp(in_path, "-") != 0) {
        in = fopen(in_path, "rb");
        if (!in) cli_fail(EXIT_IO, "%s: cannot open: %s", in_path, strerror(errno));
        in_name = in_path;
    }
    nopt.note_prefix = vet_template_note_prefix(tpl);
    vet_notes *src = vet_notes_open(in, in_name, &nopt, &err);
    if (!src) cli_fail(ferror(in) ? EXIT_IO : EXIT_BAD_INPUT, "%s", err.msg);
    FILE *skip = NULL;
    if (skip_path) {
        skip = strcmp(skip_path, "-") == 0 ? stderr : fopen(skip_path, "w");
        if (!skip) cli_fail(EXIT_IO, "%s: cannot create: %s", skip_path, strerror(errno));
    }

    // --text: the rendered prompt + response of every note, for training a tokenizer.
    // A file is written under "<path>.tmp.<pid>" and renamed only when whole, as streams are;
    // a device or fifo is written in place.
    FILE *text_out = NULL;
    char text_tmp[4200] = "";
    if (text_mode) {
        struct stat tst;
        if (strcmp(out_path, "-") == 0) text_out = stdout;
        else if (stat(out_path, &tst) == 0 && !S_ISREG(tst.st_mode)) text_out = fopen(out_path, "w");
        else {
            snprintf(text_tmp, sizeof text_tmp, "%s.tmp.%ld", out_path, (long)getpid());
            text_out = fopen(text_tmp, "w");
        }
        if (!text_out) cli_fail(EXIT_IO, "%s: cannot create: %s", text_tmp[0] ? text_tmp : out_path, strerror(errno));
    }
    vet_writer *w = text_mode ? NULL : vet_writer_open(out_path, "tokens", "vet-tokenize", &err);
    if (!w && !text_mode) cli_fail(EXIT_IO, "%s", err.msg);
    msgpack_packer *pk = w ? vet_writer_packer(w) : NULL;
    if (w) {
    vet_writer_header_begin(w, 3);
    mp_key(pk, "tokenizer");
    msgpack_pack_map(pk, 6);
    mp_kv_str(pk, "sha256", vet_spm_sha256(spm));
    mp_kv_int(pk, "vocab_size", vet_spm_vocab_size(spm));
    mp_kv_int(pk, "bos_id", bos);
    mp_kv_int(pk, "eos_id", eos);
    mp_kv_int(pk, "pad_id", vet_spm_pad_id(spm));
    mp_kv_int(pk, "unk_id", vet_spm_unk_id(spm));
    mp_key(pk, "template");
    msgpack_pack_map(pk, 4);
    mp_kv_str(pk, "name", vet_template_name(tpl));
    mp_kv_str(pk, "sha256", vet_template_sha256(tpl));
    mp_kv_str(pk, "instruction", vet_template_instruction(tpl));
    mp_kv_str(pk, "response_prefix", vet_template_response_prefix(tpl));
    mp_kv_str(pk, "source", in_path);
    if (vet_writer_header_end(w, &err)) { vet_writer_abort(w); cli_fail(EXIT_IO, "%s", err.msg); }
    }

    sink o = {.text_out = text_out, .out_path = out_path, .w = w, .pk = pk, .spm = spm, .bos = bos, .eos = eos,
              .stats = stats, .max_len = max_len};
    vet_text prompt = {0}, response = {0}, copy_id = {0}, copy_note = {0}, copy_input = {0};
    uint64_t n_read = 0, n_rejected = 0;
    int status = EXIT_OK;
    vet_note note;
    int rc;
    while ((rc = vet_notes_next(src, &note, &err)) != VET_NOTE_EOF) {
        if (rc == VET_NOTE_IOERR) { status = EXIT_IO; break; }
        if (rc == VET_NOTE_FATAL) { status = EXIT_BAD_INPUT; break; }
        n_read++;
        if (rc == VET_NOTE_OK &&
            (vet_template_prompt(tpl, &note, &prompt, &err) || vet_template_response(tpl, &note, &response, &err))) {
            vet_err_prefix(&err, "%s:%ld", in_name, note.line);
            rc = VET_NOTE_BAD;
        }
        if (rc == VET_NOTE_BAD) {
            if (!skip) { status = EXIT_BAD_INPUT; break; }
            // err is "file:line: reason"; the rejects file wants "line<TAB>reason<TAB>raw".
            const char *reason = err.msg, *colon = strchr(err.msg, ':');
            long line = colon ? strtol(colon + 1, NULL, 10) : 0;
            if (colon && (colon = strchr(colon + 1, ':'))) reason = colon + 1 + (colon[1] == ' ');
            size_t rawlen;
            const char *raw = vet_notes_raw(src, &rawlen);
            fprintf(skip, "%ld\t", line);
            put_escaped(skip, reason, strlen(reason));
            fputc('\t', skip);
            put_escaped(skip, raw, rawlen);
            fputc('\n', skip);
            n_rejected++;
            continue;
        }
        if ((status = write_note(&o, &note, NULL, &prompt, &response, &err)) != EXIT_OK) {
            if (status == EXIT_BAD_INPUT) vet_err_prefix(&err, "%s:%ld", in_name, note.line);
            break;
        }
        // --species-swap: the copy right after its original (a note that rendered renders
        // again with another species name, so a failure here is the copy's own).
        const char *partner = swap.n ? vet_swap_partner(&swap, note.species) : NULL;
        if (!partner) continue;
        vet_note copy;
        if (make_copy(&note, partner, &copy, &copy_id, &copy_note, &copy_input, &err) ||
            vet_template_prompt(tpl, &copy, &prompt, &err) || vet_template_response(tpl, &copy, &response, &err)) {
            status = cli_exit_status(&err);
        } else {
            status = write_note(&o, &copy, note.id, &prompt, &response, &err);
        }
        if (status != EXIT_OK) {
            if (status == EXIT_BAD_INPUT) vet_err_prefix(&err, "%s:%ld: its %s copy", in_name, note.line, partner);
            break;
        }
    }
    if (text_out) {
        if ((text_out == stdout ? fflush(text_out) : fclose(text_out)) != 0 && status == EXIT_OK) {
            vet_errf(&err, "%s: write failed: %s", out_path, strerror(errno));
            status = EXIT_IO;
        }
        if (text_tmp[0] && status == EXIT_OK && rename(text_tmp, out_path) != 0) {
            vet_errf(&err, "%s: cannot rename %s into place: %s", out_path, text_tmp, strerror(errno));
            status = EXIT_IO;
        }
        if (text_tmp[0] && status != EXIT_OK) unlink(text_tmp);
        if (status != EXIT_OK) cli_warn("%s", err.msg);
    } else if (status != EXIT_OK) {
        vet_writer_abort(w);
        cli_warn("%s", err.msg);
    } else if (vet_writer_close(w, &err)) {
        cli_warn("%s", err.msg);
        status = EXIT_IO;
    }
    if (skip && skip != stderr && fclose(skip) != 0) {
        cli_warn("%s: write failed", skip_path);
        if (status == EXIT_OK) status = EXIT_IO;
    }
    if (stats && status == EXIT_OK) {
        fprintf(stderr, "vet-tokenize: %llu samples, tokens per sample:\n", (unsigned long long)o.n_written);
        fprintf(stderr, "  %-9s %7s %9s %7s %7s %7s\n", "", "min", "mean", "p50", "p95", "max");
        hist_print("prompt", &o.hp);
        hist_print("response", &o.hr);
        hist_print("total", &o.ht);
        fprintf(stderr, "  over --max-len %ld: %llu (%.1f%%)\n", max_len, (unsigned long long)o.n_over,
                o.n_written ? 100.0 * (double)o.n_over / (double)o.n_written : 0.0);
        fprintf(stderr, "  padding to %ld tokens would use %.1f%% of the compute on real tokens\n", max_len,
                o.n_written ? 100.0 * (double)o.real_tokens / ((double)o.n_written * (double)max_len) : 0.0);
    }
    if (n_rejected > 0 || (status == EXIT_OK && cli_stderr_is_tty())) {
        char copies[96] = "";
        if (o.n_copies)  // read = notes written + rejected; the copies come on top
            snprintf(copies, sizeof copies, " (%llu notes + %llu species-swapped copies)",
                     (unsigned long long)(o.n_written - o.n_copies), (unsigned long long)o.n_copies);
        fprintf(stderr, "vet-tokenize: %llu read, %llu written%s, %llu rejected%s%s%s\n", (unsigned long long)n_read,
                (unsigned long long)o.n_written, copies, (unsigned long long)n_rejected, n_rejected ? " (see " : "",
                n_rejected ? skip_path : "", n_rejected ? ")" : "");
    }
    free(o.hp.count); free(o.hr.count); free(o.ht.count);
    free(o.pids); free(o.rids);
    vet_text_free(&prompt);
    vet_text_free(&response);
    vet_text_free(&copy_id);
    vet_text_free(&copy_note);
    vet_text_free(&copy_input);
    vet_swap_free(&swap);
    vet_notes_close(src);
    if (in != stdin) fclose(in);
    vet_spm_free(spm);
    vet_template_free(tpl);
    return status;
}
