#!/bin/sh
# plot-f1.sh METRICS.json OUT.png — per-label F1 bars (with each label's support), from vet-eval.
set -eu
json=$1 png=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$json" >"$tmp/f1.dat" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
rows = sorted(m["per_label"].items(), key=lambda kv: -kv[1]["support"])
for label, v in rows:
    name = (v.get("term") or label)[:28]
    print('"%s\\n(n=%d)" %.4f' % (name, v["support"], v["f1"]))
PY
[ -s "$tmp/f1.dat" ] || { echo "plot-f1.sh: $json: no labels" >&2; exit 1; }
acc=$(/usr/bin/python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print("accuracy %.3f, macro-F1 %.3f, n %d" % (m["accuracy"], m["macro_f1"], m["n"]))' "$json")
gnuplot <<GP
set terminal pngcairo size 1100,550 font ",10" noenhanced
set output "$png"
set title "vet-eval: F1 per label ($acc)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set yrange [0:1.05]
set ylabel "F1"
set xtics rotate by -40 left
set grid ytics
set bmargin 9
plot "$tmp/f1.dat" using 2:xtic(1) notitle linecolor rgb "#3b7dd8"
GP
