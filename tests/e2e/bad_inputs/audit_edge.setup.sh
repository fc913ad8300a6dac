# audit_edge.setup.sh — inputs for audit_edge.table (the edges of vet-tokenize and vet-pack left by
# the record audit), made in $X/audit_edge.
mkdir -p "$X/audit_edge" && E=$X/audit_edge
# Alpaca records whose answer is given and is nothing: "" and blanks, in a JSON array and in JSONL.
printf '[{"instruction":"x","input":"Clinical Note: Cow fever","output":"Diagnosed conditions: 1679004"},\n {"instruction":"x","input":"Clinical Note: Goat lame","output":" \\t "}]\n' >"$E/output-blank.json"
printf '{"instruction":"x","input":"Clinical Note: Cow fever","output":"Diagnosed conditions: 1679004"}\n{"instruction":"x","input":"Clinical Note: Goat lame","output":""}\n' >"$E/output-empty.jsonl"
# A template in Latin-1 (its bytes went into every prompt, and nothing said so).
printf 'Caf\351 note: {note}\n---\n{codes}\n' >"$E/latin1.template"
# A CSV note with neither codes nor a disease among notes with codes: tokenized (a note to code is
# just that), marked "unlabeled", and refused by vet-pack (it trained the bare prefix, exit 0).
printf 'id,species,note,codes\n1,Cow,fever and cough,1679004\n2,Cow,lame on the left hind leg,\n3,Goat,nasal discharge,40214000\n' >"$E/no-answer.csv"
"$B/vet-tokenize" -q -s "$X/tok.model" "$E/no-answer.csv" -o "$E/no-answer.tok" 2>/dev/null || return 1
