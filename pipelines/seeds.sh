#!/bin/sh
# seeds.sh — the pipeline once per training seed, and the spread of the scores.
#
#   pipelines/seeds.sh [-s "42 1 2"] [-t val|eval] [-k train|split] OUT=DIR NOTES=notes.csv [vet.mk variables...]
#
# With 160 test notes one note is 0.6 points of accuracy, and a model trained with another
# seed (initialization, data order, dropout) can move the score by a few points: a single run
# says little about a setting. This runs `make -f pipelines/vet.mk` for each seed with
# OUT=DIR/seed-S up to the target (-t: `val` scores the validation split, for choosing
# settings; `eval` the test split), then prints each seed's accuracy and macro-F1, their mean
# and sample standard deviation, and writes the same to DIR/seeds.json. -k says what the seed
# varies: `train` (default) sets TRAIN_SEED=S, the same split every time (from scratch each run
# is then ENSEMBLE=3 refits with seeds S, S+100, S+200 decoding as one); `split` sets SEED=S,
# another grouped split each time (cross-validation by repeated random splits; needs the
# default PACK_ARGS, which use SEED). Every run's files stay in DIR/seed-S, so running it again
# only redoes what changed. Exit status: 0, 1 when a run fails, 2 on a usage error.
set -u
here=$(cd "$(dirname "$0")" && pwd)
seeds="42 1 2" target=val kind=train
while getopts s:t:k:h opt; do
    case $opt in
    s) seeds=$OPTARG ;;
    t) target=$OPTARG ;;
    k) kind=$OPTARG ;;
    h) sed -n '2,/^set -u$/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
case $target in val) metrics=val-metrics.json ;; eval) metrics=metrics.json ;;
    *) echo "seeds.sh: -t must be val or eval (got '$target')" >&2; exit 2 ;; esac
case $kind in train) var=TRAIN_SEED ;; split) var=SEED ;;
    *) echo "seeds.sh: -k must be train or split (got '$kind')" >&2; exit 2 ;; esac
out=
for a in "$@"; do case $a in OUT=*) out=${a#OUT=} ;; esac; done
[ -n "$out" ] || { echo "seeds.sh: give OUT=DIR (each seed's run goes to DIR/seed-S)" >&2; exit 2; }
[ -n "$seeds" ] || { echo "seeds.sh: -s needs at least one seed" >&2; exit 2; }
mkdir -p "$out" || exit 1

rows=
for s in $seeds; do
    case $s in *[!0-9]*|'') echo "seeds.sh: seed '$s' is not a number" >&2; exit 2 ;; esac
    # The caller's OUT comes first on the command line; the later OUT= wins in make.
    if ! make --no-print-directory -s -f "$here/vet.mk" "$@" OUT="$out/seed-$s" "$var=$s" \
            "$target" >"$out/seed-$s.log" 2>&1; then
        echo "seeds.sh: the run with seed $s failed; its output is in $out/seed-$s.log:" >&2
        tail -n 5 "$out/seed-$s.log" >&2
        exit 1
    fi
    rows="$rows $s:$out/seed-$s/$metrics"
done

/usr/bin/env python3 - "$out/seeds.json" "$target" "$kind" $rows <<'PY'
import json, math, sys
path, target, kind, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
res = []
for r in runs:
    seed, f = r.split(":", 1)
    m = json.load(open(f))
    res.append({"seed": int(seed), "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"]})
def stats(k):
    xs = [r[k] for r in res]
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return {"mean": mean, "sd": sd, "min": min(xs), "max": max(xs)}
split = "validation" if target == "val" else "test"
summary = {"split": split, "seed_varies": kind, "runs": res, "accuracy": stats("accuracy"), "macro_f1": stats("macro_f1")}
json.dump(summary, open(path, "w"), indent=1)
print("%-8s %10s %10s %6s" % ("seed", "accuracy", "macro-F1", "n"))
for r in res:
    print("%-8d %10.4f %10.4f %6d" % (r["seed"], r["accuracy"], r["macro_f1"], r["n"]))
for k, name in (("accuracy", "accuracy"), ("macro_f1", "macro-F1")):
    s = summary[k]
    print("%s on the %s split over %d %s seeds: mean %.4f, sd %.4f (min %.4f, max %.4f)"
          % (name, split, len(res), "training" if kind == "train" else "split", s["mean"], s["sd"], s["min"], s["max"]))
PY
