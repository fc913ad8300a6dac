// constrain.c — the response language PREFIX L (", " L)* as a tiny NFA over bytes.
//
// States are numbers: LEAD (the very beginning, where one space from the dummy prefix may
// come), PFX(i) (i bytes of the prefix matched), T(node) (inside a label, at a node of the
// label trie; node 0 is the root, the start of a label) and SEP (a ',' after a complete
// label, a ' ' must follow). A label that itself contains ", " makes the set hold more than
// one state; that is why a note carries a set, not one state.
#include "generate/constrain.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int child, sibling;    // first child, next sibling (-1: none)
    unsigned char ch;      // the byte leading here from the parent
    unsigned char terminal;  // a label ends here
    int dist;              // fewest bytes from here to the end of some label
} trie_node;

struct vet_constrain {
    char *prefix;
    int P;
    trie_node *nodes;
    int n_nodes, cap_nodes;
    int V;
    unsigned char **text;  // (V) each piece's bytes, NULL: never allowed
    int *len;              // (V)
    unsigned char *lead;   // (V) the piece starts with "▁": its space may be the dummy prefix
    unsigned char *is_eos; // (V)
};

#define ST_LEAD 0
static inline int st_pfx(const vet_constrain *c, int i) { return i < c->P ? 1 + i : 1 + c->P; }
static inline int st_node(const vet_constrain *c, int n) { return 1 + c->P + n; }
static inline int st_sep(const vet_constrain *c) { return 1 + c->P + c->n_nodes; }

static int add_node(vet_constrain *c, unsigned char ch) {
    if (c->n_nodes == c->cap_nodes) {
        int cap = c->cap_nodes ? 2 * c->cap_nodes : 64;
        trie_node *p = realloc(c->nodes, (size_t)cap * sizeof *p);
        if (!p) return -1;
        c->nodes = p, c->cap_nodes = cap;
    }
    trie_node *n = &c->nodes[c->n_nodes];
    n->child = n->sibling = -1, n->ch = ch, n->terminal = 0, n->dist = INT_MAX / 4;
    return c->n_nodes++;
}

static int find_child(const vet_constrain *c, int node, unsigned char ch) {
    for (int k = c->nodes[node].child; k >= 0; k = c->nodes[k].sibling)
        if (c->nodes[k].ch == ch) return k;
    return -1;
}

static int insert_label(vet_constrain *c, const char *label) {
    int node = 0;
    for (const unsigned char *p = (const unsigned char *)label; *p; p++) {
        int k = find_child(c, node, *p);
        if (k < 0) {
            if ((k = add_node(c, *p)) < 0) return -1;
            c->nodes[k].sibling = c->nodes[node].child;
            c->nodes[node].child = k;
        }
        node = k;
    }
    c->nodes[node].terminal = 1;
    return 0;
}

// A piece as bytes: "▁" (U+2581) is a space, <0xNN> is the byte NN.
static unsigned char *piece_bytes(const char *piece, int *len) {
    size_t n = strlen(piece);
    unsigned char *out = malloc(n + 1);
    if (!out) return NULL;
    unsigned int byte;
    if (n == 6 && piece[0] == '<' && piece[1] == '0' && piece[2] == 'x' && piece[5] == '>' &&
        sscanf(piece + 3, "%2X", &byte) == 1) {
        out[0] = (unsigned char)byte;
        *len = 1;
        return out;
    }
    int k = 0;
    for (size_t i = 0; i < n;) {
        if (i + 2 < n && (unsigned char)piece[i] == 0xE2 && (unsigned char)piece[i + 1] == 0x96 &&
            (unsigned char)piece[i + 2] == 0x81) {
            out[k++] = ' ';
            i += 3;
        } else {
            out[k++] = (unsigned char)piece[i++];
        }
    }
    *len = k;
    return out;
}

vet_constrain *vet_constrain_new(const char *prefix, char *const *labels, size_t n_labels,
                                 char *const *pieces, int V, const int32_t *eos_ids, int n_eos,
                                 vet_err *err) {
    if (n_labels == 0) {
        vet_errf(err, "the code table for constrained decoding has no labels");
        return NULL;
    }
    vet_constrain *c = calloc(1, sizeof *c);
    if (!c) goto oom;
    c->prefix = strdup(prefix ? prefix : "");
    c->P = (int)strlen(c->prefix);
    c->V = V;
    c->text = calloc((size_t)V, sizeof *c->text);
    c->len = calloc((size_t)V, sizeof *c->len);
    c->is_eos = calloc((size_t)V, 1);
    c->lead = calloc((size_t)V, 1);
    if (!c->prefix || !c->text || !c->len || !c->is_eos || !c->lead || add_node(c, 0) < 0) goto oom;
    for (size_t i = 0; i < n_labels; i++) {
        if (!labels[i] || !labels[i][0]) {
            vet_errf(err, "label %zu of the code table is empty", i + 1);
            vet_constrain_free(c);
            return NULL;
        }
        if (insert_label(c, labels[i])) goto oom;
    }
    // Children have larger indices than their parent: one backward sweep finds every dist.
    for (int n = c->n_nodes - 1; n >= 0; n--) {
        trie_node *t = &c->nodes[n];
        if (t->terminal) t->dist = 0;
        for (int k = t->child; k >= 0; k = c->nodes[k].sibling)
            if (c->nodes[k].dist + 1 < t->dist) t->dist = c->nodes[k].dist + 1;
    }
    for (int i = 0; i < n_eos; i++)
        if (eos_ids[i] >= 0 && eos_ids[i] < V) c->is_eos[eos_ids[i]] = 1;
    for (int v = 0; v < V; v++) {
        if (!pieces[v] || c->is_eos[v]) continue;
        if (!(c->text[v] = piece_bytes(pieces[v], &c->len[v]))) goto oom;
        c->lead[v] = strncmp(pieces[v], "\xE2\x96\x81", 3) == 0;
    }
    return c;
oom:
    vet_constrain_free(c);
    vet_err_nomem(err, "out of memory for the constrained decoder");
    return NULL;
}

void vet_constrain_free(vet_constrain *c) {
    if (!c) return;
    if (c->text)
        for (int v = 0; v < c->V; v++) free(c->text[v]);
    free(c->text);
    free(c->len);
    free(c->is_eos);
    free(c->lead);
    free(c->nodes);
    free(c->prefix);
    free(c);
}

vet_constrain *vet_constrain_from_labels(const char *prefix, const vet_labels *table, char *const *pieces, int V,
                                         const int32_t *eos_ids, int n_eos, vet_err *err) {
    size_t n = vet_labels_count(table);
    const char **labels = malloc((n ? n : 1) * sizeof *labels);
    if (!labels) return vet_err_nomem(err, "out of memory"), NULL;
    for (size_t i = 0; i < n; i++) labels[i] = vet_labels_label(table, i);
    vet_constrain *c = vet_constrain_new(prefix, (char *const *)labels, n, pieces, V, eos_ids, n_eos, err);
    free(labels);
    return c;
}

// A byte-level BPE piece as the bytes it stands for, malloc'd; NULL in *out (and 0 returned)
// for none, or for bytes piece_bytes would read as something else: a NUL, a "▁", <0xNN>.
static int bpe_piece(const vet_tokenizer *t, int32_t id, char **out, vet_err *err) {
    size_t n;
    char *b = vet_tokenizer_decode_bytes(t, &id, 1, &n, err);
    *out = NULL;
    if (!b) return -1;
    if (n == 0 || memchr(b, 0, n) || strstr(b, "\xE2\x96\x81") || (n == 6 && strncmp(b, "<0x", 3) == 0 && b[5] == '>')) free(b);
    else *out = b;
    return 0;
}

char **vet_constrain_pieces(const vet_tokenizer *t, int V, vet_err *err) {
    char **p = calloc((size_t)V, sizeof *p);
    if (!p) {
        vet_err_nomem(err, "out of memory");
        return NULL;
    }
    int sv = vet_tokenizer_vocab_size(t), bpe = vet_tokenizer_kind(t) == VET_TOK_BPE;
    for (int v = 0; v < V && v < sv; v++) {
        if (vet_tokenizer_is_special(t, v)) continue;
        const char *piece = vet_tokenizer_id_to_piece(t, v);
        int rc = bpe ? bpe_piece(t, v, &p[v], err) : 0;
        if (rc == 0 && !bpe && piece && !(p[v] = strdup(piece))) rc = vet_err_nomem(err, "out of memory");
        if (rc) {
            vet_constrain_free_pieces(p, V);
            return NULL;
        }
    }
    return p;
}

void vet_constrain_free_pieces(char **pieces, int V) {
    if (!pieces) return;
    for (int v = 0; v < V; v++) free(pieces[v]);
    free(pieces);
}

// ---------------------------------------------------------------------------------------
// The NFA

static void set_add(vet_cstate *s, int st) {
    for (int i = 0; i < s->n; i++)
        if (s->st[i] == st) return;
    if (s->n < VET_CSTATE_MAX) s->st[s->n++] = st;
}

// lead: ch is the first byte of a piece that starts with "▁". Only such a space can be the
// dummy prefix: SentencePiece drops it when decoding, while a byte piece <0x20> would stay.
static void step(const vet_constrain *c, int st, unsigned char ch, int lead, vet_cstate *out) {
    if (st == ST_LEAD) {
        if (ch == ' ' && lead) set_add(out, st_pfx(c, 0));
    } else if (st <= c->P) {  // PFX(st - 1)
        if ((unsigned char)c->prefix[st - 1] == ch) set_add(out, st_pfx(c, st));
    } else if (st == st_sep(c)) {
        if (ch == ' ') set_add(out, st_node(c, 0));
    } else {
        int node = st - 1 - c->P;
        int k = find_child(c, node, ch);
        if (k >= 0) set_add(out, st_node(c, k));
        if (c->nodes[node].terminal && ch == ',') set_add(out, st_sep(c));
    }
}

// The fewest bytes that finish a sentence from state st.
static int min_chars(const vet_constrain *c, int st) {
    int root = c->nodes[0].dist;
    if (st == ST_LEAD) return 1 + c->P + root;
    if (st <= c->P) return c->P - (st - 1) + root;
    if (st == st_sep(c)) return 1 + root;
    return c->nodes[st - 1 - c->P].dist;
}

static int set_min_chars(const vet_constrain *c, const vet_cstate *s) {
    int m = INT_MAX / 4;
    for (int i = 0; i < s->n; i++) {
        int d = min_chars(c, s->st[i]);
        if (d < m) m = d;
    }
    return m;
}

// s after the bytes t[0..n); out->n == 0 when they leave the language.
static void walk(const vet_constrain *c, const vet_cstate *s, const unsigned char *t, int n,
                 int lead, vet_cstate *out) {
    vet_cstate cur = *s;
    for (int i = 0; i < n && cur.n; i++) {
        vet_cstate next = {0};
        for (int j = 0; j < cur.n; j++) step(c, cur.st[j], t[i], lead && i == 0, &next);
        cur = next;
    }
    *out = cur;
}

void vet_constrain_start(const vet_constrain *c, vet_cstate *s) {
    s->n = 0;
    set_add(s, ST_LEAD);
    set_add(s, st_pfx(c, 0));
}

int vet_constrain_accepting(const vet_constrain *c, const vet_cstate *s) {
    for (int i = 0; i < s->n; i++) {
        int st = s->st[i];
        if (st > c->P && st != st_sep(c) && c->nodes[st - 1 - c->P].terminal) return 1;
    }
    return 0;
}

int vet_constrain_advance(const vet_constrain *c, vet_cstate *s, int token) {
    if (token < 0 || token >= c->V) return -1;
    if (c->is_eos[token]) return vet_constrain_accepting(c, s) ? 0 : -1;
    if (!c->text[token] || c->len[token] == 0) return -1;
    vet_cstate out;
    walk(c, s, c->text[token], c->len[token], c->lead[token], &out);
    if (!out.n) return -1;
    *s = out;
    return 0;
}

// One masking pass; budget < 0 ignores the length budget. Returns how many ids it allowed.
static int mask_pass(const vet_constrain *c, const vet_cstate *s, int budget, const float *in,
                     unsigned char *allow) {
    unsigned char first[256] = {0};  // bytes some state can take next: most ids fail here
    for (int i = 0; i < s->n; i++)
        for (int b = 0; b < 256; b++) {
            if (first[b]) continue;
            vet_cstate tmp = {0};
            step(c, s->st[i], (unsigned char)b, 1, &tmp);
            first[b] = tmp.n > 0;
        }
    int accepting = vet_constrain_accepting(c, s), n = 0;
    for (int v = 0; v < c->V; v++) {
        int ok = 0;
        if (in && in[v] == -INFINITY) ok = 0;
        else if (c->is_eos[v]) ok = accepting;
        else if (c->text[v] && c->len[v] > 0 && first[c->text[v][0]]) {
            vet_cstate out;
            walk(c, s, c->text[v], c->len[v], c->lead[v], &out);
            // after this token: budget-1 tokens left, enough for the rest and the EOS
            ok = out.n > 0 && (budget < 0 || set_min_chars(c, &out) + 1 <= budget - 1);
        }
        allow[v] = (unsigned char)ok;
        n += ok;
    }
    return n;
}

void vet_constrain_mask(const vet_constrain *c, const vet_cstate *s, int remaining, float *logits) {
    unsigned char *allow = malloc((size_t)c->V);
    if (!allow) {  // cannot happen in practice; masking nothing beats crashing
        return;
    }
    int n = mask_pass(c, s, remaining, logits, allow);
    if (n == 0) n = mask_pass(c, s, -1, logits, allow);  // too short to finish: stay valid
    if (n == 0) {                                        // dead end: end the response
        for (int v = 0; v < c->V; v++) allow[v] = c->is_eos[v];
    }
    for (int v = 0; v < c->V; v++)
        if (!allow[v]) logits[v] = -INFINITY;
    free(allow);
}

int vet_constrain_allowed(const vet_constrain *c, const vet_cstate *s, int remaining, int32_t *ids,
                          unsigned char *allow) {
    int n = mask_pass(c, s, remaining, NULL, allow);
    if (n == 0) n = mask_pass(c, s, -1, NULL, allow);  // as vet_constrain_mask
    int k = 0;
    for (int v = 0; v < c->V; v++)
        if (n == 0 ? c->is_eos[v] : allow[v]) ids[k++] = v;
    return k;
}

static int set_has(const vet_cstate *s, int st) {
    for (int i = 0; i < s->n; i++)
        if (s->st[i] == st) return 1;
    return 0;
}

// A label the text closed ends where a ',' took a complete label to SEP; a label it ended and
// then went on past (4021 on the way to 40214000) was not its answer.
size_t vet_constrain_complete_len(const vet_constrain *c, const char *text, size_t len) {
    vet_cstate s = {0};
    set_add(&s, st_pfx(c, 0));
    size_t closed = 0;
    for (size_t i = 0; i < len; i++) {
        vet_cstate next;
        walk(c, &s, (const unsigned char *)text + i, 1, 0, &next);
        if (!next.n) return closed;  // left the language: what it closed before
        s = next;
        if (text[i] == ',' && set_has(&s, st_sep(c))) closed = i;
    }
    return vet_constrain_accepting(c, &s) ? len : closed;
}

int vet_constrain_matches(const vet_constrain *c, const char *text, size_t len) {
    vet_cstate s = {0};
    set_add(&s, st_pfx(c, 0));
    vet_cstate out;
    walk(c, &s, (const unsigned char *)text, (int)len, 0, &out);
    return out.n > 0 && vet_constrain_accepting(c, &out);
}
