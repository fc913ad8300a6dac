"""test_pack_records.py — vet-pack's rows decoded and checked against the tokens they came from,
by a computation of this file's own (nothing of vet's packing or split code is reused):

  - every original record is in exactly one split, or named in the summary's rejected_ids;
    samples_in = samples_packed + samples_rejected + copies_dropped
  - a row is its samples' prompt + response ids back to back (input order), never longer than
    --seq-len; starts ascend from 0; prompt_lens, ids, species and codes are the records'
  - targets: the next token where that token is a response token (EOS included), else -1; with
    --train-on-prompt every next token within the sample; nothing across a sample boundary
  - --truncate left keeps BOS + the newest prompt tokens, right the prompt's head, the response
    whole, the row exactly --seq-len long; samples that fit are untouched
  - no two splits share a note after the promised normalization (ASCII case folded, runs of
    ASCII whitespace one space, ends trimmed; text with other characters in NFKC, case folded,
    runs of Unicode whitespace one space); the split does not change with --seq-len or
    --truncate; --seed gives the same bytes again and another seed another split
  - --group-by none: shares within largest-remainder rounding of --split
  - --species-swap copies: in their original's split, dropped from test, in --val-copies for val
Data: the 1,602 DLO notes (VET_SHARED) and notes written here that repeat one text under other
case and whitespace (and, for accented texts, composed or decomposed). The tokenizer is trained by tests/fixtures/tokenize/make_model.sh.
"""
import csv
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import unicodedata

from tap import Report

TOP = os.environ.get("VET_TOP") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("VET_BIN") or os.path.join(TOP, "bin")
REPORT = Report()
ok = REPORT.errors  # ok(name, errs): passes when errs is empty


def run(*args):
    return subprocess.run([os.path.join(BIN, args[0])] + list(args[1:]), capture_output=True, text=True)


def records(path):
    out = run("vet-dump", "-r", path)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return [json.loads(line) for line in out.stdout.split("\n") if line]  # not splitlines: U+2028


def summary(path):
    return json.loads(run("vet-dump", "-H", path).stdout).get("summary", {})


def normalize(note):
    if not note.isascii():  # NFKC with case folding; every Unicode space is whitespace
        note = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", note).casefold())
        return " ".join(note.split())
    s = re.sub(r"[ \t\n\v\f\r]+", " ", note).strip(" ")
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def check_rows(tokens, splits, seq_len, train_on_prompt=False, truncate=None):
    """tokens: the records in input order; splits: name -> packed file. Returns (errors, where)."""
    recs = {r["id"]: r for r in tokens}
    order = {r["id"]: i for i, r in enumerate(tokens)}
    errs, where, summ = [], {}, {}
    for name, path in splits.items():
        summ = summary(path)
        for row in records(path):
            toks, tg, st = row["tokens"], row["targets"], row["starts"]
            if len(toks) > seq_len:
                errs.append(f"{name}: a row of {len(toks)} tokens")
            if len(tg) != len(toks) or not st or st[0] != 0 or any(b <= a for a, b in zip(st, st[1:])):
                errs.append(f"{name}: targets or starts malformed: {st}")
                continue
            if [order[i] for i in row["ids"]] != sorted(order[i] for i in row["ids"]):
                errs.append(f"{name}: samples not in input order: {row['ids']}")
            for k, (s, e) in enumerate(zip(st, st[1:] + [len(toks)])):
                sid = row["ids"][k]
                r, seg, pl = recs[sid], toks[s:e], row["prompt_lens"][k]
                where.setdefault(sid, []).append(name)
                p, resp = r["prompt"], r["response"]
                if truncate and len(p) + len(resp) > seq_len:
                    want = p[:1] + p[len(p) - (pl - 1):] if truncate == "left" else p[:pl]
                    if seg != want + resp or len(seg) != seq_len:
                        errs.append(f"{sid}: cut {truncate} to {seg[:4]}..., want {want[:4]}...")
                elif seg != p + resp or pl != len(p):
                    errs.append(f"{sid}: tokens or prompt_len differ from the record")
                for i in range(len(seg)):
                    want = seg[i + 1] if i + 1 < len(seg) and (train_on_prompt or i + 1 >= pl) else -1
                    if tg[s + i] != want:
                        errs.append(f"{sid}: target {i} is {tg[s + i]}, want {want}")
                        break
                if row["codes"][k] != r["codes"] or row["species"][k] != r["species"]:
                    errs.append(f"{sid}: codes or species differ from the record")
    rejected = set(summ.get("rejected_ids", []))
    for r in tokens:
        n = len(where.get(r["id"], []))
        if n > 1 or (n == 0 and r["id"] not in rejected and not r.get("copy_of")):
            errs.append(f"{r['id']}: in {n} places (rejected: {r['id'] in rejected})")
    if summ and summ["samples_in"] != summ["samples_packed"] + summ["samples_rejected"] + summ["copies_dropped"]:
        errs.append(f"summary counts do not add up: {summ}")
    return errs, {i: w[0] for i, w in where.items()}


def leaks(tokens, where):
    seen = {}
    for r in tokens:
        if r["id"] in where and not r.get("copy_of"):
            seen.setdefault(normalize(r["note"]), set()).add(where[r["id"]])
    return [f"note in {sorted(s)}: {n[:60]!r}" for n, s in seen.items() if len(s) > 1]


def pack(tok, out, *args):
    r = run("vet-pack", *args, "--out", out, tok)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return {s: os.path.join(out, f"{s}.msgpack.zst") for s in ("train", "val", "test")}


def varied_notes(path):
    """Five texts, each written many ways (case, whitespace runs, CRLF, ends), and unique notes."""
    rng = random.Random(3)
    base = ["Fever and cough in the dog", "Vomiting after eating grass", "Lame on the left hind leg",
            "Diarrhoea, three days", "Skin lesions on the ear"]
    rows = []
    for k in range(60):
        b = rng.choice(base)
        text = "".join(rng.choice([" ", "  ", "\t", "\r\n", "\n", " \v", "\f"]) if ch == " " else
                       (ch.swapcase() if ch.isalpha() and rng.random() < 0.3 else ch) for ch in b)
        rows.append({"id": f"g{k}", "species": "Dog", "note": rng.choice(["", " ", "\n"]) + text + rng.choice(["", " ", "\t\n"]),
                     "codes": str(base.index(b))})
    # Two non-ASCII texts, composed or decomposed (NFC, NFD), in either case, with Unicode spaces
    rng2 = random.Random(4)
    accented = ["Fi\u00e8vre \u00e9lev\u00e9e chez la vache", "\u00c9coulement nasal \u00e0 gauche"]
    for k in range(30):
        b = rng2.choice(accented)
        text = "".join(rng2.choice([" ", "\u00a0", "\u2028", "\u3000 "]) if ch == " " else
                       (ch.swapcase() if ch.isalpha() and rng2.random() < 0.3 else ch) for ch in b)
        text = unicodedata.normalize(rng2.choice(["NFC", "NFD"]), text)
        rows.append({"id": f"a{k}", "species": "Cow", "note": text, "codes": str(5 + accented.index(b))})
    rows += [{"id": f"u{k}", "species": "Cat", "note": f"unique note {k}", "codes": str(k % 5)} for k in range(60)]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=["id", "species", "note", "codes"], quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    open(path, "w", newline="").write(buf.getvalue())


def main():
    if not all(os.access(os.path.join(BIN, p), os.X_OK) for p in ("vet-tokenize", "vet-pack", "vet-dump")):
        print(f"skip pack_records: vet not built in {BIN}")
        return 0
    shared = os.environ.get("VET_SHARED", "")
    dlo = os.path.join(shared, "data", "dlo", "dlo_notes.csv") if shared else ""
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([os.path.join(TOP, "tests", "fixtures", "tokenize", "make_model.sh"), os.path.join(tmp, "m")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"skip pack_records: cannot train a test tokenizer: {r.stderr.strip()[-300:]}")
            return 0
        model = os.path.join(tmp, "m", "tokenizer.model")
        varied = os.path.join(tmp, "varied.csv")
        varied_notes(varied)
        inputs = [("varied", varied)]
        if dlo and os.path.exists(dlo):
            inputs.append(("dlo", dlo))
        else:
            print("skip pack_records_dlo: VET_SHARED not set")
        for what, csv_path in inputs:
            tok = os.path.join(tmp, f"{what}.tok")
            subprocess.run([os.path.join(BIN, "vet-tokenize"), "--spm", model, "-o", tok, csv_path], check=True)
            tokens = records(tok)
            lens = sorted(len(t["prompt"]) + len(t["response"]) for t in tokens)
            short = lens[len(lens) // 2]  # half the samples are too long for it
            runs = [("stratified", ["--stratify", "codes", "--split", "1/1/1"], 512, {}),
                    ("over_long_rejected", ["--seq-len", str(short)], short, {}),
                    ("truncate_left", ["--seq-len", str(short), "--truncate", "left"], short, {"truncate": "left"}),
                    ("truncate_right_all_loss", ["--seq-len", str(short), "--truncate", "right", "--train-on-prompt"],
                     short, {"truncate": "right", "train_on_prompt": True}),
                    ("no_pack", ["--no-pack", "--seq-len", str(lens[-1])], lens[-1], {}),
                    ("packed_tight", ["--seq-len", str(lens[-1])], lens[-1], {})]
            placed = {}
            for name, args, seq_len, kw in runs:
                errs, where = check_rows(tokens, pack(tok, os.path.join(tmp, name), *args), seq_len, **kw)
                ok(f"pack_records_{what}_{name}", errs + leaks(tokens, where))
                placed[name] = where
            # The split is decided before fitting: the same for every --seq-len and --truncate.
            a, b = placed["truncate_left"], placed["no_pack"]
            ok(f"pack_records_{what}_split_independent_of_fit", [i for i in a if a[i] != b.get(i)])
            s1 = pack(tok, os.path.join(tmp, "s1"), "--seed", "7")
            s2 = pack(tok, os.path.join(tmp, "s2"), "--seed", "7")
            s3 = pack(tok, os.path.join(tmp, "s3"), "--seed", "8")
            same = all(open(s1[k], "rb").read() == open(s2[k], "rb").read() for k in s1)
            other = any(open(s1[k], "rb").read() != open(s3[k], "rb").read() for k in s1)
            ok(f"pack_records_{what}_seed", [] if same and other else [f"same seed same bytes {same}, other seed differs {other}"])
            # Without groups the shares are exact up to largest-remainder rounding.
            errs, where = check_rows(tokens, pack(tok, os.path.join(tmp, "g"), "--group-by", "none", "--split", "70/20/10"),
                                     512)
            n = len(tokens)
            for k, share in (("train", 0.7), ("val", 0.2), ("test", 0.1)):
                got = sum(1 for w in where.values() if w == k)
                if abs(got - share * n) >= 1:
                    errs.append(f"{k}: {got} samples of {n}, share {share}")
            ok(f"pack_records_{what}_shares_by_sample", errs)
        # Species-swapped copies: in their original's split, never in test, val's in --val-copies.
        tok = os.path.join(tmp, "swap.tok")
        subprocess.run([os.path.join(BIN, "vet-tokenize"), "--spm", model, "--species-swap", "Dog=Cat", "-o", tok, varied],
                       check=True)
        tokens = records(tok)
        vc = os.path.join(tmp, "vc.pk")
        errs, where = check_rows(tokens, dict(pack(tok, os.path.join(tmp, "sw"), "--val-copies", vc, "--split", "1/1/1"),
                                              val_copies=vc), 10 ** 6)
        for t in tokens:
            if t.get("copy_of"):
                orig = where.get(t["copy_of"])
                want = {"train": "train", "val": "val_copies", "test": None}[orig]
                if where.get(t["id"]) != want:
                    errs.append(f"copy {t['id']}: in {where.get(t['id'])}, its original in {orig}")
        ok("pack_records_copies_follow_originals", errs + leaks(tokens, where))
    return REPORT.status()


if __name__ == "__main__":
    sys.exit(main())
