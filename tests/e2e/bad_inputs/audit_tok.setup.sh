# audit_tok.setup.sh — inputs for audit_tok.table (the audit of the records vet-tokenize and
# vet-pack write), made in $X/audit_tok.
mkdir -p "$X/audit_tok" && ln -f "$X/notes.tok" "$X/audit_tok/notes-link.tok"
