#!/usr/bin/env bash
# test_tokenize.sh — vet-tokenize end to end: formats, templates, bad rows, exit codes,
# --skip-bad counts, --stats, and the DLO data (1,602 rows; CSV and JSON give the same ids).
set -u
: "${VET_BIN:?}" "${VET_TOP:?}"
fx=$VET_TOP/tests/fixtures/tokenize
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vet-tokenize-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tok=$VET_BIN/vet-tokenize
dump=$VET_BIN/vet-dump
py=/usr/bin/python3

ok() { echo "ok $1"; }
notok() { echo "not ok $1"; shift; [ $# -gt 0 ] && echo "  $*" >&2; return 0; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name" "failed: $*"; fi; }
# expect_fail NAME STATUS MESSAGE CMD...: the command must exit STATUS and say MESSAGE on stderr.
expect_fail() {
    local name=$1 want=$2 msg=$3; shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" -ne "$want" ]; then notok "$name" "exit $rc, wanted $want; stderr: $(cat "$tmp/err")"; return; fi
    if ! grep -qF -- "$msg" "$tmp/err"; then notok "$name" "stderr lacks '$msg': $(cat "$tmp/err")"; return; fi
    ok "$name"
}
records() { "$dump" -r "$1" | jq -c "${2:-.}"; }

if ! "$VET_TOP/tests/fixtures/tokenize/make_model.sh" "$tmp/model" 2>"$tmp/train.err"; then
    echo "skip tokenize: cannot train a test tokenizer (spm_train from Debian's sentencepiece): $(cat "$tmp/train.err")"
    exit 0
fi
model=$tmp/model/tokenizer.model

# --- the basics ---------------------------------------------------------------------------
check version bash -c "'$tok' --version | grep -qx 'vet-tokenize [0-9.]*'"
"$tok" --help >"$tmp/help"
check help_lists_options bash -c "grep -q -- '--skip-bad' '$tmp/help' && grep -q 'Exit status' '$tmp/help'"
missing=""
for flag in $(grep -o -- '--[a-z][a-z-]*' "$tmp/help" | sort -u); do
    grep -qF -- "\\-\\-${flag#--}" "$VET_TOP/man/vet-tokenize.1" || missing="$missing $flag"
done
check man_page_has_every_flag test -z "$missing"
expect_fail usage_no_tokenizer 2 "--tokenizer PATH is required" "$tok" "$fx/notes.csv"
expect_fail usage_bad_format 2 "--format: 'xml'" "$tok" --spm "$model" --format xml "$fx/notes.csv"
expect_fail usage_unknown_option 2 "try 'vet-tokenize --help'" "$tok" --frobnicate
expect_fail usage_two_inputs 2 "one INPUT at most" "$tok" --spm "$model" a.csv b.csv
expect_fail usage_max_len 2 "--max-len" "$tok" --spm "$model" --max-len 0 "$fx/notes.csv"

# --- the tokenizer model --------------------------------------------------------------------
expect_fail model_missing 3 "no such tokenizer" "$tok" --spm "$tmp/nope.model" "$fx/notes.csv"
head -c 3000 /dev/urandom >"$tmp/corrupt.model"
expect_fail model_corrupt 1 "not a SentencePiece model" "$tok" --spm "$tmp/corrupt.model" "$fx/notes.csv"
mkdir -p "$tmp/emptydir"
expect_fail model_dir_without_model 3 "neither tokenizer.json nor tokenizer.model" "$tok" --tokenizer "$tmp/emptydir" "$fx/notes.csv"
"$tok" --spm "$tmp/model" -o "$tmp/dir.tok" "$fx/notes.csv" && "$tok" --spm "$model" -o "$tmp/file.tok" "$fx/notes.csv"
check model_dir_accepted cmp -s <(records "$tmp/dir.tok") <(records "$tmp/file.tok")
# --tokenizer is --spm's new name: the same stream, byte for byte.
"$tok" --tokenizer "$model" -o "$tmp/flag.tok" "$fx/notes.csv"
check tokenizer_flag_same_as_spm cmp -s "$tmp/flag.tok" "$tmp/file.tok"
sha=$(sha256sum "$model" | cut -d' ' -f1)
check header_tokenizer bash -c "'$dump' -H '$tmp/file.tok' | jq -e '.kind == \"tokens\" and .tokenizer.sha256 == \"$sha\" and .tokenizer.kind == \"spm\" and .tokenizer.bos_id == 1 and .tokenizer.eos_id == 2 and .tokenizer.vocab_size > 0 and .template.name == \"alpaca\" and .template.response_prefix == \"Diagnosed conditions: \" and (.template.sha256 | length) == 64 and .source == \"$fx/notes.csv\"' >/dev/null"

# --- formats ----------------------------------------------------------------------------------
check csv_count test "$("$dump" -c "$tmp/file.tok")" = 5
check csv_fields bash -c "'$dump' -r '$tmp/file.tok' | jq -s -e '.[0].id == \"t-01\" and .[0].species == \"Cow\" and .[0].codes == [\"1679004\"] and .[2].codes == [\"Foot Rot\"] and .[3].codes == [\"40214000\",\"1679004\"] and (.[2].note | contains(\"\n\")) and .[1].note == \"Goat. Owner says \\\"not eating\\\" since Monday.\" and all(.[]; .prompt[0] == 1 and .response[-1] == 2)' >/dev/null"
for f in json jsonl; do
    "$tok" --spm "$model" -o "$tmp/$f.tok" "$fx/notes.$f"
    check "${f}_equals_csv" cmp -s <(records "$tmp/file.tok") <(records "$tmp/$f.tok")
    "$tok" --spm "$model" <"$fx/notes.$f" >"$tmp/$f.stdin.tok"
    check "${f}_sniffed_on_stdin" cmp -s <(records "$tmp/file.tok") <(records "$tmp/$f.stdin.tok")
done
# CRLF line ends and a byte order mark change nothing.
{ printf '\xef\xbb\xbf'; sed 's/$/\r/' "$fx/notes.csv"; } >"$tmp/crlf.csv"
"$tok" --spm "$model" -o "$tmp/crlf.tok" "$tmp/crlf.csv"
# (the embedded newline of t-03 becomes CRLF inside quotes, which is data: compare the rest)
check csv_crlf_bom cmp -s <(records "$tmp/file.tok" 'select(.id != "t-03")') <(records "$tmp/crlf.tok" 'select(.id != "t-03")')
"$tok" --spm "$model" --format csv <"$fx/notes.csv" >"$tmp/stdin.tok"
check csv_on_stdin cmp -s <(records "$tmp/file.tok") <(records "$tmp/stdin.tok")
check stdin_source_is_dash bash -c "'$dump' -H '$tmp/stdin.tok' | jq -e '.source == \"-\"' >/dev/null"
# Column flags: renamed columns, and a file with the note column only.
sed '1s/.*/key,animal,text,labels,dx,clinic/' "$fx/notes.csv" >"$tmp/renamed.csv"
"$tok" --spm "$model" --id-col key --species-col animal --note-col text --codes-col labels --disease-col dx -o "$tmp/renamed.tok" "$tmp/renamed.csv"
check csv_column_flags cmp -s <(records "$tmp/file.tok") <(records "$tmp/renamed.tok")
printf 'note\nCow. Fever.\n' >"$tmp/only.csv"
"$tok" --spm "$model" -o "$tmp/only.tok" "$tmp/only.csv"
check csv_note_only bash -c "'$dump' -r '$tmp/only.tok' | jq -e '.id == \"1\" and .species == \"\" and .codes == []' >/dev/null"

# --- templates ----------------------------------------------------------------------------------
"$tok" --print-template >"$tmp/alpaca.template"
"$tok" --spm "$model" --template "$tmp/alpaca.template" -o "$tmp/tpl.tok" "$fx/notes.csv"
check template_file_roundtrip cmp -s <(records "$tmp/file.tok") <(records "$tmp/tpl.tok")
"$tok" --spm "$model" --template "$fx/custom.template" -o "$tmp/custom.tok" "$fx/notes.csv"
check template_custom bash -c "'$dump' -H '$tmp/custom.tok' | jq -e '.template.name == \"custom.template\" and .template.response_prefix == \"\"' >/dev/null"
# Alpaca records whose instructions tell them apart (under a template that shows the instruction
# alone, notes.json's records, which share one, would all have one prompt: refused below).
jq '[.[] | .instruction = ("Name the disease of case " + .id + ".")]' "$fx/notes.json" >"$tmp/distinct.json"
"$tok" --spm "$model" --input-format '' --instruction 'Name the disease.' -o "$tmp/noinput.tok" "$tmp/distinct.json"
expect_fail template_noinput_one_prompt 1 "all 5 notes have the same prompt: template alpaca-noinput shows none of a note's text" \
    "$tok" --spm "$model" --template alpaca-noinput -o "$tmp/oneprompt.tok" "$fx/notes.json"
check template_noinput_one_prompt_nothing_written test ! -e "$tmp/oneprompt.tok"
check template_noinput bash -c "'$dump' -H '$tmp/noinput.tok' | jq -e '.template.name == \"alpaca-noinput\" and .template.instruction == \"Name the disease.\"' >/dev/null"
expect_fail template_leaks_answer 1 "would show the model its answer" "$tok" --spm "$model" --input-format 'Note: {note} ({codes})' "$fx/notes.csv"
expect_fail template_missing 3 "cannot open template" "$tok" --spm "$model" --template "$tmp/none.template" "$fx/notes.csv"
# --print-template prints the template the run uses: --instruction and --input-format written in
# (they were left out, so the printed file given back rendered the default instruction and input).
flags=(--instruction 'Name the {code} }} of it.' --input-format '{species} {{x}}: {note}')
"$tok" --print-template "${flags[@]}" >"$tmp/flags.template"
"$tok" --spm "$model" "${flags[@]}" -o "$tmp/flags.tok" "$fx/notes.csv"
"$tok" --spm "$model" --template "$tmp/flags.template" -o "$tmp/flags-rt.tok" "$fx/notes.csv"
check template_print_with_flags_roundtrip bash -c "cmp -s <('$dump' -r '$tmp/flags.tok') <('$dump' -r '$tmp/flags-rt.tok') &&
    ! cmp -s <('$dump' -r '$tmp/flags.tok') <('$dump' -r '$tmp/file.tok')"
# Every built-in template printed and given back as a file (named as the built-in, so that the
# header's name is the same) tokenizes the same records into the same stream, byte for byte:
# alpaca-noinput's file, which can hold no input format, read back with the default one and
# stripped "Clinical Note: " from the Alpaca notes the built-in kept it on. --input-format ''
# (alpaca-noinput by another name) too.
builtins=$("$tok" --help | sed -n 's/^ *--template T *\(.*\), or a template FILE.*/\1/p' | tr -d ',' | sed 's/ *(default)//')
mkdir -p "$tmp/builtin"
builtin_roundtrip_ok() {
    local t
    [ "$(wc -w <<<"$builtins")" -ge 2 ] || return 1
    for t in $builtins; do
        "$tok" --print-template --template "$t" >"$tmp/builtin/$t" &&
            "$tok" --spm "$model" --template "$t" -o "$tmp/builtin/$t.tok" "$tmp/distinct.json" &&
            "$tok" --spm "$model" --template "$tmp/builtin/$t" -o "$tmp/builtin/$t-rt.tok" "$tmp/distinct.json" &&
            cmp -s "$tmp/builtin/$t.tok" "$tmp/builtin/$t-rt.tok" || { echo "  $t" >&2; return 1; }
    done
    "$tok" --print-template --input-format '' >"$tmp/builtin/alpaca-noinput" &&
        "$tok" --spm "$model" --input-format '' -o "$tmp/builtin/empty.tok" "$tmp/distinct.json" &&
        cmp -s "$tmp/builtin/empty.tok" "$tmp/builtin/alpaca-noinput-rt.tok" &&
        [ "$(records "$tmp/builtin/empty.tok" '.note' | head -1)" = "$(records "$tmp/json.tok" '.note' | head -1)" ]
}
check template_builtins_print_roundtrip builtin_roundtrip_ok
# A template file with CRLF line ends (written on Windows) renders as its LF copy ("\r\n" went
# into every prompt), and --print-template of it prints the LF copy.
"$tok" --print-template --template "$fx/custom.template" >"$tmp/lf.template"
sed 's/$/\r/' "$tmp/lf.template" >"$tmp/crlf.template"
"$tok" --spm "$model" --template "$tmp/lf.template" -o "$tmp/lf.tok" "$fx/notes.csv"
"$tok" --spm "$model" --template "$tmp/crlf.template" -o "$tmp/crlf-tpl.tok" "$fx/notes.csv"
# The same with a UTF-8 byte order mark before it (Notepad's "UTF-8"): it began every prompt.
printf '\357\273\277' | cat - "$tmp/crlf.template" >"$tmp/bom.template"
"$tok" --spm "$model" --template "$tmp/bom.template" -o "$tmp/bom-tpl.tok" "$fx/notes.csv"
check template_bom_dropped cmp -s <(records "$tmp/lf.tok") <(records "$tmp/bom-tpl.tok")
check template_crlf_as_lf bash -c "grep -q \$'\r' '$tmp/crlf.template' && cmp -s <('$dump' -r '$tmp/lf.tok') <('$dump' -r '$tmp/crlf-tpl.tok') &&
    cmp -s '$tmp/lf.template' <('$tok' --print-template --template '$tmp/crlf.template')"

# --- bad rows: message, exit 1, no output left behind ----------------------------------------------
bad() {  # bad NAME MESSAGE CONTENT
    printf '%b' "$3" >"$tmp/$1.csv"
    expect_fail "bad_row_$1" 1 "$tmp/$1.csv:$2" "$tok" --spm "$model" -o "$tmp/$1.tok" "$tmp/$1.csv"
    [ -e "$tmp/$1.tok" ] && notok "bad_row_$1_no_output" "$tmp/$1.tok exists"
}
bad too_many_fields "3: 3 fields, the header has 2 (too many" 'id,note\n1,ok\n2,a,b\n'
bad too_few_fields "2: 1 fields, the header has 2 (too few" 'id,note\n1\n'
bad unbalanced_quote_eof "3: unbalanced quote: a quoted field is still open at end of input" 'id,note\n1,ok\n2,"open\n3,x\n'
bad text_after_quote "2: unbalanced quote: 'x' after the closing quote" 'id,note\n1,"a"x\n'
bad invalid_utf8 "2: invalid UTF-8" 'id,note\n1,caf\xe9\n'
bad empty_note "3: empty note" 'id,note\n1,ok\n2,  \n'
bad missing_note_column "1: no column 'note' in the header" 'id,text\n1,ok\n'
bad empty_input "1: empty input" ''
printf '{"input": "Clinical Note: ok"}\n{"input": \n' >"$tmp/bad.jsonl"
expect_fail bad_row_jsonl 1 "$tmp/bad.jsonl:2: not valid JSON" "$tok" --spm "$model" -o "$tmp/bad.tok" "$tmp/bad.jsonl"
expect_fail input_missing 3 "cannot open" "$tok" --spm "$model" "$tmp/nope.csv"

# --- --skip-bad: rejected rows go to a file, the rest on; counts add up ---------------------------
printf 'id,note\n1,good one\n2,a,b\n3,\n4,"multi\nline"\n5,caf\xe9\n6,"x"y\n7,last good\n' >"$tmp/mixed.csv"
"$tok" --spm "$model" --skip-bad "$tmp/rejects.tsv" -o "$tmp/mixed.tok" "$tmp/mixed.csv" 2>"$tmp/err"
rc=$?
check skip_bad_exit_0 test "$rc" -eq 0
check skip_bad_summary grep -qF "7 read, 3 written, 4 rejected" "$tmp/err"
check skip_bad_written test "$("$dump" -c "$tmp/mixed.tok")" = 3
check skip_bad_rejects_file bash -c "[ \$(wc -l <'$tmp/rejects.tsv') -eq 4 ] && cut -f1 '$tmp/rejects.tsv' | paste -sd, | grep -qx '3,4,7,8' && grep -qF 'a,b' '$tmp/rejects.tsv'"
# RAW is the row's bytes without its line end, nothing more: the rows checked twice (UTF-8, then
# the rejects file) ended in a NUL byte, the line end's place.
check skip_bad_raw_exact bash -c "cut -f3 '$tmp/rejects.tsv' | cmp -s - <(printf '2,a,b\\n3,\\n5,caf\\xe9\\n6,\"x\"y\\n')"
check skip_bad_ids bash -c "'$dump' -r '$tmp/mixed.tok' | jq -r .id | paste -sd, | grep -qx '1,4,7'"
# --skip-bad -: the rejected rows on stderr, and the counts point above them (they said "(see -)")
"$tok" --spm "$model" --skip-bad - -o "$tmp/mixed2.tok" "$tmp/mixed.csv" 2>"$tmp/err2"
check skip_bad_stderr_counts grep -qF "4 rejected (see above)" "$tmp/err2"
"$tok" --spm "$model" -o "$tmp/clean.tok" "$fx/notes.csv" 2>"$tmp/err"
check quiet_when_piped test ! -s "$tmp/err"

# --- --stats ------------------------------------------------------------------------------------
"$tok" --spm "$model" --stats --max-len 40 -o /dev/null "$fx/notes.csv" 2>"$tmp/stats"
rc=$?
check stats_to_dev_null bash -c "[ $rc -eq 0 ] && [ -c /dev/null ] && grep -q '^  prompt ' '$tmp/stats' && grep -q 'over --max-len 40: 5 (100.0%)' '$tmp/stats'"
# The figures agree with the ids in the stream.
want=$("$dump" -r "$tmp/file.tok" | jq -s '[.[] | (.prompt|length) + (.response|length)] | max')
"$tok" --spm "$model" --stats -o "$tmp/s.tok" "$fx/notes.csv" 2>"$tmp/stats"
check stats_max_total bash -c "grep '^  total ' '$tmp/stats' | awk '{print \$NF}' | grep -qx '$want'"

# --- --species-swap: a copy after each note of a paired species -----------------------------------
printf '%s\n' 'id,species,note,codes' '1,Cow,"Cow. Fever; the cow is down, cows nearby.",1679004' '2,Goat,Goat. Cough.,2260006' \
    '3,Horse,Horse. Colic.,1' '4,buffalo,BUFFALO. Fever.,198462004' >"$tmp/sw.csv"
"$tok" --spm "$model" --species-swap Cow=Buffalo,Sheep=Goat -o "$tmp/sw.tok" "$tmp/sw.csv"
check swap_records bash -c "'$dump' -r '$tmp/sw.tok' | jq -s -e '[.[].id] == [\"1\",\"1~Buffalo\",\"2\",\"2~Sheep\",\"3\",\"4\",\"4~Cow\"]
    and [.[] | .copy_of // \"-\"] == [\"-\",\"1\",\"-\",\"2\",\"-\",\"-\",\"4\"]
    and .[1].species == \"Buffalo\" and .[1].note == \"Buffalo. Fever; the buffalo is down, cows nearby.\"
    and .[3].note == \"Sheep. Cough.\" and .[6].note == \"COW. Fever.\" and .[6].species == \"Cow\"
    and .[1].codes == .[0].codes and .[1].response == .[0].response' >/dev/null"
# A copy is tokenized exactly as the swapped note would be as an original.
printf '%s\n' 'id,species,note,codes' '1~Buffalo,Buffalo,"Buffalo. Fever; the buffalo is down, cows nearby.",1679004' \
    '2~Sheep,Sheep,Sheep. Cough.,2260006' '4~Cow,Cow,COW. Fever.,198462004' >"$tmp/sw_want.csv"
"$tok" --spm "$model" -o "$tmp/sw_want.tok" "$tmp/sw_want.csv"
check swap_copy_tokens_as_original cmp -s <(records "$tmp/sw.tok" 'select(.copy_of) | [.id,.species,.note,.prompt,.response]') \
    <(records "$tmp/sw_want.tok" '[.id,.species,.note,.prompt,.response]')
# Alpaca JSON: the input is swapped too (the prompt is rendered from it).
printf '%s' '[{"instruction": "Name it.", "input": "Clinical Note: Goat. Cough in the goat.", "output": "Diagnosed conditions: 2260006", "animal": "Goat", "snomed_codes": ["2260006"]}]' >"$tmp/sw.json"
printf '%s' '[{"instruction": "Name it.", "input": "Clinical Note: Sheep. Cough in the sheep.", "output": "Diagnosed conditions: 2260006", "animal": "Sheep", "snomed_codes": ["2260006"]}]' >"$tmp/sw_want.json"
"$tok" --spm "$model" --species-swap Goat=Sheep -o "$tmp/swj.tok" "$tmp/sw.json" && "$tok" --spm "$model" -o "$tmp/swj_want.tok" "$tmp/sw_want.json"
check swap_alpaca_input cmp -s <(records "$tmp/swj.tok" 'select(.copy_of) | [.species,.note,.prompt]') \
    <(records "$tmp/swj_want.tok" '[.species,.note,.prompt]')
# Counts: read = notes written + rejected, the copies on top; --text renders the copies too.
printf '\n5,Cow,,1\n' >>"$tmp/sw.csv"
"$tok" --spm "$model" --species-swap Cow=Buffalo --skip-bad "$tmp/sw.rej" -o "$tmp/sw2.tok" "$tmp/sw.csv" 2>"$tmp/err"
check swap_counts grep -qF "5 read, 6 written (4 notes + 2 species-swapped copies), 1 rejected" "$tmp/err"
"$tok" --text --species-swap Cow=Buffalo --skip-bad "$tmp/sw.rej" -o "$tmp/sw.txt" "$tmp/sw.csv" 2>/dev/null
check swap_text_mode test "$(grep -c '^### Response:$' "$tmp/sw.txt")" = 6
expect_fail swap_bad_table 2 "--species-swap 'Cow': expected A=B" "$tok" --spm "$model" --species-swap Cow "$tmp/sw.csv"
expect_fail swap_two_partners 2 "appears twice" "$tok" --spm "$model" --species-swap Cow=Buffalo,Yak=cow "$tmp/sw.csv"
# A copy's id is an id like any other: a note "1~Buffalo" beside note 1's Buffalo copy (either
# order) was a second record "1~Buffalo", exit 0, and vet-pack paired copies with either.
printf 'id,species,note,codes\n1,Cow,a cow,1\n1~Buffalo,Buffalo,a real buffalo,2\n' >"$tmp/swid.csv"
expect_fail swap_copy_id_taken_by_note 1 "swid.csv:3: id '1~Buffalo' appears twice (first at line 2, the species-swapped copy" \
    "$tok" --spm "$model" --species-swap Cow=Buffalo -o "$tmp/swid.tok" "$tmp/swid.csv"
printf 'id,species,note,codes\n1~Buffalo,Buffalo,a real buffalo,2\n1,Cow,a cow,1\n' >"$tmp/swid2.csv"
expect_fail swap_copy_id_of_a_note 1 "swid2.csv:3: its Buffalo copy: id '1~Buffalo' appears twice (first at line 2)" \
    "$tok" --spm "$model" --species-swap Cow=Buffalo -o "$tmp/swid.tok" "$tmp/swid2.csv"

# Two CSV files joined with cat: the second header (with or without its byte order mark) is a bad
# row, not a note "note" with id "id" and label "codes" (exit 0 before).
printf 'id,note,codes\n1,fever,123\n\xef\xbb\xbfid,note,codes\n2,cough,456\nid,note,codes\n' >"$tmp/joined.csv"
expect_fail joined_csv_header_again 1 "joined.csv:3: the header row again, not a note" "$tok" --spm "$model" -o "$tmp/j.tok" "$tmp/joined.csv"
"$tok" --spm "$model" --skip-bad "$tmp/joined.rej" -o "$tmp/j.tok" "$tmp/joined.csv" 2>/dev/null
joined_skip_bad() {
    [ "$(cut -f1 "$tmp/joined.rej" | paste -sd,)" = 3,5 ] && [ "$(records "$tmp/j.tok" .id | paste -sd,)" = '"1","2"' ]
}
check joined_csv_skip_bad joined_skip_bad

# Labels are trimmed alike in every format: a JSON code " 123 " and a disease " Foot Rot " (the
# label of a note without codes) were kept with their blanks, labels that never equal the "123"
# or "Foot Rot" a prediction names; a blank disease was a label of blanks, not none.
printf '{"input":"Clinical Note: a","output":"x","snomed_codes":[" 123 ","\\n","\\t456\\r\\n"]}\n{"input":"Clinical Note: b","output":"y","disease":" Foot Rot \\n"}\n{"input":"Clinical Note: c","output":"z","disease":"   "}\n' >"$tmp/blanks.jsonl"
printf 'id,note,codes,disease\n1,a, 123 ; 456 ,\n2,b,," Foot Rot "\n3,c,,"   "\n' >"$tmp/blanks.csv"
labels_trimmed() {
    local want='["123","456"]["Foot Rot"][]' f
    for f in blanks.jsonl blanks.csv; do
        "$tok" --spm "$model" -o "$tmp/$f.tok" "$tmp/$f" || return 1
        [ "$(records "$tmp/$f.tok" '.codes' | tr -d '\n')" = "$want" ] || return 1
    done
    "$tok" --text "$tmp/blanks.csv" | grep -qx 'Diagnosed conditions: Foot Rot'
}
check labels_trimmed_in_every_format labels_trimmed

# A code given twice is one label (the codes are a set): "123; 456;123" answered
# "123, 456, 123", teaching the model to repeat a code.
printf '{"input":"Clinical Note: a","output":"x","snomed_codes":["9"," 9 ","8","9"]}\n' >"$tmp/dups.jsonl"
printf 'id,note,codes\n1,a,123; 456;123\n' >"$tmp/dups.csv"
codes_once() {
    "$tok" --spm "$model" -o "$tmp/dups-j.tok" "$tmp/dups.jsonl" && "$tok" --spm "$model" -o "$tmp/dups-c.tok" "$tmp/dups.csv" &&
        [ "$(records "$tmp/dups-j.tok" '.codes' | tr -d '\n')" = '["9","8"]' ] &&
        [ "$(records "$tmp/dups-c.tok" '.codes' | tr -d '\n')" = '["123","456"]' ] &&
        "$tok" --text "$tmp/dups.csv" | grep -qx 'Diagnosed conditions: 123, 456'
}
check codes_given_twice_once codes_once
# A note with no codes, disease or output is a note to code: its record says "unlabeled" (vet-pack
# refuses it), and among notes with answers (a blank codes cell in training data) a warning says
# how many; an input of new notes only, as the code stage tokenizes, gets no word.
printf 'id,species,note,codes\n1,Cow,a cow,123\n2,Cow,a lame cow,\n' >"$tmp/unl.csv"
printf 'id,species,note,codes\n1,Cow,a cow,\n2,Cow,a lame cow,\n' >"$tmp/new.csv"
unlabeled_marked() {
    "$tok" --spm "$model" -o "$tmp/unl.tok" "$tmp/unl.csv" 2>"$tmp/unl.err" || return 1
    [ "$(records "$tmp/unl.tok" '.unlabeled' | tr -d '\n')" = 'nulltrue' ] || return 1
    grep -q '1 of 2 records have no codes, disease or output' "$tmp/unl.err" || return 1
    "$tok" --spm "$model" -o "$tmp/new.tok" "$tmp/new.csv" 2>"$tmp/new.err" || return 1
    [ "$(records "$tmp/new.tok" '.unlabeled' | tr -d '\n')" = 'truetrue' ] && [ ! -s "$tmp/new.err" ]
}
check notes_without_answer_marked unlabeled_marked
# --template - reads the template from stdin (it was a file named "-", exit 3), and the same
# records come out; the notes on stdin too is a usage error.
template_stdin() {
    "$tok" --print-template | "$tok" --spm "$model" --template - -o "$tmp/tstdin.tok" "$tmp/unl.csv" 2>/dev/null || return 1
    "$tok" --spm "$model" -o "$tmp/tfile.tok" "$tmp/unl.csv" 2>/dev/null || return 1
    [ "$("$dump" -r "$tmp/tstdin.tok")" = "$("$dump" -r "$tmp/tfile.tok")" ] || return 1
    "$tok" --spm "$model" --template - <"$tmp/unl.csv" >/dev/null 2>"$tmp/tstdin.err"
    [ $? -eq 2 ] && grep -q 'both on stdin' "$tmp/tstdin.err"
}
check template_from_stdin template_stdin
# A notes path that is not UTF-8 (Latin-1 "caf\xe9.csv"): the header's source holds it with
# U+FFFD, so a reader that wants UTF-8 strings (Python's msgpack) can read the header.
source_path_utf8() {
    local latin=$tmp/$(printf 'caf\351').csv
    cp "$tmp/unl.csv" "$latin" && "$tok" --spm "$model" -q -o "$tmp/latin.tok" "$latin" 2>/dev/null || return 1
    zstd -dcq "$tmp/latin.tok" | LC_ALL=C grep -aq "$(printf 'caf\357\277\275.csv')" &&
        ! zstd -dcq "$tmp/latin.tok" | LC_ALL=C grep -aq "$(printf 'caf\351.csv')"
}
check source_path_not_utf8_repaired source_path_utf8
# The species is trimmed alike: "Cow " got no --species-swap copy (and was a species of its own in
# vet-eval's report).
printf 'id,species,note,codes\n1,"Cow ",a cow,1\n' >"$tmp/sp.csv"
printf '{"input":"Clinical Note: a cow","output":"1","animal":" Cow\\t"}\n' >"$tmp/sp.jsonl"
species_trimmed() {
    local f
    for f in sp.csv sp.jsonl; do
        "$tok" --spm "$model" --species-swap Cow=Buffalo -o "$tmp/$f.tok" "$tmp/$f" || return 1
        [ "$(records "$tmp/$f.tok" '.species' | tr -d '\n')" = '"Cow""Buffalo"' ] || return 1
    done
}
check species_trimmed_in_every_format species_trimmed

# --- the DLO data -------------------------------------------------------------------------------------
if [ -z "${VET_SHARED:-}" ] || [ ! -f "$VET_SHARED/data/dlo/dlo_notes.csv" ]; then
    echo "skip dlo: VET_SHARED not set"
    exit 0
fi
dlo=$VET_SHARED/data/dlo
check dlo_count_1602 test "$("$tok" --spm "$model" <"$dlo/dlo_notes.csv" | "$dump" --count)" = 1602
"$tok" --spm "$model" -o "$tmp/dlo_csv.tok" "$dlo/dlo_notes.csv"
"$tok" --spm "$model" -o "$tmp/dlo_json.tok" "$dlo/dlo_alpaca.json"
check dlo_csv_json_same_ids cmp -s <(records "$tmp/dlo_csv.tok" '[.prompt,.response,.codes,.species,.note]') \
                                  <(records "$tmp/dlo_json.tok" '[.prompt,.response,.codes,.species,.note]')
# Parity with Debian's python3-sentencepiece: prompt = [BOS] + encode(alpaca prompt), response =
# encode(output) + [EOS], the prompt written here from the published JSON, independently of vet.
if ! "$py" -c 'import sentencepiece' 2>/dev/null; then
    echo "skip dlo_python_parity: $py lacks sentencepiece (apt-get install python3-sentencepiece)"
    exit 0
fi
"$dump" -r "$tmp/dlo_csv.tok" >"$tmp/dlo.jsonl"
check dlo_python_parity "$py" - "$model" "$dlo/dlo_alpaca.json" "$tmp/dlo.jsonl" <<'PY'
import json, sys
import sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
alpaca = json.load(open(sys.argv[2]))
vet = [json.loads(l) for l in open(sys.argv[3])]
TEMPLATE = ("Below is an instruction that describes a task, paired with an input that provides "
            "further context. Write a response that appropriately completes the request.\n\n"
            "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
bad = 0
for a, v in zip(alpaca, vet):
    prompt = [sp.bos_id()] + sp.encode(TEMPLATE.format(**a))
    response = sp.encode(a["output"]) + [sp.eos_id()]
    if prompt != v["prompt"] or response != v["response"]:
        bad += 1
sys.exit(0 if len(vet) == len(alpaca) == 1602 and bad == 0 else 1)
PY

# --text: the rendered prompt + response of every note (tokenizer training text), no --spm.
text_ok() {
    "$tok" --text "$fx/notes.csv" -o "$tmp/notes.txt" || return 1
    local n
    n=$(grep -c '^### Response:$' "$tmp/notes.txt")
    [ "$n" -gt 0 ] && [ "$n" -eq "$(grep -c '^Diagnosed conditions: ' "$tmp/notes.txt")" ] &&
        [ "$n" -eq "$("$tok" --spm "$tmp/model/tokenizer.model" "$fx/notes.csv" | "$VET_BIN/vet-dump" --count)" ]
}
check text_mode_renders_every_note text_ok

# --skip-bad on a JSON array: a record that is no object is named with its RAW text (a string or
# a number re-serialized too), and an empty code is dropped as the CSV reader drops one.
printf '[{"input":"Clinical Note: a","output":"x"},\n"a string record",\n42,\n{"input":"Clinical Note: b","output":"y","snomed_codes":["1679004",""]}]\n' >"$tmp/mixed.json"
"$tok" --spm "$model" --skip-bad "$tmp/mixed.rej" -o "$tmp/mixed.tok" "$tmp/mixed.json" 2>/dev/null
mixed_ok() {
    [ "$(cut -f3 "$tmp/mixed.rej")" = "$(printf '"a string record"\n42')" ] &&
        [ "$(records "$tmp/mixed.tok" '.codes' | tr -d '\n')" = '[]["1679004"]' ]
}
check json_rejects_keep_raw mixed_ok

# An Alpaca record whose "output" is given but blank is a bad record (it trained an empty answer):
# named by its place, set aside with --skip-bad and counted, read = written + rejected.
printf '[{"input":"Clinical Note: a","output":"x"},\n{"input":"Clinical Note: b","output":""},\n{"input":"Clinical Note: c","output":"  "},\n{"input":"Clinical Note: d"}]\n' >"$tmp/blank-out.json"
"$tok" --spm "$model" --skip-bad "$tmp/blank-out.rej" -o "$tmp/blank-out.tok" "$tmp/blank-out.json" 2>"$tmp/err"
blank_output_ok() {
    grep -qF "4 read, 2 written, 2 rejected" "$tmp/err" && [ "$(cut -f1 "$tmp/blank-out.rej" | paste -sd,)" = 2,3 ] &&
        grep -qF 'empty answer ("output" is blank)' "$tmp/blank-out.rej" &&
        [ "$(records "$tmp/blank-out.tok" '.note' | paste -sd,)" = '"a","d"' ]
}
check alpaca_blank_output_rejected blank_output_ok
# The same for a record's own "instruction" given but blank: it rendered an empty instruction
# section (exit 0); absent or null, --instruction renders it.
printf '[{"instruction":"x","input":"Clinical Note: a"},\n{"instruction":"","input":"Clinical Note: b"},\n{"instruction":" \\t","input":"Clinical Note: c"},\n{"instruction":null,"input":"Clinical Note: d"},\n{"input":"Clinical Note: e"}]\n' >"$tmp/blank-ins.json"
"$tok" --spm "$model" --skip-bad "$tmp/blank-ins.rej" --instruction 'Name it.' -o "$tmp/blank-ins.tok" "$tmp/blank-ins.json" 2>"$tmp/err"
"$tok" --text --skip-bad "$tmp/blank-ins-text.rej" --instruction 'Name it.' -o "$tmp/blank-ins.txt" "$tmp/blank-ins.json" 2>/dev/null
blank_instruction_ok() {
    grep -qF "5 read, 3 written, 2 rejected" "$tmp/err" && [ "$(cut -f1 "$tmp/blank-ins.rej" | paste -sd,)" = 2,3 ] &&
        [ "$(grep -cF 'empty instruction ("instruction" is blank)' "$tmp/blank-ins.rej")" = 2 ] &&
        [ "$(records "$tmp/blank-ins.tok" '.note' | paste -sd,)" = '"a","d","e"' ] &&
        [ "$(grep -A1 '^### Instruction:$' "$tmp/blank-ins.txt" | grep -v '^### Instruction:$\|^--$' | paste -sd,)" = 'x,Name it.,Name it.' ]
}
check alpaca_blank_instruction_rejected blank_instruction_ok

