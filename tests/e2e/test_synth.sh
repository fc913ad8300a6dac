#!/usr/bin/env bash
# test_synth.sh — vet-synth end to end (CSV a Python reader accepts, seeds, default table,
# errors) and the project's tokenizer (make tokenizer: deterministic, loads in Python,
# byte fallback for unseen characters).
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
synth="$VET_BIN/vet-synth"
table="$VET_TOP/data/diseases.tsv"
py=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-synth.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

ok() { echo "ok $1"; }
fail() { echo "not ok $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

# --help names every flag; --version prints the version.
help_ok() {
    local h man
    h=$("$synth" --help) || return 1
    man=$(sed 's/\\-/-/g' "$VET_TOP/man/vet-synth.1") || return 1
    for flag in --diseases --count --seed --noise --dup --species --alpaca-text --output \
                --verbose --help --version; do
        grep -q -- "$flag" <<<"$h" || { echo "--help lacks $flag" >&2; return 1; }
        grep -q -- "$flag" <<<"$man" || { echo "man page lacks $flag" >&2; return 1; }
    done
    [[ $("$synth" --version) =~ ^vet-synth\ [0-9] ]]
}
check synth_help help_ok

# Piped into head: the header, then rows.
head_ok() {
    local first
    first=$("$synth" -d "$table" | head -n 1)
    [ "$first" = "id,species,note,codes,disease,symptoms" ]
}
check synth_head head_ok

# Python's csv module reads every row back with the six DLO columns.
"$synth" -d "$table" -n 700 --seed 4 -o "$tmp/a.csv"
csv_ok() {
    "$py" - "$tmp/a.csv" "$table" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == ["id", "species", "note", "codes", "disease", "symptoms"], rows[0]
body = rows[1:]
assert len(body) == 700, len(body)
assert all(len(r) == 6 for r in body)
assert len({r[0] for r in body}) == 700, "ids repeat"
codes = {l.split("\t")[1] for l in open(sys.argv[2]) if l.startswith("disease\t")}
species = {l.split("\t")[1] for l in open(sys.argv[2]) if l.startswith("species\t")}
assert all(r[3] in codes and r[1] in species for r in body)
assert any("," in r[2] for r in body), "no note needed quoting: the test proves nothing"
EOF
}
check synth_csv_parses csv_ok

# Same seed, same bytes; another seed, another file; no temporary file left behind.
seed_ok() {
    "$synth" -d "$table" -n 700 --seed 4 -o "$tmp/b.csv" &&
    "$synth" -d "$table" -n 700 --seed 5 -o "$tmp/c.csv" &&
    cmp -s "$tmp/a.csv" "$tmp/b.csv" && ! cmp -s "$tmp/a.csv" "$tmp/c.csv" &&
    [ "$(ls "$tmp" | grep -c tmp)" = 0 ]
}
check synth_deterministic seed_ok

# Label noise and duplication show in the output about as often as asked.
rates_ok() {
    "$synth" -d "$table" -n 4000 --noise 0 --dup 0 -o "$tmp/clean.csv" &&
    "$synth" -d "$table" -n 4000 --noise 0.2 --dup 0.3 -o "$tmp/noisy.csv" &&
    "$py" - "$tmp/clean.csv" "$tmp/noisy.csv" <<'EOF'
import csv, sys
clean = list(csv.DictReader(open(sys.argv[1], newline="")))
noisy = list(csv.DictReader(open(sys.argv[2], newline="")))
distinct_clean = len({r["note"] for r in clean}) / len(clean)
distinct_noisy = len({r["note"] for r in noisy}) / len(noisy)
assert distinct_clean > 0.97, distinct_clean
assert 0.65 < distinct_noisy < 0.75, distinct_noisy       # ~0.7 of rows are new notes
labels = {}
for r in noisy:
    labels.setdefault(r["note"], set()).add(r["codes"])
assert sum(len(v) > 1 for v in labels.values()) > 20       # repeats with differing labels
EOF
}
check synth_noise_dup rates_ok

# --species keeps only those species.
species_ok() {
    "$synth" -d "$table" -n 300 --species Sheep,Goat | tail -n +2 | cut -d, -f2 | sort -u |
        tr '\n' ' ' | grep -qx 'Goat Sheep '
}
check synth_species species_ok

# The default table: $VET_DATA, else data/ beside bin/, else a clear error (exit 3).
default_ok() {
    mkdir -p "$tmp/inst/bin" "$tmp/inst/data" "$tmp/alt" &&
    cp "$synth" "$tmp/inst/bin/" && cp "$table" "$tmp/inst/data/" && cp "$table" "$tmp/alt/" &&
    env -u VET_DATA "$tmp/inst/bin/vet-synth" -n 50 -o "$tmp/d1.csv" &&
    "$synth" -d "$table" -n 50 -o "$tmp/d2.csv" && cmp -s "$tmp/d1.csv" "$tmp/d2.csv" &&
    rm "$tmp/inst/data/diseases.tsv" &&
    VET_DATA="$tmp/alt" "$tmp/inst/bin/vet-synth" -n 50 -o "$tmp/d3.csv" && cmp -s "$tmp/d1.csv" "$tmp/d3.csv" &&
    { env -u VET_DATA "$tmp/inst/bin/vet-synth" -n 5 >/dev/null 2>"$tmp/err"; [ $? = 3 ]; } &&
    grep -q "^vet-synth: no disease table found" "$tmp/err"
}
check synth_default_table default_ok

# A bad table names the file and line; bad flags exit 2; an unwritable output exits 3.
errors_ok() {
    sed 's/^shows\tcough\t0.75$/shows\tcough\t1.7/' "$table" >"$tmp/bad.tsv"
    local line
    line=$(grep -n -P '^shows\tcough\t1.7$' "$tmp/bad.tsv" | cut -d: -f1)
    [ -n "$line" ] || { echo "could not plant the error" >&2; return 1; }
    "$synth" -d "$tmp/bad.tsv" >/dev/null 2>"$tmp/err"; [ $? = 1 ] || return 1
    grep -qx "vet-synth: $tmp/bad.tsv:$line: probability 1.7 outside \[0,1\]" "$tmp/err" || { cat "$tmp/err" >&2; return 1; }
    "$synth" -d "$table" --noise 1.5 >/dev/null 2>&1; [ $? = 2 ] || return 1
    "$synth" -d "$table" --species Horse >/dev/null 2>&1; [ $? = 2 ] || return 1
    "$synth" -d "$tmp/missing.tsv" >/dev/null 2>&1; [ $? = 3 ] || return 1
    "$synth" -d "$table" -o "$tmp/no/such/dir/x.csv" 2>/dev/null; [ $? = 3 ]
}
check synth_errors errors_ok

# make tokenizer: builds, is the same file twice, loads in Python with LLaMA's special ids,
# and spells an unseen character with byte pieces.
if ! command -v spm_train >/dev/null; then
    echo "skip tokenizer: spm_train not installed (Debian package sentencepiece)"
elif ! "$py" -c 'import sentencepiece' 2>/dev/null; then
    echo "skip tokenizer: $py cannot import sentencepiece (Debian package python3-sentencepiece)"
else
    build_tok() {  # build_tok DIR
        make -s --no-print-directory -C "$VET_TOP" DATA_OUT="$1" VET_SYNTH="$synth" "$1/tokenizer.model" >/dev/null
    }
    tok_ok() {
        build_tok "$tmp/tok1" && build_tok "$tmp/tok2" &&
        cmp -s "$tmp/tok1/tokenizer.model" "$tmp/tok2/tokenizer.model" || { echo "two runs differ" >&2; return 1; }
        "$py" - "$tmp/tok1/tokenizer.model" <<'EOF'
import sys, sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
assert sp.vocab_size() == 1024, sp.vocab_size()
assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
note = "Goat, 3 years. Presented with fever and café-coloured urine."
pieces = sp.encode(note, out_type=str)
assert "<0xC3>" in pieces and "<0xA9>" in pieces, pieces     # é = C3 A9, byte fallback
assert sp.unk_id() not in sp.encode(note)
assert sp.decode(sp.encode(note)) == note
assert sp.encode("Diagnosed conditions: 1679004", out_type=str)[-7:] == list("1679004")  # digits split
assert "▁Diagnosed" in sp.encode("Diagnosed", out_type=str) or "▁Diagn" in sp.encode("Diagnosed", out_type=str)
EOF
    }
    check tokenizer tok_ok
fi
