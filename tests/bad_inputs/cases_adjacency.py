"""Data cases for `format: adjacency` (`user item item ...` lines, the LightGCN splits): bad ids named
by file, line and token; lines holding no pair counted by named steps; compressed files, odd line
ends and options the format cannot honour."""

from __future__ import annotations

import gzip
from pathlib import Path

from recsys.data.sources.interaction_log import InteractionLogSource
from tests.bad_inputs.data_helpers import ALL_IN_TRAIN, expect, write_text
from tests.bad_inputs.harness import Case

LINES = [f"{u} " + " ".join(str((u * 7 + k) % 23) for k in range(1 + u % 5)) for u in range(12)]
GOOD = "\n".join(LINES) + "\n"
PAIRS = sum(1 + u % 5 for u in range(12))
USERS = {str(u) for u in range(12)}


def load(path: Path, **kwargs):
    kwargs.setdefault("split", ALL_IN_TRAIN)
    return InteractionLogSource(path=str(path), format="adjacency", **kwargs)()


def _ok_cases() -> list[Case]:
    variants = {  # name -> (file bytes, file name, load options, rows read, removed by step)
        "good": (GOOD.encode(), "log.txt", {}, PAIRS, {}),
        "crlf_tabs_no_last_newline": (GOOD.replace(" ", "\t").replace("\n", "\r\n").rstrip().encode(), "log.txt", {}, PAIRS, {}),
        "gzip": (gzip.compress(GOOD.encode()), "log.txt.gz", {}, PAIRS, {}),
        "blank_and_user_only_lines": (("\n" + GOOD + "12\n  \n13\n").encode(), "log.txt", {}, PAIRS + 4, {"drop_blank_rows": 2, "drop_user_only_lines": 2}),
        "bad_ids_dropped": ((GOOD + "12 1 y 3\n-4 1 2\n").encode(), "log.txt", {"cleaning": {"on_invalid": "drop"}}, PAIRS + 5, {"drop_invalid_ids": 3}),
        "repeated_pair": ((GOOD + "0 0 0\n").encode(), "log.txt", {}, PAIRS + 2, {"deduplicate": 2}),  # line 1 is `0 0`
    }  # fmt: skip
    cases = []
    for name, (content, file, options, rows, removed) in variants.items():
        cases.append(Case(
            f"adjacency_{name}", "data", expect="ok",
            run=lambda tmp, c=content, f=file, o=options: load(write_text(tmp, c, f), **o),
            check=expect(rows, removed, users=USERS),
        ))  # fmt: skip
    return cases


def _error_cases() -> list[Case]:
    variants = {  # name -> (file bytes, load options, what the one-line error names)
        "letter_item": ((GOOD + "12 3 b7\n").encode(), {}, "log.txt: line 13, item 2: 'b7'"),
        "negative_user": (("-2 4 5\n" + GOOD).encode(), {}, "log.txt: line 1, user id: '-2'"),
        "decimal_item": ((GOOD + "12 3.0\n").encode(), {}, "log.txt: line 13, item 1: '3.0'"),
        "id_over_int64": ((GOOD + "12 " + "9" * 25 + "\n").encode(), {}, "log.txt: line 13, item 1"),
        "latin1_bytes": ((GOOD + "12 caf\xe9\n").encode("latin-1"), {}, "log.txt: cannot read as adjacency text (not utf-8 text"),
        "only_blank_lines": (b"\n\n  \n", {}, "no training rows left"),
        "rating_column_set": (GOOD.encode(), {"columns": {"user": 0, "item": 1, "rating": 2}}, "unset columns.rating"),
        "empty_file": (b"", {}, "log.txt: file is empty"),
    }  # fmt: skip
    return [
        Case(
            f"adjacency_{name}",
            "data",
            names=names,
            run=lambda tmp, c=content, o=options: load(write_text(tmp, c, "log.txt"), **o),
        )  # fmt: skip
        for name, (content, options, names) in variants.items()
    ]


def cases() -> list[Case]:
    return _ok_cases() + _error_cases()
