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
