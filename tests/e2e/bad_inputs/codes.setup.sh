# codes.setup.sh — inputs for codes.table: codes files whose lines would lose or confuse what they
# say (a term with no code, a third field, a code and term separated by spaces, two spellings of
# one label), made in $X/codes.
mkdir -p "$X/codes" && C=$X/codes
printf 'code\tterm\n1679004\tPPR\n\tFoot rot\n' >"$C/term-no-code.tsv"
printf '1679004\tPPR\n \t Foot rot\n' >"$C/blank-then-term.tsv"
printf 'code\tterm\n1679004\tPPR\tsheep and goats\n' >"$C/third-field.tsv"
printf 'code\tterm\n72934000 Mastitis\n' >"$C/space-separated.tsv"
printf 'Foot Rot\tFoot rot\nfoot rot\n' >"$C/case-twins.tsv"
printf '1679004\tPPR\n1679004\tFMD\n' >"$C/two-terms.tsv"
