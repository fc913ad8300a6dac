# generate.setup.sh — inputs for generate.table: a copy of the rows that a case names as both its
# input and its output (the copy, so a regression cannot destroy what other cases read).
cp "$X/rows.tok" "$X/gen-self.tok"
# Notes whose template answers "For SPECIES: CODES": --constrain and --rank, which force prefix +
# label + end, are refused on them (they would force what the model never learnt).
"$B/vet-tokenize" -q --spm "$X/tok.model" --response-format 'For {species}: {codes}' "$X/notes.csv" \
    -o "$X/species-answer.tok" || return 1
# A long response format that is not of that shape: judged whole (it was cut to 4,095 bytes
# first) and quoted up to 200 bytes.
long=$(printf '%0300d' 0)
"$B/vet-tokenize" -q --spm "$X/tok.model" --response-format "$long {codes}!" "$X/notes.csv" \
    -o "$X/long-answer.tok" || return 1
