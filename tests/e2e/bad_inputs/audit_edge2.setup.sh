# audit_edge2.setup.sh — inputs for audit_edge2.table (the edges reliability.md's session left),
# made in $X/audit_edge2.
mkdir -p "$X/audit_edge2" && E2=$X/audit_edge2
# A code table with a label of 63 ", "-joined parts beside its first part: constrained decoding
# follows a note's places in a set of 64, and dropped the 17th on (a 16-place set) silently.
{ printf 'a\n'; printf 'a'; for i in $(seq 62); do printf ', a'; done; printf '\n'; } >"$E2/many-parts.tsv"
# Alpaca records whose own "instruction" is given and is nothing ("" and blanks), in a JSON array
# and in JSONL: an empty instruction section in every prompt, exit 0.
printf '[{"instruction":"x","input":"Clinical Note: Cow fever","output":"Diagnosed conditions: 1679004"},\n {"instruction":" \\t ","input":"Clinical Note: Goat lame","output":"Diagnosed conditions: 1679004"}]\n' >"$E2/instruction-blank.json"
printf '{"instruction":"x","input":"Clinical Note: Cow fever"}\n{"instruction":"","input":"Clinical Note: Goat lame"}\n' >"$E2/instruction-empty.jsonl"
# A copy of the notes (another file: not refused as the one split given twice) for --val-in and
# --test-in beside --train-in.
cp "$X/notes.tok" "$E2/val-copy.tok" && cp "$X/notes.tok" "$E2/test-copy.tok"
