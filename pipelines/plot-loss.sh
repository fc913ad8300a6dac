#!/bin/sh
# plot-loss.sh LOG.jsonl OUT.png — training and validation loss per step, from vet-train's log.
set -eu
log=$1 png=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One "step loss" line per step, and "step val_loss" where validation ran (no JSON tool needed:
# vet-train writes flat objects with these keys).
sed -n 's/.*"step":\([0-9]*\).*"loss":\([-0-9.eE+]*\).*/\1 \2/p' "$log" >"$tmp/train.dat"
sed -n 's/.*"step":\([0-9]*\).*"val_loss":\([-0-9.eE+]*\).*/\1 \2/p' "$log" >"$tmp/val.dat"
[ -s "$tmp/train.dat" ] || { echo "plot-loss.sh: $log: no steps logged" >&2; exit 1; }
plot="'$tmp/train.dat' using 1:2 with lines lw 2 title 'training loss'"
[ -s "$tmp/val.dat" ] && plot="$plot, '$tmp/val.dat' using 1:2 with linespoints lw 2 pt 7 title 'validation loss'"
gnuplot <<GP
set terminal pngcairo size 900,500 font ",11" noenhanced
set output "$png"
set title "vet-train: loss per optimizer step"
set xlabel "step"
set ylabel "cross-entropy (nats per target token)"
set logscale y
set grid
plot $plot
GP
