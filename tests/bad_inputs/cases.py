"""Every case of the corpus, gathered from the per-area generators (`cases_<area>.py`)."""

from __future__ import annotations

import importlib
import pkgutil

from tests.bad_inputs.harness import Case

PACKAGE = "tests.bad_inputs"


def all_cases() -> list[Case]:
    import tests.bad_inputs as package

    cases: list[Case] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("cases_"):
            cases.extend(importlib.import_module(f"{PACKAGE}.{info.name}").cases())
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"case ids must be unique: {duplicates}"
    return cases
