#!/usr/bin/env python3
"""mk-gguf-tok.py — writes a tiny GGUF file that holds only a byte-level BPE tokenizer
(tokenizer.ggml.*, no tensors), or a hostile variant of it, with the standard library only
(struct), so the bad-input catalogue needs no venv.

    mk-gguf-tok.py OUT.gguf [VARIANT]

The good file (VARIANT "good" or none): pre "smollm"; ids 0-2 <|endoftext|> <|im_start|>
<|im_end|> (control), 3 <think> (user-defined), 4 "<bad ctl>" (control, but spelled with a space:
not matched whole), 5-260 the 256 bytes in byte order (GPT-2's alphabet), then one id per merge
of MERGES. bos 1, eos 2, unk 0, pad 2, add_bos_token false. tests/fixtures/tokenize/mk_tiny_gguf.py
writes the same tokenizer with gguf-py's GGUFWriter (tests/unit/test_bpe_gguf.c reads that one).
Variants: see VARIANTS below. Those named spm-* are a SentencePiece ("llama") vocabulary instead:
ids 0 <unk> (unknown), 1 <s>, 2 </s> (control), 3-258 the byte pieces <0x00>..<0xFF> (byte),
259 <sep> (user-defined), then "\u2581" and the letters, then SPM_MERGED (normal), with scores;
bos 1, eos 2, unk 0, add_bos_token true, add_space_prefix true.
"""
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)


def byte_alphabet():
    """GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the rest from U+0100."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, k = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(0x100 + k)
            k += 1
    return out


MERGES = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"),
          ("Ġwor", "l"), ("Ġworl", "d"), ("Ġ", "h"), ("Ġh", "e"), ("Ġhe", "ll"), ("Ġhell", "o"),
          ("Ġ", "Ġ"), ("Ċ", "Ċ"), ("c", "a"), ("ca", "t"), ("Ġ", "ca"), ("Ġca", "t")]


def tokenizer():
    """(tokens, token_type, merges as "a b") of the good file."""
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "<bad ctl>"]
    types = [3, 3, 3, 4, 3]
    alpha = byte_alphabet()
    tokens += [alpha[b] for b in range(256)]
    types += [1] * 256
    for a, b in MERGES:
        tokens.append(a + b)
        types.append(1)
    return tokens, types, ["%s %s" % m for m in MERGES]


def s(x):
    b = x.encode("utf-8") if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value, arr_type=None):
    out = s(key) + struct.pack("<I", vtype)
    if vtype == STRING:
        return out + s(value)
    if vtype == ARRAY:
        out += struct.pack("<IQ", arr_type, len(value))
        for v in value:
            out += s(v) if arr_type == STRING else struct.pack({U32: "<I", I32: "<i", U8: "<B", F32: "<f"}[arr_type], v)
        return out
    return out + struct.pack({U32: "<I", I32: "<i", BOOL: "<?", U8: "<B"}[vtype], value)


SPM_MERGED = ["\u2581a", "\u2581c", "at", "\u2581cat", "og", "\u2581d", "\u2581dog", "he", "ll", "hell", "hello",
              "\u2581hello", "\u2581\u2581"]


def spm_tokenizer():
    """(tokens, scores, token_type) of the good SentencePiece vocabulary."""
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + ["<sep>", "\u2581"]
    types = [2, 3, 3] + [6] * 256 + [4, 1]
    tokens += [chr(c) for c in range(ord("a"), ord("z") + 1)]
    types += [1] * 26
    tokens += SPM_MERGED
    types += [1] * len(SPM_MERGED)
    scores = [0.0] * 260 + [-float(i) for i in range(len(tokens) - 260)]
    for k, t in enumerate(SPM_MERGED):  # the merges: best (highest) score first
        scores[tokens.index(t)] = -1.0 - k * 0.1
    return tokens, scores, types


def build_spm(variant):
    tokens, scores, types = spm_tokenizer()
    meta = {
        "general.architecture": (STRING, "llama"),
        "tokenizer.ggml.model": (STRING, "llama"),
        "tokenizer.ggml.tokens": (ARRAY, tokens, STRING),
        "tokenizer.ggml.scores": (ARRAY, scores, F32),
        "tokenizer.ggml.token_type": (ARRAY, types, I32),
        "tokenizer.ggml.bos_token_id": (U32, 1),
        "tokenizer.ggml.eos_token_id": (U32, 2),
        "tokenizer.ggml.unknown_token_id": (U32, 0),
        "tokenizer.ggml.add_bos_token": (BOOL, True),
        "tokenizer.ggml.add_eos_token": (BOOL, False),
        "tokenizer.ggml.add_space_prefix": (BOOL, True),
    }
    SPM_VARIANTS[variant](meta)
    body = b"".join(kv(k, *v) for k, v in meta.items())
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(meta)) + body


def build(variant):
    if variant in SPM_VARIANTS:
        return build_spm(variant)
    tokens, types, merges = tokenizer()
    meta = {
        "general.architecture": (STRING, "llama"),
        "general.name": (STRING, "vet tiny tokenizer"),
        "tokenizer.ggml.model": (STRING, "gpt2"),
        "tokenizer.ggml.pre": (STRING, "smollm"),
        "tokenizer.ggml.tokens": (ARRAY, tokens, STRING),
        "tokenizer.ggml.token_type": (ARRAY, types, I32),
        "tokenizer.ggml.merges": (ARRAY, merges, STRING),
        "tokenizer.ggml.bos_token_id": (U32, 1),
        "tokenizer.ggml.eos_token_id": (U32, 2),
        "tokenizer.ggml.unknown_token_id": (U32, 0),
        "tokenizer.ggml.padding_token_id": (U32, 2),
        "tokenizer.ggml.add_bos_token": (BOOL, False),
    }
    VARIANTS[variant](meta)
    body = b"".join(kv(k, *v) for k, v in meta.items())
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(meta)) + body


def setm(key, *v):
    return lambda m: m.__setitem__(key, v)


def delm(*keys):
    return lambda m: [m.pop(k) for k in keys]


VARIANTS = {
    "good": lambda m: None,
    "tokens-not-strings": setm("tokenizer.ggml.tokens", ARRAY, list(range(300)), U32),
    "type-length": lambda m: m.__setitem__("tokenizer.ggml.token_type",
                                           (ARRAY, m["tokenizer.ggml.token_type"][1][:3], I32)),
    "merge-unknown": lambda m: m["tokenizer.ggml.merges"][1].append("zq qz"),
    "merge-no-space": lambda m: m["tokenizer.ggml.merges"][1].append("hello"),
    "pre-unknown": setm("tokenizer.ggml.pre", STRING, "mystery-pre"),
    "no-pre": delm("tokenizer.ggml.pre"),
    "bos-out-of-range": setm("tokenizer.ggml.bos_token_id", U32, 99999),
    "model-bert": setm("tokenizer.ggml.model", STRING, "bert"),
    "model-llama": setm("tokenizer.ggml.model", STRING, "llama"),
    "no-tokenizer": delm(*[k for k in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                                       "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                                       "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                       "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                                       "tokenizer.ggml.add_bos_token")]),
    "add-eos": setm("tokenizer.ggml.add_eos_token", BOOL, True),
    "duplicate-token": lambda m: m["tokenizer.ggml.tokens"][1].__setitem__(4, "<think>"),
    "bad-utf8-token": lambda m: m["tokenizer.ggml.tokens"][1].__setitem__(4, b"\xff\xfe"),
    "no-merges": delm("tokenizer.ggml.merges"),
    "pre-not-string": setm("tokenizer.ggml.pre", U32, 7),
}


def arr_set(key, i, v):
    return lambda m: m[key][1].__setitem__(i, v)


SPM_VARIANTS = {
    "spm-good": lambda m: None,
    "spm-no-scores": delm("tokenizer.ggml.scores"),
    "spm-scores-length": lambda m: m.__setitem__("tokenizer.ggml.scores", (ARRAY, m["tokenizer.ggml.scores"][1][:3], F32)),
    "spm-scores-not-float": lambda m: m.__setitem__("tokenizer.ggml.scores",
                                                    (ARRAY, [0] * len(m["tokenizer.ggml.scores"][1]), U32)),
    "spm-score-nan": arr_set("tokenizer.ggml.scores", 290, float("nan")),
    "spm-no-types": delm("tokenizer.ggml.token_type"),
    "spm-type-range": arr_set("tokenizer.ggml.token_type", 265, 9),
    "spm-no-unk": arr_set("tokenizer.ggml.token_type", 0, 3),
    "spm-two-unk": arr_set("tokenizer.ggml.token_type", 270, 2),
    "spm-unk-id-mismatch": setm("tokenizer.ggml.unknown_token_id", U32, 5),
    "spm-duplicate": arr_set("tokenizer.ggml.tokens", 295, "\u2581cat"),
    "spm-empty-piece": arr_set("tokenizer.ggml.tokens", 270, ""),
    "spm-bad-byte": arr_set("tokenizer.ggml.tokens", 10, "<0xZZ>"),
    "spm-bos-absent": delm("tokenizer.ggml.bos_token_id"),
    "spm-eos-out-of-range": setm("tokenizer.ggml.eos_token_id", U32, 70000),
    "spm-squeeze": setm("tokenizer.ggml.remove_extra_whitespaces", BOOL, True),
    "spm-tokens-not-strings": setm("tokenizer.ggml.tokens", ARRAY, list(range(300)), U32),
}


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] not in VARIANTS and
                                       sys.argv[2] not in SPM_VARIANTS):
        sys.exit("usage: mk-gguf-tok.py OUT.gguf [%s]" % " | ".join(list(VARIANTS) + list(SPM_VARIANTS)))
    data = build(sys.argv[2] if len(sys.argv) == 3 else "good")
    with open(sys.argv[1], "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
