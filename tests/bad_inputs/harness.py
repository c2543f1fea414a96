"""One bad-input case = what a user does in a fresh folder, and what must come of it.

A case ends in one of five outcomes (`classify`): `ok` (it worked and its check passed),
`clear_error` (a recsys user error whose message is one line naming what is at fault; the entry
points turn exactly these into `error: ...` and exit code 2, see `recsys.cli.USER_ERRORS`),
`crash` (any other exception: the user would see a traceback), `silent_wrong` (it returned, but the
check failed, or an error was expected and none came) and `data_lost` (a file the user owned was
deleted or changed, or a payload ran). The corpus test asserts every case ends as it expects.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.cli import USER_ERRORS, one_line

OUTCOMES = ("ok", "clear_error", "crash", "silent_wrong", "data_lost")


class DataLost(AssertionError):
    """Raised by a case's check when a user's file was deleted or changed, or a payload ran."""


@dataclass(frozen=True)
class Case:
    """`run(tmp)` does what the user does inside the empty folder `tmp` and returns its result.

    expect "ok": `check(result, tmp)` asserts the result is right (counts add up, ids kept...).
    expect "error": a user error must be raised and its message must contain `names` (the file,
    row, key or field at fault). `check`, if given, still runs afterwards (e.g. files survived).
    """

    name: str
    area: str  # data | config | checkpoint | export | serving | sweep | training
    run: Callable[[Path], Any]
    expect: str = "error"
    names: str = ""
    check: Callable[[Any, Path], None] | None = None

    @property
    def id(self) -> str:
        return f"{self.area}:{self.name}"


@dataclass
class Outcome:
    kind: str
    detail: str = ""


def classify(case: Case, tmp: Path) -> Outcome:
    result: Any = None
    try:
        result = case.run(tmp)
    except USER_ERRORS as err:
        line = one_line(err)
        if case.expect != "error":
            return Outcome("crash", f"unexpected user error: {line}")
        if case.names and case.names.lower() not in line.lower():
            return Outcome("crash", f"error does not name {case.names!r}: {line}")
        return _after(case, None, tmp, Outcome("clear_error", line))
    except Exception:  # noqa: BLE001 - a traceback is exactly what the corpus hunts for
        return Outcome("crash", traceback.format_exc(limit=-3))
    if case.expect == "error":
        return _after(case, result, tmp, Outcome("silent_wrong", f"no error; returned {result!r}"))
    return _after(case, result, tmp, Outcome("ok"))


def _after(case: Case, result: Any, tmp: Path, outcome: Outcome) -> Outcome:
    if case.check is None:
        return outcome
    try:
        case.check(result, tmp)
    except DataLost as err:
        return Outcome("data_lost", str(err))
    except AssertionError as err:
        if outcome.kind == "clear_error":  # a check after an error guards files only
            return Outcome("silent_wrong", f"after the error: {err}")
        return Outcome("silent_wrong", str(err) or "check failed")
    return outcome


def expected_kind(case: Case) -> str:
    return "ok" if case.expect == "ok" else "clear_error"
