// vet-pack — token records into packed training rows: split train/val/test without leakage
// (identical notes stay together), cut the loss mask, pack whole samples into rows.
//
//   tokens stream ─▶ read all samples ─▶ fit (reject / truncate) ─▶ group + split ─▶
//   per split: first-fit decreasing into rows ─▶ shuffle rows ─▶ packed streams
//
// Copies (records with a copy_of id, from vet-tokenize --species-swap) are training data only:
// the split is made over the original notes, each copy follows its original, and the copies
// that land in val or test are dropped (counted), so held-out splits hold real notes only; with
// --val-copies the val split's copies go to a file of their own instead (for a refit on
// train + val, which then trains on every copy outside the test split).
//
// The whole input is held in memory (the notes are small); nothing is written until all of it
// has been read and checked, and a failure while writing removes every output (vet_writer_abort).
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "io/mp.h"
#include "data/pack.h"
#include "base/rng.h"
#include "data/split.h"
#include "io/stream.h"

// Splits as output slots: train, val, test, "all" (-o: everything in one stream), and the val
// split's copies (--val-copies: training data for a final model fitted on train + val).
enum { SPLIT_ALL = 3, SPLIT_VAL_COPIES = 4, N_SLOTS = 5 };
static const char *slot_name(int k) {
    return k == SPLIT_ALL ? "all" : k == SPLIT_VAL_COPIES ? "val_copies" : vet_split_name(k);
}

typedef struct {
    char *id, *species;
    char *copy_of;        // the original's id for a species-swapped copy, else NULL
    int32_t original;     // index of that original (split mode), else -1
    uint8_t dropped;      // a copy in val or test: not packed
    char **codes;
    size_t n_codes;
    char *key;            // normalized note (the grouping key); freed after grouping
    int32_t *tokens;      // (n) prompt then response, after truncation
    int32_t n, prompt_len;
    int rejected, truncated;
    uint8_t split;        // slot
} sample;

typedef struct {
    const char *path;     // input path ("-" for stdin)
    msgpack_zone zone;    // the copies below live in zone and (their strings) in buf
    msgpack_sbuffer buf[2];
    msgpack_object tokenizer, template_;
    char sha256[80];
} input_info;

typedef struct {
    // options
    int seq_len, packed, group_by_note, stratify, verbose;
    vet_loss_on loss_on;
    vet_trunc trunc;
    uint64_t seed;
    double share[3];
    const char *out_dir, *out_path[N_SLOTS], *in_path[N_SLOTS], *summary_path;
    int presplit;
    // data
    sample *s;
    size_t n, cap;
    input_info in[N_SLOTS];  // one per input (slot 0 holds the single input when not presplit)
    int n_in;
    int in_of_slot[N_SLOTS];  // which input's header a slot's output copies
} pack_run;

// Per-split counts, the summary's numbers.
typedef struct {
    int64_t samples, rejected, truncated, packed, rows, tokens, loss_tokens;
} split_stats;

// Counts about copies (vet-tokenize --species-swap) for the summary.
typedef struct {
    int64_t in, dropped, like_heldout;  // like_heldout: kept copies that read like a val/test note
} copy_stats;

static void usage(void) __attribute__((noreturn));
static void usage(void) {
    printf("usage: vet-pack [OPTIONS] [TOKENS]\n"
           "Packs a tokens stream (TOKENS, or stdin when absent or '-') into rows of training data:\n"
           "splits it into train/val/test with identical notes kept together, builds each sample's\n"
           "loss mask and packs whole samples into rows of at most --seq-len tokens.\n"
           "\n"
           "Output (one of):\n"
           "      --out DIR          DIR/train.msgpack.zst, DIR/val.msgpack.zst, DIR/test.msgpack.zst\n"
           "      --train F, --val F, --test F   each split to its own file ('-' = stdout)\n"
           "  -o, --output F         everything in one stream, no splitting (split 'all')\n"
           "Splitting:\n"
           "      --split A/B/C      train/val/test shares, normalized (default 80/10/10; 100/0/0 ok)\n"
           "      --seed N           seed for the split and the row order (default 1)\n"
           "      --group-by note|none   keep identical normalized notes in one split (default note)\n"
           "      --stratify codes|none  keep each label's share in every split (default none)\n"
           "      --train-in F, --val-in F, --test-in F   already split token streams: packed as\n"
           "                         they are (no splitting); all must share one tokenizer\n"
           "  Copies (records with copy_of, from vet-tokenize --species-swap) follow their\n"
           "  original's split and are packed in train (and -o) only; in val and test they are\n"
           "  dropped and counted, unless:\n"
           "      --val-copies F     the val split's copies, packed, to F (training data for a\n"
           "                         model fitted on train + val; never part of val itself)\n"
           "Rows:\n"
           "      --seq-len N        row length in tokens (default 512, at least 2)\n"
           "      --no-pack          one sample per row (evaluation, generation, comparison)\n"
           "      --train-on-prompt  loss on every next token, not only the response\n"
           "      --truncate left|right  keep over-long samples by cutting the prompt (left: its\n"
           "                         oldest tokens after BOS; right: its tail); default: reject\n"
           "Reporting:\n"
           "      --summary FILE     write the summary as JSON to FILE\n"
           "  -v, --verbose          print the summary on stderr even when it is not a terminal\n"
           "  -h, --help             this help\n"
           "  -V, --version          print the version\n"
           "\n"
           "Exit status: 0 ok, 1 bad input, 2 usage error, 3 I/O error.\n");
    exit(EXIT_OK);
}

// ---------------------------------------------------------------------------------------
// Reading


static void add_sample(pack_run *R, const sample *x) {
    if (R->n == R->cap) {
        R->cap = R->cap ? 2 * R->cap : 1024;
        R->s = realloc(R->s, R->cap * sizeof *R->s);
        if (!R->s) cli_fail(EXIT_IO, "out of memory");
    }
    R->s[R->n++] = *x;
}

// Copies a header object out of the reader's memory: packed into sb, unpacked into z (the
// unpacked strings point into sb, so both live as long as dst).
static void copy_object(msgpack_zone *z, msgpack_sbuffer *sb, const msgpack_object *src, msgpack_object *dst) {
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *src);
    size_t off = 0;
    if (msgpack_unpack(sb->data, sb->size, &off, z, dst) != MSGPACK_UNPACK_SUCCESS)
        cli_fail(EXIT_IO, "out of memory");
}

// Reads one tokens stream: every record becomes a sample in slot `slot`. Exits on failure.
static void read_input(pack_run *R, int which, const char *path, int slot) {
    vet_err err;
    input_info *in = &R->in[which];
    in->path = path;
    vet_reader *r = vet_reader_open(path, "tokens", &err);
    if (!r) cli_fail(cli_exit_status(&err), "%s", err.msg);
    const char *shown = vet_reader_path(r);
    const msgpack_object *h = vet_reader_header(r);
    const msgpack_object *tok = mp_get(h, "tokenizer");
    const char *sha;
    size_t sha_len;
    if (!tok || tok->type != MSGPACK_OBJECT_MAP || mp_get_str(tok, "sha256", &sha, &sha_len, &err) != 0)
        cli_fail(EXIT_BAD_INPUT, "%s: header lacks tokenizer.sha256 (not made by vet-tokenize?)", shown);
    snprintf(in->sha256, sizeof in->sha256, "%.*s", (int)(sha_len < 79 ? sha_len : 79), sha);
    int64_t vocab = 0;
    if (mp_get_int(tok, "vocab_size", &vocab, NULL) != 0) vocab = 0;
    msgpack_zone_init(&in->zone, 2048);
    copy_object(&in->zone, &in->buf[0], tok, &in->tokenizer);
    const msgpack_object *tpl = mp_get(h, "template");
    if (tpl) copy_object(&in->zone, &in->buf[1], tpl, &in->template_);
    else {
        msgpack_sbuffer_init(&in->buf[1]);
        in->template_.type = MSGPACK_OBJECT_NIL;
    }

    const msgpack_object *rec;
    int rc;
    while ((rc = vet_reader_next(r, &rec, &err)) == 1) {
        unsigned long long recno = (unsigned long long)vet_reader_records(r);
        sample x = {0};
        x.split = (uint8_t)slot;
        int32_t *prompt = NULL, *resp = NULL;
        size_t np = 0, nr = 0;
        const char *note;
        size_t note_len;
        if (!(x.id = mp_get_strdup(rec, "id", &err)) || !(x.species = mp_get_strdup(rec, "species", &err)) ||
            mp_get_str_array(rec, "codes", &x.codes, &x.n_codes, &err) != 0 ||
            mp_get_str(rec, "note", &note, &note_len, &err) != 0 ||
            mp_get_i32_array(rec, "prompt", &prompt, &np, &err) != 0 ||
            mp_get_i32_array(rec, "response", &resp, &nr, &err) != 0)
            cli_fail(EXIT_BAD_INPUT, "%s: record %llu: %s", shown, recno, err.msg);
        x.original = -1;
        if (mp_get(rec, "copy_of") && !(x.copy_of = mp_get_strdup(rec, "copy_of", &err)))
            cli_fail(EXIT_BAD_INPUT, "%s: record %llu (id %s): %s", shown, recno, x.id, err.msg);
        if (np == 0 || nr == 0)
            cli_fail(EXIT_BAD_INPUT, "%s: record %llu (id %s): empty %s (a prompt starts with BOS, a response ends with EOS)",
                     shown, recno, x.id, np == 0 ? "prompt" : "response");
        for (size_t i = 0; i < np + nr; i++) {
            int32_t t = i < np ? prompt[i] : resp[i - np];
            if (t < 0 || (vocab > 0 && t >= vocab))
                cli_fail(EXIT_BAD_INPUT, "%s: record %llu (id %s): token id %d outside the vocabulary [0, %lld)",
                         shown, recno, x.id, t, (long long)vocab);
        }
        x.key = malloc(note_len + 1);
        if (!x.key) cli_fail(EXIT_IO, "out of memory");
        vet_split_normalize(note, note_len, x.key);

        // Fit into seq_len: keep, cut the prompt, or reject (whole sample kept for counting).
        int32_t from, keep = vet_pack_fit((int32_t)np, (int32_t)nr, R->seq_len, R->trunc, &from);
        if (keep < 0) {
            x.rejected = 1;
        } else {
            x.truncated = keep < (int32_t)np;
            x.prompt_len = keep;
            x.n = keep + (int32_t)nr;
            x.tokens = malloc((size_t)x.n * sizeof *x.tokens);
            if (!x.tokens) cli_fail(EXIT_IO, "out of memory");
            if (from > 0) {  // left: BOS, then the newest keep-1 prompt tokens
                x.tokens[0] = prompt[0];
                memcpy(x.tokens + 1, prompt + from, (size_t)(keep - 1) * sizeof *prompt);
            } else {
                memcpy(x.tokens, prompt, (size_t)keep * sizeof *prompt);
            }
            memcpy(x.tokens + keep, resp, nr * sizeof *resp);
        }
        free(prompt);
        free(resp);
        add_sample(R, &x);
    }
    if (rc < 0) cli_fail(EXIT_BAD_INPUT, "%s", err.msg);
    vet_reader_close(r);
}

// ---------------------------------------------------------------------------------------
// Splitting

typedef struct {
    int64_t groups, dup_groups, dup_samples, leaked_groups;
} group_stats;

static int by_id_then_index(const void *pa, const void *pb, void *run) {
    const sample *s = ((const pack_run *)run)->s;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    int c = strcmp(s[a].id, s[b].id);
    return c ? c : (a > b) - (a < b);
}

// Finds each copy's original (the first original with its copy_of id), given the originals'
// indices orig[m]. In split mode every copy needs one: the split is decided by originals.
// Exits on a copy without its original.
static void link_copies(pack_run *R, const int32_t *orig, size_t m) {
    int32_t *by_id = malloc((m + 1) * sizeof *by_id);
    if (!by_id) cli_fail(EXIT_IO, "out of memory");
    memcpy(by_id, orig, m * sizeof *by_id);
    qsort_r(by_id, m, sizeof *by_id, by_id_then_index, R);
    for (size_t i = 0; i < R->n; i++) {
        sample *x = &R->s[i];
        if (!x->copy_of) continue;
        size_t lo = 0, hi = m;  // the first original whose id is >= copy_of
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(R->s[by_id[mid]].id, x->copy_of) < 0) lo = mid + 1;
            else hi = mid;
        }
        if (lo < m && strcmp(R->s[by_id[lo]].id, x->copy_of) == 0) x->original = by_id[lo];
        else if (!R->presplit && R->out_path[SPLIT_ALL] == NULL)
            cli_fail(EXIT_BAD_INPUT, "%s: record id %s is a copy of %s, which is not in the stream (a copy is split "
                     "with its original: tokenize them together, or drop the copy)", R->in[0].path, x->id, x->copy_of);
    }
    free(by_id);
}

// Groups samples by normalized note (or not at all), assigns splits unless presplit, and
// counts duplicate groups and groups found in more than one split. Only originals are grouped
// and split; a copy takes its original's split and is dropped when that is val or test.
static group_stats split_samples(pack_run *R, copy_stats *cs) {
    vet_err err;
    size_t n = R->n;
    int32_t *orig = malloc((n + 1) * sizeof *orig);  // the originals' indices
    size_t m = 0;
    if (!orig) cli_fail(EXIT_IO, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!R->s[i].copy_of) orig[m++] = (int32_t)i;
    cs->in = (int64_t)(n - m);
    if (cs->in) link_copies(R, orig, m);

    char **keys = malloc((n + 1) * sizeof *keys);
    int32_t *note_of = malloc((n + 1) * sizeof *note_of);
    int32_t *group_of = malloc((n + 1) * sizeof *group_of);
    int32_t *stratum_of = malloc((n + 1) * sizeof *stratum_of);
    uint8_t *split_of = malloc(n + 1);
    if (!keys || !note_of || !group_of || !stratum_of || !split_of) cli_fail(EXIT_IO, "out of memory");
    for (size_t j = 0; j < m; j++) keys[j] = R->s[orig[j]].key;
    int64_t n_notes = vet_split_index_keys(keys, m, note_of, &err);
    if (n_notes < 0) cli_fail(EXIT_IO, "%s", err.msg);

    group_stats g = {0};
    int64_t *size = calloc((size_t)n_notes + 1, sizeof *size);
    uint8_t *seen_in = calloc((size_t)n_notes + 1, 1);  // bit per split
    if (!size || !seen_in) cli_fail(EXIT_IO, "out of memory");

    if (!R->presplit && R->out_path[SPLIT_ALL] == NULL) {
        int64_t n_groups = (int64_t)m;
        for (size_t j = 0; j < m; j++) group_of[j] = R->group_by_note ? note_of[j] : (int32_t)j;
        if (R->group_by_note) n_groups = n_notes;
        int64_t n_strata = 1;
        if (R->stratify) {
            for (size_t j = 0; j < m; j++) {
                keys[j] = vet_split_label(R->s[orig[j]].codes, R->s[orig[j]].n_codes);
                if (!keys[j]) cli_fail(EXIT_IO, "out of memory");
            }
            n_strata = vet_split_index_keys(keys, m, stratum_of, &err);
            for (size_t j = 0; j < m; j++) free(keys[j]);
            if (n_strata < 0) cli_fail(EXIT_IO, "%s", err.msg);
        }
        if (vet_split_assign(group_of, (int32_t)n_groups, R->stratify ? stratum_of : NULL,
                             (int32_t)n_strata, m, R->share, R->seed, split_of, &err) != 0)
            cli_fail(EXIT_IO, "%s", err.msg);
        for (size_t j = 0; j < m; j++) R->s[orig[j]].split = split_of[j];
        for (size_t i = 0; i < n; i++)
            if (R->s[i].copy_of) R->s[i].split = R->s[R->s[i].original].split;
    }
    for (size_t j = 0; j < m; j++) {
        size[note_of[j]]++;
        seen_in[note_of[j]] |= (uint8_t)(1u << R->s[orig[j]].split);
    }
    g.groups = n_notes;
    for (int64_t k = 0; k < n_notes; k++) {
        if (size[k] > 1) {
            g.dup_groups++;
            g.dup_samples += size[k];
        }
        uint8_t b = seen_in[k];
        if (b & (b - 1)) g.leaked_groups++;  // more than one bit: the note is in two splits
    }
    if (cs->in) {
        // Copies held out are dropped. A kept copy may read like a held-out note (a goat note's
        // copy as "Sheep. ..." while that sheep note is in test): its label is the training
        // note's, so nothing held out is learned, but the summary says how many there are.
        for (size_t i = 0; i < n; i++) keys[i] = R->s[i].key;
        int64_t n_all = vet_split_index_keys(keys, n, note_of, &err);
        if (n_all < 0) cli_fail(EXIT_IO, "%s", err.msg);
        uint8_t *heldout = calloc((size_t)n_all + 1, 1);
        if (!heldout) cli_fail(EXIT_IO, "out of memory");
        for (size_t i = 0; i < n; i++) {
            sample *x = &R->s[i];
            int held = x->split == VET_SPLIT_VAL || x->split == VET_SPLIT_TEST;
            if (x->copy_of && x->split == VET_SPLIT_VAL && R->out_path[SPLIT_VAL_COPIES]) x->split = SPLIT_VAL_COPIES;
            else if (x->copy_of && held) x->dropped = 1, cs->dropped++;
            if (!x->copy_of && held) heldout[note_of[i]] = 1;
        }
        for (size_t i = 0; i < n; i++)
            if (R->s[i].copy_of && !R->s[i].dropped && heldout[note_of[i]]) cs->like_heldout++;
        free(heldout);
    }
    for (size_t i = 0; i < n; i++) {
        free(R->s[i].key);
        R->s[i].key = NULL;
    }
    free(orig);
    free(keys);
    free(note_of);
    free(group_of);
    free(stratum_of);
    free(split_of);
    free(size);
    free(seen_in);
    return g;
}

// ---------------------------------------------------------------------------------------
// Packing one slot into rows

typedef struct {
    int32_t *idx;      // samples of this slot (kept ones), input order
    size_t n;
    size_t n_rows;
    int32_t *order;    // samples row by row (indices into idx)
    int64_t *begin;    // (n_rows + 1)
    int32_t *perm;     // output order of rows
} slot_rows;

static void plan_slot(pack_run *R, int slot, slot_rows *p, split_stats *st) {
    vet_err err;
    memset(p, 0, sizeof *p);
    p->idx = malloc((R->n + 1) * sizeof *p->idx);
    if (!p->idx) cli_fail(EXIT_IO, "out of memory");
    for (size_t i = 0; i < R->n; i++) {
        const sample *x = &R->s[i];
        if (x->split != slot || x->dropped) continue;
        st->samples++;
        if (x->rejected) {
            st->rejected++;
            continue;
        }
        st->truncated += x->truncated;
        p->idx[p->n++] = (int32_t)i;
    }
    int32_t *lens = malloc((p->n + 1) * sizeof *lens), *row_of = malloc((p->n + 1) * sizeof *row_of);
    p->order = malloc((p->n + 1) * sizeof *p->order);
    p->begin = malloc((p->n + 2) * sizeof *p->begin);
    p->perm = malloc((p->n + 1) * sizeof *p->perm);
    if (!lens || !row_of || !p->order || !p->begin || !p->perm) cli_fail(EXIT_IO, "out of memory");
    for (size_t j = 0; j < p->n; j++) lens[j] = R->s[p->idx[j]].n;
    if (R->packed) {
        if (vet_pack_tight(lens, p->n, R->seq_len, row_of, &p->n_rows, &err) != 0) cli_fail(EXIT_IO, "%s", err.msg);
    } else {
        for (size_t j = 0; j < p->n; j++) row_of[j] = (int32_t)j;
        p->n_rows = p->n;
    }
    if (vet_pack_rows(row_of, p->n, p->n_rows, p->order, p->begin, &err) != 0) cli_fail(EXIT_IO, "%s", err.msg);
    vet_pack_shuffle(p->perm, p->n_rows, vet_rng_hash(R->seed, 1000 + (uint64_t)slot));
    int32_t *targets = malloc(((size_t)R->seq_len + 1) * sizeof *targets);
    if (!targets) cli_fail(EXIT_IO, "out of memory");
    st->packed = (int64_t)p->n;
    st->rows = (int64_t)p->n_rows;
    for (size_t j = 0; j < p->n; j++) {
        const sample *x = &R->s[p->idx[j]];
        st->tokens += x->n;
        vet_pack_targets(x->tokens, x->n, x->prompt_len, R->loss_on, targets);
        for (int32_t i = 0; i < x->n; i++) st->loss_tokens += targets[i] >= 0;
    }
    free(targets);
    free(lens);
    free(row_of);
}

static void free_slot(slot_rows *p) {
    free(p->idx);
    free(p->order);
    free(p->begin);
    free(p->perm);
}

// Writes one packed row: samples p->order[begin[r] .. begin[r+1]) back to back.
static int write_row(pack_run *R, vet_writer *w, const slot_rows *p, size_t r, int32_t *tok,
                     int32_t *tgt, vet_err *err) {
    int64_t b = p->begin[r], e = p->begin[r + 1];
    size_t k = (size_t)(e - b), len = 0;
    // Per-sample columns; a row holds at most seq_len samples.
    int32_t *starts = malloc((k + 1) * sizeof *starts), *plens = malloc((k + 1) * sizeof *plens);
    char **ids = malloc((k + 1) * sizeof *ids), **species = malloc((k + 1) * sizeof *species);
    if (!starts || !plens || !ids || !species) {
        free(starts), free(plens), free(ids), free(species);
        return vet_errf(err, "out of memory");
    }
    for (size_t j = 0; j < k; j++) {
        const sample *x = &R->s[p->idx[p->order[b + (int64_t)j]]];
        starts[j] = (int32_t)len;
        plens[j] = x->prompt_len;
        ids[j] = x->id;
        species[j] = x->species;
        memcpy(tok + len, x->tokens, (size_t)x->n * sizeof *tok);
        vet_pack_targets(x->tokens, x->n, x->prompt_len, R->loss_on, tgt + len);
        len += (size_t)x->n;
    }
    msgpack_packer *pk = vet_writer_packer(w);
    msgpack_pack_map(pk, 7);
    mp_kv_i32_array(pk, "tokens", tok, len);
    mp_kv_i32_array(pk, "targets", tgt, len);
    mp_kv_i32_array(pk, "starts", starts, k);
    mp_kv_str_array(pk, "ids", ids, k);
    mp_kv_str_array(pk, "species", species, k);
    mp_key(pk, "codes");
    msgpack_pack_array(pk, k);
    for (size_t j = 0; j < k; j++) {
        const sample *x = &R->s[p->idx[p->order[b + (int64_t)j]]];
        msgpack_pack_array(pk, x->n_codes);
        for (size_t c = 0; c < x->n_codes; c++) mp_str(pk, x->codes[c]);
    }
    mp_kv_i32_array(pk, "prompt_lens", plens, k);
    free(starts), free(plens), free(ids), free(species);
    return vet_writer_record_end(w, err);
}

// ---------------------------------------------------------------------------------------
// Summary: one msgpack map, written into every header and (as JSON) to --summary.

static void pack_stats(msgpack_packer *pk, const split_stats *st, int seq_len) {
    double positions = (double)st->rows * seq_len, pad_positions = (double)st->packed * seq_len;
    msgpack_pack_map(pk, 12);
    mp_kv_int(pk, "samples", st->samples);
    mp_kv_int(pk, "rejected", st->rejected);
    mp_kv_int(pk, "truncated", st->truncated);
    mp_kv_int(pk, "packed", st->packed);
    mp_kv_int(pk, "rows", st->rows);
    mp_kv_int(pk, "tokens", st->tokens);
    mp_kv_int(pk, "loss_tokens", st->loss_tokens);
    mp_kv_int(pk, "positions", (int64_t)positions);
    mp_kv_double(pk, "utilization", positions > 0 ? (double)st->tokens / positions : 0);
    mp_kv_int(pk, "pad_positions", (int64_t)pad_positions);
    mp_kv_double(pk, "pad_utilization", pad_positions > 0 ? (double)st->tokens / pad_positions : 0);
    mp_kv_double(pk, "positions_vs_pad", pad_positions > 0 ? positions / pad_positions : 0);
}

static void build_summary(pack_run *R, const group_stats *g, const copy_stats *cs, const split_stats st[N_SLOTS],
                          const int slot_used[N_SLOTS], msgpack_sbuffer *sb) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    split_stats total = {0};
    int n_used = 0;
    for (int k = 0; k < N_SLOTS; k++) {
        if (!slot_used[k]) continue;
        n_used++;
        total.samples += st[k].samples;
        total.rejected += st[k].rejected;
        total.truncated += st[k].truncated;
        total.packed += st[k].packed;
        total.rows += st[k].rows;
        total.tokens += st[k].tokens;
        total.loss_tokens += st[k].loss_tokens;
    }
    msgpack_pack_map(&pk, 16);
    mp_kv_int(&pk, "samples_in", (int64_t)R->n);  // = samples_packed + samples_rejected + copies_dropped
    mp_kv_int(&pk, "samples_packed", total.packed);
    mp_kv_int(&pk, "samples_rejected", total.rejected);
    mp_kv_int(&pk, "samples_truncated", total.truncated);
    mp_key(&pk, "rejected_ids");
    msgpack_pack_array(&pk, (size_t)total.rejected);
    for (size_t i = 0; i < R->n; i++)
        if (R->s[i].rejected && !R->s[i].dropped && slot_used[R->s[i].split]) mp_str(&pk, R->s[i].id);
    mp_kv_int(&pk, "seq_len", R->seq_len);
    mp_kv_int(&pk, "note_groups", g->groups);
    mp_kv_int(&pk, "duplicate_groups", g->dup_groups);
    mp_kv_int(&pk, "samples_in_duplicate_groups", g->dup_samples);
    mp_kv_int(&pk, "leaked_groups", g->leaked_groups);
    mp_kv_str(&pk, "group_by", R->presplit ? "input" : R->out_path[SPLIT_ALL] ? "none" : R->group_by_note ? "note" : "none");
    mp_kv_int(&pk, "copies_in", cs->in);
    mp_kv_int(&pk, "copies_dropped", cs->dropped);
    mp_kv_int(&pk, "copies_like_heldout", cs->like_heldout);
    mp_key(&pk, "splits");
    msgpack_pack_map(&pk, (size_t)n_used);
    for (int k = 0; k < N_SLOTS; k++) {
        if (!slot_used[k]) continue;
        mp_key(&pk, slot_name(k));
        pack_stats(&pk, &st[k], R->seq_len);
    }
    mp_key(&pk, "total");
    pack_stats(&pk, &total, R->seq_len);
}

static void print_summary(const pack_run *R, const group_stats *g, const copy_stats *cs,
                          const split_stats st[N_SLOTS], const int slot_used[N_SLOTS]) {
    int64_t packed = 0, rejected = 0, truncated = 0;
    for (int k = 0; k < N_SLOTS; k++)
        if (slot_used[k]) packed += st[k].packed, rejected += st[k].rejected, truncated += st[k].truncated;
    cli_warn("%zu samples in: %lld packed, %lld rejected, %lld truncated; %lld distinct notes, %lld of them "
             "repeated (%lld samples), %lld shared across splits",
             R->n, (long long)packed, (long long)rejected, (long long)truncated, (long long)g->groups,
             (long long)g->dup_groups, (long long)g->dup_samples, (long long)g->leaked_groups);
    if (cs->in)
        cli_warn("%lld of the samples are species-swapped copies: %lld trained on (%lld of them read like a "
                 "held-out note), %lld dropped with their held-out originals",
                 (long long)cs->in, (long long)(cs->in - cs->dropped), (long long)cs->like_heldout,
                 (long long)cs->dropped);
    for (int k = 0; k < N_SLOTS; k++) {
        if (!slot_used[k]) continue;
        const split_stats *s = &st[k];
        double pos = (double)s->rows * R->seq_len, pad = (double)s->packed * R->seq_len;
        cli_warn("%-5s: %lld samples -> %lld rows, %lld tokens (%.1f%% of %lld x %d), %lld with loss; "
                 "pad-to-%d: %.0f positions, packed uses %.3f of them",
                 slot_name(k), (long long)s->packed, (long long)s->rows, (long long)s->tokens,
                 pos > 0 ? 100.0 * (double)s->tokens / pos : 0.0, (long long)s->rows, R->seq_len,
                 (long long)s->loss_tokens, R->seq_len, pad, pad > 0 ? pos / pad : 0.0);
    }
}

static void warn_rejected(const pack_run *R, int64_t n_rejected) {
    if (n_rejected == 0) return;
    char list[600] = "";
    size_t used = 0, shown = 0;
    for (size_t i = 0; i < R->n && shown < 8; i++) {
        if (!R->s[i].rejected || R->s[i].dropped) continue;
        int w = snprintf(list + used, sizeof list - used, "%s%s", shown ? ", " : "", R->s[i].id);
        if (w < 0 || (size_t)w >= sizeof list - used) break;
        used += (size_t)w;
        shown++;
    }
    cli_warn("%lld samples longer than --seq-len %d rejected: %s%s (%s)", (long long)n_rejected,
             R->seq_len, list, (int64_t)shown < n_rejected ? ", ..." : "",
             R->trunc == VET_TRUNC_NONE ? "--truncate left|right keeps them by cutting the prompt"
                                        : "their responses alone do not fit");
}

// ---------------------------------------------------------------------------------------

static long parse_long(const char *flag, const char *s, long lo) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo) cli_usage_error("%s '%s': expected an integer >= %ld", flag, s, lo);
    return v;
}

enum {
    OPT_OUT = 1000, OPT_TRAIN, OPT_VAL, OPT_TEST, OPT_TRAIN_IN, OPT_VAL_IN, OPT_TEST_IN, OPT_SPLIT,
    OPT_SEED, OPT_GROUP_BY, OPT_STRATIFY, OPT_SEQ_LEN, OPT_NO_PACK, OPT_TRAIN_ON_PROMPT,
    OPT_TRUNCATE, OPT_SUMMARY, OPT_VAL_COPIES,
};

int main(int argc, char **argv) {
    cli_prog = "vet-pack";
    static const struct option opts[] = {
        {"out", required_argument, 0, OPT_OUT},
        {"train", required_argument, 0, OPT_TRAIN},
        {"val", required_argument, 0, OPT_VAL},
        {"test", required_argument, 0, OPT_TEST},
        {"output", required_argument, 0, 'o'},
        {"train-in", required_argument, 0, OPT_TRAIN_IN},
        {"val-in", required_argument, 0, OPT_VAL_IN},
        {"test-in", required_argument, 0, OPT_TEST_IN},
        {"split", required_argument, 0, OPT_SPLIT},
        {"seed", required_argument, 0, OPT_SEED},
        {"group-by", required_argument, 0, OPT_GROUP_BY},
        {"stratify", required_argument, 0, OPT_STRATIFY},
        {"seq-len", required_argument, 0, OPT_SEQ_LEN},
        {"no-pack", no_argument, 0, OPT_NO_PACK},
        {"train-on-prompt", no_argument, 0, OPT_TRAIN_ON_PROMPT},
        {"truncate", required_argument, 0, OPT_TRUNCATE},
        {"summary", required_argument, 0, OPT_SUMMARY},
        {"val-copies", required_argument, 0, OPT_VAL_COPIES},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    pack_run R = {0};
    R.seq_len = 512;
    R.packed = 1;
    R.group_by_note = 1;
    R.seed = 1;
    R.loss_on = VET_LOSS_RESPONSE;
    R.trunc = VET_TRUNC_NONE;
    R.share[0] = 0.8, R.share[1] = 0.1, R.share[2] = 0.1;
    vet_err err;
    int c;
    while ((c = getopt_long(argc, argv, "o:vhV", opts, NULL)) != -1) {
        switch (c) {
        case OPT_OUT: R.out_dir = optarg; break;
        case OPT_TRAIN: R.out_path[VET_SPLIT_TRAIN] = optarg; break;
        case OPT_VAL: R.out_path[VET_SPLIT_VAL] = optarg; break;
        case OPT_TEST: R.out_path[VET_SPLIT_TEST] = optarg; break;
        case 'o': R.out_path[SPLIT_ALL] = optarg; break;
        case OPT_TRAIN_IN: R.in_path[VET_SPLIT_TRAIN] = optarg; break;
        case OPT_VAL_IN: R.in_path[VET_SPLIT_VAL] = optarg; break;
        case OPT_TEST_IN: R.in_path[VET_SPLIT_TEST] = optarg; break;
        case OPT_SPLIT:
            if (vet_split_parse_shares(optarg, R.share, &err) != 0) cli_usage_error("%s", err.msg);
            break;
        case OPT_SEED: R.seed = (uint64_t)parse_long("--seed", optarg, 0); break;
        case OPT_GROUP_BY:
            if (strcmp(optarg, "note") == 0) R.group_by_note = 1;
            else if (strcmp(optarg, "none") == 0) R.group_by_note = 0;
            else cli_usage_error("--group-by '%s': expected note or none", optarg);
            break;
        case OPT_STRATIFY:
            if (strcmp(optarg, "codes") == 0) R.stratify = 1;
            else if (strcmp(optarg, "none") == 0) R.stratify = 0;
            else cli_usage_error("--stratify '%s': expected codes or none", optarg);
            break;
        case OPT_SEQ_LEN: R.seq_len = (int)parse_long("--seq-len", optarg, 2); break;
        case OPT_NO_PACK: R.packed = 0; break;
        case OPT_TRAIN_ON_PROMPT: R.loss_on = VET_LOSS_ALL; break;
        case OPT_TRUNCATE:
            if (vet_pack_parse_trunc(optarg, &R.trunc, &err) != 0 || R.trunc == VET_TRUNC_NONE)
                cli_usage_error("--truncate '%s': expected left or right", optarg);
            break;
        case OPT_SUMMARY: R.summary_path = optarg; break;
        case OPT_VAL_COPIES: R.out_path[SPLIT_VAL_COPIES] = optarg; break;
        case 'v': R.verbose = 1; break;
        case 'h': usage();
        case 'V': cli_version();
        default: cli_usage_error("unknown option");
        }
    }
    if (R.seq_len > (1 << 24)) cli_usage_error("--seq-len %d: too large", R.seq_len);
    R.presplit = R.in_path[0] || R.in_path[1] || R.in_path[2];
    if (optind + 1 < argc) cli_usage_error("one input at most (got %d)", argc - optind);
    if (R.presplit && optind < argc)
        cli_usage_error("give either one TOKENS input or --train-in/--val-in/--test-in, not both");
    int all_mode = R.out_path[SPLIT_ALL] != NULL;
    if (all_mode && (R.out_dir || R.out_path[0] || R.out_path[1] || R.out_path[2] || R.presplit ||
                     R.out_path[SPLIT_VAL_COPIES]))
        cli_usage_error("-o/--output writes everything to one stream: no --out/--train/--val/--test/--*-in/--val-copies with it");

    // Which slots are written, and where.
    int slot_used[N_SLOTS] = {0};
    char *dir_path[3] = {NULL, NULL, NULL};
    if (all_mode) {
        slot_used[SPLIT_ALL] = 1;
    } else {
        if (R.out_dir) {
            if (mkdir(R.out_dir, 0777) != 0 && errno != EEXIST)
                cli_fail(EXIT_IO, "%s: cannot create directory: %s", R.out_dir, strerror(errno));
            for (int k = 0; k < 3; k++) {
                if (R.out_path[k]) continue;  // an explicit --train etc. wins over --out
                size_t l = strlen(R.out_dir) + 32;
                dir_path[k] = malloc(l);
                snprintf(dir_path[k], l, "%s/%s.msgpack.zst", R.out_dir, vet_split_name(k));
                R.out_path[k] = dir_path[k];
            }
        }
        int n_stdout = 0;
        for (int k = 0; k < 3; k++) {
            int needed = R.presplit ? R.in_path[k] != NULL : R.share[k] > 0;
            if (needed && !R.out_path[k])
                cli_usage_error("the %s split has no output: name it with --%s FILE or --out DIR", vet_split_name(k),
                                vet_split_name(k));
            if (R.presplit && R.out_path[k] && !R.in_path[k] && !R.out_dir)
                cli_usage_error("--%s given without --%s-in", vet_split_name(k), vet_split_name(k));
            slot_used[k] = R.out_path[k] != NULL;
            n_stdout += R.out_path[k] && strcmp(R.out_path[k], "-") == 0;
        }
        if (!slot_used[0] && !slot_used[1] && !slot_used[2])
            cli_usage_error("no output: use --out DIR, --train/--val/--test FILE or -o FILE");
        if (R.out_path[SPLIT_VAL_COPIES]) {
            if (!slot_used[VET_SPLIT_VAL])
                cli_usage_error("--val-copies without a val split (its copies come from the val split's notes)");
            slot_used[SPLIT_VAL_COPIES] = 1;
            n_stdout += strcmp(R.out_path[SPLIT_VAL_COPIES], "-") == 0;
        }
        if (n_stdout > 1) cli_usage_error("only one split can go to stdout");
    }
    if (R.summary_path && strcmp(R.summary_path, "-") == 0)
        for (int k = 0; k < N_SLOTS; k++)
            if (R.out_path[k] && strcmp(R.out_path[k], "-") == 0)
                cli_usage_error("--summary - and a stream on stdout would mix: write the summary to a file");

    // Read everything (nothing is written before the input proved whole).
    if (R.presplit) {
        for (int k = 0; k < 3; k++) {
            if (!R.in_path[k]) continue;
            R.in_of_slot[k] = R.n_in;
            read_input(&R, R.n_in, R.in_path[k], k);
            const input_info *a = &R.in[0], *b = &R.in[R.n_in];
            if (strcmp(a->sha256, b->sha256) != 0)
                cli_fail(EXIT_BAD_INPUT, "tokenizer mismatch: %s has tokenizer sha256 %s, %s has %s (tokenize every split "
                         "with the same model)", a->path, a->sha256, b->path, b->sha256);
            R.n_in++;
        }
        for (int k = 0; k < 3; k++)
            if (!R.in_path[k]) R.in_of_slot[k] = 0;
        R.in_of_slot[SPLIT_VAL_COPIES] = R.in_of_slot[VET_SPLIT_VAL];
    } else {
        read_input(&R, 0, optind < argc ? argv[optind] : "-", all_mode ? SPLIT_ALL : VET_SPLIT_TRAIN);
        R.n_in = 1;
    }
    copy_stats cs = {0};
    group_stats g = split_samples(&R, &cs);

    split_stats st[N_SLOTS];
    slot_rows plan[N_SLOTS];
    memset(st, 0, sizeof st);
    memset(plan, 0, sizeof plan);
    int64_t n_rejected = 0;
    for (int k = 0; k < N_SLOTS; k++) {
        plan_slot(&R, k, &plan[k], &st[k]);
        if (slot_used[k]) n_rejected += st[k].rejected;
    }
    msgpack_sbuffer summary_buf;
    msgpack_sbuffer_init(&summary_buf);
    build_summary(&R, &g, &cs, st, slot_used, &summary_buf);
    msgpack_zone summary_zone;
    msgpack_zone_init(&summary_zone, 4096);
    msgpack_object summary;
    size_t off = 0;
    if (msgpack_unpack(summary_buf.data, summary_buf.size, &off, &summary_zone, &summary) != MSGPACK_UNPACK_SUCCESS)
        cli_fail(EXIT_IO, "summary: msgpack round trip failed (a bug)");

    // Write every used slot; on any failure abort them all (no file under a final name).
    vet_writer *w[N_SLOTS] = {0};
    int status = EXIT_OK;
    int32_t *tok = malloc((size_t)R.seq_len * sizeof *tok), *tgt = malloc((size_t)R.seq_len * sizeof *tgt);
    if (!tok || !tgt) cli_fail(EXIT_IO, "out of memory");
    for (int k = 0; k < N_SLOTS && status == EXIT_OK; k++) {
        if (!slot_used[k]) continue;
        const input_info *in = &R.in[k != SPLIT_ALL ? R.in_of_slot[k] : 0];
        w[k] = vet_writer_open(R.out_path[k], "packed", "vet-pack", &err);
        if (!w[k]) {
            status = EXIT_IO;
            break;
        }
        msgpack_packer *pk = vet_writer_packer(w[k]);
        vet_writer_header_begin(w[k], 8);
        mp_key(pk, "tokenizer");
        msgpack_pack_object(pk, in->tokenizer);
        mp_key(pk, "template");
        msgpack_pack_object(pk, in->template_);
        mp_kv_str(pk, "split", slot_name(k));
        mp_kv_int(pk, "seq_len", R.seq_len);
        mp_kv_bool(pk, "packed", R.packed);
        mp_kv_str(pk, "loss_on", R.loss_on == VET_LOSS_ALL ? "all" : "response");
        mp_kv_int(pk, "seed", (int64_t)R.seed);
        mp_key(pk, "summary");
        msgpack_pack_object(pk, summary);
        if (vet_writer_header_end(w[k], &err) != 0) {
            status = EXIT_IO;
            break;
        }
        for (size_t r = 0; r < plan[k].n_rows && status == EXIT_OK; r++)
            if (write_row(&R, w[k], &plan[k], (size_t)plan[k].perm[r], tok, tgt, &err) != 0) status = EXIT_IO;
    }
    // Close only when every stream is complete: a failure leaves none behind.
    for (int k = 0; k < N_SLOTS; k++) {
        if (!w[k]) continue;
        if (status == EXIT_OK) {
            if (vet_writer_close(w[k], &err) != 0) status = EXIT_IO;
        } else {
            vet_writer_abort(w[k]);
        }
        w[k] = NULL;
    }
    if (status != EXIT_OK) cli_warn("%s", err.msg);
    if (status == EXIT_OK && R.summary_path) {
        int to_stdout = strcmp(R.summary_path, "-") == 0;
        FILE *f = to_stdout ? stdout : fopen(R.summary_path, "w");
        int bad = !f;
        if (f) {
            bad |= mp_print_json(f, &summary) != 0;
            bad |= fputc('\n', f) == EOF;
            bad |= (to_stdout ? fflush(f) : fclose(f)) != 0;
        }
        if (bad) {
            cli_warn("%s: cannot write the summary: %s", R.summary_path, strerror(errno));
            status = EXIT_IO;
        }
    }
    if (status == EXIT_OK) {
        warn_rejected(&R, n_rejected);
        if (R.verbose || cli_stderr_is_tty()) print_summary(&R, &g, &cs, st, slot_used);
    }

    free(tok);
    free(tgt);
    msgpack_zone_destroy(&summary_zone);
    msgpack_sbuffer_destroy(&summary_buf);
    for (int k = 0; k < N_SLOTS; k++) free_slot(&plan[k]);
    for (int k = 0; k < 3; k++) free(dir_path[k]);
    for (int i = 0; i < R.n_in; i++) {
        msgpack_zone_destroy(&R.in[i].zone);
        msgpack_sbuffer_destroy(&R.in[i].buf[0]);
        msgpack_sbuffer_destroy(&R.in[i].buf[1]);
    }
    for (size_t i = 0; i < R.n; i++) {
        free(R.s[i].id);
        free(R.s[i].species);
        free(R.s[i].copy_of);
        mp_free_strs(R.s[i].codes, R.s[i].n_codes);
        free(R.s[i].tokens);
    }
    free(R.s);
    return status;
}
