#!/bin/sh
# mk/demo_summary.sh OUT [BIN CODES] — the last lines of `make demo`: the new notes the model coded
# (when the code stage ran: each note, its codes' terms from CODES and the top-1 p), the test
# accuracy with its 95% interval, the wall time since OUT/.started (written when the demo began),
# the rate the model trained at (from the refit's log) and the CPU that ran it, so a time can
# always be placed.
set -eu
out=$1 bin=${2:-bin} codes=${3:-data/codes.tsv}
if [ -f "$out/coded.csv" ] && [ -f "$out/new-predictions.msgpack.zst" ]; then
    printf '\ndemo: new notes, coded (the table: %s)\n' "$out/coded.csv"
    { "$bin/vet-dump" -r "$out/new.tok.msgpack.zst"; "$bin/vet-dump" -r "$out/new-predictions.msgpack.zst"; } |
        jq -rs --rawfile c "$codes" '
          ($c | split("\n") | map(split("\t") | select(length == 2) | {(.[0]): .[1]}) | add) as $term
          | (map(select(has("note")) | {(.id): .note}) | add) as $note
          | .[] | select(has("pred"))
          | "  \(.id)  \($note[.id])\n      -> \(.pred | map($term[.] // .) | join("; "))\(
              if .ranked then "  (p \(.ranked[0].p * 100 | round) %)" else "" end)"' || true
    echo
fi
acc=$(jq -r '"\(.accuracy) \(.ci.accuracy[0] // "nan") \(.ci.accuracy[1] // "nan") \(.n) \(.baseline.accuracy)"' \
      "$out/metrics.json" 2>/dev/null || true)
[ -n "$acc" ] && printf 'demo: accuracy %.3f (95%% CI %.3f-%.3f) on %d test notes; majority baseline %.3f\n' $acc
# With a ranked run: the accuracy on the 80% of notes the model is surest of (vet-eval's
# selective rows), the rest going to a person.
sel=$(jq -r '.ranking.selective[]? | select(.coverage == 80) | "\(.accuracy) \(.threshold)"' "$out/metrics.json" \
      2>/dev/null || true)
[ -n "$sel" ] && printf 'demo: on the 80%% of notes it is surest of, accuracy %.3f (the rest, top-1 p < %.2f, to a person)\n' $sel
# Tokens trained on: each step's rate times its time (elapsed_s is cumulative); the rate is
# their sum over the training's wall time.
rate=$(jq -s 'reduce .[] as $s ({t: 0, prev: 0}; {t: (.t + $s.tokens_per_s * ($s.elapsed_s - .prev)), prev: $s.elapsed_s})
              | if .prev > 0 then .t / .prev | round else 0 end' "$out/refit/train.log.jsonl" 2>/dev/null || echo 0)
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { case " $flags " in *" $1 "*) echo yes ;; *) echo no ;; esac; }
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//')
secs=0
[ -f "$out/.started" ] && secs=$(( $(date +%s) - $(cat "$out/.started") ))
printf 'demo: %d min %02d s; the model trained at %s tokens/s\n' $((secs / 60)) $((secs % 60)) "$rate"
printf 'demo: on %s, %s cores (AVX2 %s, AVX-512 %s, FMA %s)\n' "${cpu:-this CPU}" "$(nproc)" \
    "$(has avx2)" "$(has avx512f)" "$(has fma)"
