#!/bin/sh
# mk/pretrained_summary.sh OUT NOTES — the last lines of `make demo-pretrained`: the test split's
# accuracy (95% interval) of the untuned model decoding freely and constrained to the codes, and
# after LoRA, generating and scoring every code; the training time (OUT/train_s, written by the demo) and rate (from the training
# log), and the CPU that ran it, so a time can always be placed.
set -eu
out=$1 notes=$2
acc() {
    printf '%.3f (95%% CI %.3f-%.3f)' $(jq -r '"\(.accuracy) \(.ci.accuracy[0]) \(.ci.accuracy[1])"' "$1")
}
printf '\ndemo-pretrained: SmolLM2-135M-Instruct (GGUF Q4_1) on %s, test split (%s notes)\n' \
    "$notes" "$(jq -r .n "$out/metrics.json")"
printf '  zero-shot, free decoding:          accuracy %s\n' "$(acc "$out/zero-shot.json")"
printf '  zero-shot, constrained to codes:   accuracy %s\n' "$(acc "$out/zero-shot-constrained.json")"
printf '  after LoRA:                        accuracy %s; majority baseline %s\n' \
    "$(acc "$out/metrics.json")" "$(printf %.3f "$(jq -r .baseline.accuracy "$out/metrics.json")")"
# Every code scored (vet-generate --rank 3): its accuracy, how often the right code is among the
# first three, and the accuracy on the 80% of notes the model is surest of.
if [ -s "$out/ranked.json" ]; then
    printf '  after LoRA, every code scored:     accuracy %s; right code in the first 3: %.3f; on the surest 80%%: %.3f\n' \
        "$(acc "$out/ranked.json")" "$(jq -r '.ranking.hit_at["3"]' "$out/ranked.json")" \
        "$(jq -r '.ranking.selective[] | select(.coverage == 80) | .accuracy' "$out/ranked.json")"
fi
# Tokens trained on: each step's rate times its time (elapsed_s is cumulative); the rate is their
# sum over the training's wall time (as mk/demo_summary.sh).
rate=$(jq -s 'reduce .[] as $s ({t: 0, prev: 0}; {t: (.t + $s.tokens_per_s * ($s.elapsed_s - .prev)), prev: $s.elapsed_s})
              | if .prev > 0 then .t / .prev | round else 0 end' "$out/model/train.log.jsonl")
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { case " $flags " in *" $1 "*) echo yes ;; *) echo no ;; esac; }
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//')
printf '  training: %s s on %s cores at %s tokens/s; %s (AVX2 %s, AVX-512 %s, FMA %s)\n' \
    "$(cat "$out/train_s" 2>/dev/null || echo '?')" "$(nproc)" "$rate" "${cpu:-this CPU}" \
    "$(has avx2)" "$(has avx512f)" "$(has fma)"
