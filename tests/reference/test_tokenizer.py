"""test_tokenizer.py — vet-tokenize's ids against Python sentencepiece.

For every note, vet's `prompt` must equal [BOS] + encode(alpaca prompt) and its `response`
encode(output) + [EOS], where the prompt text is written here from the Alpaca record,
independently of vet's template code. Checked with this interpreter's sentencepiece and, when
it has one, with Debian's /usr/bin/python3 (python3-sentencepiece): two library versions.
Data: the 1,602 DLO notes (CSV into vet, the published Alpaca JSON here) when VET_SHARED is set,
else the small fixture set. The model is trained in a temp dir by make_model.sh.
"""
import json
import os
import subprocess
import sys
import tempfile

TEMPLATE = ("Below is an instruction that describes a task, paired with an input that provides "
            "further context. Write a response that appropriately completes the request.\n\n"
            "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")


def parity(model, alpaca_path, vet_jsonl):
    """Returns (rows, mismatches, first mismatch) with this interpreter's sentencepiece."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=model)
    alpaca = json.load(open(alpaca_path, encoding="utf-8"))
    vet = [json.loads(line) for line in open(vet_jsonl, encoding="utf-8")]
    if len(vet) != len(alpaca):
        return len(vet), len(alpaca), "record counts differ"
    bad, first = 0, None
    for a, v in zip(alpaca, vet):
        prompt = [sp.bos_id()] + sp.encode(TEMPLATE.format(**a))
        response = sp.encode(a["output"]) + [sp.eos_id()]
        if prompt != v["prompt"] or response != v["response"]:
            bad += 1
            first = first or f"{v['id']}: prompt {prompt == v['prompt']}, response {response == v['response']}"
        # decode(ids) gives the text back: the ids are not just equal but right.
        if sp.decode(v["prompt"][1:]) != TEMPLATE.format(**a):
            bad += 1
            first = first or f"{v['id']}: decode differs"
    return len(vet), bad, first


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--parity":  # re-run under another interpreter
        rows, bad, first = parity(*sys.argv[2:])
        print(json.dumps([rows, bad, first]))
        return 0
    top = os.environ.get("VET_TOP") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    vet_bin = os.environ.get("VET_BIN") or os.path.join(top, "bin")
    shared = os.environ.get("VET_SHARED", "")
    tok, dump = os.path.join(vet_bin, "vet-tokenize"), os.path.join(vet_bin, "vet-dump")
    if not os.access(tok, os.X_OK) or not os.access(dump, os.X_OK):
        print(f"skip tokenizer_parity: {tok} or vet-dump not built")
        return 0
    fixtures = os.path.join(top, "tests", "fixtures", "tokenize")
    if shared and os.path.exists(os.path.join(shared, "data", "dlo", "dlo_notes.csv")):
        csv_path = os.path.join(shared, "data", "dlo", "dlo_notes.csv")
        alpaca_path = os.path.join(shared, "data", "dlo", "dlo_alpaca.json")
        want_rows, what = 1602, "dlo"
    else:
        csv_path, alpaca_path = os.path.join(fixtures, "notes.csv"), os.path.join(fixtures, "notes.json")
        want_rows, what = 5, "fixtures"
        print("skip tokenizer_parity_dlo: VET_SHARED not set (checking the fixture notes only)")
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([os.path.join(fixtures, "make_model.sh"), os.path.join(tmp, "model")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"skip tokenizer_parity: cannot train a test tokenizer: {r.stderr.strip()}")
            return 0
        model = os.path.join(tmp, "model", "tokenizer.model")
        stream = os.path.join(tmp, "notes.tok")
        subprocess.run([tok, "--spm", model, "-o", stream, csv_path], check=True)
        jsonl = os.path.join(tmp, "notes.jsonl")
        with open(jsonl, "w") as f:
            subprocess.run([dump, "-r", stream], stdout=f, check=True)
        failed = 0
        interpreters = [sys.executable]
        debian = "/usr/bin/python3"
        if os.path.abspath(debian) != os.path.abspath(sys.executable) and os.access(debian, os.X_OK):
            interpreters.append(debian)
        for py in interpreters:
            ver = subprocess.run([py, "-c", "import sentencepiece; print(sentencepiece.__version__)"],
                                 capture_output=True, text=True)
            name = f"tokenizer_parity_{what}_{'venv' if py == sys.executable else 'debian'}"
            if ver.returncode != 0:
                print(f"skip {name}: {py} has no sentencepiece")
                continue
            out = subprocess.run([py, os.path.abspath(__file__), "--parity", model, alpaca_path, jsonl],
                                 capture_output=True, text=True)
            try:
                rows, bad, first = json.loads(out.stdout)
            except ValueError:
                rows, bad, first = 0, -1, out.stderr.strip()[-500:]
            if rows == want_rows and bad == 0:
                print(f"ok {name} (sentencepiece {ver.stdout.strip()}, {rows} notes)")
            else:
                print(f"not ok {name}")
                print(f"  {rows} rows, {bad} mismatches; first: {first}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
