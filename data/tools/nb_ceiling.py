#!/usr/bin/env python3
"""nb_ceiling.py — how well a bag-of-words naive Bayes classifier predicts a notes CSV's codes.

A reference point for the demo data: if a model trained on the notes does no better than this,
it has learnt little beyond word counts. Plain Python (no numpy), runs in a second.

usage: nb_ceiling.py NOTES.csv [--test-share 0.2] [--seed 1]

The split is grouped by note text (identical notes never straddle train and test, as in the
DLO README), drawn by a hash of the note so it does not depend on row order. Prints the
majority-class baseline and the naive Bayes exact-match accuracy on the test notes, and class
shares and duplication figures for docs/data.md.
"""
import collections
import csv
import hashlib
import math
import re
import sys


def tokens(text):
    return re.findall(r"[a-z]+|\d+", text.lower())


def in_test(note, share, seed):
    h = hashlib.sha256(f"{seed}:{note}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < share


def main(argv):
    args = argv[1:]
    share, seed, path = 0.2, 1, None
    while args:
        a = args.pop(0)
        if a == "--test-share":
            share = float(args.pop(0))
        elif a == "--seed":
            seed = int(args.pop(0))
        else:
            path = a
    if not path:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(path, newline="")))
    train = [r for r in rows if not in_test(r["note"], share, seed)]
    test = [r for r in rows if in_test(r["note"], share, seed)]

    # Multinomial naive Bayes with add-one smoothing.
    prior = collections.Counter(r["codes"] for r in train)
    words = collections.defaultdict(collections.Counter)
    vocab = set()
    for r in train:
        for w in tokens(r["note"]):
            words[r["codes"]][w] += 1
            vocab.add(w)
    totals = {c: sum(words[c].values()) for c in prior}
    V = len(vocab)

    def predict(note):
        best, best_lp = None, -math.inf
        for c, n in prior.items():
            lp = math.log(n / len(train))
            for w in tokens(note):
                if w in vocab:
                    lp += math.log((words[c][w] + 1) / (totals[c] + V))
            if lp > best_lp:
                best, best_lp = c, lp
        return best

    majority = prior.most_common(1)[0][0]
    acc_nb = sum(predict(r["note"]) == r["codes"] for r in test) / max(1, len(test))
    acc_maj = sum(majority == r["codes"] for r in test) / max(1, len(test))

    print(f"rows {len(rows)}  distinct notes {len(set(r['note'] for r in rows))}  "
          f"distinct (note, code) {len(set((r['note'], r['codes']) for r in rows))}")
    labels = collections.defaultdict(set)
    for r in rows:
        labels[r["note"]].add(r["codes"])
    print(f"notes with more than one code: {sum(len(v) > 1 for v in labels.values())}")
    print(f"train {len(train)}  test {len(test)} (grouped by note)")
    print(f"majority class ({majority}) accuracy {acc_maj:.3f}")
    print(f"naive Bayes accuracy {acc_nb:.3f}")
    by_species = collections.defaultdict(collections.Counter)
    for r in rows:
        by_species[r["species"]][r["disease"]] += 1
    for sp, cnt in sorted(by_species.items()):
        n = sum(cnt.values())
        top = ", ".join(f"{d} {100 * k / n:.0f}%" for d, k in cnt.most_common(4))
        print(f"  {sp:8s} {n:5d}  {top}")
    overall = collections.Counter(r["codes"] for r in rows)
    c, k = overall.most_common(1)[0]
    print(f"largest class overall: {c} {100 * k / len(rows):.1f}%  classes: {len(overall)}")


if __name__ == "__main__":
    main(sys.argv)
