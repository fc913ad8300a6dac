# test_eval_metrics.py — vet-eval's numbers against an independent computation in Python.
#
# Random prediction files (multi-label gold and predicted sets, empty sets, labels only
# predicted or only gold, species, ranked lists with ties, whole lists with logp) are written as
# CSV, JSON lines and predictions streams (tests/helpers/vet-mkpreds); vet-eval --json must give,
# in each format, what this file computes from the man page's definitions (man/vet-eval.1):
# exact-match accuracy, per-label support/predicted/tp/P/R/F1 and their order, macro and micro
# means, Jaccard, no-label count, per-species counts, confusions and their order, the majority
# baseline (also --baseline-from), the percentile bootstrap (vet's RNG, xoshiro256** seeded by
# splitmix64, ported below, and numpy's percentile), hit@k, MRR, top-1 ECE and Brier, the
# selective rows, --refer-below, --fit-threshold (decided with exact fractions), --temperature,
# --fit-temperature (a golden-section search of the NLL), --compare (counts, the paired bootstrap,
# McNemar's exact p from binomial coefficients) and --fail-under's exit status. The printed table
# must show the JSON's numbers, vet-dump --csv must show the stream's, and vet-eval must score the
# table vet-dump --csv writes as it scores the stream.
#
# Needs only numpy (the reference venv has it); skips when the binaries are not built.
# VET_EVAL_CASES sets how many random cases (default 40), VET_EVAL_SEED the generator's seed.
import csv
import io
import json
import math
import os
import random
import subprocess
import sys
import tempfile
from collections import Counter
from fractions import Fraction

from tap import Report

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("VET_TOP") or os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("VET_BIN") or os.path.join(TOP, "bin")
BUILD = os.environ.get("VET_BUILD") or os.path.join(TOP, "build", "rel")
EVAL = os.path.join(BIN, "vet-eval")
DUMP = os.path.join(BIN, "vet-dump")
MKPREDS = os.path.join(BUILD, "tests", "helpers", "vet-mkpreds")
TOL = 1e-12  # the JSON's numbers against exact ones: only the last bits of a double may differ

REPORT = Report()
check = REPORT.check


# --- vet's RNG (lib/base/rng.c), for the bootstrap's draws ------------------------------------
M64 = (1 << 64) - 1


class Rng:
    def __init__(self, seed):
        x, self.s = seed & M64, []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64  # noqa: E731
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        limit = M64 - M64 % n
        while True:
            x = self.next()
            if x < limit:
                return x % n


def ci95(values):
    lo, hi = np.percentile(np.array(values, dtype=float), [2.5, 97.5])  # linear, numpy's default
    return [float(lo), float(hi)]


# --- the reference ----------------------------------------------------------------------------
def key(labels):
    """A label set in vet's order: sorted by bytes (strcmp), a prefix first."""
    return tuple(sorted(labels, key=lambda s: s.encode()))


def bkey(labels):
    return tuple(s.encode() for s in key(labels))


def div(a, b):
    return a / b if b else 0.0


def label_counts(samples):
    sup, prd, tp = Counter(), Counter(), Counter()
    for s in samples:
        sup.update(s["gold"])
        prd.update(s["pred"])
        tp.update(s["gold"] & s["pred"])
    return sup, prd, tp


def macro_f1(samples):
    sup, prd, tp = label_counts(samples)
    labels = set(sup) | set(prd)
    return sum(div(2 * tp[l], sup[l] + prd[l]) for l in labels) / len(labels) if labels else 0.0


def metrics(samples):
    n = len(samples)
    right = [s["gold"] == s["pred"] for s in samples]
    sup, prd, tp = label_counts(samples)
    labels = set(sup) | set(prd)
    per = {}
    for l in labels:
        per[l] = {"support": sup[l], "predicted": prd[l], "tp": tp[l], "precision": div(tp[l], prd[l]),
                  "recall": div(tp[l], sup[l]), "f1": div(2 * tp[l], sup[l] + prd[l])}
    order = sorted(labels, key=lambda l: (-sup[l], -prd[l], l.encode()))
    L = len(labels)
    mp, mr = div(sum(tp.values()), sum(prd.values())), div(sum(tp.values()), sum(sup.values()))
    jac = [len(s["gold"] & s["pred"]) / len(s["gold"] | s["pred"]) if s["gold"] | s["pred"] else 1.0 for s in samples]
    species = {}
    for s, ok in zip(samples, right):
        d = species.setdefault(s["species"], {"n": 0, "correct": 0})
        d["n"] += 1
        d["correct"] += ok
    for d in species.values():
        d["accuracy"] = d["correct"] / d["n"]
    sp_order = sorted(species, key=lambda k: (-species[k]["n"], k.encode()))
    conf = Counter((bkey(s["gold"]), bkey(s["pred"])) for s, ok in zip(samples, right) if not ok)
    conf_order = sorted(conf, key=lambda gp: (-conf[gp], gp[0], gp[1]))
    return {
        "n": n, "correct": sum(right), "accuracy": sum(right) / n,
        "macro_precision": sum(per[l]["precision"] for l in labels) / L if L else 0.0,
        "macro_recall": sum(per[l]["recall"] for l in labels) / L if L else 0.0,
        "macro_f1": sum(per[l]["f1"] for l in labels) / L if L else 0.0,
        "micro_precision": mp, "micro_recall": mr, "micro_f1": div(2 * mp * mr, mp + mr),
        "jaccard": sum(jac) / n, "no_label": sum(1 for s in samples if not s["pred"]),
        "per_label": [(l, per[l]) for l in order],
        "per_species": [(k, species[k]) for k in sp_order],
        "confusions": [([g.decode() for g in gp[0]], [p.decode() for p in gp[1]], conf[gp]) for gp in conf_order],
    }


def majority(gold_sets):
    c = Counter(bkey(g) for g in gold_sets)
    best = max(c.values())
    return min(k for k in c if c[k] == best)  # ties: the first in label order


def baseline(samples, train=None):
    base = majority([s["gold"] for s in (train if train is not None else samples)])
    acc = sum(1 for s in samples if bkey(s["gold"]) == base) / len(samples)
    return [b.decode() for b in base], acc


def bootstrap(samples, B, seed):
    rng, n = Rng(seed), len(samples)
    acc, f1 = [], []
    for _ in range(B):
        draw = [samples[rng.below(n)] for _ in range(n)]
        acc.append(sum(s["gold"] == s["pred"] for s in draw) / n)
        f1.append(macro_f1(draw))
    return ci95(acc), ci95(f1)


def top_p(s, T):
    if T is None:
        return s["ranked"][0][1]
    # As vet computes it (calibrate.c vet_p_at), so that a p at a threshold falls on the same side.
    l, k = [e[2] for e in s["ranked"]], 1.0 / T
    mx = max(k * x for x in l)
    return math.exp(l[0] / T - (mx + math.log(sum(math.exp(k * x - mx) for x in l))))


def ranking(samples, T=None):
    n = len(samples)
    kmax = max(len(s["ranked"]) for s in samples)
    first = []
    for s in samples:
        at = [i + 1 for i, e in enumerate(s["ranked"]) if e[0] in s["gold"]]
        first.append(at[0] if at else 0)
    hit = {str(k): sum(1 for f in first if 0 < f <= k) / n for k in range(1, kmax + 1)}
    mrr = sum(1 / f for f in first if f) / n
    p = [top_p(s, T) for s in samples]
    ok = [f == 1 for f in first]
    bins = {}
    for pi, oi in zip(p, ok):
        bins.setdefault(min(int(pi * 10), 9), []).append((pi, oi))
    ece = sum(len(v) / n * abs(sum(x for x, _ in v) / len(v) - sum(y for _, y in v) / len(v)) for v in bins.values())
    brier = sum((pi - oi) ** 2 for pi, oi in zip(p, ok)) / n
    order = sorted(range(n), key=lambda i: (-p[i], i))
    sel = []
    for cov in (100, 90, 80, 70, 60, 50):
        m = -(-cov * n // 100)
        keep = order[:m]
        sel.append({"coverage": cov, "notes": m, "threshold": p[keep[-1]],
                    "accuracy": sum(samples[i]["gold"] == samples[i]["pred"] for i in keep) / m})
    return {"k": kmax, "hit_at": hit, "mrr": mrr, "ece": ece, "brier": brier, "selective": sel}, p


def referral(samples, p, thr):
    right = [s["gold"] == s["pred"] for s in samples]
    coded = [r for r, pi in zip(right, p) if pi >= thr]
    referred = [r for r, pi in zip(right, p) if pi < thr]
    # An accuracy over no note is undefined: null, not 0.
    return {"threshold": thr, "notes": len(samples), "coded": len(coded), "coverage": len(coded) / len(samples),
            "accuracy": sum(coded) / len(coded) if coded else None,
            "referred_accuracy": sum(referred) / len(referred) if referred else None}


def fit_threshold(samples, p, target):
    """The lowest p at which the coded notes' accuracy, as an exact fraction, reaches the target
    as the user wrote it (a decimal string): None when none does."""
    right = [s["gold"] == s["pred"] for s in samples]
    best = None
    for t in sorted(set(p)):
        coded = [r for r, pi in zip(right, p) if pi >= t]
        if Fraction(sum(coded), len(coded)) >= Fraction(target):
            return t
    return best


def nll(samples, T):
    tot, k = 0.0, 0
    for s in samples:
        lp = [e[2] / T for e in s["ranked"]]
        g = [x for x, e in zip(lp, s["ranked"]) if e[0] in s["gold"]]
        if not g:
            continue
        m = max(lp)
        lz = m + math.log(sum(math.exp(x - m) for x in lp))
        mg = max(g)
        tot += lz - (mg + math.log(sum(math.exp(x - mg) for x in g)))
        k += 1
    return tot / k


def fit_temperature(samples):
    lo, hi = math.log(0.01), math.log(100.0)
    f = lambda u: nll(samples, math.exp(u))  # noqa: E731
    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    for _ in range(120):
        c, d = b - g * (b - a), a + g * (b - a)
        if f(c) < f(d):
            b = d
        else:
            a = c
    return math.exp((a + b) / 2)


def mcnemar(b, c):
    n = b + c
    if n == 0:
        return 1.0
    tail = Fraction(sum(math.comb(n, k) for k in range(min(b, c) + 1)), 2 ** n)
    return float(min(Fraction(1), 2 * tail))


def compare(a, b, B, seed):
    byid = {s["id"]: s for s in b}
    both = only_a = only_b = neither = 0
    out, ids_a, ids_b = [], [], []
    for s in a:
        x, y = s["gold"] == s["pred"], byid[s["id"]]["gold"] == byid[s["id"]]["pred"]
        both += x and y
        neither += not x and not y
        if x and not y:
            only_a += 1
            ids_a.append(s["id"])
        if y and not x:
            only_b += 1
            ids_b.append(s["id"])
        out.append(int(x) - int(y))
    n = len(a)
    ci = None
    if B:
        rng = Rng(seed)
        ci = ci95([sum(out[rng.below(n)] for _ in range(n)) / n for _ in range(B)])
    return {"n": n, "both": both, "only_this": only_a, "only_other": only_b, "neither": neither,
            "accuracy": [(both + only_a) / n, (both + only_b) / n], "difference": (only_a - only_b) / n, "ci": ci,
            "mcnemar_p": mcnemar(only_a, only_b), "only_this_ids": ids_a, "only_other_ids": ids_b}


# --- random cases -----------------------------------------------------------------------------
POOL = ["1679004", "3974005", "72934000", "198462004", "Otitis externa", "Mastitis", "A", "AB", "Œdème",
        "b", "Zz", "10", "9"]


def random_set(rng, pool, most):
    return frozenset(rng.sample(pool, rng.randint(0, min(most, len(pool)))))


def make_case(rng, n=None, ranked=False, whole=False):
    n = n or rng.randint(1, 45)
    pool = rng.sample(POOL, rng.randint(2, len(POOL)))
    table = pool[:rng.randint(1, len(pool))]  # a ranked list's labels; the rest only gold or predicted
    species = rng.sample(["canine", "feline", "", "bovine", "équine"], rng.randint(1, 4))
    samples = []
    for i in range(n):
        gold = random_set(rng, pool, 3) if rng.random() > 0.1 else frozenset()
        r = rng.random()
        pred = gold if r < 0.45 else frozenset() if r < 0.55 else random_set(rng, pool, 3)
        s = {"id": "n%d" % i if rng.random() < 0.8 else str(1000 + i), "species": rng.choice(species),
             "gold": gold, "pred": pred, "ranked": None}
        if ranked:
            k = len(table) if whole else rng.randint(1, len(table))
            # Logits on a coarse grid: ties (equal p) happen.
            logit = {l: rng.choice([0.0, 0.5, 1.0, 1.5, 2.5, 4.0]) for l in table}
            m = max(logit.values())
            lz = m + math.log(sum(math.exp(v - m) for v in logit.values()))
            order = sorted(table, key=lambda l: -logit[l])[:k]
            s["ranked"] = [(l, math.exp(logit[l] - lz), logit[l] - lz) for l in order]
        samples.append(s)
    if not any(s["gold"] for s in samples):
        samples[0]["gold"] = frozenset([pool[0]])
    return samples, table


def write_jsonl(path, samples, rng):
    with open(path, "w", encoding="utf-8") as f:
        for s in samples:
            o = {"id": int(s["id"]) if s["id"].isdigit() and rng.random() < 0.5 else s["id"]}
            if s["species"] or rng.random() < 0.5:
                o["species"] = s["species"]
            for k in ("gold", "pred"):
                v = list(s[k])
                rng.shuffle(v)
                form = rng.random()
                if form < 0.3:
                    o[k] = " ; ".join(v + ([""] if rng.random() < 0.3 else []))  # a ';'-separated string
                elif form < 0.5:
                    o[k] = [int(x) if x.isdigit() and x[0] != "0" else x for x in v] + v[:1]  # repeats count once
                else:
                    o[k] = v
            if s["ranked"] is not None:
                o["ranked"] = [{"label": l, "p": p, "logp": lp} for l, p, lp in s["ranked"]]
            f.write(json.dumps(o, ensure_ascii=rng.random() < 0.5) + "\n")


def write_stream_jsonl(path, samples, table):
    """JSON lines for vet-mkpreds: arrays of strings, as vet-generate writes them."""
    with open(path, "w", encoding="utf-8") as f:
        for s in samples:
            o = {"id": s["id"], "species": s["species"], "gold": sorted(s["gold"]), "pred": sorted(s["pred"]),
                 "text": "x, y"}
            if s["ranked"] is not None:
                o["ranked"] = [{"label": l, "p": p, "logp": lp} for l, p, lp in s["ranked"]]
            f.write(json.dumps(o) + "\n")


def write_csv(path, samples, rng):
    cols = ["id", "gold", "pred", "species", "text"]
    rng.shuffle(cols)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n" if rng.random() < 0.3 else "\n")
        w.writerow([c.upper() if rng.random() < 0.2 else c for c in cols])
        for s in samples:
            row = {"id": s["id"], "species": s["species"], "text": "a, \"b\"\nc",
                   "gold": ";".join(" %s " % x for x in s["gold"]), "pred": "; ".join(list(s["pred"]) + [""])}
            w.writerow([row[c] for c in cols])


def mkpreds(jsonl, out, kind=None, header=None):
    args = [MKPREDS] + (["--kind", kind] if kind else []) + (["--header", json.dumps(header)] if header else [])
    subprocess.run(args + [jsonl, out], check=True, capture_output=True)


def vet_eval(args):
    p = subprocess.run([EVAL] + args, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


# --- comparing --------------------------------------------------------------------------------
def close(a, b):
    if a is None or b is None:
        return a is b
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    return abs(a - b) <= TOL * max(1.0, abs(b))


def diff_report(got, ref):
    """What differs between vet's JSON and the reference ('' when nothing)."""
    bad = []
    for k in ("n", "correct", "no_label"):
        if got[k] != ref[k]:
            bad.append("%s %r != %r" % (k, got[k], ref[k]))
    for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "micro_precision", "micro_recall",
              "micro_f1", "jaccard"):
        if not close(got[k], ref[k]):
            bad.append("%s %r != %r" % (k, got[k], ref[k]))
    gl = list(got["per_label"].items())
    if [l for l, _ in gl] != [l for l, _ in ref["per_label"]]:
        bad.append("per_label order %r != %r" % ([l for l, _ in gl], [l for l, _ in ref["per_label"]]))
    for (l, g), (_, r) in zip(gl, ref["per_label"]):
        for k in r:
            if not close(g[k], r[k]):
                bad.append("per_label %s %s %r != %r" % (l, k, g[k], r[k]))
    gs = list(got["per_species"].items())
    if [(k, v["n"], v["correct"]) for k, v in gs] != [(k, v["n"], v["correct"]) for k, v in ref["per_species"]]:
        bad.append("per_species %r != %r" % (gs, ref["per_species"]))
    for (k, g), (_, r) in zip(gs, ref["per_species"]):
        if not close(g["accuracy"], r["accuracy"]):
            bad.append("per_species %s accuracy" % k)
    gc = [(c["gold"], c["pred"], c["count"]) for c in got["confusions"]]
    if gc != [(g, p, c) for g, p, c in ref["confusions"]]:
        bad.append("confusions %r != %r" % (gc, ref["confusions"]))
    return "; ".join(bad)


def table_shows(table, j):
    """The lines of the printed report that must show the JSON's numbers (4 decimals)."""
    want = ["%-17s %.4f" % ("accuracy", j["accuracy"]), "%-17s %.4f" % ("macro precision", j["macro_precision"]),
            "%-17s %.4f" % ("macro recall", j["macro_recall"]), "%-17s %.4f" % ("macro F1", j["macro_f1"]),
            "%-17s %.4f" % ("micro F1", j["micro_f1"]), "%-17s %.4f" % ("mean Jaccard", j["jaccard"]),
            "%-17s %d " % ("no label", j["no_label"]), "%-17s %.4f " % ("baseline", j["baseline"]["accuracy"])]
    if j["ci"]:
        want.append("95%% CI [%.4f, %.4f] (percentile" % tuple(j["ci"]["accuracy"]))
        want.append("95%% CI [%.4f, %.4f]" % tuple(j["ci"]["macro_f1"]))
    for l, s in j["per_label"].items():
        if len(l) <= 18 and l.isascii():
            want.append("%-18s %7d %7d %9.4f %7.4f %7.4f" % (l, s["support"], s["predicted"], s["precision"],
                                                            s["recall"], s["f1"]))
    if "ranking" in j:
        g = j["ranking"]
        want.append("%-17s %.4f" % ("MRR", g["mrr"]))
        want.append("%-17s %.4f" % ("top-1 ECE", g["ece"]))
        want.append("%-17s %.4f" % ("top-1 Brier", g["brier"]))
        for k, v in g["hit_at"].items():
            if int(k) <= 3 or int(k) in (5, g["k"]):
                want.append("%-17s %.4f" % ("hit@" + k, v))
        for s in g["selective"]:
            want.append("%7d%% %8d %10.4f %9.4f" % (s["coverage"], s["notes"], s["threshold"], s["accuracy"]))
    missing = [w for w in want if w not in table]
    return "" if not missing else "table lacks %r" % missing


def check_ranking(got, ref):
    bad = []
    if got["k"] != ref["k"] or list(got["hit_at"]) != list(ref["hit_at"]):
        bad.append("k/hit_at keys")
    for k in ref["hit_at"]:
        if not close(got["hit_at"].get(k), ref["hit_at"][k]):
            bad.append("hit@%s %r != %r" % (k, got["hit_at"].get(k), ref["hit_at"][k]))
    for k in ("mrr", "ece", "brier"):
        if not abs(got[k] - ref[k]) <= 1e-9:
            bad.append("%s %r != %r" % (k, got[k], ref[k]))
    for g, r in zip(got["selective"], ref["selective"]):
        if g["coverage"] != r["coverage"] or g["notes"] != r["notes"] or not close(g["accuracy"], r["accuracy"]) \
                or not abs(g["threshold"] - r["threshold"]) <= 1e-12:
            bad.append("selective %r != %r" % (g, r))
    return "; ".join(bad)


def check_referral(got, ref):
    bad = [k for k in ("notes", "coded") if got[k] != ref[k]]
    bad += [k for k in ("threshold", "coverage", "accuracy", "referred_accuracy") if not close(got[k], ref[k])]
    return "" if not bad else "referral %s: %r != %r" % (bad, got, ref)


# --- the checks -------------------------------------------------------------------------------
def one_case(c, rng, work):
    ranked = rng.random() < 0.5
    whole = ranked and rng.random() < 0.5
    samples, table = make_case(rng, ranked=ranked, whole=whole)
    ref = metrics(samples)
    B, seed = rng.choice([0, 40, 150]), rng.randint(0, 2 ** 40)
    base = os.path.join(work, "c%d" % c)
    files = {"jsonl": base + ".jsonl"}
    write_jsonl(files["jsonl"], samples, rng)
    if not ranked:
        files["csv"] = base + ".csv"
        write_csv(files["csv"], samples, rng)
    write_stream_jsonl(base + ".s.jsonl", samples, table)
    files["stream"] = base + ".preds"
    mkpreds(base + ".s.jsonl", files["stream"])
    rk = None
    if ranked:
        T = rng.choice([None, 0.5, 2.0]) if whole else None
        rk, p = ranking(samples, T)
    want_base, want_base_acc = baseline(samples)
    ci = bootstrap(samples, B, seed) if B else None

    extra, shown, thr, fit = [], [], None, None  # shown: the options of the printed table's run
    if ranked:
        if T is not None:
            extra += ["--temperature", str(T)]
        if rng.random() < 0.5:
            thr = rng.choice(p + [0.0, 1.0, rng.random()])
            extra += ["--refer-below", repr(thr)]
        shown = list(extra)
        if thr is None:
            fit = rng.choice(["0.5", "0.56", "0.55", "0.75", "0.8", "0.9", "1", "0.3", "0.07"])
            extra += ["--fit-threshold", base + ".thr", "--target-accuracy", fit]
    codes, terms = base + ".codes", {}
    with open(codes, "w", encoding="utf-8") as f:  # terms for some labels; a header and a comment
        f.write("code\tterm\n# comment\n")
        for l in POOL:
            if rng.random() < 0.6:
                terms[l] = "term of " + l
                f.write("%s\t%s\n" % (l, terms[l]))
    for fmt, path in files.items():
        name = "case%d_%s" % (c, fmt)
        rc, out, err = vet_eval(["-q", "-b", str(B), "-s", str(seed), "--json", base + ".json", "--codes", codes]
                                + extra + [path])
        want_fit = fit_threshold(samples, p, fit) if fit else None
        if fit and want_fit is None:
            check(name + "_fit_threshold_none", rc == 1 and "no threshold" in err, "rc %d: %s" % (rc, err))
            continue
        if not check(name + "_runs", rc == 0, "rc %d: %s" % (rc, err)):
            continue
        j = json.load(open(base + ".json"))
        check(name + "_metrics", not diff_report(j, ref), diff_report(j, ref))
        got_terms = {l: v["term"] for l, v in j["per_label"].items()}
        check(name + "_terms", got_terms == {l: terms.get(l, "") for l in got_terms}, repr(got_terms))
        b = j["baseline"]
        check(name + "_baseline", b["labels"] == want_base and close(b["accuracy"], want_base_acc)
              and b["label"] == ";".join(want_base) and b["optimistic"] is True, "%r != %r %r" % (b, want_base,
                                                                                                 want_base_acc))
        if B:
            check(name + "_bootstrap", j["ci"]["seed"] == seed and j["ci"]["resamples"] == B
                  and close(j["ci"]["accuracy"], ci[0]) and close(j["ci"]["macro_f1"], ci[1]),
                  "%r != %r" % (j["ci"], ci))
        else:
            check(name + "_no_bootstrap", j["ci"] is None, repr(j["ci"]))
        if ranked and fmt != "csv":
            d = check_ranking(j.get("ranking", {"k": 0, "hit_at": {}, "selective": []}), rk)
            check(name + "_ranking", not d, d)
            if thr is not None or fit:
                t = float(thr if thr is not None else open(base + ".thr").read())
                if fit:
                    check(name + "_fit_threshold", t == want_fit, "%r != %r (target %s)" % (t, want_fit, fit))
                d = check_referral(j["ranking"].get("referral", {}), referral(samples, p, t))
                check(name + "_referral", not d, d)
                f = j["ranking"]["referral"]
                acc = lambda a: "-" if a is None else "%.4f" % a  # none: undefined, "-"
                want_lines = ["%-17s %d of %d (%.1f%%), accuracy %s" % ("coded", f["coded"], f["notes"],
                                                                        100 * f["coverage"], acc(f["accuracy"])),
                              "%-17s %d (the model's accuracy on them: %s)" % ("referred", f["notes"] - f["coded"],
                                                                               acc(f["referred_accuracy"]))]
                rc, out, err = vet_eval(["-b", "0"] + [a if a != base + ".thr" else base + ".thr2" for a in extra]
                                        + [path])
                missing = [w for w in want_lines if w not in out]
                check(name + "_referral_table", rc == 0 and not missing, "table lacks %r (%s)" % (missing, err))
        # The table: the JSON's numbers, 4 decimals.
        rc, out, err = vet_eval(["-b", str(B), "-s", str(seed)] + shown + [path])
        d = table_shows(out, j) if rc == 0 else "rc %d: %s" % (rc, err)
        check(name + "_table", not d, d)
    return samples, files, ref


def fail_under_cases(rng, work):
    samples, _ = make_case(rng, n=25)
    path = os.path.join(work, "fu.jsonl")
    write_jsonl(path, samples, rng)
    acc = Fraction(sum(s["gold"] == s["pred"] for s in samples), len(samples))
    for name, bar in (("equal", float(acc)), ("just_above", float(acc) + 1e-9), ("below", float(acc) - 1e-9),
                      ("zero", 0.0), ("one", 1.0)):
        rc, out, err = vet_eval(["-q", "-b", "0", "--fail-under", repr(bar), path])
        want = 4 if Fraction(repr(bar)) > acc else 0  # the decimal given, against the exact accuracy
        check("fail_under_" + name, rc == want, "accuracy %s, --fail-under %r: exit %d, want %d" % (acc, bar, rc, want))


def baseline_from_cases(rng, work):
    for t in range(4):
        samples, _ = make_case(rng)
        train, _ = make_case(rng, n=rng.randint(1, 30))
        path, tj, tp = (os.path.join(work, "bf%d.%s" % (t, x)) for x in ("jsonl", "train.jsonl", "train.preds"))
        write_jsonl(path, samples, rng)
        write_stream_jsonl(tj, train, [])
        mkpreds(tj, tp)
        rc, out, err = vet_eval(["-q", "-b", "0", "--baseline-from", tp, "--json", path + ".json", path])
        if not check("baseline_from_%d_runs" % t, rc == 0, err):
            continue
        b = json.load(open(path + ".json"))["baseline"]
        labels, acc = baseline(samples, train)
        check("baseline_from_%d" % t, b["labels"] == labels and close(b["accuracy"], acc) and b["optimistic"] is False
              and b["from"] == tp, "%r, want %r %r" % (b, labels, acc))


def compare_cases(rng, work):
    for t in range(6):
        a, _ = make_case(rng, n=rng.randint(1, 60))
        b = []
        for s in a:  # the same notes and gold, other predictions, in another order
            r = rng.random()
            b.append(dict(s, pred=s["gold"] if r < 0.5 else frozenset() if r < 0.6 else random_set(rng, POOL, 2)))
        rng.shuffle(b)
        pa, pb = os.path.join(work, "cmp%d.a.jsonl" % t), os.path.join(work, "cmp%d.b.jsonl" % t)
        write_jsonl(pa, a, rng)
        write_jsonl(pb, b, rng)
        B, seed = rng.choice([0, 60]), rng.randint(0, 1000)
        rc, out, err = vet_eval(["-q", "-b", str(B), "-s", str(seed), "--compare", pb, "--json", pa + ".json", pa])
        if not check("compare_%d_runs" % t, rc == 0, err):
            continue
        got = json.load(open(pa + ".json"))["compare"]
        want = compare(a, b, B, seed)
        bad = [k for k in want if not (close(got[k], want[k]) if k in ("accuracy", "difference", "ci") else
                                       got[k] == want[k] if k != "mcnemar_p" else
                                       abs(got[k] - want[k]) <= 1e-12 * max(1e-300, want[k]) + 1e-15)]
        check("compare_%d" % t, not bad, "%s: %r != %r" % (bad, {k: got[k] for k in bad}, {k: want[k] for k in bad}))
        # The printed section shows the JSON's numbers.
        rc, out, err = vet_eval(["-b", str(B), "-s", str(seed), "--compare", pb, pa])
        lines = ["%-17s %.4f here, %.4f there: difference %+.4f" % ("accuracy", got["accuracy"][0], got["accuracy"][1],
                                                                   got["difference"]),
                 "%-17s %d\n" % ("both right", got["both"]), "%-17s %d\n" % ("neither", got["neither"]),
                 "%-17s %.4g  (exact McNemar" % ("McNemar p", got["mcnemar_p"])]
        lines += ["95%% CI [%+.4f, %+.4f]" % tuple(got["ci"])] if got["ci"] else []
        for what, n in (("only here right", got["only_this"]), ("only there right", got["only_other"])):
            lines.append("%-17s %d" % (what, n) + ("\n" if n == 0 else " "))
        missing = [w for w in lines if w not in out]
        check("compare_%d_table" % t, rc == 0 and not missing, "table lacks %r (%s)" % (missing, err))


def mcnemar_cases():
    # Large and lopsided discordant counts: the log-space sum against exact binomial coefficients.
    for b, c in ((0, 0), (0, 1), (1, 1), (5, 0), (3, 7), (40, 60), (500, 440), (1000, 0), (2500, 2600)):
        fd, path = tempfile.mkstemp(suffix=".jsonl")
        pa, pb = path, path + ".b"
        with os.fdopen(fd, "w") as fa, open(pb, "w") as fb:
            for i in range(b + c + 3):
                a_ok, b_ok = (True, False) if i < b else (False, True) if i < b + c else (True, True)
                fa.write(json.dumps({"id": i, "gold": ["A"], "pred": ["A" if a_ok else "B"]}) + "\n")
                fb.write(json.dumps({"id": i, "gold": ["A"], "pred": ["A" if b_ok else "B"]}) + "\n")
        rc, out, err = vet_eval(["-q", "-b", "0", "--compare", pb, "--json", "-", pa])
        os.unlink(pa), os.unlink(pb)
        want = mcnemar(b, c)
        got = json.loads(out)["compare"]["mcnemar_p"] if rc == 0 else None
        check("mcnemar_%d_%d" % (b, c), got is not None and abs(got - want) <= 1e-9 * want + 1e-300,
              "%r != %r (%s)" % (got, want, err))


def temperature_cases(rng, work):
    for t in range(3):
        samples, table = make_case(rng, n=rng.randint(5, 40), ranked=True, whole=True)
        if len(table) < 2:
            continue
        path = os.path.join(work, "temp%d.jsonl" % t)
        write_jsonl(path, samples, rng)
        rc, out, err = vet_eval(["-q", "-b", "0", "--fit-temperature", path + ".t", "--json", path + ".json", path])
        if not any(e[0] in s["gold"] for s in samples for e in s["ranked"]):
            check("temperature_%d_nothing_to_fit" % t, rc == 1, err)
            continue
        if not check("temperature_%d_runs" % t, rc == 0, err):
            continue
        got = json.load(open(path + ".json"))["ranking"]["temperature"]
        want = fit_temperature(samples)
        n1, nt = nll(samples, 1.0), nll(samples, want)
        # The NLL is flat near its minimum: compare NLLs tightly and T loosely (or at the search's ends).
        ok = abs(got["nll"][0] - n1) <= 1e-9 and got["nll"][1] <= nt + 1e-9 and abs(got["nll"][1] - nt) <= 1e-6
        ok = ok and (got["bound"] != 0 or abs(math.log(got["t"] / want)) <= 1e-3)
        ece1 = ranking(samples, 1.0)[0]
        ok = ok and abs(got["ece"][0] - ece1["ece"]) <= 1e-9 and abs(got["brier"][0] - ece1["brier"]) <= 1e-9
        at_t = ranking(samples, got["t"])[0]  # at the fitted T: as --temperature T would score it
        ok = ok and abs(got["ece"][1] - at_t["ece"]) <= 1e-6 and abs(got["brier"][1] - at_t["brier"]) <= 1e-6
        check("temperature_%d" % t, ok, "%r; want T %r, NLL %r -> %r, ECE/Brier at 1 %r %r" % (
            got, want, n1, nt, ece1["ece"], ece1["brier"]))


def dump_cases(rng, work):
    """vet-dump --csv: the stream's numbers in the table, and vet-eval scores the table as the stream."""
    for t in range(4):
        samples, table = make_case(rng, ranked=t % 2 == 0)
        sj, sp = os.path.join(work, "dump%d.jsonl" % t), os.path.join(work, "dump%d.preds" % t)
        write_stream_jsonl(sj, samples, table)
        mkpreds(sj, sp)
        args = [DUMP, "--csv"]
        thr = None
        if t % 2 == 0:
            thr = rng.choice([s["ranked"][0][1] for s in samples])
            args += ["--refer-below", repr(thr)]
        p = subprocess.run(args + [sp], capture_output=True, text=True)
        if not check("dump_csv_%d_runs" % t, p.returncode == 0, p.stderr):
            continue
        rows = list(csv.DictReader(io.StringIO(p.stdout)))
        bad = []

        def shown(x):  # man vet-dump: 6 digits, or more to keep x on its side of --refer-below
            for prec in range(6, 18):
                t = "%.*g" % (prec, x)
                if thr is None or (float(t) < thr) == (x < thr):
                    return t
            return t

        for s, r in zip(samples, rows):
            if r["id"] != s["id"] or r["species"] != s["species"] or set(filter(None, r["gold"].split(";"))) != s["gold"] \
                    or set(filter(None, r["pred"].split(";"))) != s["pred"]:
                bad.append("row %s: %r" % (s["id"], r))
            if s["ranked"]:
                if r["p"] != shown(s["ranked"][0][1]) or r["refer"] != ("yes" if s["ranked"][0][1] < thr else "no") \
                        or r["ranked"] != ";".join("%s=%s" % (l, shown(p)) for l, p, _ in s["ranked"]):
                    bad.append("row %s: p/refer/ranked %r" % (s["id"], r))
            elif r["p"] or r["refer"] or r["ranked"]:
                bad.append("row %s: p/refer/ranked for an unranked note %r" % (s["id"], r))
        check("dump_csv_%d" % t, len(rows) == len(samples) and not bad, "; ".join(bad[:3]))
        cpath = sp + ".csv"
        open(cpath, "w").write(p.stdout)
        r1 = vet_eval(["-q", "-b", "30", "--json", "-", sp])
        r2 = vet_eval(["-q", "-b", "30", "--json", "-", cpath])
        if r1[0] == 0 and r2[0] == 0:
            j1, j2 = json.loads(r1[1]), json.loads(r2[1])
            same = all(j1[k] == j2[k] for k in j1 if k not in ("input", "format", "ranking"))
            check("dump_csv_%d_scores_as_stream" % t, same, "stream and its vet-dump --csv score differently")
        else:
            check("dump_csv_%d_scores_as_stream" % t, False, r1[2] + r2[2])


def shard_cases(rng, work):
    """The N streams of a --shard run score as the unsharded stream, intervals included; so does
    --compare against them, and vet-dump --csv makes the unsharded table."""
    for t in range(3):
        samples, table = make_case(rng, n=rng.randint(2, 30), ranked=t != 1)
        N = rng.randint(2, min(4, len(samples)))
        whole = os.path.join(work, "sh%d" % t)
        write_stream_jsonl(whole + ".jsonl", samples, table)
        mkpreds(whole + ".jsonl", whole + ".preds")
        parts = []
        for k in range(N):
            part = "%s.%d" % (whole, k)
            write_stream_jsonl(part + ".jsonl", samples[k::N], table)
            mkpreds(part + ".jsonl", part + ".preds", header={"shard": {"k": k, "n": N, "input_notes": len(samples)}})
            parts.append(part + ".preds")
        rng.shuffle(parts)
        other = [dict(s, pred=s["gold"] if rng.random() < 0.5 else frozenset()) for s in samples]
        write_jsonl(whole + ".other.jsonl", other, rng)
        opts = ["-q", "-b", "50", "-s", str(t), "--json", "-", "--compare", whole + ".other.jsonl"]
        r1, r2 = vet_eval(opts + [whole + ".preds"]), vet_eval(opts + parts)
        if check("shards_%d_run" % t, r1[0] == 0 and r2[0] == 0, r1[2] + r2[2]):
            j1, j2 = json.loads(r1[1]), json.loads(r2[1])
            bad = [k for k in j1 if k not in ("input", "format") and j1[k] != j2[k]]
            check("shards_%d_as_unsharded" % t, not bad, "differ: %r" % bad)
        # And the other way round: the shards as OTHER.
        opts = ["-q", "-b", "50", "-s", str(t), "--json", "-", whole + ".other.jsonl"]
        r1 = vet_eval(opts + ["--compare", whole + ".preds"])
        r2 = vet_eval(opts + [a for p in parts for a in ("--compare", p)])
        if check("shards_%d_compare_run" % t, r1[0] == 0 and r2[0] == 0, r1[2] + r2[2]):
            c1, c2 = json.loads(r1[1])["compare"], json.loads(r2[1])["compare"]
            bad = [k for k in c1 if k != "other" and c1[k] != c2[k]]
            check("shards_%d_compare_as_unsharded" % t, not bad, "differ: %r" % bad)
        d1 = subprocess.run([DUMP, "--csv", whole + ".preds"], capture_output=True, text=True)
        d2 = subprocess.run([DUMP, "--csv"] + parts, capture_output=True, text=True)
        check("shards_%d_dump_csv" % t, d1.returncode == 0 and d1.stdout == d2.stdout, d1.stderr + d2.stderr)


def repeatable(rng, work):
    samples, _ = make_case(rng, n=30)
    path = os.path.join(work, "rep.jsonl")
    write_jsonl(path, samples, rng)
    a = vet_eval(["-q", "-b", "100", "-s", "7", "--json", "-", path])[1]
    b = vet_eval(["-q", "-b", "100", "-s", "7", "--json", "-", path])[1]
    c = vet_eval(["-q", "-b", "100", "-s", "8", "--json", "-", path])[1]
    check("bootstrap_repeatable", a == b and json.loads(a)["ci"]["seed"] == 7, "two runs with --seed 7 differ")
    check("bootstrap_seed_matters", json.loads(a)["ci"] != json.loads(c)["ci"] or len(set(
        s["gold"] == s["pred"] for s in samples)) == 1, "--seed 7 and 8 give the same intervals")


def json_full_precision(work):
    # The JSON holds every number in full (man vet-eval): a selective row's threshold fed back to
    # --refer-below must code the notes that row counts.
    path = os.path.join(work, "prec.jsonl")
    with open(path, "w") as f:
        for i, p in enumerate([0.9, 0.7234567890123456, 0.6, 0.3]):
            f.write(json.dumps({"id": i, "gold": ["A"], "pred": ["A"], "ranked": [{"label": "A", "p": p}]}) + "\n")
    rc, out, err = vet_eval(["-q", "-b", "0", "--json", "-", path])
    row = json.loads(out)["ranking"]["selective"][-1] if rc == 0 else {}
    rc2, out2, err2 = vet_eval(["-q", "-b", "0", "--json", "-", "--refer-below", repr(row.get("threshold")), path])
    coded = json.loads(out2)["ranking"]["referral"]["coded"] if rc2 == 0 else None
    check("json_threshold_round_trips", row.get("threshold") == 0.7234567890123456 and coded == row.get("notes"),
          "selective %r; --refer-below it codes %r notes (%s%s)" % (row, coded, err, err2))


def dump_float32(work):
    # A stream of float32 p (another writer's): vet-dump shows each as the double vet-eval reads,
    # which is what vet-eval's fitted threshold is then compared with.
    import struct
    try:
        import msgpack
        import zstandard
    except ImportError:
        print("skip dump_float32: no msgpack or zstandard in this python")
        return
    path = os.path.join(work, "f32.preds")
    ps = [0.3732278091502738, 0.1, 0.9]
    recs = [{"id": str(i), "gold": ["A"], "pred": ["A"], "ranked": [{"label": "A", "p": p}]} for i, p in enumerate(ps)]
    raw = msgpack.packb({"vet": 1, "kind": "predictions", "program": "test", "version": "0"})
    raw += b"".join(msgpack.packb(r, use_single_float=True) for r in recs) + msgpack.packb({"end": True, "records": 3})
    open(path, "wb").write(zstandard.ZstdCompressor(write_checksum=True).compress(raw))
    d = subprocess.run([DUMP, "-r", path], capture_output=True, text=True)
    shown = [json.loads(l)["ranked"][0]["p"] for l in d.stdout.splitlines()]
    widened = [struct.unpack("f", struct.pack("f", p))[0] for p in ps]
    rc, out, err = vet_eval(["-q", "-b", "0", "--fit-threshold", "-", "--target-accuracy", "1", path])
    check("dump_float32_as_read", d.returncode == 0 and shown == widened and rc == 0 and float(out) == min(shown),
          "vet-dump shows %r, the doubles read are %r; vet-eval's threshold %r (%s)" % (shown, widened, out, err))


def main():
    for exe in (EVAL, DUMP, MKPREDS):
        if not os.access(exe, os.X_OK):
            print("skip eval_metrics: %s not built (make all test-build)" % exe)
            return 0
    seed = int(os.environ.get("VET_EVAL_SEED", "1"))
    cases = int(os.environ.get("VET_EVAL_CASES", "40"))
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="vet-eval-metrics.") as work:
        for c in range(cases):
            one_case(c, rng, work)
        fail_under_cases(rng, work)
        baseline_from_cases(rng, work)
        compare_cases(rng, work)
        mcnemar_cases()
        temperature_cases(rng, work)
        dump_cases(rng, work)
        shard_cases(rng, work)
        repeatable(rng, work)
        json_full_precision(work)
        dump_float32(work)
    return REPORT.status()


if __name__ == "__main__":
    sys.exit(main())
