"""Print the corpus's outcome table: `python -m tests.bad_inputs.tally` (markdown, one row an area)."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from tests.bad_inputs.cases import all_cases
from tests.bad_inputs.harness import OUTCOMES, classify


def main() -> None:
    counts: dict[str, Counter] = {}
    for case in all_cases():
        with tempfile.TemporaryDirectory() as tmp:
            outcome = classify(case, Path(tmp))
        counts.setdefault(case.area, Counter())[outcome.kind] += 1
        if outcome.kind not in ("ok", "clear_error"):
            print(f"  {case.id}: {outcome.kind}: {outcome.detail.splitlines()[-1:]}")
    print("| area | inputs | " + " | ".join(OUTCOMES) + " |")
    print("|---" * (len(OUTCOMES) + 2) + "|")
    total: Counter = Counter()
    for area, c in sorted(counts.items()):
        total.update(c)
        print(f"| {area} | {sum(c.values())} | " + " | ".join(str(c[o]) for o in OUTCOMES) + " |")
    print(f"| all | {sum(total.values())} | " + " | ".join(str(total[o]) for o in OUTCOMES) + " |")


if __name__ == "__main__":
    main()
