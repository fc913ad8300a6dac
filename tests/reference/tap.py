"""tap.py — the line protocol of tests/run (ok NAME | not ok NAME | skip NAME: why), for every
reference test. No torch here: the numpy-only and tokenizer-only tests import it without
paying for torch (reflib, which needs torch, re-exports Report)."""
import sys


class Report:
    def __init__(self):
        self.failed = 0

    def check(self, name, passed, detail=""):
        """One check's line; the detail goes to stderr when it failed. Returns passed."""
        print(("ok " if passed else "not ok ") + name, flush=True)
        if not passed:
            self.failed += 1
            if detail:
                print("FAIL " + name + ": " + detail, file=sys.stderr, flush=True)
        return passed

    def errors(self, name, errs, shown=10):
        """A check that passes when errs (a list of what was wrong) is empty."""
        return self.check(name, not errs, "\n  ".join(str(e) for e in errs[:shown]))

    def fail(self, name):
        """A check that could not run to its end (an exception): not ok, counted."""
        return self.check(name, False)

    def skip(self, name, why):
        print("skip %s: %s" % (name, why), flush=True)

    def status(self):
        return 1 if self.failed else 0

    def exit(self):
        sys.exit(self.status())
