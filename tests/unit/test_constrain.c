// test_constrain.c — constrained decoding: the language matcher, the token mask, decoding with
// a random model (every output must parse and name only labels of the table), and the decoder
// made from a code table as vet-generate reads one (vet_constrain_from_labels).
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "io/config.h"
#include "generate/allowed.h"
#include "generate/constrain.h"
#include "generate/decoder.h"
#include "data/labels.h"
#include "model/model.h"
#include "model/ops.h"
#include "base/rng.h"

static char *labels[] = {"1679004", "40214000", "4021", "Foot Rot", "A, B"};
#define N_LABELS 5

// A SentencePiece-like vocabulary: ids 0-2 control (unk, bos, eos), all 256 byte pieces,
// then whole words and fragments, some of which only fit in some places.
static char *piece_list[] = {
    "▁Diagnosed", "▁conditions", ":", "▁", "▁Diag", "nosed", "▁cond", "itions:", "167", "9004",
    "40", "214", "000", ",", ",▁", "▁Foot", "▁Rot", "Foot", "▁A", "A,", "▁B", "B", "1679004,",
    "▁1679004", "xyz", "▁conditions:▁", "Rot,▁4021", "00,▁A",
};

// A vocabulary: 3 control ids (NULL pieces), the 256 byte pieces <0xNN>, then words.
static char **pieces_of(char *const *words, int n_words, int *V) {
    *V = 3 + 256 + n_words;
    char **p = calloc((size_t)*V, sizeof *p);
    for (int b = 0; b < 256; b++) {
        p[3 + b] = malloc(8);
        snprintf(p[3 + b], 8, "<0x%02X>", b);
    }
    for (int i = 0; i < n_words; i++) p[3 + 256 + i] = strdup(words[i]);
    return p;
}

static char **make_pieces(int *V) {
    return pieces_of(piece_list, (int)(sizeof piece_list / sizeof piece_list[0]), V);
}

static int piece_id(char **p, int V, const char *s) {
    for (int v = 0; v < V; v++)
        if (p[v] && strcmp(p[v], s) == 0) return v;
    return -1;
}

// The text of ids as SentencePiece decodes it: ▁ is a space, bytes are bytes, one leading
// space (the dummy prefix) dropped, control ids give nothing.
static size_t decode(char **p, const int32_t *ids, int n, char *out) {
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        const char *s = p[ids[i]];
        if (!s) continue;
        unsigned int b;
        if (strlen(s) == 6 && sscanf(s, "<0x%2X>", &b) == 1) {
            out[k++] = (char)b;
            continue;
        }
        for (size_t j = 0; s[j];) {
            if (strncmp(s + j, "▁", 3) == 0) out[k++] = ' ', j += 3;
            else out[k++] = s[j++];
        }
    }
    out[k] = 0;
    if (out[0] == ' ') memmove(out, out + 1, k--);
    return k;
}

static vet_constrain *make_constrain(char **pieces, int V) {
    int32_t eos = 2;
    vet_err err;
    vet_constrain *c = vet_constrain_new("Diagnosed conditions: ", labels, N_LABELS, pieces, V, &eos, 1, &err);
    if (!c) fprintf(stderr, "%s\n", err.msg);
    return c;
}

static void test_matches(void) {
    int V;
    char **p = make_pieces(&V);
    vet_constrain *c = make_constrain(p, V);
    CHECK(c != NULL);
#define M(s) vet_constrain_matches(c, s, strlen(s))
    CHECK(M("Diagnosed conditions: 1679004"));
    CHECK(M("Diagnosed conditions: 1679004, 40214000, Foot Rot"));
    CHECK(M("Diagnosed conditions: 4021"));
    CHECK(M("Diagnosed conditions: A, B"));           // a label with the separator inside
    CHECK(M("Diagnosed conditions: A, B, 4021"));
    CHECK(!M("Diagnosed conditions: A"));              // only a prefix of "A, B"
    CHECK(!M("Diagnosed conditions: 167"));
    CHECK(!M("Diagnosed conditions: 1679004,"));
    CHECK(!M("Diagnosed conditions: 1679004,40214000"));
    CHECK(!M("Diagnosed conditions: "));
    CHECK(!M("Diagnosed: 1679004"));
    CHECK(!M("Diagnosed conditions: foot rot"));
#undef M
    // What a response cut short answered: the labels it closed (a separator after them, or the
    // end of a complete sentence), never the start of one ("4021" on the way to "40214000").
#define CL(s, want) (vet_constrain_complete_len(c, s, strlen(s)) == strlen(want) && strncmp(s, want, strlen(want)) == 0)
    CHECK(CL("Diagnosed conditions: 1679004", "Diagnosed conditions: 1679004"));
    CHECK(CL("Diagnosed conditions: 4021", "Diagnosed conditions: 4021"));
    CHECK(CL("Diagnosed conditions: 4021400", ""));
    CHECK(CL("Diagnosed conditions: 167900", ""));
    CHECK(CL("Diagnosed conditions: 1679004, 402140", "Diagnosed conditions: 1679004"));
    CHECK(CL("Diagnosed conditions: 1679004, 4021, A", "Diagnosed conditions: 1679004, 4021"));
    CHECK(CL("Diagnosed conditions: A, B, 40", "Diagnosed conditions: A, B"));
    CHECK(CL("Diagnosed conditions: A, ", ""));
    CHECK(CL("Diagnosed cond", ""));
    CHECK(CL("Diagnosed conditions: 1679004, 1679004x", "Diagnosed conditions: 1679004"));
#undef CL
    char *none[] = {NULL};
    vet_err err;
    CHECK(vet_constrain_new("x", none, 0, p, V, NULL, 0, &err) == NULL);
    CHECK_CONTAINS(err.msg, "no labels");
    vet_constrain_free(c);
    vet_constrain_free_pieces(p, V);
}

static void test_advance_and_mask(void) {
    int V;
    char **p = make_pieces(&V);
    vet_constrain *c = make_constrain(p, V);
    vet_cstate s;
    vet_constrain_start(c, &s);
    float *lg = malloc((size_t)V * sizeof(float));
    for (int v = 0; v < V; v++) lg[v] = 0;
    vet_constrain_mask(c, &s, 100, lg);
    CHECK(lg[piece_id(p, V, "▁Diagnosed")] == 0);     // the dummy-prefix space
    CHECK(lg[piece_id(p, V, "▁Diag")] == 0);
    CHECK(lg[piece_id(p, V, "<0x44>")] == 0);         // 'D'
    CHECK(lg[piece_id(p, V, "▁conditions")] == -INFINITY);
    CHECK(lg[piece_id(p, V, "<0x20>")] == -INFINITY);  // a byte space would stay in the text
    CHECK(lg[piece_id(p, V, "▁")] == 0);               // a "▁" piece is the dummy prefix
    CHECK(lg[2] == -INFINITY && lg[0] == -INFINITY && lg[1] == -INFINITY);
    CHECK(vet_constrain_advance(c, &s, piece_id(p, V, "▁conditions")) == -1);
    CHECK(vet_constrain_advance(c, &s, piece_id(p, V, "▁Diagnosed")) == 0);
    CHECK(vet_constrain_advance(c, &s, piece_id(p, V, "▁")) == 0);  // "Diagnosed " is fine
    vet_constrain_start(c, &s);
    CHECK(vet_constrain_advance(c, &s, piece_id(p, V, "▁Diagnosed")) == 0);
    CHECK(vet_constrain_advance(c, &s, piece_id(p, V, "▁conditions:▁")) == 0);
    CHECK(!vet_constrain_accepting(c, &s));
    CHECK(vet_constrain_advance(c, &s, 2) == -1);     // no EOS before a label
    CHECK(vet_constrain_advance(c, &s, piece_id(p, V, "40")) == 0);
    CHECK(vet_constrain_advance(c, &s, piece_id(p, V, "<0x32>")) == 0);  // "402"
    CHECK(vet_constrain_advance(c, &s, piece_id(p, V, "<0x31>")) == 0);  // "4021": complete
    CHECK(vet_constrain_accepting(c, &s));
    for (int v = 0; v < V; v++) lg[v] = 0;
    vet_constrain_mask(c, &s, 100, lg);
    CHECK(lg[2] == 0);                                 // EOS allowed after a label
    CHECK(lg[piece_id(p, V, "<0x34>")] == 0);          // or go on to 40214000
    CHECK(lg[piece_id(p, V, "<0x30>")] == -INFINITY);  // no label starts 40210
    CHECK(lg[piece_id(p, V, ",▁")] == 0);
    CHECK(lg[piece_id(p, V, "xyz")] == -INFINITY);
    // Budget: with 2 tokens left only EOS fits ("," + label + EOS needs 3 or more).
    for (int v = 0; v < V; v++) lg[v] = 0;
    vet_constrain_mask(c, &s, 2, lg);
    CHECK(lg[2] == 0 && lg[piece_id(p, V, ",▁")] == -INFINITY);
    // "4" then "000" then EOS takes 3 tokens (the budget counts tokens, not the 5 characters):
    // not with 2 left, yes with 3.
    for (int v = 0; v < V; v++) lg[v] = 0;
    vet_constrain_mask(c, &s, 2, lg);
    CHECK(lg[piece_id(p, V, "<0x34>")] == -INFINITY);
    for (int v = 0; v < V; v++) lg[v] = 0;
    vet_constrain_mask(c, &s, 3, lg);
    CHECK(lg[piece_id(p, V, "<0x34>")] == 0);
    free(lg);
    vet_constrain_free(c);
    vet_constrain_free_pieces(p, V);
}

// The length budget counts tokens. "Dx: " and a label of 8 digits are 12 characters but can be
// 3 tokens ("Dx:▁", "12345678", EOS): with 3 tokens left the budget must still find that way,
// where a budget in characters finds none and falls back to the unbudgeted mask. A model that
// prefers byte pieces then spells "Dx:" and is cut before any label.
static char *short_pieces[] = {"▁Dx:", "▁", "Dx:▁", "12345678", "1234", "5678", "40", "21", ",▁"};

static char **make_short_pieces(int *V) {
    return pieces_of(short_pieces, (int)(sizeof short_pieces / sizeof short_pieces[0]), V);
}

// The ids vet_constrain_allowed leaves at s with `remaining` left, as piece texts "a b c"
// (EOS as "EOS"), for comparing with what the budget must allow.
static const char *allowed_text(vet_constrain *c, char **p, int V, const vet_cstate *s, int remaining) {
    static char out[4096];
    int32_t *ids = malloc((size_t)V * sizeof *ids);
    unsigned char *allow = malloc((size_t)V);
    int k = vet_constrain_allowed(c, s, remaining, ids, allow);
    out[0] = 0;
    for (int i = 0; i < k; i++)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? " " : "", ids[i] == 2 ? "EOS" : p[ids[i]]);
    free(ids), free(allow);
    return out;
}

static void test_budget_in_tokens(void) {
    int V;
    char **p = make_short_pieces(&V);
    char *lab[] = {"12345678", "4021"};
    int32_t eos = 2;
    vet_err err;
    vet_constrain *c = vet_constrain_new("Dx: ", lab, 2, p, V, &eos, 1, &err);
    CHECK(c != NULL);
    vet_cstate s;
    vet_constrain_start(c, &s);
    // 3 left: only "Dx:▁" (then "12345678", EOS); 4 left: also "▁Dx:" (then "▁", a label, EOS)
    // and the dummy prefix "▁"; 6 left: the byte 'D' too ('D' 'x' ':' ' ' "12345678" EOS).
    // Counted in characters, 12 left would be too few for any of them.
    CHECK_STR(allowed_text(c, p, V, &s, 3), "Dx:▁");
    CHECK_STR(allowed_text(c, p, V, &s, 4), "▁Dx: ▁ Dx:▁");
    CHECK_STR(allowed_text(c, p, V, &s, 5), "▁Dx: ▁ Dx:▁");
    CHECK_STR(allowed_text(c, p, V, &s, 6), "<0x44> ▁Dx: ▁ Dx:▁");
    CHECK(vet_constrain_advance(c, &s, piece_id(p, V, "Dx:▁")) == 0);
    // At a label's start, 2 left: the whole label then EOS; 3 left: "1234" and "40" as well
    // (one more piece ends each); 4 left: the byte '4' ('0' "21" EOS); 6: the byte '1'.
    CHECK_STR(allowed_text(c, p, V, &s, 2), "12345678");
    CHECK_STR(allowed_text(c, p, V, &s, 3), "12345678 1234 40");
    CHECK_STR(allowed_text(c, p, V, &s, 4), "<0x34> 12345678 1234 40");
    CHECK_STR(allowed_text(c, p, V, &s, 5), "<0x34> 12345678 1234 40");
    CHECK_STR(allowed_text(c, p, V, &s, 6), "<0x31> <0x34> 12345678 1234 40");
    CHECK(vet_constrain_advance(c, &s, piece_id(p, V, "12345678")) == 0);
    // After a label, 1 left: EOS; 3 left: ",▁" too (then "12345678", EOS); 4: the byte ','.
    CHECK_STR(allowed_text(c, p, V, &s, 1), "EOS");
    CHECK_STR(allowed_text(c, p, V, &s, 3), "EOS ,▁");
    CHECK_STR(allowed_text(c, p, V, &s, 4), "EOS <0x2C> ,▁");
    // Greedy decoding with max_new 3, the fewest tokens a sentence takes, by a model that
    // prefers byte pieces: a complete label, then EOS.
    float *lg = malloc((size_t)V * sizeof *lg);
    int32_t out[8];
    int n = 0, max_new = 3;
    vet_constrain_start(c, &s);
    while (n < max_new) {
        for (int v = 0; v < V; v++) lg[v] = v >= 3 && v < 3 + 256 ? 1.0f : 0.0f;
        vet_constrain_mask(c, &s, max_new - n, lg);
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        out[n++] = best;
        CHECK(vet_constrain_advance(c, &s, best) == 0);
        if (best == eos) break;
    }
    char text[256];
    size_t len = decode(p, out, out[n - 1] == eos ? n - 1 : n, text);
    CHECK(out[n - 1] == eos);
    CHECK_STR(text, "Dx: 12345678");
    CHECK(vet_constrain_matches(c, text, len));
    free(lg);
    vet_constrain_free(c);
    vet_constrain_free_pieces(p, V);
}

// The budget against an independent count: every place the language can be at (state sets
// reached from the start by allowed ids, found by walking them), the fewest tokens that finish
// from it worked out by repeated relaxation over those places; at each place and budget the
// allowed ids must be exactly those that leave that many tokens or fewer (EOS at a label's
// end), or the unbudgeted ones when none does.
#define MAX_PLACES 4096
static int place_of(vet_cstate *places, int *n, const vet_cstate *s) {
    for (int i = 0; i < *n; i++)
        if (places[i].n == s->n && memcmp(places[i].st, s->st, (size_t)s->n * sizeof *s->st) == 0) return i;
    if (*n == MAX_PLACES) return -1;
    places[*n] = *s;
    return (*n)++;
}

static void test_budget_against_relaxation(void) {
    int V;
    char **p = make_pieces(&V);
    vet_constrain *c = make_constrain(p, V);
    vet_cstate *places = malloc(MAX_PLACES * sizeof *places);
    int *next = malloc((size_t)MAX_PLACES * V * sizeof *next);  // place after id, -1: not allowed
    int n = 0;
    vet_cstate s;
    vet_constrain_start(c, &s);
    place_of(places, &n, &s);
    for (int i = 0; i < n; i++)  // n grows as new places are found
        for (int v = 0; v < V; v++) {
            vet_cstate t = places[i];
            next[(size_t)i * V + v] = v != 2 && vet_constrain_advance(c, &t, v) == 0 ? place_of(places, &n, &t) : -1;
        }
    CHECK(n > 20 && n < MAX_PLACES);
    int *need = malloc((size_t)n * sizeof *need), changed = 1;
    for (int i = 0; i < n; i++) need[i] = vet_constrain_accepting(c, &places[i]) ? 1 : 1 << 20;
    while (changed) {
        changed = 0;
        for (int i = 0; i < n; i++)
            for (int v = 0; v < V; v++) {
                int j = next[(size_t)i * V + v];
                if (j >= 0 && need[j] + 1 < need[i]) need[i] = need[j] + 1, changed = 1;
            }
    }
    int32_t *ids = malloc((size_t)V * sizeof *ids);
    unsigned char *allow = malloc((size_t)V), *want = malloc((size_t)V);
    int bad = 0;
    for (int i = 0; i < n; i++)
        for (int rem = 1; rem <= 12; rem++) {
            int any = 0;
            for (int v = 0; v < V; v++) {
                int j = next[(size_t)i * V + v];
                want[v] = v == 2 ? vet_constrain_accepting(c, &places[i]) : j >= 0 && need[j] <= rem - 1;
                any |= want[v];
            }
            for (int v = 0; !any && v < V; v++) want[v] = next[(size_t)i * V + v] >= 0;  // unbudgeted
            int k = vet_constrain_allowed(c, &places[i], rem, ids, allow), m = 0;
            for (int v = 0; v < V; v++)
                if (want[v]) bad += m >= k || ids[m++] != v;
            if (m != k && bad++ < 1) fprintf(stderr, "place %d, %d left: %d allowed, want %d\n", i, rem, k, m);
        }
    CHECK(bad == 0);
    free(ids), free(allow), free(want), free(need), free(next), free(places);
    vet_constrain_free(c);
    vet_constrain_free_pieces(p, V);
}

// Decoding with random logits: greedy and sampled, every output parses and names only
// table labels (checked with vet_labels_extract over the table).
typedef struct {
    int n_notes, next;
    int32_t prompt[4];
    char **pieces;
    vet_constrain *c;
    vet_labels *table;
    int bad_text, bad_labels, eos_ends, total_labels;
} dctx;

static int d_next(void *c_, vet_gen_prompt *p, vet_err *err) {
    dctx *c = c_;
    if (c->next == c->n_notes) return 0;
    c->prompt[0] = 1, c->prompt[1] = 3 + c->next % 200, c->prompt[2] = 3 + (c->next * 7) % 250;
    p->tag = c->next++, p->prompt = c->prompt, p->n_prompt = 3;
    return 1;
}

static int d_done(void *c_, const vet_gen_result *r, vet_err *err) {
    dctx *c = c_;
    char text[4096];
    int n = r->n_ids - (r->stopped ? 1 : 0);
    size_t len = decode(c->pieces, r->ids, n, text);
    c->eos_ends += r->stopped;
    if (!vet_constrain_matches(c->c, text, len)) {
        if (c->bad_text++ < 3) fprintf(stderr, "does not parse: \"%s\"\n", text);
    }
    char **found;
    size_t nf;
    if (vet_labels_extract(c->table, text, len, &found, &nf, NULL, err)) return -1;
    for (size_t i = 0; i < nf; i++)
        if (!vet_labels_term(c->table, found[i])) {
            if (c->bad_labels++ < 3) fprintf(stderr, "label \"%s\" not in the table: \"%s\"\n", found[i], text);
        }
    c->total_labels += (int)nf;
    vet_labels_free_list(found, nf);
    return 0;
}

static void decode_random_model(float temperature, int max_new, int batch) {
    int V;
    char **p = make_pieces(&V);
    vet_config cfg;
    vet_err err;
    CHECK(vet_config_preset(&cfg, "tiny", &err) == 0);
    vet_config_set_vocab(&cfg, V);
    cfg.n_layers = 1, cfg.dim = 32, cfg.hidden_dim = 64, cfg.n_heads = 2, cfg.n_kv_heads = 1;
    cfg.head_dim = 16;
    vet_model m;
    CHECK(vet_model_init(&m, &cfg, 7, &err) == 0);
    for (size_t i = 0; i < m.n_w; i++) m.w_mem[i] *= 50.0f;  // peaked logits: real preferences
    dctx c = {.n_notes = 60, .pieces = p};
    c.c = make_constrain(p, V);
    c.table = vet_labels_new();
    for (int i = 0; i < N_LABELS; i++) vet_labels_add(c.table, labels[i], "", &err);
    int32_t eos = 2;
    vet_gen_opts o = {.max_new = max_new, .eos_ids = &eos, .n_eos = 1, .constrain = c.c, .seed = 5};
    o.sampling.temperature = temperature;
    CHECK(vet_generate(&m, &o, batch, d_next, d_done, &c, &err) == 0);
    CHECK(c.next == c.n_notes);
    CHECK(c.bad_text == 0);
    CHECK(c.bad_labels == 0);
    CHECK(c.total_labels >= c.n_notes);
    CHECK(c.eos_ends == c.n_notes);  // the budget always leaves room to finish
    vet_labels_free(c.table);
    vet_constrain_free(c.c);
    vet_constrain_free_pieces(p, V);
    vet_model_free(&m);
}

// A code table (code<TAB>term lines, as vet_codes_load reads --constrain) gives the language of
// its codes, in the table's order; an empty table is refused.
static void test_from_code_table(void) {
    int V;
    char **p = make_pieces(&V);
    vet_err err;
    vet_labels *table = vet_labels_new();
    CHECK(vet_labels_add(table, "40214000", "Mastitis", &err) == 0);
    CHECK(vet_labels_add(table, "Foot Rot", "", &err) == 0);
    int32_t eos = 2;
    vet_constrain *c = vet_constrain_from_labels("Diagnosed conditions: ", table, p, V, &eos, 1, &err);
    CHECK(c != NULL);
    if (c) {
#define M(s) vet_constrain_matches(c, s, strlen(s))
        CHECK(M("Diagnosed conditions: Foot Rot, 40214000"));
        CHECK(!M("Diagnosed conditions: 1679004"));  // not in this table
        CHECK(!M("Diagnosed conditions: Mastitis"));  // a term is not a label
#undef M
    }
    vet_constrain_free(c);
    vet_labels *empty = vet_labels_new();
    CHECK(vet_constrain_from_labels("x", empty, p, V, &eos, 1, &err) == NULL);
    CHECK_CONTAINS(err.msg, "no labels");
    vet_labels_free(empty);
    vet_labels_free(table);
    vet_constrain_free_pieces(p, V);
}

// A label of many ", "-joined parts beside its first part as a label ("a" and "a, a, ..., a"):
// after m parts the text can be inside the long label from any of the m starts, so the state
// set holds m + 1 places. Each must be kept (a set cut short lost places silently: "a" x 20
// did not match); a table that could need more places than a set holds is refused at load,
// naming the label.
static char *join_parts(int parts) {
    char *s = malloc((size_t)parts * 3 + 16);
    strcpy(s, "Dx: a");
    for (int i = 1; i < parts; i++) strcat(s, ", a");
    return s;
}

static void test_many_parts(void) {
    int V;
    char **p = make_short_pieces(&V);
    int32_t eos = 2;
    vet_err err;
    const int commas[] = {20, VET_CSTATE_MAX - 3};
    for (int t = 0; t < 2; t++) {
        char *long_label = join_parts(commas[t] + 1) + 4;  // past "Dx: "
        char *lab[] = {"a", long_label};
        vet_constrain *c = vet_constrain_new("Dx: ", lab, 2, p, V, &eos, 1, &err);
        CHECK(c != NULL);
        int bad = 0;
        for (int parts = 1; c && parts <= commas[t] + 6; parts++) {
            char *text = join_parts(parts);
            bad += !vet_constrain_matches(c, text, strlen(text));
            free(text);
        }
        CHECK(bad == 0);
        // The same text token by token: a complete label (EOS allowed) after every "a".
        vet_cstate s;
        if (c) vet_constrain_start(c, &s);
        CHECK(c && vet_constrain_advance(c, &s, piece_id(p, V, "Dx:▁")) == 0);
        for (int parts = 1; c && parts <= commas[t] + 6; parts++) {
            if (parts > 1) bad += vet_constrain_advance(c, &s, piece_id(p, V, ",▁")) != 0;
            bad += vet_constrain_advance(c, &s, 3 + 'a') != 0 || !vet_constrain_accepting(c, &s);
        }
        CHECK(bad == 0);
        vet_constrain_free(c);
        free(long_label - 4);
    }
    // One separator more than a set can follow: refused, naming the label.
    char *too_long = join_parts(VET_CSTATE_MAX - 1) + 4;
    char *lab[] = {"a", too_long};
    CHECK(vet_constrain_new("Dx: ", lab, 2, p, V, &eos, 1, &err) == NULL);
    CHECK_CONTAINS(err.msg, "label 2 of the code table");
    CHECK_CONTAINS(err.msg, "a, a, a");
    free(too_long - 4);
    vet_constrain_free_pieces(p, V);
}

static void test_decode_greedy(void) { decode_random_model(0.0f, 60, 4); }
static void test_decode_sampled(void) { decode_random_model(1.5f, 60, 3); }
static void test_decode_short_budget(void) { decode_random_model(2.0f, 26, 5); }

// vet_constrain_allowed lists exactly the ids vet_constrain_mask leaves finite, ascending, at
// every state of random walks through the language and for budgets from roomy to too short;
// vet_allowed answers the same lists, computing each (state, budget) once (the second ask is
// remembered) and still right after it has emptied its table (more keys than it holds).
static void test_allowed_lists(void) {
    int V;
    char **p = make_pieces(&V);
    vet_constrain *c = make_constrain(p, V);
    vet_err err;
    vet_allowed *a = vet_allowed_new(c, V, &err);
    CHECK(a != NULL);
    float *lg = malloc((size_t)V * sizeof(float));
    int32_t *ids = malloc((size_t)V * sizeof *ids);
    unsigned char *allow = malloc((size_t)V);
    vet_rng r;
    vet_rng_seed(&r, 9);
    const int budgets[] = {100, 6, 3, 2, 1};
    int bad = 0, states = 0;
    for (int walk = 0; walk < 40; walk++) {
        vet_cstate s;
        vet_constrain_start(c, &s);
        for (int depth = 0; depth < 12; depth++) {
            for (int ib = 0; ib < 5; ib++) {
                for (int v = 0; v < V; v++) lg[v] = 0;
                vet_constrain_mask(c, &s, budgets[ib], lg);
                int k = vet_constrain_allowed(c, &s, budgets[ib], ids, allow), j = 0;
                for (int v = 0; v < V; v++)
                    if (lg[v] == 0) bad += j >= k || ids[j++] != v;
                bad += j != k || k < 1;
                int n1, n2;
                const int32_t *l1 = vet_allowed_get(a, &s, budgets[ib], &n1, &err);
                bad += !l1 || n1 != k || memcmp(l1, ids, (size_t)k * sizeof *ids) != 0;
                const int32_t *l2 = vet_allowed_get(a, &s, budgets[ib], &n2, &err);
                bad += l2 != l1 || n2 != n1;
                states++;
            }
            // one step along a random allowed non-EOS id, if any
            int k = vet_constrain_allowed(c, &s, 100, ids, allow), m = 0;
            for (int j = 0; j < k; j++)
                if (ids[j] != 2) ids[m++] = ids[j];
            if (m == 0) break;
            CHECK(vet_constrain_advance(c, &s, ids[vet_rng_next(&r) % (uint64_t)m]) == 0);
        }
    }
    CHECK(bad == 0);
    long long computed, remembered;
    vet_allowed_counts(a, &computed, &remembered);
    CHECK(remembered >= states && computed <= states);  // every second ask, and repeated places
    // More keys than the table holds (budgets 1..5000 at the start): still the right lists.
    vet_cstate s0;
    vet_constrain_start(c, &s0);
    int k0 = vet_constrain_allowed(c, &s0, 100, ids, allow), wrong = 0;
    for (int rem = 1; rem <= 5000; rem++) {
        int n;
        const int32_t *l = vet_allowed_get(a, &s0, rem, &n, &err);
        if (rem >= 100) wrong += !l || n != k0 || memcmp(l, ids, (size_t)k0 * sizeof *ids) != 0;
    }
    CHECK(wrong == 0);
    free(lg), free(ids), free(allow);
    vet_allowed_free(a);
    vet_constrain_free(c);
    vet_constrain_free_pieces(p, V);
}

int main(void) {
    vet_set_threads(1);
    RUN(test_allowed_lists);
    RUN(test_matches);
    RUN(test_advance_and_mask);
    RUN(test_from_code_table);
    RUN(test_budget_in_tokens);
    RUN(test_budget_against_relaxation);
    RUN(test_many_parts);
    RUN(test_decode_greedy);
    RUN(test_decode_sampled);
    RUN(test_decode_short_budget);
    CHECK_EXIT();
}
