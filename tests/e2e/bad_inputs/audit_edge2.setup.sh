# audit_edge2.setup.sh — inputs for audit_edge2.table (the edges reliability.md's session left),
# made in $X/audit_edge2.
mkdir -p "$X/audit_edge2" && E2=$X/audit_edge2
# A code table with a label of 63 ", "-joined parts beside its first part: constrained decoding
# follows a note's places in a set of 64, and dropped the 17th on (a 16-place set) silently.
{ printf 'a\n'; printf 'a'; for i in $(seq 62); do printf ', a'; done; printf '\n'; } >"$E2/many-parts.tsv"
