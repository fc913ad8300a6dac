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
    int *tokens;           // (states) fewest tokens that finish a sentence from a state, EOS
                           // included; NO_WAY when none does
};

#define NO_WAY (INT_MAX / 4)

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
    n->child = n->sibling = -1, n->ch = ch, n->terminal = 0;
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

static int token_distances(vet_constrain *c);

// The most places a state set can hold while the text is inside `label`: one per start of a
// label the text may be inside (the label's own, and one after each ", " in it, where a label
// of the table may have ended), the SEP after a ',', and one more before the prefix is through
// (LEAD's space beside PFX(0)). A later start lies inside the earliest one's label, after a
// ", " of it: the label's separators bound the starts.
static int places_in(const char *label) {
    int n = 3;
    for (const char *p = label; (p = strstr(p, ", ")); p += 2) n++;
    return n;
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
        if (places_in(labels[i]) > VET_CSTATE_MAX) {
            vet_errf(err, "label %zu of the code table (\"%.40s...\") has %d \", \" separators inside; constrained "
                     "decoding follows labels of at most %d (split it into labels of its own)", i + 1, labels[i],
                     places_in(labels[i]) - 3, VET_CSTATE_MAX - 3);
            vet_constrain_free(c);
            return NULL;
        }
        if (insert_label(c, labels[i])) goto oom;
    }
    for (int i = 0; i < n_eos; i++)
        if (eos_ids[i] >= 0 && eos_ids[i] < V) c->is_eos[eos_ids[i]] = 1;
    for (int v = 0; v < V; v++) {
        if (!pieces[v] || c->is_eos[v]) continue;
        if (!(c->text[v] = piece_bytes(pieces[v], &c->len[v]))) goto oom;
        c->lead[v] = strncmp(pieces[v], "\xE2\x96\x81", 3) == 0;
    }
    if (token_distances(c)) goto oom;
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
    free(c->tokens);
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

// The guard never drops a place: vet_constrain_new refused the tables that could need more
// (places_in); it only keeps a broken invariant from writing past the set.
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

// A label ends at state st: EOS may come.
static int state_accepts(const vet_constrain *c, int st) {
    return st > c->P && st != st_sep(c) && c->nodes[st - 1 - c->P].terminal;
}

// The fewest tokens that finish a sentence from the set s, EOS included: its nearest member's
// (a walk from a set is the union of its members' walks).
static int set_tokens(const vet_constrain *c, const vet_cstate *s) {
    int m = NO_WAY;
    for (int i = 0; i < s->n; i++)
        if (c->tokens[s->st[i]] < m) m = c->tokens[s->st[i]];
    return m;
}

// s after the bytes t[0..n); out->n == 0 when they leave the language. The mask walks most of a
// vocabulary per token: two sets swapped, and only their first n places ever touched.
static void walk(const vet_constrain *c, const vet_cstate *s, const unsigned char *t, int n,
                 int lead, vet_cstate *out) {
    vet_cstate buf[2];
    const vet_cstate *cur = s;
    for (int i = 0; i < n && cur->n; i++) {
        vet_cstate *next = &buf[i & 1];
        next->n = 0;
        for (int j = 0; j < cur->n; j++) step(c, cur->st[j], t[i], lead && i == 0, next);
        cur = next;
    }
    out->n = cur->n;
    memcpy(out->st, cur->st, (size_t)cur->n * sizeof *cur->st);
}

// ---------------------------------------------------------------------------------------
// The length budget in tokens
//
// tokens[st], the fewest tokens that finish a sentence from state st: 1 (the EOS) where a label
// ends, else 1 + the least tokens[st'] over the states st' that one piece's walk from {st}
// reaches. A shortest path with unit edges, found once: the edges st -> st', then one
// breadth-first sweep backwards from the label ends.
//
// Why not walk every piece from every state: that is ~49k pieces x thousands of states. The
// pieces are sorted as strings instead, so those that share a start are a run; from a state
// the walk takes only the bytes the language can take next, narrowing the run by binary
// search, and stops where either gives out: a few steps for most states.

typedef struct {
    const unsigned char *t;
    int len;
    int lead;  // c->lead: its first byte, a space, may be the dummy prefix
} sorted_piece;

// A piece's key at byte d: -1 past its end (so shorter pieces sort first), and 256 for the
// space that starts a "▁" piece (step tells it from a byte piece's space, and so must the runs).
static inline int key_at(const sorted_piece *p, int d) {
    if (d >= p->len) return -1;
    return d == 0 && p->lead ? 256 : p->t[d];
}

static int piece_cmp(const void *a_, const void *b_) {
    const sorted_piece *a = a_, *b = b_;
    for (int d = 0;; d++) {
        int x = key_at(a, d), y = key_at(b, d);
        if (x != y) return x < y ? -1 : 1;
        if (x < 0) return 0;
    }
}

// The first of p[lo, hi) whose key at d is >= k (the run shares its first d keys, so it is
// sorted on the key at d).
static int lower_key(const sorted_piece *p, int lo, int hi, int d, int k) {
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (key_at(&p[mid], d) < k) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

typedef struct {
    const vet_constrain *c;
    const sorted_piece *p;
    int from;     // the state the walks start at
    int *edge;    // (2 n_edge) from, to
    size_t n_edge, cap_edge;
} edge_walk;

// Edges from w->from to every state of s (one piece took {from} there).
static int add_edges(edge_walk *w, const vet_cstate *s) {
    if (w->n_edge + (size_t)s->n > w->cap_edge) {
        size_t cap = w->cap_edge ? 2 * w->cap_edge : 1024;
        int *e = realloc(w->edge, 2 * cap * sizeof *e);
        if (!e) return -1;
        w->edge = e, w->cap_edge = cap;
    }
    for (int i = 0; i < s->n; i++, w->n_edge++)
        w->edge[2 * w->n_edge] = w->from, w->edge[2 * w->n_edge + 1] = s->st[i];
    return 0;
}

// can[b] = 1 for each byte b some state of s can take next (what step accepts).
static void next_bytes(const vet_constrain *c, const vet_cstate *s, unsigned char *can) {
    for (int i = 0; i < s->n; i++) {
        int st = s->st[i];
        if (st == ST_LEAD || st == st_sep(c)) {
            can[' '] = 1;
        } else if (st <= c->P) {
            can[(unsigned char)c->prefix[st - 1]] = 1;
        } else {
            int node = st - 1 - c->P;
            for (int k = c->nodes[node].child; k >= 0; k = c->nodes[k].sibling) can[c->nodes[k].ch] = 1;
            if (c->nodes[node].terminal) can[','] = 1;
        }
    }
}

// The pieces p[lo, hi) all start with the d bytes that took {w->from} to s: follows each byte
// the language takes next into the run of pieces that go on with it, adding an edge wherever
// a piece ends.
static int walk_run(edge_walk *w, const vet_cstate *s, int lo, int hi, int d) {
    unsigned char can[256] = {0};
    next_bytes(w->c, s, can);
    for (int b = 0; b < 256; b++) {
        if (!can[b]) continue;
        for (int lead = 0; lead <= (d == 0 && b == ' '); lead++) {
            int k = lead ? 256 : b;
            int a = lower_key(w->p, lo, hi, d, k), e = lower_key(w->p, a, hi, d, k + 1);
            if (a == e) continue;
            vet_cstate next;
            next.n = 0;
            for (int i = 0; i < s->n; i++) step(w->c, s->st[i], (unsigned char)b, lead, &next);
            if (!next.n) continue;
            if (w->p[a].len == d + 1 && add_edges(w, &next)) return -1;  // a piece ends here
            if (walk_run(w, &next, a, e, d + 1)) return -1;  // those that go on (the ended key -1)
        }
    }
    return 0;
}

// Fills c->tokens. Returns -1 out of memory.
static int token_distances(vet_constrain *c) {
    int n_states = st_sep(c) + 1, rc = -1;
    edge_walk w = {.c = c};
    sorted_piece *p = malloc(((size_t)c->V + 1) * sizeof *p);
    int *first = NULL, *pred = NULL, *queue = NULL;
    c->tokens = malloc((size_t)n_states * sizeof *c->tokens);
    if (!p || !c->tokens) goto out;
    // Only a piece whose first byte some state takes can be walked: the rest are left out of
    // the sort (most of a large vocabulary, for a table of codes).
    unsigned char first_byte[256] = {0};
    for (int st = 0; st < n_states; st++) {
        vet_cstate s = {0};
        set_add(&s, st);
        next_bytes(c, &s, first_byte);
    }
    int n = 0;
    for (int v = 0; v < c->V; v++)
        if (c->text[v] && c->len[v] > 0 && first_byte[c->text[v][0]])
            p[n++] = (sorted_piece){c->text[v], c->len[v], c->lead[v]};
    qsort(p, (size_t)n, sizeof *p, piece_cmp);
    w.p = p;
    for (w.from = 0; w.from < n_states; w.from++) {
        vet_cstate s = {0};
        set_add(&s, w.from);
        if (walk_run(&w, &s, 0, n, 0)) goto out;
    }
    // The edges backwards, grouped by where they lead: pred[first[t] .. first[t + 1]).
    first = calloc((size_t)n_states + 1, sizeof *first);
    pred = malloc((w.n_edge ? w.n_edge : 1) * sizeof *pred);
    queue = malloc((size_t)n_states * sizeof *queue);
    if (!first || !pred || !queue) goto out;
    for (size_t i = 0; i < w.n_edge; i++) first[w.edge[2 * i + 1] + 1]++;
    for (int t = 0; t < n_states; t++) first[t + 1] += first[t];
    for (size_t i = 0; i < w.n_edge; i++) {
        int t = w.edge[2 * i + 1];
        pred[first[t]++] = w.edge[2 * i];
    }
    for (int t = n_states; t > 0; t--) first[t] = first[t - 1];  // the fill moved each start on
    first[0] = 0;
    int head = 0, tail = 0;
    for (int st = 0; st < n_states; st++) {
        c->tokens[st] = state_accepts(c, st) ? 1 : NO_WAY;
        if (c->tokens[st] == 1) queue[tail++] = st;
    }
    while (head < tail) {
        int t = queue[head++];
        for (int i = first[t]; i < first[t + 1]; i++)
            if (c->tokens[pred[i]] == NO_WAY) c->tokens[pred[i]] = c->tokens[t] + 1, queue[tail++] = pred[i];
    }
    rc = 0;
out:
    free(p), free(w.edge), free(first), free(pred), free(queue);
    return rc;
}

void vet_constrain_start(const vet_constrain *c, vet_cstate *s) {
    s->n = 0;
    set_add(s, ST_LEAD);
    set_add(s, st_pfx(c, 0));
}

int vet_constrain_accepting(const vet_constrain *c, const vet_cstate *s) {
    for (int i = 0; i < s->n; i++)
        if (state_accepts(c, s->st[i])) return 1;
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
    next_bytes(c, s, first);
    int accepting = vet_constrain_accepting(c, s), n = 0;
    for (int v = 0; v < c->V; v++) {
        int ok = 0;
        if (in && in[v] == -INFINITY) ok = 0;
        else if (c->is_eos[v]) ok = accepting;
        else if (c->text[v] && c->len[v] > 0 && first[c->text[v][0]]) {
            vet_cstate out;
            walk(c, s, c->text[v], c->len[v], c->lead[v], &out);
            // after this token: budget-1 tokens left, enough for the rest and the EOS
            ok = out.n > 0 && (budget < 0 || set_tokens(c, &out) <= budget - 1);
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
