"""The bad-input corpus (tests/bad_inputs/): each case ends in success with correct results or in a
one-line user error naming what is at fault; never a traceback, a silently wrong result, or a lost
file. `python -m tests.bad_inputs.tally` prints the table of outcomes."""

from __future__ import annotations

import pytest

from recsys.cli import USER_ERRORS, run_or_explain
from tests.bad_inputs.cases import all_cases
from tests.bad_inputs.harness import classify, expected_kind

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_ends_as_expected(case, tmp_path):
    outcome = classify(case, tmp_path)
    assert outcome.kind == expected_kind(case), outcome.detail


def test_corpus_is_large_and_covers_every_area():
    areas = {c.area for c in CASES}
    assert len(CASES) >= 150, len(CASES)
    assert {"data", "config", "checkpoint", "export", "serving", "sweep", "training"} <= areas


@pytest.mark.parametrize("error", USER_ERRORS, ids=lambda e: e.__name__)
def test_every_error_a_case_may_end_in_is_one_line_and_exit_code_2_at_the_entry_points(
    error, capsys
):
    def fails():
        raise error("data.csv: row 3,\n column 'user' is empty")

    with pytest.raises(SystemExit) as stopped:
        run_or_explain(fails)
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: data.csv: row 3, column 'user' is empty"]
