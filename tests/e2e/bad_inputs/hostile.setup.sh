# hostile.setup.sh — inputs for hostile.table: what a determined tester fed the programs in
# session 28 (bytes that are not UTF-8 where a report needs text, JSON keys given twice), made in
# $X/hostile.
mkdir -p "$X/hostile" && H=$X/hostile
printf 'id,species,gold,pred\n1,Cow,a\376,a\376\n2,Cow,b,b\n' >"$H/preds-label-latin1.csv"
printf 'id,species,gold,pred\n1,C\377ow,a,a\n' >"$H/preds-species-latin1.csv"
printf 'id,sp\377,gold,pred\n1,Cow,a,a\n' >"$H/preds-header-latin1.csv"
printf 'id,gold,pred\n1,1679004,1679004\n' >"$H/preds.csv"
printf '1679004\t\377\376\n' >"$H/codes-latin1.tsv"
printf '{"id":"1","gold":["a"],"gold":["b"],"pred":["a"]}\n' >"$H/preds-dup-key.jsonl"
printf '{"instruction":"x","input":"Goat limping","input":"Cow fever","output":"1"}\n' >"$H/notes-dup-key.jsonl"
printf '[{"instruction":"x","input":"Goat","output":"1","output":"2"}]\n' >"$H/notes-dup-key.json"
# vet-synth tables with numbers past any sense: an age printed as an int, weights whose sum overflows.
synth_table() {  # MAX-AGE COW-WEIGHT
    printf 'species\tCow\t%s\tcalf\tcow\tbull\t%s\nspecies\tGoat\t1\tkid\tdoe\tbuck\t10\n' "$2" "$1"
    printf 'template\t{Subject}. Presented with {signs}{duration}.\nsign\tfever\tfever|pyrexia\n'
    printf 'disease\t1111111\tA\tDisease A\nprevalence\tCow\t1\nprevalence\tGoat\t1\nshows\tfever\t0.5\n'
}
synth_table 1e300 1 >"$H/synth-age.tsv"
synth_table 14 1e308 >"$H/synth-weight.tsv"
# A template whose prompt never shows the note (every CSV row would get the same prompt).
printf 'Classify this note.\n---\nDiagnosed conditions: {codes}\n' >"$H/no-note.template"
# A NUL byte inside a header name ("note\0xyz" used to be found as "note").
printf 'id,note\000xyz,codes\n1,Cow with fever,1679004\n' >"$H/header-nul.csv"
printf 'id,gold\000junk,pred\n1,a,a\n' >"$H/preds-header-nul.csv"
# Two notes with one id (vet-eval refused them only at the end of the pipeline).
printf 'id,species,note,codes\n1,Cow,fever and cough,1679004\n1,Goat,lame,3974005\n' >"$H/dup-id.csv"
# Copies of the model and the code table for the outputs that would overwrite them (a check that
# failed would destroy only these).
cp -r "$X/base" "$H/model-copy" && cp "$VET_TOP/data/codes.tsv" "$H/codes-copy.tsv"
