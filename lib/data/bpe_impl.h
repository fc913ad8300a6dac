// bpe_impl.h — the insides of vet_bpe, shared by its files: bpe_load.c (the model: vocab,
// merges, added tokens), bpe_pipeline.c (pre-tokenizer, post-processor, decoder),
// bpe_normalize.c (the normalizer: NFC), bpe_encode.c (text to ids and back). Not for use outside lib/data/bpe*.c.
#ifndef VET_BPE_IMPL_H
#define VET_BPE_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/strtab.h"
#include "data/bpe.h"

// The largest id accepted: far above any real vocabulary (Gemma's 256 K), low enough that a
// hostile file cannot ask for a huge table.
#define BPE_MAX_ID (1 << 24)
#define BPE_MAX_STEPS 16

// What Split does with the spans its pattern matches (tokenizers' SplitDelimiterBehavior).
typedef enum { BPE_ISOLATED, BPE_REMOVED, BPE_MERGED_PREV, BPE_MERGED_NEXT, BPE_CONTIGUOUS } bpe_behavior;

// One pre-tokenizer step. A ByteLevel step is a split by GPT-2's regex (when use_regex) after
// an optional prefix space; the byte-level spelling itself happens once, before the merges.
typedef struct {
    pcre2_code *re;          // NULL: no split (ByteLevel with use_regex false)
    bpe_behavior behavior;
    bool invert;
    bool prefix_space;       // ByteLevel's add_prefix_space
} bpe_step;

typedef struct {
    char *text;
    size_t len;
    int32_t id;
    bool normalized;         // matched after normalization (second pass) rather than on raw text
    bool special;            // decodes to nothing
} bpe_added;

// Merge table: open addressing on the pair of ids, key = (a + 1) << 32 | (b + 1), 0 = empty.
typedef struct {
    uint64_t key;
    int32_t rank;
    int32_t id;              // the id of the merged piece
} bpe_merge;

struct vet_bpe {
    char *path;
    char sha256[65];
    vet_strtab vocab;        // vocab.str[id] is the piece of id: pieces are interned in id order
    int32_t n;               // number of ids
    uint8_t *special;        // (n) 1 for special added tokens
    char **dec;              // (n) the bytes each id decodes to (malloc'd each; NULL: nothing)
    uint32_t *dec_len;       // (n)
    bpe_merge *merges;
    size_t merge_mask;       // table size - 1 (a power of two)
    int32_t byte_id[256];    // id of each byte's one-character piece, -1 when absent
    int32_t fallback_id[256];// byte_fallback's "<0xAB>" pieces, -1 when absent
    bpe_added *added;        // sorted longest first
    size_t nadded;
    uint8_t added_first[256];// 1 when some added token starts with that byte
    bpe_step steps[BPE_MAX_STEPS];
    int nsteps;
    bool ignore_merges, byte_fallback, fuse_unk, has_template;
    bool nfc;                // the normalizer is NFC (a Sequence of NFCs too); false: none
    int32_t unk_id, tmpl_bos, tmpl_eos;
    bool from_gguf;          // read from a GGUF's metadata: the ids below come from it
    vet_bpe_gguf_info gguf;
};

// bpe_load.c: model.vocab, model.merges and added_tokens into b.
int bpe_load_model(vet_bpe *b, json_t *root, vet_err *err);
// The builders both readers use, in this order: the vocabulary (pieces[id] for id in [0, n), each
// NUL-terminated and used once; interned in id order), room for and then the added tokens, room
// for and then the merges (merge i of pieces x and y: both, and x y joined, must be pieces; what
// names the list in errors), and last the tables (added tokens sorted longest first, what each
// id decodes to, byte ids, special flags).
int bpe_set_vocab(vet_bpe *b, const char *const *pieces, int32_t n, vet_err *err);
int bpe_added_reserve(vet_bpe *b, size_t n, vet_err *err);
int bpe_added_push(vet_bpe *b, const char *s, size_t len, int32_t id, bool normalized, bool special, vet_err *err);
int bpe_merges_reserve(vet_bpe *b, size_t nm, vet_err *err);
int bpe_merge_add(vet_bpe *b, const char *what, size_t i, const char *x, const char *y, vet_err *err);
int bpe_finish_model(vet_bpe *b, vet_err *err);
// bpe_load.c: what id decodes to, from the piece p[0..len): a byte-level spelling gives its
// bytes; a piece outside the alphabet (an added token such as "<|im_start|>" with a space in it)
// gives its own UTF-8, as Hugging Face's ByteLevel decoder does. -1 when out of memory.
int bpe_set_dec(vet_bpe *b, int32_t id, const char *p, size_t len);
// bpe_load.c: sorts the added tokens longest first and marks their first bytes (again after
// their contents change).
void bpe_index_added(vet_bpe *b);
// bpe_normalize.c: the tokenizer.json's "normalizer" (NULL or null: none) into b->nfc, refused by
// name unless vet honours it; the contents of "normalized" added tokens are normalized with it.
int bpe_read_normalizer(vet_bpe *b, json_t *nz, vet_err *err);
// bpe_normalize.c: s[0..n) (valid UTF-8) through b's normalizer. Returns 1 with *out (malloc'd,
// *out_len bytes, not NUL-terminated) when it ran, 0 with *out NULL when there is nothing to do
// (no normalizer, or text that is NFC already), -1 with err.
int bpe_normalize(const vet_bpe *b, const char *s, size_t n, char **out, size_t *out_len, vet_err *err);
// bpe_pipeline.c: normalizer, pre_tokenizer, post_processor and decoder (after the model: the
// template's tokens are looked up in the vocabulary).
int bpe_load_pipeline(vet_bpe *b, json_t *root, vet_err *err);
// bpe_pipeline.c: appends a pre-tokenizer step that splits by regex, keeping matches and the text
// between as pieces (Split "Isolated", which is how llama.cpp applies each of its regexes); the
// byte-level spelling needs no step of its own. BPE_GPT2_REGEX: GPT-2's regex.
int bpe_push_split(vet_bpe *b, const char *regex, vet_err *err);
extern const char BPE_GPT2_REGEX[];
// The merge of ids (a, b): its rank and result id, or NULL.
const bpe_merge *bpe_merge_find(const vet_bpe *b, int32_t a, int32_t c);
// A regex compiled in UTF + UCP mode, JIT-compiled when PCRE2 can. NULL with err.
pcre2_code *bpe_regex(const vet_bpe *b, const char *pattern, size_t len, bool literal, vet_err *err);

#endif
